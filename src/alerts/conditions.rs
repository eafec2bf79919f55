//! Which conditions are open and which of them to announce: a pure state
//! machine, with time passed in (`now` for the dedup window, `wall` for the
//! times shown), unit-tested with a fake clock.
//!
//! The rules, per subject (condition, provider, key):
//! - a condition found that was not open opens (`since` = now);
//! - an open condition is announced once, unless its subject was announced
//!   less than the dedup window ago: then it waits, and is announced when
//!   the window has passed if it still holds;
//! - an open condition no longer found ends; if it was announced, a
//!   recovery message closes it, else it ends silently.
//!
//! So a flapping condition (keys cooling down, back, cooling again) costs
//! at most one alert and one recovery per window, and a condition that
//! lasts is never left unannounced for longer than the window.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;

use super::event::{Alert, AlertKind, Finding, Subject};
use crate::domain::{KeyId, ProviderKind};

/// A condition open now, as `GET /api/alerts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCondition {
    /// The condition, e.g. `key_invalid`.
    pub event: &'static str,
    pub provider: ProviderKind,
    pub key_id: Option<KeyId>,
    /// The key's masked form, for key conditions.
    pub key: Option<String>,
    pub reason: String,
    #[serde(serialize_with = "rfc3339")]
    pub since: SystemTime,
    #[serde(serialize_with = "rfc3339_opt")]
    pub until: Option<SystemTime>,
    /// Whether a message went out for it (false while dedup holds it back).
    pub announced: bool,
}

struct Open {
    /// The latest finding (reason and `until` follow the pool).
    finding: Finding,
    since: SystemTime,
    announced: bool,
}

pub struct Conditions {
    window: Duration,
    open: HashMap<Subject, Open>,
    /// When each subject was last announced; forgotten once the window has
    /// passed, so this stays as small as the set of recent alerts.
    announced_at: HashMap<Subject, Instant>,
}

impl Conditions {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            open: HashMap::new(),
            announced_at: HashMap::new(),
        }
    }

    /// Takes what holds now for `provider` (its conditions not in
    /// `findings` have ended) and returns the messages to send.
    pub fn update(
        &mut self,
        provider: ProviderKind,
        findings: Vec<Finding>,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Alert> {
        let window = self.window;
        self.announced_at
            .retain(|_, at| now.saturating_duration_since(*at) < window);
        let mut alerts = Vec::new();
        let ended: Vec<Subject> = self
            .open
            .keys()
            .filter(|s| s.provider == provider && !findings.iter().any(|f| &f.subject == *s))
            .cloned()
            .collect();
        for subject in ended {
            if let Some(open) = self.open.remove(&subject)
                && open.announced
            {
                alerts.push(recovery(&open, wall));
            }
        }
        for finding in findings {
            let subject = finding.subject.clone();
            let held_back = self.announced_at.contains_key(&subject);
            let open = self.open.entry(subject.clone()).or_insert_with(|| Open {
                finding: finding.clone(),
                since: wall,
                announced: false,
            });
            open.finding = finding;
            if !open.announced && !held_back {
                open.announced = true;
                self.announced_at.insert(subject, now);
                alerts.push(opening(open));
            }
        }
        alerts
    }

    /// Every open condition, oldest first.
    pub fn open(&self) -> Vec<OpenCondition> {
        let mut open: Vec<(&Subject, &Open)> = self.open.iter().collect();
        open.sort_by_key(|(subject, open)| {
            (
                open.since,
                subject.condition,
                subject.provider.as_str(),
                subject.key.as_ref().map(KeyId::as_str),
            )
        });
        open.into_iter()
            .map(|(subject, open)| OpenCondition {
                event: subject.condition.as_str(),
                provider: subject.provider,
                key_id: subject.key.clone(),
                key: open.finding.masked.clone(),
                reason: open.finding.reason.clone(),
                since: open.since,
                until: open.finding.until,
                announced: open.announced,
            })
            .collect()
    }
}

fn opening(open: &Open) -> Alert {
    Alert {
        kind: AlertKind::Opened(open.finding.subject.condition),
        provider: Some(open.finding.subject.provider),
        key: open.finding.key(),
        reason: open.finding.reason.clone(),
        since: open.since,
        until: open.finding.until,
    }
}

fn recovery(open: &Open, wall: SystemTime) -> Alert {
    Alert {
        kind: AlertKind::Recovered(open.finding.subject.condition),
        provider: Some(open.finding.subject.provider),
        key: open.finding.key(),
        reason: open.finding.reason.clone(),
        since: open.since,
        until: Some(wall),
    }
}

/// RFC 3339 to the second, UTC: what people and the JSON bodies read.
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_time(*time))
}

fn rfc3339_opt<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&format_time(*time)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::event::Condition;

    const WINDOW: Duration = Duration::from_secs(900);

    /// A fake clock: seconds since its start.
    struct Clock {
        start: Instant,
        wall: SystemTime,
    }

    impl Clock {
        fn new() -> Self {
            Self {
                start: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            }
        }

        fn at(&self, secs: u64) -> (Instant, SystemTime) {
            let offset = Duration::from_secs(secs);
            (self.start + offset, self.wall + offset)
        }
    }

    fn finding(condition: Condition, key: Option<&str>) -> Finding {
        Finding {
            subject: Subject {
                condition,
                provider: ProviderKind::Anthropic,
                key: key.map(KeyId::new),
            },
            masked: key.map(|_| "sk-ant-…Xa1b".to_string()),
            reason: "because".into(),
            until: None,
        }
    }

    fn step(
        conditions: &mut Conditions,
        clock: &Clock,
        secs: u64,
        findings: &[Finding],
    ) -> Vec<AlertKind> {
        let (now, wall) = clock.at(secs);
        conditions
            .update(ProviderKind::Anthropic, findings.to_vec(), now, wall)
            .into_iter()
            .map(|a| a.kind)
            .collect()
    }

    const INVALID: AlertKind = AlertKind::Opened(Condition::KeyInvalid);
    const VALID_AGAIN: AlertKind = AlertKind::Recovered(Condition::KeyInvalid);

    #[test]
    fn a_condition_is_announced_once_and_closed_by_its_recovery() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let bad = [finding(Condition::KeyInvalid, Some("k1"))];
        assert_eq!(step(&mut conditions, &clock, 0, &bad), [INVALID]);
        for secs in 1..5 {
            assert!(step(&mut conditions, &clock, secs, &bad).is_empty());
        }
        let open = conditions.open();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].event, "key_invalid");
        assert_eq!(open[0].since, clock.at(0).1, "since the first sighting");
        assert!(open[0].announced);
        assert_eq!(step(&mut conditions, &clock, 5, &[]), [VALID_AGAIN]);
        assert!(conditions.open().is_empty());
        assert!(step(&mut conditions, &clock, 6, &[]).is_empty());
    }

    #[test]
    fn a_condition_back_inside_the_window_waits_for_the_window_to_pass() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let bad = [finding(Condition::KeyInvalid, Some("k1"))];
        assert_eq!(step(&mut conditions, &clock, 0, &bad), [INVALID]);
        assert_eq!(step(&mut conditions, &clock, 10, &[]), [VALID_AGAIN]);
        // It flaps: back, gone, back, all inside the window: no message.
        assert!(step(&mut conditions, &clock, 20, &bad).is_empty());
        assert!(!conditions.open()[0].announced, "open but held back");
        assert!(
            step(&mut conditions, &clock, 30, &[]).is_empty(),
            "unannounced: no recovery"
        );
        assert!(step(&mut conditions, &clock, 40, &bad).is_empty());
        assert!(step(&mut conditions, &clock, 899, &bad).is_empty());
        // Still there when the window has passed: announced now.
        assert_eq!(step(&mut conditions, &clock, 900, &bad), [INVALID]);
        assert_eq!(conditions.open()[0].since, clock.at(40).1);
        assert_eq!(step(&mut conditions, &clock, 901, &[]), [VALID_AGAIN]);
    }

    #[test]
    fn after_the_window_a_new_occurrence_is_announced_at_once() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let bad = [finding(Condition::KeyInvalid, Some("k1"))];
        assert_eq!(step(&mut conditions, &clock, 0, &bad), [INVALID]);
        assert_eq!(step(&mut conditions, &clock, 1, &[]), [VALID_AGAIN]);
        assert_eq!(step(&mut conditions, &clock, 1000, &bad), [INVALID]);
    }

    #[test]
    fn subjects_are_counted_apart_per_key_and_per_condition() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let k1 = finding(Condition::KeyInvalid, Some("k1"));
        let k2 = finding(Condition::KeyInvalid, Some("k2"));
        let all = finding(Condition::AllKeysUnavailable, None);
        assert_eq!(
            step(&mut conditions, &clock, 0, std::slice::from_ref(&k1)),
            [INVALID]
        );
        let alerts = step(&mut conditions, &clock, 1, &[k1.clone(), k2, all]);
        assert_eq!(
            alerts,
            [INVALID, AlertKind::Opened(Condition::AllKeysUnavailable)]
        );
        // Only k1 is left: k2 and "all unavailable" recover.
        let alerts = step(&mut conditions, &clock, 2, &[k1]);
        assert_eq!(alerts.len(), 2);
        assert!(alerts.contains(&VALID_AGAIN));
        assert!(alerts.contains(&AlertKind::Recovered(Condition::AllKeysUnavailable)));
    }

    #[test]
    fn other_providers_conditions_are_left_alone() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let bad = [finding(Condition::ProviderOverloaded, None)];
        step(&mut conditions, &clock, 0, &bad);
        let (now, wall) = clock.at(1);
        assert!(
            conditions
                .update(ProviderKind::OpenAI, Vec::new(), now, wall)
                .is_empty()
        );
        assert_eq!(conditions.open().len(), 1);
    }

    #[test]
    fn the_recovery_carries_the_span_and_the_latest_reason() {
        let clock = Clock::new();
        let mut conditions = Conditions::new(WINDOW);
        let mut bad = finding(Condition::AllKeysUnavailable, None);
        let (now, wall) = clock.at(0);
        conditions.update(ProviderKind::Anthropic, vec![bad.clone()], now, wall);
        bad.reason = "now worse".into();
        let (now, wall) = clock.at(3);
        conditions.update(ProviderKind::Anthropic, vec![bad], now, wall);
        let (now, wall) = clock.at(7);
        let alerts = conditions.update(ProviderKind::Anthropic, Vec::new(), now, wall);
        assert_eq!(alerts[0].since, clock.at(0).1);
        assert_eq!(alerts[0].until, Some(clock.at(7).1));
        assert_eq!(alerts[0].reason, "now worse");
    }
}
