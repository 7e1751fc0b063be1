//! ARG declarations and the shell-word rules Docker applies to their values and to
//! FROM lines: splitting at unquoted blanks, quote removal, backslash escapes, and
//! variable expansion everywhere but inside single quotes.

use std::collections::HashMap;

use super::dockerfile::{self, Instruction};
use super::error::PlanError;

/// One `NAME[=default]` of an ARG line; the default is the raw word, quotes intact,
/// because its expansion depends on what is in scope where the ARG stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// The declarations of one ARG line (`ARG A B=1 C="x y"`).
pub fn arg_decls(ins: &Instruction) -> Result<Vec<ArgDecl>, PlanError> {
    let decls: Vec<ArgDecl> = words(&ins.rest)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((n, d)) => ArgDecl {
                name: n.to_string(),
                default: Some(d.to_string()),
            },
            None => ArgDecl {
                name: w,
                default: None,
            },
        })
        .collect();
    if decls.is_empty() {
        return Err(PlanError::EmptyArg { line: ins.line });
    }
    Ok(decls)
}

/// Splits at unquoted whitespace, keeping quotes and escapes in the words (they are
/// taken out by [`word`] once it is known what the word is).
pub(super) fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One word as a shell reads it: variables expanded except inside single quotes,
/// quotes removed, a backslash escaping the next character outside single quotes
/// (`\$` stays a literal `$`).
pub fn word(w: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    // Text not yet expanded: expansion runs over runs of unquoted or double-quoted text.
    let mut pending = String::new();
    let mut quote: Option<char> = None;
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), c) => out.push(c),
            (None, '\'') => {
                out.push_str(&dockerfile::expand(&std::mem::take(&mut pending), vars));
                quote = Some('\'');
            }
            (None, '"') => quote = Some('"'),
            (Some('"'), '"') => quote = None,
            (q, '\\') => match chars.next() {
                Some('$') => pending.push_str("\\$"),
                // Inside double quotes only these are escapes; elsewhere the backslash stays.
                Some(n) if q.is_none() || matches!(n, '"' | '\\') => {
                    out.push_str(&dockerfile::expand(&std::mem::take(&mut pending), vars));
                    out.push(n);
                }
                Some(n) => {
                    pending.push('\\');
                    pending.push(n);
                }
                None => pending.push('\\'),
            },
            (_, c) => pending.push(c),
        }
    }
    out.push_str(&dockerfile::expand(&pending, vars));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        let vars = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(word("\"$A x\"", &vars), "1 x");
        assert_eq!(word("'$A x'", &vars), "$A x");
        assert_eq!(word("a\\ b\\$A", &vars), "a b$A");
        assert_eq!(word("\"q\\\"q\"", &vars), "q\"q");
        assert_eq!(word("pre'$A'\"$A\"$A", &vars), "pre$A11");
        assert_eq!(
            words("A=\"x y\" B='z w'  C"),
            vec!["A=\"x y\"", "B='z w'", "C"]
        );
    }
}
