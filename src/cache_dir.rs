//! Where the user's caches live: one root shared by every provider process
//! of the user (the content cache, the layer cache, the context stat cache
//! each keep a folder under it).

use std::path::PathBuf;

/// Overrides the cache root; empty turns the disk caches off.
pub const CACHE_DIR_ENV: &str = "STEVEDORE_CACHE_DIR";

/// `$STEVEDORE_CACHE_DIR`, else `$XDG_CACHE_HOME/stevedore` or
/// `~/.cache/stevedore` (the platform's cache dir elsewhere); `None` when
/// the variable is set empty or no cache dir is known.
pub fn root() -> Option<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => dirs::cache_dir().map(|d| d.join("stevedore")),
    }
}
