//! `SimDisk`: an in-memory `Disk` that can lose what was not made durable, and can fail.
//!
//! Owns the crash model and the fault model that every simulation and storage test relies
//! on. Must never touch the OS (no std::fs, clocks, threads or tokio), iterate an unordered
//! collection, or draw randomness from anywhere but its own `Rng` seeded by `new(seed)`:
//! the same seed and the same sequence of calls give the same results, bit for bit.
//!
//! # Model
//! * **Identity.** Files and directories are nodes with inode-like ids (never reused).
//!   Names map to ids in two namespaces: every directory has *written* entries (what
//!   `open`, `list` and `exists` see) and *durable* entries (what survives a crash). The
//!   root `""` always exists. `create_dir_all` creates each missing level as a node.
//! * **Bytes.** Each file keeps its *written* bytes (what reads see), its *durable* bytes,
//!   and the list of operations (writes at positions, truncates) since its last
//!   successful `sync`. Invariant: written = durable + pending applied in order.
//!   `sync` applies the pending list to the durable bytes, so it costs O(bytes changed
//!   since the last sync), not O(file size).
//! * **Names.** `sync_dir(d)` copies `d`'s written entries to its durable entries (adds,
//!   renames into `d`, removes from `d`). A rename moves an id between written entries;
//!   it is durable once both parents were synced (until then a crash may leave the old
//!   name, the new name, both, or neither, depending on which parent was synced).
//! * **Crash** (`crash()`): every directory's written entries become its durable entries;
//!   nodes not reachable from the root through durable entries are dropped (so a file
//!   whose name never reached a synced directory vanishes, and one removed without a
//!   sync of its directory comes back). Each surviving file's bytes become its durable
//!   bytes plus a *prefix* of its pending operations chosen by the rng (none, some or
//!   all); if the last kept one is a write, with probability `torn_write_rate` only its
//!   part before a 512 B or 4 KiB boundary (absolute file position, strictly inside the
//!   write) lands. Bytes are never invented; later writes are never kept without the
//!   earlier ones. Pending lists and poison are cleared; every handle opened before the
//!   crash fails with `Io` ("stale handle after crash") from then on.
//! * **Faults** (`FaultConfig` rates, or `OneShotFault`s consumed by the next matching
//!   operation): EIO on read, write (after writing a random prefix) and sync; a failed
//!   sync *poisons* the file (every call on any handle, including handles opened later,
//!   fails with `Poisoned` until a crash); ENOSPC by rate or when growth would exceed
//!   `capacity_bytes` (nothing written); silent bit flips in stored bytes (they reach
//!   the durable bytes and survive crashes); short reads (a non-empty strict prefix);
//!   misdirected writes (`Ok`, the length grows, but the data lands 512·k bytes earlier
//!   or nowhere); latency, reported by `take_delay_ms`.
//!
//! # Differences from the real disk (on purpose)
//! * `sync_dir` on a file fails with `WrongKind` (the real disk fsyncs the file).
//! * Removing or renaming the root fails with `InvalidInput`.
//! * Read-only handles see later writes made through other handles (the real disk's
//!   mapping is fixed at open time; the trait forbids relying on either behaviour).
//! * Files are limited to `SIM_FILE_BYTES_MAX` (4 GiB) because they live in memory.
//! * Removed files and directories stay in memory while a crash could still bring them
//!   back; directories removed from both namespaces are only reclaimed at the next crash.

mod fault;
mod state;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod fault_tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

pub use fault::{FaultConfig, FaultCounts, OneShotFault, SimDiskStats};
pub use state::SIM_FILE_BYTES_MAX;

use crate::base::{IoError, IoErrorKind};
use crate::io::{validate_path, Disk, File, FileRef};
use state::{NodeId, State};

/// One finished disk operation, for the simulator's trace (`SimDisk::log_ops`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOp {
    /// `create`, `open`, `rename`, `remove`, `list`, `exists`, `sync_dir`, `mkdir`, `len`,
    /// `append`, `write_at`, `read_at`, `sync` or `truncate`.
    pub op: &'static str,
    pub path: String,
    /// Position and length for reads and positional writes, the length of an append and
    /// the new length of a truncate; the target of a rename is the `detail`.
    pub position: Option<u64>,
    pub len: Option<u64>,
    pub detail: Option<String>,
    /// The error's kind, if it failed.
    pub error: Option<IoErrorKind>,
}

impl DiskOp {
    fn new(op: &'static str, path: &str) -> DiskOp {
        DiskOp {
            op,
            path: path.to_string(),
            position: None,
            len: None,
            detail: None,
            error: None,
        }
    }

    fn at(self, position: u64, len: u64) -> DiskOp {
        DiskOp {
            position: Some(position),
            ..self.sized(len)
        }
    }

    fn sized(mut self, len: u64) -> DiskOp {
        self.len = Some(len);
        self
    }

    fn outcome<T>(mut self, result: &Result<T, IoError>) -> DiskOp {
        self.error = result.as_ref().err().map(|e| e.kind);
        self
    }
}

/// A simulated disk. Cloning shares the same disk (one per simulated node).
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

/// Locks the state. A panic while holding the lock already failed the test; later
/// callers (handle drops included) still get the state rather than a second panic.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimDisk {
    /// An empty disk (just the root directory) whose every random choice comes from `seed`.
    pub fn new(seed: u64) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    /// Simulates a power loss or node crash (see the module docs): only durable names
    /// and bytes survive, plus a random prefix of each file's unsynced operations, the
    /// last possibly torn. Every handle opened before the crash is stale from now on.
    pub fn crash(&self) {
        lock(&self.state).crash();
    }

    /// The current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.state).config.clone()
    }

    /// Replaces the fault configuration. Panics if a rate is not a probability.
    pub fn set_faults(&self, config: FaultConfig) {
        config.assert_valid();
        lock(&self.state).config = config;
    }

    /// Queues a one-shot fault, consumed by the next operation it matches.
    pub fn inject(&self, fault: OneShotFault) {
        lock(&self.state).one_shots.push(fault);
    }

    /// Starts (or stops and clears) recording every operation for `take_ops`.
    pub fn log_ops(&self, on: bool) {
        let mut state = lock(&self.state);
        state.op_log = on.then(Vec::new);
        state.ops_unlogged = 0;
    }

    /// The operations recorded since the last call, in order, and how many were not
    /// recorded because the log was full.
    pub fn take_ops(&self) -> (Vec<DiskOp>, u64) {
        let mut state = lock(&self.state);
        let ops = state
            .op_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        (ops, std::mem::take(&mut state.ops_unlogged))
    }

    /// Counters: operations, bytes written, syncs, crashes, faults per kind.
    pub fn stats(&self) -> SimDiskStats {
        lock(&self.state).stats.clone()
    }

    /// What a crash would keep for sure right now: every file reachable through durable
    /// directory entries, with its durable bytes (no unsynced operation applied).
    pub fn durable_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.state).durable_snapshot()
    }

    /// Test support: asserts the internal invariants (written = durable + pending).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        lock(&self.state).assert_consistent();
    }

    fn handle(&self, state: &State, id: NodeId, path: &str, read_only: bool) -> FileRef {
        Arc::new(SimFile {
            state: Arc::clone(&self.state),
            id,
            epoch: state.epoch,
            path: path.to_string(),
            read_only,
        })
    }

    fn open_handle(&self, path: &str, read_only: bool) -> Result<FileRef, IoError> {
        validate_path(path)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let id = state.open(path);
        state.log_op(|| DiskOp::new("open", path).outcome(&id));
        Ok(self.handle(&state, id?, path, read_only))
    }
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("SimDisk")
            .field("nodes", &state.nodes.len())
            .field("epoch", &state.epoch)
            .finish_non_exhaustive()
    }
}

impl Disk for SimDisk {
    fn create(&self, path: &str) -> Result<FileRef, IoError> {
        validate_path(path)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let id = state.create(path);
        state.log_op(|| DiskOp::new("create", path).outcome(&id));
        Ok(self.handle(&state, id?, path, false))
    }

    fn open(&self, path: &str) -> Result<FileRef, IoError> {
        self.open_handle(path, false)
    }

    fn open_read_only(&self, path: &str) -> Result<FileRef, IoError> {
        self.open_handle(path, true)
    }

    fn create_dir_all(&self, path: &str) -> Result<(), IoError> {
        validate_path(path)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.create_dir_all(path);
        state.log_op(|| DiskOp::new("mkdir", path).outcome(&result));
        result
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), IoError> {
        validate_path(from)?;
        validate_path(to)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.rename(from, to);
        state.log_op(|| {
            let mut op = DiskOp::new("rename", from).outcome(&result);
            op.detail = Some(to.to_string());
            op
        });
        result
    }

    fn remove(&self, path: &str) -> Result<(), IoError> {
        validate_path(path)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.remove(path);
        state.log_op(|| DiskOp::new("remove", path).outcome(&result));
        result
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, IoError> {
        validate_path(dir)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.list(dir);
        state.log_op(|| DiskOp::new("list", dir).outcome(&result));
        result
    }

    fn exists(&self, path: &str) -> Result<bool, IoError> {
        validate_path(path)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.exists(path);
        state.log_op(|| DiskOp::new("exists", path).outcome(&result));
        result
    }

    fn sync_dir(&self, dir: &str) -> Result<(), IoError> {
        validate_path(dir)?;
        let mut state = lock(&self.state);
        state.begin_disk_op();
        let result = state.sync_dir(dir);
        state.log_op(|| DiskOp::new("sync_dir", dir).outcome(&result));
        result
    }

    fn take_delay_ms(&self) -> u64 {
        std::mem::take(&mut lock(&self.state).delay_ms)
    }
}

/// A handle to a simulated file: a node id plus the crash epoch it was opened in.
struct SimFile {
    state: Arc<Mutex<State>>,
    id: NodeId,
    epoch: u64,
    /// The path it was opened under, for error messages only (renames do not update it).
    path: String,
    read_only: bool,
}

impl SimFile {
    /// Runs `op` with the lock held after the common checks (stale, poison, faults).
    fn with_file<T>(
        &self,
        writes: bool,
        record: impl FnOnce() -> DiskOp,
        op: impl FnOnce(&mut State) -> Result<T, IoError>,
    ) -> Result<T, IoError> {
        let mut state = lock(&self.state);
        let result = self.checked_op(&mut state, writes, op);
        state.log_op(|| record().outcome(&result));
        result
    }

    fn checked_op<T>(
        &self,
        state: &mut State,
        writes: bool,
        op: impl FnOnce(&mut State) -> Result<T, IoError>,
    ) -> Result<T, IoError> {
        state.begin_file_op(self.id, self.epoch, &self.path)?;
        if writes && self.read_only {
            return Err(IoError::new(
                IoErrorKind::InvalidInput,
                &self.path,
                "read-only handle",
            ));
        }
        op(state)
    }

    fn record(&self, op: &'static str) -> DiskOp {
        DiskOp::new(op, &self.path)
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl File for SimFile {
    fn len(&self) -> Result<u64, IoError> {
        self.with_file(
            false,
            || self.record("len"),
            |s| Ok(s.file(self.id).written.len() as u64),
        )
    }

    fn append(&self, data: &[u8]) -> Result<u64, IoError> {
        let record = || self.record("append").sized(data.len() as u64);
        self.with_file(true, record, |s| {
            let position = s.file(self.id).written.len() as u64;
            s.write(self.id, position, data, &self.path)?;
            Ok(position)
        })
    }

    fn write_at(&self, position: u64, data: &[u8]) -> Result<(), IoError> {
        let record = || self.record("write_at").at(position, data.len() as u64);
        self.with_file(true, record, |s| {
            s.write(self.id, position, data, &self.path)
        })
    }

    fn read_at(&self, position: u64, len: u64) -> Result<Bytes, IoError> {
        let record = || self.record("read_at").at(position, len);
        self.with_file(false, record, |s| {
            s.read(self.id, position, len, &self.path)
        })
    }

    fn sync(&self) -> Result<(), IoError> {
        self.with_file(
            true,
            || self.record("sync"),
            |s| s.sync(self.id, &self.path),
        )
    }

    fn truncate(&self, len: u64) -> Result<(), IoError> {
        let record = || self.record("truncate").sized(len);
        self.with_file(true, record, |s| s.truncate(self.id, len, &self.path))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        lock(&self.state).close(self.id, self.epoch);
    }
}
