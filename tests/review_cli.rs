//! Plans for review through the binary, on a copy of the quickstart and the simulated cloud
//! (virtual clock): `plan --detailed-exitcode`, `--format json|markdown`, `show` printing a
//! saved plan byte for byte as `plan` did, and colour (`--color`, `--no-color`,
//! `NO_COLOR`, pipes).

mod common;

use common::quickstart;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The binary with stdout and stderr piped; `NO_COLOR` only when `no_color`.
fn run(dir: &Path, args: &[&str], no_color: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
    c.current_dir(dir).args(args).env("DRYDOCK_SIM_CLOCK", "virtual").env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    c.output().unwrap()
}

fn dd(dir: &Path, args: &[&str]) -> Output {
    run(dir, args, true)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn detailed_exitcode_is_0_without_changes_2_with_changes_and_1_on_errors() {
    let dir = quickstart();
    let d = dir.path();
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(code(&out), Some(2), "creates are changes:\n{}", stdout(&out));
    assert_eq!(code(&dd(d, &["plan", "."])), Some(0), "without the flag, changes exit 0");

    let applied = dd(d, &["apply", ".", "--auto-approve"]);
    assert_eq!(code(&applied), Some(0), "{}", String::from_utf8_lossy(&applied.stderr));
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(code(&out), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("No changes."));
    let out = dd(d, &["plan", ".", "--detailed-exitcode", "--var", "worker_image=img-2"]);
    assert_eq!(code(&out), Some(2), "a rollout is a change");

    std::fs::write(d.join("broken.kcl"), "locals {\n  x = var.nope\n}\n").unwrap();
    let out = dd(d, &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(code(&out), Some(1), "an error is 1, not 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    // Usage errors are errors too (clap's own code, 2, would read as "changes").
    for args in [
        &["plan", ".", "--detailed-exitcode", "--format", "bogus"][..],
        &["plan", ".", "--detailed-exitcode", "--lock-timeout", "soon"],
        &["plan", ".", "--detailed-exitcode", "--no-such-flag"],
        &["no-such-command"],
    ] {
        let out = dd(d, args);
        assert_eq!(code(&out), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty(), "{args:?} says what is wrong");
    }
    for args in [&["--help"][..], &["plan", "--help"], &["--version"]] {
        assert_eq!(code(&dd(d, args)), Some(0), "{args:?}");
    }
}

#[test]
fn json_output_parses_and_follows_the_schema() {
    let dir = quickstart();
    let d = dir.path();
    let out = dd(d, &["plan", ".", "--format", "json", "--out", "plan.bin"]);
    assert_eq!(code(&out), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON and nothing else");
    let errors = common::schema::check(&common::schema::plan_schema(), &v);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(v["format_version"], "1.3");
    assert_eq!((v["summary"]["create"].as_u64(), v["changes"].as_array().map(Vec::len)), (Some(2), Some(2)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Saved the plan to plan.bin"));

    // A rollout: Terraform's replace shape, and every old instance in the waves.
    dd(d, &["apply", ".", "--auto-approve"]);
    let out = dd(d, &["plan", ".", "--format", "json", "--var", "worker_image=img-2"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(common::schema::check(&common::schema::plan_schema(), &v).is_empty());
    let c = &v["changes"][0];
    assert_eq!(c["actions"], serde_json::json!(["create", "delete"]));
    assert_eq!(c["replace_paths"], serde_json::json!(["image"]));
    assert_eq!((&c["before"]["image"], &c["after"]["image"]), (&"img-worker-2026-11".into(), &"img-2".into()));
    let removed: usize = c["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["remove_first"].as_array().unwrap().len() + w["remove_after"].as_array().unwrap().len())
        .sum();
    assert_eq!(removed, 4);
}

#[test]
fn show_prints_a_saved_plan_exactly_as_plan_did() {
    let dir = quickstart();
    let d = dir.path();
    dd(d, &["apply", ".", "--auto-approve"]);
    for format in ["human", "markdown", "json"] {
        let file = format!("{format}.plan");
        let planned = dd(d, &["plan", ".", "--var", "worker_image=img-2", "--format", format, "--out", &file]);
        assert_eq!(code(&planned), Some(0));
        let shown = dd(d, &["show", &file, "--format", format]);
        assert_eq!(code(&shown), Some(0));
        assert!(!planned.stdout.is_empty());
        assert_eq!(stdout(&shown), stdout(&planned), "{format}: show prints the same bytes as plan");
    }
    // Each format from the one saved plan is what plan printed in that format.
    let md = dd(d, &["plan", ".", "--var", "worker_image=img-2", "--format", "markdown"]);
    assert_eq!(stdout(&dd(d, &["show", "human.plan", "--format", "markdown"])), stdout(&md));
    assert!(stdout(&md).starts_with("<!-- drydock-plan -->\n"));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = quickstart();
    let d = dir.path();
    let has_ansi = |o: &Output| o.stdout.contains(&0x1b);
    assert!(!has_ansi(&run(d, &["plan", "."], false)), "a pipe gets no colour");
    assert!(!has_ansi(&run(d, &["plan", "."], true)), "nor does NO_COLOR");
    assert!(has_ansi(&run(d, &["plan", ".", "--color", "always"], true)), "--color always wins over NO_COLOR");
    assert!(has_ansi(&run(d, &["plan", ".", "--color", "always"], false)), "and over a pipe");
    assert!(!has_ansi(&run(d, &["plan", ".", "--color", "always", "--no-color"], false)), "--no-color wins");
    assert!(!has_ansi(&run(d, &["plan", ".", "--color", "never"], false)));
    for format in ["markdown", "json"] {
        assert!(!has_ansi(&run(d, &["plan", ".", "--color", "always", "--format", format], false)), "{format}");
    }
    dd(d, &["plan", ".", "--out", "p.plan"]);
    assert!(has_ansi(&run(d, &["show", "p.plan", "--color", "always"], false)));
    assert!(!has_ansi(&run(d, &["show", "p.plan"], false)));
}

/// The CI example finds its comment by the marker drydock writes, and every drydock
/// command in it is one this drydock accepts.
#[test]
fn the_ci_example_matches_the_binary() {
    let yml = std::fs::read_to_string(common::repo().join("examples/ci/github-actions.yml")).unwrap();
    assert!(yml.contains(&format!("const marker = '{}';", drydock_render::markdown::MARKER)));
    let commands: Vec<Vec<String>> = yml
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("run: ").or(Some(l)))
        .filter(|l| l.starts_with("drydock "))
        .map(|l| {
            // Up to any redirection; "$CONFIG" stands for a path.
            let l = l.split(" >").next().unwrap_or(l);
            l.split_whitespace().map(|w| w.replace("\"$CONFIG\"", "infra")).collect()
        })
        .collect();
    assert!(commands.len() >= 3, "{commands:?}");
    for args in &commands {
        use clap::Parser as _;
        if let Err(e) = drydock::cli::Cli::try_parse_from(args) {
            panic!("{}: {e}", args.join(" "));
        }
    }
}
