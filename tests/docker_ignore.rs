//! `.dockerignore` matching, table-driven against Docker's rules.

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
