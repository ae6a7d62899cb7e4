//! The built-in ClicLavoro handler: the `cliclavoroWS` operations InvioCandidatura,
//! InvioVacancy and InvioMessaggio. The modulo travels as an escaped string; it is un-escaped,
//! validated (schema, code tables, codice fiscale, the document's rules), stored with its
//! lifecycle state, and answered OK or KO. A valid busta with an invalid modulo is a business
//! KO, not a busta error.

use chrono::{DateTime, FixedOffset};

use super::{Chiamata, Esito, ServiceError};
use crate::egov::Parte;
use crate::modulo::ws::{self, Operazione, NS_TYPES};
use crate::modulo::{self, Contesto, Modulo, Tipo, Versione};
use crate::registry::Registry;
use crate::rete::percettori::{self, Rapporto};
use crate::rete::{self, europass, scheda, Comunicazione, Contatto, Inoltro, Ruolo, StatoInoltro};
use crate::store::{Scrittura, StatoModulo, Store, StoreError, StoredModulo};
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

/// What the handler needs of the node it runs in.
pub struct Nodo<'a> {
    pub store: &'a dyn Store,
    pub limits: Limits,
    pub versione: Option<Versione>,
    pub ruolo: Ruolo,
    pub registry: &'a Registry,
    pub own: Parte,
    /// A new Identificatore (and its time) for a forward.
    pub nuovo_id: &'a (dyn Fn() -> Result<(String, DateTime<FixedOffset>), StoreError> + Sync),
    /// EURES delivery is configured (otherwise documents are only kept for export).
    pub eures_url: bool,
    /// Held while a modulo's stored state is read and rewritten.
    pub lock: &'a std::sync::Mutex<()>,
}

pub fn handle(c: &Chiamata<'_>, n: &Nodo<'_>) -> Result<Esito, ServiceError> {
    let azione = c.busta.azione.as_deref().unwrap_or("");
    let op = ws::operazione(azione)
        .ok_or_else(|| ServiceError::NoHandler(format!("ClicLavoro/{azione}")))?;
    // Percettori come from INPS alone: through the service only INPS may call.
    if (op.azione == "InvioPercettore") != (c.servizio.nome == crate::registry::PERCETTORI) {
        return Ok(ko(
            op,
            format!(
                "l'azione {} non è prevista dal servizio {}",
                op.azione, c.servizio.nome
            ),
        ));
    }
    let tree = c.env.body_tree(n.limits).ok().flatten();
    let testo = match modulo_della_richiesta(op, tree.as_ref()) {
        Ok(t) => t,
        Err(why) => return Ok(ko(op, why)),
    };
    let mittente = c.busta.mittente.clone().unwrap_or_else(|| n.own.clone());
    ricevi(
        n,
        op,
        testo,
        &mittente,
        c.busta.id.as_deref(),
        c.received_at,
    )
}

/// Judges, stores and (at the NCN) routes a modulo that `mittente` sent; the answer.
fn ricevi(
    n: &Nodo<'_>,
    op: &Operazione,
    testo: String,
    mittente: &Parte,
    request_id: Option<&str>,
    received_at: DateTime<FixedOffset>,
) -> Result<Esito, ServiceError> {
    let percettore = op.azione == "InvioPercettore";
    if percettore && n.ruolo != Ruolo::Ncn {
        return Ok(ko(
            op,
            "InvioPercettore è un servizio del nodo di coordinamento nazionale".into(),
        ));
    }
    // A percettore's CV is completed by the NCN (flag, qualifica) and judged again.
    let (testo, esito, nota_percettore) = match valuta(n, op, &testo, received_at)? {
        // The same document again (a redelivery under a new Identificatore): already done.
        Err(_) if gia_ricevuto(n, &testo)? => {
            let descr = format!(
                "{} già {}, identica: nessuna modifica",
                op.nome, op.ricevuto
            );
            return Ok(Esito {
                body: ws::risposta(op, true, &descr),
                body_ns: Vec::new(),
                fault: false,
                note: Some(format!("OK {descr}")),
            });
        }
        Err(why) => return Ok(ko(op, why)),
        Ok(e) if percettore => match completa_percettore(n, &e, received_at)? {
            Some((t, completo, nota)) => (t, completo, Some(nota)),
            None => (testo, e, None),
        },
        Ok(e) => (testo, e, None),
    };
    let Some(m) = esito.modulo.as_ref() else {
        return Ok(ko(op, format!("{} non leggibile", op.nome)));
    };
    let acc = match accetta(
        n,
        m,
        &esito,
        &testo,
        mittente,
        request_id,
        received_at,
        percettore,
    )? {
        Ok(a) => a,
        Err(why) => return Ok(ko(op, why)),
    };
    let mut descr = format!(
        "{} {} correttamente (codice {}",
        op.nome,
        op.ricevuto,
        m.codice()
    );
    match &acc.effetto {
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
    if let Some(p) = nota_percettore {
        descr.push_str(&format!("; {p}"));
    }
    if let Some(r) = &acc.rotta {
        descr.push_str(&format!("; {r}"));
    }
    Ok(Esito {
        body: ws::risposta(op, true, &descr),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("OK {descr}")),
    })
}

/// Whether this very document is already stored under its code.
fn gia_ricevuto(n: &Nodo<'_>, testo: &str) -> Result<bool, ServiceError> {
    let Some(m) = crate::xml::parse_document(testo.as_bytes(), n.limits)
        .ok()
        .and_then(|root| Modulo::leggi(&root))
    else {
        return Ok(false);
    };
    Ok(n.store
        .modulo(m.tipo().as_str(), m.codice())?
        .is_some_and(|r| r.xml == testo))
}

/// Validates a modulo for an operation: the verdict, or why it is refused.
fn valuta(
    n: &Nodo<'_>,
    op: &Operazione,
    testo: &str,
    ricevuto: DateTime<FixedOffset>,
) -> Result<Result<modulo::Esito, String>, ServiceError> {
    let esiste = |t: Tipo, code: &str| matches!(n.store.ha_modulo(t.as_str(), code), Ok(true));
    let ctx = Contesto {
        ricevuto: ricevuto.date_naive(),
        versione: n.versione,
        esiste: Some(&esiste),
    };
    let esito = modulo::valida(testo.as_bytes(), &ctx);
    if esito.tipo.is_some_and(|t| t != op.tipo) {
        return Ok(Err(format!(
            "Errore nella ricezione {}: il modulo è una {} e l'azione {} attende una {}",
            op.della,
            esito.tipo.map(Tipo::radice).unwrap_or("?"),
            op.azione,
            op.nome
        )));
    }
    if esito.modulo.is_none() || !esito.valido() {
        return Ok(Err(format!(
            "{} non valida: {} problemi: {}",
            op.nome,
            esito.problemi.len(),
            elenco_problemi(&esito)
        )
        .replace("Messaggio non valida", "Messaggio non valido")));
    }
    Ok(Ok(esito))
}

/// A percettore's CV completed by the NCN (flag, qualifica), validated again: the new text,
/// its verdict and a note; `None` when the completed CV would not be valid (the original is
/// kept, flagged only if that stays valid).
fn completa_percettore(
    n: &Nodo<'_>,
    e: &modulo::Esito,
    ricevuto: DateTime<FixedOffset>,
) -> Result<Option<(String, modulo::Esito, String)>, ServiceError> {
    let Some(Modulo::Candidatura(orig)) = &e.modulo else {
        return Ok(None);
    };
    let cf = orig
        .lavoratore
        .dati_anagrafici
        .codicefiscale
        .trim()
        .to_ascii_uppercase();
    let rapporto: Option<Rapporto> = match n.store.leggi("rapporti", cf.as_bytes())? {
        Some(v) => serde_json::from_slice(&v).ok(),
        None => None,
    };
    let segmenti = match e.versione {
        Some(Versione::Rev038) => 6,
        _ => 5,
    };
    let op = ws::operazione("InvioCandidatura").unwrap_or(&ws::OPERAZIONI[0]);
    let mut tentativi = Vec::new();
    let mut c = orig.clone();
    if percettori::completa(&mut c, rapporto.as_ref(), segmenti) {
        tentativi.push((
            c,
            format!(
                "percettore: qualifica {} dall'ultimo rapporto di lavoro",
                rapporto.as_ref().map_or("", |r| r.qualifica.as_str())
            ),
        ));
    }
    let mut solo_flag = orig.clone();
    solo_flag.dati_sistema.percettore = Some("SI".into());
    let nota = if rapporto.is_none() {
        "percettore: nessun ultimo rapporto di lavoro noto per il lavoratore"
    } else {
        "percettore"
    };
    tentativi.push((solo_flag, nota.to_string()));
    for (c, nota) in tentativi {
        let testo = Modulo::Candidatura(c).scrivi();
        if let Ok(e) = valuta(n, op, &testo, ricevuto)? {
            return Ok(Some((testo, e, nota)));
        }
    }
    Ok(None)
}

/// A modulo accepted at a node: what changed and where it goes.
struct Accettazione {
    effetto: Effetto,
    /// Where it was sent, for the answer.
    rotta: Option<String>,
}

/// Stores a valid modulo (with the state of what it rectifies or closes), and at the NCN its
/// forwards, in one atomic batch.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the parts of a received modulo"
)]
fn accetta(
    n: &Nodo<'_>,
    m: &Modulo,
    esito: &modulo::Esito,
    xml: &str,
    mittente: &Parte,
    request_id: Option<&str>,
    received_at: DateTime<FixedOffset>,
    percettore: bool,
) -> Result<Result<Accettazione, String>, ServiceError> {
    let kind = m.tipo().as_str();
    let store = n.store;
    // From the first read of the stored state to the write of the new one.
    let _stato = n.lock.lock().unwrap_or_else(|e| e.into_inner());
    let now = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let tipo_com = match m {
        Modulo::Candidatura(x) => x.dati_sistema.tipocandidatura.trim(),
        Modulo::Vacancy(x) => x.dati_sistema.tipoofferta.trim(),
        Modulo::Messaggio(_) => "",
    };
    let chiusura = tipo_com == "02";
    let precedente = m.precedente().map(str::to_string);
    // A new code (the common case) is known not to be there without reading the tree.
    let existing = if store.ha_modulo(kind, m.codice())? {
        store.modulo(kind, m.codice())?
    } else {
        None
    };
    let originale = match &precedente {
        Some(p) => store.modulo(kind, p)?,
        None => None,
    };
    let mut batch = Vec::new();
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
        request_id: request_id.map(str::to_string),
        mittente: Some(mittente.to_string()),
        scadenza: esito.scadenza.as_ref().map(|s| s.applicata.to_string()),
        precedente: precedente.clone(),
        attuale: existing.as_ref().and_then(|e| e.attuale.clone()),
        xml: xml.to_string(),
        destinazioni: existing
            .as_ref()
            .map(|e| e.destinazioni.clone())
            .unwrap_or_default(),
        titolare: None,
        scheda: match m {
            Modulo::Candidatura(c) => Some(scheda::candidatura(c)),
            Modulo::Vacancy(v) => Some(scheda::vacancy(v)),
            Modulo::Messaggio(_) => None,
        },
    };
    let mut set_stato = |r: &StoredModulo, stato: StatoModulo, attuale: Option<&str>| {
        let mut r = r.clone();
        r.stato = stato;
        r.updated_at = now.clone();
        if let Some(a) = attuale {
            r.attuale = Some(a.to_string());
        }
        batch.push(Scrittura::modulo(&r));
    };
    let effetto = match (&precedente, chiusura) {
        // Rev.038: the communication names the original it rectifies or closes.
        (Some(p), _) => {
            let stato = if chiusura {
                StatoModulo::Chiuso
            } else {
                StatoModulo::Rettificato
            };
            if let Some(o) = &originale {
                set_stato(o, stato, Some(m.codice()));
                if let Some(a) = o.attuale.as_deref().filter(|a| *a != m.codice() && a != p) {
                    if let Some(r) = store.modulo(kind, a)? {
                        set_stato(&r, stato, None);
                    }
                }
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
    // The node that answers for it, and where it was or will be.
    let gia: Vec<String> = originale
        .as_ref()
        .or(existing.as_ref())
        .map(|o| o.destinazioni.clone())
        .unwrap_or_default();
    let titolare_prima = originale.as_ref().and_then(|o| o.titolare.clone());
    let nodi = rete::nodi_regionali(n.registry, &n.own);
    let e_nodo = |p: &Parte| nodi.iter().any(|x| x.same(p));
    let mut rotta = None;
    match (n.ruolo, m) {
        (Ruolo::Ncn, Modulo::Messaggio(msg)) | (Ruolo::Nr, Modulo::Messaggio(msg)) => {
            let Some(rif) = rete::riferimento(msg) else {
                return Ok(Err("Messaggio: manca il codice della candidatura o dell'offerta (codiceoffertacandidatura)".into()));
            };
            let trovato = match store.modulo("candidatura", rif)? {
                Some(x) => Some(x),
                None => store.modulo("vacancy", rif)?,
            };
            let Some(riferito) = trovato else {
                return Ok(Err(format!(
                    "Messaggio: la candidatura o offerta {rif} non è nota a questo nodo"
                )));
            };
            let risposta = msg.dati_sistema.tipocomunicazione.trim() == "04";
            // A risposta goes back to the node its contatto came from; a contatto to the node
            // that answers for the modulo.
            let verso = if risposta {
                match m.precedente() {
                    Some(p) => store.modulo("messaggio", p)?.and_then(|x| x.mittente),
                    None => None,
                }
                .and_then(|x| Parte::parse(&x))
                .filter(|p| e_nodo(p))
            } else {
                riferito.titolare.as_deref().and_then(Parte::parse)
            };
            match verso.filter(|t| n.ruolo == Ruolo::Ncn && !t.same(mittente)) {
                Some(t) => {
                    batch.extend(inoltri(
                        n,
                        m,
                        xml,
                        std::slice::from_ref(&t),
                        false,
                        true,
                        request_id,
                        received_at,
                    )?);
                    rotta = Some(if risposta {
                        format!("inoltrato a {t}, da cui venne il contatto")
                    } else {
                        format!("inoltrato a {t}, titolare di {rif}")
                    });
                }
                None => {
                    // A risposta reaches who wrote the contatto (its Destinatario); a contatto
                    // the worker or employer, or only the intermediary (§4.4).
                    let per = if risposta {
                        let d = &msg.destinatario.interlocutore;
                        serde_json::json!({
                            "tramite": "diretto",
                            "denominazione": d.denominazione.as_deref().map(str::trim),
                            "email": d.email.as_deref().map(str::trim),
                            "telefono": d.telefono.as_deref().map(str::trim),
                        })
                    } else {
                        Modulo::leggi(
                            &crate::xml::parse_document(riferito.xml.as_bytes(), n.limits)
                                .map_err(|e| ServiceError::Backend(format!("modulo {rif}: {e}")))?,
                        )
                        .map(|r| rete::recapito(&r))
                        .unwrap_or_default()
                    };
                    let da = &msg.mittente.interlocutore;
                    let contatto = Contatto {
                        codice: m.codice().to_string(),
                        tipo: msg.dati_sistema.tipocomunicazione.trim().to_string(),
                        ricevuto: now.clone(),
                        kind: riferito.kind.clone(),
                        riferimento: rif.to_string(),
                        da: serde_json::json!({
                            "denominazione": da.denominazione.as_deref().map(str::trim),
                            "email": da.email.as_deref().map(str::trim),
                        }),
                        per: per.clone(),
                        testo: msg.corpo.testomessaggio.clone(),
                        via: Some(mittente.to_string()),
                    };
                    batch.push(Scrittura::metti("contatti", m.codice(), &contatto));
                    rotta = Some(format!(
                        "consegnato al {} di {rif}",
                        if per["tramite"] == "intermediario" {
                            "l'intermediario"
                        } else {
                            "titolare"
                        }
                    ));
                }
            }
        }
        (Ruolo::Ncn, _) => {
            // Who answers for it: the region that sent it, or for a percettore the region of
            // the worker's domicile; none (us) for intermediaries and the national portal.
            let mut r = if percettore {
                let domicilio = match m {
                    Modulo::Candidatura(c) => c.lavoratore.domicilio.idcomune.trim().to_string(),
                    _ => String::new(),
                };
                match rete::nodo_del_comune(&domicilio) {
                    Some(nome) => {
                        let p = Parte::new("SPC", nome);
                        if e_nodo(&p) {
                            rete::Instradamento {
                                nodi: vec![p],
                                eures: false,
                                motivo: format!("percettore con domicilio in {domicilio}"),
                            }
                        } else {
                            rete::Instradamento {
                                motivo: format!(
                                    "percettore con domicilio in {domicilio}: il nodo regionale {nome} non è nella rete, conservata al nodo nazionale"
                                ),
                                ..Default::default()
                            }
                        }
                    }
                    None => rete::Instradamento {
                        motivo: format!(
                            "percettore: domicilio '{domicilio}' fuori dalle regioni, conservata al nodo nazionale"
                        ),
                        ..Default::default()
                    },
                }
            } else {
                let com = if precedente.is_some() || chiusura {
                    Comunicazione::Seguito
                } else {
                    Comunicazione::Invio
                };
                rete::instrada(m, com, mittente, &nodi, &gia)
            };
            // A percettore's later versions also reach where the earlier went (the worker may
            // have moved).
            if percettore && (precedente.is_some() || existing.is_some()) {
                for p in gia.iter().filter_map(|g| Parte::parse(g)) {
                    if !r.nodi.iter().any(|n| n.same(&p)) {
                        r.nodi.push(p);
                    }
                }
            }
            // Never back to the node it came from.
            r.nodi.retain(|p| !p.same(mittente));
            record.titolare = if percettore {
                r.nodi.first().map(|p| p.to_string())
            } else if e_nodo(mittente) {
                Some(mittente.to_string())
            } else {
                titolare_prima.clone()
            };
            let invio = precedente.is_none() && !chiusura;
            batch.extend(inoltri(
                n,
                m,
                xml,
                &r.nodi,
                r.eures,
                invio,
                request_id,
                received_at,
            )?);
            let eures = r.eures.then(|| rete::EURES.to_string());
            for s in r.nodi.iter().map(|p| p.to_string()).chain(eures) {
                if !record.destinazioni.contains(&s) {
                    record.destinazioni.push(s);
                }
            }
            // A CV of regional scope from a region is that region's to publish, not the
            // NCN's (document §4.1).
            if let Modulo::Candidatura(c) = m {
                if rete::ambito(c) == rete::Ambito::Regionale && !mittente.same(&n.own) {
                    record.scheda = None;
                }
            }
            let mut t = if r.nodi.is_empty() {
                format!("{}: non inoltrata", r.motivo)
            } else {
                format!(
                    "{}: inoltrata a {}",
                    r.motivo,
                    r.nodi
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if r.eures {
                t.push_str("; in coda per EURES");
            }
            rotta = Some(t);
        }
        (Ruolo::Nr, _) => {
            // Disseminated by the NCN: contacts about it go back through the NCN; a percettore
            // routed here is this region's to follow.
            let percettore_qui = matches!(m, Modulo::Candidatura(c) if c.dati_sistema.percettore.as_deref().map(str::trim) == Some("SI"));
            record.titolare = if mittente.same(&n.own) || percettore_qui {
                None
            } else {
                Some(mittente.to_string())
            };
        }
        (Ruolo::None, _) => {}
    }
    if chiusura {
        record.stato = StatoModulo::Chiuso;
    }
    debug_assert!(record.kind == kind && record.code == m.codice());
    batch.push(Scrittura::modulo(&record));
    store.scrivi(&batch)?;
    Ok(Ok(Accettazione { effetto, rotta }))
}

/// Outbox entries forwarding a modulo to nodes (and EURES), each with its own Identificatore.
#[allow(clippy::too_many_arguments, reason = "the parts of one forward")]
fn inoltri(
    n: &Nodo<'_>,
    m: &Modulo,
    xml: &str,
    nodi: &[Parte],
    eures: bool,
    invio: bool,
    causa: Option<&str>,
    now: DateTime<FixedOffset>,
) -> Result<Vec<Scrittura>, ServiceError> {
    let op = ws::OPERAZIONI
        .iter()
        .find(|o| o.tipo == m.tipo() && o.azione != "InvioPercettore")
        .unwrap_or(&ws::OPERAZIONI[0]);
    let corpo = ws::richiesta(op, xml);
    let mut out = Vec::new();
    let voce = |destinatario: String,
                id: String,
                ora: DateTime<FixedOffset>,
                corpo: String|
     -> Result<Inoltro, ServiceError> {
        Ok(Inoltro {
            seq: n.store.next_seq()?,
            creato: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            destinatario,
            servizio: "ClicLavoro".into(),
            azione: op.azione.into(),
            id,
            ora: ora.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            corpo,
            kind: m.tipo().as_str().into(),
            codice: m.codice().into(),
            invio,
            tentativi: 0,
            prossimo_ms: now.timestamp_millis(),
            stato: StatoInoltro::InAttesa,
            errore: None,
            causa: causa.map(str::to_string),
        })
    };
    for p in nodi {
        let (id, ora) = (n.nuovo_id)()?;
        let i = voce(p.to_string(), id, ora, corpo.clone())?;
        out.push(Scrittura::metti("outbox", i.chiave(), &i));
    }
    if eures {
        // A CV as a Europass CV; its chiusura, and vacancies, as the modulo itself.
        let doc = match m {
            Modulo::Candidatura(c) if c.dati_sistema.tipocandidatura.trim() != "02" => {
                europass::europass(c, now.naive_utc())
            }
            _ => xml.to_string(),
        };
        let i = voce("EURES".into(), String::new(), now, doc)?;
        // Kept for `pdd eures export`, and queued when an EURES endpoint is configured.
        out.push(Scrittura::metti(
            "eures",
            format!("{}/{}/{:020}", i.kind, i.codice, i.seq),
            &i,
        ));
        if n.eures_url {
            out.push(Scrittura::metti("outbox", i.chiave(), &i));
        }
    }
    Ok(out)
}

/// A request of this node's own local systems (porta delegata) handled here, as if this node
/// had sent it to itself: at the NCN the national portal's moduli, stored and disseminated; at
/// a regional node its copy of what the NCN accepted. `None` when the request carries no
/// modulo for a ClicLavoro operation (the answer then comes from the usual path).
pub fn ricevi_locale(
    n: &Nodo<'_>,
    azione: &str,
    richiesta: &[u8],
    received_at: DateTime<FixedOffset>,
) -> Result<Option<Esito>, ServiceError> {
    let Some(op) = ws::operazione(azione) else {
        return Ok(None);
    };
    let Ok(env) = crate::soap::Envelope::parse(richiesta, n.limits) else {
        return Ok(None);
    };
    let tree = env.body_tree(n.limits).ok().flatten();
    let testo = match modulo_della_richiesta(op, tree.as_ref()) {
        Ok(t) => t,
        Err(why) => return Ok(Some(ko(op, why))),
    };
    ricevi(n, op, testo, &n.own, None, received_at).map(Some)
}

/// Whether a `risposta_invio*` body says OK.
pub fn risposta_ok(body: &[u8], limits: Limits) -> bool {
    let Ok(env) = crate::soap::Envelope::parse(body, limits) else {
        return false;
    };
    let Ok(Some(tree)) = env.body_tree(limits) else {
        return false;
    };
    tree.children
        .iter()
        .find(|c| c.is(NS_TYPES, "Tipo_Risposta"))
        .is_some_and(|c| c.text.trim() == "OK")
}

fn ko(op: &Operazione, why: String) -> Esito {
    Esito {
        body: ws::risposta(op, false, &why),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("KO {why}")),
    }
}
