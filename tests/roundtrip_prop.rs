//! Property tests (proptest) of the writers against the readers: nothing written is lost.
//!
//! - busta: any valid `Busta` → `egov::writer::write` → `soap::envelope` → `Envelope::parse` →
//!   `reader::leggi` reads back, without problems, the busta that was written;
//! - moduli: the sample moduli with arbitrary text (XML-special, non-ASCII, blank, empty) in any
//!   field, repeated groups added or dropped → `Modulo::scrivi` is well-formed XML that
//!   `Modulo::leggi` (and `modulo::valida`) reads back as the same modulo;
//! - both writers' output is well-formed for `xmllint` too (one batch, skipped without it).
//!
//! What a valid busta means here, and so what does not round-trip by design:
//! - times are whole seconds: the writer writes milliseconds but the reader, as GovWay, reads
//!   `yyyy-MM-ddTHH:mm:ss` and ignores fraction and zone;
//! - text values the reader trims (party names and tipi, Servizio, Azione, servizioCorrelato) are
//!   generated trimmed, and the values it checks (Identificatori, tipi, indirizzoTelematico,
//!   codici) are generated valid: anything else is reported as an eccezione, not read;
//! - `inoltro` / `confermaRicezione` exist only with a ProfiloTrasmissione, where a missing one
//!   reads as the XSD default (EGOV_IT_PIUDIUNAVOLTA, false): the generator sets both;
//! - `servizioCorrelato` and its `tipo` are attributes of ProfiloCollaborazione: only with one;
//! - empty lists (`Some(vec![])`) are not written (Busta.xsd needs one element at least), so
//!   they read back as `None`: the generator makes non-empty lists or `None`.
//!
//! Cases: 128 buste and 128 moduli (PROPTEST_CASES overrides): 0.2 s in a debug build, xmllint
//! batch included; PROPTEST_CASES=5000 takes about 4 s.

mod common;

use chrono::{NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::Value;

use pdd::egov::reader::{self, Lettura, TIPI_SERVIZIO, TIPI_SOGGETTO};
use pdd::egov::{
    id, writer, Busta, Codice, Eccezione, Inoltro, Ora, Parte, Profilo, Rilevanza, Riscontro,
    Servizio, Tempo, Trasmissione,
};
use pdd::modulo::Modulo;
use pdd::soap::{self, Envelope};
use pdd::xml::{self, Limits};

// ---------------------------------------------------------------------------------------------
// Strings

/// XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Any character XML allows, biased towards markup, blanks and non-ASCII.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '<', '>', '&', '"', '\'', ';', '#', ']', '[', '/', '=', '?', '!', '-', ':',
            ' ', '\t', '\n', '\r', '\u{A0}', '\u{2028}', '\u{85}',
        ]),
        3 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec!['à', 'è', 'é', 'ì', 'ò', 'ù', 'Ä', 'ß', '€', '中', '😀', '\u{FFFD}', '\u{10FFFF}', '\u{E000}']),
        2 => any::<char>().prop_filter("an XML Char", |c| is_xml_char(*c)),
    ]
}

/// Arbitrary text: empty, blank, markup, non-ASCII.
fn testo(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..=max).prop_map(String::from_iter)
}

/// Arbitrary text that is its own `trim()` and not empty (what the busta reader trims).
fn testo_pieno(max: usize) -> impl Strategy<Value = String> {
    testo(max)
        .prop_map(|s| s.trim().to_string())
        .prop_filter("not blank", |s| !s.is_empty())
}

fn nome() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,15}"
}

// ---------------------------------------------------------------------------------------------
// Busta

fn istante() -> impl Strategy<Value = NaiveDateTime> {
    (
        1970i32..=2100,
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_filter_map("a real date", |(y, mo, d, h, mi, s)| {
            NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s)
        })
}

fn ora() -> impl Strategy<Value = Ora> {
    (
        istante(),
        prop_oneof![Just(Tempo::Spc), Just(Tempo::Locale)],
    )
        .prop_map(|(ora, tempo)| Ora { ora, tempo })
}

/// An Identificatore made as the gateway makes them (`egov::id::format`), checked by `parse`.
fn identificatore() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9]{1,12}",
        "[A-Za-z0-9]{1,16}",
        prop::option::of("[0-9]{1,3}"),
        1u32..=9999,
        istante(),
    )
        .prop_map(|(amm, pdd, nodo, n, t)| {
            let s = id::format(&amm, &pdd, nodo.as_deref(), n, t);
            assert!(id::Identificatore::parse(&s).is_ok(), "{s}");
            s
        })
}

/// A valid indirizzoTelematico: `scheme://` then anything but blanks (markup included).
fn indirizzo() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9+.-]{0,6}",
        testo(20).prop_map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>()),
    )
        .prop_filter_map("a non-empty address", |(scheme, rest)| {
            (!rest.is_empty()).then(|| format!("{scheme}://{rest}"))
        })
}

fn parte() -> impl Strategy<Value = Parte> {
    (
        prop::sample::select(TIPI_SOGGETTO),
        nome(),
        prop::option::of(indirizzo()),
    )
        .prop_map(|(tipo, nome, indirizzo)| Parte {
            tipo: tipo.to_string(),
            nome,
            indirizzo,
        })
}

fn profilo() -> impl Strategy<Value = Profilo> {
    prop_oneof![
        Just(Profilo::OneWay),
        Just(Profilo::Sincrono),
        Just(Profilo::AsincronoSimmetrico),
        Just(Profilo::AsincronoAsimmetrico),
    ]
}

fn eccezione() -> impl Strategy<Value = Eccezione> {
    (
        prop::sample::select(vec![
            1u16, 2, 3, 100, 101, 102, 110, 116, 117, 200, 202, 300, 301, 402,
        ]),
        prop_oneof![
            Just(Rilevanza::Info),
            Just(Rilevanza::Lieve),
            Just(Rilevanza::Grave)
        ],
        testo(16),
        testo(16),
    )
        .prop_map(|(c, rilevanza, posizione, contesto)| Eccezione {
            codice: Codice(c),
            rilevanza,
            posizione,
            contesto,
        })
}

/// A list that is absent or has 1..=3 elements.
fn lista<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<Vec<T>>> {
    prop::option::of(prop::collection::vec(s, 1..=3))
}

prop_compose! {
    fn busta()(
        mittente in parte(),
        destinatario in parte(),
        profilo_correlato in prop::option::of((
            profilo(),
            prop::option::of(prop::sample::select(TIPI_SERVIZIO)),
            prop::option::of(testo_pieno(12)),
        )),
        collaborazione in prop::option::of(identificatore()),
        servizio in prop::option::of((prop::sample::select(TIPI_SERVIZIO), testo_pieno(16))),
        azione in prop::option::of(testo_pieno(16)),
        id in identificatore(),
        ora_registrazione in ora(),
        riferimento_messaggio in prop::option::of(identificatore()),
        scadenza in prop::option::of(istante()),
        trasmissione in prop::option::of((
            prop_oneof![Just(Inoltro::AlPiuUnaVolta), Just(Inoltro::PiuDiUnaVolta)],
            any::<bool>(),
        )),
        sequenza in prop::option::of(1u32..),
        riscontri in lista((identificatore(), ora()).prop_map(|(id, ora)| Riscontro { id, ora })),
        trasmissioni in lista((parte(), parte(), ora()).prop_map(|(origine, destinazione, ora)| {
            Trasmissione { origine, destinazione, ora }
        })),
        eccezioni in lista(eccezione()),
        wsu_id in prop::option::of(testo(12)),
    ) -> Busta {
        Busta {
            mittente: Some(mittente),
            destinatario: Some(destinatario),
            profilo: profilo_correlato.as_ref().map(|p| p.0),
            tipo_servizio_correlato: profilo_correlato
                .as_ref()
                .and_then(|p| p.1.map(str::to_string)),
            servizio_correlato: profilo_correlato.and_then(|p| p.2),
            collaborazione,
            servizio: servizio.map(|(tipo, nome)| Servizio { tipo: tipo.to_string(), nome }),
            azione,
            id: Some(id),
            ora_registrazione: Some(ora_registrazione),
            riferimento_messaggio,
            scadenza,
            profilo_trasmissione: trasmissione.is_some(),
            inoltro: trasmissione.map(|t| t.0),
            conferma_ricezione: trasmissione.map(|t| t.1),
            sequenza,
            riscontri,
            trasmissioni,
            eccezioni,
            wsu_id,
        }
    }
}

/// The SOAP message of a busta, as the gateway writes it.
fn messaggio(b: &Busta) -> String {
    soap::envelope(&[&writer::write(b)], "<x:op xmlns:x=\"urn:x\"/>")
}

fn busta_round_trip(b: &Busta) -> Result<(), TestCaseError> {
    let msg = messaggio(b);
    let env = Envelope::parse(msg.as_bytes(), Limits::default())
        .map_err(|e| TestCaseError::fail(format!("{e}\n{msg}")))?;
    let Lettura::Trovata(t) = reader::leggi(&env.header_blocks) else {
        return Err(TestCaseError::fail(format!("no busta read\n{msg}")));
    };
    prop_assert!(t.problemi.is_empty(), "{:?}\n{}", t.problemi, msg);
    prop_assert!(t.diagnostica.is_empty(), "{:?}\n{}", t.diagnostica, msg);
    prop_assert_eq!(&t.busta, b, "\n{}", msg);
    Ok(())
}

fn cases(n: u32) -> PtConfig {
    // PROPTEST_CASES, when set, wins (proptest reads it into the default config).
    match std::env::var("PROPTEST_CASES") {
        Ok(_) => PtConfig::default(),
        Err(_) => PtConfig::with_cases(n),
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn busta_writer_then_reader_gives_the_same_busta(b in busta()) {
        busta_round_trip(&b)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Moduli

const MODULI: &[&str] = &[
    "candidatura-2.0.xml",
    "candidatura-rev038.xml",
    "candidatura-rev038-rettifica.xml",
    "candidatura-rev038-chiusura.xml",
    "vacancy-2.0.xml",
    "vacancy-rev038.xml",
    "messaggio-rev038.xml",
];

/// The sample moduli as typed models, then as JSON trees (serde) to edit any field generically.
fn campioni() -> &'static [Value] {
    static C: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        MODULI
            .iter()
            .map(|f| {
                let path = format!("{}/examples/moduli/{f}", env!("CARGO_MANIFEST_DIR"));
                let bytes = std::fs::read(&path).expect("sample modulo");
                let root = xml::parse_document(&bytes, Limits::default()).expect("well-formed");
                let m = Modulo::leggi(&root).expect("a modulo");
                serde_json::to_value(&m).expect("serializable")
            })
            .collect()
    })
}

/// Where something can be changed in a JSON tree: a text (or absent) field, or a list.
fn posti(v: &Value, at: &mut Vec<String>, testi: &mut Vec<String>, liste: &mut Vec<String>) {
    // Field names have neither '~' nor '/': no JSON Pointer escaping is needed.
    let here = || at.join("/");
    match v {
        Value::String(_) | Value::Null => testi.push(format!("/{}", here())),
        Value::Array(a) => {
            liste.push(format!("/{}", here()));
            for (i, x) in a.iter().enumerate() {
                at.push(i.to_string());
                posti(x, at, testi, liste);
                at.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k == "tipo" && at.is_empty() {
                    continue; // the serde tag of Modulo
                }
                at.push(k.clone());
                posti(x, at, testi, liste);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Modifica {
    /// Set the n-th text (or absent) field to this text.
    Testo(usize, String),
    /// Repeat the first element of the n-th list.
    Ripeti(usize),
    /// Drop the last element of the n-th list.
    Togli(usize),
}

fn modifica() -> impl Strategy<Value = Modifica> {
    prop_oneof![
        6 => (any::<usize>(), testo(24)).prop_map(|(i, s)| Modifica::Testo(i, s)),
        1 => any::<usize>().prop_map(Modifica::Ripeti),
        1 => any::<usize>().prop_map(Modifica::Togli),
    ]
}

/// A sample modulo with the changes applied (those that do not fit its type are skipped: e.g.
/// text where a group is absent).
fn modulo() -> impl Strategy<Value = Modulo> {
    (0..MODULI.len(), prop::collection::vec(modifica(), 0..12)).prop_map(|(i, mods)| {
        let mut v = campioni()[i].clone();
        for m in mods {
            let (mut testi, mut liste) = (Vec::new(), Vec::new());
            posti(&v, &mut Vec::new(), &mut testi, &mut liste);
            let before = v.clone();
            match m {
                Modifica::Testo(n, s) => {
                    if let Some(x) = v.pointer_mut(&testi[n % testi.len()]) {
                        *x = Value::String(s);
                    }
                }
                Modifica::Ripeti(n) | Modifica::Togli(n) if !liste.is_empty() => {
                    if let Some(Value::Array(a)) = v.pointer_mut(&liste[n % liste.len()]) {
                        match m {
                            Modifica::Ripeti(_) if !a.is_empty() && a.len() < 4 => {
                                a.push(a[0].clone())
                            }
                            Modifica::Togli(_) => {
                                a.pop();
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            if serde_json::from_value::<Modulo>(v.clone()).is_err() {
                v = before;
            }
        }
        serde_json::from_value(v).expect("a modulo")
    })
}

fn modulo_round_trip(m: &Modulo) -> Result<(), TestCaseError> {
    let out = m.scrivi();
    let root = xml::parse_document(out.as_bytes(), Limits::default())
        .map_err(|e| TestCaseError::fail(format!("not well-formed: {e}\n{out}")))?;
    let back = Modulo::leggi(&root);
    prop_assert_eq!(back.as_ref(), Some(m), "\n{}", out);
    // The validator reads the same modulo, whatever it thinks of it.
    let ctx = pdd::modulo::Contesto {
        ricevuto: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        versione: None,
    };
    let esito = pdd::modulo::valida(out.as_bytes(), &ctx);
    prop_assert_eq!(esito.modulo.as_ref(), Some(m));
    Ok(())
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn modulo_scrivi_then_leggi_gives_the_same_modulo(m in modulo()) {
        modulo_round_trip(&m)?;
    }
}

#[test]
fn the_samples_round_trip_unchanged() {
    for v in campioni() {
        let m: Modulo = serde_json::from_value(v.clone()).unwrap();
        modulo_round_trip(&m).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// An independent judge of well-formedness

/// 64 generated buste (as SOAP messages) and 64 moduli, written to files and parsed by xmllint
/// in one run.
#[test]
#[cfg_attr(
    pdd_no_xmllint,
    ignore = "xmllint is not installed (Debian libxml2-utils)"
)]
fn xmllint_finds_the_writers_output_well_formed() {
    common::require(common::Peer::Xmllint);
    let dir = std::env::temp_dir().join(format!("pdd-roundtrip-prop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut runner = TestRunner::deterministic();
    let mut files = Vec::new();
    for i in 0..64 {
        let b = busta().new_tree(&mut runner).unwrap().current();
        let m = modulo().new_tree(&mut runner).unwrap().current();
        for (kind, text) in [("busta", messaggio(&b)), ("modulo", m.scrivi())] {
            let f = dir.join(format!("{kind}-{i}.xml"));
            std::fs::write(&f, text).unwrap();
            files.push(f);
        }
    }
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .args(&files)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
