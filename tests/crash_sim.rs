//! `kill -9` during apply, at every crash point of a create, a rollout (workers and the
//! control plane) and a destroy: after each kill the state file parses, and running the
//! same command again converges with no orphaned group or instance and nothing forgotten.
//! Crash points are deterministic (after every state write and after every cloud mutation
//! before it is settled, see `DRYDOCK_FAILPOINT_KILL_AT`), so the test covers all of them
//! rather than a random sample.

mod common;

use common::machine::{assert_no_changes, plan};

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn dd(dir: &Path, args: &[&str], kill_at: Option<u64>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
    c.current_dir(dir).args(args).env("DRYDOCK_SIM_CLOCK", "virtual").env("NO_COLOR", "1");
    if let Some(k) = kill_at {
        c.env("DRYDOCK_FAILPOINT_KILL_AT", k.to_string());
    }
    c.output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dd(dir, args, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drydock {args:?}:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

const ROLLOUT: &[&str] = &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"];

/// The cloud matches the configuration exactly: one current generation per node group,
/// every instance live and healthy, and the state names exactly the groups that exist.
fn converged(dir: &Path, worker_image: &str, cp_image: &str) {
    let status: Value = serde_json::from_str(&ok(dir, &["sim", "status", ".", "--json"])).unwrap();
    let state: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("drydock.state.json")).unwrap()).unwrap();
    assert_eq!(state["journal"], serde_json::json!([]), "settled journal");
    // The run that converged folded its write-ahead journal into the state file.
    assert!(!dir.join("drydock.state.json.journal").exists(), "the journal outlived the run that converged");
    let groups = status["groups"].as_array().unwrap();
    let mut state_groups: Vec<String> = vec![];
    for ng in state["clusters"]["cluster.demo"]["node_groups"].as_object().unwrap().values() {
        let gens = ng["generations"].as_array().unwrap();
        assert_eq!(gens.len(), 1, "one generation per node group: {ng}");
        state_groups.extend(gens[0]["groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_string()));
    }
    let mut cloud_groups: Vec<String> = groups.iter().map(|g| g["name"].as_str().unwrap().to_string()).collect();
    state_groups.sort();
    cloud_groups.sort();
    assert_eq!(state_groups, cloud_groups, "the state and the cloud name the same groups (no orphans)");
    let live = |ng: &str, image: &str| -> usize {
        groups
            .iter()
            .filter(|g| g["node_group"] == ng)
            .flat_map(|g| g["instances"].as_array().unwrap())
            .filter(|i| i["state"] == "pending" || i["state"] == "running")
            .inspect(|i| assert!(i["healthy"] == true && i["image"] == image, "{i}"))
            .count()
    };
    assert_eq!(live("workers", worker_image), 4);
    let workers = groups.iter().find(|g| g["node_group"] == "workers").unwrap();
    assert_eq!(
        state["outputs"]["worker_groups"]["value"],
        serde_json::json!([workers["name"]]),
        "outputs name the current group"
    );
    assert_eq!(live("control-plane", cp_image), 3);
    // The Kubernetes side: a Ready, schedulable Node for each live instance and no other (no
    // node left cordoned that is not being removed, no Node outliving its instance), and the
    // simulated API server's audit found nothing (every removed node was drained, no budget
    // broken).
    let instances: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["instances"].as_array().unwrap())
        .filter(|i| i["state"] == "pending" || i["state"] == "running")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let nodes = status["nodes"].as_array().unwrap();
    for n in nodes {
        assert!(instances.iter().any(|id| n["instance"] == *id), "a Node outlived its instance: {n}");
        assert_eq!(n["ready"], "True", "{n}");
        assert_eq!(n["unschedulable"], false, "left cordoned: {n}");
    }
    assert_eq!(nodes.len(), instances.len(), "every instance has its Node: {:#}", status["nodes"]);
    assert_eq!(status["violations"], serde_json::json!([]), "the sim's audit");
}

/// Kills `args` at crash point 1, 2, … until a run completes; checks each recovery.
/// Returns how many crash points there were.
fn crash_everywhere(snapshot: &Path, args: &[&str], check: impl Fn(&Path)) -> u64 {
    let mut k = 1;
    loop {
        let run = tempfile::tempdir().unwrap();
        let d = run.path();
        copy_dir(snapshot, d);
        let out = dd(d, args, Some(k));
        if out.status.success() {
            return k - 1;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "crash point {k}: killed, not failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(text) = std::fs::read_to_string(d.join("drydock.state.json")) {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("crash point {k}: the state does not parse: {e}"));
            assert_eq!(v["format_version"], 1);
        }
        let again = dd(d, args, None);
        assert!(
            again.status.success(),
            "crash point {k}: the re-run failed:\n{}\n{}",
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&again.stderr)
        );
        check(d);
        k += 1;
    }
}

#[test]
fn kill_dash_nine_anywhere_then_apply_again_converges() {
    let base = tempfile::tempdir().unwrap();
    let fresh = base.path().join("fresh");
    let src = common::repo().join("examples/quickstart");
    copy_dir(&src, &fresh);

    // Create.
    let created = crash_everywhere(&fresh, &["apply", ".", "--auto-approve"], |d| {
        converged(d, "img-worker-2026-11", "img-cp-2026-11");
        assert_no_changes(&plan(d, &["."]), "after the create");
    });

    // A rollout of the workers and the control plane at once.
    let applied = base.path().join("applied");
    copy_dir(&fresh, &applied);
    ok(&applied, &["apply", ".", "--auto-approve"]);
    let kcl = std::fs::read_to_string(applied.join("cluster.kcl")).unwrap();
    std::fs::write(applied.join("cluster.kcl"), kcl.replace("img-cp-2026-11", "img-cp-2")).unwrap();
    let rolled = crash_everywhere(&applied, ROLLOUT, |d| {
        converged(d, "img-2", "img-cp-2");
        assert_no_changes(&plan(d, &[".", "--var", "worker_image=img-2"]), "after the rollout");
    });

    // Destroy.
    let done = base.path().join("done");
    copy_dir(&applied, &done);
    ok(&done, ROLLOUT);
    let destroyed = crash_everywhere(&done, &["destroy", ".", "--auto-approve"], |d| {
        let status: Value = serde_json::from_str(&ok(d, &["sim", "status", ".", "--json"])).unwrap();
        assert_eq!(status["groups"], serde_json::json!([]), "nothing left in the cloud");
        let state: Value = serde_json::from_str(&ok(d, &["state", "pull", "."])).unwrap();
        assert_eq!(state["clusters"], serde_json::json!({}), "nothing left in the state");
    });

    eprintln!("crash points: create {created}, rollout {rolled}, destroy {destroyed}");
    assert!(created >= 10 && rolled >= 20 && destroyed >= 5, "create {created}, rollout {rolled}, destroy {destroyed}");
    assert!(created + rolled + destroyed >= 50);
}
