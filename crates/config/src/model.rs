//! The typed model a configuration evaluates to: what the planner reads. Each node
//! group keeps its replacement-forcing fields ([`NodeSpec`]) apart from its in-place
//! fields ([`NodeSettings`]); the planner hashes the first to name a generation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use drydock_model::{
    Backend, Bootstrap, CapacityType, Drain, Health, HealthCheck, IntOrPercent, JoinSecrets, Metadata, NodeSettings,
    NodeSpec, OnTimeout, Role, Rollout, RootVolume,
};

use super::value::Value;
use drydock_syntax::diag::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub providers: Vec<ProviderConfig>,
    pub backend: Option<Backend>,
    /// Sorted by address.
    pub clusters: Vec<Cluster>,
    /// Sorted by name.
    pub outputs: Vec<Output>,
    /// `moved` blocks: node groups renamed, in the order written.
    pub moves: Vec<Move>,
}

/// A `moved { from = …, to = … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub span: Span,
}

impl Model {
    pub fn node_group_count(&self) -> usize {
        self.clusters.iter().map(|c| c.node_groups.len()).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// `sim` or `aws`.
    pub kind: String,
    pub alias: Option<String>,
    pub settings: ProviderSettings,
    pub span: Span,
}

impl ProviderConfig {
    /// `sim`, or `aws.west` for an aliased provider.
    pub fn reference(&self) -> String {
        match &self.alias {
            Some(a) => format!("{}.{a}", self.kind),
            None => self.kind.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    Sim(SimSettings),
    Aws(AwsSettings),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSettings {
    pub boot_time_ms: u64,
    pub detection_delay_ms: u64,
    pub failure_rate: f64,
    pub bad_images: Vec<String>,
    pub seed: u64,
    /// From an instance running to its Node registering.
    #[serde(default)]
    pub join_delay_ms: Option<u64>,
    /// From a pod bound to Running and Ready.
    #[serde(default)]
    pub pod_start_ms: Option<u64>,
    #[serde(default)]
    pub pods_per_node: Option<u32>,
    /// The workloads its simulated Kubernetes runs, by name.
    #[serde(default)]
    pub workloads: Vec<SimWorkload>,
    /// Each control-plane instance runs a real etcd member (a process on loopback), joined as
    /// kubeadm joins one.
    #[serde(default)]
    pub etcd: bool,
}

/// A workload of the simulated Kubernetes (`workload "web" { … }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimWorkload {
    pub name: String,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// `deployment`, `statefulset`, `daemonset` or `pod` (bare pods without a controller).
    pub kind: String,
    pub replicas: Option<u32>,
    /// `5` or `80%`: a PodDisruptionBudget named after the workload.
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
    pub empty_dir: bool,
    pub grace_period_s: Option<u64>,
    pub stop_ms: Option<u64>,
    pub never_terminates: bool,
    pub do_not_disrupt: bool,
    pub node_selector: BTreeMap<String, String>,
    /// The budget's selector; empty: the workload's own pods (`app: NAME`).
    pub pdb_selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    /// The `for_each` key, for clusters made by `for_each`.
    pub key: Option<String>,
    /// `cluster.demo` or `cluster.fleet["eu"]`.
    pub address: String,
    /// The provider reference (`sim`, `aws.west`) this cluster is built with.
    pub provider: String,
    pub kubernetes_version: String,
    pub tags: BTreeMap<String, String>,
    pub subnets: Vec<String>,
    /// Most nodes of the cluster being replaced at once, for any reason.
    pub disruption_budget: IntOrPercent,
    /// How to reach the cluster's Kubernetes API; `None`: drydock does not drain, and only the
    /// cloud's health counts.
    pub kubernetes: Option<KubernetesAccess>,
    /// Sorted by address.
    pub node_groups: Vec<NodeGroup>,
    /// The cluster's attribute paths whose values derive from a sensitive variable (`tags`).
    pub sensitive: BTreeSet<String>,
    pub span: Span,
}

impl Cluster {
    /// The cluster's ownership name, as the planner tags and names its groups: `demo`,
    /// `fleet["eu"]`: the address without its leading `cluster.` (every one of them, as the
    /// planner's `owner_names` has it, so a cluster `cluster.a` is owned as `a`).
    pub fn owner_name(&self) -> &str {
        self.address.trim_start_matches("cluster.")
    }
}

/// A cluster's `kubernetes` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubernetesAccess {
    /// The kubeconfig file; `None`: `$KUBECONFIG`, then `~/.kube/config` (for a cluster on the
    /// simulated cloud: the sim's own API server).
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; `None`: its current context.
    pub context: Option<String>,
    /// How drydock reaches the control plane's etcd; `None`: it does not manage etcd members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdAccess>,
}

/// A `kubernetes { etcd { … } }` block: drydock manages the membership of a self-managed
/// (kubeadm, stacked) control plane's etcd.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EtcdAccess {
    /// Client URLs to start from; empty: those kubeadm advertises on the etcd static pods
    /// (`kubeadm.kubernetes.io/etcd.advertise-client-urls`), read through the Kubernetes API.
    pub endpoints: Vec<String>,
    /// The CA that signed the members' serving certificates (PEM file).
    pub ca_file: Option<String>,
    /// A client certificate and key etcd accepts (kubeadm's `healthcheck-client` or
    /// `apiserver-etcd-client`).
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroup {
    /// A kubeadm bootstrap's join secrets (token, CA hashes, certificate key): not part of the
    /// spec, so that rotating them replaces no node.
    pub join: Option<JoinSecrets>,
    pub name: String,
    pub key: Option<String>,
    /// `cluster.demo.node_group.workers` or `…workers["us-east-1a"]`.
    pub address: String,
    pub role: Role,
    pub spec: NodeSpec,
    pub settings: NodeSettings,
    /// Attribute paths whose values derive from a sensitive variable.
    pub sensitive: BTreeSet<String>,
    pub span: Span,
    /// Where each attribute was set (in the node group, or inherited from `defaults`), by its
    /// path (`size`, `rollout.max_surge`; the schema's names, so none is allocated).
    pub attr_spans: BTreeMap<&'static str, Span>,
}

impl NodeGroup {
    /// The node group's ownership name, as the planner tags and names its groups: `workers`,
    /// `workers["us-east-1a"]` (what follows the last `.node_group.` of the address).
    pub fn owner_name(&self) -> &str {
        self.address.rsplit_once(".node_group.").map_or(&self.name, |(_, g)| g)
    }

    /// What the node group's cloud group names hold between the lineage prefix and the
    /// generation ([`drydock_model::cloud_name_part`]).
    pub fn cloud_name_part(&self, cluster: &Cluster) -> String {
        drydock_model::cloud_name_part(cluster.owner_name(), self.owner_name())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub description: Option<String>,
    /// May hold `Value::Unknown` parts, filled in after apply.
    pub value: Value,
    pub sensitive: bool,
    pub span: Span,
}
