//! `drydock output [NAME] [PATH]`: the outputs the last apply recorded in the state, as
//! Terraform's `output` shows them — `name = value` lines, `--json` with each one's value,
//! type and sensitivity, or `--raw` for one bare value a script reads.
//!
//! The state keeps a sensitive output as a digest only (the state file is not where secrets
//! live: `crates/session/src/outputs.rs`). So `--json` and `--raw`, which show sensitive
//! values as Terraform does, evaluate such an output again from the configuration and the
//! variables given (`--var`, `--var-file`, `DRYDOCK_VAR_…`), with the node groups' groups
//! from the state (and their instances from the cloud, only if the output reads them), and
//! print the value only when its digest is the one the state records: the value applied,
//! never a different one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::run::{fail, runtime};
use super::{report, ExitCode, Style};
use drydock_config::model::Model;
use drydock_config::value::Value as KclValue;
use drydock_state::{OutputState, State};
use drydock_syntax::diag::{Diagnostic, Sources};

// Flags of `drydock output` (its help text is the `Command::Output` variant's).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
With one argument, it is PATH when it contains a `/`, ends in `.kcl`, or is `.` or `..`, \
and NAME otherwise (`drydock output ./prod` for a directory named like an output).

Without --json or --raw: `name = value` lines (one output: its value alone), a sensitive \
output shown as <sensitive>. --json: an object of { \"value\", \"type\", \"sensitive\" } \
per name (one such object for NAME). --raw: the bare string, number or bool of NAME, \
without a newline (an error for a list or a map, as in Terraform).

The state keeps sensitive outputs as a digest only: --json and --raw evaluate them again \
from the configuration and the variables given, and show the value only when it is the \
one the last apply recorded. With no outputs, it says so and exits 0.")]
pub struct OutputArgs {
    /// The output to show (every output when omitted).
    #[arg(value_name = "NAME")]
    pub first: Option<String>,
    /// The configuration (a .kcl file or a directory), which locates the state [default: .].
    #[arg(value_name = "PATH")]
    pub second: Option<PathBuf>,
    /// As JSON: { "value", "type", "sensitive" } per output, sensitive values included.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// The bare value of NAME (a string, number or bool), for scripts; sensitive values
    /// included.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub state: super::state::StateArgs,
}

impl OutputArgs {
    /// NAME and PATH from the positional arguments (see the help text for one argument).
    fn resolve(&self) -> (Option<String>, PathBuf) {
        match (&self.first, &self.second) {
            (Some(first), Some(second)) => (Some(first.clone()), second.clone()),
            (Some(first), None) if looks_like_path(first) => (None, PathBuf::from(first)),
            (first, _) => (first.clone(), PathBuf::from(".")),
        }
    }
}

/// Whether a lone argument is a path rather than an output's name.
fn looks_like_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".kcl") || arg == "." || arg == ".."
}

pub fn run(args: &OutputArgs, style: Style) -> ExitCode {
    let (name, path) = args.resolve();
    if args.raw && name.is_none() {
        return fail("--raw shows one output: name it (drydock output NAME --raw)");
    }
    match show(args, name.as_deref(), &path, style) {
        Ok(()) => 0,
        Err(Failed::Reported) => 1,
        Err(Failed::Message(d)) => {
            report(&[*d], &Sources::new(), style);
            1
        }
    }
}

/// Why `output` failed: already reported (configuration diagnostics), or to report.
enum Failed {
    Reported,
    Message(Box<Diagnostic>),
}

impl From<Diagnostic> for Failed {
    fn from(d: Diagnostic) -> Self {
        Failed::Message(Box::new(d))
    }
}

fn error(code: &'static str, message: impl Into<String>) -> Failed {
    Diagnostic::global(code, message).into()
}

fn show(args: &OutputArgs, name: Option<&str>, path: &Path, style: Style) -> Result<(), Failed> {
    let config_dir = drydock_session::config_dir(path);
    let has_config = path.is_file()
        || std::fs::read_dir(path)
            .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "kcl")))
            .unwrap_or(false);
    // The configuration names the backend, unless --state names the file.
    let model = if args.state.state.is_none() && has_config {
        Some(evaluate(args, path, BTreeMap::new(), style)?)
    } else {
        None
    };
    let backend = model.as_ref().and_then(|m| m.backend.as_ref());
    let (store, _) = drydock_state::backend::open(
        backend,
        path,
        &config_dir,
        args.state.state.as_deref(),
        &drydock_session::s3_objects,
    )
    .map_err(|e| error("state::backend", e))?;
    let rt = runtime();
    let state = rt.block_on(store.read()).map_err(|e| error(e.code(), e.to_string()))?;
    let Some(state) = state.as_ref().filter(|s| !s.outputs.is_empty()) else {
        if let Some(name) = name {
            let what = if state.is_some() { "records no outputs" } else { "does not exist yet" };
            return Err(error(
                "output::unknown",
                format!("no output `{name}`: the state at {} {what}", store.describe()),
            ));
        }
        if args.json {
            outln!("{{}}");
        } else {
            match state {
                Some(_) => errln!(
                    "No outputs found: the state at {} records none. Declare `output` blocks and run `drydock apply` to record them.",
                    store.describe()
                ),
                None => errln!(
                    "No outputs found: there is no state at {} yet. `drydock apply` records the outputs.",
                    store.describe()
                ),
            }
        }
        return Ok(());
    };
    let outputs = &state.outputs;
    let chosen: Vec<(&String, &OutputState)> = match name {
        Some(name) => match outputs.get_key_value(name) {
            Some(found) => vec![found],
            None => return Err(unknown_output(name, outputs, &store.describe()).into()),
        },
        None => outputs.iter().collect(),
    };
    // Sensitive values are needed only for --json and --raw.
    let reveal = args.json || args.raw;
    let secrets = if reveal && chosen.iter().any(|(_, o)| o.sensitive) {
        let wanted: Vec<&str> = chosen.iter().filter(|(_, o)| o.sensitive).map(|(n, _)| n.as_str()).collect();
        sensitive_values(args, path, has_config, state, &wanted, &rt, style)?
    } else {
        BTreeMap::new()
    };
    let value_of = |n: &str, o: &OutputState| -> Value { secrets.get(n).cloned().unwrap_or_else(|| o.value.clone()) };
    if let (true, Some((n, o))) = (args.raw, chosen.first()) {
        let value = value_of(n, o);
        match &value {
            Value::String(s) => out!("{s}"),
            Value::Number(x) => out!("{x}"),
            Value::Bool(b) => out!("{b}"),
            other => {
                return Err(Diagnostic::global(
                    "output::not_raw",
                    format!("output `{n}` is {}, which --raw cannot show as a bare value", a_type(other)),
                )
                .help(format!("--raw shows strings, numbers and bools; use `drydock output {n} --json`"))
                .into())
            }
        }
        return Ok(());
    }
    if args.json {
        let entry = |n: &str, o: &OutputState| {
            let value = value_of(n, o);
            json!({ "value": value, "type": type_name(&value), "sensitive": o.sensitive })
        };
        let doc = match (name, chosen.first()) {
            (Some(_), Some((n, o))) => entry(n, o),
            _ => Value::Object(chosen.iter().map(|(n, o)| (n.to_string(), entry(n, o))).collect()),
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| error("output::json", e.to_string()))?;
        outln!("{text}");
        return Ok(());
    }
    match (name, chosen.first()) {
        (Some(_), Some((_, o))) => {
            outln!("{}", if o.sensitive { "<sensitive>".to_string() } else { kcl_text(&o.value) });
        }
        _ => {
            let mut text = String::new();
            for (n, o) in chosen {
                let shown = if o.sensitive { "<sensitive>".to_string() } else { kcl_text(&o.value) };
                text.push_str(&format!("{n} = {shown}\n"));
            }
            out!("{text}");
        }
    }
    Ok(())
}

fn unknown_output(name: &str, outputs: &BTreeMap<String, OutputState>, at: &str) -> Diagnostic {
    let names: Vec<&str> = outputs.keys().map(String::as_str).collect();
    let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let d = Diagnostic::global(
        "output::unknown",
        format!("no output `{name}` in the state at {at}; the outputs are {listed}"),
    );
    if let Some(best) = drydock_syntax::diag::did_you_mean(name, names.iter().copied()) {
        return d.help(format!("did you mean `{best}`?"));
    }
    if Path::new(name).is_dir() {
        return d.help(format!("to read the state of the configuration in {name}, write `drydock output ./{name}`"));
    }
    d
}

/// Evaluates the configuration at `path` with the variables given and `computed` values of
/// node groups; its errors are reported.
fn evaluate(
    args: &OutputArgs,
    path: &Path,
    computed: BTreeMap<String, BTreeMap<String, KclValue>>,
    style: Style,
) -> Result<Model, Failed> {
    let mut inputs = args.state.vars.inputs().map_err(|d| {
        report(&d, &Sources::new(), style);
        Failed::Reported
    })?;
    inputs.computed = computed;
    let loaded = drydock_config::load(path, &inputs);
    match loaded.model.filter(|_| loaded.diagnostics.is_empty()) {
        Some(m) => Ok(m),
        None => {
            report(&loaded.diagnostics, &loaded.sources, style);
            Err(Failed::Reported)
        }
    }
}

/// What each node group's `group_names` (from the state) and, given the cloud's groups,
/// `instance_ids` evaluate to — as the apply that recorded the outputs computed them.
fn computed(
    state: &State,
    observed: Option<&HashMap<&str, &drydock_provider::ObservedGroup>>,
) -> BTreeMap<String, BTreeMap<String, KclValue>> {
    let mut out = BTreeMap::new();
    for cs in state.clusters.values() {
        for (address, ng) in &cs.node_groups {
            let names: Vec<String> = ng.current().map(|g| g.groups.clone()).unwrap_or_default();
            let mut values = BTreeMap::new();
            if let Some(by_name) = observed {
                let mut groups: Vec<&drydock_provider::ObservedGroup> =
                    names.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect();
                groups.sort_by(|a, b| a.name.cmp(&b.name));
                let ids = groups
                    .iter()
                    .flat_map(|g| g.instances.iter().filter(|i| i.is_live()))
                    .map(|i| KclValue::String(i.id.clone()))
                    .collect();
                values.insert("instance_ids".to_string(), KclValue::List(ids));
            }
            values.insert("group_names".to_string(), KclValue::List(names.into_iter().map(KclValue::String).collect()));
            out.insert(address.clone(), values);
        }
    }
    out
}

/// The values of the sensitive outputs `wanted`, evaluated again and checked against the
/// digests the state records.
fn sensitive_values(
    args: &OutputArgs,
    path: &Path,
    has_config: bool,
    state: &State,
    wanted: &[&str],
    rt: &tokio::runtime::Runtime,
    style: Style,
) -> Result<BTreeMap<String, Value>, Failed> {
    let why = "the state keeps only a digest of a sensitive output, so its value comes from evaluating the configuration again";
    if !has_config {
        return Err(error("output::sensitive", format!("{why}, and there is no configuration at {}", path.display())));
    }
    let mut model = evaluate(args, path, computed(state, None), style)?;
    let needs_cloud = wanted.iter().any(|n| model.outputs.iter().any(|o| o.name == *n && o.value.is_unknown()));
    if needs_cloud {
        // Instance ids are the cloud's: observe it, as the apply that recorded them did.
        let providers = drydock_session::providers(&model, &drydock_session::config_dir(path))
            .map_err(|e| error("output::observe", e))?;
        let observed = rt
            .block_on(drydock_session::observe_all(&providers, &state.lineage))
            .map_err(|e| error("output::observe", e))?;
        let by_name: HashMap<&str, &drydock_provider::ObservedGroup> =
            observed.values().flat_map(|o| o.groups.iter()).map(|g| (g.name.as_str(), g)).collect();
        model = evaluate(args, path, computed(state, Some(&by_name)), style)?;
    }
    let mut out = BTreeMap::new();
    for name in wanted {
        let Some(recorded) = state.outputs.get(*name) else { continue };
        let Some(o) = model.outputs.iter().find(|o| o.name == *name) else {
            return Err(error(
                "output::sensitive",
                format!("output `{name}` is sensitive: {why}, and the configuration no longer has it"),
            ));
        };
        if drydock_session::outputs::recorded_digest(&o.value) != recorded.value {
            return Err(Diagnostic::global(
                "output::sensitive",
                format!(
                    "output `{name}` is sensitive: {why}, and it now evaluates to another value than the one the last apply recorded"
                ),
            )
            .help(
                "give the variables it was applied with (--var, --var-file, DRYDOCK_VAR_…); if the configuration changed, `drydock apply` records the new value",
            )
            .into());
        }
        out.insert(name.to_string(), o.value.to_json());
    }
    Ok(out)
}

/// A value's type in the language's words: `string`, `number`, `bool`, `list(string)`,
/// `map(number)`; `any` for null, for an empty collection's element, and where elements
/// differ.
fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "any".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => format!("list({})", element_type(items.iter())),
        Value::Object(m) => format!("map({})", element_type(m.values())),
    }
}

fn element_type<'a>(mut items: impl Iterator<Item = &'a Value>) -> String {
    let Some(first) = items.next() else { return "any".into() };
    let t = type_name(first);
    if items.all(|v| type_name(v) == t) {
        t
    } else {
        "any".into()
    }
}

/// `a list`, `a map`, `null`: for the --raw error.
fn a_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
        Value::Null => "null",
        Value::Bool(_) | Value::Number(_) | Value::String(_) => "a scalar",
    }
}

/// A recorded value written as .kcl source: strings quoted, `["a", "b"]`, `{ "k" = "v" }`.
fn kcl_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(kcl_text).collect::<Vec<_>>().join(", ")),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), kcl_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
