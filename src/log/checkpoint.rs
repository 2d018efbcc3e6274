//! Checkpoint files, in Kafka's text format: a version line (`0`), a count line, then one
//! entry per line of space-separated integers. Written atomically (temp file, fsync,
//! rename, fsync of the directory) so a crash leaves the old or the new file, never a mix.
//! Reading is total: any malformed file is an error the caller recovers from (by
//! rebuilding what the file summarised from the log), never a panic.

use crate::base::{IoError, IoErrorKind};
use crate::io::{read_exact_at, write_atomic, Disk};

/// Longest checkpoint file we read; a larger one is corrupt.
const CHECKPOINT_BYTES_MAX: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint I/O: {0}")]
    Io(#[from] IoError),
    #[error("checkpoint {path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
}

/// Writes `entries` (each a row of integers) atomically to `path`.
pub fn write_checkpoint(disk: &dyn Disk, path: &str, entries: &[Vec<i64>]) -> Result<(), IoError> {
    let mut text = String::from("0\n");
    text.push_str(&format!("{}\n", entries.len()));
    for row in entries {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&cells.join(" "));
        text.push('\n');
    }
    write_atomic(disk, path, text.as_bytes())
}

/// Reads a checkpoint whose rows each have `columns` integers. `Ok(None)` if the file
/// does not exist.
pub fn read_checkpoint(
    disk: &dyn Disk,
    path: &str,
    columns: usize,
) -> Result<Option<Vec<Vec<i64>>>, CheckpointError> {
    let file = match disk.open(path) {
        Ok(file) => file,
        Err(e) if e.kind == IoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let malformed = |reason: &str| CheckpointError::Malformed {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let size = file.len()?;
    if size > CHECKPOINT_BYTES_MAX {
        return Err(malformed("file too large"));
    }
    let raw = read_exact_at(file.as_ref(), 0, size)?;
    let text = std::str::from_utf8(&raw).map_err(|_| malformed("not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(malformed("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("bad count line"))?;
    let mut rows = Vec::new();
    for line in lines {
        let row: Result<Vec<i64>, _> = line.split_whitespace().map(|c| c.parse::<i64>()).collect();
        let row = row.map_err(|_| malformed("bad number"))?;
        if row.len() != columns {
            return Err(malformed("wrong number of columns"));
        }
        rows.push(row);
    }
    if rows.len() != count {
        return Err(malformed("count does not match entries"));
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;

    #[test]
    fn round_trip_and_malformed_files() {
        let disk = SimDisk::new(3);
        write_checkpoint(&disk, "cp", &[vec![1, 2], vec![3, 4]]).unwrap();
        assert_eq!(
            read_checkpoint(&disk, "cp", 2).unwrap(),
            Some(vec![vec![1, 2], vec![3, 4]])
        );
        assert!(read_checkpoint(&disk, "missing", 2).unwrap().is_none());
        assert!(read_checkpoint(&disk, "cp", 3).is_err());
        for bad in ["", "1\n0\n", "0\n2\n1 2\n", "0\nx\n", "0\n1\n1 y\n"] {
            let file = disk.open("cp").unwrap();
            file.truncate(0).unwrap();
            file.write_at(0, bad.as_bytes()).unwrap();
            assert!(read_checkpoint(&disk, "cp", 2).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn survives_crash_after_write() {
        let disk = SimDisk::new(4);
        write_checkpoint(&disk, "cp", &[vec![7]]).unwrap();
        disk.crash();
        assert_eq!(
            read_checkpoint(&disk, "cp", 1).unwrap(),
            Some(vec![vec![7]])
        );
    }
}
