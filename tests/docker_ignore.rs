//! `.dockerignore` matching, table-driven against Docker's rules, and checked against what
//! the docker CLI itself sends for a set of tricky ignore files.

mod docker_support;

use stevedore::docker::IgnoreMatcher;

/// (ignore file, path, excluded?)
const CASES: &[(&str, &str, bool)] = &[
    // plain names match at the root only, and everything below them
    ("node_modules", "node_modules", true),
    ("node_modules", "node_modules/a/b.js", true),
    ("node_modules", "web/node_modules", false),
    // a leading slash means the same thing: patterns are root-relative
    ("/build", "build/out.o", true),
    ("/build", "src/build", false),
    // * and ? stay within one segment
    ("*.log", "app.log", true),
    ("*.log", "logs/app.log", false),
    ("*/*.log", "logs/app.log", true),
    ("file?.txt", "file1.txt", true),
    ("file?.txt", "file10.txt", false),
    ("a?c", "a/c", false),
    // ** spans any number of directories, also none
    ("**/*.log", "app.log", true),
    ("**/*.log", "a/b/c/app.log", true),
    ("src/**/test", "src/test", true),
    ("src/**/test", "src/x/y/test/data.txt", true),
    ("src/**", "src/a/b", true),
    ("src/**", "srcx/a", false),
    // character classes
    ("[abc].txt", "b.txt", true),
    ("[abc].txt", "d.txt", false),
    ("[^abc].txt", "d.txt", true),
    // `!` is no negation inside a class: `[!a]` is `!` or `a`
    ("[!a].txt", "!.txt", true),
    ("[!a].txt", "a.txt", true),
    ("[!a].txt", "b.txt", false),
    ("[a-c]x", "bx", true),
    // escapes and regex metacharacters are literal
    ("a.b", "axb", false),
    ("a+b(c)", "a+b(c)", true),
    ("\\*star", "*star", true),
    ("\\*star", "xstar", false),
    // exceptions re-include, last match wins
    ("*.md\n!README.md", "README.md", false),
    ("*.md\n!README.md", "CHANGES.md", true),
    ("!README.md\n*.md", "README.md", true),
    ("*.md\n!README.md\nREADME.md", "README.md", true),
    // a directory excluded, one child re-included
    ("docs\n!docs/keep.txt", "docs/keep.txt", false),
    ("docs\n!docs/keep.txt", "docs/other.txt", true),
    ("vendor\n!**/LICENSE", "vendor/x/LICENSE", false),
    // comments, blank lines, surrounding space, ./ and ../ cleaned
    ("# secret\n\n  secret  \n", "secret", true),
    ("# secret", "# secret", false),
    ("./tmp/../cache", "cache/x", true),
    // a leading .. stays after cleaning and matches nothing inside the context
    ("../x", "x", false),
    ("/../x", "x", true),
];

#[test]
fn dockerignore_table() {
    for (file, path, want) in CASES {
        let m = IgnoreMatcher::parse(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert_eq!(m.is_excluded(path), *want, "ignore {file:?} on {path:?}");
    }
}

/// (ignore file, excluded dir, must the walk look inside?)
const DESCEND: &[(&str, &str, bool)] = &[
    ("docs", "docs", false),
    ("docs\n!docs/keep.txt", "docs", true),
    ("docs\n!docs/a/keep.txt", "docs/b", false),
    ("docs\n!docs/a/keep.txt", "docs/a", true),
    ("vendor\n!**/LICENSE", "vendor", true),
    ("vendor\n!*.md", "vendor", false),
    ("vendor\n!v*/x", "vendor", true),
];

#[test]
fn excluded_directory_is_entered_only_when_an_exception_may_match_below() {
    for (file, dir, want) in DESCEND {
        let m = IgnoreMatcher::parse(file).unwrap();
        assert_eq!(
            m.may_reinclude_below(dir),
            *want,
            "ignore {file:?} dir {dir:?}"
        );
    }
}

#[test]
fn bad_pattern_names_its_line() {
    let err = IgnoreMatcher::parse("# c\nok\n[oops").unwrap_err();
    assert_eq!(err.line, 3);
    assert!(err.to_string().contains("[oops"), "{err}");
}

/// The files of every context below, besides its Dockerfile and ignore file.
const FILES: &[&str] = &[
    "a.txt",
    "b.txt",
    "!.txt",
    "x",
    "keep.md",
    "README.md",
    "app.log",
    "docs/keep.txt",
    "docs/other.txt",
    "sub/x",
    "sub/deep/a.log",
];

/// Ignore files whose effect is compared with what the docker CLI sends.
const AGAINST_THE_DAEMON: &[&str] = &[
    "[!a].txt",
    "[^a].txt",
    "../x",
    "/../x",
    "a/../../x",
    "*.md\n!README.md",
    "docs\n!docs/keep.txt",
    "**/*.log",
    "sub\n!sub/deep",
    "*\n!docs",
    "?.txt",
];

/// What our matcher sends: the context's files, as `list_files` selects them.
fn ours(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    stevedore::docker::list_files(dir, std::path::Path::new("Dockerfile"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == stevedore::docker::EntryKind::File)
        .map(|e| e.rel_path)
        .filter(|p| FILES.contains(&p.as_str()))
        .collect()
}

/// What Docker sends: the docker CLI applies the ignore file itself (the
/// daemon does not, neither classic nor BuildKit on a tar context), so its
/// legacy `docker build` of `COPY . /ctx/` is the reference; the layer is
/// read back from the daemon.
async fn theirs(
    docker: &bollard::Docker,
    dir: &std::path::Path,
    tag: &str,
) -> std::collections::BTreeSet<String> {
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI is needed for this comparison");
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = docker_support::saved_image(docker, tag).await;
    stevedore::docker::remove_image(docker, tag).await.unwrap();
    let mut layer = tar::Archive::new(saved.layers[0].as_slice());
    layer
        .entries()
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.header().entry_type().is_file())
        .filter_map(|e| {
            let p = e.path().ok()?.to_string_lossy().into_owned();
            p.strip_prefix("ctx/").map(str::to_string)
        })
        .filter(|p| FILES.contains(&p.as_str()))
        .collect()
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn the_files_sent_are_the_files_the_docker_cli_sends() {
    let docker = stevedore::docker::connect_as_the_cli_would()
        .unwrap()
        .docker;
    let mut wrong = Vec::new();
    for (i, ignore) in AGAINST_THE_DAEMON.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        for f in FILES {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, f).unwrap();
        }
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY . /ctx/\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        let tag = format!("stevedore-test/ignore-{i}:{}", std::process::id());
        let (o, t) = (ours(dir.path()), theirs(&docker, dir.path(), &tag).await);
        if o != t {
            wrong.push(format!("{ignore:?}: ours {o:?}, docker's {t:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
