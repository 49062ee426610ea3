//! `context_hash`: one sha256 over what a build would send plus every build
//! input, computed at plan time without making a tarball. A file whose stat
//! says it is unchanged since it was last hashed is not read again
//! (`stat_cache`); the others are hashed in parallel; the combining pass
//! walks entries in path order, so the result does not depend on thread
//! scheduling.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::context::{
    dockerfile_in_context, io_err, list_files, open_listed, ContextEntry, ContextError, EntryKind,
};
use super::stat_cache::{Stat, StatCache};

/// Bumped whenever the hashed layout changes, so old states plan a rebuild
/// rather than silently comparing different things.
const LAYOUT_VERSION: &[u8] = b"stevedore-context-v1";
const MAX_THREADS: usize = 8;

/// `sha256:<hex>` over the context entries (path, mode, kind, content or
/// link target), the Dockerfile bytes and every `(key, value)` of `inputs`.
pub fn context_hash(
    context: &Path,
    dockerfile: &Path,
    inputs: &BTreeMap<String, String>,
) -> Result<String, ContextError> {
    let mut cache = StatCache::for_context(context);
    let (hash, _) = context_hash_with(context, dockerfile, inputs, &mut cache)?;
    cache.save();
    Ok(hash)
}

/// How a [`context_hash_with`] got its file hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashStats {
    /// Files whose content was read.
    pub read: usize,
    /// Files whose hash came from the stat cache.
    pub reused: usize,
}

/// [`context_hash`] with the stat cache given (and not saved).
pub fn context_hash_with(
    context: &Path,
    dockerfile: &Path,
    inputs: &BTreeMap<String, String>,
    cache: &mut StatCache,
) -> Result<(String, HashStats), ContextError> {
    let entries = list_files(context, dockerfile)?;
    let dockerfile_rel = dockerfile_in_context(context, dockerfile)?;
    let (contents, stats) = cached_contents(context, &entries, cache)?;

    let mut h = Sha256::new();
    field(&mut h, LAYOUT_VERSION);
    for (entry, content) in entries.iter().zip(&contents) {
        field(&mut h, entry.rel_path.as_bytes());
        h.update(entry.mode.to_be_bytes());
        match &entry.kind {
            EntryKind::Dir => field(&mut h, b"dir"),
            EntryKind::File => {
                field(&mut h, b"file");
                field(&mut h, content.as_deref().unwrap_or_default());
            }
            EntryKind::Symlink { target } => {
                field(&mut h, b"symlink");
                field(&mut h, target.as_bytes());
            }
        }
    }
    let df_path = context.join(&dockerfile_rel);
    let df = std::fs::read(&df_path).map_err(io_err(&df_path))?;
    field(&mut h, b"dockerfile");
    field(&mut h, dockerfile_rel.as_bytes());
    field(&mut h, &df);
    field(&mut h, b"inputs");
    for (k, v) in inputs {
        field(&mut h, k.as_bytes());
        field(&mut h, v.as_bytes());
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), stats))
}

/// Per context entry, the file's sha256 (`None` for other kinds).
type FileHashes = Vec<Option<Vec<u8>>>;

/// Each regular file's sha256: from the stat cache where its stat allows,
/// else read (and then remembered).
fn cached_contents(
    root: &Path,
    entries: &[ContextEntry],
    cache: &mut StatCache,
) -> Result<(FileHashes, HashStats), ContextError> {
    let mut contents: FileHashes = vec![None; entries.len()];
    let mut misses = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.kind != EntryKind::File {
            continue;
        }
        let path = root.join(&entry.rel_path);
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let stat = Stat::of(&meta);
        match stat.and_then(|s| cache.lookup(&entry.rel_path, &s)) {
            Some(hash) => contents[i] = Some(hash),
            None => misses.push(i),
        }
    }
    let stats = HashStats {
        read: misses.len(),
        reused: entries.iter().filter(|e| e.kind == EntryKind::File).count() - misses.len(),
    };
    for (i, read) in hash_contents(root, entries, &misses)? {
        if let Some(stat) = read.stat {
            cache.record(&entries[i].rel_path, stat, &read.sha256, read.started);
        }
        contents[i] = Some(read.sha256);
    }
    Ok((contents, stats))
}

/// Length-prefixed, so no two different field sequences hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// One file's content hash, with the stat it is valid for (`None` when the
/// file changed while it was read: then it is not remembered).
struct FileHash {
    sha256: Vec<u8>,
    stat: Option<Stat>,
    started: SystemTime,
}

/// The sha256 of the files `files` (indexes into `entries`), computed over
/// a small pool of scoped threads.
fn hash_contents(
    root: &Path,
    entries: &[ContextEntry],
    files: &[usize],
) -> Result<Vec<(usize, FileHash)>, ContextError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let results: Vec<Mutex<Option<FileHash>>> = files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<ContextError>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, MAX_THREADS)
        .min(files.len().max(1));

    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&idx) = files.get(n) else { break };
                    if lock(&first_error).is_some() {
                        break;
                    }
                    let path = root.join(&entries[idx].rel_path);
                    match hash_file(&path, &mut buf) {
                        Ok(d) => *lock(&results[n]) = Some(d),
                        Err(e) => {
                            lock(&first_error).get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(files
        .iter()
        .zip(results)
        .filter_map(|(&i, m)| Some((i, m.into_inner().unwrap_or_else(|p| p.into_inner())?)))
        .collect())
}

/// A poisoned lock only means another hashing thread panicked; the data
/// (an `Option`) is still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hashes one file; its stat is taken before and after the read, and only
/// a file that did not change meanwhile may be remembered.
fn hash_file(path: &Path, buf: &mut [u8]) -> Result<FileHash, ContextError> {
    let started = SystemTime::now();
    let (mut f, meta) = open_listed(path, None)?;
    let before = Stat::of(&meta);
    let mut h = Sha256::new();
    loop {
        let n = f.read(buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let after = f.metadata().ok().as_ref().and_then(Stat::of);
    Ok(FileHash {
        sha256: h.finalize().to_vec(),
        stat: before.filter(|b| Some(*b) == after),
        started,
    })
}

#[cfg(test)]
#[path = "hash_tests.rs"]
mod tests;
