//! The schema of every block: which attributes and nested blocks it takes and of what
//! kind. `check_body` reports unknown names (with a suggestion), duplicates and wrong
//! label counts; it does not evaluate anything.
//!
//! Every attribute has its path, the name its value has in an evaluated layer: its own name,
//! or `block.name` (`rollout.max_surge`) in a block of settings ([`BlockDef::settings`]).
//! Paths are `&'static str`s from these tables, so evaluation never builds one.

use std::collections::btree_map::{BTreeMap, Entry};

use drydock_syntax::ast::{Attribute, Block, Body};
use drydock_syntax::diag::Diagnostic;

/// The kind of value an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Num,
    /// A whole number ≥ 0.
    Count,
    Bool,
    Dur,
    /// A count or a percentage (`1`, `25%`).
    CountOrPct,
    /// A count or a range of counts (`3`, `3..10`).
    Size,
    StrList,
    StrMap,
    Any,
    OneOf(&'static [&'static str]),
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::Str => "a string".into(),
            Ty::Num => "a number".into(),
            Ty::Count => "a whole number".into(),
            Ty::Bool => "a bool".into(),
            Ty::Dur => "a duration (like 90s or 10m)".into(),
            Ty::CountOrPct => "a whole number or a percentage (like 1 or 25%)".into(),
            Ty::Size => "a whole number or a range (like 3 or 3..10)".into(),
            Ty::StrList => "a list of strings".into(),
            Ty::StrMap => "a map of strings".into(),
            Ty::Any => "a value".into(),
            Ty::OneOf(opts) => {
                let quoted: Vec<String> = opts.iter().map(|o| format!("\"{o}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
        }
    }
}

/// What changing an attribute does to a node group's machines (its hover and its docs row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new generation replaces the nodes.
    Replace,
    /// Applied in place (to the autoscaling groups, the Nodes or drydock's own behaviour): no
    /// node is replaced.
    InPlace,
    /// Not a setting of machines (variables, providers, outputs), or neither (`for_each`).
    None,
}

/// An attribute's documentation: the one source of `docs/language.md`'s attribute tables
/// (a test in `crates/lsp/tests/docs.rs` renders each table from these and fails when the
/// page differs) and of the language server's hovers and completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doc {
    /// The type, as the docs write it ("whole number or percentage (≤ 100%)").
    pub ty: &'static str,
    /// The default, as the docs write it ("`10m`", "required", "—").
    pub default: &'static str,
    /// What it is for (Markdown).
    pub about: &'static str,
    pub change: Change,
    /// What the "on change" column says when [`Doc::change`] alone does not say it all
    /// ("**replace**; with a `kubernetes` block, in place on the Nodes"); empty otherwise.
    pub change_note: &'static str,
}

impl Doc {
    const fn note(mut self, change_note: &'static str) -> Doc {
        self.change_note = change_note;
        self
    }

    /// The "on change" column: the note, or what [`Doc::change`] says.
    pub fn change_text(&self) -> &'static str {
        if !self.change_note.is_empty() {
            return self.change_note;
        }
        match self.change {
            Change::Replace => "**replace**",
            Change::InPlace => "in place",
            Change::None => "—",
        }
    }
}

/// An attribute that is not a setting of machines.
const fn doc(ty: &'static str, default: &'static str, about: &'static str) -> Doc {
    Doc { ty, default, about, change: Change::None, change_note: "" }
}
/// A setting whose change replaces the nodes.
const fn replace(ty: &'static str, default: &'static str, about: &'static str) -> Doc {
    Doc { ty, default, about, change: Change::Replace, change_note: "" }
}
/// A setting applied in place.
const fn in_place(ty: &'static str, default: &'static str, about: &'static str) -> Doc {
    Doc { ty, default, about, change: Change::InPlace, change_note: "" }
}

pub struct AttrDef {
    pub name: &'static str,
    /// The attribute's value's name in a layer: `name`, or `block.name` in a settings block.
    pub path: &'static str,
    pub ty: Ty,
    pub doc: Doc,
}

pub struct BlockDef {
    pub name: &'static str,
    /// What the labels are called, for messages: `["name"]`; empty for none.
    pub labels: &'static [&'static str],
    pub multiple: bool,
    /// A block of settings of the enclosing block (`rollout`, `health`): its attributes are
    /// evaluated with the enclosing block's, under their paths (`rollout.max_surge`). Other
    /// blocks (`network`, `defaults`, `node_group`) are evaluated on their own.
    pub settings: bool,
    pub schema: &'static Schema,
    /// What the block is for (Markdown), for hovers and completions.
    pub doc: &'static str,
}

pub struct Schema {
    pub attrs: &'static [AttrDef],
    pub blocks: &'static [BlockDef],
    /// `locals` takes any attribute name.
    pub open: bool,
}

const fn a(name: &'static str, ty: Ty, doc: Doc) -> AttrDef {
    AttrDef { name, path: name, ty, doc }
}

/// An attribute of the settings block `$block`: its path is `$block.$name`.
macro_rules! setting {
    ($block:literal, $name:literal, $ty:expr, $doc:expr) => {
        AttrDef { name: $name, path: concat!($block, ".", $name), ty: $ty, doc: $doc }
    };
}

/// A settings block (`rollout`): one at most, without labels.
const fn settings(name: &'static str, schema: &'static Schema, doc: &'static str) -> BlockDef {
    BlockDef { name, labels: &[], multiple: false, settings: true, schema, doc }
}

/// A block that is not a settings block.
const fn block(
    name: &'static str,
    labels: &'static [&'static str],
    multiple: bool,
    schema: &'static Schema,
    doc: &'static str,
) -> BlockDef {
    BlockDef { name, labels, multiple, settings: false, schema, doc }
}

pub const ROLES: &[&str] = &["worker", "control-plane"];
pub const CAPACITY_TYPES: &[&str] = &["on-demand", "spot"];
pub const HEALTH_CHECKS: &[&str] = &["ec2", "elb"];
pub const HTTP_TOKENS: &[&str] = &["required", "optional"];

const COUNT_OR_PCT: &str = "whole number or percentage (≤ 100%)";

pub static ROLLOUT: Schema = Schema {
    attrs: &[
        setting!(
            "rollout",
            "max_surge",
            Ty::CountOrPct,
            in_place(
                COUNT_OR_PCT,
                "`1`",
                "extra nodes started above the group's size during a rollout; a percentage of the size, rounded up"
            )
        ),
        setting!(
            "rollout",
            "max_unavailable",
            Ty::CountOrPct,
            in_place(COUNT_OR_PCT, "`0`", "nodes that may be missing during a rollout; a percentage, rounded down")
        ),
        setting!(
            "rollout",
            "health_timeout",
            Ty::Dur,
            in_place("duration", "`10m`", "how long a new node has to become healthy before the rollout stops")
        ),
        setting!(
            "rollout",
            "min_ready",
            Ty::Dur,
            in_place(
                "duration",
                "`0s`",
                "with a `kubernetes` block: how long a new Node must have been Ready (no pressure) to count, as Cluster API's `minReadySeconds`"
            )
        ),
    ],
    blocks: &[],
    open: false,
};
pub static HEALTH: Schema = Schema {
    attrs: &[
        setting!(
            "health",
            "check",
            Ty::OneOf(HEALTH_CHECKS),
            in_place("`\"ec2\"` or `\"elb\"`", "`\"ec2\"`", "which health check decides that a node is healthy")
        ),
        setting!(
            "health",
            "grace_period",
            Ty::Dur,
            in_place("duration", "`90s`", "time after boot before checks count")
        ),
        setting!(
            "health",
            "max_unhealthy",
            Ty::CountOrPct,
            in_place(COUNT_OR_PCT, "`40%`", "remediation stops when more of the group than this is unhealthy")
        ),
        setting!(
            "health",
            "unhealthy_timeout",
            Ty::Dur,
            in_place("duration", "`5m`", "how long a node may be unhealthy before it is replaced")
        ),
        setting!(
            "health",
            "startup_timeout",
            Ty::Dur,
            in_place("duration", "`10m`", "how long a new node may take to become healthy at all")
        ),
        setting!(
            "health",
            "node_startup_timeout",
            Ty::Dur,
            in_place(
                "duration",
                "`10m`",
                "with a `kubernetes` block: a node whose Node is not Ready this long after launch fails its wave (rollout) or is replaced (watch)"
            )
        ),
    ],
    blocks: &[],
    open: false,
};
pub const ON_TIMEOUT: &[&str] = &["fail", "force"];
pub static DRAIN: Schema = Schema {
    attrs: &[
        setting!(
            "drain",
            "timeout",
            Ty::Dur,
            in_place("duration", "`15m`", "how long evictions are retried (a PodDisruptionBudget may block them)")
        ),
        setting!(
            "drain",
            "on_timeout",
            Ty::OneOf(ON_TIMEOUT),
            in_place(
                "`\"fail\"` or `\"force\"`",
                "`\"fail\"`",
                "`\"fail\"`: halt with the wave's nodes back in service and a report naming each pod and what blocked it; `\"force\"`: delete the pods left (grace ≥ 1 s), **bypassing their budgets**, and go on"
            )
        ),
        setting!(
            "drain",
            "grace_period",
            Ty::Dur,
            in_place("duration", "each pod's own", "the grace period evicted pods get")
        ),
    ],
    blocks: &[],
    open: false,
};
pub static ROOT_VOLUME: Schema = Schema {
    attrs: &[
        setting!("root_volume", "size", Ty::Count, replace("whole number (GiB)", "`20`", "the root volume's size")),
        setting!("root_volume", "type", Ty::Str, replace("string", "`\"gp3\"`", "the volume type")),
        setting!("root_volume", "encrypted", Ty::Bool, replace("bool", "`true`", "whether the volume is encrypted")),
        setting!("root_volume", "iops", Ty::Count, replace("whole number", "—", "provisioned IOPS")),
    ],
    blocks: &[],
    open: false,
};
pub static METADATA: Schema = Schema {
    attrs: &[
        setting!(
            "metadata",
            "http_tokens",
            Ty::OneOf(HTTP_TOKENS),
            replace(
                "`\"required\"` (IMDSv2 only) or `\"optional\"`",
                "`\"required\"`",
                "whether the instance metadata service requires session tokens (IMDSv2)"
            )
        ),
        setting!(
            "metadata",
            "hop_limit",
            Ty::Count,
            replace("whole number", "`2`", "how many network hops a metadata response may travel")
        ),
    ],
    blocks: &[],
    open: false,
};

pub const BOOTSTRAP_KINDS: &[&str] = &["script", "kubeadm", "eks"];
const SECRET_NOTE: &str = "in place: a new launch template for nodes launched later";
/// How nodes join their cluster: in a cluster (for all its node groups), in `defaults` or in a
/// node group, each attribute overriding the one above.
pub static BOOTSTRAP: Schema = Schema {
    attrs: &[
        setting!(
            "bootstrap",
            "kind",
            Ty::OneOf(BOOTSTRAP_KINDS),
            replace(
                "`\"script\"`, `\"kubeadm\"` or `\"eks\"`",
                "`\"script\"`",
                "how nodes join: your own `user_data`, a generated kubeadm `JoinConfiguration`, or a generated EKS `NodeConfig`"
            )
            .note("replaces the nodes")
        ),
        setting!(
            "bootstrap",
            "endpoint",
            Ty::Str,
            replace("`host:port` (kubeadm)", "required for kubeadm", "the API server nodes join").note("replaces the nodes")
        ),
        setting!(
            "bootstrap",
            "token",
            Ty::Str,
            in_place(
                "string `[a-z0-9]{6}.[a-z0-9]{16}` (kubeadm)",
                "required for kubeadm",
                "the bootstrap token nodes join with (never shown)"
            )
            .note(SECRET_NOTE)
        ),
        setting!(
            "bootstrap",
            "ca_cert_hashes",
            Ty::StrList,
            in_place(
                "list of `sha256:<64 hex>` (kubeadm)",
                "required for kubeadm",
                "the hashes of the cluster CA's public key that joining nodes trust"
            )
            .note("in place, as `token`")
        ),
        setting!(
            "bootstrap",
            "certificate_key",
            Ty::Str,
            in_place(
                "64 hex digits (kubeadm, control-plane groups only)",
                "required for a kubeadm control plane",
                "decrypts the control-plane certificates kubeadm uploaded (never shown)"
            )
            .note("in place, as `token`")
        ),
        setting!(
            "bootstrap",
            "cluster_name",
            Ty::Str,
            replace("string (eks)", "the cluster's name", "the EKS cluster nodes join").note("replaces the nodes")
        ),
    ],
    blocks: &[],
    open: false,
};

const BOOTSTRAP_DOC: &str = "How nodes join their cluster: a generated kubeadm or EKS bootstrap, or your own `user_data` (`\"script\"`). In a cluster, in `defaults` or in a node group, each attribute overriding the one above.";

/// The settings blocks of a node group (and of `defaults`).
const NODE_BLOCKS: &[BlockDef] = &[
    settings(
        "bootstrap",
        &BOOTSTRAP,
        BOOTSTRAP_DOC,
    ),
    settings(
        "rollout",
        &ROLLOUT,
        "How a new generation replaces the old one: how many nodes are added above the size and how many may be missing at once. In place.",
    ),
    settings("health", &HEALTH, "When a node counts as healthy, and when an unhealthy one is replaced. In place."),
    settings(
        "drain",
        &DRAIN,
        "With a `kubernetes` block: how an old node is drained before its instance goes. In place.",
    ),
    settings(
        "root_volume",
        &ROOT_VOLUME,
        "The nodes' root volume; without it the image's own is used. A change replaces the nodes.",
    ),
    settings("metadata", &METADATA, "The instance metadata service. A change replaces the nodes."),
];

const MAP_OF_STRINGS: &str = "map of strings";

/// Attributes a node group can inherit from `defaults`.
macro_rules! node_attrs {
    ($($extra:expr),*) => {
        &[
            $($extra,)*
            a("image", Ty::Str, replace("string", "required", "the machine image the nodes boot")),
            a(
                "instance_type",
                Ty::Str,
                replace("string", "one of the two required", "the nodes' instance type (or use `instance_types`)"),
            ),
            a(
                "instance_types",
                Ty::StrList,
                replace(
                    "non-empty list of strings",
                    "",
                    "several instance types, for a spot pool or a mixed group (or use `instance_type`)",
                ),
            ),
            a("user_data", Ty::Str, replace("string", "—", "the script a node runs at first boot")),
            a(
                "labels",
                Ty::StrMap,
                replace("map of strings, Kubernetes labels (see below)", "`{}`", "the nodes' Kubernetes labels")
                    .note("**replace**; with a `kubernetes` block, in place on the Nodes"),
            ),
            a(
                "taints",
                Ty::StrList,
                replace("list of strings `\"key=value:Effect\"`", "`[]`", "the nodes' Kubernetes taints")
                    .note("**replace** (always: see `docs/kubernetes.md`)"),
            ),
            a(
                "capacity_type",
                Ty::OneOf(CAPACITY_TYPES),
                replace("`\"on-demand\"` or `\"spot\"`", "`\"on-demand\"`", "how the instances are bought"),
            ),
            a(
                "security_groups",
                Ty::StrList,
                replace("list of strings", "`[]`", "the security groups of the nodes' network interface"),
            ),
            a("instance_profile", Ty::Str, replace("string", "—", "the IAM instance profile the nodes run with")),
            a("key_name", Ty::Str, replace("string", "—", "the SSH key pair put on the nodes")),
            a(
                "size",
                Ty::Size,
                in_place(
                    "whole number, or a range `MIN..MAX`",
                    "required",
                    "how many nodes: fixed (`3`), or a range the autoscaler chooses in (`2..10`)",
                ),
            ),
            a(
                "desired",
                Ty::Count,
                in_place(
                    "whole number inside `size`",
                    "— (the autoscaler decides)",
                    "pins the current count inside a range `size`",
                ),
            ),
            a("tags", Ty::StrMap, in_place(MAP_OF_STRINGS, "`{}`", "the cloud tags of the groups and their instances")),
            a(
                "subnets",
                Ty::StrList,
                in_place(
                    "non-empty list of strings",
                    "the cluster's `network.subnets`",
                    "the subnets (zones) the nodes are spread over",
                ),
            ),
        ]
    };
}

pub static NODE_GROUP: Schema = Schema {
    attrs: node_attrs!(
        a(
            "for_each",
            Ty::Any,
            doc("list of strings or map", "—", "one node group per element, see [for_each](#for_each)")
                .note("one group per element")
        ),
        a(
            "role",
            Ty::OneOf(ROLES),
            doc(
                "`\"worker\"` or `\"control-plane\"`",
                "`\"worker\"`",
                "what the nodes run: workloads, or the control plane"
            )
            .note("see [The control plane](#the-control-plane)")
        )
    ),
    blocks: NODE_BLOCKS,
    open: false,
};
pub static DEFAULTS: Schema = Schema { attrs: node_attrs!(), blocks: NODE_BLOCKS, open: false };
pub static NETWORK: Schema = Schema {
    attrs: &[a(
        "subnets",
        Ty::StrList,
        in_place(
            "non-empty list of strings",
            "required",
            "the subnets the cluster's node groups use unless a node group names its own",
        ),
    )],
    blocks: &[],
    open: false,
};
/// How drydock reaches the cluster's Kubernetes API (drains, Ready gating, node repair).
pub static KUBERNETES: Schema = Schema {
    attrs: &[
        a(
            "kubeconfig",
            Ty::Str,
            in_place(
                "string (a path)",
                "`$KUBECONFIG`, then `~/.kube/config`",
                "the kubeconfig to reach the API server with; relative to the configuration's directory",
            ),
        ),
        a("context", Ty::Str, in_place("string", "the kubeconfig's current context", "the kubeconfig context")),
    ],
    blocks: &[block(
        "etcd",
        &[],
        false,
        &ETCD,
        "drydock manages a kubeadm control plane's etcd membership: a replaced member is removed after its drain and before its machine goes.",
    )],
    open: false,
};
/// How drydock reaches the control plane's etcd (kubeadm's stacked etcd): the members' client
/// URLs as kubeadm advertises them on the etcd static pods, or `endpoints`; with a client
/// certificate when the files are given.
pub static ETCD: Schema = Schema {
    attrs: &[
        a(
            "endpoints",
            Ty::StrList,
            in_place(
                "list of client URLs",
                "those kubeadm advertises on the etcd static pods",
                "the etcd members to start from",
            ),
        ),
        a("ca_file", Ty::Str, in_place("string (a path)", "—", "the CA that signed the members' serving certificates")),
        a(
            "cert_file",
            Ty::Str,
            in_place(
                "string (a path)",
                "—",
                "a client certificate etcd accepts (kubeadm's `healthcheck-client`); all three files or none",
            ),
        ),
        a("key_file", Ty::Str, in_place("string (a path)", "—", "the client certificate's key")),
    ],
    blocks: &[],
    open: false,
};

pub static CLUSTER: Schema = Schema {
    attrs: &[
        a(
            "for_each",
            Ty::Any,
            doc("list of strings or map", "—", "one cluster per element, see [for_each](#for_each)"),
        ),
        a(
            "kubernetes_version",
            Ty::Str,
            replace("string", "required", "the Kubernetes version of the cluster's nodes")
                .note("replaces the nodes of every node group"),
        ),
        a("tags", Ty::StrMap, in_place(MAP_OF_STRINGS, "`{}`", "cluster-level tags")),
        a(
            "provider",
            Ty::Any,
            doc(
                "a provider reference: `sim`, `aws`, `aws.west`",
                "the only provider",
                "the provider that builds the cluster (not evaluated: write a string to compute it)",
            ),
        ),
        a(
            "disruption_budget",
            Ty::CountOrPct,
            in_place(
                "whole number or percentage",
                "`10%`",
                "the most nodes of the cluster replaced at once, for any reason",
            ),
        ),
    ],
    blocks: &[
        block("network", &[], false, &NETWORK, "The subnets the cluster's node groups use. Required, once."),
        block(
            "kubernetes",
            &[],
            false,
            &KUBERNETES,
            "How drydock reaches the cluster's API server: with it, new nodes count once their Node is Ready, old nodes are drained first, and `watch` repairs nodes by their Node conditions. Changing it replaces no node.",
        ),
        settings(
            "bootstrap",
            &BOOTSTRAP,
            BOOTSTRAP_DOC,
        ),
        block(
            "defaults",
            &[],
            false,
            &DEFAULTS,
            "Node-group attributes and blocks every node group of the cluster inherits; a node group's own setting wins, and nested blocks merge per attribute.",
        ),
        block(
            "node_group",
            &["name"],
            true,
            &NODE_GROUP,
            "A group of identical, immutable machines: one autoscaling group per generation. A change to what a machine is rolls out a new generation; a change to how many there are is applied in place.",
        ),
    ],
    open: false,
};

pub static VARIABLE: Schema = Schema {
    attrs: &[
        a(
            "type",
            Ty::Any,
            doc(
                "a type: `string number bool duration percent range list(T) map(T) any`",
                "`any`",
                "not quoted: `type = list(string)`",
            ),
        ),
        a(
            "default",
            Ty::Any,
            doc("a constant expression", "— (then the variable is required)", "may use functions, not `var.`/`local.`"),
        ),
        a("description", Ty::Str, doc("string", "—", "what the variable is for")),
        a(
            "sensitive",
            Ty::Bool,
            doc("bool", "`false`", "marks every value derived from it; see [sensitive](#sensitive)"),
        ),
    ],
    blocks: &[],
    open: false,
};
pub static LOCALS: Schema = Schema { attrs: &[], blocks: &[], open: true };
/// A node group renamed in the configuration: its state entry and cloud groups are taken over
/// by the new address, no node replaced (`moved { from = …, to = … }`).
pub static MOVED: Schema = Schema {
    attrs: &[
        a("from", Ty::Any, doc("a node group address", "required", "the node group's address before the rename")),
        a("to", Ty::Any, doc("a node group address", "required", "its address now, in the same cluster")),
    ],
    blocks: &[],
    open: false,
};

pub static OUTPUT: Schema = Schema {
    attrs: &[
        a("value", Ty::Any, doc("any expression", "required", "may use values known only after apply")),
        a("description", Ty::Str, doc("string", "—", "what the output is")),
        a(
            "sensitive",
            Ty::Bool,
            doc(
                "bool",
                "`false`, or `true` when the value is derived from a sensitive value",
                "shows the value as `(sensitive)`",
            ),
        ),
    ],
    blocks: &[],
    open: false,
};

pub const WORKLOAD_KINDS: &[&str] = &["deployment", "statefulset", "daemonset", "pod"];
const BUDGET: &str = "a PodDisruptionBudget named after the workload";
/// A workload the simulated cloud's Kubernetes runs (`workload "web" { … }` in `provider "sim"`).
pub static WORKLOAD: Schema = Schema {
    attrs: &[
        a("cluster", Ty::Str, doc("string", "every cluster", "the cluster (its name) that runs it")),
        a("namespace", Ty::Str, doc("string", "`\"default\"`", "")),
        a(
            "kind",
            Ty::OneOf(WORKLOAD_KINDS),
            doc(
                "`\"deployment\"`, `\"statefulset\"`, `\"daemonset\"` or `\"pod\"`",
                "`\"deployment\"`",
                "`\"pod\"`: bare pods that nothing recreates",
            ),
        ),
        a("replicas", Ty::Count, doc("whole number", "`1`", "ignored for a DaemonSet (one pod per node)")),
        a("min_available", Ty::CountOrPct, doc("whole number or percentage", "—", BUDGET)),
        a("max_unavailable", Ty::CountOrPct, doc("whole number or percentage", "—", BUDGET)),
        a("empty_dir", Ty::Bool, doc("bool", "`false`", "the pods mount an `emptyDir` volume")),
        a("grace_period", Ty::Dur, doc("duration", "`30s`", "the pods' `terminationGracePeriodSeconds`")),
        a(
            "stop_time",
            Ty::Dur,
            doc("duration", "`1s`", "how long a pod takes to exit once asked (at most its grace period)"),
        ),
        a(
            "never_terminates",
            Ty::Bool,
            doc("bool", "`false`", "the pods stay Terminating (until their node's instance is gone)"),
        ),
        a("do_not_disrupt", Ty::Bool, doc("bool", "`false`", "the pods carry `drydock.dev/do-not-disrupt: \"true\"`")),
        a("node_selector", Ty::StrMap, doc(MAP_OF_STRINGS, "`{}`", "the nodes (by label) its pods may run on")),
        a(
            "pdb_selector",
            Ty::StrMap,
            doc(
                MAP_OF_STRINGS,
                "its own pods (`app = NAME`)",
                "what its budget selects (another workload's pods too: a pod with two budgets)",
            ),
        ),
    ],
    blocks: &[],
    open: false,
};
pub static SIM_PROVIDER: Schema = Schema {
    attrs: &[
        a("alias", Ty::Str, doc("string", "—", "a second `sim` provider, referred to as `sim.ALIAS`")),
        a("boot_time", Ty::Dur, doc("duration", "`2s`", "how long an instance takes to become healthy")),
        a(
            "detection_delay",
            Ty::Dur,
            doc("duration", "`10s`", "how long before an unhealthy instance is noticed"),
        ),
        a("failure_rate", Ty::Num, doc("number, 0 to 1", "`0`", "the share of instance boots that fail")),
        a("bad_images", Ty::StrList, doc("list of strings", "`[]`", "images whose instances never become healthy")),
        a("seed", Ty::Count, doc("whole number", "`1`", "seeds the simulation's randomness")),
        a(
            "join_delay",
            Ty::Dur,
            doc(
                "duration",
                "`3s`",
                "from an instance running to its Node registering Ready (the simulated Kubernetes)",
            ),
        ),
        a("pod_start", Ty::Dur, doc("duration", "`2s`", "from a pod bound to a node to Running and Ready")),
        a(
            "pods_per_node",
            Ty::Count,
            doc("whole number", "`110`", "pods (other than DaemonSet pods) one node runs"),
        ),
        a(
            "etcd",
            Ty::Bool,
            doc(
                "bool",
                "`false`",
                "each control-plane instance runs a real etcd member (a process on loopback; needs the `etcd` binary), joined as kubeadm joins one",
            ),
        ),
    ],
    blocks: &[block(
        "workload",
        &["name"],
        true,
        &WORKLOAD,
        "What the simulated Kubernetes runs, for rehearsing drains: a Deployment, StatefulSet, DaemonSet or bare pods, optionally under a PodDisruptionBudget.",
    )],
    open: false,
};
pub static AWS_PROVIDER: Schema = Schema {
    attrs: &[
        a("alias", Ty::Str, doc("string", "—", "a second `aws` provider, referred to as `aws.ALIAS`")),
        a("region", Ty::Str, doc("string", "—", "the AWS region")),
        a("profile", Ty::Str, doc("string", "—", "a named profile from the AWS configuration files")),
        a("endpoint", Ty::Str, doc("string", "—", "an alternative API endpoint (for testing)")),
    ],
    blocks: &[],
    open: false,
};
pub const PROVIDER_KINDS: &[&str] = &["sim", "aws"];
/// Any provider block, before its kind is known; checked again by kind.
pub static PROVIDER_ANY: Schema = Schema { attrs: &[], blocks: &[], open: true };

const LOCK_LEASE: Doc = doc(
    "duration, at least `1s`",
    "`60s`",
    "how long the state lock lasts unless its holder renews it (every third of it): a run that dies loses its lock that long after its last renewal",
);
pub static LOCAL_BACKEND: Schema = Schema {
    attrs: &[
        a("path", Ty::Str, doc("string", "`drydock.state.json` beside the configuration", "the state file")),
        a("lock_lease", Ty::Dur, LOCK_LEASE),
    ],
    blocks: &[],
    open: false,
};
pub static S3_BACKEND: Schema = Schema {
    attrs: &[
        a("bucket", Ty::Str, doc("string", "required", "the bucket (versioning on)")),
        a("key", Ty::Str, doc("string", "required", "the state object's key")),
        a("region", Ty::Str, doc("string", "—", "the bucket's region")),
        a("endpoint", Ty::Str, doc("string", "—", "an alternative S3 endpoint (path-style addressing)")),
        a("profile", Ty::Str, doc("string", "—", "a named profile from the AWS configuration files")),
        a("lock_lease", Ty::Dur, LOCK_LEASE),
    ],
    blocks: &[],
    open: false,
};
pub const BACKEND_KINDS: &[&str] = &["local", "s3"];

pub static FILE: Schema = Schema {
    attrs: &[],
    blocks: &[
        block(
            "variable",
            &["name"],
            true,
            &VARIABLE,
            "An input of the configuration, read as `var.NAME`: from `--var`, a `--var-file`, `DRYDOCK_VAR_NAME` or its `default`.",
        ),
        block(
            "locals",
            &[],
            true,
            &LOCALS,
            "Named values, read as `local.NAME`: `NAME = expression`. They may refer to variables, other locals and clusters.",
        ),
        block(
            "provider",
            &["kind"],
            true,
            &PROVIDER_ANY,
            "Where clusters are built: `\"sim\"` (the embedded simulated cloud) or `\"aws\"`. One per kind and alias.",
        ),
        block(
            "backend",
            &["kind"],
            false,
            &PROVIDER_ANY,
            "Where state is kept: `\"local\"` (a file) or `\"s3\"`. At most one.",
        ),
        block(
            "cluster",
            &["name"],
            true,
            &CLUSTER,
            "A Kubernetes cluster's machines: its network, its node groups and their defaults.",
        ),
        block(
            "output",
            &["name"],
            true,
            &OUTPUT,
            "A value shown after apply (`value`), which may use values known only after apply.",
        ),
        block(
            "moved",
            &[],
            true,
            &MOVED,
            "A node group renamed: `from` (the old address) is taken over by `to` (the new one) in the state, keeping its cloud groups and nodes.",
        ),
    ],
    open: false,
};

/// The schema of a `provider` or `backend` block of a kind (`"sim"`, `"s3"`); `None` for a
/// kind that does not exist.
pub fn kind_schema(block: &str, kind: &str) -> Option<&'static Schema> {
    match (block, kind) {
        ("provider", "sim") => Some(&SIM_PROVIDER),
        ("provider", "aws") => Some(&AWS_PROVIDER),
        ("backend", "local") => Some(&LOCAL_BACKEND),
        ("backend", "s3") => Some(&S3_BACKEND),
        _ => None,
    }
}

/// A body's items, checked against a schema: each known attribute once, with its definition
/// (`None` in an open schema such as `locals`), and the known blocks.
pub struct BodyView<'a> {
    /// In source order.
    pub attrs: Vec<(Option<&'static AttrDef>, &'a Attribute)>,
    pub blocks: Vec<(&'static BlockDef, &'a Block)>,
}

impl<'a> BodyView<'a> {
    /// The attribute named `name`. (A body has a handful of attributes: a scan is the fastest.)
    pub fn attr(&self, name: &str) -> Option<&'a Attribute> {
        self.attrs.iter().find(|(_, a)| a.name.name == name).map(|(_, a)| *a)
    }
    pub fn blocks_named<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a Block> + use<'_, 'a, 'n> {
        self.blocks.iter().filter(move |(d, _)| d.name == name).map(|(_, b)| *b)
    }
    pub fn block(&self, name: &str) -> Option<&'a Block> {
        self.blocks_named(name).next()
    }
}

/// Checks a body's attribute and block names against `schema`. `what` names the
/// enclosing block in messages ("node_group", "the file").
pub fn check_body<'a>(
    body: &'a Body,
    schema: &'static Schema,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> BodyView<'a> {
    let mut view = BodyView { attrs: Vec::with_capacity(body.items.len()), blocks: vec![] };
    // Where each name was first set: found by a scan in a small body (almost every one), and by
    // an index in a large one (a `locals` block of thousands), which a scan would make quadratic.
    let mut index: Option<BTreeMap<&str, &Attribute>> = (body.items.len() > 32).then(BTreeMap::new);
    for attr in body.attributes() {
        let name = attr.name.name.as_str();
        let def = schema.attrs.iter().find(|d| d.name == name);
        if !schema.open && def.is_none() {
            let mut d =
                Diagnostic::new("kcl::unknown_attribute", attr.name.span, format!("{what} has no attribute `{name}`"))
                    .label("unknown attribute")
                    .suggest(name, schema.attrs.iter().map(|d| d.name));
            if schema.blocks.iter().any(|b| b.name == name) {
                d = d.help(format!("`{name}` is a block: write `{name} {{ … }}`"));
            } else if d.help.is_none() && !schema.attrs.is_empty() {
                let names: Vec<&str> = schema.attrs.iter().map(|d| d.name).collect();
                d = d.help(format!("{what} takes: {}", names.join(", ")));
            }
            diags.push(d);
            continue;
        }
        let prev = match &mut index {
            Some(index) => match index.entry(name) {
                Entry::Occupied(first) => Some(*first.get()),
                Entry::Vacant(slot) => {
                    slot.insert(attr);
                    None
                }
            },
            None => view.attr(name),
        };
        if let Some(prev) = prev {
            diags.push(
                Diagnostic::new("kcl::duplicate_attribute", attr.name.span, format!("`{name}` is set twice"))
                    .label("set again here")
                    .with_secondary(prev.name.span, "first set here"),
            );
            continue;
        }
        view.attrs.push((def, attr));
    }
    for block in body.blocks() {
        let name = block.kind.name.as_str();
        let Some(def) = schema.blocks.iter().find(|d| d.name == name) else {
            let mut d = Diagnostic::new("kcl::unknown_block", block.kind.span, format!("{what} has no block `{name}`"))
                .label("unknown block")
                .suggest(name, schema.blocks.iter().map(|d| d.name));
            if schema.attrs.iter().any(|a| a.name == name) {
                d = d.help(format!("`{name}` is an attribute: write `{name} = …`"));
            } else if d.help.is_none() && !schema.blocks.is_empty() {
                let names: Vec<&str> = schema.blocks.iter().map(|d| d.name).collect();
                d = d.help(format!("{what} takes the blocks: {}", names.join(", ")));
            }
            diags.push(d);
            continue;
        };
        if block.labels.len() != def.labels.len() {
            let expected = match def.labels {
                [] => "no label".to_string(),
                [one] => format!("one label, its {one}"),
                many => format!("{} labels", many.len()),
            };
            let span = block.labels.get(def.labels.len()).map_or(block.header(), |l| l.span.to(block.header()));
            let example = match def.labels {
                [] => format!("{name} {{ … }}"),
                _ => format!("{name} \"{}\" {{ … }}", def.labels[0]),
            };
            diags.push(
                Diagnostic::new("kcl::block_labels", span, format!("`{name}` takes {expected}"))
                    .label(format!("{} given", block.labels.len()))
                    .help(format!("write `{example}`")),
            );
            continue;
        }
        if !def.multiple {
            if let Some(prev) = view.block(name) {
                diags.push(
                    Diagnostic::new(
                        "kcl::duplicate_block",
                        block.header(),
                        format!("only one `{name}` block is allowed here"),
                    )
                    .label("second block")
                    .with_secondary(prev.header(), "first defined here"),
                );
                continue;
            }
        }
        view.blocks.push((def, block));
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every settings block's attributes have the paths their values are looked up by
    /// (`rollout.max_surge`), and no other block's attributes have dotted paths.
    #[test]
    fn paths_name_the_settings_block() {
        fn walk(schema: &Schema, settings_block: Option<&str>) {
            for a in schema.attrs {
                match settings_block {
                    Some(b) => assert_eq!(a.path, format!("{b}.{}", a.name)),
                    None => assert_eq!(a.path, a.name),
                }
            }
            for b in schema.blocks {
                assert!(!b.settings || (!b.multiple && b.labels.is_empty()), "{}", b.name);
                walk(b.schema, b.settings.then_some(b.name));
            }
        }
        walk(&FILE, None);
    }
}
