use super::*;
use crate::oci::media_types::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn docker_manifest() -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": D1,
            "size": 10,
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": D2,
            "size": 20,
        }],
    })
    .to_string()
}

fn buildx_index() -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": D1,
                "size": 1,
                "platform": {"architecture": "arm64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": D2,
                "size": 1,
                "annotations": {
                    "vnd.docker.reference.digest": D1,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
        ],
    })
    .to_string()
}

#[test]
fn detects_declared_and_implied_media_types() {
    assert_eq!(
        detect_media_type(docker_manifest().as_bytes()).unwrap(),
        DOCKER_MANIFEST
    );
    assert_eq!(
        detect_media_type(buildx_index().as_bytes()).unwrap(),
        OCI_INDEX
    );
    let bare_index = r#"{"schemaVersion":2,"manifests":[]}"#;
    assert_eq!(detect_media_type(bare_index.as_bytes()).unwrap(), OCI_INDEX);
    let bare_manifest =
        format!(r#"{{"schemaVersion":2,"config":{{"digest":"{D1}"}},"layers":[]}}"#);
    assert_eq!(
        detect_media_type(bare_manifest.as_bytes()).unwrap(),
        OCI_MANIFEST
    );
}

#[test]
fn rejects_what_it_cannot_read() {
    let cases = [
        ("{", "not valid JSON"),
        (
            r#"{"schemaVersion":1,"name":"x"}"#,
            "unsupported schemaVersion 1",
        ),
        (
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#,
            "unsupported manifest media type",
        ),
        (
            r#"{"schemaVersion":2}"#,
            "neither an image manifest nor an index",
        ),
    ];
    for (input, want) in cases {
        let err = detect_media_type(input.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(want), "{input}: {err}");
    }
}

#[test]
fn parses_images_and_indexes() {
    let image = Manifest::parse(docker_manifest().as_bytes(), DOCKER_MANIFEST).unwrap();
    let Manifest::Image(image) = image else {
        panic!("not an image")
    };
    assert_eq!(image.config().content_digest(), D1);
    assert_eq!(image.layers().len(), 1);

    let index = Manifest::parse(buildx_index().as_bytes(), OCI_INDEX).unwrap();
    let Manifest::Index(index) = index else {
        panic!("not an index")
    };
    let manifests = index.manifests();
    assert_eq!(manifests.len(), 2);
    assert!(!manifests[0].is_attestation());
    assert_eq!(
        manifests[0].image_platform().unwrap().to_string(),
        "linux/arm64"
    );
    assert!(manifests[1].is_attestation());
}

#[test]
fn recognises_attestations_by_annotation_or_unknown_platform() {
    let by_annotation: Descriptor = serde_json::from_str(&format!(
        "{{\"mediaType\":\"{OCI_MANIFEST}\",\"size\":1,\"digest\":\"{D1}\",\
         \"annotations\":{{\"vnd.docker.reference.type\":\"attestation-manifest\"}},\
         \"platform\":{{\"os\":\"linux\",\"architecture\":\"amd64\"}}}}"
    ))
    .unwrap();
    let by_platform: Descriptor = serde_json::from_str(&format!(
        concat!(
            r#"{{"mediaType":"{m}","size":1,"digest":"{d}","#,
            r#""platform":{{"os":"unknown","architecture":"unknown"}}}}"#
        ),
        m = OCI_MANIFEST,
        d = D1,
    ))
    .unwrap();
    let plain: Descriptor = serde_json::from_str(&format!(
        concat!(
            r#"{{"mediaType":"{m}","size":1,"digest":"{d}","#,
            r#""platform":{{"os":"linux","architecture":"amd64"}}}}"#
        ),
        m = OCI_MANIFEST,
        d = D1,
    ))
    .unwrap();
    assert!(by_annotation.is_attestation());
    assert!(by_platform.is_attestation());
    assert!(!plain.is_attestation());
}

#[test]
fn reads_config_platforms() {
    let config =
        ConfigPlatform::parse(br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{}}"#)
            .unwrap();
    assert_eq!(config.platform().to_string(), "linux/arm/v7");
    assert!(ConfigPlatform::parse(b"not json").is_err());
}
