//! `docs/` must match what the schema and `examples/` render to. Run
//! `make docs` (STEVEDORE_UPDATE_DOCS=1) to rewrite it after a change.

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
