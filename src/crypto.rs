//! The process's TLS crypto: rustls's *ring* provider, for the plugin's TLS
//! server and (installed as the process default) every client: registries,
//! the Docker daemon, AWS. One backend for the whole binary: *ring* builds
//! from Rust and a little C/assembly with any `cc`, where aws-lc needs its
//! own C library compiled for the host and again, through zig, for each
//! static release target.
//!
//! *ring* verifies every signature TLS needs here but one: ECDSA P-521 with
//! SHA-512, the curve of the client certificate Terraform's go-plugin
//! generates for each run (`ecdsa.GenerateKey(elliptic.P521(), …)`). That
//! one algorithm is added from RustCrypto's `p521` (pure Rust, verify
//! only). Randomness (keys, key shares, hello randoms, signatures) is
//! *ring*'s, straight from the OS generator.

use std::sync::{Arc, OnceLock};

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm,
};
use rustls::SignatureScheme;

/// The provider: *ring*'s, verifying ECDSA P-521/SHA-512 too.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        signature_verification_algorithms: *algorithms(),
        ..rustls::crypto::ring::default_provider()
    }
}

/// The provider as rustls's process default (once; later calls keep it).
pub fn install_default() -> Arc<CryptoProvider> {
    let _ = provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(provider()))
}

/// *ring*'s verification algorithms with P-521 added, built once: rustls
/// takes them as `'static` slices.
fn algorithms() -> &'static WebPkiSupportedAlgorithms {
    static ALGORITHMS: OnceLock<WebPkiSupportedAlgorithms> = OnceLock::new();
    ALGORITHMS.get_or_init(|| {
        let ring = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let mut all = ring.all.to_vec();
        all.push(P521_SHA512);
        let mut mapping = ring.mapping.to_vec();
        mapping.push((SignatureScheme::ECDSA_NISTP521_SHA512, P521_ONLY));
        WebPkiSupportedAlgorithms {
            all: Vec::leak(all),
            mapping: Vec::leak(mapping),
        }
    })
}

static P521_SHA512: &dyn SignatureVerificationAlgorithm = &EcdsaP521Sha512;
static P521_ONLY: &[&dyn SignatureVerificationAlgorithm] = &[P521_SHA512];

/// ECDSA on P-521 with SHA-512: a SEC1 public key, a DER signature.
#[derive(Debug)]
struct EcdsaP521Sha512;

impl SignatureVerificationAlgorithm for EcdsaP521Sha512 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p521::ecdsa::signature::Verifier as _;
        let key =
            p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature =
            p521::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA512
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p521_signatures_verify_and_others_do_not() {
        use p521::ecdsa::signature::Signer as _;
        // A scalar below the curve's order (P-521's leading byte is at most 1).
        let mut secret = [7u8; 66];
        secret[0] = 0;
        let key = p521::ecdsa::SigningKey::from_slice(&secret).unwrap();
        let public = p521::ecdsa::VerifyingKey::from(&key)
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let signature: p521::ecdsa::Signature = key.sign(b"message");
        let der = signature.to_der();
        let alg = EcdsaP521Sha512;
        assert!(alg
            .verify_signature(&public, b"message", der.as_bytes())
            .is_ok());
        assert!(alg
            .verify_signature(&public, b"another", der.as_bytes())
            .is_err());
        assert!(alg
            .verify_signature(&public[1..], b"message", der.as_bytes())
            .is_err());
        let schemes: Vec<_> = provider()
            .signature_verification_algorithms
            .mapping
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
    }
}
