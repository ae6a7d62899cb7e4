//! The register's rules for a modulo this node's own local systems publish (document §2.2,
//! §2.3): the intermediary it names must be accredited here; its DatiSistema are filled from
//! the data communicated at accreditation; `codiceoffertaintermediario` is an agenzia per il
//! lavoro's alone. Pure: the caller looks the intermediary up ([`chi`]) and writes the result.

use crate::modulo::intermediario::{Intermediario, TipoIntermediario};
use crate::modulo::model::Testo;
use crate::modulo::{problema_regola, Modulo, Problema, Versione};

/// How a modulo names its intermediary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chi {
    /// By codice fiscale (the register's key).
    CodiceFiscale(String),
    /// By its code in the network only.
    Codice(String),
    /// By name only: the register cannot tell who it is.
    Ignoto,
}

fn pieno(v: &Option<Testo>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Who the modulo's intermediary is; None when no intermediary inserted it.
pub fn chi(m: &Modulo) -> Option<Chi> {
    let (codice, cf) = match m {
        Modulo::Candidatura(c) => (
            &c.dati_sistema.idintermediario,
            &c.dati_sistema.codicefiscaleintermediario,
        ),
        Modulo::Vacancy(v) => (
            &v.dati_sistema.intermediario,
            &v.dati_sistema.codicefiscaleintermediario,
        ),
        Modulo::Messaggio(_) => return None,
    };
    if !super::intermediato(m) {
        return None;
    }
    Some(match (pieno(cf), pieno(codice)) {
        (Some(cf), _) => Chi::CodiceFiscale(cf.to_ascii_uppercase()),
        (None, Some(c)) => Chi::Codice(c),
        (None, None) => Chi::Ignoto,
    })
}

/// The DatiSistema fields the register fills, as the two kinds name them.
struct Campi<'a> {
    codice: (&'static str, &'a mut Option<Testo>),
    cf: &'a mut Option<Testo>,
    denominazione: &'a mut Option<Testo>,
    indirizzo: &'a mut Option<Testo>,
    comune: &'a mut Option<Testo>,
    cap: &'a mut Option<Testo>,
    telefono: &'a mut Option<Testo>,
    fax: &'a mut Option<Testo>,
    email: &'a mut Option<Testo>,
}

fn campi(m: &mut Modulo) -> Option<Campi<'_>> {
    macro_rules! campi {
        ($ds:expr, $codice:ident) => {
            Campi {
                codice: (stringify!($codice), &mut $ds.$codice),
                cf: &mut $ds.codicefiscaleintermediario,
                denominazione: &mut $ds.denominazioneintermediario,
                indirizzo: &mut $ds.indirizzo,
                comune: &mut $ds.idcomune,
                cap: &mut $ds.cap,
                telefono: &mut $ds.telefono,
                fax: &mut $ds.fax,
                email: &mut $ds.email,
            }
        };
    }
    match m {
        Modulo::Candidatura(c) => Some(campi!(c.dati_sistema, idintermediario)),
        Modulo::Vacancy(v) => Some(campi!(v.dati_sistema, intermediario)),
        Modulo::Messaggio(_) => None,
    }
}

/// Judges a modulo against the register and fills its intermediary's data: the fields written
/// (empty: nothing changed), or the problem that refuses it. `trovato` is the register's entry
/// for [`chi`] (None: not in the register). The accreditation data replace what the modulo
/// says (the system compiles them, §2.2); the e-mail, the sender's own, is filled only when
/// missing. `versione`: the modulo's; under 2.0 the schema makes `codiceoffertaintermediario`
/// mandatory for every vacancy, so it is refused from a non-agenzia only from Rev.038 on.
pub fn applica(
    m: &mut Modulo,
    versione: Option<Versione>,
    trovato: Option<&Intermediario>,
) -> Result<Vec<&'static str>, Problema> {
    let radice = m.tipo().radice();
    let ds = |campo: &str| format!("{radice}/DatiSistema/{campo}");
    let codice_offerta = match &*m {
        Modulo::Vacancy(v) if versione.is_some_and(Versione::dal_2012) => {
            pieno(&v.dati_sistema.codiceoffertaintermediario)
        }
        _ => None,
    };
    let offerta_rifiutata = |perche: String| {
        Err(problema_regola(
            ds("codiceoffertaintermediario"),
            "CODICE_OFFERTA_INTERMEDIARIO",
            format!(
                "codiceoffertaintermediario '{}' è compilato solo da un'agenzia per il lavoro (con il codice agenzia): {perche}",
                codice_offerta.as_deref().unwrap_or("")
            ),
        ))
    };
    let i = match (chi(m), trovato) {
        (None, _) => {
            return match codice_offerta {
                Some(_) => offerta_rifiutata("la vacancy non ha intermediario".into()),
                None => Ok(Vec::new()),
            }
        }
        (Some(Chi::Ignoto), _) => {
            return Err(problema_regola(
                ds("codicefiscaleintermediario"),
                "INTERMEDIARIO_SCONOSCIUTO",
                "l'intermediario è indicato senza codice fiscale: il registro degli intermediari accreditati lo riconosce da quello",
            ))
        }
        (Some(chi), None) => {
            let (campo, chi) = match chi {
                Chi::CodiceFiscale(cf) => ("codicefiscaleintermediario", format!("con codice fiscale {cf}")),
                Chi::Codice(c) => (
                    if radice == "Vacancy" { "intermediario" } else { "idintermediario" },
                    format!("con codice {c}"),
                ),
                Chi::Ignoto => unreachable!("handled above"),
            };
            return Err(problema_regola(
                ds(campo),
                "INTERMEDIARIO_SCONOSCIUTO",
                format!("l'intermediario {chi} non è accreditato presso questo nodo (pdd intermediari list)"),
            ));
        }
        (Some(_), Some(i)) => i,
    };
    if codice_offerta.is_some() && i.tipo != TipoIntermediario::Agenzia {
        return offerta_rifiutata(format!(
            "{} è registrato come {}",
            i.denominazione,
            i.tipo.as_str()
        ));
    }
    let Some(c) = campi(m) else {
        return Ok(Vec::new());
    };
    let mut scritti = Vec::new();
    let mut metti = |nome: &'static str, campo: &mut Option<Testo>, valore: &Option<String>| {
        if let Some(v) = valore {
            if campo.as_deref().map(str::trim) != Some(v.as_str()) {
                *campo = Some(Testo::from(v.as_str()));
                scritti.push(nome);
            }
        }
    };
    metti(c.codice.0, c.codice.1, &i.codice);
    metti(
        "codicefiscaleintermediario",
        c.cf,
        &Some(i.codice_fiscale.clone()),
    );
    metti(
        "denominazioneintermediario",
        c.denominazione,
        &Some(i.denominazione.clone()),
    );
    metti("indirizzo", c.indirizzo, &i.indirizzo);
    metti("idcomune", c.comune, &i.comune);
    metti("cap", c.cap, &i.cap);
    metti("telefono", c.telefono, &i.telefono);
    metti("fax", c.fax, &i.fax);
    if pieno(c.email).is_none() {
        metti("email", c.email, &i.email);
    }
    Ok(scritti)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modulo::intermediario::Intermediario;

    fn vacancy(f: impl FnOnce(&mut crate::modulo::model::vacancy::DatiSistema)) -> Modulo {
        let xml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/moduli/vacancy-rev038.xml"
        ))
        .unwrap();
        let root =
            crate::xml::parse_document(xml.as_bytes(), crate::xml::Limits::default()).unwrap();
        let mut m = Modulo::leggi(&root).unwrap();
        if let Modulo::Vacancy(v) = &mut m {
            let d = &mut v.dati_sistema;
            d.intermediario = None;
            d.codicefiscaleintermediario = None;
            d.denominazioneintermediario = None;
            d.codiceoffertaintermediario = None;
            f(d);
        }
        m
    }

    fn agenzia(tipo: TipoIntermediario) -> Intermediario {
        Intermediario {
            codice_fiscale: "80213330584".into(),
            denominazione: "Agenzia Esempio".into(),
            tipo,
            codice: Some("AG0042".into()),
            indirizzo: Some("Via Roma 1".into()),
            comune: Some("A944".into()),
            cap: Some("40121".into()),
            telefono: Some("051000000".into()),
            fax: None,
            email: Some("sede@agenzia.example".into()),
        }
    }

    fn codici(r: Result<Vec<&'static str>, Problema>) -> String {
        r.map_err(|p| p.code).unwrap_err()
    }

    #[test]
    fn the_register_fills_the_data_of_an_accredited_intermediary() {
        let mut m = vacancy(|d| {
            d.codicefiscaleintermediario = Some("80213330584".into());
            d.denominazioneintermediario = Some("nome scritto a mano".into());
            d.email = Some("ufficio@agenzia.example".into());
            d.codiceoffertaintermediario = Some("OFF-1".into());
        });
        let i = agenzia(TipoIntermediario::Agenzia);
        let scritti = applica(&mut m, Some(Versione::Rev038), Some(&i)).unwrap();
        assert!(scritti.contains(&"denominazioneintermediario"));
        assert!(scritti.contains(&"intermediario"));
        assert!(
            !scritti.contains(&"email"),
            "the sender's own e-mail is kept"
        );
        let Modulo::Vacancy(v) = &m else { panic!() };
        let d = &v.dati_sistema;
        assert_eq!(
            d.denominazioneintermediario.as_deref(),
            Some("Agenzia Esempio")
        );
        assert_eq!(d.intermediario.as_deref(), Some("AG0042"));
        assert_eq!(d.idcomune.as_deref(), Some("A944"));
        assert_eq!(d.email.as_deref(), Some("ufficio@agenzia.example"));
        // Filled once, nothing more to write.
        assert!(applica(&mut m, Some(Versione::Rev038), Some(&i))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unknown_intermediaries_and_codes_of_non_agencies_are_refused() {
        let mut m = vacancy(|d| d.codicefiscaleintermediario = Some("80213330584".into()));
        assert_eq!(chi(&m), Some(Chi::CodiceFiscale("80213330584".into())));
        assert_eq!(
            codici(applica(&mut m, Some(Versione::Rev038), None)),
            "INTERMEDIARIO_SCONOSCIUTO"
        );
        let mut m = vacancy(|d| d.denominazioneintermediario = Some("CPI".into()));
        assert_eq!(chi(&m), Some(Chi::Ignoto));
        assert_eq!(
            codici(applica(&mut m, Some(Versione::Rev038), None)),
            "INTERMEDIARIO_SCONOSCIUTO"
        );
        let cpi = agenzia(TipoIntermediario::Cpi);
        let mut m = vacancy(|d| {
            d.codicefiscaleintermediario = Some("80213330584".into());
            d.codiceoffertaintermediario = Some("OFF-1".into());
        });
        let e = applica(&mut m, Some(Versione::Rev038), Some(&cpi)).unwrap_err();
        assert_eq!(e.code, "CODICE_OFFERTA_INTERMEDIARIO");
        assert!(e.message.contains("registrato come cpi"), "{}", e.message);
        // Without an intermediary at all.
        let mut m = vacancy(|d| d.codiceoffertaintermediario = Some("OFF-1".into()));
        assert_eq!(chi(&m), None);
        assert_eq!(
            codici(applica(&mut m, Some(Versione::Rev038), None)),
            "CODICE_OFFERTA_INTERMEDIARIO"
        );
        // Under 2.0 the schema demands it of every vacancy.
        assert!(applica(&mut m, Some(Versione::V2_0), None)
            .unwrap()
            .is_empty());
        // A modulo without intermediary and without the code: nothing to do.
        let mut m = vacancy(|_| {});
        assert!(applica(&mut m, Some(Versione::Rev038), None)
            .unwrap()
            .is_empty());
    }
}
