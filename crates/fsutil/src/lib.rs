//! File-system helpers shared by the crates that keep files on disk: the state store (the state,
//! its backup, the backend record) and the simulated cloud (its world file).
//!
//! # Replacing a file: [`write_atomically`]
//! A crash at any point leaves at `PATH` either the whole old file or the whole new one, never
//! half of one, and a reader (locked or not) sees one or the other. The steps, and why each is
//! there:
//! 1. The bytes go to a temporary file beside `PATH` (same directory, so the same file system
//!    and the rename below is atomic), named `<name>.<pid>.<n>.tmp`: unique per process (the
//!    pid) and per write within it (a counter), so concurrent writers, processes or threads,
//!    never write into each other's temporary file. It is created fresh (`O_CREAT | O_EXCL`:
//!    never a file that already exists, never through a symbolic link planted at its name; a
//!    name that is taken is skipped) with the caller's mode from its creation, so a file created
//!    `0o600` is never readable by others, not even for a moment, and is never chmod-ed.
//! 2. `fsync` of the temporary file, so that its contents are on disk before its name is:
//!    without it a crash after the rename can leave an empty or partial file under `PATH` on
//!    file systems that order metadata before data.
//! 3. `rename` of the temporary file over `PATH`. On one file system a rename is atomic.
//! 4. `fsync` of the directory, which makes the rename itself durable; until then a crash may
//!    bring back the old file (which is still whole). Where directories cannot be opened (not
//!    on Unix) the rename alone must do.
//!
//! When a step fails the temporary file is removed. A temporary file left by a crash is never
//! read by anyone; it is not removed by later writes either (another process may be writing
//! it), and can be deleted by hand.
//!
//! # Reading a file a user names: [`read_bounded`]
//! Only a regular file, and at most a given number of bytes: a device (`/dev/zero`), a FIFO
//! or a directory is refused at once, and a file larger than the limit (or growing past it
//! while read) is refused without reading more than the limit, so memory and time stay bounded
//! whatever the path names.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads the regular file at `path`, refusing anything else and anything over `limit` bytes
/// with an error (kind `InvalidInput`) that says which and what the limit is.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let not_regular = |meta: &fs::Metadata| {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file (a device, a pipe or a socket)" };
        io::Error::new(io::ErrorKind::InvalidInput, format!("it is {what}"))
    };
    // Looked at before it is opened: opening a FIFO waits until something writes to it.
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    // Opened without blocking (no effect on a regular file), in case the path was replaced
    // by a FIFO since; the open file is what is checked and read.
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let too_big =
        || io::Error::new(io::ErrorKind::InvalidInput, format!("it is larger than the limit of {}", human_size(limit)));
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The step of [`write_atomically`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating, writing or syncing the temporary file (before `PATH` is touched).
    Write,
    /// Renaming the temporary file over `PATH`.
    Replace,
    /// Syncing the directory after the rename: `PATH` holds the new file, which a crash may
    /// still undo.
    SyncDirectory,
}

impl Step {
    /// The step as a verb for messages: "cannot {action} {path}".
    pub fn action(self) -> &'static str {
        match self {
            Step::Write => "write",
            Step::Replace => "replace",
            Step::SyncDirectory => "sync directory",
        }
    }
}

/// A failed [`write_atomically`]: the step, the path it concerns (the target for
/// [`Step::Write`] and [`Step::Replace`], its directory for [`Step::SyncDirectory`]) and the
/// OS error.
#[derive(Debug)]
pub struct Error {
    pub step: Step,
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}: {}", self.step.action(), self.path.display(), self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The error as an `io::Error` of the same kind, its message naming the step and the path.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// Replaces the file at `path` with `bytes`, atomically and durably; see the crate docs for the
/// steps. `mode` is the new file's permission bits on Unix (masked by the umask, as for any
/// created file; ignored elsewhere): the file is created with them and never chmod-ed, and it
/// never inherits the mode of the file it replaces. `0o600` for a private file, `0o666` for
/// what `File::create` would give. The directory must exist.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    write_with(path, bytes, mode, &mut || NEXT.fetch_add(1, Ordering::Relaxed), &mut |_| {})
}

/// How many taken temporary names to skip before giving up (each skip is a leftover of a
/// crashed process with the same pid, or something planted there).
const ATTEMPTS: usize = 64;

/// [`write_atomically`] with the counter that names temporary files, and a hook called with
/// the temporary file just before the rename (for tests).
fn write_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    next: &mut dyn FnMut() -> u64,
    before_rename: &mut dyn FnMut(&Path),
) -> Result<(), Error> {
    let (dir, name) = split(path).map_err(error(Step::Write, path))?;
    let (mut file, temp) = create_temp(dir, name, mode, next).map_err(error(Step::Write, path))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    // Closed before the rename: some systems refuse to rename an open file.
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(error(Step::Write, path)(e));
    }
    before_rename(&temp);
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(error(Step::Replace, path)(e));
    }
    sync_dir(dir).map_err(error(Step::SyncDirectory, dir))
}

/// Makes the [`Error`] of `step` on `path` from an OS error.
fn error(step: Step, path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error { step, path: path.to_path_buf(), source }
}

/// `path`'s directory (`.` for a bare name) and file name.
fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Step 1: a new file `<dir>/<name>.<pid>.<n>.tmp`, created with `mode`.
fn create_temp(dir: &Path, name: &OsStr, mode: u32, next: &mut dyn FnMut() -> u64) -> io::Result<(File, PathBuf)> {
    let mut options = OpenOptions::new();
    // `create_new` (O_EXCL): fails on any existing file, symbolic links included (dangling or
    // not), so the file written is always the one created here, with the mode given here.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut temp: OsString = name.to_owned();
        temp.push(format!(".{}.{}.tmp", std::process::id(), next()));
        let temp = dir.join(temp);
        match options.open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Step 4: makes a rename in `dir` durable.
/// Makes the entry of `path` in its directory durable (fsyncs the directory), after the file
/// was created, renamed or removed.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let (dir, _) = split(path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn creates_and_replaces_the_file_leaving_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"first\n", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first\n");
        write_atomically(&path, b"second\n", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second\n");
        write_atomically(&path, b"", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(listing(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(split(Path::new("x.json")).unwrap(), (Path::new("."), OsStr::new("x.json")));
        assert_eq!(split(Path::new("a/x.json")).unwrap(), (Path::new("a"), OsStr::new("x.json")));
        let err = write_atomically(Path::new("/"), b"x", 0o600).unwrap_err();
        assert_eq!((err.step, err.source.kind()), (Step::Write, io::ErrorKind::InvalidInput));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_created_with_the_requested_mode_and_never_inherits_the_old_one() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // Seen just before the rename: the temporary file already has the mode it was
        // created with, in the target's directory, with the whole content.
        let mut seen = vec![];
        write_with(&path, b"secret", 0o600, &mut || 7, &mut |temp| {
            seen.push((temp.to_path_buf(), mode(temp), fs::read(temp).unwrap()));
        })
        .unwrap();
        let temp = dir.path().join(format!("state.json.{}.7.tmp", std::process::id()));
        assert_eq!(seen, [(temp, 0o600, b"secret".to_vec())]);
        assert_eq!(mode(&path), 0o600);

        // A loose file in the way is replaced, not reused: the new one has the mode asked for.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"secret 2", 0o600).unwrap();
        assert_eq!(mode(&path), 0o600);
        // Owner bits are not touched by any sane umask.
        write_atomically(&path, b"read only", 0o400).unwrap();
        assert_eq!(mode(&path), 0o400);
        assert_eq!(fs::read(&path).unwrap(), b"read only");
    }

    #[cfg(unix)]
    #[test]
    fn a_taken_temporary_name_is_skipped_and_a_symlink_there_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        let temp = |n: u64| dir.path().join(format!("state.json.{}.{n}.tmp", std::process::id()));
        // Names 0 and 1 are taken: a symlink to another file, and a dangling one.
        std::os::unix::fs::symlink(&victim, temp(0)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), temp(1)).unwrap();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n - 1
        };
        write_with(&path, b"new", 0o600, &mut next, &mut |_| {}).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert!(!dir.path().join("nowhere").exists());
        assert!(fs::symlink_metadata(temp(0)).unwrap().file_type().is_symlink(), "not ours: left alone");
        assert!(!temp(2).exists(), "the temporary file used is renamed away");
    }

    #[cfg(unix)]
    #[test]
    fn replacing_makes_a_new_file_so_an_open_reader_keeps_the_whole_old_one() {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"old contents", 0o600).unwrap();
        let mut reader = File::open(&path).unwrap();
        let old_inode = reader.metadata().unwrap().ino();
        write_atomically(&path, b"new", 0o600).unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "old contents", "the old file was not truncated or written in place");
        assert_ne!(fs::metadata(&path).unwrap().ino(), old_inode);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file_and_leaves_the_target() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "x").unwrap();
        let err = write_atomically(&path, b"new", 0o600).unwrap_err();
        assert_eq!(err.step, Step::Replace);
        assert_eq!(err.path, path);
        assert!(err.to_string().starts_with(&format!("cannot replace {}: ", path.display())), "{err}");
        assert_eq!(listing(dir.path()), ["taken"], "no temporary file is left behind");
        assert_eq!(listing(&path), ["inside"]);
    }

    #[test]
    fn a_failed_create_names_the_target_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("state.json");
        let err = write_atomically(&path, b"new", 0o600).unwrap_err();
        assert_eq!((err.step, err.source.kind()), (Step::Write, io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with(&format!("cannot write {}: ", path.display())), "{err}");
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().starts_with("cannot write "), "{io}");
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn concurrent_writers_never_produce_a_torn_file() {
        const WRITERS: usize = 8;
        const WRITES: usize = 40;
        // Each writer's content: one byte repeated, of a length of its own, so that any mix of
        // two writes, or a partial one, is seen.
        fn content(w: usize) -> Vec<u8> {
            vec![b'a' + w as u8; 32 * 1024 + 1000 * w]
        }
        fn whole(bytes: &[u8]) -> bool {
            match bytes.first() {
                Some(&b) if (b'a'..b'a' + WRITERS as u8).contains(&b) => bytes == content((b - b'a') as usize),
                _ => false,
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        write_atomically(&path, &content(0), 0o644).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    let bytes = fs::read(&path).expect("the file is always there");
                    assert!(whole(&bytes), "a torn file of {} bytes", bytes.len());
                    reads += 1;
                }
                reads
            })
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..WRITES {
                        write_atomically(&path, &content(w), 0o644).expect("no writer loses its temporary file");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        assert!(whole(&fs::read(&path).unwrap()));
        assert_eq!(listing(dir.path()), ["world.json"], "no temporary file is left behind");
    }

    #[test]
    fn bounded_reads_refuse_devices_directories_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let err = read_bounded(&path, 9).unwrap_err();
        assert_eq!(err.to_string(), "it is larger than the limit of 9 bytes");
        assert_eq!(read_bounded(dir.path(), 10).unwrap_err().to_string(), "it is a directory");
        let err = read_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "it is not a regular file (a device, a pipe or a socket)");
        assert_eq!(human_size(4 << 20), "4 MiB");
        // A FIFO with no writer is refused at once, not waited on.
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(status.success());
            let err = read_bounded(&fifo, 10).unwrap_err();
            assert_eq!(err.to_string(), "it is not a regular file (a device, a pipe or a socket)");
        }
    }
}
