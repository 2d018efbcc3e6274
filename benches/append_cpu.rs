//! The CPU an append costs with the disk taken away: `PartitionLog::append_as_leader`
//! over a disk whose writes go nowhere, beside its parts (the produce-path validation,
//! the batch CRC-32C, one clock read). With the page cache as fast as it is, this per-
//! append CPU is what separates skald's append bandwidth from a raw `write` of the same
//! bytes (`benches/log.rs`), so it is tracked on its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use skald::base::{IoError, LeaderEpoch};
use skald::io::{Clock, Disk, DiskRef, File, FileRef};
use skald::log::{LogConfig, PartitionLog};

mod common;
use common::batch_of;

/// A disk with no files: every write vanishes, every directory is empty.
#[derive(Debug)]
struct NullDisk;

/// A file of `NullDisk`: always empty.
#[derive(Debug)]
struct NullFile;

impl Disk for NullDisk {
    fn create(&self, _path: &str) -> Result<FileRef, IoError> {
        Ok(Arc::new(NullFile))
    }
    fn open(&self, _path: &str) -> Result<FileRef, IoError> {
        Ok(Arc::new(NullFile))
    }
    fn open_read_only(&self, _path: &str) -> Result<FileRef, IoError> {
        Ok(Arc::new(NullFile))
    }
    fn create_dir_all(&self, _path: &str) -> Result<(), IoError> {
        Ok(())
    }
    fn rename(&self, _from: &str, _to: &str) -> Result<(), IoError> {
        Ok(())
    }
    fn remove(&self, _path: &str) -> Result<(), IoError> {
        Ok(())
    }
    fn list(&self, _dir: &str) -> Result<Vec<String>, IoError> {
        Ok(Vec::new())
    }
    fn exists(&self, _path: &str) -> Result<bool, IoError> {
        Ok(false)
    }
    fn sync_dir(&self, _dir: &str) -> Result<(), IoError> {
        Ok(())
    }
}

impl File for NullFile {
    fn len(&self) -> Result<u64, IoError> {
        Ok(0)
    }
    fn append(&self, _data: &[u8]) -> Result<u64, IoError> {
        Ok(0)
    }
    fn write_at(&self, _position: u64, _data: &[u8]) -> Result<(), IoError> {
        Ok(())
    }
    fn read_at(&self, _position: u64, _len: u64) -> Result<Bytes, IoError> {
        Ok(Bytes::new())
    }
    fn sync(&self) -> Result<(), IoError> {
        Ok(())
    }
    fn truncate(&self, _len: u64) -> Result<(), IoError> {
        Ok(())
    }
}

fn append_cpu(c: &mut Criterion) {
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let mut group = c.benchmark_group(format!("append_cpu_{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.measurement_time(Duration::from_secs(2));
        let template = batch_of(size);
        let disk: DiskRef = Arc::new(NullDisk);
        let config = LogConfig {
            // Rolls (one per GiB appended) are too rare to weigh on the figure.
            segment_bytes: 1 << 30,
            flush_messages: i64::MAX,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(disk, "bench-0", config, Clock::system())
            .expect("open log")
            .0;
        let mut batch = template.clone();
        group.bench_function("append_as_leader", |b| {
            b.iter(|| {
                log.append_as_leader(&mut batch, LeaderEpoch(0))
                    .expect("append")
            })
        });
        group.bench_function("validate", |b| {
            b.iter(|| skald::protocol::parse_batches(&template).expect("valid"))
        });
        group.bench_function("clock", |b| b.iter(skald::io::real::system_time_ms));
        group.finish();
    }
}

criterion_group!(benches, append_cpu);
criterion_main!(benches);
