//! What each fuzz target does with its input, shared by the `cargo fuzz` harnesses
//! (`fuzz_targets/*.rs`, one line each) and by the corpus replay of `cargo test`
//! (`tests/fuzz_corpus.rs` includes this file with `#[path]`, so it needs neither nightly nor
//! libFuzzer). Only the public API of `pdd` is used.
//!
//! Every function takes arbitrary bytes and must neither panic nor loop; besides "no panic"
//! each checks a few properties that must hold for any input the parsers accept:
//! - `busta`: the answer the porta applicativa would give (response or error busta) is a SOAP
//!   message whose busta reads back without problems; a busta read without problems is written
//!   and read back unchanged (nothing lost);
//! - `c14n`: whatever `Envelope::parse` accepts canonicalizes, and canonical output is well-formed
//!   and a fixed point of canonicalization;
//! - `firma`: verification answers (no panic) whatever the Security header holds;
//! - `modulo`: a modulo that was read is written (`Modulo::scrivi`) as well-formed XML that
//!   reads back as the same modulo.

use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use pdd::egov::reader::{self, Lettura};
use pdd::egov::risposte;
use pdd::egov::validate::{self, Contesto, Giudizio};
use pdd::egov::{writer, Busta, Parte, Tempo};
use pdd::registry::{ErroriStruttura, Registry, Soggetto};
use pdd::soap::{self, Envelope};
use pdd::wssec::{c14n, dsig};
use pdd::xml::{self, Limits};

/// The clock of every target: the examples' registration time plus one minute.
pub fn adesso() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 27)
        .and_then(|d| d.and_hms_opt(8, 1, 0))
        .expect("a valid time")
}

struct Porta {
    config: pdd::config::Config,
    registry: Registry,
    own: Soggetto,
}

fn porta() -> &'static Porta {
    static P: OnceLock<Porta> = OnceLock::new();
    P.get_or_init(|| {
        let config = pdd::config::Config::default();
        let registry = config.build_registry().expect("demo registry");
        let own = config.own();
        Porta {
            config,
            registry,
            own,
        }
    })
}

fn is_local(p: &Parte) -> bool {
    let g = porta();
    (p.tipo == g.own.tipo && p.nome == g.own.nome)
        || g.registry.soggetto(p).is_some_and(|s| s.locale)
}

/// Reads a message's busta back, for the properties: the busta and its syntax problems.
fn rileggi(msg: &str) -> (Busta, Vec<String>) {
    let env = Envelope::parse(msg.as_bytes(), Limits::default())
        .unwrap_or_else(|e| panic!("our message does not parse: {e}\n{msg}"));
    match reader::leggi(&env.header_blocks) {
        Lettura::Assente => panic!("our message has no busta\n{msg}"),
        Lettura::Trovata(t) => (
            t.busta.clone(),
            t.problemi
                .iter()
                .chain(&t.diagnostica)
                .map(|p| p.eccezione.to_string())
                .collect(),
        ),
    }
}

/// `busta`: a partner's message as the porta applicativa reads and judges it.
pub fn busta(data: &[u8]) {
    let Ok(env) = Envelope::parse(data, Limits::default()) else {
        return;
    };
    let _ = env.body_tree(Limits::default());
    let t = match reader::leggi(&env.header_blocks) {
        Lettura::Assente => return,
        Lettura::Trovata(t) => t,
    };
    let g = porta();
    let pol = validate::politica(
        &g.registry,
        t.busta.mittente.as_ref(),
        g.config.busta.profilo,
        g.config.busta.errori_struttura,
    );
    let ctx = Contesto {
        registry: &g.registry,
        locale: &is_local,
        profilo: pol.profilo,
        now: adesso(),
        scadenza_minuti: g.config.busta.scadenza_minuti,
        tolleranza_futuro_minuti: g.config.busta.tolleranza_futuro_minuti,
        validazione_id_completa: pol.validazione_id_completa,
        qualificazione: g.config.busta.qualificazione,
    };
    let giudizio = validate::giudica(&t, &ctx, pol.errori_struttura);
    // Both policies for structural errors.
    let _ = validate::giudica(&t, &ctx, ErroriStruttura::Busta);

    // The answer, as pa.rs builds it: it must be a busta we can read without problems.
    let req = &t.busta;
    let responder = req
        .destinatario
        .as_ref()
        .filter(|d| is_local(d))
        .and_then(|d| g.registry.soggetto(d).cloned())
        .unwrap_or_else(|| g.own.clone());
    let destinatario = req
        .mittente
        .clone()
        .filter(|m| g.registry.soggetto(m).is_some())
        .unwrap_or_else(risposte::mittente_sconosciuto);
    let id = pdd::egov::id::format(&responder.nome, &responder.porta, None, 1, adesso());
    let h = risposte::intestazione_risposta(
        req,
        responder.parte(),
        destinatario,
        id,
        adesso(),
        Tempo::Spc,
    );
    let answer = match giudizio {
        Giudizio::Errore { eccezioni } => Some(risposte::busta_errore(h, eccezioni, None)),
        Giudizio::Accettata { .. } => Some(soap::envelope(&[&writer::write(&h)], "<ok/>")),
        Giudizio::Illeggibile(_) | Giudizio::Fault001 { .. } => None,
    };
    if let Some(answer) = answer {
        let (_, problemi) = rileggi(&answer);
        assert!(problemi.is_empty(), "our answer has {problemi:?}\n{answer}");
    }

    // Nothing lost: a busta read without problems is written and read back unchanged.
    if t.problemi.is_empty() && t.diagnostica.is_empty() {
        let msg = soap::envelope(&[&writer::write(req)], "");
        let (again, problemi) = rileggi(&msg);
        assert!(
            problemi.is_empty(),
            "rewritten busta has {problemi:?}\n{msg}"
        );
        assert_eq!(&again, req, "busta changed by write/read\n{msg}");
    }
}

/// Canonicalizes `start` (with `inclusive`) and checks the output is a well-formed fixed point.
fn canonica(src: &str, start: usize, inclusive: &[&str]) -> Option<String> {
    let c = c14n::canonicalize_one(src, start, inclusive).ok()?;
    if let Err(e) = xml::parse_document(c.as_bytes(), Limits::default()) {
        panic!("canonical form is not well-formed: {e}\n{c}");
    }
    let again = c14n::canonicalize_one(&c, 0, inclusive)
        .unwrap_or_else(|e| panic!("canonical form does not canonicalize: {e}\n{c}"));
    assert_eq!(again, c, "canonicalization is not idempotent");
    Some(c)
}

/// `c14n`: exclusive canonicalization of the document, its Body and its header blocks.
pub fn c14n(data: &[u8]) {
    let Ok((src, offset)) = xml::decode(data) else {
        return;
    };
    match Envelope::parse(data, Limits::default()) {
        Ok(env) => {
            let mut targets = vec![env.envelope.start, env.body.start];
            targets.extend(env.header_blocks.iter().map(|b| b.span.start));
            let all: Vec<c14n::Target> = targets
                .iter()
                .map(|&start| c14n::Target {
                    start,
                    inclusive: Vec::new(),
                })
                .collect();
            // What the SOAP reader accepts, the canonicalizer must take too: else a signature
            // over a well-formed message could not be checked.
            let one_pass = c14n::canonicalize(src, &all)
                .unwrap_or_else(|e| panic!("an accepted envelope does not canonicalize: {e}"));
            for (&start, c) in targets.iter().zip(&one_pass) {
                let single = canonica(src, start, &[]);
                assert_eq!(single.as_ref(), Some(c), "one pass differs from one target");
            }
            canonica(
                src,
                env.body.start,
                &["#default", "SOAP_ENV", "soap", "xsd"],
            );
        }
        Err(_) => {
            if let Ok(root) = xml::parse_document(data, Limits::default()) {
                canonica(src, root.span.start - offset, &[]);
                canonica(src, root.span.start - offset, &["#default"]);
            }
        }
    }
}

/// The time the signed seed of `fuzz/corpus/firma` is checked at (its Timestamp is valid then).
pub fn adesso_firma() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 58, 30)
        .single()
        .expect("a valid time")
}

/// `firma`: WS-Security verification of a message.
pub fn firma(data: &[u8]) {
    let Ok(env) = Envelope::parse(data, Limits::default()) else {
        return;
    };
    for copertura in [
        dsig::Copertura::IntestazioneMessaggio,
        dsig::Copertura::Intestazione,
    ] {
        let regole = dsig::Regole {
            now: adesso_firma(),
            tolleranza: chrono::Duration::seconds(60),
            durata_massima: chrono::Duration::minutes(5),
            copertura,
        };
        let _ = dsig::verifica(env.src, &env, &regole);
    }
}

/// `modulo`: ClicLavoro modulo validation, and the typed model written back.
pub fn modulo(data: &[u8]) {
    let ctx = pdd::modulo::Contesto {
        ricevuto: NaiveDate::from_ymd_opt(2026, 11, 20).expect("a valid date"),
        versione: None,
    };
    let esito = pdd::modulo::valida(data, &ctx);
    if let Some(m) = &esito.modulo {
        let out = m.scrivi();
        if let Err(e) = xml::parse_document(out.as_bytes(), Limits::default()) {
            panic!("Modulo::scrivi is not well-formed: {e}\n{out}");
        }
        let again = pdd::modulo::valida(out.as_bytes(), &ctx);
        assert_eq!(
            again.modulo.as_ref(),
            Some(m),
            "modulo changed by scrivi/leggi\n{out}"
        );
    }
    // The same modulo carried as the escaped string of a cliclavoroWS request.
    if let Some(inner) = pdd::modulo::estrai_da_soap(data) {
        let _ = pdd::modulo::valida(inner.as_bytes(), &ctx);
    }
}
