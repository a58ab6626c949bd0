//! `version`, `completions` and `man`: what this drydock is and knows, and its command line
//! described for shells and for `man`. Completions and man pages are generated from the same
//! clap definitions the command line is parsed with ([`super::Cli`]), so they never drift
//! from it.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use serde_json::json;

use super::{Cli, ExitCode};

// Flags of `drydock version` (its help text is the `Command::Version` variant's).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "JSON keys: drydock_version (string), state_format_version (number), \
plan_file_format_version (number: the saved plan of `plan --out`), plan_json_format_version (string: \
`plan --format json`), providers and backends (lists of the `provider` and `backend` block kinds).")]
pub struct VersionArgs {
    /// One JSON object (keys documented in docs/commands.md).
    #[arg(long)]
    pub json: bool,
}

// Flags of `drydock completions`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Install, for example:\n  \
bash:  drydock completions bash > ~/.local/share/bash-completion/completions/drydock\n  \
zsh:   drydock completions zsh > ~/.zfunc/_drydock   (with fpath+=~/.zfunc before compinit)\n  \
fish:  drydock completions fish > ~/.config/fish/completions/drydock.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

// Flags of `drydock man`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Read it at once with `drydock man | man -l -`. With --out, the pages are \
drydock.1, drydock-plan.1, drydock-state-list.1 and so on, one per command and subcommand, as \
packagers install them (into share/man/man1).")]
pub struct ManArgs {
    /// Write one page per command and subcommand into this directory (created if missing)
    /// instead of printing drydock.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The `provider` block kinds the configuration accepts (and so the providers this build has).
fn providers() -> &'static [&'static str] {
    drydock_config::schema::PROVIDER_KINDS
}

/// The `backend` block kinds the configuration accepts.
fn backends() -> &'static [&'static str] {
    drydock_config::schema::BACKEND_KINDS
}

/// What `version --json` prints: the keys docs/commands.md documents.
fn version_json() -> serde_json::Value {
    json!({
        "drydock_version": env!("CARGO_PKG_VERSION"),
        "state_format_version": drydock_state::FORMAT_VERSION,
        "plan_file_format_version": drydock_plan::PLAN_FORMAT_VERSION,
        "plan_json_format_version": drydock_render::json::JSON_FORMAT_VERSION,
        "providers": providers(),
        "backends": backends(),
    })
}

pub fn version(args: &VersionArgs) -> ExitCode {
    if args.json {
        let text = serde_json::to_string_pretty(&version_json()).unwrap_or_else(|_| "null".into());
        outln!("{text}");
    } else {
        outln!("drydock {}", env!("CARGO_PKG_VERSION"));
        outln!("state format:       {}", drydock_state::FORMAT_VERSION);
        outln!("saved plan format:  {} (plan --out)", drydock_plan::PLAN_FORMAT_VERSION);
        outln!("JSON plan format:   {} (plan --format json)", drydock_render::json::JSON_FORMAT_VERSION);
        outln!("providers:          {}", providers().join(", "));
        outln!("backends:           {}", backends().join(", "));
    }
    0
}

pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut cmd = Cli::command();
    // Into memory first: the generators panic on a failed write, and stdout may be closed.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "drydock", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    0
}

pub fn man(args: &ManArgs) -> ExitCode {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match &args.out {
        None => match render(&cmd) {
            Ok(page) => {
                out!("{}", String::from_utf8_lossy(&page));
                0
            }
            Err(e) => super::run::fail(format!("cannot render the man page: {e}")),
        },
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return super::run::fail(format!("cannot create {}: {e}", dir.display()));
            }
            let mut written = vec![];
            if let Err(e) = write_pages(&cmd, dir, &mut written) {
                return super::run::fail(e);
            }
            for path in written {
                outln!("{}", path.display());
            }
            0
        }
    }
}

/// One command's page as roff.
fn render(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).manual("drydock manual").render(&mut page)?;
    Ok(page)
}

/// Writes the page of `cmd` and of each of its (visible) subcommands, depth first, into
/// `dir`, recording each path written.
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), String> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let page = render(cmd).map_err(|e| format!("cannot render {}: {e}", path.display()))?;
    std::fs::write(&path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
