//! `context_hash`: one sha256 over what a build would send plus every build
//! input, computed at plan time without making a tarball. File contents are
//! hashed in parallel; the combining pass walks entries in path order, so the
//! result does not depend on thread scheduling.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::context::{
    dockerfile_in_context, io_err, list_files, ContextEntry, ContextError, EntryKind,
};

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
    let entries = list_files(context, dockerfile)?;
    let dockerfile_rel = dockerfile_in_context(context, dockerfile)?;
    let contents = hash_contents(context, &entries)?;

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
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Length-prefixed, so no two different field sequences hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The sha256 of each regular file's content (None for other kinds), in the
/// order of `entries`, computed over a small pool of scoped threads.
fn hash_contents(
    root: &Path,
    entries: &[ContextEntry],
) -> Result<Vec<Option<Vec<u8>>>, ContextError> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].kind == EntryKind::File)
        .collect();
    let results: Vec<Mutex<Option<Vec<u8>>>> = entries.iter().map(|_| Mutex::new(None)).collect();
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
                        Ok(d) => *lock(&results[idx]) = Some(d),
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
    Ok(results
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect())
}

/// A poisoned lock only means another hashing thread panicked; the data
/// (an `Option`) is still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hash_file(path: &Path, buf: &mut [u8]) -> Result<Vec<u8>, ContextError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    loop {
        let n = f.read(buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}
