//! Saved plans: reading one (`plan --out`), and the rule that it applies only to the state
//! and configuration it was made from.

use std::path::Path;

use drydock_plan::{Plan, PLAN_FORMAT_VERSION};
use drydock_state::State;

use crate::Workspace;

/// The largest saved plan `apply` and `show` read: a bound on memory, far above real plans.
pub const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Whether a path names a saved plan rather than a configuration.
pub fn is_plan_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_none_or(|e| e != "kcl")
}

/// Reads a saved plan. The format version is checked first, so that a plan of another
/// version is refused with what to do rather than with what failed to parse.
pub fn read_plan(path: &Path) -> Result<Plan, String> {
    let text =
        drydock_config::read_text(path, MAX_PLAN_BYTES).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a drydock plan: {e}", path.display()))?;
    match value.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PLAN_FORMAT_VERSION) => {}
        Some(v) => {
            let by = if v < u64::from(PLAN_FORMAT_VERSION) { "an older" } else { "a newer" };
            return Err(format!(
                "{} has plan format {v}, written by {by} drydock (this one reads {PLAN_FORMAT_VERSION}); make a new plan with `drydock plan --out {}`",
                path.display(),
                path.display()
            ));
        }
        None => return Err(format!("{} is not a drydock plan: it has no format_version", path.display())),
    }
    serde_json::from_value(value).map_err(|e| format!("{} is not a drydock plan: {e}", path.display()))
}

/// A saved plan applies only to the state and configuration it was made from.
pub fn check_saved(plan: &Plan, ws: &Workspace, state: Option<&State>) -> Result<(), String> {
    match (state, plan.state_serial) {
        (Some(_), None) => return Err("the saved plan was made before a state existed, and now one does; make a new plan".into()),
        (Some(s), _) if s.lineage != plan.lineage => {
            return Err(format!(
                "the saved plan is for a different state: its lineage is {}, the state's is {}; make a new plan",
                plan.lineage, s.lineage
            ))
        }
        (Some(s), Some(serial)) if s.serial != serial => {
            return Err(format!(
                "the saved plan is stale: it was made against state serial {serial}, the state is now at serial {}; make a new plan",
                s.serial
            ))
        }
        (None, Some(_)) => return Err("the saved plan was made against a state that no longer exists; make a new plan".into()),
        _ => {}
    }
    if plan.drydock_version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "the saved plan was made by drydock {}, and this is drydock {}; make a new plan with this one",
            plan.drydock_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    if plan.config_digest != ws.digest {
        return Err("the configuration changed since the plan was made; make a new plan".into());
    }
    check_structure(plan, &ws.model, state)
}

/// What a saved plan must be to have been made by drydock from this configuration, checked
/// before the first cloud call: every change's address is a node group of the cluster the
/// change names (an address and a cluster that disagree show); every target's generation is
/// the hash of its spec (an edited spec, an image changed by hand, shows); a change that keeps
/// or makes a node group names one the configuration has, in that cluster (an address
/// pointing at another cluster shows); a delete names one the configuration no longer has,
/// unless the plan destroys everything.
pub fn check_structure(plan: &Plan, model: &drydock_config::Model, state: Option<&State>) -> Result<(), String> {
    // Each node group's address, with its cluster's.
    let configured: std::collections::BTreeMap<&str, &str> = model
        .clusters
        .iter()
        .flat_map(|c| c.node_groups.iter().map(move |ng| (ng.address.as_str(), c.address.as_str())))
        .collect();
    let edited = |what: String| Err(format!("the saved plan was edited: {what}; make a new plan"));
    // Each configured node group with its cluster, by address.
    let node_groups: std::collections::BTreeMap<
        &str,
        (&drydock_config::model::Cluster, &drydock_config::model::NodeGroup),
    > = model
        .clusters
        .iter()
        .flat_map(|c| c.node_groups.iter().map(move |ng| (ng.address.as_str(), (c, ng))))
        .collect();
    for c in &plan.changes {
        // Groups it retires are its own node group's (any generation): an edit cannot make a
        // change delete another node group's groups.
        if let Some(r) =
            c.retire().iter().find(|r| !names_a_group_of(&plan.lineage, &c.owner_cluster, &c.owner_node_group, r))
        {
            return edited(format!("{} retires {r}, which is not one of its groups", c.address));
        }
        // A configured node group's identity (the names its groups and tags carry, its
        // provider and role) is the configuration's, and so are its target's group names.
        if let (Some(t), Some((cluster, ng))) = (c.target(), node_groups.get(c.address.as_str())) {
            let (oc, og) = drydock_plan::owners(state, cluster, ng);
            let same = c.owner_cluster == oc
                && c.owner_node_group == og
                && c.name == ng.name
                && c.key == ng.key
                && c.provider == cluster.provider
                && c.role == ng.role;
            if !same {
                return edited(format!("{}'s names, provider or role are not the configuration's", c.address));
            }
            let members = c.role == drydock_model::Role::ControlPlane;
            for (i, g) in t.groups.iter().enumerate() {
                let want = drydock_plan::group_name(&plan.lineage, &oc, &og, &t.generation, members.then_some(i));
                if g.name != want {
                    return edited(format!(
                        "{} targets group {}, where its generation's group is {want}",
                        c.address, g.name
                    ));
                }
            }
        }
        let name = c.address.strip_prefix(c.cluster.as_str()).and_then(|rest| rest.strip_prefix(".node_group."));
        if name.is_none_or(str::is_empty) {
            return edited(format!("{} is not the address of a node group of {}", c.address, c.cluster));
        }
        if let Some(t) = c.target() {
            let id = drydock_plan::generation_id(&t.spec);
            if id != t.generation {
                return edited(format!(
                    "{}'s target spec hashes to generation {id}, not the {} it names",
                    c.address, t.generation
                ));
            }
            match configured.get(c.address.as_str()) {
                None => return edited(format!("{} is not a node group of the configuration", c.address)),
                Some(&cluster) if cluster != c.cluster => {
                    return edited(format!("{} is a node group of {cluster}, not of {}", c.address, c.cluster))
                }
                Some(_) => {}
            }
        } else if !plan.destroy && configured.contains_key(c.address.as_str()) {
            return edited(format!("it deletes {}, which the configuration keeps", c.address));
        }
    }
    Ok(())
}

/// Whether `name` is the name of a group of node group `owner_ng` of cluster `owner_cluster`
/// in `lineage` (of any generation: ten hex digits; a control-plane member's ends `-mN`).
fn names_a_group_of(lineage: &str, owner_cluster: &str, owner_ng: &str, name: &str) -> bool {
    let (stem, member) = match name.rsplit_once("-m") {
        Some((stem, m)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => (stem, m.parse::<usize>().ok()),
        _ => (name, None),
    };
    let of = |stem: &str, member: Option<usize>| {
        let Some(generation) = stem.get(stem.len().saturating_sub(10)..) else { return false };
        generation.bytes().all(|b| b.is_ascii_hexdigit())
            && drydock_plan::group_name(lineage, owner_cluster, owner_ng, generation, member) == name
    };
    of(stem, member) || (member.is_some() && of(name, None))
}

/// Makes a saved plan again — from the configuration, the state and the cloud as they are
/// now, with the flags it was made with — and returns the plan made (with the providers and
/// Kubernetes clients for the executor) only if its changes are the saved plan's: a saved
/// plan applies exactly what it shows, or nothing. An edit that keeps the plan consistent
/// with itself (waves rewritten so every old node goes first, a floor lowered) is found here,
/// before the first cloud call; so is a cloud that changed since (an instance replaced), which
/// the saved waves no longer fit. What the executor finds out again as it goes (the pods a
/// drain evicts) is not compared.
pub async fn make_again(plan: &Plan, ws: &mut Workspace, state: Option<&State>) -> Result<crate::Planned, String> {
    ws.targets = plan.options.targets.clone();
    ws.replace = plan.options.replace.clone();
    ws.undo = plan.options.undo.as_ref().map(|(address, to_generation)| crate::UndoRequest {
        address: address.clone(),
        to_generation: to_generation.clone(),
    });
    ws.refresh = plan.options.refresh;
    ws.lineage = Some(plan.lineage.clone());
    let fresh = crate::make_plan(ws, state, plan.destroy).await?;
    if let Some(what) = difference(plan, &fresh.plan) {
        return Err(format!(
            "the saved plan is not what the configuration, the state and the cloud give now ({what}): it was edited, \
             or the cloud changed since it was made; make a new plan"
        ));
    }
    Ok(fresh)
}

/// The first way the changes of two plans differ, in words; `None` when they do not.
pub fn difference(saved: &Plan, now: &Plan) -> Option<String> {
    if saved.destroy != now.destroy {
        return Some("one destroys, the other does not".into());
    }
    // Which instances each wave drains (and the etcd member it removes) follow from the
    // waves and the cloud, and are compared; the Node names, the pods on them and what blocks
    // their eviction move on their own between plan and apply (the drain looks at them again
    // when it runs), and are not.
    let strip = |c: &drydock_plan::Change| {
        let mut c = c.clone();
        for d in c.waves.iter_mut().flat_map(|w| w.drains.iter_mut()) {
            d.node = None;
            d.pods = 0;
            d.blockers.clear();
        }
        c
    };
    for c in &saved.changes {
        let Some(n) = now.changes.iter().find(|n| n.address == c.address) else {
            return Some(format!("{} is not changed by a plan made now", c.address));
        };
        let (c, n) = (strip(c), strip(n));
        if c == n {
            continue;
        }
        let what = if c.kind() != n.kind() {
            format!("{:?} in the saved plan, {:?} now", c.kind(), n.kind()).to_lowercase()
        } else if c.target() != n.target() {
            "its target generation".to_string()
        } else if c.retire() != n.retire() {
            "the groups it retires".to_string()
        } else if c.waves != n.waves {
            "its waves".to_string()
        } else if c.replicas != n.replicas {
            "its node count".to_string()
        } else if c.depends_on != n.depends_on {
            "what it waits for".to_string()
        } else {
            "its details".to_string()
        };
        return Some(format!("{}: {what}", c.address));
    }
    if let Some(n) = now.changes.iter().find(|n| !saved.changes.iter().any(|c| c.address == n.address)) {
        return Some(format!("a plan made now also changes {}", n.address));
    }
    if saved.clusters != now.clusters {
        return Some("the clusters it records".into());
    }
    // The warnings the reviewer read (no drain without a kubernetes block, targeting, an
    // undo) follow from the configuration and the flags; etcd's health at plan time moves on
    // its own, and is checked again before a control-plane rollout starts.
    let stable = |p: &Plan| -> Vec<String> { p.warnings.iter().filter(|w| !w.contains(": etcd")).cloned().collect() };
    if stable(saved) != stable(now) {
        return Some("its warnings".into());
    }
    None
}
