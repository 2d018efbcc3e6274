//! Typed errors of the lower layers. Kafka error codes are produced only at the protocol
//! edge; inside, callers match on these kinds.

use std::fmt;

/// What kind of I/O failure happened. Mirrors the errno values the code must handle
/// differently; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IoErrorKind {
    /// The path does not exist (ENOENT).
    NotFound,
    /// The path already exists (EEXIST).
    AlreadyExists,
    /// A hardware or media error (EIO). After a failed sync the file is poisoned.
    Io,
    /// The device is full (ENOSPC). Nothing of the failed write was applied.
    NoSpace,
    /// The file was poisoned by an earlier failed sync; every later call fails.
    Poisoned,
    /// The caller passed an invalid argument (bad path, read beyond a bound, ...).
    InvalidInput,
    /// A directory operation on a non-empty directory, a file op on a directory, etc.
    WrongKind,
    /// Fewer bytes exist than a `read_exact_at` asked for.
    UnexpectedEof,
    /// Any other OS error.
    Other,
}

/// An error from the Disk seam, carrying the kind, the path and a description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct IoError {
    pub kind: IoErrorKind,
    pub path: String,
    pub detail: String,
}

impl IoError {
    pub fn new(kind: IoErrorKind, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on {:?}: {}", self.kind, self.path, self.detail)
    }
}
