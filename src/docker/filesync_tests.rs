use super::offer::go_mode;
use super::*;
use crate::docker::context::list_files;
use bollard::fsutil::types::Stat;
use bollard::moby::filesync::packet::file_sync_client::FileSyncClient;
use bollard::moby::filesync::packet::file_sync_server::FileSyncServer;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(root.join(".dockerignore"), "secret.txt\nlogs\n").unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    std::fs::write(root.join("secret.txt"), "no").unwrap();
    std::fs::create_dir_all(root.join("a/deep")).unwrap();
    std::fs::write(root.join("a/deep/b.txt"), "bb").unwrap();
    std::fs::create_dir(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/x.log"), "x").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    dir
}

fn context() -> Offer<'static> {
    Offer::Context {
        dockerfile: Path::new("Dockerfile"),
    }
}

fn paths(listed: &[Listed]) -> Vec<&str> {
    listed.iter().map(|l| l.rel.as_str()).collect()
}

#[test]
fn the_context_is_the_hashed_file_set_in_the_order_fsutil_checks() {
    let dir = tree();
    let listed = listing(dir.path(), context(), &[]).unwrap();
    // Depth first: `a/deep/b.txt` before `a.txt`; ignored paths left out.
    let mut want = vec![
        ".dockerignore",
        "Dockerfile",
        "a",
        "a/deep",
        "a/deep/b.txt",
        "a.txt",
    ];
    if cfg!(unix) {
        want.push("link");
    }
    assert_eq!(paths(&listed), want);
    // The same set as the plan-time listing, only in another order.
    let mut hashed: Vec<String> = list_files(dir.path(), Path::new("Dockerfile"))
        .unwrap()
        .into_iter()
        .map(|e| e.rel_path)
        .collect();
    let mut sent: Vec<String> = listed.iter().map(|l| l.rel.clone()).collect();
    hashed.sort();
    sent.sort();
    assert_eq!(sent, hashed);

    let b = listed.iter().find(|l| l.rel == "a/deep/b.txt").unwrap();
    assert!(b.regular.is_some());
    assert_eq!((b.stat.size, b.stat.uid, b.stat.gid), (2, 0, 0));
    assert!(b.stat.mod_time > 1_000_000_000_000_000_000, "nanoseconds");
    let a = listed.iter().find(|l| l.rel == "a").unwrap();
    assert!(a.regular.is_none());
    assert_eq!(a.stat.mode & offer::GO_DIR, offer::GO_DIR);
    #[cfg(unix)]
    {
        let link = listed.iter().find(|l| l.rel == "link").unwrap();
        assert!(link.regular.is_none());
        assert_eq!(link.stat.mode & offer::GO_SYMLINK, offer::GO_SYMLINK);
        assert_eq!(link.stat.linkname, "a.txt");
    }
}

#[test]
fn include_patterns_narrow_the_set_and_keep_parents() {
    let dir = tree();
    let only = |includes: &[&str]| {
        let includes: Vec<String> = includes.iter().map(|s| s.to_string()).collect();
        let listed = listing(dir.path(), context(), &includes).unwrap();
        paths(&listed)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(&[".dockerignore"]), [".dockerignore"]);
    assert_eq!(only(&["a/deep/b.txt"]), ["a", "a/deep", "a/deep/b.txt"]);
    assert_eq!(
        only(&["a/*/b.txt", "a.txt"]),
        ["a", "a/deep", "a/deep/b.txt", "a.txt"]
    );
    // The ignore file still wins: an include does not bring an ignored file back.
    assert!(only(&["secret.txt"]).is_empty());
}

#[test]
fn the_dockerfile_directory_offers_the_dockerfile_and_its_ignore_file_only() {
    let dir = tree();
    let names = vec![
        "Dockerfile".to_string(),
        "Dockerfile.dockerignore".to_string(),
    ];
    let includes = names.clone();
    let listed = listing(dir.path(), Offer::Named(&names), &includes).unwrap();
    assert_eq!(paths(&listed), ["Dockerfile"]);
    // Without patterns it is still those two names, not the whole directory.
    std::fs::write(dir.path().join("Dockerfile.dockerignore"), "x\n").unwrap();
    let all = listing(dir.path(), Offer::Named(&names), &[]).unwrap();
    assert_eq!(paths(&all), ["Dockerfile", "Dockerfile.dockerignore"]);
    let wider = ["*".to_string(), "secret.txt".to_string()];
    let asked = listing(dir.path(), Offer::Named(&names), &wider).unwrap();
    assert_eq!(paths(&asked), ["Dockerfile", "Dockerfile.dockerignore"]);
}

#[test]
fn unix_modes_become_go_file_modes() {
    assert_eq!(go_mode(0o644), 0o644);
    assert_eq!(go_mode(0o4755), 0o755 | 1 << 23);
    assert_eq!(go_mode(0o2755), 0o755 | 1 << 22);
    assert_eq!(go_mode(0o1777), 0o777 | 1 << 20);
}

/// The daemon's side of a session, played by a test as a compromised daemon
/// would: what it got back for one directory.
#[derive(Debug, Default)]
struct Got {
    stats: Vec<Stat>,
    /// The bytes of every file it asked for, one after the other.
    data: Vec<u8>,
    /// Why the session ended early (an `ERR` packet or a gRPC status).
    error: Option<String>,
}

/// Asks `dirs` for `dir` over a real gRPC connection, with `includes` as
/// the include patterns; once the stats are in, `meanwhile` may change the
/// tree; then asks for every regular file listed, and says `FIN`.
async fn ask(dirs: Dirs, dir: &str, includes: &[&str], meanwhile: impl FnOnce()) -> Got {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let server = tonic::transport::Server::builder()
        .add_service(FileSyncServer::new(dirs))
        .serve_with_incoming(futures::stream::iter([Ok::<_, std::io::Error>(ours)]));
    tokio::spawn(server);
    let mut theirs = Some(theirs);
    let channel = tonic::transport::Endpoint::from_static("http://session")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let io = theirs.take().map(hyper_util::rt::TokioIo::new);
            async move { io.ok_or_else(|| std::io::Error::other("one connection only")) }
        }))
        .await
        .unwrap();
    let (to_server, outgoing) = mpsc::channel::<Packet>(64);
    let mut request = Request::new(ReceiverStream::new(outgoing));
    request
        .metadata_mut()
        .insert("dir-name", dir.parse().unwrap());
    for pattern in includes {
        request
            .metadata_mut()
            .append("include-patterns", pattern.parse().unwrap());
    }
    let mut replies = FileSyncClient::new(channel)
        .diff_copy(request)
        .await
        .unwrap()
        .into_inner();
    let mut got = Got::default();
    loop {
        match replies.message().await {
            Ok(Some(p)) if p.r#type == PacketType::PacketStat as i32 => match p.stat {
                Some(stat) if !stat.path.is_empty() => got.stats.push(stat),
                _ => break,
            },
            Ok(Some(p)) if p.r#type == PacketType::PacketErr as i32 => {
                got.error = Some(String::from_utf8_lossy(&p.data).into_owned());
                return got;
            }
            Ok(Some(_)) => {}
            Ok(None) => return got,
            Err(status) => {
                got.error = Some(status.message().to_string());
                return got;
            }
        }
    }
    meanwhile();
    for (n, stat) in got.stats.iter().enumerate() {
        if stat.mode & (offer::GO_DIR | offer::GO_SYMLINK) == 0 {
            let req = Packet {
                r#type: PacketType::PacketReq as i32,
                id: n as u32,
                ..Default::default()
            };
            let _ = to_server.send(req).await;
        }
    }
    let fin = Packet {
        r#type: PacketType::PacketFin as i32,
        ..Default::default()
    };
    let _ = to_server.send(fin).await;
    loop {
        match replies.message().await {
            Ok(Some(p)) => match PacketType::try_from(p.r#type) {
                Ok(PacketType::PacketData) => got.data.extend_from_slice(&p.data),
                Ok(PacketType::PacketErr) => {
                    got.error = Some(String::from_utf8_lossy(&p.data).into_owned());
                }
                Ok(PacketType::PacketFin) => break,
                _ => {}
            },
            Ok(None) => break,
            Err(status) => {
                got.error = Some(status.message().to_string());
                break;
            }
        }
    }
    got
}

/// Runs `f` on a runtime of its own and fails after ten seconds instead of
/// hanging; a thread stuck in a FIFO's open is left behind, not waited for.
fn within_10s<T>(f: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(10);
    let out = runtime.block_on(async { tokio::time::timeout(limit, f).await });
    runtime.shutdown_background();
    out.expect("the session hung")
}

const SECRET: &str = "outside-the-context-3b1f";

/// `outer/ctx` is the context (a Dockerfile, `a.txt`, `sub/b.txt`);
/// `outer/secret.txt` and `outer/elsewhere/b.txt` hold [`SECRET`].
fn beside_a_secret() -> (tempfile::TempDir, PathBuf) {
    let outer = tempfile::tempdir().unwrap();
    let ctx = outer.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a").unwrap();
    std::fs::write(ctx.join("sub/b.txt"), "b").unwrap();
    std::fs::write(outer.path().join("secret.txt"), SECRET).unwrap();
    std::fs::create_dir(outer.path().join("elsewhere")).unwrap();
    std::fs::write(outer.path().join("elsewhere/b.txt"), SECRET).unwrap();
    (outer, ctx)
}

/// The session's directories for the context `ctx`, its Dockerfile at the root.
fn session_dirs(ctx: &Path) -> Dirs {
    Dirs {
        context: ctx.to_path_buf(),
        dockerfile: PathBuf::from("Dockerfile"),
        dockerfile_dir: ctx.to_path_buf(),
        dockerfile_name: "Dockerfile".to_string(),
        job: ContextJob::default(),
        sent: Arc::default(),
    }
}

fn leaked(got: &Got) -> bool {
    let secret = SECRET.as_bytes();
    got.data.windows(secret.len()).any(|w| w == secret)
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

#[test]
fn a_daemon_naming_paths_outside_the_directory_is_refused() {
    let (outer, ctx) = beside_a_secret();
    let absolute = outer.path().join("secret.txt").display().to_string();
    for name in ["../secret.txt", "sub/../../secret.txt", absolute.as_str()] {
        for dir in ["dockerfile", "context"] {
            let dirs = session_dirs(&ctx);
            let job = dirs.job.clone();
            let got = within_10s(ask(dirs, dir, &[name], || {}));
            assert!(!leaked(&got), "{dir} {name}: the secret was sent");
            assert!(
                got.stats.iter().all(|s| !s.path.contains("..")),
                "{dir} {name}: {:?}",
                got.stats
            );
            let error = got.error.unwrap_or_default();
            assert!(
                error.contains(&format!("{name:?} names a path outside")),
                "{dir} {name}: {error}"
            );
            assert!(
                matches!(job.failure(), Some(ContextError::OutsideDirectory { .. })),
                "{dir} {name}"
            );
        }
    }
}

/// What a swap leaves in place, and how it is made in a context.
type Swap = (&'static str, fn(&Path));

#[test]
fn a_symlink_swapped_in_after_the_listing_is_not_followed() {
    // The file itself, then a directory on its way, replaced by a symlink
    // that leads out of the context.
    let swaps: [Swap; 2] = [
        ("a symlink", |ctx| {
            std::fs::remove_file(ctx.join("a.txt")).unwrap();
            std::os::unix::fs::symlink("../secret.txt", ctx.join("a.txt")).unwrap();
        }),
        ("another file", |ctx| {
            std::fs::rename(ctx.join("sub"), ctx.join("sub.old")).unwrap();
            std::os::unix::fs::symlink("../elsewhere", ctx.join("sub")).unwrap();
        }),
    ];
    for (now, swap) in swaps {
        let (_outer, ctx) = beside_a_secret();
        let dirs = session_dirs(&ctx);
        let job = dirs.job.clone();
        let got = within_10s(ask(dirs, "context", &[], || swap(&ctx)));
        assert!(!leaked(&got), "{now}: the secret was sent");
        let error = got.error.unwrap_or_default();
        assert!(error.contains(&format!("is {now} now")), "{now}: {error}");
        assert!(
            matches!(job.failure(), Some(ContextError::Replaced { .. })),
            "{now}"
        );
    }
}

#[test]
fn a_fifo_is_never_opened_for_reading() {
    // Beside the Dockerfile, as the ignore file the daemon asks for: not
    // offered at all.
    let (_outer, ctx) = beside_a_secret();
    mkfifo(&ctx.join("Dockerfile.dockerignore"));
    let includes = ["Dockerfile", "Dockerfile.dockerignore"];
    let got = within_10s(ask(session_dirs(&ctx), "dockerfile", &includes, || {}));
    assert_eq!(got.error, None);
    let names: Vec<&str> = got.stats.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(names, ["Dockerfile"]);
    assert_eq!(got.data, b"FROM scratch\nCOPY . /\n");

    // In place of a listed file: refused, not waited on.
    let (_outer, ctx) = beside_a_secret();
    let got = within_10s(ask(session_dirs(&ctx), "context", &[], || {
        std::fs::remove_file(ctx.join("a.txt")).unwrap();
        mkfifo(&ctx.join("a.txt"));
    }));
    let error = got.error.unwrap_or_default();
    assert!(error.contains("is a FIFO, socket or device now"), "{error}");
}
