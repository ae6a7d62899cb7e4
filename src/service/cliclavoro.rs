//! The built-in ClicLavoro handler: the `cliclavoroWS` operations InvioCandidatura,
//! InvioVacancy and InvioMessaggio. The modulo travels as an escaped string; it is un-escaped,
//! validated (schema, code tables, codice fiscale, the document's rules), stored with its
//! lifecycle state, and answered OK or KO. A valid busta with an invalid modulo is a business
//! KO, not a busta error.

use super::{Chiamata, Esito, ServiceError};
use crate::modulo::ws::{self, Operazione, NS_TYPES};
use crate::modulo::{self, Contesto, Modulo, Tipo, Versione};
use crate::store::{StatoModulo, Store, StoredModulo};
use crate::xml::{Element, Limits};

/// How a communication changed the stored state, for the answer.
enum Effetto {
    Nuovo,
    Aggiornato,
    Rettifica(String),
    Chiusura(String),
}

/// The modulo string carried by the request, or why the request is refused.
fn modulo_della_richiesta(op: &Operazione, body: Option<&Element>) -> Result<String, String> {
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
    Ok(text.to_string())
}

fn elenco_problemi(esito: &modulo::Esito) -> String {
    esito
        .problemi
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn handle(
    c: &Chiamata<'_>,
    store: &dyn Store,
    limits: Limits,
    versione: Option<Versione>,
) -> Result<Esito, ServiceError> {
    let azione = c.busta.azione.as_deref().unwrap_or("");
    let op = ws::operazione(azione)
        .ok_or_else(|| ServiceError::NoHandler(format!("ClicLavoro/{azione}")))?;
    let tree = c.env.body_tree(limits).ok().flatten();
    let testo = match modulo_della_richiesta(op, tree.as_ref()) {
        Ok(t) => t,
        Err(why) => return Ok(ko(op, why)),
    };
    let esiste = |t: Tipo, code: &str| matches!(store.modulo(t.as_str(), code), Ok(Some(_)));
    let ctx = Contesto {
        ricevuto: c.received_at.date_naive(),
        versione,
        esiste: Some(&esiste),
    };
    let esito = modulo::valida(testo.as_bytes(), &ctx);
    if esito.tipo.is_some_and(|t| t != op.tipo) {
        return Ok(ko(
            op,
            format!(
                "Errore nella ricezione {}: il modulo è una {} e l'azione {} attende una {}",
                op.della,
                esito.tipo.map(Tipo::radice).unwrap_or("?"),
                op.azione,
                op.nome
            ),
        ));
    }
    let (Some(m), true) = (esito.modulo.as_ref(), esito.valido()) else {
        return Ok(ko(
            op,
            format!(
                "{} non valida: {} problemi: {}",
                op.nome,
                esito.problemi.len(),
                elenco_problemi(&esito)
            )
            .replace("Messaggio non valida", "Messaggio non valido"),
        ));
    };
    let effetto = registra(store, m, &esito, &testo, c)?;
    let mut descr = format!(
        "{} {} correttamente (codice {}",
        op.nome,
        op.ricevuto,
        m.codice()
    );
    match &effetto {
        Effetto::Nuovo => {}
        Effetto::Aggiornato => descr.push_str(", aggiornamento"),
        Effetto::Rettifica(p) => descr.push_str(&format!(", rettifica di {p}")),
        Effetto::Chiusura(p) => descr.push_str(&format!(", chiusura di {p}")),
    }
    descr.push(')');
    if let Some(s) = esito.scadenza.as_ref().filter(|s| s.corretta) {
        descr.push_str(&format!(
            "; scadenza fissata al {}, la massima consentita",
            s.applicata
        ));
    }
    Ok(Esito {
        body: ws::risposta(op, true, &descr),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("OK {descr}")),
    })
}

fn ko(op: &Operazione, why: String) -> Esito {
    Esito {
        body: ws::risposta(op, false, &why),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("KO {why}")),
    }
}

/// Stores a valid modulo and updates the state of what it rectifies or closes.
fn registra(
    store: &dyn Store,
    m: &Modulo,
    esito: &modulo::Esito,
    xml: &str,
    c: &Chiamata<'_>,
) -> Result<Effetto, ServiceError> {
    let kind = m.tipo().as_str();
    let now = c
        .received_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let tipo_com = match m {
        Modulo::Candidatura(x) => x.dati_sistema.tipocandidatura.trim(),
        Modulo::Vacancy(x) => x.dati_sistema.tipoofferta.trim(),
        Modulo::Messaggio(_) => "",
    };
    let chiusura = tipo_com == "02";
    let precedente = m.precedente().map(str::to_string);
    let existing = store.modulo(kind, m.codice())?;
    let mut record = StoredModulo {
        kind: kind.to_string(),
        code: m.codice().to_string(),
        versione: esito
            .versione
            .map(Versione::as_str)
            .unwrap_or("")
            .to_string(),
        stato: if chiusura {
            StatoModulo::Chiuso
        } else {
            StatoModulo::Attivo
        },
        received_at: existing
            .as_ref()
            .map_or(now.clone(), |e| e.received_at.clone()),
        updated_at: now.clone(),
        request_id: c.busta.id.clone(),
        mittente: c.busta.mittente.as_ref().map(|p| p.to_string()),
        scadenza: esito.scadenza.as_ref().map(|s| s.applicata.to_string()),
        precedente: precedente.clone(),
        attuale: existing.as_ref().and_then(|e| e.attuale.clone()),
        xml: xml.to_string(),
    };
    let set_stato =
        |code: &str, stato: StatoModulo, attuale: Option<&str>| -> Result<(), ServiceError> {
            if let Some(mut r) = store.modulo(kind, code)? {
                r.stato = stato;
                r.updated_at = now.clone();
                if let Some(a) = attuale {
                    r.attuale = Some(a.to_string());
                }
                store.put_modulo(&r)?;
            }
            Ok(())
        };
    let effetto = match (&precedente, chiusura) {
        // Rev.038: the communication names the original it rectifies or closes.
        (Some(p), _) => {
            let originale = store.modulo(kind, p)?;
            let corrente = originale.as_ref().and_then(|o| o.attuale.clone());
            let stato = if chiusura {
                StatoModulo::Chiuso
            } else {
                StatoModulo::Rettificato
            };
            set_stato(p, stato, Some(m.codice()))?;
            if let Some(a) = corrente.filter(|a| a != m.codice() && a != p) {
                set_stato(&a, stato, None)?;
            }
            if chiusura {
                Effetto::Chiusura(p.clone())
            } else {
                Effetto::Rettifica(p.clone())
            }
        }
        // 2.0: a chiusura carries the code it closes; an invio with a known code updates it.
        (None, true) => Effetto::Chiusura(m.codice().to_string()),
        (None, false) if existing.is_some() => Effetto::Aggiornato,
        (None, false) => Effetto::Nuovo,
    };
    if chiusura {
        record.stato = StatoModulo::Chiuso;
    }
    store.put_modulo(&record)?;
    Ok(effetto)
}
