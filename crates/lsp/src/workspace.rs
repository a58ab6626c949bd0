//! Configurations as the editor sees them: every `.kcl` file of a document's directory, with
//! the text of open documents in place of what is on disk, checked as `drydock validate`
//! checks them (the same functions of the config crate, so the same diagnostics), and the
//! syntax trees the editor features read.
//!
//! A check parses only the files whose text changed since the last one (a tree's spans
//! carry its file's index, which stays the same while the set of files does). A file that
//! does not parse still has a tree for completion, symbols and navigation: its top-level
//! items parsed one by one, an item broken by the error cut off before the error with its open
//! blocks closed, and, when nothing of it parses, the last tree it had.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use drydock_config::{config_files, evaluate, read_text, Inputs, MAX_SOURCE_BYTES};
use drydock_syntax::ast::File;
use drydock_syntax::diag::{self, Diagnostic, FileId, Sources, Span};
use drydock_syntax::parse_file;
use drydock_syntax::visit::body_spans_mut;
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Position, Range, Url};

use crate::scan;
use crate::text::LineIndex;

/// One `.kcl` file of the directory: its URI, its path and its text (the editor's, if open).
type FileEntry = (Url, PathBuf, Arc<str>);

/// An open document.
#[derive(Debug, Clone)]
pub struct Document {
    pub text: String,
    pub version: i32,
}

/// What identifies a configuration: the directory of its files, or an open document that is
/// not a file (`untitled:`), which is a configuration of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKey {
    Dir(PathBuf),
    Doc(Url),
}

impl ConfigKey {
    pub fn of(uri: &Url) -> ConfigKey {
        match file_path(uri) {
            Some(p) => ConfigKey::Dir(p.parent().map(Path::to_path_buf).unwrap_or_default()),
            None => ConfigKey::Doc(uri.clone()),
        }
    }
}

/// The path of a `file:` URI.
pub fn file_path(uri: &Url) -> Option<PathBuf> {
    if uri.scheme() != "file" {
        return None;
    }
    uri.to_file_path().ok()
}

/// Whether a URI names a `.kcl` file (or an unsaved document, taken as one).
pub fn is_kcl(uri: &Url) -> bool {
    match file_path(uri) {
        Some(p) => p.extension().is_some_and(|e| e == "kcl"),
        None => uri.path().ends_with(".kcl") || uri.scheme() == "untitled",
    }
}

/// Settings from the client (`initializationOptions`, `workspace/didChangeConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `drydock.varFile`: a `.kclvars` file, relative to each configuration's directory.
    pub var_file: Option<String>,
}

impl Settings {
    /// Reads `{ "drydock": { "varFile": … } }` or `{ "varFile": … }`; anything else is no setting.
    pub fn from_json(v: &serde_json::Value) -> Settings {
        let v = v.get("drydock").unwrap_or(v);
        let var_file = v.get("varFile").and_then(|f| f.as_str()).map(str::trim).filter(|f| !f.is_empty());
        Settings { var_file: var_file.map(str::to_string) }
    }
}

/// One `.kcl` file of a configuration, as last checked.
pub struct SourceFile {
    pub uri: Url,
    pub path: PathBuf,
    pub text: Arc<str>,
    pub index: LineIndex,
    /// The parse of `text`: the tree (or an empty one), whether it parsed, and its diagnostics.
    parsed: bool,
    syntax: Vec<Diagnostic>,
}

/// A tree of one file and the text its spans point into (which is not the current text when
/// it is the last good tree of a file that no longer parses).
pub struct Tree {
    pub text: Arc<str>,
    pub index: LineIndex,
    pub file: File,
}

/// A file's text as read from disk, kept while its modification time and length stay.
struct DiskText {
    stamp: (Option<SystemTime>, u64),
    text: Result<Arc<str>, String>,
}

pub struct Config {
    pub key: ConfigKey,
    pub files: Vec<SourceFile>,
    /// The trees of `files` (an empty tree where a file does not parse), in `FileId` order, as
    /// evaluation takes them.
    trees: Vec<(FileId, File)>,
    /// The trees of files that do not parse, made when first asked for.
    recovered: RefCell<BTreeMap<usize, Option<Rc<Tree>>>>,
    /// By path: the last tree of a file that parsed, kept once it stops parsing.
    last_good: HashMap<PathBuf, Rc<Tree>>,
    disk: HashMap<PathBuf, DiskText>,
    /// URIs given diagnostics by the last check (to clear them when they go).
    pub published: BTreeSet<Url>,
    /// The symbol index, made when first asked for after a check.
    pub(crate) index: RefCell<Option<Rc<crate::index::Index>>>,
}

/// The diagnostics of a check, by URI (every URI that had some before is there, maybe empty).
pub type Published = Vec<(Url, Vec<lsp_types::Diagnostic>)>;

impl Config {
    pub fn new(key: ConfigKey) -> Config {
        Config {
            key,
            files: vec![],
            trees: vec![],
            recovered: RefCell::new(BTreeMap::new()),
            last_good: HashMap::new(),
            disk: HashMap::new(),
            published: BTreeSet::new(),
            index: RefCell::new(None),
        }
    }

    /// The directory the configuration is in (its var file is relative to it).
    pub fn dir(&self) -> Option<&Path> {
        match &self.key {
            ConfigKey::Dir(d) => Some(d),
            ConfigKey::Doc(_) => None,
        }
    }

    /// The files of the configuration, by path, with the text of each: open documents' own,
    /// others' from disk. `Err` is a `kcl::io` diagnostic, as `drydock validate` gives.
    fn file_list(&mut self, docs: &HashMap<Url, Document>) -> (Vec<FileEntry>, Vec<Diagnostic>) {
        let mut io = vec![];
        let dir = match &self.key {
            ConfigKey::Doc(uri) => {
                let text = docs.get(uri).map_or_else(|| Arc::from(""), |d| Arc::from(d.text.as_str()));
                return (vec![(uri.clone(), PathBuf::from(uri.path()), text)], io);
            }
            ConfigKey::Dir(d) => d.clone(),
        };
        let mut paths: BTreeMap<PathBuf, Option<Url>> = BTreeMap::new();
        if let Ok(files) = config_files(&dir) {
            for p in files {
                paths.insert(p, None);
            }
        }
        for uri in docs.keys() {
            if let Some(p) = file_path(uri) {
                if p.parent() == Some(dir.as_path()) && p.extension().is_some_and(|e| e == "kcl") {
                    paths.insert(p, Some(uri.clone()));
                }
            }
        }
        let mut out = vec![];
        for (path, uri) in paths {
            let Some(uri) = uri.or_else(|| Url::from_file_path(&path).ok()) else { continue };
            let text = match docs.get(&uri) {
                Some(d) => Arc::from(d.text.as_str()),
                None => match self.read_disk(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        io.push(Diagnostic::global("kcl::io", format!("cannot read {}: {e}", path.display())));
                        continue;
                    }
                },
            };
            out.push((uri, path, text));
        }
        self.disk.retain(|p, _| out.iter().any(|(_, q, _)| q == p));
        (out, io)
    }

    fn read_disk(&mut self, path: &Path) -> Result<Arc<str>, String> {
        let stamp = std::fs::metadata(path).map(|m| (m.modified().ok(), m.len())).unwrap_or((None, 0));
        if let Some(d) = self.disk.get(path) {
            if d.stamp == stamp && d.stamp.0.is_some() {
                return d.text.clone();
            }
        }
        let text = read_text(path, MAX_SOURCE_BYTES).map(Arc::from);
        self.disk.insert(path.to_path_buf(), DiskText { stamp, text: text.clone() });
        text
    }

    /// Checks the configuration as `drydock validate` would (with `inputs` for variables),
    /// and returns its diagnostics by URI.
    pub fn check(&mut self, docs: &HashMap<Url, Document>, inputs: &Inputs) -> Published {
        let (list, io) = self.file_list(docs);
        *self.index.borrow_mut() = None;
        self.recovered.borrow_mut().clear();

        // Parse what changed; keep the trees of the rest.
        let same_files = list.len() == self.files.len() && list.iter().zip(&self.files).all(|(a, b)| a.1 == b.path);
        let mut old_files = std::mem::take(&mut self.files);
        let mut old_trees = std::mem::take(&mut self.trees);
        if !same_files {
            // Every tree's file id changes: parse everything again (keeping the good ones'
            // last trees by path).
            for (f, (_, t)) in old_files.drain(..).zip(old_trees.drain(..)) {
                if f.parsed {
                    self.last_good
                        .insert(f.path.clone(), Rc::new(Tree { text: f.text.clone(), index: f.index, file: t }));
                }
            }
        }
        let mut sources = Sources::new();
        for (i, (uri, path, text)) in list.into_iter().enumerate() {
            let id = sources.add(path.display().to_string(), path.clone(), text.clone());
            let reuse = same_files && (Arc::ptr_eq(&old_files[i].text, &text) || *old_files[i].text == *text);
            if reuse {
                let mut f = std::mem::replace(&mut old_files[i], placeholder());
                f.uri = uri;
                f.text = text;
                self.files.push(f);
                self.trees.push((id, std::mem::replace(&mut old_trees[i].1, empty_file())));
                continue;
            }
            let (tree, syntax) = parse_file(&text, id);
            let index = LineIndex::new(&text);
            let parsed = tree.is_some();
            if same_files && !parsed && old_files[i].parsed {
                // It stopped parsing: keep what it was.
                let old = std::mem::replace(&mut old_files[i], placeholder());
                let t = std::mem::replace(&mut old_trees[i].1, empty_file());
                self.last_good.insert(old.path, Rc::new(Tree { text: old.text, index: old.index, file: t }));
            }
            if parsed {
                self.last_good.remove(&path);
            }
            self.files.push(SourceFile { uri, path, text, index, parsed, syntax });
            self.trees.push((id, tree.unwrap_or_else(empty_file)));
        }
        let paths: BTreeSet<&PathBuf> = self.files.iter().map(|f| &f.path).collect();
        self.last_good.retain(|p, _| paths.contains(p));

        let diags = if !io.is_empty() {
            io
        } else {
            let mut syntax: Vec<Diagnostic> = self.files.iter().flat_map(|f| f.syntax.iter().cloned()).collect();
            if !syntax.is_empty() {
                diag::sort(&mut syntax);
                syntax
            } else if self.files.is_empty() {
                vec![]
            } else {
                evaluate(&mut sources, &self.trees, inputs).1
            }
        };
        self.publish(&sources, diags, docs)
    }

    /// The diagnostics as LSP diagnostics, by URI: those with a span in its file; those
    /// without one (about the run: a var file that cannot be read) at the start of every open
    /// document of the configuration.
    fn publish(&mut self, sources: &Sources, diags: Vec<Diagnostic>, docs: &HashMap<Url, Document>) -> Published {
        let mut by_uri: BTreeMap<Url, Vec<lsp_types::Diagnostic>> = BTreeMap::new();
        // Files the evaluation read besides ours (var files), to point at.
        let mut extra: HashMap<FileId, (Url, Arc<str>, LineIndex)> = HashMap::new();
        let mut locate = |span: Span, files: &[SourceFile]| -> Option<Location> {
            if let Some(f) = files.get(span.file.0 as usize) {
                return Some(Location { uri: f.uri.clone(), range: f.index.range(&f.text, span.start, span.end) });
            }
            let (uri, text, index) = match extra.entry(span.file) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    if (span.file.0 as usize) >= sources.files().count() {
                        return None;
                    }
                    let sf = sources.get(span.file);
                    // `--var` and environment values have no file.
                    let uri = std::fs::canonicalize(&sf.path)
                        .ok()
                        .filter(|p| p.is_file())
                        .and_then(|p| Url::from_file_path(p).ok())?;
                    let text = sf.text.clone();
                    let index = LineIndex::new(&text);
                    v.insert((uri, text, index))
                }
            };
            Some(Location { uri: uri.clone(), range: index.range(text, span.start, span.end) })
        };
        let open: Vec<Url> = {
            let mut v: Vec<Url> =
                self.files.iter().filter(|f| docs.contains_key(&f.uri)).map(|f| f.uri.clone()).collect();
            if v.is_empty() {
                v.extend(self.files.first().map(|f| f.uri.clone()));
            }
            v
        };
        for d in diags {
            let at = d.span.and_then(|s| locate(s, &self.files));
            let related: Vec<DiagnosticRelatedInformation> = d
                .secondary
                .iter()
                .filter_map(|l| {
                    locate(l.span, &self.files)
                        .map(|location| DiagnosticRelatedInformation { location, message: l.text.clone() })
                })
                .collect();
            let mut message = d.message.clone();
            if let Some(h) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(h);
            }
            let make = |range: Range| lsp_types::Diagnostic {
                range,
                severity: Some(DiagnosticSeverity::ERROR),
                code: Some(NumberOrString::String(d.code.to_string())),
                source: Some("drydock".into()),
                message: message.clone(),
                related_information: (!related.is_empty()).then(|| related.clone()),
                ..Default::default()
            };
            match at {
                Some(loc) => by_uri.entry(loc.uri).or_default().push(make(loc.range)),
                None => {
                    let start = Range { start: Position::new(0, 0), end: Position::new(0, 0) };
                    for uri in &open {
                        by_uri.entry(uri.clone()).or_default().push(make(start));
                    }
                }
            }
        }
        let mut out: Published = vec![];
        for uri in std::mem::take(&mut self.published) {
            if !by_uri.contains_key(&uri) {
                out.push((uri, vec![]));
            }
        }
        for f in &self.files {
            if !by_uri.contains_key(&f.uri) {
                out.push((f.uri.clone(), vec![]));
            }
        }
        for (uri, d) in by_uri {
            self.published.insert(uri.clone());
            out.push((uri, d));
        }
        out
    }

    /// Diagnostics cleared: for a configuration no document of which is open any more.
    pub fn clear(&mut self) -> Published {
        let mut uris = std::mem::take(&mut self.published);
        uris.extend(self.files.iter().map(|f| f.uri.clone()));
        uris.into_iter().map(|u| (u, vec![])).collect()
    }

    pub fn file_of(&self, uri: &Url) -> Option<usize> {
        self.files.iter().position(|f| &f.uri == uri)
    }

    /// The tree of file `i` for editor features: its parse, or a recovered one, or its last
    /// good one (whose text is not the current text).
    pub fn tree(&self, i: usize) -> Option<TreeRef<'_>> {
        let f = self.files.get(i)?;
        if f.parsed {
            return Some(TreeRef::Current { file: f, tree: &self.trees.get(i)?.1 });
        }
        let rec = self.recovered.borrow_mut().entry(i).or_insert_with(|| recover(&f.text, FileId(i as u32))).clone();
        if let Some(t) = rec {
            return Some(TreeRef::Kept(t));
        }
        self.last_good.get(&f.path).cloned().map(TreeRef::Kept)
    }
}

/// A tree and the text it was parsed from.
pub enum TreeRef<'a> {
    Current { file: &'a SourceFile, tree: &'a File },
    Kept(Rc<Tree>),
}

impl TreeRef<'_> {
    pub fn file(&self) -> &File {
        match self {
            TreeRef::Current { tree, .. } => tree,
            TreeRef::Kept(t) => &t.file,
        }
    }
    pub fn text(&self) -> &str {
        match self {
            TreeRef::Current { file, .. } => &file.text,
            TreeRef::Kept(t) => &t.text,
        }
    }
    pub fn index(&self) -> &LineIndex {
        match self {
            TreeRef::Current { file, .. } => &file.index,
            TreeRef::Kept(t) => &t.index,
        }
    }
    pub fn range(&self, span: Span) -> Range {
        self.index().range(self.text(), span.start, span.end)
    }
}

fn empty_file() -> File {
    File { body: Default::default(), comments: vec![] }
}

fn placeholder() -> SourceFile {
    SourceFile {
        uri: Url::parse("file:///").expect("a constant URL"),
        path: PathBuf::new(),
        text: Arc::from(""),
        index: LineIndex::new(""),
        parsed: false,
        syntax: vec![],
    }
}

/// Most cut points tried on one broken item.
const MAX_CUTS: usize = 8;

/// What parses of a text that does not: its top-level items (each starting at the beginning of
/// a line) parsed one by one, and an item that does not parse cut before its error with its
/// open blocks closed. `None` when nothing parses.
pub fn recover(text: &str, id: FileId) -> Option<Rc<Tree>> {
    let mut starts = vec![];
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.as_bytes().first().is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_') {
            starts.push(at);
        }
        at += line.len();
    }
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut file = empty_file();
    let mut any = false;
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(text.len());
        let chunk = &text[start..end];
        let parsed = match parse_file(chunk, id) {
            (Some(f), _) => Some(f),
            (None, d) => {
                let err = d.iter().find_map(|d| d.span).map_or(chunk.len(), |s| s.start as usize);
                cut_and_close(chunk, err, id)
            }
        };
        if let Some(mut f) = parsed {
            let shift = |s: &mut Span| {
                s.start += start as u32;
                s.end += start as u32;
            };
            body_spans_mut(&mut f.body, &mut { shift });
            for c in &mut f.comments {
                shift(&mut c.span);
            }
            any |= !f.body.items.is_empty();
            file.body.items.extend(f.body.items);
            file.comments.extend(f.comments);
        }
    }
    any.then(|| Rc::new(Tree { text: Arc::from(text), index: LineIndex::new(text), file }))
}

/// The chunk cut at the start of the line of `err` (or of an earlier line), with the blocks
/// open there closed, if that parses.
fn cut_and_close(chunk: &str, err: usize, id: FileId) -> Option<File> {
    let mut cut = chunk[..err.min(chunk.len())].rfind('\n').map_or(0, |i| i + 1);
    for _ in 0..MAX_CUTS {
        if cut == 0 {
            return None;
        }
        let ctx = scan::context(chunk, cut);
        if ctx.place == scan::Place::ItemStart {
            let mut text = String::with_capacity(cut + ctx.blocks.len() * 2);
            text.push_str(&chunk[..cut]);
            for _ in &ctx.blocks {
                text.push_str("}\n");
            }
            if let (Some(f), _) = parse_file(&text, id) {
                return Some(f);
            }
        }
        cut = chunk[..cut - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: &File) -> Vec<String> {
        let mut out = vec![];
        fn walk(b: &drydock_syntax::ast::Body, out: &mut Vec<String>) {
            for i in &b.items {
                match i {
                    drydock_syntax::ast::Item::Attribute(a) => out.push(a.name.name.to_string()),
                    drydock_syntax::ast::Item::Block(bl) => {
                        out.push(format!(
                            "{}{:?}",
                            bl.kind.name,
                            bl.labels.iter().map(|l| l.value.as_str()).collect::<Vec<_>>()
                        ));
                        walk(&bl.body, out);
                    }
                }
            }
        }
        walk(&f.body, &mut out);
        out
    }

    #[test]
    fn recovery_keeps_what_parses() {
        let text = "variable \"a\" {\n  default = 1\n}\n\ncluster \"c\" {\n  node_group \"g\" {\n    size = 1\n  }\n  node_group \"h\" {\n    size = \n}\n\noutput \"o\" {\n  value = 1\n}\n";
        assert!(parse_file(text, FileId(0)).0.is_none());
        let t = recover(text, FileId(0)).expect("something parses");
        assert_eq!(
            names(&t.file),
            [
                "variable[\"a\"]",
                "default",
                "cluster[\"c\"]",
                "node_group[\"g\"]",
                "size",
                "node_group[\"h\"]",
                "output[\"o\"]",
                "value"
            ]
        );
        // Spans point into the whole text.
        let out = t.file.body.items.last().unwrap().span();
        assert!(text[out.start as usize..out.end as usize].starts_with("output \"o\""));
    }
}
