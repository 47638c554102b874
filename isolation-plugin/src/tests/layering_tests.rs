//! The shape of `src/` (issue 18): no import cycle between modules, and
//! the folders import one way only, as lib.rs and ARCHITECTURE.md say.
//! Read from the source itself: every `crate::` path outside comments and
//! string literals, `use` groups expanded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// What each top-level module or folder may import: only those of a lower
/// rank. `tests` and lib.rs (the hook flow) are left out: they use
/// everything, and nothing uses them.
const RANKS: &[(&str, u8)] = &[
    ("floor", 0),
    ("classification", 0),
    ("config", 1),
    ("pane_dirs", 2),
    ("user_data", 2),
    ("into_pane", 3),
    ("profiles", 4),
    ("out_of_pane", 5),
    ("per_profile", 6),
];

type Module = Vec<String>;

/// Every module of the crate, by path, with its file's text.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_str().unwrap().to_string())
                .collect();
            if module
                .last()
                .is_some_and(|last| last == "mod" || last == "lib")
            {
                module.pop();
            }
            found.insert(module, strip(&fs::read_to_string(&path).unwrap()));
        }
    }
    found
}

/// The text without comments and without the contents of string and char
/// literals, which may hold anything.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let at = |i: usize, s: &str| chars[i..].iter().take(s.len()).copied().eq(s.chars());
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            loop {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && !after_word && (at(i, "r\"") || at(i, "r#")) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            i += 2 + hashes;
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while !at(i, &close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && chars.get(i + 1) == Some(&'\\') {
            // '\n', '\'', '\u{..}'
            i += 3;
            while chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&tree[start..]);
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('{') {
            Some((head, rest)) => {
                let inner = &rest[..rest.rfind('}').unwrap_or(rest.len())];
                expand(inner, &format!("{prefix}{head}"), out);
            }
            None => out.push(format!("{prefix}{item}")),
        }
    }
}

/// Every `crate::` path of a module's text, as segments after `crate`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = use_keyword(rest) {
        let before = &rest[..at];
        let stmt_end = rest[at..].find(';').map_or(rest.len(), |end| at + end);
        paths.extend(inline_paths(before));
        let tree: String = rest[at + 4..stmt_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut expanded = Vec::new();
        expand(&tree, "", &mut expanded);
        paths.extend(expanded.iter().flat_map(|p| inline_paths(p)));
        rest = &rest[stmt_end..];
    }
    paths.extend(inline_paths(rest));
    paths
}

/// Where the next `use ` keyword (not the end of `refuse `) starts.
fn use_keyword(text: &str) -> Option<usize> {
    text.match_indices("use ")
        .map(|(at, _)| at)
        .find(|&at| !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: Vec<String> = text[at + "crate::".len()..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or_default()
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        paths.push(path);
    }
    paths
}

/// The modules each module imports, `tests` and lib.rs left out.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules(src);
    let mut graph = BTreeMap::new();
    for (module, text) in &modules {
        if module.is_empty() || module[0] == "tests" {
            continue;
        }
        let mut uses = BTreeSet::new();
        for path in crate_paths(text) {
            // The longest prefix that is a module: what the path names
            // lives there.
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains_key(prefix))
                .unwrap();
            if !target.is_empty() && &target != module {
                uses.insert(target);
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

fn name(module: &[String]) -> String {
    module.join("::")
}

/// The modules `from` reaches through its imports.
fn reach(graph: &BTreeMap<Module, BTreeSet<Module>>, from: &Module) -> BTreeSet<Module> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&Module> = graph[from].iter().collect();
    while let Some(next) = todo.pop() {
        if seen.insert(next.clone()) {
            todo.extend(graph.get(next).into_iter().flatten());
        }
    }
    seen
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph(&src());
    assert!(graph.len() > 20, "found only {} modules", graph.len());
    let cycles: Vec<String> = graph
        .keys()
        .filter(|module| reach(&graph, module).contains(*module))
        .map(|module| name(module))
        .collect();
    assert!(cycles.is_empty(), "modules in an import cycle: {cycles:?}");
}

#[test]
fn the_folders_import_one_way_only() {
    let rank = |module: &Module| {
        RANKS
            .iter()
            .find(|(top, _)| *top == module[0])
            .unwrap_or_else(|| panic!("{} is in no folder of RANKS", name(module)))
            .1
    };
    let mut wrong = Vec::new();
    for (module, uses) in graph(&src()) {
        for used in uses {
            if module[0] != used[0] && rank(&used) >= rank(&module) {
                wrong.push(format!("{} -> {}", name(&module), name(&used)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the folders' order (lib.rs, \"Reading this crate\"): {wrong:?}"
    );
}

#[test]
fn the_source_reader_sees_through_comments_strings_and_groups() {
    let text = strip(
        "use crate::a::{b::C, d};\n// crate::e\n/* crate::f */ let s = \"crate::g\"; \
         let r = r#\"crate::h\"#; let c = '\"'; crate::i::j(); not_crate::k();",
    );
    let paths: Vec<String> = crate_paths(&text).iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b::C", "a::d", "i::j"]);
}
