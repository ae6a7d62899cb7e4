//! SIGHUP: a running `pdd serve` takes a partner's new certificate from its configuration file
//! without dropping connections; a file that does not load changes nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};

use common::{PddProcess, Pki, Req, TempDir};

/// One request on a kept-alive connection; the answer's status and body.
fn scambio(conn: &mut BufReader<std::net::TcpStream>, body: &str) -> (u16, String) {
    write!(
        conn.get_mut(),
        "POST /pdd/PA HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut b = vec![0; len];
    conn.read_exact(&mut b).unwrap();
    (
        status.split_whitespace().nth(1).unwrap().parse().unwrap(),
        String::from_utf8_lossy(&b).into_owned(),
    )
}

#[test]
fn sighup_reloads_partner_certificates_and_keeps_connections() {
    let dir = TempDir::new("reload");
    let pki = Pki::new();
    let old = pki.make("old", "EMILIA", false, 30, -1);
    let new = pki.make("new", "EMILIA", false, 30, -1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.0.join("pdd.toml");
    let scrivi = |cert: &std::path::Path, extra: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata = \"{}\"\n[wssec]\nverifica = \"required\"\n\
                 [[registry.soggetti]]\nnome = \"EMILIA\"\ncert = \"{}\"\n{extra}",
                dir.0.join("data").display(),
                cert.display()
            ),
        )
        .unwrap()
    };
    scrivi(&old.cert, "");
    let mut p = PddProcess::spawn(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let mut conn =
        BufReader::new(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap());
    let firmata = |kp: &common::KeyPair| kp.sign(&Req::candidatura().xml());
    let ok = |r: &(u16, String)| r.0 == 200 && r.1.contains("<types:Tipo_Risposta>OK<");
    assert!(ok(&scambio(&mut conn, &firmata(&old))));
    let r = scambio(&mut conn, &firmata(&new));
    assert!(
        !ok(&r) && r.1.contains("EGOV_IT_20"),
        "the new certificate is not known yet: {r:?}"
    );

    // The partner rotates its certificate: the file changes, SIGHUP.
    scrivi(&new.cert, "");
    let hup = |pid: u32| {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    hup(p.child.id());
    p.wait_for("configuration reloaded");
    // Same connection, kept alive across the reload.
    assert!(
        ok(&scambio(&mut conn, &firmata(&new))),
        "the new certificate after SIGHUP"
    );
    let r = scambio(&mut conn, &firmata(&old));
    assert!(!ok(&r), "the old certificate after SIGHUP: {r:?}");

    // A broken file: reported, nothing changes; a key that needs a restart: named.
    std::fs::write(&config, "listen = [broken").unwrap();
    hup(p.child.id());
    p.wait_for("configuration not reloaded");
    assert!(ok(&scambio(&mut conn, &firmata(&new))));
    scrivi(&new.cert, "[limits]\nmax_body_bytes = 1000000\n");
    hup(p.child.id());
    let w = p.wait_for("SIGHUP: 'limits' changed");
    assert!(w.contains("next restart"), "{w}");
    p.wait_for("configuration reloaded");
    let (status, log) = p.terminate();
    assert!(status.success(), "{log}");
}

/// Our own key and certificate rotated: after the reload, new TLS handshakes present the new
/// certificate (a partner trusting only it connects), and our signatures carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_our_own_certificate() {
    let pki = Pki::new();
    let (old, new) = (
        pki.make("me-old", "MinisteroLavoro", false, 30, -1),
        pki.make("me-new", "MinisteroLavoro", false, 30, -1),
    );
    let emilia = pki.make("emilia", "EMILIA", false, 30, -1);
    let config = |me: &common::KeyPair| {
        let mut c = pdd::config::Config::default();
        c.tls.cert = Some(me.cert.clone());
        c.tls.key = Some(me.key.clone());
        let mut s = pdd::registry::Soggetto::new("SPC", "EMILIA");
        s.cert = Some(emilia.cert.display().to_string());
        c.registry.soggetti.push(s);
        c
    };
    let gw = common::start(config(&old)).await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());
    let chiama = |ca: std::path::PathBuf| {
        let (url, emilia) = (url.clone(), emilia.clone());
        move || {
            common::curl(
                &[
                    "--cacert",
                    ca.to_str().unwrap(),
                    "--cert",
                    emilia.cert.to_str().unwrap(),
                    "--key",
                    emilia.key.to_str().unwrap(),
                    &url,
                ],
                Req::candidatura().xml().as_bytes(),
            )
        }
    };
    let (code, _, _) = tokio::task::spawn_blocking(chiama(new.cert.clone()))
        .await
        .unwrap();
    assert_ne!(code, 0, "the new certificate is not served yet");
    let mut nuova = config(&new);
    nuova.data = gw.gw.config.data.clone();
    let avvisi = gw.gw.reload(nuova).await.unwrap();
    assert!(avvisi.is_empty(), "{avvisi:?}");
    let (code, status, body) = tokio::task::spawn_blocking(chiama(new.cert.clone()))
        .await
        .unwrap();
    assert_eq!((code, status), (0, 200), "{body}");
    // The answer is signed with the new key: its token is the new certificate.
    let pem = std::fs::read_to_string(&new.cert).unwrap();
    let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        body.contains(&der_b64[..60]),
        "not signed with the new certificate"
    );
    let (code, _, _) = tokio::task::spawn_blocking(chiama(old.cert.clone()))
        .await
        .unwrap();
    assert_ne!(code, 0, "the old certificate is no longer served");
}
