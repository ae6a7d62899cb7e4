//! What a node keeps of the moduli it received: each modulo with its place in the lifecycle
//! (document §4: validity, rettifica, chiusura), the routes it took and who answers for it; and
//! the contacts (Messaggi) delivered here. The store persists them; `rete` decides them.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use super::scheda::Scheda;
use super::Tipo;
use crate::clock::ora;

/// Where a modulo is in its life (document §4: validity, rettifica, chiusura).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatoModulo {
    /// Published and current.
    Attivo,
    /// Closed by a chiusura (tipo 02).
    Chiuso,
    /// Replaced by a rettifica.
    Rettificato,
    /// Past its validity.
    Scaduto,
}

/// A stored ClicLavoro modulo, keyed by kind and code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModulo {
    pub kind: Tipo,
    pub code: String,
    pub versione: String,
    pub stato: StatoModulo,
    #[serde(with = "ora")]
    pub received_at: DateTime<FixedOffset>,
    #[serde(with = "ora")]
    pub updated_at: DateTime<FixedOffset>,
    pub request_id: Option<String>,
    pub mittente: Option<String>,
    /// The expiry applied on receipt: the modulo's own, or the maximum.
    pub scadenza: Option<NaiveDate>,
    /// For a rettifica or chiusura: the code of the original communication.
    pub precedente: Option<String>,
    /// On an original: the code of its current version (the last rettifica).
    pub attuale: Option<String>,
    /// The document as received. Left out of the JSON when empty: the sled store keeps it
    /// beside the record's JSON instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xml: String,
    /// The nodes it was forwarded to (`TIPO/NOME`), so that its rettifiche and chiusura follow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinazioni: Vec<String>,
    /// The node that answers for it (contacts go there): `TIPO/NOME`; none when it is ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titolare: Option<String>,
    /// What the read API publishes of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheda: Option<Scheda>,
}

/// A contact (Messaggio) delivered at this node for the party of one of its moduli.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contatto {
    pub codice: String,
    /// `03` contatto, `04` risposta.
    pub tipo: String,
    pub ricevuto: String,
    /// The modulo it is about.
    pub kind: Tipo,
    pub riferimento: String,
    /// Who wrote (the Mittente's interlocutore: name and e-mail).
    pub da: serde_json::Value,
    /// Whom it reaches (the worker or employer, or the intermediary).
    pub per: serde_json::Value,
    pub testo: String,
    /// The node it came from (`TIPO/NOME`).
    pub via: Option<String>,
}
