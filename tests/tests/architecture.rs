//! The shape of the house, checked on every test run (docs/architecture.md describes it):
//!
//! - inside each crate, no two source files import each other, directly or around a loop;
//! - inside `russet-mdm`, imports point down the layers listed in [`MDM_LAYERS`]: the
//!   protocol core knows no HTTP and no SQL, services never call up into a feature, and the
//!   HTTP layer is the only one that knows status codes.
//!
//! It reads the sources the way a reviewer does: every `crate::…`, `super::…` and `self::…`
//! path (including `use …::{a, b}` groups) outside comments and `#[cfg(test)]` test modules,
//! resolved to the file of the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `russet-mdm`'s top-level modules, lowest first. A module may import from a lower layer
/// only; modules of one layer do not import each other.
const MDM_LAYERS: &[&[&str]] = &[
    &["fsutil", "timefmt", "config", "telemetry"],
    &["protocol", "secrets", "filter"],
    &["store"],
    &["service"],
    &["push", "dep", "profiles", "inventory", "webhooks", "ddm"],
    &["views"],
    &["http"],
    &["console"],
    &["server"],
    &["cli", "testing"],
];

type Module = Vec<String>;

struct Crate {
    /// Module path (`["http", "admin"]`; the crate root is `[]`) → source text, comments and
    /// test modules removed.
    modules: BTreeMap<Module, String>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn read_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    collect(src, &mut files);
    let mut texts = BTreeMap::new();
    // Modules compiled for tests only (`#[cfg(test)] mod x;`), and their submodules.
    let mut test_only: Vec<Module> = Vec::new();
    for f in files {
        // A binary's root is not part of the library's module tree.
        if f == src.join("main.rs") {
            continue;
        }
        let module = module_of(src, &f);
        let text = std::fs::read_to_string(&f).expect("readable source");
        test_only.extend(test_modules(src, &f, &module, &text));
        texts.insert(module, text);
    }
    let modules = texts
        .into_iter()
        .filter(|(m, _)| !test_only.iter().any(|t| m.starts_with(t)))
        .map(|(m, text)| (m, strip(&text)))
        .collect();
    Crate { modules }
}

/// `src/http/admin.rs` → `["http", "admin"]`; `src/http/mod.rs` → `["http"]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The modules a file declares under `#[cfg(test)]` without a body (`mod x;`, possibly with
/// `#[path = "x_tests.rs"]`), as module paths.
fn test_modules(src: &Path, file: &Path, module: &Module, text: &str) -> Vec<Module> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "#[cfg(test)]" {
            continue;
        }
        let mut path_attr = None;
        for next in lines.iter().skip(i + 1).take(2) {
            if let Some(p) = next.strip_prefix("#[path = \"") {
                path_attr = p.strip_suffix("\"]").map(str::to_string);
                continue;
            }
            let decl = next.strip_prefix("pub ").unwrap_or(next);
            if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                out.push(match &path_attr {
                    Some(p) => module_of(src, &file.parent().expect("a dir").join(p)),
                    None => {
                        let mut m = module.clone();
                        m.push(name.trim().to_string());
                        m
                    }
                });
            }
            break;
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Drop line comments, and an inline `#[cfg(test)] mod … { … }` with everything after it (by
/// convention the last item of a file; tests may reach anywhere).
fn strip(text: &str) -> String {
    let inline_tests = text.match_indices("#[cfg(test)]\nmod ").find(|(i, _)| {
        text[*i..]
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with('{'))
    });
    let text = match inline_tests {
        Some((i, _)) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path a file names: `crate::a::b`, `super::c`, `self::d`, and each item of a
/// `…::{x, y::z}` group, made absolute.
fn named_paths(module: &Module, text: &str) -> Vec<Module> {
    let parent = || module[..module.len().saturating_sub(1)].to_vec();
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
        let (root, skip) = if at_word && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if at_word && rest.starts_with("super::") {
            (parent(), 7)
        } else if at_word && rest.starts_with("self::") {
            (module.clone(), 6)
        } else {
            i += 1;
            continue;
        };
        i += skip;
        let (mut path, end) = read_path(&chars, i);
        i = end;
        let mut base = root.clone();
        base.append(&mut path);
        if chars.get(i) == Some(&'{') {
            let close = chars[i..]
                .iter()
                .position(|c| *c == '}')
                .map_or(chars.len(), |p| i + p);
            let group: String = chars[i + 1..close].iter().collect();
            for item in group.split(',') {
                let item = item.trim().split(" as ").next().unwrap_or("").trim();
                if item.is_empty() || item == "self" {
                    continue;
                }
                let mut p = base.clone();
                p.extend(item.split("::").filter(|s| !s.is_empty()).map(String::from));
                out.push(p);
            }
            i = close;
        } else {
            out.push(base);
        }
    }
    out
}

/// Identifiers separated by `::` from `start`; stops before a `{` group or any other character.
fn read_path(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    let mut i = start;
    loop {
        let s = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > s {
            parts.push(chars[s..i].iter().collect());
        }
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return (parts, i);
        }
    }
}

/// The longest prefix of `path` that is a module file.
fn resolve(c: &Crate, path: &Module) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| c.modules.contains_key(p))
}

/// File → files it imports (not itself, not the crate root, not its own ancestors: a child
/// using what its parent module declares is how Rust modules work).
fn edges(c: &Crate) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, text) in &c.modules {
        for p in named_paths(m, text) {
            if let Some(t) = resolve(c, &p)
                && &t != m
                && !t.is_empty()
                && !m.starts_with(&t)
            {
                out.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    out
}

/// Strongly connected components with more than one file.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on_stack: BTreeSet<Module>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Module) {
            self.index.insert(v.clone(), self.next);
            self.low.insert(v.clone(), self.next);
            self.next += 1;
            self.stack.push(v.clone());
            self.on_stack.insert(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = &w == v;
                    comp.push(w.join("/"));
                    if done {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.found.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    let nodes: BTreeSet<Module> = edges
        .keys()
        .chain(edges.values().flatten())
        .cloned()
        .collect();
    for v in &nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

fn check_no_cycles(krate: &str) -> Vec<String> {
    let c = read_crate(&workspace().join(krate).join("src"));
    cycles(&edges(&c))
        .into_iter()
        .map(|comp| format!("{krate}: files import each other: {}", comp.join(", ")))
        .collect()
}

#[test]
fn no_source_file_imports_another_that_imports_it_back() {
    let mut problems = Vec::new();
    for krate in ["certs", "apns", "dep", "mdm", "tests", "bench"] {
        problems.extend(check_no_cycles(krate));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn mdm_imports_point_down_the_layers() {
    let c = read_crate(&workspace().join("mdm").join("src"));
    let layer_of = |m: &str| MDM_LAYERS.iter().position(|l| l.contains(&m));
    let mut problems = Vec::new();
    for (from, targets) in edges(&c) {
        let Some(top) = from.first() else { continue };
        let Some(from_layer) = layer_of(top) else {
            problems.push(format!(
                "mdm/src/{top}: not in MDM_LAYERS (add it where it belongs)"
            ));
            continue;
        };
        for t in targets {
            let Some(to) = t.first() else { continue };
            if to == top {
                continue;
            }
            match layer_of(to) {
                Some(l) if l < from_layer => {}
                _ => problems.push(format!(
                    "mdm/src/{} imports {}: `{top}` may only use layers below it",
                    from.join("/"),
                    t.join("/")
                )),
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: it sees a cycle through a `use super::{…}` group and an upward import.
#[test]
fn the_checker_finds_a_cycle_and_an_upward_import() {
    let files: [(&[&str], &str); 5] = [
        (&[], "pub mod http; pub mod store;"),
        (&["http"], "mod a; mod b;"),
        (&["http", "a"], "use super::{b::Thing, other};"),
        (
            &["http", "b"],
            "pub fn f() { crate::http::a::g() } // crate::store",
        ),
        (&["store"], "use crate::http::b::f;"),
    ];
    let modules = files
        .iter()
        .map(|(path, text)| (path.iter().map(|s| s.to_string()).collect(), strip(text)))
        .collect();
    let c = Crate { modules };
    let e = edges(&c);
    assert_eq!(
        cycles(&e),
        vec![vec!["http/a".to_string(), "http/b".to_string()]]
    );
    assert!(e[&vec!["store".to_string()]].contains(&vec!["http".to_string(), "b".to_string()]));
    assert!(
        !e[&vec!["http".to_string(), "b".to_string()]].contains(&vec!["store".to_string()]),
        "a path inside a comment is not an import"
    );
}

/// Every write transaction in the store starts through the backend's `write()`: on SQLite that
/// takes the writer's turn shared with the inline command report (`store/sqlite/inline.rs`). A
/// transaction begun on the read pool held SQLite's write lock across its awaits while a report
/// waited in the busy handler on the thread it needed, and on one worker thread the Mac got a
/// 500 after the busy timeout. PostgreSQL's `write()` is the one place that begins on the pool.
#[test]
fn store_transactions_begin_through_write() {
    let c = read_crate(&workspace().join("mdm").join("src"));
    let mut problems = Vec::new();
    for (module, text) in &c.modules {
        if module.first().map(String::as_str) != Some("store") {
            continue;
        }
        let begins = text.matches("pool.begin").count();
        let allowed = usize::from(module == &["store".to_string(), "postgres".to_string()]);
        if begins > allowed {
            problems.push(format!(
                "mdm/src/{}: a transaction begun on the pool (use `self.write()`)",
                module.join("/")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
