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
    c.limits.header_timeout_secs = 1;
    let gw = start(c).await;
    // 80 KiB announced and held: 20 KiB of room left.
    let held = hold(gw.addr, 81920);
    eventually("the held body is counted", async || {
        gw.gw.pa.body_budget.available_permits() <= 20
    })
    .await;
    // A request bigger than the room waits for it, then is told to come back.
    let mut big = Req::candidatura().xml();
    big.push_str(&" ".repeat(30 * 1024));
    let r = common::post(&gw.url("/pdd/PA"), big.into_bytes(), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("nessuno spazio"), "{}", r.body);
    // A small one fits.
    let r = candidatura(&gw).await;
    assert_eq!(r.status, 200, "{}", r.body);
    drop(held);
    eventually("the room comes back", async || {
        gw.gw.pa.body_budget.available_permits() >= 100
    })
    .await;
}
