//! The classic builder: `POST /build` with the context as one tar, no
//! session. It has no secret mounts, a platform-blind cache (see [`build`])
//! and a cache search that races with image removal (see [`run`]). Its
//! failures arrive inside a 200 response stream, so the stream is drained and
//! any error item is a failure, reported with the last step and the log tail.

use std::collections::VecDeque;

use bollard::models::BuildInfoAux;
use bollard::Docker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{
    common_options, context_first, credentials, finish_build, image_platform, BuildError,
    BuildRequest, BuiltImage, TAIL_LINES,
};
use crate::oci::Platform;

/// Tries that search the build cache before a build that lost an image to a
/// concurrent removal runs once more without it (see [`run`]).
const CACHED_TRIES: u32 = 2;

/// Builds `req` with the classic builder and checks the platform it got.
pub(super) async fn build(
    docker: &Docker,
    req: BuildRequest,
    wanted: Platform,
    cancel: CancellationToken,
    mut log: impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    if !req.secrets.is_empty() {
        let names = req.secrets.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(BuildError::SecretsNeedBuildKit { names });
    }
    let built = run(docker, &req, req.no_cache, &cancel, &mut log).await?;
    let actual = image_platform(docker, &req.tag).await?;
    if wanted.matches(&actual) {
        return Ok(built);
    }
    // GOTCHA: the classic builder's cache key ignores the platform, so a
    // `FROM scratch` (or any already-present base) build for arm64 happily
    // reuses the layers of an earlier amd64 build and yields an amd64 image.
    // Build once more without the cache before calling it a failure.
    if !req.no_cache {
        log(&format!(
            "cached build produced {actual}, not {wanted}; rebuilding without the build cache"
        ));
        let built = run(docker, &req, true, &cancel, &mut log).await?;
        let actual = image_platform(docker, &req.tag).await?;
        if wanted.matches(&actual) {
            return Ok(built);
        }
        return Err(BuildError::PlatformMismatch {
            expected: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    Err(BuildError::PlatformMismatch {
        expected: wanted.to_string(),
        actual: actual.to_string(),
    })
}

/// One build, run again when the daemon lost an image while searching its
/// build cache.
///
/// GOTCHA (Docker 20.10, the classic builder's cache search): for a step on
/// `FROM scratch` it lists every image without a parent, then loads each one
/// again to compare configs. An image removed in between (another build's
/// clean-up, as ours after a push, or `docker image prune`) fails the whole
/// build with `unable to find image "sha256:…"`. The build was fine, so it
/// runs again: once more with the cache, then without it, which skips that
/// search altogether.
async fn run(
    docker: &Docker,
    req: &BuildRequest,
    no_cache: bool,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let mut lost = 0;
    loop {
        let skip_cache = no_cache || lost >= CACHED_TRIES;
        let (body, context) = req.context.stream();
        let built = drain_classic(docker, req, skip_cache, body, cancel, log).await;
        match context_first(built, &context) {
            Err(BuildError::Failed { message, .. })
                if !skip_cache && lost_cached_image(&message) =>
            {
                lost += 1;
                let how = if lost >= CACHED_TRIES {
                    " without the build cache"
                } else {
                    ""
                };
                log(&format!(
                    "the daemon lost an image while searching its build cache ({message}): \
                     another build or a prune removed it; building again{how}"
                ));
            }
            result => return result,
        }
    }
}

/// Whether a failed build's message is the cache search's lost image.
fn lost_cached_image(message: &str) -> bool {
    message.starts_with("unable to find image \"sha256:")
}

/// One request to `/build`, its stream drained into `log`.
async fn drain_classic(
    docker: &Docker,
    req: &BuildRequest,
    no_cache: bool,
    body: impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let options = common_options(req, no_cache).build();
    let body = bollard::body_try_stream(body);

    let mut progress = Progress::default();
    let mut stream = docker.build_image(options, credentials(req), Some(body));
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return Err(BuildError::Cancelled),
            item = stream.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    progress.lines(text, log);
                }
                if let Some(BuildInfoAux::Default(id)) = info.aux {
                    progress.image_id = id.id.or(progress.image_id);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(progress.failed(error));
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(progress.failed(message));
            }
            Err(source) => {
                return Err(BuildError::Daemon {
                    action: "run the build",
                    source,
                })
            }
        }
    }
    let tail = progress.tail.into_iter().collect();
    finish_build(docker, &req.tag, progress.image_id, tail, progress.step).await
}

#[derive(Default)]
struct Progress {
    tail: VecDeque<String>,
    step: Option<String>,
    image_id: Option<String>,
}

impl Progress {
    fn lines(&mut self, text: &str, log: &mut impl FnMut(&str)) {
        for line in text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
        {
            log(line);
            if line.starts_with("Step ") && line.contains(" : ") {
                self.step = Some(line.to_string());
            }
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.to_string());
        }
    }

    fn failed(&self, message: String) -> BuildError {
        BuildError::Failed {
            step: self.step.clone(),
            message: message.trim().to_string(),
            log_tail: self.tail.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lost_cached_image;

    #[test]
    fn only_the_cache_searchs_lost_image_is_run_again() {
        assert!(lost_cached_image(
            "unable to find image \"sha256:36ea287d906c366ff2940c6fcac83fbc9c19290a1a161314bad4fb0d569da297\""
        ));
        for other in [
            "COPY failed: file not found in build context or excluded by .dockerignore: stat a: file does not exist",
            "pull access denied for nothing-here, repository does not exist or may require 'docker login'",
            "No such image: sha256:36ea287d906c366ff2940c6fcac83fbc9c19290a1a161314bad4fb0d569da297",
            "",
        ] {
            assert!(!lost_cached_image(other), "{other}");
        }
    }
}
