//! `drydock lsp` driven as an editor drives it: the real binary, over its stdin and stdout, by
//! a JSON-RPC client written here (Content-Length framing). Diagnostics are compared with what
//! `drydock validate` reports for the same files — the config crate's diagnostics as data, and
//! the binary's own rendering (code and `file:line:col`) — for every case of
//! `tests/diagnostics/` (one per code), and every feature is exercised on a configuration of
//! several files with a var file.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

/// How long a reply may take before the test fails (a guard against a hung server, not a
/// measure of anything).
const REPLY: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the server wrote on stdout, message by message (or why it stopped).
enum Out {
    Message(Value),
    End,
}

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Out>,
    next: i64,
    /// Notifications received while waiting for something else.
    pending: Vec<Value>,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Server {
    fn start(env: &[(&str, OsString)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock"));
        cmd.arg("lsp").arg("--stdio").env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("drydock lsp starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(Out::Message(m)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Out::End);
        });
        let stdin = child.stdin.take();
        Server { child, stdin, rx, next: 0, pending: vec![] }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("the server reads");
        stdin.flush().unwrap();
    }

    fn send(&mut self, v: Value) {
        let body = v.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn recv(&mut self) -> Value {
        match self.rx.recv_timeout(REPLY) {
            Ok(Out::Message(m)) => m,
            Ok(Out::End) => panic!("the server closed its output"),
            Err(_) => panic!("no message from the server in {REPLY:?}"),
        }
    }

    /// Sends a request and returns its response (result or error), keeping notifications.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let m = self.recv();
            if m.get("id") == Some(&json!(id)) && m.get("method").is_none() {
                return m;
            }
            self.pending.push(m);
        }
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// The next diagnostics published for `uri` (at `version`, when given).
    fn diagnostics(&mut self, uri: &str, version: impl Into<Option<Value>>) -> Vec<Value> {
        let version: Option<Value> = version.into();
        let matches = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && version.as_ref().is_none_or(|v| &m["params"]["version"] == v)
        };
        if let Some(i) = self.pending.iter().position(matches) {
            let m = self.pending.remove(i);
            return m["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let m = self.recv();
            if matches(&m) {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.pending.push(m);
        }
    }

    /// The diagnostics last published for `uri` before now (a request answered after them is
    /// the barrier); older ones are dropped.
    fn latest(&mut self, uri: &str) -> Vec<Value> {
        let _ = self.call("no/such/method", json!({}));
        let matches = |m: &Value| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri;
        let last = self.pending.iter().rposition(matches).expect("diagnostics were published");
        let m = self.pending[last].clone();
        self.pending.retain(|m| !matches(m));
        m["params"]["diagnostics"].as_array().unwrap().clone()
    }

    fn initialize(&mut self, options: Value) {
        let r = self.result(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": {}, "initializationOptions": options }),
        );
        assert_eq!(r["serverInfo"]["name"], "drydock");
        assert_eq!(r["capabilities"]["documentFormattingProvider"], true);
        self.notify("initialized", json!({}));
    }

    fn open(&mut self, path: &Path, text: &str) -> String {
        let uri = uri(path);
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "kcl", "version": 1, "text": text } }),
        );
        uri
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    /// `shutdown`, `exit`, and the exit code; stderr must hold no panic.
    fn stop(mut self) {
        let r = self.result("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        self.wait_for(0);
    }

    fn wait_for(mut self, code: i32) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(!stderr.contains("panicked"), "the server panicked:\n{stderr}");
        assert_eq!(status.code(), Some(code), "exit status; stderr:\n{stderr}");
    }
}

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A byte offset as an LSP position (UTF-16), computed here independently of the server.
fn position(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = before[start..].chars().map(char::len_utf16).sum();
    json!({ "line": line, "character": character })
}

/// The position just after the `n`-th occurrence (from 0) of `needle`, or inside it at `+k`.
fn pos_of(text: &str, needle: &str, k: usize) -> Value {
    let i = text.find(needle).unwrap_or_else(|| panic!("{needle:?} in the text"));
    position(text, i + k)
}

/// One diagnostic as the server must publish it, with its URI and whether it has a place.
struct Want {
    uri: String,
    diag: Value,
    spanned: bool,
}

/// What the LSP diagnostics of a check must be: the config crate's diagnostics for the same
/// files and inputs (what `drydock validate` renders), converted here.
fn expected(dir: &Path, inputs: &drydock_config::Inputs) -> Vec<Want> {
    let loaded = drydock_config::load(dir, inputs);
    let loc = |span: drydock_syntax::diag::Span| -> Option<(String, Value)> {
        let f = loaded.sources.files().nth(span.file.0 as usize)?.1;
        if !f.path.is_file() {
            return None;
        }
        let text = &f.text;
        let range = json!({ "start": position(text, span.start as usize), "end": position(text, span.end as usize) });
        Some((uri(&std::fs::canonicalize(&f.path).unwrap()), range))
    };
    let first = drydock_config::config_files(dir).unwrap()[0].clone();
    let mut out = vec![];
    for d in &loaded.diagnostics {
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str(&format!("\nhelp: {h}"));
        }
        let related: Vec<Value> = d
            .secondary
            .iter()
            .filter_map(|l| {
                loc(l.span).map(|(u, r)| json!({ "location": { "uri": u, "range": r }, "message": l.text }))
            })
            .collect();
        let at = d.span.and_then(loc);
        let spanned = at.is_some();
        let (u, range) = at.unwrap_or_else(|| {
            (uri(&first), json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } }))
        });
        let mut v = json!({ "range": range, "severity": 1, "code": d.code, "source": "drydock", "message": message });
        if !related.is_empty() {
            v["relatedInformation"] = json!(related);
        }
        out.push(Want { uri: u, diag: v, spanned });
    }
    out
}

/// The expected diagnostics of one URI.
fn of(want: &[Want], u: &str) -> Vec<Value> {
    want.iter().filter(|w| w.uri == u).map(|w| w.diag.clone()).collect()
}

/// `drydock validate` on the same files: every code, and each spanned diagnostic's
/// `file:line:col`, are in what the binary prints.
fn validate_agrees(dir: &Path, args: &[String], env: &[(&str, OsString)], want: &[Want]) {
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .arg("validate")
        .arg(dir)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "validate {} fails", dir.display());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if want.len() > 1 {
        let c = format!("{} errors", want.len());
        assert!(stderr.contains(&c), "validate reports {c}:\n{stderr}");
    }
    for w in want {
        let code = w.diag["code"].as_str().unwrap();
        assert!(stderr.contains(code), "validate shows {code}:\n{stderr}");
        if !w.spanned {
            continue;
        }
        let path = w.uri.strip_prefix("file://").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let start = &w.diag["range"]["start"];
        let (line, ch) = (start["line"].as_u64().unwrap() as usize, start["character"].as_u64().unwrap() as usize);
        // miette counts columns in characters: the same as UTF-16 units on ASCII lines.
        if text.lines().nth(line).unwrap_or("").is_ascii() {
            let place = format!("{path}:{}:{}]", line + 1, ch + 1);
            assert!(stderr.contains(&place), "validate points at {place}:\n{stderr}");
        }
    }
}

/// Every case of `tests/diagnostics/` (one per diagnostic code), opened in a server of its
/// own, gets the diagnostics `drydock validate` reports for it: same codes, ranges, messages
/// and related places.
#[test]
fn diagnostics_equal_validate_for_every_code() {
    let cases_dir = repo().join("tests/diagnostics");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kcl"))
        .collect();
    cases.sort();
    assert!(cases.len() > 30, "one case per code");
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let mut codes_seen = vec![];
    for case in &cases {
        let code = format!("kcl::{}", case.file_stem().unwrap().to_str().unwrap());
        let text = std::fs::read_to_string(case).unwrap();
        let dir = root.join(case.file_stem().unwrap());
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join(case.file_name().unwrap());
        std::fs::write(&file, &text).unwrap();
        // The case's command-line arguments, as a language server is given them: a var file in
        // the settings (`--var NAME=VALUE` written into one), or the environment.
        let args: Vec<String> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# args:"))
            .map(|a| a.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let mut var_file = None;
        let mut env: Vec<(&str, OsString)> = vec![];
        let mut validate_args = vec![];
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let v = it.next().expect("a flag's value");
            match (a.as_str(), v.split_once('=')) {
                ("--var-file", _) => var_file = Some(v.clone()),
                ("--var", Some((name, value))) => {
                    let f = "given.kclvars";
                    std::fs::write(dir.join(f), format!("{name} = {value:?}\n")).unwrap();
                    var_file = Some(f.to_string());
                }
                // `--var image`, not NAME=VALUE: the server's other way to get a bad value is
                // a `DRYDOCK_VAR_` variable that is not UTF-8.
                ("--var", None) => {
                    use std::os::unix::ffi::OsStringExt;
                    env.push(("DRYDOCK_VAR_image", OsString::from_vec(vec![0xff, 0xfe])));
                }
                _ => panic!("unknown argument {a} in {}", case.display()),
            }
        }
        if let Some(f) = &var_file {
            validate_args.push("--var-file".to_string());
            validate_args.push(dir.join(f).display().to_string());
        }
        let mut server = Server::start(&env);
        server.initialize(json!({ "drydock": { "varFile": var_file } }));
        let u = server.open(&file, &text);
        let got = server.diagnostics(&u, json!(1));
        let inputs = drydock_config::Inputs {
            var_files: var_file.iter().map(|f| dir.join(f)).collect(),
            env_not_utf8: env.iter().filter_map(|(k, _)| k.strip_prefix("DRYDOCK_VAR_")).map(String::from).collect(),
            ..Default::default()
        };
        let want = expected(&dir, &inputs);
        assert_eq!(Value::Array(got.clone()), Value::Array(of(&want, &u)), "{}: diagnostics differ", case.display());
        assert!(want.iter().any(|w| w.diag["code"] == code.as_str()), "{}: no {code} in {got:#?}", case.display());
        // Files other than the one open (a var file) get theirs too.
        let others: std::collections::BTreeSet<&String> = want.iter().map(|w| &w.uri).filter(|o| **o != u).collect();
        for other in others {
            assert_eq!(server.diagnostics(other, None), of(&want, other), "{}: diagnostics of {other}", case.display());
        }
        validate_agrees(&dir, &validate_args, &env, &want);
        codes_seen.push(code);
        server.stop();
    }
    assert_eq!(codes_seen.len(), cases.len());
}

const VARIABLES: &str = r#"variable "region" {
  type        = string
  description = "Where the clusters run"
  default     = "us-east-1"
}

variable "token" {
  type      = string
  default   = "000000.0000000000000000"
  sensitive = true
}
"#;

const MAIN: &str = r#"provider "sim" {}

locals {
  zones  = [for z in ["a", "b"] : "${var.region}${z}"]
  secret = "join ${var.token}"
}

cluster "core" {
  kubernetes_version = "1.31"

  network {
    subnets = local.zones
  }

  node_group "workers" {
    image         = "img-1"
    instance_type = "m6i.large"
    size          = 2..6
    role          = "worker"

    health {
      check = "ec2"
    }
  }

  node_group "pools" {
    for_each      = { a = "m6i.large" }
    image         = "img-1"
    instance_type = each.value
    size          = 1
  }
}

output "groups" {
  value = cluster.core.node_group.workers.group_names
}
"#;

fn labels(items: &Value) -> Vec<String> {
    let items = items.as_array().or_else(|| items["items"].as_array()).expect("completion items");
    items.iter().map(|i| i["label"].as_str().unwrap().to_string()).collect()
}

fn hover_text(v: &Value) -> String {
    v["contents"]["value"].as_str().unwrap_or_default().to_string()
}

/// Text with `|` at the position: (text without it, position).
fn marked(src: &str) -> (String, Value) {
    let i = src.find('|').unwrap();
    let text = src.replacen('|', "", 1);
    let p = position(&text, i);
    (text, p)
}

#[test]
fn an_editor_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    std::fs::write(dir.join("variables.kcl"), VARIABLES).unwrap();
    std::fs::write(dir.join("main.kcl"), MAIN).unwrap();
    std::fs::write(dir.join("prod.kclvars"), "region = \"eu-west-1\"\n").unwrap();
    let main = dir.join("main.kcl");
    let mut s = Server::start(&[]);
    s.initialize(json!({ "drydock": { "varFile": "prod.kclvars" } }));
    let u = s.open(&main, MAIN);
    assert_eq!(s.diagnostics(&u, json!(1)), Vec::<Value>::new(), "the configuration is valid");
    let doc = json!({ "uri": u });
    let vars_uri = uri(&dir.join("variables.kcl"));

    // Diagnostics as you type, from the unsaved text, equal to validate's for the same files
    // (checked in a copy of the directory with the text written out): those of main.kcl, and
    // of variables.kcl, which is not open.
    let mut version = 1;
    let check = |s: &mut Server, version: i64, text: &str| -> (Vec<Value>, Vec<Value>) {
        s.change(&u, version, text);
        let got = s.diagnostics(&u, json!(version));
        let copy = tempfile::tempdir().unwrap();
        let cdir = std::fs::canonicalize(copy.path()).unwrap();
        std::fs::write(cdir.join("variables.kcl"), VARIABLES).unwrap();
        std::fs::write(cdir.join("main.kcl"), text).unwrap();
        std::fs::write(cdir.join("prod.kclvars"), "region = \"eu-west-1\"\n").unwrap();
        let inputs = drydock_config::Inputs { var_files: vec![cdir.join("prod.kclvars")], ..Default::default() };
        let want = expected(&cdir, &inputs);
        let ours = |v: Vec<Value>| {
            serde_json::to_string(&v).unwrap().replace(&cdir.display().to_string(), &dir.display().to_string())
        };
        assert_eq!(serde_json::to_string(&got).unwrap(), ours(of(&want, &uri(&cdir.join("main.kcl")))));
        let got_vars = s.latest(&vars_uri);
        assert_eq!(serde_json::to_string(&got_vars).unwrap(), ours(of(&want, &uri(&cdir.join("variables.kcl")))));
        (got, got_vars)
    };
    version += 1;
    let (got, _) = check(
        &mut s,
        version,
        &MAIN.replace("instance_type = \"m6i.large\"\n    size", "instance_typ = \"m6i.large\"\n    size"),
    );
    // The unknown attribute, and the node group without an instance type.
    assert_eq!(got.len(), 2);
    let unknown = got.iter().find(|d| d["code"] == "kcl::unknown_attribute").expect("kcl::unknown_attribute");
    assert_eq!(unknown["message"], "node_group has no attribute `instance_typ`\nhelp: did you mean `instance_type`?");
    assert_eq!(unknown["range"]["start"], pos_of(MAIN, "instance_type = \"m6i.large\"\n    size", 0));
    version += 1;
    let (got, _) = check(&mut s, version, &MAIN.replace("var.region}", "var.regin}"));
    assert_eq!(got[0]["code"], "kcl::undefined_reference");
    // A declaration twice: the error is on the second (in variables.kcl, which is not open),
    // and points back at the first (in main.kcl's unsaved text).
    version += 1;
    let (got, vars) = check(&mut s, version, &format!("{MAIN}\nvariable \"region\" {{}}\n"));
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(vars[0]["code"], "kcl::duplicate_block");
    assert_eq!(vars[0]["relatedInformation"][0]["location"]["uri"], u.as_str());
    version += 1;
    let (got, _) = check(&mut s, version, "cluster \"x\" {\n  size = [1,\n}\n");
    assert_eq!(got[0]["code"], "kcl::syntax");
    version += 1;
    s.change(&u, version, MAIN);
    assert!(s.diagnostics(&u, json!(version)).is_empty());
    assert!(s.latest(&vars_uri).is_empty());

    // Completion: names valid where the position is, enum values, references, functions.
    let complete = |s: &mut Server, version: &mut i64, src: &str| -> Vec<String> {
        let (text, p) = marked(src);
        *version += 1;
        s.change(&u, *version, &text);
        labels(&s.result("textDocument/completion", json!({ "textDocument": { "uri": u }, "position": p })))
    };
    let at = |needle: &str, insert: &str| {
        let i = MAIN.find(needle).unwrap() + needle.len();
        format!("{}{insert}|{}", &MAIN[..i], &MAIN[i..])
    };
    let l = complete(&mut s, &mut version, &at("    role          = \"worker\"\n", "    "));
    for want in ["capacity_type", "labels", "rollout", "drain", "bootstrap"] {
        assert!(l.contains(&want.to_string()), "{want} in {l:?}");
    }
    assert!(!l.contains(&"image".to_string()), "image is set already: {l:?}");
    assert!(!l.contains(&"kubernetes_version".to_string()), "{l:?}");
    let l = complete(&mut s, &mut version, &at("    role          = \"worker\"\n", "    capacity_type = \""));
    assert_eq!(l, ["on-demand", "spot"]);
    let l = complete(&mut s, &mut version, &at("      check = \"ec2\"\n", "      grace_period = 1m\n      "));
    assert!(l.contains(&"unhealthy_timeout".to_string()) && !l.contains(&"check".to_string()), "{l:?}");
    let l = complete(&mut s, &mut version, &MAIN.replace("check = \"ec2\"", "check = |"));
    assert_eq!(l[..2], ["\"ec2\"", "\"elb\""], "{l:?}");
    let l = complete(&mut s, &mut version, &MAIN.replace("${var.region}", "${var.|}"));
    assert_eq!(l, ["region", "token"]);
    let l = complete(&mut s, &mut version, &MAIN.replace("subnets = local.zones", "subnets = local.|"));
    assert_eq!(l, ["secret", "zones"]);
    let l = complete(&mut s, &mut version, &MAIN.replace("instance_type = each.value", "instance_type = each.|"));
    assert_eq!(l, ["key", "value"]);
    let l = complete(&mut s, &mut version, &MAIN.replace("node_group.workers.group_names", "node_group.|"));
    assert_eq!(l, ["pools", "workers"]);
    let items = {
        let (text, p) = marked(&MAIN.replace("subnets = local.zones", "subnets = jo|"));
        version += 1;
        s.change(&u, version, &text);
        s.result("textDocument/completion", json!({ "textDocument": { "uri": u }, "position": p }))
    };
    let join = items.as_array().unwrap().iter().find(|i| i["label"] == "join").expect("join is offered");
    assert_eq!(join["detail"], "join(separator, list)");
    let l = labels(&items);
    assert!(l.contains(&"var".to_string()) && l.contains(&"local".to_string()), "{l:?}");
    let l = complete(&mut s, &mut version, &format!("{MAIN}\n|"));
    for want in ["cluster", "variable", "locals", "provider", "backend", "output"] {
        assert!(l.contains(&want.to_string()), "{want} in {l:?}");
    }
    let l = complete(&mut s, &mut version, &format!("{MAIN}\nprovider \"|"));
    assert_eq!(l, ["sim", "aws"]);

    // Hover: the schema's documentation, values where known (never a sensitive one).
    version += 1;
    s.change(&u, version, MAIN);
    let hover = |s: &mut Server, p: Value| {
        hover_text(&s.result("textDocument/hover", json!({ "textDocument": doc, "position": p })))
    };
    let h = hover(&mut s, pos_of(MAIN, "    size          = 2..6", 5));
    assert!(h.contains("whole number, or a range") && h.contains("in place"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "    image         = \"img-1\"", 5));
    assert!(h.contains("replaces the nodes"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "  node_group \"workers\"", 4));
    assert!(h.contains("node_group") && h.contains("rollout"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "var.region", 6));
    assert!(h.contains("Where the clusters run") && h.contains("\"eu-west-1\"") && h.contains("var file"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "local.zones", 8));
    assert!(h.contains("[\"eu-west-1a\", \"eu-west-1b\"]"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "var.token", 6));
    assert!(h.contains("sensitive") && !h.contains("000000"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "  secret = ", 4));
    assert!(h.contains("sensitive") && !h.contains("000000"), "{h}");
    let h = hover(&mut s, pos_of(MAIN, "check = \"ec2\"", 2));
    assert!(h.contains("health") && h.contains("`\"ec2\"`"), "{h}");

    // Go to definition, find references.
    let def =
        s.result("textDocument/definition", json!({ "textDocument": doc, "position": pos_of(MAIN, "var.region", 6) }));
    assert_eq!(def["uri"], vars_uri.as_str());
    assert_eq!(def["range"]["start"], pos_of(VARIABLES, "\"region\"", 0));
    let def =
        s.result("textDocument/definition", json!({ "textDocument": doc, "position": pos_of(MAIN, "local.zones", 7) }));
    assert_eq!(def["range"]["start"], pos_of(MAIN, "zones  =", 0));
    let def = s.result(
        "textDocument/definition",
        json!({ "textDocument": doc, "position": pos_of(MAIN, "node_group.workers.group_names", 12) }),
    );
    assert_eq!(def["range"]["start"], pos_of(MAIN, "\"workers\" {", 0));
    // The declaration in variables.kcl (not open: read from disk), the use in main.kcl.
    let refs = s.result(
        "textDocument/references",
        json!({ "textDocument": doc, "position": pos_of(MAIN, "var.region", 5), "context": { "includeDeclaration": true } }),
    );
    let refs = refs.as_array().unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert_eq!(refs[0]["uri"], vars_uri.as_str());
    assert_eq!(refs[1]["range"]["start"], pos_of(MAIN, "region}", 0));
    let refs = s.result(
        "textDocument/references",
        json!({ "textDocument": doc, "position": pos_of(MAIN, "zones  =", 1), "context": { "includeDeclaration": false } }),
    );
    assert_eq!(refs.as_array().unwrap().len(), 1);
    assert_eq!(refs[0]["range"]["start"], pos_of(MAIN, "zones\n", 0));

    // The outline.
    let symbols = s.result("textDocument/documentSymbol", json!({ "textDocument": doc }));
    let names: Vec<&str> = symbols.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["provider \"sim\"", "local.zones", "local.secret", "core", "output.groups"]);
    let groups: Vec<&str> =
        symbols[3]["children"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(groups, ["workers", "pools"]);

    // A file that does not parse keeps its outline and completion from what does.
    version += 1;
    let broken = MAIN.replace("    size          = 1\n", "    size          = \n");
    s.change(&u, version, &broken);
    assert_eq!(s.diagnostics(&u, json!(version))[0]["code"], "kcl::syntax");
    let symbols = s.result("textDocument/documentSymbol", json!({ "textDocument": doc }));
    let names: Vec<&str> = symbols.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["provider \"sim\"", "local.zones", "local.secret", "core", "output.groups"]);
    let l = complete(&mut s, &mut version, &broken.replace("${var.region}", "${var.|}"));
    assert_eq!(l, ["region", "token"]);
    let l = complete(&mut s, &mut version, &broken.replace("node_group.workers.group_names", "node_group.|"));
    assert!(l.contains(&"workers".to_string()), "{l:?}");

    // Formatting: what `drydock fmt` writes.
    let messy = "provider \"sim\" {\n    boot_time=2s   # boot\n    seed = 7 // seed\n}\nlocals {\n    zones = [\"a\",\"b\",\n       \"c\"]\n}\n";
    version += 1;
    s.change(&u, version, messy);
    let edits = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1);
    let fmt_dir = tempfile::tempdir().unwrap();
    let f = fmt_dir.path().join("x.kcl");
    std::fs::write(&f, messy).unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_drydock")).arg("fmt").arg(&f).output().unwrap();
    assert!(st.status.success());
    assert_eq!(edits[0]["newText"], std::fs::read_to_string(&f).unwrap());
    assert_eq!(edits[0]["range"]["start"], json!({ "line": 0, "character": 0 }));
    assert_eq!(edits[0]["range"]["end"], position(messy, messy.len()));
    // Nothing to change; and nothing for text that does not parse.
    version += 1;
    s.change(&u, version, MAIN);
    let edits = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits, json!([]));
    version += 1;
    s.change(&u, version, "a = (");
    let edits = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits, Value::Null);

    // Closing the document clears its configuration's diagnostics.
    s.notify("textDocument/didClose", json!({ "textDocument": doc }));
    assert_eq!(s.diagnostics(&u, Value::Null), Vec::<Value>::new());
    s.stop();
}

/// Garbage never kills the server: bytes that are no message, JSON that is no request,
/// requests before `initialize`, bad parameters, positions past the end and in the middle of a
/// character, unknown methods; then stdin closes without `exit` (exit code 1, no panic).
#[test]
fn garbage_and_a_closed_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    std::fs::write(dir.join("main.kcl"), MAIN).unwrap();
    let mut s = Server::start(&[]);
    let r = s.call("textDocument/hover", json!({}));
    assert_eq!(r["error"]["code"], -32002, "not initialized: {r}");
    s.send_raw(b"this is not a header\r\n\r\n");
    assert_eq!(s.recv()["error"]["code"], -32700);
    s.send_raw(b"Content-Length: 5\r\n\r\n{{{{{");
    assert_eq!(s.recv()["error"]["code"], -32700);
    s.send_raw(b"Content-Length: 12\r\n\r\n[1, 2, true]");
    assert_eq!(s.recv()["error"]["code"], -32700);
    s.initialize(json!(["not", "settings"]));
    let u = s.open(&dir.join("main.kcl"), "cluster \"\u{1F600}é\" {\n  size = \"x\u{1F600}\"\n}\n");
    let _ = s.diagnostics(&u, json!(1));
    let r = s.call("textDocument/completion", json!({ "textDocument": 5 }));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.call("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    for (line, character) in [(0, 9), (0, 10), (1, 12), (1, 13), (99, 0), (0, 4_000_000_000u64), (4_000_000_000u64, 7)]
    {
        let p = json!({ "textDocument": { "uri": u }, "position": { "line": line, "character": character } });
        for method in ["textDocument/completion", "textDocument/hover", "textDocument/definition"] {
            let r = s.call(method, p.clone());
            assert!(r.get("error").is_none(), "{method} at {line}:{character}: {r}");
        }
        let mut refs = p.clone();
        refs["context"] = json!({ "includeDeclaration": true });
        assert!(s.call("textDocument/references", refs).get("error").is_none());
    }
    // Edits with ranges past the end, reversed, inside a character.
    for (a, b) in [((0, 11), (0, 9)), ((50, 0), (60, 0)), ((1, 12), (1, 12))] {
        s.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": u, "version": 2 }, "contentChanges": [{
                "range": { "start": { "line": a.0, "character": a.1 }, "end": { "line": b.0, "character": b.1 } },
                "text": "\u{1F600}{\"" }] }),
        );
    }
    // Documents nobody opened, a change to one, notifications with bad parameters.
    s.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///nowhere.kcl", "version": 1 }, "contentChanges": [{ "text": "x" }] }),
    );
    s.notify("textDocument/didOpen", json!({ "textDocument": "nope" }));
    let r = s.call(
        "textDocument/hover",
        json!({ "textDocument": { "uri": "untitled:x" }, "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(r["result"], Value::Null);
    let r = s.call("textDocument/documentSymbol", json!({ "textDocument": { "uri": u } }));
    assert!(r.get("error").is_none(), "{r}");
    // Random bytes in frames, and a message cut off by the end of the input.
    let mut seed = 7u64;
    for _ in 0..200 {
        let mut body = vec![];
        for _ in 0..(seed % 40) {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            body.push((seed >> 33) as u8);
        }
        s.send_raw(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        s.send_raw(&body);
    }
    let r = s
        .call("textDocument/hover", json!({ "textDocument": { "uri": u }, "position": { "line": 0, "character": 0 } }));
    assert!(r.get("error").is_none(), "the server still answers: {r}");
    s.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"");
    s.wait_for(1);
}
