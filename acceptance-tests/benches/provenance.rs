//! What evidence costs the user: a cold two-platform `terraform apply` with signed SLSA
//! provenance for each platform and a 1 MB SBOM attached, beside the same apply without
//! evidence. Same kind of context (`FROM scratch`, three 20 MB random `COPY` layers and a
//! small one, new data every run), one local docker-registry (no referrers API, so every
//! referrer also updates a `sha256-<hex>` index), alternating order, medians.
//!
//! Needs the Docker daemon, docker-registry, terraform and openssl (`make bench`).
//! `STEVEDORE_BENCH_ROUNDS` (default 3) sets the rounds.

use std::path::Path;
use std::time::Instant;

use acceptance_tests::context::{seed, write_random_layers};
use acceptance_tests::evidence::make_keys;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::{bench_rounds, median, Mode, Registry, Workdir};

const FILES: usize = 3;
const MB: usize = 20;

fn config(ctx: &Path, repo: &str, evidence: &str) -> String {
    format!(
        "{}resource \"stevedore_image_build\" \"app\" {{\n  context = {}\n  repository = {}\n  \
         platforms = [\"linux/amd64\", \"linux/arm64\"]\n{evidence}}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repo)
    )
}

fn main() {
    let rounds = bench_rounds(3);
    let registry = Registry::start();
    let files = tempfile::tempdir().unwrap();
    let keys = make_keys(files.path(), "bench", "ec");
    let sbom = files.path().join("sbom.json");
    std::fs::write(&sbom, vec![b'x'; 1024 * 1024]).unwrap();
    let evidence = format!(
        "  provenance = true\n  signing_key_file = {}\n  attach {{\n    artifact_type = \
         \"application/spdx+json\"\n    file = {}\n  }}\n",
        quote(&keys.private.display().to_string()),
        quote(&sbom.display().to_string())
    );
    let (mut plain, mut proven) = (vec![], vec![]);
    for round in 0..rounds {
        let mut ways = Vec::new();
        for (way, extra) in [("plain", ""), ("proven", evidence.as_str())] {
            let ctx = tempfile::tempdir().unwrap();
            write_random_layers(ctx.path(), seed(), FILES, MB);
            let repo = format!("{}/{way}{round}", registry.address);
            let tf = Workdir::new(Mode::Installed, &config(ctx.path(), &repo, extra));
            tf.init().success();
            ways.push((way, ctx, tf));
        }
        if round % 2 == 1 {
            ways.reverse();
        }
        for (way, _ctx, tf) in &ways {
            let t = Instant::now();
            tf.apply().success();
            let took = t.elapsed().as_secs_f64();
            println!("round {round}: {way} {took:.1} s");
            match *way {
                "plain" => plain.push(took),
                _ => proven.push(took),
            }
        }
    }
    let (plain, proven) = (median(&mut plain), median(&mut proven));
    println!(
        "two-platform cold apply, {FILES}×{MB} MB layers, median of {rounds}:\n  \
         with signed provenance for each platform and a 1 MB SBOM: {proven:.1} s\n  \
         without evidence: {plain:.1} s  (with / without: {:.2}; evidence adds {:.1} s)",
        proven / plain,
        proven - plain
    );
}
