//! The answers of a Porta di Dominio (busta-egov.md §2.2–§2.3), built from values: the response
//! busta of a synchronous exchange, the error busta, the bare Faults, and the
//! MessaggioDiErroreApplicativo that a local system receives when a partner refuses its request.

use chrono::NaiveDateTime;

use super::{
    time, writer, Busta, Codice, Eccezione, Ora, Parte, Tempo, Trasmissione, FAULT_PROCESSAMENTO,
    FAULT_VALIDAZIONE, NS_ECCEZIONE,
};
use crate::soap::{self, FaultCode};
use crate::xml::escape_attr;

/// The party an error busta is addressed to when the sender is unknown or missing.
pub fn mittente_sconosciuto() -> Parte {
    Parte::new("SPC", "Sconosciuto")
}

/// Header of an answer to `req`: parties swapped, RiferimentoMessaggio = the request's id,
/// servizio/azione/profilo/collaborazione copied (only values that were valid are in `req`),
/// a new id owned by the responder and one Trasmissione.
pub fn intestazione_risposta(
    req: &Busta,
    mittente: Parte,
    destinatario: Parte,
    id: String,
    now: NaiveDateTime,
    tempo: Tempo,
) -> Busta {
    let ora = Ora { ora: now, tempo };
    // The sender's indirizzoTelematico is not repeated: it may be what was wrong with the request.
    let destinatario = Parte {
        indirizzo: None,
        ..destinatario
    };
    Busta {
        trasmissioni: Some(vec![Trasmissione {
            origine: mittente.clone(),
            destinazione: destinatario.clone(),
            ora,
        }]),
        mittente: Some(mittente),
        destinatario: Some(destinatario),
        profilo: req.profilo,
        collaborazione: req.collaborazione.clone(),
        servizio: req.servizio.clone(),
        azione: req.azione.clone(),
        id: Some(id),
        ora_registrazione: Some(ora),
        riferimento_messaggio: req.id.clone(),
        profilo_trasmissione: req.profilo_trasmissione,
        inoltro: req.inoltro,
        conferma_ricezione: req.conferma_ricezione,
        ..Busta::default()
    }
}

/// The Fault that goes in the Body of an error busta.
pub fn fault_busta(processamento: bool, detail: Option<&str>) -> String {
    if processamento {
        soap::fault(FaultCode::Server, FAULT_PROCESSAMENTO, None, detail)
    } else {
        soap::fault(FaultCode::Client, FAULT_VALIDAZIONE, None, None)
    }
}

/// A bare processing Fault (`EGOV_IT_300`), when no busta can be built (the store failed
/// before an Identificatore could be issued, or our signature failed).
pub fn fault_processamento() -> String {
    soap::envelope(
        &[],
        &soap::fault(FaultCode::Server, FAULT_PROCESSAMENTO, None, None),
    )
}

/// A bare SOAP Fault `EGOV_IT_001` (no busta could be read).
pub fn fault_001() -> String {
    soap::envelope(
        &[],
        &soap::fault(FaultCode::Client, FAULT_VALIDAZIONE, None, None),
    )
}

/// An error busta: header with ListaEccezioni (validation) and a Fault in the Body.
/// Processing errors carry no ListaEccezioni (PD_UR-6.3) but a detail for the operator.
pub fn busta_errore(mut header: Busta, eccezioni: Vec<Eccezione>, detail: Option<&str>) -> String {
    let processamento =
        eccezioni.is_empty() || eccezioni.iter().all(|e| e.codice == Codice::PROCESSAMENTO);
    if !processamento {
        header.eccezioni = Some(eccezioni);
    }
    let h = writer::write(&header);
    soap::envelope(&[&h], &fault_busta(processamento, detail))
}

/// Who detected an error, for MessaggioDiErroreApplicativo/IdentificativoFunzione.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funzione {
    /// The request from the local system could not be turned into a busta.
    Imbustamento,
    /// Sending to the partner failed.
    InoltroBuste,
    /// The partner's answer was an error, or was not valid.
    SbustamentoRisposte,
}

impl Funzione {
    pub fn as_str(self) -> &'static str {
        match self {
            Funzione::Imbustamento => "Imbustamento",
            Funzione::InoltroBuste => "InoltroBuste",
            Funzione::SbustamentoRisposte => "SbustamentoRisposte",
        }
    }
}

/// What went wrong, as MessaggioDiErroreApplicativo/Eccezione says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EccezioneApplicativa {
    Busta(Codice, String),
    Processamento(Codice, String),
}

/// `eGov_IT_Ecc:MessaggioDiErroreApplicativo` (EccezioneCNIPA.xsd), the detail of the Fault a
/// local system receives when its request fails (PD_UR-5).
pub fn messaggio_errore_applicativo(
    now: NaiveDateTime,
    porta: &str,
    funzione: Funzione,
    e: &EccezioneApplicativa,
) -> String {
    let eccezione = match e {
        EccezioneApplicativa::Busta(c, d) => format!(
            "<eGov_IT_Ecc:EccezioneBusta codiceEccezione=\"{c}\" descrizioneEccezione=\"{}\"/>",
            escape_attr(d)
        ),
        EccezioneApplicativa::Processamento(c, d) => format!(
            "<eGov_IT_Ecc:EccezioneProcessamento codiceEccezione=\"{c}\" descrizioneEccezione=\"{}\"/>",
            escape_attr(d)
        ),
    };
    format!(
        "<eGov_IT_Ecc:MessaggioDiErroreApplicativo xmlns:eGov_IT_Ecc=\"{NS_ECCEZIONE}\"><eGov_IT_Ecc:OraRegistrazione>{}</eGov_IT_Ecc:OraRegistrazione><eGov_IT_Ecc:IdentificativoPorta>{}</eGov_IT_Ecc:IdentificativoPorta><eGov_IT_Ecc:IdentificativoFunzione>{}</eGov_IT_Ecc:IdentificativoFunzione><eGov_IT_Ecc:Eccezione>{eccezione}</eGov_IT_Ecc:Eccezione></eGov_IT_Ecc:MessaggioDiErroreApplicativo>",
        time::format(now),
        crate::xml::escape_text(porta),
        funzione.as_str()
    )
}

/// The Fault a local system receives, with MessaggioDiErroreApplicativo as its detail.
pub fn fault_applicativo(
    now: NaiveDateTime,
    porta: &str,
    funzione: Funzione,
    e: &EccezioneApplicativa,
) -> String {
    let (code, text) = match e {
        EccezioneApplicativa::Busta(c, d) => (FaultCode::Client, format!("{c} - {d}")),
        EccezioneApplicativa::Processamento(c, d) => (FaultCode::Server, format!("{c} - {d}")),
    };
    let detail = messaggio_errore_applicativo(now, porta, funzione, e);
    soap::envelope(&[], &soap::fault(code, &text, Some(porta), Some(&detail)))
}

/// The most telling eccezione of a list: the first GRAVE one, else the first.
pub fn principale(eccezioni: &[Eccezione]) -> Option<&Eccezione> {
    eccezioni
        .iter()
        .find(|e| e.is_grave())
        .or(eccezioni.first())
}

/// Description of an eccezione for a local system.
pub fn descrivi(e: &Eccezione) -> String {
    format!("{} ({})", e.codice.descrizione(), e.posizione)
}
