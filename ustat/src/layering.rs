//! The crate's modules import each other one way: this reads `ustat/src`, takes every
//! `crate::` path outside test modules, and fails on an import cycle between top-level
//! modules, or on `tui` reaching into `commands` (commands orchestrate; the TUI is a library).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules each `crate::` path in `code` names.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::B, c, d::{e, f}}`: the first name of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.insert(identifier(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier(rest));
        }
    }
    found.remove("");
    found
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Top-level module -> the top-level modules it imports, from the files under `src`.
fn graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let module = Path::new(first)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if module == "lib" || module == "main" || module == "layering" {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            let code = code.split("#[cfg(test)]").next().unwrap_or("");
            let entry = graph.entry(module.clone()).or_default();
            entry.extend(imports(code).into_iter().filter(|m| *m != module));
        }
    }
    graph
}

/// The modules `from` reaches through imports.
fn reach(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(module) = todo.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycle_between_modules() {
    let graph = graph(&src());
    assert!(graph.contains_key("tui") && graph.contains_key("commands"));
    let cycles: Vec<String> = graph
        .iter()
        .flat_map(|(module, imported)| {
            imported
                .iter()
                .filter(|other| reach(&graph, other).contains(module))
                .map(move |other| format!("{module} -> {other} -> ... -> {module}"))
        })
        .collect();
    assert!(cycles.is_empty(), "{cycles:#?}");
}

#[test]
fn the_tui_does_not_reach_commands() {
    let graph = graph(&src());
    assert!(
        !reach(&graph, "tui").contains("commands"),
        "tui imports {:?}",
        graph["tui"]
    );
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let code = "use crate::{a::B, c, d::{e, f}};\nfn x() { crate::g::h(); }\nuse crate::i;";
    let found: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g", "i"]);
    let cyclic = Graph::from([
        ("x".to_string(), BTreeSet::from(["y".to_string()])),
        ("y".to_string(), BTreeSet::from(["x".to_string()])),
    ]);
    assert!(reach(&cyclic, "x").contains("x"), "a cycle is seen");
}
