//! `drydock state list`, `drydock state show` and `drydock force-unlock`, run as the real
//! binary on state files written by hand, as an older drydock or a person would leave them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use std::time::Duration;

use drydock_state::store::{LocalStore, DEFAULT_FILE_NAME, DEFAULT_LEASE};
use expect_test::expect;

/// Runs the binary in `dir` with stdin closed (so never a terminal) and no colour.
fn drydock(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A state of format 1 with two clusters, a node group mid-rollout (two generations), one
/// keyed by a for_each key, and a plain and a sensitive output; keys deliberately unsorted.
const STATE: &str = r#"{
  "format_version": 1,
  "lineage": "5b0c6a52-3f4e-4c3e-9b7a-2f1d8e6c4a10",
  "serial": 7,
  "drydock_version": "0.1.0",
  "outputs": {
    "token": { "value": "s3cr3t", "sensitive": true },
    "endpoint": { "value": "https://demo.example" }
  },
  "clusters": {
    "cluster.edge": {
      "name": "edge",
      "provider": "sim",
      "node_groups": {
        "cluster.edge.node_group.pool[\"us-east-1a\"]": {
          "name": "pool",
          "key": "us-east-1a",
          "role": "worker",
          "generations": [
            { "id": "aaaaaaaaaa", "spec": { "image": "img-1" }, "groups": ["edge-pool-us-east-1a-aaaaaaaaaa"] }
          ],
          "settings": {
            "min": 1, "max": 3, "desired": null, "tags": {}, "subnets": ["subnet-a"],
            "health": { "check": "ec2", "grace_period_ms": 300000, "max_unhealthy": { "int": 0 },
                        "unhealthy_timeout_ms": 600000, "startup_timeout_ms": 900000 },
            "rollout": { "max_surge": { "int": 1 }, "max_unavailable": { "int": 0 }, "health_timeout_ms": 600000 }
          }
        }
      }
    },
    "cluster.demo": {
      "name": "demo",
      "key": null,
      "provider": "sim",
      "node_groups": {
        "cluster.demo.node_group.workers": {
          "name": "workers",
          "role": "worker",
          "generations": [
            { "id": "0123456789", "spec": { "image": "img-worker-2026-10", "instance_type": "m6i.xlarge" },
              "groups": ["demo-workers-0123456789"] },
            { "id": "9876543210", "spec": { "image": "img-worker-2026-11", "instance_type": "m6i.xlarge" },
              "groups": ["demo-workers-9876543210"] }
          ],
          "settings": {
            "min": 3, "max": 10, "desired": null, "tags": { "team": "infra" }, "subnets": ["subnet-a", "subnet-b"],
            "health": { "check": "ec2", "grace_period_ms": 300000, "max_unhealthy": { "percent": 10.0 },
                        "unhealthy_timeout_ms": 600000, "startup_timeout_ms": 900000 },
            "rollout": { "max_surge": { "percent": 25.0 }, "max_unavailable": { "int": 0 }, "health_timeout_ms": 600000 }
          },
          "boot_times_ms": [61000, 58500]
        },
        "cluster.demo.node_group.cp": {
          "name": "cp",
          "role": "control-plane",
          "generations": [
            { "id": "c0c0c0c0c0", "spec": { "image": "img-cp" },
              "groups": ["demo-cp-c0c0c0c0c0-0", "demo-cp-c0c0c0c0c0-1", "demo-cp-c0c0c0c0c0-2"] }
          ],
          "settings": {
            "min": 3, "max": 3, "desired": 3, "tags": {}, "subnets": ["subnet-a"],
            "health": { "check": "elb", "grace_period_ms": 300000, "max_unhealthy": { "int": 0 },
                        "unhealthy_timeout_ms": 600000, "startup_timeout_ms": 900000 },
            "rollout": { "max_surge": { "int": 1 }, "max_unavailable": { "int": 0 }, "health_timeout_ms": 600000 }
          }
        }
      }
    }
  }
}
"#;

fn with_state() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DEFAULT_FILE_NAME), STATE).unwrap();
    dir
}

#[test]
fn list_prints_every_address_sorted() {
    let dir = with_state();
    let out = drydock(dir.path(), &["state", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    expect![[r#"
        cluster.demo
        cluster.demo.node_group.cp
        cluster.demo.node_group.workers
        cluster.edge
        cluster.edge.node_group.pool["us-east-1a"]
        output.endpoint
        output.token
    "#]]
    .assert_eq(&text(&out.stdout));
}

#[test]
fn list_without_a_state_file_prints_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let out = drydock(dir.path(), &["state", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).starts_with("note: no state file at "), "{}", text(&out.stderr));
}

#[test]
fn the_state_file_is_found_beside_the_configuration_or_by_flag() {
    let dir = with_state();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/main.kcl"), "").unwrap();
    std::fs::rename(dir.path().join(DEFAULT_FILE_NAME), dir.path().join("config").join(DEFAULT_FILE_NAME)).unwrap();
    for args in [&["state", "list", "config"][..], &["state", "list", "config/main.kcl"]] {
        let out = drydock(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).lines().count(), 7, "{args:?}");
    }
    // `--state` wins over the path.
    std::fs::rename(dir.path().join("config").join(DEFAULT_FILE_NAME), dir.path().join("elsewhere.json")).unwrap();
    let out = drydock(dir.path(), &["state", "list", "config", "--state", "elsewhere.json"]);
    assert_eq!(text(&out.stdout).lines().count(), 7, "{}", text(&out.stderr));
    let out = drydock(dir.path(), &["state", "show", "output.endpoint", "--state", "elsewhere.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn show_a_cluster_lists_its_node_groups_without_their_details() {
    let dir = with_state();
    let out = drydock(dir.path(), &["state", "show", "cluster.demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    expect![[r#"
        {
          "key": null,
          "name": "demo",
          "node_groups": [
            "cluster.demo.node_group.cp",
            "cluster.demo.node_group.workers"
          ],
          "provider": "sim"
        }
    "#]]
    .assert_eq(&text(&out.stdout));
}

#[test]
fn show_a_node_group_with_its_generations_settings_and_boot_times() {
    let dir = with_state();
    let out = drydock(dir.path(), &["state", "show", "cluster.demo.node_group.workers"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    expect![[r#"
        {
          "boot_times_ms": [
            61000,
            58500
          ],
          "generations": [
            {
              "groups": [
                "demo-workers-0123456789"
              ],
              "id": "0123456789",
              "spec": {
                "image": "img-worker-2026-10",
                "instance_type": "m6i.xlarge"
              }
            },
            {
              "groups": [
                "demo-workers-9876543210"
              ],
              "id": "9876543210",
              "spec": {
                "image": "img-worker-2026-11",
                "instance_type": "m6i.xlarge"
              }
            }
          ],
          "key": null,
          "name": "workers",
          "role": "worker",
          "settings": {
            "desired": null,
            "health": {
              "check": "ec2",
              "grace_period_ms": 300000,
              "max_unhealthy": {
                "percent": 10.0
              },
              "startup_timeout_ms": 900000,
              "unhealthy_timeout_ms": 600000
            },
            "max": 10,
            "min": 3,
            "rollout": {
              "health_timeout_ms": 600000,
              "max_surge": {
                "percent": 25.0
              },
              "max_unavailable": {
                "int": 0
              }
            },
            "subnets": [
              "subnet-a",
              "subnet-b"
            ],
            "tags": {
              "team": "infra"
            }
          },
          "unfinished": false
        }
    "#]]
    .assert_eq(&text(&out.stdout));

    let out = drydock(dir.path(), &["state", "show", "cluster.edge.node_group.pool[\"us-east-1a\"]"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"key\": \"us-east-1a\""), "{}", text(&out.stdout));
}

#[test]
fn show_an_output_withholds_sensitive_values() {
    let dir = with_state();
    let out = drydock(dir.path(), &["state", "show", "output.endpoint"]);
    expect![[r#"
        {
          "sensitive": false,
          "value": "https://demo.example"
        }
    "#]]
    .assert_eq(&text(&out.stdout));
    let out = drydock(dir.path(), &["state", "show", "output.token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cr3t") && stdout.contains("(sensitive value)"), "{stdout}");
}

#[test]
fn an_unknown_address_suggests_the_closest_one() {
    let dir = with_state();
    let out = drydock(dir.path(), &["state", "show", "cluster.demo.node_group.wrokers"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    expect![[r#"
        state::unknown_address

          × no `cluster.demo.node_group.wrokers` in the state file ./drydock.state.json
          help: did you mean `cluster.demo.node_group.workers`?

    "#]]
    .assert_eq(&text(&out.stderr));

    let out = drydock(dir.path(), &["state", "show", "nothing.like.it"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("help: `drydock state list` shows every address"), "{}", text(&out.stderr));
}

#[test]
fn a_broken_state_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    std::fs::write(&path, &STATE[..200]).unwrap();
    let out = drydock(dir.path(), &["state", "list"]);
    assert_eq!(out.status.code(), Some(1));
    expect![[r#"
        state::corrupt

          × state file ./drydock.state.json is not valid json: EOF while parsing a string at line 8 column
          │ 7

    "#]]
    .assert_eq(&text(&out.stderr));

    // With a backup beside it, the error says where the previous version is.
    std::fs::write(dir.path().join("drydock.state.json.backup"), STATE).unwrap();
    std::fs::write(&path, STATE.replace("\"serial\": 7", "\"serial\": -7")).unwrap();
    let out = drydock(dir.path(), &["state", "list"]);
    assert_eq!(out.status.code(), Some(1));
    expect![[r#"
        state::format

          × state file ./drydock.state.json: does not match state format 1: invalid value: integer `-7`,
          │ expected u64 at line 4 column 14
          help: the version before the last write is in ./drydock.state.json.backup

    "#]]
    .assert_eq(&text(&out.stderr));

    // But not for a file from a newer drydock, which is not damaged.
    std::fs::write(&path, STATE.replace("\"format_version\": 1", "\"format_version\": 9")).unwrap();
    let out = drydock(dir.path(), &["state", "show", "cluster.demo"]);
    assert_eq!(out.status.code(), Some(1));
    expect![[r#"
        state::format

          × state file ./drydock.state.json: format_version 9 was written by a newer drydock (this one
          │ reads up to 1); upgrade drydock

    "#]]
    .assert_eq(&text(&out.stderr));
}

fn lock_info(dir: &Path) -> Option<drydock_state::store::LockInfo> {
    LocalStore::new(dir.join(DEFAULT_FILE_NAME)).lock_info().unwrap()
}

#[test]
fn force_unlock_without_a_terminal_needs_force() {
    let dir = with_state();
    let store = LocalStore::new(dir.path().join(DEFAULT_FILE_NAME));
    // This test process plays the stuck holder.
    let held = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
    let id = held.id().to_string();

    let out = drydock(dir.path(), &["force-unlock", &id]);
    assert_eq!(out.status.code(), Some(1));
    expect![[r#"
        state::confirm

          × force-unlock needs confirmation, and stdin is not a terminal to ask on
          help: pass --force to clear the lock without asking

    "#]]
    .assert_eq(&text(&out.stderr));
    assert_eq!(lock_info(dir.path()).as_ref(), Some(held.info()), "still locked");

    let out = drydock(dir.path(), &["force-unlock", "wrong-id", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("locked with id {id}, not wrong-id")), "{}", text(&out.stderr));
    assert_eq!(lock_info(dir.path()).as_ref(), Some(held.info()), "still locked");

    let out = drydock(dir.path(), &["force-unlock", &id, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("The lock {id} on ./drydock.state.json was cleared.\n"));
    assert_eq!(lock_info(dir.path()), None);
    assert!(store.lock("plan", DEFAULT_LEASE, Duration::ZERO).is_ok(), "the next run can lock the state");

    let out = drydock(dir.path(), &["force-unlock", &id, "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not locked"), "{}", text(&out.stderr));
}

/// A configuration on the simulated cloud with one small node group.
fn sim_config(dir: &Path) {
    std::fs::write(
        dir.join("main.kcl"),
        "provider \"sim\" {}\n\ncluster \"demo\" {\n  kubernetes_version = \"1.31\"\n  network {\n    subnets = [\"subnet-a\"]\n  }\n  node_group \"workers\" {\n    image = \"img-1\"\n    instance_type = \"m6i.large\"\n    size = 1\n  }\n}\n",
    )
    .unwrap();
}

#[test]
fn a_local_lock_left_by_a_dead_process_is_named_and_a_stale_held_one_says_how_to_clear_it() {
    let dir = tempfile::tempdir().unwrap();
    sim_config(dir.path());
    let store = LocalStore::new(dir.path().join(DEFAULT_FILE_NAME));
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", ".", "--auto-approve"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(dir.path())
            .args(&args)
            .env("NO_COLOR", "1")
            .env("DRYDOCK_SIM_CLOCK", "virtual")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // A holder that died: its info is left, the OS lock is free. The next apply runs, and
    // says whose lock it was.
    let dead = {
        let lock = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
        let mut info = lock.info().clone();
        info.pid = 999_999_999;
        lock.release().unwrap();
        info
    };
    std::fs::write(store.lock_path(), serde_json::to_string(&dead).unwrap()).unwrap();
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("note: the previous holder of the state lock (apply by")
            && text(&out.stderr).contains("pid 999999999")
            && text(&out.stderr).contains("ended without releasing the lock"),
        "{}",
        text(&out.stderr)
    );

    // The OS lock held (here by this test process, as by a machine sharing the directory),
    // with info naming a pid that no longer runs here: stale, with the command to clear it.
    let held = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
    let mut info = held.info().clone();
    info.pid = 999_999_999;
    std::fs::write(store.lock_path(), serde_json::to_string(&info).unwrap()).unwrap();
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("its holder (pid 999999999) is no longer running on this host"), "{err}");
    assert!(err.contains(&format!("drydock force-unlock {}", info.id)), "{err}");
    drop(held);

    // A live holder: a waiting run gets the lock once it is released.
    let held = store.lock("apply", DEFAULT_LEASE, Duration::ZERO).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    });
    let out = apply(&["--lock-timeout", "30s"]);
    releaser.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
