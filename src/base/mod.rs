//! L0 — identifiers, bounds and errors shared by every layer.
//!
//! Owns: the id newtypes, every numeric bound the code uses (`limits`), the typed error
//! enums, and the deterministic PRNG. Must never do I/O or read the clock.

pub mod error;
pub mod ids;
pub mod limits;
pub mod rng;

pub use error::{IoError, IoErrorKind};
pub use ids::{LeaderEpoch, NodeId, Offset, PartitionId, ProducerEpoch, ProducerId, Sequence};
pub use rng::Rng;
