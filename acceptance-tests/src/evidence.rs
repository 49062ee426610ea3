//! Reading and checking supply-chain evidence the way a security team would, with tools that
//! are not the provider's: signing keys made by `openssl`, DSSE envelopes and in-toto
//! statements checked by `scripts/verify_provenance.py` (Python's `cryptography`), and the
//! registry's documents read over plain HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::Value;

use crate::media_types::ACCEPT_ALL;
use crate::tools::{system, tools_dir, SETUP_HINT};
use crate::Registry;

/// A key pair on disk: a PKCS#8 private key and its SubjectPublicKeyInfo.
pub struct KeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
}

/// `openssl genpkey` of `algorithm` (`ec` for P-256 or `ed25519`) into `dir`.
pub fn make_keys(dir: &Path, name: &str, algorithm: &str) -> KeyPair {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let mut genpkey = Command::new(system("openssl"));
    genpkey.arg("genpkey").arg("-out").arg(&private);
    match algorithm {
        "ec" => genpkey.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        _ => genpkey.args(["-algorithm", algorithm]),
    };
    let made = genpkey.output().expect("openssl runs");
    assert!(made.status.success(), "openssl genpkey: {made:?}");
    let pubout = Command::new(system("openssl"))
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .expect("openssl runs");
    assert!(pubout.status.success(), "openssl pkey -pubout: {pubout:?}");
    KeyPair { private, public }
}

/// `GET /v2/<name>/<what>` (a manifest or a blob): status and bytes.
pub fn get(registry: &Registry, name: &str, what: &str) -> (u16, Vec<u8>) {
    let response = registry
        .request(Method::GET, &format!("/v2/{name}/{what}"))
        .header("Accept", ACCEPT_ALL)
        .send()
        .expect("the registry answers");
    let status = response.status().as_u16();
    (
        status,
        response.bytes().map(|b| b.to_vec()).unwrap_or_default(),
    )
}

/// A manifest as JSON; panics unless the registry serves it.
pub fn manifest(registry: &Registry, name: &str, reference: &str) -> Value {
    let (status, bytes) = get(registry, name, &format!("manifests/{reference}"));
    assert_eq!(
        status,
        200,
        "{name}:{reference}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).expect("a manifest is JSON")
}

/// The entries of the `sha256-<hex>` referrers index of `subject`; empty when there is none.
pub fn fallback_entries(registry: &Registry, name: &str, subject: &str) -> Vec<Value> {
    let tag = subject.replacen(':', "-", 1);
    let (status, bytes) = get(registry, name, &format!("manifests/{tag}"));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{name}:{tag}");
    let index: Value = serde_json::from_slice(&bytes).expect("an index");
    assert_eq!(index["mediaType"], crate::media_types::OCI_INDEX, "{index}");
    index["manifests"].as_array().cloned().unwrap_or_default()
}

/// The one layer of artifact manifest `digest`, as bytes.
pub fn artifact_layer(registry: &Registry, name: &str, digest: &str) -> (Value, Vec<u8>) {
    let artifact = manifest(registry, name, digest);
    let layer = artifact["layers"][0]["digest"]
        .as_str()
        .expect("one layer")
        .to_string();
    let (status, bytes) = get(registry, name, &format!("blobs/{layer}"));
    assert_eq!(status, 200, "blob {layer}");
    (artifact, bytes)
}

/// Runs `verify_provenance.py` on an envelope: `Ok` with its output when it says OK.
pub fn verify(
    public_key: &Path,
    envelope: &[u8],
    subject: &str,
    builder_prefix: &str,
) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("envelope.json");
    std::fs::write(&file, envelope).expect("write the envelope");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/verify_provenance.py");
    let python = tools_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: {SETUP_HINT}",
        python.display()
    );
    let out = Command::new(python)
        .arg(script)
        .arg("--public-key")
        .arg(public_key)
        .arg("--envelope")
        .arg(&file)
        .args([
            "--subject-digest",
            subject,
            "--builder-prefix",
            builder_prefix,
        ])
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Lists, as a referrer of `subject` in repository `name`, a provenance statement about
/// `named` (another digest) signed with `key` by `openssl dgst`, as a forger who holds the key
/// but not the image would. Returns the artifact's digest.
pub fn forge_provenance(
    registry: &Registry,
    name: &str,
    subject: &str,
    named: &str,
    key: &KeyPair,
) -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let statement = serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": named.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {"buildType": "https://example.com/forged", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://github.com/stevedore/terraform-provider-stevedore@0#builder=default"}},
        },
    }))
    .unwrap();
    let payload_type = crate::media_types::IN_TOTO;
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);
    let dir = tempfile::tempdir().unwrap();
    let (message, signature) = (dir.path().join("pae"), dir.path().join("sig"));
    std::fs::write(&message, &pae).unwrap();
    let signed = Command::new(system("openssl"))
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key.private)
        .arg("-out")
        .arg(&signature)
        .arg(&message)
        .output()
        .unwrap();
    assert!(signed.status.success(), "openssl dgst -sign: {signed:?}");
    let spki = Command::new(system("openssl"))
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&key.public)
        .output()
        .unwrap();
    let key_id = crate::sha256_digest(&spki.stdout)
        .trim_start_matches("sha256:")
        .to_string();
    let envelope = serde_json::to_vec(&serde_json::json!({
        "payloadType": payload_type,
        "payload": b64(&statement),
        "signatures": [{"keyid": key_id, "sig": b64(&std::fs::read(&signature).unwrap())}],
    }))
    .unwrap();
    let uploader = crate::push::Uploader::new(registry);
    let empty = uploader.blob(name, b"{}");
    let layer = uploader.blob(name, &envelope);
    let (_, subject_bytes) = get(registry, name, &format!("manifests/{subject}"));
    let subject_manifest: Value = serde_json::from_slice(&subject_bytes).unwrap();
    let artifact = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::media_types::OCI_MANIFEST,
        "artifactType": payload_type,
        "config": {"mediaType": crate::media_types::OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": layer,
                    "size": envelope.len()}],
        "subject": {"mediaType": subject_manifest["mediaType"], "digest": subject,
                    "size": subject_bytes.len()},
    }))
    .unwrap();
    let digest = crate::sha256_digest(&artifact);
    uploader.manifest(name, &digest, crate::media_types::OCI_MANIFEST, &artifact);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::media_types::OCI_INDEX,
        "manifests": [{"mediaType": crate::media_types::OCI_MANIFEST, "digest": digest,
                       "size": artifact.len(), "artifactType": payload_type}],
    }))
    .unwrap();
    let tag = subject.replacen(':', "-", 1);
    uploader.manifest(name, &tag, crate::media_types::OCI_INDEX, &index);
    digest
}
