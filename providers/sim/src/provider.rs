//! `SimProvider`: the `Provider` trait over a world file, and the clock that world runs on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use drydock_provider::{
    ApiStats, Clock, CreateGroup, GenerationSpec, GroupSettings, JoinSecrets, Observed, ObservedGroup, Ownership,
    Provider, ProviderError, SystemClock,
};

use crate::apiserver::{self, Running, Server, SimEndpoint};
use crate::config::{ClockMode, SimConfig};
use crate::store::{self, Cache, Settings};
use crate::world::{Failure, Op, Outcome, World};
use crate::SimError;

/// A simulated cloud kept in a world file that several processes may share.
///
/// Each operation is one locked catch-up-advance-change-append of the file (`store`), done on
/// tokio's blocking pool so that waiting for another process's lock never stalls the runtime;
/// so a `SimProvider` must be used within a tokio runtime. The provider keeps the world it last
/// saw in memory (shared with its clock), so an operation reads only what other processes
/// appended since. Each operation also writes this provider's configuration and clock mode into
/// the world (when they differ), so that tools without a configuration (`drydock sim status`)
/// evolve it alike.
pub struct SimProvider {
    path: Arc<PathBuf>,
    settings: Arc<Settings>,
    cache: Arc<Mutex<Cache>>,
    clock: Arc<dyn Clock>,
    stats: Mutex<ApiStats>,
    /// The simulated clusters' API servers this provider started, by cluster (stopped when it
    /// is dropped).
    servers: Mutex<BTreeMap<String, Running>>,
}

impl SimProvider {
    /// A provider for the world at `world_path`; nothing is read or created until the first
    /// operation.
    pub fn new(world_path: impl Into<PathBuf>, config: SimConfig, mode: ClockMode) -> SimProvider {
        let path = Arc::new(world_path.into());
        let settings = Arc::new(Settings { config, mode });
        let cache = Arc::new(Mutex::new(Cache::default()));
        let clock: Arc<dyn Clock> = match mode {
            ClockMode::Real => Arc::new(SystemClock),
            ClockMode::Virtual => Arc::new(VirtualClock {
                path: path.clone(),
                settings: settings.clone(),
                cache: cache.clone(),
                last_ms: AtomicU64::new(0),
            }),
        };
        SimProvider { path, settings, cache, clock, stats: Mutex::new(ApiStats::default()), servers: Mutex::default() }
    }

    pub fn world_path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &SimConfig {
        &self.settings.config
    }

    pub fn mode(&self) -> ClockMode {
        self.settings.mode
    }

    /// The API server of the simulated cluster `cluster` (an ownership cluster name): started
    /// on first use (on `127.0.0.1` and a free port, as a task of the current tokio runtime, so
    /// this must be called within one), then the same until this provider is dropped. It serves
    /// that cluster's objects only, wants the endpoint's token as `Authorization: Bearer`, and
    /// reads and changes the world as this provider's operations do (its settings, its copy of
    /// the world). A cluster without nodes yet is served empty.
    pub fn kubernetes(&self, cluster: &str) -> Result<SimEndpoint, ProviderError> {
        let mut servers = self.servers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = servers.get(cluster).filter(|r| !r.is_finished()) {
            return Ok(running.endpoint.clone());
        }
        let token = apiserver::random_token()
            .map_err(|e| ProviderError::unavailable(format!("cannot read random bytes for a token: {e}")))?;
        let server = Server {
            cluster: cluster.to_string(),
            token,
            path: self.path.clone(),
            settings: Some(self.settings.clone()),
            cache: self.cache.clone(),
        };
        let running = apiserver::start(server)
            .map_err(|e| ProviderError::unavailable(format!("cannot start the simulated API server: {e}")))?;
        let endpoint = running.endpoint.clone();
        servers.insert(cluster.to_string(), running);
        Ok(endpoint)
    }

    /// Counts the call, then applies `op` (if any) to the world under its lock and reads the
    /// answer with `read`.
    async fn run<T, F>(&self, operation: &str, op: Option<Op>, read: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&World, Result<Outcome, Failure>) -> Result<T, ProviderError> + Send + 'static,
    {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).record(operation);
        let (path, settings, cache) = (self.path.clone(), self.settings.clone(), self.cache.clone());
        tokio::task::spawn_blocking(move || {
            store::update(&path, &mut store::lock_cache(&cache), Some(&settings), op, read)
        })
        .await
        .map_err(|e| ProviderError::from(SimError::Worker(e.to_string())))??
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Exactly the configured boot time: the sim boots every node in it.
    fn boot_estimate_ms(&self) -> u64 {
        self.settings.config.boot_time_ms
    }

    async fn observe(&self, lineage: &str) -> Result<Observed, ProviderError> {
        let lineage = lineage.to_string();
        self.run("observe", None, move |w, _| Ok(w.observe(&lineage))).await
    }

    async fn observe_clusters(&self, clusters: &[String]) -> Result<Observed, ProviderError> {
        let clusters = clusters.to_vec();
        self.run("observe", None, move |w, _| Ok(w.observe_clusters(&clusters))).await
    }

    async fn observe_node_group(
        &self,
        lineage: &str,
        cluster: &str,
        node_group: &str,
    ) -> Result<Observed, ProviderError> {
        let (lineage, cluster, node_group) = (lineage.to_string(), cluster.to_string(), node_group.to_string());
        self.run("observe", None, move |w, _| Ok(w.observe_node_group(&lineage, &cluster, &node_group))).await
    }

    async fn create_group(&self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
        let name = req.name.clone();
        let observed = self
            .run("create_group", Some(Op::CreateGroup(Box::new(req.clone()))), move |w, outcome| {
                outcome?;
                w.observed_group(&name)
                    .ok_or_else(|| ProviderError::not_found("no group of that name").with_group(&name))
            })
            .await?;
        // The secrets themselves never reach the world file: only their digest, which is what
        // observation reports and what an instance launched from this version records.
        match &req.join {
            Some(join) if observed.join_digest.as_deref() != Some(join.digest().as_str()) => {
                let op = Op::SetJoin { name: req.name.clone(), digest: join.digest(), create: true };
                let name = req.name.clone();
                self.run("create_group", Some(op), move |w, outcome| {
                    outcome?;
                    w.observed_group(&name)
                        .ok_or_else(|| ProviderError::not_found("no group of that name").with_group(&name))
                })
                .await
            }
            _ => Ok(observed),
        }
    }

    async fn update_join(
        &self,
        name: &str,
        _ownership: &Ownership,
        _spec: &GenerationSpec,
        join: &JoinSecrets,
    ) -> Result<(), ProviderError> {
        let op = Op::SetJoin { name: name.to_string(), digest: join.digest(), create: false };
        self.run("update_join", Some(op), |_, outcome| outcome.map(drop).map_err(ProviderError::from)).await
    }

    async fn update_group(&self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        let op = Op::UpdateGroup { name: name.to_string(), settings: settings.clone() };
        self.run("update_group", Some(op), |_, outcome| outcome.map(drop).map_err(ProviderError::from)).await
    }

    async fn terminate_instances(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        let op = Op::TerminateInstances { group: group.to_string(), ids: ids.to_vec(), decrement };
        self.run("terminate_instances", Some(op), |_, outcome| outcome.map(drop).map_err(ProviderError::from)).await
    }

    async fn delete_group(&self, name: &str) -> Result<(), ProviderError> {
        let op = Op::DeleteGroup { name: name.to_string() };
        self.run("delete_group", Some(op), |_, outcome| outcome.map(drop).map_err(ProviderError::from)).await
    }

    fn stats(&self) -> ApiStats {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Virtual time kept in the world file: reading it reads the world (under its lock, catching up
/// with what others appended), sleeping moves the world's time forward (living through whatever
/// happens meanwhile) at once. It shares its provider's copy of the world.
struct VirtualClock {
    path: Arc<PathBuf>,
    settings: Arc<Settings>,
    cache: Arc<Mutex<Cache>>,
    /// The last time read or written, for when the file cannot be read: `now_ms` cannot fail,
    /// and the next provider operation reports the problem anyway.
    last_ms: AtomicU64,
}

#[async_trait]
impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        // A virtual world that does not exist yet will start at 0.
        match store::peek(&self.path, &mut store::lock_cache(&self.cache), |w| w.map_or(0, |w| w.now_ms)) {
            Ok(now) => {
                self.last_ms.store(now, Ordering::SeqCst);
                now
            }
            Err(_) => self.last_ms.load(Ordering::SeqCst),
        }
    }

    async fn sleep(&self, ms: u64) {
        let (path, settings, cache) = (self.path.clone(), self.settings.clone(), self.cache.clone());
        let slept = tokio::task::spawn_blocking(move || {
            store::update(&path, &mut store::lock_cache(&cache), Some(&settings), Some(Op::Sleep { ms }), |w, _| {
                w.now_ms
            })
        })
        .await;
        if let Ok(Ok(now)) = slept {
            self.last_ms.store(now, Ordering::SeqCst);
        }
    }
}
