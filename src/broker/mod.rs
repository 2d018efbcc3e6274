//! L4 — the broker node: drivers that run the synchronous machines and the log against
//! the real (or simulated) seams, and own the waiting — group commit, acks, long polls.
//!
//! - `node`: `Node::start` / `NodeHandle` — the node's whole life cycle.
//! - `config`: `NodeConfig` and broker settings by Kafka's names.
//! - `state`: what handlers share; the metadata commit path.
//! - `metadata_log`: the `__cluster_metadata` log and its replay.
//! - `request`: the total request decoder, the supported-API table, response encoding.
//! - `handlers/`: one file per Kafka API, and the dispatcher.
//! - `log_driver`: one task per partition log (group commit, reads, jobs).

pub mod config;
pub mod handlers;
pub mod log_driver;
pub mod metadata_log;
pub mod node;
pub mod request;
pub mod state;

pub use config::{BrokerSettings, NodeConfig};
pub use node::{Node, NodeError, NodeHandle};
