//! `--replace`, `--target` and `plan --destroy`, through the binary on the simulated cloud
//! (`examples/quickstart`). Results are read from `plan --format json`, `sim status --json`
//! and the state, not from drydock's wording.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::machine::{change, plan, status};
use common::{dd, ok, quickstart};

const WORKERS: &str = "cluster.demo.node_group.workers";
const CP: &str = "cluster.demo.node_group.control-plane";

fn instance_ids(s: &Value, node_group: &str) -> BTreeSet<String> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == node_group)
        .flat_map(|g| g["instances"].as_array().unwrap().iter())
        .filter(|i| i["state"] == "running" || i["state"] == "pending")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn replace_rolls_a_node_group_onto_a_new_generation_of_the_same_spec() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = status(d.path());
    let p = plan(d.path(), &[".", "--replace", WORKERS]);
    let c = change(&p, WORKERS);
    assert_eq!(c["action"], "rollout", "{c:#}");
    assert_eq!(p["changes"].as_array().unwrap().len(), 1, "only the workers: {:#}", p["changes"]);
    assert_eq!(c["nodes_replaced"], 4);
    // The same waves, floor and ceiling as any rollout of the node group.
    for w in c["waves"].as_array().unwrap() {
        assert!(w["floor"].as_u64().unwrap() >= 4, "{w}");
    }
    ok(d.path(), &["apply", ".", "--auto-approve", "--replace", WORKERS]);
    let after = status(d.path());
    let (old, new) = (instance_ids(&before, "workers"), instance_ids(&after, "workers"));
    assert_eq!(new.len(), 4);
    assert!(old.is_disjoint(&new), "every worker replaced: {old:?} {new:?}");
    assert_eq!(instance_ids(&before, "control-plane"), instance_ids(&after, "control-plane"), "the rest untouched");
    assert_eq!(after["violations"], serde_json::json!([]), "the sim's audit: {:#}", after["violations"]);
    // The new generation sticks: the next plan has nothing to do.
    let again = plan(d.path(), &["."]);
    assert!(again["changes"].as_array().unwrap().is_empty(), "{:#}", again["changes"]);
}

#[test]
fn target_plans_only_the_named_node_group_and_what_it_depends_on() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let kcl = std::fs::read_to_string(d.path().join("cluster.kcl")).unwrap();
    let changed = kcl.replace("img-cp-2026-11", "img-cp-2");
    assert_ne!(changed, kcl);
    std::fs::write(d.path().join("cluster.kcl"), changed).unwrap();
    // Both change, but only the workers are targeted (with a new image too).
    let full = plan(d.path(), &[".", "--var", "worker_image=img-w-2"]);
    assert_eq!(full["changes"].as_array().unwrap().len(), 2);
    let p = plan(d.path(), &[".", "--var", "worker_image=img-w-2", "--target", WORKERS]);
    let addresses: Vec<&str> =
        p["changes"].as_array().unwrap().iter().map(|c| c["address"].as_str().unwrap()).collect();
    // A worker group depends on its control plane's change, which comes along.
    assert_eq!(addresses.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([WORKERS, CP]), "{addresses:?}");
    let warnings = p["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("targeting")), "{warnings:?}");
    // Targeting the control plane alone leaves the workers out.
    let p = plan(d.path(), &[".", "--var", "worker_image=img-w-2", "--target", CP]);
    let addresses: Vec<&str> =
        p["changes"].as_array().unwrap().iter().map(|c| c["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, vec![CP]);
    ok(d.path(), &["apply", ".", "--auto-approve", "--var", "worker_image=img-w-2", "--target", CP]);
    let s = status(d.path());
    let images: BTreeSet<&str> = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == "workers")
        .flat_map(|g| g["instances"].as_array().unwrap().iter().map(|i| i["image"].as_str().unwrap()))
        .collect();
    assert_eq!(images, BTreeSet::from(["img-worker-2026-11"]), "the workers were not touched");
    // An address that names nothing is an error naming what exists.
    let out = dd(d.path(), &["plan", ".", "--target", "cluster.demo.node_group.wrkers"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.demo.node_group.wrkers") && err.contains(WORKERS), "{err}");
}

#[test]
fn a_saved_destroy_plan_is_reviewed_then_applied_and_refused_once_stale() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let groups = status(d.path())["groups"].as_array().unwrap().len();
    let p = plan(d.path(), &[".", "--destroy"]);
    let actions: BTreeSet<&str> =
        p["changes"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, BTreeSet::from(["delete"]));
    assert_eq!(status(d.path())["groups"].as_array().unwrap().len(), groups, "planning destroys nothing");
    ok(d.path(), &["plan", ".", "--destroy", "--out", "destroy.plan"]);
    let shown: Value = serde_json::from_str(&ok(d.path(), &["show", "destroy.plan", "--format", "json"])).unwrap();
    assert_eq!(shown["changes"], p["changes"]);
    ok(d.path(), &["apply", "destroy.plan"]);
    assert_eq!(status(d.path())["groups"], serde_json::json!([]), "nothing left in the cloud");
    let out = dd(d.path(), &["apply", "destroy.plan"]);
    assert_eq!(out.status.code(), Some(1), "a saved plan applies once");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale"));
}
