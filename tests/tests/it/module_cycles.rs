//! Arrows between modules point one way: in every crate of the workspace, no two modules
//! import each other, directly or around a loop, and no module imports the crate root (the
//! composition root wires everything; nothing depends on it).
//!
//! The check reads the source as text: each file is a module (`a/b.rs` and `a/b/mod.rs` are
//! `a::b`), and every `crate::…` / `super::…` path in it (in `use` lines, grouped or not, and in
//! code) is an edge to the deepest module that path names. Edges between a module and its own
//! ancestors or descendants are a parent's business and not counted. Cycles are reported at
//! two levels: between files, and between the crate's top-level modules (its layers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside one crate, `[]` being the crate root.
type ModPath = Vec<String>;

/// Every `.rs` file under `src`, as (module path, text).
fn modules(src: &Path) -> Vec<(ModPath, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                out.push((module_path(src, &path), text));
            }
        }
    }
    out
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The text without comments and string literals, so doc examples do not count as imports.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// Paths a piece of code names: `crate::a::b`, `super::c`, and each leaf of a grouped
/// `use crate::{a::b, c::{d, e}}`.
fn referenced_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            rest = &rest[at..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                rest = &rest[start.len()..];
                continue;
            }
            let head = start.trim_end_matches(':').to_string();
            out.extend(expand(vec![head], &rest[start.len()..]));
            rest = &rest[start.len()..];
        }
    }
    out
}

/// Follow a path after `prefix::`, expanding `{…}` groups.
fn expand(prefix: Vec<String>, text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('{') {
        let mut depth = 1;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &inner[..end];
        let mut items = Vec::new();
        let (mut depth, mut from) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&body[from..i]);
                    from = i + 1;
                }
                _ => {}
            }
        }
        items.push(&body[from..]);
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(|item| expand(prefix.clone(), item))
            .collect();
    }
    let mut path = prefix;
    let mut rest = text;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        path.push(ident);
        match rest.strip_prefix("::") {
            Some(r) if r.trim_start().starts_with('{') => return expand(path, r),
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![path]
}

/// Names a module re-exports (`pub use a::b::X;`), mapped to the path they stand for.
type Reexports = BTreeMap<(ModPath, String), Vec<String>>;

fn reexports(files: &[(ModPath, String)]) -> Reexports {
    let mut out = Reexports::new();
    for (module, text) in files {
        let code = code_only(text);
        for line in code.split(';') {
            let line = line.trim();
            let Some(rest) = ["pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
            else {
                continue;
            };
            let rest = rest.trim();
            let (head, tail) = match rest.split_once("::") {
                Some((h, t)) => (h.trim(), t),
                None => continue,
            };
            let mut prefix: Vec<String> = match head {
                "crate" | "super" => vec![head.to_string()],
                "self" => vec!["crate".to_string()]
                    .into_iter()
                    .chain(module.iter().cloned())
                    .collect(),
                // `pub use child::X` names a child module of this one.
                other => vec!["crate".to_string()]
                    .into_iter()
                    .chain(module.iter().cloned())
                    .chain(std::iter::once(other.to_string()))
                    .collect(),
            };
            if prefix.first().map(String::as_str) == Some("super") {
                let mut parent = module.clone();
                parent.pop();
                prefix = std::iter::once("crate".to_string()).chain(parent).collect();
            }
            for path in expand(prefix, tail) {
                if let Some(name) = path.last() {
                    let name = name.clone();
                    if name != "self" && name != "crate" && name != "super" {
                        out.insert((module.clone(), name), path);
                    }
                }
            }
        }
    }
    out
}

/// The deepest known module a path names, from the module `from`, following re-exports.
fn resolve(
    from: &ModPath,
    path: &[String],
    known: &BTreeSet<ModPath>,
    reexported: &Reexports,
) -> Option<ModPath> {
    resolve_within(from, path, known, reexported, 0)
}

fn resolve_within(
    from: &ModPath,
    path: &[String],
    known: &BTreeSet<ModPath>,
    reexported: &Reexports,
    depth: usize,
) -> Option<ModPath> {
    let mut absolute: ModPath = Vec::new();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
        }
        Some("super") => {
            absolute = from.clone();
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                segments.next();
                absolute.pop()?;
            }
        }
        _ => return None,
    }
    for segment in segments {
        let mut next = absolute.clone();
        next.push(segment.clone());
        if known.contains(&next) {
            absolute = next;
            continue;
        }
        if depth < 8
            && let Some(target) = reexported.get(&(absolute.clone(), segment.clone()))
        {
            return resolve_within(&absolute, target, known, reexported, depth + 1);
        }
        break;
    }
    Some(absolute)
}

fn related(a: &ModPath, b: &ModPath) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Module-to-module edges of one crate's sources.
fn edges(files: &[(ModPath, String)]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let known: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let reexported = reexports(files);
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, text) in files {
        // Test modules (`tests.rs`, and unit tests below `#[cfg(test)]`) may reach anywhere.
        if module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let text = text.split("#[cfg(test)]").next().unwrap_or(text);
        for path in referenced_paths(&code_only(text)) {
            if let Some(target) = resolve(module, &path, &known, &reexported)
                && (target.is_empty() || !related(module, &target))
            {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one node (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.graph.get(v) {
            for w in targets {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    let nodes: BTreeSet<&ModPath> = graph
        .iter()
        .flat_map(|(k, vs)| std::iter::once(k).chain(vs.iter()))
        .collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn top(m: &ModPath, depth: usize) -> ModPath {
    m.iter().take(depth).cloned().collect()
}

/// Collapse a graph onto the modules `depth` levels down (1: the crate's top-level modules, its
/// layers; 2: the rooms inside each layer folder).
fn layers(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    depth: usize,
) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut out: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (from, targets) in graph {
        for to in targets {
            let (a, b) = (top(from, depth), top(to, depth));
            if a != b && !related(&a, &b) {
                out.entry(a).or_default().insert(b);
            }
        }
    }
    out
}

/// Every problem of one crate: file cycles, layer cycles, and, in a crate whose root is a
/// composition root, imports of the root.
fn problems(files: &[(ModPath, String)], composition_root: bool) -> Vec<String> {
    let graph = edges(files);
    let mut out = Vec::new();
    for (from, targets) in &graph {
        if composition_root && !from.is_empty() && targets.contains(&ModPath::new()) {
            out.push(format!(
                "{} imports the crate root (composition root)",
                from.join("::")
            ));
        }
    }
    let show = |c: &Vec<ModPath>| -> String {
        c.iter()
            .map(|m| m.join("::"))
            .collect::<Vec<_>>()
            .join(" <-> ")
    };
    for cycle in cycles(&graph) {
        out.push(format!("module cycle: {}", show(&cycle)));
    }
    for depth in [1, 2] {
        for cycle in cycles(&layers(&graph, depth)) {
            // Name the file-level imports behind each arrow of the loop, so it can be cut.
            let mut why = Vec::new();
            for (from, targets) in &graph {
                for to in targets {
                    let (a, b) = (top(from, depth), top(to, depth));
                    if a != b && cycle.contains(&a) && cycle.contains(&b) {
                        why.push(format!("{} -> {}", from.join("::"), to.join("::")));
                    }
                }
            }
            let kind = if depth == 1 { "layer" } else { "room" };
            let line = format!(
                "{kind} cycle: {} (imports: {})",
                show(&cycle),
                why.join(", ")
            );
            if !out.contains(&line) {
                out.push(line);
            }
        }
    }
    out
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[test]
fn no_crate_has_a_module_cycle() {
    let root = workspace_root();
    let crates = [
        "core",
        "plugins",
        "server",
        "storage-embedded",
        "storage-mysql",
        "storage-postgres",
        "tests",
        "tests/conformance",
    ];
    let mut report = Vec::new();
    for name in crates {
        let src = root.join(name).join("src");
        let files = modules(&src);
        assert!(!files.is_empty(), "no sources under {}", src.display());
        for problem in problems(&files, name == "server") {
            report.push(format!("{name}: {problem}"));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

fn file(path: &str, text: &str) -> (ModPath, String) {
    let module = if path.is_empty() {
        Vec::new()
    } else {
        path.split("::").map(str::to_string).collect()
    };
    (module, text.to_string())
}

#[test]
fn the_check_finds_what_it_must() {
    // A layer that imports an edge that imports it back, through a grouped use.
    let looped = [
        file("", "pub mod http; pub mod config;"),
        file("http", "pub mod error; pub use error::ServiceError;"),
        file(
            "http::error",
            "pub struct ServiceError(crate::config::service::Svc);",
        ),
        file(
            "http::v1",
            "use crate::{config::{service::Svc, ops}, http::ServiceError};",
        ),
        file("config", "pub mod service; pub mod ops;"),
        file("config::service", "use crate::http::error::ServiceError;"),
        file(
            "config::ops",
            "// crate::http::v1 in a comment is no import\n",
        ),
    ];
    let found = problems(&looped, true);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("layer cycle: config <-> http")),
        "{found:?}"
    );
    assert!(
        found.contains(&"module cycle: config::service <-> http::error".to_string()),
        "{found:?}"
    );
    // A module that reaches for the composition root.
    let rooted = [
        file("", "pub struct App; pub mod http;"),
        file("http", "use crate::App; use super::App as A;"),
    ];
    assert_eq!(
        problems(&rooted, true),
        vec!["http imports the crate root (composition root)".to_string()]
    );
    // One-way arrows and parent/child references are fine.
    let clean = [
        file("", "pub mod http; pub mod config;"),
        file(
            "http",
            "pub mod v1; use crate::config::Svc; pub use v1::route;",
        ),
        file("http::v1", "use super::Svc; use crate::config::ops::f;"),
        file("config", "pub mod ops; pub struct Svc;"),
        file("config::ops", "use super::Svc;"),
    ];
    assert_eq!(problems(&clean, true), Vec::<String>::new());
}
