//! Real etcd members of control-plane instances (`SimConfig::etcd`), on the virtual clock: a
//! control plane of three comes up as kubeadm builds one (members named after their Nodes,
//! Nodes Ready only once their member is promoted, mirror pods served by the API server); a
//! crashed instance's member is killed and stays listed, dead; the group's replacement joins
//! as a fourth member (a learner, then promoted); a terminated instance's member is killed; a
//! kubelet failure leaves etcd running; a member that exited stays exited; and no process
//! outlives a test (checked by pid). etcd is installed when missing
//! (`crates/etcd/tests/support/install.rs`).

#[path = "../../../crates/etcd/tests/support/install.rs"]
mod etcd_install;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_etcd::EtcdClient;
use drydock_provider::etcd::ETCD_CLIENT_URLS_ANNOTATION;
use drydock_provider::kube::{ConditionStatus, MIRROR_ANNOTATION};
use drydock_provider::{
    Clock, CreateGroup, Etcd, GenerationSpec, GroupSettings, InstanceState, Ownership, Provider, Role,
};
use drydock_sim::{
    fail, status, stop_all, ClockMode, EtcdMemberStatus, FailTarget, SimConfig, SimEndpoint, SimProvider, Status,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CLUSTER: &str = "prod";

/// A world with real etcd members, whose processes are all killed when it is dropped (and
/// checked gone by pid).
struct Sim {
    provider: SimProvider,
    clock: Arc<dyn Clock>,
    path: PathBuf,
    dir: tempfile::TempDir,
}

impl Sim {
    fn new() -> Sim {
        // Installs etcd first if there is none: the sim itself only looks for it.
        etcd_install::etcd_binary();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-world.json");
        let config = SimConfig { seed: 5, etcd: true, ..SimConfig::default() };
        let provider = SimProvider::new(&path, config, ClockMode::Virtual);
        let clock = provider.clock();
        Sim { provider, clock, path, dir }
    }

    async fn control_plane(&self, name: &str, desired: u32) {
        control_plane(&self.provider, name, desired).await;
    }

    fn status(&self) -> Status {
        status(&self.path).unwrap()
    }

    /// The pid of every member process the world started (from `<world>.etcd/*/*/pid`).
    fn pids(&self) -> BTreeMap<String, u32> {
        let root = self.dir.path().join("sim-world.json.etcd");
        let mut out = BTreeMap::new();
        for cluster in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for member in std::fs::read_dir(cluster.path()).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read_to_string(member.path().join("pid")) {
                    let pid = text.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap();
                    out.insert(member.file_name().to_string_lossy().into_owned(), pid);
                }
            }
        }
        out
    }

    fn api(&self) -> Api {
        Api { endpoint: self.provider.kubernetes(CLUSTER).unwrap() }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let pids = self.pids();
        let killed = stop_all(&self.path);
        if !std::thread::panicking() {
            killed.unwrap();
            for (instance, pid) in pids {
                assert!(!alive(pid), "the etcd of {instance} (pid {pid}) outlived the test");
            }
        }
    }
}

/// A control-plane group of `desired` instances in cluster `prod`.
async fn control_plane(provider: &SimProvider, name: &str, desired: u32) {
    let req = CreateGroup {
        name: name.into(),
        ownership: Ownership {
            lineage: "lin".into(),
            cluster: CLUSTER.into(),
            node_group: "control-plane".into(),
            generation: name.into(),
        },
        spec: GenerationSpec {
            image: "ami-cp".into(),
            instance_types: vec!["m5.large".into()],
            kubernetes_version: "1.33".into(),
            role: Role::ControlPlane,
            taints: vec!["node-role.kubernetes.io/control-plane:NoSchedule".into()],
            ..GenerationSpec::default()
        },
        settings: GroupSettings {
            min: 0,
            max: 10,
            desired,
            subnets: vec!["subnet-a".into(), "subnet-b".into(), "subnet-c".into()],
            ..GroupSettings::default()
        },
        join: None,
    };
    provider.create_group(&req).await.unwrap();
}

/// Whether a process runs (a zombie does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X')),
        Err(_) => false,
    }
}

fn members(s: &Status) -> Vec<&EtcdMemberStatus> {
    s.etcd.iter().filter(|m| m.cluster == CLUSTER).collect()
}

fn member_of<'a>(s: &'a Status, instance: &str) -> &'a EtcdMemberStatus {
    s.etcd
        .iter()
        .find(|m| m.instance.as_deref() == Some(instance))
        .unwrap_or_else(|| panic!("no member on {instance}: {:#?}", s.etcd))
}

fn node_of<'a>(s: &'a Status, instance: &str) -> &'a drydock_sim::NodeStatus {
    s.nodes.iter().find(|n| n.instance.as_deref() == Some(instance)).unwrap_or_else(|| panic!("no node of {instance}"))
}

/// The live control-plane instances, in launch order.
fn live_instances(s: &Status) -> Vec<String> {
    s.groups
        .iter()
        .flat_map(|g| &g.instances)
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_of_three_comes_up_crashes_and_is_replaced_with_real_etcd() {
    let sim = Sim::new();
    sim.control_plane("cp-g1", 3).await;
    // Booted (2 s), not joined (3 s later): no Node, no member.
    sim.clock.sleep(4_000).await;
    let s = sim.status();
    assert!(s.nodes.is_empty() && s.etcd.is_empty(), "{:#?}", s.etcd);
    assert!(sim.pids().is_empty());

    // The Nodes register; the first initialises etcd, the others join it as kubeadm does; each
    // Node is Ready once its member is promoted, before the call returns.
    sim.clock.sleep(1_000).await;
    let s = sim.status();
    let ids = live_instances(&s);
    assert_eq!(ids.len(), 3);
    let m = members(&s);
    assert_eq!(m.len(), 3, "{m:#?}");
    for id in &ids {
        let node = node_of(&s, id);
        assert_eq!(node.ready, ConditionStatus::True, "{node:?}");
        let member = member_of(&s, id);
        assert_eq!(member.name, node.name, "kubeadm names a member after its Node");
        assert!(member.started && !member.learner && member.healthy, "{member:?}");
        assert!(member.error.is_none(), "{member:?}");
        assert!(member.client_url.as_deref().is_some_and(|u| u.starts_with("http://127.0.0.1:")));
        assert_ne!(member.id, "0");
    }
    let pids = sim.pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.values().all(|p| alive(*p)));

    // The real cluster agrees: three voting members, healthy, a leader, no alarm.
    let seeds: Vec<String> = m.iter().filter_map(|m| m.client_url.clone()).collect();
    let client = EtcdClient::new(seeds.clone(), None).unwrap();
    let h = client.health().await.unwrap();
    assert_eq!((h.voting(), h.healthy_voting()), (3, 3));
    assert!(h.leader.is_some() && h.alarms.is_empty() && h.problems().is_empty(), "{h:?}");

    // The API server serves each member's static pod, annotated with its client URL.
    let api = sim.api();
    let pods = api.list("/api/v1/namespaces/kube-system/pods?labelSelector=component%3Detcd").await;
    assert_eq!(pods.len(), 3, "{pods:#?}");
    for id in &ids {
        let node = node_of(&s, id);
        let member = member_of(&s, id);
        let pod = pods
            .iter()
            .find(|p| p["spec"]["nodeName"] == node.name.as_str())
            .unwrap_or_else(|| panic!("no etcd pod on {}", node.name));
        assert_eq!(pod["metadata"]["name"], format!("etcd-{}", node.name));
        assert_eq!(pod["metadata"]["labels"]["tier"], "control-plane");
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations[ETCD_CLIENT_URLS_ANNOTATION].as_str(), member.client_url.as_deref());
        assert!(annotations[MIRROR_ANNOTATION].is_string());
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(ready(pod), "True");
    }
    let one = &node_of(&s, &ids[0]).name;
    let (code, pod) = api.get(&format!("/api/v1/namespaces/kube-system/pods/etcd-{one}")).await;
    assert_eq!(code, 200, "{pod}");
    let on_node = api.list(&format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{one}")).await;
    assert_eq!(on_node.len(), 1, "a drain sees the mirror pod on its node: {on_node:#?}");

    // A crash kills the machine's etcd: the member stays listed, dead.
    let victim = ids[1].clone();
    let victim_pid = pids[&victim];
    assert_eq!(fail(&sim.path, FailTarget::Instance(victim.clone())).unwrap(), vec![victim.clone()]);
    assert!(!alive(victim_pid), "the crashed instance's etcd still runs");
    let s = sim.status();
    assert_eq!(members(&s).len(), 3);
    let dead = member_of(&s, &victim);
    assert!(dead.started && !dead.healthy && dead.error.is_some(), "{dead:?}");
    assert_eq!(node_of(&s, &victim).ready, ConditionStatus::Unknown);
    let h = client.health().await.unwrap();
    assert_eq!((h.voting(), h.healthy_voting()), (3, 2));
    let dead_pod = api.list(&format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", node_of(&s, &victim).name)).await;
    assert_eq!(ready(&dead_pod[0]), "False");

    // The group replaces it (10 s to notice, 2 s to boot, 3 s to join); the replacement joins
    // as a learner and is promoted: a fourth member, while the dead one is still listed.
    let seen_learners = watch_learners(seeds.clone());
    sim.clock.sleep(15_000).await;
    let learners = seen_learners.stop();
    let s = sim.status();
    let now: Vec<String> = live_instances(&s);
    let replacement = now.iter().find(|i| !ids.contains(i)).expect("a replacement").clone();
    let joined = member_of(&s, &replacement);
    assert_eq!(members(&s).len(), 4, "{:#?}", s.etcd);
    assert!(joined.started && !joined.learner && joined.healthy, "{joined:?}");
    assert_eq!(joined.name, node_of(&s, &replacement).name);
    assert_eq!(node_of(&s, &replacement).ready, ConditionStatus::True);
    assert!(learners.contains(&joined.id), "the replacement was a learner before it was promoted: saw {learners:?}");
    assert!(!member_of(&s, &victim).healthy);
    let h = client.health().await.unwrap();
    assert_eq!((h.voting(), h.healthy_voting()), (4, 3));
    // drydock's part: the dead member may go, and goes.
    let dead_id = h.by_name(&dead.name).unwrap().member.id;
    assert_eq!(h.check_remove(dead_id), Ok(()));
    assert!(client.remove_member(dead_id).await.unwrap());

    // Terminating an instance stops its etcd.
    let gone = ids[2].clone();
    let gone_pid = sim.pids()[&gone];
    sim.provider.terminate_instances("cp-g1", std::slice::from_ref(&gone), true).await.unwrap();
    assert!(!alive(gone_pid));
    let s = sim.status();
    let stopped = member_of(&s, &gone);
    assert!(!stopped.healthy && stopped.error.as_deref().is_some_and(|e| e.contains("terminated")), "{stopped:?}");
    let pods = api.list("/api/v1/namespaces/kube-system/pods").await;
    let ready_pods = pods.iter().filter(|p| ready(p) == "True").count();
    assert_eq!(ready_pods, 2, "{pods:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_failure_leaves_etcd_running_and_an_exited_member_stays_exited() {
    let sim = Sim::new();
    sim.control_plane("cp-g1", 1).await;
    sim.clock.sleep(5_000).await;
    let s = sim.status();
    let id = live_instances(&s)[0].clone();
    assert!(member_of(&s, &id).healthy, "{:#?}", s.etcd);
    let pid = sim.pids()[&id];

    // The kubelet fails: the Node goes Unknown, the machine (and etcd) runs on.
    fail(&sim.path, FailTarget::Kubelet { instance: Some(id.clone()), cluster: None, node_group: None, count: 0 })
        .unwrap();
    let s = sim.status();
    assert_eq!(node_of(&s, &id).ready, ConditionStatus::Unknown);
    assert!(alive(pid));
    assert!(member_of(&s, &id).healthy);

    // The process dies by itself (as when etcd removes it): recorded, and never started again,
    // not by this process nor by another one reading the world afresh.
    assert_eq!(stop_all(&sim.path).unwrap(), 1);
    assert!(!alive(pid));
    let s = sim.status();
    let m = member_of(&s, &id);
    assert!(!m.healthy && m.error.as_deref().is_some_and(|e| e.contains("exited")), "{m:?}");
    sim.clock.sleep(1_000).await;
    let fresh =
        SimProvider::new(&sim.path, SimConfig { seed: 5, etcd: true, ..SimConfig::default() }, ClockMode::Virtual);
    fresh.observe("lin").await.unwrap();
    assert_eq!(sim.pids()[&id], pid, "no new process");
    assert!(!alive(pid));
}

/// A member whose process died with its host (another boot id in its pid file) starts again on
/// its data directory: same member, same URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_host_rebooted_starts_again_on_its_data() {
    let sim = Sim::new();
    sim.control_plane("cp-g1", 1).await;
    sim.clock.sleep(5_000).await;
    let s = sim.status();
    let id = live_instances(&s)[0].clone();
    let before = member_of(&s, &id).clone();
    assert!(before.healthy, "{before:?}");
    let pid = sim.pids()[&id];
    // The host "reboots": the process is gone, and the pid file is of another boot.
    assert_eq!(stop_all(&sim.path).unwrap(), 1);
    let pid_file = sim.dir.path().join("sim-world.json.etcd").join(CLUSTER).join(&id).join("pid");
    std::fs::write(&pid_file, format!("{pid} another-boot\n")).unwrap();
    let s = sim.status();
    let after = member_of(&s, &id);
    assert!(after.healthy, "{after:?}");
    assert_eq!((&after.id, &after.name, &after.client_url), (&before.id, &before.name, &before.client_url));
    let new_pid = sim.pids()[&id];
    assert!(new_pid != pid && alive(new_pid));
}

/// A member lives while its world does: the world file removed (a test's directory deleted
/// without `stop_all`), its members go within a second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_die_with_their_world_file() {
    let sim = Sim::new();
    sim.control_plane("cp-g1", 1).await;
    sim.clock.sleep(5_000).await;
    let pids = sim.pids();
    assert_eq!(pids.len(), 1);
    let pid = *pids.values().next().unwrap();
    assert!(alive(pid));
    std::fs::remove_file(&sim.path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(std::time::Instant::now() < deadline, "etcd {pid} outlived its world");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without an etcd binary, a control-plane Node never gets Ready, and the world says why and
/// how to install etcd. (`DRYDOCK_ETCD` names a missing file: the sim finds no etcd.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_without_an_etcd_binary_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    let missing = dir.path().join("no-etcd-here");
    // Only this test's child process sees it: see `missing_binary_child`.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_binary_child", "--nocapture"])
        .env("DRYDOCK_SIM_ETCD_TEST_WORLD", &path)
        .env(drydock_etcd::ETCD_BINARY_ENV, &missing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let s = status(&path).unwrap();
    let m = &s.etcd[0];
    let error = m.error.as_deref().unwrap_or_default();
    assert!(error.contains("etcd is not installed") && error.contains("apt-get install etcd-server"), "{error}");
    assert!(!m.started && !m.healthy);
    assert_eq!(s.nodes[0].ready, ConditionStatus::False);
    assert!(stop_all(&path).unwrap() == 0);
}

/// The child of `a_world_without_an_etcd_binary_says_how_to_install_it`: a world driven with
/// `DRYDOCK_ETCD` naming a missing file. Does nothing when run on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binary_child() {
    let Some(path) = std::env::var_os("DRYDOCK_SIM_ETCD_TEST_WORLD") else {
        return;
    };
    let provider =
        SimProvider::new(PathBuf::from(path), SimConfig { etcd: true, ..SimConfig::default() }, ClockMode::Virtual);
    let sim = Sim { clock: provider.clock(), provider, path: PathBuf::new(), dir: tempfile::tempdir().unwrap() };
    sim.control_plane("cp-g1", 1).await;
    sim.clock.sleep(5_000).await;
    let api = sim.api();
    let (code, nodes) = api.get("/api/v1/nodes").await;
    assert_eq!(code, 200);
    let conditions = nodes["items"][0]["status"]["conditions"].as_array().unwrap().clone();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert!(ready["message"].as_str().unwrap().contains("etcd is not installed"), "{ready}");
}

fn ready(pod: &Value) -> String {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("none")
        .to_string()
}

/// A thread listing etcd's members every 20 ms, noting the ids of those seen as learners.
struct LearnerWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    thread: std::thread::JoinHandle<()>,
}

fn watch_learners(seeds: Vec<String>) -> LearnerWatch {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let (s, n) = (stop.clone(), seen.clone());
    let thread = std::thread::spawn(move || {
        let client = EtcdClient::new(seeds, None).unwrap();
        while !s.load(Ordering::SeqCst) {
            if let Ok(members) = drydock_etcd::block_on(client.members()) {
                for m in members.iter().filter(|m| m.learner) {
                    n.lock().unwrap().insert(format!("{:x}", m.id));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    LearnerWatch { stop, seen, thread }
}

impl LearnerWatch {
    fn stop(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let seen = self.seen.lock().unwrap().clone();
        seen
    }
}

/// An HTTP/1.1 client spoken by hand.
struct Api {
    endpoint: SimEndpoint,
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let addr = self.endpoint.url.strip_prefix("http://").unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
            self.endpoint.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
        let headers = String::from_utf8_lossy(&response[..split]).to_string();
        let code: u16 = headers.split(' ').nth(1).unwrap().parse().unwrap();
        (code, serde_json::from_slice(&response[split + 4..]).unwrap())
    }

    async fn list(&self, path: &str) -> Vec<Value> {
        let (code, list) = self.get(path).await;
        assert_eq!(code, 200, "{list}");
        list["items"].as_array().cloned().unwrap_or_default()
    }
}
