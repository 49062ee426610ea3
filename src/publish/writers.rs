//! The byte plumbing of a streamed layer: its diff_id hashed as it passes
//! (inflating gzip first), its blob gzipped or passed through
//! ([`BlobWriter`]), and the blob's pieces handed to the upload
//! ([`PieceSink`]), with the time spent blocked on it counted.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::docker::compress::{is_gzip, layer_gzip, HashingWriter};
use crate::docker::ExportError;

/// Bytes per upload piece.
pub(super) const PIECE: usize = 256 * 1024;

/// sha256 of the plain bytes, inflating them first when they are gzip (the
/// diff_id is over the uncompressed tar), counted.
#[derive(Default)]
pub(super) struct DiffHasher {
    state: Option<DiffState>,
}

enum DiffState {
    Plain(HashingWriter<std::io::Sink>),
    Gzip(Box<flate2::write::GzDecoder<HashingWriter<std::io::Sink>>>),
}

impl DiffHasher {
    pub(super) fn update(&mut self, chunk: &[u8]) -> Result<(), ExportError> {
        let state = self.state.get_or_insert_with(|| {
            let sink = HashingWriter::new(std::io::sink());
            if is_gzip(chunk) {
                DiffState::Gzip(Box::new(flate2::write::GzDecoder::new(sink)))
            } else {
                DiffState::Plain(sink)
            }
        });
        match state {
            DiffState::Plain(w) => w.write_all(chunk).map_err(gzip_err),
            DiffState::Gzip(w) => w.write_all(chunk).map_err(gzip_err),
        }
    }

    pub(super) fn finish(self) -> Result<(String, u64), ExportError> {
        let sink = match self.state {
            None => HashingWriter::new(std::io::sink()),
            Some(DiffState::Plain(w)) => w,
            Some(DiffState::Gzip(w)) => w.finish().map_err(gzip_err)?,
        };
        let (digest, size, _) = sink.digest();
        Ok((digest.into(), size))
    }
}

pub(super) fn diff_id_of(bytes: &[u8]) -> Result<String, ExportError> {
    let mut h = DiffHasher::default();
    h.update(bytes)?;
    Ok(h.finish()?.0)
}

pub(super) fn gzip_err(e: std::io::Error) -> ExportError {
    crate::docker::export::bad(format!("a layer could not be (de)compressed: {e}"))
}

/// A streamed layer's blob as it is written: gzipped here, or passed
/// through as it is when the first bytes show it is gzip already.
pub(super) enum BlobWriter {
    Undecided(HashingWriter<PieceSink>),
    Gzip(Box<flate2::write::GzEncoder<HashingWriter<PieceSink>>>),
    Raw(HashingWriter<PieceSink>),
}

impl BlobWriter {
    pub(super) fn write(&mut self, chunk: &[u8]) -> Result<(), ExportError> {
        if let BlobWriter::Undecided(_) = self {
            let placeholder = BlobWriter::Raw(HashingWriter::new(PieceSink::detached()));
            if let BlobWriter::Undecided(sink) = std::mem::replace(self, placeholder) {
                *self = if is_gzip(chunk) {
                    BlobWriter::Raw(sink)
                } else {
                    BlobWriter::Gzip(Box::new(layer_gzip(sink)))
                };
            }
        }
        match self {
            BlobWriter::Gzip(enc) => enc.write_all(chunk).map_err(gzip_err),
            BlobWriter::Raw(raw) | BlobWriter::Undecided(raw) => {
                raw.write_all(chunk).map_err(gzip_err)
            }
        }
    }

    /// The blob's sink, everything written (an empty file gives an empty blob).
    pub(super) fn finish(self) -> Result<HashingWriter<PieceSink>, ExportError> {
        match self {
            BlobWriter::Gzip(enc) => enc.finish().map_err(gzip_err),
            BlobWriter::Raw(sink) | BlobWriter::Undecided(sink) => Ok(sink),
        }
    }
}

/// Sends what is written down an upload's piece channel. When the upload
/// has gone (failed or cancelled), writes are still accepted so hashing can
/// finish; `close` then says the blob was not delivered.
pub(super) struct PieceSink {
    tx: Option<mpsc::Sender<Bytes>>,
    buf: Vec<u8>,
    broken: bool,
    /// Nanoseconds spent blocked on a full channel (the upload is slower).
    waited: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl PieceSink {
    pub(super) fn new(
        tx: mpsc::Sender<Bytes>,
        waited: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> PieceSink {
        PieceSink {
            tx: Some(tx),
            buf: Vec::with_capacity(PIECE),
            broken: false,
            waited,
        }
    }

    /// A sink going nowhere, a placeholder while a writer changes form.
    fn detached() -> PieceSink {
        PieceSink {
            tx: None,
            buf: Vec::new(),
            broken: true,
            waited: Default::default(),
        }
    }

    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        let started = std::time::Instant::now();
        let sent = self.tx.as_ref().map(|tx| tx.blocking_send(piece).is_ok());
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited
            .fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
        if sent != Some(true) {
            self.broken = true;
            self.tx = None;
        }
    }

    /// Sends the rest and ends the blob; whether every byte got through.
    pub(super) fn close(&mut self) -> bool {
        self.send();
        self.tx = None;
        !self.broken
    }
}

impl Write for PieceSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.broken {
            return Ok(data.len());
        }
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
