//! What the plan shows of Kubernetes before anything happens: per wave, the nodes it drains and
//! the drain blockers known at plan time (budgets that allow no disruption now, pods marked
//! not to be disrupted, pods no controller recreates, pods whose emptyDir data is lost), drain
//! time in the ETA, a warning for clusters whose nodes go without draining, and for a
//! control-plane rollout the etcd member each node takes with it (and what stands in the way:
//! members down, unpromoted learners, alarms). Pure.

use std::collections::BTreeMap;

use drydock_provider::etcd::EtcdHealth;
use drydock_provider::kube::{NodeInfo, PdbInfo, PodInfo};
use serde::{Deserialize, Serialize};

use crate::{ActionKind, Change};
use drydock_config::model::Model;
use drydock_state::State;

/// A cluster's Kubernetes objects as observed when planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeObserved {
    pub nodes: Vec<NodeInfo>,
    pub pods: Vec<PodInfo>,
    pub budgets: Vec<PdbInfo>,
    /// The control plane's etcd, for a cluster whose `kubernetes` block has an `etcd` block
    /// (`None` also when it could not be reached: then a warning says so).
    pub etcd: Option<EtcdHealth>,
}

/// The etcd member a control-plane node's removal takes with it: removed after the node's
/// drain and before its instance is terminated, leadership moved off it first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdRemoval {
    /// The member's name (kubeadm: the Node's name).
    pub member: String,
    /// The member id, in hex as etcdctl shows it.
    pub id: String,
    /// It leads now: leadership moves to another member first.
    pub leader: bool,
}

/// One node a wave drains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDrain {
    pub instance: String,
    /// `None`: the instance has no Node (it never joined): nothing to drain.
    pub node: Option<String>,
    /// The pods the drain evicts (DaemonSet, mirror and finished pods stay).
    pub pods: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    /// A control-plane node's etcd member, removed after the drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdRemoval>,
}

/// Something known at plan time to stand in a drain's way, or to be lost by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// `namespace/name`.
    pub pod: String,
    /// `pdb` (a budget allows no disruption now: the drain waits), `pdb_conflict` (several
    /// budgets select the pod: the API server refuses its eviction), `do_not_disrupt` (the
    /// drain waits until `drain.timeout`), `no_controller` (evicted, never recreated),
    /// `empty_dir` (its emptyDir data is lost).
    pub kind: String,
    pub detail: String,
    /// Whether it holds the drain up (the others are warnings).
    pub blocks: bool,
}

/// The blockers of one pod.
pub fn blockers(pod: &PodInfo, budgets: &[PdbInfo]) -> Vec<Blocker> {
    let name = format!("{}/{}", pod.namespace, pod.name);
    let mut out = vec![];
    let covering: Vec<&PdbInfo> = budgets.iter().filter(|b| b.covers(pod)).collect();
    if covering.len() > 1 {
        let names: Vec<String> = covering.iter().map(|b| format!("{}/{}", b.namespace, b.name)).collect();
        out.push(Blocker {
            pod: name.clone(),
            kind: "pdb_conflict".into(),
            detail: format!(
                "selected by {} PodDisruptionBudgets ({}): the API server refuses to evict it",
                names.len(),
                names.join(", ")
            ),
            blocks: true,
        });
    } else if let Some(b) = covering.first() {
        if b.disruptions_allowed <= 0 && !pod.deleting {
            out.push(Blocker {
                pod: name.clone(),
                kind: "pdb".into(),
                detail: format!(
                    "PodDisruptionBudget {}/{} allows no disruption now (needs {} healthy, has {})",
                    b.namespace, b.name, b.desired_healthy, b.current_healthy
                ),
                blocks: true,
            });
        }
    }
    if pod.do_not_disrupt() {
        out.push(Blocker {
            pod: name.clone(),
            kind: "do_not_disrupt".into(),
            detail: "marked do-not-disrupt: the drain waits for it until drain.timeout".into(),
            blocks: true,
        });
    }
    if pod.owner.is_none() {
        out.push(Blocker {
            pod: name.clone(),
            kind: "no_controller".into(),
            detail: "no controller: once evicted it is not recreated".into(),
            blocks: false,
        });
    }
    if pod.empty_dir {
        out.push(Blocker {
            pod: name,
            kind: "empty_dir".into(),
            detail: "its emptyDir data is lost with the node".into(),
            blocks: false,
        });
    }
    out
}

/// Fills in the drains of every rollout in a cluster whose Kubernetes API was observed, adds
/// measured drain time to their ETAs, and returns the warnings: clusters with node changes
/// but no `kubernetes` block.
pub fn annotate(
    changes: &mut [Change],
    model: &Model,
    kube: &BTreeMap<String, KubeObserved>,
    state: Option<&State>,
) -> Vec<String> {
    let mut warnings = vec![];
    for cluster in &model.clusters {
        let moves = changes
            .iter()
            .any(|c| c.cluster == cluster.address && matches!(c.kind(), ActionKind::Rollout | ActionKind::Delete));
        if moves && cluster.kubernetes.is_none() {
            warnings.push(format!(
                "{} has no kubernetes block: its nodes will be terminated without draining",
                cluster.address
            ));
        }
    }
    for cluster in &model.clusters {
        let cp_moves = changes.iter().any(|c| {
            c.cluster == cluster.address
                && c.role == drydock_config::model::Role::ControlPlane
                && c.kind() == ActionKind::Rollout
        });
        if !cp_moves {
            continue;
        }
        let kubeadm = cluster.node_groups.iter().any(|ng| {
            ng.role == drydock_config::model::Role::ControlPlane
                && matches!(ng.spec.bootstrap, Some(drydock_config::model::Bootstrap::Kubeadm { .. }))
        });
        match cluster.kubernetes.as_ref().and_then(|k| k.etcd.as_ref()) {
            None if kubeadm => warnings.push(format!(
                "{} has no kubernetes.etcd block: each control-plane member replaced leaves its etcd member behind",
                cluster.address
            )),
            None => {}
            Some(_) => match kube.get(&cluster.address).and_then(|k| k.etcd.as_ref()) {
                None => warnings.push(format!(
                    "{}: etcd could not be reached at plan time; the rollout checks it again before it starts",
                    cluster.address
                )),
                Some(h) => {
                    for p in h.problems() {
                        warnings.push(format!(
                            "{}: etcd: {p}; the control-plane rollout will not start until this is fixed",
                            cluster.address
                        ));
                    }
                }
            },
        }
    }
    for c in changes.iter_mut().filter(|c| c.kind() == ActionKind::Rollout) {
        let Some(k) = kube.get(&c.cluster) else { continue };
        let etcd = k.etcd.as_ref().filter(|_| c.role == drydock_config::model::Role::ControlPlane);
        let nodes: BTreeMap<&str, &NodeInfo> =
            k.nodes.iter().filter_map(|n| n.instance_id().map(|id| (id, n))).collect();
        let mut pods_by_node: BTreeMap<&str, Vec<&PodInfo>> = BTreeMap::new();
        for p in k.pods.iter().filter(|p| p.is_drained()) {
            if let Some(n) = &p.node {
                pods_by_node.entry(n.as_str()).or_default().push(p);
            }
        }
        let mut draining_waves = 0u64;
        for w in &mut c.waves {
            let ids: Vec<String> = w.remove_first.iter().chain(&w.remove_after).cloned().collect();
            w.drains = ids
                .into_iter()
                .map(|id| {
                    let node = nodes.get(id.as_str());
                    let pods = node.and_then(|n| pods_by_node.get(n.name.as_str())).cloned().unwrap_or_default();
                    let member = etcd.zip(node).and_then(|(h, n)| h.by_name(&n.name).map(|m| (h, m)));
                    NodeDrain {
                        node: node.map(|n| n.name.clone()),
                        pods: pods.len() as u32,
                        blockers: pods.iter().flat_map(|p| blockers(p, &k.budgets)).collect(),
                        instance: id,
                        etcd: member.map(|(h, m)| EtcdRemoval {
                            member: m.member.name.clone(),
                            id: format!("{:x}", m.member.id),
                            leader: h.leader == Some(m.member.id),
                        }),
                    }
                })
                .collect();
            if w.drains.iter().any(|d| d.pods > 0) {
                draining_waves += 1;
            }
        }
        let measured = state
            .and_then(|s| s.node_group(&c.cluster, &c.address))
            .map(|ng| ng.drain_times_ms.clone())
            .unwrap_or_default();
        if !measured.is_empty() {
            let mean = measured.iter().sum::<u64>() / measured.len() as u64;
            c.eta_ms = c.eta_ms.saturating_add(draining_waves.saturating_mul(mean));
        }
    }
    warnings
}

/// What the Kubernetes API shows wrong with a node group's nodes that the cloud does not: a
/// Node not Ready, or a running instance without a Node past `health.node_startup_timeout`.
/// `drydock watch` repairs both; the plan lists them as drift.
pub fn node_drift(
    ng: &drydock_config::model::NodeGroup,
    groups: &[&drydock_provider::ObservedGroup],
    k: &KubeObserved,
    now_ms: u64,
) -> Vec<crate::Drift> {
    use drydock_provider::kube::ConditionStatus;
    use drydock_provider::InstanceState;
    let nodes: BTreeMap<&str, &NodeInfo> = k.nodes.iter().filter_map(|n| n.instance_id().map(|id| (id, n))).collect();
    let h = &ng.settings.health;
    let mut out = vec![];
    for i in groups.iter().flat_map(|g| &g.instances) {
        if !(i.state == InstanceState::Running && i.healthy) {
            continue; // the cloud's own drift covers it
        }
        let drift = |path: String, before: &str, after: String, action: String| crate::Drift {
            address: ng.address.clone(),
            path,
            before: Some(before.into()),
            after: Some(after.into()),
            sensitive: false,
            action,
        };
        match nodes.get(i.id.as_str()) {
            Some(n) => match n.ready {
                Some((ConditionStatus::True, _)) => {}
                Some((status, since)) => out.push(drift(
                    format!("nodes.{}", n.name),
                    "Ready",
                    format!("Ready={status:?} for {}", drydock_model::format_duration(now_ms.saturating_sub(since))),
                    format!(
                        "replaced by `drydock watch` once not Ready for {} (health.unhealthy_timeout)",
                        drydock_model::format_duration(h.unhealthy_timeout_ms)
                    ),
                )),
                None => {}
            },
            None if now_ms.saturating_sub(i.launched_at_ms) > h.node_startup_timeout_ms => out.push(drift(
                format!("instances.{}", i.id),
                "Node Ready",
                "no Node".into(),
                "replaced by `drydock watch` (no Ready Node within health.node_startup_timeout)".into(),
            )),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use drydock_provider::kube::{LabelSelector, Owner};

    fn pod(name: &str, owner: Option<&str>) -> PodInfo {
        PodInfo {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            node: Some("n1".into()),
            owner: owner.map(|k| Owner { kind: k.into(), name: "x".into() }),
            phase: "Running".into(),
            ready: true,
            deleting: false,
            labels: [("app".to_string(), "web".to_string())].into(),
            annotations: BTreeMap::new(),
            empty_dir: false,
            grace_period_s: Some(30),
        }
    }

    fn pdb(name: &str, allowed: i32) -> PdbInfo {
        PdbInfo {
            namespace: "default".into(),
            name: name.into(),
            selector: Some(LabelSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
                match_expressions: vec![],
            }),
            min_available: Some("5".into()),
            max_unavailable: None,
            current_healthy: 5,
            desired_healthy: 5,
            disruptions_allowed: allowed,
            expected_pods: 6,
        }
    }

    #[test]
    fn blockers_name_the_budget_and_its_numbers() {
        let b = blockers(&pod("web-1", Some("ReplicaSet")), &[pdb("web", 0)]);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, "pdb");
        assert!(b[0].detail.contains("default/web") && b[0].detail.contains("needs 5 healthy, has 5"));
        assert!(blockers(&pod("web-1", Some("ReplicaSet")), &[pdb("web", 1)]).is_empty());
        let two = blockers(&pod("web-1", Some("ReplicaSet")), &[pdb("a", 1), pdb("b", 1)]);
        assert_eq!(two[0].kind, "pdb_conflict");
        let bare = blockers(&pod("solo", None), &[]);
        assert_eq!(bare[0].kind, "no_controller");
        assert!(!bare[0].blocks);
    }
}
