//! End to end through the binary on the simulated cloud (virtual clock): create, a
//! rollout planned wave by wave and applied from a saved plan, the capacity floor and
//! ceiling checked against the cloud's own timeline, halts, and destroy.

mod common;

use common::machine::{
    assert_no_changes, change, groups_of as groups, live as live_instances, plan, removed, state_file, status, summary,
    timeline, Summary,
};
use common::{dd, ok, quickstart, WORKERS};

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

#[test]
fn create_roll_out_and_destroy() {
    let dir = quickstart();
    let d = dir.path();
    let created = plan(d, &["."]);
    assert_eq!(summary(&created), Summary { create: 2, ..Summary::default() }, "{created}");
    let out = ok(d, &["apply", ".", "--auto-approve"]);
    // The output refers to names known only after apply: the workers' group, named
    // LINEAGE6-CLUSTER-NODEGROUP-GENERATION.
    let state = state_file(d);
    let names = state["outputs"]["worker_groups"]["value"].as_array().unwrap();
    assert_eq!(names.len(), 1);
    let group = names[0].as_str().unwrap();
    let lineage = state["lineage"].as_str().unwrap();
    let generation = &state["clusters"]["cluster.demo"]["node_groups"][WORKERS]["generations"][0]["id"];
    assert_eq!(group, format!("{}-demo-workers-{}", &lineage[..6], generation.as_str().unwrap()));
    // Rendering: apply shows the user the outputs it recorded.
    assert!(out.contains(&format!("worker_groups = [\"{group}\"]")), "{out}");
    let s = status(d);
    assert_eq!(groups(&s, "control-plane").len(), 3, "one group per control-plane member");
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["name"], group, "the output names the group in the cloud");
    let old_ids: Vec<String> =
        live_instances(workers[0]).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(old_ids.len(), 4, "desired = 4 is pinned");
    assert!(live_instances(workers[0]).iter().all(|i| i["healthy"] == true && i["image"] == "img-worker-2026-11"));
    assert_no_changes(&plan(d, &["."]), "after the create");

    // The plan names every old instance in its waves, with the floor and ceiling.
    let rollout = plan(d, &[".", "--var", "worker_image=img-2026-12", "--out", "rollout.plan"]);
    assert_eq!(summary(&rollout), Summary { rollout: 1, nodes_replaced: 4, ..Summary::default() }, "{rollout}");
    let c = change(&rollout, WORKERS);
    assert_eq!((&c["action"], &c["nodes_replaced"]), (&json!("rollout"), &json!(4)), "{c}");
    assert_eq!((&c["before"]["image"], &c["after"]["image"]), (&json!("img-worker-2026-11"), &json!("img-2026-12")));
    assert_eq!(c["replace_paths"], json!(["image"]), "the image forces the replacement: {c}");
    let mut gone = removed(c);
    gone.sort();
    let mut expected = old_ids.clone();
    expected.sort();
    assert_eq!(gone, expected, "every old instance is removed in exactly one wave: {c}");
    let waves = c["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 4, "{c}");
    for w in waves {
        assert_eq!((&w["add"], &w["floor"], &w["ceiling"]), (&json!(1), &json!(4), &json!(5)), "{w}");
    }
    let shown = ok(d, &["show", "rollout.plan", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap(), rollout, "show renders the saved plan as plan did");

    let t0 = status(d)["now_ms"].as_u64().unwrap();
    ok(d, &["apply", "rollout.plan"]);
    let s = status(d);
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1, "the old generation's group is gone");
    let new = live_instances(workers[0]);
    assert_eq!(new.len(), 4);
    assert!(new.iter().all(|i| i["image"] == "img-2026-12" && i["healthy"] == true));
    assert!(new.iter().all(|i| !old_ids.contains(&i["id"].as_str().unwrap().to_string())));

    // The cloud's own record: during the rollout, never fewer than 4 healthy or more than 5 nodes.
    let points = timeline(d);
    let during: Vec<&Value> =
        points.iter().filter(|p| p["node_group"] == "workers" && p["t_ms"].as_u64().unwrap() >= t0).collect();
    assert!(during.len() >= 8, "the timeline records the rollout: {during:?}");
    for p in &during {
        assert!(p["healthy"].as_u64().unwrap() >= 4, "below the floor: {p}");
        assert!(p["total"].as_u64().unwrap() <= 5, "above the ceiling: {p}");
    }
    assert_no_changes(&plan(d, &[".", "--var", "worker_image=img-2026-12"]), "after the rollout");

    ok(d, &["destroy", ".", "--auto-approve"]);
    assert!(status(d)["groups"].as_array().unwrap().is_empty(), "nothing left in the cloud");
    let state = state_file(d);
    assert_eq!(state["clusters"], json!({}), "nothing left in the state");
    assert_eq!(state["journal"], json!([]));
    assert_eq!(state["outputs"], json!({}));
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
    // The secret appears nowhere in what apply printed or in the state file, whatever the field.
    assert!(!out.contains(secret), "apply printed the secret:\n{out}");
    // Rendering: the user sees that the output exists, not its value.
    assert!(out.contains("token = (sensitive)"), "{out}");
    let text = std::fs::read_to_string(d.join("drydock.state.json")).unwrap();
    assert!(!text.contains(secret), "the state holds the secret:\n{text}");
    let token = &state_file(d)["outputs"]["token"];
    assert_eq!(token["sensitive"], true, "{token}");
    let digest = token["value"].as_str().and_then(|v| v.strip_prefix("(sensitive: sha256 ")?.strip_suffix(')'));
    assert!(
        digest.is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit())),
        "a digest stands in for it: {token}"
    );
}

#[test]
fn a_saved_plan_is_refused_once_the_state_moved() {
    let dir = quickstart();
    let d = dir.path();
    // Each refusal exits 1 and changes nothing. These errors have no code and no JSON form:
    // which check refused is the message, the hint the user must see to make a new plan.
    let refused = |planfile: &str, says: &str| {
        let (state, cloud) = (state_file(d), status(d));
        let out = dd(d, &["apply", planfile]);
        assert_eq!(out.status.code(), Some(1), "{planfile}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{planfile}: {err}");
        assert_eq!((state_file(d), status(d)), (state, cloud), "{planfile}: nothing was applied");
    };
    ok(d, &["plan", ".", "--out", "first.plan"]);
    ok(d, &["apply", ".", "--auto-approve"]);
    refused("first.plan", "made before a state existed");

    ok(d, &["plan", ".", "--var", "worker_image=img-3", "--out", "second.plan"]);
    ok(d, &["apply", ".", "--var", "worker_image=img-4", "--auto-approve"]);
    refused("second.plan", "the saved plan is stale");

    ok(d, &["plan", ".", "--out", "third.plan"]);
    std::fs::write(d.join("extra.kcl"), "locals {\n  x = 1\n}\n").unwrap();
    refused("third.plan", "the configuration changed");
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
        // The error has no code or JSON form; its point is the hint the user must see.
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
    // No code or JSON form: the hint the user must see is the message.
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
        kcl.replacen("boot_time  = 2s", "boot_time  = 2s\n  bad_images = [\"img-bad\"]", 1),
    )
    .unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    let t0 = status(d)["now_ms"].as_u64().unwrap();
    let out = dd(d, &["apply", ".", "--var", "worker_image=img-bad", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    // Rendering: the halt report is printed once (not on stdout and again on stderr).
    let both = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(both.matches("rollout halted").count(), 1, "the error is reported once:\n{both}");
    // Why it halted: the new generation's node runs but fails its health check, and apply
    // waited the whole health_timeout (10m) for it.
    let s = status(d);
    assert!(s["now_ms"].as_u64().unwrap() - t0 >= 600_000, "apply waited out the health timeout: {s}");
    let workers = groups(&s, "workers");
    let bad: Vec<&Value> = workers.iter().flat_map(|g| live_instances(g)).filter(|i| i["image"] == "img-bad").collect();
    assert!(!bad.is_empty() && bad.iter().all(|i| i["state"] == "running" && i["healthy"] == false), "{s}");
    let bad_group = workers.iter().find(|g| live_instances(g).iter().any(|i| i["image"] == "img-bad")).unwrap();
    let old: Vec<&Value> = workers
        .iter()
        .flat_map(|g| live_instances(g))
        .filter(|i| i["image"] == "img-worker-2026-11" && i["healthy"] == true)
        .collect();
    assert_eq!(old.len(), 4, "no old node was removed");
    // Rolling back to the good image removes the bad generation.
    let back = plan(d, &["."]);
    let c = change(&back, WORKERS);
    assert_eq!((&c["action"], &c["retire"]), (&json!("rollout"), &json!([bad_group["name"]])), "{back}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = status(d);
    let workers = groups(&s, "workers");
    assert_eq!(workers.len(), 1);
    assert!(live_instances(workers[0]).iter().all(|i| i["image"] == "img-worker-2026-11" && i["healthy"] == true));
    assert_no_changes(&plan(d, &["."]), "after the rollback");
}

#[test]
fn no_phantom_rollouts() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let original = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let no_changes = |why: &str| assert_no_changes(&plan(d, &["."]), why);

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
    let unpinning = plan(d, &["."]);
    assert_eq!(summary(&unpinning), Summary { update: 1, ..Summary::default() }, "{unpinning}");
    let c = change(&unpinning, WORKERS);
    assert_eq!((&c["action"], &c["nodes_replaced"]), (&json!("update"), &json!(0)), "unpinning is in place: {c}");
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
    state_file(d)["lineage"].as_str().unwrap().to_string()
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
    let resize = plan(d, &["."]);
    assert_eq!(summary(&resize), Summary { update: 1, ..Summary::default() }, "{resize}");
    let c = change(&resize, WORKERS);
    assert_eq!((&c["action"], &c["nodes_replaced"]), (&json!("update"), &json!(0)), "{c}");
    ok(d, &["apply", ".", "--auto-approve"]);
    let s = status(d);
    let g = groups(&s, "workers")[0];
    assert_eq!((g["min"].as_u64(), g["max"].as_u64(), g["desired"].as_u64()), (Some(2), Some(12), Some(5)));
    let after = ids(&s);
    assert!(before.iter().all(|id| after.contains(id)), "no node was replaced: {before:?} -> {after:?}");
    assert_no_changes(&plan(d, &["."]), "after the resize");
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
    // The hint the user must see: run apply again (the exit code says it was interrupted).
    assert!(stdout.contains("Interrupted. The state records everything done so far"), "{stdout}");
    assert_eq!(state_file(d)["journal"], json!([]), "calls in flight were settled");
    let rest = plan(d, &[".", "--var", "worker_image=img-2"]);
    assert_eq!(change(&rest, WORKERS)["action"], "rollout", "the rest of the rollout is planned: {rest}");
    ok(d, &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]);
    assert_no_changes(&plan(d, &[".", "--var", "worker_image=img-2"]), "after the rerun");
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
    let rollout = plan(d, &[".", "--var", "image=img-2"]);
    assert_eq!(summary(&rollout), Summary { rollout: 1, ..Summary::default() }, "{rollout}");
    assert_eq!(change(&rollout, "cluster.demo.node_group.spot")["action"], "rollout", "{rollout}");
    ok(d, &["apply", ".", "--auto-approve", "--var", "image=img-2"]);
    let s = status(d);
    let after = groups(&s, "spot");
    assert_eq!(after.len(), 1, "{s}");
    assert_ne!(after[0]["name"].as_str().unwrap(), before[0]);
    assert!(live_instances(after[0]).is_empty());
    assert_no_changes(&plan(d, &[".", "--var", "image=img-2"]), "after the rollout");
}
