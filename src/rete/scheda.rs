//! The read API's query (`GET /api/candidature`, `GET /api/vacancies`): which schede (the
//! published views of [`crate::modulo::scheda`]) a request admits, in what order, which page of
//! them, and the JSON answer. `docs/openapi.json` describes the answer; a test keeps the two in
//! step.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::{Map, Value};

use crate::modulo::ricerca::{scegli, Criteri, Cursore, Pagina, Scelta};
use crate::modulo::scheda::Scheda;

/// A query the read API refuses: the message names the parameter, in Italian and English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl From<String> for QueryError {
    fn from(s: String) -> QueryError {
        QueryError(s)
    }
}

/// Query of the read API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filtro {
    pub criteri: Criteri,
    /// 1-based; 0 (as in `Filtro::default()`) means 1.
    pub pagina: usize,
    /// At most 100; 0 (as in `Filtro::default()`) means 20.
    pub per_pagina: usize,
    /// Keyset paging: the page after this cursor (the `successiva` of the previous answer),
    /// instead of a page number.
    pub dopo: Option<Cursore>,
}

const PARAMETRI: &str =
    "professione, comune, provincia, regione, dal, al, q, pagina, per_pagina, dopo";
const PER_PAGINA: usize = 20;
const PER_PAGINA_MAX: usize = 100;

/// Decodes one component of a query string: `+` is a space, `%XX` a byte, the result UTF-8.
fn decodifica(s: &str, nome: &str) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Explicit hex digits: from_str_radix would also take a sign ("%+1").
                let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
                let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(QueryError(format!(
                        "parametro `{nome}`: codifica percentuale non valida / \
                         parameter `{nome}`: invalid percent-encoding"
                    )));
                };
                out.push((h * 16 + l) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        QueryError(format!(
            "parametro `{nome}`: UTF-8 non valido / parameter `{nome}`: invalid UTF-8"
        ))
    })
}

fn numero(nome: &str, v: &str, min: usize, max: usize) -> Result<usize, QueryError> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == usize::MAX => Err(QueryError(format!(
            "parametro `{nome}`: atteso un intero da {min} in su, non `{v}` / \
             parameter `{nome}`: expected an integer of at least {min}, not `{v}`"
        ))),
        _ => Err(QueryError(format!(
            "parametro `{nome}`: atteso un intero da {min} a {max}, non `{v}` / \
             parameter `{nome}`: expected an integer from {min} to {max}, not `{v}`"
        ))),
    }
}

impl Filtro {
    /// From a URL query string (`professione=2.1&regione=08&q=java&pagina=2`), percent- and
    /// plus-decoded. An empty value counts as absent (as an empty form field). Unknown or
    /// repeated parameters, bad values, pagina 0, per_pagina 0 or > 100 are errors naming the
    /// parameter, in Italian and English.
    pub fn da_query(query: Option<&str>) -> Result<Filtro, QueryError> {
        let mut f = Filtro {
            pagina: 1,
            per_pagina: PER_PAGINA,
            ..Filtro::default()
        };
        let mut visti: Vec<String> = Vec::new();
        let query = query.unwrap_or("");
        let query = query.strip_prefix('?').unwrap_or(query);
        for coppia in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = coppia.split_once('=').unwrap_or((coppia, ""));
            let k = decodifica(k, k)?;
            let v = decodifica(v, &k)?;
            let v = v.trim();
            if !PARAMETRI.split(", ").any(|p| p == k) {
                return Err(QueryError(format!(
                    "parametro sconosciuto `{k}` (ammessi: {PARAMETRI}) / \
                     unknown parameter `{k}` (allowed: {PARAMETRI})"
                )));
            }
            if visti.contains(&k) {
                return Err(QueryError(format!(
                    "parametro `{k}` ripetuto / parameter `{k}` given more than once"
                )));
            }
            visti.push(k.clone());
            if v.is_empty() {
                continue;
            }
            let data = |v: &str| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    format!(
                        "parametro `{k}`: data non valida `{v}` (atteso AAAA-MM-GG) / \
                         parameter `{k}`: invalid date `{v}` (expected YYYY-MM-DD)"
                    )
                })
            };
            match k.as_str() {
                "professione" => {
                    let p = v.trim_end_matches('.');
                    if p.is_empty()
                        || !p
                            .split('.')
                            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    {
                        return Err(QueryError(format!(
                            "parametro `professione`: atteso un codice ISTAT come `2.1.1`, \
                             non `{v}` / parameter `professione`: expected an ISTAT code \
                             such as `2.1.1`, not `{v}`"
                        )));
                    }
                    f.criteri.professione = Some(p.to_string());
                }
                "comune" => {
                    let b = v.as_bytes();
                    if b.len() != 4
                        || !b[0].is_ascii_alphabetic()
                        || !b[1..].iter().all(u8::is_ascii_digit)
                    {
                        return Err(QueryError(format!(
                            "parametro `comune`: atteso un codice Belfiore come `A944`, non \
                             `{v}` / parameter `comune`: expected a Belfiore code such as \
                             `A944`, not `{v}`"
                        )));
                    }
                    f.criteri.comune = Some(v.to_ascii_uppercase());
                }
                "provincia" => {
                    if v.len() != 2 || !v.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(QueryError(format!(
                            "parametro `provincia`: attesa una sigla come `BO`, non `{v}` / \
                             parameter `provincia`: expected a sigla such as `BO`, not `{v}`"
                        )));
                    }
                    f.criteri.provincia = Some(v.to_ascii_uppercase());
                }
                "regione" => {
                    if v.bytes().all(|b| b.is_ascii_digit()) {
                        let n = numero("regione", v, 1, 20)?;
                        f.criteri.regione = Some(format!("{n:02}"));
                    } else {
                        f.criteri.regione = Some(v.to_string());
                    }
                }
                "dal" => f.criteri.dal = Some(data(v)?),
                "al" => f.criteri.al = Some(data(v)?),
                "q" => f.criteri.q = Some(v.to_string()),
                "pagina" => f.pagina = numero("pagina", v, 1, usize::MAX)?,
                "dopo" => {
                    f.dopo = Some(Cursore::da_testo(v).ok_or_else(|| {
                        QueryError(format!(
                            "parametro `dopo`: atteso il valore `successiva` di una risposta, \
                             non `{v}` / parameter `dopo`: expected the `successiva` of an \
                             answer, not `{v}`"
                        ))
                    })?)
                }
                "per_pagina" => f.per_pagina = numero("per_pagina", v, 1, PER_PAGINA_MAX)?,
                _ => unreachable!("checked against PARAMETRI"),
            }
        }
        if f.dopo.is_some() && visti.iter().any(|k| k == "pagina") {
            return Err(QueryError(
                "parametri `pagina` e `dopo`: uno solo dei due / \
                 parameters `pagina` and `dopo`: one or the other"
                    .into(),
            ));
        }
        if let (Some(dal), Some(al)) = (f.criteri.dal, f.criteri.al) {
            if dal > al {
                return Err(QueryError(format!(
                    "parametri `dal` e `al`: {dal} è dopo {al} / \
                     parameters `dal` and `al`: {dal} is after {al}"
                )));
            }
        }
        Ok(f)
    }

    /// The page asked for.
    pub fn pagina(&self) -> Pagina {
        match &self.dopo {
            Some(c) => Pagina::Dopo(c.clone()),
            None => Pagina::Numero(self.pagina.max(1)),
        }
    }

    /// Moduli per page.
    pub fn misura(&self) -> usize {
        pagina_e_misura(self).1
    }
}

/// One stored modulo as the API sees it.
#[derive(Debug, Clone, Copy)]
pub struct Voce<'a> {
    pub scheda: &'a Scheda,
    /// First receipt and last update; the expiry date.
    pub inserita: DateTime<FixedOffset>,
    pub aggiornata: DateTime<FixedOffset>,
    pub scadenza: Option<NaiveDate>,
}

/// The JSON answer: {"totale": N (matches before paging), "pagina": p (unless paged by
/// cursor), "per_pagina": k, "successiva": cursor (when more follow), "risultati": [ {"codice",
/// "tipo", "inserita", "aggiornata", "scadenza", ...the fields of `pubblico`..., "contatto":
/// {...} only when `registrato`} ]}, newest `aggiornata` first.
pub fn risposta<'a>(voci: impl Iterator<Item = Voce<'a>>, f: &Filtro, registrato: bool) -> Value {
    let s = seleziona(voci, f);
    pagina(&s.pagina, s.totale, s.successivo.as_ref(), f, registrato)
}

/// Whether a query admits a modulo (dates are the day of the update, local to its offset).
pub fn ammessa(v: &Voce<'_>, f: &Filtro) -> bool {
    f.criteri.ammette(v.scheda, v.aggiornata.date_naive())
}

/// The moduli a query admits, counted, and the page of them it asks for (newest first, ties
/// by code, for stable pages).
pub fn seleziona<'a>(voci: impl Iterator<Item = Voce<'a>>, f: &Filtro) -> Scelta<Voce<'a>> {
    let ammesse: Vec<Voce<'a>> = voci.filter(|v| ammessa(v, f)).collect();
    scegli(
        ammesse,
        |v| (v.aggiornata.timestamp_millis(), v.scheda.codice.as_str()),
        &f.pagina(),
        f.misura(),
    )
}

fn pagina_e_misura(f: &Filtro) -> (usize, usize) {
    let per_pagina = match f.per_pagina {
        0 => PER_PAGINA,
        n => n.min(PER_PAGINA_MAX),
    };
    (f.pagina.max(1), per_pagina)
}

/// The JSON answer for one page of moduli (whole schede) out of `totale` admitted;
/// `successiva` is the cursor of the next page, when more follow.
pub fn pagina(
    voci: &[Voce<'_>],
    totale: usize,
    successiva: Option<&Cursore>,
    f: &Filtro,
    registrato: bool,
) -> Value {
    let (pagina, per_pagina) = pagina_e_misura(f);
    let risultati: Vec<Value> = voci.iter().map(|v| voce_json(v, registrato)).collect();
    let mut o = Map::new();
    o.insert("totale".into(), totale.into());
    if f.dopo.is_none() {
        o.insert("pagina".into(), pagina.into());
    }
    o.insert("per_pagina".into(), per_pagina.into());
    if let Some(c) = successiva {
        o.insert("successiva".into(), c.testo().into());
    }
    o.insert("risultati".into(), risultati.into());
    Value::Object(o)
}

fn voce_json(v: &Voce<'_>, registrato: bool) -> Value {
    let mut o = Map::new();
    o.insert("codice".into(), v.scheda.codice.clone().into());
    o.insert("tipo".into(), v.scheda.tipo.clone().into());
    let ora = |t: &DateTime<FixedOffset>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    o.insert("inserita".into(), ora(&v.inserita).into());
    o.insert("aggiornata".into(), ora(&v.aggiornata).into());
    if let Some(s) = v.scadenza {
        o.insert("scadenza".into(), s.to_string().into());
    }
    if let Some(p) = &v.scheda.pubblico {
        for (k, x) in p.oggetto() {
            // The envelope's own fields win over a (never expected) clash.
            o.entry(k).or_insert(x);
        }
    }
    if registrato {
        if let Some(c) = &v.scheda.contatto {
            let c = c.oggetto();
            if !c.is_empty() {
                o.insert("contatto".into(), Value::Object(c));
            }
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::modulo::model::{candidatura::Candidatura, vacancy::Vacancy};
    use crate::modulo::scheda::{candidatura, vacancy};
    use crate::modulo::Modulo;
    use serde::Serialize;

    pub(super) fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    const OPENAPI: &str = include_str!("../../docs/openapi.json");

    fn modulo(nome: &str) -> Modulo {
        let path = format!("{}/examples/moduli/{nome}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let root = crate::xml::parse_document(&bytes, crate::xml::Limits::default()).unwrap();
        Modulo::leggi(&root).unwrap()
    }
    fn cand(nome: &str) -> Candidatura {
        match modulo(nome) {
            Modulo::Candidatura(c) => c,
            m => panic!("{nome}: {:?}", m.tipo()),
        }
    }
    fn vac(nome: &str) -> Vacancy {
        match modulo(nome) {
            Modulo::Vacancy(v) => v,
            m => panic!("{nome}: {:?}", m.tipo()),
        }
    }
    const CANDIDATURE: [&str; 2] = ["candidatura-2.0.xml", "candidatura-rev038.xml"];
    const VACANCIES: [&str; 3] = [
        "vacancy-2.0.xml",
        "vacancy-rev038.xml",
        "vacancy-rev064.xml",
    ];

    /// The answer for one scheda.
    fn risposta_una(s: &Scheda, registrato: bool) -> Value {
        let v = Voce {
            scheda: s,
            inserita: t("2026-11-20T10:00:00+01:00"),
            aggiornata: t("2026-11-21T10:00:00+01:00"),
            scadenza: NaiveDate::from_ymd_opt(2027, 1, 4),
        };
        risposta([v].into_iter(), &Filtro::default(), registrato)
    }
    /// The answer for one scheda, as a string.
    fn una(s: &Scheda, registrato: bool) -> String {
        risposta_una(s, registrato).to_string()
    }
    /// The answer for one scheda to a registered user, as a string, and the contact in it,
    /// made `tramite` as given.
    fn registrata(s: &Scheda, tramite: &str) -> (String, Value) {
        let r = risposta_una(s, true);
        let ct = r["risultati"][0]["contatto"].clone();
        assert_eq!(ct["tramite"], tramite);
        (r.to_string(), ct)
    }
    fn chiavi(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    out.insert(k.clone());
                    chiavi(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| chiavi(x, out)),
            _ => {}
        }
    }
    fn assenti(testo: &str, valori: &[Option<&str>], dove: &str) {
        let basso = testo.to_lowercase();
        for v in valori.iter().flatten() {
            let v = v.trim();
            assert!(
                v.len() >= 4,
                "{dove}: test value too short to search: {v:?}"
            );
            assert!(
                !basso.contains(&v.to_lowercase()),
                "{dove}: {v:?} published in {testo}"
            );
        }
    }
    fn personali_candidatura(c: &Candidatura) -> Vec<Option<&str>> {
        let a = &c.lavoratore.dati_anagrafici;
        let r = &c.lavoratore.recapiti;
        let mut v = vec![
            Some(a.codicefiscale.as_str()),
            Some(a.cognome.as_str()),
            Some(a.nome.as_str()),
            Some(a.datanascita.as_str()),
            Some(r.email.as_str()),
            r.indirizzo.as_deref(),
            r.telefono.as_deref(),
            r.cellulare.as_deref(),
            r.fax.as_deref(),
            c.lavoratore.domicilio.cap.as_deref(),
            c.dati_sistema.email.as_deref(),
        ];
        for e in &c.dati_curriculari.esperienze_lavorative {
            v.extend([e.nomedatore.as_deref(), e.indirizzodatore.as_deref()]);
        }
        v
    }
    fn personali_vacancy(x: &Vacancy) -> Vec<Option<&str>> {
        let a = &x.datore_lavoro.dati_anagrafici;
        let k = &x.datore_lavoro.dati_contatto;
        vec![
            a.codicefiscale.as_deref(),
            Some(a.denominazione.as_str()),
            a.web.as_deref(),
            k.indirizzo.as_deref(),
            k.cap.as_deref(),
            k.telefono.as_deref(),
            k.fax.as_deref(),
            Some(k.email.as_str()),
            x.dati_sistema.email.as_deref(),
        ]
    }
    /// Keys that must never reach an anonymous reader.
    const CHIAVI_PERSONALI: [&str; 15] = [
        "contatto",
        "percettore",
        "codice_fiscale",
        "cognome",
        "nome",
        "sesso",
        "data_nascita",
        "luogo_nascita",
        "cittadinanza",
        "indirizzo",
        "cap",
        "telefono",
        "email",
        "denominazione",
        "nomedatore",
    ];

    /// The anonymous answer for a scheda, checked: none of the `personali` values, no
    /// personal key and none of `altre_chiavi` in it.
    fn anonima(
        s: &Scheda,
        personali: &[Option<&str>],
        altre_chiavi: &[&str],
        nome: &str,
    ) -> String {
        let anon = una(s, false);
        assenti(&anon, personali, nome);
        let mut k = BTreeSet::new();
        chiavi(&serde_json::from_str(&anon).unwrap(), &mut k);
        for p in CHIAVI_PERSONALI.iter().chain(altre_chiavi) {
            assert!(!k.contains(*p), "{nome}: key {p} in {anon}");
        }
        anon
    }

    #[test]
    fn anonima_per_chi_non_e_registrato() {
        for nome in CANDIDATURE {
            let c = cand(nome);
            let s = candidatura(&c);
            assert!(!s.intermediato, "{nome}");
            let anon = anonima(&s, &personali_candidatura(&c), &["liste_speciali"], nome);
            // What is published is there: the profession and the domicile's comune.
            let d = &c.dati_curriculari.professione_desiderata_disponibilita[0];
            assert!(anon.contains(d.descrprofessione.as_str()), "{anon}");
            assert!(anon.contains(&format!(
                "\"comune\":\"{}\"",
                c.lavoratore.domicilio.idcomune
            )));

            let (reg, ct) = registrata(&s, "diretto");
            assert_eq!(ct["email"], c.lavoratore.recapiti.email.as_str());
            assert_eq!(
                ct["codice_fiscale"],
                c.lavoratore.dati_anagrafici.codicefiscale.as_str()
            );
            assert_eq!(ct["cognome"], c.lavoratore.dati_anagrafici.cognome.as_str());
            // Registration reveals contacts, never the employers of the work history.
            let datori: Vec<Option<&str>> = c
                .dati_curriculari
                .esperienze_lavorative
                .iter()
                .flat_map(|e| [e.nomedatore.as_deref(), e.indirizzodatore.as_deref()])
                .collect();
            assert!(
                datori.iter().flatten().count() > 0,
                "{nome}: no employer to test"
            );
            assenti(&reg, &datori, nome);
            assert!(!reg.to_lowercase().contains("percettore"), "{reg}");
        }
        for nome in VACANCIES {
            let x = vac(nome);
            let s = vacancy(&x);
            assert!(!s.intermediato, "{nome}");
            let anon = anonima(&s, &personali_vacancy(&x), &["ampiezza", "web"], nome);
            assert!(anon.contains(x.richiesta.profilo_richiesto.descrizionericerca.as_str()));
            assert!(anon.contains(x.datore_lavoro.dati_anagrafici.settore.as_str()));

            let (_, ct) = registrata(&s, "diretto");
            assert_eq!(ct["email"], x.datore_lavoro.dati_contatto.email.as_str());
            assert_eq!(
                ct["denominazione"],
                x.datore_lavoro.dati_anagrafici.denominazione.as_str()
            );
            assert_eq!(
                ct["codice_fiscale"].as_str(),
                x.datore_lavoro.dati_anagrafici.codicefiscale.as_deref()
            );
        }
    }

    #[test]
    fn percettore_mai_pubblicato() {
        let mut c = cand("candidatura-2.0.xml");
        c.dati_sistema.percettore = Some("SI".into());
        c.dati_curriculari.altre_info = Some(crate::modulo::model::candidatura::AltreInfo {
            listespeciali: Some("LISTA-SPECIALE-42".into()),
        });
        let s = candidatura(&c);
        for registrato in [false, true] {
            let out = una(&s, registrato);
            assert!(!out.to_lowercase().contains("percettore"), "{out}");
            assert!(!out.contains("LISTA-SPECIALE-42"), "{out}");
        }
        assert!(!s.testo.contains("lista-speciale"));
    }

    /// Has the example agency insert a modulo: a DatiSistema of either kind (whose
    /// intermediary code field is named differently in the two) gets the agency's data.
    macro_rules! intermedia {
        ($ds:expr, $codice:ident) => {{
            let ds = &mut $ds;
            ds.$codice = Some("AG0042".into());
            ds.codicefiscaleintermediario = Some("01234567890".into());
            ds.denominazioneintermediario = Some("Agenzia Esempio Lavoro Spa".into());
            ds.indirizzo = Some("Piazza Maggiore 1".into());
            ds.idcomune = Some("A944".into());
            ds.cap = Some("40124".into());
            ds.telefono = Some("0510000001".into());
            ds.fax = Some("0510000002".into());
            ds.email = Some(EMAIL_AGENZIA.into());
        }};
    }
    const EMAIL_AGENZIA: &str = "selezione@agenzia-esempio.example";

    /// The answer for a scheda the example agency inserted, to a registered user, checked: the
    /// contact is the agency's, with none of the worker's or employer's `personali` (the
    /// DatiSistema email is the agency's own here, so it is not one of them); and the contact
    /// in it. Anonymous readers do not even learn the agency.
    fn tramite_intermediario(
        s: &Scheda,
        mut personali: Vec<Option<&str>>,
        dove: &str,
    ) -> (String, Value) {
        assert!(s.intermediato, "{dove}");
        let (reg, ct) = registrata(s, "intermediario");
        assert_eq!(ct["email"], EMAIL_AGENZIA);
        personali.retain(|v| *v != Some(EMAIL_AGENZIA));
        assenti(&reg, &personali, dove);
        let anon = una(s, false);
        assenti(&anon, &[Some(EMAIL_AGENZIA), Some("Agenzia Esempio")], dove);
        (reg, ct)
    }

    #[test]
    fn intermediata_solo_tramite_intermediario() {
        let mut c = cand("candidatura-rev038.xml");
        intermedia!(c.dati_sistema, idintermediario);
        // The worker's own data stay hidden even from registered users.
        let s = candidatura(&c);
        let (reg, ct) = tramite_intermediario(&s, personali_candidatura(&c), "candidatura");
        assert_eq!(ct["denominazione"], "Agenzia Esempio Lavoro Spa");
        assert_eq!(ct["codice_intermediario"], "AG0042");
        assert_eq!(ct["comune_nome"], "Bologna");
        assert!(!reg.contains("tommaso.marinelli@example.it"));
        assert!(!reg.contains("3391122334"));

        let mut v = vac("vacancy-2.0.xml");
        intermedia!(v.dati_sistema, intermediario);
        let s = vacancy(&v);
        let (reg, ct) = tramite_intermediario(&s, personali_vacancy(&v), "vacancy");
        assert_eq!(ct["fax"], "0510000002");
        assert_eq!(ct["codice_offerta_intermediario"], "ZAN-2026-0007");
        assert!(!reg.contains("personale@officine-zanardi.example"));
        assert!(!reg.contains("OFFICINE ZANARDI"));
    }

    #[test]
    fn visibilita_no_non_pubblica_alcun_recapito() {
        let mut c = cand("candidatura-rev038.xml");
        intermedia!(c.dati_sistema, idintermediario);
        c.dati_sistema.visibilita = Some("NO".into());
        let s = candidatura(&c);
        let (reg, ct) = registrata(&s, "intermediario");
        // Only that contact goes through the intermediary: none of its data, nor the worker's.
        assert_eq!(ct, serde_json::json!({"tramite": "intermediario"}), "{reg}");
        assenti(&reg, &personali_candidatura(&c), "candidatura");
        assenti(&reg, &[Some(EMAIL_AGENZIA), Some("AG0042")], "candidatura");
        let mut v = vac("vacancy-2.0.xml");
        intermedia!(v.dati_sistema, intermediario);
        v.dati_sistema.visibilita = Some("no".into());
        let (reg, ct) = registrata(&vacancy(&v), "intermediario");
        // The intermediary's own reference of the offer stays (what a Messaggio names).
        assert_eq!(
            ct,
            serde_json::json!({"tramite": "intermediario", "codice_offerta_intermediario": "ZAN-2026-0007"}),
            "{reg}"
        );
        // SI (or absent) shows the intermediary's, as before.
        c.dati_sistema.visibilita = Some("SI".into());
        let (_, ct) = registrata(&candidatura(&c), "intermediario");
        assert_eq!(ct["email"], EMAIL_AGENZIA);
    }

    /// The four examples, each with its own update time.
    fn archivio() -> Vec<(Scheda, &'static str)> {
        vec![
            // Bologna (BO, 08), 3.3.1.2.1 Contabile.
            (
                candidatura(&cand("candidatura-2.0.xml")),
                "2026-11-20T09:00:00+01:00",
            ),
            // Como (CO, 03), 6.5.1.1.1.0 Panettiere.
            (
                candidatura(&cand("candidatura-rev038.xml")),
                "2026-11-26T23:45:00Z",
            ),
            // Brescia (BS, 03), 6.2.3.1.1 Tornitore.
            (
                vacancy(&vac("vacancy-2.0.xml")),
                "2026-11-18T12:00:00+01:00",
            ),
            // Firenze (FI, 09), 6.5.1.1.1.0 Panettiere; 23:30Z on the 26th, before Como's.
            (
                vacancy(&vac("vacancy-rev038.xml")),
                "2026-11-27T00:30:00+01:00",
            ),
        ]
    }
    /// The archive as the API sees it, inserted when last updated.
    fn voci<'a>(a: &'a [(Scheda, &'static str)]) -> impl Iterator<Item = Voce<'a>> {
        a.iter().map(|(s, t)| Voce {
            scheda: s,
            inserita: super::tests::t(t),
            aggiornata: super::tests::t(t),
            scadenza: None,
        })
    }
    fn codici(a: &[(Scheda, &'static str)], query: &str) -> (u64, Vec<String>) {
        let f = Filtro::da_query(Some(query)).unwrap();
        let r = risposta(voci(a), &f, false);
        let n = r["risultati"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["codice"].as_str().unwrap().to_string())
            .collect();
        (r["totale"].as_u64().unwrap(), n)
    }
    const BO: &str = "SILBO26200000000000000042";
    const CO: &str = "SILCO26200000000000000318";
    const BS: &str = "SILBS26100000000000000205";
    const FI: &str = "2026112510000000000004711";

    #[test]
    fn filtri() {
        let a = archivio();
        let c = |q| codici(&a, q).1;
        // Newest first, comparing instants across offsets.
        assert_eq!(c(""), [CO, FI, BO, BS]);
        assert_eq!(c("professione=6.5"), [CO, FI]);
        assert_eq!(c("professione=6.5.1.1.1.0"), [CO, FI]);
        assert_eq!(c("professione=6.2.3.1.1."), [BS]);
        assert_eq!(c("professione=3.3"), [BO]);
        assert!(c("professione=6.5.1.1.1.00").is_empty());
        assert!(c("professione=6.5.11").is_empty());
        assert_eq!(c("regione=03"), [CO, BS]);
        assert_eq!(c("regione=3"), [CO, BS]);
        assert_eq!(c("regione=lombardia"), [CO, BS]);
        assert_eq!(c("regione=Emilia-Romagna"), [BO]);
        assert_eq!(c("regione=EMILIA+ROMAGNA"), [BO]);
        assert_eq!(c("regione=toscana&professione=6.5"), [FI]);
        assert_eq!(c("provincia=bs"), [BS]);
        assert_eq!(c("comune=d612"), [FI]);
        assert_eq!(c("dal=2026-11-20&al=2026-11-26"), [CO, BO]);
        // The day as written: 00:30+01:00 on the 27th is on the 27th.
        assert_eq!(c("dal=2026-11-27"), [FI]);
        assert_eq!(c("al=2026-11-18"), [BS]);
        assert_eq!(c("q=panettiere"), [CO, FI]);
        assert_eq!(c("q=Panettiere+LIEVITO"), [FI]);
        assert_eq!(c("q=tornitori%20fanuc"), [BS]);
        assert_eq!(c("q=bologna"), [BO]);
        assert!(c("q=panettiere+fanuc").is_empty());
        // Personal data are not searchable.
        assert!(c("q=bianchi").is_empty());
        assert!(c("q=zanardi").is_empty());

        // Segments, not characters: 2.1.1 is not a prefix of 2.1.10.
        let mut s = a[0].0.clone();
        s.professioni = vec!["2.1.10.1".into()];
        let d = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let f = |q| Filtro::da_query(Some(q)).unwrap();
        assert!(!f("professione=2.1.1").criteri.ammette(&s, d));
        assert!(f("professione=2.1").criteri.ammette(&s, d));
        assert!(f("professione=2.1.10").criteri.ammette(&s, d));
    }

    #[test]
    fn paginazione() {
        let a = archivio();
        assert_eq!(
            codici(&a, "per_pagina=1&pagina=2"),
            (4, vec![FI.to_string()])
        );
        assert_eq!(
            codici(&a, "per_pagina=3&pagina=2"),
            (4, vec![BS.to_string()])
        );
        assert_eq!(codici(&a, "per_pagina=3&pagina=3"), (4, vec![]));
        assert_eq!(
            codici(&a, "regione=03&per_pagina=1"),
            (2, vec![CO.to_string()])
        );
        // Filtro::default() pages like the query defaults.
        let r = risposta(voci(&a), &Filtro::default(), false);
        assert_eq!(
            (r["pagina"].as_u64(), r["per_pagina"].as_u64()),
            (Some(1), Some(20))
        );
        assert_eq!(r["risultati"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn paginazione_per_cursore() {
        let a = archivio();
        // Following `successiva` gives the pages by number, in order, and then stops.
        let mut query = "per_pagina=1".to_string();
        let mut visti = Vec::new();
        for numero in 1.. {
            let r = risposta(voci(&a), &Filtro::da_query(Some(&query)).unwrap(), false);
            let per_numero = risposta(
                voci(&a),
                &Filtro::da_query(Some(&format!("per_pagina=1&pagina={numero}"))).unwrap(),
                false,
            );
            assert_eq!(r["risultati"], per_numero["risultati"], "page {numero}");
            assert_eq!(r["totale"], 4);
            visti.extend(r["risultati"].as_array().unwrap().iter().cloned());
            match r["successiva"].as_str() {
                Some(c) => query = format!("per_pagina=1&dopo={c}"),
                None => break,
            }
        }
        assert_eq!(visti.len(), 4);
        // Paged by cursor, the answer has no page number.
        assert!(r_senza_pagina(&a));
        assert!(Filtro::da_query(Some("dopo=xyz")).is_err());
        assert!(Filtro::da_query(Some("pagina=2&dopo=MTA6QQ")).is_err());
    }

    fn r_senza_pagina(a: &[(Scheda, &'static str)]) -> bool {
        let r = risposta(
            voci(a),
            &Filtro::da_query(Some("dopo=MTA6QQ")).unwrap(),
            false,
        );
        r.get("pagina").is_none() && r["risultati"].as_array().is_some_and(|v| v.is_empty())
    }

    #[test]
    fn query() {
        let f = Filtro::da_query(None).unwrap();
        assert_eq!((f.pagina, f.per_pagina), (1, 20));
        assert_eq!(f, Filtro::da_query(Some("")).unwrap());
        let f = Filtro::da_query(Some("q=sviluppatore%20java")).unwrap();
        assert_eq!(f.criteri.q.as_deref(), Some("sviluppatore java"));
        let f = Filtro::da_query(Some("?q=a+b&regione=Emilia%2DRomagna&per_pagina=100")).unwrap();
        assert_eq!(f.criteri.q.as_deref(), Some("a b"));
        assert_eq!(f.criteri.regione.as_deref(), Some("Emilia-Romagna"));
        assert_eq!(f.per_pagina, 100);
        let f =
            Filtro::da_query(Some("q=caff%C3%A8&dal=2026-11-01&al=2026-11-30&pagina=3")).unwrap();
        assert_eq!(f.criteri.q.as_deref(), Some("caffè"));
        assert_eq!(f.criteri.dal, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(f.criteri.al, NaiveDate::from_ymd_opt(2026, 11, 30));
        assert_eq!(f.pagina, 3);
        // An empty field is an absent one.
        assert_eq!(
            Filtro::da_query(Some("q=&comune=")).unwrap().criteri.q,
            None
        );

        let errore = |q: &str, parola: &str| {
            let e = Filtro::da_query(Some(q)).unwrap_err();
            assert!(e.0.contains(parola), "{q}: {e}");
        };
        errore("foo=1", "`foo`");
        errore("foo=1", "unknown parameter");
        errore("dal=2026-13-01", "`dal`");
        errore("dal=2026-13-01", "2026-13-01");
        errore("al=ieri", "`al`");
        errore("dal=2026-12-01&al=2026-11-01", "`dal`");
        errore("per_pagina=0", "`per_pagina`");
        errore("per_pagina=101", "`per_pagina`");
        errore("per_pagina=dieci", "`per_pagina`");
        errore("pagina=0", "`pagina`");
        errore("regione=21", "`regione`");
        errore("professione=sviluppatore", "`professione`");
        errore("comune=Bologna", "`comune`");
        errore("provincia=BOL", "`provincia`");
        errore("q=%zz", "`q`");
        errore("q=%+1", "`q`");
        errore("q=%FF", "`q`");
        errore("q=a&q=b", "`q`");
    }

    // ---- docs/openapi.json against what the code emits ----

    fn risolvi<'a>(doc: &'a Value, s: &'a Value) -> (&'a Value, Option<&'a str>) {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let nome = r.strip_prefix("#/components/schemas/").unwrap();
                let t = &doc["components"]["schemas"][nome];
                assert!(t.is_object(), "dangling {r}");
                (t, Some(nome))
            }
            None => (s, None),
        }
    }

    /// Checks a value against a schema; records the property paths it used, each path rooted
    /// at the named schema it is in ("Contatto.email"), so shared schemas add up across kinds.
    fn verifica(doc: &Value, schema: &Value, v: &Value, path: &str, visti: &mut BTreeSet<String>) {
        let (s, nome) = risolvi(doc, schema);
        let path = nome.map_or_else(|| path.to_string(), str::to_string);
        let tipo = s["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no type"));
        match v {
            Value::Object(o) => {
                assert_eq!(tipo, "object", "{path}");
                assert_eq!(s["additionalProperties"], false, "{path}");
                let props = s["properties"].as_object().unwrap();
                for (k, x) in o {
                    let p = format!("{path}.{k}");
                    let ps = props
                        .get(k)
                        .unwrap_or_else(|| panic!("{p} emitted but not in docs/openapi.json"));
                    visti.insert(p.clone());
                    verifica(doc, ps, x, &p, visti);
                }
                for r in s["required"].as_array().into_iter().flatten() {
                    assert!(o.contains_key(r.as_str().unwrap()), "{path}: missing {r}");
                }
            }
            Value::Array(a) => {
                assert_eq!(tipo, "array", "{path}");
                for x in a {
                    verifica(doc, &s["items"], x, &format!("{path}[]"), visti);
                }
            }
            Value::String(x) => {
                assert_eq!(tipo, "string", "{path}");
                if let Some(e) = s["enum"].as_array() {
                    assert!(e.contains(v), "{path}: {x} not in enum");
                }
            }
            Value::Bool(_) => assert_eq!(tipo, "boolean", "{path}"),
            Value::Number(_) => assert_eq!(tipo, "integer", "{path}"),
            Value::Null => panic!("{path}: null emitted"),
        }
    }

    /// Every property path declared under a schema, named as `verifica` names them.
    fn dichiarati(doc: &Value, schema: &Value, path: &str, out: &mut BTreeSet<String>) {
        let (s, nome) = risolvi(doc, schema);
        let path = nome.map_or_else(|| path.to_string(), str::to_string);
        if let Some(props) = s["properties"].as_object() {
            for (k, ps) in props {
                let p = format!("{path}.{k}");
                if out.insert(p.clone()) {
                    dichiarati(doc, ps, &p, out);
                }
            }
        }
        if s.get("items").is_some() {
            dichiarati(doc, &s["items"], &format!("{path}[]"), out);
        }
    }

    /// Fills every absent or empty leaf with "SI" (which is also what SI/NO fields need), so
    /// that every published field shows up.
    fn riempi(v: &mut Value) {
        match v {
            Value::Null => *v = Value::String("SI".into()),
            Value::String(s) if s.is_empty() => *s = "SI".into(),
            Value::Array(a) if a.is_empty() => a.push(Value::String("SI".into())),
            Value::Array(a) => a.iter_mut().for_each(riempi),
            Value::Object(o) => o.values_mut().for_each(riempi),
            _ => {}
        }
    }
    fn piena<T: Serialize + serde::de::DeserializeOwned>(x: &T) -> T {
        let mut v = serde_json::to_value(x).unwrap();
        riempi(&mut v);
        serde_json::from_value(v).unwrap()
    }
    /// The schede of a modulo of either kind (whose intermediary code field is named
    /// differently in the two) filled to the brim: intermediated, with the intermediary's
    /// comune a known one, and direct.
    macro_rules! piene {
        ($x:expr, $scheda:ident, $codice:ident) => {{
            let mut x = piena(&$x);
            x.dati_sistema.idcomune = Some("A944".into());
            let intermediata = $scheda(&x);
            x.dati_sistema.$codice = None;
            x.dati_sistema.codicefiscaleintermediario = None;
            x.dati_sistema.denominazioneintermediario = None;
            let diretta = $scheda(&x);
            assert!(!diretta.intermediato);
            [intermediata, diretta]
        }};
    }

    /// Every kind of item the code emits: the examples, and each kind filled to the brim,
    /// direct and intermediated.
    fn tutte_le_schede() -> Vec<Scheda> {
        use crate::modulo::model::candidatura::{AltreInfo, ConoscenzeInformatiche};
        let mut out = Vec::new();
        for nome in CANDIDATURE {
            let mut c = cand(nome);
            out.push(candidatura(&c));
            c.dati_curriculari.conoscenze_informatiche = Some(ConoscenzeInformatiche::default());
            c.dati_curriculari.altre_info = Some(AltreInfo::default());
            let dc = &mut c.dati_curriculari;
            dc.abilitazioni_patenti.get_or_insert_with(Default::default);
            // One of each repeated group, so that the fill reaches their fields.
            if dc.formazione.is_empty() {
                dc.formazione.push(Default::default());
            }
            if dc.lingue.is_empty() {
                dc.lingue.push(Default::default());
            }
            out.extend(piene!(c, candidatura, idintermediario));
        }
        for nome in VACANCIES {
            let mut v = vac(nome);
            out.push(vacancy(&v));
            // Rev.064's section, so that its field is filled too (null would not be).
            v.altre_informazioni.get_or_insert_with(Default::default);
            let isf = &mut v.richiesta.istruzione_formazione;
            if isf.lingua.is_empty() {
                isf.lingua.push(Default::default());
            }
            out.extend(piene!(v, vacancy, intermediario));
        }
        out
    }

    #[test]
    fn openapi_allineato_al_codice() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is not JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        for p in ["/api/candidature", "/api/vacancies"] {
            let op = &doc["paths"][p]["get"];
            assert!(op["responses"]["400"].is_object(), "{p}: no 400");
            let nomi: BTreeSet<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    x["$ref"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let attesi: BTreeSet<String> = PARAMETRI.split(", ").map(String::from).collect();
            assert_eq!(nomi, attesi, "{p}: parameters");
            for n in &nomi {
                assert_eq!(doc["components"]["parameters"][n]["name"], n.as_str());
            }
        }

        let schede = tutte_le_schede();
        let mut visti = BTreeSet::new();
        for s in &schede {
            let r = risposta_una(s, true);
            let pagina = serde_json::json!({"$ref": "#/components/schemas/Pagina"});
            let mut senza = r.clone();
            senza["risultati"] = Value::Array(vec![]);
            verifica(&doc, &pagina, &senza, "", &mut visti);
            let item = match s.tipo.as_str() {
                "candidatura" => "Candidatura",
                _ => "Vacancy",
            };
            let schema = serde_json::json!({"$ref": format!("#/components/schemas/{item}")});
            verifica(&doc, &schema, &r["risultati"][0], item, &mut visti);
        }
        // A page that more follow: with `successiva`; and the next one, by cursor.
        let voci: Vec<Voce<'_>> = schede
            .iter()
            .map(|s| Voce {
                scheda: s,
                inserita: t("2026-11-20T10:00:00+01:00"),
                aggiornata: t("2026-11-21T10:00:00+01:00"),
                scadenza: None,
            })
            .collect();
        let pagina = serde_json::json!({"$ref": "#/components/schemas/Pagina"});
        let mut prima = risposta(
            voci.iter().copied(),
            &Filtro::da_query(Some("per_pagina=1")).unwrap(),
            false,
        );
        let dopo = prima["successiva"].as_str().unwrap().to_string();
        prima["risultati"] = Value::Array(vec![]);
        verifica(&doc, &pagina, &prima, "", &mut visti);
        let q = format!("per_pagina=1&dopo={dopo}");
        let mut seconda = risposta(
            voci.into_iter(),
            &Filtro::da_query(Some(&q)).unwrap(),
            false,
        );
        seconda["risultati"] = Value::Array(vec![]);
        verifica(&doc, &pagina, &seconda, "", &mut visti);
        // And the other way: nothing documented that the code no longer emits.
        let mut dich = BTreeSet::new();
        for n in ["Pagina", "Candidatura", "Vacancy"] {
            let s = serde_json::json!({"$ref": format!("#/components/schemas/{n}")});
            dichiarati(&doc, &s, n, &mut dich);
        }
        dich.remove("Pagina.risultati");
        dich.retain(|p| !p.starts_with("Pagina.risultati[]"));
        visti.insert("Pagina.risultati".into());
        let mai: Vec<_> = dich.difference(&visti).collect();
        assert!(mai.is_empty(), "documented but never emitted: {mai:?}");
    }
}
