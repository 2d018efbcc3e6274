//! The fault vocabulary of the simulated disk: rates (`FaultConfig`), on-demand faults
//! (`OneShotFault`) and the counters that report what happened (`SimDiskStats`).
//!
//! Owns only plain data; the decisions are taken in `state.rs`, which draws every random
//! choice from the disk's seeded `Rng`.

/// Fault rates of a simulated disk. Every rate is a probability per matching operation,
/// in `0.0..=1.0`. `Default` turns every fault off, leaves capacity unbounded, and tears
/// the last kept write of a crash half of the time.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// `read_at` fails with `Io` (nothing read; the file stays usable).
    pub read_eio_rate: f64,
    /// `append`/`write_at` fail with `Io` after writing a random prefix (possibly empty).
    pub write_eio_rate: f64,
    /// `sync` fails with `Io` and poisons the file; `sync_dir` fails with `Io` and
    /// makes nothing durable.
    pub sync_eio_rate: f64,
    /// `append`/`write_at` fail with `NoSpace` and write nothing.
    pub enospc_rate: f64,
    /// Total bytes all files (written view, including removed files still open) may
    /// hold; growth beyond it (writes, extending truncates) fails with `NoSpace`.
    pub capacity_bytes: Option<u64>,
    /// A write silently flips one bit of one byte of the data it stores.
    pub bit_flip_rate: f64,
    /// A `read_at` that would return at least 2 bytes returns a non-empty strict prefix.
    pub short_read_rate: f64,
    /// A write returns `Ok` but its data lands elsewhere (see `OneShotFault::MisdirectedWrite`).
    pub misdirected_write_rate: f64,
    /// Any operation adds `1..=latency_ms_max` ms to the delay `take_delay_ms` reports.
    pub latency_rate: f64,
    /// Upper bound of one latency injection (treated as at least 1).
    pub latency_ms_max: u64,
    /// Fixed cost of every successful `sync` and `sync_dir`, added to the delay
    /// `take_delay_ms` reports: models fsync taking time, so that in simulation appends
    /// race with a flush as they do on a real disk. Not a fault; 0 by default.
    pub sync_latency_ms: u64,
    /// Probability that a crash tears the last write it keeps of a file at a 512 B or
    /// 4 KiB boundary (absolute file position). Part of the crash model, not a fault.
    pub torn_write_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            read_eio_rate: 0.0,
            write_eio_rate: 0.0,
            sync_eio_rate: 0.0,
            enospc_rate: 0.0,
            capacity_bytes: None,
            bit_flip_rate: 0.0,
            short_read_rate: 0.0,
            misdirected_write_rate: 0.0,
            latency_rate: 0.0,
            latency_ms_max: 0,
            sync_latency_ms: 0,
            torn_write_rate: 0.5,
        }
    }
}

impl FaultConfig {
    /// Panics if a rate is outside `0.0..=1.0` (a test bug, not a disk condition).
    pub(super) fn assert_valid(&self) {
        let rates = [
            ("read_eio_rate", self.read_eio_rate),
            ("write_eio_rate", self.write_eio_rate),
            ("sync_eio_rate", self.sync_eio_rate),
            ("enospc_rate", self.enospc_rate),
            ("bit_flip_rate", self.bit_flip_rate),
            ("short_read_rate", self.short_read_rate),
            ("misdirected_write_rate", self.misdirected_write_rate),
            ("latency_rate", self.latency_rate),
            ("torn_write_rate", self.torn_write_rate),
        ];
        for (name, rate) in rates {
            assert!(
                (0.0..=1.0).contains(&rate),
                "FaultConfig::{name} must be a probability, got {rate}"
            );
        }
    }
}

/// A fault injected on demand. It waits in a queue (kept across crashes) and is consumed
/// by the first later operation it matches, in injection order. `path: None` matches any
/// file; `Some(path)` matches the file (or, for `SyncEio`, also the directory) that
/// `path` names in the written namespace *at the time of the operation*, whichever handle
/// is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OneShotFault {
    /// The next matching `read_at` fails with `Io`.
    ReadEio { path: Option<String> },
    /// The next matching `append`/`write_at` writes a random prefix (possibly empty) of
    /// its data and fails with `Io`.
    WriteEio { path: Option<String> },
    /// The next matching `sync` fails with `Io` and poisons the file, or the next
    /// matching `sync_dir` fails with `Io` and makes nothing durable.
    SyncEio { path: Option<String> },
    /// The next matching `append`/`write_at` fails with `NoSpace` and writes nothing.
    NoSpace { path: Option<String> },
    /// Flips one bit of the byte at `position` of the file at `path`, in what reads see
    /// and in what a crash keeps, just before the next operation through a handle of
    /// that file (`len`, `read_at`, writes, `sync`, `truncate`) while `position` is
    /// inside the file. The corruption is silent: no call fails.
    BitFlip { path: String, position: u64 },
    /// The next matching `read_at` that would return at least 2 bytes returns a
    /// non-empty strict prefix of them.
    ShortRead { path: Option<String> },
    /// The next matching `append`/`write_at` returns `Ok` (and the file's length grows
    /// as if it had been written) but the data lands shifted back by a multiple of 512
    /// bytes, or nowhere at all.
    MisdirectedWrite { path: Option<String> },
    /// The next operation of any kind adds `ms` to the delay `take_delay_ms` reports.
    Latency { ms: u64 },
}

/// Counters of a simulated disk, for tests and simulation reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    /// Calls to any `Disk` or `File` method (except `take_delay_ms`), failed ones included.
    pub ops: u64,
    /// Bytes handed to successful `append`/`write_at` calls.
    pub bytes_written: u64,
    /// Successful file syncs.
    pub syncs: u64,
    /// Successful directory syncs.
    pub dir_syncs: u64,
    /// Calls to `crash`.
    pub crashes: u64,
    /// Faults that took effect, per kind.
    pub faults: FaultCounts,
}

/// How many faults of each kind took effect (by rate or one-shot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub read_eio: u64,
    pub write_eio: u64,
    pub sync_eio: u64,
    /// Includes writes refused because `capacity_bytes` was reached.
    pub no_space: u64,
    pub bit_flip: u64,
    pub short_read: u64,
    pub misdirected_write: u64,
    pub latency: u64,
    /// Crashes that kept only part of a file's last kept write.
    pub torn_write: u64,
}
