//! Sparse offset index of one segment (`<base>.index`): every `index.interval.bytes` of
//! log, an entry mapping an offset to the byte position of the batch that starts there.
//!
//! File format (Kafka's): 8-byte entries, big-endian `relative_offset: u32` (offset −
//! segment base) then `position: u32`, strictly increasing in both. Entries live in
//! memory and reach the file only when `persist` is called — when a flush covers a
//! sealed segment (recovery trusts a sealed segment's index once the recovery point
//! passes it) — so appends never pay for index I/O. The active segment's index is
//! always rebuilt by recovery. A file whose
//! size is not a multiple of 8, or whose entries are not increasing or point past the
//! log, is invalid and rebuilt from the log by recovery.

use crate::base::{IoError, Offset};
use crate::io::{read_exact_at, FileRef};

pub const OFFSET_ENTRY_BYTES: u64 = 8;
pub const TIME_ENTRY_BYTES: u64 = 12;

/// One offset-index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: Offset,
    pub position: u64,
}

/// One time-index entry: from `offset` on, every batch has max timestamp >= `timestamp_ms`'s
/// predecessor; `timestamp_ms` is the largest timestamp seen up to and including `offset`'s batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub offset: Offset,
}

/// The offset index of a segment, mirrored in memory.
#[derive(Debug)]
pub struct OffsetIndex {
    base: Offset,
    file: FileRef,
    entries: Vec<OffsetEntry>,
    /// Entries already written to the file.
    persisted: usize,
}

impl OffsetIndex {
    /// An index over `file`, whose current contents are decoded and checked against
    /// `log_bytes` (the segment's log size). Returns `Ok(None)` if the contents are
    /// invalid, and the caller rebuilds the index.
    pub fn load(
        base: Offset,
        file: FileRef,
        log_bytes: u64,
    ) -> Result<Option<OffsetIndex>, IoError> {
        let size = file.len()?;
        if size % OFFSET_ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let raw = read_exact_at(file.as_ref(), 0, size)?;
        let mut entries = Vec::with_capacity((size / OFFSET_ENTRY_BYTES) as usize);
        for chunk in raw.chunks_exact(OFFSET_ENTRY_BYTES as usize) {
            let relative = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
            let entry = OffsetEntry {
                offset: Offset(base.0 + relative as i64),
                position,
            };
            let increasing = entries.last().is_none_or(|last: &OffsetEntry| {
                entry.offset > last.offset && entry.position > last.position
            });
            if !increasing || position >= log_bytes {
                return Ok(None);
            }
            entries.push(entry);
        }
        let persisted = entries.len();
        Ok(Some(OffsetIndex {
            base,
            file,
            entries,
            persisted,
        }))
    }

    /// An empty index writing to `file` (which is truncated).
    pub fn empty(base: Offset, file: FileRef) -> Result<OffsetIndex, IoError> {
        file.truncate(0)?;
        Ok(OffsetIndex {
            base,
            file,
            entries: Vec::new(),
            persisted: 0,
        })
    }

    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }

    pub fn len_bytes(&self) -> u64 {
        self.entries.len() as u64 * OFFSET_ENTRY_BYTES
    }

    pub fn file(&self) -> &FileRef {
        &self.file
    }

    /// Adds an entry (in memory; see `persist`). Entries must increase in offset and
    /// position (callers add one per index interval at batch starts).
    pub fn append(&mut self, offset: Offset, position: u64) {
        if let Some(last) = self.entries.last() {
            assert!(
                offset > last.offset,
                "offset index entries must increase in offset"
            );
            assert!(
                position > last.position,
                "offset index entries must increase in position"
            );
        }
        assert!(
            offset.0 - self.base.0 <= u32::MAX as i64,
            "relative offset fits u32 (segment roll bounds it)"
        );
        assert!(
            position <= u32::MAX as u64,
            "segment position fits u32 (segment.bytes bounds it)"
        );
        self.entries.push(OffsetEntry { offset, position });
    }

    /// Whether some entries are not in the file yet.
    pub fn is_dirty(&self) -> bool {
        self.persisted != self.entries.len()
    }

    /// Writes the entries not yet in the file. Durable after the file's next sync.
    pub fn persist(&mut self) -> Result<(), IoError> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut bytes =
            Vec::with_capacity((self.entries.len() - self.persisted) * OFFSET_ENTRY_BYTES as usize);
        for entry in &self.entries[self.persisted..] {
            bytes.extend_from_slice(&((entry.offset.0 - self.base.0) as u32).to_be_bytes());
            bytes.extend_from_slice(&(entry.position as u32).to_be_bytes());
        }
        self.file
            .write_at(self.persisted as u64 * OFFSET_ENTRY_BYTES, &bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// The entry with the largest offset <= `offset` (where to start scanning for it).
    pub fn lookup(&self, offset: Offset) -> Option<OffsetEntry> {
        let after = self.entries.partition_point(|e| e.offset <= offset);
        after.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drops entries at or past `position` in the log (after the log is truncated there).
    pub fn truncate_to_position(&mut self, position: u64) -> Result<(), IoError> {
        let keep = self.entries.partition_point(|e| e.position < position);
        self.entries.truncate(keep);
        if self.persisted > keep {
            self.persisted = keep;
            self.file.truncate(keep as u64 * OFFSET_ENTRY_BYTES)?;
        }
        Ok(())
    }
}

/// The time index of a segment (`<base>.timeindex`): 12-byte big-endian entries
/// `timestamp_ms: i64, relative_offset: u32`, both non-decreasing / increasing. An entry is
/// added when a batch raises the segment's max timestamp at an index interval.
#[derive(Debug)]
pub struct TimeIndex {
    base: Offset,
    file: FileRef,
    entries: Vec<TimeEntry>,
    /// Entries already written to the file.
    persisted: usize,
}

impl TimeIndex {
    /// Loads and checks the file; `Ok(None)` if invalid (caller rebuilds).
    pub fn load(
        base: Offset,
        file: FileRef,
        next_offset: Offset,
    ) -> Result<Option<TimeIndex>, IoError> {
        let size = file.len()?;
        if size % TIME_ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let raw = read_exact_at(file.as_ref(), 0, size)?;
        let mut entries = Vec::with_capacity((size / TIME_ENTRY_BYTES) as usize);
        for chunk in raw.chunks_exact(TIME_ENTRY_BYTES as usize) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let relative = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let entry = TimeEntry {
                timestamp_ms: i64::from_be_bytes(ts),
                offset: Offset(base.0 + relative as i64),
            };
            let increasing = entries.last().is_none_or(|last: &TimeEntry| {
                entry.timestamp_ms > last.timestamp_ms && entry.offset > last.offset
            });
            if !increasing || entry.offset >= next_offset {
                return Ok(None);
            }
            entries.push(entry);
        }
        let persisted = entries.len();
        Ok(Some(TimeIndex {
            base,
            file,
            entries,
            persisted,
        }))
    }

    pub fn empty(base: Offset, file: FileRef) -> Result<TimeIndex, IoError> {
        file.truncate(0)?;
        Ok(TimeIndex {
            base,
            file,
            entries: Vec::new(),
            persisted: 0,
        })
    }

    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    pub fn file(&self) -> &FileRef {
        &self.file
    }

    /// Adds an entry (in memory; see `persist`) if `timestamp_ms` exceeds the last one.
    pub fn maybe_append(&mut self, timestamp_ms: i64, offset: Offset) {
        if let Some(last) = self.entries.last() {
            if timestamp_ms <= last.timestamp_ms || offset <= last.offset {
                return;
            }
        }
        assert!(
            offset.0 - self.base.0 <= u32::MAX as i64,
            "relative offset fits u32 (segment roll bounds it)"
        );
        self.entries.push(TimeEntry {
            timestamp_ms,
            offset,
        });
    }

    /// Whether some entries are not in the file yet.
    pub fn is_dirty(&self) -> bool {
        self.persisted != self.entries.len()
    }

    /// Writes the entries not yet in the file. Durable after the file's next sync.
    pub fn persist(&mut self) -> Result<(), IoError> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut bytes =
            Vec::with_capacity((self.entries.len() - self.persisted) * TIME_ENTRY_BYTES as usize);
        for entry in &self.entries[self.persisted..] {
            bytes.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
            bytes.extend_from_slice(&((entry.offset.0 - self.base.0) as u32).to_be_bytes());
        }
        self.file
            .write_at(self.persisted as u64 * TIME_ENTRY_BYTES, &bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// The last entry whose timestamp is < `timestamp_ms`: batches before its offset
    /// all have smaller timestamps, so a search for `timestamp_ms` may start there.
    pub fn lookup_before(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let after = self
            .entries
            .partition_point(|e| e.timestamp_ms < timestamp_ms);
        after.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drops entries at or past `offset`.
    pub fn truncate_to_offset(&mut self, offset: Offset) -> Result<(), IoError> {
        let keep = self.entries.partition_point(|e| e.offset < offset);
        self.entries.truncate(keep);
        if self.persisted > keep {
            self.persisted = keep;
            self.file.truncate(keep as u64 * TIME_ENTRY_BYTES)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use crate::io::Disk;

    #[test]
    fn offset_index_lookup_and_reload() {
        let disk = SimDisk::new(1);
        let file = disk.create("0.index").unwrap();
        let mut index = OffsetIndex::empty(Offset(100), file.clone()).unwrap();
        index.append(Offset(100), 0);
        index.append(Offset(110), 4096);
        index.append(Offset(125), 9000);
        assert_eq!(
            file.len().unwrap(),
            0,
            "entries reach the file only on persist"
        );
        index.persist().unwrap();
        assert_eq!(index.lookup(Offset(99)), None);
        assert_eq!(index.lookup(Offset(100)).unwrap().position, 0);
        assert_eq!(index.lookup(Offset(124)).unwrap().position, 4096);
        assert_eq!(index.lookup(Offset(1000)).unwrap().position, 9000);
        let reloaded = OffsetIndex::load(Offset(100), file.clone(), 10_000)
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.entries(), index.entries());
        // An entry pointing past the log makes the file invalid.
        assert!(OffsetIndex::load(Offset(100), file.clone(), 9000)
            .unwrap()
            .is_none());
        index.truncate_to_position(4096).unwrap();
        assert_eq!(index.entries().len(), 1);
        assert_eq!(file.len().unwrap(), 8);
        // A torn entry makes the file invalid.
        file.append(&[1, 2, 3]).unwrap();
        assert!(OffsetIndex::load(Offset(100), file, 10_000)
            .unwrap()
            .is_none());
    }

    #[test]
    fn time_index_keeps_only_increasing_timestamps() {
        let disk = SimDisk::new(1);
        let file = disk.create("0.timeindex").unwrap();
        let mut index = TimeIndex::empty(Offset(0), file.clone()).unwrap();
        index.maybe_append(1000, Offset(0));
        index.maybe_append(900, Offset(5));
        index.maybe_append(2000, Offset(10));
        index.persist().unwrap();
        assert_eq!(index.entries().len(), 2);
        assert_eq!(index.lookup_before(1000), None);
        assert_eq!(index.lookup_before(1500).unwrap().offset, Offset(0));
        assert_eq!(index.lookup_before(5000).unwrap().offset, Offset(10));
        let reloaded = TimeIndex::load(Offset(0), file, Offset(11))
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.entries(), index.entries());
    }
}
