//! The published view of a modulo (a scheda): what a node publishes of its active moduli through the read API (`GET /api/candidature`,
//! `GET /api/vacancies`), following document §4.4 "Gestione dei contatti":
//!
//! - everything is published anonymously: no anagrafica (name, codice fiscale, birth date and
//!   place, sex, citizenship, address) and no contact data;
//! - a registered user also sees how to make contact: the worker's or employer's own data when
//!   they inserted the modulo themselves, only the intermediary's when an intermediary did
//!   (the contact then goes "per il tramite dell'intermediario");
//! - the income-support flag `percettore` is never published, nor the special lists
//!   (`listespeciali`, e.g. the disabled workers' list) of a worker: both are sensitive data;
//! - a CV's work history leaves out the employers' names and addresses, which could point to
//!   the worker.
//!
//! A [`Scheda`] is computed once when a modulo is stored; `rete::scheda` filters, orders and
//! pages them for one request of the read API.

use rustc_hash::FxHashSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::model::{candidatura::Candidatura, vacancy::Vacancy, Testo};
use super::tabelle::tabelle;
use crate::xml::swar;

/// What a node publishes of one modulo, computed once when the modulo is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheda {
    pub codice: String,
    /// "candidatura" or "vacancy".
    pub tipo: String,
    /// The anonymous fields (a JSON object; none in a summary, which leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubblico: Option<Json>,
    /// Contact data for registered users (a JSON object with "tramite": "diretto"|"intermediario").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contatto: Option<Json>,
    pub intermediato: bool,
    /// ISTAT profession codes (desired professions / the requested profession), for filtering.
    pub professioni: Vec<String>,
    /// Where: the domicile's comune (candidatura) or the place of work (vacancy): Belfiore code,
    /// province sigla, ISTAT region code.
    pub comune: Option<String>,
    pub provincia: Option<String>,
    pub regione: Option<String>,
    /// Lower-case text searched by `q` (descriptions, profession labels; no personal data).
    pub testo: String,
}

/// Whether `visibilita` (§2.2, §2.3) hides an intermediary's contact data: NO, in any case.
pub fn contatti_nascosti(visibilita: Option<&str>) -> bool {
    pieno(visibilita).is_some_and(|v| v.eq_ignore_ascii_case("NO"))
}

/// A value worth publishing: trimmed, not empty.
fn pieno(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// A JSON object that leaves out empty values, so that absent and empty fields look the same.
/// Written as JSON as it is built, not as a tree of values: a 50 KB CV's scheda built as a
/// tree, serialized into the modulo's record and dropped took a fifth of the CPU of storing it
/// (docs/performance.md). Each key is written once (the builders below name each once).
#[derive(Default)]
struct Oggetto {
    /// The members so far, without the braces.
    json: String,
}

/// A string as JSON, escaped.
fn stringa(out: &mut String, s: &str) {
    if !da_escapare(s.as_bytes()) {
        // Most of a modulo's text: copied whole, where serde_json would look at each byte.
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // Writing a str as JSON cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Whether JSON needs any byte of `b` escaped (a control character, `"` or `\\`), looked at
/// eight bytes at a time.
fn da_escapare(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(x) = swar::parola(b, i) {
        if swar::sotto(x, 0x20) | swar::uguali(x, b'"') | swar::uguali(x, b'\\') != 0 {
            return true;
        }
        i += 8;
    }
    b[i..].iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

impl Oggetto {
    /// Starts the member `k` (a key of this file's: no character to escape).
    fn chiave(&mut self, k: &str) {
        if !self.json.is_empty() {
            self.json.push(',');
        }
        stringa(&mut self.json, k);
        self.json.push(':');
    }
    fn testo(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = pieno(v) {
            self.chiave(k);
            stringa(&mut self.json, v);
        }
        self
    }
    fn opt(&mut self, k: &str, v: &Option<Testo>) -> &mut Self {
        self.testo(k, v.as_deref())
    }
    fn lista(&mut self, k: &str, v: &[Testo]) -> &mut Self {
        let mut primo = true;
        for s in v.iter().filter_map(|s| pieno(Some(s))) {
            if primo {
                self.chiave(k);
                self.json.push('[');
                primo = false;
            } else {
                self.json.push(',');
            }
            stringa(&mut self.json, s);
        }
        if !primo {
            self.json.push(']');
        }
        self
    }
    /// SI/NO as a boolean; any other value is left out rather than guessed.
    fn si_no(&mut self, k: &str, v: &Option<Testo>) -> &mut Self {
        let b = match pieno(v.as_deref()) {
            Some("SI") => "true",
            Some("NO") => "false",
            _ => return self,
        };
        self.chiave(k);
        self.json.push_str(b);
        self
    }
    /// An object within, written by `f`; left out when empty.
    fn oggetto(&mut self, k: &str, f: impl FnOnce(&mut Oggetto)) -> &mut Self {
        let mut o = Oggetto::default();
        f(&mut o);
        if !o.json.is_empty() {
            self.chiave(k);
            o.dentro(&mut self.json);
        }
        self
    }
    /// An array of objects, one written by `f` for each item; the empty ones are left out,
    /// and the array when all are.
    fn oggetti<T>(&mut self, k: &str, v: &[T], f: impl Fn(&mut Oggetto, &T)) -> &mut Self {
        let mut primo = true;
        let mut o = Oggetto::default();
        for x in v {
            o.json.clear();
            f(&mut o, x);
            if o.json.is_empty() {
                continue;
            }
            if primo {
                self.chiave(k);
                self.json.push('[');
                primo = false;
            } else {
                self.json.push(',');
            }
            o.dentro(&mut self.json);
        }
        if !primo {
            self.json.push(']');
        }
        self
    }
    /// A comune by Belfiore code with its name, province and region from the ISTAT table; a
    /// code the table does not know (a foreign state, a suppressed comune) stays bare.
    fn luogo(&mut self, codice: Option<&str>) -> &mut Self {
        let Some(codice) = pieno(codice) else {
            return self;
        };
        self.testo("comune", Some(codice));
        if let Some(c) = tabelle().comune(codice) {
            self.testo("comune_nome", Some(&c.nome))
                .testo("provincia", Some(&c.provincia))
                .testo("regione", Some(&c.codice_regione))
                .testo("regione_nome", Some(&c.regione));
        }
        self
    }
    /// The object, braces and all, at the end of `out`.
    fn dentro(&self, out: &mut String) {
        out.push('{');
        out.push_str(&self.json);
        out.push('}');
    }
    /// The object, braces and all. Not checked again as JSON: only this file's punctuation and
    /// strings escaped as JSON were written (serde_json's check of a 50 KB CV's 30 KB cost
    /// more than 1.5 % of storing it).
    fn fine(self) -> Json {
        let mut out = String::with_capacity(self.json.len() + 2);
        self.dentro(&mut out);
        Json(out.into_boxed_str())
    }
}

/// A JSON object of a scheda, kept as its text: it is written once when the modulo is stored
/// and read only when the read API answers for it ([`Json::oggetto`]). Serialized as the JSON
/// it holds (checked then by serde_json); the sled store keeps it beside the modulo's JSON
/// instead, as text.
#[derive(Debug, Clone)]
pub struct Json(Box<str>);

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Borrowed, not copied: serde_json checks the text in place.
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        Ok(Json(Box::<RawValue>::deserialize(d)?.into()))
    }
}

impl Json {
    /// The object's members (none when it is not an object).
    pub fn oggetto(&self) -> Map<String, Value> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// The text.
    pub fn testo(&self) -> &str {
        &self.0
    }

    /// The object whose text a store kept ([`Json::testo`]), taken as it is.
    pub fn dal_testo(testo: &str) -> Json {
        Json(testo.into())
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Json {
        Json(v.to_string().into_boxed_str())
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.0 == other.0 || self.oggetto() == other.oggetto()
    }
}

/// The name of a place of birth or of a course: a comune or a foreign state.
fn nome_luogo(codice: Option<&str>) -> Option<String> {
    let codice = pieno(codice)?;
    let t = tabelle();
    t.comune(codice)
        .map(|c| c.nome.clone())
        .or_else(|| t.stato(codice).map(|s| s.nome.clone()))
}

/// The searchable text: each word of the given pieces once, lower-case, in the order first
/// met. A search asks each of its words to be in the text, and a word without blanks can only
/// fall within one word of the text, so keeping each once answers the same while the index of
/// active moduli keeps a CV's vocabulary rather than its every experience.
fn testo_ricerca<'a>(pezzi: impl IntoIterator<Item = Option<&'a str>>) -> String {
    // Each word is lowered once, the first time it is met as written: a CV repeats its words
    // (FxHash: a 400 KB CV has some 25,000 of them).
    let mut scritte: FxHashSet<&str> = FxHashSet::default();
    let mut minuscole: FxHashSet<String> = FxHashSet::default();
    let mut testo = String::new();
    for parola in pezzi
        .into_iter()
        .filter_map(pieno)
        .flat_map(str::split_whitespace)
    {
        if !scritte.insert(parola) {
            continue;
        }
        let parola = parola.to_lowercase();
        if minuscole.contains(&parola) {
            continue;
        }
        if !testo.is_empty() {
            testo.push(' ');
        }
        testo.push_str(&parola);
        minuscole.insert(parola);
    }
    testo
}

/// Where a modulo is: Belfiore code, province sigla and region code, and the comune's name
/// for the searchable text.
#[derive(Default)]
struct Dove {
    comune: Option<String>,
    provincia: Option<String>,
    regione: Option<String>,
    nome: Option<&'static str>,
}

fn dove(codice: &str) -> Dove {
    let Some(codice) = pieno(Some(codice)) else {
        return Dove::default();
    };
    let c = tabelle().comune(codice);
    Dove {
        comune: Some(codice.to_string()),
        provincia: c.map(|c| c.provincia.clone()),
        regione: c.map(|c| c.codice_regione.clone()),
        nome: c.map(|c| c.nome.as_str()),
    }
}

impl Scheda {
    /// A scheda of either kind from its parts; `contatto` as [`Intermediario::contatto`] gives it.
    fn nuova(
        tipo: &str,
        codice: &str,
        pubblico: Oggetto,
        (intermediato, contatto): (bool, Oggetto),
        professioni: Vec<String>,
        dove: Dove,
        testo: String,
    ) -> Scheda {
        Scheda {
            codice: codice.trim().to_string(),
            tipo: tipo.into(),
            pubblico: Some(pubblico.fine()),
            contatto: Some(contatto.fine()),
            intermediato,
            professioni,
            comune: dove.comune,
            provincia: dove.provincia,
            regione: dove.regione,
            testo,
        }
    }
}

/// The intermediary's own contact data from DatiSistema: all a registered user gets of an
/// intermediated modulo, so the worker or employer is reached only through the intermediary.
struct Intermediario<'a> {
    codice: &'a Option<Testo>,
    codice_fiscale: &'a Option<Testo>,
    denominazione: &'a Option<Testo>,
    indirizzo: &'a Option<Testo>,
    idcomune: &'a Option<Testo>,
    cap: &'a Option<Testo>,
    telefono: &'a Option<Testo>,
    fax: &'a Option<Testo>,
    email: &'a Option<Testo>,
    /// `visibilita` (§2.2, §2.3): whether the intermediary's contact data may be shown.
    visibilita: &'a Option<Testo>,
}

/// The [`Intermediario`] of a Candidatura's or a Vacancy's DatiSistema, whose intermediary code
/// field is named differently in the two (`idintermediario`, `intermediario`).
macro_rules! intermediario {
    ($ds:expr, $codice:ident) => {
        Intermediario {
            codice: &$ds.$codice,
            codice_fiscale: &$ds.codicefiscaleintermediario,
            denominazione: &$ds.denominazioneintermediario,
            indirizzo: &$ds.indirizzo,
            idcomune: &$ds.idcomune,
            cap: &$ds.cap,
            telefono: &$ds.telefono,
            fax: &$ds.fax,
            email: &$ds.email,
            visibilita: &$ds.visibilita,
        }
    };
}

impl Intermediario<'_> {
    /// Any of the three identifying fields marks the modulo as inserted by an intermediary;
    /// the address and email fields alone do not (the email is the sender's in every modulo).
    fn presente(&self) -> bool {
        [self.codice, self.codice_fiscale, self.denominazione]
            .iter()
            .any(|v| pieno(v.as_deref()).is_some())
    }

    /// Whether the modulo is intermediated, and the contact for registered users: the
    /// intermediary's, or else the worker's or employer's own, which `diretto` writes.
    fn contatto(&self, diretto: impl FnOnce(&mut Oggetto)) -> (bool, Oggetto) {
        let mut o = Oggetto::default();
        if !self.presente() {
            o.testo("tramite", Some("diretto"));
            diretto(&mut o);
            return (false, o);
        }
        o.testo("tramite", Some("intermediario"));
        // Not visible: no contact data for anyone; contact goes through a Messaggio, which
        // the network delivers to the intermediary.
        if contatti_nascosti(self.visibilita.as_deref()) {
            return (true, o);
        }
        o.opt("codice_intermediario", self.codice)
            .opt("codice_fiscale", self.codice_fiscale)
            .opt("denominazione", self.denominazione)
            .opt("indirizzo", self.indirizzo)
            .luogo(self.idcomune.as_deref())
            .opt("cap", self.cap)
            .opt("telefono", self.telefono)
            .opt("fax", self.fax)
            .opt("email", self.email);
        (true, o)
    }
}

/// The published view of a Candidatura.
pub fn candidatura(c: &Candidatura) -> Scheda {
    let cur = &c.dati_curriculari;
    let ds = &c.dati_sistema;
    let mut p = Oggetto::default();

    p.oggetti(
        "professioni_desiderate",
        &cur.professione_desiderata_disponibilita,
        |o, d| {
            o.testo("codice", Some(&d.idprofessione))
                .testo("descrizione", Some(&d.descrprofessione))
                .opt("descrizione_professione", &d.descrizioneprofessione)
                .si_no("esperienza_settore", &d.esperienzasettore)
                .opt("descrizione_esperienza", &d.descrizioneesperienza)
                .oggetto("disponibilita", |disp| {
                    disp.si_no("trasferte", &d.trasferte)
                        .si_no("mezzo_proprio", &d.mezzitrasporto)
                        .lista("modalita_lavoro", &d.idmodalitalavorativa)
                        .lista("tipologie_contratto", &d.idtipologiacontratto)
                        .lista("territorio", &d.disponibilitaterritoriale);
                });
        },
    )
    // Without nomedatore and indirizzodatore: a named employer can identify the worker.
    .oggetti("esperienze", &cur.esperienze_lavorative, |o, e| {
        o.opt("tipo", &e.tipoesperienza)
            .opt("qualifica", &e.qualificasvolta)
            .opt("descrizione_qualifica", &e.descrqualificasvolta)
            .opt("mansioni", &e.principalimansioni)
            .opt("dal", &e.datainizio)
            .opt("al", &e.datafine);
    })
    .oggetti("istruzione", &cur.istruzione, |o, i| {
        o.testo("titolo", Some(&i.titolostudio))
            .opt("descrizione", &i.descrizioneistruzione)
            .opt("votazione", &i.votazione);
    })
    .oggetti("formazione", &cur.formazione, |o, f| {
        o.opt("titolo_corso", &f.titolocorso)
            .opt("sede", &f.idsede)
            .testo("sede_nome", nome_luogo(f.idsede.as_deref()).as_deref())
            .opt("durata", &f.durata)
            .opt("unita_durata", &f.idtipologiadurata)
            .opt("attestazione", &f.idattestazione)
            .opt("qualifica", &f.idqualifica)
            .opt("descrizione_qualifica", &f.descrqualifica);
    })
    .oggetti("lingue", &cur.lingue, |o, l| {
        o.opt("lingua", &l.idlingua)
            .opt("letto", &l.idlivelloletto)
            .opt("scritto", &l.idlivelloscritto)
            .opt("parlato", &l.idlivelloparlato);
    });
    if let Some(ci) = &cur.conoscenze_informatiche {
        p.oggetto("conoscenze_informatiche", |o| {
            o.opt("tipo", &ci.tipoconoscenza)
                .opt("specifiche", &ci.specifiche);
        });
    }
    if let Some(ap) = &cur.abilitazioni_patenti {
        p.lista("albi", &ap.idalbo)
            .lista("patenti", &ap.idpatenteguida)
            .lista("patentini", &ap.idpatentino);
    }
    // The domicile's comune only: CAP and address would narrow it to a street.
    p.luogo(Some(&c.lavoratore.domicilio.idcomune));

    let contatto = intermediario!(ds, idintermediario).contatto(|o| {
        let l = &c.lavoratore;
        let a = &l.dati_anagrafici;
        let r = &l.recapiti;
        o.testo("codice_fiscale", Some(&a.codicefiscale))
            .testo("cognome", Some(&a.cognome))
            .testo("nome", Some(&a.nome))
            .testo("sesso", Some(&a.sesso))
            .testo("data_nascita", Some(&a.datanascita))
            .testo("luogo_nascita", Some(&a.idcomune))
            .testo(
                "luogo_nascita_nome",
                nome_luogo(Some(&a.idcomune)).as_deref(),
            )
            .testo("cittadinanza", Some(&a.idcittadinanza))
            .opt("indirizzo", &r.indirizzo)
            .luogo(Some(&l.domicilio.idcomune))
            .opt("cap", &l.domicilio.cap)
            .opt("telefono", &r.telefono)
            .opt("cellulare", &r.cellulare)
            .opt("fax", &r.fax)
            .testo("email", Some(&r.email));
    });

    let mut professioni: Vec<String> = Vec::new();
    for d in &cur.professione_desiderata_disponibilita {
        if let Some(code) = pieno(Some(&d.idprofessione)) {
            if !professioni.iter().any(|p| p == code) {
                professioni.push(code.to_string());
            }
        }
    }
    let luogo = dove(&c.lavoratore.domicilio.idcomune);

    let mut pezzi: Vec<Option<&str>> = vec![luogo.nome];
    for d in &cur.professione_desiderata_disponibilita {
        pezzi.extend([
            Some(d.descrprofessione.as_str()),
            d.descrizioneprofessione.as_deref(),
            d.descrizioneesperienza.as_deref(),
        ]);
    }
    for e in &cur.esperienze_lavorative {
        pezzi.extend([
            e.descrqualificasvolta.as_deref(),
            e.principalimansioni.as_deref(),
        ]);
    }
    for i in &cur.istruzione {
        pezzi.push(i.descrizioneistruzione.as_deref());
    }
    for f in &cur.formazione {
        pezzi.extend([f.titolocorso.as_deref(), f.descrqualifica.as_deref()]);
    }
    if let Some(ci) = &cur.conoscenze_informatiche {
        pezzi.extend([ci.tipoconoscenza.as_deref(), ci.specifiche.as_deref()]);
    }

    Scheda::nuova(
        "candidatura",
        &ds.codicecandidatura,
        p,
        contatto,
        professioni,
        luogo,
        testo_ricerca(pezzi),
    )
}

/// The published view of a Vacancy.
pub fn vacancy(v: &Vacancy) -> Scheda {
    let dl = &v.datore_lavoro;
    let pr = &v.richiesta.profilo_richiesto;
    let isf = &v.richiesta.istruzione_formazione;
    let co = &v.richiesta.condizioni_offerte;
    let dr = &v.richiesta.durata_richiesta;
    let ds = &v.dati_sistema;
    let ateco = tabelle().ateco(dl.dati_anagrafici.settore.trim());

    let mut p = Oggetto::default();
    p.oggetto("professione", |o| {
        o.testo("codice", Some(&pr.idprofessione))
            .testo("descrizione", Some(&pr.descrprofessione));
    })
    .testo("numero_lavoratori", Some(&pr.numerolavoratori))
    .testo("descrizione_ricerca", Some(&pr.descrizionericerca))
    .si_no("esperienza_richiesta", &pr.esperienzarichiesta)
    .opt("descrizione_esperienza", &pr.descrizioneesperienza)
    // Rev.064's nulla osta.
    .si_no(
        "nulla_osta",
        &v.altre_informazioni.as_ref().map(|a| a.nulla_osta.clone()),
    )
    // The sector tells a job seeker what the employer does without naming it; size, name,
    // codice fiscale and web site are the employer's anagrafica.
    .oggetto("settore", |o| {
        o.testo("codice", Some(&dl.dati_anagrafici.settore))
            .testo("descrizione", ateco);
    })
    .oggetto("requisiti", |o| {
        o.oggetti("titoli_studio", &isf.titolostudio, |o, t| {
            o.testo("titolo", Some(&t.idtitolostudio))
                .opt("descrizione", &t.descrizionestudio);
        })
        .opt("albo", &isf.idalbo)
        .oggetti("lingue", &isf.lingua, |o, l| {
            o.testo("lingua", Some(&l.idlingua))
                .opt("letto", &l.idlivelloletto)
                .opt("scritto", &l.idlivelloscritto)
                .opt("parlato", &l.idlivelloparlato);
        })
        .opt("conoscenze_informatiche", &isf.conoscenzeinformatiche)
        .opt("altre_capacita", &isf.altrecapacita)
        .si_no("trasferte", &isf.trasferte)
        .lista("patenti", &isf.idpatenteguida)
        .si_no("mezzo_proprio", &isf.idmezzitrasporto)
        .lista("patentini", &isf.idpatentino)
        .lista("liste_speciali", &isf.idlistespeciali)
        .opt("ulteriori_requisiti", &isf.ulteriorirequisiti);
    })
    .oggetto("condizioni", |o| {
        o.luogo(Some(&co.idcomune))
            .testo("tipologia_contratto", Some(&co.idtipologiacontratto))
            .opt("durata", &co.durata)
            .opt("ccnl", &co.idccnl)
            .opt("livello_contrattuale", &co.idlivellocontrattuale)
            .opt("modalita_lavoro", &co.idmodalitalavoro)
            .opt("retribuzione_annua_lorda", &co.retribuzioneannualorda)
            .opt("ulteriori_condizioni", &co.ulterioricondizioni);
    })
    .testo("pubblicazione", Some(&dr.datapubblicazione))
    .opt("scadenza_offerta", &dr.datascadenza);

    let (intermediato, mut contatto) = intermediario!(ds, intermediario).contatto(|o| {
        let a = &dl.dati_anagrafici;
        let k = &dl.dati_contatto;
        o.opt("codice_fiscale", &a.codicefiscale)
            .testo("denominazione", Some(&a.denominazione))
            .opt("ampiezza", &a.ampiezza)
            .opt("web", &a.web)
            .opt("indirizzo", &k.indirizzo)
            .luogo(Some(&k.idcomune))
            .opt("cap", &k.cap)
            .opt("telefono", &k.telefono)
            .opt("fax", &k.fax)
            .testo("email", Some(&k.email));
    });
    // The agency's own reference for the offer, to quote when making contact.
    contatto.opt(
        "codice_offerta_intermediario",
        &ds.codiceoffertaintermediario,
    );

    let luogo = dove(&co.idcomune);
    let testo = testo_ricerca(
        [
            Some(pr.descrprofessione.as_str()),
            Some(pr.descrizionericerca.as_str()),
            pr.descrizioneesperienza.as_deref(),
            ateco,
            luogo.nome,
            isf.conoscenzeinformatiche.as_deref(),
            isf.altrecapacita.as_deref(),
            isf.ulteriorirequisiti.as_deref(),
            co.durata.as_deref(),
            co.ulterioricondizioni.as_deref(),
        ]
        .into_iter()
        .chain(
            isf.titolostudio
                .iter()
                .map(|t| t.descrizionestudio.as_deref()),
        ),
    );

    Scheda::nuova(
        "vacancy",
        &ds.codiceofferta,
        p,
        (intermediato, contatto),
        pieno(Some(&pr.idprofessione))
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        luogo,
        testo,
    )
}

#[cfg(test)]
mod tests {
    use super::{stringa, testo_ricerca, Oggetto};

    /// The object written as it is built leaves out what is empty at every level, escapes its
    /// strings and reads back as the JSON it stands for.
    #[test]
    fn an_object_leaves_out_empty_values_and_reads_back_as_json() {
        let mut o = Oggetto::default();
        o.testo("nome", Some("  Anna \"la\"\n\\ cuoca "))
            .testo("vuoto", Some("   "))
            .testo("assente", None)
            .opt("opzione", &Some("x".into()))
            .lista("lista", &["a".into(), " ".into(), "b".into()])
            .lista("lista_vuota", &[" ".into()])
            .si_no("si", &Some("SI".into()))
            .si_no("no", &Some(" NO ".into()))
            .si_no("forse", &Some("FORSE".into()))
            .oggetto("dentro", |o| {
                o.testo("k", Some("v"));
            })
            .oggetto("dentro_vuoto", |o| {
                o.testo("k", Some(""));
            })
            .oggetti("righe", &[1, 2, 3], |o, n| {
                if *n != 2 {
                    o.testo("n", Some(&n.to_string()));
                }
            })
            .oggetti("righe_vuote", &[1], |_, _| {});
        let json = o.fine();
        let atteso = serde_json::json!({
            "nome": "Anna \"la\"\n\\ cuoca",
            "opzione": "x",
            "lista": ["a", "b"],
            "si": true,
            "no": false,
            "dentro": { "k": "v" },
            "righe": [{ "n": "1" }, { "n": "3" }],
        });
        assert_eq!(serde_json::Value::Object(json.oggetto()), atteso);
        // Serialized as the JSON it holds (not as a string), and read back from it.
        let scritto = serde_json::to_string(&json).unwrap();
        assert_eq!(scritto, json.testo());
        let letto: super::Json = serde_json::from_str(&scritto).unwrap();
        assert_eq!(letto.testo(), json.testo());
        assert!(serde_json::to_string(&super::Json::dal_testo("{\"a\":")).is_err());
        assert_eq!(json, super::Json::from(atteso));
        assert_eq!(Oggetto::default().fine().testo(), "{}");
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        // Every ASCII character and some others, alone and at each place of strings of every
        // length around the eight-byte steps of the check.
        let mut casi: Vec<String> = (0u8..=0x7f).map(|c| char::from(c).to_string()).collect();
        casi.extend(["è", "\u{2028}", "€uro \u{1F600}", "", "\\\"x"].map(String::from));
        for speciale in [
            '\0', '\n', '\u{1f}', ' ', '"', '\\', '\u{7f}', 'é', '!', ']',
        ] {
            for n in 0..20 {
                for at in 0..n {
                    let mut s: String = "abcdefghijklmnopqrstu"[..n].to_string();
                    s.replace_range(at..at + 1, &speciale.to_string());
                    casi.push(s);
                }
            }
        }
        for s in &casi {
            let mut out = String::new();
            stringa(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_search_text_keeps_each_word_once_and_answers_as_the_whole_text_would() {
        let pezzi = [
            Some("Cuoco  di linea"),
            None,
            Some("  "),
            Some("Aiuto CUOCO\nin una mensa di Roma"),
            Some("cuoco"),
        ];
        let testo = testo_ricerca(pezzi);
        assert_eq!(testo, "cuoco di linea aiuto in una mensa roma");
        // Every word or part of a word found in the whole text is found in this one, and
        // nothing else is.
        let intero = pezzi
            .iter()
            .flatten()
            .map(|p| p.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        for w in [
            "cuoc", "uoco", "mensa", "di", "roma", "a", "linea", "lineaa", "napoli", "x",
        ] {
            assert_eq!(testo.contains(w), intero.contains(w), "{w}");
        }
    }
}
