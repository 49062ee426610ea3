//! What earlier publishes learnt, kept on local disk so the next one can skip
//! work: for each layer (by diff_id) the digest and size of the gzip blob we
//! made from it and the repositories we pushed that blob to, and each image
//! config's exact bytes (by its digest, the image ID).
//!
//! Layout under the cache directory, one small JSON file per entry:
//! `layers/<diff_id hex>.json` and `configs/<config digest hex>.json` (the
//! config bytes themselves). Best effort throughout: an entry that is
//! missing, unreadable, truncated or does not match its name is a miss (and
//! is deleted), and a write that fails is logged and forgotten. Nothing here
//! can fail a publish. Bounded: a hit refreshes an entry's mtime, and
//! [`BlobCache::prune`] deletes the least recently used entries once the
//! cache passes its size bound.
//!
//! Why a stale or wrong entry cannot corrupt an image: a layer entry is only
//! used after the target repository answers that it holds a blob with that
//! digest, and a digest names exactly one content, checked by the registry
//! on upload. Config bytes are used only if their sha256 is the image ID the
//! daemon reports. What the cache is trusted for is that the blob it names
//! is the gzip of that diff_id: we wrote that ourselves after compressing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci::Digest;

/// Repositories remembered per layer, most recent first; enough to find a
/// mount source without the entry growing with every repository ever used.
const REPOSITORIES_KEPT: usize = 8;

/// What we know about one layer's compressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub diff_id: String,
    /// `sha256:` of the gzip blob.
    pub digest: Digest,
    pub size: u64,
    /// Size of the uncompressed layer, which lets an export recognise the
    /// layer by size before reading it (absent in entries of older versions).
    #[serde(default)]
    pub diff_size: Option<u64>,
    /// `registry/repository` names the blob was pushed to, newest first.
    #[serde(default)]
    pub repositories: Vec<String>,
}

/// The on-disk cache, or none at all (every lookup misses).
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: Option<PathBuf>,
}

impl BlobCache {
    /// `$STEVEDORE_CACHE_DIR`, else `$XDG_CACHE_HOME/stevedore` or
    /// `~/.cache/stevedore` (the platform's cache dir elsewhere).
    pub fn from_env() -> BlobCache {
        BlobCache {
            dir: crate::cache_dir::root(),
        }
    }

    pub fn at(dir: impl Into<PathBuf>) -> BlobCache {
        BlobCache {
            dir: Some(dir.into()),
        }
    }

    pub fn disabled() -> BlobCache {
        BlobCache { dir: None }
    }

    pub fn layer(&self, diff_id: &str) -> Option<CachedLayer> {
        let path = self.entry("layers", diff_id)?;
        let bytes = fs::read(&path).ok()?;
        let entry = serde_json::from_slice::<CachedLayer>(&bytes)
            .ok()
            .filter(|e| e.diff_id == diff_id && hex_of(&e.digest).is_some());
        used_or_dropped(&path, entry)
    }

    /// Remembers that `diff_id` (of `diff_size` bytes uncompressed, if
    /// known) gzips to blob `digest` of `size` bytes and, if given, that
    /// `repository` (`registry/repository`) now holds it.
    pub fn record_layer(
        &self,
        diff_id: &str,
        digest: &Digest,
        size: u64,
        diff_size: Option<u64>,
        repository: Option<&str>,
    ) {
        let Some(path) = self.entry("layers", diff_id) else {
            return;
        };
        let mut repositories: Vec<String> = repository.map(str::to_string).into_iter().collect();
        let mut diff_size = diff_size;
        if let Some(old) = self.layer(diff_id).filter(|old| old.digest == *digest) {
            diff_size = diff_size.or(old.diff_size);
            repositories.extend(
                old.repositories
                    .into_iter()
                    .filter(|r| Some(r.as_str()) != repository),
            );
        }
        repositories.truncate(REPOSITORIES_KEPT);
        let entry = CachedLayer {
            diff_id: diff_id.to_string(),
            digest: digest.clone(),
            size,
            diff_size,
            repositories,
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            write_atomic(&path, &bytes);
        }
    }

    /// The config bytes whose sha256 is `image_id`, if we have them.
    pub fn config(&self, image_id: &str) -> Option<Vec<u8>> {
        let path = self.entry("configs", image_id)?;
        let bytes = fs::read(&path).ok()?;
        let config = (Digest::sha256_of(&bytes) == image_id).then_some(bytes);
        used_or_dropped(&path, config)
    }

    /// Deletes the least recently used entries while the cache holds more
    /// than `max_bytes`, down to three quarters of it. Entries another
    /// process deletes first are simply gone.
    pub fn prune(&self, max_bytes: u64) {
        let Some(dir) = &self.dir else { return };
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = ["layers", "configs"]
            .iter()
            .filter_map(|kind| fs::read_dir(dir.join(kind)).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.modified().ok()?;
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= max_bytes {
            return;
        }
        entries.sort();
        let target = max_bytes / 4 * 3;
        for (_, size, path) in entries {
            if total <= target {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= size;
            }
        }
    }

    pub fn record_config(&self, bytes: &[u8]) {
        if let Some(path) = self.entry("configs", &Digest::sha256_of(bytes)) {
            write_atomic(&path, bytes);
        }
    }

    /// The file for `digest` in `kind`; `None` when the cache is off or the
    /// digest is not a plain sha256 (which also keeps it a safe file name).
    fn entry(&self, kind: &str, digest: &str) -> Option<PathBuf> {
        let hex = hex_of(digest)?;
        Some(self.dir.as_ref()?.join(kind).join(format!("{hex}.json")))
    }
}

/// The bound [`BlobCache::prune`] is called with: `$STEVEDORE_CACHE_MAX_MB`,
/// default 64 MiB (layer entries are ~300 bytes, configs a few KiB: tens of
/// thousands of images).
pub fn max_bytes_from_env() -> u64 {
    std::env::var("STEVEDORE_CACHE_MAX_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(64)
        .saturating_mul(1024 * 1024)
}

/// A good entry gets its mtime refreshed (it was just used); a bad one is
/// deleted so it is not read again.
fn used_or_dropped<T>(path: &Path, entry: Option<T>) -> Option<T> {
    match &entry {
        Some(_) => {
            if let Ok(f) = fs::File::options().append(true).open(path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
        }
        None => {
            tracing::debug!(path = %path.display(), "dropping a corrupt cache entry");
            let _ = fs::remove_file(path);
        }
    }
    entry
}

fn hex_of(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let plain = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    plain.then_some(hex)
}

/// Writes through a temporary file and a rename, so a reader (another
/// publish running at the same time) sees the old entry or the new one,
/// never half of one.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let attempt = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = attempt() {
        tracing::debug!(path = %path.display(), error = %e, "could not write a cache entry");
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
