use super::*;
use crate::value::Value;

fn blocks(path: Value, builder: Value) -> Value {
    Value::List(vec![ProvenanceModel {
        public_key_file: path,
        builder_id: builder,
    }
    .into_value()])
}

#[test]
fn validate_reads_the_key_file_and_blames_its_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let public = dir.path().join("provenance.pub");
    let private = dir.path().join("signing.pem");
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    std::fs::write(&private, pair.serialize_pem()).unwrap();
    let path_of = |p: &std::path::Path| Value::string(p.to_string_lossy());
    let at = AttrPath::attr(attr::require_provenance)
        .then_index(0)
        .then_attr(provenance_attr::public_key_file);

    let mut d = Diagnostics::new();
    validate(&blocks(path_of(&public), Value::Null), &mut d);
    validate(&blocks(Value::Unknown, Value::Unknown), &mut d);
    validate(&Value::List(Vec::new()), &mut d);
    validate(&Value::Null, &mut d);
    assert!(d.is_empty(), "{d:?}");
    let loaded = policy_of(&blocks(path_of(&public), Value::string("https://x/")));
    assert_eq!(loaded.builder_prefix.as_deref(), Some("https://x/"));

    let mut d = Diagnostics::new();
    validate(
        &blocks(path_of(&dir.path().join("missing.pub")), Value::Null),
        &mut d,
    );
    validate(&blocks(path_of(&private), Value::Null), &mut d);
    assert_eq!(d.0.len(), 2, "{d:?}");
    for diag in &d.0 {
        assert_eq!(diag.attribute, Some(at.clone()));
        assert_eq!(diag.summary, "Invalid Provenance Key");
    }
    assert!(
        d.0[0].detail.contains("missing.pub\" cannot be read"),
        "{}",
        d.0[0].detail
    );
    assert!(
        d.0[0].detail.contains("Check the path"),
        "{}",
        d.0[0].detail
    );
    assert!(
        d.0[1].detail.contains("openssl pkey -in"),
        "{}",
        d.0[1].detail
    );
}

fn policy_of(blocks: &Value) -> Policy {
    super::policy(blocks).unwrap().unwrap()
}

#[test]
fn an_empty_builder_id_is_refused() {
    let mut d = Diagnostics::new();
    validate(&blocks(Value::Unknown, Value::string(" ")), &mut d);
    assert_eq!(d.0.len(), 1, "{d:?}");
    assert_eq!(
        d.0[0].attribute,
        Some(
            AttrPath::attr(attr::require_provenance)
                .then_index(0)
                .then_attr(provenance_attr::builder_id)
        )
    );
}

#[test]
fn no_block_is_no_policy() {
    assert!(super::policy(&Value::List(Vec::new())).unwrap().is_none());
    assert!(super::policy(&Value::Null).unwrap().is_none());
}
