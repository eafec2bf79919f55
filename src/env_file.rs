//! Reading `.env` without touching the process environment. dotenvy parses
//! the file; lines it rejects (the Node backend's `dotenv` accepted e.g.
//! `ANTHROPIC_API_KEYS=["a", "b"]` unquoted, with spaces) fall back to
//! Node's rule: everything after the first `=`, trimmed, surrounding quotes
//! removed. Real environment variables take precedence over the file.

use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {reason}")]
pub struct EnvFileError {
    path: String,
    reason: String,
}

/// The variables in the file at `path`; empty if there is no such file.
pub fn load(path: &Path) -> Result<HashMap<String, String>, EnvFileError> {
    let error = |reason: String| EnvFileError {
        path: path.display().to_string(),
        reason,
    };
    let entries = match dotenvy::from_path_iter(path) {
        Ok(entries) => entries,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(e) => return Err(error(e.to_string())),
    };
    let mut vars = HashMap::new();
    let mut some_lines_rejected = false;
    for entry in entries {
        match entry {
            Ok((name, value)) => {
                vars.insert(name, value);
            }
            Err(dotenvy::Error::LineParse(..)) => some_lines_rejected = true,
            Err(e) => return Err(error(e.to_string())),
        }
    }
    if some_lines_rejected {
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        for (name, value) in text.lines().filter_map(node_style_line) {
            vars.entry(name).or_insert(value);
        }
    }
    Ok(vars)
}

/// `KEY=VALUE` as Node's dotenv reads a single line.
fn node_style_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let value = value.trim();
    let unquoted = ['"', '\'', '`']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    Some((name.to_string(), unquoted.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_backend_env_files_read_as_node_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# keys\nANTHROPIC_API_KEYS=[\"sk-ant-1\", \"sk-ant-2\"]\nPORT=3001\n\
             export ADMIN_API_KEY='quoted value'\nQUOTED='[\"a\",\"b\"]'\n",
        )
        .unwrap();
        let vars = load(&path).unwrap();
        assert_eq!(vars["ANTHROPIC_API_KEYS"], r#"["sk-ant-1", "sk-ant-2"]"#);
        assert_eq!(vars["PORT"], "3001");
        assert_eq!(vars["ADMIN_API_KEY"], "quoted value");
        assert_eq!(vars["QUOTED"], r#"["a","b"]"#);
    }

    #[test]
    fn a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join(".env")).unwrap().is_empty());
    }
}
