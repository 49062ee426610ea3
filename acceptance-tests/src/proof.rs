//! Proving what a `RUN` step saw. With nothing to pull, a `FROM scratch` build can only run
//! a static program of ours; this one writes the length and FNV-1a hash of a file (a secret
//! mount) into the image, so a test can tell which value the step read without the value
//! itself ever entering a layer.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::Registry;

/// argv[1]: file to hash; argv[2]: where to write "<len> <fnv1a-64 hex>\n"; argv[3]
/// (optional): seconds to sleep first, so concurrent builds overlap in time.
const PROOF_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (argc > 3) sleep((unsigned)atoi(argv[3]));
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "w");
    if (!in || !out) return 1;
    unsigned long long h = 14695981039346656037ULL; long n = 0; int c;
    while ((c = fgetc(in)) != EOF) { h = (h ^ (unsigned char)c) * 1099511628211ULL; n++; }
    fprintf(out, "%ld %016llx\n", n, h);
    return fclose(out);
}
"#;

/// Compiles the proof program to `dir/proof`, statically linked (the image has no libc).
/// Panics with what to install when `cc -static` cannot link.
pub fn build_proof_program(dir: &Path) {
    let src = dir.join("proof.c");
    std::fs::write(&src, PROOF_C).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-Os", "-o"])
        .arg(dir.join("proof"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cc is needed to build the static test program: {e}"));
    assert!(
        out.status.success(),
        "cc -static failed (a static libc is needed, e.g. Debian's libc6-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A build context of its own for a test whose `RUN` steps run the proof program: `proof`
/// (built here), `nonce.txt` holding the context's own path, and `dockerfile`. The nonce
/// keeps its steps its own: without it BuildKit merges identical builds of tests running at
/// the same time (both modes of one test), and reports the merged steps to one of them.
pub fn proof_context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    build_proof_program(ctx.path());
    let nonce = ctx.path().display().to_string();
    std::fs::write(ctx.path().join("nonce.txt"), nonce).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// What the proof program writes for `secret`.
pub fn proof_line(secret: &[u8]) -> String {
    let h = secret.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{} {h:016x}\n", secret.len())
}

/// Whether any layer of image manifest `digest` in repository `name` holds `needle`
/// (layers are read back from the registry and gunzipped here, not by the provider).
pub fn image_layers_contain(registry: &Registry, name: &str, digest: &str, needle: &[u8]) -> bool {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/v2/{name}/manifests/{digest}", registry.url());
    let manifest = http
        .get(&url)
        .header("accept", crate::media_types::ACCEPT_IMAGES)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layers = manifest["layers"].as_array().expect("an image manifest");
    layers.iter().any(|layer| {
        let blob = layer["digest"].as_str().unwrap();
        let url = format!("{}/v2/{name}/blobs/{blob}", registry.url());
        let gz = http.get(&url).send().unwrap().bytes().unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap_or_else(|e| panic!("layer {blob} is not gzip: {e}"));
        tar.windows(needle.len()).any(|w| w == needle)
    })
}
