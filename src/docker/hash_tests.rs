//! The stat cache: an unchanged context is stat'ed, not read; anything that
//! may have changed is read again, and the hash never depends on the cache.

use super::*;
use std::time::Duration;

fn context(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    for i in 0..files {
        std::fs::write(dir.path().join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    dir
}

/// One plan's hashing. Files these tests just wrote would be "racily
/// clean" (re-read for a few seconds), so the window is zero here.
fn run(dir: &Path, cache_root: &Path) -> (String, HashStats) {
    let mut cache = StatCache::load(cache_root, dir).with_racy_window(Duration::ZERO);
    let out =
        context_hash_with(dir, &dir.join("Dockerfile"), &BTreeMap::new(), &mut cache).unwrap();
    cache.save();
    out
}

#[test]
fn an_unchanged_context_is_not_read_again() {
    let (dir, root) = (context(20), tempfile::tempdir().unwrap());
    let (first, stats) = run(dir.path(), root.path());
    assert_eq!(
        stats,
        HashStats {
            read: 21,
            reused: 0
        }
    );
    let (second, stats) = run(dir.path(), root.path());
    assert_eq!(
        stats,
        HashStats {
            read: 0,
            reused: 21
        }
    );
    assert_eq!(first, second);
}

#[test]
fn a_touched_file_is_read_again_and_hashes_the_same() {
    let (dir, root) = (context(3), tempfile::tempdir().unwrap());
    let (before, _) = run(dir.path(), root.path());
    let file = std::fs::File::options()
        .append(true)
        .open(dir.path().join("f1.txt"))
        .unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(30))
        .unwrap();
    let (after, stats) = run(dir.path(), root.path());
    assert_eq!(stats.read, 1);
    assert_eq!(
        before, after,
        "same content, other mtime: same context_hash"
    );
}

#[test]
fn files_written_just_before_hashing_are_not_trusted() {
    let (dir, root) = (context(2), tempfile::tempdir().unwrap());
    let plan = || {
        let mut cache = StatCache::load(root.path(), dir.path());
        let dockerfile = dir.path().join("Dockerfile");
        let out = context_hash_with(dir.path(), &dockerfile, &BTreeMap::new(), &mut cache);
        cache.save();
        out.unwrap().1
    };
    plan();
    // Written a moment ago: a same-tick edit would not show in the stat.
    assert_eq!(plan().reused, 0);
}

#[test]
fn an_unreadable_cache_file_only_means_reading() {
    let (dir, root) = (context(2), tempfile::tempdir().unwrap());
    let (first, _) = run(dir.path(), root.path());
    for entry in std::fs::read_dir(root.path().join("context-stat")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"{not json").unwrap();
    }
    let (second, stats) = run(dir.path(), root.path());
    assert_eq!((first, stats.reused), (second, 0));
}

#[test]
fn the_cache_does_not_change_the_hash() {
    let (dir, root) = (context(5), tempfile::tempdir().unwrap());
    let uncached = context_hash_with(
        dir.path(),
        &dir.path().join("Dockerfile"),
        &BTreeMap::new(),
        &mut StatCache::disabled(),
    )
    .unwrap()
    .0;
    run(dir.path(), root.path());
    assert_eq!(run(dir.path(), root.path()).0, uncached);
}

/// A listed file replaced before it is read: a FIFO does not hang the plan,
/// a symlink's target is not hashed as the file.
#[test]
fn a_file_replaced_after_the_listing_is_refused_not_followed() {
    let dir = context(0);
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
    for (path, now) in [
        (fifo, "a FIFO, socket or device"),
        (dir.path().join("link"), "a symlink"),
    ] {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(hash_file(&path, &mut [0u8; 64]).map(|_| ()));
        });
        let hashed = result
            .recv_timeout(Duration::from_secs(10))
            .expect("hashing hung");
        let err = hashed.expect_err(now).to_string();
        assert!(err.contains(&format!("is {now} now")), "{err}");
    }
}
