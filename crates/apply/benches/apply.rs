//! Applying at scale on the simulated cloud (virtual clock, boot time 0): generated fleets of
//! 1,000 to 10,000 node groups, and one node group of 10,000 and of 100,000 nodes. Each case
//! runs in a child process (its own memory and its own I/O counters) and does what `drydock
//! apply` does: parse and evaluate, plan against an empty state, execute with the state on
//! disk (journal, compaction at the end), then plan again and expect no changes.
//!
//! Run: `cargo bench -p drydock-apply --bench apply` (`-- 1000 2000` for some sizes only).
//! Goals (issue 13): 10,000 node groups applied in under 30 s with doubling costing at most
//! 2.2×; one node group of 100,000 nodes applied in under 30 s and planned in under 1 s;
//! the bytes written (state and the sim's world) growing linearly.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use drydock_apply::{Executor, Ledger, Progress};
use drydock_config::Inputs;
use drydock_plan::{Plan, PlanInput};
use drydock_provider::Provider;
use drydock_sim::{ClockMode, SimConfig, SimProvider};
use drydock_state::backend::Store;
use drydock_state::store::LocalStore;
use drydock_state::State;

const LINEAGE: &str = "0b5e55ed-0000-4000-8000-000000000000";

struct Quiet;
impl Progress for Quiet {
    fn line(&self, _: &str) {}
}

fn main() {
    if let Ok(case) = std::env::var("DRYDOCK_BENCH_APPLY_CASE") {
        child(&case);
        return;
    }
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let cases: Vec<String> =
        ["groups:1000", "groups:2000", "groups:4000", "groups:10000", "nodes:10000", "nodes:100000"]
            .iter()
            .map(|c| c.to_string())
            .filter(|c| picked.is_empty() || picked.iter().any(|p| c.ends_with(&format!(":{p}")) || c == p))
            .collect();
    println!(
        "{:<14} {:>8} {:>10} {:>10} {:>12} {:>14} {:>10}",
        "case", "nodes", "apply s", "replan s", "written MB", "state+world MB", "peak MB"
    );
    let mut applies: Vec<(String, f64)> = vec![];
    for case in cases {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("DRYDOCK_BENCH_APPLY_CASE", &case)
            .output()
            .unwrap();
        assert!(out.status.success(), "{case}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{line}");
        let apply: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        applies.push((case, apply));
    }
    for pair in applies.windows(2) {
        let ((a, ta), (b, tb)) = (&pair[0], &pair[1]);
        if a.starts_with("groups:") && b.starts_with("groups:") {
            println!("{a} -> {b}: {:.2}x the time", tb / ta);
        }
    }
}

/// Bytes this process (and its reaped children) wrote through `write` calls so far.
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn source(case: &str) -> String {
    let (kind, n) = case.split_once(':').unwrap();
    let n: usize = n.parse().unwrap();
    match kind {
        "groups" => drydock_testgen::fleet(n, 7).replace("boot_time = 1s", "boot_time = 0s"),
        _ => format!(
            "provider \"sim\" {{\n  boot_time = 0s\n}}\ncluster \"big\" {{\n  kubernetes_version = \"1.31\"\n  network {{\n    subnets = [\"subnet-a\", \"subnet-b\"]\n  }}\n  node_group \"workers\" {{\n    image         = \"img-1\"\n    instance_type = \"m6i.large\"\n    size          = {n}\n  }}\n}}\n"
        ),
    }
}

fn plan_once(dir: &Path, provider: &Arc<dyn Provider>, state: Option<&State>, rt: &tokio::runtime::Runtime) -> Plan {
    let loaded = drydock_config::load(dir, &Inputs::default());
    let model = loaded.model.expect("the bench configuration is valid");
    let observed = BTreeMap::from([("sim".to_string(), rt.block_on(provider.observe(LINEAGE)).unwrap())]);
    let input = PlanInput {
        model: &model,
        state,
        lineage: LINEAGE,
        observed: &observed,
        boot_estimate_ms: &BTreeMap::from([("sim".to_string(), 0)]),
        config_digest: "bench".into(),
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
    let plan = drydock_plan::plan(&input).expect("plans");
    // Leaving the model to the end of the process, as the command line does.
    std::mem::forget(model);
    plan
}

fn child(case: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.kcl"), source(case)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let provider: Arc<dyn Provider> = Arc::new(SimProvider::new(
        dir.path().join("world.json"),
        SimConfig { boot_time_ms: 0, shutdown_time_ms: 0, ..SimConfig::default() },
        ClockMode::Virtual,
    ));
    let store = Store::Local(LocalStore::new(dir.path().join("drydock.state.json")));
    let written_before = written_bytes();

    let started = Instant::now();
    let plan = plan_once(dir.path(), &provider, None, &rt);
    let ledger = Arc::new(Ledger::new(State::new(LINEAGE.into()), store.clone()));
    let executor = Arc::new(Executor {
        providers: BTreeMap::from([("sim".to_string(), Arc::clone(&provider))]),
        budgets: Default::default(),
        ledger: Arc::clone(&ledger),
        progress: Arc::new(Quiet),
        // The command line's default.
        parallelism: 10,
        interrupted: Arc::new(AtomicBool::new(false)),
        lineage: LINEAGE.into(),
        kubernetes: Default::default(),
        etcd: Default::default(),
        join: Default::default(),
        announced: Default::default(),
    });
    let outcomes = rt.block_on(Arc::clone(&executor).run(&plan));
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(failed.is_empty(), "{case}: {} changes failed, first {:?}", failed.len(), failed[0].result);
    rt.block_on(ledger.close()).unwrap();
    let apply_s = started.elapsed().as_secs_f64();
    let written = written_bytes() - written_before;

    let started = Instant::now();
    let state = rt.block_on(store.read()).unwrap().unwrap();
    let again = plan_once(dir.path(), &provider, Some(&state), &rt);
    let replan_s = started.elapsed().as_secs_f64();
    assert!(again.is_empty(), "{case}: the plan after the apply is not empty: {} changes", again.changes.len());

    let nodes: usize = rt.block_on(provider.observe(LINEAGE)).unwrap().groups.iter().map(|g| g.instances.len()).sum();
    let on_disk: u64 =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    println!(
        "{:<14} {:>8} {:>10.2} {:>10.2} {:>12.1} {:>14.1} {:>10.0}",
        case,
        nodes,
        apply_s,
        replan_s,
        written as f64 / 1e6,
        on_disk as f64 / 1e6,
        peak_mb()
    );
    std::mem::forget(state);
    std::mem::forget(plan);
}
