//! `keygate keys test`: opens the chosen keys, checks each against its
//! upstream (`key_check::check_keys`: bounded concurrency, a timeout per key),
//! prints one verdict line per key and records the verdict as the key's
//! saved health, so the next start (and `keys list`) knows it. Progress goes
//! to stderr so stdout holds only the verdicts.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::{CommandError, one_line, provider_of, providers};
use crate::config::Config;
use crate::domain::{KeyEntry, ProviderKind, RateLimits};
use crate::key_check::{KeyCheck, check_keys};
use crate::keypool::snapshot::SavedHealth;
use crate::providers::Upstreams;
use crate::scrub::Scrubber;
use crate::startup::open_vault;
use crate::store::pool_state::save_health;
use crate::vault::Vault;

/// Checks the keys of `provider` (or all providers), or only the key
/// `key_id`; fails if any key is not ok.
pub async fn run(
    config: &Config,
    provider: Option<ProviderKind>,
    key_id: Option<String>,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let (vault, _source) = open_vault(config).await?;
    let batches = keys_to_test(&vault, provider, key_id).await?;
    let total: usize = batches.iter().map(|(_, keys)| keys.len()).sum();
    if total == 0 {
        eprintln!("no stored keys to test");
        return Ok(());
    }
    // The scrubber learns every key under test, so no upstream echo of one
    // reaches the verdicts printed or stored.
    let scrubber = Arc::new(Scrubber::new());
    for (_, keys) in &batches {
        for key in keys {
            scrubber.learn(&key.secret);
        }
    }
    let upstreams = Upstreams::new(config, scrubber)?;
    let mut failed = 0;
    for (provider, keys) in batches {
        if provider == ProviderKind::GoogleCse {
            // Google has no free check: say so before spending anything.
            eprintln!(
                "note: checking a google_cse key makes one real search, which counts against \
                 its project's daily quota"
            );
        }
        let progress = Progress::new(provider);
        let results = check_keys(
            &upstreams,
            provider,
            keys,
            config.key_test_timeout,
            |done, of| progress.show(done, of),
        )
        .await;
        progress.finish();
        for (key, check, limits) in &results {
            let health = match check {
                KeyCheck::Ok => Some(SavedHealth::Active),
                KeyCheck::Invalid { reason, .. } => Some(SavedHealth::Invalid {
                    reason: reason.clone(),
                }),
                KeyCheck::Unreachable { .. } => None,
            };
            if let Some(health) = health {
                save_health(vault.store(), provider, &key.id, health).await?;
            }
            writeln!(
                out,
                "{}  {}  {}{}",
                key.id,
                one_line(key.label()),
                verdict(check),
                headroom(limits)
            )?;
            if *check != KeyCheck::Ok {
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::ChecksFailed { failed, total });
    }
    Ok(())
}

/// The decrypted keys to check, per provider; providers without keys are
/// left out. Disabled keys are checked too: an operator may want to know
/// whether one can be switched back on.
async fn keys_to_test(
    vault: &Vault,
    provider: Option<ProviderKind>,
    key_id: Option<String>,
) -> Result<Vec<(ProviderKind, Vec<KeyEntry>)>, CommandError> {
    if let Some(id) = key_id {
        let provider = provider_of(vault, &id, provider).await?;
        return match vault.open_one(provider, &id).await? {
            Some(key) => Ok(vec![(provider, vec![key])]),
            None => Err(CommandError::UnknownKey {
                id,
                provider: Some(provider),
            }),
        };
    }
    let mut batches = Vec::new();
    for provider in providers(provider) {
        let keys = vault.load(provider).await?;
        if !keys.is_empty() {
            batches.push((provider, keys));
        }
    }
    Ok(batches)
}

/// What a check read the key has left, e.g. `  (searches left: 95 of 100
/// this month, 45 of 50 this hour)`; empty when the upstream did not say.
fn headroom(limits: &RateLimits) -> String {
    let mut parts = Vec::new();
    if let Some(month) = limits.month {
        parts.push(format!("{} of {} this month", month.remaining, month.limit));
    }
    if let Some(short) = limits.requests {
        parts.push(format!(
            "{} of {} this window",
            short.remaining, short.limit
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("  (left: {})", parts.join(", "))
}

/// How a check reads in the output; upstream reasons arrive scrubbed of key
/// material (`key_check::check_key`).
fn verdict(check: &KeyCheck) -> String {
    match check {
        KeyCheck::Ok => "ok".to_string(),
        KeyCheck::Invalid {
            status: Some(status),
            reason,
        } => format!("invalid ({status}, {})", one_line(reason)),
        KeyCheck::Invalid {
            status: None,
            reason,
        } => format!("invalid ({})", one_line(reason)),
        KeyCheck::Unreachable { reason } => format!("unreachable ({})", one_line(reason)),
    }
}

/// `testing anthropic keys: 3/10` on stderr: rewritten in place on a
/// terminal, one line per step otherwise (logs and CI output).
struct Progress {
    provider: ProviderKind,
    terminal: bool,
}

impl Progress {
    fn new(provider: ProviderKind) -> Self {
        Self {
            provider,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: usize, total: usize) {
        let provider = self.provider;
        if self.terminal {
            eprint!("\rtesting {provider} keys: {done}/{total}");
        } else {
            eprintln!("testing {provider} keys: {done}/{total}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_read_as_documented() {
        assert_eq!(verdict(&KeyCheck::Ok), "ok");
        let invalid = KeyCheck::Invalid {
            status: Some(401),
            reason: "invalid x-api-key".into(),
        };
        assert_eq!(verdict(&invalid), "invalid (401, invalid x-api-key)");
        let unreachable = KeyCheck::Unreachable {
            reason: "timed out\nafter 10s".into(),
        };
        assert_eq!(verdict(&unreachable), "unreachable (timed out after 10s)");
    }
}
