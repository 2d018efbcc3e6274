//! The event trace of a simulated run: an ordered list of (virtual time, node, event)
//! lines. Its hash identifies the run: the same seed and build must give the same hash,
//! and `MADSIM_TEST_CHECK_DETERMINISM` plus our own double runs compare them.

use std::sync::{Arc, Mutex};

/// One recorded event. Times are virtual milliseconds since the run started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    pub time_ms: u64,
    pub node: String,
    pub what: String,
}

/// A shared, append-only trace. Clones append to the same list.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace::default()
    }

    pub fn record(&self, time_ms: u64, node: &str, what: impl Into<String>) {
        let event = TraceEvent {
            time_ms,
            node: node.to_string(),
            what: what.into(),
        };
        self.events.lock().expect("trace lock poisoned").push(event);
    }

    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.lock().expect("trace lock poisoned").clone()
    }

    /// FNV-1a over every event's fields, in order: stable across processes and builds
    /// (unlike `DefaultHasher`, whose algorithm is unspecified).
    pub fn hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for event in self.events.lock().expect("trace lock poisoned").iter() {
            eat(&event.time_ms.to_le_bytes());
            eat(event.node.as_bytes());
            eat(&[0]);
            eat(event.what.as_bytes());
            eat(&[0]);
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field_and_order() {
        let a = Trace::new();
        a.record(1, "n1", "x");
        a.record(2, "n2", "y");
        let b = Trace::new();
        b.record(1, "n1", "x");
        b.record(2, "n2", "y");
        assert_eq!(a.hash(), b.hash());
        let c = Trace::new();
        c.record(2, "n2", "y");
        c.record(1, "n1", "x");
        assert_ne!(a.hash(), c.hash());
        let d = Trace::new();
        d.record(1, "n1", "x");
        d.record(3, "n2", "y");
        assert_ne!(a.hash(), d.hash());
    }
}
