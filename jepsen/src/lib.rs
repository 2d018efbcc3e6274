//! Skald's history model and checkers, shared by `skald-sim` and the real-cluster harness.
//!
//! - [`history`]: operations (invoke/ok/fail/info), JSON-lines format, validation;
//! - [`queue`]: Jepsen's Kafka-queue anomalies (lost-write, unseen, duplicate,
//!   inconsistent-offsets, poll-skip, nonmonotonic poll/send, G1a, G0/G1c) and poll lag;
//! - [`linear`]: per-partition linearizability (Wing–Gong/Lowe, as in Porcupine);
//! - [`cycle`]: strongly connected components and cycles of dependency graphs;
//! - [`scenario`]: the fault-scenario files (`fault-scenarios/*.toml`) both the
//!   simulator and the real-cluster harness run.
//!
//! The checkers are pure functions of a validated [`history::History`]: no clocks, no
//! randomness, only ordered collections, so a verdict is reproducible byte for byte.

pub mod cycle;
pub mod history;
pub mod linear;
pub mod queue;
pub mod scenario;

use std::path::Path;

use serde::{Deserialize, Serialize};

use history::{History, HistoryError};
use linear::{LinearReport, LinearResult};
use queue::{CheckerConfig, QueueReport};

/// Default linearizability search budget per partition.
pub const STEP_BUDGET_DEFAULT: u64 = 10_000_000;

/// Both checkers' verdicts on one history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The queue report is valid and every partition is linearizable (an `Unknown`
    /// linearizability verdict is not valid).
    pub valid: bool,
    pub queue: QueueReport,
    pub linear: LinearReport,
}

/// Runs both checkers on `history`.
pub fn check_history(
    history: &History,
    config: &CheckerConfig,
    step_budget_per_partition: u64,
) -> Report {
    let queue = queue::check_queue(history, config);
    let linear = linear::check_linearizable(history, step_budget_per_partition);
    Report {
        valid: queue.valid && linear.result == LinearResult::Linearizable,
        queue,
        linear,
    }
}

/// Loads a JSON-lines history from `path` and checks it with the strict configuration and
/// the default step budget.
pub fn check_file(path: &Path) -> Result<Report, HistoryError> {
    let file = std::fs::File::open(path)?;
    let history = History::load(file)?;
    Ok(check_history(
        &history,
        &CheckerConfig::strict(),
        STEP_BUDGET_DEFAULT,
    ))
}
