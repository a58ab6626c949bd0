//! Renames without replacement (`moved` blocks, `drydock state mv`) and forgetting without
//! destroying (`drydock state rm`), through the binary on the simulated cloud
//! (`examples/quickstart`, whose `workers` node group runs 4 nodes). Read from
//! `plan --format json`, `sim status --json` and `state list`.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::machine::{plan, status};
use common::{dd, ok, quickstart};

fn instance_ids(s: &Value) -> BTreeSet<String> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["instances"].as_array().unwrap().iter())
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Renames the `workers` node group to `frontend` in the configuration (and the output that
/// reads it), with `extra` appended.
fn rename(dir: &std::path::Path, extra: &str) {
    let path = dir.join("cluster.kcl");
    let kcl = std::fs::read_to_string(&path).unwrap();
    let renamed = kcl
        .replace("node_group \"workers\"", "node_group \"frontend\"")
        .replace("cluster.demo.node_group.workers.", "cluster.demo.node_group.frontend.");
    assert_ne!(renamed, kcl);
    std::fs::write(&path, format!("{renamed}\n{extra}")).unwrap();
}

fn state_list(dir: &std::path::Path) -> BTreeSet<String> {
    ok(dir, &["state", "list", "."]).lines().map(str::to_string).collect()
}

#[test]
fn a_moved_block_renames_a_node_group_without_replacing_a_node() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = instance_ids(&status(d.path()));
    assert!(before.len() >= 7, "{before:?}");
    // Without a moved block, a rename is a destroy and a create.
    rename(d.path(), "");
    let p = plan(d.path(), &["."]);
    let actions: BTreeSet<&str> =
        p["changes"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, BTreeSet::from(["create", "delete"]));
    // With one, nothing changes but the address.
    let path = d.path().join("cluster.kcl");
    let kcl = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{kcl}\nmoved {{\n  from = cluster.demo.node_group.workers\n  to   = cluster.demo.node_group.frontend\n}}\n"),
    )
    .unwrap();
    let p = plan(d.path(), &["."]);
    assert_eq!(p["changes"], serde_json::json!([]), "no change to the nodes: {:#}", p["changes"]);
    assert!(p["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("has moved to")), "{p:#}");
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(instance_ids(&status(d.path())), before, "the same instances");
    let listed = state_list(d.path());
    assert!(listed.contains("cluster.demo.node_group.frontend") && !listed.contains("cluster.demo.node_group.workers"));
    // The renamed node group rolls out like any other, keeping its groups' names.
    let p = plan(d.path(), &[".", "--var", "worker_image=img-2"]);
    let changes = p["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["address"], "cluster.demo.node_group.frontend");
    assert_eq!(changes[0]["action"], "rollout");
    ok(d.path(), &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]);
    let after = plan(d.path(), &[".", "--var", "worker_image=img-2"]);
    assert_eq!(after["changes"], serde_json::json!([]));
    assert_eq!(status(d.path())["violations"], serde_json::json!([]));
}

#[test]
fn state_mv_renames_a_node_group_without_replacing_a_node() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = instance_ids(&status(d.path()));
    rename(d.path(), "");
    ok(d.path(), &["state", "mv", "cluster.demo.node_group.workers", "cluster.demo.node_group.frontend", "."]);
    let p = plan(d.path(), &["."]);
    assert_eq!(p["changes"], serde_json::json!([]), "{:#}", p["changes"]);
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(instance_ids(&status(d.path())), before);
    // Moving again is a no-op; moving what is not there, or across clusters, an error.
    ok(d.path(), &["state", "mv", "cluster.demo.node_group.workers", "cluster.demo.node_group.frontend", "."]);
    let out = dd(d.path(), &["state", "mv", "cluster.demo.node_group.nope", "cluster.demo.node_group.x", "."]);
    assert_eq!(out.status.code(), Some(1));
    let out =
        dd(d.path(), &["state", "mv", "cluster.demo.node_group.frontend", "cluster.other.node_group.frontend", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different"));
    // Destroy still finds the renamed node group's groups.
    ok(d.path(), &["destroy", ".", "--auto-approve"]);
    assert_eq!(status(d.path())["groups"], serde_json::json!([]), "nothing left in the cloud");
}

#[test]
fn state_rm_forgets_a_node_group_whose_groups_keep_running() {
    let d = quickstart();
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = instance_ids(&status(d.path()));
    ok(d.path(), &["state", "rm", "cluster.demo.node_group.workers", "."]);
    assert!(!state_list(d.path()).contains("cluster.demo.node_group.workers"));
    // Still configured: planning refuses rather than adopt or duplicate the groups.
    let out = dd(d.path(), &["plan", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("state rm"), "{}", String::from_utf8_lossy(&out.stderr));
    // Removed from the configuration too: nothing is deleted, and the plan says why.
    let path = d.path().join("cluster.kcl");
    let kcl = std::fs::read_to_string(&path).unwrap();
    let start = kcl.find("  node_group \"workers\"").unwrap();
    let end = start + kcl[start..].find("\n  }\n").unwrap() + 5;
    let without = format!("{}{}", &kcl[..start], &kcl[end..]);
    let without = without.replace("cluster.demo.node_group.workers.group_names", "[]");
    std::fs::write(&path, without).unwrap();
    let p = plan(d.path(), &["."]);
    assert_eq!(p["changes"], serde_json::json!([]), "{:#}", p["changes"]);
    assert!(p["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("unmanaged")), "{p:#}");
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(instance_ids(&status(d.path())), before, "the forgotten groups keep running");
}
