//! What one directory of a BuildKit session offers, as `STAT` packets: the
//! entries the daemon may then ask for by index, and nothing else. The
//! daemon's names (include patterns, follow paths) only narrow this set; they
//! never reach the filesystem, and a name that would leave the directory
//! (`..` above it, an absolute path) is refused as what a compromised daemon
//! would send. The Dockerfile's directory offers the Dockerfile and its
//! ignore file only, not whatever else lies beside them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bollard::fsutil::types::Stat;

use super::super::context::{
    beneath, identity, io_err, list_files, permission_bits, ContextEntry, ContextError, EntryKind,
};
use super::super::ignore::IgnoreMatcher;

/// What a directory of the session holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Offer<'a> {
    /// The context as `context_hash` sees it: the ignore rules of this
    /// Dockerfile (as configured) applied.
    Context { dockerfile: &'a Path },
    /// These names directly in the directory, those that are regular files.
    Named(&'a [String]),
}

/// One entry as sent: its path under the root and its stat; for a regular
/// file, its identity (device, inode) when listed, which the file sent must
/// still have.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub rel: String,
    pub stat: Stat,
    pub regular: Option<(u64, u64)>,
}

/// What goes to the daemon from `root`: what `offer` holds, narrowed to
/// `includes` when there are any (with the parents of what they keep), in
/// the order the receiver checks.
pub(crate) fn listing(
    root: &Path,
    offer: Offer<'_>,
    includes: &[String],
) -> Result<Vec<Listed>, ContextError> {
    for name in includes {
        if beneath(name).is_none() {
            return Err(ContextError::OutsideDirectory {
                name: name.clone(),
                dir: root.to_path_buf(),
            });
        }
    }
    let entries: Vec<ContextEntry> = match offer {
        Offer::Context { dockerfile } => list_files(root, dockerfile)?,
        Offer::Named(names) => named(root, names)?,
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
    let mut seen: HashSet<String> = HashSet::new();
    for entry in kept {
        // Parents first: the receiver refuses a path whose directory it has
        // not been sent.
        let segs: Vec<&str> = entry.rel_path.split('/').collect();
        for n in 1..segs.len() {
            let parent = segs[..n].join("/");
            if seen.insert(parent.clone()) {
                let dir = ContextEntry {
                    rel_path: parent,
                    mode: 0,
                    kind: EntryKind::Dir,
                };
                out.push(listed(root, &dir)?);
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

/// The regular files among `names` directly in `root`, sorted. A directory,
/// a symlink, a FIFO there is not offered.
fn named(root: &Path, names: &[String]) -> Result<Vec<ContextEntry>, ContextError> {
    let mut found = Vec::new();
    for name in names {
        let path = root.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => found.push(ContextEntry {
                rel_path: name.clone(),
                mode: permission_bits(&meta),
                kind: EntryKind::File,
            }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    found.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(found)
}

/// The stat fsutil sends: Go's `os.FileMode` bits, owner 0:0 (as the docker
/// CLI sends its context), the mtime in nanoseconds. A file that is no
/// longer regular is not offered for reading.
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
    let mode = match entry.kind {
        EntryKind::Dir => permission_bits(&meta),
        _ => entry.mode,
    };
    Ok(Listed {
        rel: entry.rel_path.clone(),
        regular: (entry.kind == EntryKind::File && meta.is_file()).then(|| identity(&meta)),
        stat: Stat {
            path: entry.rel_path.clone(),
            mode: go_mode(mode) | kind_bits,
            uid: 0,
            gid: 0,
            size,
            mod_time,
            linkname,
            ..Default::default()
        },
    })
}

pub(crate) const GO_DIR: u32 = 1 << 31;
pub(crate) const GO_SYMLINK: u32 = 1 << 27;

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
