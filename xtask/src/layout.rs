//! `cargo xtask layout` (run by `cargo xtask test`): the shape rules the code review
//! of issue #17 set. No source file over 800 lines outside its tests, and no import
//! loop between sibling modules — if `daemon` uses `hostlink` then nothing in
//! `hostlink` may use `daemon` — so each module can be read, and changed, from the
//! bottom up.
//!
//! References are read with `syn` from every `use` tree and every path that starts at
//! `crate`, `super` or `self`; a reference from a module to its own ancestor or
//! descendant is no loop (a child uses its parent's types). Test modules (`tests.rs`,
//! inline `#[cfg(test)]` modules) may reach anywhere and are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use syn::visit::Visit;

/// The source trees whose module graphs are checked (each is one crate's `src`).
const CRATES: &[&str] = &[
    "guest-agent/src",
    "app/src",
    "app/src-tauri/src",
    "proto/src",
    "xtask/src",
    "tests/src",
];

/// Longest a source file may be, its `#[cfg(test)]` module not counted.
const MAX_LINES: usize = 800;

pub fn layout(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for krate in CRATES {
        let src = root.join(krate);
        let files = rust_files(&src)?;
        for f in &files {
            let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
            let n = lines_outside_tests(&text);
            if n > MAX_LINES && !is_test_file(f) {
                problems.push(format!(
                    "{}: {n} lines outside tests (at most {MAX_LINES}); split it by what it owns",
                    f.strip_prefix(root).unwrap_or(f).display()
                ));
            }
        }
        for cycle in import_cycles(&src, &files)? {
            problems.push(format!("{krate}: import loop {cycle}"));
        }
    }
    if problems.is_empty() {
        println!("layout: ok (no file over {MAX_LINES} lines, no import loop)");
        return Ok(());
    }
    for p in &problems {
        println!("layout: {p}");
    }
    bail!("{} layout problem(s)", problems.len())
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let p = e?.path();
            if p.is_dir() {
                // `src/bin/*` are crates of their own.
                if p.file_name().is_some_and(|n| n != "bin") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_test_file(f: &Path) -> bool {
    f.file_name().is_some_and(|n| n == "tests.rs")
}

/// Lines of a file outside its `#[cfg(test)] mod tests { … }` block, wherever it is
/// (its end found by counting braces, which is enough for test modules).
pub fn lines_outside_tests(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].starts_with("mod tests"))
    else {
        return lines.len();
    };
    let mut depth = 0i64;
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
        if depth <= 0 && l.contains('}') {
            end = i + 1;
            break;
        }
    }
    lines.len() - (end - start)
}

/// A file's module path inside its crate: `containers/lifecycle.rs` →
/// `["containers", "lifecycle"]`; `lib.rs`, `main.rs` and `mod.rs` name their folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Paths a file refers to, as written (`crate::a::b`, `super::x`, `self::y`), each
/// with the inline modules it was written in (their `super` is not the file's).
#[derive(Default)]
struct Refs {
    paths: Vec<(Vec<String>, Vec<String>)>,
    inline: Vec<String>,
}

impl Refs {
    fn push(&mut self, path: Vec<String>) {
        if matches!(
            path.first().map(String::as_str),
            Some("crate" | "super" | "self")
        ) {
            self.paths.push((self.inline.clone(), path));
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut p = prefix.clone();
                if n.ident != "self" {
                    p.push(n.ident.to_string());
                }
                self.push(p);
            }
            syn::UseTree::Rename(r) => {
                let mut p = prefix.clone();
                p.push(r.ident.to_string());
                self.push(p);
            }
            syn::UseTree::Glob(_) => self.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().trim() == "test")
    })
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        if m.content.is_some() {
            self.inline.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.inline.pop();
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
}

/// Turns a path as written in module `at` into an absolute module path.
fn absolute(at: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut here: Vec<String> = at.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            here.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().map(String::as_str) == Some("super") {
        here.pop()?;
        rest = &rest[1..];
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

/// Loops among sibling modules, each written `a → b → a` with the parent's path.
fn import_cycles(src: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    // parent → (from sibling → to siblings)
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let at = module_of(src, f);
        let text = std::fs::read_to_string(f)?;
        let ast = syn::parse_file(&text).with_context(|| format!("parsing {}", f.display()))?;
        let mut refs = Refs::default();
        refs.visit_file(&ast);
        for (inline, p) in &refs.paths {
            let mut here = at.clone();
            here.extend(inline.iter().cloned());
            let Some(target) = absolute(&here, p) else {
                continue;
            };
            let common = at.iter().zip(&target).take_while(|(a, b)| a == b).count();
            // An ancestor or a descendant of this module: no loop possible.
            if common == at.len() || common == target.len() {
                continue;
            }
            let parent = at[..common].to_vec();
            let mut sibling = parent.clone();
            sibling.push(target[common].clone());
            if !modules.contains(&sibling) {
                continue; // an item of the parent module, not a sibling module
            }
            edges
                .entry(parent)
                .or_default()
                .entry(at[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &edges {
        for cycle in find_cycles(graph) {
            let prefix = if parent.is_empty() {
                String::new()
            } else {
                format!("{}::", parent.join("::"))
            };
            let names: Vec<String> = cycle.iter().map(|m| format!("{prefix}{m}")).collect();
            cycles.push(names.join(" → "));
        }
    }
    Ok(cycles)
}

/// One cycle per strongly connected group of the graph, as a closed walk `a b … a`.
fn find_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut seen_in_cycle: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for start in graph.keys() {
        if seen_in_cycle.contains(start) {
            continue;
        }
        // Shortest way back to `start`, breadth first.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut found = None;
        while let Some(n) = queue.pop_front() {
            for next in graph.get(&n).into_iter().flatten() {
                if next == start {
                    found = Some(n.clone());
                    break;
                }
                if !prev.contains_key(next) {
                    prev.insert(next.clone(), n.clone());
                    queue.push_back(next.clone());
                }
            }
            if found.is_some() {
                break;
            }
        }
        if let Some(last) = found {
            let mut walk = vec![start.clone()];
            let mut n = last;
            let mut back = vec![];
            while &n != start {
                back.push(n.clone());
                n = prev[&n].clone();
            }
            back.reverse();
            walk.extend(back);
            walk.push(start.clone());
            seen_in_cycle.extend(walk.iter().cloned());
            out.push(walk);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    }

    #[test]
    fn finds_a_loop_and_not_a_chain() {
        assert!(find_cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
        let c = find_cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a")]));
        assert_eq!(c, vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn paths_are_made_absolute() {
        let at: Vec<String> = ["runtime", "shim"].map(String::from).to_vec();
        let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
        assert_eq!(
            absolute(&at, &p("super::pump::Pump")),
            Some(p("runtime::pump::Pump"))
        );
        assert_eq!(absolute(&at, &p("crate::daemon")), Some(p("daemon")));
        assert_eq!(absolute(&at, &p("self::x")), Some(p("runtime::shim::x")));
        assert_eq!(absolute(&at, &p("super::super::super::x")), None);
    }

    #[test]
    fn sibling_loops_in_a_tree_are_found() {
        let dir = tempfile_dir();
        let w = |p: &str, s: &str| {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, s).unwrap();
        };
        w("lib.rs", "mod a; mod b; mod c;");
        w("a.rs", "use crate::b::B; pub struct A;");
        w("b/mod.rs", "pub struct B; fn f() { let _ = super::a::A; }");
        w(
            "c.rs",
            "use super::a::A; #[cfg(test)] mod tests { use crate::c; }",
        );
        let files = rust_files(&dir).unwrap();
        let cycles = import_cycles(&dir, &files).unwrap();
        assert_eq!(cycles, vec!["a → b → a".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_modules_do_not_count_toward_length() {
        let text = "a\nb\n#[cfg(test)]\nmod tests {\n}\n";
        assert_eq!(lines_outside_tests(text), 2);
        let middle = "a\n#[cfg(test)]\nmod tests {\n    fn f() {\n    }\n}\nb\nc\n";
        assert_eq!(lines_outside_tests(middle), 3);
        assert_eq!(lines_outside_tests("a\nb\n"), 2);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "xtask-layout-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
