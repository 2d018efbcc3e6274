//! The production side of the seams: std::fs for files, memmap2 for zero-copy reads of
//! sealed files, the OS clock and OS entropy. This is the only module below L4 allowed to
//! touch the operating system directly (the layering test enforces it).
//!
//! `sync` blocks until the kernel reports the data durable; the L4 driver runs it on a
//! blocking thread (`tokio::task::spawn_blocking`) so an fsync never stalls the reactor.

mod disk;

pub use disk::RealDisk;

/// A fresh directory under the OS temp dir, removed with everything in it when dropped
/// (also when a test panics). Tests and benches root a `RealDisk` here.
#[derive(Debug)]
pub struct ScratchDir {
    path: std::path::PathBuf,
}

impl ScratchDir {
    /// Names a new directory `skald-<label>-<pid>-<random>`; it is not created here
    /// (`RealDisk::open` creates its root).
    pub fn new(label: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!(
            "skald-{label}-{}-{}",
            std::process::id(),
            os_seeded_rng().next_u64()
        ));
        ScratchDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Wall-clock milliseconds since the Unix epoch from the OS (intercepted and
/// deterministic under madsim).
pub fn system_time_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// A generator seeded from OS entropy (deterministic under madsim, which intercepts the
/// entropy source). Production nodes take their `Rng` from here.
pub fn os_seeded_rng() -> crate::base::Rng {
    crate::base::Rng::with_seed(rand::random::<u64>())
}
