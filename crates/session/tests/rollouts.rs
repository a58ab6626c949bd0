//! The property of Kubernetes-aware rollouts: whatever the disruption budgets, the pods'
//! placement, the rollout's surge and unavailability, and whatever node or kubelet fails in
//! the middle of it, a rollout never takes a PodDisruptionBudget below its minimum by an
//! eviction or a termination, never terminates an instance with pods still bound to its Node,
//! never leaves a live Node cordoned, and, when it succeeds, leaves only the new generation
//! and no Node without its instance.
//!
//! In-process, through drydock's real code: the configuration is loaded and planned by the
//! session, the plan carried out by the executor (waves, Ready gating, cordon, drain, evict,
//! Node deletion), against the simulated cloud on its virtual clock and its Kubernetes served
//! over loopback HTTP to the real kube-rs client. The judge is the simulated API server's own
//! disruption audit (`drydock_sim::status(..).violations`), not drydock's word.
//!
//! `DRYDOCK_PROP_CASES=N` runs seeds 0..N (default 1,000); `DRYDOCK_PROP_SEED=S` runs seed S
//! alone; `DRYDOCK_PROP_THREADS=T` runs T cases at once (default: the machine's cores). A
//! failing case prints its seed, its configuration, the injected failures, the apply's error,
//! the executor's progress and the sim's status as JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use drydock_apply::{ApplyError, Executor, Ledger, Progress};
use drydock_plan::Plan;
use drydock_provider::kube::ConditionStatus;
use drydock_provider::InstanceState;
use drydock_session::{LoadError, LoadOptions};
use drydock_sim::{Cause, FailTarget, Status, Violation};
use drydock_state::State;

const CLUSTER: &str = "c";
const NODE_GROUP: &str = "workers";
const OLD_IMAGE: &str = "img-1";
const NEW_IMAGE: &str = "img-2";

// ---- generation ---------------------------------------------------------------------------

/// What fails during the rollout, and when (milliseconds of the world's time after the
/// rollout's plan was made).
#[derive(Debug, Clone)]
enum Fault {
    /// An instance of the old generation crashes (the `n`-th, modulo their number).
    CrashOld(usize),
    /// One running instance of the node group, of any generation, crashes.
    CrashAny,
    /// The kubelet of an instance of the old generation dies (its instance keeps running).
    KubeletOld(usize),
    /// The kubelet of one running instance of the node group, of any generation, dies.
    KubeletAny,
}

#[derive(Debug, Clone)]
struct Injection {
    fault: Fault,
    after_ms: u64,
}

/// One generated case: the configuration of both generations and what to inject.
struct Case {
    seed: u64,
    replicas: u32,
    before: String,
    after: String,
    injections: Vec<Injection>,
    /// Some budget allows no disruption at all: the rollout is expected to halt (not checked:
    /// any outcome is allowed, only violations are not).
    blocking: bool,
}

/// A count or a percentage, as written, and how it resolves (`IntOrPercent::resolve`).
#[derive(Clone, Copy)]
enum Amount {
    Count(u32),
    Percent(u32),
}

impl Amount {
    fn text(self) -> String {
        match self {
            Amount::Count(n) => n.to_string(),
            Amount::Percent(p) => format!("{p}%"),
        }
    }
    fn resolve(self, total: u32, round_up: bool) -> u32 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let exact = f64::from(total) * f64::from(p) / 100.0;
                (if round_up { exact.ceil() } else { exact.floor() }) as u32
            }
        }
    }
}

fn amount(rng: &mut fastrand::Rng, counts: std::ops::RangeInclusive<u32>, percents: &[u32]) -> Amount {
    if rng.bool() {
        Amount::Count(rng.u32(counts))
    } else {
        Amount::Percent(percents[rng.usize(..percents.len())])
    }
}

fn duration_ms(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn generate(seed: u64) -> Case {
    let mut rng = fastrand::Rng::with_seed(seed);
    let replicas = rng.u32(2..=6);

    // The rollout's pace, resolved as the planner does (the cluster's disruption budget caps
    // surge then unavailability), so that the two are never both 0.
    let budget = match rng.u32(0..3) {
        0 => Amount::Percent(100),
        1 => Amount::Count(rng.u32(1..=3)),
        _ => Amount::Percent([10, 25, 50][rng.usize(..3)]),
    };
    let mut surge = amount(&mut rng, 0..=2, &[0, 25, 50, 100]);
    let unavailable = amount(&mut rng, 0..=2, &[0, 25, 50, 100]);
    let b = budget.resolve(replicas, false).max(1);
    let s = surge.resolve(replicas, true).min(b);
    let u = unavailable.resolve(replicas, false).min(b - s);
    if s == 0 && u == 0 {
        surge = Amount::Count(1);
    }
    let min_ready = if rng.u32(0..3) == 0 { Some(rng.u64(1..=15) * 1000) } else { None };

    // The simulated cloud's pace.
    let boot_ms = rng.u64(1..=3) * 1000;
    let join_ms = rng.u64(1..=5) * 500;
    let pod_start_ms = rng.u64(1..=6) * 500;

    // The workloads.
    let mut blocking = false;
    let mut workloads = String::new();
    let mut pods = 0u32;
    let apps = rng.u32(1..=3);
    for i in 0..apps {
        let stateful = rng.u32(0..4) == 0;
        let n = rng.u32(1..=6);
        pods += n;
        let _ = writeln!(workloads, "  workload \"app{i}\" {{");
        if stateful {
            let _ = writeln!(workloads, "    kind          = \"statefulset\"");
        }
        if rng.u32(0..4) == 0 {
            let _ = writeln!(workloads, "    namespace     = \"team-{i}\"");
        }
        let _ = writeln!(workloads, "    replicas      = {n}");
        match rng.u32(0..10) {
            // No budget.
            0 | 1 => {}
            // A budget that never allows a disruption: the rollout halts, and that is fine.
            2 => {
                blocking = true;
                let _ = writeln!(workloads, "    min_available = {n}");
            }
            3 | 4 => {
                let _ = writeln!(workloads, "    min_available = {}", rng.u32(0..n));
            }
            5 => {
                let p = [25, 50, 60, 75, 90][rng.usize(..5)];
                blocking |= Amount::Percent(p).resolve(n, true) >= n;
                let _ = writeln!(workloads, "    min_available = {p}%");
            }
            6 | 7 => {
                let _ = writeln!(workloads, "    max_unavailable = {}", rng.u32(1..=n));
            }
            _ => {
                let p = [10, 25, 50, 100][rng.usize(..4)];
                let _ = writeln!(workloads, "    max_unavailable = {p}%");
            }
        }
        if rng.u32(0..5) == 0 {
            let _ = writeln!(workloads, "    empty_dir     = true");
        }
        let _ = writeln!(workloads, "    grace_period  = {}", duration_ms(rng.u64(1..=30) * 1000));
        let _ = writeln!(workloads, "    stop_time     = {}", duration_ms(rng.u64(1..=8) * 250));
        let _ = writeln!(workloads, "  }}");
    }
    if rng.u32(0..3) == 0 {
        // A pod with an emptyDir volume (its data is lost when it is evicted).
        pods += 1;
        let _ = writeln!(workloads, "  workload \"scratch\" {{\n    empty_dir = true\n    stop_time = 500ms\n  }}");
    }
    if rng.u32(0..3) == 0 {
        // Bare pods: once evicted, nothing makes them again.
        let n = rng.u32(1..=2);
        pods += n;
        let _ = writeln!(workloads, "  workload \"solo\" {{\n    kind     = \"pod\"\n    replicas = {n}");
        if rng.u32(0..4) == 0 {
            let _ = writeln!(workloads, "    max_unavailable = {n}");
        }
        let _ = writeln!(workloads, "  }}");
    }
    if rng.bool() {
        let _ = writeln!(workloads, "  workload \"agent\" {{\n    kind = \"daemonset\"\n  }}");
    }
    let pods_per_node = pods.div_ceil(replicas) + 1 + rng.u32(0..=2);

    let zones = ["subnet-a", "subnet-b", "subnet-c"];
    let subnets: Vec<String> = zones[..rng.usize(1..=3)].iter().map(|z| format!("\"{z}\"")).collect();
    let drain_grace =
        if rng.u32(0..4) == 0 { format!("\n      grace_period = {}s", rng.u32(1..=5)) } else { String::new() };

    let config = |image: &str| {
        let mut rollout =
            format!("      max_surge       = {}\n      max_unavailable = {}\n", surge.text(), unavailable.text());
        if let Some(ms) = min_ready {
            let _ = writeln!(rollout, "      min_ready       = {}", duration_ms(ms));
        }
        format!(
            r#"provider "sim" {{
  boot_time     = {boot}
  join_delay    = {join}
  pod_start     = {start}
  pods_per_node = {pods_per_node}
  seed          = {sim_seed}

{workloads}}}

cluster "{CLUSTER}" {{
  kubernetes_version = "1.31"
  disruption_budget  = {budget}

  network {{
    subnets = [{subnets}]
  }}

  kubernetes {{}}

  node_group "{NODE_GROUP}" {{
    image         = "{image}"
    instance_type = "m6i.large"
    size          = {replicas}

    rollout {{
{rollout}    }}
    health {{
      node_startup_timeout = 2m
    }}
    drain {{
      timeout    = 2m
      on_timeout = "fail"{drain_grace}
    }}
  }}
}}
"#,
            boot = duration_ms(boot_ms),
            join = duration_ms(join_ms),
            start = duration_ms(pod_start_ms),
            sim_seed = seed + 1,
            budget = budget.text(),
            subnets = subnets.join(", "),
        )
    };

    let mut injections = vec![];
    let faults = match rng.u32(0..10) {
        0..=2 => 0,
        3..=8 => 1,
        _ => 2,
    };
    for _ in 0..faults {
        let fault = match rng.u32(0..4) {
            0 => Fault::CrashOld(rng.usize(..6)),
            1 => Fault::CrashAny,
            2 => Fault::KubeletOld(rng.usize(..6)),
            _ => Fault::KubeletAny,
        };
        // Mostly within the first waves, sometimes later.
        let after_ms = if rng.bool() { rng.u64(0..20_000) } else { rng.u64(0..90_000) };
        injections.push(Injection { fault, after_ms });
    }
    Case { seed, replicas, before: config(OLD_IMAGE), after: config(NEW_IMAGE), injections, blocking }
}

// ---- applying ------------------------------------------------------------------------------

/// The executor's progress lines, kept for the report of a failing case; each stamped with
/// the world's time when `clock` is given (replaying one seed: it costs a read of the world
/// per line).
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    clock: Option<Arc<dyn drydock_provider::Clock>>,
}

impl Progress for Log {
    fn line(&self, text: &str) {
        let line = match &self.clock {
            Some(c) => format!("[t={}ms] {text}", c.now_ms()),
            None => text.to_string(),
        };
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

impl Log {
    fn text(&self) -> String {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }
}

/// Plans the configuration in `dir` and applies the plan as `drydock apply` does (without
/// its lock and terminal), calling `before` with the plan before the executor runs. `Err`: the
/// harness could not get that far (a broken configuration, a failed plan); `Ok(Err)`: the
/// apply failed (a rollout halted, say), with its errors.
async fn apply(
    dir: &Path,
    log: &Arc<Log>,
    before: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Result<(), String>, String> {
    let options = LoadOptions { refresh: true, ..LoadOptions::default() };
    let ws = match drydock_session::load(&dir.join("main.kcl"), &options) {
        Ok(ws) => ws,
        Err(LoadError::Config(loaded)) => {
            let messages: Vec<&str> = loaded.diagnostics.iter().map(|d| d.message.as_str()).collect();
            return Err(format!("the configuration has errors: {messages:?}"));
        }
        Err(LoadError::Backend(e)) => return Err(format!("the state backend: {e}")),
    };
    let state = ws.store.read().await.map_err(|e| format!("reading the state: {e}"))?;
    let planned = drydock_session::make_plan(&ws, state.as_ref(), false).await.map_err(|e| format!("plan: {e}"))?;
    before(&planned.plan)?;
    if planned.plan.is_empty() {
        return Ok(Ok(()));
    }
    let state = state.unwrap_or_else(|| State::new(planned.plan.lineage.clone()));
    let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
    let executor = Arc::new(Executor {
        providers: planned.providers,
        budgets: Default::default(),
        ledger: Arc::clone(&ledger),
        progress: Arc::clone(log) as Arc<dyn Progress>,
        parallelism: 10,
        interrupted: Arc::new(AtomicBool::new(false)),
        lineage: planned.plan.lineage.clone(),
        kubernetes: planned.kubernetes,
    });
    let outcomes = Arc::clone(&executor).run(&planned.plan).await;
    if ledger.write_error().is_none() {
        ledger.close().await.map_err(|e| format!("closing the state journal: {e}"))?;
    }
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .filter(|e| !matches!(e, ApplyError::Skipped { .. }))
        .map(ToString::to_string)
        .collect();
    Ok(if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) })
}

fn status(world: &Path) -> Result<Status, String> {
    drydock_sim::status(world).map_err(|e| format!("sim status: {e}"))
}

fn live(state: InstanceState) -> bool {
    matches!(state, InstanceState::Pending | InstanceState::Running)
}

/// The node group's live instances: (id, image).
fn instances(s: &Status) -> Vec<(String, String)> {
    s.groups
        .iter()
        .filter(|g| g.node_group == NODE_GROUP)
        .flat_map(|g| &g.instances)
        .filter(|i| live(i.state))
        .map(|i| (i.id.clone(), i.image.clone()))
        .collect()
}

// ---- the property --------------------------------------------------------------------------

/// What a failing case reports.
struct Failure {
    problems: Vec<String>,
    apply_error: Option<String>,
    injected: Vec<String>,
    log: String,
    status: Option<Status>,
}

/// The property's checks on the world after the rollout.
fn check(s: &Status, rolled_out: bool, replicas: u32) -> Vec<String> {
    let mut problems = vec![];
    for v in &s.violations {
        match v {
            Violation::BoundPods { .. } => problems.push(format!("an instance terminated with pods bound: {v:?}")),
            Violation::Budget { cause: Cause::Eviction | Cause::Termination, .. } => {
                problems.push(format!("a budget broken: {v:?}"))
            }
            // Only forced deletions (drain.on_timeout = "force", never set here) or the
            // deletion of a Ready Node with pods delete past a budget.
            Violation::Budget { cause: Cause::Deletion, .. } => {
                problems.push(format!("a budget broken by a deletion though nothing is forced: {v:?}"))
            }
        }
    }
    let live_ids: BTreeSet<String> = instances(s).into_iter().map(|(id, _)| id).collect();
    for n in &s.nodes {
        let is_live = n.instance.as_ref().is_some_and(|id| live_ids.contains(id));
        if is_live && n.unschedulable {
            problems.push(format!("Node {} of live instance {:?} is left cordoned", n.name, n.instance));
        }
    }
    if rolled_out {
        let all = instances(s);
        let old: Vec<&(String, String)> = all.iter().filter(|(_, image)| image != NEW_IMAGE).collect();
        if !old.is_empty() {
            problems.push(format!("the rollout succeeded but instances of the old generation live: {old:?}"));
        }
        if all.len() != replicas as usize {
            problems.push(format!("the rollout succeeded with {} live instances, not {replicas}: {all:?}", all.len()));
        }
        let old_groups: Vec<&str> = s
            .groups
            .iter()
            .filter(|g| g.node_group == NODE_GROUP && g.instances.iter().any(|i| i.image != NEW_IMAGE))
            .map(|g| g.name.as_str())
            .collect();
        if !old_groups.is_empty() {
            problems.push(format!("the rollout succeeded but old groups are left: {old_groups:?}"));
        }
        for n in &s.nodes {
            if !n.instance.as_ref().is_some_and(|id| live_ids.contains(id)) {
                problems.push(format!(
                    "the rollout succeeded but Node {} (ready {:?}) has no live instance ({:?})",
                    n.name, n.ready, n.instance
                ));
            }
        }
    }
    problems
}

/// Runs one case in `dir`. `Ok(true)`: the rollout succeeded, `Ok(false)`: it halted.
fn run_case(case: &Case, dir: &Path, stamped: bool) -> Result<bool, Box<Failure>> {
    let fail = |problems: Vec<String>, apply_error: Option<String>, injected: &[String], log: &Log, status| {
        Box::new(Failure { problems, apply_error, injected: injected.to_vec(), log: log.text(), status })
    };
    let world = drydock_session::sim_world(dir);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let clock = stamped.then(|| {
        let sim =
            drydock_sim::SimProvider::new(&world, drydock_sim::SimConfig::default(), drydock_sim::ClockMode::Virtual);
        drydock_provider::Provider::clock(&sim)
    });
    let log = Arc::new(Log { lines: Mutex::default(), clock });

    // The first generation.
    std::fs::write(dir.join("main.kcl"), &case.before).expect("writing the configuration");
    match rt.block_on(apply(dir, &log, |_| Ok(()))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(vec!["the first apply (create) failed".into()], Some(e), &[], &log, None)),
        Err(e) => return Err(fail(vec![format!("the first apply could not run: {e}")], None, &[], &log, None)),
    }
    if let Err(e) = drydock_sim::advance(&world, 30_000) {
        return Err(fail(vec![format!("advance: {e}")], None, &[], &log, None));
    }
    let before = status(&world).map_err(|e| fail(vec![e], None, &[], &log, None))?;
    {
        let mut problems = check(&before, false, case.replicas);
        let ready = before.nodes.iter().filter(|n| n.ready == ConditionStatus::True).count();
        if ready != case.replicas as usize {
            problems.push(format!("after the create, {ready} Nodes are Ready, not {}", case.replicas));
        }
        if let Some(p) = before.pods.iter().find(|p| p.phase != "Running" || !p.ready) {
            problems.push(format!("after the create, pod {}/{} is not running and ready", p.namespace, p.name));
        }
        if !problems.is_empty() {
            return Err(fail(problems, None, &[], &log, Some(before)));
        }
    }
    let old: Vec<String> = instances(&before).into_iter().map(|(id, _)| id).collect();
    log.line(&format!("---- rollout of the old generation's {old:?} ----"));

    // The second generation: plan, inject the failures, apply.
    std::fs::write(dir.join("main.kcl"), &case.after).expect("writing the configuration");
    let mut injected = vec![];
    let inject = |plan: &Plan| -> Result<(), String> {
        if !plan.changes.iter().any(|c| c.address.ends_with(".node_group.workers")) {
            return Err(format!("the plan has no change of the node group: {:?}", plan.changes));
        }
        for i in &case.injections {
            let target = match i.fault {
                Fault::CrashOld(n) => FailTarget::Instance(old[n % old.len()].clone()),
                Fault::CrashAny => {
                    FailTarget::NodeGroup { cluster: Some(CLUSTER.into()), node_group: NODE_GROUP.into(), count: 1 }
                }
                Fault::KubeletOld(n) => FailTarget::Kubelet {
                    instance: Some(old[n % old.len()].clone()),
                    cluster: None,
                    node_group: None,
                    count: 0,
                },
                Fault::KubeletAny => FailTarget::Kubelet {
                    instance: None,
                    cluster: Some(CLUSTER.into()),
                    node_group: Some(NODE_GROUP.into()),
                    count: 1,
                },
            };
            let at = drydock_sim::schedule_fail(&world, target.clone(), i.after_ms)
                .map_err(|e| format!("schedule_fail {target:?}: {e}"))?;
            injected.push(format!("{target:?} at t={at}ms"));
        }
        Ok(())
    };
    let outcome = match rt.block_on(apply(dir, &log, inject)) {
        Ok(outcome) => outcome,
        Err(e) => return Err(fail(vec![format!("the rollout could not run: {e}")], None, &injected, &log, None)),
    };
    let rolled_out = outcome.is_ok();
    let apply_error = outcome.err();
    let after = status(&world).map_err(|e| fail(vec![e], apply_error.clone(), &injected, &log, None))?;
    let problems = check(&after, rolled_out, case.replicas);
    if !problems.is_empty() {
        return Err(fail(problems, apply_error, &injected, &log, Some(after)));
    }
    // Whatever the cloud does on its own from the settings drydock left (its groups' sizes)
    // must not break a budget either.
    if let Err(e) = drydock_sim::advance(&world, 60_000) {
        return Err(fail(vec![format!("advance: {e}")], apply_error, &injected, &log, Some(after)));
    }
    let later = status(&world).map_err(|e| fail(vec![e], apply_error.clone(), &injected, &log, None))?;
    let problems: Vec<String> =
        check(&later, false, case.replicas).into_iter().map(|p| format!("60 s after the apply: {p}")).collect();
    if !problems.is_empty() {
        return Err(fail(problems, apply_error, &injected, &log, Some(later)));
    }
    drop(rt);
    Ok(rolled_out)
}

fn report(case: &Case, f: &Failure) -> String {
    let status = f
        .status
        .as_ref()
        .map(|s| serde_json::to_string_pretty(s).unwrap_or_else(|e| format!("(unserialisable: {e})")))
        .unwrap_or_else(|| "(none)".into());
    format!(
        "seed {seed} (replay: DRYDOCK_PROP_SEED={seed} cargo test -p drydock-session --test rollouts)\n\
         problems:\n  {problems}\n\
         injected: {injected:?}\n\
         apply error: {error}\n\
         --- configuration (rollout to {NEW_IMAGE} from {OLD_IMAGE}) ---\n{config}\n\
         --- progress ---\n{log}\n\
         --- sim status ---\n{status}\n",
        seed = case.seed,
        problems = f.problems.join("\n  "),
        injected = f.injected,
        error = f.apply_error.as_deref().unwrap_or("(none: it succeeded)"),
        config = case.after,
        log = f.log,
    )
}

/// Where the cases' directories go: memory if there is a tmpfs (the sim's world and the state
/// are fsynced at every step; on tmpfs that costs nothing), else the system's temp dir.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value} is not a whole number")))
}

#[test]
fn random_rollouts_never_break_a_budget_nor_leave_pods_bound_nor_nodes_cordoned() {
    // Before any provider is built, for the whole process: the sim's clock is virtual, so a
    // rollout of minutes takes milliseconds. (Edition 2021: `set_var` is safe; this is this
    // binary's only test, so no other thread reads the environment meanwhile.)
    std::env::set_var(drydock_sim::CLOCK_ENV, "virtual");

    // Replaying chosen seeds, progress lines carry the world's time.
    let replay = std::env::var_os("DRYDOCK_PROP_SEED").is_some();
    let seeds: Vec<u64> = match std::env::var("DRYDOCK_PROP_SEED") {
        // One seed, or several separated by commas.
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("DRYDOCK_PROP_SEED={list}: not whole numbers")))
            .collect(),
        Err(_) => (0..env_u64("DRYDOCK_PROP_CASES").unwrap_or(1_000)).collect(),
    };
    let threads = env_u64("DRYDOCK_PROP_THREADS")
        .map(|t| t.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let root = scratch();
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let rolled_out = AtomicU64::new(0);
    let halted = AtomicU64::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(vec![]);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(seeds.len()).max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(&seed) = seeds.get(i) else { break };
                let case = generate(seed);
                let dir = tempfile::Builder::new()
                    .prefix("drydock-rollouts-")
                    .tempdir_in(&root)
                    .expect("a temporary directory");
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&case, dir.path(), replay)));
                match result {
                    Ok(Ok(true)) => {
                        rolled_out.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Ok(false)) => {
                        halted.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Err(f)) => {
                        let text = report(&case, &f);
                        eprintln!("---- FAILED ----\n{text}");
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push((seed, text));
                    }
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a panic".into());
                        let text = format!("seed {seed} panicked: {message}\n--- configuration ---\n{}", case.after);
                        eprintln!("---- FAILED ----\n{text}");
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push((seed, text));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(seed, _)| *seed);
    let blocking = seeds.iter().filter(|s| generate(**s).blocking).count();
    eprintln!(
        "{} cases in {:.1} s on {threads} threads: {} rolled out, {} halted ({blocking} with a budget that allows no disruption), {} failed{}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        rolled_out.load(Ordering::SeqCst),
        halted.load(Ordering::SeqCst),
        failures.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(": seeds {:?}", failures.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        }
    );
    if let Some((_, first)) = failures.first() {
        panic!(
            "{} of {} cases broke the property (seeds {:?}); the first:\n{first}",
            failures.len(),
            seeds.len(),
            failures.iter().map(|(s, _)| *s).collect::<Vec<_>>()
        );
    }
}
