//! `plan`, `apply`, `destroy` and `show`: load the configuration and the state, observe
//! the cloud, plan, confirm, and run the executor.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::events::{JsonProgress, Stream};
use super::{report, ExitCode, Style, VarArgs};
use drydock_apply::{ApplyError, Executor, Ledger, Progress};
use drydock_plan::Plan;
use drydock_render as render;
use drydock_session::kubernetes::Kubes;
use drydock_session::saved::{check_saved, is_plan_file, make_again, read_plan};
use drydock_session::{self as session, Providers, Workspace};
use drydock_state::backend::Lock;
use drydock_state::State;
use drydock_syntax::diag::Sources;

/// Options shared by plan, apply and destroy.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// The state file (default: drydock.state.json beside the configuration).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// `--refresh=false`: plan from the state alone, without asking the cloud (no drift is
    /// seen, instance ids are not known, and an unpinned desired capacity is taken as `min`).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Plan only this node group or cluster (and what it depends on: a worker group's
    /// control plane); repeatable. For exceptional situations: the rest is neither changed
    /// nor checked, and the plan warns so.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Roll this node group (or every node group of this cluster) out onto a new generation
    /// of the same spec — an image rebuilt under the same name, or every node refreshed —
    /// with the usual waves, floor and drains; repeatable.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Change nothing in the cloud: show what changed there outside drydock (plan), or
    /// write it into the state (apply), as Terraform's refresh-only mode.
    #[arg(long)]
    pub refresh_only: bool,
    /// Set by `drydock rollout undo`, not a flag.
    #[arg(skip)]
    pub undo: Option<session::UndoRequest>,
}

/// `--lock-timeout`, for every command that takes the state lock.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LockArgs {
    /// How long to wait for a state lock someone else holds (`30s`, `5m`) before failing; a
    /// lock whose lease ended meanwhile is taken over.
    #[arg(long, value_name = "DURATION", default_value = "0s", env = "DRYDOCK_LOCK_TIMEOUT", value_parser = parse_timeout)]
    pub lock_timeout: std::time::Duration,
}

/// `--lock-timeout`: a duration like the language's (`90s`, `5m`, `0s`).
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    drydock_syntax::parse_duration(s)
        .filter(|_| !s.is_empty())
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is not a duration (like 30s, 5m or 0s)"))
}

/// How `plan` and `show` print a plan: the format, and colour (human format only).
#[derive(Clone, Copy, Debug)]
pub struct Print {
    pub format: render::Format,
    pub color: bool,
}

/// Takes the state lock of a workspace for `what` on `rt` (a remote lock's lease is renewed
/// there), printing what it found of a dead holder. Give it back with [`release`].
pub(super) fn lock(ws: &Workspace, what: &str, rt: &tokio::runtime::Runtime) -> Result<Lock, String> {
    let locked = rt.block_on(ws.lock(what))?;
    if let Some(note) = &locked.note {
        errln!("{note}");
    }
    Ok(locked.lock)
}

/// Gives a state lock back at the end of a command; a failure is a warning (the command's
/// work is done), with what becomes of the lock.
pub(super) fn release(lock: Lock, rt: &tokio::runtime::Runtime) {
    let remote = lock.is_remote();
    if let Err(e) = rt.block_on(lock.release()) {
        if remote {
            errln!("warning: the state lock was not released ({e}); its lease ends by itself");
        } else {
            errln!("warning: the state lock was not released ({e}); it is freed when this process exits");
        }
    }
}

/// [`fail`], with the error in a JSON stream's summary too.
fn fail_in(stream: &Stream, msg: impl std::fmt::Display) -> ExitCode {
    stream.error(&msg.to_string());
    fail(msg)
}

pub(super) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    errln!("error: {msg}");
    1
}

/// Loads the workspace at `path` with the run's flags; a configuration with errors is
/// reported (exit 1).
pub(super) fn load(path: &Path, args: &RunArgs, style: Style) -> Result<Workspace, ExitCode> {
    let inputs = args.vars.inputs().map_err(|d| {
        report(&d, &Sources::new(), style);
        1
    })?;
    load_with(path, args, inputs, style, None)
}

/// [`load`] with these variable inputs (a saved plan's); a JSON stream also gets the
/// configuration's errors, for its `summary`.
fn load_with(
    path: &Path,
    args: &RunArgs,
    inputs: drydock_config::Inputs,
    style: Style,
    stream: Option<&Stream>,
) -> Result<Workspace, ExitCode> {
    let options = session::LoadOptions {
        inputs,
        state_override: args.state.clone(),
        lock_timeout: args.lock.lock_timeout,
        refresh: args.refresh,
        targets: args.targets.clone(),
        replace: args.replace.clone(),
        undo: args.undo.clone(),
    };
    session::load(path, &options).map_err(|e| match e {
        session::LoadError::Config(loaded) => {
            report(&loaded.diagnostics, &loaded.sources, style);
            for d in stream.iter().flat_map(|s| loaded.diagnostics.iter().map(move |d| (s, d))) {
                d.0.error(&format!("{}: {}", d.1.code, d.1.message));
            }
            1
        }
        session::LoadError::Backend(e) => match stream {
            Some(s) => fail_in(s, e),
            None => fail(e),
        },
    })
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// Plans the workspace on `rt`.
pub(super) fn make_plan(
    ws: &Workspace,
    state: Option<&State>,
    destroy: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<(Plan, Providers, Kubes, session::kubernetes::Etcds), String> {
    rt.block_on(session::make_plan(ws, state, destroy)).map(|p| (p.plan, p.providers, p.kubernetes, p.etcd))
}

/// Plans and prints the plan. stdout gets the rendering alone, byte for byte what `show`
/// prints for the saved plan, so it can be piped into a comment or `jq`; the note about a
/// saved plan goes to stderr. With `detailed_exitcode`, a plan with changes exits 2.
#[allow(clippy::too_many_arguments)]
pub fn plan_cmd(
    path: &Path,
    args: &RunArgs,
    destroy: bool,
    out: Option<&Path>,
    print: Print,
    detailed_exitcode: bool,
    stats: bool,
    style: Style,
) -> ExitCode {
    let ws = match load(path, args, style) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let rt = runtime();
    let state = match rt.block_on(ws.store.read()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let started = std::time::Instant::now();
    let made = if args.refresh_only {
        if destroy {
            return fail("--refresh-only changes nothing; --destroy removes everything: use one or the other");
        }
        rt.block_on(session::make_refresh_plan(&ws, state.as_ref())).map(|(plan, _, providers)| (plan, providers))
    } else {
        make_plan(&ws, state.as_ref(), destroy, &rt).map(|(plan, providers, _, _)| (plan, providers))
    };
    let (plan, providers) = match made {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if stats {
        // On stderr: stdout carries the plan alone.
        let calls: u64 = providers.values().map(|p| p.stats().total()).sum();
        let groups = ws.model.node_group_count();
        errln!(
            "Refreshed {groups} node {} with {calls} API {} in {:.1} s.",
            if groups == 1 { "group" } else { "groups" },
            if calls == 1 { "call" } else { "calls" },
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(out) = out {
        let json = serde_json::to_string_pretty(&plan).expect("a plan serialises");
        // A saved plan holds what the executor needs, secrets included: created 0600.
        if let Err(e) = drydock_fsutil::write_atomically(out, (json + "\n").as_bytes(), 0o600) {
            return fail(e);
        }
    }
    out!("{}", render::render(&plan, print.format, print.color));
    if let Some(out) = out {
        errln!("\nSaved the plan to {}. Apply it with: drydock apply {}", out.display(), out.display());
    }
    if detailed_exitcode && (!plan.is_empty() || !plan.drift.is_empty()) {
        2
    } else {
        0
    }
}

pub fn show_cmd(planfile: &Path, print: Print) -> ExitCode {
    match read_plan(planfile) {
        Ok(plan) => {
            out!("{}", render::render(&plan, print.format, print.color));
            0
        }
        Err(e) => fail(e),
    }
}

/// Progress as plain lines: for pipes, files and CI logs.
pub(super) struct Lines;
impl Progress for Lines {
    fn line(&self, text: &str) {
        outln!("{text}");
    }
}

/// Progress on a terminal: a spinner per node group showing its latest step; finished
/// steps and errors scroll above them.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<BTreeMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars { multi: indicatif::MultiProgress::new(), bars: std::sync::Mutex::new(BTreeMap::new()) }
    }

    fn finish(&self) {
        for bar in self.bars.lock().unwrap_or_else(|e| e.into_inner()).values() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn line(&self, text: &str) {
        let Some((address, step)) = text.split_once(": ").filter(|(a, _)| a.starts_with("cluster.")) else {
            let _ = self.multi.println(text);
            return;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(address.to_string()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(address.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        // Steps that complete a change stay on screen; the others replace each other.
        if step.starts_with("rolled out")
            || step.ends_with("healthy")
            || step.starts_with("updated")
            || step == "deleted"
        {
            let _ = self.multi.println(text);
        }
        bar.set_message(step.to_string());
    }
}

fn confirm(auto_approve: bool, what: &str) -> Result<bool, String> {
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!("{what} needs --auto-approve when not run from a terminal"));
    }
    out!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}

/// `apply` and `destroy`; with `json`, the run is a stream of JSON events on stdout
/// (`events.rs`), whose last is the `summary`.
pub fn apply_cmd(
    path: &Path,
    args: &RunArgs,
    auto_approve: bool,
    parallelism: usize,
    destroy: bool,
    json: bool,
    style: Style,
) -> ExitCode {
    let stream = Stream::new(json);
    let code = apply_inner(path, args, auto_approve, parallelism, destroy, &stream, style);
    stream.summary(if destroy { "destroy" } else { "apply" }, code);
    code
}

fn apply_inner(
    path: &Path,
    args: &RunArgs,
    auto_approve: bool,
    parallelism: usize,
    destroy: bool,
    stream: &Stream,
    style: Style,
) -> ExitCode {
    let what = if destroy { "destroy" } else { "apply" };
    // A prompt has no place in a stream of events, as with `terraform apply -json`.
    if stream.json && !auto_approve && !is_plan_file(path) {
        return fail_in(
            stream,
            format!("{what} --json needs --auto-approve (or a saved plan): it cannot ask for confirmation"),
        );
    }
    // A saved plan: apply exactly it, if nothing changed since.
    let (ws_path, saved) = if !destroy && is_plan_file(path) {
        if !args.vars.vars.is_empty() || !args.vars.var_files.is_empty() {
            // As Terraform does: a saved plan applies the values it was made with.
            return fail_in(stream, format!(
                "--var and --var-file cannot be used with a saved plan: {} applies the values it was made with; give them to `drydock plan --out` instead",
                path.display()
            ));
        }
        match read_plan(path) {
            Ok(p) => (PathBuf::from(&p.config_path), Some(p)),
            Err(e) => return fail_in(stream, e),
        }
    } else {
        (path.to_path_buf(), None)
    };
    // A saved plan is applied with the variable values it was made with.
    let loaded = match &saved {
        Some(p) => {
            let inputs = drydock_config::Inputs {
                vars: p.options.vars.clone(),
                var_files: p.options.var_files.clone(),
                env: p.options.env.clone(),
                ..Default::default()
            };
            load_with(&ws_path, args, inputs, style, Some(stream))
        }
        None => match args.vars.inputs() {
            Ok(inputs) => load_with(&ws_path, args, inputs, style, Some(stream)),
            Err(d) => {
                report(&d, &Sources::new(), style);
                for d in &d {
                    stream.error(&format!("{}: {}", d.code, d.message));
                }
                Err(1)
            }
        },
    };
    let mut ws = match loaded {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    if args.refresh_only || saved.as_ref().is_some_and(|p| p.refresh_only) {
        if destroy {
            return fail_in(stream, "--refresh-only changes nothing; destroy removes everything: use one or the other");
        }
        return refresh_apply(&ws, saved.as_ref(), auto_approve, stream);
    }
    let rt = runtime();
    let lock = match lock(&ws, what, &rt) {
        Ok(l) => l,
        Err(e) => return fail_in(stream, e),
    };
    // Everything under the lock; it is given back whatever the outcome.
    // The run's ledger, whose journal is folded into the state when the run ends.
    let mut ledger_used: Option<Arc<Ledger>> = None;
    let code = 'locked: {
        let mut state = match rt.block_on(ws.store.read()) {
            Ok(s) => s,
            Err(e) => break 'locked fail_in(stream, e),
        };
        if let Some(s) = &mut state {
            if !s.journal.is_empty() {
                stream.say(&format!(
                    "{} interrupted by an earlier run; the cloud is observed to settle {}.",
                    if s.journal.len() == 1 {
                        "1 operation was".to_string()
                    } else {
                        format!("{} operations were", s.journal.len())
                    },
                    if s.journal.len() == 1 { "it" } else { "them" }
                ));
                s.journal.clear();
                if let Err(e) = rt.block_on(ws.store.write(s)) {
                    break 'locked fail_in(stream, e);
                }
            }
        }
        let (plan, providers, kubes, etcds) = match &saved {
            Some(p) => {
                if let Err(e) = check_saved(p, &ws, state.as_ref()) {
                    break 'locked fail_in(stream, e);
                }
                // Made again and compared: a saved plan applies exactly what it shows.
                match rt.block_on(make_again(p, &mut ws, state.as_ref())) {
                    Ok(made) => (p.clone(), made.providers, made.kubernetes, made.etcd),
                    Err(e) => break 'locked fail_in(stream, e),
                }
            }
            None => match make_plan(&ws, state.as_ref(), destroy, &rt) {
                Ok(p) => p,
                Err(e) => break 'locked fail_in(stream, e),
            },
        };
        if stream.json {
            planned(stream, &plan);
        } else {
            out!("{}", render::plan_text(&plan));
        }
        if plan.is_empty() {
            // Nothing to change, but the outputs are brought up to date (as after any apply).
            // (A journal left by an interrupted run is folded into the state all the same.)
            if let Some(mut state) = state {
                // `moved` blocks are made in the state even when nothing else changes.
                match session::apply_moves(&ws.model, &mut state) {
                    Ok(moved) if !moved.is_empty() => {
                        if let Err(e) = rt.block_on(ws.store.write(&mut state)) {
                            break 'locked fail_in(stream, e);
                        }
                        for m in moved {
                            stream.say(&format!("{m}."));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break 'locked fail_in(stream, e),
                }
                let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
                ledger_used = Some(Arc::clone(&ledger));
                if !destroy {
                    if let Err(e) = record_outputs(&ws_path, &ws.inputs, &ledger, &providers, &plan.lineage, &rt) {
                        errln!("warning: the outputs were not recorded: {e}");
                    }
                }
            }
            break 'locked 0;
        }
        if saved.is_none() {
            match confirm(auto_approve, what) {
                Ok(true) => {}
                Ok(false) => {
                    outln!("\n{} cancelled.", if destroy { "Destroy" } else { "Apply" });
                    break 'locked 1;
                }
                Err(e) => break 'locked fail_in(stream, e),
            }
        }
        if !stream.json {
            outln!();
        }
        let mut state = state.unwrap_or_else(|| State::new(plan.lineage.clone()));
        // `moved` blocks the plan assumed are made in the state before anything runs.
        match session::apply_moves(&ws.model, &mut state) {
            Ok(moved) if !moved.is_empty() => {
                if let Err(e) = rt.block_on(ws.store.write(&mut state)) {
                    break 'locked fail_in(stream, e);
                }
            }
            Ok(_) => {}
            Err(e) => break 'locked fail_in(stream, e),
        }
        let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
        ledger_used = Some(Arc::clone(&ledger));
        let interrupted = Arc::new(AtomicBool::new(false));
        let bars = (!stream.json && std::io::stdout().is_terminal()).then(|| Arc::new(Bars::new()));
        let progress: Arc<dyn Progress> = match &bars {
            Some(b) => Arc::clone(b) as Arc<dyn Progress>,
            None if stream.json => Arc::new(JsonProgress),
            None => Arc::new(Lines),
        };
        let executor = Arc::new(Executor {
            providers,
            budgets: Default::default(),
            ledger: Arc::clone(&ledger),
            progress,
            parallelism,
            interrupted: Arc::clone(&interrupted),
            lineage: plan.lineage.clone(),
            kubernetes: kubes,
            etcd: etcds,
            join: session::join_secrets(&ws.model),
            announced: Default::default(),
        });
        let outcomes = rt.block_on(async {
            let flag = Arc::clone(&interrupted);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    errln!(
                        "\nInterrupted: letting calls in flight finish and recording them (Ctrl-C again to stop at once)."
                    );
                    flag.store(true, Ordering::SeqCst);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
            Arc::clone(&executor).run(&plan).await
        });
        if let Some(b) = &bars {
            b.finish();
        }
        let failed: Vec<&drydock_apply::Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
        stream.count(serde_json::json!({ "changes": outcomes.len(), "done": outcomes.len() - failed.len() }));
        if interrupted.load(Ordering::SeqCst) {
            stream.say(&format!(
                "\nInterrupted. The state records everything done so far; run `drydock {what}` again to finish."
            ));
            break 'locked 130;
        }
        if !failed.is_empty() {
            if !stream.json {
                outln!();
            }
            for o in &failed {
                if let Err(e) = &o.result {
                    if !matches!(e, ApplyError::Skipped { .. } | ApplyError::StateStopped(_)) {
                        errln!("error: {e}");
                        stream.error(&e.to_string());
                    }
                }
            }
            if let Some(e) = ledger.write_error() {
                errln!("error: the state could not be written ({e}); no further cloud change was made after that");
                stream.error(&format!("the state could not be written ({e})"));
                let unrecorded = ledger.unrecorded();
                if !unrecorded.is_empty() {
                    errln!("these changes were made but the state may not record them (the next plan finds them in the cloud):");
                    for u in unrecorded {
                        errln!("  - {u}");
                    }
                }
            }
            let done = outcomes.len() - failed.len();
            stream.say(&format!(
                "\n{} failed: {done} of {} changes done.",
                if destroy { "Destroy" } else { "Apply" },
                outcomes.len()
            ));
            break 'locked 1;
        }
        stream.say(&format!(
            "\n{} complete: {}",
            if destroy { "Destroy" } else { "Apply" },
            render::summary(&plan).trim_start_matches("Plan: ")
        ));
        if destroy {
            if let Err(e) = rt.block_on(ledger.update(drydock_state::journal::Touch::Outputs, |s| s.outputs.clear())) {
                break 'locked fail_in(stream, e);
            }
            break 'locked 0;
        }
        match record_outputs(&ws_path, &ws.inputs, &ledger, &executor.providers, &plan.lineage, &rt) {
            Ok(lines) if !lines.is_empty() && stream.json => {
                let outputs: serde_json::Map<String, serde_json::Value> =
                    lines.into_iter().map(|(name, value)| (name, value.into())).collect();
                stream.emit(serde_json::json!({ "type": "outputs", "outputs": outputs }), "Outputs");
            }
            Ok(lines) if !lines.is_empty() => {
                outln!("\nOutputs:\n");
                for (name, value) in lines {
                    outln!("{name} = {value}");
                }
            }
            Ok(_) => {}
            Err(e) => errln!("warning: the outputs were not recorded: {e}"),
        }
        0
    };
    if let Some(ledger) = ledger_used {
        close(&ledger, &rt);
    }
    release(lock, &rt);
    code
}

/// `apply --refresh-only`, or `apply` of a saved refresh-only plan: writes what the cloud has
/// into the state (see `drydock_plan::refresh`), under the lock, and changes nothing in the
/// cloud. A saved plan applies only if the cloud still differs exactly as it showed.
fn refresh_apply(ws: &Workspace, saved: Option<&Plan>, auto_approve: bool, stream: &Stream) -> ExitCode {
    let rt = runtime();
    let lock = match lock(ws, "apply --refresh-only", &rt) {
        Ok(l) => l,
        Err(e) => return fail_in(stream, e),
    };
    let code = 'locked: {
        let state = match rt.block_on(ws.store.read()) {
            Ok(s) => s,
            Err(e) => break 'locked fail_in(stream, e),
        };
        if let Some(p) = saved {
            if let Err(e) = check_saved(p, ws, state.as_ref()) {
                break 'locked fail_in(stream, e);
            }
        }
        let (plan, refreshed, _) = match rt.block_on(session::make_refresh_plan(ws, state.as_ref())) {
            Ok(p) => p,
            Err(e) => break 'locked fail_in(stream, e),
        };
        if let Some(p) = saved {
            let recorded =
                |plan: &Plan| -> Vec<(String, String, Option<serde_json::Value>, Option<serde_json::Value>)> {
                    plan.drift
                        .iter()
                        .filter(|d| d.action == drydock_plan::refresh::RECORDED)
                        .map(|d| (d.address.clone(), d.path.clone(), d.before.clone(), d.after.clone()))
                        .collect()
                };
            if recorded(p) != recorded(&plan) {
                break 'locked fail_in(
                    stream,
                    "the cloud changed since the refresh-only plan was made: it would record other values than it \
                     shows; make a new plan",
                );
            }
        }
        if stream.json {
            for d in &plan.drift {
                let recorded = d.action == drydock_plan::refresh::RECORDED;
                stream.emit(
                    serde_json::json!({ "type": "refresh", "address": d.address, "path": d.path, "recorded": recorded }),
                    &format!("{}: {} {}", d.address, d.path, if recorded { "recorded" } else { "not recorded" }),
                );
            }
        } else {
            out!("{}", render::plan_text(&plan));
        }
        let Some(before) = state else { break 'locked fail_in(stream, "there is no state to refresh") };
        let mut after = refreshed.state;
        if after == before {
            break 'locked 0;
        }
        if saved.is_none() {
            match confirm(auto_approve, "apply --refresh-only") {
                Ok(true) => {}
                Ok(false) => {
                    outln!("\nApply cancelled.");
                    break 'locked 1;
                }
                Err(e) => break 'locked fail_in(stream, e),
            }
        }
        if let Err(e) = rt.block_on(ws.store.write(&mut after)) {
            break 'locked fail_in(stream, e);
        }
        stream.count(serde_json::json!({ "recorded": refreshed.recorded.len() }));
        stream.say(&format!(
            "\nApply complete: the state records what the cloud has ({} recorded); the cloud was not changed.",
            if refreshed.recorded.len() == 1 {
                "1 attribute".to_string()
            } else {
                format!("{} attributes", refreshed.recorded.len())
            }
        ));
        0
    };
    release(lock, &rt);
    code
}

/// The plan in a JSON stream: a `planned_change` per change, and its counts for the summary.
fn planned(stream: &Stream, plan: &Plan) {
    for c in &plan.changes {
        let action = match c.kind() {
            drydock_plan::ActionKind::Create => "create",
            drydock_plan::ActionKind::Resume => "resume",
            drydock_plan::ActionKind::Rollout => "rollout",
            drydock_plan::ActionKind::Update => "update",
            drydock_plan::ActionKind::Delete => "delete",
        };
        stream.emit(
            serde_json::json!({
                "type": "planned_change",
                "address": c.address,
                "action": action,
                "waves": c.waves.len(),
                "nodes_replaced": c.nodes_replaced(),
                "depends_on": c.depends_on,
            }),
            &format!("{}: plan to {action}", c.address),
        );
    }
    let json = render::json::to_value(plan);
    stream.count(serde_json::json!({ "plan": json["summary"] }));
    stream.say(&render::summary(plan));
}

/// Folds a run's journal into the state. A failure loses nothing (the journal stays and is
/// replayed by the next read), so it is only a warning.
pub(super) fn close(ledger: &Ledger, rt: &tokio::runtime::Runtime) {
    if ledger.write_error().is_some() {
        return;
    }
    if let Err(e) = rt.block_on(ledger.close()) {
        errln!("warning: the state journal was not folded into the state file ({e}); the next run reads it");
    }
}

/// Records the outputs after an apply (see `session::outputs`).
fn record_outputs(
    path: &Path,
    inputs: &drydock_config::Inputs,
    ledger: &Ledger,
    providers: &Providers,
    lineage: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<(String, String)>, String> {
    rt.block_on(session::outputs::record_outputs(path, inputs, ledger, providers, lineage))
}
