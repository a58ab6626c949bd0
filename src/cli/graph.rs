//! `drydock graph [PATH | PLANFILE] [--format dot|text]`: the plan's changes as the
//! dependency graph the executor runs.
//!
//! The executor (`crates/apply/src/executor.rs`, `Executor::run`) takes the changes in the
//! plan's order (by address) and starts a change once every change it `depends_on` that is
//! in the plan has finished (a dependency that is not in the plan is no wait), at most
//! `--parallelism` at once, taking the first ready ones in address order. The planner makes
//! a cluster's control plane a dependency of its workers' creates, rollouts and updates, and
//! its workers' deletes dependencies of the control plane's delete. A change waiting on a
//! cycle (only a hand-edited saved plan has one) never starts: the executor reports it as
//! skipped.
//!
//! That is what is drawn: an edge from each change to each change that waits for it, and in
//! the text form the changes by step — a change's step is one past the latest step of what
//! it waits for — then address: the order the executor starts them when each change takes
//! as long and parallelism does not limit it.

use std::collections::{BTreeMap, VecDeque};

use clap::ValueEnum;

use super::run::{fail, load, make_plan, runtime, RunArgs};
use super::{ExitCode, Style};
use drydock_config::model::Role;
use drydock_plan::{ActionKind, Change, Plan};
use drydock_session::saved::{is_plan_file, read_plan};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum GraphFormat {
    /// Graphviz: `drydock graph | dot -Tsvg > plan.svg`.
    #[default]
    Dot,
    /// One change a line, indented by the step it starts at, with what it waits for.
    Text,
}

// Flags of `drydock graph` (its help text is the `Command::Graph` variant's).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
It plans as `drydock plan` does (and changes nothing), or reads a plan saved with `plan --out`.

An edge A -> B means that B starts only once A has finished: a cluster's control plane \
before its workers are created, rolled out or updated, and its workers' deletes before the \
control plane's. The text form lists the changes by step (indented by it), then by address: \
the order the executor starts them when each takes as long and --parallelism does not \
limit it; with a smaller --parallelism it starts at most that many at once, the first ready \
ones by address.")]
pub struct GraphArgs {
    /// A configuration (file or directory), or a plan saved with `plan --out`.
    #[arg(default_value = ".")]
    pub path: std::path::PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
    /// How to print the graph.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// The graph of `drydock destroy`: every node group deleted, workers before their
    /// control plane.
    #[arg(long)]
    pub destroy: bool,
}

pub fn run(args: &GraphArgs, style: Style) -> ExitCode {
    let plan = if is_plan_file(&args.path) {
        if !args.run.vars.vars.is_empty() || !args.run.vars.var_files.is_empty() {
            return fail(format!(
                "--var and --var-file cannot be used with a saved plan: {} holds the values it was made with",
                args.path.display()
            ));
        }
        if args.destroy {
            return fail(format!(
                "--destroy graphs what `drydock destroy` would do to a configuration, and {} is a saved plan: give the configuration instead",
                args.path.display()
            ));
        }
        match read_plan(&args.path) {
            Ok(p) => p,
            Err(e) => return fail(e),
        }
    } else {
        let ws = match load(&args.path, &args.run, style) {
            Ok(ws) => ws,
            Err(code) => return code,
        };
        let rt = runtime();
        let state = match rt.block_on(ws.store.read()) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        match make_plan(&ws, state.as_ref(), args.destroy, &rt) {
            Ok((plan, ..)) => plan,
            Err(e) => return fail(e),
        }
    };
    let graph = Graph::of(&plan);
    match args.format {
        GraphFormat::Dot => out!("{}", graph.dot()),
        GraphFormat::Text => {
            if plan.changes.is_empty() {
                errln!("No changes: nothing to run.");
            }
            out!("{}", graph.text());
        }
    }
    0
}

/// The changes of a plan and the order the executor may run them in.
struct Graph<'p> {
    changes: &'p [Change],
    /// Per change (by index), the changes it waits for (by index): its `depends_on` that
    /// are in the plan.
    waits_for: Vec<Vec<usize>>,
    /// Per change, its step (0: starts at once); `None`: waits on a cycle, never starts.
    step: Vec<Option<usize>>,
}

impl<'p> Graph<'p> {
    fn of(plan: &'p Plan) -> Graph<'p> {
        let changes = &plan.changes[..];
        let mut by_address: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in changes.iter().enumerate() {
            by_address.entry(c.address.as_str()).or_default().push(i);
        }
        let waits_for: Vec<Vec<usize>> = changes
            .iter()
            .map(|c| {
                let mut w: Vec<usize> = c
                    .depends_on
                    .iter()
                    .flat_map(|d| by_address.get(d.as_str()).into_iter().flatten().copied())
                    .collect();
                w.sort_unstable();
                w.dedup();
                w
            })
            .collect();
        // Kahn's algorithm, iterative (a saved plan may be long, or hand-edited into a cycle).
        let mut waiting: Vec<usize> = waits_for.iter().map(Vec::len).collect();
        let mut released: Vec<Vec<usize>> = vec![vec![]; changes.len()];
        for (i, w) in waits_for.iter().enumerate() {
            for &d in w {
                released[d].push(i);
            }
        }
        let mut step: Vec<Option<usize>> = vec![None; changes.len()];
        let mut ready: VecDeque<usize> = (0..changes.len()).filter(|&i| waiting[i] == 0).collect();
        for &i in &ready {
            step[i] = Some(0);
        }
        while let Some(i) = ready.pop_front() {
            let next = step[i].unwrap_or(0) + 1;
            for &j in &released[i] {
                step[j] = Some(step[j].map_or(next, |s| s.max(next)));
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push_back(j);
                }
            }
        }
        // A change still waiting sits on a cycle, or behind one: it never starts.
        for (i, s) in step.iter_mut().enumerate() {
            if waiting[i] > 0 {
                *s = None;
            }
        }
        Graph { changes, waits_for, step }
    }

    /// The changes in the order they start: by step, then as the plan lists them (by
    /// address); those that never start last.
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.changes.len()).collect();
        order.sort_by_key(|&i| (self.step[i].is_none(), self.step[i], i));
        order
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for i in self.order() {
            let c = &self.changes[i];
            let indent = "  ".repeat(self.step[i].unwrap_or(0));
            out.push_str(&format!("{indent}{}: {}", c.address, what(c)));
            if !self.waits_for[i].is_empty() {
                let after: Vec<&str> = self.waits_for[i].iter().map(|&d| self.changes[d].address.as_str()).collect();
                out.push_str(&format!(", after {}", after.join(", ")));
            }
            if self.step[i].is_none() {
                out.push_str(" (never starts: its dependencies form a cycle)");
            }
            out.push('\n');
        }
        out
    }

    fn dot(&self) -> String {
        let mut out = String::from("digraph drydock {\n");
        out.push_str("  // A -> B: B starts once A has finished (drydock graph --help).\n");
        out.push_str("  node [shape = box];\n");
        // One box per cluster, its changes inside, in the order they start.
        let mut clusters: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in self.order() {
            clusters.entry(self.changes[i].cluster.as_str()).or_default().push(i);
        }
        for (n, (cluster, members)) in clusters.iter().enumerate() {
            out.push_str(&format!("  subgraph \"cluster_{n}\" {{\n    label = {};\n", quote(cluster)));
            for &i in members {
                let c = &self.changes[i];
                let group = c.address.rsplit_once(".node_group.").map_or(c.address.as_str(), |(_, g)| g);
                let mut attrs = format!("label = {}, color = {}", quote(&format!("{group}\n{}", what(c))), color(c));
                if self.step[i].is_none() {
                    attrs.push_str(", style = dashed");
                }
                out.push_str(&format!("    {} [{attrs}];\n", quote(&c.address)));
            }
            out.push_str("  }\n");
        }
        for i in self.order() {
            for &d in &self.waits_for[i] {
                out.push_str(&format!(
                    "  {} -> {};\n",
                    quote(&self.changes[d].address),
                    quote(&self.changes[i].address)
                ));
            }
        }
        out.push_str("}\n");
        out
    }
}

/// What the change does: `create`, `roll out (control plane)`, ….
fn what(c: &Change) -> String {
    let verb = match c.kind() {
        ActionKind::Create => "create",
        ActionKind::Resume => "complete",
        ActionKind::Rollout => "roll out",
        ActionKind::Update => "update in place",
        ActionKind::Delete => "destroy",
    };
    if c.role == Role::ControlPlane {
        format!("{verb} (control plane)")
    } else {
        verb.to_string()
    }
}

fn color(c: &Change) -> &'static str {
    match c.kind() {
        ActionKind::Create | ActionKind::Resume => "darkgreen",
        ActionKind::Rollout => "darkorange",
        ActionKind::Update => "blue",
        ActionKind::Delete => "red",
    }
}

/// A dot string: `"…"`, with `"` and `\` escaped and a newline as dot's `\n`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
