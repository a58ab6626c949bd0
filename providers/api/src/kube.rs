//! A Kubernetes cluster as the executor needs it: its Nodes, the Pods bound to them, its
//! PodDisruptionBudgets, and the few writes a rollout makes (cordon, label, taint, evict,
//! delete). The executor speaks only these types; `crates/kube` implements [`Kubernetes`] with
//! the `kube` crate, for real clusters and for the simulated cloud's API server alike.
//!
//! Times are milliseconds on the provider's clock (the UNIX epoch for real clusters; the
//! simulated cloud's virtual time maps its milliseconds onto the epoch the same way), read
//! from the API's RFC 3339 timestamps.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ProviderError;

/// The label that takes a node out of external load balancers' target pools.
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The taint drydock puts on the old generation's nodes when a rollout starts, so that evicted
/// pods land on new nodes rather than on the next node to go.
pub const OUTDATED_TAINT: &str = "drydock.dev/outdated";
/// The annotation that lists (comma-separated) the label keys drydock set on a node, so that it
/// removes only those.
pub const OWNED_LABELS_ANNOTATION: &str = "drydock.dev/owned-labels";
/// The annotation naming the node group (its address) a Node belongs to, set by drydock when
/// it first waits for the Node: a Node whose instance the cloud terminated on its own is then
/// known as drydock's to delete.
pub const NODE_GROUP_ANNOTATION: &str = "drydock.dev/node-group";
/// The annotation recording that drydock cordoned a node (so that an abandoned rollout
/// uncordons only what it cordoned itself).
pub const CORDONED_BY_ANNOTATION: &str = "drydock.dev/cordoned";
/// A pod annotation that blocks its voluntary disruption (as Karpenter's
/// `karpenter.sh/do-not-disrupt`, which is honoured too).
pub const DO_NOT_DISRUPT_ANNOTATIONS: &[&str] = &["drydock.dev/do-not-disrupt", "karpenter.sh/do-not-disrupt"];
/// The annotation the kubelet puts on mirror pods (static pods seen through the API).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A condition's status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// A taint on a node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A Node, as far as drydock looks at it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub uid: String,
    /// `spec.providerID`: `aws:///ZONE/i-…` on AWS, `sim:///ZONE/i-…` on the simulated cloud.
    pub provider_id: Option<String>,
    pub created_at_ms: u64,
    /// The `Ready` condition and when it last changed; `None` before the kubelet reported it.
    pub ready: Option<(ConditionStatus, u64)>,
    /// The pressure conditions (`MemoryPressure`, `DiskPressure`, `PIDPressure`) that are True.
    pub pressure: Vec<String>,
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub deleting: bool,
}

impl NodeInfo {
    /// The instance id in the provider id's last segment (`aws:///us-east-1a/i-0abc` → `i-0abc`).
    pub fn instance_id(&self) -> Option<&str> {
        instance_of_provider_id(self.provider_id.as_deref()?)
    }

    /// Ready, and no pressure condition: what Cluster API calls NodeHealthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self.ready, Some((ConditionStatus::True, _))) && self.pressure.is_empty()
    }

    /// Healthy, and for at least `min_ready_ms` at `now_ms`.
    pub fn is_available(&self, now_ms: u64, min_ready_ms: u64) -> bool {
        self.is_healthy() && self.ready.is_some_and(|(_, since)| now_ms.saturating_sub(since) >= min_ready_ms)
    }
}

/// The instance id of a provider id: its last path segment, when that looks like one.
pub fn instance_of_provider_id(provider_id: &str) -> Option<&str> {
    let last = provider_id.rsplit('/').next()?;
    (!last.is_empty()).then_some(last)
}

/// Who owns a pod (its controller owner reference).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// A Pod, as far as a drain looks at it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// The controller owner reference, if any.
    pub owner: Option<Owner>,
    /// `status.phase`: Pending, Running, Succeeded, Failed, Unknown.
    pub phase: String,
    /// The `Ready` condition is True.
    pub ready: bool,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub deleting: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Mounts an `emptyDir` volume (its data goes with the node).
    pub empty_dir: bool,
    /// `spec.terminationGracePeriodSeconds`.
    pub grace_period_s: Option<i64>,
}

impl PodInfo {
    pub fn is_daemonset(&self) -> bool {
        self.owner.as_ref().is_some_and(|o| o.kind == "DaemonSet")
    }

    pub fn is_mirror(&self) -> bool {
        self.annotations.contains_key(MIRROR_ANNOTATION)
    }

    pub fn is_terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }

    /// Marked as not to be disrupted voluntarily.
    pub fn do_not_disrupt(&self) -> bool {
        DO_NOT_DISRUPT_ANNOTATIONS.iter().any(|k| self.annotations.get(*k).is_some_and(|v| v == "true"))
    }

    /// What a drain evicts: not DaemonSet pods, not mirror pods, not pods already finished.
    pub fn is_drained(&self) -> bool {
        !self.is_daemonset() && !self.is_mirror() && !self.is_terminal()
    }

    pub fn reference(&self) -> PodRef {
        PodRef { namespace: self.namespace.clone(), name: self.name.clone(), uid: self.uid.clone() }
    }
}

/// A pod by name, and the UID it must still have (a precondition of every write).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A label selector's requirement (`matchExpressions`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A label selector, with the API server's semantics (all of it must match; an empty selector
/// matches everything).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // An unknown operator matches nothing, as the API server refuses it.
                    _ => false,
                }
            })
    }
}

/// A PodDisruptionBudget and its status as the disruption controller computed it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PdbInfo {
    pub namespace: String,
    pub name: String,
    /// `None`: the budget selects nothing (a null selector).
    pub selector: Option<LabelSelector>,
    /// `spec.minAvailable` / `spec.maxUnavailable` as written (an integer or a percentage).
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub disruptions_allowed: i32,
    pub expected_pods: i32,
}

impl PdbInfo {
    /// Whether this budget covers the pod (same namespace, selector matches).
    pub fn covers(&self, pod: &PodInfo) -> bool {
        self.namespace == pod.namespace && self.selector.as_ref().is_some_and(|s| s.matches(&pod.labels))
    }
}

/// What the API server answered to an eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// 200/201: the pod is being deleted.
    Evicted,
    /// 404 (gone) or 409 (its UID changed: the pod we meant is gone).
    Gone,
    /// 429: a disruption budget does not allow it now (or the server throttles); the API
    /// server's message and causes (which name the budget: "The disruption budget web needs 5
    /// healthy pods and has 5 currently").
    Blocked { message: String },
    /// 500: more than one disruption budget selects the pod; retrying cannot help.
    Misconfigured { message: String },
}

/// A change to a node: `None` leaves a field as it is. Labels and annotations map to `None` to
/// remove them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodePatch {
    pub unschedulable: Option<bool>,
    pub labels: BTreeMap<String, Option<String>>,
    pub annotations: BTreeMap<String, Option<String>>,
    /// The whole new list of taints.
    pub taints: Option<Vec<Taint>>,
}

impl NodePatch {
    pub fn is_empty(&self) -> bool {
        self.unschedulable.is_none() && self.labels.is_empty() && self.annotations.is_empty() && self.taints.is_none()
    }
}

/// One Kubernetes cluster's API. Errors are [`ProviderError`]s: `NotFound`, `Auth` (401/403),
/// `Throttled` (429 outside evictions), `Unavailable` (cannot connect, 5xx), `InvalidInput`.
#[async_trait]
pub trait Kubernetes: Send + Sync {
    /// Where this client talks to (for messages), e.g. `https://…:6443 (context prod)`.
    fn describe(&self) -> String;

    /// Every Node.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, ProviderError>;

    /// The pods bound to a node (a `spec.nodeName` field selector), or every pod.
    async fn pods(&self, node: Option<&str>) -> Result<Vec<PodInfo>, ProviderError>;

    /// Every PodDisruptionBudget (policy/v1).
    async fn disruption_budgets(&self) -> Result<Vec<PdbInfo>, ProviderError>;

    /// Changes a node (a merge patch). NotFound if it is gone.
    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<(), ProviderError>;

    /// Evicts a pod through the Eviction API (policy/v1), with its UID as precondition and an
    /// optional grace period.
    async fn evict(&self, pod: &PodRef, grace_period_s: Option<i64>) -> Result<Eviction, ProviderError>;

    /// Deletes a pod (bypassing disruption budgets), with its UID as precondition. A pod
    /// already gone, or replaced by another of the same name, is not an error.
    async fn delete_pod(&self, pod: &PodRef, grace_period_s: i64) -> Result<(), ProviderError>;

    /// Deletes a Node object. Absent is not an error.
    async fn delete_node(&self, name: &str) -> Result<(), ProviderError>;
}

/// A source of bearer tokens for a Kubernetes API server, for credentials that expire (an EKS
/// token is a presigned STS request, valid for minutes): the token, and when it expires in
/// milliseconds since the UNIX epoch. A client asks again before that.
#[async_trait]
pub trait BearerToken: Send + Sync {
    async fn token(&self) -> Result<(String, u64), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_match_as_the_api_server_does() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::default().matches(&l));
        let s = LabelSelector { match_labels: labels(&[("app", "web")]), match_expressions: vec![] };
        assert!(s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "db")])));
        let req = |op: &str, values: &[&str]| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: "tier".into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        };
        assert!(req("In", &["front", "back"]).matches(&l));
        assert!(!req("NotIn", &["front"]).matches(&l));
        assert!(req("NotIn", &["front"]).matches(&labels(&[])));
        assert!(req("Exists", &[]).matches(&l));
        assert!(req("DoesNotExist", &[]).matches(&labels(&[])));
        assert!(!req("Bogus", &[]).matches(&l));
    }

    #[test]
    fn provider_ids_name_their_instance() {
        assert_eq!(instance_of_provider_id("aws:///us-east-1a/i-0abc"), Some("i-0abc"));
        assert_eq!(instance_of_provider_id("sim:///zone-a/i-01"), Some("i-01"));
        assert_eq!(instance_of_provider_id("aws:///"), None);
    }
}
