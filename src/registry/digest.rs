//! Content digests as registries compute them (`algorithm:hex`); used by
//! the read path, the push path and the content cache alike.

use sha2::Digest as _;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
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
}
