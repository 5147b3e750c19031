//! No import circles in the library: the `use` lines of `src/client` and
//! `src/ffi` read into a graph of modules (one node per file; a `mod.rs` is
//! its folder's module), which must have no circle. A circle means two files
//! that can only be read, changed or tested together; break it by moving what
//! both need into a leaf, or by a trait the lower file defines.
//!
//! Run it alone with `cargo test --test import_graph`: a failure names every
//! circle, file by file.
//!
//! What counts as an edge: a `use` item at the top level of a file (not
//! indented: the `use` lines of a `mod tests` or of a function are left
//! out), with a path that starts with `crate::`, `super::`, `self::` or a
//! child module, resolved to the longest module of the graph it names
//! (`crate::client::http::retry::Method` is an edge to `client::http::retry`;
//! `crate::client::Error`, to `client`, whose `mod.rs` re-exports it). Paths
//! into other crates are no edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module of each file: `src/client/http/retry.rs` is
/// `client::http::retry`, `src/client/mod.rs` is `client`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The top-level `use` items of a file's text, each as one string without
/// `use`, visibility or the final `;`.
fn use_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(item) = current.as_mut() {
            item.push(' ');
            item.push_str(line.trim());
        } else {
            let rest = ["pub use ", "pub(crate) use ", "pub(super) use ", "use "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix));
            match rest {
                Some(rest) => current = Some(rest.trim().to_owned()),
                None => continue,
            }
        }
        if current.as_ref().is_some_and(|i| i.ends_with(';')) {
            let item = current.take().unwrap();
            items.push(item.trim_end_matches(';').trim().to_owned());
        }
    }
    items
}

/// The paths of a `use` item, braces expanded: `a::{b, c::{d, e}}` gives
/// `a::b`, `a::c::d`, `a::c::e` (`self` in a group is the group's path;
/// `as` renames are dropped).
fn expand(item: &str) -> Vec<String> {
    let item: String = item.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = item.find('{') else {
        let path = item.split(" as ").next().unwrap_or("").trim();
        return vec![path.trim_end_matches("::").to_owned()];
    };
    let prefix = item[..open].trim_end_matches("::");
    let close = item.rfind('}').expect("a `{` without `}`");
    let inner = &item[open + 1..close];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut paths = Vec::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        for tail in expand(part) {
            let joined = if tail == "self" || tail.starts_with("self ") {
                prefix.to_owned()
            } else if prefix.is_empty() {
                tail
            } else {
                format!("{prefix}::{tail}")
            };
            paths.push(joined);
        }
    }
    paths
}

/// The module of the graph that `path`, written in module `from`, names:
/// the longest known module it starts with; `None` for another crate.
fn resolve(from: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = from.split("::").collect();
    let mut rest = &segments[..];
    match rest.first() {
        Some(&"crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some(&"self") => rest = &rest[1..],
        Some(&"super") => {
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let child = format!("{from}::{first}");
            if !modules.contains(&child) {
                return None; // another crate
            }
        }
        None => return None,
    }
    let mut found = None;
    let mut current = base.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if !current.is_empty() && modules.contains(&current.join("::")) {
        found = Some(current.join("::"));
    }
    for segment in rest {
        current.push(segment.to_string());
        let name = current.join("::");
        if modules.contains(&name) {
            found = Some(name);
        } else {
            break;
        }
    }
    found
}

/// The graph of `files` (module name, text): module → modules it imports.
fn graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in files {
        let targets: BTreeSet<String> = use_items(text)
            .iter()
            .flat_map(|item| expand(item))
            .filter_map(|path| resolve(module, &path, &modules))
            .filter(|target| target != module)
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// Every circle of the graph, each once, as the modules along it.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            found.push(circle);
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, found);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// The `.rs` files under `dir` (relative to `src/`), recursively.
fn sources(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src.join(dir))
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(src).unwrap().to_path_buf();
        if path.is_dir() {
            sources(src, &relative, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((module_of(&relative), text));
        }
    }
}

#[test]
fn the_library_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["client", "ffi"] {
        sources(&src, Path::new(dir), &mut files);
    }
    let edges = graph(&files);
    let count: usize = edges.values().map(BTreeSet::len).sum();
    assert!(
        edges.len() > 30 && count > 60,
        "only {} modules and {count} imports found: is the parser still reading the tree?",
        edges.len()
    );
    let found = circles(&edges);
    assert!(
        found.is_empty(),
        "import circles in src/client and src/ffi:\n  {}",
        found
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

fn example(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect()
}

#[test]
fn a_planted_circle_is_caught() {
    let files = example(&[
        ("client", "pub mod a;\npub mod b;\npub use a::Thing;\n"),
        (
            "client::a",
            "use std::fmt;\n\nuse super::b::{self, Other};\nuse crate::client::c;\n",
        ),
        ("client::b", "use crate::client::{\n    a::Thing,\n    Error,\n};\n"),
        ("client::c", "use serde::Serialize;\n"),
        (
            "ffi",
            "use crate::client::c::Value;\n\n#[cfg(test)]\nmod tests {\n    use crate::ffi::*;\n}\n",
        ),
    ]);
    let edges = graph(&files);
    let names = |m: &str| edges[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(names("client::a"), ["client::b", "client::c"]);
    assert_eq!(names("client::b"), ["client", "client::a"]);
    assert_eq!(names("client"), ["client::a"]);
    assert_eq!(
        names("ffi"),
        ["client::c"],
        "indented `use` lines are left out"
    );
    let found = circles(&edges);
    assert!(
        found.contains(&vec![
            "client".to_owned(),
            "client::a".to_owned(),
            "client::b".to_owned(),
            "client".to_owned()
        ]),
        "{found:?}"
    );
    // Without b's import of a (and of the root that re-exports a): none.
    let mut fixed = files.clone();
    fixed[2].1 = "use crate::client::c::Value;\n".into();
    assert!(circles(&graph(&fixed)).is_empty());
}

#[test]
fn use_groups_are_expanded() {
    assert_eq!(
        expand("super::b::{self, c::{D, e as f}, G}"),
        [
            "super::b",
            "super::b::c::D",
            "super::b::c::e",
            "super::b::G"
        ]
    );
    assert_eq!(expand("crate::client::Error"), ["crate::client::Error"]);
    assert_eq!(module_of(Path::new("client/http/mod.rs")), "client::http");
    assert_eq!(
        module_of(Path::new("client/http/retry.rs")),
        "client::http::retry"
    );
}
