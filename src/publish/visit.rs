//! What happens to each file of the daemon's archive as it streams past, on
//! the blocking thread that reads it: a layer the repository lacks is hashed
//! (its diff_id), gzipped and handed piece by piece to an upload running on
//! the async side; a layer the repository has is only hashed, to recognise
//! it; anything else small is kept as a document (manifests, the config).
//!
//! Which large file is which layer is only certain once it is hashed, and by
//! then it has streamed by. So a large file is recognised up front by its
//! name (`blobs/sha256/<diff_id>` in the OCI layout) or by its size (the
//! cache remembers each layer's uncompressed size) when it is a layer the
//! repository has, and is then not compressed; every other large file is
//! compressed and uploaded speculatively, the upload abandoned if it turns
//! out not to be wanted. A layer we wrongly took for a present one is
//! "missed" and fetched by another pass over a new export.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::writers::{diff_id_of, gzip_err, BlobWriter, DiffHasher, PieceSink, PIECE};
use crate::docker::compress::{is_gzip, layer_gzip, HashingWriter};
use crate::docker::{ArchiveVisitor, ExportError};
use crate::oci::Digest;
use crate::registry::upload::StreamedBlob;

/// Pieces (of `PIECE` bytes) buffered ahead of the upload.
const PIECES_AHEAD: usize = 8;

/// What one pass looks for.
#[derive(Debug, Clone, Default)]
pub(super) struct Wanted {
    /// diff_ids of layers to upload.
    pub needed: BTreeSet<String>,
    /// diff_ids of layers the repository has.
    pub present: BTreeSet<String>,
    /// Uncompressed sizes of the present layers.
    pub present_sizes: BTreeSet<u64>,
}

/// Work for the async side.
pub(super) enum Job {
    /// A large layer streaming now; `id` names it in [`Seen::upload`].
    Streamed { id: usize, blob: StreamedBlob },
    /// A small layer, compressed in memory.
    Small {
        diff_id: String,
        digest: Digest,
        gz: Vec<u8>,
    },
}

/// A layer file of the archive, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub diff_id: String,
    /// Uncompressed size.
    pub diff_size: u64,
    /// The blob made of it here (digest, size), if it was uploaded.
    pub blob: Option<(Digest, u64)>,
    /// The streamed upload that carried it, whose outcome decides.
    pub upload: Option<usize>,
}

pub(super) struct Visitor {
    pub wanted: Wanted,
    pub jobs: mpsc::Sender<Job>,
    pub cancel: CancellationToken,
    /// Layer files by archive name.
    pub seen: BTreeMap<String, Seen>,
    /// diff_ids already scheduled for upload in this pass (duplicates skip).
    pub scheduled: BTreeSet<String>,
    /// Needed layers that went by without being uploaded.
    pub missed: BTreeSet<String>,
    /// Where this thread's time went, for the log and the benchmark.
    pub timing: Timing,
    next_upload: usize,
}

/// Time the reading thread spent waiting for the daemon, hashing,
/// compressing and waiting for uploads to take pieces; bytes it read.
#[derive(Debug, Default, Clone)]
pub(super) struct Timing {
    pub read: std::time::Duration,
    pub hash: std::time::Duration,
    pub compress: std::time::Duration,
    pub upload_wait: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub bytes: u64,
}

impl Timing {
    pub fn upload_wait(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.upload_wait.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Visitor {
    pub fn new(wanted: Wanted, jobs: mpsc::Sender<Job>, cancel: CancellationToken) -> Visitor {
        Visitor {
            wanted,
            jobs,
            cancel,
            seen: BTreeMap::new(),
            scheduled: BTreeSet::new(),
            missed: BTreeSet::new(),
            timing: Timing::default(),
            next_upload: 0,
        }
    }

    /// A present layer, recognised by name or size: hashed, not compressed.
    fn recognised(&self, name: &str, size: u64) -> bool {
        let by_name = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}"))
            .is_some_and(|d| self.wanted.present.contains(&d));
        by_name || self.wanted.present_sizes.contains(&size)
    }

    fn small(&mut self, name: &str, bytes: &[u8]) -> Result<bool, ExportError> {
        let diff_id = diff_id_of(bytes)?;
        let diff_size = bytes.len() as u64;
        if self.wanted.present.contains(&diff_id) {
            self.remember(name, diff_id, diff_size, None, None);
            return Ok(false);
        }
        if !self.wanted.needed.contains(&diff_id) {
            return Ok(true);
        }
        let gz = if is_gzip(bytes) {
            bytes.to_vec()
        } else {
            let mut enc = layer_gzip(Vec::new());
            enc.write_all(bytes).map_err(gzip_err)?;
            enc.finish().map_err(gzip_err)?
        };
        let digest = Digest::sha256_of(&gz);
        let blob = Some((digest.clone(), gz.len() as u64));
        if self.scheduled.insert(diff_id.clone()) {
            let job = Job::Small {
                diff_id: diff_id.clone(),
                digest,
                gz,
            };
            self.jobs
                .blocking_send(job)
                .map_err(|_| ExportError::Cancelled)?;
        }
        self.remember(name, diff_id, diff_size, blob, None);
        Ok(false)
    }

    /// A present layer's file: hash it to be sure which it is.
    fn hash_only(&mut self, name: &str, data: &mut dyn Read) -> Result<(), ExportError> {
        let mut plain = DiffHasher::default();
        let mut hashing = std::time::Duration::ZERO;
        self.pump(data, |chunk| {
            let started = std::time::Instant::now();
            let hashed = plain.update(chunk);
            hashing += started.elapsed();
            hashed
        })?;
        self.timing.hash += hashing;
        let (diff_id, diff_size) = plain.finish()?;
        if self.wanted.present.contains(&diff_id) || self.scheduled.contains(&diff_id) {
            self.remember(name, diff_id, diff_size, None, None);
        } else if self.wanted.needed.contains(&diff_id) {
            tracing::debug!(name, %diff_id, "a needed layer looked like a present one; another pass will fetch it");
            self.missed.insert(diff_id);
        }
        Ok(())
    }

    /// Any other large file: hashed, gzipped (unless it is gzip already) and
    /// uploaded as it streams; the upload completes only if it is a layer
    /// still needed.
    fn stream(&mut self, name: &str, data: &mut dyn Read) -> Result<(), ExportError> {
        let id = self.next_upload;
        self.next_upload += 1;
        let (pieces_tx, pieces) = mpsc::channel(PIECES_AHEAD);
        let (digest_tx, digest) = oneshot::channel();
        let blob = StreamedBlob { pieces, digest };
        self.jobs
            .blocking_send(Job::Streamed { id, blob })
            .map_err(|_| ExportError::Cancelled)?;
        let waited = self.timing.upload_wait.clone();
        let mut blob = BlobWriter::Undecided(HashingWriter::new(PieceSink::new(pieces_tx, waited)));
        let mut plain = DiffHasher::default();
        let (mut hashing, mut compressing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        self.pump(data, |chunk| {
            let started = std::time::Instant::now();
            plain.update(chunk)?;
            let hashed = std::time::Instant::now();
            hashing += hashed - started;
            let written = blob.write(chunk);
            compressing += hashed.elapsed();
            written
        })?;
        self.timing.hash += hashing;
        self.timing.compress += compressing;
        let sink = blob.finish()?;
        let (diff_id, diff_size) = plain.finish()?;
        let (blob_digest, blob_size, mut pieces) = sink.digest();
        let delivered = pieces.close();
        let wanted = self.wanted.needed.contains(&diff_id) && !self.scheduled.contains(&diff_id);
        if wanted && delivered {
            self.scheduled.insert(diff_id.clone());
            let _ = digest_tx.send(Some(blob_digest.clone()));
            let blob = Some((blob_digest, blob_size));
            self.remember(name, diff_id, diff_size, blob, Some(id));
            return Ok(());
        }
        let _ = digest_tx.send(None);
        if wanted {
            self.missed.insert(diff_id);
        } else if self.wanted.present.contains(&diff_id) || self.scheduled.contains(&diff_id) {
            // A present layer, or a second copy of one already on its way.
            self.remember(name, diff_id, diff_size, None, None);
        }
        Ok(())
    }

    /// Reads `data` to its end in pieces, checking for cancellation.
    fn pump(
        &mut self,
        data: &mut dyn Read,
        mut each: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let mut buf = vec![0u8; PIECE];
        loop {
            if self.cancel.is_cancelled() {
                return Err(ExportError::Cancelled);
            }
            let started = std::time::Instant::now();
            let n = data
                .read(&mut buf)
                .map_err(|e| crate::docker::export::bad(format!("reading the archive: {e}")))?;
            self.timing.read += started.elapsed();
            self.timing.bytes += n as u64;
            if n == 0 {
                return Ok(());
            }
            each(&buf[..n])?;
        }
    }

    fn remember(
        &mut self,
        name: &str,
        diff_id: String,
        diff_size: u64,
        blob: Option<(Digest, u64)>,
        upload: Option<usize>,
    ) {
        let seen = Seen {
            diff_id,
            diff_size,
            blob,
            upload,
        };
        self.seen.insert(name.to_string(), seen);
    }
}

impl ArchiveVisitor for Visitor {
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<bool, ExportError> {
        if size <= crate::docker::export::SMALL_ENTRY {
            let mut bytes = Vec::with_capacity(size as usize);
            data.read_to_end(&mut bytes)
                .map_err(|e| crate::docker::export::bad(format!("reading {name:?}: {e}")))?;
            return self.small(name, &bytes);
        }
        if self.recognised(name, size) {
            self.hash_only(name, data)?;
        } else {
            self.stream(name, data)?;
        }
        Ok(false)
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

#[cfg(test)]
#[path = "visit_tests.rs"]
mod tests;
