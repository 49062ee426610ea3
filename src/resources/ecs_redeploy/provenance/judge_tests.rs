use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::*;
use crate::oci::dsse::SigningKey;
use crate::oci::intoto::PAYLOAD_TYPE;
use crate::oci::intoto::{statement, ProvenanceFacts};

const MANIFEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const BUILDER: &str = "https://github.com/acme/builder@v1";

/// A fresh ECDSA P-256 key pair: the signing key and its public PEM.
fn key_pair() -> (SigningKey, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signing = SigningKey::from_pem(pair.serialize_pem().as_bytes()).unwrap();
    (signing, pair.public_key_pem())
}

fn facts(subject: &str, builder: &str) -> ProvenanceFacts {
    let at = OffsetDateTime::from_unix_timestamp(1_796_637_600).unwrap();
    ProvenanceFacts {
        subject_name: "127.0.0.1:5000/web".to_string(),
        subject_digest: subject.to_string(),
        dockerfile: "Dockerfile".to_string(),
        target: None,
        platform: "linux/amd64".to_string(),
        build_args: BTreeMap::new(),
        labels: BTreeMap::new(),
        context_hash: OTHER.to_string(),
        secret_ids: Vec::new(),
        base_images: Vec::new(),
        builder_id: builder.to_string(),
        builder_version: BTreeMap::new(),
        invocation_id: "c0ffee".to_string(),
        started_on: at,
        finished_on: at,
    }
}

fn signed(key: &SigningKey, payload: Vec<u8>) -> Content {
    let envelope = key.sign_envelope(PAYLOAD_TYPE, payload).unwrap();
    Content::Envelope(envelope.to_json())
}

fn provenance(key: &SigningKey, subject: &str, builder: &str) -> Content {
    signed(key, statement(&facts(subject, builder)).unwrap())
}

fn candidate(n: u8, content: Content) -> Candidate {
    Candidate {
        digest: Digest::sha256_of(&[n]),
        content,
    }
}

fn policy(public_pem: &str, prefix: Option<&str>) -> Policy {
    Policy {
        key: PublicKey::from_pem(public_pem.as_bytes()).unwrap(),
        builder_prefix: prefix.map(str::to_string),
    }
}

fn manifest() -> Digest {
    Digest::parse(MANIFEST).unwrap()
}

fn refusal(candidates: &[Candidate], policy: &Policy) -> Refusal {
    decide(candidates, &manifest(), policy).unwrap_err()
}

#[test]
fn provenance_signed_by_the_key_about_the_manifest_passes() {
    let (key, public) = key_pair();
    let good = candidate(1, provenance(&key, MANIFEST, BUILDER));
    let with_prefix = policy(&public, Some("https://github.com/acme/"));
    assert_eq!(
        decide(std::slice::from_ref(&good), &manifest(), &with_prefix),
        Ok(())
    );
    assert_eq!(decide(&[good], &manifest(), &policy(&public, None)), Ok(()));
}

#[test]
fn no_candidate_is_no_provenance() {
    let (_, public) = key_pair();
    let r = refusal(&[], &policy(&public, None));
    assert_eq!(r.reason, Reason::NoProvenance);
    assert_eq!(r.referrer, None);
    assert!(
        r.to_string().starts_with(
            "no provenance: no referrer of artifact type application/vnd.in-toto+json; build it \
             with stevedore_image_build provenance = true and signing_key_file"
        ),
        "{r}"
    );
}

#[test]
fn an_unsigned_statement_is_refused_as_unsigned() {
    let (_, public) = key_pair();
    let unsigned = candidate(
        1,
        Content::Unsigned {
            media_type: PAYLOAD_TYPE.to_string(),
        },
    );
    let r = refusal(std::slice::from_ref(&unsigned), &policy(&public, None));
    assert_eq!(r.referrer, Some(unsigned.digest.clone()));
    assert!(matches!(r.reason, Reason::Unsigned { .. }), "{r:?}");
    assert!(r.to_string().contains("is not signed"), "{r}");
}

#[test]
fn another_key_is_refused_naming_both_key_ids() {
    let (ours, public) = key_pair();
    let (theirs, _) = key_pair();
    let r = refusal(
        &[candidate(1, provenance(&theirs, MANIFEST, BUILDER))],
        &policy(&public, None),
    );
    let text = r.to_string();
    assert!(matches!(r.reason, Reason::BadSignature(_)), "{r:?}");
    assert!(text.contains(&theirs.key_id()), "{text}");
    assert!(text.contains(&ours.key_id()), "{text}");
    assert!(text.contains("signed by another key"), "{text}");
}

#[test]
fn a_changed_payload_is_a_bad_signature() {
    let (key, public) = key_pair();
    let mut envelope = key
        .sign_envelope(PAYLOAD_TYPE, statement(&facts(MANIFEST, BUILDER)).unwrap())
        .unwrap();
    envelope.payload.push(b' ');
    let tampered = candidate(1, Content::Envelope(envelope.to_json()));
    let r = refusal(&[tampered], &policy(&public, None));
    assert!(
        matches!(
            r.reason,
            Reason::BadSignature(VerifyError::DoesNotVerify { .. })
        ),
        "{r:?}"
    );
    assert!(r.to_string().contains("bad signature"), "{r}");
}

#[test]
fn a_statement_about_another_manifest_is_refused_naming_it() {
    let (key, public) = key_pair();
    let r = refusal(
        &[candidate(1, provenance(&key, OTHER, BUILDER))],
        &policy(&public, None),
    );
    assert!(matches!(r.reason, Reason::OtherSubject { .. }), "{r:?}");
    assert!(r.to_string().contains(OTHER), "{r}");
}

#[test]
fn another_builder_is_refused_naming_found_and_wanted() {
    let (key, public) = key_pair();
    let r = refusal(
        &[candidate(
            1,
            provenance(&key, MANIFEST, "https://evil.example/b"),
        )],
        &policy(&public, Some("https://github.com/acme/")),
    );
    assert_eq!(
        r.reason,
        Reason::OtherBuilder {
            found: Some("https://evil.example/b".to_string()),
            wanted: "https://github.com/acme/".to_string(),
        }
    );
    let text = r.to_string();
    assert!(text.contains("\"https://evil.example/b\""), "{text}");
    assert!(text.contains("\"https://github.com/acme/\""), "{text}");
}

#[test]
fn a_signed_statement_of_another_predicate_is_not_provenance() {
    let (key, public) = key_pair();
    let sbom = serde_json::json!({
        "_type": intoto::STATEMENT_TYPE,
        "subject": [{"digest": {"sha256": &MANIFEST[7..]}}],
        "predicateType": "https://spdx.dev/Document",
        "predicate": {},
    });
    let content = signed(&key, serde_json::to_vec(&sbom).unwrap());
    let r = refusal(&[candidate(1, content)], &policy(&public, None));
    assert!(matches!(r.reason, Reason::NotProvenance { .. }), "{r:?}");
    assert!(r.to_string().contains("spdx"), "{r}");
}

#[test]
fn the_most_specific_refusal_is_reported_and_one_pass_is_enough() {
    let (key, public) = key_pair();
    let (other_key, _) = key_pair();
    let unsigned = candidate(
        1,
        Content::Unsigned {
            media_type: PAYLOAD_TYPE.to_string(),
        },
    );
    let other_signer = candidate(2, provenance(&other_key, MANIFEST, BUILDER));
    let other_subject = candidate(3, provenance(&key, OTHER, BUILDER));
    let other_builder = candidate(4, provenance(&key, MANIFEST, "https://else.example/"));
    let good = candidate(5, provenance(&key, MANIFEST, BUILDER));
    let wanted = policy(&public, Some("https://github.com/acme/"));

    let r = refusal(&[unsigned.clone(), other_signer.clone()], &wanted);
    assert!(matches!(r.reason, Reason::BadSignature(_)), "{r:?}");
    let r = refusal(
        &[
            other_subject.clone(),
            unsigned.clone(),
            other_signer.clone(),
        ],
        &wanted,
    );
    assert!(matches!(r.reason, Reason::OtherSubject { .. }), "{r:?}");
    assert_eq!(r.referrer, Some(other_subject.digest.clone()));
    let r = refusal(&[other_subject.clone(), other_builder.clone()], &wanted);
    assert!(matches!(r.reason, Reason::OtherBuilder { .. }), "{r:?}");
    let all = [unsigned, other_signer, other_subject, other_builder, good];
    assert_eq!(decide(&all, &manifest(), &wanted), Ok(()));
}

#[test]
fn an_unreadable_envelope_ranks_above_unsigned() {
    let (_, public) = key_pair();
    let unsigned = candidate(
        1,
        Content::Unsigned {
            media_type: PAYLOAD_TYPE.to_string(),
        },
    );
    let garbage = candidate(2, Content::Envelope(b"{not json".to_vec()));
    let r = refusal(&[unsigned, garbage], &policy(&public, None));
    assert!(matches!(r.reason, Reason::Unreadable { .. }), "{r:?}");
}
