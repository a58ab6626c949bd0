//! `drydock lsp`: a Language Server Protocol server for `.kcl` files, over stdio.
//!
//! - Diagnostics as you type: every configuration (a directory of `.kcl` files) with an open
//!   document is checked as `drydock validate` checks it — the same functions, so the same
//!   codes, messages, spans and secondary places — with open documents' unsaved text in place
//!   of the files on disk, variables' defaults, `DRYDOCK_VAR_*` and the var file the client
//!   names (`drydock.varFile`).
//! - Formatting: `drydock fmt`'s layout, for the whole document.
//! - Completion, hover, go to definition, find references and the outline (`workspace.rs`,
//!   `scan.rs`, `index.rs`): from the schema (`crates/config/src/schema.rs`, the source of
//!   `docs/language.md`'s tables) and the configuration's trees. A file that does not parse
//!   keeps what of it does (`workspace::recover`).
//!
//! One thread answers everything, in order. A check runs when no message is waiting (so a
//! burst of edits costs one check), or before a request about a configuration that changed.
//! Invariant: nothing a client sends (garbage, positions past the end, a closed stdin) makes
//! it panic; the transport reads on past what it cannot read.

#![allow(clippy::result_large_err)]

pub mod complete;
pub mod docs;
pub mod hover;
pub mod index;
pub mod scan;
pub mod symbols;
pub mod text;
pub mod transport;
pub mod values;
pub mod workspace;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;

use drydock_config::Inputs;
use drydock_syntax::diag::FileId;
use lsp_server::{ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::{
    CompletionOptions, CompletionParams, CompletionResponse, DidChangeConfigurationParams, DidChangeTextDocumentParams,
    DidChangeWatchedFilesParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    DocumentFormattingParams, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability, InitializeParams,
    InitializeResult, MarkupContent, MarkupKind, OneOf, Position, PublishDiagnosticsParams, Range, ReferenceParams,
    SaveOptions, ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextDocumentSyncOptions, TextDocumentSyncSaveOptions, TextEdit, Url,
};

use text::LineIndex;
use transport::Incoming;
use workspace::{Config, ConfigKey, Document, Settings};

/// Evaluation recurses over expressions: the server's thread gets the stack the binary's
/// commands get.
const STACK: usize = 256 << 20;

/// Serves LSP on stdin and stdout until the client says `exit` (or closes stdin). Returns the
/// process's exit code: 0 after `shutdown` then `exit`, 1 otherwise.
pub fn run_stdio() -> i32 {
    let worker = std::thread::Builder::new()
        .name("drydock-lsp".into())
        .stack_size(STACK)
        .spawn(|| serve(io::stdin(), io::stdout()));
    match worker {
        Ok(h) => h.join().unwrap_or(1),
        Err(_) => 1,
    }
}

/// Serves LSP on any pair of streams (the benchmark and tests use pipes).
pub fn serve<R: Read + Send + 'static, W: Write>(input: R, output: W) -> i32 {
    let (tx, rx) = mpsc::channel::<Incoming>();
    let reader = std::thread::Builder::new().name("drydock-lsp-reader".into()).spawn(move || {
        let mut r = BufReader::with_capacity(64 * 1024, input);
        while let Ok(Some(m)) = transport::read(&mut r) {
            if tx.send(m).is_err() {
                break;
            }
        }
    });
    if reader.is_err() {
        return 1;
    }
    let mut server = Server::new(output);
    loop {
        let Ok(first) = rx.recv() else {
            // The input ended without `exit`.
            return if server.shut_down { 0 } else { 1 };
        };
        server.incoming(first);
        while server.exit.is_none() && !server.output_failed {
            match rx.try_recv() {
                Ok(m) => server.incoming(m),
                Err(_) => break,
            }
        }
        if let Some(code) = server.exit {
            return code;
        }
        if server.output_failed {
            return 1;
        }
        server.check_dirty();
        if server.output_failed {
            return 1;
        }
    }
}

/// The server's state.
pub struct Server<W: Write> {
    out: W,
    docs: HashMap<Url, Document>,
    /// Line indexes of open documents, made when a request needs one.
    line_indexes: HashMap<Url, Rc<LineIndex>>,
    configs: BTreeMap<ConfigKey, Config>,
    dirty: BTreeSet<ConfigKey>,
    settings: Settings,
    initialized: bool,
    shut_down: bool,
    snippets: bool,
    exit: Option<i32>,
    output_failed: bool,
}

/// A request's error: a JSON-RPC code and message.
type Failure = (ErrorCode, String);

impl<W: Write> Server<W> {
    pub fn new(out: W) -> Server<W> {
        Server {
            out,
            docs: HashMap::new(),
            line_indexes: HashMap::new(),
            configs: BTreeMap::new(),
            dirty: BTreeSet::new(),
            settings: Settings::default(),
            initialized: false,
            shut_down: false,
            snippets: false,
            exit: None,
            output_failed: false,
        }
    }

    fn send(&mut self, m: Message) {
        if self.output_failed {
            return;
        }
        if transport::write(&mut self.out, &m).is_err() {
            self.output_failed = true;
        }
    }

    fn incoming(&mut self, m: Incoming) {
        match m {
            Incoming::Malformed(why) => {
                if transport::write_parse_error(&mut self.out, &why).is_err() {
                    self.output_failed = true;
                }
            }
            Incoming::Message(m) => self.message(m),
        }
    }

    /// Handles one message. A request is always answered, even if handling it panicked (which
    /// would be a bug): with an internal error instead of a dead server.
    fn message(&mut self, m: Message) {
        let id = match &m {
            Message::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match m {
            Message::Request(r) => self.request(r),
            Message::Notification(n) => self.notification(n),
            Message::Response(_) => {}
        }));
        if result.is_err() {
            if let Some(id) = id {
                self.send(Response::new_err(id, ErrorCode::InternalError as i32, "internal error".into()).into());
            }
        }
    }

    fn request(&mut self, r: Request) {
        let id = r.id.clone();
        let answer: Result<serde_json::Value, Failure> = if !self.initialized && r.method != req::Initialize::METHOD {
            Err((ErrorCode::ServerNotInitialized, "the server is not initialized yet".into()))
        } else if self.shut_down {
            Err((ErrorCode::InvalidRequest, "the server is shutting down".into()))
        } else {
            self.dispatch(r)
        };
        let response = match answer {
            Ok(v) => Response { id, response_result: Ok(v) },
            Err((code, message)) => Response::new_err(id, code as i32, message),
        };
        self.send(response.into());
    }

    fn dispatch(&mut self, r: Request) -> Result<serde_json::Value, Failure> {
        fn params<P: serde::de::DeserializeOwned>(r: Request) -> Result<P, Failure> {
            serde_json::from_value(r.params).map_err(|e| (ErrorCode::InvalidParams, format!("invalid params: {e}")))
        }
        fn json<T: serde::Serialize>(v: T) -> Result<serde_json::Value, Failure> {
            serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
        }
        match r.method.as_str() {
            req::Initialize::METHOD => {
                if self.initialized {
                    return Err((ErrorCode::InvalidRequest, "initialize was sent twice".into()));
                }
                let p: InitializeParams = params(r)?;
                json(self.initialize(p))
            }
            req::Shutdown::METHOD => {
                self.shut_down = true;
                Ok(serde_json::Value::Null)
            }
            req::Completion::METHOD => {
                let p = params(r)?;
                json(self.completion(p))
            }
            req::HoverRequest::METHOD => {
                let p = params(r)?;
                json(self.hover(p))
            }
            req::GotoDefinition::METHOD => {
                let p = params(r)?;
                json(self.definition(p))
            }
            req::References::METHOD => {
                let p = params(r)?;
                json(self.references(p))
            }
            req::DocumentSymbolRequest::METHOD => {
                let p = params(r)?;
                json(self.document_symbols(p))
            }
            req::Formatting::METHOD => {
                let p = params(r)?;
                json(self.formatting(p))
            }
            other => Err((ErrorCode::MethodNotFound, format!("unknown method {other}"))),
        }
    }

    fn notification(&mut self, n: Notification) {
        if n.method == notif::Exit::METHOD {
            self.exit = Some(if self.shut_down { 0 } else { 1 });
            return;
        }
        if !self.initialized {
            return;
        }
        fn params<P: serde::de::DeserializeOwned>(n: Notification) -> Option<P> {
            serde_json::from_value(n.params).ok()
        }
        match n.method.as_str() {
            notif::DidOpenTextDocument::METHOD => {
                if let Some(p) = params::<DidOpenTextDocumentParams>(n) {
                    let uri = p.text_document.uri;
                    self.line_indexes.remove(&uri);
                    self.docs
                        .insert(uri.clone(), Document { text: p.text_document.text, version: p.text_document.version });
                    self.touch(&uri, true);
                }
            }
            notif::DidChangeTextDocument::METHOD => {
                if let Some(p) = params::<DidChangeTextDocumentParams>(n) {
                    let uri = p.text_document.uri;
                    let Some(doc) = self.docs.get_mut(&uri) else { return };
                    for c in p.content_changes {
                        text::apply_change(&mut doc.text, c.range, &c.text);
                    }
                    doc.version = p.text_document.version;
                    self.line_indexes.remove(&uri);
                    self.touch(&uri, false);
                }
            }
            notif::DidCloseTextDocument::METHOD => {
                if let Some(p) = params::<DidCloseTextDocumentParams>(n) {
                    let uri = p.text_document.uri;
                    self.docs.remove(&uri);
                    self.line_indexes.remove(&uri);
                    let key = ConfigKey::of(&uri);
                    let open = self.docs.keys().any(|u| ConfigKey::of(u) == key && workspace::is_kcl(u));
                    if open {
                        self.dirty.insert(key);
                    } else if let Some(mut cfg) = self.configs.remove(&key) {
                        self.dirty.remove(&key);
                        let cleared = cfg.clear();
                        self.publish(cleared);
                    }
                }
            }
            notif::DidSaveTextDocument::METHOD => {
                if let Some(p) = params::<DidSaveTextDocumentParams>(n) {
                    self.touch(&p.text_document.uri, false);
                }
            }
            notif::DidChangeConfiguration::METHOD => {
                if let Some(p) = params::<DidChangeConfigurationParams>(n) {
                    let s = Settings::from_json(&p.settings);
                    if s != self.settings {
                        self.settings = s;
                        self.dirty.extend(self.configs.keys().cloned());
                    }
                }
            }
            notif::DidChangeWatchedFiles::METHOD => {
                if let Some(p) = params::<DidChangeWatchedFilesParams>(n) {
                    for c in p.changes {
                        self.touch(&c.uri, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// Something about `uri` changed: its configuration (made when a `.kcl` document opens)
    /// is checked again.
    fn touch(&mut self, uri: &Url, open: bool) {
        let key = ConfigKey::of(uri);
        if open && workspace::is_kcl(uri) && !self.configs.contains_key(&key) {
            self.configs.insert(key.clone(), Config::new(key.clone()));
        }
        if self.configs.contains_key(&key) {
            self.dirty.insert(key);
        }
    }

    fn initialize(&mut self, p: InitializeParams) -> InitializeResult {
        self.initialized = true;
        if let Some(o) = &p.initialization_options {
            self.settings = Settings::from_json(o);
        }
        self.snippets = p
            .capabilities
            .text_document
            .as_ref()
            .and_then(|t| t.completion.as_ref())
            .and_then(|c| c.completion_item.as_ref())
            .and_then(|i| i.snippet_support)
            .unwrap_or(false);
        InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
                    ..Default::default()
                })),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into(), "\"".into()]),
                    ..Default::default()
                }),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                ..Default::default()
            },
            server_info: Some(ServerInfo { name: "drydock".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
        }
    }

    /// The var file for a configuration: `drydock.varFile`, relative to its directory.
    fn var_file(&self, cfg_key: &ConfigKey) -> Option<PathBuf> {
        let f = PathBuf::from(self.settings.var_file.as_ref()?);
        match cfg_key {
            _ if f.is_absolute() => Some(f),
            ConfigKey::Dir(d) => Some(d.join(f)),
            ConfigKey::Doc(_) => None,
        }
    }

    /// Checks every configuration that changed, and publishes their diagnostics.
    pub fn check_dirty(&mut self) {
        let keys: Vec<ConfigKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        for key in keys {
            self.check(&key);
        }
    }

    fn check(&mut self, key: &ConfigKey) {
        self.dirty.remove(key);
        let var_files: Vec<PathBuf> = self.var_file(key).into_iter().collect();
        let inputs = Inputs::with_process_env(vec![], var_files);
        let Some(cfg) = self.configs.get_mut(key) else { return };
        let published = cfg.check(&self.docs, &inputs);
        self.publish(published);
    }

    fn publish(&mut self, published: workspace::Published) {
        for (uri, diagnostics) in published {
            let version = self.docs.get(&uri).map(|d| d.version);
            let params = PublishDiagnosticsParams { uri, diagnostics, version };
            self.send(Notification::new(notif::PublishDiagnostics::METHOD.into(), params).into());
        }
    }

    /// The configuration of `uri`, checked if it changed; its text, line index and byte
    /// offset of `pos`.
    fn at(&mut self, uri: &Url, pos: Option<Position>) -> Option<(ConfigKey, Rc<LineIndex>, usize)> {
        let key = ConfigKey::of(uri);
        if !self.configs.contains_key(&key) {
            if !self.docs.contains_key(uri) || !workspace::is_kcl(uri) {
                return None;
            }
            self.configs.insert(key.clone(), Config::new(key.clone()));
            self.dirty.insert(key.clone());
        }
        if self.dirty.contains(&key) {
            self.check(&key);
        }
        let doc = self.docs.get(uri)?;
        let index = self.line_indexes.entry(uri.clone()).or_insert_with(|| Rc::new(LineIndex::new(&doc.text))).clone();
        let offset = pos.map_or(0, |p| index.offset(&doc.text, p));
        Some((key, index, offset))
    }

    fn index(&self, key: &ConfigKey) -> Option<Rc<index::Index>> {
        let cfg = self.configs.get(key)?;
        let mut slot = cfg.index.borrow_mut();
        Some(slot.get_or_insert_with(|| Rc::new(index::build(cfg))).clone())
    }

    fn completion(&mut self, p: CompletionParams) -> Option<CompletionResponse> {
        let uri = p.text_document_position.text_document.uri;
        let (key, li, offset) = self.at(&uri, Some(p.text_document_position.position))?;
        let ix = self.index(&key)?;
        let text = &self.docs.get(&uri)?.text;
        let ctx = scan::context(text, offset);
        let range = li.range(text, ctx.prefix_start as u32, offset as u32);
        Some(CompletionResponse::Array(complete::complete(&ctx, &ix, range, self.snippets)))
    }

    fn hover(&mut self, p: HoverParams) -> Option<Hover> {
        let uri = p.text_document_position_params.text_document.uri;
        let (key, li, offset) = self.at(&uri, Some(p.text_document_position_params.position))?;
        let ix = self.index(&key)?;
        let cfg = self.configs.get(&key)?;
        let values = values::Values::new(cfg, &ix, self.var_file(&key));
        let text = &self.docs.get(&uri)?.text;
        let (markdown, (start, end)) = hover::hover(text, offset, &ix, &values)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }),
            range: Some(li.range(text, start as u32, end as u32)),
        })
    }

    fn definition(&mut self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let uri = p.text_document_position_params.text_document.uri;
        let (key, _, offset) = self.at(&uri, Some(p.text_document_position_params.position))?;
        let ix = self.index(&key)?;
        let sym = index::symbol_at(&self.docs.get(&uri)?.text, offset)?;
        ix.definition(&sym).map(|d| GotoDefinitionResponse::Scalar(d.location()))
    }

    fn references(&mut self, p: ReferenceParams) -> Option<Vec<lsp_types::Location>> {
        let uri = p.text_document_position.text_document.uri;
        let (key, _, offset) = self.at(&uri, Some(p.text_document_position.position))?;
        let ix = self.index(&key)?;
        let sym = index::symbol_at(&self.docs.get(&uri)?.text, offset)?;
        let cfg = self.configs.get(&key)?;
        let mut out = vec![];
        if p.context.include_declaration {
            out.extend(ix.definition(&sym).map(index::Decl::location));
        }
        for l in index::references(cfg, &sym) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        Some(out)
    }

    fn document_symbols(&mut self, p: DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
        let uri = p.text_document.uri;
        let (key, _, _) = self.at(&uri, None)?;
        let cfg = self.configs.get(&key)?;
        let tree = index::tree_of(cfg, &uri)?;
        Some(DocumentSymbolResponse::Nested(symbols::document_symbols(&tree)))
    }

    /// `drydock fmt`'s layout; nothing for a document that does not parse (as `fmt` leaves
    /// such a file alone).
    fn formatting(&mut self, p: DocumentFormattingParams) -> Option<Vec<TextEdit>> {
        let uri = p.text_document.uri;
        let doc = self.docs.get(&uri)?;
        let (Some(tree), diags) = drydock_syntax::parse_file(&doc.text, FileId(0)) else { return None };
        if !diags.is_empty() {
            return None;
        }
        let formatted = drydock_syntax::fmt::format(&tree, &doc.text);
        if formatted == doc.text {
            return Some(vec![]);
        }
        let li = LineIndex::new(&doc.text);
        let end = li.position(&doc.text, doc.text.len() as u32);
        Some(vec![TextEdit { range: Range { start: Position::new(0, 0), end }, new_text: formatted }])
    }
}
