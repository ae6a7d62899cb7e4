//! Percettori (document §3): INPS sends the CVs of income-support recipients to the NCN, which
//! marks them, fills the missing qualifica from the worker's last employment record, and routes
//! them to the region of the worker's domicile. The last-employment table is imported with
//! `pdd import ultimi-rapporti FILE.csv`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::modulo::model::candidatura::{Candidatura, EsperienzeLavorative};

/// A worker's last employment record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rapporto {
    /// ISTAT profession code (CP2001: `n.n.n.n.n`, or the 6-segment form of Rev.038).
    pub qualifica: String,
    pub dal: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al: Option<NaiveDate>,
}

/// One line of the import file: `codice_fiscale,qualifica,data_inizio[,data_fine]` (dates
/// `yyyy-MM-dd`). The codice fiscale is checked (check letter, date, place).
pub fn riga(line: &str) -> Result<(String, Rapporto), String> {
    let f = crate::modulo::tabelle::csv_line(line.trim_end_matches(['\r', '\n']));
    if !(3..=4).contains(&f.len()) {
        return Err(format!(
            "{} campi: attesi codice_fiscale,qualifica,data_inizio[,data_fine]",
            f.len()
        ));
    }
    let cf = f[0].trim().to_ascii_uppercase();
    crate::modulo::cf::verifica(&cf).map_err(|e| format!("codice fiscale '{cf}': {e}"))?;
    let qualifica = f[1].trim().to_string();
    let segmenti = qualifica.split('.').count();
    if !(5..=6).contains(&segmenti)
        || !qualifica
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "qualifica '{qualifica}': attesa una professione ISTAT (n.n.n.n.n o n.n.n.n.n.n)"
        ));
    }
    let data = |s: &str, nome: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{nome} '{}': attesa yyyy-MM-dd", s.trim()))
    };
    let dal = data(&f[1 + 1], "data_inizio")?;
    let al = match f.get(3).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(s) => Some(data(s, "data_fine")?),
        None => None,
    };
    if al.is_some_and(|a| a < dal) {
        return Err("data_fine precede data_inizio".into());
    }
    Ok((cf, Rapporto { qualifica, dal, al }))
}

/// Whether a line is the header of the file.
pub fn intestazione(line: &str) -> bool {
    line.trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .starts_with("codice_fiscale")
}

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
        Some(e) => e.qualificasvolta = Some(r.qualifica.clone()),
        None => esperienze.push(EsperienzeLavorative {
            qualificasvolta: Some(r.qualifica.clone()),
            datainizio: Some(r.dal.to_string()),
            datafine: r.al.map(|d| d.to_string()),
            ..Default::default()
        }),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_explains_bad_ones() {
        let (cf, r) = riga("rssmra80a01h501u,5.1.2.2.0,2019-03-01,2026-06-30").unwrap();
        assert_eq!(cf, "RSSMRA80A01H501U");
        assert_eq!(r.qualifica, "5.1.2.2.0");
        assert_eq!(r.al, NaiveDate::from_ymd_opt(2026, 6, 30));
        let (_, r) = riga("RSSMRA80A01H501U,5.1.2.2.0.1,2019-03-01").unwrap();
        assert_eq!(r.al, None);
        for (line, part) in [
            ("RSSMRA80A01H501A,5.1.2.2.0,2019-03-01", "codice fiscale"),
            ("RSSMRA80A01H501U,cuoco,2019-03-01", "qualifica"),
            ("RSSMRA80A01H501U,5.1.2.2.0,01/03/2019", "data_inizio"),
            (
                "RSSMRA80A01H501U,5.1.2.2.0,2019-03-01,2018-01-01",
                "precede",
            ),
            ("RSSMRA80A01H501U", "campi"),
        ] {
            let e = riga(line).unwrap_err();
            assert!(e.contains(part), "{line}: {e}");
        }
        assert!(intestazione(
            "codice_fiscale,qualifica,data_inizio,data_fine"
        ));
        assert!(!intestazione("RSSMRA80A01H501U,5.1.2.2.0,2019-03-01"));
    }

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
