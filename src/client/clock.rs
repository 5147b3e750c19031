//! The wall clock as the journal, the deadline and the reaper count it:
//! Unix time in seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current Unix time in seconds (0 for a clock set before 1970).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
