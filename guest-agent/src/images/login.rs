//! Checking registry credentials for `docker login` (`POST /auth`), the way dockerd's
//! `loginV2` does: ping `/v2/`, then either retry it with Basic credentials or ask the
//! Bearer realm for a token with them. `oci-client` has no "verify credentials" call (its
//! Basic fallback never checks them), hence the two plain requests here.

use std::time::Duration;

use reqwest::StatusCode;

use super::{ImageError, ImageService};

/// `https://index.docker.io/v1/`, `http://host:5000/`, `host:5000` → `host:5000`.
pub fn registry_host(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "docker.io" => "registry-1.docker.io".to_string(),
        h => h.to_string(),
    }
}

/// Parses `Bearer realm="…",service="…"` into (realm, service).
fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some((realm?, service))
}

impl ImageService {
    pub async fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ImageError> {
        let host = registry_host(server);
        let scheme = if self.allows_plain_http(&host) {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}/v2/");
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ImageError::Registry(e.to_string()))?;
        let net = |e: reqwest::Error| ImageError::Registry(super::pull::request_error(&e));
        let ping = client.get(&url).send().await.map_err(net)?;
        if ping.status().is_success() {
            return Ok(()); // the registry needs no credentials
        }
        let failed = |status: StatusCode, url: &str| {
            ImageError::Unauthorized(format!(
                "login attempt to {url} failed with status: {status}"
            ))
        };
        if ping.status() != StatusCode::UNAUTHORIZED {
            return Err(failed(ping.status(), &url));
        }
        let challenge = ping
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer_challenge);
        match challenge {
            Some((realm, service)) => {
                let mut req = client
                    .get(&realm)
                    .basic_auth(username, Some(password))
                    .query(&[("account", username)]);
                if let Some(s) = &service {
                    req = req.query(&[("service", s)]);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| ImageError::Registry(format!("Get \"{realm}\": {e}")))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(ImageError::Unauthorized(format!(
                        "Get \"{realm}\": unauthorized: incorrect username or password"
                    )))
                }
            }
            None => {
                let resp = client
                    .get(&url)
                    .basic_auth(username, Some(password))
                    .send()
                    .await
                    .map_err(net)?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(failed(resp.status(), &url))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_challenges() {
        assert_eq!(
            registry_host("https://index.docker.io/v1/"),
            "registry-1.docker.io"
        );
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        let (r, s) =
            bearer_challenge(r#"Bearer realm="http://127.0.0.1:9/token",service="reg""#).unwrap();
        assert_eq!(r, "http://127.0.0.1:9/token");
        assert_eq!(s.as_deref(), Some("reg"));
        assert!(bearer_challenge("Basic realm=\"x\"").is_none());
    }
}
