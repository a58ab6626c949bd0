//! The planner: model + state + observed cloud → an inert [`Plan`]. Pure: no I/O, no clock.
//!
//! Per node group it decides one action: create, roll out (a new generation replaces the
//! old, in waves computed by [`waves::schedule`]), update in place, or delete. The
//! generation is named by a hash of the replacement-forcing spec only, so formatting,
//! reordering, renaming variables or the autoscaler moving desired capacity can never
//! cause a rollout. The cloud as observed is the truth about what exists (so a crashed run's
//! groups are found and adopted or cleaned up); the state supplies the lineage, the settings
//! last applied and measured boot times.
//!
//! Invariant: knows nothing of the terminal, the state file's storage or any one cloud.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod adopt;
pub mod kube;
pub mod refresh;
pub mod waves;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use drydock_provider::{
    CapacityType as PCapacity, GenerationSpec, GroupSettings, HealthCheck as PHealth, InstanceState,
    Metadata as PMetadata, Observed, ObservedGroup, Role as PRole, RootVolume as PRootVolume,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use drydock_config::model::{CapacityType, Cluster, HealthCheck, Model, NodeGroup, NodeSettings, Role};
use drydock_state::State;
use waves::{OldInstance, RolloutInput, Wave};

/// The version of the saved plan format. Version 2 (drydock 0.1 after the typed plan):
/// actions carry what they need, values are JSON values with their reason; a plan file of
/// another version is refused with a message to make a new plan.
pub const PLAN_FORMAT_VERSION: u32 = 2;

/// The kind of an [`Action`]: for counting and for the words renderers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Create,
    Resume,
    Rollout,
    Update,
    Delete,
}

/// What the plan does to one node group, with everything the executor needs for it, so
/// that no action can lack its target or its groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Creates the target generation's groups: none exist, or some were deleted outside
    /// drydock (groups that exist, made by a run that crashed, are adopted and resized).
    Create { target: Target },
    /// Finishes an apply that was interrupted: the target's groups all exist, and their
    /// nodes are waited on until healthy.
    Resume { target: Target },
    /// Replaces the old generations' nodes by the target's in the change's waves, then
    /// deletes the old generations' groups (`retire`).
    Rollout { target: Target, retire: Vec<String> },
    /// Gives the target generation's groups their target settings; no node is replaced.
    Update { target: Target },
    /// Deletes these groups, their nodes in the change's waves.
    Delete { retire: Vec<String> },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Create { .. } => ActionKind::Create,
            Action::Resume { .. } => ActionKind::Resume,
            Action::Rollout { .. } => ActionKind::Rollout,
            Action::Update { .. } => ActionKind::Update,
            Action::Delete { .. } => ActionKind::Delete,
        }
    }

    /// What the node group converges on; `None` for a delete.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Action::Create { target }
            | Action::Resume { target }
            | Action::Rollout { target, .. }
            | Action::Update { target } => Some(target),
            Action::Delete { .. } => None,
        }
    }

    /// Groups of other generations that go away (a rollout's old generation, a delete).
    pub fn retire(&self) -> &[String] {
        match self {
            Action::Rollout { retire, .. } | Action::Delete { retire } => retire,
            Action::Create { .. } | Action::Resume { .. } | Action::Update { .. } => &[],
        }
    }
}

/// Why an attribute of a change differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The configuration sets it otherwise than what was applied (for a create: sets it).
    Configuration,
    /// The state records other groups than the cloud has (a run stopped between a cloud
    /// call and its record): the state is corrected, nothing changes in the cloud.
    StateRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub drydock_version: String,
    /// The state lineage this plan is for (a new one when there was no state).
    pub lineage: String,
    /// The serial of the state planned against; `None` when there was no state.
    pub state_serial: Option<u64>,
    /// Digest of the configuration and variable values the plan was made from.
    pub config_digest: String,
    /// The configuration (file or directory) the plan was made from, as given.
    pub config_path: String,
    pub destroy: bool,
    /// Sorted by address.
    pub changes: Vec<Change>,
    /// Clusters the plan creates or removes entirely (for the state and the summary).
    pub clusters: Vec<ClusterRecord>,
    /// What changed in the cloud outside drydock since the last apply, and what this plan
    /// does about it. Empty until the planner detects drift (issue 6); plans saved before
    /// the field existed read as having none.
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// What the reviewer should know that is no change: clusters whose nodes go without
    /// draining (no `kubernetes` block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A refresh-only plan (`plan --refresh-only`): no change to the cloud; applying it writes
    /// what the cloud has (the drift marked [`refresh::RECORDED`]) into the state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh_only: bool,
    /// How the plan was asked for, so that `apply` of a saved plan can make it again and
    /// apply it only if it comes out the same.
    #[serde(default)]
    pub options: PlanOptions,
}

/// The flags a plan was made with (`--target`, `--replace`, `rollout undo`, `--refresh`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
    /// `rollout undo`: the node group, and the generation asked for (`None`: the one before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<(String, Option<String>)>,
    #[serde(default = "yes")]
    pub refresh: bool,
    /// The variable values given (`--var`, then `DRYDOCK_VAR_*`) and the var files named: a
    /// saved plan is applied, and its outputs recorded, with the values it was made with. (The
    /// plan file is private to its owner: it holds secrets already.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<std::path::PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            targets: vec![],
            replace: vec![],
            undo: None,
            refresh: true,
            vars: vec![],
            env: vec![],
            var_files: vec![],
        }
    }
}

/// One attribute that differs between the state (what drydock last applied) and the cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The node group's address.
    pub address: String,
    /// The attribute path, as in [`AttrChange::path`].
    pub path: String,
    /// The value the state records; `None` when it records none.
    pub before: Option<serde_json::Value>,
    /// The value found in the cloud; `None` when the cloud has none.
    pub after: Option<serde_json::Value>,
    /// Whether the value derives from a sensitive variable: renderers never show it.
    #[serde(default)]
    pub sensitive: bool,
    /// What drydock will do about it, in words: "rolled back by the rollout", "kept: the
    /// autoscaler owns desired inside size".
    pub action: String,
}

/// A cluster as the state records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub address: String,
    pub name: String,
    pub key: Option<String>,
    pub provider: String,
    /// Whether the configuration still has the cluster (false: it goes with its node groups).
    pub keep: bool,
    /// Most of the cluster's nodes being replaced at once (its `disruption_budget`, resolved
    /// against the cluster's size; at least 1). Rollouts of its node groups share it.
    #[serde(default)]
    pub disruption_budget: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    /// The cluster's address.
    pub cluster: String,
    pub provider: String,
    pub name: String,
    pub key: Option<String>,
    pub role: Role,
    pub action: Action,
    /// The attributes that changed, and whether each forces replacement.
    pub reasons: Vec<AttrChange>,
    /// The desired capacity the change converges on.
    pub replicas: u32,
    /// The rollout's waves (for a create: one wave adding every node).
    pub waves: Vec<Wave>,
    pub eta_ms: u64,
    /// Changes that must finish first (a cluster's control plane before its workers).
    pub depends_on: Vec<String>,
    /// Ownership tag values for the cluster and node group.
    pub owner_cluster: String,
    pub owner_node_group: String,
}

impl Change {
    pub fn kind(&self) -> ActionKind {
        self.action.kind()
    }

    /// What the node group converges on; `None` for a delete.
    pub fn target(&self) -> Option<&Target> {
        self.action.target()
    }

    /// Groups of other generations that go away.
    pub fn retire(&self) -> &[String] {
        self.action.retire()
    }

    /// Nodes this change replaces (rollout) or removes (delete).
    pub fn nodes_replaced(&self) -> usize {
        self.waves.iter().map(|w| w.remove_first.len() + w.remove_after.len()).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    /// `image`, `labels.pool`, `size`, `health.grace_period`.
    pub path: String,
    /// The value before (what was applied, or what the cloud has); `None` when there was
    /// none. Durations and percentages are strings as they are written (`90s`, `25%`).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Reason,
    pub forces_replacement: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub generation: String,
    pub spec: GenerationSpec,
    /// The spec as shown and stored in the state: sensitive values replaced by a digest.
    pub display_spec: serde_json::Value,
    /// One group for workers; one per member for a control plane.
    pub groups: Vec<TargetGroup>,
    pub settings: NodeSettings,
    /// The digest of the join secrets (kubeadm's token, CA hashes, certificate key) the
    /// target's groups launch with; never the secrets themselves, which the executor takes from
    /// the configuration at apply time (and refuses if their digest differs from this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub name: String,
    /// The settings the group ends with.
    pub settings: GroupSettings,
    /// Whether the group exists already (a resumed rollout, an update).
    pub exists: bool,
}

/// What the planner reads.
pub struct PlanInput<'a> {
    pub model: &'a Model,
    pub state: Option<&'a State>,
    pub lineage: &'a str,
    /// What each provider (by reference) holds of this lineage.
    pub observed: &'a BTreeMap<String, Observed>,
    /// Per provider reference: how long a node takes to become healthy when nothing was measured.
    pub boot_estimate_ms: &'a BTreeMap<String, u64>,
    pub config_digest: String,
    pub config_path: String,
    pub destroy: bool,
    /// Whether `observed` is the cloud as observed now; `false` for `plan --refresh=false`,
    /// where it is the state's description of it ([`observed_from_state`]).
    pub refreshed: bool,
    /// Per provider reference, the time now on its clock: how long an instance has been
    /// pending is drift once it exceeds the node group's `health.startup_timeout`.
    pub now_ms: BTreeMap<String, u64>,
    /// Per cluster address, its Kubernetes objects (clusters with a `kubernetes` block that
    /// were observed): the plan shows each wave's drains and their blockers.
    pub kubernetes: &'a BTreeMap<String, kube::KubeObserved>,
    /// Node groups (or clusters: all their node groups) to roll out onto a new generation of
    /// the same spec (`--replace`): a node image rebuilt under the same name, or every node
    /// refreshed.
    pub replace: &'a BTreeSet<String>,
    /// Node groups planned onto this spec instead of the configuration's (`drydock rollout
    /// undo`: an earlier generation's spec, from the state's history).
    pub specs: &'a BTreeMap<String, GenerationSpec>,
    /// Per provider reference, groups of the configured clusters under other lineages (other
    /// states): a node group that runs there is never created a second time.
    pub foreign: &'a BTreeMap<String, Observed>,
    /// Node groups planned with these settings instead of the configuration's (with
    /// [`PlanInput::specs`]: the applied state, which `drydock watch` restores).
    pub settings: &'a BTreeMap<String, NodeSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub address: String,
    pub message: String,
}

/// Keeps only the changes of `keep` (node group addresses) and those they depend on, as
/// `--target` asks (`given`: the addresses as written, for the warning): the rest of the
/// configuration is neither changed nor checked, and the plan says so.
pub fn restrict(plan: &mut Plan, keep: &BTreeSet<String>, given: &[String]) {
    let mut wanted: BTreeSet<String> = keep.clone();
    // What the kept changes depend on, transitively (a worker's control plane).
    loop {
        let more: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| wanted.contains(&c.address))
            .flat_map(|c| c.depends_on.iter().cloned())
            .filter(|d| !wanted.contains(d))
            .collect();
        if more.is_empty() {
            break;
        }
        wanted.extend(more);
    }
    plan.changes.retain(|c| wanted.contains(&c.address));
    plan.drift.retain(|d| wanted.contains(&d.address));
    let clusters: BTreeSet<&str> = plan.changes.iter().map(|c| c.cluster.as_str()).collect();
    plan.clusters.retain(|c| clusters.contains(c.address.as_str()));
    plan.warnings.push(format!(
        "resource targeting is in effect (--target {}): the plan covers only those node groups and what they depend \
         on, so it may not show every change the configuration asks for; use it for exceptional situations, not \
         routinely",
        given.join(", --target ")
    ));
}

/// The ownership tag values of a cluster and a node group: `demo`, `fleet["eu"]`; `workers`.
pub fn owner_names(cluster: &Cluster, ng: &NodeGroup) -> (String, String) {
    (cluster.owner_name().to_string(), ng.owner_name().to_string())
}

/// The names a configured node group's cloud groups carry: those the state records for a node
/// group that was renamed (`drydock state mv`), else those of its address ([`owner_names`]).
pub fn owners(state: Option<&State>, cluster: &Cluster, ng: &NodeGroup) -> (String, String) {
    match state.and_then(|s| s.node_group(&cluster.address, &ng.address)).and_then(|n| n.cloud_owner.as_ref()) {
        Some(o) => (o.cluster.clone(), o.node_group.clone()),
        None => owner_names(cluster, ng),
    }
}

/// The cloud owner names of a node group the state records at `address` in cluster `caddr`.
fn state_owner(caddr: &str, address: &str, ng: &drydock_state::NodeGroupState) -> (String, String) {
    match &ng.cloud_owner {
        Some(o) => (o.cluster.clone(), o.node_group.clone()),
        None => (
            caddr.trim_start_matches("cluster.").to_string(),
            address.rsplit_once(".node_group.").map_or(ng.name.clone(), |(_, g)| g.to_string()),
        ),
    }
}

/// The provider's view of a node group's replacement-forcing spec.
pub fn provider_spec(ng: &NodeGroup) -> GenerationSpec {
    let s = &ng.spec;
    GenerationSpec {
        image: s.image.clone(),
        instance_types: s.instance_types.clone(),
        user_data: s.user_data.clone(),
        labels: s.labels.clone(),
        taints: s.taints.clone(),
        root_volume: s.root_volume.as_ref().map(|r| PRootVolume {
            size_gib: r.size_gib,
            volume_type: r.volume_type.clone(),
            encrypted: r.encrypted,
            iops: r.iops,
        }),
        metadata: PMetadata { http_tokens_required: s.metadata.http_tokens_required, hop_limit: s.metadata.hop_limit },
        capacity_type: match s.capacity_type {
            CapacityType::OnDemand => PCapacity::OnDemand,
            CapacityType::Spot => PCapacity::Spot,
        },
        kubernetes_version: s.kubernetes_version.clone(),
        security_groups: s.security_groups.clone(),
        instance_profile: s.instance_profile.clone(),
        key_name: s.key_name.clone(),
        role: match ng.role {
            Role::Worker => PRole::Worker,
            Role::ControlPlane => PRole::ControlPlane,
        },
        bootstrap: s.bootstrap.as_ref().map(|b| match b {
            drydock_config::model::Bootstrap::Kubeadm { endpoint } => {
                drydock_provider::Bootstrap::Kubeadm { api_server_endpoint: endpoint.clone() }
            }
            drydock_config::model::Bootstrap::Eks { cluster_name } => {
                drydock_provider::Bootstrap::Eks { cluster_name: cluster_name.clone() }
            }
        }),
        rebuild: 0,
    }
}

/// A node group's join secrets, as the provider takes them.
pub fn join_secrets(ng: &NodeGroup) -> Option<drydock_provider::JoinSecrets> {
    ng.join.as_ref().map(|j| drydock_provider::JoinSecrets {
        token: j.token.clone(),
        ca_cert_hashes: j.ca_cert_hashes.clone(),
        certificate_key: j.certificate_key.clone(),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The generation id: a hash of the spec, so equal specs (however written) name the same generation.
pub fn generation_id(spec: &GenerationSpec) -> String {
    let json = serde_json::to_vec(spec).expect("a spec always serialises");
    sha256_hex(&json)[..10].to_string()
}

/// The spec as shown in plans and kept in the state: sensitive values become a digest.
pub fn display_spec(ng: &NodeGroup, spec: &GenerationSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).expect("a spec always serialises");
    if let Some(obj) = v.as_object_mut() {
        for path in &ng.sensitive {
            // The join secrets are not part of the spec: only a digest of them is planned.
            if matches!(
                path.as_str(),
                "bootstrap.token" | "bootstrap.ca_cert_hashes" | "bootstrap.certificate_key" | "bootstrap.kind"
            ) {
                continue;
            }
            let key = path.split('.').next().unwrap_or(path);
            if let Some(field) = obj.get_mut(key) {
                *field = serde_json::Value::String(drydock_state::sensitive_digest(&field.to_string()));
            }
        }
    }
    v
}

/// A group name: the lineage's first characters (names are global in a cloud account), the
/// cluster, the node group and the generation; only characters every cloud accepts. The
/// cluster and node group part is [`drydock_model::cloud_name_part`], which the configuration
/// also uses to refuse two node groups whose names would coincide.
pub fn group_name(
    lineage: &str,
    owner_cluster: &str,
    owner_ng: &str,
    generation: &str,
    member: Option<usize>,
) -> String {
    drydock_model::cloud_group_name(
        lineage,
        &drydock_model::cloud_name_part(owner_cluster, owner_ng),
        generation,
        member,
    )
}

/// One generation of a node group as the cloud shows it.
struct ActualGen<'a> {
    id: String,
    groups: Vec<&'a ObservedGroup>,
}

/// A group's settings from a node group's effective settings (its tags with the cluster's).
fn group_settings(s: &NodeSettings, desired: u32, subnets: Vec<String>, min: u32, max: u32) -> GroupSettings {
    GroupSettings {
        min,
        max,
        desired,
        subnets,
        tags: s.tags.clone(),
        health_check: provider_health_check(s.health.check),
        grace_period_ms: s.health.grace_period_ms,
    }
}

/// Whether an attribute path of a node group's groups derives from a sensitive variable: set
/// in the node group from one, or (tags, subnets) inherited from a cluster attribute that is.
/// The settings the configuration gives a node group's groups: the cluster's tags under the
/// node group's own, and which of them, and of its labels, are sensitive (the state keeps only
/// their digest).
pub(crate) fn configured_settings(cluster: &Cluster, ng: &NodeGroup) -> NodeSettings {
    let tags: BTreeMap<String, String> =
        cluster.tags.iter().chain(&ng.settings.tags).map(|(k, v)| (k.clone(), v.clone())).collect();
    let sensitive_tags = tags.keys().filter(|k| sensitive_path(cluster, ng, &format!("tags.{k}"))).cloned().collect();
    let sensitive_labels =
        ng.settings.labels.keys().filter(|k| sensitive_path(cluster, ng, &format!("labels.{k}"))).cloned().collect();
    NodeSettings { tags, sensitive_tags, sensitive_labels, ..ng.settings.clone() }
}

/// Whether recorded settings hold sensitive values as digests (most hold none: nothing to
/// reveal, and nothing to copy).
fn has_digests(s: &NodeSettings) -> bool {
    !(s.sensitive_tags.is_empty() && s.sensitive_labels.is_empty())
}

/// Whether a node group's attribute or setting at `path` (`tags.team`, `subnets`,
/// `user_data`) derives from a sensitive value: its own (or its defaults'), or the cluster's
/// that it inherits (`tags`, `network.subnets`, `kubernetes_version`).
fn sensitive_path(cluster: &Cluster, ng: &NodeGroup, path: &str) -> bool {
    let under = |s: &str| path == s || path.starts_with(&format!("{s}."));
    // A prefix covers `labels.KEY` and `instance_type` → `instance_types`; `size` sets the
    // settings' `min` and `max`.
    let own = |s: &str| path.starts_with(s) || (s == "size" && matches!(path, "min" | "max" | "desired"));
    ng.sensitive.iter().any(|s| own(s))
        || cluster.sensitive.iter().any(|s| under(s.strip_prefix("network.").unwrap_or(s)))
}

/// The model's health check as the provider's (the one conversion between the two: the
/// model and the provider API know nothing of each other, so it lives here).
fn provider_health_check(check: HealthCheck) -> PHealth {
    match check {
        HealthCheck::Ec2 => PHealth::Ec2,
        HealthCheck::Elb => PHealth::Elb,
    }
}

/// Whether a group's observed settings differ from the target's in anything drydock sets:
/// sizes (desired only when pinned), subnets, health check and grace period, and the tags (a
/// provider sets a group's tags exactly, as Terraform does: a tag added by hand is drift too;
/// tags the provider manages are the provider's).
fn settings_differ(want: &GroupSettings, have: &GroupSettings, desired_pinned: bool) -> bool {
    let ours = |k: &&String| !drydock_provider::is_provider_managed_tag(k);
    want.min != have.min
        || want.max != have.max
        || (desired_pinned && want.desired != have.desired)
        || want.subnets != have.subnets
        || want.health_check != have.health_check
        || want.grace_period_ms != have.grace_period_ms
        || want.tags.iter().any(|(k, v)| ours(&k) && have.tags.get(k) != Some(v))
        || have.tags.keys().filter(ours).any(|k| !want.tags.contains_key(k))
}

fn live(g: &ObservedGroup) -> impl Iterator<Item = &drydock_provider::Instance> {
    g.instances.iter().filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
}

fn healthy_count(g: &ObservedGroup) -> u32 {
    g.instances.iter().filter(|i| i.state == InstanceState::Running && i.healthy).count() as u32
}

/// Makes the plan.
pub fn plan(input: &PlanInput) -> Result<Plan, Vec<PlanError>> {
    let mut changes = vec![];
    let mut errors = vec![];
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new(); // (provider, owner cluster, owner ng)
    let mut clusters = vec![];
    let mut drift = vec![];
    // Observed groups by (provider, owner cluster, owner node group), built once: looking
    // them up per node group keeps planning linear in the fleet's size.
    let mut by_owner: BTreeMap<(&str, &str, &str), Vec<&ObservedGroup>> = BTreeMap::new();
    // Groups of node groups removed from the state (`drydock state rm`): left alone.
    let unmanaged = |g: &ObservedGroup| {
        input.state.is_some_and(|s| {
            s.unmanaged.iter().any(|o| o.cluster == g.ownership.cluster && o.node_group == g.ownership.node_group)
        })
    };
    let mut left_alone: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (provider, observed) in input.observed {
        for g in &observed.groups {
            if unmanaged(g) {
                left_alone
                    .entry((g.ownership.cluster.clone(), g.ownership.node_group.clone()))
                    .or_default()
                    .push(g.name.clone());
                continue;
            }
            by_owner
                .entry((provider.as_str(), g.ownership.cluster.as_str(), g.ownership.node_group.as_str()))
                .or_default()
                .push(g);
        }
    }

    if !input.destroy {
        for cluster in &input.model.clusters {
            // The cluster's size now, to resolve its disruption budget against.
            let size: u32 = cluster
                .node_groups
                .iter()
                .map(|ng| {
                    let (oc, og) = owners(input.state, cluster, ng);
                    let observed: u32 = by_owner
                        .get(&(cluster.provider.as_str(), oc.as_str(), og.as_str()))
                        .map_or(0, |gs| gs.iter().map(|g| g.settings.desired).sum());
                    match (ng.role, ng.settings.desired) {
                        (Role::ControlPlane, _) => ng.settings.min,
                        (_, Some(d)) => d,
                        _ if observed > 0 => observed.clamp(ng.settings.min, ng.settings.max),
                        _ => ng.settings.min,
                    }
                })
                .sum();
            let budget = cluster.disruption_budget.resolve(size, false).max(1);
            clusters.push(ClusterRecord {
                address: cluster.address.clone(),
                name: cluster.name.clone(),
                key: cluster.key.clone(),
                provider: cluster.provider.clone(),
                keep: true,
                disruption_budget: budget,
            });
            for ng in &cluster.node_groups {
                let (oc, og) = owners(input.state, cluster, ng);
                if input.state.is_some_and(|s| s.unmanaged.iter().any(|o| o.cluster == oc && o.node_group == og))
                    && input.state.and_then(|s| s.node_group(&cluster.address, &ng.address)).is_none()
                {
                    errors.push(PlanError {
                        address: ng.address.clone(),
                        message: "was removed from the state with `drydock state rm` (its groups run on, unmanaged), \
                                  but the configuration still has it: remove it from the configuration, or rename it \
                                  (its groups' names would be this node group's)"
                            .into(),
                    });
                    continue;
                }
                let mine =
                    by_owner.get(&(cluster.provider.as_str(), oc.as_str(), og.as_str())).cloned().unwrap_or_default();
                seen.insert((cluster.provider.clone(), oc.clone(), og.clone()));
                let now = input.now_ms.get(&cluster.provider).copied().unwrap_or(0);
                // The same node group under another lineage (another state's).
                let foreign: Vec<&ObservedGroup> = input
                    .foreign
                    .get(&cluster.provider)
                    .map(|o| {
                        o.groups
                            .iter()
                            .filter(|g| {
                                g.ownership.lineage != input.lineage
                                    && g.ownership.cluster == oc
                                    && g.ownership.node_group == og
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                drift.extend(detect_drift(input.state, cluster, ng, &mine, &foreign, now));
                if let Some(k) = input.kubernetes.get(&cluster.address) {
                    drift.extend(kube::node_drift(ng, &mine, k, now));
                }
                match plan_node_group(input, cluster, ng, mine, &oc, &og, budget) {
                    Ok(Some(c)) if c.kind() == ActionKind::Create && !foreign.is_empty() => {
                        errors.push(foreign_error(&ng.address, input.lineage, &foreign))
                    }
                    Ok(Some(c)) => changes.push(c),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    // What exists but is not configured (any more): delete it.
    for (provider, observed) in input.observed {
        let mut orphans: BTreeMap<(String, String), Vec<&ObservedGroup>> = BTreeMap::new();
        for g in observed.groups.iter().filter(|g| !unmanaged(g)) {
            let key = (g.ownership.cluster.clone(), g.ownership.node_group.clone());
            if !seen.contains(&(provider.clone(), key.0.clone(), key.1.clone())) {
                orphans.entry(key).or_default().push(g);
            }
        }
        for ((oc, og), groups) in orphans {
            changes.push(delete_change(input, provider, &oc, &og, &groups));
        }
    }
    // Node groups the state has but the cloud no longer does are dropped from the state.
    if let Some(state) = input.state {
        let configured_ngs: BTreeSet<&str> = if input.destroy {
            BTreeSet::new()
        } else {
            input.model.clusters.iter().flat_map(|c| c.node_groups.iter().map(|n| n.address.as_str())).collect()
        };
        let changed: BTreeSet<String> = changes.iter().map(|c| c.address.clone()).collect();
        for (caddr, cs) in &state.clusters {
            let keep = !input.destroy && input.model.clusters.iter().any(|c| &c.address == caddr);
            if !keep {
                clusters.push(ClusterRecord {
                    address: caddr.clone(),
                    name: cs.name.clone(),
                    key: cs.key.clone(),
                    provider: cs.provider.clone(),
                    keep: false,
                    disruption_budget: 0,
                });
            }
            for (addr, ngs) in &cs.node_groups {
                if !configured_ngs.contains(addr.as_str()) && !changed.contains(addr) {
                    let (owner_cluster, owner_ng) = state_owner(caddr, addr, ngs);
                    changes.push(Change {
                        address: addr.clone(),
                        cluster: caddr.clone(),
                        provider: cs.provider.clone(),
                        name: ngs.name.clone(),
                        key: ngs.key.clone(),
                        role: ngs.role,
                        action: Action::Delete { retire: vec![] },
                        reasons: vec![],
                        replicas: 0,
                        waves: vec![],
                        eta_ms: 0,
                        depends_on: vec![],
                        owner_cluster,
                        owner_node_group: owner_ng,
                    });
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    add_dependencies(&mut changes);
    let mut warnings = kube::annotate(&mut changes, input.model, input.kubernetes, input.state);
    for ((oc, og), names) in &left_alone {
        warnings.push(format!(
            "cluster.{oc}.node_group.{og} was removed from the state (`drydock state rm`): its {} ({}) {} running, \
             unmanaged; drydock never changes or deletes {}",
            if names.len() == 1 { "group" } else { "groups" },
            names.join(", "),
            if names.len() == 1 { "keeps" } else { "keep" },
            if names.len() == 1 { "it" } else { "them" },
        ));
    }
    clusters.sort_by(|a, b| a.address.cmp(&b.address));
    clusters.dedup_by(|a, b| a.address == b.address);
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        drydock_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: input.lineage.to_string(),
        state_serial: input.state.map(|s| s.serial),
        config_digest: input.config_digest.clone(),
        config_path: input.config_path.clone(),
        destroy: input.destroy,
        changes,
        clusters,
        drift,
        warnings,
        refresh_only: false,
        options: PlanOptions::default(),
    })
}

/// Within a cluster, the control plane changes before its workers are created or rolled,
/// and workers are deleted before the control plane.
fn add_dependencies(changes: &mut [Change]) {
    let cp: BTreeMap<String, (String, ActionKind)> = changes
        .iter()
        .filter(|c| c.role == Role::ControlPlane)
        .map(|c| (c.cluster.clone(), (c.address.clone(), c.kind())))
        .collect();
    let workers_deleted: BTreeMap<String, Vec<String>> = changes
        .iter()
        .filter(|c| c.role == Role::Worker && c.kind() == ActionKind::Delete)
        .fold(BTreeMap::new(), |mut m, c| {
            m.entry(c.cluster.clone()).or_insert_with(Vec::new).push(c.address.clone());
            m
        });
    for c in changes.iter_mut() {
        match (c.role, c.kind()) {
            (Role::Worker, ActionKind::Create | ActionKind::Resume | ActionKind::Rollout | ActionKind::Update) => {
                if let Some((addr, a)) = cp.get(&c.cluster) {
                    if *a != ActionKind::Delete {
                        c.depends_on.push(addr.clone());
                    }
                }
            }
            (Role::ControlPlane, ActionKind::Delete) => {
                if let Some(ws) = workers_deleted.get(&c.cluster) {
                    c.depends_on.extend(ws.iter().cloned());
                }
            }
            _ => {}
        }
    }
}

fn delete_change(input: &PlanInput, provider: &str, oc: &str, og: &str, groups: &[&ObservedGroup]) -> Change {
    let mut cluster = format!("cluster.{oc}");
    let mut address = format!("{cluster}.node_group.{og}");
    // A renamed node group's groups carry its old names: the state knows its address.
    if let Some((caddr, addr)) = input.state.and_then(|s| {
        s.clusters.iter().find_map(|(caddr, cs)| {
            cs.node_groups
                .iter()
                .find(|(_, n)| n.cloud_owner.as_ref().is_some_and(|o| o.cluster == oc && o.node_group == og))
                .map(|(addr, _)| (caddr.clone(), addr.clone()))
        })
    }) {
        (cluster, address) = (caddr, addr);
    }
    let state_ng = input.state.and_then(|s| s.node_group(&cluster, &address));
    let role =
        if groups.iter().any(|g| g.spec.role == PRole::ControlPlane) { Role::ControlPlane } else { Role::Worker };
    let (name, key) = match (state_ng, og.split_once('[')) {
        (Some(n), _) => (n.name.clone(), n.key.clone()),
        (None, Some((n, k))) => (n.to_string(), Some(k.trim_end_matches(']').trim_matches('"').to_string())),
        (None, None) => (og.to_string(), None),
    };
    // Every live instance goes in one wave: nothing is kept.
    let ids: Vec<String> = groups.iter().flat_map(|g| live(g).map(|i| i.id.clone())).collect();
    let waves = if ids.is_empty() {
        vec![]
    } else {
        vec![Wave { index: 1, remove_first: ids, add: 0, remove_after: vec![], floor: 0, ceiling: 0, drains: vec![] }]
    };
    let _ = state_ng;
    Change {
        address,
        cluster,
        provider: provider.to_string(),
        name,
        key,
        role,
        action: Action::Delete { retire: groups.iter().map(|g| g.name.clone()).collect() },
        reasons: vec![],
        replicas: 0,
        waves,
        eta_ms: 0,
        depends_on: vec![],
        owner_cluster: oc.to_string(),
        owner_node_group: og.to_string(),
    }
}

fn plan_node_group(
    input: &PlanInput,
    cluster: &Cluster,
    ng: &NodeGroup,
    mut mine: Vec<&ObservedGroup>,
    oc: &str,
    og: &str,
    budget: u32,
) -> Result<Option<Change>, PlanError> {
    let state_ng = input.state.and_then(|s| s.node_group(&cluster.address, &ng.address));
    let overridden = input.specs.get(&ng.address);
    let mut spec = overridden.cloned().unwrap_or_else(|| provider_spec(ng));
    // `--replace` makes a new generation of the same spec: its rebuild count, carried from the
    // generation applied (so later plans keep it), goes up by one.
    spec.rebuild = state_ng
        .and_then(|n| n.current())
        .and_then(|g| g.spec.get("rebuild"))
        .and_then(|v| v.as_u64())
        .map_or(0, |r| r.min(u64::from(u32::MAX)) as u32);
    if let Some(o) = overridden {
        spec.rebuild = o.rebuild;
    }
    if input.replace.contains(&ng.address) || input.replace.contains(&cluster.address) {
        spec.rebuild = spec.rebuild.saturating_add(1);
    }
    // With a Kubernetes API, a change of labels alone is made on the Nodes in place: the
    // generation (and its spec, with the labels its Nodes registered with) stays.
    let spec = labels_in_place(cluster, &spec, state_ng, &mine).unwrap_or(spec);
    let gen = generation_id(&spec);
    let shown = display_spec(ng, &spec);

    // The cloud's generations of this node group, oldest first.
    let mut actual: Vec<ActualGen> = vec![];
    mine.sort_by_key(|g| (g.created_at_ms, g.name.clone()));
    for g in mine {
        match actual.iter_mut().find(|a| a.id == g.ownership.generation) {
            Some(a) => a.groups.push(g),
            None => actual.push(ActualGen { id: g.ownership.generation.clone(), groups: vec![g] }),
        }
    }
    // The target generation's groups. The settings applied and recorded carry the tags the
    // groups get: the cluster's, overridden by the node group's own, so that the state knows
    // what was applied and a cluster tag changed by hand is drift like any other.
    let configured = configured_settings(cluster, ng);
    // Sensitive tags are recorded as digests: the values they stand for, where known.
    let known =
        std::iter::once(&configured.tags).chain(actual.iter().flat_map(|a| a.groups.iter()).map(|g| &g.settings.tags));
    // Watch plans from the settings applied (`input.settings`); everything else from the
    // configuration's.
    let applied_settings = input.settings.get(&ng.address).map(|applied| {
        let mut s = drydock_state::reveal_settings(applied, known.clone(), &configured.labels);
        // A sensitive value applied before and configured otherwise since: drydock never
        // kept it, so the configured one stands in rather than its digest reaching a group
        // or a Node.
        for (map, want) in [(&mut s.tags, &configured.tags), (&mut s.labels, &configured.labels)] {
            for (k, v) in map.iter_mut().filter(|(_, v)| drydock_state::is_sensitive_digest(v)) {
                if let Some(c) = want.get(k) {
                    *v = c.clone();
                }
            }
        }
        s
    });
    let s = applied_settings.as_ref().unwrap_or(&configured);
    let recorded: Option<Cow<NodeSettings>> = state_ng.map(|n| match has_digests(&n.settings) {
        true => Cow::Owned(drydock_state::reveal_settings(&n.settings, known, &configured.labels)),
        false => Cow::Borrowed(&n.settings),
    });
    let observed_desired: u32 = actual.iter().flat_map(|a| a.groups.iter()).map(|g| g.settings.desired).sum();
    let members = if ng.role == Role::ControlPlane { Some(s.min as usize) } else { None };
    let replicas = match (ng.role, s.desired) {
        (Role::ControlPlane, _) => s.min,
        (_, Some(d)) => d,
        // The autoscaler owns desired inside min..max: keep what the cloud has.
        (_, None) if !actual.is_empty() => observed_desired.clamp(s.min, s.max),
        (_, None) => s.min,
    };
    let target_actual = actual.iter().find(|a| a.id == gen);
    let groups: Vec<TargetGroup> = match members {
        Some(n) => (0..n)
            .map(|m| {
                let name = group_name(input.lineage, oc, og, &gen, Some(m));
                let subnet = s.subnets[m % s.subnets.len().max(1)].clone();
                let exists = target_actual.is_some_and(|a| a.groups.iter().any(|g| g.name == name));
                TargetGroup { settings: group_settings(s, 1, vec![subnet], 1, 1), name, exists }
            })
            .collect(),
        None => {
            let name = group_name(input.lineage, oc, og, &gen, None);
            let exists = target_actual.is_some_and(|a| a.groups.iter().any(|g| g.name == name));
            vec![TargetGroup { settings: group_settings(s, replicas, s.subnets.clone(), s.min, s.max), name, exists }]
        }
    };
    let target = Target {
        generation: gen.clone(),
        spec: spec.clone(),
        display_spec: shown.clone(),
        groups,
        settings: s.clone(),
        join_digest: join_secrets(ng).map(|j| j.digest()),
    };
    let boot = boot_estimate(input, cluster, state_ng);
    let mut change = Change {
        address: ng.address.clone(),
        cluster: cluster.address.clone(),
        provider: cluster.provider.clone(),
        name: ng.name.clone(),
        key: ng.key.clone(),
        role: ng.role,
        // Replaced below by the action decided, which carries the target.
        action: Action::Delete { retire: vec![] },
        reasons: vec![],
        replicas,
        waves: vec![],
        eta_ms: 0,
        depends_on: vec![],
        owner_cluster: oc.to_string(),
        owner_node_group: og.to_string(),
    };
    let old: Vec<&ActualGen> = actual.iter().filter(|a| a.id != gen).collect();
    if actual.is_empty() {
        // Nothing exists: create every group, all nodes in one wave.
        change.reasons = spec_changes(None, &shown, (cluster, ng), true);
        if replicas > 0 {
            change.waves = vec![Wave {
                index: 1,
                remove_first: vec![],
                add: replicas,
                remove_after: vec![],
                floor: 0,
                ceiling: replicas,
                drains: vec![],
            }];
        }
        change.eta_ms = if replicas > 0 { boot } else { 0 };
        change.action = Action::Create { target };
        return Ok(Some(change));
    }
    if old.is_empty() {
        // The generation is current: settings may change in place, missing groups come back.
        let before_settings = recorded.as_deref();
        change.reasons = settings_changes(before_settings, s, ng, cluster);
        // A state written before it recorded the cluster's tags lacks them: a tag it does not
        // record that every group already carries with the wanted value is nothing to change.
        if let Some(a) = target_actual {
            change.reasons.retain(|r| {
                let Some(key) = r.path.strip_prefix("tags.").filter(|_| r.before.is_none()) else { return true };
                !a.groups.iter().all(|g| {
                    g.settings.tags.get(key).map(|v| serde_json::Value::String(v.clone())).as_ref() == r.after.as_ref()
                })
            });
        }
        // Rotated join secrets reach the instances launched from now on: a new launch version
        // of the same generation, no node replaced.
        if let (Some(a), Some(want)) = (target_actual, &target.join_digest) {
            if let Some(g) = a.groups.iter().find(|g| g.join_digest.as_ref() != Some(want)) {
                change.reasons.push(AttrChange {
                    path: "bootstrap.join".into(),
                    before: g.join_digest.clone().map(serde_json::Value::String),
                    after: Some(serde_json::Value::String(want.clone())),
                    reason: Reason::Configuration,
                    forces_replacement: false,
                    sensitive: false,
                });
            }
        }
        let missing = target.groups.iter().filter(|g| !g.exists).count();
        // Any group whose settings differ from the target's (changed by hand, or by a change
        // of the cluster's tags, which the node group's own settings do not show) is updated.
        let settings_drift = target_actual.is_some_and(|a| {
            a.groups.iter().any(|g| {
                let want = target.groups.iter().find(|t| t.name == g.name).map(|t| &t.settings);
                want.is_some_and(|w| settings_differ(w, &g.settings, s.desired.is_some()))
            })
        });
        // Tags the target sets that a group lacks or holds with another value, and that are
        // not drift from what the state records (drift is listed as drift): a change of the
        // cluster's tags.
        if let Some(a) = target_actual {
            let applied_tags = recorded.as_deref().map(|r| &r.tags);
            let mut seen: BTreeSet<String> = change.reasons.iter().map(|r| r.path.clone()).collect();
            for g in &a.groups {
                let Some(want) = target.groups.iter().find(|t| t.name == g.name) else { continue };
                // Tags a provider manages itself may be reported otherwise (or not at all).
                for (k, v) in want.settings.tags.iter().filter(|(k, _)| !drydock_provider::is_provider_managed_tag(k)) {
                    let drifted = applied_tags.is_some_and(|t| t.get(k) == Some(v));
                    if g.settings.tags.get(k) != Some(v) && !drifted && seen.insert(format!("tags.{k}")) {
                        change.reasons.push(AttrChange {
                            path: format!("tags.{k}"),
                            before: g.settings.tags.get(k).cloned().map(serde_json::Value::String),
                            after: Some(serde_json::Value::String(v.clone())),
                            reason: Reason::Configuration,
                            forces_replacement: false,
                            sensitive: sensitive_path(cluster, ng, &format!("tags.{k}")),
                        });
                    }
                }
            }
        }
        if missing > 0 || state_ng.is_some_and(|n| n.unfinished) {
            // Missing groups come back; an interrupted create or rollout is finished (its
            // nodes are waited on until healthy).
            if missing > 0 {
                let add = missing as u32;
                change.waves = vec![Wave {
                    index: 1,
                    remove_first: vec![],
                    add,
                    remove_after: vec![],
                    floor: 0,
                    ceiling: add,
                    drains: vec![],
                }];
            }
            change.eta_ms = boot;
            change.action = if missing > 0 { Action::Create { target } } else { Action::Resume { target } };
            return Ok(Some(change));
        }
        // After a crash the state may record groups that are gone or miss groups that exist.
        let recorded: BTreeSet<&str> = state_ng
            .map(|n| n.generations.iter().flat_map(|g| g.groups.iter().map(String::as_str)).collect())
            .unwrap_or_default();
        let existing: BTreeSet<&str> = actual.iter().flat_map(|a| a.groups.iter().map(|g| g.name.as_str())).collect();
        if recorded != existing {
            change.reasons.push(AttrChange {
                path: "recorded groups".into(),
                before: Some(serde_json::Value::String(recorded.iter().copied().collect::<Vec<_>>().join(", "))),
                after: Some(serde_json::Value::String(existing.iter().copied().collect::<Vec<_>>().join(", "))),
                reason: Reason::StateRecord,
                forces_replacement: false,
                sensitive: false,
            });
        }
        if change.reasons.is_empty() && !settings_drift {
            return Ok(None);
        }
        change.action = Action::Update { target };
        return Ok(Some(change));
    }
    // A rollout: the old generations' instances are replaced by the target's.
    if !input.refreshed && ng.role == Role::Worker && s.desired.is_none() {
        // The autoscaler owns desired inside min..max and only the cloud knows it now: waves
        // planned from a guess could remove more nodes than the plan's floor shows.
        return Err(PlanError {
            address: ng.address.clone(),
            message: "a rollout of a node group whose desired capacity the autoscaler owns needs the cloud's count: plan with a refresh (without --refresh=false), or pin `desired`".into(),
        });
    }
    let recorded_before =
        state_ng.and_then(|n| n.generations.iter().find(|g| old.iter().any(|o| o.id == g.id)).map(|g| g.spec.clone()));
    change.reasons = match recorded_before {
        Some(before) => spec_changes(Some(&before), &shown, (cluster, ng), false),
        None => observed_spec_changes(old.last().copied(), &shown, (cluster, ng), &gen),
    };
    // A rollout's labels are its new generation's, shown with the spec's changes.
    change.reasons.extend(
        settings_changes(recorded.as_deref(), s, ng, cluster)
            .into_iter()
            .filter(|c| c.path != "labels" && !c.path.starts_with("labels.")),
    );
    let old_instances: Vec<OldInstance> = old
        .iter()
        .flat_map(|a| a.groups.iter())
        .flat_map(|g| live(g))
        .map(|i| OldInstance {
            id: i.id.clone(),
            zone: i.zone.clone(),
            launched_at_ms: i.launched_at_ms,
            healthy: i.state == InstanceState::Running && i.healthy,
        })
        .collect();
    let new_ready: u32 = target_actual.map_or(0, |a| a.groups.iter().map(|g| healthy_count(g)).sum());
    let (surge, unavailable) = match ng.role {
        // One member at a time, never below the full count: quorum is kept.
        Role::ControlPlane => (1, 0),
        // A wave replaces no more nodes than the cluster's disruption budget allows.
        // The budget caps the two together (a wave replaces up to surge + unavailable nodes),
        // surge first, so that a tight budget keeps capacity rather than dropping it.
        Role::Worker => {
            let surge = s.rollout.max_surge.resolve(replicas, true).min(budget);
            (surge, s.rollout.max_unavailable.resolve(replicas, false).min(budget - surge))
        }
    };
    let input_w = RolloutInput {
        replicas,
        max_surge: surge,
        max_unavailable: unavailable,
        old: old_instances,
        new_ready: new_ready.min(replicas),
    };
    change.waves = waves::schedule(&input_w).map_err(|e| PlanError {
        address: ng.address.clone(),
        message: format!(
            "{e} (max_surge {} and max_unavailable {} of {replicas} nodes)",
            s.rollout.max_surge, s.rollout.max_unavailable
        ),
    })?;
    change.eta_ms = change.waves.iter().filter(|w| w.add > 0).count() as u64 * boot;
    let retire = old.iter().flat_map(|a| a.groups.iter().map(|g| g.name.clone())).collect();
    change.action = Action::Rollout { target, retire };
    Ok(Some(change))
}

/// The cloud as the state describes it, for `plan --refresh=false`: every recorded group
/// with the applied settings and healthy placeholder instances (their ids are not known).
///
/// The state records the tags the groups got (the cluster's with the node group's); a state
/// written before it did is taken to carry the tags the model gives the cluster now, so
/// without a refresh a change of those is not seen (as no drift is).
pub fn observed_from_state(state: &State, model: &Model) -> BTreeMap<String, Observed> {
    let mut out: BTreeMap<String, Observed> = BTreeMap::new();
    for (caddr, cs) in &state.clusters {
        let cluster_tags = model.clusters.iter().find(|c| &c.address == caddr).map(|c| &c.tags);
        for (addr, ng) in &cs.node_groups {
            let (owner_cluster, owner_ng) = state_owner(caddr, addr, ng);
            let s = &ng.settings;
            for gen in &ng.generations {
                let spec: GenerationSpec = serde_json::from_value(gen.spec.clone()).unwrap_or_default();
                for (i, name) in gen.groups.iter().enumerate() {
                    let member = ng.role == Role::ControlPlane;
                    let desired = if member { 1 } else { s.desired.unwrap_or(s.min) };
                    let subnets = match (member, s.subnets.is_empty()) {
                        (true, false) => vec![s.subnets[i % s.subnets.len()].clone()],
                        _ => s.subnets.clone(),
                    };
                    let instances = (0..desired)
                        .map(|k| drydock_provider::Instance {
                            id: format!("(not refreshed: {name} #{})", k + 1),
                            zone: String::new(),
                            subnet: String::new(),
                            image: spec.image.clone(),
                            instance_type: spec.instance_types.first().cloned().unwrap_or_default(),
                            state: InstanceState::Running,
                            healthy: true,
                            launched_at_ms: 0,
                            healthy_at_ms: Some(0),
                        })
                        .collect();
                    out.entry(cs.provider.clone()).or_default().groups.push(ObservedGroup {
                        name: name.clone(),
                        ownership: drydock_provider::Ownership {
                            lineage: state.lineage.clone(),
                            cluster: owner_cluster.clone(),
                            node_group: owner_ng.clone(),
                            generation: gen.id.clone(),
                        },
                        spec: spec.clone(),
                        spec_partial: false,
                        join_digest: None,
                        settings: GroupSettings {
                            min: if member { 1 } else { s.min },
                            max: if member { 1 } else { s.max },
                            desired,
                            subnets,
                            tags: {
                                let mut tags = cluster_tags.cloned().unwrap_or_default();
                                tags.extend(s.tags.clone());
                                tags
                            },
                            health_check: provider_health_check(s.health.check),
                            grace_period_ms: s.health.grace_period_ms,
                        },
                        instances,
                        created_at_ms: 0,
                    });
                }
            }
        }
    }
    out
}

/// What changed in the cloud behind drydock's back, for one configured node group: groups
/// the state records that are gone, settings that differ from what was applied (an
/// unpinned desired capacity inside `size` is the autoscaler's, never drift), and
/// instances of the current generation that are unhealthy or pending too long.
fn detect_drift(
    state: Option<&State>,
    cluster: &Cluster,
    ng: &NodeGroup,
    mine: &[&ObservedGroup],
    foreign: &[&ObservedGroup],
    now_ms: u64,
) -> Vec<Drift> {
    let Some(sn) = state.and_then(|s| s.node_group(&cluster.address, &ng.address)) else { return vec![] };
    let Some(current) = sn.current() else { return vec![] };
    // An apply of drydock's own that was interrupted (a create or rollout that did not finish,
    // or a cloud call journalled and never settled) left the groups half-way: that is not a
    // change made outside drydock, and the next apply finishes it.
    let journalled = state.is_some_and(|s| s.journal.iter().any(|j| j.address == ng.address));
    if sn.unfinished || journalled {
        return vec![Drift {
            address: ng.address.clone(),
            path: "apply".into(),
            before: Some("complete".into()),
            after: Some("interrupted".into()),
            sensitive: false,
            action: "finished by apply (an earlier apply stopped half-way)".into(),
        }];
    }
    let revealed;
    let applied = if has_digests(&sn.settings) {
        let configured = configured_settings(cluster, ng);
        let known = std::iter::once(&configured.tags).chain(mine.iter().map(|g| &g.settings.tags));
        revealed = drydock_state::reveal_settings(&sn.settings, known, &configured.labels);
        &revealed
    } else {
        &sn.settings
    };
    let mut out = vec![];
    let mut push = |path: String, before: serde_json::Value, after: serde_json::Value, action: &str| {
        out.push(Drift {
            address: ng.address.clone(),
            before: Some(before),
            after: Some(after),
            sensitive: sensitive_path(cluster, ng, &path),
            path,
            action: action.to_string(),
        })
    };
    for name in &current.groups {
        let Some(g) = mine.iter().find(|g| &g.name == name) else {
            match foreign.first() {
                // Not deleted: the node group runs under another state's lineage.
                Some(f) => push(
                    format!("groups.{name}"),
                    "exists".into(),
                    format!("not found; the node group runs under another state (lineage {})", f.ownership.lineage)
                        .into(),
                    "not created again: adopt its groups with `drydock import`",
                ),
                None => push(
                    format!("groups.{name}"),
                    "exists".into(),
                    "missing (deleted outside drydock)".into(),
                    "recreated by apply",
                ),
            }
            continue;
        };
        // The settings this group was given, from what the state says was applied.
        let member =
            name.rsplit_once("-m").and_then(|(_, m)| m.parse::<usize>().ok()).filter(|_| sn.role == Role::ControlPlane);
        let (min, max) = match member {
            Some(_) => (1, 1),
            None => (applied.min, applied.max),
        };
        let subnets = match member {
            Some(m) if !applied.subnets.is_empty() => vec![applied.subnets[m % applied.subnets.len()].clone()],
            _ => applied.subnets.clone(),
        };
        let o = &g.settings;
        let restore = "restored in place by apply";
        if o.min != min {
            push("min".into(), min.into(), o.min.into(), restore);
        }
        if o.max != max {
            push("max".into(), max.into(), o.max.into(), restore);
        }
        if let Some(d) = applied.desired.filter(|_| member.is_none()) {
            if o.desired != d {
                push("desired".into(), d.into(), o.desired.into(), restore);
            }
        }
        if o.subnets != subnets {
            push("subnets".into(), subnets.clone().into(), o.subnets.clone().into(), restore);
        }
        let check = provider_health_check(applied.health.check);
        if o.health_check != check {
            push(
                "health.check".into(),
                format!("{check:?}").to_lowercase().into(),
                format!("{:?}", o.health_check).to_lowercase().into(),
                restore,
            );
        }
        if o.grace_period_ms != applied.health.grace_period_ms {
            push(
                "health.grace_period".into(),
                drydock_config::value::format_duration(applied.health.grace_period_ms).into(),
                drydock_config::value::format_duration(o.grace_period_ms).into(),
                restore,
            );
        }
        for (k, v) in &applied.tags {
            // Tags a provider manages itself (ownership, the cluster's ownership tag) are
            // not the node group's to drift.
            if drydock_provider::is_provider_managed_tag(k) {
                continue;
            }
            if o.tags.get(k) != Some(v) {
                push(
                    format!("tags.{k}"),
                    v.clone().into(),
                    o.tags.get(k).cloned().unwrap_or_else(|| "(removed)".into()).into(),
                    restore,
                );
            }
        }
        // A tag added by hand: the provider sets a group's tags exactly, so apply removes it.
        for (k, v) in &o.tags {
            // (A state written before it recorded the cluster's tags lacks those: not drift.)
            let ours = applied.tags.contains_key(k) || cluster.tags.contains_key(k);
            if !ours && !drydock_provider::is_provider_managed_tag(k) {
                push(format!("tags.{k}"), "(absent)".into(), v.clone().into(), "removed by apply");
            }
        }
        let unhealthy_after = drydock_config::value::format_duration(applied.health.unhealthy_timeout_ms);
        for i in &g.instances {
            match i.state {
                InstanceState::Running if !i.healthy => push(
                    format!("instances.{}", i.id),
                    "healthy".into(),
                    "unhealthy".into(),
                    &format!("replaced by the cloud, or by `drydock watch` once unhealthy for {unhealthy_after}"),
                ),
                InstanceState::Pending
                    if now_ms.saturating_sub(i.launched_at_ms) > applied.health.startup_timeout_ms =>
                {
                    push(
                        format!("instances.{}", i.id),
                        "running".into(),
                        format!("pending for {}", drydock_config::value::format_duration(now_ms - i.launched_at_ms))
                            .into(),
                        "replaced by `drydock watch` (pending longer than health.startup_timeout)",
                    )
                }
                _ => {}
            }
        }
    }
    out
}

/// Why a node group is not created: it runs already under another lineage (a lost state, or
/// another state pushed over this one), and a second copy would leave the first one known to
/// no state.
fn foreign_error(address: &str, lineage: &str, foreign: &[&ObservedGroup]) -> PlanError {
    let lineages: BTreeSet<&str> = foreign.iter().map(|g| g.ownership.lineage.as_str()).collect();
    let names: Vec<&str> = foreign.iter().map(|g| g.name.as_str()).collect();
    let instances: usize = foreign.iter().map(|g| g.live()).sum();
    PlanError {
        address: address.to_string(),
        message: format!(
            "runs already under another state: {} {} ({} running) {} lineage {}, not this state's {lineage}. \
             drydock does not make a second copy; adopt {} into this state with `drydock import` (no node is \
             replaced), or delete {} if {} not wanted",
            if names.len() == 1 { "group" } else { "groups" },
            names.join(", "),
            instances,
            if names.len() == 1 { "carries" } else { "carry" },
            lineages.into_iter().collect::<Vec<_>>().join(", "),
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it is" } else { "they are" },
        ),
    }
}

/// The time a node takes to become healthy: measured (the average of the node group's last
/// boots) when there is a measure, else the provider's estimate.
fn boot_estimate(input: &PlanInput, cluster: &Cluster, state_ng: Option<&drydock_state::NodeGroupState>) -> u64 {
    if let Some(ng) = state_ng.filter(|n| !n.boot_times_ms.is_empty()) {
        return ng.boot_times_ms.iter().sum::<u64>() / ng.boot_times_ms.len() as u64;
    }
    input.boot_estimate_ms.get(&cluster.provider).copied().unwrap_or(60_000)
}

/// Flattens a JSON value into `path = text` leaves (`labels.pool`).
/// Values read as they are written in .kcl: `{"int": 1}` is `1`, `{"percent": 25.0}` is
/// `25%`, and a `…_ms` field is a duration under the attribute's own name. Empty maps and
/// lists and nulls are leaves of nothing, so a create does not list them and emptying a
/// map shows each removed key.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::Value as J;
    match v {
        J::Object(m) if m.len() == 1 && m.contains_key("int") => {
            out.insert(prefix.to_string(), m["int"].clone());
        }
        J::Object(m) if m.len() == 1 && m.contains_key("percent") => {
            let p = m["percent"].as_f64().unwrap_or(0.0);
            out.insert(prefix.to_string(), J::String(format!("{}%", drydock_config::value::format_number(p))));
        }
        J::Object(m) => {
            for (k, x) in m {
                let (k, x) = match (k.strip_suffix("_ms"), x.as_u64()) {
                    (Some(name), Some(ms)) => (name.to_string(), J::String(drydock_config::value::format_duration(ms))),
                    _ => (k.clone(), x.clone()),
                };
                let p = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                flatten(&p, &x, out);
            }
        }
        J::Array(a) if a.is_empty() => {}
        J::Null => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The leaves that differ between two values, as attribute changes. Sensitive paths are
/// those of the node group's attributes that derive from a sensitive variable.
fn diff(
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
    (cluster, ng): (&Cluster, &NodeGroup),
    forces: bool,
) -> Vec<AttrChange> {
    let mut b = BTreeMap::new();
    if let Some(v) = before {
        flatten("", v, &mut b);
    }
    let mut a = BTreeMap::new();
    flatten("", after, &mut a);
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| AttrChange {
            path: k.clone(),
            before: b.get(k).cloned(),
            after: a.get(k).cloned(),
            reason: Reason::Configuration,
            forces_replacement: forces,
            sensitive: sensitive_path(cluster, ng, k),
        })
        .collect()
}

/// The spec attributes that differ (all of them for a create); each forces replacement.
fn spec_changes(
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
    on: (&Cluster, &NodeGroup),
    create: bool,
) -> Vec<AttrChange> {
    diff(before, after, on, !create)
}

/// The spec changes of a rollout whose old generation the state does not record (the state
/// was lost, or is older than the cloud): from what the cloud shows of that generation. When
/// the provider read only part of its spec (`spec_partial`), only the attributes it shows
/// (role, image, instance types, capacity type) are compared, and the change of generation
/// is named, so that nothing unread shows as changed.
fn observed_spec_changes(
    old: Option<&ActualGen>,
    after: &serde_json::Value,
    (cluster, ng): (&Cluster, &NodeGroup),
    gen: &str,
) -> Vec<AttrChange> {
    let Some((o, g)) = old.and_then(|o| Some((o, o.groups.iter().find(|g| !g.spec_partial).or(o.groups.first())?)))
    else {
        return spec_changes(None, after, (cluster, ng), false);
    };
    let before = display_spec(ng, &g.spec);
    if !g.spec_partial {
        return spec_changes(Some(&before), after, (cluster, ng), false);
    }
    const SHOWN: [&str; 4] = ["image", "instance_types", "capacity_type", "role"];
    let known = |v: &serde_json::Value| -> serde_json::Value {
        let shown = |k: &str, x: &serde_json::Value| {
            SHOWN.contains(&k)
                && before
                    .get(k)
                    .is_some_and(|b| !(b.as_str() == Some("") || b.as_array().is_some_and(|a| a.is_empty())))
                && !x.is_null()
        };
        let kept = v.as_object().map(|m| m.iter().filter(|(k, x)| shown(k, x)).map(|(k, x)| (k.clone(), x.clone())));
        serde_json::Value::Object(kept.into_iter().flatten().collect())
    };
    let mut out = spec_changes(Some(&known(&before)), &known(after), (cluster, ng), false);
    out.push(AttrChange {
        path: "generation".into(),
        before: Some(serde_json::Value::String(o.id.clone())),
        after: Some(serde_json::Value::String(gen.to_string())),
        reason: Reason::Configuration,
        forces_replacement: true,
        sensitive: false,
    });
    out
}

/// The in-place settings that differ from what was last applied. Labels are in place only in
/// a cluster with a Kubernetes API (elsewhere they are the generation's, and a change of them
/// is a rollout shown by the spec's changes).
fn settings_changes(
    before: Option<&NodeSettings>,
    after: &NodeSettings,
    ng: &NodeGroup,
    cluster: &Cluster,
) -> Vec<AttrChange> {
    let Some(before) = before else { return vec![] };
    let json = |s: &NodeSettings| serde_json::to_value(s).expect("settings serialise");
    let mut changes = diff(Some(&json(before)), &json(after), (cluster, ng), false);
    if cluster.kubernetes.is_none() {
        changes.retain(|c| c.path != "labels" && !c.path.starts_with("labels."));
    }
    changes
}

/// The configured spec with the labels of the generation the node group runs, when that is
/// all that differs and the cluster has a Kubernetes API: the new labels are then applied to
/// the Nodes in place (`NodeSettings::labels`), as Cluster API does, instead of replacing every
/// node. `None` otherwise (no Kubernetes API, no applied generation that the cloud still has,
/// or other differences).
fn labels_in_place(
    cluster: &Cluster,
    spec: &GenerationSpec,
    state_ng: Option<&drydock_state::NodeGroupState>,
    observed: &[&ObservedGroup],
) -> Option<GenerationSpec> {
    cluster.kubernetes.as_ref()?;
    let current = state_ng?.current()?;
    if current.id == generation_id(spec) || !observed.iter().any(|g| g.ownership.generation == current.id) {
        return None;
    }
    let labels: BTreeMap<String, String> = match current.spec.get("labels") {
        None => BTreeMap::new(),
        Some(v) => {
            v.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect::<Option<_>>()?
        }
    };
    let mut applied = spec.clone();
    applied.labels = labels;
    (generation_id(&applied) == current.id).then_some(applied)
}

impl Plan {
    /// No change, and no cluster to forget.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.forgotten_clusters().next().is_none()
    }

    /// Clusters that leave the state (gone from the configuration, or destroyed).
    pub fn forgotten_clusters(&self) -> impl Iterator<Item = &ClusterRecord> {
        self.clusters.iter().filter(|c| !c.keep)
    }

    pub fn count(&self, kind: ActionKind) -> usize {
        self.changes.iter().filter(|c| c.kind() == kind).count()
    }
}

#[cfg(test)]
mod group_name_tests {
    use super::*;

    /// `group_name` as it was before its sanitising moved to `drydock_model`, but taking the
    /// lineage's first six characters (it sliced six bytes, which panics inside a character).
    fn before(lineage: &str, oc: &str, og: &str, generation: &str, member: Option<usize>) -> String {
        let prefix: String = lineage.chars().take(6).collect();
        let mut raw = format!("{prefix}-{oc}-{og}-{generation}");
        if let Some(m) = member {
            raw.push_str(&format!("-m{m}"));
        }
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' };
            if !(c == '-' && out.ends_with('-')) {
                out.push(c);
            }
        }
        out.trim_end_matches('-').to_string()
    }

    #[test]
    fn group_names_are_unchanged_for_every_input() {
        let lineages = ["9f8e7d6c-5b4a-4321-8765-0123456789ab", "abc", "", "------", "é-é-é-é", "ab.cd/ef"];
        let owners = [
            "demo",
            "fleet[\"eu\"]",
            "fleet[\"eu-1\"]",
            "fleet[\"\"]",
            "-a-",
            ".",
            "",
            "a__b",
            "w[\"us-east-1a\"]",
            "東京",
            "x\\n\"y\"",
        ];
        let generations = ["0123456789", "", "-", "abc-"];
        for l in lineages {
            for oc in owners {
                for og in owners {
                    for g in generations {
                        for m in [None, Some(0), Some(4)] {
                            assert_eq!(
                                group_name(l, oc, og, g, m),
                                before(l, oc, og, g, m),
                                "{l:?} {oc:?} {og:?} {g:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_non_ascii_lineage_does_not_panic() {
        assert_eq!(group_name("aébcdéfgh", "demo", "w", "0123456789", None), "a-bcd-demo-w-0123456789");
    }

    /// The configuration refuses node groups whose part would coincide with the same part
    /// the planner names them with.
    #[test]
    fn the_configuration_sees_the_planners_owner_names() {
        let text = r#"
provider "sim" {}

cluster "fleet" {
  for_each           = ["eu", "us-east"]
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a"]
  }
  node_group "w" {
    for_each      = ["a", "b.c"]
    image         = "img"
    instance_type = "m6i.large"
    size          = 1
  }
  node_group "x_y" {
    image         = "img"
    instance_type = "m6i.large"
    size          = 1
  }
}
"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.kcl"), text).unwrap();
        let loaded = drydock_config::load(dir.path(), &drydock_config::Inputs::default());
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let model = loaded.model.unwrap();
        assert_eq!(model.node_group_count(), 6);
        for c in &model.clusters {
            for ng in &c.node_groups {
                let (oc, og) = owner_names(c, ng);
                assert_eq!((oc.as_str(), og.as_str()), (c.owner_name(), ng.owner_name()));
                assert_eq!(ng.cloud_name_part(c), drydock_model::cloud_name_part(&oc, &og));
            }
        }
    }
}
