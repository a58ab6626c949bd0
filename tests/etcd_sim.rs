//! Control planes that keep etcd whole, through the binary, against **real etcd**: the
//! simulated cloud runs a real etcd member for each control-plane instance (`etcd = true`),
//! joined as kubeadm joins one, and drydock manages membership through its `kubernetes.etcd`
//! block. Results are read from `sim status --json` (which lists the members as etcd itself
//! reports them) and `plan --format json`, never from drydock's wording. The etcd binary is
//! Debian's `etcd-server`, installed when missing (see `crates/etcd/tests/support/install.rs`).

mod common;

#[path = "../crates/etcd/tests/support/install.rs"]
mod install;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use common::machine::change;

const CP: &str = "cluster.demo.node_group.control-plane";
const TOKEN: &str = "abcdef.0123456789abcdef";
const HASH: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// A cluster with a 3-member kubeadm control plane (real etcd) and two workers.
fn config(cp_image: &str, token: &str, detection_delay: &str) -> String {
    format!(
        r#"
provider "sim" {{
  boot_time       = 2s
  join_delay      = 2s
  detection_delay = {detection_delay}
  etcd            = true
}}

variable "token" {{
  type      = string
  default   = "{token}"
  sensitive = true
}}

cluster "demo" {{
  kubernetes_version = "1.31"

  network {{
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }}

  kubernetes {{
    etcd {{}}
  }}

  bootstrap {{
    kind           = "kubeadm"
    endpoint       = "api.demo.internal:6443"
    token          = var.token
    ca_cert_hashes = ["{HASH}"]
  }}

  node_group "control-plane" {{
    role          = "control-plane"
    size          = 3
    image         = "{cp_image}"
    instance_type = "m6i.large"
    bootstrap {{
      certificate_key = "{KEY}"
    }}
  }}

  node_group "workers" {{
    size          = 2
    image         = "img-w-1"
    instance_type = "m6i.large"
  }}
}}
"#
    )
}

/// A working directory whose etcd members are stopped when it goes, a failing test included.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(kcl: &str) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.kcl"), kcl).unwrap();
        Dir { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn write(&self, kcl: &str) {
        std::fs::write(self.path().join("main.kcl"), kcl).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = drydock_sim::stop_all(self.path().join(".drydock").join("sim-world.json"));
    }
}

fn etcd() -> PathBuf {
    install::etcd_binary()
}

fn run(dir: &Path, args: &[&str], kill_at: Option<u64>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
    c.current_dir(dir).args(args).env("DRYDOCK_SIM_CLOCK", "virtual").env("NO_COLOR", "1").env("DRYDOCK_ETCD", etcd());
    if let Some(k) = kill_at {
        c.env("DRYDOCK_FAILPOINT_KILL_AT", k.to_string());
    }
    c.output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn sim_status(dir: &Path) -> Value {
    serde_json::from_str(&ok(dir, &["sim", "status", ".", "--json"])).unwrap()
}

/// The members etcd reports, for cluster `demo`.
fn members(s: &Value) -> Vec<&Value> {
    s["etcd"].as_array().map(|a| a.iter().filter(|m| m["cluster"] == "demo").collect()).unwrap_or_default()
}

/// Live control-plane instances (pending or running) by generation.
fn cp_instances(s: &Value) -> Vec<(String, String)> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == "control-plane")
        .flat_map(|g| {
            let gen = g["generation"].as_str().unwrap().to_string();
            g["instances"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["state"] == "pending" || i["state"] == "running")
                .map(move |i| (i["id"].as_str().unwrap().to_string(), gen.clone()))
        })
        .collect()
}

/// Exactly three members, all started, voting and healthy, each on a live control-plane
/// instance of generation `gen` (by the Node it is named after), none left of another.
fn whole(dir: &Path, gen: Option<&str>) {
    let s = sim_status(dir);
    let ms = members(&s);
    assert_eq!(ms.len(), 3, "three members: {:#}", s["etcd"]);
    let instances = cp_instances(&s);
    let nodes = s["nodes"].as_array().unwrap();
    for m in &ms {
        assert_eq!(m["started"], true, "{m}");
        assert_eq!(m["learner"], false, "{m}");
        assert_eq!(m["healthy"], true, "{m}");
        let node = nodes.iter().find(|n| n["name"] == m["name"]).unwrap_or_else(|| panic!("a Node for member {m}"));
        let id = node["instance"].as_str().unwrap();
        let (_, g) =
            instances.iter().find(|(i, _)| i == id).unwrap_or_else(|| panic!("member {m} is on a live instance"));
        if let Some(gen) = gen {
            assert_eq!(g, gen, "member {m} is on the new generation");
        }
    }
    assert_eq!(instances.len(), 3, "three control-plane instances: {instances:?}");
}

fn generation_of(plan: &Value, address: &str) -> String {
    change(plan, address)["generation"].as_str().unwrap().to_string()
}

#[test]
fn a_control_plane_rollout_keeps_quorum_and_leaves_exactly_its_new_members() {
    let d = Dir::new(&config("img-cp-1", TOKEN, "10s"));
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    whole(d.path(), None);
    let s = sim_status(d.path());

    // The plan shows, for each old member, the etcd member removed after its drain.
    d.write(&config("img-cp-2", TOKEN, "10s"));
    let plan: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
    let c = change(&plan, CP);
    let old: BTreeSet<String> = members(&s).iter().map(|m| m["name"].as_str().unwrap().to_string()).collect();
    let shown: BTreeSet<String> = c["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["drains"].as_array().unwrap().iter())
        .filter_map(|d| d["etcd"]["member"].as_str().map(str::to_string))
        .collect();
    assert_eq!(shown, old, "every old member's removal is in the plan: {:#}", c["waves"]);
    let gen = generation_of(&plan, CP);

    // Apply while sampling etcd: at least two healthy voting members at every moment.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (dir, stop) = (d.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let mut samples = vec![];
            while !stop.load(Ordering::SeqCst) {
                let s = sim_status(&dir);
                let healthy_voting =
                    members(&s).iter().filter(|m| m["healthy"] == true && m["learner"] == false).count();
                samples.push(healthy_voting);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            samples
        })
    };
    let out = run(d.path(), &["apply", ".", "--auto-approve"], None);
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(samples.len() >= 3, "sampled the rollout: {samples:?}");
    assert!(samples.iter().all(|&n| n >= 2), "quorum kept at every sample: {samples:?}");
    whole(d.path(), Some(&gen));
    let again: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
    assert!(again["changes"].as_array().unwrap().is_empty(), "converged: {:#}", again["changes"]);
}

#[test]
fn a_crashed_member_is_replaced_and_watch_removes_its_dead_member() {
    let d = Dir::new(&config("img-cp-1", TOKEN, "10s"));
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    whole(d.path(), None);
    let before = sim_status(d.path());
    let victim = cp_instances(&before)[0].0.clone();
    let victim_node = before["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["instance"] == victim.as_str())
        .map(|n| n["name"].as_str().unwrap().to_string())
        .unwrap();
    ok(d.path(), &["sim", "fail", ".", "--instance", &victim]);
    // The cloud notices, replaces the machine, and the new member joins.
    ok(d.path(), &["sim", "advance", ".", "5m"]);
    let s = sim_status(d.path());
    let ms = members(&s);
    assert_eq!(ms.len(), 4, "the dead member is still listed beside the new one: {:#}", s["etcd"]);
    let dead: Vec<&&Value> = ms.iter().filter(|m| m["healthy"] == false).collect();
    assert_eq!(dead.len(), 1, "{:#}", s["etcd"]);
    assert_eq!(dead[0]["name"], victim_node.as_str());

    let out = ok(d.path(), &["watch", ".", "--once", "--json"]);
    let events: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        events.iter().any(|e| e["event"] == "repaired" && e["message"].as_str().unwrap_or("").contains(&victim_node)),
        "watch removed the dead member: {events:#?}"
    );
    whole(d.path(), None);
}

#[test]
fn a_rollout_whose_etcd_preflight_fails_does_not_start() {
    // The cloud takes an hour to notice a dead machine: the member stays down meanwhile.
    let d = Dir::new(&config("img-cp-1", TOKEN, "1h"));
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = sim_status(d.path());
    let victim = cp_instances(&before)[1].0.clone();
    ok(d.path(), &["sim", "fail", ".", "--instance", &victim]);

    d.write(&config("img-cp-2", TOKEN, "1h"));
    let plan: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
    let warnings: Vec<&str> = plan["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert!(warnings.iter().any(|w| w.contains("etcd") && w.contains("not healthy")), "{warnings:?}");

    let out = run(d.path(), &["apply", ".", "--auto-approve"], None);
    assert!(!out.status.success(), "the apply fails");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("etcd preflight failed"), "{text}");
    // Nothing of the control plane changed: the same groups, no new generation.
    let after = sim_status(d.path());
    let names = |s: &Value| -> BTreeSet<String> {
        s["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["node_group"] == "control-plane")
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&before), names(&after));
    assert_eq!(members(&after).len(), 3);
}

#[test]
fn a_rotated_join_token_reaches_later_nodes_without_a_rollout() {
    let d = Dir::new(&config("img-cp-1", TOKEN, "10s"));
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let before = sim_status(d.path());
    let ids = |s: &Value| -> BTreeSet<String> {
        s["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()))
            .collect()
    };
    let rotated = "ghijkl.0123456789abcdef";
    d.write(&config("img-cp-1", rotated, "10s"));
    let plan: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
    let text = plan.to_string();
    assert!(!text.contains(rotated) && !text.contains(TOKEN), "no secret in the plan");
    for c in plan["changes"].as_array().unwrap() {
        assert_eq!(c["action"], "update", "in place, no rollout: {c:#}");
        assert!(c["after"]["bootstrap.join"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{c:#}");
        assert_eq!(c["nodes_replaced"], 0, "{c:#}");
    }
    assert!(!plan["changes"].as_array().unwrap().is_empty());
    ok(d.path(), &["apply", ".", "--auto-approve"]);
    let after = sim_status(d.path());
    assert_eq!(ids(&before), ids(&after), "no instance replaced");
    let versions: Vec<u64> = after["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["cluster"] == "demo")
        .map(|g| g["launch_version"].as_u64().unwrap())
        .collect();
    assert!(versions.iter().all(|&v| v == 2), "every group has a second launch version: {versions:?}");
    // A machine the cloud replaces later launches from it.
    let worker = after["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["node_group"] == "workers")
        .map(|g| g["instances"][0]["id"].as_str().unwrap().to_string())
        .unwrap();
    ok(d.path(), &["sim", "fail", ".", "--instance", &worker]);
    ok(d.path(), &["sim", "advance", ".", "5m"]);
    let later = sim_status(d.path());
    let fresh: Vec<&Value> = later["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == "workers")
        .flat_map(|g| g["instances"].as_array().unwrap().iter())
        .filter(|i| !ids(&after).contains(i["id"].as_str().unwrap()))
        .collect();
    assert!(!fresh.is_empty(), "the cloud replaced the worker");
    assert!(fresh.iter().all(|i| i["launch_version"] == 2), "{fresh:#?}");
    let again: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
    assert!(again["changes"].as_array().unwrap().is_empty(), "converged: {:#}", again["changes"]);
}

/// `kill -9` at every crash point of a control-plane rollout (between a member's removal and
/// its machine's termination among them), then apply again: three members, all started, on
/// the new generation, none of the old one.
#[test]
fn kill_dash_nine_anywhere_in_a_control_plane_rollout_converges() {
    let mut k: u64 = std::env::var("DRYDOCK_TEST_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut points = 0;
    loop {
        let d = Dir::new(&config("img-cp-1", TOKEN, "10s"));
        eprintln!("crash point {k}");
        ok(d.path(), &["apply", ".", "--auto-approve"]);
        d.write(&config("img-cp-2", TOKEN, "10s"));
        let planned: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
        let gen = generation_of(&planned, CP);
        let out = run(d.path(), &["apply", ".", "--auto-approve"], Some(k));
        if out.status.success() {
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "crash point {k}: killed, not failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ok(d.path(), &["apply", ".", "--auto-approve"]);
        let plan: Value = serde_json::from_str(&ok(d.path(), &["plan", ".", "--format", "json"])).unwrap();
        assert!(plan["changes"].as_array().unwrap().is_empty(), "crash point {k}: converged: {:#}", plan["changes"]);
        whole(d.path(), Some(&gen));
        points += 1;
        k += 1;
    }
    eprintln!("crash points in a control-plane rollout: {points}");
    assert!(points >= 10, "{points}");
}
