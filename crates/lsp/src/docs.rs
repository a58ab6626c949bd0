//! The schema's documentation (`crates/config/src/schema.rs`) as Markdown: the hover of an
//! attribute or block, and the attribute tables of `docs/language.md`, which
//! `tests/docs.rs` renders from here and compares with the page.

use drydock_config::schema::{self, AttrDef, BlockDef, Change, Schema};

use crate::scan::BlockFrame;

/// The schema of the body inside `blocks` (outermost first), from the file's; `None` when a
/// block on the way is unknown (or a provider or backend of an unknown kind).
pub fn schema_at(blocks: &[BlockFrame]) -> Option<&'static Schema> {
    let mut s: &'static Schema = &schema::FILE;
    for (depth, b) in blocks.iter().enumerate() {
        s = child_schema(s, depth == 0, &b.kind, b.labels.first().map(String::as_str))?;
    }
    Some(s)
}

/// The schema of block `kind` inside a body of schema `s`.
pub fn child_schema(s: &'static Schema, top: bool, kind: &str, label: Option<&str>) -> Option<&'static Schema> {
    let def = s.blocks.iter().find(|d| d.name == kind)?;
    if top && (kind == "provider" || kind == "backend") {
        return schema::kind_schema(kind, label?);
    }
    Some(def.schema)
}

/// The definition of block `kind` inside a body of schema `s`.
pub fn block_def(s: &'static Schema, kind: &str) -> Option<&'static BlockDef> {
    s.blocks.iter().find(|d| d.name == kind)
}

pub fn attr_def(s: &'static Schema, name: &str) -> Option<&'static AttrDef> {
    s.attrs.iter().find(|d| d.name == name)
}

/// What a change does, in a sentence.
pub fn change_sentence(def: &AttrDef) -> Option<String> {
    let d = &def.doc;
    let base = match d.change {
        Change::Replace => "**replaces the nodes** (a new generation rolls out)",
        Change::InPlace => "in place: no node is replaced",
        Change::None if d.change_note.is_empty() => return None,
        Change::None => "",
    };
    Some(match (d.change_note.is_empty(), base.is_empty()) {
        (true, _) => base.to_string(),
        (false, true) => d.change_note.to_string(),
        (false, false) => format!("{base} — {}", d.change_note),
    })
}

/// An attribute's hover: its name, type, meaning, default, and what a change does. `block`
/// names the block it is in (`rollout`), if any.
pub fn attr_markdown(def: &AttrDef, block: Option<&str>) -> String {
    let d = &def.doc;
    let mut out = match block {
        Some(b) if !b.is_empty() => format!("**`{}`** — attribute of `{b}`\n\n", def.name),
        _ => format!("**`{}`**\n\n", def.name),
    };
    if !d.about.is_empty() {
        out.push_str(d.about);
        out.push_str("\n\n");
    }
    out.push_str(&format!("- type: {}\n", d.ty));
    if !d.default.is_empty() {
        out.push_str(&format!("- default: {}\n", d.default));
    }
    if let Some(c) = change_sentence(def) {
        out.push_str(&format!("- on change: {c}\n"));
    }
    out
}

/// A block's hover: what it is for and what it takes.
pub fn block_markdown(def: &BlockDef, schema: Option<&Schema>) -> String {
    let mut out = format!("**`{}`** block", def.name);
    if !def.labels.is_empty() {
        let labels: Vec<String> = def.labels.iter().map(|l| format!("\"{}\"", l.to_uppercase())).collect();
        out = format!("**`{} {}`** block", def.name, labels.join(" "));
    }
    out.push_str("\n\n");
    out.push_str(def.doc);
    out.push('\n');
    if let Some(s) = schema {
        if !s.attrs.is_empty() {
            let names: Vec<String> = s.attrs.iter().map(|a| format!("`{}`", a.name)).collect();
            out.push_str(&format!("\nattributes: {}\n", names.join(", ")));
        }
        if !s.blocks.is_empty() {
            let names: Vec<String> = s.blocks.iter().map(|b| format!("`{}`", b.name)).collect();
            out.push_str(&format!("\nblocks: {}\n", names.join(", ")));
        }
    }
    out
}

/// The attribute table of a schema, as `docs/language.md` shows it: attribute, type, default,
/// then "on change" when any attribute is a setting of machines, then meaning. Consecutive
/// attributes with the same documentation share a row.
pub fn attribute_table(s: &Schema) -> String {
    let changes = s.attrs.iter().any(|a| a.doc.change != Change::None);
    let mut out = String::new();
    if changes {
        out.push_str("| attribute | type | default | on change | meaning |\n|---|---|---|---|---|\n");
    } else {
        out.push_str("| attribute | type | default | meaning |\n|---|---|---|---|\n");
    }
    let mut i = 0;
    while i < s.attrs.len() {
        let doc = s.attrs[i].doc;
        let mut names = vec![format!("`{}`", s.attrs[i].name)];
        while i + 1 < s.attrs.len() && s.attrs[i + 1].doc == doc {
            i += 1;
            names.push(format!("`{}`", s.attrs[i].name));
        }
        let cell = |t: &str| if t.is_empty() { String::new() } else { format!(" {t}") };
        if changes {
            out.push_str(&format!(
                "| {} |{} |{} |{} |{} |\n",
                names.join(", "),
                cell(doc.ty),
                cell(doc.default),
                cell(doc.change_text()),
                cell(doc.about)
            ));
        } else {
            out.push_str(&format!(
                "| {} |{} |{} |{} |\n",
                names.join(", "),
                cell(doc.ty),
                cell(doc.default),
                cell(doc.about)
            ));
        }
        i += 1;
    }
    out
}

/// The schemas `docs/language.md` has a generated table for, by the name its marker gives
/// (`<!-- schema: node_group -->`).
pub fn documented_schemas() -> Vec<(&'static str, &'static Schema)> {
    vec![
        ("variable", &schema::VARIABLE),
        ("provider sim", &schema::SIM_PROVIDER),
        ("workload", &schema::WORKLOAD),
        ("provider aws", &schema::AWS_PROVIDER),
        ("backend local", &schema::LOCAL_BACKEND),
        ("backend s3", &schema::S3_BACKEND),
        ("output", &schema::OUTPUT),
        ("cluster", &schema::CLUSTER),
        ("network", &schema::NETWORK),
        ("kubernetes", &schema::KUBERNETES),
        ("etcd", &schema::ETCD),
        ("bootstrap", &schema::BOOTSTRAP),
        ("node_group", &schema::NODE_GROUP),
        ("rollout", &schema::ROLLOUT),
        ("health", &schema::HEALTH),
        ("drain", &schema::DRAIN),
        ("root_volume", &schema::ROOT_VOLUME),
        ("metadata", &schema::METADATA),
    ]
}
