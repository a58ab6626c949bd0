//! `drydock import`: a state takes over the node groups that run under another lineage —
//! the groups of a lost state file, or of the state another one was pushed over — without a
//! cloud call that changes anything and without replacing a node.
//!
//! A lineage is adopted whole: the state takes its id (the groups' names and ownership tags
//! carry it, so no group is renamed or re-tagged), which is why a state that already manages
//! node groups of its own cannot adopt another. Each configured node group whose groups run
//! under that lineage gets them recorded as its generations (oldest first), its settings taken
//! from its groups as a refresh takes them ([`crate::refresh`]). Groups of the lineage that no
//! configured node group owns are listed: the next plan deletes them unless they are
//! configured.
//!
//! Invariant: pure; the same state, model and observation give the same state.

use std::collections::BTreeMap;

use drydock_config::model::Model;
use drydock_provider::{Observed, ObservedGroup};
use drydock_state::{ClusterState, GenerationState, NodeGroupState, State};

use crate::{display_spec, generation_id, owner_names, provider_spec};

/// What [`adopt`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    pub state: State,
    /// Per node group address adopted: its groups' names and how many instances run in them.
    pub node_groups: Vec<(String, Vec<String>, usize)>,
    /// Groups of the lineage that no configured node group owns (`cluster/node group: name`).
    pub strays: Vec<String>,
}

/// Adopts lineage `lineage` into `state` (or into a new state) from `observed`, what each
/// provider holds of that lineage. Refused when the state manages node groups already.
pub fn adopt(
    state: Option<&State>,
    model: &Model,
    lineage: &str,
    observed: &BTreeMap<String, Observed>,
) -> Result<Adopted, String> {
    if let Some(s) = state {
        if s.node_groups().next().is_some() {
            let addresses: Vec<&str> =
                s.clusters.values().flat_map(|c| c.node_groups.keys().map(String::as_str)).collect();
            return Err(format!(
                "the state (lineage {}) already manages node groups ({}); `drydock import` adopts another lineage only \
                 into a state that manages none: forget them first with `drydock state rm ADDRESS` (their groups keep \
                 running), or push the state that owns the running groups with `drydock state push`",
                s.lineage,
                addresses.join(", ")
            ));
        }
    }
    let mut out = match state {
        Some(s) => {
            let mut s = s.clone();
            s.lineage = lineage.to_string();
            s.clusters.clear();
            s
        }
        None => State::new(lineage.to_string()),
    };
    let mut node_groups = vec![];
    let mut owned: Vec<(&str, String, String)> = vec![];
    for cluster in &model.clusters {
        let groups: Vec<&ObservedGroup> = observed
            .get(&cluster.provider)
            .map(|o| o.groups.iter().filter(|g| g.ownership.lineage == lineage).collect())
            .unwrap_or_default();
        for ng in &cluster.node_groups {
            let (oc, og) = owner_names(cluster, ng);
            let mut mine: Vec<&ObservedGroup> =
                groups.iter().copied().filter(|g| g.ownership.cluster == oc && g.ownership.node_group == og).collect();
            owned.push((cluster.provider.as_str(), oc.clone(), og.clone()));
            if mine.is_empty() {
                continue;
            }
            // Oldest generation first; a control plane's members in name order (`-m0`, `-m1`…).
            mine.sort_by(|a, b| (a.created_at_ms, &a.name).cmp(&(b.created_at_ms, &b.name)));
            let target = provider_spec(ng);
            let target_id = generation_id(&target);
            let mut generations: Vec<GenerationState> = vec![];
            for g in &mine {
                match generations.iter_mut().find(|x| x.id == g.ownership.generation) {
                    Some(x) => x.groups.push(g.name.clone()),
                    None => generations.push(GenerationState {
                        id: g.ownership.generation.clone(),
                        // The configuration's spec where it is this generation's; else what the
                        // group shows of its own.
                        spec: display_spec(ng, if g.ownership.generation == target_id { &target } else { &g.spec }),
                        groups: vec![g.name.clone()],
                    }),
                }
            }
            for x in &mut generations {
                x.groups.sort();
            }
            // The configuration's generation, when it runs, is the one rollouts converge on.
            if let Some(i) = generations.iter().position(|x| x.id == target_id) {
                let current = generations.remove(i);
                generations.push(current);
            }
            let instances = mine.iter().map(|g| g.live()).sum();
            node_groups.push((ng.address.clone(), mine.iter().map(|g| g.name.clone()).collect(), instances));
            let settings = crate::configured_settings(cluster, ng);
            let cs = out.clusters.entry(cluster.address.clone()).or_insert_with(|| ClusterState {
                name: cluster.name.clone(),
                key: cluster.key.clone(),
                provider: cluster.provider.clone(),
                node_groups: BTreeMap::new(),
            });
            cs.node_groups.insert(
                ng.address.clone(),
                NodeGroupState {
                    name: ng.name.clone(),
                    key: ng.key.clone(),
                    role: ng.role,
                    generations,
                    settings,
                    boot_times_ms: vec![],
                    drain_times_ms: vec![],
                    unfinished: false,
                    history: vec![],
                    cloud_owner: None,
                },
            );
            // The node group is managed again: no longer unmanaged.
            out.unmanaged.retain(|u| !(u.cluster == oc && u.node_group == og));
        }
    }
    let mut strays: Vec<String> = observed
        .iter()
        .flat_map(|(provider, o)| o.groups.iter().map(move |g| (provider, g)))
        .filter(|(provider, g)| {
            g.ownership.lineage == lineage
                && !owned
                    .iter()
                    .any(|(p, oc, og)| p == provider && *oc == g.ownership.cluster && *og == g.ownership.node_group)
        })
        .map(|(_, g)| format!("{}/{}: {}", g.ownership.cluster, g.ownership.node_group, g.name))
        .collect();
    strays.sort();
    // The settings as the groups have them.
    let refreshed = crate::refresh::refresh(&out, model, observed);
    Ok(Adopted { state: refreshed.state, node_groups, strays })
}
