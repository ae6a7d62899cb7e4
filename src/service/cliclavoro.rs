//! The built-in ClicLavoro handler: the `cliclavoroWS` operations InvioCandidatura,
//! InvioVacancy and InvioMessaggio (and InvioPercettore at the NCN). The modulo travels as an
//! escaped string; it is un-escaped, validated (schema, code tables, codice fiscale, the
//! document's rules), accepted by the network's rules ([`crate::rete::accettazione`]), stored
//! with its lifecycle state and its forwards in one batch, and answered OK or KO. A valid busta
//! with an invalid modulo is a business KO, not a busta error.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};

use super::{Chiamata, Reply, ServiceError};
use crate::egov::Parte;
use crate::modulo::ws::{self, Operazione, NS_TYPES};
use crate::modulo::{self, Contesto, Modulo, Tipo, Versione};
use crate::registry::Registry;
use crate::rete::accettazione::{self, Accettazione, Archivio, Effetto, Letture, Rifiuto};
use crate::rete::intermediari::{self, Chi};
use crate::rete::{self, europass, percettori, Ruolo};
use crate::store::{Effetti, Forward, ForwardState, Store, StoreError, Write};
use crate::xml::{Element, Limits};

/// The modulo string carried by the request, or why the request is refused.
fn modulo_della_richiesta(op: &Operazione, body: Option<&Element>) -> Result<String, Ko> {
    let body =
        body.ok_or_else(|| format!("Errore nella ricezione {}: il Body è vuoto", op.della))?;
    if !body.is(NS_TYPES, op.request) {
        return Err(Ko(format!(
            "Errore nella ricezione {}: atteso l'elemento {{{NS_TYPES}}}{} per l'azione {}, trovato {{{}}}{}",
            op.della,
            op.request,
            op.azione,
            body.ns.as_deref().unwrap_or(""),
            body.local
        )));
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
        return Err(Ko(format!(
            "Errore nella ricezione {}: {} è vuoto",
            op.della, op.param
        )));
    }
    Ok(text.to_string())
}

fn elenco_problemi(esito: &modulo::Verdetto) -> String {
    esito
        .problemi
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a modulo is refused: the Descr_Esito of the KO answer (a business refusal, not a busta
/// error).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ko(String);

impl From<String> for Ko {
    fn from(s: String) -> Ko {
        Ko(s)
    }
}

impl From<&str> for Ko {
    fn from(s: &str) -> Ko {
        Ko(s.to_string())
    }
}

/// New Identificatori for forwards (the gateway's generator, with its clock).
#[async_trait]
pub trait Identificatori: Send + Sync {
    /// A new Identificatore of this node, and its time.
    async fn nuovo(&self) -> Result<(String, DateTime<FixedOffset>), StoreError>;
}

/// What the handler needs of the node it runs in.
pub struct Ambiente<'a> {
    pub store: &'a dyn Store,
    pub limits: Limits,
    pub versione: Option<Versione>,
    pub ruolo: Ruolo,
    pub registry: &'a Registry,
    pub own: Parte,
    pub ids: &'a dyn Identificatori,
    /// EURES delivery is configured (otherwise documents are only kept for export).
    pub eures_url: bool,
}

pub async fn handle(c: &Chiamata<'_>, n: &Ambiente<'_>) -> Result<Reply, ServiceError> {
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
    let testo = match modulo_della_richiesta(op, tree.as_deref()) {
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
    .await
}

/// Judges, stores and (at the NCN) routes a modulo that `mittente` sent; the answer.
async fn ricevi(
    n: &Ambiente<'_>,
    op: &Operazione,
    testo: String,
    mittente: &Parte,
    request_id: Option<&str>,
    received_at: DateTime<FixedOffset>,
) -> Result<Reply, ServiceError> {
    let percettore = op.azione == "InvioPercettore";
    if percettore && n.ruolo != Ruolo::Ncn {
        return Ok(ko(
            op,
            "InvioPercettore è un servizio del nodo di coordinamento nazionale",
        ));
    }
    // A percettore's CV is completed by the NCN (flag, qualifica) and judged again.
    let (testo, esito, nota_percettore) = match valuta(n, op, &testo, received_at).await? {
        // The same document again (a redelivery under a new Identificatore): already done.
        Err(_) if gia_ricevuto(n, &testo).await? => {
            let descr = format!(
                "{} già {}, identica: nessuna modifica",
                op.nome, op.ricevuto
            );
            return Ok(Reply {
                allegati: Vec::new(),
                effetti: None,
                body: ws::risposta(op, true, &descr),
                body_ns: Vec::new(),
                fault: false,
                note: Some(format!("OK {descr}")),
            });
        }
        Err(why) => return Ok(ko(op, why)),
        Ok(e) if percettore => match completa_percettore(n, &e, received_at).await? {
            Some((t, completo, nota)) => (t, completo, Some(nota)),
            None => (testo, e, None),
        },
        Ok(e) => (testo, e, None),
    };
    // The expiry the node applies, when it is not the modulo's own, is written into the
    // modulo (the system "valorizza il campo", §2.2, §2.3): stored and forwarded so.
    let fissata = esito
        .scadenza
        .as_ref()
        .filter(|s| s.corretta)
        .map(|s| s.applicata);
    let (testo, esito) = match fissata {
        Some(d) => fissa_scadenza(testo, esito, d),
        None => (testo, esito),
    };
    // What this node's own local systems publish: their intermediary as the register has it.
    let (testo, esito, nota_intermediario) = if *mittente == n.own {
        match registro(n, op, testo, esito, received_at).await? {
            Ok(x) => x,
            Err(why) => return Ok(ko(op, why)),
        }
    } else {
        (testo, esito, None)
    };
    let Some(m) = esito.modulo.as_ref() else {
        return Ok(ko(op, Ko(format!("{} non leggibile", op.nome))));
    };
    let ricevuto = accettazione::Ricevuto {
        modulo: m,
        versione: esito.versione,
        scadenza: esito.scadenza.as_ref().map(|s| s.applicata),
        xml: &testo,
        mittente,
        request_id,
        ricevuto: received_at,
        percettore,
    };
    let (acc, effetti) = match accetta(n, &ricevuto).await? {
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
        Effetto::Risposta(p) => descr.push_str(&format!(", risposta al contatto {p}")),
    }
    descr.push(')');
    if let Some(d) = fissata {
        descr.push_str(&format!("; scadenza fissata al {d}, la massima consentita"));
    }
    if let Some(p) = nota_percettore {
        descr.push_str(&format!("; {p}"));
    }
    if let Some(i) = nota_intermediario {
        descr.push_str(&format!("; {i}"));
    }
    if let Some(r) = &acc.rotta {
        descr.push_str(&format!("; {r}"));
    }
    Ok(Reply {
        allegati: Vec::new(),
        effetti: Some(effetti),
        body: ws::risposta(op, true, &descr),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("OK {descr}")),
    })
}

/// The register's rules ([`intermediari`]) for a modulo of this node's own local systems: the
/// modulo with its intermediary's accreditation data written in (its text, verdict, and a note
/// when something was written), or why it is refused. Nothing applies while the register is
/// empty (a node that keeps none).
async fn registro(
    n: &Ambiente<'_>,
    op: &Operazione,
    testo: String,
    esito: modulo::Verdetto,
    ricevuto: DateTime<FixedOffset>,
) -> Result<Result<(String, modulo::Verdetto, Option<String>), Ko>, ServiceError> {
    let Some(m) = esito.modulo.as_ref() else {
        return Ok(Ok((testo, esito, None)));
    };
    if m.tipo() == Tipo::Messaggio || !n.store.ha_intermediari().await? {
        return Ok(Ok((testo, esito, None)));
    }
    let trovato = match intermediari::chi(m) {
        Some(Chi::CodiceFiscale(cf)) => n.store.intermediario(&cf).await?,
        Some(Chi::Codice(c)) => n
            .store
            .intermediari()
            .await?
            .into_iter()
            .find(|i| i.codice.as_deref() == Some(c.as_str())),
        _ => None,
    };
    let mut compilato = m.clone();
    let scritti = match intermediari::applica(&mut compilato, esito.versione, trovato.as_ref()) {
        Ok(s) => s,
        Err(p) => return Ok(Err(Ko(format!("{} non valida: 1 problemi: {p}", op.nome)))),
    };
    let Some(i) = trovato.filter(|_| !scritti.is_empty()) else {
        return Ok(Ok((testo, esito, None)));
    };
    let testo = compilato.scrivi();
    let nota = format!(
        "intermediario {} ({}): {} dal registro degli intermediari",
        i.denominazione,
        i.codice_fiscale,
        scritti.join(", ")
    );
    // Judged again as it now is (the register's data were checked at import).
    Ok(valuta(n, op, &testo, ricevuto)
        .await?
        .map(|e| (testo, e, Some(nota))))
}

/// A request of a regional node's local systems on its way to the NCN, after the register's
/// rules ([`registro`]).
pub enum Preparata {
    /// Sent as it is (nothing to fill, no register, or not a modulo this node judges).
    Invariata,
    /// Sent with the intermediary's data written into the modulo.
    Riscritta(Vec<u8>),
    /// Not sent: the answer the local system gets.
    Rifiutata(Reply),
}

/// Applies the register to a CV or vacancy a regional node's local system publishes through
/// the NCN, before it leaves. A request this node cannot read, or a modulo that is not valid,
/// goes on unchanged: the NCN answers for it as before.
pub async fn prepara_locale(
    n: &Ambiente<'_>,
    azione: &str,
    richiesta: &[u8],
    received_at: DateTime<FixedOffset>,
) -> Result<Preparata, ServiceError> {
    let Some(op) = ws::operazione(azione).filter(|o| o.tipo != Tipo::Messaggio) else {
        return Ok(Preparata::Invariata);
    };
    let Ok(env) = crate::soap::Envelope::parse_con_corpo(richiesta, n.limits) else {
        return Ok(Preparata::Invariata);
    };
    let tree = env.body_tree(n.limits).ok().flatten();
    let Ok(testo) = modulo_della_richiesta(op, tree.as_deref()) else {
        return Ok(Preparata::Invariata);
    };
    let Ok(esito) = valuta(n, op, &testo, received_at).await? else {
        return Ok(Preparata::Invariata);
    };
    Ok(match registro(n, op, testo, esito, received_at).await? {
        Err(why) => Preparata::Rifiutata(ko(op, why)),
        Ok((_, _, None)) => Preparata::Invariata,
        Ok((nuovo, _, Some(_))) => {
            let blocks: Vec<&str> = env
                .header_blocks
                .iter()
                .map(|b| &env.src[b.span.clone()])
                .collect();
            Preparata::Riscritta(
                crate::soap::envelope_ns(&blocks, &ws::richiesta(op, &nuovo), &[]).into_bytes(),
            )
        }
    })
}

/// Whether this very document is already stored under its code.
async fn gia_ricevuto(n: &Ambiente<'_>, testo: &str) -> Result<bool, ServiceError> {
    let Some(m) = crate::xml::parse_document(testo.as_bytes(), n.limits)
        .ok()
        .and_then(|root| Modulo::leggi(&root))
    else {
        return Ok(false);
    };
    let Some(r) = n.store.modulo(m.tipo(), m.codice()).await? else {
        return Ok(false);
    };
    if r.xml == testo {
        return Ok(true);
    }
    // Stored with the expiry the node applied written in: the same document if its own date
    // was missing or beyond that expiry (and so was capped to it).
    let (Some(applicata), mut m) = (r.scadenza, m) else {
        return Ok(false);
    };
    let Some(data) = m.datascadenza_mut() else {
        return Ok(false);
    };
    let oltre = data
        .as_deref()
        .and_then(modulo::data)
        .is_none_or(|d| d > applicata);
    *data = Some(applicata.to_string().into());
    Ok(oltre && m.scrivi() == r.xml)
}

/// Validates a modulo for an operation, with what the store knows of its codes: the verdict,
/// or why it is refused.
async fn valuta(
    n: &Ambiente<'_>,
    op: &Operazione,
    testo: &str,
    ricevuto: DateTime<FixedOffset>,
) -> Result<Result<modulo::Verdetto, Ko>, ServiceError> {
    let ctx = Contesto {
        ricevuto: ricevuto.date_naive(),
        versione: n.versione,
    };
    let mut esito = modulo::valida(testo.as_bytes(), &ctx);
    if let Some(m) = &esito.modulo {
        // The codes the rules may ask about: its own and the one it rectifies or closes.
        let mut noti: Vec<(Tipo, String)> = Vec::new();
        for code in [Some(m.codice()), m.precedente()].into_iter().flatten() {
            if n.store.has_modulo(m.tipo(), code).await? {
                noti.push((m.tipo(), code.to_string()));
            }
        }
        esito.esistenza(&|t: Tipo, code: &str| noti.iter().any(|(k, c)| *k == t && c == code));
    }
    if esito.tipo.is_some_and(|t| t != op.tipo) {
        return Ok(Err(Ko(format!(
            "Errore nella ricezione {}: il modulo è una {} e l'azione {} attende una {}",
            op.della,
            esito.tipo.map(Tipo::radice).unwrap_or("?"),
            op.azione,
            op.nome
        ))));
    }
    if esito.modulo.is_none() || !esito.valido() {
        return Ok(Err(Ko(format!(
            "{} non valida: {} problemi: {}",
            op.nome,
            esito.problemi.len(),
            elenco_problemi(&esito)
        )
        .replace("Messaggio non valida", "Messaggio non valido"))));
    }
    Ok(Ok(esito))
}

/// The modulo with `datascadenza` set to the expiry applied: its text, and the verdict with
/// that modulo. Not judged again: a date of the schema's type in place of another changes no
/// verdict, but for the rule that the expiry may not precede the start — a start further ahead
/// than the maximum validity, where the modulo is kept as received (and stored with the expiry
/// applied all the same).
fn fissa_scadenza(
    testo: String,
    mut esito: modulo::Verdetto,
    data: chrono::NaiveDate,
) -> (String, modulo::Verdetto) {
    let Some(mut m) = esito.modulo.clone() else {
        return (testo, esito);
    };
    let prima_dell_inizio = m
        .validita()
        .and_then(|(inizio, _)| modulo::data(inizio))
        .is_some_and(|inizio| data < inizio);
    match m.datascadenza_mut() {
        Some(campo) if !prima_dell_inizio => *campo = Some(data.to_string().into()),
        _ => return (testo, esito),
    }
    let nuovo = m.scrivi();
    esito.modulo = Some(m);
    (nuovo, esito)
}

/// A percettore's CV completed by the NCN (flag, qualifica), validated again: the new text,
/// its verdict and a note; `None` when the completed CV would not be valid (the original is
/// kept, flagged only if that stays valid).
async fn completa_percettore(
    n: &Ambiente<'_>,
    e: &modulo::Verdetto,
    ricevuto: DateTime<FixedOffset>,
) -> Result<Option<(String, modulo::Verdetto, String)>, ServiceError> {
    let Some(Modulo::Candidatura(orig)) = &e.modulo else {
        return Ok(None);
    };
    let cf = orig
        .lavoratore
        .dati_anagrafici
        .codicefiscale
        .trim()
        .to_ascii_uppercase();
    let rapporto = n.store.rapporto(&cf).await?;
    let segmenti = match e.versione {
        Some(v) if v.dal_2012() => 6,
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
        if let Ok(e) = valuta(n, op, &testo, ricevuto).await? {
            return Ok(Some((testo, e, nota)));
        }
    }
    Ok(None)
}

/// Accepts a valid modulo: reads what the decision needs, decides
/// ([`accettazione::decidi`]), and returns the records, the contact and the forwards as one
/// batch under the locks of the moduli involved, held until the gateway writes it with the
/// exchange's record ([`Effetti::commit`]).
async fn accetta(
    n: &Ambiente<'_>,
    r: &accettazione::Ricevuto<'_>,
) -> Result<Result<(Accettazione, Effetti), Ko>, ServiceError> {
    let m = r.modulo;
    let store = n.store;
    let letture = Letture::di(m);
    // The moduli this change reads and writes, locked from the reads to the write (also
    // against the other nodes of a cluster); changes of other moduli go on meanwhile.
    let codici: Vec<&str> = [Some(letture.esistente.1.as_str())]
        .into_iter()
        .chain([
            letture.originale.as_ref().map(|(_, c)| c.as_str()),
            letture.riferito.as_deref(),
            letture.contatto.as_deref(),
        ])
        .flatten()
        .collect();
    let stato = store.lock_moduli(&codici).await?;
    let (kind, code) = &letture.esistente;
    // A new code (the common case) is known not to be there without reading the record.
    let esistente = if stato.has_modulo(store, *kind, code).await? {
        store.modulo(*kind, code).await?
    } else {
        None
    };
    let originale = match &letture.originale {
        Some((k, c)) => store.modulo(*k, c).await?,
        None => None,
    };
    let attuale = match originale.as_ref().and_then(|o| Letture::attuale(m, o)) {
        Some((k, c)) => store.modulo(k, &c).await?,
        None => None,
    };
    let riferito = match &letture.riferito {
        Some(rif) => match store.modulo(Tipo::Candidatura, rif).await? {
            Some(x) => Some(x),
            None => store.modulo(Tipo::Vacancy, rif).await?,
        },
        None => None,
    };
    let contatto = match &letture.contatto {
        Some(c) => store.modulo(Tipo::Messaggio, c).await?,
        None => None,
    };
    let nodi = rete::nodi_regionali(n.registry, &n.own);
    let nodo = accettazione::Nodo {
        ruolo: n.ruolo,
        own: &n.own,
        nodi: &nodi,
        limits: n.limits,
    };
    let archivio = Archivio {
        esistente,
        originale,
        attuale,
        riferito,
        contatto,
    };
    let mut acc = match accettazione::decidi(&nodo, r, archivio) {
        Ok(a) => a,
        Err(Rifiuto::Ko(why)) => return Ok(Err(Ko(why))),
        Err(Rifiuto::Archivio(why)) => return Err(ServiceError::Backend(why)),
    };
    let mut batch = inoltri(n, r, &acc.inoltri).await?;
    batch.extend(acc.contatto.clone().map(Write::Contatto));
    // Moved, not cloned: a stored modulo holds its whole document.
    batch.extend(
        std::mem::take(&mut acc.moduli)
            .into_iter()
            .map(Write::Modulo),
    );
    Ok(Ok((acc, Effetti::new(stato, batch))))
}

/// Outbox entries forwarding a modulo to nodes (and EURES), each with its own Identificatore.
async fn inoltri(
    n: &Ambiente<'_>,
    r: &accettazione::Ricevuto<'_>,
    piano: &accettazione::Inoltri,
) -> Result<Vec<Write>, ServiceError> {
    let m = r.modulo;
    let mut out = Vec::new();
    if piano.nodi.is_empty() && !piano.eures && piano.ritiri.is_empty() && !piano.ritiro_eures {
        return Ok(out);
    }
    let op = ws::OPERAZIONI
        .iter()
        .find(|o| o.tipo == m.tipo() && o.azione != "InvioPercettore")
        .unwrap_or(&ws::OPERAZIONI[0]);
    let corpo = ws::richiesta(op, r.xml);
    let now = r.ricevuto;
    let voce = |seq: u64, destinatario: String, id: String, ora, corpo: String| Forward {
        seq,
        creato: now,
        destinatario,
        servizio: "ClicLavoro".into(),
        azione: op.azione.into(),
        id,
        ora,
        corpo,
        kind: m.tipo(),
        codice: m.codice().into(),
        invio: piano.invio,
        tentativi: 0,
        prossimo_ms: now.timestamp_millis(),
        stato: ForwardState::Pending,
        errore: None,
        causa: r.request_id.map(str::to_string),
    };
    for p in &piano.nodi {
        let (id, ora) = n.ids.nuovo().await?;
        let seq = n.store.next_seq().await?;
        out.push(Write::Forward(voce(
            seq,
            p.to_string(),
            id,
            ora,
            corpo.clone(),
        )));
    }
    if piano.eures {
        // A CV as a Europass CV; its chiusura, and vacancies, as the modulo itself.
        let doc = match m {
            Modulo::Candidatura(c) if c.dati_sistema.tipocandidatura.trim() != "02" => {
                europass::europass(c, now.naive_utc())
            }
            _ => r.xml.to_string(),
        };
        let seq = n.store.next_seq().await?;
        let i = voce(seq, rete::EURES.into(), String::new(), now, doc);
        // Kept for `pdd eures export`, and queued when an EURES endpoint is configured.
        if n.eures_url {
            out.push(Write::Forward(i.clone()));
        }
        out.push(Write::Eures(i));
    }
    if !piano.ritiri.is_empty() || piano.ritiro_eures {
        // Its withdrawal, where it no longer goes.
        let Some(chiusura) = rete::ritiro(m).map(|c| c.scrivi()) else {
            return Ok(out);
        };
        let corpo = ws::richiesta(op, &chiusura);
        for p in &piano.ritiri {
            let (id, ora) = n.ids.nuovo().await?;
            let seq = n.store.next_seq().await?;
            let mut i = voce(seq, p.to_string(), id, ora, corpo.clone());
            i.invio = false;
            out.push(Write::Forward(i));
        }
        if piano.ritiro_eures {
            let seq = n.store.next_seq().await?;
            let mut i = voce(seq, rete::EURES.into(), String::new(), now, chiusura);
            i.invio = false;
            if n.eures_url {
                out.push(Write::Forward(i.clone()));
            }
            out.push(Write::Eures(i));
        }
    }
    Ok(out)
}

/// A request of this node's own local systems (porta delegata) handled here, as if this node
/// had sent it to itself: at the NCN the national portal's moduli, stored and disseminated; at
/// a regional node its copy of what the NCN accepted. `None` when the request carries no
/// modulo for a ClicLavoro operation (the answer then comes from the usual path).
pub async fn ricevi_locale(
    n: &Ambiente<'_>,
    azione: &str,
    richiesta: &[u8],
    received_at: DateTime<FixedOffset>,
) -> Result<Option<Reply>, ServiceError> {
    let Some(op) = ws::operazione(azione) else {
        return Ok(None);
    };
    let Ok(env) = crate::soap::Envelope::parse_con_corpo(richiesta, n.limits) else {
        return Ok(None);
    };
    let tree = env.body_tree(n.limits).ok().flatten();
    let testo = match modulo_della_richiesta(op, tree.as_deref()) {
        Ok(t) => t,
        Err(why) => return Ok(Some(ko(op, why))),
    };
    ricevi(n, op, testo, &n.own, None, received_at)
        .await
        .map(Some)
}

/// Whether a `risposta_invio*` body says OK.
pub fn risposta_ok(body: &[u8], limits: Limits) -> bool {
    let Ok(env) = crate::soap::Envelope::parse_con_corpo(body, limits) else {
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

fn ko(op: &Operazione, why: impl Into<Ko>) -> Reply {
    let Ko(why) = why.into();
    Reply {
        allegati: Vec::new(),
        effetti: None,
        body: ws::risposta(op, false, &why),
        body_ns: Vec::new(),
        fault: false,
        note: Some(format!("KO {why}")),
    }
}
