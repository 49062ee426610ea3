//! Signing keys: what signs and verifies the evidence published about an
//! image (DSSE envelopes are signed with them). Two algorithms, the ones signing tools
//! (cosign, in-toto, openssl) agree on and *ring* does natively: ECDSA
//! P-256 with SHA-256 and Ed25519. Keys are read from PEM as openssl writes
//! them: PKCS#8 private keys, SubjectPublicKeyInfo public keys. When a key
//! cannot be used, the error says what it is and how to convert it, since
//! the user holds a file and rarely knows its format.
//!
//! PEM is read with `rustls_pki_types::pem` (its default `alloc` feature is
//! on here), so there is no PEM decoder of our own.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use sha2::Digest as _;

/// What a `"-----BEGIN PRIVATE KEY-----"` block must be labelled.
const PRIVATE_LABEL: &str = "PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// The DER of a P-256 SubjectPublicKeyInfo before the key itself:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING of 66
/// bytes }. With the 65-byte uncompressed point after it, 91 bytes in all.
/// Only two algorithms are accepted and each has exactly one DER form, so
/// comparing bytes recognises them without an ASN.1 parser.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P256_POINT_LEN: usize = 65;

/// The same for Ed25519: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING of
/// 33 bytes }, then the 32-byte key; 44 bytes in all.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const ED25519_KEY_LEN: usize = 32;

/// Algorithm identifiers (DER-encoded OIDs) a rejected key may carry, to
/// say in an error what the key is. Curves come before the generic EC OID.
const KNOWN_OIDS: &[(&[u8], &str)] = &[
    (b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", "ECDSA P-256"),
    (b"\x06\x05\x2b\x81\x04\x00\x22", "ECDSA P-384"),
    (b"\x06\x05\x2b\x81\x04\x00\x23", "ECDSA P-521"),
    (b"\x06\x05\x2b\x81\x04\x00\x0a", "ECDSA secp256k1"),
    (
        b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01",
        "EC on another curve",
    ),
    (b"\x06\x03\x2b\x65\x70", "Ed25519"),
    (b"\x06\x03\x2b\x65\x71", "Ed448"),
    (b"\x06\x03\x2b\x65\x6e", "X25519"),
    (b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", "RSA"),
    (b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a", "RSA-PSS"),
    (b"\x06\x07\x2a\x86\x48\xce\x38\x04\x01", "DSA"),
];

/// The signature algorithms a key may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 over SHA-256; signatures are ASN.1 DER.
    EcdsaP256Sha256,
    /// Ed25519; signatures are the raw 64 bytes.
    Ed25519,
}

impl KeyAlgorithm {
    /// The name errors and logs use, as `KNOWN_OIDS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256Sha256 => "ECDSA P-256",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a PEM text gives no key we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not PEM text with a \"-----BEGIN {expected}-----\" block: {reason}")]
    NotPem {
        expected: &'static str,
        reason: String,
    },
    #[error("expected a \"-----BEGIN {expected}-----\" block but the PEM holds {found:?}")]
    WrongBlock {
        expected: &'static str,
        found: String,
    },
    #[error(
        "the private key is {found:?}, not PKCS#8 (\"PRIVATE KEY\"); {}",
        conversion_hint(found)
    )]
    NotPkcs8 { found: String },
    #[error(
        "the private key is encrypted (\"ENCRYPTED PRIVATE KEY\"), which is not supported since \
         nothing could ask for its passphrase; decrypt it with \
         `openssl pkcs8 -topk8 -nocrypt -in KEY.pem -out KEY.pkcs8.pem`"
    )]
    Encrypted,
    #[error("the key is {found}; supported are ECDSA P-256 (with SHA-256) and Ed25519")]
    UnsupportedAlgorithm { found: String },
    #[error("the {algorithm} key is malformed: {reason}")]
    Malformed {
        algorithm: &'static str,
        reason: String,
    },
}

/// How to turn a private key of the given PEM label into PKCS#8.
fn conversion_hint(label: &str) -> &'static str {
    if label == "OPENSSH PRIVATE KEY" {
        "convert it with `ssh-keygen -p -N '' -m PKCS8 -f KEY` (rewrites the file in place)"
    } else {
        "convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY.pem -out KEY.pkcs8.pem`"
    }
}

/// Why signing failed: *ring* reports no detail (in practice, the system's
/// random generator was unavailable for an ECDSA nonce).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing with the {algorithm} key {key_id} failed")]
pub struct SignError {
    pub algorithm: KeyAlgorithm,
    pub key_id: String,
}

/// A private key to sign with. Its `Debug` shows the algorithm
/// and key id only, never the key.
pub struct SigningKey {
    pair: KeyPair,
    public: PublicKey,
}

enum KeyPair {
    EcdsaP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// Reads an unencrypted PKCS#8 PEM private key (`openssl genpkey` and
    /// `openssl pkcs8 -topk8 -nocrypt` write these), ECDSA P-256 or
    /// Ed25519. Ed25519 keys are accepted in PKCS#8 v1 (no public key inside,
    /// as openssl writes them) and v2.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, KeyError> {
        let der = match PrivatePkcs8KeyDer::from_pem_slice(pem) {
            Ok(der) => der,
            Err(pem::Error::NoItemsFound) => return Err(missing_private_block(pem)),
            Err(e) => return Err(not_pem(PRIVATE_LABEL, &e)),
        };
        let pair = key_pair_from_pkcs8(der.secret_pkcs8_der())?;
        let public = match &pair {
            KeyPair::EcdsaP256(p) => PublicKey::new(KeyAlgorithm::EcdsaP256Sha256, p.public_key()),
            KeyPair::Ed25519(p) => PublicKey::new(KeyAlgorithm::Ed25519, p.public_key()),
        };
        Ok(SigningKey { pair, public })
    }

    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm
    }

    /// The key id of its public key (see [`PublicKey::key_id`]).
    pub fn key_id(&self) -> String {
        self.public.key_id()
    }

    /// Signs `message`: an ASN.1 DER signature over its SHA-256 (ECDSA) or
    /// the raw 64 bytes (Ed25519).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.pair {
            KeyPair::EcdsaP256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError {
                    algorithm: self.algorithm(),
                    key_id: self.key_id(),
                }),
            KeyPair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// Tries each supported algorithm; *ring* parses the PKCS#8 and refuses
/// what is not its own. Only when both refuse is the key looked at, to say
/// what it is.
fn key_pair_from_pkcs8(der: &[u8]) -> Result<KeyPair, KeyError> {
    let p256 = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let ecdsa_refusal = match EcdsaKeyPair::from_pkcs8(p256, der, &SystemRandom::new()) {
        Ok(pair) => return Ok(KeyPair::EcdsaP256(pair)),
        Err(e) => e,
    };
    let ed25519_refusal = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        Ok(pair) => return Ok(KeyPair::Ed25519(pair)),
        Err(e) => e,
    };
    let (algorithm, refusal) = match algorithm_named_in(der) {
        Some("ECDSA P-256") => ("ECDSA P-256", ecdsa_refusal),
        Some("Ed25519") => ("Ed25519", ed25519_refusal),
        other => return Err(unsupported(other)),
    };
    Err(KeyError::Malformed {
        algorithm,
        reason: format!("the PKCS#8 was refused ({refusal})"),
    })
}

/// The error for a text holding no `PRIVATE KEY` block, by what it holds.
fn missing_private_block(pem: &[u8]) -> KeyError {
    let labels = pem_labels(pem);
    if labels.iter().any(|l| l == ENCRYPTED_LABEL) {
        return KeyError::Encrypted;
    }
    if let Some(found) = labels.iter().find(|l| l.ends_with(PRIVATE_LABEL)) {
        return KeyError::NotPkcs8 {
            found: found.clone(),
        };
    }
    missing_block(PRIVATE_LABEL, labels)
}

fn missing_block(expected: &'static str, labels: Vec<String>) -> KeyError {
    match labels.into_iter().next() {
        Some(found) => KeyError::WrongBlock { expected, found },
        None => KeyError::NotPem {
            expected,
            reason: "there is no \"-----BEGIN ...-----\" line".to_string(),
        },
    }
}

fn not_pem(expected: &'static str, error: &pem::Error) -> KeyError {
    KeyError::NotPem {
        expected,
        reason: error.to_string(),
    }
}

fn unsupported(name: Option<&str>) -> KeyError {
    KeyError::UnsupportedAlgorithm {
        found: name.unwrap_or("of an algorithm not recognised").to_string(),
    }
}

/// The labels of the PEM blocks in `pem` (`EC PRIVATE KEY`, ...), in
/// order, including those the PEM reader does not know. Each is cut to 40
/// characters so a garbled file is not echoed at length.
fn pem_labels(pem: &[u8]) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN ";
    let text = String::from_utf8_lossy(pem);
    let mut labels = Vec::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find(BEGIN) {
        rest = &rest[at + BEGIN.len()..];
        let line = rest.lines().next().unwrap_or_default();
        let label = line.split("-----").next().unwrap_or_default();
        labels.push(label.chars().take(40).collect());
    }
    labels
}

/// What algorithm a DER key names, by the first known OID found in it.
fn algorithm_named_in(der: &[u8]) -> Option<&'static str> {
    KNOWN_OIDS
        .iter()
        .find(|(oid, _)| der.windows(oid.len()).any(|w| w == *oid))
        .map(|(_, name)| *name)
}

/// A public key to verify signatures with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    /// The key as *ring* takes it: the uncompressed point (P-256) or the 32
    /// bytes (Ed25519).
    raw: Vec<u8>,
}

impl PublicKey {
    fn new(algorithm: KeyAlgorithm, raw: &impl AsRef<[u8]>) -> PublicKey {
        PublicKey {
            algorithm,
            raw: raw.as_ref().to_vec(),
        }
    }

    /// Reads a `"-----BEGIN PUBLIC KEY-----"` PEM (SubjectPublicKeyInfo) of
    /// an ECDSA P-256 or Ed25519 key, as `openssl pkey -pubout` writes it.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, KeyError> {
        match SubjectPublicKeyInfoDer::from_pem_slice(pem) {
            Ok(der) => PublicKey::from_spki_der(der.as_ref()),
            Err(pem::Error::NoItemsFound) => Err(missing_block(PUBLIC_LABEL, pem_labels(pem))),
            Err(e) => Err(not_pem(PUBLIC_LABEL, &e)),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo of an ECDSA P-256 key (uncompressed
    /// point) or an Ed25519 key. The point is not checked to be on the curve
    /// here; a key that is not would verify nothing.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let p256_len = P256_SPKI_PREFIX.len() + P256_POINT_LEN;
        let ed25519_len = ED25519_SPKI_PREFIX.len() + ED25519_KEY_LEN;
        if let Some(point) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            if der.len() == p256_len && point.first() == Some(&0x04) {
                return Ok(PublicKey::new(KeyAlgorithm::EcdsaP256Sha256, &point));
            }
        }
        if let Some(key) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            if der.len() == ed25519_len {
                return Ok(PublicKey::new(KeyAlgorithm::Ed25519, &key));
            }
        }
        match algorithm_named_in(der) {
            Some(algorithm @ ("ECDSA P-256" | "Ed25519")) => Err(KeyError::Malformed {
                algorithm,
                reason: format!(
                    "its SubjectPublicKeyInfo is not the one DER form accepted ({p256_len} bytes \
                     with an uncompressed point for P-256, {ed25519_len} for Ed25519)"
                ),
            }),
            other => Err(unsupported(other)),
        }
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        let prefix: &[u8] = match self.algorithm {
            KeyAlgorithm::EcdsaP256Sha256 => &P256_SPKI_PREFIX,
            KeyAlgorithm::Ed25519 => &ED25519_SPKI_PREFIX,
        };
        [prefix, &self.raw].concat()
    }

    /// The `"-----BEGIN PUBLIC KEY-----"` PEM, lines of 64 characters.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(self.spki_der());
        let mut pem = format!("-----BEGIN {PUBLIC_LABEL}-----\n");
        for (i, c) in body.chars().enumerate() {
            if i > 0 && i % 64 == 0 {
                pem.push('\n');
            }
            pem.push(c);
        }
        pem.push_str(&format!("\n-----END {PUBLIC_LABEL}-----\n"));
        pem
    }

    /// The key's id, put in each signature's `keyid`: the lowercase hex
    /// sha256 of the DER SubjectPublicKeyInfo. It depends on the key alone
    /// (not on a file name or a PEM's line breaks), and anyone holding the
    /// public key recomputes it with `openssl pkey -pubin -outform DER |
    /// sha256sum`.
    pub fn key_id(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.spki_der()))
    }

    /// True when `sig` is this key's signature over `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::Ed25519 => &signature::ED25519,
        };
        UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(message, sig)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
