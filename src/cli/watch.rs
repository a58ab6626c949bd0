//! `drydock watch`: a reconcile loop. Each round reloads the configuration, observes the
//! cloud and plans; then it repairs only what restores the reviewed, applied state — a
//! group deleted by hand, settings changed by hand, an apply or rollout a crash left
//! halfway, instances unhealthy longer than `health.unhealthy_timeout` or pending longer
//! than `health.startup_timeout` — and never starts a rollout nobody applied. Repairs obey
//! the same safety rules as rollouts: the per-group storm guard (`health.max_unhealthy`),
//! the cluster's `disruption_budget`, and the control plane's quorum. The state lock is held
//! only while acting, so `plan` and `apply` run between rounds. Every event is one JSON line
//! in `.drydock/watch.log` (and on stdout with `--json`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use drydock_provider::{Clock, InstanceState};

use super::run::{load, make_plan, observe_all, runtime, Lines, RunArgs};
use super::{ExitCode, Style};
use drydock_apply::{Executor, Ledger, Progress};
use drydock_config::model::{IntOrPercent, Role};
use drydock_plan::{Action, Change, Plan};

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
    /// Stop after this many rounds.
    #[arg(long)]
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
        _ => Err(format!("{s:?} is not a duration like 30s or 5m")),
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
            println!("{line}");
        } else {
            let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
            let at = if address.is_empty() { String::new() } else { format!("{address}: ") };
            println!("[{event}] {at}{message}{why}");
        }
        let _ = std::io::stdout().flush();
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
    let dir = super::run::config_dir(&args.path);
    let log_path = args.log.clone().unwrap_or_else(|| dir.join(".drydock").join("watch.log"));
    if let Some(parent) = log_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).ok();
    let mut events = Events { json: args.json, log, round: 0, now_ms: 0 };
    // When each instance was first seen unhealthy (on the provider's clock), kept across runs
    // in `.drydock/watch-unhealthy.json`, so that `watch --once` from cron, or a restarted
    // watch, counts `unhealthy_timeout` from the first sighting, not from its own start.
    let since_path = dir.join(".drydock").join("watch-unhealthy.json");
    let mut unhealthy_since: BTreeMap<String, u64> =
        std::fs::read(&since_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
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
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    if std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).is_ok() && std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, path);
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
    let state = match ws.store.read() {
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
    let (plan, providers) = match make_plan(&ws, Some(&state), false, rt) {
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
    for d in &plan.drift {
        let what = format!(
            "{} = {} -> {}",
            d.path,
            d.before.as_deref().unwrap_or("null"),
            d.after.as_deref().unwrap_or("null")
        );
        events.emit("detected", &d.address, &what, Some(&d.action));
    }
    let repairs = choose_repairs(&plan, &state, events);
    let observed = match rt.block_on(observe_all(&providers, &state.lineage)) {
        Ok(o) => o,
        Err(e) => {
            events.emit("error", "", &e, None);
            return;
        }
    };
    let replacements = choose_replacements(&ws.model, &state, &observed, unhealthy_since, events);
    if repairs.is_empty() && replacements.is_empty() {
        return;
    }
    // Act under the lock; an apply in progress wins and the repair waits for the next round.
    let _lock = match ws.lock("watch") {
        Ok(l) => l,
        Err(e) => {
            events.emit("skipped", "", "the state is locked; trying again next round", Some(&e.to_string()));
            return;
        }
    };
    let state = match ws.store.read() {
        Ok(Some(s)) => s,
        _ => return,
    };
    let ledger = Arc::new(Ledger::new(state, ws.store.clone()));
    let progress: Arc<dyn Progress> = if args.json { Arc::new(Quiet) } else { Arc::new(Lines) };
    let executor = Arc::new(Executor {
        providers,
        budgets: Default::default(),
        ledger,
        progress,
        parallelism: 10,
        interrupted: Arc::new(AtomicBool::new(false)),
        lineage: plan.lineage.clone(),
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
    for r in replacements {
        match rt.block_on(executor.replace_instance(&r.provider, &r.address, &r.group, &r.id)) {
            Ok(()) => events.emit("repaired", &r.address, &format!("replaced {} ({})", r.id, r.why), None),
            Err(e) => events.emit("error", &r.address, &e.to_string(), None),
        }
    }
}

/// The plan's changes that restore the applied state; the rest are skipped with the reason.
fn choose_repairs(plan: &Plan, state: &drydock_state::State, events: &mut Events) -> Vec<Change> {
    let mut out = vec![];
    for c in &plan.changes {
        let sn = state.node_group(&c.cluster, &c.address);
        let applied_gen = sn.and_then(|n| n.current()).map(|g| g.id.as_str());
        let target_gen = c.target.as_ref().map(|t| t.generation.as_str());
        let config_changed =
            c.reasons.iter().any(|r| r.path != "recorded groups" && r.path != "status" && !r.forces_replacement);
        // A create lists every attribute of the spec; what matters is that it recreates the
        // applied generation with the applied settings.
        let same_as_applied = sn.is_some_and(|n| c.target.as_ref().is_some_and(|t| t.settings == n.settings));
        let why = match c.action {
            Action::Create if applied_gen == target_gen && same_as_applied => None,
            Action::Update if !config_changed => None,
            Action::Rollout if sn.is_some_and(|n| n.unfinished) && applied_gen == target_gen => None,
            _ => Some("the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`"),
        };
        match why {
            None => out.push(c.clone()),
            Some(why) => {
                events.emit("skipped", &c.address, &format!("{:?} not done", c.action).to_lowercase(), Some(why))
            }
        }
    }
    out
}

struct Replacement {
    provider: String,
    address: String,
    group: String,
    id: String,
    why: String,
}

/// Instances to replace, after the storm guard, the quorum rule and the disruption budget.
fn choose_replacements(
    model: &drydock_config::Model,
    state: &drydock_state::State,
    observed: &BTreeMap<String, drydock_provider::Observed>,
    unhealthy_since: &mut BTreeMap<String, u64>,
    events: &mut Events,
) -> Vec<Replacement> {
    let now = events.now_ms;
    let mut out = vec![];
    let mut still_unhealthy = BTreeSet::new();
    for (caddr, cs) in &state.clusters {
        let Some(obs) = observed.get(&cs.provider) else { continue };
        let cluster_groups: BTreeSet<&str> = cs
            .node_groups
            .values()
            .filter_map(|n| n.current())
            .flat_map(|g| g.groups.iter().map(String::as_str))
            .collect();
        let cluster_instances: Vec<&drydock_provider::Instance> = obs
            .groups
            .iter()
            .filter(|g| cluster_groups.contains(g.name.as_str()))
            .flat_map(|g| g.instances.iter().filter(|i| i.is_live()))
            .collect();
        let budget_setting = model
            .clusters
            .iter()
            .find(|c| &c.address == caddr)
            .map_or(IntOrPercent::Percent(10.0), |c| c.disruption_budget);
        let budget = budget_setting.resolve(cluster_instances.len() as u32, false).max(1) as usize;
        // Nodes booting within their startup window count against the budget; nodes stuck
        // pending past it are what remediation replaces, so they do not.
        let startup = |addr: &str| cs.node_groups.get(addr).map_or(600_000, |n| n.settings.health.startup_timeout_ms);
        let mut in_progress = obs
            .groups
            .iter()
            .filter(|g| cluster_groups.contains(g.name.as_str()))
            .flat_map(|g| {
                let addr = format!("cluster.{}.node_group.{}", g.ownership.cluster, g.ownership.node_group);
                let window = startup(&addr);
                g.instances.iter().filter(move |i| {
                    i.state == InstanceState::Pending && now.saturating_sub(i.launched_at_ms) <= window
                })
            })
            .count();
        for (addr, ng) in &cs.node_groups {
            let Some(current) = ng.current() else { continue };
            let groups: Vec<&drydock_provider::ObservedGroup> =
                obs.groups.iter().filter(|g| current.groups.contains(&g.name)).collect();
            let h = &ng.settings.health;
            let desired: u32 = groups.iter().map(|g| g.settings.desired).sum();
            let mut overdue = vec![];
            let mut unhealthy = 0u32;
            let mut healthy = 0u32;
            for g in &groups {
                for i in g.instances.iter().filter(|i| i.is_live()) {
                    match i.state {
                        InstanceState::Running if i.healthy => healthy += 1,
                        InstanceState::Running => {
                            unhealthy += 1;
                            still_unhealthy.insert(i.id.clone());
                            let since = *unhealthy_since.entry(i.id.clone()).or_insert(now);
                            if now.saturating_sub(since) >= h.unhealthy_timeout_ms {
                                overdue.push((g.name.clone(), i.id.clone(), "unhealthy too long".to_string()));
                            }
                        }
                        InstanceState::Pending if now.saturating_sub(i.launched_at_ms) > h.startup_timeout_ms => {
                            unhealthy += 1;
                            overdue.push((
                                g.name.clone(),
                                i.id.clone(),
                                "pending longer than startup_timeout".to_string(),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            if overdue.is_empty() {
                continue;
            }
            let max_unhealthy = h.max_unhealthy.resolve(desired, false);
            if unhealthy > max_unhealthy {
                events.emit(
                    "skipped",
                    addr,
                    &format!("storm guard: {unhealthy} of {desired} nodes unhealthy, more than max_unhealthy ({max_unhealthy})"),
                    Some("not replacing: a bad image or a lost zone is not fixed by killing more nodes"),
                );
                continue;
            }
            if ng.role == Role::ControlPlane {
                let majority = desired / 2 + 1;
                if healthy < majority {
                    events.emit(
                        "skipped",
                        addr,
                        &format!("quorum: {healthy} of {desired} members healthy, fewer than a majority ({majority})"),
                        Some("not remediating a control plane without quorum automatically"),
                    );
                    continue;
                }
                // One member at a time.
                overdue.truncate(1);
            }
            for (group, id, why) in overdue {
                if in_progress >= budget {
                    events.emit(
                        "skipped",
                        addr,
                        &format!("{id}: the cluster's disruption budget ({budget} at once) is in use"),
                        Some("replaced in a later round"),
                    );
                    continue;
                }
                in_progress += 1;
                out.push(Replacement { provider: cs.provider.clone(), address: addr.clone(), group, id, why });
            }
        }
    }
    unhealthy_since.retain(|id, _| still_unhealthy.contains(id));
    out
}
