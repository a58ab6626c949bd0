//! The three renderings of a plan (human, Markdown, JSON) for each kind of change, checked
//! against the expected output stored beside this file (`tests/render/`; refresh with
//! `UPDATE_EXPECT=1`). Plans are built by hand here, so every case (drift, sensitive
//! values, a control plane) is exactly what it says; the large cases run the real planner
//! on generated fleets. Every JSON rendering is checked against `docs/plan.schema.json`.

mod common;

use std::collections::BTreeMap;

use drydock_config::model::Role;
use drydock_config::{load_sources, Inputs, Model};
use drydock_plan::waves::Wave;
use drydock_plan::{Action, ActionKind, AttrChange, Change, ClusterRecord, Drift, Plan, PlanInput, Reason, Target};
use drydock_provider::Observed;
use drydock_render::{self as render, markdown, Format};
use drydock_state::State;
use drydock_syntax::diag::Sources;
use expect_test::expect_file;
use serde_json::{json, Value};

const LINEAGE: &str = "0b5e55ed-0000-4000-8000-000000000000";
/// What the sensitive cases hide: it must appear in no rendering.
const SECRET: &str = "hunter2-SECRET-TOKEN";

// ---- a small builder of plans ----

fn plan(changes: Vec<Change>) -> Plan {
    let mut clusters: Vec<ClusterRecord> = changes
        .iter()
        .map(|c| ClusterRecord {
            address: c.cluster.clone(),
            name: c.cluster.trim_start_matches("cluster.").into(),
            key: None,
            provider: "sim".into(),
            keep: true,
            disruption_budget: 1,
        })
        .collect();
    clusters.dedup_by(|a, b| a.address == b.address);
    Plan {
        format_version: drydock_plan::PLAN_FORMAT_VERSION,
        drydock_version: "0.1.0".into(),
        lineage: LINEAGE.into(),
        state_serial: Some(7),
        config_digest: "d1g35t".into(),
        config_path: "infra/prod".into(),
        destroy: false,
        changes,
        clusters,
        drift: vec![],
        warnings: vec![],
        refresh_only: false,
        options: Default::default(),
    }
}

/// A change of this kind with an empty target (set with [`set_target`]) and nothing retired
/// (set with [`set_retire`]).
fn change(address: &str, kind: ActionKind) -> Change {
    let (cluster, ng) = address.split_once(".node_group.").unwrap();
    let t = target("", &[], 0, None);
    let action = match kind {
        ActionKind::Create => Action::Create { target: t },
        ActionKind::Resume => Action::Resume { target: t },
        ActionKind::Rollout => Action::Rollout { target: t, retire: vec![] },
        ActionKind::Update => Action::Update { target: t },
        ActionKind::Delete => Action::Delete { retire: vec![] },
    };
    Change {
        address: address.into(),
        cluster: cluster.into(),
        provider: "sim".into(),
        name: ng.split('[').next().unwrap().into(),
        key: None,
        role: Role::Worker,
        action,
        reasons: vec![],
        replicas: 0,
        waves: vec![],
        eta_ms: 0,
        depends_on: vec![],
        owner_cluster: cluster.trim_start_matches("cluster.").into(),
        owner_node_group: ng.into(),
    }
}

fn set_target(c: &mut Change, t: Target) {
    match &mut c.action {
        Action::Create { target }
        | Action::Resume { target }
        | Action::Rollout { target, .. }
        | Action::Update { target } => *target = t,
        Action::Delete { .. } => panic!("a delete has no target"),
    }
}

fn set_retire(c: &mut Change, groups: Vec<String>) {
    match &mut c.action {
        Action::Rollout { retire, .. } | Action::Delete { retire } => *retire = groups,
        _ => panic!("only rollouts and deletes retire groups"),
    }
}

/// An attribute changed by the configuration.
fn attr(path: &str, before: Option<Value>, after: Option<Value>, forces: bool) -> AttrChange {
    AttrChange {
        path: path.into(),
        before,
        after,
        reason: Reason::Configuration,
        forces_replacement: forces,
        sensitive: false,
    }
}

fn sensitive(mut a: AttrChange) -> AttrChange {
    a.sensitive = true;
    a
}

/// A target generation; `user_data` goes into the spec the executor reads, which no
/// rendering may show.
fn target(generation: &str, groups: &[&str], desired: u32, user_data: Option<&str>) -> Target {
    serde_json::from_value(json!({
        "generation": generation,
        "spec": { "image": "img", "instance_types": ["m6i.large"], "kubernetes_version": "1.31", "user_data": user_data },
        "display_spec": {},
        "groups": groups.iter().map(|g| json!({
            "name": g,
            "settings": { "min": 1, "max": 10, "desired": desired, "subnets": ["subnet-a"] },
            "exists": false,
        })).collect::<Vec<_>>(),
        "settings": {
            "min": 1, "max": 10, "desired": desired, "tags": {}, "subnets": ["subnet-a"],
            "health": { "check": "ec2", "grace_period_ms": 90000, "max_unhealthy": { "percent": 40.0 },
                        "unhealthy_timeout_ms": 300000, "startup_timeout_ms": 600000 },
            "rollout": { "max_surge": { "int": 1 }, "max_unavailable": { "int": 0 }, "health_timeout_ms": 600000 },
        },
    }))
    .unwrap()
}

fn wave(index: u32, remove_first: &[&str], add: u32, remove_after: &[&str], floor: u32, ceiling: u32) -> Wave {
    Wave {
        index,
        remove_first: remove_first.iter().map(|s| s.to_string()).collect(),
        add,
        remove_after: remove_after.iter().map(|s| s.to_string()).collect(),
        floor,
        ceiling,
        drains: vec![],
    }
}

const BOOTSTRAP_V1: &str = "#!/bin/sh\nset -eu\n# Join the cluster.\nexport CLUSTER=prod\nexport POOL=general\nkubeadm join --config /etc/kubeadm.yaml\nsystemctl enable kubelet\necho joined\n";
const BOOTSTRAP_V2: &str = "#!/bin/sh\nset -eu\n# Join the cluster.\nexport CLUSTER=prod\nexport POOL=general\nkubeadm join --config /etc/kubeadm.yaml --v=2\nsystemctl enable kubelet\necho joined\n";

// ---- the cases ----

fn create() -> Plan {
    let mut c = change("cluster.demo.node_group.workers", ActionKind::Create);
    c.replicas = 4;
    c.eta_ms = 42_000;
    c.waves = vec![wave(1, &[], 4, &[], 0, 4)];
    c.reasons = vec![
        attr("image", None, Some(json!("img-worker-2026-11")), false),
        attr("instance_types", None, Some(json!(["m6i.xlarge", "m6a.xlarge"])), false),
        attr("kubernetes_version", None, Some(json!("1.31")), false),
        attr("labels.node.kubernetes.io/pool", None, Some(json!("general")), false),
        attr("user_data", None, Some(json!(BOOTSTRAP_V1)), false),
    ];
    set_target(&mut c, target("a1b2c3d4e5", &["0b5e55-demo-workers-a1b2c3d4e5"], 4, Some(BOOTSTRAP_V1)));
    plan(vec![c])
}

fn rollout() -> Plan {
    let mut c = change("cluster.prod.node_group.workers[\"us-east-1a\"]", ActionKind::Rollout);
    c.replicas = 6;
    c.eta_ms = 80_000;
    c.reasons = vec![
        attr("image", Some(json!("img-2026-11")), Some(json!("img-2026-12")), true),
        attr("instance_types", Some(json!(["m6i.xlarge"])), Some(json!(["m7i.xlarge"])), true),
        attr("user_data", Some(json!(BOOTSTRAP_V1)), Some(json!(BOOTSTRAP_V2)), true),
        attr("rollout.max_unavailable.int", Some(json!(0)), Some(json!(1)), false),
    ];
    c.waves =
        vec![wave(1, &["i-0a1"], 3, &["i-0a2", "i-0a3"], 5, 8), wave(2, &["i-0a4"], 3, &["i-0a5", "i-0a6"], 5, 8)];
    set_retire(&mut c, vec!["0b5e55-prod-workers-us-east-1a-0123456789".into()]);
    set_target(&mut c, target("fedcba9876", &["0b5e55-prod-workers-us-east-1a-fedcba9876"], 6, Some(BOOTSTRAP_V2)));
    plan(vec![c])
}

fn update() -> Plan {
    let mut c = change("cluster.demo.node_group.workers", ActionKind::Update);
    c.replicas = 5;
    c.reasons = vec![
        attr("desired", Some(json!(4)), Some(json!(5)), false),
        attr("max", Some(json!(10)), Some(json!(12)), false),
        attr("min", Some(json!(3)), Some(json!(2)), false),
        attr("tags.team", Some(json!("platform")), Some(json!("infra")), false),
        attr("tags.cost-center", None, Some(json!("42")), false),
    ];
    set_target(&mut c, target("a1b2c3d4e5", &["0b5e55-demo-workers-a1b2c3d4e5"], 5, None));
    plan(vec![c])
}

fn destroy() -> Plan {
    let mut workers = change("cluster.old.node_group.batch", ActionKind::Delete);
    workers.waves = vec![wave(1, &["i-0b1", "i-0b2", "i-0b3"], 0, &[], 0, 0)];
    set_retire(&mut workers, vec!["0b5e55-old-batch-1111111111".into()]);
    let mut cp = change("cluster.old.node_group.control-plane", ActionKind::Delete);
    cp.role = Role::ControlPlane;
    cp.waves = vec![wave(1, &["i-0c1", "i-0c2", "i-0c3"], 0, &[], 0, 0)];
    set_retire(&mut cp, (0..3).map(|m| format!("0b5e55-old-control-plane-2222222222-m{m}")).collect());
    cp.depends_on = vec![workers.address.clone()];
    let mut p = plan(vec![workers, cp]);
    p.clusters[0].keep = false;
    p
}

fn drift() -> Plan {
    let mut c = change("cluster.demo.node_group.workers", ActionKind::Rollout);
    c.replicas = 2;
    c.eta_ms = 40_000;
    c.reasons = vec![attr("image", Some(json!("img-hotfix")), Some(json!("img-2026-11")), true)];
    c.waves = vec![wave(1, &[], 1, &["i-0d1"], 2, 3), wave(2, &[], 1, &["i-0d2"], 2, 3)];
    set_retire(&mut c, vec!["0b5e55-demo-workers-3333333333".into()]);
    set_target(&mut c, target("a1b2c3d4e5", &["0b5e55-demo-workers-a1b2c3d4e5"], 2, None));
    let mut p = plan(vec![c]);
    p.drift = vec![
        Drift {
            address: "cluster.demo.node_group.workers".into(),
            path: "desired".into(),
            before: Some(json!(2)),
            after: Some(json!(5)),
            sensitive: false,
            action: "kept: the autoscaler owns desired inside size 2..10".into(),
        },
        Drift {
            address: "cluster.demo.node_group.workers".into(),
            path: "image".into(),
            before: Some(json!("img-2026-11")),
            after: Some(json!("img-hotfix")),
            sensitive: false,
            action: "rolled back: the rollout below replaces the hotfix nodes".into(),
        },
        Drift {
            address: "cluster.demo.node_group.workers".into(),
            path: "user_data".into(),
            before: Some(json!(format!("#!/bin/sh\nexport TOKEN={SECRET}\n"))),
            after: Some(json!(format!("#!/bin/sh\nexport TOKEN={SECRET}-rotated\n"))),
            sensitive: true,
            action: "rolled back with the image".into(),
        },
    ];
    p
}

/// User data from a sensitive variable, in a rollout and a create. The planner records
/// digests for sensitive values; here the raw secret is recorded instead, to show the
/// renderers never print a sensitive value whatever it holds.
fn sensitive_values() -> Plan {
    let v1 = format!("#!/bin/sh\nexport TOKEN={SECRET}\nkubeadm join\n");
    let v2 = format!("#!/bin/sh\nexport TOKEN={SECRET}-rotated\nkubeadm join\n");
    let mut batch = change("cluster.demo.node_group.batch", ActionKind::Create);
    batch.replicas = 2;
    batch.eta_ms = 40_000;
    batch.waves = vec![wave(1, &[], 2, &[], 0, 2)];
    batch.reasons = vec![
        attr("image", None, Some(json!("img-batch")), false),
        sensitive(attr("user_data", None, Some(json!(v1)), false)),
    ];
    set_target(&mut batch, target("b0b0b0b0b0", &["0b5e55-demo-batch-b0b0b0b0b0"], 2, Some(&v1)));
    let mut workers = change("cluster.demo.node_group.workers", ActionKind::Rollout);
    workers.replicas = 2;
    workers.eta_ms = 40_000;
    workers.reasons = vec![sensitive(attr("user_data", Some(json!(v1)), Some(json!(v2)), true))];
    workers.waves = vec![wave(1, &[], 1, &["i-0e1"], 2, 3), wave(2, &[], 1, &["i-0e2"], 2, 3)];
    set_retire(&mut workers, vec!["0b5e55-demo-workers-4444444444".into()]);
    set_target(&mut workers, target("c0c0c0c0c0", &["0b5e55-demo-workers-c0c0c0c0c0"], 2, Some(&v2)));
    plan(vec![batch, workers])
}

fn control_plane() -> Plan {
    let mut cp = change("cluster.prod.node_group.control-plane", ActionKind::Rollout);
    cp.role = Role::ControlPlane;
    cp.replicas = 3;
    cp.eta_ms = 120_000;
    cp.reasons = vec![
        attr("image", Some(json!("img-cp-2026-11")), Some(json!("img-cp-2026-12")), true),
        attr("kubernetes_version", Some(json!("1.30")), Some(json!("1.31")), true),
    ];
    cp.waves =
        vec![wave(1, &[], 1, &["i-0f1"], 3, 4), wave(2, &[], 1, &["i-0f2"], 3, 4), wave(3, &[], 1, &["i-0f3"], 3, 4)];
    set_retire(&mut cp, (0..3).map(|m| format!("0b5e55-prod-control-plane-5555555555-m{m}")).collect());
    let members: Vec<String> = (0..3).map(|m| format!("0b5e55-prod-control-plane-6666666666-m{m}")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    set_target(&mut cp, target("6666666666", &members, 1, None));
    let mut w = change("cluster.prod.node_group.workers", ActionKind::Rollout);
    w.replicas = 2;
    w.eta_ms = 40_000;
    w.reasons = vec![attr("kubernetes_version", Some(json!("1.30")), Some(json!("1.31")), true)];
    w.waves = vec![wave(1, &[], 2, &["i-0g1", "i-0g2"], 2, 4)];
    set_retire(&mut w, vec!["0b5e55-prod-workers-7777777777".into()]);
    set_target(&mut w, target("8888888888", &["0b5e55-prod-workers-8888888888"], 2, None));
    w.depends_on = vec![cp.address.clone()];
    plan(vec![cp, w])
}

fn no_changes() -> Plan {
    plan(vec![])
}

// ---- the real planner on generated fleets ----

fn model(n: usize, seed: u64) -> Model {
    let mut sources = Sources::new();
    sources.add("fleet.kcl", "fleet.kcl", drydock_testgen::fleet(n, seed).as_str());
    load_sources(sources, &Inputs::default()).model.expect("the generated fleet is valid")
}

fn input<'a>(
    model: &'a Model,
    state: Option<&'a State>,
    observed: &'a BTreeMap<String, Observed>,
    boot: &'a BTreeMap<String, u64>,
) -> PlanInput<'a> {
    PlanInput {
        model,
        state,
        lineage: LINEAGE,
        observed,
        boot_estimate_ms: boot,
        config_digest: "d1g35t".into(),
        config_path: "fleet".into(),
        destroy: false,
        refreshed: true,
        kubernetes: &NO_KUBE,
        replace: &NO_REPLACE,
        specs: &NO_SPECS,
        foreign: &NO_FOREIGN,
        settings: &NO_SETTINGS,
        now_ms: BTreeMap::new(),
    }
}

fn boot() -> BTreeMap<String, u64> {
    BTreeMap::from([("sim".to_string(), 30_000u64)])
}

/// 500 node groups, planned against an empty cloud: 500 creates.
fn fleet_created() -> Plan {
    let model = model(500, 7);
    let nothing = BTreeMap::from([("sim".to_string(), Observed::default())]);
    let mut p = drydock_plan::plan(&input(&model, None, &nothing, &boot())).expect("a plan");
    p.drydock_version = "0.1.0".into();
    p
}

/// 500 node groups applied, then the image of one changed: one rollout.
fn fleet_one_change() -> Plan {
    let (state, observed) = drydock_testgen::applied_world(&fleet_created());
    let mut model = model(500, 7);
    let ng = &mut model.clusters[3].node_groups[4];
    ng.spec.image = "img-2026-12".into();
    let mut p = drydock_plan::plan(&input(&model, Some(&state), &observed, &boot())).expect("a plan");
    p.drydock_version = "0.1.0".into();
    p
}

// ---- the checks ----

/// A case: its name (the stem of its expected files) and how to build its plan.
type Case = (&'static str, fn() -> Plan);

const CASES: &[Case] = &[
    ("create", create),
    ("rollout", rollout),
    ("update", update),
    ("destroy", destroy),
    ("drift", drift),
    ("sensitive", sensitive_values),
    ("control_plane", control_plane),
    ("no_changes", no_changes),
];

/// Removes ANSI escapes (`ESC [ … m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What holds for every plan in every format.
fn check_all_formats(name: &str, p: &Plan) -> (String, String, String) {
    let human = render::render(p, Format::Human, false);
    let coloured = render::render(p, Format::Human, true);
    assert_eq!(strip_ansi(&coloured), human, "{name}: colour adds escapes and nothing else");
    if !p.is_empty() {
        assert!(coloured.contains('\x1b'), "{name}: colour is on");
    }
    assert!(!human.contains('\x1b'), "{name}: no colour unless asked");

    let md = render::render(p, Format::Markdown, true);
    assert!(md.len() <= markdown::MAX_BYTES, "{name}: {} bytes of Markdown", md.len());
    assert!(md.starts_with(markdown::MARKER), "{name}: CI finds the comment by its marker");
    assert!(!md.contains('\x1b'), "{name}: Markdown never has colour");

    let js = render::render(p, Format::Json, true);
    let v: Value = serde_json::from_str(&js).unwrap_or_else(|e| panic!("{name}: the JSON parses: {e}"));
    let errors = common::schema::check(&common::schema::plan_schema(), &v);
    assert!(errors.is_empty(), "{name}: the JSON breaks docs/plan.schema.json:\n{}", errors.join("\n"));
    assert_eq!(render::render(p, Format::Json, false), js, "{name}: colour does not touch JSON");
    (human, md, js)
}

#[test]
fn every_case_in_every_format() {
    for (name, make) in CASES {
        let (human, md, js) = check_all_formats(name, &make());
        expect_file![format!("render/{name}.txt")].assert_eq(&human);
        expect_file![format!("render/{name}.md")].assert_eq(&md);
        expect_file![format!("render/{name}.json")].assert_eq(&js);
    }
}

#[test]
fn sensitive_values_never_show_in_any_format() {
    for (name, make) in [("sensitive", sensitive_values as fn() -> Plan), ("drift", drift)] {
        let p = make();
        let (human, md, js) = check_all_formats(name, &p);
        for (format, text) in [("human", &human), ("markdown", &md), ("json", &js)] {
            assert!(!text.contains(SECRET), "{name}: the secret shows in the {format} rendering:\n{text}");
            assert!(!text.contains("TOKEN"), "{name}: a line of the secret user data shows in {format}:\n{text}");
        }
        assert!(human.contains("(sensitive)") && md.contains("(sensitive)"), "{name}: sensitive values are named");
    }
    // In JSON a sensitive value is null, and flagged on each side it has a value.
    let v: Value = serde_json::from_str(&render::render(&sensitive_values(), Format::Json, false)).unwrap();
    let create = &v["changes"][0];
    assert_eq!(create["after"]["user_data"], Value::Null);
    assert_eq!(create["after_sensitive"], json!({ "user_data": true }));
    assert_eq!(create["before_sensitive"], json!({}));
    let rollout = &v["changes"][1];
    assert_eq!((&rollout["before"]["user_data"], &rollout["after"]["user_data"]), (&Value::Null, &Value::Null));
    assert_eq!(rollout["before_sensitive"], json!({ "user_data": true }));
    assert_eq!(rollout["replace_paths"], json!(["user_data"]));
}

#[test]
fn markdown_warns_about_destroys_and_control_planes_only() {
    let warn = "> [!WARNING]";
    let md = |p: Plan| render::render(&p, Format::Markdown, false);
    assert!(md(destroy()).contains(warn));
    assert!(md(control_plane()).contains(warn));
    for (name, p) in [("create", create()), ("rollout", rollout()), ("update", update()), ("drift", drift())] {
        assert!(!md(p).contains(warn), "{name} warns");
    }
}

#[test]
fn the_checker_rejects_json_that_breaks_the_schema() {
    let schema = common::schema::plan_schema();
    let good: Value = serde_json::from_str(&render::render(&rollout(), Format::Json, false)).unwrap();
    assert!(common::schema::check(&schema, &good).is_empty());
    type Breakage = (&'static str, fn(&mut Value));
    let broken: [Breakage; 5] = [
        ("a required key missing", |v| {
            v["changes"][0].as_object_mut().unwrap().remove("replace_paths");
        }),
        ("a wrong type", |v| v["summary"]["create"] = json!("1")),
        ("an unknown action", |v| v["changes"][0]["action"] = json!("replace")),
        ("an undocumented key", |v| v["changes"][0]["waves"][0]["extra"] = json!(1)),
        ("a sensitive flag that is not true", |v| v["changes"][0]["after_sensitive"] = json!({ "image": false })),
    ];
    for (what, breaks) in broken {
        let mut v = good.clone();
        breaks(&mut v);
        assert!(!common::schema::check(&schema, &v).is_empty(), "the checker misses {what}");
    }
}

/// A plan over 500 changed node groups: the comment stays under the cap and says what it
/// left out; the human and JSON renderings have every change.
#[test]
fn a_plan_of_500_creates() {
    let p = fleet_created();
    assert_eq!(p.changes.len(), 500);
    let (human, md, js) = check_all_formats("fleet_created", &p);
    assert!(md.len() <= 65_000, "{} bytes", md.len());
    assert!(md.len() > 60_000, "the comment uses the room it has: {} bytes", md.len());
    assert!(md.contains("This comment was cut to stay under 65,000 characters"), "{md}");
    assert_eq!(md.matches("| create |").count() + md.matches("| create (control plane) |").count(), 500, "every row");
    let summary = "Plan: 500 to create, 0 to roll out (0 nodes replaced), 0 to update in place, 0 to destroy.";
    assert!(md.contains(summary) && human.contains(summary));
    assert_eq!(human.matches(" will be created").count(), 500);
    let v: Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["changes"].as_array().unwrap().len(), 500);
    assert_eq!(v["summary"]["create"], 500);
    expect_file!["render/fleet_created.md"].assert_eq(&md);
    // The human and JSON renderings are hundreds of kilobytes: their beginnings are kept.
    let head: Vec<&str> = human.split("\n\n").take(4).collect();
    let last = human.lines().last().unwrap_or_default();
    expect_file!["render/fleet_created.head.txt"].assert_eq(&format!("{}\n\n…\n\n{last}\n", head.join("\n\n")));
    let first_change = serde_json::to_string_pretty(&v["changes"][0]).unwrap();
    let summary = serde_json::to_string_pretty(&v["summary"]).unwrap();
    expect_file!["render/fleet_created.head.json"].assert_eq(&format!("{first_change}\n{summary}\n"));
}

/// Tables too large for the comment are cut too, with the count of rows left out.
#[test]
fn tables_are_cut_when_even_they_do_not_fit() {
    let p = fleet_created();
    let md = markdown::render_capped(&p, 8_000);
    assert!(md.len() <= 8_000, "{} bytes", md.len());
    let rows = md.matches("| create").count();
    assert!(rows > 10 && rows < 500, "{rows} rows kept");
    assert!(md.contains(&format!("Left out: {} of 500 table rows", 500 - rows)), "{md}");
    assert!(md.contains("the details of 500 of 500 changed node groups"), "{md}");
    assert!(md.contains("Plan: 500 to create"), "the headline stays");
}

/// 500 node groups of which one changes: only that one is listed, in under 5 KB.
#[test]
fn one_change_among_500_node_groups_is_a_short_comment() {
    let p = fleet_one_change();
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes.iter().map(|c| &c.address).collect::<Vec<_>>());
    let (human, md, js) = check_all_formats("fleet_one_change", &p);
    eprintln!(
        "500 node groups, one rollout: {} bytes of Markdown, {} of text, {} of JSON",
        md.len(),
        human.len(),
        js.len()
    );
    assert!(md.len() < 5_000, "{} bytes", md.len());
    assert_eq!(md.matches("| roll out |").count(), 1);
    expect_file!["render/fleet_one_change.md"].assert_eq(&md);
}

/// No cluster has a Kubernetes API here.
static NO_KUBE: BTreeMap<String, drydock_plan::kube::KubeObserved> = BTreeMap::new();
static NO_REPLACE: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
static NO_SPECS: BTreeMap<String, drydock_provider::GenerationSpec> = BTreeMap::new();
static NO_FOREIGN: std::collections::BTreeMap<String, drydock_provider::Observed> = std::collections::BTreeMap::new();
static NO_SETTINGS: std::collections::BTreeMap<String, drydock_model::NodeSettings> = std::collections::BTreeMap::new();
