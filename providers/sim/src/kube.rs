//! The simulated Kubernetes: per cluster, its Nodes (registered by the instances' kubelets),
//! the Pods its workloads' controllers keep, its PodDisruptionBudgets, the scheduler, and the
//! API server's writes (node patch and delete, pod delete, eviction). Part of the [`World`]:
//! every change is an op or an event of the world's queue, applied in time order, depending on
//! nothing but the world (the crate docs describe the model).
//!
//! # Cost
//!
//! As the world's, in proportion to what changes: derived indexes, never stored and rebuilt by
//! [`Kube::reindex`], give each instance's Node, each node's pods, each workload's pods, each
//! cluster's unscheduled pods and the queue of Kubernetes events (nodes joining, pods starting
//! and exiting); settling looks only at the workloads, nodes and clusters that changes marked.
//! A budget's status is computed when asked (by an eviction, the audit or the API) from the pods
//! of its namespace.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use drydock_provider::kube::{ConditionStatus, Taint};
use drydock_provider::InstanceState;
use serde::{Deserialize, Serialize};

use crate::config::{Workload, WorkloadKind};
use crate::status::{Cause, NodeStatus, PodStatus, Violation};
use crate::world::World;
use crate::SimError;

/// The audit keeps this many of the most recent violations.
pub const VIOLATION_LIMIT: usize = 10_000;
/// The annotation of a workload's pods when it is `do_not_disrupt`.
pub(crate) const DO_NOT_DISRUPT: &str = "drydock.dev/do-not-disrupt";
/// The characters of generated name suffixes (Kubernetes' own: no vowels, no confusables).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Settling runs controllers and the scheduler until nothing is left to do; this many rounds
/// at most, so that no world (a hand-edited one included) can make it loop.
const MAX_ROUNDS: usize = 64;

/// A pod's key in its cluster: (namespace, name).
pub(crate) type PodKey = (String, String);

/// Everything Kubernetes in the world file, and its indexes.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct Kube {
    /// Bumped by every change of a Kubernetes object: objects' `resourceVersion` is the
    /// revision of their last change, lists' the current one.
    #[serde(default)]
    pub revision: u64,
    /// The creation number of the next pod (the scheduler's queue order).
    #[serde(default)]
    next_pod: u64,
    #[serde(default)]
    pub clusters: BTreeMap<String, Cluster>,
    /// Instances whose Node registers at the given time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    joining: BTreeMap<String, u64>,
    /// Instances whose kubelet has failed (until the instance is gone).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    broken: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub violations: VecDeque<Violation>,
    #[serde(skip)]
    index: KubeIndex,
}

/// One cluster's objects.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct Cluster {
    /// A Node has registered here at some point: the workloads of every cluster run here.
    #[serde(default)]
    pub joined: bool,
    #[serde(default, with = "keyed")]
    pub nodes: BTreeMap<String, Node>,
    #[serde(default, with = "keyed")]
    pub pods: BTreeMap<PodKey, Pod>,
    #[serde(default, with = "keyed")]
    pub pdbs: BTreeMap<PodKey, Pdb>,
    /// How many bare pods each workload (namespace → name) has made: they are made once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    bare: BTreeMap<String, BTreeMap<String, u32>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub uid: String,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub kubelet_version: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub rv: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(default = "unknown")]
    pub ready: ConditionStatus,
    #[serde(default)]
    pub ready_since_ms: u64,
    /// Why a Node whose kubelet reports is not Ready (`ready` False): a control-plane Node
    /// waiting for its etcd member, or whose member failed to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
}

impl Node {
    pub fn is_ready(&self) -> bool {
        self.ready == ConditionStatus::True
    }

    pub fn provider_id(&self) -> Option<String> {
        self.instance.as_ref().map(|id| format!("sim:///{}/{id}", self.zone))
    }

    /// Not-DaemonSet pods may be scheduled here (taints and cordon allowing).
    fn accepts_pods(&self) -> bool {
        self.is_ready()
            && !self.unschedulable
            && !self.taints.iter().any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    }

    fn prefers_no_pods(&self) -> bool {
        self.taints.iter().any(|t| t.effect == "PreferNoSchedule")
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Creation order.
    #[serde(default)]
    pub seq: u64,
    /// The workload (of this namespace) it belongs to.
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub kind: WorkloadKind,
    /// Its controller's name (the ReplicaSet, StatefulSet or DaemonSet); none for bare pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub rv: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub grace_s: u64,
    #[serde(default)]
    pub stop_ms: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub never_terminates: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_dir: bool,
    /// `spec.nodeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_at_ms: Option<u64>,
    /// When a bound pod starts (if its node is Ready then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_ms: Option<u64>,
    /// Since when it is Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ready: bool,
    #[serde(default)]
    pub ready_since_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Deletion>,
}

/// A pod being deleted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Deletion {
    /// When it was asked to stop.
    pub at_ms: u64,
    /// The grace period it was given.
    pub grace_s: u64,
    /// When it is gone; `None` while it is stuck (it never exits, or its kubelet is away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at_ms: Option<u64>,
}

impl Pod {
    pub fn key(&self) -> PodKey {
        (self.namespace.clone(), self.name.clone())
    }

    pub fn phase(&self) -> &'static str {
        if self.running_at_ms.is_some() {
            "Running"
        } else {
            "Pending"
        }
    }

    /// Ready and not terminating: what a budget counts as healthy.
    pub fn is_healthy(&self) -> bool {
        self.ready && self.deletion.is_none()
    }

    fn is_daemon(&self) -> bool {
        self.kind == WorkloadKind::DaemonSet
    }

    fn event(&self, cluster: &str) -> Option<(u64, Event)> {
        let at = match &self.deletion {
            Some(d) => (d.gone_at_ms?, EventKind::Gone),
            None => (self.start_at_ms?, EventKind::Start),
        };
        Some((at.0, Event::Pod(at.1, cluster.to_string(), self.namespace.clone(), self.name.clone())))
    }
}

/// A PodDisruptionBudget (made for every workload that asks for one).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Pdb {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub rv: u64,
    /// `matchLabels`.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<String>,
}

impl Pdb {
    pub fn covers(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace && self.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
    }
}

/// A budget's status, as the disruption controller computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BudgetStatus {
    pub expected: i32,
    pub desired: i32,
    pub current: i32,
    pub allowed: i32,
}

/// What a node patch changes (a JSON merge patch, parsed): `None` leaves a field alone;
/// labels and annotations mapped to `None` are removed; `clear_*` removes all of them first.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub(crate) struct NodeChange {
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear_labels: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear_annotations: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
    /// `metadata.resourceVersion`: a precondition when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// An API error, as the API server reports it (a `Status` object).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details.kind` and `details.name`.
    pub details: Option<(&'static str, String)>,
    /// `details.causes`: (reason, message).
    pub causes: Vec<(Option<String>, String)>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: None, causes: Vec::new() }
    }

    pub fn not_found(kind: &'static str, name: &str) -> ApiError {
        ApiError {
            details: Some((kind, name.to_string())),
            ..ApiError::new(404, "NotFound", format!("{kind} \"{name}\" not found"))
        }
    }

    fn conflict(kind: &'static str, name: &str, why: String) -> ApiError {
        ApiError {
            details: Some((kind, name.to_string())),
            ..ApiError::new(409, "Conflict", format!("Operation cannot be fulfilled on {kind} \"{name}\": {why}"))
        }
    }

    fn uid_mismatch(kind: &'static str, name: &str, wanted: &str, actual: &str) -> ApiError {
        ApiError::conflict(
            kind,
            name,
            format!("Precondition failed: UID in precondition: {wanted}, UID in object meta: {actual}"),
        )
    }

    fn modified(kind: &'static str, name: &str) -> ApiError {
        ApiError::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again".to_string(),
        )
    }

    pub fn internal(message: &str) -> ApiError {
        ApiError {
            causes: vec![(None, message.to_string())],
            ..ApiError::new(500, "InternalError", format!("Internal error occurred: {message}"))
        }
    }
}

/// The derived indexes (see the module docs).
#[derive(Debug, Default)]
struct KubeIndex {
    /// Nodes joining, pods starting and exiting, in time order.
    events: BTreeSet<(u64, Event)>,
    /// Every instance's Node: (cluster, node name).
    node_of: HashMap<String, (String, String)>,
    /// The pods bound to each node (cluster, node), and how many are not DaemonSet pods.
    on_node: HashMap<(String, String), OnNode>,
    /// Each workload's pods: (cluster, namespace, workload) → pod names.
    by_workload: HashMap<(String, String, String), BTreeSet<String>>,
    /// Each cluster's pods waiting for a node, in creation order: (seq, namespace, name).
    unscheduled: BTreeMap<String, BTreeSet<(u64, String, String)>>,
    /// What settling must look at: workloads (cluster, namespace, name), nodes for the
    /// DaemonSets (cluster, node), clusters for the scheduler.
    dirty_workloads: BTreeSet<(String, String, String)>,
    dirty_nodes: BTreeSet<(String, String)>,
    dirty_schedule: BTreeSet<String>,
    steps: u64,
}

#[derive(Debug, Default)]
struct OnNode {
    pods: BTreeSet<PodKey>,
    /// Pods that are not DaemonSet pods: what the scheduler's capacity counts.
    workload_pods: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    Start,
    Gone,
}

/// A Kubernetes event of the world's queue: an instance's Node registering, or a pod
/// (cluster, namespace, name) starting or exiting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Join(String),
    Pod(EventKind, String, String, String),
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn unknown() -> ConditionStatus {
    ConditionStatus::Unknown
}

impl Kube {
    pub fn is_empty(&self) -> bool {
        self.revision == 0
            && self.next_pod == 0
            && self.clusters.is_empty()
            && self.joining.is_empty()
            && self.broken.is_empty()
            && self.violations.is_empty()
    }

    pub fn steps(&self) -> u64 {
        self.index.steps
    }

    pub fn next_event(&self) -> Option<u64> {
        self.index.events.first().map(|(at, _)| *at)
    }

    /// The instances whose Node reports but is not Ready (waiting for its etcd member).
    pub fn waiting_nodes(&self) -> Vec<String> {
        let nodes = self.clusters.values().flat_map(|c| c.nodes.values());
        nodes.filter(|n| n.ready == ConditionStatus::False).filter_map(|n| n.instance.clone()).collect()
    }

    /// The Node an instance registered, while the Node object exists.
    pub fn node_of(&self, id: &str) -> Option<&Node> {
        let (cluster, name) = self.index.node_of.get(id)?;
        self.node(cluster, name).filter(|n| n.instance.as_deref() == Some(id))
    }

    /// Rebuilds every index from the stored objects.
    pub fn reindex(&mut self) {
        let mut index = KubeIndex { steps: self.index.steps, ..KubeIndex::default() };
        for (id, at) in &self.joining {
            index.events.insert((*at, Event::Join(id.clone())));
        }
        for (cluster, c) in &self.clusters {
            for node in c.nodes.values() {
                index.steps += 1;
                if let Some(id) = &node.instance {
                    index.node_of.insert(id.clone(), (cluster.clone(), node.name.clone()));
                }
            }
            for pod in c.pods.values() {
                index.steps += 1;
                index_pod(&mut index, cluster, pod);
            }
        }
        self.index = index;
    }

    /// Moves every timestamp by `delta` (a virtual world going real).
    pub fn shift(&mut self, delta: u64) {
        let add = |t: &mut u64| *t = t.saturating_add(delta);
        self.joining.values_mut().for_each(add);
        for c in self.clusters.values_mut() {
            for n in c.nodes.values_mut() {
                add(&mut n.created_at_ms);
                add(&mut n.ready_since_ms);
            }
            for p in c.pods.values_mut() {
                add(&mut p.created_at_ms);
                add(&mut p.ready_since_ms);
                for t in [&mut p.bound_at_ms, &mut p.start_at_ms, &mut p.running_at_ms].into_iter().flatten() {
                    add(t);
                }
                if let Some(d) = &mut p.deletion {
                    add(&mut d.at_ms);
                    if let Some(t) = &mut d.gone_at_ms {
                        add(t);
                    }
                }
            }
            for b in c.pdbs.values_mut() {
                add(&mut b.created_at_ms);
            }
        }
        for v in &mut self.violations {
            match v {
                Violation::Budget { t_ms, .. } | Violation::BoundPods { t_ms, .. } => add(t_ms),
            }
        }
    }

    fn bump(&mut self) -> u64 {
        self.revision = self.revision.saturating_add(1);
        self.revision
    }

    fn pods_of_node(&self, cluster: &str, node: &str) -> Vec<PodKey> {
        self.index
            .on_node
            .get(&(cluster.to_string(), node.to_string()))
            .map(|on| on.pods.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn workload_pods_on(&self, cluster: &str, node: &str) -> usize {
        self.index.on_node.get(&(cluster.to_string(), node.to_string())).map_or(0, |on| on.workload_pods)
    }

    fn pod(&self, cluster: &str, key: &PodKey) -> Option<&Pod> {
        self.clusters.get(cluster)?.pods.get(key)
    }

    fn node(&self, cluster: &str, name: &str) -> Option<&Node> {
        self.clusters.get(cluster)?.nodes.get(name)
    }

    /// Changes one pod with `f`, keeping the indexes right and marking what must settle.
    /// Nothing else changes a pod in place.
    fn change_pod<T>(&mut self, cluster: &str, key: &PodKey, f: impl FnOnce(&mut Pod) -> T) -> Option<T> {
        let revision = self.revision.saturating_add(1);
        let Kube { clusters, index, .. } = self;
        let pod = clusters.get_mut(cluster)?.pods.get_mut(key)?;
        index.steps += 1;
        unindex_pod(index, cluster, pod);
        let (was_active, was_on) = (pod.deletion.is_none(), pod.node.clone());
        let out = f(pod);
        pod.rv = revision;
        index_pod(index, cluster, pod);
        if was_active && pod.deletion.is_some() {
            index.dirty_workloads.insert((cluster.to_string(), pod.namespace.clone(), pod.workload.clone()));
        }
        if was_on.is_some() && was_on != pod.node {
            index.dirty_schedule.insert(cluster.to_string());
        }
        if pod.node.is_none() && pod.deletion.is_none() {
            index.dirty_schedule.insert(cluster.to_string());
        }
        self.revision = revision;
        Some(out)
    }

    /// Adds a new pod.
    fn insert_pod(&mut self, cluster: &str, mut pod: Pod) {
        let revision = self.bump();
        pod.rv = revision;
        let Kube { clusters, index, .. } = self;
        index.steps += 1;
        index_pod(index, cluster, &pod);
        if pod.node.is_none() {
            index.dirty_schedule.insert(cluster.to_string());
        }
        clusters.entry(cluster.to_string()).or_default().pods.insert(pod.key(), pod);
    }

    /// Removes a pod (it exited, or was killed): its controller replaces it if it should.
    fn remove_pod(&mut self, cluster: &str, key: &PodKey) -> Option<Pod> {
        let Kube { clusters, index, .. } = self;
        let pod = clusters.get_mut(cluster)?.pods.remove(key)?;
        index.steps += 1;
        unindex_pod(index, cluster, &pod);
        index.dirty_workloads.insert((cluster.to_string(), pod.namespace.clone(), pod.workload.clone()));
        if let Some(node) = &pod.node {
            index.dirty_schedule.insert(cluster.to_string());
            if pod.is_daemon() {
                index.dirty_nodes.insert((cluster.to_string(), node.clone()));
            }
        }
        self.bump();
        Some(pod)
    }

    fn cancel_join(&mut self, id: &str) {
        if let Some(at) = self.joining.remove(id) {
            self.index.events.remove(&(at, Event::Join(id.to_string())));
        }
    }

    fn schedule_join(&mut self, id: &str, at: u64) {
        self.cancel_join(id);
        self.joining.insert(id.to_string(), at);
        self.index.events.insert((at, Event::Join(id.to_string())));
    }

    fn record(&mut self, violation: Violation) {
        self.violations.push_back(violation);
        while self.violations.len() > VIOLATION_LIMIT {
            self.violations.pop_front();
        }
    }

    /// The budgets of `cluster` that cover `pod`, by (namespace, name).
    fn budgets_of(&self, cluster: &str, pod: &Pod) -> Vec<PodKey> {
        let Some(c) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        in_namespace(&c.pdbs, &pod.namespace).filter(|(_, b)| b.covers(pod)).map(|(k, _)| k.clone()).collect()
    }

    /// A budget's status now.
    pub fn budget_status(&self, cluster: &str, pdb: &Pdb, workloads: &[Workload]) -> BudgetStatus {
        let Some(c) = self.clusters.get(cluster) else {
            return BudgetStatus { expected: 0, desired: 0, current: 0, allowed: 0 };
        };
        let mut current = 0i64;
        // Per controller (workload), its pods that are not terminating.
        let mut controllers: BTreeMap<(&str, WorkloadKind), i64> = BTreeMap::new();
        for (_, pod) in in_namespace(&c.pods, &pdb.namespace) {
            if !pdb.covers(pod) {
                continue;
            }
            if pod.is_healthy() {
                current += 1;
            }
            let n = controllers.entry((pod.workload.as_str(), pod.kind)).or_default();
            if pod.deletion.is_none() {
                *n += 1;
            }
        }
        let mut expected = 0i64;
        for ((name, kind), pods) in controllers {
            let replicas = workloads
                .iter()
                .find(|w| w.namespace == pdb.namespace && w.name == name && w.kind == kind)
                .filter(|_| matches!(kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet))
                .map(|w| i64::from(w.replicas));
            expected = expected.saturating_add(replicas.unwrap_or(pods));
        }
        let desired = match (
            pdb.min_available.as_deref().and_then(parse_int_or_percent),
            pdb.max_unavailable.as_deref().and_then(parse_int_or_percent),
        ) {
            (Some(IntOrPercent::Int(n)), _) => n,
            (Some(IntOrPercent::Percent(p)), _) => percent_up(p, expected),
            (None, Some(IntOrPercent::Int(n))) => (expected - n).max(0),
            (None, Some(IntOrPercent::Percent(p))) => (expected - percent_up(p, expected)).max(0),
            (None, None) => 0,
        };
        let allowed = if expected <= 0 { 0 } else { (current - desired).max(0) };
        let clamp = |n: i64| n.clamp(0, i64::from(i32::MAX)) as i32;
        BudgetStatus {
            expected: clamp(expected),
            desired: clamp(desired),
            current: clamp(current),
            allowed: clamp(allowed),
        }
    }
}

/// The entries of a map keyed by (namespace, name) in one namespace.
fn in_namespace<'a, V>(map: &'a BTreeMap<PodKey, V>, namespace: &str) -> impl Iterator<Item = (&'a PodKey, &'a V)> {
    let namespace = namespace.to_string();
    map.range((namespace.clone(), String::new())..).take_while(move |((ns, _), _)| *ns == namespace)
}

enum IntOrPercent {
    Int(i64),
    Percent(i64),
}

/// `"5"` or `"80%"`; anything else is `None`.
fn parse_int_or_percent(s: &str) -> Option<IntOrPercent> {
    let s = s.trim();
    match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<u32>().ok().map(|p| IntOrPercent::Percent(i64::from(p))),
        None => s.parse::<u32>().ok().map(|n| IntOrPercent::Int(i64::from(n))),
    }
}

/// `percent`% of `n`, rounded up.
fn percent_up(percent: i64, n: i64) -> i64 {
    percent.saturating_mul(n).saturating_add(99).div_euclid(100)
}

fn index_pod(index: &mut KubeIndex, cluster: &str, pod: &Pod) {
    if let Some(event) = pod.event(cluster) {
        index.events.insert(event);
    }
    if let Some(node) = &pod.node {
        let on = index.on_node.entry((cluster.to_string(), node.clone())).or_default();
        on.pods.insert(pod.key());
        if !pod.is_daemon() {
            on.workload_pods += 1;
        }
    } else if pod.deletion.is_none() {
        index.unscheduled.entry(cluster.to_string()).or_default().insert((
            pod.seq,
            pod.namespace.clone(),
            pod.name.clone(),
        ));
    }
    index
        .by_workload
        .entry((cluster.to_string(), pod.namespace.clone(), pod.workload.clone()))
        .or_default()
        .insert(pod.name.clone());
}

fn unindex_pod(index: &mut KubeIndex, cluster: &str, pod: &Pod) {
    if let Some(event) = pod.event(cluster) {
        index.events.remove(&event);
    }
    if let Some(node) = &pod.node {
        let key = (cluster.to_string(), node.clone());
        if let Some(on) = index.on_node.get_mut(&key) {
            if on.pods.remove(&pod.key()) && !pod.is_daemon() {
                on.workload_pods = on.workload_pods.saturating_sub(1);
            }
            if on.pods.is_empty() {
                index.on_node.remove(&key);
            }
        }
    }
    if let Some(set) = index.unscheduled.get_mut(cluster) {
        set.remove(&(pod.seq, pod.namespace.clone(), pod.name.clone()));
        if set.is_empty() {
            index.unscheduled.remove(cluster);
        }
    }
    let key = (cluster.to_string(), pod.namespace.clone(), pod.workload.clone());
    if let Some(set) = index.by_workload.get_mut(&key) {
        set.remove(&pod.name);
        if set.is_empty() {
            index.by_workload.remove(&key);
        }
    }
}

/// A 64-bit FNV-1a hash: stable names derived from stable strings.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A UUID (version 4 in shape) from two 64-bit numbers.
fn uuid(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// The uid of an object the simulation does not store (a pod's controller), derived from what
/// names it.
pub(crate) fn derived_uid(parts: &[&str]) -> String {
    let joined = parts.join("\0");
    let h = fnv(joined.as_bytes());
    uuid(h, fnv(&h.to_le_bytes()) ^ h.rotate_left(17))
}

/// A Deployment's pod-template-hash: 10 hex digits derived from its namespace and name.
pub(crate) fn template_hash(namespace: &str, name: &str) -> String {
    format!("{:010x}", fnv(format!("{namespace}/{name}").as_bytes()) & 0xff_ffff_ffff)
}

/// Parses a taint written `key=value:Effect` or `key:Effect`.
pub(crate) fn parse_taint(s: &str) -> Option<Taint> {
    let (kv, effect) = s.trim().rsplit_once(':')?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return None;
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        return None;
    }
    Some(Taint { key: key.to_string(), value, effect: effect.to_string() })
}

/// The node name of an address: `ip-10-A-B-C.sim.internal`, the first free one probing from
/// where the instance id hashes to.
fn node_name(id: &str, taken: &BTreeMap<String, Node>) -> (String, String) {
    const SPACE: u64 = 256 * 256 * 254;
    let start = fnv(id.as_bytes()) % SPACE;
    for k in 0..SPACE {
        let n = (start + k) % SPACE;
        let (a, b, c) = (n / (256 * 254), (n / 254) % 256, n % 254 + 1);
        let name = format!("ip-10-{a}-{b}-{c}.sim.internal");
        if !taken.contains_key(&name) {
            return (name, format!("10.{a}.{b}.{c}"));
        }
    }
    (id.to_string(), String::new())
}

impl World {
    fn random_uid(&mut self) -> String {
        let (hi, lo) = (self.rng.next_u64(), self.rng.next_u64());
        uuid(hi, lo)
    }

    fn random_suffix(&mut self, len: usize) -> String {
        (0..len).map(|_| SUFFIX_ALPHABET[self.rng.below(SUFFIX_ALPHABET.len() as u64) as usize] as char).collect()
    }

    /// The first workload of that namespace and name (later ones are ignored).
    fn workload(&self, namespace: &str, name: &str) -> Option<&Workload> {
        self.config.workloads.iter().find(|w| !w.name.is_empty() && w.namespace == namespace && w.name == name)
    }

    /// Whether a workload runs in `cluster`.
    fn runs_in(&self, w: &Workload, cluster: &str) -> bool {
        match &w.cluster {
            Some(c) => c == cluster,
            None => self.kube.clusters.get(cluster).is_some_and(|c| c.joined),
        }
    }

    /// The workloads that count (named, first of their namespace and name), with their keys.
    fn effective_workloads(&self) -> Vec<Workload> {
        let mut seen = BTreeSet::new();
        self.config
            .workloads
            .iter()
            .filter(|w| !w.name.is_empty() && seen.insert((w.namespace.clone(), w.name.clone())))
            .cloned()
            .collect()
    }

    // ---- instances' part -----------------------------------------------------------------

    /// An instance changed (`World::change`): it booted, crashed, was terminated or is gone.
    pub(crate) fn kube_instance_changed(
        &mut self,
        id: &str,
        booted: bool,
        crashed: bool,
        terminated: bool,
        gone: bool,
    ) {
        if crashed {
            self.kube.cancel_join(id);
            self.node_lost(id);
        }
        if booted && !self.kube.broken.contains(id) {
            let at = self.now_ms.saturating_add(self.config.join_delay_ms);
            self.kube.schedule_join(id, at);
        }
        if terminated {
            self.kube.cancel_join(id);
            self.instance_terminated(id);
        }
        if gone {
            self.kube.cancel_join(id);
            self.kube.broken.remove(id);
        }
    }

    /// The instance's Node (if it has one) goes Ready=Unknown: its kubelet stopped reporting.
    fn node_lost(&mut self, id: &str) {
        if let Some((cluster, node)) = self.kube.index.node_of.get(id).cloned() {
            self.node_unknown(&cluster, &node);
        }
    }

    /// A node goes Ready=Unknown: its pods are not ready, pods not started never start, and
    /// pods terminating there are stuck until the instance is gone.
    fn node_unknown(&mut self, cluster: &str, name: &str) {
        let now = self.now_ms;
        let revision = self.kube.revision.saturating_add(1);
        let Some(node) = self.kube.clusters.get_mut(cluster).and_then(|c| c.nodes.get_mut(name)) else {
            return;
        };
        if node.ready == ConditionStatus::Unknown {
            return;
        }
        node.ready = ConditionStatus::Unknown;
        node.not_ready = None;
        node.ready_since_ms = now;
        node.rv = revision;
        self.kube.revision = revision;
        for key in self.kube.pods_of_node(cluster, name) {
            self.kube.change_pod(cluster, &key, |p| {
                if p.ready {
                    p.ready = false;
                    p.ready_since_ms = now;
                }
                p.start_at_ms = None;
                if let Some(d) = &mut p.deletion {
                    d.gone_at_ms = None;
                }
            });
        }
    }

    /// The Node of instance `id`, waiting for its etcd member (Ready False), becomes Ready
    /// (`why` None) or stays NotReady for the reason given. A Node in any other condition is
    /// left alone. Pods bound to it that never started start now.
    pub(crate) fn etcd_node_condition(&mut self, id: &str, why: Option<String>) {
        let Some((cluster, name)) = self.kube.index.node_of.get(id).cloned() else {
            return;
        };
        let now = self.now_ms;
        let revision = self.kube.revision.saturating_add(1);
        let Some(node) = self.kube.clusters.get_mut(&cluster).and_then(|c| c.nodes.get_mut(&name)) else {
            return;
        };
        if node.ready != ConditionStatus::False || node.instance.as_deref() != Some(id) {
            return;
        }
        self.kube.index.steps += 1;
        match why {
            Some(why) => {
                if node.not_ready.as_deref() == Some(why.as_str()) {
                    return;
                }
                node.not_ready = Some(why);
                node.rv = revision;
                self.kube.revision = revision;
            }
            None => {
                node.ready = ConditionStatus::True;
                node.not_ready = None;
                node.ready_since_ms = now;
                node.rv = revision;
                self.kube.revision = revision;
                let start_at = now.saturating_add(self.config.pod_start_ms);
                for key in self.kube.pods_of_node(&cluster, &name) {
                    self.kube.change_pod(&cluster, &key, |p| {
                        if p.deletion.is_none() && p.running_at_ms.is_none() && p.start_at_ms.is_none() {
                            p.start_at_ms = Some(start_at);
                        }
                    });
                }
                self.kube.index.dirty_nodes.insert((cluster.clone(), name));
                self.kube.index.dirty_schedule.insert(cluster);
                self.settle();
            }
        }
    }

    /// An instance is terminated: its Node goes Unknown and every pod bound to it is killed.
    /// Unless its Node was not Ready already, the audit notes the pods still there and the
    /// budgets that fell.
    fn instance_terminated(&mut self, id: &str) {
        let Some((cluster, node)) = self.kube.index.node_of.get(id).cloned() else {
            return;
        };
        let Some(ready) = self.kube.node(&cluster, &node).map(Node::is_ready) else {
            return;
        };
        let pods = self.kube.pods_of_node(&cluster, &node);
        if ready {
            let bound: Vec<String> = pods
                .iter()
                .filter(|k| self.kube.pod(&cluster, k).is_some_and(|p| !p.is_daemon()))
                .map(|(ns, name)| format!("{ns}/{name}"))
                .collect();
            if !bound.is_empty() {
                self.kube.record(Violation::BoundPods {
                    t_ms: self.now_ms,
                    cluster: cluster.clone(),
                    instance: id.to_string(),
                    node: node.clone(),
                    pods: bound,
                });
            }
        }
        let audit = ready.then(|| (Cause::Termination, None, Some(id.to_string())));
        let before = self.before_killing(&cluster, &pods, audit.is_some());
        self.node_unknown(&cluster, &node);
        self.kill_pods(&cluster, &pods, before, audit);
    }

    /// The budgets covering `pods` and their statuses, if a killing is to be audited.
    fn before_killing(
        &self,
        cluster: &str,
        pods: &[PodKey],
        audited: bool,
    ) -> (Vec<PodKey>, Vec<Option<BudgetStatus>>) {
        let budgets = if audited { self.covering(cluster, pods) } else { Vec::new() };
        let before = self.budget_statuses(cluster, &budgets);
        (budgets, before)
    }

    /// Removes pods at once (their node is gone), auditing the budgets that fell since
    /// `before` if `audit` says why.
    fn kill_pods(
        &mut self,
        cluster: &str,
        pods: &[PodKey],
        (budgets, before): (Vec<PodKey>, Vec<Option<BudgetStatus>>),
        audit: Option<(Cause, Option<String>, Option<String>)>,
    ) {
        for key in pods {
            self.kube.remove_pod(cluster, key);
        }
        if let Some((cause, pod, instance)) = audit {
            self.audit_falls(cluster, &budgets, &before, cause, pod, instance);
        }
    }

    /// The budgets covering any of `pods`.
    fn covering(&self, cluster: &str, pods: &[PodKey]) -> Vec<PodKey> {
        let mut budgets = BTreeSet::new();
        for key in pods {
            if let Some(pod) = self.kube.pod(cluster, key) {
                budgets.extend(self.kube.budgets_of(cluster, pod));
            }
        }
        budgets.into_iter().collect()
    }

    fn budget_statuses(&self, cluster: &str, budgets: &[PodKey]) -> Vec<Option<BudgetStatus>> {
        budgets
            .iter()
            .map(|key| {
                let pdb = self.kube.clusters.get(cluster)?.pdbs.get(key)?;
                Some(self.kube.budget_status(cluster, pdb, &self.config.workloads))
            })
            .collect()
    }

    /// Records every budget whose currentHealthy fell and is now below its desiredHealthy.
    fn audit_falls(
        &mut self,
        cluster: &str,
        budgets: &[PodKey],
        before: &[Option<BudgetStatus>],
        cause: Cause,
        pod: Option<String>,
        instance: Option<String>,
    ) {
        let after = self.budget_statuses(cluster, budgets);
        for ((key, before), after) in budgets.iter().zip(before).zip(after) {
            let (Some(before), Some(after)) = (before, after) else {
                continue;
            };
            if after.current < before.current && after.current < after.desired {
                self.kube.record(Violation::Budget {
                    t_ms: self.now_ms,
                    cluster: cluster.to_string(),
                    budget: format!("{}/{}", key.0, key.1),
                    healthy: after.current,
                    desired: after.desired,
                    cause,
                    pod: pod.clone(),
                    instance: instance.clone(),
                });
            }
        }
    }

    /// Instances whose kubelet fails: their Node goes Unknown while the instance keeps running
    /// and healthy (or, not registered yet, never registers).
    pub(crate) fn fail_kubelets(
        &mut self,
        instance: Option<&str>,
        cluster: Option<&str>,
        node_group: Option<&str>,
        count: u32,
    ) -> Result<Vec<String>, SimError> {
        let ids = match instance {
            Some(id) => {
                if !self.instance_is_live(id) {
                    return Err(SimError::NoSuchInstance(id.to_string()));
                }
                vec![id.to_string()]
            }
            None => {
                let broken = &self.kube.broken;
                let mut candidates: Vec<String> = self
                    .instances_where(|g, i| {
                        i.instance.state == InstanceState::Running
                            && i.failed_at_ms.is_none()
                            && !broken.contains(&i.instance.id)
                            && cluster.is_none_or(|c| g.ownership.cluster == c)
                            && node_group.is_none_or(|n| g.ownership.node_group == n)
                    })
                    .into_iter()
                    .collect();
                if candidates.is_empty() && count > 0 {
                    let name = match (cluster, node_group) {
                        (Some(c), Some(n)) => format!("{c}/{n}"),
                        (None, Some(n)) => n.to_string(),
                        (Some(c), None) => format!("cluster {c}"),
                        (None, None) => "the world".to_string(),
                    };
                    return Err(SimError::NothingToFail(name));
                }
                let n = (count as usize).min(candidates.len());
                for k in 0..n {
                    let pick = k + self.rng.below((candidates.len() - k) as u64) as usize;
                    candidates.swap(k, pick);
                }
                candidates.truncate(n);
                candidates
            }
        };
        for id in &ids {
            self.kube.broken.insert(id.clone());
            self.kube.cancel_join(id);
            self.node_lost(id);
        }
        Ok(ids)
    }

    // ---- events ----------------------------------------------------------------------------

    /// Fires every Kubernetes event due now, in (time, event) order.
    pub(crate) fn kube_fire_due(&mut self) {
        let now = self.now_ms;
        while self.kube.index.events.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, event)) = self.kube.index.events.pop_first() else {
                break;
            };
            self.kube.index.steps += 1;
            match event {
                Event::Join(id) => {
                    self.kube.joining.remove(&id);
                    self.register_node(&id);
                }
                Event::Pod(EventKind::Start, cluster, ns, name) => {
                    let key = (ns, name);
                    let ready = self
                        .kube
                        .pod(&cluster, &key)
                        .and_then(|p| p.node.as_deref())
                        .and_then(|n| self.kube.node(&cluster, n))
                        .is_some_and(Node::is_ready);
                    self.kube.change_pod(&cluster, &key, |p| {
                        p.start_at_ms = None;
                        if ready && p.deletion.is_none() {
                            p.running_at_ms = Some(now);
                            p.ready = true;
                            p.ready_since_ms = now;
                        }
                    });
                }
                Event::Pod(EventKind::Gone, cluster, ns, name) => {
                    self.kube.remove_pod(&cluster, &(ns, name));
                }
            }
        }
    }

    /// The kubelet of a running instance registers its Node.
    fn register_node(&mut self, id: &str) {
        let Some((group, instance)) = self.instance_by_id(id) else {
            return;
        };
        let i = &instance.instance;
        if i.state != InstanceState::Running
            || instance.failed_at_ms.is_some()
            || self.kube.broken.contains(id)
            || self.config.bad_images.contains(&i.image)
        {
            return;
        }
        let cluster = group.ownership.cluster.clone();
        if let Some((c, n)) = self.kube.index.node_of.get(id) {
            if self.kube.node(c, n).is_some_and(|node| node.instance.as_deref() == Some(id)) {
                return;
            }
        }
        let (zone, instance_type, image_labels, taints, version) = (
            i.zone.clone(),
            i.instance_type.clone(),
            group.spec.labels.clone(),
            group.spec.taints.clone(),
            group.spec.kubernetes_version.clone(),
        );
        // A control-plane Node of a world with real etcd members is Ready once its member has
        // started and been promoted (the reconciler's op says so), as kubeadm's join finishes.
        let not_ready = self.etcd_gate(&cluster, id, group.spec.role);
        let uid = self.random_uid();
        self.ensure_cluster(&cluster);
        let now = self.now_ms;
        let revision = self.kube.bump();
        let c = self.kube.clusters.entry(cluster.clone()).or_default();
        let (name, ip) = node_name(id, &c.nodes);
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("topology.kubernetes.io/zone".to_string(), zone.clone()),
            ("node.kubernetes.io/instance-type".to_string(), instance_type.clone()),
        ]);
        labels.extend(image_labels);
        let version = if version.is_empty() || version.starts_with('v') { version } else { format!("v{version}") };
        let node = Node {
            name: name.clone(),
            uid,
            instance: Some(id.to_string()),
            zone,
            instance_type,
            kubelet_version: version,
            ip,
            created_at_ms: now,
            rv: revision,
            labels,
            annotations: BTreeMap::new(),
            unschedulable: false,
            taints: taints.iter().filter_map(|t| parse_taint(t)).collect(),
            ready: if not_ready.is_some() { ConditionStatus::False } else { ConditionStatus::True },
            ready_since_ms: now,
            not_ready,
        };
        c.nodes.insert(name.clone(), node);
        self.kube.index.steps += 1;
        self.kube.index.node_of.insert(id.to_string(), (cluster.clone(), name.clone()));
        self.kube.index.dirty_nodes.insert((cluster.clone(), name));
        self.kube.index.dirty_schedule.insert(cluster);
    }

    /// Makes sure a cluster exists and, once a Node has joined it, runs every cluster's
    /// workloads.
    fn ensure_cluster(&mut self, cluster: &str) {
        let joined = self.kube.clusters.get(cluster).is_some_and(|c| c.joined);
        if joined {
            return;
        }
        self.kube.clusters.entry(cluster.to_string()).or_default().joined = true;
        self.reconcile_budgets(cluster);
        for w in self.effective_workloads() {
            self.kube.index.dirty_workloads.insert((cluster.to_string(), w.namespace, w.name));
        }
    }

    // ---- configuration -----------------------------------------------------------------------

    /// The workloads (or the scheduler's settings) changed: every cluster named by a workload
    /// exists, every budget is made or changed, and every workload settles.
    pub(crate) fn kube_reconfigure(&mut self) {
        for w in self.effective_workloads() {
            if let Some(c) = &w.cluster {
                self.kube.clusters.entry(c.clone()).or_default();
            }
        }
        let clusters: Vec<String> = self.kube.clusters.keys().cloned().collect();
        for cluster in &clusters {
            self.reconcile_budgets(cluster);
            for w in self.effective_workloads() {
                self.kube.index.dirty_workloads.insert((cluster.clone(), w.namespace, w.name));
            }
            // Workloads that are gone, and their pods.
            let stale: Vec<(String, String, String)> =
                self.kube.index.by_workload.keys().filter(|(c, _, _)| c == cluster).cloned().collect();
            self.kube.index.dirty_workloads.extend(stale);
            if let Some(c) = self.kube.clusters.get(cluster) {
                let ns: Vec<(String, String)> =
                    c.bare.iter().flat_map(|(ns, names)| names.keys().map(move |n| (ns.clone(), n.clone()))).collect();
                self.kube.index.dirty_workloads.extend(ns.into_iter().map(|(ns, n)| (cluster.clone(), ns, n)));
            }
            self.kube.index.dirty_schedule.insert(cluster.clone());
        }
    }

    /// Makes the cluster's budgets those its workloads ask for.
    fn reconcile_budgets(&mut self, cluster: &str) {
        let mut wanted: BTreeMap<PodKey, Pdb> = BTreeMap::new();
        for w in self.effective_workloads() {
            if !w.has_budget() || !self.runs_in(&w, cluster) {
                continue;
            }
            let selector = if w.pdb_selector.is_empty() {
                BTreeMap::from([("app".to_string(), w.name.clone())])
            } else {
                w.pdb_selector.clone()
            };
            let (min_available, max_unavailable) = match &w.min_available {
                Some(m) => (Some(m.clone()), None),
                None => (None, w.max_unavailable.clone()),
            };
            let pdb = Pdb {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                uid: String::new(),
                created_at_ms: self.now_ms,
                rv: 0,
                selector,
                min_available,
                max_unavailable,
            };
            wanted.insert(pdb.key(), pdb);
        }
        let existing: Vec<PodKey> =
            self.kube.clusters.get(cluster).map(|c| c.pdbs.keys().cloned().collect()).unwrap_or_default();
        for key in existing {
            if !wanted.contains_key(&key) {
                self.kube.bump();
                if let Some(c) = self.kube.clusters.get_mut(cluster) {
                    c.pdbs.remove(&key);
                }
            }
        }
        for (key, mut pdb) in wanted {
            let current = self.kube.clusters.get(cluster).and_then(|c| c.pdbs.get(&key)).cloned();
            match current {
                Some(old)
                    if old.selector == pdb.selector
                        && old.min_available == pdb.min_available
                        && old.max_unavailable == pdb.max_unavailable => {}
                Some(old) => {
                    pdb.uid = old.uid;
                    pdb.created_at_ms = old.created_at_ms;
                    pdb.rv = self.kube.bump();
                    self.kube.clusters.entry(cluster.to_string()).or_default().pdbs.insert(key, pdb);
                }
                None => {
                    pdb.uid = self.random_uid();
                    pdb.rv = self.kube.bump();
                    self.kube.clusters.entry(cluster.to_string()).or_default().pdbs.insert(key, pdb);
                }
            }
        }
    }

    // ---- settling: controllers and the scheduler ---------------------------------------------

    /// Runs the controllers of the workloads and nodes marked, then the scheduler for the
    /// clusters marked, until nothing is left to do.
    pub(crate) fn kube_settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let workloads = std::mem::take(&mut self.kube.index.dirty_workloads);
            let nodes = std::mem::take(&mut self.kube.index.dirty_nodes);
            let clusters = std::mem::take(&mut self.kube.index.dirty_schedule);
            if workloads.is_empty() && nodes.is_empty() && clusters.is_empty() {
                return;
            }
            for (cluster, ns, name) in workloads {
                self.reconcile_workload(&cluster, &ns, &name);
            }
            for (cluster, node) in nodes {
                for w in self.effective_workloads() {
                    if w.kind == WorkloadKind::DaemonSet && self.runs_in(&w, &cluster) {
                        self.reconcile_daemon_on(&cluster, &w, &node);
                    }
                }
            }
            for cluster in clusters {
                self.schedule(&cluster);
            }
        }
        // Whatever is left is dropped: an index must hold nothing a reread world would not.
        self.kube.index.dirty_workloads.clear();
        self.kube.index.dirty_nodes.clear();
        self.kube.index.dirty_schedule.clear();
    }

    /// The pods of a workload in a cluster, by name.
    fn pods_of(&self, cluster: &str, ns: &str, name: &str) -> Vec<Pod> {
        let Some(c) = self.kube.clusters.get(cluster) else {
            return Vec::new();
        };
        self.kube
            .index
            .by_workload
            .get(&(cluster.to_string(), ns.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|pod| c.pods.get(&(ns.to_string(), pod.clone())).cloned())
            .collect()
    }

    /// Asks a pod to stop, as its controller does (with its own grace period).
    fn stop_pod(&mut self, cluster: &str, key: &PodKey) {
        // The controller picked a pod it holds; a pod already gone needs nothing more.
        let _ = self.delete_pod_now(cluster, key, None);
    }

    fn reconcile_workload(&mut self, cluster: &str, ns: &str, name: &str) {
        self.kube.index.steps += 1;
        let w = self.workload(ns, name).filter(|w| self.runs_in(w, cluster)).cloned();
        let pods = self.pods_of(cluster, ns, name);
        // Pods of a workload that is gone (or of another kind now) go.
        for p in &pods {
            if p.deletion.is_none() && w.as_ref().is_none_or(|w| w.kind != p.kind) {
                self.stop_pod(cluster, &p.key());
            }
        }
        let Some(w) = w else {
            if let Some(c) = self.kube.clusters.get_mut(cluster) {
                if let Some(names) = c.bare.get_mut(ns) {
                    names.remove(name);
                    if names.is_empty() {
                        c.bare.remove(ns);
                    }
                }
            }
            return;
        };
        let mine: Vec<&Pod> = pods.iter().filter(|p| p.kind == w.kind).collect();
        match w.kind {
            WorkloadKind::Deployment => {
                let mut active: Vec<&Pod> = mine.into_iter().filter(|p| p.deletion.is_none()).collect();
                let replicas = w.replicas as usize;
                for _ in active.len()..replicas {
                    self.create_pod(cluster, &w, None, None);
                }
                if active.len() > replicas {
                    // As a ReplicaSet scales in: unscheduled, then pending, then not ready, then
                    // the newest.
                    active.sort_by_key(|p| {
                        (p.node.is_some(), p.running_at_ms.is_some(), p.ready, std::cmp::Reverse(p.seq))
                    });
                    let extra: Vec<PodKey> = active[..active.len() - replicas].iter().map(|p| p.key()).collect();
                    for key in extra {
                        self.stop_pod(cluster, &key);
                    }
                }
            }
            WorkloadKind::StatefulSet => {
                let ordinal = |p: &Pod| p.name.strip_prefix(&format!("{name}-")).and_then(|o| o.parse::<u32>().ok());
                let present: BTreeSet<u32> = mine.iter().filter_map(|p| ordinal(p)).collect();
                for o in 0..w.replicas {
                    if !present.contains(&o) {
                        self.create_pod(cluster, &w, None, Some(o));
                    }
                }
                for p in &mine {
                    if p.deletion.is_none() && ordinal(p).is_none_or(|o| o >= w.replicas) {
                        self.stop_pod(cluster, &p.key());
                    }
                }
            }
            WorkloadKind::DaemonSet => {
                let nodes: Vec<String> =
                    self.kube.clusters.get(cluster).map(|c| c.nodes.keys().cloned().collect()).unwrap_or_default();
                for node in &nodes {
                    self.reconcile_daemon_on(cluster, &w, node);
                }
                let known: BTreeSet<&String> = nodes.iter().collect();
                for p in &mine {
                    if p.deletion.is_none() && p.node.as_ref().is_none_or(|n| !known.contains(n)) {
                        self.stop_pod(cluster, &p.key());
                    }
                }
            }
            WorkloadKind::Pod => {
                let made =
                    self.kube.clusters.get(cluster).and_then(|c| c.bare.get(ns)?.get(name)).copied().unwrap_or(0);
                for n in made..w.replicas {
                    self.create_pod(cluster, &w, None, Some(n));
                }
                if w.replicas < made {
                    for p in &mine {
                        let n = p.name.strip_prefix(&format!("{name}-")).and_then(|o| o.parse::<u32>().ok());
                        if p.deletion.is_none() && n.is_none_or(|n| n >= w.replicas) {
                            self.stop_pod(cluster, &p.key());
                        }
                    }
                }
                if made != w.replicas {
                    let c = self.kube.clusters.entry(cluster.to_string()).or_default();
                    c.bare.entry(ns.to_string()).or_default().insert(name.to_string(), w.replicas);
                }
            }
        }
    }

    /// A DaemonSet on one node: a pod there if the node should run one (its instance alive, the
    /// selector matching), none otherwise. A pod still terminating there counts: the next one
    /// comes when it is gone.
    fn reconcile_daemon_on(&mut self, cluster: &str, w: &Workload, node: &str) {
        self.kube.index.steps += 1;
        let should_run = self.kube.node(cluster, node).is_some_and(|n| {
            n.instance.as_deref().is_some_and(|id| self.instance_is_live(id))
                && w.node_selector.iter().all(|(k, v)| n.labels.get(k) == Some(v))
        });
        let here: Vec<(PodKey, bool)> = self
            .kube
            .pods_of_node(cluster, node)
            .into_iter()
            .filter_map(|key| {
                let p = self.kube.pod(cluster, &key)?;
                (p.kind == WorkloadKind::DaemonSet && p.workload == w.name && p.namespace == w.namespace)
                    .then(|| (key, p.deletion.is_some()))
            })
            .collect();
        if should_run && here.is_empty() {
            self.create_pod(cluster, w, Some(node.to_string()), None);
        } else if !should_run {
            for (key, terminating) in here {
                if !terminating {
                    self.stop_pod(cluster, &key);
                }
            }
        }
    }

    /// Makes a pod of `w`: bound to `node` (a DaemonSet's), or pending. `ordinal`: a
    /// StatefulSet's ordinal or a bare pod's number.
    fn create_pod(&mut self, cluster: &str, w: &Workload, node: Option<String>, ordinal: Option<u32>) {
        let ns = w.namespace.clone();
        let taken = |world: &World, name: &str| world.kube.pod(cluster, &(ns.clone(), name.to_string())).is_some();
        let hash = template_hash(&w.namespace, &w.name);
        let name = match (w.kind, ordinal) {
            (WorkloadKind::StatefulSet | WorkloadKind::Pod, Some(o)) => {
                let name = format!("{}-{o}", w.name);
                if taken(self, &name) {
                    return;
                }
                name
            }
            _ => loop {
                let suffix = self.random_suffix(5);
                let name = match w.kind {
                    WorkloadKind::Deployment => format!("{}-{hash}-{suffix}", w.name),
                    _ => format!("{}-{suffix}", w.name),
                };
                if !taken(self, &name) {
                    break name;
                }
            },
        };
        let uid = self.random_uid();
        let mut labels = BTreeMap::from([("app".to_string(), w.name.clone())]);
        let owner = match w.kind {
            WorkloadKind::Deployment => {
                labels.insert("pod-template-hash".to_string(), hash.clone());
                Some(format!("{}-{hash}", w.name))
            }
            WorkloadKind::StatefulSet => {
                labels.insert("statefulset.kubernetes.io/pod-name".to_string(), name.clone());
                if let Some(o) = ordinal {
                    labels.insert("apps.kubernetes.io/pod-index".to_string(), o.to_string());
                }
                Some(w.name.clone())
            }
            WorkloadKind::DaemonSet => {
                labels.insert("pod-template-generation".to_string(), "1".to_string());
                Some(w.name.clone())
            }
            WorkloadKind::Pod => None,
        };
        let annotations = if w.do_not_disrupt {
            BTreeMap::from([(DO_NOT_DISRUPT.to_string(), "true".to_string())])
        } else {
            BTreeMap::new()
        };
        let now = self.now_ms;
        let seq = self.kube.next_pod;
        self.kube.next_pod = seq.saturating_add(1);
        let start_at = node.as_ref().map(|_| now.saturating_add(self.config.pod_start_ms));
        let pod = Pod {
            namespace: ns,
            name,
            uid,
            seq,
            workload: w.name.clone(),
            kind: w.kind,
            owner,
            created_at_ms: now,
            rv: 0,
            labels,
            annotations,
            node_selector: w.node_selector.clone(),
            grace_s: w.grace_period_s,
            stop_ms: w.stop_ms,
            never_terminates: w.never_terminates,
            empty_dir: w.empty_dir,
            bound_at_ms: node.as_ref().map(|_| now),
            node,
            start_at_ms: start_at,
            running_at_ms: None,
            ready: false,
            ready_since_ms: now,
            deletion: None,
        };
        self.kube.insert_pod(cluster, pod);
    }

    /// Binds the cluster's pending pods, oldest first, each to the node that fits best: Ready,
    /// schedulable, no NoSchedule/NoExecute taint, the selector matching, room left; preferring
    /// nodes without a PreferNoSchedule taint, then the fewest pods, then the name.
    fn schedule(&mut self, cluster: &str) {
        let pending: Vec<(u64, String, String)> =
            self.kube.index.unscheduled.get(cluster).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        if pending.is_empty() {
            return;
        }
        let capacity = self.config.pods_per_node as usize;
        let mut open: BTreeSet<(bool, usize, String)> = BTreeSet::new();
        if let Some(c) = self.kube.clusters.get(cluster) {
            for node in c.nodes.values() {
                self.kube.index.steps += 1;
                let count = self.kube.workload_pods_on(cluster, &node.name);
                if node.accepts_pods() && count < capacity {
                    open.insert((node.prefers_no_pods(), count, node.name.clone()));
                }
            }
        }
        let now = self.now_ms;
        let start_at = now.saturating_add(self.config.pod_start_ms);
        for (_, ns, name) in pending {
            if open.is_empty() {
                break;
            }
            let key = (ns, name);
            let Some(selector) = self.kube.pod(cluster, &key).map(|p| p.node_selector.clone()) else {
                continue;
            };
            let Some(c) = self.kube.clusters.get(cluster) else {
                break;
            };
            let pick = open
                .iter()
                .find(|(_, _, n)| {
                    c.nodes.get(n).is_some_and(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                })
                .cloned();
            self.kube.index.steps += open.len().min(16) as u64;
            let Some(entry) = pick else {
                continue;
            };
            open.remove(&entry);
            let (prefer, count, node) = entry;
            self.kube.change_pod(cluster, &key, |p| {
                p.node = Some(node.clone());
                p.bound_at_ms = Some(now);
                p.start_at_ms = Some(start_at);
            });
            if count + 1 < capacity {
                open.insert((prefer, count + 1, node));
            }
        }
    }

    // ---- the API's writes ---------------------------------------------------------------------

    /// Deletes a pod as the API server does: gone at once with a grace period of 0 or when it
    /// was never scheduled; otherwise Terminating, and gone after the shorter of its stop time
    /// and the grace period, unless it never exits or its node is not Ready (then it stays until
    /// its instance is gone). A pod terminating already may be given a shorter grace period.
    /// Returns the pod as deleted.
    fn delete_pod_now(&mut self, cluster: &str, key: &PodKey, grace_s: Option<u64>) -> Option<Pod> {
        let now = self.now_ms;
        let pod = self.kube.pod(cluster, key)?.clone();
        let grace = grace_s.unwrap_or(pod.grace_s);
        let node_ready = pod.node.as_deref().and_then(|n| self.kube.node(cluster, n)).is_some_and(Node::is_ready);
        let exit_at = (node_ready && !pod.never_terminates)
            .then(|| now.saturating_add(pod.stop_ms.min(grace.saturating_mul(1_000))));
        if grace == 0 || pod.node.is_none() {
            let mut gone = self.kube.remove_pod(cluster, key)?;
            if gone.deletion.is_none() {
                gone.deletion = Some(Deletion { at_ms: now, grace_s: 0, gone_at_ms: Some(now) });
            }
            gone.rv = self.kube.revision;
            return Some(gone);
        }
        self.kube.change_pod(cluster, key, |p| {
            match &mut p.deletion {
                Some(d) => {
                    // Only ever shortened.
                    let deadline = d.at_ms.saturating_add(d.grace_s.saturating_mul(1_000));
                    if now.saturating_add(grace.saturating_mul(1_000)) < deadline {
                        d.at_ms = now;
                        d.grace_s = grace;
                        if let Some(at) = exit_at.zip(d.gone_at_ms).map(|(a, b)| a.min(b)) {
                            d.gone_at_ms = Some(at);
                        }
                    }
                }
                None => {
                    p.deletion = Some(Deletion { at_ms: now, grace_s: grace, gone_at_ms: exit_at });
                    if p.ready {
                        p.ready = false;
                        p.ready_since_ms = now;
                    }
                    p.start_at_ms = None;
                }
            }
            p.clone()
        })
    }

    /// `DELETE` of a pod, with its uid as an optional precondition.
    pub(crate) fn api_delete_pod(
        &mut self,
        cluster: &str,
        ns: &str,
        name: &str,
        uid: Option<&str>,
        grace_s: Option<u64>,
    ) -> Result<Pod, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let pod = self.kube.pod(cluster, &key).ok_or_else(|| ApiError::not_found("pods", name))?;
        if let Some(uid) = uid.filter(|u| *u != pod.uid) {
            return Err(ApiError::uid_mismatch("pods", name, uid, &pod.uid));
        }
        let deleted = self.delete_audited(cluster, &key, grace_s, Cause::Deletion);
        self.settle();
        deleted.ok_or_else(|| ApiError::not_found("pods", name))
    }

    /// Deletes a pod, auditing the budgets that fall.
    fn delete_audited(&mut self, cluster: &str, key: &PodKey, grace_s: Option<u64>, cause: Cause) -> Option<Pod> {
        let budgets = self.covering(cluster, std::slice::from_ref(key));
        let before = self.budget_statuses(cluster, &budgets);
        let deleted = self.delete_pod_now(cluster, key, grace_s);
        self.audit_falls(cluster, &budgets, &before, cause, Some(format!("{}/{}", key.0, key.1)), None);
        deleted
    }

    /// The Eviction API (`pkg/registry/core/pod/storage/eviction.go`): a pod that is not
    /// running yet or is terminating already goes without a budget check; a pod with one
    /// budget goes if the budget allows a disruption (or, not ready, if the budget is met);
    /// more than one budget is an error.
    pub(crate) fn api_evict(
        &mut self,
        cluster: &str,
        ns: &str,
        name: &str,
        uid: Option<&str>,
        grace_s: Option<u64>,
    ) -> Result<(), ApiError> {
        let key = (ns.to_string(), name.to_string());
        let pod = self.kube.pod(cluster, &key).ok_or_else(|| ApiError::not_found("pods", name))?;
        if let Some(uid) = uid.filter(|u| *u != pod.uid) {
            return Err(ApiError::uid_mismatch("pods", name, uid, &pod.uid));
        }
        let unchecked = pod.running_at_ms.is_none() || pod.deletion.is_some();
        if !unchecked {
            let budgets = self.kube.budgets_of(cluster, pod);
            if budgets.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(pdb) = budgets.first().and_then(|k| self.kube.clusters.get(cluster)?.pdbs.get(k)) {
                let status = self.kube.budget_status(cluster, pdb, &self.config.workloads);
                let spare = !pod.ready && status.current >= status.desired;
                if !spare && status.allowed <= 0 {
                    let mut e = ApiError::new(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                    e.causes.push((
                        Some("DisruptionBudget".to_string()),
                        format!(
                            "The disruption budget {} needs {} healthy pods and has {} currently",
                            pdb.name, status.desired, status.current
                        ),
                    ));
                    return Err(e);
                }
            }
        }
        self.delete_audited(cluster, &key, grace_s, Cause::Eviction);
        self.settle();
        Ok(())
    }

    /// `PATCH` of a node (a merge patch, parsed).
    pub(crate) fn api_patch_node(&mut self, cluster: &str, name: &str, change: &NodeChange) -> Result<Node, ApiError> {
        let revision = self.kube.revision.saturating_add(1);
        let node = self
            .kube
            .clusters
            .get_mut(cluster)
            .and_then(|c| c.nodes.get_mut(name))
            .ok_or_else(|| ApiError::not_found("nodes", name))?;
        if change.resource_version.as_ref().is_some_and(|rv| *rv != node.rv.to_string()) {
            return Err(ApiError::modified("nodes", name));
        }
        let apply = |map: &mut BTreeMap<String, String>, clear: bool, changes: &BTreeMap<String, Option<String>>| {
            if clear {
                map.clear();
            }
            for (k, v) in changes {
                match v {
                    Some(v) => map.insert(k.clone(), v.clone()),
                    None => map.remove(k),
                };
            }
        };
        apply(&mut node.labels, change.clear_labels, &change.labels);
        apply(&mut node.annotations, change.clear_annotations, &change.annotations);
        if let Some(u) = change.unschedulable {
            node.unschedulable = u;
        }
        if let Some(taints) = &change.taints {
            node.taints = taints.clone();
        }
        node.rv = revision;
        let node = node.clone();
        self.kube.revision = revision;
        self.kube.index.steps += 1;
        self.kube.index.dirty_nodes.insert((cluster.to_string(), name.to_string()));
        self.kube.index.dirty_schedule.insert(cluster.to_string());
        self.settle();
        Ok(node)
    }

    /// `DELETE` of a node: the object goes; pods still bound to it go with it (the pod garbage
    /// collector's orphan rule). A kubelet still running registers its Node again after the
    /// join delay, as a real kubelet does.
    pub(crate) fn api_delete_node(&mut self, cluster: &str, name: &str) -> Result<Node, ApiError> {
        let mut node = self
            .kube
            .clusters
            .get_mut(cluster)
            .and_then(|c| c.nodes.remove(name))
            .ok_or_else(|| ApiError::not_found("nodes", name))?;
        node.rv = self.kube.bump();
        self.kube.index.steps += 1;
        if let Some(id) = &node.instance {
            if self.kube.index.node_of.get(id).is_some_and(|(c, n)| c == cluster && n == name) {
                self.kube.index.node_of.remove(id);
            }
        }
        let pods = self.kube.pods_of_node(cluster, name);
        let audit = node.is_ready().then(|| (Cause::Deletion, None, node.instance.clone()));
        let before = self.before_killing(cluster, &pods, audit.is_some());
        self.kill_pods(cluster, &pods, before, audit);
        if let Some(id) = node.instance.clone() {
            let kubelet_up = self.instance_by_id(&id).is_some_and(|(_, i)| {
                i.instance.state == InstanceState::Running
                    && i.failed_at_ms.is_none()
                    && i.instance.healthy_at_ms.is_some()
            }) && !self.kube.broken.contains(&id);
            if kubelet_up {
                let at = self.now_ms.saturating_add(self.config.join_delay_ms);
                self.kube.schedule_join(&id, at);
            }
        }
        self.kube.index.dirty_schedule.insert(cluster.to_string());
        self.settle();
        Ok(node)
    }

    // ---- read-outs -----------------------------------------------------------------------------

    /// Every cluster the world knows: its groups' and its Kubernetes clusters, sorted.
    pub(crate) fn cluster_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.kube.clusters.keys().cloned().collect();
        names.extend(self.groups.values().map(|g| g.ownership.cluster.clone()));
        names.into_iter().collect()
    }

    pub(crate) fn kube_status(&self) -> (Vec<NodeStatus>, Vec<PodStatus>, Vec<Violation>) {
        let mut nodes = Vec::new();
        let mut pods = Vec::new();
        for (cluster, c) in &self.kube.clusters {
            for n in c.nodes.values() {
                nodes.push(NodeStatus {
                    name: n.name.clone(),
                    cluster: cluster.clone(),
                    instance: n.instance.clone(),
                    ready: n.ready,
                    unschedulable: n.unschedulable,
                    labels: n.labels.clone(),
                    taints: n.taints.clone(),
                });
            }
            for p in c.pods.values() {
                pods.push(PodStatus {
                    cluster: cluster.clone(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    node: p.node.clone(),
                    owner_kind: p.kind.owner_kind().map(str::to_string),
                    phase: p.phase().to_string(),
                    ready: p.ready,
                    terminating: p.deletion.is_some(),
                });
            }
        }
        nodes.sort_by(|a, b| (&a.name, &a.cluster).cmp(&(&b.name, &b.cluster)));
        pods.sort_by(|a, b| (&a.namespace, &a.name, &a.cluster).cmp(&(&b.namespace, &b.name, &b.cluster)));
        (nodes, pods, self.kube.violations.iter().cloned().collect())
    }
}

/// What a keyed map's values are keyed by.
pub(crate) trait Keyed<K> {
    fn key(&self) -> K;
}

impl Keyed<String> for Node {
    fn key(&self) -> String {
        self.name.clone()
    }
}

impl Keyed<PodKey> for Pod {
    fn key(&self) -> PodKey {
        Pod::key(self)
    }
}

impl Keyed<PodKey> for Pdb {
    fn key(&self) -> PodKey {
        (self.namespace.clone(), self.name.clone())
    }
}

impl Pdb {
    fn key(&self) -> PodKey {
        Keyed::key(self)
    }
}

/// A map of objects stored as a list of them (each holds its key); a later duplicate wins.
mod keyed {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Keyed;

    pub fn serialize<S: Serializer, K, V: Serialize>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Ord,
        V: Deserialize<'de> + Keyed<K>,
    {
        Ok(Vec::<V>::deserialize(d)?.into_iter().map(|v| (v.key(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use drydock_provider::{CreateGroup, GenerationSpec, GroupSettings, Ownership};

    use super::*;
    use crate::config::{ClockMode, SimConfig};
    use crate::world::Op;
    use crate::FailTarget;

    fn group(name: &str, desired: u32) -> Op {
        Op::CreateGroup(Box::new(CreateGroup {
            name: name.into(),
            ownership: Ownership {
                lineage: "l".into(),
                cluster: "prod".into(),
                node_group: "web".into(),
                generation: name.into(),
            },
            spec: GenerationSpec {
                image: "ami-1".into(),
                instance_types: vec!["m5.large".into()],
                kubernetes_version: "1.31".into(),
                taints: vec!["spot:PreferNoSchedule".into()],
                ..GenerationSpec::default()
            },
            settings: GroupSettings {
                min: 0,
                max: 10,
                desired,
                subnets: vec!["subnet-a".into(), "subnet-b".into()],
                ..GroupSettings::default()
            },
            join: None,
        }))
    }

    fn workloads() -> Vec<Workload> {
        let w = |name: &str| Workload { name: name.into(), ..Workload::default() };
        vec![
            Workload { replicas: 4, min_available: Some("50%".into()), ..w("web") },
            Workload { kind: WorkloadKind::StatefulSet, replicas: 2, max_unavailable: Some("1".into()), ..w("db") },
            Workload { kind: WorkloadKind::DaemonSet, ..w("agent") },
            Workload { kind: WorkloadKind::Pod, replicas: 2, namespace: "batch".into(), ..w("job") },
            Workload { never_terminates: true, ..w("stuck") },
        ]
    }

    /// Applies `op` to the world in memory and to a copy read back from its JSON (as another
    /// process reads the snapshot): both must end up the same world.
    fn step(a: &mut World, op: Op) {
        let mut b = World::from_json(&a.to_json().unwrap()).unwrap();
        let _ = a.apply(&op);
        let _ = b.apply(&op);
        let (a, b) =
            (String::from_utf8(a.to_json().unwrap()).unwrap(), String::from_utf8(b.to_json().unwrap()).unwrap());
        assert!(a == b, "the worlds differ after {op:?}");
    }

    #[test]
    fn a_reread_world_evolves_as_the_one_in_memory() {
        let config = SimConfig { seed: 9, pods_per_node: 3, workloads: workloads(), ..SimConfig::default() };
        let mut a = World::new(config.clone(), ClockMode::Virtual, 0);
        step(&mut a, group("g1", 3));
        step(&mut a, Op::Sleep { ms: 7_000 });
        let pods: Vec<PodKey> = a.kube.clusters["prod"].pods.keys().cloned().collect();
        assert!(pods.len() >= 10, "{pods:?}");
        let nodes: Vec<String> = a.kube.clusters["prod"].nodes.keys().cloned().collect();
        assert_eq!(nodes.len(), 3);
        let evict = |k: &PodKey, grace_s| Op::EvictPod {
            cluster: "prod".into(),
            namespace: k.0.clone(),
            name: k.1.clone(),
            uid: None,
            grace_s,
        };
        for k in pods.iter().filter(|k| k.1.starts_with("web-") || k.1.starts_with("stuck-")) {
            step(&mut a, evict(k, None));
        }
        step(
            &mut a,
            Op::DeletePod {
                cluster: "prod".into(),
                namespace: "batch".into(),
                name: "job-0".into(),
                uid: None,
                grace_s: Some(0),
            },
        );
        let change = NodeChange {
            unschedulable: Some(true),
            labels: BTreeMap::from([("x".into(), Some("1".into()))]),
            taints: Some(vec![Taint { key: "drydock.dev/outdated".into(), value: None, effect: "NoSchedule".into() }]),
            ..NodeChange::default()
        };
        step(&mut a, Op::PatchNode { cluster: "prod".into(), name: nodes[0].clone(), change });
        let kubelet = FailTarget::Kubelet { instance: None, cluster: None, node_group: Some("web".into()), count: 1 };
        step(&mut a, Op::Fail(kubelet));
        step(&mut a, Op::Sleep { ms: 2_000 });
        let first = a.kube.clusters["prod"].nodes[&nodes[0]].instance.clone().unwrap();
        step(&mut a, Op::TerminateInstances { group: "g1".into(), ids: vec![first], decrement: false });
        step(&mut a, Op::Sleep { ms: 10_000 });
        step(&mut a, Op::DeleteNode { cluster: "prod".into(), name: nodes[0].clone() });
        step(&mut a, Op::DeleteNode { cluster: "prod".into(), name: nodes[1].clone() });
        let fewer = SimConfig { workloads: workloads()[..2].to_vec(), ..config };
        step(&mut a, Op::Configure { config: fewer, clock: ClockMode::Virtual, wall_ms: None });
        step(&mut a, Op::Sleep { ms: 20_000 });
        step(&mut a, Op::DeleteGroup { name: "g1".into() });
        step(&mut a, Op::Sleep { ms: 20_000 });
        assert!(!a.kube.violations.is_empty());
    }

    #[test]
    fn a_hand_edited_cluster_is_no_panic() {
        let config = SimConfig { seed: 3, workloads: workloads(), ..SimConfig::default() };
        let mut json: serde_json::Value =
            serde_json::from_slice(&World::new(config.clone(), ClockMode::Virtual, 0).to_json().unwrap()).unwrap();
        json["kube"] = serde_json::json!({
            "revision": u64::MAX,
            "next_pod": u64::MAX,
            "clusters": {"prod": {"joined": true,
                "nodes": [{"name": "n1", "uid": "u", "instance": "i-missing", "ready": "True"},
                          {"name": "n1", "uid": "dup"}, {"name": "n2", "uid": "v", "ready": "Unknown"}],
                "pods": [{"namespace": "default", "name": "p", "uid": "x", "node": "nowhere", "kind": "daemonset",
                          "workload": "ghost", "deletion": {"at_ms": 0, "grace_s": 0, "gone_at_ms": 5}},
                         {"namespace": "default", "name": "q", "uid": "y", "start_at_ms": 3, "node": "n2",
                          "labels": {"app": "web"}, "ready": true},
                         {"namespace": "default", "name": "web-0", "uid": "z", "node": "n1", "labels": {"app": "web"},
                          "running_at_ms": 1, "ready": true, "grace_s": 18446744073709551615_u64, "stop_ms": 18446744073709551615_u64}],
                "pdbs": [{"namespace": "default", "name": "web", "uid": "b", "min_available": "x%",
                          "selector": {"app": "web"}},
                         {"namespace": "default", "name": "web2", "uid": "c", "max_unavailable": "400%",
                          "selector": {"app": "web"}}],
                "bare": {"batch": {"job": 4_000_000_000_u64}}}},
            "joining": {"i-nope": 1},
            "broken": ["i-x"],
            "violations": [{"kind": "bound_pods", "t_ms": 1, "cluster": "c", "instance": "i", "node": "n", "pods": []}]
        });
        let mut world = World::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        let ops = [
            Op::Sleep { ms: 10 },
            Op::EvictPod {
                cluster: "prod".into(),
                namespace: "default".into(),
                name: "web-0".into(),
                uid: None,
                grace_s: None,
            },
            Op::EvictPod {
                cluster: "prod".into(),
                namespace: "default".into(),
                name: "q".into(),
                uid: Some("y".into()),
                grace_s: Some(u64::MAX),
            },
            Op::DeletePod {
                cluster: "prod".into(),
                namespace: "default".into(),
                name: "web-0".into(),
                uid: None,
                grace_s: Some(u64::MAX),
            },
            Op::PatchNode {
                cluster: "prod".into(),
                name: "n1".into(),
                change: NodeChange { clear_labels: true, ..NodeChange::default() },
            },
            Op::DeleteNode { cluster: "prod".into(), name: "n1".into() },
            Op::DeleteNode { cluster: "nowhere".into(), name: "n1".into() },
            group("g1", 2),
            Op::Sleep { ms: 100_000 },
            Op::Configure {
                config: SimConfig { workloads: vec![], ..config },
                clock: ClockMode::Real,
                wall_ms: Some(u64::MAX - 5),
            },
            Op::Advance { to_ms: u64::MAX },
        ];
        for op in ops {
            let _ = world.apply(&op);
            // And read back.
            world = World::from_json(&world.to_json().unwrap()).unwrap();
        }
    }

    #[test]
    fn taints_parse_as_kubelet_flags_write_them() {
        assert_eq!(
            parse_taint("dedicated=gpu:NoSchedule"),
            Some(Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into() })
        );
        assert_eq!(
            parse_taint("spot:PreferNoSchedule"),
            Some(Taint { key: "spot".into(), value: None, effect: "PreferNoSchedule".into() })
        );
        assert_eq!(parse_taint("a=b"), None);
        assert_eq!(parse_taint("a=b:Sometimes"), None);
        assert_eq!(parse_taint(":NoSchedule"), None);
    }

    #[test]
    fn uids_are_uuid_shaped_and_hashes_hex() {
        let u = uuid(u64::MAX, 0);
        assert_eq!(u.len(), 36);
        assert_eq!(u.chars().filter(|c| *c == '-').count(), 4);
        assert_eq!(&u[14..15], "4");
        assert_eq!(derived_uid(&["a", "b"]), derived_uid(&["a", "b"]));
        assert_ne!(derived_uid(&["a", "b"]), derived_uid(&["ab"]));
        let h = template_hash("default", "web");
        assert_eq!(h.len(), 10);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn budgets_round_percentages_up() {
        assert_eq!(percent_up(50, 3), 2);
        assert_eq!(percent_up(80, 10), 8);
        assert_eq!(percent_up(0, 10), 0);
        assert!(matches!(parse_int_or_percent(" 80% "), Some(IntOrPercent::Percent(80))));
        assert!(matches!(parse_int_or_percent("5"), Some(IntOrPercent::Int(5))));
        assert!(parse_int_or_percent("-1").is_none());
        assert!(parse_int_or_percent("x%").is_none());
    }

    #[test]
    fn node_names_probe_past_taken_addresses() {
        let mut taken = BTreeMap::new();
        let (first, ip) = node_name("i-0123", &taken);
        assert!(first.starts_with("ip-10-") && first.ends_with(".sim.internal"), "{first}");
        assert_eq!(first, format!("ip-{}.sim.internal", ip.replace('.', "-")));
        let node = Node {
            name: first.clone(),
            uid: String::new(),
            instance: None,
            zone: String::new(),
            instance_type: String::new(),
            kubelet_version: String::new(),
            ip,
            created_at_ms: 0,
            rv: 0,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            unschedulable: false,
            taints: Vec::new(),
            ready: ConditionStatus::True,
            ready_since_ms: 0,
            not_ready: None,
        };
        taken.insert(first.clone(), node);
        let (second, _) = node_name("i-0123", &taken);
        assert_ne!(second, first);
    }
}
