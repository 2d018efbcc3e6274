//! `RealDisk`: the Disk seam over std::fs, rooted at a directory.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::base::{IoError, IoErrorKind};
use crate::io::{validate_path, Disk, File, FileRef};

/// A disk rooted at a directory of the real filesystem.
#[derive(Debug)]
pub struct RealDisk {
    root: PathBuf,
}

impl RealDisk {
    /// A disk rooted at `root`, which is created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<RealDisk, IoError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| map_err(&root.display().to_string(), e))?;
        Ok(RealDisk { root })
    }

    fn full(&self, path: &str) -> Result<PathBuf, IoError> {
        validate_path(path)?;
        if path.is_empty() {
            Ok(self.root.clone())
        } else {
            Ok(self.root.join(path))
        }
    }
}

fn map_err(path: &str, err: std::io::Error) -> IoError {
    let kind = match err.kind() {
        ErrorKind::NotFound => IoErrorKind::NotFound,
        ErrorKind::AlreadyExists => IoErrorKind::AlreadyExists,
        ErrorKind::InvalidInput => IoErrorKind::InvalidInput,
        ErrorKind::UnexpectedEof => IoErrorKind::UnexpectedEof,
        ErrorKind::StorageFull => IoErrorKind::NoSpace,
        ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::DirectoryNotEmpty => {
            IoErrorKind::WrongKind
        }
        _ => match err.raw_os_error() {
            Some(5) => IoErrorKind::Io,       // EIO
            Some(28) => IoErrorKind::NoSpace, // ENOSPC
            _ => IoErrorKind::Other,
        },
    };
    IoError::new(kind, path, err.to_string())
}

impl Disk for RealDisk {
    fn create(&self, path: &str) -> Result<FileRef, IoError> {
        let full = self.full(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&full)
            .map_err(|e| map_err(path, e))?;
        Ok(Arc::new(RealFile::writable(path, file)))
    }

    fn open(&self, path: &str) -> Result<FileRef, IoError> {
        let full = self.full(path)?;
        if full.is_dir() {
            return Err(IoError::new(IoErrorKind::WrongKind, path, "is a directory"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&full)
            .map_err(|e| map_err(path, e))?;
        Ok(Arc::new(RealFile::writable(path, file)))
    }

    fn open_read_only(&self, path: &str) -> Result<FileRef, IoError> {
        let full = self.full(path)?;
        if full.is_dir() {
            return Err(IoError::new(IoErrorKind::WrongKind, path, "is a directory"));
        }
        let file = fs::File::open(&full).map_err(|e| map_err(path, e))?;
        let len = file.metadata().map_err(|e| map_err(path, e))?.len();
        // An empty file cannot be mapped; it has nothing to read anyway.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the seam's contract forbids truncating a file while read-only
            // handles to it exist, so the mapping never shrinks under us.
            let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| map_err(path, e))?;
            Some(Bytes::from_owner(mmap))
        };
        Ok(Arc::new(RealFile {
            path: path.to_string(),
            file,
            map,
            read_only: true,
            poisoned: AtomicBool::new(false),
        }))
    }

    fn create_dir_all(&self, path: &str) -> Result<(), IoError> {
        let full = self.full(path)?;
        fs::create_dir_all(&full).map_err(|e| map_err(path, e))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), IoError> {
        let (a, b) = (self.full(from)?, self.full(to)?);
        fs::rename(a, b).map_err(|e| map_err(from, e))
    }

    fn remove(&self, path: &str) -> Result<(), IoError> {
        let full = self.full(path)?;
        let meta = fs::symlink_metadata(&full).map_err(|e| map_err(path, e))?;
        if meta.is_dir() {
            fs::remove_dir(&full).map_err(|e| map_err(path, e))
        } else {
            fs::remove_file(&full).map_err(|e| map_err(path, e))
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, IoError> {
        let full = self.full(dir)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(&full).map_err(|e| map_err(dir, e))? {
            let entry = entry.map_err(|e| map_err(dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &str) -> Result<bool, IoError> {
        let full = self.full(path)?;
        match fs::symlink_metadata(&full) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn sync_dir(&self, dir: &str) -> Result<(), IoError> {
        let full = self.full(dir)?;
        let handle = fs::File::open(&full).map_err(|e| map_err(dir, e))?;
        handle.sync_all().map_err(|e| map_err(dir, e))
    }
}

/// A file of the real filesystem. Read-only handles carry a memory map.
#[derive(Debug)]
struct RealFile {
    path: String,
    file: fs::File,
    map: Option<Bytes>,
    read_only: bool,
    poisoned: AtomicBool,
}

impl RealFile {
    fn writable(path: &str, file: fs::File) -> RealFile {
        RealFile {
            path: path.to_string(),
            file,
            map: None,
            read_only: false,
            poisoned: AtomicBool::new(false),
        }
    }

    fn check_usable(&self) -> Result<(), IoError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(IoError::new(
                IoErrorKind::Poisoned,
                &self.path,
                "an earlier fsync failed; the file's unsynced contents are unknown",
            ));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), IoError> {
        self.check_usable()?;
        if self.read_only {
            return Err(IoError::new(
                IoErrorKind::InvalidInput,
                &self.path,
                "read-only handle",
            ));
        }
        Ok(())
    }
}

impl File for RealFile {
    fn len(&self) -> Result<u64, IoError> {
        self.check_usable()?;
        if let Some(map) = &self.map {
            return Ok(map.len() as u64);
        }
        Ok(self
            .file
            .metadata()
            .map_err(|e| map_err(&self.path, e))?
            .len())
    }

    fn append(&self, data: &[u8]) -> Result<u64, IoError> {
        self.check_writable()?;
        // One owner writes a file at a time (the partition's log); the position is the
        // current length.
        let position = self.len()?;
        self.file
            .write_all_at(data, position)
            .map_err(|e| map_err(&self.path, e))?;
        Ok(position)
    }

    fn write_at(&self, position: u64, data: &[u8]) -> Result<(), IoError> {
        self.check_writable()?;
        self.file
            .write_all_at(data, position)
            .map_err(|e| map_err(&self.path, e))
    }

    fn read_at(&self, position: u64, len: u64) -> Result<Bytes, IoError> {
        self.check_usable()?;
        if len > crate::base::limits::DISK_READ_BYTES_MAX {
            return Err(IoError::new(
                IoErrorKind::InvalidInput,
                &self.path,
                "read too large",
            ));
        }
        if self.read_only {
            let Some(map) = &self.map else {
                return Ok(Bytes::new());
            };
            let size = map.len() as u64;
            if position >= size {
                return Ok(Bytes::new());
            }
            let end = size.min(position.saturating_add(len));
            return Ok(map.slice(position as usize..end as usize));
        }
        let size = self.len()?;
        if position >= size {
            return Ok(Bytes::new());
        }
        let want = (size - position).min(len) as usize;
        let mut buf = vec![0u8; want];
        let mut done = 0usize;
        while done < want {
            let n = self
                .file
                .read_at(&mut buf[done..], position + done as u64)
                .map_err(|e| map_err(&self.path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(Bytes::from(buf))
    }

    fn sync(&self) -> Result<(), IoError> {
        self.check_writable()?;
        if let Err(e) = self.file.sync_all() {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(map_err(&self.path, e));
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<(), IoError> {
        self.check_writable()?;
        self.file.set_len(len).map_err(|e| map_err(&self.path, e))
    }
}
