//! The world file as a snapshot and a log shared by several processes (each `SimProvider` keeps
//! its own copy of the world and its own file handles, as a separate process would): another
//! process's writes replayed, a torn last record ignored, compaction, version 1 worlds, and
//! one group of 100,000 instances.

use std::path::{Path, PathBuf};
use std::time::Instant;

use drydock_provider::{
    CreateGroup, GenerationSpec, GroupSettings, HealthCheck, InstanceState, Observed, Ownership, Provider,
};
use drydock_sim::{fail, status, timeline, ClockMode, FailTarget, SimConfig, SimProvider};

const LINEAGE: &str = "lin-1";
const ABC: [&str; 3] = ["subnet-a", "subnet-b", "subnet-c"];

fn config() -> SimConfig {
    SimConfig { seed: 5, ..SimConfig::default() }
}

fn world(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(".drydock").join("sim-world.json")
}

fn provider(path: &Path, config: SimConfig) -> SimProvider {
    SimProvider::new(path, config, ClockMode::Virtual)
}

fn request(name: &str, node_group: &str, image: &str, desired: u32) -> CreateGroup {
    CreateGroup {
        name: name.into(),
        ownership: Ownership {
            lineage: LINEAGE.into(),
            cluster: "prod".into(),
            node_group: node_group.into(),
            generation: name.into(),
        },
        spec: GenerationSpec {
            image: image.into(),
            instance_types: vec!["m5.large".into()],
            kubernetes_version: "1.31".into(),
            user_data: Some("#!/bin/sh\necho secret\n".into()),
            ..GenerationSpec::default()
        },
        settings: GroupSettings {
            min: 0,
            max: desired.max(10) * 2,
            desired,
            subnets: ABC.iter().map(|s| s.to_string()).collect(),
            ..GroupSettings::default()
        },
        join: None,
    }
}

/// The snapshot's payload length, from the first record's header (`S LEN CHAIN `).
fn snapshot_len(bytes: &[u8]) -> u64 {
    assert!(bytes.starts_with(b"S "), "the file starts with its snapshot");
    u64::from_str_radix(std::str::from_utf8(&bytes[2..18]).unwrap(), 16).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn each_process_sees_what_the_others_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    let (a, b) = (provider(&path, config()), provider(&path, config()));
    let created = a.create_group(&request("web-1", "web", "ami-1", 3)).await.unwrap();
    let snapshot = std::fs::read(&path).unwrap();

    // B has never looked: it reads the file; then A and B take turns, each seeing the other's
    // changes and time.
    assert_eq!(b.observe(LINEAGE).await.unwrap().groups[0].instances.len(), 3);
    b.clock().sleep(2_000).await;
    assert_eq!(a.clock().now_ms(), 2_000);
    assert_eq!(a.observe(LINEAGE).await.unwrap().groups[0].in_service(), 3);
    a.terminate_instances("web-1", &[created.instances[0].id.clone()], true).await.unwrap();
    b.create_group(&request("api-1", "api", "ami-1", 2)).await.unwrap();
    a.clock().sleep(500).await;
    let seen_by_a = a.observe(LINEAGE).await.unwrap();
    let seen_by_b = b.observe(LINEAGE).await.unwrap();
    assert_eq!(seen_by_a, seen_by_b);
    assert_eq!(seen_by_a.group("web-1").unwrap().settings.desired, 2);
    assert_eq!(seen_by_a.group("api-1").unwrap().instances.len(), 2);
    assert_eq!(b.clock().now_ms(), 2_500);

    // A third process reading the file from scratch sees the same world.
    let fresh = provider(&path, config()).observe(LINEAGE).await.unwrap();
    assert_eq!(fresh, seen_by_a);
    assert_eq!(status(&path).unwrap().now_ms, 2_500);

    // None of it rewrote the world: the snapshot is untouched, the changes were appended.
    let now = std::fs::read(&path).unwrap();
    assert!(now.len() > snapshot.len());
    assert_eq!(&now[..snapshot.len()], &snapshot[..]);
    assert_eq!(mode(&path), 0o600);
}

/// A scenario of changes, sleeps and failures, made by one process or by two taking turns (each
/// replaying the other's records, and reading the file afresh after the other compacted it):
/// the same calls give the same world, to the byte.
async fn scenario(turns: &[&SimProvider], path: &Path) -> (Vec<u8>, String, Observed) {
    let p = |k: usize| turns[k % turns.len()];
    let mut k = 0;
    let mut next = || {
        k += 1;
        p(k)
    };
    next().create_group(&request("web-1", "web", "ami-1", 6)).await.unwrap();
    next().create_group(&request("db-1", "db", "ami-1", 3)).await.unwrap();
    for round in 0..40u32 {
        next().clock().sleep(700).await;
        match round % 5 {
            0 => {
                let mut settings = request("web-1", "web", "ami-1", 0).settings;
                settings.desired = 3 + round % 7;
                settings.health_check = if round % 2 == 0 { HealthCheck::Elb } else { HealthCheck::Ec2 };
                next().update_group("web-1", &settings).await.unwrap();
            }
            1 => {
                let target = FailTarget::NodeGroup { cluster: None, node_group: "web".into(), count: 2 };
                let _ = fail(path, target);
            }
            2 => {
                let observed = next().observe(LINEAGE).await.unwrap();
                let live: Vec<String> = observed
                    .group("db-1")
                    .unwrap()
                    .instances
                    .iter()
                    .filter(|i| i.is_live())
                    .map(|i| i.id.clone())
                    .take(1)
                    .collect();
                next().terminate_instances("db-1", &live, false).await.unwrap();
            }
            3 => {
                let name = format!("web-{}", round + 2);
                next().create_group(&request(&name, "web", "ami-2", 2)).await.unwrap();
            }
            _ => {
                let name = format!("web-{}", round - 2);
                next().delete_group(&name).await.unwrap();
            }
        }
    }
    next().clock().sleep(60_000).await;
    let observed = next().observe(LINEAGE).await.unwrap();
    let status = serde_json::to_string(&status(path).unwrap()).unwrap();
    (std::fs::read(path).unwrap(), status, observed)
}

#[tokio::test]
async fn processes_taking_turns_build_the_same_world_as_one() {
    // A failure rate, bad images and a short detection delay: churn, so that the world lives
    // through many events between calls.
    let config = SimConfig { failure_rate: 0.3, detection_delay_ms: 300, bad_images: vec!["ami-2".into()], ..config() };
    let one = tempfile::tempdir().unwrap();
    let path = world(&one);
    let alone = provider(&path, config.clone());
    let (bytes_alone, status_alone, observed_alone) = scenario(&[&alone], &path).await;

    let two = tempfile::tempdir().unwrap();
    let path = world(&two);
    let (a, b) = (provider(&path, config.clone()), provider(&path, config.clone()));
    let (bytes_two, status_two, observed_two) = scenario(&[&a, &b], &path).await;

    assert_eq!(status_alone, status_two);
    assert_eq!(observed_alone, observed_two);
    assert!(bytes_alone == bytes_two, "the world files differ");
    assert!(timeline(&path).unwrap().len() > 40);
}

/// A record cut anywhere (a `kill -9` in the middle of an append) or followed by garbage is
/// ignored: the world reads as before that call, and the next call carries on from there.
#[tokio::test]
async fn a_torn_last_record_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    let p = provider(&path, config());
    p.create_group(&request("web-1", "web", "ami-1", 2)).await.unwrap();
    p.clock().sleep(2_000).await;
    let before = std::fs::read(&path).unwrap();
    let status_before = status(&path).unwrap();

    let mut settings = request("web-1", "web", "ami-1", 0).settings;
    settings.desired = 5;
    p.update_group("web-1", &settings).await.unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[..before.len()], &before[..], "the update was appended");
    assert_eq!(status(&path).unwrap().groups[0].desired, 5);

    let mut torn: Vec<Vec<u8>> = (before.len()..after.len()).map(|cut| after[..cut].to_vec()).collect();
    // The whole record with one byte of its payload garbled (as an unsynced tail after a power
    // loss may be), and a whole record followed by a partial one.
    let mut garbled = after.clone();
    let middle = before.len() + (after.len() - before.len()) * 2 / 3;
    garbled[middle] ^= 0x01;
    torn.push(garbled);
    let mut partial = after.clone();
    partial.extend_from_slice(b"O 00000000000000");
    torn.push(partial);
    for (k, bytes) in torn.iter().enumerate() {
        // Rewritten in place, as a crashed append leaves it: the file keeps its mode.
        std::fs::write(&path, bytes).unwrap();
        let expected = if k == torn.len() - 1 { 5 } else { 2 };
        let seen = status(&path).unwrap_or_else(|e| panic!("cut {k}: {e}"));
        assert_eq!(seen.groups[0].desired, expected, "cut {k}");
        if expected == 2 {
            assert_eq!(seen, status_before, "cut {k}");
        }
    }

    // The next change (by a process that never saw the torn record) truncates it and appends.
    std::fs::write(&path, &after[..after.len() - 3]).unwrap();
    let q = provider(&path, config());
    settings.desired = 4;
    q.update_group("web-1", &settings).await.unwrap();
    let repaired = std::fs::read(&path).unwrap();
    assert_eq!(&repaired[..before.len()], &before[..]);
    assert_eq!(status(&path).unwrap().groups[0].desired, 4);
    assert_eq!(provider(&path, config()).observe(LINEAGE).await.unwrap().groups[0].settings.desired, 4);
    // The process that wrote the torn record's file before carries on too.
    assert_eq!(p.observe(LINEAGE).await.unwrap().groups[0].settings.desired, 4);
    assert_eq!(mode(&path), 0o600);
}

/// A world whose snapshot is damaged is an error, never a panic, and is left as it is.
#[tokio::test]
async fn a_damaged_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    provider(&path, config()).create_group(&request("web-1", "web", "ami-1", 2)).await.unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = status(&path).unwrap_err();
    assert!(err.to_string().contains("is corrupt"), "{err}");
    let err = provider(&path, config()).observe(LINEAGE).await.unwrap_err();
    assert!(err.message.contains("is corrupt"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// The log is folded into a new snapshot once it costs more to replay than the snapshot costs
/// to read: the file stays within about twice the world, and the world read afresh is the one
/// the writer holds.
#[tokio::test]
async fn the_log_is_compacted_and_the_file_stays_proportionate() {
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    let p = provider(&path, config());
    for k in 0..40 {
        p.create_group(&request(&format!("g-{k:02}"), &format!("ng-{k:02}"), "ami-1", 5)).await.unwrap();
    }
    let mut compactions = 0;
    let mut last_snapshot = snapshot_len(&std::fs::read(&path).unwrap());
    let mut settings = request("g-00", "ng-00", "ami-1", 0).settings;
    for k in 0..3_000u32 {
        settings.desired = k % 7;
        p.update_group(&format!("g-{:02}", k % 40), &settings).await.unwrap();
        if k % 10 == 0 {
            p.clock().sleep(1_000).await;
        }
        let bytes = std::fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        let snapshot = snapshot_len(&bytes);
        if snapshot != last_snapshot {
            compactions += 1;
        }
        last_snapshot = snapshot;
        // The snapshot record, then at most its size (or 256 KiB) of log, plus the last record.
        assert!(len <= 37 + snapshot + snapshot.max(256 * 1024) + 4_096, "{len} bytes on a snapshot of {snapshot}");
    }
    assert!(compactions >= 2, "{compactions} compactions");
    assert_eq!(provider(&path, config()).observe(LINEAGE).await.unwrap(), p.observe(LINEAGE).await.unwrap());
    assert_eq!(mode(&path), 0o600);
}

/// A world written by drydock before the log (bare JSON, version 1) is read, and rewritten in
/// the current format by its next change.
#[tokio::test]
async fn a_version_1_world_is_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let v1 = r#"{"version":1,"clock":"virtual","now_ms":5000,"config":{"boot_time_ms":2000,"detection_delay_ms":10000,"shutdown_time_ms":1000,"failure_rate":0.0,"bad_images":[],"seed":5},"rng":12345,"zones_down":[],"groups":{"web-1":{"ownership":{"lineage":"lin-1","cluster":"prod","node_group":"web","generation":"web-1"},"spec":{"image":"ami-1","instance_types":["m5.large"],"kubernetes_version":"1.31"},"settings":{"min":0,"max":4,"desired":2,"subnets":["subnet-a","subnet-b"]},"created_at_ms":0,"instances":[{"id":"i-0000000000000001","zone":"zone-a","subnet":"subnet-a","image":"ami-1","instance_type":"m5.large","state":"running","healthy":true,"launched_at_ms":0,"healthy_at_ms":2000},{"id":"i-0000000000000002","zone":"zone-b","subnet":"subnet-b","image":"ami-1","instance_type":"m5.large","state":"pending","healthy":false,"launched_at_ms":4000,"boot_at_ms":6000}]}},"capacity":[{"t_ms":4000,"cluster":"prod","node_group":"web","healthy":1,"running":1,"total":2}],"timeline":[{"t_ms":4000,"cluster":"prod","node_group":"web","healthy":1,"running":1,"total":2}]}"#;
    std::fs::write(&path, v1).unwrap();
    let s = status(&path).unwrap();
    assert_eq!(s.now_ms, 5_000);
    assert_eq!(s.groups[0].instances.len(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), v1, "reading changes nothing");

    let p = provider(&path, config());
    p.clock().sleep(1_000).await;
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"S "), "rewritten as a snapshot");
    assert_eq!(mode(&path), 0o600);
    let group = p.observe(LINEAGE).await.unwrap().groups[0].clone();
    assert_eq!(group.in_service(), 2, "the pending instance booted at 6000");
    let points = timeline(&path).unwrap();
    assert_eq!(points.last().unwrap().healthy, 2);
    assert_eq!(points.last().unwrap().t_ms, 6_000);
}

/// One group of 100,000 instances created, booted and rolled (a second group created, the
/// first's instances terminated, the first group deleted): no quadratic work, so it takes
/// seconds even unoptimised, and the zones stay balanced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_of_100_000_instances() {
    const N: u32 = 100_000;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = world(&dir);
    let p = provider(&path, SimConfig { boot_time_ms: 0, ..config() });
    let first = p.create_group(&request("big-1", "big", "ami-1", N)).await.unwrap();
    assert_eq!(first.instances.len(), N as usize);
    let mut zones = std::collections::BTreeMap::<String, u32>::new();
    for i in &first.instances {
        *zones.entry(i.zone.clone()).or_default() += 1;
    }
    assert_eq!(zones.values().copied().collect::<Vec<_>>(), [33_334, 33_333, 33_333]);
    p.clock().sleep(1).await;

    p.create_group(&request("big-2", "big", "ami-2", N)).await.unwrap();
    p.clock().sleep(1).await;
    // Scale the first group in by a third (the oldest of the fullest zones go first), then
    // terminate the rest by id.
    let mut settings = request("big-1", "big", "ami-1", N).settings;
    settings.desired = N / 3 * 2;
    p.update_group("big-1", &settings).await.unwrap();
    let observed = p.observe(LINEAGE).await.unwrap();
    let big1 = observed.group("big-1").unwrap();
    let live: Vec<String> = big1.instances.iter().filter(|i| i.is_live()).map(|i| i.id.clone()).collect();
    assert_eq!(live.len(), (N / 3 * 2) as usize);
    // Scale-in took from the fullest zone each time, and within a zone the oldest (all were
    // launched at once: the smallest ids).
    let mut per_zone = std::collections::BTreeMap::<&str, (Vec<&str>, Vec<&str>)>::new();
    for i in &big1.instances {
        let (gone, kept) = per_zone.entry(&i.zone).or_default();
        if i.state == InstanceState::ShuttingDown {
            gone.push(&i.id)
        } else {
            kept.push(&i.id)
        }
    }
    for (zone, (gone, kept)) in &per_zone {
        assert_eq!(kept.len(), (N / 3 * 2 / 3) as usize, "{zone}");
        assert!(gone.iter().max() < kept.iter().min(), "{zone}: the smallest ids went first");
    }
    p.terminate_instances("big-1", &live, true).await.unwrap();
    p.clock().sleep(SimConfig::default().shutdown_time_ms).await;
    p.delete_group("big-1").await.unwrap();

    let observed = p.observe(LINEAGE).await.unwrap();
    assert_eq!(observed.groups.len(), 1);
    assert_eq!(observed.groups[0].in_service(), N as usize);
    let s = status(&path).unwrap();
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].instances.len(), N as usize);
    let last = timeline(&path).unwrap().last().unwrap().clone();
    assert_eq!((last.healthy, last.total), (N, N));
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 120, "took {elapsed:?}");
}
