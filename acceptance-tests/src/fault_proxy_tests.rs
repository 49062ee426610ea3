//! The fault script, and the proxy forwarding to a fake upstream.

use std::io::BufReader;
use std::net::TcpListener;
use std::sync::mpsc;

use super::*;

const GET: &str = "GET";

#[test]
fn manifest_paths_fail_once_per_path_and_direction() {
    let (mut s, f) = (State::default(), Faults::all());
    let tag = "/v2/web/manifests/latest";
    assert_eq!(
        s.decide(&f, "HEAD", tag, Framing::None),
        Action::Refuse(503, None)
    );
    assert!(matches!(
        s.decide(&f, GET, tag, Framing::None),
        Action::Forward { .. }
    ));
    assert_eq!(
        s.decide(&f, "PUT", tag, Framing::Length(9)),
        Action::Refuse(503, None)
    );
    let other = "/v2/web/manifests/sha256:ab";
    assert_eq!(
        s.decide(&f, GET, other, Framing::None),
        Action::Refuse(503, None)
    );
    assert_eq!(
        (s.injected.manifest_read_503, s.injected.manifest_put_503),
        (2, 1)
    );
}

#[test]
fn the_first_v2_and_each_blob_get_are_rate_limited_once() {
    let f = Faults {
        rate_window: None,
        ..Faults::all()
    };
    let mut s = State::default();
    assert_eq!(
        s.decide(&f, GET, "/v2/", Framing::None),
        Action::Refuse(429, Some(1))
    );
    assert_ne!(
        s.decide(&f, GET, "/v2/", Framing::None),
        Action::Refuse(429, Some(1))
    );
    let blob = "/v2/web/blobs/sha256:cd";
    assert_eq!(
        s.decide(&f, GET, blob, Framing::None),
        Action::Refuse(429, Some(1))
    );
    assert_ne!(
        s.decide(&f, GET, blob, Framing::None),
        Action::Refuse(429, Some(1))
    );
    let slowed = s.decide(&f, "HEAD", blob, Framing::None);
    assert_eq!(
        slowed,
        Action::Forward {
            cut: None,
            delay: f.slow_blob_heads
        }
    );
    assert_eq!((s.injected.v2_429, s.injected.blob_get_429), (1, 1));
}

#[test]
fn the_rate_window_refuses_its_path_until_it_closes() {
    let f = Faults {
        rate_window: Some(Duration::from_secs(60)),
        ..Faults::default()
    };
    let mut s = State::default();
    let plain = Action::Forward {
        cut: None,
        delay: None,
    };
    let (a, b) = ("/v2/web/blobs/sha256:a", "/v2/web/blobs/sha256:b");
    assert_eq!(
        s.decide(&f, GET, a, Framing::None),
        plain,
        "a GET opens none"
    );
    let limited = Action::Refuse(429, Some(60));
    assert_eq!(s.decide(&f, "HEAD", a, Framing::None), limited);
    assert_eq!(s.decide(&f, GET, a, Framing::None), limited);
    assert_eq!(
        s.decide(&f, "HEAD", b, Framing::None),
        plain,
        "another path"
    );
    s.window = Some((a.to_string(), Instant::now()));
    assert_eq!(s.decide(&f, "HEAD", a, Framing::None), plain, "closed");
    assert_eq!(s.injected.window_429, 2);
}

#[test]
fn only_the_first_upload_with_a_body_is_cut_and_a_short_one_frees_the_claim() {
    let (mut s, f) = (State::default(), Faults::all());
    let upload = "/v2/web/blobs/uploads/uuid";
    let cut = |kind| Action::Forward {
        cut: Some(kind),
        delay: None,
    };
    let plain = Action::Forward {
        cut: None,
        delay: None,
    };
    assert_eq!(s.decide(&f, "PUT", upload, Framing::None), plain, "no body");
    assert_eq!(
        s.decide(&f, "PUT", upload, Framing::Length(8)),
        cut(Cut::Put)
    );
    s.settle_cut(Cut::Put, false);
    assert_eq!(
        s.decide(&f, "PUT", upload, Framing::Length(8)),
        cut(Cut::Put)
    );
    s.settle_cut(Cut::Put, true);
    assert_eq!(s.decide(&f, "PUT", upload, Framing::Length(8)), plain);
    assert_eq!(
        s.decide(&f, "PATCH", upload, Framing::Chunked),
        cut(Cut::Patch)
    );
    s.settle_cut(Cut::Patch, true);
    assert_eq!(s.decide(&f, "PATCH", upload, Framing::Chunked), plain);
    assert_eq!((s.injected.cut_put, s.injected.cut_patch), (1, 1));
}

/// A fake registry answering one request per connection with the next of `answers`;
/// reports each request's head and the body bytes it got (all of them, framing
/// included, or as many as came before the connection broke).
fn upstream(answers: Vec<&'static str>) -> (String, mpsc::Receiver<(Head, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    let own = address.clone();
    thread::spawn(move || {
        for answer in answers {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let head = Head::read(&mut reader).unwrap().unwrap();
            let mut body = Vec::new();
            let got = relay_body(&mut reader, &mut body, head.framing(false, false), None);
            let answer = answer.replace("{self}", &own);
            if got.is_ok() {
                (&conn).write_all(answer.as_bytes()).unwrap();
            }
            tx.send((head, body)).unwrap();
        }
    });
    (address, rx)
}

/// Sends raw `request` to the proxy on `conn`; the answer's head and body.
fn exchange(conn: &TcpStream, request: &str) -> io::Result<(Head, Vec<u8>)> {
    let mut writer = conn;
    writer.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(conn);
    let head = Head::read(&mut reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let mut body = Vec::new();
    relay_body(&mut reader, &mut body, head.framing(true, false), None)?;
    Ok((head, body))
}

#[test]
fn requests_and_answers_pass_byte_for_byte_and_locations_name_the_proxy() {
    let (registry, received) = upstream(vec![
        "HTTP/1.1 202 Accepted\r\nLocation: http://{self}/v2/x/blobs/uploads/u?_state=s\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]);
    let proxy = FaultProxy::in_front_of(&registry, Faults::default());
    let conn = TcpStream::connect(&proxy.address).unwrap();
    let body = "5\r\nhello\r\n2;ext=1\r\n!!\r\n0\r\n\r\n";
    let patch = format!(
        "PATCH /v2/x/blobs/uploads/u?_state=s HTTP/1.1\r\nHost: h\r\nX-Odd:  spaced \r\nTransfer-Encoding: chunked\r\n\r\n{body}"
    );
    let (answer, _) = exchange(&conn, &patch).unwrap();
    let (head, got) = received.recv().unwrap();
    assert_eq!(
        head.to_bytes(),
        &patch.as_bytes()[..patch.len() - body.len()]
    );
    assert_eq!(got, body.as_bytes());
    let rewritten = format!("http://{}/v2/x/blobs/uploads/u?_state=s", proxy.address);
    assert_eq!(answer.header("location"), Some(rewritten.as_str()));
    // The same client connection carries the next request; a chunked answer passes whole.
    let (_, got) = exchange(
        &conn,
        "GET /v2/x/blobs/sha256:a HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .unwrap();
    assert_eq!(got, b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(proxy.injected().forwarded, 2);
}

#[test]
fn a_cut_upload_reaches_the_registry_half_sent_and_fails_the_client() {
    let (registry, received) = upstream(vec!["HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]);
    let faults = Faults {
        cut_uploads: true,
        ..Faults::default()
    };
    let proxy = FaultProxy::in_front_of(&registry, faults);
    let conn = TcpStream::connect(&proxy.address).unwrap();
    let body = "x".repeat(1000);
    let put = format!(
        "PUT /v2/x/blobs/uploads/u?digest=sha256:0 HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n{body}"
    );
    assert!(exchange(&conn, &put).is_err(), "the client saw an answer");
    let (_, got) = received.recv().unwrap();
    assert_eq!(got.len(), 500, "half the body reached the registry");
    assert_eq!(proxy.injected().cut_put, 1);
    assert_eq!(proxy.injected().forwarded, 0);
}

#[test]
fn an_injected_refusal_keeps_the_connection_usable() {
    let (registry, _received) = upstream(vec!["HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]);
    let faults = Faults {
        manifest_503: true,
        ..Faults::default()
    };
    let proxy = FaultProxy::in_front_of(&registry, faults);
    let conn = TcpStream::connect(&proxy.address).unwrap();
    let put = "PUT /v2/x/manifests/latest HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    let (answer, body) = exchange(&conn, put).unwrap();
    assert_eq!(answer.status(), 503);
    assert!(String::from_utf8_lossy(&body).contains("\"UNAVAILABLE\""));
    let (answer, _) = exchange(&conn, put).unwrap();
    assert_eq!(answer.status(), 201, "the second PUT reaches the registry");
    assert_eq!(proxy.injected().manifest_put_503, 1);
}
