//! The layering rules of docs/ARCHITECTURE.md, checked on the source text:
//!
//! 1. A module may import (`crate::x`) only from its own layer or lower ones, and the
//!    L3 state machines never import each other.
//! 2. Code in layers L0–L3 names none of the nondeterministic or real-I/O APIs
//!    (tokio, std::fs, std::net, std::thread, `Instant::now`, `SystemTime::now`,
//!    `thread_rng`, HashMap, HashSet), except `io/real`, the one place that talks to the OS.
//!
//! Comments are ignored, so docs may name the banned APIs to explain why.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `src/` and their layer.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("io", 0),
    ("protocol", 1),
    ("log", 2),
    ("raft", 2),
    ("replication", 3),
    ("controller", 3),
    ("group", 3),
    ("txn", 3),
    ("security", 3),
    ("broker", 4),
    ("net", 4),
    ("client", 4),
    ("cli", 5),
    ("config", 5),
    ("main", 5),
    ("lib", 5),
];

const BANNED_BELOW_L4: &[&str] = &[
    "tokio",
    "std::fs",
    "std::net",
    "std::thread",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "HashMap",
    "HashSet",
];

/// Modules exempt from the banned list (their whole subtree).
const EXEMPT: &[&str] = &["io/real"];

#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    what: String,
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

/// The top-level module a `src/`-relative path belongs to (`log/segment.rs` -> `log`).
fn module_of(relative: &str) -> String {
    let first = relative.split('/').next().unwrap_or(relative);
    first.trim_end_matches(".rs").to_string()
}

/// Removes `//` comments (line, doc and inner-doc) so prose may mention banned names.
fn strip_comments(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn is_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    !ident(before) && !ident(after)
}

/// Checks one file's text; `relative` is its path under `src/`.
fn check_source(relative: &str, text: &str) -> Vec<Violation> {
    let module = module_of(relative);
    let Some(own_layer) = layer_of(&module) else {
        return vec![Violation {
            file: relative.to_string(),
            line: 0,
            what: format!("module `{module}` has no layer: add it to LAYERS and ARCHITECTURE.md"),
        }];
    };
    let exempt = EXEMPT.iter().any(|prefix| relative.starts_with(prefix));
    let mut found = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let code = strip_comments(raw);
        if own_layer <= 3 && !exempt {
            for banned in BANNED_BELOW_L4 {
                let mut from = 0;
                while let Some(pos) = code[from..].find(banned) {
                    let start = from + pos;
                    let end = start + banned.len();
                    if is_word_boundary(code, start, end) {
                        found.push(Violation {
                            file: relative.to_string(),
                            line: index + 1,
                            what: format!("layer L{own_layer} names `{banned}`"),
                        });
                    }
                    from = end;
                }
            }
        }
        let mut from = 0;
        while let Some(pos) = code[from..].find("crate::") {
            let start = from + pos + "crate::".len();
            let target: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            from = start;
            let Some(target_layer) = layer_of(&target) else {
                continue;
            };
            if target_layer > own_layer {
                found.push(Violation {
                    file: relative.to_string(),
                    line: index + 1,
                    what: format!("L{own_layer} `{module}` imports L{target_layer} `{target}`"),
                });
            } else if own_layer == 3 && target_layer == 3 && target != module {
                found.push(Violation {
                    file: relative.to_string(),
                    line: index + 1,
                    what: format!("L3 machine `{module}` imports L3 machine `{target}`"),
                });
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn source_tree_respects_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 3,
        "found too few source files under {}",
        src.display()
    );
    let mut violations = Vec::new();
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = fs::read_to_string(path).expect("read source");
        violations.extend(check_source(&relative, &text));
    }
    let listing: Vec<String> = violations
        .iter()
        .map(|v| format!("src/{}:{}: {}", v.file, v.line, v.what))
        .collect();
    assert!(
        listing.is_empty(),
        "layering violations:\n{}",
        listing.join("\n")
    );
}

#[test]
fn checker_flags_banned_names_in_low_layers() {
    let bad = "use std::collections::HashMap;\nfn f() { let _ = std::time::Instant::now(); }\n";
    let found = check_source("log/segment.rs", bad);
    let whats: Vec<&str> = found.iter().map(|v| v.what.as_str()).collect();
    assert_eq!(
        whats,
        vec!["layer L2 names `HashMap`", "layer L2 names `Instant::now`"]
    );
    assert_eq!(found[0].line, 1);
    assert_eq!(found[1].line, 2);
    // The same text is fine in L4, in io/real, and in comments.
    assert!(check_source("broker/produce.rs", bad).is_empty());
    assert!(check_source("io/real/disk.rs", bad).is_empty());
    assert!(check_source("log/segment.rs", "// a HashMap would be wrong here\n").is_empty());
    // Word boundaries: `tokio_util` is not `tokio`, `MyHashMapLike` is not `HashMap`.
    assert!(check_source("base/x.rs", "struct MyHashMapLike;\n").is_empty());
    assert_eq!(
        check_source("raft/core.rs", "use tokio::time::sleep;\n").len(),
        1
    );
}

#[test]
fn checker_flags_upward_and_sideways_imports() {
    let up = check_source("log/segment.rs", "use crate::broker::Driver;\n");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].what, "L2 `log` imports L4 `broker`");
    let sideways = check_source("group/coordinator.rs", "use crate::txn::State;\n");
    assert_eq!(sideways.len(), 1);
    assert!(check_source("group/coordinator.rs", "use crate::log::Log;\n").is_empty());
    assert!(check_source("broker/mod.rs", "use crate::group::Machine;\n").is_empty());
    let unknown = check_source("mystery/x.rs", "");
    assert_eq!(unknown.len(), 1);
}
