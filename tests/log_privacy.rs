//! What `pdd serve` logs at info level carries no personal data: run real exchanges through
//! the binary (a valid CV, one with a wrong codice fiscale, a contact, a CV through the porta
//! delegata to a partner that is down) and search the whole log for the people's data.

mod common;

use common::{PddProcess, Req, TempDir};

#[test]
fn info_logs_name_no_person() {
    let dir = TempDir::new("privacy");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.0.join("pdd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata = \"{}\"\nrole = \"ncn\"\n\
             [[registry.soggetti]]\nnome = \"LAZIO\"\nurl = \"http://127.0.0.1:{dead}/pdd/PA\"\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let p = PddProcess::spawn(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let post = |path: &str, body: String| {
        let (_, status, out) = common::curl(
            &[
                &format!("http://127.0.0.1:{port}{path}"),
                "-H",
                "X-PDD-Destinatario: SPC/LAZIO",
            ],
            body.as_bytes(),
        );
        (status, out)
    };
    let cv = common::example("moduli/candidatura-2.0.xml");
    let (s, out) = post("/pdd/PA", Req::invio(common::invio_candidatura(&cv)).xml());
    assert_eq!(s, 200, "{out}");
    let bad = cv.replace("BNCLRA85M41F205C", "BNCLRA85M41F205X");
    let (s, out) = post("/pdd/PA", Req::invio(common::invio_candidatura(&bad)).xml());
    assert!(s == 200 && out.contains("KO"), "{out}");
    let sil = common::example("invio-candidatura-sil.xml");
    let _ = post("/pdd/PD/ClicLavoro/InvioCandidatura", sil);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, log) = p.terminate();
    assert!(status.success());
    assert!(log.contains("exchange"), "{log}");
    // Plain text off a terminal, and each exchange's lines carry its span: Identificatore,
    // Mittente, Servizio, Azione.
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );
    assert!(
        log.lines().any(|l| l.contains("pa{seq=")
            && l.contains("id=\"EMILIA_")
            && l.contains("mittente=\"SPC/EMILIA\"")
            && l.contains("servizio=\"SPC/ClicLavoro\"")
            && l.contains("azione=\"InvioCandidatura\"")),
        "{log}"
    );
    for personale in [
        "BNCLRA85M41F205C",
        "BNCLRA85M41F205X",
        "BIANCHI",
        "LAURA",
        "laura.bianchi",
        "@example.it",
        "Via delle Moline",
    ] {
        assert!(
            !log.contains(personale),
            "'{personale}' in the info log:\n{}",
            log.lines()
                .filter(|l| l.contains(personale))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
