//! Planning at scale: parse → evaluate → plan for N node groups against a state (and an
//! observed cloud) in which all N are applied, so the plan must say "No changes".
//! Each size runs in a child process, so its peak memory is its own.
//! Run: `cargo bench -p drydock-plan --bench plan`. Goal (issue 3): 10,000 node groups in under 1 s and
//! 500 MB, and doubling the size costs at most 2.2× the time.

use std::collections::BTreeMap;
use std::time::Instant;

use drydock_config::{load_sources, Inputs};
use drydock_plan::{plan, PlanInput};
use drydock_provider::Observed;
use drydock_state::State;
use drydock_syntax::diag::Sources;
use drydock_testgen::fleet;

const LINEAGE: &str = "0b5e55ed-0000-4000-8000-000000000000";

fn main() {
    if let Ok(n) = std::env::var("DRYDOCK_BENCH_PLAN_SIZE") {
        child(n.parse().expect("a size"));
        return;
    }
    println!("{:>12} {:>14} {:>12} {:>12} {:>10}", "node groups", "parse+eval ms", "plan ms", "total ms", "peak MB");
    let mut totals = vec![];
    for n in [10_000usize, 20_000] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("DRYDOCK_BENCH_PLAN_SIZE", n.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{line}");
        let total: f64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
        totals.push(total);
    }
    println!("doubling the size costs {:.2}× the time", totals[1] / totals[0]);
}

/// Best of three runs of parse → evaluate → plan; prints one row.
fn child(n: usize) {
    let src = fleet(n, 42);
    let load = || {
        let mut sources = Sources::new();
        sources.add("fleet.kcl", "fleet.kcl", src.as_str());
        load_sources(sources, &Inputs::default()).model.expect("the generated fleet is valid")
    };
    // The applied world: plan once against nothing, and take its targets as done.
    let boot = BTreeMap::from([("sim".to_string(), 2_000u64)]);
    let nothing: BTreeMap<String, Observed> = BTreeMap::from([("sim".to_string(), Observed::default())]);
    fn input<'a>(
        model: &'a drydock_config::Model,
        state: Option<&'a State>,
        observed: &'a BTreeMap<String, Observed>,
        boot: &'a BTreeMap<String, u64>,
    ) -> PlanInput<'a> {
        PlanInput {
            model,
            state,
            lineage: LINEAGE,
            observed,
            boot_estimate_ms: boot,
            config_digest: String::new(),
            config_path: "fleet.kcl".into(),
            destroy: false,
            refreshed: true,
            kubernetes: &NO_KUBE,
            replace: &NO_REPLACE,
            specs: &NO_SPECS,
            foreign: &NO_FOREIGN,
            settings: &NO_SETTINGS,
            now_ms: BTreeMap::new(),
        }
    }
    let first = {
        let model = load();
        plan(&input(&model, None, &nothing, &boot)).expect("a plan")
    };
    let (state, observed) = drydock_testgen::applied_world(&first);

    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        let model = load();
        let parsed = t.elapsed().as_secs_f64();
        let p = plan(&input(&model, Some(&state), &observed, &boot)).expect("a plan");
        let total = t.elapsed().as_secs_f64();
        assert!(p.is_empty(), "an applied fleet plans no changes, got {} changes", p.changes.len());
        if total < best.1 {
            best = (parsed, total);
        }
    }
    let peak_mb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
        / 1024.0;
    println!(
        "{n:>12} {:>14.1} {:>12.1} {:>12.1} {:>10.0}",
        best.0 * 1e3,
        (best.1 - best.0) * 1e3,
        best.1 * 1e3,
        peak_mb
    );
}

/// No cluster has a Kubernetes API here.
static NO_KUBE: std::collections::BTreeMap<String, drydock_plan::kube::KubeObserved> =
    std::collections::BTreeMap::new();
static NO_REPLACE: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
static NO_SPECS: std::collections::BTreeMap<String, drydock_provider::GenerationSpec> =
    std::collections::BTreeMap::new();
static NO_FOREIGN: std::collections::BTreeMap<String, drydock_provider::Observed> = std::collections::BTreeMap::new();
static NO_SETTINGS: std::collections::BTreeMap<String, drydock_model::NodeSettings> = std::collections::BTreeMap::new();
