//! The command line: the only part that knows about flags, the terminal and exit codes.
//! Flags are parsed without I/O first ([`Cli`]); each command then builds what it needs.
//!
//! Output goes through [`out!`]/[`outln!`] and [`err!`]/[`errln!`], never `print!`: a closed
//! or full stdout or stderr (`drydock plan | head -1`, `> /dev/full`) must not panic. A
//! write that fails is dropped and remembered; a read-only command then ends with exit code 1
//! (its output did not all arrive), while `apply`, `destroy` and `watch` carry on without
//! printing — a rollout is never left half-done because a pipe closed — and end with the
//! exit code of what they did.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a write to stdout / stderr failed (the stream was closed or full).
static STDOUT_LOST: AtomicBool = AtomicBool::new(false);
static STDERR_LOST: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; a failure is remembered, never a panic.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    if o.write_fmt(args).and_then(|()| o.flush()).is_err() {
        STDOUT_LOST.store(true, Ordering::SeqCst);
    }
}

/// Writes to stderr; a failure is remembered, never a panic.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut e = std::io::stderr().lock();
    if e.write_fmt(args).and_then(|()| e.flush()).is_err() {
        STDERR_LOST.store(true, Ordering::SeqCst);
    }
}

/// Whether some output was lost because stdout or stderr was closed or full.
pub fn output_lost() -> bool {
    STDOUT_LOST.load(Ordering::SeqCst) || STDERR_LOST.load(Ordering::SeqCst)
}

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}
/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::cli::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::write_err(format_args!($($arg)*)) };
}
/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::cli::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}

mod events;
mod fmt;
mod graph;
mod import;
mod info;
mod output;
mod rollout;
mod run;
mod sim;
mod state;
mod validate;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use drydock_config::Inputs;
use drydock_syntax::diag::{Diagnostic, Sources};

#[derive(Parser, Debug)]
#[command(name = "drydock", version, about = "Plan and apply immutable node groups for Kubernetes clusters")]
pub struct Cli {
    /// When to use colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// No colour: the same as --color never (and wins over --color).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How `plan` and `show` print a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Text for a terminal (coloured there).
    #[default]
    Human,
    /// A pull-request comment, always under 65,000 characters.
    Markdown,
    /// The versioned JSON of docs/json-format.md.
    Json,
}

impl From<OutputFormat> for drydock_render::Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Human => drydock_render::Format::Human,
            OutputFormat::Markdown => drydock_render::Format::Markdown,
            OutputFormat::Json => drydock_render::Format::Json,
        }
    }
}

/// Variable values, shared by every command that evaluates the configuration.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: --var NAME=VALUE (repeatable; wins over var files and DRYDOCK_VAR_NAME).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a .kclvars file of `name = value` lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a configuration: syntax, references, types and the schema of every block.
    Validate {
        /// A .kcl file, or a directory of them.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Rewrite .kcl files in the canonical layout.
    Fmt {
        /// A .kcl file, or a directory of them.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Change nothing; exit 1 and name the files that are not formatted.
        #[arg(long)]
        check: bool,
        /// Show the changes as a unified diff (and change nothing).
        #[arg(long)]
        diff: bool,
        /// Also format the .kcl files of every subdirectory (hidden ones skipped).
        #[arg(long, short = 'r')]
        recursive: bool,
    },
    /// Serve the Language Server Protocol on stdin and stdout, for editors: diagnostics as
    /// you type, formatting, completion, hover, go to definition, references, outline.
    Lsp {
        /// Accepted and ignored: stdio is the only transport (editors pass it).
        #[arg(long)]
        stdio: bool,
    },
    /// Show what apply would change: which node groups are created, rolled out (wave by
    /// wave, with the capacity kept), updated in place or destroyed.
    Plan {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        run: run::RunArgs,
        /// Plan the destruction of every node group the configuration manages (what `drydock
        /// destroy` would do), to review it or save it with --out and apply it later.
        #[arg(long)]
        destroy: bool,
        /// Save the plan, to apply exactly it later with `drydock apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Exit 0 when there are no changes, 2 when there are, 1 on an error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Print (on stderr) how many cloud API calls observing the node groups took, and how long.
        #[arg(long)]
        stats: bool,
    },
    /// Carry out the changes: a configuration (planned now, then confirmed) or a saved plan.
    Apply {
        /// A configuration (file or directory) or a plan saved with `plan --out`.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        run: run::RunArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How many node groups change at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        parallelism: u16,
        /// Stream what happens as JSON, one event per line (docs/events.md); needs
        /// --auto-approve or a saved plan.
        #[arg(long)]
        json: bool,
    },
    /// Delete every node group the configuration manages.
    Destroy {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        run: run::RunArgs,
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        parallelism: u16,
        /// Stream what happens as JSON, one event per line (docs/events.md); needs
        /// --auto-approve.
        #[arg(long)]
        json: bool,
    },
    /// Keep reconciling: repair drift and unhealthy nodes back to what was applied.
    Watch(watch::WatchArgs),
    /// Show a saved plan, as `plan` showed it (the same bytes in the same format).
    Show {
        planfile: PathBuf,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Inspect the state: what drydock has applied.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Adopt node groups that run under another state's lineage (a lost state file, or
    /// another state pushed over this one) into this state, without changing the cloud or
    /// replacing a node. The state must manage no node group yet.
    Import {
        /// The configuration (a .kcl file or a directory).
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
        /// The state file (default: drydock.state.json beside the configuration).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[command(flatten)]
        lock: run::LockArgs,
        /// The lineage to adopt, when the configured clusters' groups carry several.
        #[arg(long, value_name = "LINEAGE")]
        lineage: Option<String>,
    },
    /// Clear a state lock whose holder cannot release it, by the id the lock error gave.
    ForceUnlock(state::ForceUnlockArgs),
    /// A node group's rollouts: the generations it ran (`history`), and going back to one
    /// (`undo`), as `kubectl rollout` does.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Look at and break the simulated cloud of a configuration.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Print drydock's version, the state and plan format versions, and the providers and
    /// backends it knows.
    Version(info::VersionArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(info::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(info::ManArgs),
    /// Show the outputs the last apply recorded: all of them, or one.
    Output(output::OutputArgs),
    /// Show the plan's changes as the dependency graph the executor runs (Graphviz dot or
    /// an indented list).
    Graph(graph::GraphArgs),
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// List the simulated groups and instances.
    Status {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Make instances fail: some of a node group, one instance, or a whole zone.
    Fail {
        path: PathBuf,
        #[arg(long, conflicts_with_all = ["instance", "zone"], required_unless_present_any = ["instance", "zone"])]
        node_group: Option<String>,
        /// Only in this cluster (its name or `name["key"]`).
        #[arg(long, requires = "node_group")]
        cluster: Option<String>,
        #[arg(long, default_value_t = 1, requires = "node_group", value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        #[arg(long, conflicts_with = "zone")]
        instance: Option<String>,
        /// Fail every instance in the zone and keep it down until `sim restore-zone`.
        #[arg(long)]
        zone: Option<String>,
        /// Stop the kubelet instead (with --instance, or --node-group and --count): the Node
        /// goes Ready=Unknown while its instance keeps running and passing the cloud's checks;
        /// an instance whose Node has not registered yet never registers.
        #[arg(long, conflicts_with = "zone")]
        kubelet: bool,
        /// Fail this long from now on the simulated cloud's clock (`30s`, `2m`), whatever runs
        /// meanwhile (an apply in the middle of a rollout); what fails is chosen then.
        #[arg(long, value_name = "DURATION", value_parser = parse_after)]
        after: Option<u64>,
    },
    /// Bring a failed zone back.
    RestoreZone { path: PathBuf, zone: String },
    /// Serve the simulated Kubernetes API of every cluster (on loopback) until Ctrl-C, with a
    /// kubeconfig in `.drydock/sim-kubeconfig` (one context `sim-CLUSTER` per cluster).
    Serve {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Move the simulated cloud's virtual clock forward (`DRYDOCK_SIM_CLOCK=virtual`), as if
    /// that much time passed: boots finish, the cloud replaces what it detects, timeouts run.
    Advance {
        path: PathBuf,
        #[arg(value_name = "DURATION", value_parser = parse_after)]
        duration: u64,
    },
    /// Print the capacity timeline: per node group over time, healthy, running and total
    /// instances (JSON lines).
    Timeline {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
}

fn parse_after(s: &str) -> Result<u64, String> {
    drydock_syntax::parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 30s or 2m"))
}

/// What a command ended with; `main` turns it into the process's exit code.
pub type ExitCode = i32;

/// Output settings resolved once from flags and the environment.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour on stderr: `--color`, then `NO_COLOR`, then whether stderr is a terminal.
    pub fn for_stderr(choice: ColorChoice) -> Style {
        Style { color: use_color(choice, std::io::stderr().is_terminal()) }
    }

    /// Colour on stdout, by the same rules.
    pub fn for_stdout(choice: ColorChoice) -> Style {
        Style { color: use_color(choice, std::io::stdout().is_terminal()) }
    }
}

fn use_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal,
    }
}

impl VarArgs {
    /// Splits `NAME=VALUE` pairs; a malformed one is a diagnostic.
    pub fn inputs(&self) -> Result<Inputs, Vec<Diagnostic>> {
        let mut vars = vec![];
        let mut errors = vec![];
        for v in &self.vars {
            match v.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    vars.push((name.trim().to_string(), value.to_string()))
                }
                _ => errors.push(
                    Diagnostic::global("kcl::invalid_var", format!("--var {v:?} is not NAME=VALUE"))
                        .help("write --var worker_image=img-2026-12"),
                ),
            }
        }
        if errors.is_empty() {
            Ok(Inputs::with_process_env(vars, self.var_files.clone()))
        } else {
            Err(errors)
        }
    }
}

pub fn report(diags: &[Diagnostic], sources: &Sources, style: Style) {
    let errors = diags.len();
    err!("{}", drydock_render::diag::render(diags, sources, style.color));
    if errors > 1 {
        errln!("{errors} errors");
    }
}

pub fn run(cli: Cli) -> ExitCode {
    // Commands that change the cloud finish what they do whatever happens to their output.
    let acts = matches!(cli.command, Command::Apply { .. } | Command::Destroy { .. } | Command::Watch(_));
    let code = dispatch(cli);
    if code == 0 && !acts && output_lost() {
        1
    } else {
        code
    }
}

fn dispatch(cli: Cli) -> ExitCode {
    let choice = if cli.no_color { ColorChoice::Never } else { cli.color };
    let style = Style::for_stderr(choice);
    match cli.command {
        Command::Validate { path, vars } => validate::run(&path, &vars, style),
        Command::Lsp { stdio: _ } => drydock_lsp::run_stdio(),
        Command::Plan { path, run, destroy, out, format, detailed_exitcode, stats } => {
            let print = run::Print { format: format.into(), color: Style::for_stdout(choice).color };
            run::plan_cmd(&path, &run, destroy, out.as_deref(), print, detailed_exitcode, stats, style)
        }
        Command::Apply { path, run, auto_approve, parallelism, json } => {
            run::apply_cmd(&path, &run, auto_approve, usize::from(parallelism), false, json, style)
        }
        Command::Destroy { path, run, auto_approve, parallelism, json } => {
            run::apply_cmd(&path, &run, auto_approve, usize::from(parallelism), true, json, style)
        }
        Command::Import { path, vars, state, lock, lineage } => {
            let run = run::RunArgs { vars, state, lock, refresh: true, ..Default::default() };
            import::import_cmd(&path, &run, lineage.as_deref(), style)
        }
        Command::Show { planfile, format } => {
            run::show_cmd(&planfile, run::Print { format: format.into(), color: Style::for_stdout(choice).color })
        }
        Command::Watch(args) => watch::watch_cmd(&args, style),
        Command::Sim { command } => match command {
            SimCommand::Status { path, json } => sim::status(&path, json),
            SimCommand::Fail { path, node_group, cluster, count, instance, zone, kubelet, after } => {
                let target = match (node_group, instance, zone) {
                    (node_group, instance, None) if kubelet => {
                        drydock_sim::FailTarget::Kubelet { instance, cluster, node_group, count }
                    }
                    (Some(node_group), _, _) => drydock_sim::FailTarget::NodeGroup { cluster, node_group, count },
                    (_, Some(id), _) => drydock_sim::FailTarget::Instance(id),
                    (_, _, Some(z)) => drydock_sim::FailTarget::Zone(z),
                    // clap's required group makes this impossible; an error all the same.
                    _ => {
                        errln!("error: name what fails: --node-group, --instance or --zone");
                        return 1;
                    }
                };
                sim::fail(&path, target, after)
            }
            SimCommand::RestoreZone { path, zone } => sim::restore_zone(&path, &zone),
            SimCommand::Serve { path } => sim::serve(&path),
            SimCommand::Advance { path, duration } => sim::advance(&path, duration),
            SimCommand::Timeline { path } => sim::timeline(&path),
        },
        Command::Fmt { path, check, diff, recursive } => {
            fmt::run(&path, fmt::Options { check, diff, recursive }, style)
        }
        Command::State(command) => state::run(command, style),
        Command::ForceUnlock(args) => state::force_unlock(args, style),
        Command::Rollout(command) => rollout::run(command, choice, style),
        Command::Version(args) => info::version(&args),
        Command::Completions(args) => info::completions(&args),
        Command::Man(args) => info::man(&args),
        Command::Output(args) => output::run(&args, style),
        Command::Graph(args) => graph::run(&args, style),
    }
}
