//! How long the language server takes to re-check a configuration of 1,000 node groups after
//! an edit: from sending `textDocument/didChange` to receiving the `publishDiagnostics` of the
//! new version, through the server's real transport (JSON-RPC framed on a pipe, the server on
//! its own thread as `drydock lsp` runs it). Run: `cargo bench -p drydock-lsp --bench recheck`.
//!
//! Cases, each `DRYDOCK_BENCH_RUNS` edits (default 40): a valid edit (a node group's size) in
//! the 1,000-group detailed fleet (`drydock_testgen::fleet_detailed`, one file of ~360 KB),
//! the same in the fleet split over 20 files (one per cluster: only the edited file is parsed
//! again), an edit that breaks the syntax and one that repairs it, and completion and hover
//! requests in the large file. The budget is 50 ms per re-check.

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use drydock_lsp::transport::{self, Incoming};
use lsp_server::{Message, Notification, Request, RequestId};
use serde_json::{json, Value};

struct Client {
    to: std::io::PipeWriter,
    from: BufReader<std::io::PipeReader>,
    next: i32,
}

impl Client {
    fn send(&mut self, m: Message) {
        transport::write(&mut self.to, &m).expect("the server reads");
    }
    fn notify(&mut self, method: &str, params: Value) {
        self.send(Notification::new(method.into(), params).into());
    }
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.send(Request::new(id.clone(), method.into(), params).into());
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => return r.response_result.unwrap_or(Value::Null),
                _ => {}
            }
        }
    }
    fn recv(&mut self) -> Message {
        match transport::read(&mut self.from).expect("the server writes") {
            Some(Incoming::Message(m)) => m,
            other => panic!("unexpected {other:?}"),
        }
    }
    /// Waits for the diagnostics of `uri` at `version`; returns how many there were.
    fn diagnostics(&mut self, uri: &str, version: i32) -> usize {
        loop {
            if let Message::Notification(n) = self.recv() {
                if n.method == "textDocument/publishDiagnostics"
                    && n.params["uri"] == uri
                    && n.params["version"] == version
                {
                    return n.params["diagnostics"].as_array().map_or(0, Vec::len);
                }
            }
        }
    }
}

fn start() -> (Client, std::thread::JoinHandle<i32>) {
    let (server_in, to) = std::io::pipe().expect("a pipe");
    let (from, server_out) = std::io::pipe().expect("a pipe");
    let server = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || drydock_lsp::serve(server_in, server_out))
        .expect("a thread");
    let mut c = Client { to, from: BufReader::new(from), next: 0 };
    c.request("initialize", json!({ "capabilities": {} }));
    c.notify("initialized", json!({}));
    (c, server)
}

fn stop(mut c: Client, server: std::thread::JoinHandle<i32>) {
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    c.to.flush().ok();
    assert_eq!(server.join().expect("the server thread"), 0);
}

fn position(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1);
    json!({ "line": line, "character": col })
}

fn stats(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    let max = *times.last().unwrap();
    println!(
        "{name:<58} median {:>7.2} ms   p95 {:>7.2} ms   max {:>7.2} ms   ({} runs)",
        ms(median),
        ms(p95),
        ms(max),
        times.len()
    );
    p95
}

/// Valid edits of the first `size` in `uri`'s text (a one-character value): alternating
/// between two values.
fn edit_sizes(c: &mut Client, uri: &str, text: &str, runs: usize, version: &mut i32) -> Vec<Duration> {
    let at = text.find("size          = ").expect("a node group size") + "size          = ".len();
    let mut times = vec![];
    for k in 0..runs {
        *version += 1;
        let value = if k % 2 == 0 { "7" } else { "5" };
        let old_len = text[at..].find('\n').unwrap();
        let start = position(text, at);
        let end = position(text, at + old_len);
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": *version },
                "contentChanges": [{ "range": { "start": start, "end": end }, "text": value }],
            }),
        );
        let n = c.diagnostics(uri, *version);
        times.push(t.elapsed());
        assert_eq!(n, 0, "a valid edit has no diagnostics");
    }
    times
}

fn open(c: &mut Client, path: &Path, text: &str) -> String {
    let uri = format!("file://{}", path.display());
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "kcl", "version": 0, "text": text } }),
    );
    uri
}

fn main() {
    let runs: usize = std::env::var("DRYDOCK_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    let groups: usize = std::env::var("DRYDOCK_BENCH_GROUPS").ok().and_then(|r| r.parse().ok()).unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("drydock-lsp-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let one = dir.join("one");
    let split = dir.join("split");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&split).unwrap();

    // The whole fleet in one file; the first value of a size is made one character long so
    // that every edit replaces one character with one.
    let fleet = drydock_testgen::fleet_detailed(groups, 7);
    let at = fleet.find("size          = ").unwrap() + "size          = ".len();
    let end = at + fleet[at..].find('\n').unwrap();
    let fleet = format!("{}5{}", &fleet[..at], &fleet[end..]);
    std::fs::write(one.join("main.kcl"), &fleet).unwrap();
    println!(
        "drydock lsp: re-check after an edit, {groups} node groups ({} KB in one file; and split per cluster)",
        fleet.len() / 1024
    );

    let (mut c, server) = start();
    let uri = open(&mut c, &one.join("main.kcl"), &fleet);
    let t = Instant::now();
    let n = c.diagnostics(&uri, 0);
    assert_eq!(n, 0, "the generated fleet is valid");
    println!("{:<58} {:>7.2} ms", "first check on open", t.elapsed().as_secs_f64() * 1000.0);
    let mut version = 0;
    let mut budget = vec![];
    budget.push(stats(
        "valid edit, one file (parse + evaluate all)",
        edit_sizes(&mut c, &uri, &fleet, runs, &mut version),
    ));

    // An edit that breaks the syntax, then one that repairs it.
    let mut broken = vec![];
    let mut repaired = vec![];
    let pos_at = fleet.find("    labels = {").unwrap() + "    labels = ".len();
    for _ in 0..runs.max(2) / 2 {
        let p = position(&fleet, pos_at);
        let p2 = json!({ "line": p["line"], "character": p["character"].as_u64().unwrap() + 1 });
        version += 1;
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version },
                    "contentChanges": [{ "range": { "start": p, "end": p2 }, "text": "(" }] }),
        );
        assert!(c.diagnostics(&uri, version) > 0);
        broken.push(t.elapsed());
        version += 1;
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version },
                    "contentChanges": [{ "range": { "start": p, "end": p2 }, "text": "{" }] }),
        );
        assert_eq!(c.diagnostics(&uri, version), 0);
        repaired.push(t.elapsed());
    }
    budget.push(stats("edit that breaks the syntax (one file)", broken));
    budget.push(stats("edit that repairs it", repaired));

    // Completion and hover in the large file (the symbol index made again after an edit).
    let mut completion = vec![];
    let mut hover = vec![];
    let ref_at = fleet.find("var.image").unwrap() + "var.".len();
    for k in 0..runs {
        let v = if k % 2 == 0 { "7" } else { "5" };
        let p = position(&fleet, at);
        let p2 = json!({ "line": p["line"], "character": p["character"].as_u64().unwrap() + 1 });
        version += 1;
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version },
                    "contentChanges": [{ "range": { "start": p, "end": p2 }, "text": v }] }),
        );
        let t = Instant::now();
        let items = c.request(
            "textDocument/completion",
            json!({ "textDocument": { "uri": uri }, "position": position(&fleet, ref_at) }),
        );
        completion.push(t.elapsed());
        assert!(items.as_array().is_some_and(|a| a.iter().any(|i| i["label"] == "image")), "{items}");
        let t = Instant::now();
        let h = c.request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": position(&fleet, ref_at + 1) }),
        );
        hover.push(t.elapsed());
        assert!(h["contents"]["value"].as_str().is_some_and(|s| s.contains("img-2026-11")), "{h}");
    }
    stats("completion right after an edit (re-check included)", completion);
    stats("hover on var.image", hover);
    stop(c, server);

    // The fleet split over one file per cluster.
    let mut files = vec![];
    let mut rest = fleet.as_str();
    let header_end = rest.find("\ncluster \"").unwrap();
    std::fs::write(split.join("000-common.kcl"), &rest[..header_end]).unwrap();
    rest = &rest[header_end + 1..];
    let mut k = 0;
    while !rest.is_empty() {
        let end = rest[1..].find("\ncluster \"").map_or(rest.len(), |i| i + 2);
        let name = split.join(format!("c{k:03}.kcl"));
        std::fs::write(&name, &rest[..end]).unwrap();
        files.push((name, rest[..end].to_string()));
        rest = &rest[end..];
        k += 1;
    }
    let (mut c, server) = start();
    let (path, text) = &files[0];
    let uri = open(&mut c, path, text);
    assert_eq!(c.diagnostics(&uri, 0), 0);
    let mut version = 0;
    budget.push(stats(
        &format!("valid edit, {} files (one parsed again)", files.len() + 1),
        edit_sizes(&mut c, &uri, text, runs, &mut version),
    ));
    stop(c, server);
    let _ = std::fs::remove_dir_all(&dir);

    let worst = budget.iter().max().unwrap();
    println!(
        "worst p95 of a re-check: {:.2} ms (budget 50 ms): {}",
        worst.as_secs_f64() * 1000.0,
        if *worst < Duration::from_millis(50) { "within" } else { "OVER" }
    );
}
