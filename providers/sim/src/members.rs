//! The real etcd members of a world with [`SimConfig::etcd`](crate::SimConfig::etcd): the
//! reconciler that starts, joins and stops their processes, `stop_all`, and what
//! [`status`](crate::status) reads of them.
//!
//! # The reconciler
//!
//! Processes are no part of the pure world (ops are replayed by every process that uses the
//! world, and a replay must never start or stop anything). So after a process has applied its
//! ops and made them durable, still under the world's lock, [`reconcile`] compares the members
//! the world wants ([`World::etcd_wanted`]: control-plane instances running, not crashed, whose
//! Node has registered) with the processes that run, acts, and records what it did as ops
//! (`Op::EtcdMember`, `Op::EtcdStopped`, `Op::EtcdFailed`), which it applies and the store
//! appends like any other. Every change of the world goes through it, so when a provider call
//! or an API request returns, its members are as the world wants them:
//!
//! - a wanted member without a record joins: the first of its cluster initialises etcd
//!   (`--initial-cluster-state new`, a single member); later ones are added through the
//!   recorded members as a learner with their new peer URL, started with
//!   `--initial-cluster-state existing` and the `--initial-cluster` built from the member list
//!   etcd returns, and promoted once in sync (what `kubeadm join` does). Then its Node is Ready.
//!   A join that fails is undone as far as it can be (the process killed, the learner removed)
//!   and recorded with its error; it is not tried again, and the Node stays NotReady saying why;
//! - a running member whose process is gone is recorded stopped and stays so (etcd exits by
//!   itself once removed from its cluster), unless the host has rebooted since it started
//!   (another boot id), when it is started again on its data directory;
//! - a member that is not wanted any more (its instance crashed, was terminated or is gone) is
//!   killed with SIGKILL, and stays in etcd's member list, dead, until someone removes it. The
//!   directory of an instance that is gone is removed.
//!
//! # On disk
//!
//! Beside the world file, `<world>.etcd/<cluster>/<instance>/` (mode 0700; names with
//! characters other than letters, digits, `-`, `_` and `.` are %-escaped) holds a member's
//! `data/` directory, its `etcd.log`, `member.json` (the member id once added) and `pid`
//! (`PID BOOT_ID`). A pid counts as the member's only while `/proc/PID` is a live process whose
//! command line names the member's data directory, so a reused pid is never killed. Members
//! listen on 127.0.0.1, on free ports, plain HTTP, with a 50 ms heartbeat, a 500 ms election
//! timeout and no strict reconfiguration check (so that a replacement joins while a dead member
//! is still listed: removing it is drydock's job). Processes run in their own process group
//! (a Ctrl-C of drydock does not reach them) and outlive the process that started them, as
//! machines do; [`stop_all`] kills every member of a world.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drydock_etcd::EtcdClient;
use drydock_provider::etcd::EtcdMember;
use drydock_provider::Etcd as _;

use crate::etcd::{EtcdRecord, EtcdRecords, MemberState, Wanted};
use crate::status::EtcdMemberStatus;
use crate::world::{Op, World};
use crate::SimError;

/// How long a member may take to start (and, joining, to catch up and be promoted).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Starts whose process exits at once (a port taken meanwhile) are tried this often.
const START_ATTEMPTS: usize = 3;

/// The processes this process started, kept to reap them once they exit (a killed child is a
/// zombie until its parent waits for it).
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<Child>> {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits for the children that have exited.
fn reap() {
    children().retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

/// `<world>.etcd`, spelt the same way by every process (members are recognised by their data
/// directory's path on their command line): canonical once it exists, else absolute.
pub(crate) fn root(world: &Path) -> PathBuf {
    let mut name = world.as_os_str().to_owned();
    name.push(".etcd");
    let root = PathBuf::from(name);
    fs::canonicalize(&root).or_else(|_| std::path::absolute(&root)).unwrap_or(root)
}

/// A cluster or instance name as one path component.
fn escape(name: &str) -> String {
    let mut out = String::new();
    for (k, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && k > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

fn unescape(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k] == b'%' {
            if let Some(b) = name.get(k + 1..k + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                k += 3;
                continue;
            }
            if bytes.len() == 1 {
                return String::new();
            }
        }
        out.push(bytes[k]);
        k += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn member_dir(root: &Path, cluster: &str, instance: &str) -> PathBuf {
    root.join(escape(cluster)).join(escape(instance))
}

/// Every member directory on disk: (cluster, instance, directory).
fn on_disk(root: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(clusters) = fs::read_dir(root) else {
        return out;
    };
    for cluster in clusters.flatten().filter(|e| e.path().is_dir()) {
        let Ok(instances) = fs::read_dir(cluster.path()) else {
            continue;
        };
        for instance in instances.flatten().filter(|e| e.path().is_dir()) {
            out.push((
                unescape(&cluster.file_name().to_string_lossy()),
                unescape(&instance.file_name().to_string_lossy()),
                instance.path(),
            ));
        }
    }
    out.sort();
    out
}

/// This boot of the host.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The pid file: (pid, boot id).
fn read_pid(dir: &Path) -> Option<(u32, String)> {
    let text = fs::read_to_string(dir.join("pid")).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    Some((pid, words.next().unwrap_or_default().to_string()))
}

/// Whether `pid` is gone: no such process, or a zombie (dead, not reaped yet).
fn gone(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // `PID (COMM) STATE …`: the state follows the last parenthesis.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('Z' | 'X' | 'x') | None)
}

/// Whether `pid` is a live (not zombie) etcd serving the member of `dir`.
fn is_member_process(pid: u32, dir: &Path) -> bool {
    if gone(pid) {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let data = dir.join("data");
    let data = data.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == data)
}

/// The member's process, if it runs.
fn running_pid(dir: &Path) -> Option<u32> {
    read_pid(dir).map(|(pid, _)| pid).filter(|pid| is_member_process(*pid, dir))
}

/// Kills the member's process (SIGKILL) if it runs, and waits (at most 5 s) until it is gone.
/// Returns whether there was one.
fn kill(dir: &Path) -> bool {
    let Some(pid) = running_pid(dir) else {
        return false;
    };
    if let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
    // Until it is really gone: a dying process loses its command line before it dies.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    reap();
    true
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// A free port on 127.0.0.1 (free when this returns).
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Brings the world's etcd members in line with what it wants (see the module docs): acts on
/// processes, applies the ops that record what it did to `world`, and returns them for the
/// store to append. Does nothing in a world that never had etcd.
pub(crate) fn reconcile(world_path: &Path, world: &mut World) -> Vec<Op> {
    if !world.config.etcd && world.etcd.is_empty() {
        return Vec::new();
    }
    reap();
    let wanted = world.etcd_wanted();
    if !wanted.is_empty() {
        // Created first, so that its path is the canonical one from the start.
        let _ = create_private_dir(&root(world_path));
    }
    let root = root(world_path);
    let world_file = fs::canonicalize(world_path).unwrap_or_else(|_| world_path.to_path_buf());
    let wanted_keys: BTreeSet<(String, String)> =
        wanted.iter().map(|w| (w.cluster.clone(), w.instance.clone())).collect();
    let mut ops = Vec::new();
    let mut record = |world: &mut World, op: Op| {
        let _ = world.apply(&op);
        ops.push(op);
    };

    // What must not run.
    for (cluster, instance, dir) in on_disk(&root) {
        if wanted_keys.contains(&(cluster.clone(), instance.clone())) {
            continue;
        }
        kill(&dir);
        if state_of(world, &cluster, &instance) == Some(MemberState::Running) {
            let reason = world.etcd_unwanted_reason(&instance);
            record(world, Op::EtcdStopped { cluster: cluster.clone(), instance: instance.clone(), reason });
        }
        if world.instance_by_id(&instance).is_none() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
    let running: Vec<(String, String)> = world
        .etcd
        .iter()
        .flat_map(|(c, m)| {
            m.iter().filter(|(_, r)| r.state == MemberState::Running).map(|(i, _)| (c.clone(), i.clone()))
        })
        .filter(|key| !wanted_keys.contains(key))
        .collect();
    for (cluster, instance) in running {
        let reason = world.etcd_unwanted_reason(&instance);
        record(world, Op::EtcdStopped { cluster, instance, reason });
    }

    // What must run.
    let boot = boot_id();
    for w in wanted {
        let dir = member_dir(&root, &w.cluster, &w.instance);
        let current = world.etcd.get(&w.cluster).and_then(|c| c.get(&w.instance)).cloned();
        match current {
            Some(r) if r.state == MemberState::Running => {
                if running_pid(&dir).is_some() {
                    continue;
                }
                let rebooted = read_pid(&dir).is_some_and(|(_, b)| !b.is_empty() && b != boot);
                let reason = if rebooted {
                    match restart(&dir, &world_file, &w.cluster, &r) {
                        Ok(()) => continue,
                        Err(e) => format!("etcd did not start again after the host rebooted: {e}"),
                    }
                } else {
                    "etcd exited".to_string()
                };
                record(world, Op::EtcdStopped { cluster: w.cluster.clone(), instance: w.instance.clone(), reason });
            }
            Some(_) => {}
            None => {
                let op = match join(&dir, &world_file, world, &w) {
                    Ok((member_id, client_url, peer_url)) => Op::EtcdMember {
                        cluster: w.cluster.clone(),
                        instance: w.instance.clone(),
                        name: w.name.clone(),
                        member_id,
                        client_url,
                        peer_url,
                    },
                    Err(error) => Op::EtcdFailed {
                        cluster: w.cluster.clone(),
                        instance: w.instance.clone(),
                        name: w.name.clone(),
                        error,
                    },
                };
                record(world, op);
            }
        }
    }
    ops
}

fn state_of(world: &World, cluster: &str, instance: &str) -> Option<MemberState> {
    world.etcd.get(cluster).and_then(|c| c.get(instance)).map(|r| r.state)
}

/// How a member is started: its name, URLs, and how it finds its cluster (none: it has data).
struct Launch<'a> {
    name: &'a str,
    client_url: &'a str,
    peer_url: &'a str,
    /// `--initial-cluster` and `--initial-cluster-state`.
    initial: Option<(String, &'static str)>,
    cluster: &'a str,
}

/// What runs a member: its etcd in the background (output to its log), a watchdog that kills
/// it once the world file is gone (a world deleted, a test's directory removed: its machines
/// go with it), and a wait for etcd, which reaps it whoever kills it. Prints etcd's pid first.
/// Arguments: the world file, the log, then etcd's command line.
const SUPERVISOR: &str = r#"world=$1; log=$2; shift 2
"$@" >>"$log" 2>&1 </dev/null &
member=$!
echo "$member"
exec >/dev/null 2>&1
(while [ -e "$world" ]; do sleep 1; done; kill -9 "$member") &
watchdog=$!
wait "$member"
kill "$watchdog"
"#;

/// Starts a member's etcd in `dir` (under [`SUPERVISOR`]) and records its pid.
fn spawn(dir: &Path, world_file: &Path, launch: &Launch<'_>) -> Result<u32, String> {
    let binary =
        drydock_etcd::etcd_binary().ok_or_else(|| format!("etcd is not installed: {}", drydock_etcd::INSTALL_HINT))?;
    create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut etcd = drydock_etcd::etcd_command(&binary);
    etcd.arg("--name")
        .arg(launch.name)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen-client-urls", launch.client_url, "--advertise-client-urls", launch.client_url])
        .args(["--listen-peer-urls", launch.peer_url, "--initial-advertise-peer-urls", launch.peer_url])
        .args(["--heartbeat-interval", "50", "--election-timeout", "500", "--strict-reconfig-check=false"])
        .arg("--initial-cluster-token")
        .arg(format!("drydock-sim-{}", escape(launch.cluster)));
    if let Some((initial, state)) = &launch.initial {
        etcd.args(["--initial-cluster", initial, "--initial-cluster-state", state]);
    }
    let mut command = std::process::Command::new("/bin/sh");
    command.arg("-c").arg(SUPERVISOR).arg("drydock-etcd-member").arg(world_file).arg(dir.join("etcd.log"));
    command.arg(etcd.get_program()).args(etcd.get_args());
    for (name, value) in etcd.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    // Its own process group: a Ctrl-C of drydock's terminal does not reach the "machines".
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).process_group(0);
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let first = child.stdout.take().map(|out| {
        let mut line = String::new();
        let _ = io::BufRead::read_line(&mut io::BufReader::new(out), &mut line);
        line
    });
    children().push(child);
    let pid: u32 =
        first.and_then(|line| line.trim().parse().ok()).ok_or_else(|| format!("{} did not start", binary.display()))?;
    let record = format!("{pid} {}\n", boot_id());
    drydock_fsutil::write_atomically(&dir.join("pid"), record.as_bytes(), 0o600)
        .map_err(|e| format!("cannot write {}: {}", dir.join("pid").display(), e.source))?;
    Ok(pid)
}

/// Whether the process `pid` has exited (the last lines of its log say why).
fn exited(pid: u32, dir: &Path) -> Option<String> {
    reap();
    if is_member_process(pid, dir) {
        return None;
    }
    let log = fs::read_to_string(dir.join("etcd.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().filter(|l| !l.trim().is_empty()).take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Some(format!("etcd exited: {}", tail.join(" | ")))
}

/// The first member of a cluster: a new etcd of one. (member id, client URL, peer URL).
fn initialise(dir: &Path, world_file: &Path, w: &Wanted) -> Result<(u64, String, String), (String, bool)> {
    let (client_url, peer_url) = urls().map_err(|e| (e, false))?;
    let launch = Launch {
        name: &w.name,
        client_url: &client_url,
        peer_url: &peer_url,
        initial: Some((format!("{}={peer_url}", w.name), "new")),
        cluster: &w.cluster,
    };
    let pid = spawn(dir, world_file, &launch).map_err(|e| (e, false))?;
    let client = EtcdClient::new(vec![client_url.clone()], None).map_err(|e| (e.to_string(), false))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(why) = exited(pid, dir) {
            return Err((why, true));
        }
        let last = match drydock_etcd::block_on(client.health()) {
            Ok(h) if h.members.len() == 1 && h.members[0].healthy && h.leader == Some(h.members[0].member.id) => {
                return Ok((h.members[0].member.id, client_url, peer_url));
            }
            Ok(h) => format!("{:?}", h.problems()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err((format!("etcd did not start within {} s: {last}", START_TIMEOUT.as_secs()), false));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client URL and a peer URL on free ports.
fn urls() -> Result<(String, String), String> {
    let port = || free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"));
    Ok((format!("http://127.0.0.1:{}", port()?), format!("http://127.0.0.1:{}", port()?)))
}

/// A later member: added as a learner through the recorded members, started, promoted.
fn add(dir: &Path, world_file: &Path, w: &Wanted, seeds: Vec<String>) -> Result<(u64, String, String), (String, bool)> {
    let client = EtcdClient::new(seeds, None).map_err(|e| (e.to_string(), false))?;
    let (client_url, peer_url) = urls().map_err(|e| (e, false))?;
    let (added, members) = drydock_etcd::block_on(client.add_learner(&peer_url))
        .map_err(|e| (format!("cannot add a learner through {}: {e}", client.describe()), false))?;
    let undo = |why: String, retry: bool| {
        kill(dir);
        let _ = drydock_etcd::block_on(client.remove_member(added.id));
        (why, retry)
    };
    let note = format!("{{\"member_id\": {}}}\n", added.id);
    if let Err(e) = create_private_dir(dir) {
        return Err(undo(format!("cannot create {}: {e}", dir.display()), false));
    }
    if let Err(e) = drydock_fsutil::write_atomically(&dir.join("member.json"), note.as_bytes(), 0o600) {
        return Err(undo(format!("cannot write {}: {}", dir.join("member.json").display(), e.source), false));
    }
    let launch = Launch {
        name: &w.name,
        client_url: &client_url,
        peer_url: &peer_url,
        initial: Some((initial_cluster(&members, added.id, &w.name), "existing")),
        cluster: &w.cluster,
    };
    let pid = match spawn(dir, world_file, &launch) {
        Ok(pid) => pid,
        Err(e) => return Err(undo(e, false)),
    };
    // Started: etcd lists it with its name once it has joined.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(why) = exited(pid, dir) {
            return Err(undo(why, true));
        }
        let last = match drydock_etcd::block_on(client.members()) {
            Ok(list) if list.iter().any(|m| m.id == added.id && m.started()) => break,
            Ok(list) => format!("{} members, it has not started", list.len()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(undo(format!("the learner did not start within {} s: {last}", START_TIMEOUT.as_secs()), false));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = drydock_etcd::block_on(client.promote(added.id)) {
        return Err(undo(format!("the learner was not promoted: {e}"), false));
    }
    Ok((added.id, client_url, peer_url))
}

/// kubeadm's `--initial-cluster`: every member by name and peer URL, the new one by its own
/// name (members added but not started have no name: they get a stand-in).
fn initial_cluster(members: &[EtcdMember], new: u64, name: &str) -> String {
    members
        .iter()
        .filter_map(|m| {
            let peer = m.peer_urls.first()?;
            let name = if m.id == new {
                name.to_string()
            } else if m.name.is_empty() {
                format!("unstarted-{:x}", m.id)
            } else {
                m.name.clone()
            };
            Some(format!("{name}={peer}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Joins a wanted member without a record (see the module docs): (member id, client URL,
/// peer URL), or why it could not.
fn join(dir: &Path, world_file: &Path, world: &World, w: &Wanted) -> Result<(u64, String, String), String> {
    // The members recorded in its cluster, running ones first.
    let mut seeds: Vec<(bool, String)> = world
        .etcd
        .get(&w.cluster)
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|r| r.member_id != 0 && !r.client_url.is_empty())
        .map(|r| (r.state != MemberState::Running, r.client_url.clone()))
        .collect();
    seeds.sort();
    let seeds: Vec<String> = seeds.into_iter().map(|(_, url)| url).collect();
    let mut last = String::new();
    for _ in 0..START_ATTEMPTS {
        clear_stale(dir, &seeds);
        let attempt =
            if seeds.is_empty() { initialise(dir, world_file, w) } else { add(dir, world_file, w, seeds.clone()) };
        match attempt {
            Ok(done) => return Ok(done),
            Err((why, again)) => {
                kill(dir);
                let _ = fs::remove_dir_all(dir);
                last = why;
                if !again {
                    break;
                }
            }
        }
    }
    Err(last)
}

/// What an interrupted join left in `dir` (a process, a member added): undone.
fn clear_stale(dir: &Path, seeds: &[String]) {
    if !dir.exists() {
        return;
    }
    kill(dir);
    let added = fs::read_to_string(dir.join("member.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("member_id").and_then(serde_json::Value::as_u64));
    if let (Some(id), false) = (added, seeds.is_empty()) {
        if let Ok(client) = EtcdClient::new(seeds.to_vec(), None) {
            let _ = drydock_etcd::block_on(client.remove_member(id));
        }
    }
    let _ = fs::remove_dir_all(dir);
}

/// Starts a member again on its data directory (the host rebooted).
fn restart(dir: &Path, world_file: &Path, cluster: &str, r: &EtcdRecord) -> Result<(), String> {
    let launch = Launch { name: &r.name, client_url: &r.client_url, peer_url: &r.peer_url, initial: None, cluster };
    let pid = spawn(dir, world_file, &launch)?;
    let client = EtcdClient::new(vec![r.client_url.clone()], None).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(why) = exited(pid, dir) {
            return Err(why);
        }
        if drydock_etcd::block_on(client.members()).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("it did not answer within {} s", START_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills every etcd member process of the world at `world_path` (SIGKILL), under the world's
/// lock; the world's records are left as they are (a later look records them stopped, and they
/// stay so). Returns how many it killed.
pub(crate) fn stop_all(world_path: &Path) -> Result<usize, SimError> {
    let root = root(world_path);
    if !root.is_dir() {
        return Ok(0);
    }
    let lock = crate::store::Lock::take(world_path)?;
    let mut killed = 0;
    for (_, _, dir) in on_disk(&root) {
        if kill(&dir) {
            killed += 1;
        }
    }
    reap();
    lock.release()?;
    Ok(killed)
}

/// The members the world recorded, as [`EtcdMemberStatus`]es: none healthy (nobody asked
/// etcd).
pub(crate) fn recorded(records: &EtcdRecords) -> Vec<EtcdMemberStatus> {
    let mut out = Vec::new();
    for (cluster, members) in records {
        for (instance, r) in members {
            out.push(from_record(cluster, instance, r, None));
        }
    }
    sort(&mut out);
    out
}

fn from_record(cluster: &str, instance: &str, r: &EtcdRecord, error: Option<&str>) -> EtcdMemberStatus {
    EtcdMemberStatus {
        cluster: cluster.to_string(),
        id: format!("{:x}", r.member_id),
        name: if r.state == MemberState::Failed { String::new() } else { r.name.clone() },
        instance: Some(instance.to_string()),
        client_url: (!r.client_url.is_empty()).then(|| r.client_url.clone()),
        learner: false,
        started: r.member_id != 0,
        healthy: false,
        error: r.note.clone().or_else(|| error.map(str::to_string)),
    }
}

fn sort(entries: &mut [EtcdMemberStatus]) {
    entries.sort_by(|a, b| (&a.cluster, &a.name, &a.id).cmp(&(&b.cluster, &b.name, &b.id)));
}

/// The members of every cluster as etcd lists them now (asked through the recorded members'
/// client URLs), each healthy if it answers and the world has its process running; a cluster
/// none of whose members answers is reported from the records. Members that never joined are
/// listed from the records.
pub(crate) fn statuses(records: &EtcdRecords) -> Vec<EtcdMemberStatus> {
    let mut out = Vec::new();
    for (cluster, members) in records {
        let mut seeds: Vec<(bool, String)> = members
            .values()
            .filter(|r| !r.client_url.is_empty())
            .map(|r| (r.state != MemberState::Running, r.client_url.clone()))
            .collect();
        seeds.sort();
        let seeds: Vec<String> = seeds.into_iter().map(|(_, u)| u).collect();
        let by_id: BTreeMap<u64, (&String, &EtcdRecord)> =
            members.iter().filter(|(_, r)| r.member_id != 0).map(|(i, r)| (r.member_id, (i, r))).collect();
        let health = EtcdClient::new(seeds, None).and_then(|c| drydock_etcd::block_on(c.health()));
        match health {
            Ok(h) => {
                for m in &h.members {
                    let record = by_id.get(&m.member.id);
                    let stopped = record.filter(|(_, r)| r.state != MemberState::Running);
                    let error = match stopped {
                        Some((_, r)) => {
                            Some(format!("its process does not run: {}", r.note.as_deref().unwrap_or("stopped")))
                        }
                        None => m.error.clone(),
                    };
                    out.push(EtcdMemberStatus {
                        cluster: cluster.clone(),
                        id: format!("{:x}", m.member.id),
                        name: m.member.name.clone(),
                        instance: record.map(|(i, _)| (*i).clone()),
                        client_url: m
                            .member
                            .client_urls
                            .first()
                            .cloned()
                            .or_else(|| record.map(|(_, r)| r.client_url.clone()).filter(|u| !u.is_empty())),
                        learner: m.member.learner,
                        started: m.member.started(),
                        healthy: m.healthy && stopped.is_none(),
                        error,
                    });
                }
                for (instance, r) in members.iter().filter(|(_, r)| r.state == MemberState::Failed) {
                    out.push(from_record(cluster, instance, r, None));
                }
            }
            Err(e) => {
                for (instance, r) in members {
                    out.push(from_record(cluster, instance, r, Some(&e.to_string())));
                }
            }
        }
    }
    sort(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_to_one_path_component_and_back() {
        for name in ["prod", "i-0123456789abcdef0", "a/b", "..", ".hidden", "", "ü", "a%b", "%"] {
            let escaped = escape(name);
            assert!(!escaped.contains('/') && escaped != "." && escaped != ".." && !escaped.is_empty(), "{name}");
            assert_eq!(unescape(&escaped), name, "{escaped}");
        }
        assert_eq!(escape("prod-1_a.b"), "prod-1_a.b");
    }

    #[test]
    fn initial_cluster_names_every_member() {
        let m = |id, name: &str| EtcdMember {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://127.0.0.1:{id}")],
            client_urls: vec![],
            learner: false,
        };
        let members = [m(1, "a"), m(2, ""), m(3, "")];
        assert_eq!(
            initial_cluster(&members, 3, "c"),
            "a=http://127.0.0.1:1,unstarted-2=http://127.0.0.1:2,c=http://127.0.0.1:3"
        );
    }

    #[test]
    fn a_pid_that_is_not_the_members_is_never_its_process() {
        let dir = tempfile::tempdir().unwrap();
        // This test's own pid: alive, but not an etcd of that directory.
        assert!(!is_member_process(std::process::id(), dir.path()));
        fs::write(dir.path().join("pid"), format!("{} x\n", std::process::id())).unwrap();
        assert_eq!(running_pid(dir.path()), None);
        assert!(!kill(dir.path()));
        assert_eq!(read_pid(dir.path()), Some((std::process::id(), "x".to_string())));
    }
}
