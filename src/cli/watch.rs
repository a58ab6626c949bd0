//! `drydock watch`: a reconcile loop. Each round reloads the configuration, observes the
//! cloud and plans; then it repairs only what restores the reviewed, applied state — a
//! group deleted by hand, settings changed by hand, an apply or rollout a crash left
//! halfway, instances unhealthy longer than `health.unhealthy_timeout` or pending longer
//! than `health.startup_timeout` — and never starts a rollout nobody applied. Repairs obey
//! the same safety rules as rollouts: the per-group storm guard (`health.max_unhealthy`),
//! the cluster's `disruption_budget`, and the control plane's quorum. The state lock is held
//! only while acting, so `plan` and `apply` run between rounds. Every event is one JSON line
//! in `.drydock/watch.log` (and on stdout with `--json`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use drydock_provider::Clock;

use super::run::{load, make_plan, release, runtime, Lines, RunArgs};
use super::{ExitCode, Style};
use drydock_apply::{watch, Executor, Ledger, Progress};
use drydock_session::observe_all;

#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
    /// Time between rounds, on the provider's clock (`30s`, `5m`).
    #[arg(long, default_value = "30s", value_parser = parse_interval)]
    pub interval: u64,
    /// Run one round and exit.
    #[arg(long)]
    pub once: bool,
    /// Stop after this many rounds (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,
    /// Print events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// The event log (default: .drydock/watch.log beside the configuration).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

fn parse_interval(s: &str) -> Result<u64, String> {
    match drydock_syntax::parse_duration(s) {
        Some(ms) if ms > 0 => Ok(ms),
        Some(_) => Err("the interval must be longer than 0s".to_string()),
        None => Err(format!("{s:?} is not a duration like 30s or 5m")),
    }
}

/// Writes events: one JSON line each to the log, and to stdout as JSON or as text.
struct Events {
    json: bool,
    log: Option<std::fs::File>,
    round: u64,
    now_ms: u64,
}

impl Events {
    fn emit(&mut self, event: &str, address: &str, message: &str, why: Option<&str>) {
        let line = serde_json::json!({
            "t_ms": self.now_ms,
            "round": self.round,
            "event": event,
            "address": address,
            "message": message,
            "why": why,
        })
        .to_string();
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{line}");
        }
        if self.json {
            outln!("{line}");
        } else {
            let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
            let at = if address.is_empty() { String::new() } else { format!("{address}: ") };
            outln!("[{event}] {at}{message}{why}");
        }
    }
}

/// Progress of repairs, as `repaired`-kind events are written after each change.
struct Quiet;
impl Progress for Quiet {
    fn line(&self, _: &str) {}
}

pub fn watch_cmd(args: &WatchArgs, style: Style) -> ExitCode {
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let notify = Arc::new(tokio::sync::Notify::new());
    {
        let (stop, notify) = (Arc::clone(&stop), Arc::clone(&notify));
        rt.spawn(async move {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
            notify.notify_waiters();
        });
    }
    let dir = drydock_session::config_dir(&args.path);
    let log_path = args.log.clone().unwrap_or_else(|| dir.join(".drydock").join("watch.log"));
    // The log may hold what drift showed: private to its owner (created 0600). A log that
    // cannot be opened is an error before anything is watched, not events silently lost.
    let log = {
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(parent) = log_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(parent) {
                errln!(
                    "error: cannot create the event log's folder {}: {}",
                    parent.display(),
                    drydock_config::io_msg(&e)
                );
                return 1;
            }
        }
        match std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&log_path) {
            Ok(f) => Some(f),
            Err(e) => {
                errln!("error: cannot open the event log {}: {}", log_path.display(), drydock_config::io_msg(&e));
                return 1;
            }
        }
    };
    let mut events = Events { json: args.json, log, round: 0, now_ms: 0 };
    // When each instance was first seen unhealthy (on the provider's clock), kept across runs
    // in `.drydock/watch-unhealthy.json`, so that `watch --once` from cron, or a restarted
    // watch, counts `unhealthy_timeout` from the first sighting, not from its own start.
    let since_path = dir.join(".drydock").join("watch-unhealthy.json");
    let mut unhealthy_since: BTreeMap<String, u64> = drydock_fsutil::read_bounded(&since_path, 16 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut clock: Option<Arc<dyn Clock>> = None;
    loop {
        events.round += 1;
        round(args, style, &rt, &mut events, &mut unhealthy_since, &mut clock);
        save_unhealthy_since(&since_path, &unhealthy_since);
        let done = args.once || args.rounds.is_some_and(|n| events.round >= n) || stop.load(Ordering::SeqCst);
        if done {
            break;
        }
        let Some(c) = clock.clone() else {
            // No provider to wait on: wait on the wall clock.
            std::thread::sleep(std::time::Duration::from_millis(args.interval));
            continue;
        };
        let notify = Arc::clone(&notify);
        rt.block_on(async move {
            tokio::select! {
                _ = c.sleep(args.interval) => {}
                _ = notify.notified() => {}
            }
        });
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    events.emit("stopped", "", "watch stopped", None);
    0
}

/// Best effort: a lost record only makes the next watch wait the full timeout again.
fn save_unhealthy_since(path: &Path, since: &BTreeMap<String, u64>) {
    let Ok(bytes) = serde_json::to_vec(since) else { return };
    if std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).is_ok() {
        // Ignored on purpose (see above): watch goes on either way.
        drop(drydock_fsutil::write_atomically(path, &bytes, 0o666));
    }
}

fn round(
    args: &WatchArgs,
    style: Style,
    rt: &tokio::runtime::Runtime,
    events: &mut Events,
    unhealthy_since: &mut BTreeMap<String, u64>,
    clock_out: &mut Option<Arc<dyn Clock>>,
) {
    let ws = match load(&args.path, &args.run, style) {
        Ok(ws) => ws,
        Err(_) => {
            events.emit("error", "", "the configuration does not evaluate; nothing repaired this round", None);
            return;
        }
    };
    let state = match rt.block_on(ws.store.read()) {
        Ok(Some(s)) => s,
        Ok(None) => {
            events.emit("skipped", "", "nothing applied yet", Some("watch repairs what apply made"));
            return;
        }
        Err(e) => {
            events.emit("error", "", &e.to_string(), None);
            return;
        }
    };
    let (plan, providers, kubes, etcds) = match make_plan(&ws, Some(&state), false, rt) {
        Ok(p) => p,
        Err(e) => {
            events.emit("error", "", &e, None);
            return;
        }
    };
    if let Some(p) = providers.values().next() {
        *clock_out = Some(p.clock());
        events.now_ms = p.clock().now_ms();
    }
    let observed = match rt.block_on(observe_all(&providers, &state.lineage)) {
        Ok(o) => o,
        Err(e) => {
            events.emit("error", "", &e, None);
            return;
        }
    };
    // The Nodes of clusters with a Kubernetes API: a dead kubelet on a live machine is found
    // there, not in the cloud.
    let mut nodes = BTreeMap::new();
    for (address, k) in &kubes {
        match rt.block_on(k.nodes()) {
            Ok(n) => {
                nodes.insert(address.clone(), n);
            }
            Err(e) => {
                events.emit("error", address, &format!("Kubernetes API {}: {e}", k.describe()), None);
                return;
            }
        }
    }
    // The etcd of control planes whose membership drydock manages: members whose machine is
    // gone are removed (a member that cannot be reached is reported, and the round goes on).
    let mut etcd_health = BTreeMap::new();
    for (address, e) in &etcds {
        match rt.block_on(e.health()) {
            Ok(h) => {
                etcd_health.insert(address.clone(), h);
            }
            Err(err) => events.emit("error", address, &format!("etcd: {err}"), None),
        }
    }
    // Repairs restore the applied state: planned from the applied generations and settings, so
    // that a configuration changed but not applied stops no repair that needs nothing of it.
    let mut restore = match drydock_session::plan_as_applied(&ws, &state, &observed, &providers) {
        Ok(p) => p,
        Err(e) => {
            events.emit("error", "", &e, None);
            return;
        }
    };
    restore.drift = plan.drift.clone();
    // What the configuration changes beyond that is not watch's to do.
    for c in &plan.changes {
        let same = |r: &drydock_plan::Change| {
            r.address == c.address
                && r.kind() == c.kind()
                && r.target().map(|t| &t.generation) == c.target().map(|t| &t.generation)
        };
        if !restore.changes.iter().any(same) {
            events.emit(
                "skipped",
                &c.address,
                &format!("{:?} not done", c.kind()).to_lowercase(),
                Some("the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`"),
            );
        }
    }
    let plan = restore;
    let budgets = ws.model.clusters.iter().map(|c| (c.address.clone(), c.disruption_budget)).collect();
    let decided = watch::decide(&watch::Input {
        plan: &plan,
        state: &state,
        observed: &observed,
        disruption_budgets: &budgets,
        now_ms: events.now_ms,
        unhealthy_since,
        nodes: &nodes,
        etcd: &etcd_health,
    });
    for e in &decided.events {
        events.emit(e.kind.as_str(), &e.address, &e.message, e.why.as_deref());
    }
    *unhealthy_since = decided.unhealthy_since;
    let (repairs, replacements, cleanups) = (decided.repairs, decided.replacements, decided.etcd_cleanups);
    if repairs.is_empty() && replacements.is_empty() && cleanups.is_empty() {
        return;
    }
    // Act under the lock; an apply in progress wins and the repair waits for the next round.
    let lock = match super::run::lock(&ws, "watch", rt) {
        Ok(l) => l,
        Err(e) => {
            events.emit("skipped", "", "the state is locked; trying again next round", Some(&e.to_string()));
            return;
        }
    };
    // Everything under the lock; it is given back whatever the outcome.
    'locked: {
        let mut state = match rt.block_on(ws.store.read()) {
            Ok(Some(s)) => s,
            _ => break 'locked,
        };
        // Cloud calls an earlier run journalled and never settled were observed by this
        // round's plan, as apply does: their entries go (else the plan keeps reporting an
        // interrupted apply after the repair finished it).
        if !state.journal.is_empty() {
            state.journal.clear();
            if let Err(e) = rt.block_on(ws.store.write(&mut state)) {
                events.emit("error", "", &e.to_string(), None);
                break 'locked;
            }
        }
        let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
        let closing = Arc::clone(&ledger);
        let progress: Arc<dyn Progress> = if args.json { Arc::new(Quiet) } else { Arc::new(Lines) };
        let executor = Arc::new(Executor {
            providers,
            budgets: Default::default(),
            ledger,
            progress,
            parallelism: 10,
            interrupted: Arc::new(AtomicBool::new(false)),
            lineage: plan.lineage.clone(),
            kubernetes: kubes,
            etcd: etcds,
            join: drydock_session::join_secrets(&ws.model),
            announced: Default::default(),
        });
        if !repairs.is_empty() {
            let mut repair_plan = plan.clone();
            repair_plan.changes = repairs;
            repair_plan.clusters.retain(|c| c.keep);
            let outcomes = rt.block_on(Arc::clone(&executor).run(&repair_plan));
            for o in outcomes {
                match o.result {
                    Ok(()) => events.emit("repaired", &o.address, "restored to the applied state", None),
                    Err(e) => events.emit("error", &o.address, &e.to_string(), None),
                }
            }
        }
        for r in cleanups {
            match rt.block_on(executor.remove_dead_etcd_member(&r)) {
                Ok(()) => {
                    events.emit("repaired", &r.cluster, &format!("removed etcd member {} ({})", r.name, r.why), None)
                }
                Err(e) => events.emit("error", &r.cluster, &e.to_string(), None),
            }
        }
        for r in replacements {
            match rt.block_on(executor.replace_instance(&r)) {
                Ok(()) => events.emit("repaired", &r.address, &format!("replaced {} ({})", r.id, r.why), None),
                Err(e) => events.emit("error", &r.address, &e.to_string(), None),
            }
        }
        super::run::close(&closing, rt);
    }
    release(lock, rt);
}
