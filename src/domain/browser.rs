//! What web pages may do with keygate, as checked types: the origins CORS
//! lets read answers (`CORS_ORIGINS`) and the `Host` names keygate answers
//! to (`ALLOWED_HOSTS`). Parsed once from the environment; matched on every
//! request by `routes::cors` and `routes::browser_guard`.
//!
//! Origins and host names are compared without regard to ASCII case;
//! browsers send both in lowercase.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The default `CORS_ORIGINS`: pages served from this machine, on any port
/// (the frontend's development server runs on its own port, e.g. 5173).
pub const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserRuleError {
    #[error(
        "{0:?} is not an origin: write scheme://host or scheme://host:port (any port: scheme://host:*), \
         e.g. \"https://app.example\" or \"http://localhost:*\", or \"*\" for any origin"
    )]
    BadOrigin(String),
    #[error(
        "{0:?} is not a host name: write a name or name:port, e.g. \"keygate.internal\", or \"*\" for any"
    )]
    BadHost(String),
}

/// One `CORS_ORIGINS` entry: an exact origin (`https://app.example:8443`),
/// or one with any port (`http://localhost:*`, which also covers the
/// scheme's default port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `scheme://host[:port]`, lowercase.
    base: String,
    any_port: bool,
}

impl OriginPattern {
    pub fn parse(text: &str) -> Result<Self, BrowserRuleError> {
        let bad = || BrowserRuleError::BadOrigin(text.to_string());
        let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (base, any_port) = match lower.strip_suffix(":*") {
            Some(base) => (base.to_string(), true),
            None => (lower, false),
        };
        let authority = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(bad)?;
        // An origin is scheme, host and port: nothing else can ever match.
        let (name, port) = split_host(authority).ok_or_else(bad)?;
        let any_and_one_port = any_port && port.is_some();
        if any_and_one_port
            || name.contains(['/', '?', '#', '@', '*'])
            || name.contains(char::is_whitespace)
        {
            return Err(bad());
        }
        Ok(Self { base, any_port })
    }

    pub fn matches(&self, origin: &str) -> bool {
        let Some(head) = origin.get(..self.base.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(&self.base) {
            return false;
        }
        let rest = &origin[self.base.len()..];
        rest.is_empty()
            || (self.any_port
                && rest.strip_prefix(':').is_some_and(|port| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                }))
    }
}

/// `CORS_ORIGINS`: which pages may call keygate from a browser and read the
/// answers. `"*"` opens the proxy routes to every origin; the admin routes
/// only ever admit listed origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOrigins {
    any: bool,
    listed: Vec<OriginPattern>,
}

impl CorsOrigins {
    /// The default: `LOOPBACK_ORIGINS`.
    pub fn loopback() -> Self {
        Self::parse(LOOPBACK_ORIGINS).unwrap_or_else(|_| Self {
            any: false,
            listed: Vec::new(),
        })
    }

    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BrowserRuleError> {
        let mut origins = Self {
            any: false,
            listed: Vec::new(),
        };
        for entry in entries {
            if entry.trim() == "*" {
                origins.any = true;
            } else {
                origins.listed.push(OriginPattern::parse(entry)?);
            }
        }
        Ok(origins)
    }

    /// Whether `"*"` was listed.
    pub fn any(&self) -> bool {
        self.any
    }

    /// For `/api/chat`, `/v1/*`, `/api/models`, `/health`.
    pub fn allows_on_proxy(&self, origin: &str) -> bool {
        self.any || self.allows_on_admin(origin)
    }

    /// For `/api/keypool/...`: listed origins only, never `"*"`.
    pub fn allows_on_admin(&self, origin: &str) -> bool {
        self.listed.iter().any(|pattern| pattern.matches(origin))
    }
}

/// One `ALLOWED_HOSTS` entry: a name (any port) or `name:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    name: String,
    port: Option<String>,
}

/// The `Host` names keygate answers to when it checks them: loopback names
/// (`localhost`, `127.x.x.x`, `[::1]`, any port) and `ALLOWED_HOSTS`. A page
/// that rebinds its own DNS name to 127.0.0.1 still sends its own name, so
/// it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    listed: Vec<HostPattern>,
}

impl AllowedHosts {
    /// Loopback names only.
    pub fn loopback() -> Self {
        Self { listed: Vec::new() }
    }

    /// `ALLOWED_HOSTS` entries; `None` if `"*"` is among them (any `Host`).
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Self>, BrowserRuleError> {
        let mut listed = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry == "*" {
                return Ok(None);
            }
            let bad = || BrowserRuleError::BadHost(entry.to_string());
            let (name, port) = split_host(entry).ok_or_else(bad)?;
            if name.contains(['/', '?', '#', '@', '*']) || name.contains(char::is_whitespace) {
                return Err(bad());
            }
            listed.push(HostPattern {
                name: name.to_ascii_lowercase(),
                port: port.map(str::to_string),
            });
        }
        Ok(Some(Self { listed }))
    }

    /// Whether a `Host` header value (`name` or `name:port`) is answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        is_loopback_name(name)
            || self.listed.iter().any(|pattern| {
                pattern.name.eq_ignore_ascii_case(name)
                    && pattern.port.as_deref().is_none_or(|p| Some(p) == port)
            })
    }
}

/// `localhost`, `127.x.x.x`, `::1` (bracketed or not): what a `HOST` to bind
/// or a `Host` header names when it means this machine only.
pub fn is_loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return v4.is_loopback();
    }
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<Ipv6Addr>().is_ok_and(|v6| v6.is_loopback())
}

/// `name[:port]` or `[v6][:port]` → (name, port); `None` if malformed. An
/// empty port (`name:`) counts as none.
fn split_host(host: &str) -> Option<(&str, Option<&str>)> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        if rest.is_empty() {
            (name, None)
        } else {
            (name, Some(rest.strip_prefix(':')?))
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port = port.filter(|p| !p.is_empty());
    let port_ok = port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()));
    (!name.is_empty() && port_ok).then_some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_match_any_port_and_nothing_else() {
        let origins = CorsOrigins::loopback();
        for origin in [
            "http://localhost:5173",
            "http://localhost",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
            "https://localhost:443",
            "HTTP://LOCALHOST:5173",
        ] {
            assert!(origins.allows_on_proxy(origin), "{origin}");
            assert!(origins.allows_on_admin(origin), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://localhost:5173.evil.example",
            "http://localhost:",
            "http://127.0.0.2:80",
            "null",
            "",
        ] {
            assert!(!origins.allows_on_proxy(origin), "{origin}");
        }
    }

    #[test]
    fn a_star_opens_the_proxy_routes_only() {
        let origins = CorsOrigins::parse(["*", "https://admin.example"]).unwrap();
        assert!(origins.any());
        assert!(origins.allows_on_proxy("https://evil.example"));
        assert!(!origins.allows_on_admin("https://evil.example"));
        assert!(origins.allows_on_admin("https://admin.example"));
    }

    #[test]
    fn exact_origins_match_exactly() {
        let origins =
            CorsOrigins::parse(["https://app.example/", "http://x.example:8080"]).unwrap();
        assert!(origins.allows_on_proxy("https://app.example"));
        assert!(!origins.allows_on_proxy("https://app.example:8443"));
        assert!(!origins.allows_on_proxy("http://app.example"));
        assert!(origins.allows_on_proxy("http://x.example:8080"));
        assert!(!origins.allows_on_proxy("http://x.example"));
    }

    #[test]
    fn malformed_origins_are_refused() {
        for bad in [
            "app.example",
            "https://app.example/path",
            "https://",
            "ftp://app.example",
            "null",
            "https://*.example",
            "https://a.example:80:*",
            "https://a b",
        ] {
            assert!(CorsOrigins::parse([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_loopback_or_listed() {
        let hosts = AllowedHosts::parse(["keygate.internal", "Proxy.example:8443"])
            .unwrap()
            .unwrap();
        for host in [
            "localhost",
            "localhost:3001",
            "127.0.0.1:3001",
            "127.8.9.10",
            "[::1]:3001",
            "[::1]",
            "LOCALHOST:1",
            "keygate.internal",
            "keygate.internal:3001",
            "proxy.example:8443",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:3001",
            "localhost.evil.example",
            "proxy.example",
            "proxy.example:80",
            "[::2]:3001",
            "::1",
            "localhost:x",
            "",
            "10.0.0.1:3001",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
        assert!(!AllowedHosts::loopback().allows("keygate.internal"));
        assert_eq!(AllowedHosts::parse(["a.example", "*"]), Ok(None));
        assert!(AllowedHosts::parse(["https://a.example"]).is_err());
    }

    #[test]
    fn bind_addresses_that_mean_this_machine() {
        for name in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.1.1"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in ["0.0.0.0", "::", "192.168.1.2", "example.com"] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }
}
