//! The Europass CV of a Candidatura: a Cedefop Europass XML document (schema v3.3, root
//! `SkillsPassport`, namespace `http://europass.cedefop.europa.eu/Europass`).
//!
//! Only what the Candidatura states is written. ClicLavoro codes whose meaning is unknown
//! (patenti, albi, livello di studio, ISTAT professions, …) are never translated into Europass
//! codes: where a code is the only data, it goes into a free-text label. Elements without data
//! are left out, since most Europass elements are optional but some may not be empty.

use chrono::{NaiveDate, NaiveDateTime};

use crate::modulo::model::candidatura::{
    Candidatura, EsperienzeLavorative, Formazione, Istruzione, Lavoratore, Lingue,
};
use crate::modulo::model::Testo;
use crate::modulo::tabelle::tabelle;
use crate::xml::tree::Node;

const NS: &str = "http://europass.cedefop.europa.eu/Europass";
/// The schema's `CurrentVersionNumberType` for v3.3.x accepts exactly this.
const VERSIONE_XSD: &str = "V3.3";
/// ClicLavoro `idcittadinanza` of Italian citizens (`data/cliclavoro_valori_noti.csv`).
const CITTADINANZA_ITALIANA: &str = "000";
/// ClicLavoro `idlingua` of Italian (inferred, `data/cliclavoro_valori_noti.csv`).
const LINGUA_ITALIANA: &str = "003";
/// The EU driving licence categories of the Europass `drivinglicence` type.
const PATENTI_UE: [&str; 15] = [
    "A", "A1", "A2", "AM", "B", "B1", "BE", "C", "C1", "C1E", "CE", "D", "D1", "D1E", "DE",
];

/// The Europass CV XML of a Candidatura (UTF-8, with XML declaration).
pub fn europass(c: &Candidatura, creato: NaiveDateTime) -> String {
    // Europass writes instants in UTC with milliseconds; `creato` is taken as UTC.
    let quando = creato.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let info = Node::el(
        "DocumentInfo",
        vec![
            Node::leaf("DocumentType", Some("ECV".into())),
            Node::leaf("CreationDate", Some(quando.clone())),
            // Required by the schema; the document is new, so it was last updated when created.
            Node::leaf("LastUpdateDate", Some(quando)),
            Node::leaf("XSDVersion", Some(VERSIONE_XSD.into())),
            Node::leaf("Generator", Some("pdd".into())),
            Node::leaf(
                "Comment",
                pulito(&c.dati_sistema.codicecandidatura)
                    .map(|codice| format!("Candidatura ClicLavoro {codice}")),
            ),
        ],
    );
    let mut learner = Node::el(
        "LearnerInfo",
        vec![
            identificazione(c),
            titolo(c),
            esperienze(&c.dati_curriculari.esperienze_lavorative),
            istruzione(
                &c.dati_curriculari.istruzione,
                &c.dati_curriculari.formazione,
            ),
            competenze(c),
        ],
    );
    // LearnerInfo is mandatory even when the Candidatura says nothing about the worker.
    learner.always = true;
    let mut radice = Node::el("SkillsPassport", vec![info, learner]);
    radice.attrs = vec![("xmlns", NS.into()), ("locale", "it".into())];

    radice.document()
}

/// An element of the Europass `CodeLabel` kind: a code and what it means.
fn codice_etichetta(nome: &'static str, codice: Option<&str>, etichetta: Option<String>) -> Node {
    Node::el(
        nome,
        vec![
            Node::leaf("Code", codice.map(String::from)),
            Node::leaf("Label", etichetta),
        ],
    )
}

/// A date element (`year`, `month`, `day` attributes), absent without a year.
fn elemento_data(nome: &'static str, data: Option<Vec<(&'static str, String)>>) -> Node {
    Node::attrs(nome, data.unwrap_or_default())
}

/// A value as text to write: trimmed, without the characters XML 1.0 cannot carry (which a
/// Candidatura built in code, rather than parsed, might hold), `None` when nothing is left.
fn pulito(s: &str) -> Option<String> {
    let s: String = s
        .trim()
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                || c >= '\u{10000}'
        })
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn pulito_opt(s: &Option<Testo>) -> Option<String> {
    s.as_deref().and_then(pulito)
}

/// Pieces of text joined by `sep`, `None` when there are none.
fn unite(pezzi: &[String], sep: &str) -> Option<String> {
    (!pezzi.is_empty()).then(|| pezzi.join(sep))
}

/// A date as Europass `DateType` attributes (`year`, `month` as `--MM`, `day` as `---DD`, the
/// XML Schema gYear/gMonth/gDay forms). Reads `yyyy`, `yyyy-MM` or `yyyy-MM-dd`, ignoring any
/// time or zone after the day; a month or day that is not valid is dropped with what follows.
fn data(s: &str) -> Option<Vec<(&'static str, String)>> {
    let b = s.trim().as_bytes();
    // Exactly the digits of `r`: a longer run of digits is not a year, month or day.
    let cifre = |r: std::ops::Range<usize>| {
        if b.get(r.end).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        b.get(r)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0')))
    };
    let anno = cifre(0..4).filter(|&a| a > 0)?;
    let mut attrs = vec![("year", format!("{anno:04}"))];
    let dopo_trattino = |i: usize| {
        if b.get(i) == Some(&b'-') {
            cifre(i + 1..i + 3)
        } else {
            None
        }
    };
    let mese = dopo_trattino(4).filter(|m| (1..=12).contains(m));
    if let Some(mese) = mese {
        attrs.push(("month", format!("--{mese:02}")));
        let giorno = dopo_trattino(7).filter(|&g| {
            i32::try_from(anno)
                .ok()
                .and_then(|a| NaiveDate::from_ymd_opt(a, mese, g))
                .is_some()
        });
        if let Some(giorno) = giorno {
            attrs.push(("day", format!("---{giorno:02}")));
        }
    }
    Some(attrs)
}

/// Where a Belfiore code points: a comune (in Italy) or a foreign state; the comune's name and
/// the `Country`.
fn luogo(codice: Option<&str>) -> (Option<String>, Node) {
    let t = tabelle();
    let codice = codice.map(str::trim);
    if let Some(comune) = codice.and_then(|c| t.comune(c)) {
        let paese = codice_etichetta("Country", Some("IT"), Some("Italia".into()));
        (pulito(&comune.nome), paese)
    } else if let Some(stato) = codice.and_then(|c| t.stato(c)) {
        // No Belfiore Z-code to ISO 3166 table is at hand: the state is named, not coded.
        (None, codice_etichetta("Country", None, pulito(&stato.nome)))
    } else {
        (None, Node::el("Country", Vec::new()))
    }
}

/// An `Address` (ContactAddressType): line, CAP, comune and country.
fn indirizzo(riga: Option<String>, cap: Option<String>, codice_luogo: Option<&str>) -> Node {
    let (comune, paese) = luogo(codice_luogo);
    Node::el(
        "Address",
        vec![Node::el(
            "Contact",
            vec![
                Node::leaf("AddressLine", riga),
                Node::leaf("PostalCode", cap),
                Node::leaf("Municipality", comune),
                paese,
            ],
        )],
    )
}

/// Whether an address passes the Europass `ContactEmailContactType` pattern
/// `[^@]+@[^\.]+\..+`; one that does not would make the document invalid.
fn email_valida(s: &str) -> bool {
    let Some((locale, dominio)) = s.split_once('@') else {
        return false;
    };
    let Some((nome, resto)) = dominio.split_once('.') else {
        return false;
    };
    !locale.is_empty() && !nome.is_empty() && !resto.is_empty() && !resto.contains(['\n', '\r'])
}

fn telefono(numero: &Option<Testo>, codice: Option<&str>, etichetta: &str) -> Node {
    let Some(numero) = pulito_opt(numero) else {
        return Node::el("Telephone", Vec::new());
    };
    Node::el(
        "Telephone",
        vec![
            Node::leaf("Contact", Some(numero)),
            codice_etichetta("Use", codice, Some(etichetta.into())),
        ],
    )
}

fn identificazione(c: &Candidatura) -> Node {
    let l = &c.lavoratore;
    let a = &l.dati_anagrafici;
    Node::el(
        "Identification",
        vec![
            Node::el(
                "PersonName",
                vec![
                    Node::leaf("FirstName", pulito(&a.nome)),
                    Node::leaf("Surname", pulito(&a.cognome)),
                ],
            ),
            contatti(c),
            demografia(l),
        ],
    )
}

/// The ContactInfo: the worker's own, or for a CV an intermediary published, the
/// intermediary's only (contacts go through it, document §4.4).
fn contatti(c: &Candidatura) -> Node {
    let l = &c.lavoratore;
    let r = &l.recapiti;
    if crate::rete::intermediato(&crate::modulo::Modulo::Candidatura(c.clone())) {
        let d = &c.dati_sistema;
        // `visibilita` NO: no contact data for anyone, EURES included (docs/cliclavoro.md).
        if crate::modulo::scheda::contatti_nascosti(d.visibilita.as_deref()) {
            return Node::el("ContactInfo", vec![]);
        }
        let email = pulito_opt(&d.email).filter(|e| email_valida(e));
        return Node::el(
            "ContactInfo",
            vec![
                indirizzo(
                    pulito_opt(&d.indirizzo),
                    pulito_opt(&d.cap),
                    d.idcomune.as_deref(),
                ),
                Node::el("Email", vec![Node::leaf("Contact", email)]),
                Node::el(
                    "TelephoneList",
                    vec![
                        telefono(&d.telefono, Some("work"), "Intermediario"),
                        telefono(&d.fax, None, "Fax"),
                    ],
                ),
            ],
        );
    }
    let email = pulito(&r.email).filter(|e| email_valida(e));
    Node::el(
        "ContactInfo",
        vec![
            indirizzo(
                pulito_opt(&r.indirizzo),
                pulito_opt(&l.domicilio.cap),
                Some(&l.domicilio.idcomune),
            ),
            Node::el("Email", vec![Node::leaf("Contact", email)]),
            Node::el(
                "TelephoneList",
                vec![
                    telefono(&r.cellulare, Some("mobile"), "Cellulare"),
                    telefono(&r.telefono, Some("home"), "Telefono"),
                    // Europass has no fax use code; a label alone is allowed.
                    telefono(&r.fax, None, "Fax"),
                ],
            ),
        ],
    )
}

fn demografia(l: &Lavoratore) -> Node {
    let a = &l.dati_anagrafici;
    let sesso = pulito(&a.sesso).filter(|s| s == "M" || s == "F");
    // Other citizenships are ISTAT state codes, for which no table is at hand.
    let nazionalita = (a.idcittadinanza.trim() == CITTADINANZA_ITALIANA)
        .then(|| codice_etichetta("Nationality", Some("IT"), Some("Italiana".into())));
    Node::el(
        "Demographics",
        vec![
            elemento_data("Birthdate", data(&a.datanascita)),
            Node::el("Gender", vec![Node::leaf("Code", sesso)]),
            Node::el("NationalityList", nazionalita.into_iter().collect()),
        ],
    )
}

/// The Headline: the desired professions, by their descriptions (the ISTAT codes are not the
/// ISCO-88 codes Europass expects).
fn titolo(c: &Candidatura) -> Node {
    let professioni: Vec<String> = c
        .dati_curriculari
        .professione_desiderata_disponibilita
        .iter()
        .filter_map(|p| {
            pulito(&p.descrprofessione).or_else(|| pulito_opt(&p.descrizioneprofessione))
        })
        .collect();
    if professioni.is_empty() {
        return Node::el("Headline", Vec::new());
    }
    Node::el(
        "Headline",
        vec![
            codice_etichetta(
                "Type",
                Some("preferred_job"),
                Some("Professione desiderata".into()),
            ),
            codice_etichetta("Description", None, Some(professioni.join("; "))),
        ],
    )
}

/// A `Period`, which needs a start; without an end the experience is taken as current.
fn periodo(inizio: &Option<Testo>, fine: &Option<Testo>) -> Node {
    let Some(da) = inizio.as_deref().and_then(data) else {
        return Node::el("Period", Vec::new());
    };
    let fine = pulito_opt(fine);
    let a = fine.as_deref().and_then(data);
    Node::el(
        "Period",
        vec![
            elemento_data("From", Some(da)),
            elemento_data("To", a),
            Node::leaf("Current", fine.is_none().then(|| "true".into())),
        ],
    )
}

fn esperienze(lista: &[EsperienzeLavorative]) -> Node {
    let voci = lista
        .iter()
        .map(|e| {
            Node::el(
                "WorkExperience",
                vec![
                    periodo(&e.datainizio, &e.datafine),
                    codice_etichetta("Position", None, pulito_opt(&e.descrqualificasvolta)),
                    Node::leaf("Activities", pulito_opt(&e.principalimansioni)),
                    Node::el(
                        "Employer",
                        vec![
                            Node::leaf("Name", pulito_opt(&e.nomedatore)),
                            Node::el(
                                "ContactInfo",
                                vec![indirizzo(pulito_opt(&e.indirizzodatore), None, None)],
                            ),
                        ],
                    ),
                ],
            )
        })
        .collect();
    Node::el("WorkExperienceList", voci)
}

fn durata(f: &Formazione) -> Option<String> {
    let n = pulito_opt(&f.durata)?;
    // O and M are confirmed, G and A inferred from their initials (cliclavoro_valori_noti.csv).
    let unita = match f.idtipologiadurata.as_deref().map(str::trim) {
        Some("O") => "ore",
        Some("G") => "giorni",
        Some("M") => "mesi",
        Some("A") => "anni",
        _ => return Some(format!("Durata: {n}")),
    };
    Some(format!("Durata: {n} {unita}"))
}

fn istruzione(titoli: &[Istruzione], corsi: &[Formazione]) -> Node {
    let titoli = titoli.iter().map(|i| {
        // The level code's labels are unknown: it only names the title when nothing else does.
        let titolo = pulito_opt(&i.descrizioneistruzione).or_else(|| {
            pulito(&i.titolostudio).map(|c| format!("Titolo di studio (codice ClicLavoro {c})"))
        });
        Node::el(
            "Education",
            vec![
                Node::leaf("Title", titolo),
                Node::leaf(
                    "Activities",
                    pulito_opt(&i.votazione).map(|v| format!("Votazione: {v}")),
                ),
            ],
        )
    });
    let corsi = corsi.iter().map(|f| {
        let corso = pulito_opt(&f.titolocorso);
        let qualifica = pulito_opt(&f.descrqualifica);
        let mut attivita = Vec::new();
        if corso.is_some() {
            if let Some(q) = &qualifica {
                attivita.push(format!("Qualifica conseguita: {q}"));
            }
        }
        attivita.extend(durata(f));
        Node::el(
            "Education",
            vec![
                Node::leaf("Title", corso.or(qualifica)),
                Node::leaf("Activities", unite(&attivita, "; ")),
                Node::el(
                    "Organisation",
                    vec![Node::el(
                        "ContactInfo",
                        vec![indirizzo(None, None, f.idsede.as_deref())],
                    )],
                ),
            ],
        )
    });
    Node::el("EducationList", titoli.chain(corsi).collect())
}

/// A CEFR level as the schema's `[A-C][12]`, or nothing.
fn livello(s: &Option<Testo>) -> Option<String> {
    let l = s.as_deref()?.trim().to_ascii_uppercase();
    let b = l.as_bytes();
    (b.len() == 2 && (b'A'..=b'C').contains(&b[0]) && (b[1] == b'1' || b[1] == b'2')).then_some(l)
}

/// The `Description` of a language: ISO 639-1 for the one code known for sure, otherwise
/// the ClicLavoro code as a label.
fn descrizione_lingua(codice: &str) -> Node {
    if codice == LINGUA_ITALIANA {
        codice_etichetta("Description", Some("it"), Some("Italiano".into()))
    } else {
        codice_etichetta("Description", None, pulito(codice))
    }
}

fn lingue(c: &Candidatura) -> Node {
    let italiano = c.lavoratore.dati_anagrafici.idcittadinanza.trim() == CITTADINANZA_ITALIANA;
    let mut madri = Vec::new();
    let mut straniere = Vec::new();
    for l in &c.dati_curriculari.lingue {
        let Some(codice) = pulito_opt(&l.idlingua) else {
            continue;
        };
        // Italian is the mother tongue of Italian citizens (the convention of the SIL that
        // links 003 to citizenship 000); for anyone else it is a language learnt, with levels.
        if codice == LINGUA_ITALIANA && italiano {
            madri.push(Node::el("MotherTongue", vec![descrizione_lingua(&codice)]));
        } else {
            straniere.push(lingua_straniera(&codice, l));
        }
    }
    Node::el(
        "Linguistic",
        vec![
            Node::el("MotherTongueList", madri),
            Node::el("ForeignLanguageList", straniere),
        ],
    )
}

/// A foreign language. ClicLavoro knows reading, writing and speaking; Europass splits speaking
/// into interaction and production (both get the spoken level) and has listening, which the
/// Candidatura does not state and is left out.
fn lingua_straniera(codice: &str, l: &Lingue) -> Node {
    let parlato = livello(&l.idlivelloparlato);
    Node::el(
        "ForeignLanguage",
        vec![
            descrizione_lingua(codice),
            Node::el(
                "ProficiencyLevel",
                vec![
                    Node::leaf("Reading", livello(&l.idlivelloletto)),
                    Node::leaf("SpokenInteraction", parlato.clone()),
                    Node::leaf("SpokenProduction", parlato),
                    Node::leaf("Writing", livello(&l.idlivelloscritto)),
                ],
            ),
        ],
    )
}

fn competenze(c: &Candidatura) -> Node {
    let d = &c.dati_curriculari;
    let esperienza: Vec<String> = d
        .professione_desiderata_disponibilita
        .iter()
        .filter_map(|p| pulito_opt(&p.descrizioneesperienza))
        .collect();
    let informatica = d.conoscenze_informatiche.as_ref().and_then(|k| {
        match (pulito_opt(&k.tipoconoscenza), pulito_opt(&k.specifiche)) {
            (Some(t), Some(s)) => Some(format!("{t}: {s}")),
            (t, s) => t.or(s),
        }
    });
    let codici = |v: &[Testo]| v.iter().filter_map(|s| pulito(s)).collect::<Vec<_>>();
    let (patenti_ue, patenti_cl): (Vec<String>, Vec<String>) = d
        .abilitazioni_patenti
        .as_ref()
        .map(|a| codici(&a.idpatenteguida))
        .unwrap_or_default()
        .into_iter()
        .partition(|p| PATENTI_UE.contains(&p.as_str()));
    // Codes from ClicLavoro tables whose labels are unknown are kept, as codes, in free text.
    let mut altro = Vec::new();
    let mut in_chiaro = |cosa: &str, valori: &[String]| {
        if let Some(c) = unite(valori, ", ") {
            altro.push(format!("{cosa} (codici ClicLavoro): {c}"));
        }
    };
    in_chiaro("Patenti di guida", &patenti_cl);
    if let Some(a) = &d.abilitazioni_patenti {
        in_chiaro("Abilitazioni", &codici(&a.idpatentino));
        in_chiaro("Albi professionali", &codici(&a.idalbo));
    }
    Node::el(
        "Skills",
        vec![
            lingue(c),
            Node::el(
                "JobRelated",
                vec![Node::leaf("Description", unite(&esperienza, "\n"))],
            ),
            Node::el("Computer", vec![Node::leaf("Description", informatica)]),
            Node::el(
                "Driving",
                vec![Node::el(
                    "Description",
                    patenti_ue
                        .into_iter()
                        .map(|p| Node::leaf("Licence", Some(p)))
                        .collect(),
                )],
            ),
            Node::el(
                "Other",
                vec![Node::leaf("Description", unite(&altro, "\n"))],
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modulo::model::candidatura::{
        AbilitazioniPatenti, ConoscenzeInformatiche, ProfessioneDesiderataDisponibilita,
    };
    use crate::modulo::Modulo;
    use crate::xml::{parse_document, Element, Limits};

    fn creato() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(10, 30, 5)
            .unwrap()
    }

    fn candidatura(bytes: &[u8]) -> Candidatura {
        let root = parse_document(bytes, Limits::default()).expect("example parses");
        match Modulo::leggi(&root) {
            Some(Modulo::Candidatura(c)) => c,
            other => panic!("not a Candidatura: {other:?}"),
        }
    }

    /// The output, checked: well-formed (by our parser and by xmllint when there is one), in the
    /// Europass namespace, and without empty elements apart from LearnerInfo.
    fn converti(c: &Candidatura) -> (String, Element) {
        let xml = europass(c, creato());
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        xmllint(&xml);
        let root = parse_document(xml.as_bytes(), Limits::default())
            .unwrap_or_else(|e| panic!("output does not parse: {e}\n{xml}"));
        assert!(root.is(NS, "SkillsPassport"), "{xml}");
        assert_eq!(root.attr("locale"), Some("it"));
        nessun_vuoto(&root);
        (xml, root)
    }

    fn nessun_vuoto(e: &Element) {
        assert_eq!(
            e.ns.as_deref(),
            Some(NS),
            "{} outside the namespace",
            e.local
        );
        if e.local != "LearnerInfo" {
            assert!(
                !e.text.trim().is_empty() || !e.attrs.is_empty() || !e.children.is_empty(),
                "empty element {}",
                e.local
            );
        }
        e.children.iter().for_each(nessun_vuoto);
    }

    /// Well-formedness by xmllint; skipped when the build found no xmllint (build.rs), unless
    /// PDD_REQUIRE_PEERS is set.
    fn xmllint(xml: &str) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        if cfg!(pdd_no_xmllint) {
            eprintln!("SKIP part of this test: xmllint is not installed (Debian libxml2-utils)");
            return;
        }
        let mut figlio = Command::new("xmllint")
            .args(["--noout", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("xmllint: {e}"));
        figlio
            .stdin
            .take()
            .unwrap()
            .write_all(xml.as_bytes())
            .unwrap();
        let esito = figlio.wait_with_output().unwrap();
        assert!(
            esito.status.success(),
            "xmllint: {}\n{xml}",
            String::from_utf8_lossy(&esito.stderr)
        );
    }

    /// The element at a path of child names (the first child of each name).
    fn a<'e>(e: &'e Element, path: &str) -> &'e Element {
        path.split('/').fold(e, |e, n| {
            e.child(n)
                .unwrap_or_else(|| panic!("no {n} under {} (path {path})", e.local))
        })
    }

    fn t<'e>(e: &'e Element, path: &str) -> &'e str {
        &a(e, path).text
    }

    fn nomi(e: &Element) -> Vec<&str> {
        e.children.iter().map(|c| c.local.as_str()).collect()
    }

    fn data_di(e: &Element) -> (Option<&str>, Option<&str>, Option<&str>) {
        (e.attr("year"), e.attr("month"), e.attr("day"))
    }

    #[test]
    fn candidatura_2_0_in_europass() {
        let c = candidatura(include_bytes!("../../examples/moduli/candidatura-2.0.xml"));
        let (_, root) = converti(&c);

        let info = a(&root, "DocumentInfo");
        assert_eq!(
            nomi(info),
            [
                "DocumentType",
                "CreationDate",
                "LastUpdateDate",
                "XSDVersion",
                "Generator",
                "Comment"
            ]
        );
        assert_eq!(t(info, "DocumentType"), "ECV");
        assert_eq!(t(info, "CreationDate"), "2026-12-01T10:30:05.000Z");
        assert_eq!(t(info, "XSDVersion"), "V3.3");
        assert_eq!(t(info, "Generator"), "pdd");
        assert_eq!(
            t(info, "Comment"),
            "Candidatura ClicLavoro SILBO26200000000000000042"
        );

        let li = a(&root, "LearnerInfo");
        assert_eq!(
            nomi(li),
            [
                "Identification",
                "Headline",
                "WorkExperienceList",
                "EducationList",
                "Skills"
            ]
        );
        let id = a(li, "Identification");
        assert_eq!(t(id, "PersonName/FirstName"), "LAURA");
        assert_eq!(t(id, "PersonName/Surname"), "BIANCHI");
        let ind = a(id, "ContactInfo/Address/Contact");
        assert_eq!(
            nomi(ind),
            ["AddressLine", "PostalCode", "Municipality", "Country"]
        );
        assert_eq!(t(ind, "AddressLine"), "Via delle Moline 12");
        assert_eq!(t(ind, "PostalCode"), "40126");
        // Domicilio A944, not the birthplace F205 (Milano).
        assert_eq!(t(ind, "Municipality"), "Bologna");
        assert_eq!(t(ind, "Country/Code"), "IT");
        assert_eq!(
            t(id, "ContactInfo/Email/Contact"),
            "laura.bianchi@example.it"
        );
        let tel = a(id, "ContactInfo/TelephoneList");
        assert_eq!(tel.children.len(), 1);
        assert_eq!(t(tel, "Telephone/Contact"), "3471234567");
        assert_eq!(t(tel, "Telephone/Use/Code"), "mobile");
        let dem = a(id, "Demographics");
        assert_eq!(
            data_di(a(dem, "Birthdate")),
            (Some("1985"), Some("--08"), Some("---01"))
        );
        assert_eq!(t(dem, "Gender/Code"), "F");
        assert_eq!(t(dem, "NationalityList/Nationality/Code"), "IT");

        assert_eq!(t(li, "Headline/Type/Code"), "preferred_job");
        assert_eq!(t(li, "Headline/Description/Label"), "Contabile");

        let we = a(li, "WorkExperienceList");
        assert_eq!(we.children.len(), 1);
        let we = a(we, "WorkExperience");
        assert_eq!(nomi(we), ["Period", "Position", "Activities", "Employer"]);
        assert_eq!(
            data_di(a(we, "Period/From")),
            (Some("2012"), Some("--03"), Some("---01"))
        );
        assert_eq!(
            data_di(a(we, "Period/To")),
            (Some("2019"), Some("--06"), Some("---30"))
        );
        assert!(a(we, "Period").child("Current").is_none());
        assert_eq!(t(we, "Position/Label"), "Addetta alla contabilità");
        assert_eq!(
            t(we, "Activities"),
            "Prima nota, riconciliazioni bancarie, fatturazione"
        );
        assert_eq!(t(we, "Employer/Name"), "Studio Associato Esempio");
        assert!(a(we, "Employer").child("ContactInfo").is_none());

        assert_eq!(
            t(li, "EducationList/Education/Title"),
            "Diploma di ragioneria"
        );

        let sk = a(li, "Skills");
        assert_eq!(nomi(sk), ["Linguistic"]);
        let ling = a(sk, "Linguistic");
        // 002 is not a code known for sure: it stays a label, and is a foreign language.
        assert_eq!(nomi(ling), ["ForeignLanguageList"]);
        let fl = a(ling, "ForeignLanguageList/ForeignLanguage");
        assert!(a(fl, "Description").child("Code").is_none());
        assert_eq!(t(fl, "Description/Label"), "002");
        let lv = a(fl, "ProficiencyLevel");
        assert_eq!(
            nomi(lv),
            [
                "Reading",
                "SpokenInteraction",
                "SpokenProduction",
                "Writing"
            ]
        );
        assert_eq!(t(lv, "Reading"), "B2");
        assert_eq!(t(lv, "SpokenInteraction"), "B1");
        assert_eq!(t(lv, "SpokenProduction"), "B1");
        assert_eq!(t(lv, "Writing"), "B1");
    }

    #[test]
    fn candidatura_rev038_in_europass() {
        let c = candidatura(include_bytes!(
            "../../examples/moduli/candidatura-rev038.xml"
        ));
        let (_, root) = converti(&c);
        let li = a(&root, "LearnerInfo");
        let id = a(li, "Identification");
        assert_eq!(t(id, "PersonName/Surname"), "MARINELLI");
        assert_eq!(t(id, "PersonName/FirstName"), "TOMMASO");
        assert_eq!(t(id, "ContactInfo/Address/Contact/Municipality"), "Como");
        assert_eq!(t(id, "ContactInfo/Address/Contact/PostalCode"), "22100");
        assert_eq!(
            data_di(a(id, "Demographics/Birthdate")),
            (Some("1991"), Some("--03"), Some("---14"))
        );
        assert_eq!(t(id, "Demographics/Gender/Code"), "M");

        let we: Vec<&Element> = a(li, "WorkExperienceList").children.iter().collect();
        assert_eq!(we.len(), 2);
        assert_eq!(t(we[0], "Position/Label"), "Aiuto panettiere");
        assert_eq!(
            data_di(a(we[0], "Period/From")),
            (Some("2014"), Some("--09"), Some("---01"))
        );
        assert_eq!(
            data_di(a(we[0], "Period/To")),
            (Some("2018"), Some("--08"), Some("---31"))
        );
        assert_eq!(
            t(we[0], "Employer/ContactInfo/Address/Contact/AddressLine"),
            "Via Milano 10, Como"
        );
        assert_eq!(t(we[1], "Position/Label"), "Panettiere");
        assert_eq!(t(we[1], "Employer/Name"), "Forno Esempio Srl");
        assert!(we[1].child("Activities").is_none());

        // The Istruzione first, then the Formazione course with its sede and duration.
        let ed: Vec<&Element> = a(li, "EducationList").children.iter().collect();
        assert_eq!(ed.len(), 2);
        assert!(t(ed[0], "Title").starts_with("Qualifica professionale operatore"));
        assert_eq!(t(ed[1], "Title"), "Igiene degli alimenti (HACCP)");
        assert_eq!(t(ed[1], "Activities"), "Durata: 12 ore");
        assert_eq!(
            t(
                ed[1],
                "Organisation/ContactInfo/Address/Contact/Municipality"
            ),
            "Como"
        );

        // 003 of an Italian citizen: mother tongue, coded, without levels.
        let ling = a(li, "Skills/Linguistic");
        assert_eq!(nomi(ling), ["MotherTongueList"]);
        let mt = a(ling, "MotherTongueList/MotherTongue");
        assert_eq!(t(mt, "Description/Code"), "it");
        assert!(mt.child("ProficiencyLevel").is_none());

        // Patente 05 has no known EU category: no Driving, the code kept as text.
        let sk = a(li, "Skills");
        assert_eq!(nomi(sk), ["Linguistic", "JobRelated", "Other"]);
        assert_eq!(
            t(sk, "JobRelated/Description"),
            "Dodici anni in panifici artigianali"
        );
        assert_eq!(
            t(sk, "Other/Description"),
            "Patenti di guida (codici ClicLavoro): 05"
        );
        assert_eq!(t(li, "Headline/Description/Label"), "Panettiere");
    }

    #[test]
    fn testo_ostile_escapato() {
        let ostile = "<script>&\"'";
        let mut c = Candidatura::default();
        let a_ = &mut c.lavoratore.dati_anagrafici;
        a_.cognome = format!("D'Amico {ostile}").into();
        a_.nome = "Ann&a ]]> <!-- x -->".into();
        a_.datanascita = "1990-01-02\"/><x a=\"".into();
        c.lavoratore.recapiti.indirizzo = Some(format!("Via {ostile} 1").into());
        c.lavoratore.recapiti.email = "a&b@example.it".into();
        c.lavoratore.recapiti.cellulare = Some(ostile.into());
        c.dati_curriculari
            .esperienze_lavorative
            .push(EsperienzeLavorative {
                descrqualificasvolta: Some(ostile.into()),
                // A control character XML cannot carry is dropped, not written.
                principalimansioni: Some("Turni\u{1} & <notte>".into()),
                nomedatore: Some("\"Forno\" & 'Figli'".into()),
                indirizzodatore: Some(ostile.into()),
                datainizio: Some("2001-02-03".into()),
                ..Default::default()
            });
        c.dati_curriculari.lingue.push(Lingue {
            idlingua: Some(ostile.into()),
            idlivelloletto: Some("<B2>".into()),
            ..Default::default()
        });
        c.dati_curriculari.conoscenze_informatiche = Some(ConoscenzeInformatiche {
            tipoconoscenza: Some("Office & <macro>".into()),
            specifiche: None,
        });
        c.dati_curriculari
            .professione_desiderata_disponibilita
            .push(ProfessioneDesiderataDisponibilita {
                descrprofessione: ostile.into(),
                ..Default::default()
            });
        c.dati_sistema.codicecandidatura = ostile.into();

        let (xml, root) = converti(&c);
        assert!(!xml.contains("<script>"), "{xml}");
        assert!(!xml.contains("<notte>"), "{xml}");
        assert!(!xml.contains('\u{1}'));

        let id = a(&root, "LearnerInfo/Identification");
        assert_eq!(t(id, "PersonName/Surname"), "D'Amico <script>&\"'");
        assert_eq!(t(id, "PersonName/FirstName"), "Ann&a ]]> <!-- x -->");
        assert_eq!(
            t(id, "ContactInfo/Address/Contact/AddressLine"),
            "Via <script>&\"' 1"
        );
        assert_eq!(t(id, "ContactInfo/Email/Contact"), "a&b@example.it");
        assert_eq!(t(id, "ContactInfo/TelephoneList/Telephone/Contact"), ostile);
        // The date keeps its valid head; the rest cannot leak into the attribute list.
        let nascita = a(id, "Demographics/Birthdate");
        assert_eq!(
            data_di(nascita),
            (Some("1990"), Some("--01"), Some("---02"))
        );
        assert_eq!(nascita.attrs.len(), 3);

        let we = a(&root, "LearnerInfo/WorkExperienceList/WorkExperience");
        assert_eq!(t(we, "Position/Label"), ostile);
        assert_eq!(t(we, "Activities"), "Turni & <notte>");
        assert_eq!(t(we, "Employer/Name"), "\"Forno\" & 'Figli'");
        assert_eq!(
            t(we, "Employer/ContactInfo/Address/Contact/AddressLine"),
            ostile
        );
        assert_eq!(a(we, "Period/Current").text, "true");

        let sk = a(&root, "LearnerInfo/Skills");
        let fl = a(sk, "Linguistic/ForeignLanguageList/ForeignLanguage");
        assert_eq!(t(fl, "Description/Label"), ostile);
        // "<B2>" is not a CEFR level: no ProficiencyLevel at all rather than an empty one.
        assert!(fl.child("ProficiencyLevel").is_none());
        assert_eq!(t(sk, "Computer/Description"), "Office & <macro>");
        assert_eq!(t(&root, "LearnerInfo/Headline/Description/Label"), ostile);
        assert_eq!(
            t(&root, "DocumentInfo/Comment"),
            "Candidatura ClicLavoro <script>&\"'"
        );
    }

    #[test]
    fn date_parziali_e_periodi() {
        let mut c = Candidatura::default();
        c.lavoratore.dati_anagrafici.datanascita = "1990-07-04T00:00:00".into();
        let esperienza = |da: Option<&str>, a: Option<&str>| EsperienzeLavorative {
            nomedatore: Some("Datore".into()),
            datainizio: da.map(Into::into),
            datafine: a.map(Into::into),
            ..Default::default()
        };
        c.dati_curriculari.esperienze_lavorative = vec![
            esperienza(Some("2010"), Some("2011-05")),
            // 30 February: the day is dropped, the month kept.
            esperienza(Some("2015-02-30"), None),
            // No start: no Period at all (From is required), but the rest stays.
            esperienza(None, Some("2019-01-01")),
            esperienza(Some("ieri"), None),
            esperienza(Some("2020-13-01+02:00"), Some("2021-03-04Z")),
        ];
        let (_, root) = converti(&c);
        assert_eq!(
            data_di(a(
                &root,
                "LearnerInfo/Identification/Demographics/Birthdate"
            )),
            (Some("1990"), Some("--07"), Some("---04"))
        );
        let we: Vec<&Element> = a(&root, "LearnerInfo/WorkExperienceList")
            .children
            .iter()
            .collect();
        assert_eq!(we.len(), 5);
        assert_eq!(data_di(a(we[0], "Period/From")), (Some("2010"), None, None));
        assert_eq!(
            data_di(a(we[0], "Period/To")),
            (Some("2011"), Some("--05"), None)
        );
        assert!(a(we[0], "Period").child("Current").is_none());
        assert_eq!(
            data_di(a(we[1], "Period/From")),
            (Some("2015"), Some("--02"), None)
        );
        assert!(a(we[1], "Period").child("To").is_none());
        assert_eq!(t(we[1], "Period/Current"), "true");
        assert_eq!(nomi(we[2]), ["Employer"]);
        assert_eq!(nomi(we[3]), ["Employer"]);
        assert_eq!(data_di(a(we[4], "Period/From")), (Some("2020"), None, None));
        assert_eq!(
            data_di(a(we[4], "Period/To")),
            (Some("2021"), Some("--03"), Some("---04"))
        );

        assert_eq!(data("20101"), None);
        assert_eq!(data("2010-123"), Some(vec![("year", "2010".into())]));
        assert_eq!(
            data(" 2010-12-011 "),
            Some(vec![("year", "2010".into()), ("month", "--12".into())])
        );
        assert_eq!(data("0000-01-01"), None);
        assert_eq!(data(""), None);
    }

    #[test]
    fn intermediata_porta_i_contatti_dell_intermediario() {
        let mut c = candidatura(include_bytes!(
            "../../examples/moduli/candidatura-rev038.xml"
        ));
        let d = &mut c.dati_sistema;
        d.denominazioneintermediario = Some("CPI Bologna".into());
        d.codicefiscaleintermediario = Some("80213330584".into());
        d.indirizzo = Some("Via del Lavoro 1".into());
        d.idcomune = Some("A944".into());
        d.telefono = Some("0510000001".into());
        d.email = Some("cpi.bologna@example.it".into());
        let (xml, _) = converti(&c);
        assert!(xml.contains("cpi.bologna@example.it"), "{xml}");
        assert!(xml.contains("Via del Lavoro 1") && xml.contains("Bologna"));
        // None of the worker's own contacts (the CV is still the worker's: name and history).
        for proprio in [
            "tommaso.marinelli@example.it",
            "3391122334",
            "Via Borgovico 41",
        ] {
            assert!(!xml.contains(proprio), "{proprio} in {xml}");
        }
        assert!(xml.contains("MARINELLI"));
        // With visibilita NO, not even the intermediary's.
        c.dati_sistema.visibilita = Some("NO".into());
        let (xml, _) = converti(&c);
        for dato in ["cpi.bologna@example.it", "Via del Lavoro 1", "0510000001"] {
            assert!(!xml.contains(dato), "{dato} in {xml}");
        }
        assert!(xml.contains("MARINELLI"), "the CV itself is still sent");
    }

    #[test]
    fn dati_assenti_o_non_validi_omessi() {
        let mut c = Candidatura::default();
        c.lavoratore.recapiti.email = "non-una-mail".into();
        c.lavoratore.dati_anagrafici.sesso = "X".into();
        // A foreign citizenship (ISTAT code) has no ISO code at hand: no nationality.
        c.lavoratore.dati_anagrafici.idcittadinanza = "330".into();
        c.lavoratore.domicilio.idcomune = "0000".into();
        c.lavoratore.recapiti.telefono = Some("   ".into());
        c.dati_curriculari.lingue.push(Lingue::default());
        c.dati_curriculari
            .esperienze_lavorative
            .push(Default::default());
        c.dati_curriculari.abilitazioni_patenti = Some(AbilitazioniPatenti {
            idpatenteguida: vec!["B".into(), "C1E".into()],
            ..Default::default()
        });
        let (xml, root) = converti(&c);
        assert!(!xml.contains("Email"), "{xml}");
        let li = a(&root, "LearnerInfo");
        // Only the patenti that are EU categories themselves survive; everything else is empty.
        assert_eq!(nomi(li), ["Skills"]);
        assert_eq!(nomi(a(li, "Skills")), ["Driving"]);
        let lic: Vec<&str> = a(li, "Skills/Driving/Description")
            .children
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(lic, ["B", "C1E"]);

        // Italian of a foreign citizen is a learnt language, with its levels.
        c.dati_curriculari.lingue = vec![Lingue {
            idlingua: Some("003".into()),
            idlivelloparlato: Some("c1".into()),
            ..Default::default()
        }];
        let (_, root) = converti(&c);
        let fl = a(
            &root,
            "LearnerInfo/Skills/Linguistic/ForeignLanguageList/ForeignLanguage",
        );
        assert_eq!(t(fl, "Description/Code"), "it");
        assert_eq!(t(fl, "ProficiencyLevel/SpokenProduction"), "C1");

        let (_, root) = converti(&Candidatura::default());
        assert_eq!(nomi(&root), ["DocumentInfo", "LearnerInfo"]);
        assert!(a(&root, "LearnerInfo").children.is_empty());
        // No code, no Comment; the required DocumentInfo elements are all there.
        assert_eq!(a(&root, "DocumentInfo").children.len(), 5);
    }

    #[test]
    fn email_secondo_il_pattern_europass() {
        assert!(email_valida("a@b.it"));
        assert!(email_valida("nome.cognome@mail.example.it"));
        assert!(!email_valida("a@b"));
        assert!(!email_valida("@b.it"));
        assert!(!email_valida("a@.it"));
        assert!(!email_valida("a@b."));
    }
}
