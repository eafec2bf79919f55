//! Keeping key material out of everything keygate says: masked labels for
//! display, and scrubbing of upstream error text before it is stored in a
//! key's history or passed to a client (OpenAI's 401 text echoes part of the
//! key; any upstream could).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

const KNOWN_PREFIXES: &[&str] = &[
    "sk-ant-api03-",
    "sk-ant-admin01-",
    "sk-ant-",
    "sk-proj-",
    "sk-",
];

/// A key's display form: its known prefix and last four characters, e.g.
/// `sk-ant-api03-…Xa1b`. Short keys show no tail, so little is revealed.
pub fn mask_key(key: &SecretString) -> String {
    let key = key.expose_secret();
    let prefix = KNOWN_PREFIXES
        .iter()
        .find(|p| key.starts_with(*p))
        .copied()
        .unwrap_or("");
    let chars: Vec<char> = key.chars().collect();
    let tail: String = if chars.len() >= prefix.chars().count() + 12 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{prefix}…{tail}")
}

/// Anything shaped like a provider key, whole or already partly masked:
/// `sk-…` keys, Google's `AIza…` keys, and a key riding in a URL's query
/// string (`api_key=…`, `key=…`, as SerpApi and Google take them).
static KEY_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"sk-[A-Za-z0-9_\-\*\.…]{3,}|AIza[0-9A-Za-z_\-]{8,}|(?i:\b(?:api_key|key)=[^&\s"'<>]+)"#,
    )
    .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// The shortest run of a key's characters that counts as an echo of it.
pub const ECHO_WINDOW: usize = 8;

const REDACTED: &str = "[redacted]";

/// Scrubs every key of every pool out of upstream text. Upstreams echo keys
/// in many ways: whole, without their `sk-ant-api03-` prefix, upper-cased,
/// cut short, inside an HTML error page. So the scrubber removes any run of
/// `ECHO_WINDOW` or more characters of any key it has learned, ignoring
/// ASCII case, plus anything key-shaped (`sk-…`).
///
/// It keeps every 8-byte window of every key (lower-cased, packed in a
/// `u64`): a text is scanned once, window by window, so the cost is linear
/// in the text whatever the number of keys, at about 1 KB per key. Keys are
/// only ever added, never forgotten: a deleted key must stay unprintable.
#[derive(Default)]
pub struct Scrubber {
    windows: RwLock<HashSet<u64>>,
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `secret`, so its fragments are scrubbed from now on.
    pub fn learn(&self, secret: &SecretString) {
        let key = secret.expose_secret().as_bytes();
        if key.len() < ECHO_WINDOW {
            return;
        }
        let mut windows = self.windows.write().unwrap_or_else(|e| e.into_inner());
        windows.extend(key.windows(ECHO_WINDOW).map(pack));
    }

    /// `text` without any key fragment or key-shaped run. Key-shaped runs
    /// go first: a masked echo (`sk-proj-****abcd`) starts with a known
    /// prefix, and removing only that prefix would leave its tail behind.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let shaped = KEY_LIKE.replace_all(text, REDACTED);
        let fragments = self.fragments(shaped.as_bytes());
        if fragments.is_empty() {
            return shaped;
        }
        let mut out = String::with_capacity(shaped.len());
        let mut at = 0;
        for (start, end) in fragments {
            out.push_str(&shaped[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&shaped[at..]);
        Cow::Owned(out)
    }

    /// Whether `text` holds a fragment of a learned key.
    pub fn holds_key(&self, text: &[u8]) -> bool {
        !self.fragments(text).is_empty()
    }

    /// Byte ranges of `text` covered by windows of learned keys, merged.
    /// Keys are ASCII, so every range starts and ends on a char boundary.
    fn fragments(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        if text.len() < ECHO_WINDOW {
            return ranges;
        }
        let windows = self.windows.read().unwrap_or_else(|e| e.into_inner());
        if windows.is_empty() {
            return ranges;
        }
        for (start, window) in text.windows(ECHO_WINDOW).enumerate() {
            if !window.is_ascii() || !windows.contains(&pack(window)) {
                continue;
            }
            let end = start + ECHO_WINDOW;
            match ranges.last_mut() {
                Some(last) if start <= last.1 => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
        ranges
    }
}

/// Eight bytes, ASCII-lower-cased, as one number.
fn pack(window: &[u8]) -> u64 {
    window.iter().fold(0u64, |packed, byte| {
        (packed << 8) | u64::from(byte.to_ascii_lowercase())
    })
}

/// Removes `secret` and anything key-shaped from upstream text, for the
/// places that know only the one key (a key check before any pool exists).
pub fn scrub(text: &str, secret: &SecretString) -> String {
    let one = Scrubber::new();
    one.learn(secret);
    let secret = secret.expose_secret();
    let text = if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, REDACTED)
    };
    one.scrub(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_prefix_and_last_four() {
        let key = SecretString::from("sk-ant-api03-abcdefghijklmnopXa1b");
        assert_eq!(mask_key(&key), "sk-ant-api03-…Xa1b");
        assert_eq!(mask_key(&SecretString::from("sk-short")), "sk-…");
        assert_eq!(
            mask_key(&SecretString::from("plainkey-0123456789abcd")),
            "…abcd"
        );
    }

    #[test]
    fn google_keys_show_only_their_last_four() {
        let key = SecretString::from("AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv");
        assert_eq!(mask_key(&key), "…StUv");
        assert!(!mask_key(&key).contains("AIza"));
    }

    #[test]
    fn keys_in_urls_and_google_shaped_keys_are_scrubbed() {
        let clean = Scrubber::new().scrub(
            "GET https://serpapi.com/search.json?engine=google&api_key=0123abcd&q=x and \
             AIzaSyA1b2C3d4E5f6G7h8 and ?key=zzzz&cx=1",
        );
        assert!(!clean.contains("0123abcd"), "{clean}");
        assert!(!clean.contains("AIzaSy"), "{clean}");
        assert!(!clean.contains("zzzz"), "{clean}");
        assert!(clean.contains("cx=1"), "{clean}");
    }

    #[test]
    fn scrub_removes_the_key_and_key_shaped_text() {
        let secret = SecretString::from("custom-secret-value");
        let text = "Incorrect API key provided: sk-proj-****abcd. Also custom-secret-value leaked";
        let clean = scrub(text, &secret);
        assert!(!clean.contains("abcd"));
        assert!(!clean.contains("custom-secret-value"));
        assert!(clean.starts_with("Incorrect API key provided: [redacted]"));
    }

    #[test]
    fn every_echo_of_a_learned_key_is_removed() {
        let scrubber = Scrubber::new();
        let key = "sk-ant-api03-Zq7kLm2Np4Rs6Tu8Vw0XyAbCdEfGh";
        scrubber.learn(&SecretString::from(key));
        scrubber.learn(&SecretString::from("AIzaSyD-plainkey-9876543210"));
        let tail = &key["sk-ant-api03-".len()..];
        let cases = [
            format!("invalid key {key} given"),
            format!("key {tail} is bad"),
            format!("KEY {} IS BAD", key.to_uppercase()),
            format!("<html><body>key={}</body></html>", &tail[3..15]),
            "project AIzaSyD-plainkey-9876543210 has no access".to_string(),
            format!("type: {}", &key[20..29]),
        ];
        for text in cases {
            let clean = scrubber.scrub(&text);
            for start in 0..key.len() - ECHO_WINDOW {
                let piece = &key[start..start + ECHO_WINDOW];
                assert!(
                    !clean.to_lowercase().contains(&piece.to_lowercase()),
                    "{piece} left in {clean}"
                );
            }
            assert!(!clean.contains("plainkey-98"), "{clean}");
            assert!(clean.contains("[redacted]"), "{clean}");
        }
    }

    #[test]
    fn text_without_keys_is_left_alone() {
        let scrubber = Scrubber::new();
        scrubber.learn(&SecretString::from("sk-ant-api03-Zq7kLm2Np4Rs6Tu8Vw0X"));
        let text = "Your credit balance is too low; résumé 日本語 overloaded_error";
        assert!(matches!(scrubber.scrub(text), Cow::Borrowed(_)));
        assert!(!scrubber.holds_key(text.as_bytes()));
        // Seven characters of a key are not enough to count as an echo.
        assert_eq!(scrubber.scrub("x Zq7kLm2 y"), "x Zq7kLm2 y");
    }
}
