//! The built-in ClicLavoro handler: the `cliclavoroWS` operations InvioCandidatura,
//! InvioVacancy and InvioMessaggio. The modulo travels as an escaped string; it is un-escaped,
//! checked to be a well-formed modulo of the right kind, stored, and answered OK or KO.

use super::{Chiamata, Esito, ServiceError};
use crate::store::{Store, StoredModulo};
use crate::xml::{self, escape_text, Element, Limits};

pub const NS_TYPES: &str = "http://servizi.lavoro.gov.it/cliclavoro/types";

/// One of the three operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operazione {
    /// Azione and WSDL operation name.
    pub azione: &'static str,
    pub request: &'static str,
    pub param: &'static str,
    pub response: &'static str,
    /// Modulo root element and namespace.
    pub root: &'static str,
    pub ns: &'static str,
    /// Element of DatiSistema holding the modulo's code.
    pub code: &'static str,
    /// Name used in messages ("Candidatura").
    pub nome: &'static str,
    /// "della Candidatura" / "del Messaggio".
    pub della: &'static str,
    /// "ricevuta" / "ricevuto".
    pub ricevuto: &'static str,
    pub kind: &'static str,
}

pub const OPERAZIONI: [Operazione; 3] = [
    Operazione {
        azione: "InvioCandidatura",
        request: "invioCandidatura",
        param: "CandidaturaXML",
        response: "risposta_invioCandidatura",
        root: "Candidatura",
        ns: "http://servizi.lavoro.gov.it/candidatura",
        code: "codicecandidatura",
        nome: "Candidatura",
        della: "della Candidatura",
        ricevuto: "ricevuta",
        kind: "candidatura",
    },
    Operazione {
        azione: "InvioVacancy",
        request: "invioVacancy",
        param: "VacancyXML",
        response: "risposta_invioVacancy",
        root: "Vacancy",
        ns: "http://servizi.lavoro.gov.it/vacancy",
        code: "codiceofferta",
        nome: "Vacancy",
        della: "della Vacancy",
        ricevuto: "ricevuta",
        kind: "vacancy",
    },
    Operazione {
        azione: "InvioMessaggio",
        request: "invioMessaggio",
        param: "MessaggioXML",
        response: "risposta_invioMessaggio",
        root: "Messaggio",
        ns: "http://servizi.lavoro.gov.it/messaggio",
        code: "codicemessaggio",
        nome: "Messaggio",
        della: "del Messaggio",
        ricevuto: "ricevuto",
        kind: "messaggio",
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

/// The `invio*` request element carrying a modulo (used by clients and tests).
pub fn richiesta(op: &Operazione, modulo: &str) -> String {
    format!(
        "<types:{r} xmlns:types=\"{NS_TYPES}\"><types:{p}>{}</types:{p}></types:{r}>",
        escape_text(modulo),
        r = op.request,
        p = op.param
    )
}

/// Why a request is refused (a business KO, not a busta error).
fn check(
    op: &Operazione,
    body: Option<&Element>,
    limits: Limits,
) -> Result<(String, String), String> {
    let body =
        body.ok_or_else(|| format!("Errore nella ricezione {}: il Body è vuoto", op.della))?;
    if !body.is(NS_TYPES, op.request) {
        return Err(format!(
            "Errore nella ricezione {}: atteso l'elemento {{{NS_TYPES}}}{} per l'azione {}, trovato {{{}}}{}",
            op.della,
            op.request,
            op.azione,
            body.ns.as_deref().unwrap_or(""),
            body.local
        ));
    }
    let param = body
        .children
        .iter()
        .find(|c| c.is(NS_TYPES, op.param))
        .ok_or_else(|| {
            format!(
                "Errore nella ricezione {}: manca l'elemento {}",
                op.della, op.param
            )
        })?;
    let text = param.text.trim();
    if text.is_empty() {
        return Err(format!(
            "Errore nella ricezione {}: {} è vuoto",
            op.della, op.param
        ));
    }
    let modulo = xml::parse_document(text.as_bytes(), limits).map_err(|e| {
        format!(
            "Errore nella ricezione {}: il modulo non è XML ben formato ({e})",
            op.della
        )
    })?;
    if !modulo.is(op.ns, op.root) {
        return Err(format!(
            "Errore nella ricezione {}: l'elemento radice del modulo deve essere {{{}}}{}, trovato {{{}}}{}",
            op.della,
            op.ns,
            op.root,
            modulo.ns.as_deref().unwrap_or(""),
            modulo.local
        ));
    }
    let code = modulo
        .child("DatiSistema")
        .and_then(|d| d.child(op.code))
        .map(|c| c.value().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            format!(
                "Errore nella ricezione {}: manca DatiSistema/{}",
                op.della, op.code
            )
        })?;
    Ok((code, text.to_string()))
}

pub fn handle(c: &Chiamata<'_>, store: &dyn Store, limits: Limits) -> Result<Esito, ServiceError> {
    let azione = c.busta.azione.as_deref().unwrap_or("");
    let op = operazione(azione)
        .ok_or_else(|| ServiceError::NoHandler(format!("ClicLavoro/{azione}")))?;
    let tree = c.env.body_tree(limits).ok().flatten();
    let (ok, descr) = match check(op, tree.as_ref(), limits) {
        Ok((code, xml)) => {
            store.put_modulo(&StoredModulo {
                kind: op.kind.to_string(),
                code: code.clone(),
                received_at: c
                    .received_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                request_id: c.busta.id.clone(),
                mittente: c.busta.mittente.as_ref().map(|m| m.to_string()),
                xml,
            })?;
            (
                true,
                format!("{} {} correttamente (codice {code})", op.nome, op.ricevuto),
            )
        }
        Err(why) => (false, why),
    };
    Ok(Esito {
        body: risposta(op, ok, &descr),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("{} {}", if ok { "OK" } else { "KO" }, descr)),
    })
}
