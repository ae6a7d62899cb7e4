//! The ClicLavoro handler over the real server: validation answers (OK / KO with every
//! problem), lifecycle states in the store (active, rectified, closed), validity capping.

mod common;

use std::sync::Arc;

use common::{post, text_of, Req};
use pdd::clock::FixedClock;
use pdd::config::Config;
use pdd::modulo::ws;
use pdd::store::StatoModulo;

/// 2026-11-24 10:00, the day the Rev.038 samples were "inserted".
fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+01:00").unwrap(),
    ))
}

fn sample(name: &str) -> String {
    common::example(&format!("moduli/{name}"))
}

/// Sends a modulo with the azione of its kind; returns (Tipo_Risposta, Descr_Esito).
async fn invia(url: &str, azione: &str, modulo: &str, n: u32) -> (String, String) {
    let op = ws::operazione(azione).unwrap();
    let mut req = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "ClicLavoro",
        Some(azione),
        ws::richiesta(op, modulo),
    );
    req.id = format!("EMILIA_EMILIASPCoopIT_{:07}_2026-11-24_10:00", 100 + n);
    req.ora = "2026-11-24T10:00:00".into();
    let r = post(url, req.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (
        text_of(&r.body, "Tipo_Risposta").unwrap().to_string(),
        text_of(&r.body, "Descr_Esito").unwrap().to_string(),
    )
}

#[tokio::test]
async fn lifecycle_of_a_candidatura() {
    let gw = common::start_with_clock(Config::default(), clock()).await;
    let url = gw.url("/pdd/PA");
    let store = gw.gw.store.clone();
    let stato = async |code: &str| {
        store
            .modulo(pdd::modulo::Tipo::Candidatura, code)
            .await
            .unwrap()
            .map(|m| m.stato)
    };
    const ORIGINALE: &str = "SILCO26200000000000000318";
    const RETTIFICA: &str = "SILCO26200000000000000327";
    const CHIUSURA: &str = "SILCO26200000000000000331";

    // A rettifica of something never received is refused.
    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038-rettifica.xml"),
        1,
    )
    .await;
    assert_eq!(esito, "KO");
    assert!(descr.contains("[PRECEDENTE_SCONOSCIUTO]"), "{descr}");

    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038.xml"),
        2,
    )
    .await;
    assert_eq!(
        (esito.as_str(), descr.as_str()),
        (
            "OK",
            "Candidatura ricevuta correttamente (codice SILCO26200000000000000318)"
        )
    );
    let m = store
        .modulo(pdd::modulo::Tipo::Candidatura, ORIGINALE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            m.stato,
            m.versione.as_str(),
            m.scadenza.map(|d| d.to_string()).as_deref()
        ),
        (StatoModulo::Attivo, "rev038", Some("2027-01-08"))
    );
    assert!(m.xml.contains("MRNTMS91C14Z133A"));

    // The very same document again (a redelivery): answered OK, nothing changes.
    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038.xml"),
        3,
    )
    .await;
    assert_eq!(
        (esito.as_str(), descr.as_str()),
        ("OK", "Candidatura già ricevuta, identica: nessuna modifica")
    );
    assert_eq!(
        store
            .modulo(pdd::modulo::Tipo::Candidatura, ORIGINALE)
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        m.updated_at
    );
    // The same code with other content, not as a rettifica: refused (Rev.038).
    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038.xml").replace("3391122334", "3391122335"),
        30,
    )
    .await;
    assert_eq!(esito, "KO");
    assert!(descr.contains("[CODICE_GIA_PRESENTE]"), "{descr}");

    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038-rettifica.xml"),
        4,
    )
    .await;
    assert_eq!(esito, "OK", "{descr}");
    assert!(
        descr.contains("rettifica di SILCO26200000000000000318"),
        "{descr}"
    );
    assert_eq!(stato(ORIGINALE).await, Some(StatoModulo::Rettificato));
    assert_eq!(stato(RETTIFICA).await, Some(StatoModulo::Attivo));
    assert_eq!(
        store
            .modulo(pdd::modulo::Tipo::Candidatura, ORIGINALE)
            .await
            .unwrap()
            .unwrap()
            .attuale
            .as_deref(),
        Some(RETTIFICA)
    );

    let (esito, descr) = invia(
        &url,
        "InvioCandidatura",
        &sample("candidatura-rev038-chiusura.xml"),
        5,
    )
    .await;
    assert_eq!(esito, "OK", "{descr}");
    assert!(
        descr.contains("chiusura di SILCO26200000000000000318"),
        "{descr}"
    );
    for code in [ORIGINALE, RETTIFICA, CHIUSURA] {
        assert_eq!(stato(code).await, Some(StatoModulo::Chiuso), "{code}");
    }
}

#[tokio::test]
async fn validity_is_capped_and_recorded() {
    let gw = common::start_with_clock(Config::default(), clock()).await;
    let url = gw.url("/pdd/PA");
    // The sample Vacancy asks for 31 days from receipt: it gets 30.
    let v = sample("vacancy-rev038.xml");
    let (esito, descr) = invia(&url, "InvioVacancy", &v, 1).await;
    assert_eq!(esito, "OK", "{descr}");
    let code = text_of(&v, "codiceofferta").unwrap();
    let m = gw
        .gw
        .store
        .modulo(pdd::modulo::Tipo::Vacancy, code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text_of(&v, "datascadenza"), Some("2026-12-25"));
    assert!(descr.contains("scadenza fissata al 2026-12-24"), "{descr}");
    assert_eq!(
        m.scadenza.map(|d| d.to_string()).as_deref(),
        Some("2026-12-24")
    );

    // A Candidatura without datascadenza (allowed in Rev.038) gets the maximum, 45 days.
    let c = sample("candidatura-rev038.xml");
    let s = c.find("<cl:datascadenza>").unwrap();
    let e = c.find("</cl:datascadenza>").unwrap() + "</cl:datascadenza>".len();
    let senza = format!("{}{}", &c[..s], &c[e..]);
    let (esito, descr) = invia(&url, "InvioCandidatura", &senza, 2).await;
    assert_eq!(esito, "OK", "{descr}");
    assert!(descr.contains("scadenza fissata al 2027-01-08"), "{descr}");
    let m = gw
        .gw
        .store
        .modulo(pdd::modulo::Tipo::Candidatura, "SILCO26200000000000000318")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        m.scadenza.map(|d| d.to_string()).as_deref(),
        Some("2027-01-08")
    );
}

#[tokio::test]
async fn every_problem_is_listed_and_kinds_must_match_the_azione() {
    let gw = common::start_with_clock(Config::default(), clock()).await;
    let url = gw.url("/pdd/PA");
    // Two problems at once: a rule (domicile abroad) and a schema one (a 24-character code).
    let c = sample("candidatura-rev038.xml")
        .replace(
            "<cl:idcomune>C933</cl:idcomune>",
            "<cl:idcomune>Z133</cl:idcomune>",
        )
        .replace("SILCO26200000000000000318", "SILCO2620000000000000318");
    let (esito, descr) = invia(&url, "InvioCandidatura", &c, 1).await;
    assert_eq!(esito, "KO");
    assert!(
        descr.contains("[XSD_LUNGHEZZA]") && descr.contains("[DOMICILIO_ESTERO]"),
        "{descr}"
    );
    assert!(
        descr.starts_with("Candidatura non valida: 2 problemi"),
        "{descr}"
    );
    // A Vacancy sent as InvioMessaggio.
    let (esito, descr) = invia(&url, "InvioMessaggio", &sample("vacancy-2.0.xml"), 2).await;
    assert_eq!(esito, "KO");
    assert!(descr.contains("il modulo è una Vacancy"), "{descr}");
    // The Messaggio itself.
    let (esito, descr) = invia(&url, "InvioMessaggio", &sample("messaggio-rev038.xml"), 3).await;
    assert_eq!(esito, "OK", "{descr}");
    assert!(
        descr.starts_with("Messaggio ricevuto correttamente"),
        "{descr}"
    );
}
