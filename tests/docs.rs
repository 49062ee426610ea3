//! `docs/` must match what the schema and `examples/` render to. Run
//! `make docs` (STEVEDORE_UPDATE_DOCS=1) to rewrite it after a change. The
//! README's layout must match the tree, and `src/` keeps the shape rustfmt
//! and clippy cannot hold it to (line width, file size, no sibling cycles).

use std::path::Path;

#[test]
fn docs_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rendered = stevedore::docs::render_all(&root.join("examples"));
    let update = std::env::var_os("STEVEDORE_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (rel, text) in &rendered {
        let path = root.join("docs").join(rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "docs/ is stale for {stale:?}: run `make docs` and commit the result"
    );
    for expected in [
        "index.md",
        "data-sources/image_manifest.md",
        "resources/image_build.md",
        "resources/ecs_redeploy.md",
    ] {
        assert!(
            rendered.keys().any(|k| k == Path::new(expected)),
            "{expected} not rendered"
        );
    }
}

/// The README's layout section names every folder of `src/`, `acceptance-tests/`,
/// `benches/` and `examples/`, and nothing under `src/` that is not there.
#[test]
fn readme_layout_matches_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layout = readme
        .split("\n## Layout")
        .nth(1)
        .expect("README has a Layout section");
    let layout = layout.split("\n## ").next().unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = format!("src/{}", entry.file_name().to_string_lossy());
            if !layout.contains(&format!("`{name}`")) && !layout.contains(&format!("`{name}/")) {
                missing.push(name);
            }
        }
    }
    for top in ["proto/", "acceptance-tests/", "benches/", "examples/"] {
        if !layout.contains(top) {
            missing.push(top.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "README layout does not name {missing:?}"
    );
    let mut stale = Vec::new();
    for word in layout.split('`').skip(1).step_by(2) {
        if let Some(dir) = word.strip_prefix("src/") {
            let path = root
                .join("src")
                .join(dir.split_whitespace().next().unwrap_or(dir));
            if !path.exists() && !path.with_extension("rs").exists() {
                stale.push(word.to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "README layout names what is not in src/: {stale:?}"
    );
}

/// Every `.rs` file under `src/`, with its text.
fn sources(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
}

/// The sibling modules `code` names through `super::` (`super::a::x`,
/// `super::{a, b::y}`).
fn sibling_uses(code: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (i, _) in code.match_indices("super::") {
        let rest = &code[i + "super::".len()..];
        let group = match rest.strip_prefix('{') {
            Some(inner) => &inner[..inner.find('}').unwrap_or(inner.len())],
            None => rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap(),
        };
        for item in group.split(',') {
            let first = item.trim().split("::").next().unwrap_or("").trim();
            if !first.is_empty() && first != "super" && first != "self" {
                names.insert(first.to_string());
            }
        }
    }
    names
}

/// No line in `src/` over 120 characters; no file over 450 lines before its
/// tests (files of tests aside); no two files in one folder that use each
/// other through `super::`.
#[test]
fn source_tree_keeps_its_shape() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut problems = Vec::new();
    let mut uses = std::collections::BTreeMap::new();
    for (path, text) in &files {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            if line.chars().count() > 120 {
                problems.push(format!("{name}:{}: over 120 characters", n + 1));
            }
        }
        let code = text.split("#[cfg(test)]").next().unwrap();
        let lines = code.lines().count();
        if lines > 450 && !name.contains("tests") {
            problems.push(format!(
                "{name}: {lines} lines before its tests (at most 450)"
            ));
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if stem != "mod" {
            uses.insert(
                (path.parent().unwrap().to_path_buf(), stem),
                sibling_uses(code),
            );
        }
    }
    for ((dir, me), used) in &uses {
        for other in used {
            let back = uses.get(&(dir.clone(), other.clone()));
            if me < other && back.is_some_and(|b| b.contains(me)) {
                let dir = dir.strip_prefix(&root).unwrap().display();
                problems.push(format!("{dir}: {me}.rs and {other}.rs use each other"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
