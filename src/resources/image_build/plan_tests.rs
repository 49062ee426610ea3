use super::super::marker::{owned_after, owned_manifests, pushed_marker};
use super::*;

/// A well-formed digest standing for the manifest called `name`, as text.
fn h(name: &str) -> &'static str {
    Box::leak(
        Digest::sha256_of(name.as_bytes())
            .to_string()
            .into_boxed_str(),
    )
}

fn model(v: &Value) -> BuildModel {
    BuildModel::from_value(v)
}

/// The same digest as a [`Digest`].
fn dg(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn state(digest: Option<&str>) -> Value {
    Value::object([
        (attr::context, Value::string("/ctx")),
        (attr::dockerfile, Value::string("Dockerfile")),
        (attr::repository, Value::string("127.0.0.1:5000/web")),
        (attr::tags, Value::string_list(["latest", "v1"])),
        (attr::platforms, Value::string_list(["linux/amd64"])),
        (attr::build_args, Value::string_map([("V", "1")])),
        (attr::target, Value::Null),
        (attr::labels, Value::Null),
        (attr::secrets, Value::string_map([("npm", "hunter2")])),
        (attr::secret_env, Value::Null),
        (attr::secret_files, Value::Null),
        (attr::no_cache, Value::Bool(false)),
        (attr::manifest_format, Value::string("docker")),
        (attr::builder, Value::string("auto")),
        (attr::keep_remotely, Value::Bool(true)),
        (attr::triggers, Value::Null),
        (
            attr::id,
            Value::opt_string(digest.map(|d| format!("127.0.0.1:5000/web@{d}"))),
        ),
        (attr::context_hash, Value::string("sha256:h1")),
        (attr::digest, Value::opt_string(digest)),
        (
            attr::image_uri,
            Value::opt_string(digest.map(|d| format!("127.0.0.1:5000/web@{d}"))),
        ),
        (
            attr::platform_digests,
            Value::string_map([("linux/amd64", h("m"))]),
        ),
        (
            attr::manifest_media_type,
            Value::string("application/vnd.docker.distribution.manifest.v2+json"),
        ),
        (attr::image_id, Value::string_map([("linux/amd64", h("c"))])),
        (
            attr::built_by,
            Value::string_map([("linux/amd64", "default")]),
        ),
        (
            attr::provenance_digests,
            Value::string_map(Vec::<(String, String)>::new()),
        ),
    ])
}

#[test]
fn rebuild_decisions() {
    let prior = state(Some(h("a")));
    let with = |name: &str, v: Value| {
        let mut p = prior.clone();
        p.set(name, v);
        p
    };
    let cases: [(&str, Value, Value, bool, bool); 7] = [
        ("create", Value::Null, prior.clone(), false, true),
        ("unchanged", prior.clone(), prior.clone(), false, false),
        (
            "hash changed",
            prior.clone(),
            with(attr::context_hash, Value::string("sha256:h2")),
            false,
            true,
        ),
        (
            "hash unknown",
            prior.clone(),
            with(attr::context_hash, Value::Unknown),
            false,
            true,
        ),
        (
            "repository changed",
            prior.clone(),
            with(attr::repository, Value::string("127.0.0.1:5000/api")),
            false,
            true,
        ),
        (
            "keep_remotely only",
            prior.clone(),
            with(attr::keep_remotely, Value::Bool(false)),
            false,
            false,
        ),
        ("drifted", prior.clone(), prior.clone(), true, true),
    ];
    for (name, prior, planned, drifted, want) in cases {
        assert_eq!(needs_rebuild(&prior, &planned, drifted), want, "{name}");
    }
}

#[test]
fn planned_outputs_unknown_on_rebuild_and_prior_otherwise() {
    let prior = state(Some(h("a")));
    let same = planned(&prior, &prior, Value::string("sha256:h1"), false);
    assert_eq!(same, prior, "an unchanged plan is exactly the prior state");

    let changed = planned(&prior, &prior, Value::string("sha256:h2"), false);
    assert_eq!(&model(&changed).context_hash, &Value::string("sha256:h2"));
    for name in OUTPUTS {
        assert!(changed.get(name).is_unknown(), "{name}");
    }
    let created = planned(&Value::Null, &prior, Value::string("sha256:h1"), false);
    assert!(&model(&created).digest.is_unknown());
    assert_eq!(&model(&created).context_hash, &Value::string("sha256:h1"));
}

#[test]
fn hash_inputs_cover_every_input_and_hide_secrets() {
    let s = state(None);
    let inputs = hash_inputs(&s).unwrap();
    assert_eq!(inputs["build_arg:V"], "1");
    assert_eq!(inputs[attr::tags], "latest\nv1");
    assert_eq!(inputs[attr::platforms], "linux/amd64");
    assert_eq!(inputs[attr::manifest_format], "docker");
    assert_eq!(inputs[attr::no_cache], "false");
    assert_eq!(
        inputs["secret:npm"],
        attr::secrets,
        "the id and its source, no value"
    );
    assert!(!inputs.values().any(|v| v.contains("hunter2")));
    let mut new_value = model(&s);
    new_value.secrets = Value::string_map([("npm", "other")]);
    assert_eq!(
        hash_inputs(&new_value.into_value()),
        Some(inputs.clone()),
        "a secret's value alone plans no rebuild"
    );

    for (name, v) in [
        (attr::build_args, Value::string_map([("V", "2")])),
        (attr::secrets, Value::string_map([("gh", "other")])),
        (attr::secret_env, Value::string_map([("npm", "NPM_TOKEN")])),
        (attr::triggers, Value::string_map([("r", "1")])),
        (attr::platforms, Value::string_list(["linux/arm64"])),
        (attr::target, Value::string("runtime")),
        (attr::no_cache, Value::Bool(true)),
        (attr::manifest_format, Value::string("oci")),
        (attr::labels, Value::string_map([("team", "web")])),
    ] {
        let mut changed = s.clone();
        changed.set(name, v);
        assert_ne!(hash_inputs(&changed), Some(inputs.clone()), "{name}");
    }
    let mut unknown = model(&s);
    unknown.build_args = Value::string_map([("V", "1")]);
    unknown.triggers = Value::Map([("r".to_string(), Value::Unknown)].into());
    assert_eq!(hash_inputs(&unknown.into_value()), None);
}

#[test]
fn drift_compares_state_digest_with_the_pushed_marker() {
    let marker = pushed_marker(&dg("a"), &[&dg("a")], &[dg("a")]);
    assert_eq!(marker_digest(&marker).as_deref(), Some(h("a")));
    assert!(!drifted(&state(Some(h("a"))), &marker));
    assert!(drifted(&state(Some(h("b"))), &marker), "moved");
    assert!(drifted(&state(None), &marker), "missing");
    assert!(drifted(&state(None), &[]), "missing without marker");
    assert!(
        !drifted(&state(Some(h("b"))), &[]),
        "no marker: nothing to compare"
    );
    assert!(!drifted(&Value::Null, &marker), "create");
}

#[test]
fn refresh_reports_moved_and_missing_tags() {
    let s = state(Some(h("a")));
    let resolved = |a: Option<&str>, b: Option<&str>| {
        BTreeMap::from([
            ("latest".to_string(), a.map(|d| Digest::parse(d).unwrap())),
            ("v1".to_string(), b.map(|d| Digest::parse(d).unwrap())),
        ])
    };
    assert_eq!(refreshed(&s, &resolved(Some(h("a")), Some(h("a")))), s);

    let moved = refreshed(&s, &resolved(Some(h("a")), Some(h("b"))));
    assert_eq!(&model(&moved).digest, &Value::string(h("b")));
    assert_eq!(
        &model(&moved).image_uri,
        &Value::string(format!("127.0.0.1:5000/web@{}", h("b")))
    );
    assert_eq!(&model(&moved).id, &model(&moved).image_uri);
    assert_eq!(&model(&moved).context_hash, &model(&s).context_hash);

    let missing = refreshed(&s, &resolved(None, Some(h("a"))));
    assert!(&model(&missing).digest.is_null());
    assert!(&model(&missing).image_uri.is_null());
    assert!(drifted(&missing, &pushed_marker(&dg("a"), &[], &[dg("a")])));
}

#[test]
fn owned_manifests_come_from_the_marker_not_from_refreshed_state() {
    // Refresh wrote someone else's digest into `digest`: destroy must not see it as ours.
    let drifted_state = state(Some(h("theirs")));
    let all = [dg("index"), dg("amd64"), dg("arm64")];
    let marker = pushed_marker(&dg("index"), &[&dg("amd64"), &dg("arm64")], &all);
    assert_eq!(
        owned_manifests(&marker, &drifted_state).unwrap(),
        [h("index"), h("amd64"), h("arm64")]
    );
    let single = pushed_marker(&dg("m"), &[&dg("m")], &[dg("m")]);
    assert_eq!(owned_manifests(&single, &drifted_state).unwrap(), [h("m")]);
}

#[test]
fn only_manifests_the_push_created_are_owned() {
    let s = state(Some(h("index")));
    // The registry already held the arm64 manifest (another state pushed it).
    let marker = pushed_marker(
        &dg("index"),
        &[&dg("amd64"), &dg("arm64")],
        &[dg("index"), dg("amd64")],
    );
    assert_eq!(
        owned_manifests(&marker, &s).unwrap(),
        [h("index"), h("amd64")]
    );
    // Nothing created: known, and empty.
    let none = pushed_marker(&dg("m"), &[&dg("m")], &[]);
    assert_eq!(owned_manifests(&none, &s), Some(Vec::new()));
    // A rebuild that finds its own earlier manifest keeps owning it, and
    // gives up what it no longer points at.
    let rebuilt = owned_after(&[], &[&dg("m")], &s, &single_owned("m"));
    assert_eq!(rebuilt, [dg("m")]);
    assert!(owned_after(&[], &[&dg("n")], &s, &single_owned("m")).is_empty());
    // Another state's manifest found in the registry is not taken over.
    assert!(owned_after(
        &[],
        &[&dg("m")],
        &s,
        &pushed_marker(&dg("m"), &[&dg("m")], &[])
    )
    .is_empty());
}

fn single_owned(name: &str) -> Vec<u8> {
    pushed_marker(&dg(name), &[&dg(name)], &[dg(name)])
}

#[test]
fn owned_manifests_of_older_markers_are_what_they_pushed() {
    let old_marker = format!(r#"{{"pushed_digest":"{}"}}"#, h("a")).into_bytes();
    assert_eq!(
        owned_manifests(&old_marker, &state(Some(h("theirs")))).unwrap(),
        [h("a"), h("m")]
    );
    let pushed_only = format!(
        r#"{{"pushed_digest":"{0}","pushed_manifests":["{0}"]}}"#,
        h("a")
    )
    .into_bytes();
    assert_eq!(
        owned_manifests(&pushed_only, &state(None)).unwrap(),
        [h("a")]
    );
    assert!(
        owned_manifests(&[], &state(Some(h("a")))).is_none(),
        "no marker: nothing is ours"
    );
    assert!(owned_manifests(b"not json", &state(Some(h("a")))).is_none());
}
