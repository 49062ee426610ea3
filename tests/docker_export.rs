//! Reading `docker save` output without a daemon: both archive layouts,
//! diff_id verification, and gzip of a layer.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use stevedore::docker::{compress_layer, read_unpacked, ExportError};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn config(arch: &str, diff_ids: &[String]) -> Vec<u8> {
    serde_json::json!({
        "os": "linux", "architecture": arch,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
    .to_string()
    .into_bytes()
}

fn blob(root: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let p = root
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
    d
}

#[test]
fn classic_manifest_json_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layer = b"layer-bytes".to_vec();
    let cfg = config("arm64", &[sha(&layer)]);
    fs::create_dir_all(dir.path().join("abc")).unwrap();
    fs::write(dir.path().join("abc/layer.tar"), &layer).unwrap();
    fs::write(dir.path().join("cfg.json"), &cfg).unwrap();
    fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#,
    )
    .unwrap();
    let img = read_unpacked(dir.path()).unwrap();
    assert_eq!(
        (img.os.as_str(), img.architecture.as_str()),
        ("linux", "arm64")
    );
    assert_eq!(img.config_digest, sha(&cfg));
    assert_eq!(img.layers[0].size, layer.len() as u64);
}

#[test]
fn oci_layout_through_nested_index_skipping_attestations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let layer = b"oci-layer".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let layer_gz = gz.finish().unwrap();
    let cfg = config("amd64", &[sha(&layer)]);
    let cfg_d = blob(root, &cfg);
    let layer_d = blob(root, &layer_gz);
    let manifest = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": cfg_d}, "layers": [{"digest": layer_d}]
    });
    let man_d = blob(root, manifest.to_string().as_bytes());
    let att_d = blob(root, b"{}");
    let inner = serde_json::json!({"manifests": [
        {"digest": att_d, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"digest": man_d}
    ]});
    let inner_d = blob(root, inner.to_string().as_bytes());
    let index = serde_json::json!({"manifests": [{"digest": inner_d}]});
    fs::write(root.join("index.json"), index.to_string()).unwrap();

    let img = read_unpacked(root).unwrap();
    assert_eq!(img.architecture, "amd64");
    assert_eq!(img.layers[0].diff_id, sha(&layer), "gzip layer inflated");
    assert_eq!(fs::read(&img.layers[0].path).unwrap(), layer);
}

#[test]
fn layer_not_matching_its_diff_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("l.tar"), b"tampered").unwrap();
    fs::write(
        dir.path().join("c.json"),
        config("amd64", &[sha(b"original")]),
    )
    .unwrap();
    fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"c.json","Layers":["l.tar"]}]"#,
    )
    .unwrap();
    let err = read_unpacked(dir.path()).unwrap_err();
    assert!(
        matches!(err, ExportError::DiffIdMismatch { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn paths_leaving_the_archive_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"../../etc/passwd","Layers":[]}]"#,
    )
    .unwrap();
    let err = read_unpacked(dir.path()).unwrap_err();
    // The refusal itself, not what reading /etc/passwd as JSON would give.
    match &err {
        ExportError::BadArchive { reason } => assert!(
            reason.contains("\"../../etc/passwd\" points outside the archive"),
            "{reason}"
        ),
        other => panic!("expected BadArchive, got {other}"),
    }
}

#[test]
fn compress_layer_is_deterministic_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar");
    let data: Vec<u8> = (0..300_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    fs::write(&path, &data).unwrap();
    let a = compress_layer(&path).unwrap();
    let gz = fs::read(&a.path).unwrap();
    assert_eq!(a.digest, sha(&gz));
    assert_eq!(a.size, gz.len() as u64);
    assert_eq!(a.diff_id, sha(&data));
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(
        compress_layer(&path).unwrap().digest,
        a.digest,
        "same bytes, same blob"
    );
}
