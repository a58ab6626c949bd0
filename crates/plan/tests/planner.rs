//! The planner, case by case: a small configuration, a state and an observed cloud (the
//! world a first plan leaves when applied, `drydock_testgen::applied_world`, edited by hand
//! for drift and crashes), and the plan it gives, rendered compactly from the plan's data.
//! Refresh the expectations with `UPDATE_EXPECT=1 cargo test -p drydock-plan --test planner`.
//!
//! Generation ids are hashes of the spec's serialisation: the rendering names them `<g1>`,
//! `<g2>`… (those already in the cloud first, oldest first; then in order of appearance), so
//! that the expectations are about what the planner decides, not about how a spec is hashed.

use std::collections::BTreeMap;

use drydock_config::{Inputs, Model};
use drydock_plan::{plan, Change, Plan, PlanError, PlanInput};
use drydock_provider::{Instance, InstanceState, Observed, ObservedGroup, Ownership};
use drydock_state::{NodeGroupState, State};
use expect_test::{expect, Expect};

const LINEAGE: &str = "c0ffee00-1111-4222-8333-444455556666";

/// One cluster, one worker group of three nodes.
const WORKERS: &str = r#"
provider "sim" {
  boot_time = 2s
}

cluster "demo" {
  kubernetes_version = "1.31"
  tags               = { team = "platform" }

  network {
    subnets = ["subnet-a", "subnet-b"]
  }

  node_group "workers" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 3
  }
}
"#;

/// A control plane of three members and a worker group, with rollout defaults that the
/// control plane must not use.
const WITH_CONTROL_PLANE: &str = r#"
provider "sim" {
  boot_time = 2s
}

cluster "demo" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }

  defaults {
    image         = "img-1"
    instance_type = "m6i.large"
    rollout {
      max_surge       = 2
      max_unavailable = 1
    }
  }

  node_group "cp" {
    role = "control-plane"
    size = 3
  }

  node_group "workers" {
    size = 4
  }
}
"#;

// ---------------------------------------------------------------------------------------
// The harness.

/// The model of a configuration, loaded from a file in a temporary directory.
fn model(src: &str) -> Model {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.kcl"), src).unwrap();
    let loaded = drydock_config::load(dir.path(), &Inputs::default());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.model.expect("a model")
}

/// `src` with `from` replaced by `to`; `from` must be there.
fn edit(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "{from:?} is not in the configuration");
    src.replacen(from, to, 1)
}

/// What the planner reads besides the configuration.
struct World {
    state: Option<State>,
    observed: BTreeMap<String, Observed>,
}

impl World {
    /// No state, and nothing in the cloud.
    fn empty() -> World {
        World { state: None, observed: BTreeMap::from([("sim".to_string(), Observed::default())]) }
    }

    /// The state and cloud once the plan of `src` against nothing is applied in full.
    fn applied(src: &str) -> World {
        let (state, observed) = drydock_testgen::applied_world(&plan_of(src, &World::empty()));
        World { state: Some(state), observed }
    }

    fn groups_mut(&mut self) -> &mut Vec<ObservedGroup> {
        &mut self.observed.get_mut("sim").unwrap().groups
    }

    /// The one cloud group of a (worker) node group.
    fn group_mut(&mut self, node_group: &str) -> &mut ObservedGroup {
        let mut found = self.groups_mut().iter_mut().filter(|g| g.ownership.node_group == node_group);
        let g = found.next().unwrap_or_else(|| panic!("no group of {node_group}"));
        assert!(found.next().is_none(), "{node_group} has more than one group");
        g
    }

    fn node_group_state_mut(&mut self, node_group: &str) -> &mut NodeGroupState {
        let state = self.state.as_mut().unwrap();
        state.clusters.get_mut("cluster.demo").unwrap().node_groups.get_mut(&ng(node_group)).unwrap()
    }
}

fn ng(name: &str) -> String {
    format!("cluster.demo.node_group.{name}")
}

fn input<'a>(model: &'a Model, world: &'a World, destroy: bool, boot: &'a BTreeMap<String, u64>) -> PlanInput<'a> {
    PlanInput {
        model,
        state: world.state.as_ref(),
        lineage: world.state.as_ref().map_or(LINEAGE, |s| s.lineage.as_str()),
        observed: &world.observed,
        boot_estimate_ms: boot,
        config_digest: "digest".into(),
        config_path: "main.kcl".into(),
        destroy,
        refreshed: true,
        kubernetes: &NO_KUBE,
        replace: &NO_REPLACE,
        specs: &NO_SPECS,
        foreign: &NO_FOREIGN,
        settings: &NO_SETTINGS,
        now_ms: BTreeMap::from([("sim".to_string(), 10_000)]),
    }
}

fn try_plan(src: &str, world: &World, destroy: bool) -> Result<Plan, Vec<PlanError>> {
    let model = model(src);
    let boot = BTreeMap::from([("sim".to_string(), 3_000)]);
    plan(&input(&model, world, destroy, &boot))
}

fn plan_of(src: &str, world: &World) -> Plan {
    try_plan(src, world, false).unwrap_or_else(|e| panic!("planning failed: {e:?}"))
}

/// Plans `src` against `world` and checks the rendered plan.
fn check(src: &str, world: &World, expected: Expect) {
    expected.assert_eq(&render(&plan_of(src, world), world));
}

// ---------------------------------------------------------------------------------------
// The rendering: only the plan's data, values as the text they hold.

/// An attribute's value as JSON text (`"img-1"`, `3`); `(none)` when absent.
fn text(v: &Option<serde_json::Value>) -> String {
    v.as_ref().map_or_else(|| "(none)".to_string(), |v| v.to_string())
}

/// A drift's value: a string as it is (`free`, `exists`), anything else as JSON text.
fn words(v: &Option<serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        other => text(other),
    }
}

/// An enum as the word it serialises to: `rollout`, `control-plane`, `ec2`.
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v).expect("serialises") {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

/// The plan as text. Generation ids are masked, those of `world` numbered first (oldest first).
fn render(plan: &Plan, world: &World) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        out += &format!("{} {} ({}, replicas {})", word(&c.kind()), c.address, word(&c.role), c.replicas);
        if !c.depends_on.is_empty() {
            out += &format!(" after [{}]", list(&c.depends_on));
        }
        out += "\n";
        for r in &c.reasons {
            let forces = if r.forces_replacement { " [forces replacement]" } else { "" };
            out += &format!("  {}: {} -> {}{forces}\n", r.path, text(&r.before), text(&r.after));
        }
        if let Some(t) = c.target() {
            let generation = if t.generation.is_empty() { "(none)" } else { t.generation.as_str() };
            out += &format!("  target generation {generation}\n");
            for g in &t.groups {
                let s = &g.settings;
                let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out += &format!(
                    "    group {} exists={} min={} max={} desired={} subnets=[{}] tags={{{}}} health={}/{}ms\n",
                    g.name,
                    g.exists,
                    s.min,
                    s.max,
                    s.desired,
                    list(&s.subnets),
                    tags.join(", "),
                    word(&s.health_check),
                    s.grace_period_ms
                );
            }
        }
        if !c.retire().is_empty() {
            out += &format!("  retire [{}]\n", list(c.retire()));
        }
        for w in &c.waves {
            out += &format!(
                "  wave {}: remove_first=[{}] add={} remove_after=[{}] floor={} ceiling={}\n",
                w.index,
                list(&w.remove_first),
                w.add,
                list(&w.remove_after),
                w.floor,
                w.ceiling
            );
        }
    }
    if plan.changes.is_empty() {
        out += "no changes\n";
    }
    for d in &plan.drift {
        out +=
            &format!("drift {} {}: {} -> {} => {}\n", d.address, d.path, words(&d.before), words(&d.after), d.action);
    }
    for c in &plan.clusters {
        out += &format!(
            "cluster {} provider={} keep={} disruption_budget={}\n",
            c.address, c.provider, c.keep, c.disruption_budget
        );
    }
    let mut known: Vec<&ObservedGroup> = world.observed.values().flat_map(|o| &o.groups).collect();
    known.sort_by_key(|g| (g.created_at_ms, g.name.clone()));
    mask_generations(&out, known.iter().map(|g| g.ownership.generation.clone()).collect())
}

/// Replaces each generation id (a word of exactly 10 lowercase hex digits) by `<gN>`: the
/// `known` ones first, then the others in order of first appearance.
fn mask_generations(text: &str, known: Vec<String>) -> String {
    let mut names: Vec<String> = vec![];
    for k in known {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut flush = |word: &mut String, out: &mut String| {
        if word.len() == 10 && word.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            let n = match names.iter().position(|x| x == word) {
                Some(n) => n,
                None => {
                    names.push(word.clone());
                    names.len() - 1
                }
            };
            out.push_str(&format!("<g{}>", n + 1));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The change of `address`, which must be an update in place: its target groups all exist,
/// nothing retires, no wave replaces a node.
fn in_place_update<'a>(plan: &'a Plan, world: &World, address: &str) -> &'a Change {
    let rendered = render(plan, world);
    let c = plan.changes.iter().find(|c| c.address == address);
    let c = c.unwrap_or_else(|| panic!("no change for {address}:\n{rendered}"));
    assert_eq!(word(&c.kind()), "update", "{rendered}");
    let t = c.target().unwrap_or_else(|| panic!("an update without a target:\n{rendered}"));
    assert!(t.groups.iter().all(|g| g.exists), "{rendered}");
    assert!(c.retire().is_empty() && c.waves.is_empty(), "{rendered}");
    c
}

/// A healthy running instance in `zone`.
fn instance(id: &str, zone: &str, image: &str) -> Instance {
    Instance {
        id: id.into(),
        zone: zone.into(),
        subnet: "subnet-a".into(),
        image: image.into(),
        instance_type: "m6i.large".into(),
        state: InstanceState::Running,
        healthy: true,
        launched_at_ms: 5_000,
        healthy_at_ms: Some(6_000),
    }
}

// ---------------------------------------------------------------------------------------
// Every action.

#[test]
fn a_new_node_group_is_created_with_all_its_nodes_in_one_wave() {
    check(
        WORKERS,
        &World::empty(),
        expect![[r#"
            create cluster.demo.node_group.workers (worker, replicas 3)
              capacity_type: (none) -> "on-demand"
              image: (none) -> "img-1"
              instance_types: (none) -> ["m6i.large"]
              kubernetes_version: (none) -> "1.31"
              metadata.hop_limit: (none) -> 2
              metadata.http_tokens_required: (none) -> true
              role: (none) -> "worker"
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=false min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
              wave 1: remove_first=[] add=3 remove_after=[] floor=0 ceiling=3
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_node_group_added_to_an_applied_configuration_is_created_alone() {
    let world = World::applied(WORKERS);
    let src = edit(
        WORKERS,
        "    size          = 3\n  }\n",
        "    size          = 3\n  }\n\n  node_group \"batch\" {\n    image         = \"img-1\"\n    instance_type = \"c6i.large\"\n    size          = 2\n  }\n",
    );
    check(
        &src,
        &world,
        expect![[r#"
            create cluster.demo.node_group.batch (worker, replicas 2)
              capacity_type: (none) -> "on-demand"
              image: (none) -> "img-1"
              instance_types: (none) -> ["c6i.large"]
              kubernetes_version: (none) -> "1.31"
              metadata.hop_limit: (none) -> 2
              metadata.http_tokens_required: (none) -> true
              role: (none) -> "worker"
              target generation <g2>
                group c0ffee-demo-batch-<g2> exists=false min=2 max=2 desired=2 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
              wave 1: remove_first=[] add=2 remove_after=[] floor=0 ceiling=2
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn an_image_change_rolls_out_a_new_generation_in_waves() {
    let world = World::applied(WORKERS);
    check(
        &edit(WORKERS, "\"img-1\"", "\"img-2\""),
        &world,
        expect![[r#"
            rollout cluster.demo.node_group.workers (worker, replicas 3)
              image: "img-1" -> "img-2" [forces replacement]
              target generation <g2>
                group c0ffee-demo-workers-<g2> exists=false min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
              retire [c0ffee-demo-workers-<g1>]
              wave 1: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-0] floor=3 ceiling=4
              wave 2: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-1] floor=3 ceiling=4
              wave 3: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-2] floor=3 ceiling=4
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_size_change_updates_in_place_and_never_rolls_out() {
    let world = World::applied(WORKERS);
    check(
        &edit(WORKERS, "size          = 3", "size          = 5"),
        &world,
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 5)
              max: 3 -> 5
              min: 3 -> 5
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=5 max=5 desired=5 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_tags_change_updates_in_place_and_never_rolls_out() {
    let world = World::applied(WORKERS);
    let src = edit(WORKERS, "size          = 3", "size          = 3\n    tags          = { cost = \"batch\" }");
    check(
        &src,
        &world,
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 3)
              tags.cost: (none) -> "batch"
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={cost=batch, team=platform} health=ec2/90000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_health_change_updates_in_place_and_never_rolls_out() {
    let world = World::applied(WORKERS);
    let src = edit(
        WORKERS,
        "size          = 3",
        "size          = 3\n    health {\n      check        = \"elb\"\n      grace_period = 30s\n    }",
    );
    check(
        &src,
        &world,
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 3)
              health.check: "ec2" -> "elb"
              health.grace_period: "1m30s" -> "30s"
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=elb/30000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// `docs/language.md` lists the cluster's `tags` among the in-place settings, and the
/// planner puts them on every group of the cluster (with the node group's own tags): a
/// change must update the groups in place.
#[test]
fn a_cluster_tags_change_updates_its_groups_in_place() {
    let world = World::applied(WORKERS);
    let plan = plan_of(&edit(WORKERS, "team = \"platform\"", "team = \"infra\""), &world);
    let c = in_place_update(&plan, &world, &ng("workers"));
    for g in &c.target().unwrap().groups {
        assert_eq!(g.settings.tags.get("team").map(String::as_str), Some("infra"), "{}", render(&plan, &world));
    }
    // The reason names the tag, from what the cloud has to what the cluster now sets.
    let r = c.reasons.iter().find(|r| r.path == "tags.team").unwrap_or_else(|| panic!("{}", render(&plan, &world)));
    assert_eq!(
        (r.before.as_ref().and_then(|v| v.as_str()), r.after.as_ref().and_then(|v| v.as_str()), r.forces_replacement),
        (Some("platform"), Some("infra"), false)
    );
}

#[test]
fn a_node_group_removed_from_the_configuration_is_deleted() {
    let two = edit(
        WORKERS,
        "    size          = 3\n  }\n",
        "    size          = 3\n  }\n\n  node_group \"batch\" {\n    image         = \"img-1\"\n    instance_type = \"c6i.large\"\n    size          = 2\n  }\n",
    );
    let world = World::applied(&two);
    check(
        WORKERS,
        &world,
        expect![[r#"
            delete cluster.demo.node_group.batch (worker, replicas 0)
              retire [c0ffee-demo-batch-<g1>]
              wave 1: remove_first=[i-c0ffee-demo-batch-<g1>-0, i-c0ffee-demo-batch-<g1>-1] add=0 remove_after=[] floor=0 ceiling=0
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_cluster_removed_from_the_configuration_is_deleted_and_forgotten() {
    let two = format!("{WORKERS}\n{}", edit(&WORKERS[WORKERS.find("cluster").unwrap()..], "\"demo\"", "\"old\""));
    let world = World::applied(&two);
    check(
        WORKERS,
        &world,
        expect![[r#"
            delete cluster.old.node_group.workers (worker, replicas 0)
              retire [c0ffee-old-workers-<g1>]
              wave 1: remove_first=[i-c0ffee-old-workers-<g1>-0, i-c0ffee-old-workers-<g1>-1, i-c0ffee-old-workers-<g1>-2] add=0 remove_after=[] floor=0 ceiling=0
            cluster cluster.demo provider=sim keep=true disruption_budget=1
            cluster cluster.old provider=sim keep=false disruption_budget=0
        "#]],
    );
}

#[test]
fn a_destroy_plan_deletes_every_node_group_workers_before_the_control_plane() {
    let world = World::applied(WITH_CONTROL_PLANE);
    let plan = try_plan(WITH_CONTROL_PLANE, &world, true).unwrap();
    expect![[r#"
        delete cluster.demo.node_group.cp (control-plane, replicas 0) after [cluster.demo.node_group.workers]
          retire [c0ffee-demo-cp-<g1>-m0, c0ffee-demo-cp-<g1>-m1, c0ffee-demo-cp-<g1>-m2]
          wave 1: remove_first=[i-c0ffee-demo-cp-<g1>-m0-0, i-c0ffee-demo-cp-<g1>-m1-0, i-c0ffee-demo-cp-<g1>-m2-0] add=0 remove_after=[] floor=0 ceiling=0
        delete cluster.demo.node_group.workers (worker, replicas 0)
          retire [c0ffee-demo-workers-<g2>]
          wave 1: remove_first=[i-c0ffee-demo-workers-<g2>-0, i-c0ffee-demo-workers-<g2>-1, i-c0ffee-demo-workers-<g2>-2, i-c0ffee-demo-workers-<g2>-3] add=0 remove_after=[] floor=0 ceiling=0
        cluster cluster.demo provider=sim keep=false disruption_budget=0
    "#]].assert_eq(&render(&plan, &world));
}

// ---------------------------------------------------------------------------------------
// No phantom rollouts.

const QUICKSTART: &str = r##"
# like examples/quickstart
provider "sim" {
  boot_time = 2s
}

variable "worker_image" {
  type    = string
  default = "img-worker-2026-11"
}

locals {
  tags = { team = "platform", env = "dev" }
}

cluster "demo" {
  kubernetes_version = "1.31"
  tags               = local.tags

  network {
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }

  defaults {
    instance_type = "m6i.large"
    rollout {
      max_surge       = 1
      max_unavailable = 0
    }
  }

  node_group "control-plane" {
    role  = "control-plane"
    image = "img-cp-2026-11"
    size  = 3
  }

  node_group "workers" {
    image         = var.worker_image
    instance_type = "m6i.xlarge"
    size          = 3..10
    desired       = 4
    labels        = { "node.kubernetes.io/pool" = "general" }
    user_data     = "#!/bin/sh\necho hello\n"

    rollout {
      max_surge       = 25%
      max_unavailable = 0
      health_timeout  = 10m
    }

    health {
      check         = "ec2"
      grace_period  = 90s
      max_unhealthy = 40%
    }
  }
}
"##;

/// The same meaning, written differently: another layout and comments, attributes in another
/// order, the variable renamed, values moved into locals and `defaults`, the duration and the
/// user data spelt differently.
const QUICKSTART_REWRITTEN: &str = r##"
provider "sim" { boot_time = 2000ms }

variable "image_for_workers" {
  default = "img-worker-2026-11"
  type    = string
}

locals {
  zones = ["a", "b", "c"]
  tags  = { env = "dev", team = "platform" } // same map, other order
}

cluster "demo" {
  tags               = local.tags
  kubernetes_version = "1.${31}"

  defaults {
    rollout {
      max_unavailable = 0
      max_surge       = 1
    }
    instance_type = "m6i.large"
  }

  network { subnets = [for z in local.zones : "subnet-${z}"] }

  node_group "workers" {
    health {
      max_unhealthy = 40%
      grace_period  = 1m30s
    }
    rollout {
      health_timeout  = 600s
      max_unavailable = 0
      max_surge       = 25%
    }
    user_data     = <<-EOT
      #!/bin/sh
      echo hello
    EOT
    labels        = { "node.kubernetes.io/pool" = "gen${"eral"}" }
    desired       = 2 + 2
    size          = 3..10
    instance_type = "m6i.xlarge"
    image         = var.image_for_workers
  }

  node_group "control-plane" {
    size  = 3
    image = "img-cp-2026-11"
    role  = "control-plane"
  }
}
"##;

#[test]
fn an_applied_configuration_plans_no_change() {
    let world = World::applied(QUICKSTART);
    check(
        QUICKSTART,
        &world,
        expect![[r#"
            no changes
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_reformatted_configuration_with_a_renamed_variable_plans_no_change() {
    // Both spellings mean the same model.
    assert_eq!(strip_spans(model(QUICKSTART)), strip_spans(model(QUICKSTART_REWRITTEN)));
    let world = World::applied(QUICKSTART);
    check(
        QUICKSTART_REWRITTEN,
        &world,
        expect![[r#"
            no changes
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// The model without what depends on the layout (spans) or on names outside node groups.
fn strip_spans(m: Model) -> Vec<String> {
    m.clusters
        .iter()
        .flat_map(|c| {
            c.node_groups.iter().map(move |n| {
                format!("{} {:?} {:?} {:?} {:?} {:?}", n.address, n.role, n.spec, n.settings, c.tags, c.subnets)
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Drift: the cloud changed by hand.

#[test]
fn a_pinned_desired_changed_in_the_cloud_is_drift_restored_in_place() {
    let src = edit(WORKERS, "size          = 3", "size          = 2..6\n    desired       = 3");
    let mut world = World::applied(&src);
    let g = world.group_mut("workers");
    g.settings.desired = 5;
    let name = g.name.clone();
    g.instances.push(instance(&format!("i-{name}-3"), "zone-a", "img-1"));
    g.instances.push(instance(&format!("i-{name}-4"), "zone-b", "img-1"));
    check(
        &src,
        &world,
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 3)
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=2 max=6 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
            drift cluster.demo.node_group.workers desired: 3 -> 5 => restored in place by apply
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_group_deleted_in_the_cloud_is_drift_and_created_again() {
    let mut world = World::applied(WORKERS);
    world.groups_mut().clear();
    check(
        WORKERS,
        &world,
        expect![[r#"
            create cluster.demo.node_group.workers (worker, replicas 3)
              capacity_type: (none) -> "on-demand"
              image: (none) -> "img-1"
              instance_types: (none) -> ["m6i.large"]
              kubernetes_version: (none) -> "1.31"
              metadata.hop_limit: (none) -> 2
              metadata.http_tokens_required: (none) -> true
              role: (none) -> "worker"
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=false min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
              wave 1: remove_first=[] add=3 remove_after=[] floor=0 ceiling=3
            drift cluster.demo.node_group.workers groups.c0ffee-demo-workers-<g1>: exists -> missing (deleted outside drydock) => recreated by apply
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// The drift says "restored in place by apply", so the plan must hold the update that does it
/// (as it does for a pinned desired capacity changed by hand).
#[test]
fn tags_changed_in_the_cloud_are_drift_restored_in_place() {
    let src = edit(WORKERS, "size          = 3", "size          = 3\n    tags          = { cost = \"batch\" }");
    let mut world = World::applied(&src);
    let g = world.group_mut("workers");
    g.settings.tags.insert("cost".into(), "free".into());
    let plan = plan_of(&src, &world);
    let rendered = render(&plan, &world);
    assert!(
        rendered
            .contains("drift cluster.demo.node_group.workers tags.cost: batch -> free => restored in place by apply"),
        "{rendered}"
    );
    let c = in_place_update(&plan, &world, &ng("workers"));
    for g in &c.target().unwrap().groups {
        assert_eq!(g.settings.tags.get("cost").map(String::as_str), Some("batch"), "{rendered}");
    }
}

/// A tag the provider manages itself (`kubernetes.io/cluster/…`, `drydock:…`) may be shown
/// otherwise by the cloud, or not at all: never a change, never drift.
#[test]
fn provider_managed_tags_are_the_providers() {
    let src = edit(
        WORKERS,
        "tags               = { team = \"platform\" }",
        "tags               = { team = \"platform\", \"kubernetes.io/cluster/demo\" = \"owned\" }",
    );
    let mut world = World::applied(&src);
    world.group_mut("workers").settings.tags.remove("kubernetes.io/cluster/demo");
    let plan = plan_of(&src, &world);
    assert!(plan.changes.is_empty() && plan.drift.is_empty(), "{}", render(&plan, &world));
}

/// A tag whose value derives from a sensitive variable stays sensitive when it drifts, and
/// when a change of the cluster's tags updates it in place.
#[test]
fn a_sensitive_tags_drift_and_change_are_marked_sensitive() {
    let src = edit(
        WORKERS,
        "cluster \"demo\" {",
        "variable \"token\" {\n  type      = string\n  sensitive = true\n  default   = \"s3cr3t\"\n}\n\ncluster \"demo\" {",
    );
    let src = edit(&src, "size          = 3", "size          = 3\n    tags          = { token = var.token }");
    let mut world = World::applied(&src);
    world.group_mut("workers").settings.tags.insert("token".into(), "leaked".into());
    let plan = plan_of(&src, &world);
    let d = plan.drift.iter().find(|d| d.path == "tags.token").expect("the tag's drift is reported");
    assert!(d.sensitive, "{d:?}");
    // Through a change of the cluster's tags too.
    let src = edit(&src, "tags               = { team = \"platform\" }", "tags               = { team = var.token }");
    let world = World::applied(&edit(&src, "team = var.token", "team = \"platform\""));
    let plan = plan_of(&src, &world);
    let c = plan.changes.iter().find(|c| c.address == ng("workers")).expect("an update");
    let r = c.reasons.iter().find(|r| r.path == "tags.team").expect("the tag's change");
    assert!(r.sensitive, "{r:?}");
}

// ---------------------------------------------------------------------------------------
// Crashes: the cloud is the truth about what exists.

/// A run created the group of a new node group and died before writing the state.
#[test]
fn a_crashed_runs_group_is_adopted_not_created_again() {
    let two = edit(
        WORKERS,
        "    size          = 3\n  }\n",
        "    size          = 3\n  }\n\n  node_group \"batch\" {\n    image         = \"img-1\"\n    instance_type = \"c6i.large\"\n    size          = 2\n  }\n",
    );
    let mut world = World::applied(&two);
    world.state.as_mut().unwrap().clusters.get_mut("cluster.demo").unwrap().node_groups.remove(&ng("batch"));
    check(
        &two,
        &world,
        expect![[r#"
            update cluster.demo.node_group.batch (worker, replicas 2)
              recorded groups: "" -> "c0ffee-demo-batch-<g1>"
              target generation <g1>
                group c0ffee-demo-batch-<g1> exists=true min=2 max=2 desired=2 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// The first apply made the groups and lost its state.
#[test]
fn groups_of_a_lost_first_state_are_adopted() {
    let mut world = World::applied(WORKERS);
    world.state = None;
    check(
        WORKERS,
        &world,
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 3)
              recorded groups: "" -> "c0ffee-demo-workers-<g1>"
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// A rollout died after its new group had one healthy node: the state records only the old
/// generation; the plan resumes with the new group as it is.
#[test]
fn a_crashed_rollout_resumes_with_the_new_group_it_made() {
    let v2 = edit(WORKERS, "\"img-1\"", "\"img-2\"");
    let mut world = World::applied(WORKERS);
    let (_, v2_cloud) = drydock_testgen::applied_world(&plan_of(&v2, &World::empty()));
    let mut new = v2_cloud["sim"].groups[0].clone();
    new.instances.truncate(1);
    new.settings.desired = 1;
    new.created_at_ms = 1;
    world.groups_mut().push(new);
    check(
        &v2,
        &world,
        expect![[r#"
            rollout cluster.demo.node_group.workers (worker, replicas 3)
              image: "img-1" -> "img-2" [forces replacement]
              target generation <g2>
                group c0ffee-demo-workers-<g2> exists=true min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
              retire [c0ffee-demo-workers-<g1>]
              wave 1: remove_first=[i-c0ffee-demo-workers-<g1>-0] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-1] floor=3 ceiling=4
              wave 2: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-2] floor=3 ceiling=4
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_group_of_this_lineage_that_nothing_configures_is_deleted() {
    let mut world = World::applied(WORKERS);
    let mut orphan = world.group_mut("workers").clone();
    orphan.name = "c0ffee-demo-legacy-0123456789".into();
    orphan.ownership = Ownership {
        lineage: LINEAGE.into(),
        cluster: "demo".into(),
        node_group: "legacy".into(),
        generation: "0123456789".into(),
    };
    orphan.instances.truncate(2);
    for (k, i) in orphan.instances.iter_mut().enumerate() {
        i.id = format!("i-legacy-{k}");
    }
    world.groups_mut().push(orphan);
    check(
        WORKERS,
        &world,
        expect![[r#"
            delete cluster.demo.node_group.legacy (worker, replicas 0)
              retire [c0ffee-demo-legacy-<g1>]
              wave 1: remove_first=[i-legacy-0, i-legacy-1] add=0 remove_after=[] floor=0 ceiling=0
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn an_interrupted_apply_is_finished() {
    let mut world = World::applied(WORKERS);
    world.node_group_state_mut("workers").unfinished = true;
    // Its nodes were still booting when the run stopped.
    let g = world.group_mut("workers");
    g.instances[2].state = InstanceState::Pending;
    g.instances[2].healthy = false;
    check(
        WORKERS,
        &world,
        expect![[r#"
            resume cluster.demo.node_group.workers (worker, replicas 3)
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=3 max=3 desired=3 subnets=[subnet-a, subnet-b] tags={team=platform} health=ec2/90000ms
            drift cluster.demo.node_group.workers apply: complete -> interrupted => finished by apply (an earlier apply stopped half-way)
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

// ---------------------------------------------------------------------------------------
// Control planes.

#[test]
fn a_control_plane_is_created_before_its_workers_one_group_per_member() {
    check(
        WITH_CONTROL_PLANE,
        &World::empty(),
        expect![[r#"
            create cluster.demo.node_group.cp (control-plane, replicas 3)
              capacity_type: (none) -> "on-demand"
              image: (none) -> "img-1"
              instance_types: (none) -> ["m6i.large"]
              kubernetes_version: (none) -> "1.31"
              metadata.hop_limit: (none) -> 2
              metadata.http_tokens_required: (none) -> true
              role: (none) -> "control-plane"
              target generation <g1>
                group c0ffee-demo-cp-<g1>-m0 exists=false min=1 max=1 desired=1 subnets=[subnet-a] tags={} health=ec2/90000ms
                group c0ffee-demo-cp-<g1>-m1 exists=false min=1 max=1 desired=1 subnets=[subnet-b] tags={} health=ec2/90000ms
                group c0ffee-demo-cp-<g1>-m2 exists=false min=1 max=1 desired=1 subnets=[subnet-c] tags={} health=ec2/90000ms
              wave 1: remove_first=[] add=3 remove_after=[] floor=0 ceiling=3
            create cluster.demo.node_group.workers (worker, replicas 4) after [cluster.demo.node_group.cp]
              capacity_type: (none) -> "on-demand"
              image: (none) -> "img-1"
              instance_types: (none) -> ["m6i.large"]
              kubernetes_version: (none) -> "1.31"
              metadata.hop_limit: (none) -> 2
              metadata.http_tokens_required: (none) -> true
              role: (none) -> "worker"
              target generation <g2>
                group c0ffee-demo-workers-<g2> exists=false min=4 max=4 desired=4 subnets=[subnet-a, subnet-b, subnet-c] tags={} health=ec2/90000ms
              wave 1: remove_first=[] add=4 remove_after=[] floor=0 ceiling=4
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_control_plane_rolls_one_member_at_a_time_before_its_workers() {
    let world = World::applied(WITH_CONTROL_PLANE);
    check(
        &edit(WITH_CONTROL_PLANE, "\"img-1\"", "\"img-2\""),
        &world,
        expect![[r#"
            rollout cluster.demo.node_group.cp (control-plane, replicas 3)
              image: "img-1" -> "img-2" [forces replacement]
              target generation <g3>
                group c0ffee-demo-cp-<g3>-m0 exists=false min=1 max=1 desired=1 subnets=[subnet-a] tags={} health=ec2/90000ms
                group c0ffee-demo-cp-<g3>-m1 exists=false min=1 max=1 desired=1 subnets=[subnet-b] tags={} health=ec2/90000ms
                group c0ffee-demo-cp-<g3>-m2 exists=false min=1 max=1 desired=1 subnets=[subnet-c] tags={} health=ec2/90000ms
              retire [c0ffee-demo-cp-<g1>-m0, c0ffee-demo-cp-<g1>-m1, c0ffee-demo-cp-<g1>-m2]
              wave 1: remove_first=[] add=1 remove_after=[i-c0ffee-demo-cp-<g1>-m0-0] floor=3 ceiling=4
              wave 2: remove_first=[] add=1 remove_after=[i-c0ffee-demo-cp-<g1>-m1-0] floor=3 ceiling=4
              wave 3: remove_first=[] add=1 remove_after=[i-c0ffee-demo-cp-<g1>-m2-0] floor=3 ceiling=4
            rollout cluster.demo.node_group.workers (worker, replicas 4) after [cluster.demo.node_group.cp]
              image: "img-1" -> "img-2" [forces replacement]
              target generation <g4>
                group c0ffee-demo-workers-<g4> exists=false min=4 max=4 desired=4 subnets=[subnet-a, subnet-b, subnet-c] tags={} health=ec2/90000ms
              retire [c0ffee-demo-workers-<g2>]
              wave 1: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g2>-0] floor=4 ceiling=5
              wave 2: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g2>-1] floor=4 ceiling=5
              wave 3: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g2>-2] floor=4 ceiling=5
              wave 4: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g2>-3] floor=4 ceiling=5
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

// ---------------------------------------------------------------------------------------
// The autoscaler owns an unpinned desired capacity inside `size`.

const AUTOSCALED: &str = r#"
provider "sim" {
  boot_time = 2s
}

cluster "demo" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
  }

  node_group "workers" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 3..10
  }
}
"#;

fn scaled_to_7() -> World {
    let mut world = World::applied(AUTOSCALED);
    let g = world.group_mut("workers");
    assert_eq!(g.settings.desired, 3);
    g.settings.desired = 7;
    let name = g.name.clone();
    for k in 3..7 {
        g.instances.push(instance(&format!("i-{name}-{k}"), ["zone-a", "zone-b", "zone-c"][k % 3], "img-1"));
    }
    world
}

#[test]
fn desired_moved_by_the_autoscaler_is_neither_drift_nor_planned() {
    check(
        AUTOSCALED,
        &scaled_to_7(),
        expect![[r#"
            no changes
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_rollout_of_an_autoscaled_group_keeps_the_autoscalers_desired() {
    check(
        &edit(AUTOSCALED, "\"img-1\"", "\"img-2\""),
        &scaled_to_7(),
        expect![[r#"
            rollout cluster.demo.node_group.workers (worker, replicas 7)
              image: "img-1" -> "img-2" [forces replacement]
              target generation <g2>
                group c0ffee-demo-workers-<g2> exists=false min=3 max=10 desired=7 subnets=[subnet-a, subnet-b, subnet-c] tags={} health=ec2/90000ms
              retire [c0ffee-demo-workers-<g1>]
              wave 1: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-0] floor=7 ceiling=8
              wave 2: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-1] floor=7 ceiling=8
              wave 3: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-2] floor=7 ceiling=8
              wave 4: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-3] floor=7 ceiling=8
              wave 5: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-6] floor=7 ceiling=8
              wave 6: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-4] floor=7 ceiling=8
              wave 7: remove_first=[] add=1 remove_after=[i-c0ffee-demo-workers-<g1>-5] floor=7 ceiling=8
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

#[test]
fn a_size_change_of_an_autoscaled_group_keeps_the_autoscalers_desired() {
    check(
        &edit(AUTOSCALED, "3..10", "2..12"),
        &scaled_to_7(),
        expect![[r#"
            update cluster.demo.node_group.workers (worker, replicas 7)
              max: 10 -> 12
              min: 3 -> 2
              target generation <g1>
                group c0ffee-demo-workers-<g1> exists=true min=2 max=12 desired=7 subnets=[subnet-a, subnet-b, subnet-c] tags={} health=ec2/90000ms
            cluster cluster.demo provider=sim keep=true disruption_budget=1
        "#]],
    );
}

/// No cluster has a Kubernetes API here.
static NO_KUBE: std::collections::BTreeMap<String, drydock_plan::kube::KubeObserved> =
    std::collections::BTreeMap::new();
static NO_REPLACE: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
static NO_SPECS: std::collections::BTreeMap<String, drydock_provider::GenerationSpec> =
    std::collections::BTreeMap::new();
static NO_FOREIGN: std::collections::BTreeMap<String, drydock_provider::Observed> = std::collections::BTreeMap::new();
static NO_SETTINGS: std::collections::BTreeMap<String, drydock_model::NodeSettings> = std::collections::BTreeMap::new();
