//! The binary's machine-readable output, so that tests assert on values rather than on the
//! wording of the human output: the JSON plan (`--format json`, `docs/json-format.md`),
//! `sim status --json`, `sim timeline` and `watch --json` (JSON lines), the state file, and
//! the code of a diagnostic on stderr.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::dd;

/// A run's stdout as one JSON document, whatever its exit code (callers check that).
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Fails the test, showing the run's output, unless the run succeeded.
pub fn assert_success(out: &Output, what: &str) {
    let show = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(out.status.success(), "{what} failed ({}):\n{}\n{}", out.status, show(&out.stdout), show(&out.stderr));
}

/// A run that must succeed: its stdout as one JSON document.
pub fn ok_json(out: &Output, what: &str) -> Value {
    assert_success(out, what);
    stdout_json(out)
}

/// A run that must succeed: its stdout as JSON lines.
pub fn ok_json_lines(out: &Output, what: &str) -> Vec<Value> {
    assert_success(out, what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"))).collect()
}

/// A plan in the JSON format, checked against `docs/plan.schema.json`.
pub fn checked_plan(plan: Value) -> Value {
    let errors = super::schema::check(&super::schema::plan_schema(), &plan);
    assert!(errors.is_empty(), "the JSON plan breaks its schema: {errors:?}\n{plan}");
    plan
}

/// `drydock plan ARGS --format json` (`args` is what follows `plan`), run by `run` (the
/// binary with the arguments it is given, in whatever world); the run must succeed. The
/// plan, and stderr (where notes such as `--stats` go).
pub fn plan_with(args: &[&str], run: impl FnOnce(&[&str]) -> Output) -> (Value, String) {
    let args: Vec<&str> = ["plan"].iter().chain(args).chain(&["--format", "json"]).copied().collect();
    let out = run(&args);
    (checked_plan(ok_json(&out, &format!("drydock {args:?}"))), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `drydock plan ARGS --format json` on the simulated cloud (`args` is what follows `plan`;
/// the run must succeed): the plan.
pub fn plan(dir: &Path, args: &[&str]) -> Value {
    plan_with(args, |args| dd(dir, args)).0
}

/// `drydock plan ARGS --detailed-exitcode --format json` on the simulated cloud: the exit
/// code (0 no changes, 2 changes) and the plan.
pub fn plan_detailed(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let args: Vec<&str> =
        ["plan"].iter().chain(args).chain(&["--detailed-exitcode", "--format", "json"]).copied().collect();
    let out = dd(dir, &args);
    (out.status.code(), checked_plan(stdout_json(&out)))
}

/// `drydock sim status . --json`.
pub fn status(dir: &Path) -> Value {
    ok_json(&dd(dir, &["sim", "status", ".", "--json"]), "drydock sim status")
}

/// `drydock sim timeline .`: the simulated cloud's capacity points.
pub fn timeline(dir: &Path) -> Vec<Value> {
    ok_json_lines(&dd(dir, &["sim", "timeline", "."]), "drydock sim timeline")
}

/// The state file `drydock.state.json` in `dir`.
pub fn state_file(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("drydock.state.json")).unwrap()).unwrap()
}

/// The groups of one node group in a `sim status`.
pub fn groups_of<'a>(status: &'a Value, node_group: &str) -> Vec<&'a Value> {
    status["groups"].as_array().unwrap().iter().filter(|g| g["node_group"] == node_group).collect()
}

/// A `sim status` group's pending or running instances.
pub fn live(group: &Value) -> Vec<&Value> {
    group["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "pending" || i["state"] == "running")
        .collect()
}

/// The changes of a JSON plan.
pub fn changes(plan: &Value) -> &[Value] {
    plan["changes"].as_array().unwrap_or_else(|| panic!("no changes array: {plan}"))
}

/// The change of the node group at `address`; there must be one.
pub fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    changes(plan).iter().find(|c| c["address"] == address).unwrap_or_else(|| panic!("no change of {address}: {plan}"))
}

/// A JSON plan's `summary` counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub create: u64,
    pub rollout: u64,
    pub update: u64,
    pub delete: u64,
    pub nodes_replaced: u64,
}

pub fn summary(plan: &Value) -> Summary {
    let n = |k: &str| plan["summary"][k].as_u64().unwrap_or_else(|| panic!("no summary.{k}: {plan}"));
    Summary {
        create: n("create"),
        rollout: n("rollout"),
        update: n("update"),
        delete: n("delete"),
        nodes_replaced: n("nodes_replaced"),
    }
}

/// What the human plan calls "No changes.": no change, and no cluster leaving the state.
pub fn assert_no_changes(plan: &Value, why: &str) {
    assert_eq!(plan["changes"], serde_json::json!([]), "{why}: {plan}");
    assert_eq!(plan["forgotten_clusters"], serde_json::json!([]), "{why}: {plan}");
}

/// Every instance id a change's waves remove (`remove_first`, then `remove_after`), wave by wave.
pub fn removed(change: &Value) -> Vec<String> {
    let mut out = vec![];
    for w in change["waves"].as_array().unwrap() {
        for key in ["remove_first", "remove_after"] {
            out.extend(w[key].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()));
        }
    }
    out
}

/// The drift a JSON plan reports for the node group at `address`.
pub fn drift_of<'a>(plan: &'a Value, address: &str) -> Vec<&'a Value> {
    plan["drift"].as_array().unwrap().iter().filter(|d| d["address"] == address).collect()
}

/// Whether watch reported `event` for the node group at `address` with this `message`
/// (watch's JSON events carry what they found or did only as their `message`, so it is
/// compared whole).
pub fn has_event(events: &[Value], event: &str, address: &str, message: &str) -> bool {
    events.iter().any(|e| e["event"] == event && e["address"] == address && e["message"] == message)
}

/// The codes of the diagnostics a run printed on stderr (`state::locked`, `kcl::io`): the
/// line each rendered diagnostic starts with.
pub fn diagnostic_codes(stderr: &[u8]) -> Vec<String> {
    let is_code = |l: &str| {
        let parts: Vec<&str> = l.split("::").collect();
        parts.len() >= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    };
    String::from_utf8_lossy(stderr).lines().map(str::trim).filter(|l| is_code(l)).map(str::to_string).collect()
}
