use std::io::Read;

use super::*;
use crate::docker::{walk_archive, SMALL_ENTRY};

fn sha(bytes: &[u8]) -> String {
    crate::oci::digest::sha256_digest(bytes)
}

/// Noise that gzip cannot shrink, so sizes stay distinct.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// What the uploads received: per streamed job its bytes and final word.
#[derive(Debug, Default)]
struct Received {
    streamed: Vec<(Vec<u8>, Option<String>)>,
    small: Vec<(String, String, Vec<u8>)>,
}

/// Walks `tar` with a visitor for `wanted`, uploads played by a thread that
/// keeps what it is sent.
fn run(tar: Vec<u8>, wanted: Wanted) -> (Visitor, Received) {
    let (tx, mut rx) = mpsc::channel(4);
    let consumer = std::thread::spawn(move || {
        let mut got = Received::default();
        while let Some(job) = rx.blocking_recv() {
            match job {
                Job::Streamed { blob, .. } => {
                    let StreamedBlob { mut pieces, digest } = blob;
                    let mut bytes = Vec::new();
                    while let Some(p) = pieces.blocking_recv() {
                        bytes.extend_from_slice(&p);
                    }
                    got.streamed.push((
                        bytes,
                        digest.blocking_recv().ok().flatten().map(String::from),
                    ));
                }
                Job::Small {
                    diff_id,
                    digest,
                    gz,
                } => got.small.push((diff_id, digest.to_string(), gz)),
            }
        }
        got
    });
    let mut visitor = Visitor::new(wanted, tx, CancellationToken::new());
    walk_archive(tar.as_slice(), &mut visitor).unwrap();
    let Visitor {
        wanted,
        jobs,
        cancel,
        seen,
        scheduled,
        missed,
        timing,
        next_upload,
    } = visitor;
    drop(jobs);
    let got = consumer.join().unwrap();
    let visitor = Visitor {
        wanted,
        jobs: mpsc::channel(1).0,
        cancel,
        seen,
        scheduled,
        missed,
        timing,
        next_upload,
    };
    (visitor, got)
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

const BIG: usize = SMALL_ENTRY as usize + 100_000;

#[test]
fn a_needed_large_layer_is_gzipped_and_streamed_with_its_digests() {
    let layer = noise(BIG, 7);
    let wanted = Wanted {
        needed: [sha(&layer)].into(),
        ..Wanted::default()
    };
    let (v, got) = run(archive(&[("abc/layer.tar", &layer)]), wanted);
    assert_eq!(got.streamed.len(), 1);
    let (gz, digest) = &got.streamed[0];
    assert_eq!(gunzip(gz), layer);
    assert_eq!(
        digest.as_deref(),
        Some(sha(gz).as_str()),
        "completed with the gzip's digest"
    );
    let seen = &v.seen["abc/layer.tar"];
    assert_eq!(seen.diff_id, sha(&layer));
    assert_eq!(seen.diff_size, layer.len() as u64);
    assert_eq!(seen.blob, Some((Digest::sha256_of(gz), gz.len() as u64)));
    assert!(v.missed.is_empty());
}

#[test]
fn a_present_layer_recognised_by_size_is_hashed_not_compressed() {
    let present = noise(BIG, 11);
    let wanted = Wanted {
        present: [sha(&present)].into(),
        present_sizes: [present.len() as u64].into(),
        ..Wanted::default()
    };
    let (v, got) = run(archive(&[("p/layer.tar", &present)]), wanted);
    assert!(
        got.streamed.is_empty() && got.small.is_empty(),
        "nothing sent"
    );
    assert_eq!(v.seen["p/layer.tar"].diff_id, sha(&present));
    assert_eq!(v.seen["p/layer.tar"].blob, None);
}

#[test]
fn a_needed_layer_of_a_present_layers_size_is_missed_for_another_pass() {
    let present = noise(BIG, 13);
    let needed = noise(BIG, 17);
    let wanted = Wanted {
        needed: [sha(&needed)].into(),
        present: [sha(&present)].into(),
        present_sizes: [BIG as u64].into(),
    };
    let (v, got) = run(archive(&[("n/layer.tar", &needed)]), wanted);
    assert!(got.streamed.is_empty());
    assert_eq!(v.missed, [sha(&needed)].into());
    assert!(!v.seen.contains_key("n/layer.tar"));
}

#[test]
fn a_large_file_that_is_no_wanted_layer_is_abandoned() {
    let other = noise(BIG, 19);
    let (v, got) = run(archive(&[("x/layer.tar", &other)]), Wanted::default());
    assert_eq!(got.streamed.len(), 1, "streamed speculatively");
    assert_eq!(got.streamed[0].1, None, "then abandoned");
    assert!(v.seen.is_empty());
}

#[test]
fn a_gzip_layer_is_sent_as_it_is_with_the_diff_id_of_its_content() {
    let plain = noise(BIG, 23);
    let mut enc = layer_gzip(Vec::new());
    enc.write_all(&plain).unwrap();
    let gz = enc.finish().unwrap();
    let wanted = Wanted {
        needed: [sha(&plain)].into(),
        ..Wanted::default()
    };
    let (v, got) = run(archive(&[("blobs/sha256/x", &gz)]), wanted);
    assert_eq!(got.streamed[0].0, gz, "passed through untouched");
    assert_eq!(got.streamed[0].1.as_deref(), Some(sha(&gz).as_str()));
    assert_eq!(v.seen["blobs/sha256/x"].diff_id, sha(&plain));
}

#[test]
fn small_files_are_layers_when_wanted_and_documents_otherwise() {
    let layer = b"a small layer".to_vec();
    let wanted = Wanted {
        needed: [sha(&layer)].into(),
        ..Wanted::default()
    };
    let tar = archive(&[("l/layer.tar", &layer), ("cfg.json", b"{}")]);
    let (tx, mut rx) = mpsc::channel(4);
    let mut visitor = Visitor::new(wanted, tx, CancellationToken::new());
    let index = walk_archive(tar.as_slice(), &mut visitor).unwrap();
    let Some(Job::Small {
        diff_id,
        digest,
        gz,
    }) = rx.try_recv().ok()
    else {
        panic!("no small upload");
    };
    assert_eq!(diff_id, sha(&layer));
    assert_eq!(digest, sha(&gz));
    assert_eq!(gunzip(&gz), layer);
    assert!(index.documents.contains_key("cfg.json"));
    assert!(!index.documents.contains_key("l/layer.tar"));
}

#[test]
fn cancellation_stops_the_walk() {
    let layer = noise(BIG, 29);
    let (tx, _rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let mut visitor = Visitor::new(Wanted::default(), tx, cancel);
    let err = walk_archive(archive(&[("a", &layer)]).as_slice(), &mut visitor).unwrap_err();
    assert!(matches!(err, ExportError::Cancelled), "{err}");
}

#[test]
fn a_layer_twice_in_the_archive_is_uploaded_once_and_both_copies_are_known() {
    let layer = noise(BIG, 31);
    let wanted = Wanted {
        needed: [sha(&layer)].into(),
        ..Wanted::default()
    };
    let (v, got) = run(
        archive(&[("a/layer.tar", &layer), ("b/layer.tar", &layer)]),
        wanted,
    );
    let completed = got.streamed.iter().filter(|(_, d)| d.is_some()).count();
    assert_eq!(completed, 1, "one upload completes");
    assert_eq!(v.seen["a/layer.tar"].diff_id, sha(&layer));
    assert_eq!(v.seen["b/layer.tar"].diff_id, sha(&layer));
}
