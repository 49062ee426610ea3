//! `.dockerignore` patterns with Docker's own matching rules (moby's
//! `patternmatcher` + the CLI's `dockerignore` reader):
//!
//! - one pattern a line; `#` starts a comment line; blank lines are skipped;
//! - a pattern is path-cleaned and a leading `/` dropped: every pattern is
//!   relative to the context root, not to a directory as in `.gitignore`;
//! - `*` and `?` stay within a path segment, `[...]` is a character class,
//!   `\` escapes, `**` matches any number of directories (also none);
//! - a pattern also matches everything below a directory it matches;
//! - `!pattern` re-includes; the last pattern that matches decides.

use regex::Regex;

/// One compiled line of a `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern text, without the leading `!`.
    text: String,
    /// True for `!pattern`: a match re-includes the path.
    exception: bool,
    regex: Regex,
}

/// A bad line in an ignore file: the regex the glob turns into does not compile.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

/// The ordered patterns of one ignore file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// Parses the text of an ignore file.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let regex = compile(&cleaned).map_err(|reason| PatternError {
                line: idx + 1,
                pattern: line.to_string(),
                reason,
            })?;
            patterns.push(Pattern {
                text: cleaned,
                exception,
                regex,
            });
        }
        Ok(Self { patterns })
    }

    /// Adds an exception (`!path`) after the file's own patterns, the way the
    /// Docker CLI keeps the Dockerfile and `.dockerignore` in the context.
    pub fn push_exception(&mut self, path: &str) {
        let cleaned = clean(path);
        // NOTE: a literal path escaped character by character always compiles.
        let escaped: String = cleaned.chars().map(|c| format!("\\{c}")).collect();
        if let Ok(regex) = compile(&escaped) {
            self.patterns.push(Pattern {
                text: cleaned,
                exception: true,
                regex,
            });
        }
    }

    /// True when no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    /// A pattern matching one of the path's parent directories counts as a
    /// match of the path itself.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for pat in &self.patterns {
            // A pattern can only change the verdict in one direction.
            if pat.exception != excluded {
                continue;
            }
            let hit = pat.regex.is_match(path)
                || (1..=parents.len()).any(|n| pat.regex.is_match(&parents[..n].join("/")));
            if hit {
                excluded = !pat.exception;
            }
        }
        excluded
    }

    /// For an excluded directory: whether some exception could re-include a
    /// path below it, so the walk has to look inside instead of skipping it.
    /// Errs on the side of looking: every path found is still matched alone.
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir_segs: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let segs: Vec<&str> = p.text.split('/').collect();
            prefix_could_match(&segs, &dir_segs)
        })
    }
}

/// Whether the pattern segments `pat` can match `dir` followed by at least
/// one more segment.
fn prefix_could_match(pat: &[&str], dir: &[&str]) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return false;
    };
    if first.contains("**") {
        return true;
    }
    let Some((d, drest)) = dir.split_first() else {
        return true;
    };
    match compile(first) {
        Ok(re) => re.is_match(d) && prefix_could_match(rest, drest),
        Err(_) => true,
    }
}

/// Go's `filepath.Clean` on a `/` path, then the leading `/` dropped, as
/// the Docker CLI reads ignore files. Clean keeps the leading `..` of a
/// relative path (`../x` stays `../x`, which matches nothing in a context),
/// while above the root of a rooted one stays at the root (`/../x` is `x`).
fn clean(pattern: &str) -> String {
    let rooted = pattern.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in pattern.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Turns one cleaned pattern into an anchored regex, moby-style.
fn compile(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    re.push(']');
                }
                '\\' if i < chars.len() => {
                    re.push_str(&regex::escape(&chars[i].to_string()));
                    i += 1;
                }
                // Nested classes and `&&`/`~~` are set operators in Rust's regex.
                '[' | '&' | '~' => re.push_str(&regex::escape(&c.to_string())),
                _ => re.push(c),
            }
            continue;
        }
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                re.push_str(if i >= chars.len() { ".*" } else { "(.*/)?" });
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                in_class = true;
                re.push('[');
                // GOTCHA: Docker's patterns negate a class with `^` only, as
                // Go's filepath.Match does; `[!a]` matches `!` or `a`.
                if chars.get(i) == Some(&'^') {
                    re.push('^');
                    i += 1;
                }
            }
            '\\' if i < chars.len() => {
                re.push_str(&regex::escape(&chars[i].to_string()));
                i += 1;
            }
            _ => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_class {
        return Err("unterminated character class '['".to_string());
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_leading_slash_and_dots() {
        assert_eq!(clean("/a/./b//c/"), "a/b/c");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("/"), "");
        assert_eq!(clean("../x"), "../x", "kept: it matches nothing");
        assert_eq!(clean("a/../../x"), "../x");
        assert_eq!(
            clean("/../x"),
            "x",
            "above the root of a rooted path is the root"
        );
    }

    #[test]
    fn unterminated_class_is_an_error_with_its_line() {
        let err = IgnoreMatcher::parse("ok\n\n[abc").unwrap_err();
        assert_eq!(err.line, 3);
    }
}
