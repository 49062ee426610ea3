use super::*;

/// Regression: a file that shrank after its header was written was
/// padded with zeros and reached the daemon silently corrupted.
#[test]
fn a_short_read_is_an_error_not_padding() {
    let mut short = Exact {
        inner: &b"abc"[..],
        left: 5,
    };
    let mut out = Vec::new();
    let err = std::io::copy(&mut short, &mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(
        err.to_string()
            .contains("shrank while it was being sent (2 bytes missing)"),
        "{err}"
    );
    let mut exact = Exact {
        inner: &b"abc"[..],
        left: 3,
    };
    assert_eq!(std::io::copy(&mut exact, &mut out).unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_the_listed_files_and_a_failure_names_the_cause() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "b.txt\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b").unwrap();
    let source = ContextSource {
        dir: dir.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
    };
    let (stream, job) = source.stream();
    let bytes: Vec<u8> = stream.map(|piece| piece.unwrap().to_vec()).concat().await;
    assert!(job.failure().is_none());
    let mut tar = tar::Archive::new(bytes.as_slice());
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, [".dockerignore", "Dockerfile", "a.txt"]);

    // A context that cannot be listed ends the stream with an error the job names.
    let gone = ContextSource {
        dir: dir.path().join("missing"),
        dockerfile: "Dockerfile".into(),
    };
    let (stream, job) = gone.stream();
    let pieces: Vec<std::io::Result<Bytes>> = stream.collect().await;
    assert!(
        pieces.last().is_some_and(|p| p.is_err()),
        "the body ends in an error"
    );
    assert!(matches!(
        job.failure(),
        Some(ContextError::ContextMissing { .. })
    ));
}

const SECRET: &str = "outside-the-context-9c2e";

/// `outer/ctx` is the context (a Dockerfile, `a.txt`, `sub/b.txt`);
/// `outer/secret.txt` and `outer/elsewhere/b.txt` hold [`SECRET`].
fn beside_a_secret() -> (tempfile::TempDir, PathBuf) {
    let outer = tempfile::tempdir().unwrap();
    let ctx = outer.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a").unwrap();
    std::fs::write(ctx.join("sub/b.txt"), "b").unwrap();
    std::fs::write(outer.path().join("secret.txt"), SECRET).unwrap();
    std::fs::create_dir(outer.path().join("elsewhere")).unwrap();
    std::fs::write(outer.path().join("elsewhere/b.txt"), SECRET).unwrap();
    (outer, ctx)
}

/// The tar of `entries`, written on a thread of its own: an error after ten
/// seconds instead of a test that hangs on a FIFO.
fn tar_within_10s(ctx: &Path, entries: Vec<ContextEntry>) -> (Vec<u8>, Option<ContextError>) {
    let (done, result) = std::sync::mpsc::channel();
    let ctx = ctx.to_path_buf();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let written = write_tar(&ctx, &entries, &mut out);
        let _ = done.send((out, written.err()));
    });
    result
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("writing the tar hung")
}

fn leaked(tar: &[u8]) -> bool {
    tar.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())
}

/// The tar crate refuses such names too, but only once the file is open:
/// a FIFO outside would block before that.
#[test]
fn an_entry_outside_the_context_is_refused_before_it_is_opened() {
    let (outer, ctx) = beside_a_secret();
    let made = std::process::Command::new("mkfifo")
        .arg(outer.path().join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    for rel in [
        "../secret.txt",
        "sub/../../secret.txt",
        "/etc/hostname",
        "../pipe",
    ] {
        let entry = ContextEntry {
            rel_path: rel.to_string(),
            mode: 0o644,
            kind: EntryKind::File,
        };
        let (tar, err) = tar_within_10s(&ctx, vec![entry]);
        assert!(!leaked(&tar), "{rel}: the secret is in the tar");
        assert!(
            matches!(err, Some(ContextError::OutsideDirectory { .. })),
            "{rel}: {err:?}"
        );
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
        ("not a directory", |ctx| {
            std::fs::rename(ctx.join("sub"), ctx.join("sub.old")).unwrap();
            std::os::unix::fs::symlink("../elsewhere", ctx.join("sub")).unwrap();
        }),
    ];
    for (now, swap) in swaps {
        let (_outer, ctx) = beside_a_secret();
        let entries = list_files(&ctx, Path::new("Dockerfile")).unwrap();
        swap(&ctx);
        let (tar, err) = tar_within_10s(&ctx, entries);
        assert!(!leaked(&tar), "{now}: the secret is in the tar");
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&format!("is {now} now")), "{now}: {err}");
    }
}

#[test]
fn a_fifo_is_never_opened_for_reading() {
    let (_outer, ctx) = beside_a_secret();
    let made = std::process::Command::new("mkfifo")
        .arg(ctx.join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    // One there from the start is not listed at all.
    let entries = list_files(&ctx, Path::new("Dockerfile")).unwrap();
    assert!(!entries.iter().any(|e| e.rel_path == "pipe"), "{entries:?}");
    // One put in place of a listed file is refused, not waited on.
    std::fs::remove_file(ctx.join("a.txt")).unwrap();
    std::fs::rename(ctx.join("pipe"), ctx.join("a.txt")).unwrap();
    let (_, err) = tar_within_10s(&ctx, entries);
    let err = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("is a FIFO, socket or device now"), "{err}");
}
