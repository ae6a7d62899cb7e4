//! Reads the busta e-Gov out of the SOAP header blocks and checks its syntax.
//!
//! The checks run in stages, as GovWay's do, and reading stops at the first stage that finds a
//! problem, so an answer carries the eccezioni of one stage only (busta-egov.md §3.1):
//! 1. finding the header (none: a bare Fault; two, or a wrong element name: EGOV_IT_001);
//! 2. the Intestazione's actor, mustUnderstand and namespace (EGOV_IT_002);
//! 3. the pre-check of what every answer needs: Mittente, Destinatario, Messaggio, Identificatore;
//! 4. the syntax of every element and attribute.
//!
//! Each problem says whether it is *structural* (an element or attribute missing or doubled):
//! by default those are answered with a bare SOAP Fault EGOV_IT_001 instead of an error busta.

use std::ops::Range;

use super::{
    time, Busta, Codice, Eccezione, Identificatore, Inoltro, Ora, Parte, Profilo, Rilevanza,
    Riscontro, Servizio, Tempo, Trasmissione, ACTOR, NS_BUSTA, NS_WSU,
};
use crate::soap::SOAP11_NS;
use crate::xml::Element;

/// Party types of SPCoop (GovWay manifest `<registry>` organization types).
pub const TIPI_SOGGETTO: &[&str] = &["SPC", "AOO", "TEST"];
/// Service types.
pub const TIPI_SERVIZIO: &[&str] = &[
    "SPC",
    "TEST",
    "URL",
    "WSDL",
    "LDAP",
    "UDDI",
    "ebXMLRegistry",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problema {
    pub eccezione: Eccezione,
    /// A required element or attribute missing, or an element doubled.
    pub strutturale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trovata<'e> {
    pub header: &'e Element,
    /// Byte range of the header block in the message.
    pub span: Range<usize>,
    /// The values that passed the checks.
    pub busta: Busta,
    /// Problems found, all GRAVE (empty when the syntax is right).
    pub problemi: Vec<Problema>,
    /// Problems in a received ListaEccezioni: diagnostics only, as GovWay keeps them apart.
    pub diagnostica: Vec<Problema>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lettura<'e> {
    /// No eGov header at all: a bare SOAP Fault EGOV_IT_001.
    Assente,
    Trovata(Box<Trovata<'e>>),
}

fn grave(codice: Codice, posizione: impl Into<String>, strutturale: bool) -> Problema {
    Problema {
        eccezione: Eccezione::grave(codice, posizione),
        strutturale,
    }
}

fn is_busta(e: &Element, local: &str) -> bool {
    e.is(NS_BUSTA, local)
}

fn children<'a>(e: &'a Element, local: &str) -> Vec<&'a Element> {
    e.children.iter().filter(|c| is_busta(c, local)).collect()
}

/// Finds the busta among the header blocks and reads it.
pub fn leggi(blocks: &[Element]) -> Lettura<'_> {
    // A block is taken for the eGov header if it is in the busta namespace or carries its actor.
    let candidati: Vec<&Element> = blocks
        .iter()
        .filter(|b| {
            b.ns.as_deref() == Some(NS_BUSTA) || b.attr_ns(SOAP11_NS, "actor") == Some(ACTOR)
        })
        .collect();
    let Some(&header) = candidati.first() else {
        return Lettura::Assente;
    };
    let mut t = Trovata {
        header,
        span: header.span.clone(),
        busta: Busta::default(),
        problemi: Vec::new(),
        diagnostica: Vec::new(),
    };
    if candidati.len() > 1 {
        t.problemi.push(grave(
            Codice::FORMATO_BUSTA,
            "Più di un header e-Gov presente",
            false,
        ));
        return Lettura::Trovata(Box::new(t));
    }
    if header.local != "Intestazione" {
        t.problemi
            .push(grave(Codice::FORMATO_BUSTA, "Intestazione", false));
        return Lettura::Trovata(Box::new(t));
    }
    // Stage 2: the Intestazione element itself.
    if header.attr_ns(SOAP11_NS, "actor") != Some(ACTOR) {
        t.problemi.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "Intestazione/actor",
            false,
        ));
    }
    // SOAP 1.1 writes "1"; SAAJ (hence GovWay) also takes "true", which zeep and other
    // xsd:boolean-minded stacks send.
    let mu = header.attr_ns(SOAP11_NS, "mustUnderstand").map(str::trim);
    if !mu.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        t.problemi.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "Intestazione/mustUnderstand",
            false,
        ));
    }
    if header.ns.as_deref() != Some(NS_BUSTA) {
        t.problemi.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "Intestazione/namespace",
            false,
        ));
    }
    if !t.problemi.is_empty() {
        return Lettura::Trovata(Box::new(t));
    }
    // Stage 3: what every answer needs.
    let im = children(header, "IntestazioneMessaggio");
    let Some(&im) = im.first() else {
        t.problemi.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "IntestazioneMessaggio",
            false,
        ));
        return Lettura::Trovata(Box::new(t));
    };
    precheck(im, &mut t);
    if !t.problemi.is_empty() {
        return Lettura::Trovata(Box::new(t));
    }
    // Stage 4: everything else.
    syntax(header, im, &mut t);
    Lettura::Trovata(Box::new(t))
}

/// Reads a party of Mittente/Destinatario as the pre-check does.
fn precheck_parte(
    el: Option<&Element>,
    base: &str,
    codice: Codice,
    p: &mut Vec<Problema>,
) -> Option<Parte> {
    let Some(el) = el else {
        p.push(grave(codice, base, true));
        return None;
    };
    let ids = children(el, "IdentificativoParte");
    let Some(&first) = ids.first() else {
        p.push(grave(codice, format!("{base}/IdentificativoParte"), true));
        return None;
    };
    if el
        .children
        .iter()
        .any(|c| !is_busta(c, "IdentificativoParte"))
    {
        p.push(grave(codice, format!("{base}/IdentificativoParte"), true));
        return None;
    }
    let mut ok = true;
    let Some(tipo) = first.attr("tipo") else {
        p.push(grave(
            codice,
            format!("{base}/IdentificativoParte/tipo"),
            true,
        ));
        return None;
    };
    if first.value().is_empty() {
        p.push(grave(codice, format!("{base}/IdentificativoParte"), false));
        ok = false;
    }
    for _ in 1..ids.len() {
        p.push(grave(codice, format!("{base}/IdentificativoParte"), false));
        ok = false;
    }
    ok.then(|| Parte {
        tipo: tipo.trim().to_string(),
        nome: first.value().to_string(),
        indirizzo: first.attr("indirizzoTelematico").map(str::to_string),
    })
}

fn precheck(im: &Element, t: &mut Trovata<'_>) {
    let p = &mut t.problemi;
    t.busta.mittente = precheck_parte(
        children(im, "Mittente").first().copied(),
        "Mittente",
        Codice::MITTENTE,
        p,
    );
    t.busta.destinatario = precheck_parte(
        children(im, "Destinatario").first().copied(),
        "Destinatario",
        Codice::DESTINATARIO,
        p,
    );
    match children(im, "Messaggio").first() {
        None => p.push(grave(Codice::FORMATO_INTESTAZIONE, "Messaggio", true)),
        Some(m) => {
            if children(m, "Identificatore").is_empty() {
                p.push(grave(
                    Codice::ID_NON_DEFINITO,
                    "Messaggio/Identificatore",
                    true,
                ));
            }
        }
    }
}

/// Checks an optional `indirizzoTelematico`: when present it must be a URL.
fn indirizzo_valido(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
                && !rest.is_empty()
                && !rest.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Value checks of a party already read by the pre-check.
fn syntax_parte(parte: &Parte, base: &str, codice: Codice, p: &mut Vec<Problema>) {
    if !TIPI_SOGGETTO.contains(&parte.tipo.as_str()) {
        p.push(grave(
            codice,
            format!("{base}/IdentificativoParte/tipo"),
            false,
        ));
    }
    if let Some(ind) = &parte.indirizzo {
        if !indirizzo_valido(ind) {
            p.push(grave(
                codice,
                format!("{base}/IdentificativoParte/indirizzoTelematico"),
                false,
            ));
        }
    }
}

/// Reads an `OraRegistrazione` element; `base` is its posizione.
fn ora(
    el: &Element,
    base: &str,
    codice: Codice,
    tempo_strutturale: bool,
    p: &mut Vec<Problema>,
) -> Option<Ora> {
    let t = time::parse(el.value());
    if t.is_none() {
        p.push(grave(codice, base, false));
    }
    let tempo = match el.attr("tempo") {
        None => {
            p.push(grave(codice, format!("{base}/tempo"), tempo_strutturale));
            None
        }
        Some(v) => {
            let tempo = Tempo::parse(v.trim());
            if tempo.is_none() {
                p.push(grave(codice, format!("{base}/tempo"), false));
            }
            tempo
        }
    };
    Some(Ora {
        ora: t?,
        tempo: tempo?,
    })
}

/// The single child `local` of `parent`: missing or doubled are structural problems.
fn one<'a>(
    parent: &'a Element,
    local: &str,
    codice: Codice,
    posizione: &str,
    p: &mut Vec<Problema>,
) -> Option<&'a Element> {
    let c = children(parent, local);
    match c.len() {
        0 => {
            p.push(grave(codice, posizione, true));
            None
        }
        1 => Some(c[0]),
        _ => {
            p.push(grave(codice, posizione, true));
            None
        }
    }
}

/// The optional child `local`: doubled is a structural problem.
fn optional<'a>(
    parent: &'a Element,
    local: &str,
    codice: Codice,
    posizione: &str,
    p: &mut Vec<Problema>,
) -> Option<&'a Element> {
    let c = children(parent, local);
    if c.len() > 1 {
        p.push(grave(codice, posizione, true));
        return None;
    }
    c.first().copied()
}

const FIGLI_INTESTAZIONE: &[&str] = &[
    "IntestazioneMessaggio",
    "ListaRiscontri",
    "ListaTrasmissioni",
    "ListaEccezioni",
];
const FIGLI_INTESTAZIONE_MESSAGGIO: &[&str] = &[
    "Mittente",
    "Destinatario",
    "ProfiloCollaborazione",
    "Collaborazione",
    "Servizio",
    "Azione",
    "Messaggio",
    "ProfiloTrasmissione",
    "Sequenza",
];
const FIGLI_MESSAGGIO: &[&str] = &[
    "Identificatore",
    "OraRegistrazione",
    "RiferimentoMessaggio",
    "Scadenza",
];

fn unknown_children(el: &Element, known: &[&str], base: &str, p: &mut Vec<Problema>) {
    for c in &el.children {
        if !(c.ns.as_deref() == Some(NS_BUSTA) && known.contains(&c.local.as_str())) {
            p.push(grave(
                Codice::FORMATO_INTESTAZIONE,
                format!("{base}/{}", c.local),
                false,
            ));
        }
    }
}

fn syntax(header: &Element, im: &Element, t: &mut Trovata<'_>) {
    let p = &mut t.problemi;
    let b = &mut t.busta;
    unknown_children(header, FIGLI_INTESTAZIONE, "Intestazione", p);
    if children(header, "IntestazioneMessaggio").len() > 1 {
        p.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "IntestazioneMessaggio",
            true,
        ));
    }
    b.wsu_id = im.attr_ns(NS_WSU, "Id").map(str::to_string);
    unknown_children(im, FIGLI_INTESTAZIONE_MESSAGGIO, "IntestazioneMessaggio", p);

    // Mittente, Destinatario: read by the pre-check; here doubles and values.
    if children(im, "Mittente").len() > 1 {
        p.push(grave(Codice::MITTENTE, "Mittente", true));
    }
    if children(im, "Destinatario").len() > 1 {
        p.push(grave(Codice::DESTINATARIO, "Destinatario", true));
    }
    if let Some(m) = &b.mittente {
        syntax_parte(m, "Mittente", Codice::MITTENTE, p);
    }
    if let Some(d) = &b.destinatario {
        syntax_parte(d, "Destinatario", Codice::DESTINATARIO, p);
    }

    if let Some(pc) = optional(
        im,
        "ProfiloCollaborazione",
        Codice::PROFILO_COLLABORAZIONE,
        "ProfiloCollaborazione",
        p,
    ) {
        b.profilo = Profilo::parse(pc.value());
        if b.profilo.is_none() {
            p.push(grave(
                Codice::PROFILO_COLLABORAZIONE,
                "ProfiloCollaborazione",
                false,
            ));
        }
        if let Some(tipo) = pc.attr("tipo") {
            if TIPI_SERVIZIO.contains(&tipo.trim()) {
                b.tipo_servizio_correlato = Some(tipo.trim().to_string());
            } else {
                p.push(grave(
                    Codice::PROFILO_COLLABORAZIONE,
                    "ProfiloCollaborazione/tipo",
                    false,
                ));
            }
        }
        b.servizio_correlato = pc.attr("servizioCorrelato").map(|s| s.trim().to_string());
    }
    if let Some(c) = optional(
        im,
        "Collaborazione",
        Codice::COLLABORAZIONE,
        "Collaborazione",
        p,
    ) {
        if Identificatore::parse(c.value()).is_ok() {
            b.collaborazione = Some(c.value().to_string());
        } else {
            p.push(grave(Codice::COLLABORAZIONE, "Collaborazione", false));
        }
    }
    if let Some(s) = optional(im, "Servizio", Codice::SERVIZIO, "Servizio", p) {
        match s.attr("tipo").map(str::trim) {
            None => p.push(grave(Codice::SERVIZIO, "Servizio/tipo", true)),
            Some(tipo) if !TIPI_SERVIZIO.contains(&tipo) => {
                p.push(grave(Codice::SERVIZIO, "Servizio/tipo", false))
            }
            Some(tipo) => {
                if s.value().is_empty() {
                    p.push(grave(Codice::SERVIZIO, "Servizio", false));
                } else {
                    b.servizio = Some(Servizio {
                        tipo: tipo.to_string(),
                        nome: s.value().to_string(),
                    });
                }
            }
        }
    }
    if let Some(a) = optional(im, "Azione", Codice::AZIONE, "Azione", p) {
        if a.value().is_empty() {
            p.push(grave(Codice::AZIONE, "Azione", false));
        } else {
            b.azione = Some(a.value().to_string());
        }
    }

    // Messaggio.
    let messaggi = children(im, "Messaggio");
    if messaggi.len() > 1 {
        p.push(grave(Codice::FORMATO_INTESTAZIONE, "Messaggio", true));
    } else if let Some(m) = messaggi.first() {
        unknown_children(m, FIGLI_MESSAGGIO, "Messaggio", p);
        if let Some(id) = one(
            m,
            "Identificatore",
            Codice::ID_NON_DEFINITO,
            "Messaggio/Identificatore",
            p,
        ) {
            if id.value().is_empty() {
                p.push(grave(
                    Codice::ID_NON_DEFINITO,
                    "Messaggio/Identificatore",
                    false,
                ));
            } else if Identificatore::parse(id.value()).is_ok() {
                b.id = Some(id.value().to_string());
            } else {
                p.push(grave(
                    Codice::ID_NON_VALIDO,
                    "Messaggio/Identificatore",
                    false,
                ));
            }
        }
        let ore = children(m, "OraRegistrazione");
        match ore.len() {
            0 => p.push(grave(
                Codice::ORA_REGISTRAZIONE,
                "Messaggio/OraRegistrazione",
                false,
            )),
            1 => {
                b.ora_registrazione = ora(
                    ore[0],
                    "Messaggio/OraRegistrazione",
                    Codice::ORA_REGISTRAZIONE,
                    true,
                    p,
                )
            }
            _ => p.push(grave(
                Codice::ORA_REGISTRAZIONE,
                "Messaggio/OraRegistrazione",
                true,
            )),
        }
        if let Some(r) = optional(
            m,
            "RiferimentoMessaggio",
            Codice::RIFERIMENTO_NON_DEFINITO,
            "Messaggio/RiferimentoMessaggio",
            p,
        ) {
            if Identificatore::parse(r.value()).is_ok() {
                b.riferimento_messaggio = Some(r.value().to_string());
            } else {
                p.push(grave(
                    Codice::RIFERIMENTO_NON_VALIDO,
                    "Messaggio/RiferimentoMessaggio",
                    false,
                ));
            }
        }
        if let Some(s) = optional(m, "Scadenza", Codice::SCADENZA, "Messaggio/Scadenza", p) {
            match time::parse(s.value()) {
                Some(t) => b.scadenza = Some(t),
                None => p.push(grave(Codice::SCADENZA, "Messaggio/Scadenza", false)),
            }
        }
    }

    if let Some(pt) = optional(
        im,
        "ProfiloTrasmissione",
        Codice::PROFILO_TRASMISSIONE,
        "ProfiloTrasmissione",
        p,
    ) {
        b.profilo_trasmissione = true;
        if let Some(i) = pt.attr("inoltro") {
            b.inoltro = Inoltro::parse(i.trim());
            if b.inoltro.is_none() {
                p.push(grave(
                    Codice::PROFILO_TRASMISSIONE,
                    "ProfiloTrasmissione/inoltro",
                    false,
                ));
            }
        } else {
            // Busta.xsd default.
            b.inoltro = Some(Inoltro::PiuDiUnaVolta);
        }
        match pt.attr("confermaRicezione").map(str::trim) {
            None => b.conferma_ricezione = Some(false),
            Some("true") | Some("1") => b.conferma_ricezione = Some(true),
            Some("false") | Some("0") => b.conferma_ricezione = Some(false),
            Some(_) => p.push(grave(
                Codice::PROFILO_TRASMISSIONE,
                "ProfiloTrasmissione/confermaRicezione",
                false,
            )),
        }
    }
    if let Some(s) = optional(im, "Sequenza", Codice::SEQUENZA, "Sequenza", p) {
        match s.attr("numeroProgressivo").map(str::trim) {
            None => p.push(grave(Codice::SEQUENZA, "Sequenza/numeroProgressivo", true)),
            Some(n) => match n.parse::<u32>() {
                Ok(v) if v > 0 && n.bytes().all(|c| c.is_ascii_digit()) => b.sequenza = Some(v),
                _ => p.push(grave(Codice::SEQUENZA, "Sequenza/numeroProgressivo", false)),
            },
        }
    }

    // The lists.
    if let Some(lr) = optional(
        header,
        "ListaRiscontri",
        Codice::LISTA_RISCONTRI,
        "ListaRiscontri",
        p,
    ) {
        b.riscontri = Some(riscontri(lr, p));
    }
    if let Some(lt) = optional(
        header,
        "ListaTrasmissioni",
        Codice::LISTA_TRASMISSIONI,
        "ListaTrasmissioni",
        p,
    ) {
        b.trasmissioni = Some(trasmissioni(lt, p));
    }
    let liste_eccezioni = children(header, "ListaEccezioni");
    if liste_eccezioni.len() > 1 {
        t.diagnostica
            .push(grave(Codice::FORMATO_INTESTAZIONE, "ListaEccezioni", true));
    }
    if let Some(le) = liste_eccezioni.first() {
        b.eccezioni = Some(eccezioni(le, &mut t.diagnostica));
    }
}

fn riscontri(lr: &Element, p: &mut Vec<Problema>) -> Vec<Riscontro> {
    let base = "ListaRiscontri/Riscontro";
    let list = children(lr, "Riscontro");
    if list.is_empty() {
        p.push(grave(Codice::LISTA_RISCONTRI, base, false));
    }
    let mut out = Vec::new();
    for r in list {
        let id = one(
            r,
            "Identificatore",
            Codice::LISTA_RISCONTRI,
            &format!("{base}/Identificatore"),
            p,
        )
        .and_then(|i| {
            let ok = Identificatore::parse(i.value()).is_ok();
            if !ok {
                p.push(grave(
                    Codice::LISTA_RISCONTRI,
                    format!("{base}/Identificatore"),
                    false,
                ));
            }
            ok.then(|| i.value().to_string())
        });
        let o = one(
            r,
            "OraRegistrazione",
            Codice::LISTA_RISCONTRI,
            &format!("{base}/OraRegistrazione"),
            p,
        )
        .and_then(|o| {
            ora(
                o,
                &format!("{base}/OraRegistrazione"),
                Codice::LISTA_RISCONTRI,
                true,
                p,
            )
        });
        if let (Some(id), Some(ora)) = (id, o) {
            out.push(Riscontro { id, ora });
        }
    }
    out
}

/// Origine or Destinazione of a Trasmissione.
fn parte_trasmissione(tr: &Element, local: &str, p: &mut Vec<Problema>) -> Option<Parte> {
    let base = format!("ListaTrasmissioni/Trasmissione/{local}");
    let el = one(tr, local, Codice::LISTA_TRASMISSIONI, &base, p)?;
    let ids = children(el, "IdentificativoParte");
    let pos = format!("{base}/IdentificativoParte");
    let Some(first) = ids.first() else {
        p.push(grave(Codice::LISTA_TRASMISSIONI, pos, true));
        return None;
    };
    if ids.len() > 1 {
        p.push(grave(Codice::LISTA_TRASMISSIONI, pos, false));
        return None;
    }
    let mut ok = true;
    if first.value().is_empty() {
        p.push(grave(Codice::LISTA_TRASMISSIONI, pos.clone(), false));
        ok = false;
    }
    // A missing tipo is a value error here (GovWay reports it so, unlike Mittente's).
    match first.attr("tipo").map(str::trim) {
        Some(t) if TIPI_SOGGETTO.contains(&t) => {}
        _ => {
            p.push(grave(
                Codice::LISTA_TRASMISSIONI,
                format!("{pos}/tipo"),
                false,
            ));
            ok = false;
        }
    }
    if let Some(ind) = first.attr("indirizzoTelematico") {
        if !indirizzo_valido(ind) {
            p.push(grave(
                Codice::LISTA_TRASMISSIONI,
                format!("{pos}/indirizzoTelematico"),
                false,
            ));
            ok = false;
        }
    }
    ok.then(|| Parte {
        tipo: first.attr("tipo").unwrap_or("").trim().to_string(),
        nome: first.value().to_string(),
        indirizzo: first.attr("indirizzoTelematico").map(str::to_string),
    })
}

fn trasmissioni(lt: &Element, p: &mut Vec<Problema>) -> Vec<Trasmissione> {
    let base = "ListaTrasmissioni/Trasmissione";
    let list = children(lt, "Trasmissione");
    if list.is_empty() {
        p.push(grave(Codice::LISTA_TRASMISSIONI, base, false));
    }
    let mut out = Vec::new();
    for tr in list {
        let origine = parte_trasmissione(tr, "Origine", p);
        let destinazione = parte_trasmissione(tr, "Destinazione", p);
        let o = one(
            tr,
            "OraRegistrazione",
            Codice::LISTA_TRASMISSIONI,
            &format!("{base}/OraRegistrazione"),
            p,
        )
        .and_then(|o| {
            ora(
                o,
                &format!("{base}/OraRegistrazione"),
                Codice::LISTA_TRASMISSIONI,
                false,
                p,
            )
        });
        if let (Some(origine), Some(destinazione), Some(ora)) = (origine, destinazione, o) {
            out.push(Trasmissione {
                origine,
                destinazione,
                ora,
            });
        }
    }
    out
}

/// A received ListaEccezioni: its problems are diagnostics of the sender's error busta.
fn eccezioni(le: &Element, d: &mut Vec<Problema>) -> Vec<Eccezione> {
    let mut out = Vec::new();
    let list = children(le, "Eccezione");
    // Busta.xsd wants at least one: an empty list is a missing element, not "no eccezioni"
    // (it would still mark the busta as an error busta, and is lost when written again).
    if list.is_empty() {
        d.push(grave(
            Codice::FORMATO_INTESTAZIONE,
            "ListaEccezioni/Eccezione",
            true,
        ));
    }
    for e in list {
        let attrs = (
            e.attr("contestoCodifica"),
            e.attr("codiceEccezione"),
            e.attr("rilevanza"),
            e.attr("posizione"),
        );
        let (Some(contesto), Some(codice), Some(rilevanza), Some(posizione)) = attrs else {
            d.push(grave(
                Codice::FORMATO_INTESTAZIONE,
                "ListaEccezioni/Eccezione",
                true,
            ));
            continue;
        };
        match (
            Codice::parse(codice.trim()),
            Rilevanza::parse(rilevanza.trim()),
        ) {
            (Some(codice), Some(rilevanza)) => out.push(Eccezione {
                codice,
                rilevanza,
                posizione: posizione.to_string(),
                contesto: contesto.to_string(),
            }),
            _ => d.push(grave(
                Codice::FORMATO_INTESTAZIONE,
                "ListaEccezioni/Eccezione",
                false,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::Envelope;
    use crate::xml::Limits;

    fn msg(intestazione_messaggio: &str, rest: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><e:Intestazione xmlns:e="{NS_BUSTA}" s:actor="{ACTOR}" s:mustUnderstand="1"><e:IntestazioneMessaggio>{intestazione_messaggio}</e:IntestazioneMessaggio>{rest}</e:Intestazione></s:Header><s:Body/></s:Envelope>"#
        )
    }

    const PARTI: &str = r#"<e:Mittente><e:IdentificativoParte tipo="SPC">EMILIA</e:IdentificativoParte></e:Mittente><e:Destinatario><e:IdentificativoParte tipo="SPC">MinisteroLavoro</e:IdentificativoParte></e:Destinatario>"#;
    const MESSAGGIO: &str = r#"<e:Messaggio><e:Identificatore>EMILIA_EMILIASPCoopIT_0000001_2024-05-02_10:15</e:Identificatore><e:OraRegistrazione tempo="EGOV_IT_SPC">2024-05-02T10:15:03.120</e:OraRegistrazione></e:Messaggio>"#;

    fn read(m: &str) -> (Busta, Vec<(Codice, String, bool)>) {
        let env = Envelope::parse(m.as_bytes(), Limits::default()).unwrap();
        match leggi(&env.header_blocks) {
            Lettura::Trovata(t) => (
                t.busta,
                t.problemi
                    .into_iter()
                    .map(|p| (p.eccezione.codice, p.eccezione.posizione, p.strutturale))
                    .collect(),
            ),
            Lettura::Assente => panic!("no busta"),
        }
    }

    #[test]
    fn reads_a_valid_busta() {
        let im = format!(
            r#"{PARTI}<e:ProfiloCollaborazione>EGOV_IT_ServizioSincrono</e:ProfiloCollaborazione><e:Servizio tipo="SPC">ClicLavoro</e:Servizio><e:Azione>InvioCandidatura</e:Azione>{MESSAGGIO}<e:ProfiloTrasmissione inoltro="EGOV_IT_ALPIUUNAVOLTA"/>"#
        );
        let (b, p) = read(&msg(&im, ""));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(b.mittente, Some(Parte::new("SPC", "EMILIA")));
        assert_eq!(b.profilo, Some(Profilo::Sincrono));
        assert_eq!(b.azione.as_deref(), Some("InvioCandidatura"));
        assert_eq!(b.inoltro, Some(Inoltro::AlPiuUnaVolta));
        assert_eq!(b.conferma_ricezione, Some(false));
        assert_eq!(b.ora_registrazione.unwrap().tempo, Tempo::Spc);
    }

    #[test]
    fn must_understand_is_one_or_true_as_in_saaj() {
        let im = format!("{PARTI}{MESSAGGIO}");
        for (v, ok) in [
            ("1", true),
            ("true", true),
            ("TRUE", true),
            ("0", false),
            ("false", false),
            ("yes", false),
        ] {
            let m = msg(&im, "").replace(
                r#"s:mustUnderstand="1""#,
                &format!(r#"s:mustUnderstand="{v}""#),
            );
            let (_, p) = read(&m);
            let flagged = p
                .iter()
                .any(|(_, pos, _)| pos == "Intestazione/mustUnderstand");
            assert_eq!(flagged, !ok, "mustUnderstand={v}: {p:?}");
        }
    }

    #[test]
    fn stages_stop_at_the_first_that_fails() {
        // A missing Mittente (pre-check) hides the bad ProfiloCollaborazione (syntax).
        let im = format!(
            r#"<e:Destinatario><e:IdentificativoParte tipo="SPC">X</e:IdentificativoParte></e:Destinatario><e:ProfiloCollaborazione>Boh</e:ProfiloCollaborazione>{MESSAGGIO}"#
        );
        let (_, p) = read(&msg(&im, ""));
        assert_eq!(p, vec![(Codice::MITTENTE, "Mittente".to_string(), true)]);
    }

    #[test]
    fn doubles_are_structural_and_values_are_not() {
        let im = format!(
            r#"{PARTI}<e:Azione>a</e:Azione><e:Azione>b</e:Azione>{MESSAGGIO}<e:Sequenza numeroProgressivo="x"/>"#
        );
        let (_, p) = read(&msg(&im, ""));
        assert!(p.contains(&(Codice::AZIONE, "Azione".into(), true)));
        assert!(p.contains(&(Codice::SEQUENZA, "Sequenza/numeroProgressivo".into(), false)));
    }

    #[test]
    fn any_prefix_or_default_namespace_reads_the_same() {
        // The busta in the default namespace, SOAP under another prefix, redeclared inside.
        let m = format!(
            r#"<x:Envelope xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"><x:Header><Intestazione xmlns="{NS_BUSTA}" x:actor="{ACTOR}" x:mustUnderstand="1"><IntestazioneMessaggio><Mittente><IdentificativoParte tipo="SPC">EMILIA</IdentificativoParte></Mittente><b:Destinatario xmlns:b="{NS_BUSTA}"><b:IdentificativoParte tipo="SPC">MinisteroLavoro</b:IdentificativoParte></b:Destinatario><Messaggio><Identificatore>EMILIA_EMILIASPCoopIT_0000001_2024-05-02_10:15</Identificatore><OraRegistrazione tempo="EGOV_IT_SPC">2024-05-02T10:15:03</OraRegistrazione></Messaggio></IntestazioneMessaggio></Intestazione></x:Header><x:Body/></x:Envelope>"#
        );
        let (b, p) = read(&m);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(b.destinatario, Some(Parte::new("SPC", "MinisteroLavoro")));
        // The same local names in a foreign namespace are not the busta's.
        let foreign = m.replace(
            "<b:Destinatario xmlns:b=\"",
            "<b:Destinatario xmlns:b=\"urn:other",
        );
        let (_, p) = read(&foreign);
        assert!(
            p.iter()
                .any(|(c, pos, s)| *c == Codice::DESTINATARIO && pos == "Destinatario" && *s),
            "{p:?}"
        );
    }

    #[test]
    fn an_empty_lista_eccezioni_is_a_structural_diagnostic() {
        // Found by fuzzing (fuzz/regressions/busta): it was read as `Some([])`, an error busta
        // with nothing wrong said, and lost when the busta was written again.
        for lista in [
            "<e:ListaEccezioni/>",
            "<e:ListaEccezioni><e:Altro/></e:ListaEccezioni>",
        ] {
            let m = msg(&format!("{PARTI}{MESSAGGIO}"), lista);
            let env = Envelope::parse(m.as_bytes(), Limits::default()).unwrap();
            let Lettura::Trovata(t) = leggi(&env.header_blocks) else {
                panic!("no busta");
            };
            assert!(t.problemi.is_empty(), "{:?}", t.problemi);
            assert_eq!(t.busta.eccezioni, Some(vec![]));
            assert_eq!(
                t.diagnostica,
                vec![grave(
                    Codice::FORMATO_INTESTAZIONE,
                    "ListaEccezioni/Eccezione",
                    true
                )],
                "{lista}"
            );
        }
    }

    #[test]
    fn no_header_is_absent() {
        let m = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><x:y xmlns:x="urn:x"/></s:Header><s:Body/></s:Envelope>"#;
        let env = Envelope::parse(m.as_bytes(), Limits::default()).unwrap();
        assert_eq!(leggi(&env.header_blocks), Lettura::Assente);
    }
}
