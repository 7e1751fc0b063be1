//! API version negotiation exactly as dockerd does it: an optional `/vX.Y` prefix, a
//! minimum and a maximum, and dockerd's error texts when a client is out of range.

use std::cmp::Ordering;
use std::fmt;

/// The newest API this engine speaks (the shapes come from bollard-stubs 1.53).
pub const MAX_API: ApiVersion = ApiVersion(1, 53);
/// The oldest API accepted, as dockerd 28.
pub const MIN_API: ApiVersion = ApiVersion(1, 24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits `/v1.50/images/json` into (`/images/json`, version). Paths without a prefix
/// get the newest version. Out-of-range versions yield dockerd's messages.
pub fn split_version(path: &str) -> Result<(&str, ApiVersion), String> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((path, MAX_API));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = ApiVersion::parse(ver) else {
        // Not a version prefix (e.g. `/volumes`): route as is.
        return Ok((path, MAX_API));
    };
    match v.cmp(&MIN_API) {
        Ordering::Less => {
            return Err(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API}, please upgrade your client to a newer version"
            ))
        }
        _ if v > MAX_API => {
            return Err(format!(
                "client version {v} is too new. Maximum supported API version is {MAX_API}"
            ))
        }
        _ => {}
    }
    Ok((if tail.is_empty() { "/" } else { tail }, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates() {
        assert_eq!(
            split_version("/v1.50/images/json").unwrap(),
            ("/images/json", ApiVersion(1, 50))
        );
        assert_eq!(split_version("/_ping").unwrap(), ("/_ping", MAX_API));
        assert_eq!(split_version("/volumes").unwrap(), ("/volumes", MAX_API));
        assert!(split_version("/v1.12/info")
            .unwrap_err()
            .contains("is too old. Minimum supported API version is 1.24"));
        assert!(split_version("/v9.0/info")
            .unwrap_err()
            .contains("is too new. Maximum supported API version is 1.53"));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 10));
    }
}
