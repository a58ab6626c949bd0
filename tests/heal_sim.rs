//! Self-healing on the simulated cloud (virtual clock): drift in plans, and what apply and
//! `drydock watch` repair. Changes "behind drydock's back" are made through the simulated
//! cloud's own API, as a person with console access would.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use drydock_provider::{GroupSettings, Provider};
use serde_json::Value;

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

fn lineage(d: &Path) -> String {
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("drydock.state.json")).unwrap()).unwrap();
    state["lineage"].as_str().unwrap().to_string()
}

/// The simulated cloud's own API, on the virtual clock the binary uses.
fn cloud(d: &Path) -> drydock_sim::SimProvider {
    drydock_sim::SimProvider::new(
        d.join(".drydock/sim-world.json"),
        drydock_sim::SimConfig::default(),
        drydock_sim::ClockMode::Virtual,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Changes a group's settings by hand.
fn edit_group(d: &Path, node_group: &str, f: impl FnOnce(&mut GroupSettings)) -> String {
    let lineage = lineage(d);
    rt().block_on(async {
        let sim = cloud(d);
        let observed = sim.observe(&lineage).await.unwrap();
        let g = observed.groups.iter().find(|g| g.ownership.node_group == node_group).unwrap();
        let mut s = g.settings.clone();
        f(&mut s);
        sim.update_group(&g.name, &s).await.unwrap();
        g.name.clone()
    })
}

#[test]
fn sizes_changed_by_hand_are_drift_that_apply_restores() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    edit_group(d, "workers", |s| {
        s.min = 1;
        s.max = 20;
        s.desired = 6;
    });
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "drift to repair exits 2");
    let plan = String::from_utf8_lossy(&out.stdout);
    for line in ["min", "max", "desired"] {
        assert!(plan.contains(line), "{plan}");
    }
    assert!(plan.contains("restored in place by apply"), "{plan}");
    assert!(plan.contains("will be updated in place"), "{plan}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let status: Value = serde_json::from_str(&ok(d, &["sim", "status", ".", "--json"])).unwrap();
    let g = status["groups"].as_array().unwrap().iter().find(|g| g["node_group"] == "workers").unwrap();
    assert_eq!((g["min"].as_u64(), g["max"].as_u64(), g["desired"].as_u64()), (Some(3), Some(10), Some(4)));
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn desired_moved_by_the_autoscaler_is_not_drift() {
    let dir = quickstart();
    let d = dir.path();
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let unpinned: String =
        kcl.lines().filter(|l| !l.trim_start().starts_with("desired")).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("cluster.kcl"), unpinned).unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    edit_group(d, "workers", |s| s.desired = 8);
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_group_deleted_by_hand_is_drift_that_apply_recreates() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let lineage = lineage(d);
    let name = rt().block_on(async {
        let sim = cloud(d);
        let observed = sim.observe(&lineage).await.unwrap();
        let g = observed.groups.iter().find(|g| g.ownership.node_group == "control-plane").unwrap().name.clone();
        sim.delete_group(&g).await.unwrap();
        g
    });
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains(&name) && plan.contains("missing (deleted outside drydock)"), "{plan}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let status: Value = serde_json::from_str(&ok(d, &["sim", "status", ".", "--json"])).unwrap();
    let cp: Vec<&Value> =
        status["groups"].as_array().unwrap().iter().filter(|g| g["node_group"] == "control-plane").collect();
    assert_eq!(cp.len(), 3);
    assert!(cp.iter().any(|g| g["name"] == name.as_str()), "recreated under the same name");
    assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(0));
}
