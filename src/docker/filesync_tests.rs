use super::*;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(root.join(".dockerignore"), "secret.txt\nlogs\n").unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    std::fs::write(root.join("secret.txt"), "no").unwrap();
    std::fs::create_dir_all(root.join("a/deep")).unwrap();
    std::fs::write(root.join("a/deep/b.txt"), "bb").unwrap();
    std::fs::create_dir(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/x.log"), "x").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    dir
}

fn paths(listed: &[Listed]) -> Vec<&str> {
    listed.iter().map(|l| l.rel.as_str()).collect()
}

#[test]
fn the_context_is_the_hashed_file_set_in_the_order_fsutil_checks() {
    let dir = tree();
    let listed = listing(dir.path(), Some(Path::new("Dockerfile")), &[]).unwrap();
    // Depth first: `a/deep/b.txt` before `a.txt`; ignored paths left out.
    let mut want = vec![
        ".dockerignore",
        "Dockerfile",
        "a",
        "a/deep",
        "a/deep/b.txt",
        "a.txt",
    ];
    if cfg!(unix) {
        want.push("link");
    }
    assert_eq!(paths(&listed), want);
    // The same set as the plan-time listing, only in another order.
    let mut hashed: Vec<String> = list_files(dir.path(), Path::new("Dockerfile"))
        .unwrap()
        .into_iter()
        .map(|e| e.rel_path)
        .collect();
    let mut sent: Vec<String> = listed.iter().map(|l| l.rel.clone()).collect();
    hashed.sort();
    sent.sort();
    assert_eq!(sent, hashed);

    let b = listed.iter().find(|l| l.rel == "a/deep/b.txt").unwrap();
    assert!(b.regular);
    assert_eq!((b.stat.size, b.stat.uid, b.stat.gid), (2, 0, 0));
    assert!(b.stat.mod_time > 1_000_000_000_000_000_000, "nanoseconds");
    let a = listed.iter().find(|l| l.rel == "a").unwrap();
    assert!(!a.regular);
    assert_eq!(a.stat.mode & GO_DIR, GO_DIR);
    #[cfg(unix)]
    {
        let link = listed.iter().find(|l| l.rel == "link").unwrap();
        assert!(!link.regular);
        assert_eq!(link.stat.mode & GO_SYMLINK, GO_SYMLINK);
        assert_eq!(link.stat.linkname, "a.txt");
    }
}

#[test]
fn include_patterns_narrow_the_set_and_keep_parents() {
    let dir = tree();
    let only = |includes: &[&str]| {
        let includes: Vec<String> = includes.iter().map(|s| s.to_string()).collect();
        let listed = listing(dir.path(), Some(Path::new("Dockerfile")), &includes).unwrap();
        paths(&listed)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(&[".dockerignore"]), [".dockerignore"]);
    assert_eq!(only(&["a/deep/b.txt"]), ["a", "a/deep", "a/deep/b.txt"]);
    assert_eq!(
        only(&["a/*/b.txt", "a.txt"]),
        ["a", "a/deep", "a/deep/b.txt", "a.txt"]
    );
    // The ignore file still wins: an include does not bring an ignored file back.
    assert!(only(&["secret.txt"]).is_empty());
}

#[test]
fn the_dockerfile_directory_is_not_walked_for_a_named_file() {
    let dir = tree();
    let includes = vec![
        "Dockerfile".to_string(),
        "Dockerfile.dockerignore".to_string(),
    ];
    let listed = listing(dir.path(), None, &includes).unwrap();
    assert_eq!(paths(&listed), ["Dockerfile"]);
    // Without patterns it is the whole directory, ignore file or not.
    let all = listing(dir.path(), None, &[]).unwrap();
    assert!(paths(&all).contains(&"secret.txt"));
    assert!(paths(&all).contains(&"logs/x.log"));
}

#[test]
fn unix_modes_become_go_file_modes() {
    assert_eq!(go_mode(0o644), 0o644);
    assert_eq!(go_mode(0o4755), 0o755 | 1 << 23);
    assert_eq!(go_mode(0o2755), 0o755 | 1 << 22);
    assert_eq!(go_mode(0o1777), 0o777 | 1 << 20);
}
