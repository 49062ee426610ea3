//! The plugin TLS server's key: P-256 on *ring*, generated from the OS
//! generator, signing both the self-signed certificate (through rcgen) and
//! the handshake (through rustls). The provider itself is `crate::crypto`.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::sign::{Signer, SigningKey};
use rustls::{Error, SignatureAlgorithm, SignatureScheme};

/// The server's P-256 key, generated from the OS generator.
#[derive(Clone)]
pub struct ServerKey {
    pair: Arc<EcdsaKeyPair>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(ECDSA P-256, <redacted>)")
    }
}

impl ServerKey {
    pub fn generate() -> Result<ServerKey, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "the OS random generator failed".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| format!("the generated key was rejected: {e}"))?;
        Ok(ServerKey {
            pair: Arc::new(pair),
        })
    }

    fn sign_asn1(&self, message: &[u8]) -> Option<Vec<u8>> {
        let signature = self.pair.sign(&SystemRandom::new(), message).ok()?;
        Some(signature.as_ref().to_vec())
    }
}

/// rcgen signs the self-signed certificate through this.
impl rcgen::PublicKeyData for ServerKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for ServerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_asn1(msg).ok_or(rcgen::Error::RingUnspecified)
    }
}

/// rustls signs the handshake through this.
impl SigningKey for ServerKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

impl Signer for ServerKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.sign_asn1(message)
            .ok_or_else(|| Error::General("signing the TLS handshake failed".into()))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_signatures_verify_with_the_process_provider() {
        use rustls::crypto::WebPkiSupportedAlgorithms;
        let key = ServerKey::generate().unwrap();
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let signature = signer.sign(b"message").unwrap();
        let algorithms: WebPkiSupportedAlgorithms =
            crate::crypto::provider().signature_verification_algorithms;
        let point = key.pair.public_key().as_ref().to_vec();
        let verify = |message: &[u8]| {
            algorithms
                .mapping
                .iter()
                .find(|(scheme, _)| *scheme == SignatureScheme::ECDSA_NISTP256_SHA256)
                .map(|(_, algs)| {
                    algs.iter()
                        .any(|alg| alg.verify_signature(&point, message, &signature).is_ok())
                })
                .unwrap_or(false)
        };
        assert!(verify(b"message"));
        assert!(!verify(b"another message"));
        assert!(key.choose_scheme(&[SignatureScheme::ED25519]).is_none());
    }
}
