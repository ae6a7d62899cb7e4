//! Semantic validation of a busta that passed the syntax checks: the registry (parties,
//! service, azione, profilo, identifier owners), expiry, and the rules of the partner's profile
//! (eGov 1.1 or Linee Guida 1.1, busta-egov.md §3.6). Then the verdict: how to answer.

use chrono::{Duration, NaiveDateTime};

use super::reader::{self, Lettura, Trovata};
use super::{
    Busta, Codice, Eccezione, Identificatore, Inoltro, Parte, Profilo, ProfiloGestione, Tempo,
};
use crate::soap::Envelope;
use crate::xml::Limits;

/// How a structurally broken header is answered (busta-egov.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErroriStruttura {
    /// A bare SOAP Fault `EGOV_IT_001`, as GovWay's default and DigitPA qualification expect.
    #[default]
    Fault,
    /// An error busta naming the element's own code (GovWay testsuite mode).
    Busta,
}

/// A registered party, as validation sees it.
#[derive(Debug, Clone, Copy)]
pub struct SoggettoNoto<'a> {
    pub nome: &'a str,
    /// Its identificativo porta (CodPdD).
    pub porta: &'a str,
    /// The management profile it speaks.
    pub profilo: ProfiloGestione,
    /// How its broken headers are answered, when set for it.
    pub errori_struttura: Option<ErroriStruttura>,
    /// Whether its Identificatori must be its own.
    pub validazione_id_completa: bool,
}

/// What a servizio says of a busta's azione.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offerta {
    /// The azione is one of the servizio's (or the servizio lists none), or there is none.
    pub azione_nota: bool,
    /// The servizio requires an azione.
    pub azione_obbligatoria: bool,
    /// The profilo di collaborazione of the azione (or of the servizio).
    pub profilo: Profilo,
}

/// What validation asks of a registry: who a party is, what a servizio offers. The registry
/// implements it; validation needs nothing else of it.
pub trait Anagrafe {
    fn soggetto(&self, p: &Parte) -> Option<SoggettoNoto<'_>>;
    /// The servizio `tipo`/`nome` offered by `erogatore`, as it concerns `azione`.
    fn servizio(
        &self,
        erogatore: &Parte,
        tipo: &str,
        nome: &str,
        azione: Option<&str>,
    ) -> Option<Offerta>;
}

pub struct Contesto<'a> {
    pub registry: &'a dyn Anagrafe,
    /// Whether a party is hosted by this gateway (a busta must be addressed to one).
    pub locale: &'a (dyn Fn(&Parte) -> bool + Sync),
    /// The sender's management profile.
    pub profilo: ProfiloGestione,
    pub now: NaiveDateTime,
    /// Expiry window when the busta has no Scadenza.
    pub scadenza_minuti: i64,
    /// Future dates beyond this many minutes are refused; 0 accepts any.
    pub tolleranza_futuro_minuti: i64,
    /// Check that identifiers belong to their owners.
    pub validazione_id_completa: bool,
    /// Every fault in one answer, as the DigitPA qualification expects (see
    /// `[busta] qualificazione`); otherwise GovWay's stages.
    pub qualificazione: bool,
}

fn grave(c: Codice, p: &str) -> Eccezione {
    Eccezione::grave(c, p)
}

/// Every eccezione the registry, the clock and the profile raise for `b`.
pub fn valida(b: &Busta, ctx: &Contesto<'_>) -> Vec<Eccezione> {
    let mut e = Vec::new();
    let reg = ctx.registry;
    let lg = ctx.profilo == ProfiloGestione::LineeGuida11;

    let mittente = b.mittente.as_ref().and_then(|m| reg.soggetto(m));
    if mittente.is_none() {
        e.push(grave(Codice::MITTENTE, "Mittente/IdentificativoParte"));
    }
    let destinatario = b
        .destinatario
        .as_ref()
        .filter(|d| (ctx.locale)(d))
        .and_then(|d| reg.soggetto(d));
    if destinatario.is_none() {
        e.push(grave(
            Codice::DESTINATARIO,
            "Destinatario/IdentificativoParte",
        ));
    }

    // The identifier must be the sender's own (checked only for a known sender).
    if let (Some(m), Some(id)) = (mittente, &b.id) {
        if ctx.validazione_id_completa {
            if let Ok(id) = Identificatore::parse(id) {
                if id.cod_amm != m.nome || !id.cod_pdd.eq_ignore_ascii_case(m.porta) {
                    e.push(grave(Codice::ID_NON_VALIDO, "Messaggio/Identificatore"));
                }
            }
        }
    }
    // A RiferimentoMessaggio in a request points at a message the destinatario issued.
    if let (Some(d), Some(r)) = (destinatario, &b.riferimento_messaggio) {
        if ctx.validazione_id_completa {
            if let Ok(r) = Identificatore::parse(r) {
                let of_mittente = mittente.is_some_and(|m| r.cod_amm == m.nome);
                if r.cod_amm != d.nome && !of_mittente {
                    e.push(grave(
                        Codice::RIFERIMENTO_NON_VALIDO,
                        "Messaggio/RiferimentoMessaggio",
                    ));
                }
            }
        }
    }

    // Servizio, azione, profilo against the registry.
    let servizio = match (&b.servizio, &b.destinatario) {
        (None, _) => {
            e.push(grave(Codice::SERVIZIO, "Servizio"));
            None
        }
        (Some(s), Some(d)) if destinatario.is_some() => {
            let found = reg.servizio(d, &s.tipo, &s.nome, b.azione.as_deref());
            if found.is_none() {
                e.push(grave(Codice::SERVIZIO, "Servizio"));
            }
            found
        }
        _ => None,
    };
    if let Some(s) = servizio {
        match &b.azione {
            Some(_) if !s.azione_nota => e.push(grave(Codice::AZIONE, "Azione")),
            None if s.azione_obbligatoria => e.push(grave(Codice::AZIONE, "Azione")),
            _ => {}
        }
        if let Some(p) = b.profilo {
            if p != s.profilo {
                e.push(grave(
                    Codice::PROFILO_COLLABORAZIONE,
                    "ProfiloCollaborazione",
                ));
            }
        }
    }
    if b.profilo.is_none() {
        e.push(grave(
            Codice::PROFILO_COLLABORAZIONE,
            "ProfiloCollaborazione",
        ));
    }
    // The conversation id belongs to one of the two parties.
    if let Some(c) = &b.collaborazione {
        if let Ok(c) = Identificatore::parse(c) {
            let owner_ok = [&b.mittente, &b.destinatario]
                .into_iter()
                .flatten()
                .any(|p| p.nome == c.cod_amm);
            if !owner_ok {
                e.push(grave(Codice::COLLABORAZIONE, "Collaborazione"));
            }
        }
    }
    // Every hop of the ListaTrasmissioni names known parties.
    for t in b.trasmissioni.iter().flatten() {
        if reg.soggetto(&t.origine).is_none() {
            e.push(grave(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Origine/IdentificativoParte",
            ));
        }
        if reg.soggetto(&t.destinazione).is_none() {
            e.push(grave(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Destinazione/IdentificativoParte",
            ));
        }
    }

    scadenza(b, ctx, &mut e);

    if lg {
        linee_guida(b, ctx.qualificazione, &mut e);
    } else {
        // Riscontri and in-order delivery are not offered: said, not refused (busta-egov.md §3.3).
        if !e.iter().any(Eccezione::is_grave) {
            if b.sequenza.is_some() {
                e.push(Eccezione::info(
                    Codice::TRASPARENZA_NON_SUPPORTATA,
                    "Sequenza",
                ));
            }
            if b.riscontri.is_some() {
                e.push(Eccezione::info(Codice::LISTA_RISCONTRI, "ListaRiscontri"));
            }
        }
    }
    e
}

/// Expiry (EGOV_IT_301) and future dates (busta-egov.md §1.4).
fn scadenza(b: &Busta, ctx: &Contesto<'_>, e: &mut Vec<Eccezione>) {
    match b.scadenza {
        Some(s) => {
            if s < ctx.now {
                e.push(grave(Codice::SCADUTO, "Messaggio/Scadenza"));
            }
        }
        None => {
            let window = Duration::minutes(ctx.scadenza_minuti);
            if let Some(o) = b.ora_registrazione {
                if o.ora + window < ctx.now {
                    e.push(grave(Codice::SCADUTO, "Messaggio/OraRegistrazione"));
                    return;
                }
            }
            if let Some(id) = b.id.as_deref().and_then(|i| Identificatore::parse(i).ok()) {
                // The id carries its minute only: it is old once its whole minute is.
                if id.minute() + Duration::minutes(1) + window < ctx.now {
                    e.push(grave(Codice::SCADUTO, "Messaggio/Identificatore"));
                }
            }
        }
    }
    // Dates in the future beyond the tolerance, with the codes GovWay answers when its own
    // check is on: the OraRegistrazione (108), the Identificatore's date (110), a
    // Trasmissione's (116).
    if ctx.tolleranza_futuro_minuti > 0 {
        let limite = ctx.now + Duration::minutes(ctx.tolleranza_futuro_minuti);
        if let Some(o) = b.ora_registrazione {
            if o.ora > limite {
                e.push(grave(
                    Codice::ORA_REGISTRAZIONE,
                    "Messaggio/OraRegistrazione",
                ));
            }
        }
        if let Some(id) = b.id.as_deref().and_then(|i| Identificatore::parse(i).ok()) {
            if id.minute() > limite {
                e.push(grave(Codice::ID_NON_VALIDO, "Messaggio/Identificatore"));
            }
        }
        for t in b.trasmissioni.iter().flatten() {
            if t.ora.ora > limite {
                e.push(grave(
                    Codice::LISTA_TRASMISSIONI,
                    "ListaTrasmissioni/Trasmissione/OraRegistrazione",
                ));
                break;
            }
        }
    }
}

/// The DigitPA Linee Guida 1.1 profile: GRAVE deviations, and the INFO ones — beside GRAVE
/// ones only with `qualificazione`.
fn linee_guida(b: &Busta, qualificazione: bool, e: &mut Vec<Eccezione>) {
    let mut g = Vec::new();
    let spc = |p: &Parte| p.tipo == "SPC";
    if b.mittente.as_ref().is_some_and(|m| !spc(m)) {
        g.push(grave(Codice::MITTENTE, "Mittente/IdentificativoParte/tipo"));
    }
    if b.destinatario.as_ref().is_some_and(|d| !spc(d)) {
        g.push(grave(
            Codice::DESTINATARIO,
            "Destinatario/IdentificativoParte/tipo",
        ));
    }
    if b.servizio.as_ref().is_some_and(|s| s.tipo != "SPC") {
        g.push(grave(Codice::SERVIZIO, "Servizio/tipo"));
    }
    if b.azione.is_none() {
        g.push(grave(Codice::AZIONE, "Azione"));
    }
    if b.profilo.is_some_and(Profilo::is_async) && b.collaborazione.is_none() {
        g.push(grave(Codice::COLLABORAZIONE, "Collaborazione"));
    }
    if b.ora_registrazione.is_some_and(|o| o.tempo != Tempo::Spc) {
        g.push(grave(
            Codice::ORA_REGISTRAZIONE,
            "Messaggio/OraRegistrazione/tempo",
        ));
    }
    if b.conferma_ricezione == Some(true) {
        g.push(grave(
            Codice::PROFILO_TRASMISSIONE,
            "ProfiloTrasmissione/confermaRicezione",
        ));
    }
    if b.inoltro == Some(Inoltro::PiuDiUnaVolta) {
        g.push(grave(
            Codice::PROFILO_TRASMISSIONE,
            "ProfiloTrasmissione/inoltro",
        ));
    }
    for t in b.trasmissioni.iter().flatten() {
        if !spc(&t.origine) {
            g.push(grave(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Origine/IdentificativoParte/tipo",
            ));
        }
        if !spc(&t.destinazione) {
            g.push(grave(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Destinazione/IdentificativoParte/tipo",
            ));
        }
        if t.ora.tempo != Tempo::Spc {
            g.push(grave(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/OraRegistrazione/tempo",
            ));
        }
    }
    for r in b.riscontri.iter().flatten() {
        if r.ora.tempo != Tempo::Spc {
            g.push(grave(
                Codice::LISTA_RISCONTRI,
                "ListaRiscontri/Riscontro/OraRegistrazione/tempo",
            ));
        }
    }
    // Avoid saying twice what the registry checks already said.
    for x in g {
        if !e.contains(&x) {
            e.push(x);
        }
    }
    if !qualificazione && e.iter().any(Eccezione::is_grave) {
        return;
    }
    let info = |c, p: &str| Eccezione::info(c, p);
    if b.mittente.as_ref().is_some_and(|m| m.indirizzo.is_some()) {
        e.push(info(
            Codice::MITTENTE,
            "Mittente/IdentificativoParte/indirizzoTelematico",
        ));
    }
    if b.destinatario
        .as_ref()
        .is_some_and(|d| d.indirizzo.is_some())
    {
        e.push(info(
            Codice::DESTINATARIO,
            "Destinatario/IdentificativoParte/indirizzoTelematico",
        ));
    }
    if b.servizio_correlato.is_some() {
        e.push(info(
            Codice::PROFILO_COLLABORAZIONE,
            "ProfiloCollaborazione/servizioCorrelato",
        ));
    }
    if b.tipo_servizio_correlato.is_some() {
        e.push(info(
            Codice::PROFILO_COLLABORAZIONE,
            "ProfiloCollaborazione/tipo",
        ));
    }
    if b.collaborazione.is_some() && !b.profilo.is_some_and(Profilo::is_async) {
        e.push(info(Codice::COLLABORAZIONE, "Collaborazione"));
    }
    if b.sequenza.is_some() {
        e.push(info(Codice::TRASPARENZA_NON_SUPPORTATA, "Sequenza"));
    }
    if b.riscontri.is_some() {
        e.push(info(Codice::LISTA_RISCONTRI, "ListaRiscontri"));
    }
    for t in b.trasmissioni.iter().flatten() {
        if t.origine.indirizzo.is_some() {
            e.push(info(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Origine/IdentificativoParte/indirizzoTelematico",
            ));
        }
        if t.destinazione.indirizzo.is_some() {
            e.push(info(
                Codice::LISTA_TRASMISSIONI,
                "ListaTrasmissioni/Trasmissione/Destinazione/IdentificativoParte/indirizzoTelematico",
            ));
        }
    }
}

/// The answer a busta gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Giudizio {
    /// Not a SOAP 1.1 message, or no busta: a bare Fault EGOV_IT_001.
    Illeggibile(String),
    /// A structurally broken header, answered (by policy) with a bare Fault EGOV_IT_001.
    Fault001 {
        eccezioni: Vec<Eccezione>,
        reason: String,
    },
    /// An error busta with these eccezioni (at least one GRAVE).
    Errore { eccezioni: Vec<Eccezione> },
    /// Accepted; any eccezioni here are INFO or LIEVE and ride along in the answer.
    Accettata { eccezioni: Vec<Eccezione> },
}

/// How a partner is treated: from the registry when the sender is known, else the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Politica {
    pub profilo: ProfiloGestione,
    pub errori_struttura: ErroriStruttura,
    pub validazione_id_completa: bool,
}

pub fn politica(
    registry: &dyn Anagrafe,
    mittente: Option<&Parte>,
    profilo: ProfiloGestione,
    errori: ErroriStruttura,
) -> Politica {
    let partner = mittente.and_then(|m| registry.soggetto(m));
    Politica {
        profilo: partner.map_or(profilo, |p| p.profilo),
        errori_struttura: partner.and_then(|p| p.errori_struttura).unwrap_or(errori),
        validazione_id_completa: partner.is_none_or(|p| p.validazione_id_completa),
    }
}

/// The verdict on a busta that was found: syntax problems first (one stage only), then the
/// semantic checks.
pub fn giudica(t: &Trovata<'_>, ctx: &Contesto<'_>, errori: ErroriStruttura) -> Giudizio {
    // The qualification reads `indirizzoTelematico` as Linee Guida 1.1 says: whatever its
    // value (an xsd:anyURI such as `http://`), INFO 101/102 and the busta is processed; GovWay
    // refuses a value that is not a URL.
    let indirizzo_info = ctx.qualificazione && ctx.profilo == ProfiloGestione::LineeGuida11;
    let problemi: Vec<&super::reader::Problema> = t
        .problemi
        .iter()
        .filter(|p| {
            !(indirizzo_info
                && !p.strutturale
                && (p.eccezione.posizione.starts_with("Mittente/")
                    || p.eccezione.posizione.starts_with("Destinatario/"))
                && p.eccezione.posizione.ends_with("/indirizzoTelematico"))
        })
        .collect();
    if !problemi.is_empty() {
        let mut eccezioni: Vec<Eccezione> = problemi.iter().map(|p| p.eccezione.clone()).collect();
        let strutturale = problemi.iter().any(|p| p.strutturale);
        if errori == ErroriStruttura::Fault && strutturale {
            return Giudizio::Fault001 {
                eccezioni,
                reason: "struttura dell'intestazione non corretta".into(),
            };
        }
        // The qualification's rule: after value errors (the header read whole), what the
        // registry, the clock and the profile say joins them, but for a code the reader gave.
        if ctx.qualificazione && !strutturale {
            let dal_lettore: Vec<Codice> = eccezioni.iter().map(|e| e.codice).collect();
            eccezioni.extend(
                valida(&t.busta, ctx)
                    .into_iter()
                    .filter(|x| !dal_lettore.contains(&x.codice)),
            );
        }
        return Giudizio::Errore { eccezioni };
    }
    if errori == ErroriStruttura::Fault && t.diagnostica.iter().any(|p| p.strutturale) {
        return Giudizio::Fault001 {
            eccezioni: t.diagnostica.iter().map(|p| p.eccezione.clone()).collect(),
            reason: "struttura della ListaEccezioni non corretta".into(),
        };
    }
    let eccezioni = valida(&t.busta, ctx);
    if eccezioni.iter().any(Eccezione::is_grave) {
        Giudizio::Errore { eccezioni }
    } else {
        Giudizio::Accettata { eccezioni }
    }
}

/// Settings that [`giudica_messaggio`] needs besides the registry.
pub struct Regole {
    pub profilo: ProfiloGestione,
    pub errori_struttura: ErroriStruttura,
    pub scadenza_minuti: i64,
    pub tolleranza_futuro_minuti: i64,
    pub qualificazione: bool,
}

/// The whole verdict on a message's bytes, as the porta applicativa would give it (without the
/// duplicate filter, which needs the store).
pub fn giudica_messaggio(
    bytes: &[u8],
    registry: &dyn Anagrafe,
    locale: &(dyn Fn(&Parte) -> bool + Sync),
    regole: &Regole,
    now: NaiveDateTime,
    limits: Limits,
) -> Giudizio {
    let env = match Envelope::parse(bytes, limits) {
        Ok(env) => env,
        Err(e) => return Giudizio::Illeggibile(e.to_string()),
    };
    let t = match reader::leggi(&env.header_blocks) {
        Lettura::Assente => return Giudizio::Illeggibile("busta e-Gov assente".into()),
        Lettura::Trovata(t) => t,
    };
    let pol = politica(
        registry,
        t.busta.mittente.as_ref(),
        regole.profilo,
        regole.errori_struttura,
    );
    let ctx = Contesto {
        registry,
        locale,
        profilo: pol.profilo,
        now,
        scadenza_minuti: regole.scadenza_minuti,
        tolleranza_futuro_minuti: regole.tolleranza_futuro_minuti,
        validazione_id_completa: pol.validazione_id_completa,
        qualificazione: regole.qualificazione,
    };
    giudica(&t, &ctx, pol.errori_struttura)
}
