//! Kubernetes-aware rollouts through the binary, on the simulated cloud's Kubernetes (virtual
//! clock): new nodes count once their Node is Ready, old nodes are drained through the
//! Eviction API with PodDisruptionBudgets respected, Node objects are deleted, and the sim's
//! own audit (`sim status --json` → `violations`) finds nothing. Results are read from
//! `plan --format json` and `sim status --json`, not from drydock's wording.

mod common;

use std::path::Path;

use serde_json::Value;

use common::machine::{change, plan, status};
use common::{dd, ok};

const WORKERS: &str = "cluster.demo.node_group.workers";

/// A cluster of four workers under a 6-replica workload whose budget keeps 5 available, and a
/// DaemonSet; `extra` goes into the node group (a drain block, say).
fn config(web: &str, extra: &str, image: &str) -> String {
    format!(
        r#"
provider "sim" {{
  boot_time     = 2s
  join_delay    = 3s
  pod_start     = 2s
  pods_per_node = 4

  workload "web" {{
{web}
  }}
  workload "node-exporter" {{
    kind = "daemonset"
  }}
}}

cluster "demo" {{
  kubernetes_version = "1.31"

  network {{
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }}

  kubernetes {{}}

  node_group "workers" {{
    image         = "{image}"
    instance_type = "m6i.large"
    size          = 4

    rollout {{
      max_surge       = 1
      max_unavailable = 0
    }}
{extra}
  }}
}}
"#
    )
}

const WEB: &str = "    replicas      = 6\n    min_available = 5\n    stop_time     = 2s";

fn write(dir: &Path, text: &str) {
    std::fs::write(dir.join("main.kcl"), text).unwrap();
}

fn nodes(s: &Value) -> &[Value] {
    s["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn pods(s: &Value) -> &[Value] {
    s["pods"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn violations(s: &Value) -> &[Value] {
    s["violations"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The live instances of the node group, by id.
fn instances(s: &Value) -> Vec<String> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == "workers")
        .flat_map(|g| g["instances"].as_array().unwrap().iter())
        .filter(|i| i["state"] == "pending" || i["state"] == "running")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn web_pods(s: &Value) -> Vec<&Value> {
    pods(s).iter().filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("web-"))).collect()
}

/// Applies the first generation and checks the cluster is whole: every Node Ready and
/// registered by its instance, every web pod running and ready.
fn applied(dir: &Path, web: &str, extra: &str) -> Value {
    write(dir, &config(web, extra, "img-1"));
    ok(dir, &["apply", ".", "--auto-approve"]);
    // The pods the new nodes got start in their own time (drydock waits for Nodes, not pods).
    ok(dir, &["sim", "advance", ".", "10s"]);
    let s = status(dir);
    let ids = instances(&s);
    assert_eq!(ids.len(), 4, "{s:#}");
    assert_eq!(nodes(&s).len(), 4, "every instance has its Node: {s:#}");
    for n in nodes(&s) {
        assert_eq!(n["ready"], "True", "{n}");
        assert!(ids.iter().any(|id| n["instance"] == id.as_str()), "{n} is none of {ids:?}");
    }
    assert!(web_pods(&s).iter().all(|p| p["phase"] == "Running" && p["ready"] == true), "{s:#}");
    assert!(violations(&s).is_empty(), "{s:#}");
    s
}

#[test]
fn a_rollout_under_a_budget_drains_every_old_node_with_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = applied(d, WEB, "");
    let old = instances(&before);
    let old_nodes: Vec<String> = nodes(&before).iter().map(|n| n["name"].as_str().unwrap().to_string()).collect();

    write(d, &config(WEB, "", "img-2"));
    // The plan shows, per wave, the node it drains and its pods.
    let p = plan(d, &["."]);
    let c = change(&p, WORKERS);
    assert_eq!(c["action"], "rollout");
    let drained: Vec<&Value> =
        c["waves"].as_array().unwrap().iter().flat_map(|w| w["drains"].as_array().unwrap()).collect();
    assert_eq!(drained.len(), 4, "every old node is drained once: {c:#}");
    for d in &drained {
        assert!(old.iter().any(|id| d["instance"] == id.as_str()), "{d}");
        assert!(old_nodes.iter().any(|n| d["node"] == n.as_str()), "{d}");
    }
    assert!(p["warnings"].as_array().unwrap().is_empty(), "{p:#}");

    ok(d, &["apply", ".", "--auto-approve"]);
    ok(d, &["sim", "advance", ".", "10s"]);
    let after = status(d);
    assert!(violations(&after).is_empty(), "the sim's audit found violations: {:#}", after["violations"]);
    let new = instances(&after);
    assert_eq!(new.len(), 4);
    assert!(new.iter().all(|id| !old.contains(id)), "every old instance was replaced");
    // The old Nodes were deleted; every Node left is a new instance's, Ready and schedulable.
    assert_eq!(nodes(&after).len(), 4, "{:#}", after["nodes"]);
    for n in nodes(&after) {
        assert!(new.iter().any(|id| n["instance"] == id.as_str()), "a Node left behind: {n}");
        assert_eq!(n["ready"], "True");
        assert_eq!(n["unschedulable"], false);
    }
    let web = web_pods(&after);
    assert_eq!(web.len(), 6, "{:#}", after["pods"]);
    assert!(web.iter().all(|p| p["phase"] == "Running" && p["ready"] == true), "{:#}", after["pods"]);
    // And the next plan has nothing to do.
    let again = plan(d, &["."]);
    assert!(again["changes"].as_array().unwrap().is_empty(), "{again:#}");
}

#[test]
fn a_budget_that_never_allows_disruption_halts_the_rollout_then_force_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let web = "    replicas      = 3\n    min_available = 3\n    stop_time     = 1s";
    let drain_fail = "    drain {\n      timeout = 2m\n    }";
    let before = applied(d, web, drain_fail);
    let old = instances(&before);

    write(d, &config(web, drain_fail, "img-2"));
    // The plan knows before anything happens: the budget allows no disruption now.
    let p = plan(d, &["."]);
    let c = change(&p, WORKERS);
    let blockers: Vec<&Value> = c["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["drains"].as_array().unwrap())
        .flat_map(|d| d["blockers"].as_array().into_iter().flatten())
        .collect();
    assert!(
        blockers.iter().any(|b| b["kind"] == "pdb"
            && b["blocks"] == true
            && b["detail"].as_str().unwrap().contains("default/web")),
        "{c:#}"
    );

    let out = dd(d, &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The error names the budget and a pod it blocked (the human report; the numbers come
    // from the API server's own message).
    let s = status(d);
    let web_names: Vec<&str> = web_pods(&s).iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(text.contains("disruption budget web"), "{text}");
    assert!(web_names.iter().any(|n| text.contains(n)), "no pod named in:\n{text}");
    // The capacity is intact: at least the four nodes of the node group, Ready; the old
    // nodes that run the budget's pods are all still there, and no node is left cordoned.
    let still = instances(&s);
    assert!(still.len() >= 4, "{s:#}");
    let ready = nodes(&s).iter().filter(|n| n["ready"] == "True").count();
    assert!(ready >= 4, "{:#}", s["nodes"]);
    for p in web_pods(&before) {
        let node = nodes(&before).iter().find(|n| n["name"] == p["node"]).unwrap();
        let id = node["instance"].as_str().unwrap();
        assert!(still.iter().any(|i| i == id), "old instance {id} running {} was removed: {s:#}", p["name"]);
    }
    for n in nodes(&s) {
        assert_eq!(n["unschedulable"], false, "left cordoned: {n}");
        // A Node whose instance was terminated before the halt was deleted too.
        assert!(still.iter().any(|id| n["instance"] == id.as_str()), "a Node left behind: {n}");
    }
    assert!(violations(&s).is_empty(), "{:#}", s["violations"]);

    // With on_timeout = "force" the rollout completes, deleting what the budget protects.
    let drain_force = "    drain {\n      timeout    = 2m\n      on_timeout = \"force\"\n    }";
    write(d, &config(web, drain_force, "img-2"));
    let out = dd(d, &["apply", ".", "--auto-approve"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let after = status(d);
    assert!(instances(&after).iter().all(|id| !old.contains(id)), "{after:#}");
    // The sim's audit records the budget bypassed, by deletions; each pod deleted is named
    // in the output.
    let forced: Vec<&Value> = violations(&after).iter().filter(|v| v["cause"] == "deletion").collect();
    assert!(!forced.is_empty(), "{:#}", after["violations"]);
    for v in &forced {
        let pod = v["pod"].as_str().unwrap_or_default();
        let name = pod.rsplit('/').next().unwrap_or(pod);
        assert!(text.contains(name), "forced pod {pod} not listed:\n{text}");
    }
}

/// `watch --once --json`'s events.
fn watch_once(dir: &Path) -> Vec<Value> {
    let out = dd(dir, &["watch", ".", "--once", "--json"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn repaired(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "repaired" && e["address"] == WORKERS).collect()
}

const HEALTH: &str =
    "    health {\n      grace_period         = 0s\n      unhealthy_timeout    = 1m\n      node_startup_timeout = 2m\n    }";

#[test]
fn watch_replaces_a_node_whose_kubelet_died_while_its_instance_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = applied(d, WEB, HEALTH);
    let victim = instances(&before)[0].clone();
    ok(d, &["sim", "fail", ".", "--kubelet", "--instance", &victim]);
    let s = status(d);
    let node = nodes(&s).iter().find(|n| n["instance"] == victim.as_str()).unwrap().clone();
    assert_eq!(node["ready"], "Unknown", "{node}");
    // The cloud still finds the instance healthy: only the Node says otherwise.
    let cloud_healthy = s["groups"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == victim.as_str() && i["healthy"] == true);
    assert!(cloud_healthy, "{s:#}");

    // The plan shows it as drift, with what watch will do.
    let p = plan(d, &["."]);
    let path = format!("nodes.{}", node["name"].as_str().unwrap());
    let drift: Vec<&Value> = p["drift"].as_array().unwrap().iter().filter(|x| x["path"] == path.as_str()).collect();
    assert_eq!(drift.len(), 1, "{:#}", p["drift"]);
    assert_eq!((&drift[0]["address"], &drift[0]["before"]), (&Value::from(WORKERS), &Value::from("Ready")));
    // Not before unhealthy_timeout.
    assert!(repaired(&watch_once(d)).is_empty());
    ok(d, &["sim", "advance", ".", "70s"]);
    let events = watch_once(d);
    let r = repaired(&events);
    assert_eq!(r.len(), 1, "{events:#?}");
    assert!(r[0]["message"].as_str().unwrap().contains(&victim), "{events:#?}");

    ok(d, &["sim", "advance", ".", "30s"]);
    let after = status(d);
    let live = instances(&after);
    assert!(!live.contains(&victim), "{after:#}");
    assert_eq!(live.len(), 4, "the group replaced it: {after:#}");
    assert!(nodes(&after).iter().all(|n| n["name"] != node["name"]), "its Node was deleted: {:#}", after["nodes"]);
    assert!(nodes(&after).iter().all(|n| n["ready"] == "True"), "{:#}", after["nodes"]);
    assert!(violations(&after).is_empty(), "{:#}", after["violations"]);
}

#[test]
fn watch_replaces_a_node_that_never_registers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = applied(d, WEB, HEALTH);
    // A machine dies; the cloud launches a replacement whose kubelet never comes up.
    let crashed = instances(&before)[0].clone();
    ok(d, &["sim", "fail", ".", "--instance", &crashed]);
    ok(d, &["sim", "advance", ".", "11s"]);
    let s = status(d);
    let fresh: Vec<String> = instances(&s).into_iter().filter(|id| !instances(&before).contains(id)).collect();
    assert_eq!(fresh.len(), 1, "{s:#}");
    let stuck = fresh[0].clone();
    ok(d, &["sim", "fail", ".", "--kubelet", "--instance", &stuck]);
    ok(d, &["sim", "advance", ".", "30s"]);
    assert!(nodes(&status(d)).iter().all(|n| n["instance"] != stuck.as_str()), "it never registered");
    assert!(repaired(&watch_once(d)).is_empty(), "not before node_startup_timeout");

    ok(d, &["sim", "advance", ".", "2m"]);
    let events = watch_once(d);
    let r = repaired(&events);
    assert_eq!(r.len(), 1, "{events:#?}");
    assert!(r[0]["message"].as_str().unwrap().contains(&stuck), "{events:#?}");
    ok(d, &["sim", "advance", ".", "30s"]);
    let after = status(d);
    assert!(!instances(&after).contains(&stuck));
    assert_eq!(nodes(&after).iter().filter(|n| n["ready"] == "True").count(), 4, "{:#}", after["nodes"]);
}

#[test]
fn with_every_kubelet_down_the_storm_guard_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = applied(d, WEB, HEALTH);
    ok(d, &["sim", "fail", ".", "--kubelet", "--node-group", "workers", "--count", "4"]);
    ok(d, &["sim", "advance", ".", "5m"]);
    let events = watch_once(d);
    assert!(repaired(&events).is_empty(), "{events:#?}");
    assert!(
        events.iter().any(|e| e["event"] == "skipped"
            && e["address"] == WORKERS
            && e["message"].as_str().unwrap().starts_with("storm guard")),
        "{events:#?}"
    );
    assert_eq!(instances(&status(d)), instances(&before), "nothing was replaced");
}

/// No node is left cordoned unless its instance is going (terminated, its Node deleted once
/// it is gone).
fn no_live_node_cordoned(s: &Value, when: &str) {
    let live = instances(s);
    for n in nodes(s) {
        if n["unschedulable"] == true {
            assert!(!live.iter().any(|id| n["instance"] == id.as_str()), "{when}: a live node left cordoned: {n}");
        }
    }
}

#[test]
fn ctrl_c_during_a_drain_leaves_no_live_node_cordoned_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("applied");
    std::fs::create_dir_all(&snapshot).unwrap();
    applied(&snapshot, WEB, "");
    write(&snapshot, &config(WEB, "", "img-2"));
    let mut interrupted = 0;
    // Every other crash point of the rollout (each is after a state write or a cloud call).
    let mut k = 1;
    loop {
        let run = tempfile::tempdir().unwrap();
        let d = run.path();
        for e in std::fs::read_dir(&snapshot).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(d.join(e.file_name())).unwrap();
                for f in std::fs::read_dir(e.path()).unwrap() {
                    let f = f.unwrap();
                    std::fs::copy(f.path(), d.join(e.file_name()).join(f.file_name())).unwrap();
                }
            } else {
                std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(d)
            .args(["apply", ".", "--auto-approve"])
            .env("DRYDOCK_SIM_CLOCK", "virtual")
            .env("NO_COLOR", "1")
            .env("DRYDOCK_FAILPOINT_INTERRUPT_AT", k.to_string())
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), Some(130), "interrupt at {k}: {}", String::from_utf8_lossy(&out.stderr));
        interrupted += 1;
        no_live_node_cordoned(&status(d), &format!("interrupt at {k}"));
        ok(d, &["apply", ".", "--auto-approve"]);
        ok(d, &["sim", "advance", ".", "10s"]);
        let s = status(d);
        no_live_node_cordoned(&s, &format!("after the rerun of {k}"));
        assert!(violations(&s).is_empty(), "interrupt at {k}: {:#}", s["violations"]);
        assert_eq!(nodes(&s).len(), 4, "interrupt at {k}: {:#}", s["nodes"]);
        assert!(nodes(&s).iter().all(|n| n["ready"] == "True" && n["unschedulable"] == false), "{:#}", s["nodes"]);
        k += 2;
    }
    assert!(interrupted >= 10, "only {interrupted} interrupt points");
}

#[test]
fn a_label_change_is_made_on_the_nodes_in_place_without_a_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = applied(d, WEB, "    labels = { pool = \"general\", tier = \"web\" }");
    let ids = instances(&before);
    for n in nodes(&before) {
        assert_eq!(n["labels"]["pool"], "general", "registered with its generation's labels: {n}");
    }

    // One label changed, one removed, one added: an update in place, no node replaced.
    write(d, &config(WEB, "    labels = { pool = \"gp\", zone-class = \"standard\" }", "img-1"));
    let p = plan(d, &["."]);
    let c = change(&p, WORKERS);
    assert_eq!((&c["action"], &c["nodes_replaced"]), (&Value::from("update"), &Value::from(0)), "{c:#}");
    assert_eq!(c["replace_paths"], serde_json::json!([]), "{c:#}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = status(d);
    assert_eq!(instances(&s), ids, "no instance was replaced");
    for n in nodes(&s) {
        assert_eq!(n["labels"]["pool"], "gp", "{n}");
        assert_eq!(n["labels"]["zone-class"], "standard", "{n}");
        assert!(n["labels"].get("tier").is_none(), "a label drydock set and no longer configures is removed: {n}");
        assert!(n["labels"]["kubernetes.io/hostname"].is_string(), "labels drydock does not own stay: {n}");
    }
    let again = plan(d, &["."]);
    assert!(again["changes"].as_array().unwrap().is_empty(), "{again:#}");

    // A rollout later starts from the labels the configuration has now.
    write(d, &config(WEB, "    labels = { pool = \"gp\", zone-class = \"standard\" }", "img-2"));
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = status(d);
    assert!(instances(&s).iter().all(|id| !ids.contains(id)));
    for n in nodes(&s) {
        assert_eq!(n["labels"]["pool"], "gp", "{n}");
        assert!(n["labels"].get("tier").is_none(), "{n}");
    }
    assert!(violations(&s).is_empty(), "{:#}", s["violations"]);
}
