//! What a run produced and what the checks made of it, and the trace file a failing run
//! leaves behind (JSON lines; `skald-sim replay` and `skald-sim report` read it back).
//!
//! Owns: the run's verdict (`check_run`: the queue checker with the scenario's
//! expectations, linearizability when asked, and the invariants the runner recorded),
//! the run hash (trace events plus history, FNV-1a), and the trace file format. Compiled
//! in both builds, so the checks and the file format are unit-tested without madsim.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use skald_jepsen::history::{Body, History, HistoryBuilder, Key, Op, OpType, Outcome, Value};
use skald_jepsen::linear::{check_partition, partition_ops, PartitionVerdict};
use skald_jepsen::queue::{check_queue, Anomaly, AnomalyKind};
use skald_jepsen::scenario::{FaultKind, LostWrites, Scenario};

use crate::trace::{Trace, TraceEvent};

/// Linearizability search budget per partition: enough for the scenarios' histories,
/// small enough that a seed stays well under a second of checking.
pub const LINEAR_STEP_BUDGET: u64 = 200_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a run records, shared by every simulated task and kept outside the runtime so
/// that a panic still leaves the trace and the history behind.
#[derive(Clone, Default)]
pub struct Recorder {
    pub trace: Trace,
    pub history: Arc<Mutex<HistoryBuilder>>,
    /// Invariant violations noticed while running (corrupt reads, start failures, ...).
    pub failures: Arc<Mutex<Vec<String>>>,
    /// Every value a producer invoked a send of.
    pub sent: Arc<Mutex<BTreeSet<Value>>>,
    pub faults: Arc<AtomicU64>,
    /// Virtual ms at which the run ended.
    pub end_ms: Arc<AtomicU64>,
    /// (key, offset) the final drain found unreadable and stepped over: records
    /// destroyed at rest (bit flips), rightly never served.
    pub destroyed: Arc<Mutex<BTreeSet<(Key, i64)>>>,
    /// Each partition's log start offset at the end, where retention may delete data.
    pub log_starts: Arc<Mutex<BTreeMap<Key, i64>>>,
}

/// One anomaly the queue checker reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyLine {
    pub kind: String,
    /// Allowed by the scenario (reported, not a failure).
    pub allowed: bool,
    pub ops: Vec<u64>,
    pub explanation: String,
}

/// The result of one (scenario, seed) run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub hash: u64,
    pub virtual_ms: u64,
    pub operations: u64,
    pub faults: u64,
    /// Anomalies of kinds the scenario does not allow.
    pub anomalies: u64,
    /// Anomalies of allowed kinds, and crash losses the page-cache rule tolerates.
    pub anomalies_allowed: u64,
    pub failures: Vec<String>,
    #[serde(skip)]
    pub events: Vec<TraceEvent>,
    #[serde(skip)]
    pub ops: Vec<Op>,
    #[serde(skip)]
    pub anomaly_lines: Vec<AnomalyLine>,
}

impl RunOutcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// FNV-1a over the trace events and the history lines: the run's identity.
pub fn run_hash(events: &[TraceEvent], ops: &[Op]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for event in events {
        eat(&event.time_ms.to_le_bytes());
        eat(event.node.as_bytes());
        eat(&[0]);
        eat(event.what.as_bytes());
        eat(&[0]);
    }
    for op in ops {
        eat(serde_json::to_string(op).unwrap_or_default().as_bytes());
        eat(&[0]);
    }
    hash
}

/// Checks what `rec` recorded against `scenario`'s expectations.
pub fn check_run(scenario: &Scenario, seed: u64, rec: &Recorder) -> RunOutcome {
    let events = rec.trace.events();
    let ops = lock(&rec.history).ops().to_vec();
    let mut outcome = RunOutcome {
        seed,
        hash: run_hash(&events, &ops),
        virtual_ms: rec.end_ms.load(Ordering::SeqCst),
        faults: rec.faults.load(Ordering::SeqCst),
        failures: lock(&rec.failures).clone(),
        ..RunOutcome::default()
    };
    match History::from_ops(ops.clone()) {
        Err(e) => outcome
            .failures
            .push(format!("history is malformed (a harness bug): {e}")),
        Ok(history) => {
            let config = scenario.checker_config();
            let destroyed = lock(&rec.destroyed).clone();
            let log_starts = lock(&rec.log_starts).clone();
            let report = check_queue(&history, &config);
            outcome.operations = report.stats.operations;
            // Without idempotence a retry may write a value twice; where the scenario
            // allows that, a dependency cycle induced by a duplicated value is its
            // echo, not a separate anomaly, and the partition cannot be linearizable
            // under a model where each append has one offset.
            let duplicates_allowed = config.allowed.contains(&AnomalyKind::Duplicate);
            let mut duplicated: BTreeSet<(Key, Value)> = BTreeSet::new();
            let mut unmodelled_keys: BTreeSet<Key> = BTreeSet::new();
            if duplicates_allowed {
                for anomaly in report.of(AnomalyKind::Duplicate) {
                    if let Some(key) = anomaly.key {
                        unmodelled_keys.insert(key);
                        for value in &anomaly.values {
                            duplicated.insert((key, *value));
                        }
                    }
                }
            }
            for list in report.tolerated.values() {
                unmodelled_keys.extend(list.iter().filter_map(|a| a.key));
            }
            for (kind, list) in &report.anomalies {
                let name = serde_json::to_string(kind)
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                let mut not_allowed = Vec::new();
                for anomaly in list {
                    let echo = matches!(kind, AnomalyKind::G0 | AnomalyKind::G1c)
                        && anomaly
                            .cycle
                            .iter()
                            .any(|step| duplicated.contains(&(step.key, step.value)));
                    // A write lost exactly where the drain found the log unreadable was
                    // destroyed at rest, which the scenario's faults may do; a write lost
                    // anywhere else is still a failure.
                    let destroyed_there = *kind == AnomalyKind::LostWrite
                        && may_destroy_data(scenario)
                        && at_offsets_all(anomaly, |key, offset| {
                            destroyed.contains(&(key, offset))
                        });
                    // Retention deletes acknowledged data by design: a write that no read
                    // returned is excused if it lies below where the log now starts.
                    let expired = matches!(kind, AnomalyKind::LostWrite | AnomalyKind::Unseen)
                        && at_offsets_all(anomaly, |key, offset| {
                            offset < log_starts.get(&key).copied().unwrap_or(0)
                        });
                    let allowed =
                        config.allowed.contains(kind) || echo || destroyed_there || expired;
                    outcome.anomaly_lines.push(AnomalyLine {
                        kind: name.clone(),
                        allowed,
                        ops: anomaly.ops.clone(),
                        explanation: anomaly.explanation.clone(),
                    });
                    if allowed {
                        outcome.anomalies_allowed += 1;
                    } else {
                        not_allowed.push(anomaly.explanation.as_str());
                    }
                }
                if let Some(first) = not_allowed.first() {
                    outcome.anomalies += not_allowed.len() as u64;
                    outcome
                        .failures
                        .push(format!("{name} x{}: {first}", not_allowed.len()));
                }
            }
            outcome.anomalies_allowed += report
                .tolerated
                .values()
                .map(|l| l.len() as u64)
                .sum::<u64>();
            if scenario.expect.linearizable {
                let (partitions, _) = partition_ops(&history);
                for (key, ops) in &partitions {
                    if unmodelled_keys.contains(key) {
                        continue;
                    }
                    if let PartitionVerdict::NotLinearizable {
                        linearized,
                        unplaceable,
                        ..
                    } = check_partition(ops, LINEAR_STEP_BUDGET)
                    {
                        outcome.failures.push(format!(
                            "partition {key} is not linearizable: {unplaceable:?} cannot follow {} linearized operations",
                            linearized.len()
                        ));
                    }
                }
            }
        }
    }
    if let Ok(history) = History::from_ops(ops.clone()) {
        let drain_process = u64::from(scenario.workload.producers + scenario.workload.consumers);
        outcome.failures.extend(check_acked_writes(
            scenario,
            &history,
            drain_process,
            &lock(&rec.log_starts),
        ));
    }
    outcome.events = events;
    outcome.ops = ops;
    outcome
}

/// Whether the anomaly names a key and offsets, and `holds` for each of them.
fn at_offsets_all(anomaly: &Anomaly, holds: impl Fn(Key, i64) -> bool) -> bool {
    anomaly.key.is_some_and(|key| {
        !anomaly.offsets.is_empty() && anomaly.offsets.iter().all(|offset| holds(key, *offset))
    })
}

/// Whether the scenario's topic configures retention (`retention.ms` or
/// `retention.bytes` not -1): then the log start moves and data below it is gone.
pub fn expires_data(scenario: &Scenario) -> bool {
    scenario.topics.iter().any(|topic| {
        ["retention.ms", "retention.bytes"]
            .iter()
            .any(|key| topic.configs.get(*key).is_some_and(|v| v != "-1"))
    })
}

/// Whether the scenario's faults may destroy data at rest (bit flips, misdirected
/// writes): then acknowledged writes may be lost to them.
pub fn may_destroy_data(scenario: &Scenario) -> bool {
    let faults = &scenario.faults;
    faults.disk.bit_flip_rate > 0.0
        || faults.disk.misdirected_write_rate > 0.0
        || faults
            .schedule
            .iter()
            .any(|s| s.fault.kind() == FaultKind::BitFlip)
        || faults
            .random
            .as_ref()
            .is_some_and(|r| r.kinds.contains(&FaultKind::BitFlip))
}

/// Most violations of one invariant listed in the failures.
const VIOLATIONS_LISTED_MAX: usize = 3;

/// The durability invariants, checked directly against the final drain (the last
/// process's polls): with `lost_writes = "none"` every acknowledged write is in the
/// final log at the offset it was acknowledged with; with `"suffix_at_crash"` a lost
/// acknowledged write needs a crash after its ack, and no write acknowledged before that
/// crash at a higher offset of the partition may have survived (no holes). Skipped
/// where the scenario's faults may destroy data at rest.
/// `log_starts`: where each partition's log starts at the end, when retention runs;
/// writes below it were deleted by design and are not checked.
pub fn check_acked_writes(
    scenario: &Scenario,
    history: &History,
    drain: u64,
    log_starts: &BTreeMap<Key, i64>,
) -> Vec<String> {
    if may_destroy_data(scenario) {
        return Vec::new();
    }
    let mut final_log: BTreeMap<Key, BTreeMap<i64, Value>> = BTreeMap::new();
    let mut drained = false;
    let mut crashes: Vec<i64> = Vec::new();
    for op in history.ops() {
        match (&op.body, op.op_type, op.process) {
            (Body::Poll { records }, OpType::Ok, Some(p)) if p == drain => {
                drained = true;
                for (key, list) in records {
                    for (offset, value) in list {
                        final_log.entry(*key).or_default().insert(*offset, *value);
                    }
                }
            }
            (Body::Crash { .. }, _, _) => crashes.push(op.time_ns),
            _ => {}
        }
    }
    if !drained {
        return Vec::new(); // the convergence failure already says why
    }
    // (key, offset, value, invoke time, ack time) of every acknowledged write.
    let mut acked: Vec<(Key, i64, Value, i64, i64)> = Vec::new();
    for op in history.operations() {
        if let (
            Outcome::Ok,
            Body::Send {
                key,
                value,
                offset: Some(offset),
            },
            Some(acked_ns),
        ) = (op.outcome, &op.body, op.completion_time_ns)
        {
            acked.push((*key, *offset, *value, op.invoke_time_ns, acked_ns));
        }
    }
    let survives = |key: Key, offset: i64, value: Value| {
        final_log.get(&key).and_then(|l| l.get(&offset)) == Some(&value)
    };
    let mut violations = Vec::new();
    for &(key, offset, value, invoked_ns, _) in &acked {
        if survives(key, offset, value) || log_starts.get(&key).is_some_and(|s| offset < *s) {
            continue;
        }
        if scenario.expect.lost_writes == LostWrites::None {
            violations.push(format!(
                "acknowledged write {value} at offset {offset} of key {key} is not in the final log"
            ));
            continue;
        }
        // A write is exposed to every crash after its invoke (its ack may still be on
        // the wire when the node dies). It may be lost at crash `c` only if nothing
        // acknowledged before `c` above it in the partition survived.
        let candidates: Vec<i64> = crashes
            .iter()
            .copied()
            .filter(|c| *c >= invoked_ns)
            .collect();
        if candidates.is_empty() {
            violations.push(format!(
                "acknowledged write {value} at offset {offset} of key {key} was lost without a crash after it"
            ));
            continue;
        }
        let hole = |crash_ns: i64| {
            acked.iter().find(|(k, o, v, _, t)| {
                *k == key && *o > offset && *t < crash_ns && survives(*k, *o, *v)
            })
        };
        if candidates.iter().all(|c| hole(*c).is_some()) {
            let crash_ns = candidates[0];
            if let Some(&(_, later_offset, later_value, _, _)) = hole(crash_ns) {
                violations.push(format!(
                    "acknowledged write {value} at offset {offset} of key {key} was lost at a crash (first at {} ms), but {later_value} acknowledged before it at offset {later_offset} survived: a hole, not a suffix",
                    crash_ns / 1_000_000
                ));
            }
        }
    }
    if violations.is_empty() {
        return Vec::new();
    }
    let count = violations.len();
    violations.truncate(VIOLATIONS_LISTED_MAX);
    vec![format!(
        "acked writes lost x{count}: {}",
        violations.join("; ")
    )]
}

/// One line of a trace file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
pub enum TraceLine {
    Header {
        seed: u64,
        scenario_name: String,
        scenario_path: String,
        /// The scenario file's text, so a replay needs nothing else.
        scenario: String,
        build: String,
        hash: String,
        virtual_ms: u64,
        operations: u64,
        faults: u64,
        failures: Vec<String>,
    },
    Event {
        time_ms: u64,
        node: String,
        what: String,
    },
    Anomaly(AnomalyLine),
    Op {
        op: Op,
    },
}

/// A trace file, read back.
#[derive(Clone, Debug)]
pub struct TraceFile {
    pub seed: u64,
    pub scenario_path: String,
    pub scenario_text: String,
    pub build: String,
    pub hash: String,
    pub failures: Vec<String>,
    pub events: Vec<TraceEvent>,
    pub anomalies: Vec<AnomalyLine>,
    pub ops: Vec<Op>,
}

/// The hash as it appears in traces and on the command line.
pub fn hash_text(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Writes `outcome` as a trace file.
pub fn write_trace<W: Write>(
    mut out: W,
    outcome: &RunOutcome,
    scenario_path: &str,
    scenario_text: &str,
    scenario_name: &str,
    build: &str,
) -> std::io::Result<()> {
    let mut line = |value: &TraceLine| -> std::io::Result<()> {
        let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")
    };
    line(&TraceLine::Header {
        seed: outcome.seed,
        scenario_name: scenario_name.to_string(),
        scenario_path: scenario_path.to_string(),
        scenario: scenario_text.to_string(),
        build: build.to_string(),
        hash: hash_text(outcome.hash),
        virtual_ms: outcome.virtual_ms,
        operations: outcome.operations,
        faults: outcome.faults,
        failures: outcome.failures.clone(),
    })?;
    for event in &outcome.events {
        line(&TraceLine::Event {
            time_ms: event.time_ms,
            node: event.node.clone(),
            what: event.what.clone(),
        })?;
    }
    for anomaly in &outcome.anomaly_lines {
        line(&TraceLine::Anomaly(anomaly.clone()))?;
    }
    for op in &outcome.ops {
        line(&TraceLine::Op { op: op.clone() })?;
    }
    Ok(())
}

/// Reads a trace file; the first line must be the header.
pub fn read_trace<R: BufRead>(input: R) -> anyhow::Result<TraceFile> {
    let mut file: Option<TraceFile> = None;
    for (number, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: TraceLine = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("trace line {}: {e}", number + 1))?;
        match (parsed, file.as_mut()) {
            (
                TraceLine::Header {
                    seed,
                    scenario_path,
                    scenario,
                    build,
                    hash,
                    failures,
                    ..
                },
                None,
            ) => {
                file = Some(TraceFile {
                    seed,
                    scenario_path,
                    scenario_text: scenario,
                    build,
                    hash,
                    failures,
                    events: Vec::new(),
                    anomalies: Vec::new(),
                    ops: Vec::new(),
                });
            }
            (TraceLine::Header { .. }, Some(_)) => {
                anyhow::bail!("trace line {}: a second header", number + 1)
            }
            (_, None) => anyhow::bail!("trace line {}: no header first", number + 1),
            (
                TraceLine::Event {
                    time_ms,
                    node,
                    what,
                },
                Some(file),
            ) => file.events.push(TraceEvent {
                time_ms,
                node,
                what,
            }),
            (TraceLine::Anomaly(anomaly), Some(file)) => file.anomalies.push(anomaly),
            (TraceLine::Op { op }, Some(file)) => file.ops.push(op),
        }
    }
    file.ok_or_else(|| anyhow::anyhow!("empty trace file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = include_str!("../../fault-scenarios/single-crash-loop-fsync.toml");

    fn recorder_with_lost_write(read_it: bool) -> Recorder {
        let rec = Recorder::default();
        {
            let mut history = lock(&rec.history);
            history.send(0, 0, 7, skald_jepsen::history::Outcome::Ok, Some(0));
            history.send(0, 0, 8, skald_jepsen::history::Outcome::Ok, Some(1));
            let records: Vec<(i64, i64)> = if read_it {
                vec![(0, 7), (1, 8)]
            } else {
                vec![(1, 8)]
            };
            history.poll(1, &[(0, &records)]);
            history.push(
                OpType::Info,
                None,
                Body::Fault {
                    name: "x".into(),
                    detail: None,
                },
            );
        }
        rec.trace.record(1, "n1", "serving");
        rec
    }

    #[test]
    fn a_lost_acked_write_fails_the_run_and_a_clean_history_passes() {
        let scenario = Scenario::parse(SCENARIO).expect("scenario");
        let good = check_run(&scenario, 1, &recorder_with_lost_write(true));
        assert!(good.ok(), "{:?}", good.failures);
        let bad = check_run(&scenario, 1, &recorder_with_lost_write(false));
        assert!(!bad.ok());
        assert!(bad.anomalies > 0);
        assert_ne!(good.hash, bad.hash);
    }

    #[test]
    fn a_write_lost_where_the_drain_found_damage_is_tolerated_only_there() {
        let scenario = Scenario::parse(include_str!(
            "../../fault-scenarios/single-disk-faults.toml"
        ))
        .expect("scenario");
        let lost_at_damage = recorder_with_lost_write(false);
        lock(&lost_at_damage.destroyed).insert((0, 0));
        let outcome = check_run(&scenario, 1, &lost_at_damage);
        assert!(outcome.ok(), "{:?}", outcome.failures);
        let lost_elsewhere = recorder_with_lost_write(false);
        lock(&lost_elsewhere.destroyed).insert((0, 5));
        assert!(!check_run(&scenario, 1, &lost_elsewhere).ok());
        // Without faults that destroy data, damage excuses nothing.
        let crash_loop = Scenario::parse(SCENARIO).expect("scenario");
        assert!(!check_run(&crash_loop, 1, &lost_at_damage).ok());
    }

    #[test]
    fn a_write_lost_below_the_final_log_start_is_expired_not_lost() {
        let scenario = Scenario::parse(include_str!(
            "../../fault-scenarios/single-retention-crash.toml"
        ))
        .expect("scenario");
        assert!(expires_data(&scenario));
        let below_start = recorder_with_lost_write(false);
        lock(&below_start.log_starts).insert(0, 1);
        let outcome = check_run(&scenario, 1, &below_start);
        assert!(outcome.ok(), "{:?}", outcome.failures);
        let at_start = recorder_with_lost_write(false);
        lock(&at_start.log_starts).insert(0, 0);
        assert!(!check_run(&scenario, 1, &at_start).ok());
    }

    #[test]
    fn trace_files_round_trip() {
        let scenario = Scenario::parse(SCENARIO).expect("scenario");
        let outcome = check_run(&scenario, 42, &recorder_with_lost_write(false));
        let mut bytes = Vec::new();
        write_trace(&mut bytes, &outcome, "s.toml", SCENARIO, "t", "build").expect("write");
        let file = read_trace(bytes.as_slice()).expect("read");
        assert_eq!(file.seed, 42);
        assert_eq!(file.scenario_text, SCENARIO);
        assert_eq!(file.hash, hash_text(outcome.hash));
        assert_eq!(run_hash(&file.events, &file.ops), outcome.hash);
        assert_eq!(file.failures, outcome.failures);
        assert_eq!(file.anomalies.len(), outcome.anomaly_lines.len());
    }
}
