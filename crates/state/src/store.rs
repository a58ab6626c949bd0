//! The local state backend: one JSON file next to the configuration, written atomically,
//! with a backup of the previous version and a lock that says who holds it.
//!
//! # Files
//! For a state file `PATH` (by default `drydock.state.json` in the configuration's
//! directory, see [`default_path`]):
//! - `PATH`: the state, pretty-printed JSON with a trailing newline. Keys come out in a
//!   stable order because the types use `BTreeMap`s, so two writes of the same state are
//!   byte-identical and the file diffs well.
//! - `PATH.backup`: the file as it was before the last write, to recover by hand from a bad
//!   apply.
//! - `PATH.<pid>.<n>.tmp`: a temporary file, which exists only while a write is in progress
//!   (or after a crash during one); its name is unique per process and write.
//! - `PATH.journal`: the write-ahead journal of the run in progress (or of one that was
//!   interrupted), mode 0600: the steps made since the state file was last written, which
//!   reading the state replays. See [`crate::journal`].
//! - `PATH.lock`: the lock file. It holds a [`LockInfo`] as JSON while someone holds the
//!   lock, and is empty otherwise.
//!
//! # Writing
//! A crash at any point of [`LocalStore::write`] leaves at `PATH` either the whole old file or
//! the whole new one, never half of one. The steps, and why each is there:
//! 1. The old file, if any, is copied to `PATH.backup` with the same atomic steps as below,
//!    so the backup is never half a file either; the state file itself is not touched yet.
//! 2. The new state replaces `PATH` with [`drydock_fsutil::write_atomically`]: the bytes go to
//!    a temporary file beside it, created fresh (never an existing file, never through a
//!    symbolic link) with mode 0600 from the start, because the state holds provider settings
//!    and output values that may be secrets, and a chmod after creation would leave a window
//!    in which the file is readable by others; the temporary file is fsynced (its contents
//!    are on disk before its name is), renamed over `PATH` (atomic on one file system:
//!    readers see the old file or the new one, whichever a crash leaves), and the directory is
//!    fsynced (which makes the rename durable; until then a crash may bring back the old
//!    file, which is still a whole state).
//!
//! A temporary file left by a crash is never read (nor removed by later writes, which use
//! names of their own).
//!
//! # Locking
//! [`LocalStore::lock`] takes an exclusive OS file lock (`File::try_lock`) on `PATH.lock`,
//! not on `PATH` itself: the state file is replaced by a rename on every write, and a lock
//! on a replaced file protects nothing. It fails at once when someone else holds the lock,
//! with their [`LockInfo`], rather than waiting: a plan or apply that silently queues behind
//! another one is worse than an error that names the other one. The OS releases the lock
//! when its holder dies, so a crashed run never blocks the next one (its stale info is
//! simply overwritten). [`LocalStore::force_unlock`] exists for a holder that is alive but
//! stuck (a hung process, or one on another machine sharing the directory): it removes the
//! lock file, so the next `lock` creates a new one, and the stuck holder keeps a lock on a
//! file nobody else uses.
//!
//! # Format versions
//! The file carries `format_version`. [`upgrade`] turns any version this build knows into
//! the current [`State`]; a version from a newer drydock is refused rather than misread.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{State, FORMAT_VERSION};

/// The state file's name in the configuration's directory.
pub const DEFAULT_FILE_NAME: &str = "drydock.state.json";

/// The most bytes a state file, its journal or a pushed state may have (a state of 100,000
/// node groups is well under it): a path that names something larger, a device or a FIFO is
/// refused rather than read without end.
pub const MAX_STATE_BYTES: u64 = 512 << 20;

/// Reads a file of the state layer: `None` when there is none; a device, a FIFO, a directory
/// or a file over [`MAX_STATE_BYTES`] is an error.
pub fn read_state_bytes(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match drydock_fsutil::read_bounded(path, MAX_STATE_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// This build's version, recorded in the state and in lock info.
const DRYDOCK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything that can go wrong with the state file and its lock.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} {}: {}", path.display(), io_message(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not JSON at all; the message gives the line and column.
    #[error("state file {} is not valid json: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON but not a state this build can read.
    #[error("state file {}: {source}", path.display())]
    InvalidFile {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    /// What [`upgrade`] reports; [`LocalStore::read`] adds the path ([`StateError::InvalidFile`]).
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("the state's serial {0} cannot be incremented")]
    SerialExhausted(u64),
    #[error("cannot serialize the state: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("{}", locked_message(.0))]
    Locked(LockInfo),
    /// The OS lock is held, but its holder is gone or hung: it cannot be taken over safely
    /// (the holder may still write), so a person decides.
    #[error(
        "the state is locked ({} by {}, pid {} on {}, since {}), but {why}; if that run is really gone, clear the lock with `drydock force-unlock {}`",
        .info.operation, .info.who, .info.pid, .info.host, .info.created, .info.id
    )]
    StaleLock { info: LockInfo, why: String },
    /// A remote state changed since this run read it: the write was refused, nothing lost.
    #[error("the state at {what} was changed by another run since this one read it; nothing was overwritten. Make a new plan and run again")]
    Conflict { what: String },
    /// This run's lease was taken over (it could not renew it in time): it writes no more.
    #[error("this run lost its lock on {what}: its lease expired and another run took the lock over; this run stopped writing the state. Run `drydock plan` to see where things stand")]
    LockLost { what: String },
    /// A remote store failed (the message names the action, the object and what to do).
    #[error("{0}")]
    Remote(String),
    /// Locked by a holder that has not written its info yet (or cannot: it is not drydock).
    #[error("the state is locked by another process whose lock info in {} cannot be read yet; try again", path.display())]
    LockedWithoutInfo { path: PathBuf },
    #[error("lock file {} does not hold valid lock info: {source}", path.display())]
    CorruptLockInfo {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the state at {} is not locked", path.display())]
    NotLocked { path: PathBuf },
    #[error("the state is locked with id {held}, not {given}; nothing was unlocked")]
    LockIdMismatch { given: String, held: String },
    /// The write-ahead journal beside the state cannot be replayed.
    #[error("state journal {what}: {source}; the state file itself is intact — move the journal aside to read the state without the steps it records (then run `drydock plan`, which observes the cloud)")]
    Journal {
        what: String,
        #[source]
        source: crate::journal::JournalError,
    },
}

impl StateError {
    /// A short code for the error's kind, as the command line shows it (`state::locked`).
    pub fn code(&self) -> &'static str {
        match self {
            StateError::Io { .. } => "state::io",
            StateError::Corrupt { .. } => "state::corrupt",
            StateError::InvalidFile { .. } | StateError::Format(_) => "state::format",
            StateError::Serialize(_) | StateError::SerialExhausted(_) => "state::serialize",
            StateError::Locked(_) | StateError::LockedWithoutInfo { .. } => "state::locked",
            StateError::StaleLock { .. } => "state::stale_lock",
            StateError::Conflict { .. } => "state::conflict",
            StateError::LockLost { .. } => "state::lock_lost",
            StateError::Remote(_) => "state::remote",
            StateError::CorruptLockInfo { .. } => "state::corrupt_lock",
            StateError::NotLocked { .. } => "state::not_locked",
            StateError::LockIdMismatch { .. } => "state::lock_id",
            StateError::Journal { .. } => "state::journal",
        }
    }

    fn io(action: &'static str, path: &Path, source: io::Error) -> StateError {
        StateError::Io { action, path: path.to_path_buf(), source }
    }
}

/// Why a JSON document is not a state this build can read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the state is not a json object")]
    NotAnObject,
    #[error("format_version is missing")]
    MissingVersion,
    #[error("format_version {found} was written by a newer drydock (this one reads up to {FORMAT_VERSION}); upgrade drydock")]
    Newer { found: u64 },
    #[error("format_version {found} is not a known state format")]
    UnknownVersion { found: String },
    #[error("does not match state format {version}: {source}")]
    Invalid {
        version: u32,
        #[source]
        source: serde_json::Error,
    },
}

/// "No such file or directory (os error 2)" → "no such file or directory".
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Who holds the state lock, as written into the lock file and shown when a lock is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A random (v4) UUID; `drydock force-unlock` takes it.
    pub id: String,
    /// The command that took the lock (`apply`).
    pub operation: String,
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    pub host: String,
    /// When the lock was taken, RFC 3339 in UTC (`2026-11-21T13:26:00Z`).
    pub created: String,
    /// The drydock version of the holder.
    pub version: String,
    /// The lease, in seconds: the holder renews it every third of that while it works.
    /// 0 in lock info written before leases existed.
    #[serde(default)]
    pub lease_seconds: u64,
    /// When the lease ends unless it is renewed: RFC 3339 in UTC, and in milliseconds since
    /// the Unix epoch (the holder's clock).
    #[serde(default)]
    pub expires: String,
    #[serde(default)]
    pub expires_ms: u64,
}

/// The default lease of a lock: a holder that stops renewing loses the lock this long after
/// its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

impl LockInfo {
    /// Info for a lock this process is taking now, with a lease of `lease` from `now_ms`.
    pub fn new(operation: &str, lease: Duration, now_ms: u64) -> LockInfo {
        let host = host_name();
        let mut info = LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            who: format!("{}@{host}", user_name()),
            pid: std::process::id(),
            host,
            created: format_ms(now_ms),
            version: DRYDOCK_VERSION.to_string(),
            lease_seconds: lease.as_secs().max(1),
            expires: String::new(),
            expires_ms: 0,
        };
        info.renew(now_ms);
        info
    }

    /// Moves the end of the lease to a whole lease after `now_ms`.
    pub fn renew(&mut self, now_ms: u64) {
        self.expires_ms = now_ms.saturating_add(self.lease_seconds.saturating_mul(1000));
        self.expires = format_ms(self.expires_ms);
    }

    /// Whether the lease ended before `now_ms` (never, for info without a lease).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms != 0 && now_ms > self.expires_ms
    }
}

/// When waiting for a lock ends: `timeout` from now, or never for a timeout too long for the
/// clock to hold (`--lock-timeout` is the user's, and `Instant + Duration` panics on
/// overflow).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline(Option<Instant>);

impl Deadline {
    pub(super) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// How long until the deadline; zero once it has passed.
    pub(super) fn left(self) -> Duration {
        self.0.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()))
    }

    pub(super) fn passed(self) -> bool {
        self.left().is_zero()
    }
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn locked_message(i: &LockInfo) -> String {
    let lease = if i.expires.is_empty() {
        String::new()
    } else {
        format!(
            "; its lease ends at {} unless the holder renews it (a run that died stops renewing, and its lock can be taken over then: use --lock-timeout to wait for it)",
            i.expires
        )
    };
    format!(
        "the state is locked: {} by {} (pid {} on {}) since {}{lease}; if that run is gone, clear the lock with `drydock force-unlock {}`",
        i.operation, i.who, i.pid, i.host, i.created, i.id
    )
}

/// Whether process `pid` runs on this host. `None` where that cannot be told.
pub fn pid_alive(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") {
        Some(Path::new("/proc").join(pid.to_string()).exists())
    } else {
        None
    }
}

/// Writes `state` as its next version with `write`: `serial` incremented, this drydock's
/// format and version recorded. On error `state` is left as it was. The local backend's
/// `write`; the remote one does the same around an awaited write ([`Previous`]).
pub(super) fn write_next(
    state: &mut State,
    write: impl FnOnce(&State) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let before = Previous::advance(state)?;
    let result = write(state);
    if result.is_err() {
        before.restore(state);
    }
    result
}

/// Makes `state` its next version (serial incremented, this drydock's format and version
/// recorded), as every write does: for the records of a journal, which advance it one by one.
pub fn advance(state: &mut State) -> Result<(), StateError> {
    Previous::advance(state).map(|_| ())
}

/// What [`Previous::advance`] changed in a state to make it the next version, to put back
/// when the write fails.
pub(super) struct Previous {
    serial: u64,
    format_version: u32,
    drydock_version: String,
}

impl Previous {
    /// Makes `state` its next version: `serial` incremented, this drydock's format and
    /// version recorded.
    pub(super) fn advance(state: &mut State) -> Result<Previous, StateError> {
        // A serial read from a file can be anything; at the very top it cannot go up.
        let serial = state.serial.checked_add(1).ok_or(StateError::SerialExhausted(state.serial))?;
        let before = Previous {
            serial: state.serial,
            format_version: state.format_version,
            drydock_version: std::mem::take(&mut state.drydock_version),
        };
        state.serial = serial;
        state.format_version = FORMAT_VERSION;
        state.drydock_version = DRYDOCK_VERSION.to_string();
        Ok(before)
    }

    /// Puts `state` back as it was before [`Previous::advance`].
    pub(super) fn restore(self, state: &mut State) {
        (state.serial, state.format_version, state.drydock_version) =
            (self.serial, self.format_version, self.drydock_version);
    }
}

/// A fresh lineage: a random (v4) UUID.
pub fn new_lineage() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The default state file for a configuration path: `drydock.state.json` in the directory
/// itself if `config_path` is a directory, else in the file's directory.
pub fn default_path(config_path: &Path) -> PathBuf {
    let dir = if config_path.is_dir() { config_path } else { config_path.parent().unwrap_or(Path::new("")) };
    dir.join(DEFAULT_FILE_NAME)
}

pub use crate::format::decode as upgrade;

/// The state file on the local disk. See the module docs for the files and guarantees.
///
/// Clones share what the store knows of its files (the [`Cursor`]): the journal it appends to.
#[derive(Debug, Clone)]
pub struct LocalStore {
    path: PathBuf,
    cursor: Arc<Mutex<Cursor>>,
}

impl PartialEq for LocalStore {
    fn eq(&self, other: &LocalStore) -> bool {
        self.path == other.path
    }
}

impl Eq for LocalStore {}

/// What a store knows of the state it last read or wrote, to append to its journal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cursor {
    /// The stored state as last read or written (`None`: not known, or there is none).
    pub(crate) base: Option<Base>,
    /// The journal extending `base`: its length in bytes (`None`: there is none yet).
    pub(crate) journal_len: Option<u64>,
    /// The SHA-256 (hex) of `base`'s bytes, which that journal's records are bound to
    /// ([`crate::journal::bind`]); known with `journal_len`.
    pub(crate) journal_base: String,
    /// The records in it.
    pub(crate) records: u64,
}

/// A stored state: what a journal header names (its lineage, serial and the SHA-256 of its
/// bytes, hashed once when read or written, never per step), and its size.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    pub(crate) lineage: String,
    pub(crate) serial: u64,
    pub(crate) sha256: String,
    pub(crate) len: u64,
}

impl Base {
    fn of(state: &State, bytes: &[u8]) -> Base {
        Base {
            lineage: state.lineage.clone(),
            serial: state.serial,
            sha256: crate::journal::sha256_hex(bytes),
            len: bytes.len() as u64,
        }
    }
}

impl Cursor {
    /// Whether a record of `len` bytes goes into a compaction rather than the journal: there is
    /// no stored state to extend, or the journal would outgrow the state (so that compactions
    /// cost at most as many bytes as the records they fold in).
    pub(crate) fn compacts(&self, len: usize) -> bool {
        match &self.base {
            None => true,
            Some(b) => self.journal_len.unwrap_or(0) + len as u64 > b.len.max(MIN_JOURNAL_BYTES),
        }
    }
}

/// A journal may grow to the state's size, and to at least this.
pub(crate) const MIN_JOURNAL_BYTES: u64 = 256 * 1024;

impl LocalStore {
    pub fn new(path: impl Into<PathBuf>) -> LocalStore {
        LocalStore { path: path.into(), cursor: Arc::default() }
    }

    /// The write-ahead journal: `PATH.journal`.
    pub fn journal_path(&self) -> PathBuf {
        sibling(&self.path, ".journal")
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the previous version is kept: `PATH.backup`.
    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".backup")
    }

    /// The lock file: `PATH.lock`.
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// The state, or `None` when there is no state file yet, with the steps of its journal
    /// replayed.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        // A reader without the lock may see the state file replaced by a compaction between
        // reading it and reading the journal (the journal then names another base): it reads
        // again, and after a few tries settles for the state file alone, a whole older state.
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(bytes) = self.read_bytes()? else {
                *self.cursor() = Cursor::default();
                return Ok(None);
            };
            let mut state = self.parse(&bytes)?;
            let journal =
                read_state_bytes(&self.journal_path()).map_err(|e| StateError::io("read", &self.journal_path(), e))?;
            let base = Base::of(&state, &bytes);
            let mut cursor = Cursor::default();
            if let Some(journal) = journal {
                let sha = base.sha256.clone();
                let scan = crate::journal::replay_journal(&mut state, &sha, &journal).map_err(|source| {
                    StateError::Journal { what: self.journal_path().display().to_string(), source }
                })?;
                if !scan.extends && tries < 3 && self.read_bytes()?.as_deref() != Some(&bytes[..]) {
                    continue;
                }
                if scan.extends {
                    cursor.journal_len = Some(scan.valid_len);
                    cursor.records = scan.records as u64;
                    cursor.journal_base = sha;
                }
            }
            cursor.base = Some(base);
            *self.cursor() = cursor;
            return Ok(Some(state));
        }
    }

    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        read_state_bytes(&self.path).map_err(|e| StateError::io("read", &self.path, e))
    }

    fn parse(&self, bytes: &[u8]) -> Result<State, StateError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|source| StateError::Corrupt { path: self.path.clone(), source })?;
        match upgrade(value) {
            Ok(state) => Ok(state),
            Err(StateError::Format(FormatError::Invalid { version, source })) => {
                // Converting from a `Value` loses positions; parsing the text again as the
                // current format finds the same problem with its line and column.
                let source = if version == FORMAT_VERSION {
                    crate::format::locate_error(bytes).unwrap_or(source)
                } else {
                    source
                };
                Err(StateError::InvalidFile {
                    path: self.path.clone(),
                    source: FormatError::Invalid { version, source },
                })
            }
            Err(StateError::Format(source)) => Err(StateError::InvalidFile { path: self.path.clone(), source }),
            Err(e) => Err(e),
        }
    }

    /// The state's bytes as `state pull` shows them: the file, or, while a journal extends it,
    /// the state with the journal replayed.
    pub fn read_current_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        let Some(state) = self.read()? else { return Ok(None) };
        if self.cursor().journal_len.is_none() {
            return self.read_bytes();
        }
        crate::format::encode(&state).map(Some)
    }

    /// Whether records of `len` more bytes go into a compaction rather than the journal.
    pub fn compacts(&self, len: usize) -> bool {
        self.cursor().compacts(len)
    }

    /// Appends `record` (`count` framed records) to the journal and makes it durable. The caller
    /// has checked that it does not compact ([`LocalStore::compacts`]).
    pub fn append(&self, record: &[u8], count: u64) -> Result<(), StateError> {
        let path = self.journal_path();
        let mut cursor = self.cursor();
        let Some(base) = cursor.base.as_ref() else {
            return Err(StateError::io("append to", &path, io::Error::other("the state was not read first")));
        };
        let bind = |base: &str| {
            crate::journal::bind(base, record).map_err(|e| StateError::io("append to", &path, io::Error::other(e)))
        };
        let len = match cursor.journal_len {
            None => {
                let header = crate::journal::Header::of_hash(&base.lineage, base.serial, base.sha256.clone());
                let mut bytes = crate::journal::encode_header(&header);
                bytes.extend(bind(&header.base_sha256)?);
                // A new journal: any file there is stale (it names another base). Removed
                // first, so the new one is created fresh with mode 0600, never through a link.
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StateError::io("remove", &path, e)),
                }
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(|e| StateError::io("create", &path, e))?;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| StateError::io("write", &path, e))?;
                // The new name is durable too: a crash now cannot lose the journal.
                drydock_fsutil::sync_parent(&path).map_err(|e| StateError::io("sync the directory of", &path, e))?;
                cursor.journal_base = header.base_sha256;
                bytes.len() as u64
            }
            Some(len) => {
                let record = bind(&cursor.journal_base)?;
                let mut file =
                    OpenOptions::new().write(true).open(&path).map_err(|e| StateError::io("open", &path, e))?;
                // A torn tail left by a crash is cut off, so records stay contiguous.
                let write = |file: &mut File| -> io::Result<()> {
                    if file.metadata()?.len() != len {
                        file.set_len(len)?;
                    }
                    file.seek(io::SeekFrom::Start(len))?;
                    file.write_all(&record)?;
                    file.sync_data()
                };
                write(&mut file).map_err(|e| StateError::io("append to", &path, e))?;
                len + record.len() as u64
            }
        };
        cursor.journal_len = Some(len);
        cursor.records += count;
        Ok(())
    }

    /// Writes `state` as the state file (its serial as it is: the journal's records advanced
    /// it) and retires the journal. A crash between the two leaves a journal naming the old
    /// file, which reads ignore.
    pub fn compact(&self, state: &State) -> Result<(), StateError> {
        let bytes = self.write_bytes(state)?;
        self.remove_journal()?;
        *self.cursor() = Cursor { base: Some(Base::of(state, &bytes)), ..Cursor::default() };
        Ok(())
    }

    /// Whether the journal holds records the state file does not.
    pub fn has_journal(&self) -> bool {
        self.cursor().journal_len.is_some()
    }

    fn remove_journal(&self) -> Result<(), StateError> {
        match fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::io("remove", &self.journal_path(), e)),
        }
    }

    /// Writes `state` as the new state file: increments `serial`, records this drydock's
    /// version, keeps the previous file as the backup, and replaces the file atomically.
    /// On error `state` is left as it was.
    pub fn write(&self, state: &mut State) -> Result<(), StateError> {
        write_next(state, |s| self.compact(s))
    }

    /// Writes `state` as it is, its serial untouched (`state push`, `state migrate`), with the
    /// same backup and atomic replacement as [`LocalStore::write`]. It replaces whatever was
    /// there, journal included: the journal goes first, so it can never be replayed onto the
    /// new state.
    pub fn write_as_is(&self, state: &State) -> Result<(), StateError> {
        self.remove_journal()?;
        self.compact(state)
    }

    /// Writes the state file (keeping the old one as the backup); returns its bytes.
    fn write_bytes(&self, state: &State) -> Result<Vec<u8>, StateError> {
        let bytes = crate::format::encode(state)?;
        if let Some(old) = read_state_bytes(&self.path).map_err(|e| StateError::io("read", &self.path, e))? {
            write_private(&self.backup_path(), &old)?;
        }
        write_private(&self.path, &bytes)?;
        Ok(bytes)
    }

    /// Takes the state lock for `operation` (`plan`, `apply`) with a lease of `lease`. When
    /// someone else has it, tries again until `timeout` has passed and then fails with the
    /// holder's info (at once with a zero timeout). Dropping the [`StateLock`] releases it.
    pub fn lock(&self, operation: &str, lease: Duration, timeout: Duration) -> Result<StateLock, StateError> {
        let deadline = Deadline::after(timeout);
        loop {
            match self.try_lock(operation, lease) {
                Err(StateError::Locked(_) | StateError::LockedWithoutInfo { .. }) if !deadline.passed() => {
                    std::thread::sleep(Duration::from_millis(200).min(deadline.left()));
                }
                other => return other,
            }
        }
    }

    fn try_lock(&self, operation: &str, lease: Duration) -> Result<StateLock, StateError> {
        let lock_path = self.lock_path();
        // `force_unlock` may remove the lock file between our open and our lock, leaving us
        // holding a lock on a file nobody else will open; then we open the new one and try
        // again. Three rounds of that in a row would need a force-unlock in a loop.
        for _ in 0..3 {
            let file = open_lock_file(&lock_path, LockFileUse::Lock)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    // Empty or half-written info is a holder caught between locking and
                    // writing it.
                    return Err(match read_lock_info(&file, &lock_path) {
                        Ok(Some(info)) => held_by(info),
                        Ok(None) | Err(StateError::CorruptLockInfo { .. }) => {
                            StateError::LockedWithoutInfo { path: lock_path }
                        }
                        Err(e) => e,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(StateError::io("lock", &lock_path, e)),
            }
            if !same_file(&file, &lock_path)? {
                continue;
            }
            // Info left behind means its holder died without releasing: the OS freed the
            // lock, and the caller is told whose it was.
            let replaced = read_lock_info(&file, &lock_path).ok().flatten();
            let info = LockInfo::new(operation, lease, now_ms());
            write_lock_info(&file, &lock_path, &info)?;
            let renewal = Renewal::start(&file, &lock_path, &info).inspect_err(|_| {
                // Not taken after all: leave no info behind that names this run as the holder.
                let _ = file.set_len(0);
            })?;
            return Ok(StateLock { file, path: lock_path, info, released: false, replaced, renewal: Some(renewal) });
        }
        Err(StateError::io("lock", &lock_path, io::Error::other("the lock file was replaced while locking it")))
    }

    /// The info recorded in the lock file, if any. A record is there while someone holds the
    /// lock; after a holder crashed it stays until the next `lock` or `force_unlock`, though
    /// the OS lock itself is free.
    pub fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        let lock_path = self.lock_path();
        match open_lock_file(&lock_path, LockFileUse::Read) {
            Ok(file) => read_lock_info(&file, &lock_path),
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clears the lock whose info has id `id`. Refuses when there is no lock info or its id is
    /// another one. A stale record (its holder is gone) is just cleared; a lock still held by
    /// a live process is broken by removing the lock file, and that process is not told.
    pub fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let lock_path = self.lock_path();
        let file = match open_lock_file(&lock_path, LockFileUse::Clear) {
            Ok(file) => file,
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotLocked { path: self.path.clone() })
            }
            Err(e) => return Err(e),
        };
        let Some(info) = read_lock_info(&file, &lock_path)? else {
            return Err(StateError::NotLocked { path: self.path.clone() });
        };
        if info.id != id {
            return Err(StateError::LockIdMismatch { given: id.to_string(), held: info.id });
        }
        match file.try_lock() {
            // Nobody holds it: only the record of a crashed holder was left.
            Ok(()) => {
                let result = file.set_len(0).map_err(|e| StateError::io("clear lock info in", &lock_path, e));
                file.unlock().map_err(|e| StateError::io("unlock", &lock_path, e))?;
                result
            }
            Err(TryLockError::WouldBlock) => match fs::remove_file(&lock_path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StateError::io("remove", &lock_path, e)),
            },
            Err(TryLockError::Error(e)) => Err(StateError::io("lock", &lock_path, e)),
        }
    }
}

/// Why a lock held by someone else is held: by a live holder ([`StateError::Locked`]), or
/// by one that is gone from this host or has stopped renewing its lease
/// ([`StateError::StaleLock`]: the OS lock is still held, by a process elsewhere sharing the
/// directory or a hung one, so only a person can decide to clear it).
fn held_by(info: LockInfo) -> StateError {
    if info.host == host_name() && pid_alive(info.pid) == Some(false) {
        let why = format!("its holder (pid {}) is no longer running on this host", info.pid);
        return StateError::StaleLock { info, why };
    }
    if info.expired(now_ms()) {
        let why = format!(
            "its holder has not renewed its lease since it ended at {} (the process is hung, or its machine lost this directory)",
            info.expires
        );
        return StateError::StaleLock { info, why };
    }
    StateError::Locked(info)
}

/// Writes `info` over a lock file's contents, without a moment of empty file when the new
/// text is as long as the old (a renewal changes only the time).
fn write_lock_info(file: &File, path: &Path, info: &LockInfo) -> Result<(), StateError> {
    let mut text = serde_json::to_vec_pretty(info).map_err(StateError::Serialize)?;
    text.push(b'\n');
    // No fsync: the info only matters while the holder lives, and the OS drops the lock
    // itself when the machine goes down.
    let record = |mut f: &File| -> io::Result<()> {
        f.rewind()?;
        f.write_all(&text)?;
        f.set_len(text.len() as u64)
    };
    record(file).map_err(|e| StateError::io("write lock info to", path, e))
}

/// The thread that renews a local lock's lease every third of it, so that the info always
/// shows a live holder as live.
#[derive(Debug)]
struct Renewal {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewal {
    fn start(file: &File, path: &Path, info: &LockInfo) -> Result<Renewal, StateError> {
        let file = file.try_clone().map_err(|e| StateError::io("open lock file", path, e))?;
        let (path, mut info) = (path.to_path_buf(), info.clone());
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = Duration::from_millis(info.lease_seconds.saturating_mul(1000) / 3);
        let what = path.clone();
        let thread = std::thread::Builder::new()
            .name("drydock-lock-renewal".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    info.renew(now_ms());
                    let _ = write_lock_info(&file, &path, &info);
                }
            })
            .map_err(|e| StateError::io("start renewing the lease of", &what, e))?;
        Ok(Renewal { stop, thread: Some(thread) })
    }

    fn stop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A held state lock. Dropping it clears the lock info and releases the OS lock.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
    info: LockInfo,
    /// Set by `release`, so that `drop` does not clear the info a new holder may have
    /// written since.
    released: bool,
    /// The info of a holder that died holding the lock, found when taking it.
    replaced: Option<LockInfo>,
    renewal: Option<Renewal>,
}

impl StateLock {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock info of an earlier holder that ended without releasing the lock (its process
    /// died, so the OS released it), if taking the lock found one.
    pub fn replaced(&self) -> Option<&LockInfo> {
        self.replaced.as_ref()
    }

    /// Releases the lock now, reporting what `drop` can only ignore.
    pub fn release(mut self) -> Result<(), StateError> {
        self.released = true;
        self.clear()
    }

    fn clear(&mut self) -> Result<(), StateError> {
        if let Some(mut r) = self.renewal.take() {
            r.stop();
        }
        // Through our own handle, never by path: after a force-unlock the path names a new
        // lock file whose holder's info must survive us.
        self.file.set_len(0).map_err(|e| StateError::io("clear lock info in", &self.path, e))?;
        self.file.unlock().map_err(|e| StateError::io("unlock", &self.path, e))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Nothing to do on failure: closing the handle releases the OS lock anyway, and stale
        // info is overwritten by the next holder.
        if !self.released {
            let _ = self.clear();
        }
    }
}

/// What a lock file is opened for: locking creates it; reading the info needs no write
/// permission; clearing a record needs write permission but creates nothing.
#[derive(Clone, Copy, PartialEq)]
enum LockFileUse {
    Lock,
    Read,
    Clear,
}

fn open_lock_file(path: &Path, what: LockFileUse) -> Result<File, StateError> {
    let mut options = OpenOptions::new();
    let write = what != LockFileUse::Read;
    options.read(true).write(write).create(what == LockFileUse::Lock).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| StateError::io("open lock file", path, e))
}

/// The info in an open lock file; `None` when it is empty (no holder, or one that has not
/// written its info yet).
fn read_lock_info(mut file: &File, path: &Path) -> Result<Option<LockInfo>, StateError> {
    let mut text = String::new();
    file.rewind().and_then(|_| file.read_to_string(&mut text)).map_err(|e| StateError::io("read", path, e))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| StateError::CorruptLockInfo { path: path.to_path_buf(), source })
}

/// Whether `path` still names the open `file` (it may have been removed or replaced).
fn same_file(file: &File, path: &Path) -> Result<bool, StateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata().map_err(|e| StateError::io("inspect", path, e))?;
        match fs::metadata(path) {
            Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StateError::io("inspect", path, e)),
        }
    }
    // Elsewhere an open file cannot be removed, so the path still names it.
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(true)
    }
}

/// Replaces `path` with `bytes` atomically, the file created with mode 0600 (see the module
/// docs): the state and its backup.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    drydock_fsutil::write_atomically(path, bytes, 0o600).map_err(|e| StateError::io(e.step.action(), &e.path, e.source))
}

/// `<path><suffix>`, next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `time` as RFC 3339 in UTC to the second (`2026-11-21T13:26:00Z`), by
/// `humantime::format_rfc3339_seconds`. Times before 1970 are shown as 1970 and times after
/// 9999 as the last second of 9999 (the formatter takes neither): lock times are "now" and
/// "now" plus a lease, and a clock that far off is not worth an error.
pub fn format_rfc3339(time: SystemTime) -> String {
    format_secs(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// 9999-12-31T23:59:59Z in seconds since the Unix epoch: the last second RFC 3339's
/// four-digit year can show.
const LAST_SECOND: u64 = 253_402_300_799;

/// [`format_rfc3339`] of `ms` milliseconds after the Unix epoch (lock info's times), without
/// building a `SystemTime` that the platform may not hold.
fn format_ms(ms: u64) -> String {
    format_secs(ms / 1000)
}

fn format_secs(secs: u64) -> String {
    // Clamped first: `UNIX_EPOCH + LAST_SECOND` is a time every platform holds, and one that
    // humantime formats (it refuses times after 9999, which `to_string` would turn into a
    // panic).
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.min(LAST_SECOND))).to_string()
}

/// The user running drydock, from the environment; `unknown` if it does not say.
fn user_name() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// This machine's name, without calling into libc: the kernel's idea on Linux, then the
/// environment; `unknown` if nothing says.
fn host_name() -> String {
    let from_files = ["/proc/sys/kernel/hostname", "/etc/hostname"].iter().filter_map(|p| fs::read_to_string(p).ok());
    let from_env = ["HOSTNAME", "COMPUTERNAME"].iter().filter_map(|v| std::env::var(v).ok());
    from_files
        .chain(from_env)
        .map(|h| h.trim().to_string())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::{ClusterState, GenerationState, NodeGroupState, OutputState};
    use drydock_model::{Health, HealthCheck, IntOrPercent, NodeSettings, Role, Rollout};

    fn sample() -> State {
        let settings = NodeSettings {
            min: 3,
            max: 10,
            desired: None,
            tags: BTreeMap::from([("team".to_string(), "infra".to_string())]),
            subnets: vec!["subnet-a".to_string()],
            health: Health {
                check: HealthCheck::Ec2,
                grace_period_ms: 300_000,
                max_unhealthy: IntOrPercent::Int(0),
                unhealthy_timeout_ms: 600_000,
                startup_timeout_ms: 900_000,
                node_startup_timeout_ms: drydock_model::DEFAULT_NODE_STARTUP_TIMEOUT_MS,
            },
            rollout: Rollout {
                max_surge: IntOrPercent::Percent(25.0),
                max_unavailable: IntOrPercent::Int(0),
                health_timeout_ms: 600_000,
                min_ready_ms: 0,
            },
            drain: Default::default(),
            labels: Default::default(),
            sensitive_tags: Default::default(),
            sensitive_labels: Default::default(),
        };
        let workers = NodeGroupState {
            name: "workers".to_string(),
            key: None,
            role: Role::Worker,
            generations: vec![GenerationState {
                id: "0123456789".to_string(),
                spec: serde_json::json!({ "image": "img-1" }),
                groups: vec!["demo-workers-0123456789".to_string()],
            }],
            settings,
            boot_times_ms: vec![61_000, 58_500],
            drain_times_ms: vec![],
            unfinished: false,
            history: vec![],
            cloud_owner: None,
        };
        let mut state = State::new("9a1c1f0e-0000-4000-8000-000000000000".to_string());
        state.clusters.insert(
            "cluster.demo".to_string(),
            ClusterState {
                name: "demo".to_string(),
                key: None,
                provider: "sim".to_string(),
                node_groups: BTreeMap::from([("cluster.demo.node_group.workers".to_string(), workers)]),
            },
        );
        state.outputs.insert("endpoint".to_string(), OutputState { value: "https://demo".into(), sensitive: false });
        state
    }

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join(DEFAULT_FILE_NAME));
        (dir, store)
    }

    /// The temporary files beside the state file.
    fn temp_files(store: &LocalStore) -> Vec<PathBuf> {
        let dir = store.path().parent().unwrap();
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .collect()
    }

    #[test]
    fn no_file_reads_as_none() {
        let (_dir, store) = store();
        assert_eq!(store.read().unwrap(), None);
        assert_eq!(store.lock_info().unwrap(), None);
    }

    #[test]
    fn round_trip_keeps_everything_and_counts_serials() {
        let (_dir, store) = store();
        let mut state = sample();
        state.drydock_version = "0.0.0-old".to_string();
        store.write(&mut state).unwrap();
        assert_eq!(state.serial, 1);
        assert_eq!(state.drydock_version, DRYDOCK_VERSION);
        assert_eq!(store.read().unwrap().as_ref(), Some(&state));
        store.write(&mut state).unwrap();
        assert_eq!(store.read().unwrap().unwrap().serial, 2);
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.starts_with("{\n  \"format_version\": 1,\n"), "pretty-printed: {text}");
        assert!(text.ends_with("}\n"), "a trailing newline");
        assert_eq!(temp_files(&store), Vec::<PathBuf>::new(), "no temporary file is left behind");
    }

    #[test]
    fn writing_what_was_read_changes_only_the_serial() {
        let (_dir, store) = store();
        let mut state = sample();
        store.write(&mut state).unwrap();
        let first = fs::read_to_string(store.path()).unwrap();
        let mut again = store.read().unwrap().unwrap();
        store.write(&mut again).unwrap();
        let second = fs::read_to_string(store.path()).unwrap();
        assert_eq!(second.replace("\"serial\": 2,", "\"serial\": 1,"), first);
    }

    #[test]
    fn backup_holds_the_previous_version() {
        let (_dir, store) = store();
        let mut state = sample();
        store.write(&mut state).unwrap();
        assert!(!store.backup_path().exists(), "nothing to back up on the first write");
        let first = fs::read(store.path()).unwrap();
        state.outputs.clear();
        store.write(&mut state).unwrap();
        assert_eq!(fs::read(store.backup_path()).unwrap(), first);
        let backup = LocalStore::new(store.backup_path()).read().unwrap().unwrap();
        assert_eq!(backup.serial, 1);
        assert_eq!(backup.outputs.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, store) = store();
        let mut state = sample();
        store.write(&mut state).unwrap();
        // A state file with a loose mode (made by hand) must not lend it to the next state:
        // that is written to a new file, created with mode 0600.
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        store.write(&mut state).unwrap();
        for path in [store.path().to_path_buf(), store.backup_path()] {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    #[test]
    fn a_corrupt_file_is_an_error_with_its_position() {
        let (_dir, store) = store();
        fs::write(store.path(), "{\n  \"format_version\": 1,\n  \"lineage\": \n").unwrap();
        let err = store.read().unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("state file {} is not valid json: ", store.path().display())), "{msg}");
        assert!(msg.contains("line 4 column 0"), "{msg}");
    }

    #[test]
    fn a_file_of_the_wrong_shape_is_an_error_with_its_position() {
        let (_dir, store) = store();
        fs::write(store.path(), "{\n  \"format_version\": 1,\n  \"serial\": \"x\"\n}\n").unwrap();
        let msg = store.read().unwrap_err().to_string();
        assert!(msg.contains("does not match state format 1: invalid type: string \"x\""), "{msg}");
        assert!(msg.contains("at line 3"), "{msg}");
    }

    #[test]
    fn versions_other_than_1_are_refused() {
        let (_dir, store) = store();
        let mut value = crate::format::to_value(&sample());
        value["format_version"] = 2.into();
        fs::write(store.path(), value.to_string()).unwrap();
        let msg = store.read().unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "state file {}: format_version 2 was written by a newer drydock (this one reads up to 1); upgrade drydock",
                store.path().display()
            )
        );
        for (version, expected) in [
            (Value::Null, "format_version is missing"),
            (0.into(), "format_version 0 is not a known state format"),
            ("1".into(), "format_version \"1\" is not a known state format"),
        ] {
            value["format_version"] = version;
            assert_eq!(upgrade(value.clone()).unwrap_err().to_string(), expected);
        }
        value.as_object_mut().unwrap().remove("format_version");
        assert_eq!(upgrade(value).unwrap_err().to_string(), "format_version is missing");
        assert_eq!(upgrade(Value::Array(vec![])).unwrap_err().to_string(), "the state is not a json object");
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file_whole() {
        let (_dir, store) = store();
        let mut state = sample();
        store.write(&mut state).unwrap();
        let before = fs::read(store.path()).unwrap();
        // The crash: the new file is half written to a temporary file and never renamed.
        let leftover = sibling(store.path(), ".4242.0.tmp");
        fs::write(&leftover, b"{\n  \"format_version\": 1,\n  \"lin").unwrap();
        assert_eq!(fs::read(store.path()).unwrap(), before);
        assert_eq!(store.read().unwrap(), Some(state.clone()));
        // The next run writes beside the leftover, which is never read.
        store.write(&mut state).unwrap();
        assert_eq!(store.read().unwrap().unwrap().serial, 2);
        assert_eq!(temp_files(&store), [leftover]);
    }

    #[test]
    fn a_failed_write_leaves_the_state_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("missing-dir").join(DEFAULT_FILE_NAME));
        let mut state = sample();
        let before = state.clone();
        let err = store.write(&mut state).unwrap_err();
        assert!(err.to_string().starts_with("cannot write "), "{err}");
        assert_eq!(state, before);

        let (_dir, store) = super::tests::store();
        state.serial = u64::MAX;
        let before = state.clone();
        assert!(matches!(store.write(&mut state), Err(StateError::SerialExhausted(u64::MAX))));
        assert_eq!(state, before);
        assert!(!store.path().exists());
    }

    #[test]
    fn a_second_lock_fails_with_the_first_holders_info() {
        let (_dir, store) = store();
        let held = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        let info = held.info().clone();
        assert_eq!(info.operation, "apply");
        assert_eq!(info.pid, std::process::id());
        assert!(info.who.ends_with(&format!("@{}", info.host)), "{info:?}");
        assert_eq!(info.version, DRYDOCK_VERSION);
        assert!(uuid::Uuid::parse_str(&info.id).is_ok(), "{}", info.id);
        assert_eq!(store.lock_info().unwrap().as_ref(), Some(&info));

        // Another store on the same file, as another process would open it.
        let err = LocalStore::new(store.path()).lock("plan", DEFAULT_LEASE, Duration::ZERO).unwrap_err();
        let StateError::Locked(ref holder) = err else { panic!("{err:?}") };
        assert_eq!(holder, &info);
        let msg = err.to_string();
        for part in [&info.who, &info.pid.to_string(), &info.host, "apply", &info.created, &info.id] {
            assert!(msg.contains(part), "{msg} names {part}");
        }
        assert!(msg.contains(&format!("drydock force-unlock {}", info.id)), "{msg}");
        assert!(msg.starts_with("the state is locked: "), "{msg}");
    }

    #[test]
    fn dropping_the_lock_releases_it() {
        let (_dir, store) = store();
        let first = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        drop(first);
        assert_eq!(store.lock_info().unwrap(), None, "the info is cleared");
        let second = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).unwrap();
        assert_eq!(store.lock_info().unwrap().unwrap().operation, "plan");
        second.release().unwrap();
        assert_eq!(store.lock_info().unwrap(), None);
        assert!(store.lock("apply", DEFAULT_LEASE, Duration::ZERO).is_ok());
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        let (_dir, store) = store();
        assert!(matches!(store.force_unlock("x"), Err(StateError::NotLocked { .. })));
        let held = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        let err = store.force_unlock("not-the-id").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the state is locked with id {}, not not-the-id; nothing was unlocked", held.id())
        );
        assert!(store.lock("plan", DEFAULT_LEASE, Duration::ZERO).is_err(), "still locked");

        store.force_unlock(held.id()).unwrap();
        assert_eq!(store.lock_info().unwrap(), None);
        let next = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).expect("the lock is free after a force-unlock");
        // The broken holder finishing must not clear the new holder's info.
        drop(held);
        assert_eq!(store.lock_info().unwrap().as_ref(), Some(next.info()));
        assert!(store.lock("apply", DEFAULT_LEASE, Duration::ZERO).is_err(), "the new holder still holds it");
    }

    #[test]
    fn stale_info_of_a_dead_holder_neither_blocks_nor_lingers() {
        let (_dir, store) = store();
        let mut stale = LockInfo::new("apply", DEFAULT_LEASE, now_ms());
        stale.pid = 999_999;
        fs::write(store.lock_path(), serde_json::to_string(&stale).unwrap()).unwrap();
        assert_eq!(store.lock_info().unwrap(), Some(stale.clone()), "the record is reported");
        store.force_unlock(&stale.id).unwrap();
        assert_eq!(store.lock_info().unwrap(), None);

        fs::write(store.lock_path(), serde_json::to_string(&stale).unwrap()).unwrap();
        let lock = store
            .lock("plan", DEFAULT_LEASE, Duration::ZERO)
            .expect("no OS lock is held, so the record does not block");
        assert_eq!(store.lock_info().unwrap().as_ref(), Some(lock.info()));
        assert_eq!(lock.replaced(), Some(&stale), "the dead holder's record is reported to the taker");
    }

    #[test]
    fn a_held_lock_whose_holder_is_gone_or_hung_is_reported_as_stale() {
        let (_dir, store) = store();
        let holder = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        let mut info = holder.info().clone();
        let rewrite = |info: &LockInfo| {
            let f = OpenOptions::new().write(true).open(store.lock_path()).unwrap();
            write_lock_info(&f, &store.lock_path(), info).unwrap();
        };
        // A live holder: locked, with the lease's end named.
        let err = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).unwrap_err();
        assert!(matches!(err, StateError::Locked(_)), "{err:?}");
        assert!(err.to_string().contains("its lease ends at"), "{err}");
        // Its pid is gone from this host (the OS lock is held by a process elsewhere).
        info.pid = 999_999_999;
        rewrite(&info);
        let err = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).unwrap_err();
        assert_eq!(err.code(), "state::stale_lock");
        assert!(err.to_string().contains("is no longer running on this host"), "{err}");
        assert!(err.to_string().contains(&format!("drydock force-unlock {}", info.id)), "{err}");
        // Alive but not renewing: its lease ended.
        info.pid = std::process::id();
        info.renew(now_ms() - 2 * 60_000);
        rewrite(&info);
        let err = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("has not renewed its lease"), "{err}");
        drop(holder);
    }

    #[test]
    fn a_waiting_lock_gets_the_lock_when_the_holder_releases_it() {
        let (_dir, store) = store();
        let holder = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        let other = store.clone();
        let waiter = std::thread::spawn(move || {
            other.lock("plan", DEFAULT_LEASE, Duration::from_secs(30)).map(|l| l.info().operation.clone())
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
        assert_eq!(waiter.join().unwrap().unwrap(), "plan");
    }

    #[test]
    fn the_lease_is_renewed_while_the_lock_is_held() {
        let (_dir, store) = store();
        let held = store.lock("apply", Duration::from_secs(1), Duration::ZERO).unwrap();
        let first = held.info().expires_ms;
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.lock_info().unwrap().is_none_or(|i| i.expires_ms == first) {
            assert!(Instant::now() < deadline, "not renewed");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!store.lock_info().unwrap().unwrap().expired(now_ms()));
    }

    #[test]
    fn a_holder_caught_before_writing_its_info_still_refuses_the_lock() {
        let (_dir, store) = store();
        for content in ["", "{\"id\": \"half"] {
            fs::write(store.lock_path(), content).unwrap();
            let holder = File::open(store.lock_path()).unwrap();
            holder.try_lock().unwrap();
            let err = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap_err();
            assert!(matches!(err, StateError::LockedWithoutInfo { .. }), "{content:?}: {err:?}");
            drop(holder);
            assert!(store.lock("apply", DEFAULT_LEASE, Duration::ZERO).is_ok(), "free once the holder is gone");
        }
    }

    #[test]
    fn corrupt_lock_info_is_an_error() {
        let (_dir, store) = store();
        fs::write(store.lock_path(), "not json").unwrap();
        let err = store.lock_info().unwrap_err();
        assert!(err.to_string().starts_with("lock file "), "{err}");
        assert!(store.force_unlock("x").is_err());
    }

    #[test]
    fn default_path_is_beside_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("main.kcl");
        fs::write(&file, "").unwrap();
        assert_eq!(default_path(dir.path()), dir.path().join(DEFAULT_FILE_NAME));
        assert_eq!(default_path(&file), dir.path().join(DEFAULT_FILE_NAME));
        assert_eq!(default_path(Path::new("main.kcl")), Path::new(DEFAULT_FILE_NAME));
    }

    #[test]
    fn lineages_are_fresh_uuids() {
        let (a, b) = (new_lineage(), new_lineage());
        assert_ne!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }

    #[test]
    fn lock_info_takes_any_lease_and_clock() {
        // A lease of centuries from a backend block, a clock read from a lock object: whatever
        // the numbers, lock info is made, and its times are whole RFC 3339 strings.
        let info = LockInfo::new("apply", Duration::MAX, u64::MAX);
        assert_eq!((info.created.as_str(), info.expires.as_str()), ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"));
        assert_eq!(info.expires_ms, u64::MAX);
        let info = LockInfo::new("plan", Duration::from_secs(90), 1_700_000_000_000);
        assert_eq!((info.created.as_str(), info.expires.as_str()), ("2023-11-14T22:13:20Z", "2023-11-14T22:14:50Z"));
    }

    #[test]
    fn a_lock_timeout_too_long_for_the_clock_waits_without_end() {
        // `Instant::now() + Duration::MAX` would panic.
        assert!(!Deadline::after(Duration::MAX).passed());
        assert_eq!(Deadline::after(Duration::MAX).left(), Duration::MAX);
        assert!(Deadline::after(Duration::ZERO).passed());
    }

    #[test]
    fn rfc3339_formatting() {
        let at = |secs| format_rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(951_955_199), "2000-03-01T23:59:59Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00Z");
        // Past the year 9999 (a lease of centuries, a clock gone wild): the last second shown.
        assert_eq!(at(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(at(u64::MAX / 1000), "9999-12-31T23:59:59Z");
        // Milliseconds are dropped, not rounded.
        assert_eq!(format_rfc3339(UNIX_EPOCH + Duration::from_millis(1_700_000_000_999)), "2023-11-14T22:13:20Z");
    }
}
