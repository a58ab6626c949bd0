//! End to end through the binary on the simulated cloud (virtual clock): create, a
//! rollout planned wave by wave and applied from a saved plan, the capacity floor and
//! ceiling checked against the cloud's own timeline, halts, and destroy.

mod common;

use common::{dd, ok, quickstart};

use std::path::Path;
use std::process::Command;

use serde_json::Value;

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
    // The output refers to names known only after apply.
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("drydock.state.json")).unwrap()).unwrap();
    let names = state["outputs"]["worker_groups"]["value"].as_array().unwrap();
    assert_eq!(names.len(), 1);
    let group = names[0].as_str().unwrap();
    assert!(group.contains("-demo-workers-"), "{group}");
    assert!(out.contains(&format!("worker_groups = [\"{group}\"]")), "{out}");
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
    assert_eq!(state["outputs"], serde_json::json!({}));
}

#[test]
fn sensitive_values_stay_out_of_the_state() {
    let dir = quickstart();
    let d = dir.path();
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let secret = "s3cr3t-join-token";
    let kcl = kcl.replace(
        "variable \"worker_image\" {",
        &format!("variable \"join_token\" {{\n  default   = \"{secret}\"\n  sensitive = true\n}}\n\nvariable \"worker_image\" {{"),
    ) + "\noutput \"token\" {\n  value = var.join_token\n}\n";
    let kcl =
        kcl.replace("user_data     = file(\"bootstrap/worker.sh\")", "user_data     = \"TOKEN=${var.join_token}\"");
    std::fs::write(d.join("cluster.kcl"), kcl).unwrap();
    let out = ok(d, &["apply", ".", "--auto-approve"]);
    assert!(!out.contains(secret), "apply printed the secret:\n{out}");
    assert!(out.contains("token = (sensitive)"), "{out}");
    let state = std::fs::read_to_string(d.join("drydock.state.json")).unwrap();
    assert!(!state.contains(secret), "the state holds the secret:\n{state}");
    assert!(state.contains("(sensitive: sha256 "), "a digest stands in for it");
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

/// A plan saved by an older drydock (format 1: untyped actions and values) is refused with
/// what to do, before anything is read or changed; `show` refuses it the same way.
#[test]
fn a_saved_plan_of_another_format_is_refused_with_what_to_do() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "new.plan"]);
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(d.join("new.plan")).unwrap()).unwrap();
    assert_eq!(plan["format_version"], 2);
    assert_eq!(plan["changes"][0]["action"]["kind"], "create", "actions carry their data");
    plan["format_version"] = 1.into();
    std::fs::write(d.join("old.plan"), plan.to_string()).unwrap();
    for command in [&["apply", "old.plan"][..], &["show", "old.plan"]] {
        let out = dd(d, command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("has plan format 1, written by an older drydock"), "{err}");
        assert!(err.contains("make a new plan with `drydock plan --out old.plan`"), "{err}");
    }
    assert!(status(d)["groups"].as_array().unwrap().is_empty(), "nothing was created");
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
    let both = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(both.matches("rollout halted").count(), 1, "the error is reported once:\n{both}");
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

#[test]
fn no_phantom_rollouts() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let original = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let no_changes = |why: &str| {
        let plan = ok(d, &["plan", "."]);
        assert!(plan.contains("No changes."), "{why}:\n{plan}");
    };

    // Reformatted: no alignment, blank lines gone, a comment added.
    let squashed: String = original
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect::<String>()
        + "# a trailing comment\n";
    std::fs::write(d.join("cluster.kcl"), &squashed).unwrap();
    no_changes("after reformatting");

    // Blocks and attributes reordered: the workers before the control plane, image last.
    let cp_start = original.find("  node_group \"control-plane\"").unwrap();
    let workers_start = original.find("  node_group \"workers\"").unwrap();
    let workers_end = original[workers_start..].find("\n  }\n").unwrap() + workers_start + 5;
    let cp_block = &original[cp_start..workers_start];
    let workers_block = &original[workers_start..workers_end];
    let swapped_workers = workers_block.replacen("    image         = var.worker_image\n", "", 1).replacen(
        "    user_data     = file(\"bootstrap/worker.sh\")\n",
        "    user_data     = file(\"bootstrap/worker.sh\")\n    image         = var.worker_image\n",
        1,
    );
    assert_ne!(swapped_workers, workers_block);
    let reordered = format!(
        "{}{}\n{}{}",
        &original[..cp_start],
        swapped_workers,
        cp_block.trim_end_matches('\n'),
        &original[workers_end..]
    );
    std::fs::write(d.join("cluster.kcl"), &reordered).unwrap();
    no_changes("after reordering blocks and attributes");

    // A variable renamed, its value unchanged.
    let renamed = original
        .replace("variable \"worker_image\"", "variable \"image_for_workers\"")
        .replace("var.worker_image", "var.image_for_workers");
    std::fs::write(d.join("cluster.kcl"), &renamed).unwrap();
    no_changes("after renaming a variable");

    // The autoscaler moves desired capacity inside size (desired no longer pinned).
    let unpinned = original
        .replace("    desired       = 4           # optional: pins desired capacity\n", "")
        .replace("    desired       = 4     # optional: pins desired capacity\n", "");
    assert_ne!(unpinned, original, "the quickstart pins desired");
    std::fs::write(d.join("cluster.kcl"), &unpinned).unwrap();
    let plan = ok(d, &["plan", "."]);
    assert!(plan.contains("will be updated in place: no node is replaced"), "unpinning is an in-place change:\n{plan}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let world = d.join(".drydock/sim-world.json");
    let status = drydock_sim::status(&world).unwrap();
    let g = status.groups.iter().find(|g| g.node_group == "workers").unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use drydock_provider::Provider;
        let sim =
            drydock_sim::SimProvider::new(&world, drydock_sim::SimConfig::default(), drydock_sim::ClockMode::Virtual);
        let observed = sim.observe(&lineage(d)).await.unwrap();
        let mut settings = observed.groups.iter().find(|o| o.name == g.name).unwrap().settings.clone();
        settings.desired = 7; // as a cluster autoscaler would, inside 3..10
        sim.update_group(&g.name, &settings).await.unwrap();
    });
    no_changes("after the autoscaler moved desired inside size");
}

fn lineage(d: &Path) -> String {
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("drydock.state.json")).unwrap()).unwrap();
    state["lineage"].as_str().unwrap().to_string()
}

#[test]
fn a_size_change_is_made_in_place_without_replacing_a_node() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let ids = |s: &Value| -> Vec<String> {
        groups(s, "workers")
            .iter()
            .flat_map(|g| live_instances(g))
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let before = ids(&status(d));
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(
        d.join("cluster.kcl"),
        kcl.replace("3..10", "2..12").replace("desired       = 4", "desired       = 5"),
    )
    .unwrap();
    let plan = ok(d, &["plan", "."]);
    assert!(plan.contains("cluster.demo.node_group.workers will be updated in place: no node is replaced"), "{plan}");
    assert!(plan.contains("Plan: 0 to create, 0 to roll out (0 nodes replaced), 1 to update in place, 0 to destroy."));
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = status(d);
    let g = groups(&s, "workers")[0];
    assert_eq!((g["min"].as_u64(), g["max"].as_u64(), g["desired"].as_u64()), (Some(2), Some(12), Some(5)));
    let after = ids(&s);
    assert!(before.iter().all(|id| after.contains(id)), "no node was replaced: {before:?} -> {after:?}");
    assert!(ok(d, &["plan", "."]).contains("No changes."));
}

#[test]
fn ctrl_c_stops_after_the_call_in_flight_and_a_rerun_finishes() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    // SIGINT at the 12th crash point of the rollout, as Ctrl-C would.
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(d)
        .args(["apply", ".", "--auto-approve", "--var", "worker_image=img-2"])
        .env("DRYDOCK_SIM_CLOCK", "virtual")
        .env("DRYDOCK_FAILPOINT_INTERRUPT_AT", "12")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Interrupted. The state records everything done so far"), "{stdout}");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("drydock.state.json")).unwrap()).unwrap();
    assert_eq!(state["journal"], serde_json::json!([]), "calls in flight were settled");
    let plan = ok(d, &["plan", ".", "--var", "worker_image=img-2"]);
    assert!(plan.contains("will be rolled out"), "the rest of the rollout is planned:\n{plan}");
    ok(d, &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]);
    assert!(ok(d, &["plan", ".", "--var", "worker_image=img-2"]).contains("No changes."));
}

#[test]
fn an_empty_node_group_rolls_out_to_a_new_empty_group() {
    // With no nodes there is no wave to create the new generation's group: the rollout still
    // replaces the old group by a new one, and the next plan has nothing to do.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("main.kcl"),
        r#"
provider "sim" {}

variable "image" {
  type    = string
  default = "img-1"
}

cluster "demo" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a"]
  }
  node_group "spot" {
    image         = var.image
    instance_type = "m6i.large"
    size          = 0..5
  }
}
"#,
    )
    .unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    let before: Vec<String> =
        groups(&status(d), "spot").iter().map(|g| g["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(before.len(), 1);
    let out = ok(d, &["apply", ".", "--auto-approve", "--var", "image=img-2"]);
    assert!(out.contains("Apply complete: 0 to create, 1 to roll out"), "{out}");
    let s = status(d);
    let after = groups(&s, "spot");
    assert_eq!(after.len(), 1, "{s}");
    assert_ne!(after[0]["name"].as_str().unwrap(), before[0]);
    assert!(live_instances(after[0]).is_empty());
    assert!(ok(d, &["plan", ".", "--var", "image=img-2"]).contains("No changes."));
}
