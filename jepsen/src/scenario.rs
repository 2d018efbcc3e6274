//! Fault scenarios: one workload, a fault schedule and the guarantees expected, in a
//! TOML file under `fault-scenarios/`. The same file drives `skald-sim` (virtual time)
//! and the real-cluster harness (real time); docs/TESTING.md documents the format.
//!
//! Parsing is strict: an unknown key, a fault aimed at a node that does not exist, or a
//! schedule out of time order is an error naming the problem. A setting we accept must
//! work, so nothing is silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::{AnomalyKind, CheckerConfig};

/// Longest run a scenario may ask for (virtual or real time).
pub const SCENARIO_DURATION_MS_MAX: u64 = 24 * 3600 * 1000;
/// Most nodes a scenario may ask for.
pub const SCENARIO_NODES_MAX: u32 = 9;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML or has unknown keys: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub cluster: Cluster,
    #[serde(default)]
    pub topics: Vec<Topic>,
    pub workload: Workload,
    #[serde(default)]
    pub faults: Faults,
    pub expect: Expect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Broker nodes, numbered 1..=nodes.
    pub nodes: u32,
    /// Broker settings by their Kafka names, applied to every node.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    pub partitions: u32,
    #[serde(default = "one")]
    pub replication_factor: u32,
    /// Topic configs by their Kafka names (e.g. `flush.messages = "1"`).
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    #[serde(rename = "0")]
    None,
    #[serde(rename = "1")]
    Leader,
    All,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The topic the workload writes and reads (must be declared in `topics`).
    pub topic: String,
    pub producers: u32,
    pub consumers: u32,
    pub acks: Acks,
    #[serde(default)]
    pub idempotence: bool,
    /// Sends per second across all producers.
    pub rate_per_second: u32,
    pub duration_ms: u64,
    /// Client request timeout; an operation without an answer by then is indeterminate.
    #[serde(default = "request_timeout_ms_default")]
    pub request_timeout_ms: u64,
    /// Retries a producer makes on a retriable error before reporting the send failed.
    #[serde(default)]
    pub retries: u32,
}

fn request_timeout_ms_default() -> u64 {
    5_000
}

/// When a fault happens: at a fixed time, or at random with a mean interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Faults at fixed times, in time order.
    #[serde(default)]
    pub schedule: Vec<ScheduledFault>,
    /// Faults drawn at random from `kinds`, every `interval_ms_min..=interval_ms_max`.
    pub random: Option<RandomFaults>,
    /// Standing disk fault rates, per operation, on every node's simulated disk.
    #[serde(default)]
    pub disk: DiskFaultRates,
    /// Standing transport fault rates between clients and brokers.
    #[serde(default)]
    pub transport: TransportFaultRates,
}

/// A fault at a fixed time. (Unknown keys are rejected by `Fault`, which receives every
/// key but `at_ms`; serde cannot deny unknown fields on a struct that flattens.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// One fault. Nodes are numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Power loss: the node stops and its disk loses what was not synced (torn writes
    /// included); it restarts after `down_ms`.
    Crash { node: u32, down_ms: u64 },
    /// The process stops (SIGSTOP) for `pause_ms`, then resumes.
    Pause { node: u32, pause_ms: u64 },
    /// Messages between the groups are dropped for `heal_after_ms`.
    Partition {
        groups: Vec<Vec<u32>>,
        heal_after_ms: u64,
    },
    /// Messages from `from` to `to` are held back (one way) for `heal_after_ms`.
    Clog {
        from: u32,
        to: u32,
        heal_after_ms: u64,
    },
    /// The node's wall clock jumps by `skew_ms` (negative: backwards).
    ClockSkew { node: u32, skew_ms: i64 },
    /// The node's next fsync fails (EIO): its partitions must go offline, never ack.
    SyncError { node: u32 },
    /// A bit flips in a random durable file of the node's disk.
    BitFlip { node: u32 },
    /// The node's disk reports full for `heal_after_ms`.
    DiskFull { node: u32, heal_after_ms: u64 },
    /// Every client connection is reset.
    ResetConnections,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Crash,
    Pause,
    Partition,
    Clog,
    ClockSkew,
    SyncError,
    BitFlip,
    DiskFull,
    ResetConnections,
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Clog { .. } => FaultKind::Clog,
            Fault::ClockSkew { .. } => FaultKind::ClockSkew,
            Fault::SyncError { .. } => FaultKind::SyncError,
            Fault::BitFlip { .. } => FaultKind::BitFlip,
            Fault::DiskFull { .. } => FaultKind::DiskFull,
            Fault::ResetConnections => FaultKind::ResetConnections,
        }
    }

    fn nodes(&self) -> Vec<u32> {
        match self {
            Fault::Crash { node, .. }
            | Fault::Pause { node, .. }
            | Fault::ClockSkew { node, .. }
            | Fault::SyncError { node }
            | Fault::BitFlip { node }
            | Fault::DiskFull { node, .. } => vec![*node],
            Fault::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
            Fault::Clog { from, to, .. } => vec![*from, *to],
            Fault::ResetConnections => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    pub kinds: Vec<FaultKind>,
    pub interval_ms_min: u64,
    pub interval_ms_max: u64,
    /// How long a drawn crash, pause, partition, clog or full disk lasts, at most.
    pub duration_ms_max: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFaultRates {
    #[serde(default)]
    pub read_eio_rate: f64,
    #[serde(default)]
    pub write_eio_rate: f64,
    #[serde(default)]
    pub sync_eio_rate: f64,
    #[serde(default)]
    pub bit_flip_rate: f64,
    #[serde(default)]
    pub short_read_rate: f64,
    #[serde(default)]
    pub misdirected_write_rate: f64,
    #[serde(default)]
    pub latency_rate: f64,
    #[serde(default)]
    pub latency_ms_max: u64,
    /// Probability that a crash tears the last unsynced write it keeps.
    #[serde(default)]
    pub torn_write_rate: f64,
    /// How long every fsync takes (the simulator's virtual time; not a fault): the
    /// window in which a write is in the page cache but not yet durable.
    #[serde(default = "sync_latency_ms_default")]
    pub sync_latency_ms: u64,
}

fn sync_latency_ms_default() -> u64 {
    1
}

impl Default for DiskFaultRates {
    fn default() -> DiskFaultRates {
        DiskFaultRates {
            read_eio_rate: 0.0,
            write_eio_rate: 0.0,
            sync_eio_rate: 0.0,
            bit_flip_rate: 0.0,
            short_read_rate: 0.0,
            misdirected_write_rate: 0.0,
            latency_rate: 0.0,
            latency_ms_max: 0,
            torn_write_rate: 0.0,
            sync_latency_ms: sync_latency_ms_default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportFaultRates {
    #[serde(default)]
    pub drop_request_after_apply_rate: f64,
    #[serde(default)]
    pub drop_response_rate: f64,
    #[serde(default)]
    pub duplicate_request_rate: f64,
    #[serde(default)]
    pub delay_rate: f64,
    #[serde(default)]
    pub delay_ms_max: u64,
    #[serde(default)]
    pub reset_rate: f64,
}

/// What loss of acknowledged writes the scenario tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostWrites {
    /// No acknowledged write may ever be lost (fsync before ack, or replication).
    None,
    /// Page-cache mode: acknowledged writes may be lost only at a crash, only a suffix.
    SuffixAtCrash,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub lost_writes: LostWrites,
    /// Anomaly kinds reported but allowed (e.g. `poll-skip` across rebalances).
    #[serde(default)]
    pub allowed: Vec<AnomalyKind>,
    /// Whether every partition's history must be linearizable.
    #[serde(default = "yes")]
    pub linearizable: bool,
    /// After the faults heal, every acknowledged write (not allowed lost) must be read
    /// back by the final drain within this many milliseconds.
    pub converge_within_ms: u64,
}

fn yes() -> bool {
    true
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        Scenario::parse(&text)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::Invalid(message));
        if self.cluster.nodes == 0 || self.cluster.nodes > SCENARIO_NODES_MAX {
            return invalid(format!("cluster.nodes must be 1..={SCENARIO_NODES_MAX}"));
        }
        if !self.topics.iter().any(|t| t.name == self.workload.topic) {
            return invalid(format!(
                "workload.topic `{}` is not declared in [[topics]]",
                self.workload.topic
            ));
        }
        for topic in &self.topics {
            if topic.partitions == 0 {
                return invalid(format!(
                    "topic `{}` needs at least one partition",
                    topic.name
                ));
            }
            if topic.replication_factor == 0 || topic.replication_factor > self.cluster.nodes {
                return invalid(format!(
                    "topic `{}`: replication_factor must be 1..=cluster.nodes",
                    topic.name
                ));
            }
        }
        if self.workload.duration_ms == 0 || self.workload.duration_ms > SCENARIO_DURATION_MS_MAX {
            return invalid(format!(
                "workload.duration_ms must be 1..={SCENARIO_DURATION_MS_MAX}"
            ));
        }
        if self.workload.idempotence && self.workload.acks != Acks::All {
            return invalid("workload.idempotence needs acks = \"all\"".to_string());
        }
        if self.workload.producers == 0 {
            return invalid("workload.producers must be at least 1".to_string());
        }
        let mut last_ms = 0;
        for scheduled in &self.faults.schedule {
            if scheduled.at_ms < last_ms {
                return invalid(format!(
                    "faults.schedule is not in time order at at_ms = {}",
                    scheduled.at_ms
                ));
            }
            last_ms = scheduled.at_ms;
            if scheduled.at_ms > self.workload.duration_ms {
                return invalid(format!(
                    "fault at {} ms is after the workload ends",
                    scheduled.at_ms
                ));
            }
            for node in scheduled.fault.nodes() {
                if node == 0 || node > self.cluster.nodes {
                    return invalid(format!(
                        "fault at {} ms names node {node}, not in 1..={}",
                        scheduled.at_ms, self.cluster.nodes
                    ));
                }
            }
        }
        if let Some(random) = &self.faults.random {
            if random.kinds.is_empty() {
                return invalid("faults.random.kinds is empty".to_string());
            }
            if random.interval_ms_min == 0 || random.interval_ms_min > random.interval_ms_max {
                return invalid(
                    "faults.random needs 0 < interval_ms_min <= interval_ms_max".to_string(),
                );
            }
        }
        let rates = [
            self.faults.disk.read_eio_rate,
            self.faults.disk.write_eio_rate,
            self.faults.disk.sync_eio_rate,
            self.faults.disk.bit_flip_rate,
            self.faults.disk.short_read_rate,
            self.faults.disk.misdirected_write_rate,
            self.faults.disk.latency_rate,
            self.faults.disk.torn_write_rate,
            self.faults.transport.drop_request_after_apply_rate,
            self.faults.transport.drop_response_rate,
            self.faults.transport.duplicate_request_rate,
            self.faults.transport.delay_rate,
            self.faults.transport.reset_rate,
        ];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return invalid("every fault rate must be within 0..=1".to_string());
        }
        Ok(())
    }

    /// The checker configuration the scenario's expectations translate to.
    pub fn checker_config(&self) -> CheckerConfig {
        let mut config = match self.expect.lost_writes {
            LostWrites::None => CheckerConfig::strict(),
            LostWrites::SuffixAtCrash => CheckerConfig::page_cache(),
        };
        for kind in &self.expect.allowed {
            config = config.allowing(*kind);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "t"
description = "d"
[cluster]
nodes = 1
[[topics]]
name = "queue"
partitions = 2
[topics.configs]
"flush.messages" = "1"
[workload]
topic = "queue"
producers = 2
consumers = 1
acks = "all"
rate_per_second = 100
duration_ms = 10000
[[faults.schedule]]
at_ms = 1000
kind = "crash"
node = 1
down_ms = 500
[[faults.schedule]]
at_ms = 2000
kind = "reset_connections"
[faults.disk]
torn_write_rate = 0.5
[expect]
lost_writes = "none"
allowed = ["unseen"]
converge_within_ms = 5000
"#;

    #[test]
    fn example_parses_and_maps_to_checker_config() {
        let scenario = Scenario::parse(EXAMPLE).expect("parse");
        assert_eq!(scenario.faults.schedule.len(), 2);
        assert_eq!(
            scenario.faults.schedule[0].fault,
            Fault::Crash {
                node: 1,
                down_ms: 500
            }
        );
        assert_eq!(scenario.workload.acks, Acks::All);
        let config = scenario.checker_config();
        assert!(!config.lost_write_allowed_after_crash);
        assert!(config.allowed.contains(&AnomalyKind::Unseen));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let cases = [
            EXAMPLE.replace(
                "rate_per_second = 100",
                "rate_per_second = 100\nrate_limit = 3",
            ),
            EXAMPLE.replace("node = 1\ndown_ms", "node = 2\ndown_ms"),
            EXAMPLE.replace("at_ms = 2000", "at_ms = 500"),
            EXAMPLE.replace(
                "topic = \"queue\"\nproducers",
                "topic = \"other\"\nproducers",
            ),
            EXAMPLE.replace("torn_write_rate = 0.5", "torn_write_rate = 1.5"),
            EXAMPLE.replace("kind = \"crash\"", "kind = \"meteor\""),
            EXAMPLE.replace("acks = \"all\"", "acks = \"some\""),
            EXAMPLE.replace("acks = \"all\"", "acks = \"1\"\nidempotence = true"),
            EXAMPLE.replace("down_ms = 500", "downtime_ms = 500"),
            EXAMPLE.replace("allowed = [\"unseen\"]", "allowed = [\"unheard-of\"]"),
        ];
        for (i, text) in cases.iter().enumerate() {
            assert!(Scenario::parse(text).is_err(), "case {i} was accepted");
        }
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fault-scenarios");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("fault-scenarios dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        let tomls: Vec<_> = names
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        assert!(!tomls.is_empty(), "no scenarios shipped");
        for path in tomls {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
