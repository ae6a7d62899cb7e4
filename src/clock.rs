//! Time as a parameter: the gateway asks a [`Clock`], so tests can fix or move it.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, Local};

pub trait Clock: Send + Sync {
    /// Local wall time with its offset.
    fn now(&self) -> DateTime<FixedOffset>;
}

/// The operating system's clock, in the local time zone.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<FixedOffset> {
        Local::now().fixed_offset()
    }
}

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<DateTime<FixedOffset>>);

impl FixedClock {
    pub fn new(at: DateTime<FixedOffset>) -> FixedClock {
        FixedClock(Mutex::new(at))
    }
    pub fn set(&self, at: DateTime<FixedOffset>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The system clock moved by an offset that can be changed while running (for end-to-end
/// tests of expiry across processes: `PDD_TEST_CLOCK=1` enables `POST /admin/clock`).
#[derive(Default)]
pub struct OffsetClock(std::sync::atomic::AtomicI64);

impl OffsetClock {
    pub fn set_offset_secs(&self, secs: i64) {
        self.0.store(secs, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn offset_secs(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<FixedOffset> {
        Local::now().fixed_offset() + chrono::Duration::seconds(self.offset_secs())
    }
}

/// Times as RFC 3339 with milliseconds and the local offset (`2026-11-27T08:00:01.400+01:00`),
/// the form every stored record has.
pub mod ora {
    use chrono::{DateTime, FixedOffset, SecondsFormat};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn testo(t: &DateTime<FixedOffset>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, false)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&testo(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// An optional time: the empty string when absent (the shape of every stored record).
pub mod ora_opzionale {
    use chrono::{DateTime, FixedOffset};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        t: &Option<DateTime<FixedOffset>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.as_ref().map(super::ora::testo).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(&s)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}
