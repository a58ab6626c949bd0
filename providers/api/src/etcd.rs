//! etcd, as a control-plane rollout of a self-managed (kubeadm, stacked etcd) cluster needs it:
//! its members, their health, the leader and the alarms, and the two writes a rollout makes
//! (move leadership off a member, remove a member). `crates/etcd` implements [`Etcd`] over
//! etcd's v3 JSON gateway, for real clusters and the simulated cloud's real etcd members alike.
//!
//! The rules that decide whether a member may go ([`EtcdHealth::check_remove`]) are here, pure,
//! so that the planner, the executor and `watch` apply the same ones: Cluster API's
//! KubeadmControlPlane rules (every member started, no learner, no alarm, the others healthy,
//! quorum kept without the member, never the last member).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ProviderError;

/// The annotation kubeadm puts on each etcd static pod (`kube-system/etcd-<node>`): the
/// member's client URLs, which is how drydock finds etcd through the Kubernetes API.
pub const ETCD_CLIENT_URLS_ANNOTATION: &str = "kubeadm.kubernetes.io/etcd.advertise-client-urls";

/// One member of the etcd cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EtcdMember {
    pub id: u64,
    /// kubeadm names a member after its Node. Empty while the member was added but has not
    /// started (its process never reached the cluster).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// A non-voting member that has not been promoted yet.
    pub learner: bool,
}

impl EtcdMember {
    /// Whether the member's process has started and joined (etcd reports a name and client
    /// URLs only then).
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }

    /// The member as messages name it: its name, or its peer URL before it started.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("unstarted member {:x} ({})", self.id, self.peer_urls.join(","))
        } else {
            format!("etcd member {}", self.name)
        }
    }
}

/// A member and whether it answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemberHealth {
    pub member: EtcdMember,
    /// It answered a status request at one of its client URLs, without errors.
    pub healthy: bool,
    /// Why it is not healthy, in etcd's or the network's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An alarm raised on a member (`NOSPACE`, `CORRUPT`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EtcdAlarm {
    pub member_id: u64,
    pub alarm: String,
}

/// The etcd cluster as one look shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct EtcdHealth {
    pub members: Vec<MemberHealth>,
    /// The leader's member id, as a healthy member reports it.
    pub leader: Option<u64>,
    pub alarms: Vec<EtcdAlarm>,
}

impl EtcdHealth {
    /// The member of that name (kubeadm: the Node's name).
    pub fn by_name(&self, name: &str) -> Option<&MemberHealth> {
        self.members.iter().find(|m| m.member.name == name)
    }

    /// Voting members (learners do not vote).
    pub fn voting(&self) -> usize {
        self.members.iter().filter(|m| !m.member.learner).count()
    }

    /// Voting members that answer.
    pub fn healthy_voting(&self) -> usize {
        self.members.iter().filter(|m| !m.member.learner && m.healthy).count()
    }

    /// What is wrong with the cluster as a whole, one line each: unstarted or unpromoted
    /// members, alarms, members that do not answer, a lost quorum. Empty: healthy.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.members {
            if !m.member.started() {
                out.push(format!("{} was added but never started", m.member.label()));
            } else if m.member.learner {
                out.push(format!("{} is a learner that has not been promoted", m.member.label()));
            }
            if m.member.started() && !m.healthy {
                let why = m.error.as_deref().unwrap_or("it does not answer");
                out.push(format!("{} is not healthy: {why}", m.member.label()));
            }
        }
        for a in &self.alarms {
            let who = self
                .members
                .iter()
                .find(|m| m.member.id == a.member_id)
                .map_or_else(|| format!("member {:x}", a.member_id), |m| m.member.label());
            out.push(format!("alarm {} is raised on {who}", a.alarm));
        }
        let voting = self.voting();
        if voting > 0 && self.healthy_voting() < voting / 2 + 1 {
            out.push(format!(
                "quorum is lost: {} of {voting} voting members are healthy, {} are needed",
                self.healthy_voting(),
                voting / 2 + 1
            ));
        }
        out
    }

    /// Whether the member `id` may be removed now, and if not why (Cluster API's rules): no
    /// alarm, every member started and promoted, every other member healthy, quorum kept
    /// without it, and never the last voting member. A member not in the list may "be removed"
    /// (it is gone already).
    pub fn check_remove(&self, id: u64) -> Result<(), String> {
        let Some(target) = self.members.iter().find(|m| m.member.id == id) else { return Ok(()) };
        if self.members.len() == 1 {
            return Err(format!("{} is the last member of etcd; it is never removed", target.member.label()));
        }
        let mut problems: Vec<String> = Vec::new();
        for a in &self.alarms {
            problems.push(format!("alarm {} is raised on member {:x}", a.alarm, a.member_id));
        }
        for m in self.members.iter().filter(|m| m.member.id != id) {
            if !m.member.started() {
                problems.push(format!("{} was added but never started", m.member.label()));
            } else if m.member.learner {
                problems.push(format!("{} is a learner that has not been promoted", m.member.label()));
            } else if !m.healthy {
                let why = m.error.as_deref().unwrap_or("it does not answer");
                problems.push(format!("{} is not healthy: {why}", m.member.label()));
            }
        }
        let voting_after = self.voting() - usize::from(!target.member.learner);
        let healthy_after = self.members.iter().filter(|m| m.member.id != id && !m.member.learner && m.healthy).count();
        if voting_after == 0 {
            problems.push(format!("{} is the last voting member of etcd", target.member.label()));
        } else if healthy_after < voting_after / 2 + 1 {
            problems.push(format!(
                "without {} only {healthy_after} of {voting_after} voting members would be healthy, {} are needed for \
                 quorum",
                target.member.label(),
                voting_after / 2 + 1
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The healthy voting member other than `not` that leadership moves to: the one with the
    /// highest id among those started last is not knowable here, so the first by name (stable).
    pub fn leadership_candidate(&self, not: u64) -> Option<u64> {
        let mut c: Vec<&MemberHealth> =
            self.members.iter().filter(|m| m.member.id != not && !m.member.learner && m.healthy).collect();
        c.sort_by(|a, b| a.member.name.cmp(&b.member.name));
        c.first().map(|m| m.member.id)
    }
}

/// An etcd cluster, as a control-plane rollout and `watch` use it.
#[async_trait]
pub trait Etcd: Send + Sync {
    /// Where it is reached, for messages.
    fn describe(&self) -> String;

    /// The members, whether each answers, the leader and the alarms. An error only when no
    /// member answers at all.
    async fn health(&self) -> Result<EtcdHealth, ProviderError>;

    /// Moves leadership to the member `to` (sent to the current leader, as etcd requires).
    async fn move_leader(&self, to: u64) -> Result<(), ProviderError>;

    /// Removes the member `id`; `Ok(false)` when it was not a member when the call began
    /// (already removed: a retry).
    async fn remove_member(&self, id: u64) -> Result<bool, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, learner: bool, healthy: bool) -> MemberHealth {
        MemberHealth {
            member: EtcdMember {
                id,
                name: name.into(),
                peer_urls: vec![format!("https://10.0.0.{id}:2380")],
                client_urls: if name.is_empty() { vec![] } else { vec![format!("https://10.0.0.{id}:2379")] },
                learner,
            },
            healthy,
            error: (!healthy).then(|| "connection refused".into()),
        }
    }

    fn cluster(members: Vec<MemberHealth>) -> EtcdHealth {
        EtcdHealth { leader: members.first().map(|m| m.member.id), members, alarms: vec![] }
    }

    #[test]
    fn a_member_of_a_healthy_four_may_go() {
        let h = cluster(vec![
            member(1, "a", false, true),
            member(2, "b", false, true),
            member(3, "c", false, true),
            member(4, "d", false, true),
        ]);
        assert_eq!(h.check_remove(1), Ok(()));
        assert!(h.problems().is_empty());
        assert_eq!(h.check_remove(99), Ok(()), "a member already gone");
    }

    #[test]
    fn a_dead_other_member_or_a_learner_or_an_alarm_blocks() {
        let h = cluster(vec![member(1, "a", false, true), member(2, "b", false, false), member(3, "c", false, true)]);
        let e = h.check_remove(1).unwrap_err();
        assert!(e.contains("etcd member b is not healthy"), "{e}");
        // removing the dead member itself is fine: 2 of 2 remain healthy
        assert_eq!(h.check_remove(2), Ok(()));

        let h = cluster(vec![member(1, "a", false, true), member(2, "b", false, true), member(3, "c", true, true)]);
        assert!(h.check_remove(1).unwrap_err().contains("learner"));
        let h = cluster(vec![member(1, "a", false, true), member(2, "b", false, true), member(3, "", false, false)]);
        assert!(h.check_remove(1).unwrap_err().contains("never started"));
        assert!(h.problems().iter().any(|p| p.contains("never started")));

        let mut h =
            cluster(vec![member(1, "a", false, true), member(2, "b", false, true), member(3, "c", false, true)]);
        h.alarms.push(EtcdAlarm { member_id: 2, alarm: "NOSPACE".into() });
        assert!(h.check_remove(1).unwrap_err().contains("NOSPACE"));
    }

    #[test]
    fn the_last_member_is_never_removed_and_quorum_is_kept() {
        let h = cluster(vec![member(1, "a", false, true)]);
        assert!(h.check_remove(1).unwrap_err().contains("last member"));
        let h = cluster(vec![member(1, "a", false, true), member(2, "b", false, true)]);
        assert_eq!(h.check_remove(1), Ok(()), "2 → 1 keeps a quorum of 1");
        let h = cluster(vec![member(1, "a", false, false), member(2, "b", false, false), member(3, "c", false, true)]);
        assert!(h.problems().iter().any(|p| p.contains("quorum is lost")));
        assert_eq!(h.leadership_candidate(1), Some(3));
    }
}
