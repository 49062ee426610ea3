//! Getting a built image out of the daemon (`GET /images/{name}/get`, what
//! `docker save` reads) as a stream, never written to disk: [`walk_archive`]
//! hands each file of the archive to a visitor as it arrives (the layers are
//! hashed, compressed and uploaded by `publish` while they stream), keeps
//! the small documents, and records links; [`image_refs`] then finds the
//! config and the layers in either layout dockerd writes: the legacy one
//! (`<id>/layer.tar`, `manifest.json` last) or the OCI layout of Docker 25+
//! (`index.json`, `blobs/sha256/...`, the legacy names as symlinks).

use std::collections::BTreeMap;
use std::io::Read;

use bollard::Docker;
use futures::TryStreamExt;
use serde::Deserialize;

#[path = "layout.rs"]
mod layout;
pub use crate::oci::Platform;
use layout::read_layout;

/// Archive files of at most this size are documents (manifests, the
/// config) or small layers, and are read into memory whole; larger ones are
/// layers and are only ever streamed.
pub const SMALL_ENTRY: u64 = 4 * 1024 * 1024;

/// What the small documents of one archive may add up to.
const MAX_DOCUMENTS: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("could not export image {image} from the daemon: {detail}")]
    Daemon { image: String, detail: String },
    #[error("the daemon's image archive is not usable: {reason}")]
    BadArchive { reason: String },
    #[error(
        "the daemon built {actual} but {expected} was asked; the image would not run on \
         {expected} (on Apple Silicon this is the arm64-instead-of-amd64 failure): make \
         sure the Dockerfile's FROM images exist for {expected} and that the daemon can \
         build for it"
    )]
    PlatformMismatch { expected: String, actual: String },
    #[error("layer {index} ({path}) hashes to {actual}, but the image config lists {expected}")]
    DiffIdMismatch {
        index: usize,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("the export was cancelled")]
    Cancelled,
}

pub(crate) fn bad(reason: impl Into<String>) -> ExportError {
    ExportError::BadArchive {
        reason: reason.into(),
    }
}

/// The daemon's archive of `image` as a blocking reader, for a blocking
/// thread. Dropping it closes the daemon's response stream.
pub fn save_reader(docker: &Docker, image: &str) -> impl Read + Send + 'static {
    let shown = image.to_string();
    let stream = docker
        .export_image(image)
        .map_err(move |e| std::io::Error::other(format!("exporting {shown}: {e}")));
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// Told about each regular file of the archive, in archive order.
pub trait ArchiveVisitor {
    /// `data` yields exactly `size` bytes; what the visitor does not read is
    /// skipped. For a file of at most [`SMALL_ENTRY`] bytes, `Ok(true)`
    /// keeps it as a document (a manifest, the config); for larger ones the
    /// answer is ignored. An error ends the walk with it.
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<bool, ExportError>;

    /// Called between reads; `true` ends the walk with [`ExportError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// What a walk kept: the small documents by name, and where links point.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveIndex {
    pub documents: BTreeMap<String, Vec<u8>>,
    /// Link name → the archive path it points at (resolved, inside the archive).
    pub links: BTreeMap<String, String>,
}

impl ArchiveIndex {
    /// `name` with links followed (a few levels), as an archive path.
    pub fn resolve(&self, name: &str) -> Result<String, ExportError> {
        let mut current = normalize(name, "")?;
        for _ in 0..8 {
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => return Ok(current),
            }
        }
        Err(bad(format!("{name:?}: links nest too deeply")))
    }

    pub fn document(&self, name: &str) -> Result<&[u8], ExportError> {
        let path = self.resolve(name)?;
        self.documents.get(&path).map(Vec::as_slice).ok_or_else(|| {
            bad(format!(
                "{name:?} is not in the archive (or is not a document)"
            ))
        })
    }
}

/// Reads the archive from `reader` to its end: regular files go to
/// `visitor` (small ones from memory, kept as documents when it asks),
/// symlinks and hard links are recorded, and any name or link pointing
/// outside the archive is refused.
pub fn walk_archive(
    reader: impl Read,
    visitor: &mut dyn ArchiveVisitor,
) -> Result<ArchiveIndex, ExportError> {
    let mut archive = tar::Archive::new(reader);
    let mut index = ArchiveIndex::default();
    let mut kept = 0usize;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in entries {
        if visitor.cancelled() {
            return Err(ExportError::Cancelled);
        }
        let mut entry = entry.map_err(|e| bad(format!("reading the archive: {e}")))?;
        let raw_name = entry
            .path()
            .map_err(|e| bad(format!("an entry name is not valid: {e}")))?
            .to_string_lossy()
            .into_owned();
        let name = normalize(&raw_name, "")?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| bad(format!("{raw_name:?}: unreadable link target: {e}")))?
                .ok_or_else(|| bad(format!("{raw_name:?}: a link without a target")))?
                .to_string_lossy()
                .into_owned();
            // A symlink is relative to its own folder; a hard link to the root.
            let base = if kind.is_symlink() { parent(&name) } else { "" };
            let resolved = normalize(&target, base).map_err(|_| {
                bad(format!(
                    "link {raw_name:?} points outside the archive ({target:?})"
                ))
            })?;
            index.links.insert(name, resolved);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if size <= SMALL_ENTRY {
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("reading {name:?}: {e}")))?;
            if !visitor.file(&name, size, &mut bytes.as_slice())? {
                continue;
            }
            kept += bytes.len();
            if kept > MAX_DOCUMENTS {
                return Err(bad(format!(
                    "more than {MAX_DOCUMENTS} bytes of documents; not an image archive"
                )));
            }
            index.documents.insert(name, bytes);
        } else {
            visitor.file(&name, size, &mut entry)?;
        }
    }
    Ok(index)
}

/// `path` (relative to folder `base`) as a `/`-separated archive path
/// without `.`, refusing absolute paths and `..` that leave the archive.
fn normalize(path: &str, base: &str) -> Result<String, ExportError> {
    if path.starts_with('/') {
        return Err(bad(format!("path {path:?} points outside the archive")));
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad(format!("path {path:?} points outside the archive")));
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Where the image's config and layers are in the archive, in layer order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRefs {
    pub config: String,
    pub layers: Vec<String>,
}

#[derive(Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The config and layers of the one image in the archive, from
/// `manifest.json` (both layouts have it but the bare OCI one), else from
/// `index.json`, every path resolved through links.
pub fn image_refs(index: &ArchiveIndex) -> Result<ImageRefs, ExportError> {
    let refs = match index.documents.get("manifest.json") {
        Some(bytes) => {
            let mut list: Vec<SaveManifest> =
                serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
            if list.len() != 1 {
                return Err(bad(format!(
                    "manifest.json lists {} images, expected 1",
                    list.len()
                )));
            }
            let m = list.remove(0);
            ImageRefs {
                config: m.config,
                layers: m.layers,
            }
        }
        None => read_layout(index)?,
    };
    Ok(ImageRefs {
        config: index.resolve(&refs.config)?,
        layers: refs
            .layers
            .iter()
            .map(|l| index.resolve(l))
            .collect::<Result<_, _>>()?,
    })
}

/// The fields of an image config we check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFacts {
    pub platform: Platform,
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigFields {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

pub fn config_facts(config: &[u8]) -> Result<ConfigFacts, ExportError> {
    let c: ConfigFields =
        serde_json::from_slice(config).map_err(|e| bad(format!("image config: {e}")))?;
    Ok(ConfigFacts {
        platform: Platform {
            os: c.os.unwrap_or_default(),
            architecture: c.architecture.unwrap_or_default(),
            variant: c.variant.filter(|v| !v.is_empty()),
        },
        diff_ids: c.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
    })
}
