//! `apply --json` / `destroy --json`: the run as a stream of JSON objects, one per line
//! (`docs/events.md`). The first is `version`, the last `summary`; between them the plan's
//! `planned_change`s, the executor's typed events (`drydock_apply::events`) and every
//! progress line as a `log` event. Each object has `type`, `@message` and `@timestamp`.

use std::sync::Mutex;

use drydock_apply::events::{Event, EVENTS_FORMAT_VERSION};
use drydock_apply::Progress;
use serde_json::{json, Value};

/// Where `apply` and `destroy` say what they do: text on stdout, or the JSON stream.
pub struct Stream {
    pub json: bool,
    /// The errors of the run, for the `summary` event.
    errors: Mutex<Vec<String>>,
    /// The plan's counts and what was done, for the `summary` event.
    counts: Mutex<Value>,
}

impl Stream {
    pub fn new(json: bool) -> Stream {
        let s = Stream { json, errors: Mutex::new(vec![]), counts: Mutex::new(json!({})) };
        if json {
            s.emit(
                json!({ "type": "version", "drydock": env!("CARGO_PKG_VERSION"), "format_version": EVENTS_FORMAT_VERSION }),
                &format!("drydock {}", env!("CARGO_PKG_VERSION")),
            );
        }
        s
    }

    /// Text for people: printed as is, or, in a stream, each line a `log` event.
    pub fn say(&self, text: &str) {
        if !self.json {
            outln!("{text}");
            return;
        }
        for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
            self.emit(json!({ "type": "log" }), line.trim_start());
        }
    }

    /// Writes one event (a JSON object with its `type`), adding `@message` and `@timestamp`.
    pub fn emit(&self, event: Value, message: &str) {
        if !self.json {
            return;
        }
        outln!("{}", envelope(event, message));
    }

    /// An error of the run: on stderr as ever, and in the `summary`.
    pub fn error(&self, message: &str) {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(message.to_string());
    }

    /// Merges fields into the `summary` event.
    pub fn count(&self, fields: Value) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(c), Value::Object(f)) = (counts.as_object_mut(), fields) {
            c.extend(f);
        }
    }

    /// The last event: how the run ended (by its exit code), what it did, its errors.
    pub fn summary(&self, operation: &str, code: i32) {
        if !self.json {
            return;
        }
        let outcome = match code {
            0 => "complete",
            130 => "interrupted",
            _ => "failed",
        };
        let mut v = self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "summary".into());
            o.insert("operation".into(), operation.into());
            o.insert("outcome".into(), outcome.into());
            o.insert("exit_code".into(), code.into());
            o.insert("errors".into(), json!(*self.errors.lock().unwrap_or_else(|e| e.into_inner())));
        }
        self.emit(v, &format!("{operation} {outcome}"));
    }
}

/// An event as one line: its fields with `@message` and `@timestamp` (RFC 3339, UTC).
fn envelope(mut event: Value, message: &str) -> String {
    if let Some(o) = event.as_object_mut() {
        o.insert("@message".into(), message.into());
        o.insert("@timestamp".into(), drydock_state::store::format_rfc3339(std::time::SystemTime::now()).into());
    }
    event.to_string()
}

/// The executor's progress as a JSON stream: typed events as they are, lines as `log`.
pub struct JsonProgress;

impl Progress for JsonProgress {
    fn line(&self, text: &str) {
        outln!("{}", envelope(json!({ "type": "log" }), text));
    }

    fn event(&self, event: &Event) {
        let value = serde_json::to_value(event).unwrap_or_else(|_| json!({ "type": "unknown" }));
        outln!("{}", envelope(value, &event.message()));
    }
}
