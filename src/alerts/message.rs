//! How an alert reads: the one-line text (Slack-compatible webhooks, the
//! first line of an e-mail), the structured JSON body, and the e-mail's
//! subject and body. Built only from the alert's fields, which hold key ids
//! and masked forms, never key material.

use serde_json::{Value, json};

use super::conditions::format_time;
use super::event::{Alert, AlertKind, Condition};

/// What the condition is, in a few words, with the provider and key (its
/// masked form too, unless `short`).
fn headline(alert: &Alert, short: bool) -> String {
    let provider = alert.provider.map_or("keygate", |p| p.as_str());
    let key = match &alert.key {
        Some(key) if short => format!("key {}", key.id),
        Some(key) => format!("key {} ({})", key.id, key.masked),
        None => String::new(),
    };
    let Some(condition) = alert.kind.condition() else {
        return "test message".into();
    };
    let opened = matches!(alert.kind, AlertKind::Opened(_));
    match (condition, opened) {
        (Condition::AllKeysUnavailable, true) => format!("every {provider} key is unavailable"),
        (Condition::AllKeysUnavailable, false) => format!("{provider} has keys available again"),
        (Condition::KeyInvalid, true) => format!("{provider} {key} is invalid"),
        (Condition::KeyInvalid, false) => format!("{provider} {key} is no longer invalid"),
        (Condition::KeyEjectedRepeatedly, true) => {
            format!("{provider} {key} was ejected again")
        }
        (Condition::KeyEjectedRepeatedly, false) => {
            format!("{provider} {key} is no longer ejected")
        }
        (Condition::ProviderOverloaded, true) => format!("{provider} looks overloaded"),
        (Condition::ProviderOverloaded, false) => format!("{provider} is no longer overloaded"),
    }
}

/// The whole message on one line (Slack's `text`).
pub fn text(alert: &Alert) -> String {
    let since = format_time(alert.since);
    match alert.kind {
        AlertKind::Test => format!("[keygate] {}", alert.reason),
        AlertKind::Opened(condition) => {
            let until = match (condition, alert.until) {
                (_, Some(until)) => format!(" Expected back at {}.", format_time(until)),
                (Condition::AllKeysUnavailable, None) => {
                    " No key returns by itself: an admin must act.".into()
                }
                _ => String::new(),
            };
            format!(
                "[keygate] ALERT: {}: {}. Since {since}.{until}",
                headline(alert, false),
                alert.reason
            )
        }
        AlertKind::Recovered(_) => {
            let until = alert.until.map(format_time).unwrap_or_default();
            format!(
                "[keygate] RECOVERED: {} (open from {since} to {until}; it was: {}).",
                headline(alert, false),
                alert.reason
            )
        }
    }
}

/// `{"text": "…"}`, what Slack-compatible webhooks take.
pub fn slack_body(alert: &Alert) -> Value {
    json!({ "text": text(alert) })
}

/// The structured body (`ALERT_WEBHOOK_FORMAT=json`).
pub fn json_body(alert: &Alert) -> Value {
    json!({
        "event": alert.kind.event(),
        "condition": alert.kind.condition().map(Condition::as_str),
        "provider": alert.provider,
        "key_id": alert.key.as_ref().map(|k| &k.id),
        "key": alert.key.as_ref().map(|k| &k.masked),
        "reason": alert.reason,
        "since": format_time(alert.since),
        "until": alert.until.map(format_time),
    })
}

/// `[keygate] ALERT: every anthropic key is unavailable`; a key by its id
/// only, to keep the subject short.
pub fn email_subject(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::Opened(_) => format!("[keygate] ALERT: {}", headline(alert, true)),
        AlertKind::Recovered(_) => format!("[keygate] RECOVERED: {}", headline(alert, true)),
        AlertKind::Test => "[keygate] test message".into(),
    }
}

/// The text, then each field on its own line.
pub fn email_body(alert: &Alert) -> String {
    let field = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    format!(
        "{}\n\nevent: {}\ncondition: {}\nprovider: {}\nkey id: {}\nkey: {}\nreason: {}\nsince: {}\nuntil: {}\n",
        text(alert),
        alert.kind.event(),
        field(alert.kind.condition().map(|c| c.as_str().to_string())),
        field(alert.provider.map(|p| p.to_string())),
        field(alert.key.as_ref().map(|k| k.id.to_string())),
        field(alert.key.as_ref().map(|k| k.masked.clone())),
        alert.reason,
        format_time(alert.since),
        field(alert.until.map(format_time)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::alerts::event::KeyRef;
    use crate::domain::{KeyId, ProviderKind};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
    }

    fn invalid_key() -> Alert {
        Alert {
            kind: AlertKind::Opened(Condition::KeyInvalid),
            provider: Some(ProviderKind::Anthropic),
            key: Some(KeyRef {
                id: KeyId::new("k7f3"),
                masked: "sk-ant-api03-…Xa1b".into(),
            }),
            reason: "invalid x-api-key".into(),
            since: at(0),
            until: None,
        }
    }

    #[test]
    fn the_text_names_provider_key_reason_and_times() {
        assert_eq!(
            text(&invalid_key()),
            "[keygate] ALERT: anthropic key k7f3 (sk-ant-api03-…Xa1b) is invalid: \
             invalid x-api-key. Since 2025-06-15T15:06:40Z."
        );
        let all = Alert {
            kind: AlertKind::Opened(Condition::AllKeysUnavailable),
            key: None,
            reason: "none of its 2 keys can serve: 2 cooling down".into(),
            until: Some(at(60)),
            ..invalid_key()
        };
        assert!(
            text(&all).ends_with("Expected back at 2025-06-15T15:07:40Z."),
            "{}",
            text(&all)
        );
        let recovered = Alert {
            kind: AlertKind::Recovered(Condition::AllKeysUnavailable),
            until: Some(at(90)),
            ..all
        };
        assert_eq!(
            text(&recovered),
            "[keygate] RECOVERED: anthropic has keys available again (open from \
             2025-06-15T15:06:40Z to 2025-06-15T15:08:10Z; it was: none of its 2 keys \
             can serve: 2 cooling down)."
        );
    }

    #[test]
    fn the_json_body_has_the_structured_fields() {
        let body = json_body(&invalid_key());
        assert_eq!(body["event"], "key_invalid");
        assert_eq!(body["condition"], "key_invalid");
        assert_eq!(body["provider"], "anthropic");
        assert_eq!(body["key_id"], "k7f3");
        assert_eq!(body["reason"], "invalid x-api-key");
        assert_eq!(body["since"], "2025-06-15T15:06:40Z");
        assert!(body["until"].is_null());
        let test = json_body(&Alert::test(at(0)));
        assert_eq!(test["event"], "test");
        assert!(test["provider"].is_null() && test["key_id"].is_null());
    }

    #[test]
    fn the_email_has_a_subject_and_one_field_per_line() {
        let alert = invalid_key();
        assert_eq!(
            email_subject(&alert),
            "[keygate] ALERT: anthropic key k7f3 is invalid"
        );
        let body = email_body(&alert);
        assert!(body.contains("\nkey id: k7f3\n"), "{body}");
        assert!(body.contains("\nuntil: -\n"), "{body}");
    }
}
