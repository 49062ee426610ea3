use super::*;

const TYPE: &str = "application/vnd.in-toto+json";

/// A fresh key pair of `alg` from rcgen: (private PEM, public PEM).
fn generated(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    (pair.serialize_pem(), pair.public_key_pem())
}

fn signed_round_trip(private_pem: &str, public_pem: &str, algorithm: KeyAlgorithm) {
    let key = SigningKey::from_pem(private_pem.as_bytes()).unwrap();
    let public = PublicKey::from_pem(public_pem.as_bytes()).unwrap();
    assert_eq!(key.algorithm(), algorithm);
    assert_eq!(key.public_key(), public);
    assert_eq!(public.to_pem(), public_pem.replace("\r\n", "\n"));

    let envelope = key.sign_envelope(TYPE, b"{\"a\":1}".to_vec()).unwrap();
    assert_eq!(envelope.signatures.len(), 1);
    assert_eq!(envelope.signatures[0].keyid, public.key_id());
    public.verify_envelope(&envelope).unwrap();

    let read = Envelope::from_json(&envelope.to_json()).unwrap();
    assert_eq!(read, envelope);
    public.verify_envelope(&read).unwrap();
}

#[test]
fn ecdsa_p256_signs_and_verifies() {
    let (private, public) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    signed_round_trip(&private, &public, KeyAlgorithm::EcdsaP256Sha256);
    let key = SigningKey::from_pem(private.as_bytes()).unwrap();
    let envelope = key.sign_envelope(TYPE, b"x".to_vec()).unwrap();
    assert_eq!(envelope.signatures[0].sig[0], 0x30, "an ASN.1 DER SEQUENCE");
}

#[test]
fn ed25519_signs_and_verifies() {
    let (private, public) = generated(&rcgen::PKCS_ED25519);
    signed_round_trip(&private, &public, KeyAlgorithm::Ed25519);
    let key = SigningKey::from_pem(private.as_bytes()).unwrap();
    let envelope = key.sign_envelope(TYPE, b"x".to_vec()).unwrap();
    assert_eq!(envelope.signatures[0].sig.len(), 64);
}

#[test]
fn pae_matches_the_dsse_example() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    // Lengths count bytes, not characters.
    assert_eq!(pae("é", "ü".as_bytes()), "DSSEv1 2 é 2 ü".as_bytes());
}

#[test]
fn envelope_json_has_the_dsse_shape() {
    let envelope = Envelope {
        payload_type: TYPE.to_string(),
        payload: b"hello world".to_vec(),
        signatures: vec![Signature {
            keyid: "k".to_string(),
            sig: vec![0xfb, 0xff],
        }],
    };
    assert_eq!(
        String::from_utf8(envelope.to_json()).unwrap(),
        r#"{"payloadType":"application/vnd.in-toto+json","payload":"aGVsbG8gd29ybGQ=","#
            .to_string()
            + r#""signatures":[{"keyid":"k","sig":"+/8="}]}"#
    );
    // URL-safe base64, no padding and no keyid are read too.
    let lenient =
        br#"{"payloadType":"t","payload":"aGVsbG8gd29ybGQ","signatures":[{"sig":"-_8"}]}"#;
    let read = Envelope::from_json(lenient).unwrap();
    assert_eq!(read.payload, b"hello world");
    assert_eq!(
        read.signatures[0],
        Signature {
            keyid: String::new(),
            sig: vec![0xfb, 0xff]
        }
    );
    for bad in [
        &b"{}"[..],
        br#"{"payloadType":"t","payload":"%%","signatures":[]}"#,
        b"[",
    ] {
        assert!(Envelope::from_json(bad).is_err());
    }
}

#[test]
fn a_changed_payload_or_type_does_not_verify() {
    let (private, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let key = SigningKey::from_pem(private.as_bytes()).unwrap();
    let envelope = key.sign_envelope(TYPE, b"{\"a\":1}".to_vec()).unwrap();
    let expected = Err(VerifyError::DoesNotVerify {
        key_id: key.key_id(),
    });

    let mut tampered = envelope.clone();
    tampered.payload = b"{\"a\":2}".to_vec();
    assert_eq!(key.public_key().verify_envelope(&tampered), expected);

    let mut retyped = envelope.clone();
    retyped.payload_type = "text/plain".to_string();
    assert_eq!(key.public_key().verify_envelope(&retyped), expected);
}

#[test]
fn another_key_does_not_verify() {
    let (one, _) = generated(&rcgen::PKCS_ED25519);
    let (other, _) = generated(&rcgen::PKCS_ED25519);
    let signer = SigningKey::from_pem(one.as_bytes()).unwrap();
    let other = SigningKey::from_pem(other.as_bytes()).unwrap().public_key();
    let mut envelope = signer.sign_envelope(TYPE, b"x".to_vec()).unwrap();
    assert_eq!(
        other.verify_envelope(&envelope),
        Err(VerifyError::NoSignatureByKey {
            key_id: other.key_id(),
            keyids: vec![signer.key_id()],
        })
    );
    // Claiming the other key's id does not make the signature verify with it.
    envelope.signatures[0].keyid = other.key_id();
    assert_eq!(
        other.verify_envelope(&envelope),
        Err(VerifyError::DoesNotVerify {
            key_id: other.key_id()
        })
    );
}

#[test]
fn an_unnamed_signature_is_tried_and_others_are_skipped() {
    let (private, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let key = SigningKey::from_pem(private.as_bytes()).unwrap();
    let mut envelope = key.sign_envelope(TYPE, b"x".to_vec()).unwrap();
    let good = envelope.signatures[0].clone();
    envelope.signatures = vec![
        Signature {
            keyid: "someone-else".to_string(),
            sig: vec![1, 2, 3],
        },
        Signature {
            keyid: String::new(),
            sig: good.sig,
        },
    ];
    key.public_key().verify_envelope(&envelope).unwrap();
    envelope.signatures.clear();
    assert!(matches!(
        key.public_key().verify_envelope(&envelope),
        Err(VerifyError::NoSignatureByKey { .. })
    ));
}
