//! `plan --refresh-only` / `apply --refresh-only` (the state takes what the cloud has; the cloud
//! is not changed) and `apply --json` / `destroy --json` (the run as a stream of JSON events),
//! through the binary on the simulated cloud (virtual clock). Changes "behind drydock's back"
//! are made through the simulated cloud's own API.

mod common;

use common::machine::{change, drift_of, groups_of, live, plan, plan_detailed, state_file, status};
use common::{dd, ok, quickstart, WORKERS};

use std::collections::BTreeSet;
use std::path::Path;

use drydock_provider::{GroupSettings, Provider};
use serde_json::{json, Value};

const RECORDED: &str = "recorded in the state (refresh-only: the cloud is not changed)";

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

fn lineage(d: &Path) -> String {
    state_file(d)["lineage"].as_str().unwrap().to_string()
}

/// Changes the workers' group settings by hand.
fn edit_workers(d: &Path, f: impl FnOnce(&mut GroupSettings)) {
    let lineage = lineage(d);
    rt().block_on(async {
        let sim = cloud(d);
        let observed = sim.observe(&lineage).await.unwrap();
        let g = observed.groups.iter().find(|g| g.ownership.node_group == "workers").unwrap();
        let mut s = g.settings.clone();
        f(&mut s);
        sim.update_group(&g.name, &s).await.unwrap();
    })
}

fn workers_state(d: &Path) -> Value {
    state_file(d)["clusters"]["cluster.demo"]["node_groups"][WORKERS].clone()
}

/// Every instance id in the simulated cloud, with its group and state.
fn instances(d: &Path) -> BTreeSet<(String, String, String)> {
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

/// The simulated groups' sizes, by name.
fn sizes(d: &Path) -> Vec<(String, u64, u64, u64)> {
    status(d)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["min"].as_u64().unwrap(),
                g["max"].as_u64().unwrap(),
                g["desired"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn refresh_only_writes_what_the_cloud_has_into_the_state_and_changes_nothing() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    edit_workers(d, |s| {
        s.min = 1;
        s.max = 20;
        s.tags.insert("owner".into(), "ops".into());
    });
    let (cloud_before, sizes_before) = (instances(d), sizes(d));
    let serial = state_file(d)["serial"].as_u64().unwrap();

    // The refresh-only plan: no change, the drift, each difference marked recorded.
    let (code, p) = plan_detailed(d, &[".", "--refresh-only"]);
    assert_eq!(code, Some(2), "drift to record exits 2 with --detailed-exitcode: {p}");
    assert_eq!(p["refresh_only"], true, "{p}");
    assert_eq!(p["changes"], json!([]), "a refresh-only plan changes nothing: {p}");
    let drift: Vec<(&Value, &Value, &Value)> =
        drift_of(&p, WORKERS).iter().map(|d| (&d["path"], &d["after"], &d["action"])).collect();
    let rec = json!(RECORDED);
    assert_eq!(
        drift,
        [
            (&json!("min"), &json!(1), &rec),
            (&json!("max"), &json!(20), &rec),
            (&json!("tags.owner"), &json!("ops"), &rec)
        ],
        "{p}"
    );

    // Saved, then applied: the state takes the cloud's values; the cloud is as it was.
    ok(d, &["plan", ".", "--refresh-only", "--out", "refresh.plan"]);
    ok(d, &["apply", "refresh.plan"]);
    let ng = workers_state(d);
    assert_eq!((ng["settings"]["min"].as_u64(), ng["settings"]["max"].as_u64()), (Some(1), Some(20)), "{ng}");
    assert_eq!(ng["settings"]["tags"]["owner"], "ops", "{ng}");
    assert_eq!(state_file(d)["serial"].as_u64().unwrap(), serial + 1, "one state write");
    assert_eq!(instances(d), cloud_before, "no instance launched or terminated");
    assert_eq!(sizes(d), sizes_before, "no group resized");

    // The drift is gone; the configuration now differs from the state, so a normal plan puts
    // the configured sizes back in place (no node replaced).
    let p = plan(d, &["."]);
    assert_eq!(p["drift"], json!([]), "{p}");
    let c = change(&p, WORKERS);
    assert_eq!(c["action"], "update", "{p}");
    assert_eq!(p["summary"]["nodes_replaced"], 0, "{p}");

    // Nothing more to record: a refresh-only apply writes nothing.
    let out = ok(d, &["apply", ".", "--refresh-only", "--auto-approve"]);
    assert!(out.contains("No changes to record"), "{out}");
    assert_eq!(state_file(d)["serial"].as_u64().unwrap(), serial + 1, "no write when nothing differs");
}

#[test]
fn refresh_only_forgets_groups_deleted_outside_drydock() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let name = groups_of(&status(d), "workers")[0]["name"].as_str().unwrap().to_string();
    rt().block_on(async { cloud(d).delete_group(&name).await.unwrap() });
    let p = plan(d, &[".", "--refresh-only"]);
    let drift = drift_of(&p, WORKERS);
    assert_eq!(drift.len(), 1, "{p}");
    assert_eq!(drift[0]["path"], format!("groups.{name}"), "{p}");
    assert_eq!(drift[0]["action"], RECORDED, "{p}");
    ok(d, &["apply", ".", "--refresh-only", "--auto-approve"]);
    assert_eq!(workers_state(d), Value::Null, "a node group with no group left leaves the state");
    assert!(groups_of(&status(d), "workers").is_empty(), "and nothing was recreated");
    // The next plan creates it.
    let p = plan(d, &["."]);
    assert_eq!(change(&p, WORKERS)["action"], "create", "{p}");
}

#[test]
fn a_saved_refresh_only_plan_is_refused_when_the_cloud_changed_since() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    edit_workers(d, |s| s.max = 20);
    ok(d, &["plan", ".", "--refresh-only", "--out", "refresh.plan"]);
    edit_workers(d, |s| s.max = 30);
    let before = std::fs::read(d.join("drydock.state.json")).unwrap();
    let out = dd(d, &["apply", "refresh.plan"]);
    assert!(!out.status.success(), "refused");
    assert!(stderr(&out).contains("the cloud changed since the refresh-only plan was made"), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.join("drydock.state.json")).unwrap(), before, "the state is untouched");
}

#[test]
fn refresh_only_refuses_what_it_cannot_mean() {
    let dir = quickstart();
    let d = dir.path();
    let out = dd(d, &["plan", ".", "--refresh-only"]);
    assert!(!out.status.success() && stderr(&out).contains("no state to refresh"), "{}", stderr(&out));
    ok(d, &["apply", ".", "--auto-approve"]);
    for args in [
        vec!["plan", ".", "--refresh-only", "--destroy"],
        vec!["plan", ".", "--refresh-only", "--target", WORKERS],
        vec!["plan", ".", "--refresh-only", "--replace", WORKERS],
        vec!["plan", ".", "--refresh-only", "--refresh=false"],
        vec!["destroy", ".", "--refresh-only", "--auto-approve"],
    ] {
        let out = dd(d, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--refresh-only"), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(groups_of(&status(d), "workers").len(), 1, "nothing was destroyed");
}

/// The lines of a `--json` run, each a JSON object with `type`, `@message`, `@timestamp`.
fn events(out: &std::process::Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{text}")))
        .collect();
    for e in &all {
        assert!(e["type"].is_string() && e["@message"].is_string() && e["@timestamp"].is_string(), "{e}");
    }
    assert_eq!(all.first().map(|e| &e["type"]), Some(&json!("version")), "{text}");
    assert_eq!(all[0]["format_version"], "1.0", "{text}");
    assert_eq!(all.last().map(|e| &e["type"]), Some(&json!("summary")), "{text}");
    all
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn ids(events: &[Value], kind: &str) -> BTreeSet<String> {
    of(events, kind).iter().map(|e| e["instance"].as_str().unwrap().to_string()).collect()
}

#[test]
fn apply_json_streams_every_step_as_an_event() {
    let dir = quickstart();
    let d = dir.path();
    let out = dd(d, &["apply", ".", "--auto-approve", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ev = events(&out);
    let addresses = |kind: &str| -> BTreeSet<String> {
        of(&ev, kind).iter().map(|e| e["address"].as_str().unwrap().to_string()).collect()
    };
    let (planned, started, completed) =
        (addresses("planned_change"), addresses("change_start"), addresses("change_complete"));
    assert_eq!(planned.len(), 2);
    assert_eq!((&started, &completed), (&planned, &planned));
    let s = status(d);
    let running: BTreeSet<String> = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| live(g).into_iter().map(|i| i["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ids(&ev, "node_added"), running, "each instance added once");
    assert_eq!(ids(&ev, "node_ready"), running, "and ready once");
    assert_eq!(of(&ev, "node_added").len(), running.len(), "no instance announced twice");
    let summary = ev.last().unwrap();
    assert_eq!(
        (&summary["outcome"], &summary["exit_code"], &summary["operation"]),
        (&json!("complete"), &json!(0), &json!("apply"))
    );
    assert_eq!((&summary["changes"], &summary["done"], &summary["plan"]["create"]), (&json!(2), &json!(2), &json!(2)));

    // A rollout: a wave_start per planned wave, the old instances cordoned, drained and
    // terminated, the new ones added and ready.
    let old: BTreeSet<String> =
        live(groups_of(&status(d), "workers")[0]).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let p = plan(d, &[".", "--var", "worker_image=img-2"]);
    let waves = change(&p, WORKERS)["waves"].as_array().unwrap().len();
    let out = dd(d, &["apply", ".", "--auto-approve", "--json", "--var", "worker_image=img-2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ev = events(&out);
    assert_eq!(of(&ev, "wave_start").len(), waves);
    assert_eq!(ids(&ev, "node_terminated"), old);
    assert_eq!(ids(&ev, "node_cordoned"), old);
    assert_eq!(of(&ev, "node_drained").len(), old.len());
    let new: BTreeSet<String> = groups_of(&status(d), "workers")
        .iter()
        .flat_map(|g| live(g).into_iter().map(|i| i["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ids(&ev, "node_added"), new);
    assert_eq!(ids(&ev, "node_ready"), new);
    assert!(of(&ev, "log").len() > 1, "the progress lines come too");
    // Events come in order: a wave starts before its nodes.
    let first_wave = ev.iter().position(|e| e["type"] == "wave_start").unwrap();
    let first_added = ev.iter().position(|e| e["type"] == "node_added").unwrap();
    assert!(first_wave < first_added);

    // destroy --json.
    let out = dd(d, &["destroy", ".", "--auto-approve", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ev = events(&out);
    assert_eq!(ev.last().unwrap()["operation"], "destroy");
    assert_eq!(of(&ev, "change_complete").len(), 2);
}

#[test]
fn apply_json_ends_with_a_failed_summary() {
    let dir = quickstart();
    let d = dir.path();
    // No prompt in a stream: --auto-approve is required.
    let out = dd(d, &["apply", ".", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    let summary = ev.last().unwrap();
    assert_eq!(summary["outcome"], "failed");
    assert!(summary["errors"][0].as_str().unwrap().contains("--auto-approve"), "{summary}");
    assert!(groups_of(&status(d), "workers").is_empty(), "nothing was applied");
    // A configuration with errors: their codes and messages are in the summary too.
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(d.join("cluster.kcl"), kcl.replace("var.worker_image", "var.no_such_variable")).unwrap();
    let out = dd(d, &["apply", ".", "--json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let summary = events(&out).last().unwrap().clone();
    assert_eq!(summary["outcome"], "failed");
    assert!(summary["errors"][0].as_str().unwrap().starts_with("kcl::"), "{summary}");
    assert!(summary["errors"][0].as_str().unwrap().contains("no_such_variable"), "{summary}");
}
