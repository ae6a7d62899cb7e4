//! Diagnostic messages (busta-egov.md §3.4, GovWay's msgDiagnostico): what a Porta di Dominio
//! did that an operator should see, each with a time, a severity on GovWay's scale, the
//! function that emitted it, a code (the EGOV_IT code when there is one), the exchange's
//! sequence number and Identificatore when it concerns one, and a message.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// GovWay's severity levels (`LogLevels`): 0 is the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severita {
    Fatal,
    ErrorProtocol,
    ErrorIntegration,
    InfoProtocol,
    InfoIntegration,
    DebugLow,
    DebugMedium,
    DebugHigh,
}

const TUTTE: [Severita; 8] = [
    Severita::Fatal,
    Severita::ErrorProtocol,
    Severita::ErrorIntegration,
    Severita::InfoProtocol,
    Severita::InfoIntegration,
    Severita::DebugLow,
    Severita::DebugMedium,
    Severita::DebugHigh,
];

impl Severita {
    /// 0 (fatal) … 7 (debugHigh).
    pub fn livello(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severita::Fatal => "fatal",
            Severita::ErrorProtocol => "errorProtocol",
            Severita::ErrorIntegration => "errorIntegration",
            Severita::InfoProtocol => "infoProtocol",
            Severita::InfoIntegration => "infoIntegration",
            Severita::DebugLow => "debugLow",
            Severita::DebugMedium => "debugMedium",
            Severita::DebugHigh => "debugHigh",
        }
    }

    /// A name (`errorProtocol`, `error_protocol`, `ERROR-PROTOCOL`: case, `_` and `-` do not
    /// matter) or a level 0–7.
    pub fn parse(s: &str) -> Option<Severita> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            return TUTTE.get(n).copied();
        }
        let norm = |x: &str| {
            x.chars()
                .filter(|c| *c != '_' && *c != '-')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let s = norm(s);
        TUTTE.into_iter().find(|l| norm(l.as_str()) == s)
    }
}

impl std::fmt::Display for Severita {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Severita {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severita {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severita::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown severity {s}")))
    }
}

/// One diagnostic message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostico {
    /// When (RFC 3339 with milliseconds in JSON); set when it is recorded.
    #[serde(with = "crate::clock::ora")]
    pub ora: DateTime<FixedOffset>,
    pub severita: Severita,
    /// GovWay's IdentificativoFunzione: `RicezioneBuste` (porta applicativa), `Imbustamento`,
    /// `InoltroBuste`, `SbustamentoRisposte` (porta delegata), `Outbox`, `Conservazione`,
    /// `Scadenze`, `Avvio`, `Store`.
    pub funzione: String,
    /// The EGOV_IT code, or one of pdd's (`PDD_…`).
    pub codice: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The Identificatore of the busta concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub messaggio: String,
}

impl Diagnostico {
    pub fn new(
        severita: Severita,
        funzione: &str,
        codice: impl Into<String>,
        messaggio: impl Into<String>,
    ) -> Diagnostico {
        Diagnostico {
            ora: DateTime::UNIX_EPOCH.fixed_offset(),
            severita,
            funzione: funzione.to_string(),
            codice: codice.into(),
            seq: None,
            id: None,
            messaggio: messaggio.into(),
        }
    }

    /// About an exchange (and its busta's Identificatore).
    pub fn scambio(mut self, seq: u64, id: Option<&str>) -> Diagnostico {
        self.seq = Some(seq);
        self.id = id.map(str::to_string);
        self
    }

    /// Its time in ms since the epoch.
    pub fn ms(&self) -> i64 {
        self.ora.timestamp_millis()
    }

    /// JSON with the numeric level beside the name.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["livello"] = self.severita.livello().into();
        v
    }
}

/// What `pdd diag list` selects: a time range (`dal` included, `al` excluded, ms since the
/// epoch), severities at or above `soglia` (as severe or more: fatal is 0), the last `limite`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filtro {
    pub dal: Option<i64>,
    pub al: Option<i64>,
    pub soglia: Option<Severita>,
    pub limite: Option<usize>,
}

impl Filtro {
    pub fn ammette(&self, d: &Diagnostico) -> bool {
        let t = d.ms();
        self.dal.is_none_or(|x| t >= x)
            && self.al.is_none_or(|x| t < x)
            && self.soglia.is_none_or(|s| d.severita <= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_or_number_and_order_by_severity() {
        assert_eq!(
            Severita::parse("errorProtocol"),
            Some(Severita::ErrorProtocol)
        );
        assert_eq!(
            Severita::parse("error_integration"),
            Some(Severita::ErrorIntegration)
        );
        assert_eq!(
            Severita::parse("INFO-PROTOCOL"),
            Some(Severita::InfoProtocol)
        );
        assert_eq!(Severita::parse("0"), Some(Severita::Fatal));
        assert_eq!(Severita::parse("7"), Some(Severita::DebugHigh));
        assert_eq!(Severita::parse("8"), None);
        assert_eq!(Severita::parse("grave"), None);
        assert!(Severita::Fatal < Severita::ErrorProtocol);
        assert_eq!(Severita::InfoIntegration.livello(), 4);
        for l in TUTTE {
            assert_eq!(Severita::parse(l.as_str()), Some(l));
            assert_eq!(Severita::parse(&l.livello().to_string()), Some(l));
        }
    }

    #[test]
    fn the_filter_selects_by_time_and_severity() {
        let mut d = Diagnostico::new(
            Severita::ErrorIntegration,
            "InoltroBuste",
            "EGOV_IT_300",
            "x",
        )
        .scambio(4, Some("ID"));
        d.ora = DateTime::parse_from_rfc3339("2026-11-27T08:00:00.000+01:00").unwrap();
        let t = d.ms();
        let f = |dal, al, soglia| Filtro {
            dal,
            al,
            soglia,
            limite: None,
        };
        assert!(f(None, None, None).ammette(&d));
        assert!(f(Some(t), Some(t + 1), Some(Severita::ErrorIntegration)).ammette(&d));
        assert!(f(None, None, Some(Severita::InfoProtocol)).ammette(&d));
        assert!(!f(None, None, Some(Severita::ErrorProtocol)).ammette(&d));
        assert!(!f(Some(t + 1), None, None).ammette(&d));
        assert!(!f(None, Some(t), None).ammette(&d));
        let j = d.json();
        assert_eq!(j["severita"], "errorIntegration");
        assert_eq!(j["livello"], 2);
        assert_eq!(j["seq"], 4);
        let back: Diagnostico = serde_json::from_value(j).unwrap();
        assert_eq!(back, d);
    }
}
