//! The world's side of its real etcd members ([`SimConfig::etcd`](crate::SimConfig::etcd)):
//! what it records of each member (the reconciler in `members` starts and stops the processes
//! and says what it did through ops), which members it wants, and how a control-plane Node
//! waits for its member. Pure, as everything in the world: applying the ops never touches a
//! process, so other processes replay them safely.

use std::collections::BTreeMap;

use drydock_provider::{InstanceState, Role};
use serde::{Deserialize, Serialize};

use crate::world::World;

/// What the world knows of one instance's etcd member.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtcdRecord {
    /// The member's name: its Node's name (kubeadm's rule).
    pub name: String,
    /// etcd's member id; 0 when it never became a member.
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub client_url: String,
    #[serde(default)]
    pub peer_url: String,
    pub state: MemberState,
    /// Why it stopped, or why its join failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the state was recorded (world time).
    #[serde(default)]
    pub since_ms: u64,
}

/// Whether a member's process runs, as the reconciler last saw it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MemberState {
    /// Started and promoted; its process runs.
    Running,
    /// Its process was killed (its machine died) or exited by itself (etcd exits once removed
    /// from its cluster); it stays stopped.
    Stopped,
    /// It never joined (the error is the note); not tried again.
    Failed,
}

/// Per cluster, per instance id.
pub(crate) type EtcdRecords = BTreeMap<String, BTreeMap<String, EtcdRecord>>;

/// A member the world wants running: a control-plane instance that is running, not crashed,
/// and whose Node has registered (or that has a member already).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub cluster: String,
    pub instance: String,
    /// Its member's name (the Node's).
    pub name: String,
    /// When its Node registered: members join in that order.
    pub since_ms: u64,
}

impl World {
    /// Why a control-plane Node registering now is not Ready yet (`None`: it is), in a world
    /// with real etcd members: its member has not started (or failed to join).
    pub(crate) fn etcd_gate(&self, cluster: &str, instance: &str, role: Role) -> Option<String> {
        if !self.config.etcd || role != Role::ControlPlane {
            return None;
        }
        match self.etcd.get(cluster).and_then(|c| c.get(instance)) {
            None => Some("waiting for its etcd member to start and be promoted".to_string()),
            Some(r) if r.state == MemberState::Failed => Some(failed_message(r)),
            // A member that ran: the kubelet is Ready whatever its static pod does.
            Some(_) => None,
        }
    }

    /// The reconciler started (and promoted) the member of `instance`: recorded as running,
    /// and its Node, if it waits, is Ready.
    pub(crate) fn etcd_started(&mut self, cluster: &str, instance: &str, record: EtcdRecord) {
        self.etcd.entry(cluster.to_string()).or_default().insert(instance.to_string(), record);
        self.etcd_node_condition(instance, None);
    }

    /// The member's process no longer runs (killed, or exited by itself).
    pub(crate) fn etcd_stopped(&mut self, cluster: &str, instance: &str, reason: &str) {
        let now = self.now_ms;
        if let Some(r) = self.etcd.get_mut(cluster).and_then(|c| c.get_mut(instance)) {
            if r.state == MemberState::Running {
                r.state = MemberState::Stopped;
                r.note = Some(reason.to_string());
                r.since_ms = now;
            }
        }
    }

    /// The member of `instance` failed to join: recorded, and its Node stays NotReady saying
    /// why.
    pub(crate) fn etcd_failed(&mut self, cluster: &str, instance: &str, name: &str, error: &str) {
        let record = EtcdRecord {
            name: name.to_string(),
            member_id: 0,
            client_url: String::new(),
            peer_url: String::new(),
            state: MemberState::Failed,
            note: Some(error.to_string()),
            since_ms: self.now_ms,
        };
        let message = failed_message(&record);
        self.etcd.entry(cluster.to_string()).or_default().insert(instance.to_string(), record);
        self.etcd_node_condition(instance, Some(message));
    }

    /// The members the world wants running, in the order they join (their Nodes' registration,
    /// then cluster and name): see [`Wanted`]. Empty when the world has no etcd.
    pub(crate) fn etcd_wanted(&self) -> Vec<Wanted> {
        if !self.config.etcd {
            return Vec::new();
        }
        let mut wanted = Vec::new();
        for g in self.groups.values().filter(|g| g.spec.role == Role::ControlPlane) {
            let cluster = &g.ownership.cluster;
            for i in g.instances.values() {
                if i.instance.state != InstanceState::Running || i.failed_at_ms.is_some() {
                    continue;
                }
                let id = &i.instance.id;
                let record = self.etcd.get(cluster).and_then(|c| c.get(id));
                let node = self.kube.node_of(id);
                let (name, since_ms) = match (record, node) {
                    (_, Some(n)) => (record.map_or_else(|| n.name.clone(), |r| r.name.clone()), n.created_at_ms),
                    (Some(r), None) => (r.name.clone(), r.since_ms),
                    (None, None) => continue,
                };
                wanted.push(Wanted { cluster: cluster.clone(), instance: id.clone(), name, since_ms });
            }
        }
        wanted.sort_by(|a, b| (a.since_ms, &a.cluster, &a.name).cmp(&(b.since_ms, &b.cluster, &b.name)));
        wanted
    }

    /// Why the member of `instance` is not wanted any more, for the record.
    pub(crate) fn etcd_unwanted_reason(&self, instance: &str) -> String {
        if !self.config.etcd {
            return "killed: this world runs no etcd any more".to_string();
        }
        match self.instance_by_id(instance) {
            None => "killed: its instance is gone".to_string(),
            Some((_, i)) if i.failed_at_ms.is_some() => "killed: its instance crashed".to_string(),
            Some((_, i)) if !i.instance.is_live() => "killed: its instance was terminated".to_string(),
            Some(_) => "killed: its instance runs no control plane".to_string(),
        }
    }
}

fn failed_message(r: &EtcdRecord) -> String {
    format!("its etcd member failed to join: {}", r.note.as_deref().unwrap_or("unknown error"))
}

/// The mirror pod `kube-system/etcd-<node>` of a member's static pod, as the kubelet of a
/// control-plane Node with a member shows it through the API (not stored: derived from the
/// record and the Node whenever asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mirror {
    pub name: String,
    pub node: String,
    pub node_uid: String,
    pub node_ip: String,
    pub client_url: String,
    pub member_id: u64,
    /// Its process runs and its Node's kubelet reports.
    pub ready: bool,
    pub created_at_ms: u64,
    /// When the record last changed (the pod's readiness with it).
    pub since_ms: u64,
    pub rv: u64,
    pub labels: BTreeMap<String, String>,
}

/// The namespace of the mirror pods.
pub(crate) const MIRROR_NAMESPACE: &str = "kube-system";

impl World {
    /// The mirror pods of `cluster`'s etcd members: one per member that started, on its Node
    /// while the Node object exists.
    pub(crate) fn etcd_mirrors(&self, cluster: &str) -> Vec<Mirror> {
        let (Some(records), Some(c)) = (self.etcd.get(cluster), self.kube.clusters.get(cluster)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (instance, r) in records.iter().filter(|(_, r)| r.state != MemberState::Failed && r.member_id != 0) {
            let Some(node) = c.nodes.get(&r.name).filter(|n| n.instance.as_deref() == Some(instance.as_str())) else {
                continue;
            };
            out.push(Mirror {
                name: format!("etcd-{}", node.name),
                node: node.name.clone(),
                node_uid: node.uid.clone(),
                node_ip: node.ip.clone(),
                client_url: r.client_url.clone(),
                member_id: r.member_id,
                ready: r.state == MemberState::Running
                    && node.ready != drydock_provider::kube::ConditionStatus::Unknown,
                created_at_ms: node.created_at_ms,
                since_ms: r.since_ms,
                rv: node.rv,
                labels: BTreeMap::from([
                    ("component".to_string(), "etcd".to_string()),
                    ("tier".to_string(), "control-plane".to_string()),
                ]),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use drydock_provider::kube::ConditionStatus;
    use drydock_provider::{CreateGroup, GenerationSpec, GroupSettings, Ownership};

    use super::*;
    use crate::config::{ClockMode, SimConfig, Workload, WorkloadKind};
    use crate::world::Op;
    use crate::FailTarget;

    fn control_plane(desired: u32) -> Op {
        Op::CreateGroup(Box::new(CreateGroup {
            name: "cp".into(),
            ownership: Ownership {
                lineage: "l".into(),
                cluster: "prod".into(),
                node_group: "cp".into(),
                generation: "cp".into(),
            },
            spec: GenerationSpec {
                image: "ami-1".into(),
                instance_types: vec!["m5.large".into()],
                kubernetes_version: "1.33".into(),
                role: Role::ControlPlane,
                ..GenerationSpec::default()
            },
            settings: GroupSettings {
                min: 0,
                max: 5,
                desired,
                subnets: vec!["subnet-a".into()],
                ..GroupSettings::default()
            },
            join: None,
        }))
    }

    /// Applies `op` to the world and to a copy read back from its JSON: both the same after.
    fn step(a: &mut World, op: &Op) {
        let mut b = World::from_json(&a.to_json().unwrap()).unwrap();
        let _ = a.apply(op);
        let _ = b.apply(op);
        assert_eq!(a.to_json().unwrap(), b.to_json().unwrap(), "the worlds differ after {op:?}");
    }

    fn node_of<'a>(w: &'a World, id: &str) -> &'a crate::kube::Node {
        w.kube.node_of(id).unwrap()
    }

    #[test]
    fn a_control_plane_node_is_ready_once_its_member_runs_and_the_ops_replay_alike() {
        let agent = Workload { name: "agent".into(), kind: WorkloadKind::DaemonSet, ..Workload::default() };
        let config = SimConfig { seed: 3, etcd: true, workloads: vec![agent], ..SimConfig::default() };
        let mut w = World::new(config, ClockMode::Virtual, 0);
        step(&mut w, &control_plane(2));
        assert!(w.etcd_wanted().is_empty(), "booting, no Node yet");
        step(&mut w, &Op::Sleep { ms: 5_000 });
        let wanted = w.etcd_wanted();
        assert_eq!(wanted.len(), 2);
        let (a, b) = (wanted[0].instance.clone(), wanted[1].instance.clone());
        assert_eq!(wanted[0].name, node_of(&w, &a).name, "named after the Node");
        for id in [&a, &b] {
            let n = node_of(&w, id);
            assert_eq!(n.ready, ConditionStatus::False);
            assert!(n.not_ready.as_deref().unwrap().contains("etcd member"), "{n:?}");
        }
        // The DaemonSet's pod is bound to the waiting Node but does not start.
        step(&mut w, &Op::Sleep { ms: 5_000 });
        let agent_on = |w: &World, node: &str| {
            w.kube.clusters["prod"].pods.values().find(|p| p.node.as_deref() == Some(node)).cloned().unwrap()
        };
        let node_a = node_of(&w, &a).name.clone();
        assert!(agent_on(&w, &node_a).running_at_ms.is_none());

        let started = Op::EtcdMember {
            cluster: "prod".into(),
            instance: a.clone(),
            name: node_a.clone(),
            member_id: 0x1234,
            client_url: "http://127.0.0.1:1".into(),
            peer_url: "http://127.0.0.1:2".into(),
        };
        step(&mut w, &started);
        assert_eq!(node_of(&w, &a).ready, ConditionStatus::True);
        assert_eq!(node_of(&w, &a).not_ready, None);
        step(&mut w, &Op::Sleep { ms: 2_000 });
        assert!(agent_on(&w, &node_a).running_at_ms.is_some(), "its pods start once it is Ready");
        let mirrors = w.etcd_mirrors("prod");
        assert_eq!(mirrors.len(), 1);
        assert_eq!((mirrors[0].name.as_str(), mirrors[0].ready), (format!("etcd-{node_a}").as_str(), true));

        let failed = Op::EtcdFailed {
            cluster: "prod".into(),
            instance: b.clone(),
            name: node_of(&w, &b).name.clone(),
            error: "etcd is not installed".into(),
        };
        step(&mut w, &failed);
        let n = node_of(&w, &b);
        assert_eq!(n.ready, ConditionStatus::False);
        assert_eq!(n.not_ready.as_deref(), Some("its etcd member failed to join: etcd is not installed"));
        assert!(w.etcd_mirrors("prod").iter().all(|m| m.node != n.name), "no member, no mirror pod");

        // The machine crashes: no longer wanted; the reconciler's stop is recorded.
        step(&mut w, &Op::Fail(FailTarget::Instance(a.clone())));
        assert!(w.etcd_wanted().iter().all(|x| x.instance != a));
        assert_eq!(w.etcd_unwanted_reason(&a), "killed: its instance crashed");
        step(&mut w, &Op::EtcdStopped { cluster: "prod".into(), instance: a.clone(), reason: "killed".into() });
        let r = &w.etcd["prod"][&a];
        assert_eq!((r.state, r.note.as_deref()), (MemberState::Stopped, Some("killed")));
        assert!(!w.etcd_mirrors("prod")[0].ready);
    }

    #[test]
    fn without_etcd_nothing_waits_and_turning_it_off_releases_waiting_nodes() {
        let mut w = World::new(SimConfig { etcd: false, ..SimConfig::default() }, ClockMode::Virtual, 0);
        step(&mut w, &control_plane(1));
        step(&mut w, &Op::Sleep { ms: 5_000 });
        assert!(w.etcd_wanted().is_empty());
        assert!(w.kube.clusters["prod"].nodes.values().all(|n| n.ready == ConditionStatus::True));

        let mut w = World::new(SimConfig { etcd: true, ..SimConfig::default() }, ClockMode::Virtual, 0);
        step(&mut w, &control_plane(1));
        step(&mut w, &Op::Sleep { ms: 5_000 });
        assert!(w.kube.clusters["prod"].nodes.values().all(|n| n.ready == ConditionStatus::False));
        let off = Op::Configure {
            config: SimConfig { etcd: false, ..SimConfig::default() },
            clock: ClockMode::Virtual,
            wall_ms: None,
        };
        step(&mut w, &off);
        assert!(w.kube.clusters["prod"].nodes.values().all(|n| n.ready == ConditionStatus::True));
    }
}
