//! Dockerfile parsing: comments, the `escape` directive, line continuations, JSON and
//! shell forms, and variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alt}`). Written here rather than taken from a crate: the one the issue
//! names (`parse-dockerfile`) does no substitution, which is where the rules are.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// One instruction: its keyword (upper case), the raw rest of the line (continuations
/// joined), and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub keyword: String,
    pub rest: String,
    pub line: usize,
}

/// Docker's instructions: `parse` refuses every other keyword.
pub const KNOWN: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

pub fn parse(text: &str) -> Result<Vec<Instruction>, ParseError> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut directives_done = false;
    // An open heredoc: the instruction it belongs to, its terminator, `<<-`, the body.
    let mut heredoc: Option<(usize, String, bool, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if let Some((idx, word, strip, mut body)) = heredoc.take() {
            let line = if strip {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == word {
                finish_heredoc(&mut out[idx], &word, &body);
            } else {
                body.push_str(line);
                body.push('\n');
                heredoc = Some((idx, word, strip, body));
            }
            continue;
        }
        let trimmed = raw.trim();
        if !directives_done {
            if let Some(d) = trimmed.strip_prefix('#') {
                if let Some((k, v)) = d.trim().split_once('=') {
                    if k.trim().eq_ignore_ascii_case("escape") {
                        escape = v.trim().chars().next().unwrap_or('\\');
                        continue;
                    }
                }
            }
            if !trimmed.starts_with('#') || !trimmed.contains('=') {
                directives_done = true;
            }
        }
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (cont, body) = match trimmed.strip_suffix(escape) {
            Some(b) => (true, b.to_string()),
            None => (false, trimmed.to_string()),
        };
        let (start, mut acc) = pending.take().unwrap_or((n, String::new()));
        if !acc.is_empty() && !body.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body.trim());
        if cont {
            pending = Some((start, acc));
            continue;
        }
        if acc.is_empty() {
            continue;
        }
        let ins = instruction(start, &acc)?;
        let marker = (ins.keyword == "RUN")
            .then(|| heredoc_marker(&ins.rest))
            .flatten();
        out.push(ins);
        if let Some((word, strip)) = marker {
            heredoc = Some((out.len() - 1, word, strip, String::new()));
        }
    }
    if let Some((_, word, _, _)) = heredoc {
        return Err(ParseError {
            line: text.lines().count(),
            message: format!("unterminated heredoc: no line reads {word}"),
        });
    }
    // A continuation on the last line ends the instruction all the same.
    if let Some((start, acc)) = pending.filter(|(_, acc)| !acc.is_empty()) {
        out.push(instruction(start, &acc)?);
    }
    Ok(out)
}

/// One instruction's joined text: keyword (checked) and the rest.
fn instruction(line: usize, text: &str) -> Result<Instruction, ParseError> {
    let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = kw.to_ascii_uppercase();
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(ParseError {
            line,
            message: format!("unknown instruction: {kw}"),
        });
    }
    Ok(Instruction {
        keyword,
        rest: rest.trim().to_string(),
        line,
    })
}

/// `<<WORD`, `<<-WORD` or `<<"WORD"` in a RUN line: (WORD, strip leading tabs).
fn heredoc_marker(rest: &str) -> Option<(String, bool)> {
    let at = rest.find("<<")?;
    let after = &rest[at + 2..];
    let (strip, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let word: String = after
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some((word, strip))
}

/// A RUN whose only argument is the heredoc runs the body as its script; otherwise the
/// shell gets the line and the heredoc together, as it would read them from a file.
fn finish_heredoc(ins: &mut Instruction, word: &str, body: &str) {
    let only_marker = ins
        .rest
        .trim_start_matches("<<")
        .trim_start_matches('-')
        .trim_matches(['"', '\''])
        == word;
    ins.rest = if only_marker {
        body.trim_end().to_string()
    } else {
        format!("{}\n{body}{word}", ins.rest)
    };
}

/// The JSON form (`["a", "b"]`), when the text is one.
pub fn json_form(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str(t).ok()
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}`; `\$` is a literal `$`.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(end) = chars[i + 2..].iter().position(|&x| x == '}') else {
                out.push(c);
                i += 1;
                continue;
            };
            let inner: String = chars[i + 2..i + 2 + end].iter().collect();
            let value = if let Some((name, d)) = inner.split_once(":-") {
                vars.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| d.to_string())
            } else if let Some((name, alt)) = inner.split_once(":+") {
                if vars.get(name).is_some_and(|v| !v.is_empty()) {
                    alt.to_string()
                } else {
                    String::new()
                }
            } else {
                vars.get(&inner).cloned().unwrap_or_default()
            };
            out.push_str(&value);
            i += 3 + end;
            continue;
        }
        let name: String = chars[i + 1..]
            .iter()
            .take_while(|x| x.is_ascii_alphanumeric() || **x == '_')
            .collect();
        if name.is_empty() {
            out.push('$');
            i += 1;
        } else {
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i += 1 + name.chars().count();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_continuations_and_comments() {
        let f = "# syntax comment\nFROM base AS b\n\n# a comment\nRUN echo a \\\n  && echo b\nenv A=1\n";
        let v = parse(f).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].keyword, "FROM");
        assert_eq!(v[1].rest, "echo a && echo b");
        assert_eq!(v[1].line, 5);
        assert_eq!(v[2].keyword, "ENV");
        let e = parse("FROM x\nFROOM y\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: unknown instruction: FROOM"
        );
    }

    #[test]
    fn heredocs() {
        let v = parse(
            "FROM x\nRUN <<EOF\necho a\necho b\nEOF\nRUN cat > /f <<-END\n\tline\n\tEND\nCMD y\n",
        )
        .unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[1].rest, "echo a\necho b");
        assert_eq!(v[2].rest, "cat > /f <<-END\nline\nEND");
        assert_eq!(v[3].keyword, "CMD");
        assert!(parse("FROM x\nRUN <<EOF\necho\n").is_err());
    }

    /// Found by the `dockerfile` fuzz target: an instruction still open at the end of
    /// the file (its last line ends in the escape) skipped the keyword check.
    #[test]
    fn last_instruction_with_a_continuation_is_checked_too() {
        let e = parse("FROM x\nC'PY a \\\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: unknown instruction: C'PY"
        );
        let v = parse("FROM x\nRUN a \\\n  b \\").unwrap();
        assert_eq!((v[1].keyword.as_str(), v[1].rest.as_str()), ("RUN", "a b"));
        assert_eq!(parse("FROM x\n\\").unwrap().len(), 1);
    }

    #[test]
    fn escape_directive() {
        let v = parse("# escape=`\nFROM x\nRUN a `\n b\n").unwrap();
        assert_eq!(v[1].rest, "a b");
    }

    #[test]
    fn substitution() {
        let mut vars = HashMap::new();
        vars.insert("A".to_string(), "1".to_string());
        assert_eq!(
            expand("$A-${A}-${B:-d}-${A:+x}-${B:+y}-\\$A", &vars),
            "1-1-d-x--$A"
        );
        assert_eq!(
            json_form(r#"["a","b c"]"#),
            Some(vec!["a".into(), "b c".into()])
        );
        assert_eq!(json_form("a b"), None);
    }
}
