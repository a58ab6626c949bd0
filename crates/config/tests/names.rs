//! Names the cloud and Kubernetes will see, refused by `validate` rather than half-way through
//! an apply: node groups whose cloud group names would coincide (`kcl::name_collision`),
//! names and `for_each` keys that would leave nothing in them (`kcl::invalid_name`), and labels
//! Kubernetes does not take (`kcl::invalid_label`). Several examples per class; each case is a
//! small configuration, its errors rendered one per line as
//! `code: message (at `text`: label; also at `text`: label)`.
//!
//! `UPDATE_EXPECT=1` rewrites the expected blocks, so read the diff before accepting it.

use std::path::Path;

use drydock_config::{load, load_sources, Inputs, Loaded};
use drydock_syntax::diag::Sources;
use expect_test::{expect, Expect};

fn loaded(src: &str) -> Loaded {
    let mut sources = Sources::new();
    sources.add("main.kcl", "main.kcl", src.to_string());
    load_sources(sources, &Inputs::default())
}

/// The run's errors, one a line, with the source text each points at (help left out).
fn errors(src: &str) -> String {
    let loaded = loaded(src);
    let mut out = String::new();
    for d in &loaded.diagnostics {
        let mut extra = vec![];
        if let Some(span) = d.span {
            extra.push(format!("at `{}`: {}", loaded.sources.text(span), d.label));
        }
        for l in &d.secondary {
            extra.push(format!("also at `{}`: {}", loaded.sources.text(l.span), l.text));
        }
        out.push_str(&format!("{}: {} ({})\n", d.code, d.message, extra.join("; ")));
    }
    if loaded.diagnostics.is_empty() {
        let model = loaded.model.expect("no errors, so a model");
        out.push_str(&format!("valid: {} node groups\n", model.node_group_count()));
    }
    out
}

fn check(src: &str, expected: Expect) {
    expected.assert_eq(&errors(src));
}

/// A cluster `NAME` (a block label, quoted here) holding `body` after its network.
fn cluster(name: &str, extra: &str, body: &str) -> String {
    format!(
        "cluster {name} {{\n{extra}  kubernetes_version = \"1.31\"\n  network {{\n    subnets = [\"subnet-a\"]\n  }}\n{body}}}\n"
    )
}

/// A node group `NAME` (quoted here) with `extra` attributes.
fn group(name: &str, extra: &str) -> String {
    format!(
        "  node_group {name} {{\n{extra}    image         = \"img\"\n    instance_type = \"m6i.large\"\n    size          = 1\n  }}\n"
    )
}

const SIM: &str = "provider \"sim\" {}\n";

#[test]
fn for_each_keys_that_differ_only_in_punctuation_collide() {
    // Cluster keys: every node group the two instances share would collide; one error per
    // pair of clusters, at the for_each and the node group.
    let src = format!(
        "{SIM}{}",
        cluster(
            "\"fleet\"",
            "  for_each = [\"eu-1\", \"eu.1\", \"us\"]\n",
            &(group("\"w\"", "") + &group("\"batch\"", ""))
        )
    );
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.fleet["eu.1"] and cluster.fleet["eu-1"] would give their node groups the same cloud group names (at `["eu-1", "eu.1", "us"]`: cluster.fleet["eu.1"].node_group.batch would be named `…-fleet-eu-1-batch-…`; also at `node_group "batch"`: and so would cluster.fleet["eu-1"].node_group.batch)
        "#]],
    );
    // Node group keys: three that differ in a space, a dash and a slash; each one after the
    // first is reported against it.
    let src =
        format!("{SIM}{}", cluster("\"demo\"", "", &group("\"pool\"", "    for_each = [\"a b\", \"a-b\", \"a/b\"]\n")));
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.demo.node_group.pool["a-b"] and cluster.demo.node_group.pool["a b"] would get the same cloud group names (at `["a b", "a-b", "a/b"]`: cluster.demo.node_group.pool["a-b"] would be named `…-demo-pool-a-b-…`; also at `node_group "pool"`: and so would cluster.demo.node_group.pool["a b"])
            kcl::name_collision: cluster.demo.node_group.pool["a/b"] and cluster.demo.node_group.pool["a b"] would get the same cloud group names (at `["a b", "a-b", "a/b"]`: cluster.demo.node_group.pool["a/b"] would be named `…-demo-pool-a-b-…`; also at `node_group "pool"`: and so would cluster.demo.node_group.pool["a b"])
        "#]],
    );
    // A map's keys, computed: `eu:1` and `eu 1`.
    let src = format!(
        "{SIM}{}",
        cluster("\"demo\"", "", &group("\"pool\"", "    for_each = { for s in [\":\", \" \"] : \"eu${s}1\" => s }\n"))
    );
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.demo.node_group.pool["eu:1"] and cluster.demo.node_group.pool["eu 1"] would get the same cloud group names (at `{ for s in [":", " "] : "eu${s}1" => s }`: cluster.demo.node_group.pool["eu:1"] would be named `…-demo-pool-eu-1-…`; also at `node_group "pool"`: and so would cluster.demo.node_group.pool["eu 1"])
        "#]],
    );
}

#[test]
fn names_that_join_alike_collide_across_clusters() {
    // Cluster `a-b` with node group `c`, and cluster `a` with node group `b-c`.
    let src =
        format!("{SIM}{}{}", cluster("\"a-b\"", "", &group("\"c\"", "")), cluster("\"a\"", "", &group("\"b-c\"", "")));
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.a.node_group.b-c and cluster.a-b.node_group.c would get the same cloud group names (at `node_group "b-c"`: cluster.a.node_group.b-c would be named `…-a-b-c-…`; also at `node_group "c"`: and so would cluster.a-b.node_group.c)
        "#]],
    );
    // Two clusters whose names differ only in punctuation, sharing a node group name.
    let src =
        format!("{SIM}{}{}", cluster("\"a.b\"", "", &group("\"w\"", "")), cluster("\"a_b\"", "", &group("\"w\"", "")))
            + &cluster("\"a-b\"", "", &group("\"w\"", ""));
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.a-b and cluster.a.b would give their node groups the same cloud group names (at `cluster "a-b"`: cluster.a-b.node_group.w would be named `…-a-b-w-…`; also at `cluster "a.b"`: and so would cluster.a.b.node_group.w)
        "#]],
    );
    // A cluster made by for_each and a cluster whose name spells its address out.
    let src = format!(
        "{SIM}{}{}",
        cluster("\"fleet\"", "  for_each = [\"eu\"]\n", &group("\"w\"", "")),
        cluster("\"fleet-eu\"", "", &group("\"w\"", ""))
    );
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.fleet-eu and cluster.fleet["eu"] would give their node groups the same cloud group names (at `cluster "fleet-eu"`: cluster.fleet-eu.node_group.w would be named `…-fleet-eu-w-…`; also at `["eu"]`: and so would cluster.fleet["eu"].node_group.w)
        "#]],
    );
    // Node groups of one cluster: a for_each instance and a name that spells it out.
    let src = format!(
        "{SIM}{}",
        cluster("\"demo\"", "", &(group("\"w\"", "    for_each = [\"x\"]\n") + &group("\"w-x\"", "")))
    );
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.demo.node_group.w-x and cluster.demo.node_group.w["x"] would get the same cloud group names (at `node_group "w-x"`: cluster.demo.node_group.w-x would be named `…-demo-w-x-…`; also at `["x"]`: and so would cluster.demo.node_group.w["x"])
        "#]],
    );
    // Names are global in a cloud account: two providers do not keep them apart.
    let src = format!(
        "provider \"sim\" {{}}\nprovider \"sim\" {{\n  alias = \"b\"\n}}\n{}{}",
        cluster("\"x.y\"", "  provider = sim\n", &group("\"w\"", "")),
        cluster("\"x-y\"", "  provider = sim.b\n", &group("\"w\"", ""))
    );
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.x-y and cluster.x.y would give their node groups the same cloud group names (at `cluster "x-y"`: cluster.x-y.node_group.w would be named `…-x-y-w-…`; also at `cluster "x.y"`: and so would cluster.x.y.node_group.w)
        "#]],
    );
}

#[test]
fn names_that_stay_apart_are_valid() {
    // Case, `_` and the order of the parts keep names apart; a node group name of its own in
    // each cluster is fine.
    let src = format!(
        "{SIM}{}{}{}",
        cluster("\"fleet\"", "  for_each = [\"eu\", \"EU\", \"e_u\", \"zürich\"]\n", &group("\"w\"", "")),
        cluster("\"a\"", "", &(group("\"b\"", "") + &group("\"b_c\"", ""))),
        cluster("\"a-b\"", "", &group("\"d\"", ""))
    );
    check(
        &src,
        expect![[r#"
            valid: 7 node groups
        "#]],
    );
}

#[test]
fn a_sensitive_for_each_key_is_not_shown_in_a_collision() {
    let src = format!(
        "{SIM}variable \"zones\" {{\n  default   = [\"eu-1\", \"eu.1\"]\n  sensitive = true\n}}\n{}",
        cluster("\"demo\"", "", &group("\"w\"", "    for_each = var.zones\n"))
    );
    let out = errors(&src);
    assert!(!out.contains("eu-1") && !out.contains("eu.1") && !out.contains("eu-1-"), "{out}");
    check(
        &src,
        expect![[r#"
            kcl::name_collision: cluster.demo.node_group.w[(sensitive value)] and cluster.demo.node_group.w[(sensitive value)] would get the same cloud group names (at `var.zones`: cluster.demo.node_group.w[(sensitive value)] would be named (sensitive value); also at `node_group "w"`: and so would cluster.demo.node_group.w[(sensitive value)])
        "#]],
    );
}

#[test]
fn empty_names_and_keys_are_refused() {
    let src = format!(
        "{SIM}{}{}{}",
        cluster("\"\"", "", &group("\"w\"", "")),
        cluster("\"...\"", "", &group("\"w\"", "")),
        cluster("\"ok\"", "", &(group("\"\"", "") + &group("\"東京\"", "") + &group("\"--\"", "")))
    );
    check(
        &src,
        expect![[r#"
            kcl::invalid_name: a cluster name cannot be empty (at `""`: empty name)
            kcl::invalid_name: cluster name "..." has no ASCII letter, digit or `_` (at `"..."`: nothing of it would be left in cloud group names)
            kcl::invalid_name: a node group name cannot be empty (at `""`: empty name)
            kcl::invalid_name: node group name "東京" has no ASCII letter, digit or `_` (at `"東京"`: nothing of it would be left in cloud group names)
            kcl::invalid_name: node group name "--" has no ASCII letter, digit or `_` (at `"--"`: nothing of it would be left in cloud group names)
        "#]],
    );
    // for_each keys that would leave nothing: a cluster's, a node group's, and a sensitive one.
    let src = format!(
        "{SIM}variable \"keys\" {{\n  default   = [\"...\"]\n  sensitive = true\n}}\n{}{}",
        cluster(
            "\"edge\"",
            "  for_each = [\"ams\", \"\"]\n",
            &group("\"w\"", "    for_each = { \".\" = 1, \"/\" = 2, ok = 3 }\n")
        ),
        cluster("\"core\"", "", &group("\"s\"", "    for_each = var.keys\n"))
    );
    check(
        &src,
        expect![[r#"
            kcl::invalid_name: a for_each key cannot be empty (at `["ams", ""]`: nothing of this key would be left in cloud group names)
            kcl::invalid_name: the for_each key "." has no ASCII letter, digit or `_` (at `{ "." = 1, "/" = 2, ok = 3 }`: nothing of this key would be left in cloud group names)
            kcl::invalid_name: the for_each key "/" has no ASCII letter, digit or `_` (at `{ "." = 1, "/" = 2, ok = 3 }`: nothing of this key would be left in cloud group names)
            kcl::invalid_name: the for_each key (sensitive value) has no ASCII letter, digit or `_` (at `var.keys`: nothing of this key would be left in cloud group names)
        "#]],
    );
    // Odd names that do leave something are fine.
    let src = format!("{SIM}{}", cluster("\"_\"", "", &(group("\"a.b\"", "") + &group("\"zürich\"", ""))));
    check(
        &src,
        expect![[r#"
            valid: 2 node groups
        "#]],
    );
}

#[test]
fn labels_kubernetes_does_not_take_are_refused() {
    let labels = |l: &str| format!("{SIM}{}", cluster("\"demo\"", "", &group("\"w\"", &format!("    labels = {l}\n"))));
    check(
        &labels(r#"{ team = "platform\nops", "bad key" = "x", "tab" = "a\tb" }"#),
        expect![[r#"
            kcl::invalid_label: label "tab" has the value "a\tb", not a valid Kubernetes label value: it holds white space (at `{ team = "platform\nops", "bad key" = "x", "tab" = "a\tb" }`: in these labels)
            kcl::invalid_label: label "team" has the value "platform\nops", not a valid Kubernetes label value: it holds a line break (at `{ team = "platform\nops", "bad key" = "x", "tab" = "a\tb" }`: in these labels)
            kcl::invalid_label: label key "bad key" is not a valid Kubernetes label key: it holds white space (at `{ team = "platform\nops", "bad key" = "x", "tab" = "a\tb" }`: in these labels)
        "#]],
    );
    // Too long: a value and a key's name of 64 characters, a prefix of 254.
    let long =
        format!(r#"{{ a = "{v}", "{v}" = "x", "{p}/x" = "y" }}"#, v = "v".repeat(64), p = ["a"; 127].join(".") + "b");
    let out = errors(&labels(&long));
    assert_eq!(out.matches("kcl::invalid_label").count(), 3, "{out}");
    let v64 = "v".repeat(64);
    assert!(
        out.contains(&format!(
            "label \"a\" has the value \"{v64}\", not a valid Kubernetes label value: it is longer than 63 characters"
        )),
        "{out}"
    );
    assert!(out.contains("not a valid Kubernetes label key: it is longer than 63 characters"), "{out}");
    // A 254-character prefix is shown cut short.
    assert!(
        out.contains("label key \"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.\"… (256 characters) is not a valid Kubernetes label key: the prefix before `/` is longer than 253 characters"),
        "{out}"
    );
    // Prefixes: not lowercase, with `_`, empty; two slashes; a name or value not starting
    // or ending with a letter or digit; a character outside the set.
    check(
        &labels(
            r#"{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }"#,
        ),
        expect![[r#"
            kcl::invalid_label: label "x" has the value "-a", not a valid Kubernetes label value: it must start and end with a letter or digit (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label "z" has the value "é", not a valid Kubernetes label value: only ASCII letters, digits, `-`, `_` and `.` are allowed (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label key "/x" is not a valid Kubernetes label key: the prefix before `/` is empty (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label key "Example.com/x" is not a valid Kubernetes label key: the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label key "a/b/c" is not a valid Kubernetes label key: a key has at most one `/` (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label key "a_b.io/x" is not a valid Kubernetes label key: the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
            kcl::invalid_label: label key "y." is not a valid Kubernetes label key: it must start and end with a letter or digit (at `{ "Example.com/x" = "a", "a_b.io/x" = "a", "/x" = "a", "a/b/c" = "a", "x" = "-a", "y." = "a", "z" = "é" }`: in these labels)
        "#]],
    );
    // What Kubernetes takes: prefixes, empty values, 63 characters, numbers and bools.
    let ok = format!(
        r#"{{ "node.kubernetes.io/pool" = "general", "topology.kubernetes.io/zone" = "us-east-1a", empty = "", gpu = true, n = 3, "{v}" = "{v}", "A_b.C" = "x.Y_z" }}"#,
        v = "v".repeat(63)
    );
    check(
        &labels(&ok),
        expect![[r#"
            valid: 1 node groups
        "#]],
    );
}

#[test]
fn labels_from_defaults_are_reported_once_and_sensitive_ones_not_shown() {
    let src = format!(
        "{SIM}variable \"secret\" {{\n  type      = string\n  default   = \"hunter 2\"\n  sensitive = true\n}}\n{}",
        cluster(
            "\"demo\"",
            "  defaults {\n    labels = { \"team\" = \"a b\" }\n  }\n",
            &(group("\"w1\"", "")
                + &group("\"w2\"", "")
                + &group("\"s\"", "    labels = { token = var.secret, \"${var.secret}\" = \"x\" }\n"))
        )
    );
    let out = errors(&src);
    assert!(!out.contains("hunter"), "{out}");
    check(
        &src,
        expect![[r#"
            kcl::invalid_label: label "team" has the value "a b", not a valid Kubernetes label value: it holds white space (at `{ "team" = "a b" }`: in these labels)
            kcl::invalid_label: a key of these sensitive labels is not a valid Kubernetes label key: it holds white space (at `{ token = var.secret, "${var.secret}" = "x" }`: in these labels)
            kcl::invalid_label: a value of these sensitive labels is not a valid Kubernetes label value: it holds white space (at `{ token = var.secret, "${var.secret}" = "x" }`: in these labels)
        "#]],
    );
}

#[test]
fn taints_follow_the_label_rules() {
    let src = format!(
        "{SIM}{}",
        cluster(
            "\"demo\"",
            "",
            &group(
                "\"w\"",
                "    taints = [\"a b=c:NoSchedule\", \"k=v\\nw:NoExecute\", \"nvidia.com/gpu=true:NoSchedule\", \"dedicated:NoSchedule\"]\n"
            )
        )
    );
    check(
        &src,
        expect![[r#"
            kcl::invalid_value: invalid taint "a b=c:NoSchedule": the key is not a valid Kubernetes key: it holds white space (at `["a b=c:NoSchedule", "k=v\nw:NoExecute", "nvidia.com/gpu=true:NoSchedule", "dedicated:NoSchedule"]`: in this list)
            kcl::invalid_value: invalid taint "k=v\nw:NoExecute": the value is not a valid Kubernetes value: it holds a line break (at `["a b=c:NoSchedule", "k=v\nw:NoExecute", "nvidia.com/gpu=true:NoSchedule", "dedicated:NoSchedule"]`: in this list)
        "#]],
    );
}

/// Every example under `examples/` still validates (the aws one also with its var file).
#[test]
fn the_examples_still_validate() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir()
            || !std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "kcl"))
        {
            continue;
        }
        let mut inputs = vec![Inputs::default()];
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "kclvars") {
                inputs.push(Inputs { var_files: vec![p], ..Inputs::default() });
            }
        }
        for i in &inputs {
            let loaded = load(&dir, i);
            assert!(loaded.diagnostics.is_empty(), "{}: {:?}", dir.display(), loaded.diagnostics);
            assert!(loaded.model.is_some_and(|m| m.node_group_count() > 0), "{}", dir.display());
        }
        seen += 1;
    }
    assert!(seen >= 3, "found only {seen} examples");
}

/// Tags the cloud refuses or that drydock sets itself, and an empty image or instance type,
/// are refused by `validate`, not half-way through an apply; a sensitive tag is not shown.
#[test]
fn tags_and_empty_strings_that_cannot_be_used() {
    let src = format!(
        "{SIM}variable \"secret\" {{\n  type      = string\n  default   = \"aws:hunter2\"\n  sensitive = true\n}}\n{}",
        cluster(
            "\"demo\"",
            "  tags = { \"drydock:lineage\" = \"x\", ok = \"y\", \"kubernetes.io/cluster/demo\" = \"shared\" }\n",
            &(group("\"w\"", &format!("    tags = {{ \"\" = \"a\", \"aws:cloudformation:x\" = \"b\", long = \"{}\" }}\n", "v".repeat(257)))
                + &group("\"s\"", "    tags = { (var.secret) = \"1\" }\n")
                + "  node_group \"e\" {\n    image         = \"\"\n    instance_type = \" \"\n    size          = 1\n  }\n"
                + "  node_group \"f\" {\n    image          = \"img\"\n    instance_types = [\"m6i.large\", \"\"]\n    size           = 1\n  }\n")
        )
    );
    let out = errors(&src);
    assert!(!out.contains("hunter2"), "{out}");
    check(
        &src,
        expect![[r#"
            kcl::invalid_value: tag "drydock:lineage" cannot be used: a tag key cannot begin with `drydock:`: it is reserved for drydock's ownership tags (at `{ "drydock:lineage" = "x", ok = "y", "kubernetes.io/cluster/demo" = "shared" }`: in these tags)
            kcl::invalid_value: tag "" cannot be used: a tag key cannot be empty (at `{ "" = "a", "aws:cloudformation:x" = "b", long = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" }`: in these tags)
            kcl::invalid_value: tag "aws:cloudformation:x" cannot be used: a tag key cannot begin with `aws:`: it is reserved for AWS (at `{ "" = "a", "aws:cloudformation:x" = "b", long = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" }`: in these tags)
            kcl::invalid_value: tag "long" cannot be used: a tag value is at most 256 characters (at `{ "" = "a", "aws:cloudformation:x" = "b", long = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" }`: in these tags)
            kcl::invalid_value: a tag of these sensitive tags cannot be used: a tag key cannot begin with `aws:`: it is reserved for AWS (at `{ (var.secret) = "1" }`: in these tags)
            kcl::invalid_value: image is empty (at `""`: no image)
            kcl::invalid_value: instance_type is empty (at `" "`: no type)
            kcl::invalid_value: instance_types holds an empty type (at `["m6i.large", ""]`: an empty string)
        "#]],
    );
}
