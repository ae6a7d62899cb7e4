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
