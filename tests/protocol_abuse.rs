//! HTTP abuse against the real server on loopback, with bytes and timing under our control:
//! oversized bodies refused before they are read (Content-Length and chunked), slow-loris
//! headers and bodies cut off by the configured timeouts, hundreds of idle connections, HTTP/1.0,
//! chunked bodies, `Expect: 100-continue` (with curl), Content-Type, methods. Timings are
//! printed (`--nocapture`), not asserted beyond generous bounds.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{have, start, text_of, Req};
use pdd::config::Config;
use pdd::egov::FAULT_VALIDAZIONE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Small limits, so that the tests are quick.
fn config() -> Config {
    let mut c = Config::default();
    c.limits.max_body_bytes = 64 * 1024;
    c.limits.header_timeout_secs = 2;
    c.limits.request_timeout_secs = 2;
    c
}

fn valid() -> Vec<u8> {
    Req::candidatura().xml().into_bytes()
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// The first complete answer in `buf` (an interim 1xx skipped), if there is one.
fn parse(buf: &[u8]) -> Option<Answer> {
    let mut text = String::from_utf8_lossy(buf).into_owned();
    while text.starts_with("HTTP/1.1 1") {
        let end = text.find("\r\n\r\n")?;
        text = text[end + 4..].to_string();
    }
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut a = Answer {
        status,
        head: head.to_string(),
        body: String::new(),
    };
    let len: usize = a.header("content-length")?.parse().ok()?;
    if rest.len() < len {
        return None;
    }
    a.body = rest[..len].to_string();
    Some(a)
}

/// Reads until a whole answer has arrived or the connection ends (then what arrived, if
/// anything); also says how long that took and whether the connection was closed after it.
async fn read_answer(
    r: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> (Option<Answer>, Duration) {
    let t = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = limit.saturating_sub(t.elapsed());
        match tokio::time::timeout(left, r.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if parse(&buf).is_some() {
                    break;
                }
            }
        }
    }
    (parse(&buf), t.elapsed())
}

/// Whether the server closes the connection within `limit`: (closed, after how long).
async fn closed_within(r: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> (bool, Duration) {
    let t = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(t.elapsed());
        match tokio::time::timeout(left, r.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, t.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return (false, t.elapsed()),
        }
    }
}

/// One request, written whole, answer read whole.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let (a, _) = read_answer(&mut s, Duration::from_secs(20)).await;
    a.expect("an answer")
}

fn request(method: &str, version: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} /pdd/PA {version}\r\nHost: pdd\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// A whole valid request (HTTP/1.1, Content-Length, `Connection: close`).
fn valid_request() -> Vec<u8> {
    let body = valid();
    request(
        "POST",
        "HTTP/1.1",
        &[
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", &body.len().to_string()),
            ("Connection", "close"),
        ],
        &body,
    )
}

/// curl (a real peer), off the runtime's threads: the server runs on them.
async fn curl(args: Vec<&str>, body: Vec<u8>) -> (i32, u16, String) {
    let args: Vec<String> = args.into_iter().map(str::to_string).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::curl(&args, &body)
    })
    .await
    .unwrap()
}

fn is_ok(a: &Answer) -> bool {
    a.status == 200 && text_of(&a.body, "Tipo_Risposta") == Some("OK")
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    let gw = start(config()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&request(
        "POST",
        "HTTP/1.1",
        &[
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", "52428800"),
        ],
        b"<soapenv:Envelope",
    ))
    .await
    .unwrap();
    let (a, took) = read_answer(&mut s, Duration::from_secs(10)).await;
    let a = a.expect("an answer before the body");
    eprintln!(
        "Content-Length 50 MB, 17 bytes sent: {} in {:.1} ms",
        a.status,
        took.as_secs_f64() * 1e3
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(text_of(&a.body, "faultcode"), Some("soap:Client"));
    assert!(a.body.contains("65536"), "{}", a.body);
    // And the server does not wait for the other 50 MB: it closes the connection.
    let (closed, after) = closed_within(&mut s, Duration::from_secs(5)).await;
    eprintln!(
        "  connection closed: {closed} after {:.1} ms",
        after.as_secs_f64() * 1e3
    );
    assert!(closed);
    // The same with the 100-continue handshake: refused without asking for the body.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&request(
        "POST",
        "HTTP/1.1",
        &[
            ("Content-Type", "text/xml"),
            ("Content-Length", "52428800"),
            ("Expect", "100-continue"),
        ],
        b"",
    ))
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");
    assert!(!first.contains("100 Continue"), "{first}");
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_as_it_grows() {
    let gw = start(config()).await;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        let head = request(
            "POST",
            "HTTP/1.1",
            &[
                ("Content-Type", "text/xml; charset=utf-8"),
                ("Transfer-Encoding", "chunked"),
            ],
            b"",
        );
        if w.write_all(&head).await.is_err() {
            return sent;
        }
        let chunk = format!("4000\r\n{}\r\n", "A".repeat(0x4000));
        while sent < 50 * 1024 * 1024 {
            if w.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        sent
    });
    let (a, took) = read_answer(&mut r, Duration::from_secs(20)).await;
    let a = a.expect("an answer");
    drop(r);
    let sent = writer.await.unwrap();
    eprintln!(
        "chunked, no Content-Length: {} in {:.1} ms; the sender got {} KiB out before it was stopped",
        a.status,
        took.as_secs_f64() * 1e3,
        sent / 1024
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(text_of(&a.body, "faultcode"), Some("soap:Client"));
    assert!(sent < 50 * 1024 * 1024, "the server read all 50 MB");
}

#[tokio::test]
async fn slow_loris_headers_are_cut_off_after_the_header_timeout() {
    let gw = start(config()).await;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let head = request(
        "POST",
        "HTTP/1.1",
        &[("Content-Type", "text/xml"), ("Content-Length", "10")],
        b"",
    );
    let total = head.len();
    let writer = tokio::spawn(async move {
        let mut n = 0;
        for b in head {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            n += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        n
    });
    // Meanwhile a normal request is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(is_ok(&exchange(gw.addr, &valid_request()).await));
    let (closed, after) = closed_within(&mut r, Duration::from_secs(30)).await;
    let sent = writer.await.unwrap();
    eprintln!(
        "headers at one byte a second: closed {closed} after {:.2} s ({sent} of {total} bytes sent; header_timeout_secs = 2)",
        after.as_secs_f64()
    );
    assert!(closed, "still open after {after:?}");
    // Cut off by the header timeout, not after the whole header came.
    assert!(sent < total, "closed after the whole header ({sent} bytes)");
}

#[tokio::test]
async fn a_slow_body_is_answered_after_the_request_timeout() {
    let gw = start(config()).await;
    for chunked in [false, true] {
        let s = TcpStream::connect(gw.addr).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            let te: (&str, &str) = if chunked {
                ("Transfer-Encoding", "chunked")
            } else {
                ("Content-Length", "4000")
            };
            let head = request("POST", "HTTP/1.1", &[("Content-Type", "text/xml"), te], b"");
            if w.write_all(&head).await.is_err() {
                return;
            }
            for _ in 0..30 {
                let piece: &[u8] = if chunked { b"1\r\n<\r\n" } else { b"<" };
                if w.write_all(piece).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(is_ok(&exchange(gw.addr, &valid_request()).await));
        let (a, took) = read_answer(&mut r, Duration::from_secs(15)).await;
        // The answer came while the client was still sending its body.
        let sending = !writer.is_finished();
        writer.abort();
        let a = a.expect("an answer");
        eprintln!(
            "body at one byte a second ({}): {} after {:.2} s (request_timeout_secs = 2)",
            if chunked { "chunked" } else { "Content-Length" },
            a.status,
            took.as_secs_f64()
        );
        assert_eq!(a.status, 408, "{}", a.body);
        assert_eq!(text_of(&a.body, "faultcode"), Some("soap:Client"));
        assert!(
            sending,
            "answered only once the client had sent all it would"
        );
        let (closed, _) = closed_within(&mut r, Duration::from_secs(5)).await;
        assert!(closed, "the connection stays open after the 408");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_idle_connections_do_not_stop_a_normal_request() {
    let gw = start(config()).await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // Half of them begin a request and stop.
    for s in idle.iter_mut().step_by(2) {
        s.write_all(b"POST /pdd/PA HTTP/1.1\r\nHost: pdd\r\n")
            .await
            .unwrap();
    }
    let t = Instant::now();
    let a = exchange(gw.addr, &valid_request()).await;
    eprintln!(
        "500 idle connections: a valid request answered {} in {:.1} ms",
        a.status,
        t.elapsed().as_secs_f64() * 1e3
    );
    assert!(is_ok(&a), "{}", a.body);
    // And they do not stay for ever: the header timeout closes them.
    let mut closed = 0;
    for s in idle.iter_mut() {
        if closed_within(s, Duration::from_secs(30)).await.0 {
            closed += 1;
        }
    }
    eprintln!(
        "  closed by the server {:.1} s later: {closed} of 500",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(closed, 500);
}

#[tokio::test]
async fn http_1_0_requests_get_a_correct_answer() {
    let gw = start(config()).await;
    let body = valid();
    let len = body.len().to_string();
    let a = exchange(
        gw.addr,
        &request(
            "POST",
            "HTTP/1.0",
            &[
                ("Content-Type", "text/xml; charset=utf-8"),
                ("Content-Length", &len),
            ],
            &body,
        ),
    )
    .await;
    eprintln!(
        "HTTP/1.0 with Content-Length: {}",
        a.head.lines().next().unwrap()
    );
    assert!(is_ok(&a), "{}", a.body);
    // Without Content-Length a request has no body (RFC 9112 §6.3): the empty message is refused.
    let a = exchange(
        gw.addr,
        &request(
            "POST",
            "HTTP/1.0",
            &[("Content-Type", "text/xml; charset=utf-8")],
            &body,
        ),
    )
    .await;
    eprintln!(
        "HTTP/1.0 without Content-Length: {}",
        a.head.lines().next().unwrap()
    );
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(text_of(&a.body, "faultstring"), Some(FAULT_VALIDAZIONE));
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted() {
    let gw = start(config()).await;
    let body = valid();
    let mut chunked = Vec::new();
    for piece in body.chunks(700) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let a = exchange(
        gw.addr,
        &request(
            "POST",
            "HTTP/1.1",
            &[
                ("Content-Type", "text/xml; charset=utf-8"),
                ("Transfer-Encoding", "chunked"),
            ],
            &chunked,
        ),
    )
    .await;
    assert!(is_ok(&a), "{}", a.body);
    if have(common::Peer::Curl) {
        let url = gw.url("/pdd/PA");
        let (rc, status, out) = curl(vec!["-H", "Transfer-Encoding: chunked", &url], valid()).await;
        assert_eq!((rc, status), (0, 200), "{out}");
        assert_eq!(text_of(&out, "Tipo_Risposta"), Some("OK"), "{out}");
    }
}

#[tokio::test]
async fn expect_100_continue_works() {
    let gw = start(config()).await;
    // By hand: the 100 arrives before the body is sent.
    let body = valid();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&request(
        "POST",
        "HTTP/1.1",
        &[
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", &body.len().to_string()),
            ("Expect", "100-continue"),
        ],
        b"",
    ))
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("100 Continue")
        .unwrap();
    let interim = String::from_utf8_lossy(&buf[..n]).to_string();
    eprintln!(
        "100 Continue after {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(&body).await.unwrap();
    let (a, _) = read_answer(&mut s, Duration::from_secs(10)).await;
    assert!(is_ok(&a.expect("an answer")));
    if !have(common::Peer::Curl) {
        return;
    }
    // curl waits up to a second for the 100 before sending anyway: its trace says which.
    let url = gw.url("/pdd/PA");
    let dir = common::TempDir::new("curl-trace");
    let trace = dir.0.join("trace.txt");
    let (rc, status, out) = curl(
        vec![
            "-H",
            "Expect: 100-continue",
            "--trace-ascii",
            trace.to_str().unwrap(),
            &url,
        ],
        valid(),
    )
    .await;
    assert_eq!((rc, status), (0, 200), "{out}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("HTTP/1.1 100 Continue"), "{trace}");
    assert!(!trace.contains("Done waiting for 100-continue"), "{trace}");
    // Too large: refused without the body being sent.
    let big = vec![b'A'; 200 * 1024];
    let t = Instant::now();
    let (rc, status, out) = curl(
        vec![
            "-H",
            "Expect: 100-continue",
            "-w",
            " uploaded=%{size_upload}\n%{http_code}",
            &url,
        ],
        big,
    )
    .await;
    eprintln!(
        "curl with Expect and 200 KiB over a 64 KiB limit: {status} in {:.1} ms; {}",
        t.elapsed().as_secs_f64() * 1e3,
        out.rsplit_once(" uploaded=").map(|x| x.1).unwrap_or("?")
    );
    assert_eq!(rc, 0);
    assert_eq!(status, 413, "{out}");
}

#[tokio::test]
async fn content_types() {
    let gw = start(config()).await;
    let soap11 = valid();
    let cases: Vec<(&str, Option<&str>, u16)> = vec![
        ("text/xml", Some("text/xml"), 200),
        (
            "TEXT/XML; charset=UTF-8",
            Some("TEXT/XML; charset=UTF-8"),
            200,
        ),
        (
            "text/xml;charset=\"utf-8\"",
            Some("text/xml;charset=\"utf-8\""),
            200,
        ),
        ("application/json", Some("application/json"), 415),
        ("application/xml", Some("application/xml"), 415),
        (
            "application/soap+xml (a SOAP 1.1 envelope)",
            Some("application/soap+xml; charset=utf-8"),
            415,
        ),
        ("none", None, 415),
        // SOAP with Attachments is read: a plain envelope under it has no MIME delimiter, so
        // no envelope can be taken out (the bare Fault EGOV_IT_001, tests/allegati.rs).
        (
            "multipart/related around a plain envelope",
            Some("multipart/related; type=\"text/xml\"; boundary=\"b\""),
            500,
        ),
    ];
    for (name, ct, expected) in cases {
        let mut h = vec![("Content-Length", soap11.len().to_string())];
        if let Some(ct) = ct {
            h.push(("Content-Type", ct.to_string()));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = Req::candidatura().xml().into_bytes();
        let a = exchange(gw.addr, &request("POST", "HTTP/1.1", &h, &body)).await;
        eprintln!(
            "Content-Type {name}: {} {}",
            a.status,
            text_of(&a.body, "faultstring").unwrap_or("")
        );
        assert_eq!(a.status, expected, "{name}: {}", a.body);
        if expected == 415 {
            assert_eq!(
                text_of(&a.body, "faultcode"),
                Some("soap:Client"),
                "{}",
                a.body
            );
            assert_eq!(
                text_of(&a.body, "faultstring"),
                Some(FAULT_VALIDAZIONE),
                "{}",
                a.body
            );
            assert!(a.body.contains("text/xml"), "{}", a.body);
        }
    }
}

#[tokio::test]
async fn other_methods_on_the_porta_applicativa_get_405() {
    let gw = start(config()).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        for path in ["/pdd/PA", "/pdd/PA/"] {
            let raw = format!("{method} {path} HTTP/1.1\r\nHost: pdd\r\nContent-Length: 0\r\n\r\n");
            let a = exchange(gw.addr, raw.as_bytes()).await;
            assert_eq!(a.status, 405, "{method} {path}: {}", a.body);
            assert_eq!(
                a.header("allow"),
                Some("POST"),
                "{method} {path}: {}",
                a.head
            );
        }
    }
}
