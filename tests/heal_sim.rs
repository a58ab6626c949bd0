//! Self-healing on the simulated cloud (virtual clock): drift in plans, and what apply and
//! `drydock watch` repair. Changes "behind drydock's back" are made through the simulated
//! cloud's own API, as a person with console access would.

mod common;

use common::machine::{
    assert_no_changes, change, drift_of, groups_of, has_event, live, ok_json_lines, plan, plan_detailed, removed,
    state_file, status, timeline,
};
use common::{dd, ok, quickstart, CONTROL_PLANE, WORKERS};

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use drydock_provider::{GroupSettings, Provider};
use serde_json::{json, Value};

fn lineage(d: &Path) -> String {
    state_file(d)["lineage"].as_str().unwrap().to_string()
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
    let (code, p) = plan_detailed(d, &["."]);
    assert_eq!(code, Some(2), "drift to repair exits 2");
    let drift: Vec<(&Value, &Value, &Value, &Value)> =
        drift_of(&p, WORKERS).iter().map(|d| (&d["path"], &d["before"], &d["after"], &d["action"])).collect();
    let restored = json!("restored in place by apply");
    assert_eq!(
        drift,
        [
            (&json!("min"), &json!(3), &json!(1), &restored),
            (&json!("max"), &json!(10), &json!(20), &restored),
            (&json!("desired"), &json!(4), &json!(6), &restored),
        ],
        "{p}"
    );
    assert_eq!(change(&p, WORKERS)["action"], "update", "{p}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let status = status(d);
    let g = groups_of(&status, "workers")[0];
    assert_eq!((g["min"].as_u64(), g["max"].as_u64(), g["desired"].as_u64()), (Some(3), Some(10), Some(4)));
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn refresh_false_plans_from_the_state_without_asking_the_cloud() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    edit_group(d, "workers", |s| s.max = 30);
    // The cloud changed, but without a refresh the plan does not see it.
    assert_eq!(dd(d, &["plan", ".", "--refresh=false", "--detailed-exitcode"]).status.code(), Some(0));
    assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(2));
    // A configuration change is still planned, from the state.
    let p = plan(d, &[".", "--refresh=false", "--var", "worker_image=img-9"]);
    let c = change(&p, WORKERS);
    assert_eq!((&c["action"], &c["nodes_replaced"]), (&json!("rollout"), &json!(4)), "{c}");
    // Instance ids are not known without a refresh: the waves name 4 nodes, none by the id
    // the cloud gave it.
    let s = status(d);
    let cloud_ids: BTreeSet<&str> =
        groups_of(&s, "workers").iter().flat_map(|g| live(g)).map(|i| i["id"].as_str().unwrap()).collect();
    let planned: Vec<String> = removed(c);
    assert_eq!(planned.iter().collect::<BTreeSet<_>>().len(), 4, "{c}");
    assert!(planned.iter().all(|id| !cloud_ids.contains(id.as_str())), "{c}\n{s}");
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
    let (code, p) = plan_detailed(d, &["."]);
    assert_eq!(code, Some(2));
    let drift: Vec<(&Value, &Value, &Value)> =
        drift_of(&p, CONTROL_PLANE).iter().map(|d| (&d["path"], &d["after"], &d["action"])).collect();
    assert_eq!(
        drift,
        [(&json!(format!("groups.{name}")), &json!("missing (deleted outside drydock)"), &json!("recreated by apply"))],
        "{p}"
    );
    ok(d, &["apply", ".", "--auto-approve"]);
    let status = status(d);
    let cp = groups_of(&status, "control-plane");
    assert_eq!(cp.len(), 3);
    assert!(cp.iter().any(|g| g["name"] == name.as_str()), "recreated under the same name");
    assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(0));
}

/// `drydock watch` with the given arguments; returns its events (JSON lines).
fn watch(d: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["watch", ".", "--json"];
    args.extend_from_slice(extra);
    ok_json_lines(&dd(d, &args), "drydock watch")
}

#[test]
fn watch_recreates_a_deleted_group_and_restores_sizes() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let lineage = lineage(d);
    let deleted = rt().block_on(async {
        let sim = cloud(d);
        let observed = sim.observe(&lineage).await.unwrap();
        let g = observed.groups.iter().find(|g| g.ownership.node_group == "control-plane").unwrap();
        sim.delete_group(&g.name).await.unwrap();
        g.name.clone()
    });
    edit_group(d, "workers", |s| s.max = 30);
    let events = watch(d, &["--once"]);
    let missing = format!("groups.{deleted} = exists -> missing (deleted outside drydock)");
    assert!(has_event(&events, "detected", CONTROL_PLANE, &missing), "{events:?}");
    assert!(has_event(&events, "repaired", CONTROL_PLANE, "restored to the applied state"), "{events:?}");
    assert!(has_event(&events, "detected", WORKERS, "max = 10 -> 30"), "{events:?}");
    assert!(has_event(&events, "repaired", WORKERS, "restored to the applied state"), "{events:?}");
    assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(0), "nothing left to repair");
    let log = std::fs::read_to_string(d.join(".drydock/watch.log")).unwrap();
    assert_eq!(log.lines().count(), events.len(), "every event is in the log");
}

#[test]
fn watch_never_rolls_out_a_change_nobody_applied() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let before = status(d);
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(d.join("cluster.kcl"), kcl.replace("img-cp-2026-11", "img-cp-2027-01")).unwrap();
    let events = watch(d, &["--once"]);
    assert!(has_event(&events, "skipped", CONTROL_PLANE, "rollout not done"), "{events:?}");
    assert!(!events.iter().any(|e| e["event"] == "repaired"), "{events:?}");
    let after = status(d);
    let groups = |s: &Value| -> Vec<String> {
        s["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(groups(&before), groups(&after), "no group was created or deleted");
}

/// A configuration changed but not applied does not stop watch from restoring what was
/// applied: a deleted group comes back on the applied generation (not the changed image),
/// in-place drift is put back to the applied sizes, and the change itself is reported as not
/// watch's to make.
#[test]
fn watch_restores_the_applied_state_while_a_configuration_change_waits() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let applied_gen = |d: &Path| -> String {
        state_file(d)["clusters"]["cluster.demo"]["node_groups"][WORKERS]["generations"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let generation = applied_gen(d);
    // The configuration moves on (a new image, a new max), unapplied.
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    assert!(kcl.contains("size          = 3..10"), "{kcl}");
    std::fs::write(d.join("cluster.kcl"), kcl.replace("size          = 3..10", "size          = 3..12")).unwrap();
    let lineage = lineage(d);
    let deleted = rt().block_on(async {
        let sim = cloud(d);
        let observed = sim.observe(&lineage).await.unwrap();
        let g = observed.groups.iter().find(|g| g.ownership.node_group == "workers").unwrap().name.clone();
        sim.delete_group(&g).await.unwrap();
        g
    });
    let events = watch(d, &["--once", "--var", "worker_image=img-next"]);
    assert!(has_event(&events, "repaired", WORKERS, "restored to the applied state"), "{events:?}");
    let waits = events.iter().any(|e| {
        e["event"] == "skipped"
            && e["address"] == WORKERS
            && e["why"].as_str().is_some_and(|w| w.contains("the configuration differs from what was applied"))
    });
    assert!(waits, "the unapplied change is reported as not watch's: {events:?}");
    let s = status(d);
    let workers = groups_of(&s, "workers");
    assert_eq!(workers.len(), 1, "{s}");
    assert_eq!(workers[0]["name"], deleted.as_str(), "recreated under its applied name");
    assert_eq!(workers[0]["generation"], generation.as_str(), "on the applied generation");
    assert_eq!(workers[0]["max"], 10, "with the applied sizes");
    assert_eq!(live(workers[0]).len(), 4);
    assert_eq!(applied_gen(d), generation, "the state still records the applied generation");
}

#[test]
fn a_lost_zone_trips_the_storm_guard_and_nothing_is_mass_replaced() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    ok(d, &["sim", "fail", ".", "--zone", "zone-a"]);
    // Thirteen rounds a minute apart: well past startup_timeout (10m) for the stuck nodes.
    let events = watch(d, &["--interval", "1m", "--rounds", "13"]);
    let guard = "storm guard: 2 of 4 nodes unhealthy, more than max_unhealthy (1)";
    assert!(has_event(&events, "skipped", WORKERS, guard), "{events:?}");
    assert!(!events.iter().any(|e| e["event"] == "repaired" && e["address"] == WORKERS), "{events:?}");
    let skipped = events.iter().find(|e| e["message"] == guard).unwrap();
    assert_eq!(skipped["why"], "not replacing: a bad image or a lost zone is not fixed by killing more nodes");
}

#[test]
fn an_instance_stuck_pending_is_replaced_after_startup_timeout() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    // Zone c holds one worker: its replacement launches there and hangs while the zone is down.
    ok(d, &["sim", "fail", ".", "--zone", "zone-c"]);
    let events = watch(d, &["--interval", "1m", "--rounds", "13"]);
    // The disruption budget (10% of 7 nodes, at least 1) lets one stuck node go at a time:
    // a node of the cluster is replaced, the one stuck pending in zone c.
    let replaced: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "repaired" && (e["address"] == WORKERS || e["address"] == CONTROL_PLANE))
        .filter_map(|e| {
            e["message"].as_str()?.strip_prefix("replaced ")?.strip_suffix(" (pending longer than startup_timeout)")
        })
        .collect();
    assert!(!replaced.is_empty(), "{events:?}");
    let s = status(d);
    let instances: Vec<&Value> =
        s["groups"].as_array().unwrap().iter().flat_map(|g| g["instances"].as_array().unwrap()).collect();
    for id in replaced {
        let i = instances.iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("{id}: {s}"));
        assert_eq!(i["zone"], "zone-c", "{i}");
        assert!(i["state"] != "pending" && i["state"] != "running", "{id} is gone: {i}");
    }
}

#[test]
fn a_crashed_instance_is_replaced_and_the_recovery_time_is_near_the_physical_floor() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    // Past the health check grace period (90s), within which no cloud replaces an instance.
    watch(d, &["--interval", "50s", "--rounds", "3"]);
    let t0 = now(d);
    ok(d, &["sim", "fail", ".", "--node-group", "workers", "--count", "1"]);
    // Watch advances the simulated clock one second a round.
    watch(d, &["--interval", "1s", "--rounds", "30"]);
    let timeline = timeline(d);
    let workers: Vec<&Value> =
        timeline.iter().filter(|p| p["node_group"] == "workers" && p["t_ms"].as_u64().unwrap() >= t0).collect();
    let down = workers.iter().find(|p| p["healthy"].as_u64().unwrap() < 4).expect("the crash shows in the timeline");
    let up = workers
        .iter()
        .find(|p| p["t_ms"].as_u64() > down["t_ms"].as_u64() && p["healthy"].as_u64().unwrap() == 4)
        .expect("capacity came back");
    let mttr = up["t_ms"].as_u64().unwrap() - down["t_ms"].as_u64().unwrap();
    // The physical floor: the cloud notices after detection_delay (10s), a node boots in boot_time (2s).
    let floor = 10_000 + 2_000;
    let ratio = mttr as f64 / floor as f64;
    eprintln!("time to recovery {mttr} ms, floor {floor} ms, ratio {ratio:.2}");
    assert!(ratio <= 1.1, "time to recovery {mttr} ms is more than 1.1x the floor {floor} ms");
}

#[test]
fn watch_killed_mid_repair_finishes_in_the_next_round() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let lineage = lineage(d);
    rt().block_on(async {
        let sim = cloud(d);
        for g in
            sim.observe(&lineage).await.unwrap().groups.iter().filter(|g| g.ownership.node_group == "control-plane")
        {
            sim.delete_group(&g.name).await.unwrap();
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(d)
        .args(["watch", ".", "--once", "--json"])
        .env("DRYDOCK_SIM_CLOCK", "virtual")
        .env("DRYDOCK_FAILPOINT_KILL_AT", "4")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "killed mid-repair");
    watch(d, &["--once"]);
    assert_eq!(
        dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(),
        Some(0),
        "the next round finished the repair"
    );
    assert_eq!(groups_of(&status(d), "control-plane").len(), 3);
}

#[test]
fn a_control_plane_member_dies_around_its_rollout_and_quorum_is_never_lost() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    // One member dies; its group will not replace it within the 90s grace period.
    let member = groups_of(&status(d), "control-plane")[0]["instances"][0]["id"].as_str().unwrap().to_string();
    ok(d, &["sim", "fail", ".", "--instance", &member]);
    let t0 = now(d);
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(d.join("cluster.kcl"), kcl.replace("img-cp-2026-11", "img-cp-2027-01")).unwrap();
    let p = plan(d, &["."]);
    let first = &change(&p, CONTROL_PLANE)["waves"][0]["remove_first"];
    assert!(first.as_array().unwrap().contains(&json!(member)), "the dead member is replaced first: {p}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let timeline = timeline(d);
    let during: Vec<&Value> =
        timeline.iter().filter(|p| p["node_group"] == "control-plane" && p["t_ms"].as_u64().unwrap() >= t0).collect();
    assert!(!during.is_empty());
    for p in &during {
        assert!(p["healthy"].as_u64().unwrap() >= 2, "quorum (2 of 3) lost: {p}");
    }
    let status = status(d);
    let cp = groups_of(&status, "control-plane");
    assert_eq!(cp.len(), 3);
    assert!(cp.iter().all(|g| g["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["image"] == "img-cp-2027-01" && i["healthy"] == true)));
}

/// The simulated cloud's time now.
fn now(d: &Path) -> u64 {
    status(d)["now_ms"].as_u64().unwrap()
}

/// The control plane's capacity from `t0` on, as (time, healthy, total).
fn control_plane_timeline(d: &Path, t0: u64) -> Vec<(u64, u64, u64)> {
    timeline(d)
        .into_iter()
        .filter(|p| p["node_group"] == "control-plane" && p["t_ms"].as_u64().unwrap() >= t0)
        .map(|p| (p["t_ms"].as_u64().unwrap(), p["healthy"].as_u64().unwrap(), p["total"].as_u64().unwrap()))
        .collect()
}

#[test]
fn a_control_plane_member_dying_during_its_rollout_never_costs_quorum() {
    let roll_out = |d: &Path| {
        let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
        std::fs::write(d.join("cluster.kcl"), kcl.replace("img-cp-2026-11", "img-cp-2027-01")).unwrap();
        ok(d, &["apply", ".", "--auto-approve"])
    };
    // The rollout without a failure: when each of its moments (a member launched, booted,
    // terminated) happens on the virtual clock.
    let (t0, moments) = {
        let dir = quickstart();
        let d = dir.path();
        ok(d, &["apply", ".", "--auto-approve"]);
        let t0 = now(d);
        roll_out(d);
        let points = control_plane_timeline(d, t0);
        assert!(points.iter().all(|p| p.1 == 3 || p.2 == 4), "one member at a time: {points:?}");
        let moments: BTreeSet<u64> = points.iter().map(|p| p.0).collect();
        (t0, moments.into_iter().collect::<Vec<u64>>())
    };
    assert!(moments.len() >= 4, "three members, each launched, then booted and replaced: {moments:?}");
    // A member dies (chosen then, old or new) just after each moment of the rollout, and
    // halfway to the next one: strictly between two moments, so that its dip shows alone.
    let deaths: BTreeSet<u64> = moments
        .windows(2)
        .flat_map(|w| [w[0] + 1, w[0] + (w[1] - w[0]) / 2])
        .filter(|at| !moments.contains(at))
        .collect();
    assert!(deaths.len() >= 6, "{deaths:?}");
    for at in deaths {
        let dir = quickstart();
        let d = dir.path();
        ok(d, &["apply", ".", "--auto-approve"]);
        assert_eq!(now(d), t0, "the virtual clock makes every run alike");
        let after = format!("{}ms", at - t0);
        ok(d, &["sim", "fail", ".", "--node-group", "control-plane", "--after", &after]);
        roll_out(d);
        let points = control_plane_timeline(d, t0);
        // The member died when it was due, in the middle of the rollout.
        let dip = points.iter().position(|p| p.0 == at).unwrap_or_else(|| panic!("no death at {at}: {points:?}"));
        assert!(dip > 0 && points[dip].1 + 1 == points[dip - 1].1, "a member fewer healthy at {at}: {points:?}");
        for p in &points {
            assert!(p.1 >= 2, "death at {at}: quorum (2 of 3) lost at {}: {points:?}", p.0);
        }
        // Once the dead member is replaced (by its group after the grace period, or by
        // watch), the control plane is whole on the new image and nothing is left to do.
        watch(d, &["--interval", "10s", "--rounds", "15"]);
        let status = status(d);
        let members = groups_of(&status, "control-plane");
        assert_eq!(members.len(), 3, "death at {at}: {status}");
        for m in members {
            let instances = m["instances"].as_array().unwrap();
            assert!(
                instances.iter().any(|i| i["image"] == "img-cp-2027-01" && i["healthy"] == true),
                "death at {at}: {m}"
            );
        }
        assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(0), "death at {at}");
    }
}

#[test]
fn the_disruption_budget_is_shared_by_the_rollouts_of_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = |image: &str| {
        format!(
            r#"provider "sim" {{
  boot_time = 2s
}}

cluster "shared" {{
  kubernetes_version = "1.31"
  disruption_budget  = 1

  network {{
    subnets = ["subnet-a", "subnet-b"]
  }}

  defaults {{
    image         = "{image}"
    instance_type = "m6i.large"
    rollout {{
      max_surge = 50%
    }}
  }}

  node_group "a" {{
    size = 4
  }}

  node_group "b" {{
    size = 4
  }}
}}
"#
        )
    };
    std::fs::write(d.join("main.kcl"), config("img-1")).unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    let t0 = now(d);
    std::fs::write(d.join("main.kcl"), config("img-2")).unwrap();
    let p = plan(d, &["."]);
    // 50% of 4 would surge 2 a wave; the budget of 1 node keeps each wave to 1.
    for node_group in ["a", "b"] {
        let c = change(&p, &format!("cluster.shared.node_group.{node_group}"));
        assert_eq!((&c["action"], &c["nodes_replaced"]), (&json!("rollout"), &json!(4)), "{c}");
        let waves = c["waves"].as_array().unwrap();
        assert_eq!(waves.len(), 4, "{c}");
        assert!(waves.iter().all(|w| w["add"] == 1), "{c}");
    }
    ok(d, &["apply", ".", "--auto-approve", "--parallelism", "10"]);
    // Replay the cloud's timeline: at no moment more than 1 node above the cluster's 8.
    let timeline = timeline(d);
    let mut totals: std::collections::BTreeMap<String, u64> = [("a".to_string(), 4), ("b".to_string(), 4)].into();
    let mut worst = 0;
    for p in timeline.iter().filter(|p| p["t_ms"].as_u64().unwrap() >= t0) {
        totals.insert(p["node_group"].as_str().unwrap().to_string(), p["total"].as_u64().unwrap());
        worst = worst.max(totals.values().sum::<u64>());
    }
    assert!(worst <= 9, "the cluster had {worst} nodes at once (8 + budget 1)");
    assert!(worst == 9, "the rollouts did surge: {worst}");
}

#[test]
fn watch_once_from_cron_counts_the_unhealthy_timeout_from_the_first_sighting() {
    let dir = quickstart();
    let d = dir.path();
    // A cloud that never replaces a crashed instance by itself (its detection takes an hour),
    // and workers that watch replaces after a minute unhealthy.
    let cfg = d.join("cluster.kcl");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let patched = text.replacen("boot_time  = 2s", "boot_time  = 2s\n  detection_delay = 1h", 1).replacen(
        "max_unhealthy = 40%",
        "max_unhealthy = 40%\n      unhealthy_timeout = 1m",
        1,
    );
    assert!(patched.contains("detection_delay = 1h") && patched.contains("unhealthy_timeout = 1m"));
    std::fs::write(&cfg, patched).unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    ok(d, &["sim", "advance", ".", "2m"]);
    ok(d, &["sim", "fail", ".", "--node-group", "workers", "--count", "1"]);
    let s = status(d);
    let failed: Vec<&Value> =
        groups_of(&s, "workers").into_iter().flat_map(live).filter(|i| i["healthy"] == false).collect();
    assert_eq!(failed.len(), 1, "{s}");
    let failed = failed[0]["id"].as_str().unwrap().to_string();
    let repaired = |events: &[Value]| events.iter().any(|e| e["event"] == "repaired" && e["address"] == WORKERS);
    // Each run is a new process, as from cron: the first sees the instance unhealthy and waits.
    let first = watch(d, &["--once"]);
    assert!(!repaired(&first), "{first:?}");
    ok(d, &["sim", "advance", ".", "30s"]);
    let second = watch(d, &["--once"]);
    assert!(!repaired(&second), "30 s is not a minute yet: {second:?}");
    // A minute after the first sighting, not after this run's start: replaced.
    ok(d, &["sim", "advance", ".", "31s"]);
    let third = watch(d, &["--once"]);
    assert!(has_event(&third, "repaired", WORKERS, &format!("replaced {failed} (unhealthy too long)")), "{third:?}");
    // Once the replacement is healthy the node group is whole again.
    ok(d, &["sim", "advance", ".", "10s"]);
    assert_eq!(dd(d, &["plan", ".", "--detailed-exitcode"]).status.code(), Some(0));
}

/// Tags changed, removed or added by hand (the cluster's as well as the node group's) are drift
/// that apply restores — a group's tags are set exactly, as Terraform does — and once restored
/// the plan has nothing left to do.
#[test]
fn tags_changed_by_hand_are_drift_that_apply_restores() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let name = edit_group(d, "workers", |s| {
        s.tags.insert("team".into(), "hacked".into());
        s.tags.insert("added-by-hand".into(), "1".into());
        s.tags.remove("env");
    });
    let (code, p) = plan_detailed(d, &["."]);
    assert_eq!(code, Some(2), "drift to repair exits 2: {p}");
    let drift: Vec<(&Value, &Value, &Value, &Value)> =
        drift_of(&p, WORKERS).iter().map(|d| (&d["path"], &d["before"], &d["after"], &d["action"])).collect();
    let restored = json!("restored in place by apply");
    assert_eq!(
        drift,
        [
            (&json!("tags.env"), &json!("dev"), &json!("(removed)"), &restored),
            (&json!("tags.team"), &json!("platform"), &json!("hacked"), &restored),
            (&json!("tags.added-by-hand"), &json!("(absent)"), &json!("1"), &json!("removed by apply")),
        ],
        "{p}"
    );
    // Drift is not a change of the configuration: the change lists no reason of its own.
    let c = change(&p, WORKERS);
    assert_eq!(c["action"], "update", "{p}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let tags = rt().block_on(async {
        let observed = cloud(d).observe(&lineage(d)).await.unwrap();
        observed.groups.iter().find(|g| g.name == name).unwrap().settings.tags.clone()
    });
    assert_eq!(tags.get("team").map(String::as_str), Some("platform"), "{tags:?}");
    assert_eq!(tags.get("env").map(String::as_str), Some("dev"), "{tags:?}");
    assert!(!tags.contains_key("added-by-hand"), "{tags:?}");
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// An apply of drydock's own killed half-way is not drift made outside drydock: at every point
/// of a rollout a kill leaves, the plan reports one `apply` entry saying it was interrupted
/// (never the old group's sizes as changed by hand), and the next apply finishes the rollout.
#[test]
fn an_interrupted_apply_is_reported_as_such_not_as_changes_outside_drydock() {
    let dir = quickstart();
    let base = dir.path();
    ok(base, &["apply", ".", "--auto-approve"]);
    let rollout = ["apply", ".", "--auto-approve", "--var", "worker_image=img-2"];
    let mut interrupted = 0;
    for k in (2..40).step_by(3) {
        let run = tempfile::tempdir().unwrap();
        let d = run.path();
        // The applied configuration, state and simulated cloud, copied.
        let copied = Command::new("cp").arg("-a").arg(base.join(".")).arg(d).status().unwrap();
        assert!(copied.success());
        let killed = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(d)
            .args(rollout)
            .env("DRYDOCK_SIM_CLOCK", "virtual")
            .env("DRYDOCK_FAILPOINT_KILL_AT", k.to_string())
            .output()
            .unwrap();
        if killed.status.success() {
            break;
        }
        let p = plan(d, &[".", "--var", "worker_image=img-2"]);
        let drift: Vec<(&Value, &Value)> = drift_of(&p, WORKERS).iter().map(|d| (&d["path"], &d["after"])).collect();
        assert!(
            drift.is_empty() || drift == [(&json!("apply"), &json!("interrupted"))],
            "killed at crash point {k}: {p}"
        );
        interrupted += usize::from(!drift.is_empty());
        ok(d, &rollout);
        assert_no_changes(&plan(d, &[".", "--var", "worker_image=img-2"]), &format!("crash point {k}"));
    }
    assert!(interrupted >= 5, "only {interrupted} crash points left the rollout interrupted");
}

/// Subnets, the health check and its grace period changed by hand are drift that apply
/// restores in place (no node replaced), and then nothing is left to do.
#[test]
fn subnets_and_health_settings_changed_by_hand_are_drift_that_apply_restores() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let instances = |d: &Path| -> BTreeSet<String> {
        let s = status(d);
        groups_of(&s, "workers")
            .iter()
            .flat_map(|g| live(g))
            .filter_map(|i| i["id"].as_str())
            .map(String::from)
            .collect()
    };
    let before = instances(d);
    let name = edit_group(d, "workers", |s| {
        s.subnets = vec!["subnet-a".into()];
        s.health_check = drydock_provider::HealthCheck::Elb;
        s.grace_period_ms += 60_000;
    });
    let (code, p) = plan_detailed(d, &["."]);
    assert_eq!(code, Some(2), "drift to repair exits 2: {p}");
    let paths: BTreeSet<&str> = drift_of(&p, WORKERS)
        .iter()
        .filter(|d| d["action"] == "restored in place by apply")
        .filter_map(|d| d["path"].as_str())
        .collect();
    assert_eq!(paths, BTreeSet::from(["subnets", "health.check", "health.grace_period"]), "{p}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = rt().block_on(async {
        let observed = cloud(d).observe(&lineage(d)).await.unwrap();
        observed.groups.iter().find(|g| g.name == name).unwrap().settings.clone()
    });
    assert_eq!(s.subnets, ["subnet-a", "subnet-b", "subnet-c"], "{s:?}");
    assert_eq!(s.health_check, drydock_provider::HealthCheck::Ec2);
    assert_eq!(instances(d), before, "no node was replaced");
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}
