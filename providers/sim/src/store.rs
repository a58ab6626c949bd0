//! The world file: a snapshot of the world followed by a log of the ops made since, shared by
//! every process that uses the world under one lock, and read by each process incrementally.
//!
//! # Why a log
//!
//! Rewriting the whole world on every call makes N calls on a world of size S cost O(N × S):
//! an apply of 10,000 node groups, each call reading, parsing, serialising and rewriting a world
//! of megabytes, ran for hours. So a call appends what it did, and a process that already holds
//! the world reads only what others appended since it last looked:
//!
//! - **Ops, not states.** A log record is a batch of [`Op`]s (a configuration taken on, time
//!   advanced, a group created, instances terminated…), a few hundred bytes whatever the size of
//!   the world, even for a change to a group of 100,000 instances. Another process brings its
//!   copy up to date by applying the same ops, which is deterministic (`world`'s docs): the same
//!   calls give the same world, and the same file. A log of resulting deltas would be as large
//!   as what changed, a whole group for a one-instance change unless every change were tracked.
//! - **One file.** The snapshot and the log live in the one file at the world's path, the
//!   snapshot as its first record. Replacing the file (compaction) is then one atomic rename
//!   that changes snapshot and log together; with a log in a second file, a crash between
//!   writing the new snapshot and removing the old log would leave a log that must not be
//!   replayed on the new snapshot, and every reader would have to tell.
//! - **Each process keeps the world it last saw**, with where the last record it applied
//!   starts and ends and that record's chain value (below). Under the lock it re-reads that
//!   record's header: if it is still there with the same chain value, the file is the one it
//!   knows and it reads from there on, replaying only the records appended since; otherwise
//!   (the file was compacted, replaced or deleted) it reads the file afresh.
//! - **Compaction.** When the log's replay cost (its bytes, plus 64 bytes for each step of
//!   work its ops took: instances launched, changed, looked at) exceeds the snapshot's size
//!   (and at least [`MIN_LOG_BYTES`]), the writer rewrites the file as a snapshot of the world
//!   alone, atomically (a fresh 0600 temporary file, fsync, rename, directory fsync). So reading
//!   a world from scratch costs at most about twice parsing its snapshot, and the bytes written
//!   stay linear in the work done: each snapshot is written after at least as many bytes (or
//!   steps) of log as its predecessor's size, so the snapshots written sum to a geometric series.
//!   A new world, and a version 1 world (bare JSON), are written as a snapshot at once.
//!
//! # The file
//!
//! A sequence of records, each `KIND LEN CHAIN PAYLOAD\n`: `KIND` is `S` (the snapshot: the
//! world as JSON; the first record and only there) or `O` (a JSON array of ops), `LEN` the
//! payload's length and `CHAIN` a 64-bit hash, both as 16 lowercase hex digits. A snapshot's
//! chain value is the hash of its payload, a log record's the hash of its payload seeded with
//! the previous record's chain value: it identifies the whole history up to that record, which
//! is how a process knows that the file still is the one it read (an inode number can be
//! reused; a history's hash cannot collide in practice). A file that starts with `{` is a world
//! of version 1, read as the snapshot of a world without a log.
//!
//! # Crashes
//!
//! A record is appended with one `write` and then `fdatasync`, under the lock. A process killed
//! mid-append leaves a torn last record: one that runs past the end of the file, lacks its
//! newline or fails its hash. Readers stop at the first such record and ignore it and anything
//! after it, so the world reads as it was before that call; the next writer truncates it before
//! appending. (After a power loss, an unsynced tail may hold garbage: the same rule applies.)
//! The snapshot is only ever replaced whole by a rename, so it is always whole; a file whose
//! snapshot does not check out, or a record that checks out but holds no ops, is
//! [`SimError::Corrupt`], never a panic.
//!
//! # The lock
//!
//! An exclusive `File::lock` on the sibling file `<world>.lock`, not on the world file, which
//! compaction replaces by a rename (a lock on a replaced file protects nothing). Every read and
//! every change of the world takes it: catching up, applying ops, appending or compacting is one
//! critical section, so appends never interleave and a process never applies ops to a world
//! another has moved on from. The world file is created 0600 (it holds every group's spec,
//! user data included, which may come from a sensitive variable), and appends keep its mode.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use drydock_provider::SystemClock;
use serde::Deserialize;

use crate::config::{ClockMode, SimConfig};
use crate::world::{Failure, Op, Outcome, World, LEGACY_VERSION, WORLD_VERSION};
use crate::{members, SimError};

/// What a provider imposes on the world it operates on.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub config: SimConfig,
    pub mode: ClockMode,
}

/// The log may cost this much to replay before a compaction, however small the snapshot.
pub(crate) const MIN_LOG_BYTES: u64 = 256 * 1024;
/// What one step of work counts for in the log's replay cost, in bytes (a step replays in about
/// the time it takes to parse this much JSON).
const STEP_BYTES: u64 = 64;
/// `KIND LEN CHAIN `: a kind byte and two 16-digit hex numbers, each followed by a space.
const HEADER: usize = 36;
const SNAPSHOT: u8 = b'S';
const OPS: u8 = b'O';
/// The seed of a snapshot's chain value.
const SNAPSHOT_SEED: u64 = 0x6472_7964_6f63_6b21;

/// What a process knows of one world file: the world as of the last record it applied, and
/// where that record is. Empty until the first operation, and after any error.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    seen: Option<Seen>,
}

#[derive(Debug)]
struct Seen {
    world: World,
    /// Where the last record applied ends: where the next one starts.
    end: u64,
    /// Where the last record applied starts, and its chain value.
    last_at: u64,
    chain: u64,
    /// The snapshot's payload length, and the replay cost of the log after it.
    snapshot_len: u64,
    log_cost: u64,
    /// Read from a version 1 file: read afresh every time until a change rewrites it.
    legacy: bool,
}

/// Locks a process's cache; a cache left by a panic is dropped (the file is the truth).
pub(crate) fn lock_cache(cache: &Mutex<Cache>) -> MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|poisoned| {
        let mut guard = poisoned.into_inner();
        *guard = Cache::default();
        cache.clear_poison();
        guard
    })
}

/// Under the lock: brings the world at `path` up to date (a missing world is created, with the
/// provider's settings or else the defaults on the real clock), takes on the provider's
/// settings, brings the world to now, applies `op`, makes all of that durable (one appended
/// record, or a new snapshot), and returns what `read` makes of the world and the op's outcome.
/// The op's refusal is `read`'s to report: time has passed all the same, and is saved.
pub(crate) fn update<T>(
    path: &Path,
    cache: &mut Cache,
    settings: Option<&Settings>,
    op: Option<Op>,
    read: impl FnOnce(&World, Result<Outcome, Failure>) -> T,
) -> Result<T, SimError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| SimError::io("create directory", dir, e))?;
    }
    let lock = Lock::take(path)?;
    let result = change(path, cache, settings, op, read);
    if result.is_err() {
        // What this process holds may be ahead of the file, or half read: read it afresh.
        cache.seen = None;
    }
    lock.release()?;
    result
}

/// Under the lock: the world as stored (brought up to date with the log, but not configured,
/// not moved to now), or `None` if there is none. Creates nothing.
pub(crate) fn peek<T>(path: &Path, cache: &mut Cache, read: impl FnOnce(Option<&World>) -> T) -> Result<T, SimError> {
    if !path.exists() {
        cache.seen = None;
        return Ok(read(None));
    }
    let lock = Lock::take(path)?;
    let result = catch_up(path, cache).map(|_| read(cache.seen.as_ref().map(|s| &s.world)));
    if result.is_err() {
        cache.seen = None;
    }
    lock.release()?;
    result
}

fn change<T>(
    path: &Path,
    cache: &mut Cache,
    settings: Option<&Settings>,
    op: Option<Op>,
    read: impl FnOnce(&World, Result<Outcome, Failure>) -> T,
) -> Result<T, SimError> {
    let wall = SystemClock::wall_ms();
    let file = catch_up(path, cache)?;
    let seen = cache.seen.get_or_insert_with(|| {
        let world = match settings {
            Some(s) => World::new(s.config.clone(), s.mode, wall),
            None => World::new(SimConfig::default(), ClockMode::Real, wall),
        };
        // Not written yet: `persist` writes a new world as a snapshot.
        Seen { world, end: 0, last_at: 0, chain: 0, snapshot_len: 0, log_cost: 0, legacy: false }
    });

    let world = &mut seen.world;
    let steps = world.steps();
    let mut ops = Vec::new();
    if let Some(s) = settings.filter(|s| world.needs_configure(&s.config, s.mode)) {
        let wall_ms = (world.clock == ClockMode::Virtual && s.mode == ClockMode::Real).then_some(wall);
        ops.push(Op::Configure { config: s.config.clone(), clock: s.mode, wall_ms });
        let _ = world.apply(&ops[ops.len() - 1]);
    }
    let now = world.target_now(wall);
    if now > world.now_ms {
        ops.push(Op::Advance { to_ms: now });
        let _ = world.apply(&ops[ops.len() - 1]);
    }
    let outcome = match op {
        Some(op) => {
            let outcome = world.apply(&op);
            ops.push(op);
            outcome
        }
        None => Ok(Outcome::Done),
    };
    let steps = world.steps() - steps;
    persist(path, file, seen, &ops, steps)?;
    // Then, still under the lock, the world's real etcd members follow it; what that did is
    // recorded as ops of its own (`members`: replaying ops never starts or stops a process).
    let steps = seen.world.steps();
    let member_ops = members::reconcile(path, &mut seen.world);
    if !member_ops.is_empty() {
        let steps = seen.world.steps() - steps;
        let file = reopen(path)?;
        persist(path, file, seen, &member_ops, steps)?;
    }
    Ok(read(&seen.world, outcome))
}

/// The world file this process just wrote (under the lock), open for appending, and its length.
fn reopen(path: &Path) -> Result<Option<(File, u64)>, SimError> {
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| SimError::io("open", path, e))?;
    let len = file.metadata().map_err(|e| SimError::io("read", path, e))?.len();
    Ok(Some((file, len)))
}

/// Makes the ops just applied to `seen.world` durable: a new or version 1 world as a snapshot;
/// otherwise one record appended, or a compaction if the log has grown past its bound.
fn persist(path: &Path, file: Option<(File, u64)>, seen: &mut Seen, ops: &[Op], steps: u64) -> Result<(), SimError> {
    if file.is_some() && ops.is_empty() {
        // Unchanged worlds are not rewritten: most reads of a virtual world change nothing.
        return Ok(());
    }
    let Some((mut file, file_len)) = file.filter(|_| !seen.legacy) else {
        return compact(path, seen);
    };
    let payload = serde_json::to_vec(ops).map_err(|e| SimError::Corrupt { path: path.to_path_buf(), source: e })?;
    let (record, chain) = encode(OPS, &payload, seen.chain);
    let cost = (record.len() as u64).saturating_add(steps.saturating_mul(STEP_BYTES));
    if seen.log_cost.saturating_add(cost) > seen.snapshot_len.max(MIN_LOG_BYTES) {
        return compact(path, seen);
    }
    let append = |file: &mut File| -> io::Result<()> {
        if file_len > seen.end {
            // A torn record left by a crash: it was never part of the world.
            file.set_len(seen.end)?;
        }
        file.seek(SeekFrom::Start(seen.end))?;
        file.write_all(&record)?;
        file.sync_data()
    };
    append(&mut file).map_err(|e| SimError::io("append to", path, e))?;
    seen.last_at = seen.end;
    seen.end += record.len() as u64;
    seen.chain = chain;
    seen.log_cost += cost;
    Ok(())
}

/// Rewrites the file as a snapshot of the world alone, atomically.
fn compact(path: &Path, seen: &mut Seen) -> Result<(), SimError> {
    let payload = seen.world.to_json().map_err(|e| SimError::Corrupt { path: path.to_path_buf(), source: e })?;
    let (record, chain) = encode(SNAPSHOT, &payload, SNAPSHOT_SEED);
    drydock_fsutil::write_atomically(path, &record, 0o600)
        .map_err(|e| SimError::io(e.step.action(), e.path, e.source))?;
    seen.end = record.len() as u64;
    seen.last_at = 0;
    seen.chain = chain;
    seen.snapshot_len = payload.len() as u64;
    seen.log_cost = 0;
    seen.legacy = false;
    Ok(())
}

/// Brings `cache` up to date with the file at `path`: the records appended since it last
/// looked if the file is still the one it read, else the whole file. Returns the file, open for
/// appending, and its length; `None` (and an empty cache) if there is no world.
fn catch_up(path: &Path, cache: &mut Cache) -> Result<Option<(File, u64)>, SimError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            cache.seen = None;
            return Ok(None);
        }
        Err(e) => return Err(SimError::io("open", path, e)),
    };
    let io_err = |e| SimError::io("read", path, e);
    let len = file.metadata().map_err(io_err)?.len();
    if let Some(seen) = cache.seen.as_mut().filter(|s| !s.legacy && len >= s.end) {
        if still_known(&mut file, seen).map_err(io_err)? {
            let mut tail = Vec::with_capacity((len - seen.end) as usize);
            file.seek(SeekFrom::Start(seen.end)).map_err(io_err)?;
            file.read_to_end(&mut tail).map_err(io_err)?;
            let read_len = seen.end + tail.len() as u64;
            replay(path, seen, &tail)?;
            return Ok(Some((file, read_len)));
        }
    }
    cache.seen = None;
    let mut bytes = Vec::with_capacity(len as usize);
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    file.read_to_end(&mut bytes).map_err(io_err)?;
    cache.seen = Some(load(path, &bytes)?);
    #[cfg(test)]
    tests::count_load();
    Ok(Some((file, bytes.len() as u64)))
}

/// Whether the last record `seen` applied is still where it was, with the same chain value:
/// then the file up to `seen.end` is the history `seen` holds.
fn still_known(file: &mut File, seen: &Seen) -> io::Result<bool> {
    let mut header = [0u8; HEADER];
    file.seek(SeekFrom::Start(seen.last_at))?;
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    Ok(parse_header(&header).is_some_and(|(_, len, chain)| {
        chain == seen.chain
            && seen.last_at.checked_add(HEADER as u64 + 1).and_then(|n| n.checked_add(len)) == Some(seen.end)
    }))
}

/// Reads a whole world file.
fn load(path: &Path, bytes: &[u8]) -> Result<Seen, SimError> {
    if !bytes.starts_with(&[SNAPSHOT, b' ']) {
        // Version 1: bare JSON.
        let mut world = parse_world(path, bytes, LEGACY_VERSION..=WORLD_VERSION)?;
        world.version = WORLD_VERSION;
        let len = bytes.len() as u64;
        return Ok(Seen { world, end: len, last_at: 0, chain: 0, snapshot_len: len, log_cost: 0, legacy: true });
    }
    let (kind, payload, chain) = record_at(bytes, 0, SNAPSHOT_SEED)
        .ok_or_else(|| corrupt(path, "its snapshot is incomplete or fails its checksum"))?;
    if kind != SNAPSHOT {
        return Err(corrupt(path, "it does not start with a snapshot"));
    }
    let world = parse_world(path, payload, WORLD_VERSION..=WORLD_VERSION)?;
    let end = (HEADER + payload.len() + 1) as u64;
    let mut seen =
        Seen { world, end, last_at: 0, chain, snapshot_len: payload.len() as u64, log_cost: 0, legacy: false };
    replay(path, &mut seen, &bytes[end as usize..])?;
    Ok(seen)
}

/// Applies the whole records of `tail` (the file from `seen.end` on) to `seen`, stopping at the
/// first torn one.
fn replay(path: &Path, seen: &mut Seen, tail: &[u8]) -> Result<(), SimError> {
    let mut at = 0;
    while let Some((kind, payload, chain)) = record_at(tail, at, seen.chain) {
        if kind != OPS {
            break;
        }
        let ops: Vec<Op> =
            serde_json::from_slice(payload).map_err(|e| SimError::Corrupt { path: path.to_path_buf(), source: e })?;
        let steps = seen.world.steps();
        for op in &ops {
            let _ = seen.world.apply(op);
        }
        let len = HEADER + payload.len() + 1;
        let steps = seen.world.steps() - steps;
        seen.log_cost = seen.log_cost.saturating_add(len as u64).saturating_add(steps.saturating_mul(STEP_BYTES));
        seen.last_at = seen.end;
        seen.end += len as u64;
        seen.chain = chain;
        at += len;
        #[cfg(test)]
        tests::count_replayed();
    }
    Ok(())
}

/// The record at `at` in `bytes` if it is whole (its payload and newline are there) and its
/// chain value is the hash of its kind and payload seeded with `prev` (`SNAPSHOT_SEED` for a
/// snapshot):
/// (kind, payload, chain value).
fn record_at(bytes: &[u8], at: usize, prev: u64) -> Option<(u8, &[u8], u64)> {
    let (kind, len, chain) = parse_header(bytes.get(at..at.checked_add(HEADER)?)?)?;
    let start = at + HEADER;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let payload = bytes.get(start..end)?;
    (bytes.get(end) == Some(&b'\n') && hash(prev ^ u64::from(kind), payload) == chain).then_some((kind, payload, chain))
}

/// `KIND LEN CHAIN ` → (kind, len, chain).
fn parse_header(header: &[u8]) -> Option<(u8, u64, u64)> {
    let hex = |digits: &[u8]| -> Option<u64> {
        let text = std::str::from_utf8(digits).ok()?;
        text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')).then(|| u64::from_str_radix(text, 16).ok())?
    };
    if header.len() != HEADER || header[1] != b' ' || header[18] != b' ' || header[35] != b' ' {
        return None;
    }
    Some((header[0], hex(&header[2..18])?, hex(&header[19..35])?))
}

/// A whole record, and its chain value.
fn encode(kind: u8, payload: &[u8], prev: u64) -> (Vec<u8>, u64) {
    let chain = hash(prev ^ u64::from(kind), payload);
    let mut record = Vec::with_capacity(HEADER + payload.len() + 1);
    record.push(kind);
    record.extend_from_slice(format!(" {:016x} {chain:016x} ", payload.len()).as_bytes());
    record.extend_from_slice(payload);
    record.push(b'\n');
    (record, chain)
}

/// A 64-bit hash of `bytes` seeded with `seed`: eight bytes at a time, multiplied and
/// rotated, then SplitMix64's finaliser. Not cryptographic; it tells a whole record from a torn
/// or garbled one, and one history from another, and is the same on every machine.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn corrupt(path: &Path, message: &str) -> SimError {
    SimError::Corrupt { path: path.to_path_buf(), source: serde::de::Error::custom(message) }
}

fn parse_world(path: &Path, bytes: &[u8], versions: std::ops::RangeInclusive<u32>) -> Result<World, SimError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let unsupported = |found| SimError::UnsupportedVersion { path: path.to_path_buf(), found, expected: WORLD_VERSION };
    match World::from_json(bytes) {
        Ok(world) if versions.contains(&world.version) => Ok(world),
        Ok(world) => Err(unsupported(world.version)),
        // A world of another version may fail to parse as this one; say so rather than
        // calling it corrupt.
        Err(source) => match serde_json::from_slice::<Version>(bytes) {
            Ok(v) if !versions.contains(&v.version) => Err(unsupported(v.version)),
            _ => Err(SimError::Corrupt { path: path.to_path_buf(), source }),
        },
    }
}

/// The exclusive lock on `<world>.lock`.
pub(crate) struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    pub(crate) fn take(world: &Path) -> Result<Lock, SimError> {
        let path = sibling(world, ".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| SimError::io("open lock file", &path, e))?;
        file.lock().map_err(|e| SimError::io("lock", &path, e))?;
        Ok(Lock { file, path })
    }

    /// Dropping the handle would unlock too; saying it marks where the critical section ends.
    pub(crate) fn release(self) -> Result<(), SimError> {
        self.file.unlock().map_err(|e| SimError::io("unlock", &self.path, e))
    }
}

/// `<path><suffix>`, next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::FailTarget;

    thread_local! {
        static LOADS: Cell<u64> = const { Cell::new(0) };
        static REPLAYED: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) fn count_load() {
        LOADS.with(|n| n.set(n.get() + 1));
    }

    pub(super) fn count_replayed() {
        REPLAYED.with(|n| n.set(n.get() + 1));
    }

    /// (whole-file reads, records replayed) by this thread so far.
    fn counters() -> (u64, u64) {
        (LOADS.with(Cell::get), REPLAYED.with(Cell::get))
    }

    fn settings() -> Settings {
        Settings { config: SimConfig { seed: 3, ..SimConfig::default() }, mode: ClockMode::Virtual }
    }

    fn sleep(path: &Path, cache: &mut Cache, ms: u64) -> u64 {
        update(path, cache, Some(&settings()), Some(Op::Sleep { ms }), |w, _| w.now_ms).unwrap()
    }

    #[test]
    fn records_round_trip_and_torn_ones_are_refused() {
        let (record, chain) = encode(OPS, b"[1,2,3]", 7);
        assert_eq!(record.len(), HEADER + 7 + 1);
        assert_eq!(record_at(&record, 0, 7), Some((OPS, &b"[1,2,3]"[..], chain)));
        assert_eq!(chain, hash(7 ^ u64::from(OPS), b"[1,2,3]"));
        // Another history, every cut, a flipped byte: refused.
        assert_eq!(record_at(&record, 0, 8), None);
        for cut in 0..record.len() {
            assert_eq!(record_at(&record[..cut], 0, 7), None, "cut at {cut}");
        }
        for k in 0..record.len() {
            let mut bad = record.clone();
            bad[k] ^= 0x20;
            assert_eq!(record_at(&bad, 0, 7), None, "byte {k} flipped");
        }
    }

    #[test]
    fn the_hash_sees_every_byte_and_the_seed() {
        let base = hash(1, b"0123456789abcdefXYZ");
        assert_ne!(hash(2, b"0123456789abcdefXYZ"), base);
        assert_ne!(hash(1, b"0123456789abcdefXYz"), base);
        assert_ne!(hash(1, b"1123456789abcdefXYZ"), base);
        assert_ne!(hash(1, b"0123456789abcdefXY"), base);
        assert_ne!(hash(1, b""), hash(1, b"\0"));
    }

    /// A process that holds the world replays only what others appended since; it reads the
    /// whole file only when the file is not the one it knows.
    #[test]
    fn a_process_replays_only_the_records_appended_since_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world");
        let (mut mine, mut theirs) = (Cache::default(), Cache::default());
        assert_eq!(sleep(&path, &mut mine, 10), 10);
        let (loads, replayed) = counters();
        assert_eq!(sleep(&path, &mut mine, 10), 20);
        assert_eq!(counters(), (loads, replayed), "its own append is not read back");

        // Another process appends three records.
        for _ in 0..3 {
            sleep(&path, &mut theirs, 5);
        }
        let (loads, replayed) = counters();
        assert_eq!(sleep(&path, &mut mine, 10), 45);
        assert_eq!(counters(), (loads, replayed + 3), "exactly the three new records, no reload");

        // A compaction by the other process (up to date, as under the lock) replaces the file:
        // read afresh.
        sleep(&path, &mut theirs, 0);
        let theirs_seen = theirs.seen.as_mut().unwrap();
        compact(&path, theirs_seen).unwrap_or_else(|e| panic!("{e}"));
        sleep(&path, &mut theirs, 0);
        let (loads, _) = counters();
        assert_eq!(sleep(&path, &mut mine, 5), 50);
        assert_eq!(counters().0, loads + 1);
    }

    /// A world deleted and made again from the same calls is the same history, and a cache of
    /// the old one stays right; a different one is read afresh.
    #[test]
    fn a_replaced_world_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world");
        let mut mine = Cache::default();
        sleep(&path, &mut mine, 10);
        sleep(&path, &mut mine, 10);
        std::fs::remove_file(&path).unwrap();
        let mut other = Cache::default();
        sleep(&path, &mut other, 7);
        sleep(&path, &mut other, 7);
        let (loads, _) = counters();
        assert_eq!(sleep(&path, &mut mine, 1), 15);
        assert_eq!(counters().0, loads + 1);
    }

    #[test]
    fn the_log_is_compacted_once_it_costs_more_than_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world");
        let mut cache = Cache::default();
        let mut compactions = 0;
        let mut written = 0u64;
        let mut last_len = 0;
        for k in 0..8_000u64 {
            let target = FailTarget::Instance(format!("i-{k}"));
            let op = Op::ScheduleFail { target, after_ms: 1_000_000_000 };
            update(&path, &mut cache, Some(&settings()), Some(op), |_, _| ()).unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            if len < last_len {
                compactions += 1;
                written += len;
            } else {
                written += len - last_len;
            }
            last_len = len;
            let seen = cache.seen.as_ref().unwrap();
            assert!(seen.log_cost <= seen.snapshot_len.max(MIN_LOG_BYTES));
        }
        // The world grows by a scheduled failure per call: compactions are logarithmically few,
        // and all bytes written stay within a small multiple of the final world.
        assert!((3..=8).contains(&compactions), "{compactions} compactions");
        assert!(written < 6 * last_len.max(MIN_LOG_BYTES), "{written} bytes written for a world of {last_len}");
        // And a fresh reader gets the same world.
        let scheduled = |w: Option<&World>| w.unwrap().scheduled.len();
        assert_eq!(peek(&path, &mut Cache::default(), scheduled).unwrap(), 8_000);
    }
}
