use super::*;

const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

type Parts<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

fn parts(r: &Reference) -> Parts<'_> {
    (
        &r.registry,
        &r.repository,
        r.tag.as_deref(),
        r.digest.as_deref(),
    )
}

#[test]
fn parses_valid_references() {
    let with_digest = format!("ghcr.io/o/r@{SHA}");
    let tag_and_digest = format!("web:1@{SHA}");
    let cases: Vec<(&str, Parts)> = vec![
        (
            "nginx",
            ("docker.io", "library/nginx", Some("latest"), None),
        ),
        (
            "nginx:1.27",
            ("docker.io", "library/nginx", Some("1.27"), None),
        ),
        (
            "bitnami/redis:7",
            ("docker.io", "bitnami/redis", Some("7"), None),
        ),
        (
            "docker.io/nginx",
            ("docker.io", "library/nginx", Some("latest"), None),
        ),
        (
            "index.docker.io/library/nginx",
            ("docker.io", "library/nginx", Some("latest"), None),
        ),
        (
            "127.0.0.1:5000/web:latest",
            ("127.0.0.1:5000", "web", Some("latest"), None),
        ),
        ("localhost/web", ("localhost", "web", Some("latest"), None)),
        (
            "localhost:5000/a/b/c:v_1.2-x",
            ("localhost:5000", "a/b/c", Some("v_1.2-x"), None),
        ),
        (
            "public.ecr.aws/docker/library/node:22-alpine",
            (
                "public.ecr.aws",
                "docker/library/node",
                Some("22-alpine"),
                None,
            ),
        ),
        (
            "[::1]:5000/web",
            ("[::1]:5000", "web", Some("latest"), None),
        ),
        (
            "reg.io/a__b/c-d/e.f--g",
            ("reg.io", "a__b/c-d/e.f--g", Some("latest"), None),
        ),
        (&with_digest, ("ghcr.io", "o/r", None, Some(SHA))),
        (
            &tag_and_digest,
            ("docker.io", "library/web", Some("1"), Some(SHA)),
        ),
    ];
    for (input, want) in cases {
        let got = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(parts(&got), want, "{input}");
    }
}

#[test]
fn rejects_invalid_references_with_helpful_messages() {
    let cases = [
        ("", "image reference is empty"),
        ("Nginx", "must be lowercase"),
        ("reg.io/Web", "must be lowercase"),
        ("reg.io/we__-b", "path component \"we__-b\""),
        ("reg.io/a//b", "empty path component"),
        ("reg.io/-web", "path component \"-web\""),
        ("web:", "invalid tag \"\""),
        ("web:.x", "invalid tag \".x\""),
        ("web@sha256:abc", "invalid digest"),
        (
            "web@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "invalid digest",
        ),
        ("bad_host.io:x/web", "invalid registry host"),
    ];
    for (input, want) in cases {
        let err = Reference::parse(input).expect_err(input).to_string();
        assert!(err.contains(want), "{input}: {err}");
        assert!(err.starts_with(|c: char| !c.is_ascii_uppercase()), "{err}");
    }
    let long = format!("reg.io/{}", "a".repeat(300));
    assert!(Reference::parse(&long).is_err());
    let long_tag = format!("web:{}", "t".repeat(129));
    assert!(Reference::parse(&long_tag).is_err());
}

#[test]
fn display_is_canonical() {
    let cases = [
        ("nginx", "docker.io/library/nginx:latest"),
        ("127.0.0.1:5000/web:latest", "127.0.0.1:5000/web:latest"),
        ("REG.io/web:v1", "reg.io/web:v1"),
    ];
    for (input, want) in cases {
        assert_eq!(Reference::parse(input).unwrap().to_string(), want);
    }
    let r = Reference::parse(&format!("ghcr.io/o/r:v1@{SHA}")).unwrap();
    assert_eq!(r.to_string(), format!("ghcr.io/o/r:v1@{SHA}"));
    assert_eq!(r.repository_reference(), "ghcr.io/o/r");
}

#[test]
fn docker_hub_requests_go_to_its_api_host() {
    assert_eq!(
        Reference::parse("nginx").unwrap().api_host(),
        "registry-1.docker.io"
    );
    assert_eq!(
        Reference::parse("ghcr.io/a/b").unwrap().api_host(),
        "ghcr.io"
    );
}

#[test]
fn parses_repositories_without_tags() {
    assert_eq!(
        parse_repository("127.0.0.1:5000/web").unwrap(),
        ("127.0.0.1:5000".to_string(), "web".to_string())
    );
    assert_eq!(
        parse_repository("nginx").unwrap(),
        ("docker.io".to_string(), "library/nginx".to_string())
    );
    for bad in ["web:latest", "127.0.0.1:5000/web:v1", &format!("web@{SHA}")] {
        let err = parse_repository(bad).expect_err(bad);
        assert!(
            matches!(err, ReferenceError::UnexpectedTagOrDigest { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn recognises_loopback_hosts() {
    for host in [
        "127.0.0.1",
        "127.0.0.1:5000",
        "127.9.8.7:1",
        "localhost",
        "LOCALHOST:5000",
        "::1",
        "[::1]",
        "[::1]:5000",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "10.0.0.1:5000",
        "example.com",
        "localhost.example.com",
        "[::2]:5000",
        "128.0.0.1",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
}
