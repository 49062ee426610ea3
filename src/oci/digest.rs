//! Content digests (`algorithm:hex`) as registries compute and name them:
//! [`Digest`] is one checked at the edge (a registry's header, a daemon's
//! answer, the configuration) and passed on as a type, so code further in
//! never wonders whether a string is one.

use std::borrow::Borrow;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use sha2::Digest as _;

/// The distribution spec's digest grammar; sha256 is further held to its
/// 64 lowercase hex digits.
static GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
        .unwrap_or_else(|_| unreachable!())
});

/// Why a text is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a digest; expected algorithm:hex, e.g. \"sha256:\" followed by 64 lowercase hex digits")]
pub struct DigestError {
    pub text: String,
}

/// A well-formed content digest, e.g. `sha256:` and 64 hex digits. It
/// compares, orders, hashes and borrows as its text, so maps keyed by
/// `Digest` are looked up with a `&str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        Digest::try_from(text.to_string())
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(sha2::Sha256::digest(bytes))
    }

    /// The digest of a finished sha256 hash (for bytes hashed as they went).
    pub fn from_sha256(hash: impl AsRef<[u8]>) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The digest of `bytes` in this digest's algorithm (to check bytes
    /// against it); `None` when the algorithm is not one we compute.
    pub fn recompute(&self, bytes: &[u8]) -> Option<Digest> {
        digest_with_algorithm(&self.0, bytes).map(Digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same digest as `oci-spec` types carry it. Every way to make a
    /// `Digest` (parse, a sha256 hash, an `oci-spec` digest) passes its
    /// parser, so this conversion cannot fail.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::try_from(self.0.as_str()).unwrap_or_else(|_| unreachable!())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(text: String) -> Result<Digest, DigestError> {
        if is_valid_digest(&text) {
            Ok(Digest(text))
        } else {
            Err(DigestError { text })
        }
    }
}

/// A digest `oci-spec` read: its parser already held it to the
/// `algorithm:encoded` grammar (and sha256 and sha512 to their lengths).
impl From<&oci_spec::image::Digest> for Digest {
    fn from(d: &oci_spec::image::Digest) -> Digest {
        Digest(d.to_string())
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Digest> for str {
    fn eq(&self, other: &Digest) -> bool {
        self == other.0
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

/// True if `text` is a well-formed `algorithm:hex` digest: the distribution
/// grammar, and what `oci-spec` holds known algorithms to (so every
/// [`Digest`] is also one of its digests, see [`Digest::to_oci`]).
pub fn is_valid_digest(text: &str) -> bool {
    if !GRAMMAR.is_match(text) || oci_spec::image::Digest::try_from(text).is_err() {
        return false;
    }
    match text.strip_prefix("sha256:") {
        Some(hex) => hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        None => true,
    }
}

/// `sha256:<hex>` of `bytes`, as text (for tests that build keys and file
/// names; the code itself takes [`Digest::sha256_of`]).
#[cfg(test)]
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).into()
}

/// The digest of `bytes` in the algorithm `like` uses; `None` if unsupported.
pub(crate) fn digest_with_algorithm(like: &str, bytes: &[u8]) -> Option<String> {
    let (algorithm, _) = like.split_once(':')?;
    let hex = match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
        "sha384" => hex::encode(sha2::Sha384::digest(bytes)),
        "sha512" => hex::encode(sha2::Sha512::digest(bytes)),
        _ => return None,
    };
    Some(format!("{algorithm}:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_the_requested_algorithm() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_with_algorithm("sha512:00", b"")
            .unwrap()
            .starts_with("sha512:cf83e135"));
        assert_eq!(digest_with_algorithm("md5:00", b""), None);
    }

    #[test]
    fn a_digest_is_checked_when_made_and_reads_as_its_text() {
        let d = Digest::sha256_of(b"");
        assert_eq!(Digest::parse(d.as_str()), Ok(d.clone()));
        assert_eq!(d, d.to_string());
        assert_eq!(d.recompute(b""), Some(d.clone()));
        for bad in ["sha256:abc", "sha256:", "latest", "SHA256:00", ""] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let long = Digest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
        assert!(long.starts_with("sha512:"));
    }

    #[test]
    fn serde_refuses_a_malformed_digest() {
        let d: Digest = serde_json::from_str(
            "\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
        )
        .unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap().len(), 73);
        assert!(serde_json::from_str::<Digest>("\"sha256:nope\"").is_err());
    }

    #[test]
    fn maps_keyed_by_digest_are_looked_up_by_text() {
        let d = Digest::sha256_of(b"x");
        let map = std::collections::BTreeMap::from([(d.clone(), 1)]);
        assert_eq!(map.get(d.as_str()), Some(&1));
    }
}
