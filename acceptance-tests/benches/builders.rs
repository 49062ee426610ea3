//! Native builders: a cold two-platform `terraform apply` with each platform on a
//! daemon of its own (linux/arm64 on a second dockerd in its own network namespace) beside
//! the same build with both platforms on one daemon, and beside the script a team writes
//! today: `docker build --platform` + `docker push` per platform, then `docker manifest
//! create` + `docker manifest push`. Same kind of context (`FROM scratch`, three 50 MB random
//! COPY layers and a small one, new data for every run), one local docker-registry,
//! alternating order, medians.
//!
//! What this 2-core machine limits: both daemons share the same two cores and disk, so a
//! second daemon buys no CPU here, only a second BuildKit and a second export running at
//! once; on two machines each platform would also have its own cores. `FROM scratch` needs
//! no emulation, so this measures the routing, the streaming out of two daemons and the
//! index, not what QEMU costs (5–20× on real `RUN` steps). The script runs both platforms on
//! the machine's daemon: the second daemon cannot reach the registry on this machine's
//! loopback from its namespace, which the provider's streamed push does not need.
//!
//! Needs the Docker daemon, docker-registry, terraform, `ip` and `nsenter` (`make bench`).
//! `STEVEDORE_BENCH_ROUNDS` (default 3) sets the rounds.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use acceptance_tests::context::{seed, write_random_layers};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::second_daemon::SecondDaemon;
use acceptance_tests::{bench_rounds, median, Mode, Registry, Workdir};

const FILES: usize = 3;
const MB: usize = 50;

fn write_context(dir: &Path, seed: u64) {
    write_random_layers(dir, seed, FILES, MB);
}

fn docker(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        // The docker CLI here has no buildx: the classic builder, as `DOCKER_BUILDKIT=0`.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The script: per platform `docker build --platform P -t R:arch` and `docker push`, then
/// `docker manifest create R:latest R:amd64 R:arm64` and `docker manifest push`.
fn script(ctx: &Path, repo: &str) -> f64 {
    let t = Instant::now();
    let dir = ctx.display().to_string();
    let mut parts = Vec::new();
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let target = format!("{repo}:{arch}");
        docker(&["build", "-q", "--platform", platform, "-t", &target, &dir]);
        docker(&["push", "-q", &target]);
        parts.push(target);
    }
    let list = format!("{repo}:latest");
    let mut create = vec!["manifest", "create", "--insecure", &list];
    create.extend(parts.iter().map(String::as_str));
    docker(&create);
    docker(&["manifest", "push", "--insecure", "--purge", &list]);
    t.elapsed().as_secs_f64()
}

fn config(ctx: &Path, repo: &str, second: Option<&str>) -> String {
    let provider = match second {
        Some(host) => format!(
            "provider \"stevedore\" {{\n  builder {{\n    name = \"second\"\n    platforms = \
             [\"linux/arm64\"]\n    docker_host = {}\n  }}\n}}\n",
            quote(host)
        ),
        None => String::new(),
    };
    format!(
        "{}{provider}resource \"stevedore_image_build\" \"app\" {{\n  context = {}\n  \
         repository = {}\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repo)
    )
}

fn main() {
    let rounds = bench_rounds(3);
    let registry = Registry::start();
    let second = SecondDaemon::start();
    let host = second.host();
    let (mut one, mut two, mut sh) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let mut ways: Vec<(&str, tempfile::TempDir, Option<Workdir>)> = Vec::new();
        for (way, daemon) in [("one", None), ("two", Some(host.as_str()))] {
            let ctx = tempfile::tempdir().unwrap();
            write_context(ctx.path(), seed());
            let repo = format!("{}/{way}{round}", registry.address);
            let tf = Workdir::new(Mode::Installed, &config(ctx.path(), &repo, daemon));
            tf.init().success();
            ways.push((way, ctx, Some(tf)));
        }
        let sh_ctx = tempfile::tempdir().unwrap();
        write_context(sh_ctx.path(), seed());
        ways.push(("sh", sh_ctx, None));
        if round % 2 == 1 {
            ways.reverse();
        }
        for (way, ctx, tf) in &ways {
            let t = Instant::now();
            match tf {
                Some(tf) => {
                    tf.apply().success();
                }
                None => {
                    script(ctx.path(), &format!("{}/sh{round}", registry.address));
                }
            }
            let took = t.elapsed().as_secs_f64();
            println!("round {round}: {way} {took:.1} s");
            match *way {
                "one" => one.push(took),
                "two" => two.push(took),
                _ => sh.push(took),
            }
        }
    }
    let (one, two, sh) = (median(&mut one), median(&mut two), median(&mut sh));
    println!(
        "two-platform cold build, {FILES}×{MB} MB layers, median of {rounds}:\n  \
         terraform apply, arm64 on a second daemon: {two:.1} s\n  \
         terraform apply, both on one daemon:       {one:.1} s  (two daemons / one: {:.2})\n  \
         docker build + push per platform, docker manifest create + push: {sh:.1} s  \
         (two daemons / script: {:.2}; one daemon / script: {:.2})",
        two / one,
        two / sh,
        one / sh
    );
}
