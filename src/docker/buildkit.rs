//! BuildKit builds through the Engine API, as the docker CLI makes them: our
//! own session (`session.rs`: the context by `DiffCopy`, credentials,
//! secrets), then `POST /build?version=2&session=<id>&remote=client-session`.
//! The daemon's embedded BuildKit tags the result in its own image store, so
//! `export` (docker save) works the same as after a classic build.
//! Progress arrives as base64 `StatusResponse` protobufs in `aux` items; we
//! turn vertices and their logs into plain lines.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::BuilderVersion;
use tokio_util::sync::CancellationToken;

use super::super::connect::Daemon;
use super::super::context::dockerfile_target;
use super::super::context_tar::ContextJob;
use super::super::filesync::{Dirs, SentCount};
use super::super::raw::{error_message, Lines};
use super::super::session::{self, Services};
use super::{finish_build, BuildError, BuildRequest, BuiltImage, ContextSent, TAIL_LINES};
use std::sync::atomic::Ordering;

/// The first Engine API version with BuildKit behind `version=2`
/// (Docker 18.09).
const MIN_API: (u32, u32) = (1, 39);

/// Whether the daemon can build with BuildKit: a Linux engine at API 1.39 or
/// later. Windows engines answer `version=2` with an error, so they are
/// classic-only.
pub(crate) async fn supported(daemon: &Daemon) -> Result<bool, BuildError> {
    let version = daemon
        .version()
        .await
        .map_err(|source| BuildError::Daemon {
            action: "read the daemon version",
            source,
        })?;
    let linux = version.os.as_deref().unwrap_or("linux") == "linux";
    let api = version
        .api_version
        .as_deref()
        .and_then(parse_api)
        .unwrap_or((0, 0));
    Ok(linux && api >= MIN_API)
}

fn parse_api(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// How a BuildKit attempt ended.
pub(crate) enum Outcome {
    Built(BuiltImage),
    /// The daemon refused BuildKit before building anything (no session,
    /// `version=2` rejected); the caller may fall back to the classic builder.
    Unavailable(String),
    Failed(BuildError),
}

/// One BuildKit build of `req`, its progress sent to `log` line by line.
pub(crate) async fn run(
    daemon: &Daemon,
    req: &BuildRequest,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Outcome {
    let context = ContextJob::default();
    let outcome = drive(daemon, req, &context, cancel, log).await;
    match outcome {
        Outcome::Built(built) => Outcome::Built(built),
        Outcome::Failed(BuildError::Cancelled) => Outcome::Failed(BuildError::Cancelled),
        // A build that failed on an unreadable context is the context's failure.
        other => match context.failure() {
            Some(source) => Outcome::Failed(BuildError::Context { source }),
            None => other,
        },
    }
}

/// Held shared by every BuildKit build of this process on one daemon without
/// secrets, and alone by each build with secrets on that daemon.
// GOTCHA: BuildKit's solver merges identical steps that are in flight at the
// same time, across builds, and a step that mounts a secret then reads it
// through whichever build's session it asks first: a secret's value is not
// part of a step's identity. Two concurrent builds of one Dockerfile with
// different values for the same secret id (or one with and one without)
// would both see one value. A build with secrets therefore never overlaps
// another BuildKit build of this provider process on the same daemon; builds
// on other daemons (other builders) share no solver with it and go on. The
// lock is found by the daemon's address, so two handles on one address share
// it. Builds started by other processes against the same daemon are out of
// our reach (README limits).
pub(crate) fn secret_isolation(daemon: &Daemon) -> Arc<tokio::sync::RwLock<()>> {
    static LOCKS: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::RwLock<()>>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut locks = LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    locks
        .entry(daemon.endpoint.host.clone())
        .or_default()
        .clone()
}

/// Our session (context by `DiffCopy`, registry credentials, secrets), then
/// `POST /build?version=2&remote=client-session` using it, its progress
/// read line by line.
async fn drive(
    daemon: &Daemon,
    req: &BuildRequest,
    context: &ContextJob,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Outcome {
    // A Dockerfile that is a symlink is offered as its target: BuildKit does
    // not follow a symlink out of the directory it reads the Dockerfile from.
    let found = dockerfile_target(&req.context.dir, &req.context.dockerfile);
    let (dockerfile_dir, dockerfile_name) = match found {
        Ok(found) => found,
        Err(source) => return Outcome::Failed(BuildError::Context { source }),
    };
    let sent = std::sync::Arc::new(SentCount::default());
    let services = Services {
        files: Dirs {
            context: req.context.dir.clone(),
            dockerfile: req.context.dockerfile.clone(),
            dockerfile_dir,
            dockerfile_name: dockerfile_name.clone(),
            job: context.clone(),
            sent: sent.clone(),
        },
        credentials: req.registry_credentials.0.clone(),
        secrets: req
            .secrets
            .iter()
            .map(|(id, value)| (id.clone(), value.0.as_bytes().to_vec()))
            .collect(),
    };
    let (name, key) = shared_key(&req.context.dir);
    let opened = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Failed(BuildError::Cancelled),
        opened = session::open(&daemon.raw, &name, &key, services) => opened,
    };
    let session = match opened {
        Ok(session) => session,
        Err(reason) => return Outcome::Unavailable(format!("no BuildKit session: {reason}")),
    };
    let options = super::common_options(req, req.no_cache)
        .dockerfile(&dockerfile_name)
        .version(BuilderVersion::BuilderBuildKit)
        .session(&session.id)
        .remote("client-session")
        .build();
    let query = match serde_urlencoded::to_string(&options) {
        Ok(q) => q,
        Err(e) => return Outcome::Unavailable(format!("build options: {e}")),
    };
    let path = format!("/build?{query}");
    let posted = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Failed(BuildError::Cancelled),
        posted = daemon.raw.post(&path, &[]) => posted,
    };
    let response = match posted {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return Outcome::Unavailable(error_message(r).await),
        Err(reason) => return Outcome::Unavailable(reason),
    };

    let mut progress = Vertices::default();
    let mut lines = Lines::new(response.into_body());
    loop {
        let line = tokio::select! {
            _ = cancel.cancelled() => return Outcome::Failed(BuildError::Cancelled),
            line = lines.next() => line,
        };
        let line = match line {
            None => break,
            Some(Ok(line)) => line,
            Some(Err(reason)) if !progress.started() => return Outcome::Unavailable(reason),
            Some(Err(reason)) => {
                return Outcome::Failed(
                    progress.failed(format!("the daemon's build stream broke: {reason}")),
                )
            }
        };
        let info: BuildInfo = match serde_json::from_slice(&line) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable build progress line");
                continue;
            }
        };
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Outcome::Failed(progress.failed(message));
        }
        match info.aux {
            Some(BuildInfoAux::BuildKit(status)) => progress.status(status, log),
            Some(BuildInfoAux::Default(id)) => progress.image_id = id.id.or(progress.image_id),
            None => {
                if let Some(text) = info.stream.as_deref() {
                    progress.plain(text, log);
                }
            }
        }
    }
    drop(session);
    let tail = progress.tail.into_iter().collect();
    match finish_build(&daemon.docker, &req.tag, progress.image_id, tail, None).await {
        Ok(built) => Outcome::Built(BuiltImage {
            context_sent: Some(ContextSent {
                listed: sent.listed.load(Ordering::Relaxed),
                files: sent.files.load(Ordering::Relaxed),
                bytes: sent.bytes.load(Ordering::Relaxed),
            }),
            ..built
        }),
        Err(e) => Outcome::Failed(e),
    }
}

/// The session's name and shared key for a context directory: the key stays
/// the same from build to build (and across provider processes), so BuildKit
/// finds its copy of the context and asks only for what changed.
fn shared_key(dir: &std::path::Path) -> (String, String) {
    use sha2::{Digest, Sha256};
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // A header value: printable ASCII only.
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "context".to_string())
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let digest = Sha256::digest(format!("stevedore:{}", dir.display()).as_bytes());
    (name, hex::encode(digest))
}

/// What the status stream told us so far.
#[derive(Default)]
struct Vertices {
    names: HashMap<String, String>,
    announced: HashSet<String>,
    tail: VecDeque<String>,
    /// The vertex that failed, else the last one that started.
    step: Option<String>,
    failed_step: Option<String>,
    image_id: Option<String>,
}

impl Vertices {
    fn started(&self) -> bool {
        !self.names.is_empty()
    }

    fn status(
        &mut self,
        status: bollard::moby::buildkit::v1::StatusResponse,
        log: &mut impl FnMut(&str),
    ) {
        for v in status.vertexes {
            self.names.insert(v.digest.clone(), v.name.clone());
            if v.started.is_some() && self.announced.insert(v.digest.clone()) {
                self.step = Some(v.name.clone());
                self.push(&v.name, log);
            }
            if v.cached && v.completed.is_some() {
                self.push(&format!("{}: CACHED", v.name), log);
            }
            if !v.error.is_empty() {
                self.failed_step.get_or_insert_with(|| v.name.clone());
                self.push(&format!("{}: ERROR: {}", v.name, v.error), log);
            }
        }
        for l in status.logs {
            let text = String::from_utf8_lossy(&l.msg);
            self.plain(&text, log);
        }
    }

    fn plain(&mut self, text: &str, log: &mut impl FnMut(&str)) {
        for line in text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
        {
            self.push(line, log);
        }
    }

    fn push(&mut self, line: &str, log: &mut impl FnMut(&str)) {
        log(line);
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    fn failed(&self, message: String) -> BuildError {
        BuildError::Failed {
            step: self.failed_step.clone().or_else(|| self.step.clone()),
            message: message.trim().to_string(),
            log_tail: self.tail.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_api;

    #[test]
    fn api_versions() {
        assert_eq!(parse_api("1.41"), Some((1, 41)));
        assert!(parse_api("1.39").unwrap() >= super::MIN_API);
        assert!(parse_api("1.38").unwrap() < super::MIN_API);
        assert_eq!(parse_api("x"), None);
    }
}
