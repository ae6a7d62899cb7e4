//! Percettori (document §3): INPS sends the CVs of income-support recipients to the NCN, which
//! marks them, fills the missing qualifica from the worker's last employment record, and routes
//! them to the region of the worker's domicile. The last-employment table is imported with
//! `pdd import ultimi-rapporti FILE.csv`.

use crate::modulo::model::candidatura::{Candidatura, EsperienzeLavorative};
use crate::modulo::rapporto::Rapporto;

/// Marks a CV as a percettore's and, when no work experience carries a qualifica, fills it
/// from the last employment record: into the latest experience without one, else as a new
/// experience. `segmenti` is the number of segments the modulo's version wants in a profession
/// code; a record in the other form is not used. Returns whether the qualifica was filled.
pub fn completa(c: &mut Candidatura, rapporto: Option<&Rapporto>, segmenti: usize) -> bool {
    c.dati_sistema.percettore = Some("SI".into());
    let ha_qualifica = c.dati_curriculari.esperienze_lavorative.iter().any(|e| {
        e.qualificasvolta
            .as_deref()
            .is_some_and(|q| !q.trim().is_empty())
    });
    let Some(r) = rapporto.filter(|r| r.qualifica.split('.').count() == segmenti) else {
        return false;
    };
    if ha_qualifica {
        return false;
    }
    let esperienze = &mut c.dati_curriculari.esperienze_lavorative;
    // The latest experience by start date (none: append one for the record).
    let ultima = esperienze
        .iter_mut()
        .max_by_key(|e| e.datainizio.clone().unwrap_or_default());
    match ultima {
        Some(e) => e.qualificasvolta = Some(r.qualifica.as_str().into()),
        None => esperienze.push(EsperienzeLavorative {
            qualificasvolta: Some(r.qualifica.as_str().into()),
            datainizio: Some(r.dal.to_string().into()),
            datafine: r.al.map(|d| d.to_string().into()),
            ..Default::default()
        }),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn fills_the_qualifica_only_when_missing() {
        let r = Rapporto {
            qualifica: "5.1.2.2.0".into(),
            dal: NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(),
            al: None,
        };
        let mut c = Candidatura::default();
        assert!(completa(&mut c, Some(&r), 5));
        assert_eq!(c.dati_sistema.percettore.as_deref(), Some("SI"));
        assert_eq!(
            c.dati_curriculari.esperienze_lavorative[0]
                .qualificasvolta
                .as_deref(),
            Some("5.1.2.2.0")
        );
        // Already there: kept.
        assert!(!completa(&mut c, Some(&r), 5));
        assert_eq!(c.dati_curriculari.esperienze_lavorative.len(), 1);
        // The latest experience without a qualifica gets it.
        let mut c = Candidatura::default();
        for d in ["2010-01-01", "2018-05-01"] {
            c.dati_curriculari
                .esperienze_lavorative
                .push(EsperienzeLavorative {
                    datainizio: Some(d.into()),
                    ..Default::default()
                });
        }
        assert!(completa(&mut c, Some(&r), 5));
        let e = &c.dati_curriculari.esperienze_lavorative;
        assert_eq!(e[1].qualificasvolta.as_deref(), Some("5.1.2.2.0"));
        assert_eq!(e[0].qualificasvolta, None);
        // A code of the other version's form is not used; the flag is still set.
        let mut c = Candidatura::default();
        assert!(!completa(&mut c, Some(&r), 6));
        assert!(c.dati_curriculari.esperienze_lavorative.is_empty());
        assert_eq!(c.dati_sistema.percettore.as_deref(), Some("SI"));
    }
}
