//! Registry credentials in the OS keychain, for `docker-credential-berth`,
//! `berth login` and the desktop app. Secrets go through the `keyring` crate:
//! the macOS Keychain, the Windows Credential Manager, and on Linux the Secret
//! Service when a session bus offers one, else the kernel's keyutils store.
//! Nothing secret is written to disk or logged.

pub mod docker_config;
pub mod helper;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The keychain service every Berth entry is filed under;
/// `BERTH_KEYRING_SERVICE` names another (side-by-side installs, tests).
const SERVICE: &str = "docker-credential-berth";

fn service() -> String {
    std::env::var("BERTH_KEYRING_SERVICE").unwrap_or_else(|_| SERVICE.to_string())
}
/// The entry holding the URL → username index (`list`; no secrets).
const INDEX: &str = "berth:index";
/// Docker Hub's one spelling in credential stores.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("credentials not found in native keychain")]
    NotFound,
    #[error("no credentials server URL")]
    NoServerUrl,
    #[error("no credentials username")]
    NoUsername,
    #[error("the secret is too long for this keychain: {0}")]
    TooLong(String),
    #[error("keychain: {0}")]
    Keychain(String),
}

impl From<keyring::Error> for CredsError {
    fn from(e: keyring::Error) -> Self {
        match e {
            keyring::Error::NoEntry => CredsError::NotFound,
            keyring::Error::TooLong(what, max) => {
                CredsError::TooLong(format!("{what} longer than {max} bytes"))
            }
            // The kernel keyring refuses a payload over 32 KiB as invalid.
            keyring::Error::Invalid(attr, _) if attr == "password" => CredsError::TooLong(
                "the keychain refused it; the Linux kernel keyring holds at most 32 KiB per entry"
                    .into(),
            ),
            other => CredsError::Keychain(other.to_string()),
        }
    }
}

/// Docker's normalisation: every Docker Hub alias becomes
/// `https://index.docker.io/v1/`; anything else its `host[:port]`, without a
/// scheme or path.
pub fn normalize(server: &str) -> String {
    let s = server.trim();
    let no_scheme = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = no_scheme.split('/').next().unwrap_or_default();
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host.to_string(),
    }
}

/// What `get` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    #[serde(rename = "Username")]
    pub username: String,
    #[serde(rename = "Secret")]
    pub secret: String,
}

/// Where credentials live: the keychain, or memory in unit tests.
pub trait Store {
    fn set(&self, key: &str, value: &str) -> Result<(), CredsError>;
    fn get(&self, key: &str) -> Result<String, CredsError>;
    fn delete(&self, key: &str) -> Result<(), CredsError>;
}

/// The OS keychain through `keyring`.
pub struct Keychain;

impl Keychain {
    /// Picks the Linux backend once per process: the Secret Service when a
    /// session bus is there and answers, else keyutils (servers and CI have no
    /// desktop session). `BERTH_KEYRING=keyutils|secret-service` decides instead.
    pub fn open() -> Keychain {
        crate::os::prepare_keychain(&service(), INDEX);
        Keychain
    }

    fn entry(key: &str) -> Result<keyring::Entry, CredsError> {
        Ok(keyring::Entry::new(&service(), key)?)
    }
}

impl Store for Keychain {
    fn set(&self, key: &str, value: &str) -> Result<(), CredsError> {
        Ok(Self::entry(key)?.set_password(value)?)
    }
    fn get(&self, key: &str) -> Result<String, CredsError> {
        Ok(Self::entry(key)?.get_password()?)
    }
    fn delete(&self, key: &str) -> Result<(), CredsError> {
        Ok(Self::entry(key)?.delete_credential()?)
    }
}

/// The stored value of one server: username and secret together, so `get`
/// needs only the URL.
#[derive(Serialize, Deserialize)]
struct Stored {
    username: String,
    secret: String,
}

fn entry_key(server: &str) -> String {
    format!("server:{server}")
}

fn index<S: Store + ?Sized>(store: &S) -> Result<BTreeMap<String, String>, CredsError> {
    match store.get(INDEX) {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap_or_default()),
        Err(CredsError::NotFound) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

fn save_index<S: Store + ?Sized>(
    store: &S,
    map: &BTreeMap<String, String>,
) -> Result<(), CredsError> {
    if map.is_empty() {
        return match store.delete(INDEX) {
            Ok(()) | Err(CredsError::NotFound) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let text = serde_json::to_string(map).map_err(|e| CredsError::Keychain(e.to_string()))?;
    store.set(INDEX, &text)
}

pub fn store<S: Store + ?Sized>(s: &S, c: &Credentials) -> Result<(), CredsError> {
    let server = normalize(&c.server_url);
    if server.is_empty() {
        return Err(CredsError::NoServerUrl);
    }
    if c.username.is_empty() {
        return Err(CredsError::NoUsername);
    }
    let value = serde_json::to_string(&Stored {
        username: c.username.clone(),
        secret: c.secret.clone(),
    })
    .map_err(|e| CredsError::Keychain(e.to_string()))?;
    s.set(&entry_key(&server), &value)?;
    let mut map = index(s)?;
    map.insert(server, c.username.clone());
    save_index(s, &map)
}

pub fn get<S: Store + ?Sized>(s: &S, server: &str) -> Result<Credentials, CredsError> {
    let key = normalize(server);
    if key.is_empty() {
        return Err(CredsError::NoServerUrl);
    }
    let stored: Stored = serde_json::from_str(&s.get(&entry_key(&key))?)
        .map_err(|_| CredsError::Keychain("a stored entry is damaged".into()))?;
    Ok(Credentials {
        server_url: server.trim().to_string(),
        username: stored.username,
        secret: stored.secret,
    })
}

pub fn erase<S: Store + ?Sized>(s: &S, server: &str) -> Result<(), CredsError> {
    let key = normalize(server);
    if key.is_empty() {
        return Err(CredsError::NoServerUrl);
    }
    s.delete(&entry_key(&key))?;
    let mut map = index(s)?;
    if map.remove(&key).is_some() {
        save_index(s, &map)?;
    }
    Ok(())
}

pub fn list<S: Store + ?Sized>(s: &S) -> Result<BTreeMap<String, String>, CredsError> {
    index(s)
}

/// An in-memory store for the logic above the keychain: unit tests and the
/// `credential_helper` fuzz target use it, so neither touches a real keychain.
pub mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct Memory(pub RefCell<HashMap<String, String>>);

    impl Store for Memory {
        fn set(&self, k: &str, v: &str) -> Result<(), CredsError> {
            self.0.borrow_mut().insert(k.into(), v.into());
            Ok(())
        }
        fn get(&self, k: &str) -> Result<String, CredsError> {
            self.0.borrow().get(k).cloned().ok_or(CredsError::NotFound)
        }
        fn delete(&self, k: &str) -> Result<(), CredsError> {
            self.0
                .borrow_mut()
                .remove(k)
                .map(|_| ())
                .ok_or(CredsError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_as_docker_does() {
        for hub in [
            "docker.io",
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize(hub), DOCKER_HUB, "{hub}");
        }
        assert_eq!(normalize("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(normalize(" reg.example.com "), "reg.example.com");
        assert_eq!(normalize("https://ghcr.io"), "ghcr.io");
    }

    #[test]
    fn store_get_list_erase() {
        let m = memory::Memory::default();
        let c = Credentials {
            server_url: "https://127.0.0.1:5000/".into(),
            username: "ann".into(),
            secret: "s3cret".into(),
        };
        store(&m, &c).unwrap();
        let got = get(&m, "127.0.0.1:5000").unwrap();
        assert_eq!(
            (got.username.as_str(), got.secret.as_str()),
            ("ann", "s3cret")
        );
        assert_eq!(
            list(&m).unwrap().get("127.0.0.1:5000").map(String::as_str),
            Some("ann")
        );
        erase(&m, "http://127.0.0.1:5000").unwrap();
        assert!(matches!(
            get(&m, "127.0.0.1:5000"),
            Err(CredsError::NotFound)
        ));
        assert!(list(&m).unwrap().is_empty());
        assert!(matches!(
            erase(&m, "127.0.0.1:5000"),
            Err(CredsError::NotFound)
        ));
        let anonymous = Credentials {
            username: String::new(),
            ..c
        };
        assert!(matches!(store(&m, &anonymous), Err(CredsError::NoUsername)));
    }
}
