//! Reading the release zips as Terraform does (Go's `archive/zip`), and the `h1:` hash
//! Terraform records for a provider package: Go's `dirhash.Hash1` over the files in the zip.
//!
//! Only what `zip -X` writes is read: stored or deflated entries, no ZIP64, no encryption.
//! Everything is checked (signatures, CRC-32, sizes) so a malformed zip fails the test.

use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One file of a zip.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// The unix mode in the high half of the external attributes (0 when not made on unix).
    pub unix_mode: u32,
    /// The DOS date and time, read as UTC, in seconds since the epoch.
    pub mtime: i64,
    /// Bytes of extra fields in the central directory and in the local header (`zip -X`
    /// writes none: no uid, gid or UTC times).
    pub extra_len: usize,
    pub data: Vec<u8>,
}

const EOCD: u32 = 0x0605_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

/// The entries of the zip in `bytes`, in central-directory order.
pub fn read(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let eocd = (0..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&at| u32_at(bytes, at) == Some(EOCD))
        .ok_or("no end-of-central-directory record")?;
    let count = u16_at(bytes, eocd + 10).ok_or("short EOCD")? as usize;
    let mut at = u32_at(bytes, eocd + 16).ok_or("short EOCD")? as usize;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if u32_at(bytes, at) != Some(CENTRAL) {
            return Err(format!("no central directory header at {at}"));
        }
        let field = |off: usize| u16_at(bytes, at + off).ok_or("short central header");
        let word = |off: usize| u32_at(bytes, at + off).ok_or("short central header");
        let (flags, method) = (field(8)?, field(10)?);
        let (time, date) = (field(12)?, field(14)?);
        let (crc, csize, usize_) = (word(16)?, word(20)? as usize, word(24)? as usize);
        let (name_len, extra_len, comment_len) = (
            field(28)? as usize,
            field(30)? as usize,
            field(32)? as usize,
        );
        let made_on_unix = field(4)? >> 8 == 3;
        let external = word(38)?;
        let local = word(42)? as usize;
        let name = slice(bytes, at + 46, name_len)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "entry name is not UTF-8")?;
        if flags & 1 != 0 {
            return Err(format!("{name} is encrypted"));
        }
        let (data, local_extra) = local_data(bytes, local, &name, csize)?;
        let data = match method {
            0 => data.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("inflating {name}: {e}"))?;
                out
            }
            other => return Err(format!("{name}: compression method {other}")),
        };
        if data.len() != usize_ {
            return Err(format!(
                "{name}: {} bytes, header says {usize_}",
                data.len()
            ));
        }
        let mut check = flate2::Crc::new();
        check.update(&data);
        if check.sum() != crc {
            return Err(format!("{name}: CRC-32 mismatch"));
        }
        entries.push(Entry {
            name,
            unix_mode: if made_on_unix { external >> 16 } else { 0 },
            mtime: dos_to_unix(date, time),
            extra_len: extra_len + local_extra,
            data,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// The compressed bytes of the entry whose local header is at `at`, and the length of
/// that header's extra field.
fn local_data<'a>(
    bytes: &'a [u8],
    at: usize,
    name: &str,
    csize: usize,
) -> Result<(&'a [u8], usize), String> {
    if u32_at(bytes, at) != Some(LOCAL) {
        return Err(format!("{name}: no local header at {at}"));
    }
    let name_len = u16_at(bytes, at + 26).ok_or("short local header")? as usize;
    let extra_len = u16_at(bytes, at + 28).ok_or("short local header")? as usize;
    if slice(bytes, at + 30, name_len)? != name.as_bytes() {
        return Err(format!("{name}: local header names another file"));
    }
    let data = slice(bytes, at + 30 + name_len + extra_len, csize)?;
    Ok((data, extra_len))
}

/// Go's `dirhash.Hash1` over `(name, content)` pairs: SHA-256 of the sorted lines
/// `"<sha256 hex>  <name>\n"`, base64, prefixed `h1:`.
pub fn hash1<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, data)| (name.to_string(), hex::encode(Sha256::digest(data))))
        .collect();
    lines.sort();
    let mut summary = Sha256::new();
    for (name, sum) in &lines {
        assert!(!name.contains('\n'), "dirhash refuses names with newlines");
        summary.update(format!("{sum}  {name}\n"));
    }
    format!("h1:{}", STANDARD.encode(summary.finalize()))
}

/// The `h1:` hash of a zip's contents, as Terraform's `PackageHashV1` computes it.
pub fn zip_hash1(entries: &[Entry]) -> String {
    hash1(entries.iter().map(|e| (e.name.as_str(), e.data.as_slice())))
}

/// `zh:<sha256 hex>`: the legacy hash of a whole zip, as the lock file writes it.
pub fn zh(bytes: &[u8]) -> String {
    format!("zh:{}", hex::encode(Sha256::digest(bytes)))
}

fn dos_to_unix(date: u16, time: u16) -> i64 {
    let (year, month, day) = (
        1980 + i64::from(date >> 9),
        i64::from((date >> 5) & 0xf),
        i64::from(date & 0x1f),
    );
    let seconds = i64::from(time >> 11) * 3600
        + i64::from((time >> 5) & 0x3f) * 60
        + i64::from(time & 0x1f) * 2;
    days_from_civil(year, month, day) * 86_400 + seconds
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn slice(bytes: &[u8], at: usize, len: usize) -> Result<&[u8], String> {
    bytes
        .get(at..at + len)
        .ok_or_else(|| format!("zip cut short at {at}+{len}"))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `zip -X -9` of one file `tool` (mode 0750, 2020-01-01T00:00:00Z) holding
    /// "hello, zip\n" three times.
    const ZIP_X: &str = "504b030414000200080000002150c974e86c100000002100000004000000746f6f6ccb48cdc9c9d751a8ca2ce0cac0ca0400504b01021e0314000200080000002150c974e86c1000000021000000040000000000000001000000e88100000000746f6f6c504b0506000000000100010032000000320000000000";

    #[test]
    fn reads_what_zip_x_writes() {
        let entries = read(&hex::decode(ZIP_X).unwrap()).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.name, "tool");
        assert_eq!(e.unix_mode & 0o7777, 0o750);
        assert_eq!(e.unix_mode >> 12, 0o10, "a regular file");
        assert_eq!(e.mtime, 1_577_836_800);
        assert_eq!(e.extra_len, 0);
        assert_eq!(e.data, b"hello, zip\n".repeat(3));
        let mut bad = hex::decode(ZIP_X).unwrap();
        bad[40] ^= 1; // a bit of the deflated data
        assert!(read(&bad).is_err(), "a corrupted entry must not read");
    }

    #[test]
    fn hash1_matches_go_dirhash() {
        // Worked out with coreutils: printf '%s  a\n' "$(printf 'hello\n' | sha256sum | cut
        // -d' ' -f1)" | sha256sum | cut -d' ' -f1 | xxd -r -p | base64
        assert_eq!(
            hash1([("a", &b"hello\n"[..])]),
            "h1:5Fn9UlLDraC1wY/JAI5JBHb+Ice9ZdUmjUVTW+ldYmc="
        );
        // Lines are sorted by name, whatever order the files come in.
        let want = "h1:aMKRn0MF5QgACCq38R6xfZbHgy9ZFU6XsdNzpReaY+o=";
        assert_eq!(hash1([("b", &b"2"[..]), ("a", &b"1"[..])]), want);
        assert_eq!(hash1([("a", &b"1"[..]), ("b", &b"2"[..])]), want);
    }

    #[test]
    fn dos_times_read_as_utc() {
        // 2020-01-01 00:00:00 UTC: date (40 << 9) | (1 << 5) | 1, time 0.
        assert_eq!(dos_to_unix((40 << 9) | (1 << 5) | 1, 0), 1_577_836_800);
        // 1980-01-01 00:00:02.
        assert_eq!(dos_to_unix((1 << 5) | 1, 1), 315_532_802);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(read(b"not a zip at all, not even close to one").is_err());
        assert!(read(b"").is_err());
    }
}
