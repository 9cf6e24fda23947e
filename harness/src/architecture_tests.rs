//! The layering the README's Layout describes, pinned: no module cycle among
//! the top-level modules (and `substrate::local`, `substrate::cluster`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The unit a file belongs to: `engine`, `substrate::local`, ...
fn unit_of(parts: &[&str]) -> String {
    match parts {
        [] => "crate".into(),
        ["substrate", child, ..] => format!("substrate::{child}"),
        [top, ..] => (*top).to_string(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` uses outside test modules, as edges between units.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .with_extension("");
        let mut parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        if matches!(parts.last(), Some(&("mod" | "lib" | "main"))) {
            parts.pop();
        }
        let name = parts.last().copied().unwrap_or_default();
        if name.ends_with("tests") {
            continue;
        }
        let from = unit_of(&parts);
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let path: Vec<&str> = code[i + 7..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .take(2)
                .collect();
            let to = unit_of(&path);
            let within_substrate = to == "substrate" && from.starts_with("substrate");
            if to != from && !within_substrate && !to.is_empty() {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// A path from `to` back to `from`, if there is one.
fn path_back(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(to.to_string(), vec![to.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        if node == from {
            return Some(path);
        }
        if !seen.insert(node.clone()) {
            continue;
        }
        for next in graph.get(&node).into_iter().flatten() {
            let mut p = path.clone();
            p.push(next.clone());
            stack.push((next.clone(), p));
        }
    }
    None
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = edges();
    assert!(
        graph.contains_key("engine") && graph.contains_key("app"),
        "{graph:?}"
    );
    for (from, tos) in &graph {
        for to in tos {
            if let Some(back) = path_back(&graph, from, to) {
                panic!("module cycle: {from} -> {}", back.join(" -> "));
            }
        }
    }
}

/// Every `unsafe` block of the crate is in `sys.rs`, where each says why it
/// is sound; the rest of the code asks `sys` for processes and private files.
#[test]
fn unsafe_code_lives_in_sys_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let needle = ["uns", "afe {"].concat();
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("sys.rs"))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&needle)))
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "unsafe outside sys.rs: {offenders:?}");
}
