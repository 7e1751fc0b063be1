//! Request parsing shared by handlers: query strings, Docker's boolean spelling, filters,
//! and the `X-Registry-Auth` header.

use std::collections::HashMap;

use base64::Engine as _;

use super::ApiError;
use crate::images::RegistryCredentials;

/// Parsed query: the first value of each key (Go's `Form.Get`, which dockerd uses:
/// docker-py sends `dockerfile` twice and means the first), and every pair in order
/// (for keys the CLI repeats, such as `changes`).
pub struct Query(HashMap<String, String>, Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Query(pairs.iter().rev().cloned().collect(), pairs)
    }

    /// Every non-empty value of a repeated key.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.1
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Docker's boolean: "1", "true", "True" (any case) are true; absent, "", "0",
    /// "false" and "none" are false.
    pub fn flag(&self, key: &str) -> bool {
        match self.0.get(key) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "none"
            ),
        }
    }

    /// The `filters` parameter: `{"key":{"value":true}}` or the older `{"key":["value"]}`.
    /// Keys not in `allowed` are refused as dockerd does.
    pub fn filters(&self, allowed: &[&str]) -> Result<HashMap<String, Vec<String>>, ApiError> {
        self.filters_among(Some(allowed))
    }

    /// `filters` for an endpoint that, like dockerd's `/events`, ignores names it
    /// does not know.
    pub fn any_filters(&self) -> Result<HashMap<String, Vec<String>>, ApiError> {
        self.filters_among(None)
    }

    fn filters_among(
        &self,
        allowed: Option<&[&str]>,
    ) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get("filters") else {
            return Ok(HashMap::new());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: expected an object"))?;
        let mut out = HashMap::new();
        for (k, v) in obj {
            if allowed.is_some_and(|a| !a.contains(&k.as_str())) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
            let vals: Vec<String> = match v {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

/// Decodes `X-Registry-Auth`: base64url (padded or not) JSON of Docker's AuthConfig.
pub fn registry_auth(header: Option<&str>) -> Result<RegistryCredentials, ApiError> {
    let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(RegistryCredentials::default());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not base64"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) || bytes == b"{}" || bytes == b"null" {
        return Ok(RegistryCredentials::default());
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct AuthConfig {
        username: String,
        password: String,
        auth: String,
        registrytoken: String,
    }
    let cfg: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    let (mut user, mut pass) = (cfg.username, cfg.password);
    if user.is_empty() && !cfg.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&cfg.auth)
            .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: bad auth field"))?;
        let s = String::from_utf8_lossy(&decoded).into_owned();
        if let Some((u, p)) = s.split_once(':') {
            user = u.to_string();
            pass = p.to_string();
        }
    }
    Ok(RegistryCredentials {
        username: Some(user).filter(|u| !u.is_empty()),
        password: Some(pass).filter(|p| !p.is_empty()),
        registry_token: Some(cfg.registrytoken).filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_both_shapes() {
        let q = Query::parse(Some(
            "filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
        ));
        assert_eq!(q.filters(&["dangling"]).unwrap()["dangling"], vec!["true"]);
        let q = Query::parse(Some("filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"));
        assert_eq!(q.filters(&["label"]).unwrap()["label"], vec!["a=b"]);
        assert!(q.filters(&["dangling"]).is_err());
        assert!(Query::parse(Some("filters=nope")).filters(&[]).is_err());
    }

    #[test]
    fn flags() {
        let q = Query::parse(Some("a=1&b=true&c=0&d=False"));
        assert!(q.flag("a") && q.flag("b") && !q.flag("c") && !q.flag("d") && !q.flag("e"));
    }

    #[test]
    fn a_repeated_key_means_its_first_value_as_in_go() {
        let q = Query::parse(Some("dockerfile=.dockerfile.1&dockerfile=FROM+busybox"));
        assert_eq!(q.get("dockerfile"), Some(".dockerfile.1"));
        assert_eq!(q.all("dockerfile").len(), 2);
    }

    #[test]
    fn decodes_registry_auth() {
        let json = r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = registry_auth(Some(&h)).unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        assert!(registry_auth(Some("!!!")).is_err());
        assert!(registry_auth(None).unwrap().username.is_none());
    }
}
