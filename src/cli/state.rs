//! `drydock state list`, `drydock state show` and `drydock force-unlock`: reading the state
//! file, and clearing a lock its holder cannot release.
//!
//! Reading takes no lock: the state file is only ever replaced by a rename, so a reader
//! sees a whole state, the one before or the one after a concurrent write.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::Value;

use super::{report, ExitCode, Style};
use crate::diag::{Diagnostic, Sources};
use crate::state::store::{default_path, FormatError, LocalStore, StateError};
use crate::state::{Entry, State};

/// Where the state file is; shared by every command that reads or writes it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StateArgs {
    /// The state file [default: drydock.state.json in the configuration's directory].
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

impl StateArgs {
    /// The store for the configuration at `config_path`: `--state` if given, else the default.
    pub fn store(&self, config_path: &Path) -> LocalStore {
        LocalStore::new(self.state.clone().unwrap_or_else(|| default_path(config_path)))
    }
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List every address in the state (clusters, node groups, outputs), one a line, sorted.
    List {
        /// The configuration (a .kcl file or a directory), which locates the state file.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show one entry of the state as JSON: a cluster, a node group or `output.NAME`.
    Show {
        /// An address from `drydock state list`.
        address: String,
        /// The configuration (a .kcl file or a directory), which locates the state file.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct ForceUnlockArgs {
    /// The lock id, as the "state is locked" error shows it.
    pub id: String,
    /// The configuration (a .kcl file or a directory), which locates the state file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long)]
    pub force: bool,
}

pub fn run(command: StateCommand, style: Style) -> ExitCode {
    let result = match command {
        StateCommand::List { path, state } => list(&state.store(&path)),
        StateCommand::Show { address, path, state } => show(&state.store(&path), &address),
    };
    finish(result, style)
}

pub fn force_unlock(args: ForceUnlockArgs, style: Style) -> ExitCode {
    let store = args.state.store(&args.path);
    let result = confirm_and_unlock(&store, &args.id, args.force);
    finish(result, style)
}

fn finish(result: Result<(), Diagnostic>, style: Style) -> ExitCode {
    match result {
        Ok(()) => 0,
        Err(d) => {
            report(&[d], &Sources::new(), style);
            1
        }
    }
}

/// The error as a diagnostic; for a damaged file, points at the backup if there is one (a
/// file from a newer drydock is not damaged: the answer there is a newer drydock).
fn state_error(store: &LocalStore, e: StateError) -> Diagnostic {
    let damaged = match &e {
        StateError::Corrupt { .. } => true,
        StateError::InvalidFile { source, .. } => !matches!(source, FormatError::Newer { .. }),
        _ => false,
    };
    let d = Diagnostic::global(e.code(), e.to_string());
    let backup = store.backup_path();
    if damaged && backup.is_file() {
        d.help(format!("the version before the last write is in {}", backup.display()))
    } else {
        d
    }
}

fn list(store: &LocalStore) -> Result<(), Diagnostic> {
    let Some(state) = store.read().map_err(|e| state_error(store, e))? else {
        eprintln!("note: no state file at {}; nothing has been applied with it yet", store.path().display());
        return Ok(());
    };
    let mut out = String::new();
    for address in state.addresses() {
        out.push_str(&address);
        out.push('\n');
    }
    print_stdout(&out);
    Ok(())
}

fn show(store: &LocalStore, address: &str) -> Result<(), Diagnostic> {
    let Some(state) = store.read().map_err(|e| state_error(store, e))? else {
        return Err(Diagnostic::global("state::no_state", format!("no state file at {}", store.path().display()))
            .help("pass --state FILE if the state is kept elsewhere"));
    };
    let Some(entry) = state.entry(address) else {
        return Err(unknown_address(&state, address, store.path()));
    };
    let value = entry_json(entry).map_err(|e| state_error(store, StateError::Serialize(e)))?;
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| state_error(store, StateError::Serialize(e)))?;
    text.push('\n');
    print_stdout(&text);
    Ok(())
}

fn unknown_address(state: &State, address: &str, path: &Path) -> Diagnostic {
    let addresses = state.addresses();
    let d =
        Diagnostic::global("state::unknown_address", format!("no `{address}` in the state file {}", path.display()));
    match crate::diag::did_you_mean(address, addresses.iter().map(String::as_str)) {
        Some(best) => d.help(format!("did you mean `{best}`?")),
        None => d.help("`drydock state list` shows every address"),
    }
}

/// What `state show` prints for an entry: a cluster lists its node groups' addresses only
/// (each has its own entry), and a sensitive output's value is withheld.
fn entry_json(entry: Entry<'_>) -> Result<Value, serde_json::Error> {
    Ok(match entry {
        Entry::Cluster(cluster) => {
            let mut value = serde_json::to_value(cluster)?;
            if let Value::Object(fields) = &mut value {
                let addresses = cluster.node_groups.keys().map(|a| Value::String(a.clone())).collect();
                fields.insert("node_groups".to_string(), Value::Array(addresses));
            }
            value
        }
        Entry::NodeGroup { node_group, .. } => serde_json::to_value(node_group)?,
        Entry::Output(output) => {
            let mut value = serde_json::to_value(output)?;
            if output.sensitive {
                value["value"] = Value::String("(sensitive value)".to_string());
            }
            value
        }
    })
}

/// Writes to stdout; a closed pipe (`drydock state list | head -1`) is not an error worth
/// a panic, so write errors are ignored.
fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn confirm_and_unlock(store: &LocalStore, id: &str, force: bool) -> Result<(), Diagnostic> {
    // Check the id before asking, so that a typo is not confirmed first and refused after.
    let Some(info) = store.lock_info().map_err(|e| state_error(store, e))? else {
        return Err(state_error(store, StateError::NotLocked { path: store.path().to_path_buf() }));
    };
    if info.id != id {
        return Err(state_error(store, StateError::LockIdMismatch { given: id.to_string(), held: info.id }));
    }
    if !force {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(Diagnostic::global(
                "state::confirm",
                "force-unlock needs confirmation, and stdin is not a terminal to ask on",
            )
            .help("pass --force to clear the lock without asking"));
        }
        eprintln!(
            "the state {} is locked by {} (pid {} on {}) for {} since {}.\n\
             if that run is still going, unlocking lets another run change the same node groups at once.\n\
             only 'yes' will be accepted to confirm.\n",
            store.path().display(),
            info.who,
            info.pid,
            info.host,
            info.operation,
            info.created,
        );
        eprint!("force-unlock {id}? ");
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
            return Err(Diagnostic::global("state::confirm", "force-unlock cancelled; the lock is still held"));
        }
    }
    store.force_unlock(id).map_err(|e| state_error(store, e))?;
    print_stdout(&format!("The lock {id} on {} was cleared.\n", store.path().display()));
    Ok(())
}
