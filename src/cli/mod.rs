//! The command line: the only part that knows about flags, the terminal and exit codes.
//! Flags are parsed without I/O first ([`Cli`]); each command then builds what it needs.

mod fmt;
mod state;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Inputs;
use crate::diag::{self, Diagnostic, Sources};

#[derive(Parser, Debug)]
#[command(name = "drydock", version, about = "Plan and apply immutable node groups for Kubernetes clusters")]
pub struct Cli {
    /// When to use colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
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
    /// Inspect the state: what drydock has applied.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Clear a state lock whose holder cannot release it, by the id the lock error gave.
    ForceUnlock(state::ForceUnlockArgs),
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
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
            }
        };
        Style { color }
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
    eprint!("{}", diag::render(diags, sources, style.color));
    if errors > 1 {
        eprintln!("{errors} errors");
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let style = Style::for_stderr(cli.color);
    match cli.command {
        Command::Validate { path, vars } => validate::run(&path, &vars, style),
        Command::Fmt { path, check, diff, recursive } => {
            fmt::run(&path, fmt::Options { check, diff, recursive }, style)
        }
        Command::State(command) => state::run(command, style),
        Command::ForceUnlock(args) => state::force_unlock(args, style),
    }
}
