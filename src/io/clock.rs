//! The wall clock handle. Logic that needs *elapsed* time uses `tokio::time::Instant`
//! (simulated under madsim); logic that needs *wall* time (record timestamps, retention
//! by time, `segment.ms`) asks a `Clock`, so the simulator can skew it per node and unit
//! tests can set it by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Wall-clock milliseconds since the Unix epoch, as Kafka timestamps are.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
    skew_ms: Arc<AtomicI64>,
}

#[derive(Clone, Debug)]
enum Source {
    /// The OS clock (deterministic under madsim, which intercepts it).
    System,
    /// A clock that only moves when told to.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The OS wall clock (see `io::real::system_time_ms`).
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
            skew_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// A clock that reads `start_ms` until advanced with `advance_ms`/`set_ms`.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicI64::new(start_ms))),
            skew_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Current wall time in ms since the epoch, including any injected skew.
    pub fn now_ms(&self) -> i64 {
        let base = match &self.source {
            Source::System => super::real::system_time_ms(),
            Source::Manual(ms) => ms.load(Ordering::SeqCst),
        };
        base.saturating_add(self.skew_ms.load(Ordering::SeqCst))
    }

    /// Shifts this clock (and every clone of it) by `skew_ms` relative to its source:
    /// the simulator's clock-skew fault.
    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::SeqCst);
    }

    /// Moves a manual clock forward. Panics on a system clock: that is a test bug.
    pub fn advance_ms(&self, delta_ms: i64) {
        match &self.source {
            Source::Manual(ms) => {
                ms.fetch_add(delta_ms, Ordering::SeqCst);
            }
            Source::System => panic!("advance_ms on the system clock"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_skew_applies_to_clones() {
        let clock = Clock::manual(1_000);
        let clone = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance_ms(5);
        assert_eq!(clone.now_ms(), 1_005);
        clone.set_skew_ms(-100);
        assert_eq!(clock.now_ms(), 905);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::system().now_ms() > 1_577_836_800_000);
    }
}
