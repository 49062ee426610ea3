//! Tiny image layers: a one-file tar archive, gzip'd.
//!
//! Written by hand (ustar header, gzip with stored deflate blocks) so the harness needs no
//! compression crate. Registries never unpack layers; they only check digests, and a stored
//! deflate stream is still valid gzip for any client that does.

/// One layer blob and the digests a config and a manifest need.
pub struct Layer {
    /// The gzip'd tar, as uploaded.
    pub gz: Vec<u8>,
    /// `sha256:` of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: String,
}

impl Layer {
    /// A layer holding one regular file.
    pub fn with_file(name: &str, contents: &[u8]) -> Layer {
        let tar = tar_one_file(name, contents);
        Layer {
            diff_id: crate::sha256_digest(&tar),
            gz: gzip_stored(&tar),
        }
    }

    /// A blob that is not compressed (an attestation's JSON statement): its diff_id is its
    /// own digest.
    pub fn raw(bytes: Vec<u8>) -> Layer {
        Layer {
            diff_id: crate::sha256_digest(&bytes),
            gz: bytes,
        }
    }
}

fn tar_one_file(name: &str, contents: &[u8]) -> Vec<u8> {
    assert!(
        name.len() < 100,
        "tar name too long for a plain ustar header: {name}"
    );
    let mut header = [0u8; 512];
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0"); // uid
    put(&mut header, 116, b"0000000\0"); // gid
    put(
        &mut header,
        124,
        format!("{:011o}\0", contents.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0"); // mtime 0: the same bytes every run
    header[156] = b'0'; // regular file
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    // The checksum is computed with its own field read as spaces.
    put(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.extend_from_slice(&[0u8; 1024]); // two zero blocks end the archive
    tar
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// RFC 1952 gzip around RFC 1951 "stored" (uncompressed) blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let len = chunk.len() as u16;
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn tar_header_checksum_and_size_are_octal() {
        let tar = tar_one_file("hello.txt", b"hi\n");
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[124..136], b"00000000003\0");
        let mut blank = tar[..512].to_vec();
        blank[148..156].copy_from_slice(b"        ");
        let sum: u32 = blank.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(&tar[148..156], format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn gzip_trailer_holds_crc_and_length() {
        let gz = gzip_stored(b"abc");
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        let n = gz.len();
        assert_eq!(&gz[n - 4..], &3u32.to_le_bytes());
        assert_eq!(&gz[n - 8..n - 4], &crc32(b"abc").to_le_bytes());
    }
}
