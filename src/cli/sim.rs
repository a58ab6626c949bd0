//! `drydock sim`: look at and break the simulated cloud of a configuration.

use std::path::{Path, PathBuf};

use super::ExitCode;
use drydock_session::sim_world;

fn world(path: &Path) -> PathBuf {
    sim_world(&drydock_session::config_dir(path))
}

pub fn status(path: &Path, json: bool) -> ExitCode {
    match drydock_sim::status(world(path)) {
        Ok(s) if json => {
            outln!("{}", serde_json::to_string_pretty(&s).expect("status serialises"));
            0
        }
        Ok(s) => {
            outln!("simulated time {}", drydock_config::value::format_duration(s.now_ms));
            if s.groups.is_empty() {
                outln!("no groups");
            }
            for g in &s.groups {
                let healthy = g.instances.iter().filter(|i| i.healthy).count();
                outln!(
                    "{}  {}/{} gen {}  min {} max {} desired {}  healthy {}/{}",
                    g.name,
                    g.cluster,
                    g.node_group,
                    g.generation,
                    g.min,
                    g.max,
                    g.desired,
                    healthy,
                    g.instances.len()
                );
                for i in &g.instances {
                    outln!(
                        "  {}  {}  {}  {}  {}",
                        i.id,
                        i.zone,
                        i.state,
                        if i.healthy { "healthy" } else { "unhealthy" },
                        i.image
                    );
                }
            }
            for n in &s.nodes {
                let pods = s.pods.iter().filter(|p| p.node.as_deref() == Some(n.name.as_str())).count();
                outln!(
                    "node {}  {}  {}  Ready={:?}{}  {pods} pods",
                    n.name,
                    n.cluster,
                    n.instance.as_deref().unwrap_or("-"),
                    n.ready,
                    if n.unschedulable { "  cordoned" } else { "" }
                );
            }
            if !s.pods.is_empty() {
                let pending = s.pods.iter().filter(|p| p.node.is_none()).count();
                outln!("{} pods ({pending} unscheduled)", s.pods.len());
            }
            if !s.violations.is_empty() {
                outln!("{} disruption violations (see --json)", s.violations.len());
            }
            0
        }
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}

pub fn timeline(path: &Path) -> ExitCode {
    match drydock_sim::timeline(world(path)) {
        Ok(points) => {
            for p in points {
                outln!("{}", serde_json::to_string(&p).expect("a point serialises"));
            }
            0
        }
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}

pub fn fail(path: &Path, target: drydock_sim::FailTarget, after_ms: Option<u64>) -> ExitCode {
    if let Some(after) = after_ms {
        return match drydock_sim::schedule_fail(world(path), target, after) {
            Ok(at) => {
                outln!("failure scheduled at {}", drydock_config::value::format_duration(at));
                0
            }
            Err(e) => {
                errln!("error: {e}");
                1
            }
        };
    }
    match drydock_sim::fail(world(path), target) {
        Ok(ids) => {
            for id in ids {
                outln!("failed {id}");
            }
            0
        }
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}

pub fn advance(path: &Path, ms: u64) -> ExitCode {
    match drydock_sim::advance(world(path), ms) {
        Ok(now) => {
            outln!("the simulated clock is at {}", drydock_config::value::format_duration(now));
            0
        }
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}

pub fn restore_zone(path: &Path, zone: &str) -> ExitCode {
    match drydock_sim::restore_zone(world(path), zone) {
        Ok(true) => {
            outln!("zone {zone} restored");
            0
        }
        Ok(false) => {
            outln!("zone {zone} was not down");
            0
        }
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}

/// `drydock sim serve`: the simulated Kubernetes API of every cluster of the world, on
/// loopback, with a kubeconfig at `.drydock/sim-kubeconfig` for kubectl, until Ctrl-C.
pub fn serve(path: &Path) -> ExitCode {
    let dir = drydock_session::config_dir(path);
    let kubeconfig = dir.join(".drydock").join("sim-kubeconfig");
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    errln!(
        "serving the simulated Kubernetes API; try: kubectl --kubeconfig {} get nodes (Ctrl-C stops)",
        kubeconfig.display()
    );
    rt.block_on(async {
        tokio::select! {
            served = drydock_sim::serve(world(path), kubeconfig.clone()) => match served {
                Err(e) => {
                    errln!("error: {e}");
                    1
                }
                Ok(never) => match never {},
            },
            _ = tokio::signal::ctrl_c() => 0,
        }
    })
}
