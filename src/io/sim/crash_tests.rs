//! Crash-model tests: what survives `SimDisk::crash`, checked case by case and against
//! an independent model with random operation sequences (proptest).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{FaultConfig, SimDisk};
use crate::base::IoErrorKind;
use crate::io::{join, parent_of, read_exact_at, Disk};

fn read_all(disk: &SimDisk, path: &str) -> Vec<u8> {
    let file = disk.open(path).unwrap();
    let len = file.len().unwrap();
    read_exact_at(&*file, 0, len).unwrap().to_vec()
}

/// Distinguishable bytes: byte `i` of write number `tag`.
fn pattern(tag: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8 + 1)
        .collect()
}

#[test]
fn synced_data_and_dir_synced_names_survive_every_crash() {
    for seed in 0..50 {
        let disk = SimDisk::new(seed);
        disk.create_dir_all("d").unwrap();
        disk.sync_dir("").unwrap();
        let file = disk.create("d/f").unwrap();
        file.append(&pattern(1, 5000)).unwrap();
        file.sync().unwrap();
        disk.sync_dir("d").unwrap();
        for _ in 0..3 {
            disk.crash();
            assert_eq!(read_all(&disk, "d/f"), pattern(1, 5000), "seed {seed}");
            assert_eq!(disk.list("").unwrap(), vec!["d"], "seed {seed}");
        }
    }
}

#[test]
fn never_dir_synced_entries_vanish() {
    let disk = SimDisk::new(1);
    let file = disk.create("f").unwrap();
    file.append(b"synced bytes, unsynced name").unwrap();
    file.sync().unwrap();
    // A synced directory whose own name never reached a synced parent vanishes with
    // everything under it.
    disk.create_dir_all("d").unwrap();
    let inner = disk.create("d/g").unwrap();
    inner.append(b"x").unwrap();
    inner.sync().unwrap();
    disk.sync_dir("d").unwrap();
    assert!(disk.durable_snapshot().is_empty());
    disk.crash();
    assert!(disk.list("").unwrap().is_empty());
    assert!(!disk.exists("f").unwrap());
    assert!(!disk.exists("d/g").unwrap());
    disk.assert_consistent();
}

#[test]
fn unsynced_remove_is_undone_by_a_crash() {
    let disk = SimDisk::new(2);
    let file = disk.create("f").unwrap();
    file.append(b"keep me").unwrap();
    file.sync().unwrap();
    disk.sync_dir("").unwrap();
    drop(file);
    disk.remove("f").unwrap();
    assert!(!disk.exists("f").unwrap());
    disk.crash();
    assert_eq!(read_all(&disk, "f"), b"keep me");
    disk.remove("f").unwrap();
    disk.sync_dir("").unwrap();
    disk.crash();
    assert!(!disk.exists("f").unwrap());
    disk.assert_consistent();
}

#[test]
fn rename_is_durable_only_after_both_parents_are_synced() {
    // (sync source dir, sync target dir) -> names present after the crash.
    let cases = [
        (false, false, vec!["x/a"]),
        (false, true, vec!["x/a", "y/b"]),
        (true, false, vec![]),
        (true, true, vec!["y/b"]),
    ];
    for (sync_x, sync_y, expected) in cases {
        let disk = SimDisk::new(3);
        disk.create_dir_all("x").unwrap();
        disk.create_dir_all("y").unwrap();
        disk.sync_dir("").unwrap();
        let file = disk.create("x/a").unwrap();
        file.append(b"payload").unwrap();
        file.sync().unwrap();
        disk.sync_dir("x").unwrap();
        disk.rename("x/a", "y/b").unwrap();
        if sync_x {
            disk.sync_dir("x").unwrap();
        }
        if sync_y {
            disk.sync_dir("y").unwrap();
        }
        disk.crash();
        let found: Vec<&str> = ["x/a", "y/b"]
            .into_iter()
            .filter(|p| disk.exists(p).unwrap())
            .collect();
        assert_eq!(found, expected, "sync x: {sync_x}, sync y: {sync_y}");
        for path in found {
            assert_eq!(read_all(&disk, path), b"payload");
        }
        disk.assert_consistent();
    }
}

#[test]
fn handles_opened_before_a_crash_are_stale() {
    let disk = SimDisk::new(4);
    let file = disk.create("f").unwrap();
    file.sync().unwrap();
    disk.sync_dir("").unwrap();
    disk.crash();
    for result in [
        file.len().map(|_| ()),
        file.append(b"x").map(|_| ()),
        file.read_at(0, 1).map(|_| ()),
        file.sync(),
        file.truncate(0),
    ] {
        let error = result.unwrap_err();
        assert_eq!(error.kind, IoErrorKind::Io);
        assert_eq!(error.detail, "stale handle after crash");
    }
    let fresh = disk.open("f").unwrap();
    fresh.append(b"ok").unwrap();
    drop(file);
    assert_eq!(fresh.len().unwrap(), 2);
}

#[test]
fn durable_snapshot_tracks_file_and_dir_syncs() {
    let disk = SimDisk::new(5);
    let file = disk.create("f").unwrap();
    file.append(b"one").unwrap();
    disk.sync_dir("").unwrap();
    assert_eq!(
        disk.durable_snapshot(),
        BTreeMap::from([("f".to_string(), vec![])])
    );
    file.sync().unwrap();
    file.append(b"two").unwrap();
    assert_eq!(
        disk.durable_snapshot(),
        BTreeMap::from([("f".to_string(), b"one".to_vec())])
    );
}

/// Over many seeds, a crash after three unsynced writes must sometimes keep none, some,
/// all, and a torn prefix; and whatever it keeps must be a prefix of the writes, torn
/// only at 512 B boundaries of the absolute position.
#[test]
fn crash_keeps_a_random_prefix_of_unsynced_writes_possibly_torn() {
    // Writes at [0, 700), [700, 2200), [2200, 7200): no write starts on a boundary.
    let writes = [(0usize, 700usize), (700, 1500), (2200, 5000)];
    let full = pattern(9, 7200);
    let mut lengths: BTreeMap<usize, u64> = BTreeMap::new();
    for seed in 0..400 {
        let disk = SimDisk::new(seed);
        let file = disk.create("f").unwrap();
        file.sync().unwrap();
        disk.sync_dir("").unwrap();
        for (position, len) in writes {
            file.write_at(position as u64, &full[position..position + len])
                .unwrap();
        }
        disk.crash();
        let kept = read_all(&disk, "f");
        assert_eq!(
            kept[..],
            full[..kept.len()],
            "seed {seed}: a prefix, never invented bytes"
        );
        let whole = [0, 700, 2200, 7200].contains(&kept.len());
        assert!(
            whole || kept.len().is_multiple_of(512),
            "seed {seed}: torn at a sector boundary, got {}",
            kept.len()
        );
        *lengths.entry(kept.len()).or_default() += 1;
    }
    for outcome in [0, 700, 2200, 7200] {
        assert!(
            lengths.contains_key(&outcome),
            "never kept {outcome} bytes: {lengths:?}"
        );
    }
    assert!(
        lengths.contains_key(&4096),
        "never tore at the page boundary: {lengths:?}"
    );
    assert!(
        lengths.contains_key(&1024),
        "never tore at a sector boundary: {lengths:?}"
    );
}

#[test]
fn torn_write_rate_zero_never_tears() {
    for seed in 0..100 {
        let disk = SimDisk::new(seed);
        disk.set_faults(FaultConfig {
            torn_write_rate: 0.0,
            ..FaultConfig::default()
        });
        let file = disk.create("f").unwrap();
        disk.sync_dir("").unwrap();
        file.append(&pattern(1, 3000)).unwrap();
        disk.crash();
        let len = read_all(&disk, "f").len();
        assert!(len == 0 || len == 3000, "seed {seed}: {len}");
        assert_eq!(disk.stats().faults.torn_write, 0);
    }
}

#[test]
fn crash_keeps_unsynced_truncates_in_order() {
    for seed in 0..100 {
        let disk = SimDisk::new(seed);
        let file = disk.create("f").unwrap();
        file.append(b"abcdef").unwrap();
        file.sync().unwrap();
        disk.sync_dir("").unwrap();
        file.truncate(2).unwrap();
        file.append(b"XY").unwrap();
        disk.crash();
        let kept = read_all(&disk, "f");
        let allowed: [&[u8]; 3] = [b"abcdef", b"ab", b"abXY"];
        assert!(allowed.contains(&&kept[..]), "seed {seed}: {kept:?}");
    }
}

/// The same seed and the same calls give the same results, snapshot and counters, even
/// with every fault enabled.
#[test]
fn same_seed_same_calls_replay_exactly() {
    fn run(seed: u64) -> (Vec<String>, BTreeMap<String, Vec<u8>>, super::SimDiskStats) {
        let disk = SimDisk::new(seed);
        disk.set_faults(FaultConfig {
            read_eio_rate: 0.05,
            write_eio_rate: 0.05,
            sync_eio_rate: 0.05,
            enospc_rate: 0.05,
            capacity_bytes: Some(200_000),
            bit_flip_rate: 0.05,
            short_read_rate: 0.2,
            misdirected_write_rate: 0.05,
            latency_rate: 0.3,
            latency_ms_max: 50,
            sync_latency_ms: 3,
            torn_write_rate: 0.5,
        });
        let mut trace = Vec::new();
        disk.create_dir_all("p").unwrap();
        let _ = disk.sync_dir("");
        for round in 0..40u64 {
            let path = format!("p/{}", round % 3);
            let file = match disk.open(&path) {
                Ok(file) => file,
                Err(_) => match disk.create(&path) {
                    Ok(file) => file,
                    Err(e) => {
                        trace.push(format!("create {e}"));
                        continue;
                    }
                },
            };
            trace.push(format!(
                "{:?}",
                file.append(&pattern(round, 1000 + round as usize * 37))
            ));
            trace.push(format!(
                "{:?}",
                file.write_at(round * 100, &pattern(round + 1, 600))
            ));
            trace.push(format!(
                "{:?}",
                file.read_at(round * 50, 2000).map(|b| b.to_vec())
            ));
            trace.push(format!("{:?}", file.sync()));
            trace.push(format!("{:?}", disk.sync_dir("p")));
            if round % 7 == 3 {
                trace.push(format!("{:?}", disk.rename(&path, "p/renamed")));
            }
            if round % 5 == 4 {
                drop(file);
                disk.crash();
            }
            trace.push(format!("delay {}", disk.take_delay_ms()));
        }
        disk.assert_consistent();
        (trace, disk.durable_snapshot(), disk.stats())
    }
    let first = run(42);
    let second = run(42);
    assert_eq!(first.0, second.0);
    assert_eq!(first.1, second.1);
    assert_eq!(first.2, second.2);
    assert!(first.2.faults.latency > 0 && first.2.faults.short_read > 0);
    assert_ne!(
        run(43).0,
        first.0,
        "a different seed takes different choices"
    );
}

// ----- property test against an independent model -------------------------------------

const DIRS: [&str; 2] = ["", "d"];
const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Op {
    Create {
        dir: usize,
        name: usize,
    },
    Append {
        file: usize,
        len: usize,
    },
    WriteAt {
        file: usize,
        position: u64,
        len: usize,
    },
    Truncate {
        file: usize,
        len: u64,
    },
    Sync {
        file: usize,
    },
    SyncDir {
        dir: usize,
    },
    Rename {
        file: usize,
        dir: usize,
        name: usize,
    },
    Remove {
        file: usize,
    },
    Crash,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DIRS.len(), 0..NAMES.len()).prop_map(|(dir, name)| Op::Create { dir, name }),
        4 => (any::<usize>(), 0..9000usize).prop_map(|(file, len)| Op::Append { file, len }),
        2 => (any::<usize>(), 0..12_000u64, 1..5000usize)
            .prop_map(|(file, position, len)| Op::WriteAt { file, position, len }),
        1 => (any::<usize>(), 0..12_000u64).prop_map(|(file, len)| Op::Truncate { file, len }),
        3 => any::<usize>().prop_map(|file| Op::Sync { file }),
        3 => (0..DIRS.len()).prop_map(|dir| Op::SyncDir { dir }),
        1 => (any::<usize>(), 0..DIRS.len(), 0..NAMES.len())
            .prop_map(|(file, dir, name)| Op::Rename { file, dir, name }),
        1 => any::<usize>().prop_map(|file| Op::Remove { file }),
        2 => Just(Op::Crash),
    ]
}

/// A change the model knows is written but not durable.
#[derive(Clone, Debug)]
enum ModelChange {
    Write { position: usize, data: Vec<u8> },
    Truncate { len: usize },
}

impl ModelChange {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            ModelChange::Write { position, data } => {
                if image.len() < position + data.len() {
                    image.resize(position + data.len(), 0);
                }
                image[*position..position + data.len()].copy_from_slice(data);
            }
            ModelChange::Truncate { len } => image.resize(*len, 0),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct ModelFile {
    durable: Vec<u8>,
    pending: Vec<ModelChange>,
    written: Vec<u8>,
}

impl ModelFile {
    fn change(&mut self, change: ModelChange) {
        change.apply(&mut self.written);
        self.pending.push(change);
    }

    /// Whether `observed` is the durable bytes plus a prefix of the pending changes, the
    /// last kept write possibly cut at a 512 B boundary strictly inside it.
    fn allows_after_crash(&self, observed: &[u8]) -> bool {
        let mut image = self.durable.clone();
        if image == observed {
            return true;
        }
        for change in &self.pending {
            if let ModelChange::Write { position, data } = change {
                let end = position + data.len();
                let mut cut = (position / 512 + 1) * 512;
                while cut < end {
                    let mut torn = image.clone();
                    ModelChange::Write {
                        position: *position,
                        data: data[..cut - position].to_vec(),
                    }
                    .apply(&mut torn);
                    if torn == observed {
                        return true;
                    }
                    cut += 512;
                }
            }
            change.apply(&mut image);
            if image == observed {
                return true;
            }
        }
        false
    }
}

/// The model: file identities with durable/pending/written bytes, and the written and
/// durable namespaces as path -> identity (only files; `d` is created durable up front).
#[derive(Default)]
struct Model {
    files: BTreeMap<u64, ModelFile>,
    written: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    next_id: u64,
}

impl Model {
    fn pick(&self, index: usize) -> Option<(String, u64)> {
        if self.written.is_empty() {
            return None;
        }
        let (path, id) = self.written.iter().nth(index % self.written.len())?;
        Some((path.clone(), *id))
    }

    fn files_in(names: &BTreeMap<String, u64>, dir: &str) -> Vec<String> {
        names
            .keys()
            .filter(|p| parent_of(p) == dir)
            .map(|p| p[p.rfind('/').map_or(0, |i| i + 1)..].to_string())
            .collect()
    }
}

fn check_written_view(disk: &SimDisk, model: &Model) -> Result<(), TestCaseError> {
    for dir in DIRS {
        let mut listed = disk.list(dir).unwrap();
        listed.retain(|name| !(dir.is_empty() && name == "d"));
        prop_assert_eq!(
            listed,
            Model::files_in(&model.written, dir),
            "listing of {:?}",
            dir
        );
    }
    for (path, id) in &model.written {
        prop_assert!(
            read_all(disk, path) == model.files[id].written,
            "contents of {}",
            path
        );
    }
    disk.assert_consistent();
    Ok(())
}

fn apply_op(disk: &SimDisk, model: &mut Model, op: &Op, tag: u64) -> Result<(), TestCaseError> {
    match *op {
        Op::Create { dir, name } => {
            let path = join(DIRS[dir], NAMES[name]);
            let result = disk.create(&path);
            if model.written.contains_key(&path) {
                prop_assert_eq!(result.unwrap_err().kind, IoErrorKind::AlreadyExists);
            } else {
                result.unwrap();
                model.next_id += 1;
                model.files.insert(model.next_id, ModelFile::default());
                model.written.insert(path, model.next_id);
            }
        }
        Op::Append { file, len } => {
            let Some((path, id)) = model.pick(file) else {
                return Ok(());
            };
            let data = pattern(tag, len);
            let position = disk.open(&path).unwrap().append(&data).unwrap() as usize;
            let entry = model.files.get_mut(&id).unwrap();
            prop_assert_eq!(position, entry.written.len());
            if !data.is_empty() {
                entry.change(ModelChange::Write { position, data });
            }
        }
        Op::WriteAt {
            file,
            position,
            len,
        } => {
            let Some((path, id)) = model.pick(file) else {
                return Ok(());
            };
            let data = pattern(tag, len);
            disk.open(&path).unwrap().write_at(position, &data).unwrap();
            let position = position as usize;
            model
                .files
                .get_mut(&id)
                .unwrap()
                .change(ModelChange::Write { position, data });
        }
        Op::Truncate { file, len } => {
            let Some((path, id)) = model.pick(file) else {
                return Ok(());
            };
            disk.open(&path).unwrap().truncate(len).unwrap();
            let len = len as usize;
            model
                .files
                .get_mut(&id)
                .unwrap()
                .change(ModelChange::Truncate { len });
        }
        Op::Sync { file } => {
            let Some((path, id)) = model.pick(file) else {
                return Ok(());
            };
            disk.open(&path).unwrap().sync().unwrap();
            let entry = model.files.get_mut(&id).unwrap();
            entry.durable = entry.written.clone();
            entry.pending.clear();
        }
        Op::SyncDir { dir } => {
            disk.sync_dir(DIRS[dir]).unwrap();
            let in_dir = |p: &String| parent_of(p) == DIRS[dir];
            model.durable.retain(|p, _| !in_dir(p));
            for (path, id) in &model.written {
                if in_dir(path) {
                    model.durable.insert(path.clone(), *id);
                }
            }
        }
        Op::Rename { file, dir, name } => {
            let Some((from, id)) = model.pick(file) else {
                return Ok(());
            };
            let to = join(DIRS[dir], NAMES[name]);
            disk.rename(&from, &to).unwrap();
            model.written.remove(&from);
            model.written.insert(to, id);
        }
        Op::Remove { file } => {
            let Some((path, _)) = model.pick(file) else {
                return Ok(());
            };
            disk.remove(&path).unwrap();
            model.written.remove(&path);
        }
        Op::Crash => {
            disk.crash();
            for dir in DIRS {
                let mut listed = disk.list(dir).unwrap();
                listed.retain(|name| !(dir.is_empty() && name == "d"));
                prop_assert_eq!(
                    listed,
                    Model::files_in(&model.durable, dir),
                    "after a crash {:?} lists exactly its durable entries",
                    dir
                );
            }
            for (path, id) in model.durable.clone() {
                let observed = read_all(disk, &path);
                let entry = model.files.get_mut(&id).unwrap();
                prop_assert!(
                    entry.allows_after_crash(&observed),
                    "{} after crash: {} bytes, durable {} bytes + {} pending changes",
                    path,
                    observed.len(),
                    entry.durable.len(),
                    entry.pending.len()
                );
                // What the crash kept is now the durable state of that identity.
                entry.durable = observed.clone();
                entry.written = observed;
                entry.pending.clear();
            }
            model.written = model.durable.clone();
            let live: Vec<u64> = model.durable.values().copied().collect();
            model.files.retain(|id, _| live.contains(id));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After every crash each file holds its durable bytes plus a prefix of later
    /// changes (the last write possibly torn at a 512 B boundary), exactly the
    /// dir-synced names exist, and between crashes reads see every write.
    #[test]
    fn crash_model_holds_for_random_op_sequences(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let disk = SimDisk::new(seed);
        disk.create_dir_all("d").unwrap();
        disk.sync_dir("").unwrap();
        let mut model = Model::default();
        for (tag, op) in ops.iter().enumerate() {
            apply_op(&disk, &mut model, op, tag as u64 + 1)?;
            check_written_view(&disk, &model)?;
        }
        disk.crash();
        apply_op(&disk, &mut model, &Op::Crash, 0)?;
    }
}
