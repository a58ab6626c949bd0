//! The domain model every layer shares: what a node group is (its replacement-forcing
//! [`NodeSpec`] apart from its in-place [`NodeSettings`]), its role, and where state is kept
//! ([`Backend`]). Plain data, with no spans and no language: `config` produces it, `plan`,
//! `apply` and `state` consume it. Also the names the cloud and Kubernetes see, as pure
//! functions (`names`): how a cloud group name is made, and which labels Kubernetes takes, so
//! that the planner and the configuration's checks can never disagree.
//!
//! Invariant: depends on nothing of drydock's. The serde derives serve saved plans; the state
//! file has its own persisted types (`drydock_state::format`), so renaming a field here never
//! changes the state format.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

mod names;
pub use names::{
    cloud_group_name, cloud_name_part, label_key_problem, label_value_problem, shows_in_cloud_names, LABEL_NAME_MAX,
    LABEL_PREFIX_MAX,
};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Worker,
    ControlPlane,
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
    /// How the nodes join their cluster; `None`: `kind = "script"`, the node group's own
    /// `user_data` does it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
}

/// A generated bootstrap (`bootstrap { kind = … }`): what the nodes join. The join secrets are
/// not part of it (see [`JoinSecrets`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Bootstrap {
    /// `kubeadm join` to the API server at `endpoint` (`host:port`).
    Kubeadm { endpoint: String },
    /// Amazon Linux 2023's nodeadm, joining the EKS cluster `cluster_name`.
    Eks { cluster_name: String },
}

/// What a kubeadm node needs only while it joins: rotating them reaches the nodes launched
/// later without replacing those that joined. Never serialised; its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct JoinSecrets {
    pub token: String,
    pub ca_cert_hashes: Vec<String>,
    pub certificate_key: Option<String>,
}

impl std::fmt::Debug for JoinSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinSecrets(…)")
    }
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
    /// How old nodes are drained before their instances go (with a `kubernetes` block).
    #[serde(default)]
    pub drain: Drain,
    /// The Kubernetes labels drydock keeps on the node group's Nodes. The generation's spec
    /// carries them too (the bootstrap registers Nodes with them); in a cluster with a
    /// `kubernetes` block a change of labels alone is applied to the Nodes in place instead of
    /// rolling out a new generation.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The keys of `tags` whose values derive from a sensitive value: the state records a
    /// digest of those values, never the value.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive_tags: BTreeSet<String>,
    /// The same for `labels`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive_labels: BTreeSet<String>,
}

/// How a node is drained before its instance is terminated: evictions that respect
/// PodDisruptionBudgets, for at most `timeout_ms`, then `on_timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub timeout_ms: u64,
    pub on_timeout: OnTimeout,
    /// The grace period given to evicted pods; `None`: each pod's own.
    #[serde(default)]
    pub grace_period_s: Option<u64>,
}

impl Default for Drain {
    /// 15 minutes, then fail: as EKS managed node groups and kOps.
    fn default() -> Drain {
        Drain { timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS, on_timeout: OnTimeout::Fail, grace_period_s: None }
    }
}

pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 900_000;
pub const DEFAULT_NODE_STARTUP_TIMEOUT_MS: u64 = 600_000;

/// What a drain does when `drain.timeout` passes with pods left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    /// Halt the rollout with the old capacity intact, and report what blocked.
    #[default]
    Fail,
    /// Delete the remaining pods (bypassing their disruption budgets) and go on.
    Force,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub check: HealthCheck,
    pub grace_period_ms: u64,
    pub max_unhealthy: IntOrPercent,
    pub unhealthy_timeout_ms: u64,
    pub startup_timeout_ms: u64,
    /// A node whose Node is not Ready this long after its instance launched fails its wave
    /// (rollout) or is replaced (watch).
    #[serde(default = "default_node_startup_timeout")]
    pub node_startup_timeout_ms: u64,
}

fn default_node_startup_timeout() -> u64 {
    DEFAULT_NODE_STARTUP_TIMEOUT_MS
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
    /// How long a new Node must have been Ready (without pressure) to count, as Cluster
    /// API's `minReadySeconds`.
    #[serde(default)]
    pub min_ready_ms: u64,
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
            IntOrPercent::Percent(p) => write!(f, "{}%", format_number(*p)),
        }
    }
}

pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Formats milliseconds the way they are written: `90s`, `1h30m`, `250ms`.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}
