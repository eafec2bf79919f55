//! A provider's key array (`ANTHROPIC_API_KEYS`, `OPENAI_API_KEYS`): each
//! item is a key string, as the Node backend read it, or an object
//! `{"key": "…", "scope": "…", "label": "…", "weight": N}` naming the
//! key's cache scope, label and weight; and its key file
//! (`ANTHROPIC_API_KEYS_FILE`, see `key_files`), whose keys are plain.
//! Every problem is told without quoting the value, which holds keys.

use std::collections::HashSet;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigError, key_files, parse_key_list, validate_key};
use crate::domain::key_fields::{CacheScope, KeyLabel, KeySecret, KeySpec, KeyWeight};

#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Bare(String),
    Full(FullItem),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullItem {
    key: String,
    scope: Option<String>,
    label: Option<String>,
    weight: Option<u32>,
}

const SHAPE: &str = "must be a JSON array of keys, each a string or \
                     {\"key\": \"...\", \"scope\": \"...\", \"label\": \"...\", \"weight\": N}";

/// The keys of `variable`'s array, checked, in order.
pub(super) fn parse_key_specs(
    variable: &'static str,
    text: &str,
) -> Result<Vec<KeySpec>, ConfigError> {
    let Ok(items) = serde_json::from_str::<Vec<Item>>(text) else {
        // Not JSON: dotenvy's unquoted `[a,b]`, or a mistake.
        return parse_key_list(variable, text)
            .map_err(|_| ConfigError::new(variable, SHAPE))?
            .into_iter()
            .map(|key| spec_of(variable, key, None))
            .collect();
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Item::Bare(key) => spec_of(variable, key, None),
            Item::Full(full) => {
                let problem = |field: &str, e| {
                    ConfigError::new(variable, format!("item {index}: {field} {e}"))
                };
                let settings = Settings {
                    scope: full
                        .scope
                        .as_deref()
                        .map(CacheScope::parse)
                        .transpose()
                        .map_err(|e| problem("scope", e))?,
                    label: full
                        .label
                        .as_deref()
                        .map(KeyLabel::parse)
                        .transpose()
                        .map_err(|e| problem("label", e))?,
                    weight: full
                        .weight
                        .map(KeyWeight::parse)
                        .transpose()
                        .map_err(|e| problem("weight", e))?,
                };
                spec_of(variable, full.key, Some(settings))
            }
        })
        .collect()
}

/// The keys of the file `variable` names, each a plain key: a key file
/// gives no scope, label or weight.
pub(super) fn file_key_specs(
    variable: &'static str,
    path: &str,
) -> Result<Vec<KeySpec>, ConfigError> {
    let keys = key_files::read_key_file(Path::new(path.trim()))
        .map_err(|e| ConfigError::new(variable, e.to_string()))?;
    Ok(keys.into_iter().map(KeySpec::bare).collect())
}

/// `specs` without repeats of a key, the first of each kept (so an array
/// item's settings win over the same key bare in the file). A set, not a
/// scan of the list: a file may hold thousands of keys.
pub(super) fn unique_specs(specs: Vec<KeySpec>) -> Vec<KeySpec> {
    let mut seen = HashSet::with_capacity(specs.len());
    let first: Vec<bool> = specs
        .iter()
        .map(|spec| seen.insert(spec.secret.secret().expose_secret()))
        .collect();
    drop(seen);
    specs
        .into_iter()
        .zip(first)
        .filter_map(|(spec, first)| first.then_some(spec))
        .collect()
}

struct Settings {
    scope: Option<CacheScope>,
    label: Option<KeyLabel>,
    weight: Option<KeyWeight>,
}

fn spec_of(
    variable: &'static str,
    key: String,
    settings: Option<Settings>,
) -> Result<KeySpec, ConfigError> {
    let key = validate_key(variable, key.trim())?;
    let secret = KeySecret::parse(SecretString::from(key))
        .map_err(|e| ConfigError::new(variable, format!("a key {e}")))?;
    let mut spec = KeySpec::bare(secret);
    if let Some(settings) = settings {
        spec.scope = settings.scope;
        spec.label = settings.label;
        spec.weight = settings.weight;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_strings_or_objects_with_a_scope() {
        let specs = parse_key_specs(
            "ANTHROPIC_API_KEYS",
            r#"["sk-ant-a", {"key": "sk-ant-b", "scope": "acme", "label": "b", "weight": 3}]"#,
        )
        .unwrap();
        assert_eq!(specs[0].secret.secret().expose_secret(), "sk-ant-a");
        assert!(specs[0].scope.is_none());
        assert_eq!(specs[1].secret.secret().expose_secret(), "sk-ant-b");
        assert_eq!(specs[1].scope.as_ref().unwrap().as_str(), "acme");
        assert_eq!(specs[1].label.as_ref().unwrap().as_str(), "b");
        assert_eq!(specs[1].weight.unwrap().get(), 3);
    }

    #[test]
    fn a_bad_item_is_named_without_quoting_the_key() {
        let err = parse_key_specs(
            "ANTHROPIC_API_KEYS",
            r#"[{"key": "sk-ant-secret-x", "scope": ""}]"#,
        )
        .err()
        .unwrap();
        assert_eq!(err.variable, "ANTHROPIC_API_KEYS");
        assert!(err.problem.contains("item 0: scope"), "{}", err.problem);
        for bad in [
            r#"[{"key": "sk-ant-secret-x", "org": "a"}]"#,
            r#"[{"scope": "a"}]"#,
            "sk-ant-secret-x",
        ] {
            let err = parse_key_specs("ANTHROPIC_API_KEYS", bad).err().unwrap();
            assert!(!err.problem.contains("secret-x"), "{}", err.problem);
        }
    }
}
