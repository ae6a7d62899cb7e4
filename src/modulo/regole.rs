//! The rules above the XSD: code tables, codice fiscale, and the document's rules
//! ("ClicLavoro — Modelli e regole", §2.2, §2.3, §4; lifecycle facts in cliclavoro-standard §6).

use chrono::{NaiveDate, NaiveDateTime};

use super::cf::{self, Codice};
use super::model::{candidatura, messaggio, vacancy, Modulo, Tipo};
use super::tabelle::tabelle;
use super::{problema, Contesto, Esiste, Livello, Problema, Versione};

/// A date or dateTime value as the rules read it (the XSD has already judged its form).
pub fn data(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    data_esatta(s.get(..10)?).or_else(|| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|t| t.date())
    })
}

/// A date as chrono's `%Y-%m-%d` reads it, the common `AAAA-MM-GG` without its format parser.
pub fn data_esatta(d: &str) -> Option<NaiveDate> {
    data_aaaa_mm_gg(d).or_else(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// A date written `AAAA-MM-GG`, read without chrono's format parser: a 50 KB Candidatura has
/// some 170 dates. Other forms (and impossible dates) give `None`.
pub fn data_aaaa_mm_gg(d: &str) -> Option<NaiveDate> {
    let b: &[u8; 10] = d.as_bytes().try_into().ok()?;
    let n = |r: &[u8]| {
        r.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(n(&b[..4])? as i32, n(&b[5..7])?, n(&b[8..])?)
}

struct Regole<'a> {
    out: Vec<Problema>,
    ctx: &'a Contesto,
}

fn vuoto(s: &str) -> bool {
    s.trim().is_empty()
}

impl Regole<'_> {
    fn p(&mut self, path: &str, code: &str, msg: impl Into<String>) {
        self.out.push(problema(path, code, msg, Livello::Rule));
    }

    /// A personal or company codice fiscale.
    fn codice_fiscale(&mut self, path: impl FnOnce() -> String, v: &str) -> Option<Codice> {
        if vuoto(v) {
            return None;
        }
        match cf::verifica(v) {
            Ok(c) => Some(c),
            Err(e) => {
                let code = match e {
                    cf::CfError::Controllo(_) | cf::CfError::CifraControllo(_) => "CF_CONTROLLO",
                    cf::CfError::Mese(_) | cf::CfError::Giorno(_) => "CF_DATA",
                    _ => "CF_FORMATO",
                };
                self.p(
                    &path(),
                    code,
                    format!("codice fiscale '{}' non valido: {e}", v.trim()),
                );
                None
            }
        }
    }

    /// A place code: an Italian comune or a foreign state, existing at `quando` (or now).
    fn luogo(
        &mut self,
        path: impl FnOnce() -> String,
        v: &str,
        quando: Option<NaiveDate>,
        solo_italia_attuale: bool,
    ) {
        let code = v.trim();
        if code.is_empty() || code == "0000" {
            return;
        }
        let t = tabelle();
        if solo_italia_attuale {
            if code.starts_with('Z') && t.stato(code).is_some() {
                self.p(
                    &path(),
                    "DOMICILIO_ESTERO",
                    format!("il domicilio deve essere in Italia: {code} è uno stato estero"),
                );
            } else if t.comune(code).is_none() {
                let msg = if t.luogo(code) {
                    format!("il comune {code} non esiste più")
                } else {
                    format!("il codice {code} non è un comune italiano")
                };
                self.p(&path(), "COMUNE_SCONOSCIUTO", msg);
            }
            return;
        }
        let ok = match quando {
            Some(d) => t.luogo_al(code, d),
            None => t.luogo(code),
        };
        if !ok {
            let msg = match quando {
                Some(d) if t.luogo(code) => {
                    format!("il codice {code} non indicava un comune o uno stato estero il {d}")
                }
                _ => format!("il codice {code} non è un comune né uno stato estero"),
            };
            self.p(&path(), "COMUNE_SCONOSCIUTO", msg);
        }
    }

    fn email_presente(&mut self, path: impl FnOnce() -> String, v: Option<&str>, chi: &str) {
        if v.is_none_or(vuoto) {
            self.p(
                &path(),
                "EMAIL_MANCANTE",
                format!("l'indirizzo di posta elettronica {chi} è obbligatorio"),
            );
        }
    }

    /// The DatiSistema a Candidatura and a Vacancy share: the kind of communication, and who
    /// sends it (intermediary's codice fiscale, comune, e-mail).
    fn mittente_sistema(
        &mut self,
        ps: &dyn Fn(&str) -> String,
        (campo, tipo): (&str, &str),
        cf_intermediario: Option<&str>,
        comune: Option<&str>,
        email: Option<&str>,
        chi: &str,
    ) {
        self.valore_noto(
            || ps(campo),
            "TipoComunicazione",
            tipo,
            "TIPO_COMUNICAZIONE",
            "il tipo di comunicazione",
        );
        if let Some(cfi) = cf_intermediario {
            self.codice_fiscale(|| ps("codicefiscaleintermediario"), cfi);
        }
        if let Some(cm) = comune {
            self.luogo(|| ps("idcomune"), cm, None, false);
        }
        self.email_presente(|| ps("email"), email, chi);
    }

    /// A citizenship: `000` or an ISTAT code of a state (`data/stati_istat.csv`).
    fn cittadinanza(&mut self, path: impl FnOnce() -> String, v: &str) {
        let code = v.trim();
        if !code.is_empty() && tabelle().cittadinanza(code).is_none() {
            self.p(
                &path(),
                "CITTADINANZA_SCONOSCIUTA",
                format!("la cittadinanza '{code}' non è 000 (italiana) né il codice ISTAT di uno stato estero"),
            );
        }
    }

    /// A profession, from Rev.038 on: an ISTAT CP2011 unità professionale (its six-segment form
    /// extends one). The 2.0 schema names the 2001 classification, whose table is not shipped:
    /// there the pattern alone judges.
    fn professione(&mut self, path: impl FnOnce() -> String, v: &str, versione: Versione) {
        let code = v.trim();
        if versione.dal_2012() && !code.is_empty() && tabelle().professione(code).is_none() {
            self.p(
                &path(),
                "PROFESSIONE_SCONOSCIUTA",
                format!("la professione '{code}' non è un'unità professionale della classificazione ISTAT CP2011"),
            );
        }
    }

    /// A language in its ISO 639-2 form (three letters). The numeric ClicLavoro codes and `WU`
    /// have no published table: the pattern alone judges them.
    fn lingua(&mut self, path: impl FnOnce() -> String, v: &str) {
        let code = v.trim();
        if code.len() == 3
            && code.bytes().all(|b| b.is_ascii_uppercase())
            && !tabelle().lingua(code)
        {
            self.p(
                &path(),
                "LINGUA_SCONOSCIUTA",
                format!("la lingua '{code}' non è un codice ISO 639-2"),
            );
        }
    }

    fn valore_noto(
        &mut self,
        path: impl FnOnce() -> String,
        table: &str,
        v: &str,
        code: &str,
        cosa: &str,
    ) {
        if !vuoto(v) && !tabelle().valore(table, v.trim()) {
            self.p(
                &path(),
                code,
                format!(
                    "{cosa} '{}' non è un valore della tabella {table}",
                    v.trim()
                ),
            );
        }
    }

    fn rettifica(
        &mut self,
        m: &Modulo,
        base: &str,
        versione: Versione,
        tipo_com: &str,
        motivo: Option<&str>,
    ) {
        let precedente = m.precedente();
        let (campo_prec, cosa) = match m.tipo() {
            Tipo::Candidatura => ("codicecandidaturaprecedente", "candidatura"),
            Tipo::Vacancy => ("codiceoffertaprecedente", "offerta"),
            Tipo::Messaggio => ("codicemessaggioprecedente", "messaggio"),
        };
        let path_prec = format!("{base}/DatiSistema/{campo_prec}");
        if tipo_com.trim() == "02" && motivo.is_none_or(vuoto) {
            self.p(
                &format!("{base}/DatiSistema/motivochiusura"),
                "MOTIVO_CHIUSURA_MANCANTE",
                "una chiusura (tipo 02) deve indicare il motivo di chiusura",
            );
        }
        if versione.dal_2012() && m.tipo() != Tipo::Messaggio {
            match precedente {
                Some(p) if p == m.codice() => {
                    self.p(
                        &path_prec,
                        "PRECEDENTE_UGUALE",
                        "il codice precedente deve essere diverso dal codice della comunicazione",
                    );
                }
                Some(_) => {}
                None if tipo_com.trim() == "02" => self.p(
                    &path_prec,
                    "PRECEDENTE_MANCANTE",
                    format!("una chiusura deve indicare il codice della {cosa} da chiudere"),
                ),
                None => {}
            }
        }
    }
}

/// The rules that ask what the node already holds (Rev.038): a rettifica or chiusura names a
/// communication already received; a new communication does not reuse a known code. `esiste`
/// says whether a code of a kind is stored.
pub fn esistenza(m: &Modulo, versione: Versione, esiste: &Esiste<'_>) -> Vec<Problema> {
    let mut out = Vec::new();
    if !versione.dal_2012() || m.tipo() == Tipo::Messaggio {
        return out;
    }
    let (base, campo, campo_prec, cosa) = match m.tipo() {
        Tipo::Candidatura => (
            "Candidatura",
            "codicecandidatura",
            "codicecandidaturaprecedente",
            "candidatura",
        ),
        _ => (
            "Vacancy",
            "codiceofferta",
            "codiceoffertaprecedente",
            "offerta",
        ),
    };
    match m.precedente() {
        Some(p) => {
            if !esiste(m.tipo(), p) {
                out.push(problema(
                    format!("{base}/DatiSistema/{campo_prec}"),
                    "PRECEDENTE_SCONOSCIUTO",
                    format!("la {cosa} precedente {p} non è presente: rettifica e chiusura devono riferirsi a una comunicazione già ricevuta"),
                    Livello::Rule,
                ));
            }
        }
        None => {
            let chiusura = match m {
                Modulo::Candidatura(c) => c.dati_sistema.tipocandidatura.trim() == "02",
                Modulo::Vacancy(v) => v.dati_sistema.tipoofferta.trim() == "02",
                Modulo::Messaggio(_) => false,
            };
            if !chiusura && esiste(m.tipo(), m.codice()) {
                out.push(problema(
                    format!("{base}/DatiSistema/{campo}"),
                    "CODICE_GIA_PRESENTE",
                    format!(
                        "la {cosa} {} è già presente: una rettifica indica il codice precedente",
                        m.codice()
                    ),
                    Livello::Rule,
                ));
            }
        }
    }
    out
}

pub fn verifica(m: &Modulo, versione: Versione, ctx: &Contesto) -> Vec<Problema> {
    let mut r = Regole {
        out: Vec::new(),
        ctx,
    };
    match m {
        Modulo::Candidatura(c) => candidatura_(&mut r, m, c, versione),
        Modulo::Vacancy(v) => vacancy_(&mut r, m, v, versione),
        Modulo::Messaggio(x) => messaggio_(&mut r, x),
    }
    r.out
}

fn candidatura_(r: &mut Regole<'_>, m: &Modulo, c: &candidatura::Candidatura, versione: Versione) {
    let base = "Candidatura";
    let da = &c.lavoratore.dati_anagrafici;
    let pa = |f: &str| format!("{base}/Lavoratore/DatiAnagrafici/{f}");
    let nascita = data(&da.datanascita);
    if let Some(n) = nascita {
        if n >= r.ctx.ricevuto {
            r.p(
                &pa("datanascita"),
                "NASCITA_FUTURA",
                format!("la data di nascita {n} non è nel passato"),
            );
        }
    }
    if let Some(Codice::Persona(p)) = r.codice_fiscale(|| pa("codicefiscale"), &da.codicefiscale) {
        if let Some(n) = nascita {
            if !p.nato_il(n) {
                r.p(
                    &pa("codicefiscale"),
                    "CF_DATA_NASCITA",
                    format!(
                        "il codice fiscale indica la nascita il {:02}/{:02}/..{:02}, non il {n}",
                        p.giorno, p.mese, p.anno
                    ),
                );
            }
        }
        let sesso = da.sesso.trim();
        if (sesso == "F") != p.femmina && (sesso == "M" || sesso == "F") {
            r.p(
                &pa("codicefiscale"),
                "CF_SESSO",
                format!("il codice fiscale non corrisponde al sesso {sesso}"),
            );
        }
        let comune = da.idcomune.trim();
        if comune != "0000" && !comune.is_empty() && comune != p.belfiore {
            r.p(
                &pa("codicefiscale"),
                "CF_COMUNE_NASCITA",
                format!(
                    "il codice fiscale indica il luogo di nascita {}, non {comune}",
                    p.belfiore
                ),
            );
        }
    }
    r.luogo(|| pa("idcomune"), &da.idcomune, nascita, false);
    r.cittadinanza(|| pa("idcittadinanza"), &da.idcittadinanza);
    r.luogo(
        || format!("{base}/Lavoratore/Domicilio/idcomune"),
        &c.lavoratore.domicilio.idcomune,
        None,
        true,
    );
    if c.lavoratore.domicilio.idcomune.trim() == "0000" {
        r.p(
            &format!("{base}/Lavoratore/Domicilio/idcomune"),
            "DOMICILIO_NON_INDICATO",
            "il comune di domicilio è obbligatorio e deve essere in Italia",
        );
    }
    r.email_presente(
        || format!("{base}/Lavoratore/Recapiti/email"),
        Some(c.lavoratore.recapiti.email.as_str()),
        "del lavoratore (o dell'intermediario)",
    );

    let dc = &c.dati_curriculari;
    for (i, e) in dc.esperienze_lavorative.iter().enumerate() {
        // Paths are written only for a problem: a 400 KB CV has some 600 experiences.
        let p = |campo: &str| {
            format!(
                "{base}/DatiCurriculari/EsperienzeLavorative[{}]/{campo}",
                i + 1
            )
        };
        if let Some(q) = &e.qualificasvolta {
            r.professione(|| p("qualificasvolta"), q, versione);
        }
        let (inizio, fine) = (
            e.datainizio.as_deref().and_then(data),
            e.datafine.as_deref().and_then(data),
        );
        if let (Some(a), Some(b)) = (inizio, fine) {
            if b < a {
                r.p(
                    &p("datafine"),
                    "DATE_INCOERENTI",
                    format!("la data di fine {b} precede la data di inizio {a}"),
                );
            }
        }
        if let (Some(a), Some(n)) = (inizio, nascita) {
            if a < n {
                r.p(
                    &p("datainizio"),
                    "DATE_INCOERENTI",
                    format!("l'esperienza inizia il {a}, prima della nascita"),
                );
            }
        }
    }
    for (i, l) in dc.lingue.iter().enumerate() {
        if let Some(code) = &l.idlingua {
            r.lingua(
                || format!("{base}/DatiCurriculari/Lingue[{}]/idlingua", i + 1),
                code,
            );
        }
    }
    for (i, p) in dc.professione_desiderata_disponibilita.iter().enumerate() {
        r.professione(
            || {
                format!(
                    "{base}/DatiCurriculari/ProfessioneDesiderataDisponibilita[{}]/idprofessione",
                    i + 1
                )
            },
            &p.idprofessione,
            versione,
        );
    }
    for (i, f) in dc.formazione.iter().enumerate() {
        if let Some(q) = &f.idqualifica {
            r.professione(
                || format!("{base}/DatiCurriculari/Formazione[{}]/idqualifica", i + 1),
                q,
                versione,
            );
        }
        if let Some(sede) = &f.idsede {
            r.luogo(
                || format!("{base}/DatiCurriculari/Formazione[{}]/idsede", i + 1),
                sede,
                None,
                false,
            );
        }
    }

    let ds = &c.dati_sistema;
    let ps = |f: &str| format!("{base}/DatiSistema/{f}");
    for (i, a) in ds.ambitodiffusione.iter().enumerate() {
        let path = || {
            if ds.ambitodiffusione.len() > 1 {
                format!("{base}/DatiSistema/ambitodiffusione[{}]", i + 1)
            } else {
                ps("ambitodiffusione")
            }
        };
        r.valore_noto(
            path,
            "AmbitoDiffusione",
            a,
            "AMBITO_DIFFUSIONE",
            "l'ambito di diffusione",
        );
    }
    r.mittente_sistema(
        &ps,
        ("tipocandidatura", &ds.tipocandidatura),
        ds.codicefiscaleintermediario.as_deref(),
        ds.idcomune.as_deref(),
        ds.email.as_deref(),
        "del soggetto che invia la candidatura",
    );
    date_sistema(
        r,
        &ps("datascadenza"),
        &ds.datainserimento,
        ds.datascadenza.as_deref(),
        "di inserimento",
    );
    r.rettifica(
        m,
        base,
        versione,
        &ds.tipocandidatura,
        ds.motivochiusura.as_deref(),
    );
}

/// The expiry must not precede the insertion. (A date already past is not refused: the
/// modulo is accepted and expires at once, as the validity rules say.)
fn date_sistema(r: &mut Regole<'_>, path: &str, inizio: &str, scadenza: Option<&str>, cosa: &str) {
    let (Some(a), Some(s)) = (data(inizio), scadenza.and_then(data)) else {
        return;
    };
    if s < a {
        r.p(
            path,
            "DATE_INCOERENTI",
            format!("la data di scadenza {s} precede la data {cosa} {a}"),
        );
    }
}

fn vacancy_(r: &mut Regole<'_>, m: &Modulo, v: &vacancy::Vacancy, versione: Versione) {
    let base = "Vacancy";
    let da = &v.datore_lavoro.dati_anagrafici;
    let pa = |f: &str| format!("{base}/DatoreLavoro/DatiAnagrafici/{f}");
    if let Some(cf) = &da.codicefiscale {
        r.codice_fiscale(|| pa("codicefiscale"), cf);
    }
    let settore = da.settore.trim();
    if !settore.is_empty() && tabelle().ateco(settore).is_none() {
        r.p(
            &pa("settore"),
            "ATECO_SCONOSCIUTO",
            format!("il settore {settore} non è un codice ATECO 2007"),
        );
    }
    if let Some(a) = &da.ampiezza {
        r.valore_noto(|| pa("ampiezza"), "Ampiezza", a, "AMPIEZZA", "l'ampiezza");
    }
    let dc = &v.datore_lavoro.dati_contatto;
    let pc = |f: &str| format!("{base}/DatoreLavoro/DatiContatto/{f}");
    r.luogo(|| pc("idcomune"), &dc.idcomune, None, false);
    if dc.telefono.as_deref().is_none_or(vuoto) && dc.fax.as_deref().is_none_or(vuoto) {
        r.p(
            &pc("telefono"),
            "CONTATTO_DATORE_MANCANTE",
            "il datore di lavoro deve indicare almeno il telefono o il fax",
        );
    }
    r.email_presente(
        || pc("email"),
        Some(dc.email.as_str()),
        "del datore di lavoro",
    );

    let pr = &v.richiesta.profilo_richiesto;
    r.professione(
        || format!("{base}/Richiesta/ProfiloRichiesto/idprofessione"),
        &pr.idprofessione,
        versione,
    );
    for (i, l) in v.richiesta.istruzione_formazione.lingua.iter().enumerate() {
        r.lingua(
            || {
                format!(
                    "{base}/Richiesta/IstruzioneFormazione/Lingua[{}]/idlingua",
                    i + 1
                )
            },
            &l.idlingua,
        );
    }
    let co = &v.richiesta.condizioni_offerte;
    let pco = |f: &str| format!("{base}/Richiesta/CondizioniOfferte/{f}");
    r.luogo(|| pco("idcomune"), &co.idcomune, None, false);
    if let Some(ccnl) = &co.idccnl {
        let c = ccnl.trim();
        // Two letters are the special codes: CD (another contract) and ND (none applied).
        if c.len() == 2 && c != "CD" && c != "ND" {
            r.p(
                &pco("idccnl"),
                "CCNL",
                format!("il CCNL '{c}' non esiste: i codici di due lettere sono CD e ND"),
            );
        }
    }
    let dr = &v.richiesta.durata_richiesta;
    date_sistema(
        r,
        &format!("{base}/Richiesta/DurataRichiesta/datascadenza"),
        &dr.datapubblicazione,
        dr.datascadenza.as_deref(),
        "di pubblicazione",
    );

    let ds = &v.dati_sistema;
    let ps = |f: &str| format!("{base}/DatiSistema/{f}");
    r.mittente_sistema(
        &ps,
        ("tipoofferta", &ds.tipoofferta),
        ds.codicefiscaleintermediario.as_deref(),
        ds.idcomune.as_deref(),
        ds.email.as_deref(),
        "del soggetto che invia l'offerta",
    );
    r.rettifica(
        m,
        base,
        versione,
        &ds.tipoofferta,
        ds.motivochiusura.as_deref(),
    );
}

fn messaggio_(r: &mut Regole<'_>, x: &messaggio::Messaggio) {
    let base = "Messaggio";
    for (lato, i) in [
        ("Mittente", &x.mittente.interlocutore),
        ("Destinatario", &x.destinatario.interlocutore),
    ] {
        let p = |f: &str| format!("{base}/{lato}/Interlocutore/{f}");
        if let Some(cf) = &i.codicefiscale {
            r.codice_fiscale(|| p("codicefiscale"), cf);
        }
        if let Some(c) = &i.comune {
            r.luogo(|| p("comune"), c, None, false);
        }
    }
    let t = x.dati_sistema.tipocomunicazione.trim();
    r.valore_noto(
        || format!("{base}/DatiSistema/tipocomunicazione"),
        "TipoComunicazione",
        t,
        "TIPO_COMUNICAZIONE",
        "il tipo di comunicazione",
    );
    if x.destinatario
        .interlocutore
        .codiceoffertacandidatura
        .as_deref()
        .is_none_or(vuoto)
    {
        r.p(
            &format!("{base}/Destinatario/Interlocutore/codiceoffertacandidatura"),
            "RIFERIMENTO_MANCANTE",
            "un messaggio deve indicare la candidatura o l'offerta a cui si riferisce",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{valida, Contesto, Livello};
    use super::*;
    use chrono::Datelike;

    #[test]
    fn dates_are_read_as_chrono_reads_them() {
        let mut d = NaiveDate::from_ymd_opt(1899, 12, 25).unwrap();
        while d.year() < 2101 {
            let s = d.format("%Y-%m-%d").to_string();
            assert_eq!(data_aaaa_mm_gg(&s), Some(d));
            assert_eq!(data(&s), Some(d));
            d = d.succ_opt().unwrap();
        }
        for s in [
            "2026-02-29",
            "2024-02-30",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-1-01",
            "2026/01/01",
            "20260101",
            "2026-01-1x",
            "+026-01-01",
            "２026-01-01",
            "",
        ] {
            assert_eq!(data_aaaa_mm_gg(s), None, "{s}");
            assert_eq!(
                data(s),
                s.get(..10)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                "{s}"
            );
        }
        assert_eq!(
            data(" 2026-12-07T10:00:00 "),
            NaiveDate::from_ymd_opt(2026, 12, 7)
        );
    }

    const C20: &str = include_str!("../../examples/moduli/candidatura-2.0.xml");
    const C38: &str = include_str!("../../examples/moduli/candidatura-rev038.xml");
    const C38_CHIUSURA: &str =
        include_str!("../../examples/moduli/candidatura-rev038-chiusura.xml");
    const V20: &str = include_str!("../../examples/moduli/vacancy-2.0.xml");
    const M38: &str = include_str!("../../examples/moduli/messaggio-rev038.xml");

    /// The rule codes a modulo raises (it must pass the schema).
    fn codes(xml: &str, esiste: Option<&super::super::Esiste<'_>>) -> Vec<String> {
        let mut e = valida(
            xml.as_bytes(),
            &Contesto {
                ricevuto: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
                versione: None,
            },
        );
        if let Some(esiste) = esiste {
            e.esistenza(esiste);
        }
        assert!(e.valido_schema(), "{:?}", e.problemi);
        e.problemi
            .into_iter()
            .filter(|p| p.level == Livello::Rule)
            .map(|p| p.code)
            .collect()
    }

    fn one(xml: &str, from: &str, to: &str) -> Vec<String> {
        assert!(xml.contains(from), "{from}");
        codes(&xml.replacen(from, to, 1), None)
    }

    #[test]
    fn code_tables_judge_citizenship_professions_and_languages() {
        let got = |xml: &str, from: &str, to: &str| one(xml, from, to);
        const V38: &str = include_str!("../../examples/moduli/vacancy-rev038.xml");
        assert_eq!(codes(C38, None), Vec::<String>::new());
        assert_eq!(codes(V38, None), Vec::<String>::new());
        for (xml, from, to, code) in [
            (
                C38,
                ">000</cl:idcittadinanza>",
                ">999</cl:idcittadinanza>",
                "CITTADINANZA_SCONOSCIUTA",
            ),
            (
                C20,
                ">000</cl:idcittadinanza>",
                ">999</cl:idcittadinanza>",
                "CITTADINANZA_SCONOSCIUTA",
            ),
            (
                C38,
                "<cl:qualificasvolta>6.5.1.1.1.0<",
                "<cl:qualificasvolta>9.9.9.9.9.9<",
                "PROFESSIONE_SCONOSCIUTA",
            ),
            (
                C38,
                "<cl:idprofessione>6.5.1.1.1.0<",
                "<cl:idprofessione>6.5.1.1.9.0<",
                "PROFESSIONE_SCONOSCIUTA",
            ),
            (
                V38,
                "<cl:idprofessione>6.5.1.1.1.0<",
                "<cl:idprofessione>9.9.9.9.9.9<",
                "PROFESSIONE_SCONOSCIUTA",
            ),
            (
                C38,
                "<cl:idlingua>003<",
                "<cl:idlingua>XYZ<",
                "LINGUA_SCONOSCIUTA",
            ),
            (
                V38,
                "<cl:idlingua>003<",
                "<cl:idlingua>QQQ<",
                "LINGUA_SCONOSCIUTA",
            ),
        ] {
            assert_eq!(got(xml, from, to), vec![code.to_string()], "{from} → {to}");
        }
        // Known values pass: an ISTAT state code, an ISO 639-2 code in either form, another
        // unità professionale.
        for (xml, from, to) in [
            (C38, ">000</cl:idcittadinanza>", ">330</cl:idcittadinanza>"),
            (C38, "<cl:idlingua>003<", "<cl:idlingua>FRE<"),
            (C38, "<cl:idlingua>003<", "<cl:idlingua>FRA<"),
            (
                V38,
                "<cl:idprofessione>6.5.1.1.1.0<",
                "<cl:idprofessione>2.1.1.4.1.0<",
            ),
        ] {
            assert_eq!(got(xml, from, to), Vec::<String>::new(), "{to}");
        }
        // Under 2.0 the schema names the 2001 classification, which is not shipped.
        assert_eq!(
            got(
                C20,
                "<cl:idprofessione>3.3.1.2.1<",
                "<cl:idprofessione>9.9.9.9.9<"
            ),
            Vec::<String>::new()
        );
    }

    /// Where each problem lies: the paths are written only for a problem, and the schema's
    /// problems set aside the rules' at the same path, so a wrong one would go unseen.
    #[test]
    fn each_problem_names_the_element_it_is_about() {
        let xml = C38
            .replacen(
                "<cl:qualificasvolta>6.5.1.1.1.0</cl:qualificasvolta>\n      <cl:descrqualificasvolta>Panettiere",
                "<cl:qualificasvolta>9.9.9.9.9.9</cl:qualificasvolta>\n      <cl:descrqualificasvolta>Panettiere",
                1,
            )
            .replacen("<cl:datafine>2026-06-30<", "<cl:datafine>2017-06-30<", 1)
            .replacen("<cl:idsede>C933<", "<cl:idsede>Q999<", 1)
            .replacen("<cl:idlingua>003<", "<cl:idlingua>XYZ<", 1)
            .replacen("<cl:idprofessione>6.5.1.1.1.0<", "<cl:idprofessione>9.9.9.9.9.9<", 1);
        let e = valida(
            xml.as_bytes(),
            &Contesto {
                ricevuto: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
                versione: None,
            },
        );
        assert!(e.valido_schema(), "{:?}", e.problemi);
        let mut got: Vec<(String, String)> = e
            .problemi
            .into_iter()
            .filter(|p| p.level == Livello::Rule)
            .map(|p| (p.path, p.code))
            .collect();
        got.sort();
        let c = "Candidatura/DatiCurriculari";
        let mut atteso: Vec<(String, String)> = [
            (
                format!("{c}/EsperienzeLavorative[2]/qualificasvolta"),
                "PROFESSIONE_SCONOSCIUTA",
            ),
            (
                format!("{c}/EsperienzeLavorative[2]/datafine"),
                "DATE_INCOERENTI",
            ),
            (format!("{c}/Formazione[1]/idsede"), "COMUNE_SCONOSCIUTO"),
            (format!("{c}/Lingue[1]/idlingua"), "LINGUA_SCONOSCIUTA"),
            (
                format!("{c}/ProfessioneDesiderataDisponibilita[1]/idprofessione"),
                "PROFESSIONE_SCONOSCIUTA",
            ),
        ]
        .into_iter()
        .map(|(p, k)| (p, k.to_string()))
        .collect();
        atteso.sort();
        assert_eq!(got, atteso);
    }

    #[test]
    fn each_rule_of_the_candidatura() {
        assert_eq!(codes(C20, None), Vec::<String>::new());
        let cases = [
            ("BNCLRA85M41F205C", "BNCLRA85M41F205D", "CF_CONTROLLO"),
            (
                "<cl:sesso>F</cl:sesso>",
                "<cl:sesso>M</cl:sesso>",
                "CF_SESSO",
            ),
            (
                "<cl:datanascita>1985-08-01",
                "<cl:datanascita>1985-08-02",
                "CF_DATA_NASCITA",
            ),
            (
                "<cl:idcomune>F205</cl:idcomune>",
                "<cl:idcomune>H501</cl:idcomune>",
                "CF_COMUNE_NASCITA",
            ),
            (
                "<cl:idcomune>A944</cl:idcomune>",
                "<cl:idcomune>Z112</cl:idcomune>",
                "DOMICILIO_ESTERO",
            ),
            (
                "<cl:idcomune>A944</cl:idcomune>",
                "<cl:idcomune>M999</cl:idcomune>",
                "COMUNE_SCONOSCIUTO",
            ),
            (
                "<cl:idcomune>A944</cl:idcomune>",
                "<cl:idcomune>0000</cl:idcomune>",
                "DOMICILIO_NON_INDICATO",
            ),
            (
                "<cl:email>laura.bianchi@example.it</cl:email>",
                "<cl:email></cl:email>",
                "EMAIL_MANCANTE",
            ),
            (
                "    <cl:email>cpi.bologna@example.it</cl:email>\n",
                "",
                "EMAIL_MANCANTE",
            ),
            (
                "<cl:ambitodiffusione>02<",
                "<cl:ambitodiffusione>07<",
                "AMBITO_DIFFUSIONE",
            ),
            (
                "<cl:datafine>2019-06-30",
                "<cl:datafine>2011-06-30",
                "DATE_INCOERENTI",
            ),
            (
                "<cl:datainizio>2012-03-01",
                "<cl:datainizio>1980-03-01",
                "DATE_INCOERENTI",
            ),
            (
                "<cl:datascadenza>2027-01-04",
                "<cl:datascadenza>2026-11-01",
                "DATE_INCOERENTI",
            ),
            (
                "<cl:tipocandidatura>01<",
                "<cl:tipocandidatura>02<",
                "MOTIVO_CHIUSURA_MANCANTE",
            ),
        ];
        for (from, to, code) in cases {
            let got = one(C20, from, to);
            assert!(
                got.contains(&code.to_string()),
                "{from} → {to}: expected {code}, got {got:?}"
            );
        }
        // A birth place that no longer existed on the date of birth: Czechoslovakia after 1992.
        let fixed = C38
            .replace(
                "<cl:idcomune>Z133</cl:idcomune>",
                "<cl:idcomune>Z105</cl:idcomune>",
            )
            .replace("<cl:datanascita>1991-03-14", "<cl:datanascita>1995-03-14");
        assert!(codes(&fixed, None).contains(&"COMUNE_SCONOSCIUTO".to_string()));
        let before = C38
            .replace(
                "<cl:idcomune>Z133</cl:idcomune>",
                "<cl:idcomune>Z105</cl:idcomune>",
            )
            .replace("<cl:datanascita>1991-03-14", "<cl:datanascita>1985-03-14");
        assert!(!codes(&before, None).contains(&"COMUNE_SCONOSCIUTO".to_string()));
        // The future: a birth after the day of receipt.
        let got = one(
            C20,
            "<cl:datanascita>1985-08-01",
            "<cl:datanascita>2027-08-01",
        );
        assert!(got.contains(&"NASCITA_FUTURA".to_string()), "{got:?}");
    }

    #[test]
    fn rettifica_and_chiusura_against_what_is_known() {
        let nothing = |_: Tipo, _: &str| false;
        let everything = |_: Tipo, _: &str| true;
        // Offline (no knowledge): not judged.
        assert_eq!(codes(C38_CHIUSURA, None), Vec::<String>::new());
        assert_eq!(
            codes(C38_CHIUSURA, Some(&nothing)),
            vec!["PRECEDENTE_SCONOSCIUTO"]
        );
        assert_eq!(codes(C38_CHIUSURA, Some(&everything)), Vec::<String>::new());
        // A new code already known.
        assert_eq!(codes(C38, Some(&everything)), vec!["CODICE_GIA_PRESENTE"]);
        assert_eq!(codes(C38, Some(&nothing)), Vec::<String>::new());
        // A chiusura without the code it closes, and one naming itself.
        let start = C38_CHIUSURA
            .find("    <cl:codicecandidaturaprecedente>")
            .unwrap();
        let end = C38_CHIUSURA
            .find("</cl:codicecandidaturaprecedente>\n")
            .unwrap()
            + "</cl:codicecandidaturaprecedente>\n".len();
        let senza = format!("{}{}", &C38_CHIUSURA[..start], &C38_CHIUSURA[end..]);
        assert_eq!(
            codes(&senza, Some(&everything)),
            vec!["PRECEDENTE_MANCANTE"]
        );
        let se_stessa = C38_CHIUSURA.replace(
            "<cl:codicecandidaturaprecedente>SILCO26200000000000000318",
            "<cl:codicecandidaturaprecedente>SILCO26200000000000000331",
        );
        assert_eq!(
            codes(&se_stessa, Some(&everything)),
            vec!["PRECEDENTE_UGUALE"]
        );
    }

    #[test]
    fn each_rule_of_the_vacancy_and_messaggio() {
        assert_eq!(codes(V20, None), Vec::<String>::new());
        for (from, to, code) in [
            ("<cl:ampiezza>02<", "<cl:ampiezza>07<", "AMPIEZZA"),
            ("<cl:idccnl>ND<", "<cl:idccnl>XY<", "CCNL"),
            (
                "<cl:idcomune>B157</cl:idcomune>",
                "<cl:idcomune>Q999</cl:idcomune>",
                "COMUNE_SCONOSCIUTO",
            ),
            (
                "<cl:email>personale@officine-zanardi.example</cl:email>",
                "<cl:email></cl:email>",
                "EMAIL_MANCANTE",
            ),
        ] {
            let got = one(V20, from, to);
            assert!(
                got.contains(&code.to_string()),
                "{from} → {to}: expected {code}, got {got:?}"
            );
        }
        assert_eq!(codes(M38, None), Vec::<String>::new());
        let start = M38.find("      <cl:codiceoffertacandidatura>").unwrap();
        let end = M38.find("</cl:codiceoffertacandidatura>\n").unwrap()
            + "</cl:codiceoffertacandidatura>\n".len();
        assert_eq!(
            codes(&format!("{}{}", &M38[..start], &M38[end..]), None),
            vec!["RIFERIMENTO_MANCANTE"]
        );
    }
}
