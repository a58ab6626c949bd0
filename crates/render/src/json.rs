//! The plan as JSON for tools: the format `docs/json-format.md` documents and
//! `docs/plan.schema.json` describes, versioned by `format_version`. It is not the saved
//! plan file (that is the planner's, and holds what the executor needs, secrets included);
//! this is a view for reading, in which sensitive values are `null` and flagged in
//! `before_sensitive` / `after_sensitive`, as Terraform's `show -json` does.
//!
//! Keys are sorted (serde_json's map is a `BTreeMap` unless `preserve_order` is on, and
//! nothing here turns it on) and changes come in the plan's address order, so the same
//! plan is always the same bytes.

use serde_json::{json, Map, Value};

use super::{node_group_label, nodes_replaced, summary, wave_etas};
use drydock_plan::{ActionKind, AttrChange, Change, Drift, Plan};

/// The version of this format: the major changes when a field is removed or changes
/// meaning, the minor when a field is added.
pub const JSON_FORMAT_VERSION: &str = "1.3";

/// The plan as pretty JSON with a trailing newline.
pub fn render(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(&to_value(plan)).unwrap_or_else(|_| "null".into());
    out.push('\n');
    out
}

/// The plan as a JSON value, in the documented shape.
pub fn to_value(plan: &Plan) -> Value {
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "drydock_version": plan.drydock_version,
        "config_path": plan.config_path,
        "lineage": plan.lineage,
        "state_serial": plan.state_serial,
        "destroy": plan.destroy,
        "refresh_only": plan.refresh_only,
        "summary": {
            "create": super::creates(plan),
            "rollout": plan.count(ActionKind::Rollout),
            "update": plan.count(ActionKind::Update),
            "delete": plan.count(ActionKind::Delete),
            "nodes_replaced": nodes_replaced(plan),
            "text": summary(plan),
        },
        "changes": plan.changes.iter().map(|c| change(plan, c)).collect::<Vec<_>>(),
        "drift": plan.drift.iter().map(drift).collect::<Vec<_>>(),
        "forgotten_clusters": plan.forgotten_clusters().map(|c| c.address.clone()).collect::<Vec<_>>(),
        "warnings": plan.warnings,
    })
}

/// Terraform's lists of actions. A rollout is `["create", "delete"]`: the new generation's
/// group is created before the old generation's is deleted (how its nodes are exchanged,
/// wave by wave, is in `waves`).
fn actions(a: ActionKind) -> Vec<&'static str> {
    match a {
        ActionKind::Create | ActionKind::Resume => vec!["create"],
        ActionKind::Rollout => vec!["create", "delete"],
        ActionKind::Update => vec!["update"],
        ActionKind::Delete => vec!["delete"],
    }
}

/// The action's name in this format: finishing an interrupted apply is a `create` whose
/// `reason` is `incomplete`, as it was before the plan had an action of its own for it.
fn action_name(a: ActionKind) -> &'static str {
    match a {
        ActionKind::Create | ActionKind::Resume => "create",
        ActionKind::Rollout => "rollout",
        ActionKind::Update => "update",
        ActionKind::Delete => "delete",
    }
}

/// Why the change happens, as a stable code (see `docs/json-format.md`).
fn reason(plan: &Plan, c: &Change) -> &'static str {
    match c.kind() {
        ActionKind::Resume => "incomplete",
        ActionKind::Create if c.target().is_some_and(|t| t.groups.iter().any(|g| g.exists)) => "incomplete",
        ActionKind::Create => "absent",
        ActionKind::Rollout if c.reasons.iter().any(|r| r.forces_replacement) => "replace_because_of_attributes",
        ActionKind::Rollout => "replace_old_generation",
        ActionKind::Update => "update_in_place",
        ActionKind::Delete if plan.destroy => "delete_because_destroy",
        ActionKind::Delete => "delete_because_no_config",
    }
}

/// One side of the changed attributes: path → value, sensitive ones `null` and flagged.
fn side(reasons: &[AttrChange], pick: fn(&AttrChange) -> Option<&Value>) -> (Value, Value) {
    let mut values = Map::new();
    let mut sensitive = Map::new();
    for r in reasons {
        let v = pick(r);
        if r.sensitive && v.is_some() {
            values.insert(r.path.clone(), Value::Null);
            sensitive.insert(r.path.clone(), Value::Bool(true));
        } else {
            values.insert(r.path.clone(), v.cloned().unwrap_or(Value::Null));
        }
    }
    (Value::Object(values), Value::Object(sensitive))
}

fn change(plan: &Plan, c: &Change) -> Value {
    let (mut before, before_sensitive) = side(&c.reasons, |r| r.before.as_ref());
    let (mut after, after_sensitive) = side(&c.reasons, |r| r.after.as_ref());
    match c.kind() {
        ActionKind::Create => before = Value::Null,
        ActionKind::Delete => after = Value::Null,
        ActionKind::Resume | ActionKind::Rollout | ActionKind::Update => {}
    }
    let etas = wave_etas(c);
    let waves: Vec<Value> = c
        .waves
        .iter()
        .zip(etas)
        .map(|(w, eta)| {
            json!({
                "index": w.index,
                "add": w.add,
                "remove_first": w.remove_first,
                "remove_after": w.remove_after,
                "floor": w.floor,
                "ceiling": w.ceiling,
                "eta_ms": eta,
                "drains": w.drains,
            })
        })
        .collect();
    json!({
        "address": c.address,
        "cluster": c.cluster,
        "node_group": node_group_label(c),
        "provider": c.provider,
        "role": c.role,
        "action": action_name(c.kind()),
        "actions": actions(c.kind()),
        "reason": reason(plan, c),
        "before": before,
        "after": after,
        "before_sensitive": before_sensitive,
        "after_sensitive": after_sensitive,
        "replace_paths": c.reasons.iter().filter(|r| r.forces_replacement).map(|r| r.path.clone()).collect::<Vec<_>>(),
        "replicas": c.replicas,
        "nodes_replaced": c.nodes_replaced(),
        "generation": c.target().map(|t| t.generation.clone()),
        "groups": c.target().map(|t| t.groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "retire": c.retire(),
        "depends_on": c.depends_on,
        "eta_ms": c.eta_ms,
        "waves": waves,
    })
}

fn drift(d: &Drift) -> Value {
    let shown = |v: &Option<Value>| match v {
        Some(_) if d.sensitive => Value::Null,
        Some(v) => v.clone(),
        None => Value::Null,
    };
    json!({
        "address": d.address,
        "path": d.path,
        "before": shown(&d.before),
        "after": shown(&d.after),
        "sensitive": d.sensitive,
        "action": d.action,
    })
}
