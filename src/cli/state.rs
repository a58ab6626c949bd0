//! `drydock state list|show|pull|push|migrate` and `drydock force-unlock`: reading the
//! state, moving it between backends, and clearing a lock its holder cannot release.
//!
//! Reading takes no lock: the state file is only ever replaced by a rename (and an S3 object
//! by a whole new one), so a reader sees a whole state, the one before or the one after a
//! concurrent write. Writing (push, migrate) takes the lock, like apply.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::Value;
use tokio::runtime::Runtime;

use super::run::{release, runtime};
use super::VarArgs;
use super::{report, ExitCode, Style};
use drydock_state::backend::{self, BackendRecord, Store};
use drydock_state::store::{default_path, upgrade, FormatError, StateError};
use drydock_state::{Entry, State};
use drydock_syntax::diag::{Diagnostic, Sources};

/// Where the state is; shared by every command that reads or writes it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StateArgs {
    /// A local state file, instead of the configuration's backend [default: the `backend`
    /// block's, else drydock.state.json in the configuration's directory].
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// The configuration's backend, the store it names, and its lock lease.
struct Located {
    store: Store,
    record: BackendRecord,
    lease: std::time::Duration,
    config_dir: PathBuf,
}

impl StateArgs {
    /// The store for the configuration at `config_path`: `--state` if given; else the
    /// configuration's `backend` block (the configuration is evaluated for it); else, with no
    /// configuration there at all, the default local file.
    fn locate(&self, config_path: &Path, style: Style) -> Result<Located, ExitCode> {
        let config_dir = drydock_session::config_dir(config_path);
        let has_config = config_path.is_file()
            || std::fs::read_dir(config_path)
                .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "kcl")))
                .unwrap_or(false);
        let model = if self.state.is_none() && has_config {
            let inputs = self.vars.inputs().map_err(|d| {
                report(&d, &Sources::new(), style);
                1
            })?;
            let loaded = drydock_config::load(config_path, &inputs);
            match loaded.model.filter(|_| loaded.diagnostics.is_empty()) {
                Some(m) => Some(m),
                None => {
                    report(&loaded.diagnostics, &loaded.sources, style);
                    return Err(1);
                }
            }
        } else {
            None
        };
        let backend = model.as_ref().and_then(|m| m.backend.as_ref());
        let (store, record) =
            backend::open(backend, config_path, &config_dir, self.state.as_deref(), &drydock_session::s3_objects)
                .map_err(|e| {
                    report(&[Diagnostic::global("state::backend", e)], &Sources::new(), style);
                    1
                })?;
        let lease = backend::lease(backend);
        Ok(Located { store, record, lease, config_dir })
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
    /// Print the whole state, as stored, on stdout (from the local file or S3).
    Pull {
        /// The configuration (a .kcl file or a directory), which names the backend.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Replace the state with FILE (`-` for stdin). Refused when FILE's lineage differs or its
    /// serial is not newer than the state's, unless --force.
    Push {
        /// A state file, as `state pull` prints it.
        file: PathBuf,
        /// The configuration (a .kcl file or a directory), which names the backend.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        /// Push another lineage or an older serial anyway (the serial written is then one past
        /// the state's, so it never goes backwards).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: super::run::LockArgs,
    },
    /// Rename a node group in the state (after renaming it in the configuration), keeping its
    /// cloud groups and their nodes: no node is replaced. Within one cluster.
    Mv {
        /// The node group's address now (`cluster.demo.node_group.web`).
        from: String,
        /// Its new address (`cluster.demo.node_group.frontend`).
        to: String,
        /// The configuration (a .kcl file or a directory), which locates the state file.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        lock: super::run::LockArgs,
    },
    /// Forget a node group (or a cluster and its node groups) without destroying anything: its
    /// groups keep running, unmanaged; drydock never changes or deletes them afterwards.
    Rm {
        /// A node group's or a cluster's address, from `drydock state list`.
        address: String,
        /// The configuration (a .kcl file or a directory), which locates the state file.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        lock: super::run::LockArgs,
    },
    /// Move the state to the backend the configuration names now (after its `backend` block
    /// changed), keeping its lineage and serial. The old copy is left where it was.
    Migrate {
        /// The configuration (a .kcl file or a directory), which names the new backend.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        /// Overwrite a state of another lineage at the destination.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: super::run::LockArgs,
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
    let (path, state) = match &command {
        StateCommand::List { path, state }
        | StateCommand::Show { path, state, .. }
        | StateCommand::Pull { path, state }
        | StateCommand::Push { path, state, .. }
        | StateCommand::Migrate { path, state, .. }
        | StateCommand::Mv { path, state, .. }
        | StateCommand::Rm { path, state, .. } => (path.clone(), state.clone()),
    };
    let at = match state.locate(&path, style) {
        Ok(at) => at,
        Err(code) => return code,
    };
    let rt = runtime();
    let result = match command {
        StateCommand::List { .. } => list(&at.store, &rt),
        StateCommand::Show { address, .. } => show(&at.store, &address, &rt),
        StateCommand::Pull { .. } => pull(&at.store, &rt),
        StateCommand::Push { file, force, lock, .. } => push(&at, &file, force, lock.lock_timeout, &rt),
        StateCommand::Migrate { force, lock, .. } => migrate(&at, &path, force, lock.lock_timeout, &rt),
        StateCommand::Mv { from, to, lock, .. } => edit(&at, "state mv", lock.lock_timeout, &rt, |s| {
            match s.move_node_group(&from, &to).map_err(|e| Diagnostic::global("state::mv", e))? {
                drydock_state::Moved::Moved => {
                    Ok(Some(format!("Moved {from} to {to}: its groups and nodes stay as they are.\n")))
                }
                drydock_state::Moved::Already => {
                    print_stdout(&format!("{to} is already in the state and {from} is not: nothing to move.\n"));
                    Ok(None)
                }
            }
        }),
        StateCommand::Rm { address, lock, .. } => edit(&at, "state rm", lock.lock_timeout, &rt, |s| {
            let gone = s.forget(&address).map_err(|e| Diagnostic::global("state::rm", e))?;
            Ok(Some(format!(
                "Removed {} from the state; {} groups keep running, unmanaged.\n",
                gone.join(", "),
                if gone.len() == 1 { "its" } else { "their" }
            )))
        }),
    };
    finish(result, style)
}

pub fn force_unlock(args: ForceUnlockArgs, style: Style) -> ExitCode {
    let at = match args.state.locate(&args.path, style) {
        Ok(at) => at,
        Err(code) => return code,
    };
    let rt = runtime();
    let result = confirm_and_unlock(&at.store, &args.id, args.force, &rt);
    finish(result, style)
}

fn pull(store: &Store, rt: &Runtime) -> Result<(), Diagnostic> {
    match rt.block_on(store.read_raw()).map_err(|e| state_error(store, e))? {
        Some(bytes) => {
            out!("{}", String::from_utf8_lossy(&bytes));
            Ok(())
        }
        None => Err(Diagnostic::global("state::no_state", format!("no state at {}", store.describe()))),
    }
}

/// Reads a state file given on the command line (`-`: stdin), any known format version.
fn read_state_file(file: &Path) -> Result<State, Diagnostic> {
    use drydock_state::store::{read_state_bytes, MAX_STATE_BYTES};
    let bytes = if file == Path::new("-") {
        let mut b = vec![];
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), MAX_STATE_BYTES + 1), &mut b)
            .map_err(|e| Diagnostic::global("state::io", format!("cannot read stdin: {e}")))?;
        if b.len() as u64 > MAX_STATE_BYTES {
            return Err(Diagnostic::global(
                "state::io",
                format!("cannot read stdin: it is larger than the limit of {} MiB", MAX_STATE_BYTES >> 20),
            ));
        }
        b
    } else {
        let cannot = |why: String| Diagnostic::global("state::io", format!("cannot read {}: {why}", file.display()));
        read_state_bytes(file)
            .map_err(|e| cannot(drydock_config::io_msg(&e)))?
            .ok_or_else(|| cannot("no such file or directory".into()))?
    };
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Diagnostic::global("state::corrupt", format!("{} is not valid json: {e}", file.display())))?;
    upgrade(value).map_err(|e| Diagnostic::global(e.code(), format!("{}: {e}", file.display())))
}

fn push(at: &Located, file: &Path, force: bool, timeout: std::time::Duration, rt: &Runtime) -> Result<(), Diagnostic> {
    let store = &at.store;
    let pushed = read_state_file(file)?;
    let lock = rt.block_on(store.lock("state push", at.lease, timeout)).map_err(|e| state_error(store, e))?;
    let result = push_locked(store, file, pushed, force, rt);
    release(lock, rt);
    result
}

/// Changes the state under its lock (`state mv`, `state rm`): `f` returns what to say, or
/// `None` when there is nothing to write. Refused while a run's journal is unsettled.
fn edit(
    at: &Located,
    what: &str,
    timeout: std::time::Duration,
    rt: &Runtime,
    f: impl FnOnce(&mut State) -> Result<Option<String>, Diagnostic>,
) -> Result<(), Diagnostic> {
    let store = &at.store;
    let lock = rt.block_on(store.lock(what, at.lease, timeout)).map_err(|e| state_error(store, e))?;
    let result = (|| {
        let mut state = rt
            .block_on(store.read())
            .map_err(|e| state_error(store, e))?
            .ok_or_else(|| Diagnostic::global("state::no_state", format!("no state at {}", store.describe())))?;
        if !state.journal.is_empty() {
            return Err(Diagnostic::global(
                "state::interrupted",
                "an apply was interrupted and its cloud calls are not settled yet: run `drydock apply` first",
            ));
        }
        let Some(message) = f(&mut state)? else { return Ok(()) };
        rt.block_on(store.write(&mut state)).map_err(|e| state_error(store, e))?;
        print_stdout(&message);
        Ok(())
    })();
    release(lock, rt);
    result
}

/// `state push` under the lock.
fn push_locked(store: &Store, file: &Path, mut pushed: State, force: bool, rt: &Runtime) -> Result<(), Diagnostic> {
    use drydock_state::moving::{self, Push, PushRefused};
    let current = rt.block_on(store.read()).map_err(|e| state_error(store, e))?;
    let refuse = |why: String| {
        Diagnostic::global("state::push_refused", format!("{why}; nothing was pushed"))
            .help("pass --force to push it anyway (the serial written is then one past the state's)")
    };
    match moving::push(current.as_ref(), &pushed, force) {
        Ok(Push::AlreadyThere { serial }) => {
            print_stdout(&format!(
                "{} is already the state at {} (serial {serial}); nothing to do.\n",
                file.display(),
                store.describe(),
            ));
            return Ok(());
        }
        Ok(Push::Write { serial }) => pushed.serial = serial,
        Err(PushRefused::OtherLineage { pushed, stored }) => {
            return Err(refuse(format!(
                "{} is of lineage {pushed}, the state at {} of lineage {stored}: it is another infrastructure's state",
                file.display(),
                store.describe(),
            )))
        }
        Err(PushRefused::Older { pushed, stored }) => {
            return Err(refuse(format!(
                "{} has serial {pushed}, the state at {} has serial {stored}: pushing it would go back in time",
                file.display(),
                store.describe(),
            )))
        }
        Err(PushRefused::SerialExhausted(serial)) => {
            return Err(state_error(store, StateError::SerialExhausted(serial)));
        }
    }
    rt.block_on(store.write_as_is(&pushed)).map_err(|e| state_error(store, e))?;
    print_stdout(&format!(
        "Pushed {} to {} (lineage {}, serial {}).\n",
        file.display(),
        store.describe(),
        pushed.lineage,
        pushed.serial
    ));
    Ok(())
}

/// Moves the state from the backend recorded for the directory (or the default local file)
/// to the one the configuration names now.
fn migrate(
    at: &Located,
    config_path: &Path,
    force: bool,
    timeout: std::time::Duration,
    rt: &Runtime,
) -> Result<(), Diagnostic> {
    let err = |msg: String| Diagnostic::global("state::migrate", msg);
    let from_record = match backend::read_record(&at.config_dir).map_err(err)? {
        Some(r) => r,
        None => {
            let local = default_path(config_path);
            if !local.exists() {
                return Err(err(format!(
                    "there is no state to migrate: no local state file {} and no record of another backend in {}",
                    local.display(),
                    backend::record_path(&at.config_dir).display()
                )));
            }
            BackendRecord::Local { path: PathBuf::from(local.file_name().unwrap_or_default()) }
        }
    };
    if from_record.same_place(&at.record) {
        print_stdout(&format!("The state is already in {}; nothing to migrate.\n", at.record.describe()));
        return Ok(());
    }
    let from = from_record.open(&at.config_dir, &drydock_session::s3_objects);
    let to = &at.store;
    let from_lock = rt.block_on(from.lock("state migrate", at.lease, timeout)).map_err(|e| state_error(&from, e))?;
    let to_lock = match rt.block_on(to.lock("state migrate", at.lease, timeout)) {
        Ok(l) => l,
        Err(e) => {
            release(from_lock, rt);
            return Err(state_error(to, e));
        }
    };
    let result = migrate_locked(at, &from, force, rt);
    release(to_lock, rt);
    release(from_lock, rt);
    result
}

/// `state migrate` under the locks of both stores.
fn migrate_locked(at: &Located, from: &Store, force: bool, rt: &Runtime) -> Result<(), Diagnostic> {
    let err = |msg: String| Diagnostic::global("state::migrate", msg);
    let to = &at.store;
    let Some(state) = rt.block_on(from.read()).map_err(|e| state_error(from, e))? else {
        return Err(err(format!("there is no state at {} to migrate", from.describe())));
    };
    use drydock_state::moving::{self, Migrate, MigrateRefused};
    let there = rt.block_on(to.read()).map_err(|e| state_error(to, e))?;
    match moving::migrate(&state, there.as_ref(), force) {
        Err(MigrateRefused::OtherLineage { lineage, serial }) => {
            return Err(err(format!(
                "{} already holds a state of another lineage ({lineage}, serial {serial}); nothing was moved",
                to.describe(),
            ))
            .help("pass --force to replace it with the migrated state"))
        }
        Err(MigrateRefused::SerialExhausted(serial)) => {
            return Err(state_error(to, StateError::SerialExhausted(serial)));
        }
        Ok(Migrate::Keep { there }) => {
            print_stdout(&format!(
                "{} already holds this state at serial {there} (the source is at {}); it is kept.\n",
                to.describe(),
                state.serial
            ));
        }
        Ok(Migrate::Write { serial }) => {
            let mut moved = state.clone();
            moved.serial = serial;
            rt.block_on(to.write_as_is(&moved)).map_err(|e| state_error(to, e))?;
        }
    }
    backend::write_record(&at.config_dir, &at.record).map_err(err)?;
    print_stdout(&format!(
        "Migrated the state (lineage {}, serial {}) from {} to {}.\nThe copy at {} is left as it was; remove it once you no longer need it.\n",
        state.lineage,
        state.serial,
        from.describe(),
        to.describe(),
        from.describe()
    ));
    Ok(())
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
fn state_error(store: &Store, e: StateError) -> Diagnostic {
    let damaged = match &e {
        StateError::Corrupt { .. } => true,
        StateError::InvalidFile { source, .. } => !matches!(source, FormatError::Newer { .. }),
        _ => false,
    };
    let d = Diagnostic::global(e.code(), e.to_string());
    match store.backup_path() {
        Some(backup) if damaged && backup.is_file() => {
            d.help(format!("the version before the last write is in {}", backup.display()))
        }
        _ => d,
    }
}

fn list(store: &Store, rt: &Runtime) -> Result<(), Diagnostic> {
    let Some(state) = rt.block_on(store.read()).map_err(|e| state_error(store, e))? else {
        errln!("note: no state file at {}; nothing has been applied with it yet", store.describe());
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

fn show(store: &Store, address: &str, rt: &Runtime) -> Result<(), Diagnostic> {
    let Some(state) = rt.block_on(store.read()).map_err(|e| state_error(store, e))? else {
        return Err(Diagnostic::global("state::no_state", format!("no state file at {}", store.describe()))
            .help("pass --state FILE if the state is kept elsewhere"));
    };
    let Some(entry) = state.entry(address) else {
        return Err(unknown_address(&state, address, &store.describe()));
    };
    let value = entry_json(entry).map_err(|e| state_error(store, StateError::Serialize(e)))?;
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| state_error(store, StateError::Serialize(e)))?;
    text.push('\n');
    print_stdout(&text);
    Ok(())
}

fn unknown_address(state: &State, address: &str, at: &str) -> Diagnostic {
    let addresses = state.addresses();
    let d = Diagnostic::global("state::unknown_address", format!("no `{address}` in the state file {at}"));
    match drydock_syntax::diag::did_you_mean(address, addresses.iter().map(String::as_str)) {
        Some(best) => d.help(format!("did you mean `{best}`?")),
        None => d.help("`drydock state list` shows every address"),
    }
}

/// What `state show` prints for an entry: a cluster lists its node groups' addresses only
/// (each has its own entry), and a sensitive output's value is withheld.
fn entry_json(entry: Entry<'_>) -> Result<Value, serde_json::Error> {
    use drydock_state::format;
    Ok(match entry {
        Entry::Cluster(cluster) => format::cluster_json(cluster),
        Entry::NodeGroup { node_group, .. } => format::node_group_json(node_group),
        Entry::Output(output) => {
            let mut value = format::output_json(output);
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
    out!("{text}");
}

fn confirm_and_unlock(store: &Store, id: &str, force: bool, rt: &Runtime) -> Result<(), Diagnostic> {
    // Check the id before asking, so that a typo is not confirmed first and refused after.
    let Some(info) = rt.block_on(store.lock_info()).map_err(|e| state_error(store, e))? else {
        return Err(state_error(store, StateError::NotLocked { path: store.describe().into() }));
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
        errln!(
            "the state {} is locked by {} (pid {} on {}) for {} since {}.\n\
             if that run is still going, unlocking lets another run change the same node groups at once.\n\
             only 'yes' will be accepted to confirm.\n",
            store.describe(),
            info.who,
            info.pid,
            info.host,
            info.operation,
            info.created,
        );
        err!("force-unlock {id}? ");
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
            return Err(Diagnostic::global("state::confirm", "force-unlock cancelled; the lock is still held"));
        }
    }
    rt.block_on(store.force_unlock(id)).map_err(|e| state_error(store, e))?;
    print_stdout(&format!("The lock {id} on {} was cleared.\n", store.describe()));
    Ok(())
}
