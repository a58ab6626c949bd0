//! The plan as terminal text. Per changed node group: the action, the attribute diff in the
//! style Terraform users know (`~ image = "img-1" -> "img-2"  # forces replacement`),
//! multi-line values as a unified diff with context, the target generation and, for a
//! rollout, the wave table. Drift comes first, as Terraform puts "changed outside" first;
//! one summary line ends it. ANSI colours only when the caller asks: without them the text
//! is exactly the coloured text with the escapes removed.

use std::fmt::Write as _;

use super::{diff_side, headline, removed, sides, summary, text_diff, wave_etas, Shown};
use drydock_model::format_duration;
use drydock_plan::{ActionKind, Change, Drift, Plan};

/// Adds ANSI escapes when colour is on.
#[derive(Clone, Copy)]
struct Paint(bool);

const BOLD: &str = "1";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

impl Paint {
    fn paint(self, code: &str, s: &str) -> String {
        if self.0 && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// An attribute or diff sign in its colour: added green, removed red, changed yellow.
    fn sign(self, sign: char) -> String {
        let code = match sign {
            '+' => GREEN,
            '-' => RED,
            '~' => YELLOW,
            '@' => CYAN,
            _ => return sign.to_string(),
        };
        self.paint(code, &sign.to_string())
    }
}

/// The whole plan; `color` adds ANSI colours.
pub fn render(plan: &Plan, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    if !plan.drift.is_empty() {
        drift_text(&mut out, &plan.drift, p);
    }
    if plan.refresh_only {
        for w in &plan.warnings {
            let _ = writeln!(out, "{} {w}", p.paint(YELLOW, "Note:"));
        }
        let _ = writeln!(out, "{}", refresh_summary(plan));
        return out;
    }
    if plan.is_empty() {
        // What the reviewer should know even when nothing changes (a moved block, targeting).
        for w in &plan.warnings {
            let _ = writeln!(out, "{} {w}", p.paint(YELLOW, "Note:"));
        }
        out.push_str("No changes. The infrastructure matches the configuration.\n");
        return out;
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "{} {w}", p.paint(YELLOW, "Warning:"));
    }
    out.push_str("drydock will perform the following actions:\n");
    for c in &plan.changes {
        out.push('\n');
        change_text(&mut out, c, p);
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
    let line = summary(plan);
    let rest = line.strip_prefix("Plan:").unwrap_or(&line);
    let _ = writeln!(out, "{}{rest}", p.paint(BOLD, "Plan:"));
    out
}

/// The last line of a refresh-only plan.
pub fn refresh_summary(plan: &Plan) -> String {
    let recorded = plan.drift.iter().filter(|d| d.action == drydock_plan::refresh::RECORDED).count();
    if recorded == 0 {
        "No changes to record. The state matches what the cloud has.".to_string()
    } else {
        format!(
            "Refresh-only: {} to record in the state; the cloud is not changed. \
             Apply it with `drydock apply --refresh-only`.",
            super::plural(recorded, "attribute", "attributes")
        )
    }
}

fn drift_text(out: &mut String, drift: &[Drift], p: Paint) {
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            BOLD,
            &format!(
                "Note: {} changed outside drydock since the last apply (in the state -> in the cloud):",
                super::plural(drift.len(), "attribute", "attributes")
            )
        )
    );
    let mut last: Option<&str> = None;
    for d in drift {
        if last != Some(d.address.as_str()) {
            let _ = writeln!(out, "\n  {}", p.paint(BOLD, &format!("# {}", d.address)));
            last = Some(&d.address);
        }
        let (before, after) = super::drift_sides(d);
        attr_text(out, p, '~', &d.path, &before, &after, "");
        let _ = writeln!(out, "      drydock will: {}", d.action);
    }
    out.push('\n');
}

fn change_text(out: &mut String, c: &Change, p: Paint) {
    let _ = writeln!(out, "  {}", p.paint(BOLD, &format!("# {} {}", c.address, headline(c))));
    let create = c.kind() == ActionKind::Create;
    let sign = match c.kind() {
        ActionKind::Create => '+',
        ActionKind::Delete => '-',
        ActionKind::Resume | ActionKind::Rollout | ActionKind::Update => '~',
    };
    for r in &c.reasons {
        let (before, after) = sides(r);
        let note = if r.forces_replacement && !create {
            format!("  {}", p.paint(RED, "# forces replacement"))
        } else {
            String::new()
        };
        if create {
            attr_text(out, p, sign, &r.path, &Shown::Absent, &after, &note);
        } else {
            // Within a change, an attribute that appears is `+` and one that goes is `-`.
            let sign = match (&before, &after) {
                (Shown::Absent, _) => '+',
                (_, Shown::Absent) => '-',
                _ => sign,
            };
            attr_text(out, p, sign, &r.path, &before, &after, &note);
        }
    }
    if let Some(t) = c.target() {
        let groups: Vec<&str> = t.groups.iter().map(|g| g.name.as_str()).collect();
        let _ = writeln!(out, "    generation {} ({})", t.generation, groups.join(", "));
    }
    if !c.retire().is_empty() {
        let _ = writeln!(out, "    retires {}", c.retire().join(", "));
    }
    if c.kind() == ActionKind::Delete && !c.waves.is_empty() {
        let ids: Vec<&str> = c.waves.iter().flat_map(removed).collect();
        let _ = writeln!(out, "    terminates {}", ids.join(", "));
    }
    if c.kind() == ActionKind::Rollout && !c.waves.is_empty() {
        wave_table(out, c, p);
    }
}

/// One attribute: `~ path = before -> after`, `+ path = after`, or a heredoc (a new
/// multi-line value) or a unified diff (a changed one). A sensitive side is `(sensitive)`
/// and never takes part in a diff.
fn attr_text(out: &mut String, p: Paint, sign: char, path: &str, before: &Shown, after: &Shown, note: &str) {
    let s = p.sign(sign);
    let one = |v: &Shown| match v {
        Shown::Absent => "null".to_string(),
        Shown::Sensitive => "(sensitive)".to_string(),
        Shown::Line(l) => l.clone(),
        Shown::Text(t) => t.clone(),
    };
    let multi = matches!(before, Shown::Text(_)) || matches!(after, Shown::Text(_));
    let sensitive = matches!(before, Shown::Sensitive) || matches!(after, Shown::Sensitive);
    match (before, after) {
        // A sensitive value never shows, nor does whatever it is diffed against.
        _ if sensitive => {
            let _ = writeln!(out, "  {s} {path} = (sensitive){note}");
        }
        (Shown::Absent, Shown::Text(t)) => {
            let _ = writeln!(out, "  {s} {path} = <<-EOT{note}");
            for line in t.lines() {
                let _ = writeln!(out, "        {line}");
            }
            let _ = writeln!(out, "    EOT");
        }
        _ if multi => {
            let _ = writeln!(out, "  {s} {path} = <<-EOT{note}");
            for l in text_diff(diff_side(before), diff_side(after)) {
                let text = if l.sign == '@' { l.text.clone() } else { format!("{}{}", l.sign, l.text) };
                let colour = match l.sign {
                    '+' => GREEN,
                    '-' => RED,
                    '@' => CYAN,
                    _ => "",
                };
                let painted = if colour.is_empty() { text } else { p.paint(colour, &text) };
                let _ = writeln!(out, "      {painted}");
            }
            let _ = writeln!(out, "    EOT");
        }
        (Shown::Absent, _) => {
            let _ = writeln!(out, "  {s} {path} = {}{note}", one(after));
        }
        _ => {
            let _ = writeln!(out, "  {s} {path} = {} -> {}{note}", one(before), one(after));
        }
    }
}

/// Columns `wave add remove floor ceiling eta`; two instance ids a row, more on the
/// following rows.
fn wave_table(out: &mut String, c: &Change, p: Paint) {
    let header =
        format!("    {:>4}  {:>3}  {:<44}  {:>5}  {:>7}  {:>6}", "wave", "add", "remove", "floor", "ceiling", "eta");
    let _ = writeln!(out, "{}", p.paint(BOLD, &header));
    for (w, eta) in c.waves.iter().zip(wave_etas(c)) {
        let ids = removed(w);
        let first = if ids.is_empty() { "-".to_string() } else { ids[..ids.len().min(2)].join(", ") };
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
        for chunk in ids.get(2..).unwrap_or(&[]).chunks(2) {
            let row = format!("    {:>4}  {:>3}  {:<44}", "", "", chunk.join(", "));
            let _ = writeln!(out, "{}", row.trim_end());
        }
    }
    drains_text(out, c, p);
}

/// Per wave, the nodes it drains and what is known to stand in the way.
fn drains_text(out: &mut String, c: &Change, p: Paint) {
    for w in c.waves.iter().filter(|w| !w.drains.is_empty()) {
        let _ = writeln!(out, "    wave {} drains:", w.index);
        for d in &w.drains {
            match &d.node {
                Some(node) => {
                    let _ = writeln!(
                        out,
                        "      {node} ({}): {}",
                        d.instance,
                        super::plural(d.pods as usize, "pod", "pods")
                    );
                }
                None => {
                    let _ = writeln!(out, "      {} (no Node registered: nothing to drain)", d.instance);
                }
            }
            for b in &d.blockers {
                let mark = if b.blocks { p.paint(RED, "blocked") } else { p.paint(YELLOW, "warning") };
                let _ = writeln!(out, "        {mark}: pod {}: {}", b.pod, b.detail);
            }
            if let Some(e) = &d.etcd {
                let leader = if e.leader { ", leadership moved off it first" } else { "" };
                let _ = writeln!(
                    out,
                    "        then etcd member {} ({}) is removed, before its instance goes{leader}",
                    e.member, e.id
                );
            }
        }
    }
}
