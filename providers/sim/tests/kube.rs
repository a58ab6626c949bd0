//! The simulated Kubernetes through its API server (real HTTP on loopback, spoken by hand and
//! by kube-rs) and `drydock sim status`, on the virtual clock: nodes registering, workloads
//! scheduled, evictions against disruption budgets, cordons and patches, terminations and the
//! disruption audit, kubelet failures, auth, determinism and other processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drydock_provider::kube::ConditionStatus;
use drydock_provider::{
    Clock, CreateGroup, GenerationSpec, GroupSettings, InstanceState, ObservedGroup, Ownership, Provider,
};
use drydock_sim::{
    fail, schedule_fail, status, violations, Cause, ClockMode, FailTarget, SimConfig, SimEndpoint, SimProvider, Status,
    Violation, Workload, WorkloadKind,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const LINEAGE: &str = "lin-1";
const ABC: [&str; 3] = ["subnet-a", "subnet-b", "subnet-c"];
const MERGE: &str = "application/merge-patch+json";

struct Sim {
    _dir: tempfile::TempDir,
    path: PathBuf,
    provider: SimProvider,
    clock: Arc<dyn Clock>,
}

impl Sim {
    fn new(config: SimConfig) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-world.json");
        let provider = SimProvider::new(&path, config, ClockMode::Virtual);
        let clock = provider.clock();
        Sim { _dir: dir, path, provider, clock }
    }

    /// A group of `desired` instances in cluster `prod`, node group `node_group`.
    async fn group(
        &self,
        name: &str,
        node_group: &str,
        desired: u32,
        labels: &[(&str, &str)],
        taints: &[&str],
    ) -> ObservedGroup {
        let req = CreateGroup {
            name: name.into(),
            ownership: Ownership {
                lineage: LINEAGE.into(),
                cluster: "prod".into(),
                node_group: node_group.into(),
                generation: name.into(),
            },
            spec: GenerationSpec {
                image: "ami-1".into(),
                instance_types: vec!["m5.large".into()],
                kubernetes_version: "1.31".into(),
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                taints: taints.iter().map(|t| t.to_string()).collect(),
                ..GenerationSpec::default()
            },
            settings: GroupSettings {
                min: 0,
                max: 20,
                desired,
                subnets: ABC.iter().map(|s| s.to_string()).collect(),
                ..GroupSettings::default()
            },
            join: None,
        };
        self.provider.create_group(&req).await.unwrap()
    }

    fn api(&self) -> Api {
        Api { endpoint: self.provider.kubernetes("prod").unwrap() }
    }

    fn status(&self) -> Status {
        status(&self.path).unwrap()
    }

    /// The node of an instance.
    fn node_of(&self, instance: &str) -> String {
        let s = self.status();
        s.nodes.iter().find(|n| n.instance.as_deref() == Some(instance)).map(|n| n.name.clone()).expect("a node")
    }
}

fn config(workloads: Vec<Workload>) -> SimConfig {
    SimConfig { seed: 17, workloads, ..SimConfig::default() }
}

fn workload(name: &str, replicas: u32) -> Workload {
    Workload { name: name.into(), replicas, ..Workload::default() }
}

/// An HTTP/1.1 client spoken by hand: exactly what goes over the wire.
struct Api {
    endpoint: SimEndpoint,
}

impl Api {
    async fn raw(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let addr = self.endpoint.url.strip_prefix("http://").unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
        let headers = String::from_utf8_lossy(&response[..split]).to_string();
        let code: u16 = headers.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
        let body = &response[split + 4..];
        (code, serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body))))
    }

    async fn call(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        self.raw(Some(&self.endpoint.token.clone()), method, path, content_type, &body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, None).await
    }

    async fn nodes(&self) -> Vec<Node> {
        let (code, list) = self.get("/api/v1/nodes").await;
        assert_eq!(code, 200, "{list}");
        assert_eq!((list["kind"].as_str(), list["apiVersion"].as_str()), (Some("NodeList"), Some("v1")));
        serde_json::from_value::<k8s_openapi::List<Node>>(list).unwrap().items
    }

    async fn node(&self, name: &str) -> Node {
        let (code, node) = self.get(&format!("/api/v1/nodes/{name}")).await;
        assert_eq!(code, 200, "{node}");
        serde_json::from_value(node).unwrap()
    }

    async fn pods(&self, query: &str) -> Vec<Pod> {
        let (code, list) = self.get(&format!("/api/v1/pods{query}")).await;
        assert_eq!(code, 200, "{list}");
        assert_eq!(list["kind"], "PodList");
        serde_json::from_value::<k8s_openapi::List<Pod>>(list).unwrap().items
    }

    async fn pod(&self, name: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/namespaces/default/pods/{name}")).await
    }

    async fn pdb(&self, name: &str) -> PodDisruptionBudget {
        let (code, pdb) = self.get(&format!("/apis/policy/v1/namespaces/default/poddisruptionbudgets/{name}")).await;
        assert_eq!(code, 200, "{pdb}");
        serde_json::from_value(pdb).unwrap()
    }

    async fn evict(&self, name: &str, delete_options: Value) -> (u16, Value) {
        let body = json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"},
            "deleteOptions": delete_options,
        });
        self.call(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
            Some("application/json"),
            Some(body),
        )
        .await
    }

    async fn patch_node(&self, name: &str, content_type: &str, patch: Value) -> (u16, Value) {
        self.call("PATCH", &format!("/api/v1/nodes/{name}"), Some(content_type), Some(patch)).await
    }
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_ready(node: &Node) -> (String, String, String) {
    let c = node.status.as_ref().unwrap().conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap();
    let at = serde_json::to_value(c.last_transition_time.as_ref().unwrap()).unwrap();
    (c.status.clone(), c.reason.clone().unwrap(), at.as_str().unwrap().to_string())
}

fn pdb_numbers(pdb: &PodDisruptionBudget) -> (i32, i32, i32, i32) {
    let s = pdb.status.as_ref().unwrap();
    (s.current_healthy, s.desired_healthy, s.disruptions_allowed, s.expected_pods)
}

#[tokio::test]
async fn nodes_register_after_the_join_delay_as_kubelets_would() {
    let sim = Sim::new(config(vec![]));
    let created = sim.group("web-g1", "web", 2, &[("role", "web")], &["dedicated=web:NoSchedule", "not a taint"]).await;
    let api = sim.api();
    // Boot (2 s), then the join delay (3 s).
    sim.clock.sleep(4_999).await;
    assert!(api.nodes().await.is_empty());
    assert!(sim.status().nodes.is_empty());
    sim.clock.sleep(1).await;
    let nodes = api.nodes().await;
    assert_eq!(nodes.len(), 2);
    for i in &created.instances {
        let node = nodes
            .iter()
            .find(|n| n.spec.as_ref().unwrap().provider_id.as_deref() == Some(&format!("sim:///{}/{}", i.zone, i.id)))
            .unwrap_or_else(|| panic!("no node for {}", i.id));
        let name = node.metadata.name.clone().unwrap();
        assert!(name.starts_with("ip-10-") && name.ends_with(".sim.internal"), "{name}");
        let labels = node.metadata.labels.clone().unwrap();
        let expected = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("topology.kubernetes.io/zone".to_string(), i.zone.clone()),
            ("node.kubernetes.io/instance-type".to_string(), "m5.large".to_string()),
            ("role".to_string(), "web".to_string()),
        ]);
        assert_eq!(labels, expected);
        let taints = node.spec.as_ref().unwrap().taints.clone().unwrap();
        assert_eq!(taints.len(), 1, "the unparsable taint is skipped");
        assert_eq!(
            (taints[0].key.as_str(), taints[0].value.as_deref(), taints[0].effect.as_str()),
            ("dedicated", Some("web"), "NoSchedule")
        );
        assert_eq!(node_ready(node), ("True".into(), "KubeletReady".into(), "1970-01-01T00:00:05Z".into()));
        let conditions = node.status.as_ref().unwrap().conditions.clone().unwrap();
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(conditions.iter().find(|c| c.type_ == pressure).unwrap().status, "False");
        }
        let created = serde_json::to_value(node.metadata.creation_timestamp.as_ref().unwrap()).unwrap();
        assert_eq!(created, "1970-01-01T00:00:05Z");
        assert_eq!(node.metadata.uid.as_ref().unwrap().len(), 36);
        assert_eq!(node.status.as_ref().unwrap().node_info.as_ref().unwrap().kubelet_version, "v1.31");
        // One object by name, too.
        assert_eq!(&api.node(&name).await, node);
    }
    let s = sim.status();
    assert_eq!(s.nodes.len(), 2);
    assert!(s.nodes.windows(2).all(|w| w[0].name < w[1].name));
    assert!(s.nodes.iter().all(|n| n.ready == ConditionStatus::True && n.cluster == "prod" && !n.unschedulable));
    // Another cluster sees none of them.
    let other = SimEndpoint { ..sim.provider.kubernetes("staging").unwrap() };
    assert!(Api { endpoint: other }.nodes().await.is_empty());
    // The same server each time.
    assert_eq!(sim.provider.kubernetes("prod").unwrap(), api.endpoint);
}

#[tokio::test]
async fn an_instance_of_a_bad_image_never_registers() {
    let sim = Sim::new(SimConfig { bad_images: vec!["ami-1".into()], ..config(vec![]) });
    sim.group("web-g1", "web", 1, &[], &[]).await;
    sim.clock.sleep(60_000).await;
    assert!(sim.api().nodes().await.is_empty());
}

#[tokio::test]
async fn workloads_are_scheduled_with_capacity_and_become_ready() {
    let agent = Workload { kind: WorkloadKind::DaemonSet, ..workload("agent", 0) };
    let sim = Sim::new(SimConfig { pods_per_node: 2, ..config(vec![workload("web", 5), agent]) });
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(5_000).await;
    let api = sim.api();
    let pods = api.pods("").await;
    let web: Vec<&Pod> = pods.iter().filter(|p| name(p).starts_with("web-")).collect();
    let agents: Vec<&Pod> = pods.iter().filter(|p| name(p).starts_with("agent-")).collect();
    assert_eq!((web.len(), agents.len()), (5, 2));
    let node_of = |p: &Pod| p.spec.as_ref().unwrap().node_name.clone();
    let mut per_node: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for p in &web {
        *per_node.entry(node_of(p)).or_default() += 1;
    }
    assert_eq!(per_node.get(&None), Some(&1), "one web pod fits nowhere: {per_node:?}");
    assert!(per_node.iter().all(|(n, c)| n.is_none() || *c == 2), "{per_node:?}");
    let agent_nodes: std::collections::BTreeSet<_> = agents.iter().map(|p| node_of(p).unwrap()).collect();
    assert_eq!(agent_nodes.len(), 2, "one DaemonSet pod per node");
    for p in &pods {
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    }
    // Names and owners as the controllers make them.
    let web0 = web[0];
    let hash = web0.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(hash.len(), 10);
    let web0_name = name(web0);
    let parts: Vec<&str> = web0_name.rsplitn(2, '-').collect();
    assert_eq!(parts[0].len(), 5);
    assert_eq!(parts[1], format!("web-{hash}"));
    let owner = &web0.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.clone(), owner.controller),
        ("ReplicaSet", format!("web-{hash}"), Some(true))
    );
    assert_eq!(agents[0].metadata.owner_references.as_ref().unwrap()[0].kind, "DaemonSet");
    assert_eq!(web0.metadata.labels.as_ref().unwrap()["app"], "web");
    assert_eq!(web0.spec.as_ref().unwrap().termination_grace_period_seconds, Some(30));

    sim.clock.sleep(1_999).await;
    assert!(api.pods("").await.iter().all(|p| !is_ready(p)));
    sim.clock.sleep(1).await;
    let pods = api.pods("").await;
    assert_eq!(pods.iter().filter(|p| is_ready(p)).count(), 6, "the scheduled ones start pod_start_ms after binding");
    let status = sim.status();
    assert_eq!(status.pods.iter().filter(|p| p.phase == "Running" && p.ready).count(), 6);
    let pending: Vec<_> = status.pods.iter().filter(|p| p.node.is_none()).collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].phase, "Pending");

    // A third node: the pending pod lands there, and the DaemonSet follows.
    let mut settings = sim.provider.observe(LINEAGE).await.unwrap().group("web-g1").unwrap().settings.clone();
    settings.desired = 3;
    sim.provider.update_group("web-g1", &settings).await.unwrap();
    sim.clock.sleep(5_000).await;
    let status = sim.status();
    assert_eq!(status.nodes.len(), 3);
    assert!(status.pods.iter().all(|p| p.node.is_some()));
    assert_eq!(status.pods.iter().filter(|p| p.owner_kind.as_deref() == Some("DaemonSet")).count(), 3);
    sim.clock.sleep(2_000).await;
    assert!(sim.status().pods.iter().all(|p| p.ready));
}

#[tokio::test]
async fn prefer_no_schedule_nodes_are_used_last() {
    let sim = Sim::new(SimConfig { pods_per_node: 3, ..config(vec![workload("web", 4)]) });
    sim.group("spot-g1", "spot", 1, &[], &["spot:PreferNoSchedule"]).await;
    sim.group("web-g1", "web", 1, &[], &[]).await;
    sim.clock.sleep(5_000).await;
    let status = sim.status();
    let spot = status.nodes.iter().find(|n| !n.taints.is_empty()).unwrap().name.clone();
    let on_spot = status.pods.iter().filter(|p| p.node.as_deref() == Some(spot.as_str())).count();
    assert_eq!(on_spot, 1, "three fit on the untainted node, the fourth goes to the spot node");
}

/// Three web pods on three nodes, a budget of minAvailable 2, all Ready at 7 s.
async fn web_of_three(extra: Vec<Workload>) -> Sim {
    let web = Workload { min_available: Some("2".into()), ..workload("web", 3) };
    let mut workloads = vec![web];
    workloads.extend(extra);
    let sim = Sim::new(config(workloads));
    sim.group("web-g1", "web", 3, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    sim
}

async fn web_pods(api: &Api) -> Vec<Pod> {
    api.pods("?labelSelector=app%3Dweb").await
}

#[tokio::test]
async fn evictions_respect_the_disruption_budget() {
    let sim = web_of_three(vec![]).await;
    let api = sim.api();
    let pods = web_pods(&api).await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(is_ready));
    assert_eq!(pdb_numbers(&api.pdb("web").await), (3, 2, 1, 3));

    let (code, body) = api.evict(&name(&pods[0]), json!({"preconditions": {"uid": uid(&pods[0])}})).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}));
    let (code, evicted) = api.pod(&name(&pods[0])).await;
    assert_eq!(code, 200);
    assert_eq!(evicted["metadata"]["deletionTimestamp"], "1970-01-01T00:00:37Z", "now plus the grace period");
    assert_eq!(evicted["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(pdb_numbers(&api.pdb("web").await), (2, 2, 0, 3));

    // The budget is spent: the API server's own 429.
    let (code, body) = api.evict(&name(&pods[1]), json!({})).await;
    assert_eq!(code, 429);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests", "code": 429,
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}})
    );

    // Gone after min(stop 1 s, grace 30 s); its replacement was made at once, and is Ready
    // pod_start_ms after it was bound.
    sim.clock.sleep(999).await;
    assert_eq!(api.pod(&name(&pods[0])).await.0, 200);
    sim.clock.sleep(1).await;
    let (code, gone) = api.pod(&name(&pods[0])).await;
    assert_eq!(code, 404);
    assert_eq!(gone["reason"], "NotFound");
    assert_eq!(gone["details"], json!({"name": name(&pods[0]), "kind": "pods"}));
    assert_eq!(web_pods(&api).await.len(), 3);
    sim.clock.sleep(1_000).await;
    assert_eq!(pdb_numbers(&api.pdb("web").await), (3, 2, 1, 3));

    // A grace period of 0 in the body: gone at once.
    let (code, _) = api.evict(&name(&pods[1]), json!({"gracePeriodSeconds": 0})).await;
    assert_eq!(code, 201);
    assert_eq!(api.pod(&name(&pods[1])).await.0, 404);

    // Absent, and the wrong uid.
    let (code, body) = api.evict("web-nope", json!({})).await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(body["message"], "pods \"web-nope\" not found");
    let (code, body) = api.evict(&name(&pods[2]), json!({"preconditions": {"uid": "not-its-uid"}})).await;
    assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        body["message"].as_str().unwrap().contains("Precondition failed: UID in precondition: not-its-uid"),
        "{body}"
    );
    assert_eq!(api.pod(&name(&pods[2])).await.0, 200);
    // The URL and the body must name the same pod.
    let (code, _) = api
        .call(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{}/eviction", name(&pods[2])),
            Some("application/json"),
            Some(json!({"metadata": {"name": "other"}})),
        )
        .await;
    assert_eq!(code, 400);
    // Nothing of this was a violation.
    assert!(violations(&sim.path).unwrap().is_empty());
}

#[tokio::test]
async fn a_pod_with_two_budgets_cannot_be_evicted_but_a_pending_one_can() {
    let guard = Workload {
        kind: WorkloadKind::Pod,
        replicas: 0,
        min_available: Some("1".into()),
        pdb_selector: BTreeMap::from([("app".into(), "web".into())]),
        ..workload("guard", 0)
    };
    let web = Workload { min_available: Some("1".into()), ..workload("web", 3) };
    let sim = Sim::new(SimConfig { pods_per_node: 1, ..config(vec![web, guard]) });
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let pods = web_pods(&api).await;
    let running = pods.iter().find(|p| is_ready(p)).unwrap();
    let (code, body) = api.evict(&name(running), json!({})).await;
    assert_eq!(code, 500);
    assert_eq!(body["reason"], "InternalError");
    assert_eq!(
        body["message"],
        "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    // A pending pod goes without a budget check (and is replaced at once).
    let pending = pods.iter().find(|p| p.spec.as_ref().unwrap().node_name.is_none()).unwrap();
    assert_eq!(api.evict(&name(pending), json!({})).await.0, 201);
    assert_eq!(api.pod(&name(pending)).await.0, 404, "never scheduled: gone at once");
    assert_eq!(web_pods(&api).await.len(), 3);
}

#[tokio::test]
async fn a_pod_that_never_terminates_stays_terminating_until_its_instance_is_gone() {
    let stuck = Workload { never_terminates: true, ..workload("stuck", 1) };
    let sim = Sim::new(config(vec![stuck]));
    let created = sim.group("web-g1", "web", 1, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let pod = api.pods("").await.remove(0);
    assert_eq!(api.evict(&name(&pod), json!({})).await.0, 201);
    sim.clock.sleep(600_000).await;
    let (code, still) = api.pod(&name(&pod)).await;
    assert_eq!(code, 200);
    assert!(still["metadata"]["deletionTimestamp"].is_string());
    assert!(sim.status().pods.iter().any(|p| p.name == name(&pod) && p.terminating));
    // Terminating the instance anyway: the pod goes with it, and the audit says so.
    let id = created.instances[0].id.clone();
    let node = sim.node_of(&id);
    sim.provider.terminate_instances("web-g1", std::slice::from_ref(&id), false).await.unwrap();
    assert_eq!(api.pod(&name(&pod)).await.0, 404);
    let audit = violations(&sim.path).unwrap();
    let [Violation::BoundPods { t_ms: 607_000, cluster, instance, node: n, pods }] = audit.as_slice() else {
        panic!("{audit:?}");
    };
    assert_eq!((cluster.as_str(), instance, n), ("prod", &id, &node));
    // The stuck pod, and its replacement that landed on the same (uncordoned) node.
    assert_eq!(pods.len(), 2);
    assert!(pods.contains(&format!("default/{}", name(&pod))));
}

#[tokio::test]
async fn cordons_labels_and_taints_are_merge_patches() {
    let sim = Sim::new(SimConfig { pods_per_node: 10, ..config(vec![workload("web", 2)]) });
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let nodes = api.nodes().await;
    let cordoned = nodes[0].metadata.name.clone().unwrap();
    let rv = nodes[0].metadata.resource_version.clone().unwrap();

    let (code, node) = api
        .patch_node(&cordoned, MERGE, json!({"spec": {"unschedulable": true}, "metadata": {"labels": {"drydock.dev/x": "1"}, "annotations": {"drydock.dev/cordoned": "true"}}}))
        .await;
    assert_eq!(code, 200, "{node}");
    let node: Node = serde_json::from_value(node).unwrap();
    assert_eq!(node.spec.as_ref().unwrap().unschedulable, Some(true));
    assert_eq!(node.metadata.labels.as_ref().unwrap()["drydock.dev/x"], "1");
    assert_eq!(node.metadata.annotations.as_ref().unwrap()["drydock.dev/cordoned"], "true");
    assert!(node.metadata.resource_version.unwrap().parse::<u64>().unwrap() > rv.parse::<u64>().unwrap());
    assert!(sim.status().nodes.iter().any(|n| n.name == cordoned && n.unschedulable));

    // New pods avoid the cordoned node.
    let more = SimProvider::new(
        &sim.path,
        SimConfig { pods_per_node: 10, ..config(vec![workload("web", 8)]) },
        ClockMode::Virtual,
    );
    more.clock().sleep(1).await;
    let status = sim.status();
    let on_cordoned = status.pods.iter().filter(|p| p.node.as_deref() == Some(cordoned.as_str())).count();
    assert_eq!(on_cordoned, 1, "only the pod that was there: {:?}", status.pods);
    assert_eq!(status.pods.len(), 8);

    // A strategic merge patch: null removes a label; taints are replaced as a whole.
    let (code, node) = api
        .patch_node(
            &cordoned,
            "application/strategic-merge-patch+json",
            json!({"metadata": {"labels": {"drydock.dev/x": null}}, "spec": {"taints": [{"key": "drydock.dev/outdated", "effect": "PreferNoSchedule"}]}}),
        )
        .await;
    assert_eq!(code, 200, "{node}");
    assert!(node["metadata"]["labels"].get("drydock.dev/x").is_none());
    let s = sim.status();
    let n = s.nodes.iter().find(|n| n.name == cordoned).unwrap();
    assert_eq!(
        serde_json::to_value(&n.taints).unwrap(),
        json!([{"key": "drydock.dev/outdated", "effect": "PreferNoSchedule"}])
    );
    assert!(!n.labels.contains_key("drydock.dev/x"));

    // Uncordon, then what is refused.
    let (code, node) = api.patch_node(&cordoned, MERGE, json!({"spec": {"unschedulable": null, "taints": null}})).await;
    assert_eq!(code, 200);
    assert!(node["spec"].get("unschedulable").is_none() && node["spec"].get("taints").is_none(), "{node}");
    assert_eq!(api.patch_node(&cordoned, "application/json-patch+json", json!([])).await.0, 415);
    let (code, body) =
        api.patch_node(&cordoned, MERGE, json!({"spec": {"taints": [{"key": "k", "effect": "Always"}]}})).await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
    let (code, body) = api.patch_node("ip-10-0-0-0.sim.internal", MERGE, json!({})).await;
    assert_eq!((code, body["message"].as_str()), (404, Some("nodes \"ip-10-0-0-0.sim.internal\" not found")));
    let (code, body) = api.patch_node(&cordoned, MERGE, json!({"metadata": {"resourceVersion": "1"}})).await;
    assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));
    let (code, _) =
        api.raw(Some(&api.endpoint.token), "PATCH", &format!("/api/v1/nodes/{cordoned}"), Some(MERGE), b"{oops").await;
    assert_eq!(code, 400);
    assert_eq!(api.call("PUT", &format!("/api/v1/nodes/{cordoned}"), None, None).await.0, 405);
    assert_eq!(api.get("/api/v1/configmaps").await.0, 404);
}

#[tokio::test]
async fn terminating_an_undrained_instance_is_a_violation_and_draining_first_is_not() {
    let web = Workload { min_available: Some("2".into()), ..workload("web", 2) };
    let agent = Workload { kind: WorkloadKind::DaemonSet, ..workload("agent", 0) };
    let sim = Sim::new(SimConfig { pods_per_node: 1, ..config(vec![web, agent]) });
    let created = sim.group("web-g1", "web", 3, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let status = sim.status();
    let with_web = |s: &Status, id: &str| {
        let node = s.nodes.iter().find(|n| n.instance.as_deref() == Some(id)).unwrap().name.clone();
        s.pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(node.as_str()) && p.name.starts_with("web-"))
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    let busy: Vec<&String> =
        created.instances.iter().map(|i| &i.id).filter(|id| !with_web(&status, id).is_empty()).collect();
    let idle = created.instances.iter().map(|i| &i.id).find(|id| with_web(&status, id).is_empty()).unwrap().clone();
    assert_eq!(busy.len(), 2);

    // Draining first: cordon, evict (the budget of 2 allows none, so the pod stays), ... so
    // drain the idle node instead, which holds only its DaemonSet pod: terminating it is fine.
    let idle_node = sim.node_of(&idle);
    assert_eq!(api.patch_node(&idle_node, MERGE, json!({"spec": {"unschedulable": true}})).await.0, 200);
    sim.provider.terminate_instances("web-g1", std::slice::from_ref(&idle), true).await.unwrap();
    assert!(violations(&sim.path).unwrap().is_empty(), "DaemonSet pods do not count");
    // Its Node stays, Unknown, until someone deletes it.
    sim.clock.sleep(60_000).await;
    let node = api.node(&idle_node).await;
    assert_eq!(node_ready(&node).0, "Unknown");
    assert_eq!(node_ready(&node).1, "NodeStatusUnknown");
    assert!(!sim.status().pods.iter().any(|p| p.node.as_deref() == Some(idle_node.as_str())));
    let (code, deleted) = api.call("DELETE", &format!("/api/v1/nodes/{idle_node}"), None, None).await;
    assert_eq!((code, deleted["metadata"]["name"].as_str()), (200, Some(idle_node.as_str())));
    assert_eq!(api.get(&format!("/api/v1/nodes/{idle_node}")).await.0, 404);
    assert_eq!(api.call("DELETE", &format!("/api/v1/nodes/{idle_node}"), None, None).await.0, 404);
    assert!(!sim.status().nodes.iter().any(|n| n.name == idle_node));

    // Terminating a node with a web pod on it, undrained: the pod was bound, and the budget
    // fell below its minimum.
    let t = sim.clock.now_ms();
    let victim = busy[0].clone();
    let victim_node = sim.node_of(&victim);
    let pods = with_web(&sim.status(), &victim);
    sim.provider.terminate_instances("web-g1", std::slice::from_ref(&victim), false).await.unwrap();
    let audit = violations(&sim.path).unwrap();
    assert_eq!(
        audit,
        [
            Violation::BoundPods {
                t_ms: t,
                cluster: "prod".into(),
                instance: victim.clone(),
                node: victim_node,
                pods: pods.iter().map(|p| format!("default/{p}")).collect(),
            },
            Violation::Budget {
                t_ms: t,
                cluster: "prod".into(),
                budget: "default/web".into(),
                healthy: 1,
                desired: 2,
                cause: Cause::Termination,
                pod: None,
                instance: Some(victim),
            },
        ]
    );
    // Deleting a Ready pod below the budget is one too (the DELETE bypasses budgets).
    sim.clock.sleep(10_000).await;
    let ready: Vec<Pod> = web_pods(&api).await.into_iter().filter(is_ready).collect();
    let (code, deleted) = api
        .call(
            "DELETE",
            &format!("/api/v1/namespaces/default/pods/{}", name(&ready[0])),
            Some("application/json"),
            Some(json!({"gracePeriodSeconds": 5, "preconditions": {"uid": uid(&ready[0])}})),
        )
        .await;
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 5);
    let last = violations(&sim.path).unwrap().pop().unwrap();
    assert!(
        matches!(last, Violation::Budget { cause: Cause::Deletion, ref pod, .. } if *pod == Some(format!("default/{}", name(&ready[0])))),
        "{last:?}"
    );
    // A DELETE with the wrong uid, and of nothing.
    let (code, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/namespaces/default/pods/{}", name(&ready[1])),
            None,
            Some(json!({"preconditions": {"uid": "x"}})),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(api.call("DELETE", "/api/v1/namespaces/default/pods/nope", None, None).await.0, 404);
}

#[tokio::test]
async fn a_drained_node_terminates_without_violations() {
    let web = Workload { min_available: Some("1".into()), ..workload("web", 2) };
    let sim = Sim::new(SimConfig { pods_per_node: 1, ..config(vec![web]) });
    let created = sim.group("web-g1", "web", 3, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let s = sim.status();
    let (id, node) = created
        .instances
        .iter()
        .map(|i| (i.id.clone(), sim.node_of(&i.id)))
        .find(|(_, n)| s.pods.iter().any(|p| p.node.as_deref() == Some(n.as_str())))
        .unwrap();
    // Drain: cordon, evict everything, wait until it is gone.
    assert_eq!(api.patch_node(&node, MERGE, json!({"spec": {"unschedulable": true}})).await.0, 200);
    for pod in api.pods(&format!("?fieldSelector=spec.nodeName%3D{node}")).await {
        assert_eq!(api.evict(&name(&pod), json!({"preconditions": {"uid": uid(&pod)}})).await.0, 201);
    }
    sim.clock.sleep(1_000).await;
    assert!(api.pods(&format!("?fieldSelector=spec.nodeName%3D{node}")).await.is_empty());
    sim.provider.terminate_instances("web-g1", &[id], true).await.unwrap();
    sim.clock.sleep(10_000).await;
    assert!(violations(&sim.path).unwrap().is_empty(), "{:?}", violations(&sim.path));
    assert_eq!(web_pods(&api).await.iter().filter(|p| is_ready(p)).count(), 2);
}

#[tokio::test]
async fn a_failed_kubelet_makes_the_node_unknown_while_the_instance_stays_healthy() {
    let web = Workload { min_available: Some("1".into()), ..workload("web", 2) };
    let sim = Sim::new(SimConfig { pods_per_node: 1, ..config(vec![web]) });
    let created = sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let id = created.instances[0].id.clone();
    let node = sim.node_of(&id);
    let failed =
        fail(&sim.path, FailTarget::Kubelet { instance: Some(id.clone()), cluster: None, node_group: None, count: 0 })
            .unwrap();
    assert_eq!(failed, std::slice::from_ref(&id));
    let n = api.node(&node).await;
    assert_eq!(node_ready(&n), ("Unknown".into(), "NodeStatusUnknown".into(), "1970-01-01T00:00:07Z".into()));
    let group = sim.provider.observe(LINEAGE).await.unwrap().group("web-g1").unwrap().clone();
    let i = group.instances.iter().find(|i| i.id == id).unwrap();
    assert!(i.state == InstanceState::Running && i.healthy, "the cloud sees nothing wrong");
    let on_node: Vec<Pod> = api.pods(&format!("?fieldSelector=spec.nodeName%3D{node}")).await;
    assert_eq!(on_node.len(), 1);
    assert!(!is_ready(&on_node[0]));
    assert_eq!(pdb_numbers(&api.pdb("web").await), (1, 1, 0, 2));
    // A pod that is not ready may go while the budget is met; on a node whose kubelet is away
    // it stays Terminating, unless deleted with a grace period of 0.
    assert_eq!(api.evict(&name(&on_node[0]), json!({})).await.0, 201);
    sim.clock.sleep(60_000).await;
    assert_eq!(api.pod(&name(&on_node[0])).await.0, 200);
    let path = format!("/api/v1/namespaces/default/pods/{}", name(&on_node[0]));
    assert_eq!(api.call("DELETE", &format!("{path}?gracePeriodSeconds=0"), None, None).await.0, 200);
    assert_eq!(api.pod(&name(&on_node[0])).await.0, 404);
    assert!(violations(&sim.path).unwrap().is_empty(), "nobody chose the kubelet failure");
    // Still Unknown a while later; the kubelet does not come back.
    sim.clock.sleep(600_000).await;
    assert_eq!(node_ready(&api.node(&node).await).0, "Unknown");

    // Scheduled, by node group.
    let at = schedule_fail(
        &sim.path,
        FailTarget::Kubelet { instance: None, cluster: Some("prod".into()), node_group: Some("web".into()), count: 1 },
        1_000,
    )
    .unwrap();
    assert_eq!(at, sim.clock.now_ms() + 1_000);
    sim.clock.sleep(1_000).await;
    assert!(sim.status().nodes.iter().all(|n| n.ready == ConditionStatus::Unknown));
    let err = fail(
        &sim.path,
        FailTarget::Kubelet { instance: None, cluster: None, node_group: Some("web".into()), count: 1 },
    );
    assert!(err.is_err(), "no working kubelet left to fail");
}

#[tokio::test]
async fn a_crash_makes_the_node_unknown_and_its_replacement_registers() {
    let sim = Sim::new(config(vec![workload("web", 1)]));
    let created = sim.group("web-g1", "web", 1, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let id = created.instances[0].id.clone();
    fail(&sim.path, FailTarget::Instance(id.clone())).unwrap();
    let s = sim.status();
    assert_eq!(s.nodes[0].ready, ConditionStatus::Unknown);
    assert!(!s.pods[0].ready);
    // Replaced after the detection delay (10 s); the replacement's node joins 5 s later and
    // the pod, killed with the old instance, runs there.
    sim.clock.sleep(17_000).await;
    let s = sim.status();
    assert_eq!(s.nodes.len(), 2);
    assert_eq!(s.nodes.iter().filter(|n| n.ready == ConditionStatus::True).count(), 1);
    assert!(s.pods.len() == 1 && s.pods[0].ready, "{:?}", s.pods);
    assert!(violations(&sim.path).unwrap().is_empty(), "the crash and its replacement chose nothing");
}

#[tokio::test]
async fn workloads_follow_the_configuration() {
    let db = Workload { kind: WorkloadKind::StatefulSet, ..workload("db", 2) };
    let jobs = Workload { kind: WorkloadKind::Pod, namespace: "batch".into(), ..workload("job", 2) };
    let sim = Sim::new(config(vec![workload("web", 2), db, jobs]));
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let names = |s: &Status| s.pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>();
    let s = sim.status();
    assert!(names(&s).contains(&"default/db-0".to_string()) && names(&s).contains(&"default/db-1".to_string()));
    assert!(names(&s).contains(&"batch/job-0".to_string()) && names(&s).contains(&"batch/job-1".to_string()));
    assert_eq!(s.pods.iter().filter(|p| p.name.starts_with("web-")).count(), 2);
    let api = sim.api();
    // A StatefulSet's ordinal comes back once its old pod is gone; a bare pod never does.
    assert_eq!(api.evict("db-0", json!({})).await.0, 201);
    let bare = api.call("DELETE", "/api/v1/namespaces/batch/pods/job-0", None, None).await;
    assert_eq!(bare.0, 200);
    assert!(
        !names(&sim.status()).contains(&"default/db-0".to_string())
            || sim.status().pods.iter().any(|p| p.name == "db-0" && p.terminating)
    );
    sim.clock.sleep(1_000).await;
    let s = sim.status();
    let db0 = s.pods.iter().find(|p| p.name == "db-0").expect("db-0 made again");
    assert!(!db0.terminating);
    assert!(!names(&s).contains(&"batch/job-0".to_string()));
    assert_eq!(s.pods.iter().find(|p| p.name == "db-1").unwrap().owner_kind.as_deref(), Some("StatefulSet"));
    assert_eq!(s.pods.iter().find(|p| p.name == "job-1").unwrap().owner_kind, None);

    // Another configuration: web scales to 4, db goes, jobs stay.
    let jobs = Workload { kind: WorkloadKind::Pod, namespace: "batch".into(), ..workload("job", 2) };
    let other = SimProvider::new(&sim.path, config(vec![workload("web", 4), jobs]), ClockMode::Virtual);
    other.clock().sleep(1_000).await;
    let s = sim.status();
    assert_eq!(s.pods.iter().filter(|p| p.name.starts_with("web-")).count(), 4);
    assert!(!s.pods.iter().any(|p| p.name.starts_with("db-")), "{:?}", names(&s));
    assert_eq!(s.pods.iter().filter(|p| p.namespace == "batch").count(), 1);
}

#[tokio::test]
async fn lists_filter_and_page() {
    let sim = Sim::new(SimConfig { pods_per_node: 10, ..config(vec![workload("web", 3), workload("api", 2)]) });
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(5_000).await;
    let api = sim.api();
    assert_eq!(api.pods("?labelSelector=app%3Dweb").await.len(), 3);
    assert_eq!(api.pods("?labelSelector=app+in+%28web%2Capi%29").await.len(), 5);
    assert_eq!(api.pods("?labelSelector=app%21%3Dweb").await.len(), 2);
    let node = api.nodes().await[0].metadata.name.clone().unwrap();
    let on_node = api.pods(&format!("?fieldSelector=spec.nodeName%3D{node}")).await;
    assert!(!on_node.is_empty());
    assert!(on_node.iter().all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(node.as_str())));
    let namespaced = api.get("/api/v1/namespaces/default/pods").await.1;
    assert_eq!(namespaced["items"].as_array().unwrap().len(), 5);
    assert!(api.get("/api/v1/namespaces/other/pods").await.1["items"].as_array().unwrap().is_empty());
    assert_eq!(api.get("/api/v1/pods?fieldSelector=spec.nope%3D1").await.0, 400);

    // Two at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (code, page) = api.get(&format!("/api/v1/pods?limit=2&continue={token}")).await;
        assert_eq!(code, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()));
        assert!(page["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap() > 0);
        match page["metadata"]["continue"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    let mut all: Vec<String> = api.pods("").await.iter().map(name).collect();
    all.sort();
    assert_eq!(seen, all);

    let (code, pdbs) = api.get("/apis/policy/v1/poddisruptionbudgets").await;
    assert_eq!((code, pdbs["kind"].as_str()), (200, Some("PodDisruptionBudgetList")));
    assert!(pdbs["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_api_wants_the_token() {
    let sim = Sim::new(config(vec![]));
    let api = sim.api();
    let (code, body) = api.raw(None, "GET", "/api/v1/nodes", None, b"").await;
    assert_eq!(code, 401);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    assert_eq!(api.raw(Some("wrong"), "GET", "/api/v1/nodes", None, b"").await.0, 401);
    assert_eq!(api.raw(Some(&api.endpoint.token), "GET", "/api/v1/nodes", None, b"").await.0, 200);
    assert_eq!(api.endpoint.token.len(), 32);
    assert_ne!(sim.provider.kubernetes("other").unwrap().token, api.endpoint.token);
    // Discovery's version needs none.
    let (code, version) = api.raw(None, "GET", "/version", None, b"").await;
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
}

/// A fixed scenario with writes through the API; the status and the world file.
async fn scenario() -> (String, Vec<u8>) {
    let web = Workload { min_available: Some("50%".into()), ..workload("web", 4) };
    let agent = Workload { kind: WorkloadKind::DaemonSet, ..workload("agent", 0) };
    let sim = Sim::new(SimConfig { pods_per_node: 2, ..config(vec![web, agent]) });
    let created = sim.group("web-g1", "web", 3, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let node = sim.node_of(&created.instances[0].id);
    api.patch_node(&node, MERGE, json!({"spec": {"unschedulable": true}})).await;
    for pod in api.pods(&format!("?fieldSelector=spec.nodeName%3D{node}")).await {
        api.evict(&name(&pod), json!({})).await;
    }
    sim.clock.sleep(3_000).await;
    sim.provider.terminate_instances("web-g1", &[created.instances[0].id.clone()], false).await.unwrap();
    sim.clock.sleep(10_000).await;
    (serde_json::to_string(&sim.status()).unwrap(), std::fs::read(&sim.path).unwrap())
}

#[tokio::test]
async fn the_same_ops_give_the_same_cluster() {
    let (a, world_a) = scenario().await;
    let (b, world_b) = scenario().await;
    assert_eq!(a, b);
    assert!(world_a == world_b, "the world files differ");
}

#[tokio::test]
async fn another_process_sees_what_the_api_changed() {
    let sim = Sim::new(config(vec![workload("web", 2)]));
    sim.group("web-g1", "web", 2, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let api = sim.api();
    let node = api.nodes().await[0].metadata.name.clone().unwrap();
    assert_eq!(api.patch_node(&node, MERGE, json!({"spec": {"unschedulable": true}})).await.0, 200);
    let pod = api.pods("").await.remove(0);
    assert_eq!(api.evict(&name(&pod), json!({})).await.0, 201);

    // Another process: its own provider (its own copy of the world) and its own server.
    let other = SimProvider::new(&sim.path, config(vec![workload("web", 2)]), ClockMode::Virtual);
    let theirs = Api { endpoint: other.kubernetes("prod").unwrap() };
    assert_ne!(theirs.endpoint, api.endpoint);
    assert_eq!(theirs.node(&node).await.spec.unwrap().unschedulable, Some(true));
    let (code, seen) = theirs.pod(&name(&pod)).await;
    assert_eq!(code, 200);
    assert!(seen["metadata"]["deletionTimestamp"].is_string());
    // Its time is the world's: once it sleeps past the stop time, the first server sees the
    // pod gone.
    other.clock().sleep(1_000).await;
    assert_eq!(api.pod(&name(&pod)).await.0, 404);
    assert!(sim.status().nodes.iter().any(|n| n.name == node && n.unschedulable));
}

#[tokio::test]
async fn a_world_that_cannot_be_read_is_unavailable() {
    let sim = Sim::new(config(vec![]));
    sim.group("web-g1", "web", 1, &[], &[]).await;
    let api = sim.api();
    std::fs::write(&sim.path, b"S garbage").unwrap();
    let (code, body) = api.get("/api/v1/nodes").await;
    assert_eq!((code, body["reason"].as_str()), (503, Some("ServiceUnavailable")));
}

#[tokio::test]
async fn status_json_has_the_documented_shape() {
    let web = Workload { min_available: Some("2".into()), ..workload("web", 2) };
    let sim = Sim::new(SimConfig { pods_per_node: 1, ..config(vec![web]) });
    let created = sim.group("web-g1", "web", 2, &[("role", "web")], &["spot:PreferNoSchedule"]).await;
    sim.clock.sleep(7_000).await;
    sim.provider.terminate_instances("web-g1", &[created.instances[0].id.clone()], true).await.unwrap();
    let mut json = serde_json::to_value(sim.status()).unwrap();
    json.as_object_mut().unwrap().remove("groups");
    expect_test::expect![[r#"
        {
          "etcd": [],
          "nodes": [
            {
              "cluster": "prod",
              "instance": "i-06434ff62b4e8edd1",
              "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": "ip-10-130-246-30.sim.internal",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.large",
                "role": "web",
                "topology.kubernetes.io/zone": "zone-b"
              },
              "name": "ip-10-130-246-30.sim.internal",
              "ready": "True",
              "taints": [
                {
                  "effect": "PreferNoSchedule",
                  "key": "spot"
                }
              ],
              "unschedulable": false
            },
            {
              "cluster": "prod",
              "instance": "i-0808475f02ee37363",
              "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": "ip-10-211-175-170.sim.internal",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.large",
                "role": "web",
                "topology.kubernetes.io/zone": "zone-a"
              },
              "name": "ip-10-211-175-170.sim.internal",
              "ready": "Unknown",
              "taints": [
                {
                  "effect": "PreferNoSchedule",
                  "key": "spot"
                }
              ],
              "unschedulable": false
            }
          ],
          "now_ms": 7000,
          "pods": [
            {
              "cluster": "prod",
              "name": "web-0824d634bb-n6bwn",
              "namespace": "default",
              "node": null,
              "owner_kind": "ReplicaSet",
              "phase": "Pending",
              "ready": false,
              "terminating": false
            },
            {
              "cluster": "prod",
              "name": "web-0824d634bb-qptll",
              "namespace": "default",
              "node": "ip-10-130-246-30.sim.internal",
              "owner_kind": "ReplicaSet",
              "phase": "Running",
              "ready": true,
              "terminating": false
            }
          ],
          "violations": [
            {
              "cluster": "prod",
              "instance": "i-0808475f02ee37363",
              "kind": "bound_pods",
              "node": "ip-10-211-175-170.sim.internal",
              "pods": [
                "default/web-0824d634bb-lsft9"
              ],
              "t_ms": 7000
            },
            {
              "budget": "default/web",
              "cause": "termination",
              "cluster": "prod",
              "desired": 2,
              "healthy": 1,
              "instance": "i-0808475f02ee37363",
              "kind": "budget",
              "pod": null,
              "t_ms": 7000
            }
          ]
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&json).unwrap());
}

#[tokio::test]
async fn serve_writes_a_kubeconfig_and_serves_every_cluster() {
    let sim = Sim::new(config(vec![]));
    sim.group("web-g1", "web", 1, &[], &[]).await;
    sim.clock.sleep(5_000).await;
    let kubeconfig = sim._dir.path().join("kube").join("config");
    let server = tokio::spawn(drydock_sim::serve(sim.path.clone(), kubeconfig.clone()));
    let mut text = String::new();
    for _ in 0..500 {
        if let Ok(t) = std::fs::read_to_string(&kubeconfig) {
            text = t;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777, 0o600);
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["current-context"], "sim-prod");
    assert_eq!(
        config["contexts"][0],
        json!({"name": "sim-prod", "context": {"cluster": "sim-prod", "user": "sim-prod"}})
    );
    let endpoint = SimEndpoint {
        url: config["clusters"][0]["cluster"]["server"].as_str().unwrap().to_string(),
        token: config["users"][0]["user"]["token"].as_str().unwrap().to_string(),
    };
    assert_eq!(Api { endpoint }.nodes().await.len(), 1);
    server.abort();
}

/// kube-rs, the client drydock uses, against the simulated API server.
#[tokio::test]
async fn kube_rs_speaks_to_the_simulated_cluster() {
    use k8s_openapi::api::policy::v1::Eviction;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
    use kube::api::{Api as KubeApi, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};

    let web = Workload { min_available: Some("2".into()), ..workload("web", 3) };
    let sim = Sim::new(config(vec![web]));
    sim.group("web-g1", "web", 3, &[], &[]).await;
    sim.clock.sleep(7_000).await;
    let endpoints = BTreeMap::from([("prod".to_string(), sim.provider.kubernetes("prod").unwrap())]);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&drydock_sim::kubeconfig(&endpoints)).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    // kube retries 429s (15 times, backing off exponentially: minutes) unless told not to; an
    // eviction blocked by a budget is a 429 to act on, not to wait out.
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();

    let nodes: KubeApi<Node> = KubeApi::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3);
    let first = nodes.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let rest = nodes
        .list(&ListParams::default().limit(5).continue_token(first.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    let node = list.items[0].metadata.name.clone().unwrap();
    let patched = nodes
        .patch(&node, &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": true}})))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().unschedulable, Some(true));
    let strategic = nodes
        .patch(&node, &PatchParams::default(), &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    assert_eq!(strategic.metadata.labels.unwrap()["a"], "b");

    let pods: KubeApi<Pod> = KubeApi::namespaced(client.clone(), "default");
    let on_node = pods.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))).await.unwrap();
    assert_eq!(on_node.items.len(), 1);
    let victim = on_node.items[0].clone();
    let pdbs: KubeApi<PodDisruptionBudget> = KubeApi::all(client.clone());
    assert_eq!(pdb_numbers(&pdbs.list(&ListParams::default()).await.unwrap().items[0]), (3, 2, 1, 3));

    // An Eviction with a stale uid: 409, as kube's error.
    let eviction = |uid: &str| Eviction {
        metadata: ObjectMeta {
            name: victim.metadata.name.clone(),
            namespace: Some("default".into()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        }),
    };
    let stale = pods
        .create_subresource::<Eviction, kube::core::Status>(
            "eviction",
            &name(&victim),
            &PostParams::default(),
            &eviction("stale"),
        )
        .await;
    assert!(matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409), "{stale:?}");
    let done = pods
        .create_subresource::<Eviction, kube::core::Status>(
            "eviction",
            &name(&victim),
            &PostParams::default(),
            &eviction(&uid(&victim)),
        )
        .await
        .unwrap();
    assert_eq!(done.code, 201);
    // The budget is spent: kube's own evict gets the 429.
    let other = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| name(p) != name(&victim) && is_ready(p))
        .unwrap();
    let blocked = pods.evict(&name(&other), &EvictParams::default()).await;
    match blocked {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 429);
            assert_eq!(s.reason, "TooManyRequests");
            let cause = &s.details.unwrap().causes[0];
            assert_eq!(cause.message, "The disruption budget web needs 2 healthy pods and has 2 currently");
        }
        other => panic!("{other:?}"),
    }
    // kube's `evict` sends its options as `delete_options`, which the API server does not
    // know and ignores: a uid precondition given that way is not checked.
    sim.clock.sleep(3_000).await;
    let stale = kube::api::Preconditions { uid: Some("stale".into()), resource_version: None };
    let params =
        EvictParams { delete_options: Some(DeleteParams::default().preconditions(stale)), ..EvictParams::default() };
    assert!(pods.evict(&name(&other), &params).await.is_ok());

    let deleted = nodes.delete(&node, &DeleteParams::default()).await.unwrap();
    assert!(deleted.left().is_some_and(|n| n.metadata.name.as_deref() == Some(node.as_str())));
    assert!(matches!(nodes.get(&node).await, Err(kube::Error::Api(s)) if s.code == 404));
}
