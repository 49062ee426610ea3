//! The context tarball sent to the daemon, written entry by entry so a big
//! context streams through a file instead of sitting in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use tar::{EntryType, Header};

use super::context::{io_err, list_files, ContextEntry, ContextError, EntryKind};

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
        let path = context.join(&entry.rel_path);
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime(&meta));
        let result = match &entry.kind {
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
                let file = File::open(&path).map_err(io_err(&path))?;
                header.set_entry_type(EntryType::Regular);
                // NOTE: the size is taken from the open file; a file growing
                // while we read would make the tar invalid, so we read exactly
                // that many bytes and fail on a short read.
                let size = file.metadata().map_err(io_err(&path))?.len();
                header.set_size(size);
                let reader = std::io::Read::take(file, size);
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

/// Lists the context and writes its tar to a new temporary file in `dir`.
pub fn write_tar_file(
    context: &Path,
    dockerfile: &Path,
    dir: &Path,
) -> Result<tempfile::NamedTempFile, ContextError> {
    let entries = list_files(context, dockerfile)?;
    let tmp = tempfile::Builder::new()
        .prefix("stevedore-context-")
        .suffix(".tar")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let file = tmp.reopen().map_err(io_err(tmp.path()))?;
    write_tar(
        context,
        &entries,
        BufWriter::with_capacity(256 * 1024, file),
    )?;
    Ok(tmp)
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
