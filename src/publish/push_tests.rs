use std::io::Write;
use std::path::Path;

use super::*;
use crate::docker::ExportedLayer;

/// Layers of mixed content (text, zeros, noise) so gzip has real work.
fn write_layers(dir: &Path, count: usize) -> Vec<ExportedLayer> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|i| {
            let path = dir.join(format!("layer{i}.tar"));
            let mut f = std::fs::File::create(&path).unwrap();
            for line in 0..20_000 {
                writeln!(f, "layer {i} line {line}: the quick brown fox").unwrap();
            }
            f.write_all(&vec![0u8; 100_000 * (i + 1)]).unwrap();
            for _ in 0..50_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                f.write_all(&state.to_le_bytes()).unwrap();
            }
            let (diff_id, size) = crate::docker::export::sha256_file(&path).unwrap();
            ExportedLayer {
                path,
                diff_id,
                size,
            }
        })
        .collect()
}

fn image(layers: Vec<ExportedLayer>) -> ExportedImage {
    ExportedImage {
        config_bytes: b"{}".to_vec(),
        config_digest: String::new(),
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
        layers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_compression_gives_the_sequential_digests_in_order() {
    let parallel_dir = tempfile::tempdir().unwrap();
    let sequential_dir = tempfile::tempdir().unwrap();
    let layers = write_layers(parallel_dir.path(), 6);
    for l in &layers {
        std::fs::copy(
            &l.path,
            sequential_dir.path().join(l.path.file_name().unwrap()),
        )
        .unwrap();
    }
    let parallel = compress_exported(&image(layers.clone())).await.unwrap();
    let sequential: Vec<_> = layers
        .iter()
        .map(|l| compress_layer(&sequential_dir.path().join(l.path.file_name().unwrap())).unwrap())
        .collect();
    assert_eq!(parallel.len(), 6);
    for ((p, s), layer) in parallel.iter().zip(&sequential).zip(&layers) {
        assert_eq!(p.diff_id, layer.diff_id, "results are in layer order");
        assert_eq!((&p.digest, p.size), (&s.digest, s.size));
        assert_eq!(
            std::fs::read(&p.path).unwrap(),
            std::fs::read(&s.path).unwrap()
        );
    }
    // And again: nothing depends on the run.
    let again = compress_exported(&image(layers)).await.unwrap();
    assert_eq!(again, parallel);
}

#[tokio::test]
async fn compressing_a_missing_layer_names_the_platform() {
    let dir = tempfile::tempdir().unwrap();
    let mut layers = write_layers(dir.path(), 2);
    layers[1].path = dir.path().join("gone.tar");
    let err = compress_exported(&image(layers)).await.unwrap_err();
    assert!(
        matches!(&err, PublishError::Compress { platform, .. } if platform == "linux/amd64"),
        "{err:?}"
    );
}
