//! Resources that only the key that created them can see: a stored
//! response, a batch, an uploaded file. Each is recorded with its creating
//! key's id (`store::bindings`) until the end of its documented lifetime,
//! so later calls naming it use that key and no other.

use std::time::Duration;

use super::{KeyId, ProviderKind};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// An OpenAI response stored for `previous_response_id` and retrieval.
    Response,
    /// An Anthropic message batch or an OpenAI batch.
    Batch,
    /// An OpenAI file.
    File,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Response => "response",
            ResourceKind::Batch => "batch",
            ResourceKind::File => "file",
        }
    }

    /// How long the provider keeps such a resource: OpenAI keeps stored
    /// responses 30 days; Anthropic keeps a batch's results 29 days after
    /// its creation; an OpenAI batch and a file of purpose `batch` expire
    /// after 30 days by default (a file's own `expires_at` wins, when it
    /// names one).
    pub fn lifetime(self, provider: ProviderKind) -> Duration {
        match (self, provider) {
            (ResourceKind::Batch, ProviderKind::Anthropic) => 29 * DAY,
            _ => 30 * DAY,
        }
    }
}

impl std::str::FromStr for ResourceKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "response" => Ok(ResourceKind::Response),
            "batch" => Ok(ResourceKind::Batch),
            "file" => Ok(ResourceKind::File),
            _ => Err(()),
        }
    }
}

/// A resource and the key that created it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceBinding {
    pub provider: ProviderKind,
    pub resource_id: String,
    pub kind: ResourceKind,
    pub key_id: KeyId,
    /// When the provider forgets the resource, in ms since the Unix epoch.
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_lifetimes_follow_the_provider() {
        for kind in [
            ResourceKind::Response,
            ResourceKind::Batch,
            ResourceKind::File,
        ] {
            assert_eq!(kind.as_str().parse::<ResourceKind>(), Ok(kind));
        }
        assert_eq!(
            ResourceKind::Batch.lifetime(ProviderKind::Anthropic),
            29 * DAY
        );
        assert_eq!(
            ResourceKind::Response.lifetime(ProviderKind::OpenAI),
            30 * DAY
        );
    }
}
