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
//! Each case is one seed: a fresh directory (under /dev/shm when there is one: the world and
//! the state are fsynced at every step) with a generated configuration — one cluster with
//! `kubernetes {}`, one node group of 2 to 6 nodes over 1 to 3 zones, a random `rollout`
//! (surge and unavailability as counts or percentages, capped by a random cluster
//! `disruption_budget`, never both 0; sometimes `min_ready`), `drain { timeout = 2m,
//! on_timeout = "fail" }` (never forced: forcing bypasses budgets by design), and workloads
//! that fit (`pods_per_node` ≥ ⌈pods / nodes⌉ + 1): Deployments and StatefulSets with random
//! budgets (sometimes one that never allows a disruption: that rollout halts), sometimes
//! emptyDir pods, bare pods, a DaemonSet. It is created, the clock advanced until the pods run,
//! the image changed and planned, failures scheduled at random moments of the rollout (an
//! instance crash, old or any; a kubelet dying, old or any), and the plan applied. Any outcome
//! is allowed; what it leaves is checked, then checked again 60 s (of the world's time) later.
//!
//! `DRYDOCK_PROP_CASES=N` runs seeds 0..N (default 1,000); `DRYDOCK_PROP_SEED=S` (or `S1,S2,…`)
//! runs those seeds alone and reports every one, failing or not; `DRYDOCK_PROP_THREADS=T` runs
//! T cases at once (default: the machine's cores); `DRYDOCK_PROP_STAMP=1` stamps progress
//! lines with the world's time. A failing case prints its seed, its configuration, the
//! injected failures, the apply's error, the executor's progress and the sim's status as JSON.
//! A case replays the same way nearly always: the world is seeded, but the executor drains a
//! wave's nodes concurrently, each sleeping on the one virtual clock, so how their calls
//! interleave (and so which drain times out first) can vary from run to run.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Some budget allows no disruption at all, or a do-not-disrupt pod runs: the rollout is
    /// expected to halt (not checked: any outcome is allowed, only violations are not).
    blocking: bool,
    /// A bare pod `default/keep-0` marked `drydock.dev/do-not-disrupt` runs: no drain may
    /// evict it (docs/kubernetes.md: the drain waits for it until drain.timeout).
    guarded: bool,
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
    if ms.is_multiple_of(1000) {
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
    // Drawn from random numbers of its own, so that the rest of a seed's case does not depend
    // on it.
    let guarded = fastrand::Rng::with_seed(seed ^ 0x5eed_d0d0).u32(0..8) == 0;
    if guarded {
        pods += 1;
        blocking = true;
        let _ = writeln!(
            workloads,
            "  workload \"keep\" {{\n    kind           = \"pod\"\n    do_not_disrupt = true\n  }}"
        );
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
    Case { seed, replicas, before: config(OLD_IMAGE), after: config(NEW_IMAGE), injections, blocking, guarded }
}

// ---- applying ------------------------------------------------------------------------------

/// The executor's progress lines, kept for the report of a failing case; each stamped with
/// the world's time when `clock` is given (`DRYDOCK_PROP_STAMP=1`: a read of the world per
/// line).
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
        etcd: Default::default(),
        join: Default::default(),
        announced: Default::default(),
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

/// What a case did, and what is wrong with it (nothing: it holds).
#[derive(Default)]
struct Run {
    problems: Vec<String>,
    /// Whether the rollout succeeded (`None`: it did not run).
    rolled_out: Option<bool>,
    apply_error: Option<String>,
    injected: Vec<String>,
    log: String,
    status: Option<Status>,
}

/// The property's checks on the world after the rollout.
fn check(s: &Status, rolled_out: bool, case: &Case) -> Vec<String> {
    let replicas = case.replicas;
    let mut problems = vec![];
    // A pod marked do-not-disrupt is never evicted; only a failure (its node's instance
    // crashing, which kills it) may take it, so this is checked in cases without any.
    if case.guarded
        && case.injections.is_empty()
        && !s.pods.iter().any(|p| p.namespace == "default" && p.name == "keep-0")
    {
        problems.push("the do-not-disrupt pod default/keep-0 is gone: it was evicted".into());
    }
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

/// Runs one case in `dir`; `stamped`: progress lines carry the world's time.
fn run_case(case: &Case, dir: &Path, stamped: bool) -> Run {
    let world = drydock_session::sim_world(dir);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let clock = stamped.then(|| {
        let sim =
            drydock_sim::SimProvider::new(&world, drydock_sim::SimConfig::default(), drydock_sim::ClockMode::Virtual);
        drydock_provider::Provider::clock(&sim)
    });
    let log = Arc::new(Log { lines: Mutex::default(), clock });
    let mut run = Run::default();
    let result = steps(case, dir, &world, &rt, &log, &mut run);
    if let Err(e) = result {
        run.problems.push(e);
    }
    run.log = log.text();
    run
}

/// The steps of a case, filling `run`; `Err`: the case could not go on.
fn steps(
    case: &Case,
    dir: &Path,
    world: &Path,
    rt: &tokio::runtime::Runtime,
    log: &Arc<Log>,
    run: &mut Run,
) -> Result<(), String> {
    // The first generation.
    std::fs::write(dir.join("main.kcl"), &case.before).map_err(|e| format!("writing the configuration: {e}"))?;
    match rt.block_on(apply(dir, log, |_| Ok(()))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            run.apply_error = Some(e);
            return Err("the first apply (create) failed".into());
        }
        Err(e) => return Err(format!("the first apply could not run: {e}")),
    }
    drydock_sim::advance(world, 30_000).map_err(|e| format!("advance: {e}"))?;
    let before = status(world)?;
    let mut problems = check(&before, false, case);
    let ready = before.nodes.iter().filter(|n| n.ready == ConditionStatus::True).count();
    if ready != case.replicas as usize {
        problems.push(format!("after the create, {ready} Nodes are Ready, not {}", case.replicas));
    }
    if let Some(p) = before.pods.iter().find(|p| p.phase != "Running" || !p.ready) {
        problems.push(format!("after the create, pod {}/{} is not running and ready", p.namespace, p.name));
    }
    if !problems.is_empty() {
        run.problems = problems;
        run.status = Some(before);
        return Ok(());
    }
    let old: Vec<String> = instances(&before).into_iter().map(|(id, _)| id).collect();
    log.line(&format!("---- rollout of the old generation's {old:?} ----"));

    // The second generation: plan, inject the failures, apply.
    std::fs::write(dir.join("main.kcl"), &case.after).map_err(|e| format!("writing the configuration: {e}"))?;
    let injected = &mut run.injected;
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
            let at = drydock_sim::schedule_fail(world, target.clone(), i.after_ms)
                .map_err(|e| format!("schedule_fail {target:?}: {e}"))?;
            injected.push(format!("{target:?} at t={at}ms"));
        }
        Ok(())
    };
    let outcome = rt.block_on(apply(dir, log, inject)).map_err(|e| format!("the rollout could not run: {e}"))?;
    run.rolled_out = Some(outcome.is_ok());
    run.apply_error = outcome.err();
    let after = status(world)?;
    run.problems = check(&after, run.rolled_out == Some(true), case);
    run.status = Some(after);
    if !run.problems.is_empty() {
        return Ok(());
    }
    // Whatever the cloud does on its own from the settings drydock left (its groups' sizes)
    // must not break a budget either.
    drydock_sim::advance(world, 60_000).map_err(|e| format!("advance: {e}"))?;
    let later = status(world)?;
    run.problems = check(&later, false, case).into_iter().map(|p| format!("60 s after the apply: {p}")).collect();
    run.status = Some(later);
    Ok(())
}

fn report(case: &Case, f: &Run) -> String {
    let status = f
        .status
        .as_ref()
        .map(|s| serde_json::to_string_pretty(s).unwrap_or_else(|e| format!("(unserialisable: {e})")))
        .unwrap_or_else(|| "(none)".into());
    format!(
        "seed {seed} (replay: DRYDOCK_PROP_SEED={seed} cargo test -p drydock-session --test rollouts)\n\
         problems:\n  {problems}\n\
         a budget allows no disruption or a pod is do-not-disrupt: {blocking}\n\
         injected: {injected:?}\n\
         apply error: {error}\n\
         --- configuration (rollout to {NEW_IMAGE} from {OLD_IMAGE}) ---\n{config}\n\
         --- progress ---\n{log}\n\
         --- sim status ---\n{status}\n",
        seed = case.seed,
        blocking = case.blocking,
        problems = if f.problems.is_empty() { "(none)".to_string() } else { f.problems.join("\n  ") },
        injected = f.injected,
        error = match (&f.apply_error, f.rolled_out) {
            (Some(e), _) => e.as_str(),
            (None, Some(true)) => "(none: it succeeded)",
            (None, _) => "(none: it did not run)",
        },
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

/// What stopped a rollout that halted, in a few words, for the summary.
fn halt_kind(error: &str) -> String {
    if error.contains("was not drained after drain.timeout") {
        "drain timed out".into()
    } else if error.contains("new nodes were not healthy") {
        "new nodes not Ready".into()
    } else {
        error.lines().next().unwrap_or_default().chars().take(100).collect()
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

    // Replaying chosen seeds, every case is reported, failing or not.
    let replay = std::env::var_os("DRYDOCK_PROP_SEED").is_some();
    // Progress lines carry the world's time (each costs a read of the world under its lock,
    // which changes how the executor's concurrent tasks interleave).
    let stamped = env_u64("DRYDOCK_PROP_STAMP").is_some_and(|v| v != 0);
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
    // Per outcome, the cases and the seconds they took.
    let outcomes: Mutex<BTreeMap<String, (u64, f64)>> = Mutex::default();
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
                let took = Instant::now();
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&case, dir.path(), stamped)));
                let kind = match &result {
                    Ok(run) if !run.problems.is_empty() => "failed".to_string(),
                    Ok(run) if run.rolled_out == Some(true) => "rolled out".to_string(),
                    Ok(run) => format!("halted: {}", halt_kind(run.apply_error.as_deref().unwrap_or_default())),
                    Err(_) => "panicked".to_string(),
                };
                {
                    let mut outcomes = outcomes.lock().unwrap_or_else(|e| e.into_inner());
                    let (n, secs) = outcomes.entry(kind).or_default();
                    *n += 1;
                    *secs += took.elapsed().as_secs_f64();
                }
                match result {
                    Ok(run) if !run.problems.is_empty() => {
                        let text = report(&case, &run);
                        eprintln!("---- FAILED ----\n{text}");
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push((seed, text));
                    }
                    Ok(run) => {
                        if replay {
                            eprintln!("---- PASSED ----\n{}", report(&case, &run));
                        }
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
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(seed, _)| *seed);
    let blocking = seeds.iter().filter(|s| generate(**s).blocking).count();
    let outcomes: Vec<String> = outcomes.iter().map(|(kind, (n, secs))| format!("{n} {kind} ({secs:.1} s)")).collect();
    eprintln!(
        "{} cases in {:.1} s on {threads} threads ({blocking} with a budget that allows no disruption or a do-not-disrupt pod): {}{}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        outcomes.join(", "),
        if failures.is_empty() {
            String::new()
        } else {
            format!("; failing seeds {:?}", failures.iter().map(|(s, _)| *s).collect::<Vec<_>>())
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
