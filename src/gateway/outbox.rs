//! The outbox: delivers the NCN's forwards (and EURES documents) written durably when a
//! modulo was accepted. Each forward keeps its Identificatore across attempts, so the
//! receiver's duplicate filter turns a redelivery into "already received"; failures are retried
//! with doubling waits (`[outbox] retry_min_secs` … `retry_max_secs`), for ever, in order per
//! receiving node. A business KO is final: the entry stays, marked refused, for the operator.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use super::diagnostici::{Diagnostico, Severita};
use super::{PortaDelegata, RichiestaPd, Shared};
use crate::egov::risposte::EccezioneApplicativa;
use crate::egov::Codice;
use crate::rete::attesa;
use crate::store::{Forward, ForwardState, StatoModulo, StoreError, Write};

/// The outbox: its deliveries go through the porta delegata.
/// A percettore kept at this node, forwarded nowhere ([`Outbox::trattenuti`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trattenuto {
    pub codice: String,
    pub ricevuto: String,
    /// The Belfiore code of the worker's domicile.
    pub domicilio: String,
    /// The regional node it belongs to (not in the network), if the domicile is in a region.
    pub regione: Option<String>,
}

pub struct Outbox {
    s: Arc<Shared>,
    pd: Arc<PortaDelegata>,
    /// Receiving nodes whose queue a delivery task is working through.
    attivi: Mutex<HashSet<String>>,
}

/// Why an attempt failed, as the operator's diagnostic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Causa {
    /// An eccezione (its code only: the rest may be the partner's text).
    Eccezione(Codice),
    /// A business KO of the receiver (its Descr_Esito may name the modulo's data).
    Ko,
    /// EURES answered with this HTTP status.
    Eures(u16),
    /// Ours (the transport to EURES), said as it is.
    Nostra,
}

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Tentativo {
    Consegnato(&'static str),
    /// Refused on its merits: final.
    Respinto {
        why: String,
        causa: Causa,
    },
    /// Try again later; `nuovo_id` when the receiver found the busta expired (it waited longer
    /// than the receiver's window): it never reached the receiver's duplicate filter, so the
    /// next attempt is a new message, under a new Identificatore.
    Riprova {
        why: String,
        causa: Causa,
        nuovo_id: bool,
    },
    /// No longer to be sent (the modulo expired meanwhile).
    Annullato(String),
}

/// Longest sleep of the worker when nothing is due (it also wakes on new forwards).
const RIPOSO_MAX_MS: i64 = 30_000;

impl Outbox {
    pub(super) fn new(s: Arc<Shared>, pd: Arc<PortaDelegata>) -> Outbox {
        Outbox {
            s,
            pd,
            attivi: Mutex::default(),
        }
    }

    /// Every entry of the outbox, in order.
    pub async fn elenco(&self) -> Result<Vec<Forward>, StoreError> {
        self.s.store.outbox().await
    }

    /// The active percettori this node keeps without forwarding them: the region of the
    /// worker's domicile has no node in the network (or the domicile is in none), so nobody
    /// follows them until it has. Oldest first.
    pub async fn trattenuti(&self) -> Result<Vec<Trattenuto>, StoreError> {
        let mut out = Vec::new();
        for m in self
            .s
            .store
            .moduli(crate::modulo::Tipo::Candidatura)
            .await?
        {
            if m.stato != StatoModulo::Attivo || !m.destinazioni.is_empty() || m.titolare.is_some()
            {
                continue;
            }
            let Some(crate::modulo::Modulo::Candidatura(c)) =
                crate::xml::parse_document(m.xml.as_bytes(), self.s.limits)
                    .ok()
                    .and_then(|d| crate::modulo::Modulo::leggi(&d))
            else {
                continue;
            };
            if c.dati_sistema.percettore.as_deref().map(str::trim) != Some("SI") {
                continue;
            }
            let domicilio = c.lavoratore.domicilio.idcomune.trim().to_string();
            out.push(Trattenuto {
                regione: crate::rete::nodo_del_comune(&domicilio).map(String::from),
                domicilio,
                codice: m.code,
                ricevuto: crate::clock::ora::testo(&m.received_at),
            });
        }
        out.sort_by(|a, b| a.ricevuto.cmp(&b.ricevuto));
        Ok(out)
    }

    /// Puts refused entries (all, or the one with this seq) back in the queue, each under a new
    /// Identificatore; how many.
    pub async fn riprova(&self, seq: Option<u64>) -> Result<usize, StoreError> {
        let mut batch = Vec::new();
        let now = self.s.now().timestamp_millis();
        for mut i in self.elenco().await? {
            // Only refused entries: a pending one may be in flight.
            if i.stato != ForwardState::Refused || seq.is_some_and(|s| s != i.seq) {
                continue;
            }
            i.stato = ForwardState::Pending;
            i.prossimo_ms = now;
            // The receiver processed (and refused) the old Identificatore: its duplicate filter
            // would now absorb it, so the new attempt is a new message.
            if !i.id.is_empty() {
                let at = self.s.now();
                i.id = self.s.new_id(&self.s.own(), at).await?;
                i.ora = at;
            }
            batch.push(Write::Forward(i));
        }
        let n = batch.len();
        self.s.store.apply(batch).await?;
        self.s.store.flush().await?;
        self.s.outbox_notify.notify_one();
        Ok(n)
    }

    /// One round: starts delivering, for every receiving node whose queue is due and not
    /// already being delivered, its queue in order (one task per node, so a slow node holds
    /// up nobody else; a task wakes the worker when it ends). Returns when the next waiting
    /// queue head is due (ms since the epoch), if any.
    pub async fn giro(self: &Arc<Self>) -> Result<Option<i64>, StoreError> {
        let now = self.s.now().timestamp_millis();
        let mut code: BTreeMap<String, Vec<Forward>> = BTreeMap::new();
        for i in self.elenco().await? {
            if i.stato == ForwardState::Pending {
                code.entry(i.destinatario.clone()).or_default().push(i);
            }
        }
        let mut prossimo: Option<i64> = None;
        let mut pronte = Vec::new();
        {
            let attivi = self.attivi.lock().unwrap_or_else(|e| e.into_inner());
            for (destinatario, coda) in code {
                if attivi.contains(&destinatario) {
                    continue;
                }
                // Order per node: the head waits, the rest wait behind it.
                let testa = coda.first().map_or(now, |i| i.prossimo_ms);
                if testa > now {
                    prossimo = Some(prossimo.map_or(testa, |p| p.min(testa)));
                    continue;
                }
                pronte.push(destinatario);
            }
        }
        for destinatario in pronte {
            // Nodes sharing a store: one delivers a destination's queue at a time (its order
            // kept), and another takes it over when that one dies (its lease expires).
            let lease = format!("outbox/{destinatario}");
            if !self
                .s
                .store
                .lease(&lease, &self.s.nodo, now, self.lease_ms())
                .await?
            {
                continue;
            }
            if !self
                .attivi
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(destinatario.clone())
            {
                continue;
            }
            let o = self.clone();
            tokio::spawn(async move {
                // Read again under the lease: another node may have delivered some of it
                // since the list above was read.
                let coda = o.elenco().await.map(|tutte| {
                    tutte
                        .into_iter()
                        .filter(|i| {
                            i.destinatario == destinatario && i.stato == ForwardState::Pending
                        })
                        .collect::<Vec<_>>()
                });
                if let Err(e) = match coda {
                    Ok(coda) => o.consegna_coda(coda).await,
                    Err(e) => Err(e),
                } {
                    warn!(error = %e, "outbox: store error");
                }
                if let Err(e) = o.s.store.release_lease(&lease, &o.s.nodo).await {
                    warn!(error = %e, "outbox: lease not released (it expires)");
                }
                if let Err(e) = o.s.store.flush().await {
                    warn!(error = %e, "outbox: flush failed");
                }
                o.attivi
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&destinatario);
                o.s.outbox_notify.notify_one();
            });
        }
        Ok(prossimo)
    }

    /// How long an outbox lease lasts without renewal.
    fn lease_ms(&self) -> i64 {
        (self.s.config.cluster.lease_secs.max(1) as i64) * 1000
    }

    async fn consegna_coda(&self, coda: Vec<Forward>) -> Result<(), StoreError> {
        for mut i in coda {
            // Renewed before each forward: a node that lost it (it stalled past the lease)
            // stops, and the node that took it over goes on in order.
            let lease = format!("outbox/{}", i.destinatario);
            let now = self.s.now().timestamp_millis();
            if !self
                .s
                .store
                .lease(&lease, &self.s.nodo, now, self.lease_ms())
                .await?
            {
                info!(destinatario = %i.destinatario, "outbox: another node delivers this queue now");
                return Ok(());
            }
            let esito = self.consegna(&i).await;
            let scrittura = match esito {
                Tentativo::Consegnato(come) => {
                    info!(seq = i.seq, destinatario = %i.destinatario, id = %i.id, kind = i.kind.as_str(), codice = %i.codice, tentativi = i.tentativi + 1, "forward delivered ({come})");
                    if i.tentativi > 0 {
                        self.s
                            .diagnostica(diagnostico(
                                &i,
                                Severita::InfoIntegration,
                                "PDD_OUTBOX_CONSEGNATO".into(),
                                format!("consegnato al tentativo {} ({come})", i.tentativi + 1),
                            ))
                            .await;
                    }
                    Write::ForwardDone(i.seq)
                }
                Tentativo::Annullato(why) => {
                    info!(seq = i.seq, destinatario = %i.destinatario, codice = %i.codice, "forward dropped: {why}");
                    self.s
                        .diagnostica(diagnostico(
                            &i,
                            Severita::InfoIntegration,
                            "PDD_OUTBOX_ANNULLATO".into(),
                            "annullato prima della consegna (modulo scaduto, o EURES non configurato)"
                                .into(),
                        ))
                        .await;
                    Write::ForwardDone(i.seq)
                }
                Tentativo::Respinto { why, causa } => {
                    warn!(seq = i.seq, destinatario = %i.destinatario, codice = %i.codice, "forward refused by the receiver: {why}");
                    let (codice, perche) = motivo(&why, causa, "PDD_OUTBOX_RESPINTO");
                    self.s
                        .diagnostica(diagnostico(
                            &i,
                            Severita::ErrorIntegration,
                            codice,
                            format!(
                                "respinto al tentativo {}: {perche}; resta respinto fino a pdd outbox retry",
                                i.tentativi + 1
                            ),
                        ))
                        .await;
                    i.tentativi += 1;
                    i.stato = ForwardState::Refused;
                    i.errore = Some(why);
                    Write::Forward(i)
                }
                Tentativo::Riprova {
                    why,
                    causa,
                    nuovo_id,
                } => {
                    if nuovo_id {
                        let at = self.s.now();
                        i.id = self.s.new_id(&self.s.own(), at).await?;
                        i.ora = at;
                    }
                    let c = &self.s.config.outbox;
                    let wait = attesa(i.tentativi, c.retry_min_secs, c.retry_max_secs);
                    i.tentativi += 1;
                    i.prossimo_ms = self.s.now().timestamp_millis() + (wait as i64) * 1000;
                    info!(seq = i.seq, destinatario = %i.destinatario, tentativi = i.tentativi, retry_in_secs = wait, "forward not delivered: {why}");
                    let (codice, perche) = motivo(&why, causa, "PDD_OUTBOX_RIPROVA");
                    self.s
                        .diagnostica(diagnostico(
                            &i,
                            Severita::InfoIntegration,
                            codice,
                            format!(
                                "non consegnato al tentativo {}: {perche}; nuovo tentativo tra {wait} s",
                                i.tentativi
                            ),
                        ))
                        .await;
                    i.errore = Some(why);
                    self.s.store.apply(vec![Write::Forward(i)]).await?;
                    // The rest of this node's queue waits behind it.
                    return Ok(());
                }
            };
            self.s.store.apply(vec![scrittura]).await?;
        }
        Ok(())
    }

    /// Whether an attempt with this Identificatore went out before `inizio` although it was
    /// never counted (this process died before learning its outcome): the porta delegata
    /// records every attempt before sending it, and the first record of an id keeps it.
    async fn tentato_prima(&self, id: &str, inizio: chrono::DateTime<chrono::FixedOffset>) -> bool {
        matches!(
            self.s.store.exchange_by_id(id).await,
            // Records keep milliseconds: this attempt's own is never earlier than its start.
            Ok(Some(e)) if e.received_at.timestamp_millis() < inizio.timestamp_millis()
        )
    }

    async fn consegna(&self, i: &Forward) -> Tentativo {
        if i.invio {
            if let Ok(Some(m)) = self.s.store.modulo(i.kind, &i.codice).await {
                if m.stato == StatoModulo::Scaduto {
                    return Tentativo::Annullato(format!(
                        "{} {} scaduta",
                        i.kind.as_str(),
                        i.codice
                    ));
                }
            }
        }
        if i.destinatario == crate::rete::EURES {
            return self.consegna_eures(i).await;
        }
        let inizio = self.s.now();
        let body = crate::soap::envelope(&[], &i.corpo);
        let (answer, errore) = self
            .pd
            .invia_esito(RichiestaPd {
                servizio: i.servizio.clone(),
                azione: Some(i.azione.clone()),
                destinatario: Some(i.destinatario.clone()),
                body: body.as_bytes(),
                peer: None,
                fisso: Some((i.id.clone(), i.ora)),
                riferimento: None,
                collaborazione: None,
                allegati: &[],
            })
            .await;
        match errore {
            None if crate::service::cliclavoro::risposta_ok(
                answer.body.as_bytes(),
                self.s.limits,
            ) =>
            {
                Tentativo::Consegnato("OK")
            }
            None => Tentativo::Respinto {
                why: descrizione_esito(&answer.body),
                causa: Causa::Ko,
            },
            // After an attempt whose outcome we did not learn: the receiver already has this
            // Identificatore, that attempt got through and its answer was lost. On a first
            // attempt the receiver refuses the Identificatore itself (not ours to it): refused.
            Some(EccezioneApplicativa::Busta(c, d)) if c == Codice::ID_NON_VALIDO => {
                if i.tentativi > 0 || self.tentato_prima(&i.id, inizio).await {
                    Tentativo::Consegnato("già ricevuto")
                } else {
                    Tentativo::Respinto {
                        why: format!("{c} {d} (al primo tentativo)"),
                        causa: Causa::Eccezione(c),
                    }
                }
            }
            // Security (certificates, authorization: the operators can fix them) and the
            // receiver's processing: try again. An expired busta: again, as a new message.
            // Anything else is wrong with the message itself: refused, so the queue behind it
            // moves on.
            Some(EccezioneApplicativa::Busta(c, d)) => match c.0 {
                200..=301 => Tentativo::Riprova {
                    why: format!("{c} {d}"),
                    causa: Causa::Eccezione(c),
                    nuovo_id: c == Codice::SCADUTO,
                },
                _ => Tentativo::Respinto {
                    why: format!("{c} {d}"),
                    causa: Causa::Eccezione(c),
                },
            },
            Some(EccezioneApplicativa::Processamento(c, d)) => Tentativo::Riprova {
                why: format!("{c} {d}"),
                causa: Causa::Eccezione(c),
                nuovo_id: false,
            },
        }
    }

    async fn consegna_eures(&self, i: &Forward) -> Tentativo {
        let Some(url) = &self.s.config.cliclavoro.eures_url else {
            return Tentativo::Annullato("nessun endpoint EURES configurato".into());
        };
        let headers = [("Content-Type".to_string(), "application/xml".to_string())];
        let timeout = Duration::from_secs(self.s.config.porta_delegata.timeout_secs);
        match self
            .s
            .transport
            .post_soap(url, i.corpo.clone().into(), &headers, timeout)
            .await
        {
            Ok(r) if (200..300).contains(&r.status) => Tentativo::Consegnato("EURES"),
            Ok(r) if (400..500).contains(&r.status) => Tentativo::Respinto {
                why: format!(
                    "EURES ha risposto HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
                causa: Causa::Eures(r.status),
            },
            Ok(r) => Tentativo::Riprova {
                why: format!("EURES ha risposto HTTP {}", r.status),
                causa: Causa::Eures(r.status),
                nuovo_id: false,
            },
            Err(e) => Tentativo::Riprova {
                why: e.to_string(),
                causa: Causa::Nostra,
                nuovo_id: false,
            },
        }
    }
}

/// A diagnostic about a forward: its outbox seq and Identificatore, kind and receiver (never
/// the modulo's code or content).
fn diagnostico(i: &Forward, severita: Severita, codice: String, cosa: String) -> Diagnostico {
    let mut d = Diagnostico::new(
        severita,
        "Outbox",
        codice,
        format!(
            "inoltro {} ({}) a {}: {cosa}",
            i.seq,
            i.kind.as_str(),
            i.destinatario
        ),
    );
    d.id = (!i.id.is_empty()).then(|| i.id.clone());
    d
}

/// The code and a message of an attempt's outcome for a diagnostic: of an eccezione (the text
/// possibly the partner's) the code and its description only; a KO's Descr_Esito (it may name
/// the modulo's data) not at all; our own transport errors as they are.
fn motivo(why: &str, causa: Causa, altrimenti: &str) -> (String, String) {
    match causa {
        Causa::Eccezione(c) => (c.to_string(), format!("{c} {}", c.descrizione())),
        Causa::Eures(status) => (
            altrimenti.to_string(),
            format!("EURES ha risposto HTTP {status}"),
        ),
        Causa::Ko => (
            altrimenti.to_string(),
            "esito KO del destinatario (vedi pdd outbox list)".to_string(),
        ),
        Causa::Nostra => (altrimenti.to_string(), why.to_string()),
    }
}

/// The Descr_Esito of a KO answer, for the operator.
fn descrizione_esito(body: &str) -> String {
    let d = body
        .split_once("Descr_Esito>")
        .and_then(|(_, rest)| rest.split_once("</"))
        .map(|(d, _)| d.to_string())
        .unwrap_or_else(|| "risposta KO".into());
    crate::xml::unescape(&d)
        .map(|c| c.into_owned())
        .unwrap_or(d)
}

/// Runs the outbox until `stop` resolves: a round when something is due or new forwards are
/// queued, and at least every 30 s.
pub async fn worker(o: Arc<Outbox>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let next = match o.giro().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox round failed");
                o.s.diagnostica(Diagnostico::new(
                    Severita::Fatal,
                    "Outbox",
                    "PDD_STORE",
                    "giro dell'outbox non riuscito: lo store non risponde",
                ))
                .await;
                None
            }
        };
        let now = o.s.now().timestamp_millis();
        let wait = next.map_or(RIPOSO_MAX_MS, |t| (t - now).clamp(50, RIPOSO_MAX_MS));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = o.s.outbox_notify.notified() => {}
            _ = &mut stop => return,
        }
    }
}
