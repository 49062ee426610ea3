//! BuildKit builds through the Engine API: `POST /build?version=2&session=<id>`
//! with bollard opening the gRPC session over the hijacked `POST /session`.
//! The daemon's embedded BuildKit then tags the result in its own image
//! store, so `export` (docker save) works the same as after a classic build.
//! Progress arrives as base64 `StatusResponse` protobufs in `aux` items; we
//! turn vertices and their logs into plain lines.

use std::collections::{HashMap, HashSet, VecDeque};

use bollard::models::BuildInfoAux;
use bollard::query_parameters::BuilderVersion;
use bollard::Docker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{finish_build, BuildError, BuildRequest, BuiltImage, TAIL_LINES};

/// The first Engine API version with BuildKit behind `version=2`
/// (Docker 18.09).
const MIN_API: (u32, u32) = (1, 39);

/// Whether the daemon can build with BuildKit: a Linux engine at API 1.39 or
/// later. Windows engines answer `version=2` with an error, so they are
/// classic-only.
pub(crate) async fn supported(docker: &Docker) -> Result<bool, BuildError> {
    let version = docker
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
    docker: &Docker,
    req: &BuildRequest,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Outcome {
    let (body, context) = req.context.stream();
    let outcome = drive(docker, req, body, cancel, log).await;
    match outcome {
        Outcome::Built(built) => Outcome::Built(built),
        Outcome::Failed(BuildError::Cancelled) => Outcome::Failed(BuildError::Cancelled),
        // A build that failed on a cut-off context is the context's failure.
        other => match context.failure() {
            Some(source) => Outcome::Failed(BuildError::Context { source }),
            None => other,
        },
    }
}

async fn drive(
    docker: &Docker,
    req: &BuildRequest,
    body: impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Outcome {
    let body = bollard::body_try_stream(body);
    let session = session_id();
    let options = super::common_options(req, req.no_cache)
        .version(BuilderVersion::BuilderBuildKit)
        .session(&session)
        .build();

    let mut progress = Vertices::default();
    let mut stream = docker.build_image(options, super::credentials(req), Some(body));
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return Outcome::Failed(BuildError::Cancelled),
            item = stream.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => match info.aux {
                Some(BuildInfoAux::BuildKit(status)) => progress.status(status, log),
                Some(BuildInfoAux::Default(id)) => progress.image_id = id.id.or(progress.image_id),
                None => {
                    if let Some(text) = info.stream.as_deref() {
                        progress.plain(text, log);
                    }
                }
            },
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Outcome::Failed(progress.failed(error));
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) if !progress.started() => {
                return Outcome::Unavailable(format!("HTTP {status_code}: {message}"));
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Outcome::Failed(progress.failed(message));
            }
            Err(source) if !progress.started() => return Outcome::Unavailable(source.to_string()),
            Err(source) => {
                return Outcome::Failed(BuildError::Daemon {
                    action: "run the BuildKit build",
                    source,
                })
            }
        }
    }
    let tail = progress.tail.into_iter().collect();
    match finish_build(docker, &req.tag, progress.image_id, tail, None).await {
        Ok(built) => Outcome::Built(built),
        Err(e) => Outcome::Failed(e),
    }
}

/// Held shared by every BuildKit build of this process without secrets, and
/// alone by each build with secrets.
// GOTCHA: BuildKit's solver merges identical steps that are in flight at the
// same time, across builds, and a step that mounts a secret then reads it
// through whichever build's session it asks first: a secret's value is not
// part of a step's identity. Two concurrent builds of one Dockerfile with
// different values for the same secret id (or one with and one without)
// would both see one value. A build with secrets therefore never overlaps
// another BuildKit build of this provider process. Builds started by other
// processes against the same daemon are out of our reach (README limits).
pub(crate) static SECRET_ISOLATION: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// BuildKit with secret mounts. bollard's `/build?version=2` session serves
/// registry auth only, so a build with secrets goes through bollard's Moby
/// driver instead: a `Solve` on dockerd's `/grpc` endpoint whose session also
/// serves our secrets. The price: bollard's `solve` returns only the final
/// status, so there are no progress lines; the context is uploaded from
/// memory; and the driver's future is not `Send`, so it runs on a thread with
/// its own runtime.
pub(crate) async fn run_with_secrets(
    docker: &Docker,
    req: &BuildRequest,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Outcome {
    let context = match req.context.bytes().await {
        Ok(bytes) => bytes,
        Err(source) => return Outcome::Failed(BuildError::Context { source }),
    };
    let files = match secret_files(req) {
        Ok(files) => files,
        Err(e) => return Outcome::Failed(e),
    };
    let options = frontend_options(req, &files);
    log("building with BuildKit and secret mounts (the daemon sends no progress on this path)");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (thread_docker, tag, cancel2) = (docker.clone(), req.tag.clone(), cancel.clone());
    let credentials = req.registry_credentials.0.clone();
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .map(|rt| {
                rt.block_on(async {
                    use bollard::grpc::driver::Build;
                    let driver = bollard::grpc::driver::moby::Moby::new(&thread_docker);
                    let load = bollard::grpc::build::ImageBuildLoadInput::Upload(context);
                    let creds = (!credentials.is_empty()).then(|| {
                        credentials
                            .iter()
                            .map(|(host, c)| (host.as_str(), c.clone()))
                            .collect()
                    });
                    tokio::select! {
                        _ = cancel2.cancelled() => None,
                        r = driver.docker_build(&tag, options, load, creds, None) => Some(r),
                    }
                })
            });
        // The secret files live until the solve is over, then go.
        drop(files);
        let _ = tx.send(result);
    });
    let result = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Failed(BuildError::Cancelled),
        r = rx => r,
    };
    match result {
        Ok(Ok(Some(Ok(())))) => {}
        Ok(Ok(None)) => return Outcome::Failed(BuildError::Cancelled),
        Ok(Ok(Some(Err(e)))) => return solve_failed(e),
        Ok(Err(reason)) => {
            return Outcome::Unavailable(format!("no runtime for the session: {reason}"))
        }
        Err(_) => return Outcome::Unavailable("the BuildKit session thread ended early".into()),
    }
    match finish_build(docker, &req.tag, None, Vec::new(), None).await {
        Ok(built) => Outcome::Built(built),
        Err(e) => Outcome::Failed(e),
    }
}

/// A failed `Solve`: a status from BuildKit is the build failing; a
/// transport error means the session never came up.
fn solve_failed(e: bollard::grpc::error::GrpcError) -> Outcome {
    use bollard::grpc::error::GrpcError;
    match e {
        GrpcError::TonicStatus { err } => Outcome::Failed(BuildError::Failed {
            step: None,
            message: err.message().trim().to_string(),
            log_tail: Vec::new(),
        }),
        other => Outcome::Unavailable(other.to_string()),
    }
}

fn frontend_options(
    req: &BuildRequest,
    files: &[SecretFile],
) -> bollard::grpc::build::ImageBuildFrontendOptions {
    use bollard::grpc::build::{ImageBuildFrontendOptions, ImageBuildPlatform, SecretSource};
    let mut parts = req.platform.splitn(3, '/');
    let platform = ImageBuildPlatform {
        os: parts.next().unwrap_or_default().to_string(),
        architecture: parts.next().unwrap_or_default().to_string(),
        variant: parts.next().map(str::to_string),
    };
    let mut opts = ImageBuildFrontendOptions::builder()
        .dockerfile(std::path::Path::new(&req.dockerfile))
        .nocache(req.no_cache)
        .platforms(&platform);
    if let Some(target) = req.target.as_deref() {
        opts = opts.target(target);
    }
    for (k, v) in &req.build_args {
        opts = opts.buildarg(k, v);
    }
    if req.cache_inline {
        opts = opts.buildarg("BUILDKIT_INLINE_CACHE", "1");
    }
    for image in &req.cache_from {
        let entry = bollard::moby::buildkit::v1::CacheOptionsEntry {
            r#type: "registry".into(),
            attrs: [("ref".to_string(), image.clone())].into(),
        };
        opts = opts.cachefrom(&entry);
    }
    for (k, v) in &req.labels {
        opts = opts.label(k, v);
    }
    for file in files {
        opts = opts.set_secret(&file.id, &SecretSource::File(file.path.clone()));
    }
    opts.build()
}

/// A secret's value as something bollard's secret provider can read by path
/// (it knows only files and environment variables).
struct SecretFile {
    id: String,
    path: std::path::PathBuf,
    _holder: Holder,
}

#[allow(
    dead_code,
    reason = "held only so that dropping it frees or deletes the value"
)]
enum Holder {
    /// An anonymous in-memory file, read through `/proc/self/fd/N`: the value
    /// never reaches a filesystem.
    #[cfg(target_os = "linux")]
    Memfd(std::fs::File),
    /// Elsewhere a 0600 temp file, deleted when the build is over. It is
    /// plain text on disk while the build runs; there is no better source
    /// bollard can read.
    Temp(tempfile::NamedTempFile),
}

fn secret_files(req: &BuildRequest) -> Result<Vec<SecretFile>, BuildError> {
    req.secrets
        .iter()
        .map(|(id, value)| {
            let (path, holder) =
                hold_secret(value.0.as_bytes()).map_err(|source| BuildError::SecretFile {
                    id: id.clone(),
                    source,
                })?;
            Ok(SecretFile {
                id: id.clone(),
                path,
                _holder: holder,
            })
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn hold_secret(value: &[u8]) -> std::io::Result<(std::path::PathBuf, Holder)> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a
    // new descriptor or -1; it touches no memory of ours.
    let fd = unsafe { libc::memfd_create(c"stevedore-secret".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created, is valid, and nothing else owns it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(value)?;
    Ok((format!("/proc/self/fd/{fd}").into(), Holder::Memfd(file)))
}

#[cfg(not(target_os = "linux"))]
fn hold_secret(value: &[u8]) -> std::io::Result<(std::path::PathBuf, Holder)> {
    use std::io::Write;
    // tempfile creates files with mode 0600.
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(value)?;
    file.flush()?;
    Ok((file.path().to_path_buf(), Holder::Temp(file)))
}

/// A session id no other build uses: BuildKit keys sessions by it.
fn session_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("stevedore-{}-{nanos:x}-{n}", std::process::id())
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
