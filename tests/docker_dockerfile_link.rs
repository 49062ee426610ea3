//! Against the real daemon (`make testacc`): a Dockerfile that is a symlink
//! (`Dockerfile -> docker/Dockerfile.prod`), as some repositories keep one
//! Dockerfile per environment. Both builders build from its target while it
//! stays inside the context, and refuse it, saying why, when it points out.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use stevedore::docker::{
    build, connect_as_the_cli_would, remove_image, BuildError, BuildRequest, BuilderKind,
    ContextError, ContextSource,
};
use tokio_util::sync::CancellationToken;

fn request(ctx: &Path, builder: BuilderKind, tag: &str) -> BuildRequest {
    BuildRequest {
        context: ContextSource {
            dir: ctx.to_path_buf(),
            dockerfile: "Dockerfile".into(),
        },
        dockerfile: "Dockerfile".to_string(),
        platform: "linux/amd64".parse().unwrap(),
        tag: tag.to_string(),
        labels: BTreeMap::new(),
        builder,
        ..Default::default()
    }
}

fn unique_tag(test: &str) -> String {
    format!("stevedore-test/{test}:{}", std::process::id())
}

async fn builds_through_the_link(builder: BuilderKind, test: &str) {
    let ctx = tempfile::tempdir().unwrap();
    fs::create_dir(ctx.path().join("docker")).unwrap();
    fs::write(
        ctx.path().join("docker/Dockerfile.prod"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    fs::write(ctx.path().join("hello.txt"), "hi\n").unwrap();
    symlink("docker/Dockerfile.prod", ctx.path().join("Dockerfile")).unwrap();
    let daemon = connect_as_the_cli_would().unwrap();
    let tag = unique_tag(test);
    let mut lines = Vec::new();
    let built = build(
        &daemon,
        request(ctx.path(), builder, &tag),
        CancellationToken::new(),
        |l| lines.push(l.to_string()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{lines:#?}"));
    assert!(built.image_id.starts_with("sha256:"), "{built:?}");
    assert!(
        lines.iter().any(|l| l.contains("COPY hello.txt")),
        "{lines:?}"
    );
    remove_image(&daemon.docker, &tag).await.unwrap();
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_builds_a_dockerfile_that_is_a_symlink_in_the_context() {
    builds_through_the_link(BuilderKind::BuildKit, "link-bk").await;
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn the_classic_builder_builds_a_dockerfile_that_is_a_symlink_in_the_context() {
    builds_through_the_link(BuilderKind::Classic, "link-classic").await;
}

/// The target is readable, but it is not the context's: refused before the
/// daemon sees anything of it, with an error that says where it points.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn a_dockerfile_linked_outside_the_context_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let ctx = outer.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(outer.path().join("Dockerfile.outside"), "FROM scratch\n").unwrap();
    symlink("../Dockerfile.outside", ctx.join("Dockerfile")).unwrap();
    let daemon = connect_as_the_cli_would().unwrap();
    for builder in [BuilderKind::BuildKit, BuilderKind::Classic] {
        let req = request(&ctx, builder, &unique_tag("link-outside"));
        let err = build(&daemon, req, CancellationToken::new(), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                BuildError::Context {
                    source: ContextError::DockerfileOutsideContext { .. }
                }
            ),
            "{builder:?}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("resolves outside the build context"),
            "{builder:?}: {err}"
        );
    }
}
