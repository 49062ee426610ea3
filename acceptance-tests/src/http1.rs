//! Just enough HTTP/1.1 for [`crate::fault_proxy`]: message heads kept as the raw lines
//! they arrived as, and bodies relayed byte for byte in whatever framing they came
//! (`Content-Length`, chunked, or until the connection closes), optionally cut short.

use std::io::{self, BufRead, Write};

/// Longest head accepted; registries and clients send a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// A request or response head: the start line and each header line, without line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start: String,
    pub lines: Vec<String>,
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What became of a relayed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// Every byte went through.
    Whole,
    /// The budget ran out first: only that many bytes went through.
    Cut,
}

impl Head {
    /// Reads a head; `None` when the peer closed before sending a byte of it.
    pub fn read(from: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut raw = Vec::new();
        let mut lines = Vec::new();
        loop {
            let before = raw.len();
            if from.read_until(b'\n', &mut raw)? == 0 {
                if raw.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "head cut off"));
            }
            if raw.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
            }
            let line = String::from_utf8_lossy(&raw[before..])
                .trim_end_matches(['\r', '\n'])
                .to_string();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let start = lines.remove(0);
        Ok(Some(Head { start, lines }))
    }

    /// The bytes of this head as it is sent on.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in std::iter::once(&self.start).chain(&self.lines) {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Replaces the value of every `name` header by `f(value)`, keeping the name as sent.
    pub fn map_header(&mut self, name: &str, f: impl Fn(&str) -> String) {
        for line in &mut self.lines {
            if let Some((n, v)) = line.split_once(':') {
                if n.trim().eq_ignore_ascii_case(name) {
                    *line = format!("{n}: {}", f(v.trim()));
                }
            }
        }
    }

    /// How the body that follows is framed. `no_body` is for answers that have none
    /// whatever their headers say (to HEAD, 1xx, 204, 304).
    pub fn framing(&self, is_response: bool, no_body: bool) -> Framing {
        if no_body {
            return Framing::None;
        }
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Framing::Chunked;
        }
        match self.header("content-length").map(str::parse::<u64>) {
            Some(Ok(0)) => Framing::None,
            Some(Ok(n)) => Framing::Length(n),
            _ if is_response => Framing::UntilClose,
            _ => Framing::None,
        }
    }

    /// The status code of a response head.
    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Copies a body framed as `framing` from `from` to `to` unchanged, stopping once
/// `budget` bytes (counted on the wire, framing included) have gone through, if given.
pub fn relay_body(
    from: &mut impl BufRead,
    to: &mut impl Write,
    framing: Framing,
    budget: Option<u64>,
) -> io::Result<Relayed> {
    let mut left = budget;
    let relayed = match framing {
        Framing::None => Relayed::Whole,
        Framing::Length(n) => copy_exact(from, to, n, &mut left)?,
        Framing::UntilClose => copy_exact(from, to, u64::MAX, &mut left)?,
        Framing::Chunked => relay_chunks(from, to, &mut left)?,
    };
    to.flush()?;
    Ok(relayed)
}

fn relay_chunks(
    from: &mut impl BufRead,
    to: &mut impl Write,
    left: &mut Option<u64>,
) -> io::Result<Relayed> {
    loop {
        let line = read_line(from)?;
        if spend(to, line.as_bytes(), left)? == Relayed::Cut {
            return Ok(Relayed::Cut);
        }
        let size = line.trim_end().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, then the empty line ending the body.
            loop {
                let trailer = read_line(from)?;
                spend(to, trailer.as_bytes(), &mut None)?;
                if trailer.trim_end().is_empty() {
                    return Ok(Relayed::Whole);
                }
            }
        }
        // The chunk's data and the CRLF after it.
        if copy_exact(from, to, size + 2, left)? == Relayed::Cut {
            return Ok(Relayed::Cut);
        }
    }
}

fn read_line(from: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    if from.read_until(b'\n', &mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut off"));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Writes `bytes` unless that overdraws the budget; then writes what it allows.
fn spend(to: &mut impl Write, bytes: &[u8], left: &mut Option<u64>) -> io::Result<Relayed> {
    match left {
        Some(l) if (bytes.len() as u64) >= *l => {
            to.write_all(&bytes[..*l as usize])?;
            *l = 0;
            Ok(Relayed::Cut)
        }
        Some(l) => {
            *l -= bytes.len() as u64;
            to.write_all(bytes).map(|_| Relayed::Whole)
        }
        None => to.write_all(bytes).map(|_| Relayed::Whole),
    }
}

/// Copies `n` bytes (or to the end of input when `n` is `u64::MAX`).
fn copy_exact(
    from: &mut impl BufRead,
    to: &mut impl Write,
    mut n: u64,
    left: &mut Option<u64>,
) -> io::Result<Relayed> {
    let until_close = n == u64::MAX;
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        let got = from.read(&mut buf[..want])?;
        if got == 0 {
            if until_close {
                return Ok(Relayed::Whole);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut off"));
        }
        if spend(to, &buf[..got], left)? == Relayed::Cut {
            return Ok(Relayed::Cut);
        }
        n -= got as u64;
    }
    Ok(Relayed::Whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(wire: &[u8], framing: Framing, budget: Option<u64>) -> (Relayed, Vec<u8>) {
        let mut out = Vec::new();
        let relayed = relay_body(&mut &wire[..], &mut out, framing, budget).unwrap();
        (relayed, out)
    }

    #[test]
    fn heads_round_trip_and_headers_are_found_and_rewritten() {
        let wire = b"HTTP/1.1 202 Accepted\r\nLocation: http://a:1/v2/x?_state=s\r\nContent-Length: 0\r\n\r\nrest";
        let mut from = &wire[..];
        let mut head = Head::read(&mut from).unwrap().unwrap();
        assert_eq!(from, b"rest");
        assert_eq!(head.status(), 202);
        assert_eq!(head.to_bytes(), wire[..wire.len() - 4].to_vec());
        assert_eq!(head.framing(true, false), Framing::None);
        head.map_header("location", |v| v.replace("a:1", "b:2"));
        assert_eq!(head.header("LOCATION"), Some("http://b:2/v2/x?_state=s"));
        assert_eq!(Head::read(&mut &b""[..]).unwrap(), None);
    }

    #[test]
    fn chunked_bodies_pass_unchanged_and_end_at_the_last_chunk() {
        let body = b"5\r\nhello\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let mut wire = body.to_vec();
        wire.extend_from_slice(b"NEXT");
        let (relayed, out) = relay(&wire, Framing::Chunked, None);
        assert_eq!((relayed, out.as_slice()), (Relayed::Whole, &body[..]));
    }

    #[test]
    fn a_budget_cuts_the_body_after_that_many_bytes() {
        let (relayed, out) = relay(b"0123456789", Framing::Length(10), Some(4));
        assert_eq!((relayed, out.as_slice()), (Relayed::Cut, &b"0123"[..]));
        let (relayed, out) = relay(b"5\r\nhello\r\n0\r\n\r\n", Framing::Chunked, Some(6));
        assert_eq!((relayed, out.as_slice()), (Relayed::Cut, &b"5\r\nhel"[..]));
        let (relayed, _) = relay(b"0123", Framing::Length(4), Some(100));
        assert_eq!(relayed, Relayed::Whole, "a body within budget is whole");
    }

    #[test]
    fn a_body_ending_early_is_an_error() {
        let mut out = Vec::new();
        assert!(relay_body(&mut &b"01"[..], &mut out, Framing::Length(4), None).is_err());
    }
}
