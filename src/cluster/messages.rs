//! What replicas say to each other on the cluster's channel, and the names
//! of everything the cluster keeps in Redis. Every name starts with the
//! deployment's name (`KEYGATE_CLUSTER`), so two deployments can share one
//! Redis. Messages are JSON: small, and readable with `redis-cli monitor`.

use serde::{Deserialize, Serialize};

use crate::affinity::SharedBinding;
use crate::domain::ProviderKind;
use crate::keypool::shared::SharedChange;

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's replica id: a replica skips its own messages.
    pub from: String,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Changes to one provider's key marks.
    Changes {
        provider: String,
        changes: Vec<SharedChange>,
    },
    /// The stored key set changed (an admin route wrote it): reload it.
    KeysChanged,
    /// Sessions bound to cache scopes (`affinity`).
    Bindings { bindings: Vec<SharedBinding> },
}

impl Envelope {
    pub fn encode(&self) -> String {
        // Plain structs of strings and numbers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a message this version does not understand (a newer
    /// replica's, during a rolling upgrade): it is skipped, not fatal.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        serde_json::from_slice(payload).ok()
    }
}

/// The names under one deployment's prefix.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(cluster: &str) -> Self {
        Self {
            prefix: cluster.to_string(),
        }
    }

    /// The pub/sub channel every replica listens on.
    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Set once by the first replica to reach an empty Redis: a different
    /// epoch after a reconnection means Redis lost what it held.
    pub fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// One mark in force (a `SharedChange::Key` as JSON), expiring with it.
    pub fn mark(&self, provider: ProviderKind, key: &str, slot: &str) -> String {
        format!("{}:mark:{}:{key}:{slot}", self.prefix, provider.as_str())
    }

    /// The pattern of every mark of `provider`.
    pub fn marks_of(&self, provider: ProviderKind) -> String {
        format!("{}:mark:{}:*", self.prefix, provider.as_str())
    }

    /// The cluster's counters of `provider` (a hash).
    pub fn counts(&self, provider: ProviderKind) -> String {
        format!("{}:counts:{}", self.prefix, provider.as_str())
    }

    /// Live replicas, scored by when they last reported (a sorted set).
    pub fn replicas(&self) -> String {
        format!("{}:replicas", self.prefix)
    }

    /// One replica's own counters (JSON), expiring when it stops reporting.
    pub fn replica(&self, id: &str) -> String {
        format!("{}:replica:{id}", self.prefix)
    }

    /// The token for probing a finished rest (`slot`: `cooldown:<model>`
    /// or `ejected`), named by the rest's end so every replica that knows
    /// it contends for the same token.
    pub fn probe(&self, provider: ProviderKind, key: &str, slot: &str, until_ms: u64) -> String {
        format!(
            "{}:probe:{}:{key}:{slot}:{until_ms}",
            self.prefix,
            provider.as_str()
        )
    }

    /// Every name of this deployment (for tests that clean up).
    pub fn all(&self) -> String {
        format!("{}:*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keypool::shared::Mark;

    #[test]
    fn envelopes_round_trip_and_unknown_ones_are_skipped() {
        let envelope = Envelope {
            from: "r1".into(),
            body: Body::Changes {
                provider: "anthropic".into(),
                changes: vec![
                    SharedChange::Key {
                        key: "key_1".into(),
                        mark: Mark::Cooldown {
                            model: Some("claude-sonnet-4-5".into()),
                            until_ms: 1_900_000_000_000,
                            level: 1,
                        },
                    },
                    SharedChange::Reset,
                ],
            },
        };
        let text = envelope.encode();
        assert!(text.contains(r#""kind":"changes""#), "{text}");
        assert_eq!(Envelope::decode(text.as_bytes()), Some(envelope));
        let keys = Envelope {
            from: "r2".into(),
            body: Body::KeysChanged,
        };
        assert_eq!(Envelope::decode(keys.encode().as_bytes()), Some(keys));
        assert_eq!(
            Envelope::decode(br#"{"from":"r3","kind":"from_the_future"}"#),
            None
        );
        assert_eq!(Envelope::decode(b"not json"), None);
    }

    #[test]
    fn names_carry_the_deployment_prefix() {
        let names = Names::new("prod-eu");
        assert_eq!(names.channel(), "prod-eu:events");
        assert_eq!(
            names.mark(ProviderKind::Anthropic, "key_1", "cooldown:*"),
            "prod-eu:mark:anthropic:key_1:cooldown:*"
        );
        assert_eq!(
            names.probe(ProviderKind::OpenAI, "key_2", "cooldown:*", 42),
            "prod-eu:probe:openai:key_2:cooldown:*:42"
        );
    }
}
