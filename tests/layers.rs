//! The layers of `src/` point one way: every `crate::…` import of a module goes to a
//! module listed lower in ARCHITECTURE.md's "Layers" section. The list there is the
//! single source; a new module must be placed in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The numbered lines of ARCHITECTURE.md's "Layers" section: module → (layer, line),
/// and which lines allow their modules to import each other.
fn layers() -> (BTreeMap<String, usize>, BTreeSet<usize>) {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = text.split("## Layers").nth(1).expect("ARCHITECTURE.md has a Layers section");
    let section = section.split("\n## ").next().unwrap();
    let (mut layer_of, mut mutual) = (BTreeMap::new(), BTreeSet::new());
    let mut current = None;
    for line in section.lines() {
        let numbered =
            line.split_once(". ").and_then(|(n, rest)| Some((n.trim().parse::<usize>().ok()?, rest)));
        if let Some((n, rest)) = numbered {
            current = Some(n);
            let names = rest.split(" — ").next().unwrap();
            for name in names.split(',').map(|m| m.trim().trim_matches('`')) {
                assert!(layer_of.insert(name.to_owned(), n).is_none(), "{name} listed twice");
            }
        }
        // A numbered line (or its continuation) that says its modules still import
        // each other; the text before the list speaks of all lines.
        if let (Some(n), true) = (current, line.contains("import each other")) {
            mutual.insert(n);
        }
    }
    assert!(!layer_of.is_empty(), "no numbered lines under Layers");
    (layer_of, mutual)
}

/// Every `src/` file with its top-level module: `src/dns/query.rs` → `dns`.
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![Path::new(ROOT).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel =
                    path.strip_prefix(Path::new(ROOT).join("src")).unwrap().to_string_lossy().into_owned();
                let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
                out.push((top, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// The crate's modules a file names as `crate::NAME`.
fn imports(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, m)| {
            text[i + m.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect()
}

#[test]
fn every_import_points_down_the_layers_in_architecture_md() {
    let (layer_of, mutual) = layers();
    let mut problems = Vec::new();
    for (module, text) in sources() {
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = layer_of.get(&module) else {
            problems.push(format!("src/{module}: not listed under Layers in ARCHITECTURE.md"));
            continue;
        };
        for dep in imports(&text) {
            let Some(&theirs) = layer_of.get(&dep) else { continue };
            let allowed = theirs > own || (theirs == own && (dep == module || mutual.contains(&own)));
            if !allowed {
                problems.push(format!("{module} (layer {own}) imports {dep} (layer {theirs})"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "imports that point up:\n{}", problems.join("\n"));
}
