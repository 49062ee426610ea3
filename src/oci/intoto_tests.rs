use serde_json::{json, Value};

use super::*;
use crate::oci::dsse::SigningKey;

const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const CONTEXT: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const NODE: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
const BUILDER: &str =
    "https://github.com/stevedore/terraform-provider-stevedore@0.1.0#builder=default";
/// 2026-12-07T10:00:00Z and five minutes later.
const STARTED: i64 = 1_796_637_600;

fn facts() -> ProvenanceFacts {
    let at = |secs| OffsetDateTime::from_unix_timestamp(secs).unwrap();
    ProvenanceFacts {
        subject_name: "127.0.0.1:5000/web".to_string(),
        subject_digest: IMAGE.to_string(),
        dockerfile: "Dockerfile".to_string(),
        target: Some("runtime".to_string()),
        platform: "linux/arm64".to_string(),
        build_args: BTreeMap::from([("NODE_ENV".to_string(), "production".to_string())]),
        labels: BTreeMap::from([("team".to_string(), "web".to_string())]),
        context_hash: format!("sha256:{CONTEXT}"),
        secret_ids: vec!["npm_token".to_string(), "aws".to_string()],
        base_images: vec![BaseImage {
            uri: "docker.io/library/node:22".to_string(),
            digest: NODE.to_string(),
        }],
        builder_id: BUILDER.to_string(),
        builder_version: BTreeMap::from([
            ("docker".to_string(), "27.3.1".to_string()),
            ("stevedore".to_string(), "0.1.0".to_string()),
        ]),
        invocation_id: "c0ffee".to_string(),
        started_on: at(STARTED),
        finished_on: at(STARTED + 300),
    }
}

fn as_json(facts: &ProvenanceFacts) -> Value {
    serde_json::from_slice(&statement(facts).unwrap()).unwrap()
}

#[test]
fn known_facts_give_the_expected_statement() {
    let value = as_json(&facts());
    assert_eq!(value["_type"], STATEMENT_TYPE);
    assert_eq!(value["predicateType"], SLSA_PROVENANCE_V1);
    assert_eq!(
        value["subject"],
        json!([{"name": "127.0.0.1:5000/web", "digest": {"sha256": &IMAGE[7..]}}])
    );
    let definition = &value["predicate"]["buildDefinition"];
    assert_eq!(definition["buildType"], BUILD_TYPE);
    assert_eq!(
        definition["externalParameters"],
        json!({
            "dockerfile": "Dockerfile",
            "target": "runtime",
            "platform": "linux/arm64",
            "buildArgs": {"NODE_ENV": "production"},
            "labels": {"team": "web"},
            "contextHash": format!("sha256:{CONTEXT}"),
            "secretIds": ["aws", "npm_token"],
        })
    );
    assert_eq!(
        definition["resolvedDependencies"],
        json!([
            {"uri": "context", "digest": {"sha256": CONTEXT}},
            {"uri": "docker.io/library/node:22", "digest": {"sha256": &NODE[7..]}},
        ])
    );
    assert_eq!(
        value["predicate"]["runDetails"],
        json!({
            "builder": {
                "id": BUILDER,
                "version": {"docker": "27.3.1", "stevedore": "0.1.0"},
            },
            "metadata": {
                "invocationId": "c0ffee",
                "startedOn": "2026-12-07T10:00:00Z",
                "finishedOn": "2026-12-07T10:05:00Z",
            },
        })
    );
}

#[test]
fn the_same_facts_give_the_same_bytes_in_a_fixed_order() {
    let first = statement(&facts()).unwrap();
    assert_eq!(first, statement(&facts()).unwrap());
    let text = String::from_utf8(first).unwrap();
    assert!(text.starts_with(r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"#));
    assert!(
        !text.contains('\n') && !text.contains(": "),
        "compact: {text}"
    );
    let mut reordered = facts();
    reordered.secret_ids.reverse();
    reordered.secret_ids.push("aws".to_string());
    assert_eq!(statement(&reordered).unwrap(), text.as_bytes());
}

#[test]
fn a_bare_context_hash_an_absent_target_and_an_offset_time_are_normalised() {
    let mut f = facts();
    f.context_hash = CONTEXT.to_uppercase();
    f.target = None;
    let offset = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    f.started_on = f.started_on.to_offset(offset) + time::Duration::milliseconds(250);
    let value = as_json(&f);
    let definition = &value["predicate"]["buildDefinition"];
    assert_eq!(
        definition["externalParameters"]["contextHash"],
        format!("sha256:{CONTEXT}")
    );
    assert!(definition["externalParameters"].get("target").is_none());
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["sha256"],
        CONTEXT
    );
    let started = &value["predicate"]["runDetails"]["metadata"]["startedOn"];
    assert_eq!(started, "2026-12-07T10:00:00Z");
}

#[test]
fn bad_facts_are_refused() {
    let mut f = facts();
    f.subject_name.clear();
    assert_eq!(statement(&f), Err(ProvenanceError::EmptySubject));
    for (change, field) in [
        (
            (|f: &mut ProvenanceFacts| f.subject_digest = CONTEXT.to_string()) as fn(&mut _),
            "subject_digest",
        ),
        (
            |f| f.subject_digest = "sha256:abc".to_string(),
            "subject_digest",
        ),
        (|f| f.context_hash = "sha512:00".to_string(), "context_hash"),
        (
            |f| f.base_images[0].digest = "latest".to_string(),
            "base image digest",
        ),
    ] {
        let mut f = facts();
        change(&mut f);
        let refused = statement(&f);
        assert!(
            matches!(refused, Err(ProvenanceError::BadDigest { field: got, .. }) if got == field),
            "{field}"
        );
    }
}

#[test]
fn secrets_appear_by_id_and_nothing_else() {
    let value = as_json(&facts());
    let parameters = value["predicate"]["buildDefinition"]["externalParameters"]
        .as_object()
        .unwrap();
    assert_eq!(parameters["secretIds"], json!(["aws", "npm_token"]));
    let keys: Vec<&str> = parameters.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "buildArgs",
            "contextHash",
            "dockerfile",
            "labels",
            "platform",
            "secretIds",
            "target"
        ]
    );
}

#[test]
fn a_statement_parses_back() {
    let parsed = parse_statement(&statement(&facts()).unwrap()).unwrap();
    assert_eq!(
        parsed,
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            predicate_type: SLSA_PROVENANCE_V1.to_string(),
            subjects: vec![Subject {
                name: "127.0.0.1:5000/web".to_string(),
                digest: BTreeMap::from([("sha256".to_string(), IMAGE[7..].to_string())]),
            }],
            builder_id: Some(facts().builder_id),
        }
    );
}

#[test]
fn parsing_tolerates_unknown_fields_and_other_predicates() {
    let other = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"digest": {"sha256": "ab"}, "annotations": {"x": 1}}],
        "predicateType": "https://example.com/test-result/v1",
        "predicate": {"passed": true},
        "extra": [1, 2],
    });
    let parsed = parse_statement(other.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.predicate_type, "https://example.com/test-result/v1");
    assert_eq!(parsed.subjects[0].name, "");
    assert_eq!(parsed.builder_id, None);
}

#[test]
fn parsing_refuses_what_is_not_a_statement_v1() {
    let mut value = as_json(&facts());
    value["_type"] = json!("https://in-toto.io/Statement/v0.1");
    assert_eq!(
        parse_statement(value.to_string().as_bytes()),
        Err(StatementError::WrongType {
            found: "https://in-toto.io/Statement/v0.1".to_string()
        })
    );
    let mut value = as_json(&facts());
    value.as_object_mut().unwrap().remove("_type");
    let missing = parse_statement(value.to_string().as_bytes());
    assert_eq!(missing, Err(StatementError::Missing { field: "_type" }));
    let mut value = as_json(&facts());
    value.as_object_mut().unwrap().remove("predicateType");
    let missing = parse_statement(value.to_string().as_bytes());
    assert_eq!(
        missing,
        Err(StatementError::Missing {
            field: "predicateType"
        })
    );
    let mut value = as_json(&facts());
    value["subject"] = json!([]);
    assert_eq!(
        parse_statement(value.to_string().as_bytes()),
        Err(StatementError::NoSubject)
    );
    for bad in [&b"not json"[..], b"[]", br#"{"_type": 3}"#] {
        assert!(matches!(
            parse_statement(bad),
            Err(StatementError::Malformed { .. })
        ));
    }
}

/// Writes signed statements for a verifier that is not ours
/// (`acceptance-tests/scripts/verify_provenance.py`) when
/// `STEVEDORE_DSSE_SAMPLE_DIR` names a directory; does nothing otherwise.
#[test]
fn writes_signed_samples_when_asked() {
    let Some(dir) = std::env::var_os("STEVEDORE_DSSE_SAMPLE_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let algorithms = [
        ("p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("ed25519", &rcgen::PKCS_ED25519),
    ];
    for (name, algorithm) in algorithms {
        let pem = rcgen::KeyPair::generate_for(algorithm)
            .unwrap()
            .serialize_pem();
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        let envelope = key
            .sign_envelope(PAYLOAD_TYPE, statement(&facts()).unwrap())
            .unwrap();
        std::fs::write(
            dir.join(format!("{name}.pub.pem")),
            key.public_key().to_pem(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{name}.envelope.json")),
            envelope.to_json(),
        )
        .unwrap();
    }
}
