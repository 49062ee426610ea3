//! `context_hash` throughput on ~200 MB of generated files, beside
//! `find | xargs sha256sum` over the same files. Run: `cargo bench --bench context_hash`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const BIG_FILES: usize = 180; // 1 MiB each
const SMALL_FILES: usize = 4000; // 5 KiB each, in 40 directories

fn generate(root: &Path) -> u64 {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut fill = |buf: &mut [u8]| {
        for b in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = b.len();
            b.copy_from_slice(&x.to_le_bytes()[..n]);
        }
    };
    fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let mut total = 0u64;
    let mut big = vec![0u8; 1 << 20];
    fs::create_dir_all(root.join("assets")).unwrap();
    for i in 0..BIG_FILES {
        fill(&mut big);
        fs::File::create(root.join(format!("assets/blob{i:03}.bin")))
            .unwrap()
            .write_all(&big)
            .unwrap();
        total += big.len() as u64;
    }
    let mut small = vec![0u8; 5 * 1024];
    for i in 0..SMALL_FILES {
        let dir = root.join(format!("src/mod{:02}", i % 40));
        fs::create_dir_all(&dir).unwrap();
        fill(&mut small);
        fs::write(dir.join(format!("f{i}.txt")), &small).unwrap();
        total += small.len() as u64;
    }
    total
}

fn sha256sum_all(root: &Path) -> f64 {
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg("find . -type f -print0 | xargs -0 sha256sum > /dev/null")
        .current_dir(root)
        .stdout(Stdio::null())
        .status()
        .expect("run sh");
    assert!(status.success(), "sha256sum pipeline failed");
    start.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = generate(dir.path());
    let mb = bytes as f64 / 1e6;
    // Warm the page cache for both contenders alike.
    let _ = sha256sum_all(dir.path());

    let mut best = f64::MAX;
    let mut digest = String::new();
    for _ in 0..3 {
        let start = Instant::now();
        digest =
            stevedore::docker::context_hash(dir.path(), Path::new("Dockerfile"), &BTreeMap::new())
                .unwrap();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let mut tool = f64::MAX;
    for _ in 0..3 {
        tool = tool.min(sha256sum_all(dir.path()));
    }
    println!(
        "context: {mb:.0} MB in {} files ({digest})",
        BIG_FILES + SMALL_FILES + 1
    );
    println!("context_hash:        {:>8.1} MB/s ({best:.3} s)", mb / best);
    println!("find|xargs sha256sum:{:>8.1} MB/s ({tool:.3} s)", mb / tool);
    println!("ratio context_hash / sha256sum: {:.2}x", tool / best);
}
