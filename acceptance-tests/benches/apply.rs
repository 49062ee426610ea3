//! What a user waits for: `terraform apply` of one `stevedore_image_build`
//! beside the shell script it replaces (`docker build` + `docker push`),
//! same kind of context, same local docker-registry, alternating, medians.
//!
//! The image: `FROM scratch` and six COPY layers, five of 100 MB random data
//! and one small file. Cold: new random data (nothing in the daemon's build
//! cache, the layer cache or the registry) and a new repository for each
//! contender and round. Warm: then the small file changes, three times.
//! The provider goes twice, each with its own context and repository: with
//! the daemon pushing the layers (the one-platform default) and with the
//! image streamed out of the daemon by the provider.
//! Also a two-platform cold apply, reported with its time. The provider
//! runs in debug (reattach) mode, so its peak RSS and its own timing lines
//! (build, streamed push, tag and verify) can be read; Terraform's share is
//! the rest of the apply.
//!
//! Needs the Docker daemon, docker-registry and terraform (`make bench`).
//! `STEVEDORE_BENCH_ROUNDS` (default 3) sets the rounds, `STEVEDORE_BENCH_BUILDER` the builder.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use acceptance_tests::context::{seed, write_random_layers};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::{bench_rounds, median, Mode, Registry, Workdir};

const BIG_FILES: usize = 5;
const BIG_MB: usize = 100;
const CHANGES: usize = 3;

fn write_context(dir: &Path, seed: u64) {
    write_random_layers(dir, seed, BIG_FILES, BIG_MB);
}

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The script: `docker build -t T ctx && docker push T`; its total time and
/// the push's alone (the daemon sending only the layers the registry lacks).
fn script(ctx: &Path, target: &str) -> (f64, f64) {
    let t = Instant::now();
    docker(&["build", "-q", "-t", target, &ctx.display().to_string()]);
    let pushed = Instant::now();
    docker(&["push", target]);
    (t.elapsed().as_secs_f64(), pushed.elapsed().as_secs_f64())
}

/// `STEVEDORE_BENCH_BUILDER` (auto, buildkit, classic) picks the builder;
/// default: the resource's default, `auto`.
fn config(ctx: &Path, repo: &str, platforms: &str) -> String {
    let builder = std::env::var("STEVEDORE_BENCH_BUILDER").unwrap_or_else(|_| "auto".into());
    format!(
        "{}resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n  platforms  = {platforms}\n  builder    = {}\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repo),
        quote(&builder)
    )
}

fn apply(tf: &Workdir) -> f64 {
    let t = Instant::now();
    tf.apply().success();
    t.elapsed().as_secs_f64()
}

/// Sums the provider's timing lines in `log`: (build, push,
/// tag and verify, stream read wait, hash, compress, upload wait) seconds.
fn provider_split(log: &str) -> [f64; 7] {
    let mut out = [0.0; 7];
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        out[0] += f("build_s");
        out[1] += f("push_s");
        out[2] += f("tag_and_verify_s");
        out[3] += f("read_wait_s");
        out[4] += f("hash_s");
        out[5] += f("compress_s");
        out[6] += f("upload_wait_s");
    }
    out
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One contender's times: cold applies, warm applies, and the warm
/// applies' provider splits.
#[derive(Default)]
struct Runs {
    cold: Vec<f64>,
    warm: Vec<f64>,
    splits: Vec<(f64, [f64; 7])>,
}

/// The provider's two ways to push one platform: the daemon sends the
/// layers (the default), or the provider streams the image out of the
/// daemon (`STEVEDORE_PUSH_THROUGH_DAEMON=0`, what several platforms and the
/// OCI format use).
const WAYS: [(&str, &str); 2] = [("daemon push", "1"), ("streamed push", "0")];

fn main() {
    let rounds = bench_rounds(3);
    let registry = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let mut tf_runs: Vec<Runs> = WAYS.iter().map(|_| Runs::default()).collect();
    let (mut cold_sh, mut warm_sh, mut warm_daemon_push) = (vec![], vec![], vec![]);
    let mut rss: f64 = 0.0;
    let mut images = Vec::new();
    for round in 0..rounds {
        let sh_ctx = tempfile::tempdir().unwrap();
        write_context(sh_ctx.path(), seed() ^ 0x5555);
        let target = format!("{}/sh{round}:latest", registry.address);
        images.push(target.clone());
        let mut contenders = Vec::new();
        for (way, (_, switch)) in WAYS.iter().enumerate() {
            let ctx = tempfile::tempdir().unwrap();
            write_context(ctx.path(), seed() ^ way as u64);
            let repo = format!("{}/tf{round}-{way}", registry.address);
            let tf = Workdir::logged(
                Mode::Reattach,
                &config(ctx.path(), &repo, "[\"linux/amd64\"]"),
                &[
                    ("STEVEDORE_CACHE_DIR", &format!("{cache_dir}/{round}-{way}")),
                    ("STEVEDORE_PUSH_THROUGH_DAEMON", switch),
                ],
            );
            tf.init().success();
            contenders.push((ctx, tf));
        }
        // Alternate who goes first: the script, then each way, or the reverse.
        let mut order: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..WAYS.len()).map(Some))
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for who in &order {
            match who {
                Some(way) => tf_runs[*way].cold.push(apply(&contenders[*way].1)),
                None => cold_sh.push(script(sh_ctx.path(), &target).0),
            }
        }
        for change in 0..CHANGES {
            for who in &order {
                let ctx = match who {
                    Some(way) => contenders[*way].0.path(),
                    None => sh_ctx.path(),
                };
                std::fs::write(
                    ctx.join("small.txt"),
                    format!("round {round} change {change} {}\n", seed()),
                )
                .unwrap();
                match who {
                    Some(way) => {
                        let tf = &contenders[*way].1;
                        let before = tf.provider_log().len();
                        let took = apply(tf);
                        let split = provider_split(&tf.provider_log()[before..]);
                        tf_runs[*way].warm.push(took);
                        tf_runs[*way].splits.push((took, split));
                    }
                    None => {
                        let (total, push) = script(sh_ctx.path(), &target);
                        warm_sh.push(total);
                        warm_daemon_push.push(push);
                    }
                }
            }
        }
        for (_, tf) in &contenders {
            if let Some(pid) = tf.provider_pid() {
                rss = rss.max(peak_rss_mb(pid));
            }
            tf.destroy().success();
        }
    }
    let (cs, ws) = (median(&mut cold_sh), median(&mut warm_sh));
    println!("apply vs docker build + docker push ({BIG_FILES} x {BIG_MB} MB random + 1 small file, local docker-registry, medians of {rounds} rounds; {} warm runs each):", warm_sh.len());
    println!("  docker build + push: cold {cs:6.2} s, one file changed {ws:6.2} s (of which docker push {:.2} s)", median(&mut warm_daemon_push));
    for ((way, _), runs) in WAYS.iter().zip(tf_runs.iter_mut()) {
        let (ct, wt) = (median(&mut runs.cold), median(&mut runs.warm));
        println!("  terraform apply, {way}:");
        println!("    cold:             {ct:6.2} s   ratio {:.2}x", ct / cs);
        println!("    one file changed: {wt:6.2} s   ratio {:.2}x", wt / ws);
        runs.splits.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (total, s) = runs.splits[runs.splits.len() / 2];
        println!(
            "    median warm apply {total:.2} s: build {:.2} s, push {:.2} s (stream thread: waited {:.2} s on the daemon, hashed {:.2} s, compressed {:.2} s, waited {:.2} s on uploads), tags + verify {:.2} s, terraform and the rest {:.2} s",
            s[0], s[1], s[3], s[4], s[5], s[6], s[2], total - s[0] - s[1] - s[2]
        );
    }
    println!("  provider peak RSS: {rss:.1} MB");

    // Two platforms, cold.
    let ctx = tempfile::tempdir().unwrap();
    write_context(ctx.path(), seed());
    let repo = format!("{}/two", registry.address);
    let tf = Workdir::with_env(
        Mode::Reattach,
        &config(ctx.path(), &repo, "[\"linux/amd64\", \"linux/arm64\"]"),
        &[("STEVEDORE_CACHE_DIR", &format!("{cache_dir}/two"))],
    );
    tf.init().success();
    let two = apply(&tf);
    println!("  two platforms (linux/amd64 + linux/arm64), cold: terraform apply {two:.2} s");
    tf.destroy().success();

    // One 1 GB layer through the provider's own (streamed) push: its peak RSS
    // must not grow with the layer.
    let ctx = tempfile::tempdir().unwrap();
    write_random_layers(ctx.path(), seed(), 1, 1024);
    let repo = format!("{}/big", registry.address);
    let tf = Workdir::with_env(
        Mode::Reattach,
        &config(ctx.path(), &repo, "[\"linux/amd64\"]"),
        &[
            ("STEVEDORE_CACHE_DIR", &format!("{cache_dir}/big")),
            ("STEVEDORE_PUSH_THROUGH_DAEMON", "0"),
        ],
    );
    tf.init().success();
    let big = apply(&tf);
    let big_rss = tf.provider_pid().map_or(f64::NAN, peak_rss_mb);
    println!("  one 1 GB layer, streamed push, cold: terraform apply {big:.2} s, provider peak RSS {big_rss:.1} MB");
    tf.destroy().success();
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(images.iter().map(String::as_str));
    let _ = Command::new("docker").args(&rmi).output();
}
