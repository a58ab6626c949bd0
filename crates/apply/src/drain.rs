//! The Kubernetes side of a rollout, through the [`Kubernetes`] trait: which Node an instance
//! is (by `spec.providerID`), whether a new node counts (Ready, no pressure, held for
//! `rollout.min_ready`), and the removal pipeline of an old node: cordon and take it out of
//! load balancers, evict its pods through the Eviction API (PodDisruptionBudgets respected;
//! DaemonSet, mirror and finished pods left alone) until none is left or `drain.timeout`
//! passes, then `drain.on_timeout`: halt with the node back in service, or delete what is left.
//!
//! Pure decisions live in small functions here; the loops take the provider's clock, so that
//! on the simulated cloud a 15-minute drain runs in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use drydock_model::{Drain, OnTimeout};
use drydock_provider::kube::{
    Eviction, Kubernetes, NodeInfo, NodePatch, PodInfo, PodRef, Taint, CORDONED_BY_ANNOTATION, EXCLUDE_FROM_LB_LABEL,
    OUTDATED_TAINT,
};
use drydock_provider::{Clock, ProviderError};

/// How long a pod blocked by a disruption budget waits before the next eviction (kubectl
/// retries every 5 s).
pub const EVICTION_RETRY_MS: u64 = 5_000;
/// How often a drain looks whether its pods are gone.
pub const DRAIN_POLL_MS: u64 = 1_000;
/// After a forced deletion, how long (beyond the pods' grace periods) to wait for them to go
/// before the instance is terminated anyway.
pub const FORCE_SLACK_MS: u64 = 30_000;
/// The shortest grace period a forced deletion gives (0 would skip the kubelet's cleanup).
pub const MIN_FORCE_GRACE_S: i64 = 1;

/// The nodes of some instances, by instance id.
pub fn nodes_by_instance(nodes: &[NodeInfo]) -> BTreeMap<String, NodeInfo> {
    nodes.iter().filter_map(|n| n.instance_id().map(|id| (id.to_string(), n.clone()))).collect()
}

/// Why a new node does not count yet, or `None` when it does.
pub fn not_available(node: Option<&NodeInfo>, now_ms: u64, min_ready_ms: u64) -> Option<String> {
    use drydock_provider::kube::ConditionStatus;
    let Some(n) = node else { return Some("no Node has registered".into()) };
    match n.ready {
        None => Some(format!("Node {} has not reported Ready", n.name)),
        Some((ConditionStatus::True, since)) => {
            if !n.pressure.is_empty() {
                Some(format!("Node {} is Ready but under {}", n.name, n.pressure.join(", ")))
            } else if now_ms.saturating_sub(since) < min_ready_ms {
                Some(format!(
                    "Node {} Ready for {} of rollout.min_ready {}",
                    n.name,
                    drydock_model::format_duration(now_ms.saturating_sub(since)),
                    drydock_model::format_duration(min_ready_ms)
                ))
            } else {
                None
            }
        }
        Some((status, _)) => Some(format!("Node {} is Ready={status:?}", n.name)),
    }
}

/// The patch that cordons a node for removal: unschedulable, out of external load balancers,
/// marked as cordoned by drydock (so that only what drydock cordoned is ever uncordoned).
pub fn cordon_patch(node: &NodeInfo) -> NodePatch {
    let mut patch = NodePatch::default();
    if !node.unschedulable {
        patch.unschedulable = Some(true);
        patch.annotations.insert(CORDONED_BY_ANNOTATION.into(), Some("true".into()));
    }
    if !node.labels.contains_key(EXCLUDE_FROM_LB_LABEL) {
        patch.labels.insert(EXCLUDE_FROM_LB_LABEL.into(), Some("true".into()));
    }
    patch
}

/// The patch that returns a node drydock cordoned (or tainted as outdated) to service; empty
/// when drydock did neither.
pub fn restore_patch(node: &NodeInfo) -> NodePatch {
    let mut patch = NodePatch::default();
    if node.annotations.contains_key(CORDONED_BY_ANNOTATION) {
        patch.annotations.insert(CORDONED_BY_ANNOTATION.into(), None);
        if node.unschedulable {
            patch.unschedulable = Some(false);
        }
        if node.labels.contains_key(EXCLUDE_FROM_LB_LABEL) {
            patch.labels.insert(EXCLUDE_FROM_LB_LABEL.into(), None);
        }
    }
    if node.taints.iter().any(|t| t.key == OUTDATED_TAINT) {
        patch.taints = Some(node.taints.iter().filter(|t| t.key != OUTDATED_TAINT).cloned().collect());
    }
    patch
}

/// The patch that marks a node of the old generation when a rollout starts, so that pods
/// evicted from its siblings prefer the new nodes.
pub fn outdated_patch(node: &NodeInfo) -> NodePatch {
    let mut patch = NodePatch::default();
    if !node.taints.iter().any(|t| t.key == OUTDATED_TAINT) {
        let mut taints = node.taints.clone();
        taints.push(Taint {
            key: OUTDATED_TAINT.into(),
            value: Some("true".into()),
            effect: "PreferNoSchedule".into(),
        });
        patch.taints = Some(taints);
    }
    patch
}

/// What a drain ended with.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Drained {
    /// Pods evicted.
    pub evicted: Vec<String>,
    /// Pods deleted after `drain.timeout` (`on_timeout = "force"`), bypassing their budgets.
    pub forced: Vec<String>,
    /// Pods still there when the instance was terminated anyway (a forced drain whose pods
    /// did not go).
    pub left: Vec<String>,
    pub took_ms: u64,
}

/// Why a drain stopped without finishing.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainError {
    /// `drain.timeout` passed with pods left, and `on_timeout = "fail"`: the report names each
    /// pod and what blocked it.
    TimedOut {
        node: String,
        report: String,
    },
    /// More than one PodDisruptionBudget selects a pod: the API server refuses every eviction
    /// of it, so waiting cannot help.
    Misconfigured {
        node: String,
        report: String,
    },
    Api(ProviderError),
    Interrupted,
}

/// What a drain reports as it goes.
pub trait DrainProgress: Send + Sync {
    fn line(&self, text: &str);
    fn interrupted(&self) -> bool;
}

/// The blockers a drain knows of for one pod: the API server's words (which name the budget
/// and its numbers), or why a pod is left waiting.
fn blocker_report(node: &str, timeout_ms: u64, blocked: &BTreeMap<String, String>, waiting: &[String]) -> String {
    let mut lines = vec![format!(
        "node {node} was not drained after drain.timeout {}; the node is back in service and nothing more was removed",
        drydock_model::format_duration(timeout_ms)
    )];
    for (pod, why) in blocked {
        lines.push(format!("  pod {pod}: {why}"));
    }
    for pod in waiting {
        if !blocked.contains_key(pod) {
            lines.push(format!("  pod {pod}: still terminating"));
        }
    }
    lines.push(
        "  to continue: let the budgets allow a disruption (scale the workload up, or relax the budget) and run `drydock apply` again;"
            .into(),
    );
    lines.push("  or set drain { on_timeout = \"force\" } to delete what is left (bypassing the budgets)".into());
    lines.join("\n")
}

/// How a drain treats a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its kubelet works: pods being deleted are waited for.
    Reachable,
    /// Its Node is not Ready (a dead kubelet cannot stop pods): pods already terminating count
    /// as gone, as Cluster API skips them on an unreachable node.
    Unreachable,
}

/// Drains `node`: evicts every pod a drain evicts, retrying those a budget blocks, until
/// none is left, `drain.timeout` passes (then `on_timeout`), or an interrupt.
pub async fn drain_node(
    kube: &Arc<dyn Kubernetes>,
    clock: &Arc<dyn Clock>,
    node: &str,
    drain: &Drain,
    reach: Reach,
    progress: &dyn DrainProgress,
) -> Result<Drained, DrainError> {
    let start = clock.now_ms();
    let deadline = start.saturating_add(drain.timeout_ms);
    let grace = drain.grace_period_s.map(|g| g.min(i64::MAX as u64) as i64);
    let mut out = Drained::default();
    // The last blocker per pod, and when each blocked pod may be tried again.
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    let mut retry_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut evicted: BTreeSet<String> = BTreeSet::new();
    loop {
        let pods: Vec<PodInfo> = kube
            .pods(Some(node))
            .await
            .map_err(DrainError::Api)?
            .into_iter()
            .filter(PodInfo::is_drained)
            .filter(|p| !(reach == Reach::Unreachable && p.deleting))
            .collect();
        if pods.is_empty() {
            out.took_ms = clock.now_ms().saturating_sub(start);
            return Ok(out);
        }
        let now = clock.now_ms();
        if now >= deadline {
            let waiting: Vec<String> = pods.iter().map(|p| p.reference().to_string()).collect();
            match drain.on_timeout {
                OnTimeout::Fail => {
                    return Err(DrainError::TimedOut {
                        node: node.to_string(),
                        report: blocker_report(node, drain.timeout_ms, &blocked, &waiting),
                    })
                }
                OnTimeout::Force => {
                    force(kube, clock, node, pods, &mut out, progress).await?;
                    out.took_ms = clock.now_ms().saturating_sub(start);
                    return Ok(out);
                }
            }
        }
        if progress.interrupted() {
            return Err(DrainError::Interrupted);
        }
        for pod in pods.iter().filter(|p| !p.deleting) {
            let r = pod.reference();
            let key = r.to_string();
            if pod.do_not_disrupt() {
                // Never evicted: the drain waits for it to go by itself until drain.timeout.
                if let std::collections::btree_map::Entry::Vacant(e) = blocked.entry(key) {
                    progress.line(&format!("node {node}: pod {} is marked do-not-disrupt: waiting for it", e.key()));
                    e.insert(
                        "marked do-not-disrupt (drydock.dev/do-not-disrupt or karpenter.sh/do-not-disrupt)".into(),
                    );
                }
                continue;
            }
            if retry_at.get(&key).is_some_and(|at| *at > now) {
                continue;
            }
            match kube.evict(&r, grace).await.map_err(DrainError::Api)? {
                Eviction::Evicted => {
                    blocked.remove(&key);
                    retry_at.remove(&key);
                    if evicted.insert(key.clone()) {
                        out.evicted.push(key.clone());
                        progress.line(&format!("node {node}: evicted pod {key}"));
                    }
                }
                Eviction::Gone => {
                    blocked.remove(&key);
                }
                Eviction::Blocked { message } => {
                    if blocked.get(&key) != Some(&message) {
                        progress.line(&format!("node {node}: pod {key} blocked: {message}"));
                    }
                    blocked.insert(key.clone(), message);
                    retry_at.insert(key, now.saturating_add(EVICTION_RETRY_MS));
                }
                Eviction::Misconfigured { message } => {
                    return Err(DrainError::Misconfigured {
                        node: node.to_string(),
                        report: format!(
                            "pod {key} on node {node} cannot be evicted: {message}\n  \
                             the API server refuses evictions of a pod that more than one PodDisruptionBudget selects: \
                             make the budgets' selectors disjoint and run `drydock apply` again"
                        ),
                    });
                }
            }
        }
        clock.sleep(DRAIN_POLL_MS.min(deadline.saturating_sub(clock.now_ms()).max(1))).await;
    }
}

/// Deletes what a drain could not evict (bypassing disruption budgets), and waits a bounded
/// time for the pods to go.
async fn force(
    kube: &Arc<dyn Kubernetes>,
    clock: &Arc<dyn Clock>,
    node: &str,
    pods: Vec<PodInfo>,
    out: &mut Drained,
    progress: &dyn DrainProgress,
) -> Result<(), DrainError> {
    let mut longest = 0i64;
    for pod in &pods {
        let grace = pod.grace_period_s.unwrap_or(30).max(MIN_FORCE_GRACE_S);
        longest = longest.max(grace);
        let r: PodRef = pod.reference();
        kube.delete_pod(&r, grace).await.map_err(DrainError::Api)?;
        progress.line(&format!("node {node}: force-deleted pod {r} (drain.timeout passed; its budget was bypassed)"));
        out.forced.push(r.to_string());
    }
    let until = clock.now_ms().saturating_add((longest as u64).saturating_mul(1000)).saturating_add(FORCE_SLACK_MS);
    loop {
        let left: Vec<String> = kube
            .pods(Some(node))
            .await
            .map_err(DrainError::Api)?
            .into_iter()
            .filter(PodInfo::is_drained)
            .map(|p| p.reference().to_string())
            .collect();
        if left.is_empty() || clock.now_ms() >= until {
            out.left = left;
            return Ok(());
        }
        if progress.interrupted() {
            return Err(DrainError::Interrupted);
        }
        clock.sleep(DRAIN_POLL_MS).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drydock_provider::kube::ConditionStatus;

    fn node(ready: Option<(ConditionStatus, u64)>) -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            uid: "u".into(),
            provider_id: Some("sim:///zone-a/i-1".into()),
            created_at_ms: 0,
            ready,
            pressure: vec![],
            unschedulable: false,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: vec![],
            deleting: false,
        }
    }

    #[test]
    fn a_node_counts_once_ready_without_pressure_for_min_ready() {
        assert!(not_available(None, 0, 0).unwrap().contains("no Node"));
        assert!(not_available(Some(&node(None)), 0, 0).is_some());
        assert!(not_available(Some(&node(Some((ConditionStatus::False, 0)))), 0, 0).is_some());
        assert_eq!(not_available(Some(&node(Some((ConditionStatus::True, 1_000)))), 1_000, 0), None);
        assert!(not_available(Some(&node(Some((ConditionStatus::True, 1_000)))), 5_000, 10_000).is_some());
        assert_eq!(not_available(Some(&node(Some((ConditionStatus::True, 1_000)))), 11_000, 10_000), None);
        let mut pressed = node(Some((ConditionStatus::True, 0)));
        pressed.pressure = vec!["DiskPressure".into()];
        assert!(not_available(Some(&pressed), 100_000, 0).unwrap().contains("DiskPressure"));
    }

    #[test]
    fn only_what_drydock_cordoned_is_uncordoned() {
        let mut n = node(None);
        let p = cordon_patch(&n);
        assert_eq!(p.unschedulable, Some(true));
        assert!(p.annotations.contains_key(CORDONED_BY_ANNOTATION));
        // Cordoned by someone else: drydock adds the label only, and never uncordons it.
        n.unschedulable = true;
        let p = cordon_patch(&n);
        assert_eq!(p.unschedulable, None);
        assert!(!p.annotations.contains_key(CORDONED_BY_ANNOTATION));
        assert!(restore_patch(&n).is_empty());
        n.annotations.insert(CORDONED_BY_ANNOTATION.into(), "true".into());
        n.labels.insert(EXCLUDE_FROM_LB_LABEL.into(), "true".into());
        let p = restore_patch(&n);
        assert_eq!(p.unschedulable, Some(false));
        assert_eq!(p.labels.get(EXCLUDE_FROM_LB_LABEL), Some(&None));
    }

    #[test]
    fn the_outdated_taint_is_added_once_and_removed_alone() {
        let mut n = node(None);
        n.taints.push(Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into() });
        let p = outdated_patch(&n);
        let taints = p.taints.unwrap();
        assert_eq!(taints.len(), 2);
        n.taints = taints;
        assert!(outdated_patch(&n).is_empty());
        let restored = restore_patch(&n).taints.unwrap();
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].key, "dedicated");
    }
}
