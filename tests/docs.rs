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
