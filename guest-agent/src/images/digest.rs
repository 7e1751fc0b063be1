//! Content digests: validation (a digest becomes a file name, so it must be exactly
//! `sha256:<64 lowercase hex>`) and hashing.

use sha2::{Digest as _, Sha256};

use super::ImageError;

/// Returns the hex part of a well-formed sha256 digest.
pub fn hex_of(digest: &str) -> Result<&str, ImageError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| ImageError::Corrupt(format!("unsupported digest {digest:?}")))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(ImageError::Corrupt(format!("malformed digest {digest:?}")))
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The first 12 hex digits, as Docker shows IDs and layers.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Layer chain IDs as dockerd reports them on delete: chain(0) = diff(0),
/// chain(n) = sha256(chain(n-1) + " " + diff(n)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_digests() {
        let d = sha256(b"x");
        assert!(hex_of(&d).is_ok());
        assert!(hex_of("sha256:../../etc").is_err());
        assert!(hex_of("md5:abc").is_err());
        assert_eq!(short(&d).len(), 12);
    }
}
