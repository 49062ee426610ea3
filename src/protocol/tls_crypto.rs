//! The process's TLS crypto, for the plugin's TLS server and (installed as
//! rustls's process default) every client: registries, the Docker daemon.
//! Every operation that needs randomness (the server key, the certificate's
//! signature, key shares, handshake signatures, hello randoms) runs on
//! *ring*, whose generator is the OS's (`getrandom`); aws-lc only verifies
//! signatures and runs the cipher suites.
//!
//! Why: the first random byte aws-lc hands out in a process seeds its DRBG
//! tree from CPU jitter entropy, which took 25-60 ms, and Terraform starts the
//! provider three times per plan: in the server it was half of start-up, in
//! a client the first HTTPS hello of every refresh (even the probe that finds
//! a registry speaks plain HTTP) waited for it. *ring* cannot verify
//! Terraform's ECDSA P-521/SHA-512 client certificate, so verification stays
//! on aws-lc; verifying takes no randomness, so it never triggers that
//! seeding.

use std::sync::Arc;

use ring::agreement;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SharedSecret, SupportedKxGroup,
};
use rustls::sign::{Signer, SigningKey};
use rustls::{Error, NamedGroup, PeerMisbehaved, SignatureAlgorithm, SignatureScheme};

/// The provider for the plugin's TLS server and the process default:
/// aws-lc's cipher suites (which take no randomness) and signature
/// verification, *ring*'s key exchange and the OS generator for everything
/// else.
pub fn provider() -> CryptoProvider {
    let aws = rustls::crypto::aws_lc_rs::default_provider();
    CryptoProvider {
        kx_groups: vec![&X25519, &SECP256R1, &SECP384R1],
        secure_random: &OsRandom,
        ..aws
    }
}

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

/// rustls's own randomness (hello randoms), from the OS.
#[derive(Debug)]
struct OsRandom;

impl rustls::crypto::SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        SystemRandom::new().fill(buf).map_err(|_| GetRandomFailed)
    }
}

/// An ephemeral key-exchange group on *ring*, as rustls's own ring provider
/// defines them (its `ring` feature is off: with both providers compiled in,
/// rustls no longer picks a process default and other crates would panic).
struct KxGroup {
    name: NamedGroup,
    algorithm: &'static agreement::Algorithm,
    /// The shape TLS requires of the peer's share (uncompressed points only).
    valid_share: fn(&[u8]) -> bool,
}

impl std::fmt::Debug for KxGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.name.fmt(f)
    }
}

static X25519: KxGroup = KxGroup {
    name: NamedGroup::X25519,
    algorithm: &agreement::X25519,
    valid_share: |share| share.len() == 32,
};

static SECP256R1: KxGroup = KxGroup {
    name: NamedGroup::secp256r1,
    algorithm: &agreement::ECDH_P256,
    valid_share: uncompressed_point,
};

static SECP384R1: KxGroup = KxGroup {
    name: NamedGroup::secp384r1,
    algorithm: &agreement::ECDH_P384,
    valid_share: uncompressed_point,
};

fn uncompressed_point(share: &[u8]) -> bool {
    share.first() == Some(&0x04)
}

impl SupportedKxGroup for KxGroup {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let private =
            agreement::EphemeralPrivateKey::generate(self.algorithm, &SystemRandom::new())
                .map_err(|_| GetRandomFailed)?;
        let public = private.compute_public_key().map_err(|_| GetRandomFailed)?;
        Ok(Box::new(KeyExchange {
            name: self.name,
            algorithm: self.algorithm,
            valid_share: self.valid_share,
            private,
            public,
        }))
    }

    fn name(&self) -> NamedGroup {
        self.name
    }
}

struct KeyExchange {
    name: NamedGroup,
    algorithm: &'static agreement::Algorithm,
    valid_share: fn(&[u8]) -> bool,
    private: agreement::EphemeralPrivateKey,
    public: agreement::PublicKey,
}

impl ActiveKeyExchange for KeyExchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if !(self.valid_share)(peer) {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let peer = agreement::UnparsedPublicKey::new(self.algorithm, peer);
        agreement::agree_ephemeral(self.private, &peer, |secret: &[u8]| {
            SharedSecret::from(secret)
        })
        .map_err(|_| PeerMisbehaved::InvalidKeyShare.into())
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_ref()
    }

    fn group(&self) -> NamedGroup {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_agrees_with_itself() {
        for group in [&X25519, &SECP256R1, &SECP384R1] {
            let a = group.start().unwrap();
            let b = group.start().unwrap();
            let b_share = b.pub_key().to_vec();
            let a_secret = a.complete(&b_share).unwrap();
            assert!(a_secret.secret_bytes().len() >= 32, "{group:?}");
        }
    }

    #[test]
    fn malformed_shares_are_refused() {
        let exchange = SECP256R1.start().unwrap();
        assert!(exchange.complete(&[0x02; 33]).is_err(), "compressed point");
        let exchange = X25519.start().unwrap();
        assert!(exchange.complete(&[1; 31]).is_err(), "short share");
    }

    #[test]
    fn handshake_signatures_verify_with_aws_lc() {
        use rustls::crypto::WebPkiSupportedAlgorithms;
        let key = ServerKey::generate().unwrap();
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let signature = signer.sign(b"message").unwrap();
        let algorithms: WebPkiSupportedAlgorithms = provider().signature_verification_algorithms;
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
