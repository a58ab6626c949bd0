//! The schema of every block: which attributes and nested blocks it takes and of what
//! kind. `check_body` reports unknown names (with a suggestion), duplicates and wrong
//! label counts; it does not evaluate anything.

use std::collections::BTreeMap;

use drydock_syntax::ast::{Attribute, Block, Body};
use drydock_syntax::diag::{Diagnostic, Span};

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
    pub ty: Ty,
}

pub struct BlockDef {
    pub name: &'static str,
    /// What the labels are called, for messages: `["name"]`; empty for none.
    pub labels: &'static [&'static str],
    pub multiple: bool,
    pub schema: &'static Schema,
}

pub struct Schema {
    pub attrs: &'static [AttrDef],
    pub blocks: &'static [BlockDef],
    /// `locals` takes any attribute name.
    pub open: bool,
}

const fn a(name: &'static str, ty: Ty) -> AttrDef {
    AttrDef { name, ty }
}

pub const ROLES: &[&str] = &["worker", "control-plane"];
pub const CAPACITY_TYPES: &[&str] = &["on-demand", "spot"];
pub const HEALTH_CHECKS: &[&str] = &["ec2", "elb"];
pub const HTTP_TOKENS: &[&str] = &["required", "optional"];

pub static ROLLOUT: Schema = Schema {
    attrs: &[a("max_surge", Ty::CountOrPct), a("max_unavailable", Ty::CountOrPct), a("health_timeout", Ty::Dur)],
    blocks: &[],
    open: false,
};
pub static HEALTH: Schema = Schema {
    attrs: &[
        a("check", Ty::OneOf(HEALTH_CHECKS)),
        a("grace_period", Ty::Dur),
        a("max_unhealthy", Ty::CountOrPct),
        a("unhealthy_timeout", Ty::Dur),
        a("startup_timeout", Ty::Dur),
    ],
    blocks: &[],
    open: false,
};
pub static ROOT_VOLUME: Schema = Schema {
    attrs: &[a("size", Ty::Count), a("type", Ty::Str), a("encrypted", Ty::Bool), a("iops", Ty::Count)],
    blocks: &[],
    open: false,
};
pub static METADATA: Schema =
    Schema { attrs: &[a("http_tokens", Ty::OneOf(HTTP_TOKENS)), a("hop_limit", Ty::Count)], blocks: &[], open: false };

const NODE_BLOCKS: &[BlockDef] = &[
    BlockDef { name: "rollout", labels: &[], multiple: false, schema: &ROLLOUT },
    BlockDef { name: "health", labels: &[], multiple: false, schema: &HEALTH },
    BlockDef { name: "root_volume", labels: &[], multiple: false, schema: &ROOT_VOLUME },
    BlockDef { name: "metadata", labels: &[], multiple: false, schema: &METADATA },
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

pub static CLUSTER: Schema = Schema {
    attrs: &[
        a("for_each", Ty::Any),
        a("kubernetes_version", Ty::Str),
        a("tags", Ty::StrMap),
        a("provider", Ty::Any),
        a("disruption_budget", Ty::CountOrPct),
    ],
    blocks: &[
        BlockDef { name: "network", labels: &[], multiple: false, schema: &NETWORK },
        BlockDef { name: "defaults", labels: &[], multiple: false, schema: &DEFAULTS },
        BlockDef { name: "node_group", labels: &["name"], multiple: true, schema: &NODE_GROUP },
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

pub static SIM_PROVIDER: Schema = Schema {
    attrs: &[
        a("alias", Ty::Str),
        a("boot_time", Ty::Dur),
        a("detection_delay", Ty::Dur),
        a("failure_rate", Ty::Num),
        a("bad_images", Ty::StrList),
        a("seed", Ty::Count),
    ],
    blocks: &[],
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
        BlockDef { name: "variable", labels: &["name"], multiple: true, schema: &VARIABLE },
        BlockDef { name: "locals", labels: &[], multiple: true, schema: &LOCALS },
        BlockDef { name: "provider", labels: &["kind"], multiple: true, schema: &PROVIDER_ANY },
        BlockDef { name: "backend", labels: &["kind"], multiple: false, schema: &PROVIDER_ANY },
        BlockDef { name: "cluster", labels: &["name"], multiple: true, schema: &CLUSTER },
        BlockDef { name: "output", labels: &["name"], multiple: true, schema: &OUTPUT },
    ],
    open: false,
};

/// A body's items, checked against a schema.
pub struct BodyView<'a> {
    pub attrs: BTreeMap<&'a str, &'a Attribute>,
    /// In source order.
    pub attr_order: Vec<&'a Attribute>,
    pub blocks: Vec<(&'a BlockDef, &'a Block)>,
}

impl<'a> BodyView<'a> {
    pub fn blocks_named(&self, name: &str) -> impl Iterator<Item = &'a Block> + '_ {
        let name = name.to_string();
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
    let mut view = BodyView { attrs: BTreeMap::new(), attr_order: vec![], blocks: vec![] };
    let mut single_blocks: BTreeMap<&str, Span> = BTreeMap::new();
    for attr in body.attributes() {
        let name = attr.name.name.as_str();
        if !schema.open && !schema.attrs.iter().any(|d| d.name == name) {
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
        if let Some(prev) = view.attrs.get(name) {
            diags.push(
                Diagnostic::new("kcl::duplicate_attribute", attr.name.span, format!("`{name}` is set twice"))
                    .label("set again here")
                    .with_secondary(prev.name.span, "first set here"),
            );
            continue;
        }
        view.attrs.insert(name, attr);
        view.attr_order.push(attr);
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
            if let Some(prev) = single_blocks.get(name) {
                diags.push(
                    Diagnostic::new(
                        "kcl::duplicate_block",
                        block.header(),
                        format!("only one `{name}` block is allowed here"),
                    )
                    .label("second block")
                    .with_secondary(*prev, "first defined here"),
                );
                continue;
            }
            single_blocks.insert(name, block.header());
        }
        view.blocks.push((def, block));
    }
    view
}
