//! The SPCoop busta e-Gov 1.1: model, Identificatore, reader, validation and writer.
//! Pure code: no I/O, no clock (time is always a parameter).

pub mod diagnostico;
pub mod id;
pub mod manifest;
pub mod reader;
pub mod risposte;
pub mod time;
pub mod traccia;
pub mod validate;
pub mod writer;

use serde::{Deserialize, Serialize};

pub use id::Identificatore;

pub const NS_BUSTA: &str = "http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/";
pub const NS_ECCEZIONE: &str = "http://www.cnipa.it/schemas/2003/eGovIT/Exception1_0/";
pub const ACTOR: &str = "http://www.cnipa.it/eGov_it/portadominio";
pub use crate::xml::NS_WSU;

/// `contestoCodifica` of validation eccezioni.
pub const CONTESTO_VALIDAZIONE: &str = "ErroreIntestazioneMessaggioSPCoop";
/// `contestoCodifica` of processing eccezioni.
pub const CONTESTO_PROCESSAMENTO: &str = "ErroreProcessamentoMessaggioSPCoop";

/// The faultstring of an error busta for a validation error (busta-egov.md §2.2).
pub const FAULT_VALIDAZIONE: &str = "EGOV_IT_001 - Formato Busta non corretto";
/// The faultstring of an error busta for a processing error.
pub const FAULT_PROCESSAMENTO: &str = "EGOV_IT_300 - Errore nel processamento del messaggio SPCoop";

/// The EGOV_IT exception codes of Busta.xsd `codiceEccezioneType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Codice(pub u16);

impl Codice {
    pub const FORMATO_BUSTA: Codice = Codice(1);
    pub const FORMATO_INTESTAZIONE: Codice = Codice(2);
    pub const FORMATO_CORPO: Codice = Codice(3);
    pub const CONTENUTO_INTESTAZIONE: Codice = Codice(100);
    pub const MITTENTE: Codice = Codice(101);
    pub const DESTINATARIO: Codice = Codice(102);
    pub const PROFILO_COLLABORAZIONE: Codice = Codice(103);
    pub const COLLABORAZIONE: Codice = Codice(104);
    pub const SERVIZIO: Codice = Codice(105);
    pub const AZIONE: Codice = Codice(106);
    pub const ID_NON_DEFINITO: Codice = Codice(107);
    pub const ORA_REGISTRAZIONE: Codice = Codice(108);
    pub const RIFERIMENTO_NON_DEFINITO: Codice = Codice(109);
    pub const ID_NON_VALIDO: Codice = Codice(110);
    pub const RIFERIMENTO_NON_VALIDO: Codice = Codice(111);
    pub const SCADENZA: Codice = Codice(112);
    pub const PROFILO_TRASMISSIONE: Codice = Codice(113);
    pub const SEQUENZA: Codice = Codice(114);
    pub const LISTA_RISCONTRI: Codice = Codice(115);
    pub const LISTA_TRASMISSIONI: Codice = Codice(116);
    pub const FIRMA: Codice = Codice(117);
    pub const RIFERIMENTO_ALLEGATO: Codice = Codice(118);
    pub const ALLEGATO_NON_PRESENTE: Codice = Codice(119);
    pub const ALLEGATO_NON_DEFINITO: Codice = Codice(120);
    pub const SICUREZZA: Codice = Codice(200);
    pub const MITTENTE_NON_AUTORIZZATO: Codice = Codice(201);
    pub const FIRMA_XML: Codice = Codice(202);
    pub const FIRMA_PKCS7: Codice = Codice(203);
    pub const PROCESSAMENTO: Codice = Codice(300);
    pub const SCADUTO: Codice = Codice(301);
    pub const TRASPARENZA: Codice = Codice(400);
    pub const TRASPARENZA_NON_SUPPORTATA: Codice = Codice(401);
    pub const TRASPARENZA_NON_GESTIBILE: Codice = Codice(402);

    /// The text of the code in Busta.xsd.
    pub fn descrizione(self) -> &'static str {
        match self.0 {
            1 => "Formato Busta non corretto",
            2 => "Formato Intestazione non corretto",
            3 => "Formato Corpo non corretto",
            100 => "Errore nel contenuto della Intestazione della busta",
            101 => "Identificativo della parte Mittente sconosciuto",
            102 => "Identificativo della parte Destinatario sconosciuto",
            103 => "Profilo di Collaborazione non valido",
            104 => "Identificativo di Collaborazione non valido",
            105 => "Servizio sconosciuto",
            106 => "Azione sconosciuta",
            107 => "Identificatore messaggio non definito",
            108 => "OraRegistrazione messaggio non valida",
            109 => "Riferimento messaggio non definito",
            110 => "Identificatore messaggio non valido",
            111 => "RiferimentoMessaggio non valido",
            112 => "Scadenza messaggio non valida",
            113 => "Profilo di Trasmissione non valido",
            114 => "Sequenza non valida",
            115 => "ListaRiscontri non valida",
            116 => "ListaTrasmissioni non valida",
            117 => "Firma non valida",
            118 => "Riferimento all'allegato non valido",
            119 => "Allegato non presente",
            120 => "Allegato non definito",
            200 => "Errore nelle politiche di sicurezza del Servizio",
            201 => "Mittente non Autorizzato",
            202 => "Firma XML non valida",
            203 => "Firma PKCS#7 non valida",
            300 => "Errore nel processamento del messaggio",
            301 => "Messaggio scaduto",
            400 => "Errore nella gestione della trasparenza temporale",
            401 => "Trasparenza temporale non supportata",
            402 => "Trasparenza temporale non gestibile: attributi del Profilo di trasmissione non validi",
            _ => "Codice sconosciuto",
        }
    }

    pub fn is_known(self) -> bool {
        self.descrizione() != "Codice sconosciuto"
    }

    /// `EGOV_IT_101`.
    pub fn as_string(self) -> String {
        format!("EGOV_IT_{:03}", self.0)
    }

    pub fn parse(s: &str) -> Option<Codice> {
        let n = s.strip_prefix("EGOV_IT_")?;
        if n.len() != 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let c = Codice(n.parse().ok()?);
        c.is_known().then_some(c)
    }

    /// The code a partner's faultstring starts with (`EGOV_IT_001 - …`): how a bare Fault on
    /// the wire names its eccezione.
    pub fn in_faultstring(s: &str) -> Option<Codice> {
        s.trim().get(..11).and_then(Codice::parse)
    }
}

impl std::fmt::Display for Codice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EGOV_IT_{:03}", self.0)
    }
}

impl Serialize for Codice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for Codice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Codice::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown code {s}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rilevanza {
    Info,
    Lieve,
    Grave,
}

impl Rilevanza {
    pub fn as_str(self) -> &'static str {
        match self {
            Rilevanza::Info => "INFO",
            Rilevanza::Lieve => "LIEVE",
            Rilevanza::Grave => "GRAVE",
        }
    }
    pub fn parse(s: &str) -> Option<Rilevanza> {
        match s {
            "INFO" => Some(Rilevanza::Info),
            "LIEVE" => Some(Rilevanza::Lieve),
            "GRAVE" => Some(Rilevanza::Grave),
            _ => None,
        }
    }
}

/// One exception, as carried in `ListaEccezioni`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eccezione {
    pub codice: Codice,
    pub rilevanza: Rilevanza,
    pub posizione: String,
    pub contesto: String,
}

impl Eccezione {
    pub fn grave(codice: Codice, posizione: impl Into<String>) -> Self {
        Eccezione {
            codice,
            rilevanza: Rilevanza::Grave,
            posizione: posizione.into(),
            contesto: CONTESTO_VALIDAZIONE.to_string(),
        }
    }
    pub fn info(codice: Codice, posizione: impl Into<String>) -> Self {
        Eccezione {
            rilevanza: Rilevanza::Info,
            ..Eccezione::grave(codice, posizione)
        }
    }
    pub fn processamento(posizione: impl Into<String>) -> Self {
        Eccezione {
            contesto: CONTESTO_PROCESSAMENTO.to_string(),
            ..Eccezione::grave(Codice::PROCESSAMENTO, posizione)
        }
    }
    pub fn is_grave(&self) -> bool {
        self.rilevanza == Rilevanza::Grave
    }
}

impl std::fmt::Display for Eccezione {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.codice,
            self.rilevanza.as_str(),
            self.posizione,
            self.codice.descrizione()
        )
    }
}

/// ProfiloCollaborazione values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profilo {
    #[serde(rename = "EGOV_IT_MessaggioSingoloOneWay")]
    OneWay,
    #[serde(rename = "EGOV_IT_ServizioSincrono")]
    Sincrono,
    #[serde(rename = "EGOV_IT_ServizioAsincronoSimmetrico")]
    AsincronoSimmetrico,
    #[serde(rename = "EGOV_IT_ServizioAsincronoAsimmetrico")]
    AsincronoAsimmetrico,
}

impl Profilo {
    pub fn as_str(self) -> &'static str {
        match self {
            Profilo::OneWay => "EGOV_IT_MessaggioSingoloOneWay",
            Profilo::Sincrono => "EGOV_IT_ServizioSincrono",
            Profilo::AsincronoSimmetrico => "EGOV_IT_ServizioAsincronoSimmetrico",
            Profilo::AsincronoAsimmetrico => "EGOV_IT_ServizioAsincronoAsimmetrico",
        }
    }
    pub fn parse(s: &str) -> Option<Profilo> {
        match s {
            "EGOV_IT_MessaggioSingoloOneWay" => Some(Profilo::OneWay),
            "EGOV_IT_ServizioSincrono" => Some(Profilo::Sincrono),
            "EGOV_IT_ServizioAsincronoSimmetrico" => Some(Profilo::AsincronoSimmetrico),
            "EGOV_IT_ServizioAsincronoAsimmetrico" => Some(Profilo::AsincronoAsimmetrico),
            _ => None,
        }
    }
    pub fn is_async(self) -> bool {
        matches!(
            self,
            Profilo::AsincronoSimmetrico | Profilo::AsincronoAsimmetrico
        )
    }
}

/// `tempo` attribute of the registration times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tempo {
    #[serde(rename = "EGOV_IT_Locale")]
    Locale,
    #[serde(rename = "EGOV_IT_SPC")]
    Spc,
}

impl Tempo {
    pub fn as_str(self) -> &'static str {
        match self {
            Tempo::Locale => "EGOV_IT_Locale",
            Tempo::Spc => "EGOV_IT_SPC",
        }
    }
    pub fn parse(s: &str) -> Option<Tempo> {
        match s {
            "EGOV_IT_Locale" => Some(Tempo::Locale),
            "EGOV_IT_SPC" => Some(Tempo::Spc),
            _ => None,
        }
    }
}

/// `inoltro` attribute of ProfiloTrasmissione.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inoltro {
    #[serde(rename = "EGOV_IT_ALPIUUNAVOLTA")]
    AlPiuUnaVolta,
    #[serde(rename = "EGOV_IT_PIUDIUNAVOLTA")]
    PiuDiUnaVolta,
}

impl Inoltro {
    pub fn as_str(self) -> &'static str {
        match self {
            Inoltro::AlPiuUnaVolta => "EGOV_IT_ALPIUUNAVOLTA",
            Inoltro::PiuDiUnaVolta => "EGOV_IT_PIUDIUNAVOLTA",
        }
    }
    pub fn parse(s: &str) -> Option<Inoltro> {
        match s {
            "EGOV_IT_ALPIUUNAVOLTA" => Some(Inoltro::AlPiuUnaVolta),
            "EGOV_IT_PIUDIUNAVOLTA" => Some(Inoltro::PiuDiUnaVolta),
            _ => None,
        }
    }
}

/// The management profile of a partner: plain e-Gov 1.1 or the DigitPA "Linee Guida 1.1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProfiloGestione {
    #[serde(rename = "eGov1.1")]
    EGov11,
    #[default]
    #[serde(rename = "lineeGuida1.1")]
    LineeGuida11,
}

impl ProfiloGestione {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfiloGestione::EGov11 => "eGov1.1",
            ProfiloGestione::LineeGuida11 => "lineeGuida1.1",
        }
    }
}

/// A party: `tipo`/`nome`, as in `<IdentificativoParte tipo="SPC">EMILIA</…>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Parte {
    pub tipo: String,
    pub nome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indirizzo: Option<String>,
}

impl Parte {
    pub fn new(tipo: &str, nome: &str) -> Parte {
        Parte {
            tipo: tipo.to_string(),
            nome: nome.to_string(),
            indirizzo: None,
        }
    }
    /// Parses `TIPO/NOME`.
    pub fn parse(s: &str) -> Option<Parte> {
        let (t, n) = s.split_once('/')?;
        (!t.is_empty() && !n.is_empty() && !n.contains('/')).then(|| Parte::new(t, n))
    }
    pub fn same(&self, other: &Parte) -> bool {
        self.tipo == other.tipo && self.nome == other.nome
    }
}

impl std::fmt::Display for Parte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tipo, self.nome)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Servizio {
    pub tipo: String,
    pub nome: String,
}

/// A registration time with its clock kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ora {
    pub ora: chrono::NaiveDateTime,
    pub tempo: Tempo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trasmissione {
    pub origine: Parte,
    pub destinazione: Parte,
    pub ora: Ora,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Riscontro {
    pub id: String,
    pub ora: Ora,
}

/// A busta e-Gov header, with the values that passed the syntactic checks. Values that failed
/// them are absent here and reported as eccezioni by the reader.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Busta {
    pub mittente: Option<Parte>,
    pub destinatario: Option<Parte>,
    pub profilo: Option<Profilo>,
    pub servizio_correlato: Option<String>,
    pub tipo_servizio_correlato: Option<String>,
    pub collaborazione: Option<String>,
    pub servizio: Option<Servizio>,
    pub azione: Option<String>,
    pub id: Option<String>,
    pub ora_registrazione: Option<Ora>,
    pub riferimento_messaggio: Option<String>,
    pub scadenza: Option<chrono::NaiveDateTime>,
    /// Whether a ProfiloTrasmissione element was present.
    pub profilo_trasmissione: bool,
    pub inoltro: Option<Inoltro>,
    pub conferma_ricezione: Option<bool>,
    pub sequenza: Option<u32>,
    pub riscontri: Option<Vec<Riscontro>>,
    pub trasmissioni: Option<Vec<Trasmissione>>,
    pub eccezioni: Option<Vec<Eccezione>>,
    /// `wsu:Id` of IntestazioneMessaggio, kept for signature references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wsu_id: Option<String>,
}

impl Busta {
    /// A request from `mittente` to `destinatario`, as a porta delegata writes it: sent at
    /// most once, no confirmation asked, one Trasmissione of its own.
    pub fn richiesta(
        mittente: Parte,
        destinatario: Parte,
        profilo: Profilo,
        servizio: Servizio,
        azione: Option<String>,
        id: String,
        ora: Ora,
    ) -> Busta {
        Busta {
            trasmissioni: Some(vec![Trasmissione {
                origine: mittente.clone(),
                destinazione: destinatario.clone(),
                ora,
            }]),
            mittente: Some(mittente),
            destinatario: Some(destinatario),
            profilo: Some(profilo),
            servizio: Some(servizio),
            azione,
            id: Some(id),
            ora_registrazione: Some(ora),
            profilo_trasmissione: true,
            inoltro: Some(Inoltro::AlPiuUnaVolta),
            conferma_ricezione: Some(false),
            ..Busta::default()
        }
    }

    /// Whether the busta asks for at-most-once delivery (duplicate filter).
    pub fn inoltro_al_piu_una_volta(&self) -> bool {
        self.inoltro == Some(Inoltro::AlPiuUnaVolta)
    }
}
