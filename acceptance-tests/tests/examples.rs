//! The configurations in `examples/` (which the docs embed) are valid for the
//! provider as built: `terraform init` + `terraform validate` with the real CLI.
//! `examples/resources/stevedore_image_build` is left out: it shows the
//! hashicorp/aws resources it is used with, and nothing outside this machine's
//! registries can be installed here.

use acceptance_tests::hcl::terraform_block;
use acceptance_tests::{Mode, Workdir};
use std::path::{Path, PathBuf};

const SELF_CONTAINED: [&str; 7] = [
    "provider",
    "data-sources/stevedore_image_manifest",
    "resources/stevedore_ecs_redeploy",
    "resources/stevedore_image_index",
    "quickstart",
    "ci-matrix/platform",
    "ci-matrix/join",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn examples_validate() {
    for example in SELF_CONTAINED {
        let src = examples_dir().join(example);
        let has_terraform_block = std::fs::read_dir(&src)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "tf"))
            .any(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .contains("required_providers")
            });
        let dir = Workdir::new(Mode::Installed, "");
        std::fs::remove_file(dir.path.join("main.tf")).unwrap();
        copy_tree(&src, &dir.path);
        if !has_terraform_block {
            std::fs::write(dir.path.join("versions.tf"), terraform_block()).unwrap();
        }
        // The ECS example builds ./app and reads a file of it for its trigger.
        if example == "resources/stevedore_ecs_redeploy" {
            std::fs::create_dir_all(dir.path.join("app")).unwrap();
            std::fs::write(dir.path.join("app/config.yaml"), "replicas: 2\n").unwrap();
            std::fs::write(dir.path.join("app/Dockerfile"), "FROM scratch\n").unwrap();
        }
        dir.init().success();
        let out = dir.run(&["validate"]).success();
        assert!(
            out.contains("The configuration is valid"),
            "{example}: {out}"
        );
    }
}
