//! `make demo`: a local docker-registry and moto (fake ECS) with a Fargate
//! service, then `terraform apply` of `examples/quickstart` with the real CLI:
//! build, push, verify, redeploy. Then a change to the app, and a second apply
//! that builds a new digest and rolls the service onto it.

use acceptance_tests::moto::{Moto, AWS_ENV};
use acceptance_tests::{cliconfig, tools, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;

fn terraform(dir: &Path, cli_config: &Path, args: &[&str]) -> i32 {
    println!("\n$ terraform {}", args.join(" "));
    let status = Command::new(tools::terraform())
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .envs(AWS_ENV)
        .status()
        .expect("running terraform");
    status.code().unwrap_or(1)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the demo dir");
    for entry in std::fs::read_dir(from).expect("reading examples/quickstart") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying the quickstart");
        }
    }
}

fn must(code: i32, what: &str) {
    if code != 0 {
        eprintln!("demo: {what} failed (exit {code})");
        std::process::exit(1);
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("creating target/demo");
    copy_dir(&root.join("examples/quickstart"), &work);
    let cli_config = cliconfig::write(&work, &tools::provider_binary());

    let registry = Registry::start();
    println!("demo: docker-registry on {}", registry.address);

    let moto = Moto::start();
    let image = format!("{}/quickstart/web:latest", registry.address);
    moto.fargate_service("quickstart", "web", &image, "X86_64", 1);
    println!(
        "demo: moto on {} with Fargate service quickstart/web running {image}",
        moto.url
    );

    let vars = format!(
        "registry     = \"{}\"\necs_endpoint = \"{}\"\n",
        registry.address, moto.url
    );
    std::fs::write(work.join("terraform.tfvars"), vars).expect("writing terraform.tfvars");

    must(
        terraform(&work, &cli_config, &["init", "-no-color"]),
        "terraform init",
    );
    must(
        terraform(&work, &cli_config, &["apply", "-auto-approve", "-no-color"]),
        "terraform apply",
    );
    must(
        terraform(
            &work,
            &cli_config,
            &["plan", "-detailed-exitcode", "-no-color"],
        ),
        "terraform plan (expected no changes)",
    );

    std::fs::write(work.join("app/VERSION"), "2\n").expect("editing the app");
    println!("\ndemo: a new release: app/VERSION is now 2");
    must(
        terraform(&work, &cli_config, &["apply", "-auto-approve", "-no-color"]),
        "terraform apply of the new release",
    );
    println!("\ndemo: done. State and config are in {}", work.display());
}
