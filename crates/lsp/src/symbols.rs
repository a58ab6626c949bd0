//! The outline of a file: providers, backends, variables, locals, clusters with their node
//! groups, outputs.

use drydock_syntax::ast::{Block, Item};
use lsp_types::{DocumentSymbol, SymbolKind};

use crate::workspace::TreeRef;

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be given, as `None`.
fn symbol(
    tree: &TreeRef,
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    b: &Block,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    let selection = b.labels.first().map_or(b.kind.span, |l| l.span);
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: tree.range(b.span),
        selection_range: tree.range(selection),
        children: (!children.is_empty()).then_some(children),
    }
}

fn label(b: &Block) -> String {
    b.labels.first().map_or_else(String::new, |l| l.value.to_string())
}

pub fn document_symbols(tree: &TreeRef) -> Vec<DocumentSymbol> {
    let mut out = vec![];
    for item in &tree.file().body.items {
        let Item::Block(b) = item else { continue };
        let name = label(b);
        match b.kind.name.as_str() {
            "variable" => {
                let detail = b.attributes().find(|a| a.name.name == "type").map(|a| {
                    tree.text().get(a.value.span.start as usize..a.value.span.end as usize).unwrap_or("").to_string()
                });
                out.push(symbol(tree, format!("var.{name}"), detail, SymbolKind::VARIABLE, b, vec![]));
            }
            "locals" => {
                for a in b.attributes() {
                    #[allow(deprecated)]
                    out.push(DocumentSymbol {
                        name: format!("local.{}", a.name.name),
                        detail: None,
                        kind: SymbolKind::CONSTANT,
                        tags: None,
                        deprecated: None,
                        range: tree.range(a.span),
                        selection_range: tree.range(a.name.span),
                        children: None,
                    });
                }
            }
            "provider" | "backend" => {
                let kind = b.kind.name.to_string();
                out.push(symbol(tree, format!("{kind} \"{name}\""), None, SymbolKind::PACKAGE, b, vec![]));
            }
            "cluster" => {
                let groups: Vec<DocumentSymbol> = b
                    .blocks()
                    .filter(|g| g.kind.name == "node_group")
                    .map(|g| symbol(tree, label(g), Some("node group".into()), SymbolKind::STRUCT, g, vec![]))
                    .collect();
                out.push(symbol(tree, name, Some("cluster".into()), SymbolKind::NAMESPACE, b, groups));
            }
            "output" => out.push(symbol(tree, format!("output.{name}"), None, SymbolKind::FIELD, b, vec![])),
            _ => {}
        }
    }
    out
}
