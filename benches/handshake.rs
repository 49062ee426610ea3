//! Provider start-to-handshake time: how long Terraform waits for the plugin
//! process each time it starts one (several times per command). Measured
//! with AutoMTLS on, as Terraform runs it: key generation is part of the cost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn client_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
    params.self_signed(&key).expect("cert").pem()
}

fn once(bin: &str, pem: Option<&str>) -> Duration {
    let mut cmd = Command::new(bin);
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match pem {
        Some(p) => cmd.env("PLUGIN_CLIENT_CERT", p),
        None => cmd.env_remove("PLUGIN_CLIENT_CERT"),
    };
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("handshake");
    let took = t0.elapsed();
    assert!(line.starts_with("1|6|unix|"), "bad handshake {line:?}");
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "{name:<28} n={:<3} median {:>6.2} ms  mean {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms",
        v.len(),
        ms(v[v.len() / 2]),
        mean,
        ms(v[v.len() * 95 / 100]),
        ms(v[v.len() - 1])
    );
}

fn main() {
    let bin = std::env::var("STEVEDORE_PROVIDER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_terraform-provider-stevedore").to_string());
    let pem = client_pem();
    let n = 40;
    once(&bin, Some(&pem)); // warm the page cache
    report(
        "handshake (mTLS)",
        (0..n).map(|_| once(&bin, Some(&pem))).collect(),
    );
    report(
        "handshake (plaintext)",
        (0..n).map(|_| once(&bin, None)).collect(),
    );
}
