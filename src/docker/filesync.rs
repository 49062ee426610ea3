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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bollard::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard::moby::filesync::packet::file_sync_server::FileSync;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::context::{
    io_err, list_all, list_files, permission_bits, ContextEntry, ContextError, EntryKind,
};
use super::context_tar::ContextJob;
use super::ignore::IgnoreMatcher;

/// Bytes of file content per `DATA` packet.
const PIECE: usize = 256 * 1024;

/// The directories one build's session offers.
#[derive(Clone)]
pub(crate) struct Dirs {
    /// The context root and the Dockerfile as configured (its ignore file
    /// decides what is in the context).
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// The directory that holds the Dockerfile.
    pub dockerfile_dir: PathBuf,
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
        let (root, ignore_rules) = match dir.as_str() {
            "context" => (self.context.clone(), Some(self.dockerfile.clone())),
            "dockerfile" => (self.dockerfile_dir.clone(), None),
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
        tokio::spawn(async move {
            let listed = {
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    listing(&root, ignore_rules.as_deref(), &includes)
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

/// One entry as sent: its path under the root and its stat.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub rel: String,
    pub stat: Stat,
    pub regular: bool,
}

/// What goes to the daemon from `root`: with `ignore_rules` (the configured
/// Dockerfile) the context as `context_hash` sees it, without them every
/// entry; narrowed to `includes` when there are any, with the parents of
/// what they keep; in the order the receiver checks.
pub(crate) fn listing(
    root: &Path,
    ignore_rules: Option<&Path>,
    includes: &[String],
) -> Result<Vec<Listed>, ContextError> {
    let literal = |p: &String| !p.contains(['*', '?', '[', '\\']);
    let entries: Vec<ContextEntry> = match ignore_rules {
        Some(dockerfile) => list_files(root, dockerfile)?,
        // The Dockerfile's own directory, asked for one or two names: stat
        // those instead of walking what may be the whole context.
        None if !includes.is_empty() && includes.iter().all(literal) => {
            let mut found = Vec::new();
            for name in includes {
                let rel = name.trim_start_matches("./").trim_matches('/');
                if let Ok(meta) = std::fs::symlink_metadata(root.join(rel)) {
                    found.push(entry_from(root, rel, &meta)?);
                }
            }
            found
        }
        None => list_all(root)?,
    };
    let kept: Vec<ContextEntry> = if includes.is_empty() {
        entries
    } else {
        let wanted = IgnoreMatcher::parse(&includes.join("\n")).map_err(|source| {
            ContextError::BadIgnoreFile {
                path: PathBuf::from("<include patterns from the daemon>"),
                source,
            }
        })?;
        entries
            .into_iter()
            .filter(|e| wanted.is_excluded(&e.rel_path))
            .collect()
    };
    let mut out: Vec<Listed> = Vec::with_capacity(kept.len());
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for entry in kept {
        // Parents first: the receiver refuses a path whose directory it has
        // not been sent.
        let segs: Vec<&str> = entry.rel_path.split('/').collect();
        for n in 1..segs.len() {
            let parent = segs[..n].join("/");
            if seen.insert(parent.clone()) {
                let path = root.join(&parent);
                let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
                out.push(listed(root, &entry_from(root, &parent, &meta)?)?);
            }
        }
        if seen.insert(entry.rel_path.clone()) {
            out.push(listed(root, &entry)?);
        }
    }
    // Depth first, names in byte order: compare segment by segment, so that
    // `a/b` comes before `a.txt` (a plain string sort puts it after).
    out.sort_by(|a, b| a.rel.split('/').cmp(b.rel.split('/')));
    Ok(out)
}

fn entry_from(
    root: &Path,
    rel: &str,
    meta: &std::fs::Metadata,
) -> Result<ContextEntry, ContextError> {
    let kind = if meta.is_dir() {
        EntryKind::Dir
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(root.join(rel)).map_err(io_err(&root.join(rel)))?;
        EntryKind::Symlink {
            target: target.to_string_lossy().into_owned(),
        }
    } else {
        EntryKind::File
    };
    Ok(ContextEntry {
        rel_path: rel.to_string(),
        mode: permission_bits(meta),
        kind,
    })
}

/// The stat fsutil sends: Go's `os.FileMode` bits, owner 0:0 (as the docker
/// CLI sends its context), the mtime in nanoseconds.
fn listed(root: &Path, entry: &ContextEntry) -> Result<Listed, ContextError> {
    let path = root.join(&entry.rel_path);
    let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
    let mod_time = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let (kind_bits, size, linkname) = match &entry.kind {
        EntryKind::Dir => (GO_DIR, 0, String::new()),
        EntryKind::Symlink { target } => (GO_SYMLINK, meta.len() as i64, target.clone()),
        EntryKind::File => (0, meta.len() as i64, String::new()),
    };
    Ok(Listed {
        rel: entry.rel_path.clone(),
        regular: entry.kind == EntryKind::File,
        stat: Stat {
            path: entry.rel_path.clone(),
            mode: go_mode(entry.mode) | kind_bits,
            uid: 0,
            gid: 0,
            size,
            mod_time,
            linkname,
            ..Default::default()
        },
    })
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;

/// Unix permission bits (`0o7777`) as Go's `os.FileMode` holds them: the
/// setuid, setgid and sticky bits move to bits 23, 22 and 20.
pub(crate) fn go_mode(unix: u32) -> u32 {
    let mut mode = unix & 0o777;
    for (unix_bit, go_bit) in [(0o4000, 1 << 23), (0o2000, 1 << 22), (0o1000, 1 << 20)] {
        if unix & unix_bit != 0 {
            mode |= go_bit;
        }
    }
    mode
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
    let mut files: HashMap<u32, String> = HashMap::new();
    let count = entries.len();
    if let Some(c) = &counter {
        c.listed.fetch_max(count, Ordering::Relaxed);
    }
    for (n, entry) in entries.into_iter().enumerate() {
        if entry.regular {
            files.insert(n as u32, entry.rel);
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
                let Some(rel) = files.get(&packet.id) else {
                    let _ = tx
                        .send(Err(Status::invalid_argument(format!(
                            "no file was sent as {}",
                            packet.id
                        ))))
                        .await;
                    return;
                };
                requested += 1;
                match send_file(root, rel, packet.id, tx).await {
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
/// the daemon hung up; `Err(Some(_))`: the file could not be read.
async fn send_file(
    root: &Path,
    rel: &str,
    id: u32,
    tx: &mpsc::Sender<Sent>,
) -> Result<u64, Option<ContextError>> {
    let path = root.join(rel);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Some(io_err(&path)(e)))?;
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
