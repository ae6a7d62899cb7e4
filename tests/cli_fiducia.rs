//! The trust commands as an operator runs them: `pdd certs init`, `pdd sign` / `pdd verify`
//! (checked against xmlsec1), and `pdd partner add/list/show/remove` against a running gateway
//! over mutual TLS (curl as the partner), taking effect without a restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{curl, have, pdd_bin, Pki, TempDir};

fn run(args: &[&str]) -> Output {
    pdd_bin().args(args).output().expect("pdd runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pdd certs init` for `cn` into `dir`; returns (key, cert, printed fingerprint).
fn certs_init(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf, String) {
    let o = run(&["certs", "init", "--cn", cn, "--dir", s(dir), "--name", name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let fp = out
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: SHA256 "))
        .unwrap_or_else(|| panic!("no fingerprint in:\n{out}"))
        .to_string();
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
        fp,
    )
}

/// A fresh InvioCandidatura request from EMILIA (a new Identificatore each time), as `req-<n>.xml`.
fn request(dir: &Path, n: u32) -> PathBuf {
    let req = common::Req::candidatura();
    let f = dir.join(format!("req-{n}.xml"));
    std::fs::write(&f, req.xml()).unwrap();
    f
}

#[test]
fn certs_init_makes_a_private_key_a_certificate_and_a_csr() {
    let dir = TempDir::new("cli-certs");
    let (key, cert, fp) = certs_init(&dir.0, "emilia", "EMILIA");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key must be private");
    let x = openssl::x509::X509::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let digest = x.digest(openssl::hash::MessageDigest::sha256()).unwrap();
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        fp,
        hex.join(":"),
        "the printed fingerprint is the certificate's"
    );
    assert_eq!(pdd::wssec::pki::cn(&x).as_deref(), Some("EMILIA"));
    let k = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key).unwrap()).unwrap();
    assert!(x.public_key().unwrap().public_eq(&k));

    // An existing key is not overwritten by accident.
    let again = run(&[
        "certs",
        "init",
        "--cn",
        "EMILIA",
        "--dir",
        s(&dir.0),
        "--name",
        "emilia",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("use --force"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&cert).unwrap(), x.to_pem().unwrap());

    // A CSR for a CA instead.
    let o = run(&[
        "certs",
        "init",
        "--cn",
        "LAZIO",
        "--dir",
        s(&dir.0),
        "--name",
        "lazio",
        "--csr",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csr =
        openssl::x509::X509Req::from_pem(&std::fs::read(dir.0.join("lazio.csr")).unwrap()).unwrap();
    let k =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.0.join("lazio.key")).unwrap())
            .unwrap();
    assert!(csr.verify(&k).unwrap(), "the CSR is signed by its key");
    let cn = csr
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string();
    assert_eq!(cn.unwrap(), "LAZIO");
}

#[test]
fn sign_then_verify_with_pdd_and_with_xmlsec1() {
    let dir = TempDir::new("cli-sign");
    let (key, cert, _) = certs_init(&dir.0, "emilia", "EMILIA");
    let (_, other, _) = certs_init(&dir.0, "lazio", "LAZIO");
    let req = request(&dir.0, 0);
    let o = run(&["sign", s(&req), "--key", s(&key), "--cert", s(&cert)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let signed = dir.0.join("signed.xml");
    std::fs::write(&signed, &o.stdout).unwrap();

    let v = run(&["verify", s(&signed), "--cert", s(&cert)]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stdout(&v).contains("valid: Body, busta and Timestamp signed by CN=EMILIA"));

    // By default the whole eGov_IT:Intestazione is signed: what a WSS4J peer requiring the
    // `Intestazione` header checks. xmlsec1 finds the signed busta only as that element.
    let xmlsec1 = |file: &std::path::Path, busta: &str| {
        const WSU: &str =
            "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
        std::process::Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem", s(&cert)])
            .args([
                "--id-attr:Id",
                "http://schemas.xmlsoap.org/soap/envelope/:Body",
            ])
            .args([
                "--id-attr:Id",
                &format!("http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/:{busta}"),
            ])
            .args(["--id-attr:Id", &format!("{WSU}:Timestamp")])
            .arg(file)
            .output()
            .unwrap()
    };
    let testo = String::from_utf8_lossy(&o.stdout).to_string();
    let id_busta = testo
        .split("<eGov_IT:Intestazione ")
        .nth(1)
        .and_then(|t| t.split("wsu:Id=\"").nth(1))
        .and_then(|t| t.split('"').next())
        .expect("the Intestazione carries the signed id");
    assert!(testo.contains(&format!("URI=\"#{id_busta}\"")), "{testo}");
    if have(common::Peer::Xmlsec1) {
        let x = xmlsec1(&signed, "Intestazione");
        assert!(
            x.status.success(),
            "xmlsec1: {}",
            String::from_utf8_lossy(&x.stderr)
        );
    }
    // The narrower form, for the partners that use it, verifies with pdd too.
    let o = run(&[
        "sign",
        s(&req),
        "--key",
        s(&key),
        "--cert",
        s(&cert),
        "--intestazione-messaggio",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stretta = dir.0.join("stretta.xml");
    std::fs::write(&stretta, &o.stdout).unwrap();
    let v = run(&["verify", s(&stretta), "--cert", s(&cert)]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    let v = run(&["verify", s(&stretta), "--cert", s(&cert), "--intestazione"]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    if have(common::Peer::Xmlsec1) {
        assert!(xmlsec1(&stretta, "IntestazioneMessaggio").status.success());
    }

    // Signed by someone else than expected: exit 1, saying whose signature it is.
    let v = run(&["verify", s(&signed), "--cert", s(&other)]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains("INVALID: signed with the certificate CN=EMILIA"),
        "{}",
        stdout(&v)
    );

    // Tampered: exit 1 and which check failed.
    let text = std::fs::read_to_string(&signed).unwrap();
    let tampered = text.replacen(">InvioCandidatura<", ">InvioVacancy<", 1);
    assert_ne!(tampered, text);
    let t = dir.0.join("tampered.xml");
    std::fs::write(&t, tampered).unwrap();
    let v = run(&["verify", s(&t)]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains("INVALID:") && stdout(&v).contains("[EGOV_IT_"),
        "{}",
        stdout(&v)
    );

    // Judged an hour later, the Timestamp has expired.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let v = run(&["verify", s(&signed), "--now", &later]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stdout(&v).contains("scaduto"), "{}", stdout(&v));

    // Unsigned: 1; not SOAP or missing: 2.
    let v = run(&["verify", s(&req)]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    let junk = dir.0.join("junk.xml");
    std::fs::write(&junk, "not xml").unwrap();
    assert_eq!(run(&["verify", s(&junk)]).status.code(), Some(2));
    assert_eq!(run(&["verify", "/nonexistent.xml"]).status.code(), Some(2));

    // `pdd sign` without a key to sign with says how to give one.
    let o = run(&["sign", s(&req)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--key"), "{}", stderr(&o));
}

#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn partners_are_added_and_removed_on_a_running_gateway() {
    common::require(common::Peer::Curl);
    let dir = TempDir::new("cli-partner");
    let certs = dir.0.join("certs");
    let (mkey, mcert, _) = certs_init(&certs, "ministero", "MinisteroLavoro");
    let (ekey, ecert, efp) = certs_init(&certs, "emilia", "EMILIA");
    let config = dir.0.join("pdd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            s(&dir.0.join("data")),
            s(&mcert),
            s(&mkey)
        ),
    )
    .unwrap();
    let cfg = s(&config);
    let gw =
        common::PddProcess::spawn(&["--config".as_ref(), config.as_os_str(), "serve".as_ref()]);
    let url = format!("https://{}/pdd/PA", gw.addr);
    let send = |file: &Path| {
        let body = std::fs::read(file).unwrap();
        curl(
            &[
                "--cacert",
                s(&mcert),
                "--cert",
                s(&ecert),
                "--key",
                s(&ekey),
                &url,
            ],
            &body,
        )
    };

    // EMILIA's certificate is unknown yet: refused at the handshake.
    let (code, status, _) = send(&request(&dir.0, 0));
    assert_ne!(code, 0);
    assert_eq!(status, 0);

    // Expired, unreadable, not yet valid or CA (no signing key usage) certificates are refused
    // before reaching the gateway.
    let pki = Pki::new();
    let expired = pki.make("expired", "EMILIA", false, 1, -10);
    let future = pki.make("future", "EMILIA", false, 30, 5);
    let missing = PathBuf::from("/nonexistent.crt");
    for (cert, why) in [
        (&expired.cert, "scaduto"),
        (&missing, "cannot read"),
        (&future.cert, "non ancora valido"),
        (&pki.ca_path(), "uso della chiave"),
    ] {
        let o = run(&[
            "--config",
            cfg,
            "partner",
            "add",
            "--nome",
            "EMILIA",
            "--cert",
            s(cert),
        ]);
        assert_eq!(o.status.code(), Some(2), "{why}");
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }

    // Added live, with signatures required.
    let o = run(&[
        "--config",
        cfg,
        "partner",
        "add",
        "--nome",
        "EMILIA",
        "--cert",
        s(&ecert),
        "--firma",
        "required",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("added to the running gateway"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(&efp));

    // Now the handshake passes; unsigned is EGOV_IT_200, signed is served with a signed answer.
    let (code, status, body) = send(&request(&dir.0, 1));
    assert_eq!((code, status), (0, 500), "{body}");
    assert!(body.contains(r#"codiceEccezione="EGOV_IT_200""#), "{body}");
    let req = request(&dir.0, 2);
    let o = run(&["sign", s(&req), "--key", s(&ekey), "--cert", s(&ecert)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let signed = dir.0.join("signed.xml");
    std::fs::write(&signed, &o.stdout).unwrap();
    let (code, status, body) = send(&signed);
    assert_eq!((code, status), (0, 200), "{body}");
    assert_eq!(common::text_of(&body, "Tipo_Risposta"), Some("OK"));
    let answer = dir.0.join("answer.xml");
    std::fs::write(&answer, &body).unwrap();
    let v = run(&["verify", s(&answer), "--cert", s(&mcert)]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));

    // list and show tell where the partner comes from and what it is trusted with.
    let o = run(&["--config", cfg, "partner", "list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let emilia = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["nome"] == "EMILIA")
        .expect("EMILIA listed");
    assert_eq!(emilia["origine"], "store");
    assert_eq!(emilia["firma"], "required");
    let o = run(&["--config", cfg, "partner", "show", "EMILIA"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("CN=EMILIA") && stdout(&o).contains(&efp),
        "{}",
        stdout(&o)
    );
    let o = run(&["--config", cfg, "partner", "show", "NESSUNO"]);
    assert_eq!(o.status.code(), Some(1));

    // Removed live: the handshake fails again.
    let o = run(&["--config", cfg, "partner", "remove", "EMILIA"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (code, _, _) = send(&request(&dir.0, 3));
    assert_ne!(code, 0, "a removed partner must not pass the handshake");
    let o = run(&["--config", cfg, "partner", "remove", "EMILIA"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "only partners added by the CLI can be removed"
    );

    let (status, log) = gw.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("EMILIA"),
        "the log names the partner changes:\n{log}"
    );

    // After the restart nothing of it remains; added while stopped, it is there at start.
    let o = run(&[
        "--config",
        cfg,
        "partner",
        "add",
        "--nome",
        "EMILIA",
        "--cert",
        s(&ecert),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("will use it when started"),
        "{}",
        stdout(&o)
    );
    let gw =
        common::PddProcess::spawn(&["--config".as_ref(), config.as_os_str(), "serve".as_ref()]);
    let url2 = format!("https://{}/pdd/PA", gw.addr);
    let body = std::fs::read(request(&dir.0, 4)).unwrap();
    let (code, status, body) = curl(
        &[
            "--cacert",
            s(&mcert),
            "--cert",
            s(&ecert),
            "--key",
            s(&ekey),
            &url2,
        ],
        &body,
    );
    assert_eq!((code, status), (0, 200), "{body}");
    drop(gw);
}

/// examples/tls as the README runs it: setup.sh makes the keys and exchanges the certificates,
/// then EMILIA's local system posts to its porta delegata and the Ministry answers, over mTLS
/// with signatures both ways. On a copy of the example whose ports 8740/8742/8743/8744 are
/// replaced by free ones.
#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn the_tls_example_works_as_documented() {
    common::require(common::Peer::Curl);
    let dir = TempDir::new("cli-tls-example");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ports: Vec<(String, String)> = ["8740", "8742", "8743", "8744"]
        .iter()
        .zip(common::free_ports(4))
        .map(|(p, free)| (format!("127.0.0.1:{p}"), format!("127.0.0.1:{free}")))
        .collect();
    let example = dir.0.join("examples/tls");
    std::fs::create_dir_all(&example).unwrap();
    for f in ["setup.sh", "ministero.toml", "emilia.toml"] {
        let mut text = std::fs::read_to_string(root.join("examples/tls").join(f)).unwrap();
        for (from, to) in &ports {
            text = text.replace(from, to);
        }
        std::fs::write(example.join(f), text).unwrap();
    }
    let port = |documented: &str| {
        ports
            .iter()
            .find(|(from, _)| from.ends_with(documented))
            .map(|(_, to)| to.clone())
            .unwrap()
    };
    let setup = std::process::Command::new("bash")
        .arg(example.join("setup.sh"))
        .current_dir(&dir.0)
        .env("PDD", env!("CARGO_BIN_EXE_pdd"))
        .output()
        .unwrap();
    assert!(setup.status.success(), "{}", stderr(&setup));
    assert!(stdout(&setup).contains("Ready."), "{}", stdout(&setup));
    let again = std::process::Command::new("bash")
        .arg(example.join("setup.sh"))
        .current_dir(&dir.0)
        .env("PDD", env!("CARGO_BIN_EXE_pdd"))
        .output()
        .unwrap();
    assert!(!again.status.success(), "setup.sh must not overwrite keys");

    let ministero = example.join("ministero.toml");
    let emilia = example.join("emilia.toml");
    let m = common::PddProcess::spawn_in(
        &dir.0,
        &["--config".as_ref(), ministero.as_os_str(), "serve".as_ref()],
    );
    let e = common::PddProcess::spawn_in(
        &dir.0,
        &["--config".as_ref(), emilia.as_os_str(), "serve".as_ref()],
    );
    assert_eq!(m.addr, port(":8743"));
    let body = std::fs::read(root.join("examples/invio-candidatura-sil.xml")).unwrap();
    let url = format!(
        "http://{}/pdd/PD/ClicLavoro/InvioCandidatura",
        port(":8742")
    );
    let (code, status, answer) = curl(&[&url], &body);
    assert_eq!((code, status), (0, 200), "{answer}");
    assert_eq!(
        common::text_of(&answer, "Tipo_Risposta"),
        Some("OK"),
        "{answer}"
    );

    // The Ministry recorded a signed request from EMILIA, which came over TLS.
    let o = pdd_bin()
        .current_dir(&dir.0)
        .args(["--config", s(&ministero), "trace", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = &v.as_array().expect("a list")[0];
    assert_eq!(last["mittente"], "SPC/EMILIA", "{last}");
    assert_eq!(last["outcome"], "ok", "{last}");
    drop((m, e));
}
