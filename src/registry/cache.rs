//! Content that cannot change, kept by digest: manifests fetched by digest
//! and config blobs. A per-process map sits in front of a directory shared
//! by every provider process of the user (`$STEVEDORE_CACHE_DIR` or
//! `~/.cache/stevedore`, subfolder `registry-content/`), so the next plan,
//! and the other provider processes of this one, need not fetch them again.
//!
//! Safe under concurrent processes: an entry is written to a temporary file
//! and renamed into place, so a reader sees all of it or nothing. Every entry
//! is checked against its digest when read; a corrupted one is deleted and
//! fetched again, never used. The directory is bounded: past
//! [`DiskCache::DEFAULT_MAX_BYTES`] the least recently used entries go. Only
//! content named by its digest is kept, never credentials or tokens.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::oci::digest::digest_with_algorithm;
use crate::oci::reference::is_valid_digest;

const SUBDIR: &str = "registry-content";

/// Per-process entries beyond this are not kept (they are small JSON
/// documents; a plan reads a few per image).
const MEMORY_ENTRIES: usize = 4096;

/// A hit refreshes an entry's age only when older than this, so warm plans
/// only read: LRU to the hour is plenty for eviction.
const TOUCH_AFTER: Duration = Duration::from_secs(3600);

/// Verified content by digest: memory first, then the shared directory.
pub struct ContentCache {
    memory: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    disk: Option<DiskCache>,
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCache")
            .field("disk", &self.disk.as_ref().map(|d| &d.dir))
            .finish()
    }
}

impl ContentCache {
    /// Memory only: nothing outlives the process.
    pub fn memory_only() -> ContentCache {
        ContentCache {
            memory: Mutex::new(HashMap::new()),
            disk: None,
        }
    }

    /// Backed by `disk`.
    pub fn with_disk(disk: DiskCache) -> ContentCache {
        ContentCache {
            disk: Some(disk),
            ..ContentCache::memory_only()
        }
    }

    /// The user's shared cache (see [`crate::cache_dir`]). Nothing is
    /// touched on disk until the first read or write.
    pub fn from_env() -> ContentCache {
        match crate::cache_dir::root() {
            Some(root) => ContentCache::with_disk(DiskCache::new(root.join(SUBDIR))),
            None => ContentCache::memory_only(),
        }
    }

    /// The bytes named by `digest`, if held and still matching it.
    pub fn get(&self, digest: &str) -> Option<Arc<Vec<u8>>> {
        if let Some(bytes) = lock(&self.memory).get(digest) {
            return Some(bytes.clone());
        }
        let bytes = Arc::new(self.disk.as_ref()?.get(digest)?);
        self.remember(digest, bytes.clone());
        Some(bytes)
    }

    /// Keeps `bytes` under `digest`; refuses bytes that do not match it.
    pub fn put(&self, digest: &str, bytes: &[u8]) {
        if !matches(digest, bytes) {
            return;
        }
        if let Some(disk) = &self.disk {
            disk.put(digest, bytes);
        }
        self.remember(digest, Arc::new(bytes.to_vec()));
    }

    fn remember(&self, digest: &str, bytes: Arc<Vec<u8>>) {
        let mut memory = lock(&self.memory);
        if memory.len() >= MEMORY_ENTRIES {
            memory.clear();
        }
        memory.insert(digest.to_string(), bytes);
    }
}

/// The shared directory. Every failure to use it (unwritable, full, gone)
/// only means a miss: the registry is asked instead.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Created (mode 0700) on first write.
    ready: OnceLock<bool>,
}

impl DiskCache {
    /// Manifests and configs are a few KiB: tens of thousands of them.
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    pub fn new(dir: PathBuf) -> DiskCache {
        DiskCache::bounded(dir, DiskCache::DEFAULT_MAX_BYTES)
    }

    pub fn bounded(dir: PathBuf, max_bytes: u64) -> DiskCache {
        DiskCache {
            dir,
            max_bytes,
            ready: OnceLock::new(),
        }
    }

    /// `<dir>/<algorithm>-<hex>`, for well-formed digests only: the name
    /// never leaves the directory.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        if !is_valid_digest(digest) || digest_with_algorithm(digest, b"").is_none() {
            return None;
        }
        Some(self.dir.join(digest.replace(':', "-")))
    }

    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        if !matches(digest, &bytes) {
            // Corrupted (a full disk, a crash before rename on an odd
            // filesystem, a hand edit): drop it so it is fetched again.
            tracing::debug!(path = %path.display(), "dropping a corrupted cache entry");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        touch_if_old(&path);
        Some(bytes)
    }

    pub fn put(&self, digest: &str, bytes: &[u8]) {
        let Some(path) = self.path(digest) else {
            return;
        };
        if !*self.ready.get_or_init(|| create_private_dir(&self.dir)) || path.exists() {
            return;
        }
        let written = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .and_then(|mut tmp| {
                tmp.write_all(bytes)?;
                tmp.persist(&path).map_err(|e| e.error)
            });
        if let Err(e) = written {
            tracing::debug!(dir = %self.dir.display(), error = %e, "cannot write a cache entry");
            return;
        }
        self.evict();
    }

    /// Deletes the least recently used entries while the directory holds
    /// more than its bound, down to nine tenths of it so that every write
    /// near the bound does not scan the directory again.
    fn evict(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.modified().ok()?;
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        let target = self.max_bytes / 10 * 9;
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> bool {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).is_ok()
}

/// Marks an entry as used now, for LRU eviction.
fn touch_if_old(path: &Path) {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|m| m.elapsed().is_ok_and(|age| age > TOUCH_AFTER))
        .unwrap_or(false);
    if old {
        if let Ok(file) = std::fs::File::options().append(true).open(path) {
            let _ = file.set_modified(SystemTime::now());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// True when `bytes` hash to `digest` (sha256, sha384 or sha512).
pub(super) fn matches(digest: &str, bytes: &[u8]) -> bool {
    digest_with_algorithm(digest, bytes).as_deref() == Some(digest)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
