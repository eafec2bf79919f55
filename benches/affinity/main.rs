//! Cache affinity's cost per request (issue 15): a program that measures
//! and prints. It runs what a request with affinity on adds to one without
//! it: finding the request's session (from its `x-session-id` header, or
//! by hashing the body's cacheable prefix when it has none), looking the
//! session up in a table holding `AFFINITY_MAX_SESSIONS` (100,000) others,
//! and binding it again once answered. The body is the one
//! `keygate-bench --sessions` sends: a system prompt of about 1,600
//! tokens. Printed: nanoseconds per request, median of 7 rounds of
//! 200,000 requests each, over 10,000 live sessions.
//!
//! `keygate-bench --sessions` measures the same thing end to end, but its
//! CPU per request varies by more than a lookup costs from run to run;
//! this isolates it.
//!
//! Run: `cargo bench --bench affinity`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderValue;
use keygate::affinity::{Affinity, AffinitySettings, SessionParts};
use keygate::domain::ProviderKind;
use serde_json::value::RawValue;

const ROUNDS: usize = 7;
const REQUESTS_PER_ROUND: usize = 200_000;
const LIVE_SESSIONS: usize = 10_000;
const SCOPES: [&str; 3] = ["org-a", "org-b", "org-c"];

fn main() -> anyhow::Result<()> {
    let system = "You are a careful assistant. ".repeat(230);
    let body = |session: usize| {
        serde_json::to_vec(&serde_json::json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "system": system,
            "messages": [{"role": "user", "content": format!("Question {session}?")}],
        }))
    };
    let bodies = (0..LIVE_SESSIONS)
        .map(body)
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    let headers = (0..LIVE_SESSIONS)
        .map(|i| HeaderValue::from_str(&format!("session-{i:08}")))
        .collect::<Result<Vec<HeaderValue>, _>>()?;
    let scopes: Vec<Arc<str>> = SCOPES.iter().map(|s| Arc::from(*s)).collect();
    println!(
        "cache affinity per request: body {} bytes, {LIVE_SESSIONS} live sessions in a table of {}, \
         median of {ROUNDS} rounds of {REQUESTS_PER_ROUND} requests",
        bodies[0].len(),
        AffinitySettings::default().max_sessions,
    );

    let affinity = Affinity::new(AffinitySettings::default());
    fill_with_strangers(&affinity, &bodies[0])?;
    let with_header = measure(|i| {
        let n = i % LIVE_SESSIONS;
        request(
            &affinity,
            Some(&headers[n]),
            &bodies[n],
            None,
            &scopes[n % 3],
        );
    });
    // Where each body's prefix is, as the route's own parse finds it.
    let parts = bodies
        .iter()
        .map(|body| prefix_parts(body))
        .collect::<Result<Vec<_>, _>>()?;
    let from_parts = measure(|i| {
        let n = i % LIVE_SESSIONS;
        request(&affinity, None, &bodies[n], Some(&parts[n]), &scopes[n % 3]);
    });
    let read_again = measure(|i| {
        let n = i % LIVE_SESSIONS;
        request(&affinity, None, &bodies[n], None, &scopes[n % 3]);
    });
    println!("| session from | ns per request |");
    println!("|---|---:|");
    println!("| `x-session-id` header | {with_header:.0} |");
    println!(
        "| hash of the cacheable prefix (no header), found by the route's parse | {from_parts:.0} |"
    );
    println!(
        "| the same, the body read again (a call without the route's parts) | {read_again:.0} |"
    );
    Ok(())
}

/// One request's affinity work: its session, the scope it is bound to,
/// and the binding renewed when it is answered.
fn request(
    affinity: &Affinity,
    header: Option<&HeaderValue>,
    body: &[u8],
    parts: Option<&SessionParts>,
    scope: &Arc<str>,
) {
    let Some(session) = affinity.session(
        ProviderKind::Anthropic,
        Some("claude-sonnet-4-5"),
        header,
        body,
        parts,
    ) else {
        panic!("a 6 KB prompt is long enough to cache");
    };
    black_box(affinity.scope_of(&session));
    affinity.bind(&session, scope.clone());
}

/// The session parts of `body` (a route finds them in its own parse).
fn prefix_parts(body: &[u8]) -> anyhow::Result<SessionParts> {
    #[derive(serde::Deserialize)]
    struct Prefix<'a> {
        #[serde(borrow)]
        system: Option<&'a RawValue>,
        #[serde(borrow)]
        messages: Vec<&'a RawValue>,
    }
    let prefix: Prefix<'_> = serde_json::from_slice(body)?;
    Ok(SessionParts::of(
        body,
        None,
        None,
        prefix.system,
        None,
        prefix.messages.first().copied(),
    ))
}

/// Fills the table to its bound with other sessions, so lookups run
/// against a full table as on a busy gateway.
fn fill_with_strangers(affinity: &Affinity, body: &[u8]) -> anyhow::Result<()> {
    let scope: Arc<str> = Arc::from("org-z");
    for i in 0..AffinitySettings::default().max_sessions {
        let header = HeaderValue::from_str(&format!("stranger-{i:08}"))?;
        request(affinity, Some(&header), body, None, &scope);
    }
    Ok(())
}

/// Median nanoseconds per call of `one` over `ROUNDS` rounds.
fn measure(mut one: impl FnMut(usize)) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for i in 0..REQUESTS_PER_ROUND {
                one(i);
            }
            started.elapsed().as_nanos() as f64 / REQUESTS_PER_ROUND as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}
