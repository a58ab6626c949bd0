//! The executor keeps a rollout's floor at run time, whatever moved since the plan: the
//! autoscaler (or a person) took old nodes away between the plan and its waves. The plan's
//! waves would then remove the nodes they list and leave fewer healthy nodes than the floor
//! they show; instead the rollout waits for the cloud to make up the difference, then halts
//! with the remaining old nodes in service. On the simulated cloud (virtual clock).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use drydock_apply::{ApplyError, Executor, Ledger, Outcome, Progress};
use drydock_plan::{ActionKind, Plan, PlanInput};
use drydock_provider::{InstanceState, Provider};
use drydock_sim::{ClockMode, SimConfig, SimProvider};
use drydock_state::backend::Store;
use drydock_state::store::LocalStore;
use drydock_state::State;

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);
impl Progress for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

fn config(image: &str) -> String {
    format!(
        r#"
provider "sim" {{
  boot_time = 2s
}}
cluster "demo" {{
  kubernetes_version = "1.31"
  network {{
    subnets = ["subnet-a"]
  }}
  node_group "workers" {{
    image         = "{image}"
    instance_type = "m6i.large"
    size          = 4
    rollout {{
      max_surge       = 1
      max_unavailable = 0
      health_timeout  = 2m
    }}
  }}
}}
"#
    )
}

fn plan(
    dir: &Path,
    image: &str,
    state: Option<&State>,
    provider: &Arc<dyn Provider>,
    rt: &tokio::runtime::Runtime,
) -> Plan {
    std::fs::write(dir.join("main.kcl"), config(image)).unwrap();
    let loaded = drydock_config::load(dir, &Default::default());
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let model = loaded.model.unwrap();
    let observed = BTreeMap::from([("sim".to_string(), rt.block_on(provider.observe("lineage-1")).unwrap())]);
    let input = PlanInput {
        model: &model,
        state,
        lineage: "lineage-1",
        observed: &observed,
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

fn run(plan: &Plan, provider: &Arc<dyn Provider>, ledger: &Arc<Ledger>, rt: &tokio::runtime::Runtime) -> Vec<Outcome> {
    let executor = Arc::new(Executor {
        providers: BTreeMap::from([("sim".to_string(), Arc::clone(provider))]),
        budgets: Default::default(),
        ledger: Arc::clone(ledger),
        progress: Arc::new(Lines::default()),
        parallelism: 1,
        interrupted: Arc::new(AtomicBool::new(false)),
        lineage: plan.lineage.clone(),
        kubernetes: Default::default(),
        etcd: Default::default(),
        join: Default::default(),
        announced: Default::default(),
    });
    rt.block_on(executor.run(plan))
}

/// Healthy running instances of the node group, by generation image.
fn healthy(provider: &Arc<dyn Provider>, rt: &tokio::runtime::Runtime) -> Vec<(String, String)> {
    let observed = rt.block_on(provider.observe("lineage-1")).unwrap();
    let mut out: Vec<(String, String)> = observed
        .groups
        .iter()
        .flat_map(|g| g.instances.iter())
        .filter(|i| i.state == InstanceState::Running && i.healthy)
        .map(|i| (i.image.clone(), i.id.clone()))
        .collect();
    out.sort();
    out
}

#[test]
fn nodes_taken_away_since_the_plan_halt_the_rollout_at_its_floor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let provider: Arc<dyn Provider> = Arc::new(SimProvider::new(
        d.join("world.json"),
        SimConfig { boot_time_ms: 2_000, ..Default::default() },
        ClockMode::Virtual,
    ));
    let store = Store::Local(LocalStore::new(d.join("state.json")));
    let created = plan(d, "img-1", None, &provider, &rt);
    let ledger = Arc::new(Ledger::new(State::new(created.lineage.clone()), store.clone()));
    assert!(run(&created, &provider, &ledger, &rt).iter().all(|o| o.result.is_ok()));
    rt.block_on(ledger.close()).unwrap();
    let state = rt.block_on(store.read()).unwrap().unwrap();
    assert_eq!(healthy(&provider, &rt).len(), 4);

    // The rollout is planned with a floor of 4: one node in, one out, four times.
    let rollout = plan(d, "img-2", Some(&state), &provider, &rt);
    let change = &rollout.changes[0];
    assert_eq!(change.kind(), ActionKind::Rollout);
    assert!(change.waves.iter().all(|w| w.floor == 4), "{:?}", change.waves);

    // Then two old nodes go, and the group is told to keep only two (an autoscaler's scale-in).
    let old = healthy(&provider, &rt);
    let observed = rt.block_on(provider.observe("lineage-1")).unwrap();
    let (group, mut settings) = (observed.groups[0].name.clone(), observed.groups[0].settings.clone());
    settings.min = 2;
    rt.block_on(provider.update_group(&group, &settings)).unwrap();
    let gone: Vec<String> = old.iter().take(2).map(|(_, id)| id.clone()).collect();
    rt.block_on(provider.terminate_instances(&group, &gone, true)).unwrap();

    let ledger = Arc::new(Ledger::new(state, store.clone()));
    let outcomes = run(&rollout, &provider, &ledger, &rt);
    match &outcomes[0].result {
        Err(ApplyError::Halted { report, .. }) => {
            assert!(report.contains("below the wave's floor of 4"), "{report}")
        }
        other => panic!("the rollout must halt at its floor: {other:?}"),
    }
    // The two old nodes left still run; with the new ones, never fewer healthy than before
    // the rollout started and nothing of the old generation removed below the floor.
    let now = healthy(&provider, &rt);
    let old_left: Vec<&(String, String)> = now.iter().filter(|(image, _)| image == "img-1").collect();
    assert_eq!(old_left.len(), 2, "no old node was removed: {now:?}");
}
