//! The ClicLavoro network (document §1, §3, §4): the roles of a node, where each modulo goes,
//! who answers for it, what a contact reaches, what is published. Pure: the gateway does the
//! I/O (the outbox, the sweeper, the read API).

pub mod accettazione;
pub mod europass;
pub mod intermediari;
pub mod percettori;
pub mod scheda;

use serde::{Deserialize, Serialize};

use crate::egov::Parte;
use crate::modulo::model::candidatura::Candidatura;
use crate::modulo::model::Testo;
use crate::modulo::Modulo;
use crate::registry::{Registry, REGIONI};

/// A node's part in the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ruolo {
    /// The Ministry's National Coordination Node: receives from regions, INPS and
    /// intermediaries, and disseminates.
    Ncn,
    /// A Regional Node: sends its moduli to the NCN, receives what the NCN disseminates.
    Nr,
    /// A plain gateway: stores what it receives, forwards nothing.
    #[default]
    None,
}

/// The regional nodes this registry can reach: soggetti named after a region (see
/// [`REGIONI`]) with a porta applicativa URL, other than ourselves.
pub fn nodi_regionali(reg: &Registry, own: &Parte) -> Vec<Parte> {
    reg.soggetti()
        .iter()
        .filter(|s| s.tipo == "SPC" && REGIONI.contains(&s.nome.as_str()) && s.url.is_some())
        .map(|s| s.parte())
        .filter(|p| !p.same(own))
        .collect()
}

/// The regional node that answers for a comune (Belfiore code): ISTAT region, with
/// Trentino-Alto Adige split into its two autonomous provinces.
pub fn nodo_del_comune(belfiore: &str) -> Option<&'static str> {
    let c = crate::modulo::tabelle::tabelle().comune(belfiore.trim())?;
    Some(match c.codice_regione.as_str() {
        "01" => "PIEMONTE",
        "02" => "VALDAOSTA",
        "03" => "LOMBARDIA",
        "04" if c.provincia == "BZ" => "BOLZANO",
        "04" => "TRENTO",
        "05" => "VENETO",
        "06" => "FRIULI",
        "07" => "LIGURIA",
        "08" => "EMILIA",
        "09" => "TOSCANA",
        "10" => "UMBRIA",
        "11" => "MARCHE",
        "12" => "LAZIO",
        "13" => "ABRUZZO",
        "14" => "MOLISE",
        "15" => "CAMPANIA",
        "16" => "PUGLIA",
        "17" => "BASILICATA",
        "18" => "CALABRIA",
        "19" => "SICILIA",
        "20" => "SARDEGNA",
        _ => return None,
    })
}

/// Ambito di diffusione of a Candidatura.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ambito {
    /// `01`: kept for the originating region.
    Regionale,
    /// `02`: every region.
    Nazionale,
    /// `03`: every region and EURES.
    Europeo,
}

impl Ambito {
    pub fn as_str(self) -> &'static str {
        match self {
            Ambito::Regionale => "regionale",
            Ambito::Nazionale => "nazionale",
            Ambito::Europeo => "europeo",
        }
    }
}

/// The widest ambito chosen (2.0 lets a CV name several).
pub fn ambito(c: &Candidatura) -> Ambito {
    c.dati_sistema
        .ambitodiffusione
        .iter()
        .map(|a| match a.trim() {
            "03" => Ambito::Europeo,
            "02" => Ambito::Nazionale,
            _ => Ambito::Regionale,
        })
        .max()
        .unwrap_or(Ambito::Regionale)
}

/// Whether a modulo was inserted by an intermediary (document §4.4: contacts go through it).
pub fn intermediato(m: &Modulo) -> bool {
    let pieno = |v: &Option<Testo>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    match m {
        Modulo::Candidatura(c) => {
            let d = &c.dati_sistema;
            pieno(&d.idintermediario)
                || pieno(&d.codicefiscaleintermediario)
                || pieno(&d.denominazioneintermediario)
        }
        Modulo::Vacancy(v) => {
            let d = &v.dati_sistema;
            pieno(&d.intermediario)
                || pieno(&d.codicefiscaleintermediario)
                || pieno(&d.denominazioneintermediario)
        }
        Modulo::Messaggio(_) => false,
    }
}

/// How EURES is named among a modulo's destinations.
pub const EURES: &str = "EURES";

/// Where an accepted modulo goes from the NCN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instradamento {
    pub nodi: Vec<Parte>,
    /// Queue it for EURES (a Europass CV, or the vacancy).
    pub eures: bool,
    /// Why, for the answer and the trace.
    pub motivo: String,
}

/// What kind of communication a modulo is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comunicazione {
    /// A new modulo, (2.0) an update under the same code, or a rettifica: by its ambito.
    Invio,
    /// A chiusura of an earlier modulo: it follows the original's routes.
    Seguito,
}

/// Dissemination at the NCN (document §3, §4.1). `mittente` is who sent it to us; `nodi` every
/// regional node we reach; `gia` where earlier versions of it went.
pub fn instrada(
    m: &Modulo,
    com: Comunicazione,
    mittente: &Parte,
    nodi: &[Parte],
    gia: &[String],
) -> Instradamento {
    let altri = || -> Vec<Parte> { nodi.iter().filter(|n| !n.same(mittente)).cloned().collect() };
    let seguito = || -> Vec<Parte> { gia.iter().filter_map(|g| Parte::parse(g)).collect() };
    match (m, com) {
        (Modulo::Messaggio(_), _) => Instradamento::default(),
        (_, Comunicazione::Seguito) => Instradamento {
            nodi: seguito(),
            eures: gia.iter().any(|g| g == EURES),
            motivo: "segue l'originale".into(),
        },
        (Modulo::Candidatura(c), Comunicazione::Invio) => {
            // By its own ambito, also when it updates or rectifies an earlier version (where
            // that went and this does not, it is withdrawn: see `accettazione`).
            let a = ambito(c);
            let nodi = match a {
                Ambito::Regionale => Vec::new(),
                Ambito::Nazionale | Ambito::Europeo => altri(),
            };
            Instradamento {
                nodi,
                eures: a == Ambito::Europeo,
                motivo: format!("ambito {}", a.as_str()),
            }
        }
        // Vacancies circulate without limit (document §3).
        (Modulo::Vacancy(_), Comunicazione::Invio) => Instradamento {
            nodi: altri(),
            eures: true,
            motivo: "offerta: massima circolazione".into(),
        },
    }
}

/// The withdrawal of a modulo from where it no longer goes: its chiusura on the publisher's
/// behalf ("03", ritiro), under the same codes (a Rev.038 rettifica closes the original it
/// names, a 2.0 update its own code). None for a Messaggio.
pub fn ritiro(m: &Modulo) -> Option<Modulo> {
    let mut m = m.clone();
    match &mut m {
        Modulo::Candidatura(c) => {
            c.dati_sistema.tipocandidatura = "02".into();
            c.dati_sistema.motivochiusura = Some("03".into());
        }
        Modulo::Vacancy(v) => {
            v.dati_sistema.tipoofferta = "02".into();
            v.dati_sistema.motivochiusura = Some("03".into());
        }
        Modulo::Messaggio(_) => return None,
    }
    Some(m)
}

/// The code of the candidatura or offerta a Messaggio is about.
pub fn riferimento(m: &crate::modulo::model::messaggio::Messaggio) -> Option<&str> {
    [
        &m.destinatario.interlocutore.codiceoffertacandidatura,
        &m.mittente.interlocutore.codiceoffertacandidatura,
    ]
    .into_iter()
    .filter_map(|c| c.as_deref().map(str::trim))
    .find(|c| !c.is_empty())
}

/// Who a contact about a modulo reaches (document §4.4): the worker or employer who published
/// it directly, or only the intermediary who published it for them.
pub fn recapito(m: &Modulo) -> serde_json::Value {
    use serde_json::json;
    fn pulito(v: &Option<Testo>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    if intermediato(m) {
        let (den, cf, email, tel) = match m {
            Modulo::Candidatura(c) => {
                let d = &c.dati_sistema;
                (
                    &d.denominazioneintermediario,
                    &d.codicefiscaleintermediario,
                    &d.email,
                    &d.telefono,
                )
            }
            Modulo::Vacancy(v) => {
                let d = &v.dati_sistema;
                (
                    &d.denominazioneintermediario,
                    &d.codicefiscaleintermediario,
                    &d.email,
                    &d.telefono,
                )
            }
            Modulo::Messaggio(_) => return json!({}),
        };
        return json!({
            "tramite": "intermediario",
            "denominazione": pulito(den),
            "codice_fiscale": pulito(cf),
            "email": pulito(email),
            "telefono": pulito(tel),
        });
    }
    match m {
        Modulo::Candidatura(c) => {
            let a = &c.lavoratore.dati_anagrafici;
            let r = &c.lavoratore.recapiti;
            json!({
                "tramite": "diretto",
                "denominazione": format!("{} {}", a.nome.trim(), a.cognome.trim()),
                "email": r.email.trim(),
                "telefono": pulito(&r.cellulare).or(pulito(&r.telefono)),
            })
        }
        Modulo::Vacancy(v) => {
            let d = &v.datore_lavoro;
            json!({
                "tramite": "diretto",
                "denominazione": d.dati_anagrafici.denominazione.trim(),
                "email": d.dati_contatto.email.trim(),
                "telefono": pulito(&d.dati_contatto.telefono),
            })
        }
        Modulo::Messaggio(_) => json!({}),
    }
}

/// Waiting time before attempt `tentativi + 1`: doubling from `min`, capped at `max` (seconds).
pub fn attesa(tentativi: u32, min: u64, max: u64) -> u64 {
    let f = 1u64.checked_shl(tentativi.min(40)).unwrap_or(u64::MAX);
    min.max(1).saturating_mul(f).min(max.max(min.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modulo::model::candidatura::Candidatura as C;

    fn cv(ambiti: &[&str]) -> Modulo {
        let mut c = C::default();
        c.dati_sistema.ambitodiffusione = ambiti.iter().map(|s| (*s).into()).collect();
        Modulo::Candidatura(c)
    }

    fn p(n: &str) -> Parte {
        Parte::new("SPC", n)
    }

    #[test]
    fn candidature_follow_the_ambito() {
        let nodi = [p("EMILIA"), p("LAZIO"), p("VENETO")];
        let r = instrada(&cv(&["01"]), Comunicazione::Invio, &p("EMILIA"), &nodi, &[]);
        assert!(r.nodi.is_empty() && !r.eures, "{r:?}");
        let r = instrada(&cv(&["02"]), Comunicazione::Invio, &p("EMILIA"), &nodi, &[]);
        assert_eq!(r.nodi, vec![p("LAZIO"), p("VENETO")]);
        assert!(!r.eures);
        let r = instrada(
            &cv(&["01", "03"]),
            Comunicazione::Invio,
            &p("LAZIO"),
            &nodi,
            &[],
        );
        assert_eq!(r.nodi, vec![p("EMILIA"), p("VENETO")]);
        assert!(r.eures);
        // An update (or rettifica) of a national CV turned regional goes by its new ambito:
        // nowhere (where it went before, it is withdrawn: see `accettazione`).
        let r = instrada(
            &cv(&["01"]),
            Comunicazione::Invio,
            &p("EMILIA"),
            &nodi,
            &["SPC/LAZIO".into()],
        );
        assert!(r.nodi.is_empty() && !r.eures, "{r:?}");
        // Chiusure follow the original, whatever they say, EURES included.
        let r = instrada(
            &cv(&["03"]),
            Comunicazione::Seguito,
            &p("EMILIA"),
            &nodi,
            &["SPC/VENETO".into()],
        );
        assert_eq!(r.nodi, vec![p("VENETO")]);
        assert!(!r.eures);
        let r = instrada(
            &cv(&["01"]),
            Comunicazione::Seguito,
            &p("EMILIA"),
            &nodi,
            &["SPC/VENETO".into(), EURES.into()],
        );
        assert_eq!(r.nodi, vec![p("VENETO")]);
        assert!(r.eures);
    }

    #[test]
    fn vacancies_reach_every_other_region() {
        let nodi = [p("EMILIA"), p("LAZIO")];
        let v = Modulo::Vacancy(Default::default());
        let r = instrada(&v, Comunicazione::Invio, &p("LAZIO"), &nodi, &[]);
        assert_eq!(r.nodi, vec![p("EMILIA")]);
        assert!(r.eures);
        // From an intermediary (not a region): every region.
        let r = instrada(&v, Comunicazione::Invio, &p("AgenziaX"), &nodi, &[]);
        assert_eq!(r.nodi.len(), 2);
    }

    #[test]
    fn comuni_map_to_their_regional_node() {
        assert_eq!(nodo_del_comune("A944"), Some("EMILIA")); // Bologna
        assert_eq!(nodo_del_comune("H501"), Some("LAZIO")); // Roma
        assert_eq!(nodo_del_comune("A952"), Some("BOLZANO")); // Bolzano
        assert_eq!(nodo_del_comune("L378"), Some("TRENTO")); // Trento
        assert_eq!(nodo_del_comune("Z112"), None); // abroad
        assert_eq!(nodo_del_comune("0000"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(attesa(0, 1, 300), 1);
        assert_eq!(attesa(3, 1, 300), 8);
        assert_eq!(attesa(20, 1, 300), 300);
        assert_eq!(attesa(u32::MAX, 2, 60), 60);
    }

    #[test]
    fn contacts_of_intermediated_moduli_reach_the_intermediary_only() {
        let mut c = C::default();
        c.lavoratore.recapiti.email = "lavoratore@example.it".into();
        let diretto = recapito(&Modulo::Candidatura(c.clone()));
        assert_eq!(diretto["tramite"], "diretto");
        assert_eq!(diretto["email"], "lavoratore@example.it");
        c.dati_sistema.denominazioneintermediario = Some("CPI Bologna".into());
        c.dati_sistema.email = Some("cpi@example.it".into());
        let m = Modulo::Candidatura(c);
        assert!(intermediato(&m));
        let r = recapito(&m);
        assert_eq!(r["tramite"], "intermediario");
        assert_eq!(r["email"], "cpi@example.it");
        assert!(!r.to_string().contains("lavoratore@example.it"));
    }
}
