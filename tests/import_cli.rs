//! A lost or foreign state never makes a second copy of a cluster: `plan` refuses to create a
//! node group that runs under another lineage, and `drydock import` adopts those groups
//! without a cloud change. Through the binary on the simulated cloud (virtual clock).

mod common;

use common::machine::{assert_no_changes, plan, state_file, status};
use common::{dd, ok, quickstart, CONTROL_PLANE, WORKERS};

use std::collections::BTreeSet;
use std::path::Path;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every group and instance the simulated cloud has (group name, instance id, state).
fn cloud(d: &Path) -> BTreeSet<(String, String, String)> {
    let s = status(d);
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            g["instances"].as_array().unwrap().iter().map(move |i| {
                (
                    g["name"].as_str().unwrap().to_string(),
                    i["id"].as_str().unwrap().to_string(),
                    i["state"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

fn remove_state(d: &Path) {
    for entry in std::fs::read_dir(d).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("drydock.state.json") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// The refusal a plan or apply gives for a node group that runs under another lineage.
fn refused(out: &std::process::Output, lineage: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let e = stderr(out);
    assert!(e.contains("runs already under another state"), "{e}");
    assert!(e.contains(lineage), "the lineage is named: {e}");
    assert!(e.contains("drydock import"), "the way out is named: {e}");
}

#[test]
fn a_lost_state_is_refused_then_imported_without_replacing_a_node() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let lineage = state_file(d)["lineage"].as_str().unwrap().to_string();
    let before = cloud(d);
    remove_state(d);

    // Without a state, neither plan nor apply makes a second copy.
    let out = dd(d, &["plan", ".", "--format", "json"]);
    refused(&out, &lineage);
    for address in [CONTROL_PLANE, WORKERS] {
        assert!(stderr(&out).contains(address), "{}", stderr(&out));
    }
    refused(&dd(d, &["apply", ".", "--auto-approve"]), &lineage);
    assert_eq!(cloud(d), before, "nothing was created");

    // Import adopts the running groups; the next plan has nothing to do.
    let out = ok(d, &["import", "."]);
    assert!(out.contains("Imported 2 node groups"), "{out}");
    assert_eq!(state_file(d)["lineage"], lineage.as_str());
    let p = plan(d, &["."]);
    assert_no_changes(&p, "after import");
    assert_eq!(p["drift"], serde_json::json!([]), "{p}");
    assert_eq!(cloud(d), before, "import changed nothing in the cloud");

    // And the imported state works as any: a rollout replaces the nodes as usual.
    ok(d, &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]);
    let p = plan(d, &[".", "--var", "worker_image=img-2"]);
    assert_no_changes(&p, "after the rollout");
}

#[test]
fn a_foreign_state_pushed_over_is_told_apart_from_deleted_groups() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let lineage = state_file(d)["lineage"].as_str().unwrap().to_string();
    let before = cloud(d);
    // A state of another lineage pushed over this one.
    let mut other: serde_json::Value = serde_json::from_str(&ok(d, &["state", "pull", "."])).unwrap();
    other["lineage"] = "0badc0de-0000-4000-8000-000000000000".into();
    std::fs::write(d.join("other.json"), other.to_string()).unwrap();
    ok(d, &["state", "push", "other.json", ".", "--force"]);

    // Its recorded groups are not "deleted": they run under the other lineage.
    let out = dd(d, &["plan", ".", "--refresh-only", "--format", "json"]);
    refused(&out, &lineage);
    let out = dd(d, &["apply", ".", "--auto-approve"]);
    refused(&out, &lineage);
    assert_eq!(cloud(d), before, "nothing was created or deleted");

    // Import refuses while the state manages node groups of its own, and says what to do.
    let out = dd(d, &["import", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("state rm"), "{}", stderr(&out));

    ok(d, &["state", "rm", "cluster.demo", "."]);
    let out = ok(d, &["import", ".", "--lineage", &lineage]);
    assert!(out.contains("Imported 2 node groups"), "{out}");
    let p = plan(d, &["."]);
    assert_no_changes(&p, "after import");
    assert_eq!(state_file(d)["unmanaged"], serde_json::Value::Null, "no node group is left unmanaged");
    assert_eq!(cloud(d), before);
}

#[test]
fn import_with_nothing_to_import_or_an_unknown_lineage_is_an_error() {
    let dir = quickstart();
    let d = dir.path();
    let out = dd(d, &["import", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing to import"), "{}", stderr(&out));
    ok(d, &["apply", ".", "--auto-approve"]);
    remove_state(d);
    let out = dd(d, &["import", ".", "--lineage", "no-such-lineage"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no group of the configured clusters carries lineage no-such-lineage"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("drydock.state.json").exists(), "no state was written");
}
