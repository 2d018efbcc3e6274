//! Linearizability of each partition's log, checked like Porcupine.
//!
//! Owns the sequential model of a partition (an append-only log of values) and the
//! Wing–Gong search with Lowe's improvements: just-in-time linearization over a linked
//! list of call/return entries, and a cache of (linearized-set bitset, model state) pairs
//! already explored. The history is partitioned by key, which is sound because operations
//! on different keys commute. The search is bounded by a caller-given step count; it never
//! reads a clock.
//!
//! # Model (per key)
//!
//! State: the log `log`, a list of values; offsets are positions in it.
//! - `Append(value) -> offset`: pushes `value`; an acked send must report `offset ==
//!   log.len()` before the push. An indeterminate send (info, or never completed) may take
//!   effect at any point after its invoke, or never; a failed send never does.
//! - `Read(from_offset) -> values[, high_watermark]`: a fetch returning `n` values must
//!   return exactly `log[from..from + n]` (a fetch may stop early, e.g. at max bytes, so any
//!   `n` is allowed, including 0 at or beyond the end). When it also reports the high
//!   watermark, that must equal `log.len()`: this is what makes a stale read visible.
//! - `LatestOffset -> offset`: must equal `log.len()` (the next offset).
//!
//! Histories map onto the model as: `send` = Append; `read` = Read; `latest_offset` =
//! LatestOffset; an `ok` `poll` = for each key, one Read without high watermark per
//! maximal run of consecutive offsets (splitting a poll weakens the check, never makes it
//! report a false violation). Reads and offset queries that did not complete `ok` carry no
//! information and are dropped. Keys touched by a `txn` are skipped: transaction markers
//! occupy offsets, so offsets are no longer positions of appended values.
//!
//! Every partition is assumed to start empty (offset 0) when the history starts: the
//! harness must use fresh topics, as Jepsen does.
//!
//! Real-time order is history order: op A precedes op B when A's completion line comes
//! before B's invoke line.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::history::{Body, History, Key, MicroOp, Offset, Outcome, ProcessId, Value};

/// A model operation with its observed result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum LinearOpKind {
    /// `offset` is `None` when the append is indeterminate.
    Append {
        value: Value,
        offset: Option<Offset>,
    },
    Read {
        from_offset: Offset,
        values: Vec<Value>,
        high_watermark: Option<Offset>,
    },
    LatestOffset {
        offset: Offset,
    },
}

/// One operation of one partition, as the checker sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LinearOp {
    pub key: Key,
    pub process: ProcessId,
    pub invoke_index: u64,
    /// `None` for an indeterminate operation: it may linearize at any time after its
    /// invoke, or never.
    pub completion_index: Option<u64>,
    /// Position of the invoke in the history (real-time order).
    pub invoke_position: usize,
    /// Position of the completion; `None` = unbounded.
    pub completion_position: Option<usize>,
    pub kind: LinearOpKind,
}

/// The verdict.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum LinearResult {
    Linearizable,
    /// The first partition (by key) that is not linearizable: the longest partial
    /// linearization the search reached, in linearization order, and the operation whose
    /// completion came before it could be placed after them.
    NotLinearizable {
        partition: Key,
        linearized: Vec<LinearOp>,
        unplaceable: LinearOp,
    },
    /// A partition's search ran out of steps (and none was found non-linearizable).
    Unknown {
        partition: Key,
        steps: u64,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LinearReport {
    pub result: LinearResult,
    pub partitions_checked: Vec<Key>,
    /// Keys touched by transactions; see the module docs.
    pub partitions_skipped: Vec<Key>,
    pub steps_total: u64,
}

/// The verdict for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionVerdict {
    Linearizable {
        steps: u64,
    },
    NotLinearizable {
        linearized: Vec<LinearOp>,
        unplaceable: LinearOp,
        steps: u64,
    },
    Unknown {
        steps: u64,
    },
}

/// Checks every partition of `history`, each with at most `step_budget_per_partition`
/// search steps.
pub fn check_linearizable(history: &History, step_budget_per_partition: u64) -> LinearReport {
    let (partitions, skipped) = partition_ops(history);
    let mut steps_total = 0u64;
    let mut not_linearizable = None;
    let mut unknown = None;
    for (&key, ops) in &partitions {
        match check_partition(ops, step_budget_per_partition) {
            PartitionVerdict::Linearizable { steps } => {
                steps_total = steps_total.saturating_add(steps);
            }
            PartitionVerdict::NotLinearizable {
                linearized,
                unplaceable,
                steps,
            } => {
                steps_total = steps_total.saturating_add(steps);
                not_linearizable.get_or_insert(LinearResult::NotLinearizable {
                    partition: key,
                    linearized,
                    unplaceable,
                });
            }
            PartitionVerdict::Unknown { steps } => {
                steps_total = steps_total.saturating_add(steps);
                unknown.get_or_insert(LinearResult::Unknown {
                    partition: key,
                    steps,
                });
            }
        }
    }
    LinearReport {
        result: not_linearizable
            .or(unknown)
            .unwrap_or(LinearResult::Linearizable),
        partitions_checked: partitions.keys().copied().collect(),
        partitions_skipped: skipped.into_iter().collect(),
        steps_total,
    }
}

/// Maps the history onto model operations, per key; also returns the skipped keys.
pub fn partition_ops(history: &History) -> (BTreeMap<Key, Vec<LinearOp>>, BTreeSet<Key>) {
    let mut partitions: BTreeMap<Key, Vec<LinearOp>> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for operation in history.operations() {
        let ok = operation.outcome == Outcome::Ok;
        let make = |key: Key, kind: LinearOpKind| LinearOp {
            key,
            process: operation.process,
            invoke_index: operation.invoke_index,
            completion_index: operation.completion_index,
            invoke_position: operation.invoke_position,
            completion_position: operation.completion_position,
            kind,
        };
        match &operation.body {
            Body::Send { key, value, offset } => match operation.outcome {
                Outcome::Fail => {}
                Outcome::Ok => partitions.entry(*key).or_default().push(make(
                    *key,
                    LinearOpKind::Append {
                        value: *value,
                        offset: *offset,
                    },
                )),
                Outcome::Info => partitions.entry(*key).or_default().push(LinearOp {
                    completion_index: None,
                    completion_position: None,
                    ..make(
                        *key,
                        LinearOpKind::Append {
                            value: *value,
                            offset: None,
                        },
                    )
                }),
            },
            Body::Read {
                key,
                from_offset,
                values,
                high_watermark,
                // An empty read without a watermark is true in every state: skipped.
            } if ok && (!values.is_empty() || high_watermark.is_some()) => {
                partitions.entry(*key).or_default().push(make(
                    *key,
                    LinearOpKind::Read {
                        from_offset: *from_offset,
                        values: values.clone(),
                        high_watermark: *high_watermark,
                    },
                ));
            }
            Body::LatestOffset {
                key,
                offset: Some(offset),
            } if ok => partitions
                .entry(*key)
                .or_default()
                .push(make(*key, LinearOpKind::LatestOffset { offset: *offset })),
            Body::Poll { records } if ok => {
                for (&key, list) in records {
                    for (from_offset, values) in contiguous_runs(list) {
                        partitions.entry(key).or_default().push(make(
                            key,
                            LinearOpKind::Read {
                                from_offset,
                                values,
                                high_watermark: None,
                            },
                        ));
                    }
                }
            }
            Body::Txn { mops } => {
                for mop in mops {
                    match mop {
                        MicroOp::Send { key, .. } => {
                            skipped.insert(*key);
                        }
                        MicroOp::Poll { records } => skipped.extend(records.keys().copied()),
                    }
                }
            }
            _ => {}
        }
    }
    partitions.retain(|key, _| !skipped.contains(key));
    (partitions, skipped)
}

/// Splits `(offset, value)` records into runs of consecutive offsets.
fn contiguous_runs(list: &[(Offset, Value)]) -> Vec<(Offset, Vec<Value>)> {
    let mut runs: Vec<(Offset, Vec<Value>)> = Vec::new();
    let mut expected: Option<Offset> = None;
    for &(offset, value) in list {
        match runs.last_mut() {
            Some((_, values)) if expected == Some(offset) => values.push(value),
            _ => runs.push((offset, vec![value])),
        }
        expected = offset.checked_add(1);
    }
    runs
}

/// What applying an operation to a state does.
enum Step {
    Reject,
    Unchanged,
    Append(Value),
}

/// A log entry in the search state: the value, or `None` for a value no read of this
/// partition ever returns. Such values only ever compare unequal to what reads expect, so
/// forgetting which one sits where is exact, and it lets the cache merge states that differ
/// only in the order of unobserved appends (many concurrent indeterminate sends).
type Slot = Option<Value>;

fn step(log: &[Slot], kind: &LinearOpKind) -> Step {
    let length = log.len() as Offset;
    match kind {
        LinearOpKind::Append { value, offset } => match offset {
            Some(offset) if *offset != length => Step::Reject,
            _ => Step::Append(*value),
        },
        LinearOpKind::Read {
            from_offset,
            values,
            high_watermark,
        } => {
            if high_watermark.is_some_and(|high_watermark| high_watermark != length) {
                return Step::Reject;
            }
            let Ok(from) = usize::try_from(*from_offset) else {
                return Step::Reject;
            };
            let matches = values.iter().enumerate().all(|(position, value)| {
                from.checked_add(position)
                    .and_then(|offset| log.get(offset))
                    == Some(&Some(*value))
            });
            if matches {
                Step::Unchanged
            } else {
                Step::Reject
            }
        }
        LinearOpKind::LatestOffset { offset } => {
            if *offset == length {
                Step::Unchanged
            } else {
                Step::Reject
            }
        }
    }
}

const NIL: usize = usize::MAX;

/// The doubly linked list of call/return entries (Lowe's "just-in-time" linearization):
/// lifting an operation removes its call and return; unlifting restores them in place.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For entry e (0..2m): the op it belongs to, and whether it is the return.
    op_of: Vec<usize>,
    is_return: Vec<bool>,
    /// For a call entry: its return entry.
    match_of: Vec<usize>,
    head: usize,
}

impl Entries {
    fn new(ops: &[LinearOp]) -> Entries {
        // Sort key: (unbounded?, position, is_return). Indeterminate returns go after
        // every real line, in op order.
        let mut order: Vec<((bool, usize, bool), usize, bool)> = Vec::new();
        for (op, linear_op) in ops.iter().enumerate() {
            order.push(((false, linear_op.invoke_position, false), op, false));
            let return_key = match linear_op.completion_position {
                Some(position) => (false, position, true),
                None => (true, op, true),
            };
            order.push((return_key, op, true));
        }
        order.sort_unstable();
        let count = order.len();
        let head = count;
        let mut entries = Entries {
            next: vec![NIL; count + 1],
            prev: vec![NIL; count + 1],
            op_of: order.iter().map(|&(_, op, _)| op).collect(),
            is_return: order.iter().map(|&(_, _, is_return)| is_return).collect(),
            match_of: vec![NIL; count],
            head,
        };
        let mut call_entry_of_op = vec![NIL; ops.len()];
        for (entry, &(_, op, is_return)) in order.iter().enumerate() {
            if is_return {
                if let Some(&call) = call_entry_of_op.get(op) {
                    if call != NIL {
                        entries.match_of[call] = entry;
                    }
                }
            } else if let Some(slot) = call_entry_of_op.get_mut(op) {
                *slot = entry;
            }
        }
        let mut previous = head;
        for entry in 0..count {
            entries.next[previous] = entry;
            entries.prev[entry] = previous;
            previous = entry;
        }
        entries
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        if next != NIL {
            self.prev[next] = entry;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.match_of[call]);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.match_of[call]);
        self.relink(call);
    }
}

/// Wing–Gong/Lowe search over the operations of one partition.
pub fn check_partition(ops: &[LinearOp], step_budget: u64) -> PartitionVerdict {
    let mut entries = Entries::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized: Vec<u64> = vec![0; words];
    let mut cache: BTreeSet<(Vec<u64>, Vec<Slot>)> = BTreeSet::new();
    // Linearized calls, with the state before each.
    let mut calls: Vec<(usize, Vec<Slot>)> = Vec::new();
    let mut state: Vec<Slot> = Vec::new();
    let read_values: BTreeSet<Value> = ops
        .iter()
        .filter_map(|op| match &op.kind {
            LinearOpKind::Read { values, .. } => Some(values.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut best: Option<(Vec<usize>, usize)> = None;
    let mut steps = 0u64;
    let mut entry = entries.next[entries.head];

    while entries.next[entries.head] != NIL {
        if steps >= step_budget {
            return PartitionVerdict::Unknown { steps };
        }
        steps += 1;
        if entry != NIL && !entries.is_return[entry] {
            let op = entries.op_of[entry];
            let new_state = match step(&state, &ops[op].kind) {
                Step::Reject => None,
                Step::Unchanged => Some(state.clone()),
                Step::Append(value) => {
                    let mut appended = state.clone();
                    appended.push(read_values.contains(&value).then_some(value));
                    Some(appended)
                }
            };
            if let Some(new_state) = new_state {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), new_state.clone())) {
                    calls.push((entry, std::mem::replace(&mut state, new_state)));
                    entries.lift(entry);
                    entry = entries.next[entries.head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = entries.next[entry];
            continue;
        }
        // A return: its op could not be linearized before it completed. Backtrack.
        if entry != NIL {
            let depth = best.as_ref().map_or(0, |(done, _)| done.len());
            if best.is_none() || calls.len() > depth {
                let done = calls.iter().map(|&(call, _)| entries.op_of[call]).collect();
                best = Some((done, entries.op_of[entry]));
            }
        }
        let Some((call, previous_state)) = calls.pop() else {
            let (done, stuck) = best.unwrap_or((Vec::new(), 0));
            return match ops.get(stuck) {
                Some(unplaceable) => PartitionVerdict::NotLinearizable {
                    linearized: done.iter().map(|&op| ops[op].clone()).collect(),
                    unplaceable: unplaceable.clone(),
                    steps,
                },
                None => PartitionVerdict::Linearizable { steps },
            };
        };
        let op = entries.op_of[call];
        linearized[op / 64] &= !(1 << (op % 64));
        state = previous_state;
        entries.unlift(call);
        entry = entries.next[call];
    }
    PartitionVerdict::Linearizable { steps }
}
