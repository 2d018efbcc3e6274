//! L4 — the network edge below the Kafka protocol: how bytes become frames, and the
//! faulty transport the simulator puts between a client and a broker.
//!
//! Owns: `frame` (length-prefixed Kafka frames on any `AsyncRead`/`AsyncWrite`),
//! `faulty` (a seeded, fault-injecting frame proxy), `server` (accept loop, connection
//! limit, graceful stop) and `connection` (pipelined, bounded, in-order request handling
//! per connection). Must never: decode Kafka requests
//! beyond the correlation id, use OS randomness, or iterate unordered collections.

pub mod connection;
pub mod faulty;
pub mod frame;
pub mod server;

pub use faulty::{
    Direction, FaultHandle, FaultKind, FaultyProxy, ProxyError, TransportEvent, TransportFaults,
};
pub use frame::{read_frame, write_frame, FrameError, FRAME_PREFIX_BYTES};
