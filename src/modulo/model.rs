//! Typed models of the three moduli, read from a parsed document and written back (the
//! round trip parse → write → parse gives the same value). One model per modulo covers both
//! versions of the standard: fields present in only one version are optional, and the writer
//! emits what is there, in schema order. Values are kept as written (validation reads them).

use serde::{Deserialize, Serialize};

use crate::xml::{escape_text, Element};

/// Writes moduli with the `cl:` prefix bound to the modulo's namespace.
pub struct Scrittore {
    pub out: String,
}

impl Scrittore {
    fn open(&mut self, name: &str) {
        self.out.push_str("<cl:");
        self.out.push_str(name);
        self.out.push('>');
    }
    fn close(&mut self, name: &str) {
        self.out.push_str("</cl:");
        self.out.push_str(name);
        self.out.push('>');
    }
    fn leaf(&mut self, name: &str, v: &str) {
        self.open(name);
        self.out.push_str(&escape_text(v));
        self.close(name);
    }
}

/// A field's text. Most of a modulo's values (codes, dates, flags) fit in 24 bytes, which a
/// `CompactString` keeps without allocating: reading a 50 KB CV's model allocated once for
/// each of its some 600 values.
pub type Testo = compact_str::CompactString;

/// A field of a model: how it is read from its parent element and written back.
pub trait Campo: Sized {
    fn leggi(parent: &Element, name: &str) -> Self;
    fn scrivi(&self, w: &mut Scrittore, name: &str);
}

fn figli<'a>(parent: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    parent.children.iter().filter(move |c| c.local == name)
}

impl Campo for Testo {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name)
            .next()
            .map(|e| e.text.clone())
            .unwrap_or_default()
    }
    fn scrivi(&self, w: &mut Scrittore, name: &str) {
        w.leaf(name, self);
    }
}

impl Campo for Option<Testo> {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name).next().map(|e| e.text.clone())
    }
    fn scrivi(&self, w: &mut Scrittore, name: &str) {
        if let Some(v) = self {
            w.leaf(name, v);
        }
    }
}

impl Campo for Vec<Testo> {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name).map(|e| e.text.clone()).collect()
    }
    fn scrivi(&self, w: &mut Scrittore, name: &str) {
        for v in self {
            w.leaf(name, v);
        }
    }
}

/// Declares a group of a modulo: the struct, its reader and writer, and its field impls.
macro_rules! gruppo {
    ($(#[$m:meta])* $name:ident { $($field:ident : $ty:ty = $el:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name {
            $(pub $field: $ty,)*
        }
        impl $name {
            pub fn leggi(el: &Element) -> Self {
                $name { $($field: <$ty as Campo>::leggi(el, $el),)* }
            }
            pub fn scrivi(&self, w: &mut Scrittore) {
                $(<$ty as Campo>::scrivi(&self.$field, w, $el);)*
            }
        }
        impl Campo for $name {
            fn leggi(p: &Element, name: &str) -> Self {
                figli(p, name).next().map($name::leggi).unwrap_or_default()
            }
            fn scrivi(&self, w: &mut Scrittore, name: &str) {
                w.open(name);
                $name::scrivi(self, w);
                w.close(name);
            }
        }
        impl Campo for Option<$name> {
            fn leggi(p: &Element, name: &str) -> Self {
                figli(p, name).next().map($name::leggi)
            }
            fn scrivi(&self, w: &mut Scrittore, name: &str) {
                if let Some(v) = self {
                    Campo::scrivi(v, w, name);
                }
            }
        }
        impl Campo for Vec<$name> {
            fn leggi(p: &Element, name: &str) -> Self {
                figli(p, name).map($name::leggi).collect()
            }
            fn scrivi(&self, w: &mut Scrittore, name: &str) {
                for v in self {
                    Campo::scrivi(v, w, name);
                }
            }
        }
    };
}

pub mod candidatura {
    //! The Candidatura (a worker's CV), versions 2.0 and Rev.038.
    use super::*;

    gruppo! {
        Candidatura {
            lavoratore: Lavoratore = "Lavoratore",
            dati_curriculari: DatiCurriculari = "DatiCurriculari",
            dati_sistema: DatiSistema = "DatiSistema",
        }
    }

    gruppo! {
        Lavoratore {
            dati_anagrafici: DatiAnagrafici = "DatiAnagrafici",
            domicilio: Domicilio = "Domicilio",
            recapiti: Recapiti = "Recapiti",
        }
    }

    gruppo! {
        DatiCurriculari {
            esperienze_lavorative: Vec<EsperienzeLavorative> = "EsperienzeLavorative",
            istruzione: Vec<Istruzione> = "Istruzione",
            formazione: Vec<Formazione> = "Formazione",
            lingue: Vec<Lingue> = "Lingue",
            conoscenze_informatiche: Option<ConoscenzeInformatiche> = "ConoscenzeInformatiche",
            abilitazioni_patenti: Option<AbilitazioniPatenti> = "AbilitazioniPatenti",
            professione_desiderata_disponibilita: Vec<ProfessioneDesiderataDisponibilita> = "ProfessioneDesiderataDisponibilita",
            altre_info: Option<AltreInfo> = "AltreInfo",
        }
    }

    gruppo! {
        DatiSistema {
            ambitodiffusione: Vec<Testo> = "ambitodiffusione",
            datainserimento: Testo = "datainserimento",
            datascadenza: Option<Testo> = "datascadenza",
            idintermediario: Option<Testo> = "idintermediario",
            codicefiscaleintermediario: Option<Testo> = "codicefiscaleintermediario",
            denominazioneintermediario: Option<Testo> = "denominazioneintermediario",
            indirizzo: Option<Testo> = "indirizzo",
            idcomune: Option<Testo> = "idcomune",
            cap: Option<Testo> = "cap",
            telefono: Option<Testo> = "telefono",
            fax: Option<Testo> = "fax",
            email: Option<Testo> = "email",
            visibilita: Option<Testo> = "visibilita",
            tipocandidatura: Testo = "tipocandidatura",
            motivochiusura: Option<Testo> = "motivochiusura",
            codicecandidatura: Testo = "codicecandidatura",
            codicecandidaturaprecedente: Option<Testo> = "codicecandidaturaprecedente",
            percettore: Option<Testo> = "percettore",
        }
    }

    gruppo! {
        DatiAnagrafici {
            codicefiscale: Testo = "codicefiscale",
            cognome: Testo = "cognome",
            nome: Testo = "nome",
            sesso: Testo = "sesso",
            datanascita: Testo = "datanascita",
            idcomune: Testo = "idcomune",
            idcittadinanza: Testo = "idcittadinanza",
        }
    }

    gruppo! {
        Domicilio {
            idcomune: Testo = "idcomune",
            cap: Option<Testo> = "cap",
        }
    }

    gruppo! {
        Recapiti {
            indirizzo: Option<Testo> = "indirizzo",
            telefono: Option<Testo> = "telefono",
            cellulare: Option<Testo> = "cellulare",
            fax: Option<Testo> = "fax",
            email: Testo = "email",
        }
    }

    gruppo! {
        EsperienzeLavorative {
            tipoesperienza: Option<Testo> = "tipoesperienza",
            qualificasvolta: Option<Testo> = "qualificasvolta",
            descrqualificasvolta: Option<Testo> = "descrqualificasvolta",
            principalimansioni: Option<Testo> = "principalimansioni",
            nomedatore: Option<Testo> = "nomedatore",
            datainizio: Option<Testo> = "datainizio",
            datafine: Option<Testo> = "datafine",
            indirizzodatore: Option<Testo> = "indirizzodatore",
        }
    }

    gruppo! {
        Istruzione {
            titolostudio: Testo = "titolostudio",
            descrizioneistruzione: Option<Testo> = "descrizioneistruzione",
            votazione: Option<Testo> = "votazione",
        }
    }

    gruppo! {
        Formazione {
            titolocorso: Option<Testo> = "titolocorso",
            idsede: Option<Testo> = "idsede",
            durata: Option<Testo> = "durata",
            idtipologiadurata: Option<Testo> = "idtipologiadurata",
            idattestazione: Option<Testo> = "idattestazione",
            idqualifica: Option<Testo> = "idqualifica",
            descrqualifica: Option<Testo> = "descrqualifica",
        }
    }

    gruppo! {
        Lingue {
            idlingua: Option<Testo> = "idlingua",
            idlivelloletto: Option<Testo> = "idlivelloletto",
            idlivelloscritto: Option<Testo> = "idlivelloscritto",
            idlivelloparlato: Option<Testo> = "idlivelloparlato",
        }
    }

    gruppo! {
        ConoscenzeInformatiche {
            tipoconoscenza: Option<Testo> = "tipoconoscenza",
            specifiche: Option<Testo> = "specifiche",
        }
    }

    gruppo! {
        AbilitazioniPatenti {
            idalbo: Vec<Testo> = "idalbo",
            idpatenteguida: Vec<Testo> = "idpatenteguida",
            idpatentino: Vec<Testo> = "idpatentino",
        }
    }

    gruppo! {
        ProfessioneDesiderataDisponibilita {
            idprofessione: Testo = "idprofessione",
            descrprofessione: Testo = "descrprofessione",
            descrizioneprofessione: Option<Testo> = "descrizioneprofessione",
            esperienzasettore: Option<Testo> = "esperienzasettore",
            descrizioneesperienza: Option<Testo> = "descrizioneesperienza",
            trasferte: Option<Testo> = "trasferte",
            idmodalitalavorativa: Vec<Testo> = "idmodalitalavorativa",
            idtipologiacontratto: Vec<Testo> = "idtipologiacontratto",
            mezzitrasporto: Option<Testo> = "mezzitrasporto",
            disponibilitaterritoriale: Vec<Testo> = "disponibilitaterritoriale",
        }
    }

    gruppo! {
        AltreInfo {
            listespeciali: Option<Testo> = "listespeciali",
        }
    }
}

pub mod vacancy {
    //! The Vacancy ("Azienda alla ricerca di personale"), versions 2.0, Rev.038 and Rev.064.
    use super::*;

    // `altre_informazioni`: Rev.064 only.
    gruppo! {
        Vacancy {
            datore_lavoro: DatoreLavoro = "DatoreLavoro",
            richiesta: Richiesta = "Richiesta",
            altre_informazioni: Option<AltreInformazioni> = "AltreInformazioni",
            dati_sistema: DatiSistema = "DatiSistema",
        }
    }

    gruppo! {
        /// Rev.064: the nulla osta (SI/NO).
        AltreInformazioni {
            nulla_osta: Testo = "N.O.",
        }
    }

    gruppo! {
        DatoreLavoro {
            dati_anagrafici: DatiAnagrafici = "DatiAnagrafici",
            dati_contatto: DatiContatto = "DatiContatto",
        }
    }

    gruppo! {
        Richiesta {
            profilo_richiesto: ProfiloRichiesto = "ProfiloRichiesto",
            istruzione_formazione: IstruzioneFormazione = "IstruzioneFormazione",
            condizioni_offerte: CondizioniOfferte = "CondizioniOfferte",
            durata_richiesta: DurataRichiesta = "DurataRichiesta",
        }
    }

    gruppo! {
        DatiSistema {
            intermediario: Option<Testo> = "intermediario",
            codicefiscaleintermediario: Option<Testo> = "codicefiscaleintermediario",
            denominazioneintermediario: Option<Testo> = "denominazioneintermediario",
            indirizzo: Option<Testo> = "indirizzo",
            idcomune: Option<Testo> = "idcomune",
            cap: Option<Testo> = "cap",
            telefono: Option<Testo> = "telefono",
            fax: Option<Testo> = "fax",
            email: Option<Testo> = "email",
            visibilita: Option<Testo> = "visibilita",
            tipoofferta: Testo = "tipoofferta",
            motivochiusura: Option<Testo> = "motivochiusura",
            codiceofferta: Testo = "codiceofferta",
            codiceoffertaprecedente: Option<Testo> = "codiceoffertaprecedente",
            codiceoffertaintermediario: Option<Testo> = "codiceoffertaintermediario",
        }
    }

    gruppo! {
        DatiAnagrafici {
            codicefiscale: Option<Testo> = "codicefiscale",
            denominazione: Testo = "denominazione",
            settore: Testo = "settore",
            ampiezza: Option<Testo> = "ampiezza",
            web: Option<Testo> = "web",
        }
    }

    gruppo! {
        DatiContatto {
            indirizzo: Option<Testo> = "indirizzo",
            idcomune: Testo = "idcomune",
            cap: Option<Testo> = "cap",
            telefono: Option<Testo> = "telefono",
            fax: Option<Testo> = "fax",
            email: Testo = "email",
        }
    }

    gruppo! {
        ProfiloRichiesto {
            numerolavoratori: Testo = "numerolavoratori",
            idprofessione: Testo = "idprofessione",
            descrprofessione: Testo = "descrprofessione",
            descrizionericerca: Testo = "descrizionericerca",
            esperienzarichiesta: Option<Testo> = "esperienzarichiesta",
            descrizioneesperienza: Option<Testo> = "descrizioneesperienza",
        }
    }

    gruppo! {
        IstruzioneFormazione {
            titolostudio: Vec<TitoloStudio> = "titolostudio",
            idalbo: Option<Testo> = "idalbo",
            lingua: Vec<Lingua> = "Lingua",
            conoscenzeinformatiche: Option<Testo> = "conoscenzeinformatiche",
            altrecapacita: Option<Testo> = "altrecapacita",
            trasferte: Option<Testo> = "trasferte",
            idpatenteguida: Vec<Testo> = "idpatenteguida",
            idmezzitrasporto: Option<Testo> = "idmezzitrasporto",
            idpatentino: Vec<Testo> = "idpatentino",
            idlistespeciali: Vec<Testo> = "idlistespeciali",
            ulteriorirequisiti: Option<Testo> = "ulteriorirequisiti",
        }
    }

    gruppo! {
        CondizioniOfferte {
            idcomune: Testo = "idcomune",
            idtipologiacontratto: Testo = "idtipologiacontratto",
            durata: Option<Testo> = "durata",
            idccnl: Option<Testo> = "idccnl",
            idlivellocontrattuale: Option<Testo> = "idlivellocontrattuale",
            idmodalitalavoro: Option<Testo> = "idmodalitalavoro",
            retribuzioneannualorda: Option<Testo> = "retribuzioneannualorda",
            ulterioricondizioni: Option<Testo> = "ulterioricondizioni",
        }
    }

    gruppo! {
        DurataRichiesta {
            datapubblicazione: Testo = "datapubblicazione",
            datascadenza: Option<Testo> = "datascadenza",
        }
    }

    gruppo! {
        TitoloStudio {
            idtitolostudio: Testo = "idtitolostudio",
            descrizionestudio: Option<Testo> = "descrizionestudio",
        }
    }

    gruppo! {
        Lingua {
            idlingua: Testo = "idlingua",
            idlivelloletto: Option<Testo> = "idlivelloletto",
            idlivelloscritto: Option<Testo> = "idlivelloscritto",
            idlivelloparlato: Option<Testo> = "idlivelloparlato",
        }
    }
}

pub mod messaggio {
    //! The Messaggio (a contact between the parties of a candidatura or vacancy), Rev.038.
    use super::*;

    gruppo! {
        Messaggio {
            mittente: Mittente = "Mittente",
            destinatario: Destinatario = "Destinatario",
            corpo: Corpo = "Corpo",
            dati_sistema: DatiSistema = "DatiSistema",
        }
    }

    gruppo! {
        Mittente {
            tiposoggetto: Testo = "tiposoggetto",
            interlocutore: Interlocutore = "Interlocutore",
        }
    }

    gruppo! {
        Destinatario {
            interlocutore: Interlocutore = "Interlocutore",
        }
    }

    gruppo! {
        Corpo {
            testomessaggio: Testo = "testomessaggio",
            contattopositivo: Option<Testo> = "contattopositivo",
        }
    }

    gruppo! {
        DatiSistema {
            tipocomunicazione: Testo = "tipocomunicazione",
            data: Testo = "data",
            codicemessaggio: Testo = "codicemessaggio",
            codicemessaggioprecedente: Option<Testo> = "codicemessaggioprecedente",
        }
    }

    gruppo! {
        Interlocutore {
            codicefiscale: Option<Testo> = "codicefiscale",
            codiceintermediario: Option<Testo> = "codiceintermediario",
            denominazione: Option<Testo> = "denominazione",
            indirizzo: Option<Testo> = "indirizzo",
            comune: Option<Testo> = "comune",
            telefono: Option<Testo> = "telefono",
            email: Option<Testo> = "email",
            codiceoffertacandidatura: Option<Testo> = "codiceoffertacandidatura",
        }
    }
}

/// The three moduli.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tipo {
    Candidatura,
    Vacancy,
    Messaggio,
}

impl Tipo {
    pub const ALL: [Tipo; 3] = [Tipo::Candidatura, Tipo::Vacancy, Tipo::Messaggio];

    pub fn namespace(self) -> &'static str {
        match self {
            Tipo::Candidatura => "http://servizi.lavoro.gov.it/candidatura",
            Tipo::Vacancy => "http://servizi.lavoro.gov.it/vacancy",
            Tipo::Messaggio => "http://servizi.lavoro.gov.it/messaggio",
        }
    }

    /// The root element's name.
    pub fn radice(self) -> &'static str {
        match self {
            Tipo::Candidatura => "Candidatura",
            Tipo::Vacancy => "Vacancy",
            Tipo::Messaggio => "Messaggio",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tipo::Candidatura => "candidatura",
            Tipo::Vacancy => "vacancy",
            Tipo::Messaggio => "messaggio",
        }
    }

    /// The kind with its article, as an answer names it ("la candidatura …").
    pub fn con_articolo(self) -> &'static str {
        match self {
            Tipo::Candidatura => "la candidatura",
            Tipo::Vacancy => "l'offerta",
            Tipo::Messaggio => "il messaggio",
        }
    }

    /// The kind of a document, from its root element.
    pub fn di(root: &Element) -> Option<Tipo> {
        Tipo::ALL
            .into_iter()
            .find(|t| root.is(t.namespace(), t.radice()))
    }
}

/// A modulo of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one modulo at a time; boxing would only add an allocation"
)]
#[serde(tag = "tipo", rename_all = "lowercase")]
pub enum Modulo {
    Candidatura(candidatura::Candidatura),
    Vacancy(vacancy::Vacancy),
    Messaggio(messaggio::Messaggio),
}

impl Modulo {
    /// Reads a modulo from its root element (which should have passed schema validation).
    pub fn leggi(root: &Element) -> Option<Modulo> {
        Some(match Tipo::di(root)? {
            Tipo::Candidatura => Modulo::Candidatura(candidatura::Candidatura::leggi(root)),
            Tipo::Vacancy => Modulo::Vacancy(vacancy::Vacancy::leggi(root)),
            Tipo::Messaggio => Modulo::Messaggio(messaggio::Messaggio::leggi(root)),
        })
    }

    pub fn tipo(&self) -> Tipo {
        match self {
            Modulo::Candidatura(_) => Tipo::Candidatura,
            Modulo::Vacancy(_) => Tipo::Vacancy,
            Modulo::Messaggio(_) => Tipo::Messaggio,
        }
    }

    /// The modulo's own code (codicecandidatura, codiceofferta, codicemessaggio), trimmed.
    pub fn codice(&self) -> &str {
        match self {
            Modulo::Candidatura(c) => c.dati_sistema.codicecandidatura.trim(),
            Modulo::Vacancy(v) => v.dati_sistema.codiceofferta.trim(),
            Modulo::Messaggio(m) => m.dati_sistema.codicemessaggio.trim(),
        }
    }

    /// The code of the communication this one rectifies or closes (Rev.038), trimmed.
    pub fn precedente(&self) -> Option<&str> {
        match self {
            Modulo::Candidatura(c) => c.dati_sistema.codicecandidaturaprecedente.as_deref(),
            Modulo::Vacancy(v) => v.dati_sistema.codiceoffertaprecedente.as_deref(),
            Modulo::Messaggio(m) => m.dati_sistema.codicemessaggioprecedente.as_deref(),
        }
        .map(str::trim)
        .filter(|s| !s.is_empty())
    }

    /// Its validity's dates as written: the start (`datainserimento`, `datapubblicazione`) and
    /// the expiry (`datascadenza`); None for a Messaggio.
    pub fn validita(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Modulo::Candidatura(c) => Some((
                c.dati_sistema.datainserimento.as_str(),
                c.dati_sistema.datascadenza.as_deref(),
            )),
            Modulo::Vacancy(v) => {
                let d = &v.richiesta.durata_richiesta;
                Some((d.datapubblicazione.as_str(), d.datascadenza.as_deref()))
            }
            Modulo::Messaggio(_) => None,
        }
    }

    /// The expiry field, to write it; None for a Messaggio.
    pub fn datascadenza_mut(&mut self) -> Option<&mut Option<Testo>> {
        match self {
            Modulo::Candidatura(c) => Some(&mut c.dati_sistema.datascadenza),
            Modulo::Vacancy(v) => Some(&mut v.richiesta.durata_richiesta.datascadenza),
            Modulo::Messaggio(_) => None,
        }
    }

    /// The whole document, with the `cl:` prefix.
    pub fn scrivi(&self) -> String {
        let t = self.tipo();
        let mut w = Scrittore {
            out: String::with_capacity(4096),
        };
        w.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cl:");
        w.out.push_str(t.radice());
        w.out.push_str(" xmlns:cl=\"");
        w.out.push_str(t.namespace());
        w.out.push_str("\">");
        match self {
            Modulo::Candidatura(c) => c.scrivi(&mut w),
            Modulo::Vacancy(v) => v.scrivi(&mut w),
            Modulo::Messaggio(m) => m.scrivi(&mut w),
        }
        w.close(t.radice());
        w.out.push('\n');
        w.out
    }
}
