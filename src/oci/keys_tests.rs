use super::*;

/// Test-only keys, made once with openssl 3.0 and used nowhere else.
/// `openssl genpkey -algorithm ed25519`: PKCS#8 v1, no public key inside.
const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJC1EIQa94xVHyZOjzd/id3Ba9QrLkIcepqIK/luJHxH
-----END PRIVATE KEY-----
";
/// Its `openssl pkey -pubout`, and `openssl pkey -pubout -outform DER | sha256sum`.
const OPENSSL_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA2x62wa5XSuI5MSJVYs3GHnqQ+eE4gIFPr/WWe+w0ik8=
-----END PUBLIC KEY-----
";
const OPENSSL_ED25519_KEY_ID: &str =
    "b787812745e3f299a5d912d26f86fccafc84e442cdc57f5bf83c206a8fd51215";

/// The key above, `openssl pkcs8 -topk8 -passout pass:test -v2 aes-256-cbc`.
const ENCRYPTED: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjNICetJ3K6pgICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEHggMnxNPmlVUqey2xOJYMgEQGup
xBUt3YWWj5HsJuHBEXN2dDJBu8QivEN70a6K0jD5KSdtC5rGxz5dStQCCAKcaotW
fUx8NMkhoD5lr/Kj/RM=
-----END ENCRYPTED PRIVATE KEY-----
";
/// `openssl ecparam -name prime256v1 -genkey -noout`: SEC1, not PKCS#8.
const SEC1_P256: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEILx0nyK77J2ibNbM9RpOlDbHy6ttsL9ldNg3yOvMUkG9oAoGCCqGSM49
AwEHoUQDQgAEs94ozwF+uLk0anSpHEtyfPoWTaHFnl1TV/l14LcV6wmP7szzbWKf
iS1Tu2y7JChFgWz84oYN0WiH7bNYlM3VrQ==
-----END EC PRIVATE KEY-----
";
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512`.
const RSA_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIBUwIBADANBgkqhkiG9w0BAQEFAASCAT0wggE5AgEAAkEApupJzC2UHtOvxmwo
1+2SuHZZKQLKmkHHgv8icprYZayaiLX0L1syulZacG57Q90PiLa55Zh7ClRmR+cu
aDM6+QIDAQABAkAV77KVL+RIjN+L/0j639Ephvw+xIwl68ExuSAo2arY6bjYMbLQ
TC/lD2tB8DBDFZu73pffe4+I4R8SvZrDyJt1AiEA2gkCXQPWuUk8tA3x/eGoG4lA
oCj75pPE7lYe6QwA10sCIQDD+paFi26Xx/hDGdTKFt03uKcPqJhyr24IOL1Rant4
SwIgE4Wy/HkXhMeV89k7zauizbRgYPbKdz7L5zs20U8N1DkCIHwitkVQ1HR/zdly
+z4mzWkGJYvdlvLN/Dxo9EIl2J+RAiASM6N1T1LwEJ/psOoq1JIwbVJXgXTjvPey
3ArohkSsOg==
-----END PRIVATE KEY-----
";
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384`.
const P384_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDdGmS+kbudcd4H7tbm
2c7LVE4m8PS964EAWdIfQMVZNGyrSKINOu+AMfHiWZR0HzuhZANiAARPowxzUeEd
nTM6Zn+kxg6ZZ9AIjJtg9HkFlKcNiuMrFbI7/7Z3KsltHR2+K/JYIsLBfgYyeNWi
/BlzywW2u8dlQTTWI+kAnArcSCyMqy+Et+IWyVl1sXDRQYZBQk0pG9Q=
-----END PRIVATE KEY-----
";
/// `openssl genpkey -algorithm ed448 | openssl pkey -pubout`.
const ED448_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MEMwBQYDK2VxAzoAOay4hfhHGEUNdbJO9R3SeraCDPP/qPwCiAM/YrZdR70lnTw7
3yU4ZFcpdAjydAJEoysUO3/e5tWA
-----END PUBLIC KEY-----
";

/// A fresh key pair of `alg` from rcgen: (private PEM, public PEM).
fn generated(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    (pair.serialize_pem(), pair.public_key_pem())
}

#[test]
fn reads_the_pkcs8_v1_ed25519_key_openssl_writes() {
    let key = SigningKey::from_pem(OPENSSL_ED25519.as_bytes()).unwrap();
    let public = PublicKey::from_pem(OPENSSL_ED25519_PUBLIC.as_bytes()).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(key.public_key(), public);
    assert_eq!(key.key_id(), OPENSSL_ED25519_KEY_ID);
    assert!(public.verifies(b"m", &key.sign(b"m").unwrap()));
}

/// The same with a key openssl makes now, where openssl is installed.
#[test]
fn reads_a_fresh_openssl_ed25519_key() {
    let Ok(out) = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519"])
        .output()
    else {
        return;
    };
    if !out.status.success() {
        return;
    }
    let key = SigningKey::from_pem(&out.stdout).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
    assert!(key.public_key().verifies(b"m", &key.sign(b"m").unwrap()));
}

#[test]
fn each_unusable_private_key_says_why() {
    let err = |pem: &str| SigningKey::from_pem(pem.as_bytes()).unwrap_err();
    assert!(matches!(err("not a key at all"), KeyError::NotPem { .. }));
    assert!(matches!(err(""), KeyError::NotPem { .. }));
    let broken = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    assert!(matches!(err(broken), KeyError::NotPem { .. }));

    assert_eq!(err(ENCRYPTED), KeyError::Encrypted);
    let sec1 = err(SEC1_P256);
    assert_eq!(
        sec1,
        KeyError::NotPkcs8 {
            found: "EC PRIVATE KEY".to_string()
        }
    );
    assert!(
        sec1.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
        "{sec1}"
    );
    let rsa_pkcs1 = RSA_PKCS8.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    assert_eq!(
        err(&rsa_pkcs1),
        KeyError::NotPkcs8 {
            found: "RSA PRIVATE KEY".to_string()
        }
    );
    assert_eq!(
        err(OPENSSL_ED25519_PUBLIC),
        KeyError::WrongBlock {
            expected: "PRIVATE KEY",
            found: "PUBLIC KEY".to_string()
        }
    );

    let rsa = err(RSA_PKCS8);
    assert_eq!(
        rsa,
        KeyError::UnsupportedAlgorithm {
            found: "RSA".to_string()
        }
    );
    assert!(
        rsa.to_string()
            .contains("ECDSA P-256 (with SHA-256) and Ed25519"),
        "{rsa}"
    );
    let p384 = err(P384_PKCS8);
    assert_eq!(
        p384,
        KeyError::UnsupportedAlgorithm {
            found: "ECDSA P-384".to_string()
        }
    );
}

#[test]
fn a_damaged_supported_key_is_malformed() {
    // A P-256 PKCS#8 whose private scalar is cut short still names its curve.
    let (private, _) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(private.as_bytes()).unwrap();
    let mut bytes = der.secret_pkcs8_der().to_vec();
    bytes.truncate(bytes.len() - 10);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&bytes)
    );
    let err = SigningKey::from_pem(pem.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::Malformed {
                algorithm: "ECDSA P-256",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn each_unusable_public_key_says_why() {
    let err = |pem: &str| PublicKey::from_pem(pem.as_bytes()).unwrap_err();
    assert!(matches!(
        err("nothing"),
        KeyError::NotPem {
            expected: "PUBLIC KEY",
            ..
        }
    ));
    assert_eq!(
        err(OPENSSL_ED25519),
        KeyError::WrongBlock {
            expected: "PUBLIC KEY",
            found: "PRIVATE KEY".to_string()
        }
    );
    assert_eq!(
        err(ED448_PUBLIC),
        KeyError::UnsupportedAlgorithm {
            found: "Ed448".to_string()
        }
    );
    let short = PublicKey::from_spki_der(&P256_SPKI_PREFIX).unwrap_err();
    assert!(matches!(
        short,
        KeyError::Malformed {
            algorithm: "ECDSA P-256",
            ..
        }
    ));
    assert!(matches!(
        PublicKey::from_spki_der(&[]),
        Err(KeyError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn the_key_id_is_the_sha256_of_the_spki() {
    let public = PublicKey::from_pem(OPENSSL_ED25519_PUBLIC.as_bytes()).unwrap();
    assert_eq!(public.key_id(), OPENSSL_ED25519_KEY_ID);
    assert_eq!(public.spki_der().len(), 44);
    assert_eq!(
        PublicKey::from_spki_der(&public.spki_der()),
        Ok(public.clone())
    );
    let (_, p256) = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    assert_eq!(
        PublicKey::from_pem(p256.as_bytes())
            .unwrap()
            .spki_der()
            .len(),
        91
    );
}

#[test]
fn debug_shows_no_key_material() {
    let key = SigningKey::from_pem(OPENSSL_ED25519.as_bytes()).unwrap();
    let shown = format!("{key:?} {:?}", key.public_key());
    assert_eq!(
        format!("{key:?}"),
        format!("SigningKey {{ algorithm: Ed25519, key_id: \"{OPENSSL_ED25519_KEY_ID}\" }}")
    );
    // Neither the private seed nor the public key, in hex or base64.
    let seed_b64 = "kLUQhBr3jFUfJk6PN3+J3cFr1CsuQhx6mogr+W4kfEc";
    let public_hex = "db1eb6c1ae574ae239312255";
    for secret in [seed_b64, "90b510841af78c55", public_hex, "2x62wa5XSuI5"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn generated_keys_sign_and_verify_and_write_back_their_pem() {
    for (alg, algorithm) in [
        (
            &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP256Sha256,
        ),
        (&rcgen::PKCS_ED25519, KeyAlgorithm::Ed25519),
    ] {
        let (private, public_pem) = generated(alg);
        let key = SigningKey::from_pem(private.as_bytes()).unwrap();
        let public = PublicKey::from_pem(public_pem.as_bytes()).unwrap();
        assert_eq!(
            (key.algorithm(), public.algorithm()),
            (algorithm, algorithm)
        );
        assert_eq!(key.public_key(), public);
        assert_eq!(public.to_pem(), public_pem.replace("\r\n", "\n"));
        let sig = key.sign(b"message").unwrap();
        assert!(public.verifies(b"message", &sig));
        assert!(!public.verifies(b"massage", &sig));
    }
}
