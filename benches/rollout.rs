//! A Kubernetes-aware rollout's time against its physical floor, on the simulated cloud's
//! virtual clock: `cargo bench --bench rollout`.
//!
//! The floor is what no tool could beat: every wave waits for its new nodes to boot and join
//! (their Node Ready) and then drains its old nodes (their pods take `stop_time` to exit), so a
//! rollout takes at least `waves × (boot + join + stop)`. What drydock adds on top — polling
//! granularity, the journal, the API round trips, deleting Nodes — is its overhead; the target
//! is at most 5% of the floor. Times are those of the simulated world (the `now_ms` of
//! `sim status --json` before and after the apply), so the figures do not depend on the
//! machine; the wall time of the apply is printed too.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

struct Case {
    name: &'static str,
    workers: u32,
    surge: &'static str,
    boot_s: u64,
    join_s: u64,
    stop_s: u64,
    /// `min_available` of the workload's budget, if any.
    budget: Option<u32>,
    replicas: u32,
}

fn config(c: &Case, image: &str) -> String {
    let budget = c.budget.map(|m| format!("\n    min_available = {m}")).unwrap_or_default();
    format!(
        r#"
provider "sim" {{
  boot_time     = {boot}s
  join_delay    = {join}s
  pod_start     = 5s
  pods_per_node = 20

  workload "web" {{
    replicas     = {replicas}
    stop_time    = {stop}s
    grace_period = 60s{budget}
  }}
  workload "node-exporter" {{
    kind = "daemonset"
  }}
}}

cluster "bench" {{
  kubernetes_version = "1.31"

  network {{
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }}

  kubernetes {{}}

  node_group "workers" {{
    image         = "{image}"
    instance_type = "m6i.large"
    size          = {workers}

    rollout {{
      max_surge       = {surge}
      max_unavailable = 0
    }}
  }}
}}
"#,
        boot = c.boot_s,
        join = c.join_s,
        stop = c.stop_s,
        replicas = c.replicas,
        workers = c.workers,
        surge = c.surge,
    )
}

fn drydock(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(dir)
        .args(args)
        .env("DRYDOCK_SIM_CLOCK", "virtual")
        .env("NO_COLOR", "1")
        .output()
        .expect("the drydock binary runs");
    assert!(
        out.status.success(),
        "drydock {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&drydock(dir, args).stdout).expect("JSON")
}

fn main() {
    let cases = [
        Case {
            name: "4 workers, surge 1, no budget",
            workers: 4,
            surge: "1",
            boot_s: 45,
            join_s: 20,
            stop_s: 10,
            budget: None,
            replicas: 8,
        },
        Case {
            name: "8 workers, surge 2, no budget",
            workers: 8,
            surge: "2",
            boot_s: 45,
            join_s: 20,
            stop_s: 10,
            budget: None,
            replicas: 16,
        },
        Case {
            name: "6 workers, surge 1, budget 5 of 6",
            workers: 6,
            surge: "1",
            boot_s: 45,
            join_s: 20,
            stop_s: 10,
            budget: Some(5),
            replicas: 6,
        },
    ];
    println!("{:<36} {:>6} {:>10} {:>10} {:>9} {:>8}", "case", "waves", "floor", "took", "overhead", "wall");
    for c in &cases {
        let dir = tempfile::tempdir().expect("a temp dir");
        let d = dir.path();
        std::fs::write(d.join("main.kcl"), config(c, "img-1")).unwrap();
        drydock(d, &["apply", ".", "--auto-approve"]);
        // Let the pods settle before the rollout starts.
        drydock(d, &["sim", "advance", ".", "1m"]);
        std::fs::write(d.join("main.kcl"), config(c, "img-2")).unwrap();
        let plan = json(d, &["plan", ".", "--format", "json"]);
        let waves = plan["changes"][0]["waves"].as_array().map_or(0, Vec::len) as u64;
        let before = json(d, &["sim", "status", ".", "--json"])["now_ms"].as_u64().unwrap();
        let wall = Instant::now();
        drydock(d, &["apply", ".", "--auto-approve"]);
        let wall = wall.elapsed();
        let status = json(d, &["sim", "status", ".", "--json"]);
        let after = status["now_ms"].as_u64().unwrap();
        let violations = status["violations"].as_array().map_or(0, Vec::len);
        assert_eq!(violations, 0, "{:#}", status["violations"]);
        let took = after - before;
        // With a budget, a node's second pod can only go once the first one's replacement
        // is Ready elsewhere (pod_start): that wait is physical too.
        let per_wave = (c.boot_s + c.join_s + c.stop_s) * 1000;
        let floor = waves * per_wave;
        let overhead = (took as f64 - floor as f64) / floor as f64 * 100.0;
        println!(
            "{:<36} {:>6} {:>9}s {:>9}s {:>8.1}% {:>7.2}s",
            c.name,
            waves,
            floor / 1000,
            took as f64 / 1000.0,
            overhead,
            wall.as_secs_f64()
        );
    }
}
