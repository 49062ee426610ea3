//! The sending side of BuildKit's `DiffCopy` (fsutil's packet protocol), for
//! the `context` and `dockerfile` directories of a build session:
//!
//! 1. we send one `STAT` packet per entry, parents before children and
//!    siblings in byte order of their names (the receiver checks the order),
//!    then an empty `STAT`;
//! 2. the daemon compares them with its copy from the last build under the
//!    same shared key and sends `REQ <n>` for each regular file (the n-th
//!    `STAT`) whose size, mtime or mode changed;
//! 3. we answer each with `DATA <n>` pieces and an empty `DATA <n>`;
//! 4. the daemon sends `FIN`, we answer `FIN`.
//!
//! So an unchanged 500 MB context costs a handful of stat packets instead of
//! a 500 MB upload. The file set is the one `context_hash` hashes (our
//! listing, with Docker's ignore rules); the daemon's include patterns (it
//! asks for `.dockerignore` or the Dockerfile alone) narrow it further.
//! Written by hand: no crate implements fsutil's protocol.
//!
//! The daemon is not trusted with the filesystem: it names entries by their
//! index in what we listed (`offer.rs`), a file is sent only if it was
//! listed as regular, and it is opened as [`open_listed`] does: no symlink
//! followed, no FIFO waited on, the same file (device and inode) as listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bollard::fsutil::types::{packet::PacketType, Packet};
use bollard::moby::filesync::packet::file_sync_server::FileSync;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::context::{io_err, open_listed, ContextError};
use super::context_tar::ContextJob;

#[path = "offer.rs"]
mod offer;
use offer::{listing, Listed, Offer};

/// Bytes of file content per `DATA` packet.
const PIECE: usize = 256 * 1024;

/// The directories one build's session offers.
#[derive(Clone)]
pub(crate) struct Dirs {
    /// The context root and the Dockerfile as configured (its ignore file
    /// decides what is in the context).
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// The directory that holds the Dockerfile (its symlinks followed) and
    /// its name there: that directory offers it and its ignore file only.
    pub dockerfile_dir: PathBuf,
    pub dockerfile_name: String,
    /// Where a failure to read the context is kept, to name the file.
    pub job: ContextJob,
    /// What the daemon asked for from the context.
    pub sent: Arc<SentCount>,
}

/// Context entries listed, and the files (and their bytes) the daemon asked
/// for: after a one-file change, one file.
#[derive(Debug, Default)]
pub(crate) struct SentCount {
    pub listed: AtomicUsize,
    pub files: AtomicUsize,
    pub bytes: AtomicU64,
}

type Sent = Result<Packet, Status>;

#[tonic::async_trait]
impl FileSync for Dirs {
    type DiffCopyStream = ReceiverStream<Sent>;
    type TarStreamStream = ReceiverStream<Sent>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let meta = request.metadata();
        let dir = values(meta, "dir-name")
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut includes = values(meta, "include-patterns");
        includes.extend(values(meta, "followpaths"));
        let (root, named) = match dir.as_str() {
            "context" => (self.context.clone(), None),
            "dockerfile" => {
                let name = &self.dockerfile_name;
                let names = vec![name.clone(), format!("{name}.dockerignore")];
                (self.dockerfile_dir.clone(), Some(names))
            }
            other => {
                return Err(Status::not_found(format!(
                    "no access allowed to dir {other:?}"
                )))
            }
        };
        tracing::debug!(%dir, ?includes, "BuildKit asks for a directory");
        let (tx, rx) = mpsc::channel(8);
        let job = self.job.clone();
        // Only the context counts: the Dockerfile is always asked for.
        let counter = (dir == "context").then(|| self.sent.clone());
        let dockerfile = self.dockerfile.clone();
        tokio::spawn(async move {
            let listed = {
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    let offer = match &named {
                        Some(names) => Offer::Named(names),
                        None => Offer::Context {
                            dockerfile: &dockerfile,
                        },
                    };
                    listing(&root, offer, &includes)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(ContextError::Io {
                        path: PathBuf::from("<build context>"),
                        source: std::io::Error::other(format!("the listing stopped: {e}")),
                    })
                })
            };
            match listed {
                Ok(entries) => send(&root, entries, request.into_inner(), &tx, &job, counter).await,
                Err(e) => fail(&tx, &job, e).await,
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn tar_stream(
        &self,
        _: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("only DiffCopy is offered"))
    }
}

/// A metadata key's values (one per pattern).
fn values(meta: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    meta.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// Reports a failure to the daemon and keeps it for the build's error.
async fn fail(tx: &mpsc::Sender<Sent>, job: &ContextJob, e: ContextError) {
    let text = e.to_string();
    job.record(e);
    let _ = tx
        .send(Ok(Packet {
            r#type: PacketType::PacketErr as i32,
            data: text.into_bytes(),
            ..Default::default()
        }))
        .await;
}

/// Sends the stats, then each requested file, until the daemon says `FIN`.
async fn send(
    root: &Path,
    entries: Vec<Listed>,
    mut incoming: Streaming<Packet>,
    tx: &mpsc::Sender<Sent>,
    job: &ContextJob,
    counter: Option<Arc<SentCount>>,
) {
    // The regular files listed, by index: all the daemon can ask for.
    let mut files: HashMap<u32, (String, (u64, u64))> = HashMap::new();
    let count = entries.len();
    if let Some(c) = &counter {
        c.listed.fetch_max(count, Ordering::Relaxed);
    }
    for (n, entry) in entries.into_iter().enumerate() {
        if let Some(identity) = entry.regular {
            files.insert(n as u32, (entry.rel, identity));
        }
        let packet = Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(entry.stat),
            ..Default::default()
        };
        if tx.send(Ok(packet)).await.is_err() {
            return;
        }
    }
    let end = Packet {
        r#type: PacketType::PacketStat as i32,
        ..Default::default()
    };
    if tx.send(Ok(end)).await.is_err() {
        return;
    }
    let mut requested = 0usize;
    loop {
        let packet = match incoming.message().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(%status, "the daemon's side of DiffCopy failed");
                return;
            }
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketReq) => {
                let Some((rel, identity)) = files.get(&packet.id) else {
                    let _ = tx
                        .send(Err(Status::invalid_argument(format!(
                            "no file was sent as {}",
                            packet.id
                        ))))
                        .await;
                    return;
                };
                requested += 1;
                match send_file(root.join(rel), *identity, packet.id, tx).await {
                    Ok(bytes) => {
                        if let Some(c) = &counter {
                            c.files.fetch_add(1, Ordering::Relaxed);
                            c.bytes.fetch_add(bytes, Ordering::Relaxed);
                        }
                    }
                    Err(Some(e)) => return fail(tx, job, e).await,
                    Err(None) => return,
                }
            }
            Ok(PacketType::PacketFin) => {
                tracing::debug!(entries = count, requested, "context sent by DiffCopy");
                let _ = tx
                    .send(Ok(Packet {
                        r#type: PacketType::PacketFin as i32,
                        ..Default::default()
                    }))
                    .await;
                return;
            }
            Ok(PacketType::PacketErr) => {
                tracing::debug!(
                    error = %String::from_utf8_lossy(&packet.data),
                    "the daemon gave up on DiffCopy"
                );
                return;
            }
            _ => {}
        }
    }
}

/// One file as `DATA` pieces and an empty `DATA`; its size. `Err(None)`:
/// the daemon hung up; `Err(Some(_))`: the file could not be read, or is not
/// the regular file listed as `listed` any more.
async fn send_file(
    path: PathBuf,
    listed: (u64, u64),
    id: u32,
    tx: &mpsc::Sender<Sent>,
) -> Result<u64, Option<ContextError>> {
    let opening = path.clone();
    let opened = tokio::task::spawn_blocking(move || open_listed(&opening, Some(listed)))
        .await
        .map_err(|e| Some(io_err(&path)(std::io::Error::other(e.to_string()))))?;
    let mut file = tokio::fs::File::from_std(opened.map_err(Some)?.0);
    let mut total = 0u64;
    loop {
        let mut piece = vec![0u8; PIECE];
        let mut filled = 0;
        while filled < PIECE {
            let n = file
                .read(&mut piece[filled..])
                .await
                .map_err(|e| Some(io_err(&path)(e)))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        piece.truncate(filled);
        total += filled as u64;
        let last = filled < PIECE;
        if filled > 0 {
            let data = Packet {
                r#type: PacketType::PacketData as i32,
                id,
                data: piece,
                ..Default::default()
            };
            tx.send(Ok(data)).await.map_err(|_| None)?;
        }
        if last {
            break;
        }
    }
    let end = Packet {
        r#type: PacketType::PacketData as i32,
        id,
        ..Default::default()
    };
    tx.send(Ok(end)).await.map_err(|_| None)?;
    Ok(total)
}

#[cfg(test)]
#[path = "filesync_tests.rs"]
mod tests;
