//! Configuration: evaluating parsed files into the typed [`Model`]. Variables come from
//! `--var`, `--var-file`, `DRYDOCK_VAR_*` and defaults; locals, clusters and outputs are
//! evaluated in the order of a reference graph, and a cycle names every member.
//! Invariant: knows nothing of state, plans, providers or the terminal; every error is a
//! diagnostic with a span, all of them are collected, and nothing panics on any input.
//!
//! Evaluation without churn: a fleet of 10,000 node groups must not cost hundreds of
//! allocations each (`benches/validate.rs` counts them), so what is only looked at is
//! borrowed, not copied.
//! - Attribute paths (`size`, `rollout.max_surge`) are the schema's `&'static str`s, and a
//!   block's evaluated attributes are a short list of them (`Settings`); a node group's
//!   settings are its own over its cluster's `defaults` by reference, not a copy of them.
//! - The reference graph names locals and clusters by the names in the syntax tree.
//! - `cluster.NAME`'s value (every node group's settings as an object) is built only for the
//!   clusters something reads (`cluster.NAME`, or the `cluster` namespace as a whole).
//! - A reference (`local.tags.team`) is read where its value is kept and copied once, not
//!   copied whole and then taken apart (`eval.rs`).

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod eval;
pub mod model;
pub mod schema;
pub mod value;

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use eval::{quoted, redact, type_error, Evaluator, Reported, Scope, Shown, SENSITIVE};
pub use model::*;
use schema::{check_body, BodyView, Schema, Ty};
use value::{article, convert, Type, Value};

use drydock_syntax::ast::{Attribute, Block, Expr, ExprKind, File};
use drydock_syntax::diag::{self, Diagnostic, FileId, Sources, Span};
use drydock_syntax::{parse_expr, parse_file, visit};

/// Where variable values come from, besides defaults.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--var NAME=VALUE`, in command-line order (a later one wins).
    pub vars: Vec<(String, String)>,
    /// `--var-file FILE`, in command-line order (a later one wins).
    pub var_files: Vec<PathBuf>,
    /// `DRYDOCK_VAR_NAME=VALUE` from the environment.
    pub env: Vec<(String, String)>,
    /// The NAMEs of `DRYDOCK_VAR_NAME` variables whose value is not UTF-8 text: each is an
    /// error (`kcl::invalid_var`), not a value to guess at.
    pub env_not_utf8: Vec<String>,
    /// Attributes known only after apply (`group_names`, `instance_ids`), by node group
    /// address; without them those attributes evaluate as unknown.
    pub computed: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Inputs {
    /// Inputs with the `DRYDOCK_VAR_*` variables of this process's environment.
    pub fn with_process_env(vars: Vec<(String, String)>, var_files: Vec<PathBuf>) -> Inputs {
        // Not `std::env::vars`: it panics on any variable of the process that is not UTF-8,
        // however unrelated to drydock.
        let (env, env_not_utf8) = drydock_vars(std::env::vars_os());
        Inputs { vars, var_files, env, env_not_utf8, computed: BTreeMap::new() }
    }
}

/// The `DRYDOCK_VAR_*` variables among `vars` as (NAME, value), and the NAMEs of those whose
/// value is not UTF-8. A variable whose own name is not UTF-8 is not drydock's (a variable's
/// name is an identifier) and is skipped.
fn drydock_vars(vars: impl Iterator<Item = (OsString, OsString)>) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = vec![];
    let mut not_utf8 = vec![];
    for (key, value) in vars {
        let Some(name) = key.to_str().and_then(|k| k.strip_prefix("DRYDOCK_VAR_")) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name.to_string(), value)),
            Err(_) => not_utf8.push(name.to_string()),
        }
    }
    (env, not_utf8)
}

/// A configuration read from disk: its sources, syntax trees, and model or errors.
pub struct Loaded {
    pub sources: Sources,
    pub files: Vec<(FileId, File)>,
    pub model: Option<Model>,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

/// The most bytes a `.kcl` or `.kclvars` file may have (a fleet of 100,000 node groups is
/// about 8 MB).
pub const MAX_SOURCE_BYTES: u64 = 256 << 20;
/// The most bytes `file()` reads (user data is at most 16 KB on AWS; other uses stay small).
pub const MAX_FILE_FUNCTION_BYTES: u64 = 4 << 20;

/// Reads a text file a user names: a regular file of at most `limit` bytes, in UTF-8 (an
/// invalid byte is reported with its line and column), without a leading byte-order mark.
/// The error says what is wrong, for "cannot read PATH: …".
pub fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    read_source(path, limit).map(|(text, _)| text)
}

/// [`read_text`], and whether the file began with a byte-order mark (which `fmt` keeps).
pub fn read_source(path: &Path, limit: u64) -> Result<(String, bool), String> {
    let bytes = drydock_fsutil::read_bounded(path, limit).map_err(|e| io_msg(&e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        format!("it is not UTF-8 text: the first invalid byte is at line {line}, column {column}")
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => (rest.to_string(), true),
        None => (text, false),
    })
}

/// The `.kcl` files a path names: the file itself, or every `*.kcl` in a directory, by name.
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_msg(&e)))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(format!(
            "cannot read {}: it is not a regular file (a device, a pipe or a socket) nor a directory",
            path.display()
        ));
    }
    let mut files = vec![];
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_msg(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {}", path.display(), io_msg(&e)))?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "kcl") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no .kcl files in {}", path.display()));
    }
    Ok(files)
}

pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    // "No such file or directory (os error 2)" → "no such file or directory"
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// Reads, parses and evaluates the configuration at `path` (a file or a directory).
pub fn load(path: &Path, inputs: &Inputs) -> Loaded {
    let mut sources = Sources::new();
    let files = match config_files(path) {
        Ok(f) => f,
        Err(msg) => {
            return Loaded {
                sources,
                files: vec![],
                model: None,
                diagnostics: vec![Diagnostic::global("kcl::io", msg)],
            }
        }
    };
    let mut diags = vec![];
    for f in files {
        match read_text(&f, MAX_SOURCE_BYTES) {
            Ok(text) => {
                sources.add(f.display().to_string(), f.clone(), text);
            }
            Err(e) => diags.push(Diagnostic::global("kcl::io", format!("cannot read {}: {e}", f.display()))),
        }
    }
    if !diags.is_empty() {
        return Loaded { sources, files: vec![], model: None, diagnostics: diags };
    }
    load_sources(sources, inputs)
}

/// Parses and evaluates sources already in memory.
pub fn load_sources(sources: Sources, inputs: &Inputs) -> Loaded {
    let mut diags = vec![];
    let mut files = vec![];
    for (id, f) in sources.files() {
        let (file, d) = parse_file(&f.text, id);
        diags.extend(d);
        if let Some(file) = file {
            files.push((id, file));
        }
    }
    // Evaluating around a syntax error would report names the broken file defines as missing.
    if !diags.is_empty() {
        diag::sort(&mut diags);
        return Loaded { sources, files, model: None, diagnostics: diags };
    }
    let mut sources = sources;
    let (model, diagnostics) = evaluate(&mut sources, &files, inputs);
    Loaded { sources, files, model, diagnostics }
}

/// Evaluates parsed files into a model. `sources` may gain entries for `--var` values
/// and var files, so that their errors can be shown too.
pub fn evaluate(sources: &mut Sources, files: &[(FileId, File)], inputs: &Inputs) -> (Option<Model>, Vec<Diagnostic>) {
    let mut diags = vec![];
    // Values from the command line and var files are read before evaluation borrows sources.
    let raw_inputs = read_inputs(sources, inputs, &mut diags);
    let ev = Evaluator::new(sources);
    let mut cx = Cx { ev, diags, failed: BTreeSet::new(), computed: &inputs.computed, keyed: BTreeMap::new() };
    let model = cx.run(files, raw_inputs);
    let Cx { ev, mut diags, .. } = cx;
    diags.extend(ev.diags.into_inner());
    diag::sort(&mut diags);
    if diags.is_empty() {
        (model, diags)
    } else {
        (None, diags)
    }
}

/// A variable value as given outside the configuration.
enum RawValue {
    /// From `--var` or the environment: text, typed once the declaration is known.
    Text { text: String, file: FileId, origin: String },
    /// From a var file: an expression.
    Expr(Expr),
}

struct RawInputs {
    /// Per variable name, the winning value and where it came from.
    values: BTreeMap<String, RawValue>,
    /// Names given on the command line or in var files, with a span or origin to blame.
    given: Vec<(String, Option<Span>, String)>,
}

fn read_inputs(sources: &mut Sources, inputs: &Inputs, diags: &mut Vec<Diagnostic>) -> RawInputs {
    let mut values = BTreeMap::new();
    let mut given = vec![];
    for name in &inputs.env_not_utf8 {
        diags.push(Diagnostic::global(
            "kcl::invalid_var",
            format!("the value of DRYDOCK_VAR_{name} is not UTF-8 text; set it to UTF-8 text or unset it"),
        ));
    }
    // Lowest precedence first, so that later inserts win: env, var files, --var.
    for (name, text) in &inputs.env {
        let origin = format!("DRYDOCK_VAR_{name}");
        let file = sources.add(origin.clone(), PathBuf::from("."), text.clone());
        values.insert(name.clone(), RawValue::Text { text: text.clone(), file, origin });
    }
    for path in &inputs.var_files {
        let text = match read_text(path, MAX_SOURCE_BYTES) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::global("kcl::io", format!("cannot read var file {}: {e}", path.display())));
                continue;
            }
        };
        let id = sources.add(path.display().to_string(), path.clone(), text.clone());
        let (file, d) = parse_file(&text, id);
        diags.extend(d);
        let Some(file) = file else { continue };
        for block in file.body.blocks() {
            diags.push(
                Diagnostic::new("kcl::unknown_block", block.header(), "a var file holds only attributes")
                    .label("a block")
                    .help("write `name = value` for each variable"),
            );
        }
        for attr in file.body.attributes() {
            given.push((attr.name.name.to_string(), Some(attr.name.span), String::new()));
            values.insert(attr.name.name.to_string(), RawValue::Expr(attr.value.clone()));
        }
    }
    for (name, text) in &inputs.vars {
        let origin = format!("--var {name}");
        let file = sources.add(origin.clone(), PathBuf::from("."), text.clone());
        given.push((name.clone(), None, origin.clone()));
        values.insert(name.clone(), RawValue::Text { text: text.clone(), file, origin });
    }
    RawInputs { values, given }
}

/// A graph vertex: something other things can refer to, by its name in the syntax tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node<'a> {
    Local(&'a str),
    Cluster(&'a str),
    Output(&'a str),
}

impl Node<'_> {
    fn address(&self) -> String {
        match self {
            Node::Local(n) => format!("local.{n}"),
            Node::Cluster(n) => format!("cluster.{n}"),
            Node::Output(n) => format!("output.{n}"),
        }
    }
}

/// One attribute's value in a node group or its `defaults`, by path (`rollout.max_surge`).
#[derive(Debug, Clone)]
struct Field {
    value: Value,
    span: Span,
    sensitive: bool,
}

impl Field {
    /// Stands for an attribute whose value failed (and was reported), so that it is not
    /// reported again as missing.
    fn failed(span: Span) -> Field {
        Field { value: Value::Null, span, sensitive: false }
    }
}

/// A block's evaluated attributes by path (`size`, `rollout.max_surge`). The paths are the
/// schema's `&'static str`s, so a layer allocates no names; a block has a handful of them, so
/// a list is the fastest map (a lookup compares lengths before it compares bytes).
#[derive(Debug)]
struct Settings<F>(Vec<(&'static str, F)>);

/// A block's own evaluated attributes.
type Layer = Settings<Field>;

/// A node group's settings: its own layer over its cluster's `defaults`, by reference.
type Merged<'a> = Settings<&'a Field>;

impl<F: Borrow<Field>> Settings<F> {
    fn new() -> Self {
        Settings(Vec::new())
    }
    fn with_capacity(n: usize) -> Self {
        Settings(Vec::with_capacity(n))
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, path: &str) -> Option<&Field> {
        self.0.iter().find(|(p, _)| *p == path).map(|(_, f)| f.borrow())
    }
    fn contains_key(&self, path: &str) -> bool {
        self.get(path).is_some()
    }
    /// Sets `path`, in place of what it had.
    fn insert(&mut self, path: &'static str, field: F) {
        match self.0.iter_mut().find(|(p, _)| *p == path) {
            Some((_, f)) => *f = field,
            None => self.0.push((path, field)),
        }
    }
    fn iter(&self) -> impl Iterator<Item = (&'static str, &Field)> {
        self.0.iter().map(|(p, f)| (*p, f.borrow()))
    }
    /// The paths whose values derive from a sensitive value, each with `prefix` before it.
    fn sensitive_paths<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
        self.iter().filter(|(_, f)| f.sensitive).map(move |(p, _)| format!("{prefix}{p}"))
    }
    /// Whether any of `paths` derives from a sensitive value.
    fn any_sensitive(&self, paths: &[&str]) -> bool {
        paths.iter().any(|p| self.get(p).is_some_and(|f| f.sensitive))
    }
}

/// `for_each` instances, (key, value), and whether the collection is sensitive.
type Instances = (Vec<(String, Value)>, bool);

/// A cluster and the provider reference it named, if any (resolved once providers are known).
type ClusterWithProvider = (Cluster, Option<(String, Span)>);

struct Cx<'s> {
    ev: Evaluator<'s>,
    diags: Vec<Diagnostic>,
    /// Locals and clusters that failed, so that references to them add no error.
    failed: BTreeSet<Node<'s>>,
    computed: &'s BTreeMap<String, BTreeMap<String, Value>>,
    /// Per address of a cluster or node group made by `for_each`: the `for_each` value's span
    /// and whether its keys are sensitive, for name collisions to point at and to redact.
    keyed: BTreeMap<String, (Span, bool)>,
}

#[derive(Default)]
struct Decls<'a> {
    variables: Vec<&'a Block>,
    locals: Vec<&'a Attribute>,
    providers: Vec<&'a Block>,
    backends: Vec<&'a Block>,
    clusters: Vec<&'a Block>,
    outputs: Vec<&'a Block>,
    moved: Vec<&'a Block>,
}

impl<'s> Cx<'s> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// A local or cluster that failed: it is skipped, and references to it add no error.
    fn mark_failed(&mut self, node: Node<'s>) {
        self.ev.failed.borrow_mut().insert(node.address());
        self.failed.insert(node);
    }

    fn run(&mut self, files: &'s [(FileId, File)], inputs: RawInputs) -> Option<Model> {
        let decls = self.declarations(files);
        let vars = self.variables(&decls, inputs);

        // The reference graph over locals, clusters and outputs.
        let mut nodes: Vec<(Node, Vec<(Node, Span)>)> = vec![];
        let local_names: BTreeSet<&str> = decls.locals.iter().map(|a| a.name.name.as_str()).collect();
        let cluster_names: BTreeSet<&str> =
            decls.clusters.iter().filter_map(|b| b.labels.first()).map(|l| l.value.as_str()).collect();
        let known = |n: &Node| match n {
            Node::Local(x) => local_names.contains(x),
            Node::Cluster(x) => cluster_names.contains(x),
            Node::Output(_) => false,
        };
        // Whether anything reads the `cluster` namespace as a whole (`cluster["x"]`).
        let mut whole_cluster = false;
        for a in &decls.locals {
            let mut refs = vec![];
            collect_refs(&a.value, &mut vec![], &mut refs, &mut whole_cluster);
            refs.retain(|(n, _)| known(n));
            nodes.push((Node::Local(&a.name.name), refs));
        }
        for b in &decls.clusters {
            let mut refs = vec![];
            collect_block_refs(b, &mut refs, &mut whole_cluster);
            refs.retain(|(n, _)| known(n));
            nodes.push((Node::Cluster(&b.labels[0].value), refs));
        }
        for b in &decls.outputs {
            let mut refs = vec![];
            collect_block_refs(b, &mut refs, &mut whole_cluster);
            refs.retain(|(n, _)| known(n));
            nodes.push((Node::Output(&b.labels[0].value), refs));
        }
        let order = self.order(&nodes);
        // The clusters whose value (`cluster.NAME`) something reads: only those are built.
        // Nothing else can read one: variables, providers and backends cannot refer to clusters.
        let read_clusters: BTreeSet<&str> = nodes
            .iter()
            .flat_map(|(_, refs)| refs)
            .filter_map(|(n, _)| match n {
                Node::Cluster(name) => Some(*name),
                _ => None,
            })
            .collect();

        let mut locals: BTreeMap<String, Value> = BTreeMap::new();
        let mut cluster_values: BTreeMap<String, Value> = BTreeMap::new();
        let mut clusters: Vec<(Cluster, Option<(String, Span)>)> = vec![];
        let mut outputs = vec![];
        let local_attrs: BTreeMap<&str, &Attribute> = decls.locals.iter().map(|a| (a.name.name.as_str(), *a)).collect();
        let cluster_blocks: BTreeMap<&str, &Block> =
            decls.clusters.iter().map(|b| (b.labels[0].value.as_str(), *b)).collect();
        let output_blocks: BTreeMap<&str, &Block> =
            decls.outputs.iter().map(|b| (b.labels[0].value.as_str(), *b)).collect();
        for i in order {
            let node = nodes[i].0;
            if self.failed.contains(&node) {
                continue;
            }
            if nodes[i].1.iter().any(|(dep, _)| self.failed.contains(dep)) {
                self.mark_failed(node);
                continue;
            }
            let scope = Scope {
                vars: Some(&vars),
                locals: Some(&locals),
                clusters: Some(&cluster_values),
                each: None,
                each_sensitive: false,
                restriction: None,
            };
            match node {
                Node::Local(name) => {
                    let attr = local_attrs[name];
                    let (v, sensitive) = self.ev.eval_marked(&attr.value, &scope);
                    match v {
                        Ok(v) => {
                            self.ev.sensitive_locals.borrow_mut().insert(name.to_string(), sensitive);
                            locals.insert(name.to_string(), v);
                        }
                        Err(Reported) => {
                            self.mark_failed(node);
                        }
                    }
                }
                Node::Cluster(name) => {
                    let block = cluster_blocks[name];
                    let value_read = whole_cluster || read_clusters.contains(name);
                    match self.cluster(block, &scope, value_read) {
                        Some((made, value)) => {
                            cluster_values.insert(name.to_string(), value);
                            clusters.extend(made);
                        }
                        None => {
                            self.mark_failed(node);
                        }
                    }
                }
                Node::Output(name) => {
                    if let Some(o) = self.output(output_blocks[name], &scope) {
                        outputs.push(o);
                    }
                }
            }
        }
        // Locals and clusters that failed are treated as absent from here on.
        let scope = Scope {
            vars: Some(&vars),
            locals: Some(&locals),
            clusters: None,
            each: None,
            each_sensitive: false,
            restriction: Some("providers and backends cannot refer to clusters"),
        };
        let providers = self.providers(&decls.providers, &scope);
        let backend = decls.backends.first().and_then(|b| self.backend(b, &scope));
        let clusters = self.assign_providers(clusters, &providers);
        self.name_collisions(&clusters);
        let mut clusters = clusters;
        clusters.sort_by(|a, b| a.address.cmp(&b.address));
        outputs.sort_by(|a: &Output, b| a.name.cmp(&b.name));
        let moves = self.moves(&decls.moved, &clusters);
        Some(Model { providers, backend, clusters, outputs, moves })
    }

    /// Sorts the top-level blocks by kind and reports names declared twice.
    fn declarations<'a>(&mut self, files: &'a [(FileId, File)]) -> Decls<'a> {
        let mut d = Decls::default();
        let mut seen: BTreeMap<(String, String), Span> = BTreeMap::new();
        let mut locals_seen: BTreeMap<String, Span> = BTreeMap::new();
        let mut first_backend: Option<Span> = None;
        for (_, file) in files {
            let view = check_body(&file.body, &schema::FILE, "a configuration file", &mut self.diags);
            for (def, block) in view.blocks {
                let label = block.labels.first().map(|l| l.value.to_string()).unwrap_or_default();
                if def.name == "locals" {
                    let lv = check_body(&block.body, &schema::LOCALS, "locals", &mut self.diags);
                    for (_, a) in lv.attrs {
                        if let Some(prev) = locals_seen.get(a.name.name.as_str()) {
                            self.diags.push(
                                Diagnostic::new(
                                    "kcl::duplicate_attribute",
                                    a.name.span,
                                    format!("local value `{}` is defined twice", a.name.name),
                                )
                                .label("defined again here")
                                .with_secondary(*prev, "first defined here"),
                            );
                            continue;
                        }
                        locals_seen.insert(a.name.name.to_string(), a.name.span);
                        d.locals.push(a);
                    }
                    for b in block.body.blocks() {
                        self.diags.push(
                            Diagnostic::new("kcl::unknown_block", b.kind.span, "locals hold only attributes")
                                .label("a block")
                                .help("write `name = value`"),
                        );
                    }
                    continue;
                }
                if def.name == "moved" {
                    d.moved.push(block);
                    continue;
                }
                if def.name == "backend" {
                    if let Some(prev) = first_backend {
                        self.diags.push(
                            Diagnostic::new(
                                "kcl::duplicate_block",
                                block.header(),
                                "only one backend block is allowed",
                            )
                            .label("second backend")
                            .with_secondary(prev, "first defined here"),
                        );
                        continue;
                    }
                    first_backend = Some(block.header());
                    d.backends.push(block);
                    continue;
                }
                let key_label = if def.name == "provider" {
                    // Providers are unique by kind and alias, checked once the alias is known.
                    d.providers.push(block);
                    continue;
                } else {
                    label.clone()
                };
                let key = (def.name.to_string(), key_label);
                if let Some(prev) = seen.get(&key) {
                    self.diags.push(
                        Diagnostic::new(
                            "kcl::duplicate_block",
                            block.header(),
                            format!("{} `{}` is defined twice", def.name, label),
                        )
                        .label("defined again here")
                        .with_secondary(*prev, "first defined here"),
                    );
                    continue;
                }
                seen.insert(key, block.header());
                match def.name {
                    "variable" => d.variables.push(block),
                    "cluster" => d.clusters.push(block),
                    "output" => d.outputs.push(block),
                    _ => {}
                }
            }
        }
        d
    }

    fn variables(&mut self, decls: &Decls, mut inputs: RawInputs) -> BTreeMap<String, Value> {
        let mut vars = BTreeMap::new();
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let constant =
            Scope { restriction: Some("a variable's value cannot refer to other values"), ..Scope::default() };
        for block in &decls.variables {
            let name = block.labels[0].value.to_string();
            let view = check_body(&block.body, &schema::VARIABLE, "variable", &mut self.diags);
            let ty = match view.attr("type") {
                Some(a) => match self.parse_type(&a.value) {
                    Some(t) => t,
                    None => {
                        self.ev.failed.borrow_mut().insert(format!("var.{name}"));
                        continue;
                    }
                },
                None => Type::Any,
            };
            let sensitive = self.bool_attr(&view, "sensitive", &constant).unwrap_or(false);
            declared.insert(name.clone());
            let value = match inputs.values.remove(&name) {
                Some(RawValue::Text { text, file, origin }) => self.typed_input(&text, file, &origin, &ty, sensitive),
                Some(RawValue::Expr(e)) => self.typed_expr(&e, &ty, &constant, sensitive),
                None => match view.attr("default") {
                    Some(a) => self.typed_expr(&a.value, &ty, &constant, sensitive),
                    None => {
                        self.err(
                            Diagnostic::new("kcl::missing_variable", block.header(), format!("variable `{name}` has no value"))
                                .label("no default, and no value given")
                                .help(format!(
                                    "set it with --var {name}=…, in a --var-file, or with DRYDOCK_VAR_{name}; or give it a default"
                                )),
                        );
                        None
                    }
                },
            };
            match value {
                Some(v) => {
                    vars.insert(name.clone(), v);
                }
                None => {
                    self.ev.failed.borrow_mut().insert(format!("var.{name}"));
                }
            }
            self.ev_sensitive_var(&name, sensitive);
        }
        for (name, span, origin) in &inputs.given {
            if declared.contains(name) {
                continue;
            }
            let msg = format!("no variable named `{name}` is declared");
            let d = match span {
                Some(s) => Diagnostic::new("kcl::undefined_variable", *s, msg).label("not declared"),
                None => Diagnostic::global("kcl::undefined_variable", format!("{msg} (given by {origin})")),
            };
            self.err(d.suggest(name, declared.iter().map(String::as_str)));
        }
        vars
    }

    fn ev_sensitive_var(&mut self, name: &str, sensitive: bool) {
        self.ev.sensitive_vars.insert(name.to_string(), sensitive);
    }

    /// `--var` and environment values: plain text for string variables, otherwise an expression.
    /// For a sensitive variable, an error is one message without the text or a span into it
    /// (rendering a span would print the text).
    fn typed_input(&mut self, text: &str, file: FileId, origin: &str, ty: &Type, sensitive: bool) -> Option<Value> {
        if !sensitive {
            return self.typed_input_text(text, file, origin, ty, false);
        }
        let (ours, theirs) = (self.diags.len(), self.ev.diags.borrow().len());
        let v = self.typed_input_text(text, file, origin, ty, true);
        let mut errors: Vec<Diagnostic> = self.diags.drain(ours..).collect();
        errors.extend(self.ev.diags.borrow_mut().drain(theirs..));
        match errors.first() {
            None => v,
            Some(first) => {
                self.err(
                    Diagnostic::global(
                        first.code,
                        format!(
                            "the value given by {origin} is not {} (not shown: the variable is sensitive)",
                            article(ty)
                        ),
                    )
                    .help(format!("{origin} is read as an expression of type {ty}")),
                );
                None
            }
        }
    }

    fn typed_input_text(
        &mut self,
        text: &str,
        file: FileId,
        origin: &str,
        ty: &Type,
        sensitive: bool,
    ) -> Option<Value> {
        if *ty == Type::String {
            return Some(Value::String(text.to_string()));
        }
        match parse_expr(text, file) {
            Ok(e) if *ty == Type::Any && refers_to_names(&e) => Some(Value::String(text.to_string())),
            Ok(e) => {
                let scope = Scope {
                    restriction: Some("a value given outside the configuration is a literal"),
                    ..Scope::default()
                };
                self.typed_expr(&e, ty, &scope, sensitive)
            }
            // A variable of type `any` takes text that is not an expression as a string.
            Err(_) if *ty == Type::Any => Some(Value::String(text.to_string())),
            Err(d) => {
                self.diags
                    .extend(d.into_iter().map(|d| d.help(format!("{origin} is read as an expression of type {ty}"))));
                None
            }
        }
    }

    /// A variable's value, converted to its type. Everything in a sensitive variable's value
    /// is sensitive, so its errors show none of it.
    fn typed_expr(&mut self, e: &Expr, ty: &Type, scope: &Scope, sensitive: bool) -> Option<Value> {
        let v = if sensitive { self.ev.eval_sensitive(e, scope) } else { self.ev.eval_top(e, scope) }.ok()?;
        match convert(v.clone(), ty) {
            Ok(v) => Some(v),
            Err(msg) => {
                // The message names elements, keys and strings of the value.
                let msg = if sensitive { format!("expected {}", article(ty)) } else { msg };
                self.err(
                    Diagnostic::new("kcl::type_mismatch", e.span, format!("wrong type: {msg}"))
                        .label(format!("this is {}", Shown::new(&v, sensitive).describe()))
                        .help(format!("the variable is declared as {ty}")),
                );
                None
            }
        }
    }

    fn parse_type(&mut self, e: &Expr) -> Option<Type> {
        let bad = |cx: &mut Self, span: Span, name: &str| {
            cx.err(
                Diagnostic::new("kcl::invalid_type", span, format!("unknown type `{name}`"))
                    .label("not a type")
                    .suggest(name, value::TYPE_NAMES.iter().copied())
                    .help_if_none(format!("the types are {}", value::TYPE_NAMES.join(", "))),
            );
            None
        };
        match &e.kind {
            ExprKind::Variable(i) => match i.name.as_str() {
                "string" => Some(Type::String),
                "number" => Some(Type::Number),
                "bool" => Some(Type::Bool),
                "duration" => Some(Type::Duration),
                "percent" => Some(Type::Percent),
                "range" => Some(Type::Range),
                "any" => Some(Type::Any),
                "list" | "map" => {
                    self.err(
                        Diagnostic::new("kcl::invalid_type", e.span, format!("`{}` needs an element type", i.name))
                            .label("incomplete type")
                            .help(format!("write {}(string), or {}(any)", i.name, i.name)),
                    );
                    None
                }
                other => bad(self, i.span, other),
            },
            ExprKind::Call(f, args) if f.name == "list" || f.name == "map" => {
                if args.len() != 1 {
                    self.err(
                        Diagnostic::new("kcl::invalid_type", e.span, format!("`{}` takes one element type", f.name))
                            .label("wrong number of types"),
                    );
                    return None;
                }
                let inner = Box::new(self.parse_type(&args[0])?);
                Some(if f.name == "list" { Type::List(inner) } else { Type::Map(inner) })
            }
            ExprKind::Call(f, _) => bad(self, f.span, &f.name),
            _ => {
                self.err(
                    Diagnostic::new("kcl::invalid_type", e.span, "a type is a name like string or list(number)")
                        .label("not a type")
                        .help("types are not quoted: write type = string"),
                );
                None
            }
        }
    }

    fn bool_attr(&mut self, view: &BodyView, name: &str, scope: &Scope) -> Option<bool> {
        let a = view.attr(name)?;
        let (v, sensitive) = self.ev.eval_marked(&a.value, scope);
        match check_ty(v.ok()?, Ty::Bool, a.value.span, sensitive) {
            Ok(Value::Bool(b)) => Some(b),
            Ok(_) => None,
            Err(d) => {
                self.err(d);
                None
            }
        }
    }

    /// Evaluation order: dependencies first. Members of a cycle are reported and marked failed.
    fn order(&mut self, nodes: &[(Node<'s>, Vec<(Node<'s>, Span)>)]) -> Vec<usize> {
        let index: BTreeMap<&Node, usize> = nodes.iter().enumerate().map(|(i, (n, _))| (n, i)).collect();
        let edges: Vec<Vec<usize>> =
            nodes.iter().map(|(_, refs)| refs.iter().filter_map(|(n, _)| index.get(n).copied()).collect()).collect();
        let sccs = tarjan(&edges);
        let mut order = vec![];
        for scc in sccs {
            let cyclic = scc.len() > 1 || edges[scc[0]].contains(&scc[0]);
            if !cyclic {
                order.push(scc[0]);
                continue;
            }
            let members: BTreeSet<usize> = scc.iter().copied().collect();
            let mut sorted: Vec<usize> = scc.clone();
            sorted.sort_by_key(|i| nodes[*i].1.first().map(|(_, s)| *s));
            // Walk the cycle from its first member so the message reads in reference order.
            let start = sorted[0];
            let mut path = vec![start];
            let mut labels = vec![];
            let mut cur = start;
            while let Some((next_node, span)) = nodes[cur].1.iter().find(|(n, _)| members.contains(&index[n])) {
                let next = index[next_node];
                labels.push((*span, format!("{} refers to {}", nodes[cur].0.address(), next_node.address())));
                if next == start || path.contains(&next) {
                    path.push(next);
                    break;
                }
                path.push(next);
                cur = next;
            }
            let names: Vec<String> = path.iter().map(|i| nodes[*i].0.address()).collect();
            let (first_span, first_text) = labels[0].clone();
            let mut d = Diagnostic::new("kcl::cycle", first_span, format!("reference cycle: {}", names.join(" → ")))
                .label(first_text)
                .help("break the cycle by removing one of these references");
            for (span, text) in labels.into_iter().skip(1) {
                d = d.with_secondary(span, text);
            }
            self.err(d);
            for i in scc {
                self.mark_failed(nodes[i].0);
            }
        }
        order
    }

    fn providers(&mut self, blocks: &[&Block], scope: &Scope) -> Vec<ProviderConfig> {
        let mut out: Vec<ProviderConfig> = vec![];
        for block in blocks {
            let kind = &block.labels[0];
            let schema: &'static Schema = match kind.value.as_str() {
                "sim" => &schema::SIM_PROVIDER,
                "aws" => &schema::AWS_PROVIDER,
                other => {
                    self.err(
                        Diagnostic::new("kcl::unknown_provider", kind.span, format!("unknown provider `{other}`"))
                            .label("not a provider kind")
                            .suggest(other, schema::PROVIDER_KINDS.iter().copied())
                            .help_if_none("the providers are \"sim\" and \"aws\""),
                    );
                    continue;
                }
            };
            let view = check_body(&block.body, schema, &format!("provider \"{}\"", kind.value), &mut self.diags);
            let layer = self.layer(&view, scope);
            let s = |k: &str| match layer.get(k).map(|f| &f.value) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let dur = |k: &str, d: u64| match layer.get(k).map(|f| &f.value) {
                Some(Value::Duration(ms)) => *ms,
                _ => d,
            };
            let settings = if kind.value == "sim" {
                let failure_rate = match layer.get("failure_rate") {
                    Some(Field { value: Value::Number(n), span, .. }) => {
                        if !(0.0..=1.0).contains(n) {
                            self.err(
                                Diagnostic::new("kcl::invalid_value", *span, "failure_rate is a probability")
                                    .label("not between 0 and 1"),
                            );
                        }
                        *n
                    }
                    _ => 0.0,
                };
                let opt_dur = |k: &str| match layer.get(k).map(|f| &f.value) {
                    Some(Value::Duration(ms)) => Some(*ms),
                    _ => None,
                };
                let mut workloads: Vec<SimWorkload> = vec![];
                for w in view.blocks_named("workload") {
                    let name = w.labels[0].value.to_string();
                    let wv = check_body(&w.body, &schema::WORKLOAD, "workload", &mut self.diags);
                    let wl = self.layer(&wv, scope);
                    let ws = |k: &str| match wl.get(k).map(|f| &f.value) {
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    };
                    let wb = |k: &str| matches!(wl.get(k).map(|f| &f.value), Some(Value::Bool(true)));
                    let wd = |k: &str| match wl.get(k).map(|f| &f.value) {
                        Some(Value::Duration(ms)) => Some(*ms),
                        _ => None,
                    };
                    if workloads.iter().any(|o| o.name == name) {
                        self.err(
                            Diagnostic::new(
                                "kcl::duplicate_block",
                                w.header(),
                                format!("workload `{name}` is defined twice"),
                            )
                            .label("defined again here"),
                        );
                        continue;
                    }
                    workloads.push(SimWorkload {
                        name,
                        cluster: ws("cluster"),
                        namespace: ws("namespace"),
                        kind: ws("kind").unwrap_or_else(|| "deployment".into()),
                        replicas: count(wl.get("replicas")),
                        min_available: int_or_pct(wl.get("min_available")).map(|v| v.to_string()),
                        max_unavailable: int_or_pct(wl.get("max_unavailable")).map(|v| v.to_string()),
                        empty_dir: wb("empty_dir"),
                        grace_period_s: wd("grace_period").map(|ms| ms / 1000),
                        stop_ms: wd("stop_time"),
                        never_terminates: wb("never_terminates"),
                        do_not_disrupt: wb("do_not_disrupt"),
                        node_selector: str_map(wl.get("node_selector")),
                        pdb_selector: str_map(wl.get("pdb_selector")),
                    });
                }
                ProviderSettings::Sim(SimSettings {
                    boot_time_ms: dur("boot_time", 2_000),
                    detection_delay_ms: dur("detection_delay", 10_000),
                    failure_rate,
                    bad_images: str_list(layer.get("bad_images")),
                    seed: count(layer.get("seed")).map_or(1, u64::from),
                    join_delay_ms: opt_dur("join_delay"),
                    pod_start_ms: opt_dur("pod_start"),
                    pods_per_node: count(layer.get("pods_per_node")),
                    workloads,
                    etcd: matches!(layer.get("etcd").map(|f| &f.value), Some(Value::Bool(true))),
                })
            } else {
                ProviderSettings::Aws(AwsSettings {
                    region: s("region"),
                    profile: s("profile"),
                    endpoint: s("endpoint"),
                })
            };
            let p = ProviderConfig { kind: kind.value.to_string(), alias: s("alias"), settings, span: block.header() };
            if let Some(prev) = out.iter().find(|o| o.reference() == p.reference()) {
                self.err(
                    Diagnostic::new(
                        "kcl::duplicate_block",
                        block.header(),
                        format!("provider `{}` is defined twice", p.reference()),
                    )
                    .label("defined again here")
                    .with_secondary(prev.span, "first defined here")
                    .help("give the second one an alias: alias = \"west\""),
                );
                continue;
            }
            out.push(p);
        }
        out
    }

    fn backend(&mut self, block: &Block, scope: &Scope) -> Option<Backend> {
        let kind = &block.labels[0];
        let schema: &'static Schema = match kind.value.as_str() {
            "local" => &schema::LOCAL_BACKEND,
            "s3" => &schema::S3_BACKEND,
            other => {
                self.err(
                    Diagnostic::new("kcl::unknown_backend", kind.span, format!("unknown backend `{other}`"))
                        .label("not a backend kind")
                        .suggest(other, schema::BACKEND_KINDS.iter().copied())
                        .help_if_none("the backends are \"local\" and \"s3\""),
                );
                return None;
            }
        };
        let view = check_body(&block.body, schema, &format!("backend \"{}\"", kind.value), &mut self.diags);
        let layer = self.layer(&view, scope);
        let s = |k: &str| match layer.get(k).map(|f| &f.value) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let lock_lease_ms = match layer.get("lock_lease") {
            Some(f) => match &f.value {
                Value::Duration(ms) if *ms >= 1000 => Some(*ms),
                Value::Duration(_) => {
                    self.err(
                        Diagnostic::new("kcl::invalid_value", f.span, "`lock_lease` must be at least 1s")
                            .label("too short")
                            .help("the holder renews its lease every third of it; 60s is the default"),
                    );
                    None
                }
                _ => None,
            },
            None => None,
        };
        if kind.value == "local" {
            return Some(Backend::Local { path: s("path"), lock_lease_ms });
        }
        let required = |cx: &mut Self, k: &str| {
            s(k).or_else(|| {
                cx.err(missing(block.header(), "backend \"s3\"", k, ""));
                None
            })
        };
        let bucket = required(self, "bucket");
        let key = required(self, "key");
        Some(Backend::S3 {
            bucket: bucket?,
            key: key?,
            region: s("region"),
            endpoint: s("endpoint"),
            profile: s("profile"),
            lock_lease_ms,
        })
    }

    /// Evaluates a body's attributes (and those of its settings blocks, by their dotted paths)
    /// against its schema; values that do not fit are reported and left out.
    fn layer(&mut self, view: &BodyView, scope: &Scope) -> Layer {
        let settings = view.blocks.iter().filter(|(def, _)| def.settings).map(|(_, b)| b.body.items.len());
        let mut out = Layer::with_capacity(view.attrs.len() + settings.sum::<usize>());
        self.layer_into(view, scope, &mut out);
        out
    }

    fn layer_into(&mut self, view: &BodyView, scope: &Scope, out: &mut Layer) {
        for &(def, attr) in &view.attrs {
            // `None`: an attribute of an open schema, which is not a setting.
            let Some(def) = def else {
                continue;
            };
            if def.name == "for_each" || def.name == "provider" {
                continue;
            }
            let (v, sensitive) = self.ev.eval_marked(&attr.value, scope);
            let Ok(v) = v else {
                out.insert(def.path, Field::failed(attr.value.span));
                continue;
            };
            if v == Value::Null {
                continue; // null means "not set", as in Terraform
            }
            match check_ty(v, def.ty, attr.value.span, sensitive) {
                Ok(value) => {
                    out.insert(def.path, Field { value, span: attr.value.span, sensitive });
                }
                Err(d) => {
                    self.err(d);
                    out.insert(def.path, Field::failed(attr.value.span));
                }
            }
        }
        for (def, block) in &view.blocks {
            if def.settings {
                let inner = check_body(&block.body, def.schema, def.name, &mut self.diags);
                self.layer_into(&inner, scope, out);
            }
        }
    }

    /// `for_each` instances: `None` for a block without `for_each`, else (key, value) pairs
    /// and whether the collection is sensitive.
    fn for_each(&mut self, view: &BodyView, scope: &Scope) -> Result<Option<Instances>, Reported> {
        let Some(attr) = view.attr("for_each") else {
            return Ok(None);
        };
        let (v, sensitive) = self.ev.eval_marked(&attr.value, scope);
        let v = v?;
        let span = attr.value.span;
        let mut out: Vec<(String, Value)> = vec![];
        match v {
            Value::List(items) => {
                for item in items {
                    let Some(key) = (match &item {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    }) else {
                        self.err(
                            type_error(span, "for_each over a list needs strings", Shown::new(&item, sensitive))
                                .help("use a map for other values: { for v in list : v.name => v }"),
                        );
                        return Err(Reported);
                    };
                    if out.iter().any(|(k, _)| *k == key) {
                        let shown = Shown::new(&item, sensitive);
                        self.err(
                            Diagnostic::new("kcl::for_each", span, format!("for_each has {shown} twice"))
                                .label("keys must be unique"),
                        );
                        return Err(Reported);
                    }
                    out.push((key, item));
                }
            }
            Value::Object(m) => out.extend(m),
            Value::Unknown => {
                self.err(
                    Diagnostic::new("kcl::for_each", span, "for_each must be known before apply")
                        .label("depends on values known only after apply"),
                );
                return Err(Reported);
            }
            other => {
                self.err(type_error(span, "for_each needs a list of strings or a map", Shown::new(&other, sensitive)));
                return Err(Reported);
            }
        }
        Ok(Some((out, sensitive)))
    }

    /// Evaluates a cluster block into its clusters (one, or one per `for_each` key) and
    /// the value `cluster.NAME` refers to — `null` unless `value_read`: a configuration that
    /// never reads `cluster.NAME` does not build it (for a fleet, it is most of the work).
    fn cluster(&mut self, block: &Block, outer: &Scope, value_read: bool) -> Option<(Vec<ClusterWithProvider>, Value)> {
        let name = block.labels[0].value.to_string();
        let view = check_body(&block.body, &schema::CLUSTER, "cluster", &mut self.diags);
        let instances = self.for_each(&view, outer).ok()?;
        let before = self.error_count();
        self.check_name("cluster", &block.labels[0]);
        let for_each_span = view.attr("for_each").map(|a| a.value.span);
        let mut made = vec![];
        let mut values = BTreeMap::new();
        let keyed = instances.is_some();
        let each_sensitive = instances.as_ref().is_some_and(|(_, s)| *s);
        // Whether `cluster.NAME` shows anything derived from a sensitive value (its keys, if
        // the for_each is): then reading it marks what reads it.
        let mut sensitive = each_sensitive;
        let instances = instances.into_iter().flat_map(|(v, _)| v).map(|(k, v)| (Some(k), Some(v)));
        for (key, each) in instances.chain((!keyed).then_some((None, None))) {
            let scope = Scope {
                vars: outer.vars,
                locals: outer.locals,
                clusters: outer.clusters,
                each: each.map(|v| (Value::String(key.clone().unwrap_or_default()), v)),
                each_sensitive,
                restriction: None,
            };
            let address = match &key {
                Some(k) => format!("cluster.{name}[{k:?}]"),
                None => format!("cluster.{name}"),
            };
            if let (Some(k), Some(span)) = (&key, for_each_span) {
                self.check_key(k, span, each_sensitive);
                self.keyed.insert(address.clone(), (span, each_sensitive));
            }
            if let Some((c, provider, value, shows_sensitive)) =
                self.cluster_instance(block, &view, &scope, &name, key.clone(), address, value_read)
            {
                values.insert(key.unwrap_or_default(), value);
                made.push((c, provider));
                sensitive |= shows_sensitive;
            }
        }
        if self.error_count() > before {
            return None;
        }
        if sensitive {
            self.ev.sensitive_clusters.borrow_mut().insert(name.clone());
        }
        let value = if keyed { Value::Object(values) } else { values.into_values().next().unwrap_or(Value::Null) };
        Some((made, value))
    }

    fn error_count(&self) -> usize {
        self.diags.len() + self.ev.diags.borrow().len()
    }

    /// A cluster or node group name must leave something in cloud group names
    /// (`LINEAGE-CLUSTER-NODEGROUP-GENERATION`, which keep only ASCII letters, digits, `-` and
    /// `_`): `kcl::invalid_name` otherwise.
    fn check_name(&mut self, what: &str, label: &drydock_syntax::ast::Label) {
        let name = &label.value;
        if drydock_model::shows_in_cloud_names(name) {
            return;
        }
        let (message, text) = if name.is_empty() {
            (format!("a {what} name cannot be empty"), "empty name")
        } else {
            (
                format!("{what} name {name:?} has no ASCII letter, digit or `_`"),
                "nothing of it would be left in cloud group names",
            )
        };
        self.err(Diagnostic::new("kcl::invalid_name", label.span, message).label(text).help(format!(
            "cloud group names are LINEAGE-CLUSTER-NODEGROUP-GENERATION and keep only ASCII letters, digits, `-` and `_` \
             (the rest becomes `-`): give the {what} a name with some of those"
        )));
    }

    /// A `for_each` key names its instance in cloud group names as a name does: it must leave
    /// something in them (`kcl::invalid_name`).
    fn check_key(&mut self, key: &str, span: Span, sensitive: bool) {
        if drydock_model::shows_in_cloud_names(key) {
            return;
        }
        let message = if sensitive {
            format!("the for_each key {SENSITIVE} has no ASCII letter, digit or `_`")
        } else if key.is_empty() {
            "a for_each key cannot be empty".to_string()
        } else {
            format!("the for_each key {key:?} has no ASCII letter, digit or `_`")
        };
        self.err(
            Diagnostic::new("kcl::invalid_name", span, message)
                .label("nothing of this key would be left in cloud group names")
                .help(
                    "cloud group names are LINEAGE-CLUSTER-NODEGROUP-GENERATION and keep only ASCII letters, digits, \
                     `-` and `_` (the rest becomes `-`): use keys with some of those",
                ),
        );
    }

    /// Every label key and value must be one Kubernetes takes (`kcl::invalid_label`), or the
    /// nodes could not join with them.
    fn check_labels(&mut self, f: &Field) {
        const KEY_HELP: &str = "a label key is a name of at most 63 ASCII letters, digits, `-`, `_` and `.`, \
            starting and ending with a letter or digit, optionally after a lowercase DNS subdomain and `/`, as in \
            node.kubernetes.io/pool";
        const VALUE_HELP: &str = "a label value is empty, or at most 63 ASCII letters, digits, `-`, `_` and `.`, \
            starting and ending with a letter or digit";
        let Value::Object(labels) = &f.value else {
            return;
        };
        for (key, value) in labels {
            let value = text_of(value);
            let (message, help) = if let Some(why) = drydock_model::label_key_problem(key) {
                let message = if f.sensitive {
                    format!("a key of these sensitive labels is not a valid Kubernetes label key: {why}")
                } else {
                    format!("label key {} is not a valid Kubernetes label key: {why}", shown_text(key))
                };
                (message, KEY_HELP)
            } else if let Some(why) = drydock_model::label_value_problem(&value) {
                let message = if f.sensitive {
                    format!("a value of these sensitive labels is not a valid Kubernetes label value: {why}")
                } else {
                    let (key, value) = (shown_text(key), shown_text(&value));
                    format!("label {key} has the value {value}, not a valid Kubernetes label value: {why}")
                };
                (message, VALUE_HELP)
            } else {
                continue;
            };
            self.err(Diagnostic::new("kcl::invalid_label", f.span, message).label("in these labels").help(help));
        }
    }

    /// Every tag must be one the cloud takes and not one drydock sets itself
    /// (`kcl::invalid_value`): a key of 1 to 128 characters, a value of at most 256, and no key
    /// under `aws:` (reserved by AWS) or `drydock:` (the ownership tags drydock writes on every
    /// group, which a tag of the configuration would contradict). `kubernetes.io/cluster/NAME`
    /// may be set (to `shared`, say) over drydock's `owned`.
    fn check_tags(&mut self, f: &Field) {
        let Value::Object(tags) = &f.value else {
            return;
        };
        for (key, value) in tags {
            let value = text_of(value);
            let reserved = ["aws:", "drydock:"].into_iter().find(|p| key.starts_with(p));
            let why = if key.is_empty() {
                "a tag key cannot be empty".to_string()
            } else if let Some(prefix) = reserved {
                let whose = if prefix == "aws:" { "AWS" } else { "drydock's ownership tags" };
                format!("a tag key cannot begin with `{prefix}`: it is reserved for {whose}")
            } else if key.chars().count() > 128 {
                "a tag key is at most 128 characters".to_string()
            } else if value.chars().count() > 256 {
                "a tag value is at most 256 characters".to_string()
            } else {
                continue;
            };
            let message = if f.sensitive {
                format!("a tag of these sensitive tags cannot be used: {why}")
            } else {
                format!("tag {} cannot be used: {why}", shown_text(key))
            };
            self.err(Diagnostic::new("kcl::invalid_value", f.span, message).label("in these tags"));
        }
    }

    /// Two node groups whose cloud group names would coincide (`kcl::name_collision`): their
    /// [`NodeGroup::cloud_name_part`]s are equal, so the same generation would be given the same
    /// group name twice. Names are global in a cloud account, so this holds across providers.
    /// One error per pair of node groups, or per pair of clusters whose own names coincide.
    fn name_collisions(&mut self, clusters: &[Cluster]) {
        // Every node group by its part; a stable sort keeps each run of equal parts in order.
        let mut parts: Vec<(String, &Cluster, &NodeGroup)> =
            Vec::with_capacity(clusters.iter().map(|c| c.node_groups.len()).sum());
        for c in clusters {
            parts.extend(c.node_groups.iter().map(|ng| (ng.cloud_name_part(c), c, ng)));
        }
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
        for run in parts.chunk_by(|a, b| a.0 == b.0) {
            if run.len() < 2 {
                continue;
            }
            let part = &run[0].0;
            let mut group: Vec<(&Cluster, &NodeGroup)> = run.iter().map(|(_, c, ng)| (*c, *ng)).collect();
            group.sort_by_key(|(c, ng)| {
                (self.site(&ng.address, ng.span), self.site(&c.address, c.span), ng.address.clone())
            });
            let (ca, a) = group[0];
            for &(cb, b) in &group[1..] {
                let cluster_part = |c: &Cluster| drydock_model::cloud_name_part(c.owner_name(), "");
                // Clusters whose own names coincide collide in every node group they share.
                let clusters_collide = ca.address != cb.address && cluster_part(ca) == cluster_part(cb);
                let pair = if clusters_collide { (&ca.address, &cb.address) } else { (&a.address, &b.address) };
                let pair = (pair.0.min(pair.1).clone(), pair.0.max(pair.1).clone());
                if !reported.insert(pair) {
                    continue;
                }
                let (primary, secondary) = if clusters_collide {
                    (self.site(&cb.address, cb.span), self.site(&ca.address, ca.span))
                } else {
                    (self.site(&b.address, b.span), self.site(&a.address, a.span))
                };
                // Two instances of one for_each: the second place is the node group itself.
                let secondary = if secondary == primary { a.span } else { secondary };
                let (ca_shown, a_shown, a_sensitive) = self.shown_addresses(ca, a);
                let (cb_shown, b_shown, b_sensitive) = self.shown_addresses(cb, b);
                let name = redact(a_sensitive || b_sensitive, format_args!("`…-{part}-…`"));
                let message = if clusters_collide {
                    format!("{cb_shown} and {ca_shown} would give their node groups the same cloud group names")
                } else {
                    format!("{b_shown} and {a_shown} would get the same cloud group names")
                };
                self.err(
                    Diagnostic::new("kcl::name_collision", primary, message)
                        .label(format!("{b_shown} would be named {name}"))
                        .with_secondary(secondary, format!("and so would {a_shown}"))
                        .help(COLLISION_HELP),
                );
            }
        }
    }

    /// Where the name of a cluster or node group instance comes from: its `for_each`, or its
    /// block's header.
    fn site(&self, address: &str, header: Span) -> Span {
        self.keyed.get(address).map_or(header, |(span, _)| *span)
    }

    /// A `for_each` instance's key for a message (`["eu"]`, redacted when sensitive), and
    /// whether it is sensitive; nothing for a block without `for_each`.
    fn shown_key(&self, address: &str, key: &Option<String>) -> (String, bool) {
        match key {
            Some(k) => {
                let sensitive = self.keyed.get(address).is_some_and(|(_, s)| *s);
                (format!("[{}]", redact(sensitive, format_args!("{k:?}"))), sensitive)
            }
            None => (String::new(), false),
        }
    }

    /// A cluster's and a node group's addresses for a message, their `for_each` keys redacted
    /// when sensitive, and whether any was.
    fn shown_addresses(&self, c: &Cluster, ng: &NodeGroup) -> (String, String, bool) {
        let (ck, cs) = self.shown_key(&c.address, &c.key);
        let (gk, gs) = self.shown_key(&ng.address, &ng.key);
        let cluster = format!("cluster.{}{ck}", c.name);
        let ng = format!("{cluster}.node_group.{}{gk}", ng.name);
        (cluster, ng, cs || gs)
    }

    /// One cluster instance, the value `cluster.NAME` (or `cluster.NAME[KEY]`) refers to (`null`
    /// unless `value_read`), and whether that value shows anything derived from a sensitive value.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn cluster_instance(
        &mut self,
        block: &Block,
        view: &BodyView,
        scope: &Scope,
        name: &str,
        key: Option<String>,
        address: String,
        value_read: bool,
    ) -> Option<(Cluster, Option<(String, Span)>, Value, bool)> {
        let layer = self.layer(view, scope);
        let cluster_layer = &layer;
        // The paths of the cluster's sensitive attributes, its `network` and `defaults` blocks'
        // among them (`defaults.image`).
        let mut sensitive: BTreeSet<String> = layer.sensitive_paths("").collect();
        let mut shows_sensitive = layer.any_sensitive(&["kubernetes_version", "tags"]);
        let provider = view.attr("provider").and_then(|a| self.provider_ref(&a.value, scope));
        let kubernetes_version = match layer.get("kubernetes_version") {
            Some(f) => str_of(&f.value),
            None => {
                self.err(missing(block.header(), "cluster", "kubernetes_version", " = \"1.31\""));
                String::new()
            }
        };
        let tags = str_map(layer.get("tags"));
        if let Some(f) = layer.get("tags") {
            self.check_tags(f);
        }
        let disruption_budget = int_or_pct(layer.get("disruption_budget")).unwrap_or(IntOrPercent::Percent(10.0));
        let subnets = match view.block("network") {
            None if block.blocks().any(|b| b.kind.name == "network") => vec![], // already reported
            None => {
                self.err(
                    Diagnostic::new(
                        "kcl::missing_block",
                        block.header(),
                        format!("cluster `{name}` has no network block"),
                    )
                    .label("network missing")
                    .help("add network { subnets = [\"subnet-a\", \"subnet-b\"] }"),
                );
                vec![]
            }
            Some(net) => {
                let nv = check_body(&net.body, &schema::NETWORK, "network", &mut self.diags);
                let nl = self.layer(&nv, scope);
                sensitive.extend(nl.sensitive_paths("network."));
                shows_sensitive |= nl.any_sensitive(&["subnets"]);
                match nl.get("subnets") {
                    Some(f) if matches!(&f.value, Value::List(l) if !l.is_empty()) => str_list(Some(f)),
                    Some(f) => {
                        self.err(
                            Diagnostic::new("kcl::invalid_value", f.span, "a cluster needs at least one subnet")
                                .label("empty list"),
                        );
                        vec![]
                    }
                    None => {
                        self.err(missing(net.kind.span, "network", "subnets", " = [\"subnet-a\"]"));
                        vec![]
                    }
                }
            }
        };
        let kubernetes = view.block("kubernetes").map(|k| {
            let kv = check_body(&k.body, &schema::KUBERNETES, "kubernetes", &mut self.diags);
            let kl = self.layer(&kv, scope);
            let etcd = kv.block("etcd").map(|e| {
                let ev = check_body(&e.body, &schema::ETCD, "etcd", &mut self.diags);
                let el = self.layer(&ev, scope);
                let file = |k: &str| el.get(k).map(|f| str_of(&f.value));
                let access = EtcdAccess {
                    endpoints: str_list(el.get("endpoints")),
                    ca_file: file("ca_file"),
                    cert_file: file("cert_file"),
                    key_file: file("key_file"),
                };
                if access.cert_file.is_some() != access.key_file.is_some() {
                    let span = el.get("cert_file").or(el.get("key_file")).map_or(e.kind.span, |f| f.span);
                    self.err(
                        Diagnostic::new(
                            "kcl::conflicting_attributes",
                            span,
                            "a client certificate needs both cert_file and key_file",
                        )
                        .label("only one of them is set")
                        .help("kubeadm's are /etc/kubernetes/pki/etcd/healthcheck-client.crt and .key"),
                    );
                }
                access
            });
            KubernetesAccess {
                kubeconfig: kl.get("kubeconfig").map(|f| str_of(&f.value)),
                context: kl.get("context").map(|f| str_of(&f.value)),
                etcd,
            }
        });
        let defaults = match view.block("defaults") {
            Some(d) => {
                let dv = check_body(&d.body, &schema::DEFAULTS, "defaults", &mut self.diags);
                self.layer(&dv, scope)
            }
            None => Layer::new(),
        };
        sensitive.extend(defaults.sensitive_paths("defaults."));
        let mut node_groups = vec![];
        let mut ng_values: BTreeMap<String, Value> = BTreeMap::new();
        let mut control_plane: Option<Span> = None;
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for ng_block in view.blocks_named("node_group") {
            let ng_name = ng_block.labels[0].value.as_str();
            if let Some(prev) = seen.insert(ng_name, ng_block.header()) {
                self.err(
                    Diagnostic::new(
                        "kcl::duplicate_block",
                        ng_block.header(),
                        format!("node_group `{ng_name}` is defined twice"),
                    )
                    .label("defined again here")
                    .with_secondary(prev, "first defined here"),
                );
                continue;
            }
            // A bad name is reported and the node group still evaluated, for its other errors.
            self.check_name("node group", &ng_block.labels[0]);
            let ng_view = check_body(&ng_block.body, &schema::NODE_GROUP, "node_group", &mut self.diags);
            let Ok(instances) = self.for_each(&ng_view, scope) else {
                continue;
            };
            let ng_for_each_span = ng_view.attr("for_each").map(|a| a.value.span);
            let keyed = instances.is_some();
            let ng_each_sensitive = instances.as_ref().is_some_and(|(_, s)| *s);
            shows_sensitive |= ng_each_sensitive;
            let mut keyed_values = BTreeMap::new();
            let instances = instances.into_iter().flat_map(|(v, _)| v).map(|(k, v)| (Some(k), Some(v)));
            for (ng_key, each) in instances.chain((!keyed).then_some((None, None))) {
                let ng_scope = Scope {
                    vars: scope.vars,
                    locals: scope.locals,
                    clusters: scope.clusters,
                    each_sensitive: if each.is_some() { ng_each_sensitive } else { scope.each_sensitive },
                    each: match each {
                        Some(v) => Some((Value::String(ng_key.clone().unwrap_or_default()), v)),
                        None => scope.each.clone(),
                    },
                    restriction: None,
                };
                let own = self.layer(&ng_view, &ng_scope);
                // The node group's settings: its own over the defaults. instance_type and
                // instance_types are one setting written two ways: setting either in the node
                // group replaces whichever the defaults had.
                let own_types = own.contains_key("instance_type") || own.contains_key("instance_types");
                let mut layer = Merged::with_capacity(defaults.len() + own.len());
                // The cluster's own `bootstrap` block, under the defaults' and the node group's.
                for (k, f) in cluster_layer.iter().filter(|(k, _)| k.starts_with("bootstrap.")) {
                    layer.insert(k, f);
                }
                for (k, f) in defaults.iter() {
                    if !(own_types && matches!(k, "instance_type" | "instance_types")) {
                        layer.insert(k, f);
                    }
                }
                for (k, f) in own.iter() {
                    layer.insert(k, f);
                }
                // What node_group_value shows of the layer.
                shows_sensitive |= layer.any_sensitive(&[
                    "role",
                    "image",
                    "instance_type",
                    "instance_types",
                    "labels",
                    "tags",
                    "subnets",
                    "size",
                    "desired",
                ]);
                let ng_address = match &ng_key {
                    Some(k) => format!("{address}.node_group.{ng_name}[{k:?}]"),
                    None => [address.as_str(), ".node_group.", ng_name].concat(),
                };
                if let (Some(k), Some(span)) = (&ng_key, ng_for_each_span) {
                    self.check_key(k, span, ng_each_sensitive);
                    self.keyed.insert(ng_address.clone(), (span, ng_each_sensitive));
                }
                let Some(ng) = self.node_group(
                    ng_block,
                    ng_name,
                    ng_key.clone(),
                    ng_address,
                    &layer,
                    &kubernetes_version,
                    &subnets,
                    name,
                ) else {
                    continue;
                };
                if ng.role == Role::ControlPlane {
                    if let Some(prev) = control_plane {
                        self.err(
                            Diagnostic::new("kcl::control_plane", ng_block.header(), "a cluster has one control plane")
                                .label("second control-plane group")
                                .with_secondary(prev, "the control plane is defined here"),
                        );
                    }
                    control_plane = Some(ng_block.header());
                }
                if value_read {
                    let mut value = node_group_value(&ng);
                    if let (Value::Object(o), Some(known)) = (&mut value, self.computed.get(&ng.address)) {
                        o.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    if keyed {
                        keyed_values.insert(ng_key.unwrap_or_default(), value);
                    } else {
                        ng_values.insert(ng_name.to_string(), value);
                    }
                }
                node_groups.push(ng);
            }
            if keyed && value_read {
                ng_values.insert(ng_name.to_string(), Value::Object(keyed_values));
            }
        }
        node_groups.sort_by(|a, b| a.address.cmp(&b.address));
        let cluster = Cluster {
            name: name.to_string(),
            key,
            address,
            provider: String::new(),
            kubernetes_version,
            tags,
            subnets,
            disruption_budget,
            kubernetes,
            node_groups,
            sensitive,
            span: block.header(),
        };
        if !value_read {
            return Some((cluster, provider, Value::Null, shows_sensitive));
        }
        let mut obj = BTreeMap::new();
        obj.insert("name".to_string(), Value::String(cluster.name.clone()));
        obj.insert("kubernetes_version".to_string(), Value::String(cluster.kubernetes_version.clone()));
        obj.insert("tags".to_string(), string_map_value(&cluster.tags));
        obj.insert("subnets".to_string(), string_list_value(&cluster.subnets));
        obj.insert("node_group".to_string(), Value::Object(ng_values));
        Some((cluster, provider, Value::Object(obj), shows_sensitive))
    }

    /// `provider = aws.west` (or the string "aws.west").
    fn provider_ref(&mut self, e: &Expr, scope: &Scope) -> Option<(String, Span)> {
        fn path(e: &Expr) -> Option<String> {
            match &e.kind {
                ExprKind::Variable(i) => Some(i.name.to_string()),
                ExprKind::GetAttr(b, n) => Some(format!("{}.{}", path(b)?, n.name)),
                _ => None,
            }
        }
        let evaluated = matches!(path(e).as_deref().and_then(|p| p.split('.').next()), Some("var" | "local" | "each"));
        if let Some(p) = path(e).filter(|_| !evaluated) {
            return Some((p, e.span));
        }
        let (v, sensitive) = self.ev.eval_marked(e, scope);
        match v.ok()? {
            Value::String(s) => Some((s, e.span)),
            other => {
                self.err(type_error(
                    e.span,
                    "provider is a provider reference like sim or aws.west",
                    Shown::new(&other, sensitive),
                ));
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node_group(
        &mut self,
        block: &Block,
        name: &str,
        key: Option<String>,
        address: String,
        layer: &Merged,
        kubernetes_version: &str,
        cluster_subnets: &[String],
        cluster_name: &str,
    ) -> Option<NodeGroup> {
        let header = block.header();
        let before = self.error_count();
        let what = || format!("node group `{name}`");
        let get = |k: &str| layer.get(k);
        let role = match get("role").map(|f| str_of(&f.value)) {
            Some(r) if r == "control-plane" => Role::ControlPlane,
            _ => Role::Worker,
        };
        let image = match get("image") {
            Some(f) => {
                let image = str_of(&f.value);
                // (A value that failed to evaluate was reported already.)
                if matches!(&f.value, Value::String(s) if s.trim().is_empty()) {
                    self.err(
                        Diagnostic::new("kcl::invalid_value", f.span, "image is empty")
                            .label("no image")
                            .help("name the machine image the nodes boot, as in image = \"img-…\""),
                    );
                }
                image
            }
            None => {
                self.err(
                    missing(header, &what(), "image", " = \"img-…\"")
                        .help_more("or set it in the cluster's defaults block"),
                );
                String::new()
            }
        };
        let instance_types = match (get("instance_type"), get("instance_types")) {
            (Some(a), Some(b)) => {
                self.err(
                    Diagnostic::new(
                        "kcl::conflicting_attributes",
                        b.span,
                        "set instance_type or instance_types, not both",
                    )
                    .label("instance_types set here")
                    .with_secondary(a.span, "instance_type set here")
                    .help("instance_types (several types) is for spot pools and mixed groups"),
                );
                vec![]
            }
            (Some(a), None) => {
                let t = str_of(&a.value);
                if matches!(&a.value, Value::String(s) if s.trim().is_empty()) {
                    self.err(Diagnostic::new("kcl::invalid_value", a.span, "instance_type is empty").label("no type"));
                }
                vec![t]
            }
            (None, Some(b)) => {
                let l = str_list(Some(b));
                if l.is_empty() {
                    self.err(
                        Diagnostic::new("kcl::invalid_value", b.span, "instance_types is empty").label("no types"),
                    );
                } else if l.iter().any(|t| t.trim().is_empty()) {
                    self.err(
                        Diagnostic::new("kcl::invalid_value", b.span, "instance_types holds an empty type")
                            .label("an empty string"),
                    );
                }
                l
            }
            (None, None) => {
                self.err(
                    missing(header, &what(), "instance_type", " = \"m6i.large\"")
                        .help_more("or set it in the cluster's defaults block"),
                );
                vec![]
            }
        };
        let size_sensitive = get("size").is_some_and(|f| f.sensitive);
        let (min, max, size_span, size_is_range) = match get("size") {
            Some(Field { value: Value::Range(lo, hi), span, .. }) => (*lo as u32, *hi as u32, Some(*span), true),
            Some(Field { value: v, span, .. }) => {
                let n = v.as_int().unwrap_or(0) as u32;
                (n, n, Some(*span), false)
            }
            None => {
                self.err(
                    missing(header, &what(), "size", " = 3")
                        .help_more("a number, or a range like 2..10 for the autoscaler"),
                );
                (0, 0, None, false)
            }
        };
        let desired = count(get("desired"));
        if let (Some(d), Some(f)) = (desired, get("desired")) {
            if d < min || d > max {
                let (d, size) = (redact(f.sensitive, d), redact(size_sensitive, format_args!("{min}..{max}")));
                let mut diag =
                    Diagnostic::new("kcl::invalid_value", f.span, format!("desired {d} is outside size {size}"))
                        .label("out of range");
                if let Some(s) = size_span {
                    diag = diag.with_secondary(s, "size set here");
                }
                self.err(diag);
            }
        }
        let capacity_type = match get("capacity_type").map(|f| str_of(&f.value)) {
            Some(c) if c == "spot" => CapacityType::Spot,
            _ => CapacityType::OnDemand,
        };
        if role == Role::ControlPlane {
            let role_span = get("role").map(|f| f.span);
            let with_role = |d: Diagnostic| match role_span {
                Some(s) => d.with_secondary(s, "control plane set here"),
                None => d,
            };
            if let Some(s) = size_span {
                if size_is_range || min % 2 == 0 {
                    let found = match (size_sensitive, size_is_range) {
                        (true, true) => "a sensitive range".to_string(),
                        (true, false) => "a sensitive number".to_string(),
                        (false, true) => format!("the range {min}..{max}"),
                        (false, false) => format!("{min}"),
                    };
                    self.err(with_role(
                        Diagnostic::new("kcl::control_plane_size", s, format!("a control plane needs an odd, fixed size, not {found}"))
                            .label("not an odd number")
                            .help("use 1, 3 or 5 members: an odd count keeps etcd's quorum through one failure per two members"),
                    ));
                }
            }
            if let Some(f) = get("desired") {
                self.err(with_role(
                    Diagnostic::new(
                        "kcl::control_plane_size",
                        f.span,
                        "a control plane's size is fixed: desired is not allowed",
                    )
                    .label("remove this"),
                ));
            }
            if capacity_type == CapacityType::Spot {
                let span = get("capacity_type").map_or(header, |f| f.span);
                self.err(with_role(
                    Diagnostic::new("kcl::invalid_value", span, "control-plane members cannot be spot instances")
                        .label("spot interruptions would break quorum")
                        .help("remove capacity_type, or set it to \"on-demand\""),
                ));
            }
        }
        let taints = str_list(get("taints"));
        if let Some(f) = get("taints") {
            for t in &taints {
                if let Err(why) = check_taint(t) {
                    let t = quoted(t, f.sensitive);
                    self.err(
                        Diagnostic::new("kcl::invalid_value", f.span, format!("invalid taint {t}: {why}"))
                            .label("in this list")
                            .help("write taints as \"key=value:NoSchedule\" (or PreferNoSchedule, NoExecute)"),
                    );
                }
            }
        }
        if let Some(f) = get("labels") {
            self.check_labels(f);
        }
        if let Some(f) = get("tags") {
            self.check_tags(f);
        }
        let pct_check = |cx: &mut Self, k: &str| {
            if let Some(Field { value: Value::Percent(p), span, .. }) = get(k) {
                if *p > 100.0 {
                    cx.err(
                        Diagnostic::new("kcl::invalid_value", *span, format!("{k} is over 100%")).label("too large"),
                    );
                }
            }
        };
        for k in ["rollout.max_surge", "rollout.max_unavailable", "health.max_unhealthy"] {
            pct_check(self, k);
        }
        let max_surge = int_or_pct(get("rollout.max_surge")).unwrap_or(IntOrPercent::Int(1));
        let max_unavailable = int_or_pct(get("rollout.max_unavailable")).unwrap_or(IntOrPercent::Int(0));
        let is_zero =
            |v: IntOrPercent| matches!(v, IntOrPercent::Int(0)) || matches!(v, IntOrPercent::Percent(p) if p == 0.0);
        if is_zero(max_surge) && is_zero(max_unavailable) {
            let span = get("rollout.max_surge").or(get("rollout.max_unavailable")).map_or(header, |f| f.span);
            let mut d = Diagnostic::new("kcl::invalid_value", span, "max_surge and max_unavailable cannot both be 0")
                .label("a rollout could never make progress")
                .help("set max_surge = 1 to add a node before removing one");
            if let (Some(_), Some(u)) = (get("rollout.max_surge"), get("rollout.max_unavailable")) {
                d = d.with_secondary(u.span, "max_unavailable set here");
            }
            self.err(d);
        }
        let subnets = match get("subnets") {
            Some(f) => {
                let l = str_list(Some(f));
                if l.is_empty() {
                    self.err(
                        Diagnostic::new("kcl::invalid_value", f.span, "a node group needs at least one subnet")
                            .label("empty list"),
                    );
                }
                l
            }
            None => cluster_subnets.to_vec(),
        };
        let has_root = layer.iter().any(|(k, _)| k.starts_with("root_volume."));
        let root_volume = has_root.then(|| RootVolume {
            size_gib: count(get("root_volume.size")).unwrap_or(20),
            volume_type: get("root_volume.type").map_or("gp3".to_string(), |f| str_of(&f.value)),
            encrypted: !matches!(get("root_volume.encrypted").map(|f| &f.value), Some(Value::Bool(false))),
            iops: count(get("root_volume.iops")),
        });
        let metadata = Metadata {
            http_tokens_required: get("metadata.http_tokens").is_none_or(|f| str_of(&f.value) == "required"),
            hop_limit: count(get("metadata.hop_limit")).unwrap_or(2),
        };
        let dur = |k: &str, d: u64| match get(k).map(|f| &f.value) {
            Some(Value::Duration(ms)) => *ms,
            _ => d,
        };
        let health = Health {
            check: match get("health.check").map(|f| str_of(&f.value)) {
                Some(c) if c == "elb" => HealthCheck::Elb,
                _ => HealthCheck::Ec2,
            },
            grace_period_ms: dur("health.grace_period", 90_000),
            max_unhealthy: int_or_pct(get("health.max_unhealthy")).unwrap_or(IntOrPercent::Percent(40.0)),
            unhealthy_timeout_ms: dur("health.unhealthy_timeout", 300_000),
            startup_timeout_ms: dur("health.startup_timeout", 600_000),
            node_startup_timeout_ms: dur("health.node_startup_timeout", drydock_model::DEFAULT_NODE_STARTUP_TIMEOUT_MS),
        };
        let rollout = Rollout {
            max_surge,
            max_unavailable,
            health_timeout_ms: dur("rollout.health_timeout", 600_000),
            min_ready_ms: dur("rollout.min_ready", 0),
        };
        let drain = Drain {
            timeout_ms: dur("drain.timeout", drydock_model::DEFAULT_DRAIN_TIMEOUT_MS),
            on_timeout: match get("drain.on_timeout").map(|f| str_of(&f.value)) {
                Some(v) if v == "force" => OnTimeout::Force,
                _ => OnTimeout::Fail,
            },
            grace_period_s: match get("drain.grace_period").map(|f| &f.value) {
                Some(Value::Duration(ms)) => Some(ms / 1000),
                _ => None,
            },
        };
        let (bootstrap, join) = self.bootstrap(layer, header, &what(), role, cluster_name);
        if self.error_count() > before {
            return None;
        }
        Some(NodeGroup {
            join,
            name: name.to_string(),
            key,
            address,
            role,
            spec: NodeSpec {
                image,
                instance_types,
                user_data: get("user_data").map(|f| str_of(&f.value)),
                labels: str_map(get("labels")),
                taints,
                root_volume,
                metadata,
                capacity_type,
                kubernetes_version: kubernetes_version.to_string(),
                security_groups: str_list(get("security_groups")),
                instance_profile: get("instance_profile").map(|f| str_of(&f.value)),
                key_name: get("key_name").map(|f| str_of(&f.value)),
                bootstrap,
            },
            settings: NodeSettings {
                min,
                max,
                desired,
                tags: str_map(get("tags")),
                subnets,
                health,
                rollout,
                drain,
                labels: str_map(get("labels")),
                sensitive_tags: Default::default(),
                sensitive_labels: Default::default(),
            },
            sensitive: layer.sensitive_paths("").collect(),
            span: header,
            attr_spans: {
                let mut spans = BTreeMap::new();
                for (k, f) in layer.iter() {
                    spans.insert(k, f.span);
                }
                spans
            },
        })
    }

    /// A node group's `bootstrap` (its own over the defaults' over the cluster's), and the
    /// join secrets of a kubeadm one. Errors never show a secret's value.
    fn bootstrap(
        &mut self,
        layer: &Merged,
        header: Span,
        what: &str,
        role: Role,
        cluster_name: &str,
    ) -> (Option<Bootstrap>, Option<JoinSecrets>) {
        let get = |k: &str| layer.get(k);
        let kind = get("bootstrap.kind").map(|f| str_of(&f.value));
        let kind_span = get("bootstrap.kind").map_or(header, |f| f.span);
        // Attributes that belong to another kind are mistakes, not silently ignored.
        let only_for: &[(&str, &str)] = &[
            ("bootstrap.endpoint", "kubeadm"),
            ("bootstrap.token", "kubeadm"),
            ("bootstrap.ca_cert_hashes", "kubeadm"),
            ("bootstrap.certificate_key", "kubeadm"),
            ("bootstrap.cluster_name", "eks"),
        ];
        let kind_name = kind.as_deref().unwrap_or("script");
        for (path, for_kind) in only_for {
            if let Some(f) = get(path).filter(|_| kind_name != *for_kind) {
                let attr = path.trim_start_matches("bootstrap.");
                self.err(
                    Diagnostic::new(
                        "kcl::bootstrap",
                        f.span,
                        format!("bootstrap.{attr} is for kind = \"{for_kind}\", and {what} bootstraps with kind = \"{kind_name}\""),
                    )
                    .label("not used by this kind")
                    .with_secondary(kind_span, "the kind is set here")
                    .help(format!("remove {attr}, or set kind = \"{for_kind}\"")),
                );
            }
        }
        match kind_name {
            "kubeadm" => {
                let endpoint = match get("bootstrap.endpoint") {
                    Some(f) => {
                        let e = str_of(&f.value);
                        let (host, port) = e.rsplit_once(':').unwrap_or((e.as_str(), ""));
                        if host.is_empty() || host.contains("://") || host.contains('/') || port.parse::<u16>().is_err()
                        {
                            let shown = redact(f.sensitive, format_args!("{e:?}"));
                            self.err(
                                Diagnostic::new(
                                    "kcl::bootstrap",
                                    f.span,
                                    format!("bootstrap.endpoint {shown} is not host:port"),
                                )
                                .label("expected host:port")
                                .help("the API server's address as kubeadm join takes it, like \"api.prod.internal:6443\""),
                            );
                        }
                        e
                    }
                    None => {
                        self.err(missing(
                            kind_span,
                            &format!("the kubeadm bootstrap of {what}"),
                            "endpoint",
                            " = \"api.example.internal:6443\"",
                        ));
                        String::new()
                    }
                };
                let token = match get("bootstrap.token") {
                    Some(f) => {
                        let t = str_of(&f.value);
                        let ok = t.len() == 23
                            && t.char_indices().all(|(i, c)| {
                                if i == 6 {
                                    c == '.'
                                } else {
                                    c.is_ascii_lowercase() || c.is_ascii_digit()
                                }
                            });
                        if !ok {
                            self.err(
                                Diagnostic::new(
                                    "kcl::bootstrap",
                                    f.span,
                                    "bootstrap.token is not a kubeadm bootstrap token",
                                )
                                .label("expected [a-z0-9]{6}.[a-z0-9]{16}")
                                .help("create one on a control-plane node with `kubeadm token create`, and pass it in a sensitive variable"),
                            );
                        }
                        t
                    }
                    None => {
                        self.err(missing(
                            kind_span,
                            &format!("the kubeadm bootstrap of {what}"),
                            "token",
                            " = var.join_token",
                        ));
                        String::new()
                    }
                };
                let ca_cert_hashes = match get("bootstrap.ca_cert_hashes") {
                    Some(f) => {
                        let l = str_list(Some(f));
                        let bad = l.is_empty()
                            || l.iter().any(|h| {
                                h.strip_prefix("sha256:")
                                    .is_none_or(|hex| hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()))
                            });
                        if bad {
                            self.err(
                                Diagnostic::new(
                                    "kcl::bootstrap",
                                    f.span,
                                    "bootstrap.ca_cert_hashes needs at least one hash of the form sha256:<64 hex digits>",
                                )
                                .label("not a CA public key hash")
                                .help("kubeadm init prints it as --discovery-token-ca-cert-hash"),
                            );
                        }
                        l
                    }
                    None => {
                        self.err(missing(
                            kind_span,
                            &format!("the kubeadm bootstrap of {what}"),
                            "ca_cert_hashes",
                            " = [var.ca_cert_hash]",
                        ));
                        vec![]
                    }
                };
                let certificate_key = match get("bootstrap.certificate_key") {
                    Some(f) => {
                        let k = str_of(&f.value);
                        if k.len() != 64 || !k.chars().all(|c| c.is_ascii_hexdigit()) {
                            self.err(
                                Diagnostic::new(
                                    "kcl::bootstrap",
                                    f.span,
                                    "bootstrap.certificate_key is not 64 hex digits",
                                )
                                .label("not a certificate key")
                                .help("`kubeadm init phase upload-certs --upload-certs` prints it"),
                            );
                        }
                        if role == Role::Worker {
                            self.err(
                                Diagnostic::new(
                                    "kcl::bootstrap",
                                    f.span,
                                    format!("bootstrap.certificate_key is for control-plane members, and {what} is a worker group"),
                                )
                                .label("workers do not join the control plane")
                                .help("set it in the control-plane node group only"),
                            );
                        }
                        Some(k)
                    }
                    None if role == Role::ControlPlane => {
                        self.err(missing(
                            kind_span,
                            &format!("the kubeadm bootstrap of {what} (a control plane)"),
                            "certificate_key",
                            " = var.certificate_key",
                        ));
                        None
                    }
                    None => None,
                };
                (Some(Bootstrap::Kubeadm { endpoint }), Some(JoinSecrets { token, ca_cert_hashes, certificate_key }))
            }
            "eks" => {
                if role == Role::ControlPlane {
                    self.err(
                        Diagnostic::new(
                            "kcl::bootstrap",
                            kind_span,
                            format!("{what} is a control plane, and EKS runs the control plane itself"),
                        )
                        .label("kind = \"eks\" is for worker node groups")
                        .help("remove the control-plane node group, or bootstrap it with kind = \"kubeadm\""),
                    );
                }
                let cluster_name =
                    get("bootstrap.cluster_name").map_or_else(|| cluster_name.to_string(), |f| str_of(&f.value));
                (Some(Bootstrap::Eks { cluster_name }), None)
            }
            _ => (None, None),
        }
    }

    /// The `moved` blocks: each `from` and `to` a node group address written as a reference
    /// (not evaluated), in one cluster; `to` configured, `from` not.
    fn moves(&mut self, blocks: &[&Block], clusters: &[Cluster]) -> Vec<Move> {
        fn path(e: &Expr) -> Option<String> {
            match &e.kind {
                ExprKind::Variable(i) => Some(i.name.to_string()),
                ExprKind::GetAttr(b, n) => Some(format!("{}.{}", path(b)?, n.name)),
                ExprKind::Index(b, k) => match &k.kind {
                    ExprKind::Template(parts) => {
                        let text: Option<String> = parts
                            .iter()
                            .map(|p| match p {
                                drydock_syntax::ast::TemplatePart::Lit(s) => Some(s.to_string()),
                                _ => None,
                            })
                            .collect();
                        Some(format!("{}[{:?}]", path(b)?, text?))
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        let configured: BTreeSet<&str> =
            clusters.iter().flat_map(|c| c.node_groups.iter().map(|n| n.address.as_str())).collect();
        let mut out: Vec<Move> = vec![];
        for block in blocks {
            let view = check_body(&block.body, &schema::MOVED, "moved", &mut self.diags);
            let mut get = |name: &str| -> Option<(String, Span)> {
                let Some(a) = view.attr(name) else {
                    self.err(missing(block.header(), "moved", name, " = cluster.NAME.node_group.NAME"));
                    return None;
                };
                let p = path(&a.value).filter(|p| {
                    p.split_once(".node_group.").is_some_and(|(c, g)| c.starts_with("cluster.") && !g.is_empty())
                });
                if p.is_none() {
                    self.err(
                        Diagnostic::new(
                            "kcl::moved",
                            a.value.span,
                            format!("moved.{name} is not a node group address"),
                        )
                        .label("expected cluster.NAME.node_group.NAME")
                        .help("write the address as a reference, unquoted: cluster.demo.node_group.web"),
                    );
                }
                p.map(|p| (p, a.value.span))
            };
            let (Some((from, from_span)), Some((to, to_span))) = (get("from"), get("to")) else { continue };
            let cluster_of = |a: &str| a.split_once(".node_group.").map(|(c, _)| c.to_string());
            let problem = if cluster_of(&from) != cluster_of(&to) {
                Some((to_span, "a node group moves only within its cluster".to_string()))
            } else if !configured.contains(to.as_str()) {
                Some((to_span, format!("{to} is not a node group of the configuration")))
            } else if configured.contains(from.as_str()) {
                Some((from_span, format!("{from} is still a node group of the configuration")))
            } else {
                out.iter()
                    .find(|m| m.from == from || m.to == to)
                    .map(|prev| (block.header(), format!("{} is moved twice (also {} → {})", from, prev.from, prev.to)))
            };
            if let Some((span, message)) = problem {
                self.err(
                    Diagnostic::new("kcl::moved", span, message).label("this move cannot be made").help(
                        "`from` is the old address (no longer configured), `to` the new one, in the same cluster",
                    ),
                );
                continue;
            }
            out.push(Move { from, to, span: block.header() });
        }
        out
    }

    fn output(&mut self, block: &Block, scope: &Scope) -> Option<Output> {
        let name = block.labels[0].value.to_string();
        let view = check_body(&block.body, &schema::OUTPUT, "output", &mut self.diags);
        let Some(attr) = view.attr("value") else {
            self.err(missing(block.header(), &format!("output `{name}`"), "value", " = …"));
            return None;
        };
        let (v, derived) = self.ev.eval_marked(&attr.value, scope);
        let v = v.ok()?;
        let explicit = self.bool_attr(&view, "sensitive", scope).unwrap_or(false);
        let description = view.attr("description").and_then(|a| match self.ev.eval_top(&a.value, scope) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        });
        Some(Output { name, description, value: v, sensitive: explicit || derived, span: block.header() })
    }

    /// Gives every cluster its provider: the one it names, or the only one there is.
    fn assign_providers(
        &mut self,
        clusters: Vec<(Cluster, Option<(String, Span)>)>,
        providers: &[ProviderConfig],
    ) -> Vec<Cluster> {
        let refs: Vec<String> = providers.iter().map(ProviderConfig::reference).collect();
        let mut out = vec![];
        for (mut c, named) in clusters {
            match named {
                Some((r, span)) => {
                    if !refs.contains(&r) {
                        self.err(
                            Diagnostic::new("kcl::undefined_reference", span, format!("no provider `{r}` is declared"))
                                .label("unknown provider")
                                .suggest(&r, refs.iter().map(String::as_str))
                                .help_if_none(format!(
                                    "declare it: provider \"{}\" {{ … }}",
                                    r.split('.').next().unwrap_or(&r)
                                )),
                        );
                    }
                    c.provider = r;
                }
                None => match refs.as_slice() {
                    [one] => c.provider = one.clone(),
                    [] => {
                        self.err(
                            Diagnostic::new("kcl::no_provider", c.span, format!("no provider for {}", c.address))
                                .label("this cluster needs a provider")
                                .help("declare one: provider \"sim\" {} runs on the simulated cloud"),
                        );
                    }
                    many => {
                        self.err(
                            Diagnostic::new(
                                "kcl::ambiguous_provider",
                                c.span,
                                format!("{} could use any of {} providers", c.address, many.len()),
                            )
                            .label("which provider?")
                            .help(format!("set provider to one of: {}", many.join(", "))),
                        );
                    }
                },
            }
            out.push(c);
        }
        out
    }
}

fn missing(header: Span, what: &str, attr: &str, example: &str) -> Diagnostic {
    Diagnostic::new("kcl::missing_attribute", header, format!("{what} has no `{attr}`"))
        .label(format!("`{attr}` is required"))
        .help(format!("add {attr}{example}"))
}

/// Checks a value against an attribute's kind, with an error at the value's span that shows
/// nothing of the value if it is `sensitive`.
fn check_ty(v: Value, ty: Ty, span: Span, sensitive: bool) -> Result<Value, Diagnostic> {
    let mismatch = |v: &Value| {
        Diagnostic::new("kcl::type_mismatch", span, format!("expected {}", ty.describe()))
            .label(format!("this is {}", Shown::new(v, sensitive).describe()))
    };
    if v.is_unknown() && ty != Ty::Any {
        return Err(Diagnostic::new("kcl::unknown_value", span, "this value is known only after apply")
            .label("must be known before apply")
            .help("attributes such as group_names and instance_ids can be used in outputs only"));
    }
    match (ty, v) {
        (Ty::Any, v) => Ok(v),
        (Ty::Str, v @ Value::String(_)) => Ok(v),
        (Ty::Str, v @ (Value::Number(_) | Value::Bool(_))) => Ok(Value::String(v.to_string())),
        (Ty::Num, v @ Value::Number(_)) => Ok(v),
        (Ty::Bool, v @ Value::Bool(_)) => Ok(v),
        (Ty::Dur, v @ Value::Duration(_)) => Ok(v),
        (Ty::Dur, v @ Value::Number(_)) if sensitive => Err(mismatch(&v).help("add a unit: s, m or h")),
        (Ty::Dur, v @ Value::Number(_)) => Err(mismatch(&v).help(format!("add a unit: {v}s, {v}m, {v}h"))),
        (Ty::Count, v @ Value::Number(_)) => match v.as_int() {
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(v),
            _ => Err(mismatch(&v)),
        },
        (Ty::CountOrPct, v @ Value::Percent(p)) if p >= 0.0 => Ok(v),
        (Ty::CountOrPct, v @ Value::Number(_)) => match v.as_int() {
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(v),
            _ => Err(mismatch(&v)),
        },
        (Ty::Size, v @ Value::Number(_)) => match v.as_int() {
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(v),
            _ => Err(mismatch(&v)),
        },
        (Ty::Size, Value::Range(lo, hi)) if lo >= 0 && hi <= i64::from(u32::MAX) => Ok(Value::Range(lo, hi)),
        // Strings stay as they are; numbers and bools become their text, in place.
        (Ty::StrList, Value::List(mut items)) => {
            for item in &mut items {
                if !to_string_in_place(item) {
                    return Err(Diagnostic::new("kcl::type_mismatch", span, format!("expected {}", ty.describe()))
                        .label(format!("an element is {}", Shown::new(item, sensitive).describe())));
                }
            }
            Ok(Value::List(items))
        }
        (Ty::StrMap, Value::Object(mut m)) => {
            for (k, item) in &mut m {
                if !to_string_in_place(item) {
                    let k = quoted(k, sensitive);
                    let item = Shown::new(item, sensitive);
                    return Err(Diagnostic::new("kcl::type_mismatch", span, format!("expected {}", ty.describe()))
                        .label(format!("the value of {k} is {}", item.describe())));
                }
            }
            Ok(Value::Object(m))
        }
        (Ty::OneOf(opts), Value::String(s)) => {
            if opts.contains(&s.as_str()) {
                Ok(Value::String(s))
            } else if sensitive {
                Err(Diagnostic::new("kcl::invalid_value", span, format!("{SENSITIVE} is not allowed here"))
                    .label(format!("expected {}", ty.describe())))
            } else {
                Err(Diagnostic::new("kcl::invalid_value", span, format!("{s:?} is not allowed here"))
                    .label(format!("expected {}", ty.describe()))
                    .suggest(&s, opts.iter().copied()))
            }
        }
        (_, v) => Err(mismatch(&v)),
    }
}

/// Makes a number or a bool the string of its text; `false` for what is not a string then.
fn to_string_in_place(v: &mut Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Number(_) | Value::Bool(_) => {
            *v = Value::String(v.to_string());
            true
        }
        _ => false,
    }
}

/// Whether an expression names anything (`foo`, `var.x`): such `--var` text is a string.
fn refers_to_names(e: &Expr) -> bool {
    let mut found = matches!(e.kind, ExprKind::Variable(_));
    visit::for_each_child(e, |c| found |= refers_to_names(c));
    found
}

fn str_of(v: &Value) -> String {
    v.to_template_string().unwrap_or_default()
}

/// [`str_of`], borrowed when the value is a string.
fn text_of(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        v => Cow::Owned(str_of(v)),
    }
}

fn str_list(f: Option<&Field>) -> Vec<String> {
    match f.map(|f| &f.value) {
        Some(Value::List(items)) => items.iter().map(str_of).collect(),
        _ => vec![],
    }
}

fn str_map(f: Option<&Field>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = f.map(|f| &f.value) {
        // Inserted in order, not collected: `collect` would sort a copy in a vector first.
        for (k, v) in m {
            out.insert(k.clone(), str_of(v));
        }
    }
    out
}

fn count(f: Option<&Field>) -> Option<u32> {
    f.and_then(|f| f.value.as_int()).map(|n| n as u32)
}

fn int_or_pct(f: Option<&Field>) -> Option<IntOrPercent> {
    match f.map(|f| &f.value) {
        Some(Value::Percent(p)) => Some(IntOrPercent::Percent(*p)),
        Some(v @ Value::Number(_)) => v.as_int().map(|n| IntOrPercent::Int(n as u32)),
        _ => None,
    }
}

/// Whether `t` is a taint Kubernetes takes: `key=value:Effect` or `key:Effect`, the key a label
/// key and the value a label value. The reason repeats no part of the taint, which the message
/// shows already (or, when sensitive, must not).
fn check_taint(t: &str) -> Result<(), String> {
    let (kv, effect) = t.rsplit_once(':').ok_or("no effect after `:`")?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err("the effect must be NoSchedule, PreferNoSchedule or NoExecute".into());
    }
    let (key, value) = kv.split_once('=').map_or((kv, None), |(k, v)| (k, Some(v)));
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if let Some(why) = drydock_model::label_key_problem(key) {
        return Err(format!("the key is not a valid Kubernetes key: {why}"));
    }
    if let Some(why) = value.and_then(drydock_model::label_value_problem) {
        return Err(format!("the value is not a valid Kubernetes value: {why}"));
    }
    Ok(())
}

const COLLISION_HELP: &str = "cloud group names are LINEAGE-CLUSTER-NODEGROUP-GENERATION, where every character \
    but an ASCII letter, digit, `-` or `_` becomes `-`: rename a cluster or node group, or change a for_each key, so \
    that the names differ";

/// A string for a message, not a sensitive one: quoted with escapes (`"a\nb"`), and cut short
/// when long.
fn shown_text(text: &str) -> String {
    let n = text.chars().count();
    if n > 70 {
        let head: String = text.chars().take(40).collect();
        format!("{head:?}… ({n} characters)")
    } else {
        format!("{text:?}")
    }
}

fn string_map_value(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn string_list_value(l: &[String]) -> Value {
    Value::List(l.iter().map(|s| Value::String(s.clone())).collect())
}

/// What `cluster.C.node_group.G` evaluates to: its settings, and placeholders for
/// what only exists after apply.
fn node_group_value(ng: &NodeGroup) -> Value {
    let mut o = BTreeMap::new();
    let s = |v: &str| Value::String(v.to_string());
    o.insert("name".into(), s(&ng.name));
    o.insert("address".into(), s(&ng.address));
    o.insert("role".into(), s(if ng.role == Role::ControlPlane { "control-plane" } else { "worker" }));
    o.insert("image".into(), s(&ng.spec.image));
    o.insert("instance_type".into(), s(ng.spec.instance_types.first().map_or("", String::as_str)));
    o.insert("instance_types".into(), string_list_value(&ng.spec.instance_types));
    o.insert("labels".into(), string_map_value(&ng.spec.labels));
    o.insert("tags".into(), string_map_value(&ng.settings.tags));
    o.insert("subnets".into(), string_list_value(&ng.settings.subnets));
    o.insert("min".into(), Value::Number(f64::from(ng.settings.min)));
    o.insert("max".into(), Value::Number(f64::from(ng.settings.max)));
    o.insert("desired".into(), ng.settings.desired.map_or(Value::Null, |d| Value::Number(f64::from(d))));
    o.insert("group_names".into(), Value::Unknown);
    o.insert("instance_ids".into(), Value::Unknown);
    Value::Object(o)
}

/// References to locals and clusters in an expression (variables are evaluated first,
/// so they are not graph vertices), and whether it reads the `cluster` namespace as a whole
/// (`cluster["x"]`, `keys(cluster)`: sets `whole_cluster`). Names bound by `for` are not
/// references.
fn collect_refs<'e>(e: &'e Expr, bound: &mut Vec<&'e str>, out: &mut Vec<(Node<'e>, Span)>, whole_cluster: &mut bool) {
    let root = |e: &'e Expr, bound: &[&str]| match &e.kind {
        ExprKind::Variable(i) if !bound.contains(&i.name.as_str()) => Some(i.name.as_str()),
        _ => None,
    };
    match &e.kind {
        ExprKind::GetAttr(base, name) if root(base, bound).is_some() => match root(base, bound) {
            Some("local") => out.push((Node::Local(&name.name), e.span)),
            Some("cluster") => out.push((Node::Cluster(&name.name), e.span)),
            _ => {}
        },
        ExprKind::Variable(i) if i.name == "cluster" && !bound.contains(&"cluster") => *whole_cluster = true,
        ExprKind::For(f) => {
            collect_refs(&f.collection, bound, out, whole_cluster);
            let depth = bound.len();
            if let Some(k) = &f.key_var {
                bound.push(&k.name);
            }
            bound.push(&f.value_var.name);
            for x in [f.key.as_ref(), Some(&f.value), f.cond.as_ref()].into_iter().flatten() {
                collect_refs(x, bound, out, whole_cluster);
            }
            bound.truncate(depth);
        }
        _ => visit::for_each_child(e, |c| collect_refs(c, bound, out, whole_cluster)),
    }
}

fn collect_block_refs<'e>(b: &'e Block, out: &mut Vec<(Node<'e>, Span)>, whole_cluster: &mut bool) {
    for item in &b.body.items {
        match item {
            drydock_syntax::ast::Item::Attribute(a) => collect_refs(&a.value, &mut vec![], out, whole_cluster),
            drydock_syntax::ast::Item::Block(inner) => collect_block_refs(inner, out, whole_cluster),
        }
    }
}

/// Tarjan's strongly connected components, iteratively (a long chain of references
/// must not exhaust the stack). Components come out dependencies first.
fn tarjan(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = vec![];
    let mut out = vec![];
    let mut next = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if *ei == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = vec![];
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_orders_dependencies_first_and_finds_cycles() {
        // 0 → 1 → 2, 3 ⇄ 4
        let edges = vec![vec![1], vec![2], vec![], vec![4], vec![3]];
        let sccs = tarjan(&edges);
        let pos = |x: usize| sccs.iter().position(|c| c.contains(&x)).unwrap();
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
        assert!(sccs.iter().any(|c| c.len() == 2 && c.contains(&3) && c.contains(&4)));
    }

    #[test]
    #[cfg(unix)]
    fn environment_variables_that_are_not_utf8_are_skipped_or_reported() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'a', 0xff]);
        let vars = vec![
            (OsString::from("DRYDOCK_VAR_region"), OsString::from("eu")),
            (OsString::from("DRYDOCK_VAR_token"), bad()),
            (bad(), OsString::from("x")),
            (OsString::from("OTHER"), bad()),
        ];
        let (env, not_utf8) = drydock_vars(vars.into_iter());
        assert_eq!(env, vec![("region".to_string(), "eu".to_string())]);
        assert_eq!(not_utf8, vec!["token".to_string()]);

        let mut sources = Sources::new();
        sources.add("main.kcl", "main.kcl", "variable \"token\" {\n  default = \"t\"\n}\n");
        let inputs = Inputs { env_not_utf8: not_utf8, ..Inputs::default() };
        let loaded = load_sources(sources, &inputs);
        let errors: Vec<(&str, &str)> = loaded.diagnostics.iter().map(|d| (d.code, d.message.as_str())).collect();
        assert_eq!(
            errors,
            [(
                "kcl::invalid_var",
                "the value of DRYDOCK_VAR_token is not UTF-8 text; set it to UTF-8 text or unset it"
            )]
        );
    }

    #[test]
    fn percentages_round_as_in_cluster_api() {
        assert_eq!(IntOrPercent::Percent(25.0).resolve(10, true), 3);
        assert_eq!(IntOrPercent::Percent(25.0).resolve(10, false), 2);
        assert_eq!(IntOrPercent::Int(2).resolve(10, false), 2);
    }
}
