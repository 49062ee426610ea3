//! Helpers for the `require_provenance` tests: signing keys, SLSA
//! statements, and pushing a statement (signed or not) as an OCI 1.1
//! referrer of a manifest, as stevedore_image_build publishes provenance.
#![allow(dead_code)]

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, MediaType};
use stevedore::oci::dsse::SigningKey;
use stevedore::oci::intoto::{self, ProvenanceFacts};
use stevedore::oci::{Digest, Reference};
use stevedore::registry::assemble::{artifact_manifest, ArtifactLayer, EMPTY_CONFIG};
use stevedore::registry::RegistryClient;
use tokio_util::sync::CancellationToken;

pub const BUILDER: &str = "https://github.com/acme/builder@v1#builder=default";

/// A fresh ECDSA P-256 key pair: the signing key and its public PEM.
pub fn key_pair() -> (SigningKey, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signing = SigningKey::from_pem(pair.serialize_pem().as_bytes()).unwrap();
    (signing, pair.public_key_pem())
}

/// An SLSA provenance statement about `subject`, built by `builder`.
pub fn statement(repo: &Reference, subject: &Digest, builder: &str) -> Vec<u8> {
    let at = time::OffsetDateTime::from_unix_timestamp(1_796_637_600).unwrap();
    let facts = ProvenanceFacts {
        subject_name: repo.repository_reference(),
        subject_digest: subject.to_string(),
        dockerfile: "Dockerfile".to_string(),
        target: None,
        platform: "linux/amd64".to_string(),
        build_args: BTreeMap::new(),
        labels: BTreeMap::new(),
        context_hash: Digest::sha256_of(b"context").to_string(),
        secret_ids: Vec::new(),
        base_images: Vec::new(),
        builder_id: builder.to_string(),
        builder_version: BTreeMap::new(),
        invocation_id: "c0ffee".to_string(),
        started_on: at,
        finished_on: at,
    };
    intoto::statement(&facts).unwrap()
}

/// What the referrer's one layer holds.
pub enum Evidence<'a> {
    /// The statement in a DSSE envelope signed by the key.
    Signed(&'a SigningKey, Vec<u8>),
    /// The statement itself.
    Unsigned(Vec<u8>),
}

/// Pushes `evidence` as an in-toto artifact whose subject is `subject` (a
/// manifest of `repo`); returns the artifact's digest.
pub async fn push_provenance(
    client: &RegistryClient,
    repo: &Reference,
    subject: &Digest,
    evidence: Evidence<'_>,
) -> Digest {
    let (media_type, bytes) = match evidence {
        Evidence::Signed(key, statement) => {
            let envelope = key.sign_envelope(intoto::PAYLOAD_TYPE, statement).unwrap();
            (intoto::DSSE_MEDIA_TYPE, envelope.to_json())
        }
        Evidence::Unsigned(statement) => (intoto::PAYLOAD_TYPE, statement),
    };
    let pusher = client.pusher(CancellationToken::new());
    let layer_digest = pusher.push_blob_bytes(repo, &bytes).await.unwrap();
    pusher.push_blob_bytes(repo, EMPTY_CONFIG).await.unwrap();
    let fetched = client
        .get_manifest(&repo.with_digest(subject))
        .await
        .unwrap();
    let subject_descriptor = Descriptor::new(
        MediaType::from(fetched.media_type.as_str()),
        fetched.bytes.len() as u64,
        subject.to_oci(),
    );
    let layer = ArtifactLayer {
        media_type: media_type.to_string(),
        digest: layer_digest,
        size: bytes.len() as u64,
        annotations: BTreeMap::from([(
            intoto::PREDICATE_TYPE_ANNOTATION.to_string(),
            intoto::SLSA_PROVENANCE_V1.to_string(),
        )]),
    };
    let artifact = artifact_manifest(
        intoto::PAYLOAD_TYPE,
        &layer,
        &subject_descriptor,
        &BTreeMap::new(),
    );
    let mut entry = Descriptor::new(
        MediaType::from(artifact.media_type),
        artifact.bytes.len() as u64,
        artifact.digest.to_oci(),
    );
    entry.set_artifact_type(Some(MediaType::from(intoto::PAYLOAD_TYPE)));
    pusher
        .push_referrer(repo, &artifact, subject, &entry)
        .await
        .unwrap();
    artifact.digest
}
