//! `pdd serve`'s exit codes, as an orchestrator sees them: 3 when the store is held by another
//! gateway or damaged, 4 when the address is taken; the store is checked before listening.

mod common;

use common::{pdd_cli, On, PddProcess, TempDir};

/// `pdd serve --listen LISTEN` on `dir`'s store, run to its end: (exit code, stderr).
fn serve(dir: &TempDir, listen: &str) -> (i32, String) {
    let (code, _, err) = pdd_cli(
        On::Data(&dir.0.join("data")),
        &["serve", "--listen", listen],
    );
    (code, err)
}

#[test]
fn serve_exit_codes_tell_store_from_address_problems() {
    let dir = TempDir::new("exit");
    let data = dir.0.join("data");
    let first = PddProcess::serve_data(&data);
    assert!(
        first
            .log
            .iter()
            .any(|l| l.contains("store ") && l.contains("checked in")),
        "{:?}",
        first.log
    );
    // The same store, held by the running gateway.
    let (code, err) = serve(&dir, "127.0.0.1:0");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is another pdd using it?"));
    // Another store, the running gateway's address.
    let other = TempDir::new("exit2");
    let (code, err) = serve(&other, &first.addr);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("cannot listen"));
    let (status, _) = first.terminate();
    assert!(status.success());

    // A damaged outbox entry: refused at start, naming it.
    {
        // Below the store's API, as a disk fault would.
        let db = common::sled_grezzo(&data);
        db.open_tree("outbox")
            .unwrap()
            .insert(7u64.to_be_bytes(), &b"{not json"[..])
            .unwrap();
        db.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, err) = serve(&dir, "127.0.0.1:0");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("damaged") && err.contains("outbox entry"),
        "{err}"
    );
}

#[test]
fn serve_refuses_to_sign_with_a_key_that_is_not_rsa() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    let dir = TempDir::new("exit-ec");
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "MinisteroLavoro").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let cert = b.build();
    std::fs::write(
        dir.0.join("ec.key"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.0.join("ec.crt"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.0.join("pdd.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ndata = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.0.join("data").display(),
            dir.0.join("ec.crt").display(),
            dir.0.join("ec.key").display()
        ),
    )
    .unwrap();
    let (code, _, err) = pdd_cli(On::Config(&dir.0.join("pdd.toml")), &["serve"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs an RSA key"), "{err}");
}
