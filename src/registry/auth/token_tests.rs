use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn parses_the_challenges_registries_send() {
    let cases = [
        (
            concat!(
                r#"Bearer realm="https://auth.docker.io/token","#,
                r#"service="registry.docker.io",scope="repository:library/node:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            }),
        ),
        // ghcr: no service; scope lists two actions inside the quotes.
        (
            r#"Bearer realm="https://ghcr.io/token",scope="repository:o/r:pull,push""#,
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: None,
            }),
        ),
        (
            r#"bearer service="s", realm="http://127.0.0.1:1/t""#,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("s".into()),
            }),
        ),
        (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
        ("Basic", Some(Challenge::Basic)),
        (r#"Bearer service="no realm""#, None),
        ("Negotiate abc", None),
    ];
    for (header, want) in cases {
        assert_eq!(Challenge::parse(header), want, "{header}");
    }
}

#[tokio::test]
async fn one_fetch_serves_every_request_until_the_token_expires() {
    let cache = TokenCache::default();
    let fetches = AtomicUsize::new(0);
    let fetch = || async {
        fetches.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(Token::new("t1".into(), Some(300.0)))
    };
    for _ in 0..3 {
        assert_eq!(
            cache.get_or_fetch("repository:a:pull", fetch).await,
            Ok("t1".into())
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Another scope is another token.
    cache
        .get_or_fetch("repository:b:pull", fetch)
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_fetch() {
    let cache = TokenCache::default();
    let fetches = AtomicUsize::new(0);
    let (release, released) = tokio::sync::watch::channel(false);
    let fetch = || {
        let mut released = released.clone();
        let fetches = &fetches;
        async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            // Every caller is queued behind this fetch before it returns.
            let _ = released.wait_for(|r| *r).await;
            Ok::<_, ()>(Token::new("shared".into(), None))
        }
    };
    let all = futures::future::join_all((0..5).map(|_| cache.get_or_fetch("s", fetch)));
    let releaser = async {
        tokio::task::yield_now().await;
        let _ = release.send(true);
    };
    let (results, ()) = tokio::join!(all, releaser);
    assert!(results.iter().all(|r| r.as_deref() == Ok("shared")));
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn expired_refused_and_failed_tokens_are_fetched_again() {
    let cache = TokenCache::default();
    let n = AtomicUsize::new(0);
    let fetch = |lifetime: Option<f64>| {
        let n = &n;
        move || async move {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Token::new(format!("t{i}"), lifetime))
        }
    };
    // Shorter than the margin: never reused.
    assert_eq!(
        cache.get_or_fetch("s", fetch(Some(2.0))).await.unwrap(),
        "t0"
    );
    assert_eq!(
        cache.get_or_fetch("s", fetch(Some(300.0))).await.unwrap(),
        "t1"
    );
    assert_eq!(
        cache.get_or_fetch("s", fetch(Some(300.0))).await.unwrap(),
        "t1"
    );
    // A refusal of an older token keeps the newer one.
    cache.forget("s", "t0").await;
    assert_eq!(
        cache.get_or_fetch("s", fetch(Some(300.0))).await.unwrap(),
        "t1"
    );
    cache.forget("s", "t1").await;
    assert_eq!(
        cache.get_or_fetch("s", fetch(Some(300.0))).await.unwrap(),
        "t2"
    );
    let failed: Result<String, &str> = cache
        .get_or_fetch("other", || async { Err("token service down") })
        .await;
    assert_eq!(failed, Err("token service down"));
    assert_eq!(
        cache.get_or_fetch("other", fetch(None)).await.unwrap(),
        "t3"
    );
}

#[test]
fn tokens_never_show_in_debug() {
    let token = Token::new("secret-value".into(), None);
    assert!(!format!("{token:?}").contains("secret"));
}

#[test]
fn lifetimes_are_capped_and_nonsense_gets_the_default() {
    let cases = [
        (None, DEFAULT_LIFETIME),
        (Some(300.0), Duration::from_secs(300)),
        (Some(0.5), Duration::from_millis(500)),
        (Some(1e30), MAX_LIFETIME),
        (Some(u64::MAX as f64), MAX_LIFETIME),
        (Some(f64::INFINITY), MAX_LIFETIME),
        (Some(0.0), DEFAULT_LIFETIME),
        (Some(-1.0), DEFAULT_LIFETIME),
        (Some(f64::NEG_INFINITY), DEFAULT_LIFETIME),
        (Some(f64::NAN), DEFAULT_LIFETIME),
    ];
    for (expires_in, want) in cases {
        assert_eq!(lifetime(expires_in), want, "{expires_in:?}");
        // No clock arithmetic overflows, and every token serves at least its own request.
        let token = Token::new("t".into(), expires_in);
        assert!(
            token.refresh_at <= Instant::now() + MAX_LIFETIME,
            "{expires_in:?}"
        );
    }
}

#[test]
fn answers_with_huge_or_odd_lifetimes_still_give_their_token() {
    let max = u64::MAX.to_string();
    for expires_in in ["1e30", max.as_str(), "-5", "0", "299.5", "1e308"] {
        let body = format!(r#"{{"token":"t1","expires_in":{expires_in}}}"#);
        let token =
            Token::from_answer(body.as_bytes()).unwrap_or_else(|e| panic!("{expires_in}: {e}"));
        assert_eq!(token.value, "t1");
        assert!(token.fresh(), "{expires_in}");
    }
    let oauth = Token::from_answer(br#"{"access_token":"t2"}"#).unwrap();
    assert_eq!(oauth.value, "t2");
    for (body, why) in [
        (&br#"{"token":""}"#[..], "without a token"),
        (b"{}", "without a token"),
        (b"<html>", "is not a token"),
        (br#"{"token":"t","expires_in":"300"}"#, "is not a token"),
    ] {
        let err = Token::from_answer(body).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
}
