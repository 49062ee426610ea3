//! Reading `docker save` output as a stream, without a daemon: both archive
//! layouts dockerd writes (legacy `manifest.json` last; Docker 25+'s OCI
//! layout with the legacy names as symlinks into `blobs/`), large files
//! handed over without being buffered, and names or links that leave the
//! archive refused.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use acceptance_tests::media_types::OCI_MANIFEST;
use acceptance_tests::sha256_digest as sha;
use sha2::{Digest, Sha256};
use stevedore::docker::{
    config_facts, image_refs, walk_archive, ArchiveVisitor, ExportError, SMALL_ENTRY,
};

fn config(arch: &str, diff_ids: &[String]) -> Vec<u8> {
    serde_json::json!({
        "os": "linux", "architecture": arch,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
    .to_string()
    .into_bytes()
}

enum Item<'a> {
    File(&'a [u8]),
    Symlink(&'a str),
}

/// An uncompressed tar of `items`, in the order given.
fn archive(items: &[(&str, Item)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, item) in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match item {
            Item::File(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, name, *bytes).unwrap();
            }
            Item::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Records every file it is given: its size and the sha256 of what it read.
#[derive(Default)]
struct Record {
    files: BTreeMap<String, (u64, String)>,
    /// The biggest single read a large file was handed in.
    largest_read: usize,
}

impl ArchiveVisitor for Record {
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<bool, ExportError> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = data.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            if size > SMALL_ENTRY {
                self.largest_read = self.largest_read.max(n);
            }
            h.update(&buf[..n]);
        }
        let digest = format!("sha256:{}", hex::encode(h.finalize()));
        self.files.insert(name.to_string(), (size, digest));
        Ok(name.ends_with(".json"))
    }
}

#[test]
fn legacy_layout_with_manifest_json_last() {
    let layer = b"layer-bytes".to_vec();
    let cfg = config("arm64", &[sha(&layer)]);
    let cfg_name = format!("{}.json", sha(&cfg).trim_start_matches("sha256:"));
    let manifest =
        format!(r#"[{{"Config":"{cfg_name}","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}}]"#);
    let tar = archive(&[
        ("abc/VERSION", Item::File(b"1.0")),
        ("abc/json", Item::File(b"{}")),
        ("abc/layer.tar", Item::File(&layer)),
        (&cfg_name, Item::File(&cfg)),
        ("manifest.json", Item::File(manifest.as_bytes())),
    ]);
    let mut seen = Record::default();
    let index = walk_archive(tar.as_slice(), &mut seen).unwrap();
    let refs = image_refs(&index).unwrap();
    assert_eq!(refs.config, cfg_name);
    assert_eq!(refs.layers, ["abc/layer.tar"]);
    assert_eq!(
        seen.files["abc/layer.tar"],
        (layer.len() as u64, sha(&layer))
    );
    let facts = config_facts(index.document(&refs.config).unwrap()).unwrap();
    assert_eq!(facts.platform.to_string(), "linux/arm64");
    assert_eq!(facts.diff_ids, [sha(&layer)]);
    assert!(
        !index.documents.contains_key("abc/layer.tar"),
        "a file the visitor did not keep is not held"
    );
}

/// Docker 25+ writes the OCI layout and, for old readers, `manifest.json`
/// naming `blobs/...` or legacy paths that are symlinks into `blobs/`.
#[test]
fn oci_layout_with_legacy_symlinks_and_a_large_layer_streamed() {
    let big: Vec<u8> = (0..SMALL_ENTRY as usize + 300_000)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_d = sha(&big);
    let big_hex = big_d.trim_start_matches("sha256:").to_string();
    let cfg = config("amd64", std::slice::from_ref(&big_d));
    let cfg_hex = sha(&cfg).trim_start_matches("sha256:").to_string();
    let manifest =
        format!(r#"[{{"Config":"blobs/sha256/{cfg_hex}","Layers":["{big_hex}/layer.tar"]}}]"#);
    let blob_big = format!("blobs/sha256/{big_hex}");
    let blob_cfg = format!("blobs/sha256/{cfg_hex}");
    let link = format!("{big_hex}/layer.tar");
    let target = format!("../blobs/sha256/{big_hex}");
    let tar = archive(&[
        (&blob_big, Item::File(&big)),
        (&blob_cfg, Item::File(&cfg)),
        (&link, Item::Symlink(&target)),
        ("index.json", Item::File(b"{\"manifests\":[]}")),
        ("manifest.json", Item::File(manifest.as_bytes())),
        (
            "oci-layout",
            Item::File(b"{\"imageLayoutVersion\":\"1.0.0\"}"),
        ),
    ]);
    let mut seen = Record::default();
    let index = walk_archive(tar.as_slice(), &mut seen).unwrap();
    let refs = image_refs(&index).unwrap();
    assert_eq!(
        refs.layers,
        std::slice::from_ref(&blob_big),
        "the symlink resolved"
    );
    assert_eq!(seen.files[&blob_big], (big.len() as u64, big_d));
    assert!(
        seen.largest_read <= 64 * 1024,
        "the large file was handed over as a stream, read by read"
    );
    assert!(!index.documents.contains_key(&blob_big));
}

#[test]
fn oci_layout_through_nested_index_skipping_attestations() {
    let layer = b"oci-layer".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let layer_gz = gz.finish().unwrap();
    let cfg = config("amd64", &[sha(&layer)]);
    let manifest = serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "config": {"digest": sha(&cfg)}, "layers": [{"digest": sha(&layer_gz)}]
    })
    .to_string();
    let att = b"{}".to_vec();
    let inner = serde_json::json!({"manifests": [
        {"digest": sha(&att), "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"digest": sha(manifest.as_bytes())}
    ]})
    .to_string();
    let index_json =
        serde_json::json!({"manifests": [{"digest": sha(inner.as_bytes())}]}).to_string();
    let path = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let names = [
        path(&sha(&cfg)),
        path(&sha(&layer_gz)),
        path(&sha(manifest.as_bytes())),
        path(&sha(&att)),
        path(&sha(inner.as_bytes())),
    ];
    let tar = archive(&[
        (&names[0], Item::File(&cfg)),
        (&names[1], Item::File(&layer_gz)),
        (&names[2], Item::File(manifest.as_bytes())),
        (&names[3], Item::File(&att)),
        (&names[4], Item::File(inner.as_bytes())),
        ("index.json", Item::File(index_json.as_bytes())),
    ]);
    struct KeepAll;
    impl ArchiveVisitor for KeepAll {
        fn file(&mut self, _: &str, _: u64, _: &mut dyn Read) -> Result<bool, ExportError> {
            Ok(true)
        }
    }
    let index = walk_archive(tar.as_slice(), &mut KeepAll).unwrap();
    let refs = image_refs(&index).unwrap();
    assert_eq!(refs.config, names[0]);
    assert_eq!(refs.layers, [names[1].clone()]);
}

fn refused(tar: &[u8]) -> String {
    let mut seen = Record::default();
    let err = walk_archive(tar, &mut seen)
        .and_then(|index| image_refs(&index).map(|_| ()))
        .unwrap_err();
    match err {
        ExportError::BadArchive { reason } => reason,
        other => panic!("expected BadArchive, got {other}"),
    }
}

#[test]
fn paths_leaving_the_archive_are_refused() {
    let tar = archive(&[(
        "manifest.json",
        Item::File(br#"[{"Config":"../../etc/passwd","Layers":[]}]"#),
    )]);
    // The refusal itself, not what reading /etc/passwd as JSON would give.
    let reason = refused(&tar);
    assert!(
        reason.contains("\"../../etc/passwd\" points outside the archive"),
        "{reason}"
    );
}

#[test]
fn malformed_digests_in_an_oci_layout_are_refused() {
    for digest in ["sha256:../../etc/passwd", "sha256", "sha256:abc"] {
        let index_json = serde_json::json!({"manifests": [{"digest": digest}]}).to_string();
        let tar = archive(&[("index.json", Item::File(index_json.as_bytes()))]);
        let reason = refused(&tar);
        assert!(
            reason.starts_with("index.json: ") && reason.contains("is not a digest"),
            "{digest}: {reason}"
        );
    }
}

#[test]
fn symlinks_leaving_the_archive_are_refused() {
    for target in ["../../etc/passwd", "/etc/passwd", "../a/../../x"] {
        let tar = archive(&[("abc/layer.tar", Item::Symlink(target))]);
        let reason = refused(&tar);
        assert!(
            reason.contains("link \"abc/layer.tar\" points outside the archive"),
            "{target}: {reason}"
        );
    }
}

#[test]
fn a_symlink_inside_the_archive_resolves_relative_to_its_folder() {
    let tar = archive(&[
        ("blobs/sha256/aa", Item::File(b"{\"os\":\"linux\"}")),
        ("x/y/link.json", Item::Symlink("../../blobs/sha256/aa")),
    ]);
    let index = walk_archive(tar.as_slice(), &mut Record::default()).unwrap();
    assert_eq!(index.resolve("x/y/link.json").unwrap(), "blobs/sha256/aa");
}
