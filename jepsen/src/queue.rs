//! The Kafka-queue checker, after Jepsen's `kafka` queue workload (Kingsbury, 2022).
//!
//! Owns the definitions of the queue anomalies and the computation of realtime lag over a
//! validated [`History`]. It reads the history only; it never reorders or repairs it, and
//! its output is a deterministic function of the history and the [`CheckerConfig`].
//!
//! Vocabulary. An *acked write* is a send (or a send inside a transaction) whose operation
//! completed `ok`, at the offset it reported. A *read* is a record `(key, offset, value)`
//! returned by an `ok` poll (including polls inside transactions) or an `ok` `read`
//! (fetch). An *observation* is an acked write or a read. A value is *observed* when some
//! read returned it. Anomalies cite history indices: the completion line of each operation
//! (the invoke line when it never completed). See [`AnomalyKind`] for the definitions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cycle::Graph;
use crate::history::{
    Body, History, HistoryError, Key, MicroOp, Offset, Operation, Outcome, ProcessId, Value,
};

/// The anomalies the queue checker finds. Definitions, as implemented:
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// An acked write `(k, v)` at offset `o` that no read ever returned, although the log
    /// is known to have reached or moved past it: some read returned offset `o` (holding
    /// another value, then) or higher in `k`, or an `ok` `read` of `k` invoked after the
    /// write's ack reported `high_watermark <= o`.
    LostWrite,
    /// An acked write that no read ever returned, and that is not a lost write (no read
    /// went past it): maybe lost, maybe only never consumed.
    Unseen,
    /// One value of a key observed at two or more distinct offsets.
    Duplicate,
    /// One offset of a key observed holding two or more distinct values.
    InconsistentOffsets,
    /// A process's successive polled records of a key (within one poll or across its
    /// consecutive polls) jump from offset `a` to `b > a + 1` while some offset strictly
    /// between is known to exist (has an observation), with no assign/subscribe/rebalance
    /// of that process in between. Gaps with no known offset (transaction markers,
    /// compaction) are not skips.
    PollSkip,
    /// A process's successive polled records of a key go from offset `a` to `b <= a`, with
    /// no assign/subscribe/rebalance of that process in between.
    NonmonotonicPoll,
    /// A process's successive acked sends to a key got offsets `a` then `b <= a`.
    NonmonotonicSend,
    /// A read returned a value whose send failed definitely (`fail`), either a plain send
    /// or a send in a transaction that failed (aborted).
    G1a,
    /// A cycle of write-write (ww) dependencies between operations.
    G0,
    /// A cycle of ww and write-read (wr) dependencies with at least one wr edge, in a
    /// component that has no ww-only cycle.
    G1c,
}

/// A dependency between two operations.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    /// The target wrote the next version (offset) of a key after the source's.
    Ww,
    /// The target read a value the source wrote.
    Wr,
}

/// An edge label in the dependency graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Dep {
    kind: DepKind,
    key: Key,
    value: Value,
}

/// One step of a reported cycle: `op` has an edge of kind `edge` to the next step's op
/// (the last step's edge leads back to the first).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CycleStep {
    pub op: u64,
    pub edge: DepKind,
    pub key: Key,
    /// The value that induces the edge (written by the next op for ww, read by it for wr).
    pub value: Value,
}

/// One instance of an anomaly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// History indices of the operations that show it.
    pub ops: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<Offset>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<CycleStep>,
    pub explanation: String,
}

/// Which anomalies a scenario tolerates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Kinds that are reported but do not make the history invalid.
    pub allowed: BTreeSet<AnomalyKind>,
    /// Page-cache mode: a lost (or unseen) write is tolerated when it was acked before a
    /// crash and every write acked before that crash at a higher offset of the key is also
    /// never observed, i.e. only a suffix of the log was lost at the crash. Offsets then
    /// reused after the crash (inconsistent offsets whose other values are all tolerated
    /// lost writes, and a producer's send going back below its own tolerated lost write)
    /// are tolerated too.
    pub lost_write_allowed_after_crash: bool,
    /// An assign, subscribe or rebalance of a process resets what its next poll must
    /// continue from (poll-skip and nonmonotonic-poll are not judged across it).
    pub reset_on_rebalance: bool,
}

impl Default for CheckerConfig {
    fn default() -> CheckerConfig {
        CheckerConfig {
            allowed: BTreeSet::new(),
            lost_write_allowed_after_crash: false,
            reset_on_rebalance: true,
        }
    }
}

impl CheckerConfig {
    /// Nothing tolerated.
    pub fn strict() -> CheckerConfig {
        CheckerConfig::default()
    }

    /// Brokers that ack before fsync: only a crash-lost suffix is tolerated.
    pub fn page_cache() -> CheckerConfig {
        CheckerConfig {
            lost_write_allowed_after_crash: true,
            ..CheckerConfig::default()
        }
    }

    pub fn allowing(mut self, kind: AnomalyKind) -> CheckerConfig {
        self.allowed.insert(kind);
        self
    }
}

/// Realtime lag of polls: for each `ok` poll, the largest (over the keys its process has
/// read or been assigned) of `poll invoke time - ack time` of the earliest-acked write at
/// an offset above the highest offset the process has read of that key (this poll
/// included), among writes acked before the poll was invoked; 0 when it missed nothing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LagStats {
    pub polls: u64,
    pub lag_ns_max: i64,
    pub lag_ns_p50: i64,
    pub lag_ns_p99: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub operations: u64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub sends_indeterminate: u64,
    pub polls_ok: u64,
    pub records_read: u64,
    pub lag: LagStats,
}

/// The verdict of the queue checker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// No anomaly of a kind outside `CheckerConfig::allowed`.
    pub valid: bool,
    /// Every anomaly found, except those tolerated by crash rules.
    pub anomalies: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    /// Anomalies excused by `lost_write_allowed_after_crash`.
    pub tolerated: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    pub stats: QueueStats,
}

impl QueueReport {
    /// Anomalies of `kind` (empty when none).
    pub fn of(&self, kind: AnomalyKind) -> &[Anomaly] {
        self.anomalies.get(&kind).map_or(&[], Vec::as_slice)
    }
}

/// Loads a JSON-lines history from `path` and checks it.
pub fn check_queue_file(path: &Path, config: &CheckerConfig) -> Result<QueueReport, HistoryError> {
    let file = std::fs::File::open(path)?;
    let history = History::load(file)?;
    Ok(check_queue(&history, config))
}

/// A send seen anywhere in the history.
#[derive(Debug, Clone)]
struct WriteInfo {
    op: usize,
    outcome: Outcome,
    /// Only for acked writes.
    offset: Option<Offset>,
    ack_position: Option<usize>,
    ack_time_ns: Option<i64>,
}

/// One record returned by a read.
#[derive(Debug, Clone, Copy)]
struct ReadObs {
    op: usize,
    key: Key,
    offset: Offset,
    value: Value,
}

/// Everything extracted once from the history.
struct Facts<'h> {
    ops: &'h [Operation],
    writes: BTreeMap<(Key, Value), WriteInfo>,
    reads: Vec<ReadObs>,
    /// `read` ops that reported a high watermark: (key, invoke position, hw, op).
    watermarks: Vec<(Key, usize, Offset, usize)>,
    /// (key, offset) -> value -> ops observing it.
    offset_values: BTreeMap<(Key, Offset), BTreeMap<Value, BTreeSet<u64>>>,
    /// (key, value) -> offset -> ops observing it.
    value_offsets: BTreeMap<(Key, Value), BTreeMap<Offset, BTreeSet<u64>>>,
    observed: BTreeSet<(Key, Value)>,
    /// Highest offset read per key, with the op that read it.
    max_read: BTreeMap<Key, (Offset, usize)>,
    crash_positions: Vec<usize>,
}

impl<'h> Facts<'h> {
    fn gather(history: &'h History) -> Facts<'h> {
        let ops = history.operations();
        let mut facts = Facts {
            ops,
            writes: BTreeMap::new(),
            reads: Vec::new(),
            watermarks: Vec::new(),
            offset_values: BTreeMap::new(),
            value_offsets: BTreeMap::new(),
            observed: BTreeSet::new(),
            max_read: BTreeMap::new(),
            crash_positions: history
                .events()
                .iter()
                .filter(|event| matches!(event.body, Body::Crash { .. }))
                .map(|event| event.position)
                .collect(),
        };
        for (op_id, operation) in ops.iter().enumerate() {
            let ok = operation.outcome == Outcome::Ok;
            for mop in operation.body.micro_ops() {
                match mop {
                    MicroOp::Send { key, value, offset } => {
                        let acked = ok && offset.is_some();
                        facts.writes.insert(
                            (key, value),
                            WriteInfo {
                                op: op_id,
                                outcome: operation.outcome,
                                offset: if acked { offset } else { None },
                                ack_position: if acked {
                                    operation.completion_position
                                } else {
                                    None
                                },
                                ack_time_ns: if acked {
                                    operation.completion_time_ns
                                } else {
                                    None
                                },
                            },
                        );
                    }
                    MicroOp::Poll { records } if ok => {
                        for (key, list) in records {
                            for (offset, value) in list {
                                facts.reads.push(ReadObs {
                                    op: op_id,
                                    key,
                                    offset,
                                    value,
                                });
                            }
                        }
                    }
                    MicroOp::Poll { .. } => {}
                }
            }
            if let (
                true,
                Body::Read {
                    key,
                    from_offset,
                    values,
                    high_watermark,
                },
            ) = (ok, &operation.body)
            {
                for (position, value) in values.iter().enumerate() {
                    let Some(offset) = i64::try_from(position)
                        .ok()
                        .and_then(|position| from_offset.checked_add(position))
                    else {
                        break;
                    };
                    facts.reads.push(ReadObs {
                        op: op_id,
                        key: *key,
                        offset,
                        value: *value,
                    });
                }
                if let Some(high_watermark) = high_watermark {
                    facts.watermarks.push((
                        *key,
                        operation.invoke_position,
                        *high_watermark,
                        op_id,
                    ));
                }
            }
        }
        let acked: Vec<(Key, Offset, Value, u64)> = facts
            .writes
            .iter()
            .filter_map(|(&(key, value), write)| {
                write
                    .offset
                    .map(|offset| (key, offset, value, ops[write.op].report_index()))
            })
            .collect();
        for (key, offset, value, index) in acked {
            facts.note(key, offset, value, index);
        }
        for read in facts.reads.clone() {
            let index = ops[read.op].report_index();
            facts.note(read.key, read.offset, read.value, index);
            facts.observed.insert((read.key, read.value));
            let entry = facts
                .max_read
                .entry(read.key)
                .or_insert((read.offset, read.op));
            if read.offset > entry.0 {
                *entry = (read.offset, read.op);
            }
        }
        facts
    }

    fn note(&mut self, key: Key, offset: Offset, value: Value, index: u64) {
        self.offset_values
            .entry((key, offset))
            .or_default()
            .entry(value)
            .or_default()
            .insert(index);
        self.value_offsets
            .entry((key, value))
            .or_default()
            .entry(offset)
            .or_default()
            .insert(index);
    }

    fn index(&self, op: usize) -> u64 {
        self.ops[op].report_index()
    }

    /// Is some offset strictly between `low` and `high` known to exist in `key`?
    fn known_offsets_between(&self, key: Key, low: Offset, high: Offset) -> Vec<Offset> {
        if high <= low.saturating_add(1) {
            return Vec::new();
        }
        self.offset_values
            .range((key, low + 1)..(key, high))
            .map(|(&(_, offset), _)| offset)
            .collect()
    }
}

struct Findings {
    anomalies: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    tolerated: BTreeMap<AnomalyKind, Vec<Anomaly>>,
}

impl Findings {
    fn add(&mut self, kind: AnomalyKind, anomaly: Anomaly) {
        self.anomalies.entry(kind).or_default().push(anomaly);
    }

    fn tolerate(&mut self, kind: AnomalyKind, anomaly: Anomaly) {
        self.tolerated.entry(kind).or_default().push(anomaly);
    }
}

fn anomaly(ops: Vec<u64>, explanation: String) -> Anomaly {
    Anomaly {
        ops,
        process: None,
        key: None,
        offsets: Vec::new(),
        values: Vec::new(),
        cycle: Vec::new(),
        explanation,
    }
}

/// Checks `history` against the queue anomalies; see [`AnomalyKind`].
pub fn check_queue(history: &History, config: &CheckerConfig) -> QueueReport {
    let facts = Facts::gather(history);
    let mut findings = Findings {
        anomalies: BTreeMap::new(),
        tolerated: BTreeMap::new(),
    };
    let tolerated_values = check_lost_and_unseen(&facts, config, &mut findings);
    check_duplicates(&facts, &mut findings);
    check_inconsistent_offsets(&facts, config, &tolerated_values, &mut findings);
    check_polls(history, &facts, config, &mut findings);
    check_sends(&facts, config, &tolerated_values, &mut findings);
    check_aborted_reads(&facts, &mut findings);
    check_cycles(&facts, &mut findings);

    let valid = findings
        .anomalies
        .keys()
        .all(|kind| config.allowed.contains(kind));
    QueueReport {
        valid,
        anomalies: findings.anomalies,
        tolerated: findings.tolerated,
        stats: stats(&facts),
    }
}

/// Lost writes and unseen writes; returns the writes excused by the crash rule.
fn check_lost_and_unseen(
    facts: &Facts,
    config: &CheckerConfig,
    findings: &mut Findings,
) -> BTreeSet<(Key, Value)> {
    // Per key: observed acked writes as (ack position, offset), by ack position, with the
    // running maximum offset, to answer "highest observed offset acked before position p".
    let mut observed_acks: BTreeMap<Key, Vec<(usize, Offset)>> = BTreeMap::new();
    for (&(key, value), write) in &facts.writes {
        if let (Some(offset), Some(position)) = (write.offset, write.ack_position) {
            if facts.observed.contains(&(key, value)) {
                observed_acks
                    .entry(key)
                    .or_default()
                    .push((position, offset));
            }
        }
    }
    for list in observed_acks.values_mut() {
        list.sort_unstable();
        let mut running_max = Offset::MIN;
        for entry in list.iter_mut() {
            running_max = running_max.max(entry.1);
            entry.1 = running_max;
        }
    }

    let mut tolerated_values = BTreeSet::new();
    for (&(key, value), write) in &facts.writes {
        let (Some(offset), Some(ack_position)) = (write.offset, write.ack_position) else {
            continue;
        };
        if facts.observed.contains(&(key, value)) {
            continue;
        }
        let mut witnesses = vec![facts.index(write.op)];
        let read_past = facts
            .max_read
            .get(&key)
            .filter(|(max_offset, _)| *max_offset >= offset)
            .map(|&(_, op)| op);
        let short_watermark = facts
            .watermarks
            .iter()
            .find(|&&(wm_key, position, high_watermark, _)| {
                wm_key == key && position > ack_position && high_watermark <= offset
            })
            .map(|&(_, _, _, op)| op);
        let (kind, explanation) = match (read_past, short_watermark) {
            (Some(op), _) => {
                witnesses.push(facts.index(op));
                (
                    AnomalyKind::LostWrite,
                    format!(
                        "value {value} acked at offset {offset} of key {key} was never read, yet op {} read at or past that offset",
                        facts.index(op)
                    ),
                )
            }
            (None, Some(op)) => {
                witnesses.push(facts.index(op));
                (
                    AnomalyKind::LostWrite,
                    format!(
                        "value {value} acked at offset {offset} of key {key} was never read, and op {} later saw the log end at or below it",
                        facts.index(op)
                    ),
                )
            }
            (None, None) => (
                AnomalyKind::Unseen,
                format!("value {value} acked at offset {offset} of key {key} was never read"),
            ),
        };
        let found = Anomaly {
            key: Some(key),
            offsets: vec![offset],
            values: vec![value],
            ..anomaly(witnesses, explanation)
        };
        let excused = config.lost_write_allowed_after_crash
            && lost_in_crash_suffix(facts, &observed_acks, key, offset, ack_position);
        if excused {
            tolerated_values.insert((key, value));
            findings.tolerate(kind, found);
        } else {
            findings.add(kind, found);
        }
    }
    tolerated_values
}

/// True when a crash follows the ack and no write of `key` acked before that crash at a
/// higher offset was ever observed: the loss is a suffix of what the crash held.
fn lost_in_crash_suffix(
    facts: &Facts,
    observed_acks: &BTreeMap<Key, Vec<(usize, Offset)>>,
    key: Key,
    offset: Offset,
    ack_position: usize,
) -> bool {
    // The first crash after the ack is the most permissive: later crashes only add writes
    // that must also be lost.
    let Some(&crash_position) = facts
        .crash_positions
        .iter()
        .find(|&&position| position > ack_position)
    else {
        return false;
    };
    let Some(list) = observed_acks.get(&key) else {
        return true;
    };
    let acked_before = list.partition_point(|&(position, _)| position < crash_position);
    match acked_before.checked_sub(1).and_then(|last| list.get(last)) {
        Some(&(_, max_observed_offset)) => max_observed_offset < offset,
        None => true,
    }
}

fn check_duplicates(facts: &Facts, findings: &mut Findings) {
    for (&(key, value), offsets) in &facts.value_offsets {
        if offsets.len() < 2 {
            continue;
        }
        let ops: BTreeSet<u64> = offsets.values().flatten().copied().collect();
        let offset_list: Vec<Offset> = offsets.keys().copied().collect();
        findings.add(
            AnomalyKind::Duplicate,
            Anomaly {
                key: Some(key),
                values: vec![value],
                offsets: offset_list.clone(),
                ..anomaly(
                    ops.into_iter().collect(),
                    format!("value {value} of key {key} appears at offsets {offset_list:?}"),
                )
            },
        );
    }
}

fn check_inconsistent_offsets(
    facts: &Facts,
    config: &CheckerConfig,
    tolerated_values: &BTreeSet<(Key, Value)>,
    findings: &mut Findings,
) {
    for (&(key, offset), values) in &facts.offset_values {
        if values.len() < 2 {
            continue;
        }
        let ops: BTreeSet<u64> = values.values().flatten().copied().collect();
        let value_list: Vec<Value> = values.keys().copied().collect();
        let found = Anomaly {
            key: Some(key),
            offsets: vec![offset],
            values: value_list.clone(),
            ..anomaly(
                ops.into_iter().collect(),
                format!("offset {offset} of key {key} holds values {value_list:?}"),
            )
        };
        let untolerated = value_list
            .iter()
            .filter(|value| !tolerated_values.contains(&(key, **value)))
            .count();
        if config.lost_write_allowed_after_crash && untolerated <= 1 {
            findings.tolerate(AnomalyKind::InconsistentOffsets, found);
        } else {
            findings.add(AnomalyKind::InconsistentOffsets, found);
        }
    }
}

/// Poll-skip and nonmonotonic-poll, per process.
fn check_polls(history: &History, facts: &Facts, config: &CheckerConfig, findings: &mut Findings) {
    enum Item {
        Reset,
        Poll(usize),
    }
    let mut timelines: BTreeMap<ProcessId, Vec<(usize, Item)>> = BTreeMap::new();
    for (op_id, operation) in facts.ops.iter().enumerate() {
        let position = operation
            .completion_position
            .unwrap_or(operation.invoke_position);
        match &operation.body {
            Body::Assign { .. } | Body::Subscribe { .. } => {
                timelines
                    .entry(operation.process)
                    .or_default()
                    .push((position, Item::Reset));
            }
            Body::Poll { .. } | Body::Txn { .. } if operation.outcome == Outcome::Ok => {
                timelines
                    .entry(operation.process)
                    .or_default()
                    .push((position, Item::Poll(op_id)));
            }
            _ => {}
        }
    }
    for event in history.events() {
        if let (Body::Rebalance { .. }, Some(process)) = (&event.body, event.process) {
            timelines
                .entry(process)
                .or_default()
                .push((event.position, Item::Reset));
        }
    }

    for (process, mut timeline) in timelines {
        timeline.sort_by_key(|(position, _)| *position);
        // key -> (last offset polled, op that polled it)
        let mut last: BTreeMap<Key, (Offset, u64)> = BTreeMap::new();
        for (_, item) in timeline {
            let op_id = match item {
                Item::Reset => {
                    if config.reset_on_rebalance {
                        last.clear();
                    }
                    continue;
                }
                Item::Poll(op_id) => op_id,
            };
            let index = facts.index(op_id);
            for mop in facts.ops[op_id].body.micro_ops() {
                let MicroOp::Poll { records } = mop else {
                    continue;
                };
                for (key, list) in records {
                    for (offset, _) in list {
                        if let Some(&(previous, previous_index)) = last.get(&key) {
                            let ops = if previous_index == index {
                                vec![index]
                            } else {
                                vec![previous_index, index]
                            };
                            if offset <= previous {
                                findings.add(
                                    AnomalyKind::NonmonotonicPoll,
                                    Anomaly {
                                        process: Some(process),
                                        key: Some(key),
                                        offsets: vec![previous, offset],
                                        ..anomaly(
                                            ops,
                                            format!("process {process} polled key {key} at offset {previous}, then at {offset}"),
                                        )
                                    },
                                );
                            } else {
                                let skipped = facts.known_offsets_between(key, previous, offset);
                                if let Some(first_skipped) = skipped.first() {
                                    findings.add(
                                        AnomalyKind::PollSkip,
                                        Anomaly {
                                            process: Some(process),
                                            key: Some(key),
                                            offsets: vec![previous, offset],
                                            ..anomaly(
                                                ops,
                                                format!(
                                                    "process {process} polled key {key} at offset {previous}, then at {offset}, skipping {} known offset(s) from {first_skipped}",
                                                    skipped.len()
                                                ),
                                            )
                                        },
                                    );
                                }
                            }
                        }
                        last.insert(key, (offset, index));
                    }
                }
            }
        }
    }
}

/// Nonmonotonic-send, per process and key, over acked sends in order.
/// In page-cache mode, going back below a send that was itself lost in a crash suffix is
/// the same loss seen from the producer, and is tolerated with it.
fn check_sends(
    facts: &Facts,
    config: &CheckerConfig,
    tolerated_values: &BTreeSet<(Key, Value)>,
    findings: &mut Findings,
) {
    let mut last: BTreeMap<(ProcessId, Key), (Offset, u64, Value)> = BTreeMap::new();
    for (op_id, operation) in facts.ops.iter().enumerate() {
        if operation.outcome != Outcome::Ok {
            continue;
        }
        let index = facts.index(op_id);
        let process = operation.process;
        for mop in operation.body.micro_ops() {
            let MicroOp::Send {
                key,
                value,
                offset: Some(offset),
            } = mop
            else {
                continue;
            };
            if let Some(&(previous, previous_index, previous_value)) = last.get(&(process, key)) {
                if offset <= previous {
                    let ops = if previous_index == index {
                        vec![index]
                    } else {
                        vec![previous_index, index]
                    };
                    let found = Anomaly {
                        process: Some(process),
                        key: Some(key),
                        offsets: vec![previous, offset],
                        values: vec![previous_value, value],
                        ..anomaly(
                            ops,
                            format!("process {process} sent to key {key} at offset {previous}, then at {offset}"),
                        )
                    };
                    if config.lost_write_allowed_after_crash
                        && tolerated_values.contains(&(key, previous_value))
                    {
                        findings.tolerate(AnomalyKind::NonmonotonicSend, found);
                    } else {
                        findings.add(AnomalyKind::NonmonotonicSend, found);
                    }
                }
            }
            last.insert((process, key), (offset, index, value));
        }
    }
}

/// Aborted reads (G1a): a read of a value whose send failed definitely.
fn check_aborted_reads(facts: &Facts, findings: &mut Findings) {
    let mut seen: BTreeSet<(usize, Key, Value)> = BTreeSet::new();
    for read in &facts.reads {
        let Some(write) = facts.writes.get(&(read.key, read.value)) else {
            continue;
        };
        if write.outcome != Outcome::Fail || !seen.insert((read.op, read.key, read.value)) {
            continue;
        }
        let source = if matches!(facts.ops[write.op].body, Body::Txn { .. }) {
            "an aborted transaction"
        } else {
            "a failed send"
        };
        findings.add(
            AnomalyKind::G1a,
            Anomaly {
                key: Some(read.key),
                offsets: vec![read.offset],
                values: vec![read.value],
                ..anomaly(
                    vec![facts.index(write.op), facts.index(read.op)],
                    format!(
                        "op {} read value {} of key {} at offset {}, written by {source} (op {})",
                        facts.index(read.op),
                        read.value,
                        read.key,
                        read.offset,
                        facts.index(write.op)
                    ),
                )
            },
        );
    }
}

/// G0 and G1c: cycles in the ww + wr dependency graph of ok/info operations.
fn check_cycles(facts: &Facts, findings: &mut Findings) {
    let is_node = |op: usize| facts.ops[op].outcome != Outcome::Fail;
    let mut graph: Graph<Dep> = Graph::new();

    // ww: consecutive versions of each key, over offsets holding exactly one value that
    // some non-failed operation sent.
    let mut previous: Option<(Key, usize)> = None;
    for (&(key, _offset), values) in &facts.offset_values {
        if values.len() != 1 {
            continue;
        }
        let Some((&value, _)) = values.iter().next() else {
            continue;
        };
        let Some(write) = facts.writes.get(&(key, value)).filter(|w| is_node(w.op)) else {
            continue;
        };
        if let Some((previous_key, previous_op)) = previous {
            if previous_key == key {
                graph.add_edge(
                    previous_op,
                    write.op,
                    Dep {
                        kind: DepKind::Ww,
                        key,
                        value,
                    },
                );
            }
        }
        previous = Some((key, write.op));
    }
    // wr: writer -> reader.
    for read in &facts.reads {
        if let Some(write) = facts.writes.get(&(read.key, read.value)) {
            if is_node(write.op) {
                graph.add_edge(
                    write.op,
                    read.op,
                    Dep {
                        kind: DepKind::Wr,
                        key: read.key,
                        value: read.value,
                    },
                );
            }
        }
    }

    for scc in graph.nontrivial_sccs() {
        let ww_only = graph.filtered(&scc, |dep| dep.kind == DepKind::Ww);
        let ww_cycle = ww_only
            .nontrivial_sccs()
            .first()
            .and_then(|component| component.iter().next().copied())
            .and_then(|start| ww_only.cycle_through(start));
        let (kind, cycle, cycle_graph) = match ww_cycle {
            Some(cycle) => (AnomalyKind::G0, cycle, &ww_only),
            None => {
                let Some(cycle) = scc
                    .iter()
                    .next()
                    .and_then(|&start| graph.cycle_through(start))
                else {
                    continue;
                };
                (AnomalyKind::G1c, cycle, &graph)
            }
        };
        let mut steps = Vec::new();
        for (position, &op) in cycle.iter().enumerate() {
            let next = cycle[(position + 1) % cycle.len()];
            let Some(dep) = cycle_graph
                .labels(op, next)
                .and_then(|labels| labels.iter().next())
            else {
                continue;
            };
            steps.push(CycleStep {
                op: facts.index(op),
                edge: dep.kind,
                key: dep.key,
                value: dep.value,
            });
        }
        let ops: Vec<u64> = cycle.iter().map(|&op| facts.index(op)).collect();
        let rendered: Vec<String> = steps
            .iter()
            .map(|step| {
                format!(
                    "{} -{:?}({}:{})->",
                    step.op, step.edge, step.key, step.value
                )
            })
            .collect();
        findings.add(
            kind,
            Anomaly {
                cycle: steps,
                ..anomaly(
                    ops,
                    format!(
                        "dependency cycle among {} ops: {} back to the first",
                        scc.len(),
                        rendered.join(" ")
                    ),
                )
            },
        );
    }
}

fn stats(facts: &Facts) -> QueueStats {
    let mut stats = QueueStats {
        operations: facts.ops.len() as u64,
        records_read: facts.reads.len() as u64,
        ..QueueStats::default()
    };
    for write in facts.writes.values() {
        match write.outcome {
            Outcome::Ok => stats.sends_ok += 1,
            Outcome::Fail => stats.sends_failed += 1,
            Outcome::Info => stats.sends_indeterminate += 1,
        }
    }
    stats.polls_ok = facts
        .ops
        .iter()
        .filter(|op| op.outcome == Outcome::Ok && matches!(op.body, Body::Poll { .. }))
        .count() as u64;
    stats.lag = realtime_lag(facts);
    stats
}

fn realtime_lag(facts: &Facts) -> LagStats {
    // Per key: acked writes by offset, with the suffix minimum of their ack times.
    let mut acks: BTreeMap<Key, Vec<(Offset, i64)>> = BTreeMap::new();
    for (&(key, _), write) in &facts.writes {
        if let (Some(offset), Some(time_ns)) = (write.offset, write.ack_time_ns) {
            acks.entry(key).or_default().push((offset, time_ns));
        }
    }
    for list in acks.values_mut() {
        list.sort_unstable();
        let mut suffix_min = i64::MAX;
        for entry in list.iter_mut().rev() {
            suffix_min = suffix_min.min(entry.1);
            entry.1 = suffix_min;
        }
    }

    let mut lags_ns: Vec<i64> = Vec::new();
    let mut tracked: BTreeMap<ProcessId, BTreeSet<Key>> = BTreeMap::new();
    let mut highest: BTreeMap<(ProcessId, Key), Offset> = BTreeMap::new();
    for operation in facts.ops {
        let process = operation.process;
        if let Body::Assign { keys } = &operation.body {
            tracked
                .entry(process)
                .or_default()
                .extend(keys.iter().copied());
            continue;
        }
        if operation.outcome != Outcome::Ok {
            continue;
        }
        let mut polled = false;
        for mop in operation.body.micro_ops() {
            if let MicroOp::Poll { records } = mop {
                polled = true;
                for (key, list) in records {
                    tracked.entry(process).or_default().insert(key);
                    for (offset, _) in list {
                        let entry = highest.entry((process, key)).or_insert(offset);
                        *entry = (*entry).max(offset);
                    }
                }
            }
        }
        if !polled {
            continue;
        }
        let invoke_time_ns = operation.invoke_time_ns;
        let mut lag_ns = 0i64;
        for &key in tracked.get(&process).into_iter().flatten() {
            let Some(list) = acks.get(&key) else {
                continue;
            };
            let seen = highest.get(&(process, key)).copied().unwrap_or(-1);
            let first_missed = list.partition_point(|&(offset, _)| offset <= seen);
            if let Some(&(_, earliest_ack_ns)) = list.get(first_missed) {
                if earliest_ack_ns < invoke_time_ns {
                    lag_ns = lag_ns.max(invoke_time_ns.saturating_sub(earliest_ack_ns));
                }
            }
        }
        lags_ns.push(lag_ns);
    }
    lags_ns.sort_unstable();
    let percentile = |p: usize| -> i64 {
        if lags_ns.is_empty() {
            return 0;
        }
        let rank = (p * lags_ns.len()).div_ceil(100).max(1);
        lags_ns[rank.min(lags_ns.len()) - 1]
    };
    LagStats {
        polls: lags_ns.len() as u64,
        lag_ns_max: lags_ns.last().copied().unwrap_or(0),
        lag_ns_p50: percentile(50),
        lag_ns_p99: percentile(99),
    }
}
