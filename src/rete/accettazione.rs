//! The acceptance of a valid modulo at a node (document §3, §4): what it changes in the stored
//! state (a new record, the original it rectifies or closes), where it goes from the NCN, who
//! answers for it, and for a Messaggio whom it reaches. Pure: the caller reads what
//! [`Archivio`] asks for, decides here, and writes the result in one batch.

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::{Comunicazione, Instradamento, Ruolo};
use crate::egov::Parte;
use crate::modulo::scheda;
use crate::modulo::stato::{Contatto, StatoModulo, StoredModulo};
use crate::modulo::{Modulo, Tipo, Versione};
use crate::xml::Limits;

/// The node that decides.
pub struct Nodo<'a> {
    pub ruolo: Ruolo,
    pub own: &'a Parte,
    /// The regional nodes it reaches ([`super::nodi_regionali`]).
    pub nodi: &'a [Parte],
    pub limits: Limits,
}

/// A valid modulo as received.
pub struct Ricevuto<'a> {
    pub modulo: &'a Modulo,
    pub versione: Option<Versione>,
    /// The expiry applied (the modulo's own, or the maximum).
    pub scadenza: Option<NaiveDate>,
    /// The document as it will be stored and forwarded.
    pub xml: &'a str,
    pub mittente: &'a Parte,
    pub request_id: Option<&'a str>,
    pub ricevuto: DateTime<FixedOffset>,
    /// Sent by INPS through the percettori's service.
    pub percettore: bool,
}

/// What the node holds that the decision reads (see [`Letture`]).
#[derive(Debug, Default)]
pub struct Archivio {
    /// The stored modulo of the same kind and code.
    pub esistente: Option<StoredModulo>,
    /// The original a rettifica or chiusura names.
    pub originale: Option<StoredModulo>,
    /// The original's current version (its last rettifica), when another.
    pub attuale: Option<StoredModulo>,
    /// For a Messaggio: the candidatura or vacancy it is about.
    pub riferito: Option<StoredModulo>,
    /// For a risposta: the contatto it answers.
    pub contatto: Option<StoredModulo>,
}

/// The records to read for a modulo, in two rounds: the first from the modulo alone, the
/// second ([`Letture::attuale`]) from the original found.
#[derive(Debug, PartialEq, Eq)]
pub struct Letture {
    /// Kind and code of the same modulo.
    pub esistente: (Tipo, String),
    pub originale: Option<(Tipo, String)>,
    /// A Messaggio's reference: a candidatura, else a vacancy, of this code.
    pub riferito: Option<String>,
    /// A risposta's contatto (a Messaggio).
    pub contatto: Option<String>,
}

impl Letture {
    pub fn di(m: &Modulo) -> Letture {
        let kind = m.tipo();
        let precedente = m.precedente().map(str::to_string);
        let (riferito, contatto) = match m {
            Modulo::Messaggio(msg) => (
                super::riferimento(msg).map(str::to_string),
                precedente
                    .clone()
                    .filter(|_| msg.dati_sistema.tipocomunicazione.trim() == "04"),
            ),
            _ => (None, None),
        };
        Letture {
            esistente: (kind, m.codice().to_string()),
            originale: precedente.map(|p| (kind, p)),
            riferito,
            contatto,
        }
    }

    /// The original's current version to read too: its last rettifica, when it is neither
    /// this modulo nor the original itself.
    pub fn attuale(m: &Modulo, originale: &StoredModulo) -> Option<(Tipo, String)> {
        let p = m.precedente()?;
        originale
            .attuale
            .as_deref()
            .filter(|a| *a != m.codice() && *a != p)
            .map(|a| (m.tipo(), a.to_string()))
    }
}

/// How a communication changed the stored state, for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effetto {
    Nuovo,
    Aggiornato,
    Rettifica(String),
    Chiusura(String),
    /// A risposta (Messaggio tipo 04) to the contatto of this code.
    Risposta(String),
}

/// Where the accepted modulo goes: to these nodes, and to EURES.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inoltri {
    pub nodi: Vec<Parte>,
    pub eures: bool,
    /// Where earlier versions went and this one no longer goes (a rettifica or update that
    /// narrowed its ambito): they receive its withdrawal ([`super::ritiro`]).
    pub ritiri: Vec<Parte>,
    pub ritiro_eures: bool,
    /// A forward of a new modulo (not of its rettifica or chiusura): dropped if the modulo
    /// expires before it is delivered.
    pub invio: bool,
}

/// A modulo accepted: the records to write (in this order), forwards, a contact delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Accettazione {
    pub effetto: Effetto,
    /// Where it was sent, for the answer.
    pub rotta: Option<String>,
    /// Stored moduli to write: the originals whose state changed, then the modulo itself.
    pub moduli: Vec<StoredModulo>,
    pub inoltri: Inoltri,
    pub contatto: Option<Contatto>,
}

/// Why a modulo valid on its own is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rifiuto {
    /// A business refusal (the answer is a KO with this reason).
    Ko(String),
    /// A stored record this decision needs does not read (a fault of the node, not the sender).
    Archivio(String),
}

fn ora(t: &DateTime<FixedOffset>) -> String {
    crate::clock::ora::testo(t)
}

/// Decides the acceptance of `r` at node `n`, given what it holds.
pub fn decidi(n: &Nodo<'_>, r: &Ricevuto<'_>, a: Archivio) -> Result<Accettazione, Rifiuto> {
    let m = r.modulo;
    let mittente = r.mittente;
    let tipo_com = match m {
        Modulo::Candidatura(x) => x.dati_sistema.tipocandidatura.trim(),
        Modulo::Vacancy(x) => x.dati_sistema.tipoofferta.trim(),
        Modulo::Messaggio(_) => "",
    };
    let chiusura = tipo_com == "02";
    let precedente = m.precedente().map(str::to_string);
    let Archivio {
        esistente,
        originale,
        attuale,
        riferito,
        contatto,
    } = a;
    let risposta =
        matches!(m, Modulo::Messaggio(msg) if msg.dati_sistema.tipocomunicazione.trim() == "04");
    // Only who published a CV or vacancy changes it (document §4.1, §4.3): a rettifica, a
    // chiusura or a same-code update from anyone else changes nothing. Who published it is
    // the sender of its stored version (for what a node received from the NCN, the NCN).
    if m.tipo() != Tipo::Messaggio {
        for prima in [&originale, &attuale, &esistente].into_iter().flatten() {
            let Some(di) = prima.mittente.as_deref().and_then(Parte::parse) else {
                continue;
            };
            if !di.same(mittente) {
                let cosa = if chiusura {
                    "chiusura rifiutata"
                } else if precedente.is_some() {
                    "rettifica rifiutata"
                } else {
                    "aggiornamento rifiutato"
                };
                return Err(Rifiuto::Ko(format!(
                    "{cosa}: {} {} è stata pubblicata da {di}, e solo chi l'ha \
                     pubblicata può rettificarla, chiuderla o aggiornarla (non {mittente})",
                    m.tipo().con_articolo(),
                    prima.code
                )));
            }
        }
    }
    // A chiusura ends a modulo (§4.1): a later rettifica or same-code update does not reopen
    // it (a new modulo does). Judged at the NCN, which knows whether its publisher closed it;
    // a region also holds as closed what the NCN withdrew from it, and may get it back.
    if n.ruolo == Ruolo::Ncn && !chiusura && m.tipo() != Tipo::Messaggio {
        let chiuso = if precedente.is_some() {
            originale.as_ref()
        } else {
            esistente.as_ref()
        };
        if let Some(c) = chiuso.filter(|c| c.stato == StatoModulo::Chiuso) {
            return Err(Rifiuto::Ko(format!(
                "{} {} è chiusa: una rettifica o un aggiornamento non la riapre; se ne invii \
                 una nuova",
                m.tipo().con_articolo(),
                c.code
            )));
        }
    }
    // The income-support flag is the Ministry's to set, on INPS's records (§2.2, §3): at the
    // NCN only on what came through the percettori's service, at a regional node only on what
    // the NCN sent.
    if let Modulo::Candidatura(c) = m {
        let si = c.dati_sistema.percettore.as_deref().map(str::trim) == Some("SI");
        let ammesso = match n.ruolo {
            Ruolo::Ncn => r.percettore,
            Ruolo::Nr => !mittente.same(n.own),
            Ruolo::None => true,
        };
        if si && !ammesso {
            return Err(Rifiuto::Ko(format!(
                "campo percettore: SI è impostato solo dal Ministero per i percettori \
                 comunicati dall'INPS, non da {mittente}"
            )));
        }
    }
    let mut record = StoredModulo {
        kind: m.tipo(),
        code: m.codice().to_string(),
        versione: r.versione.map(Versione::as_str).unwrap_or("").to_string(),
        stato: if chiusura {
            StatoModulo::Chiuso
        } else {
            StatoModulo::Attivo
        },
        received_at: esistente.as_ref().map_or(r.ricevuto, |e| e.received_at),
        updated_at: r.ricevuto,
        request_id: r.request_id.map(str::to_string),
        mittente: Some(mittente.to_string()),
        scadenza: r.scadenza,
        precedente: precedente.clone(),
        attuale: esistente.as_ref().and_then(|e| e.attuale.clone()),
        xml: r.xml.to_string(),
        destinazioni: esistente
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
    let mut moduli = Vec::new();
    let mut cambia = |x: &StoredModulo, stato: StatoModulo, attuale: Option<&str>| {
        let mut x = x.clone();
        x.stato = stato;
        x.updated_at = r.ricevuto;
        if let Some(a) = attuale {
            x.attuale = Some(a.to_string());
        }
        moduli.push(x);
    };
    let effetto = match (&precedente, chiusura) {
        // A risposta names the contatto it answers, which it leaves as it is.
        (Some(p), _) if risposta => Effetto::Risposta(p.clone()),
        // Rev.038: the communication names the original it rectifies or closes.
        (Some(p), _) => {
            let stato = if chiusura {
                StatoModulo::Chiuso
            } else {
                StatoModulo::Rettificato
            };
            if let Some(o) = &originale {
                cambia(o, stato, Some(m.codice()));
                if let Some(x) = &attuale {
                    cambia(x, stato, None);
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
        (None, false) if esistente.is_some() => Effetto::Aggiornato,
        (None, false) => Effetto::Nuovo,
    };
    // The node that answers for it, and where it was or will be.
    let gia: Vec<String> = originale
        .as_ref()
        .or(esistente.as_ref())
        .map(|o| o.destinazioni.clone())
        .unwrap_or_default();
    let titolare_prima = originale.as_ref().and_then(|o| o.titolare.clone());
    let e_nodo = |p: &Parte| n.nodi.iter().any(|x| x.same(p));
    let mut rotta = None;
    let mut inoltri = Inoltri::default();
    let mut consegnato = None;
    match (n.ruolo, m) {
        (Ruolo::Ncn | Ruolo::Nr, Modulo::Messaggio(msg)) => {
            let Some(rif) = super::riferimento(msg) else {
                return Err(Rifiuto::Ko("Messaggio: manca il codice della candidatura o dell'offerta (codiceoffertacandidatura)".into()));
            };
            let Some(riferito) = riferito else {
                return Err(Rifiuto::Ko(format!(
                    "Messaggio: la candidatura o offerta {rif} non è nota a questo nodo"
                )));
            };
            // A risposta goes back to the node its contatto came from; a contatto to the node
            // that answers for the modulo.
            let verso = if risposta {
                contatto
                    .and_then(|x| x.mittente)
                    .and_then(|x| Parte::parse(&x))
                    .filter(|p| e_nodo(p))
            } else {
                riferito.titolare.as_deref().and_then(Parte::parse)
            };
            match verso.filter(|t| n.ruolo == Ruolo::Ncn && !t.same(mittente)) {
                Some(t) => {
                    rotta = Some(if risposta {
                        format!("inoltrato a {t}, da cui venne il contatto")
                    } else {
                        format!("inoltrato a {t}, titolare di {rif}")
                    });
                    inoltri = Inoltri {
                        nodi: vec![t],
                        invio: true,
                        ..Default::default()
                    };
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
                        let doc = crate::xml::parse_document(riferito.xml.as_bytes(), n.limits)
                            .map_err(|e| Rifiuto::Archivio(format!("modulo {rif}: {e}")))?;
                        Modulo::leggi(&doc)
                            .map(|x| super::recapito(&x))
                            .unwrap_or_default()
                    };
                    let da = &msg.mittente.interlocutore;
                    rotta = Some(format!(
                        "consegnato al {} di {rif}",
                        if per["tramite"] == "intermediario" {
                            "l'intermediario"
                        } else {
                            "titolare"
                        }
                    ));
                    consegnato = Some(Contatto {
                        codice: m.codice().to_string(),
                        tipo: msg.dati_sistema.tipocomunicazione.trim().to_string(),
                        ricevuto: ora(&r.ricevuto),
                        kind: riferito.kind,
                        riferimento: rif.to_string(),
                        da: serde_json::json!({
                            "denominazione": da.denominazione.as_deref().map(str::trim),
                            "email": da.email.as_deref().map(str::trim),
                        }),
                        per,
                        testo: msg.corpo.testomessaggio.to_string(),
                        via: Some(mittente.to_string()),
                    });
                }
            }
        }
        (Ruolo::Ncn, _) => {
            // A regional CV belongs to the region of the worker's domicile (§4.1): one that
            // did not come from a region (the national portal, an intermediary) goes there.
            let regionale_da_fuori = matches!(m, Modulo::Candidatura(c) if super::ambito(c) == super::Ambito::Regionale)
                && !e_nodo(mittente)
                && !r.percettore;
            let mut i = if r.percettore {
                instrada_domicilio(m, &e_nodo, "percettore")
            } else if regionale_da_fuori && precedente.is_none() && !chiusura {
                instrada_domicilio(m, &e_nodo, "ambito regionale")
            } else {
                // A chiusura follows the original's routes; a rettifica or an update is
                // disseminated by its own (perhaps new) ambito.
                let com = if chiusura {
                    Comunicazione::Seguito
                } else {
                    Comunicazione::Invio
                };
                super::instrada(m, com, mittente, n.nodi, &gia)
            };
            // A percettore's later versions also reach where the earlier went (the worker may
            // have moved).
            if r.percettore && (precedente.is_some() || esistente.is_some()) {
                for p in gia.iter().filter_map(|g| Parte::parse(g)) {
                    if !i.nodi.iter().any(|x| x.same(&p)) {
                        i.nodi.push(p);
                    }
                }
            }
            // Never back to the node it came from.
            i.nodi.retain(|p| !p.same(mittente));
            // Where earlier versions went and this one does not: withdrawn there (§4.1: a
            // rettifica is disseminated by its new ambito).
            let (mut ritiri, mut ritiro_eures) = (Vec::new(), false);
            if !chiusura && !r.percettore {
                for g in &gia {
                    if g == super::EURES {
                        ritiro_eures = !i.eures;
                    } else if let Some(p) = Parte::parse(g) {
                        if !p.same(mittente) && !i.nodi.iter().any(|x| x.same(&p)) {
                            ritiri.push(p);
                        }
                    }
                }
            }
            // Who answers for it: the region that sent it, or for a percettore the region of
            // the worker's domicile; none (us) for intermediaries and the national portal.
            record.titolare = if r.percettore || (regionale_da_fuori && !i.nodi.is_empty()) {
                i.nodi.first().map(|p| p.to_string())
            } else if e_nodo(mittente) {
                Some(mittente.to_string())
            } else {
                titolare_prima
            };
            let eures = i.eures.then(|| super::EURES.to_string());
            for s in i.nodi.iter().map(|p| p.to_string()).chain(eures) {
                if !record.destinazioni.contains(&s) {
                    record.destinazioni.push(s);
                }
            }
            // A CV of regional scope is its region's to publish, not the NCN's (document
            // §4.1): the region that sent it, or the region of the worker's domicile.
            if let Modulo::Candidatura(c) = m {
                if super::ambito(c) == super::Ambito::Regionale {
                    record.scheda = None;
                }
            }
            let mut t = if i.nodi.is_empty() {
                format!("{}: non inoltrata", i.motivo)
            } else {
                format!(
                    "{}: inoltrata a {}",
                    i.motivo,
                    i.nodi
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if i.eures {
                t.push_str("; in coda per EURES");
            }
            if !ritiri.is_empty() || ritiro_eures {
                let da: Vec<String> = ritiri
                    .iter()
                    .map(|p| p.to_string())
                    .chain(ritiro_eures.then(|| super::EURES.to_string()))
                    .collect();
                t.push_str(&format!("; ritirata da {}", da.join(", ")));
            }
            // The original's routes become this version's, so that a later chiusura of it
            // reaches where it is now (and, harmlessly, where it was withdrawn).
            if let Some(o) = moduli
                .first_mut()
                .filter(|o| Some(&o.code) == precedente.as_ref())
            {
                for d in &record.destinazioni {
                    if !o.destinazioni.contains(d) {
                        o.destinazioni.push(d.clone());
                    }
                }
            }
            rotta = Some(t);
            inoltri = Inoltri {
                nodi: i.nodi,
                eures: i.eures,
                ritiri,
                ritiro_eures,
                invio: precedente.is_none() && !chiusura,
            };
        }
        (Ruolo::Nr, _) => {
            // Disseminated by the NCN: contacts about it go back through the NCN; a percettore
            // routed here is this region's to follow.
            let percettore_qui = matches!(m, Modulo::Candidatura(c) if c.dati_sistema.percettore.as_deref().map(str::trim) == Some("SI"));
            record.titolare = if mittente.same(n.own) || percettore_qui {
                None
            } else {
                Some(mittente.to_string())
            };
        }
        (Ruolo::None, _) => {}
    }
    moduli.push(record);
    Ok(Accettazione {
        effetto,
        rotta,
        moduli,
        inoltri,
        contatto: consegnato,
    })
}

/// A CV that belongs to the region of the worker's domicile (a percettore's; a regional CV
/// from outside the regions) goes there, when that region is in the network; else it stays
/// at the NCN. `chi` says which, in the reason.
fn instrada_domicilio(m: &Modulo, e_nodo: &dyn Fn(&Parte) -> bool, chi: &str) -> Instradamento {
    let domicilio = match m {
        Modulo::Candidatura(c) => c.lavoratore.domicilio.idcomune.trim().to_string(),
        _ => String::new(),
    };
    match super::nodo_del_comune(&domicilio) {
        Some(nome) => {
            let p = Parte::new("SPC", nome);
            if e_nodo(&p) {
                Instradamento {
                    nodi: vec![p],
                    eures: false,
                    motivo: format!("{chi} con domicilio in {domicilio}"),
                }
            } else {
                Instradamento {
                    motivo: format!(
                        "{chi} con domicilio in {domicilio}: il nodo regionale {nome} non è nella rete, conservata al nodo nazionale"
                    ),
                    ..Default::default()
                }
            }
        }
        None => Instradamento {
            motivo: format!(
                "{chi}: domicilio '{domicilio}' fuori dalle regioni, conservata al nodo nazionale"
            ),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modulo::model::candidatura::Candidatura;

    fn p(n: &str) -> Parte {
        Parte::new("SPC", n)
    }

    fn cv(codice: &str, ambito: &str) -> Modulo {
        let mut c = Candidatura::default();
        c.dati_sistema.codicecandidatura = codice.into();
        c.dati_sistema.tipocandidatura = "01".into();
        c.dati_sistema.ambitodiffusione = vec![ambito.into()];
        Modulo::Candidatura(c)
    }

    fn ricevuto<'a>(m: &'a Modulo, mittente: &'a Parte) -> Ricevuto<'a> {
        Ricevuto {
            modulo: m,
            versione: Some(Versione::V2_0),
            scadenza: None,
            xml: "<x/>",
            mittente,
            request_id: Some("ID"),
            ricevuto: DateTime::parse_from_rfc3339("2026-11-27T08:00:00+01:00").unwrap(),
            percettore: false,
        }
    }

    #[test]
    fn the_ncn_routes_a_national_cv_to_the_other_regions_and_records_its_owner() {
        let (own, emilia) = (p("MinisteroLavoro"), p("EMILIA"));
        let nodi = [p("EMILIA"), p("LAZIO"), p("VENETO")];
        let n = Nodo {
            ruolo: Ruolo::Ncn,
            own: &own,
            nodi: &nodi,
            limits: Limits::default(),
        };
        let m = cv("C1", "02");
        let a = decidi(&n, &ricevuto(&m, &emilia), Archivio::default()).unwrap();
        assert_eq!(a.effetto, Effetto::Nuovo);
        assert_eq!(a.inoltri.nodi, vec![p("LAZIO"), p("VENETO")]);
        assert!(a.inoltri.invio && !a.inoltri.eures);
        let record = a.moduli.last().unwrap();
        assert_eq!(record.titolare.as_deref(), Some("SPC/EMILIA"));
        assert_eq!(record.destinazioni, vec!["SPC/LAZIO", "SPC/VENETO"]);
        assert_eq!(record.stato, StatoModulo::Attivo);
        // The same code again: an update, which keeps the first receipt.
        let mut prima = record.clone();
        prima.received_at -= chrono::Duration::days(3);
        let a = decidi(
            &n,
            &ricevuto(&m, &emilia),
            Archivio {
                esistente: Some(prima.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.effetto, Effetto::Aggiornato);
        assert_eq!(a.moduli.last().unwrap().received_at, prima.received_at);
    }

    #[test]
    fn a_messaggio_about_an_unknown_modulo_is_refused_and_a_known_one_reaches_its_owner() {
        use crate::modulo::model::messaggio::Messaggio;
        let (own, lazio) = (p("MinisteroLavoro"), p("LAZIO"));
        let nodi = [p("EMILIA"), p("LAZIO")];
        let n = Nodo {
            ruolo: Ruolo::Ncn,
            own: &own,
            nodi: &nodi,
            limits: Limits::default(),
        };
        let mut msg = Messaggio::default();
        msg.dati_sistema.codicemessaggio = "M1".into();
        msg.dati_sistema.tipocomunicazione = "03".into();
        msg.destinatario.interlocutore.codiceoffertacandidatura = Some("C1".into());
        let m = Modulo::Messaggio(msg);
        assert_eq!(Letture::di(&m).riferito.as_deref(), Some("C1"));
        let r = decidi(&n, &ricevuto(&m, &lazio), Archivio::default());
        assert!(matches!(r, Err(Rifiuto::Ko(k)) if k.contains("C1 non è nota")));
        let cv = decidi(
            &n,
            &ricevuto(&cv("C1", "02"), &p("EMILIA")),
            Archivio::default(),
        )
        .unwrap()
        .moduli
        .pop()
        .unwrap();
        let a = decidi(
            &n,
            &ricevuto(&m, &lazio),
            Archivio {
                riferito: Some(cv),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.inoltri.nodi, vec![p("EMILIA")]);
        assert!(a.contatto.is_none());
        assert_eq!(
            a.rotta.as_deref(),
            Some("inoltrato a SPC/EMILIA, titolare di C1")
        );
    }

    fn nodo<'a>(ruolo: Ruolo, own: &'a Parte, nodi: &'a [Parte]) -> Nodo<'a> {
        Nodo {
            ruolo,
            own,
            nodi,
            limits: Limits::default(),
        }
    }

    /// The record node `n` keeps of `m`, sent by `da` with nothing stored before.
    fn registrato(n: &Nodo<'_>, m: &Modulo, da: &Parte) -> StoredModulo {
        decidi(n, &ricevuto(m, da), Archivio::default())
            .unwrap()
            .moduli
            .pop()
            .unwrap()
    }

    /// What is stored when a modulo names `originale` as its precedente.
    fn dopo(originale: &StoredModulo) -> Archivio {
        Archivio {
            originale: Some(originale.clone()),
            ..Default::default()
        }
    }

    /// What is stored when a modulo comes again under the code of `esistente`.
    fn sopra(esistente: &StoredModulo) -> Archivio {
        Archivio {
            esistente: Some(esistente.clone()),
            ..Default::default()
        }
    }

    /// CV `codice` of `ambito`, rectifying `di` (or closing it, with `chiusura`).
    fn rettifica(codice: &str, di: &str, ambito: &str, chiusura: bool) -> Modulo {
        let mut m = cv(codice, ambito);
        if let Modulo::Candidatura(c) = &mut m {
            c.dati_sistema.codicecandidaturaprecedente = Some(di.into());
            if chiusura {
                c.dati_sistema.tipocandidatura = "02".into();
            }
        }
        m
    }

    fn con(m: &Modulo, f: impl FnOnce(&mut Candidatura)) -> Modulo {
        let mut m = m.clone();
        if let Modulo::Candidatura(c) = &mut m {
            f(c);
        }
        m
    }

    #[test]
    fn only_who_published_a_modulo_changes_it() {
        let (own, emilia, lazio) = (p("MinisteroLavoro"), p("EMILIA"), p("LAZIO"));
        let nodi = [p("EMILIA"), p("LAZIO")];
        let n = nodo(Ruolo::Ncn, &own, &nodi);
        let originale = registrato(&n, &cv("C1", "02"), &emilia);
        // A rettifica, a chiusura and a same-code update from LAZIO: refused, saying why.
        let r = rettifica("C2", "C1", "02", false);
        for (m, a, cosa) in [
            (&r, dopo(&originale), "rettifica rifiutata"),
            (
                &rettifica("C2", "C1", "02", true),
                dopo(&originale),
                "chiusura rifiutata",
            ),
            (
                &cv("C1", "02"),
                sopra(&originale),
                "aggiornamento rifiutato",
            ),
        ] {
            match decidi(&n, &ricevuto(m, &lazio), a) {
                Err(Rifiuto::Ko(k)) => {
                    assert!(k.starts_with(cosa), "{k}");
                    assert!(
                        k.contains("pubblicata da SPC/EMILIA") && k.contains("C1"),
                        "{k}"
                    );
                }
                other => panic!("{cosa}: {other:?}"),
            }
        }
        // From EMILIA, the same rettifica is accepted.
        let a = decidi(&n, &ricevuto(&r, &emilia), dopo(&originale)).unwrap();
        assert_eq!(a.effetto, Effetto::Rettifica("C1".into()));
    }

    #[test]
    fn percettore_si_is_the_ministrys_to_set() {
        let (own, emilia) = (p("MinisteroLavoro"), p("EMILIA"));
        let nodi = [p("EMILIA"), p("LAZIO")];
        let ncn = nodo(Ruolo::Ncn, &own, &nodi);
        let si = con(&cv("C1", "02"), |c| {
            c.dati_sistema.percettore = Some("SI".into())
        });
        // At the NCN, from a region: refused, naming the field.
        let r = decidi(&ncn, &ricevuto(&si, &emilia), Archivio::default());
        assert!(
            matches!(&r, Err(Rifiuto::Ko(k)) if k.starts_with("campo percettore")),
            "{r:?}"
        );
        // Through the percettori's service (INPS): accepted.
        let mut inps = ricevuto(&si, &own);
        inps.percettore = true;
        assert!(decidi(&ncn, &inps, Archivio::default()).is_ok());
        // At a region: from the NCN accepted, from its own local system refused.
        let nr = nodo(Ruolo::Nr, &emilia, &nodi);
        assert!(decidi(&nr, &ricevuto(&si, &own), Archivio::default()).is_ok());
        assert!(matches!(
            decidi(&nr, &ricevuto(&si, &emilia), Archivio::default()),
            Err(Rifiuto::Ko(_))
        ));
        // NO is anyone's.
        let no = con(&si, |c| c.dati_sistema.percettore = Some("NO".into()));
        assert!(decidi(&ncn, &ricevuto(&no, &emilia), Archivio::default()).is_ok());
    }

    #[test]
    fn a_regional_cv_from_the_portal_goes_to_the_region_of_domicile_only() {
        let own = p("MinisteroLavoro");
        let nodi = [p("EMILIA"), p("LAZIO")];
        let n = nodo(Ruolo::Ncn, &own, &nodi);
        // Roma.
        let m = con(&cv("C1", "01"), |c| {
            c.lavoratore.domicilio.idcomune = "H501".into()
        });
        let a = decidi(&n, &ricevuto(&m, &own), Archivio::default()).unwrap();
        assert_eq!(a.inoltri.nodi, vec![p("LAZIO")]);
        let record = a.moduli.last().unwrap();
        assert_eq!(record.titolare.as_deref(), Some("SPC/LAZIO"));
        assert_eq!(record.scheda, None, "not published nationally");
        assert!(
            a.rotta
                .as_deref()
                .unwrap()
                .contains("ambito regionale con domicilio in H501"),
            "{:?}",
            a.rotta
        );
        // From a region, a regional CV stays with that region, as before.
        let a = decidi(&n, &ricevuto(&m, &p("EMILIA")), Archivio::default()).unwrap();
        assert!(a.inoltri.nodi.is_empty());
        assert_eq!(a.moduli.last().unwrap().scheda, None);
        // A domicile whose region is not in the network (Milano): kept, and said so.
        let m = con(&m, |c| c.lavoratore.domicilio.idcomune = "F205".into());
        let a = decidi(&n, &ricevuto(&m, &own), Archivio::default()).unwrap();
        assert!(a.inoltri.nodi.is_empty());
        assert!(a.rotta.unwrap().contains("non è nella rete"));
    }

    #[test]
    fn a_rettifica_goes_by_its_new_ambito_and_is_withdrawn_where_it_no_longer_goes() {
        let (own, emilia) = (p("MinisteroLavoro"), p("EMILIA"));
        let nodi = [p("EMILIA"), p("LAZIO"), p("VENETO")];
        let n = nodo(Ruolo::Ncn, &own, &nodi);
        // The rettifica of ambito `nuovo` of a CV first published with ambito `prima`.
        let decidi_su = |nuovo: &str, prima: &str| {
            let originale = registrato(&n, &cv("C1", prima), &emilia);
            let r = rettifica("C2", "C1", nuovo, false);
            decidi(&n, &ricevuto(&r, &emilia), dopo(&originale)).unwrap()
        };
        // 02 → 01: withdrawn from the other regions.
        let a = decidi_su("01", "02");
        assert!(a.inoltri.nodi.is_empty());
        assert_eq!(a.inoltri.ritiri, vec![p("LAZIO"), p("VENETO")]);
        assert!(a
            .rotta
            .unwrap()
            .contains("ritirata da SPC/LAZIO, SPC/VENETO"));
        // 01 → 02: it reaches them now.
        let a = decidi_su("02", "01");
        assert_eq!(a.inoltri.nodi, vec![p("LAZIO"), p("VENETO")]);
        assert!(a.inoltri.ritiri.is_empty() && !a.inoltri.ritiro_eures);
        // The original's routes become the rettifica's, for a later chiusura.
        assert_eq!(a.moduli[0].destinazioni, vec!["SPC/LAZIO", "SPC/VENETO"]);
        // 02 → 03: EURES added; 03 → 02: withdrawn from EURES.
        let a = decidi_su("03", "02");
        assert!(a.inoltri.eures && !a.inoltri.ritiro_eures);
        let a = decidi_su("02", "03");
        assert!(!a.inoltri.eures && a.inoltri.ritiro_eures);
        assert_eq!(a.inoltri.nodi, vec![p("LAZIO"), p("VENETO")]);
        // The withdrawal is the modulo's chiusura ("03", ritiro) under the same codes.
        let Some(Modulo::Candidatura(c)) =
            super::super::ritiro(&rettifica("C2", "C1", "01", false))
        else {
            panic!()
        };
        assert_eq!(c.dati_sistema.tipocandidatura, "02");
        assert_eq!(c.dati_sistema.motivochiusura.as_deref(), Some("03"));
        assert_eq!(
            c.dati_sistema.codicecandidaturaprecedente.as_deref(),
            Some("C1")
        );
    }

    #[test]
    fn a_closed_modulo_is_not_reopened_at_the_ncn() {
        let (own, emilia) = (p("MinisteroLavoro"), p("EMILIA"));
        let nodi = [p("EMILIA"), p("LAZIO")];
        let ncn = nodo(Ruolo::Ncn, &own, &nodi);
        let mut chiuso = registrato(&ncn, &cv("C1", "02"), &emilia);
        chiuso.stato = StatoModulo::Chiuso;
        let r = rettifica("C2", "C1", "02", false);
        let esito = decidi(&ncn, &ricevuto(&r, &emilia), dopo(&chiuso));
        assert!(
            matches!(&esito, Err(Rifiuto::Ko(k)) if k.contains("C1 è chiusa")),
            "{esito:?}"
        );
        // A 2.0 update under the closed code: the same.
        let esito = decidi(&ncn, &ricevuto(&cv("C1", "02"), &emilia), sopra(&chiuso));
        assert!(matches!(esito, Err(Rifiuto::Ko(_))), "{esito:?}");
        // At a region, what the NCN sends is taken (a withdrawn CV may come back).
        let mut da_ncn = chiuso.clone();
        da_ncn.mittente = Some("SPC/MinisteroLavoro".into());
        let nr = nodo(Ruolo::Nr, &emilia, &nodi);
        assert!(decidi(&nr, &ricevuto(&r, &own), dopo(&da_ncn)).is_ok());
        // A rettifica of a rectified (not closed) original is fine.
        chiuso.stato = StatoModulo::Rettificato;
        assert!(decidi(&ncn, &ricevuto(&r, &emilia), dopo(&chiuso)).is_ok());
    }
}
