//! `pdd serve`'s exit codes, as an orchestrator sees them: 3 when the store is held by another
//! gateway or damaged, 4 when the address is taken; the store is checked before listening.

mod common;

use common::{pdd_bin, PddProcess, TempDir};

fn serve(dir: &TempDir, listen: &str) -> std::process::Output {
    pdd_bin()
        .args(["serve", "--listen", listen, "--data"])
        .arg(dir.0.join("data"))
        .output()
        .unwrap()
}

#[test]
fn serve_exit_codes_tell_store_from_address_problems() {
    let dir = TempDir::new("exit");
    let data = dir.0.join("data");
    let first = PddProcess::spawn(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    assert!(
        first
            .log
            .iter()
            .any(|l| l.contains("store ") && l.contains("checked in")),
        "{:?}",
        first.log
    );
    // The same store, held by the running gateway.
    let out = serve(&dir, "127.0.0.1:0");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is another pdd using it?"));
    // Another store, the running gateway's address.
    let other = TempDir::new("exit2");
    let out = serve(&other, &first.addr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
    let (status, _) = first.terminate();
    assert!(status.success());

    // A damaged outbox entry: refused at start, naming it.
    {
        let s = pdd::store::SledStore::open(&data).unwrap();
        pdd::store::Store::scrivi(
            &s,
            &[pdd::store::Scrittura {
                albero: "outbox",
                chiave: 7u64.to_be_bytes().to_vec(),
                valore: Some(b"{not json".to_vec()),
            }],
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(pdd::store::Store::flush(&s)).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = serve(&dir, "127.0.0.1:0");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("outbox entry"),
        "{err}"
    );
}
