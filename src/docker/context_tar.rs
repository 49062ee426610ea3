//! The context tarball sent to the daemon, written entry by entry as the
//! daemon reads it: a blocking thread lists the context (the same listing
//! `context_hash` hashes, Docker's `.dockerignore` rules) and writes the tar
//! into a bounded channel that is the request body, so neither the whole
//! context nor its tar is ever held in memory or written to disk.
//!
//! Only paths inside the context go in, and a file listed as regular is
//! opened as [`open_listed`] does: a symlink or a FIFO put in its place
//! after the listing is refused, not followed or waited on.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tar::{EntryType, Header};
use tokio::sync::mpsc;

use super::context::{
    beneath, io_err, list_files, open_listed, ContextEntry, ContextError, EntryKind,
};

/// Writes `entries` (from [`list_files`]) as an uncompressed tar. Owners are
/// 0:0 as the Docker CLI sends them; modes and mtimes come from disk.
pub fn write_tar(
    context: &Path,
    entries: &[ContextEntry],
    out: impl Write,
) -> Result<(), ContextError> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    for entry in entries {
        if beneath(&entry.rel_path).as_deref() != Some(entry.rel_path.as_str()) {
            return Err(ContextError::OutsideDirectory {
                name: entry.rel_path.clone(),
                dir: context.to_path_buf(),
            });
        }
        let path = context.join(&entry.rel_path);
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime(&meta));
        let result = match &entry.kind {
            // A symlink put in its place would lead the files below out of
            // the context.
            EntryKind::Dir if !meta.is_dir() => {
                return Err(ContextError::Replaced {
                    path,
                    now: "not a directory",
                })
            }
            EntryKind::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                builder.append_data(
                    &mut header,
                    format!("{}/", entry.rel_path),
                    std::io::empty(),
                )
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.rel_path, target)
            }
            EntryKind::File => {
                let (file, opened) = open_listed(&path, None)?;
                header.set_entry_type(EntryType::Regular);
                // NOTE: the size is taken from the open file; a file growing
                // while we read would make the tar invalid, so we read exactly
                // that many bytes and fail on a short read.
                let size = opened.len();
                header.set_size(size);
                let reader = Exact {
                    inner: file.take(size),
                    left: size,
                };
                builder.append_data(&mut header, &entry.rel_path, reader)
            }
        };
        result.map_err(io_err(&path))?;
    }
    builder
        .into_inner()
        .map_err(io_err(context))?
        .flush()
        .map_err(io_err(context))?;
    Ok(())
}

/// Reads exactly `left` more bytes, or fails: tar trusts the header's size
/// and pads a short read with zeros, so a file that shrinks while it is sent
/// would otherwise reach the daemon silently corrupted.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was being sent ({} bytes missing); \
                     make sure nothing writes into the build context during apply",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Bytes per body piece, and pieces buffered ahead of the daemon.
const PIECE: usize = 256 * 1024;
const PIECES_AHEAD: usize = 4;

/// A build context to send: a directory and its Dockerfile (relative to it,
/// as configured), whose ignore file picks what goes in.
#[derive(Debug, Clone, Default)]
pub struct ContextSource {
    pub dir: PathBuf,
    pub dockerfile: PathBuf,
}

/// The writer behind a [`ContextSource::stream`]: whether it failed, and
/// why, naming the file at fault.
#[derive(Clone, Default)]
pub struct ContextJob(std::sync::Arc<std::sync::Mutex<Option<ContextError>>>);

impl ContextJob {
    /// The writer's failure, if it had one. It is recorded before the body
    /// ends with an error, so a build that failed on a broken body finds it.
    /// A writer stopped because the body was dropped (the build ended first)
    /// records nothing.
    pub fn failure(&self) -> Option<ContextError> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Keeps `e` as the reason the context could not be sent.
    pub(crate) fn record(&self, e: ContextError) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

impl ContextSource {
    /// The context as tar pieces for a request body, written by a blocking
    /// thread as they are consumed (at most a few pieces ahead). An error
    /// ends the stream with that error, and [`ContextJob::failure`] says it.
    pub fn stream(
        &self,
    ) -> (
        impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
        ContextJob,
    ) {
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(PIECES_AHEAD);
        let (dir, dockerfile) = (self.dir.clone(), self.dockerfile.clone());
        let job = ContextJob::default();
        let slot = job.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(PIECE),
            };
            let written = list_files(&dir, &dockerfile)
                .and_then(|entries| write_tar(&dir, &entries, &mut out));
            let Err(e) = written else { return };
            if tx.is_closed() {
                return; // The consumer stopped first: not the context's fault.
            }
            let shown = e.to_string();
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            // The daemon must not take a cut-off tar for a whole one.
            let _ = tx.blocking_send(Err(std::io::Error::other(shown)));
        });
        (tokio_stream::wrappers::ReceiverStream::new(rx), job)
    }
}

/// Sends what is written in [`PIECE`]-sized pieces down a bounded channel,
/// blocking while the consumer is that far behind.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "context_tar_tests.rs"]
mod tests;
