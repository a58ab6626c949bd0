//! State in S3 with leased locks, through the `drydock` binary against moto's S3, with the
//! simulated cloud as the provider (the state backend is what is under test).
//!
//! Asserts on what S3 holds (boto3 calls), not on drydock's own view.

mod common;
mod moto;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::machine::{assert_no_changes, assert_success, diagnostic_codes, plan_with};
use moto::Moto;
use serde_json::Value;

const BUCKET: &str = "drydock-state";
const KEY: &str = "teams/demo/state.json";

/// A configuration on the sim keeping its state in moto's S3, with a short lease; `boot` is
/// the sim's boot time (with the real clock, it sets how long an apply takes).
fn config(boot: &str, lease: &str) -> String {
    format!(
        r#"provider "sim" {{
  boot_time = {boot}
}}

variable "run" {{
  default = "none"
}}

variable "size" {{
  type    = number
  default = 2
}}

backend "s3" {{
  bucket     = "{BUCKET}"
  key        = "{KEY}"
  lock_lease = {lease}
}}

cluster "demo" {{
  kubernetes_version = "1.31"
  network {{
    subnets = ["subnet-a", "subnet-b"]
  }}
  node_group "workers" {{
    image         = "img-1"
    instance_type = "m6i.large"
    size          = var.size
  }}
}}

output "run" {{
  value = var.run
}}
"#
    )
}

struct World {
    moto: Moto,
    dir: tempfile::TempDir,
}

impl World {
    fn new(boot: &str, lease: &str, versioning: bool) -> World {
        let moto = Moto::start();
        moto.py(&format!(
            "s3.create_bucket(Bucket='{BUCKET}')\n\
             if {}: s3.put_bucket_versioning(Bucket='{BUCKET}', VersioningConfiguration={{'Status': 'Enabled'}})\n\
             out(True)",
            if versioning { "True" } else { "False" }
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.kcl"), config(boot, lease)).unwrap();
        World { moto, dir }
    }

    fn command(&self, args: &[&str], clock: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
        c.current_dir(self.dir.path())
            .args(args)
            .envs(self.moto.env())
            .env("NO_COLOR", "1")
            .env("DRYDOCK_SIM_CLOCK", clock)
            // The harness waits for locks by default; these tests say when to wait.
            .env("DRYDOCK_LOCK_TIMEOUT", "0s")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args, "virtual").output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = text(&out);
        assert!(out.status.success(), "drydock {args:?} failed:\n{text}");
        text
    }

    /// `drydock plan ARGS --format json` (`args` is what follows `plan`; the run must succeed).
    fn plan(&self, args: &[&str]) -> Value {
        plan_with(args, |args| self.run(args)).0
    }

    /// A run that must fail with exit code 1: the codes of the diagnostics it printed.
    fn refused(&self, args: &[&str]) -> Vec<String> {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "drydock {args:?}: {}", text(&out));
        diagnostic_codes(&out.stderr)
    }

    fn spawn(&self, args: &[&str], clock: &str) -> Child {
        self.command(args, clock).spawn().unwrap()
    }

    /// The state object as S3 holds it, or Null.
    fn s3_state(&self) -> Value {
        self.moto.py(&format!(
            "try:\n    out(json.loads(s3.get_object(Bucket='{BUCKET}', Key='{KEY}')['Body'].read()))\n\
             except s3.exceptions.NoSuchKey:\n    out(None)"
        ))
    }

    fn lock_exists(&self) -> bool {
        self.moto
            .py(&format!("r = s3.list_objects_v2(Bucket='{BUCKET}', Prefix='{KEY}.lock')\nout(r.get('KeyCount', 0))"))
            .as_u64()
            .unwrap()
            > 0
    }

    /// Waits (polling S3) until a lock object exists.
    fn wait_for_lock(&self, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.lock_exists() {
            assert!(child.try_wait().unwrap().is_none(), "the run ended before it took the lock");
            assert!(Instant::now() < deadline, "no lock object within 60 s");
        }
    }
}

/// stdout and stderr, with a diagnostic's wrapping undone (`│` gutters, line breaks).
fn text(out: &Output) -> String {
    let all = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    all.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn two_applies_at_once_one_runs_and_the_other_names_the_holder() {
    let w = World::new("3s", "5s", false);
    // With the real clock the apply waits ~3 s for its nodes to boot, holding the lock.
    let mut first = w.spawn(&["apply", ".", "--auto-approve"], "real");
    w.wait_for_lock(&mut first);
    let second = w.run(&["apply", ".", "--auto-approve"]);
    let err = text(&second);
    assert_eq!(second.status.code(), Some(1), "{err}");
    // The error has no code or JSON form: who holds the lock, and until when, is the hint
    // the user must see.
    assert!(err.contains("the state is locked: apply by"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("its lease ends at"), "{err}");
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    // The winner's state is in S3, its lock is gone, and the loser changed nothing.
    let state = w.s3_state();
    assert_eq!(state["clusters"]["cluster.demo"]["node_groups"].as_object().unwrap().len(), 1);
    assert!(!w.lock_exists());
    assert_no_changes(&w.plan(&["."]), "after the winner's apply");
    // Reading needs no lock, and force-unlock of a lock that is not there says so.
    let list = w.run(&["state", "list", "."]);
    assert_success(&list, "state list");
    let addresses = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(addresses.lines().any(|l| l == "cluster.demo.node_group.workers"), "{addresses}");
    assert_eq!(w.refused(&["force-unlock", "nope", ".", "--force"]), ["state::not_locked"]);
}

#[test]
fn a_killed_holders_lease_expires_and_the_next_apply_proceeds_without_force_unlock() {
    let w = World::new("3s", "2s", false);
    let mut holder = w.spawn(&["apply", ".", "--auto-approve"], "real");
    w.wait_for_lock(&mut holder);
    // kill -9: no release, no renewal.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(w.lock_exists(), "a killed holder leaves its lock");
    // Without waiting: refused, naming the dead holder and when its lease ends.
    let refused = w.run(&["apply", ".", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    // No code or JSON form: naming the dead holder is the hint the user must see.
    assert!(text(&refused).contains(&format!("pid {}", holder.id())), "{}", text(&refused));
    // With --lock-timeout: the lease ends within 2 s and the lock is taken over (the apply
    // runs, and releases it), with a note that names whose lock it was.
    let out = w.ok(&["apply", ".", "--auto-approve", "--lock-timeout", "30s"]);
    assert!(out.contains("stopped renewing its lease, which ended; the lock was taken over"), "{out}");
    assert!(out.contains(&format!("pid {}", holder.id())), "{out}");
    assert!(!w.lock_exists(), "released at the end");
    // Whatever the killed run created was adopted: nothing left to do.
    assert_no_changes(&w.plan(&["."]), "after the takeover");

    // Or, without waiting for the lease: force-unlock with the id the error names.
    let main = w.dir.path().join("main.kcl");
    std::fs::write(&main, std::fs::read_to_string(&main).unwrap().replace("img-1", "img-2")).unwrap();
    let mut holder = w.spawn(&["apply", ".", "--auto-approve"], "real");
    w.wait_for_lock(&mut holder);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let id =
        w.moto.py(&format!("out(json.loads(s3.get_object(Bucket='{BUCKET}', Key='{KEY}.lock')['Body'].read())['id'])"));
    let id = id.as_str().unwrap();
    assert_eq!(w.refused(&["force-unlock", "not-the-id", ".", "--force"]), ["state::lock_id"]);
    assert!(w.lock_exists(), "the wrong id clears nothing");
    w.ok(&["force-unlock", id, ".", "--force"]);
    assert!(!w.lock_exists());
    w.ok(&["apply", ".", "--auto-approve"]);
    assert_no_changes(&w.plan(&["."]), "after the apply");
}

#[test]
fn twenty_concurrent_runs_with_random_kills_never_lose_an_update() {
    let w = World::new("2s", "3s", true);
    w.ok(&["apply", ".", "--auto-approve", "--var", "run=first"]);
    let mut rng = drydock_testgen::Rng::new(0x5eed_1234_abcd_0042);
    let runs: Vec<(String, u64, Option<u64>)> = (0..20)
        .map(|i| {
            let size = 1 + rng.next_u64() % 3;
            // About a third are killed, at a random moment in their first 3 s.
            let kill = rng.next_u64().is_multiple_of(3).then(|| rng.next_u64() % 3000);
            (format!("r{i}"), size, kill)
        })
        .collect();
    let started = Instant::now();
    let mut children: Vec<(Child, Option<u64>, String)> = runs
        .iter()
        .map(|(run, size, kill)| {
            let args = [
                "apply",
                ".",
                "--auto-approve",
                "--lock-timeout",
                "300s",
                "--var",
                &format!("run={run}"),
                "--var",
                &format!("size={size}"),
            ];
            (w.spawn(&args, "virtual"), *kill, run.clone())
        })
        .collect();
    // Kill on schedule.
    loop {
        let mut pending = false;
        for (child, kill, _) in children.iter_mut() {
            if let Some(at) = *kill {
                if started.elapsed() >= Duration::from_millis(at) {
                    let _ = child.kill();
                    *kill = None;
                } else {
                    pending = true;
                }
            }
        }
        if !pending {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut succeeded = vec![];
    for (i, (child, _, run)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let killed = runs[i].2.is_some();
        if out.status.success() {
            succeeded.push(run);
        } else {
            // A run that was not killed may fail only safely: on a loaded machine its lease
            // renewal can come late, another run take the lock over, and its next write is then
            // refused as conflicting (nothing overwritten) — what the rest of this test checks.
            let conflict =
                text(&out).contains("was changed by another run since this one read it; nothing was overwritten");
            assert!(killed || conflict, "{run} was not killed, yet failed:\n{}", text(&out));
        }
    }
    let killed = runs.iter().filter(|r| r.2.is_some()).count();
    eprintln!("{} runs: {} succeeded, {killed} killed", runs.len(), succeeded.len());
    assert!(succeeded.len() >= 10, "{succeeded:?}");

    // Every version S3 kept of the state object, and of the write-ahead journal's objects
    // (`KEY.journal/<serial>`: a header line, then one record per line, each line prefixed
    // with its checksum), with the serials each write made.
    let written = w.moto.py(&format!(
        "vs = s3.list_object_versions(Bucket='{BUCKET}', Prefix='{KEY}').get('Versions', [])\n\
         body = lambda v: s3.get_object(Bucket='{BUCKET}', Key=v['Key'], VersionId=v['VersionId'])['Body'].read().decode()\n\
         out({{'states': [json.loads(body(v)) for v in vs if v['Key'] == '{KEY}'],\n\
              'journal': [body(v) for v in vs if v['Key'].startswith('{KEY}.journal/')]}})"
    ));
    let mut versions: Vec<Value> = written["states"].as_array().unwrap().clone();
    versions.sort_by_key(|v| v["serial"].as_u64().unwrap());
    let records: Vec<Value> = written["journal"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|body| body.as_str().unwrap().lines().skip(1).map(|l| serde_json::from_str(&l[17..]).unwrap()))
        .collect::<Vec<Value>>();
    let serials: Vec<u64> = versions.iter().map(|v| v["serial"].as_u64().unwrap()).collect();
    let mut record_serials: Vec<u64> = records.iter().map(|r| r["serial"].as_u64().unwrap()).collect();
    record_serials.sort();
    // One lineage; no serial written twice as a state version or twice as a record; and all
    // serials written, 1, 2, 3, … with no gap (a state version rewritten from the journal
    // repeats the serial of its last record): every write was made on top of the one before
    // it, so no update was lost.
    assert!(versions.iter().all(|v| v["lineage"] == versions[0]["lineage"]));
    assert!(serials.windows(2).all(|w| w[0] < w[1]), "two state versions share a serial: {serials:?}");
    assert!(record_serials.windows(2).all(|w| w[0] < w[1]), "two records share a serial: {record_serials:?}");
    let all: Vec<u64> = serials
        .iter()
        .chain(&record_serials)
        .copied()
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    let expected: Vec<u64> = (all[0]..all[0] + all.len() as u64).collect();
    assert_eq!(all, expected, "the state's history is not one line");
    // Every successful run's change is in the history, and the newest version is the state.
    let outputs = |run: &str| {
        versions.iter().any(|v| v["outputs"]["run"]["value"] == run)
            || records.iter().any(|r| {
                r["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["kind"] == "outputs" && c["outputs"]["run"]["value"] == run)
            })
    };
    for run in &succeeded {
        assert!(outputs(run), "{run} succeeded but its outputs were never written");
    }
    // (Read as a run reads it: the state object with the journal a killed run left replayed.)
    let pulled = w.run(&["state", "pull", "."]);
    assert!(pulled.status.success(), "{}", text(&pulled));
    let current: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(current["serial"].as_u64(), all.last().copied());
    // And the state describes the cloud: one more apply (waiting out a killed holder's lease)
    // leaves nothing to do.
    w.ok(&["apply", ".", "--auto-approve", "--lock-timeout", "60s", "--var", "run=last"]);
    assert_no_changes(&w.plan(&[".", "--var", "run=last"]), "after the last apply");
}

#[test]
fn push_pull_and_migrate_round_trip_between_local_and_s3() {
    let w = World::new("2s", "5s", false);
    let main = w.dir.path().join("main.kcl");
    let with_s3 = std::fs::read_to_string(&main).unwrap();
    let start = with_s3.find("backend \"s3\"").unwrap();
    let end = start + with_s3[start..].find("}\n").unwrap() + 2;
    let local_only = format!("{}{}", &with_s3[..start], &with_s3[end..]);

    // Applied with local state first.
    std::fs::write(&main, &local_only).unwrap();
    w.ok(&["apply", ".", "--auto-approve"]);
    let local_path = w.dir.path().join("drydock.state.json");
    let local: Value = serde_json::from_slice(&std::fs::read(&local_path).unwrap()).unwrap();

    // The backend block appears: every command refuses until the state is migrated.
    std::fs::write(&main, &with_s3).unwrap();
    let out = w.run(&["plan", "."]);
    assert_eq!(out.status.code(), Some(1));
    // No code or JSON form: what to do is the hint the user must see.
    assert!(text(&out).contains("run `drydock state migrate`"), "{}", text(&out));
    w.ok(&["state", "migrate", "."]);
    assert_eq!(w.s3_state(), local, "S3 holds the local state as it was, serial included");
    assert_no_changes(&w.plan(&["."]), "after the migration");
    // Again: a no-op, whose note is all that tells the user nothing was moved.
    assert!(w.ok(&["state", "migrate", "."]).contains("nothing to migrate"));
    assert_eq!(w.s3_state(), local);

    // pull prints exactly what S3 holds.
    let pulled = w.run(&["state", "pull", "."]);
    assert!(pulled.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&pulled.stdout).unwrap(), local);
    std::fs::write(w.dir.path().join("pulled.json"), &pulled.stdout).unwrap();

    // An apply moves S3 on; pushing the older copy is refused, as is another lineage.
    w.ok(&["apply", ".", "--auto-approve", "--var", "size=3"]);
    let newer = w.s3_state();
    assert!(newer["serial"].as_u64() > local["serial"].as_u64());
    assert_eq!(w.refused(&["state", "push", "pulled.json", "."]), ["state::push_refused"], "an older serial");
    assert_eq!(w.s3_state(), newer, "nothing was pushed");
    let mut other = local.clone();
    other["lineage"] = "00000000-0000-4000-8000-000000000000".into();
    other["serial"] = 999.into();
    std::fs::write(w.dir.path().join("other.json"), other.to_string()).unwrap();
    assert_eq!(w.refused(&["state", "push", "other.json", "."]), ["state::push_refused"], "another lineage");
    assert_eq!(w.s3_state(), newer, "nothing was pushed");

    // A newer serial of the same lineage is pushed as it is; --force pushes an older one with
    // a serial past the state's.
    let mut bumped = newer.clone();
    bumped["serial"] = (newer["serial"].as_u64().unwrap() + 5).into();
    std::fs::write(w.dir.path().join("bumped.json"), bumped.to_string()).unwrap();
    w.ok(&["state", "push", "bumped.json", "."]);
    assert_eq!(w.s3_state(), bumped);
    w.ok(&["state", "push", "pulled.json", ".", "--force"]);
    assert_eq!(w.s3_state()["serial"].as_u64(), Some(bumped["serial"].as_u64().unwrap() + 1));
    w.ok(&["state", "push", "bumped.json", ".", "--force"]);
    let in_s3 = w.s3_state();

    // Back to a local file: the block goes, migrate brings S3's state (newer than the old
    // local copy) home.
    std::fs::write(&main, &local_only).unwrap();
    let out = w.run(&["plan", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("run `drydock state migrate`"), "the hint, as above: {}", text(&out));
    w.ok(&["state", "migrate", "."]);
    let home: Value = serde_json::from_slice(&std::fs::read(&local_path).unwrap()).unwrap();
    assert_eq!(home, in_s3);
    assert_no_changes(&w.plan(&[".", "--var", "size=3"]), "back on the local file");
}

#[test]
fn a_missing_bucket_is_a_clear_error() {
    let w = World::new("2s", "5s", false);
    let cfg = std::fs::read_to_string(w.dir.path().join("main.kcl")).unwrap().replace(BUCKET, "no-such-bucket");
    std::fs::write(w.dir.path().join("main.kcl"), cfg).unwrap();
    let out = w.run(&["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    // What the user reads is the point: the error has no code or JSON form, and names the
    // object and what to do.
    let err = text(&out);
    assert!(err.contains("s3://no-such-bucket/teams/demo/state.json"), "{err}");
    assert!(err.contains("does not exist; create it"), "{err}");
}
