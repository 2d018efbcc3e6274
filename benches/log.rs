//! Log engine throughput, each figure beside the raw filesystem doing the same work in
//! the same run, so the ratio is the number that matters:
//!
//! - `append_{1KiB,64KiB}/skald` vs `/raw_write`: appends without fsync (page cache).
//! - `append_fsync_{1KiB,64KiB}/skald` vs `/raw_write_fsync`: fsync after every append.
//! - `group_commit_64/skald_driver` vs `/fsync_per_append`: 64 concurrent appenders
//!   through the partition driver in fsync-before-ack mode, against the same appends
//!   fsynced one by one.
//! - `read_sequential/skald` vs `/raw_read`: reading a whole multi-segment log.
//! - `crc32c_{64B,1KiB,64KiB}/skald` vs `/crate`: the batch checksum alone, ours
//!   (`protocol::crc32c`) against the `crc32c` crate it falls back to.
//! - `interleaved append_*` (printed, under `cargo bench` only): the no-fsync appends again,
//!   skald and raw in alternating blocks, free of the order bias of one-after-the-other.
//!
//! A plain-word filter (`cargo bench --bench log -- crc32c`) also skips the setup of the
//! groups it excludes (the read log, the interleaved run), which write hundreds of MB.
//!
//! Files go under the target dir's tmp folder (the same filesystem for both sides).

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use skald::base::{LeaderEpoch, Offset};
use skald::io::real::RealDisk;
use skald::io::{Clock, DiskRef};
use skald::log::{LogConfig, PartitionLog};

mod common;
use common::batch_of;

/// Segment size for the benches; retention keeps a few so the disk does not fill.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const RETAINED_BYTES: i64 = 256 * 1024 * 1024;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("bench")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Whether the command line's filter, when it is a plain word, excludes every benchmark
/// of `group` (a regex or no filter: never), so the group can skip its setup.
fn filtered_out(group: &str) -> bool {
    let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        return false;
    };
    let plain = filter
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/');
    plain && !group.contains(&filter) && !filter.starts_with(group)
}

fn open_log(dir: &PathBuf, fsync: bool) -> PartitionLog {
    let disk: DiskRef = Arc::new(RealDisk::open(dir).expect("disk"));
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        retention_bytes: RETAINED_BYTES,
        flush_messages: if fsync { 1 } else { i64::MAX },
        ..LogConfig::default()
    };
    PartitionLog::open(disk, "bench-0", config, Clock::system())
        .expect("open log")
        .0
}

/// A raw appender rotating files like segments, so both sides do the same file churn.
struct RawWriter {
    dir: PathBuf,
    file: fs::File,
    written_bytes: u64,
    index: u64,
}

impl RawWriter {
    fn new(dir: PathBuf) -> RawWriter {
        let file = fs::File::create(dir.join("raw-0")).expect("raw file");
        RawWriter {
            dir,
            file,
            written_bytes: 0,
            index: 0,
        }
    }

    fn write(&mut self, bytes: &[u8], fsync: bool) {
        if self.written_bytes + bytes.len() as u64 > SEGMENT_BYTES {
            self.index += 1;
            self.file =
                fs::File::create(self.dir.join(format!("raw-{}", self.index))).expect("raw file");
            let keep = (RETAINED_BYTES as u64 / SEGMENT_BYTES) + 1;
            if self.index > keep {
                let _ = fs::remove_file(self.dir.join(format!("raw-{}", self.index - keep)));
            }
            self.written_bytes = 0;
        }
        self.file.write_all(bytes).expect("raw write");
        if fsync {
            self.file.sync_all().expect("raw fsync");
        }
        self.written_bytes += bytes.len() as u64;
    }
}

fn appends(c: &mut Criterion) {
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        for fsync in [false, true] {
            let name = if fsync {
                format!("append_fsync_{label}")
            } else {
                format!("append_{label}")
            };
            let mut group = c.benchmark_group(&name);
            group.throughput(Throughput::Bytes(size as u64));
            group.measurement_time(Duration::from_secs(3));
            group.warm_up_time(Duration::from_millis(500));
            let template = batch_of(size);
            let mut log = open_log(&scratch(&format!("{name}-skald")), fsync);
            let mut batch = template.clone();
            group.bench_function("skald", |b| {
                b.iter(|| {
                    log.append_as_leader(&mut batch, LeaderEpoch(0))
                        .expect("append");
                    if fsync {
                        log.flush_now().expect("flush");
                    } else if log.segment_count() > 5 {
                        log.set_high_watermark(log.log_end_offset());
                        log.apply_retention(0).expect("retention");
                    }
                })
            });
            drop(log);
            let mut raw = RawWriter::new(scratch(&format!("{name}-raw")));
            let raw_name = if fsync {
                "raw_write_fsync"
            } else {
                "raw_write"
            };
            group.bench_function(raw_name, |b| b.iter(|| raw.write(&template, fsync)));
            group.finish();
        }
    }
}

fn group_commit(c: &mut Criterion) {
    const APPENDERS: usize = 64;
    const APPENDS_EACH: usize = 8;
    let mut group = c.benchmark_group("group_commit_64");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let batch = batch_of(1024);
    group.throughput(Throughput::Bytes(
        (batch.len() * APPENDERS * APPENDS_EACH) as u64,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = scratch("group-commit");
    let handle = runtime.block_on(async { skald::broker::log_driver::spawn(open_log(&dir, true)) });
    group.bench_function(BenchmarkId::new("skald_driver", APPENDERS), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                runtime.block_on(async {
                    let mut tasks = Vec::new();
                    for _ in 0..APPENDERS {
                        let handle = handle.clone();
                        let batch = batch.clone();
                        tasks.push(tokio::spawn(async move {
                            for _ in 0..APPENDS_EACH {
                                handle
                                    .append(batch.clone(), LeaderEpoch(0))
                                    .await
                                    .expect("append");
                            }
                        }));
                    }
                    for task in tasks {
                        task.await.expect("appender");
                    }
                });
            }
            start.elapsed()
        })
    });
    runtime.block_on(handle.close()).expect("close");
    let mut log = open_log(&scratch("fsync-each"), true);
    let mut one = batch.clone();
    group.bench_function(BenchmarkId::new("fsync_per_append", APPENDERS), |b| {
        b.iter(|| {
            for _ in 0..APPENDERS * APPENDS_EACH {
                log.append_as_leader(&mut one, LeaderEpoch(0))
                    .expect("append");
                log.flush_now().expect("flush");
            }
        })
    });
    group.finish();
}

fn reads(c: &mut Criterion) {
    if filtered_out("read_sequential") {
        return;
    }
    const LOG_BYTES: usize = 256 * 1024 * 1024;
    const READ_BYTES: u64 = 1024 * 1024;
    let dir = scratch("read");
    let batch = batch_of(64 * 1024);
    let mut log = open_log(&dir, false);
    let mut raw = RawWriter::new(scratch("read-raw"));
    let mut copy = batch.clone();
    for _ in 0..LOG_BYTES / batch.len() {
        log.append_as_leader(&mut copy, LeaderEpoch(0))
            .expect("append");
        raw.write(&batch, false);
    }
    log.set_high_watermark(log.log_end_offset());
    log.flush_now().expect("flush");
    let total_bytes = log.size_bytes();
    let mut group = c.benchmark_group("read_sequential");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total_bytes));
    group.bench_function("skald", |b| {
        b.iter(|| {
            let mut offset = log.log_start_offset();
            let mut seen = 0u64;
            while offset < log.log_end_offset() {
                let result = log
                    .read(offset, READ_BYTES, log.log_end_offset())
                    .expect("read");
                seen += result.records.len() as u64;
                // Next offset: the last batch's base + delta + 1 (header bytes 0..8, 23..27).
                let records = &result.records;
                let mut at = 0usize;
                while at < records.len() {
                    let base = i64::from_be_bytes(records[at..at + 8].try_into().expect("8"));
                    let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4"))
                        as usize;
                    let delta =
                        i32::from_be_bytes(records[at + 23..at + 27].try_into().expect("4")) as i64;
                    offset = Offset(base + delta + 1);
                    at += 12 + len;
                }
            }
            seen
        })
    });
    let raw_dir = raw.dir.clone();
    group.bench_function("raw_read", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            let mut buf = vec![0u8; READ_BYTES as usize];
            for i in 0..=raw.index {
                let Ok(mut file) = fs::File::open(raw_dir.join(format!("raw-{i}"))) else {
                    continue;
                };
                loop {
                    let n = file.read(&mut buf).expect("raw read");
                    if n == 0 {
                        break;
                    }
                    seen += n as u64;
                }
            }
            seen
        })
    });
    group.finish();
}

/// Appends without fsync, skald and raw measured in alternating blocks (which side goes
/// first alternates too), so page-cache and writeback state weigh on both alike. Criterion
/// measures one side after the other, and which runs first moves its ratio by several
/// points. Prints MB/s of each and the ratio. Runs only under `cargo bench`.
fn interleaved_appends(_c: &mut Criterion) {
    if !std::env::args().any(|a| a == "--bench") || filtered_out("interleaved") {
        return;
    }
    const BLOCKS: usize = 48;
    const BLOCK_BYTES: usize = 32 * 1024 * 1024;
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let template = batch_of(size);
        let appends_per_block = BLOCK_BYTES / template.len();
        let mut log = open_log(&scratch(&format!("interleaved-{label}-skald")), false);
        let mut raw = RawWriter::new(scratch(&format!("interleaved-{label}-raw")));
        let mut batch = template.clone();
        let (mut skald_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
        for block in 0..BLOCKS {
            for side in [block % 2, (block + 1) % 2] {
                let start = Instant::now();
                if side == 0 {
                    for _ in 0..appends_per_block {
                        log.append_as_leader(&mut batch, LeaderEpoch(0))
                            .expect("append");
                        if log.segment_count() > 5 {
                            log.set_high_watermark(log.log_end_offset());
                            log.apply_retention(0).expect("retention");
                        }
                    }
                    skald_time += start.elapsed();
                } else {
                    for _ in 0..appends_per_block {
                        raw.write(&template, false);
                    }
                    raw_time += start.elapsed();
                }
            }
        }
        let bytes = (BLOCKS * appends_per_block * template.len()) as f64;
        let skald_mbs = bytes / skald_time.as_secs_f64() / 1e6;
        let raw_mbs = bytes / raw_time.as_secs_f64() / 1e6;
        println!(
            "interleaved append_{label}: skald {skald_mbs:.0} MB/s, raw_write {raw_mbs:.0} MB/s, ratio {:.0}%",
            100.0 * skald_mbs / raw_mbs
        );
    }
}

/// The batch checksum alone, on pseudo-random bytes: `protocol::crc32c` against the
/// `crc32c` crate.
fn crc32c(c: &mut Criterion) {
    for (label, size) in [("64B", 64usize), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut group = c.benchmark_group(format!("crc32c_{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.measurement_time(Duration::from_secs(2));
        group.warm_up_time(Duration::from_millis(500));
        group.bench_function("crate", |b| {
            b.iter(|| ::crc32c::crc32c(std::hint::black_box(&data)))
        });
        group.bench_function("skald", |b| {
            b.iter(|| skald::protocol::crc32c::crc32c(std::hint::black_box(&data)))
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    crc32c,
    interleaved_appends,
    appends,
    group_commit,
    reads
);
criterion_main!(benches);
