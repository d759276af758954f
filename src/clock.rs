//! Injectable time, so tests can move past expiry windows without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The one source of "now" for token and revocation logic.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Seconds added to the system time; only tests move it.
    offset: Arc<AtomicI64>,
    /// When set (not `i64::MIN`), time stands still at these epoch seconds (plus the
    /// offset): tests that need two things to happen "in the same second".
    frozen_at: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset: Arc::default(),
            frozen_at: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        let base = match self.frozen_at.load(Ordering::Relaxed) {
            i64::MIN => Utc::now(),
            secs => DateTime::from_timestamp(secs, 0).unwrap_or_else(Utc::now),
        };
        base + chrono::Duration::seconds(self.offset.load(Ordering::Relaxed))
    }

    /// Stops time at the current second (for every clone); `advance` still moves it.
    pub fn freeze(&self) {
        let now = Utc::now().timestamp();
        self.frozen_at.store(now, Ordering::Relaxed);
    }

    /// Now, in whole seconds since the epoch (the precision of Fernet timestamps).
    pub fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves this clock (and every clone of it) forward; for tests.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}
