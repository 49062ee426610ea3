//! Amazon ECR credentials: a GetAuthorizationToken call whose token is
//! base64 `AWS:<password>`, cached until shortly before it expires (12 hours
//! by default) so one Terraform run does not call ECR for every request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use regex::Regex;
use tokio::sync::Mutex;

use super::{AuthError, Credential};
use crate::aws::AwsSettings;

/// Refresh this long before ECR says the token expires, so a request started
/// just before expiry still carries a valid token.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Used when ECR (or an emulator) omits `expiresAt`.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(60 * 60);

// A literal pattern covered by the unit tests below.
static ECR_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::[0-9]+)?$",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// True for `<account>.dkr.ecr.<region>.amazonaws.com` (and `.com.cn`).
pub fn is_ecr_host(host: &str) -> bool {
    ecr_region(host).is_some()
}

/// The region named in an ECR host.
fn ecr_region(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    ECR_HOST
        .captures(&host)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// How long one GetAuthorizationToken call (credential resolution included)
/// may take before the request needing it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One host's token and when to refresh it; locked across a refresh, so
/// concurrent first requests for that host share one call.
type Slot = Arc<Mutex<Option<(Credential, SystemTime)>>>;

/// ECR tokens by host, shared by all requests of one registry client. Each
/// host has its own lock: a slow call for one registry holds up no other.
#[derive(Default)]
pub struct EcrTokenCache {
    hosts: std::sync::Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for EcrTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcrTokenCache(<redacted>)")
    }
}

impl EcrTokenCache {
    /// A cached token for `host`, or a fresh one from ECR.
    pub async fn get(&self, host: &str, aws: &AwsSettings) -> Result<Credential, AuthError> {
        // Boxed: the SDK call's future is deep enough to overflow the
        // compiler's layout recursion once nested in every caller's future.
        self.get_with(host, CALL_TIMEOUT, || Box::pin(fetch(host, aws)))
            .await
    }

    /// [`EcrTokenCache::get`] with the call to ECR and its time limit given.
    async fn get_with<F, Fut>(
        &self,
        host: &str,
        limit: Duration,
        call: F,
    ) -> Result<Credential, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Credential, SystemTime), AuthError>>,
    {
        let slot = self.slot(host);
        let mut cached = slot.lock().await;
        if let Some((credential, refresh_at)) = cached.as_ref() {
            if SystemTime::now() < *refresh_at {
                return Ok(credential.clone());
            }
        }
        let (credential, expires_at) =
            tokio::time::timeout(limit, call())
                .await
                .map_err(|_| AuthError::Ecr {
                    host: host.into(),
                    detail: format!(
                        "GetAuthorizationToken did not answer within {} s",
                        limit.as_secs_f32()
                    ),
                })??;
        let refresh_at = expires_at.checked_sub(EXPIRY_MARGIN).unwrap_or(expires_at);
        *cached = Some((credential.clone(), refresh_at));
        Ok(credential)
    }

    fn slot(&self, host: &str) -> Slot {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.entry(host.to_string()).or_default().clone()
    }

    /// Forgets the token for `host`, so the next `get` asks ECR again: the
    /// registry refused it (it can lapse during a long push, or the clock lies).
    pub async fn invalidate(&self, host: &str) {
        *self.slot(host).lock().await = None;
    }
}

async fn fetch(host: &str, aws: &AwsSettings) -> Result<(Credential, SystemTime), AuthError> {
    let fail = |detail: String| AuthError::Ecr {
        host: host.into(),
        detail,
    };
    let mut settings = aws.clone();
    // A token is only valid in the region of the registry it is for.
    if let Some(region) = ecr_region(host) {
        settings.region = Some(region);
    }
    let client = crate::aws::ecr_client(&settings).await;
    let output = client.get_authorization_token().send().await.map_err(|e| {
        fail(format!(
            "{}; check the AWS credentials and the ecr:GetAuthorizationToken permission",
            crate::aws::sdk_error_text(&e)
        ))
    })?;
    let data = output
        .authorization_data()
        .first()
        .ok_or_else(|| fail("ECR returned no authorization data".into()))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| fail("ECR returned no authorization token".into()))?;
    let credential = decode_token(token)
        .ok_or_else(|| fail("ECR returned a token that is not base64 user:password".into()))?;
    let expires_at = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or_else(|| SystemTime::now() + ASSUMED_LIFETIME);
    Ok((credential, expires_at))
}

fn decode_token(token: &str) -> Option<Credential> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credential::Basic {
        username: username.into(),
        password: password.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ecr_hosts_and_their_region() {
        let cases = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                Some("us-east-1"),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                Some("cn-north-1"),
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                Some("us-gov-west-1"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443",
                Some("eu-west-1"),
            ),
            ("public.ecr.aws", None),
            ("12345.dkr.ecr.us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io", None),
        ];
        for (host, want) in cases {
            assert_eq!(ecr_region(host).as_deref(), want, "{host}");
        }
    }

    #[test]
    fn decodes_tokens() {
        // base64("AWS:pass:word")
        assert_eq!(
            decode_token("QVdTOnBhc3M6d29yZA=="),
            Some(Credential::Basic {
                username: "AWS".into(),
                password: "pass:word".into()
            })
        );
        assert_eq!(decode_token("not base64!"), None);
    }

    #[tokio::test]
    async fn invalidate_forgets_only_that_host() {
        let cache = EcrTokenCache::default();
        let cred = Credential::Basic {
            username: "AWS".into(),
            password: "p".into(),
        };
        let later = SystemTime::now() + Duration::from_secs(3600);
        for host in ["a.example", "b.example"] {
            *cache.slot(host).lock().await = Some((cred.clone(), later));
        }
        cache.invalidate("a.example").await;
        assert!(cache.slot("a.example").lock().await.is_none());
        assert!(cache.slot("b.example").lock().await.is_some());
    }

    #[tokio::test]
    async fn cached_tokens_are_reused_until_the_margin() {
        let cache = EcrTokenCache::default();
        let cred = Credential::Basic {
            username: "AWS".into(),
            password: "p".into(),
        };
        let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let later = SystemTime::now() + Duration::from_secs(3600);
        *cache.slot(host).lock().await = Some((cred.clone(), later));
        // No AWS call happens: the cached token is still fresh.
        assert_eq!(
            cache.get(host, &AwsSettings::default()).await.unwrap(),
            cred
        );
    }

    fn token(password: &str) -> (Credential, SystemTime) {
        let cred = Credential::Basic {
            username: "AWS".into(),
            password: password.into(),
        };
        (cred, SystemTime::now() + Duration::from_secs(3600))
    }

    /// While one host's call hangs (holding that host's lock), another host
    /// gets its token; the hung call then fails at its time limit, naming the
    /// host, and the next request for that host calls ECR again.
    #[tokio::test]
    async fn a_hung_call_holds_up_only_its_host_and_times_out() {
        let cache = std::sync::Arc::new(EcrTokenCache::default());
        let (entered_tx, entered) = tokio::sync::oneshot::channel();
        let hung = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_with("a.example", Duration::from_millis(200), || async move {
                        let _ = entered_tx.send(());
                        std::future::pending().await
                    })
                    .await
            })
        };
        entered.await.unwrap();
        let other = cache
            .get_with("b.example", Duration::from_secs(5), || async {
                Ok(token("b"))
            })
            .await;
        assert_eq!(other.unwrap(), token("b").0, "b waited for a's call");
        assert!(!hung.is_finished(), "a's call is still running");
        match hung.await.unwrap() {
            Err(AuthError::Ecr { host, detail }) => {
                assert_eq!(host, "a.example");
                assert!(detail.contains("did not answer within"), "{detail}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        let again = cache
            .get_with("a.example", Duration::from_secs(5), || async {
                Ok(token("a"))
            })
            .await;
        assert_eq!(again.unwrap(), token("a").0);
    }

    /// Concurrent first requests for one host share one call.
    #[tokio::test]
    async fn concurrent_first_requests_for_a_host_share_one_call() {
        let cache = EcrTokenCache::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let call = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(token("p"))
        };
        let limit = Duration::from_secs(5);
        let (one, two) = tokio::join!(
            cache.get_with("a.example", limit, call),
            cache.get_with("a.example", limit, call)
        );
        assert_eq!(one.unwrap(), two.unwrap());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
