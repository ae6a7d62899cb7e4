//! SOAP with Attachments between two gateways, and malformed multipart bodies at a porta
//! applicativa. The local system posts `multipart/related` to EMILIA's porta delegata; EMILIA
//! sends the busta with a Manifest (the original Body as the `Richiesta` part); the Ministry's
//! porta applicativa checks the Manifest, gives the echo service its Body and attachments, and
//! answers with a `Risposta` Manifest, which EMILIA undoes for its local system. The faulty
//! bodies are written by hand here, not by the project's writer.

mod common;

use pdd::config::Config;
use pdd::egov::Profilo;
use pdd::mime::{self, Limiti, Parte};
use pdd::registry::{Servizio, Soggetto};

fn documenti() -> Servizio {
    Servizio {
        tipo: "SPC".into(),
        nome: "Documenti".into(),
        erogatore: "SPC/MinisteroLavoro".into(),
        profilo: Profilo::Sincrono,
        azione_obbligatoria: false,
        azioni: vec![],
        fruitori: vec![],
        filtro_duplicati: true,
        backend: None,
        handler: Some("echo".into()),
        correlato: None,
    }
}

fn ministero_config() -> Config {
    let mut c = Config::default();
    c.registry.servizi.push(documenti());
    c
}

/// A multipart/related body written by hand: the parts as (headers, content).
fn multipart(boundary: &str, parti: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (h, c) in parti {
        b.extend_from_slice(format!("--{boundary}\r\n{h}\r\n\r\n").as_bytes());
        b.extend_from_slice(c);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\r\n".to_vec();
    v.extend(0..=255u8);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_travel_both_ways_with_a_manifest() {
    let ministero = common::start(ministero_config()).await;
    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(ministero.url("/pdd/PA"));
    c.registry.soggetti.push(m);
    c.registry.servizi.push(documenti());
    let emilia = common::start(c).await;

    let envelope = pdd::soap::envelope(&[], "<d:invio xmlns:d=\"urn:doc\">pratica 7</d:invio>");
    let body = multipart(
        "confine-1",
        &[
            (
                "Content-Type: text/xml; charset=utf-8\r\nContent-ID: <root@sil>",
                envelope.as_bytes(),
            ),
            (
                "Content-Type: application/pdf\r\nContent-ID: <cv@sil>",
                &pdf(),
            ),
            // No Content-ID: the porta delegata gives it one to name it in the Manifest.
            ("Content-Type: text/plain", b"nota\r\n"),
        ],
    );
    let ct = "multipart/related; type=\"text/xml\"; boundary=\"confine-1\"; start=\"<root@sil>\"";
    let r = common::post(
        &emilia.url("/pdd/PD/Documenti/invio"),
        body,
        &[("Content-Type", ct)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rct = r.header("Content-Type").unwrap_or("").to_string();
    assert!(mime::is_multipart_related(&rct), "{rct}: {}", r.body);
    let risposta = mime::leggi(&rct, &r.octets, Limiti::default()).unwrap();
    // The local system gets the echoed Body back in the Body, and its two attachments.
    let radice = String::from_utf8(risposta.radice.contenuto.clone()).unwrap();
    assert!(radice.contains("pratica 7"), "{radice}");
    assert!(!radice.contains("Descrizione"), "{radice}");
    assert_eq!(risposta.allegati.len(), 2, "{:?}", risposta.allegati);
    assert_eq!(risposta.allegati[0].contenuto, pdf());
    assert_eq!(risposta.allegati[0].content_id.as_deref(), Some("cv@sil"));
    assert_eq!(risposta.allegati[1].contenuto, b"nota\r\n");

    // On the wire to the Ministry: a Manifest in the Body, three parts, the Body last.
    let ricevuto = |gw: &common::Running| {
        let s = gw.gw.store.clone();
        async move {
            let e = s.recent(1).await.unwrap().remove(0);
            s.exchange(e.seq).await.unwrap().unwrap()
        }
    };
    let ex = ricevuto(&ministero).await;
    let testo = String::from_utf8_lossy(&ex.request).into_owned();
    assert!(testo.contains("<eGov_IT:Descrizione"), "{testo}");
    assert_eq!(testo.matches("<eGov_IT:Riferimento ").count(), 3, "{testo}");
    assert!(
        testo.contains("href=\"cid:cv@sil\" role=\"Allegato\""),
        "{testo}"
    );
    assert!(testo.contains("role=\"Richiesta\""), "{testo}");
    // Its answer, as EMILIA received it: the Risposta Manifest.
    let ex = ricevuto(&emilia).await;
    let testo = String::from_utf8_lossy(&ex.response).into_owned();
    assert!(testo.contains("role=\"Risposta\""), "{testo}");
}

/// The Ministry's porta applicativa, posted a busta whose multipart body is `corpo`.
async fn posta(gw: &common::Running, ct: &str, corpo: Vec<u8>) -> common::Reply {
    common::post(&gw.url("/pdd/PA"), corpo, &[("Content-Type", ct)]).await
}

/// A busta to the echo service whose Body is `body`, as the root part's content.
fn busta(body: &str) -> Vec<u8> {
    common::Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "Documenti",
        Some("invio"),
        body.into(),
    )
    .xml()
    .into_bytes()
}

/// A Manifest naming `riferimenti` as (href, role).
fn manifest(riferimenti: &[(&str, &str)]) -> String {
    let mut m = String::from(
        "<eGov_IT:Descrizione xmlns:eGov_IT=\"http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/\">",
    );
    for (n, (href, role)) in riferimenti.iter().enumerate() {
        m.push_str(&format!(
            "<eGov_IT:DescrizioneMessaggio><eGov_IT:Riferimento href=\"{href}\" role=\"{role}\" eGov_IT:id=\"attachment{}\"><eGov_IT:Schema posizione=\"text/xml\"/><eGov_IT:Titolo Lingua=\"it\">{role}</eGov_IT:Titolo></eGov_IT:Riferimento></eGov_IT:DescrizioneMessaggio>",
            n + 1
        ));
    }
    m.push_str("</eGov_IT:Descrizione>");
    m
}

const CT: &str = "multipart/related; type=\"text/xml\"; boundary=\"b0\"";
const ROOT: &str = "Content-Type: text/xml; charset=utf-8";
const CORPO: &[u8] = b"<d:invio xmlns:d=\"urn:doc\">x</d:invio>";

fn codici(r: &common::Reply) -> Vec<String> {
    r.body
        .match_indices("codiceEccezione=\"")
        .map(|(i, m)| r.body[i + m.len()..i + m.len() + 11].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_multipart_bodies_get_the_standard_answers() {
    let mut c = ministero_config();
    c.limits.max_allegato_bytes = 1000;
    let gw = common::start(c).await;
    let giusta = || busta(&manifest(&[("cid:corpo@x", "Richiesta")]));

    // A well-formed one first: accepted, the echo answering with the Body as a part.
    let ok = multipart("b0", &[(ROOT, &giusta()), ("Content-ID: <corpo@x>", CORPO)]);
    let r = posta(&gw, CT, ok.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("urn:doc"), "{}", r.body);

    // No boundary, a body cut before its closing delimiter: no envelope can be read, Fault 001.
    for (ct, corpo, motivo) in [
        (
            "multipart/related; type=\"text/xml\"",
            ok.clone(),
            "boundary",
        ),
        (CT, ok[..ok.len() - 8].to_vec(), "chiusura"),
        (
            "multipart/related; type=\"application/xop+xml\"; boundary=b0",
            ok.clone(),
            "MTOM",
        ),
    ] {
        let r = posta(&gw, ct, corpo).await;
        assert_eq!(r.status, 500, "{motivo}: {}", r.body);
        assert!(r.body.contains("EGOV_IT_001"), "{motivo}: {}", r.body);
        assert!(r.body.contains(motivo), "{motivo}: {}", r.body);
        assert!(!r.body.contains("Intestazione"), "a bare Fault: {}", r.body);
    }

    // The Manifest names a part that is not there: 119; a part it does not name: 120.
    let manca = multipart(
        "b0",
        &[
            (
                ROOT,
                &busta(&manifest(&[
                    ("cid:corpo@x", "Richiesta"),
                    ("cid:perso@x", "Allegato"),
                ])),
            ),
            ("Content-ID: <corpo@x>", CORPO),
        ],
    );
    let r = posta(&gw, CT, manca).await;
    assert_eq!(codici(&r), ["EGOV_IT_119"], "{}", r.body);
    let in_piu = multipart(
        "b0",
        &[
            (ROOT, &giusta()),
            ("Content-ID: <corpo@x>", CORPO),
            ("Content-ID: <extra@x>", b"?"),
        ],
    );
    let r = posta(&gw, CT, in_piu).await;
    assert_eq!(codici(&r), ["EGOV_IT_120"], "{}", r.body);

    // A doubled Content-ID, or a part over the limit: the attachments are malformed, 003.
    let doppio = multipart(
        "b0",
        &[
            (ROOT, &giusta()),
            ("Content-ID: <corpo@x>", CORPO),
            ("Content-ID: <corpo@x>", b"altro"),
        ],
    );
    let r = posta(&gw, CT, doppio).await;
    assert_eq!(codici(&r), ["EGOV_IT_003"], "{}", r.body);
    assert!(r.body.contains("ripetuto"), "{}", r.body);
    let grande = vec![b'x'; 1001];
    let troppo = multipart(
        "b0",
        &[
            (ROOT, &giusta()),
            ("Content-ID: <corpo@x>", CORPO),
            ("Content-ID: <grande@x>", &grande),
        ],
    );
    let r = posta(&gw, CT, troppo).await;
    assert_eq!(codici(&r), ["EGOV_IT_003"], "{}", r.body);

    // Attachments without a Manifest in the Body: 003; without a principal part: 118.
    let senza = multipart(
        "b0",
        &[
            (ROOT, &busta("<d:invio xmlns:d=\"urn:doc\"/>")),
            ("Content-ID: <corpo@x>", CORPO),
        ],
    );
    let r = posta(&gw, CT, senza).await;
    assert_eq!(codici(&r), ["EGOV_IT_003"], "{}", r.body);
    let senza_principale = multipart(
        "b0",
        &[
            (ROOT, &busta(&manifest(&[("cid:corpo@x", "Allegato")]))),
            ("Content-ID: <corpo@x>", CORPO),
        ],
    );
    let r = posta(&gw, CT, senza_principale).await;
    assert_eq!(codici(&r), ["EGOV_IT_118"], "{}", r.body);
}

/// The Ministry's configuration requiring EMILIA's signature over its attachments, plain HTTP
/// (the signature is checked against EMILIA's pinned certificate).
fn ministero_firma(emilia: &common::KeyPair) -> Config {
    let mut c = ministero_config();
    let mut s = Soggetto::new("SPC", "EMILIA");
    s.cert = Some(emilia.cert.display().to_string());
    s.firma = Some(pdd::registry::PoliticaFirma::Required);
    s.firma_allegati = true;
    c.registry.soggetti.push(s);
    c
}

/// `xml` signed by `kp`, covering `allegati` by cid: (none: the attachments left out).
fn firmata(kp: &common::KeyPair, xml: &[u8], allegati: &[Parte]) -> String {
    let (key, cert) = kp.load();
    pdd::wssec::dsig::firma_con_allegati(
        std::str::from_utf8(xml).unwrap(),
        &key,
        &cert,
        chrono::Utc::now(),
        chrono::Duration::minutes(5),
        pdd::wssec::dsig::Copertura::Intestazione,
        allegati,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_that_signs_attachments_must_sign_them_all() {
    let pki = common::Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let gw = common::start(ministero_firma(&emilia)).await;
    let parti = vec![
        Parte::nuova("corpo@x", "text/xml", CORPO.to_vec()),
        Parte::nuova("pdf@x", "application/pdf", pdf()),
    ];
    let xml = || {
        busta(&manifest(&[
            ("cid:corpo@x", "Richiesta"),
            ("cid:pdf@x", "Allegato"),
        ]))
    };
    let invia = |firmato: String, parti: Vec<Parte>| {
        let (ct, corpo) = mime::scrivi("b1", firmato.as_bytes(), &parti);
        let gw = &gw;
        async move { posta(gw, &ct, corpo).await }
    };
    // Everything covered: accepted.
    let r = invia(firmata(&emilia, &xml(), &parti), parti.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("urn:doc"), "{}", r.body);
    // One octet of the PDF changed on the way: EGOV_IT_202.
    let mut cambiate = parti.clone();
    cambiate[1].contenuto[3] ^= 1;
    let r = invia(firmata(&emilia, &xml(), &parti), cambiate).await;
    assert_eq!(codici(&r), ["EGOV_IT_202"], "{}", r.body);
    // The Body and busta signed, the attachments not: refused too (the content is in them).
    let r = invia(firmata(&emilia, &xml(), &[]), parti.clone()).await;
    assert_eq!(codici(&r), ["EGOV_IT_202"], "{}", r.body);
    let ex = gw.gw.store.recent(1).await.unwrap().remove(0);
    assert!(
        ex.note.as_deref().unwrap_or("").contains("non è coperto"),
        "{:?}",
        ex.note
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_over_tls_sign_their_attachments() {
    let pki = common::Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let mut c = ministero_firma(&emilia);
    c.tls.cert = Some(me.cert.clone());
    c.tls.key = Some(me.key.clone());
    c.tls.ca = vec![pki.ca_path()];
    let ministero = common::start(c).await;

    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    c.tls.cert = Some(emilia.cert.clone());
    c.tls.key = Some(emilia.key.clone());
    c.tls.ca = vec![pki.ca_path()];
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(format!(
        "https://127.0.0.1:{}/pdd/PA",
        ministero.addr.port()
    ));
    m.cert = Some(me.cert.display().to_string());
    m.firma = Some(pdd::registry::PoliticaFirma::Required);
    m.firma_allegati = true;
    c.registry.soggetti.push(m);
    c.registry.servizi.push(documenti());
    let regione = common::start(c).await;

    let envelope = pdd::soap::envelope(&[], "<d:invio xmlns:d=\"urn:doc\">firmato</d:invio>");
    let allegati = [Parte::nuova("cv@sil", "application/pdf", pdf())];
    let (ct, corpo) = mime::scrivi("sil-b", envelope.as_bytes(), &allegati);
    let local = regione.local.expect("local listener");
    let r = common::post(
        &format!("http://{local}/pdd/PD/Documenti/invio"),
        corpo,
        &[("Content-Type", &ct)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rct = r.header("Content-Type").unwrap_or("").to_string();
    let m = mime::leggi(&rct, &r.octets, Limiti::default()).unwrap();
    assert_eq!(m.allegati.len(), 1);
    assert_eq!(m.allegati[0].contenuto, pdf());
    // Both ways the signature covered the two parts (the attachment and the Body's part).
    let out = regione.gw.store.recent(1).await.unwrap().remove(0);
    let ex = regione.gw.store.exchange(out.seq).await.unwrap().unwrap();
    for (verso, octets) in [("richiesta", &ex.request), ("risposta", &ex.response)] {
        let t = String::from_utf8_lossy(octets);
        assert_eq!(
            t.matches("<ds:Reference URI=\"cid:").count(),
            2,
            "{verso}: {t}"
        );
    }
}
