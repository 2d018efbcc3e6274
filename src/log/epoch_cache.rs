//! The leader-epoch cache of a partition (`leader-epoch-checkpoint`): for each leader
//! epoch, the first offset written in it. Replication uses it to answer
//! OffsetForLeaderEpoch and to truncate a follower to the point where its log diverged
//! from the leader's — never by high watermark alone.
//!
//! Invariant: epochs and start offsets both strictly increase along the list.

use crate::base::{LeaderEpoch, Offset};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl EpochCache {
    pub fn new() -> EpochCache {
        EpochCache::default()
    }

    /// Builds a cache from checkpoint rows, rejecting rows that break the invariant.
    pub fn from_entries(entries: Vec<(LeaderEpoch, Offset)>) -> Option<EpochCache> {
        let ordered = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        ordered.then_some(EpochCache { entries })
    }

    pub fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    pub fn latest(&self) -> Option<(LeaderEpoch, Offset)> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset` (called for each appended batch;
    /// a no-op unless `epoch` is newer than the latest). Returns whether it changed.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch.0 < 0 {
            return false;
        }
        match self.entries.last() {
            Some((last, _)) if *last >= epoch => false,
            Some((_, last_start)) => {
                assert!(
                    start_offset > *last_start,
                    "a newer epoch must start after the previous one"
                );
                self.entries.push((epoch, start_offset));
                true
            }
            None => {
                self.entries.push((epoch, start_offset));
                true
            }
        }
    }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` we know and the offset where
    /// the next epoch after it starts (or `log_end` if it is the latest). `None` if every
    /// known epoch is newer than `epoch` (Kafka answers UNDEFINED_EPOCH_OFFSET).
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let after = self.entries.partition_point(|(e, _)| *e <= epoch);
        let found = after.checked_sub(1)?;
        let end = self.entries.get(after).map_or(log_end, |(_, start)| *start);
        Some((self.entries[found].0, end))
    }

    /// Forgets epochs that start at or after `end` (the log was truncated to `end`).
    pub fn truncate_from_end(&mut self, end: Offset) -> bool {
        let keep = self.entries.partition_point(|(_, start)| *start < end);
        let changed = keep != self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start`: epochs wholly before it are dropped, and the one
    /// covering it is moved to start there.
    pub fn truncate_from_start(&mut self, start: Offset) -> bool {
        let covering = self.entries.partition_point(|(_, s)| *s <= start);
        if covering == 0 {
            return false;
        }
        let changed = covering > 1 || self.entries[0].1 != start;
        let epoch = self.entries[covering - 1].0;
        self.entries.drain(..covering - 1);
        self.entries[0] = (epoch, start);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> EpochCache {
        let mut c = EpochCache::new();
        assert!(c.assign(LeaderEpoch(1), Offset(0)));
        assert!(!c.assign(LeaderEpoch(1), Offset(5)));
        assert!(c.assign(LeaderEpoch(3), Offset(10)));
        assert!(c.assign(LeaderEpoch(4), Offset(20)));
        c
    }

    #[test]
    fn end_offsets_answer_offset_for_leader_epoch() {
        let c = cache();
        assert_eq!(c.end_offset_for(LeaderEpoch(0), Offset(30)), None);
        assert_eq!(
            c.end_offset_for(LeaderEpoch(1), Offset(30)),
            Some((LeaderEpoch(1), Offset(10)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(2), Offset(30)),
            Some((LeaderEpoch(1), Offset(10)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(3), Offset(30)),
            Some((LeaderEpoch(3), Offset(20)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(9), Offset(30)),
            Some((LeaderEpoch(4), Offset(30)))
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache();
        assert!(c.truncate_from_end(Offset(20)));
        assert_eq!(c.latest(), Some((LeaderEpoch(3), Offset(10))));
        assert!(c.truncate_from_start(Offset(12)));
        assert_eq!(c.entries(), &[(LeaderEpoch(3), Offset(12))]);
        assert!(EpochCache::from_entries(vec![
            (LeaderEpoch(2), Offset(5)),
            (LeaderEpoch(1), Offset(9))
        ])
        .is_none());
    }
}
