//! Getting a built image out of the daemon (`docker save`) so we can push it
//! ourselves: the archive is streamed to disk and unpacked there, then the
//! config and layers are read from `manifest.json`, or from the OCI layout
//! (`index.json`) that newer daemons write. Layer digests are checked against
//! the config's diff_ids, and the config's platform against the one asked.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::Docker;
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::layout::{read_layout, LayoutRefs};
pub use crate::registry::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedLayer {
    /// The uncompressed layer tar on disk.
    pub path: PathBuf,
    /// `sha256:` of the uncompressed tar, as listed in the config.
    pub diff_id: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedImage {
    pub config_bytes: Vec<u8>,
    pub config_digest: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub layers: Vec<ExportedLayer>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("could not export image {image} from the daemon: {source}")]
    Daemon {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon's image archive is not usable: {reason}")]
    BadArchive { reason: String },
    #[error("invalid platform {platform:?}: expected os/arch[/variant], e.g. linux/amd64")]
    BadPlatform { platform: String },
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
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(reason: impl Into<String>) -> ExportError {
    ExportError::BadArchive {
        reason: reason.into(),
    }
}

/// Saves `image` from the daemon into `dir` and reads it back; fails with
/// `PlatformMismatch` unless its config says `platform` (`os/arch[/variant]`).
pub async fn export(
    docker: &Docker,
    image: &str,
    platform: &str,
    dir: &Path,
) -> Result<ExportedImage, ExportError> {
    let wanted: Platform = platform.parse().map_err(|_| ExportError::BadPlatform {
        platform: platform.to_string(),
    })?;
    let archive = dir.join("image.tar");
    save_to_file(docker, image, &archive).await?;
    let unpacked = dir.join("image");
    let exported = tokio::task::spawn_blocking(move || {
        unpack(&archive, &unpacked)?;
        // The archive's bytes now live in `unpacked`; don't keep them twice.
        let _ = fs::remove_file(&archive);
        read_unpacked(&unpacked)
    })
    .await
    .map_err(|e| bad(format!("reading the archive stopped: {e}")))??;
    let actual = Platform {
        os: exported.os.clone(),
        architecture: exported.architecture.clone(),
        variant: exported.variant.clone(),
    };
    if !wanted.matches(&actual) {
        return Err(ExportError::PlatformMismatch {
            expected: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(exported)
}

async fn save_to_file(docker: &Docker, image: &str, path: &Path) -> Result<(), ExportError> {
    let file = tokio::fs::File::create(path).await.map_err(io_err(path))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| ExportError::Daemon {
            image: image.to_string(),
            source,
        })?;
        out.write_all(&chunk).await.map_err(io_err(path))?;
    }
    out.flush().await.map_err(io_err(path))?;
    Ok(())
}

fn unpack(archive: &Path, into: &Path) -> Result<(), ExportError> {
    fs::create_dir_all(into).map_err(io_err(into))?;
    let file = fs::File::open(archive).map_err(io_err(archive))?;
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(256 * 1024, file));
    tar.set_preserve_permissions(false);
    // `unpack` refuses entries that would land outside `into`.
    tar.unpack(into).map_err(io_err(archive))
}

#[derive(Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
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

/// Reads an unpacked `docker save` directory (either layout).
pub fn read_unpacked(root: &Path) -> Result<ExportedImage, ExportError> {
    let refs = match fs::read(root.join("manifest.json")) {
        Ok(bytes) => {
            let mut list: Vec<SaveManifest> =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
            if list.len() != 1 {
                return Err(bad(format!(
                    "manifest.json lists {} images, expected 1",
                    list.len()
                )));
            }
            let m = list.remove(0);
            LayoutRefs {
                config: m.config,
                layers: m.layers,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => read_layout(root)?,
        Err(e) => return Err(io_err(&root.join("manifest.json"))(e)),
    };
    let config_path = safe_join(root, &refs.config)?;
    let config_bytes = fs::read(&config_path).map_err(io_err(&config_path))?;
    let config: ConfigFields = serde_json::from_slice(&config_bytes)
        .map_err(|e| bad(format!("image config {}: {e}", refs.config)))?;
    let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if diff_ids.len() != refs.layers.len() {
        return Err(bad(format!(
            "the config lists {} diff_ids but the archive has {} layers",
            diff_ids.len(),
            refs.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(refs.layers.len());
    for (index, (rel, expected)) in refs.layers.iter().zip(diff_ids).enumerate() {
        let path = uncompressed(&safe_join(root, rel)?)?;
        let (actual, size) = sha256_file(&path)?;
        if actual != expected {
            return Err(ExportError::DiffIdMismatch {
                index,
                path,
                expected,
                actual,
            });
        }
        layers.push(ExportedLayer {
            path,
            diff_id: expected,
            size,
        });
    }
    Ok(ExportedImage {
        config_digest: format!("sha256:{}", hex::encode(Sha256::digest(&config_bytes))),
        os: config.os.unwrap_or_default(),
        architecture: config.architecture.unwrap_or_default(),
        variant: config.variant.filter(|v| !v.is_empty()),
        config_bytes,
        layers,
    })
}

/// `rel` inside `root`, refusing absolute paths and `..`.
pub(crate) fn safe_join(root: &Path, rel: &str) -> Result<PathBuf, ExportError> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad(format!("path {rel:?} points outside the archive")));
    }
    Ok(root.join(p))
}

/// OCI layouts may hold gzip layers; diff_ids are over the plain tar, so a
/// gzip layer is inflated to a file beside it (streamed).
fn uncompressed(path: &Path) -> Result<PathBuf, ExportError> {
    let mut magic = [0u8; 2];
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let n = f.read(&mut magic).map_err(io_err(path))?;
    if n < 2 || magic != [0x1f, 0x8b] {
        return Ok(path.to_path_buf());
    }
    let f = fs::File::open(path).map_err(io_err(path))?;
    let out_path = path.with_extension("tar");
    let out_path = if out_path == path {
        path.with_extension("inflated.tar")
    } else {
        out_path
    };
    let mut out = fs::File::create(&out_path).map_err(io_err(&out_path))?;
    let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
    std::io::copy(&mut gz, &mut out).map_err(io_err(path))?;
    Ok(out_path)
}

pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64), ExportError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), size))
}
