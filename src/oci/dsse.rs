//! DSSE envelopes: the signed wrapper put around a statement about an image
//! (its provenance) so that whoever pulls the image can check who vouched
//! for it and that nobody changed a byte since.
//!
//! DSSE (<https://github.com/secure-systems-lab/dsse>, `protocol.md` and
//! `envelope.md`) signs the payload and its type together, encoded by
//! [`pae`], so a signature over one kind of document can never be passed
//! off as one over another. The keys are those of [`super::keys`]; each
//! signature names its key by [`PublicKey::key_id`].

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

pub use super::keys::{KeyAlgorithm, KeyError, PublicKey, SignError, SigningKey};

/// Why an envelope is not vouched for by a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "none of the envelope's signatures is by key {key_id} or verifies with it \
         (the signatures name keys {keyids:?})"
    )]
    NoSignatureByKey { key_id: String, keyids: Vec<String> },
    #[error(
        "the envelope's signature by key {key_id} does not verify: the payload or its type \
         changed after signing, or another key made the signature"
    )]
    DoesNotVerify { key_id: String },
}

/// Why bytes are not a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a DSSE envelope: {reason}")]
pub struct EnvelopeError {
    pub reason: String,
}

/// DSSE's pre-authentication encoding, the bytes actually signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload`, lengths in
/// bytes as ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    [head.as_bytes(), payload].concat()
}

/// A DSSE envelope. Its JSON is `{"payloadType", "payload", "signatures":
/// [{"keyid", "sig"}]}` with the bytes in standard base64; reading also
/// takes URL-safe base64 and missing padding, as the spec allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope; `keyid` is an unsigned hint, possibly
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    #[serde(default)]
    pub keyid: String,
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
}

impl Envelope {
    /// The compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, byte strings written as base64 and a list: nothing in an
        // envelope can fail to serialize.
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!())
    }

    pub fn from_json(json: &[u8]) -> Result<Envelope, EnvelopeError> {
        serde_json::from_slice(json).map_err(|e| EnvelopeError {
            reason: e.to_string(),
        })
    }
}

/// Serde for bytes as base64 text: standard on output; standard or
/// URL-safe, padded or not, on input.
mod base64_bytes {
    use super::*;

    const ANY_PADDING: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
    const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        STANDARD_LENIENT
            .decode(&text)
            .or_else(|e| URL_SAFE_LENIENT.decode(&text).map_err(|_| e))
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

impl SigningKey {
    /// An envelope holding `payload`, signed over its [`pae`] with this key
    /// and naming the key by [`PublicKey::key_id`].
    pub fn sign_envelope(
        &self,
        payload_type: &str,
        payload: Vec<u8>,
    ) -> Result<Envelope, SignError> {
        let sig = self.sign(&pae(payload_type, &payload))?;
        let keyid = self.key_id();
        let signatures = vec![Signature { keyid, sig }];
        Ok(Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures,
        })
    }
}

impl PublicKey {
    /// Ok when a signature of the envelope that names this key (or names no
    /// key) verifies over the envelope's [`pae`] with it.
    pub fn verify_envelope(&self, envelope: &Envelope) -> Result<(), VerifyError> {
        let message = pae(&envelope.payload_type, &envelope.payload);
        let key_id = self.key_id();
        let mut named = false;
        for signature in &envelope.signatures {
            if signature.keyid == key_id {
                named = true;
            } else if !signature.keyid.is_empty() {
                continue;
            }
            if self.verifies(&message, &signature.sig) {
                return Ok(());
            }
        }
        if named {
            return Err(VerifyError::DoesNotVerify { key_id });
        }
        let keyids = envelope
            .signatures
            .iter()
            .map(|s| s.keyid.clone())
            .collect();
        Err(VerifyError::NoSignatureByKey { key_id, keyids })
    }
}

#[cfg(test)]
#[path = "dsse_tests.rs"]
mod tests;
