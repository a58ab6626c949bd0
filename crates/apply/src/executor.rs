//! The executor: carries out a [`Plan`] and nothing else. It walks the changes as a
//! dependency graph with bounded parallelism; every cloud mutation is journalled in the
//! state *before* it is made and settled after, so that a `kill -9` at any point leaves a
//! state from which the next run (which observes the cloud) converges with nothing
//! orphaned and nothing forgotten. A wave's new nodes must become healthy within the
//! rollout's `health_timeout` before any old node of that wave is removed; if they do not,
//! the rollout halts with the old capacity intact. Ctrl-C lets calls in flight finish,
//! journals them, and stops.
//!
//! Invariant: knows nothing of the language or the terminal (progress goes through
//! [`Progress`]); every cloud call goes through the `Provider` trait.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use drydock_provider::etcd::EtcdHealth;
use drydock_provider::{
    CreateGroup, Etcd, GroupSettings, InstanceState, JoinSecrets, Kubernetes, Observed, ObservedGroup, Ownership,
    Provider, ProviderError,
};

use crate::drain::{self, DrainError, DrainProgress};
use crate::events::Event;

use drydock_model::Role;
use drydock_plan::{Action, ActionKind, Change, ClusterRecord, Plan, Target, TargetGroup};
use drydock_state::backend::Store;
use drydock_state::journal::{self, Touch};
use drydock_state::{ClusterState, GenerationState, JournalEntry, NodeGroupState, State, BOOT_SAMPLES};

/// How often health is polled, on the provider's clock.
pub const POLL_MS: u64 = 1_000;
/// How long, at most, removed instances are waited on to be gone before their Node objects are
/// deleted.
pub const NODE_GONE_WAIT_MS: u64 = 120_000;

/// Test hooks for crash and interrupt tests, read once from the environment:
/// `DRYDOCK_FAILPOINT_KILL_AT=N` sends the process SIGKILL at the N-th crash point, and
/// `DRYDOCK_FAILPOINT_INTERRUPT_AT=N` sends it SIGINT (as Ctrl-C would). Crash points are
/// after every state write and after every cloud mutation before it is settled. Unset in
/// normal use, where a crash point costs one atomic increment.
fn crash_point() {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static TARGETS: OnceLock<(Option<u64>, Option<u64>)> = OnceLock::new();
    let (kill, int) = *TARGETS.get_or_init(|| {
        let read = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
        (read("DRYDOCK_FAILPOINT_KILL_AT"), read("DRYDOCK_FAILPOINT_INTERRUPT_AT"))
    });
    if kill.is_none() && int.is_none() {
        return;
    }
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let signal = if kill == Some(n) {
        "-KILL"
    } else if int == Some(n) {
        "-INT"
    } else {
        return;
    };
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill").args([signal, &pid]).status();
    if signal == "-KILL" {
        // The signal is on its way; nothing more may happen.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{address}: {source}")]
    Provider { address: String, source: ProviderError },
    #[error("{address}: rollout halted: {report}")]
    Halted { address: String, report: String },
    #[error("interrupted")]
    Interrupted,
    #[error("{address}: skipped because {dependency} did not finish")]
    Skipped { address: String, dependency: String },
    #[error("cannot write the state: {0}")]
    State(String),
    /// An earlier state write failed, so this change made no further cloud mutation.
    #[error("stopped: an earlier state write failed ({0})")]
    StateStopped(String),
    /// The change's task panicked: a bug, reported as a failure and never as success.
    #[error("{address}: failed unexpectedly: {message}")]
    Panicked { address: String, message: String },
    #[error("{address}: no provider `{provider}` is configured")]
    NoProvider { address: String, provider: String },
}

/// Where progress lines go (the CLI prints them; tests collect them).
pub trait Progress: Send + Sync {
    fn line(&self, text: &str);
    /// The same steps as typed events (`apply --json`); most progress ignores them.
    fn event(&self, _event: &crate::events::Event) {}
}

/// The node events an executor has emitted already (an instance is added and becomes ready
/// once, however many times it is looked at).
#[derive(Default)]
pub struct Announced(Mutex<BTreeSet<(&'static str, String)>>);

impl Announced {
    /// Whether this is the first time `what` is announced of `instance`.
    fn first(&self, what: &'static str, instance: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert((what, instance.to_string()))
    }
}

/// An action's name in events.
fn action_name(c: &Change) -> String {
    match c.kind() {
        ActionKind::Create => "create",
        ActionKind::Resume => "resume",
        ActionKind::Rollout => "rollout",
        ActionKind::Update => "update",
        ActionKind::Delete => "delete",
    }
    .to_string()
}

/// The state as the apply changes it, each step made durable before the apply goes on.
///
/// Every update names what it touches ([`Touch`]); the ledger reads the new values of those
/// from the state after the step and commits them as one write-ahead journal record
/// (`drydock_state::journal`), so a step costs the size of what it changed, not of the state.
/// The store folds the journal into the state file every so often and at [`Ledger::close`].
///
/// Steps committed at the same moment (by changes running in parallel) are made durable
/// together, as databases do (group commit): the first to flush writes every record waiting,
/// with one sync, and the others find theirs durable. A step still returns only once its own
/// record is durable, so a mutation is never made before its journal entry is stored.
///
/// A write that fails poisons the ledger: every later update fails without writing, and
/// since every cloud mutation is journalled through it first, no further mutation is made.
/// Mutations already made whose outcome could not be written are listed by
/// [`Ledger::unrecorded`]; the journal entries written before them stay in the stored state,
/// so the next run observes the cloud and converges.
pub struct Ledger {
    state: tokio::sync::Mutex<Inner>,
    /// Held by the one flushing; the last serial made durable.
    durable: tokio::sync::Mutex<u64>,
    store: Store,
    failure: Mutex<Failure>,
}

/// The state, and the records of steps applied to it that are not yet durable.
struct Inner {
    state: State,
    /// Framed records, oldest first.
    pending: Vec<u8>,
    count: u64,
}

#[derive(Default)]
struct Failure {
    /// The first failed write's error.
    error: Option<String>,
    /// Mutations made (or steps taken) whose outcome the stored state may not record.
    unrecorded: Vec<String>,
}

impl Ledger {
    pub fn new(state: State, store: Store) -> Ledger {
        let durable = state.serial;
        Ledger {
            state: tokio::sync::Mutex::new(Inner { state, pending: vec![], count: 0 }),
            durable: tokio::sync::Mutex::new(durable),
            store,
            failure: Mutex::new(Failure::default()),
        }
    }

    pub fn into_state(self) -> State {
        self.state.into_inner().state
    }

    /// The state as it is now. A copy of the whole state: for the end of a run; during one,
    /// [`Ledger::read`] what is needed.
    pub async fn snapshot(&self) -> State {
        self.state.lock().await.state.clone()
    }

    /// Reads from the state as it is now.
    pub async fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().await.state)
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Failure> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first state write that failed, if one did.
    pub fn write_error(&self) -> Option<String> {
        self.failure().error.clone()
    }

    /// What the stored state may not record because a write failed after it happened.
    pub fn unrecorded(&self) -> Vec<String> {
        self.failure().unrecorded.clone()
    }

    /// Records a failed write (the first one is the error reported); returns that first error.
    fn fail(&self, error: String, what: Option<String>) -> ApplyError {
        let mut failure = self.failure();
        let first = failure.error.get_or_insert(error).clone();
        failure.unrecorded.extend(what);
        ApplyError::State(first)
    }

    /// Applies `f`, which changes only what `touch` names, to the state and commits it. After
    /// a failed write nothing more is written (and `f` is not applied): the apply is stopping.
    pub async fn update(&self, touch: Touch, f: impl FnOnce(&mut State)) -> Result<(), ApplyError> {
        self.commit(None, Some(touch), |s| {
            f(s);
            vec![]
        })
        .await
    }

    /// Folds the journal into the state file (the end of a run). A failure leaves the journal,
    /// which the next read replays: nothing is lost.
    pub async fn close(&self) -> Result<(), ApplyError> {
        let mut durable = self.durable.lock().await;
        let mut inner = self.state.lock().await;
        if let Some(e) = self.write_error() {
            return Err(ApplyError::StateStopped(e));
        }
        // The compacted state holds any step still waiting (none, once every update returned).
        let result = if inner.count > 0 {
            self.store.rewrite(&inner.state).await
        } else {
            self.store.compact(&inner.state).await
        };
        result.map_err(|e| ApplyError::State(e.to_string()))?;
        (inner.pending, inner.count, *durable) = (vec![], 0, inner.state.serial);
        Ok(())
    }

    /// Applies `f` (which changes only what `touch` names, and returns any further changes it
    /// made) and commits the step, naming in `what` what a failed write leaves unrecorded.
    /// Returns once the step is durable.
    async fn commit(
        &self,
        what: Option<String>,
        touch: Option<Touch>,
        f: impl FnOnce(&mut State) -> Vec<journal::Change>,
    ) -> Result<(), ApplyError> {
        let serial = {
            let mut inner = self.state.lock().await;
            if let Some(e) = self.write_error() {
                return Err(ApplyError::StateStopped(e));
            }
            let s = &mut inner.state;
            #[cfg(debug_assertions)]
            let before = s.clone();
            let mut changes = f(s);
            changes.extend(touch.iter().map(|t| journal::Change::of(s, t)));
            // In debug builds (every test), check that the record says everything the step
            // did: replaying it onto the state before gives the state after.
            #[cfg(debug_assertions)]
            {
                let mut replayed = before;
                for c in changes.clone() {
                    c.apply(&mut replayed);
                }
                replayed.serial = s.serial;
                assert!(replayed == *s, "a ledger step changed more than it names ({touch:?})");
            }
            if let Err(e) = drydock_state::store::advance(s) {
                return Err(self.fail(e.to_string(), what));
            }
            let record = journal::encode_record(&journal::Record { serial: s.serial, changes });
            let serial = s.serial;
            inner.pending.extend_from_slice(&record);
            inner.count += 1;
            serial
        };
        // One flush at a time; a step flushed by another is durable already.
        let mut durable = self.durable.lock().await;
        if *durable < serial {
            if let Some(e) = self.write_error() {
                // The flush that held this step failed.
                return Err(self.fail(e, what));
            }
            let (lines, count, last, snapshot) = {
                let mut inner = self.state.lock().await;
                let lines = std::mem::take(&mut inner.pending);
                let snapshot = self.store.compacts(lines.len()).then(|| inner.state.clone());
                (lines, std::mem::take(&mut inner.count), inner.state.serial, snapshot)
            };
            let written = match snapshot {
                Some(state) => self.store.rewrite(&state).await,
                None => self.store.append(lines, count).await,
            };
            if let Err(e) = written {
                return Err(self.fail(e.to_string(), what));
            }
            *durable = last;
        }
        drop(durable);
        crash_point();
        Ok(())
    }

    /// Records a mutation about to be made; returns its journal id.
    async fn begin(
        &self,
        op: &str,
        address: &str,
        group: &str,
        detail: serde_json::Value,
        now_ms: u64,
    ) -> Result<u64, ApplyError> {
        let mut id = 0;
        // A failed write here means the mutation is not made: nothing to report.
        self.commit(None, None, |s| {
            s.journal_seq += 1;
            id = s.journal_seq;
            let entry = JournalEntry {
                id,
                op: op.to_string(),
                address: address.to_string(),
                group: group.to_string(),
                detail,
                started_at_ms: now_ms,
            };
            s.journal.push(entry.clone());
            vec![journal::Change::Begin(entry)]
        })
        .await?;
        Ok(id)
    }

    /// Settles a journalled mutation: applies what it changed (only what `touch` names) to
    /// the state and drops the entry.
    async fn settle(&self, id: u64, touch: Option<Touch>, f: impl FnOnce(&mut State)) -> Result<(), ApplyError> {
        let what = self
            .read(|s| s.journal.iter().find(|j| j.id == id).map(|j| format!("{} {} ({})", j.op, j.group, j.address)))
            .await;
        self.commit(what, touch, |s| {
            f(s);
            s.journal.retain(|j| j.id != id);
            vec![journal::Change::Settle(id)]
        })
        .await
    }
}

/// What a step on change `c`'s node group touches.
fn touch(c: &Change) -> Touch {
    Touch::NodeGroup { cluster: c.cluster.clone(), address: c.address.clone() }
}

pub struct Executor {
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Per cluster, the nodes that may be in replacement at once (its disruption budget),
    /// shared by the rollouts of all its node groups. Filled from the plan when it runs.
    pub budgets: Mutex<BTreeMap<String, (Arc<tokio::sync::Semaphore>, usize)>>,
    pub ledger: Arc<Ledger>,
    pub progress: Arc<dyn Progress>,
    pub parallelism: usize,
    pub interrupted: Arc<AtomicBool>,
    pub lineage: String,
    /// Per cluster address, its Kubernetes API (clusters with a `kubernetes` block): new nodes
    /// count once their Node is Ready, old nodes are drained before they go.
    pub kubernetes: BTreeMap<String, Arc<dyn Kubernetes>>,
    /// Per cluster address, its control plane's etcd (clusters whose `kubernetes` block has an
    /// `etcd` block): a control-plane rollout checks it before it starts and before each
    /// member goes, and removes a member's etcd member after its drain and before its instance
    /// is terminated.
    pub etcd: BTreeMap<String, Arc<dyn Etcd>>,
    /// Per node group address, the join secrets of its kubeadm bootstrap (from the
    /// configuration; the plan holds only their digest).
    pub join: BTreeMap<String, JoinSecrets>,
    /// The node events emitted so far (each instance's `node_added` and `node_ready` once).
    pub announced: Announced,
}

/// Progress of a drain, through the executor's progress and interrupt flag.
struct DrainLines {
    address: String,
    progress: Arc<dyn Progress>,
    interrupted: Arc<AtomicBool>,
}

impl DrainProgress for DrainLines {
    fn line(&self, text: &str) {
        self.progress.line(&format!("{}: {text}", self.address));
    }
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// How a change ended.
#[derive(Debug)]
pub struct Outcome {
    pub address: String,
    pub result: Result<(), ApplyError>,
}

impl Executor {
    fn emit(&self, event: Event) {
        self.progress.event(&event);
    }

    fn check_interrupt(&self) -> Result<(), ApplyError> {
        if self.interrupted.load(Ordering::SeqCst) {
            Err(ApplyError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Runs every change, dependencies first, at most `parallelism` at once. A change whose
    /// dependency failed is skipped, and so are changes after an interrupt.
    pub async fn run(self: Arc<Self>, plan: &Plan) -> Vec<Outcome> {
        if let Err(e) = self.record_clusters(plan).await {
            // Nothing was changed in the cloud: every change is reported as not made.
            self.progress.line(&format!("error: {e}"));
            return plan
                .changes
                .iter()
                .map(|c| Outcome { address: c.address.clone(), result: Err(ApplyError::StateStopped(e.to_string())) })
                .collect();
        }
        {
            let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            for c in &plan.clusters {
                let permits = if c.disruption_budget == 0 {
                    tokio::sync::Semaphore::MAX_PERMITS
                } else {
                    c.disruption_budget as usize
                };
                budgets
                    .entry(c.address.clone())
                    .or_insert_with(|| (Arc::new(tokio::sync::Semaphore::new(permits)), permits));
            }
        }
        // A queue: changes are taken from near its front, so a removal moves few (a `Vec`
        // moved every change behind it, quadratic in a large plan).
        let mut pending: std::collections::VecDeque<Change> = plan.changes.iter().cloned().collect();
        let planned: BTreeSet<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        let mut done: BTreeMap<String, bool> = BTreeMap::new();
        let mut outcomes = vec![];
        let mut running = tokio::task::JoinSet::new();
        // Which change each task runs, so that a task that panics is reported as its change failing.
        let mut tasks: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
        let mut in_flight = 0usize;
        // Each started change's action, for its `change_complete` event.
        let mut actions: BTreeMap<String, String> = BTreeMap::new();
        loop {
            // Start whatever is ready.
            let mut i = 0;
            while i < pending.len() && in_flight < self.parallelism.max(1) {
                let c = &pending[i];
                let failed_dep = c.depends_on.iter().find(|d| done.get(*d) == Some(&false)).cloned();
                if let Some(dep) = failed_dep {
                    let Some(c) = pending.remove(i) else { break };
                    self.progress.line(&format!("{}: skipped because {dep} did not finish", c.address));
                    self.emit(Event::ChangeSkipped { address: c.address.clone(), dependency: dep.clone() });
                    done.insert(c.address.clone(), false);
                    outcomes.push(Outcome {
                        address: c.address.clone(),
                        result: Err(ApplyError::Skipped { address: c.address, dependency: dep }),
                    });
                    continue;
                }
                let ready = c.depends_on.iter().all(|d| done.get(d) == Some(&true) || !planned.contains(d.as_str()));
                if !ready {
                    i += 1;
                    continue;
                }
                let Some(c) = pending.remove(i) else { break };
                let me = Arc::clone(&self);
                in_flight += 1;
                let address = c.address.clone();
                self.emit(Event::ChangeStart { address: address.clone(), action: action_name(&c) });
                let action = action_name(&c);
                actions.insert(address.clone(), action);
                let task = running.spawn(async move {
                    let result = me.change(&c).await;
                    Outcome { address: c.address.clone(), result }
                });
                tasks.insert(task.id(), address);
            }
            if in_flight == 0 {
                // Nothing runs and nothing can start: what is left waits on something that failed.
                for c in pending.drain(..) {
                    outcomes.push(Outcome {
                        address: c.address.clone(),
                        result: Err(ApplyError::Skipped { address: c.address, dependency: "a dependency".into() }),
                    });
                }
                break;
            }
            match running.join_next().await {
                Some(Ok(outcome)) => {
                    in_flight -= 1;
                    // The error itself is the caller's to report (once, with the others);
                    // progress only says that the change stopped.
                    if outcome.result.is_err() {
                        self.progress.line(&format!("{}: failed", outcome.address));
                        self.emit(Event::ChangeFailed { address: outcome.address.clone() });
                    } else {
                        let action = actions.get(&outcome.address).cloned().unwrap_or_default();
                        self.emit(Event::ChangeComplete { address: outcome.address.clone(), action });
                    }
                    done.insert(outcome.address.clone(), outcome.result.is_ok());
                    outcomes.push(outcome);
                }
                Some(Err(join)) => {
                    in_flight -= 1;
                    let address = tasks.get(&join.id()).cloned().unwrap_or_default();
                    let message = match join.try_into_panic() {
                        Ok(payload) => payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a panic".into()),
                        Err(e) => e.to_string(),
                    };
                    let e = ApplyError::Panicked { address: address.clone(), message };
                    self.progress.line(&format!("{address}: failed"));
                    self.emit(Event::ChangeFailed { address: address.clone() });
                    done.insert(address.clone(), false);
                    outcomes.push(Outcome { address, result: Err(e) });
                }
                None => break,
            }
        }
        if let Err(e) = self.forget_clusters(plan).await {
            // Every change ran; only the removal of emptied clusters from the state is lost,
            // and the next plan finds them empty again.
            self.progress.line(&format!("error: {e}"));
            for c in plan.clusters.iter().filter(|c| !c.keep) {
                outcomes.push(Outcome { address: c.address.clone(), result: Err(ApplyError::State(e.to_string())) });
            }
        }
        outcomes.sort_by(|a, b| a.address.cmp(&b.address));
        outcomes
    }

    async fn record_clusters(&self, plan: &Plan) -> Result<(), ApplyError> {
        self.ledger
            .update(Touch::Clusters, |s| {
                for c in plan.clusters.iter().filter(|c| c.keep) {
                    s.clusters.entry(c.address.clone()).or_insert_with(|| ClusterState {
                        name: c.name.clone(),
                        key: c.key.clone(),
                        provider: c.provider.clone(),
                        node_groups: BTreeMap::new(),
                    });
                }
            })
            .await
    }

    /// Clusters that are gone from the configuration leave the state once they are empty.
    async fn forget_clusters(&self, plan: &Plan) -> Result<(), ApplyError> {
        let empty =
            |s: &State, c: &&ClusterRecord| s.clusters.get(&c.address).is_some_and(|cs| cs.node_groups.is_empty());
        if !self.ledger.read(|s| plan.clusters.iter().filter(|c| !c.keep).any(|c| empty(s, &c))).await {
            return Ok(());
        }
        self.ledger
            .update(Touch::Clusters, |s| {
                let gone: Vec<String> = plan
                    .clusters
                    .iter()
                    .filter(|c| !c.keep)
                    .filter(|c| empty(s, c))
                    .map(|c| c.address.clone())
                    .collect();
                for address in gone {
                    s.clusters.remove(&address);
                }
            })
            .await
    }

    fn provider(&self, c: &Change) -> Result<Arc<dyn Provider>, ApplyError> {
        self.providers
            .get(&c.provider)
            .cloned()
            .ok_or_else(|| ApplyError::NoProvider { address: c.address.clone(), provider: c.provider.clone() })
    }

    async fn change(&self, c: &Change) -> Result<(), ApplyError> {
        self.check_interrupt()?;
        let p = self.provider(c)?;
        // Groups of the target generation that exist already (made by a run that crashed
        // before it could record them) are adopted into the state first.
        if let Some(t) = c.target() {
            let existing: Vec<&str> = t.groups.iter().filter(|g| g.exists).map(|g| g.name.as_str()).collect();
            let recorded = |s: &State, name: &str| {
                s.node_group(&c.cluster, &c.address)
                    .is_some_and(|ng| ng.generations.iter().any(|g| g.groups.iter().any(|n| n == name)))
            };
            if self.ledger.read(|s| existing.iter().any(|n| !recorded(s, n))).await {
                self.ledger
                    .update(touch(c), |s| {
                        for name in &existing {
                            record_group(s, c, t, name);
                        }
                    })
                    .await?;
            }
        }
        // Each action carries what it needs: there is nothing to look up that could be missing.
        match &c.action {
            Action::Create { target } | Action::Resume { target } => {
                self.prepare_nodes(&p, c).await?;
                self.create(&p, c, target).await
            }
            Action::Update { target } => {
                self.prepare_nodes(&p, c).await?;
                self.update(&p, c, target).await
            }
            Action::Rollout { target, retire } => self.rollout(&p, c, target, retire).await,
            Action::Delete { retire } => self.delete(&p, c, retire).await,
        }
    }

    fn err(c: &Change) -> impl Fn(ProviderError) -> ApplyError + '_ {
        move |source| ApplyError::Provider { address: c.address.clone(), source }
    }

    /// A Kubernetes API error, named as such.
    fn kube_err(c: &Change) -> impl Fn(ProviderError) -> ApplyError + '_ {
        move |mut source| {
            source.message = format!("Kubernetes API: {}", source.message);
            ApplyError::Provider { address: c.address.clone(), source }
        }
    }

    /// The Kubernetes API of the change's cluster, if it has a `kubernetes` block.
    fn kube(&self, c: &Change) -> Option<Arc<dyn Kubernetes>> {
        self.kubernetes.get(&c.cluster).cloned()
    }

    /// Before a change's nodes move: nodes of the generations it retires are tainted
    /// `PreferNoSchedule` (pods evicted from their siblings land on new nodes), and nodes of the
    /// target generation that an abandoned or rolled-back rollout cordoned or tainted are
    /// returned to service.
    async fn prepare_nodes(&self, p: &Arc<dyn Provider>, c: &Change) -> Result<(), ApplyError> {
        let Some(kube) = self.kube(c) else { return Ok(()) };
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        let target: BTreeSet<&str> =
            c.target().map(|t| t.groups.iter().map(|g| g.name.as_str()).collect()).unwrap_or_default();
        let retire: BTreeSet<&str> = c.retire().iter().map(String::as_str).collect();
        let mut outdated = BTreeSet::new();
        let mut current = BTreeSet::new();
        for g in &observed.groups {
            let ids = g.instances.iter().map(|i| i.id.clone());
            if retire.contains(g.name.as_str()) {
                outdated.extend(ids);
            } else if target.contains(g.name.as_str()) {
                current.extend(ids);
            }
        }
        let nodes = kube.nodes().await.map_err(Self::kube_err(c))?;
        self.delete_orphaned_nodes(p, c, &kube, &nodes).await?;
        if outdated.is_empty() && current.is_empty() {
            return Ok(());
        }
        for n in &nodes {
            let Some(id) = n.instance_id() else { continue };
            let patch = if c.kind() == ActionKind::Rollout && outdated.contains(id) {
                drain::outdated_patch(n)
            } else if current.contains(id) {
                drain::restore_patch(n)
            } else {
                continue;
            };
            if patch.is_empty() {
                continue;
            }
            match kube.patch_node(&n.name, &patch).await {
                Ok(()) => {}
                Err(e) if e.kind() == drydock_provider::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::kube_err(c)(e)),
            }
        }
        Ok(())
    }

    /// Marks the Nodes of the wanted groups' instances as this node group's (once each), so
    /// that a Node whose instance the cloud later terminates on its own is known as drydock's to
    /// delete.
    async fn mark_nodes(
        &self,
        c: &Change,
        kube: &Arc<dyn Kubernetes>,
        observed: &Observed,
        want: &BTreeMap<String, u32>,
        nodes: &BTreeMap<String, drydock_provider::kube::NodeInfo>,
    ) -> Result<(), ApplyError> {
        use drydock_provider::kube::NODE_GROUP_ANNOTATION;
        for i in observed.groups.iter().filter(|g| want.contains_key(&g.name)).flat_map(|g| &g.instances) {
            let Some(n) = nodes.get(&i.id) else { continue };
            if n.annotations.get(NODE_GROUP_ANNOTATION).is_some_and(|a| *a == c.address) {
                continue;
            }
            let mut patch = drydock_provider::kube::NodePatch::default();
            patch.annotations.insert(NODE_GROUP_ANNOTATION.into(), Some(c.address.clone()));
            match kube.patch_node(&n.name, &patch).await {
                Ok(()) => {}
                Err(e) if e.kind() == drydock_provider::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::kube_err(c)(e)),
            }
        }
        Ok(())
    }

    /// Gives the target generation's Nodes the node group's labels, in place: sets those that
    /// differ and removes those drydock set before that are no longer configured (the keys it
    /// owns are listed in the `drydock.dev/owned-labels` annotation; labels others set are
    /// never touched). Idempotent, so it needs no journal entry: a run killed half-way is
    /// finished by the next.
    async fn reconcile_labels(&self, p: &Arc<dyn Provider>, c: &Change, t: &Target) -> Result<(), ApplyError> {
        use drydock_provider::kube::OWNED_LABELS_ANNOTATION;
        let Some(kube) = self.kube(c) else { return Ok(()) };
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        let ids: BTreeSet<&str> = observed
            .groups
            .iter()
            .filter(|g| t.groups.iter().any(|tg| tg.name == g.name))
            .flat_map(|g| &g.instances)
            .filter(|i| i.is_live())
            .map(|i| i.id.as_str())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let want = &t.settings.labels;
        let keys = want.keys().cloned().collect::<Vec<_>>().join(",");
        for n in kube.nodes().await.map_err(Self::kube_err(c))? {
            if !n.instance_id().is_some_and(|id| ids.contains(id)) {
                continue;
            }
            let owned: BTreeSet<&str> = n
                .annotations
                .get(OWNED_LABELS_ANNOTATION)
                .map(|v| v.split(',').filter(|k| !k.is_empty()).collect())
                .unwrap_or_default();
            let mut patch = drydock_provider::kube::NodePatch::default();
            for (k, v) in want {
                if n.labels.get(k) != Some(v) {
                    patch.labels.insert(k.clone(), Some(v.clone()));
                }
            }
            for k in owned.iter().filter(|k| !want.contains_key(**k) && n.labels.contains_key(**k)) {
                patch.labels.insert(k.to_string(), None);
            }
            match n.annotations.get(OWNED_LABELS_ANNOTATION) {
                Some(v) if *v == keys => {}
                None if keys.is_empty() => {}
                _ => {
                    patch.annotations.insert(OWNED_LABELS_ANNOTATION.into(), (!keys.is_empty()).then(|| keys.clone()));
                }
            }
            if patch.is_empty() {
                continue;
            }
            let changed = patch.labels.len();
            match kube.patch_node(&n.name, &patch).await {
                Ok(()) => {}
                Err(e) if e.kind() == drydock_provider::ErrorKind::NotFound => continue,
                Err(e) => return Err(Self::kube_err(c)(e)),
            }
            if changed > 0 {
                self.progress.line(&format!("{}: labelled node {} in place ({changed} labels)", c.address, n.name));
            }
        }
        Ok(())
    }

    /// Nodes drydock cordoned for removal whose instances are gone from the cloud (or going:
    /// shutting down, waited on for at most [`NODE_GONE_WAIT_MS`]): a run was killed between
    /// terminating an instance and deleting its Node. They go now — only those: a Node drydock
    /// did not cordon is not drydock's to delete, nor one whose instance still runs.
    async fn delete_orphaned_nodes(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        kube: &Arc<dyn Kubernetes>,
        nodes: &[drydock_provider::kube::NodeInfo],
    ) -> Result<(), ApplyError> {
        use drydock_provider::kube::{CORDONED_BY_ANNOTATION, NODE_GROUP_ANNOTATION};
        let ours = |n: &drydock_provider::kube::NodeInfo| {
            n.annotations.contains_key(CORDONED_BY_ANNOTATION)
                || n.annotations.get(NODE_GROUP_ANNOTATION).is_some_and(|a| *a == c.address)
        };
        let candidates: Vec<(String, String)> = nodes
            .iter()
            .filter(|n| ours(n) && !n.is_healthy())
            .filter_map(|n| n.instance_id().map(|id| (id.to_string(), n.name.clone())))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(NODE_GONE_WAIT_MS);
        loop {
            // Any group of the lineage may hold the instance (another node group's drain).
            let observed = p.observe(&self.lineage).await.map_err(Self::err(c))?;
            let state =
                |id: &str| observed.groups.iter().flat_map(|g| &g.instances).find(|i| i.id == id).map(|i| i.state);
            let going = candidates.iter().any(|(id, _)| state(id) == Some(InstanceState::ShuttingDown));
            if going && clock.now_ms() < deadline && !self.interrupted.load(Ordering::SeqCst) {
                clock.sleep(POLL_MS).await;
                continue;
            }
            for (id, node) in &candidates {
                if matches!(state(id), None | Some(InstanceState::Terminated)) {
                    kube.delete_node(node).await.map_err(Self::kube_err(c))?;
                    self.progress.line(&format!("{}: deleted Node {node} (its instance {id} is gone)", c.address));
                }
            }
            return Ok(());
        }
    }

    /// Drains and terminates (decrementing the group) instances of the target generation
    /// beyond what the node group converges on — a rollout resumed after a crash may have
    /// launched more than it needs — so that setting the final size never leaves the cloud
    /// to pick a victim it would terminate undrained.
    async fn trim_new_group(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        group: &str,
        keep: u32,
    ) -> Result<(), ApplyError> {
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        let Some(g) = observed.groups.iter().find(|g| g.name == group) else { return Ok(()) };
        let mut live: Vec<&drydock_provider::Instance> = g.instances.iter().filter(|i| i.is_live()).collect();
        if live.len() <= keep as usize {
            return Ok(());
        }
        // Pending first, then unhealthy, then the oldest (the cloud's own order of scale-in).
        live.sort_by_key(|i| (i.state == InstanceState::Running, i.healthy, i.launched_at_ms, i.id.clone()));
        let extra: Vec<String> = live[..live.len() - keep as usize].iter().map(|i| i.id.clone()).collect();
        let removed = self.drain_instances(p, c, group, &extra).await?;
        self.check_interrupt()?;
        let now = p.clock().now_ms();
        let jid = self
            .ledger
            .begin("terminate_instances", &c.address, group, serde_json::json!({ "instances": extra }), now)
            .await?;
        p.terminate_instances(group, &extra, true).await.map_err(Self::err(c))?;
        crash_point();
        self.ledger.settle(jid, None, |_| {}).await?;
        self.delete_nodes(p, c, &removed).await
    }

    /// Cordons and drains the nodes of these instances (all at once), before they are
    /// terminated. Journalled: a run killed mid-drain leaves an unsettled entry, and the next
    /// run drains the same nodes again. A drain that fails returns every node of the wave to
    /// service (the old capacity stays intact) and halts the change. Returns the nodes drained,
    /// by instance, for their Node objects to be deleted once the instances are gone.
    async fn drain_instances(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        group: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, ApplyError> {
        // An instance without a Node has nothing to drain — unless its Node registers while the
        // others drain (a booting instance): the nodes are looked at again until every one of
        // these instances that has a Node has been drained.
        let mut drained: Vec<(String, String)> = vec![];
        loop {
            let left: Vec<String> = ids.iter().filter(|id| !drained.iter().any(|(d, _)| d == *id)).cloned().collect();
            let batch = self.drain_batch(p, c, group, &left).await?;
            if batch.is_empty() {
                return Ok(drained);
            }
            drained.extend(batch);
        }
    }

    /// One pass of [`Executor::drain_instances`]: the instances of `ids` that have a Node now.
    async fn drain_batch(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        group: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, ApplyError> {
        let Some(kube) = self.kube(c) else { return Ok(vec![]) };
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let settings = c.target().map(|t| t.settings.drain.clone()).unwrap_or_default();
        let nodes = drain::nodes_by_instance(&kube.nodes().await.map_err(Self::kube_err(c))?);
        let targets: Vec<(String, drydock_provider::kube::NodeInfo)> =
            ids.iter().filter_map(|id| nodes.get(id).map(|n| (id.clone(), n.clone()))).collect();
        if targets.is_empty() {
            // Instances that never registered a Node have nothing to drain.
            return Ok(vec![]);
        }
        self.check_interrupt()?;
        let clock = p.clock();
        let names: Vec<&str> = targets.iter().map(|(_, n)| n.name.as_str()).collect();
        let detail = serde_json::json!({ "instances": ids, "nodes": names });
        let jid = self.ledger.begin("drain", &c.address, group, detail, clock.now_ms()).await?;
        for (id, n) in &targets {
            let patch = drain::cordon_patch(n);
            if !patch.is_empty() {
                match kube.patch_node(&n.name, &patch).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == drydock_provider::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Self::kube_err(c)(e)),
                }
            }
            self.progress.line(&format!("{}: cordoned node {} ({id})", c.address, n.name));
            self.emit(Event::NodeCordoned { address: c.address.clone(), instance: id.clone(), node: n.name.clone() });
        }
        crash_point();
        let lines: Arc<dyn DrainProgress> = Arc::new(DrainLines {
            address: c.address.clone(),
            progress: self.progress.clone(),
            interrupted: self.interrupted.clone(),
        });
        let mut drains = tokio::task::JoinSet::new();
        for (_, n) in &targets {
            let (kube, clock, lines, node, mut settings) =
                (kube.clone(), clock.clone(), lines.clone(), n.name.clone(), settings.clone());
            // A Node that is not Ready has no kubelet to stop its pods gracefully: a short
            // grace, and pods already terminating count as gone.
            let reach = if n.is_healthy() { drain::Reach::Reachable } else { drain::Reach::Unreachable };
            if reach == drain::Reach::Unreachable {
                settings.grace_period_s = Some(1);
            }
            drains.spawn(async move {
                let result = drain::drain_node(&kube, &clock, &node, &settings, reach, lines.as_ref()).await;
                (node, result)
            });
        }
        let mut failure: Option<ApplyError> = None;
        let mut drained = vec![];
        while let Some(joined) = drains.join_next().await {
            match joined {
                Ok((node, Ok(d))) => {
                    let forced = if d.forced.is_empty() {
                        String::new()
                    } else {
                        format!(", {} force-deleted: {}", d.forced.len(), d.forced.join(", "))
                    };
                    let left = if d.left.is_empty() {
                        String::new()
                    } else {
                        format!("; still terminating when its instance goes: {}", d.left.join(", "))
                    };
                    self.progress.line(&format!(
                        "{}: drained node {node} in {} ({} evicted{forced}){left}",
                        c.address,
                        drydock_model::format_duration(d.took_ms),
                        d.evicted.len()
                    ));
                    self.emit(Event::NodeDrained {
                        address: c.address.clone(),
                        node: node.clone(),
                        evicted: d.evicted.len(),
                        force_deleted: d.forced.len(),
                        took_ms: d.took_ms,
                    });
                    drained.push(d);
                }
                Ok((_, Err(e))) => {
                    let e = match e {
                        DrainError::TimedOut { report, .. } | DrainError::Misconfigured { report, .. } => {
                            ApplyError::Halted { address: c.address.clone(), report }
                        }
                        DrainError::Api(e) => Self::kube_err(c)(e),
                        DrainError::Interrupted => ApplyError::Interrupted,
                    };
                    failure.get_or_insert(e);
                    // The other drains stop at their next look.
                    drains.abort_all();
                }
                Err(join) if join.is_cancelled() => {}
                Err(join) => {
                    failure
                        .get_or_insert(ApplyError::Panicked { address: c.address.clone(), message: join.to_string() });
                }
            }
        }
        if let Some(e) = failure {
            // Every node of the wave goes back into service: the old capacity stays whole.
            for (_, n) in &targets {
                let fresh = kube.nodes().await.ok().and_then(|all| all.into_iter().find(|x| x.name == n.name));
                if let Some(fresh) = fresh {
                    let patch = drain::restore_patch(&fresh);
                    if !patch.is_empty() && kube.patch_node(&n.name, &patch).await.is_ok() {
                        self.progress.line(&format!("{}: uncordoned node {}", c.address, n.name));
                    }
                }
            }
            self.ledger.settle(jid, None, |_| {}).await?;
            return Err(e);
        }
        let took: Vec<u64> = drained.iter().map(|d| d.took_ms).collect();
        self.ledger
            .settle(jid, Some(touch(c)), |s| {
                if let Some(ng) = s.clusters.get_mut(&c.cluster).and_then(|cs| cs.node_groups.get_mut(&c.address)) {
                    ng.drain_times_ms.extend(took);
                    let excess = ng.drain_times_ms.len().saturating_sub(BOOT_SAMPLES);
                    ng.drain_times_ms.drain(..excess);
                }
            })
            .await?;
        Ok(targets.into_iter().map(|(id, n)| (id, n.name)).collect())
    }

    /// Deletes the Node objects of removed instances once the instances are gone (a kubelet
    /// still running would register its Node again), waiting at most [`NODE_GONE_WAIT_MS`].
    /// A Node some other controller deleted first is fine.
    async fn delete_nodes(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        removed: &[(String, String)],
    ) -> Result<(), ApplyError> {
        let Some(kube) = self.kube(c) else { return Ok(()) };
        if removed.is_empty() {
            return Ok(());
        }
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(NODE_GONE_WAIT_MS);
        loop {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let present: BTreeSet<&str> = observed
                .groups
                .iter()
                .flat_map(|g| &g.instances)
                .filter(|i| i.state != InstanceState::Terminated)
                .map(|i| i.id.as_str())
                .collect();
            let waiting = removed.iter().any(|(id, _)| present.contains(id.as_str()));
            if !waiting || clock.now_ms() >= deadline || self.interrupted.load(Ordering::SeqCst) {
                for (id, node) in removed {
                    if present.contains(id.as_str()) {
                        self.progress.line(&format!(
                            "{}: kept Node {node}: its instance {id} is still shutting down",
                            c.address
                        ));
                        continue;
                    }
                    kube.delete_node(node).await.map_err(Self::kube_err(c))?;
                    self.progress.line(&format!("{}: deleted Node {node} ({id})", c.address));
                }
                return Ok(());
            }
            clock.sleep(POLL_MS).await;
        }
    }

    fn ownership(&self, c: &Change, t: &Target) -> Ownership {
        Ownership {
            lineage: self.lineage.clone(),
            cluster: c.owner_cluster.clone(),
            node_group: c.owner_node_group.clone(),
            generation: t.generation.clone(),
        }
    }

    /// Creates a group (idempotently) and records it as part of the target generation.
    async fn create_group(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        t: &Target,
        name: &str,
        settings: &GroupSettings,
    ) -> Result<(), ApplyError> {
        self.check_interrupt()?;
        let now = p.clock().now_ms();
        let detail = serde_json::json!({ "generation": t.generation, "desired": settings.desired });
        let id = self.ledger.begin("create_group", &c.address, name, detail, now).await?;
        let req = CreateGroup {
            name: name.to_string(),
            ownership: self.ownership(c, t),
            spec: t.spec.clone(),
            settings: settings.clone(),
            join: self.join_secrets(c, t)?,
        };
        p.create_group(&req).await.map_err(Self::err(c))?;
        crash_point();
        self.progress.line(&format!("{}: created group {name}", c.address));
        self.ledger.settle(id, Some(touch(c)), |s| record_group(s, c, t, name)).await
    }

    /// The join secrets the target's groups launch with: the configuration's, which must be
    /// those the plan was made with (their digest).
    fn join_secrets(&self, c: &Change, t: &Target) -> Result<Option<JoinSecrets>, ApplyError> {
        let secrets = self.join.get(&c.address);
        let digest = secrets.map(JoinSecrets::digest);
        if digest != t.join_digest {
            return Err(ApplyError::Halted {
                address: c.address.clone(),
                report:
                    "the bootstrap's join secrets (token, CA hashes, certificate key) differ from those the plan was \
                         made with: plan again"
                        .into(),
            });
        }
        Ok(secrets.cloned())
    }

    /// Gives the target's groups the join secrets the plan names where they launch with
    /// others (a rotated token): a new launch version of the same generation, no node replaced.
    async fn update_join(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        t: &Target,
        observed: &Observed,
    ) -> Result<(), ApplyError> {
        let Some(want) = &t.join_digest else { return Ok(()) };
        for g in &t.groups {
            let Some(og) = observed.groups.iter().find(|o| o.name == g.name) else { continue };
            if og.join_digest.as_ref() == Some(want) {
                continue;
            }
            let Some(secrets) = self.join_secrets(c, t)? else { return Ok(()) };
            self.check_interrupt()?;
            let now = p.clock().now_ms();
            let detail = serde_json::json!({ "join": want });
            let id = self.ledger.begin("update_join", &c.address, &g.name, detail, now).await?;
            p.update_join(&g.name, &self.ownership(c, t), &t.spec, &secrets).await.map_err(Self::err(c))?;
            crash_point();
            self.ledger.settle(id, None, |_| {}).await?;
            self.progress.line(&format!(
                "{}: {} launches new nodes with the rotated join secrets ({want}); running nodes are kept",
                c.address, g.name
            ));
        }
        Ok(())
    }

    async fn create(&self, p: &Arc<dyn Provider>, c: &Change, t: &Target) -> Result<(), ApplyError> {
        self.ledger.update(touch(c), |s| ng_entry(s, c, t).unfinished = true).await?;
        let mut want = BTreeMap::new();
        let observed = if t.groups.iter().any(|g| g.exists) {
            Some(self.observe(p, c).await.map_err(Self::err(c))?)
        } else {
            None
        };
        for g in &t.groups {
            match &observed {
                // Made by an interrupted run: it may still have a rollout's sizes.
                Some(o) if g.exists => self.resize(p, c, t, g, o).await?,
                _ => self.create_group(p, c, t, &g.name, &g.settings).await?,
            }
            want.insert(g.name.clone(), g.settings.desired);
        }
        self.ledger.update(touch(c), |s| set_settings(s, c, t)).await?;
        self.wait_healthy(p, c, &want, t.settings.rollout.health_timeout_ms).await?;
        self.reconcile_labels(p, c, t).await?;
        self.ledger.update(touch(c), |s| finish(s, c, t)).await?;
        self.progress.line(&format!("{}: {} healthy", c.address, plural(c.replicas as usize, "node")));
        Ok(())
    }

    async fn update(&self, p: &Arc<dyn Provider>, c: &Change, t: &Target) -> Result<(), ApplyError> {
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        for g in &t.groups {
            self.resize(p, c, t, g, &observed).await?;
        }
        self.update_join(p, c, t, &observed).await?;
        self.reconcile_labels(p, c, t).await?;
        self.ledger.update(touch(c), |s| finish(s, c, t)).await?;
        self.progress.line(&format!("{}: updated in place", c.address));
        Ok(())
    }

    /// Gives an existing group its target settings, leaving an unpinned desired capacity
    /// where the autoscaler put it (clamped to the new size).
    async fn resize(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        t: &Target,
        g: &TargetGroup,
        observed: &Observed,
    ) -> Result<(), ApplyError> {
        {
            self.check_interrupt()?;
            let mut settings = g.settings.clone();
            if c.role == Role::Worker && t.settings.desired.is_none() {
                // The autoscaler owns desired inside min..max: keep it, clamped to the new size.
                if let Some(og) = observed.groups.iter().find(|o| o.name == g.name) {
                    settings.desired = og.settings.desired.clamp(settings.min, settings.max);
                }
            }
            let now = p.clock().now_ms();
            let id = self
                .ledger
                .begin("update_group", &c.address, &g.name, serde_json::to_value(&settings).unwrap_or_default(), now)
                .await?;
            p.update_group(&g.name, &settings).await.map_err(Self::err(c))?;
            crash_point();
            self.ledger.settle(id, Some(touch(c)), |s| set_settings(s, c, t)).await?;
        }
        Ok(())
    }

    async fn delete_group(&self, p: &Arc<dyn Provider>, c: &Change, name: &str) -> Result<(), ApplyError> {
        self.check_interrupt()?;
        let now = p.clock().now_ms();
        let id = self.ledger.begin("delete_group", &c.address, name, serde_json::Value::Null, now).await?;
        p.delete_group(name).await.map_err(Self::err(c))?;
        crash_point();
        self.progress.line(&format!("{}: deleted group {name}", c.address));
        self.ledger.settle(id, Some(touch(c)), |s| forget_group(s, c, name)).await
    }

    async fn delete(&self, p: &Arc<dyn Provider>, c: &Change, retire: &[String]) -> Result<(), ApplyError> {
        let mut names: BTreeSet<String> = retire.iter().cloned().collect();
        // Groups the state records but the plan did not see (a crash between observe and now).
        self.ledger
            .read(|s| {
                if let Some(ng) = s.node_group(&c.cluster, &c.address) {
                    names.extend(ng.generations.iter().flat_map(|g| g.groups.iter().cloned()));
                }
            })
            .await;
        // The Node objects of the instances that go (destroy does not drain: see docs/kubernetes.md).
        let mut removed = vec![];
        if let Some(kube) = self.kube(c) {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let ids: BTreeSet<&str> = observed
                .groups
                .iter()
                .filter(|g| names.contains(&g.name))
                .flat_map(|g| &g.instances)
                .map(|i| i.id.as_str())
                .collect();
            if !ids.is_empty() {
                let nodes = kube.nodes().await.map_err(Self::kube_err(c))?;
                for n in nodes {
                    if let Some(id) = n.instance_id().filter(|id| ids.contains(id)) {
                        removed.push((id.to_string(), n.name.clone()));
                    }
                }
            }
        }
        for name in names {
            self.delete_group(p, c, &name).await?;
        }
        self.delete_nodes(p, c, &removed).await?;
        self.ledger
            .update(touch(c), |s| {
                if let Some(cs) = s.clusters.get_mut(&c.cluster) {
                    cs.node_groups.remove(&c.address);
                }
            })
            .await?;
        self.progress.line(&format!("{}: deleted", c.address));
        Ok(())
    }

    /// Terminates old instances, decrementing their groups (so the cloud does not replace them),
    /// each drained first in a cluster with a Kubernetes API. Returns the drained nodes by
    /// instance.
    async fn remove_old(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        ids: &[String],
        role: Role,
    ) -> Result<Vec<(String, String)>, ApplyError> {
        let mut removed = vec![];
        if ids.is_empty() {
            return Ok(removed);
        }
        self.check_interrupt()?;
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in ids {
            if let Some(g) = c
                .retire()
                .iter()
                .filter_map(|n| observed.groups.iter().find(|g| &g.name == n))
                .find(|g| g.instances.iter().any(|i| &i.id == id))
            {
                by_group.entry(g.name.clone()).or_default().push(id.clone());
            }
            // An instance already gone needs no removal.
        }
        for (group, ids) in by_group {
            if role == Role::ControlPlane {
                // A control-plane member is its own group: the member goes with its group,
                // and only while the members left keep a majority healthy (a member may
                // have died since the plan was made).
                self.wait_for_quorum(p, c, &group).await?;
                let members = self.etcd_members_of(c, &ids).await?;
                self.wait_etcd_removable(p, c, &members).await?;
                removed.extend(self.drain_instances(p, c, &group, &ids).await?);
                self.remove_etcd_members(p, c, &c.address, &group, &members).await?;
                self.delete_group(p, c, &group).await?;
                self.terminated(c, &group, &ids);
                continue;
            }
            self.check_interrupt()?;
            removed.extend(self.drain_instances(p, c, &group, &ids).await?);
            self.check_interrupt()?;
            let now = p.clock().now_ms();
            let jid = self
                .ledger
                .begin("terminate_instances", &c.address, &group, serde_json::json!({ "instances": ids }), now)
                .await?;
            p.terminate_instances(&group, &ids, true).await.map_err(Self::err(c))?;
            crash_point();
            self.ledger.settle(jid, None, |_| {}).await?;
            self.terminated(c, &group, &ids);
        }
        Ok(removed)
    }

    fn terminated(&self, c: &Change, group: &str, ids: &[String]) {
        for id in ids {
            self.emit(Event::NodeTerminated {
                address: c.address.clone(),
                group: group.to_string(),
                instance: id.clone(),
            });
        }
    }

    async fn rollout(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        t: &Target,
        retire: &[String],
    ) -> Result<(), ApplyError> {
        if c.role == Role::ControlPlane {
            self.etcd_preflight(c).await?;
        }
        self.ledger.update(touch(c), |s| ng_entry(s, c, t).unfinished = true).await?;
        let timeout = t.settings.rollout.health_timeout_ms;
        self.prepare_nodes(p, c).await?;
        let mut removed = vec![];
        let observed = self.observe(p, c).await.map_err(Self::err(c))?;
        // Old groups may shrink to nothing while their instances are removed.
        if c.role == Role::Worker {
            for name in retire {
                if let Some(og) = observed.groups.iter().find(|g| &g.name == name) {
                    if og.settings.min > 0 {
                        let mut s = og.settings.clone();
                        s.min = 0;
                        let now = p.clock().now_ms();
                        let id = self
                            .ledger
                            .begin("update_group", &c.address, name, serde_json::json!({ "min": 0 }), now)
                            .await?;
                        p.update_group(name, &s).await.map_err(Self::err(c))?;
                        crash_point();
                        self.ledger.settle(id, None, |_| {}).await?;
                    }
                }
            }
        }
        let total_waves = c.waves.len();
        // Control-plane members still to create (a resumed rollout has made some already),
        // and those that exist.
        let mut members = t.groups.iter().filter(|g| !g.exists);
        let mut made: BTreeSet<String> = t.groups.iter().filter(|g| g.exists).map(|g| g.name.clone()).collect();
        // The new group's desired capacity as the waves raise it.
        let new_group = &t.groups[0];
        let mut new_desired = match observed.groups.iter().find(|g| g.name == new_group.name) {
            Some(g) => g.settings.desired,
            None => 0,
        };
        let budget = self.budgets.lock().unwrap_or_else(|e| e.into_inner()).get(&c.cluster).cloned();
        let waves: Result<(), ApplyError> = async {
            for w in &c.waves {
                self.check_interrupt()?;
                // The wave's nodes count against the cluster's budget until the wave is done.
                let replacing = (w.add as usize).max(w.remove_first.len() + w.remove_after.len()).max(1);
                let _permit = match &budget {
                    Some((sem, total)) => {
                        // A wave bigger than the whole budget (the planner keeps them within it)
                        // takes all of it rather than waiting forever.
                        let n = replacing.min(*total).min(u32::MAX as usize) as u32;
                        Some(Arc::clone(sem).acquire_many_owned(n).await.map_err(|_| ApplyError::Interrupted)?)
                    }
                    None => None,
                };
                self.progress.line(&format!(
                    "{}: wave {}/{}: +{} -{} (floor {}, ceiling {})",
                    c.address,
                    w.index,
                    total_waves,
                    w.add,
                    w.remove_first.len() + w.remove_after.len(),
                    w.floor,
                    w.ceiling
                ));
                self.emit(Event::WaveStart {
                    address: c.address.clone(),
                    wave: w.index,
                    waves: total_waves,
                    add: w.add,
                    remove: w.remove_first.len() + w.remove_after.len(),
                    floor: w.floor,
                    ceiling: w.ceiling,
                });
                self.keep_floor(p, c, &w.remove_first, w.floor, timeout).await?;
                removed.extend(self.remove_old(p, c, &w.remove_first, c.role).await?);
                let mut want = BTreeMap::new();
                if w.add > 0 {
                    match c.role {
                        Role::ControlPlane => {
                            // One new member group per node added.
                            for _ in 0..w.add {
                                let Some(g) = members.next() else { break };
                                self.create_group(p, c, t, &g.name, &g.settings).await?;
                                made.insert(g.name.clone());
                            }
                            // Every member of the target made so far (by this run or by one that
                            // was killed after creating it) is healthy before an old one goes:
                            // a member created just before a crash may still be joining.
                            for name in &made {
                                want.insert(name.clone(), 1);
                            }
                        }
                        Role::Worker => {
                            new_desired += w.add;
                            let mut s = new_group.settings.clone();
                            s.min = 0;
                            s.max = s.max.max(new_desired);
                            s.desired = new_desired;
                            if observed.groups.iter().any(|g| g.name == new_group.name)
                                || self.exists(p, c, &new_group.name).await?
                            {
                                let now = p.clock().now_ms();
                                let id = self
                                    .ledger
                                    .begin(
                                        "update_group",
                                        &c.address,
                                        &new_group.name,
                                        serde_json::json!({ "desired": new_desired }),
                                        now,
                                    )
                                    .await?;
                                p.update_group(&new_group.name, &s).await.map_err(Self::err(c))?;
                                crash_point();
                                self.ledger
                                    .settle(id, Some(touch(c)), |st| record_group(st, c, t, &new_group.name))
                                    .await?;
                            } else {
                                self.create_group(p, c, t, &new_group.name, &s).await?;
                            }
                            want.insert(new_group.name.clone(), new_desired);
                        }
                    }
                    self.wait_healthy(p, c, &want, timeout).await?;
                }
                self.keep_floor(p, c, &w.remove_after, w.floor, timeout).await?;
                removed.extend(self.remove_old(p, c, &w.remove_after, c.role).await?);
            }
            Ok(())
        }
        .await;
        if let Err(e) = waves {
            // The Nodes of instances already terminated go all the same (best effort: the
            // error reported is the rollout's).
            if !removed.is_empty() {
                let _ = self.delete_nodes(p, c, &removed).await;
            }
            return Err(e);
        }
        // Control-plane members the waves did not reach (none are expected) are created too.
        if c.role == Role::ControlPlane {
            for g in members {
                self.create_group(p, c, t, &g.name, &g.settings).await?;
            }
        }
        // A node group with no nodes had no wave to create its new group: it is created now,
        // empty, before the old groups go, so that the node group always has a group.
        if c.role == Role::Worker && !self.exists(p, c, &new_group.name).await? {
            let mut s = new_group.settings.clone();
            s.desired = c.replicas.clamp(s.min, s.max);
            self.create_group(p, c, t, &new_group.name, &s).await?;
        }
        // Old instances the plan did not list (the cloud replaced a crashed one during the
        // rollout) are drained and removed like the others before their groups go: deleting a
        // group would terminate them with their pods.
        if c.role == Role::Worker {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let leftover: Vec<String> = observed
                .groups
                .iter()
                .filter(|g| retire.contains(&g.name))
                .flat_map(|g| g.instances.iter().filter(|i| i.is_live()).map(|i| i.id.clone()))
                .collect();
            if !leftover.is_empty() {
                self.progress.line(&format!(
                    "{}: removing {} the old generation launched during the rollout",
                    c.address,
                    plural(leftover.len(), "node")
                ));
                if let Some(floor) = c.waves.last().map(|w| w.floor) {
                    self.keep_floor(p, c, &leftover, floor, timeout).await?;
                }
                removed.extend(self.remove_old(p, c, &leftover, c.role).await?);
            }
        }
        // Their instances gone, the drained nodes' Node objects go too, and any a killed run
        // left behind.
        self.delete_nodes(p, c, &removed).await?;
        if let Some(kube) = self.kube(c) {
            let nodes = kube.nodes().await.map_err(Self::kube_err(c))?;
            self.delete_orphaned_nodes(p, c, &kube, &nodes).await?;
        }
        // The old generations are empty now: delete their groups.
        for name in retire {
            let still = self.observe(p, c).await.map_err(Self::err(c))?.groups.iter().any(|g| &g.name == name);
            if still {
                self.delete_group(p, c, name).await?;
            } else {
                self.ledger.update(touch(c), |s| forget_group(s, c, name)).await?;
            }
        }
        // The new group takes its final sizes (drydock, not the cloud, picks and drains any
        // instance too many).
        if c.role == Role::Worker {
            let mut s = new_group.settings.clone();
            s.desired = c.replicas.clamp(s.min, s.max);
            self.trim_new_group(p, c, &new_group.name, s.desired).await?;
            let now = p.clock().now_ms();
            let id = self
                .ledger
                .begin("update_group", &c.address, &new_group.name, serde_json::to_value(&s).unwrap_or_default(), now)
                .await?;
            p.update_group(&new_group.name, &s).await.map_err(Self::err(c))?;
            crash_point();
            self.ledger.settle(id, Some(touch(c)), |st| record_group(st, c, t, &new_group.name)).await?;
        }
        self.reconcile_labels(p, c, t).await?;
        self.ledger.update(touch(c), |s| finish(s, c, t)).await?;
        self.progress.line(&format!("{}: rolled out ({} replaced)", c.address, plural(c.nodes_replaced(), "node")));
        Ok(())
    }

    /// Terminates one instance without decrementing its group, so the cloud launches a
    /// replacement (remediation by `drydock watch`). Journalled like every mutation. In a
    /// cluster with a Kubernetes API the node is cordoned and drained first (a node that is
    /// not Ready gets a 1 s grace and is forced after at most a minute: its kubelet cannot
    /// stop pods anyway), and its Node object is deleted once the instance is gone.
    pub async fn replace_instance(&self, r: &crate::watch::Replacement) -> Result<(), ApplyError> {
        let (provider, address, group, id) = (&r.provider, &r.address, &r.group, &r.id);
        let p = self
            .providers
            .get(provider)
            .cloned()
            .ok_or_else(|| ApplyError::NoProvider { address: address.to_string(), provider: provider.to_string() })?;
        let kerr = |mut source: ProviderError| {
            source.message = format!("Kubernetes API: {}", source.message);
            ApplyError::Provider { address: address.to_string(), source }
        };
        let kube = self.kubernetes.get(&r.cluster).cloned();
        let mut node_name = None;
        if let Some(kube) = &kube {
            let nodes = drain::nodes_by_instance(&kube.nodes().await.map_err(kerr)?);
            if let Some(n) = nodes.get(id) {
                let now = p.clock().now_ms();
                let detail = serde_json::json!({ "instances": [id], "nodes": [n.name] });
                let jid = self.ledger.begin("drain", address, group, detail, now).await?;
                let patch = drain::cordon_patch(n);
                if !patch.is_empty() {
                    kube.patch_node(&n.name, &patch).await.map_err(kerr)?;
                }
                let mut settings = r.drain.clone();
                let reach = if n.is_healthy() { drain::Reach::Reachable } else { drain::Reach::Unreachable };
                if reach == drain::Reach::Unreachable {
                    settings.grace_period_s = Some(1);
                    settings.on_timeout = drydock_model::OnTimeout::Force;
                    settings.timeout_ms = settings.timeout_ms.min(60_000);
                }
                let lines = DrainLines {
                    address: address.to_string(),
                    progress: self.progress.clone(),
                    interrupted: self.interrupted.clone(),
                };
                let drained = drain::drain_node(kube, &p.clock(), &n.name, &settings, reach, &lines).await;
                if let Err(e) = drained {
                    let patch = drain::restore_patch(n);
                    if !patch.is_empty() {
                        let _ = kube.patch_node(&n.name, &patch).await;
                    }
                    self.ledger.settle(jid, None, |_| {}).await?;
                    return Err(match e {
                        DrainError::TimedOut { report, .. } | DrainError::Misconfigured { report, .. } => {
                            ApplyError::Halted { address: address.to_string(), report }
                        }
                        DrainError::Api(e) => kerr(e),
                        DrainError::Interrupted => ApplyError::Interrupted,
                    });
                }
                self.ledger.settle(jid, None, |_| {}).await?;
                node_name = Some(n.name.clone());
            }
        }
        // A control-plane member's etcd member goes after its drain, before its machine.
        if let (Some(etcd), Some(node)) = (self.etcd.get(&r.cluster), &node_name) {
            let eerr = |e: ProviderError| ApplyError::Provider {
                address: address.to_string(),
                source: ProviderError { message: format!("etcd: {}", e.message), ..e },
            };
            let health = etcd.health().await.map_err(eerr)?;
            if let Some(m) = health.by_name(node) {
                let id = m.member.id;
                if let Err(why) = health.check_remove(id) {
                    return Err(ApplyError::Halted {
                        address: address.to_string(),
                        report: format!("etcd member {node} stays, and so does its machine: {why}"),
                    });
                }
                if health.leader == Some(id) {
                    if let Some(to) = health.leadership_candidate(id) {
                        etcd.move_leader(to).await.map_err(eerr)?;
                    }
                }
                let now = p.clock().now_ms();
                let detail = serde_json::json!({ "member": node, "id": format!("{id:x}") });
                let jid = self.ledger.begin("etcd_remove_member", address, group, detail, now).await?;
                etcd.remove_member(id).await.map_err(eerr)?;
                crash_point();
                self.ledger.settle(jid, None, |_| {}).await?;
                self.progress.line(&format!("{address}: removed etcd member {node} ({id:x})"));
            }
        }
        let now = p.clock().now_ms();
        let jid = self
            .ledger
            .begin(
                "terminate_instances",
                address,
                group,
                serde_json::json!({ "instances": [id], "replace": true }),
                now,
            )
            .await?;
        p.terminate_instances(group, &[id.to_string()], false)
            .await
            .map_err(|source| ApplyError::Provider { address: address.to_string(), source })?;
        crash_point();
        self.ledger.settle(jid, None, |_| {}).await?;
        // The Node goes once its instance has (a kubelet still running would register it again).
        if let (Some(kube), Some(node)) = (kube, node_name) {
            let clock = p.clock();
            let deadline = clock.now_ms().saturating_add(NODE_GONE_WAIT_MS);
            loop {
                let observed = p
                    .observe(&self.lineage)
                    .await
                    .map_err(|source| ApplyError::Provider { address: address.to_string(), source })?;
                let present = observed
                    .groups
                    .iter()
                    .flat_map(|g| &g.instances)
                    .any(|i| &i.id == id && i.state != InstanceState::Terminated);
                if !present {
                    kube.delete_node(&node).await.map_err(kerr)?;
                    self.progress.line(&format!("{address}: deleted Node {node} ({id})"));
                    break;
                }
                if clock.now_ms() >= deadline || self.interrupted.load(Ordering::SeqCst) {
                    break;
                }
                clock.sleep(POLL_MS).await;
            }
        }
        Ok(())
    }

    /// Before a control-plane rollout starts: every etcd member started and promoted, no
    /// alarm, every member healthy. Otherwise nothing is touched and the report says why.
    async fn etcd_preflight(&self, c: &Change) -> Result<(), ApplyError> {
        let Some(etcd) = self.etcd.get(&c.cluster) else { return Ok(()) };
        let health = etcd.health().await.map_err(|e| etcd_err(c, e))?;
        let problems = health.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(ApplyError::Halted {
            address: c.address.clone(),
            report: format!(
                "etcd preflight failed, so the control-plane rollout did not start: {}. Fix etcd (or let `drydock watch` \
                 remove members whose machines are gone), then run `drydock apply` again",
                problems.join("; ")
            ),
        })
    }

    /// The etcd members (id, name) of control-plane instances, found through their Nodes
    /// (kubeadm names a member after its Node). Instances without a Node or a member have none.
    async fn etcd_members_of(&self, c: &Change, ids: &[String]) -> Result<Vec<(u64, String)>, ApplyError> {
        let (Some(etcd), Some(kube)) = (self.etcd.get(&c.cluster), self.kube(c)) else { return Ok(vec![]) };
        let nodes = drain::nodes_by_instance(&kube.nodes().await.map_err(Self::kube_err(c))?);
        let health = etcd.health().await.map_err(|e| etcd_err(c, e))?;
        let mut out = vec![];
        for id in ids {
            let Some(n) = nodes.get(id) else {
                self.progress.line(&format!(
                    "{}: instance {id} has no Node, so no etcd member is known for it (watch removes a member whose \
                     machine is gone)",
                    c.address
                ));
                continue;
            };
            if let Some(m) = health.by_name(&n.name) {
                out.push((m.member.id, m.member.name.clone()));
            }
        }
        Ok(out)
    }

    /// Waits (up to the rollout's health timeout) until each of `members` may be removed by
    /// Cluster API's rules (others started, promoted and healthy, no alarm, quorum kept, never
    /// the last); halts with the reason otherwise.
    async fn wait_etcd_removable(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        members: &[(u64, String)],
    ) -> Result<(), ApplyError> {
        let Some(etcd) = self.etcd.get(&c.cluster) else { return Ok(()) };
        if members.is_empty() {
            return Ok(());
        }
        let timeout = c.target().map_or(600_000, |t| t.settings.rollout.health_timeout_ms);
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(timeout);
        loop {
            let health = etcd.health().await.map_err(|e| etcd_err(c, e))?;
            let blocked: Vec<String> = members
                .iter()
                .filter_map(|(id, name)| health.check_remove(*id).err().map(|why| format!("etcd member {name}: {why}")))
                .collect();
            if blocked.is_empty() {
                return Ok(());
            }
            self.check_interrupt()?;
            if clock.now_ms() >= deadline {
                return Err(ApplyError::Halted {
                    address: c.address.clone(),
                    report: format!(
                        "{}; the member stays and its node is kept: run `drydock apply` again once etcd is healthy",
                        blocked.join("; ")
                    ),
                });
            }
            self.progress.line(&format!(
                "{}: waiting for etcd before removing a member: {}",
                c.address,
                blocked.join("; ")
            ));
            clock.sleep(POLL_MS).await;
        }
    }

    /// Removes etcd members after their node's drain and before their instance goes:
    /// leadership moves off a leader first; a member already gone is fine; each removal is
    /// journalled, so a run killed between it and the termination resumes.
    async fn remove_etcd_members(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        address: &str,
        group: &str,
        members: &[(u64, String)],
    ) -> Result<(), ApplyError> {
        let Some(etcd) = self.etcd.get(&c.cluster) else { return Ok(()) };
        for (id, name) in members {
            self.check_interrupt()?;
            // Checked again after the drain (a member may have died meanwhile).
            self.wait_etcd_removable(p, c, &[(*id, name.clone())]).await?;
            let health = etcd.health().await.map_err(|e| etcd_err(c, e))?;
            if health.leader == Some(*id) {
                if let Some(to) = health.leadership_candidate(*id) {
                    etcd.move_leader(to).await.map_err(|e| etcd_err(c, e))?;
                    let to_name = health
                        .members
                        .iter()
                        .find(|m| m.member.id == to)
                        .map_or(String::new(), |m| m.member.name.clone());
                    self.progress.line(&format!("{address}: moved etcd leadership from {name} to {to_name}"));
                }
            }
            let now = p.clock().now_ms();
            let detail = serde_json::json!({ "member": name, "id": format!("{id:x}") });
            let jid = self.ledger.begin("etcd_remove_member", address, group, detail, now).await?;
            let was = etcd.remove_member(*id).await.map_err(|e| etcd_err(c, e))?;
            crash_point();
            self.ledger.settle(jid, None, |_| {}).await?;
            if was {
                self.progress.line(&format!("{address}: removed etcd member {name} ({id:x})"));
            }
        }
        Ok(())
    }

    /// Removes the etcd member `name` (id `id`) whose machine is gone (`drydock watch`), if
    /// the rules allow it now.
    pub async fn remove_dead_etcd_member(&self, r: &crate::watch::EtcdCleanup) -> Result<(), ApplyError> {
        let Some(etcd) = self.etcd.get(&r.cluster) else { return Ok(()) };
        let health: EtcdHealth = etcd.health().await.map_err(|e| ApplyError::Provider {
            address: r.cluster.clone(),
            source: ProviderError { message: format!("etcd: {}", e.message), ..e },
        })?;
        if let Err(why) = health.check_remove(r.id) {
            return Err(ApplyError::Halted {
                address: r.cluster.clone(),
                report: format!("etcd member {} stays: {why}", r.name),
            });
        }
        let now = self.providers.values().next().map_or(0, |p| p.clock().now_ms());
        let detail = serde_json::json!({ "member": r.name, "id": format!("{:x}", r.id), "why": r.why });
        let jid = self.ledger.begin("etcd_remove_member", &r.cluster, &r.name, detail, now).await?;
        let result = etcd.remove_member(r.id).await;
        crash_point();
        self.ledger.settle(jid, None, |_| {}).await?;
        result.map_err(|e| ApplyError::Provider {
            address: r.cluster.clone(),
            source: ProviderError { message: format!("etcd: {}", e.message), ..e },
        })?;
        Ok(())
    }

    /// Waits until removing the member `leaving` keeps a majority of the control plane
    /// healthy; halts after the rollout's health timeout.
    async fn wait_for_quorum(&self, p: &Arc<dyn Provider>, c: &Change, leaving: &str) -> Result<(), ApplyError> {
        let Some(t) = c.target() else { return Ok(()) };
        let members = t.groups.len() as u32;
        let majority = members / 2 + 1;
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(t.settings.rollout.health_timeout_ms);
        loop {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let healthy_after: u32 = observed
                .groups
                .iter()
                .filter(|g| g.ownership.cluster == c.owner_cluster && g.ownership.node_group == c.owner_node_group)
                .filter(|g| g.name != leaving)
                .map(healthy)
                .sum();
            let leaving_healthy = observed.groups.iter().find(|g| g.name == leaving).map_or(0, healthy);
            // Removing an unhealthy member never costs quorum.
            if healthy_after >= majority || leaving_healthy == 0 {
                return Ok(());
            }
            self.check_interrupt()?;
            if clock.now_ms() >= deadline {
                return Err(ApplyError::Halted {
                    address: c.address.clone(),
                    report: format!(
                        "removing {leaving} would leave {healthy_after} healthy members, fewer than a majority ({majority} of {members}); \
                         the control plane keeps it until the others are healthy: run `drydock apply` again once they are"
                    ),
                });
            }
            self.progress.line(&format!("{}: waiting for quorum before removing {leaving}", c.address));
            clock.sleep(POLL_MS).await;
        }
    }

    /// The groups of change `c`'s node group: all a step needs to see, whatever the fleet's size.
    /// Before a worker rollout removes old instances: the node group keeps at least `floor`
    /// healthy instances once they are gone, whatever happened since the plan (the autoscaler
    /// or the cloud took nodes away, a node failed). Waits on the provider's clock for the
    /// cloud to make up the difference, for at most `timeout_ms`, then halts with nothing more
    /// removed. The plan's waves keep the floor by construction; this holds it at run time.
    async fn keep_floor(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        ids: &[String],
        floor: u32,
        timeout_ms: u64,
    ) -> Result<(), ApplyError> {
        if ids.is_empty() || c.role != Role::Worker {
            return Ok(());
        }
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(timeout_ms);
        loop {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let healthy: Vec<&str> = observed
                .groups
                .iter()
                .flat_map(|g| &g.instances)
                .filter(|i| i.state == InstanceState::Running && i.healthy)
                .map(|i| i.id.as_str())
                .collect();
            let leaving = healthy.iter().filter(|id| ids.iter().any(|x| x == *id)).count();
            let left = healthy.len() - leaving;
            if left >= floor as usize {
                return Ok(());
            }
            self.check_interrupt()?;
            if clock.now_ms() >= deadline {
                return Err(ApplyError::Halted {
                    address: c.address.clone(),
                    report: format!(
                        "removing {} would leave {left} healthy (of {} now), below the wave's floor of {floor}: \
                         nodes were lost since the plan was made (the autoscaler, the cloud or a failure) and did not \
                         come back within {}; nothing more was removed. Run `drydock apply` again to plan from what \
                         runs now.",
                        plural(ids.len(), "node"),
                        healthy.len(),
                        drydock_model::format_duration(timeout_ms)
                    ),
                });
            }
            clock.sleep(POLL_MS).await;
        }
    }

    async fn observe(&self, p: &Arc<dyn Provider>, c: &Change) -> Result<Observed, ProviderError> {
        p.observe_node_group(&self.lineage, &c.owner_cluster, &c.owner_node_group).await
    }

    async fn exists(&self, p: &Arc<dyn Provider>, c: &Change, name: &str) -> Result<bool, ApplyError> {
        Ok(self.observe(p, c).await.map_err(Self::err(c))?.groups.iter().any(|g| g.name == name))
    }

    /// Waits until each group has at least the wanted number of healthy instances, on the
    /// provider's clock, for at most `timeout_ms`. Records measured boot times. In a cluster
    /// with a Kubernetes API, an instance counts only once its Node is Ready without pressure,
    /// held for `rollout.min_ready`; a node not Ready `health.node_startup_timeout` after its
    /// instance launched fails the wait.
    async fn wait_healthy(
        &self,
        p: &Arc<dyn Provider>,
        c: &Change,
        want: &BTreeMap<String, u32>,
        timeout_ms: u64,
    ) -> Result<(), ApplyError> {
        let clock = p.clock();
        let deadline = clock.now_ms().saturating_add(timeout_ms);
        let kube = self.kube(c);
        let (min_ready, node_startup) = c
            .target()
            .map_or((0, u64::MAX), |t| (t.settings.rollout.min_ready_ms, t.settings.health.node_startup_timeout_ms));
        loop {
            let observed = self.observe(p, c).await.map_err(Self::err(c))?;
            let nodes = match &kube {
                Some(k) => Some(drain::nodes_by_instance(&k.nodes().await.map_err(Self::kube_err(c))?)),
                None => None,
            };
            if let (Some(k), Some(n)) = (&kube, &nodes) {
                self.mark_nodes(c, k, &observed, want, n).await?;
            }
            let now = clock.now_ms();
            // Why each instance of a wanted group does not count (none: it counts).
            let why = |i: &drydock_provider::Instance| -> Option<String> {
                if !(i.state == InstanceState::Running && i.healthy) {
                    return Some(match i.state {
                        InstanceState::Pending => "still pending (not booted)".into(),
                        InstanceState::Running => "running but failing its health check".into(),
                        InstanceState::ShuttingDown | InstanceState::Terminated => "terminated".into(),
                    });
                }
                nodes.as_ref().and_then(|n| drain::not_available(n.get(&i.id), now, min_ready))
            };
            let counted = |g: &ObservedGroup| g.instances.iter().filter(|i| why(i).is_none()).count() as u32;
            for g in observed.groups.iter().filter(|g| want.contains_key(&g.name)) {
                for i in g.instances.iter().filter(|i| i.is_live()) {
                    if self.announced.first("added", &i.id) {
                        self.emit(Event::NodeAdded {
                            address: c.address.clone(),
                            group: g.name.clone(),
                            instance: i.id.clone(),
                            zone: i.zone.clone(),
                        });
                    }
                    if why(i).is_none() && self.announced.first("ready", &i.id) {
                        let node = nodes.as_ref().and_then(|n| n.get(&i.id)).map(|n| n.name.clone());
                        self.emit(Event::NodeReady {
                            address: c.address.clone(),
                            group: g.name.clone(),
                            instance: i.id.clone(),
                            node,
                        });
                    }
                }
            }
            let ready = want
                .iter()
                .all(|(name, n)| observed.groups.iter().find(|g| &g.name == name).is_some_and(|g| counted(g) >= *n));
            if ready {
                self.record_boot_times(c, &observed, want, nodes.as_ref()).await?;
                return Ok(());
            }
            self.check_interrupt()?;
            // A node that has not become Ready within node_startup_timeout of its launch
            // fails the wave (as Cluster API's nodeStartupTimeout).
            let late = nodes.as_ref().is_some_and(|n| {
                observed.groups.iter().filter(|g| want.contains_key(&g.name)).flat_map(|g| &g.instances).any(|i| {
                    i.is_live()
                        && now.saturating_sub(i.launched_at_ms) >= node_startup
                        && !n.get(&i.id).is_some_and(|node| node.is_healthy())
                })
            });
            if now >= deadline || late {
                let limit = if late && now < deadline {
                    format!("health.node_startup_timeout {}", drydock_model::format_duration(node_startup))
                } else {
                    drydock_model::format_duration(timeout_ms)
                };
                return Err(ApplyError::Halted {
                    address: c.address.clone(),
                    report: halt_report(c, &observed, want, &limit, &why, &counted),
                });
            }
            clock.sleep(POLL_MS).await;
        }
    }

    async fn record_boot_times(
        &self,
        c: &Change,
        observed: &Observed,
        want: &BTreeMap<String, u32>,
        nodes: Option<&BTreeMap<String, drydock_provider::kube::NodeInfo>>,
    ) -> Result<(), ApplyError> {
        // From launch to healthy; in a cluster with a Kubernetes API, to its Node Ready too
        // (what a wave waits for, so what plan ETAs must count).
        let mut samples: Vec<u64> = observed
            .groups
            .iter()
            .filter(|g| want.contains_key(&g.name))
            .flat_map(|g| g.instances.iter())
            .filter_map(|i| {
                let healthy = i.healthy_at_ms?;
                let ready = match nodes {
                    Some(n) => n.get(&i.id)?.ready.map(|(_, since)| since)?,
                    None => healthy,
                };
                Some(healthy.max(ready).saturating_sub(i.launched_at_ms))
            })
            .collect();
        if samples.is_empty() {
            return Ok(());
        }
        samples.sort_unstable();
        self.ledger
            .update(touch(c), |s| {
                if let Some(ng) = s.clusters.get_mut(&c.cluster).and_then(|cs| cs.node_groups.get_mut(&c.address)) {
                    ng.boot_times_ms.extend(samples);
                    let excess = ng.boot_times_ms.len().saturating_sub(BOOT_SAMPLES);
                    ng.boot_times_ms.drain(..excess);
                }
            })
            .await
    }
}

/// An etcd error, named as such.
fn etcd_err(c: &Change, mut source: ProviderError) -> ApplyError {
    source.message = format!("etcd: {}", source.message);
    ApplyError::Provider { address: c.address.clone(), source }
}

fn healthy(g: &ObservedGroup) -> u32 {
    g.instances.iter().filter(|i| i.state == InstanceState::Running && i.healthy).count() as u32
}

/// Says which nodes did not become healthy and why, and how to go on.
fn halt_report(
    c: &Change,
    observed: &Observed,
    want: &BTreeMap<String, u32>,
    limit: &str,
    why: &dyn Fn(&drydock_provider::Instance) -> Option<String>,
    counted: &dyn Fn(&ObservedGroup) -> u32,
) -> String {
    let mut lines = vec![format!("new nodes were not healthy after {limit}")];
    for (name, n) in want {
        let Some(g) = observed.groups.iter().find(|g| &g.name == name) else {
            lines.push(format!("  group {name} does not exist"));
            continue;
        };
        lines.push(format!("  group {name}: {} of {n} healthy", counted(g)));
        for i in &g.instances {
            if let Some(reason) = why(i) {
                lines.push(format!("    {} in {}: {reason}", i.id, i.zone));
            }
        }
    }
    let old_live: usize = c
        .retire()
        .iter()
        .filter_map(|n| observed.groups.iter().find(|g| &g.name == n))
        .map(|g| {
            g.instances.iter().filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running)).count()
        })
        .sum();
    if c.kind() == ActionKind::Rollout {
        lines.push(format!("  the old generation still runs {} (nothing more was removed)", plural(old_live, "node")));
        lines.push("  to continue: fix the cause (the image, the health check) and run `drydock apply` again;".into());
        lines.push("  to roll back: set the previous values in the configuration and run `drydock apply`".into());
    } else {
        lines.push("  run `drydock apply` again once the cause is fixed".into());
    }
    lines.join("\n")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The node group's entry in the state, made if missing.
fn ng_entry<'s>(s: &'s mut State, c: &Change, t: &Target) -> &'s mut NodeGroupState {
    let cluster = s.clusters.entry(c.cluster.clone()).or_insert_with(|| ClusterState {
        name: c.owner_cluster.clone(),
        key: None,
        provider: c.provider.clone(),
        node_groups: BTreeMap::new(),
    });
    cluster.node_groups.entry(c.address.clone()).or_insert_with(|| NodeGroupState {
        name: c.name.clone(),
        key: c.key.clone(),
        role: c.role,
        generations: vec![],
        settings: t.settings.clone(),
        boot_times_ms: vec![],
        drain_times_ms: vec![],
        unfinished: false,
        history: vec![],
        cloud_owner: None,
    })
}

fn record_group(s: &mut State, c: &Change, t: &Target, name: &str) {
    let ng = ng_entry(s, c, t);
    let gen = match ng.generations.iter_mut().position(|g| g.id == t.generation) {
        Some(i) => &mut ng.generations[i],
        None => {
            ng.generations.push(GenerationState {
                id: t.generation.clone(),
                spec: t.display_spec.clone(),
                groups: vec![],
            });
            let last = ng.generations.len() - 1;
            &mut ng.generations[last]
        }
    };
    if !gen.groups.iter().any(|g| g == name) {
        gen.groups.push(name.to_string());
    }
}

fn forget_group(s: &mut State, c: &Change, name: &str) {
    if let Some(ng) = s.clusters.get_mut(&c.cluster).and_then(|cs| cs.node_groups.get_mut(&c.address)) {
        for g in &mut ng.generations {
            g.groups.retain(|n| n != name);
        }
        ng.generations.retain(|g| !g.groups.is_empty());
    }
}

/// A change is done: the state records the target's settings and exactly the target
/// generation's groups (a group deleted by a run that crashed before recording it is
/// forgotten here), and the node group is no longer unfinished.
fn finish(s: &mut State, c: &Change, t: &Target) {
    set_settings(s, c, t);
    let ng = ng_entry(s, c, t);
    ng.generations.retain(|g| g.id == t.generation);
    for g in &mut ng.generations {
        g.groups.retain(|n| t.groups.iter().any(|tg| &tg.name == n));
    }
    ng.unfinished = false;
    // The node group's history gains the generation it now runs, unless it already ends
    // with it (an update in place, a resumed create).
    if ng.history.last().is_none_or(|h| h.generation != t.generation) {
        let shown = |v: &Option<serde_json::Value>, sensitive: bool| match v {
            Some(_) if sensitive => "(sensitive)".to_string(),
            Some(serde_json::Value::String(s)) if s.contains('\n') => format!("({} lines)", s.lines().count()),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "(none)".to_string(),
        };
        let create = c.kind() == ActionKind::Create;
        // A create names what the nodes are; a rollout what changed.
        let changes = c
            .reasons
            .iter()
            .filter(|r| {
                if create {
                    matches!(r.path.as_str(), "image" | "instance_types" | "kubernetes_version")
                } else {
                    r.forces_replacement
                }
            })
            .map(|r| match create {
                true => format!("{}: {}", r.path, shown(&r.after, r.sensitive)),
                false => format!("{}: {} -> {}", r.path, shown(&r.before, r.sensitive), shown(&r.after, r.sensitive)),
            })
            .collect();
        ng.history.push(drydock_state::HistoryEntry {
            generation: t.generation.clone(),
            spec: t.display_spec.clone(),
            applied_at: drydock_state::store::format_rfc3339(std::time::SystemTime::now()),
            by: actor().to_string(),
            changes,
        });
        let excess = ng.history.len().saturating_sub(drydock_state::HISTORY_KEEP);
        ng.history.drain(..excess);
    }
}

/// Who runs drydock, for the node groups' history: `$DRYDOCK_ACTOR`, else `user@host`.
fn actor() -> &'static str {
    static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ACTOR.get_or_init(|| {
        if let Some(a) = std::env::var("DRYDOCK_ACTOR").ok().filter(|a| !a.trim().is_empty()) {
            return a;
        }
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{user}@{host}")
    })
}

fn set_settings(s: &mut State, c: &Change, t: &Target) {
    ng_entry(s, c, t).settings = t.settings.clone();
}
