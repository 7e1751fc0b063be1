//! The docker credential helper protocol (docker/docker-credential-helpers):
//! one verb per process, its input on stdin, its answer on stdout; errors are
//! printed on stdout too, with exit status 1, as the CLI expects.

use std::io::{Read, Write};

use super::{Credentials, CredsError, Store};

/// Runs `verb`; returns the process exit status.
pub fn run<S: Store + ?Sized>(
    store: &S,
    verb: &str,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> i32 {
    let result = match verb {
        "store" => read(input).and_then(|text| {
            let c: Credentials = serde_json::from_str(&text)
                .map_err(|e| Failure::Other(format!("invalid credentials JSON: {e}")))?;
            super::store(store, &c).map_err(Failure::from)?;
            Ok(String::new())
        }),
        "get" => read(input).and_then(|url| {
            let c = super::get(store, url.trim())?;
            json(&c)
        }),
        "erase" => read(input).and_then(|url| {
            super::erase(store, url.trim())?;
            Ok(String::new())
        }),
        "list" => super::list(store)
            .map_err(Failure::from)
            .and_then(|m| json(&m)),
        "version" => Ok(format!(
            "docker-credential-berth (berth) {}\n",
            env!("CARGO_PKG_VERSION")
        )),
        _ => Err(Failure::Other(
            "Usage: docker-credential-berth <store|get|erase|list|version>".into(),
        )),
    };
    match result {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(out, "{e}");
            1
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Creds(#[from] CredsError),
    #[error("{0}")]
    Other(String),
}

/// Stdin, bounded: a credential is never megabytes.
fn read(input: &mut dyn Read) -> Result<String, Failure> {
    let mut buf = String::new();
    input
        .take(1 << 20)
        .read_to_string(&mut buf)
        .map_err(|e| Failure::Other(format!("reading stdin: {e}")))?;
    Ok(buf)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure::Other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::memory::Memory;
    use super::*;

    fn call(m: &Memory, verb: &str, input: &str) -> (i32, String) {
        let mut out = Vec::new();
        let code = run(m, verb, &mut input.as_bytes(), &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn verbs() {
        let m = Memory::default();
        assert_eq!(
            call(&m, "get", "reg:5000\n"),
            (1, "credentials not found in native keychain\n".into())
        );
        let (code, _) = call(
            &m,
            "store",
            r#"{"ServerURL":"reg:5000","Username":"ann","Secret":"pw"}"#,
        );
        assert_eq!(code, 0);
        assert_eq!(
            call(&m, "get", "reg:5000"),
            (
                0,
                r#"{"ServerURL":"reg:5000","Username":"ann","Secret":"pw"}"#.into()
            )
        );
        assert_eq!(call(&m, "list", ""), (0, r#"{"reg:5000":"ann"}"#.into()));
        assert_eq!(call(&m, "erase", "reg:5000"), (0, String::new()));
        assert_eq!(call(&m, "list", ""), (0, "{}".into()));
        let (code, text) = call(&m, "store", "{not json");
        assert_eq!(code, 1);
        assert!(text.starts_with("invalid credentials JSON"), "{text}");
        assert_eq!(call(&m, "bogus", "").0, 1);
        assert!(call(&m, "version", "")
            .1
            .starts_with("docker-credential-berth"));
    }
}
