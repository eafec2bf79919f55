//! The shape of the product crate, checked on every test run: dependencies
//! between top-level modules of `src/` point one way. A module that reaches
//! "up" into one of its users (say `providers` into `gateway`) closes a
//! cycle, and this test names it.
//!
//! A dependency is any `crate::<module>` path in a module's files, whether in
//! a `use` line, a grouped `use crate::{a, b}` or an inline path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its files name.
fn module_graph(src: &Path) -> Graph {
    let path_re = Regex::new(r"crate::(\{[^}]*\}|\w+)").unwrap();
    let name_re = Regex::new(r"(?:^|[{,])\s*(\w+)").unwrap();
    let comment_re = Regex::new(r"//[^\n]*").unwrap();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = top_module(src, file);
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let text = comment_re.replace_all(&text, "");
        let edges = graph.entry(from.clone()).or_default();
        for capture in path_re.captures_iter(&text) {
            let group = &capture[1];
            let names: Vec<String> = if group.starts_with('{') {
                name_re
                    .captures_iter(group)
                    .map(|c| c[1].to_string())
                    .collect()
            } else {
                vec![group.to_string()]
            };
            for name in names {
                if name != from && modules.contains(&name) {
                    edges.insert(name);
                }
            }
        }
    }
    graph
}

fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// A cycle through the graph as a path `a -> b -> ... -> a`, if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_depend_on_each_other_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.len() > 10, "too few modules found: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "a dependency cycle between top-level modules: {}\nfull graph: {graph:#?}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_vocabulary_depends_on_nothing_but_scrubbing() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let domain = &graph["domain"];
    assert!(
        domain.iter().all(|m| m == "scrub"),
        "domain must stay a leaf; it names {domain:?}"
    );
    assert!(
        graph["scrub"].is_empty(),
        "scrub names {:?}",
        graph["scrub"]
    );
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    assert_eq!(
        find_cycle(&graph).unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
}
