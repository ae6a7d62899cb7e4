//! The outbox worker: delivers the NCN's forwards (and EURES documents) written durably when a
//! modulo was accepted. Each forward keeps its Identificatore across attempts, so the
//! receiver's duplicate filter turns a redelivery into "already received"; failures are retried
//! with doubling waits (`[outbox] retry_min_secs` … `retry_max_secs`), for ever, in order per
//! receiving node. A business KO is final: the entry stays, marked `respinto`, for the operator.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::diagnostici::{Diagnostico, Severita};
use super::risposte::EccezioneApplicativa;
use super::{Gateway, RichiestaPd};
use crate::egov::Codice;
use crate::rete::attesa;
use crate::store::{Forward, ForwardState, StatoModulo, StoreError, Write};

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Esito {
    Consegnato(&'static str),
    /// Refused on its merits: final.
    Respinto(String),
    /// Try again later; `nuovo_id` when the receiver found the busta expired (it waited longer
    /// than the receiver's window): it never reached the receiver's duplicate filter, so the
    /// next attempt is a new message, under a new Identificatore.
    Riprova {
        why: String,
        nuovo_id: bool,
    },
    /// No longer to be sent (the modulo expired meanwhile).
    Annullato(String),
}

/// Longest sleep of the worker when nothing is due (it also wakes on new forwards).
const RIPOSO_MAX_MS: i64 = 30_000;

impl Gateway {
    /// Every entry of the outbox, in order. An unreadable entry is logged and left aside, so
    /// one bad record does not stop every delivery.
    pub async fn outbox(&self) -> Result<Vec<Forward>, StoreError> {
        self.store.outbox().await
    }

    /// Puts refused entries (all, or the one with this seq) back in the queue, each under a new
    /// Identificatore; how many.
    pub async fn outbox_riprova(&self, seq: Option<u64>) -> Result<usize, StoreError> {
        let mut batch = Vec::new();
        let now = self.now().timestamp_millis();
        for mut i in self.outbox().await? {
            // Only refused entries: a pending one may be in flight.
            if i.stato != ForwardState::Refused || seq.is_some_and(|s| s != i.seq) {
                continue;
            }
            i.stato = ForwardState::Pending;
            i.prossimo_ms = now;
            // The receiver processed (and refused) the old Identificatore: its duplicate filter
            // would now absorb it, so the new attempt is a new message.
            if !i.id.is_empty() {
                let at = self.now();
                i.id = self.new_id(&self.own(), at).await?;
                i.ora = at;
            }
            batch.push(Write::Forward(i));
        }
        let n = batch.len();
        self.store.apply(batch).await?;
        self.store.flush().await?;
        self.outbox_notify.notify_one();
        Ok(n)
    }

    /// One round: starts delivering, for every receiving node whose queue is due and not
    /// already being delivered, its queue in order (one task per node, so a slow node holds
    /// up nobody else; a task wakes the worker when it ends). Returns when the next waiting
    /// queue head is due (ms since the epoch), if any.
    pub async fn outbox_giro(self: &Arc<Self>) -> Result<Option<i64>, StoreError> {
        let now = self.now().timestamp_millis();
        let mut code: BTreeMap<String, Vec<Forward>> = BTreeMap::new();
        for i in self.outbox().await? {
            if i.stato == ForwardState::Pending {
                code.entry(i.destinatario.clone()).or_default().push(i);
            }
        }
        let mut prossimo: Option<i64> = None;
        let mut attivi = self.outbox_attivi.lock().unwrap_or_else(|e| e.into_inner());
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
            attivi.insert(destinatario.clone());
            let gw = self.clone();
            tokio::spawn(async move {
                if let Err(e) = gw.consegna_coda(coda).await {
                    warn!(error = %e, "outbox: store error");
                }
                if let Err(e) = gw.store.flush().await {
                    warn!(error = %e, "outbox: flush failed");
                }
                gw.outbox_attivi
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&destinatario);
                gw.outbox_notify.notify_one();
            });
        }
        Ok(prossimo)
    }

    async fn consegna_coda(&self, coda: Vec<Forward>) -> Result<(), StoreError> {
        for mut i in coda {
            let esito = self.consegna(&i).await;
            let scrittura = match esito {
                Esito::Consegnato(come) => {
                    info!(seq = i.seq, destinatario = %i.destinatario, id = %i.id, kind = i.kind.as_str(), codice = %i.codice, tentativi = i.tentativi + 1, "forward delivered ({come})");
                    if i.tentativi > 0 {
                        self.diagnostica(diagnostico(
                            &i,
                            Severita::InfoIntegration,
                            "PDD_OUTBOX_CONSEGNATO".into(),
                            format!("consegnato al tentativo {} ({come})", i.tentativi + 1),
                        ))
                        .await;
                    }
                    Write::ForwardDone(i.seq)
                }
                Esito::Annullato(why) => {
                    info!(seq = i.seq, destinatario = %i.destinatario, codice = %i.codice, "forward dropped: {why}");
                    self.diagnostica(diagnostico(
                        &i,
                        Severita::InfoIntegration,
                        "PDD_OUTBOX_ANNULLATO".into(),
                        "annullato prima della consegna (modulo scaduto, o EURES non configurato)"
                            .into(),
                    ))
                    .await;
                    Write::ForwardDone(i.seq)
                }
                Esito::Respinto(why) => {
                    warn!(seq = i.seq, destinatario = %i.destinatario, codice = %i.codice, "forward refused by the receiver: {why}");
                    let (codice, perche) = motivo(&why, "PDD_OUTBOX_RESPINTO");
                    self.diagnostica(diagnostico(
                        &i,
                        Severita::ErrorIntegration,
                        codice,
                        format!(
                            "respinto al tentativo {}: {perche}; resta respinto fino a pdd outbox retry",
                            i.tentativi + 1
                        ),
                    )).await;
                    i.tentativi += 1;
                    i.stato = ForwardState::Refused;
                    i.errore = Some(why);
                    Write::Forward(i)
                }
                Esito::Riprova { why, nuovo_id } => {
                    if nuovo_id {
                        let at = self.now();
                        i.id = self.new_id(&self.own(), at).await?;
                        i.ora = at;
                    }
                    let wait = attesa(
                        i.tentativi,
                        self.config.outbox.retry_min_secs,
                        self.config.outbox.retry_max_secs,
                    );
                    i.tentativi += 1;
                    i.prossimo_ms = self.now().timestamp_millis() + (wait as i64) * 1000;
                    info!(seq = i.seq, destinatario = %i.destinatario, tentativi = i.tentativi, retry_in_secs = wait, "forward not delivered: {why}");
                    let (codice, perche) = motivo(&why, "PDD_OUTBOX_RIPROVA");
                    self.diagnostica(diagnostico(
                        &i,
                        Severita::InfoIntegration,
                        codice,
                        format!(
                            "non consegnato al tentativo {}: {perche}; nuovo tentativo tra {wait} s",
                            i.tentativi
                        ),
                    )).await;
                    i.errore = Some(why);
                    self.store.apply(vec![Write::Forward(i)]).await?;
                    // The rest of this node's queue waits behind it.
                    return Ok(());
                }
            };
            self.store.apply(vec![scrittura]).await?;
        }
        Ok(())
    }

    async fn consegna(&self, i: &Forward) -> Esito {
        if i.invio {
            if let Ok(Some(m)) = self.store.modulo(i.kind, &i.codice).await {
                if m.stato == StatoModulo::Scaduto {
                    return Esito::Annullato(format!("{} {} scaduta", i.kind.as_str(), i.codice));
                }
            }
        }
        if i.destinatario == "EURES" {
            return self.consegna_eures(i).await;
        }
        let body = crate::soap::envelope(&[], &i.corpo);
        let (answer, errore) = self
            .porta_delegata_esito(RichiestaPd {
                servizio: i.servizio.clone(),
                azione: Some(i.azione.clone()),
                destinatario: Some(i.destinatario.clone()),
                body: body.as_bytes(),
                peer: None,
                fisso: Some((i.id.clone(), i.ora)),
            })
            .await;
        match errore {
            None if crate::service::cliclavoro::risposta_ok(
                answer.body.as_bytes(),
                self.limits,
            ) =>
            {
                Esito::Consegnato("OK")
            }
            None => Esito::Respinto(descrizione_esito(&answer.body)),
            // After an attempt whose outcome we did not learn: the receiver already has this
            // Identificatore, that attempt got through and its answer was lost. On a first
            // attempt the receiver refuses the Identificatore itself (not ours to it): refused.
            Some(EccezioneApplicativa::Busta(c, d)) if c == Codice::ID_NON_VALIDO => {
                if i.tentativi > 0 {
                    Esito::Consegnato("già ricevuto")
                } else {
                    Esito::Respinto(format!("{c} {d} (al primo tentativo)"))
                }
            }
            // Security (certificates, authorization: the operators can fix them) and the
            // receiver's processing: try again. An expired busta: again, as a new message.
            // Anything else is wrong with the message itself: refused, so the queue behind it
            // moves on.
            Some(EccezioneApplicativa::Busta(c, d)) => match c.0 {
                200..=301 => Esito::Riprova {
                    why: format!("{c} {d}"),
                    nuovo_id: c == Codice::SCADUTO,
                },
                _ => Esito::Respinto(format!("{c} {d}")),
            },
            Some(EccezioneApplicativa::Processamento(c, d)) => Esito::Riprova {
                why: format!("{c} {d}"),
                nuovo_id: false,
            },
        }
    }

    async fn consegna_eures(&self, i: &Forward) -> Esito {
        let Some(url) = &self.config.cliclavoro.eures_url else {
            return Esito::Annullato("nessun endpoint EURES configurato".into());
        };
        let headers = [("Content-Type".to_string(), "application/xml".to_string())];
        match self
            .http
            .post_soap(url, i.corpo.clone(), &headers, self.pd_timeout())
            .await
        {
            Ok(r) if (200..300).contains(&r.status) => Esito::Consegnato("EURES"),
            Ok(r) if (400..500).contains(&r.status) => Esito::Respinto(format!(
                "EURES ha risposto HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
            Ok(r) => Esito::Riprova {
                why: format!("EURES ha risposto HTTP {}", r.status),
                nuovo_id: false,
            },
            Err(e) => Esito::Riprova {
                why: e.to_string(),
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

/// The code and a message of an attempt's outcome for a diagnostic: of an eccezione (`EGOV_IT_…
/// text`, the text possibly the partner's) the code and its description only; a KO's
/// Descr_Esito (it may name the modulo's data) not at all; our own transport errors as they are.
fn motivo(why: &str, altrimenti: &str) -> (String, String) {
    match why.get(..11).and_then(Codice::parse) {
        Some(c) => (c.to_string(), format!("{c} {}", c.descrizione())),
        None if why.starts_with("EURES ha risposto HTTP") => (
            altrimenti.to_string(),
            why.split(':').next().unwrap_or(why).to_string(),
        ),
        None if altrimenti == "PDD_OUTBOX_RESPINTO" => (
            altrimenti.to_string(),
            "esito KO del destinatario (vedi pdd outbox list)".to_string(),
        ),
        None => (altrimenti.to_string(), why.to_string()),
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
pub async fn worker(gw: Arc<Gateway>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let next = match gw.outbox_giro().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox round failed");
                gw.diagnostica(Diagnostico::new(
                    Severita::Fatal,
                    "Outbox",
                    "PDD_STORE",
                    "giro dell'outbox non riuscito: lo store non risponde",
                ))
                .await;
                None
            }
        };
        let now = gw.now().timestamp_millis();
        let wait = next.map_or(RIPOSO_MAX_MS, |t| (t - now).clamp(50, RIPOSO_MAX_MS));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = gw.outbox_notify.notified() => {}
            _ = &mut stop => return,
        }
    }
}
