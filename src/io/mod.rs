//! L0 — the I/O seams. Everything that is not pure computation goes through here.
//!
//! Owns: the `Disk`/`File` traits and their two implementations (`real`, on std::fs and
//! memmap2; `sim`, an in-memory disk with a crash model and injectable faults), the wall
//! `Clock` handle and OS-seeded randomness. Time, tasks and network go through the tokio
//! API instead (madsim-tokio under `--cfg madsim`), which this module does not wrap.
//!
//! Must never: hold a lock across a call into another seam, or iterate an unordered
//! collection in a way that changes results (the simulator replays runs bit for bit).
//!
//! # Paths
//! Paths are `/`-separated and relative to the disk's root (`"orders-0/00000000000000000000.log"`).
//! The empty string names the root itself. Absolute paths, `.` and `..` components and
//! empty components are rejected with `InvalidInput`.
//!
//! # Durability contract, in one place
//! * Bytes handed to `File::append`/`File::write_at` are *written*: every later read on
//!   any handle sees them. They are *durable* (survive a crash of the node) only after a
//!   later `File::sync` on that file returns `Ok`.
//! * A file's *existence under its name* (create, rename, remove) is durable only after
//!   `Disk::sync_dir` on its parent directory returns `Ok` (and, for a new file's
//!   contents, the file's own `sync`).
//! * A crash may keep any prefix of the writes made since the last successful sync,
//!   with the last kept write possibly torn at a 512 B or 4 KiB boundary; it never keeps
//!   a later write without the earlier ones on the same file, and never invents bytes.
//! * A failed `sync` *poisons* the file: every later call on any handle of it fails with
//!   `Poisoned`. Never retry an fsync and assume the data reached the disk.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::base::{IoError, IoErrorKind};

pub mod clock;
#[cfg(test)]
mod conformance;
pub mod real;
pub mod sim;

pub use clock::Clock;

/// A shared handle to a disk.
pub type DiskRef = Arc<dyn Disk>;
/// A shared handle to an open file. Handles are cheap to clone; all handles of one path
/// see the same bytes.
pub type FileRef = Arc<dyn File>;

/// A directory tree of files, rooted somewhere (a data directory, or a simulated node).
pub trait Disk: Send + Sync + Debug {
    /// Creates a new, empty, writable file. Fails with `AlreadyExists` if the path exists
    /// and `NotFound` if the parent directory does not.
    /// Durability: the name survives a crash only after `sync_dir(parent)`.
    fn create(&self, path: &str) -> Result<FileRef, IoError>;

    /// Opens an existing file for reading and writing. Fails with `NotFound`.
    fn open(&self, path: &str) -> Result<FileRef, IoError>;

    /// Opens an existing file that will no longer be written (a sealed segment, a
    /// checkpoint). The real disk memory-maps it so `read_at` is zero-copy; writes,
    /// truncates and syncs through this handle fail with `InvalidInput`.
    /// The caller must drop read-only handles before truncating or removing the file
    /// through another handle (a truncated mapping faults on access).
    fn open_read_only(&self, path: &str) -> Result<FileRef, IoError>;

    /// Creates a directory and any missing parents; succeeds if it already exists.
    /// Durability: each new directory's name survives a crash only after `sync_dir` of
    /// its parent.
    fn create_dir_all(&self, path: &str) -> Result<(), IoError>;

    /// Atomically renames a file, replacing `to` if it exists (POSIX rename). Both paths
    /// must be in existing directories. Open handles keep working and follow the file.
    /// Durability: the new name (and the removal of the old one) survive a crash only
    /// after `sync_dir` of both parents; until then a crash may leave either name.
    fn rename(&self, from: &str, to: &str) -> Result<(), IoError>;

    /// Removes a file, or an empty directory. Open handles keep reading their bytes.
    /// Durability: the removal survives a crash only after `sync_dir(parent)`.
    fn remove(&self, path: &str) -> Result<(), IoError>;

    /// The names (not paths) of the entries of a directory, sorted bytewise, so callers
    /// never depend on the OS's listing order.
    fn list(&self, dir: &str) -> Result<Vec<String>, IoError>;

    /// Whether a file or directory exists at `path` (in the written, not durable, view).
    fn exists(&self, path: &str) -> Result<bool, IoError>;

    /// Makes the directory's entries (creates, renames, removes inside it) durable.
    /// After it returns `Ok`, those name changes survive a crash.
    fn sync_dir(&self, dir: &str) -> Result<(), IoError>;

    /// Simulated latency, in milliseconds, that operations since the last call have
    /// accumulated. The async driver sleeps this long before it reports completion;
    /// the real disk always returns 0 (its latency is real). Taking resets it to 0.
    fn take_delay_ms(&self) -> u64 {
        0
    }
}

/// An open file. (`len` is fallible, so an `is_empty` would add nothing.)
#[allow(clippy::len_without_is_empty)]
pub trait File: Send + Sync + Debug {
    /// The file's length in the written view (what reads see).
    fn len(&self) -> Result<u64, IoError>;

    /// Writes `data` at the end of the file and returns the position it was written at.
    /// Durability: *written* on return; durable after a later successful `sync`.
    /// On `NoSpace` nothing was written; on `Io` an unknown prefix may have been.
    fn append(&self, data: &[u8]) -> Result<u64, IoError>;

    /// Writes `data` at `position`, extending the file if needed (a gap reads as zeros).
    /// Durability: as `append`.
    fn write_at(&self, position: u64, data: &[u8]) -> Result<(), IoError>;

    /// Reads up to `len` bytes at `position`. Returns fewer only at end of file, or on a
    /// short read (which callers must tolerate: use `read_exact_at` when `len` bytes
    /// are needed). A read starting at or past the end returns an empty buffer.
    /// The returned bytes may be a zero-copy view (an mmap) and stay valid after the
    /// file is closed.
    fn read_at(&self, position: u64, len: u64) -> Result<Bytes, IoError>;

    /// fsync: after `Ok`, every byte written to this file before the call, and its
    /// length, survive a crash. After `Err`, the file is poisoned: every later call on
    /// it fails with `Poisoned`, and the caller must treat everything unsynced as lost.
    fn sync(&self) -> Result<(), IoError>;

    /// Sets the file's length to `len` (shrinking or extending with zeros).
    /// Durability: as a write; durable after a later successful `sync`.
    fn truncate(&self, len: u64) -> Result<(), IoError>;
}

/// Reads exactly `len` bytes at `position`, retrying short reads. Fails with
/// `UnexpectedEof` if the file ends first.
pub fn read_exact_at(file: &dyn File, position: u64, len: u64) -> Result<Bytes, IoError> {
    let first = file.read_at(position, len)?;
    if first.len() as u64 == len {
        return Ok(first);
    }
    let mut buf = Vec::with_capacity(len as usize);
    buf.extend_from_slice(&first);
    while (buf.len() as u64) < len {
        let done = buf.len() as u64;
        let more = file.read_at(position + done, len - done)?;
        if more.is_empty() {
            return Err(IoError::new(
                IoErrorKind::UnexpectedEof,
                "",
                format!("wanted {len} bytes at {position}, file ends after {done}"),
            ));
        }
        buf.extend_from_slice(&more);
    }
    Ok(Bytes::from(buf))
}

/// Writes a whole file atomically: write to `<path>.tmp`, sync it, rename over `path`,
/// sync the parent directory. After `Ok`, `path` holds exactly `data` across any crash;
/// after a crash mid-way, `path` holds either its old contents or `data`, never a mix.
pub fn write_atomic(disk: &dyn Disk, path: &str, data: &[u8]) -> Result<(), IoError> {
    let tmp = format!("{path}.tmp");
    if disk.exists(&tmp)? {
        disk.remove(&tmp)?;
    }
    let file = disk.create(&tmp)?;
    file.write_at(0, data)?;
    file.sync()?;
    drop(file);
    disk.rename(&tmp, path)?;
    disk.sync_dir(parent_of(path))
}

/// The parent directory of a seam path (`""` for a top-level entry).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Joins a directory and a name into a seam path.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Checks a seam path: relative, `/`-separated, no empty, `.` or `..` components, each
/// component at most `DISK_NAME_BYTES_MAX` bytes and free of NUL. `""` (the root) is valid.
pub fn validate_path(path: &str) -> Result<(), IoError> {
    if path.is_empty() {
        return Ok(());
    }
    for component in path.split('/') {
        let bad = component.is_empty()
            || component == "."
            || component == ".."
            || component.len() > crate::base::limits::DISK_NAME_BYTES_MAX
            || component.contains('\0');
        if bad {
            return Err(IoError::new(
                IoErrorKind::InvalidInput,
                path,
                "paths are relative, '/'-separated, without empty, '.' or '..' components",
            ));
        }
    }
    Ok(())
}
