//! End-to-end tests of the simulated cloud through the `Provider` trait and the `drydock sim`
//! functions, on the virtual clock (no test waits on the wall clock).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drydock_provider::{
    Clock, CreateGroup, ErrorKind, GenerationSpec, GroupSettings, HealthCheck, Instance, InstanceState, ObservedGroup,
    Ownership, Provider,
};
use drydock_sim::{
    fail, restore_zone, schedule_fail, status, timeline, CapacityPoint, ClockMode, FailTarget, SimConfig, SimError,
    SimProvider, TIMELINE_LIMIT,
};

const LINEAGE: &str = "lin-1";
const ABC: [&str; 3] = ["subnet-a", "subnet-b", "subnet-c"];

struct Sim {
    _dir: tempfile::TempDir,
    path: PathBuf,
    provider: SimProvider,
    clock: Arc<dyn Clock>,
}

impl Sim {
    fn new(config: SimConfig) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        // A nested path: the provider must create the directories.
        let path = dir.path().join(".drydock").join("sim-world.json");
        let provider = SimProvider::new(&path, config, ClockMode::Virtual);
        let clock = provider.clock();
        Sim { _dir: dir, path, provider, clock }
    }

    async fn group(&self, name: &str) -> ObservedGroup {
        let observed = self.provider.observe(LINEAGE).await.unwrap();
        observed.group(name).unwrap_or_else(|| panic!("no group {name}")).clone()
    }

    async fn create(&self, name: &str, desired: u32, subnets: &[&str]) -> ObservedGroup {
        let req = request(name, LINEAGE, "ami-1", settings(desired, subnets));
        self.provider.create_group(&req).await.unwrap()
    }

    /// The capacity points of the node group `web` of cluster `prod`.
    fn web_timeline(&self) -> Vec<CapacityPoint> {
        timeline(&self.path).unwrap().into_iter().filter(|p| p.cluster == "prod" && p.node_group == "web").collect()
    }
}

fn config() -> SimConfig {
    SimConfig { seed: 7, ..SimConfig::default() }
}

fn ownership(lineage: &str, generation: &str) -> Ownership {
    Ownership {
        lineage: lineage.into(),
        cluster: "prod".into(),
        node_group: "web".into(),
        generation: generation.into(),
    }
}

fn settings(desired: u32, subnets: &[&str]) -> GroupSettings {
    GroupSettings {
        min: 0,
        max: 10,
        desired,
        subnets: subnets.iter().map(|s| s.to_string()).collect(),
        ..GroupSettings::default()
    }
}

fn request(name: &str, lineage: &str, image: &str, settings: GroupSettings) -> CreateGroup {
    CreateGroup {
        name: name.into(),
        ownership: ownership(lineage, name),
        spec: GenerationSpec {
            image: image.into(),
            instance_types: vec!["m5.large".into(), "m5a.large".into()],
            kubernetes_version: "1.31".into(),
            ..GenerationSpec::default()
        },
        settings,
        join: None,
    }
}

fn ids(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

fn live(group: &ObservedGroup) -> Vec<&Instance> {
    group.instances.iter().filter(|i| i.is_live()).collect()
}

fn zones<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> BTreeMap<String, usize> {
    let mut zones = BTreeMap::new();
    for i in instances {
        *zones.entry(i.zone.clone()).or_default() += 1;
    }
    zones
}

#[tokio::test]
async fn a_new_group_boots_and_spreads_over_zones() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 3, &ABC).await;
    assert_eq!(created.instances.len(), 3);
    for i in &created.instances {
        assert_eq!(i.state, InstanceState::Pending);
        assert!(!i.healthy);
        assert_eq!(i.launched_at_ms, 0);
        assert_eq!(i.instance_type, "m5.large");
        assert_eq!(i.image, "ami-1");
        assert_eq!(i.zone, i.subnet.replace("subnet-", "zone-"));
    }
    assert_eq!(zones(&created.instances).into_keys().collect::<Vec<_>>(), ["zone-a", "zone-b", "zone-c"]);

    sim.clock.sleep(1_999).await;
    assert_eq!(sim.clock.now_ms(), 1_999);
    assert!(sim.group("web-g1").await.instances.iter().all(|i| i.state == InstanceState::Pending));

    sim.clock.sleep(1).await;
    let group = sim.group("web-g1").await;
    assert_eq!(ids(&group.instances), ids(&created.instances));
    for i in &group.instances {
        assert_eq!(i.state, InstanceState::Running);
        assert!(i.healthy);
        assert_eq!(i.healthy_at_ms, Some(2_000));
    }
    let stats = sim.provider.stats();
    assert_eq!(stats.get("create_group"), 1);
    assert_eq!(stats.get("observe"), 2);
    assert_eq!(stats.total(), 3);
}

#[tokio::test]
async fn terminating_without_decrement_replaces_the_instance() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 3, &ABC).await;
    sim.clock.sleep(2_000).await;
    let victim = created.instances[0].clone();

    sim.provider.terminate_instances("web-g1", std::slice::from_ref(&victim.id), false).await.unwrap();
    let group = sim.group("web-g1").await;
    assert_eq!(group.settings.desired, 3);
    let gone = group.instances.iter().find(|i| i.id == victim.id).unwrap();
    assert_eq!(gone.state, InstanceState::ShuttingDown);
    let replacement = group.instances.iter().find(|i| !ids(&created.instances).contains(&i.id)).expect("a replacement");
    assert_eq!(replacement.state, InstanceState::Pending);
    assert_eq!(replacement.zone, victim.zone, "the zones stay balanced");
    assert_eq!(live(&group).len(), 3);

    // A retry of the same request changes nothing.
    sim.provider.terminate_instances("web-g1", std::slice::from_ref(&victim.id), false).await.unwrap();
    assert_eq!(sim.group("web-g1").await.instances.len(), 4);

    sim.clock.sleep(2_000).await;
    let group = sim.group("web-g1").await;
    assert_eq!(group.instances.len(), 3, "the terminated instance is dropped");
    assert_eq!(group.in_service(), 3);
    assert!(group.instances.iter().all(|i| i.id != victim.id));
}

#[tokio::test]
async fn terminating_with_decrement_lowers_desired_once() {
    let sim = Sim::new(config());
    let mut settings = settings(3, &ABC);
    settings.min = 1;
    let created = sim.provider.create_group(&request("web-g1", LINEAGE, "ami-1", settings)).await.unwrap();
    sim.clock.sleep(2_000).await;
    let [first, second, third] = &ids(&created.instances)[..] else {
        panic!("three instances");
    };

    for _ in 0..2 {
        sim.provider.terminate_instances("web-g1", std::slice::from_ref(first), true).await.unwrap();
        let group = sim.group("web-g1").await;
        assert_eq!(group.settings.desired, 2);
        assert_eq!(live(&group).len(), 2);
        assert!(group.instances.iter().all(|i| i.state != InstanceState::Pending));
    }

    let err = sim.provider.terminate_instances("web-g1", &[second.clone(), third.clone()], true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(err.group.as_deref(), Some("web-g1"));
    assert!(err.to_string().contains("below the minimum 1"), "{err}");
    assert_eq!(live(&sim.group("web-g1").await).len(), 2, "nothing was done");

    // Instances already gone, or never known, are not an error.
    sim.clock.sleep(5_000).await;
    sim.provider.terminate_instances("web-g1", &[first.clone(), "i-00000000000000000".into()], true).await.unwrap();
    assert_eq!(sim.group("web-g1").await.settings.desired, 2);
}

#[tokio::test]
async fn a_crashed_instance_is_replaced_after_the_detection_delay() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 3, &ABC).await;
    sim.clock.sleep(2_000).await;
    let victim = created.instances[1].id.clone();

    let crashed = fail(&sim.path, FailTarget::Instance(victim.clone())).unwrap();
    assert_eq!(crashed, std::slice::from_ref(&victim));
    let group = sim.group("web-g1").await;
    let i = group.instances.iter().find(|i| i.id == victim).unwrap();
    assert_eq!((i.state, i.healthy), (InstanceState::Running, false));
    assert_eq!(group.instances.len(), 3);

    sim.clock.sleep(9_999).await;
    let group = sim.group("web-g1").await;
    assert_eq!(group.instances.len(), 3, "not yet noticed");
    assert_eq!(group.in_service(), 2);

    sim.clock.sleep(1).await;
    let group = sim.group("web-g1").await;
    let i = group.instances.iter().find(|i| i.id == victim).unwrap();
    assert_eq!(i.state, InstanceState::ShuttingDown);
    assert_eq!(live(&group).len(), 3, "a replacement is pending");

    sim.clock.sleep(2_000).await;
    let group = sim.group("web-g1").await;
    assert_eq!(group.in_service(), 3);

    // Healthy, running and pending-or-running over time: the dip lasts from the crash until
    // the replacement has booted.
    let points: Vec<(u64, u32, u32, u32)> =
        sim.web_timeline().iter().map(|p| (p.t_ms, p.healthy, p.running, p.total)).collect();
    assert_eq!(points, [(0, 0, 0, 3), (2_000, 3, 3, 3), (2_000, 2, 3, 3), (12_000, 2, 2, 3), (14_000, 3, 3, 3),]);
}

#[tokio::test]
async fn bad_image_instances_never_become_healthy_and_ec2_groups_keep_them() {
    let sim = Sim::new(SimConfig { bad_images: vec!["ami-bad".into()], ..config() });
    let created = sim.provider.create_group(&request("web-g2", LINEAGE, "ami-bad", settings(2, &ABC))).await.unwrap();
    sim.clock.sleep(100_000).await;
    let group = sim.group("web-g2").await;
    assert_eq!(ids(&group.instances), ids(&created.instances), "not replaced");
    for i in &group.instances {
        assert_eq!((i.state, i.healthy), (InstanceState::Running, false));
        assert_eq!(i.healthy_at_ms, None);
    }
    let points = sim.web_timeline();
    assert!(points.iter().all(|p| p.healthy == 0), "{points:?}");
    assert_eq!(points.last().unwrap().running, 2);
}

#[tokio::test]
async fn elb_groups_replace_instances_that_never_become_healthy() {
    let sim = Sim::new(SimConfig { bad_images: vec!["ami-bad".into()], ..config() });
    let mut settings = settings(1, &ABC);
    settings.health_check = HealthCheck::Elb;
    settings.grace_period_ms = 30_000;
    let created = sim.provider.create_group(&request("web-g2", LINEAGE, "ami-bad", settings)).await.unwrap();
    // Booted at 2 s, unhealthy since; detection would act at 12 s, but the grace period
    // holds it off until 30 s.
    sim.clock.sleep(29_999).await;
    assert_eq!(ids(&sim.group("web-g2").await.instances), ids(&created.instances));
    sim.clock.sleep(1).await;
    let group = sim.group("web-g2").await;
    assert_eq!(group.instances.len(), 2);
    assert_eq!(group.instances[0].state, InstanceState::ShuttingDown);
    assert_eq!(group.instances[1].state, InstanceState::Pending);
}

#[tokio::test]
async fn a_zone_failure_strands_replacements_until_the_zone_is_restored() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 3, &ABC).await;
    sim.clock.sleep(2_000).await;
    let in_a = created.instances.iter().find(|i| i.zone == "zone-a").unwrap();

    let crashed = fail(&sim.path, FailTarget::Zone("zone-a".into())).unwrap();
    assert_eq!(crashed, std::slice::from_ref(&in_a.id));
    sim.clock.sleep(10_000).await;
    let group = sim.group("web-g1").await;
    let replacement = group.instances.iter().find(|i| i.state == InstanceState::Pending).expect("a replacement");
    assert_eq!(replacement.zone, "zone-a");

    sim.clock.sleep(600_000).await;
    let group = sim.group("web-g1").await;
    let stuck = group.instances.iter().find(|i| i.id == replacement.id).unwrap();
    assert_eq!(stuck.state, InstanceState::Pending, "stranded in a down zone");
    assert_eq!(group.in_service(), 2);
    assert_eq!(live(&group).len(), 3);

    assert!(restore_zone(&sim.path, "zone-a").unwrap());
    assert!(!restore_zone(&sim.path, "zone-a").unwrap(), "already up");
    sim.clock.sleep(1_999).await;
    assert_eq!(sim.group("web-g1").await.in_service(), 2);
    sim.clock.sleep(1).await;
    let group = sim.group("web-g1").await;
    assert_eq!(group.in_service(), 3);
    assert!(group.instances.iter().any(|i| i.id == replacement.id));
}

#[tokio::test]
async fn a_scheduled_failure_happens_when_the_world_lives_through_its_moment() {
    let sim = Sim::new(config());
    sim.create("web-g1", 2, &ABC).await;
    let web = || FailTarget::NodeGroup { cluster: None, node_group: "web".into(), count: 1 };
    // Due while the instances still boot (nothing running to crash: it does nothing), at
    // 3.5s, and twice at 5s (the second finds the one left), in any order of scheduling.
    assert_eq!(schedule_fail(&sim.path, web(), 5_000).unwrap(), 5_000);
    assert_eq!(schedule_fail(&sim.path, web(), 1_000).unwrap(), 1_000);
    assert_eq!(schedule_fail(&sim.path, web(), 3_500).unwrap(), 3_500);
    assert_eq!(schedule_fail(&sim.path, web(), 5_000).unwrap(), 5_000);
    // One sleep over all of them: each happens at its own moment, not when someone looks.
    sim.clock.sleep(6_000).await;
    let points: Vec<(u64, u32, u32, u32)> =
        sim.web_timeline().iter().map(|p| (p.t_ms, p.healthy, p.running, p.total)).collect();
    assert_eq!(points, [(0, 0, 0, 2), (2_000, 2, 2, 2), (3_500, 1, 2, 2), (5_000, 0, 2, 2)]);
    // Done with: nothing more happens to them.
    assert!(fail(&sim.path, web()).is_err(), "no running healthy instance left to fail");
    sim.clock.sleep(100_000).await;
    let group = sim.group("web-g1").await;
    assert_eq!(group.in_service(), 2, "both replaced by the group");
}

#[tokio::test]
async fn failing_a_node_group_crashes_that_many_running_instances() {
    let sim = Sim::new(config());
    sim.create("web-g1", 4, &ABC).await;
    let err =
        fail(&sim.path, FailTarget::NodeGroup { cluster: Some("prod".into()), node_group: "web".into(), count: 2 })
            .unwrap_err();
    assert!(matches!(err, SimError::NothingToFail(ref n) if n == "prod/web"), "{err}");

    sim.clock.sleep(2_000).await;
    let crashed = fail(&sim.path, FailTarget::NodeGroup { cluster: None, node_group: "web".into(), count: 2 }).unwrap();
    assert_eq!(crashed.len(), 2);
    assert_eq!(crashed.iter().collect::<BTreeSet<_>>().len(), 2);
    let group = sim.group("web-g1").await;
    assert_eq!(group.in_service(), 2);
    for i in &group.instances {
        assert_eq!(i.healthy, !crashed.contains(&i.id));
    }

    let err = fail(&sim.path, FailTarget::Instance("i-00000000000000000".into())).unwrap_err();
    assert!(matches!(err, SimError::NoSuchInstance(_)), "{err}");
    assert!(fail(
        &sim.path,
        FailTarget::NodeGroup { cluster: Some("staging".into()), node_group: "web".into(), count: 1 },
    )
    .is_err());
}

#[tokio::test]
async fn create_group_is_idempotent_and_guards_its_name() {
    let sim = Sim::new(config());
    let first = sim.create("web-g1", 3, &ABC).await;
    let second = sim.create("web-g1", 3, &ABC).await;
    assert_eq!(first, second);
    let observed = sim.provider.observe(LINEAGE).await.unwrap();
    assert_eq!(observed.groups.len(), 1);
    assert_eq!(observed.groups[0].instances.len(), 3);

    let mut other = request("web-g1", LINEAGE, "ami-1", settings(3, &ABC));
    other.ownership.generation = "web-g0".into();
    let err = sim.provider.create_group(&other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert_eq!(err.group.as_deref(), Some("web-g1"));
    assert!(!err.is_retryable());

    let too_many = request("web-g2", LINEAGE, "ami-1", settings(11, &ABC));
    let err = sim.provider.create_group(&too_many).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);

    let mut stolen = request("web-g3", LINEAGE, "ami-1", settings(1, &ABC));
    stolen.settings.tags.insert("drydock:lineage".into(), "someone-else".into());
    let err = sim.provider.create_group(&stolen).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("drydock:lineage"), "{err}");

    // Repeating the ownership tags is harmless, and the tags come back as given.
    let mut tagged = request("web-g4", LINEAGE, "ami-1", settings(1, &ABC));
    tagged.settings.tags = tagged.ownership.tags();
    tagged.settings.tags.insert("team".into(), "payments".into());
    let created = sim.provider.create_group(&tagged).await.unwrap();
    assert_eq!(created.settings, tagged.settings);
    assert_eq!(sim.provider.stats().get("create_group"), 6);
}

#[tokio::test]
async fn observe_filters_by_lineage_and_sorts_by_name() {
    let sim = Sim::new(config());
    for (name, lineage) in [("b-2", "lin-1"), ("c-3", "lin-2"), ("a-1", "lin-1")] {
        sim.provider.create_group(&request(name, lineage, "ami-1", settings(1, &ABC))).await.unwrap();
    }
    let names = |o: drydock_provider::Observed| -> Vec<String> { o.groups.into_iter().map(|g| g.name).collect() };
    assert_eq!(names(sim.provider.observe("lin-1").await.unwrap()), ["a-1", "b-2"]);
    assert_eq!(names(sim.provider.observe("lin-2").await.unwrap()), ["c-3"]);
    assert!(names(sim.provider.observe("lin-3").await.unwrap()).is_empty());
    let a1 = sim.provider.observe("lin-1").await.unwrap().groups[0].clone();
    assert_eq!(a1.ownership, ownership("lin-1", "a-1"));
    assert_eq!(sim.provider.stats().get("observe"), 4);
}

#[tokio::test]
async fn delete_removes_the_group_and_its_instances() {
    let sim = Sim::new(config());
    sim.create("web-g1", 2, &ABC).await;
    sim.clock.sleep(2_000).await;
    sim.provider.delete_group("web-g1").await.unwrap();
    assert!(sim.provider.observe(LINEAGE).await.unwrap().groups.is_empty());
    assert!(status(&sim.path).unwrap().groups.is_empty());
    sim.provider.delete_group("web-g1").await.unwrap();

    let last = sim.web_timeline().pop().unwrap();
    assert_eq!((last.t_ms, last.healthy, last.total), (2_000, 0, 0));

    let err = sim.provider.update_group("web-g1", &settings(1, &ABC)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = sim.provider.terminate_instances("web-g1", &[], false).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(sim.provider.stats().get("delete_group"), 2);
}

#[tokio::test]
async fn update_group_scales_out_and_in_keeping_zones_balanced() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 2, &ABC).await;
    sim.clock.sleep(2_000).await;
    sim.provider.update_group("web-g1", &settings(6, &ABC)).await.unwrap();
    let group = sim.group("web-g1").await;
    assert_eq!(group.settings.desired, 6);
    assert_eq!(zones(live(&group)).into_values().collect::<Vec<_>>(), [2, 2, 2]);

    sim.clock.sleep(2_000).await;
    sim.provider.update_group("web-g1", &settings(3, &ABC)).await.unwrap();
    let group = sim.group("web-g1").await;
    assert_eq!(zones(live(&group)).into_values().collect::<Vec<_>>(), [1, 1, 1]);
    for old in ids(&created.instances) {
        let i = group.instances.iter().find(|i| i.id == old).unwrap();
        assert_eq!(i.state, InstanceState::ShuttingDown, "the oldest go first");
    }

    let err = sim.provider.update_group("web-g1", &settings(3, &[])).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn random_failures_are_seeded_and_replaced() {
    let sim = Sim::new(SimConfig { failure_rate: 1.0, ..config() });
    let created = sim.create("web-g1", 3, &ABC).await;
    // Every instance crashes within a minute of becoming healthy and is replaced ten seconds
    // later; the replacements crash too, so the group churns but keeps its size.
    sim.clock.sleep(2_000 + 60_000 + 10_000).await;
    let group = sim.group("web-g1").await;
    assert_eq!(live(&group).len(), 3);
    for old in ids(&created.instances) {
        assert!(
            group.instances.iter().all(|i| i.id != old || i.state == InstanceState::ShuttingDown),
            "{old} was not replaced"
        );
    }
    let points = sim.web_timeline();
    assert!(points.iter().any(|p| p.healthy < 3 && p.t_ms > 2_000));
}

#[tokio::test]
async fn the_timeline_keeps_only_the_latest_points() {
    // A group that churns as fast as it can: a bad image behind an ELB check, replaced 1 ms
    // after it boots.
    let sim = Sim::new(SimConfig {
        boot_time_ms: 1,
        detection_delay_ms: 1,
        shutdown_time_ms: 1,
        bad_images: vec!["ami-bad".into()],
        ..config()
    });
    let mut settings = settings(1, &ABC);
    settings.health_check = HealthCheck::Elb;
    sim.provider.create_group(&request("web-g1", LINEAGE, "ami-bad", settings)).await.unwrap();
    sim.clock.sleep(20_000).await;
    let points = timeline(&sim.path).unwrap();
    assert_eq!(points.len(), TIMELINE_LIMIT);
    assert!(points.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    assert!(points[0].t_ms > 0, "the oldest points were dropped");
    assert!(points.last().unwrap().t_ms > 19_000);
}

#[tokio::test]
async fn a_corrupt_world_is_an_error_not_a_panic() {
    let sim = Sim::new(config());
    std::fs::create_dir_all(sim.path.parent().unwrap()).unwrap();
    std::fs::write(&sim.path, "{\"version\": 1, \"groups\": [").unwrap();
    let err = status(&sim.path).unwrap_err();
    assert!(matches!(err, SimError::Corrupt { .. }), "{err}");
    assert!(err.to_string().starts_with("the sim world "), "{err}");
    let err = sim.provider.observe(LINEAGE).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Other);
    assert_eq!(std::fs::read_to_string(&sim.path).unwrap(), "{\"version\": 1, \"groups\": [", "left as it was");

    std::fs::write(&sim.path, r#"{"version": 99, "something": "else"}"#).unwrap();
    let err = status(&sim.path).unwrap_err();
    assert!(matches!(err, SimError::UnsupportedVersion { found: 99, .. }), "{err}");
}

#[tokio::test]
async fn status_serialises_in_the_documented_shape() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 1, &["subnet-a"]).await;
    sim.clock.sleep(2_000).await;
    sim.provider.terminate_instances("web-g1", &ids(&created.instances), false).await.unwrap();
    let json = serde_json::to_value(status(&sim.path).unwrap()).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let mut expected = vec!["now_ms", "groups", "nodes", "pods", "violations", "etcd"];
    expected.sort();
    assert_eq!(keys(&json), expected);
    assert_eq!(json["now_ms"], 2_000);
    let group = &json["groups"][0];
    let mut expected = vec![
        "cluster",
        "node_group",
        "generation",
        "name",
        "min",
        "max",
        "desired",
        "launch_version",
        "join_digest",
        "instances",
    ];
    expected.sort();
    assert_eq!(keys(group), expected);
    assert_eq!(group["cluster"], "prod");
    assert_eq!(group["generation"], "web-g1");
    let instances = group["instances"].as_array().unwrap();
    let mut expected =
        vec!["id", "zone", "image", "instance_type", "state", "healthy", "launched_at_ms", "launch_version"];
    expected.sort();
    assert_eq!(keys(&instances[0]), expected);
    let states: Vec<&str> = instances.iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["shutting-down", "pending"]);
    assert_eq!(instances[1]["zone"], "zone-a");
}

#[tokio::test]
async fn a_virtual_world_moves_to_the_wall_clock_intact() {
    let sim = Sim::new(config());
    let created = sim.create("web-g1", 2, &ABC).await;
    sim.clock.sleep(5_000).await;

    let before = drydock_provider::SystemClock::wall_ms();
    let real = SimProvider::new(&sim.path, config(), ClockMode::Real);
    let group = real.observe(LINEAGE).await.unwrap().group("web-g1").unwrap().clone();
    assert_eq!(ids(&group.instances), ids(&created.instances));
    assert_eq!(group.in_service(), 2);
    let launched = group.instances[0].launched_at_ms;
    assert!(
        launched + 5_000 >= before && launched < before + 60_000,
        "launched at {launched}, wall clock was {before}"
    );
    assert!(status(&sim.path).unwrap().now_ms >= before);
    assert_eq!(real.clock().now_ms() / 1_000_000, before / 1_000_000);
}

#[tokio::test]
async fn a_real_world_launches_at_wall_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.json");
    let provider = SimProvider::new(&path, SimConfig { boot_time_ms: 3_600_000, ..config() }, ClockMode::Real);
    let before = drydock_provider::SystemClock::wall_ms();
    let created = provider.create_group(&request("web-g1", LINEAGE, "ami-1", settings(1, &ABC))).await.unwrap();
    let i = &created.instances[0];
    assert_eq!(i.state, InstanceState::Pending);
    assert!(i.launched_at_ms >= before && i.launched_at_ms < before + 60_000);
    assert_eq!(provider.kind(), "sim");
}

/// Runs a fixed scenario on a fresh world and returns the world file and the status.
async fn scenario(seed: u64) -> (Vec<u8>, String) {
    let sim = Sim::new(SimConfig { seed, failure_rate: 0.5, ..config() });
    let created = sim.create("web-g1", 4, &ABC).await;
    sim.clock.sleep(3_000).await;
    fail(&sim.path, FailTarget::NodeGroup { cluster: None, node_group: "web".into(), count: 1 }).unwrap();
    for _ in 0..5 {
        sim.clock.sleep(10_000).await;
    }
    sim.provider.terminate_instances("web-g1", &[created.instances[3].id.clone()], true).await.unwrap();
    sim.provider.create_group(&request("web-g2", LINEAGE, "ami-2", settings(2, &ABC))).await.unwrap();
    sim.clock.sleep(30_000).await;
    let status = serde_json::to_string(&status(&sim.path).unwrap()).unwrap();
    (std::fs::read(&sim.path).unwrap(), status)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_world() {
    let (world_a, status_a) = scenario(11).await;
    let (world_b, status_b) = scenario(11).await;
    assert_eq!(status_a, status_b);
    assert!(world_a == world_b, "the world files differ");
    let (_, status_c) = scenario(12).await;
    assert_ne!(status_a, status_c, "another seed, other ids");
}

#[test]
fn concurrent_users_never_corrupt_the_world() {
    // Four users of one world, each with its own provider (its own file handles, as separate
    // processes would have), interleaving changes and virtual sleeps. A lost update would lose
    // time or a group's last size.
    const THREADS: u32 = 4;
    const OPS: u32 = 50;
    const TICK: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("sim-world.json");
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    let provider = SimProvider::new(&path, config(), ClockMode::Virtual);
                    let clock = provider.clock();
                    let name = format!("g-{t}");
                    let req = request(&name, LINEAGE, "ami-1", settings(1, &ABC));
                    provider.create_group(&req).await.unwrap();
                    let mut sleeps = 0;
                    for k in 1..OPS {
                        if k % 2 == 0 {
                            clock.sleep(TICK).await;
                            sleeps += 1;
                        } else if k % 5 == 0 {
                            status(&path).unwrap();
                        } else {
                            provider.update_group(&name, &settings(k % 4, &ABC)).await.unwrap();
                        }
                    }
                    (sleeps, provider.stats())
                })
            })
        })
        .collect();
    let mut sleeps = 0;
    for worker in workers {
        let (slept, stats) = worker.join().unwrap();
        sleeps += slept;
        assert_eq!(stats.get("create_group"), 1);
        assert_eq!(stats.get("update_group"), 20);
    }
    assert_eq!(sleeps, THREADS as u64 * 24);

    // A snapshot and the log appended after it.
    assert!(std::fs::read(&path).unwrap().starts_with(b"S "), "the world file starts with its snapshot");
    let world = status(&path).unwrap();
    assert_eq!(world.now_ms, sleeps * TICK, "no sleep was lost");
    assert_eq!(world.groups.len(), THREADS as usize);
    for group in &world.groups {
        // The last update of every thread (k = 49) set desired to 49 % 4.
        assert_eq!(group.desired, 1, "{}", group.name);
        let live = group.instances.iter().filter(|i| i.state != InstanceState::ShuttingDown).count();
        assert_eq!(live, 1, "{}", group.name);
    }
    let temps: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(temps.is_empty(), "no temporary file is left behind: {temps:?}");
    assert!(Path::new(&format!("{}.lock", path.display())).exists());
}

/// The world holds user data, which may be a secret: no one but its owner may read it.
#[tokio::test]
async fn the_world_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let sim = Sim::new(config());
    sim.create("web-1", 1, &["subnet-a"]).await;
    let mode = std::fs::metadata(&sim.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

/// Observing one node group shows exactly the groups a whole observe shows for it: those of its
/// cluster and node group, of this lineage only, before and after a group goes.
#[tokio::test]
async fn observing_one_node_group_is_a_whole_observe_filtered() {
    let sim = Sim::new(config());
    sim.create("web-g1", 2, &ABC).await;
    sim.create("web-g2", 1, &ABC).await;
    let mut other = request("api-g1", LINEAGE, "ami-1", settings(1, &ABC));
    other.ownership.node_group = "api".into();
    sim.provider.create_group(&other).await.unwrap();
    // The same node group under another lineage.
    sim.provider.create_group(&request("web-foreign", "another-lineage", "ami-1", settings(1, &ABC))).await.unwrap();
    let filtered = |o: drydock_provider::Observed, ng: &str| -> Vec<ObservedGroup> {
        o.groups.into_iter().filter(|g| g.ownership.cluster == "prod" && g.ownership.node_group == ng).collect()
    };
    for step in 0..2 {
        for ng in ["web", "api", "none"] {
            let one = sim.provider.observe_node_group(LINEAGE, "prod", ng).await.unwrap();
            let all = sim.provider.observe(LINEAGE).await.unwrap();
            assert_eq!(one.groups, filtered(all, ng), "step {step}, node group {ng}");
        }
        sim.provider.delete_group("web-g1").await.unwrap();
    }
    assert_eq!(sim.provider.observe_node_group(LINEAGE, "prod", "web").await.unwrap().groups.len(), 1);
}
