//! End to end through the binary against moto (see `tests/moto`): `examples/aws` applied,
//! rolled out, resized, healed and destroyed, every result checked with describe calls (boto3),
//! not with drydock's own view. moto's limits shape the checks: its instances are healthy the
//! moment they launch and all land in a group's first subnet, and it has no instance refresh
//! (drydock does not use one).

mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use moto::{Moto, Network};
use serde_json::Value;

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

    fn inventory(&self) -> Value {
        inventory(&self.moto, &lineage(&self.moto))
    }
}

#[test]
fn apply_creates_templates_groups_and_instances_as_configured() {
    let w = World::new();
    let out = w.ok(&["apply", ".", "--auto-approve"], 0);
    assert!(out.contains("Apply complete: 5 to create"), "{out}");
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
                assert!(text.contains("kubeadm init"), "{text}");
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
    let out = w.moto.drydock(w.dir.path(), &["plan", ".", "--stats"], &env);
    let (plan, log) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(plan.contains("No changes."), "{plan}");
    assert!(log.contains("Refreshed 5 node groups with 2 API calls in"), "{log}");
    assert!(log.contains("aws: observed") && log.contains("groups=7") && log.contains("calls=2"), "{log}");
}

/// `plan --stats` on the world's directory: the calls its refresh made.
fn refresh_calls(w: &World, image: usize) -> u64 {
    let out = w.ok(&["plan", ".", "--stats"], image);
    let line = out.lines().find(|l| l.starts_with("Refreshed ")).unwrap_or_else(|| panic!("{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[words.iter().position(|w| *w == "with").unwrap() + 1].parse().unwrap()
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
    let plan = w.ok(&["plan", ".", "--stats"], 0);
    assert!(plan.contains("5 to roll out"), "{plan}");
    assert!(plan.contains("with 2 API calls"), "{plan}");
    let image = format!("image = \"{}\" -> \"{}\"", w.image(1), w.image(0));
    // Four node groups have instances, whose image shows; the spot pool has none.
    assert_eq!(plan.matches(&image).count(), 4, "{plan}");
    assert_eq!(plan.matches("~ generation = ").count(), 5, "{plan}");
    for unread in ["kubernetes_version", "user_data", "root_volume", "security_groups", "metadata", "labels"] {
        assert!(!plan.contains(unread), "{unread} was not read, so it is not shown as changed:\n{plan}");
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
    let out = w.moto.drydock(d, &["plan", ".", "--format", "json", "--stats"], &w.net.vars(w.image(0)));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("with 2 API calls"));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = plan["changes"].as_array().unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(changes.len(), 5, "{plan}");
    for c in changes {
        let address = c["address"].as_str().unwrap();
        let cp = address.ends_with("control-plane");
        assert_eq!(c["role"], if cp { "control-plane" } else { "worker" }, "{c}");
        let deps = c["depends_on"].as_array().unwrap().len();
        assert_eq!(deps, if cp { 4 } else { 0 }, "{c}");
    }
    let out = w.ok(&["apply", ".", "--auto-approve"], 0);
    assert!(out.contains("5 to destroy"), "{out}");
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

    let plan = w.ok(&["plan", "."], 1);
    assert!(plan.contains("5 to roll out (9 nodes replaced)"), "{plan}");
    for id in &old_instances {
        assert_eq!(plan.matches(id.as_str()).count(), 1, "{id} leaves in exactly one wave:\n{plan}");
    }
    let out = w.ok(&["apply", ".", "--auto-approve"], 1);
    for wave in ["control-plane: wave 3/3: +1 -1", "workers[\"us-east-1a\"]: wave 2/2: +1 -1"] {
        assert!(out.contains(wave), "{wave}:\n{out}");
    }
    assert!(out.contains("Apply complete: 0 to create, 5 to roll out (9 nodes replaced)"), "{out}");

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
    assert!(w.ok(&["plan", "."], 1).contains("No changes."));
}

#[test]
fn a_size_change_is_made_in_place_without_replacing_an_instance() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    let before = w.inventory();
    let plan = w.ok(&["plan", ".", "--var", "worker_size=3..15"], 0);
    assert!(plan.contains("0 to roll out (0 nodes replaced), 3 to update in place"), "{plan}");
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
    assert!(w.ok(&["plan", ".", "--var", "worker_size=3..15"], 0).contains("No changes."));
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
    assert!(w.ok(&["plan", "."], 0).contains("No changes."), "a replaced instance is not drift");
}

#[test]
fn destroy_leaves_no_template_group_or_instance_of_the_lineage() {
    let w = World::new();
    w.ok(&["apply", ".", "--auto-approve"], 0);
    w.ok(&["apply", ".", "--auto-approve"], 1);
    let lin = lineage(&w.moto);
    let out = w.ok(&["destroy", ".", "--auto-approve"], 1);
    assert!(out.contains("Destroy complete"), "{out}");
    let inv = inventory(&w.moto, &lin);
    assert_eq!(ids(&inv["groups"], "AutoScalingGroupName"), BTreeSet::new());
    assert_eq!(ids(&inv["templates"], "LaunchTemplateName"), BTreeSet::new());
    assert_eq!(ids(&inv["instances"], "InstanceId"), BTreeSet::new());
}

#[test]
fn errors_say_what_failed_and_what_to_do() {
    let w = World::new();
    let d = w.dir.path();
    let mut vars = w.net.vars("ami-0000000000000dead");
    let out = w.moto.drydock(d, &["apply", ".", "--auto-approve"], &vars);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("image ami-0000000000000dead does not exist in this region"), "{err}");
    assert!(err.contains("cluster.prod.node_group.control-plane: invalid input: group "), "{err}");

    vars = w.net.vars(w.image(0));
    vars[0].1 = r#"["subnet-0000000000000dead","subnet-0000000000000beef","subnet-0000000000000f00d"]"#.into();
    let out = w.moto.drydock(d, &["apply", ".", "--auto-approve"], &vars);
    let err = String::from_utf8_lossy(&out.stderr);
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
        assert!(!out.status.success());
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
