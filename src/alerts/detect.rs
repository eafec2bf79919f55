//! What a look at one pool finds: the conditions that hold now. The pool's
//! status is first read into a small view (`ProviderView`: each key's state
//! as an enum, its reasons scrubbed), then `findings` decides, purely, so
//! the rules are tested without a pool.

use std::time::{Duration, SystemTime};

use super::event::{Condition, Finding, Subject};
use crate::domain::{KeyId, ProviderKind};
use crate::keypool::{KeyStatus, PoolStatus};
use crate::scrub::Scrubber;

/// Longest reason carried into a message: upstream error texts can be long.
const MAX_REASON_CHARS: usize = 300;

/// A key's state, as `KeyStatus::state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    CoolingDown,
    Ejected,
    Invalid,
    Disabled,
}

impl KeyState {
    fn of(status: &KeyStatus) -> Self {
        match status.state {
            "cooling_down" => Self::CoolingDown,
            "ejected" => Self::Ejected,
            "invalid" => Self::Invalid,
            "disabled" => Self::Disabled,
            _ => Self::Active,
        }
    }
}

/// One key, as far as alerts care.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub id: KeyId,
    pub masked: String,
    pub state: KeyState,
    /// Why it is invalid (scrubbed).
    pub invalid_reason: Option<String>,
    /// Times it was ejected, in all.
    pub ejections: u32,
    /// Its ejection, while it has one (also once its rest is over and it
    /// waits for its probe to pass).
    pub ejection: Option<EjectionView>,
    /// When a cooling key is back.
    pub cooldown_left: Duration,
}

#[derive(Debug, Clone)]
pub struct EjectionView {
    /// What its last fault said (scrubbed).
    pub reason: String,
    /// Until its rest is over (zero: its probe is due or out).
    pub left: Duration,
}

/// One provider's pool, as far as alerts care.
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub provider: ProviderKind,
    pub keys: Vec<KeyView>,
    /// `(failing, usable)` when most keys just met provider faults.
    pub overloaded: Option<(usize, usize)>,
}

impl ProviderView {
    /// Reads a pool's status, scrubbing every text it carries into alerts
    /// (the pool's texts are scrubbed already; an alert leaves keygate, so
    /// it is done once more here, where it costs nothing).
    pub fn from_status(
        status: &PoolStatus,
        overloaded: Option<(usize, usize)>,
        scrubber: &Scrubber,
    ) -> Self {
        let clean = |text: &str| shorten(&scrubber.scrub(text));
        Self {
            provider: status.provider,
            overloaded,
            keys: status
                .keys
                .iter()
                .map(|key| KeyView {
                    id: key.id.clone(),
                    masked: key.masked.clone(),
                    state: KeyState::of(key),
                    invalid_reason: key.invalid_reason.as_deref().map(clean),
                    ejections: key.ejections,
                    ejection: key.ejection.as_ref().map(|e| EjectionView {
                        reason: clean(&e.reason),
                        left: Duration::from_secs(e.returns_in_secs),
                    }),
                    cooldown_left: Duration::from_secs(key.cooldown_remaining_secs),
                })
                .collect(),
        }
    }
}

/// The rules' one setting.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The ejection count from which a key's ejection is a condition.
    pub ejections: u32,
}

/// The conditions that hold for `view` at `wall`.
pub fn findings(view: &ProviderView, rules: Rules, wall: SystemTime) -> Vec<Finding> {
    let provider = view.provider;
    let mut found = Vec::new();
    if let Some(finding) = all_unavailable(view, wall) {
        found.push(finding);
    }
    if let Some((failing, usable)) = view.overloaded {
        found.push(Finding {
            subject: Subject {
                condition: Condition::ProviderOverloaded,
                provider,
                key: None,
            },
            masked: None,
            reason: format!(
                "{failing} of {usable} usable keys met upstream errors (5xx, 529) in the last 30 s"
            ),
            until: None,
        });
    }
    for key in &view.keys {
        let subject = |condition| Subject {
            condition,
            provider,
            key: Some(key.id.clone()),
        };
        if key.state == KeyState::Invalid {
            found.push(Finding {
                subject: subject(Condition::KeyInvalid),
                masked: Some(key.masked.clone()),
                reason: key
                    .invalid_reason
                    .clone()
                    .unwrap_or_else(|| "rejected by the provider".into()),
                until: None,
            });
        }
        if let Some(ejection) = &key.ejection
            && key.ejections >= rules.ejections
        {
            found.push(Finding {
                subject: subject(Condition::KeyEjectedRepeatedly),
                masked: Some(key.masked.clone()),
                reason: format!(
                    "ejected {} times for provider faults; last: {}",
                    key.ejections, ejection.reason
                ),
                until: (!ejection.left.is_zero()).then(|| wall + ejection.left),
            });
        }
    }
    found
}

/// Every key out: with when the first one is expected back (a cooldown's
/// or an ejection's end; invalid and disabled keys do not come back by
/// themselves).
fn all_unavailable(view: &ProviderView, wall: SystemTime) -> Option<Finding> {
    if view.keys.is_empty() || view.keys.iter().any(|k| k.state == KeyState::Active) {
        return None;
    }
    let count = |state| view.keys.iter().filter(|k| k.state == state).count();
    let parts: Vec<String> = [
        (KeyState::CoolingDown, "cooling down"),
        (KeyState::Ejected, "ejected"),
        (KeyState::Invalid, "invalid"),
        (KeyState::Disabled, "disabled"),
    ]
    .into_iter()
    .filter_map(|(state, name)| match count(state) {
        0 => None,
        n => Some(format!("{n} {name}")),
    })
    .collect();
    let first_back = view
        .keys
        .iter()
        .filter_map(|k| match k.state {
            KeyState::CoolingDown => Some(k.cooldown_left),
            KeyState::Ejected => k.ejection.as_ref().map(|e| e.left),
            _ => None,
        })
        .min();
    Some(Finding {
        subject: Subject {
            condition: Condition::AllKeysUnavailable,
            provider: view.provider,
            key: None,
        },
        masked: None,
        reason: format!(
            "none of its {} keys can serve: {}",
            view.keys.len(),
            parts.join(", ")
        ),
        until: first_back.map(|left| wall + left),
    })
}

/// `text`, cut to `MAX_REASON_CHARS` characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, state: KeyState) -> KeyView {
        KeyView {
            id: KeyId::new(id),
            masked: format!("sk-ant-…{id}"),
            state,
            invalid_reason: None,
            ejections: 0,
            ejection: None,
            cooldown_left: Duration::ZERO,
        }
    }

    fn view(keys: Vec<KeyView>) -> ProviderView {
        ProviderView {
            provider: ProviderKind::Anthropic,
            keys,
            overloaded: None,
        }
    }

    const RULES: Rules = Rules { ejections: 2 };

    fn conditions(found: &[Finding]) -> Vec<Condition> {
        found.iter().map(|f| f.subject.condition).collect()
    }

    #[test]
    fn every_key_out_is_one_provider_condition_with_the_first_return() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut cooling = key("a", KeyState::CoolingDown);
        cooling.cooldown_left = Duration::from_secs(40);
        let mut ejected = key("b", KeyState::Ejected);
        ejected.ejections = 1;
        ejected.ejection = Some(EjectionView {
            reason: "internal server error".into(),
            left: Duration::from_secs(25),
        });
        let mut invalid = key("c", KeyState::Invalid);
        invalid.invalid_reason = Some("invalid x-api-key".into());
        let found = findings(&view(vec![cooling, ejected, invalid]), RULES, wall);
        assert_eq!(
            conditions(&found),
            [Condition::AllKeysUnavailable, Condition::KeyInvalid]
        );
        let all = &found[0];
        assert_eq!(all.until, Some(wall + Duration::from_secs(25)));
        assert_eq!(
            all.reason,
            "none of its 3 keys can serve: 1 cooling down, 1 ejected, 1 invalid"
        );
        assert_eq!(found[1].reason, "invalid x-api-key");
        assert_eq!(found[1].subject.key, Some(KeyId::new("c")));
    }

    #[test]
    fn keys_that_never_return_by_themselves_give_no_until() {
        let wall = SystemTime::now();
        let found = findings(
            &view(vec![
                key("a", KeyState::Invalid),
                key("b", KeyState::Disabled),
            ]),
            RULES,
            wall,
        );
        assert_eq!(found[0].subject.condition, Condition::AllKeysUnavailable);
        assert_eq!(found[0].until, None);
    }

    #[test]
    fn one_active_key_or_no_key_at_all_is_not_all_unavailable() {
        let wall = SystemTime::now();
        let found = findings(
            &view(vec![
                key("a", KeyState::CoolingDown),
                key("b", KeyState::Active),
            ]),
            RULES,
            wall,
        );
        assert!(found.is_empty());
        assert!(findings(&view(Vec::new()), RULES, wall).is_empty());
    }

    #[test]
    fn an_ejection_counts_from_the_configured_number_until_its_probe_passes() {
        let wall = SystemTime::now();
        let mut once = key("a", KeyState::Ejected);
        once.ejections = 1;
        once.ejection = Some(EjectionView {
            reason: "overloaded".into(),
            left: Duration::from_secs(30),
        });
        let mut again = once.clone();
        again.ejections = 2;
        let mut half_open = again.clone();
        half_open.state = KeyState::Active;
        half_open.ejection = Some(EjectionView {
            reason: "overloaded".into(),
            left: Duration::ZERO,
        });
        let spare = key("z", KeyState::Active);
        assert!(findings(&view(vec![once, spare.clone()]), RULES, wall).is_empty());
        let found = findings(&view(vec![again, spare.clone()]), RULES, wall);
        assert_eq!(conditions(&found), [Condition::KeyEjectedRepeatedly]);
        assert_eq!(found[0].until, Some(wall + Duration::from_secs(30)));
        assert!(found[0].reason.contains("ejected 2 times"));
        let found = findings(&view(vec![half_open, spare]), RULES, wall);
        assert_eq!(conditions(&found), [Condition::KeyEjectedRepeatedly]);
        assert_eq!(found[0].until, None, "its probe is due");
    }

    #[test]
    fn overload_is_a_provider_condition() {
        let mut view = view(vec![key("a", KeyState::Active)]);
        view.overloaded = Some((2, 3));
        let found = findings(&view, RULES, SystemTime::now());
        assert_eq!(conditions(&found), [Condition::ProviderOverloaded]);
        assert!(found[0].reason.starts_with("2 of 3 usable keys"));
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "é".repeat(MAX_REASON_CHARS + 10);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_REASON_CHARS + 1);
        assert_eq!(shorten("short"), "short");
    }
}
