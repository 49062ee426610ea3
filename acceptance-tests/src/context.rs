//! Build contexts for the tests: a new temporary directory (named
//! `stevedore-ctx…`) holding the files given, parent directories made.

use std::path::Path;

/// A context holding `files` (path inside the context → contents).
pub fn build_context(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .expect("a temporary directory");
    for (name, contents) in files {
        write(dir.path(), name, contents);
    }
    dir
}

/// Writes `contents` at `name` under `root`, making its directories.
pub fn write(root: &Path, name: &str, contents: &[u8]) {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("context directories");
    }
    std::fs::write(&path, contents).expect("a context file");
}

/// `files` files of `mb` MB of xorshift noise (incompressible, new for every `seed`) and a
/// small one, with a Dockerfile copying each into a layer of its own: the benchmarks' images.
pub fn write_random_layers(dir: &Path, seed: u64, files: usize, mb: usize) {
    use std::io::Write;
    let mut dockerfile = String::from("FROM scratch\n");
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..files {
        let name = format!("big{i}.bin");
        let file = std::fs::File::create(dir.join(&name)).expect("a context file");
        let mut f = std::io::BufWriter::new(file);
        for _ in 0..mb {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&buf).expect("a context file");
        }
        f.flush().expect("a context file");
        dockerfile.push_str(&format!("COPY {name} /data/{name}\n"));
    }
    std::fs::write(dir.join("small.txt"), format!("release {seed}\n")).expect("a context file");
    dockerfile.push_str("COPY small.txt /data/small.txt\n");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("the Dockerfile");
}

/// A seed for [`write_random_layers`] that no earlier run used: the clock in nanoseconds.
pub fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
