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

/// A field of a model: how it is read from its parent element and written back.
pub trait Campo: Sized {
    fn leggi(parent: &Element, name: &str) -> Self;
    fn scrivi(&self, w: &mut Scrittore, name: &str);
}

fn figli<'a>(parent: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    parent.children.iter().filter(move |c| c.local == name)
}

impl Campo for String {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name)
            .next()
            .map(|e| String::from(e.text.as_str()))
            .unwrap_or_default()
    }
    fn scrivi(&self, w: &mut Scrittore, name: &str) {
        w.leaf(name, self);
    }
}

impl Campo for Option<String> {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name).next().map(|e| String::from(e.text.as_str()))
    }
    fn scrivi(&self, w: &mut Scrittore, name: &str) {
        if let Some(v) = self {
            w.leaf(name, v);
        }
    }
}

impl Campo for Vec<String> {
    fn leggi(p: &Element, name: &str) -> Self {
        figli(p, name)
            .map(|e| String::from(e.text.as_str()))
            .collect()
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
            ambitodiffusione: Vec<String> = "ambitodiffusione",
            datainserimento: String = "datainserimento",
            datascadenza: Option<String> = "datascadenza",
            idintermediario: Option<String> = "idintermediario",
            codicefiscaleintermediario: Option<String> = "codicefiscaleintermediario",
            denominazioneintermediario: Option<String> = "denominazioneintermediario",
            indirizzo: Option<String> = "indirizzo",
            idcomune: Option<String> = "idcomune",
            cap: Option<String> = "cap",
            telefono: Option<String> = "telefono",
            fax: Option<String> = "fax",
            email: Option<String> = "email",
            visibilita: Option<String> = "visibilita",
            tipocandidatura: String = "tipocandidatura",
            motivochiusura: Option<String> = "motivochiusura",
            codicecandidatura: String = "codicecandidatura",
            codicecandidaturaprecedente: Option<String> = "codicecandidaturaprecedente",
            percettore: Option<String> = "percettore",
        }
    }

    gruppo! {
        DatiAnagrafici {
            codicefiscale: String = "codicefiscale",
            cognome: String = "cognome",
            nome: String = "nome",
            sesso: String = "sesso",
            datanascita: String = "datanascita",
            idcomune: String = "idcomune",
            idcittadinanza: String = "idcittadinanza",
        }
    }

    gruppo! {
        Domicilio {
            idcomune: String = "idcomune",
            cap: Option<String> = "cap",
        }
    }

    gruppo! {
        Recapiti {
            indirizzo: Option<String> = "indirizzo",
            telefono: Option<String> = "telefono",
            cellulare: Option<String> = "cellulare",
            fax: Option<String> = "fax",
            email: String = "email",
        }
    }

    gruppo! {
        EsperienzeLavorative {
            tipoesperienza: Option<String> = "tipoesperienza",
            qualificasvolta: Option<String> = "qualificasvolta",
            descrqualificasvolta: Option<String> = "descrqualificasvolta",
            principalimansioni: Option<String> = "principalimansioni",
            nomedatore: Option<String> = "nomedatore",
            datainizio: Option<String> = "datainizio",
            datafine: Option<String> = "datafine",
            indirizzodatore: Option<String> = "indirizzodatore",
        }
    }

    gruppo! {
        Istruzione {
            titolostudio: String = "titolostudio",
            descrizioneistruzione: Option<String> = "descrizioneistruzione",
            votazione: Option<String> = "votazione",
        }
    }

    gruppo! {
        Formazione {
            titolocorso: Option<String> = "titolocorso",
            idsede: Option<String> = "idsede",
            durata: Option<String> = "durata",
            idtipologiadurata: Option<String> = "idtipologiadurata",
            idattestazione: Option<String> = "idattestazione",
            idqualifica: Option<String> = "idqualifica",
            descrqualifica: Option<String> = "descrqualifica",
        }
    }

    gruppo! {
        Lingue {
            idlingua: Option<String> = "idlingua",
            idlivelloletto: Option<String> = "idlivelloletto",
            idlivelloscritto: Option<String> = "idlivelloscritto",
            idlivelloparlato: Option<String> = "idlivelloparlato",
        }
    }

    gruppo! {
        ConoscenzeInformatiche {
            tipoconoscenza: Option<String> = "tipoconoscenza",
            specifiche: Option<String> = "specifiche",
        }
    }

    gruppo! {
        AbilitazioniPatenti {
            idalbo: Vec<String> = "idalbo",
            idpatenteguida: Vec<String> = "idpatenteguida",
            idpatentino: Vec<String> = "idpatentino",
        }
    }

    gruppo! {
        ProfessioneDesiderataDisponibilita {
            idprofessione: String = "idprofessione",
            descrprofessione: String = "descrprofessione",
            descrizioneprofessione: Option<String> = "descrizioneprofessione",
            esperienzasettore: Option<String> = "esperienzasettore",
            descrizioneesperienza: Option<String> = "descrizioneesperienza",
            trasferte: Option<String> = "trasferte",
            idmodalitalavorativa: Vec<String> = "idmodalitalavorativa",
            idtipologiacontratto: Vec<String> = "idtipologiacontratto",
            mezzitrasporto: Option<String> = "mezzitrasporto",
            disponibilitaterritoriale: Vec<String> = "disponibilitaterritoriale",
        }
    }

    gruppo! {
        AltreInfo {
            listespeciali: Option<String> = "listespeciali",
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
            nulla_osta: String = "N.O.",
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
            intermediario: Option<String> = "intermediario",
            codicefiscaleintermediario: Option<String> = "codicefiscaleintermediario",
            denominazioneintermediario: Option<String> = "denominazioneintermediario",
            indirizzo: Option<String> = "indirizzo",
            idcomune: Option<String> = "idcomune",
            cap: Option<String> = "cap",
            telefono: Option<String> = "telefono",
            fax: Option<String> = "fax",
            email: Option<String> = "email",
            visibilita: Option<String> = "visibilita",
            tipoofferta: String = "tipoofferta",
            motivochiusura: Option<String> = "motivochiusura",
            codiceofferta: String = "codiceofferta",
            codiceoffertaprecedente: Option<String> = "codiceoffertaprecedente",
            codiceoffertaintermediario: Option<String> = "codiceoffertaintermediario",
        }
    }

    gruppo! {
        DatiAnagrafici {
            codicefiscale: Option<String> = "codicefiscale",
            denominazione: String = "denominazione",
            settore: String = "settore",
            ampiezza: Option<String> = "ampiezza",
            web: Option<String> = "web",
        }
    }

    gruppo! {
        DatiContatto {
            indirizzo: Option<String> = "indirizzo",
            idcomune: String = "idcomune",
            cap: Option<String> = "cap",
            telefono: Option<String> = "telefono",
            fax: Option<String> = "fax",
            email: String = "email",
        }
    }

    gruppo! {
        ProfiloRichiesto {
            numerolavoratori: String = "numerolavoratori",
            idprofessione: String = "idprofessione",
            descrprofessione: String = "descrprofessione",
            descrizionericerca: String = "descrizionericerca",
            esperienzarichiesta: Option<String> = "esperienzarichiesta",
            descrizioneesperienza: Option<String> = "descrizioneesperienza",
        }
    }

    gruppo! {
        IstruzioneFormazione {
            titolostudio: Vec<TitoloStudio> = "titolostudio",
            idalbo: Option<String> = "idalbo",
            lingua: Vec<Lingua> = "Lingua",
            conoscenzeinformatiche: Option<String> = "conoscenzeinformatiche",
            altrecapacita: Option<String> = "altrecapacita",
            trasferte: Option<String> = "trasferte",
            idpatenteguida: Vec<String> = "idpatenteguida",
            idmezzitrasporto: Option<String> = "idmezzitrasporto",
            idpatentino: Vec<String> = "idpatentino",
            idlistespeciali: Vec<String> = "idlistespeciali",
            ulteriorirequisiti: Option<String> = "ulteriorirequisiti",
        }
    }

    gruppo! {
        CondizioniOfferte {
            idcomune: String = "idcomune",
            idtipologiacontratto: String = "idtipologiacontratto",
            durata: Option<String> = "durata",
            idccnl: Option<String> = "idccnl",
            idlivellocontrattuale: Option<String> = "idlivellocontrattuale",
            idmodalitalavoro: Option<String> = "idmodalitalavoro",
            retribuzioneannualorda: Option<String> = "retribuzioneannualorda",
            ulterioricondizioni: Option<String> = "ulterioricondizioni",
        }
    }

    gruppo! {
        DurataRichiesta {
            datapubblicazione: String = "datapubblicazione",
            datascadenza: Option<String> = "datascadenza",
        }
    }

    gruppo! {
        TitoloStudio {
            idtitolostudio: String = "idtitolostudio",
            descrizionestudio: Option<String> = "descrizionestudio",
        }
    }

    gruppo! {
        Lingua {
            idlingua: String = "idlingua",
            idlivelloletto: Option<String> = "idlivelloletto",
            idlivelloscritto: Option<String> = "idlivelloscritto",
            idlivelloparlato: Option<String> = "idlivelloparlato",
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
            tiposoggetto: String = "tiposoggetto",
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
            testomessaggio: String = "testomessaggio",
            contattopositivo: Option<String> = "contattopositivo",
        }
    }

    gruppo! {
        DatiSistema {
            tipocomunicazione: String = "tipocomunicazione",
            data: String = "data",
            codicemessaggio: String = "codicemessaggio",
            codicemessaggioprecedente: Option<String> = "codicemessaggioprecedente",
        }
    }

    gruppo! {
        Interlocutore {
            codicefiscale: Option<String> = "codicefiscale",
            codiceintermediario: Option<String> = "codiceintermediario",
            denominazione: Option<String> = "denominazione",
            indirizzo: Option<String> = "indirizzo",
            comune: Option<String> = "comune",
            telefono: Option<String> = "telefono",
            email: Option<String> = "email",
            codiceoffertacandidatura: Option<String> = "codiceoffertacandidatura",
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
    pub fn datascadenza_mut(&mut self) -> Option<&mut Option<String>> {
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
