//! Per-partition producer state for the idempotent producer: for each producer id, its
//! epoch and the sequence ranges and offsets of its last few batches, so a retried batch
//! can be recognised as a duplicate and answered with its original offsets.
//!
//! The state is a pure function of the log: `update` is called for every appended batch,
//! live and during recovery (replay). Snapshots (`<offset:020>.snapshot`, the state of
//! all batches below `offset`) are taken at segment roll so recovery replays only the
//! tail. Snapshot format: `version: u16 = 1`, `crc32c: u32` of the rest, `count: u32`,
//! then per producer `producer_id: i64, epoch: i16, last_timestamp_ms: i64,
//! batch_count: u8` and per batch `first_sequence: i32, last_sequence: i32,
//! first_offset: i64, last_offset: i64`; all big-endian.

use std::collections::{BTreeMap, VecDeque};

use super::batch::BatchMeta;
use crate::base::{Offset, ProducerEpoch, ProducerId, Sequence};
use crate::protocol::increment_sequence;

/// Batches remembered per producer (Kafka keeps the last 5, matching
/// `max.in.flight.requests.per.connection` <= 5 for idempotent producers).
pub const PRODUCER_BATCHES_MAX: usize = 5;
/// Producers a snapshot may hold; a larger count means the file is corrupt.
const SNAPSHOT_PRODUCERS_MAX: u32 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_sequence: Sequence,
    pub last_sequence: Sequence,
    pub first_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProducerEntry {
    pub epoch: ProducerEpoch,
    pub last_timestamp_ms: i64,
    pub batches: VecDeque<BatchSequence>,
}

impl ProducerEntry {
    /// Appends `meta`'s sequence range (a newer epoch starts the producer afresh).
    pub fn record(&mut self, meta: &BatchMeta) {
        if meta.producer_epoch > self.epoch {
            self.batches.clear();
        }
        self.epoch = meta.producer_epoch;
        self.last_timestamp_ms = meta.max_timestamp_ms;
        self.batches.push_back(BatchSequence {
            first_sequence: meta.base_sequence,
            last_sequence: last_sequence(meta),
            first_offset: meta.base_offset,
            last_offset: meta.last_offset(),
        });
        while self.batches.len() > PRODUCER_BATCHES_MAX {
            self.batches.pop_front();
        }
    }

    /// Whether a sequenced batch may be appended after `entry` (the producer's state, if
    /// the log knows it):
    /// - an epoch older than the producer's is fenced;
    /// - at the producer's epoch, a batch with the sequence range of one of its last
    ///   batches is a retry of it (answered with the original offsets, not appended);
    ///   any other batch must continue the sequence (wrapping after `i32::MAX` to 0);
    /// - a newer epoch must start at sequence 0;
    /// - a producer the log does not know (new, or all its batches removed by retention)
    ///   may start anywhere, as Kafka accepts.
    pub fn check(
        entry: Option<&ProducerEntry>,
        meta: &BatchMeta,
    ) -> Result<SequenceVerdict, SequenceError> {
        let Some(entry) = entry else {
            return Ok(SequenceVerdict::Append);
        };
        let producer_id = meta.producer_id.0;
        let epoch = meta.producer_epoch.0;
        if meta.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id,
                epoch,
                current: entry.epoch.0,
            });
        }
        let sequence = meta.base_sequence.0;
        if meta.producer_epoch > entry.epoch {
            if sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    producer_id,
                    epoch,
                    sequence,
                    expected: 0,
                });
            }
            return Ok(SequenceVerdict::Append);
        }
        let last = last_sequence(meta);
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence.0 == sequence && b.last_sequence == last)
        {
            return Ok(SequenceVerdict::Duplicate(*original));
        }
        if let Some(previous) = entry.batches.back() {
            let expected = increment_sequence(previous.last_sequence.0, 1);
            if sequence != expected {
                return Err(SequenceError::OutOfOrder {
                    producer_id,
                    epoch,
                    sequence,
                    expected,
                });
            }
        }
        Ok(SequenceVerdict::Append)
    }
}

/// Whether a batch carries an idempotent producer's sequence (control batches do not).
fn is_sequenced(meta: &BatchMeta) -> bool {
    meta.producer_id.0 >= 0 && meta.base_sequence.0 >= 0 && !meta.is_control()
}

/// The sequence of a batch's last record: sequences wrap from `i32::MAX` to 0.
fn last_sequence(meta: &BatchMeta) -> Sequence {
    Sequence(increment_sequence(
        meta.base_sequence.0,
        meta.last_offset_delta,
    ))
}

/// What to do with a produced batch of an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// Append it.
    Append,
    /// A retry of this earlier batch: answer with its offsets, append nothing.
    Duplicate(BatchSequence),
}

/// Why a produced batch breaks its producer's sequence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "out of order sequence number for producer {producer_id} epoch {epoch}: \
         {sequence}, expected {expected}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        expected: i32,
    },
    #[error("a retried batch of producer {producer_id} among other batches")]
    DuplicateAmongOthers { producer_id: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProducerState {
    producers: BTreeMap<ProducerId, ProducerEntry>,
}

impl ProducerState {
    pub fn new() -> ProducerState {
        ProducerState::default()
    }

    pub fn get(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Every producer the partition knows, by id.
    pub fn iter(&self) -> impl Iterator<Item = (ProducerId, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Records an appended batch. Batches without a producer id or sequence are ignored.
    pub fn update(&mut self, meta: &BatchMeta) {
        if !is_sequenced(meta) {
            return;
        }
        self.producers
            .entry(meta.producer_id)
            .or_default()
            .record(meta);
    }

    /// Kafka's checks of a produced batch against its producer's state (the rules of
    /// Kafka's `ProducerAppendInfo`): see `ProducerEntry::check`. Batches without a
    /// producer id or sequence are always appended.
    pub fn check(&self, meta: &BatchMeta) -> Result<SequenceVerdict, SequenceError> {
        if !is_sequenced(meta) {
            return Ok(SequenceVerdict::Append);
        }
        ProducerEntry::check(self.producers.get(&meta.producer_id), meta)
    }

    /// Checks a produce request's batches in order, each against the state the ones
    /// before it leave. `Ok(Some(original))`: the request is exactly one batch, a retry
    /// of `original`. A retry among other batches cannot be answered with one set of
    /// offsets and is refused.
    pub fn check_all(&self, metas: &[BatchMeta]) -> Result<Option<BatchSequence>, SequenceError> {
        if let [meta] = metas {
            return match self.check(meta)? {
                SequenceVerdict::Append => Ok(None),
                SequenceVerdict::Duplicate(original) => Ok(Some(original)),
            };
        }
        // Several batches (Produce before v3): the later ones see the earlier ones.
        let mut pending: Vec<(ProducerId, ProducerEntry)> = Vec::new();
        for meta in metas.iter().filter(|m| is_sequenced(m)) {
            let at = pending.iter().position(|(id, _)| *id == meta.producer_id);
            let entry = match at {
                Some(i) => Some(&pending[i].1),
                None => self.producers.get(&meta.producer_id),
            };
            if let SequenceVerdict::Duplicate(_) = ProducerEntry::check(entry, meta)? {
                return Err(SequenceError::DuplicateAmongOthers {
                    producer_id: meta.producer_id.0,
                });
            }
            let mut updated = entry.cloned().unwrap_or_default();
            updated.record(meta);
            match at {
                Some(i) => pending[i].1 = updated,
                None => pending.push((meta.producer_id, updated)),
            }
        }
        Ok(None)
    }

    /// Forgets producers whose last batch's timestamp is `expiration_ms` or more before
    /// `now_ms`, as Kafka expires producer ids. Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// Forgets batches wholly below `log_start` and producers left with none, as Kafka
    /// evicts producers whose data is gone. Makes the state a function of the retained
    /// batches only, however it was built (live, or snapshot + replay).
    pub fn evict_below(&mut self, log_start: Offset) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset >= log_start);
        }
        self.producers.retain(|_, entry| !entry.batches.is_empty());
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, entry) in &self.producers {
            body.extend_from_slice(&id.0.to_be_bytes());
            body.extend_from_slice(&entry.epoch.0.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_sequence.0.to_be_bytes());
                body.extend_from_slice(&b.last_sequence.0.to_be_bytes());
                body.extend_from_slice(&b.first_offset.0.to_be_bytes());
                body.extend_from_slice(&b.last_offset.0.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` if it is malformed or its checksum does not match.
    pub fn decode(bytes: &[u8]) -> Option<ProducerState> {
        let mut r = Reader { bytes, at: 0 };
        if r.u16()? != 1 {
            return None;
        }
        let crc = r.u32()?;
        if crc32c::crc32c(bytes.get(6..)?) != crc {
            return None;
        }
        let count = r.u32()?;
        if count > SNAPSHOT_PRODUCERS_MAX {
            return None;
        }
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let id = ProducerId(r.i64()?);
            let epoch = ProducerEpoch(r.u16()? as i16);
            let last_timestamp_ms = r.i64()?;
            let batch_count = r.u8()? as usize;
            if batch_count > PRODUCER_BATCHES_MAX {
                return None;
            }
            let mut batches = VecDeque::with_capacity(batch_count);
            for _ in 0..batch_count {
                batches.push_back(BatchSequence {
                    first_sequence: Sequence(r.u32()? as i32),
                    last_sequence: Sequence(r.u32()? as i32),
                    first_offset: Offset(r.i64()?),
                    last_offset: Offset(r.i64()?),
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    last_timestamp_ms,
                    batches,
                },
            );
        }
        (r.at == bytes.len()).then_some(ProducerState { producers })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(N)?)?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take::<2>().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::LeaderEpoch;

    fn meta(pid: i64, epoch: i16, seq: i32, base: i64, delta: i32) -> BatchMeta {
        BatchMeta {
            base_offset: Offset(base),
            size_bytes: 100,
            partition_leader_epoch: LeaderEpoch(0),
            attributes: 0,
            last_offset_delta: delta,
            base_timestamp_ms: 1,
            max_timestamp_ms: 1,
            producer_id: ProducerId(pid),
            producer_epoch: ProducerEpoch(epoch),
            base_sequence: Sequence(seq),
            record_count: delta + 1,
        }
    }

    #[test]
    fn keeps_last_five_batches_and_finds_duplicates() {
        let mut state = ProducerState::new();
        for i in 0..7 {
            state.update(&meta(9, 0, i * 2, 100 + i as i64 * 2, 1));
        }
        state.update(&meta(-1, -1, -1, 200, 0));
        assert_eq!(state.len(), 1);
        let entry = state.get(ProducerId(9)).unwrap();
        assert_eq!(entry.batches.len(), PRODUCER_BATCHES_MAX);
        let original = |verdict| match verdict {
            Ok(SequenceVerdict::Duplicate(b)) => Some(b.first_offset),
            _ => None,
        };
        assert_eq!(
            original(state.check(&meta(9, 0, 12, 0, 1))),
            Some(Offset(112))
        );
        assert_eq!(
            state.check(&meta(9, 0, 0, 0, 1)),
            Err(SequenceError::OutOfOrder {
                producer_id: 9,
                epoch: 0,
                sequence: 0,
                expected: 14
            }),
            "a batch older than the five remembered is no retry we can answer"
        );
        assert_eq!(
            state.check(&meta(9, 1, 12, 0, 1)),
            Err(SequenceError::OutOfOrder {
                producer_id: 9,
                epoch: 1,
                sequence: 12,
                expected: 0
            }),
            "a new epoch starts at 0"
        );
        state.update(&meta(9, 1, 0, 300, 0));
        assert_eq!(
            state.get(ProducerId(9)).unwrap().batches.len(),
            1,
            "new epoch resets"
        );
    }

    #[test]
    fn sequence_rules() {
        let mut state = ProducerState::new();
        // Unknown producers start anywhere (their state may have gone with retention).
        assert_eq!(
            state.check(&meta(7, 2, 40, 0, 4)),
            Ok(SequenceVerdict::Append)
        );
        state.update(&meta(7, 2, 40, 0, 4));
        // The next batch continues at 45; gaps and repeats of other ranges are refused.
        assert_eq!(
            state.check(&meta(7, 2, 45, 5, 0)),
            Ok(SequenceVerdict::Append)
        );
        for bad in [44, 46, 0, 41] {
            assert!(
                matches!(
                    state.check(&meta(7, 2, bad, 5, 0)),
                    Err(SequenceError::OutOfOrder { expected: 45, .. })
                ),
                "sequence {bad} accepted"
            );
        }
        // An older epoch is fenced; a newer one must start at 0.
        assert_eq!(
            state.check(&meta(7, 1, 45, 5, 0)),
            Err(SequenceError::StaleEpoch {
                producer_id: 7,
                epoch: 1,
                current: 2
            })
        );
        assert_eq!(
            state.check(&meta(7, 3, 0, 5, 0)),
            Ok(SequenceVerdict::Append)
        );
        // Sequences wrap from i32::MAX to 0, in a batch and between batches.
        state.update(&meta(8, 0, i32::MAX - 1, 10, 2));
        let entry = state.get(ProducerId(8)).expect("producer 8");
        assert_eq!(
            entry.batches.back().map(|b| b.last_sequence),
            Some(Sequence(0))
        );
        assert_eq!(
            state.check(&meta(8, 0, 1, 13, 0)),
            Ok(SequenceVerdict::Append)
        );
        assert!(state
            .check(&meta(8, 0, i32::MAX - 1, 13, 2))
            .is_ok_and(|v| { v != SequenceVerdict::Append }));
        // Control batches and plain producers are never checked.
        assert_eq!(
            state.check(&meta(-1, -1, -1, 0, 0)),
            Ok(SequenceVerdict::Append)
        );
    }

    #[test]
    fn batches_of_one_request_are_checked_in_order() {
        let mut state = ProducerState::new();
        state.update(&meta(4, 0, 0, 0, 2));
        // 3..=4 then 5: each continues the one before it.
        assert_eq!(
            state.check_all(&[meta(4, 0, 3, 3, 1), meta(4, 0, 5, 5, 0)]),
            Ok(None)
        );
        // 3 then 6: the second leaves a gap after the first.
        assert!(matches!(
            state.check_all(&[meta(4, 0, 3, 3, 0), meta(4, 0, 6, 4, 0)]),
            Err(SequenceError::OutOfOrder { expected: 4, .. })
        ));
        // Two producers interleaved, each in sequence.
        assert_eq!(
            state.check_all(&[
                meta(4, 0, 3, 3, 0),
                meta(9, 0, 0, 4, 0),
                meta(4, 0, 4, 5, 0)
            ]),
            Ok(None)
        );
        // A retry among other batches cannot be answered with one set of offsets.
        assert_eq!(
            state.check_all(&[meta(4, 0, 0, 0, 2), meta(4, 0, 3, 3, 0)]),
            Err(SequenceError::DuplicateAmongOthers { producer_id: 4 })
        );
        // Alone, the same retry is answered with its original offsets.
        assert!(matches!(
            state.check_all(&[meta(4, 0, 0, 9, 2)]),
            Ok(Some(BatchSequence {
                first_offset: Offset(0),
                ..
            }))
        ));
    }

    #[test]
    fn idle_producers_expire() {
        let mut state = ProducerState::new();
        let mut at = |pid: i64, timestamp_ms: i64| {
            let mut batch = meta(pid, 0, 0, pid * 10, 0);
            batch.max_timestamp_ms = timestamp_ms;
            state.update(&batch);
        };
        at(1, 1_000);
        at(2, 5_000);
        at(3, 9_999);
        // Expiration 5 s at 10 s: producer 1 (9 s idle) and 2 (exactly 5 s) go.
        assert_eq!(state.expire(10_000, 5_000), 2);
        assert!(state.get(ProducerId(1)).is_none() && state.get(ProducerId(2)).is_none());
        assert!(state.get(ProducerId(3)).is_some());
        assert_eq!(state.expire(10_000, 5_000), 0);
        // A forgotten producer is an unknown one: its next batch may start anywhere.
        assert_eq!(
            state.check(&meta(1, 0, 7, 50, 0)),
            Ok(SequenceVerdict::Append)
        );
    }

    #[test]
    fn snapshot_round_trip_and_corruption() {
        let mut state = ProducerState::new();
        state.update(&meta(1, 0, 0, 0, 4));
        state.update(&meta(2, 3, 10, 5, 0));
        let bytes = state.encode();
        assert_eq!(ProducerState::decode(&bytes), Some(state));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert_eq!(ProducerState::decode(&bad), None, "flip at {i} accepted");
            assert_eq!(
                ProducerState::decode(&bytes[..i]),
                None,
                "truncation at {i} accepted"
            );
        }
    }
}
