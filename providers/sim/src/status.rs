//! What `drydock sim status` and the tests read out of the world: a small status snapshot and
//! the capacity timeline.

use std::collections::BTreeMap;

use drydock_provider::kube::{ConditionStatus, Taint};
use drydock_provider::InstanceState;
use serde::{Deserialize, Serialize};

/// The world at one moment, small enough to print: live and shutting-down instances only
/// (terminated instances are dropped from the world once gone), the simulated clusters'
/// Nodes, Pods and disruption audit, and the real etcd members of a world that runs them.
///
/// Serialises exactly as (every key always present; `null` where a value is absent):
///
/// ```text
/// {"now_ms",
///  "groups": [{"cluster", "node_group", "generation", "name", "min", "max", "desired",
///              "launch_version", "join_digest",
///              "instances": [{"id", "zone", "image", "instance_type", "state", "healthy",
///                             "launched_at_ms", "launch_version"}]}],
///  "nodes": [{"name", "cluster", "instance", "ready", "unschedulable", "labels": {…},
///             "taints": [{"key", "value" (omitted when none), "effect"}]}],
///  "pods": [{"cluster", "namespace", "name", "node", "owner_kind", "phase", "ready",
///            "terminating"}],
///  "violations": [{"kind": "budget", "t_ms", "cluster", "budget", "healthy", "desired",
///                  "cause", "pod", "instance"}
///               | {"kind": "bound_pods", "t_ms", "cluster", "instance", "node", "pods": […]}],
///  "etcd": [{"cluster", "id", "name", "instance", "client_url", "learner", "started",
///            "healthy", "error"}]}
/// ```
///
/// `nodes` are sorted by name (then cluster), `pods` by namespace, name and cluster,
/// `violations` oldest first, `etcd` by cluster, name and id. A node's `ready` is `"True"`,
/// `"False"` (a control-plane Node waiting for its etcd member, or whose member failed to
/// join) or `"Unknown"`, its `instance` the instance id in its provider id (or `null`); a pod's
/// `node` is `null` while unscheduled, its `owner_kind` `"ReplicaSet"`, `"StatefulSet"`,
/// `"DaemonSet"` or `null` (a bare pod), its `phase` `"Pending"` or `"Running"`. See
/// [`Violation`] for the audit. `pods` are the workloads' pods: the etcd members' mirror pods
/// are served by the API server only. `etcd` is empty unless the world runs real etcd members
/// ([`SimConfig::etcd`](crate::SimConfig::etcd)); see [`EtcdMemberStatus`]: its entries are
/// etcd's member list as [`status`](crate::status) reads it from the members (an `id` in hex),
/// a member healthy when it answers without errors and its process runs; when no member of a
/// cluster answers, they are the members the world recorded, none healthy; a member that never
/// joined (`"id": "0"`, `error` saying why) is listed from the world's records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub now_ms: u64,
    /// Sorted by cluster, node group, creation time and name, so that generations of one node
    /// group appear oldest first.
    pub groups: Vec<GroupStatus>,
    /// Every Node object of every simulated cluster, including those whose instance is gone
    /// (until someone deletes them).
    #[serde(default)]
    pub nodes: Vec<NodeStatus>,
    #[serde(default)]
    pub pods: Vec<PodStatus>,
    /// The disruption audit, oldest first (the last [`VIOLATION_LIMIT`](crate::VIOLATION_LIMIT)).
    #[serde(default)]
    pub violations: Vec<Violation>,
    /// The etcd members of every cluster of a world with real etcd members
    /// ([`SimConfig::etcd`](crate::SimConfig::etcd)), as etcd lists them when
    /// [`status`](crate::status) is read; empty otherwise.
    #[serde(default)]
    pub etcd: Vec<EtcdMemberStatus>,
}

/// One etcd member in a [`Status`]: a member of the cluster's real etcd member list (asked at
/// status time), or a member the world recorded (when no member answers, or one that never
/// joined).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EtcdMemberStatus {
    /// The cluster (its control-plane group's ownership cluster).
    pub cluster: String,
    /// The member id in hex, as `etcdctl member list` prints it (`"0"`: it never became a
    /// member).
    pub id: String,
    /// Its name (kubeadm's rule: its Node's name); empty while it is added but not started.
    pub name: String,
    /// The instance it runs on, when the world knows it.
    pub instance: Option<String>,
    /// Its (first) client URL.
    pub client_url: Option<String>,
    /// Not promoted yet: it does not vote.
    pub learner: bool,
    /// It has started and joined (etcd knows its name).
    pub started: bool,
    /// It answered a status request without errors, and its process runs.
    pub healthy: bool,
    /// Why it is not healthy: etcd's or the network's words, why its process stopped, or why
    /// it failed to join.
    pub error: Option<String>,
}

/// One Node in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    /// The cluster (its instance's group's ownership cluster).
    pub cluster: String,
    /// The instance id of its `spec.providerID` (`sim:///ZONE/ID`).
    pub instance: Option<String>,
    /// Its `Ready` condition.
    pub ready: ConditionStatus,
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

/// One Pod in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PodStatus {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// `spec.nodeName`: `None` while unscheduled.
    pub node: Option<String>,
    /// The kind of its controller: `ReplicaSet`, `StatefulSet`, `DaemonSet`, or `None`.
    pub owner_kind: Option<String>,
    /// `Pending` or `Running`.
    pub phase: String,
    /// Its `Ready` condition is True.
    pub ready: bool,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub terminating: bool,
}

/// An entry of the disruption audit: something a rollout must never do, recorded when it
/// happens. Falls caused by crashes, zone outages or kubelet failures are not recorded (nobody
/// chose them), nor are terminations of instances whose Node was not Ready (its pods were lost
/// already).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// A PodDisruptionBudget's currentHealthy fell (and is now below its desiredHealthy)
    /// because of an eviction or a deletion of `pod`, or the termination of `instance` (or
    /// the deletion of its Node, a `deletion` with no pod).
    Budget {
        t_ms: u64,
        cluster: String,
        /// `namespace/name`.
        budget: String,
        /// currentHealthy and desiredHealthy just after.
        healthy: i32,
        desired: i32,
        cause: Cause,
        /// `namespace/name`.
        pod: Option<String>,
        instance: Option<String>,
    },
    /// An instance was terminated while pods that are not DaemonSet pods (terminating ones
    /// included) were still bound to its Node: it was not drained, or not waited for.
    BoundPods {
        t_ms: u64,
        cluster: String,
        instance: String,
        node: String,
        /// `namespace/name`, sorted.
        pods: Vec<String>,
    },
}

/// What made a budget fall.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Eviction,
    Deletion,
    Termination,
}

/// One group in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub cluster: String,
    pub node_group: String,
    pub generation: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// The version of the group's launch definition (a rotated join secret makes a new one).
    pub launch_version: u32,
    /// The digest of the join secrets it holds (`sha256:…`), `null` without any.
    pub join_digest: Option<String>,
    /// In launch order.
    pub instances: Vec<InstanceStatus>,
}

/// One instance in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub id: String,
    pub zone: String,
    pub image: String,
    pub instance_type: String,
    /// `"pending"`, `"running"`, `"shutting-down"` or `"terminated"`.
    pub state: InstanceState,
    pub healthy: bool,
    pub launched_at_ms: u64,
    /// The version of its group's launch definition it was launched from.
    pub launch_version: u32,
}

/// The capacity of one node group (all generations of one cluster's node group, found by their
/// ownership tags) from `t_ms` on, recorded whenever it changes, so that a test can check that a
/// rollout never dropped below its floor or rose above its ceiling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapacityPoint {
    pub t_ms: u64,
    pub cluster: String,
    pub node_group: String,
    /// Running and healthy: serving.
    pub healthy: u32,
    /// Running, healthy or not.
    pub running: u32,
    /// Pending or running: what the groups count towards their desired capacity (instances
    /// shutting down are not counted).
    pub total: u32,
}
