//! `SimProvider`: the `Provider` trait over a world file, and the clock that world runs on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use drydock_provider::{
    ApiStats, Clock, CreateGroup, GroupSettings, Observed, ObservedGroup, Provider, ProviderError, SystemClock,
};

use crate::config::{ClockMode, SimConfig};
use crate::store::{self, Settings};
use crate::world::World;
use crate::SimError;

/// A simulated cloud kept in a JSON world file that several processes may share.
///
/// Each operation is one locked read-advance-change-write of the file, done on tokio's blocking
/// pool so that waiting for another process's lock never stalls the runtime; so a `SimProvider`
/// must be used within a tokio runtime. Each operation also writes this provider's
/// configuration and clock mode into the world, so that tools without a configuration
/// (`drydock sim status`) evolve it alike.
pub struct SimProvider {
    path: Arc<PathBuf>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    stats: Mutex<ApiStats>,
}

impl SimProvider {
    /// A provider for the world at `world_path`; nothing is read or created until the first
    /// operation.
    pub fn new(world_path: impl Into<PathBuf>, config: SimConfig, mode: ClockMode) -> SimProvider {
        let path = Arc::new(world_path.into());
        let settings = Arc::new(Settings { config, mode });
        let clock: Arc<dyn Clock> = match mode {
            ClockMode::Real => Arc::new(SystemClock),
            ClockMode::Virtual => {
                Arc::new(VirtualClock { path: path.clone(), settings: settings.clone(), last_ms: AtomicU64::new(0) })
            }
        };
        SimProvider { path, settings, clock, stats: Mutex::new(ApiStats::default()) }
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

    /// Counts the call, then runs `f` on the world under its lock.
    async fn run<T, F>(&self, operation: &str, f: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&mut World) -> Result<T, ProviderError> + Send + 'static,
    {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).record(operation);
        let path = self.path.clone();
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || store::update(&path, Some(&settings), f))
            .await
            .map_err(|e| ProviderError::from(SimError::Worker(e.to_string())))?
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
        self.run("observe", move |w| Ok(w.observe(&lineage))).await
    }

    async fn create_group(&self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
        let req = req.clone();
        self.run("create_group", move |w| w.create_group(&req)).await
    }

    async fn update_group(&self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        let (name, settings) = (name.to_string(), settings.clone());
        self.run("update_group", move |w| w.update_group(&name, &settings)).await
    }

    async fn terminate_instances(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        let (group, ids) = (group.to_string(), ids.to_vec());
        self.run("terminate_instances", move |w| w.terminate_instances(&group, &ids, decrement)).await
    }

    async fn delete_group(&self, name: &str) -> Result<(), ProviderError> {
        let name = name.to_string();
        self.run("delete_group", move |w| {
            w.delete_group(&name);
            Ok(())
        })
        .await
    }

    fn stats(&self) -> ApiStats {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Virtual time kept in the world file: reading it reads the file, sleeping moves the stored
/// time forward (living through whatever happens meanwhile) at once.
struct VirtualClock {
    path: Arc<PathBuf>,
    settings: Arc<Settings>,
    /// The last time read or written, for when the file cannot be read: `now_ms` cannot fail,
    /// and the next provider operation reports the problem anyway.
    last_ms: AtomicU64,
}

#[async_trait]
impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        match store::stored_now(&self.path) {
            Ok(now) => {
                // A virtual world that does not exist yet will start at 0.
                let now = now.unwrap_or(0);
                self.last_ms.store(now, Ordering::SeqCst);
                now
            }
            Err(_) => self.last_ms.load(Ordering::SeqCst),
        }
    }

    async fn sleep(&self, ms: u64) {
        let path = self.path.clone();
        let settings = self.settings.clone();
        let slept = tokio::task::spawn_blocking(move || {
            store::update(&path, Some(&settings), |w| {
                w.advance_to(w.now_ms.saturating_add(ms));
                Ok::<_, SimError>(w.now_ms)
            })
        })
        .await;
        if let Ok(Ok(now)) = slept {
            self.last_ms.store(now, Ordering::SeqCst);
        }
    }
}
