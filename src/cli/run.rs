//! `plan`, `apply`, `destroy` and `show`: load the configuration and the state, observe
//! the cloud, plan, confirm, and run the executor.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use drydock_provider::{Observed, Provider};
use sha2::Digest as _;

use super::{report, ExitCode, Style, VarArgs};
use drydock_apply::{ApplyError, Executor, Ledger, Progress};
use drydock_config::{self as config, Model, ProviderSettings};
use drydock_plan::{self as plan, Plan, PlanInput};
use drydock_render as render;
use drydock_state::backend::{self, BackendRecord, Lock, Store};
use drydock_state::store::new_lineage;
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

/// The world of one command: the configuration, its state store and providers.
pub(super) struct Workspace {
    pub(super) config_path: PathBuf,
    pub(super) config_dir: PathBuf,
    pub(super) model: Model,
    pub(super) digest: String,
    pub(super) store: Store,
    /// Which backend that is, as `.drydock/backend.json` records it; `None` with `--state
    /// FILE`, an explicit file that is neither checked against the record nor recorded.
    pub(super) backend: Option<BackendRecord>,
    pub(super) lease: std::time::Duration,
    pub(super) lock_timeout: std::time::Duration,
    pub(super) refresh: bool,
}

impl Workspace {
    /// Takes the state lock for `what`, waiting up to `--lock-timeout`; says so when it found
    /// the lock of a run that died, and records the backend in use.
    pub(super) fn lock(&self, what: &str) -> Result<Lock, String> {
        let lock = self.store.lock(what, self.lease, self.lock_timeout).map_err(|e| e.to_string())?;
        if let Some(note) = lock.note() {
            eprintln!("{note}");
        }
        if let Some(record) = &self.backend {
            if backend::read_record(&self.config_dir)?.is_none() {
                backend::write_record(&self.config_dir, record)?;
            }
        }
        Ok(lock)
    }
}

pub(super) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    1
}

/// The digest of a configuration's files: names and contents, in name order.
pub fn config_digest(sources: &Sources) -> String {
    let mut h = sha2::Sha256::new();
    for (_, f) in sources.files() {
        if f.name.starts_with("--var") || f.name.starts_with("DRYDOCK_VAR_") {
            continue;
        }
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn load(path: &Path, args: &RunArgs, style: Style) -> Result<Workspace, ExitCode> {
    let inputs = args.vars.inputs().map_err(|d| {
        report(&d, &Sources::new(), style);
        1
    })?;
    let loaded = config::load(path, &inputs);
    let Some(model) = loaded.model.filter(|_| loaded.diagnostics.is_empty()) else {
        report(&loaded.diagnostics, &loaded.sources, style);
        return Err(1);
    };
    let config_dir = config_dir(path);
    let opened = backend::open(model.backend.as_ref(), path, &config_dir, args.state.as_deref(), &super::s3_objects)
        .and_then(|(store, record)| match args.state {
            Some(_) => Ok((store, None)),
            None => backend::check_unmoved(&config_dir, path, &record).map(|()| (store, Some(record))),
        });
    let (store, record) = opened.map_err(fail)?;
    let lease = backend::lease(model.backend.as_ref());
    Ok(Workspace {
        config_path: path.to_path_buf(),
        config_dir,
        digest: config_digest(&loaded.sources),
        model,
        store,
        backend: record,
        lease,
        lock_timeout: args.lock.lock_timeout,
        refresh: args.refresh,
    })
}

/// The providers the model configures, by reference.
pub(super) fn providers(ws: &Workspace) -> Result<BTreeMap<String, Arc<dyn Provider>>, String> {
    let mut out: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    for p in &ws.model.providers {
        let provider: Arc<dyn Provider> = match &p.settings {
            ProviderSettings::Sim(s) => {
                let mode = drydock_sim::ClockMode::from_env().map_err(|e| e.to_string())?;
                let config = drydock_sim::SimConfig {
                    boot_time_ms: s.boot_time_ms,
                    detection_delay_ms: s.detection_delay_ms,
                    failure_rate: s.failure_rate,
                    bad_images: s.bad_images.clone(),
                    seed: s.seed,
                    ..Default::default()
                };
                Arc::new(drydock_sim::SimProvider::new(sim_world(&ws.config_dir), config, mode))
            }
            // Builds no SDK client here: that waits for the first call, so commands that do
            // not use AWS never pay for it.
            ProviderSettings::Aws(s) => Arc::new(drydock_aws::AwsProvider::new(drydock_aws::AwsConfig {
                region: s.region.clone(),
                profile: s.profile.clone(),
                endpoint: s.endpoint.clone(),
            })),
        };
        out.insert(p.reference(), provider);
    }
    Ok(out)
}

/// The directory of a configuration (a directory itself, or a file's directory; `.` for a
/// file named without one): where its state, `.drydock/` and backend record live.
pub fn config_dir(path: &Path) -> PathBuf {
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map_or(PathBuf::new(), Path::to_path_buf) };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// The simulated cloud's world file for a configuration directory.
pub fn sim_world(config_dir: &Path) -> PathBuf {
    config_dir.join(".drydock").join("sim-world.json")
}

fn boot_estimates(model: &Model) -> BTreeMap<String, u64> {
    model
        .providers
        .iter()
        .map(|p| {
            let ms = match &p.settings {
                ProviderSettings::Sim(s) => s.boot_time_ms + plan_poll_slack(),
                ProviderSettings::Aws(_) => 40_000,
            };
            (p.reference(), ms)
        })
        .collect()
}

/// Health is polled once a second, so a wave takes up to a second longer than the boot.
fn plan_poll_slack() -> u64 {
    drydock_apply::POLL_MS
}

pub(super) async fn observe_all(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    lineage: &str,
) -> Result<BTreeMap<String, Observed>, String> {
    let mut out = BTreeMap::new();
    for (name, p) in providers {
        let o = p.observe(lineage).await.map_err(|e| format!("provider `{name}`: {e}"))?;
        out.insert(name.clone(), o);
    }
    Ok(out)
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// Providers by reference.
pub(super) type Providers = BTreeMap<String, Arc<dyn Provider>>;

pub(super) fn make_plan(
    ws: &Workspace,
    state: Option<&State>,
    destroy: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<(Plan, Providers), String> {
    let providers = providers(ws)?;
    let lineage = state.map_or_else(new_lineage, |s| s.lineage.clone());
    let observed = match (ws.refresh, state) {
        (false, Some(s)) => plan::observed_from_state(s),
        (false, None) => BTreeMap::new(),
        (true, _) => rt.block_on(observe_all(&providers, &lineage))?,
    };
    let input = PlanInput {
        model: &ws.model,
        state,
        lineage: &lineage,
        observed: &observed,
        boot_estimate_ms: &boot_estimates(&ws.model),
        config_digest: ws.digest.clone(),
        config_path: ws.config_path.display().to_string(),
        destroy,
        now_ms: providers.iter().map(|(name, p)| (name.clone(), p.clock().now_ms())).collect(),
    };
    let plan = plan::plan(&input).map_err(|errs| {
        errs.iter().map(|e| format!("{}: {}", e.address, e.message)).collect::<Vec<_>>().join("\nerror: ")
    })?;
    Ok((plan, providers))
}

/// Plans and prints the plan. stdout gets the rendering alone, byte for byte what `show`
/// prints for the saved plan, so it can be piped into a comment or `jq`; the note about a
/// saved plan goes to stderr. With `detailed_exitcode`, a plan with changes exits 2.
pub fn plan_cmd(
    path: &Path,
    args: &RunArgs,
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
    let state = match ws.store.read() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let started = std::time::Instant::now();
    let (plan, providers) = match make_plan(&ws, state.as_ref(), false, &rt) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if stats {
        // On stderr: stdout carries the plan alone.
        let calls: u64 = providers.values().map(|p| p.stats().total()).sum();
        let groups = ws.model.node_group_count();
        eprintln!(
            "Refreshed {groups} node {} with {calls} API {} in {:.1} s.",
            if groups == 1 { "group" } else { "groups" },
            if calls == 1 { "call" } else { "calls" },
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(out) = out {
        let json = serde_json::to_string_pretty(&plan).expect("a plan serialises");
        if let Err(e) = std::fs::write(out, json + "\n") {
            return fail(format!("cannot write {}: {}", out.display(), config::io_msg(&e)));
        }
    }
    print!("{}", render::render(&plan, print.format, print.color));
    if let Some(out) = out {
        eprintln!("\nSaved the plan to {}. Apply it with: drydock apply {}", out.display(), out.display());
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
            print!("{}", render::render(&plan, print.format, print.color));
            0
        }
        Err(e) => fail(e),
    }
}

fn read_plan(path: &Path) -> Result<Plan, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {}", path.display(), config::io_msg(&e)))?;
    let plan: Plan =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a drydock plan: {e}", path.display()))?;
    if plan.format_version != plan::PLAN_FORMAT_VERSION {
        return Err(format!(
            "{} has plan format {}, this drydock reads {}",
            path.display(),
            plan.format_version,
            plan::PLAN_FORMAT_VERSION
        ));
    }
    Ok(plan)
}

/// Whether a path names a saved plan rather than a configuration.
fn is_plan_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_none_or(|e| e != "kcl")
}

/// Progress as plain lines: for pipes, files and CI logs.
pub(super) struct Lines;
impl Progress for Lines {
    fn line(&self, text: &str) {
        println!("{text}");
        let _ = std::io::stdout().flush();
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
    print!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}

pub fn apply_cmd(
    path: &Path,
    args: &RunArgs,
    auto_approve: bool,
    parallelism: usize,
    destroy: bool,
    style: Style,
) -> ExitCode {
    let what = if destroy { "destroy" } else { "apply" };
    // A saved plan: apply exactly it, if nothing changed since.
    let (ws_path, saved) = if !destroy && is_plan_file(path) {
        match read_plan(path) {
            Ok(p) => (PathBuf::from(&p.config_path), Some(p)),
            Err(e) => return fail(e),
        }
    } else {
        (path.to_path_buf(), None)
    };
    let ws = match load(&ws_path, args, style) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let _lock = match ws.lock(what) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut state = match ws.store.read() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(s) = &mut state {
        if !s.journal.is_empty() {
            println!(
                "{} interrupted by an earlier run; the cloud is observed to settle {}.",
                if s.journal.len() == 1 {
                    "1 operation was".to_string()
                } else {
                    format!("{} operations were", s.journal.len())
                },
                if s.journal.len() == 1 { "it" } else { "them" }
            );
            s.journal.clear();
            if let Err(e) = ws.store.write(s) {
                return fail(e);
            }
        }
    }
    let rt = runtime();
    let (plan, providers) = match &saved {
        Some(p) => {
            if let Err(e) = check_saved(p, &ws, state.as_ref()) {
                return fail(e);
            }
            match providers(&ws) {
                Ok(pr) => (p.clone(), pr),
                Err(e) => return fail(e),
            }
        }
        None => match make_plan(&ws, state.as_ref(), destroy, &rt) {
            Ok(p) => p,
            Err(e) => return fail(e),
        },
    };
    print!("{}", render::plan_text(&plan));
    if plan.is_empty() {
        // Nothing to change, but the outputs are brought up to date (as after any apply).
        if !destroy {
            if let Some(state) = state {
                let ledger = Ledger::new(state, ws.store.clone());
                if let Err(e) = record_outputs(&ws_path, args, &ledger, &providers, &plan.lineage, &rt) {
                    eprintln!("warning: the outputs were not recorded: {e}");
                }
            }
        }
        return 0;
    }
    if saved.is_none() {
        match confirm(auto_approve, what) {
            Ok(true) => {}
            Ok(false) => {
                println!("\n{} cancelled.", if destroy { "Destroy" } else { "Apply" });
                return 1;
            }
            Err(e) => return fail(e),
        }
    }
    println!();
    let state = state.unwrap_or_else(|| State::new(plan.lineage.clone()));
    let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
    let interrupted = Arc::new(AtomicBool::new(false));
    let bars = std::io::stdout().is_terminal().then(|| Arc::new(Bars::new()));
    let progress: Arc<dyn Progress> = match &bars {
        Some(b) => Arc::clone(b) as Arc<dyn Progress>,
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
    });
    let outcomes = rt.block_on(async {
        let flag = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
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
    if interrupted.load(Ordering::SeqCst) {
        println!("\nInterrupted. The state records everything done so far; run `drydock {what}` again to finish.");
        return 130;
    }
    if !failed.is_empty() {
        println!();
        for o in &failed {
            if let Err(e) = &o.result {
                if !matches!(e, ApplyError::Skipped { .. } | ApplyError::StateStopped(_)) {
                    eprintln!("error: {e}");
                }
            }
        }
        if let Some(e) = ledger.write_error() {
            eprintln!("error: the state could not be written ({e}); no further cloud change was made after that");
            let unrecorded = ledger.unrecorded();
            if !unrecorded.is_empty() {
                eprintln!("these changes were made but the state may not record them (the next plan finds them in the cloud):");
                for u in unrecorded {
                    eprintln!("  - {u}");
                }
            }
        }
        let done = outcomes.len() - failed.len();
        println!("\n{} failed: {done} of {} changes done.", if destroy { "Destroy" } else { "Apply" }, outcomes.len());
        return 1;
    }
    println!(
        "\n{} complete: {}",
        if destroy { "Destroy" } else { "Apply" },
        render::summary(&plan).trim_start_matches("Plan: ")
    );
    if destroy {
        if let Err(e) = ledger.update(|s| s.outputs.clear()) {
            return fail(e);
        }
        return 0;
    }
    match record_outputs(&ws_path, args, &ledger, &executor.providers, &plan.lineage, &rt) {
        Ok(lines) if !lines.is_empty() => {
            println!("\nOutputs:\n");
            for (name, value) in lines {
                println!("{name} = {value}");
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: the outputs were not recorded: {e}"),
    }
    0
}

/// Evaluates the outputs with what exists now (group names, instance ids), records them
/// in the state and returns them for printing (sensitive ones masked).
fn record_outputs(
    path: &Path,
    args: &RunArgs,
    ledger: &Ledger,
    providers: &Providers,
    lineage: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<(String, String)>, String> {
    use drydock_config::value::Value;
    let state = ledger.snapshot();
    let observed = rt.block_on(observe_all(providers, lineage))?;
    let mut computed = BTreeMap::new();
    for cs in state.clusters.values() {
        for (address, ng) in &cs.node_groups {
            let names: Vec<String> = ng.current().map(|g| g.groups.clone()).unwrap_or_default();
            let ids: Vec<Value> = observed
                .values()
                .flat_map(|o| o.groups.iter())
                .filter(|g| names.contains(&g.name))
                .flat_map(|g| g.instances.iter().filter(|i| i.is_live()))
                .map(|i| Value::String(i.id.clone()))
                .collect();
            let names = Value::List(names.into_iter().map(Value::String).collect());
            computed.insert(
                address.clone(),
                BTreeMap::from([("group_names".to_string(), names), ("instance_ids".to_string(), Value::List(ids))]),
            );
        }
    }
    let mut inputs =
        args.vars.inputs().map_err(|d| d.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    inputs.computed = computed;
    let loaded = config::load(path, &inputs);
    let model = loaded.model.ok_or_else(|| "the configuration no longer evaluates".to_string())?;
    let outputs: BTreeMap<String, drydock_state::OutputState> = model
        .outputs
        .iter()
        .map(|o| {
            // A sensitive output is kept as a digest: the state file is not where secrets live.
            let value = if o.sensitive {
                let digest: String = sha2::Sha256::digest(o.value.to_json().to_string().as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                serde_json::Value::String(format!("(sensitive: sha256 {})", &digest[..12]))
            } else {
                o.value.to_json()
            };
            (o.name.clone(), drydock_state::OutputState { value, sensitive: o.sensitive })
        })
        .collect();
    // Unchanged outputs are not written: a no-op apply leaves the serial (and saved plans) alone.
    if state.outputs != outputs {
        ledger.update(|s| s.outputs = outputs).map_err(|e| e.to_string())?;
    }
    Ok(model
        .outputs
        .iter()
        .map(|o| (o.name.clone(), if o.sensitive { "(sensitive)".to_string() } else { o.value.to_string() }))
        .collect())
}

/// A saved plan applies only to the state and configuration it was made from.
fn check_saved(plan: &Plan, ws: &Workspace, state: Option<&State>) -> Result<(), String> {
    match (state, plan.state_serial) {
        (Some(_), None) => return Err("the saved plan was made before a state existed, and now one does; make a new plan".into()),
        (Some(s), _) if s.lineage != plan.lineage => {
            return Err(format!(
                "the saved plan is for a different state: its lineage is {}, the state's is {}; make a new plan",
                plan.lineage, s.lineage
            ))
        }
        (Some(s), Some(serial)) if s.serial != serial => {
            return Err(format!(
                "the saved plan is stale: it was made against state serial {serial}, the state is now at serial {}; make a new plan",
                s.serial
            ))
        }
        (None, Some(_)) => return Err("the saved plan was made against a state that no longer exists; make a new plan".into()),
        _ => {}
    }
    if plan.config_digest != ws.digest {
        return Err("the configuration changed since the plan was made; make a new plan".into());
    }
    Ok(())
}
