//! Reading an answer's body whole, up to a limit: manifests, token answers
//! and error envelopes are small, and a larger one is refused rather than held.

use super::error::error_chain;

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    /// More than the caller allows: the answer is wrong, asking again won't help.
    #[error("the answer is larger than the {limit} bytes allowed")]
    TooLarge { limit: usize },
    /// The connection broke off.
    #[error("reading the answer: {0}")]
    Broken(String),
}

/// The body of `answer`, refused once it passes `limit` bytes.
pub(super) async fn read_limited(
    mut answer: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if answer
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| BodyError::Broken(error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
