//! `terraform plan` wall time with 1 vs 50 `stevedore_image_manifest` data
//! sources against a local docker-registry: what the provider adds per data
//! source (one manifest and one config fetch each, over one process).
//! Run through `make bench`, which points STEVEDORE_PROVIDER_BIN at a release build.

use acceptance_tests::{hcl, Mode, Pusher, Registry, Workdir};
use std::time::{Duration, Instant};

fn config(registry: &Registry, n: usize) -> String {
    let mut tf = hcl::terraform_block();
    tf.push_str(&hcl::provider_block(registry, None));
    for i in 0..n {
        tf.push_str(&format!(
            "data \"stevedore_image_manifest\" \"m{i}\" {{\n  image    = \"{}/bench/app{}:latest\"\n  platform = \"linux/amd64\"\n}}\n",
            registry.url().trim_start_matches("http://"),
            i % 5
        ));
    }
    tf
}

fn median_plan(dir: &Workdir, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            dir.plan().success();
            t0.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let registry = Registry::start();
    let pusher = Pusher::new(&registry);
    for i in 0..5 {
        pusher.oci_index_with_attestation(&format!("bench/app{i}"), "latest");
    }
    let runs = 5;
    let mut results = Vec::new();
    for n in [1usize, 50] {
        let dir = Workdir::new(Mode::Installed, &config(&registry, n));
        dir.init().success();
        dir.plan().success(); // warm-up
        let m = median_plan(&dir, runs);
        println!(
            "terraform plan, {n:>2} data source(s): median {:>7.1} ms over {runs} runs",
            m.as_secs_f64() * 1000.0
        );
        results.push(m);
    }
    let ratio = results[1].as_secs_f64() / results[0].as_secs_f64();
    let per = (results[1].as_secs_f64() - results[0].as_secs_f64()) * 1000.0 / 49.0;
    println!("50 vs 1: {ratio:.2}x wall time; {per:.1} ms per extra data source");
}
