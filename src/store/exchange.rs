//! The exchange record: a request and its answer, with what the gateway made of them.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::egov::Eccezione;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received on the porta applicativa.
    In,
    /// Sent by the porta delegata.
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Processed; a normal answer (possibly with INFO eccezioni).
    Ok,
    /// Refused with an error busta (validation).
    ErroreBusta,
    /// Refused with a bare SOAP Fault (no busta could be read).
    Fault,
    /// Accepted but processing failed (EGOV_IT_300).
    ErroreProcessamento,
    /// A repeated Identificatore, refused (sync) or absorbed (oneway).
    Duplicato,
    /// Sent by the porta delegata, and its answer never came (the partner died, the
    /// connection broke, the time ran out): the partner may or may not have processed it. The
    /// local system was told EGOV_IT_300 and resends; an identical resend is answered OK.
    Sconosciuto,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ErroreBusta => "errore_busta",
            Outcome::Fault => "fault",
            Outcome::ErroreProcessamento => "errore_processamento",
            Outcome::Duplicato => "duplicato",
            Outcome::Sconosciuto => "sconosciuto",
        }
    }
}

/// One exchange: a request and its answer, with what the gateway made of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: u64,
    pub direction: Direction,
    /// When the request arrived (the time ranges of `pdd trace export` are indexed on it).
    #[serde(with = "crate::clock::ora")]
    pub received_at: DateTime<FixedOffset>,
    /// When it was answered; None until then.
    #[serde(with = "crate::clock::ora_opzionale")]
    pub answered_at: Option<DateTime<FixedOffset>>,
    pub request_id: Option<String>,
    pub response_id: Option<String>,
    pub mittente: Option<String>,
    pub destinatario: Option<String>,
    pub servizio: Option<String>,
    pub azione: Option<String>,
    pub profilo: Option<String>,
    /// The conversation (Collaborazione) of an asynchronous exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collaborazione: Option<String>,
    pub outcome: Outcome,
    pub http_status: u16,
    #[serde(default)]
    pub eccezioni: Vec<Eccezione>,
    /// A short human explanation (fault string, service result, error).
    #[serde(default)]
    pub note: Option<String>,
    /// The peer (remote address, or the partner URL for outgoing exchanges).
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(skip)]
    pub request: Vec<u8>,
    #[serde(skip)]
    pub response: Vec<u8>,
}

impl Exchange {
    /// A new exchange as first recorded: nothing known of it yet but when it arrived and
    /// which way; a Fault until it is answered otherwise.
    pub fn nuovo(seq: u64, direction: Direction, received_at: DateTime<FixedOffset>) -> Exchange {
        Exchange {
            seq,
            direction,
            received_at,
            answered_at: None,
            request_id: None,
            response_id: None,
            mittente: None,
            destinatario: None,
            servizio: None,
            azione: None,
            profilo: None,
            collaborazione: None,
            outcome: Outcome::Fault,
            http_status: 500,
            eccezioni: Vec::new(),
            note: None,
            peer: None,
            request: Vec::new(),
            response: Vec::new(),
        }
    }

    /// When it arrived, in ms since the epoch.
    pub fn received_ms(&self) -> i64 {
        self.received_at.timestamp_millis()
    }

    /// JSON with the raw request and response as text (for `pdd trace show --format json` and
    /// the admin endpoint).
    pub fn to_json_full(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["request"] =
            serde_json::Value::String(String::from_utf8_lossy(&self.request).into_owned());
        v["response"] =
            serde_json::Value::String(String::from_utf8_lossy(&self.response).into_owned());
        v
    }

    /// The inverse of [`Exchange::to_json_full`].
    pub fn from_json_full(v: &serde_json::Value) -> Option<Exchange> {
        let mut e: Exchange = serde_json::from_value(v.clone()).ok()?;
        let testo = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
        e.request = testo("request").as_bytes().to_vec();
        e.response = testo("response").as_bytes().to_vec();
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_the_earlier_layout_read_and_write_alike() {
        // As an earlier version stored it: times as text, an unanswered one empty.
        let json = r#"{"seq":7,"direction":"in","received_at":"2026-11-27T08:00:01.400+01:00","answered_at":"","request_id":"A","response_id":null,"mittente":null,"destinatario":null,"servizio":null,"azione":null,"profilo":null,"outcome":"fault","http_status":500,"eccezioni":[],"note":null,"peer":null}"#;
        let e: Exchange = serde_json::from_str(json).unwrap();
        assert_eq!(e.received_ms(), 1_795_762_801_400);
        assert_eq!(e.answered_at, None);
        assert_eq!(serde_json::to_string(&e).unwrap(), json);
        let mut e2 = e.clone();
        e2.answered_at = Some(e.received_at + chrono::Duration::milliseconds(5));
        let v = serde_json::to_value(&e2).unwrap();
        assert_eq!(v["answered_at"], "2026-11-27T08:00:01.405+01:00");
        assert_eq!(Exchange::from_json_full(&e2.to_json_full()).unwrap(), e2);
    }
}
