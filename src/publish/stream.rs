//! One built image from the daemon into the registry, streamed: the image's
//! diff_ids (from the daemon's inspect) are checked against the layer cache
//! and the repository first; then one export stream is read on a blocking
//! thread ([`super::visit`]) while the uploads it feeds run here, so each
//! new layer is hashed, gzipped and uploaded as it leaves the daemon, and
//! no layer or image tar ever touches local disk. Layers the repository has
//! pass by without being compressed. What a pass missed (a layer mistaken
//! for a present one, an upload cut off) is fetched by another pass.

use std::collections::BTreeMap;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cache::BlobCache;
use super::error::PublishError;
use super::layers::find_in_repo;
use super::push::{blob_error, push_config_and_manifest, PushStats, PushedManifest};
use super::visit::{Job, Seen, Visitor, Wanted};
use crate::docker::{self, ExportError};
use crate::oci::{Digest, Platform, Reference};
use crate::registry::assemble::Format;
use crate::registry::{Pusher, RegistryError};

/// Export passes at most: the first, and two for what it missed.
const PASSES: usize = 3;

/// Pushes local image `image` (built for `platform`) to `repo` by digest.
#[allow(clippy::too_many_arguments)]
pub async fn push_streamed(
    docker: &bollard::Docker,
    pusher: &Pusher<'_>,
    repo: &Reference,
    image: &str,
    platform: &Platform,
    format: Format,
    cache: &BlobCache,
    cancel: &CancellationToken,
) -> Result<PushedManifest, PublishError> {
    let shown = platform.to_string();
    let export_err = |source| PublishError::Export {
        platform: shown.clone(),
        source,
    };
    let diff_ids = image_diff_ids(docker, image).await.map_err(export_err)?;
    let mut stats = PushStats::default();
    let mut blobs: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
    let mut wanted = Wanted::default();
    for diff_id in &diff_ids {
        if blobs.contains_key(diff_id) || wanted.needed.contains(diff_id) {
            continue;
        }
        let known = cache.layer(diff_id);
        let found = match &known {
            Some(k) => find_in_repo(pusher, repo, k, &shown).await?,
            None => None,
        };
        match (known, found) {
            (Some(k), Some(how)) => {
                match how {
                    super::layers::Arrived::Mounted => stats.layers_mounted += 1,
                    _ => stats.layers_existed += 1,
                }
                if let Some(size) = k.diff_size {
                    wanted.present_sizes.insert(size);
                }
                wanted.present.insert(diff_id.clone());
                blobs.insert(diff_id.clone(), (k.digest, k.size));
            }
            _ => {
                wanted.needed.insert(diff_id.clone());
            }
        }
    }
    let mut config = None;
    let mut names: BTreeMap<String, Seen> = BTreeMap::new();
    let mut refs = None;
    for pass in 0..PASSES {
        let outcome =
            export_pass(docker, pusher, repo, image, wanted.clone(), cancel, &shown).await?;
        for (diff_id, (blob, existed)) in &outcome.uploaded {
            stats.layers_compressed += 1;
            if *existed {
                stats.layers_existed += 1;
            } else {
                stats.layers_uploaded += 1;
            }
            blobs.insert(diff_id.clone(), blob.clone());
            let seen_size = outcome
                .seen
                .values()
                .find(|s| &s.diff_id == diff_id)
                .map(|s| s.diff_size);
            cache.record_layer(
                diff_id,
                &blob.0,
                blob.1,
                seen_size,
                Some(&repo.repository_reference()),
            );
            wanted.needed.remove(diff_id);
            wanted.present.insert(diff_id.clone());
        }
        if pass == 0 {
            let r = docker::image_refs(&outcome.index).map_err(export_err)?;
            config = Some(
                outcome
                    .index
                    .document(&r.config)
                    .map_err(export_err)?
                    .to_vec(),
            );
            refs = Some(r);
        }
        names.extend(outcome.seen);
        if wanted.needed.is_empty() {
            break;
        }
        tracing::debug!(
            pass,
            missed = wanted.needed.len(),
            "layers missed by this export pass"
        );
        // What was mistaken for present by size is streamed next time.
        wanted.present_sizes.clear();
    }
    let (Some(config), Some(refs)) = (config, refs) else {
        return Err(export_err(docker::export::bad("no export pass ran")));
    };
    if let Some(missing) = wanted.needed.iter().next() {
        return Err(export_err(docker::export::bad(format!(
            "layer {missing} was not in the exported archive after {PASSES} passes"
        ))));
    }
    let facts = docker::config_facts(&config).map_err(export_err)?;
    if !platform.matches(&facts.platform) {
        return Err(export_err(ExportError::PlatformMismatch {
            expected: shown.clone(),
            actual: facts.platform.to_string(),
        }));
    }
    let layers =
        ordered_blobs(&refs.layers, &facts.diff_ids, &names, &blobs).map_err(export_err)?;
    cache.record_config(&config);
    push_config_and_manifest(
        pusher,
        repo,
        facts.platform,
        &config,
        &layers,
        format,
        stats,
    )
    .await
}

/// The image's diff_ids, as the daemon lists them.
async fn image_diff_ids(docker: &bollard::Docker, image: &str) -> Result<Vec<String>, ExportError> {
    let inspect = docker
        .inspect_image(image)
        .await
        .map_err(|e| ExportError::Daemon {
            image: image.to_string(),
            detail: e.to_string(),
        })?;
    Ok(inspect.root_fs.and_then(|r| r.layers).unwrap_or_default())
}

/// Each layer of the manifest, in order, as the blob now in the repository,
/// after checking that the file in the archive hashes to the config's
/// diff_id at that position.
fn ordered_blobs(
    layer_paths: &[String],
    diff_ids: &[String],
    seen: &BTreeMap<String, Seen>,
    blobs: &BTreeMap<String, (Digest, u64)>,
) -> Result<Vec<(Digest, u64)>, ExportError> {
    if layer_paths.len() != diff_ids.len() {
        return Err(docker::export::bad(format!(
            "the config lists {} diff_ids but the archive has {} layers",
            diff_ids.len(),
            layer_paths.len()
        )));
    }
    let mut out = Vec::with_capacity(diff_ids.len());
    for (index, (path, expected)) in layer_paths.iter().zip(diff_ids).enumerate() {
        let actual = seen.get(path).map(|s| s.diff_id.clone());
        if actual.as_deref() != Some(expected.as_str()) {
            return Err(ExportError::DiffIdMismatch {
                index,
                path: path.clone(),
                expected: expected.clone(),
                actual: actual
                    .unwrap_or_else(|| "something that is not a layer of this image".into()),
            });
        }
        let blob = blobs.get(expected).ok_or_else(|| {
            docker::export::bad(format!(
                "layer {index} ({expected}) was neither found nor uploaded"
            ))
        })?;
        out.push(blob.clone());
    }
    Ok(out)
}

/// What one export pass did.
struct PassOutcome {
    index: docker::ArchiveIndex,
    seen: BTreeMap<String, Seen>,
    /// diff_id → ((blob digest, size), whether the repository had it) of
    /// the layers this pass compressed and sent.
    uploaded: BTreeMap<String, ((Digest, u64), bool)>,
}

/// One export stream, read on a blocking thread, with its uploads run here.
async fn export_pass(
    docker: &bollard::Docker,
    pusher: &Pusher<'_>,
    repo: &Reference,
    image: &str,
    wanted: Wanted,
    cancel: &CancellationToken,
    shown: &str,
) -> Result<PassOutcome, PublishError> {
    let export_err = |source| PublishError::Export {
        platform: shown.to_string(),
        source,
    };
    let (jobs_tx, mut jobs) = mpsc::channel::<Job>(4);
    let reader_docker = docker.clone();
    let image_name = image.to_string();
    let thread_cancel = cancel.child_token();
    let stop_thread = thread_cancel.clone();
    // The thread stops at its next read once this pass is dropped.
    let _stop_on_drop = stop_thread.drop_guard();
    let mut walker = tokio::task::spawn_blocking(move || {
        let mut visitor = Visitor::new(wanted, jobs_tx, thread_cancel);
        let reader = docker::save_reader(&reader_docker, &image_name);
        let started = std::time::Instant::now();
        let walked = docker::walk_archive(reader, &mut visitor);
        let t = &visitor.timing;
        tracing::info!(
            target: "stevedore::timing",
            stream_s = started.elapsed().as_secs_f64(),
            read_wait_s = t.read.as_secs_f64(),
            hash_s = t.hash.as_secs_f64(),
            compress_s = t.compress.as_secs_f64(),
            upload_wait_s = t.upload_wait().as_secs_f64(),
            mb = t.bytes as f64 / 1e6,
            "export stream read"
        );
        walked.map(|index| (index, visitor.seen))
    });
    let mut uploads = FuturesUnordered::new();
    let mut outcomes: BTreeMap<usize, Result<Option<Digest>, RegistryError>> = BTreeMap::new();
    let mut small: BTreeMap<String, ((Digest, u64), bool)> = BTreeMap::new();
    let walked = loop {
        tokio::select! {
            Some(job) = jobs.recv() => uploads.push(run_job(pusher, repo, job)),
            Some(done) = uploads.next(), if !uploads.is_empty() => {
                if let Some(e) = record(done, &mut outcomes, &mut small, shown) {
                    return Err(e);
                }
            }
            walked = &mut walker => break walked,
            _ = cancel.cancelled() => return Err(PublishError::Cancelled),
        }
    };
    while let Ok(job) = jobs.try_recv() {
        uploads.push(run_job(pusher, repo, job));
    }
    while let Some(done) = uploads.next().await {
        if let Some(e) = record(done, &mut outcomes, &mut small, shown) {
            return Err(e);
        }
    }
    let (index, seen) = walked
        .map_err(|e| {
            export_err(docker::export::bad(format!(
                "the export thread stopped: {e}"
            )))
        })?
        .map_err(|e| match e {
            ExportError::Cancelled => PublishError::Cancelled,
            e => export_err(e),
        })?;
    let mut uploaded = small;
    for s in seen.values() {
        let (Some(id), Some(blob)) = (s.upload, &s.blob) else {
            continue;
        };
        match outcomes.remove(&id) {
            Some(Ok(Some(digest))) if digest == blob.0 => {
                uploaded.insert(s.diff_id.clone(), (blob.clone(), false));
            }
            // Cut off (transient): another pass streams it again.
            Some(Err(e)) if e.is_transient() => {
                tracing::warn!(diff_id = %s.diff_id, error = %e, "a streamed layer upload failed; exporting it again");
            }
            Some(Err(e)) => return Err(blob_error(shown, format!("layer {}", blob.0))(e)),
            _ => {}
        }
    }
    Ok(PassOutcome {
        index,
        seen,
        uploaded,
    })
}

enum Done {
    Streamed(usize, Result<Option<Digest>, RegistryError>),
    Small(String, Result<((Digest, u64), bool), RegistryError>),
}

async fn run_job(pusher: &Pusher<'_>, repo: &Reference, job: Job) -> Done {
    match job {
        Job::Streamed { id, blob } => {
            Done::Streamed(id, pusher.push_blob_streamed(repo, blob).await)
        }
        Job::Small {
            diff_id,
            digest,
            gz,
        } => {
            let size = gz.len() as u64;
            let pushed = async {
                if pusher.blob_exists(repo, &digest).await? {
                    return Ok(((digest, size), true));
                }
                let sent = pusher.push_blob_bytes(repo, &gz).await?;
                Ok(((sent, size), false))
            };
            Done::Small(diff_id, pushed.await)
        }
    }
}

/// Files an upload's outcome; `Some` is a failure that ends the publish.
fn record(
    done: Done,
    outcomes: &mut BTreeMap<usize, Result<Option<Digest>, RegistryError>>,
    small: &mut BTreeMap<String, ((Digest, u64), bool)>,
    shown: &str,
) -> Option<PublishError> {
    match done {
        Done::Streamed(id, result) => {
            outcomes.insert(id, result);
            None
        }
        Done::Small(diff_id, Ok(blob)) => {
            small.insert(diff_id, blob);
            None
        }
        Done::Small(_, Err(RegistryError::Cancelled)) => Some(PublishError::Cancelled),
        Done::Small(diff_id, Err(e)) => Some(blob_error(shown, format!("layer {diff_id}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(diff_id: &str) -> Seen {
        Seen {
            diff_id: diff_id.into(),
            diff_size: 1,
            blob: None,
            upload: None,
        }
    }

    #[test]
    fn a_layer_not_matching_its_diff_id_fails_naming_it() {
        let paths = ["a/layer.tar".to_string(), "b/layer.tar".to_string()];
        let diff_ids = ["sha256:a".to_string(), "sha256:b".to_string()];
        let seen_files = BTreeMap::from([
            (paths[0].clone(), seen("sha256:a")),
            (paths[1].clone(), seen("sha256:tampered")),
        ]);
        let (ga, gb) = (Digest::sha256_of(b"ga"), Digest::sha256_of(b"gb"));
        let blobs = BTreeMap::from([
            ("sha256:a".to_string(), (ga.clone(), 1)),
            ("sha256:b".to_string(), (gb.clone(), 1)),
        ]);
        match ordered_blobs(&paths, &diff_ids, &seen_files, &blobs) {
            Err(ExportError::DiffIdMismatch {
                index,
                path,
                expected,
                actual,
            }) => {
                assert_eq!((index, path.as_str()), (1, "b/layer.tar"));
                assert_eq!(
                    (expected.as_str(), actual.as_str()),
                    ("sha256:b", "sha256:tampered")
                );
            }
            other => panic!("expected DiffIdMismatch, got {other:?}"),
        }
        let good = BTreeMap::from([
            (paths[0].clone(), seen("sha256:a")),
            (paths[1].clone(), seen("sha256:b")),
        ]);
        assert_eq!(
            ordered_blobs(&paths, &diff_ids, &good, &blobs).unwrap(),
            [(ga, 1), (gb, 1)]
        );
    }
}
