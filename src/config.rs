//! Typed configuration, read once at startup from the environment (and a
//! `.env` file in development). Every duration, limit and upstream URL is a
//! field here so tests shorten them instead of sleeping.
//!
//! Secrets are held as `SecretString`/`MasterKey`, which never print, and the
//! config as a whole has no `Debug`/`Serialize`, so it cannot be dumped.
//!
//! - `alerts`: the alert channels and bounds (`ALERT_*`, `SMTP_URL`).
//! - `cluster`: sharing state with other replicas (`REDIS_URL`,
//!   `KEYGATE_CLUSTER`).
//! - `search`: the web-search settings (`GOOGLE_CSE_CX`, `SEARCH_*`).
//! - `key_files`: keys from a file (`<PROVIDER>_API_KEYS_FILE`).

mod alerts;
mod cluster;
mod env_keys;
pub mod key_files;
mod search;

pub use cluster::{ClusterSettings, DEFAULT_CLUSTER};
pub use search::SearchSettings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::affinity::AffinitySettings;
use crate::alerts::AlertSettings;
use crate::crypto::MasterKey;
use crate::domain::ProviderKind;
use crate::domain::browser::{AllowedHosts, CorsOrigins, is_loopback_name};
use crate::domain::key_fields::{KeyRuleError, KeySecret, KeySpec};
use crate::keypool::Strategy;
use crate::ledger::{LedgerSettings, WriterSettings};
use crate::limits::GateSettings;
use crate::store::is_postgres_url;

/// A variable that is present but unusable; startup stops and names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// One provider's upstream and the keys the environment brings for it.
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Keys from `<PROVIDER>_API_KEYS`, `<PROVIDER>_API_KEY` and the file
    /// `<PROVIDER>_API_KEYS_FILE` names, deduplicated, imported into the
    /// store at startup, with the cache scope, label and weight the array
    /// may give each.
    pub keys: Vec<KeySpec>,
    pub base_url: String,
    /// How this provider's pool picks keys.
    pub strategy: Strategy,
}

pub struct Config {
    pub host: String,
    pub port: u16,
    /// SQLite or PostgreSQL (`store::is_postgres_url`); may hold a
    /// password: print it only through `store::redacted_url`.
    pub database_url: String,
    /// `None` means "use or create `<data dir>/encryption.key`" (SQLite
    /// only: with PostgreSQL it is required).
    pub encryption_key: Option<MasterKey>,
    /// `None` disables the admin routes (they answer 403).
    pub admin_api_key: Option<SecretString>,
    /// Bearer token `GET /metrics` requires; `None` leaves it open.
    pub metrics_token: Option<SecretString>,
    pub providers: Vec<ProviderConfig>,
    /// Cooldown after a 429 that carries no usable `retry-after`.
    pub key_cooldown: Duration,
    /// Longest cooldown, whatever the upstream hints or the ladder climbs to.
    pub key_cooldown_max: Duration,
    /// How often changed key state is written to the database.
    pub state_flush_interval: Duration,
    /// Limit on checking one key (`POST …/test`, `keygate keys test`).
    pub key_test_timeout: Duration,
    /// How long requests in flight may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// Longest time a connection may wait for a complete request head,
    /// from its accept or its last response.
    pub header_read_timeout: Duration,
    /// Longest time a request body may take to arrive after its head.
    pub body_read_timeout: Duration,
    /// Most client connections open at once; `None`: sized from the
    /// descriptor limit at start (`server::limits`).
    pub max_connections: Option<usize>,
    /// Upstream attempts per client request.
    pub max_attempts: u32,
    /// Per-attempt limit on an upstream call.
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// `OUTLIER_CONSECUTIVE_FAILURES`: provider faults in a row that eject
    /// a key while its siblings succeed; 0 turns ejection off.
    pub outlier_consecutive_failures: u32,
    /// `OUTLIER_EJECTION_SECS`: the first ejection's length (doubling).
    pub outlier_ejection: Duration,
    /// `KEY_NO_ACCESS_SECS`: how long a key sits out a model it has no
    /// access to.
    pub key_no_access: Duration,
    /// `KEY_RECHECK_SECS`: how often invalid keys are checked again (and
    /// revived when they pass); `None` turns the checks off.
    pub key_recheck: Option<Duration>,
    /// `MAX_UPSTREAM_BODY_BYTES`: the largest successful upstream answer
    /// read whole; past it the attempt is the provider's fault.
    pub max_upstream_body: usize,
    /// Which bodies are large, how many of them are converted at once and
    /// how long one waits for its turn (see `limits::ConversionGate`).
    pub conversions: GateSettings,
    /// Longest silence between upstream stream events.
    pub stream_idle_timeout: Duration,
    /// `GATEWAY_API_KEYS`: keys clients must present; empty means open.
    pub client_keys: Vec<SecretString>,
    /// Whether `GATEWAY_API_KEYS` was given at all (`[]` is given, and
    /// open; the log says which).
    pub client_keys_given: bool,
    /// `CORS_ORIGINS`: the pages browsers may call keygate from (unset:
    /// pages served from this machine, on any port).
    pub cors_origins: CorsOrigins,
    /// The `Host` names keygate answers to (`ALLOWED_HOSTS` and loopback
    /// names). `None` leaves `Host` unchecked: bound to a non-loopback
    /// address with `ALLOWED_HOSTS` unset, or `ALLOWED_HOSTS=["*"]`.
    pub allowed_hosts: Option<AllowedHosts>,
    /// The usage ledger: `USAGE_LEDGER`, `USAGE_QUEUE_CAPACITY`,
    /// `USAGE_RETENTION_DAYS`, `USAGE_FLUSH_SECS`.
    pub ledger: LedgerSettings,
    /// Alert channels (webhooks, e-mail), the dedup window and every
    /// delivery bound.
    pub alerts: AlertSettings,
    /// `REDIS_URL`, `KEYGATE_CLUSTER`: `None` runs this process alone.
    pub cluster: Option<ClusterSettings>,
    /// Web search: Google's engine id, the `auto` order, the answer cache.
    pub search: SearchSettings,
    /// `PRICES_FILE`: a JSON price file over the built-in prices.
    pub prices_file: Option<PathBuf>,
    /// `PRICES_POLL_SECS`: how often the price file is checked for changes.
    pub prices_poll: Duration,
    /// `KEY_AFFINITY`, `AFFINITY_MAX_SESSIONS`: keeping a conversation on
    /// keys that share its prompt cache.
    pub affinity: AffinitySettings,
    pub json_logs: bool,
    /// `RUST_LOG`-style filter; `None` uses the quiet default.
    pub log_filter: Option<String>,
}

impl Config {
    /// Reads the process environment, then `dotenv` (the `.env` file's
    /// variables) for what the environment does not set.
    pub fn from_env(dotenv: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .or_else(|| dotenv.get(name).cloned())
        })
    }

    /// Reads configuration through `lookup`, so tests can pass a map instead
    /// of mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let providers = ProviderKind::ALL
            .iter()
            .map(|&kind| provider_config(kind, &get))
            .collect::<Result<Vec<_>, _>>()?;
        let host = get("HOST").unwrap_or_else(|| "127.0.0.1".into());
        let allowed_hosts = allowed_hosts(&get, &host)?;
        let database_url = database_url(get("DATABASE_URL"))?;
        Ok(Self {
            host,
            port: parse_number(&get, "PORT", 3001)?,
            encryption_key: encryption_key(get("ENCRYPTION_KEY"), &database_url)?,
            database_url,
            admin_api_key: secret_setting("ADMIN_API_KEY", get("ADMIN_API_KEY"))?,
            metrics_token: secret_setting("METRICS_TOKEN", get("METRICS_TOKEN"))?,
            providers,
            key_cooldown: parse_secs(&get, "KEY_COOLDOWN_SECS", 60.0)?,
            key_cooldown_max: parse_secs(&get, "KEY_COOLDOWN_MAX_SECS", 900.0)?,
            state_flush_interval: parse_secs(&get, "STATE_FLUSH_SECS", 5.0)?
                .max(Duration::from_millis(10)),
            key_test_timeout: parse_secs(&get, "KEY_TEST_TIMEOUT_SECS", 10.0)?,
            shutdown_grace: parse_secs(&get, "SHUTDOWN_GRACE_SECS", 30.0)?,
            header_read_timeout: parse_secs(&get, "HEADER_READ_TIMEOUT_SECS", 10.0)?
                .max(Duration::from_millis(10)),
            body_read_timeout: parse_secs(&get, "BODY_READ_TIMEOUT_SECS", 30.0)?
                .max(Duration::from_millis(10)),
            max_connections: get("MAX_CONNECTIONS")
                .map(|_| parse_number(&get, "MAX_CONNECTIONS", 1_usize))
                .transpose()?
                .map(|cap| cap.max(1)),
            max_attempts: parse_number(&get, "MAX_ATTEMPTS", 3)?.max(1),
            upstream_timeout: parse_secs(&get, "UPSTREAM_TIMEOUT_SECS", 600.0)?,
            connect_timeout: parse_secs(&get, "UPSTREAM_CONNECT_TIMEOUT_SECS", 10.0)?,
            body_limit: parse_number(&get, "MAX_BODY_BYTES", 32 * 1024 * 1024)?,
            key_no_access: parse_secs(&get, "KEY_NO_ACCESS_SECS", 3600.0)?,
            outlier_consecutive_failures: parse_number(&get, "OUTLIER_CONSECUTIVE_FAILURES", 5)?,
            outlier_ejection: parse_secs(&get, "OUTLIER_EJECTION_SECS", 30.0)?,
            key_recheck: Some(parse_secs(&get, "KEY_RECHECK_SECS", 3600.0)?)
                .filter(|interval| !interval.is_zero()),
            max_upstream_body: parse_number(&get, "MAX_UPSTREAM_BODY_BYTES", 64 * 1024 * 1024)?,
            conversions: GateSettings {
                large_body: parse_number(&get, "LARGE_BODY_BYTES", 1024 * 1024)?,
                concurrency: parse_number(&get, "LARGE_BODY_CONVERSIONS", 2)?.max(1),
                max_wait: parse_secs(&get, "LARGE_BODY_WAIT_SECS", 10.0)?,
            },
            stream_idle_timeout: parse_secs(&get, "STREAM_IDLE_TIMEOUT_SECS", 60.0)?,
            client_keys: match get("GATEWAY_API_KEYS") {
                Some(json) => parse_key_list("GATEWAY_API_KEYS", &json)?
                    .into_iter()
                    .map(SecretString::from)
                    .collect(),
                None => Vec::new(),
            },
            client_keys_given: get("GATEWAY_API_KEYS").is_some(),
            cors_origins: cors_origins(&get)?,
            allowed_hosts,
            ledger: ledger_settings(&get)?,
            alerts: alerts::alert_settings(&get)?,
            cluster: cluster::cluster_settings(&get)?,
            search: search::search_settings(&get)?,
            prices_file: get("PRICES_FILE").map(PathBuf::from),
            prices_poll: parse_secs(&get, "PRICES_POLL_SECS", 5.0)?.max(Duration::from_millis(10)),
            affinity: affinity_settings(&get)?,
            json_logs: get("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            log_filter: get("RUST_LOG"),
        })
    }

    /// The folder that holds the SQLite file; a generated encryption key is
    /// written next to it.
    pub fn data_dir(&self) -> PathBuf {
        if is_postgres_url(&self.database_url) {
            // No file of keygate's lives beside a PostgreSQL database.
            return PathBuf::from(".");
        }
        let path = self
            .database_url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        PathBuf::from(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    pub fn provider(&self, kind: ProviderKind) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.kind == kind)
    }
}

fn provider_config(
    kind: ProviderKind,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    let env = kind.env();
    let mut keys: Vec<KeySpec> = match get(env.keys) {
        Some(json) => env_keys::parse_key_specs(env.keys, &json)?,
        None => Vec::new(),
    };
    if let Some(single) = get(env.key) {
        let single = validate_key(env.key, single.trim())?;
        let secret = KeySecret::parse(SecretString::from(single))
            .map_err(|e| ConfigError::new(env.key, format!("a key {e}")))?;
        keys.push(KeySpec::bare(secret));
    }
    if let Some(path) = get(env.keys_file) {
        keys.extend(env_keys::file_key_specs(env.keys_file, &path)?);
    }
    let unique = env_keys::unique_specs(keys);
    let strategy = match get(env.strategy).or_else(|| get("KEY_STRATEGY")) {
        None => Strategy::default(),
        Some(name) => name.parse().map_err(|()| {
            let variable = if get(env.strategy).is_some() {
                env.strategy
            } else {
                "KEY_STRATEGY"
            };
            ConfigError::new(
                variable,
                format!("unknown strategy {name:?}; use one of {}", Strategy::NAMES),
            )
        })?,
    };
    let base_url = get(env.base_url).unwrap_or_else(|| env.default_base_url.to_string());
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(ConfigError::new(
            env.base_url,
            "must start with http:// or https://",
        ));
    }
    Ok(ProviderConfig {
        kind,
        keys: unique,
        base_url: base_url.trim_end_matches('/').to_string(),
        strategy,
    })
}

/// `ANTHROPIC_API_KEYS` is a JSON array of strings, as the Node backend read
/// it. dotenvy strips the quotes out of an unquoted `["a","b"]` in `.env`,
/// leaving `[a,b]`; that form is accepted too (keys contain no commas).
fn parse_key_list(variable: &'static str, text: &str) -> Result<Vec<String>, ConfigError> {
    let values: Vec<String> = match serde_json::from_str(text) {
        Ok(values) => values,
        Err(_) => unquoted_list(text).ok_or_else(|| {
            // serde's error would quote the input, which holds keys: say
            // what is wrong without echoing it.
            ConfigError::new(
                variable,
                "must be a JSON array of strings, e.g. [\"sk-ant-...\"]",
            )
        })?,
    };
    values
        .iter()
        .map(|key| validate_key(variable, key.trim()))
        .collect()
}

/// `[a, b]` without quotes, as dotenvy leaves a JSON array it unquoted.
fn unquoted_list(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(['"', '[', ']', '{', '}']) {
        return None;
    }
    Some(
        inner
            .split(',')
            .map(|item| item.trim().to_string())
            .filter(|item| !item.is_empty())
            .collect(),
    )
}

/// `CORS_ORIGINS`, a JSON array of origins (`"*"` for any).
fn cors_origins(get: &impl Fn(&str) -> Option<String>) -> Result<CorsOrigins, ConfigError> {
    let Some(json) = get("CORS_ORIGINS") else {
        return Ok(CorsOrigins::loopback());
    };
    let origins = string_list("CORS_ORIGINS", &json)?;
    CorsOrigins::parse(origins.iter().map(String::as_str))
        .map_err(|e| ConfigError::new("CORS_ORIGINS", e.to_string()))
}

/// `ALLOWED_HOSTS`, a JSON array of host names. Unset, `Host` is checked
/// only when keygate listens on loopback, where DNS rebinding is the way
/// in; there it must name loopback.
fn allowed_hosts(
    get: &impl Fn(&str) -> Option<String>,
    bind_host: &str,
) -> Result<Option<AllowedHosts>, ConfigError> {
    match get("ALLOWED_HOSTS") {
        Some(json) => {
            let names = string_list("ALLOWED_HOSTS", &json)?;
            AllowedHosts::parse(names.iter().map(String::as_str))
                .map_err(|e| ConfigError::new("ALLOWED_HOSTS", e.to_string()))
        }
        None if is_loopback_name(bind_host) => Ok(Some(AllowedHosts::loopback())),
        None => Ok(None),
    }
}

/// A JSON array of strings that are not secrets (also read unquoted, as
/// dotenvy leaves it).
fn string_list(variable: &'static str, text: &str) -> Result<Vec<String>, ConfigError> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| unquoted_list(text))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                format!("must be a JSON array of strings, got {text:?}"),
            )
        })
}

fn validate_key(variable: &'static str, key: &str) -> Result<String, ConfigError> {
    match KeySecret::parse(SecretString::from(key)) {
        Ok(_) => Ok(key.to_string()),
        Err(KeyRuleError::EmptyKey) => Err(ConfigError::new(variable, "contains an empty key")),
        Err(error) => Err(ConfigError::new(variable, format!("a key {error}"))),
    }
}

/// Shortest admin key accepted: the admin API can read and change every
/// key, so a guessable secret is refused rather than warned about.
pub const MIN_ADMIN_KEY_CHARS: usize = 16;

/// A secret clients present (`ADMIN_API_KEY`, `METRICS_TOKEN`), trimmed (a
/// padded value would otherwise lock people out: clients trim what they
/// send), at least `MIN_ADMIN_KEY_CHARS` long.
fn secret_setting(
    name: &'static str,
    value: Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let key = value.trim();
    if key.chars().count() < MIN_ADMIN_KEY_CHARS {
        return Err(ConfigError::new(
            name,
            format!(
                "must be at least {MIN_ADMIN_KEY_CHARS} characters (e.g. `openssl rand -hex 24`), \
                 or unset"
            ),
        ));
    }
    Ok(Some(SecretString::from(key)))
}

/// `DATABASE_URL`: SQLite (`sqlite:`, or a bare path as sqlx reads it) or
/// PostgreSQL (`postgres://`, `postgresql://`). Any other scheme is refused
/// rather than read as a file name (a `mysql://…` URL would otherwise
/// create a folder called `mysql:` holding a SQLite file).
fn database_url(value: Option<String>) -> Result<String, ConfigError> {
    let Some(url) = value.map(|v| v.trim().to_string()) else {
        return Ok("sqlite://data/keygate.db".into());
    };
    if url.starts_with("sqlite:") || is_postgres_url(&url) {
        return Ok(url);
    }
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
        });
    match scheme {
        // No scheme: a path, as sqlx reads it.
        None => Ok(url),
        Some(scheme) => Err(ConfigError::new(
            "DATABASE_URL",
            format!(
                "the {scheme:?} database is not supported; keygate stores its data in SQLite \
                 (sqlite://path/to/keygate.db, the default) or PostgreSQL \
                 (postgres://user@host/database)"
            ),
        )),
    }
}

/// `ENCRYPTION_KEY`, required with PostgreSQL: replicas sharing the
/// database must seal and open keys with one master key, so none may
/// generate its own (into a data folder the others cannot see).
fn encryption_key(
    value: Option<String>,
    database_url: &str,
) -> Result<Option<MasterKey>, ConfigError> {
    let key = value
        .map(|hex| {
            MasterKey::from_hex(&hex).map_err(|e| ConfigError::new("ENCRYPTION_KEY", e.to_string()))
        })
        .transpose()?;
    if key.is_none() && is_postgres_url(database_url) {
        return Err(ConfigError::new(
            "ENCRYPTION_KEY",
            "must be set when DATABASE_URL is a PostgreSQL database: every replica must use \
             the same key, so none is generated (create one with `openssl rand -hex 32`)",
        ));
    }
    Ok(key)
}

/// The usage ledger's settings; the queue and the retention are at least 1.
fn ledger_settings(get: &impl Fn(&str) -> Option<String>) -> Result<LedgerSettings, ConfigError> {
    let defaults = LedgerSettings::default();
    let enabled = match get("USAGE_LEDGER").map(|v| v.trim().to_ascii_lowercase()) {
        None => true,
        Some(v) if v == "on" => true,
        Some(v) if v == "off" => false,
        Some(v) => {
            return Err(ConfigError::new(
                "USAGE_LEDGER",
                format!("expected on or off, got {v:?}"),
            ));
        }
    };
    let at_least_one = |variable: &'static str, n: u64| {
        if n == 0 {
            Err(ConfigError::new(variable, "must be at least 1"))
        } else {
            Ok(n)
        }
    };
    let days = parse_number(&get, "USAGE_RETENTION_DAYS", 30_u64)?;
    let days = at_least_one("USAGE_RETENTION_DAYS", days)?.min(1_000_000);
    let capacity = parse_number(&get, "USAGE_QUEUE_CAPACITY", defaults.queue_capacity as u64)?;
    let capacity = at_least_one("USAGE_QUEUE_CAPACITY", capacity)?;
    Ok(LedgerSettings {
        enabled,
        queue_capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
        retention: Duration::from_secs(days * 86_400),
        prune_every: defaults.prune_every,
        writer: WriterSettings {
            batch_rows: defaults.writer.batch_rows,
            flush_every: parse_secs(
                get,
                "USAGE_FLUSH_SECS",
                defaults.writer.flush_every.as_secs_f64(),
            )?
            .max(Duration::from_millis(10)),
        },
    })
}

/// `KEY_AFFINITY` (`scope` or `off`) and `AFFINITY_MAX_SESSIONS` (at least 1).
fn affinity_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<AffinitySettings, ConfigError> {
    let defaults = AffinitySettings::default();
    let mode = match get("KEY_AFFINITY") {
        None => defaults.mode,
        Some(text) => text
            .parse()
            .map_err(|()| ConfigError::new("KEY_AFFINITY", "must be scope or off"))?,
    };
    Ok(AffinitySettings {
        mode,
        max_sessions: parse_number(get, "AFFINITY_MAX_SESSIONS", defaults.max_sessions)?.max(1),
    })
}

fn parse_number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| {
            ConfigError::new(variable, format!("expected a whole number, got {raw:?}"))
        }),
    }
}

/// Durations are decimal seconds ("60", "0.25") so tests can shorten them.
fn parse_secs(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: f64,
) -> Result<Duration, ConfigError> {
    let secs = match get(variable) {
        None => default,
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .ok_or_else(|| ConfigError::new(variable, format!("expected seconds, got {raw:?}")))?,
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_node_backend() {
        let config = config(&[]).unwrap();
        assert_eq!(config.port, 3001);
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.key_cooldown, Duration::from_secs(60));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.key_test_timeout, Duration::from_secs(10));
        assert_eq!(config.data_dir(), PathBuf::from("data"));
        assert!(config.encryption_key.is_none());
    }

    #[test]
    fn connection_limits_default_and_parse() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.body_read_timeout, Duration::from_secs(30));
        assert_eq!(
            defaults.max_connections, None,
            "sized from the descriptor limit"
        );
        let set = config(&[("BODY_READ_TIMEOUT_SECS", "1.5"), ("MAX_CONNECTIONS", "20")]);
        let set = set.unwrap();
        assert_eq!(set.body_read_timeout, Duration::from_millis(1500));
        assert_eq!(set.max_connections, Some(20));
        assert_eq!(
            config_err(&[("MAX_CONNECTIONS", "lots")]).variable,
            "MAX_CONNECTIONS"
        );
    }

    #[test]
    fn key_array_and_legacy_key_are_merged_without_duplicates() {
        let config = config(&[
            ("ANTHROPIC_API_KEYS", r#"["sk-ant-a", "sk-ant-b"]"#),
            ("ANTHROPIC_API_KEY", "sk-ant-a"),
        ])
        .unwrap();
        let keys: Vec<&str> = config.providers[0]
            .keys
            .iter()
            .map(|k| k.secret.secret().expose_secret())
            .collect();
        assert_eq!(keys, ["sk-ant-a", "sk-ant-b"]);
    }

    #[test]
    fn a_database_url_other_than_sqlite_or_postgres_is_refused_by_name() {
        for url in ["mysql://x", "mariadb:rest", "postgresql:rest"] {
            let error = config(&[("DATABASE_URL", url)]).err().unwrap().to_string();
            assert!(error.starts_with("invalid DATABASE_URL"), "{error}");
            assert!(error.contains("not supported"), "{error}");
        }
        for url in ["sqlite://data/k.db", "sqlite:k.db?mode=rwc"] {
            assert_eq!(config(&[("DATABASE_URL", url)]).unwrap().database_url, url);
        }
        assert_eq!(
            config(&[]).unwrap().database_url,
            "sqlite://data/keygate.db"
        );
    }

    #[test]
    fn postgres_is_accepted_with_an_explicit_encryption_key_only() {
        let key = "ab".repeat(32);
        for url in [
            "postgres://keygate@db/keygate",
            "postgresql://keygate:pw@db:5432/keygate?sslmode=require",
        ] {
            let config = config(&[("DATABASE_URL", url), ("ENCRYPTION_KEY", &key)]).unwrap();
            assert_eq!(config.database_url, url);
            let error = config_err(&[("DATABASE_URL", url)]);
            assert_eq!(error.variable, "ENCRYPTION_KEY");
            assert!(error.problem.contains("must be set"), "{}", error.problem);
            assert!(!error.to_string().contains("pw@"), "no URL is echoed");
        }
    }

    #[test]
    fn malformed_values_name_the_variable_and_never_echo_keys() {
        let err = config(&[("ANTHROPIC_API_KEYS", "sk-ant-secret-1,sk-ant-2")])
            .err()
            .unwrap();
        assert_eq!(err.variable, "ANTHROPIC_API_KEYS");
        assert!(!err.to_string().contains("secret-1"));
        let err = config(&[("ENCRYPTION_KEY", "0xabc")]).err().unwrap();
        assert_eq!(err.variable, "ENCRYPTION_KEY");
        let err = config(&[("KEY_COOLDOWN_SECS", "soon")]).err().unwrap();
        assert_eq!(err.variable, "KEY_COOLDOWN_SECS");
    }

    #[test]
    fn a_key_list_unquoted_by_dotenvy_is_still_read() {
        let config = config(&[("ANTHROPIC_API_KEYS", "[sk-ant-a,sk-ant-b]")]).unwrap();
        assert_eq!(config.providers[0].keys.len(), 2);
        let config = config_or_err("[]");
        assert_eq!(config.providers[0].keys.len(), 0);
    }

    fn config_or_err(keys: &str) -> Config {
        config(&[("ANTHROPIC_API_KEYS", keys)]).unwrap()
    }

    #[test]
    fn affinity_is_on_by_default_and_a_bad_setting_is_named() {
        let defaults = config(&[]).unwrap().affinity;
        assert_eq!(defaults.mode, crate::affinity::AffinityMode::Scope);
        assert_eq!(defaults.max_sessions, 100_000);
        let off = config(&[("KEY_AFFINITY", " OFF "), ("AFFINITY_MAX_SESSIONS", "0")]).unwrap();
        assert_eq!(off.affinity.mode, crate::affinity::AffinityMode::Off);
        assert_eq!(off.affinity.max_sessions, 1);
        assert_eq!(
            config_err(&[("KEY_AFFINITY", "sticky")]).variable,
            "KEY_AFFINITY"
        );
        assert_eq!(
            config_err(&[("AFFINITY_MAX_SESSIONS", "many")]).variable,
            "AFFINITY_MAX_SESSIONS"
        );
    }

    #[test]
    fn strategies_are_set_per_provider_or_for_all() {
        let config = config(&[
            ("KEY_STRATEGY", "least_used"),
            ("KEY_STRATEGY_OPENAI", "headroom"),
        ])
        .unwrap();
        assert_eq!(config.providers[0].strategy, Strategy::LeastUsed);
        assert_eq!(config.providers[1].strategy, Strategy::Headroom);
        let err = config_err(&[("KEY_STRATEGY_ANTHROPIC", "fastest")]);
        assert_eq!(err.variable, "KEY_STRATEGY_ANTHROPIC");
    }

    fn config_err(vars: &[(&str, &str)]) -> ConfigError {
        config(vars).err().unwrap()
    }

    #[test]
    fn browser_settings_default_to_this_machine() {
        let default = config(&[]).unwrap();
        assert_eq!(default.cors_origins, CorsOrigins::loopback());
        assert_eq!(default.allowed_hosts, Some(AllowedHosts::loopback()));
        // Bound to every interface, Host is checked only if ALLOWED_HOSTS says so.
        let everywhere = config(&[("HOST", "0.0.0.0")]).unwrap();
        assert_eq!(everywhere.allowed_hosts, None);
        let named = config(&[("HOST", "0.0.0.0"), ("ALLOWED_HOSTS", r#"["gw.example"]"#)]).unwrap();
        let hosts = named.allowed_hosts.unwrap();
        assert!(hosts.allows("gw.example:3001") && !hosts.allows("evil.example"));
        let open = config(&[("ALLOWED_HOSTS", "[*]"), ("CORS_ORIGINS", "[*]")]).unwrap();
        assert_eq!(open.allowed_hosts, None);
        assert!(open.cors_origins.any());
        let err = config_err(&[("CORS_ORIGINS", r#"["app.example"]"#)]);
        assert_eq!(err.variable, "CORS_ORIGINS");
        let err = config_err(&[("ALLOWED_HOSTS", "gw.example")]);
        assert_eq!(err.variable, "ALLOWED_HOSTS");
    }

    #[test]
    fn usage_ledger_settings_default_parse_and_refuse_by_name() {
        let default = config(&[]).unwrap().ledger;
        assert!(default.enabled);
        assert_eq!(default.queue_capacity, 10_000);
        assert_eq!(default.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(default.writer.flush_every, Duration::from_secs(1));
        let set = config(&[
            ("USAGE_LEDGER", "OFF"),
            ("USAGE_QUEUE_CAPACITY", "50"),
            ("USAGE_RETENTION_DAYS", "7"),
            ("USAGE_FLUSH_SECS", "0.05"),
        ])
        .unwrap()
        .ledger;
        assert!(!set.enabled);
        assert_eq!(set.queue_capacity, 50);
        assert_eq!(set.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(set.writer.flush_every, Duration::from_millis(50));
        for (variable, value) in [
            ("USAGE_LEDGER", "maybe"),
            ("USAGE_QUEUE_CAPACITY", "0"),
            ("USAGE_RETENTION_DAYS", "0"),
            ("USAGE_RETENTION_DAYS", "a month"),
        ] {
            assert_eq!(config_err(&[(variable, value)]).variable, variable);
        }
    }

    #[test]
    fn fractional_seconds_are_accepted() {
        let config = config(&[("KEY_COOLDOWN_SECS", "0.25")]).unwrap();
        assert_eq!(config.key_cooldown, Duration::from_millis(250));
    }
}
