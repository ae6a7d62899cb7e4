//! Porta delegata: a local system posts plain SOAP to `/pdd/PD/{Servizio}/{Azione}`; the gateway
//! builds the busta (imbustamento), sends it to the partner's porta applicativa, and returns the
//! unwrapped answer (or a Fault with MessaggioDiErroreApplicativo).

use tracing::{info, info_span, warn, Instrument};

use super::diagnostici::{self, Diagnostico, Severita};
use super::risposte::{fault_applicativo, principale, EccezioneApplicativa, Funzione};
use super::{describe, elenco, Answer, Gateway};
use crate::egov::reader::{self, Lettura};
use crate::egov::{
    self, writer, Busta, Codice, Inoltro, Ora, Parte, Profilo, Servizio, Trasmissione,
};
use crate::soap::{self, Envelope};
use crate::store::{Direction, Exchange, Outcome};

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
}

/// A failure on the way, as the local system will see it.
struct Errore {
    funzione: Funzione,
    eccezione: EccezioneApplicativa,
    outcome: Outcome,
}

fn processamento(funzione: Funzione, msg: impl Into<String>) -> Errore {
    Errore {
        funzione,
        eccezione: EccezioneApplicativa::Processamento(
            Codice::PROCESSAMENTO.to_string(),
            msg.into(),
        ),
        outcome: Outcome::ErroreProcessamento,
    }
}

impl Gateway {
    pub async fn porta_delegata(&self, r: RichiestaPd<'_>) -> Answer {
        self.porta_delegata_esito(r).await.0
    }

    /// The porta delegata, also telling what went wrong (for the outbox, which retries or not).
    pub async fn porta_delegata_esito(
        &self,
        r: RichiestaPd<'_>,
    ) -> (Answer, Option<EccezioneApplicativa>) {
        let received = self.now();
        let mut ex = match self
            .exchange(Direction::Out, received, r.body, r.peer.clone())
            .await
        {
            Ok(ex) => ex,
            Err(e) => {
                warn!(error = %e, "store unavailable");
                self.diagnostica(Diagnostico::new(
                    Severita::Fatal,
                    "Imbustamento",
                    "PDD_STORE",
                    format!(
                        "porta delegata {}: store non disponibile, richiesta respinta",
                        r.servizio
                    ),
                ))
                .await;
                return (
                    Answer::soap(500, crate::server::processing_fault()),
                    Some(EccezioneApplicativa::Processamento(
                        Codice::PROCESSAMENTO.to_string(),
                        e.to_string(),
                    )),
                );
            }
        };
        let span = info_span!("pd", seq = ex.seq, id = tracing::field::Empty);
        async {
            let result = self.pd_inner(&r, &mut ex).await;
            let mut errore = None;
            let answer = match result {
                Ok(a) => a,
                Err(e) => {
                    let now = self.now().naive_local();
                    let own = self.own();
                    info!(funzione = e.funzione.as_str(), eccezione = ?e.eccezione, "porta delegata: error to the local system");
                    ex.outcome = e.outcome;
                    ex.note = Some(match &e.eccezione {
                        EccezioneApplicativa::Busta(c, d) => format!("{c} {d}"),
                        EccezioneApplicativa::Processamento(c, d) => format!("{c} {d}"),
                    });
                    let a = Answer::soap(500, fault_applicativo(now, &own.porta, e.funzione, &e.eccezione));
                    self.diagnostica(diagnostici::porta_delegata(
                        &ex,
                        &r.servizio,
                        r.azione.as_deref(),
                        e.funzione,
                        &e.eccezione,
                    )).await;
                    errore = Some(e.eccezione);
                    a
                }
            };
            ex.http_status = answer.status;
            // What the local system received is what we keep as the answer of record when the
            // partner's own answer is not there.
            if ex.response.is_empty() {
                ex.response = answer.body.as_bytes().to_vec();
            }
            if let Err(e) = self.commit(&mut ex, None).await {
                warn!(error = %e, "exchange not stored");
                self.diagnostica(
                    Diagnostico::new(
                        Severita::Fatal,
                        "Imbustamento",
                        "PDD_STORE",
                        "scambio della porta delegata non registrato (store non disponibile)",
                    )
                    .scambio(ex.seq, ex.request_id.as_deref()),
                ).await;
                return (
                    Answer::soap(500, crate::server::processing_fault()),
                    Some(EccezioneApplicativa::Processamento(
                        Codice::PROCESSAMENTO.to_string(),
                        e.to_string(),
                    )),
                );
            }
            info!(outcome = ex.outcome.as_str(), status = answer.status, "porta delegata exchange");
            // A regional node keeps what its local systems published through the NCN.
            if self.config.role == crate::rete::Ruolo::Nr
                && r.fisso.is_none()
                && errore.is_none()
                && r.servizio == "ClicLavoro"
                && crate::service::cliclavoro::risposta_ok(answer.body.as_bytes(), self.limits)
            {
                let registry = self.registry();
                let azione = r.azione.as_deref().unwrap_or("");
                // Contacts are the NCN's to route; a node keeps its own CVs and vacancies.
                if azione != "InvioMessaggio" {
                    match crate::service::cliclavoro::ricevi_locale(
                        &self.nodo(&registry),
                        azione,
                        r.body,
                        received,
                    )
                    .await
                    {
                        Ok(Some(e)) if !e.note.as_deref().unwrap_or("").starts_with("OK") => {
                            warn!(note = ?e.note, "own modulo accepted by the NCN but not kept here")
                        }
                        Ok(_) => {
                            if let Err(e) = self.store.flush().await {
                                warn!(error = %e, "own modulo not flushed");
                            }
                        }
                        Err(e) => warn!(error = %e, "own modulo not stored"),
                    }
                }
            }
            (answer, errore)
        }
        .instrument(span)
        .await
    }

    async fn pd_inner(&self, r: &RichiestaPd<'_>, ex: &mut Exchange) -> Result<Answer, Errore> {
        let registry = self.registry();
        let own = self.own();
        let env = Envelope::parse(r.body, self.limits).map_err(|e| {
            processamento(
                Funzione::Imbustamento,
                format!("richiesta non leggibile: {e}"),
            )
        })?;
        if reader::leggi(&env.header_blocks) != Lettura::Assente {
            return Err(processamento(
                Funzione::Imbustamento,
                "la richiesta contiene già una busta e-Gov: la porta delegata accetta SOAP senza busta",
            ));
        }
        // Destinatario: the header, else the configured default, else the only erogatore.
        let dest_text = r
            .destinatario
            .clone()
            .or_else(|| self.config.porta_delegata.destinatario.clone());
        let destinatario = match dest_text {
            Some(d) => Parte::parse(&d).ok_or_else(|| {
                processamento(
                    Funzione::Imbustamento,
                    format!("destinatario '{d}' non è TIPO/NOME"),
                )
            })?,
            None => {
                // Only the services we may call: a network where every node offers the same
                // service still resolves (a regional node reaches the NCN).
                let mut candidati = registry
                    .servizi_named(&r.servizio)
                    .filter(|s| s.ammette(&own.parte()))
                    .filter_map(|s| s.erogatore_parte())
                    .filter(|p| !p.same(&own.parte()));
                match (candidati.next(), candidati.next()) {
                    (Some(p), None) => p,
                    _ => {
                        return Err(processamento(
                            Funzione::Imbustamento,
                            format!("destinatario non indicato: usare l'header X-PDD-Destinatario: TIPO/NOME per il servizio {}", r.servizio),
                        ))
                    }
                }
            }
        };
        if self.is_local(&destinatario) {
            return self.pd_locale(r, &destinatario, ex).await;
        }
        let partner = registry.soggetto(&destinatario).ok_or_else(|| Errore {
            funzione: Funzione::Imbustamento,
            eccezione: EccezioneApplicativa::Busta(
                Codice::DESTINATARIO,
                format!("destinatario {destinatario} non registrato"),
            ),
            outcome: Outcome::ErroreBusta,
        })?;
        let servizio = registry
            .servizio(&destinatario, "SPC", &r.servizio)
            .or_else(|| {
                registry
                    .servizi_named(&r.servizio)
                    .find(|s| s.erogatore_parte().as_ref() == Some(&destinatario))
            })
            .ok_or_else(|| Errore {
                funzione: Funzione::Imbustamento,
                eccezione: EccezioneApplicativa::Busta(
                    Codice::SERVIZIO,
                    format!("servizio {} non offerto da {destinatario}", r.servizio),
                ),
                outcome: Outcome::ErroreBusta,
            })?;
        if let Some(a) = &r.azione {
            if !servizio.azioni.is_empty() && servizio.azione(a).is_none() {
                return Err(Errore {
                    funzione: Funzione::Imbustamento,
                    eccezione: EccezioneApplicativa::Busta(
                        Codice::AZIONE,
                        format!("azione {a} non prevista dal servizio {}", servizio.nome),
                    ),
                    outcome: Outcome::ErroreBusta,
                });
            }
        } else if servizio.azione_obbligatoria {
            return Err(Errore {
                funzione: Funzione::Imbustamento,
                eccezione: EccezioneApplicativa::Busta(
                    Codice::AZIONE,
                    format!("il servizio {} richiede un'azione", servizio.nome),
                ),
                outcome: Outcome::ErroreBusta,
            });
        }
        let url = partner.url.clone().ok_or_else(|| {
            processamento(
                Funzione::Imbustamento,
                format!("nessun URL di porta applicativa registrato per {destinatario}"),
            )
        })?;
        let profilo = servizio.profilo_per(r.azione.as_deref());

        // Imbustamento.
        let (id, now) = match &r.fisso {
            Some((id, at)) => (id.clone(), *at),
            None => {
                let now = self.now();
                let id = self
                    .new_id(&own, now)
                    .await
                    .map_err(|e| processamento(Funzione::Imbustamento, e.to_string()))?;
                (id, now)
            }
        };
        tracing::Span::current().record("id", id.as_str());
        let ora = Ora {
            ora: now.naive_local(),
            tempo: self.config.busta.tempo,
        };
        let busta = Busta {
            mittente: Some(own.parte()),
            destinatario: Some(destinatario.clone()),
            profilo: Some(profilo),
            servizio: Some(Servizio {
                tipo: servizio.tipo.clone(),
                nome: servizio.nome.clone(),
            }),
            azione: r.azione.clone(),
            id: Some(id.clone()),
            ora_registrazione: Some(ora),
            profilo_trasmissione: true,
            inoltro: Some(Inoltro::AlPiuUnaVolta),
            conferma_ricezione: Some(false),
            trasmissioni: Some(vec![Trasmissione {
                origine: own.parte(),
                destinazione: destinatario.clone(),
                ora,
            }]),
            ..Busta::default()
        };
        describe(ex, &busta);
        ex.peer = Some(url.clone());
        let header = writer::write(&busta);
        // Other header blocks of the local system travel along; the Body keeps its bindings.
        let mut blocks: Vec<&str> = env
            .header_blocks
            .iter()
            .map(|b| &env.src[b.span.clone()])
            .collect();
        blocks.insert(0, &header);
        let message = self.firma_uscente(soap::envelope_ns(
            &blocks,
            env.body_content_str(),
            &env.body_ns,
        ));
        ex.request = message.as_bytes().to_vec();

        let resp = self
            .http
            .post_soap(&url, message, &[], self.pd_timeout())
            .await
            .map_err(|e| processamento(Funzione::InoltroBuste, e.to_string()))?;
        ex.response = resp.body.to_vec();

        if profilo == Profilo::OneWay && resp.body.iter().all(u8::is_ascii_whitespace) {
            if (200..300).contains(&resp.status) {
                ex.outcome = Outcome::Ok;
                return Ok(Answer::empty());
            }
            return Err(processamento(
                Funzione::InoltroBuste,
                format!("{url} ha risposto HTTP {} senza contenuto", resp.status),
            ));
        }
        self.sbusta_risposta(&resp.body, resp.status, &busta, &destinatario, ex)
    }

    /// A request for a service of our own (the NCN's national portal publishing through its
    /// porta delegata): handled here, without a busta on the wire.
    async fn pd_locale(
        &self,
        r: &RichiestaPd<'_>,
        destinatario: &Parte,
        ex: &mut Exchange,
    ) -> Result<Answer, Errore> {
        let registry = self.registry();
        let own = self.own();
        ex.mittente = Some(own.parte().to_string());
        ex.destinatario = Some(destinatario.to_string());
        ex.servizio = Some(format!("SPC/{}", r.servizio));
        ex.azione = r.azione.clone();
        let locale = registry
            .servizio(destinatario, "SPC", &r.servizio)
            .filter(|s| s.handler.as_deref() == Some("cliclavoro"))
            .ok_or_else(|| {
                processamento(
                    Funzione::Imbustamento,
                    format!(
                        "{destinatario} è questo nodo: il servizio {} non ha un gestore locale",
                        r.servizio
                    ),
                )
            })?;
        let azione = r.azione.as_deref().unwrap_or("");
        let esito = crate::service::cliclavoro::ricevi_locale(
            &self.nodo(&registry),
            azione,
            r.body,
            self.now(),
        )
        .await
        .map_err(|e| processamento(Funzione::Imbustamento, e.to_string()))?
        .ok_or_else(|| {
            processamento(
                Funzione::Imbustamento,
                format!("azione {azione} non prevista dal servizio {}", locale.nome),
            )
        })?;
        self.outbox_notify.notify_one();
        ex.outcome = Outcome::Ok;
        ex.note = esito.note.clone();
        Ok(Answer::soap(
            if esito.fault { 500 } else { 200 },
            soap::envelope_ns(&[], &esito.body, &esito.body_ns),
        ))
    }

    /// Reads the partner's answer: an error busta or Fault becomes a Fault for the local system;
    /// a response busta is checked and removed, and its Body returned.
    fn sbusta_risposta(
        &self,
        raw: &[u8],
        status: u16,
        req: &Busta,
        destinatario: &Parte,
        ex: &mut Exchange,
    ) -> Result<Answer, Errore> {
        let sbustamento = |msg: String| processamento(Funzione::SbustamentoRisposte, msg);
        let env = Envelope::parse(raw, self.limits).map_err(|e| {
            sbustamento(format!(
                "risposta del partner non leggibile (HTTP {status}): {e}"
            ))
        })?;
        let trovata = match reader::leggi(&env.header_blocks) {
            Lettura::Trovata(t) => t,
            Lettura::Assente => {
                // A bare Fault (e.g. EGOV_IT_001) or a message without busta.
                return Err(match &env.fault {
                    Some(f) => {
                        let code = f.string.trim().get(..11).and_then(Codice::parse);
                        Errore {
                            funzione: Funzione::SbustamentoRisposte,
                            eccezione: match code {
                                Some(c) => {
                                    EccezioneApplicativa::Busta(c, f.string.trim().to_string())
                                }
                                None => EccezioneApplicativa::Processamento(
                                    Codice::PROCESSAMENTO.to_string(),
                                    format!(
                                        "il partner ha risposto con un Fault: {} {}",
                                        f.code, f.string
                                    ),
                                ),
                            },
                            outcome: Outcome::ErroreBusta,
                        }
                    }
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
            let e = match principale(&ricevute) {
                Some(e) => EccezioneApplicativa::Busta(e.codice, super::risposte::descrivi(e)),
                None => EccezioneApplicativa::Processamento(
                    Codice::PROCESSAMENTO.to_string(),
                    "il partner ha segnalato un errore di processamento".to_string(),
                ),
            };
            info!(eccezioni = %elenco(&ricevute), "partner answered with an error busta");
            return Err(Errore {
                funzione: Funzione::SbustamentoRisposte,
                eccezione: e,
                outcome: Outcome::ErroreBusta,
            });
        }
        // Its signature, by the partner's policy.
        let registry = self.registry();
        let politica = registry
            .soggetto(destinatario)
            .and_then(|p| p.firma)
            .unwrap_or(self.config.wssec.verifica);
        if let Err((e, why)) = self.verifica_firma(&env, destinatario, &registry, politica) {
            info!(eccezione = %e, "partner's answer refused: {why}");
            return Err(Errore {
                funzione: Funzione::SbustamentoRisposte,
                eccezione: EccezioneApplicativa::Busta(e.codice, why),
                outcome: Outcome::ErroreBusta,
            });
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
            return Err(Errore {
                funzione: Funzione::SbustamentoRisposte,
                eccezione: EccezioneApplicativa::Busta(
                    Codice::MITTENTE,
                    "il mittente della risposta non è il destinatario della richiesta".into(),
                ),
                outcome: Outcome::ErroreBusta,
            });
        }
        if risposta.riferimento_messaggio != req.id {
            return Err(Errore {
                funzione: Funzione::SbustamentoRisposte,
                eccezione: EccezioneApplicativa::Busta(
                    Codice::RIFERIMENTO_NON_VALIDO,
                    "il RiferimentoMessaggio della risposta non è l'Identificatore della richiesta"
                        .into(),
                ),
                outcome: Outcome::ErroreBusta,
            });
        }
        ex.outcome = Outcome::Ok;
        // Sbustamento: the local system gets the partner's Body, with the busta in headers.
        let mut answer = Answer::soap(
            if env.fault.is_some() { 500 } else { 200 },
            soap::envelope_ns(&[], env.body_content_str(), &env.body_ns),
        );
        if let Some(id) = &risposta.id {
            answer
                .headers
                .push(("X-PDD-Identificatore".into(), id.clone()));
        }
        if let Some(id) = &req.id {
            answer
                .headers
                .push(("X-PDD-RiferimentoMessaggio".into(), id.clone()));
        }
        if let Some(m) = &risposta.mittente {
            answer
                .headers
                .push(("X-PDD-Mittente".into(), m.to_string()));
        }
        Ok(answer)
    }
}
