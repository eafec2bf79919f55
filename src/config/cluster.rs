//! Cluster settings: `REDIS_URL` (shared runtime state between replicas)
//! and `KEYGATE_CLUSTER` (the deployment's name, the prefix of every Redis
//! key and channel, so two deployments can share one Redis). Without
//! `REDIS_URL` keygate runs alone, exactly as before.

use secrecy::SecretString;

use super::ConfigError;

/// The default deployment name.
pub const DEFAULT_CLUSTER: &str = "keygate";

pub struct ClusterSettings {
    /// `redis://` or `rediss://` (TLS); may hold a password, so it is a
    /// secret and is only ever logged through `cluster::redacted_url`.
    pub redis_url: SecretString,
    /// `KEYGATE_CLUSTER`: letters, digits, `-`, `_`, `.`; at most 64.
    pub name: String,
}

pub(super) fn cluster_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ClusterSettings>, ConfigError> {
    let name = get("KEYGATE_CLUSTER")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(ConfigError::new(
            "KEYGATE_CLUSTER",
            "use 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let Some(url) = get("REDIS_URL") else {
        return Ok(None);
    };
    let url = url.trim().to_string();
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        // The value itself is not echoed: it may hold a password.
        return Err(ConfigError::new(
            "REDIS_URL",
            "must start with redis:// or rediss:// (TLS)",
        ));
    }
    Ok(Some(ClusterSettings {
        redis_url: SecretString::from(url),
        name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<ClusterSettings>, ConfigError> {
        cluster_settings(&|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn redis_is_off_unless_set_and_the_name_defaults() {
        assert!(settings(&[]).unwrap().is_none());
        let on = settings(&[("REDIS_URL", "redis://:pw@10.0.0.5:6379/0")])
            .unwrap()
            .unwrap();
        assert_eq!(on.name, "keygate");
        assert_eq!(on.redis_url.expose_secret(), "redis://:pw@10.0.0.5:6379/0");
    }

    #[test]
    fn bad_values_are_refused_by_name_without_echo() {
        let err = settings(&[("REDIS_URL", "http://:hunter2@x")])
            .err()
            .unwrap();
        assert_eq!(err.variable, "REDIS_URL");
        assert!(!err.problem.contains("hunter2"));
        let err = settings(&[("REDIS_URL", "redis://x"), ("KEYGATE_CLUSTER", "a b")])
            .err()
            .unwrap();
        assert_eq!(err.variable, "KEYGATE_CLUSTER");
    }
}
