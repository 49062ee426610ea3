//! What production registries ask of a publish, through the real terraform CLI:
//! immutable tags (ECR's `IMMUTABLE`, played by the fault proxy) written once, destroy
//! deleting only the manifests its own push created, and `FROM` images on a private
//! registry pulled with the provider's credentials on both builders.

use std::path::Path;

use acceptance_tests::context::build_context;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::registry::{Credentials, Options};
use acceptance_tests::{acc_test, FaultProxy, Faults, Mode, Pusher, Registry, Workdir};

use acceptance_tests::media_types::ACCEPT_ALL;

fn nonce(what: &str) -> String {
    format!(
        "{what} {} {:?}",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

fn context(content: &str) -> tempfile::TempDir {
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", content.as_bytes()),
    ])
}

fn config(provider: &str, ctx: &Path, repository: &str, extra: &str) -> String {
    format!(
        "{}{provider}resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  \
         repository = {}\n{extra}}}\noutput \"digest\" {{\n  value = stevedore_image_build.app.digest\n}}\n\
         output \"platform_digests\" {{\n  value = stevedore_image_build.app.platform_digests\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repository)
    )
}

/// What `name:reference` serves, read from the registry itself: status and digest.
fn served(registry: &Registry, name: &str, reference: &str) -> (u16, String) {
    let response = registry
        .request(
            reqwest::Method::HEAD,
            &format!("/v2/{name}/manifests/{reference}"),
        )
        .header("accept", ACCEPT_ALL)
        .send()
        .unwrap();
    let digest = response
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), digest)
}

fn immutable(registry: &Registry) -> FaultProxy {
    FaultProxy::start(
        registry,
        Faults {
            immutable_tags: true,
            ..Faults::default()
        },
    )
}

/// First applies of new tags succeed on an immutable registry (one platform, which the
/// daemon pushes under the first tag, and two, an index), the plan after is empty, and a
/// rebuild onto the existing tags fails naming the tag and the refusal, with the
/// registry's tags unchanged.
fn immutable_tags_are_written_once(mode: Mode, platforms: &str) {
    let registry = Registry::start();
    let proxy = immutable(&registry);
    let ctx = context(&nonce("immutable"));
    let repo = format!("{}/locked", proxy.address);
    let extra = format!("  tags       = [\"v1\", \"stable\"]\n  platforms  = {platforms}\n");
    let tf = Workdir::new(mode, &config("", ctx.path(), &repo, &extra));
    tf.init().success();
    let applied = tf.apply();
    assert!(
        applied.succeeded(),
        "{applied}\n--- proxy ---\n{}",
        proxy.log()
    );
    let digest = tf.output("digest").as_str().unwrap().to_string();
    for tag in ["v1", "stable"] {
        assert_eq!(
            served(&registry, "locked", tag),
            (200, digest.clone()),
            "{tag}"
        );
    }
    assert!(
        !tf.plan_has_changes(),
        "a plan after the apply has changes\n{}",
        proxy.log()
    );
    assert_eq!(proxy.injected().immutable_refused, 0, "{}", proxy.log());

    std::fs::write(ctx.path().join("app.txt"), nonce("changed")).unwrap();
    let failed = tf.apply().failure();
    let said = failed.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(said.contains("Image Push Failed"), "{said}");
    assert!(said.contains("pushing tag v1"), "{said}");
    assert!(
        said.contains("cannot be overwritten because the repository is immutable"),
        "{said}"
    );
    assert!(
        said.contains("were not changed; the state keeps the previous image"),
        "{said}"
    );
    for tag in ["v1", "stable"] {
        assert_eq!(
            served(&registry, "locked", tag),
            (200, digest.clone()),
            "{tag} unchanged"
        );
    }
    assert!(proxy.injected().immutable_refused >= 1, "{}", proxy.log());
    assert_eq!(
        tf.output("digest"),
        digest.as_str(),
        "the state keeps the image"
    );
}

acc_test!(immutable_tags_one_platform, |mode| {
    immutable_tags_are_written_once(mode, "[\"linux/amd64\"]");
});

acc_test!(immutable_tags_two_platforms, |mode| {
    immutable_tags_are_written_once(mode, "[\"linux/amd64\", \"linux/arm64\"]");
});

// Two states push identical content under one tag: the first created the manifest, the
// second found it there. Destroying the second leaves it; destroying the creator removes it.
acc_test!(destroy_deletes_only_what_this_state_created, |mode| {
    let registry = Registry::start();
    let ctx = context(&nonce("shared"));
    let repo = format!("{}/shared", registry.address);
    let tf_config = config("", ctx.path(), &repo, "  keep_remotely = false\n");
    let creator = Workdir::new(mode, &tf_config);
    creator.init().success();
    creator.apply().success();
    let digest = creator.output("digest").as_str().unwrap().to_string();
    let follower = Workdir::new(mode, &tf_config);
    follower.init().success();
    follower.apply().success();
    assert_eq!(
        follower.output("digest"),
        digest.as_str(),
        "identical content, one digest"
    );

    let run = follower.destroy();
    let shown = format!("{}{}", run.stdout, run.stderr);
    run.success();
    assert!(shown.contains("created none of the manifests"), "{shown}");
    assert_eq!(
        served(&registry, "shared", &digest).0,
        200,
        "the image the other state created is still there"
    );
    assert_eq!(served(&registry, "shared", "latest"), (200, digest.clone()));

    creator.destroy().success();
    assert_eq!(
        served(&registry, "shared", &digest).0,
        404,
        "the creator deletes it"
    );
});

/// A `FROM` image on an htpasswd registry that the provider knows only through
/// `registry_auth` builds on both builders (the daemon gets the credentials for the pull).
fn private_base_image_builds(mode: Mode, builder: &str) {
    let private = Registry::launch(Options {
        credentials: Some(Credentials {
            username: "puller".into(),
            password: "s3cret-pull".into(),
        }),
        access_log: true,
        ..Options::default()
    });
    let base = Pusher::new(&private).docker_single("base", "1", "linux/amd64");
    let target = Registry::start();
    let ctx = build_context(&[
        (
            "Dockerfile",
            format!("FROM {}/base:1\nCOPY app.txt /app.txt\n", private.address).as_bytes(),
        ),
        ("app.txt", nonce(builder).as_bytes()),
    ]);
    let provider = format!(
        "provider \"stevedore\" {{\n  registry_auth {{\n    address  = {}\n    username = \"puller\"\n    \
         password = \"s3cret-pull\"\n  }}\n}}\n",
        quote(&private.address)
    );
    let repo = format!("{}/app", target.address);
    let extra = format!("  builder    = \"{builder}\"\n  no_cache   = true\n");
    let tf = Workdir::new(mode, &config(&provider, ctx.path(), &repo, &extra));
    tf.init().success();
    let applied = tf.apply();
    assert!(
        applied.succeeded(),
        "{applied}\n--- private registry ---\n{}",
        private.log()
    );
    let pulled = private
        .access_log()
        .iter()
        .any(|line| line.contains(&base.digest) || line.contains("/v2/base/manifests/1"));
    assert!(
        pulled,
        "the base image came from the private registry:\n{}",
        private.log()
    );
    assert!(!tf.plan_has_changes());
}

acc_test!(private_from_image_with_buildkit, |mode| {
    private_base_image_builds(mode, "buildkit");
});

acc_test!(private_from_image_with_the_classic_builder, |mode| {
    private_base_image_builds(mode, "classic");
});

// A failure after the daemon's push moved the first tag says so: on an immutable
// registry where the second tag already names another image, the first tag (new, pushed
// by the daemon) now serves the build, and the diagnostic names it instead of saying
// nothing was tagged.
acc_test!(a_failure_after_a_tag_moved_names_the_tag, |mode| {
    let registry = Registry::start();
    let theirs = Pusher::new(&registry).docker_single("locked", "stable", "linux/amd64");
    let proxy = immutable(&registry);
    let ctx = context(&nonce("moved"));
    let repo = format!("{}/locked", proxy.address);
    let extra = "  tags       = [\"v1\", \"stable\"]\n";
    let tf = Workdir::new(mode, &config("", ctx.path(), &repo, extra));
    tf.init().success();
    let failed = tf.apply().failure();
    let said = failed.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(said.contains("pushing tag stable"), "{said}");
    assert!(
        said.contains("now point at the new image: v1."),
        "{said}\n{}",
        proxy.log()
    );
    assert!(!said.contains("Nothing was tagged"), "{said}");
    assert_eq!(
        served(&registry, "locked", "stable"),
        (200, theirs.digest.clone())
    );
    let (status, v1) = served(&registry, "locked", "v1");
    assert_eq!(status, 200);
    assert_ne!(v1, theirs.digest);
});
