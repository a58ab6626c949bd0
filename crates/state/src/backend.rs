//! Where the state is kept: the local file ([`LocalStore`]) or an object in S3
//! ([`RemoteStore`]), behind one type the commands use, [`Store`]; and the record of which
//! backend a configuration directory used last, so that a changed `backend` block is noticed
//! and the state moved with `drydock state migrate` rather than silently started afresh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drydock_backend::ObjectStore;
use serde::{Deserialize, Serialize};

use super::journal::{Change, Record};
use super::remote::{RemoteLock, RemoteStore};
use super::store::{default_path, LocalStore, LockInfo, Previous, StateError, StateLock};
use super::State;
use drydock_model::Backend;

/// A state backend. Cloning shares a remote store (and the ETag it last saw).
#[derive(Debug, Clone)]
pub enum Store {
    Local(LocalStore),
    Remote(Arc<RemoteStore>),
}

/// The backend a configuration names, as recorded in `.drydock/backend.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendRecord {
    Local {
        path: PathBuf,
    },
    S3 {
        bucket: String,
        key: String,
        /// How to reach it, so that `state migrate` can read it after the block changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
}

impl BackendRecord {
    /// Whether two records name the same state (how it is reached does not matter).
    pub fn same_place(&self, other: &BackendRecord) -> bool {
        match (self, other) {
            (BackendRecord::Local { path: a }, BackendRecord::Local { path: b }) => a == b,
            (BackendRecord::S3 { bucket: a, key: k, .. }, BackendRecord::S3 { bucket: b, key: l, .. }) => {
                a == b && k == l
            }
            _ => false,
        }
    }

    /// The store this record names; a local path is relative to the configuration's directory.
    pub fn open(&self, config_dir: &Path, connect: &Connect) -> Store {
        match self {
            BackendRecord::Local { path } => Store::Local(LocalStore::new(config_dir.join(path))),
            BackendRecord::S3 { bucket, key, region, endpoint, profile } => {
                s3_store(bucket, key, region, endpoint, profile, connect)
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BackendRecord::Local { path } => format!("the local file {}", path.display()),
            BackendRecord::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// A backend's settings that are not part of where the state is.
#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    pub lease: Duration,
}

/// The lease of the state lock a backend block asks for (`lock_lease`), else the default.
pub fn lease(backend: Option<&Backend>) -> Duration {
    backend.and_then(Backend::lock_lease_ms).map_or(super::store::DEFAULT_LEASE, Duration::from_millis)
}

/// Builds the store a backend names. `state_override` is `--state FILE`, which names a local
/// file and wins over a `backend "local"` path (not over `backend "s3"`: that is an error).
pub fn open(
    backend: Option<&Backend>,
    config_path: &Path,
    config_dir: &Path,
    state_override: Option<&Path>,
    connect: &Connect,
) -> Result<(Store, BackendRecord), String> {
    match backend {
        Some(Backend::S3 { bucket, key, region, endpoint, profile, .. }) => {
            if let Some(p) = state_override {
                return Err(format!(
                    "--state {} names a local file, but the configuration keeps its state in s3://{bucket}/{key}; drop --state (or use `drydock state pull` for a copy)",
                    p.display()
                ));
            }
            let record = BackendRecord::S3 {
                bucket: bucket.clone(),
                key: key.clone(),
                region: region.clone(),
                endpoint: endpoint.clone(),
                profile: profile.clone(),
            };
            Ok((record.open(config_dir, connect), record))
        }
        Some(Backend::Local { path, .. }) => {
            let path = match (state_override, path) {
                (Some(p), _) => p.to_path_buf(),
                (None, Some(p)) => config_dir.join(p),
                (None, None) => default_path(config_path),
            };
            Ok((Store::Local(LocalStore::new(path.clone())), local_record(&path, config_dir)))
        }
        None => {
            let path = state_override.map_or_else(|| default_path(config_path), Path::to_path_buf);
            Ok((Store::Local(LocalStore::new(path.clone())), local_record(&path, config_dir)))
        }
    }
}

fn s3_store(
    bucket: &str,
    key: &str,
    region: &Option<String>,
    endpoint: &Option<String>,
    profile: &Option<String>,
    connect: &Connect,
) -> Store {
    let objects = connect(&S3Location {
        bucket,
        region: region.as_deref(),
        endpoint: endpoint.as_deref(),
        profile: profile.as_deref(),
    });
    let clock: super::remote::Clock = Arc::new(super::store::now_ms);
    Store::Remote(Arc::new(RemoteStore::new(objects, key, clock)))
}

/// Where an S3 backend's objects are and how to reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Location<'a> {
    pub bucket: &'a str,
    pub region: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub profile: Option<&'a str>,
}

/// Builds the object store under an S3 backend. The binary passes one that makes an S3
/// client (`drydock_s3::S3Store`), so this crate depends on no SDK; tests pass a
/// `drydock_backend::MemoryStore`.
pub type Connect = dyn Fn(&S3Location) -> Arc<dyn ObjectStore>;

/// A local state file's record: its path relative to the configuration's directory when it is
/// inside it (so that moving the directory changes nothing), else absolute.
fn local_record(path: &Path, config_dir: &Path) -> BackendRecord {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, dir) = (absolute(path), absolute(config_dir));
    let path = path.strip_prefix(&dir).map_or_else(|_| path.clone(), Path::to_path_buf);
    BackendRecord::Local { path }
}

/// `.drydock/backend.json` in the configuration's directory.
pub fn record_path(config_dir: &Path) -> PathBuf {
    config_dir.join(".drydock").join("backend.json")
}

pub fn read_record(config_dir: &Path) -> Result<Option<BackendRecord>, String> {
    let path = record_path(config_dir);
    match crate::store::read_state_bytes(&path) {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a backend record ({e}); remove it and run again", path.display())),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub fn write_record(config_dir: &Path, record: &BackendRecord) -> Result<(), String> {
    let path = record_path(config_dir);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Runs started together may all write the same record: each writes a temporary file of
    // its own and renames it over the record, so the record is always one whole write.
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    drydock_fsutil::write_atomically(&path, &bytes, 0o666).map_err(|e| e.to_string())
}

/// Refuses to work with a backend other than the one the directory used last (the state is
/// elsewhere: `drydock state migrate` moves it), and with S3 while a local state file with
/// resources sits in the directory with no record (the state would be started afresh).
pub fn check_unmoved(config_dir: &Path, config_path: &Path, now: &BackendRecord) -> Result<(), String> {
    match read_record(config_dir)? {
        Some(last) if !last.same_place(now) => Err(format!(
            "the backend changed: the state was kept in {} and the configuration now keeps it in {}; run `drydock state migrate` to move it there",
            last.describe(),
            now.describe()
        )),
        Some(_) => Ok(()),
        None => {
            let local = default_path(config_path);
            if matches!(now, BackendRecord::S3 { .. }) && local.exists() {
                return Err(format!(
                    "a local state file {} exists, but the configuration keeps its state in {}; run `drydock state migrate` to move it there",
                    local.display(),
                    now.describe()
                ));
            }
            Ok(())
        }
    }
}

/// A held lock of either backend. Give it back with [`Lock::release`], which says whether that
/// worked; dropping it is only a fallback (see its `Drop`).
#[derive(Debug)]
pub struct Lock(Held);

#[derive(Debug)]
enum Held {
    Local(StateLock),
    Remote(Arc<RemoteStore>, RemoteLock),
    /// Given back by [`Lock::release`].
    Released,
}

impl Lock {
    pub fn info(&self) -> &LockInfo {
        match &self.0 {
            Held::Local(l) => l.info(),
            Held::Remote(_, l) => l.info(),
            Held::Released => unreachable!("a released lock is consumed by `release`"),
        }
    }

    /// Whether this is a remote lock (with a lease that ends by itself), not a local OS lock.
    pub fn is_remote(&self) -> bool {
        matches!(self.0, Held::Remote(..))
    }

    /// What taking the lock found of an earlier holder that died holding it: a record the OS
    /// freed (local), or an expired lease taken over (remote).
    pub fn note(&self) -> Option<String> {
        let (i, how) = match &self.0 {
            Held::Local(l) => {
                (l.replaced()?, "ended without releasing the lock; its process is gone, so the lock was free")
            }
            Held::Remote(_, l) => (l.taken_over()?, "stopped renewing its lease, which ended; the lock was taken over"),
            Held::Released => return None,
        };
        Some(format!(
            "note: the previous holder of the state lock ({} by {}, pid {} on {}, since {}) {how}",
            i.operation, i.who, i.pid, i.host, i.created
        ))
    }

    /// Releases the lock: a local one clears its info and frees the OS lock (on the blocking
    /// pool); a remote one stops renewing its lease and deletes the lock object if it is still
    /// this run's. Reports what dropping the lock can only ignore.
    pub async fn release(mut self) -> Result<(), StateError> {
        match std::mem::replace(&mut self.0, Held::Released) {
            Held::Local(lock) => blocking(lock.path().to_path_buf(), move || lock.release()).await,
            Held::Remote(store, mut lock) => store.unlock(&mut lock).await,
            Held::Released => Ok(()),
        }
    }
}

/// Dropping a lock is a fallback for a lock that was not given back with [`Lock::release`]
/// (an early return, a panic). A local lock is released as [`StateLock`]'s drop does: its
/// info cleared and the OS lock freed. A remote lock is released by a task spawned on the
/// current tokio runtime, if there is one (the task runs as long as that runtime does);
/// otherwise it is left, its renewal stopped, and its lease ends by itself, after which the
/// next run takes it over. Nothing is reported either way: `release` is what reports.
impl Drop for Lock {
    fn drop(&mut self) {
        if let Held::Remote(store, mut lock) = std::mem::replace(&mut self.0, Held::Released) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = store.unlock(&mut lock).await;
                });
            }
        }
    }
}

/// Runs blocking file I/O (and waits for an OS lock) on tokio's blocking pool, so that no
/// worker of the caller's runtime is held up. A panic in `f` goes on as a panic of the caller.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down before the work started.
        Err(_) => {
            Err(StateError::Io { action: "use", path, source: std::io::Error::other("the runtime is shutting down") })
        }
    }
}

/// Every call is async: a remote store's runs on the [`ObjectStore`], a local store's file I/O
/// and OS-lock waits on tokio's blocking pool. So they are awaited within a tokio runtime.
impl Store {
    /// A path or `s3://bucket/key`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Local(s) => s.path().display().to_string(),
            Store::Remote(r) => r.describe(),
        }
    }

    pub async fn read(&self) -> Result<Option<State>, StateError> {
        match self {
            Store::Local(s) => {
                let s = s.clone();
                blocking(s.path().to_path_buf(), move || s.read()).await
            }
            Store::Remote(r) => r.read().await,
        }
    }

    /// The state's bytes (`state pull`): as stored, or, while a journal extends the stored
    /// state, the state with the journal replayed.
    pub async fn read_raw(&self) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Store::Local(s) => {
                let s = s.clone();
                blocking(s.path().to_path_buf(), move || s.read_current_bytes()).await
            }
            Store::Remote(r) => r.read_current_bytes().await,
        }
    }

    /// Commits one step of a run: `state` (already changed by the step) becomes its next
    /// serial, and the step's `changes` are made durable as a write-ahead journal record, or,
    /// every so often, by rewriting the state (see [`crate::journal`]). On error `state`'s
    /// serial is left as it was. (The executor's ledger commits several steps at once with
    /// [`Store::compacts`], [`Store::append`] and [`Store::rewrite`].)
    pub async fn commit(&self, state: &mut State, changes: Vec<Change>) -> Result<(), StateError> {
        let before = Previous::advance(state)?;
        let record = crate::journal::encode_record(&Record { serial: state.serial, changes });
        let result = if self.compacts(record.len()) { self.rewrite(state).await } else { self.append(record, 1).await };
        if result.is_err() {
            before.restore(state);
        }
        result
    }

    /// Whether records of `len` more bytes go into a compaction ([`Store::rewrite`]) rather
    /// than the journal ([`Store::append`]): there is no stored state to extend yet, or the
    /// journal would outgrow the state.
    pub fn compacts(&self, len: usize) -> bool {
        match self {
            Store::Local(s) => s.compacts(len),
            Store::Remote(r) => r.compacts(len),
        }
    }

    /// Makes `lines`, `count` framed journal records (the stored state's next serials, in
    /// order: [`crate::journal::encode_record`]), durable in the journal, with one sync.
    pub async fn append(&self, lines: Vec<u8>, count: u64) -> Result<(), StateError> {
        match self {
            Store::Local(s) => {
                let s = s.clone();
                blocking(s.journal_path(), move || s.append(&lines, count)).await
            }
            Store::Remote(r) => r.append(&lines, count).await,
        }
    }

    /// Writes `state` (its serial as it is: journal records advanced it) as the stored state,
    /// and retires the journal it folds in.
    pub async fn rewrite(&self, state: &State) -> Result<(), StateError> {
        match self {
            Store::Local(s) => {
                let (s, snapshot) = (s.clone(), state.clone());
                blocking(s.path().to_path_buf(), move || s.compact(&snapshot)).await
            }
            Store::Remote(r) => r.compact_now(state).await,
        }
    }

    /// Folds the journal into the stored state (the end of a run); nothing to do without one.
    pub async fn compact(&self, state: &State) -> Result<(), StateError> {
        match self {
            Store::Local(s) if !s.has_journal() => Ok(()),
            Store::Local(_) => self.rewrite(state).await,
            Store::Remote(r) => r.compact(state).await,
        }
    }

    /// Writes the state with its serial incremented. On error `state` is left as it was.
    pub async fn write(&self, state: &mut State) -> Result<(), StateError> {
        match self {
            Store::Local(s) => {
                // The blocking pool needs the state by value: a copy is written, and on success
                // it is the state (its serial and version changed).
                let (s, mut next) = (s.clone(), state.clone());
                *state = blocking(s.path().to_path_buf(), move || s.write(&mut next).map(|()| next)).await?;
                Ok(())
            }
            Store::Remote(r) => r.write(state).await,
        }
    }

    /// Writes the state with its serial as it is (`state push`, `state migrate`).
    pub async fn write_as_is(&self, state: &State) -> Result<(), StateError> {
        match self {
            Store::Local(s) => {
                let (s, state) = (s.clone(), state.clone());
                blocking(s.path().to_path_buf(), move || s.write_as_is(&state)).await
            }
            Store::Remote(r) => r.write_as_is(state).await,
        }
    }

    /// Takes the lock for `operation`, waiting up to `timeout` for its holder. A remote lock's
    /// lease is renewed by a task on the current runtime until it is released.
    pub async fn lock(&self, operation: &str, lease: Duration, timeout: Duration) -> Result<Lock, StateError> {
        match self {
            Store::Local(s) => {
                let (s, operation) = (s.clone(), operation.to_string());
                let lock = blocking(s.lock_path(), move || s.lock(&operation, lease, timeout)).await?;
                Ok(Lock(Held::Local(lock)))
            }
            Store::Remote(r) => {
                let lock = r.lock(operation, lease, timeout).await?;
                Ok(Lock(Held::Remote(Arc::clone(r), lock)))
            }
        }
    }

    pub async fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        match self {
            Store::Local(s) => {
                let s = s.clone();
                blocking(s.lock_path(), move || s.lock_info()).await
            }
            Store::Remote(r) => r.lock_info().await,
        }
    }

    pub async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        match self {
            Store::Local(s) => {
                let (s, id) = (s.clone(), id.to_string());
                blocking(s.lock_path(), move || s.force_unlock(&id)).await
            }
            Store::Remote(r) => r.force_unlock(id).await,
        }
    }

    /// The backup of the previous state, where one is kept on disk.
    pub fn backup_path(&self) -> Option<PathBuf> {
        match self {
            Store::Local(s) => Some(s.backup_path()),
            Store::Remote(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DEFAULT_FILE_NAME, DEFAULT_LEASE};

    fn remote() -> (Store, Arc<dyn ObjectStore>) {
        let objects: Arc<dyn ObjectStore> = Arc::new(drydock_backend::MemoryStore::new());
        let clock: crate::remote::Clock = Arc::new(crate::store::now_ms);
        (Store::Remote(Arc::new(RemoteStore::new(Arc::clone(&objects), "state", clock))), objects)
    }

    #[tokio::test]
    async fn a_local_store_reads_writes_and_locks_through_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(LocalStore::new(dir.path().join(DEFAULT_FILE_NAME)));
        assert_eq!(store.read().await.unwrap(), None);
        assert_eq!(store.read_raw().await.unwrap(), None);
        let mut state = State::new("lineage".into());
        store.write(&mut state).await.unwrap();
        assert_eq!(state.serial, 1, "the written state is the caller's");
        assert_eq!(store.read().await.unwrap().as_ref(), Some(&state));
        let raw = store.read_raw().await.unwrap().unwrap();
        assert_eq!(raw, std::fs::read(dir.path().join(DEFAULT_FILE_NAME)).unwrap());
        state.serial = 7;
        store.write_as_is(&state).await.unwrap();
        assert_eq!(store.read().await.unwrap().unwrap().serial, 7);

        let lock = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).await.unwrap();
        assert!(!lock.is_remote());
        assert_eq!(store.lock_info().await.unwrap().as_ref(), Some(lock.info()));
        let err = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.code(), "state::locked");
        lock.release().await.unwrap();
        assert_eq!(store.lock_info().await.unwrap(), None, "released");
        let lock = store.lock("plan", DEFAULT_LEASE, Duration::ZERO).await.unwrap();
        store.force_unlock(&lock.info().id).await.unwrap();
        assert_eq!(store.lock_info().await.unwrap(), None);
        assert_eq!(store.force_unlock("x").await.unwrap_err().code(), "state::not_locked");
    }

    #[tokio::test]
    async fn a_failed_local_write_leaves_the_state_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(LocalStore::new(dir.path().join("missing").join(DEFAULT_FILE_NAME)));
        let mut state = State::new("lineage".into());
        let before = state.clone();
        assert_eq!(store.write(&mut state).await.unwrap_err().code(), "state::io");
        assert_eq!(state, before);
    }

    #[tokio::test]
    async fn a_remote_lock_is_released_explicitly() {
        let (store, _) = remote();
        let lock = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).await.unwrap();
        assert!(lock.is_remote());
        assert_eq!(store.lock_info().await.unwrap().as_ref(), Some(lock.info()));
        lock.release().await.unwrap();
        assert_eq!(store.lock_info().await.unwrap(), None);
    }

    #[test]
    fn a_dropped_remote_lock_is_released_on_the_current_runtime_or_else_left_to_expire() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (store, objects) = remote();
        // Dropped within the runtime: a task releases it.
        rt.block_on(async {
            drop(store.lock("apply", DEFAULT_LEASE, Duration::ZERO).await.unwrap());
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while store.lock_info().await.unwrap().is_some() {
                assert!(std::time::Instant::now() < deadline, "not released");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        // Dropped outside any runtime: left as it is, no longer renewed (a third of its 1 s
        // lease would have renewed it twice meanwhile), so its lease ends by itself.
        let lock = rt.block_on(store.lock("apply", Duration::from_secs(1), Duration::ZERO)).unwrap();
        let etag = || rt.block_on(objects.get("state.lock")).unwrap().map(|o| o.etag);
        let before = etag();
        assert!(before.is_some());
        drop(lock);
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(etag(), before, "still there, and not renewed");
    }

    #[test]
    fn the_record_is_replaced_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_record(dir.path()).unwrap(), None);
        let first = BackendRecord::Local { path: "drydock.state.json".into() };
        write_record(dir.path(), &first).unwrap();
        assert_eq!(read_record(dir.path()).unwrap(), Some(first));
        let second = BackendRecord::S3 {
            bucket: "b".into(),
            key: "k".into(),
            region: Some("eu-west-1".into()),
            endpoint: None,
            profile: None,
        };
        write_record(dir.path(), &second).unwrap();
        assert_eq!(read_record(dir.path()).unwrap(), Some(second));
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join(".drydock")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["backend.json"]);
    }
}
