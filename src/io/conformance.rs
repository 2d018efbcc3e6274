//! The Disk seam's conformance suite: one set of test bodies, each taking `&dyn Disk`,
//! run against `RealDisk` (in a fresh temporary directory) and `SimDisk`. Whatever the
//! broker may rely on in the written view — results and error kinds — must agree here.
//! Crash and fault behaviour is simulator-only and lives in `io::sim`.

use crate::base::limits::DISK_READ_BYTES_MAX;
use crate::base::IoErrorKind;
use crate::io::{read_exact_at, write_atomic, Disk};

/// Runs `body` against a `RealDisk` rooted in a fresh directory, removed afterwards
/// (also when `body` panics).
fn with_real_disk(name: &str, body: fn(&dyn Disk)) {
    let scratch = crate::io::real::ScratchDir::new(&format!("conformance-{name}"));
    let disk = crate::io::real::RealDisk::open(scratch.path()).expect("temporary root");
    body(&disk);
}

fn with_sim_disk(_name: &str, body: fn(&dyn Disk)) {
    let disk = crate::io::sim::SimDisk::new(0x5eed);
    body(&disk);
    disk.assert_consistent();
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod real {
            $( #[test] fn $name() { super::with_real_disk(stringify!($name), super::$name) } )*
        }
        mod sim {
            $( #[test] fn $name() { super::with_sim_disk(stringify!($name), super::$name) } )*
        }
    };
}

conformance!(
    create_open_exists,
    create_existing_is_already_exists,
    missing_paths_are_not_found,
    directories_and_files_are_not_interchangeable,
    append_returns_positions,
    write_at_beyond_end_zero_fills,
    read_at_at_and_past_eof,
    read_at_rejects_oversized_reads,
    read_exact_at_reads_all_or_fails,
    truncate_shrinks_and_extends_with_zeros,
    handles_of_one_file_share_bytes,
    rename_replaces_target_and_handles_follow,
    rename_errors,
    remove_file_and_empty_dir,
    remove_non_empty_dir_is_wrong_kind,
    removed_file_handles_keep_reading,
    list_is_sorted_and_only_direct_children,
    create_dir_all_nested_and_idempotent,
    read_only_handles_reject_writes,
    invalid_paths_are_rejected,
    write_atomic_creates_and_replaces,
    sync_and_sync_dir_succeed,
);

fn kind<T: std::fmt::Debug>(result: Result<T, crate::base::IoError>) -> IoErrorKind {
    result.expect_err("expected an error").kind
}

fn read_all(disk: &dyn Disk, path: &str) -> Vec<u8> {
    let file = disk.open(path).unwrap();
    let len = file.len().unwrap();
    read_exact_at(&*file, 0, len).unwrap().to_vec()
}

fn create_open_exists(disk: &dyn Disk) {
    assert!(!disk.exists("a").unwrap());
    let file = disk.create("a").unwrap();
    assert_eq!(file.len().unwrap(), 0);
    assert!(disk.exists("a").unwrap());
    assert!(disk.exists("").unwrap(), "the root always exists");
    file.append(b"hello").unwrap();
    let again = disk.open("a").unwrap();
    assert_eq!(again.len().unwrap(), 5);
    assert_eq!(&again.read_at(0, 5).unwrap()[..], b"hello");
}

fn create_existing_is_already_exists(disk: &dyn Disk) {
    disk.create("a").unwrap();
    disk.create_dir_all("d").unwrap();
    assert_eq!(kind(disk.create("a")), IoErrorKind::AlreadyExists);
    assert_eq!(kind(disk.create("d")), IoErrorKind::AlreadyExists);
}

fn missing_paths_are_not_found(disk: &dyn Disk) {
    assert_eq!(kind(disk.open("nope")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.open_read_only("nope")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.create("no-dir/a")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.list("no-dir")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.remove("nope")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.sync_dir("no-dir")), IoErrorKind::NotFound);
    assert!(!disk.exists("no-dir/a").unwrap());
}

fn directories_and_files_are_not_interchangeable(disk: &dyn Disk) {
    disk.create_dir_all("d").unwrap();
    disk.create("f").unwrap();
    assert_eq!(kind(disk.open("d")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.open_read_only("d")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.open("")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.list("f")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.create("f/x")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.open("f/x")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.exists("f/x")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.create_dir_all("f")), IoErrorKind::AlreadyExists);
    assert_eq!(kind(disk.create_dir_all("f/sub")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.rename("f", "d")), IoErrorKind::WrongKind);
    assert_eq!(kind(disk.rename("d", "f")), IoErrorKind::WrongKind);
}

fn append_returns_positions(disk: &dyn Disk) {
    let file = disk.create("log").unwrap();
    assert_eq!(file.append(b"abc").unwrap(), 0);
    assert_eq!(file.append(b"defg").unwrap(), 3);
    assert_eq!(file.append(b"").unwrap(), 7);
    assert_eq!(file.append(b"h").unwrap(), 7);
    assert_eq!(file.len().unwrap(), 8);
    assert_eq!(&file.read_at(0, 8).unwrap()[..], b"abcdefgh");
}

fn write_at_beyond_end_zero_fills(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.write_at(0, b"ab").unwrap();
    file.write_at(10, b"xy").unwrap();
    assert_eq!(file.len().unwrap(), 12);
    assert_eq!(&file.read_at(0, 12).unwrap()[..], b"ab\0\0\0\0\0\0\0\0xy");
    file.write_at(1, b"ZZ").unwrap();
    assert_eq!(&file.read_at(0, 4).unwrap()[..], b"aZZ\0");
    assert_eq!(
        file.len().unwrap(),
        12,
        "an overwrite inside the file keeps its length"
    );
}

fn read_at_at_and_past_eof(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(b"0123456789").unwrap();
    assert_eq!(&file.read_at(8, 100).unwrap()[..], b"89");
    assert!(file.read_at(10, 5).unwrap().is_empty());
    assert!(file.read_at(1000, 5).unwrap().is_empty());
    assert!(file.read_at(3, 0).unwrap().is_empty());
    let empty = disk.create("e").unwrap();
    assert!(empty.read_at(0, 10).unwrap().is_empty());
}

fn read_at_rejects_oversized_reads(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(b"x").unwrap();
    assert_eq!(
        kind(file.read_at(0, DISK_READ_BYTES_MAX + 1)),
        IoErrorKind::InvalidInput
    );
}

fn read_exact_at_reads_all_or_fails(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(&[7u8; 3000]).unwrap();
    assert_eq!(read_exact_at(&*file, 100, 2900).unwrap().len(), 2900);
    assert_eq!(
        kind(read_exact_at(&*file, 100, 2901)),
        IoErrorKind::UnexpectedEof
    );
    assert_eq!(
        kind(read_exact_at(&*file, 3000, 1)),
        IoErrorKind::UnexpectedEof
    );
}

fn truncate_shrinks_and_extends_with_zeros(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(b"abcdef").unwrap();
    file.truncate(3).unwrap();
    assert_eq!(file.len().unwrap(), 3);
    assert_eq!(&file.read_at(0, 10).unwrap()[..], b"abc");
    file.truncate(6).unwrap();
    assert_eq!(&file.read_at(0, 10).unwrap()[..], b"abc\0\0\0");
    assert_eq!(file.append(b"g").unwrap(), 6);
    file.truncate(0).unwrap();
    assert_eq!(file.len().unwrap(), 0);
}

fn handles_of_one_file_share_bytes(disk: &dyn Disk) {
    let a = disk.create("f").unwrap();
    let b = disk.open("f").unwrap();
    a.append(b"one").unwrap();
    assert_eq!(b.append(b"two").unwrap(), 3);
    assert_eq!(&a.read_at(0, 6).unwrap()[..], b"onetwo");
}

fn rename_replaces_target_and_handles_follow(disk: &dyn Disk) {
    disk.create_dir_all("d").unwrap();
    let moving = disk.create("a").unwrap();
    moving.append(b"new").unwrap();
    let old = disk.create("d/b").unwrap();
    old.append(b"old-contents").unwrap();
    disk.rename("a", "d/b").unwrap();
    assert!(!disk.exists("a").unwrap());
    assert_eq!(read_all(disk, "d/b"), b"new");
    // The handle follows the file to its new name.
    moving.append(b"er").unwrap();
    assert_eq!(read_all(disk, "d/b"), b"newer");
    // The replaced file's open handle still reads its own bytes.
    assert_eq!(&old.read_at(0, 100).unwrap()[..], b"old-contents");
    assert_eq!(disk.list("d").unwrap(), vec!["b".to_string()]);
    // Renaming onto itself changes nothing.
    disk.rename("d/b", "d/b").unwrap();
    assert_eq!(read_all(disk, "d/b"), b"newer");
}

fn rename_errors(disk: &dyn Disk) {
    disk.create("a").unwrap();
    assert_eq!(kind(disk.rename("nope", "b")), IoErrorKind::NotFound);
    assert_eq!(kind(disk.rename("a", "no-dir/b")), IoErrorKind::NotFound);
    assert!(disk.exists("a").unwrap());
}

fn remove_file_and_empty_dir(disk: &dyn Disk) {
    disk.create_dir_all("d/e").unwrap();
    disk.create("d/f").unwrap();
    disk.remove("d/f").unwrap();
    disk.remove("d/e").unwrap();
    assert!(disk.list("d").unwrap().is_empty());
    disk.remove("d").unwrap();
    assert!(!disk.exists("d").unwrap());
    assert_eq!(kind(disk.remove("d")), IoErrorKind::NotFound);
}

fn remove_non_empty_dir_is_wrong_kind(disk: &dyn Disk) {
    disk.create_dir_all("d").unwrap();
    disk.create("d/f").unwrap();
    assert_eq!(kind(disk.remove("d")), IoErrorKind::WrongKind);
    assert!(disk.exists("d/f").unwrap());
}

fn removed_file_handles_keep_reading(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(b"still here").unwrap();
    disk.remove("f").unwrap();
    assert!(!disk.exists("f").unwrap());
    assert_eq!(&file.read_at(0, 100).unwrap()[..], b"still here");
    // The name is free again, for a different file.
    let other = disk.create("f").unwrap();
    assert_eq!(other.len().unwrap(), 0);
}

fn list_is_sorted_and_only_direct_children(disk: &dyn Disk) {
    disk.create_dir_all("top/sub/deeper").unwrap();
    for name in ["b", "a", "C", "a0", "Z-9"] {
        disk.create(&format!("top/{name}")).unwrap();
    }
    disk.create("top/sub/hidden").unwrap();
    assert_eq!(
        disk.list("top").unwrap(),
        vec!["C", "Z-9", "a", "a0", "b", "sub"],
        "bytewise order, direct children only"
    );
    assert_eq!(disk.list("").unwrap(), vec!["top"]);
    assert!(disk.list("top/sub/deeper").unwrap().is_empty());
}

fn create_dir_all_nested_and_idempotent(disk: &dyn Disk) {
    disk.create_dir_all("a/b/c").unwrap();
    disk.create_dir_all("a/b/c").unwrap();
    disk.create_dir_all("a").unwrap();
    disk.create_dir_all("").unwrap();
    assert!(disk.exists("a/b").unwrap());
    assert_eq!(disk.list("a").unwrap(), vec!["b"]);
    disk.create("a/b/c/f").unwrap();
    assert_eq!(disk.list("a/b/c").unwrap(), vec!["f"]);
}

fn read_only_handles_reject_writes(disk: &dyn Disk) {
    let file = disk.create("f").unwrap();
    file.append(b"sealed").unwrap();
    file.sync().unwrap();
    let sealed = disk.open_read_only("f").unwrap();
    assert_eq!(sealed.len().unwrap(), 6);
    assert_eq!(&sealed.read_at(2, 3).unwrap()[..], b"ale");
    assert!(sealed.read_at(6, 3).unwrap().is_empty());
    assert_eq!(kind(sealed.append(b"x")), IoErrorKind::InvalidInput);
    assert_eq!(kind(sealed.write_at(0, b"x")), IoErrorKind::InvalidInput);
    assert_eq!(kind(sealed.truncate(0)), IoErrorKind::InvalidInput);
    assert_eq!(kind(sealed.sync()), IoErrorKind::InvalidInput);
    assert_eq!(read_all(disk, "f"), b"sealed");
    let empty = disk.create("e").unwrap();
    drop(empty);
    let empty = disk.open_read_only("e").unwrap();
    assert!(empty.read_at(0, 10).unwrap().is_empty());
}

fn invalid_paths_are_rejected(disk: &dyn Disk) {
    let long = "x".repeat(crate::base::limits::DISK_NAME_BYTES_MAX + 1);
    for bad in [
        "/abs",
        "a//b",
        "a/",
        "./a",
        "a/../b",
        "..",
        "nul\0",
        long.as_str(),
    ] {
        assert_eq!(kind(disk.create(bad)), IoErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(kind(disk.open(bad)), IoErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(kind(disk.exists(bad)), IoErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(
            kind(disk.create_dir_all(bad)),
            IoErrorKind::InvalidInput,
            "{bad:?}"
        );
        assert_eq!(kind(disk.list(bad)), IoErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(kind(disk.remove(bad)), IoErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(
            kind(disk.sync_dir(bad)),
            IoErrorKind::InvalidInput,
            "{bad:?}"
        );
        assert_eq!(
            kind(disk.rename(bad, "ok")),
            IoErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    assert!(disk.list("").unwrap().is_empty(), "nothing was created");
}

fn write_atomic_creates_and_replaces(disk: &dyn Disk) {
    disk.create_dir_all("meta").unwrap();
    write_atomic(disk, "meta/checkpoint", b"first").unwrap();
    assert_eq!(read_all(disk, "meta/checkpoint"), b"first");
    write_atomic(disk, "meta/checkpoint", b"second, longer").unwrap();
    assert_eq!(read_all(disk, "meta/checkpoint"), b"second, longer");
    // A leftover temporary file from an interrupted run is replaced.
    let stale = disk.create("meta/checkpoint.tmp").unwrap();
    stale.append(b"junk").unwrap();
    drop(stale);
    write_atomic(disk, "meta/checkpoint", b"3").unwrap();
    assert_eq!(read_all(disk, "meta/checkpoint"), b"3");
    assert_eq!(disk.list("meta").unwrap(), vec!["checkpoint"]);
}

fn sync_and_sync_dir_succeed(disk: &dyn Disk) {
    disk.create_dir_all("d").unwrap();
    let file = disk.create("d/f").unwrap();
    file.append(b"data").unwrap();
    file.sync().unwrap();
    file.sync().unwrap();
    disk.sync_dir("d").unwrap();
    disk.sync_dir("").unwrap();
    assert_eq!(disk.take_delay_ms(), 0, "no latency without faults");
    assert_eq!(read_all(disk, "d/f"), b"data");
}
