//! Files in a directory that other users may write to (a project directory
//! on a cluster's shared file system), handled as trusted tools handle
//! them there:
//!
//! - [`create_exclusive`]: a new file under an unpredictable name, created
//!   as `mkstemp` does (`O_CREAT|O_EXCL|O_NOFOLLOW`): a planted symlink or
//!   directory is never followed or written through;
//! - [`write_atomic`]: a file replaced whole (such a temporary file,
//!   fsync'ed, renamed over the old one, and the rename checked);
//! - [`read_limited`]: a file read without following a symlink, only when it
//!   is a regular file (never a FIFO or a device, which could block or never
//!   end), at most a given size, with its owner;
//! - [`check_directory`]: whether others can rename or remove the files of
//!   a directory (writable by group or others without the sticky bit).
//!
//! Every function works on NFS (v3 and later create with `O_EXCL`
//! atomically); none locks, maps or hard-links a file.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many unpredictable names [`create_exclusive`] tries before it gives up.
const ATTEMPTS: usize = 16;

/// An unpredictable name part: 16 hex digits (64 random bits).
pub fn random_suffix() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a new file `dir/.{name}.{random}.tmp` for writing, as `mkstemp`
/// does: `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0644 (less the umask). A name
/// that exists (a planted symlink, file or directory) is never opened: the
/// next random name is tried. Returns the file and its path.
pub fn create_exclusive(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    create_exclusive_with(dir, name, random_suffix)
}

/// [`create_exclusive`] with the name parts drawn from `suffix` (tests
/// give it names chosen beforehand).
pub fn create_exclusive_with(
    dir: &Path,
    name: &str,
    mut suffix: impl FnMut() -> String,
) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let path = dir.join(format!(".{name}.{}.tmp", suffix()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true) // O_CREAT|O_EXCL
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name could be made")))
}

/// Writes `bytes` to `dir/name` atomically: a temporary file made by
/// [`create_exclusive`], fsync'ed, renamed over `name` (a symlink at `name`
/// is replaced, never followed). The rename is checked: `name` must then be
/// the file just written (same device and inode), else the write failed.
/// On failure the temporary file is removed and `name` is as it was.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let (mut file, tmp) = create_exclusive(dir, name)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        let written = file.metadata()?;
        let target = dir.join(name);
        fs::rename(&tmp, &target)?;
        let now = fs::symlink_metadata(&target)?;
        if (now.dev(), now.ino()) != (written.dev(), written.ino()) {
            return Err(io::Error::other(format!(
                "{} was replaced by another file as it was written",
                target.display()
            )));
        }
        Ok(())
    })();
    if result.is_err() {
        remove_if_same(&tmp, &file);
    }
    result
}

/// Removes `path` only while it is still `file` (a name in a shared
/// directory may have been replaced by someone else's file meanwhile).
fn remove_if_same(path: &Path, file: &File) {
    if let (Ok(a), Ok(b)) = (fs::symlink_metadata(path), file.metadata()) {
        if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
            let _ = fs::remove_file(path);
        }
    }
}

/// A file read by [`read_limited`], with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedRead {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The uid that owns the file.
    pub owner: u32,
    /// Device and inode, to tell the same file again.
    pub identity: (u64, u64),
}

/// Why [`read_limited`] read nothing.
#[derive(Debug)]
pub enum ReadRefused {
    /// No such file.
    Missing,
    /// A symlink, directory, FIFO, device or socket: never opened for reading
    /// (a FIFO blocks, `/dev/zero` never ends).
    NotRegular,
    /// Larger than the limit (its size in bytes).
    TooLarge(u64),
    /// The file could not be opened or read.
    Io(io::Error),
}

impl std::fmt::Display for ReadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadRefused::Missing => f.write_str("does not exist"),
            ReadRefused::NotRegular => f.write_str("is not a regular file"),
            ReadRefused::TooLarge(n) => write!(f, "is {n} bytes long"),
            ReadRefused::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Reads `path` whole when it is a regular file of at most `limit` bytes:
/// opened with `O_NOFOLLOW|O_NONBLOCK` (a symlink is refused, a FIFO never
/// blocks the open), checked with `fstat` on the open file (no race between
/// the check and the read), and read through a `limit + 1` cap (a file that
/// grows meanwhile is refused too).
pub fn read_limited(path: &Path, limit: u64) -> Result<LimitedRead, ReadRefused> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadRefused::Missing),
        // O_NOFOLLOW on a symlink: ELOOP.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ReadRefused::NotRegular),
        Err(e) => return Err(ReadRefused::Io(e)),
    };
    let meta = file.metadata().map_err(ReadRefused::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadRefused::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadRefused::TooLarge(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadRefused::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadRefused::TooLarge(bytes.len() as u64));
    }
    Ok(LimitedRead {
        bytes,
        owner: meta.uid(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// Who besides its owner can replace or remove a directory's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryAccess {
    /// Only its owner (or the sticky bit protects each file's owner).
    Private,
    /// Writable by its group, without the sticky bit: any member can
    /// rename or remove anyone's files.
    GroupWritable,
    /// Writable by every user, without the sticky bit.
    WorldWritable,
}

/// How `dir` is shared (see [`DirectoryAccess`]).
pub fn check_directory(dir: &Path) -> io::Result<DirectoryAccess> {
    let mode = fs::metadata(dir)?.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    Ok(if sticky {
        DirectoryAccess::Private
    } else if mode & 0o002 != 0 {
        DirectoryAccess::WorldWritable
    } else if mode & 0o020 != 0 {
        DirectoryAccess::GroupWritable
    } else {
        DirectoryAccess::Private
    })
}

/// The effective uid of this process.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `path` as a C string, for the calls std has no wrapper for.
pub fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "taskfarm-shared-dir-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_planted_symlink_or_directory_at_the_temporary_name_is_never_used() {
        let dir = scratch("planted");
        let victim = dir.join("results.dat");
        fs::write(&victim, "precious").unwrap();
        // The first two names drawn are taken: a symlink to the victim and a
        // directory. Both are skipped, the third name is used.
        symlink(&victim, dir.join(".j.json.aaaa.tmp")).unwrap();
        fs::create_dir(dir.join(".j.json.bbbb.tmp")).unwrap();
        let mut names = ["aaaa", "bbbb", "cccc"].into_iter();
        let (mut file, path) =
            create_exclusive_with(&dir, "j.json", || names.next().unwrap().into()).unwrap();
        file.write_all(b"mine").unwrap();
        assert_eq!(path, dir.join(".j.json.cccc.tmp"));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&path).unwrap(), "mine");
        // Every name taken: an error, nothing written anywhere.
        let err = create_exclusive_with(&dir, "j.json", || "aaaa".into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn temporary_names_are_unpredictable() {
        let a = random_suffix();
        let b = random_suffix();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_symlink_at_the_final_name_is_replaced_not_followed() {
        let dir = scratch("final");
        let victim = dir.join("authorized_keys");
        fs::write(&victim, "ssh-ed25519 AAAA").unwrap();
        symlink(&victim, dir.join("state.json")).unwrap();
        write_atomic(&dir, "state.json", b"{}").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "ssh-ed25519 AAAA");
        let meta = fs::symlink_metadata(dir.join("state.json")).unwrap();
        assert!(meta.file_type().is_file());
        // A directory at the final name: the write fails and leaves nothing.
        fs::create_dir(dir.join("d.json")).unwrap();
        assert!(write_atomic(&dir, "d.json", b"{}").is_err());
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_regular_files_of_limited_size_are_read() {
        let dir = scratch("read");
        fs::write(dir.join("ok"), "12345").unwrap();
        let read = read_limited(&dir.join("ok"), 5).unwrap();
        assert_eq!(
            (read.bytes.as_slice(), read.owner),
            (&b"12345"[..], own_uid())
        );
        assert!(matches!(
            read_limited(&dir.join("ok"), 4),
            Err(ReadRefused::TooLarge(5))
        ));
        symlink("/dev/zero", dir.join("zero")).unwrap();
        assert!(matches!(
            read_limited(&dir.join("zero"), 1 << 20),
            Err(ReadRefused::NotRegular)
        ));
        assert!(matches!(
            read_limited(Path::new("/dev/zero"), 1 << 20),
            Err(ReadRefused::NotRegular)
        ));
        let fifo = c_path(&dir.join("fifo")).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // Would block forever if opened for reading without O_NONBLOCK.
        assert!(matches!(
            read_limited(&dir.join("fifo"), 1 << 20),
            Err(ReadRefused::NotRegular)
        ));
        assert!(matches!(
            read_limited(&dir.join("none"), 1),
            Err(ReadRefused::Missing)
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_others_can_write_without_the_sticky_bit_is_told() {
        let dir = scratch("modes");
        let mode = |m| fs::set_permissions(&dir, fs::Permissions::from_mode(m)).unwrap();
        mode(0o700);
        assert_eq!(check_directory(&dir).unwrap(), DirectoryAccess::Private);
        mode(0o2770);
        assert_eq!(
            check_directory(&dir).unwrap(),
            DirectoryAccess::GroupWritable
        );
        mode(0o3770);
        assert_eq!(check_directory(&dir).unwrap(), DirectoryAccess::Private);
        mode(0o777);
        assert_eq!(
            check_directory(&dir).unwrap(),
            DirectoryAccess::WorldWritable
        );
        mode(0o1777);
        assert_eq!(check_directory(&dir).unwrap(), DirectoryAccess::Private);
        mode(0o700);
        let _ = fs::remove_dir_all(&dir);
    }
}
