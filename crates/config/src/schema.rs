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

pub struct AttrDef {
    pub name: &'static str,
    /// The attribute's value's name in a layer: `name`, or `block.name` in a settings block.
    pub path: &'static str,
    pub ty: Ty,
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
}

pub struct Schema {
    pub attrs: &'static [AttrDef],
    pub blocks: &'static [BlockDef],
    /// `locals` takes any attribute name.
    pub open: bool,
}

const fn a(name: &'static str, ty: Ty) -> AttrDef {
    AttrDef { name, path: name, ty }
}

/// An attribute of the settings block `$block`: its path is `$block.$name`.
macro_rules! setting {
    ($block:literal, $name:literal, $ty:expr) => {
        AttrDef { name: $name, path: concat!($block, ".", $name), ty: $ty }
    };
}

/// A settings block (`rollout`): one at most, without labels.
const fn settings(name: &'static str, schema: &'static Schema) -> BlockDef {
    BlockDef { name, labels: &[], multiple: false, settings: true, schema }
}

pub const ROLES: &[&str] = &["worker", "control-plane"];
pub const CAPACITY_TYPES: &[&str] = &["on-demand", "spot"];
pub const HEALTH_CHECKS: &[&str] = &["ec2", "elb"];
pub const HTTP_TOKENS: &[&str] = &["required", "optional"];

pub static ROLLOUT: Schema = Schema {
    attrs: &[
        setting!("rollout", "max_surge", Ty::CountOrPct),
        setting!("rollout", "max_unavailable", Ty::CountOrPct),
        setting!("rollout", "health_timeout", Ty::Dur),
        setting!("rollout", "min_ready", Ty::Dur),
    ],
    blocks: &[],
    open: false,
};
pub static HEALTH: Schema = Schema {
    attrs: &[
        setting!("health", "check", Ty::OneOf(HEALTH_CHECKS)),
        setting!("health", "grace_period", Ty::Dur),
        setting!("health", "max_unhealthy", Ty::CountOrPct),
        setting!("health", "unhealthy_timeout", Ty::Dur),
        setting!("health", "startup_timeout", Ty::Dur),
        setting!("health", "node_startup_timeout", Ty::Dur),
    ],
    blocks: &[],
    open: false,
};
pub const ON_TIMEOUT: &[&str] = &["fail", "force"];
pub static DRAIN: Schema = Schema {
    attrs: &[
        setting!("drain", "timeout", Ty::Dur),
        setting!("drain", "on_timeout", Ty::OneOf(ON_TIMEOUT)),
        setting!("drain", "grace_period", Ty::Dur),
    ],
    blocks: &[],
    open: false,
};
pub static ROOT_VOLUME: Schema = Schema {
    attrs: &[
        setting!("root_volume", "size", Ty::Count),
        setting!("root_volume", "type", Ty::Str),
        setting!("root_volume", "encrypted", Ty::Bool),
        setting!("root_volume", "iops", Ty::Count),
    ],
    blocks: &[],
    open: false,
};
pub static METADATA: Schema = Schema {
    attrs: &[setting!("metadata", "http_tokens", Ty::OneOf(HTTP_TOKENS)), setting!("metadata", "hop_limit", Ty::Count)],
    blocks: &[],
    open: false,
};

pub const BOOTSTRAP_KINDS: &[&str] = &["script", "kubeadm", "eks"];
/// How nodes join their cluster: in a cluster (for all its node groups), in `defaults` or in a
/// node group, each attribute overriding the one above.
pub static BOOTSTRAP: Schema = Schema {
    attrs: &[
        setting!("bootstrap", "kind", Ty::OneOf(BOOTSTRAP_KINDS)),
        setting!("bootstrap", "endpoint", Ty::Str),
        setting!("bootstrap", "token", Ty::Str),
        setting!("bootstrap", "ca_cert_hashes", Ty::StrList),
        setting!("bootstrap", "certificate_key", Ty::Str),
        setting!("bootstrap", "cluster_name", Ty::Str),
    ],
    blocks: &[],
    open: false,
};

/// The settings blocks of a node group (and of `defaults`).
const NODE_BLOCKS: &[BlockDef] = &[
    settings("bootstrap", &BOOTSTRAP),
    settings("rollout", &ROLLOUT),
    settings("health", &HEALTH),
    settings("drain", &DRAIN),
    settings("root_volume", &ROOT_VOLUME),
    settings("metadata", &METADATA),
];

/// Attributes a node group can inherit from `defaults`.
macro_rules! node_attrs {
    ($($extra:expr),*) => {
        &[
            $($extra,)*
            a("image", Ty::Str),
            a("instance_type", Ty::Str),
            a("instance_types", Ty::StrList),
            a("user_data", Ty::Str),
            a("labels", Ty::StrMap),
            a("taints", Ty::StrList),
            a("capacity_type", Ty::OneOf(CAPACITY_TYPES)),
            a("security_groups", Ty::StrList),
            a("instance_profile", Ty::Str),
            a("key_name", Ty::Str),
            a("size", Ty::Size),
            a("desired", Ty::Count),
            a("tags", Ty::StrMap),
            a("subnets", Ty::StrList),
        ]
    };
}

pub static NODE_GROUP: Schema = Schema {
    attrs: node_attrs!(a("for_each", Ty::Any), a("role", Ty::OneOf(ROLES))),
    blocks: NODE_BLOCKS,
    open: false,
};
pub static DEFAULTS: Schema = Schema { attrs: node_attrs!(), blocks: NODE_BLOCKS, open: false };
pub static NETWORK: Schema = Schema { attrs: &[a("subnets", Ty::StrList)], blocks: &[], open: false };
/// How drydock reaches the cluster's Kubernetes API (drains, Ready gating, node repair).
pub static KUBERNETES: Schema = Schema {
    attrs: &[a("kubeconfig", Ty::Str), a("context", Ty::Str)],
    blocks: &[BlockDef { name: "etcd", labels: &[], multiple: false, settings: false, schema: &ETCD }],
    open: false,
};
/// How drydock reaches the control plane's etcd (kubeadm's stacked etcd): the members' client
/// URLs as kubeadm advertises them on the etcd static pods, or `endpoints`; with a client
/// certificate when the files are given.
pub static ETCD: Schema = Schema {
    attrs: &[a("endpoints", Ty::StrList), a("ca_file", Ty::Str), a("cert_file", Ty::Str), a("key_file", Ty::Str)],
    blocks: &[],
    open: false,
};

pub static CLUSTER: Schema = Schema {
    attrs: &[
        a("for_each", Ty::Any),
        a("kubernetes_version", Ty::Str),
        a("tags", Ty::StrMap),
        a("provider", Ty::Any),
        a("disruption_budget", Ty::CountOrPct),
    ],
    blocks: &[
        BlockDef { name: "network", labels: &[], multiple: false, settings: false, schema: &NETWORK },
        BlockDef { name: "kubernetes", labels: &[], multiple: false, settings: false, schema: &KUBERNETES },
        settings("bootstrap", &BOOTSTRAP),
        BlockDef { name: "defaults", labels: &[], multiple: false, settings: false, schema: &DEFAULTS },
        BlockDef { name: "node_group", labels: &["name"], multiple: true, settings: false, schema: &NODE_GROUP },
    ],
    open: false,
};

pub static VARIABLE: Schema = Schema {
    attrs: &[a("type", Ty::Any), a("default", Ty::Any), a("description", Ty::Str), a("sensitive", Ty::Bool)],
    blocks: &[],
    open: false,
};
pub static LOCALS: Schema = Schema { attrs: &[], blocks: &[], open: true };
pub static OUTPUT: Schema = Schema {
    attrs: &[a("value", Ty::Any), a("description", Ty::Str), a("sensitive", Ty::Bool)],
    blocks: &[],
    open: false,
};

pub const WORKLOAD_KINDS: &[&str] = &["deployment", "statefulset", "daemonset", "pod"];
/// A workload the simulated cloud's Kubernetes runs (`workload "web" { … }` in `provider "sim"`).
pub static WORKLOAD: Schema = Schema {
    attrs: &[
        a("cluster", Ty::Str),
        a("namespace", Ty::Str),
        a("kind", Ty::OneOf(WORKLOAD_KINDS)),
        a("replicas", Ty::Count),
        a("min_available", Ty::CountOrPct),
        a("max_unavailable", Ty::CountOrPct),
        a("empty_dir", Ty::Bool),
        a("grace_period", Ty::Dur),
        a("stop_time", Ty::Dur),
        a("never_terminates", Ty::Bool),
        a("do_not_disrupt", Ty::Bool),
        a("node_selector", Ty::StrMap),
        a("pdb_selector", Ty::StrMap),
    ],
    blocks: &[],
    open: false,
};
pub static SIM_PROVIDER: Schema = Schema {
    attrs: &[
        a("alias", Ty::Str),
        a("boot_time", Ty::Dur),
        a("detection_delay", Ty::Dur),
        a("failure_rate", Ty::Num),
        a("bad_images", Ty::StrList),
        a("seed", Ty::Count),
        a("join_delay", Ty::Dur),
        a("pod_start", Ty::Dur),
        a("pods_per_node", Ty::Count),
        a("etcd", Ty::Bool),
    ],
    blocks: &[BlockDef { name: "workload", labels: &["name"], multiple: true, settings: false, schema: &WORKLOAD }],
    open: false,
};
pub static AWS_PROVIDER: Schema = Schema {
    attrs: &[a("alias", Ty::Str), a("region", Ty::Str), a("profile", Ty::Str), a("endpoint", Ty::Str)],
    blocks: &[],
    open: false,
};
pub const PROVIDER_KINDS: &[&str] = &["sim", "aws"];
/// Any provider block, before its kind is known; checked again by kind.
pub static PROVIDER_ANY: Schema = Schema { attrs: &[], blocks: &[], open: true };

pub static LOCAL_BACKEND: Schema =
    Schema { attrs: &[a("path", Ty::Str), a("lock_lease", Ty::Dur)], blocks: &[], open: false };
pub static S3_BACKEND: Schema = Schema {
    attrs: &[
        a("bucket", Ty::Str),
        a("key", Ty::Str),
        a("region", Ty::Str),
        a("endpoint", Ty::Str),
        a("profile", Ty::Str),
        a("lock_lease", Ty::Dur),
    ],
    blocks: &[],
    open: false,
};
pub const BACKEND_KINDS: &[&str] = &["local", "s3"];

pub static FILE: Schema = Schema {
    attrs: &[],
    blocks: &[
        BlockDef { name: "variable", labels: &["name"], multiple: true, settings: false, schema: &VARIABLE },
        BlockDef { name: "locals", labels: &[], multiple: true, settings: false, schema: &LOCALS },
        BlockDef { name: "provider", labels: &["kind"], multiple: true, settings: false, schema: &PROVIDER_ANY },
        BlockDef { name: "backend", labels: &["kind"], multiple: false, settings: false, schema: &PROVIDER_ANY },
        BlockDef { name: "cluster", labels: &["name"], multiple: true, settings: false, schema: &CLUSTER },
        BlockDef { name: "output", labels: &["name"], multiple: true, settings: false, schema: &OUTPUT },
    ],
    open: false,
};

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
