//! What a configuration declares (variables, locals, clusters and their node groups,
//! outputs) and where, read from its files' trees; the symbol at a position; and every
//! reference to a symbol.

use std::collections::BTreeMap;

use drydock_syntax::ast::{Block, Body, Expr, ExprKind, File, Item, TemplatePart};
use drydock_syntax::diag::{FileId, Span};
use drydock_syntax::visit;
use lsp_types::{Location, Range, Url};

use crate::scan::{self, Place};
use crate::workspace::{Config, TreeRef};

/// Where something is declared.
#[derive(Debug, Clone)]
pub struct Decl {
    pub uri: Url,
    /// The whole declaration.
    pub range: Range,
    /// Its name (a label, or a local's name).
    pub selection: Range,
}

impl Decl {
    pub fn location(&self) -> Location {
        Location { uri: self.uri.clone(), range: self.selection }
    }
}

#[derive(Debug, Clone)]
pub struct VarDecl {
    pub decl: Decl,
    /// The `type` expression, as written.
    pub ty: Option<Expr>,
    pub ty_text: Option<String>,
    pub description: Option<String>,
    pub default: Option<Expr>,
    pub default_text: Option<String>,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct LocalDecl {
    pub decl: Decl,
    pub value: Expr,
    pub value_text: String,
}

#[derive(Debug, Clone)]
pub struct ClusterDecl {
    pub decl: Decl,
    pub for_each: bool,
    pub node_groups: BTreeMap<String, NodeGroupDecl>,
}

#[derive(Debug, Clone)]
pub struct NodeGroupDecl {
    pub decl: Decl,
    pub for_each: bool,
}

/// A configuration's declarations, by name (the first of a name declared twice).
#[derive(Debug, Default)]
pub struct Index {
    pub vars: BTreeMap<String, VarDecl>,
    pub locals: BTreeMap<String, LocalDecl>,
    pub clusters: BTreeMap<String, ClusterDecl>,
    pub outputs: BTreeMap<String, Decl>,
}

/// Something that can be defined and referred to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbol {
    Var(String),
    Local(String),
    Cluster(String),
    NodeGroup { cluster: String, name: String },
}

/// Sets every span of `e` to file `i`: a kept tree was parsed when the file may have had
/// another index, and evaluation resolves spans by index.
fn refile(mut e: Expr, i: usize) -> Expr {
    let id = FileId(i as u32);
    visit::walk_spans_mut(&mut e, &mut |s: &mut Span| s.file = id);
    e
}

fn label(b: &Block) -> Option<&str> {
    b.labels.first().map(|l| l.value.as_str())
}

pub fn build(cfg: &Config) -> Index {
    let mut ix = Index::default();
    for (i, f) in cfg.files.iter().enumerate() {
        let Some(tree) = cfg.tree(i) else { continue };
        let text = tree.text();
        let decl =
            |full: Span, name: Span| Decl { uri: f.uri.clone(), range: tree.range(full), selection: tree.range(name) };
        let src = |s: Span| text.get(s.start as usize..s.end as usize).unwrap_or("").to_string();
        for item in &tree.file().body.items {
            let Item::Block(b) = item else { continue };
            match b.kind.name.as_str() {
                "variable" => {
                    let Some(name) = label(b) else { continue };
                    let attr = |n: &str| b.attributes().find(|a| a.name.name == n);
                    let description = attr("description").and_then(|a| match &a.value.kind {
                        ExprKind::Template(parts) => Some(
                            parts
                                .iter()
                                .map(|p| match p {
                                    TemplatePart::Lit(s) => s.as_str(),
                                    TemplatePart::Interp(_) => "…",
                                })
                                .collect::<String>(),
                        ),
                        _ => None,
                    });
                    let sensitive = attr("sensitive").is_some_and(|a| matches!(a.value.kind, ExprKind::Bool(true)));
                    ix.vars.entry(name.to_string()).or_insert_with(|| VarDecl {
                        decl: decl(b.span, b.labels[0].span),
                        ty: attr("type").map(|a| refile(a.value.clone(), i)),
                        ty_text: attr("type").map(|a| src(a.value.span)),
                        description,
                        default: attr("default").map(|a| refile(a.value.clone(), i)),
                        default_text: attr("default").map(|a| src(a.value.span)),
                        sensitive,
                    });
                }
                "locals" => {
                    for a in b.attributes() {
                        ix.locals.entry(a.name.name.to_string()).or_insert_with(|| LocalDecl {
                            decl: decl(a.span, a.name.span),
                            value: refile(a.value.clone(), i),
                            value_text: src(a.value.span),
                        });
                    }
                }
                "cluster" => {
                    let Some(name) = label(b) else { continue };
                    let mut groups = BTreeMap::new();
                    for g in b.blocks().filter(|g| g.kind.name == "node_group") {
                        if let Some(gname) = label(g) {
                            groups.entry(gname.to_string()).or_insert_with(|| NodeGroupDecl {
                                decl: decl(g.span, g.labels[0].span),
                                for_each: g.attributes().any(|a| a.name.name == "for_each"),
                            });
                        }
                    }
                    ix.clusters.entry(name.to_string()).or_insert_with(|| ClusterDecl {
                        decl: decl(b.span, b.labels[0].span),
                        for_each: b.attributes().any(|a| a.name.name == "for_each"),
                        node_groups: groups,
                    });
                }
                "output" => {
                    if let Some(name) = label(b) {
                        ix.outputs.entry(name.to_string()).or_insert_with(|| decl(b.span, b.labels[0].span));
                    }
                }
                _ => {}
            }
        }
    }
    ix
}

/// The symbol at byte offset `at` of `text`: a reference (`var.region`, `cluster.core.node_group.g`)
/// or a declaration (a variable's, cluster's or node group's label, a local's name).
pub fn symbol_at(text: &str, at: usize) -> Option<Symbol> {
    let ctx = scan::context(text, at);
    if let Place::Label { kind, index: 0 } = &ctx.place {
        let (start, end) = label_around(text, at)?;
        let name = text[start..end].to_string();
        return match kind.as_str() {
            "variable" => Some(Symbol::Var(name)),
            "cluster" => Some(Symbol::Cluster(name)),
            "node_group" => {
                let cluster = ctx.blocks.iter().rev().find(|b| b.kind == "cluster")?.labels.first()?.clone();
                Some(Symbol::NodeGroup { cluster, name })
            }
            _ => None,
        };
    }
    let (start, end) = scan::word_at(text, at)?;
    let word = text[start..end].to_string();
    let ctx = scan::context(text, start);
    if ctx.place == Place::ItemStart && ctx.blocks.len() == 1 && ctx.blocks[0].kind == "locals" {
        return Some(Symbol::Local(word));
    }
    let path = scan::dotted_path(text, start);
    match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["var"] => Some(Symbol::Var(word)),
        ["local"] => Some(Symbol::Local(word)),
        ["cluster"] => Some(Symbol::Cluster(word)),
        ["cluster", c, "node_group"] => Some(Symbol::NodeGroup { cluster: c.to_string(), name: word }),
        _ => None,
    }
}

/// The label string around `at` on its line (between the quotes).
fn label_around(text: &str, at: usize) -> Option<(usize, usize)> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let open = line_start + text[line_start..at].rfind('"')?;
    let close = at + text[at..].find(['"', '\n'])?;
    (text.as_bytes().get(close) == Some(&b'"')).then_some((open + 1, close))
}

impl Index {
    pub fn definition(&self, sym: &Symbol) -> Option<&Decl> {
        match sym {
            Symbol::Var(n) => self.vars.get(n).map(|v| &v.decl),
            Symbol::Local(n) => self.locals.get(n).map(|l| &l.decl),
            Symbol::Cluster(n) => self.clusters.get(n).map(|c| &c.decl),
            Symbol::NodeGroup { cluster, name } => {
                self.clusters.get(cluster).and_then(|c| c.node_groups.get(name)).map(|g| &g.decl)
            }
        }
    }
}

/// Every reference to `sym` in the configuration's files.
pub fn references(cfg: &Config, sym: &Symbol) -> Vec<Location> {
    let mut out = vec![];
    for (i, f) in cfg.files.iter().enumerate() {
        let Some(tree) = cfg.tree(i) else { continue };
        let mut spans = vec![];
        for_each_ref(tree.file(), &mut |s, span| {
            if &s == sym {
                spans.push(span);
            }
        });
        out.extend(spans.into_iter().map(|s| Location { uri: f.uri.clone(), range: tree.range(s) }));
    }
    out
}

/// Every reference in a file, with the span of the name referred to.
pub fn for_each_ref(file: &File, f: &mut impl FnMut(Symbol, Span)) {
    fn body(b: &Body, f: &mut impl FnMut(Symbol, Span)) {
        for item in &b.items {
            match item {
                Item::Attribute(a) => expr(&a.value, &mut vec![], f),
                Item::Block(bl) => body(&bl.body, f),
            }
        }
    }
    body(&file.body, f)
}

/// Every reference in an expression.
pub fn expr_refs(e: &Expr, f: &mut impl FnMut(Symbol, Span)) {
    expr(e, &mut vec![], f)
}

fn root<'e>(e: &'e Expr, bound: &[String]) -> Option<&'e str> {
    match &e.kind {
        ExprKind::Variable(v) if !bound.iter().any(|b| b == v.name.as_str()) => Some(v.name.as_str()),
        _ => None,
    }
}

/// The cluster named by `e`: `cluster.NAME` or `cluster.NAME[key]`.
fn cluster_of<'e>(e: &'e Expr, bound: &[String]) -> Option<&'e str> {
    match &e.kind {
        ExprKind::GetAttr(base, name) if root(base, bound) == Some("cluster") => Some(name.name.as_str()),
        ExprKind::Index(base, _) => cluster_of(base, bound),
        _ => None,
    }
}

fn expr(e: &Expr, bound: &mut Vec<String>, f: &mut impl FnMut(Symbol, Span)) {
    match &e.kind {
        ExprKind::GetAttr(base, name) => {
            let n = name.name.to_string();
            match root(base, bound) {
                Some("var") => f(Symbol::Var(n), name.span),
                Some("local") => f(Symbol::Local(n), name.span),
                Some("cluster") => f(Symbol::Cluster(n), name.span),
                _ => {
                    if let ExprKind::GetAttr(inner, ng) = &base.kind {
                        if ng.name == "node_group" {
                            if let Some(c) = cluster_of(inner, bound) {
                                f(Symbol::NodeGroup { cluster: c.to_string(), name: n }, name.span);
                            }
                        }
                    }
                }
            }
            expr(base, bound, f);
        }
        ExprKind::For(fe) => {
            expr(&fe.collection, bound, f);
            let before = bound.len();
            bound.extend(fe.key_var.iter().map(|k| k.name.to_string()));
            bound.push(fe.value_var.name.to_string());
            if let Some(k) = &fe.key {
                expr(k, bound, f);
            }
            expr(&fe.value, bound, f);
            if let Some(c) = &fe.cond {
                expr(c, bound, f);
            }
            bound.truncate(before);
        }
        _ => visit::for_each_child(e, |c| expr(c, bound, f)),
    }
}

/// The tree of a configuration's file, by URI.
pub fn tree_of<'c>(cfg: &'c Config, uri: &Url) -> Option<TreeRef<'c>> {
    cfg.tree(cfg.file_of(uri)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(src: &str) -> Option<Symbol> {
        let i = src.find('|').unwrap();
        symbol_at(&src.replacen('|', "", 1), i)
    }

    #[test]
    fn symbols_at_references_and_declarations() {
        assert_eq!(sym("locals {\n  a = var.re|gion\n}"), Some(Symbol::Var("region".into())));
        assert_eq!(sym("locals {\n  a = local.|b\n}"), Some(Symbol::Local("b".into())));
        assert_eq!(sym("locals {\n  a|b = 1\n}"), Some(Symbol::Local("ab".into())));
        assert_eq!(
            sym("output \"o\" {\n  value = cluster.core[\"x\"].node_group.w|orkers.min\n}"),
            Some(Symbol::NodeGroup { cluster: "core".into(), name: "workers".into() })
        );
        assert_eq!(sym("output \"o\" {\n  value = cluster.co|re.name\n}"), Some(Symbol::Cluster("core".into())));
        assert_eq!(sym("variable \"re|gion\" {}"), Some(Symbol::Var("region".into())));
        assert_eq!(
            sym("cluster \"c\" {\n  node_group \"w|\" {}\n}"),
            Some(Symbol::NodeGroup { cluster: "c".into(), name: "w".into() })
        );
        assert_eq!(sym("cluster \"c\" {\n  si|ze = 1\n}"), None);
    }
}
