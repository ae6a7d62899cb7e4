//! The correlation of an asynchronous conversation through the porta delegata, between two
//! gateways: the first request of an asymmetric exchange opens the conversation (its
//! Collaborazione is its own Identificatore, returned to the local system), and the status
//! request the local system sends with `X-PDD-RiferimentoMessaggio` and `X-PDD-Collaborazione`
//! carries them in its busta; the erogatore checks them against what it received.

mod common;

use pdd::config::Config;
use pdd::egov::Profilo;
use pdd::registry::{Azione, Servizio, Soggetto};

fn stato() -> Servizio {
    Servizio {
        tipo: "SPC".into(),
        nome: "Stato".into(),
        erogatore: "SPC/MinisteroLavoro".into(),
        profilo: Profilo::AsincronoAsimmetrico,
        azione_obbligatoria: true,
        azioni: vec![
            Azione {
                nome: "richiesta".into(),
                profilo: None,
                correlata: None,
            },
            Azione {
                nome: "checkRichiesta".into(),
                profilo: None,
                correlata: Some("richiesta".into()),
            },
        ],
        fruitori: vec![],
        filtro_duplicati: true,
        backend: None,
        handler: Some("echo".into()),
        correlato: None,
    }
}

async fn pd(gw: &common::Running, azione: &str, headers: &[(&str, &str)]) -> common::Reply {
    let body = pdd::soap::envelope(&[], "<s:q xmlns:s=\"urn:stato\">pratica 42</s:q>");
    common::post(
        &gw.url(&format!("/pdd/PD/Stato/{azione}")),
        body.into_bytes(),
        headers,
    )
    .await
}

fn header<'a>(r: &'a common::Reply, nome: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(nome))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asymmetric_conversation_is_correlated_through_the_porta_delegata() {
    // The Ministry offers the asymmetric service.
    let mut c = Config::default();
    c.registry.servizi.push(stato());
    let ministero = common::start(c).await;
    // EMILIA's gateway, whose local system calls it.
    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(ministero.url("/pdd/PA"));
    c.registry.soggetti.push(m);
    c.registry.servizi.push(stato());
    let emilia = common::start(c).await;

    // The request: the conversation opens with its own Identificatore.
    let r = pd(&emilia, "richiesta", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let primo = header(&r, "X-PDD-RiferimentoMessaggio")
        .expect("the request's Identificatore")
        .to_string();
    assert_eq!(header(&r, "X-PDD-Collaborazione"), Some(primo.as_str()));
    let inviata = |gw: &common::Running| {
        let s = gw.gw.store.clone();
        async move {
            let e = s.recent(1).await.unwrap().remove(0);
            String::from_utf8(s.exchange(e.seq).await.unwrap().unwrap().request).unwrap()
        }
    };
    let ricevuta = inviata(&ministero).await;
    assert!(
        ricevuta.contains(&format!(
            "<eGov_IT:Collaborazione>{primo}</eGov_IT:Collaborazione>"
        )),
        "{ricevuta}"
    );

    // The status request names the request and the conversation.
    let r = pd(
        &emilia,
        "checkRichiesta",
        &[
            ("X-PDD-RiferimentoMessaggio", &primo),
            ("X-PDD-Collaborazione", &primo),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(header(&r, "X-PDD-Collaborazione"), Some(primo.as_str()));
    let ricevuta = inviata(&ministero).await;
    for el in ["RiferimentoMessaggio", "Collaborazione"] {
        assert!(
            ricevuta.contains(&format!("<eGov_IT:{el}>{primo}</eGov_IT:{el}>")),
            "{el}: {ricevuta}"
        );
    }

    // The Ministry checks the correlation: missing (109), naming no request of the correlated
    // azione received there (111), of another conversation (104).
    let altro = primo.replacen("_0", "_9", 1);
    assert_ne!(altro, primo);
    for (h, codice) in [
        (vec![], "EGOV_IT_109"),
        (
            vec![
                ("X-PDD-RiferimentoMessaggio", altro.as_str()),
                ("X-PDD-Collaborazione", primo.as_str()),
            ],
            "EGOV_IT_111",
        ),
        (
            vec![
                ("X-PDD-RiferimentoMessaggio", primo.as_str()),
                ("X-PDD-Collaborazione", altro.as_str()),
            ],
            "EGOV_IT_104",
        ),
    ] {
        let r = pd(&emilia, "checkRichiesta", &h).await;
        assert_eq!(r.status, 500, "{codice}: {}", r.body);
        assert!(r.body.contains(codice), "{codice}: {}", r.body);
    }

    // A correlation that is not an Identificatore is not sent.
    let r = pd(
        &emilia,
        "checkRichiesta",
        &[("X-PDD-Collaborazione", "pratica-42")],
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("X-PDD-Collaborazione"), "{}", r.body);
}

/// A symmetric service offered by the Ministry, whose risposta comes back to EMILIA's
/// servizio correlato.
fn pratica() -> (Servizio, Servizio) {
    let richiesta = Servizio {
        tipo: "SPC".into(),
        nome: "Pratica".into(),
        erogatore: "SPC/MinisteroLavoro".into(),
        profilo: Profilo::AsincronoSimmetrico,
        azione_obbligatoria: true,
        azioni: vec![Azione {
            nome: "richiesta".into(),
            profilo: None,
            correlata: None,
        }],
        fruitori: vec![],
        filtro_duplicati: true,
        backend: None,
        handler: Some("echo".into()),
        correlato: Some("EsitoPratica".into()),
    };
    let esito = Servizio {
        nome: "EsitoPratica".into(),
        erogatore: "SPC/EMILIA".into(),
        azioni: vec![Azione {
            nome: "esito".into(),
            profilo: None,
            correlata: Some("richiesta".into()),
        }],
        correlato: None,
        ..richiesta.clone()
    };
    (richiesta, esito)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symmetric_risposta_comes_back_to_the_servizio_correlato_and_is_checked_there() {
    let (richiesta, esito) = pratica();
    let mut c = Config::default();
    c.registry
        .servizi
        .extend([richiesta.clone(), esito.clone()]);
    let ministero = common::start(c).await;
    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(ministero.url("/pdd/PA"));
    c.registry.soggetti.push(m);
    c.registry.servizi.extend([richiesta, esito]);
    let emilia = common::start(c).await;
    // The Ministry reaches EMILIA's porta applicativa for the risposta: its registry entry.
    // (Partners added at run time complete the configured registry.)
    let mut e = Soggetto::new("SPC", "EMILIA");
    e.url = Some(emilia.url("/pdd/PA"));
    ministero.gw.aggiungi_partner(e).await.unwrap();

    // EMILIA's request names the servizio correlato.
    let body = pdd::soap::envelope(&[], "<s:q xmlns:s=\"urn:pratica\">pratica 7</s:q>");
    let r = common::post(
        &emilia.url("/pdd/PD/Pratica/richiesta"),
        body.clone().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let primo = header(&r, "X-PDD-RiferimentoMessaggio")
        .unwrap()
        .to_string();
    assert_eq!(header(&r, "X-PDD-Collaborazione"), Some(primo.as_str()));
    let e = ministero.gw.store.recent(1).await.unwrap().remove(0);
    let ricevuta = String::from_utf8(
        ministero
            .gw
            .store
            .exchange(e.seq)
            .await
            .unwrap()
            .unwrap()
            .request,
    )
    .unwrap();
    assert!(
        ricevuta.contains(r#"servizioCorrelato="EsitoPratica""#),
        "{ricevuta}"
    );

    // The Ministry's backend sends the risposta through its porta delegata, correlated.
    let risposta = |collaborazione: String| {
        let url = ministero.url("/pdd/PD/EsitoPratica/esito");
        let (body, primo) = (body.clone(), primo.clone());
        async move {
            common::post(
                &url,
                body.into_bytes(),
                &[
                    ("X-PDD-Destinatario", "SPC/EMILIA"),
                    ("X-PDD-RiferimentoMessaggio", &primo),
                    ("X-PDD-Collaborazione", &collaborazione),
                ],
            )
            .await
        }
    };
    let r = risposta(primo.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // At EMILIA the risposta is checked against the request it sent: another conversation is
    // refused.
    let r = risposta(primo.replacen("_0", "_9", 1)).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("EGOV_IT_104"), "{}", r.body);
}
