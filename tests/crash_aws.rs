//! `kill -9` during apply against moto, at seeded crash points of a create and of a rollout of
//! `examples/aws`: running apply again converges, and nothing is orphaned: every group,
//! launch template and live instance carrying the lineage tag is one the state knows (or a
//! template kept for rollback), and destroy then leaves nothing with the tag. The seed is
//! `DRYDOCK_CRASH_SEED` (printed, so a failure can be replayed); `crash_sim.rs` covers every
//! crash point on the simulated cloud, this test samples them against the AWS provider.

mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use moto::{Moto, Network};
use serde_json::Value;

/// Crash points always reached: a create of the example passes about 45, a rollout about 70.
const CREATE_POINTS: u64 = 30;
const ROLLOUT_POINTS: u64 = 50;
const TRIALS: usize = 3;

fn seed() -> u64 {
    std::env::var("DRYDOCK_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_d0c6)
}

/// `n` distinct points in `1..=max` (`n` at most `max`), seeded.
fn points(seed: u64, n: usize, max: u64) -> Vec<u64> {
    let mut rng = drydock_testgen::Rng::new(seed);
    let mut out = BTreeSet::new();
    while out.len() < n.min(max as usize) {
        out.insert(1 + rng.next_u64() % max);
    }
    out.into_iter().collect()
}

fn run(m: &Moto, net: &Network, dir: &Path, args: &[&str], image: &str, kill_at: Option<u64>) -> std::process::Output {
    let mut env = net.vars(image);
    if let Some(k) = kill_at {
        env.push(("DRYDOCK_FAILPOINT_KILL_AT", k.to_string()));
    }
    m.drydock(dir, args, &env)
}

fn ok(m: &Moto, net: &Network, dir: &Path, args: &[&str], image: &str) -> String {
    let out = run(m, net, dir, args, image, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drydock {args:?}:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn killed(m: &Moto, net: &Network, dir: &Path, image: &str, at: u64) {
    let out = run(m, net, dir, &["apply", ".", "--auto-approve"], image, Some(at));
    assert_eq!(
        out.status.signal(),
        Some(9),
        "apply was not killed at crash point {at}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The lineage of the state `examples/aws` keeps in moto's S3.
fn lineage(m: &Moto) -> String {
    m.example_state()["lineage"].as_str().unwrap().to_string()
}

/// The groups (name → generation tag, member count, desired), templates (name → generation
/// tag) and live instances (id → group tag) carrying the lineage tag.
fn inventory(m: &Moto, lineage: &str) -> Value {
    m.py(&format!(
        "f = [{{'Name': 'tag:drydock:lineage', 'Values': [{lineage:?}]}}]\n\
         tag = lambda o, k: next((t['Value'] for t in o.get('Tags', []) if t['Key'] == k), None)\n\
         groups = {{g['AutoScalingGroupName']: [tag(g, 'drydock:generation'), len(g['Instances']), g['DesiredCapacity']]\n\
                   for g in asg.describe_auto_scaling_groups(Filters=f)['AutoScalingGroups']}}\n\
         tpls = {{t['LaunchTemplateName']: tag(t, 'drydock:generation') for t in ec2.describe_launch_templates(Filters=f, MaxResults=200)['LaunchTemplates']}}\n\
         live = [{{'Name': 'instance-state-name', 'Values': ['pending', 'running']}}]\n\
         inst = {{i['InstanceId']: tag(i, 'aws:autoscaling:groupName') for r in ec2.describe_instances(Filters=f + live)['Reservations'] for i in r['Instances']}}\n\
         out({{'groups': groups, 'templates': tpls, 'instances': inst}})"
    ))
}

/// The state's groups and their generations.
fn state_groups(m: &Moto) -> BTreeMap<String, String> {
    let state = m.example_state();
    assert_eq!(state["journal"], serde_json::json!([]), "a settled journal");
    let mut out = BTreeMap::new();
    for ng in state["clusters"]["cluster.prod"]["node_groups"].as_object().unwrap().values() {
        let gens = ng["generations"].as_array().unwrap();
        assert_eq!(gens.len(), 1, "one generation per node group: {ng}");
        for g in gens[0]["groups"].as_array().unwrap() {
            out.insert(g.as_str().unwrap().to_string(), gens[0]["id"].as_str().unwrap().to_string());
        }
    }
    out
}

/// After a converged apply: the cloud's groups are the state's, full and of its generations;
/// every live instance belongs to one of them; every template is of a current generation or
/// one of the `kept` old ones. Then destroy leaves nothing with the lineage tag.
fn converged_and_destroyable(m: &Moto, net: &Network, dir: &Path, image: &str, kept: &BTreeSet<String>, at: u64) {
    let plan = ok(m, net, dir, &["plan", "."], image);
    assert!(plan.contains("No changes."), "crash point {at}: a second plan has work left:\n{plan}");
    let lin = lineage(m);
    let inv = inventory(m, &lin);
    let state = state_groups(m);
    let groups = inv["groups"].as_object().unwrap();
    assert_eq!(groups.keys().cloned().collect::<BTreeSet<_>>(), state.keys().cloned().collect(), "crash point {at}");
    for (name, g) in groups {
        assert_eq!(g[0].as_str(), Some(state[name].as_str()), "crash point {at}: {name}");
        assert_eq!(g[1], g[2], "crash point {at}: {name} has its desired members");
    }
    for (id, group) in inv["instances"].as_object().unwrap() {
        assert!(group.as_str().is_some_and(|g| state.contains_key(g)), "crash point {at}: orphaned instance {id}");
    }
    let current: BTreeSet<&str> = state.values().map(String::as_str).collect();
    for (name, generation) in inv["templates"].as_object().unwrap() {
        let generation = generation.as_str().unwrap_or_default();
        assert!(
            current.contains(generation) || kept.contains(generation),
            "crash point {at}: orphaned launch template {name} (generation {generation})"
        );
    }
    ok(m, net, dir, &["destroy", ".", "--auto-approve"], image);
    let inv = inventory(m, &lin);
    for kind in ["groups", "templates", "instances"] {
        assert!(
            inv[kind].as_object().unwrap().is_empty(),
            "crash point {at}: {kind} left after destroy: {}",
            inv[kind]
        );
    }
}

#[test]
fn a_create_killed_at_any_point_converges_with_nothing_orphaned() {
    let m = Moto::start();
    let net = m.network();
    let at = points(seed(), TRIALS, CREATE_POINTS);
    println!("DRYDOCK_CRASH_SEED={} create crash points {at:?}", seed());
    for at in at {
        let dir = moto::aws_example();
        killed(&m, &net, dir.path(), &net.images[0], at);
        let out = ok(&m, &net, dir.path(), &["apply", ".", "--auto-approve"], &net.images[0]);
        assert!(out.contains("Apply complete"), "crash point {at}:\n{out}");
        converged_and_destroyable(&m, &net, dir.path(), &net.images[0], &BTreeSet::new(), at);
    }
}

#[test]
fn a_rollout_killed_at_any_point_converges_with_nothing_orphaned() {
    let m = Moto::start();
    let net = m.network();
    let at = points(seed() ^ 1, TRIALS, ROLLOUT_POINTS);
    println!("DRYDOCK_CRASH_SEED={} rollout crash points {at:?}", seed());
    for at in at {
        let dir = moto::aws_example();
        ok(&m, &net, dir.path(), &["apply", ".", "--auto-approve"], &net.images[0]);
        let old: BTreeSet<String> = state_groups(&m).into_values().collect();
        killed(&m, &net, dir.path(), &net.images[1], at);
        let out = ok(&m, &net, dir.path(), &["apply", ".", "--auto-approve"], &net.images[1]);
        assert!(out.contains("Apply complete"), "crash point {at}:\n{out}");
        // The old generations' templates are kept for a rollback by hand (one per node
        // group); anything else is an orphan.
        converged_and_destroyable(&m, &net, dir.path(), &net.images[1], &old, at);
    }
}

#[test]
fn crash_points_are_distinct_and_in_range() {
    let p = points(7, 5, 10);
    assert_eq!(p.len(), 5);
    assert!(p.iter().all(|x| (1..=10).contains(x)));
    assert_eq!(p, points(7, 5, 10), "the same seed gives the same points");
}
