//! The Identificatore `<CodAmm>_<CodPdD>_<NNNNNNN>_<yyyy-MM-dd>_<HH:mm>` (busta-egov.md §1.3).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identificatore {
    pub cod_amm: String,
    pub cod_pdd: String,
    pub progressivo: u32,
    pub data: NaiveDate,
    pub ora: u32,
    pub minuto: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("the identifier must have 5 parts separated by '_'")]
    Parts,
    #[error("the administration code is empty or not alphanumeric")]
    CodAmm,
    #[error("the porta code is empty or not alphanumeric")]
    CodPdd,
    #[error("the counter must be 7 digits")]
    Progressivo,
    #[error("the date must be yyyy-MM-dd and valid")]
    Data,
    #[error("the time must be HH:mm and valid")]
    Ora,
}

fn is_code(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

impl Identificatore {
    pub fn parse(s: &str) -> Result<Identificatore, IdError> {
        let parts: Vec<&str> = s.split('_').collect();
        if parts.len() != 5 {
            return Err(IdError::Parts);
        }
        if !is_code(parts[0]) {
            return Err(IdError::CodAmm);
        }
        if !is_code(parts[1]) {
            return Err(IdError::CodPdd);
        }
        let progressivo = digits(parts[2], 7).ok_or(IdError::Progressivo)?;
        let d: Vec<&str> = parts[3].split('-').collect();
        if d.len() != 3 {
            return Err(IdError::Data);
        }
        let (y, m, g) = (
            digits(d[0], 4).ok_or(IdError::Data)?,
            digits(d[1], 2).ok_or(IdError::Data)?,
            digits(d[2], 2).ok_or(IdError::Data)?,
        );
        if y > 2100 {
            return Err(IdError::Data);
        }
        // 29 February is accepted in any year, as GovWay does.
        let data = NaiveDate::from_ymd_opt(y as i32, m, g)
            .or_else(|| {
                (m == 2 && g == 29)
                    .then(|| NaiveDate::from_ymd_opt(y as i32, 2, 28))
                    .flatten()
            })
            .ok_or(IdError::Data)?;
        let (h, mi) = parts[4].split_once(':').ok_or(IdError::Ora)?;
        let ora = digits(h, 2).filter(|h| *h < 24).ok_or(IdError::Ora)?;
        let minuto = digits(mi, 2).filter(|m| *m < 60).ok_or(IdError::Ora)?;
        Ok(Identificatore {
            cod_amm: parts[0].to_string(),
            cod_pdd: parts[1].to_string(),
            progressivo,
            data,
            ora,
            minuto,
        })
    }

    /// The minute the identifier was issued in.
    pub fn minute(&self) -> NaiveDateTime {
        self.data
            .and_hms_opt(self.ora, self.minuto, 0)
            .unwrap_or_else(|| self.data.and_hms_opt(0, 0, 0).unwrap_or_default())
    }
}

/// Key of a minute, `yyyy-MM-dd_HH:mm`, as it appears in identifiers.
pub fn minute_key(t: NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}_{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// How many counter values a minute offers with a cluster node prefix of `prefix_digits` digits.
pub fn capacity(prefix_digits: usize) -> u32 {
    10u32.pow(7 - prefix_digits as u32) - 1
}

/// Formats an identifier. `counter` starts at 1; `node` is the optional numeric cluster prefix.
pub fn format(
    cod_amm: &str,
    cod_pdd: &str,
    node: Option<&str>,
    counter: u32,
    minute: NaiveDateTime,
) -> String {
    let prefix = node.unwrap_or("");
    let width = 7 - prefix.len();
    format!(
        "{cod_amm}_{cod_pdd}_{prefix}{counter:0width$}_{}",
        minute_key(minute)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn format_and_parse() {
        let id = format(
            "EMILIA",
            "EMILIASPCoopIT",
            None,
            42,
            at("2011-04-15 10:00:59"),
        );
        assert_eq!(id, "EMILIA_EMILIASPCoopIT_0000042_2011-04-15_10:00");
        let p = Identificatore::parse(&id).unwrap();
        assert_eq!(p.cod_amm, "EMILIA");
        assert_eq!(p.cod_pdd, "EMILIASPCoopIT");
        assert_eq!(p.progressivo, 42);
        assert_eq!(p.minute(), at("2011-04-15 10:00:00"));
        let clustered = format("A", "APdD", Some("12"), 7, at("2011-04-15 10:00:00"));
        assert_eq!(clustered, "A_APdD_1200007_2011-04-15_10:00");
        assert_eq!(capacity(2), 99_999);
    }

    #[test]
    fn rejects_malformed() {
        use IdError::*;
        let bad = [
            ("Errato", Parts),
            ("A_B_C_0000001_2005-11-10_11:35", Parts),
            ("A-x_B_0000001_2005-11-10_11:35", CodAmm),
            ("A_B_000001_2005-11-10_11:35", Progressivo),
            ("A_B_0000001_2005-13-10_11:35", Data),
            ("A_B_0000001_2101-01-10_11:35", Data),
            ("A_B_0000001_2005-04-31_11:35", Data),
            ("A_B_0000001_2005-11-10_24:35", Ora),
            ("A_B_0000001_2005-11-10_11:60", Ora),
            ("A_B_0000001_2005-11-10_1135", Ora),
        ];
        for (s, e) in bad {
            assert_eq!(Identificatore::parse(s), Err(e), "{s}");
        }
        assert!(Identificatore::parse("A_B_0000001_2005-02-29_11:35").is_ok());
    }
}
