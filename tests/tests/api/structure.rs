//! The service's source keeps the shape it was given: no import circle between its files, no
//! service that knows GraphQL or HTTP, no function longer than a screenful and a half. Read
//! from the source text itself (`api/src`), so a change that breaks one fails here with the
//! files and functions named.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function may be, in lines from its `fn` to its closing brace.
const LONGEST_FUNCTION: usize = 100;

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src")
}

/// Every `.rs` file under `root`, as its path relative to `root` (`teams/service.rs`).
fn source_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(relative) = path.strip_prefix(root)
            {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The text of a file without comments and string literals' contents, line breaks kept so
/// line numbers stay.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == 'r' && next == Some('#') && chars.get(i + 2) == Some(&'"') {
            // r#"…"#
            i += 3;
            while i + 1 < chars.len() && !(chars[i] == '"' && chars[i + 1] == '#') {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 2;
        } else if c == '\'' && next.is_some_and(|n| n != '\\') && chars.get(i + 2) == Some(&'\'') {
            // a char literal such as '{' would unbalance the braces counted below
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            out.push_str("' '");
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Blanks `#[cfg(test)] mod … { … }` blocks, keeping their line breaks: a test module may
/// import whatever it tests.
fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut lines = code.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let is_test_module = line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod ") && l.contains('{'));
        if !is_test_module {
            out.push_str(line);
            continue;
        }
        out.push('\n');
        let mut depth = 0i64;
        for line in lines.by_ref() {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            out.push('\n');
            if depth <= 0 {
                break;
            }
        }
    }
    out
}

/// The module path of a file (`teams/service.rs` → `["teams", "service"]`; `mod.rs` and
/// `lib.rs` name their folder).
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The paths a `use` tree names, its braces expanded (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let Some(close) = tree.rfind('}') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..close];
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand_use(&format!("{prefix}{i}")))
        .collect()
}

/// Every path a file's code names from the crate: `use` trees and paths written in place
/// (`crate::db::page`), made absolute (`super::` and `self::` resolved against `module`).
fn paths_named(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut raw = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        rest = &rest[at + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            raw.extend(expand_use(&rest[..end]));
        }
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|a| a + from) {
            from = at + start.len();
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':')
            {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            raw.push(code[at..end].trim_end_matches(':').to_owned());
        }
    }
    raw.into_iter()
        .filter_map(|p| {
            let mut segments: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
            let mut absolute: Vec<String> = match segments.first() {
                Some(&"crate") => {
                    segments.remove(0);
                    Vec::new()
                }
                Some(&"super") | Some(&"self") => {
                    // `module` already names a folder's `mod.rs` by its folder, so each
                    // `super` is one step up from it and `self` none.
                    let mut base = module.to_vec();
                    while let Some(&s) = segments.first() {
                        match s {
                            "self" => {}
                            "super" => {
                                base.pop();
                            }
                            _ => break,
                        }
                        segments.remove(0);
                    }
                    base
                }
                _ => return None,
            };
            absolute.extend(segments.iter().map(|s| (*s).to_owned()));
            Some(absolute)
        })
        .collect()
}

/// The file a path lands in: the longest prefix of it that is a module of its own.
fn file_of(path: &[String], modules: &BTreeMap<Vec<String>, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

/// Which files each file imports from (`lib.rs`, which only declares modules, left out).
fn import_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = source_files(root);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter(|f| f.as_str() != "lib.rs" && f.as_str() != "main.rs" && !f.starts_with("bin/"))
        .map(|f| (module_of(f), f.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for file in modules.values() {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let module = module_of(file);
        let targets: BTreeSet<String> =
            paths_named(&without_test_modules(&code_of(&text)), &module)
                .iter()
                .filter_map(|p| file_of(p, &modules))
                .filter(|t| t != file)
                .collect();
        graph.insert(file.clone(), targets);
    }
    graph
}

/// The groups of files that reach each other through imports (Tarjan's strongly connected
/// components), each of more than one file.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// Every function's name, first line and length in lines, from `fn` to its closing brace.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else {
            continue;
        };
        let head = &trimmed[..at];
        let is_fn = head
            .split_whitespace()
            .all(|w| ["pub", "async", "const", "unsafe"].contains(&w) || w.starts_with("pub("));
        if !is_fn {
            continue;
        }
        let name: String = trimmed[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i64;
        let mut opened = false;
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
            if opened && depth == 0 {
                out.push((name.clone(), i + 1, j - i + 1));
                break;
            }
        }
    }
    out
}

#[test]
fn no_import_circle_between_the_services_files() {
    let graph = import_graph(&source_root());
    assert!(
        graph.len() > 100,
        "the source was not found: {} files",
        graph.len()
    );
    assert!(
        graph["teams/resolvers.rs"].contains("teams/service.rs"),
        "imports are not read: {:?}",
        graph["teams/resolvers.rs"]
    );
    let found = circles(&graph);
    assert!(found.is_empty(), "files that import each other: {found:#?}");
}

#[test]
fn a_circle_is_found_where_there_is_one() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edges = [
        ("a.rs", "b.rs"),
        ("b.rs", "c.rs"),
        ("c.rs", "a.rs"),
        ("c.rs", "d.rs"),
    ];
    for (from, to) in edges {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    assert_eq!(circles(&graph), vec![vec!["a.rs", "b.rs", "c.rs"]]);
}

#[test]
fn imports_are_read_from_use_trees_and_paths_in_place() {
    let code = code_of(
        "use super::service::{self, Filter};\nuse crate::graphql::{ids, pagination::Conn};\n\
         // crate::not::this\nfn f() { crate::db::page(\"crate::nor::this\"); }\n",
    );
    let module = vec!["teams".to_owned(), "resolvers".to_owned()];
    let paths = paths_named(&code, &module);
    for expected in [
        "teams::service::self",
        "teams::service::Filter",
        "graphql::ids",
        "graphql::pagination::Conn",
        "db::page",
    ] {
        assert!(
            paths.iter().any(|p| p.join("::") == expected),
            "{expected} not in {paths:?}"
        );
    }
    assert!(!paths.iter().any(|p| p[0] == "not" || p[0] == "nor"));
}

#[test]
fn no_service_knows_graphql_or_http() {
    let root = source_root();
    let services: Vec<String> = source_files(&root)
        .into_iter()
        .filter(|f| f.ends_with("/service.rs"))
        .collect();
    assert!(services.len() >= 8, "services not found: {services:?}");
    let mut knowing = Vec::new();
    for file in services {
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let code = without_test_modules(&code_of(&text));
        for name in ["async_graphql", "axum", "crate::graphql", "crate::http"] {
            if code.contains(name) {
                knowing.push(format!("{file} names {name}"));
            }
        }
    }
    assert!(knowing.is_empty(), "{knowing:#?}");
}

#[test]
fn no_function_is_longer_than_a_hundred_lines() {
    let root = source_root();
    let mut long = Vec::new();
    let mut counted = 0;
    for file in source_files(&root) {
        let code = code_of(&std::fs::read_to_string(root.join(&file)).unwrap_or_default());
        for (name, line, length) in functions(&code) {
            counted += 1;
            if length > LONGEST_FUNCTION {
                long.push(format!("{file}:{line} {name}: {length} lines"));
            }
        }
    }
    assert!(counted > 1000, "functions were not found: {counted}");
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn a_function_is_measured_from_fn_to_its_closing_brace() {
    let code = code_of(
        "pub async fn a(\n    x: i32,\n) -> i32 {\n    let s = \"}\";\n    if x > 0 {\n        1\n    } else { '}'; 2 }\n}\nfn declared();\nfn b() {}\n",
    );
    assert_eq!(
        functions(&code),
        vec![("a".to_owned(), 1, 8), ("b".to_owned(), 10, 1)]
    );
}
