//! The plan as a pull-request comment (GitHub-flavoured Markdown): a hidden marker that CI
//! finds the previous comment by, a headline with the summary, a loud warning when
//! anything is destroyed or a control plane rolls, a table per cluster of the changed node
//! groups, and each change's details (attribute diff in a ```diff fence, wave table) folded
//! in `<details>`. Reviewers read the tables; the details are there to check.
//!
//! GitHub refuses comments over 65,536 characters, which breaks plan bots on large plans.
//! The comment is therefore always under [`MAX_BYTES`]: when the plan is larger, details
//! go first, then table rows; the headline and the warnings always stay, and a note says
//! what was left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    diff_side, headline, min_floor, node_group_label, nodes, plural, removed, sides, summary, text_diff, verb,
    wave_etas, Shown,
};
use drydock_model::format_duration;
use drydock_model::Role;
use drydock_plan::{ActionKind, Change, Drift, Plan};

/// The most bytes a comment takes (so also the most characters): under GitHub's 65,536
/// with room for a CI job's own additions.
pub const MAX_BYTES: usize = 65_000;

/// The first line of every comment: CI finds the comment to update by it.
pub const MARKER: &str = "<!-- drydock-plan -->";

/// Room kept for the note that says what was cut: its counts and one (shortened) address.
const CUT_NOTE_RESERVE: usize = 1_000;

/// How many addresses a warning names before it says "and N more".
const WARN_NAMES: usize = 10;

/// The comment, at most [`MAX_BYTES`] long.
pub fn render(plan: &Plan) -> String {
    render_capped(plan, MAX_BYTES)
}

/// The comment, at most `max_bytes` long (other forges have other limits). Below about
/// 2,000 bytes even the headline and warnings may not fit; they are then cut too.
pub fn render_capped(plan: &Plan, max_bytes: usize) -> String {
    let head = head(plan);
    let tables = tables(plan);
    let details = details(plan);
    let full_len =
        head.len() + tables.iter().map(Table::len).sum::<usize>() + details.iter().map(|d| d.text.len()).sum::<usize>();
    let mut out = head;
    if full_len <= max_bytes {
        for t in &tables {
            t.write(&mut out, t.rows.len());
        }
        for d in &details {
            out.push_str(&d.text);
        }
        return out;
    }

    // Too long: keep what fits of the tables, then of the details, in order.
    let budget = max_bytes.saturating_sub(CUT_NOTE_RESERVE);
    let mut used = out.len();
    let mut body = String::new();
    let total_rows: usize = tables.iter().map(|t| t.rows.len()).sum();
    let mut rows_kept = 0;
    'tables: for t in &tables {
        let mut kept = 0;
        let mut size = t.head.len() + t.tail_len();
        for r in &t.rows {
            if used + size + r.len() > budget {
                if kept > 0 {
                    t.write(&mut body, kept);
                    used += size;
                    rows_kept += kept;
                }
                break 'tables;
            }
            size += r.len();
            kept += 1;
        }
        t.write(&mut body, kept);
        used += size;
        rows_kept += kept;
    }
    let mut details_kept = 0;
    if rows_kept == total_rows {
        for d in &details {
            if used + d.text.len() > budget {
                break;
            }
            body.push_str(&d.text);
            used += d.text.len();
            details_kept += 1;
        }
    }
    let cut = &details[details_kept.min(details.len())..];
    let drift_cut = cut.iter().any(|d| d.drift);
    let changes_cut: Vec<&Detail> = cut.iter().filter(|d| !d.drift).collect();
    let _ = write!(
        out,
        "> [!NOTE]\n> This comment was cut to stay under {MAX_BYTES_TEXT} characters (GitHub's limit is 65,536). Left out: {}. \
         `drydock show` on the saved plan prints all of it, and `--format json` has every detail.\n\n",
        cut_text(
            total_rows - rows_kept,
            total_rows,
            drift_cut,
            changes_cut.len(),
            plan.changes.len(),
            changes_cut.first().map(|d| d.label.as_str())
        ),
        MAX_BYTES_TEXT = max_text(max_bytes),
    );
    out.push_str(&body);
    if out.len() > max_bytes {
        // Only a tiny limit gets here (the headline and warnings alone do not fit).
        let mut end = max_bytes.saturating_sub(4);
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("\n…\n");
    }
    out
}

/// `65,000`.
fn max_text(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cut_text(
    rows: usize,
    total_rows: usize,
    drift: bool,
    changes: usize,
    total_changes: usize,
    first: Option<&str>,
) -> String {
    let mut parts = vec![];
    if rows > 0 {
        parts.push(format!("{rows} of {total_rows} table rows (the last ones)"));
    }
    if drift {
        parts.push("the drift details".to_string());
    }
    if changes > 0 {
        let from = first.map(|f| format!(", from {} on", code(&shorten(f, 120)))).unwrap_or_default();
        parts.push(format!("the details of {changes} of {total_changes} changed node groups{from}"));
    }
    if parts.is_empty() {
        "nothing but room".into()
    } else {
        parts.join(" and ")
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

/// The marker, the headline, drift and the warnings: always kept.
fn head(plan: &Plan) -> String {
    let mut out = format!("{MARKER}\n### drydock plan for {}\n\n", code(&shorten(&plan.config_path, 200)));
    if plan.is_empty() {
        out.push_str("**No changes.** The infrastructure matches the configuration.\n\n");
    } else {
        let _ = write!(out, "**{}**\n\n", summary(plan));
    }
    if !plan.drift.is_empty() {
        let groups: std::collections::BTreeSet<&str> = plan.drift.iter().map(|d| d.address.as_str()).collect();
        let _ = write!(
            out,
            "> [!NOTE]\n> {} of {} changed outside drydock since the last apply (see **Drift**).\n\n",
            plural(plan.drift.len(), "attribute", "attributes"),
            plural(groups.len(), "node group", "node groups"),
        );
    }
    let mut warnings: Vec<String> = plan.warnings.iter().map(|w| html(w)).collect();
    let deleted: Vec<&Change> = plan.changes.iter().filter(|c| c.kind() == ActionKind::Delete).collect();
    if !deleted.is_empty() {
        let n: usize = deleted.iter().map(|c| c.nodes_replaced()).sum();
        warnings.push(format!(
            "**{} destroyed** ({}): {}",
            plural(deleted.len(), "node group will be", "node groups will be"),
            nodes(n),
            names(deleted.iter().map(|c| c.address.as_str()))
        ));
    }
    for c in plan.changes.iter().filter(|c| c.kind() == ActionKind::Rollout && c.role == Role::ControlPlane) {
        warnings.push(format!(
            "**The control plane {} will be rolled out**: {} replaced one member at a time.",
            code(&c.address),
            nodes(c.nodes_replaced())
        ));
    }
    let forgotten: Vec<&str> = plan.forgotten_clusters().map(|c| c.address.as_str()).collect();
    if !forgotten.is_empty() {
        warnings.push(format!(
            "**{} removed from the state**: {}",
            plural(forgotten.len(), "cluster will be", "clusters will be"),
            names(forgotten.into_iter())
        ));
    }
    if !warnings.is_empty() {
        out.push_str("> [!WARNING]\n");
        for w in warnings {
            let _ = writeln!(out, "> - {w}");
        }
        out.push('\n');
    }
    out
}

fn nodes_pods(n: u32) -> String {
    plural(n as usize, "pod", "pods")
}

/// Up to [`WARN_NAMES`] addresses as code, then how many more.
fn names<'a>(all: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = all.collect();
    let mut out: Vec<String> = all.iter().take(WARN_NAMES).map(|a| code(a)).collect();
    if all.len() > WARN_NAMES {
        out.push(format!("and {} more", all.len() - WARN_NAMES));
    }
    out.join(", ")
}

/// One cluster's table: its heading and header, then one row per changed node group.
struct Table {
    head: String,
    rows: Vec<String>,
}

impl Table {
    fn tail_len(&self) -> usize {
        1
    }
    fn len(&self) -> usize {
        self.head.len() + self.rows.iter().map(String::len).sum::<usize>() + self.tail_len()
    }
    fn write(&self, out: &mut String, rows: usize) {
        out.push_str(&self.head);
        for r in &self.rows[..rows] {
            out.push_str(r);
        }
        out.push('\n');
    }
}

fn tables(plan: &Plan) -> Vec<Table> {
    let mut by_cluster: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_cluster.entry(c.cluster.as_str()).or_default().push(c);
    }
    by_cluster
        .into_iter()
        .map(|(cluster, changes)| Table {
            head: format!(
                "#### {}\n\n| Node group | Action | Nodes replaced | Waves | Floor | ETA |\n| :-- | :-- | --: | --: | --: | --: |\n",
                code(cluster)
            ),
            rows: changes.into_iter().map(row).collect(),
        })
        .collect()
}

fn row(c: &Change) -> String {
    let dash = "—".to_string();
    let action = if c.role == Role::ControlPlane {
        format!("{} (control plane)", verb(c.kind()))
    } else {
        verb(c.kind()).to_string()
    };
    let (replaced, waves, floor, eta) = match c.kind() {
        ActionKind::Create | ActionKind::Resume => {
            (format!("+{} new", c.replicas), c.waves.len().to_string(), dash.clone(), format_duration(c.eta_ms))
        }
        ActionKind::Rollout => (
            c.nodes_replaced().to_string(),
            c.waves.len().to_string(),
            min_floor(c).map_or(dash.clone(), |f| f.to_string()),
            format_duration(c.eta_ms),
        ),
        ActionKind::Update => ("0".into(), dash.clone(), dash.clone(), dash.clone()),
        ActionKind::Delete => (format!("{} removed", c.nodes_replaced()), dash.clone(), "0".into(), dash.clone()),
    };
    format!("| {} | {action} | {replaced} | {waves} | {floor} | {eta} |\n", cell(node_group_label(c)))
}

/// A folded block: what it is about (named when it is cut), and its text.
struct Detail {
    label: String,
    text: String,
    /// The drift block rather than a change's.
    drift: bool,
}

fn details(plan: &Plan) -> Vec<Detail> {
    let mut out = vec![];
    if !plan.drift.is_empty() {
        out.push(Detail { label: "Drift".into(), text: drift_detail(&plan.drift), drift: true });
    }
    out.extend(plan.changes.iter().map(|c| Detail { label: c.address.clone(), text: change_detail(c), drift: false }));
    out
}

fn drift_detail(drift: &[Drift]) -> String {
    let mut lines = vec![];
    let mut last: Option<&str> = None;
    for d in drift {
        if last != Some(d.address.as_str()) {
            lines.push(format!("# {}", d.address));
            last = Some(&d.address);
        }
        let (before, after) = super::drift_sides(d);
        attr_lines(&mut lines, &d.path, &before, &after, "", false);
        lines.push(format!("# drydock will: {}", d.action));
    }
    format!(
        "<details><summary><b>Drift</b>: {} changed outside drydock since the last apply (in the state → in the cloud)</summary>\n\n{}\n</details>\n\n",
        plural(drift.len(), "attribute", "attributes"),
        fence("diff", &lines.join("\n"))
    )
}

fn change_detail(c: &Change) -> String {
    let mut out = format!("<details><summary><code>{}</code> {}</summary>\n\n", html(&c.address), html(&headline(c)));
    let mut lines = vec![];
    for r in &c.reasons {
        let (before, after) = sides(r);
        let create = c.kind() == ActionKind::Create;
        let note = if r.forces_replacement && !create { "  # forces replacement" } else { "" };
        if create {
            attr_lines(&mut lines, &r.path, &Shown::Absent, &after, note, true);
        } else {
            attr_lines(&mut lines, &r.path, &before, &after, note, false);
        }
    }
    if !lines.is_empty() {
        out.push_str(&fence("diff", &lines.join("\n")));
        out.push('\n');
    }
    if let Some(t) = c.target() {
        let groups: Vec<String> = t.groups.iter().map(|g| code(&g.name)).collect();
        let _ = writeln!(out, "Generation {}: {}.", code(&t.generation), groups.join(", "));
    }
    if !c.retire().is_empty() {
        let groups: Vec<String> = c.retire().iter().map(|g| code(g)).collect();
        let _ = writeln!(out, "Retires {}.", groups.join(", "));
    }
    if c.kind() == ActionKind::Delete && !c.waves.is_empty() {
        let ids: Vec<String> = c.waves.iter().flat_map(removed).map(code).collect();
        let _ = writeln!(out, "Terminates {}.", ids.join(", "));
    }
    if c.kind() == ActionKind::Rollout && !c.waves.is_empty() {
        out.push_str("\n| Wave | Add | Remove | Floor | Ceiling | ETA |\n| --: | --: | :-- | --: | --: | --: |\n");
        for (w, eta) in c.waves.iter().zip(wave_etas(c)) {
            let ids = removed(w);
            let ids = if ids.is_empty() {
                "—".to_string()
            } else {
                ids.iter().map(|i| cell(i)).collect::<Vec<_>>().join(" ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {ids} | {} | {} | +{} |",
                w.index,
                w.add,
                w.floor,
                w.ceiling,
                format_duration(eta)
            );
        }
        for w in c.waves.iter().filter(|w| !w.drains.is_empty()) {
            let _ = writeln!(out, "\nWave {} drains:\n", w.index);
            for d in &w.drains {
                let node = match &d.node {
                    Some(n) => format!("{} ({}): {}", code(n), code(&d.instance), nodes_pods(d.pods)),
                    None => format!("{}: no Node registered, nothing to drain", code(&d.instance)),
                };
                let _ = writeln!(out, "- {node}");
                for b in &d.blockers {
                    let mark = if b.blocks { "**blocked**" } else { "warning" };
                    let _ = writeln!(out, "  - {mark}: pod {}: {}", code(&b.pod), html(&b.detail));
                }
                if let Some(e) = &d.etcd {
                    let leader = if e.leader { ", leadership moved off it first" } else { "" };
                    let _ = writeln!(
                        out,
                        "  - then etcd member {} ({}) is removed, before its instance goes{leader}",
                        code(&e.member),
                        code(&e.id)
                    );
                }
            }
        }
    }
    out.push_str("\n</details>\n\n");
    out
}

/// An attribute as lines of a ```diff fence, which GitHub colours by their first
/// character: `-` the old value, `+` the new one, `!` a change whose values are not shown
/// (sensitive), `@@` a hunk of a multi-line value's unified diff.
fn attr_lines(lines: &mut Vec<String>, path: &str, before: &Shown, after: &Shown, note: &str, create: bool) {
    let one = |v: &Shown| match v {
        Shown::Absent => "null".to_string(),
        Shown::Sensitive => "(sensitive)".to_string(),
        Shown::Line(l) | Shown::Text(l) => l.clone(),
    };
    let multi = matches!(before, Shown::Text(_)) || matches!(after, Shown::Text(_));
    let sensitive = matches!(before, Shown::Sensitive) || matches!(after, Shown::Sensitive);
    match (before, after) {
        _ if sensitive && create => lines.push(format!("+ {path} = (sensitive){note}")),
        _ if sensitive => lines.push(format!("! {path} = (sensitive){note}")),
        (Shown::Absent, Shown::Text(t)) => {
            lines.push(format!("+ {path} = <<-EOT{note}"));
            lines.extend(t.lines().map(|l| format!("+     {l}")));
            lines.push("+ EOT".into());
        }
        _ if multi => {
            lines.push(format!("! {path} = <<-EOT{note}"));
            for l in text_diff(diff_side(before), diff_side(after)) {
                lines.push(if l.sign == '@' { l.text } else { format!("{}{}", l.sign, l.text) });
            }
            lines.push("  EOT".into());
        }
        (Shown::Absent, _) => lines.push(format!("+ {path} = {}{note}", one(after))),
        (_, Shown::Absent) => lines.push(format!("- {path} = {}{note}", one(before))),
        _ => {
            lines.push(format!("- {path} = {}", one(before)));
            lines.push(format!("+ {path} = {}{note}", one(after)));
        }
    }
}

/// A fenced code block whose fence is longer than any run of backticks in the text, so no
/// value can end it early.
fn fence(lang: &str, text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let f = "`".repeat((longest + 1).max(3));
    format!("{f}{lang}\n{text}\n{f}\n")
}

/// Inline code in a table cell: a `|` would end the cell, so it is escaped (GitHub
/// unescapes it inside code in tables, and only there).
fn cell(s: &str) -> String {
    code(&s.replace('|', "\\|"))
}

/// Inline code, whatever backticks the text holds.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outlast_backticks_and_code_escapes_pipes() {
        assert_eq!(fence("diff", "a"), "```diff\na\n```\n");
        assert_eq!(fence("diff", "x ```` y"), "`````diff\nx ```` y\n`````\n");
        assert_eq!(cell("a|b"), "`a\\|b`");
        assert_eq!(code("a|b"), "`a|b`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(max_text(65_000), "65,000");
        assert_eq!(max_text(999), "999");
    }
}
