//! The saved-plan reader fuzzed inside `cargo test`, with the project's seeded generator
//! (`drydock_testgen::Rng`): real plans, made by the planner from a configuration and a state
//! and saved as `plan --out` saves them, mutated as text, as JSON values, structurally (fields
//! and actions moved between changes, changes duplicated or dropped) and as bits, plus random
//! bytes. [`read_plan`] returns a plan or an error, never a panic; a plan it returns that
//! [`check_structure`] accepts keeps what that check promises: every target hashes to the
//! generation it names, every node group a change keeps or makes is one of the configuration,
//! in the cluster the change names, every delete is of one the configuration no longer has
//! (unless the plan destroys everything), and every address is a node group of its cluster.
//! [`check_saved`] accepts only a plan of the state's lineage and serial and the
//! configuration's digest.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_config::{load_sources, Inputs, Model};
use drydock_plan::{generation_id, ActionKind, Plan, PlanInput, PLAN_FORMAT_VERSION};
use drydock_provider::Observed;
use drydock_session::saved::{check_saved, check_structure, read_plan};
use drydock_session::Workspace;
use drydock_state::backend::Store;
use drydock_state::store::LocalStore;
use drydock_state::State;
use drydock_syntax::diag::Sources;
use drydock_testgen::{edit_json, mutate, Rng};
use serde_json::{json, Value};

/// Saved plans read by `read_plan`, half of them in each test.
const CASES: usize = 100_000;

const LINEAGE: &str = "c0ffee00-1111-4222-8333-444455556666";

/// What is applied first: a control plane and three worker groups in one cluster, one in
/// another.
const APPLIED: &str = r#"
provider "sim" {
  boot_time = 2s
}

cluster "demo" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-a"]
  }

  defaults {
    image         = "img-1"
    instance_type = "m6i.large"
  }

  node_group "cp" {
    role = "control-plane"
    size = 1
  }

  node_group "workers" {
    size = 1
  }

  node_group "batch" {
    size = 1
  }

  node_group "old" {
    size = 1
  }
}

cluster "edge" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-b"]
  }

  node_group "w" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 1
  }
}
"#;

fn model(src: &str) -> Model {
    let mut sources = Sources::new();
    sources.add("main.kcl", "main.kcl", src);
    let loaded = load_sources(sources, &Inputs::default());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.model.expect("a model")
}

fn plan(model: &Model, state: Option<&State>, observed: &BTreeMap<String, Observed>, destroy: bool) -> Plan {
    let boot = BTreeMap::from([("sim".to_string(), 3_000)]);
    let input = PlanInput {
        model,
        state,
        lineage: state.map_or(LINEAGE, |s| s.lineage.as_str()),
        observed,
        boot_estimate_ms: &boot,
        config_digest: "digest".into(),
        config_path: "main.kcl".into(),
        destroy,
        refreshed: true,
        kubernetes: &Default::default(),
        replace: &Default::default(),
        specs: &Default::default(),
        foreign: &Default::default(),
        settings: &Default::default(),
        now_ms: BTreeMap::from([("sim".to_string(), 10_000)]),
    };
    drydock_plan::plan(&input).unwrap_or_else(|e| panic!("planning failed: {e:?}"))
}

/// A saved plan's bytes, as `plan --out` writes them.
fn saved(plan: &Plan) -> Vec<u8> {
    (serde_json::to_string_pretty(plan).expect("a plan serialises") + "\n").into_bytes()
}

/// The configuration after three edits of [`APPLIED`] (`workers`' image, `batch`'s size, `old`
/// replaced by `new`), the state [`APPLIED`] left, and four small plans from that state, each
/// of one edit or of all: a rollout (`workers`), a create (`new`), an update in place (`batch`)
/// with a delete (`old`), and a destroy. Each is a plan the configuration's `check_saved`
/// accepts (the digest is the same made-up one).
fn world() -> (Model, State, Vec<Plan>) {
    let first = plan(&model(APPLIED), None, &BTreeMap::from([("sim".to_string(), Observed::default())]), false);
    let (state, observed) = drydock_testgen::applied_world(&first);
    let edit = |src: &str, from: &str, to: &str| {
        assert!(src.contains(from), "{from}");
        src.replacen(from, to, 1)
    };
    let image =
        |src: &str| edit(src, "node_group \"workers\" {\n", "node_group \"workers\" {\n    image = \"img-2\"\n");
    let size = |src: &str| edit(src, "node_group \"batch\" {\n    size = 1", "node_group \"batch\" {\n    size = 2");
    let new = |src: &str| edit(src, "node_group \"old\"", "node_group \"new\"");
    let plans: Vec<Plan> = [
        (image(APPLIED), &[ActionKind::Rollout][..], false),
        (
            edit(APPLIED, "  node_group \"old\"", "  node_group \"new\" {\n    size = 1\n  }\n\n  node_group \"old\""),
            &[ActionKind::Create],
            false,
        ),
        (
            size(&edit(APPLIED, "  node_group \"old\" {\n    size = 1\n  }\n", "")),
            &[ActionKind::Update, ActionKind::Delete],
            false,
        ),
        (new(&size(&image(APPLIED))), &[ActionKind::Delete; 5], true),
    ]
    .into_iter()
    .map(|(src, kinds, destroy)| {
        let p = plan(&model(&src), Some(&state), &observed, destroy);
        let mut found: Vec<ActionKind> = p.changes.iter().map(|c| c.kind()).collect();
        found.sort();
        assert_eq!(found, kinds, "the plan of the edit makes the changes it is for");
        p
    })
    .collect();
    (model(&new(&size(&image(APPLIED)))), state, plans)
}

/// The promises of [`check_structure`] (and of [`read_plan`]), on a plan both accepted.
fn assert_structurally_valid(plan: &Plan, model: &Model) {
    assert_eq!(plan.format_version, PLAN_FORMAT_VERSION);
    // Node group address → its cluster's address.
    let configured: BTreeMap<&str, &str> = model
        .clusters
        .iter()
        .flat_map(|c| c.node_groups.iter().map(move |ng| (ng.address.as_str(), c.address.as_str())))
        .collect();
    for c in &plan.changes {
        let rest = c.address.strip_prefix(c.cluster.as_str()).and_then(|r| r.strip_prefix(".node_group."));
        assert!(rest.is_some_and(|r| !r.is_empty()), "{} is not a node group address of {}", c.address, c.cluster);
        match c.kind() {
            ActionKind::Create | ActionKind::Resume | ActionKind::Rollout | ActionKind::Update => {
                let t = c.target().expect("every create, resume, rollout and update has its target");
                assert_eq!(
                    generation_id(&t.spec),
                    t.generation,
                    "{}: the target spec is not its generation",
                    c.address
                );
                assert_eq!(
                    configured.get(c.address.as_str()),
                    Some(&c.cluster.as_str()),
                    "{} is not a node group of {} in the configuration",
                    c.address,
                    c.cluster
                );
            }
            ActionKind::Delete => {
                assert!(c.target().is_none());
                assert!(plan.destroy || !configured.contains_key(c.address.as_str()), "deletes {}", c.address);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(u32::MAX as u64 + 1),
        4 => json!(u64::MAX),
        5 => json!(1.5),
        6 => json!(""),
        7 => json!("cluster.edge.node_group.w"),
        8 => json!([]),
        9 => json!({}),
        10 => json!({"kind": "delete", "retire": []}),
        _ => json!(["x", {"y": null}]),
    }
}

/// One edit of the JSON tree anywhere ([`edit_json`]).
fn mutate_json(rng: &mut Rng, v: &mut Value) {
    edit_json(rng, v, random_value);
}

/// Edits that keep the plan's shape, as someone editing a plan by hand might: a field of one
/// change given to another, actions or targets swapped, a change duplicated, dropped or turned
/// into a delete, `destroy` flipped, an address moved to the other cluster.
fn mutate_structure(rng: &mut Rng, v: &mut Value, others: &[Value]) {
    const FIELDS: &[&str] = &["address", "cluster", "provider", "name", "action", "owner_cluster", "owner_node_group"];
    let other = rng.pick(others);
    let donor = other["changes"].as_array().and_then(|cs| cs.get(rng.below(cs.len()))).cloned();
    let Some(changes) = v.get_mut("changes").and_then(Value::as_array_mut) else { return };
    if changes.is_empty() {
        return;
    }
    let i = rng.below(changes.len());
    match rng.below(8) {
        0 | 1 => {
            if let Some(d) = donor {
                let field = *rng.pick(FIELDS);
                changes[i][field] = d[field].clone();
            }
        }
        2 => {
            if let Some(target) = donor.as_ref().and_then(|d| d["action"].get("target")) {
                if changes[i]["action"].get("target").is_some() {
                    changes[i]["action"]["target"] = target.clone();
                }
            }
        }
        3 => {
            let c = changes[i].clone();
            changes.insert(rng.below(changes.len() + 1), c);
        }
        4 => {
            changes.remove(i);
        }
        5 => {
            let kind = *rng.pick(&["create", "resume", "rollout", "update", "delete"]);
            let action = &mut changes[i]["action"];
            action["kind"] = kind.into();
            if kind == "delete" || kind == "rollout" {
                action["retire"] = json!(["some-group"]);
            }
        }
        6 => {
            let flipped = !v["destroy"].as_bool().unwrap_or(false);
            v["destroy"] = flipped.into();
        }
        _ => {
            let c = &mut changes[i];
            let (address, cluster) = (c["address"].as_str().unwrap_or("").to_string(), c["cluster"].to_string());
            let moved = match address.strip_prefix("cluster.demo.") {
                Some(rest) => format!("cluster.edge.{rest}"),
                None => address.replacen("cluster.edge.", "cluster.demo.", 1),
            };
            c["address"] = moved.into();
            if rng.chance(50) {
                c["cluster"] = if cluster.contains("demo") { "cluster.edge" } else { "cluster.demo" }.into();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fuzzing.

fn overwrite(path: &Path, bytes: &[u8]) {
    drydock_testgen::overwrite(path, bytes).unwrap();
}

fn workspace(dir: &Path, model: &Model) -> Workspace {
    Workspace {
        config_path: dir.join("main.kcl"),
        config_dir: dir.to_path_buf(),
        model: model.clone(),
        digest: "digest".into(),
        store: Store::Local(LocalStore::new(dir.join("drydock.state.json"))),
        backend: None,
        lease: Duration::from_secs(60),
        lock_timeout: Duration::ZERO,
        refresh: false,
        targets: vec![],
        replace: vec![],
        undo: None,
        lineage: None,
        inputs: Default::default(),
    }
}

/// The plans to mutate, and what a mutation is checked against.
struct Fixtures {
    model: Model,
    state: State,
    ws: Workspace,
    path: PathBuf,
    bytes: Vec<Vec<u8>>,
    texts: Vec<String>,
    values: Vec<Value>,
    _dir: tempfile::TempDir,
}

fn fixtures() -> Fixtures {
    let (model, state, plans) = world();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.plan");
    let ws = workspace(dir.path(), &model);
    let bytes: Vec<Vec<u8>> = plans.iter().map(saved).collect();
    let texts = bytes.iter().map(|b| String::from_utf8(b.clone()).unwrap()).collect();
    let values = bytes.iter().map(|b| serde_json::from_slice(b).unwrap()).collect();
    // The plans themselves read back whole and are accepted.
    for (b, p) in bytes.iter().zip(&plans) {
        overwrite(&path, b);
        assert_eq!(&read_plan(&path).unwrap(), p);
        assert_eq!(check_saved(p, &ws, Some(&state)), Ok(()));
    }
    Fixtures { model, state, ws, path, bytes, texts, values, _dir: dir }
}

/// Reads `cases` inputs made by `input` (from the plan it is given) and checks what becomes
/// of each: unread (0), refused as edited (1), refused as another state's or configuration's
/// (2), accepted (3). Returns the tally by kind of input.
fn fuzz(
    seed: u64,
    cases: usize,
    input: impl Fn(&mut Rng, &Fixtures, usize) -> (&'static str, Vec<u8>),
) -> BTreeMap<&'static str, [usize; 4]> {
    let f = fixtures();
    let mut rng = Rng::new(seed);
    let mut kinds: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for i in 0..cases {
        let which = rng.below(f.bytes.len());
        let (kind, input) = input(&mut rng, &f, which);
        overwrite(&f.path, &input);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let plan = match read_plan(&f.path) {
                Ok(plan) => plan,
                Err(e) => {
                    assert!(e.contains("saved.plan"), "the error does not name the file: {e}");
                    return 0;
                }
            };
            let structure = check_structure(&plan, &f.model, Some(&f.state));
            let whole = check_saved(&plan, &f.ws, Some(&f.state));
            if let Err(e) = &structure {
                assert!(e.starts_with("the saved plan was edited: "), "{e}");
                assert!(whole.is_err());
                return 1;
            }
            assert_structurally_valid(&plan, &f.model);
            if whole.is_err() {
                return 2;
            }
            assert_eq!(
                (plan.lineage.as_str(), plan.state_serial, plan.config_digest.as_str()),
                (f.state.lineage.as_str(), Some(f.state.serial), f.ws.digest.as_str())
            );
            3
        }));
        match outcome {
            Ok(o) => kinds.entry(kind).or_default()[o] += 1,
            Err(panic) => {
                let shown = String::from_utf8_lossy(&input[..input.len().min(20_000)]);
                eprintln!("fuzz case {kind} #{i} (of plan {which}) failed; input ({} bytes):\n{shown}", input.len());
                resume_unwind(panic)
            }
        }
    }
    kinds
}

#[test]
fn saved_plans_mutated_as_text_or_bytes_or_random_read_as_a_plan_or_an_error() {
    let kinds = fuzz(0x5eed_0010, CASES / 2, |rng, f, which| match rng.below(10) {
        0..=5 => ("text mutation", mutate(rng, &f.texts[which]).into_bytes()),
        6 => {
            let mut b = f.bytes[which].clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
            ("bit flips", b)
        }
        7 => ("truncation", f.bytes[which][..rng.below(f.bytes[which].len())].to_vec()),
        _ => {
            let len = rng.below(300);
            let b = if rng.chance(50) {
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                let alphabet = b"{}[]\":,0123456789.-e truefalsn\\\n format_version changes kind";
                (0..len).map(|_| *rng.pick(alphabet)).collect()
            };
            ("random bytes", b)
        }
    });
    eprintln!("saved plans (kind: [unread, refused as edited, refused as stale, accepted]): {kinds:?}");
    assert!(kinds["text mutation"][1] > 50 && kinds["text mutation"][3] > 100, "{kinds:?}");
}

#[test]
fn saved_plans_edited_as_json_are_refused_or_structurally_valid() {
    let kinds = fuzz(0x5eed_0011, CASES / 2, |rng, f, which| {
        let mut v = f.values[which].clone();
        let kind = if rng.chance(50) {
            for _ in 0..1 + rng.below(2) {
                mutate_json(rng, &mut v);
            }
            "json mutation"
        } else {
            for _ in 0..1 + rng.below(2) {
                mutate_structure(rng, &mut v, &f.values);
            }
            "structural edit"
        };
        (kind, serde_json::to_vec(&v).unwrap())
    });
    eprintln!("saved plans (kind: [unread, refused as edited, refused as stale, accepted]): {kinds:?}");
    assert!(kinds["structural edit"][1] > 1_000 && kinds["structural edit"][3] > 1_000, "{kinds:?}");
}
