//! End to end through the binary on the simulated cloud (virtual clock): create, a
//! rollout planned wave by wave and applied from a saved plan, the capacity floor and
//! ceiling checked against the cloud's own timeline, halts, and destroy.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A copy of the quickstart in a temporary directory.
fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = common::repo().join("examples/quickstart");
    std::fs::create_dir_all(dir.path().join("bootstrap")).unwrap();
    std::fs::copy(src.join("cluster.kcl"), dir.path().join("cluster.kcl")).unwrap();
    std::fs::copy(src.join("bootstrap/worker.sh"), dir.path().join("bootstrap/worker.sh")).unwrap();
    dir
}

fn dd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(dir)
        .args(args)
        .env("DRYDOCK_SIM_CLOCK", "virtual")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dd(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn status(dir: &Path) -> Value {
    serde_json::from_str(&ok(dir, &["sim", "status", ".", "--json"])).unwrap()
}

fn groups<'a>(s: &'a Value, node_group: &str) -> Vec<&'a Value> {
    s["groups"].as_array().unwrap().iter().filter(|g| g["node_group"] == node_group).collect()
}

fn live_instances(g: &Value) -> Vec<&Value> {
    g["instances"].as_array().unwrap().iter().filter(|i| i["state"] == "pending" || i["state"] == "running").collect()
}

#[test]
fn create_roll_out_and_destroy() {
    let dir = quickstart();
    let d = dir.path();
    let out = ok(d, &["apply", ".", "--auto-approve"]);
    assert!(out.contains("Apply complete: 2 to create"), "{out}");
    let s = status(d);
    assert_eq!(groups(&s, "control-plane").len(), 3, "one group per control-plane member");
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1);
    let old_ids: Vec<String> =
        live_instances(workers[0]).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(old_ids.len(), 4, "desired = 4 is pinned");
    assert!(live_instances(workers[0]).iter().all(|i| i["healthy"] == true && i["image"] == "img-worker-2026-11"));
    assert!(ok(d, &["plan", "."]).contains("No changes."));

    // The plan names every old instance in its waves, with the floor and ceiling.
    let plan = ok(d, &["plan", ".", "--var", "worker_image=img-2026-12", "--out", "rollout.plan"]);
    assert!(plan.contains("cluster.demo.node_group.workers will be rolled out: 4 nodes replaced in 4 waves"), "{plan}");
    assert!(plan.contains("~ image = \"img-worker-2026-11\" -> \"img-2026-12\"  # forces replacement"), "{plan}");
    for id in &old_ids {
        assert_eq!(plan.matches(id.as_str()).count(), 1, "{id} is removed in exactly one wave:\n{plan}");
    }
    let wave_rows: Vec<&str> =
        plan.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert_eq!(wave_rows.len(), 4, "{plan}");
    for row in &wave_rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cols[1], cols[3], cols[4]), ("1", "4", "5"), "add 1, floor 4, ceiling 5: {row}");
    }
    assert!(plan.contains("Plan: 0 to create, 1 to roll out (4 nodes replaced), 0 to update in place, 0 to destroy."));
    let shown = ok(d, &["show", "rollout.plan"]);
    assert!(plan.starts_with(&shown), "show renders the saved plan as plan did");

    let t0 = status(d)["now_ms"].as_u64().unwrap();
    let out = ok(d, &["apply", "rollout.plan"]);
    assert!(out.contains("Apply complete: 0 to create, 1 to roll out (4 nodes replaced)"), "{out}");
    let s = status(d);
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1, "the old generation's group is gone");
    let new = live_instances(workers[0]);
    assert_eq!(new.len(), 4);
    assert!(new.iter().all(|i| i["image"] == "img-2026-12" && i["healthy"] == true));
    assert!(new.iter().all(|i| !old_ids.contains(&i["id"].as_str().unwrap().to_string())));

    // The cloud's own record: during the rollout, never fewer than 4 healthy or more than 5 nodes.
    let timeline = ok(d, &["sim", "timeline", "."]);
    let points: Vec<Value> = timeline.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let during: Vec<&Value> =
        points.iter().filter(|p| p["node_group"] == "workers" && p["t_ms"].as_u64().unwrap() >= t0).collect();
    assert!(during.len() >= 8, "the timeline records the rollout: {during:?}");
    for p in &during {
        assert!(p["healthy"].as_u64().unwrap() >= 4, "below the floor: {p}");
        assert!(p["total"].as_u64().unwrap() <= 5, "above the ceiling: {p}");
    }
    assert!(ok(d, &["plan", ".", "--var", "worker_image=img-2026-12"]).contains("No changes."));

    let out = ok(d, &["destroy", ".", "--auto-approve"]);
    assert!(out.contains("Destroy complete"), "{out}");
    assert!(status(d)["groups"].as_array().unwrap().is_empty(), "nothing left in the cloud");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("drydock.state.json")).unwrap()).unwrap();
    assert_eq!(state["clusters"], serde_json::json!({}), "nothing left in the state");
    assert_eq!(state["journal"], serde_json::json!([]));
}

#[test]
fn a_saved_plan_is_refused_once_the_state_moved() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "first.plan"]);
    ok(d, &["apply", ".", "--auto-approve"]);
    let out = dd(d, &["apply", "first.plan"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("made before a state existed"), "{err}");

    ok(d, &["plan", ".", "--var", "worker_image=img-3", "--out", "second.plan"]);
    ok(d, &["apply", ".", "--var", "worker_image=img-4", "--auto-approve"]);
    let out = dd(d, &["apply", "second.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the saved plan is stale"));

    ok(d, &["plan", ".", "--out", "third.plan"]);
    std::fs::write(d.join("extra.kcl"), "locals {\n  x = 1\n}\n").unwrap();
    let out = dd(d, &["apply", "third.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the configuration changed"));
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let dir = quickstart();
    let out = dd(dir.path(), &["apply", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --auto-approve"));
    assert!(status(dir.path())["groups"].as_array().unwrap().is_empty(), "nothing was created");
}

#[test]
fn an_image_that_never_gets_healthy_halts_the_rollout_with_old_capacity_intact() {
    let dir = quickstart();
    let d = dir.path();
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(
        d.join("cluster.kcl"),
        kcl.replacen("boot_time = 2s", "boot_time  = 2s\n  bad_images = [\"img-bad\"]", 1),
    )
    .unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    let out = dd(d, &["apply", ".", "--var", "worker_image=img-bad", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rollout halted: new nodes were not healthy after 10m"), "{stderr}");
    assert!(stderr.contains("running but failing its health check"), "{stderr}");
    assert!(stderr.contains("the old generation still runs 4 nodes"), "{stderr}");
    let s = status(d);
    let old: Vec<&Value> = groups(&s, "workers")
        .into_iter()
        .flat_map(live_instances)
        .filter(|i| i["image"] == "img-worker-2026-11" && i["healthy"] == true)
        .collect();
    assert_eq!(old.len(), 4, "no old node was removed");
    // Rolling back to the good image removes the bad generation.
    let out = ok(d, &["apply", ".", "--auto-approve"]);
    assert!(out.contains("rolled out"), "{out}");
    let s = status(d);
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1);
    assert!(live_instances(workers[0]).iter().all(|i| i["image"] == "img-worker-2026-11" && i["healthy"] == true));
    assert!(ok(d, &["plan", "."]).contains("No changes."));
}
