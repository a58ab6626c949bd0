//! End to end through the binary against moto (see `tests/moto`): `examples/aws` applied,
//! rolled out, resized, healed and destroyed, every result checked with describe calls (boto3),
//! not with drydock's own view. moto's limits shape the checks: its instances are healthy the
//! moment they launch and all land in a group's first subnet, and it has no instance refresh
//! (drydock does not use one).

mod common;
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::machine::{
    assert_no_changes, change, changes, checked_plan, ok_json, plan_with, removed, summary, Summary,
};
use moto::{Moto, Network};
use serde_json::{json, Value};

/// Runs drydock and insists it succeeds; returns stdout, then stderr (where notes such as
/// `plan --stats` go, stdout carrying the plan alone).
fn ok(m: &Moto, dir: &Path, args: &[&str], env: &[(&str, String)]) -> String {
    let out = m.drydock(dir, args, env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{stderr}");
    stdout + &stderr
}

/// The lineage of the state `examples/aws` keeps in moto's S3.
fn lineage(m: &Moto) -> String {
    m.example_state()["lineage"].as_str().unwrap().to_string()
}

/// Everything moto holds with the lineage tag: groups (with sizes, subnets, health settings,
/// tags, template and members), launch templates (with their data) and live instances.
fn inventory(m: &Moto, lineage: &str) -> Value {
    m.py(&format!(
        "lin = {lineage:?}\n\
         f = [{{'Name': 'tag:drydock:lineage', 'Values': [lin]}}]\n\
         groups = asg.describe_auto_scaling_groups(Filters=f)['AutoScalingGroups']\n\
         tpls = ec2.describe_launch_templates(Filters=f, MaxResults=200)['LaunchTemplates']\n\
         for t in tpls:\n\
         \x20   v = ec2.describe_launch_template_versions(LaunchTemplateId=t['LaunchTemplateId'])['LaunchTemplateVersions'][0]\n\
         \x20   t['Data'] = v['LaunchTemplateData']\n\
         \x20   t['UserDataText'] = base64.b64decode(v['LaunchTemplateData'].get('UserData', '')).decode()\n\
         live = ['pending', 'running']\n\
         inst = [i for r in ec2.describe_instances(Filters=f + [{{'Name': 'instance-state-name', 'Values': live}}])['Reservations'] for i in r['Instances']]\n\
         out({{'groups': groups, 'templates': tpls, 'instances': inst}})"
    ))
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v["Tags"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| (t["Key"].as_str().unwrap().to_string(), t["Value"].as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn groups_of<'a>(inv: &'a Value, node_group: &str) -> Vec<&'a Value> {
    inv["groups"].as_array().unwrap().iter().filter(|g| tags(g)["drydock:node-group"] == node_group).collect()
}

fn ids(v: &Value, key: &str) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect()
}

fn member_ids(g: &Value) -> BTreeSet<String> {
    ids(&g["Instances"], "InstanceId")
}

fn all_members(inv: &Value) -> BTreeSet<String> {
    inv["groups"].as_array().unwrap().iter().flat_map(member_ids).collect()
}

struct World {
    moto: Moto,
    net: Network,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let moto = Moto::start();
        let net = moto.network();
        World { moto, net, dir: moto::aws_example() }
    }

    fn image(&self, n: usize) -> &str {
        &self.net.images[n]
    }

    fn ok(&self, args: &[&str], image: usize) -> String {
        ok(&self.moto, self.dir.path(), args, &self.net.vars(self.image(image)))
    }

    /// `drydock plan ARGS --format json` (`args` is what follows `plan`; the run must
    /// succeed): the plan, and stderr (where `--stats` notes go).
    fn plan(&self, args: &[&str], image: usize) -> (Value, String) {
        plan_with(args, |args| self.moto.drydock(self.dir.path(), args, &self.net.vars(self.image(image))))
    }

    fn inventory(&self) -> Value {
        inventory(&self.moto, &lineage(&self.moto))
    }
}

#[test]
fn apply_creates_templates_groups_and_instances_as_configured() {
    let w = World::new();
    let (created, _) = w.plan(&["."], 0);
    assert_eq!(summary(&created), Summary { create: 5, ..Summary::default() }, "{created}");
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let lin = lineage(&w.moto);
    let inv = w.inventory();

    // Three single-instance control-plane members, one group per zone of workers, a spot pool.
    let cp = groups_of(&inv, "control-plane");
    assert_eq!(cp.len(), 3);
    for g in &cp {
        assert_eq!(
            (g["MinSize"].as_u64(), g["MaxSize"].as_u64(), g["DesiredCapacity"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(member_ids(g).len(), 1);
    }
    let cp_subnets: BTreeSet<&str> = cp.iter().map(|g| g["VPCZoneIdentifier"].as_str().unwrap()).collect();
    assert_eq!(cp_subnets.len(), 3, "members are spread over the zones: {cp_subnets:?}");
    for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1c"].iter().enumerate() {
        let g = groups_of(&inv, &format!("workers[\"{zone}\"]"));
        assert_eq!(g.len(), 1, "{zone}");
        let g = g[0];
        assert_eq!(
            (g["MinSize"].as_u64(), g["MaxSize"].as_u64(), g["DesiredCapacity"].as_u64()),
            (Some(2), Some(12), Some(2))
        );
        assert_eq!(g["VPCZoneIdentifier"], w.net.subnets[i].as_str());
        assert_eq!(member_ids(g).len(), 2);
    }
    let spot = groups_of(&inv, "spot");
    assert_eq!(spot.len(), 1);
    let spot = spot[0];
    assert_eq!(
        (spot["MinSize"].as_u64(), spot["MaxSize"].as_u64(), spot["DesiredCapacity"].as_u64()),
        (Some(0), Some(30), Some(0))
    );
    let policy = &spot["MixedInstancesPolicy"];
    let types: Vec<&str> = policy["LaunchTemplate"]["Overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["InstanceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge", "m5a.2xlarge"]);
    assert_eq!(policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"], 0);

    // Health settings and tags on every group, all propagated at launch.
    for g in inv["groups"].as_array().unwrap() {
        assert_eq!(g["HealthCheckType"], "EC2");
        assert_eq!(g["HealthCheckGracePeriod"], 120);
        let t = tags(g);
        assert_eq!(t["drydock:lineage"], lin);
        assert_eq!(t["drydock:cluster"], "prod");
        assert_eq!(t["kubernetes.io/cluster/prod"], "owned");
        assert_eq!(t["team"], "platform");
        assert!(t["drydock:generation"].len() == 10);
        let role = if t["drydock:node-group"] == "control-plane" { "control-plane" } else { "worker" };
        assert_eq!(t["drydock:role"], role, "{g}");
        assert!(g["Tags"].as_array().unwrap().iter().all(|t| t["PropagateAtLaunch"] == true), "{g}");
        assert!(
            g["AutoScalingGroupName"].as_str().unwrap().ends_with(&t["drydock:generation"])
                || g["AutoScalingGroupName"].as_str().unwrap().contains(&format!("{}-m", t["drydock:generation"]))
        );
    }

    // One launch template per generation, with the spec's data and the labels for the bootstrap.
    let templates = inv["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 5, "{:?}", ids(&inv["templates"], "LaunchTemplateName"));
    for t in templates {
        let d = &t["Data"];
        assert_eq!(d["ImageId"], w.image(0));
        assert_eq!(d["MetadataOptions"]["HttpTokens"], "required");
        assert_eq!(d["MetadataOptions"]["HttpPutResponseHopLimit"], 1);
        assert_eq!(d["SecurityGroupIds"][0], w.net.security_group.as_str());
        assert_eq!(d["IamInstanceProfile"]["Name"], "prod-node");
        let root = &d["BlockDeviceMappings"][0];
        assert_eq!(root["DeviceName"], "/dev/xvda");
        assert_eq!(root["Ebs"]["VolumeType"], "gp3");
        assert_eq!(root["Ebs"]["Encrypted"], true);
        assert_eq!(root["Ebs"]["Iops"], 4000);
        let ng = tags(t)["drydock:node-group"].clone();
        assert_eq!(root["Ebs"]["VolumeSize"], if ng == "control-plane" { 50 } else { 100 }, "{ng}");
        let text = t["UserDataText"].as_str().unwrap();
        assert!(text.starts_with("Content-Type: multipart/mixed"), "{text}");
        match ng.as_str() {
            "control-plane" => {
                assert_eq!(d["InstanceType"], "m6i.large");
                assert!(
                    text.contains("DRYDOCK_NODE_TAINTS='node-role.kubernetes.io/control-plane:NoSchedule'"),
                    "{text}"
                );
                // The generated bootstrap joins the control plane (examples/aws: kubeadm).
                assert!(text.contains("kubeadm join --config /etc/drydock/kubeadm-join.yaml"), "the join");
                assert!(text.contains("\"controlPlane\"") && text.contains("\"certificateKey\""), "a member");
                assert!(text.contains("JoinConfiguration"), "the join configuration");
            }
            "spot" => {
                assert!(d.get("InstanceType").is_none(), "the mixed instances policy names the types: {d}");
                assert!(text.contains("node.kubernetes.io/lifecycle=spot"), "{text}");
            }
            _ => {
                assert_eq!(d["InstanceType"], "m6i.xlarge");
                assert!(
                    text.contains(
                        "DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,topology.kubernetes.io/zone=us-east-1"
                    ),
                    "{text}"
                );
            }
        }
    }

    // Nine instances, each tagged like its group.
    let instances = inv["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 9);
    assert_eq!(ids(&inv["instances"], "InstanceId"), all_members(&inv));
    for i in instances {
        let t = tags(i);
        let group = inv["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["AutoScalingGroupName"] == t["aws:autoscaling:groupName"].as_str())
            .unwrap();
        assert_eq!(t["drydock:generation"], tags(group)["drydock:generation"]);
        assert_eq!(t["drydock:node-group"], tags(group)["drydock:node-group"]);
        assert_eq!(t["drydock:role"], tags(group)["drydock:role"]);
        assert_eq!(i["ImageId"], w.image(0));
    }

    // A second plan has nothing to do, and refreshing costs a handful of calls, which the
    // provider also reports as a tracing event: the groups and the instances, and no launch
    // template, since every group launches from its generation's own.
    let mut env = w.net.vars(w.image(0));
    env.push(("DRYDOCK_LOG", "info".into()));
    let out = w.moto.drydock(w.dir.path(), &["plan", ".", "--stats", "--format", "json"], &env);
    assert_no_changes(&checked_plan(ok_json(&out, "plan --stats")), "after the create");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(refreshed(&log), (5, 2), "{log}");
    let observed = event_fields(&log, "aws: observed");
    assert_eq!((observed["groups"].as_str(), observed["calls"].as_str()), ("7", "2"), "{log}");
}

/// The line `plan --stats` prints on stderr (it has no JSON form), `Refreshed N node groups
/// with M API calls in T s.`, as (N, M).
fn refreshed(stderr: &str) -> (u64, u64) {
    let line = stderr.lines().find_map(|l| l.strip_prefix("Refreshed ")).unwrap_or_else(|| panic!("{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let with = words.iter().position(|w| *w == "with").unwrap_or_else(|| panic!("{line}"));
    (words[0].parse().unwrap(), words[with + 1].parse().unwrap())
}

/// The `key=value` fields of the first tracing event on stderr (`DRYDOCK_LOG=info`) whose
/// message is `message`.
fn event_fields(stderr: &str, message: &str) -> BTreeMap<String, String> {
    let marker = format!(": {message} ");
    let fields = stderr.lines().find_map(|l| l.split_once(&marker)).unwrap_or_else(|| panic!("{stderr}")).1;
    fields.split_whitespace().filter_map(|f| f.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect()
}

/// `plan --stats` on the world's directory: the calls its refresh made.
fn refresh_calls(w: &World, image: usize) -> u64 {
    refreshed(&w.plan(&[".", "--stats"], image).1).1
}

#[test]
fn a_template_is_read_only_for_a_group_pointed_elsewhere_by_hand() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    assert_eq!(refresh_calls(&w, 0), 2);
    let inv = w.inventory();
    let cp_template = groups_of(&inv, "control-plane")[0]["LaunchTemplate"]["LaunchTemplateId"].clone();
    let worker = groups_of(&inv, "workers[\"us-east-1a\"]")[0]["AutoScalingGroupName"].clone();
    // A person points a worker group at the control plane's template.
    w.moto.py(&format!(
        "asg.update_auto_scaling_group(AutoScalingGroupName={worker}, \
         LaunchTemplate={{'LaunchTemplateId': {cp_template}, 'Version': '1'}})\nout(None)"
    ));
    // Its template is read (one call); the others still are not.
    assert_eq!(refresh_calls(&w, 0), 3);
    // So is a group that has no role tag (made before drydock tagged roles).
    let spot = groups_of(&inv, "spot")[0]["AutoScalingGroupName"].clone();
    w.moto.py(&format!(
        "asg.delete_tags(Tags=[{{'ResourceId': {spot}, 'ResourceType': 'auto-scaling-group', 'Key': 'drydock:role'}}])\nout(None)"
    ));
    assert_eq!(refresh_calls(&w, 0), 4);
}

#[test]
fn a_rollout_from_a_generation_the_state_does_not_record_shows_only_what_the_cloud_shows() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let pulled = w.moto.drydock(w.dir.path(), &["state", "pull", "."], &w.net.vars(w.image(0)));
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    std::fs::write(w.dir.path().join("first.json"), &pulled.stdout).unwrap();
    w.ok(&["apply", ".", "--auto-approve"], 1);
    // A state restored from before the last apply (pushed back over the newer one): it records
    // the first generation, the cloud runs the second, whose templates this refresh does not
    // read.
    w.ok(&["state", "push", "first.json", ".", "--force"], 1);
    let (plan, stats) = w.plan(&[".", "--stats"], 0);
    assert_eq!(summary(&plan).rollout, 5, "{plan}");
    assert_eq!(refreshed(&stats).1, 2, "{stats}");
    let changed = |path: &str| -> usize { changes(&plan).iter().filter(|c| c["before"].get(path).is_some()).count() };
    // Four node groups have instances, whose image shows; the spot pool has none.
    let image = changes(&plan)
        .iter()
        .filter(|c| (&c["before"]["image"], &c["after"]["image"]) == (&json!(w.image(1)), &json!(w.image(0))))
        .count();
    assert_eq!((changed("image"), image), (4, 4), "{plan}");
    assert_eq!(changed("generation"), 5, "{plan}");
    // The attributes a refresh that reads no template cannot know are not shown as changed.
    for c in changes(&plan) {
        let mut paths: Vec<&str> = c["replace_paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        for side in ["before", "after"] {
            paths.extend(c[side].as_object().unwrap().keys().map(String::as_str));
        }
        for unread in ["kubernetes_version", "user_data", "root_volume", "security_groups", "metadata", "labels"] {
            let nested = format!("{unread}.");
            assert!(
                !paths.iter().any(|p| *p == unread || p.starts_with(&nested)),
                "{unread} was not read, so it is not shown as changed: {c}"
            );
        }
    }
}

#[test]
fn removing_a_cluster_deletes_its_workers_before_its_control_plane() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let d = w.dir.path();
    std::fs::remove_file(d.join("outputs.kcl")).unwrap();
    // The provider and the state backend stay; the cluster goes.
    let main = std::fs::read_to_string(d.join("main.kcl")).unwrap();
    let start = main.find("backend \"s3\"").unwrap();
    let backend = &main[start..start + main[start..].find("\n}\n").unwrap() + 3];
    std::fs::write(d.join("main.kcl"), format!("provider \"aws\" {{\n  region = var.region\n}}\n\n{backend}")).unwrap();
    // The roles come from the groups' role tags: no template is read.
    let (plan, stats) = w.plan(&[".", "--stats"], 0);
    assert_eq!(refreshed(&stats).1, 2, "{stats}");
    assert_eq!(summary(&plan), Summary { delete: 5, ..Summary::default() }, "{plan}");
    assert_eq!(changes(&plan).len(), 5, "{plan}");
    for c in changes(&plan) {
        let address = c["address"].as_str().unwrap();
        let cp = address.ends_with("control-plane");
        assert_eq!(c["role"], if cp { "control-plane" } else { "worker" }, "{c}");
        let deps = c["depends_on"].as_array().unwrap().len();
        assert_eq!(deps, if cp { 4 } else { 0 }, "{c}");
    }
    w.ok(&["apply", ".", "--auto-approve"], 0);
    assert_eq!(ids(&w.inventory()["groups"], "AutoScalingGroupName"), BTreeSet::new());
}

#[test]
fn an_image_change_rolls_every_instance_onto_the_new_generation_in_waves() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let before = w.inventory();
    let old_instances = all_members(&before);
    let old_groups = ids(&before["groups"], "AutoScalingGroupName");
    assert_eq!(old_instances.len(), 9);

    // Saved, so that the plan checked here is the one applied.
    let (plan, _) = w.plan(&[".", "--out", "rollout.plan"], 1);
    assert_eq!(summary(&plan), Summary { rollout: 5, nodes_replaced: 9, ..Summary::default() }, "{plan}");
    let leaving: Vec<String> = changes(&plan).iter().flat_map(removed).collect();
    assert_eq!(leaving.len(), old_instances.len(), "each instance leaves in exactly one wave: {plan}");
    assert_eq!(leaving.into_iter().collect::<BTreeSet<String>>(), old_instances, "{plan}");
    // Waves of one node each: +1, then -1 once the new node is healthy.
    for (node_group, waves) in [("control-plane", 3), ("workers[\"us-east-1a\"]", 2)] {
        let c = change(&plan, &format!("cluster.prod.node_group.{node_group}"));
        let shape: Vec<(u64, usize)> = c["waves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["add"].as_u64().unwrap(),
                    w["remove_first"].as_array().unwrap().len() + w["remove_after"].as_array().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(shape, vec![(1, 1); waves], "{node_group}: {c}");
    }
    w.ok(&["apply", "rollout.plan"], 1);

    let after = w.inventory();
    let new_instances = all_members(&after);
    assert_eq!(new_instances.len(), 9);
    assert!(new_instances.is_disjoint(&old_instances), "every instance was replaced");
    assert!(ids(&after["groups"], "AutoScalingGroupName").is_disjoint(&old_groups), "the old groups are gone");
    assert_eq!(after["instances"].as_array().unwrap().len(), 9, "no old instance still runs");
    for i in after["instances"].as_array().unwrap() {
        assert_eq!(i["ImageId"], w.image(1));
    }
    // Every group launches from a template of the new image.
    let templates: BTreeMap<String, &Value> = after["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["LaunchTemplateId"].as_str().unwrap().to_string(), t))
        .collect();
    for g in after["groups"].as_array().unwrap() {
        let spec = g
            .get("LaunchTemplate")
            .unwrap_or(&g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]);
        let t = templates[spec["LaunchTemplateId"].as_str().unwrap_or_else(|| panic!("{g}"))];
        assert_eq!(t["Data"]["ImageId"], w.image(1));
        assert_eq!(tags(t)["drydock:generation"], tags(g)["drydock:generation"]);
    }
    // The previous generation's template is kept for a rollback by hand, one per node group.
    let mut per_node_group: BTreeMap<String, usize> = BTreeMap::new();
    for t in after["templates"].as_array().unwrap() {
        *per_node_group.entry(tags(t)["drydock:node-group"].clone()).or_default() += 1;
    }
    assert_eq!(per_node_group.len(), 5);
    assert!(per_node_group.values().all(|n| *n == 2), "{per_node_group:?}");
    assert_no_changes(&w.plan(&["."], 1).0, "after the rollout");
}

#[test]
fn a_size_change_is_made_in_place_without_replacing_an_instance() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let before = w.inventory();
    let (plan, _) = w.plan(&[".", "--var", "worker_size=3..15"], 0);
    assert_eq!(summary(&plan), Summary { update: 3, ..Summary::default() }, "{plan}");
    w.ok(&["apply", ".", "--auto-approve", "--var", "worker_size=3..15"], 0);
    let after = w.inventory();
    assert_eq!(ids(&after["groups"], "AutoScalingGroupName"), ids(&before["groups"], "AutoScalingGroupName"));
    assert!(all_members(&before).is_subset(&all_members(&after)), "no instance was replaced");
    for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        let g = groups_of(&after, &format!("workers[\"{zone}\"]"))[0];
        assert_eq!((g["MinSize"].as_u64(), g["MaxSize"].as_u64()), (Some(3), Some(15)));
        // The autoscaler owns desired inside the sizes: raised only to the new minimum.
        assert_eq!(g["DesiredCapacity"], 3);
        assert_eq!(member_ids(g).len(), 3);
    }
    assert_no_changes(&w.plan(&[".", "--var", "worker_size=3..15"], 0).0, "after the resize");
}

#[test]
fn an_instance_terminated_behind_drydocks_back_is_replaced_by_its_group() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let before = w.inventory();
    let group = groups_of(&before, "workers[\"us-east-1b\"]")[0];
    let victim = member_ids(group).into_iter().next().unwrap();
    w.moto.py(&format!("ec2.terminate_instances(InstanceIds=[{victim:?}])\nout(None)"));
    let after = w.inventory();
    let group = groups_of(&after, "workers[\"us-east-1b\"]")[0];
    let members = member_ids(group);
    assert_eq!(members.len(), 2, "{group}");
    assert!(!members.contains(&victim));
    assert_eq!(group["DesiredCapacity"], 2);
    assert_no_changes(&w.plan(&["."], 0).0, "a replaced instance is not drift");
}

#[test]
fn destroy_leaves_no_template_group_or_instance_of_the_lineage() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    w.ok(&["apply", ".", "--auto-approve"], 1);
    let lin = lineage(&w.moto);
    w.ok(&["destroy", ".", "--auto-approve"], 1);
    let inv = inventory(&w.moto, &lin);
    assert_eq!(ids(&inv["groups"], "AutoScalingGroupName"), BTreeSet::new());
    assert_eq!(ids(&inv["templates"], "LaunchTemplateName"), BTreeSet::new());
    assert_eq!(ids(&inv["instances"], "InstanceId"), BTreeSet::new());
}

#[test]
fn errors_say_what_failed_and_what_to_do() {
    // What the user reads is the point here: these errors have no code and no JSON form, so
    // their wording (what failed, and the hint) is checked, with the exit code.
    let w = World::new();
    let d = w.dir.path();
    let mut vars = w.net.vars("ami-0000000000000dead");
    let out = w.moto.drydock(d, &["apply", ".", "--auto-approve"], &vars);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("image ami-0000000000000dead does not exist in this region"), "{err}");
    assert!(err.contains("cluster.prod.node_group.control-plane: invalid input: group "), "{err}");

    vars = w.net.vars(w.image(0));
    vars[0].1 = r#"["subnet-0000000000000dead","subnet-0000000000000beef","subnet-0000000000000f00d"]"#.into();
    let out = w.moto.drydock(d, &["apply", ".", "--auto-approve"], &vars);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("CreateAutoScalingGroup: The subnet ID 'subnet-0000000000000dead' does not exist"), "{err}");
    assert!(err.contains("check the node group's subnets"), "{err}");

    // No credentials anywhere: the call is never sent, and the message says where to put them.
    let no_credentials = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(d)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d)
            .envs(
                w.moto.env().into_iter().filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET")),
            )
            .envs(w.net.vars(w.image(0)))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The state, in S3, is read first.
    let err = no_credentials(&["plan", "."]);
    assert!(err.contains("S3 GetObject of s3://acme-drydock-state/"), "{err}");
    assert!(err.contains("no AWS credentials were found: set AWS_PROFILE"), "{err}");
    // With the state in a local file, the provider's first call says it.
    let main = std::fs::read_to_string(d.join("main.kcl")).unwrap();
    let start = main.find("backend \"s3\"").unwrap();
    let end = start + main[start..].find("\n}\n").unwrap() + 3;
    std::fs::write(d.join("main.kcl"), format!("{}{}", &main[..start], &main[end..])).unwrap();
    let err = no_credentials(&["plan", ".", "--state", "local.json"]);
    assert!(err.contains("not authorised") && err.contains("no AWS credentials were found"), "{err}");
}
