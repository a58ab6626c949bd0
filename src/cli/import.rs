//! `drydock import`: the state adopts node groups that run under another lineage — the groups
//! of a lost state file, or of the state another was pushed over — without changing the cloud
//! or replacing a node (see `drydock_plan::adopt`).

use std::path::Path;

use super::run::{fail, load, lock, release, runtime, RunArgs};
use super::{ExitCode, Style};
use drydock_session as session;

pub fn import_cmd(path: &Path, args: &RunArgs, lineage: Option<&str>, style: Style) -> ExitCode {
    let ws = match load(path, args, style) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let rt = runtime();
    let held = match lock(&ws, "import", &rt) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let code = 'locked: {
        let state = match rt.block_on(ws.store.read()) {
            Ok(s) => s,
            Err(e) => break 'locked fail(e),
        };
        if state.as_ref().is_some_and(|s| !s.journal.is_empty()) {
            break 'locked fail(
                "an apply was interrupted and its cloud calls are not settled yet: run `drydock apply` first",
            );
        }
        let adopted = match rt.block_on(session::import(&ws, state.as_ref(), lineage)) {
            Ok(a) => a,
            Err(e) => break 'locked fail(e),
        };
        if adopted.node_groups.is_empty() {
            break 'locked fail(format!(
                "no configured node group runs under lineage {}: nothing was imported",
                adopted.state.lineage
            ));
        }
        let mut new = adopted.state;
        if let Err(e) = rt.block_on(ws.store.write(&mut new)) {
            break 'locked fail(e);
        }
        outln!("Imported {} under lineage {}:", plural(adopted.node_groups.len(), "node group"), new.lineage);
        for (address, groups, instances) in &adopted.node_groups {
            outln!("  {address}: {} ({} running)", groups.join(", "), instances);
        }
        if !adopted.strays.is_empty() {
            outln!(
                "\nWarning: {} of this lineage belong to no configured node group; the next plan deletes them \
                 unless you configure them:",
                plural(adopted.strays.len(), "group")
            );
            for s in &adopted.strays {
                outln!("  {s}");
            }
        }
        outln!("\nNo cloud resource was changed. Run `drydock plan` to compare the configuration with what runs.");
        0
    };
    release(held, &rt);
    code
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
