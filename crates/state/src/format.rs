//! The state file's persisted types, one module per format version, and the only way in and
//! out of them: [`encode`] writes the current version, [`decode`] reads any known version
//! through the upgrade chain. The in-memory [`State`] has no serde of its own, and the domain
//! types it holds (`drydock_model`) are mapped field by field here, so renaming a field of the
//! model or of the in-memory state can never change a format silently: it fails to compile
//! here, and `tests/format.rs` reads a file of every version.

use serde_json::Value;

use crate::store::{FormatError, StateError};
use crate::{ClusterState, NodeGroupState, OutputState, State};

/// The version of the state file format this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// The state as the current format's JSON value.
pub fn to_value(state: &State) -> Value {
    // The persisted types are maps, strings and numbers only (NaN cannot occur: percentages
    // are checked when evaluated), so serialising them cannot fail.
    serde_json::to_value(v1::State::from(state)).unwrap_or(Value::Null)
}

/// The state file's bytes: pretty JSON with sorted keys and a trailing newline, so the same
/// state is always the same bytes.
pub fn encode(state: &State) -> Result<Vec<u8>, StateError> {
    let mut bytes = serde_json::to_vec_pretty(&v1::State::from(state)).map_err(StateError::Serialize)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Turns a parsed state file of any known format version into the current [`State`].
///
/// Only version 1 exists. A later format adds a module `v2`, makes [`encode`] write it, and
/// adds an arm here that converts a `v1::State` into a `v2::State` and falls through, so every
/// old file reaches the current types through the same chain.
pub fn decode(value: Value) -> Result<State, StateError> {
    let Value::Object(fields) = &value else {
        return Err(FormatError::NotAnObject.into());
    };
    let version = match fields.get("format_version") {
        None | Some(Value::Null) => return Err(FormatError::MissingVersion.into()),
        Some(v) => v,
    };
    match version.as_u64() {
        Some(1) => serde_json::from_value::<v1::State>(value)
            .map(State::from)
            .map_err(|source| FormatError::Invalid { version: 1, source }.into()),
        Some(found) if found > u64::from(FORMAT_VERSION) => Err(FormatError::Newer { found }.into()),
        _ => Err(FormatError::UnknownVersion { found: version.to_string() }.into()),
    }
}

/// Where in `bytes` the current format's reader fails, with line and column (converting from
/// a `Value` loses positions).
pub fn locate_error(bytes: &[u8]) -> Option<serde_json::Error> {
    serde_json::from_slice::<v1::State>(bytes).err()
}

/// A cluster as `state show` prints it: its node groups by address only (each has its own
/// entry).
pub fn cluster_json(cluster: &ClusterState) -> Value {
    let mut value = serde_json::to_value(v1::Cluster::from(cluster)).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        let addresses = cluster.node_groups.keys().map(|a| Value::String(a.clone())).collect();
        fields.insert("node_groups".to_string(), Value::Array(addresses));
    }
    value
}

/// A node group as the state file holds it.
pub fn node_group_json(node_group: &NodeGroupState) -> Value {
    serde_json::to_value(v1::NodeGroup::from(node_group)).unwrap_or(Value::Null)
}

/// An output as the state file holds it (the caller withholds a sensitive value).
pub fn output_json(output: &OutputState) -> Value {
    serde_json::to_value(v1::Output::from(output)).unwrap_or(Value::Null)
}

/// A journal record's bytes: one line of JSON (no newline; the journal adds framing).
pub fn encode_record(record: &crate::journal::Record) -> Vec<u8> {
    // Maps, strings and numbers only, as for the state: serialising cannot fail.
    serde_json::to_vec(&v1::Record::from(record)).unwrap_or_default()
}

/// A journal record from its bytes (see [`encode_record`]).
pub fn decode_record(bytes: &[u8]) -> Result<crate::journal::Record, serde_json::Error> {
    serde_json::from_slice::<v1::Record>(bytes).map(Into::into)
}

/// Format version 1 (drydock 0.1): the persisted types and their mapping to the in-memory ones.
/// Frozen: a change here is a new format version.
mod v1 {
    use std::collections::{BTreeMap, BTreeSet};

    use drydock_model as model;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct State {
        pub format_version: u32,
        pub lineage: String,
        pub serial: u64,
        pub drydock_version: String,
        #[serde(default)]
        pub clusters: BTreeMap<String, Cluster>,
        #[serde(default)]
        pub outputs: BTreeMap<String, Output>,
        #[serde(default)]
        pub journal: Vec<JournalEntry>,
        #[serde(default)]
        pub journal_seq: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub unmanaged: Vec<CloudOwner>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Cluster {
        pub name: String,
        #[serde(default)]
        pub key: Option<String>,
        pub provider: String,
        #[serde(default)]
        pub node_groups: BTreeMap<String, NodeGroup>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct NodeGroup {
        pub name: String,
        #[serde(default)]
        pub key: Option<String>,
        pub role: Role,
        pub generations: Vec<Generation>,
        pub settings: Settings,
        #[serde(default)]
        pub boot_times_ms: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub drain_times_ms: Vec<u64>,
        #[serde(default)]
        pub unfinished: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub history: Vec<History>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cloud_owner: Option<CloudOwner>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct CloudOwner {
        pub cluster: String,
        pub node_group: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct History {
        pub generation: String,
        pub spec: serde_json::Value,
        pub applied_at: String,
        pub by: String,
        #[serde(default)]
        pub changes: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Generation {
        pub id: String,
        pub spec: serde_json::Value,
        pub groups: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Output {
        pub value: serde_json::Value,
        #[serde(default)]
        pub sensitive: bool,
    }

    #[derive(Serialize, Deserialize)]
    pub struct JournalEntry {
        pub id: u64,
        pub op: String,
        pub address: String,
        pub group: String,
        #[serde(default)]
        pub detail: serde_json::Value,
        pub started_at_ms: u64,
    }

    #[derive(Serialize, Deserialize, Clone, Copy)]
    #[serde(rename_all = "kebab-case")]
    pub enum Role {
        Worker,
        ControlPlane,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Settings {
        pub min: u32,
        pub max: u32,
        pub desired: Option<u32>,
        pub tags: BTreeMap<String, String>,
        pub subnets: Vec<String>,
        pub health: Health,
        pub rollout: Rollout,
        /// Written only when it differs from the default, so states of configurations that
        /// never set it read and write as before.
        #[serde(default, skip_serializing_if = "Drain::is_default")]
        pub drain: Drain,
        /// The labels kept on the Nodes; written only when they differ from the current
        /// generation's spec (a change made in place), and read as those when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub labels: Option<BTreeMap<String, String>>,
        /// The tags whose values are sensitive: `tags` holds a digest of each (see
        /// [`crate::sensitive_digest`]). Absent when there is none, so states without them
        /// read and write as before.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        pub sensitive_tags: BTreeSet<String>,
        /// The same for `labels`.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        pub sensitive_labels: BTreeSet<String>,
    }

    /// The labels of a generation's recorded spec (none if it records them otherwise, as a
    /// sensitive digest).
    fn spec_labels(spec: &serde_json::Value) -> Option<BTreeMap<String, String>> {
        let Some(labels) = spec.get("labels") else { return Some(BTreeMap::new()) };
        let labels = labels.as_object()?;
        labels.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
    }

    #[derive(Serialize, Deserialize, PartialEq)]
    pub struct Drain {
        pub timeout_ms: u64,
        pub on_timeout: OnTimeout,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grace_period_s: Option<u64>,
    }

    impl Default for Drain {
        fn default() -> Drain {
            Drain::from(&model::Drain::default())
        }
    }

    impl Drain {
        fn is_default(&self) -> bool {
            *self == Drain::default()
        }
    }

    impl From<&model::Drain> for Drain {
        fn from(d: &model::Drain) -> Drain {
            Drain {
                timeout_ms: d.timeout_ms,
                on_timeout: match d.on_timeout {
                    model::OnTimeout::Fail => OnTimeout::Fail,
                    model::OnTimeout::Force => OnTimeout::Force,
                },
                grace_period_s: d.grace_period_s,
            }
        }
    }

    impl From<Drain> for model::Drain {
        fn from(d: Drain) -> model::Drain {
            model::Drain {
                timeout_ms: d.timeout_ms,
                on_timeout: match d.on_timeout {
                    OnTimeout::Fail => model::OnTimeout::Fail,
                    OnTimeout::Force => model::OnTimeout::Force,
                },
                grace_period_s: d.grace_period_s,
            }
        }
    }

    #[derive(Serialize, Deserialize, Clone, Copy, PartialEq)]
    #[serde(rename_all = "lowercase")]
    pub enum OnTimeout {
        Fail,
        Force,
    }

    fn default_node_startup_timeout() -> u64 {
        model::DEFAULT_NODE_STARTUP_TIMEOUT_MS
    }

    fn is_default_node_startup_timeout(ms: &u64) -> bool {
        *ms == model::DEFAULT_NODE_STARTUP_TIMEOUT_MS
    }

    fn is_zero(ms: &u64) -> bool {
        *ms == 0
    }

    #[derive(Serialize, Deserialize)]
    pub struct Health {
        pub check: HealthCheck,
        pub grace_period_ms: u64,
        pub max_unhealthy: IntOrPercent,
        pub unhealthy_timeout_ms: u64,
        pub startup_timeout_ms: u64,
        #[serde(default = "default_node_startup_timeout", skip_serializing_if = "is_default_node_startup_timeout")]
        pub node_startup_timeout_ms: u64,
    }

    #[derive(Serialize, Deserialize, Clone, Copy)]
    #[serde(rename_all = "lowercase")]
    pub enum HealthCheck {
        Ec2,
        Elb,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Rollout {
        pub max_surge: IntOrPercent,
        pub max_unavailable: IntOrPercent,
        pub health_timeout_ms: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub min_ready_ms: u64,
    }

    #[derive(Serialize, Deserialize, Clone, Copy)]
    #[serde(rename_all = "lowercase")]
    pub enum IntOrPercent {
        Int(u32),
        Percent(f64),
    }

    /// A write-ahead journal record (see `crate::journal`): the state's next serial and what
    /// changed, each change the whole new value of what it names.
    #[derive(Serialize, Deserialize)]
    pub struct Record {
        pub serial: u64,
        pub changes: Vec<Change>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", tag = "kind")]
    pub enum Change {
        NodeGroup {
            cluster: String,
            #[serde(default)]
            header: Option<ClusterHeader>,
            address: String,
            value: Option<Box<NodeGroup>>,
        },
        Clusters {
            clusters: BTreeMap<String, ClusterHeader>,
        },
        Outputs {
            outputs: BTreeMap<String, Output>,
        },
        Begin {
            entry: JournalEntry,
        },
        Settle {
            id: u64,
        },
    }

    #[derive(Serialize, Deserialize)]
    pub struct ClusterHeader {
        pub name: String,
        #[serde(default)]
        pub key: Option<String>,
        pub provider: String,
    }

    impl From<&crate::journal::Record> for Record {
        fn from(r: &crate::journal::Record) -> Record {
            use crate::journal::Change as C;
            let header = |h: &crate::journal::ClusterHeader| ClusterHeader {
                name: h.name.clone(),
                key: h.key.clone(),
                provider: h.provider.clone(),
            };
            let changes = r
                .changes
                .iter()
                .map(|c| match c {
                    C::NodeGroup { cluster, header: h, address, value } => Change::NodeGroup {
                        cluster: cluster.clone(),
                        header: h.as_ref().map(header),
                        address: address.clone(),
                        value: value.as_ref().map(|v| Box::new(NodeGroup::from(&**v))),
                    },
                    C::Clusters(map) => {
                        Change::Clusters { clusters: map.iter().map(|(k, h)| (k.clone(), header(h))).collect() }
                    }
                    C::Outputs(map) => {
                        Change::Outputs { outputs: map.iter().map(|(k, o)| (k.clone(), o.into())).collect() }
                    }
                    C::Begin(entry) => Change::Begin { entry: entry.into() },
                    C::Settle(id) => Change::Settle { id: *id },
                })
                .collect();
            Record { serial: r.serial, changes }
        }
    }

    impl From<Record> for crate::journal::Record {
        fn from(r: Record) -> crate::journal::Record {
            use crate::journal::Change as C;
            let header =
                |h: ClusterHeader| crate::journal::ClusterHeader { name: h.name, key: h.key, provider: h.provider };
            let changes = r
                .changes
                .into_iter()
                .map(|c| match c {
                    Change::NodeGroup { cluster, header: h, address, value } => C::NodeGroup {
                        cluster,
                        header: h.map(header),
                        address,
                        value: value.map(|v| Box::new((*v).into())),
                    },
                    Change::Clusters { clusters } => {
                        C::Clusters(clusters.into_iter().map(|(k, h)| (k, header(h))).collect())
                    }
                    Change::Outputs { outputs } => {
                        C::Outputs(outputs.into_iter().map(|(k, o)| (k, o.into())).collect())
                    }
                    Change::Begin { entry } => C::Begin(entry.into()),
                    Change::Settle { id } => C::Settle(id),
                })
                .collect();
            crate::journal::Record { serial: r.serial, changes }
        }
    }

    impl From<&crate::State> for State {
        fn from(s: &crate::State) -> State {
            State {
                format_version: s.format_version,
                lineage: s.lineage.clone(),
                serial: s.serial,
                drydock_version: s.drydock_version.clone(),
                clusters: s.clusters.iter().map(|(k, c)| (k.clone(), c.into())).collect(),
                outputs: s.outputs.iter().map(|(k, o)| (k.clone(), o.into())).collect(),
                journal: s.journal.iter().map(JournalEntry::from).collect(),
                journal_seq: s.journal_seq,
                unmanaged: s
                    .unmanaged
                    .iter()
                    .map(|o| CloudOwner { cluster: o.cluster.clone(), node_group: o.node_group.clone() })
                    .collect(),
            }
        }
    }

    impl From<State> for crate::State {
        fn from(s: State) -> crate::State {
            crate::State {
                format_version: s.format_version,
                lineage: s.lineage,
                serial: s.serial,
                drydock_version: s.drydock_version,
                clusters: s.clusters.into_iter().map(|(k, c)| (k, c.into())).collect(),
                outputs: s.outputs.into_iter().map(|(k, o)| (k, o.into())).collect(),
                journal: s.journal.into_iter().map(crate::JournalEntry::from).collect(),
                journal_seq: s.journal_seq,
                unmanaged: s
                    .unmanaged
                    .into_iter()
                    .map(|o| crate::CloudOwner { cluster: o.cluster, node_group: o.node_group })
                    .collect(),
            }
        }
    }

    impl From<&crate::ClusterState> for Cluster {
        fn from(c: &crate::ClusterState) -> Cluster {
            Cluster {
                name: c.name.clone(),
                key: c.key.clone(),
                provider: c.provider.clone(),
                node_groups: c.node_groups.iter().map(|(k, n)| (k.clone(), n.into())).collect(),
            }
        }
    }

    impl From<Cluster> for crate::ClusterState {
        fn from(c: Cluster) -> crate::ClusterState {
            crate::ClusterState {
                name: c.name,
                key: c.key,
                provider: c.provider,
                node_groups: c.node_groups.into_iter().map(|(k, n)| (k, n.into())).collect(),
            }
        }
    }

    impl From<&crate::NodeGroupState> for NodeGroup {
        fn from(n: &crate::NodeGroupState) -> NodeGroup {
            NodeGroup {
                name: n.name.clone(),
                key: n.key.clone(),
                role: n.role.into(),
                generations: n
                    .generations
                    .iter()
                    .map(|g| Generation { id: g.id.clone(), spec: g.spec.clone(), groups: g.groups.clone() })
                    .collect(),
                settings: {
                    let mut settings: Settings = (&n.settings).into();
                    let current = n.generations.last().and_then(|g| spec_labels(&g.spec));
                    if current.as_ref() == settings.labels.as_ref() {
                        settings.labels = None;
                    }
                    settings
                },
                boot_times_ms: n.boot_times_ms.clone(),
                drain_times_ms: n.drain_times_ms.clone(),
                unfinished: n.unfinished,
                history: n
                    .history
                    .iter()
                    .map(|h| History {
                        generation: h.generation.clone(),
                        spec: h.spec.clone(),
                        applied_at: h.applied_at.clone(),
                        by: h.by.clone(),
                        changes: h.changes.clone(),
                    })
                    .collect(),
                cloud_owner: n
                    .cloud_owner
                    .as_ref()
                    .map(|o| CloudOwner { cluster: o.cluster.clone(), node_group: o.node_group.clone() }),
            }
        }
    }

    impl From<NodeGroup> for crate::NodeGroupState {
        fn from(n: NodeGroup) -> crate::NodeGroupState {
            let current_labels = n.generations.last().and_then(|g| spec_labels(&g.spec));
            crate::NodeGroupState {
                name: n.name,
                key: n.key,
                role: n.role.into(),
                generations: n
                    .generations
                    .into_iter()
                    .map(|g| crate::GenerationState { id: g.id, spec: g.spec, groups: g.groups })
                    .collect(),
                settings: {
                    let mut settings = n.settings;
                    if settings.labels.is_none() {
                        settings.labels = current_labels;
                    }
                    settings.into()
                },
                boot_times_ms: n.boot_times_ms,
                drain_times_ms: n.drain_times_ms,
                unfinished: n.unfinished,
                history: n
                    .history
                    .into_iter()
                    .map(|h| crate::HistoryEntry {
                        generation: h.generation,
                        spec: h.spec,
                        applied_at: h.applied_at,
                        by: h.by,
                        changes: h.changes,
                    })
                    .collect(),
                cloud_owner: n.cloud_owner.map(|o| crate::CloudOwner { cluster: o.cluster, node_group: o.node_group }),
            }
        }
    }

    impl From<&crate::OutputState> for Output {
        fn from(o: &crate::OutputState) -> Output {
            Output { value: o.value.clone(), sensitive: o.sensitive }
        }
    }

    impl From<Output> for crate::OutputState {
        fn from(o: Output) -> crate::OutputState {
            crate::OutputState { value: o.value, sensitive: o.sensitive }
        }
    }

    impl From<&crate::JournalEntry> for JournalEntry {
        fn from(j: &crate::JournalEntry) -> JournalEntry {
            JournalEntry {
                id: j.id,
                op: j.op.clone(),
                address: j.address.clone(),
                group: j.group.clone(),
                detail: j.detail.clone(),
                started_at_ms: j.started_at_ms,
            }
        }
    }

    impl From<JournalEntry> for crate::JournalEntry {
        fn from(j: JournalEntry) -> crate::JournalEntry {
            crate::JournalEntry {
                id: j.id,
                op: j.op,
                address: j.address,
                group: j.group,
                detail: j.detail,
                started_at_ms: j.started_at_ms,
            }
        }
    }

    impl From<model::Role> for Role {
        fn from(r: model::Role) -> Role {
            match r {
                model::Role::Worker => Role::Worker,
                model::Role::ControlPlane => Role::ControlPlane,
            }
        }
    }

    impl From<Role> for model::Role {
        fn from(r: Role) -> model::Role {
            match r {
                Role::Worker => model::Role::Worker,
                Role::ControlPlane => model::Role::ControlPlane,
            }
        }
    }

    /// `map` with the values of the `sensitive` keys as their digests.
    fn digested(map: &BTreeMap<String, String>, sensitive: &BTreeSet<String>) -> BTreeMap<String, String> {
        map.iter()
            .map(|(k, v)| match sensitive.contains(k) {
                true => (k.clone(), crate::sensitive_digest(v)),
                false => (k.clone(), v.clone()),
            })
            .collect()
    }

    impl From<&model::NodeSettings> for Settings {
        fn from(s: &model::NodeSettings) -> Settings {
            Settings {
                min: s.min,
                max: s.max,
                desired: s.desired,
                tags: digested(&s.tags, &s.sensitive_tags),
                subnets: s.subnets.clone(),
                health: Health {
                    check: match s.health.check {
                        model::HealthCheck::Ec2 => HealthCheck::Ec2,
                        model::HealthCheck::Elb => HealthCheck::Elb,
                    },
                    grace_period_ms: s.health.grace_period_ms,
                    max_unhealthy: s.health.max_unhealthy.into(),
                    unhealthy_timeout_ms: s.health.unhealthy_timeout_ms,
                    startup_timeout_ms: s.health.startup_timeout_ms,
                    node_startup_timeout_ms: s.health.node_startup_timeout_ms,
                },
                rollout: Rollout {
                    max_surge: s.rollout.max_surge.into(),
                    max_unavailable: s.rollout.max_unavailable.into(),
                    health_timeout_ms: s.rollout.health_timeout_ms,
                    min_ready_ms: s.rollout.min_ready_ms,
                },
                drain: Drain::from(&s.drain),
                labels: Some(digested(&s.labels, &s.sensitive_labels)),
                sensitive_tags: s.sensitive_tags.clone(),
                sensitive_labels: s.sensitive_labels.clone(),
            }
        }
    }

    impl From<Settings> for model::NodeSettings {
        fn from(s: Settings) -> model::NodeSettings {
            model::NodeSettings {
                min: s.min,
                max: s.max,
                desired: s.desired,
                tags: s.tags,
                subnets: s.subnets,
                health: model::Health {
                    check: match s.health.check {
                        HealthCheck::Ec2 => model::HealthCheck::Ec2,
                        HealthCheck::Elb => model::HealthCheck::Elb,
                    },
                    grace_period_ms: s.health.grace_period_ms,
                    max_unhealthy: s.health.max_unhealthy.into(),
                    unhealthy_timeout_ms: s.health.unhealthy_timeout_ms,
                    startup_timeout_ms: s.health.startup_timeout_ms,
                    node_startup_timeout_ms: s.health.node_startup_timeout_ms,
                },
                rollout: model::Rollout {
                    max_surge: s.rollout.max_surge.into(),
                    max_unavailable: s.rollout.max_unavailable.into(),
                    health_timeout_ms: s.rollout.health_timeout_ms,
                    min_ready_ms: s.rollout.min_ready_ms,
                },
                drain: s.drain.into(),
                labels: s.labels.unwrap_or_default(),
                sensitive_tags: s.sensitive_tags,
                sensitive_labels: s.sensitive_labels,
            }
        }
    }

    impl From<model::IntOrPercent> for IntOrPercent {
        fn from(v: model::IntOrPercent) -> IntOrPercent {
            match v {
                model::IntOrPercent::Int(n) => IntOrPercent::Int(n),
                model::IntOrPercent::Percent(p) => IntOrPercent::Percent(p),
            }
        }
    }

    impl From<IntOrPercent> for model::IntOrPercent {
        fn from(v: IntOrPercent) -> model::IntOrPercent {
            match v {
                IntOrPercent::Int(n) => model::IntOrPercent::Int(n),
                IntOrPercent::Percent(p) => model::IntOrPercent::Percent(p),
            }
        }
    }
}
