//! Pushing a ~500 MB, 5-layer image from the Docker daemon to a local
//! registry: stevedore (its layer cache probed first, then the image
//! streamed out of the daemon, each layer gzipped and uploaded as it passes,
//! when that misses) beside `docker push` and
//! `skopeo copy docker-daemon:...`, cold (the registry holds no blob) and
//! warm (the same image again, every layer present), with wall time and
//! peak RSS. Run: `cargo bench --bench push`.
//!
//! Every contender runs as a child process so that its peak RSS comes from
//! the same place (`wait4`'s ru_maxrss); stevedore's child is this binary
//! re-executed with `--stevedore-child`. Each contender gets a registry of
//! its own with empty storage on a new port, so nothing it pushes cold can
//! be found or mounted from an earlier contender's push.
//!
//! Needs /var/run/docker.sock, /usr/bin/docker-registry, docker and skopeo.
//! `STEVEDORE_BENCH_ROUNDS=n` repeats each measurement (best time kept).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use support::{load_average, run_measured, PeakWatch, Registry, Run};

const LAYERS: usize = 5;
const LAYER_MB: usize = 100;
const CHILD_FLAG: &str = "--stevedore-child";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_FLAG) {
        child(&args[2..]);
        return;
    }
    parent();
}

// ---------------------------------------------------------------- stevedore

fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// The child: push `image` from the daemon to `target` (`host/repo:tag`)
/// with a Docker v2 schema 2 manifest, tag and verify, through the publish
/// module's own steps, with the layer cache in `cache_dir`.
/// Prints `TIMES probe=<s> stream=<s> tag=<s> verify=<s>` on stdout.
fn child(args: &[String]) {
    let [image, target, workdir, cache_dir] = args else {
        panic!("usage: {CHILD_FLAG} IMAGE HOST/REPO:TAG WORKDIR CACHE_DIR");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let times = runtime.block_on(stevedore_push(
        image,
        target,
        Path::new(workdir),
        Path::new(cache_dir),
    ));
    let [probe, stream, tag, verify] = times;
    println!("TIMES probe={probe:.3} stream={stream:.3} tag={tag:.3} verify={verify:.3}");
}

async fn stevedore_push(image: &str, target: &str, workdir: &Path, cache_dir: &Path) -> [f64; 4] {
    use std::collections::BTreeMap;
    use stevedore::oci::{Platform, Reference};
    use stevedore::publish::{push_cached, push_streamed, push_tags, BlobCache, PushedManifest};
    use stevedore::registry::assemble::Format;
    use stevedore::registry::{
        verify_pushed, AuthSettings, Expected, ExpectedManifest, RegistryClient,
    };
    use tokio_util::sync::CancellationToken;

    let (repo_part, tag) = target.rsplit_once(':').expect("target has a tag");
    let repo = Reference::parse(repo_part).expect("target reference");
    let tags = vec![tag.to_string()];
    let cache = BlobCache::at(cache_dir);
    let client = RegistryClient::new(AuthSettings::default());
    let cancel = CancellationToken::new();
    let pusher = client.pusher(cancel.clone());
    let docker = stevedore::docker::connect_as_the_cli_would()
        .expect("connect to docker")
        .docker;
    let wanted: Platform = platform().parse().expect("platform");

    // The same steps, in the same order, as publish::push_built after the
    // docker build: the cached path, else the streamed export (compression
    // and upload as the layers leave the daemon, then config and manifest);
    // then push_tags, verify.
    let _ = workdir; // Nothing is written locally any more.
    let start = Instant::now();
    let cached = push_cached(
        &docker,
        &pusher,
        &repo,
        image,
        &wanted,
        Format::Docker,
        &cache,
    )
    .await
    .expect("push_cached");
    let probe_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let pushed: PushedManifest = match cached {
        Some(pushed) => pushed,
        None => push_streamed(
            &docker,
            &pusher,
            &repo,
            image,
            &wanted,
            Format::Docker,
            &cache,
            &cancel,
        )
        .await
        .expect("push_streamed"),
    };
    let stream_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let tagged = push_tags(
        &client,
        &repo,
        std::slice::from_ref(&pushed),
        &tags,
        Format::Docker,
        cancel,
        &stevedore::publish::Ledger::default(),
    )
    .await
    .expect("push_tags");
    let tag_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let platform = &pushed.platform;
    let expected = Expected {
        digest: tagged.digest.clone(),
        media_type: tagged.media_type.to_string(),
        platforms: BTreeMap::from([(
            platform.to_string(),
            ExpectedManifest {
                digest: pushed.digest.clone(),
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
                variant: platform.variant.clone(),
            },
        )]),
    };
    verify_pushed(&client, &repo, &tags, &expected)
        .await
        .expect("verify_pushed");
    let verify_s = start.elapsed().as_secs_f64();
    let s = pushed.stats;
    eprintln!(
        "stevedore: export {}, {} compressed, {} layers uploaded, {} already there, {} mounted",
        if s.export_skipped { "skipped" } else { "done" },
        s.layers_compressed,
        s.layers_uploaded,
        s.layers_existed,
        s.layers_mounted
    );
    [probe_s, stream_s, tag_s, verify_s]
}

// ------------------------------------------------------------------- parent

/// Removes the bench's images from the daemon on the way out, panics included.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&self.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn xorshift_fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let n = chunk.len();
        chunk.copy_from_slice(&state.to_le_bytes()[..n]);
    }
}

/// A `FROM scratch` context with LAYERS files of incompressible data, one
/// COPY (one layer) each. Seeded by `seed` so every bench run has layers
/// no registry or cache has seen.
fn write_context(dir: &Path, seed: u64) {
    let mut dockerfile = String::from("FROM scratch\n");
    let mut state = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..LAYERS {
        let name = format!("layer{i}.bin");
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(&name)).unwrap());
        for _ in 0..LAYER_MB {
            xorshift_fill(&mut state, &mut buf);
            file.write_all(&buf).unwrap();
        }
        file.flush().unwrap();
        dockerfile.push_str(&format!("COPY {name} /data/{name}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Stevedore,
    DockerPush,
    Skopeo,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Stevedore => "stevedore",
            Contender::DockerPush => "docker push",
            Contender::Skopeo => "skopeo copy",
        }
    }
    fn repo(self) -> &'static str {
        match self {
            Contender::Stevedore => "bench/stevedore",
            Contender::DockerPush => "bench/docker",
            Contender::Skopeo => "bench/skopeo",
        }
    }
}

/// One measured push; for stevedore also its
/// (probe, stream, tag, verify) split.
struct Pushed {
    run: Run,
    dockerd_peak_mb: Option<f64>,
    split: Option<[f64; 4]>,
}

fn push_once(
    who: Contender,
    image: &str,
    registry: &Registry,
    cache_dir: &Path,
    images: &mut Images,
    dockerd: Option<&PeakWatch>,
) -> Pushed {
    let target = format!("{}/{}:v1", registry.address, who.repo());
    let workdir = tempfile::tempdir().unwrap();
    let command = match who {
        Contender::Stevedore => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.arg(CHILD_FLAG)
                .arg(image)
                .arg(&target)
                .arg(workdir.path())
                .arg(cache_dir);
            c
        }
        Contender::DockerPush => {
            if !images.0.contains(&target) {
                docker(&["tag", image, &target]);
                images.0.push(target.clone());
            }
            let mut c = Command::new("docker");
            c.arg("push").arg(&target);
            c
        }
        Contender::Skopeo => {
            let mut c = Command::new("skopeo");
            // --debug only so that skipped blobs show in its log (without a
            // TTY skopeo does not say); it logs a few dozen lines.
            c.args(["--debug", "copy", "--dest-tls-verify=false"])
                .arg(format!("docker-daemon:{image}"))
                .arg(format!("docker://{target}"));
            c
        }
    };
    if let Some(w) = dockerd {
        w.reset();
    }
    let run = run_measured(command);
    let dockerd_peak_mb = dockerd.and_then(|w| w.read()).map(|(hwm, _)| hwm);
    let split = (who == Contender::Stevedore).then(|| {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("TIMES "))
            .expect("child printed TIMES");
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        [v[0], v[1], v[2], v[3]]
    });
    Pushed {
        run,
        dockerd_peak_mb,
        split,
    }
}

#[derive(Default)]
struct Row {
    cold_s: Vec<f64>,
    warm_s: Vec<f64>,
    cold_cpu_s: Vec<f64>,
    warm_cpu_s: Vec<f64>,
    rss_mb: f64,
    dockerd_mb: f64,
    cold_split: Vec<[f64; 4]>,
    warm_split: Vec<[f64; 4]>,
    stored_mb: f64,
}

/// What the tool said it did with the layers, from its own output.
fn blob_summary(who: Contender, run: &Run) -> String {
    let count = |text: &str, needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    match who {
        Contender::Stevedore => run
            .stderr
            .lines()
            .find(|l| l.starts_with("stevedore: "))
            .unwrap_or("")
            .trim_start_matches("stevedore: ")
            .to_string(),
        Contender::DockerPush => format!(
            "{} pushed, {} already existed, {} mounted",
            count(&run.stdout, ": Pushed"),
            count(&run.stdout, "Layer already exists"),
            count(&run.stdout, "Mounted from"),
        ),
        Contender::Skopeo => format!(
            "{} layer blobs, {} skipped as present",
            count(&run.stdout, "Copying blob"),
            count(&run.stderr, "Skipping blob"),
        ),
    }
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MAX, f64::min)
}

fn best_split(v: &[[f64; 4]]) -> [f64; 4] {
    // The split of the fastest run, so the parts add up.
    *v.iter()
        .min_by(|a, b| a.iter().sum::<f64>().total_cmp(&b.iter().sum::<f64>()))
        .unwrap()
}

fn parent() {
    let rounds: usize = std::env::var("STEVEDORE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let total_start = Instant::now();
    let load_at_start = load_average();
    let pid = std::process::id();
    let image = format!("stevedore-bench-push:{pid}");
    let mut images = Images(vec![]);

    // Build the image: generated context, classic builder, no pulls needed.
    let start = Instant::now();
    {
        let context = tempfile::tempdir().unwrap();
        let seed = (pid as u64) << 32
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
        write_context(context.path(), seed);
        docker(&[
            "build",
            "-q",
            "-t",
            &image,
            &context.path().to_string_lossy(),
        ]);
        images.0.push(image.clone());
    }
    let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", &image])
        .trim()
        .parse()
        .unwrap();
    println!(
        "image {image}: {} layers, {:.0} MB, built in {:.1}s",
        LAYERS,
        size as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    // One `docker save` up front so the first contender does not pay for
    // cold page cache under the daemon's layer store.
    let warmup = Command::new("sh")
        .arg("-c")
        .arg(format!("docker save {image} > /dev/null"))
        .status()
        .unwrap();
    assert!(warmup.success());

    let dockerd = PeakWatch::for_process("dockerd");
    let contenders = [
        Contender::Stevedore,
        Contender::DockerPush,
        Contender::Skopeo,
    ];
    let mut rows: Vec<Row> = contenders.iter().map(|_| Row::default()).collect();
    for round in 0..rounds {
        for (i, &who) in contenders.iter().enumerate() {
            let registry = Registry::start();
            assert_eq!(registry.blob_bytes(), 0);
            // stevedore's layer cache: empty for the cold push, kept for the warm one.
            let cache = tempfile::tempdir().unwrap();
            let cold = push_once(
                who,
                &image,
                &registry,
                cache.path(),
                &mut images,
                dockerd.as_ref(),
            );
            let stored = registry.blob_bytes();
            assert!(
                stored >= (LAYERS * LAYER_MB) as u64 * 1_000_000,
                "{}: the registry holds only {stored} bytes after the cold push",
                who.name()
            );
            let warm = push_once(
                who,
                &image,
                &registry,
                cache.path(),
                &mut images,
                dockerd.as_ref(),
            );
            assert_eq!(
                registry.blob_bytes(),
                stored,
                "{}: the warm push stored new blobs",
                who.name()
            );
            eprintln!(
                "round {}: {:<12} cold {:>6.2}s  warm {:>6.2}s  rss {:>6.1}/{:>6.1} MB  \
                 [cold: {}] [warm: {}]",
                round + 1,
                who.name(),
                cold.run.seconds,
                warm.run.seconds,
                cold.run.peak_rss_mb,
                warm.run.peak_rss_mb,
                blob_summary(who, &cold.run),
                blob_summary(who, &warm.run),
            );
            let row = &mut rows[i];
            row.stored_mb = stored as f64 / 1e6;
            row.cold_s.push(cold.run.seconds);
            row.warm_s.push(warm.run.seconds);
            row.cold_cpu_s.push(cold.run.cpu_s);
            row.warm_cpu_s.push(warm.run.cpu_s);
            row.rss_mb = row
                .rss_mb
                .max(cold.run.peak_rss_mb)
                .max(warm.run.peak_rss_mb);
            for p in [&cold, &warm] {
                if let Some(mb) = p.dockerd_peak_mb {
                    row.dockerd_mb = row.dockerd_mb.max(mb);
                }
            }
            row.cold_split.extend(cold.split);
            row.warm_split.extend(warm.split);
            if who == Contender::DockerPush {
                // Untag now so the next round's cold push starts from no
                // v2 metadata for this host (each registry has a new port anyway).
                docker(&["rmi", &format!("{}/{}:v1", registry.address, who.repo())]);
                images.0.retain(|t| !t.starts_with(&registry.address));
            }
        }
    }
    drop(images);

    println!();
    println!(
        "push of {LAYERS} x {LAYER_MB} MB incompressible layers from the daemon to a local docker-registry \
         (best of {rounds}; peak RSS = max over runs)"
    );
    println!(
        "{:<14} {:>8} {:>8} {:>11} {:>11} {:>12} {:>16} {:>12}",
        "contender",
        "cold s",
        "warm s",
        "cold cpu s",
        "warm cpu s",
        "peak RSS MB",
        "dockerd peak MB",
        "registry MB"
    );
    for (row, who) in rows.iter().zip(contenders) {
        let dockerd_mb = if dockerd.is_some() {
            format!("{:.0}", row.dockerd_mb)
        } else {
            "n/a".into()
        };
        println!(
            "{:<14} {:>8.2} {:>8.2} {:>11.2} {:>11.2} {:>12.1} {:>16} {:>12.1}",
            who.name(),
            best(&row.cold_s),
            best(&row.warm_s),
            best(&row.cold_cpu_s),
            best(&row.warm_cpu_s),
            row.rss_mb,
            dockerd_mb,
            row.stored_mb
        );
    }
    let s = &rows[0];
    for (label, split) in [("cold", &s.cold_split), ("warm", &s.warm_split)] {
        let [c, e, p, v] = best_split(split);
        println!(
            "  stevedore {label}: cache probe {c:.2}s + streamed export, compress and upload, \
             config and manifest {e:.2}s + tag {p:.2}s + verify {v:.2}s = {:.2}s (in-process; \
             the column adds process start/exit)",
            c + e + p + v
        );
    }
    println!();
    for (i, who) in contenders.iter().enumerate().skip(1) {
        let o = &rows[i];
        println!(
            "stevedore/{:<11}: cold {:.2}x  warm {:.2}x  peak RSS {:.2}x",
            who.name(),
            best(&s.cold_s) / best(&o.cold_s),
            best(&s.warm_s) / best(&o.warm_s),
            s.rss_mb / o.rss_mb
        );
    }
    println!(
        "(ratios < 1 favour stevedore. `docker push` is a thin client: the layer reads, \
         gzip and upload happen in dockerd, whose RSS is not in its peak RSS column; \
         the dockerd column is dockerd's own peak (VmHWM, reset before each run, \
         baseline included) while each contender ran, since all three read the image from the daemon. \
         registry MB = blob bytes the registry stored after the cold push, i.e. what was uploaded.)"
    );
    println!(
        "(cpu s = the client process's own user+sys time from wait4; for docker push \
         nearly all CPU is dockerd's and not counted. Load average {load_at_start} at \
         start, {} at end on {} CPUs: other work on the machine skews wall times.)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "total bench time {:.0}s",
        total_start.elapsed().as_secs_f64()
    );
}
