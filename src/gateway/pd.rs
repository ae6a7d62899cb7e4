//! Porta delegata: a local system posts plain SOAP to `/pdd/PD/{Servizio}/{Azione}`; the gateway
//! builds the busta (imbustamento), sends it to the partner's porta applicativa, and returns the
//! unwrapped answer (or a Fault with MessaggioDiErroreApplicativo). The steps
//! ([`PortaDelegata::elabora`]): read the request, find the destinatario, handle it here when
//! the destinatario is ours, find the partner and its servizio, build and sign the busta, send
//! it, read the answer; then record the exchange and answer ([`PortaDelegata::chiudi`]).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, info_span, warn, Instrument};

use super::diagnostici::{self, Diagnostico, Severita};
use super::error::PdError;
use super::{describe, elenco, Answer, Shared};
use crate::egov::reader::{self, Lettura};
use crate::egov::risposte::{principale, EccezioneApplicativa, Funzione};
use crate::egov::{self, writer, Busta, Codice, Identificatore, Ora, Parte, Profilo, Servizio};
use crate::registry::Registry;
use crate::service::cliclavoro::Preparata;
use crate::service::Reply;
use crate::soap::{self, Envelope};
use crate::store::{Direction, Exchange, Outcome};

/// A request of a local system (or of the outbox).
pub struct RichiestaPd<'a> {
    pub servizio: String,
    pub azione: Option<String>,
    /// `TIPO/NOME` from the `X-PDD-Destinatario` header.
    pub destinatario: Option<String>,
    pub body: &'a [u8],
    pub peer: Option<String>,
    /// A forward from the outbox: the Identificatore and time it keeps across retries, so that
    /// the partner's duplicate filter recognises a redelivery.
    pub fisso: Option<(String, chrono::DateTime<chrono::FixedOffset>)>,
    /// The correlation the local system gives (`X-PDD-RiferimentoMessaggio`,
    /// `X-PDD-Collaborazione`): the message this one answers or follows, and the conversation.
    pub riferimento: Option<String>,
    pub collaborazione: Option<String>,
    /// SOAP with Attachments: the local system's parts besides its envelope, sent with a
    /// Manifest.
    pub allegati: &'a [crate::mime::Parte],
}

/// The porta delegata.
pub struct PortaDelegata {
    s: Arc<Shared>,
}

/// Where a request goes: a partner's porta applicativa, with what the busta needs.
struct Destinazione {
    parte: Parte,
    url: String,
    servizio: crate::registry::Servizio,
    profilo: Profilo,
}

/// The busta built for the partner, and the message carrying it.
struct Imbustata {
    busta: Busta,
    messaggio: String,
    /// The parts sent with it (the original Body last), when the local system gave any.
    allegati: Vec<crate::mime::Parte>,
}

impl PortaDelegata {
    pub(super) fn new(s: Arc<Shared>) -> PortaDelegata {
        PortaDelegata { s }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.s.config.porta_delegata.timeout_secs)
    }

    /// A request of a local system: the answer it gets.
    pub async fn invia(&self, r: RichiestaPd<'_>) -> Answer {
        self.invia_esito(r).await.0
    }

    /// The porta delegata, also telling what went wrong (for the outbox, which retries or not).
    pub async fn invia_esito(&self, r: RichiestaPd<'_>) -> (Answer, Option<EccezioneApplicativa>) {
        let received = self.s.now();
        let mut ex = match self
            .s
            .exchange(Direction::Out, received, r.body, r.peer.clone())
            .await
        {
            Ok(ex) => ex,
            Err(e) => {
                warn!(error = %e, "store unavailable");
                self.s
                    .diagnostica(Diagnostico::new(
                        Severita::Fatal,
                        "Imbustamento",
                        "PDD_STORE",
                        format!(
                            "porta delegata {}: store non disponibile, richiesta respinta",
                            r.servizio
                        ),
                    ))
                    .await;
                let e = PdError::processamento(Funzione::Imbustamento, e.to_string());
                return (self.fault(&e), Some(e.eccezione));
            }
        };
        let span = info_span!("pd", seq = ex.seq, id = tracing::field::Empty);
        async {
            // The register's rules for what the node's own intermediaries publish, before it
            // leaves (a regional node; the NCN applies them as it handles the modulo).
            let riscritta: Vec<u8>;
            let mut r = r;
            let esito = match self.prepara(&r, received).await {
                Ok(Preparata::Invariata) => self.elabora(&r, &mut ex).await,
                Ok(Preparata::Riscritta(body)) => {
                    riscritta = body;
                    r.body = &riscritta;
                    self.elabora(&r, &mut ex).await
                }
                Ok(Preparata::Rifiutata(reply)) => {
                    ex.servizio = Some(format!("SPC/{}", r.servizio));
                    ex.azione = r.azione.clone();
                    ex.outcome = Outcome::Ok;
                    ex.note = reply.note.clone();
                    Ok(Answer::soap(
                        200,
                        soap::envelope_ns(&[], &reply.body, &reply.body_ns),
                    ))
                }
                Err(e) => Err(e),
            };
            let (answer, errore) = self.chiudi(&r, &mut ex, esito).await;
            if errore.is_none() {
                self.tieni_copia(&r, &answer, received).await;
            }
            (answer, errore)
        }
        .instrument(span)
        .await
    }

    /// The register of intermediaries applied to a CV or vacancy of a regional node's local
    /// systems ([`crate::service::cliclavoro::prepara_locale`]).
    async fn prepara(
        &self,
        r: &RichiestaPd<'_>,
        received: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Preparata, PdError> {
        if self.s.config.role != crate::rete::Ruolo::Nr
            || r.fisso.is_some()
            || r.servizio != "ClicLavoro"
        {
            return Ok(Preparata::Invariata);
        }
        let registry = self.s.registry();
        crate::service::cliclavoro::prepara_locale(
            &self.s.nodo(&registry),
            r.azione.as_deref().unwrap_or(""),
            r.body,
            received,
        )
        .await
        .map_err(|e| PdError::processamento(Funzione::Imbustamento, e.to_string()))
    }

    /// The steps, one a line.
    async fn elabora(&self, r: &RichiestaPd<'_>, ex: &mut Exchange) -> Result<Answer, PdError> {
        let registry = self.s.registry();
        let env = Envelope::parse(r.body, self.s.limits).map_err(|e| {
            PdError::processamento(
                Funzione::Imbustamento,
                format!("richiesta non leggibile: {e}"),
            )
        })?;
        if reader::leggi(&env.header_blocks) != Lettura::Assente {
            return Err(PdError::processamento(
                Funzione::Imbustamento,
                "la richiesta contiene già una busta e-Gov: la porta delegata accetta SOAP senza busta",
            ));
        }
        let destinatario = self.destinatario(r, &registry)?;
        if self.s.is_local(&destinatario) {
            return self.locale(r, &destinatario, ex).await;
        }
        let d = self.destinazione(r, destinatario, &registry)?;
        let imbustata = self.imbusta(r, &d, &env, ex).await?;
        let (corpo, intestazioni) = if imbustata.allegati.is_empty() {
            (bytes::Bytes::from(imbustata.messaggio.clone()), Vec::new())
        } else {
            let m = crate::mime::Corpo::scrivi(&imbustata.messaggio, &imbustata.allegati);
            (m.corpo, vec![("Content-Type".to_string(), m.content_type)])
        };
        ex.request = corpo.to_vec();
        // Recorded before it leaves: if the answer never comes (the partner or this process
        // dies), the record says the outcome is unknown.
        ex.outcome = Outcome::Sconosciuto;
        ex.note = Some(format!("inviata a {}: risposta non ancora ricevuta", d.url));
        self.s
            .store
            .commit_exchange(ex, None)
            .await
            .map_err(|e| PdError::processamento(Funzione::Imbustamento, e.to_string()))?;
        ex.note = None;
        let resp = self
            .s
            .transport
            .post_soap(&d.url, corpo, &intestazioni, self.timeout())
            .await?;
        ex.response = resp.body.to_vec();
        if d.profilo == Profilo::OneWay && resp.body.iter().all(u8::is_ascii_whitespace) {
            if (200..300).contains(&resp.status) {
                ex.outcome = Outcome::Ok;
                return Ok(Answer::empty());
            }
            return Err(PdError::processamento(
                Funzione::InoltroBuste,
                format!("{} ha risposto HTTP {} senza contenuto", d.url, resp.status),
            ));
        }
        // The partner's answer may come with attachments (and a Manifest).
        let ct = resp.content_type.as_deref().unwrap_or("");
        if crate::mime::is_multipart_related(ct) {
            let m =
                crate::mime::leggi(ct, &resp.body, self.s.config.limits.mime()).map_err(|e| {
                    PdError::processamento(
                        Funzione::SbustamentoRisposte,
                        format!("risposta del partner con allegati illeggibile: {e}"),
                    )
                })?;
            if let Some(d) = m.difetti.first() {
                return Err(PdError::busta(
                    Funzione::SbustamentoRisposte,
                    Codice::FORMATO_CORPO,
                    format!("allegati della risposta: {d}"),
                ));
            }
            return self.sbusta(
                &m.radice.contenuto,
                resp.status,
                &imbustata.busta,
                &d.parte,
                ex,
                m.allegati,
            );
        }
        self.sbusta(
            &resp.body,
            resp.status,
            &imbustata.busta,
            &d.parte,
            ex,
            Vec::new(),
        )
    }

    /// Step: the destinatario: the header, else the configured default, else the only
    /// erogatore of the servizio we may call.
    fn destinatario(&self, r: &RichiestaPd<'_>, registry: &Registry) -> Result<Parte, PdError> {
        let own = self.s.own();
        let testo = r
            .destinatario
            .clone()
            .or_else(|| self.s.config.porta_delegata.destinatario.clone());
        match testo {
            Some(d) => Parte::parse(&d).ok_or_else(|| {
                PdError::processamento(
                    Funzione::Imbustamento,
                    format!("destinatario '{d}' non è TIPO/NOME"),
                )
            }),
            None => {
                // Only the services we may call: a network where every node offers the same
                // service still resolves (a regional node reaches the NCN).
                let mut candidati = registry
                    .servizi_named(&r.servizio)
                    .filter(|s| s.ammette(&own.parte()))
                    .filter_map(|s| s.erogatore_parte())
                    .filter(|p| !p.same(&own.parte()));
                match (candidati.next(), candidati.next()) {
                    (Some(p), None) => Ok(p),
                    _ => Err(PdError::processamento(
                        Funzione::Imbustamento,
                        format!("destinatario non indicato: usare l'header X-PDD-Destinatario: TIPO/NOME per il servizio {}", r.servizio),
                    )),
                }
            }
        }
    }

    /// Step: the partner, its porta applicativa and the servizio with its azione.
    fn destinazione(
        &self,
        r: &RichiestaPd<'_>,
        destinatario: Parte,
        registry: &Registry,
    ) -> Result<Destinazione, PdError> {
        let imbustamento = Funzione::Imbustamento;
        let partner = registry.soggetto(&destinatario).ok_or_else(|| {
            PdError::busta(
                imbustamento,
                Codice::DESTINATARIO,
                format!("destinatario {destinatario} non registrato"),
            )
        })?;
        let servizio = registry
            .servizio(&destinatario, "SPC", &r.servizio)
            .or_else(|| {
                registry
                    .servizi_named(&r.servizio)
                    .find(|s| s.erogatore_parte().as_ref() == Some(&destinatario))
            })
            .ok_or_else(|| {
                PdError::busta(
                    imbustamento,
                    Codice::SERVIZIO,
                    format!("servizio {} non offerto da {destinatario}", r.servizio),
                )
            })?;
        match &r.azione {
            Some(a) if !servizio.azioni.is_empty() && servizio.azione(a).is_none() => {
                return Err(PdError::busta(
                    imbustamento,
                    Codice::AZIONE,
                    format!("azione {a} non prevista dal servizio {}", servizio.nome),
                ))
            }
            None if servizio.azione_obbligatoria => {
                return Err(PdError::busta(
                    imbustamento,
                    Codice::AZIONE,
                    format!("il servizio {} richiede un'azione", servizio.nome),
                ))
            }
            _ => {}
        }
        let url = partner.url.clone().ok_or_else(|| {
            PdError::processamento(
                imbustamento,
                format!("nessun URL di porta applicativa registrato per {destinatario}"),
            )
        })?;
        Ok(Destinazione {
            profilo: servizio.profilo_per(r.azione.as_deref()),
            parte: destinatario,
            url,
            servizio: servizio.clone(),
        })
    }

    /// Step: imbustamento. The busta (a new Identificatore, or the outbox's own), the local
    /// system's other header blocks and Body, signed when signing is on.
    async fn imbusta(
        &self,
        r: &RichiestaPd<'_>,
        d: &Destinazione,
        env: &Envelope<'_>,
        ex: &mut Exchange,
    ) -> Result<Imbustata, PdError> {
        let own = self.s.own();
        let (id, now) = match &r.fisso {
            Some((id, at)) => (id.clone(), *at),
            None => {
                let now = self.s.now();
                let id =
                    self.s.new_id(&own, now).await.map_err(|e| {
                        PdError::processamento(Funzione::Imbustamento, e.to_string())
                    })?;
                (id, now)
            }
        };
        tracing::Span::current().record("id", id.as_str());
        let ora = Ora {
            ora: now.naive_local(),
            tempo: self.s.config.busta.tempo,
        };
        // The correlation, as the local system gives it; an asynchronous conversation it does
        // not name begins here: its Collaborazione is this message's Identificatore.
        for (h, v) in [
            ("X-PDD-RiferimentoMessaggio", &r.riferimento),
            ("X-PDD-Collaborazione", &r.collaborazione),
        ] {
            if let Some(v) = v.as_deref().filter(|v| Identificatore::parse(v).is_err()) {
                return Err(PdError::processamento(
                    Funzione::Imbustamento,
                    format!("{h} '{v}' non è un Identificatore e-Gov"),
                ));
            }
        }
        let collaborazione = r
            .collaborazione
            .clone()
            .or_else(|| d.profilo.is_async().then(|| id.clone()));
        let mut busta = Busta::richiesta(
            own.parte(),
            d.parte.clone(),
            d.profilo,
            Servizio {
                tipo: d.servizio.tipo.clone(),
                nome: d.servizio.nome.clone(),
            },
            r.azione.clone(),
            id,
            ora,
        );
        busta.riferimento_messaggio = r.riferimento.clone();
        busta.collaborazione = collaborazione;
        // A symmetric request names the servizio its risposta comes back to.
        if let Some(c) = d
            .servizio
            .correlato
            .as_ref()
            .filter(|_| d.profilo == Profilo::AsincronoSimmetrico)
        {
            busta.servizio_correlato = Some(c.clone());
            busta.tipo_servizio_correlato = Some(d.servizio.tipo.clone());
        }
        describe(ex, &busta);
        ex.peer = Some(d.url.clone());
        let header = writer::write(&busta);
        // Other header blocks of the local system travel along; the Body keeps its bindings.
        let mut blocks: Vec<&str> = env
            .header_blocks
            .iter()
            .map(|b| &env.src[b.span.clone()])
            .collect();
        blocks.insert(0, &header);
        let (messaggio, allegati) = if r.allegati.is_empty() {
            (
                soap::envelope_ns(&blocks, env.body_content_str(), &env.body_ns),
                Vec::new(),
            )
        } else {
            // Every part named in the Manifest by its Content-ID: one is given where the local
            // system left it out.
            let parti: Vec<crate::mime::Parte> = r
                .allegati
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    if p.content_id.is_none() {
                        p.content_id = Some(crate::mime::content_id("allegato"));
                    }
                    p
                })
                .collect();
            let (descrizione, parti) = crate::egov::manifest::imbusta(
                env.body_content_str(),
                &env.body_ns,
                parti,
                crate::egov::manifest::Ruolo::Richiesta,
                &crate::mime::content_id("richiesta"),
            );
            (soap::envelope(&blocks, &descrizione), parti)
        };
        // Never sent unsigned when signing is on.
        let messaggio = self
            .s
            .firma_con_allegati(messaggio, Some(&d.parte), &allegati)
            .map_err(|e| {
                warn!(error = %e, "busta not signed: not sent");
                PdError::processamento(Funzione::Imbustamento, e.to_string())
            })?;
        Ok(Imbustata {
            busta,
            messaggio,
            allegati,
        })
    }

    /// A request for a service of our own (the NCN's national portal publishing through its
    /// porta delegata): handled here, without a busta on the wire.
    async fn locale(
        &self,
        r: &RichiestaPd<'_>,
        destinatario: &Parte,
        ex: &mut Exchange,
    ) -> Result<Answer, PdError> {
        let registry = self.s.registry();
        let own = self.s.own();
        ex.mittente = Some(own.parte().to_string());
        ex.destinatario = Some(destinatario.to_string());
        ex.servizio = Some(format!("SPC/{}", r.servizio));
        ex.azione = r.azione.clone();
        let locale = registry
            .servizio(destinatario, "SPC", &r.servizio)
            .filter(|s| s.handler.as_deref() == Some("cliclavoro"))
            .ok_or_else(|| {
                PdError::processamento(
                    Funzione::Imbustamento,
                    format!(
                        "{destinatario} è questo nodo: il servizio {} non ha un gestore locale",
                        r.servizio
                    ),
                )
            })?;
        let azione = r.azione.as_deref().unwrap_or("");
        let mut esito = crate::service::cliclavoro::ricevi_locale(
            &self.s.nodo(&registry),
            azione,
            r.body,
            self.s.now(),
        )
        .await
        .map_err(|e| PdError::processamento(Funzione::Imbustamento, e.to_string()))?
        .ok_or_else(|| {
            PdError::processamento(
                Funzione::Imbustamento,
                format!("azione {azione} non prevista dal servizio {}", locale.nome),
            )
        })?;
        // Written (durably) before the local system is answered; the porta delegata's own
        // record follows.
        if let Some(e) = esito.effetti.take() {
            e.apply(self.s.store.as_ref())
                .await
                .map_err(|e| PdError::processamento(Funzione::Imbustamento, e.to_string()))?;
        }
        self.s.outbox_notify.notify_one();
        ex.outcome = Outcome::Ok;
        ex.note = esito.note.clone();
        Ok(Answer::soap(
            if esito.fault { 500 } else { 200 },
            soap::envelope_ns(&[], &esito.body, &esito.body_ns),
        ))
    }

    /// Step: sbustamento of the partner's answer. An error busta or Fault becomes a Fault for
    /// the local system; a response busta is checked and removed, and its Body returned.
    fn sbusta(
        &self,
        raw: &[u8],
        status: u16,
        req: &Busta,
        destinatario: &Parte,
        ex: &mut Exchange,
        allegati: Vec<crate::mime::Parte>,
    ) -> Result<Answer, PdError> {
        let sbustamento = |msg: String| PdError::processamento(Funzione::SbustamentoRisposte, msg);
        let env = Envelope::parse(raw, self.s.limits).map_err(|e| {
            sbustamento(format!(
                "risposta del partner non leggibile (HTTP {status}): {e}"
            ))
        })?;
        let trovata = match reader::leggi(&env.header_blocks) {
            Lettura::Trovata(t) => t,
            Lettura::Assente => {
                // A bare Fault (e.g. EGOV_IT_001) or a message without busta.
                return Err(match &env.fault {
                    Some(f) => match Codice::in_faultstring(&f.string) {
                        Some(c) => PdError::busta(
                            Funzione::SbustamentoRisposte,
                            c,
                            f.string.trim().to_string(),
                        ),
                        None => PdError {
                            outcome: Outcome::ErroreBusta,
                            ..sbustamento(format!(
                                "il partner ha risposto con un Fault: {} {}",
                                f.code, f.string
                            ))
                        },
                    },
                    None => sbustamento(format!(
                        "risposta del partner senza busta e-Gov (HTTP {status})"
                    )),
                });
            }
        };
        let risposta = trovata.busta;
        ex.response_id = risposta.id.clone();
        let ricevute = risposta.eccezioni.clone().unwrap_or_default();
        if !ricevute.is_empty() {
            ex.eccezioni = ricevute.clone();
        }
        // A processing error busta carries no ListaEccezioni, only its faultstring (PD_UR-6.3).
        let processamento = env
            .fault
            .as_ref()
            .is_some_and(|f| f.string.trim() == egov::FAULT_PROCESSAMENTO);
        if ricevute.iter().any(egov::Eccezione::is_grave) || processamento {
            info!(eccezioni = %elenco(&ricevute), "partner answered with an error busta");
            return Err(match principale(&ricevute) {
                Some(e) => PdError::busta(
                    Funzione::SbustamentoRisposte,
                    e.codice,
                    crate::egov::risposte::descrivi(e),
                ),
                None => PdError {
                    outcome: Outcome::ErroreBusta,
                    ..sbustamento("il partner ha segnalato un errore di processamento".into())
                },
            });
        }
        // Its signature, by the partner's policy.
        let registry = self.s.registry();
        let politica = registry
            .soggetto(destinatario)
            .and_then(|p| p.firma)
            .unwrap_or(self.s.config.wssec.verifica);
        if let Err(v) = self
            .s
            .verifica_firma(&env, destinatario, &registry, politica, &allegati)
        {
            info!(eccezione = %v.eccezione, "partner's answer refused: {}", v.motivo);
            return Err(PdError::busta(
                Funzione::SbustamentoRisposte,
                v.eccezione.codice,
                v.motivo,
            ));
        }
        // The answer must be the partner's, and about our request.
        let problemi: Vec<String> = trovata
            .problemi
            .iter()
            .filter(|p| p.eccezione.is_grave())
            .map(|p| p.eccezione.to_string())
            .collect();
        if !problemi.is_empty() {
            return Err(sbustamento(format!(
                "busta di risposta non valida: {}",
                problemi.join("; ")
            )));
        }
        if risposta.mittente.as_ref() != Some(destinatario) {
            return Err(PdError::busta(
                Funzione::SbustamentoRisposte,
                Codice::MITTENTE,
                "il mittente della risposta non è il destinatario della richiesta",
            ));
        }
        if risposta.riferimento_messaggio != req.id {
            return Err(PdError::busta(
                Funzione::SbustamentoRisposte,
                Codice::RIFERIMENTO_NON_VALIDO,
                "il RiferimentoMessaggio della risposta non è l'Identificatore della richiesta",
            ));
        }
        ex.outcome = Outcome::Ok;
        // Sbustamento: the local system gets the partner's Body, with the busta in headers;
        // under a Manifest, the Body from its part and the other parts as attachments.
        let status = if env.fault.is_some() { 500 } else { 200 };
        let mut answer = if allegati.is_empty() {
            Answer::soap(
                status,
                soap::envelope_ns(&[], env.body_content_str(), &env.body_ns),
            )
        } else {
            let aperto = crate::egov::manifest::apri(&env, &allegati, self.s.limits).map_err(
                |eccezioni| {
                    PdError::busta(
                        Funzione::SbustamentoRisposte,
                        eccezioni[0].codice,
                        format!("Manifest della risposta: {}", elenco(&eccezioni)),
                    )
                },
            )?;
            let mut altri = allegati;
            altri.remove(aperto.principale);
            let corpo = aperto.corpo;
            Answer::con_allegati(status, soap::envelope(&[], &corpo), &altri)
        };
        for (nome, valore) in [
            ("X-PDD-Identificatore", risposta.id.clone()),
            ("X-PDD-RiferimentoMessaggio", req.id.clone()),
            (
                "X-PDD-Collaborazione",
                risposta
                    .collaborazione
                    .clone()
                    .or(req.collaborazione.clone()),
            ),
            (
                "X-PDD-Mittente",
                risposta.mittente.as_ref().map(|m| m.to_string()),
            ),
        ] {
            if let Some(v) = valore {
                answer.headers.push((nome.into(), v));
            }
        }
        Ok(answer)
    }

    /// The Fault for a local system's request that could not be read as a message (a broken
    /// multipart body): nothing was sent.
    pub fn illeggibile(&self, motivo: String) -> Answer {
        info!(motivo, "porta delegata: request unreadable");
        self.fault(&PdError::processamento(Funzione::Imbustamento, motivo))
    }

    /// The Fault a local system receives for an error.
    fn fault(&self, e: &PdError) -> Answer {
        Answer::soap(
            500,
            e.fault(self.s.now().naive_local(), &self.s.own().porta),
        )
    }

    /// Records the exchange durably, then answers: the partner's unwrapped answer, or the
    /// Fault an error calls for.
    async fn chiudi(
        &self,
        r: &RichiestaPd<'_>,
        ex: &mut Exchange,
        esito: Result<Answer, PdError>,
    ) -> (Answer, Option<EccezioneApplicativa>) {
        let (answer, errore) = match esito {
            Ok(a) => (a, None),
            Err(e) => {
                info!(funzione = e.funzione.as_str(), eccezione = ?e.eccezione, "porta delegata: error to the local system");
                ex.outcome = e.outcome;
                ex.note = Some(e.nota());
                self.s
                    .diagnostica(diagnostici::porta_delegata(
                        ex,
                        &r.servizio,
                        r.azione.as_deref(),
                        e.funzione,
                        &e.eccezione,
                    ))
                    .await;
                (self.fault(&e), Some(e.eccezione))
            }
        };
        ex.http_status = answer.status;
        // What the local system received is what we keep as the answer of record when the
        // partner's own answer is not there.
        if ex.response.is_empty() {
            ex.response = answer.body.as_bytes().to_vec();
        }
        if let Err(e) = self.s.commit(ex, None, None).await {
            warn!(error = %e, "exchange not stored");
            self.s
                .diagnostica(
                    Diagnostico::new(
                        Severita::Fatal,
                        "Imbustamento",
                        "PDD_STORE",
                        "scambio della porta delegata non registrato (store non disponibile)",
                    )
                    .scambio(ex.seq, ex.request_id.as_deref()),
                )
                .await;
            let e = PdError::processamento(Funzione::Imbustamento, e.to_string());
            return (self.fault(&e), Some(e.eccezione));
        }
        info!(
            outcome = ex.outcome.as_str(),
            status = answer.status,
            "porta delegata exchange"
        );
        (answer, errore)
    }

    /// A regional node keeps what its local systems published through the NCN.
    async fn tieni_copia(
        &self,
        r: &RichiestaPd<'_>,
        answer: &Answer,
        received: chrono::DateTime<chrono::FixedOffset>,
    ) {
        let azione = r.azione.as_deref().unwrap_or("");
        // Contacts are the NCN's to route; a node keeps its own CVs and vacancies.
        if self.s.config.role != crate::rete::Ruolo::Nr
            || r.fisso.is_some()
            || r.servizio != "ClicLavoro"
            || azione == "InvioMessaggio"
            || !crate::service::cliclavoro::risposta_ok(answer.body.as_bytes(), self.s.limits)
        {
            return;
        }
        let registry = self.s.registry();
        match crate::service::cliclavoro::ricevi_locale(
            &self.s.nodo(&registry),
            azione,
            r.body,
            received,
        )
        .await
        {
            Ok(Some(e)) if !e.note.as_deref().unwrap_or("").starts_with("OK") => {
                warn!(note = ?e.note, "own modulo accepted by the NCN but not kept here")
            }
            Ok(Some(Reply {
                effetti: Some(e), ..
            })) => {
                if let Err(e) = e.apply(self.s.store.as_ref()).await {
                    warn!(error = %e, "own modulo not stored");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "own modulo not stored"),
        }
    }
}
