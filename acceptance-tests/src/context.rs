//! Build contexts for the tests: a new temporary directory (named
//! `stevedore-ctx…`) holding the files given, parent directories made.

use std::path::Path;

/// A context holding `files` (path inside the context → contents).
pub fn build_context(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .expect("a temporary directory");
    for (name, contents) in files {
        write(dir.path(), name, contents);
    }
    dir
}

/// Writes `contents` at `name` under `root`, making its directories.
pub fn write(root: &Path, name: &str, contents: &[u8]) {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("context directories");
    }
    std::fs::write(&path, contents).expect("a context file");
}
