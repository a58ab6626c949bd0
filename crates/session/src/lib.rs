//! A session: everything a command does between parsing its flags and printing its result.
//! Load the configuration and its inputs ([`load`]), open its state store (checking that the
//! backend did not move), take the state lock, build the providers the configuration names,
//! observe them and plan ([`make_plan`]), check a saved plan against the state and
//! configuration it was made from ([`saved`]), and record outputs after an apply
//! ([`outputs`]). It returns data and errors; the command line prints them.
//!
//! Invariant: knows nothing of the terminal (no flags, no printing, no exit codes); the only
//! library crate that builds provider and backend implementations (so the SDKs stay at this
//! edge, see `tests/layering.rs`).

pub mod kubernetes;
pub mod outputs;
pub mod saved;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drydock_config::{Inputs, Loaded, Model, ProviderSettings};
use drydock_plan::{Plan, PlanInput};
use drydock_provider::{Observed, Provider};
use drydock_state::backend::{self, BackendRecord, Lock, S3Location, Store};
use drydock_state::store::new_lineage;
use drydock_state::State;
use drydock_syntax::diag::Sources;
use sha2::Digest as _;

/// Providers by reference (`sim`, `aws.west`).
pub type Providers = BTreeMap<String, Arc<dyn Provider>>;

/// The world of one command: the configuration, its state store and how to lock it.
pub struct Workspace {
    pub config_path: PathBuf,
    pub config_dir: PathBuf,
    pub model: Model,
    /// The configuration's digest ([`config_digest`]): a saved plan records it.
    pub digest: String,
    pub store: Store,
    /// Which backend that is, as `.drydock/backend.json` records it; `None` with `--state
    /// FILE`, an explicit file that is neither checked against the record nor recorded.
    pub backend: Option<BackendRecord>,
    pub lease: Duration,
    pub lock_timeout: Duration,
    /// Whether to observe the cloud when planning (`--refresh`).
    pub refresh: bool,
}

/// What a command asks of [`load`] besides the configuration's path.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub inputs: Inputs,
    /// `--state FILE`: a local state file that wins over a `backend "local"` path.
    pub state_override: Option<PathBuf>,
    pub lock_timeout: Duration,
    pub refresh: bool,
}

/// Why a workspace could not be loaded.
pub enum LoadError {
    /// The configuration has errors: the diagnostics with their sources, to render.
    Config(Box<Loaded>),
    /// The state backend cannot be used as configured.
    Backend(String),
}

/// A held state lock, and what taking it found of an earlier holder that died holding it
/// (for the command to show).
pub struct Locked {
    pub lock: Lock,
    pub note: Option<String>,
}

impl Workspace {
    /// Takes the state lock for `what`, waiting up to the lock timeout, and records the
    /// backend in use. Awaited within a tokio runtime (a remote lock's lease is renewed on
    /// it); the caller gives the lock back with [`Lock::release`].
    pub async fn lock(&self, what: &str) -> Result<Locked, String> {
        let lock = self.store.lock(what, self.lease, self.lock_timeout).await.map_err(|e| e.to_string())?;
        let note = lock.note();
        if let Some(record) = &self.backend {
            let recorded = backend::read_record(&self.config_dir).and_then(|r| {
                if r.is_none() {
                    backend::write_record(&self.config_dir, record)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = recorded {
                // The command stops with this error; the lock goes back first (a lock that
                // cannot be given back is left to its lease, or to the OS for a local one).
                let _ = lock.release().await;
                return Err(e);
            }
        }
        Ok(Locked { lock, note })
    }
}

/// Loads the configuration at `path` and opens its state store.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Workspace, LoadError> {
    let loaded = drydock_config::load(path, &options.inputs);
    let model = match loaded.model {
        Some(m) if loaded.diagnostics.is_empty() => m,
        _ => return Err(LoadError::Config(Box::new(loaded))),
    };
    let config_dir = config_dir(path);
    let state_override = options.state_override.as_deref();
    let (store, record) = backend::open(model.backend.as_ref(), path, &config_dir, state_override, &s3_objects)
        .and_then(|(store, record)| match state_override {
            Some(_) => Ok((store, None)),
            None => backend::check_unmoved(&config_dir, path, &record).map(|()| (store, Some(record))),
        })
        .map_err(LoadError::Backend)?;
    let lease = backend::lease(model.backend.as_ref());
    Ok(Workspace {
        config_path: path.to_path_buf(),
        config_dir,
        digest: config_digest(&loaded.sources),
        model,
        store,
        backend: record,
        lease,
        lock_timeout: options.lock_timeout,
        refresh: options.refresh,
    })
}

/// The object store under an S3 state backend: the one place that builds an S3 client for
/// the state (the state crate depends on no SDK). Builds no client before its first call.
pub fn s3_objects(at: &S3Location) -> Arc<dyn drydock_s3::ObjectStore> {
    Arc::new(drydock_s3::S3Store::new(drydock_s3::S3Config {
        bucket: at.bucket.to_string(),
        region: at.region.map(str::to_string),
        profile: at.profile.map(str::to_string),
        endpoint: at.endpoint.map(str::to_string),
    }))
}

/// The digest of a configuration's files: names and contents, in name order. Variable
/// values given on the command line or in the environment are not part of it.
pub fn config_digest(sources: &Sources) -> String {
    let mut h = sha2::Sha256::new();
    for (_, f) in sources.files() {
        if f.name.starts_with("--var") || f.name.starts_with("DRYDOCK_VAR_") {
            continue;
        }
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The directory of a configuration (a directory itself, or a file's directory; `.` for a
/// file named without one): where its state, `.drydock/` and backend record live.
pub fn config_dir(path: &Path) -> PathBuf {
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map_or(PathBuf::new(), Path::to_path_buf) };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// The simulated cloud's world file for a configuration directory.
pub fn sim_world(config_dir: &Path) -> PathBuf {
    config_dir.join(".drydock").join("sim-world.json")
}

/// The simulated cloud's configuration from a `provider "sim"` block.
fn sim_config(s: &drydock_config::SimSettings) -> drydock_sim::SimConfig {
    let defaults = drydock_sim::SimConfig::default();
    drydock_sim::SimConfig {
        boot_time_ms: s.boot_time_ms,
        detection_delay_ms: s.detection_delay_ms,
        failure_rate: s.failure_rate,
        bad_images: s.bad_images.clone(),
        seed: s.seed,
        join_delay_ms: s.join_delay_ms.unwrap_or(defaults.join_delay_ms),
        pod_start_ms: s.pod_start_ms.unwrap_or(defaults.pod_start_ms),
        pods_per_node: s.pods_per_node.unwrap_or(defaults.pods_per_node),
        workloads: s.workloads.iter().map(sim_workload).collect(),
        etcd: s.etcd,
        ..defaults
    }
}

fn sim_workload(w: &drydock_config::SimWorkload) -> drydock_sim::Workload {
    let d = drydock_sim::Workload::default();
    drydock_sim::Workload {
        name: w.name.clone(),
        namespace: w.namespace.clone().unwrap_or(d.namespace),
        cluster: w.cluster.clone(),
        kind: match w.kind.as_str() {
            "statefulset" => drydock_sim::WorkloadKind::StatefulSet,
            "daemonset" => drydock_sim::WorkloadKind::DaemonSet,
            "pod" => drydock_sim::WorkloadKind::Pod,
            _ => drydock_sim::WorkloadKind::Deployment,
        },
        replicas: w.replicas.unwrap_or(d.replicas),
        min_available: w.min_available.clone(),
        max_unavailable: w.max_unavailable.clone(),
        empty_dir: w.empty_dir,
        grace_period_s: w.grace_period_s.unwrap_or(d.grace_period_s),
        stop_ms: w.stop_ms.unwrap_or(d.stop_ms),
        never_terminates: w.never_terminates,
        do_not_disrupt: w.do_not_disrupt,
        node_selector: w.node_selector.clone(),
        pdb_selector: w.pdb_selector.clone(),
    }
}

/// The providers the model configures, by reference. Builds no SDK client: that waits for
/// the first call, so commands that do not use AWS never pay for it.
pub fn providers(model: &Model, config_dir: &Path) -> Result<Providers, String> {
    let mut out: Providers = BTreeMap::new();
    for p in &model.providers {
        let provider: Arc<dyn Provider> = match &p.settings {
            ProviderSettings::Sim(s) => {
                let mode = drydock_sim::ClockMode::from_env().map_err(|e| e.to_string())?;
                Arc::new(drydock_sim::SimProvider::new(sim_world(config_dir), sim_config(s), mode))
            }
            ProviderSettings::Aws(s) => Arc::new(drydock_aws::AwsProvider::new(drydock_aws::AwsConfig {
                region: s.region.clone(),
                profile: s.profile.clone(),
                endpoint: s.endpoint.clone(),
            })),
        };
        out.insert(p.reference(), provider);
    }
    Ok(out)
}

/// Per provider reference, how long a node takes to become healthy when nothing was
/// measured (the provider's estimate), plus the executor's health poll (a wave takes up to
/// one poll longer).
fn boot_estimates(providers: &Providers) -> BTreeMap<String, u64> {
    // Saturating: a sim provider's boot time is the configuration's, up to u64::MAX.
    providers
        .iter()
        .map(|(name, p)| (name.clone(), p.boot_estimate_ms().saturating_add(drydock_apply::POLL_MS)))
        .collect()
}

/// The join secrets of every node group with a kubeadm bootstrap, by node group address, for
/// the executor (plans hold only their digest).
pub fn join_secrets(model: &drydock_config::Model) -> BTreeMap<String, drydock_provider::JoinSecrets> {
    model
        .clusters
        .iter()
        .flat_map(|c| &c.node_groups)
        .filter_map(|ng| drydock_plan::join_secrets(ng).map(|j| (ng.address.clone(), j)))
        .collect()
}

/// Observes every provider: what it holds of `lineage`.
pub async fn observe_all(providers: &Providers, lineage: &str) -> Result<BTreeMap<String, Observed>, String> {
    let mut out = BTreeMap::new();
    for (name, p) in providers {
        let o = p.observe(lineage).await.map_err(|e| format!("provider `{name}`: {e}"))?;
        out.insert(name.clone(), o);
    }
    Ok(out)
}

/// A plan and what was built to make it: the providers and the clusters' Kubernetes APIs,
/// which the executor then uses.
pub struct Planned {
    pub plan: Plan,
    pub providers: Providers,
    pub kubernetes: kubernetes::Kubes,
    pub etcd: kubernetes::Etcds,
}

/// Plans the workspace against `state` (observing the cloud, and the Kubernetes API of each
/// cluster that has one, unless refresh is off), with the providers it built.
pub async fn make_plan(ws: &Workspace, state: Option<&State>, destroy: bool) -> Result<Planned, String> {
    let providers = providers(&ws.model, &ws.config_dir)?;
    let kubes = kubernetes::clients(&ws.model, &ws.config_dir).await?;
    let etcds = kubernetes::etcd_clients(&ws.model, &ws.config_dir, &kubes)?;
    let lineage = state.map_or_else(new_lineage, |s| s.lineage.clone());
    let observed = match (ws.refresh, state) {
        (false, Some(s)) => drydock_plan::observed_from_state(s, &ws.model),
        (false, None) => BTreeMap::new(),
        (true, _) => observe_all(&providers, &lineage).await?,
    };
    let kube_observed =
        if ws.refresh && !destroy { kubernetes::observe(&kubes, &etcds).await? } else { BTreeMap::new() };
    let input = PlanInput {
        model: &ws.model,
        state,
        lineage: &lineage,
        observed: &observed,
        boot_estimate_ms: &boot_estimates(&providers),
        config_digest: ws.digest.clone(),
        config_path: ws.config_path.display().to_string(),
        destroy,
        refreshed: ws.refresh,
        kubernetes: &kube_observed,
        now_ms: providers.iter().map(|(name, p)| (name.clone(), p.clock().now_ms())).collect(),
    };
    let plan = drydock_plan::plan(&input).map_err(|errs| {
        errs.iter().map(|e| format!("{}: {}", e.address, e.message)).collect::<Vec<_>>().join("\nerror: ")
    })?;
    Ok(Planned { plan, providers, kubernetes: kubes, etcd: etcds })
}
