//! The `drydock` binary in a temporary directory: exit codes, output, variables and their
//! precedence, colour, and `fmt`'s check, diff and rewrite modes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::repo;
use expect_test::expect;

fn drydock(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DRYDOCK_VAR_n")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_every_example() {
    for (example, summary) in [
        ("quickstart", "1 cluster, 2 node groups"),
        ("aws", "1 cluster, 5 node groups"),
        ("fleet", "7 clusters, 16 node groups"),
    ] {
        let out = drydock(&repo(), &["validate", &format!("examples/{example}")]);
        assert_eq!(out.status.code(), Some(0), "{example}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("Success! examples/{example} is valid: {summary}.\n"));
    }
    let out = drydock(&repo(), &["validate", "examples/aws", "--var-file", "examples/aws/prod.kclvars"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn examples_are_formatted() {
    let out = drydock(&repo(), &["fmt", "--recursive", "--check", "examples"]);
    assert_eq!(out.status.code(), Some(0), "unformatted: {}", text(&out.stdout));
}

/// A control plane must have an odd size: odd values validate, even ones fail, which
/// shows which source a value came from.
const SIZED: &str = r#"provider "sim" {}

variable "n" {
  type    = number
  default = 2
}

cluster "c" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-a"]
  }

  node_group "cp" {
    role          = "control-plane"
    image         = "img"
    instance_type = "m6i.large"
    size          = var.n
  }
}
"#;

#[test]
fn variable_precedence_is_var_then_var_file_then_env_then_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.kcl"), SIZED).unwrap();
    std::fs::write(dir.path().join("even.kclvars"), "n = 4\n").unwrap();
    std::fs::write(dir.path().join("odd.kclvars"), "n = 5\n").unwrap();
    let run = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
        c.current_dir(dir.path()).arg("validate").args(args).env("NO_COLOR", "1").env_remove("DRYDOCK_VAR_n");
        if let Some(v) = env {
            c.env("DRYDOCK_VAR_n", v);
        }
        c.output().unwrap().status.code()
    };
    assert_eq!(run(&[], None), Some(1), "the default 2 is even");
    assert_eq!(run(&[], Some("3")), Some(0), "the environment beats the default");
    assert_eq!(run(&["--var-file", "even.kclvars"], Some("3")), Some(1), "a var file beats the environment");
    assert_eq!(run(&["--var-file", "even.kclvars", "--var-file", "odd.kclvars"], None), Some(0), "the later file wins");
    assert_eq!(run(&["--var-file", "odd.kclvars", "--var", "n=4"], Some("3")), Some(1), "--var beats them all");
    assert_eq!(run(&["--var", "n=7"], None), Some(0));
}

#[test]
fn errors_are_reported_together_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.kcl"), "locals {\n  y = uper(\"a\")\n}\n").unwrap();
    std::fs::write(dir.path().join("a.kcl"), "provider \"sim\" {}\n\nlocals {\n  x = var.nope\n}\n").unwrap();
    let out = drydock(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let first = stderr.find("a.kcl:4:7").expect("the error in a.kcl");
    let second = stderr.find("b.kcl:2:7").expect("the error in b.kcl");
    assert!(first < second, "sorted by file: {stderr}");
    assert!(stderr.ends_with("2 errors\n"), "{stderr}");
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.kcl"), "provider \"sim\" {}\nlocals {\n  x = var.nope\n}\n").unwrap();
    let plain = drydock(dir.path(), &["validate"]);
    assert!(!text(&plain.stderr).contains('\x1b'), "NO_COLOR and a pipe mean no colour");
    let forced = drydock(dir.path(), &["validate", "--color", "always"]);
    assert!(text(&forced.stderr).contains('\x1b'), "--color always colours even with NO_COLOR");
}

#[test]
fn missing_paths_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let out = drydock(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    expect![[r#"
        kcl::io

          × no .kcl files in .

    "#]]
    .assert_eq(&text(&out.stderr));
}

#[test]
fn fmt_check_diff_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.kcl");
    let messy = "provider \"sim\" {\nboot_time=2s # fast\n}\nlocals {\n  a=1\n  long_name = [1,2]\n}\n";
    std::fs::write(&file, messy).unwrap();

    let check = drydock(dir.path(), &["fmt", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(text(&check.stdout), "./main.kcl\n");

    let diff = drydock(dir.path(), &["fmt", "--diff", "main.kcl"]);
    assert_eq!(diff.status.code(), Some(0));
    expect![[r#"
        --- main.kcl
        +++ main.kcl
        @@ -1,7 +1,8 @@
         provider "sim" {
        -boot_time=2s # fast
        +  boot_time = 2s # fast
         }
        +
         locals {
        -  a=1
        -  long_name = [1,2]
        +  a         = 1
        +  long_name = [1, 2]
         }
    "#]]
    .assert_eq(&text(&diff.stdout));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy, "--diff changes nothing");

    let write = drydock(dir.path(), &["fmt"]);
    assert_eq!(write.status.code(), Some(0));
    assert_eq!(drydock(dir.path(), &["fmt", "--check"]).status.code(), Some(0));
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert_eq!(drydock(dir.path(), &["fmt"]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), formatted, "idempotent");
}

#[test]
fn fmt_leaves_files_with_syntax_errors_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.kcl");
    std::fs::write(&file, "a = [1,\n").unwrap();
    let out = drydock(dir.path(), &["fmt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("kcl::syntax"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a = [1,\n");
}
