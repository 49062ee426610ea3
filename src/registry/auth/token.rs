//! The registry's auth challenge and the bearer tokens it leads to, for the
//! read and push paths: a host's challenge is learnt from its first 401 and kept for
//! the process, and a token is fetched once per scope and reused until
//! shortly before it expires, however many requests need it at once.
//!
//! Why our own: oci-client asks `GET /v2/` before every request on a
//! registry that needs no token (it caches only tokens it got), and fetches
//! a token per request when several start together. Tokens live in memory
//! only, and their `Debug` never shows them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a registry's `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send basic credentials with every request.
    Basic,
    /// Trade credentials for a token at `realm` (the distribution token spec).
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`;
    /// `None` for schemes we do not speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let realm = params.get("realm")?.clone();
        if realm.is_empty() {
            return None;
        }
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        })
    }
}

/// `key="value",key=value` pairs; commas inside quotes (scopes list several
/// actions) belong to the value.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        out.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A token as the token service answered it.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    /// When to stop using it: a few seconds before the service said it expires.
    pub refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The distribution token spec's default when `expires_in` is absent.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token is kept, whatever the service says: far longer than
/// any run, and small enough that no clock arithmetic can overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
const MARGIN: Duration = Duration::from_secs(5);

/// How long a token the service says lives `expires_in` seconds lives.
/// Absent, zero, negative or not a number: the spec's default, as the
/// Docker client does (a token already expired is refused with a 401, and
/// the refusal fetches a new one). Huge values are capped at [`MAX_LIFETIME`].
pub fn lifetime(expires_in: Option<f64>) -> Duration {
    match expires_in {
        Some(secs) if secs > 0.0 => {
            Duration::try_from_secs_f64(secs).map_or(MAX_LIFETIME, |d| d.min(MAX_LIFETIME))
        }
        _ => DEFAULT_LIFETIME,
    }
}

impl Token {
    /// A token the service says lives `expires_in` seconds from now.
    pub fn new(value: String, expires_in: Option<f64>) -> Token {
        // A lifetime shorter than the margin is used once, for this request.
        let usable = lifetime(expires_in).saturating_sub(MARGIN);
        let now = Instant::now();
        Token {
            value,
            refresh_at: now.checked_add(usable).unwrap_or(now),
        }
    }

    /// The token in a token service's answer (`token`, or OAuth2's
    /// `access_token`) and its lifetime; `Err` says what is wrong with it.
    pub fn from_answer(body: &[u8]) -> Result<Token, String> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            /// Any JSON number: services answer fractions and absurdly large values too.
            expires_in: Option<f64>,
        }
        let parsed: Answer = serde_json::from_slice(body)
            .map_err(|e| format!("the token service's answer is not a token: {e}"))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or("the token service answered without a token")?;
        Ok(Token::new(value, parsed.expires_in))
    }

    fn fresh(&self) -> bool {
        Instant::now() < self.refresh_at
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Tokens by scope for one host.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache(<redacted>)")
    }
}

impl TokenCache {
    /// The cached token for `scope`, or the one `fetch` gets. Callers asking
    /// for the same scope at once wait for one fetch rather than each making
    /// their own; a failed fetch is not cached.
    pub async fn get_or_fetch<E, F, Fut>(&self, scope: &str, fetch: F) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, E>>,
    {
        let slot = self.slot(scope);
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref().filter(|t| t.fresh()) {
            return Ok(token.value.clone());
        }
        let token = fetch().await?;
        let value = token.value.clone();
        *held = Some(token);
        Ok(value)
    }

    /// Drops the token for `scope` if it is still `refused`: the registry
    /// refused it, so the next request fetches a new one. A token another
    /// request already replaced is kept.
    pub async fn forget(&self, scope: &str, refused: &str) {
        let slot = self.slot(scope);
        let mut held = slot.lock().await;
        if held.as_ref().is_some_and(|t| t.value == refused) {
            *held = None;
        }
    }

    /// Drops every token (the credential they were fetched with changed).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn slot(&self, scope: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(scope.to_string()).or_default().clone()
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
