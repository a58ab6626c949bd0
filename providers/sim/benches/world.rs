//! The simulated cloud at scale, through the `Provider` API on the virtual clock with a boot
//! time of 0 (issue 13):
//!
//! - `groups N`: N groups of 3 instances created one `create_group` call at a time (as an apply
//!   of N node groups makes them), then one sleep so that they all boot, and one observe.
//! - `create N` / `roll N`: one group of N instances created and booted; then rolled: a second
//!   group of N created and booted, every instance of the first terminated (one call, with
//!   decrement), the shutdown waited out and the first group deleted.
//!
//! Each case runs in a child process, so that its time, its processor time (user + system: the
//! rest is waiting, mostly for `fsync`), its peak memory and the bytes it wrote (`wchar` of
//! `/proc/self/io`: everything the process handed to `write`, which here is the world files)
//! are its own; a case that takes longer than `DRYDOCK_BENCH_SIM_TIMEOUT` seconds (default 300)
//! is killed and reported as such. Each case runs three times (`DRYDOCK_BENCH_SIM_RUNS`) and
//! the fastest run is shown, as the others are slowed by whatever else the machine does.
//!
//! Run: `cargo bench -p drydock-sim --bench world`. Goals: 10,000 groups well under 30 s with
//! doubling the fleet costing at most 2.2× the time; one group of 100,000 created and rolled
//! well under 30 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_provider::{CreateGroup, GenerationSpec, GroupSettings, Ownership, Provider};
use drydock_sim::{ClockMode, SimConfig, SimProvider};

const LINEAGE: &str = "0b5e55ed-0000-4000-8000-000000000000";
const CASE_ENV: &str = "DRYDOCK_BENCH_SIM_CASE";

fn main() {
    if let Ok(case) = std::env::var(CASE_ENV) {
        child(&case);
        return;
    }
    let timeout = Duration::from_secs(
        std::env::var("DRYDOCK_BENCH_SIM_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(300),
    );
    let runs = std::env::var("DRYDOCK_BENCH_SIM_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    println!("{:<22} {:>10} {:>10} {:>12} {:>10} {:>9}", "case", "ms", "cpu ms", "MB written", "world MB", "peak MB");
    let mut groups_ms = Vec::new();
    for n in [1_000u64, 2_000, 4_000, 10_000] {
        let ms = best(&format!("groups {n}"), timeout, runs);
        groups_ms.push((n, ms));
    }
    for n in [10_000u64, 100_000] {
        best(&format!("instances {n}"), timeout, runs);
    }
    for pair in groups_ms.windows(2) {
        if let [(n1, Some(t1)), (n2, Some(t2))] = pair {
            println!("groups {n1} -> {n2}: {:.2}× the time for {:.2}× the groups", t2 / t1, *n2 as f64 / *n1 as f64);
        }
    }
}

/// Runs one case `runs` times (once if it times out) and prints the rows of the fastest run;
/// returns its total time.
fn best(case: &str, timeout: Duration, runs: usize) -> Option<f64> {
    let mut best: Option<(f64, String)> = None;
    for _ in 0..runs.max(1) {
        let Some((ms, rows)) = run(case, timeout) else {
            println!("{:<22} {:>10}", case, format!("> {} s", timeout.as_secs()));
            return None;
        };
        if best.as_ref().is_none_or(|(fastest, _)| ms < *fastest) {
            best = Some((ms, rows));
        }
    }
    let (ms, rows) = best?;
    print!("{rows}");
    Some(ms)
}

/// Runs one case in a child process; returns its total time and its rows.
fn run(case: &str, timeout: Duration) -> Option<(f64, String)> {
    let mut child =
        Command::new(std::env::current_exe().unwrap()).env(CASE_ENV, case).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "case {case} failed");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // The last row is the case's total.
            let ms = text.lines().last()?.split_whitespace().rev().nth(4).and_then(|ms| ms.parse().ok())?;
            return Some((ms, text));
        }
        if start.elapsed() > timeout {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child(case: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".drydock").join("sim-world.json");
    let config = SimConfig { boot_time_ms: 0, seed: 1, ..SimConfig::default() };
    let sim = SimProvider::new(&path, config, ClockMode::Virtual);
    let (kind, n) = case.split_once(' ').unwrap();
    let n: u32 = n.parse().unwrap();
    runtime.block_on(async {
        match kind {
            "groups" => {
                let phase = Phase::start();
                for k in 0..n {
                    let req = request(&format!("g{k:06}"), &format!("ng{k:06}"), "ami-1", 3);
                    sim.create_group(&req).await.unwrap();
                }
                sim.clock().sleep(1).await;
                let observed = sim.observe(LINEAGE).await.unwrap();
                assert_eq!(observed.groups.len(), n as usize);
                assert!(observed.groups.iter().all(|g| g.in_service() == 3));
                phase.end(case, dir.path());
            }
            "instances" => {
                let total = Phase::start();
                let phase = Phase::start();
                let first = sim.create_group(&request("big-1", "big", "ami-1", n)).await.unwrap();
                sim.clock().sleep(1).await;
                phase.end(&format!("create {n}"), dir.path());

                let phase = Phase::start();
                sim.create_group(&request("big-2", "big", "ami-2", n)).await.unwrap();
                sim.clock().sleep(1).await;
                let ids: Vec<String> = first.instances.iter().map(|i| i.id.clone()).collect();
                sim.terminate_instances("big-1", &ids, true).await.unwrap();
                sim.clock().sleep(SimConfig::default().shutdown_time_ms + 1).await;
                sim.delete_group("big-1").await.unwrap();
                let observed = sim.observe(LINEAGE).await.unwrap();
                assert_eq!(observed.groups.len(), 1);
                assert_eq!(observed.groups[0].in_service(), n as usize);
                phase.end(&format!("roll {n}"), dir.path());
                total.end(case, dir.path());
            }
            _ => panic!("unknown case {case}"),
        }
    });
}

struct Phase {
    start: Instant,
    cpu: Option<u64>,
    written: Option<u64>,
}

impl Phase {
    fn start() -> Phase {
        Phase { start: Instant::now(), cpu: cpu_ms(), written: written() }
    }

    fn end(self, name: &str, dir: &Path) {
        let ms = self.start.elapsed().as_secs_f64() * 1e3;
        let mb = |b: u64| format!("{:.1}", b as f64 / 1e6);
        let written = match (self.written, written()) {
            (Some(a), Some(b)) => mb(b - a),
            _ => "n/a".to_string(),
        };
        let cpu = match (self.cpu, cpu_ms()) {
            (Some(a), Some(b)) => format!("{}", b - a),
            _ => "n/a".to_string(),
        };
        println!("{:<22} {:>10.0} {:>10} {:>12} {:>10} {:>9}", name, ms, cpu, written, mb(world_bytes(dir)), peak_mb());
    }
}

/// The processor time (user and system) of this process so far, in ms, if the system says.
fn cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

fn request(name: &str, node_group: &str, image: &str, desired: u32) -> CreateGroup {
    CreateGroup {
        name: name.into(),
        ownership: Ownership {
            lineage: LINEAGE.into(),
            cluster: "prod".into(),
            node_group: node_group.into(),
            generation: name.into(),
        },
        spec: GenerationSpec {
            image: image.into(),
            instance_types: vec!["m5.large".into()],
            kubernetes_version: "1.31".into(),
            ..GenerationSpec::default()
        },
        settings: GroupSettings {
            min: 0,
            max: desired,
            desired,
            subnets: vec!["subnet-a".into(), "subnet-b".into(), "subnet-c".into()],
            ..GroupSettings::default()
        },
        join: None,
    }
}

/// Bytes this process has handed to `write` so far, if the system says.
fn written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok())
}

/// The peak resident memory of this process, in MB, if the system says.
fn peak_mb() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or("n/a".to_string(), |kb| format!("{}", kb / 1024))
}

/// The size of the world's files (everything under `.drydock/` but the lock).
fn world_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(".drydock"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
