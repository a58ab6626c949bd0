//! Plans rendered for people and for tools: [`human`] text for the terminal, [`markdown`]
//! for a pull-request comment, [`json`] in a documented, versioned format
//! (`docs/json-format.md`). Rendering is apart from planning: these modules read a
//! [`Plan`] and never decide anything. What the three share lives here: counting, the
//! headline of a change, how a value is shown (sensitive values never are), the unified
//! diff of multi-line values, and the ETA of each wave.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod diag;
pub mod human;
pub mod json;
pub mod markdown;

use similar::TextDiff;

use drydock_model::Role;
use drydock_plan::{ActionKind, AttrChange, Change, Plan};

/// How a plan is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Terminal text, coloured or not.
    #[default]
    Human,
    /// A pull-request comment, under [`markdown::MAX_BYTES`].
    Markdown,
    /// The machine-readable format of `docs/json-format.md`.
    Json,
}

/// The plan in `format`; `color` adds ANSI colours to the human format (the others never
/// have any: they are read by GitHub and by programs).
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Human => human::render(plan, color),
        Format::Markdown => markdown::render(plan),
        Format::Json => json::render(plan),
    }
}

/// The plan as plain text, the way `plan`, `apply` and `show` print it without colour.
pub fn plan_text(plan: &Plan) -> String {
    human::render(plan, false)
}

/// The summary line: `Plan: 1 to create, 2 to roll out (14 nodes replaced), 1 to update in place, 0 to destroy.`
pub fn summary(plan: &Plan) -> String {
    format!(
        "Plan: {} to create, {} to roll out ({} replaced), {} to update in place, {} to destroy.",
        creates(plan),
        plan.count(ActionKind::Rollout),
        nodes(nodes_replaced(plan)),
        plan.count(ActionKind::Update),
        plan.count(ActionKind::Delete),
    )
}

/// Node groups created, or whose interrupted create or rollout is finished: the summary's
/// "to create".
pub(crate) fn creates(plan: &Plan) -> usize {
    plan.count(ActionKind::Create) + plan.count(ActionKind::Resume)
}

/// Nodes replaced by every rollout of the plan.
pub(crate) fn nodes_replaced(plan: &Plan) -> usize {
    plan.changes.iter().filter(|c| c.kind() == ActionKind::Rollout).map(Change::nodes_replaced).sum()
}

pub(crate) fn nodes(n: usize) -> String {
    plural(n, "node", "nodes")
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What happens to a change's node group, after its address: `will be rolled out: 4 nodes
/// replaced in 4 waves`.
pub(crate) fn headline(c: &Change) -> String {
    let role = if c.role == Role::ControlPlane { " (control plane)" } else { "" };
    match c.kind() {
        ActionKind::Create => format!("will be created{role}: {}", nodes(c.replicas as usize)),
        ActionKind::Resume => {
            format!("will be completed{role}: an interrupted apply is finished, {}", nodes(c.replicas as usize))
        }
        ActionKind::Rollout => format!(
            "will be rolled out{role}: {} replaced in {}",
            nodes(c.nodes_replaced()),
            plural(c.waves.len(), "wave", "waves")
        ),
        ActionKind::Update => format!("will be updated in place{role}: no node is replaced"),
        ActionKind::Delete => format!("will be destroyed{role}: {}", nodes(c.nodes_replaced())),
    }
}

/// The verb of an action in tables: `create`, `complete`, `roll out`, `update in place`,
/// `destroy`.
pub(crate) fn verb(a: ActionKind) -> &'static str {
    match a {
        ActionKind::Create => "create",
        ActionKind::Resume => "complete",
        ActionKind::Rollout => "roll out",
        ActionKind::Update => "update in place",
        ActionKind::Delete => "destroy",
    }
}

/// The node group part of an address: `workers`, `workers["us-east-1a"]`.
pub(crate) fn node_group_label(c: &Change) -> &str {
    c.address.rsplit_once(".node_group.").map_or(c.address.as_str(), |(_, g)| g)
}

/// A value as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    /// The attribute has no value on this side.
    Absent,
    /// Derived from a sensitive variable: shown as `(sensitive)`, never as itself.
    Sensitive,
    /// One line: JSON text for an attribute's value (`"img-1"`, `4`), or a drift's string
    /// as it is (`free`, `missing (deleted outside drydock)`).
    Line(String),
    /// A string of several lines (user data), decoded, to be shown as text or a diff.
    Text(String),
}

/// How one side of a change is shown: a string with line breaks as text (so a change to it
/// can be shown line by line), any other value on one line, as JSON text (`quote`, for an
/// attribute's value) or, for a string, as it is (a drift's words).
pub(crate) fn shown(value: Option<&serde_json::Value>, sensitive: bool, quote: bool) -> Shown {
    match value {
        None => Shown::Absent,
        Some(_) if sensitive => Shown::Sensitive,
        Some(serde_json::Value::String(text)) if text.contains('\n') => Shown::Text(text.clone()),
        Some(serde_json::Value::String(text)) if !quote => Shown::Line(text.clone()),
        Some(v) => Shown::Line(v.to_string()),
    }
}

/// The two sides of an attribute change.
pub(crate) fn sides(r: &AttrChange) -> (Shown, Shown) {
    (shown(r.before.as_ref(), r.sensitive, true), shown(r.after.as_ref(), r.sensitive, true))
}

/// The two sides of a drift.
pub(crate) fn drift_sides(d: &drydock_plan::Drift) -> (Shown, Shown) {
    (shown(d.before.as_ref(), d.sensitive, false), shown(d.after.as_ref(), d.sensitive, false))
}

/// One line of a unified diff: `' '` (context), `'-'`, `'+'`, or `'@'` for a hunk header
/// (whose text is the whole header, `@@ -1,3 +1,4 @@`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiffLine {
    pub sign: char,
    pub text: String,
}

/// Lines of context around each change in a multi-line value, as `diff -u` keeps.
pub(crate) const DIFF_CONTEXT: usize = 3;

/// The unified diff of two texts, hunk headers included and without the file header; a
/// side that is not text (absent, or a one-line value) counts as empty.
pub(crate) fn text_diff(before: &str, after: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(before, after);
    let mut out = vec![];
    for hunk in diff.unified_diff().context_radius(DIFF_CONTEXT).iter_hunks() {
        out.push(DiffLine { sign: '@', text: hunk.header().to_string() });
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Equal => ' ',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            out.push(DiffLine { sign, text: change.value().trim_end_matches(['\n', '\r']).to_string() });
        }
    }
    out
}

/// The text of a side for diffing it against a multi-line other side.
pub(crate) fn diff_side(s: &Shown) -> &str {
    match s {
        Shown::Text(t) => t,
        Shown::Line(l) => l,
        Shown::Absent | Shown::Sensitive => "",
    }
}

/// The time from the start of a change to the end of each of its waves. The plan gives the
/// whole change's ETA; waves that add nodes wait for them to boot, the others take no time.
pub(crate) fn wave_etas(c: &Change) -> Vec<u64> {
    let adding = c.waves.iter().filter(|w| w.add > 0).count().max(1) as u64;
    let per_wave = c.eta_ms / adding;
    let mut eta = 0;
    c.waves
        .iter()
        .map(|w| {
            if w.add > 0 {
                eta += per_wave;
            }
            eta
        })
        .collect()
}

/// The lowest floor of a change's waves: the fewest healthy nodes at any moment.
pub(crate) fn min_floor(c: &Change) -> Option<u32> {
    c.waves.iter().map(|w| w.floor).min()
}

/// The old instances a wave removes, those removed before its new nodes are healthy first.
pub(crate) fn removed(w: &drydock_plan::waves::Wave) -> Vec<&str> {
    w.remove_first.iter().chain(&w.remove_after).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_strings_are_decoded_and_sensitive_values_never_are() {
        let s = |v: &str| serde_json::Value::String(v.into());
        assert_eq!(shown(Some(&s("a\nb")), false, true), Shown::Text("a\nb".into()));
        assert_eq!(shown(Some(&s("a")), false, true), Shown::Line("\"a\"".into()));
        assert_eq!(shown(Some(&s("a")), false, false), Shown::Line("a".into()));
        assert_eq!(shown(Some(&serde_json::json!(42)), false, true), Shown::Line("42".into()));
        assert_eq!(shown(Some(&s("a\nb")), true, true), Shown::Sensitive);
        assert_eq!(shown(None, true, true), Shown::Absent);
    }

    #[test]
    fn text_diff_keeps_three_lines_of_context() {
        let before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let lines: Vec<String> = text_diff(before, after).iter().map(|l| format!("{}{}", l.sign, l.text)).collect();
        assert_eq!(lines, ["@@@ -2,7 +2,7 @@", " 2", " 3", " 4", "-5", "+five", " 6", " 7", " 8"]);
    }
}
