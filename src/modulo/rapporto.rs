//! A worker's last employment record (rapporto di lavoro), as INPS and the Comunicazioni
//! Obbligatorie know it: the NCN completes a percettore's CV with its qualifica (document §3).
//! The table is imported with `pdd import ultimi-rapporti FILE.csv`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A worker's last employment record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rapporto {
    /// ISTAT profession code (CP2001: `n.n.n.n.n`, or the 6-segment form of Rev.038).
    pub qualifica: String,
    pub dal: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al: Option<NaiveDate>,
}

/// Why a line of the import file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RigaError {
    #[error("{0} campi: attesi codice_fiscale,qualifica,data_inizio[,data_fine]")]
    Campi(usize),
    #[error("codice fiscale '{cf}': {errore}")]
    CodiceFiscale { cf: String, errore: String },
    #[error("qualifica '{0}': attesa una professione ISTAT (n.n.n.n.n o n.n.n.n.n.n)")]
    Qualifica(String),
    #[error("{campo} '{valore}': attesa yyyy-MM-dd")]
    Data { campo: &'static str, valore: String },
    #[error("data_fine precede data_inizio")]
    Ordine,
}

/// One line of the import file: `codice_fiscale,qualifica,data_inizio[,data_fine]` (dates
/// `yyyy-MM-dd`). The codice fiscale is checked (check letter, date, place).
pub fn riga(line: &str) -> Result<(String, Rapporto), RigaError> {
    let f = super::tabelle::csv_line(line.trim_end_matches(['\r', '\n']));
    if !(3..=4).contains(&f.len()) {
        return Err(RigaError::Campi(f.len()));
    }
    let cf = f[0].trim().to_ascii_uppercase();
    super::cf::verifica(&cf).map_err(|e| RigaError::CodiceFiscale {
        cf: cf.clone(),
        errore: e.to_string(),
    })?;
    let qualifica = f[1].trim().to_string();
    let segmenti = qualifica.split('.').count();
    if !(5..=6).contains(&segmenti)
        || !qualifica
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(RigaError::Qualifica(qualifica));
    }
    let data = |s: &str, campo: &'static str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| RigaError::Data {
            campo,
            valore: s.trim().to_string(),
        })
    };
    let dal = data(&f[1 + 1], "data_inizio")?;
    let al = match f.get(3).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(s) => Some(data(s, "data_fine")?),
        None => None,
    };
    if al.is_some_and(|a| a < dal) {
        return Err(RigaError::Ordine);
    }
    Ok((cf, Rapporto { qualifica, dal, al }))
}

/// Whether a line is the header of the file.
pub fn intestazione(line: &str) -> bool {
    line.trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .starts_with("codice_fiscale")
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
            let e = riga(line).unwrap_err().to_string();
            assert!(e.contains(part), "{line}: {e}");
        }
        assert!(intestazione(
            "codice_fiscale,qualifica,data_inizio,data_fine"
        ));
        assert!(!intestazione("RSSMRA80A01H501U,5.1.2.2.0,2019-03-01"));
    }
}
