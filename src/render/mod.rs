//! Plans as human text. Rendering is apart from planning: this module reads a [`Plan`]
//! and never decides anything.

use std::fmt::Write as _;

use crate::config::model::Role;
use crate::config::value::format_duration;
use crate::plan::{Action, Change, Plan};

/// The summary line: `Plan: 1 to create, 2 to roll out (14 nodes replaced), 1 to update in place, 0 to destroy.`
pub fn summary(plan: &Plan) -> String {
    let replaced: usize = plan.changes.iter().filter(|c| c.action == Action::Rollout).map(Change::nodes_replaced).sum();
    format!(
        "Plan: {} to create, {} to roll out ({} replaced), {} to update in place, {} to destroy.",
        plan.count(Action::Create),
        plan.count(Action::Rollout),
        nodes(replaced),
        plan.count(Action::Update),
        plan.count(Action::Delete),
    )
}

fn nodes(n: usize) -> String {
    if n == 1 {
        "1 node".into()
    } else {
        format!("{n} nodes")
    }
}

/// The plan as plain text, the way `plan`, `apply` and `show` print it.
pub fn plan_text(plan: &Plan) -> String {
    if plan.is_empty() {
        return "No changes. The infrastructure matches the configuration.\n".to_string();
    }
    let mut out = String::from("drydock will perform the following actions:\n");
    for c in &plan.changes {
        out.push('\n');
        change_text(&mut out, c);
    }
    let forgotten: Vec<&str> = plan.forgotten_clusters().map(|c| c.address.as_str()).collect();
    if !forgotten.is_empty() {
        let _ = writeln!(
            out,
            "\n  # {} will be removed from the state with {} node groups",
            forgotten.join(", "),
            if forgotten.len() == 1 { "its" } else { "their" }
        );
    }
    out.push('\n');
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

fn change_text(out: &mut String, c: &Change) {
    let role = if c.role == Role::ControlPlane { " (control plane)" } else { "" };
    let headline = match c.action {
        Action::Create => format!("will be created{role}: {}", nodes(c.replicas as usize)),
        Action::Rollout => format!(
            "will be rolled out{role}: {} replaced in {} {}",
            nodes(c.nodes_replaced()),
            c.waves.len(),
            if c.waves.len() == 1 { "wave" } else { "waves" }
        ),
        Action::Update => format!("will be updated in place{role}: no node is replaced"),
        Action::Delete => format!("will be destroyed{role}: {}", nodes(c.nodes_replaced())),
    };
    let _ = writeln!(out, "  # {} {headline}", c.address);
    let sign = match c.action {
        Action::Create => "+",
        Action::Delete => "-",
        _ => "~",
    };
    for r in &c.reasons {
        let show = |v: &Option<String>| match (v, r.sensitive) {
            (None, _) => "null".to_string(),
            (Some(_), true) => "(sensitive)".to_string(),
            (Some(v), false) => one_line(v),
        };
        match c.action {
            Action::Create => {
                let _ = writeln!(out, "  {sign} {} = {}", r.path, show(&r.after));
            }
            _ => {
                let note = if r.forces_replacement { "  # forces replacement" } else { "" };
                let _ = writeln!(out, "  {sign} {} = {} -> {}{note}", r.path, show(&r.before), show(&r.after));
            }
        }
    }
    if let Some(t) = &c.target {
        let groups: Vec<&str> = t.groups.iter().map(|g| g.name.as_str()).collect();
        let _ = writeln!(out, "    generation {} ({})", t.generation, groups.join(", "));
    }
    if !c.retire.is_empty() {
        let _ = writeln!(out, "    retires {}", c.retire.join(", "));
    }
    if c.action == Action::Rollout && !c.waves.is_empty() {
        let _ = writeln!(
            out,
            "    {:>4}  {:>3}  {:<44}  {:>5}  {:>7}  {:>6}",
            "wave", "add", "remove", "floor", "ceiling", "eta"
        );
        let per_wave =
            if c.waves.is_empty() { 0 } else { c.eta_ms / c.waves.iter().filter(|w| w.add > 0).count().max(1) as u64 };
        let mut eta = 0;
        for w in &c.waves {
            if w.add > 0 {
                eta += per_wave;
            }
            let mut removed: Vec<String> = w.remove_first.clone();
            removed.extend(w.remove_after.iter().cloned());
            let first = if removed.is_empty() { "-".to_string() } else { removed[..removed.len().min(2)].join(", ") };
            let _ = writeln!(
                out,
                "    {:>4}  {:>3}  {:<44}  {:>5}  {:>7}  {:>6}",
                w.index,
                w.add,
                first,
                w.floor,
                w.ceiling,
                format!("+{}", format_duration(eta))
            );
            for chunk in removed.get(2..).unwrap_or(&[]).chunks(2) {
                let _ = writeln!(out, "    {:>4}  {:>3}  {:<44}", "", "", chunk.join(", "));
            }
        }
    }
}

fn one_line(v: &str) -> String {
    if v.len() > 80 || v.contains("\\n") {
        let digest: String = v.chars().take(40).collect();
        format!("{digest}… ({} bytes)", v.len())
    } else {
        v.to_string()
    }
}
