//! `drydock validate`: evaluate the configuration and report every error at once.

use std::path::Path;

use super::{report, ExitCode, Style, VarArgs};
use drydock_config as config;
use drydock_syntax::diag::Sources;

pub fn run(path: &Path, vars: &VarArgs, style: Style) -> ExitCode {
    let inputs = match vars.inputs() {
        Ok(i) => i,
        Err(diags) => {
            report(&diags, &Sources::new(), style);
            return 1;
        }
    };
    let loaded = config::load(path, &inputs);
    let code = match &loaded.model {
        Some(model) if loaded.diagnostics.is_empty() => {
            let groups = model.node_group_count();
            outln!(
                "Success! {} is valid: {} {}, {} node {}.",
                path.display(),
                model.clusters.len(),
                if model.clusters.len() == 1 { "cluster" } else { "clusters" },
                groups,
                if groups == 1 { "group" } else { "groups" },
            );
            0
        }
        _ => {
            report(&loaded.diagnostics, &loaded.sources, style);
            1
        }
    };
    // The process exits next: the trees and the model are left to it instead of being freed
    // one by one (tens of milliseconds for a large fleet).
    std::mem::forget(loaded);
    code
}
