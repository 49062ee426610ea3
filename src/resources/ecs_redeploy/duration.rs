//! Go-style durations (`15m`, `1h30m`, `90s`, `1.5h`) for the `timeouts` block,
//! the syntax every Terraform provider's timeouts accept (Go's `time.ParseDuration`).

use std::time::Duration;

/// Parses what Go's `time.ParseDuration` accepts, minus negative values
/// (a timeout cannot be negative). `"0"` alone is allowed, as in Go.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    let bad = |why: &str| {
        format!("invalid duration {input:?}: {why}; use a number and a unit, such as \"15m\", \"1h30m\" or \"90s\"")
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if s.starts_with('-') {
        return Err(bad("a timeout cannot be negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad("expected a number"));
        }
        let value: f64 = number.parse().map_err(|_| bad("expected a number"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad(&format!("missing unit after {number}"))),
            other => {
                return Err(bad(&format!(
                    "unknown unit {other:?} (use h, m, s, ms, us or ns)"
                )))
            }
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad("it is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let cases = [
            ("15m", 900.0),
            ("1h30m", 5400.0),
            ("90s", 90.0),
            ("1.5h", 5400.0),
            ("0", 0.0),
            ("+2m", 120.0),
            ("500ms", 0.5),
            ("1m30s250ms", 90.25),
            ("10us", 0.00001),
            ("10µs", 0.00001),
            (" 20m ", 1200.0),
        ];
        for (input, secs) in cases {
            let got = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!((got.as_secs_f64() - secs).abs() < 1e-9, "{input}: {got:?}");
        }
    }

    #[test]
    fn malformed_durations_say_why() {
        let cases = [
            ("", "empty"),
            ("15", "missing unit"),
            ("15x", "unknown unit \"x\""),
            ("m", "expected a number"),
            ("1.2.3s", "expected a number"),
            ("-5m", "negative"),
            ("15 m", "unknown unit"),
            ("1d", "unknown unit \"d\""),
        ];
        for (input, why) in cases {
            let err = parse(input).expect_err(input);
            assert!(err.contains(why), "{input}: {err}");
            assert!(
                err.contains("\"15m\""),
                "{input}: the fix hint is missing: {err}"
            );
        }
    }
}
