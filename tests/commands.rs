//! `version`, `completions`, `man`, `output` and `graph` through the binary: the versions it
//! reports against the crates' constants, completion scripts that a shell parses and that
//! complete (bash, for real), man pages that render, outputs as Terraform shows them (with
//! sensitive values re-derived and checked against the state's digest), and the graph of a
//! plan's changes checked against the plan's `depends_on` and the order the executor ran
//! them in on the simulated cloud (virtual clock).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use common::{quickstart, CONTROL_PLANE, WORKERS};
use serde_json::{json, Value};

/// The binary in `dir` on the virtual clock, without colour or variables from the test's
/// environment, plus `env`.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drydock"));
    c.current_dir(dir).args(args).env("DRYDOCK_SIM_CLOCK", "virtual").env("NO_COLOR", "1");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DRYDOCK_VAR_")) {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn dd(dir: &Path, args: &[&str]) -> Output {
    run(dir, args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Requires success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = dd(dir, args);
    assert!(o.status.success(), "drydock {args:?} failed:\n{}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Requires exit code 1; returns stderr, its words joined by single spaces (diagnostics
/// wrap lines at the terminal's width, with `│` in the margin).
fn fails(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = run(dir, args, env);
    assert_eq!(o.status.code(), Some(1), "drydock {args:?}:\n{}\n{}", stdout(&o), stderr(&o));
    stderr(&o).split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}

/// Whether a program is installed (it runs with `--version`).
fn installed(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------------------------------
// version

#[test]
fn version_reports_the_formats_and_kinds_this_build_has() {
    let dir = tempfile::tempdir().unwrap();
    let v: Value = serde_json::from_str(&ok(dir.path(), &["version", "--json"])).unwrap();
    assert_eq!(
        v,
        json!({
            "drydock_version": env!("CARGO_PKG_VERSION"),
            "state_format_version": drydock_state::FORMAT_VERSION,
            "plan_file_format_version": drydock_plan::PLAN_FORMAT_VERSION,
            "plan_json_format_version": drydock_render::json::JSON_FORMAT_VERSION,
            "providers": ["sim", "aws"],
            "backends": ["local", "s3"],
        })
    );
    // The JSON rendering's version is the one `plan --format json` writes.
    let text = ok(dir.path(), &["version"]);
    assert!(text.starts_with(&format!("drydock {}\n", env!("CARGO_PKG_VERSION"))), "{text}");
    for line in [
        format!("state format:       {}", drydock_state::FORMAT_VERSION),
        format!("saved plan format:  {} (plan --out)", drydock_plan::PLAN_FORMAT_VERSION),
        format!("JSON plan format:   {} (plan --format json)", drydock_render::json::JSON_FORMAT_VERSION),
        "providers:          sim, aws".to_string(),
        "backends:           local, s3".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
}

#[test]
fn version_json_matches_what_plans_carry() {
    let dir = quickstart();
    let d = dir.path();
    let v: Value = serde_json::from_str(&ok(d, &["version", "--json"])).unwrap();
    let plan: Value = serde_json::from_str(&ok(d, &["plan", "--format", "json"])).unwrap();
    assert_eq!(plan["format_version"], v["plan_json_format_version"]);
    assert_eq!(plan["drydock_version"], v["drydock_version"]);
    let _ = ok(d, &["plan", "--out", "plan.out"]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(d.join("plan.out")).unwrap()).unwrap();
    assert_eq!(saved["format_version"], v["plan_file_format_version"]);
}

// ---------------------------------------------------------------------------------------
// completions and man

/// Runs `script` in a bash that has sourced drydock's bash completion (in `$1`).
fn bash_with_completion(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drydock.bash");
    std::fs::write(&file, ok(dir.path(), &["completions", "bash"])).unwrap();
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &format!("source \"$1\" || exit 3\n{script}"), "bash"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "bash failed:\n{}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// What bash completes for the words typed so far (`cur` the last, maybe empty).
fn complete(words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let script = format!(
        "COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _drydock drydock '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = quoted.join(" "),
        cur = words[cword],
    );
    bash_with_completion(&script).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn bash_completion_parses_and_completes_commands_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drydock.bash");
    std::fs::write(&file, ok(dir.path(), &["completions", "bash"])).unwrap();
    let o = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(o.status.success(), "bash -n: {}", stderr(&o));

    assert_eq!(complete(&["drydock", "pl"]), ["plan"]);
    assert_eq!(complete(&["drydock", "gr"]), ["graph"]);
    assert_eq!(complete(&["drydock", "out"]), ["output"]);
    assert_eq!(complete(&["drydock", "graph", "--format", ""]), ["dot", "text"]);
    let shells = complete(&["drydock", "completions", ""]);
    let shells: Vec<&str> = shells.iter().map(String::as_str).filter(|s| !s.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "elvish", "fish", "powershell", "zsh"]);
    let state = complete(&["drydock", "state", ""]);
    for sub in ["list", "show", "pull", "push", "migrate"] {
        assert!(state.iter().any(|s| s == sub), "{sub} not in {state:?}");
    }
}

#[test]
fn completions_for_every_shell_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (shell, start) in
        [("zsh", "#compdef drydock"), ("fish", ""), ("elvish", ""), ("powershell", ""), ("bash", "_drydock()")]
    {
        let script = ok(d, &["completions", shell]);
        assert!(script.starts_with(start), "{shell}: {}", &script[..script.len().min(200)]);
        // Every command of the binary is in every script.
        for command in ["plan", "apply", "output", "graph", "completions", "man", "version"] {
            assert!(script.contains(command), "{shell} has no {command}");
        }
        let file = d.join(format!("drydock.{shell}"));
        std::fs::write(&file, &script).unwrap();
        // Checked by the shell itself where it is installed (nothing is installed for this).
        if matches!(shell, "zsh" | "fish") && installed(shell) {
            let o = Command::new(shell).arg("-n").arg(&file).output().unwrap();
            assert!(o.status.success(), "{shell} -n: {}", stderr(&o));
        }
    }
    let err = fails(d, &["completions", "tcsh"], &[]);
    assert!(err.contains("possible values"), "{err}");
}

/// Checks that a roff page renders: with groff when it is installed (no warning), else with
/// `man -l`, else only its title line.
fn renders(page: &str, title: &str) {
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    assert!(page.lines().any(|l| l.starts_with(&format!(".TH {title} 1"))), "no .TH {title}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{title}.1"));
    std::fs::write(&file, page).unwrap();
    if installed("groff") {
        // -k: through preconv, as `man` reads pages (the help text has non-ASCII characters).
        let o = Command::new("groff").args(["-k", "-man", "-Tutf8", "-ww", "-z"]).arg(&file).output().unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "groff on {title}: {}", stderr(&o));
        let o = Command::new("groff").args(["-k", "-man", "-Tutf8"]).arg(&file).output().unwrap();
        let text = stdout(&o).replace('\u{8}', "");
        assert!(text.contains("NAME") || text.contains("NNAAMMEE"), "{text}");
    } else if installed("man") {
        let o = Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").output().unwrap();
        assert!(o.status.success(), "man -l {title}: {}", stderr(&o));
    }
}

#[test]
fn man_page_renders_and_one_page_per_command_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let page = ok(d, &["man"]);
    renders(&page, "drydock");
    for command in ["plan", "apply", "output", "graph", "completions", "version"] {
        assert!(page.contains(command), "the page lists no {command}");
    }

    let listed = ok(d, &["man", "--out", "pages"]);
    let mut files: Vec<String> = std::fs::read_dir(d.join("pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for f in ["drydock.1", "drydock-plan.1", "drydock-graph.1", "drydock-output.1", "drydock-state-list.1"] {
        assert!(files.iter().any(|x| x == f), "no {f} in {files:?}");
    }
    assert!(!files.iter().any(|f| f.contains("help")), "a page for `help`: {files:?}");
    assert_eq!(listed.lines().count(), files.len(), "stdout names each page written:\n{listed}");
    for f in &files {
        let page = std::fs::read_to_string(d.join("pages").join(f)).unwrap();
        renders(&page, f.trim_end_matches(".1"));
    }
    let output = std::fs::read_to_string(d.join("pages/drydock-output.1")).unwrap();
    assert!(output.contains("sensitive"), "the output page has the flags' help");
}

// ---------------------------------------------------------------------------------------
// output

/// The quickstart with outputs of every kind, two of them sensitive.
fn with_outputs() -> tempfile::TempDir {
    let dir = quickstart();
    let mut kcl = std::fs::read_to_string(dir.path().join("cluster.kcl")).unwrap();
    kcl.push_str(
        r#"
variable "token" {
  type      = string
  default   = "s3cret-token"
  sensitive = true
}

output "token" {
  value = var.token
}

output "ids" {
  value     = cluster.demo.node_group.workers.instance_ids
  sensitive = true
}

output "ids_plain" {
  value = cluster.demo.node_group.workers.instance_ids
}

output "replicas" {
  value = 4
}

output "fast" {
  value = true
}

output "region" {
  value = "sim-1"
}

output "labels" {
  value = { team = "platform" }
}
"#,
    );
    std::fs::write(dir.path().join("cluster.kcl"), kcl).unwrap();
    dir
}

#[test]
fn output_without_outputs_says_so_and_exits_0() {
    let dir = quickstart();
    let d = dir.path();
    // No state at all.
    let o = dd(d, &["output"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("No outputs found"), "{}", stderr(&o));
    assert_eq!(ok(d, &["output", "--json"]), "{}\n");
    let err = fails(d, &["output", "worker_groups"], &[]);
    assert!(err.contains("no output `worker_groups`") && err.contains("does not exist yet"), "{err}");

    // A state without outputs (the configuration declares none).
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    let cut = kcl.find("output \"worker_groups\"").unwrap();
    std::fs::write(d.join("cluster.kcl"), &kcl[..cut]).unwrap();
    ok(d, &["apply", "--auto-approve"]);
    let o = dd(d, &["output"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("records none"), "{}", stderr(&o));
    let err = fails(d, &["output", "anything"], &[]);
    assert!(err.contains("records no outputs"), "{err}");
}

#[test]
fn output_shows_values_as_terraform_does_and_hides_sensitive_ones() {
    let dir = with_outputs();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let state = std::fs::read_to_string(d.join("drydock.state.json")).unwrap();
    assert!(!state.contains("s3cret-token"), "the state holds a digest only");
    let ids: Vec<String> = serde_json::from_str::<Value>(&ok(d, &["output", "ids_plain", "--json"])).unwrap()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    let groups: Value = serde_json::from_str(&ok(d, &["state", "show", "output.worker_groups"])).unwrap();
    let group = groups["value"][0].as_str().unwrap().to_string();

    // Human form: `name = value`, sorted, sensitive ones masked.
    let human = ok(d, &["output"]);
    let ids_text = ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    assert_eq!(
        human,
        format!(
            "fast = true\nids = <sensitive>\nids_plain = [{ids_text}]\nlabels = {{ \"team\" = \"platform\" }}\n\
             region = \"sim-1\"\nreplicas = 4\ntoken = <sensitive>\nworker_groups = [\"{group}\"]\n"
        )
    );
    assert_eq!(ok(d, &["output", "region"]), "\"sim-1\"\n");
    assert_eq!(ok(d, &["output", "token"]), "<sensitive>\n");

    // --raw: the bare value, without a newline.
    assert_eq!(ok(d, &["output", "region", "--raw"]), "sim-1");
    assert_eq!(ok(d, &["output", "replicas", "--raw"]), "4");
    assert_eq!(ok(d, &["output", "fast", "--raw"]), "true");
    let err = fails(d, &["output", "labels", "--raw"], &[]);
    assert!(err.contains("is a map") && err.contains("--json"), "{err}");
    let err = fails(d, &["output", "ids_plain", "--raw"], &[]);
    assert!(err.contains("is a list"), "{err}");
    let err = fails(d, &["output", "--raw"], &[]);
    assert!(err.contains("name it"), "{err}");
    fails(d, &["output", "region", "--raw", "--json"], &[]);

    // --json: value, type and sensitivity per name, sensitive values shown.
    let all: Value = serde_json::from_str(&ok(d, &["output", "--json"])).unwrap();
    assert_eq!(
        all,
        json!({
            "fast": { "value": true, "type": "bool", "sensitive": false },
            "ids": { "value": ids, "type": "list(string)", "sensitive": true },
            "ids_plain": { "value": ids, "type": "list(string)", "sensitive": false },
            "labels": { "value": { "team": "platform" }, "type": "map(string)", "sensitive": false },
            "region": { "value": "sim-1", "type": "string", "sensitive": false },
            "replicas": { "value": 4, "type": "number", "sensitive": false },
            "token": { "value": "s3cret-token", "type": "string", "sensitive": true },
            "worker_groups": { "value": [group], "type": "list(string)", "sensitive": false },
        })
    );
    let one: Value = serde_json::from_str(&ok(d, &["output", "token", "--json"])).unwrap();
    assert_eq!(one, json!({ "value": "s3cret-token", "type": "string", "sensitive": true }));
    assert_eq!(ok(d, &["output", "token", "--raw"]), "s3cret-token");
    // The sensitive instance ids are the cloud's, as the apply recorded them.
    let one: Value = serde_json::from_str(&ok(d, &["output", "ids", "--json"])).unwrap();
    assert_eq!(one["value"], json!(ids));

    // A sensitive value is shown only when it is the one applied.
    let err = fails(d, &["output", "token", "--raw", "--var", "token=other"], &[]);
    assert!(err.contains("another value than the one the last apply recorded"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    fails(d, &["output", "--json"], &[("DRYDOCK_VAR_token", "other")]);
    let o = run(d, &["output", "token", "--raw"], &[("DRYDOCK_VAR_token", "s3cret-token")]);
    assert_eq!(stdout(&o), "s3cret-token");
    // Never in the human form, whatever the variables.
    assert!(!ok(d, &["output"]).contains("s3cret"));
}

#[test]
fn output_names_the_outputs_that_exist_for_an_unknown_name() {
    let dir = with_outputs();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let err = fails(d, &["output", "regoin"], &[]);
    assert!(err.contains("no output `regoin`"), "{err}");
    assert!(err.contains("`region`") && err.contains("`worker_groups`") && err.contains("`token`"), "{err}");
    assert!(err.contains("did you mean `region`?"), "{err}");
    // A directory named like an output is a NAME; the error says how to give it as PATH.
    std::fs::create_dir(d.join("bootstrap-dir")).unwrap();
    let err = fails(d, &["output", "bootstrap-dir"], &[]);
    assert!(err.replace("./ ", "./").contains("drydock output ./bootstrap-dir"), "{err}");
}

#[test]
fn output_reads_the_state_of_a_path_or_a_state_file() {
    let dir = with_outputs();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let e = elsewhere.path();
    let path = d.display().to_string();
    // One argument with a `/`: the configuration's PATH.
    assert!(ok(e, &["output", &path]).contains("region = \"sim-1\""));
    assert_eq!(ok(e, &["output", "region", &path, "--raw"]), "sim-1");
    assert_eq!(ok(e, &["output", "token", &path, "--raw"]), "s3cret-token");
    let state = d.join("drydock.state.json").display().to_string();
    assert_eq!(ok(e, &["output", "replicas", "--state", &state, "--raw"]), "4");
    // With --state and no configuration, a sensitive value cannot be derived again.
    let err = fails(e, &["output", "token", "--state", &state, "--raw"], &[]);
    assert!(err.contains("only a digest"), "{err}");
}

// ---------------------------------------------------------------------------------------
// graph

/// `graph --format text` as (step, address, what it waits for).
fn text_graph(text: &str) -> Vec<(usize, String, Vec<String>)> {
    text.lines()
        .map(|l| {
            let step = (l.len() - l.trim_start().len()) / 2;
            let (address, rest) = l.trim_start().split_once(": ").unwrap();
            let after = rest
                .split_once(", after ")
                .map(|(_, a)| a.split(", ").map(str::to_string).collect())
                .unwrap_or_default();
            (step, address.to_string(), after)
        })
        .collect()
}

/// The edges of `graph` (dot), after checking it is dot-shaped: a digraph whose braces
/// balance, with statements ending in `;`.
fn dot_edges(dot: &str) -> BTreeSet<(String, String)> {
    assert!(dot.starts_with("digraph drydock {\n") && dot.ends_with("}\n"), "{dot}");
    let mut depth = 0i32;
    let mut edges = BTreeSet::new();
    for line in dot.lines() {
        let l = line.trim();
        if l.ends_with('{') {
            depth += 1;
        } else if l == "}" {
            depth -= 1;
        } else if !l.starts_with("//") {
            assert!(l.ends_with(';'), "not a statement: {l}");
        }
        assert!(depth >= 0, "{dot}");
        if let Some((from, to)) = l.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
            let unquote = |s: &str| s.trim_matches('"').replace("\\\"", "\"");
            edges.insert((unquote(from), unquote(to)));
        }
    }
    assert_eq!(depth, 0, "{dot}");
    edges
}

/// The plan's own dependencies (from `plan --format json`): (dependency, change), for
/// dependencies that are in the plan.
fn plan_edges(dir: &Path, args: &[&str]) -> BTreeSet<(String, String)> {
    let plan: Value = serde_json::from_str(&ok(dir, args)).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    let planned: BTreeSet<&str> = changes.iter().map(|c| c["address"].as_str().unwrap()).collect();
    changes
        .iter()
        .flat_map(|c| {
            c["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .filter(|d| planned.contains(d))
                .map(|d| (d.to_string(), c["address"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Per address, the first and last line of apply's progress it has (after the plan).
fn progress(apply_out: &str) -> BTreeMap<String, (usize, usize)> {
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let start = apply_out.find("\nPlan: ").expect("the plan's summary");
    for (i, line) in apply_out[start..].lines().enumerate() {
        if let Some((address, _)) = line.split_once(": ").filter(|(a, _)| a.starts_with("cluster.")) {
            seen.entry(address.to_string()).and_modify(|e| e.1 = i).or_insert((i, i));
        }
    }
    seen
}

/// Checks the graph against what apply did: it ran exactly the graph's changes, and none
/// started (its first line) before each change it waits for had finished (its last line).
fn check_against_executor(graph: &[(usize, String, Vec<String>)], apply_out: &str) {
    let ran = progress(apply_out);
    let graphed: BTreeSet<&str> = graph.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(ran.keys().map(String::as_str).collect::<BTreeSet<_>>(), graphed, "{apply_out}");
    for (_, address, after) in graph {
        for dep in after {
            assert!(ran[dep].1 < ran[address].0, "{address} started before {dep} finished:\n{apply_out}");
        }
    }
}

#[test]
fn graph_of_the_quickstart_runs_the_control_plane_first_and_deletes_it_last() {
    let dir = quickstart();
    let d = dir.path();
    let edges = dot_edges(&ok(d, &["graph"]));
    assert_eq!(edges, BTreeSet::from([(CONTROL_PLANE.to_string(), WORKERS.to_string())]));
    assert_eq!(edges, plan_edges(d, &["plan", "--format", "json"]));
    let text = ok(d, &["graph", "--format", "text"]);
    assert_eq!(text, format!("{CONTROL_PLANE}: create (control plane)\n  {WORKERS}: create, after {CONTROL_PLANE}\n"));
    // Read-only: nothing was created, and no state written.
    assert!(!d.join("drydock.state.json").exists());
    let apply = ok(d, &["apply", "--auto-approve"]);
    check_against_executor(&text_graph(&text), &apply);
    let ran = progress(&apply);
    assert!(ran[CONTROL_PLANE].1 < ran[WORKERS].0);

    // Nothing to change: an empty graph.
    let o = dd(d, &["graph", "--format", "text"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));
    assert!(stderr(&o).contains("No changes"));
    assert!(dot_edges(&ok(d, &["graph"])).is_empty());

    // Destroy: the workers before their control plane.
    let text = ok(d, &["graph", "--destroy", "--format", "text"]);
    assert_eq!(text, format!("{WORKERS}: destroy\n  {CONTROL_PLANE}: destroy (control plane), after {WORKERS}\n"));
    assert_eq!(
        dot_edges(&ok(d, &["graph", "--destroy"])),
        BTreeSet::from([(WORKERS.to_string(), CONTROL_PLANE.to_string())])
    );
    let destroy = ok(d, &["destroy", "--auto-approve"]);
    check_against_executor(&text_graph(&text), &destroy);
}

#[test]
fn graph_of_a_saved_rollout_is_the_plans_and_the_executor_follows_it() {
    let dir = quickstart();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let kcl = std::fs::read_to_string(d.join("cluster.kcl")).unwrap();
    std::fs::write(d.join("cluster.kcl"), kcl.replace("img-cp-2026-11", "img-cp-2026-12")).unwrap();
    ok(d, &["plan", "--var", "worker_image=img-2", "--out", "plan.out"]);
    let text = ok(d, &["graph", "plan.out", "--format", "text"]);
    assert_eq!(
        text,
        format!("{CONTROL_PLANE}: roll out (control plane)\n  {WORKERS}: roll out, after {CONTROL_PLANE}\n")
    );
    // The saved plan's graph is the configuration's with the same variables.
    assert_eq!(ok(d, &["graph", "--var", "worker_image=img-2", "--format", "text"]), text);
    assert_eq!(ok(d, &["graph", "plan.out"]), ok(d, &["graph", "--var", "worker_image=img-2"]));
    let err = fails(d, &["graph", "plan.out", "--var", "worker_image=img-3"], &[]);
    assert!(err.contains("saved plan"), "{err}");
    let err = fails(d, &["graph", "plan.out", "--destroy"], &[]);
    assert!(err.contains("saved plan"), "{err}");
    let apply = ok(d, &["apply", "plan.out"]);
    check_against_executor(&text_graph(&text), &apply);

    // A hand-edited plan whose dependencies form a cycle: drawn, marked, no panic.
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(d.join("plan.out")).unwrap()).unwrap();
    for c in plan["changes"].as_array_mut().unwrap() {
        if c["address"] == CONTROL_PLANE {
            c["depends_on"] = json!([WORKERS, "cluster.gone.node_group.x"]);
        }
    }
    std::fs::write(d.join("cycle.out"), plan.to_string()).unwrap();
    let text = ok(d, &["graph", "cycle.out", "--format", "text"]);
    assert_eq!(text.matches("never starts").count(), 2, "{text}");
    let edges = dot_edges(&ok(d, &["graph", "cycle.out"]));
    assert_eq!(edges.len(), 2, "the dependency on a change not in the plan is no edge: {edges:?}");
    let err = fails(d, &["graph", "missing.out"], &[]);
    assert!(!err.contains("panicked"), "{err}");
}

/// Three clusters: two with a control plane and workers, one of workers only.
const FLEET: &str = r#"
provider "sim" {
  boot_time = 2s
}

variable "image" {
  type    = string
  default = "img-1"
}

cluster "alpha" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }
  node_group "cp" {
    role          = "control-plane"
    image         = "img-cp-1"
    instance_type = "m6i.large"
    size          = 3
  }
  node_group "workers" {
    image         = var.image
    instance_type = "m6i.large"
    size          = 2
  }
  node_group "batch" {
    image         = var.image
    instance_type = "m6i.large"
    size          = 1
  }
}

cluster "beta" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a", "subnet-b"]
  }
  node_group "cp" {
    role          = "control-plane"
    image         = "img-cp-1"
    instance_type = "m6i.large"
    size          = 1
  }
  node_group "workers" {
    image         = var.image
    instance_type = "m6i.large"
    size          = 2
  }
}

cluster "gamma" {
  kubernetes_version = "1.31"
  network {
    subnets = ["subnet-a"]
  }
  node_group "workers" {
    image         = var.image
    instance_type = "m6i.large"
    size          = 2
  }
}
"#;

#[test]
fn graph_of_several_clusters_is_the_plans_dependencies_in_the_executors_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fleet.kcl"), FLEET).unwrap();
    let a = |s: &str| format!("cluster.{s}");
    let expected = format!(
        "{}: create (control plane)\n{}: create (control plane)\n{}: create\n  {}: create, after {}\n  {}: create, after {}\n  {}: create, after {}\n",
        a("alpha.node_group.cp"),
        a("beta.node_group.cp"),
        a("gamma.node_group.workers"),
        a("alpha.node_group.batch"),
        a("alpha.node_group.cp"),
        a("alpha.node_group.workers"),
        a("alpha.node_group.cp"),
        a("beta.node_group.workers"),
        a("beta.node_group.cp"),
    );
    let text = ok(d, &["graph", "--format", "text"]);
    assert_eq!(text, expected);
    let graph = text_graph(&text);
    let dot = ok(d, &["graph"]);
    let edges = dot_edges(&dot);
    assert_eq!(edges, plan_edges(d, &["plan", "--format", "json"]));
    let from_text: BTreeSet<(String, String)> =
        graph.iter().flat_map(|(_, c, after)| after.iter().map(|d| (d.clone(), c.clone()))).collect();
    assert_eq!(edges, from_text);
    // One box per cluster.
    assert_eq!(dot.matches("subgraph \"cluster_").count(), 3, "{dot}");
    let apply = ok(d, &["apply", "--auto-approve"]);
    check_against_executor(&graph, &apply);

    // A rollout of the workers alone: nothing waits (the control planes do not change).
    let text = ok(d, &["graph", "--var", "image=img-2", "--format", "text"]);
    let graph = text_graph(&text);
    assert_eq!(graph.len(), 4, "{text}");
    assert!(graph.iter().all(|(step, _, after)| *step == 0 && after.is_empty()), "{text}");
    assert!(dot_edges(&ok(d, &["graph", "--var", "image=img-2"])).is_empty());

    // Destroy: every cluster's workers before its control plane.
    let text = ok(d, &["graph", "--destroy", "--format", "text"]);
    let graph = text_graph(&text);
    let cp_alpha = graph.iter().find(|(_, a, _)| a == "cluster.alpha.node_group.cp").unwrap();
    assert_eq!(cp_alpha.0, 1);
    assert_eq!(cp_alpha.2, ["cluster.alpha.node_group.batch", "cluster.alpha.node_group.workers"]);
    let from_text: BTreeSet<(String, String)> =
        graph.iter().flat_map(|(_, c, after)| after.iter().map(|x| (x.clone(), c.clone()))).collect();
    assert_eq!(dot_edges(&ok(d, &["graph", "--destroy"])), from_text);
    assert_eq!(from_text.len(), 3, "{text}");
    let destroy = ok(d, &["destroy", "--auto-approve"]);
    check_against_executor(&graph, &destroy);
}

#[test]
fn a_full_stdout_is_exit_1_never_a_panic() {
    let dir = with_outputs();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    for args in [
        &["version"][..],
        &["version", "--json"],
        &["completions", "bash"],
        &["man"],
        &["output"],
        &["output", "--json"],
        &["output", "region", "--raw"],
        &["graph", "--destroy"],
        &["graph", "--destroy", "--format", "text"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(d)
            .args(args)
            .env("DRYDOCK_SIM_CLOCK", "virtual")
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}
