//! Arbitrary bytes into every decoder that reads what others send us: the cty
//! msgpack and JSON codecs (Terraform's requests and stored state), the manifest
//! parsers (registries) and the image archive walker (the daemon). No input may
//! panic or allocate without bound; each must end in a value or an error.
//! `STEVEDORE_FUZZ_CASES` sets the cases per target (default 100 000), half of
//! them random bytes and half mutations (flips, truncations, splices) of valid
//! inputs, so the decoders' deeper paths are reached too.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use stevedore::value::{from_json, from_msgpack, to_msgpack, Type, Value};

fn cases() -> u32 {
    std::env::var("STEVEDORE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// The types Terraform really sends: every schema of the provider, and `dynamic`.
fn types() -> Vec<Type> {
    let mut t: Vec<Type> = stevedore::resources::resources()
        .iter()
        .map(|r| r.schema().ty())
        .collect();
    t.extend(
        stevedore::resources::data_sources()
            .iter()
            .map(|d| d.schema().ty()),
    );
    t.push(stevedore::provider::config::schema().ty());
    t.push(Type::Dynamic);
    t.push(Type::List(Box::new(Type::Map(Box::new(Type::String)))));
    t
}

/// Valid inputs to mutate: an encoding of a value of each type.
fn msgpack_seeds() -> Vec<(Vec<u8>, Type)> {
    let mut seeds = Vec::new();
    for ty in types() {
        let v = match &ty {
            Type::Object(attrs) => {
                Value::Map(attrs.keys().map(|k| (k.clone(), Value::Unknown)).collect())
            }
            Type::Dynamic => Value::Dynamic(
                Type::List(Box::new(Type::String)),
                Box::new(Value::string_list(["a", "b"])),
            ),
            _ => Value::List(vec![Value::string_map([("k", "v")])]),
        };
        if let Ok(bytes) = to_msgpack(&v, &ty) {
            seeds.push((bytes, ty));
        }
    }
    seeds
}

/// Random bytes, or a valid seed flipped, cut or spliced at random places.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let random = prop::collection::vec(any::<u8>(), 0..256);
    let n = seeds.len().max(1);
    let mutated = (
        0..n,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    )
        .prop_map(move |(i, edits, cut)| {
            let mut b = seeds.get(i).cloned().unwrap_or_default();
            for (at, byte) in edits {
                if !b.is_empty() {
                    let at = at % b.len();
                    b[at] = byte;
                }
            }
            if cut % 4 == 0 && !b.is_empty() {
                b.truncate(cut % b.len());
            }
            b
        });
    prop_oneof![random, mutated]
}

fn run(name: &str, strategy: impl Strategy<Value = Vec<u8>>, check: impl Fn(&[u8])) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |bytes| {
            check(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn msgpack_decoding_never_panics() {
    let seeds = msgpack_seeds();
    let types: Vec<Type> = seeds.iter().map(|(_, t)| t.clone()).collect();
    let bytes: Vec<Vec<u8>> = seeds.into_iter().map(|(b, _)| b).collect();
    run("msgpack", input(bytes), |b| {
        for ty in &types {
            let _ = from_msgpack(b, ty);
        }
    });
}

#[test]
fn json_state_decoding_never_panics() {
    let seeds: Vec<Vec<u8>> = vec![
        br#"{"context":"/c","tags":["a"],"build_args":{"k":"v"},"digest":null}"#.to_vec(),
        br#"{"value":["list",["string"]]}"#.to_vec(),
        br#"[1, 2.5e300, -0, "x", true, null, {"a": [[]]}]"#.to_vec(),
    ];
    let types = types();
    run("json", input(seeds), |b| {
        if let Ok(j) = serde_json::from_slice::<serde_json::Value>(b) {
            for ty in &types {
                let _ = from_json(&j, ty);
            }
        }
    });
}

#[test]
fn manifest_parsing_never_panics() {
    let seeds: Vec<Vec<u8>> = vec![
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#.to_vec(),
        br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":2},"layers":[{"digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":3}]}"#.to_vec(),
    ];
    run("manifest", input(seeds), |b| {
        if let Ok(media_type) = stevedore::oci::document::detect_media_type(b) {
            let _ = stevedore::oci::document::Manifest::parse(b, &media_type);
        }
        for mt in stevedore::registry::MANIFEST_MEDIA_TYPES {
            let _ = stevedore::oci::document::Manifest::parse(b, mt);
        }
    });
}

struct KeepAll;

impl stevedore::docker::ArchiveVisitor for KeepAll {
    fn file(
        &mut self,
        _: &str,
        _: u64,
        data: &mut dyn std::io::Read,
    ) -> Result<bool, stevedore::docker::ExportError> {
        std::io::copy(data, &mut std::io::sink()).map_err(|e| {
            stevedore::docker::ExportError::BadArchive {
                reason: e.to_string(),
            }
        })?;
        Ok(true)
    }
}

#[test]
fn archive_walking_never_panics() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", &b"[]"[..]).unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    b.append_link(&mut l, "a/layer.tar", "../blobs/sha256/x")
        .unwrap();
    let seed = b.into_inner().unwrap();
    // Fewer cases: each input is a tar of at least a few KiB.
    run("archive", input(vec![seed]), |bytes| {
        if let Ok(index) = stevedore::docker::walk_archive(bytes, &mut KeepAll) {
            let _ = stevedore::docker::image_refs(&index);
        }
    });
}
