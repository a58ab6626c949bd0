//! The executor on the simulated cloud (virtual clock), with the state kept in an in-memory
//! object store that can be made to fail: a state write that fails stops every further cloud
//! mutation, and what the state may not record is reported. (A change without its target
//! cannot be written down: each action carries what it needs.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use drydock_apply::{ApplyError, Executor, Ledger, Outcome, Progress};
use drydock_backend::{Condition, MemoryStore, Object, ObjectStore, StoreError, Written};
use drydock_plan::{Plan, PlanInput};
use drydock_provider::{Observed, Provider};
use drydock_sim::{ClockMode, SimConfig, SimProvider};
use drydock_state::backend::Store;
use drydock_state::remote::RemoteStore;
use drydock_state::State;

/// An object store in which one write of the state object fails: the one after `budget`
/// successful writes. Later writes would succeed again (a transient fault), so an executor
/// that carried on after the failure would be seen writing.
struct Faulty {
    inner: MemoryStore,
    budget: AtomicUsize,
    failed: AtomicBool,
    /// State writes attempted after the failed one.
    after: AtomicUsize,
}

impl Faulty {
    fn new(budget: usize) -> Faulty {
        Faulty {
            inner: MemoryStore::default(),
            budget: AtomicUsize::new(budget),
            failed: AtomicBool::new(false),
            after: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    fn describe(&self, key: &str) -> String {
        format!("mem://{key}")
    }
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<Written, StoreError> {
        // The state object and its journal's records; the backup is best effort.
        if key == "state" || key.starts_with("state.journal/") {
            if self.failed.load(Ordering::SeqCst) {
                self.after.fetch_add(1, Ordering::SeqCst);
            } else if self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_err() {
                self.failed.store(true, Ordering::SeqCst);
                return Err(StoreError::Other("the disk is full (injected)".into()));
            }
        }
        self.inner.put(key, bytes, condition).await
    }
    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<(), StoreError> {
        self.inner.delete(key, if_match).await
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);
impl Progress for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

const CONFIG: &str = r#"
provider "sim" {
  boot_time = 2s
}
cluster "demo" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a"]
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
}
"#;

struct Run {
    outcomes: Vec<Outcome>,
    /// State writes attempted after the failed one.
    writes_after_failure: usize,
    /// State writes the store accepted.
    writes: usize,
    ledger: Arc<Ledger>,
    observed: Observed,
    objects: Arc<Faulty>,
}

fn sim(dir: &Path) -> Arc<dyn Provider> {
    let config = SimConfig { boot_time_ms: 2_000, ..Default::default() };
    Arc::new(SimProvider::new(dir.join("world.json"), config, ClockMode::Virtual))
}

fn plan_for(dir: &Path, provider: &Arc<dyn Provider>) -> Plan {
    std::fs::write(dir.join("main.kcl"), CONFIG).unwrap();
    let loaded = drydock_config::load(dir, &Default::default());
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let model = loaded.model.unwrap();
    let input = PlanInput {
        model: &model,
        state: None,
        lineage: "lineage-1",
        observed: &BTreeMap::new(),
        boot_estimate_ms: &BTreeMap::from([("sim".to_string(), 3_000)]),
        config_digest: "digest".into(),
        config_path: dir.display().to_string(),
        destroy: false,
        refreshed: true,
        kubernetes: &Default::default(),
        replace: &Default::default(),
        specs: &Default::default(),
        foreign: &Default::default(),
        settings: &Default::default(),
        now_ms: BTreeMap::from([("sim".to_string(), provider.clock().now_ms())]),
    };
    drydock_plan::plan(&input).unwrap()
}

/// Applies `plan` with the state in a store that accepts `writes` state writes.
fn apply(plan: &Plan, provider: Arc<dyn Provider>, writes: usize) -> Run {
    let objects = Arc::new(Faulty::new(writes));
    let store = Store::Remote(Arc::new(RemoteStore::new(objects.clone(), "state", Arc::new(|| 0))));
    let ledger = Arc::new(Ledger::new(State::new(plan.lineage.clone()), store));
    let executor = Arc::new(Executor {
        providers: BTreeMap::from([("sim".to_string(), Arc::clone(&provider))]),
        budgets: Default::default(),
        ledger: Arc::clone(&ledger),
        progress: Arc::new(Lines::default()),
        parallelism: 1,
        interrupted: Arc::new(AtomicBool::new(false)),
        lineage: plan.lineage.clone(),
        kubernetes: Default::default(),
        etcd: Default::default(),
        join: Default::default(),
        announced: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let outcomes = rt.block_on(Arc::clone(&executor).run(plan));
    let observed = rt.block_on(provider.observe(&plan.lineage)).unwrap();
    let writes = writes - objects.budget.load(Ordering::SeqCst);
    Run { outcomes, writes_after_failure: objects.after.load(Ordering::SeqCst), writes, ledger, observed, objects }
}

/// The ledger's state after a run (the run's runtime is gone: any will do).
fn snapshot(ledger: &Ledger) -> State {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(ledger.snapshot())
}

fn summary(run: &Run) -> String {
    let mut out = String::new();
    for o in &run.outcomes {
        out += &match &o.result {
            Ok(()) => format!("{}: ok\n", o.address),
            Err(e) => format!("{}: {e}\n", o.address),
        };
    }
    out += &format!("groups in the cloud: {}\n", run.observed.groups.len());
    out += &format!("write error: {:?}\n", run.ledger.write_error());
    out += &format!("unrecorded: {:?}\n", run.ledger.unrecorded());
    out
}

#[test]
fn every_change_applies_when_the_state_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let provider = sim(dir.path());
    let plan = plan_for(dir.path(), &provider);
    let run = apply(&plan, provider, usize::MAX);
    expect_test::expect![[r#"
        cluster.demo.node_group.a: ok
        cluster.demo.node_group.b: ok
        cluster.demo.node_group.c: ok
        groups in the cloud: 3
        write error: None
        unrecorded: []
    "#]]
    .assert_eq(&summary(&run));
    let state = snapshot(&run.ledger);
    assert!(state.journal.is_empty());
    // What a later run reads back (the state object with the journal's records replayed: the
    // run was not closed) is the state as the run left it.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = RemoteStore::new(run.objects.clone(), "state", Arc::new(|| 0));
    assert_eq!(rt.block_on(store.read()).unwrap(), Some(state.clone()));
    // Closing the run folds the records into the state object, which then reads the same.
    rt.block_on(run.ledger.close()).unwrap();
    let store = RemoteStore::new(run.objects.clone(), "state", Arc::new(|| 0));
    assert_eq!(rt.block_on(store.read()).unwrap(), Some(state));
}

/// With the state write failing at each point of the run in turn (once: the store would
/// accept the next write), nothing is written and no cloud mutation is made after the failed
/// write: the cloud holds exactly the groups whose create was journalled
/// before it, and a create made but not settled is reported as unrecorded.
#[test]
fn a_failed_state_write_stops_every_further_mutation() {
    let total = {
        // Count the writes of a whole run: a store with room for them all.
        let dir = tempfile::tempdir().unwrap();
        let provider = sim(dir.path());
        let plan = plan_for(dir.path(), &provider);
        apply(&plan, provider, usize::MAX).writes
    };
    assert!(total >= 9, "a create of three node groups writes the state at least 9 times, wrote {total}");
    let mut stopped_with_unrecorded = 0;
    for writes in 0..total {
        let dir = tempfile::tempdir().unwrap();
        let provider = sim(dir.path());
        let plan = plan_for(dir.path(), &provider);
        let run = apply(&plan, provider, writes);
        let failed: Vec<_> = run.outcomes.iter().filter(|o| o.result.is_err()).collect();
        assert!(!failed.is_empty(), "after {writes} writes: a failed write must fail the apply\n{}", summary(&run));
        assert!(run.ledger.write_error().is_some(), "{}", summary(&run));
        assert_eq!(run.writes_after_failure, 0, "after {writes} writes: the executor kept writing\n{}", summary(&run));
        // What the last successful write holds is what was journalled or settled: every group
        // in the cloud is in its journal or its node groups.
        let stored = snapshot(&run.ledger);
        let journalled = stored.journal.len();
        let recorded: usize = stored.node_groups().map(|(_, ng)| ng.generations.len()).sum();
        assert!(
            run.observed.groups.len() <= journalled + recorded,
            "after {writes} writes: {} groups in the cloud, {journalled} journalled, {recorded} recorded\n{}",
            run.observed.groups.len(),
            summary(&run)
        );
        // No change after the failure touched the cloud: the failed change is the last one
        // that ran, and every change after it made nothing.
        let made = run.observed.groups.len();
        let ok = run.outcomes.iter().filter(|o| o.result.is_ok()).count();
        assert!(
            made <= ok + 1,
            "after {writes} writes: {made} groups made but only {ok} changes succeeded\n{}",
            summary(&run)
        );
        for o in &failed {
            assert!(
                matches!(o.result, Err(ApplyError::State(_) | ApplyError::StateStopped(_))),
                "after {writes} writes: {:?}",
                o.result
            );
        }
        if !run.ledger.unrecorded().is_empty() {
            stopped_with_unrecorded += 1;
            assert!(run.ledger.unrecorded().iter().all(|u| u.starts_with("create_group ")), "{}", summary(&run));
        }
    }
    assert!(stopped_with_unrecorded >= 3, "a failure right after each of the 3 creates leaves it unrecorded");
}
