//! Listing and hashing the build context: what is sent, what changes the hash.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use stevedore::docker::{context_hash, list_files, write_tar, ContextError, EntryKind};

/// A throwaway context directory with one-line helpers.
struct Ctx(tempfile::TempDir);

impl Ctx {
    fn new() -> Self {
        let c = Ctx(tempfile::tempdir().unwrap());
        c.file("Dockerfile", "FROM scratch\nCOPY . /\n");
        c
    }
    fn root(&self) -> &Path {
        self.0.path()
    }
    fn file(&self, rel: &str, body: &str) -> &Self {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
        self
    }
    fn hash(&self) -> String {
        self.hash_with(&BTreeMap::new())
    }
    fn hash_with(&self, inputs: &BTreeMap<String, String>) -> String {
        context_hash(self.root(), Path::new("Dockerfile"), inputs).unwrap()
    }
    fn paths(&self, dockerfile: &str) -> Vec<String> {
        list_files(self.root(), Path::new(dockerfile))
            .unwrap()
            .into_iter()
            .map(|e| e.rel_path)
            .collect()
    }
}

#[test]
fn hash_is_stable_and_prefixed() {
    let c = Ctx::new();
    c.file("a.txt", "a").file("dir/b.txt", "b");
    let h = c.hash();
    assert!(h.starts_with("sha256:") && h.len() == 71, "{h}");
    assert_eq!(h, c.hash());
}

#[test]
fn hash_changes_with_content_mode_path_and_inputs() {
    let c = Ctx::new();
    c.file("a.txt", "a");
    let base = c.hash();
    c.file("a.txt", "A");
    let content = c.hash();
    assert_ne!(base, content);
    fs::set_permissions(c.root().join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(content, c.hash());

    let c2 = Ctx::new();
    c2.file("b.txt", "a");
    let c1 = Ctx::new();
    c1.file("a.txt", "a");
    assert_ne!(c1.hash(), c2.hash(), "a rename changes the hash");

    let mut inputs = BTreeMap::new();
    inputs.insert("build_arg.VERSION".to_string(), "7".to_string());
    let with = c1.hash_with(&inputs);
    assert_ne!(c1.hash(), with);
    inputs.insert("build_arg.VERSION".to_string(), "8".to_string());
    assert_ne!(with, c1.hash_with(&inputs));
}

#[test]
fn hash_ignores_changes_to_ignored_files() {
    let c = Ctx::new();
    c.file(".dockerignore", "*.log\ntmp\n").file("app.py", "x");
    c.file("debug.log", "1").file("tmp/cache", "1");
    let before = c.hash();
    c.file("debug.log", "2")
        .file("tmp/cache", "2")
        .file("tmp/new", "3");
    assert_eq!(before, c.hash());
}

#[test]
fn dockerfile_change_changes_hash_even_when_ignored() {
    let c = Ctx::new();
    c.file(".dockerignore", "Dockerfile\n");
    let before = c.hash();
    c.file("Dockerfile", "FROM scratch\n");
    assert_ne!(before, c.hash());
    assert!(c.paths("Dockerfile").contains(&"Dockerfile".to_string()));
}

#[test]
fn dockerignore_and_dockerfile_are_always_sent() {
    let c = Ctx::new();
    c.file(".dockerignore", "*\n").file("app.py", "x");
    assert_eq!(c.paths("Dockerfile"), [".dockerignore", "Dockerfile"]);
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let c = Ctx::new();
    c.file("build/app.Dockerfile", "FROM scratch\n");
    c.file(".dockerignore", "a.txt\n");
    c.file("build/app.Dockerfile.dockerignore", "b.txt\n");
    c.file("a.txt", "a").file("b.txt", "b");
    let with_specific = c.paths("build/app.Dockerfile");
    assert!(
        with_specific.contains(&"a.txt".to_string()),
        "{with_specific:?}"
    );
    assert!(
        !with_specific.contains(&"b.txt".to_string()),
        "{with_specific:?}"
    );
    let plain = c.paths("Dockerfile");
    assert!(!plain.contains(&"a.txt".to_string()) && plain.contains(&"b.txt".to_string()));
}

#[test]
fn excluded_directory_with_reincluded_child() {
    let c = Ctx::new();
    c.file(".dockerignore", "docs\n!docs/keep.txt\n");
    c.file("docs/keep.txt", "k")
        .file("docs/drop.txt", "d")
        .file("docs/sub/x", "x");
    let paths = c.paths("Dockerfile");
    assert!(paths.contains(&"docs/keep.txt".to_string()), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p == "docs" || p.contains("drop") || p.contains("sub")),
        "{paths:?}"
    );
}

#[test]
fn symlinks_are_listed_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "s1").unwrap();
    let c = Ctx::new();
    symlink(outside.path().join("secret"), c.root().join("link")).unwrap();
    let entries = list_files(c.root(), Path::new("Dockerfile")).unwrap();
    let link = entries.iter().find(|e| e.rel_path == "link").unwrap();
    assert!(matches!(&link.kind, EntryKind::Symlink { target } if target.ends_with("secret")));
    let before = c.hash();
    fs::write(outside.path().join("secret"), "s2").unwrap();
    assert_eq!(
        before,
        c.hash(),
        "the target's content is not part of the context"
    );
}

#[test]
fn dockerfile_outside_context_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let ctx = outer.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(outer.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let err = list_files(&ctx, Path::new("../Dockerfile")).unwrap_err();
    assert!(
        matches!(err, ContextError::DockerfileOutsideContext { .. }),
        "{err}"
    );

    symlink(outer.path().join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
    let err = context_hash(&ctx, Path::new("Dockerfile"), &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(err, ContextError::DockerfileOutsideContext { .. }),
        "{err}"
    );
}

#[test]
fn missing_context_and_missing_dockerfile() {
    let err = list_files(Path::new("/nonexistent/ctx"), Path::new("Dockerfile")).unwrap_err();
    assert!(matches!(err, ContextError::ContextMissing { .. }), "{err}");
    let c = Ctx::new();
    let err = list_files(c.root(), Path::new("Nope")).unwrap_err();
    assert!(
        matches!(err, ContextError::DockerfileMissing { .. }),
        "{err}"
    );
}

#[test]
fn tar_holds_exactly_the_listed_entries() {
    let c = Ctx::new();
    c.file(".dockerignore", "*.log\n")
        .file("a/b.txt", "hello")
        .file("x.log", "no");
    symlink("a/b.txt", c.root().join("ln")).unwrap();
    let entries = list_files(c.root(), Path::new("Dockerfile")).unwrap();
    let mut buf = Vec::new();
    write_tar(c.root(), &entries, &mut buf).unwrap();
    let mut archive = tar::Archive::new(buf.as_slice());
    let mut names: Vec<(PathBuf, tar::EntryType)> = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().uid().unwrap(), 0);
        names.push((e.path().unwrap().into_owned(), e.header().entry_type()));
    }
    let want: Vec<PathBuf> = [".dockerignore", "Dockerfile", "a", "a/b.txt", "ln"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(names.iter().map(|n| n.0.clone()).collect::<Vec<_>>(), want);
    assert_eq!(names[4].1, tar::EntryType::Symlink);
}
