use super::*;
use crate::oci::digest::sha256_digest;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn age(path: &Path, hours: u64) {
    let file = std::fs::File::options().append(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(hours * 3600))
        .unwrap();
}

#[test]
fn keeps_only_bytes_that_match_their_digest() {
    let cache = ContentCache::memory_only();
    let digest = sha256_digest(b"config");
    cache.put(&digest, b"other bytes");
    assert!(cache.get(&digest).is_none());
    cache.put(&digest, b"config");
    assert_eq!(
        cache.get(&digest).as_deref().map(Vec::as_slice),
        Some(&b"config"[..])
    );
}

#[test]
fn another_process_finds_what_one_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let digest = sha256_digest(b"manifest");
    ContentCache::with_disk(DiskCache::new(dir.path().join("c"))).put(&digest, b"manifest");
    let other = ContentCache::with_disk(DiskCache::new(dir.path().join("c")));
    assert_eq!(
        other.get(&digest).as_deref().map(Vec::as_slice),
        Some(&b"manifest"[..])
    );
    // Written through a temporary file that was renamed: nothing else is left.
    assert_eq!(entries(&dir.path().join("c")), [digest.replace(':', "-")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn a_corrupted_entry_is_dropped_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskCache::new(dir.path().to_path_buf());
    let digest = sha256_digest(b"config");
    disk.put(&digest, b"config");
    let path = dir.path().join(digest.replace(':', "-"));
    std::fs::write(&path, b"confiG").unwrap();
    assert_eq!(disk.get(&digest), None);
    assert!(!path.exists(), "the corrupted entry was kept");
}

#[test]
fn least_recently_used_entries_go_first() {
    let dir = tempfile::tempdir().unwrap();
    // Room for two 100-byte entries, not three.
    let disk = DiskCache::bounded(dir.path().to_path_buf(), 250);
    let blob = |c: u8| vec![c; 100];
    let name = |c: u8| sha256_digest(&blob(c)).replace(':', "-");
    disk.put(&sha256_digest(&blob(b'a')), &blob(b'a'));
    disk.put(&sha256_digest(&blob(b'b')), &blob(b'b'));
    age(&dir.path().join(name(b'a')), 3);
    age(&dir.path().join(name(b'b')), 2);
    // Reading `a` makes it the most recently used.
    assert!(disk.get(&sha256_digest(&blob(b'a'))).is_some());
    disk.put(&sha256_digest(&blob(b'c')), &blob(b'c'));
    let mut kept = vec![name(b'a'), name(b'c')];
    kept.sort();
    assert_eq!(entries(dir.path()), kept);
}

#[test]
fn malformed_digests_never_name_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskCache::new(dir.path().join("c"));
    for digest in ["sha256:../../etc/passwd", "md5:00", "../x", ""] {
        disk.put(digest, b"x");
        assert_eq!(disk.get(digest), None);
    }
    assert!(!dir.path().join("c").exists());
}

#[test]
fn an_unusable_directory_only_means_misses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let cache = ContentCache::with_disk(DiskCache::new(file.join("c")));
    let digest = sha256_digest(b"x");
    cache.put(&digest, b"x");
    assert!(cache.get(&digest).is_some(), "memory still holds it");
}
