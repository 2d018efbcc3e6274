//! Fault tests: every fault kind, by one-shot and by rate, and poison after a failed sync.

use super::{FaultConfig, OneShotFault, SimDisk};
use crate::base::IoErrorKind;
use crate::io::{read_exact_at, Disk, FileRef};

fn disk_with_file(seed: u64, path: &str, data: &[u8]) -> (SimDisk, FileRef) {
    let disk = SimDisk::new(seed);
    let file = disk.create(path).unwrap();
    file.append(data).unwrap();
    file.sync().unwrap();
    disk.sync_dir("").unwrap();
    (disk, file)
}

fn with_rates(disk: &SimDisk, change: impl FnOnce(&mut FaultConfig)) {
    let mut config = disk.faults();
    change(&mut config);
    disk.set_faults(config);
}

#[test]
fn read_eio_one_shot_fails_one_matching_read() {
    let (disk, a) = disk_with_file(1, "a", b"aaaa");
    let b = disk.create("b").unwrap();
    b.append(b"bbbb").unwrap();
    disk.inject(OneShotFault::ReadEio {
        path: Some("b".to_string()),
    });
    assert_eq!(
        &a.read_at(0, 4).unwrap()[..],
        b"aaaa",
        "other files are not hit"
    );
    assert_eq!(b.read_at(0, 4).unwrap_err().kind, IoErrorKind::Io);
    assert_eq!(
        &b.read_at(0, 4).unwrap()[..],
        b"bbbb",
        "consumed; not poisoned"
    );
    assert_eq!(disk.stats().faults.read_eio, 1);
}

#[test]
fn read_eio_rate_one_fails_every_read() {
    let (disk, file) = disk_with_file(2, "f", b"data");
    with_rates(&disk, |c| c.read_eio_rate = 1.0);
    for _ in 0..3 {
        assert_eq!(file.read_at(0, 4).unwrap_err().kind, IoErrorKind::Io);
    }
    with_rates(&disk, |c| c.read_eio_rate = 0.0);
    assert_eq!(&file.read_at(0, 4).unwrap()[..], b"data");
}

#[test]
fn write_eio_leaves_at_most_a_prefix() {
    let data: Vec<u8> = (0..=255).collect();
    let mut prefix_lengths = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let (disk, file) = disk_with_file(seed, "f", b"head");
        disk.inject(OneShotFault::WriteEio { path: None });
        assert_eq!(file.append(&data).unwrap_err().kind, IoErrorKind::Io);
        let len = file.len().unwrap() as usize;
        let now = file.read_at(0, len as u64).unwrap();
        assert_eq!(&now[..4], b"head");
        assert_eq!(
            now[4..],
            data[..len - 4],
            "seed {seed}: only a prefix was written"
        );
        prefix_lengths.insert(len - 4);
        assert_eq!(
            file.append(b"next").unwrap(),
            len as u64,
            "writes work again"
        );
        disk.assert_consistent();
    }
    assert!(
        prefix_lengths.len() > 1,
        "the prefix length varies: {prefix_lengths:?}"
    );
}

#[test]
fn failed_sync_poisons_every_handle_until_a_crash() {
    let (disk, file) = disk_with_file(3, "f", b"durable");
    let other = disk.open("f").unwrap();
    file.append(b" and not").unwrap();
    disk.inject(OneShotFault::SyncEio { path: None });
    assert_eq!(file.sync().unwrap_err().kind, IoErrorKind::Io);
    assert_eq!(disk.stats().faults.sync_eio, 1);
    for handle in [&file, &other, &disk.open("f").unwrap()] {
        assert_eq!(handle.sync().unwrap_err().kind, IoErrorKind::Poisoned);
        assert_eq!(
            handle.read_at(0, 1).unwrap_err().kind,
            IoErrorKind::Poisoned
        );
        assert_eq!(handle.append(b"x").unwrap_err().kind, IoErrorKind::Poisoned);
        assert_eq!(handle.len().unwrap_err().kind, IoErrorKind::Poisoned);
    }
    // Other files are unaffected.
    disk.create("g").unwrap().sync().unwrap();
    disk.crash();
    let reopened = disk.open("f").unwrap();
    let len = reopened.len().unwrap();
    let kept = read_exact_at(&*reopened, 0, len).unwrap();
    assert!(
        &kept[..] == b"durable" || kept.starts_with(b"durable"),
        "a crash after a failed sync keeps the durable bytes plus a prefix"
    );
    reopened.sync().unwrap();
}

#[test]
fn sync_eio_rate_fails_sync_and_sync_dir() {
    let (disk, file) = disk_with_file(4, "f", b"x");
    let fresh = disk.create("new").unwrap();
    with_rates(&disk, |c| c.sync_eio_rate = 1.0);
    assert_eq!(disk.sync_dir("").unwrap_err().kind, IoErrorKind::Io);
    assert_eq!(file.sync().unwrap_err().kind, IoErrorKind::Io);
    drop(fresh);
    with_rates(&disk, |c| c.sync_eio_rate = 0.0);
    disk.crash();
    assert!(
        !disk.exists("new").unwrap(),
        "a failed sync_dir made nothing durable"
    );
    assert!(disk.exists("f").unwrap());
}

#[test]
fn sync_dir_eio_one_shot_matches_its_directory() {
    let disk = SimDisk::new(5);
    disk.create_dir_all("d").unwrap();
    disk.create("d/f").unwrap();
    disk.inject(OneShotFault::SyncEio {
        path: Some("d".to_string()),
    });
    disk.sync_dir("").unwrap();
    assert_eq!(disk.sync_dir("d").unwrap_err().kind, IoErrorKind::Io);
    disk.sync_dir("d").unwrap();
    disk.crash();
    assert!(disk.exists("d/f").unwrap());
}

#[test]
fn capacity_refuses_growth_and_writes_nothing() {
    let disk = SimDisk::new(6);
    with_rates(&disk, |c| c.capacity_bytes = Some(100));
    let a = disk.create("a").unwrap();
    a.append(&[1; 60]).unwrap();
    let b = disk.create("b").unwrap();
    assert_eq!(b.append(&[2; 50]).unwrap_err().kind, IoErrorKind::NoSpace);
    assert_eq!(b.len().unwrap(), 0, "nothing of the failed write landed");
    assert_eq!(b.truncate(41).unwrap_err().kind, IoErrorKind::NoSpace);
    b.append(&[2; 40]).unwrap();
    a.write_at(0, &[3; 60]).unwrap();
    assert_eq!(disk.stats().faults.no_space, 2);
    // Removing a file frees its space once no handle holds it.
    drop(a);
    disk.remove("a").unwrap();
    b.append(&[2; 60]).unwrap();
    disk.assert_consistent();
}

#[test]
fn no_space_one_shot_and_rate() {
    let (disk, file) = disk_with_file(7, "f", b"");
    disk.inject(OneShotFault::NoSpace { path: None });
    assert_eq!(file.append(b"abc").unwrap_err().kind, IoErrorKind::NoSpace);
    assert_eq!(file.append(b"abc").unwrap(), 0);
    with_rates(&disk, |c| c.enospc_rate = 1.0);
    assert_eq!(
        file.write_at(0, b"z").unwrap_err().kind,
        IoErrorKind::NoSpace
    );
    assert_eq!(&file.read_at(0, 10).unwrap()[..], b"abc");
}

fn differing_bits(a: &[u8], b: &[u8]) -> Vec<(usize, u32)> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i, (x ^ y).count_ones()))
        .collect()
}

#[test]
fn bit_flip_one_shot_flips_one_bit_that_survives_a_crash() {
    let data = vec![0x5a; 100];
    let (disk, file) = disk_with_file(8, "f", &data);
    disk.inject(OneShotFault::BitFlip {
        path: "f".to_string(),
        position: 10,
    });
    let seen = file.read_at(0, 100).unwrap();
    assert_eq!(differing_bits(&data, &seen), vec![(10, 1)]);
    disk.crash();
    let after = disk.open("f").unwrap().read_at(0, 100).unwrap();
    assert_eq!(differing_bits(&data, &after), vec![(10, 1)]);
    assert_eq!(disk.stats().faults.bit_flip, 1);
}

#[test]
fn bit_flip_waits_until_its_position_exists() {
    let (disk, file) = disk_with_file(9, "f", b"ab");
    disk.inject(OneShotFault::BitFlip {
        path: "f".to_string(),
        position: 5,
    });
    assert_eq!(&file.read_at(0, 2).unwrap()[..], b"ab");
    file.append(&[0; 10]).unwrap();
    let seen = file.read_at(0, 12).unwrap();
    let mut expected = b"ab".to_vec();
    expected.extend_from_slice(&[0; 10]);
    assert_eq!(differing_bits(&expected, &seen), vec![(5, 1)]);
    disk.assert_consistent();
}

#[test]
fn bit_flip_rate_silently_corrupts_writes() {
    let (disk, file) = disk_with_file(10, "f", b"");
    with_rates(&disk, |c| c.bit_flip_rate = 1.0);
    let data = vec![0u8; 4096];
    assert_eq!(file.append(&data).unwrap(), 0);
    file.sync().unwrap();
    let seen = file.read_at(0, 4096).unwrap();
    let flips = differing_bits(&data, &seen);
    assert_eq!(flips.len(), 1);
    assert_eq!(flips[0].1, 1);
    assert_eq!(
        disk.durable_snapshot()["f"],
        seen.to_vec(),
        "the flip is durable"
    );
}

#[test]
fn short_reads_return_a_non_empty_strict_prefix() {
    let data: Vec<u8> = (0..200).collect();
    let (disk, file) = disk_with_file(11, "f", &data);
    disk.inject(OneShotFault::ShortRead { path: None });
    let short = file.read_at(50, 100).unwrap();
    assert!(!short.is_empty() && short.len() < 100, "{}", short.len());
    assert_eq!(short[..], data[50..50 + short.len()]);
    with_rates(&disk, |c| c.short_read_rate = 1.0);
    assert_eq!(
        file.read_at(199, 5).unwrap().len(),
        1,
        "one byte cannot be shortened"
    );
    assert_eq!(read_exact_at(&*file, 0, 200).unwrap()[..], data[..]);
    assert!(disk.stats().faults.short_read > 1);
}

#[test]
fn misdirected_writes_report_success_but_land_elsewhere() {
    let mut landed_elsewhere = false;
    let mut vanished = false;
    for seed in 0..40 {
        let (disk, file) = disk_with_file(seed, "f", &[0xaa; 4096]);
        disk.inject(OneShotFault::MisdirectedWrite { path: None });
        file.write_at(2048, &[0xbb; 512]).unwrap();
        assert_eq!(file.append(&[0xcc; 10]).unwrap(), 4096, "length unchanged");
        let now = file.read_at(0, 4096).unwrap();
        assert!(
            now[2048..2560].iter().all(|b| *b == 0xaa),
            "seed {seed}: not where asked"
        );
        let moved: Vec<usize> = (0..8).filter(|k| now[k * 512] == 0xbb).collect();
        match moved.as_slice() {
            [] => vanished = true,
            [k] => {
                assert!(now[k * 512..(k + 1) * 512].iter().all(|b| *b == 0xbb));
                assert!(*k < 4, "shifted back by a multiple of 512");
                landed_elsewhere = true;
            }
            _ => panic!("seed {seed}: landed twice"),
        }
        assert_eq!(disk.stats().faults.misdirected_write, 1);
        disk.assert_consistent();
    }
    assert!(landed_elsewhere && vanished);
}

#[test]
fn misdirected_append_grows_the_file_with_zeros() {
    let (disk, file) = disk_with_file(12, "f", b"");
    with_rates(&disk, |c| c.misdirected_write_rate = 1.0);
    assert_eq!(file.append(b"lost").unwrap(), 0);
    assert_eq!(&file.read_at(0, 10).unwrap()[..], b"\0\0\0\0");
}

#[test]
fn latency_accumulates_until_taken() {
    let disk = SimDisk::new(13);
    disk.inject(OneShotFault::Latency { ms: 7 });
    disk.inject(OneShotFault::Latency { ms: 5 });
    disk.create_dir_all("d").unwrap();
    disk.exists("d").unwrap();
    disk.list("").unwrap();
    assert_eq!(disk.take_delay_ms(), 12);
    assert_eq!(disk.take_delay_ms(), 0);
    with_rates(&disk, |c| {
        c.latency_rate = 1.0;
        c.latency_ms_max = 10;
    });
    let file = disk.create("f").unwrap();
    file.append(b"x").unwrap();
    let delay_ms = disk.take_delay_ms();
    assert!((2..=20).contains(&delay_ms), "{delay_ms}");
    assert_eq!(disk.stats().faults.latency, 4);
}

#[test]
fn one_shot_faults_follow_renames_and_wait_for_their_file() {
    let disk = SimDisk::new(14);
    let file = disk.create("old").unwrap();
    file.append(b"x").unwrap();
    disk.inject(OneShotFault::ReadEio {
        path: Some("new".to_string()),
    });
    file.read_at(0, 1).unwrap();
    disk.rename("old", "new").unwrap();
    assert_eq!(file.read_at(0, 1).unwrap_err().kind, IoErrorKind::Io);
}

#[test]
#[should_panic(expected = "must be a probability")]
fn rates_outside_zero_to_one_are_rejected() {
    SimDisk::new(15).set_faults(FaultConfig {
        read_eio_rate: 1.5,
        ..FaultConfig::default()
    });
}

#[test]
fn the_op_log_records_every_operation_in_order_with_its_outcome() {
    let disk = SimDisk::new(40);
    disk.log_ops(true);
    let file = disk.create("x").unwrap();
    file.write_at(0, b"abcd").unwrap();
    disk.inject(OneShotFault::SyncEio { path: None });
    assert!(file.sync().is_err());
    file.read_at(1, 2).unwrap_err(); // poisoned after the failed sync
    assert!(disk.open("missing").is_err());
    let (ops, unlogged) = disk.take_ops();
    assert_eq!(unlogged, 0);
    type Summary<'a> = (
        &'a str,
        &'a str,
        Option<u64>,
        Option<u64>,
        Option<IoErrorKind>,
    );
    let summary: Vec<Summary> = ops
        .iter()
        .map(|o| (o.op, o.path.as_str(), o.position, o.len, o.error))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("create", "x", None, None, None),
            ("write_at", "x", Some(0), Some(4), None),
            ("sync", "x", None, None, Some(IoErrorKind::Io)),
            (
                "read_at",
                "x",
                Some(1),
                Some(2),
                Some(IoErrorKind::Poisoned)
            ),
            ("open", "missing", None, None, Some(IoErrorKind::NotFound)),
        ]
    );
    assert!(disk.take_ops().0.is_empty(), "taking empties the log");
    disk.log_ops(false);
    disk.exists("x").unwrap();
    assert!(disk.take_ops().0.is_empty(), "nothing is recorded when off");
}
