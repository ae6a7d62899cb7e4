//! A full disk, for real: `pdd serve` with its store on a small tmpfs. While the disk is full
//! every exchange is refused (EGOV_IT_300) and `/health` says why; once space returns the
//! store reopens by itself and the node goes on without a restart, the refused exchange left
//! nothing behind (its resend is accepted); a final flush that fails makes the exit status
//! non-zero.

mod common;

use std::path::{Path, PathBuf};

use common::{eventually_blocking, http, PddProcess, Req, TempDir};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system of `dir` to the last byte with one file; returns it.
fn riempi(dir: &Path) -> PathBuf {
    use std::io::Write;
    let f = dir.join("riempitivo");
    let mut w = std::fs::File::create(&f).unwrap();
    let blocco = vec![0u8; 64 * 1024];
    while w.write_all(&blocco).is_ok() {}
    // What is left, byte by byte blocks.
    let piccolo = vec![0u8; 512];
    while w.write_all(&piccolo).is_ok() {}
    let _ = w.flush();
    f
}

fn invia(addr: &str, richiesta: &str) -> (u16, String) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    http(
        addr,
        "POST",
        "/pdd/PA",
        &[("Content-Type", "text/xml; charset=utf-8")],
        richiesta.as_bytes(),
    )
    .unwrap()
}

fn salute(addr: &str) -> (u16, String) {
    http(addr.parse().unwrap(), "GET", "/health", &[], b"").unwrap()
}

fn ok(r: &(u16, String)) -> bool {
    r.0 == 200
        && r.1
            .contains("<types:Tipo_Risposta>OK</types:Tipo_Risposta>")
}

#[test]
#[cfg_attr(
    pdd_no_tmpfs,
    ignore = "a tmpfs cannot be mounted here (needs root and mount)"
)]
fn a_full_disk_refuses_cleanly_and_the_store_recovers_by_itself() {
    common::require(common::Peer::Tmpfs);
    let dir = TempDir::new("disco-pieno");
    let disco = Tmpfs::mount(&dir.0.join("disco"), 24);
    let data = disco.0.join("data");
    let gw = PddProcess::serve_data(&data);
    let addr = gw.addr.clone();
    assert!(ok(&invia(&addr, &Req::candidatura().xml())));
    // 24 MiB is under the default [store] min_free_mb (200): warned before it is full.
    let (s, h) = salute(&addr);
    assert!(
        s == 200 && h.contains("warning: free space for the store is low"),
        "{h}"
    );
    let (_, m) = http(addr.parse().unwrap(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.contains("\npdd_store_free_bytes ") && m.contains("\npdd_store_in_service 1"),
        "{m}"
    );

    // The disk fills up: exchanges are refused with EGOV_IT_300, and /health says so.
    let riempitivo = riempi(&disco.0);
    let mut rifiutata = None;
    // Enough to outgrow what sled's log has already allocated (records are compressed).
    for _ in 0..1000 {
        let richiesta = Req::candidatura().xml();
        let r = invia(&addr, &richiesta);
        if !ok(&r) {
            assert!(r.0 >= 500 && r.1.contains("EGOV_IT_300"), "{r:?}");
            rifiutata = Some(richiesta);
            break;
        }
    }
    let rifiutata = rifiutata.expect("an exchange refused on a full disk");
    let (s, h) = salute(&addr);
    assert_eq!(s, 503, "{h}");
    assert!(
        h.contains("no space left") || h.contains("free space"),
        "{h}"
    );

    // Space returns: the node recovers by itself, within seconds.
    std::fs::remove_file(&riempitivo).unwrap();
    eventually_blocking("/health is ok again", || salute(&addr).0 == 200);
    // The refused exchange left nothing: its resend is accepted, not a duplicate.
    let r = invia(&addr, &rifiutata);
    assert!(ok(&r), "the resend of the refused exchange: {r:?}");
    assert!(ok(&invia(&addr, &Req::candidatura().xml())));

    // Full again, and stopped while full: the final flush fails, and the exit status says so.
    let riempitivo = riempi(&disco.0);
    // Enough to outgrow what sled's log has already allocated (records are compressed).
    for _ in 0..1000 {
        if !ok(&invia(&addr, &Req::candidatura().xml())) {
            break;
        }
    }
    let (status, log) = gw.terminate();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("final store flush failed"), "{log}");
    assert!(log.contains("no space left"), "{log}");
    assert!(log.contains("reopening the store"), "{log}");
    assert!(log.contains("store reopened"), "{log}");
    assert!(log.contains("free space for the store is low"), "{log}");

    // With room again, the store opens with every acknowledged exchange.
    std::fs::remove_file(&riempitivo).unwrap();
    let (code, out, err) = common::pdd_cli(common::On::Data(&data), &["store", "check"]);
    assert_eq!(code, 0, "{out}{err}");
}
