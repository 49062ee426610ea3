//! Supply-chain evidence with the real terraform CLI: signed SLSA provenance per
//! platform and attached files as OCI 1.1 referrers, on distribution 2.8 (the `sha256-<hex>`
//! fallback index) and behind a front that has the referrers API; signatures checked with
//! Python's `cryptography`, not the provider's code; the tags' index byte-identical to a
//! build without evidence; entries of other tools and of concurrent resources kept; destroy
//! taking its own referrers back.

use std::path::Path;

use acceptance_tests::context::build_context;
use acceptance_tests::diagnostics::assert_error_contains;
use acceptance_tests::evidence::{
    artifact_layer, fallback_entries, get, make_keys, manifest, verify, KeyPair,
};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::media_types::{IN_TOTO, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use acceptance_tests::push::Uploader;
use acceptance_tests::{Mode, ReferrersFront, Registry, Workdir};
use reqwest::Method;
use serde_json::{json, Value};

const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const BUILDER_PREFIX: &str = "https://github.com/stevedore/terraform-provider-stevedore@";

fn context() -> tempfile::TempDir {
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", b"evidence\n"),
    ])
}

/// A build resource; `extra` goes inside its block.
fn build(name: &str, ctx: &Path, repo: &str, extra: &str) -> String {
    format!(
        "resource \"stevedore_image_build\" {name:?} {{\n  context = {}\n  repository = {}\n\
         {extra}}}\noutput {name:?} {{\n  value = stevedore_image_build.{name}\n  sensitive = true\n}}\n",
        quote(&ctx.display().to_string()),
        quote(repo),
    )
}

fn path(p: &Path) -> String {
    quote(&p.display().to_string())
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn signed_provenance_and_an_sbom_ride_beside_an_unchanged_index() {
    let registry = Registry::start();
    let ctx = context();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = make_keys(keys_dir.path(), "provenance", "ec");
    let other = make_keys(keys_dir.path(), "other", "ed25519");
    let sbom = keys_dir.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"web"}"#).unwrap();
    let platforms = "  platforms = [\"linux/amd64\", \"linux/arm64\"]\n";
    let plain_repo = format!("{}/plain", registry.address);
    let repo = format!("{}/web", registry.address);
    let evidence = format!(
        "{platforms}  provenance = true\n  signing_key_file = {}\n  keep_remotely = false\n  \
         depends_on = [stevedore_image_build.plain]\n  attach {{\n    artifact_type = \
         \"application/spdx+json\"\n    file = {}\n    annotations = {{ \"org.example.kind\" = \
         \"sbom\" }}\n  }}\n",
        path(&keys.private),
        path(&sbom)
    );
    let main = terraform_block()
        + &build("plain", ctx.path(), &plain_repo, platforms)
        + &build("proven", ctx.path(), &repo, &evidence);
    let tf = Workdir::new(Mode::Installed, &main);
    tf.init().success();
    tf.apply().success();
    let plain = tf.output("plain");
    let proven = tf.output("proven");

    // The tags' index is the one a build without evidence pushes, with no attestation entry.
    assert_eq!(
        proven["digest"], plain["digest"],
        "same image, with or without evidence"
    );
    assert_eq!(plain["provenance_digests"], json!({}));
    let index = manifest(&registry, "web", "latest");
    for entry in index["manifests"].as_array().unwrap() {
        assert_ne!(entry["platform"]["os"], "unknown", "{index}");
        assert!(entry.get("annotations").is_none(), "{index}");
    }

    // Each platform manifest has a signed provenance referrer, listed in its fallback index.
    for platform in ["linux/amd64", "linux/arm64"] {
        let subject = proven["platform_digests"][platform].as_str().unwrap();
        let referrer = proven["provenance_digests"][platform].as_str().unwrap();
        let listed = fallback_entries(&registry, "web", subject);
        let entry = listed.iter().find(|e| e["digest"] == referrer);
        let entry = entry.unwrap_or_else(|| panic!("{platform}: {referrer} not in {listed:?}"));
        assert_eq!(entry["artifactType"], IN_TOTO);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        let (artifact, envelope) = artifact_layer(&registry, "web", referrer);
        assert_eq!(artifact["artifactType"], IN_TOTO);
        assert_eq!(artifact["config"]["mediaType"], OCI_EMPTY);
        assert_eq!(artifact["subject"]["digest"], subject);
        assert_eq!(artifact["layers"][0]["mediaType"], DSSE);
        assert_eq!(
            artifact["layers"][0]["annotations"]["in-toto.io/predicate-type"],
            "https://slsa.dev/provenance/v1"
        );
        let checked = verify(&keys.public, &envelope, subject, BUILDER_PREFIX);
        assert!(checked.is_ok(), "{platform}: {checked:?}");
        let refused = verify(&other.public, &envelope, subject, BUILDER_PREFIX);
        assert!(refused.is_err(), "another key must not verify: {refused:?}");
        let statement = payload(&envelope);
        let params = &statement["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(params["platform"], platform);
        assert_eq!(params["contextHash"], proven["context_hash"]);
    }

    // The SBOM is a referrer of what the tags point to.
    let digest = proven["digest"].as_str().unwrap();
    let listed = fallback_entries(&registry, "web", digest);
    let sbom_entry = listed
        .iter()
        .find(|e| e["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("no SBOM in {listed:?}"));
    assert_eq!(sbom_entry["annotations"]["org.example.kind"], "sbom");
    let sbom_digest = sbom_entry["digest"].as_str().unwrap().to_string();
    let (_, content) = artifact_layer(&registry, "web", &sbom_digest);
    assert_eq!(content, std::fs::read(&sbom).unwrap());
    tf.assert_plans_empty();

    // A changed SBOM is a build input: the plan shows it.
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"web2"}"#).unwrap();
    assert!(tf.plan_has_changes());
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"web"}"#).unwrap();

    // Destroy takes back the referrers it pushed, out of the fallback indexes too.
    tf.destroy().success();
    for platform in ["linux/amd64", "linux/arm64"] {
        let subject = proven["platform_digests"][platform].as_str().unwrap();
        let referrer = proven["provenance_digests"][platform].as_str().unwrap();
        assert!(fallback_entries(&registry, "web", subject).is_empty());
        assert_eq!(
            get(&registry, "web", &format!("manifests/{referrer}")).0,
            404
        );
    }
    assert!(fallback_entries(&registry, "web", digest).is_empty());
    assert_eq!(
        get(&registry, "web", &format!("manifests/{sbom_digest}")).0,
        404
    );
}

/// The statement inside a DSSE envelope.
fn payload(envelope: &[u8]) -> Value {
    use base64::Engine as _;
    let envelope: Value = serde_json::from_slice(envelope).unwrap();
    let text = envelope["payload"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_registry_with_the_referrers_api_is_asked_and_no_tag_is_written() {
    let registry = Registry::start();
    let front = ReferrersFront::start(&registry);
    let ctx = context();
    let repo = format!("{}/web", front.host());
    let main = terraform_block()
        + &build("app", ctx.path(), &repo, "  provenance = true\n")
        + "data \"stevedore_image_manifest\" \"app\" {\n  image = \
           stevedore_image_build.app.image_uri\n  platform = \"linux/amd64\"\n}\noutput \
           \"referrers\" {\n  value = data.stevedore_image_manifest.app.referrers\n}\n";
    let tf = Workdir::new(Mode::Installed, &main);
    tf.init().success();
    tf.apply().success();
    let app = tf.output("app");
    let subject = app["platform_digests"]["linux/amd64"].as_str().unwrap();
    let referrer = app["provenance_digests"]["linux/amd64"].as_str().unwrap();
    assert!(front.subject_puts() >= 1);
    assert_eq!(
        front.fallback_tag_puts(),
        0,
        "the API was there: no fallback tag"
    );
    assert_eq!(front.violations(), Vec::<String>::new());
    let listed = front.referrers("web", subject);
    assert!(listed.iter().any(|d| d["digest"] == referrer), "{listed:?}");
    // Unsigned: the statement itself is the layer.
    let (artifact, statement) = artifact_layer(&registry, "web", referrer);
    assert_eq!(artifact["layers"][0]["mediaType"], IN_TOTO);
    let statement: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], &subject[7..]);
    // The data source shows it, read through the API.
    let shown = tf.output("referrers");
    let found = shown
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["digest"] == referrer);
    assert!(found, "{shown}");
    assert!(front.referrers_gets() >= 1);
    tf.assert_plans_empty();
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn attachments_of_concurrent_resources_and_another_tools_entry_all_stay_listed() {
    let registry = Registry::start();
    let repo = format!("{}/web", registry.address);
    let warm_ctx = context();
    // A daemon's push writes the manifest its own way; with every push assembled by the
    // provider, the same image always has the same manifest bytes, so the jobs below share
    // one subject.
    let env = [("STEVEDORE_PUSH_THROUGH_DAEMON", "0")];
    let warm = Workdir::with_env(
        Mode::Installed,
        &(terraform_block() + &build("warm", warm_ctx.path(), &repo, "  tags = [\"warm\"]\n")),
        &env,
    );
    warm.init().success();
    warm.apply().success();
    let subject = warm.output("warm")["digest"].as_str().unwrap().to_string();

    // Another tool lists its own referrer there first.
    let foreign = push_foreign_referrer(&registry, &subject);

    // Two states, so two provider processes that cannot take turns: each attaches a report
    // to the same image (a cached build of the same files) at the same time. Each has its own
    // copy of the context, as two CI jobs would.
    let files = tempfile::tempdir().unwrap();
    let jobs: Vec<(tempfile::TempDir, Workdir)> = ["a", "b"]
        .iter()
        .map(|name| {
            let ctx = context();
            let file = files.path().join(format!("{name}.json"));
            std::fs::write(&file, format!("{{\"report\":{name:?}}}")).unwrap();
            let extra = format!(
                "  tags = [{name:?}]\n  attach {{\n    artifact_type = \
                 \"application/vnd.example.report+json\"\n    file = {}\n  }}\n",
                path(&file)
            );
            let tf = Workdir::with_env(
                Mode::Installed,
                &(terraform_block() + &build(name, ctx.path(), &repo, &extra)),
                &env,
            );
            tf.init().success();
            (ctx, tf)
        })
        .collect();
    let running: Vec<_> = jobs
        .into_iter()
        .map(|(ctx, tf)| {
            std::thread::spawn(move || {
                tf.apply().success();
                (ctx, tf)
            })
        })
        .collect();
    let jobs: Vec<(tempfile::TempDir, Workdir)> =
        running.into_iter().map(|j| j.join().unwrap()).collect();
    for ((_, tf), name) in jobs.iter().zip(["a", "b"]) {
        assert_eq!(
            tf.output(name)["digest"],
            subject.as_str(),
            "{name}: the same image"
        );
    }
    let listed = fallback_entries(&registry, "web", &subject);
    let reports = listed
        .iter()
        .filter(|e| e["artifactType"] == "application/vnd.example.report+json")
        .count();
    assert_eq!(reports, 2, "both resources' attachments: {listed:?}");
    let kept = listed.iter().find(|e| e["digest"] == foreign.as_str());
    let kept = kept.unwrap_or_else(|| panic!("the other tool's entry was dropped: {listed:?}"));
    assert_eq!(kept["x-other-tool"], "kept whole", "{kept}");
    for (_, tf) in &jobs {
        tf.assert_plans_empty();
    }
}

/// Pushes an artifact with `subject` as another tool would, and lists it in the fallback index
/// with a field of its own. Returns the artifact's digest.
fn push_foreign_referrer(registry: &Registry, subject: &str) -> String {
    let put = |what: &str, content_type: &str, body: Vec<u8>| {
        let response = registry
            .request(Method::PUT, &format!("/v2/web/manifests/{what}"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "PUT {what}");
    };
    let (status, raw) = get(registry, "web", &format!("manifests/{subject}"));
    assert_eq!(status, 200);
    let subject_manifest: Value = serde_json::from_slice(&raw).unwrap();
    let subject_size = raw.len();
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    Uploader::new(registry).blob("web", b"{}");
    let artifact = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-other",
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": OCI_EMPTY, "digest": empty, "size": 2}],
        "subject": {"mediaType": subject_media_type(&subject_manifest), "digest": subject,
                    "size": subject_size},
    });
    let bytes = serde_json::to_vec(&artifact).unwrap();
    let digest = acceptance_tests::sha256_digest(&bytes);
    put(&digest, OCI_MANIFEST, bytes.clone());
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len(),
                       "artifactType": "application/x-other", "x-other-tool": "kept whole"}],
    });
    put(
        &subject.replacen(':', "-", 1),
        OCI_INDEX,
        serde_json::to_vec(&index).unwrap(),
    );
    digest
}

fn subject_media_type(manifest: &Value) -> String {
    manifest["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_string()
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_key_that_cannot_sign_is_refused_at_plan_naming_the_attribute() {
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let KeyPair { public, .. } = make_keys(dir.path(), "k", "ec");
    let main = terraform_block()
        + &build(
            "app",
            ctx.path(),
            "127.0.0.1:5000/web",
            &format!(
                "  provenance = true\n  signing_key_file = {}\n",
                path(&public)
            ),
        );
    let tf = Workdir::new(Mode::Installed, &main);
    tf.init().success();
    let out = tf.plan().failure();
    assert_error_contains(&out, "Invalid Signing Key");
    assert!(out.contains("signing_key_file"), "{out}");
}

/// `stevedore_ecs_redeploy.require_provenance` through terraform against moto's ECS: the image
/// built with signed provenance deploys; another key, another builder, an image without
/// provenance and a signed statement about another image (forged with openssl) are each
/// refused before ECS is touched.
#[test]
#[ignore = "acceptance: run make testacc"]
fn ecs_deploys_only_what_its_provenance_proves() {
    use acceptance_tests::hcl::ecs_redeploy_block;
    use acceptance_tests::moto::{Moto, AWS_ENV};

    let registry = Registry::start();
    let ctx = context();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = make_keys(keys_dir.path(), "provenance", "ec");
    let other = make_keys(keys_dir.path(), "other", "ed25519");
    let signed = format!(
        "  provenance = true\n  signing_key_file = {}\n",
        path(&keys.private)
    );
    let images = Workdir::new(
        Mode::Installed,
        &(terraform_block()
            + &build(
                "signed",
                ctx.path(),
                &format!("{}/web", registry.address),
                &signed,
            )
            + &build(
                "bare",
                ctx.path(),
                &format!("{}/bare", registry.address),
                "",
            )),
    );
    images.init().success();
    images.apply().success();
    let signed_uri = images.output("signed")["image_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let bare_uri = images.output("bare")["image_uri"]
        .as_str()
        .unwrap()
        .to_string();

    let moto = Moto::start();
    let redeploy = |service: &str, image: &str, key: &Path, builder: &str| {
        let svc = moto.fargate_service("prod", service, image, "X86_64", 1);
        let before = moto.primary_deployment_id(&svc);
        let body = format!(
            "  digest = \"{}\"\n  require_provenance {{\n    public_key_file = {}\n    \
             builder_id = {}\n  }}\n",
            image.rsplit_once('@').unwrap().1,
            path(key),
            quote(builder)
        );
        let main = terraform_block()
            + &moto.provider_block()
            + &ecs_redeploy_block(&svc.cluster, &svc.service, &body);
        let tf = Workdir::with_env(Mode::Installed, &main, &AWS_ENV);
        tf.init().success();
        let run = tf.apply();
        let moved = moto.primary_deployment_id(&svc) != before;
        (run, moved, tf.resource_values("stevedore_ecs_redeploy.web"))
    };

    // The task definition already runs the digest: the proven image's deployment is followed.
    let (run, _, state) = redeploy("web", &signed_uri, &keys.public, BUILDER_PREFIX);
    run.success();
    assert!(state["deployment_id"].is_string(), "{state}");

    let refusals = [
        (
            "other-key",
            &signed_uri,
            &other.public,
            BUILDER_PREFIX,
            "signed by another key",
        ),
        (
            "other-builder",
            &signed_uri,
            &keys.public,
            "https://ci.example.com/",
            "another builder",
        ),
        (
            "bare",
            &bare_uri,
            &keys.public,
            BUILDER_PREFIX,
            "no provenance",
        ),
    ];
    for (service, image, key, builder, reason) in refusals {
        let (run, moved, state) = redeploy(service, image, key, builder);
        let stderr = run.failure();
        assert_error_contains(&stderr, "Image Provenance Not Proven");
        assert_error_contains(&stderr, reason);
        assert!(!moved, "{service}: ECS must not be touched");
        assert_eq!(state, Value::Null, "{service}: nothing in state");
    }

    // A statement signed with the right key, listed as a referrer of the unproven image, but
    // about another image. (Not the proven one: built from the same files, it is the same
    // manifest, with or without provenance.)
    let bare_digest = bare_uri.rsplit_once('@').unwrap().1;
    let elsewhere = format!("sha256:{}", "ab".repeat(32));
    acceptance_tests::evidence::forge_provenance(&registry, "bare", bare_digest, &elsewhere, &keys);
    let (run, moved, state) = redeploy("forged", &bare_uri, &keys.public, BUILDER_PREFIX);
    let stderr = run.failure();
    assert_error_contains(&stderr, "Image Provenance Not Proven");
    assert_error_contains(&stderr, "about another image");
    assert!(!moved, "forged: ECS must not be touched");
    assert_eq!(state, Value::Null, "forged: nothing in state");
}
