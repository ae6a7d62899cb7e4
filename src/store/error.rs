//! The store's errors, by what a caller can do about them: another process holds the store,
//! the disk is full, the engine failed on I/O, a record does not decode, a write conflicted.

use std::sync::Arc;

/// An error of the store. Callers match on the variant, never on the text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store (sled admits one); `pdd` commands then ask the gateway
    /// that holds it.
    #[error("store: {path} is in use by another process")]
    Locked { path: String },
    /// No space left on the device.
    #[error("store: no space left on the device ({0})")]
    StorageFull(Arc<std::io::Error>),
    /// The engine failed on I/O (`what` it was doing).
    #[error("store: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A record that does not decode, or that contradicts another.
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    /// A write lost a race it cannot retry (a transaction conflict).
    #[error("store: conflict: {0}")]
    Conflict(String),
    /// The Identificatore counter of a minute has no number left.
    #[error("store: the Identificatore counter {0} is exhausted")]
    Exhausted(String),
    /// The engine does not offer this operation (e.g. a backup of the in-memory engine).
    #[error("store: this store does not support {0}")]
    Unsupported(&'static str),
    /// An operation refused as asked (a backup into a directory that is not empty).
    #[error("store: {0}")]
    Invalid(String),
    /// The store's database cannot be reached now (down, restarting, no connection free in
    /// time): the operation may succeed later, nothing was written.
    #[error("store: the database is unavailable: {0}")]
    Unavailable(String),
    /// The store is closing (the gateway is stopping).
    #[error("store: closing")]
    Closed,
    /// An engine failure that is none of the above (the engine's own words).
    #[error("store: {0}")]
    Engine(String),
}

impl StoreError {
    /// An I/O error while doing `what`; a full disk is named as such.
    pub fn io(what: impl Into<String>, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::StorageFull(Arc::new(e));
        }
        StoreError::Io {
            what: what.into(),
            source: Arc::new(e),
        }
    }

    pub fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
