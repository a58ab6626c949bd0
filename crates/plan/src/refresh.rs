//! `plan --refresh-only` / `apply --refresh-only`: what the cloud has, written into the state
//! without changing the cloud (as Terraform's refresh-only mode).
//!
//! The state records, per node group, the settings last applied and the groups of each
//! generation. A refresh takes both from the cloud: a group deleted outside drydock leaves
//! the state (a node group with none left leaves it entirely, so the next plan creates it), and
//! a worker group's sizes, subnets, health check, grace period and tags become what its
//! group has. What the state has no place for is shown and not recorded: instances'
//! health, Nodes, a control-plane member's size and subnet (drydock's own, one per member),
//! and node groups an earlier apply left half-way (the next `drydock apply` finishes them).
//! Groups the state does not record are not adopted: the next plan deletes or adopts them
//! as usual.
//!
//! Invariant: pure, like the planner: state and observations in, state and records out.

use std::collections::{BTreeMap, BTreeSet};

use drydock_config::model::{HealthCheck, Model, Role};
use drydock_provider::{HealthCheck as PHealth, Observed, ObservedGroup};
use drydock_state::State;

use crate::Drift;

/// The state after a refresh, and what it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub state: State,
    /// `(node group address, attribute path)` of each difference written into the state,
    /// with the paths [`Drift::path`] uses (`min`, `tags.team`, `groups.NAME`).
    pub recorded: BTreeSet<(String, String)>,
    /// Differences written into the state that a plan's drift does not list (node groups the
    /// configuration no longer has): shown by `plan --refresh-only` all the same.
    pub extra: Vec<Drift>,
}

impl Refreshed {
    /// Whether the refresh changes nothing in the state.
    pub fn is_empty(&self) -> bool {
        self.recorded.is_empty()
    }
}

/// The words a refresh-only plan gives a drift it records.
pub const RECORDED: &str = "recorded in the state (refresh-only: the cloud is not changed)";

/// Refreshes `state` from `observed` (by provider). Node groups a journal entry or an
/// unfinished apply names are left as they are. `model` supplies which attributes are
/// sensitive, for the records of node groups it has.
pub fn refresh(state: &State, model: &Model, observed: &BTreeMap<String, Observed>) -> Refreshed {
    let mut out = state.clone();
    let mut recorded = BTreeSet::new();
    let mut extra = vec![];
    for (caddr, cs) in &state.clusters {
        let groups: Vec<&ObservedGroup> =
            observed.get(&cs.provider).map(|o| o.groups.iter().collect()).unwrap_or_default();
        let configured: BTreeSet<&str> = model
            .clusters
            .iter()
            .filter(|c| &c.address == caddr)
            .flat_map(|c| c.node_groups.iter().map(|n| n.address.as_str()))
            .collect();
        for (addr, sn) in &cs.node_groups {
            if sn.unfinished || state.journal.iter().any(|j| &j.address == addr) {
                continue;
            }
            let (oc, og) = crate::state_owner(caddr, addr, sn);
            let mine: Vec<&ObservedGroup> = groups
                .iter()
                .copied()
                .filter(|g| {
                    g.ownership.lineage == state.lineage && g.ownership.cluster == oc && g.ownership.node_group == og
                })
                .collect();
            let Some(new) = out.clusters.get_mut(caddr).and_then(|c| c.node_groups.get_mut(addr)) else { continue };
            let mut record = |path: String, before: serde_json::Value, after: serde_json::Value| {
                if !configured.contains(addr.as_str()) {
                    extra.push(Drift {
                        address: addr.clone(),
                        path: path.clone(),
                        before: Some(before),
                        after: Some(after),
                        sensitive: false,
                        action: RECORDED.into(),
                    });
                }
                recorded.insert((addr.clone(), path));
            };
            // Groups gone from the cloud leave the state.
            for gen in &mut new.generations {
                gen.groups.retain(|name| {
                    let found = mine.iter().any(|g| &g.name == name);
                    if !found {
                        record(format!("groups.{name}"), "exists".into(), "missing (deleted outside drydock)".into());
                    }
                    found
                });
            }
            new.generations.retain(|g| !g.groups.is_empty());
            // A node group the configuration no longer has goes with the next apply: only
            // its groups are refreshed.
            if !configured.contains(addr.as_str()) {
                continue;
            }
            // The settings, from the current generation's groups.
            let Some(current) = new.current() else { continue };
            let live: Vec<&ObservedGroup> =
                current.groups.iter().filter_map(|name| mine.iter().copied().find(|g| &g.name == name)).collect();
            let Some(first) = live.first() else { continue };
            let o = &first.settings;
            // Sensitive tags are recorded as digests: a cloud value with the same digest is the
            // value recorded.
            let applied = drydock_state::reveal_tags(&new.settings, live.iter().map(|g| &g.settings.tags));
            let s = &mut new.settings;
            if sn.role != Role::ControlPlane {
                if o.min != applied.min {
                    s.min = o.min;
                    record("min".into(), applied.min.into(), o.min.into());
                }
                if o.max != applied.max {
                    s.max = o.max;
                    record("max".into(), applied.max.into(), o.max.into());
                }
                // A desired capacity is recorded only where drydock pins one: otherwise it is
                // the autoscaler's.
                if let Some(d) = applied.desired.filter(|d| *d != o.desired) {
                    s.desired = Some(o.desired);
                    record("desired".into(), d.into(), o.desired.into());
                }
                if o.subnets != applied.subnets {
                    s.subnets = o.subnets.clone();
                    record("subnets".into(), applied.subnets.clone().into(), o.subnets.clone().into());
                }
            }
            let check = match o.health_check {
                PHealth::Ec2 => HealthCheck::Ec2,
                PHealth::Elb => HealthCheck::Elb,
            };
            if check != applied.health.check {
                s.health.check = check;
                let word = |c: HealthCheck| format!("{c:?}").to_lowercase();
                record("health.check".into(), word(applied.health.check).into(), word(check).into());
            }
            if o.grace_period_ms != applied.health.grace_period_ms {
                s.health.grace_period_ms = o.grace_period_ms;
                let d = drydock_config::value::format_duration;
                record(
                    "health.grace_period".into(),
                    d(applied.health.grace_period_ms).into(),
                    d(o.grace_period_ms).into(),
                );
            }
            let theirs: BTreeMap<String, String> = o
                .tags
                .iter()
                .filter(|(k, _)| !drydock_provider::is_provider_managed_tag(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ours: BTreeMap<String, String> = applied
                .tags
                .iter()
                .filter(|(k, _)| !drydock_provider::is_provider_managed_tag(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if theirs != ours {
                for k in ours.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
                    let (a, b) = (ours.get(k), theirs.get(k));
                    if a != b {
                        record(
                            format!("tags.{k}"),
                            a.cloned().unwrap_or_else(|| "(absent)".into()).into(),
                            b.cloned().unwrap_or_else(|| "(removed)".into()).into(),
                        );
                    }
                }
                // Provider-managed tags the state recorded stay as they were.
                s.tags.retain(|k, _| drydock_provider::is_provider_managed_tag(k));
                s.tags.extend(theirs);
            }
        }
        // Node groups with no group left leave the state: the next plan creates them.
        if let Some(c) = out.clusters.get_mut(caddr) {
            c.node_groups.retain(|addr, ng| {
                let gone = ng.generations.is_empty()
                    && cs.node_groups.get(addr).is_some_and(|before| !before.generations.is_empty());
                !gone
            });
        }
    }
    Refreshed { state: out, recorded, extra }
}
