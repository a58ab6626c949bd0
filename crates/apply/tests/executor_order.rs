//! The executor's order on the simulated cloud (virtual clock): a control plane's change
//! finishes before its workers are touched, and its workers are deleted before it; the
//! dependants of a failed change are skipped; at most `parallelism` changes run at once; and
//! every cloud mutation is journalled in the stored state before it is made.
//!
//! The provider is the sim behind [`Recording`], a decorator that is not a mock: every call is
//! delegated to the `SimProvider`, which does the work. It records each mutating call, in one
//! sequence with the executor's progress lines, and at each one reads the state as last
//! written to the object store under the ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use drydock_apply::{ApplyError, Executor, Ledger, Outcome, Progress};
use drydock_backend::MemoryStore;
use drydock_plan::{ActionKind, Plan, PlanInput};
use drydock_provider::{ApiStats, Clock, CreateGroup, GroupSettings, Observed, ObservedGroup, Provider, ProviderError};
use drydock_sim::{ClockMode, SimConfig, SimProvider};
use drydock_state::backend::Store;
use drydock_state::remote::RemoteStore;
use drydock_state::State;

const LINEAGE: &str = "lineage-1";
const CP: &str = "cluster.demo.node_group.control-plane";
const WORKERS: &str = "cluster.demo.node_group.workers";
const BATCH: &str = "cluster.demo.node_group.batch";
const SOLO: &str = "cluster.other.node_group.solo";

/// A cluster with a control plane of 3 members and two worker node groups. Addresses sort
/// `batch` < `control-plane` < `workers`, so the executor's order of addresses alone would
/// start a worker first.
fn cluster(cp_image: &str, worker_image: &str) -> String {
    format!(
        r#"
provider "sim" {{
  boot_time = 2s
}}
cluster "demo" {{
  kubernetes_version = "1.31"
  network {{
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }}
  node_group "control-plane" {{
    role          = "control-plane"
    image         = "{cp_image}"
    instance_type = "m6i.large"
    size          = 3
    rollout {{
      health_timeout = 20s
    }}
  }}
  node_group "workers" {{
    image         = "{worker_image}"
    instance_type = "m6i.large"
    size          = 3
  }}
  node_group "batch" {{
    image         = "{worker_image}"
    instance_type = "m6i.large"
    size          = 2
  }}
}}
"#
    )
}

/// A second cluster, with one worker node group and no control plane: nothing it has
/// depends on the first cluster's control plane.
const OTHER: &str = r#"
cluster "other" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a"]
  }
  node_group "solo" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 1
  }
}
"#;

/// Four independent node groups.
const FOUR: &str = r#"
provider "sim" {
  boot_time = 2s
}
cluster "demo" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a", "subnet-b"]
  }
  node_group "a" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 2
  }
  node_group "b" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 2
  }
  node_group "c" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 2
  }
  node_group "d" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 2
  }
}
"#;

/// What happened during an apply, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// A mutating provider call on a group of the node group at `address`.
    Call { address: String, op: &'static str, group: String },
    /// A progress line the executor emitted (`address` is what precedes its first `: `).
    Line { address: String, text: String },
}

impl Event {
    fn address(&self) -> &str {
        match self {
            Event::Call { address, .. } | Event::Line { address, .. } => address,
        }
    }
}

/// The events of one apply; also the executor's [`Progress`].
#[derive(Default)]
struct Log(Mutex<Vec<Event>>);

impl Log {
    fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

impl Progress for Log {
    fn line(&self, text: &str) {
        let address = text.split_once(": ").map_or("", |(a, _)| a).to_string();
        self.push(Event::Line { address, text: text.to_string() });
    }
}

/// A mutating call, and whether the state as last written to the store held its journal
/// entry (same operation, group and node group) when the call was made.
#[derive(Debug)]
struct Check {
    op: &'static str,
    group: String,
    address: String,
    journalled: bool,
}

/// The sim, every call delegated to it, the mutating ones recorded and checked against the
/// stored state first.
struct Recording {
    sim: Arc<SimProvider>,
    log: Arc<Log>,
    /// Which node group each group belongs to, from the plan being applied.
    owners: BTreeMap<String, String>,
    objects: Arc<MemoryStore>,
    checks: Mutex<Vec<Check>>,
}

impl Recording {
    async fn mutating(&self, op: &'static str, group: &str) {
        let address = self.owners.get(group).cloned().unwrap_or_else(|| format!("(no change names group {group})"));
        // What a run starting now would read: the state object with its journal replayed.
        let stored = RemoteStore::new(self.objects.clone(), "state", Arc::new(|| 0)).read().await.ok().flatten();
        let journalled =
            stored.is_some_and(|s| s.journal.iter().any(|j| j.op == op && j.group == group && j.address == address));
        self.checks.lock().unwrap().push(Check { op, group: group.to_string(), address: address.clone(), journalled });
        self.log.push(Event::Call { address, op, group: group.to_string() });
    }
}

#[async_trait::async_trait]
impl Provider for Recording {
    fn kind(&self) -> &'static str {
        self.sim.kind()
    }
    fn clock(&self) -> Arc<dyn Clock> {
        self.sim.clock()
    }
    fn boot_estimate_ms(&self) -> u64 {
        self.sim.boot_estimate_ms()
    }
    async fn observe(&self, lineage: &str) -> Result<Observed, ProviderError> {
        self.sim.observe(lineage).await
    }
    async fn observe_clusters(&self, clusters: &[String]) -> Result<Observed, ProviderError> {
        self.sim.observe_clusters(clusters).await
    }
    async fn create_group(&self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
        self.mutating("create_group", &req.name).await;
        self.sim.create_group(req).await
    }
    async fn update_group(&self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        self.mutating("update_group", name).await;
        self.sim.update_group(name, settings).await
    }
    async fn terminate_instances(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        self.mutating("terminate_instances", group).await;
        self.sim.terminate_instances(group, ids, decrement).await
    }
    async fn update_join(
        &self,
        name: &str,
        ownership: &drydock_provider::Ownership,
        spec: &drydock_provider::GenerationSpec,
        join: &drydock_provider::JoinSecrets,
    ) -> Result<(), ProviderError> {
        self.mutating("update_join", name).await;
        self.sim.update_join(name, ownership, spec, join).await
    }
    async fn delete_group(&self, name: &str) -> Result<(), ProviderError> {
        self.mutating("delete_group", name).await;
        self.sim.delete_group(name).await
    }
    fn stats(&self) -> ApiStats {
        self.sim.stats()
    }
}

/// A simulated cloud (virtual clock) and a state store that outlive single applies.
struct Cloud {
    dir: tempfile::TempDir,
    sim: Arc<SimProvider>,
    objects: Arc<MemoryStore>,
    store: Store,
    /// The state as the last apply left it.
    state: State,
    applied: bool,
    rt: tokio::runtime::Runtime,
}

struct Run {
    outcomes: Vec<Outcome>,
    events: Vec<Event>,
    checks: Vec<Check>,
}

impl Cloud {
    fn new(config: SimConfig) -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let sim = Arc::new(SimProvider::new(dir.path().join("world.json"), config, ClockMode::Virtual));
        let objects = Arc::new(MemoryStore::default());
        let store = Store::Remote(Arc::new(RemoteStore::new(objects.clone(), "state", Arc::new(|| 0))));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Cloud { dir, sim, objects, store, state: State::new(LINEAGE.into()), applied: false, rt }
    }

    fn observe(&self) -> Observed {
        self.rt.block_on(self.sim.observe(LINEAGE)).unwrap()
    }

    /// Plans `kcl` against the state and the cloud as they are now.
    fn plan(&self, kcl: &str, destroy: bool) -> Plan {
        std::fs::write(self.dir.path().join("main.kcl"), kcl).unwrap();
        let loaded = drydock_config::load(self.dir.path(), &Default::default());
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let model = loaded.model.unwrap();
        let observed = BTreeMap::from([("sim".to_string(), self.observe())]);
        let input = PlanInput {
            model: &model,
            state: self.applied.then_some(&self.state),
            lineage: LINEAGE,
            observed: &observed,
            boot_estimate_ms: &BTreeMap::from([("sim".to_string(), 2_000)]),
            config_digest: "digest".into(),
            config_path: self.dir.path().display().to_string(),
            destroy,
            refreshed: true,
            kubernetes: &Default::default(),
            replace: &Default::default(),
            specs: &Default::default(),
            foreign: &Default::default(),
            settings: &Default::default(),
            now_ms: BTreeMap::from([("sim".to_string(), self.sim.clock().now_ms())]),
        };
        drydock_plan::plan(&input).unwrap()
    }

    fn apply(&mut self, plan: &Plan, parallelism: usize) -> Run {
        let log = Arc::new(Log::default());
        let mut owners = BTreeMap::new();
        for c in &plan.changes {
            for g in c.target().into_iter().flat_map(|t| &t.groups) {
                owners.insert(g.name.clone(), c.address.clone());
            }
            for name in c.retire() {
                owners.insert(name.clone(), c.address.clone());
            }
        }
        let provider = Arc::new(Recording {
            sim: Arc::clone(&self.sim),
            log: Arc::clone(&log),
            owners,
            objects: Arc::clone(&self.objects),
            checks: Mutex::default(),
        });
        let ledger = Arc::new(Ledger::new(self.state.clone(), self.store.clone()));
        let executor = Arc::new(Executor {
            providers: BTreeMap::from([("sim".to_string(), Arc::clone(&provider) as Arc<dyn Provider>)]),
            budgets: Default::default(),
            ledger: Arc::clone(&ledger),
            progress: Arc::clone(&log) as Arc<dyn Progress>,
            parallelism,
            interrupted: Arc::new(AtomicBool::new(false)),
            lineage: plan.lineage.clone(),
            kubernetes: Default::default(),
            etcd: Default::default(),
            join: Default::default(),
            announced: Default::default(),
        });
        let outcomes = self.rt.block_on(executor.run(plan));
        assert_eq!(ledger.write_error(), None);
        self.state = self.rt.block_on(ledger.snapshot());
        self.applied = true;
        let events = std::mem::take(&mut *log.0.lock().unwrap());
        let checks = std::mem::take(&mut *provider.checks.lock().unwrap());
        Run { outcomes, events, checks }
    }
}

fn all_ok(run: &Run) {
    for o in &run.outcomes {
        assert!(o.result.is_ok(), "{}: {:?}\n{:#?}", o.address, o.result, run.events);
    }
}

/// The change's last event: once it is emitted the change does nothing more.
fn last_event(events: &[Event], address: &str) -> usize {
    events.iter().rposition(|e| e.address() == address).unwrap_or_else(|| panic!("no event of {address}"))
}

/// The positions of the node group's mutating calls.
fn calls(events: &[Event], address: &str) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Call { .. }) && e.address() == address)
        .map(|(i, _)| i)
        .collect()
}

fn groups_of<'o>(observed: &'o Observed, node_group: &str) -> Vec<&'o ObservedGroup> {
    observed.groups.iter().filter(|g| g.ownership.node_group == node_group).collect()
}

/// Creates and destroys a control plane and its workers, with room for every change at once
/// (`parallelism` 4): only the dependencies order them. The order is read from one sequence of
/// the executor's progress lines and the provider calls it makes; the create's is also checked
/// on the sim's own clock (when groups were made, when members became healthy).
#[test]
fn workers_wait_for_their_control_plane_and_are_deleted_before_it() {
    let mut cloud = Cloud::new(SimConfig::default());
    let plan = cloud.plan(&cluster("img-cp-1", "img-1"), false);
    let deps: BTreeMap<&str, &[String]> =
        plan.changes.iter().map(|c| (c.address.as_str(), &c.depends_on[..])).collect();
    assert_eq!(deps[BATCH], [CP.to_string()]);
    assert_eq!(deps[WORKERS], [CP.to_string()]);
    assert!(deps[CP].is_empty());
    let run = cloud.apply(&plan, 4);
    all_ok(&run);
    let cp_done = last_event(&run.events, CP);
    assert_eq!(
        run.events[cp_done],
        Event::Line { address: CP.into(), text: format!("{CP}: 3 nodes healthy") },
        "the control plane's change ends when its members are healthy"
    );
    assert_eq!(calls(&run.events, CP).len(), 3, "one group per member: {:#?}", run.events);
    for w in [BATCH, WORKERS] {
        let made = calls(&run.events, w);
        assert!(!made.is_empty(), "{w} made nothing");
        assert!(
            made.iter().all(|&i| i > cp_done),
            "{w} was changed before the control plane finished (at event {cp_done}): {:#?}",
            run.events
        );
    }
    // On the sim's clock: every worker group was made once every member was healthy.
    let observed = cloud.observe();
    let cp = groups_of(&observed, "control-plane");
    assert_eq!(cp.len(), 3);
    let cp_healthy = cp.iter().flat_map(|g| &g.instances).map(|i| i.healthy_at_ms.expect("healthy")).max().unwrap();
    assert!(cp_healthy >= 2_000, "members take the boot time to become healthy ({cp_healthy})");
    for w in ["workers", "batch"] {
        let gs = groups_of(&observed, w);
        assert_eq!(gs.len(), 1, "{w}");
        assert!(
            gs[0].created_at_ms >= cp_healthy,
            "{w} made at {} before the control plane was healthy at {cp_healthy}",
            gs[0].created_at_ms
        );
    }

    let plan = cloud.plan(&cluster("img-cp-1", "img-1"), true);
    assert!(plan.changes.iter().all(|c| c.kind() == ActionKind::Delete));
    let cp_change = plan.changes.iter().find(|c| c.address == CP).unwrap();
    assert_eq!(
        cp_change.depends_on.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&BATCH.to_string(), &WORKERS.to_string()])
    );
    let run = cloud.apply(&plan, 4);
    all_ok(&run);
    let cp_deletes = calls(&run.events, CP);
    assert_eq!(cp_deletes.len(), 3, "{:#?}", run.events);
    for w in [BATCH, WORKERS] {
        assert_eq!(calls(&run.events, w).len(), 1, "{w}: {:#?}", run.events);
        let done = last_event(&run.events, w);
        assert_eq!(run.events[done], Event::Line { address: w.into(), text: format!("{w}: deleted") });
        assert!(
            done < cp_deletes[0],
            "the control plane was deleted before {w} finished (at event {done}): {:#?}",
            run.events
        );
    }
    assert!(cloud.observe().groups.is_empty());
}

/// A control plane whose image never becomes healthy halts after its `health_timeout` (on
/// the virtual clock); its workers are skipped, naming it, and never reach the cloud, while a
/// node group of another cluster is made as usual.
#[test]
fn a_failed_control_plane_skips_its_workers() {
    let mut cloud = Cloud::new(SimConfig { bad_images: vec!["img-cp-bad".into()], ..Default::default() });
    let plan = cloud.plan(&(cluster("img-cp-bad", "img-1") + OTHER), false);
    let run = cloud.apply(&plan, 4);
    let outcomes: BTreeMap<&str, &Result<(), ApplyError>> =
        run.outcomes.iter().map(|o| (o.address.as_str(), &o.result)).collect();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    assert!(matches!(outcomes[CP], Err(ApplyError::Halted { address, .. }) if address == CP), "{:?}", outcomes[CP]);
    for w in [BATCH, WORKERS] {
        assert!(
            matches!(outcomes[w], Err(ApplyError::Skipped { address, dependency }) if address == w && dependency == CP),
            "{w}: {:?}",
            outcomes[w]
        );
        assert!(calls(&run.events, w).is_empty(), "{w} touched the cloud: {:#?}", run.events);
    }
    assert!(outcomes[SOLO].is_ok(), "{:?}", outcomes[SOLO]);
    assert!(cloud.sim.clock().now_ms() >= 20_000, "the halt waited for the health timeout on the virtual clock");
    let observed = cloud.observe();
    assert_eq!(groups_of(&observed, "control-plane").len(), 3, "the failed members are left for the next apply");
    assert!(groups_of(&observed, "workers").is_empty());
    assert!(groups_of(&observed, "batch").is_empty());
    assert_eq!(groups_of(&observed, "solo").len(), 1);
}

/// The most changes in flight at once, a change being in flight from its first event (a
/// provider call or a progress line) to its last; and one moment at which that many were.
fn most_at_once(events: &[Event]) -> (usize, Vec<String>) {
    let mut spans: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        spans.entry(e.address()).and_modify(|s| s.1 = i).or_insert((i, i));
    }
    let mut best = (0, vec![]);
    for i in 0..events.len() {
        let now: Vec<String> =
            spans.iter().filter(|(_, (a, b))| *a <= i && i <= *b).map(|(addr, _)| addr.to_string()).collect();
        if now.len() > best.0 {
            best = (now.len(), now);
        }
    }
    best
}

/// Four independent node groups, created with `parallelism` 1, 2 and 4: each time exactly
/// that many changes are seen in flight at once (4, with room for all, shows the measure
/// sees every change that overlaps).
#[test]
fn at_most_parallelism_changes_run_at_once() {
    for parallelism in [1, 2, 4] {
        let mut cloud = Cloud::new(SimConfig::default());
        let plan = cloud.plan(FOUR, false);
        assert_eq!(plan.changes.len(), 4);
        assert!(plan.changes.iter().all(|c| c.depends_on.is_empty()));
        let run = cloud.apply(&plan, parallelism);
        all_ok(&run);
        assert_eq!(cloud.observe().groups.len(), 4);
        // Every change made its group and said when it was done.
        for c in &plan.changes {
            assert_eq!(calls(&run.events, &c.address).len(), 1, "{}: {:#?}", c.address, run.events);
            let done = &run.events[last_event(&run.events, &c.address)];
            assert!(matches!(done, Event::Line { text, .. } if text.ends_with("2 nodes healthy")), "{done:?}");
        }
        let (most, at) = most_at_once(&run.events);
        assert_eq!(
            most, parallelism,
            "parallelism {parallelism}: {most} in flight at once ({at:?}):\n{:#?}",
            run.events
        );
    }
}

/// At every mutating call, the state last written to the store journals it (the same
/// operation, group and node group): the entry was durable before the call. For a create, a
/// rollout of a control plane and its workers (every kind of mutation), and a destroy; each
/// run leaves every entry settled.
#[test]
fn every_mutation_is_journalled_in_the_stored_state_before_it_is_made() {
    fn check(run: &Run, ops: &[&str]) {
        all_ok(run);
        assert!(!run.checks.is_empty());
        let made: BTreeSet<&str> = run.checks.iter().map(|c| c.op).collect();
        assert_eq!(made, ops.iter().copied().collect::<BTreeSet<_>>(), "{:#?}", run.checks);
        for c in &run.checks {
            assert!(c.journalled, "{} of {} ({}) was made before the state journalled it", c.op, c.group, c.address);
        }
    }
    let mut cloud = Cloud::new(SimConfig::default());
    let plan = cloud.plan(&cluster("img-cp-1", "img-1"), false);
    let run = cloud.apply(&plan, 2);
    check(&run, &["create_group"]);
    assert_eq!(run.checks.len(), 5, "3 members and 2 worker groups: {:#?}", run.checks);
    assert!(cloud.state.journal.is_empty());

    let plan = cloud.plan(&cluster("img-cp-2", "img-2"), false);
    assert!(plan.changes.iter().all(|c| c.kind() == ActionKind::Rollout), "{:?}", plan.changes);
    let run = cloud.apply(&plan, 2);
    check(&run, &["create_group", "delete_group", "terminate_instances", "update_group"]);
    assert!(cloud.state.journal.is_empty());
    let observed = cloud.observe();
    assert!(observed.groups.iter().all(|g| g.spec.image.ends_with("-2")), "only the new generation is left");

    let plan = cloud.plan(&cluster("img-cp-2", "img-2"), true);
    let run = cloud.apply(&plan, 2);
    check(&run, &["delete_group"]);
    assert_eq!(run.checks.len(), 5, "{:#?}", run.checks);
    assert!(cloud.state.journal.is_empty());
    assert!(cloud.observe().groups.is_empty());
}
