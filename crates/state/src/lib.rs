//! The state: what drydock has applied, per cluster and node group, with the generations
//! (autoscaling groups) that realise each node group, and a journal of the cloud mutations
//! in flight. The file format is versioned (`format_version`); loading an older version
//! goes through an upgrade function, so the in-memory types can change without breaking
//! files on disk.
//!
//! Invariant: knows nothing of the language or of any one cloud; it stores provider
//! group names and settings as given.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod backend;
pub mod format;
pub mod journal;
pub mod moving;
pub mod remote;
pub mod store;

use std::collections::BTreeMap;

use drydock_model::{NodeSettings, Role};

pub use format::FORMAT_VERSION;

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub format_version: u32,
    /// Identifies one configuration's state across its whole life; ownership tags carry it.
    pub lineage: String,
    /// Incremented on every write.
    pub serial: u64,
    pub drydock_version: String,
    /// By cluster address (`cluster.demo`).
    pub clusters: BTreeMap<String, ClusterState>,
    pub outputs: BTreeMap<String, OutputState>,
    /// Cloud mutations recorded before they were made and not yet settled.
    pub journal: Vec<JournalEntry>,
    /// The last journal id handed out.
    pub journal_seq: u64,
}

impl State {
    /// A new, empty state with a fresh lineage.
    pub fn new(lineage: String) -> State {
        State {
            format_version: FORMAT_VERSION,
            lineage,
            serial: 0,
            drydock_version: env!("CARGO_PKG_VERSION").to_string(),
            clusters: BTreeMap::new(),
            outputs: BTreeMap::new(),
            journal: vec![],
            journal_seq: 0,
        }
    }

    pub fn node_group(&self, cluster: &str, address: &str) -> Option<&NodeGroupState> {
        self.clusters.get(cluster)?.node_groups.get(address)
    }

    /// Every node group, with its cluster's address.
    pub fn node_groups(&self) -> impl Iterator<Item = (&str, &NodeGroupState)> {
        self.clusters.iter().flat_map(|(c, cs)| cs.node_groups.values().map(move |ng| (c.as_str(), ng)))
    }

    /// Every address the state knows (clusters, node groups, outputs), sorted.
    pub fn addresses(&self) -> Vec<String> {
        let mut out = vec![];
        for (c, cs) in &self.clusters {
            out.push(c.clone());
            out.extend(cs.node_groups.keys().cloned());
        }
        out.extend(self.outputs.keys().map(|o| format!("output.{o}")));
        out.sort();
        out
    }

    /// The entry at an address from [`State::addresses`]: a cluster (`cluster.demo`), a node
    /// group (`cluster.demo.node_group.workers`) or an output (`output.endpoint`).
    pub fn entry(&self, address: &str) -> Option<Entry<'_>> {
        if let Some(name) = address.strip_prefix("output.") {
            return self.outputs.get(name).map(Entry::Output);
        }
        if let Some(cluster) = self.clusters.get(address) {
            return Some(Entry::Cluster(cluster));
        }
        // Clusters key their node groups by the full address, so one lookup per cluster.
        self.clusters.iter().find_map(|(c, cs)| {
            cs.node_groups.get(address).map(|node_group| Entry::NodeGroup { cluster: c.as_str(), node_group })
        })
    }
}

/// One addressable entry of the state (see [`State::entry`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    Cluster(&'a ClusterState),
    NodeGroup { cluster: &'a str, node_group: &'a NodeGroupState },
    Output(&'a OutputState),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub key: Option<String>,
    /// The provider reference (`sim`, `aws.west`).
    pub provider: String,
    /// By node group address.
    pub node_groups: BTreeMap<String, NodeGroupState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroupState {
    pub name: String,
    pub key: Option<String>,
    pub role: Role,
    /// Oldest first. More than one while a rollout is in progress (or was interrupted).
    pub generations: Vec<GenerationState>,
    /// The in-place settings last applied.
    pub settings: NodeSettings,
    /// Measured times from launch to healthy, newest last (at most [`BOOT_SAMPLES`]).
    pub boot_times_ms: Vec<u64>,
    /// Measured drain durations (cordon to the last pod gone), newest last (at most
    /// [`BOOT_SAMPLES`]): plan ETAs include drain time.
    pub drain_times_ms: Vec<u64>,
    /// A create or rollout started and has not finished (its nodes were not yet seen
    /// healthy): the next plan finishes it.
    pub unfinished: bool,
}

/// How many measured boot times a node group keeps for its ETAs.
pub const BOOT_SAMPLES: usize = 20;

impl NodeGroupState {
    /// The generation rollouts converge on: the newest.
    pub fn current(&self) -> Option<&GenerationState> {
        self.generations.last()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationState {
    /// The first 10 hex digits of the spec's hash: names the generation in group names and tags.
    pub id: String,
    /// The spec as shown in plans, with sensitive values replaced by a digest.
    pub spec: serde_json::Value,
    /// The autoscaling groups of this generation: one for a worker group, one per member for
    /// a control plane.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputState {
    pub value: serde_json::Value,
    pub sensitive: bool,
}

/// A cloud mutation recorded before it is made. An entry still present after a crash says
/// what may or may not have happened; the next run observes the cloud to find out.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub id: u64,
    /// `create_group`, `update_group`, `terminate_instances`, `delete_group`.
    pub op: String,
    /// The node group address the operation is for.
    pub address: String,
    /// The provider group name.
    pub group: String,
    /// Operation details (instance ids, settings), for the record.
    pub detail: serde_json::Value,
    pub started_at_ms: u64,
}
