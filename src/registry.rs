//! The registry of soggetti (parties) and servizi (services), as the gateway knows them.
//! Loaded from config (or the embedded demo); looked up on every busta. No I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::egov::{Parte, Profilo, ProfiloGestione};

pub use crate::egov::validate::ErroriStruttura;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soggetto {
    #[serde(default = "default_tipo")]
    pub tipo: String,
    pub nome: String,
    /// Identificativo porta (CodPdD); default `<nome>SPCoopIT` for SPC.
    #[serde(default)]
    pub porta: String,
    /// Management profile the partner speaks.
    #[serde(default)]
    pub profilo: ProfiloGestione,
    /// URL of the partner's porta applicativa, for the porta delegata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How to answer this partner's structurally broken headers; default from `[busta]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errori_struttura: Option<ErroriStruttura>,
    /// Check that the Identificatore's first two parts belong to the sender.
    #[serde(default = "yes")]
    pub validazione_id_completa: bool,
    /// Hosted by this gateway (buste addressed to it are ours to serve).
    #[serde(default)]
    pub locale: bool,
    /// Its certificate (PEM; in a config file also a path to a PEM file): pinned for TLS and
    /// for the WS-Security token of its buste.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// Whether its buste must carry a WS-Security signature; default from `[wssec]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firma: Option<PoliticaFirma>,
    /// What of the busta our signatures cover in what we send it, and what its signatures
    /// must cover; default: `[wssec] copertura` when signing, either form on receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copertura: Option<crate::wssec::dsig::Copertura>,
    /// SOAP with Attachments: our signatures cover the attachments we send it (WS-Security
    /// SwA profile, `cid:` references), and its signed buste must cover every attachment.
    /// Off by default: a WSS4J peer without an attachment callback cannot resolve `cid:`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub firma_allegati: bool,
    /// Services it may call on us (`ClicLavoro`, …); empty: every service that admits it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servizi: Vec<String>,
}

/// Verification of incoming signatures, per partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoliticaFirma {
    /// A busta without a valid signature is refused.
    Required,
    /// A signature, if present, must be valid.
    Optional,
    /// Signatures are not checked.
    #[default]
    Off,
}

fn default_tipo() -> String {
    "SPC".to_string()
}
fn yes() -> bool {
    true
}

impl Soggetto {
    pub fn new(tipo: &str, nome: &str) -> Soggetto {
        Soggetto {
            tipo: tipo.to_string(),
            nome: nome.to_string(),
            porta: porta_default(tipo, nome),
            profilo: ProfiloGestione::default(),
            url: None,
            errori_struttura: None,
            validazione_id_completa: true,
            locale: false,
            cert: None,
            firma: None,
            copertura: None,
            firma_allegati: false,
            servizi: Vec::new(),
        }
    }
    pub fn parte(&self) -> Parte {
        Parte::new(&self.tipo, &self.nome)
    }
}

/// Default identificativo porta per party type (GovWay `getIdentificativoPortaDefault`).
pub fn porta_default(tipo: &str, nome: &str) -> String {
    match tipo {
        "SPC" => format!("{nome}SPCoopIT"),
        "AOO" => format!("PDD{nome}"),
        t => format!("{nome}PdD{t}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azione {
    pub nome: String,
    /// Overrides the service's profilo for this azione.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profilo: Option<Profilo>,
    /// The azione this one is correlated to (an asynchronous exchange's status request, or
    /// its risposta): its buste must refer (RiferimentoMessaggio) to a message of that azione
    /// received here, in the same conversation (Collaborazione).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servizio {
    #[serde(default = "default_tipo")]
    pub tipo: String,
    pub nome: String,
    /// The soggetto offering it, `TIPO/NOME`.
    pub erogatore: String,
    /// Profilo di collaborazione of the service (and of azioni without their own).
    pub profilo: Profilo,
    /// Whether a busta must name an Azione.
    #[serde(default)]
    pub azione_obbligatoria: bool,
    #[serde(default)]
    pub azioni: Vec<Azione>,
    /// Soggetti allowed to call it (`TIPO/NOME`); empty means every registered soggetto.
    #[serde(default)]
    pub fruitori: Vec<String>,
    /// Duplicate filter (always on under Linee Guida 1.1).
    #[serde(default = "yes")]
    pub filtro_duplicati: bool,
    /// Sbustamento: post the unwrapped SOAP message to this URL and wrap its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// A built-in handler (`cliclavoro`, `echo`); used when no backend is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Asynchronous symmetric profile: the servizio the fruitore offers for the risposta,
    /// named in the request's busta (`ProfiloCollaborazione/@servizioCorrelato`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlato: Option<String>,
}

impl Servizio {
    pub fn erogatore_parte(&self) -> Option<Parte> {
        Parte::parse(&self.erogatore)
    }
    pub fn azione(&self, nome: &str) -> Option<&Azione> {
        self.azioni.iter().find(|a| a.nome == nome)
    }
    /// The profilo expected for an azione (or for a call without one).
    pub fn profilo_per(&self, azione: Option<&str>) -> Profilo {
        azione
            .and_then(|a| self.azione(a))
            .and_then(|a| a.profilo)
            .unwrap_or(self.profilo)
    }
    pub fn ammette(&self, fruitore: &Parte) -> bool {
        self.fruitori.is_empty()
            || self
                .fruitori
                .iter()
                .filter_map(|f| Parte::parse(f))
                .any(|f| f.same(fruitore))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    soggetti: Vec<Soggetto>,
    servizi: Vec<Servizio>,
    by_parte: HashMap<(String, String), usize>,
    by_servizio: HashMap<(String, String, String, String), usize>,
    /// Parsed certificates of the soggetti that have one.
    certs: HashMap<(String, String), openssl::x509::X509>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("soggetto {0} is registered twice")]
    SoggettoDuplicato(String),
    #[error("servizio {0} is registered twice")]
    ServizioDuplicato(String),
    #[error("servizio {servizio}: erogatore '{erogatore}' is not TIPO/NOME or not a registered soggetto")]
    Erogatore { servizio: String, erogatore: String },
    #[error("servizio {servizio}: fruitore '{fruitore}' is not TIPO/NOME")]
    Fruitore { servizio: String, fruitore: String },
    #[error(
        "soggetto '{0}': names may hold only letters and digits (they form the Identificatore)"
    )]
    Nome(String),
    #[error("soggetto {0}: the certificate is not readable PEM ({1})")]
    Certificato(String, String),
}

impl Registry {
    pub fn new(soggetti: Vec<Soggetto>, servizi: Vec<Servizio>) -> Result<Registry, RegistryError> {
        let mut r = Registry::default();
        for mut s in soggetti {
            if s.nome.is_empty() || !s.nome.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(RegistryError::Nome(s.nome));
            }
            if s.porta.is_empty() {
                s.porta = porta_default(&s.tipo, &s.nome);
            }
            let key = (s.tipo.clone(), s.nome.clone());
            if r.by_parte.contains_key(&key) {
                return Err(RegistryError::SoggettoDuplicato(format!(
                    "{}/{}",
                    s.tipo, s.nome
                )));
            }
            if let Some(pem) = &s.cert {
                let c = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|e| {
                    RegistryError::Certificato(format!("{}/{}", s.tipo, s.nome), e.to_string())
                })?;
                r.certs.insert(key.clone(), c);
            }
            r.by_parte.insert(key, r.soggetti.len());
            r.soggetti.push(s);
        }
        for s in servizi {
            let erog = s
                .erogatore_parte()
                .filter(|p| r.soggetto(p).is_some())
                .ok_or_else(|| RegistryError::Erogatore {
                    servizio: s.nome.clone(),
                    erogatore: s.erogatore.clone(),
                })?;
            if let Some(f) = s.fruitori.iter().find(|f| Parte::parse(f).is_none()) {
                return Err(RegistryError::Fruitore {
                    servizio: s.nome.clone(),
                    fruitore: f.clone(),
                });
            }
            let key = (erog.tipo, erog.nome, s.tipo.clone(), s.nome.clone());
            if r.by_servizio.contains_key(&key) {
                return Err(RegistryError::ServizioDuplicato(format!(
                    "{}/{}",
                    s.tipo, s.nome
                )));
            }
            r.by_servizio.insert(key, r.servizi.len());
            r.servizi.push(s);
        }
        Ok(r)
    }

    pub fn soggetto(&self, p: &Parte) -> Option<&Soggetto> {
        self.by_parte
            .get(&(p.tipo.clone(), p.nome.clone()))
            .map(|&i| &self.soggetti[i])
    }

    /// A soggetto's registered certificate.
    pub fn certificato(&self, p: &Parte) -> Option<openssl::x509::X509> {
        self.certs.get(&(p.tipo.clone(), p.nome.clone())).cloned()
    }

    pub fn soggetto_by_nome(&self, nome: &str) -> Option<&Soggetto> {
        self.soggetti.iter().find(|s| s.nome == nome)
    }

    /// The service `tipo/nome` offered by `erogatore`.
    pub fn servizio(&self, erogatore: &Parte, tipo: &str, nome: &str) -> Option<&Servizio> {
        self.by_servizio
            .get(&(
                erogatore.tipo.clone(),
                erogatore.nome.clone(),
                tipo.to_string(),
                nome.to_string(),
            ))
            .map(|&i| &self.servizi[i])
    }

    /// Any service with this name, whoever offers it.
    pub fn servizi_named<'a>(&'a self, nome: &'a str) -> impl Iterator<Item = &'a Servizio> + 'a {
        self.servizi.iter().filter(move |s| s.nome == nome)
    }

    pub fn soggetti(&self) -> &[Soggetto] {
        &self.soggetti
    }

    pub fn servizi(&self) -> &[Servizio] {
        &self.servizi
    }
}

/// The regional nodes of ClicLavoro, as the Ministry's other services name them (SAP accordi:
/// ABRUZZO … VENETO; apostrophes and spaces dropped, since names form the Identificatore).
pub const REGIONI: &[&str] = &[
    "ABRUZZO",
    "BASILICATA",
    "BOLZANO",
    "CALABRIA",
    "CAMPANIA",
    "EMILIA",
    "FRIULI",
    "LAZIO",
    "LIGURIA",
    "LOMBARDIA",
    "MARCHE",
    "MOLISE",
    "PIEMONTE",
    "PUGLIA",
    "SARDEGNA",
    "SICILIA",
    "TOSCANA",
    "TRENTO",
    "UMBRIA",
    "VALDAOSTA",
    "VENETO",
];

pub const CLICLAVORO_AZIONI: &[&str] = &["InvioCandidatura", "InvioVacancy", "InvioMessaggio"];

/// The soggetto of the Ministry's National Coordination Node.
pub const NCN: &str = "MinisteroLavoro";

/// The soggetto of INPS, which sends the CVs of percettori.
pub const INPS: &str = "INPS";

/// The NCN's service for INPS's percettori (azione InvioPercettore).
pub const PERCETTORI: &str = "ClicLavoroPercettori";

/// The embedded demo registry: the Ministry (offering the ClicLavoro service), every region,
/// INPS, and our own soggetto if it is none of these.
pub fn demo(own: &Soggetto) -> (Vec<Soggetto>, Vec<Servizio>) {
    let mut soggetti = Vec::new();
    for nome in [NCN].iter().chain(REGIONI.iter()).chain([INPS].iter()) {
        if own.tipo == "SPC" && own.nome == *nome {
            soggetti.push(own.clone());
        } else {
            soggetti.push(Soggetto::new("SPC", nome));
        }
    }
    if !soggetti
        .iter()
        .any(|s| s.tipo == own.tipo && s.nome == own.nome)
    {
        soggetti.push(own.clone());
    }
    let cliclavoro =
        |nome: &str, erogatore: &str, azioni: &[&str], fruitori: Vec<String>| Servizio {
            tipo: "SPC".into(),
            nome: nome.into(),
            erogatore: format!("SPC/{erogatore}"),
            profilo: Profilo::Sincrono,
            azione_obbligatoria: true,
            azioni: azioni
                .iter()
                .map(|a| Azione {
                    nome: a.to_string(),
                    profilo: None,
                    correlata: None,
                })
                .collect(),
            fruitori,
            filtro_duplicati: true,
            backend: None,
            handler: Some("cliclavoro".into()),
            correlato: None,
        };
    // The NCN takes moduli from every registered soggetto; each regional node takes what the
    // NCN disseminates; INPS alone sends the percettori.
    let mut servizi = vec![
        cliclavoro("ClicLavoro", NCN, CLICLAVORO_AZIONI, Vec::new()),
        cliclavoro(
            PERCETTORI,
            NCN,
            &["InvioPercettore"],
            vec![format!("SPC/{INPS}")],
        ),
    ];
    for r in REGIONI {
        servizi.push(cliclavoro(
            "ClicLavoro",
            r,
            CLICLAVORO_AZIONI,
            vec![format!("SPC/{NCN}")],
        ));
    }
    (soggetti, servizi)
}

impl crate::egov::validate::Anagrafe for Registry {
    fn soggetto(&self, p: &Parte) -> Option<crate::egov::validate::SoggettoNoto<'_>> {
        Registry::soggetto(self, p).map(|s| crate::egov::validate::SoggettoNoto {
            nome: &s.nome,
            porta: &s.porta,
            profilo: s.profilo,
            errori_struttura: s.errori_struttura,
            validazione_id_completa: s.validazione_id_completa,
        })
    }

    fn servizio(
        &self,
        erogatore: &Parte,
        tipo: &str,
        nome: &str,
        azione: Option<&str>,
    ) -> Option<crate::egov::validate::Offerta> {
        Registry::servizio(self, erogatore, tipo, nome).map(|s| crate::egov::validate::Offerta {
            azione_nota: azione.is_none_or(|a| s.azioni.is_empty() || s.azione(a).is_some()),
            azione_obbligatoria: s.azione_obbligatoria,
            profilo: s.profilo_per(azione),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_registry_resolves() {
        let own = Soggetto::new("SPC", "MinisteroLavoro");
        let (s, v) = demo(&own);
        let r = Registry::new(s, v).unwrap();
        let emilia = r.soggetto(&Parte::new("SPC", "EMILIA")).unwrap();
        assert_eq!(emilia.porta, "EMILIASPCoopIT");
        let cl = r
            .servizio(&Parte::new("SPC", "MinisteroLavoro"), "SPC", "ClicLavoro")
            .unwrap();
        assert_eq!(cl.profilo_per(Some("InvioVacancy")), Profilo::Sincrono);
        assert!(cl.ammette(&Parte::new("SPC", "LAZIO")));
        assert!(r.soggetto(&Parte::new("AOO", "EMILIA")).is_none());

        // A region's gateway sees the same network, with the Ministry offering ClicLavoro.
        let mut emilia = Soggetto::new("SPC", "EMILIA");
        emilia.locale = true;
        let (s, v) = demo(&emilia);
        let r = Registry::new(s, v).unwrap();
        assert!(r.soggetto(&Parte::new("SPC", "EMILIA")).unwrap().locale);
        assert!(r
            .servizio(&Parte::new("SPC", NCN), "SPC", "ClicLavoro")
            .is_some());
    }

    #[test]
    fn refuses_inconsistent_registries() {
        let a = Soggetto::new("SPC", "A");
        assert!(matches!(
            Registry::new(vec![a.clone(), a.clone()], vec![]),
            Err(RegistryError::SoggettoDuplicato(_))
        ));
        assert!(matches!(
            Registry::new(vec![Soggetto::new("SPC", "Val-d")], vec![]),
            Err(RegistryError::Nome(_))
        ));
        let s = Servizio {
            tipo: "SPC".into(),
            nome: "X".into(),
            erogatore: "SPC/B".into(),
            profilo: Profilo::OneWay,
            azione_obbligatoria: false,
            azioni: vec![],
            fruitori: vec![],
            filtro_duplicati: true,
            backend: None,
            handler: None,
            correlato: None,
        };
        assert!(matches!(
            Registry::new(vec![a], vec![s]),
            Err(RegistryError::Erogatore { .. })
        ));
    }
}
