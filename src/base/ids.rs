//! Identifier newtypes. Each wraps the integer width Kafka's wire protocol uses, so a
//! value can cross the protocol edge without a lossy cast, and different ids cannot be
//! confused with each other at compile time.

use std::fmt;

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident, $inner:ty) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_newtype!(
    /// A position in a partition log. Kafka offsets are signed 64-bit; valid offsets are >= 0.
    Offset,
    i64
);
id_newtype!(
    /// The epoch of a partition leader (or of a Raft leader); never decreases once persisted.
    LeaderEpoch,
    i32
);
id_newtype!(
    /// A broker or controller node id (`node.id`).
    NodeId,
    i32
);
id_newtype!(
    /// A partition index within a topic.
    PartitionId,
    i32
);
id_newtype!(
    /// An idempotent/transactional producer id; -1 means "no producer id".
    ProducerId,
    i64
);
id_newtype!(
    /// The epoch of a producer id; -1 means "none".
    ProducerEpoch,
    i16
);
id_newtype!(
    /// A producer's per-partition record sequence number.
    Sequence,
    i32
);

impl Offset {
    /// The next offset after this one. Panics on overflow: an offset near i64::MAX means
    /// the log is corrupt, and continuing would wrap into negative offsets.
    pub fn next(self) -> Offset {
        Offset(
            self.0
                .checked_add(1)
                .expect("offset overflow: offsets must stay below i64::MAX"),
        )
    }

    /// This offset plus `delta`, checked.
    pub fn checked_add(self, delta: i64) -> Option<Offset> {
        self.0.checked_add(delta).map(Offset)
    }
}

impl ProducerId {
    /// The "no producer id" value Kafka uses for non-idempotent batches.
    pub const NONE: ProducerId = ProducerId(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_and_advance() {
        assert!(Offset(1) < Offset(2));
        assert_eq!(Offset(41).next(), Offset(42));
        assert_eq!(Offset(i64::MAX).checked_add(1), None);
    }

    #[test]
    #[should_panic(expected = "offset overflow")]
    fn offset_next_panics_on_overflow() {
        let _ = Offset(i64::MAX).next();
    }
}
