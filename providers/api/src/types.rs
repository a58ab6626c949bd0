//! The node-group types that cross the provider boundary: ownership, specs, settings and
//! what observation returns.
//!
//! Maps are `BTreeMap`s so that serialisation (state files, plans, golden tests) is stable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Tag key naming the lineage: one drydock configuration's objects, across all its clusters.
pub const TAG_LINEAGE: &str = "drydock:lineage";
/// Tag key naming the Kubernetes cluster the group's nodes join.
pub const TAG_CLUSTER: &str = "drydock:cluster";
/// Tag key naming the node group, stable across generations.
pub const TAG_NODE_GROUP: &str = "drydock:node-group";
/// Tag key naming the generation: one immutable [`GenerationSpec`] of the node group.
pub const TAG_GENERATION: &str = "drydock:generation";
/// All ownership tag keys, in the order of [`Ownership`]'s fields.
pub const OWNERSHIP_TAGS: [&str; 4] = [TAG_LINEAGE, TAG_CLUSTER, TAG_NODE_GROUP, TAG_GENERATION];

/// Whether a tag is one a provider manages itself rather than one a node group sets: the
/// ownership tags and anything else under `drydock:`, and the Kubernetes cluster tag
/// (`kubernetes.io/cluster/<name>`) that cloud controllers look for, which a provider may add
/// to every group, and AWS's reserved `aws:` tags. Part of the contract: the planner never
/// reports these as drift.
pub fn is_provider_managed_tag(key: &str) -> bool {
    // `aws:` is reserved by AWS for the tags it sets itself (CloudFormation, the autoscaler).
    key.starts_with("drydock:") || key.starts_with("kubernetes.io/cluster/") || key.starts_with("aws:")
}

/// Who owns an object: written as tags on everything drydock creates, so that observation finds
/// it without a state file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ownership {
    pub lineage: String,
    pub cluster: String,
    pub node_group: String,
    pub generation: String,
}

impl Ownership {
    /// The ownership as cloud tags (the `drydock:*` keys).
    pub fn tags(&self) -> BTreeMap<String, String> {
        [
            (TAG_LINEAGE, &self.lineage),
            (TAG_CLUSTER, &self.cluster),
            (TAG_NODE_GROUP, &self.node_group),
            (TAG_GENERATION, &self.generation),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    /// Reads the ownership back from an object's tags; `None` unless all four keys are present,
    /// because an object with only some of them was not made by drydock and must not be touched.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Ownership> {
        Some(Ownership {
            lineage: tags.get(TAG_LINEAGE)?.clone(),
            cluster: tags.get(TAG_CLUSTER)?.clone(),
            node_group: tags.get(TAG_NODE_GROUP)?.clone(),
            generation: tags.get(TAG_GENERATION)?.clone(),
        })
    }
}

/// The immutable part of a node group: changing any of it forces a new generation (a new group
/// whose instances replace the old ones), because running machines cannot be changed in place.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct GenerationSpec {
    pub image: String,
    /// In order of preference; the first is launched when capacity allows.
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub user_data: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints as `key=value:Effect` strings.
    #[serde(default)]
    pub taints: Vec<String>,
    #[serde(default)]
    pub root_volume: Option<RootVolume>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub capacity_type: CapacityType,
    pub kubernetes_version: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub instance_profile: Option<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// How the nodes join their cluster; `None`: the node group's own `user_data` does it.
    /// Absent from the serialised spec when `None`, so that generation ids (a hash of the
    /// serialised spec) of specs written before bootstraps existed stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<crate::Bootstrap>,
    /// How many times the node group was rolled out onto a new generation of the same spec
    /// (`drydock apply --replace`): a new generation id, nothing else different. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rebuild: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The root volume of each instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RootVolume {
    pub size_gib: u32,
    pub volume_type: String,
    pub encrypted: bool,
    #[serde(default)]
    pub iops: Option<u32>,
}

/// Instance metadata service settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Session tokens required (IMDSv2 only).
    pub http_tokens_required: bool,
    /// How many network hops a metadata response may travel; pods need 2.
    pub hop_limit: u32,
}

impl Default for Metadata {
    /// The safe default: tokens required, and a hop limit that still lets pods reach the service.
    fn default() -> Metadata {
        Metadata { http_tokens_required: true, hop_limit: 2 }
    }
}

/// How instances are bought.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    #[default]
    OnDemand,
    Spot,
}

/// What the nodes of a group are for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    #[default]
    Worker,
    ControlPlane,
}

/// The in-place settings of one autoscaling group: changing them needs no new generation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct GroupSettings {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// The group launches into these subnets, spreading instances over their zones.
    pub subnets: Vec<String>,
    /// Tags beyond the ownership tags, which the provider adds itself.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub health_check: HealthCheck,
    /// How long after launch the group ignores its health checks.
    #[serde(default)]
    pub grace_period_ms: u64,
}

/// Which health signal makes a group replace an instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HealthCheck {
    /// Machine status checks only: a machine that runs but serves nothing is not replaced.
    #[default]
    Ec2,
    /// Load-balancer checks: an instance that never becomes healthy is replaced too.
    Elb,
}

/// One machine of a group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub zone: String,
    pub subnet: String,
    pub image: String,
    pub instance_type: String,
    pub state: InstanceState,
    /// Serving: booted and passing its health checks.
    pub healthy: bool,
    pub launched_at_ms: u64,
    /// When it first became healthy; `None` while it never has.
    #[serde(default)]
    pub healthy_at_ms: Option<u64>,
}

impl Instance {
    /// Pending or running: it counts towards the group's capacity.
    pub fn is_live(&self) -> bool {
        matches!(self.state, InstanceState::Pending | InstanceState::Running)
    }

    /// Running and healthy: it serves.
    pub fn is_in_service(&self) -> bool {
        self.state == InstanceState::Running && self.healthy
    }
}

/// The life of an instance, as EC2 names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// The lowercase name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group as the cloud reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ObservedGroup {
    pub name: String,
    pub ownership: Ownership,
    pub spec: GenerationSpec,
    /// The provider did not read the whole spec: only what the group itself shows (its role,
    /// image, instance types and capacity type) is known, the rest is left at its default. A
    /// provider may skip the read when the group launches from exactly the definition it made
    /// for its generation (which names the spec: the generation is a hash of it), and the
    /// planner then takes the spec from the state.
    #[serde(default)]
    pub spec_partial: bool,
    pub settings: GroupSettings,
    pub instances: Vec<Instance>,
    pub created_at_ms: u64,
    /// The [`JoinSecrets::digest`](crate::JoinSecrets::digest) of the secrets the group's next
    /// instances join with; `None` when it launches with none (or the provider cannot tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_digest: Option<String>,
}

impl ObservedGroup {
    /// How many instances count towards capacity (pending or running).
    pub fn live(&self) -> usize {
        self.instances.iter().filter(|i| i.is_live()).count()
    }

    /// How many instances serve (running and healthy).
    pub fn in_service(&self) -> usize {
        self.instances.iter().filter(|i| i.is_in_service()).count()
    }
}

/// Everything of one lineage, groups sorted by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Observed {
    pub groups: Vec<ObservedGroup>,
}

impl Observed {
    /// The group of that name, if observed.
    pub fn group(&self, name: &str) -> Option<&ObservedGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// A request to create one group (one generation of a node group).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreateGroup {
    /// Chosen by the planner, deterministically, so that retries address the same group.
    pub name: String,
    pub ownership: Ownership,
    pub spec: GenerationSpec,
    pub settings: GroupSettings,
    /// The join secrets written into the launch template with the spec's bootstrap (kubeadm);
    /// never serialised.
    #[serde(skip)]
    pub join: Option<crate::JoinSecrets>,
}

/// Calls made to the cloud, per operation name; a plan's cost and a test's proof that
/// observation stays cheap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ApiStats {
    pub calls: BTreeMap<String, u64>,
}

impl ApiStats {
    /// Counts one call of `operation`.
    pub fn record(&mut self, operation: &str) {
        *self.calls.entry(operation.to_string()).or_insert(0) += 1;
    }

    /// Calls of one operation.
    pub fn get(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls of all operations.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ownership() -> Ownership {
        Ownership {
            lineage: "lin-1".into(),
            cluster: "prod".into(),
            node_group: "web".into(),
            generation: "g3f2a".into(),
        }
    }

    #[test]
    fn tags_round_trip() {
        let tags = ownership().tags();
        assert_eq!(tags.len(), 4);
        assert_eq!(tags["drydock:lineage"], "lin-1");
        assert_eq!(tags["drydock:cluster"], "prod");
        assert_eq!(tags["drydock:node-group"], "web");
        assert_eq!(tags["drydock:generation"], "g3f2a");
        assert_eq!(Ownership::from_tags(&tags), Some(ownership()));
    }

    #[test]
    fn from_tags_ignores_other_tags_and_needs_all_four() {
        let mut tags = ownership().tags();
        tags.insert("team".into(), "payments".into());
        assert_eq!(Ownership::from_tags(&tags), Some(ownership()));
        for key in OWNERSHIP_TAGS {
            let mut partial = tags.clone();
            partial.remove(key);
            assert_eq!(Ownership::from_tags(&partial), None, "without {key}");
        }
    }

    #[test]
    fn enums_serialise_in_kebab_case() {
        let json = serde_json::to_string(&[
            InstanceState::Pending,
            InstanceState::Running,
            InstanceState::ShuttingDown,
            InstanceState::Terminated,
        ])
        .unwrap();
        assert_eq!(json, r#"["pending","running","shutting-down","terminated"]"#);
        assert_eq!(
            serde_json::to_string(&(CapacityType::OnDemand, Role::ControlPlane, HealthCheck::Elb)).unwrap(),
            r#"["on-demand","control-plane","elb"]"#
        );
        assert_eq!(InstanceState::ShuttingDown.to_string(), "shutting-down");
    }

    #[test]
    fn stats_count_per_operation_and_in_total() {
        let mut stats = ApiStats::default();
        stats.record("observe");
        stats.record("observe");
        stats.record("create_group");
        assert_eq!(stats.get("observe"), 2);
        assert_eq!(stats.get("delete_group"), 0);
        assert_eq!(stats.total(), 3);
    }
}
