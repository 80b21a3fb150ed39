//! The module graph reads top to bottom (see the layers in `src/lib.rs`): a module may use
//! its own layer and the ones below, never one above. This reads `src/` and fails on an
//! import that points up, naming the file and the module it reaches.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers from the bottom up; every top-level module of `src/` is in exactly one.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "primitives",
        &[
            "alert_settings",
            "bindings",
            "config",
            "dotenv",
            "duration",
            "environment",
            "error",
            "hardening",
            "identity",
            "log",
            "redact",
            "reference",
            "runtime",
            "secret",
            "settings",
            "sys",
            "table",
            "timestamp",
            "trust",
            "usage_error",
        ],
    ),
    ("vault/auth", &["vault", "auth", "session", "resolve"]),
    (
        "features",
        &[
            "alerts",
            "audit_report",
            "child",
            "import",
            "lifecycle",
            "mask",
            "proxy",
            "scan",
            "watch",
        ],
    ),
    ("command", &["cli", "cmd", "lib", "main"]),
];

/// The one allowed upward import: the proxy's settings are built from its clap arguments.
const ALLOWED: &[(&str, &str)] = &[("proxy", "cli::ProxyArgs")];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .unwrap_or_else(|| {
            panic!("src/{module}: put the new module in a layer in tests/architecture.rs")
        })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests` (tests may
/// drive the CLI parser).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::PATH` the code names, with the top-level names of `use crate::{a, b::c}`
/// groups expanded to `crate::a`, `crate::b::c`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths.insert(item.trim().to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            paths.insert(item.trim().to_string());
        } else {
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.insert(path.trim_end_matches(':').to_string());
        }
    }
    paths.retain(|p| !p.is_empty());
    paths
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let own = layer_of(&module);
        let text = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(&code(&text)) {
            let target = path.split("::").next().unwrap();
            if target == module || target == "self" {
                continue;
            }
            let allowed = ALLOWED
                .iter()
                .any(|(from, to)| *from == module && path.starts_with(to));
            let reaches_cmd = target == "cmd" && module != "cmd" && module != "main";
            if reaches_cmd || (layer_of(target) > own && !allowed) {
                violations.push(format!(
                    "src/{} ({}) uses crate::{path} ({})",
                    relative.display(),
                    LAYERS[own].0,
                    LAYERS[layer_of(target)].0
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that point up the layers (move what they share down):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_grouped_and_inline_paths() {
    let paths = crate_paths(
        "use crate::{cli::ProxyArgs, cmd::{self, run}};\nlet r = crate::runtime::runtime();",
    );
    assert!(paths.contains("cli::ProxyArgs"), "{paths:?}");
    assert!(paths.contains("cmd::{self, run}"), "{paths:?}");
    assert!(paths.contains("runtime::runtime"), "{paths:?}");
    assert!(!code("// crate::cmd::run\nlet x = 1;").contains("crate::cmd"));
}
