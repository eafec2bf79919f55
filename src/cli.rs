//! The command line: `keygate` (serve, the default), `keygate seed`,
//! `keygate demo`, the
//! stored-key commands (`keygate keys …`), `keygate rotate-encryption-key`
//! and `keygate store copy`.
//!
//! Secrets given on the command line (`--key`, `--new-key`) are parsed into
//! `SecretString` with a parser that cannot fail, so neither clap's error
//! messages nor `Debug` can echo them; they are validated by the commands,
//! whose messages never quote them.

use std::convert::Infallible;
use std::path::PathBuf;

use crate::domain::ProviderKind;
use crate::domain::key_fields::{CacheScope, KeyWeight};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about = "An LLM API gateway that rotates a pool of provider API keys"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Import the keys from the environment into the database, then exit.
    Seed,
    /// See keygate work in 30 seconds: a simulated upstream with a mixed
    /// pool (healthy, rate-limiting, overloaded and rejected keys), light
    /// traffic, and the dashboard. Needs no real key and no internet;
    /// ignores `.env`.
    Demo {
        /// Port to serve on (0: any free port).
        #[arg(long, default_value_t = 3001)]
        port: u16,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Keep the demo's database here (default: a temporary directory,
        /// removed on exit).
        #[arg(long, value_name = "DIR")]
        data: Option<std::path::PathBuf>,
    },
    /// List, add, remove, switch and test the stored provider keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move the stored data from one database to another.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Re-seal every stored key under a new encryption key, in one
    /// transaction. Stop keygate first: a running instance keeps the old key.
    RotateEncryptionKey {
        /// The new key: 64 hex characters (e.g. from `openssl rand -hex 32`),
        /// or `-` to read it from stdin and keep it out of shell history.
        #[arg(long, value_name = "HEX", value_parser = secret)]
        new_key: SecretString,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List stored keys (masked; nothing is decrypted).
    List {
        /// Only this provider's keys.
        #[arg(long, value_name = "PROVIDER")]
        provider: Option<ProviderKind>,
    },
    /// Store a new key.
    Add {
        #[arg(long, value_name = "PROVIDER")]
        provider: ProviderKind,
        /// The API key, or `-` to read it from stdin (keeps it out of shell
        /// history and the process list).
        #[arg(
            long,
            value_name = "KEY",
            value_parser = secret,
            required_unless_present = "from_file",
            conflicts_with = "from_file"
        )]
        key: Option<SecretString>,
        /// Store every key of a file (one a line, or a JSON array), or of
        /// stdin with `-`; keys already stored are skipped.
        #[arg(long, value_name = "PATH", conflicts_with = "label")]
        from_file: Option<PathBuf>,
        /// A name shown instead of the masked key (e.g. team-a).
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// Share of traffic under the weighted strategy (a new key: 1 if
        /// not given; with --from-file, given to stored keys too).
        #[arg(long, value_name = "N", value_parser = weight)]
        weight: Option<KeyWeight>,
        /// The organisation or workspace whose prompt cache the key uses
        /// (keys with the same scope share a cache); unset: its own. With
        /// --from-file, given to stored keys too.
        #[arg(long, value_name = "SCOPE", value_parser = scope)]
        scope: Option<CacheScope>,
    },
    /// Delete a stored key and its saved state.
    Remove(KeyRef),
    /// Switch a key on.
    Enable(KeyRef),
    /// Switch a key off: it is kept but never picked.
    Disable(KeyRef),
    /// Check keys against their upstream (GET /v1/models) and record the
    /// verdicts; exits non-zero if any key is not ok.
    Test {
        /// Only this provider's keys.
        #[arg(long, value_name = "PROVIDER")]
        provider: Option<ProviderKind>,
        /// Only the key with this id.
        #[arg(long = "key", value_name = "ID")]
        key_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy keys, key state, provider counters and the usage ledger from
    /// one database to another (e.g. SQLite to PostgreSQL), in one
    /// transaction. Running it again adds nothing. ENCRYPTION_KEY must
    /// open the keys on both sides. Stop keygate on the source first.
    Copy {
        /// The database to read, e.g. sqlite://data/keygate.db.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to write, e.g. postgres://keygate@db/keygate.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// A stored key, by id; the provider is looked up when not given.
#[derive(Debug, Args)]
pub struct KeyRef {
    /// The key's id, as `keygate keys list` shows it (key_…).
    pub id: String,
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<ProviderKind>,
}

fn secret(text: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(text))
}

/// `--scope`, checked by the same rule as the admin API's.
fn scope(text: &str) -> Result<CacheScope, String> {
    text.parse::<CacheScope>().map_err(|e| e.to_string())
}

/// `--weight`, checked by the same rule as the admin API's.
fn weight(text: &str) -> Result<KeyWeight, String> {
    text.parse::<KeyWeight>()
        .map_err(|e| format!("{e} (a whole number)"))
}
