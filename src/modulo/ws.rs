//! The `cliclavoroWS` interface (wsdl/cliclavoroWS.wsdl): operations, element names, and the
//! request and response elements. Pure data and string building.

use super::Tipo;
use crate::xml::escape_text;

pub const NS_TYPES: &str = "http://servizi.lavoro.gov.it/cliclavoro/types";

/// One of the three operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operazione {
    /// Azione of the busta, and WSDL operation name.
    pub azione: &'static str,
    pub request: &'static str,
    /// The request's child carrying the escaped modulo.
    pub param: &'static str,
    pub response: &'static str,
    pub tipo: Tipo,
    /// "Candidatura" (in messages).
    pub nome: &'static str,
    /// "della Candidatura" / "del Messaggio".
    pub della: &'static str,
    /// "ricevuta" / "ricevuto".
    pub ricevuto: &'static str,
}

pub const OPERAZIONI: [Operazione; 4] = [
    Operazione {
        azione: "InvioCandidatura",
        request: "invioCandidatura",
        param: "CandidaturaXML",
        response: "risposta_invioCandidatura",
        tipo: Tipo::Candidatura,
        nome: "Candidatura",
        della: "della Candidatura",
        ricevuto: "ricevuta",
    },
    Operazione {
        azione: "InvioVacancy",
        request: "invioVacancy",
        param: "VacancyXML",
        response: "risposta_invioVacancy",
        tipo: Tipo::Vacancy,
        nome: "Vacancy",
        della: "della Vacancy",
        ricevuto: "ricevuta",
    },
    Operazione {
        azione: "InvioMessaggio",
        request: "invioMessaggio",
        param: "MessaggioXML",
        response: "risposta_invioMessaggio",
        tipo: Tipo::Messaggio,
        nome: "Messaggio",
        della: "del Messaggio",
        ricevuto: "ricevuto",
    },
    // INPS → NCN: the CV of a recipient of income support (percettore); the NCN completes it
    // and routes it to the region of the worker's domicile (document §3).
    Operazione {
        azione: "InvioPercettore",
        request: "invioPercettore",
        param: "CandidaturaXML",
        response: "risposta_invioPercettore",
        tipo: Tipo::Candidatura,
        nome: "Candidatura",
        della: "della Candidatura",
        ricevuto: "ricevuta",
    },
];

pub fn operazione(azione: &str) -> Option<&'static Operazione> {
    OPERAZIONI.iter().find(|o| o.azione == azione)
}

/// The `risposta_invio*` element.
pub fn risposta(op: &Operazione, ok: bool, descr: &str) -> String {
    format!(
        "<types:{r} xmlns:types=\"{NS_TYPES}\"><types:Tipo_Risposta>{}</types:Tipo_Risposta><types:Descr_Esito>{}</types:Descr_Esito></types:{r}>",
        if ok { "OK" } else { "KO" },
        escape_text(descr),
        r = op.response
    )
}

/// The `invio*` request element carrying a modulo as an escaped string.
pub fn richiesta(op: &Operazione, modulo: &str) -> String {
    format!(
        "<types:{r} xmlns:types=\"{NS_TYPES}\"><types:{p}>{}</types:{p}></types:{r}>",
        escape_text(modulo),
        r = op.request,
        p = op.param
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_wsdl() {
        let wsdl = include_str!("../../wsdl/cliclavoroWS.wsdl");
        for op in OPERAZIONI {
            for needle in [
                format!("<wsdl:operation name=\"{}\">", op.azione),
                format!("<xsd:element name=\"{}\">", op.request),
                format!(
                    "<xsd:element name=\"{}\" type=\"types:Risposta_Type\"/>",
                    op.response
                ),
                format!("<xsd:element name=\"{}\" type=\"xsd:string\"/>", op.param),
            ] {
                assert!(wsdl.contains(&needle), "{} missing: {needle}", op.azione);
            }
        }
    }
}
