//! The front's pieces on their own, over a fake upstream, and (ignored, as every test needing
//! docker-registry) in front of a real registry.

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::json;

use super::spec::*;
use super::*;
use crate::media_types::{OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};

/// The empty config `{}`, and its digest as the image spec gives it.
const EMPTY: &[u8] = b"{}";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const SBOM: &str = "application/vnd.example.sbom+json";
const SIGNATURE: &str = "application/vnd.example.signature";

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": crate::sha256_digest(bytes), "size": bytes.len()})
}

/// An image manifest with one layer (its config is `config`).
fn image(config: &[u8], layer: &[u8]) -> Vec<u8> {
    json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    })
    .to_string()
    .into_bytes()
}

/// An artifact of `artifact_type` (none when empty) about `subject`, its one layer `layer`.
fn artifact(artifact_type: &str, subject: &[u8], layer: &[u8], annotations: Value) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_EMPTY, EMPTY),
        "layers": [descriptor("application/octet-stream", layer)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": annotations,
    });
    if !artifact_type.is_empty() {
        manifest["artifactType"] = json!(artifact_type);
    }
    manifest.to_string().into_bytes()
}

#[test]
fn routes_pick_the_referrers_api_and_manifest_writes() {
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        Route::of("GET", &format!("/v2/a/b/referrers/{d}?artifactType=x")),
        Route::Referrers {
            name: "a/b".into(),
            reference: d.clone(),
            query: "artifactType=x".into()
        }
    );
    let put = Route::of("PUT", "/v2/web/manifests/latest");
    let (name, reference) = ("web".to_string(), "latest".to_string());
    assert_eq!(put, Route::ManifestPut { name, reference });
    let delete = Route::of("DELETE", &format!("/v2/web/manifests/{d}"));
    assert!(matches!(delete, Route::ManifestDelete { .. }));
    for (method, target) in [
        ("GET", "/v2/web/manifests/latest"),
        ("HEAD", "/v2/web/referrers/x"),
        ("PUT", "/v2/web/blobs/uploads/u"),
        ("GET", "/v2/"),
        ("GET", "/v2/referrers/x"),
    ] {
        assert_eq!(
            Route::of(method, target),
            Route::Forward,
            "{method} {target}"
        );
    }
}

#[test]
fn an_artifact_put_makes_a_referrer_descriptor_as_the_spec_lists_it() {
    let subject = image(b"config", b"layer");
    let body = artifact(SBOM, &subject, b"sbom", json!({"created": "now"}));
    let seen = inspect_put("web", "sha256-x", Some(OCI_MANIFEST), &body);
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert!(seen.has_subject && !seen.fallback_tag);
    let (digest, descriptor) = seen.referrer.unwrap();
    assert_eq!(digest, crate::sha256_digest(&subject));
    let want =
        json!({"mediaType": OCI_MANIFEST, "artifactType": SBOM, "annotations": {"created": "now"}});
    assert_eq!(Value::Object(descriptor), want);
    // No artifactType: the config's media type stands in; no annotations: none listed.
    let body = artifact("", &subject, b"sbom", json!({}));
    let seen = inspect_put("web", "v1", Some(OCI_MANIFEST), &body);
    let want = json!({"mediaType": OCI_MANIFEST, "artifactType": OCI_EMPTY});
    assert_eq!(Value::Object(seen.referrer.unwrap().1), want);
    assert_eq!(seen.violations.len(), 1, "{:?}", seen.violations);
    assert!(seen.violations[0].contains("without artifactType"));
}

#[test]
fn what_a_client_gets_wrong_in_a_put_is_a_violation() {
    let subject = image(b"config", b"layer");
    let fallback = format!("sha256-{}", "0".repeat(64));
    let seen = inspect_put("web", &fallback, Some(OCI_MANIFEST), &subject);
    assert!(seen.fallback_tag && !seen.has_subject && seen.referrer.is_none());
    assert!(
        seen.violations[0].contains("fallback tag"),
        "{:?}",
        seen.violations
    );
    let docker = crate::media_types::DOCKER_MANIFEST;
    let seen = inspect_put("web", "v1", Some(docker), &subject);
    assert!(
        seen.violations[0].contains("Content-Type"),
        "{:?}",
        seen.violations
    );
    let mut body: Value =
        serde_json::from_slice(&artifact(SBOM, &subject, b"s", json!({}))).unwrap();
    body["subject"] = json!({"digest": "sha256:AB"});
    let seen = inspect_put("web", "v1", Some(OCI_MANIFEST), body.to_string().as_bytes());
    assert_eq!(seen.violations.len(), 3, "{:?}", seen.violations);
    assert!(
        seen.has_subject && seen.referrer.is_none(),
        "an invalid subject is not recorded"
    );
    let seen = inspect_put("web", "v1", None, b"not json");
    assert!(seen.violations[0].contains("not a JSON object"));
}

#[test]
fn digests_tags_queries_and_chunks_are_read_as_the_spec_spells_them() {
    let hex = "0123456789abcdef".repeat(4);
    assert!(is_digest(&format!("sha256:{hex}")));
    assert!(!is_digest(&format!("sha256:{}", hex.to_uppercase())));
    assert!(!is_digest("sha256:abc") && !is_digest(&format!("sha512:{hex}")));
    assert!(is_fallback_tag(&format!("sha256-{hex}")));
    assert!(!is_fallback_tag(&format!("sha256-{hex}.sig")));
    assert!(is_tag("latest") && is_tag("v1.2_3-x") && !is_tag(".x") && !is_tag("a:b"));
    assert_eq!(
        artifact_type_filter("n=1&artifactType=application%2Fvnd.x%2Bjson"),
        Some("application/vnd.x+json".into())
    );
    assert_eq!(artifact_type_filter("artifactType=a+b"), Some("a+b".into()));
    assert_eq!(artifact_type_filter("artifactType="), None);
    assert_eq!(artifact_type_filter(""), None);
    assert_eq!(percent_decode("%zz"), None);
    assert_eq!(
        dechunk(b"2\r\n{}\r\n3;x=y\r\nabc\r\n0\r\n\r\n"),
        Some(b"{}abc".to_vec())
    );
    assert_eq!(dechunk(b"5\r\nab"), None);
}

/// A fake registry answering one request per connection with the next of `answers`;
/// reports each request's head.
fn upstream(answers: Vec<String>) -> (String, mpsc::Receiver<Head>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let head = Head::read(&mut reader).unwrap().unwrap();
            let framing = head.framing(false, false);
            relay_body(&mut reader, &mut io::sink(), framing, None).unwrap();
            (&conn).write_all(answer.as_bytes()).unwrap();
            tx.send(head).unwrap();
        }
    });
    (address, rx)
}

/// The end of an answer's head, with no body.
const EMPTY_BODY: &str = "Content-Length: 0\r\n\r\n";

#[test]
fn over_a_fake_registry_a_put_is_answered_with_its_subject_and_listed() {
    let subject = image(b"config", b"layer");
    let body = artifact(SBOM, &subject, b"sbom", json!({}));
    let digest = crate::sha256_digest(&body);
    let (registry, received) = upstream(vec![
        format!("HTTP/1.1 201 Created\r\nDocker-Content-Digest: {digest}\r\n{EMPTY_BODY}"),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_string(),
        format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n{EMPTY_BODY}"),
    ]);
    let front = ReferrersFront::in_front_of(&registry);
    let base = format!("http://{}", front.host());
    let client = Client::new();
    let put = client
        .put(format!("{base}/v2/web/manifests/{digest}"))
        .header(CONTENT_TYPE, OCI_MANIFEST)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    let subject_digest = crate::sha256_digest(&subject);
    assert_eq!(put.headers()["oci-subject"], subject_digest.as_str());
    assert!(received
        .recv()
        .unwrap()
        .start
        .starts_with("PUT /v2/web/manifests/"));
    let list = format!("{base}/v2/web/referrers/{subject_digest}");
    let index = json_of(client.get(&list).send().unwrap());
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(index["manifests"][0]["size"], body.len());
    let asked = received.recv().unwrap();
    assert_eq!(
        asked.start, "GET /v2/web/tags/list?n=1 HTTP/1.1",
        "the access check"
    );
    let refused = client.get(&list).send().unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Basic realm=\"r\"");
    assert_eq!((front.subject_puts(), front.referrers_gets()), (1, 2));
    assert_eq!(front.violations(), Vec::<String>::new());
}

fn json_of(answer: Response) -> Value {
    serde_json::from_str(&answer.text().unwrap()).unwrap()
}

#[test]
fn a_chunked_put_is_read_for_its_subject_and_forwarded_as_it_came() {
    let subject = image(b"config", b"layer");
    let body = artifact(SBOM, &subject, b"sbom", json!({}));
    let digest = crate::sha256_digest(&body);
    let answer = format!("HTTP/1.1 201 Created\r\nDocker-Content-Digest: {digest}\r\n{EMPTY_BODY}");
    let (registry, received) = upstream(vec![answer]);
    let front = ReferrersFront::in_front_of(&registry);
    let (first, rest) = body.split_at(10);
    let mut put = format!(
        "PUT /v2/web/manifests/v1 HTTP/1.1\r\nHost: h\r\nContent-Type: {OCI_MANIFEST}\r\n\
         Transfer-Encoding: chunked\r\n\r\na\r\n"
    )
    .into_bytes();
    put.extend_from_slice(first);
    put.extend_from_slice(format!("\r\n{:x}\r\n", rest.len()).as_bytes());
    put.extend_from_slice(rest);
    put.extend_from_slice(b"\r\n0\r\n\r\n");
    let conn = TcpStream::connect(front.host()).unwrap();
    (&conn).write_all(&put).unwrap();
    let answer = Head::read(&mut BufReader::new(&conn)).unwrap().unwrap();
    assert_eq!(answer.status(), 201);
    let subject = crate::sha256_digest(&subject);
    assert_eq!(answer.header("oci-subject"), Some(subject.as_str()));
    let head = received.recv().unwrap();
    assert_eq!(
        head.header("transfer-encoding"),
        Some("chunked"),
        "the framing is kept"
    );
    assert_eq!(front.referrers("web", &subject)[0]["size"], body.len());
}

/// Uploads `bytes` to `name` through `base` (monolithically); its digest.
fn push_blob(client: &Client, base: &str, name: &str, bytes: &[u8]) -> String {
    let digest = crate::sha256_digest(bytes);
    let started = client
        .post(format!("{base}/v2/{name}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(location.contains(base), "{location} names the front");
    let put = client
        .put(format!("{location}&digest={digest}"))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    digest
}

fn put_manifest(
    client: &Client,
    base: &str,
    path: &str,
    media_type: &str,
    body: &[u8],
) -> Response {
    client
        .put(format!("{base}/v2/{path}"))
        .header(CONTENT_TYPE, media_type)
        .body(body.to_vec())
        .send()
        .unwrap()
}

/// The subject image and two artifacts about it pushed to `web` through the front; the
/// image's digest, and the artifacts'.
fn push_image_and_artifacts(base: &str) -> (String, String, String) {
    let client = Client::new();
    assert_eq!(push_blob(&client, base, "web", EMPTY), EMPTY_DIGEST);
    for blob in [&b"config"[..], b"layer", b"sbom", b"signature"] {
        push_blob(&client, base, "web", blob);
    }
    let subject = image(b"config", b"layer");
    let pushed = put_manifest(&client, base, "web/manifests/v1", OCI_MANIFEST, &subject);
    assert_eq!(pushed.status(), 201);
    assert!(
        pushed.headers().get("oci-subject").is_none(),
        "an image with no subject"
    );
    let sbom = artifact(SBOM, &subject, b"sbom", json!({"org.example.kind": "sbom"}));
    let signature = artifact(SIGNATURE, &subject, b"signature", json!({}));
    let mut digests = Vec::new();
    for body in [sbom, signature] {
        let digest = crate::sha256_digest(&body);
        let path = format!("web/manifests/{digest}");
        let pushed = put_manifest(&client, base, &path, OCI_MANIFEST, &body);
        assert_eq!(pushed.status(), 201);
        assert_eq!(
            pushed.headers()["oci-subject"],
            crate::sha256_digest(&subject).as_str()
        );
        digests.push(digest);
    }
    let signature = digests.pop().unwrap();
    (
        crate::sha256_digest(&subject),
        digests.pop().unwrap(),
        signature,
    )
}

fn get(url: &str) -> (u16, Option<String>, Value) {
    let mut answer = Client::new().get(url).send().unwrap();
    let filtered = answer.headers().get("oci-filters-applied");
    let filtered = filtered.map(|v| v.to_str().unwrap().to_string());
    let mut body = String::new();
    answer.read_to_string(&mut body).unwrap();
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    (answer.status().as_u16(), filtered, body)
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_real_registry_gains_a_referrers_list_that_filters_and_forgets() {
    let registry = Registry::start();
    let front = ReferrersFront::start(&registry);
    let base = format!("http://{}", front.host());
    let (subject, sbom, signature) = push_image_and_artifacts(&base);
    let list = format!("{base}/v2/web/referrers/{subject}");
    let (status, filtered, index) = get(&list);
    assert_eq!((status, filtered), (200, None));
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed = index["manifests"].as_array().unwrap();
    let digests: Vec<_> = listed
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [sbom.as_str(), signature.as_str()]);
    assert_eq!(listed[0]["artifactType"], SBOM);
    assert_eq!(
        listed[0]["annotations"],
        json!({"org.example.kind": "sbom"})
    );
    assert!(listed[1].get("annotations").is_none(), "{}", listed[1]);
    let (_, filtered, index) = get(&format!(
        "{list}?artifactType=application%2Fvnd.example.signature"
    ));
    assert_eq!(filtered.as_deref(), Some("artifactType"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], signature.as_str());
    let unknown = format!("{base}/v2/web/referrers/sha256:{}", "0".repeat(64));
    assert_eq!(
        get(&unknown).2["manifests"],
        json!([]),
        "no referrers: an empty index"
    );
    let (status, _, error) = get(&format!("{base}/v2/web/referrers/v1"));
    assert_eq!(
        (status, &error["errors"][0]["code"]),
        (400, &json!("DIGEST_INVALID"))
    );
    let deleted = Client::new()
        .delete(format!("{base}/v2/web/manifests/{sbom}"))
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 202);
    assert_eq!(
        front.referrers("web", &subject).len(),
        1,
        "the deleted one is dropped"
    );
    assert_eq!((front.subject_puts(), front.fallback_tag_puts()), (2, 0));
    assert_eq!(front.referrers_gets(), 4);
    assert_eq!(front.violations().len(), 1, "{:?}", front.violations());
    assert!(front.violations()[0].contains("is a tag"));
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn fallback_tags_and_mislabelled_manifests_are_violations_against_a_real_registry() {
    let registry = Registry::start();
    let front = ReferrersFront::start(&registry);
    let base = format!("http://{}", front.host());
    let (subject, _, _) = push_image_and_artifacts(&base);
    let client = Client::new();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    let tag = subject.replace(':', "-");
    let path = format!("web/manifests/{tag}");
    let pushed = put_manifest(
        &client,
        &base,
        &path,
        OCI_INDEX,
        index.to_string().as_bytes(),
    );
    assert_eq!(pushed.status(), 201, "the registry takes the tag");
    let body = artifact(SBOM, &image(b"config", b"layer"), b"sbom", json!({}));
    let docker = crate::media_types::DOCKER_MANIFEST;
    let refused = put_manifest(&client, &base, "web/manifests/mislabelled", docker, &body);
    assert_eq!(
        refused.status(),
        400,
        "distribution refuses an OCI body labelled Docker"
    );
    assert_eq!(front.fallback_tag_puts(), 1);
    let violations = front.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("fallback tag") && violations[1].contains("Content-Type"));
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn the_referrers_list_needs_the_credentials_the_registry_needs() {
    let registry = Registry::with_auth("alice", "secret");
    let front = ReferrersFront::start(&registry);
    let list = format!("http://{}/v2/web/referrers/{EMPTY_DIGEST}", front.host());
    let refused = Client::new().get(&list).send().unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = Client::new().get(&list).basic_auth("alice", Some("nope"));
    assert_eq!(wrong.send().unwrap().status(), 401);
    let listed = Client::new().get(&list).basic_auth("alice", Some("secret"));
    let index = json_of(listed.send().unwrap());
    assert_eq!(index["manifests"], json!([]));
}
