//! Why an upstream attempt produced no answer, classified by whose fault it
//! is: the key's (rate limit, rejection), the provider's or the network's
//! (5xx, 529, resets, timeouts), or the request's own (400, 404, 413, 422).
//! The class decides what happens to the key and whether another key is
//! tried; see the outcome table in the README. `Outcome` is what a failure
//! (or a success) does to the key, as the pool records it.

use std::time::Duration;

use std::borrow::Cow;

use crate::scrub::Scrubber;

/// Error types keygate passes on: Anthropic's, OpenAI's common types and
/// codes, and keygate's own. Anything else an upstream says is replaced by
/// the type its status stands for.
const KNOWN_ERROR_TYPES: &[&str] = &[
    // Anthropic
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
    // OpenAI
    "insufficient_quota",
    "rate_limit_exceeded",
    "invalid_api_key",
    "server_error",
    "model_not_found",
    "context_length_exceeded",
    "unsupported_parameter",
    "unsupported_value",
    "invalid_prompt",
    "tokens",
    "requests",
    // keygate's own
    "network_error",
    "malformed_response",
    "empty_stream",
    "incomplete_stream",
    "invalid_key",
    "upstream_error",
    "configuration_error",
];

/// `error_type` if it is a known word, else the type `status` stands for.
pub fn known_error_type(error_type: &str, status: Option<u16>) -> &'static str {
    if let Some(known) = KNOWN_ERROR_TYPES.iter().find(|k| **k == error_type) {
        return known;
    }
    match status {
        Some(400 | 422) => "invalid_request_error",
        Some(401) => "authentication_error",
        Some(402) => "billing_error",
        Some(403) => "permission_error",
        Some(404) => "not_found_error",
        Some(413) => "request_too_large",
        Some(429) => "rate_limit_error",
        Some(529) => "overloaded_error",
        Some(504) => "timeout_error",
        _ => "upstream_error",
    }
}

/// A 404 about a model (`model_not_found`, "model: claude-x"): for a key
/// without access to a model, some upstreams answer 404 rather than 403.
fn names_a_model(detail: &UpstreamDetail) -> bool {
    detail.error_type == "model_not_found" || detail.message.to_ascii_lowercase().contains("model")
}

/// What the upstream said, in its own terms (message scrubbed before use).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamDetail {
    pub status: Option<u16>,
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429: this key is rate-limited; cool it down, try another.
    RateLimited {
        retry_after: Option<Duration>,
        detail: UpstreamDetail,
    },
    /// A quota that will not refill soon is used up (a search plan's month,
    /// a Google project's day): the key rests exactly `rest`, neither
    /// clamped to `KEY_COOLDOWN_MAX_SECS` nor laddered, since the provider
    /// says when it refills.
    QuotaSpent {
        rest: Duration,
        detail: UpstreamDetail,
    },
    /// 401/402: the upstream refuses this key; take it out of rotation.
    KeyRejected(UpstreamDetail),
    /// 403, or a 404 that names a model: the key may be fine and merely
    /// lack access to this model or feature. Never condemns a key before
    /// a check of the key itself says which (see `Gateway`).
    AccessDenied(UpstreamDetail),
    /// Confirmed: the key works but has no access to this model; it sits
    /// out for this model only, and another key is tried.
    NoAccess(UpstreamDetail),
    /// A 429 for a request larger than the key's whole per-minute token
    /// limit: it can never fit that key, so no cooldown; another key (with
    /// a larger limit) may still serve it.
    Unfit(UpstreamDetail),
    /// 5xx/529 or a network error: count it, try another key.
    ProviderFault(UpstreamDetail),
    /// No complete answer in time (per-attempt timeout, or a stream that
    /// stalled past its idle timeout).
    Timeout(UpstreamDetail),
    /// 400/404/413/422 and other 4xx: the request is at fault; no retry.
    ClientFault(UpstreamDetail),
}

impl Failure {
    /// Classifies a non-2xx upstream answer.
    pub fn from_status(
        status: u16,
        retry_after: Option<Duration>,
        error_type: String,
        message: String,
    ) -> Self {
        let detail = UpstreamDetail {
            status: Some(status),
            error_type,
            message,
        };
        match status {
            429 => Failure::RateLimited {
                retry_after,
                detail,
            },
            401 | 402 => Failure::KeyRejected(detail),
            403 => Failure::AccessDenied(detail),
            404 if names_a_model(&detail) => Failure::AccessDenied(detail),
            // 408 and 409 are transient on the provider's side (the SDKs
            // retry them); a redirect is not followed (it would carry the
            // key elsewhere), so it is the provider misbehaving.
            300..=399 | 408 | 409 | 500..=599 => Failure::ProviderFault(detail),
            _ => Failure::ClientFault(detail),
        }
    }

    /// A transport error: refused, reset, or a body that broke off.
    pub fn network(error: &reqwest::Error) -> Self {
        let what = if error.is_connect() {
            "could not connect to the upstream"
        } else if error.is_body() || error.is_decode() {
            "the upstream connection broke off while reading the answer"
        } else {
            "the upstream connection failed"
        };
        Failure::ProviderFault(UpstreamDetail {
            status: None,
            error_type: "network_error".into(),
            message: what.into(),
        })
    }

    /// No complete answer within the per-attempt timeout.
    pub fn timeout(after: Duration) -> Self {
        Failure::Timeout(UpstreamDetail {
            status: None,
            error_type: "timeout_error".into(),
            message: format!(
                "no answer from the upstream within {:.1} s",
                after.as_secs_f64()
            ),
        })
    }

    /// A stream that sent nothing for `after`.
    pub fn stalled(after: Duration) -> Self {
        Failure::Timeout(UpstreamDetail {
            status: None,
            error_type: "timeout_error".into(),
            message: format!(
                "the upstream stream sent nothing for {:.1} s",
                after.as_secs_f64()
            ),
        })
    }

    /// A 2xx whose body is not what the protocol promises.
    pub fn malformed(what: &str) -> Self {
        Failure::ProviderFault(UpstreamDetail {
            status: None,
            error_type: "malformed_response".into(),
            message: format!("the upstream sent an unreadable answer: {what}"),
        })
    }

    pub fn detail(&self) -> UpstreamDetail {
        self.detail_ref().clone()
    }

    /// What the upstream said, whatever the class.
    pub fn detail_ref(&self) -> &UpstreamDetail {
        match self {
            Failure::RateLimited { detail, .. }
            | Failure::QuotaSpent { detail, .. }
            | Failure::KeyRejected(detail)
            | Failure::AccessDenied(detail)
            | Failure::NoAccess(detail)
            | Failure::Unfit(detail)
            | Failure::ProviderFault(detail)
            | Failure::Timeout(detail)
            | Failure::ClientFault(detail) => detail,
        }
    }

    fn detail_mut(&mut self) -> &mut UpstreamDetail {
        match self {
            Failure::RateLimited { detail, .. }
            | Failure::QuotaSpent { detail, .. }
            | Failure::KeyRejected(detail)
            | Failure::AccessDenied(detail)
            | Failure::NoAccess(detail)
            | Failure::Unfit(detail)
            | Failure::ProviderFault(detail)
            | Failure::Timeout(detail)
            | Failure::ClientFault(detail) => detail,
        }
    }

    /// The failure as anyone may see it: the message without any fragment
    /// of any pool key (or anything key-shaped), and the error type one of
    /// the known words, never the upstream's own string (which could carry
    /// a key, or anything else).
    pub fn scrubbed(mut self, scrubber: &Scrubber) -> Self {
        let detail = self.detail_mut();
        detail.error_type = known_error_type(&detail.error_type, detail.status).into();
        if let Cow::Owned(clean) = scrubber.scrub(&detail.message) {
            detail.message = clean;
        }
        self
    }

    /// What this failure does to the key that met it.
    pub fn outcome(&self) -> Outcome {
        let detail = self.detail();
        let note = FailureNote {
            status: detail.status,
            error_type: detail.error_type,
            message: detail.message,
        };
        match self {
            Failure::RateLimited { retry_after, .. } => Outcome::RateLimited {
                cooldown: *retry_after,
                note,
            },
            Failure::QuotaSpent { rest, .. } => Outcome::QuotaSpent { rest: *rest, note },
            Failure::KeyRejected(_) => Outcome::Rejected(note),
            // Unconfirmed, it is treated as confirmed: a key is never
            // condemned for what may be the request's model.
            Failure::AccessDenied(_) | Failure::NoAccess(_) => Outcome::NoAccess(note),
            Failure::ProviderFault(_) | Failure::Timeout(_) => Outcome::Failed(note),
            Failure::ClientFault(_) | Failure::Unfit(_) => Outcome::RequestFault,
        }
    }
}

/// What one upstream attempt did, as far as the key is concerned.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answered; `latency` to the answer (or a stream's first content).
    Success { latency: Option<Duration> },
    /// 429: cool the key for `cooldown` (or the configured default).
    RateLimited {
        cooldown: Option<Duration>,
        note: FailureNote,
    },
    /// A quota is used up until a known time: rest exactly `rest`.
    QuotaSpent { rest: Duration, note: FailureNote },
    /// 401/402: the upstream refuses this key; out of rotation until reset
    /// (or a background check finds it working again).
    Rejected(FailureNote),
    /// The key works but cannot use this model: it sits out for the model.
    NoAccess(FailureNote),
    /// 5xx, network error, timeout: counted, no cooldown for a single one.
    Failed(FailureNote),
    /// The request's own fault (400, 404, …): the key did nothing wrong.
    RequestFault,
    /// The attempt was abandoned (the client went away): no verdict.
    Cancelled,
}

/// A failed attempt as recorded in a key's history (message already scrubbed).
#[derive(Debug, Clone)]
pub struct FailureNote {
    pub status: Option<u16>,
    pub error_type: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16) -> &'static str {
        match Failure::from_status(status, None, String::new(), String::new()) {
            Failure::RateLimited { .. } | Failure::QuotaSpent { .. } => "rate_limited",
            Failure::KeyRejected(_) => "key_rejected",
            Failure::AccessDenied(_) => "access_denied",
            Failure::NoAccess(_) => "no_access",
            Failure::Unfit(_) => "unfit",
            Failure::ProviderFault(_) => "provider",
            Failure::Timeout(_) => "timeout",
            Failure::ClientFault(_) => "client",
        }
    }

    #[test]
    fn statuses_follow_the_outcome_table() {
        assert_eq!(class(429), "rate_limited");
        for status in [401, 402] {
            assert_eq!(class(status), "key_rejected", "{status}");
        }
        assert_eq!(class(403), "access_denied");
        for status in [500, 502, 503, 504, 529] {
            assert_eq!(class(status), "provider", "{status}");
        }
        for status in [400, 404, 413, 422] {
            assert_eq!(class(status), "client", "{status}");
        }
    }
}
