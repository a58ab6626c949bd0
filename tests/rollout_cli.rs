//! `drydock rollout history` and `drydock rollout undo` through the binary on the simulated
//! cloud (`examples/quickstart`), read from `--json`, `plan --format json` and `sim status
//! --json`.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::machine::{change, plan, status};
use common::{dd, ok, quickstart};

const WORKERS: &str = "cluster.demo.node_group.workers";

fn images(s: &Value) -> BTreeSet<String> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == "workers")
        .flat_map(|g| g["instances"].as_array().unwrap().iter())
        .filter(|i| i["state"] == "running" || i["state"] == "pending")
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect()
}

fn history(dir: &std::path::Path, vars: &[&str]) -> Value {
    let mut args = vec!["rollout", "history", WORKERS, ".", "--json"];
    args.extend_from_slice(vars);
    serde_json::from_str(&ok(dir, &args)).unwrap()
}

#[test]
fn undo_rolls_back_onto_the_previous_generation_with_the_usual_safety() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let first = plan(d.path(), &[".", "--var", "worker_image=img-2"]);
    let new_gen = change(&first, WORKERS)["generation"].as_str().unwrap().to_string();
    ok(d.path(), &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]);
    assert_eq!(images(&status(d.path())), BTreeSet::from(["img-2".to_string()]));

    let h = history(d.path(), &[]);
    let gens = h["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 2, "{h:#}");
    assert_eq!(h["current"], new_gen.as_str());
    assert_eq!(gens[1]["current"], true);
    assert!(gens[1]["changes"].as_array().unwrap().iter().any(|c| c == "image: img-worker-2026-11 -> img-2"), "{h:#}");
    let old_gen = gens[0]["generation"].as_str().unwrap().to_string();
    assert!(!gens[0]["applied_at"].as_str().unwrap().is_empty() && !gens[0]["by"].as_str().unwrap().is_empty());

    // Saved for review first: the plan is a rollout of the workers alone, back to the old
    // generation, and says the configuration now differs.
    ok(d.path(), &["rollout", "undo", WORKERS, ".", "--var", "worker_image=img-2", "--out", "undo.plan"]);
    let saved: Value = serde_json::from_str(&ok(d.path(), &["show", "undo.plan", "--format", "json"])).unwrap();
    let changes = saved["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["action"], "rollout");
    assert_eq!(changes[0]["generation"], old_gen.as_str());
    assert!(saved["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("rolls forward again")));
    // The same wave safety as any rollout: the floor never below the node count.
    for w in changes[0]["waves"].as_array().unwrap() {
        assert!(w["floor"].as_u64().unwrap() >= 4, "{w}");
    }
    ok(d.path(), &["apply", "undo.plan"]);
    let s = status(d.path());
    assert_eq!(images(&s), BTreeSet::from(["img-worker-2026-11".to_string()]), "every worker back on the old image");
    assert_eq!(s["violations"], serde_json::json!([]), "{:#}", s["violations"]);

    let h = history(d.path(), &[]);
    let gens = h["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 3, "{h:#}");
    assert_eq!(h["current"], old_gen.as_str());
    assert_eq!(gens[2]["current"], true);
    assert_eq!(gens[1]["current"], false);
    // The configuration still says img-2: the next plan rolls forward again.
    let next = plan(d.path(), &[".", "--var", "worker_image=img-2"]);
    assert_eq!(change(&next, WORKERS)["action"], "rollout");
    assert_eq!(change(&next, WORKERS)["generation"], new_gen.as_str());
    // Undo straight away (no --out), to a generation named by its first characters.
    ok(d.path(), &["rollout", "undo", WORKERS, ".", "--to-generation", &new_gen[..6], "--auto-approve"]);
    assert_eq!(images(&status(d.path())), BTreeSet::from(["img-2".to_string()]));
}

#[test]
fn undo_without_an_earlier_generation_or_of_an_unknown_node_group_is_an_error() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let out = dd(d.path(), &["rollout", "undo", WORKERS, ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no earlier generation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dd(d.path(), &["rollout", "history", "cluster.demo.node_group.nope", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(WORKERS));
    let out = dd(d.path(), &["rollout", "undo", WORKERS, ".", "--to-generation", "ffffff", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(images(&status(d.path())), BTreeSet::from(["img-worker-2026-11".to_string()]), "nothing changed");
}
