//! Trust between Porte di Dominio over the real server: HTTPS with mutual TLS (curl as the
//! peer), WS-Security policies per partner, spoofing, two gateways over HTTPS with signatures.

mod common;

use std::path::Path;

use common::{curl, intestazione, text_of, KeyPair, Pki, Req};
use pdd::config::Config;
use pdd::registry::{PoliticaFirma, Soggetto};

/// The Ministry's gateway over TLS, knowing EMILIA and LAZIO by their certificates.
fn ministry(
    pki: &Pki,
    me: &KeyPair,
    emilia: &KeyPair,
    lazio: &KeyPair,
    firma: PoliticaFirma,
) -> Config {
    let mut c = Config::default();
    c.tls.cert = Some(me.cert.clone());
    c.tls.key = Some(me.key.clone());
    c.tls.ca = vec![pki.ca_path()];
    for (nome, kp) in [("EMILIA", emilia), ("LAZIO", lazio)] {
        let mut s = Soggetto::new("SPC", nome);
        s.cert = Some(kp.cert.display().to_string());
        s.firma = Some(firma);
        c.registry.soggetti.push(s);
    }
    c
}

fn request(mittente: &'static str) -> Req<'static> {
    Req::new(
        mittente,
        "MinisteroLavoro",
        "ClicLavoro",
        Some("InvioCandidatura"),
        common::invio_candidatura(&common::example("moduli/candidatura-2.0.xml")),
    )
}

async fn curl_as(
    url: String,
    kp: Option<KeyPair>,
    ca: std::path::PathBuf,
    body: Vec<u8>,
) -> (i32, u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut args: Vec<String> = vec!["--cacert".into(), ca.display().to_string()];
        if let Some(kp) = kp {
            args.extend([
                "--cert".into(),
                kp.cert.display().to_string(),
                "--key".into(),
                kp.key.display().to_string(),
            ]);
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args, &body)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn mutual_tls_admits_partners_and_refuses_strangers() {
    common::require(common::Peer::Curl);
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
    let gw = common::start(ministry(&pki, &me, &emilia, &lazio, PoliticaFirma::Off)).await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());

    // The registered partner, with its pinned certificate: served.
    let req = request("EMILIA");
    let (code, status, body) = curl_as(
        url.clone(),
        Some(emilia.clone()),
        me.cert.clone(),
        req.xml().into_bytes(),
    )
    .await;
    assert_eq!((code, status), (0, 200), "{body}");
    assert_eq!(text_of(&body, "Tipo_Risposta"), Some("OK"));

    // A partner issued by our CA (not pinned), named as a registered soggetto: served too.
    let issued = pki.make("emilia-ca", "EMILIA", true, 30, 0);
    let req = request("EMILIA");
    let (code, status, body) = curl_as(
        url.clone(),
        Some(issued),
        me.cert.clone(),
        req.xml().into_bytes(),
    )
    .await;
    assert_eq!((code, status), (0, 200), "{body}");

    // No certificate, an unknown self-signed one, an expired one: refused at the handshake.
    let stranger = pki.make("stranger", "EMILIA", false, 30, 0);
    let expired = pki.make("expired", "EMILIA", true, 1, -10);
    for kp in [None, Some(stranger), Some(expired)] {
        let (code, status, _) = curl_as(
            url.clone(),
            kp,
            me.cert.clone(),
            request("EMILIA").xml().into_bytes(),
        )
        .await;
        assert_ne!(code, 0, "the handshake must fail");
        assert_eq!(status, 0);
    }

    // LAZIO's certificate sending a busta that claims to come from EMILIA: spoofing.
    let (code, status, body) = curl_as(
        url.clone(),
        Some(lazio),
        me.cert.clone(),
        request("EMILIA").xml().into_bytes(),
    )
    .await;
    assert_eq!((code, status), (0, 500));
    assert!(body.contains(r#"codiceEccezione="EGOV_IT_201""#), "{body}");

    // A partner may not use our porta delegata (it would send buste in our name) nor /admin.
    let base = format!("https://127.0.0.1:{}", gw.addr.port());
    for path in ["/pdd/PD/ClicLavoro/InvioCandidatura", "/admin/partners"] {
        let (code, status, body) = curl_as(
            format!("{base}{path}"),
            Some(emilia.clone()),
            me.cert.clone(),
            request("EMILIA").xml().into_bytes(),
        )
        .await;
        assert_eq!((code, status), (0, 404), "{path}: {body}");
        assert!(body.contains("local listener"), "{body}");
    }
    assert_eq!(
        gw.gw
            .store
            .recent(100)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.direction == pdd::store::Direction::Out)
            .count(),
        0,
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn signature_policy_and_signed_answers() {
    common::require(common::Peer::Curl);
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
    let gw = common::start(ministry(
        &pki,
        &me,
        &emilia,
        &lazio,
        PoliticaFirma::Required,
    ))
    .await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());
    let send = |body: String| {
        curl_as(
            url.clone(),
            Some(emilia.clone()),
            me.cert.clone(),
            body.into_bytes(),
        )
    };

    // Unsigned, though required: EGOV_IT_200.
    let (_, status, body) = send(request("EMILIA").xml()).await;
    assert_eq!(status, 500);
    assert!(body.contains(r#"codiceEccezione="EGOV_IT_200""#), "{body}");

    // Signed by EMILIA: accepted, and the answer is signed by the Ministry.
    let signed = emilia.sign(&request("EMILIA").xml());
    let (_, status, body) = send(signed.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(text_of(&body, "Tipo_Risposta"), Some("OK"));
    let answer = common::verify_signed(&body).expect("signed answer");
    assert_eq!(
        pdd::wssec::pki::cn(&answer.cert).as_deref(),
        Some("MinisteroLavoro")
    );

    // Replayed: the duplicate filter refuses it.
    let (_, status, body) = send(signed).await;
    assert_eq!(status, 500);
    assert!(body.contains("EGOV_IT_110"), "{body}");

    // Tampered body, tampered header, signed by another partner, by a stranger.
    let fresh = || emilia.sign(&request("EMILIA").xml());
    let cases: Vec<(String, &str)> = vec![
        (
            fresh().replace("BNCLRA85M41F205C", "BNCLRA85M41F205X"),
            "EGOV_IT_202",
        ),
        (
            fresh().replace(
                "<eGov_IT:Azione>InvioCandidatura<",
                "<eGov_IT:Azione>InvioVacancy<",
            ),
            "EGOV_IT_117",
        ),
        (lazio.sign(&request("EMILIA").xml()), "EGOV_IT_201"),
        (
            pki.make("nobody", "EMILIA", false, 30, 0)
                .sign(&request("EMILIA").xml()),
            "EGOV_IT_200",
        ),
    ];
    for (msg, code) in cases {
        let (_, status, body) = send(msg).await;
        assert_eq!(status, 500, "{code}: {body}");
        assert!(
            body.contains(&format!(r#"codiceEccezione="{code}""#)),
            "{code}: {}",
            intestazione(&body).unwrap_or(&body)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_over_https_with_signatures() {
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
    let ministry_gw = common::start(ministry(
        &pki,
        &me,
        &emilia,
        &lazio,
        PoliticaFirma::Required,
    ))
    .await;

    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    c.tls.cert = Some(emilia.cert.clone());
    c.tls.key = Some(emilia.key.clone());
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(format!(
        "https://127.0.0.1:{}/pdd/PA",
        ministry_gw.addr.port()
    ));
    m.cert = Some(me.cert.display().to_string());
    m.firma = Some(PoliticaFirma::Required);
    c.registry.soggetti.push(m);
    let region = common::start(c).await;

    // The local system talks plain HTTP to its own gateway's local listener on loopback; the
    // gateways talk HTTPS with client certificates and signed buste.
    let sil = common::example("invio-candidatura-sil.xml");
    let local = region.local.expect("local listener");
    let r = common::post(
        &format!("http://{local}/pdd/PD/ClicLavoro/InvioCandidatura"),
        sil.into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(text_of(&r.body, "Tipo_Risposta"), Some("OK"));
    // The local listener serves no porta applicativa.
    let r = common::post(&format!("http://{local}/pdd/PA"), b"x".to_vec(), &[]).await;
    assert_eq!(r.status, 404);
    // What EMILIA sent was signed, and the Ministry verified it.
    let out = region.gw.store.recent(1).await.unwrap().remove(0);
    let sent = region.gw.store.exchange(out.seq).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&sent.request).contains("<wsse:Security"));
    assert!(String::from_utf8_lossy(&sent.response).contains("<wsse:Security"));
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let c = Config {
        listen: "0.0.0.0:8700".parse().unwrap(),
        ..Default::default()
    };
    let e = c.build_registry().unwrap_err().to_string();
    assert!(e.contains("plain HTTP is for loopback only"), "{e}");
    let mut c = Config::default();
    c.tls.cert = Some(Path::new("x.crt").into());
    assert!(c
        .build_registry()
        .unwrap_err()
        .to_string()
        .contains("cert and key go together"));
}

/// What the busta's signature covers: the whole Intestazione by default, the narrower
/// IntestazioneMessaggio for a partner whose entry says so; on receipt either, unless the
/// partner's entry asks for the whole Intestazione.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn what_the_signature_covers_by_default_and_per_partner() {
    use pdd::wssec::dsig::Copertura;
    common::require(common::Peer::Curl);
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
    let mut c = ministry(&pki, &me, &emilia, &lazio, PoliticaFirma::Required);
    for s in c.registry.soggetti.iter_mut() {
        s.copertura = Some(if s.nome == "EMILIA" {
            Copertura::IntestazioneMessaggio
        } else {
            Copertura::Intestazione
        });
    }
    let gw = common::start(c).await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());
    let send = |kp: &KeyPair, body: String| {
        curl_as(
            url.clone(),
            Some(kp.clone()),
            me.cert.clone(),
            body.into_bytes(),
        )
    };
    // The element whose wsu:Id the signature references for the busta.
    let firmato = |msg: &str| -> &'static str {
        for el in ["Intestazione", "IntestazioneMessaggio"] {
            if let Some(id) = msg
                .split(&format!("<eGov_IT:{el} "))
                .nth(1)
                .and_then(|t| t.split('>').next())
                .and_then(|t| t.split("wsu:Id=\"").nth(1))
                .and_then(|t| t.split('"').next())
            {
                if msg.contains(&format!("URI=\"#{id}\"")) {
                    return if el == "Intestazione" {
                        "Intestazione"
                    } else {
                        "IntestazioneMessaggio"
                    };
                }
            }
        }
        "nothing"
    };
    // EMILIA signs the narrow form and is answered in it.
    let msg = emilia.sign_covering(&request("EMILIA").xml(), Copertura::IntestazioneMessaggio);
    assert_eq!(firmato(&msg), "IntestazioneMessaggio");
    let (_, status, body) = send(&emilia, msg).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(firmato(&body), "IntestazioneMessaggio", "{body}");
    // LAZIO's entry asks for the whole Intestazione: the narrow form is refused.
    let msg = lazio.sign_covering(&request("LAZIO").xml(), Copertura::IntestazioneMessaggio);
    let (_, status, body) = send(&lazio, msg).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(r#"codiceEccezione="EGOV_IT_117""#), "{body}");
    let (_, status, body) = send(&lazio, lazio.sign(&request("LAZIO").xml())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(firmato(&body), "Intestazione", "{body}");
}
