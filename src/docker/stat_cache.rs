//! Remembers each context file's content hash beside the stat facts that
//! tell, as git's index does, whether it can have changed since: size,
//! mtime, ctime, inode, device and mode. The plan of an unchanged context
//! then costs a `stat` per file instead of reading it.
//!
//! Any doubt means reading the file again: a different stat, a file whose
//! mtime or ctime is too close to when it was hashed (a write in the same
//! clock tick would not show; git calls these "racily clean"), a file that
//! changed while it was read, or a cache file that cannot be read. ctime
//! is part of the key because nothing but the kernel sets it: restoring an
//! old mtime with `touch -d` after an edit still counts as a change.
//!
//! Kept per context directory under `$STEVEDORE_CACHE_DIR` (or
//! `~/.cache/stevedore`) in `context-stat/`, written through a temporary
//! file and a rename; it holds paths and hashes only.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const SUBDIR: &str = "context-stat";
const VERSION: u32 = 1;
/// A file changed less than this before it was hashed is hashed again next
/// time: coarse filesystem clocks (1–2 s on some) hide writes in that window.
const RACY_WINDOW: Duration = Duration::from_secs(3);

/// The stat facts a content hash is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    mode: u32,
}

impl Stat {
    /// `None` where the platform gives no ctime/inode: never cached there.
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> Option<Stat> {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(Stat {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_meta: &Metadata) -> Option<Stat> {
        None
    }

    fn changed_ns(&self) -> i128 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    /// When the content was hashed (ns since the epoch).
    hashed_ns: i128,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    entries: HashMap<String, Entry>,
}

/// The cache for one context directory.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    old: HashMap<String, Entry>,
    /// What this run saw; replaces `old` on save, so gone files drop out.
    new: HashMap<String, Entry>,
    racy_window: Duration,
}

impl StatCache {
    /// No file: every lookup misses, nothing is saved.
    pub fn disabled() -> StatCache {
        StatCache::default()
    }

    /// The cache of `context` under `root` (the stevedore cache directory).
    pub fn load(root: &Path, context: &Path) -> StatCache {
        let absolute = std::fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
        let key = hex::encode(Sha256::digest(absolute.to_string_lossy().as_bytes()));
        let file = root.join(SUBDIR).join(format!("{key}.json"));
        let old = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<File>(&bytes).ok())
            .filter(|f| f.version == VERSION)
            .map(|f| f.entries)
            .unwrap_or_default();
        StatCache {
            file: Some(file),
            old,
            new: HashMap::new(),
            racy_window: RACY_WINDOW,
        }
    }

    /// Trusts files changed up to `window` before they were hashed (tests
    /// use zero so that files they just wrote count as settled).
    pub fn with_racy_window(mut self, window: Duration) -> StatCache {
        self.racy_window = window;
        self
    }

    /// The user's cache for `context`, as `$STEVEDORE_CACHE_DIR` says.
    pub fn for_context(context: &Path) -> StatCache {
        match crate::cache_dir::root() {
            Some(root) => StatCache::load(&root, context),
            None => StatCache::disabled(),
        }
    }

    /// The remembered sha256 of `rel` if `stat` says it cannot have changed.
    pub fn lookup(&mut self, rel: &str, stat: &Stat) -> Option<Vec<u8>> {
        let entry = self.old.get(rel)?;
        let settled = stat.changed_ns() + self.racy_window.as_nanos() as i128 <= entry.hashed_ns;
        if entry.stat != *stat || !settled {
            return None;
        }
        let hash = hex::decode(&entry.sha256).ok().filter(|h| h.len() == 32)?;
        self.new.insert(rel.to_string(), entry.clone());
        Some(hash)
    }

    /// Remembers that `rel`, while it had `stat`, hashed to `sha256`;
    /// `hashed_at` is when its read began.
    pub fn record(&mut self, rel: &str, stat: Stat, sha256: &[u8], hashed_at: SystemTime) {
        let hashed_ns = hashed_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let entry = Entry {
            stat,
            hashed_ns,
            sha256: hex::encode(sha256),
        };
        self.new.insert(rel.to_string(), entry);
    }

    /// Writes what this run saw, atomically; failures only cost a re-read
    /// next time.
    pub fn save(self) {
        let Some(file) = self.file else { return };
        let Some(dir) = file.parent() else { return };
        let unchanged = self.new.len() == self.old.len()
            && self.new.iter().all(|(k, v)| self.old.get(k) == Some(v));
        if unchanged {
            return;
        }
        let body = File {
            version: VERSION,
            entries: self.new,
        };
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir))
            .and_then(|mut tmp| {
                serde_json::to_writer(&mut tmp, &body)?;
                tmp.flush()?;
                tmp.persist(&file).map_err(|e| e.error)
            });
        if let Err(e) = written {
            tracing::debug!(file = %file.display(), error = %e, "cannot save the context stat cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; 32] = [7; 32];

    fn stat() -> Stat {
        Stat {
            size: 10,
            mtime_ns: 1_000_000_000_000,
            ctime_ns: 1_000_000_000_000,
            ino: 42,
            dev: 1,
            mode: 0o100644,
        }
    }

    fn recorded(hashed_after: Duration) -> StatCache {
        let mut cache = StatCache {
            racy_window: RACY_WINDOW,
            ..StatCache::default()
        };
        let at = UNIX_EPOCH + Duration::from_nanos(stat().changed_ns() as u64) + hashed_after;
        cache.record("f", stat(), &HASH, at);
        cache.old = std::mem::take(&mut cache.new);
        cache
    }

    #[test]
    fn the_same_stat_long_after_it_was_hashed_is_trusted() {
        assert_eq!(
            recorded(Duration::from_secs(60)).lookup("f", &stat()),
            Some(HASH.to_vec())
        );
    }

    #[test]
    fn any_other_stat_fact_means_reading_again() {
        let mut cache = recorded(Duration::from_secs(60));
        let changes: [fn(&mut Stat); 6] = [
            |s| s.size += 1,
            |s| s.mtime_ns += 1,
            // An edit whose size and mtime were put back (`touch -d`).
            |s| s.ctime_ns += 1,
            |s| s.ino += 1,
            |s| s.dev += 1,
            |s| s.mode |= 0o111,
        ];
        for change in changes {
            let mut other = stat();
            change(&mut other);
            assert_eq!(cache.lookup("f", &other), None, "{other:?}");
        }
        assert_eq!(cache.lookup("g", &stat()), None);
    }

    #[test]
    fn a_file_changed_just_before_it_was_hashed_is_racy() {
        let mut cache = recorded(Duration::from_millis(500));
        assert_eq!(cache.lookup("f", &stat()), None);
    }
}
