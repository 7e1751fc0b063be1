//! `credsStore: "berth"` in the docker CLI's `config.json`, set on install and
//! on request, with every other key and the file's permissions kept; the value
//! it replaced is remembered beside the file and put back on uninstall.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub const STORE_NAME: &str = "berth";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a JSON object: {reason}")]
    Invalid { path: String, reason: String },
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => dirs::home_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".docker/config.json"),
    }
}

fn saved_path(config: &Path) -> PathBuf {
    config.with_file_name("berth-previous-credsstore.json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read(path: &Path) -> Result<(Map<String, Value>, Option<u32>), ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok((Map::new(), mode(path))),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Ok((m, mode(path))),
            Ok(_) => Err(ConfigError::Invalid {
                path: path.display().to_string(),
                reason: "not an object".into(),
            }),
            Err(e) => Err(ConfigError::Invalid {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Map::new(), None)),
        Err(e) => Err(io(path)(e)),
    }
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| crate::os::mode(&m))
}

/// Writes through a temp file and a rename, with the old mode (0600 for a new file).
fn write(path: &Path, map: &Map<String, Value>, mode: Option<u32>) -> Result<(), ConfigError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(path))?;
    }
    let mut text = serde_json::to_string_pretty(map).map_err(|e| ConfigError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let tmp = path.with_extension("json.berth-tmp");
    std::fs::write(&tmp, text).map_err(io(path))?;
    crate::os::set_mode(&tmp, mode.unwrap_or(0o600)).map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The CLI's `credsStore`, if set.
pub fn creds_store(path: &Path) -> Result<Option<String>, ConfigError> {
    let (map, _) = read(path)?;
    Ok(map
        .get("credsStore")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// The CLI's current context (`currentContext`), if one is set.
pub fn current_context(path: &Path) -> Result<Option<String>, ConfigError> {
    let (map, _) = read(path)?;
    Ok(map
        .get("currentContext")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// Sets (or with `None` removes) `currentContext`, keeping everything else.
pub fn set_current_context(path: &Path, name: Option<&str>) -> Result<(), ConfigError> {
    let (mut map, mode) = read(path)?;
    match name {
        Some(n) => {
            map.insert("currentContext".into(), Value::String(n.into()));
        }
        None => {
            map.remove("currentContext");
        }
    }
    write(path, &map, mode)
}

/// Removes the file if nothing is left in it (it was created for Berth's keys).
pub fn remove_if_empty(path: &Path) -> Result<(), ConfigError> {
    let (map, _) = read(path)?;
    if map.is_empty() && path.exists() {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    Ok(())
}

/// Sets `credsStore: "berth"`; remembers the previous value (once: installing
/// twice keeps the original).
pub fn install(path: &Path) -> Result<(), ConfigError> {
    let (mut map, mode) = read(path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(path))?;
    }
    let previous = map.get("credsStore").cloned();
    if previous.as_ref().and_then(Value::as_str) != Some(STORE_NAME) {
        let saved = serde_json::json!({ "credsStore": previous });
        std::fs::write(saved_path(path), saved.to_string()).map_err(io(path))?;
    }
    map.insert("credsStore".into(), Value::String(STORE_NAME.into()));
    write(path, &map, mode)
}

/// Puts back what `install` replaced (or removes the key).
pub fn uninstall(path: &Path) -> Result<(), ConfigError> {
    let (mut map, mode) = read(path)?;
    if map.get("credsStore").and_then(Value::as_str) != Some(STORE_NAME) {
        return Ok(());
    }
    let saved = saved_path(path);
    let previous = std::fs::read_to_string(&saved)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("credsStore").cloned())
        .filter(|v| !v.is_null());
    match previous {
        Some(v) => {
            map.insert("credsStore".into(), v);
        }
        None => {
            map.remove("credsStore");
        }
    }
    write(path, &map, mode)?;
    let _ = std::fs::remove_file(saved);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_everything_else_and_uninstall_restores() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"reg:1":{}},"credsStore":"desktop","psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        crate::os::set_mode(&p, 0o640).unwrap();
        install(&p).unwrap();
        install(&p).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "berth");
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert!(v["auths"]["reg:1"].is_object());
        if cfg!(unix) {
            assert_eq!(mode(&p), Some(0o640), "the user's mode is kept");
        }
        uninstall(&p).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "desktop");

        let fresh = dir.path().join("new/config.json");
        install(&fresh).unwrap();
        if cfg!(unix) {
            assert_eq!(mode(&fresh), Some(0o600), "owner-only when Berth makes it");
        }
        uninstall(&fresh).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
        assert!(v.get("credsStore").is_none());

        std::fs::write(&p, "[1]").unwrap();
        assert!(matches!(install(&p), Err(ConfigError::Invalid { .. })));
    }
}
