//! Care of the store: backup, statistics, a full check, retention. `pdd store …` drives these,
//! on the store itself or, while a gateway holds it, through the gateway's loopback admin
//! endpoints (`/admin/store/…`).
//!
//! # What a backup holds
//!
//! A backup is a new store (a directory `pdd --data DIR` opens as it is) written by copying the
//! live store tree by tree, plus `manifest.json` (written last: a directory without it is not a
//! finished backup). The gateway keeps serving while it is taken. The copy is not one
//! point-in-time snapshot; what it guarantees is this:
//!
//! **Every exchange acknowledged before the backup began is in it**, with its raw request and
//! response, its Identificatore in the duplicate filter (settled, so a replay is refused with
//! `EGOV_IT_110`), its entries in the ids index, and what it caused: its stored modulo and,
//! at the NCN, its forwards in the outbox (or their later state: delivered ones are gone from
//! the outbox, as in the live store). Why:
//! - an exchange is answered only after all of these were written (and flushed): they are in
//!   the live trees before the backup starts, and the copy reads each tree after that;
//! - exchange records, raw pieces and ids entries are never rewritten; only retention removes
//!   them, and retention and backup exclude each other (one lock), so the copy sees them;
//! - duplicate-filter entries, moduli and outbox entries can change after the exchange (a
//!   repeat counted, a rettifica, a delivery): the copy holds the state at the moment its tree
//!   was read, which is the exchange's own state or a later one.
//!
//! **Exchanges in flight during the copy may be partly present.** The trees are read in the
//! reverse of the order an exchange writes them, so that whatever is in the copy is backed by
//! what the exchange wrote before it: duplicate filter first, then the ids index, exchange
//! records, raw pieces, moduli, the outbox and the other network trees, partners, and the
//! Identificatore counters last. Hence, in the copy:
//! - a settled duplicate-filter entry implies its exchange record, raw messages and effects;
//! - an ids entry implies its exchange record, and a record implies all its raw pieces;
//! - a stored modulo implies its forwards (unless delivered meanwhile);
//! - a claim still in flight (not settled) is not copied, and a restored store, like any store
//!   at open, drops such claims anyway: the sender's retry is processed again. If the copy
//!   caught that exchange's modulo, the retry finds the identical document and changes nothing;
//!   if it caught only its forwards, they are delivered, and the receivers' duplicate filters
//!   and "identical document" rule absorb the second forward made by the retry;
//! - raw pieces of an exchange whose record was not yet written are orphans: never read, and
//!   removed by the next purge;
//! - on sled, the records and moduli the trees point to lie in the log's segment files, which
//!   are copied after every tree: whatever a copied tree points to was appended before the
//!   copy of the segments began, so it is in the copy.
//!
//! **Never reused after a restore.** The sequence numbers of exchanges and forwards come from
//! sled's id generator, which a copy does not carry: the copy records a floor (`seq_base`,
//! above every sequence number handed out when the copy ended), and every store also raises
//! its floor at open above the last record it holds. The Identificatore counters are copied
//! last, so they cover every id issued before the copy ended; `pdd store restore` merges the
//! counters of the store it replaces, or, when that store is gone, waits for the next minute
//! (counters are per minute) before handing the store over.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The file a backup directory holds beside the store.
pub const MANIFEST: &str = "manifest.json";

/// Format of [`Manifest`].
pub const FORMATO: u32 = 1;

/// What `manifest.json` says of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the copy began and ended (RFC 3339).
    pub started: String,
    pub finished: String,
    /// The pdd that wrote it.
    pub pdd_version: String,
    /// The store it copies.
    pub source: String,
    /// Entries copied, per tree.
    pub trees: BTreeMap<String, u64>,
    /// Duplicate-filter claims in flight at the copy, left out (see the module doc).
    pub skipped_in_flight: u64,
    /// Sequence numbers of the copy start above this.
    pub seq_base: u64,
    /// Bytes of the copy on disk.
    pub bytes_on_disk: u64,
}

/// One tree's entries and the bytes of its keys and values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStats {
    pub name: String,
    pub entries: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub path: String,
    pub trees: Vec<TreeStats>,
    /// What sled counts as its files' size.
    pub size_on_disk: u64,
    /// Every file under the store's directory.
    pub bytes_in_directory: u64,
    /// The segments of the sled engine's log (`registro/`), where its exchanges' records and
    /// moduli lie, and their bytes (none for the other engines).
    #[serde(default)]
    pub log_segments: u64,
    #[serde(default)]
    pub log_bytes: u64,
}

/// The result of a full check: `problems` empty means whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub problems: Vec<String>,
    /// Problems found, also beyond those listed (the list stops at [`MAX_PROBLEMI`]).
    pub problems_total: u64,
    /// What was read, by kind (exchanges, raw_pieces, orphan_pieces, ids, dup, dup_in_flight,
    /// moduli, outbox, …).
    pub counts: BTreeMap<String, u64>,
    pub millis: u64,
}

/// Problems listed by a check; more are counted only.
pub const MAX_PROBLEMI: usize = 1000;

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems_total == 0
    }
    pub(crate) fn problema(&mut self, p: String) {
        self.problems_total += 1;
        if self.problems.len() < MAX_PROBLEMI {
            self.problems.push(p);
        }
    }
    pub(crate) fn conta(&mut self, what: &str, n: u64) {
        *self.counts.entry(what.to_string()).or_default() += n;
    }
}

/// What retention removes; times in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeLimits {
    /// Exchanges received before this go, with their raw messages and index entries, oldest
    /// first in sequence order up to the first one received inside the window; None keeps them
    /// all.
    pub exchanges_before_ms: Option<i64>,
    /// Settled duplicate-filter entries first seen before this go, once their busta expired
    /// before `expired_before_ms`; None keeps them all.
    pub dup_before_ms: Option<i64>,
    pub expired_before_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    pub exchanges: u64,
    pub raw_pieces: u64,
    pub ids: u64,
    pub dup: u64,
    /// Diagnostic messages older than the exchanges' retention.
    #[serde(default)]
    pub diagnostici: u64,
    /// Pieces of large moduli no longer referenced (earlier versions of rewritten moduli).
    #[serde(default)]
    pub moduli_pieces: u64,
    /// Segments of the sled engine's log removed: no record or modulo was left in them.
    #[serde(default)]
    pub log_segments: u64,
    /// Why the exchanges' purge stopped early (an unreadable record), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl PurgeReport {
    pub fn removed(&self) -> u64 {
        self.exchanges
            + self.raw_pieces
            + self.ids
            + self.dup
            + self.diagnostici
            + self.moduli_pieces
            + self.log_segments
    }
}
