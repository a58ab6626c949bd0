//! Watch's decisions, as a pure function: from a plan (which reports drift), the applied
//! state, the observed cloud and the safety guards to the repairs to make and the events to
//! report, as data. `drydock watch` loads, observes and plans, calls [`decide`], acts on
//! what it returns through the executor and prints the events; this module does no I/O and
//! reads no clock, so every rule is unit-tested (`tests/watch.rs`).
//!
//! The rules: a repair only restores what was applied (never a rollout nobody applied); an
//! instance is replaced when it has been unhealthy for `health.unhealthy_timeout` (counted
//! from its first sighting, which the caller keeps across rounds and runs) or pending longer
//! than `health.startup_timeout`; never when more of its group is unhealthy than
//! `health.max_unhealthy` (the storm guard: a bad image or a lost zone is not fixed by killing
//! more nodes); a control plane only while a majority of its members is healthy, one member
//! at a time; and never more nodes of a cluster in replacement at once than its
//! `disruption_budget`, counting nodes still booting.
//!
//! In a cluster with a Kubernetes API, what counts is the Node too, as Cluster API's
//! MachineHealthCheck judges it: a running instance whose Node is Ready False or Unknown
//! (since its `lastTransitionTime`) for `health.unhealthy_timeout` is unhealthy — the case the
//! cloud's health check misses, a dead kubelet on a live machine — and so is one whose Node
//! never became Ready (or is gone) `health.node_startup_timeout` after launch. Such nodes
//! count for the storm guard like any other unhealthy node, so a zone gone NotReady is not
//! "repaired" by killing it.

use std::collections::{BTreeMap, BTreeSet};

use drydock_model::{IntOrPercent, Role};
use drydock_plan::{ActionKind, Change, Plan, Reason};
use drydock_provider::etcd::EtcdHealth;
use drydock_provider::kube::{ConditionStatus, NodeInfo};
use drydock_provider::{Instance, InstanceState, Observed, ObservedGroup};
use drydock_state::State;

/// The disruption budget of a cluster the configuration does not name (any more).
pub const DEFAULT_DISRUPTION_BUDGET: IntOrPercent = IntOrPercent::Percent(10.0);
/// The startup window of a node group the state does not know.
const DEFAULT_STARTUP_MS: u64 = 600_000;

/// What a round decides from.
pub struct Input<'a> {
    pub plan: &'a Plan,
    pub state: &'a State,
    /// What each provider (by reference) holds of the state's lineage, observed now.
    pub observed: &'a BTreeMap<String, Observed>,
    /// Each configured cluster's `disruption_budget`, by cluster address.
    pub disruption_budgets: &'a BTreeMap<String, IntOrPercent>,
    /// The time on the provider's clock.
    pub now_ms: u64,
    /// When each instance was first seen unhealthy (by id), from earlier rounds.
    pub unhealthy_since: &'a BTreeMap<String, u64>,
    /// Per cluster address, its Nodes (clusters with a Kubernetes API only).
    pub nodes: &'a BTreeMap<String, Vec<NodeInfo>>,
    /// Per cluster address, its control plane's etcd (clusters with a `kubernetes.etcd` block).
    pub etcd: &'a BTreeMap<String, EtcdHealth>,
}

/// What a round decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decisions {
    /// Changes of the plan that restore the applied state, for the executor.
    pub repairs: Vec<Change>,
    /// Instances to replace, in order.
    pub replacements: Vec<Replacement>,
    /// What was detected and what was skipped, and why, in the order decided.
    pub events: Vec<Event>,
    /// When each instance still unhealthy was first seen so (instances healthy again or gone
    /// are dropped): the caller keeps it for the next round.
    pub unhealthy_since: BTreeMap<String, u64>,
    /// etcd members whose machine is gone, to remove.
    pub etcd_cleanups: Vec<EtcdCleanup>,
}

/// An etcd member to remove because its machine is gone (a crashed control-plane instance the
/// cloud replaced): left in place, it counts against quorum forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdCleanup {
    pub cluster: String,
    pub id: u64,
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The provider reference.
    pub provider: String,
    /// The cluster's address (its Kubernetes API drains the node first).
    pub cluster: String,
    /// How the node is drained (the node group's applied `drain` settings).
    pub drain: drydock_model::Drain,
    /// The node group's address.
    pub address: String,
    /// The autoscaling group the instance is in.
    pub group: String,
    pub id: String,
    pub why: String,
}

/// The kinds of events watch reports (the `event` field of its JSON lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Drift found in the cloud.
    Detected,
    /// Something that would be repaired is not, with the reason.
    Skipped,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Detected => "detected",
            EventKind::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub address: String,
    pub message: String,
    pub why: Option<String>,
}

fn event(kind: EventKind, address: &str, message: String, why: &str) -> Event {
    Event { kind, address: address.to_string(), message, why: Some(why.to_string()) }
}

/// Decides a round. See the module docs for the rules.
pub fn decide(input: &Input<'_>) -> Decisions {
    let mut events = vec![];
    for d in &input.plan.drift {
        // A drift's strings as they are; never a sensitive value.
        let side = |v: &Option<serde_json::Value>| match v {
            Some(_) if d.sensitive => "(sensitive)".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "null".to_string(),
        };
        let message = format!("{} = {} -> {}", d.path, side(&d.before), side(&d.after));
        events.push(event(EventKind::Detected, &d.address, message, &d.action));
    }
    let repairs = choose_repairs(input.plan, input.state, &mut events);
    let (replacements, unhealthy_since) = choose_replacements(input, &mut events);
    let etcd_cleanups = choose_etcd_cleanups(input, &mut events);
    Decisions { repairs, replacements, events, unhealthy_since, etcd_cleanups }
}

/// etcd members to remove, as Cluster API's KubeadmControlPlane removes members that have no
/// machine: a member that does not answer and whose Node's instance is gone (or that has no
/// Node at all) — but not while a control-plane instance of its cluster is still joining (its
/// member may be the one that looks unknown), and only when the removal rules allow it. Members
/// added but never started, learners never promoted, alarms and lost quorum are reported.
fn choose_etcd_cleanups(input: &Input<'_>, events: &mut Vec<Event>) -> Vec<EtcdCleanup> {
    let mut out = vec![];
    for (caddr, health) in input.etcd {
        let Some(cs) = input.state.clusters.get(caddr) else { continue };
        let Some(obs) = input.observed.get(&cs.provider) else { continue };
        let owner = caddr.strip_prefix("cluster.").unwrap_or(caddr);
        let cp: Vec<&Instance> = obs
            .groups
            .iter()
            .filter(|g| g.ownership.cluster == owner && g.spec.role == drydock_provider::Role::ControlPlane)
            .flat_map(|g| g.instances.iter().filter(|i| i.is_live()))
            .collect();
        let nodes: BTreeMap<&str, &NodeInfo> =
            input.nodes.get(caddr).map(|ns| ns.iter().map(|n| (n.name.as_str(), n)).collect()).unwrap_or_default();
        let node_of_instance: BTreeSet<&str> =
            input.nodes.get(caddr).into_iter().flatten().filter_map(|n| n.instance_id()).collect();
        // A control-plane instance without a Ready Node is still joining: its member may be new.
        let joining = cp.iter().any(|i| {
            i.state == InstanceState::Pending
                || !node_of_instance.contains(i.id.as_str())
                || input.nodes.get(caddr).into_iter().flatten().any(|n| {
                    n.instance_id() == Some(i.id.as_str()) && !matches!(n.ready, Some((ConditionStatus::True, _)))
                })
        });
        for p in health.problems() {
            if !p.contains("is not healthy") {
                events.push(event(
                    EventKind::Detected,
                    caddr,
                    format!("etcd: {p}"),
                    "reported: drydock does not change it",
                ));
            }
        }
        for m in &health.members {
            if !m.member.started() || m.healthy {
                continue;
            }
            let node = nodes.get(m.member.name.as_str());
            let machine_live = node.and_then(|n| n.instance_id()).is_some_and(|id| cp.iter().any(|i| i.id == id));
            if machine_live {
                events.push(event(
                    EventKind::Detected,
                    caddr,
                    format!("etcd member {} does not answer", m.member.name),
                    "its machine runs: node repair replaces it if its Node stays unhealthy",
                ));
                continue;
            }
            let why = match node {
                Some(_) => format!("etcd member {} does not answer and its instance is gone", m.member.name),
                None => format!("etcd member {} does not answer and has no Node", m.member.name),
            };
            if joining {
                events.push(event(
                    EventKind::Skipped,
                    caddr,
                    why,
                    "a control-plane instance is still joining: its member is removed once the new one is Ready",
                ));
                continue;
            }
            if let Err(reason) = health.check_remove(m.member.id) {
                events.push(event(EventKind::Skipped, caddr, why, &reason));
                continue;
            }
            out.push(EtcdCleanup { cluster: caddr.clone(), id: m.member.id, name: m.member.name.clone(), why });
        }
    }
    out
}

/// The plan's changes that restore the applied state; the rest are skipped with the reason.
fn choose_repairs(plan: &Plan, state: &State, events: &mut Vec<Event>) -> Vec<Change> {
    let mut out = vec![];
    for c in &plan.changes {
        let sn = state.node_group(&c.cluster, &c.address);
        let applied_gen = sn.and_then(|n| n.current()).map(|g| g.id.as_str());
        let target_gen = c.target().map(|t| t.generation.as_str());
        let config_changed = c.reasons.iter().any(|r| r.reason == Reason::Configuration && !r.forces_replacement);
        // A create lists every attribute of the spec; what matters is that it recreates the
        // applied generation with the applied settings.
        let same_as_applied = sn.is_some_and(|n| c.target().is_some_and(|t| t.settings == n.settings));
        let restores = match c.kind() {
            ActionKind::Create | ActionKind::Resume => applied_gen == target_gen && same_as_applied,
            ActionKind::Update => !config_changed,
            ActionKind::Rollout => sn.is_some_and(|n| n.unfinished) && applied_gen == target_gen,
            ActionKind::Delete => false,
        };
        if restores {
            out.push(c.clone());
        } else {
            events.push(event(
                EventKind::Skipped,
                &c.address,
                format!("{:?} not done", c.kind()).to_lowercase(),
                "the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`",
            ));
        }
    }
    out
}

/// Instances to replace, after the storm guard, the quorum rule and the disruption budget;
/// and the updated record of when instances were first seen unhealthy.
fn choose_replacements(input: &Input<'_>, events: &mut Vec<Event>) -> (Vec<Replacement>, BTreeMap<String, u64>) {
    let now = input.now_ms;
    let mut since = input.unhealthy_since.clone();
    let mut out = vec![];
    let mut still_unhealthy = BTreeSet::new();
    for (caddr, cs) in &input.state.clusters {
        let Some(obs) = input.observed.get(&cs.provider) else { continue };
        let cluster_groups: BTreeSet<&str> = cs
            .node_groups
            .values()
            .filter_map(|n| n.current())
            .flat_map(|g| g.groups.iter().map(String::as_str))
            .collect();
        let in_cluster = |g: &&ObservedGroup| cluster_groups.contains(g.name.as_str());
        let live: Vec<&Instance> =
            obs.groups.iter().filter(in_cluster).flat_map(|g| g.instances.iter().filter(|i| i.is_live())).collect();
        let budget_setting = input.disruption_budgets.get(caddr).copied().unwrap_or(DEFAULT_DISRUPTION_BUDGET);
        let budget = budget_setting.resolve(live.len() as u32, false).max(1) as usize;
        // Nodes booting within their startup window count against the budget; nodes stuck
        // pending past it are what remediation replaces, so they do not.
        let startup =
            |addr: &str| cs.node_groups.get(addr).map_or(DEFAULT_STARTUP_MS, |n| n.settings.health.startup_timeout_ms);
        let mut in_progress = obs
            .groups
            .iter()
            .filter(in_cluster)
            .flat_map(|g| {
                let addr = format!("cluster.{}.node_group.{}", g.ownership.cluster, g.ownership.node_group);
                let window = startup(&addr);
                g.instances.iter().filter(move |i| {
                    i.state == InstanceState::Pending && now.saturating_sub(i.launched_at_ms) <= window
                })
            })
            .count();
        let nodes: Option<BTreeMap<&str, &NodeInfo>> =
            input.nodes.get(caddr).map(|ns| ns.iter().filter_map(|n| n.instance_id().map(|id| (id, n))).collect());
        for (addr, ng) in &cs.node_groups {
            let Some(current) = ng.current() else { continue };
            let groups: Vec<&ObservedGroup> = obs.groups.iter().filter(|g| current.groups.contains(&g.name)).collect();
            let h = &ng.settings.health;
            let desired: u32 = groups.iter().map(|g| g.settings.desired).sum();
            let mut overdue: Vec<(String, String, String)> = vec![];
            let mut unhealthy = 0u32;
            let mut healthy = 0u32;
            for g in &groups {
                for i in g.instances.iter().filter(|i| i.is_live()) {
                    // What the Node says of a machine the cloud finds healthy.
                    let node_problem = match (&nodes, i.state) {
                        (Some(nodes), InstanceState::Running) if i.healthy => {
                            node_health(nodes.get(i.id.as_str()).copied(), i, now, h)
                        }
                        _ => None,
                    };
                    if let Some((overdue_now, why)) = node_problem {
                        unhealthy += 1;
                        still_unhealthy.insert(i.id.clone());
                        since.entry(i.id.clone()).or_insert(now);
                        if overdue_now {
                            overdue.push((g.name.clone(), i.id.clone(), why));
                        }
                        continue;
                    }
                    match i.state {
                        InstanceState::Running if i.healthy => healthy += 1,
                        InstanceState::Running => {
                            unhealthy += 1;
                            still_unhealthy.insert(i.id.clone());
                            let first = *since.entry(i.id.clone()).or_insert(now);
                            if now.saturating_sub(first) >= h.unhealthy_timeout_ms {
                                overdue.push((g.name.clone(), i.id.clone(), "unhealthy too long".into()));
                            }
                        }
                        InstanceState::Pending if now.saturating_sub(i.launched_at_ms) > h.startup_timeout_ms => {
                            unhealthy += 1;
                            overdue.push((g.name.clone(), i.id.clone(), "pending longer than startup_timeout".into()));
                        }
                        _ => {}
                    }
                }
            }
            if overdue.is_empty() {
                continue;
            }
            let max_unhealthy = h.max_unhealthy.resolve(desired, false);
            if unhealthy > max_unhealthy {
                events.push(event(
                    EventKind::Skipped,
                    addr,
                    format!("storm guard: {unhealthy} of {desired} nodes unhealthy, more than max_unhealthy ({max_unhealthy})"),
                    "not replacing: a bad image or a lost zone is not fixed by killing more nodes",
                ));
                continue;
            }
            if ng.role == Role::ControlPlane {
                let majority = desired / 2 + 1;
                if healthy < majority {
                    events.push(event(
                        EventKind::Skipped,
                        addr,
                        format!("quorum: {healthy} of {desired} members healthy, fewer than a majority ({majority})"),
                        "not remediating a control plane without quorum automatically",
                    ));
                    continue;
                }
                // One member at a time.
                overdue.truncate(1);
            }
            for (group, id, why) in overdue {
                if in_progress >= budget {
                    events.push(event(
                        EventKind::Skipped,
                        addr,
                        format!("{id}: the cluster's disruption budget ({budget} at once) is in use"),
                        "replaced in a later round",
                    ));
                    continue;
                }
                in_progress += 1;
                out.push(Replacement {
                    provider: cs.provider.clone(),
                    cluster: caddr.clone(),
                    drain: ng.settings.drain.clone(),
                    address: addr.clone(),
                    group,
                    id,
                    why,
                });
            }
        }
    }
    since.retain(|id, _| still_unhealthy.contains(id));
    (out, since)
}

/// Whether a running, cloud-healthy instance is unhealthy by its Node, and if so whether it has
/// been so long enough to be replaced, and why (naming the Node).
fn node_health(node: Option<&NodeInfo>, i: &Instance, now: u64, h: &drydock_model::Health) -> Option<(bool, String)> {
    let age = now.saturating_sub(i.launched_at_ms);
    match node {
        None => Some((age >= h.node_startup_timeout_ms, "no Node (never registered, or deleted)".into())),
        Some(n) => match n.ready {
            Some((ConditionStatus::True, _)) => None,
            Some((status, since)) if n.created_at_ms <= since && was_ready(n) => Some((
                now.saturating_sub(since) >= h.unhealthy_timeout_ms,
                format!("Node {} Ready={status:?} too long", n.name),
            )),
            _ => Some((
                age >= h.node_startup_timeout_ms,
                format!("Node {} not Ready within node_startup_timeout", n.name),
            )),
        },
    }
}

/// Whether a Node that is not Ready now was Ready before: its condition changed after it
/// registered (a node that never became Ready keeps the condition it registered with).
fn was_ready(n: &NodeInfo) -> bool {
    n.ready.is_some_and(|(_, since)| since > n.created_at_ms)
}
