//! `drydock rollout history` and `drydock rollout undo`: a node group's applied generations
//! (from the state), and a rollout back to one of them through the ordinary plan and apply
//! path (shown, confirmed or saved with `--out`, with the usual waves, floor and drains).

use std::path::PathBuf;

use drydock_session as session;

use super::run::{self, fail, RunArgs};
use super::{ColorChoice, ExitCode, OutputFormat, Style};

#[derive(clap::Subcommand, Debug)]
pub enum RolloutCommand {
    /// List the generations a node group was rolled out onto (newest last): when, by whom,
    /// what changed, and which one runs now.
    History {
        /// The node group's address (`cluster.demo.node_group.workers`).
        address: String,
        #[arg(default_value = ".")]
        path: PathBuf,
        /// One JSON object: `{"address", "current", "generations": [{"generation",
        /// "applied_at", "by", "changes", "current"}]}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Roll a node group back onto an earlier generation's spec: planned and applied like any
    /// rollout (or saved with --out for review). The configuration then differs from what
    /// runs: the next `drydock plan` rolls forward again unless it is changed back.
    Undo {
        /// The node group's address.
        address: String,
        #[arg(default_value = ".")]
        path: PathBuf,
        /// The generation to go back to (an id, or its first characters, from `rollout
        /// history`); default: the one before the generation it runs.
        #[arg(long, value_name = "ID")]
        to_generation: Option<String>,
        /// Save the plan instead of applying it; apply it later with `drydock apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        parallelism: u16,
        #[command(flatten)]
        run: RunArgs,
    },
}

pub fn run(command: RolloutCommand, choice: ColorChoice, style: Style) -> ExitCode {
    match command {
        RolloutCommand::History { address, path, json, run } => history(&address, &path, json, &run, style),
        RolloutCommand::Undo { address, path, to_generation, out, auto_approve, parallelism, mut run } => {
            run.undo = Some(session::UndoRequest { address, to_generation });
            match out {
                Some(out) => {
                    let print =
                        run::Print { format: OutputFormat::Human.into(), color: Style::for_stdout(choice).color };
                    run::plan_cmd(&path, &run, false, Some(&out), print, false, false, style)
                }
                None => run::apply_cmd(&path, &run, auto_approve, usize::from(parallelism), false, false, style),
            }
        }
    }
}

fn history(address: &str, path: &std::path::Path, json: bool, args: &RunArgs, style: Style) -> ExitCode {
    let ws = match run::load(path, args, style) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let rt = run::runtime();
    let state = match rt.block_on(ws.store.read()) {
        Ok(Some(s)) => s,
        Ok(None) => return fail("no state: nothing has been applied yet"),
        Err(e) => return fail(e),
    };
    let Some(ng) = state.clusters.values().find_map(|c| c.node_groups.get(address)) else {
        let known: Vec<&String> = state.clusters.values().flat_map(|c| c.node_groups.keys()).collect();
        return fail(format!(
            "the state has no node group {address} (it has: {})",
            known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
    let current = ng.current().map(|g| g.id.clone()).unwrap_or_default();
    // The last entry of the running generation is the current one (an undo can make an
    // earlier generation current again).
    let current_index = ng.history.iter().rposition(|h| h.generation == current);
    if json {
        let generations: Vec<serde_json::Value> = ng
            .history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                serde_json::json!({
                    "generation": h.generation,
                    "applied_at": h.applied_at,
                    "by": h.by,
                    "changes": h.changes,
                    "current": Some(i) == current_index,
                })
            })
            .collect();
        let v = serde_json::json!({ "address": address, "current": current, "generations": generations });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    if ng.history.is_empty() {
        outln!("{address}: no rollout recorded yet (the history starts with the first apply of this drydock).");
        return 0;
    }
    outln!("{address}:");
    for (i, h) in ng.history.iter().enumerate() {
        let mark = if Some(i) == current_index { "  (running)" } else { "" };
        outln!("  {}  {}  by {}{mark}", h.generation, h.applied_at, h.by);
        for c in &h.changes {
            outln!("      {c}");
        }
    }
    0
}
