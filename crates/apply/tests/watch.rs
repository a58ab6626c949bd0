//! Watch's decisions, data-driven: a cluster described in a few lines (node groups, their
//! instances and health settings), the time, and what `decide` returns, rendered one line
//! per decision. `UPDATE_EXPECT=1 cargo test -p drydock-apply --test watch` refreshes them.

use std::collections::BTreeMap;

use drydock_apply::watch::{decide, Decisions, Input};
use drydock_model::{Health, HealthCheck, IntOrPercent, NodeSettings, Role, Rollout};
use drydock_plan::{Action, AttrChange, Change, Drift, Plan, Reason, Target};
use drydock_provider::{GenerationSpec, GroupSettings, Instance, InstanceState, Observed, ObservedGroup, Ownership};
use drydock_state::{ClusterState, GenerationState, NodeGroupState, State};
use expect_test::{expect, Expect};

/// One node group: its name, role, `max_unhealthy`, and its instances as `id:STATE` where
/// STATE is `ok` (running, healthy), `bad` (running, unhealthy) or `pending@T` (launched at T).
struct Group {
    name: &'static str,
    role: Role,
    max_unhealthy: IntOrPercent,
    instances: &'static [&'static str],
}

fn worker(name: &'static str, max_unhealthy: u32, instances: &'static [&'static str]) -> Group {
    Group { name, role: Role::Worker, max_unhealthy: IntOrPercent::Int(max_unhealthy), instances }
}

fn settings(max_unhealthy: IntOrPercent) -> NodeSettings {
    NodeSettings {
        min: 0,
        max: 10,
        desired: None,
        tags: BTreeMap::new(),
        subnets: vec![],
        health: Health {
            check: HealthCheck::Ec2,
            grace_period_ms: 0,
            max_unhealthy,
            unhealthy_timeout_ms: 60_000,
            startup_timeout_ms: 600_000,
            node_startup_timeout_ms: drydock_model::DEFAULT_NODE_STARTUP_TIMEOUT_MS,
        },
        rollout: Rollout {
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
            health_timeout_ms: 600_000,
            min_ready_ms: 0,
        },
        drain: Default::default(),
        labels: Default::default(),
        sensitive_tags: Default::default(),
        sensitive_labels: Default::default(),
    }
}

fn address(group: &str) -> String {
    format!("cluster.demo.node_group.{group}")
}

/// The state and the observed cloud of cluster `demo` (provider `sim`) with these groups:
/// one autoscaling group per node group (a control plane's members all in one, which is
/// enough for the decisions), each on its applied generation.
fn world(groups: &[Group]) -> (State, BTreeMap<String, Observed>) {
    let mut state = State::new("lineage".into());
    let mut cluster =
        ClusterState { name: "demo".into(), key: None, provider: "sim".into(), node_groups: BTreeMap::new() };
    let mut observed = Observed::default();
    for g in groups {
        let asg = format!("l-demo-{}-gen1", g.name);
        cluster.node_groups.insert(
            address(g.name),
            NodeGroupState {
                name: g.name.into(),
                key: None,
                role: g.role,
                generations: vec![GenerationState {
                    id: "gen1".into(),
                    spec: serde_json::json!({}),
                    groups: vec![asg.clone()],
                }],
                settings: settings(g.max_unhealthy),
                boot_times_ms: vec![],
                drain_times_ms: vec![],
                unfinished: false,
                history: vec![],
                cloud_owner: None,
            },
        );
        let instances: Vec<Instance> = g
            .instances
            .iter()
            .map(|spec| {
                let (id, how) = spec.split_once(':').unwrap();
                let (state, healthy, launched) = match how {
                    "ok" => (InstanceState::Running, true, 0),
                    "bad" => (InstanceState::Running, false, 0),
                    p => (InstanceState::Pending, false, p.strip_prefix("pending@").unwrap().parse().unwrap()),
                };
                Instance {
                    id: id.into(),
                    zone: "z1".into(),
                    subnet: "s1".into(),
                    image: "img".into(),
                    instance_type: "t".into(),
                    state,
                    healthy,
                    launched_at_ms: launched,
                    healthy_at_ms: None,
                }
            })
            .collect();
        observed.groups.push(ObservedGroup {
            name: asg,
            ownership: Ownership {
                lineage: "lineage".into(),
                cluster: "demo".into(),
                node_group: g.name.into(),
                generation: "gen1".into(),
            },
            spec: GenerationSpec::default(),
            spec_partial: false,
            settings: GroupSettings { desired: instances.len() as u32, max: 10, ..Default::default() },
            instances,
            created_at_ms: 0,
            join_digest: None,
        });
    }
    state.clusters.insert("cluster.demo".into(), cluster);
    (state, BTreeMap::from([("sim".to_string(), observed)]))
}

fn empty_plan() -> Plan {
    Plan {
        format_version: drydock_plan::PLAN_FORMAT_VERSION,
        drydock_version: "test".into(),
        lineage: "lineage".into(),
        state_serial: Some(1),
        config_digest: String::new(),
        config_path: ".".into(),
        destroy: false,
        changes: vec![],
        clusters: vec![],
        drift: vec![],
        warnings: vec![],
        refresh_only: false,
        options: Default::default(),
    }
}

fn render(d: &Decisions) -> String {
    let mut out = String::new();
    for c in &d.repairs {
        out += &format!("repair {} {:?}\n", c.address, c.kind());
    }
    for r in &d.replacements {
        out += &format!("replace {} {} in {} ({})\n", r.id, r.address, r.group, r.why);
    }
    for e in &d.events {
        out += &format!("{} {}: {} ({})\n", e.kind.as_str(), e.address, e.message, e.why.as_deref().unwrap_or(""));
    }
    out += &format!("unhealthy since: {:?}\n", d.unhealthy_since);
    out
}

/// Decides one round over `groups` at `now_ms`, with a cluster budget and earlier sightings.
fn round(groups: &[Group], budget: IntOrPercent, now_ms: u64, since: &[(&str, u64)]) -> Decisions {
    let (state, observed) = world(groups);
    let plan = empty_plan();
    let budgets = BTreeMap::from([("cluster.demo".to_string(), budget)]);
    let since: BTreeMap<String, u64> = since.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    decide(&Input {
        plan: &plan,
        state: &state,
        observed: &observed,
        disruption_budgets: &budgets,
        now_ms,
        unhealthy_since: &since,
        nodes: &NO_NODES,
        etcd: &BTreeMap::new(),
    })
}

fn check(groups: &[Group], budget: u32, now_ms: u64, since: &[(&str, u64)], expect: Expect) {
    expect.assert_eq(&render(&round(groups, IntOrPercent::Int(budget), now_ms, since)));
}

#[test]
fn an_unhealthy_instance_is_replaced_only_after_unhealthy_timeout_from_its_first_sighting() {
    let g = || [worker("workers", 1, &["i-1:ok", "i-2:bad", "i-3:ok"])];
    // First sighting: recorded, not replaced.
    check(
        &g(),
        5,
        100_000,
        &[],
        expect![[r#"
        unhealthy since: {"i-2": 100000}
    "#]],
    );
    // 59.999 s later: still waiting.
    check(
        &g(),
        5,
        159_999,
        &[("i-2", 100_000)],
        expect![[r#"
        unhealthy since: {"i-2": 100000}
    "#]],
    );
    // 60 s after the first sighting (not after this round's start): replaced.
    check(
        &g(),
        5,
        160_000,
        &[("i-2", 100_000)],
        expect![[r#"
        replace i-2 cluster.demo.node_group.workers in l-demo-workers-gen1 (unhealthy too long)
        unhealthy since: {"i-2": 100000}
    "#]],
    );
}

#[test]
fn instances_healthy_again_or_gone_are_forgotten() {
    let g = [worker("workers", 1, &["i-1:ok", "i-2:ok"])];
    check(
        &g,
        5,
        500_000,
        &[("i-2", 100_000), ("i-gone", 1)],
        expect![[r#"
        unhealthy since: {}
    "#]],
    );
}

#[test]
fn the_storm_guard_holds_when_more_than_max_unhealthy_are_unhealthy() {
    let g = [worker("workers", 1, &["i-1:bad", "i-2:bad", "i-3:ok"])];
    check(
        &g,
        5,
        100_000,
        &[("i-1", 0), ("i-2", 0)],
        expect![[r#"
        skipped cluster.demo.node_group.workers: storm guard: 2 of 3 nodes unhealthy, more than max_unhealthy (1) (not replacing: a bad image or a lost zone is not fixed by killing more nodes)
        unhealthy since: {"i-1": 0, "i-2": 0}
    "#]],
    );
    // A percentage rounds down, as in Cluster API: 34% of 2 is 0, so nothing is replaced.
    let g = [Group {
        name: "workers",
        role: Role::Worker,
        max_unhealthy: IntOrPercent::Percent(34.0),
        instances: &["i-1:bad", "i-2:ok"],
    }];
    check(
        &g,
        5,
        100_000,
        &[("i-1", 0)],
        expect![[r#"
        skipped cluster.demo.node_group.workers: storm guard: 1 of 2 nodes unhealthy, more than max_unhealthy (0) (not replacing: a bad image or a lost zone is not fixed by killing more nodes)
        unhealthy since: {"i-1": 0}
    "#]],
    );
}

#[test]
fn a_control_plane_is_remediated_one_member_at_a_time_and_only_with_quorum() {
    let cp =
        |instances| Group { name: "control", role: Role::ControlPlane, max_unhealthy: IntOrPercent::Int(5), instances };
    // Two of five overdue, three healthy (a majority): one member this round.
    check(
        &[cp(&["m-1:bad", "m-2:bad", "m-3:ok", "m-4:ok", "m-5:ok"])],
        5,
        100_000,
        &[("m-1", 0), ("m-2", 0)],
        expect![[r#"
        replace m-1 cluster.demo.node_group.control in l-demo-control-gen1 (unhealthy too long)
        unhealthy since: {"m-1": 0, "m-2": 0}
    "#]],
    );
    // Two of three unhealthy: one healthy member is no majority, so nothing is touched.
    check(
        &[cp(&["m-1:bad", "m-2:bad", "m-3:ok"])],
        5,
        100_000,
        &[("m-1", 0), ("m-2", 0)],
        expect![[r#"
        skipped cluster.demo.node_group.control: quorum: 1 of 3 members healthy, fewer than a majority (2) (not remediating a control plane without quorum automatically)
        unhealthy since: {"m-1": 0, "m-2": 0}
    "#]],
    );
}

#[test]
fn the_disruption_budget_counts_booting_nodes_across_the_cluster() {
    let groups = [
        worker("a", 3, &["a-1:bad", "a-2:ok", "a-3:ok"]),
        worker("b", 3, &["b-1:bad", "b-2:ok", "b-3:ok", "b-4:pending@90000"]),
    ];
    // Budget 2: b-4 is still booting within its startup window, so one replacement fits.
    check(
        &groups,
        2,
        100_000,
        &[("a-1", 0), ("b-1", 0)],
        expect![[r#"
        replace a-1 cluster.demo.node_group.a in l-demo-a-gen1 (unhealthy too long)
        skipped cluster.demo.node_group.b: b-1: the cluster's disruption budget (2 at once) is in use (replaced in a later round)
        unhealthy since: {"a-1": 0, "b-1": 0}
    "#]],
    );
    // A node pending past startup_timeout is replaced, and does not count as booting.
    let stuck = [worker("b", 3, &["b-1:ok", "b-2:pending@0"])];
    check(
        &stuck,
        1,
        700_000,
        &[],
        expect![[r#"
        replace b-2 cluster.demo.node_group.b in l-demo-b-gen1 (pending longer than startup_timeout)
        unhealthy since: {}
    "#]],
    );
    // A percentage budget is of the cluster's live nodes, rounded down, at least one.
    let d = round(&groups, IntOrPercent::Percent(10.0), 100_000, &[("a-1", 0), ("b-1", 0)]);
    assert!(d.replacements.is_empty(), "10% of 7 is 0, and 1 at least is booting already: {d:?}");
}

#[test]
fn repairs_restore_only_what_was_applied() {
    let (state, observed) = world(&[worker("workers", 1, &["i-1:ok"])]);
    // A target of the applied generation (`gen1`) with the applied settings, or of another.
    let target = |generation: &str| Target {
        generation: generation.into(),
        spec: GenerationSpec::default(),
        display_spec: serde_json::json!({}),
        groups: vec![],
        settings: settings(IntOrPercent::Int(1)),
        join_digest: None,
    };
    let change = |action, reasons: Vec<AttrChange>| Change {
        address: address("workers"),
        cluster: "cluster.demo".into(),
        provider: "sim".into(),
        name: "workers".into(),
        key: None,
        role: Role::Worker,
        action,
        reasons,
        replicas: 1,
        waves: vec![],
        eta_ms: 0,
        depends_on: vec![],
        owner_cluster: "demo".into(),
        owner_node_group: "workers".into(),
    };
    let attr = |path: &str, reason, forces| AttrChange {
        path: path.into(),
        before: Some(serde_json::json!(1)),
        after: Some(serde_json::json!(2)),
        reason,
        forces_replacement: forces,
        sensitive: false,
    };
    let mut plan = empty_plan();
    plan.drift.push(Drift {
        address: address("workers"),
        path: "desired".into(),
        before: Some(serde_json::json!(1)),
        after: Some(serde_json::json!(3)),
        sensitive: false,
        action: "restored in place by apply".into(),
    });
    plan.drift.push(Drift {
        address: address("workers"),
        path: "tags.token".into(),
        before: Some(serde_json::json!("s3cr3t")),
        after: Some(serde_json::json!("leaked")),
        sensitive: true,
        action: "restored in place by apply".into(),
    });
    plan.changes = vec![
        // Sizes set by hand, or groups the state misrecords: the update restores them.
        change(Action::Update { target: target("gen1") }, vec![]),
        change(Action::Update { target: target("gen1") }, vec![attr("recorded groups", Reason::StateRecord, false)]),
        // A configuration edit nobody applied.
        change(Action::Update { target: target("gen1") }, vec![attr("max", Reason::Configuration, false)]),
        change(
            Action::Rollout { target: target("gen2"), retire: vec![] },
            vec![attr("image", Reason::Configuration, true)],
        ),
        change(Action::Delete { retire: vec![] }, vec![]),
        // A group deleted outside drydock is recreated as applied; an interrupted apply of
        // the applied generation is finished; either of another generation is not.
        change(Action::Create { target: target("gen1") }, vec![]),
        change(Action::Resume { target: target("gen1") }, vec![]),
        change(Action::Create { target: target("gen2") }, vec![]),
    ];
    let budgets = BTreeMap::new();
    let since = BTreeMap::new();
    let d = decide(&Input {
        plan: &plan,
        state: &state,
        observed: &observed,
        disruption_budgets: &budgets,
        now_ms: 0,
        unhealthy_since: &since,
        nodes: &NO_NODES,
        etcd: &BTreeMap::new(),
    });
    expect![[r#"
        repair cluster.demo.node_group.workers Update
        repair cluster.demo.node_group.workers Update
        repair cluster.demo.node_group.workers Create
        repair cluster.demo.node_group.workers Resume
        detected cluster.demo.node_group.workers: desired = 1 -> 3 (restored in place by apply)
        detected cluster.demo.node_group.workers: tags.token = (sensitive) -> (sensitive) (restored in place by apply)
        skipped cluster.demo.node_group.workers: update not done (the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`)
        skipped cluster.demo.node_group.workers: rollout not done (the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`)
        skipped cluster.demo.node_group.workers: delete not done (the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`)
        skipped cluster.demo.node_group.workers: create not done (the configuration differs from what was applied: that needs `drydock plan` and `drydock apply`)
        unhealthy since: {}
    "#]]
    .assert_eq(&render(&d));
    // An interrupted rollout to the applied generation is finished; to another, it is not.
    let mut state = state;
    let ng = state.clusters.get_mut("cluster.demo").unwrap().node_groups.get_mut(&address("workers")).unwrap();
    ng.unfinished = true;
    for (generation, repaired) in [("gen1", true), ("gen2", false)] {
        plan.changes = vec![change(Action::Rollout { target: target(generation), retire: vec![] }, vec![])];
        let d = decide(&Input {
            plan: &plan,
            state: &state,
            observed: &observed,
            disruption_budgets: &budgets,
            now_ms: 0,
            unhealthy_since: &since,
            nodes: &NO_NODES,
            etcd: &BTreeMap::new(),
        });
        assert_eq!(d.repairs.len(), usize::from(repaired), "{generation}: {d:?}");
    }
}

/// No cluster of these tests has a Kubernetes API.
static NO_NODES: BTreeMap<String, Vec<drydock_provider::kube::NodeInfo>> = BTreeMap::new();

/// etcd: a cluster whose control plane has members `a`, `b`, `c` (Nodes `node-a`… on
/// instances `i-a`…) and whatever `extra` adds; `dead` members do not answer; `cp` are the
/// live control-plane instances as `id:STATE`.
fn etcd_round(cp: &'static [&'static str], nodes: &[(&str, &str)], members: &[(u64, &str, bool, bool)]) -> String {
    use drydock_provider::etcd::{EtcdHealth, EtcdMember, MemberHealth};
    use drydock_provider::kube::{ConditionStatus, NodeInfo};
    let (state, mut observed) = world(&[Group {
        name: "control-plane",
        role: Role::ControlPlane,
        max_unhealthy: IntOrPercent::Int(1),
        instances: cp,
    }]);
    for g in &mut observed.get_mut("sim").unwrap().groups {
        g.spec.role = drydock_provider::Role::ControlPlane;
    }
    let node_list: Vec<NodeInfo> = nodes
        .iter()
        .map(|(name, instance)| NodeInfo {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            provider_id: Some(format!("sim:///z1/{instance}")),
            created_at_ms: 0,
            ready: Some((ConditionStatus::True, 0)),
            pressure: vec![],
            unschedulable: false,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: vec![],
            deleting: false,
        })
        .collect();
    let health = EtcdHealth {
        members: members
            .iter()
            .map(|(id, name, learner, healthy)| MemberHealth {
                member: EtcdMember {
                    id: *id,
                    name: name.to_string(),
                    peer_urls: vec![format!("http://127.0.0.1:{}", 2380 + id)],
                    client_urls: if name.is_empty() { vec![] } else { vec![format!("http://127.0.0.1:{}", 2379 + id)] },
                    learner: *learner,
                },
                healthy: *healthy,
                error: (!*healthy).then(|| "connection refused".to_string()),
            })
            .collect(),
        leader: members.iter().find(|m| m.3).map(|m| m.0),
        alarms: vec![],
    };
    let plan = empty_plan();
    let budgets = BTreeMap::new();
    let since = BTreeMap::new();
    let nodes = BTreeMap::from([("cluster.demo".to_string(), node_list)]);
    let etcd = BTreeMap::from([("cluster.demo".to_string(), health)]);
    let d = decide(&Input {
        plan: &plan,
        state: &state,
        observed: &observed,
        disruption_budgets: &budgets,
        now_ms: 1_000,
        unhealthy_since: &since,
        nodes: &nodes,
        etcd: &etcd,
    });
    let mut out = String::new();
    for c in &d.etcd_cleanups {
        out += &format!("remove etcd member {} ({:x}): {}\n", c.name, c.id, c.why);
    }
    for e in &d.events {
        out += &format!("{} {}: {} ({})\n", e.kind.as_str(), e.address, e.message, e.why.as_deref().unwrap_or(""));
    }
    out
}

#[test]
fn watch_removes_the_etcd_member_of_a_machine_that_is_gone() {
    // i-a crashed and was replaced by i-d, whose member `d` joined: `a` is dead and gone.
    let out = etcd_round(
        &["i-b:ok", "i-c:ok", "i-d:ok"],
        &[("node-a", "i-a"), ("node-b", "i-b"), ("node-c", "i-c"), ("node-d", "i-d")],
        &[
            (1, "node-a", false, false),
            (2, "node-b", false, true),
            (3, "node-c", false, true),
            (4, "node-d", false, true),
        ],
    );
    expect![[r#"
        remove etcd member node-a (1): etcd member node-a does not answer and its instance is gone
    "#]]
    .assert_eq(&out);
}

#[test]
fn watch_waits_while_a_control_plane_member_is_still_joining() {
    // The replacement i-d is still booting: its member may be the one that looks unknown.
    let out = etcd_round(
        &["i-b:ok", "i-c:ok", "i-d:pending@500"],
        &[("node-b", "i-b"), ("node-c", "i-c")],
        &[(1, "node-a", false, false), (2, "node-b", false, true), (3, "node-c", false, true)],
    );
    expect![[r#"
        skipped cluster.demo: etcd member node-a does not answer and has no Node (a control-plane instance is still joining: its member is removed once the new one is Ready)
    "#]]
    .assert_eq(&out);
}

#[test]
fn watch_reports_but_keeps_members_on_live_machines_unstarted_members_and_learners() {
    let out = etcd_round(
        &["i-a:ok", "i-b:ok", "i-c:ok"],
        &[("node-a", "i-a"), ("node-b", "i-b"), ("node-c", "i-c")],
        &[(1, "node-a", false, false), (2, "node-b", false, true), (3, "node-c", false, true), (4, "", true, false)],
    );
    expect![[r#"
        detected cluster.demo: etcd: unstarted member 4 (http://127.0.0.1:2384) was added but never started (reported: drydock does not change it)
        detected cluster.demo: etcd member node-a does not answer (its machine runs: node repair replaces it if its Node stays unhealthy)
    "#]]
    .assert_eq(&out);
}

#[test]
fn watch_never_removes_a_dead_member_when_that_would_lose_quorum() {
    // Two of three dead with their machines gone: removing one leaves 1 of 2 healthy.
    let out = etcd_round(
        &["i-c:ok"],
        &[("node-c", "i-c")],
        &[(1, "node-a", false, false), (2, "node-b", false, false), (3, "node-c", false, true)],
    );
    expect![[r#"
        detected cluster.demo: etcd: quorum is lost: 1 of 3 voting members are healthy, 2 are needed (reported: drydock does not change it)
        skipped cluster.demo: etcd member node-a does not answer and has no Node (etcd member node-b is not healthy: connection refused; without etcd member node-a only 1 of 2 voting members would be healthy, 2 are needed for quorum)
        skipped cluster.demo: etcd member node-b does not answer and has no Node (etcd member node-a is not healthy: connection refused; without etcd member node-b only 1 of 2 voting members would be healthy, 2 are needed for quorum)
    "#]].assert_eq(&out);
}
