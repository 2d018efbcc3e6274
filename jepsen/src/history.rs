//! The history model: what clients invoked, what came back, and what the nemesis did.
//!
//! This module owns the on-disk format (JSON lines), the in-memory [`History`], and its
//! validation. A `History` is only ever constructed through validation, so the checkers
//! may rely on its invariants (every completion pairs with exactly one earlier invoke by
//! the same process, a process has at most one operation in flight, offsets are
//! non-negative, each sent `(key, value)` is unique). It must never panic on bad input:
//! every malformed line or history is a [`HistoryError`].
//!
//! # Schema (one JSON object per line)
//!
//! Common fields:
//! - `index` (u64, strictly increasing through the file),
//! - `type`: `"invoke" | "ok" | "fail" | "info"` (`info` = indeterminate),
//! - `process` (u64; required for client operations, optional for nemesis events),
//! - `time_ns` (i64, monotonic nanoseconds),
//! - `f`: the operation, with its own fields flattened into the object:
//!
//! | `f` | fields | meaning |
//! |---|---|---|
//! | `send` | `key`, `value`, `offset` (on ok) | produce one record; values are unique per key |
//! | `poll` | `records`: `{"<key>": [[offset, value], ...]}` (on ok) | one consumer poll |
//! | `txn` | `mops`: list of `{"f":"send",...}` / `{"f":"poll",...}` | a Kafka transaction |
//! | `read` | `key`, `from_offset`, `values` (on ok), `high_watermark` (optional) | a fetch at an explicit offset |
//! | `latest_offset` | `key`, `offset` (on ok) | ListOffsets(latest): the next offset |
//! | `assign` / `subscribe` | `keys` | consumer (re)assignment, an ordinary client op |
//! | `rebalance` | `keys` (newly assigned) | event: a process's consumer was rebalanced |
//! | `crash` | `node` | event: a node was killed (unsynced data may be lost) |
//! | `fault` | `name`, `detail` | event: any other nemesis action |
//!
//! A key names a partition; the harness maps `(topic, partition)` to a `u64` key.
//! Events (`rebalance`, `crash`, `fault`) are single lines of type `info`, never paired,
//! and may occur while the process has an operation in flight (a rebalance happens
//! inside a poll). Every other `f` is a client operation: an `invoke` line followed by at
//! most one completion (`ok`/`fail`/`info`) by the same process; an invoke without a
//! completion is indeterminate. A completion repeats the invoke's `f` and identity
//! (`key`/`value` of sends, `key`/`from_offset` of reads) and adds the results.
//!
//! ```text
//! {"index":0,"type":"invoke","process":1,"time_ns":1000,"f":"send","key":0,"value":17}
//! {"index":1,"type":"ok","process":1,"time_ns":2000,"f":"send","key":0,"value":17,"offset":0}
//! {"index":2,"type":"invoke","process":2,"time_ns":3000,"f":"poll"}
//! {"index":3,"type":"ok","process":2,"time_ns":4000,"f":"poll","records":{"0":[[0,17]]}}
//! {"index":4,"type":"info","time_ns":5000,"f":"crash","node":"n1"}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};

use serde::{Deserialize, Deserializer, Serialize};

/// A partition: `(topic, partition)` mapped to an integer by the harness.
pub type Key = u64;
/// A record's value: unique per key across the whole history.
pub type Value = i64;
/// A Kafka offset.
pub type Offset = i64;
/// A client process (one logical thread, one operation at a time).
pub type ProcessId = u64;

/// Records returned by a poll, per key, in the order the client received them.
pub type PollRecords = BTreeMap<Key, Vec<(Offset, Value)>>;

/// The type of a history line.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Indeterminate: may or may not have taken effect.
    Info,
}

/// One micro-operation inside a transaction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum MicroOp {
    Send {
        key: Key,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Offset>,
    },
    Poll {
        #[serde(default, deserialize_with = "deserialize_records")]
        records: PollRecords,
    },
}

/// What a history line is about (the `f` field and its arguments/results).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Body {
    Send {
        key: Key,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Offset>,
    },
    Poll {
        #[serde(default, deserialize_with = "deserialize_records")]
        records: PollRecords,
    },
    Txn {
        mops: Vec<MicroOp>,
    },
    Read {
        key: Key,
        from_offset: Offset,
        #[serde(default)]
        values: Vec<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high_watermark: Option<Offset>,
    },
    LatestOffset {
        key: Key,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Offset>,
    },
    Assign {
        #[serde(default)]
        keys: Vec<Key>,
    },
    Subscribe {
        #[serde(default)]
        keys: Vec<Key>,
    },
    Rebalance {
        #[serde(default)]
        keys: Vec<Key>,
    },
    Crash {
        #[serde(default)]
        node: String,
    },
    Fault {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// serde buffers internally tagged enums, and buffered content does not turn the string
/// map keys of JSON into integers, so the keys of `records` are parsed here.
fn deserialize_records<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<PollRecords, D::Error> {
    let raw: BTreeMap<String, Vec<(Offset, Value)>> = BTreeMap::deserialize(deserializer)?;
    let mut records = PollRecords::new();
    for (key_text, list) in raw {
        let key: Key = key_text.parse().map_err(|_| {
            serde::de::Error::custom(format!("records key {key_text:?} is not a u64"))
        })?;
        records.insert(key, list);
    }
    Ok(records)
}

impl Body {
    /// Events are standalone `info` lines, not paired invoke/completions.
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Body::Rebalance { .. } | Body::Crash { .. } | Body::Fault { .. }
        )
    }

    /// The `f` name, as in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Send { .. } => "send",
            Body::Poll { .. } => "poll",
            Body::Txn { .. } => "txn",
            Body::Read { .. } => "read",
            Body::LatestOffset { .. } => "latest_offset",
            Body::Assign { .. } => "assign",
            Body::Subscribe { .. } => "subscribe",
            Body::Rebalance { .. } => "rebalance",
            Body::Crash { .. } => "crash",
            Body::Fault { .. } => "fault",
        }
    }

    /// The micro-operations this body performs on the log (sends and polls): a send or a
    /// poll is a one-micro-op transaction. Reads, offsets queries and markers have none.
    pub fn micro_ops(&self) -> Vec<MicroOp> {
        match self {
            Body::Send { key, value, offset } => vec![MicroOp::Send {
                key: *key,
                value: *value,
                offset: *offset,
            }],
            Body::Poll { records } => vec![MicroOp::Poll {
                records: records.clone(),
            }],
            Body::Txn { mops } => mops.clone(),
            _ => Vec::new(),
        }
    }

    /// The body with every result removed: what the operation asked for.
    fn without_results(&self) -> Body {
        match self {
            Body::Send { key, value, .. } => Body::Send {
                key: *key,
                value: *value,
                offset: None,
            },
            Body::Poll { .. } => Body::Poll {
                records: PollRecords::new(),
            },
            Body::Txn { mops } => Body::Txn {
                mops: mops
                    .iter()
                    .map(|mop| match mop {
                        MicroOp::Send { key, value, .. } => MicroOp::Send {
                            key: *key,
                            value: *value,
                            offset: None,
                        },
                        MicroOp::Poll { .. } => MicroOp::Poll {
                            records: PollRecords::new(),
                        },
                    })
                    .collect(),
            },
            Body::Read {
                key, from_offset, ..
            } => Body::Read {
                key: *key,
                from_offset: *from_offset,
                values: Vec::new(),
                high_watermark: None,
            },
            Body::LatestOffset { key, .. } => Body::LatestOffset {
                key: *key,
                offset: None,
            },
            other => other.clone(),
        }
    }
}

/// One line of a history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub index: u64,
    #[serde(rename = "type")]
    pub op_type: OpType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessId>,
    pub time_ns: i64,
    #[serde(flatten)]
    pub body: Body,
}

/// How a client operation ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    /// Completed with `info`, or never completed.
    Info,
}

/// A client operation: an invoke paired with its completion (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub process: ProcessId,
    pub outcome: Outcome,
    pub invoke_index: u64,
    pub completion_index: Option<u64>,
    /// Position of the invoke line in the history (0-based); defines real-time order.
    pub invoke_position: usize,
    pub completion_position: Option<usize>,
    pub invoke_time_ns: i64,
    pub completion_time_ns: Option<i64>,
    /// The completion's body when `ok`; otherwise the invoke's body without results.
    pub body: Body,
}

impl Operation {
    /// The index anomalies cite: the completion line when there is one.
    pub fn report_index(&self) -> u64 {
        self.completion_index.unwrap_or(self.invoke_index)
    }

    /// Where the operation ends in history order; `None` when it never completed.
    pub fn end_position(&self) -> Option<usize> {
        self.completion_position
    }
}

/// A standalone event line (rebalance, crash, fault).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub index: u64,
    pub position: usize,
    pub process: Option<ProcessId>,
    pub time_ns: i64,
    pub body: Body,
}

/// Why a history could not be loaded or is malformed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: invalid JSON: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("serialization failed: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("op {index}: index is not greater than the previous index {previous}")]
    NonIncreasingIndex { index: u64, previous: u64 },
    #[error("op {index}: client operation `{f}` has no process")]
    MissingProcess { index: u64, f: &'static str },
    #[error("op {index}: event `{f}` must have type info")]
    EventNotInfo { index: u64, f: &'static str },
    #[error("op {index}: process {process} invoked while op {outstanding} is still in flight")]
    ConcurrentInvoke {
        index: u64,
        process: ProcessId,
        outstanding: u64,
    },
    #[error("op {index}: completion by process {process} without a pending invoke")]
    CompletionWithoutInvoke { index: u64, process: ProcessId },
    #[error("op {index}: completion does not match invoke {invoke_index}: {reason}")]
    MismatchedCompletion {
        index: u64,
        invoke_index: u64,
        reason: String,
    },
    #[error("op {index}: completion time {time_ns} ns is before its invoke {invoke_index} at {invoke_time_ns} ns")]
    CompletionBeforeInvoke {
        index: u64,
        invoke_index: u64,
        time_ns: i64,
        invoke_time_ns: i64,
    },
    #[error("op {index}: ok `{f}` is missing its offset")]
    MissingOffset { index: u64, f: &'static str },
    #[error("op {index}: negative offset {offset}")]
    NegativeOffset { index: u64, offset: Offset },
    #[error("op {index}: value {value} was already sent to key {key} by op {first_index}")]
    DuplicateSendValue {
        index: u64,
        key: Key,
        value: Value,
        first_index: u64,
    },
}

/// A validated history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Op>,
    operations: Vec<Operation>,
    events: Vec<Event>,
}

impl History {
    /// Validates `ops` (in history order) and pairs invokes with completions.
    pub fn from_ops(ops: Vec<Op>) -> Result<History, HistoryError> {
        let (operations, events) = validate(&ops)?;
        Ok(History {
            ops,
            operations,
            events,
        })
    }

    /// Reads JSON lines (blank lines are skipped) and validates them.
    pub fn load<R: Read>(reader: R) -> Result<History, HistoryError> {
        let mut ops = Vec::new();
        for (line_number, line) in BufReader::new(reader).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(&line).map_err(|source| HistoryError::Json {
                line: line_number + 1,
                source,
            })?;
            ops.push(op);
        }
        History::from_ops(ops)
    }

    /// Writes the history as JSON lines.
    pub fn save<W: Write>(&self, mut writer: W) -> Result<(), HistoryError> {
        for op in &self.ops {
            let line = serde_json::to_string(op).map_err(HistoryError::Serialize)?;
            writer.write_all(line.as_bytes())?;
            writer.write_all(b"\n")?;
        }
        writer.flush()?;
        Ok(())
    }

    /// The raw lines, in history order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Client operations, in invoke order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Standalone events (rebalance, crash, fault), in history order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn validate(ops: &[Op]) -> Result<(Vec<Operation>, Vec<Event>), HistoryError> {
    let mut operations: Vec<Operation> = Vec::new();
    let mut events = Vec::new();
    // process -> position in `operations` of its in-flight op.
    let mut in_flight: BTreeMap<ProcessId, usize> = BTreeMap::new();
    let mut sent: BTreeMap<(Key, Value), u64> = BTreeMap::new();
    let mut previous_index: Option<u64> = None;

    for (position, op) in ops.iter().enumerate() {
        if let Some(previous) = previous_index {
            if op.index <= previous {
                return Err(HistoryError::NonIncreasingIndex {
                    index: op.index,
                    previous,
                });
            }
        }
        previous_index = Some(op.index);
        check_offsets(op)?;

        if op.body.is_event() {
            if op.op_type != OpType::Info {
                return Err(HistoryError::EventNotInfo {
                    index: op.index,
                    f: op.body.name(),
                });
            }
            if matches!(op.body, Body::Rebalance { .. }) && op.process.is_none() {
                return Err(HistoryError::MissingProcess {
                    index: op.index,
                    f: op.body.name(),
                });
            }
            events.push(Event {
                index: op.index,
                position,
                process: op.process,
                time_ns: op.time_ns,
                body: op.body.clone(),
            });
            continue;
        }

        let process = op.process.ok_or(HistoryError::MissingProcess {
            index: op.index,
            f: op.body.name(),
        })?;
        match op.op_type {
            OpType::Invoke => {
                if let Some(&outstanding) = in_flight.get(&process) {
                    let outstanding_index = operations
                        .get(outstanding)
                        .map_or(0, |operation| operation.invoke_index);
                    return Err(HistoryError::ConcurrentInvoke {
                        index: op.index,
                        process,
                        outstanding: outstanding_index,
                    });
                }
                for mop in op.body.micro_ops() {
                    if let MicroOp::Send { key, value, .. } = mop {
                        if let Some(&first_index) = sent.get(&(key, value)) {
                            return Err(HistoryError::DuplicateSendValue {
                                index: op.index,
                                key,
                                value,
                                first_index,
                            });
                        }
                        sent.insert((key, value), op.index);
                    }
                }
                in_flight.insert(process, operations.len());
                operations.push(Operation {
                    process,
                    outcome: Outcome::Info,
                    invoke_index: op.index,
                    completion_index: None,
                    invoke_position: position,
                    completion_position: None,
                    invoke_time_ns: op.time_ns,
                    completion_time_ns: None,
                    body: op.body.without_results(),
                });
            }
            completion_type => {
                let slot =
                    in_flight
                        .remove(&process)
                        .ok_or(HistoryError::CompletionWithoutInvoke {
                            index: op.index,
                            process,
                        })?;
                let operation =
                    operations
                        .get_mut(slot)
                        .ok_or(HistoryError::CompletionWithoutInvoke {
                            index: op.index,
                            process,
                        })?;
                if let Err(reason) = same_request(&operation.body, &op.body) {
                    return Err(HistoryError::MismatchedCompletion {
                        index: op.index,
                        invoke_index: operation.invoke_index,
                        reason,
                    });
                }
                if op.time_ns < operation.invoke_time_ns {
                    return Err(HistoryError::CompletionBeforeInvoke {
                        index: op.index,
                        invoke_index: operation.invoke_index,
                        time_ns: op.time_ns,
                        invoke_time_ns: operation.invoke_time_ns,
                    });
                }
                operation.completion_index = Some(op.index);
                operation.completion_position = Some(position);
                operation.completion_time_ns = Some(op.time_ns);
                operation.outcome = match completion_type {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                if operation.outcome == Outcome::Ok {
                    check_ok_results(op)?;
                    operation.body = op.body.clone();
                }
            }
        }
    }
    Ok((operations, events))
}

fn check_offsets(op: &Op) -> Result<(), HistoryError> {
    let negative = |offset: Offset| HistoryError::NegativeOffset {
        index: op.index,
        offset,
    };
    let check_records = |records: &PollRecords| -> Result<(), HistoryError> {
        for list in records.values() {
            for &(offset, _) in list {
                if offset < 0 {
                    return Err(negative(offset));
                }
            }
        }
        Ok(())
    };
    let check = |offset: Option<Offset>| match offset {
        Some(offset) if offset < 0 => Err(negative(offset)),
        _ => Ok(()),
    };
    match &op.body {
        Body::Send { offset, .. } | Body::LatestOffset { offset, .. } => check(*offset),
        Body::Poll { records } => check_records(records),
        Body::Txn { mops } => {
            for mop in mops {
                match mop {
                    MicroOp::Send { offset, .. } => check(*offset)?,
                    MicroOp::Poll { records } => check_records(records)?,
                }
            }
            Ok(())
        }
        Body::Read {
            from_offset,
            high_watermark,
            ..
        } => {
            check(Some(*from_offset))?;
            check(*high_watermark)
        }
        _ => Ok(()),
    }
}

fn check_ok_results(op: &Op) -> Result<(), HistoryError> {
    let missing = |f: &'static str| HistoryError::MissingOffset { index: op.index, f };
    match &op.body {
        Body::Send { offset: None, .. } => Err(missing("send")),
        Body::LatestOffset { offset: None, .. } => Err(missing("latest_offset")),
        Body::Txn { mops } => {
            let unacked = mops
                .iter()
                .any(|mop| matches!(mop, MicroOp::Send { offset: None, .. }));
            if unacked {
                Err(missing("txn"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// A completion must repeat what was asked: same `f`, same sends, same read position.
fn same_request(invoke: &Body, completion: &Body) -> Result<(), String> {
    if invoke.name() != completion.name() {
        return Err(format!(
            "invoke is `{}` but completion is `{}`",
            invoke.name(),
            completion.name()
        ));
    }
    let asked = invoke.without_results();
    let answered = completion.without_results();
    match (&asked, &answered) {
        (Body::Assign { .. }, Body::Assign { .. })
        | (Body::Subscribe { .. }, Body::Subscribe { .. }) => Ok(()),
        _ if asked == answered => Ok(()),
        _ => Err(format!(
            "request differs: invoke {asked:?}, completion {answered:?}"
        )),
    }
}

/// Builds histories in code (tests, the simulator). Times advance by 1 ms per line unless
/// set with [`HistoryBuilder::at_ns`].
#[derive(Debug, Default)]
pub struct HistoryBuilder {
    ops: Vec<Op>,
    time_ns: i64,
}

impl HistoryBuilder {
    pub const STEP_NS: i64 = 1_000_000;

    pub fn new() -> HistoryBuilder {
        HistoryBuilder::default()
    }

    /// Sets the time of the next line.
    pub fn at_ns(&mut self, time_ns: i64) -> &mut HistoryBuilder {
        self.time_ns = time_ns;
        self
    }

    /// Appends one raw line; returns its index.
    pub fn push(&mut self, op_type: OpType, process: Option<ProcessId>, body: Body) -> u64 {
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            op_type,
            process,
            time_ns: self.time_ns,
            body,
        });
        self.time_ns += Self::STEP_NS;
        index
    }

    pub fn invoke(&mut self, process: ProcessId, body: Body) -> u64 {
        self.push(OpType::Invoke, Some(process), body)
    }

    pub fn ok(&mut self, process: ProcessId, body: Body) -> u64 {
        self.push(OpType::Ok, Some(process), body)
    }

    pub fn fail(&mut self, process: ProcessId, body: Body) -> u64 {
        self.push(OpType::Fail, Some(process), body)
    }

    pub fn info(&mut self, process: ProcessId, body: Body) -> u64 {
        self.push(OpType::Info, Some(process), body)
    }

    /// A standalone event line (type info).
    pub fn event(&mut self, process: Option<ProcessId>, body: Body) -> u64 {
        self.push(OpType::Info, process, body)
    }

    /// Invoke then complete `send` at once; `offset` is `Some` for ok. Returns the
    /// completion's index.
    pub fn send(
        &mut self,
        process: ProcessId,
        key: Key,
        value: Value,
        outcome: Outcome,
        offset: Option<Offset>,
    ) -> u64 {
        self.invoke(process, send(key, value, None));
        let body = send(key, value, offset);
        match outcome {
            Outcome::Ok => self.ok(process, body),
            Outcome::Fail => self.fail(process, body),
            Outcome::Info => self.info(process, body),
        }
    }

    /// Invoke then complete `poll` (ok) at once. Returns the completion's index.
    pub fn poll(&mut self, process: ProcessId, records: &[(Key, &[(Offset, Value)])]) -> u64 {
        self.invoke(process, poll(&[]));
        self.ok(process, poll(records))
    }

    /// Invoke then complete a transaction at once. Returns the completion's index.
    pub fn txn(&mut self, process: ProcessId, mops: Vec<MicroOp>, outcome: Outcome) -> u64 {
        let body = Body::Txn { mops };
        self.invoke(process, body.without_results());
        match outcome {
            Outcome::Ok => self.ok(process, body),
            Outcome::Fail => self.fail(process, body),
            Outcome::Info => self.info(process, body),
        }
    }

    /// The lines so far, unvalidated.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn build(&self) -> Result<History, HistoryError> {
        History::from_ops(self.ops.clone())
    }
}

/// A `send` body.
pub fn send(key: Key, value: Value, offset: Option<Offset>) -> Body {
    Body::Send { key, value, offset }
}

/// A `poll` body from `(key, [(offset, value)])` pairs.
pub fn poll(records: &[(Key, &[(Offset, Value)])]) -> Body {
    Body::Poll {
        records: poll_records(records),
    }
}

/// Poll records from `(key, [(offset, value)])` pairs.
pub fn poll_records(records: &[(Key, &[(Offset, Value)])]) -> PollRecords {
    let mut map = PollRecords::new();
    for (key, list) in records {
        map.entry(*key).or_default().extend_from_slice(list);
    }
    map
}

/// All keys mentioned by send/poll micro-ops of `body`.
pub fn keys_touched(body: &Body) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    for mop in body.micro_ops() {
        match mop {
            MicroOp::Send { key, .. } => {
                keys.insert(key);
            }
            MicroOp::Poll { records } => keys.extend(records.keys().copied()),
        }
    }
    keys
}
