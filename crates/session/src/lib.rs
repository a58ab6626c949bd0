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

use std::collections::{BTreeMap, BTreeSet};
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
    /// `--target`: plan only these node groups or clusters (and what they depend on).
    pub targets: Vec<String>,
    /// `--replace`: roll these node groups or clusters out onto a new generation of the same spec.
    pub replace: Vec<String>,
    /// `drydock rollout undo`: plan one node group back onto an earlier generation.
    pub undo: Option<UndoRequest>,
    /// The lineage a plan without a state is made for (a saved plan's, made again to be
    /// checked); `None`: a new one.
    pub lineage: Option<String>,
    /// The variable inputs the configuration was evaluated with.
    pub inputs: Inputs,
}

/// `drydock rollout undo ADDRESS [--to-generation ID]`.
#[derive(Debug, Clone, Default)]
pub struct UndoRequest {
    pub address: String,
    /// A generation id (or a prefix of one) from the node group's history; `None`: the one
    /// before the generation it runs.
    pub to_generation: Option<String>,
}

/// The node group's history entry an undo goes back to, and the spec to plan it with.
fn undo_target(
    state: Option<&State>,
    u: &UndoRequest,
) -> Result<(drydock_state::HistoryEntry, drydock_provider::GenerationSpec), String> {
    let ng = state
        .and_then(|s| s.clusters.values().find_map(|c| c.node_groups.get(&u.address)))
        .ok_or_else(|| format!("rollout undo: the state has no node group {}", u.address))?;
    let current = ng.current().map(|g| g.id.as_str()).unwrap_or_default();
    let entry = match &u.to_generation {
        Some(id) => ng.history.iter().rev().find(|h| h.generation.starts_with(id.as_str())).ok_or_else(|| {
            let known: Vec<&str> = ng.history.iter().map(|h| h.generation.as_str()).collect();
            format!("rollout undo: {} has no generation {id} in its history (it has: {})", u.address, known.join(", "))
        })?,
        None => ng.history.iter().rev().find(|h| h.generation != current).ok_or_else(|| {
            format!("rollout undo: {} has no earlier generation in its history to go back to", u.address)
        })?,
    };
    if entry.generation == current {
        return Err(format!("rollout undo: {} already runs generation {}", u.address, entry.generation));
    }
    let spec: drydock_provider::GenerationSpec = serde_json::from_value(entry.spec.clone())
        .ok()
        .filter(|s| drydock_plan::generation_id(s) == entry.generation)
        .ok_or_else(|| {
            format!(
                "rollout undo: generation {} of {} cannot be rebuilt from the state (its spec holds sensitive values, \
                 which the state keeps only as digests): change the configuration back instead",
                entry.generation, u.address
            )
        })?;
    Ok((entry.clone(), spec))
}

/// What a command asks of [`load`] besides the configuration's path.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub inputs: Inputs,
    /// `--state FILE`: a local state file that wins over a `backend "local"` path.
    pub state_override: Option<PathBuf>,
    pub lock_timeout: Duration,
    pub refresh: bool,
    pub targets: Vec<String>,
    pub replace: Vec<String>,
    pub undo: Option<UndoRequest>,
}

/// Applies the configuration's `moved` blocks to `state`: each node group at a `from` address
/// is taken over by its `to` address (its cloud groups and nodes kept). Returns what moved, as
/// lines for the plan; a `from` the state does not have (moved already, or never applied) is
/// skipped.
pub fn apply_moves(model: &Model, state: &mut State) -> Result<Vec<String>, String> {
    let mut out = vec![];
    for m in &model.moves {
        let present = state.clusters.values().any(|c| c.node_groups.contains_key(&m.from));
        if !present {
            continue;
        }
        match state.move_node_group(&m.from, &m.to) {
            Ok(drydock_state::Moved::Moved) => {
                out.push(format!("{} has moved to {} (a moved block): its groups and nodes are kept", m.from, m.to))
            }
            Ok(drydock_state::Moved::Already) => {}
            Err(e) => return Err(format!("moved {{ from = {}, to = {} }}: {e}", m.from, m.to)),
        }
    }
    Ok(out)
}

/// The node group addresses an address given on the command line names: itself (a node
/// group), every node group of a cluster, or every instance of a `for_each` node group
/// written without its key (`cluster.demo.node_group.workers`). `None` when it names nothing.
pub fn resolve_address(model: &Model, address: &str) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for c in &model.clusters {
        for ng in &c.node_groups {
            let base = ng.address.split_once('[').map_or(ng.address.as_str(), |(b, _)| b);
            if ng.address == address || c.address == address || base == address {
                out.insert(ng.address.clone());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// [`resolve_address`] for each of `addresses`, or an error naming those that name nothing.
fn resolve_all(model: &Model, flag: &str, addresses: &[String]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for a in addresses {
        match resolve_address(model, a) {
            Some(set) => out.extend(set),
            None => {
                let known: Vec<&str> =
                    model.clusters.iter().flat_map(|c| c.node_groups.iter().map(|ng| ng.address.as_str())).collect();
                return Err(format!(
                    "{flag} {a}: no cluster or node group of the configuration has that address (node groups: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            }
        }
    }
    Ok(out)
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
        targets: options.targets.clone(),
        replace: options.replace.clone(),
        undo: options.undo.clone(),
        lineage: None,
        inputs: options.inputs.clone(),
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

/// Groups of the configured clusters that carry another lineage than `lineage`, by provider:
/// looked up (one more call per provider) only for node groups the observation of `lineage`
/// did not find, which a plan would create.
pub async fn observe_foreign(
    providers: &Providers,
    model: &Model,
    state: Option<&State>,
    lineage: &str,
    observed: &BTreeMap<String, Observed>,
) -> Result<BTreeMap<String, Observed>, String> {
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for cluster in &model.clusters {
        for ng in &cluster.node_groups {
            let (oc, og) = drydock_plan::owners(state, cluster, ng);
            let found = observed
                .get(&cluster.provider)
                .is_some_and(|o| o.groups.iter().any(|g| g.ownership.cluster == oc && g.ownership.node_group == og));
            if !found {
                wanted.entry(cluster.provider.as_str()).or_default().insert(oc);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, clusters) in wanted {
        let Some(p) = providers.get(name) else { continue };
        let clusters: Vec<String> = clusters.into_iter().collect();
        let mut o = p.observe_clusters(&clusters).await.map_err(|e| format!("provider `{name}`: {e}"))?;
        o.groups.retain(|g| g.ownership.lineage != lineage);
        if !o.groups.is_empty() {
            out.insert(name.to_string(), o);
        }
    }
    Ok(out)
}

/// The plan that restores the applied state, from the cloud as `observed`: each node group the
/// state records planned onto its applied generation and settings instead of the
/// configuration's (where the state can rebuild the spec: one without sensitive values, which
/// it keeps as digests). What `drydock watch` repairs from, so that a configuration changed
/// but not applied never stops a repair that needs nothing of the change.
pub fn plan_as_applied(
    ws: &Workspace,
    state: &State,
    observed: &BTreeMap<String, Observed>,
    providers: &Providers,
) -> Result<Plan, String> {
    let mut specs = BTreeMap::new();
    let mut settings = BTreeMap::new();
    for (address, ng) in state.clusters.values().flat_map(|c| c.node_groups.iter()) {
        let Some(current) = ng.current() else { continue };
        let Ok(spec) = serde_json::from_value::<drydock_provider::GenerationSpec>(current.spec.clone()) else {
            continue;
        };
        if drydock_plan::generation_id(&spec) == current.id {
            specs.insert(address.clone(), spec);
            settings.insert(address.clone(), ng.settings.clone());
        }
    }
    let input = PlanInput {
        model: &ws.model,
        state: Some(state),
        lineage: &state.lineage,
        observed,
        boot_estimate_ms: &boot_estimates(providers),
        config_digest: ws.digest.clone(),
        config_path: ws.config_path.display().to_string(),
        destroy: false,
        refreshed: true,
        kubernetes: &BTreeMap::new(),
        replace: &BTreeSet::new(),
        specs: &specs,
        foreign: &BTreeMap::new(),
        settings: &settings,
        now_ms: providers.iter().map(|(name, p)| (name.clone(), p.clock().now_ms())).collect(),
    };
    drydock_plan::plan(&input).map_err(|errs| {
        errs.iter().map(|e| format!("{}: {}", e.address, e.message)).collect::<Vec<_>>().join("\nerror: ")
    })
}

/// `drydock import`: the state adopting the lineage the configured clusters' groups run
/// under (`lineage`, or the only one there is), as [`drydock_plan::adopt::adopt`] does.
pub async fn import(
    ws: &Workspace,
    state: Option<&State>,
    lineage: Option<&str>,
) -> Result<drydock_plan::adopt::Adopted, String> {
    let providers = providers(&ws.model, &ws.config_dir)?;
    let mut clusters: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &ws.model.clusters {
        clusters.entry(c.provider.as_str()).or_default().push(c.owner_name().to_string());
    }
    // Every lineage the configured clusters' groups carry, but the state's own.
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for (name, names) in &clusters {
        let Some(p) = providers.get(*name) else { continue };
        let o = p.observe_clusters(names).await.map_err(|e| format!("provider `{name}`: {e}"))?;
        for g in o.groups {
            if state.is_none_or(|s| s.lineage != g.ownership.lineage) {
                *found.entry(g.ownership.lineage).or_default() += 1;
            }
        }
    }
    let listed = || found.iter().map(|(l, n)| format!("{l} ({n} groups)")).collect::<Vec<_>>().join(", ");
    let lineage = match lineage {
        Some(l) if found.contains_key(l) => l.to_string(),
        Some(l) => {
            return Err(format!(
                "no group of the configured clusters carries lineage {l}{}",
                if found.is_empty() { String::new() } else { format!(" (they carry: {})", listed()) }
            ))
        }
        None if found.len() == 1 => found.keys().next().cloned().unwrap_or_default(),
        None if found.is_empty() => {
            return Err("nothing to import: no group of the configured clusters runs under another lineage".into())
        }
        None => {
            return Err(format!(
                "the configured clusters' groups carry several lineages: {}; choose one with --lineage",
                listed()
            ))
        }
    };
    let observed = observe_all(&providers, &lineage).await?;
    drydock_plan::adopt::adopt(state, &ws.model, &lineage, &observed)
}

/// A plan and what was built to make it: the providers and the clusters' Kubernetes APIs,
/// which the executor then uses.
pub struct Planned {
    pub plan: Plan,
    pub providers: Providers,
    pub kubernetes: kubernetes::Kubes,
    pub etcd: kubernetes::Etcds,
    /// The cloud as observed (by provider), or as the state describes it without a refresh.
    pub observed: BTreeMap<String, drydock_provider::Observed>,
}

/// Plans the workspace against `state` (observing the cloud, and the Kubernetes API of each
/// cluster that has one, unless refresh is off), with the providers it built.
pub async fn make_plan(ws: &Workspace, state: Option<&State>, destroy: bool) -> Result<Planned, String> {
    // `moved` blocks take effect in the plan at once (and in the state when applied).
    let mut moved_state = None;
    let mut moved = vec![];
    if let (Some(s), false) = (state, ws.model.moves.is_empty()) {
        let mut s = s.clone();
        moved = apply_moves(&ws.model, &mut s)?;
        moved_state = Some(s);
    }
    let state = moved_state.as_ref().or(state);
    let providers = providers(&ws.model, &ws.config_dir)?;
    let kubes = kubernetes::clients(&ws.model, &ws.config_dir).await?;
    let etcds = kubernetes::etcd_clients(&ws.model, &ws.config_dir, &kubes)?;
    let lineage = match (state, &ws.lineage) {
        (Some(s), _) => s.lineage.clone(),
        (None, Some(l)) => l.clone(),
        (None, None) => new_lineage(),
    };
    let observed = match (ws.refresh, state) {
        (false, Some(s)) => drydock_plan::observed_from_state(s, &ws.model),
        (false, None) => BTreeMap::new(),
        (true, _) => observe_all(&providers, &lineage).await?,
    };
    let kube_observed =
        if ws.refresh && !destroy { kubernetes::observe(&kubes, &etcds).await? } else { BTreeMap::new() };
    let foreign = if ws.refresh && !destroy {
        observe_foreign(&providers, &ws.model, state, &lineage, &observed).await?
    } else {
        BTreeMap::new()
    };
    if destroy && !ws.replace.is_empty() {
        return Err(
            "--replace makes a new generation of a node group; a destroy plan removes them: use one or the other"
                .into(),
        );
    }
    let replace = resolve_all(&ws.model, "--replace", &ws.replace)?;
    let targets = resolve_all(&ws.model, "--target", &ws.targets)?;
    let mut specs = BTreeMap::new();
    let undo = match &ws.undo {
        Some(u) => {
            if resolve_address(&ws.model, &u.address).is_none_or(|a| !a.contains(&u.address)) {
                return Err(format!("rollout undo: the configuration has no node group {}", u.address));
            }
            let (entry, spec) = undo_target(state, u)?;
            specs.insert(u.address.clone(), spec);
            Some((u, entry))
        }
        None => None,
    };
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
        replace: &replace,
        specs: &specs,
        foreign: &foreign,
        settings: &BTreeMap::new(),
        now_ms: providers.iter().map(|(name, p)| (name.clone(), p.clock().now_ms())).collect(),
    };
    let mut plan = drydock_plan::plan(&input).map_err(|errs| {
        errs.iter().map(|e| format!("{}: {}", e.address, e.message)).collect::<Vec<_>>().join("\nerror: ")
    })?;
    plan.warnings.extend(moved);
    if !ws.targets.is_empty() {
        drydock_plan::restrict(&mut plan, &targets, &ws.targets);
    }
    if let Some((u, entry)) = undo {
        // An undo changes that node group only (and what it depends on).
        let keep = BTreeSet::from([u.address.clone()]);
        drydock_plan::restrict(&mut plan, &keep, std::slice::from_ref(&u.address));
        plan.warnings.pop(); // restrict's targeting warning: this one says more
        plan.warnings.push(format!(
            "rollout undo: {} goes back to generation {} (applied {} by {}); the configuration now differs from what \
             runs, so the next `drydock plan` rolls forward again unless the configuration is changed back",
            u.address, entry.generation, entry.applied_at, entry.by
        ));
    }
    plan.options = drydock_plan::PlanOptions {
        targets: ws.targets.clone(),
        replace: ws.replace.clone(),
        undo: ws.undo.as_ref().map(|u| (u.address.clone(), u.to_generation.clone())),
        refresh: ws.refresh,
        vars: ws.inputs.vars.clone(),
        env: ws.inputs.env.clone(),
        var_files: ws.inputs.var_files.clone(),
    };
    Ok(Planned { plan, providers, kubernetes: kubes, etcd: etcds, observed })
}

/// A refresh-only plan (`plan --refresh-only`): the drift, each difference the state can
/// record marked so, and the state as it is after recording them (with `moved` blocks made).
/// The cloud is observed and never changed.
pub async fn make_refresh_plan(
    ws: &Workspace,
    state: Option<&State>,
) -> Result<(Plan, drydock_plan::refresh::Refreshed, Providers), String> {
    if !ws.refresh {
        return Err("--refresh-only reads the cloud: it cannot be used with --refresh=false".into());
    }
    if !ws.targets.is_empty() || !ws.replace.is_empty() || ws.undo.is_some() {
        return Err(
            "--refresh-only changes no node group: it cannot be used with --target, --replace or an undo".into()
        );
    }
    let Some(state) = state else {
        return Err("there is no state to refresh: nothing has been applied with this configuration yet".into());
    };
    let mut moved = state.clone();
    let moves = apply_moves(&ws.model, &mut moved)?;
    let planned = make_plan(ws, Some(state), false).await?;
    let refreshed = drydock_plan::refresh::refresh(&moved, &ws.model, &planned.observed);
    let mut plan = planned.plan;
    plan.refresh_only = true;
    plan.changes.clear();
    plan.clusters.clear();
    // What the plan warned of concerned its changes; a refresh has none (moves are made).
    plan.warnings = moves;
    for d in &mut plan.drift {
        if refreshed.recorded.contains(&(d.address.clone(), d.path.clone())) {
            d.action = drydock_plan::refresh::RECORDED.into();
        } else {
            d.action = format!("not recorded (the state keeps no such record); without --refresh-only: {}", d.action);
        }
    }
    plan.drift.extend(refreshed.extra.iter().cloned());
    plan.drift.sort_by(|a, b| a.address.cmp(&b.address));
    Ok((plan, refreshed, planned.providers))
}
