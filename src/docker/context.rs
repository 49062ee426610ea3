//! The build context as Docker would send it: which files, with which modes,
//! after `<Dockerfile>.dockerignore` or `.dockerignore`. Symlinks are listed as
//! symlinks and never followed; sockets, FIFOs and devices are left out.
//!
//! What is listed is read later (hashed, put in the tar, sent to BuildKit),
//! and the tree may change in between: [`open_listed`] opens a listed file
//! without following a symlink put in its place and without blocking on a
//! FIFO, and refuses whatever is not a regular file by then.

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::ignore::{IgnoreMatcher, PatternError};

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink { target: String },
}

/// One path of the context, relative to its root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub rel_path: String,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub kind: EntryKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {path} does not exist or is not a directory")]
    ContextMissing { path: PathBuf },
    #[error("Dockerfile {path} does not exist in the build context")]
    DockerfileMissing { path: PathBuf },
    #[error(
        "Dockerfile {path} resolves outside the build context {context}; \
         move it into the context or point `context` at a directory that holds it"
    )]
    DockerfileOutsideContext { path: PathBuf, context: PathBuf },
    #[error("invalid ignore file {path}: {source}")]
    BadIgnoreFile {
        path: PathBuf,
        #[source]
        source: PatternError,
    },
    #[error("path {path} is not valid UTF-8; Docker build contexts need UTF-8 paths")]
    NonUtf8Path { path: PathBuf },
    #[error(
        "{path} is {now} now, not the regular file that was listed; nothing should change the \
         build context while it is read"
    )]
    Replaced { path: PathBuf, now: &'static str },
    #[error("{name:?} names a path outside {dir}; refused: only what is inside it is sent")]
    OutsideDirectory { name: String, dir: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The Dockerfile's path inside the context (`/`-separated), checked to
/// exist and, after symlinks, to stay inside the context.
pub fn dockerfile_in_context(context: &Path, dockerfile: &Path) -> Result<String, ContextError> {
    resolve_dockerfile(context, dockerfile).map(|(lexical, _)| lexical)
}

/// Where the Dockerfile really is, its symlinks followed: the directory that
/// holds it and its name there. BuildKit reads the Dockerfile from a
/// directory of its own and does not follow a symlink out of it, so a
/// `Dockerfile -> docker/Dockerfile.prod` is offered as `docker/` and
/// `Dockerfile.prod`. Refused, as [`dockerfile_in_context`] does, when the
/// target is outside the context.
pub(crate) fn dockerfile_target(
    context: &Path,
    dockerfile: &Path,
) -> Result<(PathBuf, String), ContextError> {
    let (_, real) = resolve_dockerfile(context, dockerfile)?;
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string);
    match (real.parent(), name) {
        (Some(dir), Some(name)) => Ok((dir.to_path_buf(), name)),
        _ => Err(ContextError::NonUtf8Path { path: real.clone() }),
    }
}

/// The Dockerfile's lexical path inside the context and its real path.
fn resolve_dockerfile(
    context: &Path,
    dockerfile: &Path,
) -> Result<(String, PathBuf), ContextError> {
    let root = context
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| ContextError::ContextMissing {
            path: context.to_path_buf(),
        })?;
    let joined = if dockerfile.is_absolute() {
        dockerfile.to_path_buf()
    } else {
        context.join(dockerfile)
    };
    let outside = || ContextError::DockerfileOutsideContext {
        path: dockerfile.to_path_buf(),
        context: context.to_path_buf(),
    };
    // Lexically first: `../Dockerfile` is outside even if it happens to exist.
    let lexical = lexical_relative(&root, context, &joined).ok_or_else(outside)?;
    let real = joined.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ContextError::DockerfileMissing {
            path: joined.clone(),
        },
        _ => ContextError::Io {
            path: joined.clone(),
            source: e,
        },
    })?;
    if !real.starts_with(&root) {
        return Err(outside());
    }
    if !real.is_file() {
        return Err(ContextError::DockerfileMissing { path: joined });
    }
    Ok((lexical, real))
}

/// `joined` relative to the context without touching the filesystem.
fn lexical_relative(root: &Path, context: &Path, joined: &Path) -> Option<String> {
    let rel = joined
        .strip_prefix(context)
        .or_else(|_| joined.strip_prefix(root))
        .ok()?;
    let mut segs: Vec<String> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => segs.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                segs.pop()?;
            }
            _ => return None,
        }
    }
    (!segs.is_empty()).then(|| segs.join("/"))
}

/// The ignore rules in force: `<Dockerfile>.dockerignore` beside the
/// Dockerfile wins over `.dockerignore` at the context root. The Dockerfile
/// and the root `.dockerignore` are always kept, as the Docker CLI does.
pub fn load_ignore(context: &Path, dockerfile_rel: &str) -> Result<IgnoreMatcher, ContextError> {
    let specific = context.join(format!("{dockerfile_rel}.dockerignore"));
    let generic = context.join(".dockerignore");
    let chosen = [specific, generic].into_iter().find(|p| p.is_file());
    let mut matcher = match chosen {
        Some(path) => {
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            IgnoreMatcher::parse(&text)
                .map_err(|source| ContextError::BadIgnoreFile { path, source })?
        }
        None => IgnoreMatcher::default(),
    };
    if !matcher.is_empty() {
        matcher.push_exception(".dockerignore");
        matcher.push_exception(dockerfile_rel);
    }
    Ok(matcher)
}

/// Every entry the build would send, sorted by path.
pub fn list_files(context: &Path, dockerfile: &Path) -> Result<Vec<ContextEntry>, ContextError> {
    let dockerfile_rel = dockerfile_in_context(context, dockerfile)?;
    let matcher = load_ignore(context, &dockerfile_rel)?;
    let mut out = Vec::new();
    walk(context, "", &matcher, &mut out)?;
    out.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(out)
}

/// Every entry under `root`, no ignore file applied, sorted by path.
pub fn list_all(root: &Path) -> Result<Vec<ContextEntry>, ContextError> {
    let mut out = Vec::new();
    walk(root, "", &IgnoreMatcher::default(), &mut out)?;
    out.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(out)
}

fn walk(
    root: &Path,
    rel_dir: &str,
    matcher: &IgnoreMatcher,
    out: &mut Vec<ContextEntry>,
) -> Result<(), ContextError> {
    let dir = if rel_dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel_dir)
    };
    let mut names = Vec::new();
    for item in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let item = item.map_err(io_err(&dir))?;
        let name = item.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| ContextError::NonUtf8Path {
                path: dir.join(&name),
            })?
            .to_string();
        names.push(name);
    }
    names.sort();
    for name in names {
        let rel = if rel_dir.is_empty() {
            name
        } else {
            format!("{rel_dir}/{name}")
        };
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let excluded = matcher.is_excluded(&rel);
        let mode = permission_bits(&meta);
        let ft = meta.file_type();
        if ft.is_dir() {
            if !excluded {
                out.push(ContextEntry {
                    rel_path: rel.clone(),
                    mode,
                    kind: EntryKind::Dir,
                });
            }
            if !excluded || matcher.may_reinclude_below(&rel) {
                walk(root, &rel, matcher, out)?;
            }
        } else if excluded {
            continue;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            let target = target
                .to_str()
                .ok_or_else(|| ContextError::NonUtf8Path { path: path.clone() })?
                .to_string();
            out.push(ContextEntry {
                rel_path: rel,
                mode,
                kind: EntryKind::Symlink { target },
            });
        } else if ft.is_file() {
            out.push(ContextEntry {
                rel_path: rel,
                mode,
                kind: EntryKind::File,
            });
        } else {
            // NOTE: sockets, FIFOs and devices cannot be COPY'd usefully;
            // leaving them out keeps plan-time hashing from blocking on a FIFO.
            tracing::debug!(path = %path.display(), "skipping special file in build context");
        }
    }
    Ok(())
}

/// `name` taken relative to a directory, `.` and `..` resolved; `None` when
/// it is absolute or climbs out of the directory.
pub(crate) fn beneath(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut segs: Vec<&str> = Vec::new();
    for seg in name.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop()?;
            }
            seg => segs.push(seg),
        }
    }
    Some(segs.join("/"))
}

/// A file's identity: its device and inode.
pub(crate) fn identity(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Opens a file that was listed as regular, for reading: a symlink put in
/// its place is not followed (`O_NOFOLLOW`), a FIFO does not block the open
/// (`O_NONBLOCK`, which regular files ignore), and what was opened must be a
/// regular file, and the very file listed when its `listed` identity is
/// given (a directory on the way swapped for a symlink leads elsewhere).
pub(crate) fn open_listed(
    path: &Path,
    listed: Option<(u64, u64)>,
) -> Result<(fs::File, fs::Metadata), ContextError> {
    let replaced = |now| ContextError::Replaced {
        path: path.to_path_buf(),
        now,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => replaced("a symlink"),
            _ => io_err(path)(e),
        })?;
    let meta = file.metadata().map_err(io_err(path))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(replaced(if ft.is_dir() {
            "a directory"
        } else {
            "a FIFO, socket or device"
        }));
    }
    if listed.is_some_and(|id| id != identity(&meta)) {
        return Err(replaced("another file"));
    }
    Ok((file, meta))
}

#[cfg(unix)]
pub(crate) fn permission_bits(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
pub(crate) fn permission_bits(meta: &fs::Metadata) -> u32 {
    match (meta.is_dir(), meta.permissions().readonly()) {
        (true, _) => 0o755,
        (false, true) => 0o444,
        (false, false) => 0o644,
    }
}
