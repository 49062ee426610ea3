//! Tiny image layers: a one-file tar archive, gzip'd, the same bytes on every run (mtime,
//! uid and gid zero; gzip without a name or time), so fixtures pushed twice have one digest.

use std::io::Write;

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
            gz: gzip(&tar),
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
    let mut header = tar::Header::new_ustar();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut archive = tar::Builder::new(Vec::new());
    archive
        .append_data(&mut header, name, contents)
        .expect("writing a tar entry in memory");
    archive.into_inner().expect("finishing a tar in memory")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_layer_unpacks_to_its_one_file_and_its_diff_id_is_the_tar_digest() {
        let layer = Layer::with_file("hello.txt", b"hi\n");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(layer.gz.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(layer.diff_id, crate::sha256_digest(&tar));
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("hello.txt"));
        assert_eq!(entry.header().mode().unwrap(), 0o644);
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        assert_eq!(body, "hi\n");
        assert!(entries.next().is_none());
    }

    #[test]
    fn the_same_file_gives_the_same_bytes() {
        let (a, b) = (Layer::with_file("a", b"x"), Layer::with_file("a", b"x"));
        assert_eq!(a.gz, b.gz);
        assert_ne!(a.gz, Layer::with_file("a", b"y").gz);
    }
}
