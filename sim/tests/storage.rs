//! The durability promise of fsync-before-ack (`flush.messages=1`), checked end to end on
//! the real log and its group-commit driver: concurrent producers append through a
//! `LogHandle` on a simulated node; the node is killed at a random moment and its disk
//! crashed (unsynced bytes lost, last write maybe torn), then restarted, many times.
//! After every crash, every append that was acknowledged must be in the recovered log at
//! the offset it was acknowledged with, byte for byte; nothing unacknowledged may appear
//! in the middle (the log stays contiguous). In page-cache mode acknowledged appends may
//! be lost, but only as a suffix.
#![cfg(madsim)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use madsim::runtime::{Handle, Runtime};
use skald::base::{LeaderEpoch, Offset};
use skald::broker::log_driver;
use skald::io::sim::{FaultConfig, SimDisk};
use skald::io::{Clock, DiskRef};
use skald::log::{LogConfig, PartitionLog};
use skald::protocol::{records, Compression, RecordBatchBuilder, RecordInput};

const DIR: &str = "queue-0";
const PRODUCERS: u64 = 8;
const CRASHES: u32 = 6;

/// Acknowledged appends: (offset, value), in acknowledgement order.
type Acked = Arc<Mutex<Vec<(Offset, String)>>>;

fn config(fsync_before_ack: bool) -> LogConfig {
    LogConfig {
        segment_bytes: 4_096,
        flush_messages: if fsync_before_ack { 1 } else { i64::MAX },
        ..LogConfig::default()
    }
}

fn batch(value: &str) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder.append(RecordInput {
        timestamp_ms: skald::io::real::system_time_ms(),
        key: None,
        value: Some(Bytes::from(value.to_string())),
        headers: Vec::new(),
    });
    builder.build().expect("batch").to_vec()
}

/// The node: opens the log, starts the driver, runs producers until killed.
async fn node(disk: SimDisk, fsync: bool, life: u32, acked: Acked) {
    let shared: DiskRef = Arc::new(disk);
    let (log, _) =
        PartitionLog::open(shared, DIR, config(fsync), Clock::system()).expect("recover log");
    let handle = log_driver::spawn(log);
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let handle = handle.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                let value = format!("life{life}-p{producer}-n{n}");
                match handle.append(batch(&value), LeaderEpoch(life as i32)).await {
                    Ok(info) => acked
                        .lock()
                        .expect("acked lock")
                        .push((info.first_offset, value)),
                    Err(e) => panic!("append failed without a disk fault: {e}"),
                }
                let pause_ms = madsim::rand::random::<u64>() % 5;
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Every value in the log, by offset.
fn recovered(disk: &SimDisk, fsync: bool) -> Vec<(Offset, String)> {
    let shared: DiskRef = Arc::new(disk.clone());
    let (log, _) =
        PartitionLog::open(shared, DIR, config(fsync), Clock::system()).expect("recover for check");
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log
            .read(offset, 1 << 20, log.log_end_offset())
            .expect("read");
        let bytes = read.records.clone();
        let mut at = 0usize;
        while at < bytes.len() {
            let length =
                i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("len")) as usize + 12;
            let one = bytes.slice(at..at + length);
            let base = Offset(i64::from_be_bytes(
                bytes[at..at + 8].try_into().expect("base"),
            ));
            for record in records(&one).expect("stored batch decodes") {
                let value = String::from_utf8(record.value.expect("value").to_vec()).expect("utf8");
                out.push((Offset(base.0 + record.offset_delta as i64), value));
            }
            at += length;
        }
        offset = out.last().map(|(o, _)| o.next()).unwrap_or(offset);
    }
    out
}

fn scenario(seed: u64, fsync: bool) -> (usize, usize) {
    let runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.block_on(async move {
        let handle = Handle::current();
        let disk = SimDisk::new(seed);
        // An fsync takes 2 ms of virtual time, so appends race with flushes as they do
        // on a real disk (with zero-time fsyncs an early ack would go unnoticed).
        disk.set_faults(FaultConfig {
            torn_write_rate: 0.5,
            sync_latency_ms: 2,
            ..FaultConfig::default()
        });
        let mut acked_total = 0;
        let mut lost_total = 0;
        let mut survivors: Vec<(Offset, String)> = Vec::new();
        for life in 0..CRASHES {
            let acked: Acked = Arc::new(Mutex::new(Vec::new()));
            let (d, a) = (disk.clone(), acked.clone());
            let node_handle = handle
                .create_node()
                .name(format!("broker-life{life}"))
                .init(move || node(d.clone(), fsync, life, a.clone()))
                .build();
            let run_ms = 50 + madsim::rand::random::<u64>() % 400;
            tokio::time::sleep(Duration::from_millis(run_ms)).await;
            handle.kill(node_handle.id());
            disk.crash();
            let log = recovered(&disk, fsync);
            let acked = acked.lock().expect("acked lock").clone();
            acked_total += acked.len();
            // The log is contiguous from its start.
            for pair in log.windows(2) {
                assert_eq!(pair[1].0, pair[0].0.next(), "seed {seed}: hole in the recovered log");
            }
            // Earlier lives' survivors are still there, unchanged.
            for (i, survivor) in survivors.iter().enumerate() {
                assert_eq!(log.get(i), Some(survivor), "seed {seed}: a recovered record changed or vanished");
            }
            let by_offset: std::collections::BTreeMap<Offset, &String> = log.iter().map(|(o, v)| (*o, v)).collect();
            let mut lost: Vec<Offset> = Vec::new();
            for (offset, value) in &acked {
                match by_offset.get(offset) {
                    Some(found) => assert_eq!(*found, value, "seed {seed}: offset {offset} holds another value"),
                    None => lost.push(*offset),
                }
            }
            if fsync {
                let shown: Vec<&Offset> = lost.iter().take(10).collect();
                assert!(lost.is_empty(), "seed {seed}: {} acknowledged offsets lost with fsync before ack, first {shown:?}", lost.len());
            } else if let Some(first_lost) = lost.iter().min() {
                // Page-cache mode: only a suffix may be lost.
                let end = log.last().map_or(Offset(0), |(o, _)| o.next());
                assert!(*first_lost >= end, "seed {seed}: lost {first_lost} below the recovered end {end}");
            }
            lost_total += lost.len();
            survivors = log;
        }
        (acked_total, lost_total)
    })
}

fn seed_from_env() -> u64 {
    std::env::var("MADSIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

#[test]
fn fsync_before_ack_never_loses_an_acknowledged_append() {
    let seed = seed_from_env();
    let (acked, lost) = scenario(seed, true);
    assert!(
        acked > 100,
        "seed {seed}: too few appends acknowledged ({acked}) to mean anything"
    );
    assert_eq!(lost, 0);
}

#[test]
fn page_cache_mode_loses_only_a_suffix() {
    let seed = seed_from_env();
    let (acked, _lost) = scenario(seed, false);
    assert!(
        acked > 100,
        "seed {seed}: too few appends acknowledged ({acked})"
    );
}
