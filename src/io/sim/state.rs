//! The simulated disk's whole state behind one mutex: nodes (files and directories by id),
//! the two namespaces, the fault queue, the rng and the counters. Every method here runs
//! with the lock held and never calls out of the module.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::fault::{FaultConfig, OneShotFault, SimDiskStats};
use super::DiskOp;
use crate::base::limits::{
    DISK_PAGE_BYTES, DISK_READ_BYTES_MAX, DISK_SECTOR_BYTES, SIM_DISK_OPS_LOGGED_MAX,
};
use crate::base::{IoError, IoErrorKind, Rng};
use crate::io::parent_of;

/// Inode-like identity of a file or directory. Never reused, so a stale id can never
/// name a newer node.
pub(super) type NodeId = u64;

/// The root directory's id; the root always exists.
pub(super) const ROOT: NodeId = 0;

/// Largest length a simulated file may reach. Files live in memory, so a write at a
/// huge position must be refused rather than attempted (the real disk would answer
/// EFBIG or succeed sparsely).
pub const SIM_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// A change to a file's bytes that is written but not yet durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PendingOp {
    Write { position: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

impl PendingOp {
    /// Applies the change to an image of the file.
    pub(super) fn apply(&self, image: &mut Vec<u8>) {
        match self {
            PendingOp::Write { position, data } => {
                let start = *position as usize;
                let end = start + data.len();
                if end > image.len() {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            PendingOp::Truncate { len } => image.resize(*len as usize, 0),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct DirNode {
    /// Entries as reads see them.
    pub(super) written: BTreeMap<String, NodeId>,
    /// Entries as of the last successful `sync_dir` of this directory.
    pub(super) durable: BTreeMap<String, NodeId>,
}

#[derive(Debug, Default)]
pub(super) struct FileNode {
    /// What reads see. Invariant: `written == durable + pending applied in order`.
    pub(super) written: Vec<u8>,
    /// What survives a crash for sure (as of the last successful sync).
    pub(super) durable: Vec<u8>,
    /// Changes since the last successful sync, in call order.
    pub(super) pending: Vec<PendingOp>,
    /// Set by a failed sync; cleared only by a crash.
    pub(super) poisoned: bool,
    /// Live (non-stale) handles; the node is kept while any exist.
    pub(super) open_handles: u64,
    /// Entries naming this file in the written namespace.
    pub(super) links_written: u64,
    /// Entries naming this file in the durable namespace (of any directory, reachable or
    /// not, so it over-counts and garbage collection is conservative until a crash).
    pub(super) links_durable: u64,
}

#[derive(Debug)]
pub(super) enum Node {
    Dir(DirNode),
    File(FileNode),
}

/// Selects the one-shot faults of one kind, giving their path filter.
type FaultPicker = fn(&OneShotFault) -> Option<&Option<String>>;

/// Which operation a one-shot fault or rate is being checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultSite {
    Read,
    Write,
    Sync,
}

pub(super) struct State {
    pub(super) rng: Rng,
    pub(super) config: FaultConfig,
    pub(super) one_shots: Vec<OneShotFault>,
    pub(super) stats: SimDiskStats,
    pub(super) delay_ms: u64,
    /// Operations recorded for the simulator's trace, when it asked for them.
    pub(super) op_log: Option<Vec<DiskOp>>,
    pub(super) ops_unlogged: u64,
    /// Incremented by every crash; handles of an older epoch are stale.
    pub(super) epoch: u64,
    next_id: NodeId,
    pub(super) nodes: BTreeMap<NodeId, Node>,
    /// Sum of the written lengths of the files that are named in the written namespace
    /// or open, for `capacity_bytes`.
    written_bytes_total: u64,
}

fn err(kind: IoErrorKind, path: &str, detail: &str) -> IoError {
    IoError::new(kind, path, detail)
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn last_component(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

impl State {
    pub(super) fn new(seed: u64) -> State {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        State {
            rng: Rng::with_seed(seed),
            config: FaultConfig::default(),
            one_shots: Vec::new(),
            stats: SimDiskStats::default(),
            delay_ms: 0,
            op_log: None,
            ops_unlogged: 0,
            epoch: 0,
            next_id: ROOT + 1,
            nodes,
            written_bytes_total: 0,
        }
    }

    // ----- nodes and paths -------------------------------------------------------------

    fn dir(&self, id: NodeId) -> &DirNode {
        match self.nodes.get(&id) {
            Some(Node::Dir(d)) => d,
            _ => panic!("invariant: node {id} is a live directory"),
        }
    }

    fn dir_mut(&mut self, id: NodeId) -> &mut DirNode {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(d)) => d,
            _ => panic!("invariant: node {id} is a live directory"),
        }
    }

    pub(super) fn file(&self, id: NodeId) -> &FileNode {
        match self.nodes.get(&id) {
            Some(Node::File(f)) => f,
            _ => panic!("invariant: node {id} is a live file"),
        }
    }

    fn file_mut(&mut self, id: NodeId) -> &mut FileNode {
        match self.nodes.get_mut(&id) {
            Some(Node::File(f)) => f,
            _ => panic!("invariant: node {id} is a live file"),
        }
    }

    fn is_dir(&self, id: NodeId) -> bool {
        matches!(self.nodes.get(&id), Some(Node::Dir(_)))
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        id
    }

    /// The node `path` names in the written namespace. A missing component is
    /// `NotFound`; walking through a file is `WrongKind` (ENOTDIR), as on the real disk.
    pub(super) fn resolve(&self, path: &str) -> Result<NodeId, IoError> {
        let mut id = ROOT;
        for name in components(path) {
            let Some(Node::Dir(dir)) = self.nodes.get(&id) else {
                return Err(err(IoErrorKind::WrongKind, path, "not a directory"));
            };
            id = *dir
                .written
                .get(name)
                .ok_or_else(|| err(IoErrorKind::NotFound, path, "no such file or directory"))?;
        }
        Ok(id)
    }

    /// The directory that holds `path` and the entry name. `path` must not be the root.
    fn resolve_parent<'p>(&self, path: &'p str) -> Result<(NodeId, &'p str), IoError> {
        assert!(!path.is_empty(), "invariant: callers handle the root");
        let dir = self.resolve(parent_of(path))?;
        if !self.is_dir(dir) {
            return Err(err(IoErrorKind::WrongKind, path, "not a directory"));
        }
        Ok((dir, last_component(path)))
    }

    /// Called after a file lost a written-namespace link or a handle: once neither is
    /// left, its bytes stop counting against the capacity (as on a real disk), and once
    /// no durable entry names it either (a crash could otherwise resurrect it), it is
    /// dropped.
    fn release(&mut self, id: NodeId) {
        let Some(Node::File(f)) = self.nodes.get(&id) else {
            return;
        };
        if f.open_handles > 0 || f.links_written > 0 {
            return;
        }
        self.written_bytes_total -= f.written.len() as u64;
        if f.links_durable == 0 {
            self.nodes.remove(&id);
        }
    }

    fn unlink_written(&mut self, id: NodeId) {
        if let Some(Node::File(f)) = self.nodes.get_mut(&id) {
            f.links_written -= 1;
            self.release(id);
        }
    }

    // ----- faults ----------------------------------------------------------------------

    /// Whether the one-shot `path` matches node `id` (resolved now, in the written view).
    fn path_matches(&self, path: &Option<String>, id: NodeId) -> bool {
        match path {
            None => true,
            Some(p) => self.resolve(p).is_ok_and(|named| named == id),
        }
    }

    /// Consumes the first queued one-shot fault `pick` accepts for node `id`.
    fn take_one_shot(&mut self, id: NodeId, pick: FaultPicker) -> bool {
        let found = self
            .one_shots
            .iter()
            .position(|f| pick(f).is_some_and(|path| self.path_matches(path, id)));
        match found {
            Some(i) => {
                self.one_shots.remove(i);
                true
            }
            None => false,
        }
    }

    /// One-shot or by rate: is there an EIO for this operation?
    fn eio(&mut self, site: FaultSite, id: NodeId) -> bool {
        let (pick, rate): (FaultPicker, f64) = match site {
            FaultSite::Read => (
                |f| match f {
                    OneShotFault::ReadEio { path } => Some(path),
                    _ => None,
                },
                self.config.read_eio_rate,
            ),
            FaultSite::Write => (
                |f| match f {
                    OneShotFault::WriteEio { path } => Some(path),
                    _ => None,
                },
                self.config.write_eio_rate,
            ),
            FaultSite::Sync => (
                |f| match f {
                    OneShotFault::SyncEio { path } => Some(path),
                    _ => None,
                },
                self.config.sync_eio_rate,
            ),
        };
        let hit = self.take_one_shot(id, pick) || self.rng.chance(rate);
        if hit {
            let counts = &mut self.stats.faults;
            match site {
                FaultSite::Read => counts.read_eio += 1,
                FaultSite::Write => counts.write_eio += 1,
                FaultSite::Sync => counts.sync_eio += 1,
            }
        }
        hit
    }

    /// Adds injected latency for one operation (one-shot first, then by rate).
    fn latency(&mut self) {
        let one_shot = self
            .one_shots
            .iter()
            .position(|f| matches!(f, OneShotFault::Latency { .. }));
        if let Some(i) = one_shot {
            if let OneShotFault::Latency { ms } = self.one_shots.remove(i) {
                self.delay_ms = self.delay_ms.saturating_add(ms);
                self.stats.faults.latency += 1;
            }
            return;
        }
        if self.rng.chance(self.config.latency_rate) {
            let ms = self
                .rng
                .range_inclusive(1, self.config.latency_ms_max.max(1));
            self.delay_ms = self.delay_ms.saturating_add(ms);
            self.stats.faults.latency += 1;
        }
    }

    /// Applies queued one-shot bit flips aimed at file `id` whose position is inside it.
    fn apply_one_shot_bit_flips(&mut self, id: NodeId) {
        let mut i = 0;
        while i < self.one_shots.len() {
            let hit = match &self.one_shots[i] {
                OneShotFault::BitFlip { path, position } => {
                    let f = self.file(id);
                    let inside = *position < f.written.len().max(f.durable.len()) as u64;
                    inside && self.resolve(path).is_ok_and(|named| named == id)
                }
                _ => false,
            };
            if !hit {
                i += 1;
                continue;
            }
            let OneShotFault::BitFlip { position, .. } = self.one_shots.remove(i) else {
                unreachable!("matched a BitFlip above");
            };
            let mask = 1u8 << self.rng.below(8);
            flip_stored_byte(self.file_mut(id), position, mask);
            self.stats.faults.bit_flip += 1;
        }
    }

    /// Records one finished operation, if the log is on.
    /// (`op` is only built when the log is on: operations cost nothing extra otherwise.)
    pub(super) fn log_op(&mut self, op: impl FnOnce() -> DiskOp) {
        if let Some(log) = &mut self.op_log {
            if log.len() < SIM_DISK_OPS_LOGGED_MAX {
                log.push(op());
            } else {
                self.ops_unlogged += 1;
            }
        }
    }

    // ----- disk operations -------------------------------------------------------------

    /// Bookkeeping every `Disk` operation starts with.
    pub(super) fn begin_disk_op(&mut self) {
        self.stats.ops += 1;
        self.latency();
    }

    pub(super) fn create(&mut self, path: &str) -> Result<NodeId, IoError> {
        if path.is_empty() {
            return Err(err(IoErrorKind::AlreadyExists, path, "the root exists"));
        }
        let (dir, name) = self.resolve_parent(path)?;
        if self.dir(dir).written.contains_key(name) {
            return Err(err(IoErrorKind::AlreadyExists, path, "file exists"));
        }
        let id = self.alloc(Node::File(FileNode {
            links_written: 1,
            open_handles: 1,
            ..FileNode::default()
        }));
        self.dir_mut(dir).written.insert(name.to_string(), id);
        Ok(id)
    }

    pub(super) fn open(&mut self, path: &str) -> Result<NodeId, IoError> {
        let id = self.resolve(path)?;
        if self.is_dir(id) {
            return Err(err(IoErrorKind::WrongKind, path, "is a directory"));
        }
        self.file_mut(id).open_handles += 1;
        Ok(id)
    }

    pub(super) fn create_dir_all(&mut self, path: &str) -> Result<(), IoError> {
        let mut id = ROOT;
        let count = components(path).count();
        for (i, name) in components(path).enumerate() {
            id = match self.dir(id).written.get(name) {
                Some(&child) if self.is_dir(child) => child,
                // std::fs::create_dir_all: EEXIST on the last component, ENOTDIR before.
                Some(_) if i + 1 == count => {
                    return Err(err(
                        IoErrorKind::AlreadyExists,
                        path,
                        "a file has this name",
                    ))
                }
                Some(_) => return Err(err(IoErrorKind::WrongKind, path, "not a directory")),
                None => {
                    let child = self.alloc(Node::Dir(DirNode::default()));
                    self.dir_mut(id).written.insert(name.to_string(), child);
                    child
                }
            };
        }
        Ok(())
    }

    pub(super) fn rename(&mut self, from: &str, to: &str) -> Result<(), IoError> {
        if from.is_empty() || to.is_empty() {
            return Err(err(
                IoErrorKind::InvalidInput,
                from,
                "cannot rename the root",
            ));
        }
        let (from_dir, from_name) = self.resolve_parent(from)?;
        let moved = *self
            .dir(from_dir)
            .written
            .get(from_name)
            .ok_or_else(|| err(IoErrorKind::NotFound, from, "no such file or directory"))?;
        let (to_dir, to_name) = self.resolve_parent(to)?;
        if from_dir == to_dir && from_name == to_name {
            return Ok(());
        }
        if self.is_dir(moved) && to.starts_with(&format!("{from}/")) {
            return Err(err(
                IoErrorKind::InvalidInput,
                from,
                "cannot move a directory into itself",
            ));
        }
        let replaced = self.dir(to_dir).written.get(to_name).copied();
        if let Some(target) = replaced {
            match (self.is_dir(moved), self.is_dir(target)) {
                (false, true) => return Err(err(IoErrorKind::WrongKind, to, "is a directory")),
                (true, false) => return Err(err(IoErrorKind::WrongKind, to, "not a directory")),
                (true, true) if !self.dir(target).written.is_empty() => {
                    return Err(err(IoErrorKind::WrongKind, to, "directory not empty"))
                }
                _ => {}
            }
        }
        self.dir_mut(from_dir).written.remove(from_name);
        self.dir_mut(to_dir)
            .written
            .insert(to_name.to_string(), moved);
        if let Some(target) = replaced {
            self.unlink_written(target);
        }
        Ok(())
    }

    pub(super) fn remove(&mut self, path: &str) -> Result<(), IoError> {
        if path.is_empty() {
            return Err(err(
                IoErrorKind::InvalidInput,
                path,
                "cannot remove the root",
            ));
        }
        let (dir, name) = self.resolve_parent(path)?;
        let id = *self
            .dir(dir)
            .written
            .get(name)
            .ok_or_else(|| err(IoErrorKind::NotFound, path, "no such file or directory"))?;
        if self.is_dir(id) && !self.dir(id).written.is_empty() {
            return Err(err(IoErrorKind::WrongKind, path, "directory not empty"));
        }
        self.dir_mut(dir).written.remove(name);
        self.unlink_written(id);
        Ok(())
    }

    pub(super) fn list(&self, path: &str) -> Result<Vec<String>, IoError> {
        let id = self.resolve(path)?;
        if !self.is_dir(id) {
            return Err(err(IoErrorKind::WrongKind, path, "not a directory"));
        }
        // BTreeMap<String, _> iterates bytewise-sorted, as the trait requires.
        Ok(self.dir(id).written.keys().cloned().collect())
    }

    pub(super) fn exists(&self, path: &str) -> Result<bool, IoError> {
        match self.resolve(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == IoErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) fn sync_dir(&mut self, path: &str) -> Result<(), IoError> {
        let id = self.resolve(path)?;
        if !self.is_dir(id) {
            // The real disk would fsync the file; here it is a caller bug worth seeing.
            return Err(err(IoErrorKind::WrongKind, path, "not a directory"));
        }
        if self.eio(FaultSite::Sync, id) {
            return Err(err(IoErrorKind::Io, path, "injected EIO on directory sync"));
        }
        let dir = self.dir_mut(id);
        let old = std::mem::replace(&mut dir.durable, dir.written.clone());
        let new = dir.durable.clone();
        // Count new links before dropping old ones so a file renamed within this
        // directory is never collected in between.
        for (name, child) in &new {
            if old.get(name) != Some(child) {
                if let Some(Node::File(f)) = self.nodes.get_mut(child) {
                    f.links_durable += 1;
                }
            }
        }
        for (name, child) in &old {
            if new.get(name) != Some(child) {
                if let Some(Node::File(f)) = self.nodes.get_mut(child) {
                    f.links_durable -= 1;
                    // Already released from the written view: drop it once unnamed.
                    let dead = f.links_durable == 0 && f.links_written == 0 && f.open_handles == 0;
                    if dead {
                        self.nodes.remove(child);
                    }
                }
            }
        }
        self.stats.dir_syncs += 1;
        self.delay_ms = self.delay_ms.saturating_add(self.config.sync_latency_ms);
        Ok(())
    }

    // ----- file operations -------------------------------------------------------------

    /// Bookkeeping and checks every `File` operation starts with: stale handle, latency,
    /// poison, then queued bit flips aimed at this file.
    pub(super) fn begin_file_op(
        &mut self,
        id: NodeId,
        epoch: u64,
        path: &str,
    ) -> Result<(), IoError> {
        self.stats.ops += 1;
        if epoch != self.epoch {
            return Err(err(IoErrorKind::Io, path, "stale handle after crash"));
        }
        self.latency();
        if self.file(id).poisoned {
            return Err(err(
                IoErrorKind::Poisoned,
                path,
                "an earlier fsync failed; the file's unsynced contents are unknown",
            ));
        }
        self.apply_one_shot_bit_flips(id);
        Ok(())
    }

    /// Records `op` as written: applies it to what reads see and queues it for sync.
    fn push_op(&mut self, id: NodeId, op: PendingOp) {
        let file = self.file_mut(id);
        let before = file.written.len() as u64;
        op.apply(&mut file.written);
        let after = file.written.len() as u64;
        file.pending.push(op);
        self.written_bytes_total = self.written_bytes_total - before + after;
    }

    /// `NoSpace` if growing file `id` to `end` bytes would exceed the capacity.
    fn check_capacity(&mut self, id: NodeId, end: u64, path: &str) -> Result<(), IoError> {
        let growth = end.saturating_sub(self.file(id).written.len() as u64);
        if let Some(capacity) = self.config.capacity_bytes {
            if self.written_bytes_total + growth > capacity {
                self.stats.faults.no_space += 1;
                return Err(err(IoErrorKind::NoSpace, path, "simulated disk is full"));
            }
        }
        Ok(())
    }

    pub(super) fn write(
        &mut self,
        id: NodeId,
        position: u64,
        data: &[u8],
        path: &str,
    ) -> Result<(), IoError> {
        let len = data.len() as u64;
        let end = position
            .checked_add(len)
            .filter(|end| *end <= SIM_FILE_BYTES_MAX)
            .ok_or_else(|| {
                err(
                    IoErrorKind::InvalidInput,
                    path,
                    "write beyond the simulated file size bound",
                )
            })?;
        self.check_capacity(id, end, path)?;
        let no_space = self.take_one_shot(id, |f| match f {
            OneShotFault::NoSpace { path } => Some(path),
            _ => None,
        }) || self.rng.chance(self.config.enospc_rate);
        if no_space {
            self.stats.faults.no_space += 1;
            return Err(err(IoErrorKind::NoSpace, path, "injected ENOSPC"));
        }
        if self.eio(FaultSite::Write, id) {
            // The contract allows an unknown prefix to have been written.
            let kept = self.rng.below(len + 1) as usize;
            if kept > 0 {
                self.push_op(
                    id,
                    PendingOp::Write {
                        position,
                        data: data[..kept].to_vec(),
                    },
                );
            }
            return Err(err(IoErrorKind::Io, path, "injected EIO on write"));
        }
        self.stats.bytes_written += len;
        if data.is_empty() {
            // Like pwrite(2) with a zero count: nothing changes, not even the length.
            return Ok(());
        }
        let mut data = data.to_vec();
        if self.rng.chance(self.config.bit_flip_rate) {
            let byte = self.rng.below(len) as usize;
            data[byte] ^= 1u8 << self.rng.below(8);
            self.stats.faults.bit_flip += 1;
        }
        let misdirected = self.take_one_shot(id, |f| match f {
            OneShotFault::MisdirectedWrite { path } => Some(path),
            _ => None,
        }) || self.rng.chance(self.config.misdirected_write_rate);
        if !misdirected {
            self.push_op(id, PendingOp::Write { position, data });
            return Ok(());
        }
        self.stats.faults.misdirected_write += 1;
        // The length grows as if the write had landed (metadata is right, data is not).
        if end > self.file(id).written.len() as u64 {
            self.push_op(id, PendingOp::Truncate { len: end });
        }
        let shifts_max = (position / DISK_SECTOR_BYTES).min(8);
        if shifts_max > 0 && self.rng.chance(0.5) {
            let shift = DISK_SECTOR_BYTES * self.rng.range_inclusive(1, shifts_max);
            self.push_op(
                id,
                PendingOp::Write {
                    position: position - shift,
                    data,
                },
            );
        }
        Ok(())
    }

    pub(super) fn truncate(&mut self, id: NodeId, len: u64, path: &str) -> Result<(), IoError> {
        if len > SIM_FILE_BYTES_MAX {
            return Err(err(
                IoErrorKind::InvalidInput,
                path,
                "length beyond the simulated file size bound",
            ));
        }
        self.check_capacity(id, len, path)?;
        self.push_op(id, PendingOp::Truncate { len });
        Ok(())
    }

    pub(super) fn read(
        &mut self,
        id: NodeId,
        position: u64,
        len: u64,
        path: &str,
    ) -> Result<Bytes, IoError> {
        if len > DISK_READ_BYTES_MAX {
            return Err(err(IoErrorKind::InvalidInput, path, "read too large"));
        }
        if self.eio(FaultSite::Read, id) {
            return Err(err(IoErrorKind::Io, path, "injected EIO on read"));
        }
        let size = self.file(id).written.len() as u64;
        if position >= size {
            return Ok(Bytes::new());
        }
        let mut available = (size - position).min(len);
        if available >= 2 {
            let short = self.take_one_shot(id, |f| match f {
                OneShotFault::ShortRead { path } => Some(path),
                _ => None,
            }) || self.rng.chance(self.config.short_read_rate);
            if short {
                self.stats.faults.short_read += 1;
                available = self.rng.range_inclusive(1, available - 1);
            }
        }
        let start = position as usize;
        let end = start + available as usize;
        Ok(Bytes::copy_from_slice(&self.file(id).written[start..end]))
    }

    pub(super) fn sync(&mut self, id: NodeId, path: &str) -> Result<(), IoError> {
        if self.eio(FaultSite::Sync, id) {
            // Like Linux after a failed fsync: nobody knows what reached the medium. The
            // pending ops stay pending (a crash keeps any prefix) and the file is unusable.
            self.file_mut(id).poisoned = true;
            return Err(err(IoErrorKind::Io, path, "injected EIO on fsync"));
        }
        self.delay_ms = self.delay_ms.saturating_add(self.config.sync_latency_ms);
        let file = self.file_mut(id);
        // O(bytes changed since the last sync), not O(file size).
        for op in file.pending.drain(..) {
            op.apply(&mut file.durable);
        }
        self.stats.syncs += 1;
        Ok(())
    }

    pub(super) fn close(&mut self, id: NodeId, epoch: u64) {
        if epoch != self.epoch {
            return; // the crash already forgot every handle
        }
        if let Some(Node::File(f)) = self.nodes.get_mut(&id) {
            f.open_handles -= 1;
            self.release(id);
        }
    }

    // ----- crash -----------------------------------------------------------------------

    /// The ids reachable from the root through durable entries, in id order.
    fn durably_reachable(&self) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            if let Some(Node::Dir(dir)) = self.nodes.get(&id) {
                for child in dir.durable.values() {
                    assert!(
                        self.nodes.contains_key(child),
                        "invariant: durable entries name live nodes"
                    );
                    if seen.insert(*child) {
                        stack.push(*child);
                    }
                }
            }
        }
        seen
    }

    pub(super) fn crash(&mut self) {
        self.epoch += 1;
        self.stats.crashes += 1;
        let reachable = self.durably_reachable();
        self.nodes.retain(|id, _| reachable.contains(id));
        let torn_write_rate = self.config.torn_write_rate;
        // BTreeMap order: the rng draws happen in id order, so a seed replays exactly.
        for node in self.nodes.values_mut() {
            match node {
                Node::Dir(dir) => dir.written = dir.durable.clone(),
                Node::File(file) => {
                    let torn = crash_file(file, &mut self.rng, torn_write_rate);
                    self.stats.faults.torn_write += u64::from(torn);
                }
            }
        }
        let mut links: BTreeMap<NodeId, u64> = BTreeMap::new();
        for node in self.nodes.values() {
            if let Node::Dir(dir) = node {
                for child in dir.durable.values() {
                    *links.entry(*child).or_default() += 1;
                }
            }
        }
        self.written_bytes_total = 0;
        for (id, node) in self.nodes.iter_mut() {
            if let Node::File(file) = node {
                let count = links.get(id).copied().unwrap_or(0);
                file.links_written = count;
                file.links_durable = count;
                self.written_bytes_total += file.written.len() as u64;
            }
        }
    }

    /// Every file reachable through durable entries, with its durable bytes.
    pub(super) fn durable_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((id, path)) = stack.pop() {
            match self.nodes.get(&id) {
                Some(Node::Dir(dir)) => {
                    for (name, child) in &dir.durable {
                        stack.push((*child, crate::io::join(&path, name)));
                    }
                }
                Some(Node::File(file)) => {
                    out.insert(path, file.durable.clone());
                }
                None => panic!("invariant: durable entries name live nodes"),
            }
        }
        out
    }

    /// Test support: panics unless every file's written bytes equal its durable bytes
    /// with its pending operations applied, and the capacity total matches.
    #[cfg(test)]
    pub(super) fn assert_consistent(&self) {
        let mut total = 0;
        for (id, node) in &self.nodes {
            if let Node::File(file) = node {
                let mut image = file.durable.clone();
                for op in &file.pending {
                    op.apply(&mut image);
                }
                assert!(
                    image == file.written,
                    "invariant: file {id}: written == durable + pending"
                );
                if file.links_written > 0 || file.open_handles > 0 {
                    total += file.written.len() as u64;
                }
            }
        }
        assert_eq!(
            total, self.written_bytes_total,
            "invariant: capacity total is exact"
        );
    }
}

/// Flips `mask` in the byte at `position` wherever the file stores it: the written
/// image, the durable image and every pending write that covers it.
fn flip_stored_byte(file: &mut FileNode, position: u64, mask: u8) {
    let at = position as usize;
    if let Some(byte) = file.written.get_mut(at) {
        *byte ^= mask;
    }
    if let Some(byte) = file.durable.get_mut(at) {
        *byte ^= mask;
    }
    for op in &mut file.pending {
        if let PendingOp::Write { position, data } = op {
            if let Some(offset) = at.checked_sub(*position as usize) {
                if let Some(byte) = data.get_mut(offset) {
                    *byte ^= mask;
                }
            }
        }
    }
}

/// Applies the crash model to one surviving file: its bytes become the durable bytes
/// plus a random prefix of the pending ops, the last kept write possibly torn. Returns
/// whether it tore a write.
fn crash_file(file: &mut FileNode, rng: &mut Rng, torn_write_rate: f64) -> bool {
    let pending = std::mem::take(&mut file.pending);
    let kept = if pending.is_empty() {
        0
    } else {
        rng.below(pending.len() as u64 + 1) as usize
    };
    let mut torn = false;
    for (i, op) in pending[..kept].iter().enumerate() {
        let last = i + 1 == kept;
        if let (true, PendingOp::Write { position, data }) = (last, op) {
            if rng.chance(torn_write_rate) {
                if let Some(cut) = tear_point(*position, data.len() as u64, rng) {
                    let partial = PendingOp::Write {
                        position: *position,
                        data: data[..(cut - position) as usize].to_vec(),
                    };
                    partial.apply(&mut file.durable);
                    torn = true;
                    continue;
                }
            }
        }
        op.apply(&mut file.durable);
    }
    file.written = file.durable.clone();
    file.poisoned = false;
    file.open_handles = 0;
    torn
}

/// A boundary strictly inside `position..position + len`, at a multiple of 4 KiB or of
/// 512 B (absolute file position), or `None` if the write crosses none.
pub(super) fn tear_point(position: u64, len: u64, rng: &mut Rng) -> Option<u64> {
    let units = if rng.chance(0.5) {
        [DISK_PAGE_BYTES, DISK_SECTOR_BYTES]
    } else {
        [DISK_SECTOR_BYTES, DISK_SECTOR_BYTES]
    };
    for unit in units {
        let first = (position / unit + 1) * unit;
        let end = position + len;
        if first < end {
            let count = (end - 1 - first) / unit + 1;
            return Some(first + unit * rng.below(count));
        }
    }
    None
}
