use super::*;
use crate::oci::digest::sha256_digest;

const DIFF_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BLOB: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const OTHER_BLOB: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn digest(text: &str) -> Digest {
    Digest::parse(text).unwrap()
}

fn cache() -> (tempfile::TempDir, BlobCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::at(dir.path());
    (dir, cache)
}

fn layer_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path()
        .join("layers")
        .join(format!("{}.json", &DIFF_ID[7..]))
}

#[test]
fn layer_round_trip_keeps_newest_repository_first() {
    let (_dir, cache) = cache();
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, Some("r.example/a"));
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, Some("r.example/b"));
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, Some("r.example/a"));
    let got = cache.layer(DIFF_ID).unwrap();
    assert_eq!(got.digest, BLOB);
    assert_eq!(got.size, 42);
    assert_eq!(got.repositories, ["r.example/a", "r.example/b"]);
}

#[test]
fn new_blob_digest_forgets_repositories_of_the_old_one() {
    let (_dir, cache) = cache();
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, Some("r.example/a"));
    cache.record_layer(DIFF_ID, &digest(OTHER_BLOB), 40, None, None);
    let got = cache.layer(DIFF_ID).unwrap();
    assert_eq!((got.digest.as_str(), got.size), (OTHER_BLOB, 40));
    assert!(got.repositories.is_empty());
}

#[test]
fn corrupt_or_mismatched_layer_entry_is_a_miss() {
    let (dir, cache) = cache();
    assert_eq!(cache.layer(DIFF_ID), None);
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, None);
    let path = layer_file(&dir);
    let good = fs::read(&path).unwrap();
    for bad in [
        &good[..good.len() / 2],
        b"not json".as_slice(),
        br#"{"diff_id":"sha256:00","digest":"sha256:22","size":1}"#,
        &[0xff, 0xfe, 0x00],
    ] {
        fs::write(&path, bad).unwrap();
        assert_eq!(
            cache.layer(DIFF_ID),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // A corrupt entry is simply replaced by the next record.
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, None);
    assert_eq!(cache.layer(DIFF_ID).unwrap().digest, BLOB);
}

#[test]
fn config_round_trip_by_its_digest() {
    let (_dir, cache) = cache();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    cache.record_config(config);
    assert_eq!(
        cache.config(&sha256_digest(config)).as_deref(),
        Some(&config[..])
    );
}

#[test]
fn config_whose_bytes_do_not_hash_to_the_id_is_rejected() {
    let (dir, cache) = cache();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let id = sha256_digest(config);
    cache.record_config(config);
    let path = dir
        .path()
        .join("configs")
        .join(format!("{}.json", &id[7..]));
    fs::write(&path, br#"{"architecture":"arm64","os":"linux"}"#).unwrap();
    assert_eq!(cache.config(&id), None);
}

#[test]
fn odd_digests_never_become_paths() {
    let (dir, cache) = cache();
    for bad in ["sha256:../../etc/passwd", "sha512:abc", "", "sha256:ABCD"] {
        cache.record_layer(bad, &digest(BLOB), 1, None, None);
        assert_eq!(cache.layer(bad), None);
        assert_eq!(cache.config(bad), None);
    }
    assert!(!dir.path().join("layers").exists());
}

#[test]
fn disabled_cache_misses_and_writes_nothing() {
    let cache = BlobCache::disabled();
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, None);
    cache.record_config(b"{}");
    assert_eq!(cache.layer(DIFF_ID), None);
    assert_eq!(cache.config(&sha256_digest(b"{}")), None);
}

#[test]
fn unwritable_cache_dir_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"").unwrap();
    let cache = BlobCache::at(&file);
    cache.record_layer(DIFF_ID, &digest(BLOB), 42, None, None);
    assert_eq!(cache.layer(DIFF_ID), None);
}

#[test]
fn a_corrupt_entry_is_deleted_when_found() {
    let (dir, cache) = cache();
    cache.record_config(b"{}");
    let id = sha256_digest(b"{}");
    let path = dir
        .path()
        .join("configs")
        .join(format!("{}.json", &id[7..]));
    fs::write(&path, b"{\"tampered\":1}").unwrap();
    assert_eq!(cache.config(&id), None);
    assert!(!path.exists(), "dropped, not read again");
}

#[test]
fn prune_deletes_the_least_recently_used_entries_past_the_bound() {
    let (dir, cache) = cache();
    let configs: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(1000)).into_bytes())
        .collect();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (i, c) in configs.iter().enumerate() {
        cache.record_config(c);
        let path = dir
            .path()
            .join("configs")
            .join(format!("{}.json", &sha256_digest(c)[7..]));
        // Older entries first: config i was last used i seconds after `old`.
        let f = fs::File::options().append(true).open(&path).unwrap();
        f.set_modified(old + std::time::Duration::from_secs(i as u64))
            .unwrap();
    }
    // Using config 0 makes it the most recent.
    assert!(cache.config(&sha256_digest(&configs[0])).is_some());
    let size = configs[0].len() as u64;
    cache.prune(size * 6);
    let kept: Vec<usize> = (0..10)
        .filter(|&i| {
            dir.path()
                .join("configs")
                .join(format!("{}.json", &sha256_digest(&configs[i])[7..]))
                .exists()
        })
        .collect();
    // Down to three quarters of 6 entries' worth: the 4 most recently used.
    assert_eq!(kept, [0, 7, 8, 9]);
}
