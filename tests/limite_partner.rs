//! The per-partner limit on the porta applicativa: a partner with as many exchanges in progress
//! as `[limits] partner_concurrency` gets 503 and a Fault at once; places come back.

mod common;

use std::io::Write;
use std::net::SocketAddr;

use common::{eventually, start, Reply, Req, Running};
use pdd::config::Config;

/// An exchange in progress: the headers of a POST announcing `length` bytes, the body only begun.
fn hold(addr: SocketAddr, length: usize) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /pdd/PA HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {length}\r\n\r\n<soapenv:Env"
    )
    .unwrap();
    s.flush().unwrap();
    s
}

/// A valid request to the porta applicativa.
async fn candidatura(gw: &Running) -> Reply {
    common::post(
        &gw.url("/pdd/PA"),
        Req::candidatura().xml().into_bytes(),
        &[],
    )
    .await
}

#[tokio::test]
async fn a_partner_over_its_limit_is_answered_at_once_and_served_again_after() {
    let mut c = Config::default();
    c.limits.partner_concurrency = 1;
    let gw = start(c).await;
    // One exchange in progress: headers sent, the body only begun.
    let held = hold(gw.addr, 100000);
    // Wait until the server counts it.
    eventually("the held request is counted", async || {
        gw.gw.pa.in_flight.count("127.0.0.1") != 0
    })
    .await;
    let r = candidatura(&gw).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "retry-after" && v == "1"),
        "{:?}",
        r.headers
    );
    assert!(r.body.contains("EGOV_IT_300"), "{}", r.body);
    assert!(
        r.body
            .contains("troppi scambi in corso da 127.0.0.1 (al più 1 alla volta)"),
        "{}",
        r.body
    );
    // Nothing of it was stored: refused before it was read.
    assert!(gw.gw.store.recent(10).await.unwrap().is_empty());
    // The held exchange ends (its sender goes away): the place comes back.
    drop(held);
    eventually("the place comes back", async || {
        gw.gw.pa.in_flight.count("127.0.0.1") == 0
    })
    .await;
    let r = candidatura(&gw).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn bodies_in_progress_have_a_memory_budget() {
    let mut c = Config::default();
    c.limits.max_bytes_in_flight = 100 * 1024;
    // One partner here (all from 127.0.0.1): its share is the whole budget, no reserve.
    c.limits.partner_bytes_in_flight = 100 * 1024;
    c.limits.reserve_bytes_in_flight = 0;
    c.limits.header_timeout_secs = 1;
    let gw = start(c).await;
    // 80 KiB announced and held: 20 KiB of room left.
    let held = hold(gw.addr, 81920);
    eventually("the held body is counted", async || {
        gw.gw.pa.body_budget.usati("127.0.0.1") >= 80 * 1024
    })
    .await;
    // A request bigger than what is left of the partner's share is told at once to come back.
    let mut big = Req::candidatura().xml();
    big.push_str(&" ".repeat(30 * 1024));
    let r = common::post(&gw.url("/pdd/PA"), big.into_bytes(), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("la sua quota"), "{}", r.body);
    // A small one fits.
    let r = candidatura(&gw).await;
    assert_eq!(r.status, 200, "{}", r.body);
    drop(held);
    eventually("the room comes back", async || {
        gw.gw.pa.body_budget.usati("127.0.0.1") == 0
    })
    .await;
}

/// A connection from `from` (a loopback address of its own: another partner) announcing
/// `length` bytes of body to `path` and sending its first bytes.
async fn slow_from(
    from: &str,
    to: SocketAddr,
    path: &str,
    length: usize,
    extra: &str,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(to).await.unwrap();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n{extra}Content-Length: {length}\r\n\r\n<"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s
}

/// What the server answered on a held connection (its status), once it does.
async fn status_of(s: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test]
async fn one_partners_slow_bodies_starve_only_itself_and_are_cut_for_their_slowness() {
    let mut c = Config::default();
    c.limits.min_body_rate_after_secs = 2;
    let gw = start(c).await;
    let dieci_mb = 10 * 1024 * 1024 - 4096;
    // 13 bodies of ~10 MB from one partner (127.0.0.2), each sent at a crawl: its share
    // (32 MiB) takes three, the others are refused at once.
    let mut lenti = Vec::new();
    for _ in 0..13 {
        lenti.push(slow_from("127.0.0.2", gw.addr, "/pdd/PA", dieci_mb, "").await);
    }
    eventually("three bodies held for 127.0.0.2", async || {
        gw.gw.pa.body_budget.usati("127.0.0.2") == 3 * dieci_mb as u64
    })
    .await;
    // Another partner (127.0.0.1) is served meanwhile, without waiting for room.
    let t = std::time::Instant::now();
    let r = candidatura(&gw).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(gw.gw.config.limits.header_timeout_secs),
        "served without waiting for room"
    );
    // The refused ones were told so; the held ones are cut with 408 for their slowness.
    let mut stati = Vec::new();
    for s in lenti.iter_mut() {
        stati.push(status_of(s).await);
    }
    assert_eq!(
        stati.iter().filter(|s| **s == Some(503)).count(),
        10,
        "{stati:?}"
    );
    assert_eq!(
        stati.iter().filter(|s| **s == Some(408)).count(),
        3,
        "{stati:?}"
    );
    eventually("the slow partner's room comes back", async || {
        gw.gw.pa.body_budget.usati("127.0.0.2") == 0
    })
    .await;
}

#[tokio::test]
async fn local_systems_have_their_own_allowance_by_address_or_token() {
    let mut c = Config::default();
    c.limits.partner_concurrency = 2;
    let gw = start(c).await;
    // A SIL on 127.0.0.2 holds both its places on the porta delegata.
    let _a = slow_from(
        "127.0.0.2",
        gw.addr,
        "/pdd/PD/ClicLavoro/InvioCandidatura",
        50_000,
        "",
    )
    .await;
    let _b = slow_from(
        "127.0.0.2",
        gw.addr,
        "/pdd/PD/ClicLavoro/InvioCandidatura",
        50_000,
        "",
    )
    .await;
    eventually("two exchanges held for 127.0.0.2", async || {
        gw.gw.pa.in_flight.count("locale:127.0.0.2") == 2
    })
    .await;
    let pd = |from: &'static str, extra: String| {
        let addr = gw.addr;
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let body = Req::candidatura().xml();
            let extra = format!("{extra}Connection: close\r\n");
            let mut s = slow_from(
                from,
                addr,
                "/pdd/PD/ClicLavoro/InvioCandidatura",
                body.len() + 1,
                &extra,
            )
            .await;
            s.write_all(body.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut out))
                    .await;
            String::from_utf8_lossy(&out).to_string()
        }
    };
    // The same address again: over its allowance.
    let r = pd("127.0.0.2", String::new()).await;
    assert!(
        r.contains("troppi scambi in corso da locale:127.0.0.2"),
        "{r}"
    );
    // Another address, and the same host with its own token (pdd users add), are served.
    let r = pd("127.0.0.3", String::new()).await;
    assert!(
        !r.contains("troppi scambi") && !r.starts_with("HTTP/1.1 503"),
        "{r}"
    );
    let token = gw.gw.api.aggiungi_utente("sil-provincia").await.unwrap();
    let r = pd("127.0.0.2", format!("Authorization: Bearer {token}\r\n")).await;
    assert!(
        !r.contains("troppi scambi") && !r.starts_with("HTTP/1.1 503"),
        "{r}"
    );
}
