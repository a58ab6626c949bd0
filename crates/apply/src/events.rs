//! What an apply does, as typed events: `apply --json` and `destroy --json` stream them, one
//! JSON object per line (`docs/events.md` documents the schema), as `terraform apply -json`
//! streams its own. The executor emits them through [`crate::Progress::event`]; the human
//! progress lines stay as they are, and a JSON stream carries those too, as `log` events.
//!
//! Invariant: an event holds names, ids, counts and durations only — never a value from the
//! configuration — so a stream cannot leak a sensitive one.

use serde::Serialize;

/// The version of the event stream's format: the major changes when a field is removed or
/// changes meaning, the minor when an event or a field is added.
pub const EVENTS_FORMAT_VERSION: &str = "1.0";

/// One thing the executor did or saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A change started (its dependencies have finished).
    ChangeStart { address: String, action: String },
    /// A rollout's wave started: `add` new nodes, `remove` old ones, never fewer than
    /// `floor` nor more than `ceiling` nodes in service.
    WaveStart { address: String, wave: u32, waves: usize, add: u32, remove: usize, floor: u32, ceiling: u32 },
    /// A new instance was seen in one of the change's groups.
    NodeAdded { address: String, group: String, instance: String, zone: String },
    /// A new instance counts: healthy in the cloud, and its Node Ready (with a Kubernetes API).
    NodeReady { address: String, group: String, instance: String, node: Option<String> },
    /// An old node was cordoned before its drain.
    NodeCordoned { address: String, instance: String, node: String },
    /// An old node's pods were evicted.
    NodeDrained { address: String, node: String, evicted: usize, force_deleted: usize, took_ms: u64 },
    /// An old instance was terminated (for a control-plane member: its group deleted).
    NodeTerminated { address: String, group: String, instance: String },
    /// A change finished.
    ChangeComplete { address: String, action: String },
    /// A change stopped; the error comes in the `summary`'s `errors` (once, with the others).
    ChangeFailed { address: String },
    /// A change was not started because one it depends on did not finish.
    ChangeSkipped { address: String, dependency: String },
}

impl Event {
    /// The address of the node group the event is about.
    pub fn address(&self) -> &str {
        match self {
            Event::ChangeStart { address, .. }
            | Event::WaveStart { address, .. }
            | Event::NodeAdded { address, .. }
            | Event::NodeReady { address, .. }
            | Event::NodeCordoned { address, .. }
            | Event::NodeDrained { address, .. }
            | Event::NodeTerminated { address, .. }
            | Event::ChangeComplete { address, .. }
            | Event::ChangeFailed { address }
            | Event::ChangeSkipped { address, .. } => address,
        }
    }

    /// The event in words, for the stream's `@message`.
    pub fn message(&self) -> String {
        match self {
            Event::ChangeStart { address, action } => format!("{address}: {action} started"),
            Event::WaveStart { address, wave, waves, add, remove, floor, ceiling } => {
                format!("{address}: wave {wave}/{waves}: +{add} -{remove} (floor {floor}, ceiling {ceiling})")
            }
            Event::NodeAdded { address, instance, group, .. } => format!("{address}: node {instance} added in {group}"),
            Event::NodeReady { address, instance, node, .. } => match node {
                Some(n) => format!("{address}: node {n} ({instance}) ready"),
                None => format!("{address}: node {instance} healthy"),
            },
            Event::NodeCordoned { address, instance, node } => format!("{address}: cordoned node {node} ({instance})"),
            Event::NodeDrained { address, node, evicted, .. } => {
                format!("{address}: drained node {node} ({evicted} evicted)")
            }
            Event::NodeTerminated { address, instance, .. } => format!("{address}: terminated {instance}"),
            Event::ChangeComplete { address, action } => format!("{address}: {action} complete"),
            Event::ChangeFailed { address } => format!("{address}: failed"),
            Event::ChangeSkipped { address, dependency } => {
                format!("{address}: skipped because {dependency} did not finish")
            }
        }
    }
}
