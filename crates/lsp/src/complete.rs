//! Completion: block and attribute names valid where the position is (from the schema), the
//! values of an attribute that takes one of a few strings, `var.`/`local.`/`each.`/`cluster.`
//! names, and functions with their signatures.

use drydock_config::eval::FUNCTIONS;
use drydock_config::schema::{self, Schema, Ty};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, InsertTextFormat, MarkupContent, MarkupKind,
    Range, TextEdit,
};

use crate::docs;
use crate::index::Index;
use crate::scan::{self, Context, Place};

/// What `cluster.NAME` has.
pub const CLUSTER_ATTRS: &[(&str, &str)] = &[
    ("name", "the cluster's name"),
    ("kubernetes_version", "string"),
    ("tags", "map of strings"),
    ("subnets", "the `network` subnets"),
    ("node_group", "an object of the cluster's node groups, by name"),
];
/// What `cluster.C.node_group.NAME` has.
pub const NODE_GROUP_ATTRS: &[(&str, &str)] = &[
    ("name", "the group's name"),
    ("address", "`cluster.C.node_group.G[\"key\"]`"),
    ("role", "`\"worker\"` or `\"control-plane\"`"),
    ("image", "string"),
    ("instance_type", "the first instance type"),
    ("instance_types", "list of strings"),
    ("labels", "map of strings"),
    ("tags", "map of strings"),
    ("subnets", "list of strings"),
    ("min", "number (from `size`)"),
    ("max", "number (from `size`)"),
    ("desired", "number or `null`"),
    ("group_names", "the autoscaling groups' names — known only after apply"),
    ("instance_ids", "the instances' ids — known only after apply"),
];
const TYPE_NAMES: &[&str] = &["string", "number", "bool", "duration", "percent", "range", "any"];

fn markdown(text: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: text }))
}

struct Out {
    range: Range,
    snippets: bool,
    items: Vec<CompletionItem>,
}

impl Out {
    fn push(&mut self, label: &str, kind: CompletionItemKind, detail: Option<String>, doc: Option<String>) {
        self.push_with(label, kind, detail, doc, label.to_string(), false, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_with(
        &mut self,
        label: &str,
        kind: CompletionItemKind,
        detail: Option<String>,
        doc: Option<String>,
        insert: String,
        snippet: bool,
        sort: Option<String>,
    ) {
        let snippet = snippet && self.snippets;
        self.items.push(CompletionItem {
            label: label.to_string(),
            kind: Some(kind),
            detail,
            documentation: doc.and_then(markdown),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit { range: self.range, new_text: insert })),
            insert_text_format: Some(if snippet { InsertTextFormat::SNIPPET } else { InsertTextFormat::PLAIN_TEXT }),
            sort_text: sort,
            filter_text: Some(label.to_string()),
            ..Default::default()
        });
    }
}

/// The completions at a position whose context is `ctx`; `range` is what they replace (the
/// name or string being typed).
pub fn complete(ctx: &Context, ix: &Index, range: Range, snippets: bool) -> Vec<CompletionItem> {
    let mut out = Out { range, snippets, items: vec![] };
    match &ctx.place {
        Place::ItemStart => items(ctx, &mut out),
        Place::Label { kind, index: 0 } => {
            let kinds: &[&str] = match kind.as_str() {
                "provider" => schema::PROVIDER_KINDS,
                "backend" => schema::BACKEND_KINDS,
                _ => &[],
            };
            for k in kinds {
                out.push(k, CompletionItemKind::ENUM_MEMBER, Some(format!("{kind} kind")), None);
            }
        }
        Place::Str { attr, top: true } => {
            if let Some(Ty::OneOf(values)) = attr_ty(ctx, attr) {
                for v in values {
                    out.push(v, CompletionItemKind::ENUM_MEMBER, Some(format!("{attr} value")), None);
                }
            }
        }
        Place::Value { attr, top } => {
            if ctx.path.is_empty() {
                values(ctx, attr, *top, &mut out);
            } else {
                members(ctx, ix, &mut out);
            }
        }
        _ => {}
    }
    out.items
}

fn attr_ty(ctx: &Context, attr: &str) -> Option<Ty> {
    let s = docs::schema_at(&ctx.blocks)?;
    docs::attr_def(s, attr).map(|d| d.ty)
}

/// Attribute and block names of the innermost block.
fn items(ctx: &Context, out: &mut Out) {
    let Some(s): Option<&'static Schema> = docs::schema_at(&ctx.blocks) else { return };
    let set: &[String] = ctx.blocks.last().map_or(&[], |b| &b.attrs);
    let block = ctx.blocks.last().map(|b| b.kind.as_str());
    for a in s.attrs {
        if set.iter().any(|n| n == a.name) {
            continue;
        }
        let (insert, snippet) = match a.ty {
            Ty::OneOf(values) => (format!("{} = \"${{1|{}|}}\"", a.name, values.join(",")), true),
            _ => (format!("{} = ", a.name), false),
        };
        let insert = if snippet && !out.snippets { format!("{} = ", a.name) } else { insert };
        out.push_with(
            a.name,
            CompletionItemKind::PROPERTY,
            Some(a.doc.ty.replace('`', "")),
            Some(docs::attr_markdown(a, block)),
            insert,
            snippet,
            Some(format!("0{}", a.name)),
        );
    }
    for b in s.blocks {
        let child = match (ctx.blocks.is_empty(), b.name) {
            (true, "provider" | "backend") => None,
            _ => Some(b.schema),
        };
        let insert = if !out.snippets {
            b.name.to_string()
        } else if ctx.blocks.is_empty() && b.name == "provider" {
            format!("provider \"${{1|{}|}}\" {{\n\t$0\n}}", schema::PROVIDER_KINDS.join(","))
        } else if ctx.blocks.is_empty() && b.name == "backend" {
            format!("backend \"${{1|{}|}}\" {{\n\t$0\n}}", schema::BACKEND_KINDS.join(","))
        } else if b.labels.is_empty() {
            format!("{} {{\n\t$0\n}}", b.name)
        } else {
            format!("{} \"${{1:{}}}\" {{\n\t$0\n}}", b.name, b.labels[0])
        };
        out.push_with(
            b.name,
            CompletionItemKind::MODULE,
            Some("block".into()),
            Some(docs::block_markdown(b, child)),
            insert,
            true,
            Some(format!("1{}", b.name)),
        );
    }
}

/// What may start a value: an attribute's allowed strings, names of references, functions.
fn values(ctx: &Context, attr: &str, top: bool, out: &mut Out) {
    if top {
        match attr_ty(ctx, attr) {
            Some(Ty::OneOf(values)) => {
                for v in values {
                    let q = format!("\"{v}\"");
                    out.push_with(
                        &q,
                        CompletionItemKind::ENUM_MEMBER,
                        Some(format!("{attr} value")),
                        None,
                        q.clone(),
                        false,
                        Some(format!("0{v}")),
                    );
                }
            }
            Some(Ty::Bool) => {
                for v in ["true", "false"] {
                    out.push_with(
                        v,
                        CompletionItemKind::KEYWORD,
                        Some("bool".into()),
                        None,
                        v.into(),
                        false,
                        Some(format!("0{v}")),
                    );
                }
            }
            _ => {}
        }
        if attr == "type" && ctx.blocks.len() == 1 && ctx.blocks[0].kind == "variable" {
            for t in TYPE_NAMES {
                out.push_with(
                    t,
                    CompletionItemKind::TYPE_PARAMETER,
                    Some("type".into()),
                    None,
                    t.to_string(),
                    false,
                    Some(format!("0{t}")),
                );
            }
            for t in ["list", "map"] {
                out.push_with(
                    t,
                    CompletionItemKind::TYPE_PARAMETER,
                    Some(format!("{t}(T)")),
                    None,
                    format!("{t}(${{1:string}})"),
                    true,
                    Some(format!("0{t}")),
                );
            }
            return;
        }
    }
    let each = ctx.blocks.iter().any(|b| b.attrs.iter().any(|a| a == "for_each"));
    let mut roots = vec![
        ("var", "a variable: `var.NAME`"),
        ("local", "a local value: `local.NAME`"),
        ("cluster", "a cluster: `cluster.NAME.ATTR`, `cluster.NAME.node_group.G.ATTR`"),
    ];
    if each {
        roots.push(("each", "the current `for_each` element: `each.key`, `each.value`"));
    }
    for (r, doc) in roots {
        out.push_with(
            r,
            CompletionItemKind::MODULE,
            Some("reference".into()),
            Some(doc.into()),
            r.into(),
            false,
            Some(format!("1{r}")),
        );
    }
    for f in FUNCTIONS {
        let insert = if out.snippets { format!("{}($1)", f.name) } else { f.name.to_string() };
        out.push_with(
            f.name,
            CompletionItemKind::FUNCTION,
            Some(f.usage.to_string()),
            Some(format!("```kcl\n{}\n```", f.usage)),
            insert,
            true,
            Some(format!("2{}", f.name)),
        );
    }
    for k in ["true", "false", "null"] {
        out.push_with(k, CompletionItemKind::KEYWORD, None, None, k.into(), false, Some(format!("3{k}")));
    }
}

/// Names after `var.`, `local.`, `each.`, `cluster.…`.
fn members(ctx: &Context, ix: &Index, out: &mut Out) {
    let path: Vec<&str> = ctx.path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["var"] => {
            for (name, v) in &ix.vars {
                let mut doc = String::new();
                if let Some(d) = &v.description {
                    doc.push_str(d);
                    doc.push_str("\n\n");
                }
                if let Some(d) = &v.default_text {
                    if !v.sensitive {
                        doc.push_str(&format!("default: `{d}`"));
                    }
                }
                out.push(name, CompletionItemKind::VARIABLE, v.ty_text.clone().or(Some("variable".into())), Some(doc));
            }
        }
        ["local"] => {
            for (name, l) in &ix.locals {
                let mut t = l.value_text.clone();
                if let Some((i, _)) = t.char_indices().nth(80) {
                    t.truncate(i);
                    t.push('…');
                }
                out.push(name, CompletionItemKind::CONSTANT, Some(t), None);
            }
        }
        ["each"] => {
            out.push("key", CompletionItemKind::FIELD, Some("the element's key".into()), None);
            out.push("value", CompletionItemKind::FIELD, Some("the element's value".into()), None);
        }
        ["cluster"] => {
            for (name, c) in &ix.clusters {
                out.push(
                    name,
                    CompletionItemKind::MODULE,
                    Some(format!("cluster, {} node groups", c.node_groups.len())),
                    None,
                );
            }
        }
        ["cluster", c] if ix.clusters.contains_key(*c) => {
            for (name, doc) in CLUSTER_ATTRS {
                out.push(name, CompletionItemKind::FIELD, Some(doc.replace('`', "")), None);
            }
        }
        ["cluster", c, "node_group"] => {
            if let Some(c) = ix.clusters.get(*c) {
                for name in c.node_groups.keys() {
                    out.push(name, CompletionItemKind::STRUCT, Some("node group".into()), None);
                }
            }
        }
        ["cluster", c, "node_group", g] if ix.clusters.get(*c).is_some_and(|c| c.node_groups.contains_key(*g)) => {
            for (name, doc) in NODE_GROUP_ATTRS {
                out.push(name, CompletionItemKind::FIELD, Some(doc.replace('`', "")), None);
            }
        }
        _ => {}
    }
}

/// The context of a position, for completion and hover.
pub fn context(text: &str, offset: usize) -> Context {
    scan::context(text, offset)
}
