//! Self-healing on moto (see `tests/moto`): `drydock watch` through the binary on
//! `examples/aws`, against what a person with console access does behind drydock's back —
//! an instance marked Unhealthy (which moto's groups, unlike AWS's, never replace), a group
//! force-deleted, sizes changed — every result checked with boto3 describe calls, not with
//! drydock's own view.
//!
//! moto runs on the wall clock (the AWS provider's clock), so `watch --interval 1s` really
//! waits a second between rounds; the configuration's `health.unhealthy_timeout` is cut to
//! 2s so that a few rounds are past it.

mod common;
mod moto;

use std::collections::BTreeSet;

use common::machine::{has_event, ok_json_lines};
use moto::{Moto, Network};
use serde_json::Value;

struct World {
    moto: Moto,
    net: Network,
    dir: tempfile::TempDir,
}

impl World {
    /// `examples/aws` applied on a fresh moto, with a 2s unhealthy timeout.
    fn applied() -> World {
        let moto = Moto::start();
        let net = moto.network();
        let dir = moto::aws_example();
        let main = dir.path().join("main.kcl");
        let kcl = std::fs::read_to_string(&main).unwrap();
        assert_eq!(kcl.matches("unhealthy_timeout = 5m").count(), 1, "examples/aws sets unhealthy_timeout once");
        std::fs::write(&main, kcl.replace("unhealthy_timeout = 5m", "unhealthy_timeout = 2s")).unwrap();
        let w = World { moto, net, dir };
        w.ok(&["apply", ".", "--auto-approve"]);
        w
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.moto.drydock(self.dir.path(), args, &self.net.vars(&self.net.images[0]));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    /// `drydock watch --json` with these arguments: its events.
    fn watch(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["watch", ".", "--json"];
        args.extend_from_slice(extra);
        ok_json_lines(&self.moto.drydock(self.dir.path(), &args, &self.net.vars(&self.net.images[0])), "drydock watch")
    }

    /// `plan --detailed-exitcode`: 0 when nothing is left to do.
    fn plan_code(&self) -> Option<i32> {
        self.moto
            .drydock(self.dir.path(), &["plan", ".", "--detailed-exitcode"], &self.net.vars(&self.net.images[0]))
            .status
            .code()
    }

    /// The lineage's groups as Auto Scaling describes them.
    fn groups(&self) -> Vec<Value> {
        let lineage = lineage(&self.moto);
        let v = self.moto.py(&format!(
            "f = [{{'Name': 'tag:drydock:lineage', 'Values': [{lineage:?}]}}]\n\
             out(asg.describe_auto_scaling_groups(Filters=f)['AutoScalingGroups'])"
        ));
        v.as_array().unwrap().clone()
    }

    /// The groups of one node group.
    fn node_group(&self, node_group: &str) -> Vec<Value> {
        self.groups().into_iter().filter(|g| tag(g, "drydock:node-group") == node_group).collect()
    }

    /// The one group of a node group (for a control plane: its first member).
    fn group(&self, node_group: &str) -> Value {
        let mut gs = self.node_group(node_group);
        gs.sort_by_key(|g| g["AutoScalingGroupName"].as_str().unwrap().to_string());
        gs.into_iter().next().unwrap_or_else(|| panic!("no group of {node_group}"))
    }

    /// `asg.<call>(…)` through boto3.
    fn asg(&self, call: &str) {
        self.moto.py(&format!("asg.{call}\nout(None)"));
    }
}

/// The lineage of the state `examples/aws` keeps in moto's S3.
fn lineage(m: &Moto) -> String {
    m.example_state()["lineage"].as_str().unwrap().to_string()
}

fn tag(g: &Value, key: &str) -> String {
    g["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Key"] == key)
        .map_or(String::new(), |t| t["Value"].as_str().unwrap().to_string())
}

fn name(g: &Value) -> String {
    g["AutoScalingGroupName"].as_str().unwrap().to_string()
}

fn sizes(g: &Value) -> (u64, u64, u64) {
    (g["MinSize"].as_u64().unwrap(), g["MaxSize"].as_u64().unwrap(), g["DesiredCapacity"].as_u64().unwrap())
}

/// Members as (id, health status).
fn members(g: &Value) -> Vec<(String, String)> {
    g["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["InstanceId"].as_str().unwrap().to_string(), i["HealthStatus"].as_str().unwrap().to_string()))
        .collect()
}

fn in_service_healthy(g: &Value) -> usize {
    g["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["LifecycleState"] == "InService" && i["HealthStatus"] == "Healthy")
        .count()
}

/// The address of a node group of `examples/aws`.
fn address(node_group: &str) -> String {
    format!("cluster.prod.node_group.{node_group}")
}

#[test]
fn an_instance_marked_unhealthy_is_replaced_by_watch_within_the_safety_rules() {
    // (node group, members marked unhealthy, replaced?). The example allows one unhealthy
    // node per group (`max_unhealthy = 1`): a control-plane member goes (2 of 3 stay healthy:
    // quorum), so does one of a zone's 2 workers; both of a zone's workers at once is more
    // than 1, so the storm guard holds and nothing is replaced.
    let cases =
        [("control-plane", 1, true), ("workers[\"us-east-1b\"]", 1, true), ("workers[\"us-east-1c\"]", 2, false)];
    for (node_group, marked, replaced) in cases {
        let at = address(node_group);
        let w = World::applied();
        let before = w.group(node_group);
        let group = name(&before);
        let victims: Vec<String> = members(&before).into_iter().take(marked).map(|(id, _)| id).collect();
        for victim in &victims {
            w.asg(&format!("set_instance_health(InstanceId={victim:?}, HealthStatus='Unhealthy')"));
        }
        // moto keeps them: Unhealthy members that their group never replaces.
        let g = w.group(node_group);
        for victim in &victims {
            assert!(members(&g).contains(&(victim.clone(), "Unhealthy".into())), "{g}");
        }
        let victim = &victims[0];

        // A round only sees it (unhealthy since now); rounds a second apart pass the 2s timeout.
        let first = w.watch(&["--once"]);
        assert!(has_event(&first, "detected", &at, &format!("instances.{victim} = healthy -> unhealthy")), "{first:?}");
        assert!(!first.iter().any(|e| e["event"] == "repaired"), "not yet past the timeout: {first:?}");
        let events = w.watch(&["--interval", "1s", "--rounds", "5"]);

        let after = w.group(node_group);
        assert_eq!(name(&after), group);
        assert_eq!(sizes(&after), sizes(&before), "{node_group}: the sizes are untouched");
        let ids: BTreeSet<String> = members(&after).into_iter().map(|(id, _)| id).collect();
        if replaced {
            let why = format!("replaced {victim} (unhealthy too long)");
            assert!(has_event(&events, "repaired", &at, &why), "{node_group}: {events:?}");
            assert!(!ids.contains(victim), "{node_group}: {victim} is gone: {after}");
            assert_eq!(in_service_healthy(&after), sizes(&before).2 as usize, "{after}");
            let state = w.moto.py(&format!(
                "r = ec2.describe_instances(InstanceIds=[{victim:?}])['Reservations']\n\
                 out(r[0]['Instances'][0]['State']['Name'])"
            ));
            assert_eq!(state, "terminated", "{victim}");
            // Replaced once: no other member of the node group was touched.
            let replaced_events = events.iter().filter(|e| e["event"] == "repaired").count();
            assert_eq!(replaced_events, 1, "{events:?}");
        } else {
            let guard = "storm guard: 2 of 2 nodes unhealthy, more than max_unhealthy (1)";
            assert!(has_event(&events, "skipped", &at, guard), "{node_group}: {events:?}");
            assert!(!events.iter().any(|e| e["event"] == "repaired"), "{events:?}");
            for victim in &victims {
                assert!(ids.contains(victim), "{node_group}: the storm guard kept {victim}");
            }
            assert_eq!(members(&after), members(&g));
        }
    }
}

#[test]
fn a_group_deleted_behind_drydocks_back_is_recreated_by_watch() {
    for node_group in ["workers[\"us-east-1a\"]", "control-plane"] {
        let w = World::applied();
        let before = w.group(node_group);
        let group = name(&before);
        let template = before["LaunchTemplate"]["LaunchTemplateId"].as_str().unwrap().to_string();
        w.asg(&format!("delete_auto_scaling_group(AutoScalingGroupName={group:?}, ForceDelete=True)"));
        assert!(w.groups().iter().all(|g| name(g) != group), "{group} was deleted");

        let events = w.watch(&["--once"]);
        let at = address(node_group);
        let missing = format!("groups.{group} = exists -> missing (deleted outside drydock)");
        assert!(has_event(&events, "detected", &at, &missing), "{events:?}");
        assert!(has_event(&events, "repaired", &at, "restored to the applied state"), "{events:?}");

        let after = w.groups().into_iter().find(|g| name(g) == group).unwrap_or_else(|| panic!("{group} is back"));
        assert_eq!(sizes(&after), sizes(&before));
        assert_eq!(after["VPCZoneIdentifier"], before["VPCZoneIdentifier"]);
        assert_eq!(after["HealthCheckGracePeriod"], before["HealthCheckGracePeriod"]);
        assert_eq!(after["LaunchTemplate"]["LaunchTemplateId"], template.as_str(), "the generation's own template");
        for key in ["drydock:lineage", "drydock:generation", "drydock:role", "team"] {
            assert_eq!(tag(&after, key), tag(&before, key), "{key}");
        }
        assert_eq!(in_service_healthy(&after), sizes(&before).2 as usize, "{after}");
        let old: BTreeSet<String> = members(&before).into_iter().map(|(id, _)| id).collect();
        assert!(members(&after).iter().all(|(id, _)| !old.contains(id)), "new instances");
        assert_eq!(w.plan_code(), Some(0), "nothing left to repair");
    }
}

#[test]
fn sizes_changed_by_hand_are_restored_by_watch() {
    // (node group, sizes set by hand, sizes watch restores, a drift event): the workers' size
    // is 2..12 with desired left to the autoscaler, so a desired inside it stays.
    type Sizes = (u64, u64, u64);
    let cases: [(&str, Sizes, Sizes, &str); 3] = [
        ("workers[\"us-east-1c\"]", (0, 1, 1), (2, 12, 2), "min = 2 -> 0"),
        ("workers[\"us-east-1c\"]", (1, 20, 5), (2, 12, 5), "max = 12 -> 20"),
        ("control-plane", (0, 0, 0), (1, 1, 1), "max = 1 -> 0"),
    ];
    for (node_group, by_hand, restored, drift) in cases {
        let w = World::applied();
        let group = name(&w.group(node_group));
        let (min, max, desired) = by_hand;
        w.asg(&format!(
            "update_auto_scaling_group(AutoScalingGroupName={group:?}, MinSize={min}, MaxSize={max}, DesiredCapacity={desired})"
        ));
        let g = w.groups().into_iter().find(|g| name(g) == group).unwrap();
        assert_eq!(sizes(&g), by_hand);
        assert_eq!(members(&g).len() as u64, desired, "moto scaled the group: {g}");

        let events = w.watch(&["--once"]);
        let at = address(node_group);
        assert!(has_event(&events, "detected", &at, drift), "{node_group} {by_hand:?}: {events:?}");
        assert!(has_event(&events, "repaired", &at, "restored to the applied state"), "{events:?}");
        let g = w.groups().into_iter().find(|g| name(g) == group).unwrap();
        assert_eq!(sizes(&g), restored, "{node_group} {by_hand:?}");
        assert_eq!(in_service_healthy(&g) as u64, restored.2, "{g}");
        assert_eq!(w.plan_code(), Some(0), "nothing left to repair");
    }
}
