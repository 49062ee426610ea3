//! Reading Terraform's human diagnostics out of stderr.
//!
//! Terraform 1.0 draws each diagnostic in a box (`╷ │ ╵`) and wraps its detail at 78
//! columns, so a message must be searched for with the box and the line breaks taken out.

/// stderr as one line: box characters dropped, every whitespace run made a single space.
pub fn flatten(stderr: &str) -> String {
    let text: String = stderr
        .chars()
        .filter(|c| !matches!(c, '│' | '╷' | '╵'))
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Panics unless `stderr` holds an `Error:` diagnostic whose text contains `needle`
/// (whitespace-insensitive).
pub fn assert_error_contains(stderr: &str, needle: &str) {
    let flat = flatten(stderr);
    assert!(
        flat.contains("Error:"),
        "no Error: diagnostic in stderr:\n{stderr}"
    );
    assert!(
        flat.contains(&flatten(needle)),
        "stderr lacks {needle:?}:\n{stderr}"
    );
}

/// Panics unless an `Error:` diagnostic points at `attribute`: when a provider gives the
/// attribute path, Terraform quotes that attribute's source line (`  9:   image = "..."`)
/// instead of the block's header.
pub fn assert_error_names_attribute(stderr: &str, attribute: &str) {
    assert!(
        stderr.contains("Error:"),
        "no Error: diagnostic in stderr:\n{stderr}"
    );
    let quoted = stderr.lines().any(|line| {
        let line = line.trim_start_matches(['│', ' ']);
        let Some((number, source)) = line.split_once(':') else {
            return false;
        };
        let assigns = source
            .trim_start()
            .strip_prefix(attribute)
            .map(str::trim_start);
        number.chars().all(|c| c.is_ascii_digit())
            && !number.is_empty()
            && assigns.is_some_and(|rest| rest.starts_with('='))
    });
    assert!(
        quoted,
        "no Error: diagnostic points at attribute {attribute:?}:\n{stderr}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
╷
│ Error: Invalid Platform
│ 
│   with data.stevedore_image_manifest.m,
│   on main.tf line 12, in data \"stevedore_image_manifest\" \"m\":
│   12:   platform = \"linux/amd46\"
│ 
│ \"linux/amd46\" is not a known
│ platform.
╵
";

    #[test]
    fn finds_wrapped_text() {
        assert_error_contains(SAMPLE, "is not a known platform.");
    }

    #[test]
    fn finds_the_quoted_attribute_line() {
        assert_error_names_attribute(SAMPLE, "platform");
    }

    #[test]
    #[should_panic(expected = "points at attribute")]
    fn another_attribute_is_not_named() {
        assert_error_names_attribute(SAMPLE, "image");
    }
}
