//! Content that cannot change, kept by digest: manifests fetched by digest
//! and config blobs, for the life of the process. Every entry is checked
//! against its digest before it is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::client::digest_with_algorithm;

/// Env var that moves the user's cache directory (shared with the layer cache).
pub const CACHE_DIR_ENV: &str = "STEVEDORE_CACHE_DIR";

/// Per-process entries beyond this are not kept (they are small JSON
/// documents; a plan reads a few per image).
const MEMORY_ENTRIES: usize = 4096;

/// Verified content by digest.
pub struct ContentCache {
    memory: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentCache")
    }
}

impl ContentCache {
    /// Memory only: nothing outlives the process.
    pub fn memory_only() -> ContentCache {
        ContentCache {
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The process's cache.
    pub fn from_env() -> ContentCache {
        ContentCache::memory_only()
    }

    /// The bytes named by `digest`, if held.
    pub fn get(&self, digest: &str) -> Option<Arc<Vec<u8>>> {
        lock(&self.memory).get(digest).cloned()
    }

    /// Keeps `bytes` under `digest`; refuses bytes that do not match it.
    pub fn put(&self, digest: &str, bytes: &[u8]) {
        if !matches(digest, bytes) {
            return;
        }
        let mut memory = lock(&self.memory);
        if memory.len() >= MEMORY_ENTRIES {
            memory.clear();
        }
        memory.insert(digest.to_string(), Arc::new(bytes.to_vec()));
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
mod tests {
    use super::*;
    use crate::registry::client::sha256_digest;

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
}
