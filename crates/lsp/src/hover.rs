//! Hover: an attribute's or block's documentation (type, default, what a change does: from
//! the schema, the source of `docs/language.md`'s tables), a function's signature, and a
//! variable's, local's, cluster's or node group's declaration and, where it is known and not
//! sensitive, its value.

use drydock_config::eval::FUNCTIONS;

use crate::docs;
use crate::index::{Index, Symbol};
use crate::scan::{self, Place};
use crate::values::{Shown, Values};

/// The hover text (Markdown) at byte offset `at`, and the byte range it is about.
pub fn hover(text: &str, at: usize, ix: &Index, values: &Values) -> Option<(String, (usize, usize))> {
    if let Some(sym) = crate::index::symbol_at(text, at) {
        let range = scan::word_at(text, at).unwrap_or((at, at));
        return symbol(&sym, ix, values).map(|h| (h, range));
    }
    let (start, end) = scan::word_at(text, at)?;
    let word = &text[start..end];
    let ctx = scan::context(text, start);
    let next = text[end..].trim_start_matches([' ', '\t']).as_bytes().first().copied();
    match ctx.place {
        Place::ItemStart => {
            let s = docs::schema_at(&ctx.blocks)?;
            if next == Some(b'=') {
                let def = docs::attr_def(s, word)?;
                let block = ctx.blocks.last().map(|b| b.kind.as_str());
                Some((docs::attr_markdown(def, block), (start, end)))
            } else {
                let def = docs::block_def(s, word)?;
                let label = text[end..].trim_start().strip_prefix('"').and_then(|l| l.split('"').next());
                let child = docs::child_schema(s, ctx.blocks.is_empty(), word, label);
                Some((docs::block_markdown(def, child), (start, end)))
            }
        }
        Place::Value { .. } if next == Some(b'(') && ctx.path.is_empty() => {
            let f = FUNCTIONS.iter().find(|f| f.name == word)?;
            let args = if f.max == usize::MAX {
                format!("at least {}", f.min)
            } else if f.min == f.max {
                format!("{}", f.min)
            } else {
                format!("{} to {}", f.min, f.max)
            };
            Some((format!("```kcl\n{}\n```\n\nfunction; takes {args} argument(s)", f.usage), (start, end)))
        }
        _ => None,
    }
}

fn code(s: &str) -> String {
    format!("```kcl\n{s}\n```\n")
}

fn value_line(v: Option<Shown>) -> String {
    match v {
        Some(Shown::Sensitive) => "value: (sensitive, not shown)\n".into(),
        Some(Shown::Value { text, origin }) => format!("value ({origin}):\n{}", code(&text)),
        None => String::new(),
    }
}

fn symbol(sym: &Symbol, ix: &Index, values: &Values) -> Option<String> {
    match sym {
        Symbol::Var(name) => {
            let v = ix.vars.get(name)?;
            let mut out = format!("**variable `{name}`**");
            if let Some(t) = &v.ty_text {
                out.push_str(&format!(": `{t}`"));
            }
            out.push_str("\n\n");
            if let Some(d) = &v.description {
                out.push_str(d);
                out.push_str("\n\n");
            }
            if v.sensitive {
                out.push_str("sensitive: every value derived from it is shown as `(sensitive)`\n\n");
            } else if let Some(d) = &v.default_text {
                out.push_str(&format!("default:\n{}\n", code(d)));
            }
            out.push_str(&value_line(values.variable(name)));
            Some(out)
        }
        Symbol::Local(name) => {
            let l = ix.locals.get(name)?;
            let mut out = format!("**local `{name}`**\n\n");
            let shown = values.local(name);
            // A sensitive local's expression may spell out a secret as a literal too.
            if shown != Some(Shown::Sensitive) {
                let mut t = l.value_text.clone();
                if let Some((i, _)) = t.char_indices().nth(600) {
                    t.truncate(i);
                    t.push('…');
                }
                out.push_str(&code(&format!("{name} = {t}")));
                out.push('\n');
            }
            out.push_str(&value_line(shown));
            Some(out)
        }
        Symbol::Cluster(name) => {
            let c = ix.clusters.get(name)?;
            let groups: Vec<String> = c.node_groups.keys().map(|g| format!("`{g}`")).collect();
            let mut out = format!("**cluster `{name}`**\n\n");
            if c.for_each {
                out.push_str("one cluster per `for_each` element\n\n");
            }
            out.push_str(&format!("node groups ({}): {}\n", groups.len(), groups.join(", ")));
            Some(out)
        }
        Symbol::NodeGroup { cluster, name } => {
            let g = ix.clusters.get(cluster)?.node_groups.get(name)?;
            let mut out = format!("**node group `{name}`** of cluster `{cluster}`\n\n");
            if g.for_each {
                out.push_str("one node group per `for_each` element\n\n");
            }
            out.push_str(&format!("address: `cluster.{cluster}.node_group.{name}`\n"));
            Some(out)
        }
    }
}
