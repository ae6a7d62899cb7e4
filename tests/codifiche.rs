//! Encodings and SOAP rules on the real server: a signed busta sent in ISO-8859-1 (named by the
//! HTTP charset, or by the XML declaration alone), in windows-1252 and in UTF-16 is accepted,
//! its signature verified; an encoding the gateway does not read is refused.

mod common;

use common::{text_of, KeyPair, Pki, Req};
use pdd::config::Config;
use pdd::registry::{PoliticaFirma, Soggetto};

/// The Ministry's gateway, requiring EMILIA's signature.
fn ministry(emilia: &KeyPair) -> Config {
    let mut c = Config::default();
    let mut s = Soggetto::new("SPC", "EMILIA");
    s.cert = Some(emilia.cert.display().to_string());
    s.firma = Some(PoliticaFirma::Required);
    c.registry.soggetti.push(s);
    c
}

/// A signed InvioCandidatura whose modulo carries non-ASCII letters.
fn firmata(emilia: &KeyPair) -> String {
    let modulo = common::example("moduli/candidatura-2.0.xml").replacen(
        "Addetta alla contabilità",
        "Addetta alla contabilità è già",
        1,
    );
    assert!(modulo.contains("già"));
    emilia.sign(
        &Req::new(
            "EMILIA",
            "MinisteroLavoro",
            "ClicLavoro",
            Some("InvioCandidatura"),
            common::invio_candidatura(&modulo),
        )
        .xml(),
    )
}

/// The message in ISO-8859-1 (every character is below U+0100), its declaration saying so.
fn latin1(xml: &str) -> Vec<u8> {
    xml.replacen(r#"encoding="UTF-8""#, r#"encoding="ISO-8859-1""#, 1)
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

async fn post(addr: std::net::SocketAddr, ct: &'static str, body: Vec<u8>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        common::http(addr, "POST", "/pdd/PA", &[("Content-Type", ct)], &body).unwrap()
    })
    .await
    .unwrap()
}

fn accettata(r: &(u16, String)) {
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(text_of(&r.1, "Tipo_Risposta"), Some("OK"), "{}", r.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_buste_in_latin1_windows1252_and_utf16_are_read_and_verified() {
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let gw = common::start(ministry(&emilia)).await;
    // Named by the HTTP charset, and by the declaration alone.
    accettata(
        &post(
            gw.addr,
            "text/xml; charset=ISO-8859-1",
            latin1(&firmata(&emilia)),
        )
        .await,
    );
    let r = post(gw.addr, "text/xml", latin1(&firmata(&emilia))).await;
    accettata(&r);
    // The exchange is recorded as received: the bytes of ISO-8859-1.
    let ex = gw.gw.store.recent(1).await.unwrap().remove(0);
    let raw = gw.gw.store.exchange(ex.seq).await.unwrap().unwrap().request;
    assert!(raw.windows(3).any(|w| w == b"gi\xE0"), "Latin-1 bytes kept");
    // windows-1252 (the same bytes for these letters) and UTF-16 with its byte order mark.
    accettata(
        &post(
            gw.addr,
            "text/xml; charset=windows-1252",
            latin1(&firmata(&emilia)),
        )
        .await,
    );
    let mut utf16 = vec![0xFF, 0xFE];
    for u in firmata(&emilia)
        .replacen(r#"encoding="UTF-8""#, r#"encoding="UTF-16""#, 1)
        .encode_utf16()
    {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    accettata(&post(gw.addr, "text/xml", utf16).await);
    // A changed letter breaks the signature, whatever the encoding.
    let mut rotto = latin1(&firmata(&emilia));
    let i = rotto.windows(3).position(|w| w == b"gi\xE0").unwrap();
    rotto[i + 2] = 0xE8;
    let r = post(gw.addr, "text/xml; charset=ISO-8859-1", rotto).await;
    assert!(r.0 == 500 && r.1.contains("EGOV_IT_202"), "{}", r.1);
    // An encoding the gateway does not read: EGOV_IT_001.
    let r = post(
        gw.addr,
        "text/xml; charset=EBCDIC-IT",
        firmata(&emilia).into_bytes(),
    )
    .await;
    assert!(r.0 == 500 && r.1.contains("EGOV_IT_001"), "{}", r.1);
}

#[tokio::test]
async fn a_mandatory_header_not_understood_gets_the_must_understand_fault() {
    let gw = common::start(Config::default()).await;
    let con = |attrs: &str| {
        Req::candidatura().xml().replacen(
            "<soapenv:Header>",
            &format!(r#"<soapenv:Header><x:Tracciato xmlns:x="urn:altro" {attrs}>1</x:Tracciato>"#),
            1,
        )
    };
    // For us, and mandatory: not processed, SOAP 1.1 §4.2.3.
    for attrs in [
        r#"soapenv:mustUnderstand="1""#,
        r#"soapenv:mustUnderstand="1" soapenv:actor="http://schemas.xmlsoap.org/soap/actor/next""#,
    ] {
        let r = post(gw.addr, "text/xml; charset=utf-8", con(attrs).into_bytes()).await;
        assert_eq!(r.0, 500, "{}", r.1);
        assert_eq!(
            text_of(&r.1, "faultcode"),
            Some("soap:MustUnderstand"),
            "{}",
            r.1
        );
        assert!(r.1.contains("{urn:altro}Tracciato"), "{}", r.1);
    }
    // Optional, or meant for another actor: processed.
    for attrs in [
        r#"soapenv:mustUnderstand="0""#,
        r#"soapenv:mustUnderstand="1" soapenv:actor="urn:un-altro-nodo""#,
    ] {
        accettata(&post(gw.addr, "text/xml; charset=utf-8", con(attrs).into_bytes()).await);
    }
}

/// A busta's dates carry their time zone: applied, or refused when it is not one.
#[tokio::test]
async fn busta_dates_honour_their_time_zone() {
    let gw = common::start(Config::default()).await;
    let in_zona = |ore: i32, spostamento: chrono::Duration| {
        let z = chrono::FixedOffset::east_opt(ore * 3600).unwrap();
        let t = (chrono::Utc::now() + spostamento).with_timezone(&z);
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    };
    let con = |ora: String, scadenza: Option<String>| {
        let mut r = Req::candidatura();
        r.ora = ora;
        r.scadenza = scadenza;
        r.xml().into_bytes()
    };
    let ct = "text/xml; charset=utf-8";
    // Live, stamped five hours behind: accepted (read without its zone, it had expired).
    let vivo = con(
        in_zona(-5, chrono::Duration::zero()),
        Some(in_zona(-5, chrono::Duration::minutes(10))),
    );
    accettata(&post(gw.addr, ct, vivo).await);
    // Expired ten minutes ago, stamped five hours ahead: refused as expired.
    let scaduto = con(
        in_zona(5, chrono::Duration::minutes(-20)),
        Some(in_zona(5, chrono::Duration::minutes(-10))),
    );
    let r = post(gw.addr, ct, scaduto).await;
    assert!(
        r.0 == 500 && r.1.contains(r#"codiceEccezione="EGOV_IT_301""#),
        "{}",
        r.1
    );
    // Not a zone: the value is refused with its code.
    for zona in ["+25:00", "Zgarbage"] {
        let ora = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let r = post(gw.addr, ct, con(ora.clone(), Some(format!("{ora}{zona}")))).await;
        assert!(
            r.0 == 500 && r.1.contains(r#"codiceEccezione="EGOV_IT_112""#),
            "{zona}: {}",
            r.1
        );
        let r = post(gw.addr, ct, con(format!("{ora}{zona}"), None)).await;
        assert!(
            r.0 == 500 && r.1.contains(r#"codiceEccezione="EGOV_IT_108""#),
            "{zona}: {}",
            r.1
        );
    }
    // Dated tomorrow: beyond the default tolerance (5 minutes), refused.
    let domani = con(in_zona(1, chrono::Duration::days(1)), None);
    let r = post(gw.addr, ct, domani).await;
    assert!(
        r.0 == 500 && r.1.contains(r#"codiceEccezione="EGOV_IT_108""#),
        "{}",
        r.1
    );
}
