//! Keys from a file, for pools too large for one environment variable (the
//! kernel caps each at 128 KB, about 1,000 keys): `<PROVIDER>_API_KEYS_FILE`
//! at startup and `keygate keys add --from-file`. A file holds one key per
//! line (blank lines and lines starting with `#` are skipped, surrounding
//! spaces trimmed) or a JSON array of strings.
//!
//! Errors name the line or item, never its text: a line of a key file is a
//! key, or most of one.

use std::io::Read;
use std::path::Path;

use secrecy::SecretString;

use crate::domain::key_fields::{KeyRuleError, KeySecret};

/// The largest key file read: 1,000,000 keys of typical length.
pub const MAX_KEY_FILE_BYTES: u64 = 128 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is larger than {MAX_KEY_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("is not valid UTF-8")]
    NotText,
    #[error("starts with [ but is not a JSON array of strings")]
    NotAnArray,
    #[error("the key on line {line} {problem}")]
    BadLine { line: usize, problem: KeyRuleError },
    #[error("key number {item} of the array {problem}")]
    BadItem { item: usize, problem: KeyRuleError },
    #[error("holds no key")]
    Empty,
}

/// Reads a key file (at most `MAX_KEY_FILE_BYTES`) and parses it.
pub fn read_key_file(path: &Path) -> Result<Vec<KeySecret>, KeyFileError> {
    let shown = path.display().to_string();
    let unreadable = |error: std::io::Error| KeyFileError::Unreadable {
        path: shown.clone(),
        reason: error.kind().to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    read_keys(file, &shown)
}

/// Reads keys from `source` (a file, stdin) up to `MAX_KEY_FILE_BYTES`;
/// `name` says where they come from in errors.
pub fn read_keys(source: impl Read, name: &str) -> Result<Vec<KeySecret>, KeyFileError> {
    read_bounded(source, name, MAX_KEY_FILE_BYTES)
}

fn read_bounded(source: impl Read, name: &str, limit: u64) -> Result<Vec<KeySecret>, KeyFileError> {
    let mut bytes = Vec::new();
    source
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| KeyFileError::Unreadable {
            path: name.to_string(),
            reason: error.kind().to_string(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(KeyFileError::TooLarge {
            path: name.to_string(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| KeyFileError::NotText)?;
    parse_key_file(&text)
}

/// The keys of a key file's text, in order, duplicates kept (the store
/// ignores a key it already holds).
pub fn parse_key_file(text: &str) -> Result<Vec<KeySecret>, KeyFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let keys = if text.trim_start().starts_with('[') {
        // serde's error would quote the input, which holds keys.
        let items: Vec<String> =
            serde_json::from_str(text).map_err(|_| KeyFileError::NotAnArray)?;
        items
            .into_iter()
            .enumerate()
            .map(|(n, item)| {
                KeySecret::parse(SecretString::from(item.trim())).map_err(|problem| {
                    KeyFileError::BadItem {
                        item: n + 1,
                        problem,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        text.lines()
            .enumerate()
            .map(|(n, line)| (n + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(line, key)| {
                KeySecret::parse(SecretString::from(key))
                    .map_err(|problem| KeyFileError::BadLine { line, problem })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if keys.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::domain::ProviderKind;

    fn texts(keys: &[KeySecret]) -> Vec<&str> {
        keys.iter().map(|k| k.secret().expose_secret()).collect()
    }

    #[test]
    fn lines_skip_blanks_and_comments_and_are_trimmed() {
        let keys =
            parse_key_file("# team a\nsk-ant-1\n\n  sk-ant-2  \r\n#sk-ant-old\nsk-ant-3").unwrap();
        assert_eq!(texts(&keys), ["sk-ant-1", "sk-ant-2", "sk-ant-3"]);
    }

    #[test]
    fn a_json_array_is_read_as_one() {
        let keys = parse_key_file("\u{feff}\n [\"sk-ant-1\", \" sk-ant-2\"]\n").unwrap();
        assert_eq!(texts(&keys), ["sk-ant-1", "sk-ant-2"]);
    }

    #[test]
    fn errors_name_the_line_and_never_the_key() {
        let err = parse_key_file("sk-ant-good\nsk-ant secret-half\n")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("secret-half"), "{text}");
        let err = parse_key_file("[\"sk-ant-secret-1\", 7]").err().unwrap();
        assert!(!err.to_string().contains("secret-1"), "{err}");
        assert!(matches!(
            parse_key_file("# nothing\n\n"),
            Err(KeyFileError::Empty)
        ));
    }

    #[test]
    fn an_oversized_source_is_refused() {
        let source = "sk-ant-1\nsk-ant-2\n".as_bytes();
        let result = read_bounded(source, "stdin", 12);
        assert!(matches!(result, Err(KeyFileError::TooLarge { .. })));
    }

    fn config_with(vars: &[(&str, String)]) -> Result<crate::config::Config, String> {
        crate::config::Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn every_provider_reads_a_keys_file_merged_with_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("anthropic.txt");
        let keys: Vec<String> = (0..5000).map(|i| format!("sk-ant-api03-{i:05}")).collect();
        std::fs::write(&lines, keys.join("\n")).unwrap();
        let array = dir.path().join("brave.json");
        std::fs::write(&array, r#"["brave-1", "brave-2"]"#).unwrap();
        let config = config_with(&[
            ("ANTHROPIC_API_KEYS_FILE", lines.display().to_string()),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-00007".into()),
            ("ANTHROPIC_API_KEYS", r#"["sk-ant-extra"]"#.into()),
            ("BRAVE_SEARCH_KEYS_FILE", array.display().to_string()),
        ])
        .unwrap();
        let anthropic = config.provider(ProviderKind::Anthropic).unwrap();
        assert_eq!(
            anthropic.keys.len(),
            5001,
            "the array, the file, one duplicate dropped"
        );
        let brave = config.provider(ProviderKind::Brave).unwrap();
        let brave: Vec<KeySecret> = brave.keys.iter().map(|k| k.secret.clone()).collect();
        assert_eq!(texts(&brave), ["brave-1", "brave-2"]);
    }

    #[test]
    fn a_bad_keys_file_stops_startup_naming_the_variable_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.txt");
        std::fs::write(&file, "sk-ant-ok\nsk-ant-leaked secret\n").unwrap();
        let err = config_with(&[("OPENAI_API_KEYS_FILE", file.display().to_string())])
            .err()
            .unwrap();
        assert!(
            err.contains("OPENAI_API_KEYS_FILE") && err.contains("line 2"),
            "{err}"
        );
        assert!(!err.contains("leaked"), "{err}");
        let missing = dir.path().join("missing.txt").display().to_string();
        let err = config_with(&[("ANTHROPIC_API_KEYS_FILE", missing)])
            .err()
            .unwrap();
        assert!(
            err.contains("ANTHROPIC_API_KEYS_FILE") && err.contains("not found"),
            "{err}"
        );
    }
}
