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
