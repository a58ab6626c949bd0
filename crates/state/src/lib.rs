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

/// How the state records a sensitive tag's value: `(sensitive: sha256 DIGEST)`, the first 6
/// bytes (12 hex digits) of the SHA-256 of the value. A value that already is such a digest
/// is kept as it is.
pub fn sensitive_digest(value: &str) -> String {
    use sha2::Digest as _;
    if is_sensitive_digest(value) {
        return value.to_string();
    }
    let digest = sha2::Sha256::digest(value.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("(sensitive: sha256 {hex})")
}

/// Whether `value` is a digest written by [`sensitive_digest`].
pub fn is_sensitive_digest(value: &str) -> bool {
    value
        .strip_prefix("(sensitive: sha256 ")
        .and_then(|v| v.strip_suffix(')'))
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The settings recorded in the state with the sensitive tags' digests put back to the
/// values they stand for, where one is known: the configured value, or a value a cloud group
/// carries, whose digest is the one recorded. A digest no known value matches stays.
pub fn reveal_tags<'a>(
    recorded: &NodeSettings,
    known: impl IntoIterator<Item = &'a BTreeMap<String, String>> + Clone,
) -> NodeSettings {
    let mut out = recorded.clone();
    reveal(&mut out.tags, known);
    out
}

/// [`reveal_tags`] for both maps: the tags from `known_tags`, the labels from `known_labels`
/// (the configured labels; the cloud's groups carry none).
pub fn reveal_settings<'a>(
    recorded: &NodeSettings,
    known_tags: impl IntoIterator<Item = &'a BTreeMap<String, String>> + Clone,
    known_labels: &BTreeMap<String, String>,
) -> NodeSettings {
    let mut out = reveal_tags(recorded, known_tags);
    reveal(&mut out.labels, [known_labels]);
    out
}

fn reveal<'a>(
    map: &mut BTreeMap<String, String>,
    known: impl IntoIterator<Item = &'a BTreeMap<String, String>> + Clone,
) {
    for (k, v) in map.iter_mut() {
        if !is_sensitive_digest(v) {
            continue;
        }
        let found = known.clone().into_iter().filter_map(|m| m.get(k)).find(|c| sensitive_digest(c) == *v);
        if let Some(clear) = found {
            *v = clear.clone();
        }
    }
}

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
    /// Node groups removed from the state with `drydock state rm`, by the names their cloud
    /// groups carry: drydock leaves those groups running and never changes or deletes them.
    pub unmanaged: Vec<CloudOwner>,
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
            unmanaged: vec![],
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
    /// The generations applied, oldest first (at most [`HISTORY_KEEP`]): `drydock rollout
    /// history` lists them, `drydock rollout undo` plans a rollout back to one.
    pub history: Vec<HistoryEntry>,
    /// The names the node group's cloud groups carry (in their names and ownership tags), when
    /// they are not those of its address: a node group renamed (`drydock state mv`) keeps its
    /// groups, and its nodes, under the names it had.
    pub cloud_owner: Option<CloudOwner>,
}

/// The names a node group's cloud groups carry.
fn owner_of(caddr: &str, address: &str, ng: &NodeGroupState) -> CloudOwner {
    ng.cloud_owner.clone().unwrap_or_else(|| CloudOwner {
        cluster: caddr.trim_start_matches("cluster.").to_string(),
        node_group: address.rsplit_once(".node_group.").map_or(ng.name.clone(), |(_, g)| g.to_string()),
    })
}

/// The cluster and node group names of a node group's cloud groups (`drydock:cluster`,
/// `drydock:node-group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudOwner {
    pub cluster: String,
    pub node_group: String,
}

/// What [`State::move_node_group`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    Moved,
    /// `to` exists and `from` does not: moved already.
    Already,
}

impl State {
    /// Forgets a node group (or a cluster and all its node groups) without touching the cloud
    /// (`drydock state rm`): its groups keep running, as unmanaged. Returns the node group
    /// addresses forgotten.
    pub fn forget(&mut self, address: &str) -> Result<Vec<String>, String> {
        let mut out = vec![];
        if let Some(cs) = self.clusters.remove(address) {
            for (addr, ng) in &cs.node_groups {
                self.unmanaged.push(owner_of(address, addr, ng));
                out.push(addr.clone());
            }
            return Ok(out);
        }
        for (caddr, cs) in self.clusters.iter_mut() {
            if let Some(ng) = cs.node_groups.remove(address) {
                self.unmanaged.push(owner_of(caddr, address, &ng));
                out.push(address.to_string());
                break;
            }
        }
        if out.is_empty() {
            let known: Vec<&str> = self
                .clusters
                .iter()
                .flat_map(|(c, cs)| std::iter::once(c.as_str()).chain(cs.node_groups.keys().map(String::as_str)))
                .collect();
            return Err(format!("the state has no cluster or node group {address} (it has: {})", known.join(", ")));
        }
        self.unmanaged.sort_by(|a, b| (&a.cluster, &a.node_group).cmp(&(&b.cluster, &b.node_group)));
        self.unmanaged.dedup();
        Ok(out)
    }

    /// Moves the node group at address `from` to address `to` in the same cluster, keeping its
    /// cloud groups (and their nodes) under the names they carry. Errors: `from` unknown (and
    /// `to` too), both present, another cluster, or an address that is not a node group's.
    pub fn move_node_group(&mut self, from: &str, to: &str) -> Result<Moved, String> {
        let split = |a: &str| -> Result<(String, String), String> {
            let (c, g) = a
                .split_once(".node_group.")
                .filter(|(c, g)| c.starts_with("cluster.") && c.len() > 8 && !g.is_empty())
                .ok_or_else(|| format!("{a} is not a node group address (cluster.NAME.node_group.NAME)"))?;
            Ok((c.to_string(), g.to_string()))
        };
        let (from_cluster, from_ng) = split(from)?;
        let (to_cluster, to_ng) = split(to)?;
        if from_cluster != to_cluster {
            return Err(format!(
                "{from} and {to} are in different clusters: a node group's machines belong to their cluster, so it \
                 moves only within it"
            ));
        }
        let Some(cs) = self.clusters.get_mut(&from_cluster) else {
            return Err(format!("the state has no cluster {from_cluster}"));
        };
        match (cs.node_groups.contains_key(from), cs.node_groups.contains_key(to)) {
            (true, true) => return Err(format!("the state has both {from} and {to}; remove one first")),
            (false, true) => return Ok(Moved::Already),
            (false, false) => {
                let known: Vec<&str> = cs.node_groups.keys().map(String::as_str).collect();
                return Err(format!("the state has no node group {from} (it has: {})", known.join(", ")));
            }
            (true, false) => {}
        }
        let mut ng = cs.node_groups.remove(from).unwrap_or_else(|| unreachable!("checked above"));
        if ng.cloud_owner.is_none() {
            ng.cloud_owner = Some(CloudOwner {
                cluster: from_cluster.trim_start_matches("cluster.").to_string(),
                node_group: from_ng,
            });
        }
        // The name and key of the new address (`workers["a"]` → `workers`, `a`).
        match to_ng.split_once('[') {
            Some((name, rest)) => {
                ng.name = name.to_string();
                ng.key = Some(rest.trim_end_matches(']').trim_matches('"').to_string());
            }
            None => {
                ng.name = to_ng.clone();
                ng.key = None;
            }
        }
        // Back to the names of its address: no alias needed any more.
        if ng
            .cloud_owner
            .as_ref()
            .is_some_and(|o| o.cluster == to_cluster.trim_start_matches("cluster.") && o.node_group == to_ng)
        {
            ng.cloud_owner = None;
        }
        cs.node_groups.insert(to.to_string(), ng);
        Ok(Moved::Moved)
    }
}

/// One generation a node group was rolled out (or created) onto.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub generation: String,
    /// The spec as the state keeps it (sensitive values as digests).
    pub spec: serde_json::Value,
    /// When the rollout finished (RFC 3339, wall clock).
    pub applied_at: String,
    /// Who ran it: `$DRYDOCK_ACTOR`, else `user@host`.
    pub by: String,
    /// What changed, one line per attribute (`image: img-1 -> img-2`; sensitive values hidden).
    pub changes: Vec<String>,
}

/// How many applied generations a node group's history keeps.
pub const HISTORY_KEEP: usize = 20;

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
