//! Durations for the `timeouts` block, in the syntax of Go's
//! `time.ParseDuration`, which every Go provider's timeouts accept: a sequence
//! of decimal numbers, each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`),
//! such as `15m`, `1h30m`, `1.5h`, `.5s`, with an optional leading sign, and a
//! bare `0`.
//!
//! The rules, and where they part from Go:
//! - The syntax is Go's exactly: no surrounding or inner whitespace (Go
//!   rejects `" 20m "`, so a config valid here is valid in any Go provider).
//! - Negative values (`-5m`) parse in Go but are refused here with a message
//!   saying why: a timeout cannot be negative.
//! - Values above [`MAX`] are refused at validation (see [`check_bound`]):
//!   no rollout is worth waiting a day for, and a bound keeps deadline
//!   arithmetic far from overflow.

use std::time::Duration;

/// The longest timeout accepted.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

const FIX: &str = "use a number and a unit, such as \"15m\", \"1h30m\" or \"90s\"";

/// Parses what Go's `time.ParseDuration` accepts, minus negative values.
pub fn parse(input: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {input:?}: {why}; {FIX}");
    if input.is_empty() {
        return Err(bad("it is empty"));
    }
    if input.trim() != input {
        return Err(bad("it has spaces around it"));
    }
    let s = match input.as_bytes()[0] {
        b'-' => return Err(bad("a timeout cannot be negative")),
        b'+' => &input[1..],
        _ => input,
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad("expected a number"));
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

/// Refuses durations above [`MAX`]; `at` names the attribute in the message.
pub fn check_bound(at: &str, input: &str, d: Duration) -> Result<Duration, String> {
    if d <= MAX {
        return Ok(d);
    }
    Err(format!(
        "{at} = {input:?} is longer than the 24h a rollout may be waited for. \
         Use a shorter timeout, such as \"1h\"; a rollout that needs longer can be \
         followed with wait_for_steady_state = false and the AWS console or CLI."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_go_parses_parses_to_the_same_value() {
        let cases = [
            ("15m", 900.0),
            ("1h30m", 5400.0),
            ("90s", 90.0),
            ("1.5h", 5400.0),
            (".5s", 0.5),
            ("1.s", 1.0),
            ("0", 0.0),
            ("+0", 0.0),
            ("+2m", 120.0),
            ("0s", 0.0),
            ("500ms", 0.5),
            ("1m30s250ms", 90.25),
            ("10us", 0.00001),
            ("10µs", 0.00001),
            ("10μs", 0.00001),
            ("1h1h", 7200.0),
        ];
        for (input, secs) in cases {
            let got = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!((got.as_secs_f64() - secs).abs() < 1e-9, "{input}: {got:?}");
        }
    }

    #[test]
    fn what_go_rejects_is_rejected_saying_why() {
        let cases = [
            ("", "empty"),
            ("15", "missing unit"),
            ("15x", "unknown unit \"x\""),
            ("m", "expected a number"),
            (".", "expected a number"),
            ("+", "expected a number"),
            ("1.2.3s", "expected a number"),
            ("15 m", "unknown unit"),
            ("1d", "unknown unit \"d\""),
            // Go: time: invalid duration " 20m "
            (" 20m ", "spaces around it"),
            ("20m\n", "spaces around it"),
        ];
        for (input, why) in cases {
            let err = parse(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.contains("\"15m\""),
                "{input:?}: the fix hint is missing: {err}"
            );
        }
    }

    /// Go accepts `-5m`; a timeout cannot be negative, so we do not.
    #[test]
    fn negative_values_go_accepts_are_refused() {
        for input in ["-5m", "-0", "-1h30m"] {
            let err = parse(input).expect_err(input);
            assert!(err.contains("cannot be negative"), "{input}: {err}");
        }
    }

    #[test]
    fn durations_above_a_day_are_out_of_bounds() {
        let at = "timeouts.create";
        assert_eq!(check_bound(at, "24h", MAX), Ok(MAX));
        for input in ["24h1s", "2562047h", "100000000000h"] {
            let d = parse(input).unwrap_or(Duration::MAX);
            let err = check_bound(at, input, d).expect_err(input);
            assert!(
                err.starts_with(&format!("timeouts.create = {input:?}")),
                "{err}"
            );
            assert!(err.contains("Use a shorter timeout"), "{err}");
        }
    }
}
