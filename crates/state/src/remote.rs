//! The remote state backend: the state as one object in an [`ObjectStore`] (S3), written only
//! with conditional writes, and a lock object with a lease that its holder renews.
//!
//! # The state object
//! `KEY` holds the same JSON as the local file. [`RemoteStore::read`] remembers the ETag it
//! read; every write is made with `If-Match` on the ETag of the last read or write (or with
//! `If-None-Match: *` when there was no state), so a write based on anything but the newest
//! state is refused by the store itself ([`StateError::Conflict`]) — whatever happened to the
//! lock. When the bucket keeps versions, every write is a version to go back to; otherwise the
//! previous state is copied to `KEY.backup` first, like the local backend's backup file.
//!
//! # The journal
//! An apply's steps are records of the write-ahead journal ([`crate::journal`]), written as
//! small objects `KEY.journal/<serial>` (the serial of the first record in it, zero-padded to
//! 20 digits), each holding the journal header (which names the state object it extends by the
//! hash of its bytes) and one or more records (steps committed together), written with
//! `If-None-Match: *`. Reading the state reads `KEY`, then the objects after its serial one by
//! one until one is missing or names another base. The state object is
//! rewritten only when the records have grown as large as it, and at the end of a run; the
//! records it folds in are deleted then (best effort: leftovers name an older base and are
//! ignored, and a write to a leftover's key replaces it).
//!
//! # The lock object
//! `KEY.lock` holds a [`LockInfo`] with a lease (default 60 s). It is created with
//! `If-None-Match: *`: of two runs, one creates it and the other is refused. The holder renews
//! the lease every third of it with `If-Match` on its own last ETag, from a background task.
//! A run that finds a lock whose lease ended (by its own clock: clocks must agree to within a
//! fraction of the lease) takes it over with `If-Match` on the ETag of the expired lock it read,
//! so of two takers one wins. A holder whose renewal is refused has lost the lock: it stops
//! writing the state ([`StateError::LockLost`]). Release deletes the object with `If-Match`.
//!
//! A holder that dies leaves its lock until the lease ends, then the next run proceeds;
//! `drydock force-unlock ID` clears it at once.
//!
//! # Async, on the caller's runtime
//! The store is async on the [`ObjectStore`] and has no runtime of its own: its calls run on
//! the tokio runtime that awaits them, and a held lock's renewal is a task spawned on that
//! runtime ([`tokio::spawn`]) when the lock is taken. So a lock is taken from within a tokio
//! runtime, and is renewed for as long as that runtime runs its tasks (a multi-threaded one
//! always; a current-thread one while it is driven). [`RemoteStore::unlock`] stops the renewal
//! and deletes the lock object; dropping a [`RemoteLock`] only stops the renewal, and its lease
//! then ends by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_backend::{Condition, ObjectStore, StoreError};

use super::store::{upgrade, Deadline, FormatError, LockInfo, Previous, StateError};
use super::State;

/// Milliseconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The state of one key in an object store. See the module docs.
pub struct RemoteStore {
    objects: Arc<dyn ObjectStore>,
    key: String,
    clock: Clock,
    /// The state as this process last read or wrote it; `None` before the first read.
    seen: Mutex<Option<Seen>>,
    /// Set when a lock this store handed out was lost.
    lost: Arc<AtomicBool>,
    /// The journal records extending the state as last read or written.
    journal: Mutex<Records>,
}

/// The journal records after the state object this store last read or wrote.
#[derive(Debug, Clone, Default)]
struct Records {
    /// The lineage and serial of that state object, the SHA-256 (hex) of its bytes (hashed
    /// once when read or written, never per step) and its size.
    lineage: String,
    base_serial: u64,
    base_sha256: String,
    base_len: u64,
    /// The objects holding the records, oldest first.
    keys: Vec<String>,
    /// How many records they hold.
    count: u64,
    /// Their size in bytes.
    bytes: u64,
}

/// The state object as last read or written: its ETag (`None`: there was no state), whether
/// the bucket keeps its versions (it had a version id), and its bytes.
#[derive(Debug, Clone, Default)]
struct Seen {
    etag: Option<String>,
    versioned: bool,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore").field("at", &self.describe()).finish()
    }
}

impl RemoteStore {
    pub fn new(objects: Arc<dyn ObjectStore>, key: impl Into<String>, clock: Clock) -> RemoteStore {
        RemoteStore {
            objects,
            key: key.into(),
            clock,
            seen: Mutex::new(None),
            lost: Arc::new(AtomicBool::new(false)),
            journal: Mutex::default(),
        }
    }

    /// `s3://bucket/key`.
    pub fn describe(&self) -> String {
        self.objects.describe(&self.key)
    }

    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn backup_key(&self) -> String {
        format!("{}.backup", self.key)
    }

    async fn get(&self, key: &str) -> Result<Option<drydock_backend::Object>, StateError> {
        self.objects.get(key).await.map_err(remote)
    }

    /// The state as last read or written (`None`: not read yet).
    fn seen(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_seen(&self, seen: Seen) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
    }

    /// The state's bytes as stored, or `None` when there is none. Remembers the ETag for the
    /// next write.
    pub async fn read_raw(&self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(match self.get(&self.key).await? {
            Some(o) => {
                self.set_seen(Seen { etag: Some(o.etag), versioned: o.version_id.is_some(), bytes: o.bytes.clone() });
                Some(o.bytes)
            }
            None => {
                self.set_seen(Seen::default());
                None
            }
        })
    }

    /// The state, or `None` when there is none yet, with its journal's records replayed.
    pub async fn read(&self) -> Result<Option<State>, StateError> {
        *self.journal_mut() = Records::default();
        let Some(bytes) = self.read_raw().await? else { return Ok(None) };
        let mut state = parse(&bytes, &self.describe())?;
        let (lineage, serial, sha) = (state.lineage.clone(), state.serial, crate::journal::sha256_hex(&bytes));
        let mut records = Records {
            lineage: lineage.clone(),
            base_serial: serial,
            base_sha256: sha.clone(),
            base_len: bytes.len() as u64,
            ..Records::default()
        };
        // A record that took the serial to `u64::MAX` is the last there can be.
        while let Some(next) = state.serial.checked_add(1) {
            let key = self.record_key(next);
            let Some(object) = self.get(&key).await? else { break };
            let what = self.objects.describe(&key);
            let index = records.count as usize + 1;
            let damaged = |reason: &str| StateError::Journal {
                what: what.clone(),
                source: crate::journal::JournalError::Damaged { index, reason: reason.into() },
            };
            let mut lines = object.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            let header: crate::journal::Header = lines
                .next()
                .and_then(|l| crate::journal::unframe(l).ok())
                .and_then(|j| serde_json::from_slice(j).ok())
                .ok_or_else(|| damaged("unreadable header"))?;
            if header.journal != crate::journal::JOURNAL_FORMAT
                || header.lineage != lineage
                || header.base_serial != serial
                || header.base_sha256 != sha
            {
                // A leftover of an older state (or of another journal format): the journal
                // ends here.
                break;
            }
            for line in lines {
                let record = crate::journal::unframe_in(&sha, line)
                    .ok()
                    .and_then(|j| crate::format::decode_record(j).ok())
                    .ok_or_else(|| damaged("unreadable record"))?;
                crate::journal::replay(&mut state, record, records.count as usize + 1)
                    .map_err(|source| StateError::Journal { what: what.clone(), source })?;
                records.count += 1;
            }
            state.drydock_version = header.drydock_version;
            records.bytes += object.bytes.len() as u64;
            records.keys.push(key);
        }
        *self.journal_mut() = records;
        Ok(Some(state))
    }

    /// The state's bytes as `state pull` shows them: the object, or, while journal records
    /// extend it, the state with them replayed.
    pub async fn read_current_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        let Some(state) = self.read().await? else { return Ok(None) };
        if self.journal_mut().keys.is_empty() {
            return Ok(self.seen().map(|s| s.bytes));
        }
        crate::format::encode(&state).map(Some)
    }

    fn journal_mut(&self) -> std::sync::MutexGuard<'_, Records> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of the journal record that makes the state's serial `serial`.
    fn record_key(&self, serial: u64) -> String {
        format!("{}.journal/{serial:020}", self.key)
    }

    /// Whether records of `len` more bytes go into a compaction rather than the journal: there
    /// is no state object to extend yet, or the records would outgrow it.
    pub fn compacts(&self, len: usize) -> bool {
        if !self.has_state() {
            return true;
        }
        let j = self.journal_mut();
        j.bytes + len as u64 > j.base_len.max(crate::store::MIN_JOURNAL_BYTES)
    }

    /// Whether this store read or wrote a state object (without copying it).
    fn has_state(&self) -> bool {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|s| s.etag.is_some())
    }

    /// Makes `lines` (`count` framed records, the state's next serials) durable as one journal
    /// object. The caller has checked that they do not compact ([`RemoteStore::compacts`]).
    pub async fn append(&self, lines: &[u8], count: u64) -> Result<(), StateError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StateError::LockLost { what: self.describe() });
        }
        if !self.has_state() {
            return Err(StateError::Remote(format!("the state at {} was not read before writing", self.describe())));
        }
        let (lineage, base_serial, base_sha256, before) = {
            let j = self.journal_mut();
            (j.lineage.clone(), j.base_serial, j.base_sha256.clone(), j.count)
        };
        let header = crate::journal::Header::of_hash(&lineage, base_serial, base_sha256);
        let mut body = crate::journal::encode_header(&header);
        body.extend(crate::journal::bind(&header.base_sha256, lines).map_err(StateError::Remote)?);
        let key = self.record_key(base_serial + before + 1);
        let len = body.len() as u64;
        match self.objects.put(&key, body.clone(), Condition::IfNoneMatch).await {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed) => {
                // A leftover of an older state may hold the key; a record of this state
                // means another run wrote first.
                let existing = self.get(&key).await?;
                let header = |b: &[u8]| b.split(|&c| c == b'\n').next().map(<[u8]>::to_vec);
                let stale = existing.as_ref().is_some_and(|o| header(&o.bytes) != header(&body));
                let Some(o) = existing.filter(|_| stale) else {
                    return Err(StateError::Conflict { what: self.describe() });
                };
                match self.objects.put(&key, body, Condition::IfMatch(o.etag)).await {
                    Ok(_) => {}
                    Err(StoreError::PreconditionFailed) => return Err(StateError::Conflict { what: self.describe() }),
                    Err(e) => return Err(remote(e)),
                }
            }
            Err(e) => return Err(remote(e)),
        }
        let mut journal = self.journal_mut();
        journal.keys.push(key);
        journal.count += count;
        journal.bytes += len;
        Ok(())
    }

    /// Writes the state object if journal records extend it (the end of a run).
    pub async fn compact(&self, state: &State) -> Result<(), StateError> {
        if self.journal_mut().keys.is_empty() {
            return Ok(());
        }
        self.compact_now(state).await
    }

    /// Writes `state` as the state object, then deletes the records it folds in.
    pub async fn compact_now(&self, state: &State) -> Result<(), StateError> {
        self.put_state(state).await?;
        let (base_sha256, base_len) = {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let bytes = seen.as_ref().map_or(&[][..], |s| &s.bytes[..]);
            (crate::journal::sha256_hex(bytes), bytes.len() as u64)
        };
        let done = std::mem::replace(
            &mut *self.journal_mut(),
            Records {
                lineage: state.lineage.clone(),
                base_serial: state.serial,
                base_sha256,
                base_len,
                ..Records::default()
            },
        );
        let keys = done.keys;
        for key in keys {
            // Best effort: a leftover names an older state and is never replayed.
            let _ = self.objects.delete(&key, None).await;
        }
        Ok(())
    }

    /// Writes `state` with its serial incremented (see [`super::store::LocalStore::write`]),
    /// only over the state this process read or wrote last. On error `state` is left as it was.
    pub async fn write(&self, state: &mut State) -> Result<(), StateError> {
        let before = Previous::advance(state)?;
        let result = self.write_as_is(state).await;
        if result.is_err() {
            before.restore(state);
        }
        result
    }

    /// Writes `state` as it is (its serial untouched: `state push`, `state migrate`), only
    /// over the state this process read or wrote last; the journal records that extended
    /// that state are folded in or replaced, and deleted.
    pub async fn write_as_is(&self, state: &State) -> Result<(), StateError> {
        self.compact_now(state).await
    }

    /// Writes the state object, only over the state this process read or wrote last.
    async fn put_state(&self, state: &State) -> Result<(), StateError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StateError::LockLost { what: self.describe() });
        }
        let bytes = crate::format::encode(state)?;
        let seen = match self.seen() {
            Some(s) => s,
            // Never read: read now, so the write is conditional on what is there.
            None => {
                self.read_raw().await?;
                self.seen().unwrap_or_default()
            }
        };
        if seen.etag.is_some() && !seen.versioned {
            // Without versioning the previous state is kept as KEY.backup. Best effort, like
            // the local backup: the conditional write below is what keeps the state whole.
            let _ = self.objects.put(&self.backup_key(), seen.bytes, Condition::None).await;
        }
        let cond = match seen.etag {
            Some(etag) => Condition::IfMatch(etag),
            None => Condition::IfNoneMatch,
        };
        match self.objects.put(&self.key, bytes.clone(), cond).await {
            Ok(w) => {
                let versioned = w.version_id.is_some();
                self.set_seen(Seen { etag: Some(w.etag), versioned, bytes });
                Ok(())
            }
            Err(StoreError::PreconditionFailed) => Err(StateError::Conflict { what: self.describe() }),
            Err(e) => Err(remote(e)),
        }
    }

    /// The lock's info and ETag, if the lock object exists.
    async fn lock_object(&self) -> Result<Option<(LockInfo, String)>, StateError> {
        let Some(o) = self.get(&self.lock_key()).await? else { return Ok(None) };
        let info = serde_json::from_slice(&o.bytes).map_err(|e| {
            StateError::Remote(format!(
                "the lock object {} does not hold lock info ({e}); remove it if no run holds the lock",
                self.objects.describe(&self.lock_key())
            ))
        })?;
        Ok(Some((info, o.etag)))
    }

    pub async fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self.lock_object().await?.map(|(i, _)| i))
    }

    /// Takes the lock for `operation` with a lease of `lease`, waiting up to `timeout` for a
    /// live holder (and taking over a holder whose lease ended). See the module docs: it must
    /// be awaited within a tokio runtime, on which the lease's renewal is spawned.
    pub async fn lock(&self, operation: &str, lease: Duration, timeout: Duration) -> Result<RemoteLock, StateError> {
        let deadline = Deadline::after(timeout);
        loop {
            let now = (self.clock)();
            let info = LockInfo::new(operation, lease, now);
            let bytes = serde_json::to_vec_pretty(&info).map_err(StateError::Serialize)?;
            match self.objects.put(&self.lock_key(), bytes.clone(), Condition::IfNoneMatch).await {
                Ok(w) => return Ok(self.hold(info, w.etag, None)),
                Err(StoreError::PreconditionFailed) => {}
                Err(e) => return Err(remote(e)),
            }
            // Released between our write and our read: try again at once.
            let Some((held, etag)) = self.lock_object().await? else { continue };
            if held.expired(now) {
                match self.objects.put(&self.lock_key(), bytes, Condition::IfMatch(etag)).await {
                    Ok(w) => return Ok(self.hold(info, w.etag, Some(held))),
                    // Another taker won the race for the expired lock, or its holder renewed
                    // it just now: look again.
                    Err(StoreError::PreconditionFailed) => continue,
                    Err(e) => return Err(remote(e)),
                }
            }
            let left = deadline.left();
            if left.is_zero() {
                return Err(StateError::Locked(held));
            }
            // `expires_ms` is the holder's (any number a lock object holds): saturating.
            let until_expiry = Duration::from_millis(held.expires_ms.saturating_sub(now).saturating_add(50));
            tokio::time::sleep(Duration::from_secs(1).min(until_expiry).min(left).max(Duration::from_millis(20))).await;
        }
    }

    /// A lock just taken, with its renewal spawned on the current runtime.
    fn hold(&self, info: LockInfo, etag: String, taken_over: Option<LockInfo>) -> RemoteLock {
        let etag = Arc::new(Mutex::new(etag));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (objects, key, clock, lost) =
            (Arc::clone(&self.objects), self.lock_key(), Arc::clone(&self.clock), Arc::clone(&self.lost));
        let (mut renewed, current) = (info.clone(), Arc::clone(&etag));
        let every = Duration::from_millis(info.lease_seconds.saturating_mul(1000) / 3);
        let renewal = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = &mut stopped => return,
                }
                renewed.renew(clock());
                let Ok(bytes) = serde_json::to_vec_pretty(&renewed) else { continue };
                let tag = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match objects.put(&key, bytes, Condition::IfMatch(tag)).await {
                    Ok(w) => *current.lock().unwrap_or_else(|e| e.into_inner()) = w.etag,
                    Err(StoreError::PreconditionFailed) => {
                        tracing::warn!(key, "state lock lost: its lease was taken over");
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    // A failed renewal is tried again next time; the lease has two more thirds.
                    Err(e) => tracing::warn!(key, error = %e, "state lock: renewing the lease failed"),
                }
            }
        });
        RemoteLock { info, etag, stop: Some(stop), renewal: Some(renewal), taken_over, released: false }
    }

    /// Releases `lock`: stops renewing (waiting for a renewal in flight) and deletes the lock
    /// object if it is still ours.
    pub async fn unlock(&self, lock: &mut RemoteLock) -> Result<(), StateError> {
        if lock.released {
            return Ok(());
        }
        lock.released = true;
        if let Some(stop) = lock.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = lock.renewal.take() {
            let _ = task.await;
        }
        let etag = lock.etag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match self.objects.delete(&self.lock_key(), Some(&etag)).await {
            // Taken over meanwhile: it is someone else's now.
            Ok(()) | Err(StoreError::PreconditionFailed) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    /// Whether the lock handed out by this store was lost (its renewal was refused).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Removes the lock whose id is `id`, whoever holds it.
    pub async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let Some((info, etag)) = self.lock_object().await? else {
            return Err(StateError::NotLocked { path: self.describe().into() });
        };
        if info.id != id {
            return Err(StateError::LockIdMismatch { given: id.to_string(), held: info.id });
        }
        match self.objects.delete(&self.lock_key(), Some(&etag)).await {
            Ok(()) => Ok(()),
            Err(StoreError::PreconditionFailed) => Err(StateError::Remote(format!(
                "the lock on {} changed while clearing it (renewed or taken by another run); nothing was cleared, look again",
                self.describe()
            ))),
            Err(e) => Err(remote(e)),
        }
    }
}

/// A held remote lock. Give it back with [`RemoteStore::unlock`]; dropping it only stops the
/// renewal (the lease then expires by itself).
#[derive(Debug)]
pub struct RemoteLock {
    info: LockInfo,
    etag: Arc<Mutex<String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    renewal: Option<tokio::task::JoinHandle<()>>,
    taken_over: Option<LockInfo>,
    released: bool,
}

impl RemoteLock {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The info of the expired lock this one took over, if it did.
    pub fn taken_over(&self) -> Option<&LockInfo> {
        self.taken_over.as_ref()
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn remote(e: StoreError) -> StateError {
    StateError::Remote(e.to_string())
}

/// Parses stored state bytes (any known format version).
pub fn parse(bytes: &[u8], what: &str) -> Result<State, StateError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| StateError::Remote(format!("the state at {what} is not valid json: {e}")))?;
    upgrade(value).map_err(|e| match e {
        StateError::Format(FormatError::Invalid { version, source }) => {
            StateError::Remote(format!("the state at {what} does not match state format {version}: {source}"))
        }
        StateError::Format(f) => StateError::Remote(format!("the state at {what}: {f}")),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    use drydock_backend::MemoryStore;

    use super::*;

    fn stores(n: usize) -> (Vec<RemoteStore>, Arc<AtomicU64>) {
        let mem: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let time = Arc::new(AtomicU64::new(1_800_000_000_000));
        let t = Arc::clone(&time);
        let clock: Clock = Arc::new(move || t.load(Ordering::SeqCst));
        let v = (0..n).map(|_| RemoteStore::new(Arc::clone(&mem), "env/prod.json", Arc::clone(&clock))).collect();
        (v, time)
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn one_of_two_runs_gets_the_lock_and_the_other_is_told_who_has_it() {
        let (s, _) = stores(2);
        let mut a = s[0].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        let err = s[1].lock("apply", LEASE, Duration::ZERO).await.unwrap_err();
        let StateError::Locked(held) = &err else { panic!("{err:?}") };
        assert_eq!(held.id, a.info().id);
        assert!(err.to_string().contains("its lease ends at"), "{err}");
        s[0].unlock(&mut a).await.unwrap();
        let mut b = s[1].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        s[1].unlock(&mut b).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_the_old_holder_can_no_longer_write() {
        let (s, time) = stores(2);
        let _a = s[0].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        let mut state = State::new("lineage".into());
        s[0].read().await.unwrap();
        s[0].write(&mut state).await.unwrap();
        // The holder stops renewing (its renewal task waits on real time); time passes.
        time.fetch_add(61_000, Ordering::SeqCst);
        let b = s[1].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        assert_eq!(b.taken_over().map(|i| i.operation.as_str()), Some("apply"));
        let mut theirs = s[1].read().await.unwrap().unwrap();
        s[1].write(&mut theirs).await.unwrap();
        // The old holder's next write is refused by the store: it was based on serial 1.
        let err = s[0].write(&mut state).await.unwrap_err();
        assert_eq!(err.code(), "state::conflict", "{err}");
        assert_eq!(s[1].read().await.unwrap().unwrap().serial, 2);
    }

    #[tokio::test]
    async fn a_holder_whose_lease_was_taken_over_stops_writing() {
        let (s, time) = stores(2);
        let _a = s[0].lock("apply", Duration::from_secs(1), Duration::ZERO).await.unwrap();
        let mut state = State::new("l".into());
        s[0].read().await.unwrap();
        time.fetch_add(5_000, Ordering::SeqCst);
        let _b = s[1].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        // The old holder's next renewal (a third of its 1 s lease, on the real clock) is
        // refused, and from then on it writes nothing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s[0].lost() {
            assert!(Instant::now() < deadline, "the lost lock was not noticed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(s[0].write(&mut state).await.unwrap_err().code(), "state::lock_lost");
        assert!(s[1].read().await.unwrap().is_none(), "nothing was written");
    }

    #[tokio::test]
    async fn the_lease_is_renewed_on_the_callers_runtime_until_the_lock_is_released() {
        let (s, _) = stores(1);
        let mut a = s[0].lock("apply", Duration::from_secs(1), Duration::ZERO).await.unwrap();
        let first = s[0].lock_object().await.unwrap().unwrap().1;
        // A renewal (every third of the 1 s lease) rewrites the lock object: a new ETag.
        let deadline = Instant::now() + Duration::from_secs(10);
        while s[0].lock_object().await.unwrap().unwrap().1 == first {
            assert!(Instant::now() < deadline, "not renewed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s[0].unlock(&mut a).await.unwrap();
        assert!(s[0].lock_info().await.unwrap().is_none(), "released");
        // Released means no renewal either: nothing writes the lock object again.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(s[0].lock_info().await.unwrap().is_none());
        assert!(!s[0].lost());
    }

    #[tokio::test]
    async fn writes_are_refused_when_someone_else_wrote_since_the_read() {
        let (s, _) = stores(2);
        assert!(s[0].read().await.unwrap().is_none());
        assert!(s[1].read().await.unwrap().is_none());
        let mut a = State::new("l".into());
        s[0].write(&mut a).await.unwrap();
        let mut b = State::new("l".into());
        let err = s[1].write(&mut b).await.unwrap_err();
        assert_eq!(err.code(), "state::conflict");
        assert_eq!(b.serial, 0, "a refused write leaves the state as it was");
        // Read again, and the write goes through.
        let mut b = s[1].read().await.unwrap().unwrap();
        s[1].write(&mut b).await.unwrap();
        assert_eq!(b.serial, 2);
    }

    #[tokio::test]
    async fn force_unlock_needs_the_id_and_clears_the_lock() {
        let (s, _) = stores(2);
        let a = s[0].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        assert_eq!(s[1].force_unlock("nope").await.unwrap_err().code(), "state::lock_id");
        s[1].force_unlock(&a.info().id.clone()).await.unwrap();
        assert!(s[1].lock_info().await.unwrap().is_none());
        assert!(s[1].lock("apply", LEASE, Duration::ZERO).await.is_ok());
        assert_eq!(s[0].force_unlock("x").await.unwrap_err().code(), "state::lock_id");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_takers_of_one_expired_lock_leave_exactly_one_holder() {
        let (s, time) = stores(8);
        let _dead = s[0].lock("apply", LEASE, Duration::ZERO).await.unwrap();
        time.fetch_add(61_000, Ordering::SeqCst);
        let s = Arc::new(s);
        let handles: Vec<_> = (1..8)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(
                    async move { s[i].lock("apply", LEASE, Duration::ZERO).await.map(|l| l.info().id.clone()) },
                )
            })
            .collect();
        let mut won: Vec<String> = vec![];
        for h in handles {
            if let Ok(id) = h.await.unwrap() {
                won.push(id);
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        assert_eq!(s[1].lock_info().await.unwrap().unwrap().id, won[0]);
    }
}
