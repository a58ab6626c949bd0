//! The typed model a configuration evaluates to: what the planner reads. Each node
//! group keeps its replacement-forcing fields ([`NodeSpec`]) apart from its in-place
//! fields ([`NodeSettings`]); the planner hashes the first to name a generation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::value::Value;
use crate::diag::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub providers: Vec<ProviderConfig>,
    pub backend: Option<Backend>,
    /// Sorted by address.
    pub clusters: Vec<Cluster>,
    /// Sorted by name.
    pub outputs: Vec<Output>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Backend {
    Local {
        path: Option<String>,
        /// The state lock's lease in milliseconds (`lock_lease`), if set.
        lock_lease_ms: Option<u64>,
    },
    S3 {
        bucket: String,
        key: String,
        region: Option<String>,
        endpoint: Option<String>,
        profile: Option<String>,
        lock_lease_ms: Option<u64>,
    },
}

impl Backend {
    pub fn lock_lease_ms(&self) -> Option<u64> {
        match self {
            Backend::Local { lock_lease_ms, .. } | Backend::S3 { lock_lease_ms, .. } => *lock_lease_ms,
        }
    }
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
    /// Sorted by address.
    pub node_groups: Vec<NodeGroup>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Worker,
    ControlPlane,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroup {
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
    /// Where each attribute was set (in the node group, or inherited from `defaults`).
    pub attr_spans: BTreeMap<String, Span>,
}

/// The replacement-forcing part of a node group: any change rolls out a new generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub image: String,
    pub instance_types: Vec<String>,
    pub user_data: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    pub root_volume: Option<RootVolume>,
    pub metadata: Metadata,
    pub capacity_type: CapacityType,
    pub kubernetes_version: String,
    pub security_groups: Vec<String>,
    pub instance_profile: Option<String>,
    pub key_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootVolume {
    pub size_gib: u32,
    pub volume_type: String,
    pub encrypted: bool,
    pub iops: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// IMDSv2 only (the default).
    pub http_tokens_required: bool,
    pub hop_limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    OnDemand,
    Spot,
}

/// The in-place part of a node group: changing it replaces no node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSettings {
    pub min: u32,
    pub max: u32,
    /// A pinned desired capacity; `None` leaves it to the autoscaler inside min..max.
    pub desired: Option<u32>,
    pub tags: BTreeMap<String, String>,
    pub subnets: Vec<String>,
    pub health: Health,
    pub rollout: Rollout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub check: HealthCheck,
    pub grace_period_ms: u64,
    pub max_unhealthy: IntOrPercent,
    pub unhealthy_timeout_ms: u64,
    pub startup_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    Ec2,
    Elb,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub max_surge: IntOrPercent,
    pub max_unavailable: IntOrPercent,
    pub health_timeout_ms: u64,
}

/// `1` or `25%`, as in Kubernetes' intstr.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntOrPercent {
    Int(u32),
    Percent(f64),
}

impl IntOrPercent {
    /// The count out of `total`: percentages round up for surge, down for unavailability.
    pub fn resolve(self, total: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let exact = f64::from(total) * p / 100.0;
                (if round_up { exact.ceil() } else { exact.floor() }) as u32
            }
        }
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{}%", super::value::format_number(*p)),
        }
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
