//! The simulated world: groups and their instances, how they evolve as time passes, and the
//! operations that change them. Pure data and logic; the file, the lock and the clock are
//! `store`'s and `provider`'s.
//!
//! Evolution is event-driven: [`World::advance_to`] repeatedly takes the earliest due event of
//! any instance, applies every event due at that time (groups by name, instances in launch
//! order), lets every group reconcile its size, and records capacity. So the outcome depends
//! only on the events, never on how often or in which steps a process looked at the world.
//!
//! Every change is an [`Op`], applied by [`World::apply`]: the store logs the ops a process
//! made, and other processes bring their copy of the world up to date by applying the same ops
//! (`store`'s docs), so an op must depend on nothing but the world and itself (no clock, no
//! environment, no iteration order of a hash map).
//!
//! # Cost
//!
//! An operation costs in proportion to what it changes (times a logarithm), not to the size of
//! the world, so that a world of 10,000 groups or one group of 100,000 instances is cheap to
//! change one call at a time. What makes that so is derived data, kept beside the world and
//! never stored (rebuilt from the world by [`World::reindex`] when it is read):
//!
//! - the queue of instance events, ordered by (time, group, launch number): the next event is
//!   its first entry, and firing the due events touches those instances only;
//! - per group, its live instances counted per subnet and kept per zone in scale-in order
//!   (launch time, id): launching picks a subnet, and scaling in picks its victim, without
//!   looking at the other instances;
//! - every instance id with its group: new ids are checked for uniqueness, and `terminate`
//!   and `fail` find instances, without a search;
//! - the groups that may be unsettled (live count ≠ desired) and the node groups whose capacity
//!   may have changed: settling after a change looks at those only, and each group keeps its
//!   share of its node group's capacity counted;
//! - the timeline is a ring buffer, trimmed from its front.
//!
//! Every change of an instance goes through [`World::change`] (or [`World::insert`] for a new
//! one), which keeps all of that right; nothing else mutates an instance.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use drydock_provider::{
    CreateGroup, GenerationSpec, GroupSettings, HealthCheck, Instance, InstanceState, Observed, ObservedGroup,
    Ownership, ProviderError,
};
use serde::{Deserialize, Serialize};

use crate::config::{ClockMode, SimConfig};
use crate::etcd::{EtcdRecord, EtcdRecords, MemberState};
use crate::kube::{ApiError, Kube, Node, NodeChange, Pod};
use crate::rng::Rng;
use crate::status::{CapacityPoint, GroupStatus, InstanceStatus, Status};
use crate::{FailTarget, SimError};

/// The version of the world this code writes: version 2, a snapshot and a log of ops in one
/// file (`store`). Version 1 worlds (the same world as bare JSON) are still read.
pub const WORLD_VERSION: u32 = 2;
/// The version of worlds kept as bare JSON, rewritten whole by every operation.
pub(crate) const LEGACY_VERSION: u32 = 1;
/// An instance that is going to crash does so at a uniformly drawn time within this long after
/// it became healthy.
pub const CRASH_WINDOW_MS: u64 = 60_000;
/// The timeline keeps this many of the most recent points.
pub const TIMELINE_LIMIT: usize = 10_000;

/// The zone a subnet is in: `subnet-X` is in `zone-X`; any other name is a zone of its own
/// with the same name, so a configuration may name zones directly.
pub fn zone_of(subnet: &str) -> String {
    match subnet.strip_prefix("subnet-") {
        Some(rest) if !rest.is_empty() => format!("zone-{rest}"),
        _ => subnet.to_string(),
    }
}

/// A node group: (cluster, node group), as the ownership tags name it.
type Key = (String, String);

/// Everything the world file holds, and the indexes derived from it.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct World {
    pub version: u32,
    pub clock: ClockMode,
    pub now_ms: u64,
    pub config: SimConfig,
    pub rng: Rng,
    #[serde(default)]
    pub zones_down: BTreeSet<String>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// The latest point of each node group whose capacity is not zero, to notice changes even
    /// after the timeline has forgotten them. Stored as a list sorted by node group.
    #[serde(default, with = "latest_points")]
    capacity: BTreeMap<Key, CapacityPoint>,
    #[serde(default)]
    pub timeline: VecDeque<CapacityPoint>,
    /// Failures due later, in the order they were scheduled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledFailure>,
    /// The simulated clusters (`kube`).
    #[serde(default, skip_serializing_if = "Kube::is_empty")]
    pub kube: Kube,
    /// The real etcd members of control-plane instances, per cluster and instance (`etcd`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub etcd: EtcdRecords,
    #[serde(skip)]
    index: Index,
}

/// What the world knows about itself beyond what it stores (see the module docs).
#[derive(Debug, Default)]
struct Index {
    /// Every instance by id: its group and launch number.
    instances: HashMap<String, (String, u64)>,
    /// The next event of every instance that has one: (time, group, launch number).
    events: BTreeSet<(u64, String, u64)>,
    /// Groups whose live count may differ from their desired capacity; after a settle, exactly
    /// those where it does (a group with nowhere to launch).
    dirty: BTreeSet<String>,
    /// Node groups whose counts may differ from their latest capacity point.
    changed: BTreeSet<Key>,
    /// The groups of each node group.
    node_groups: BTreeMap<Key, BTreeSet<String>>,
    /// How much work this world has done (instances changed, looked at or re-indexed): the store
    /// weighs its log by it, to bound the work of replaying the log.
    steps: u64,
}

/// A failure that happens when the world reaches `at_ms`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct ScheduledFailure {
    pub at_ms: u64,
    pub target: FailTarget,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Group {
    pub ownership: Ownership,
    pub spec: GenerationSpec,
    pub settings: GroupSettings,
    pub created_at_ms: u64,
    /// By launch number, so in launch order; terminated instances are dropped. Stored as a list
    /// in launch order, numbered afresh when read (only their order matters).
    #[serde(with = "launch_order")]
    pub instances: BTreeMap<u64, SimInstance>,
    #[serde(skip)]
    live: Live,
    /// The digest of the join secrets the group's launch definition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_digest: Option<String>,
    /// The version of the group's launch definition: 1 at creation, one more per join update
    /// (a rotated token), as a launch template's versions.
    #[serde(default = "first_version")]
    pub launch_version: u32,
}

fn first_version() -> u32 {
    1
}

impl Group {
    fn key(&self) -> Key {
        (self.ownership.cluster.clone(), self.ownership.node_group.clone())
    }
}

/// A group's live (pending or running) instances, counted and ordered for launching and
/// scaling in, and its share of its node group's capacity.
#[derive(Debug, Default)]
struct Live {
    /// The launch number of the next instance.
    next_seq: u64,
    count: usize,
    by_subnet: BTreeMap<String, usize>,
    /// Per zone, the live instances in scale-in order: (launch time, id, launch number).
    by_zone: BTreeMap<String, BTreeSet<(u64, String, u64)>>,
    /// In service, running, live: as a [`CapacityPoint`] counts them.
    counts: [u32; 3],
}

impl Live {
    fn in_zone(&self, zone: &str) -> usize {
        self.by_zone.get(zone).map_or(0, BTreeSet::len)
    }

    fn in_subnet(&self, subnet: &str) -> usize {
        self.by_subnet.get(subnet).copied().unwrap_or(0)
    }

    fn count(&mut self, before: [u32; 3], after: [u32; 3]) {
        for k in 0..3 {
            self.counts[k] = self.counts[k].saturating_sub(before[k]).saturating_add(after[k]);
        }
    }

    fn add_live(&mut self, seq: u64, i: &Instance) {
        self.count += 1;
        *self.by_subnet.entry(i.subnet.clone()).or_default() += 1;
        self.by_zone.entry(i.zone.clone()).or_default().insert((i.launched_at_ms, i.id.clone(), seq));
    }

    fn remove_live(&mut self, seq: u64, i: &Instance) {
        self.count = self.count.saturating_sub(1);
        if let Some(n) = self.by_subnet.get_mut(&i.subnet) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_subnet.remove(&i.subnet);
            }
        }
        if let Some(set) = self.by_zone.get_mut(&i.zone) {
            set.remove(&(i.launched_at_ms, i.id.clone(), seq));
            if set.is_empty() {
                self.by_zone.remove(&i.zone);
            }
        }
    }
}

/// What an instance adds to its node group's capacity: in service, running, live.
fn contribution(i: &Instance) -> [u32; 3] {
    [u32::from(i.is_in_service()), u32::from(i.state == InstanceState::Running), u32::from(i.is_live())]
}

/// An instance as the provider reports it, plus what the simulation needs to know of its future.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct SimInstance {
    #[serde(flatten)]
    pub instance: Instance,
    /// When a pending instance finishes booting; `None` while it is stuck in a zone that is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_at_ms: Option<u64>,
    /// The version of its group's launch definition it was launched from.
    #[serde(default = "first_version")]
    pub launch_version: u32,
    /// Drawn at launch: this instance crashes this long after it becomes healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_after_ms: Option<u64>,
    /// When it crashed: a failure the machine status checks see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_ms: Option<u64>,
    /// Since when it is running but unhealthy (crashed, or a bad image): what a load-balancer
    /// health check sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_at_ms: Option<u64>,
    /// When a shutting-down instance is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at_ms: Option<u64>,
    /// The time of this instance's entry in the event queue, if it has one.
    #[serde(skip)]
    queued: Option<u64>,
}

/// A change to the world: what the store logs, and replays to bring another process's copy of
/// the world up to date. Applying the same ops to the same world gives the same world.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    /// A provider's configuration and clock ([`World::configure`]); `wall_ms` only when a
    /// virtual world goes real (it moves to the wall clock).
    Configure {
        config: SimConfig,
        clock: ClockMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wall_ms: Option<u64>,
    },
    /// Time passing: every event up to `to_ms` happens.
    Advance {
        to_ms: u64,
    },
    /// Someone slept `ms` on a virtual world's clock (refused on a real one).
    Sleep {
        ms: u64,
    },
    CreateGroup(Box<CreateGroup>),
    /// The join secrets (their digest) a group was created with, or rotated to.
    SetJoin {
        name: String,
        digest: String,
        /// Set at creation (the launch definition's first version), not a rotation.
        #[serde(default)]
        create: bool,
    },
    UpdateGroup {
        name: String,
        settings: GroupSettings,
    },
    TerminateInstances {
        group: String,
        ids: Vec<String>,
        decrement: bool,
    },
    DeleteGroup {
        name: String,
    },
    Fail(FailTarget),
    ScheduleFail {
        target: FailTarget,
        after_ms: u64,
    },
    RestoreZone {
        zone: String,
    },
    /// The API server's writes to a cluster's objects (`kube`).
    PatchNode {
        cluster: String,
        name: String,
        change: NodeChange,
    },
    DeleteNode {
        cluster: String,
        name: String,
    },
    DeletePod {
        cluster: String,
        namespace: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_s: Option<u64>,
    },
    EvictPod {
        cluster: String,
        namespace: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_s: Option<u64>,
    },
    /// The etcd reconciler (`members`) started the member of a control-plane instance: it
    /// joined (or initialised) its cluster's etcd and was promoted. Its Node is Ready from now.
    EtcdMember {
        cluster: String,
        instance: String,
        name: String,
        member_id: u64,
        client_url: String,
        peer_url: String,
    },
    /// The reconciler found the member's process gone, or killed it (its machine died).
    EtcdStopped {
        cluster: String,
        instance: String,
        reason: String,
    },
    /// The member of a control-plane instance could not join; its Node stays NotReady.
    EtcdFailed {
        cluster: String,
        instance: String,
        name: String,
        error: String,
    },
}

/// What an op returns; the caller reads anything else from the world afterwards.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    /// The instances crashed, in the order chosen.
    Crashed(Vec<String>),
    /// A time: the world's after a sleep, or when a scheduled failure is due.
    Time(u64),
    /// Whether a zone was down.
    Restored(bool),
    /// A node as patched, or as it was when deleted.
    Node(Box<Node>),
    /// A pod as deleted.
    Pod(Box<Pod>),
}

/// Why an op was refused (it changed nothing).
#[derive(Debug)]
pub(crate) enum Failure {
    Provider(ProviderError),
    Sim(SimError),
    /// A Kubernetes API error (the API server answers with its status).
    Kube(ApiError),
}

impl From<Failure> for ProviderError {
    fn from(f: Failure) -> ProviderError {
        match f {
            Failure::Provider(e) => e,
            Failure::Sim(e) => e.into(),
            Failure::Kube(e) => {
                let kind = match e.code {
                    404 => drydock_provider::ErrorKind::NotFound,
                    409 => drydock_provider::ErrorKind::AlreadyExists,
                    400 | 415 | 422 => drydock_provider::ErrorKind::InvalidInput,
                    401 | 403 => drydock_provider::ErrorKind::Auth,
                    429 => drydock_provider::ErrorKind::Throttled,
                    503 => drydock_provider::ErrorKind::Unavailable,
                    _ => drydock_provider::ErrorKind::Other,
                };
                ProviderError::new(kind, e.message)
            }
        }
    }
}

impl SimInstance {
    fn is_live(&self) -> bool {
        self.instance.is_live()
    }

    /// Crashes the instance now: running, unhealthy, and visible as failed to status checks.
    fn crash(&mut self, now: u64) {
        let i = &mut self.instance;
        i.state = InstanceState::Running;
        i.healthy = false;
        self.boot_at_ms = None;
        self.crash_after_ms = None;
        self.failed_at_ms.get_or_insert(now);
        self.unhealthy_at_ms.get_or_insert(now);
    }

    fn terminate(&mut self, now: u64, config: &SimConfig) {
        self.instance.state = InstanceState::ShuttingDown;
        self.instance.healthy = false;
        self.boot_at_ms = None;
        self.crash_after_ms = None;
        self.gone_at_ms = Some(now.saturating_add(config.shutdown_time_ms));
    }

    /// The time of this instance's next event, if it has one.
    fn next_event(&self, settings: &GroupSettings, config: &SimConfig) -> Option<u64> {
        match self.instance.state {
            InstanceState::Pending => self.boot_at_ms,
            InstanceState::Running if self.instance.healthy => self
                .crash_after_ms
                .zip(self.instance.healthy_at_ms)
                .map(|(after, healthy_at)| healthy_at.saturating_add(after)),
            InstanceState::Running => self.replace_at(settings, config),
            InstanceState::ShuttingDown => self.gone_at_ms,
            // Never stored, but if a hand-edited world has one, drop it at once.
            InstanceState::Terminated => Some(0),
        }
    }

    /// When the group replaces this unhealthy instance: after the detection delay, and not
    /// within the grace period. EC2 checks see only crashes; ELB checks see any unhealthiness.
    fn replace_at(&self, settings: &GroupSettings, config: &SimConfig) -> Option<u64> {
        let since = match settings.health_check {
            HealthCheck::Ec2 => self.failed_at_ms?,
            HealthCheck::Elb => self.unhealthy_at_ms?,
        };
        // Saturating: a configuration of "never" (u64::MAX) must not overflow.
        let detected = since.saturating_add(config.detection_delay_ms);
        Some(detected.max(self.instance.launched_at_ms.saturating_add(settings.grace_period_ms)))
    }

    /// Applies this instance's event if it is due at `now`.
    fn fire(&mut self, now: u64, settings: &GroupSettings, config: &SimConfig, zones_down: &BTreeSet<String>) {
        if self.next_event(settings, config).is_none_or(|at| at > now) {
            return;
        }
        let i = &mut self.instance;
        match i.state {
            InstanceState::Pending if zones_down.contains(&i.zone) => self.boot_at_ms = None,
            InstanceState::Pending => {
                self.boot_at_ms = None;
                i.state = InstanceState::Running;
                if config.bad_images.contains(&i.image) {
                    i.healthy = false;
                    self.unhealthy_at_ms = Some(now);
                } else {
                    i.healthy = true;
                    i.healthy_at_ms = Some(now);
                }
            }
            InstanceState::Running if i.healthy => self.crash(now),
            InstanceState::Running => self.terminate(now, config),
            InstanceState::ShuttingDown | InstanceState::Terminated => {
                i.state = InstanceState::Terminated;
            }
        }
    }

    /// Moves every timestamp by `delta`, keeping durations (saturating: the times are a world
    /// file's, which may have been edited by hand).
    fn shift(&mut self, delta: u64) {
        let i = &mut self.instance;
        i.launched_at_ms = i.launched_at_ms.saturating_add(delta);
        for t in [
            &mut i.healthy_at_ms,
            &mut self.boot_at_ms,
            &mut self.failed_at_ms,
            &mut self.unhealthy_at_ms,
            &mut self.gone_at_ms,
        ]
        .into_iter()
        .flatten()
        {
            *t = t.saturating_add(delta);
        }
    }
}

impl World {
    /// A new, empty world. Virtual time starts at 0 so that a seed alone decides everything.
    pub fn new(config: SimConfig, clock: ClockMode, wall_ms: u64) -> World {
        World {
            version: WORLD_VERSION,
            clock,
            now_ms: match clock {
                ClockMode::Real => wall_ms,
                ClockMode::Virtual => 0,
            },
            rng: Rng::new(config.seed),
            config: sanitized(&config),
            zones_down: BTreeSet::new(),
            groups: BTreeMap::new(),
            capacity: BTreeMap::new(),
            timeline: VecDeque::new(),
            scheduled: Vec::new(),
            kube: Kube::default(),
            etcd: EtcdRecords::new(),
            index: Index::default(),
        }
    }

    /// Reads a world from its JSON (either version) and builds its indexes. The caller checks
    /// the version.
    pub fn from_json(bytes: &[u8]) -> serde_json::Result<World> {
        let mut world: World = serde_json::from_slice(bytes)?;
        world.reindex();
        Ok(world)
    }

    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// How much work the world has done so far, in steps of about one instance changed.
    pub fn steps(&self) -> u64 {
        self.index.steps.saturating_add(self.kube.steps())
    }

    /// Applies one op. A refused op changes nothing.
    pub fn apply(&mut self, op: &Op) -> Result<Outcome, Failure> {
        self.index.steps += 1;
        match op {
            Op::Configure { config, clock, wall_ms } => {
                self.configure(config, *clock, *wall_ms);
                Ok(Outcome::Done)
            }
            Op::Advance { to_ms } => {
                self.advance_to(*to_ms);
                Ok(Outcome::Time(self.now_ms))
            }
            Op::Sleep { ms } => {
                if self.clock != ClockMode::Virtual {
                    return Err(Failure::Sim(SimError::RealClock));
                }
                self.advance_to(self.now_ms.saturating_add(*ms));
                Ok(Outcome::Time(self.now_ms))
            }
            Op::CreateGroup(req) => self.create_group(req).map(|()| Outcome::Done).map_err(Failure::Provider),
            Op::SetJoin { name, digest, create } => {
                self.set_join(name, digest, *create).map(|()| Outcome::Done).map_err(Failure::Provider)
            }
            Op::UpdateGroup { name, settings } => {
                self.update_group(name, settings).map(|()| Outcome::Done).map_err(Failure::Provider)
            }
            Op::TerminateInstances { group, ids, decrement } => {
                self.terminate_instances(group, ids, *decrement).map(|()| Outcome::Done).map_err(Failure::Provider)
            }
            Op::DeleteGroup { name } => {
                self.delete_group(name);
                Ok(Outcome::Done)
            }
            Op::Fail(target) => self.fail(target).map(Outcome::Crashed).map_err(Failure::Sim),
            Op::ScheduleFail { target, after_ms } => Ok(Outcome::Time(self.schedule_fail(target.clone(), *after_ms))),
            Op::RestoreZone { zone } => self.restore_zone(zone).map(Outcome::Restored).map_err(Failure::Sim),
            Op::PatchNode { cluster, name, change } => {
                self.api_patch_node(cluster, name, change).map(|n| Outcome::Node(Box::new(n))).map_err(Failure::Kube)
            }
            Op::DeleteNode { cluster, name } => {
                self.api_delete_node(cluster, name).map(|n| Outcome::Node(Box::new(n))).map_err(Failure::Kube)
            }
            Op::DeletePod { cluster, namespace, name, uid, grace_s } => self
                .api_delete_pod(cluster, namespace, name, uid.as_deref(), *grace_s)
                .map(|p| Outcome::Pod(Box::new(p)))
                .map_err(Failure::Kube),
            Op::EvictPod { cluster, namespace, name, uid, grace_s } => self
                .api_evict(cluster, namespace, name, uid.as_deref(), *grace_s)
                .map(|()| Outcome::Done)
                .map_err(Failure::Kube),
            Op::EtcdMember { cluster, instance, name, member_id, client_url, peer_url } => {
                let record = EtcdRecord {
                    name: name.clone(),
                    member_id: *member_id,
                    client_url: client_url.clone(),
                    peer_url: peer_url.clone(),
                    state: MemberState::Running,
                    note: None,
                    since_ms: self.now_ms,
                };
                self.etcd_started(cluster, instance, record);
                Ok(Outcome::Done)
            }
            Op::EtcdStopped { cluster, instance, reason } => {
                self.etcd_stopped(cluster, instance, reason);
                Ok(Outcome::Done)
            }
            Op::EtcdFailed { cluster, instance, name, error } => {
                self.etcd_failed(cluster, instance, name, error);
                Ok(Outcome::Done)
            }
        }
    }

    /// Whether taking on this configuration and clock would change anything.
    pub fn needs_configure(&self, config: &SimConfig, clock: ClockMode) -> bool {
        self.clock != clock || self.config != sanitized(config)
    }

    /// Takes on a provider's configuration and clock. A virtual world going real is moved
    /// forward to the wall clock (`wall_ms`) as a whole, as if no time had passed: otherwise it
    /// would have to live through decades of events to catch up from virtual time 0.
    pub fn configure(&mut self, config: &SimConfig, clock: ClockMode, wall_ms: Option<u64>) {
        let mut reindex = false;
        if let Some(wall_ms) = wall_ms {
            if self.clock == ClockMode::Virtual && clock == ClockMode::Real && wall_ms > self.now_ms {
                self.shift(wall_ms - self.now_ms);
                reindex = true;
            }
        }
        self.clock = clock;
        let config = sanitized(config);
        let mut kube_changed = false;
        // Without etcd, no Node waits for a member.
        let etcd_off = self.config.etcd && !config.etcd;
        if config != self.config {
            // The detection delay decides when unhealthy instances are replaced.
            kube_changed =
                config.workloads != self.config.workloads || config.pods_per_node != self.config.pods_per_node;
            self.config = config;
            reindex = true;
        }
        if reindex {
            self.reindex();
        }
        if etcd_off {
            for id in self.kube.waiting_nodes() {
                self.etcd_node_condition(&id, None);
            }
        }
        if kube_changed {
            // New workloads get pods, changed ones scale, removed ones lose theirs.
            self.kube_reconfigure();
            self.settle();
        }
    }

    fn shift(&mut self, delta: u64) {
        self.now_ms = self.now_ms.saturating_add(delta);
        for group in self.groups.values_mut() {
            group.created_at_ms = group.created_at_ms.saturating_add(delta);
            group.instances.values_mut().for_each(|i| i.shift(delta));
        }
        for point in self.capacity.values_mut().chain(self.timeline.iter_mut()) {
            point.t_ms = point.t_ms.saturating_add(delta);
        }
        for s in &mut self.scheduled {
            s.at_ms = s.at_ms.saturating_add(delta);
        }
        self.kube.shift(delta);
    }

    /// Rebuilds every index from the world itself: after reading it, after moving its times,
    /// after a change of configuration.
    pub fn reindex(&mut self) {
        let mut index = Index { steps: self.index.steps, ..Index::default() };
        for (name, group) in &mut self.groups {
            let Group { instances, live, settings, ownership, .. } = group;
            *live = Live { next_seq: instances.keys().next_back().map_or(0, |last| last + 1), ..Live::default() };
            for (&seq, instance) in instances.iter_mut() {
                index.steps += 1;
                live.count([0; 3], contribution(&instance.instance));
                if instance.is_live() {
                    live.add_live(seq, &instance.instance);
                }
                index.instances.insert(instance.instance.id.clone(), (name.clone(), seq));
                instance.queued = None;
                let next = instance.next_event(settings, &self.config);
                requeue(&mut index.events, name, seq, &mut instance.queued, next);
            }
            index
                .node_groups
                .entry((ownership.cluster.clone(), ownership.node_group.clone()))
                .or_default()
                .insert(name.clone());
            if live.count != settings.desired as usize {
                index.dirty.insert(name.clone());
            }
        }
        self.index = index;
        self.kube.reindex();
        let keys: BTreeSet<Key> = self.index.node_groups.keys().chain(self.capacity.keys()).cloned().collect();
        for key in keys {
            if self.node_group_counts(&key) != self.recorded_counts(&key) {
                self.index.changed.insert(key);
            }
        }
    }

    /// The time this world should be at, given the wall clock: real worlds follow it (never
    /// going back), virtual worlds move only when slept on.
    pub fn target_now(&self, wall_ms: u64) -> u64 {
        match self.clock {
            ClockMode::Real => self.now_ms.max(wall_ms),
            ClockMode::Virtual => self.now_ms,
        }
    }

    /// Lives through every event up to `t`, in time order.
    pub fn advance_to(&mut self, t: u64) {
        while let Some(at) = self.next_event() {
            if at > t {
                break;
            }
            self.now_ms = self.now_ms.max(at);
            self.fire_due();
            self.settle();
        }
        self.now_ms = self.now_ms.max(t);
    }

    fn next_event(&self) -> Option<u64> {
        let instance = self.index.events.first().map(|(at, _, _)| *at);
        let scheduled = self.scheduled.iter().map(|s| s.at_ms).min();
        instance.into_iter().chain(scheduled).chain(self.kube.next_event()).min()
    }

    /// Fires every instance event due now (which, after a change of settings, may include
    /// events due earlier), groups by name and instances in launch order, then the failures
    /// due now.
    fn fire_due(&mut self) {
        let now = self.now_ms;
        let mut due = Vec::new();
        while self.index.events.first().is_some_and(|(at, _, _)| *at <= now) {
            let Some((_, name, seq)) = self.index.events.pop_first() else {
                break;
            };
            if let Some(i) = self.groups.get_mut(&name).and_then(|g| g.instances.get_mut(&seq)) {
                i.queued = None;
            }
            due.push((name, seq));
        }
        due.sort_unstable();
        for (name, seq) in due {
            self.change(&name, seq, |i, settings, config, zones_down| i.fire(now, settings, config, zones_down));
        }
        // Then the failures due now, in the order they were scheduled; one that finds nothing
        // to crash does nothing.
        if self.scheduled.iter().any(|s| s.at_ms <= now) {
            let (due, later): (Vec<ScheduledFailure>, Vec<ScheduledFailure>) =
                std::mem::take(&mut self.scheduled).into_iter().partition(|s| s.at_ms <= now);
            self.scheduled = later;
            for s in due {
                let _ = self.fail(&s.target);
            }
        }
        // Then Kubernetes: nodes joining, pods starting and exiting.
        self.kube_fire_due();
    }

    /// Changes one instance with `f`, keeping every index right: the group's live counts and
    /// scale-in order, the node group's capacity, the event queue, and (when it is gone) the
    /// id index. Nothing else mutates an instance.
    fn change(
        &mut self,
        name: &str,
        seq: u64,
        f: impl FnOnce(&mut SimInstance, &GroupSettings, &SimConfig, &BTreeSet<String>),
    ) {
        let World { groups, index, config, zones_down, .. } = self;
        let Some(group) = groups.get_mut(name) else {
            return;
        };
        let Group { instances, live, settings, ownership, .. } = group;
        let Some(instance) = instances.get_mut(&seq) else {
            return;
        };
        index.steps += 1;
        let (was_live, before) = (instance.is_live(), contribution(&instance.instance));
        let (was_pending, was_failed) =
            (instance.instance.state == InstanceState::Pending, instance.failed_at_ms.is_some());
        f(instance, settings, config, zones_down);
        let gone = instance.instance.state == InstanceState::Terminated;
        // What Kubernetes sees of it: its kubelet starting, dying, or its machine going.
        let booted = was_pending && instance.instance.state == InstanceState::Running && instance.instance.healthy;
        let crashed = !was_failed && instance.failed_at_ms.is_some();
        let terminated = was_live && !instance.is_live();
        let hook = (booted || crashed || terminated || gone).then(|| instance.instance.id.clone());
        let (is_live, after) =
            if gone { (false, [0; 3]) } else { (instance.is_live(), contribution(&instance.instance)) };
        live.count(before, after);
        if was_live != is_live {
            if was_live {
                live.remove_live(seq, &instance.instance);
            } else {
                live.add_live(seq, &instance.instance);
            }
            index.dirty.insert(name.to_string());
        }
        if before != after {
            index.changed.insert((ownership.cluster.clone(), ownership.node_group.clone()));
        }
        let next = if gone { None } else { instance.next_event(settings, config) };
        requeue(&mut index.events, name, seq, &mut instance.queued, next);
        if gone {
            index.instances.remove(&instance.instance.id);
            instances.remove(&seq);
        }
        if let Some(id) = hook {
            self.kube_instance_changed(&id, booted, crashed, terminated, gone);
        }
    }

    /// Adds a new instance to a group, after its others.
    fn insert(&mut self, name: &str, mut instance: SimInstance) {
        let World { groups, index, config, .. } = self;
        let Some(group) = groups.get_mut(name) else {
            return;
        };
        let Group { instances, live, settings, ownership, .. } = group;
        index.steps += 1;
        let seq = live.next_seq;
        live.next_seq += 1;
        let counts = contribution(&instance.instance);
        live.count([0; 3], counts);
        if counts != [0; 3] {
            index.changed.insert((ownership.cluster.clone(), ownership.node_group.clone()));
        }
        if instance.is_live() {
            live.add_live(seq, &instance.instance);
            index.dirty.insert(name.to_string());
        }
        instance.queued = None;
        let next = instance.next_event(settings, config);
        requeue(&mut index.events, name, seq, &mut instance.queued, next);
        index.instances.insert(instance.instance.id.clone(), (name.to_string(), seq));
        instances.insert(seq, instance);
    }

    /// Recomputes the next event of every instance of a group (its health checks changed).
    fn requeue_group(&mut self, name: &str) {
        let World { groups, index, config, .. } = self;
        let Some(group) = groups.get_mut(name) else {
            return;
        };
        for (&seq, instance) in &mut group.instances {
            index.steps += 1;
            let next = instance.next_event(&group.settings, config);
            requeue(&mut index.events, name, seq, &mut instance.queued, next);
        }
    }

    /// Schedules a failure `after_ms` from now; returns when it is due.
    pub fn schedule_fail(&mut self, target: FailTarget, after_ms: u64) -> u64 {
        let at_ms = self.now_ms.saturating_add(after_ms);
        self.scheduled.push(ScheduledFailure { at_ms, target });
        at_ms
    }

    /// After any change: every group launches or terminates to its desired size, and the
    /// capacity timeline notes what changed. Only the groups that may be unsettled are looked
    /// at (every other group has as many live instances as it desires), in name order.
    pub(crate) fn settle(&mut self) {
        let dirty = std::mem::take(&mut self.index.dirty);
        for name in &dirty {
            self.reconcile(name);
        }
        let mut dirty: BTreeSet<String> = dirty.into_iter().chain(std::mem::take(&mut self.index.dirty)).collect();
        dirty.retain(|name| self.groups.get(name).is_some_and(|g| g.live.count != g.settings.desired as usize));
        self.index.dirty = dirty;
        // Then the clusters: controllers replace what went, the scheduler binds what waits.
        self.kube_settle();
        self.record_capacity();
    }

    fn reconcile(&mut self, name: &str) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let live = group.live.count;
        let desired = group.settings.desired as usize;
        for _ in live..desired {
            if !self.launch(name) {
                break;
            }
        }
        for _ in desired..live {
            self.scale_in_one(name);
        }
    }

    /// Launches one instance into the group, in the subnet whose zone has the fewest live
    /// instances (then the subnet with the fewest, then the first listed), of the first
    /// instance type. False if the group has nowhere to launch.
    fn launch(&mut self, name: &str) -> bool {
        let id = self.new_instance_id();
        let crash_after_ms = (self.config.failure_rate > 0.0 && self.rng.next_f64() < self.config.failure_rate)
            .then(|| 1 + self.rng.below(CRASH_WINDOW_MS));
        let now = self.now_ms;
        // At least 1 ms, so that a churning group cannot loop without time passing.
        let boot_at = now.saturating_add(self.config.boot_time_ms.max(1));
        let Some(group) = self.groups.get(name) else {
            return false;
        };
        let Some(subnet) = group
            .settings
            .subnets
            .iter()
            .enumerate()
            .min_by_key(|(index, subnet)| (group.live.in_zone(&zone_of(subnet)), group.live.in_subnet(subnet), *index))
            .map(|(_, subnet)| subnet.clone())
        else {
            return false;
        };
        let instance = SimInstance {
            instance: Instance {
                id,
                zone: zone_of(&subnet),
                subnet,
                image: group.spec.image.clone(),
                instance_type: group.spec.instance_types.first().cloned().unwrap_or_default(),
                state: InstanceState::Pending,
                healthy: false,
                launched_at_ms: now,
                healthy_at_ms: None,
            },
            boot_at_ms: Some(boot_at),
            launch_version: group.launch_version,
            crash_after_ms,
            failed_at_ms: None,
            unhealthy_at_ms: None,
            gone_at_ms: None,
            queued: None,
        };
        self.insert(name, instance);
        true
    }

    /// `i-` and 17 hex digits, as EC2's; the leading digit is 0 as in most real ids.
    fn new_instance_id(&mut self) -> String {
        loop {
            let id = format!("i-{:017x}", self.rng.next_u64());
            if !self.index.instances.contains_key(&id) {
                return id;
            }
        }
    }

    /// Scale-in, after AWS's default termination policy simplified: from the zone with the most
    /// live instances (ties: the zone named first), the oldest instance (ties: the smaller id).
    /// Every instance of a group shares its launch configuration, so "oldest launch
    /// configuration" reduces to the oldest instance.
    fn scale_in_one(&mut self, name: &str) {
        let now = self.now_ms;
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let mut busiest: Option<&BTreeSet<(u64, String, u64)>> = None;
        for set in group.live.by_zone.values() {
            if busiest.is_none_or(|b| set.len() > b.len()) {
                busiest = Some(set);
            }
        }
        let Some(&(_, _, seq)) = busiest.and_then(BTreeSet::first) else {
            return;
        };
        self.change(name, seq, |i, _, config, _| i.terminate(now, config));
    }

    /// Appends a point for every node group whose capacity changed since its last point; a
    /// node group whose last group is gone gets a final point of zeros.
    fn record_capacity(&mut self) {
        for key in std::mem::take(&mut self.index.changed) {
            let now = self.node_group_counts(&key);
            if now == self.recorded_counts(&key) {
                continue;
            }
            let [healthy, running, total] = now;
            let point = CapacityPoint {
                t_ms: self.now_ms,
                cluster: key.0.clone(),
                node_group: key.1.clone(),
                healthy,
                running,
                total,
            };
            if now == [0; 3] {
                self.capacity.remove(&key);
            } else {
                self.capacity.insert(key, point.clone());
            }
            self.timeline.push_back(point);
        }
        while self.timeline.len() > TIMELINE_LIMIT {
            self.timeline.pop_front();
        }
    }

    /// A node group's capacity now, summed over its groups.
    fn node_group_counts(&self, key: &Key) -> [u32; 3] {
        let mut counts = [0u32; 3];
        for name in self.index.node_groups.get(key).into_iter().flatten() {
            if let Some(group) = self.groups.get(name) {
                for (sum, n) in counts.iter_mut().zip(group.live.counts) {
                    *sum = sum.saturating_add(n);
                }
            }
        }
        counts
    }

    /// A node group's capacity at its latest point (zeros if it has none).
    fn recorded_counts(&self, key: &Key) -> [u32; 3] {
        self.capacity.get(key).map_or([0; 3], |p| [p.healthy, p.running, p.total])
    }

    fn observed(name: &str, group: &Group) -> ObservedGroup {
        ObservedGroup {
            name: name.to_string(),
            ownership: group.ownership.clone(),
            spec: group.spec.clone(),
            spec_partial: false,
            settings: group.settings.clone(),
            instances: group.instances.values().map(|i| i.instance.clone()).collect(),
            created_at_ms: group.created_at_ms,
            join_digest: group.join_digest.clone(),
        }
    }

    /// The group of that name as the provider reports it.
    pub fn observed_group(&self, name: &str) -> Option<ObservedGroup> {
        self.groups.get(name).map(|g| World::observed(name, g))
    }

    /// The capacity timeline, oldest point first.
    pub fn timeline(&self) -> Vec<CapacityPoint> {
        self.timeline.iter().cloned().collect()
    }

    // ---- provider operations -------------------------------------------------------------

    pub fn observe(&self, lineage: &str) -> Observed {
        Observed {
            groups: self
                .groups
                .iter()
                .filter(|(_, g)| g.ownership.lineage == lineage)
                .map(|(name, g)| World::observed(name, g))
                .collect(),
        }
    }

    /// Every group owned by one of these clusters, of any lineage.
    pub fn observe_clusters(&self, clusters: &[String]) -> Observed {
        Observed {
            groups: self
                .groups
                .iter()
                .filter(|(_, g)| clusters.contains(&g.ownership.cluster))
                .map(|(name, g)| World::observed(name, g))
                .collect(),
        }
    }

    /// The groups of one node group of a lineage, from the index: a step's look at its own
    /// node group costs the same whatever the size of the fleet.
    pub fn observe_node_group(&self, lineage: &str, cluster: &str, node_group: &str) -> Observed {
        let key = (cluster.to_string(), node_group.to_string());
        let names = self.index.node_groups.get(&key);
        Observed {
            groups: names
                .into_iter()
                .flatten()
                .filter_map(|name| self.groups.get(name).map(|g| (name, g)))
                .filter(|(_, g)| g.ownership.lineage == lineage)
                .map(|(name, g)| World::observed(name, g))
                .collect(),
        }
    }

    /// Creates the group (or finds it already made with the same ownership: a retry); the
    /// caller reads it with [`World::observed_group`].
    /// Records the join secrets' digest on a group's launch definition: at creation (version 1),
    /// or a rotation (a new version, when the digest differs). Instances launched later carry it.
    pub fn set_join(&mut self, name: &str, digest: &str, create: bool) -> Result<(), ProviderError> {
        let Some(group) = self.groups.get_mut(name) else {
            return Err(ProviderError::not_found("no group of that name").with_group(name));
        };
        if group.join_digest.as_deref() != Some(digest) {
            if !create && group.join_digest.is_some() {
                group.launch_version += 1;
            }
            group.join_digest = Some(digest.to_string());
        }
        Ok(())
    }

    pub fn create_group(&mut self, req: &CreateGroup) -> Result<(), ProviderError> {
        let invalid = |message: &str| ProviderError::invalid_input(message).with_group(&req.name);
        if req.name.is_empty() {
            return Err(ProviderError::invalid_input("a group needs a name"));
        }
        let o = &req.ownership;
        if [&o.lineage, &o.cluster, &o.node_group, &o.generation].iter().any(|v| v.is_empty()) {
            return Err(invalid("ownership needs a lineage, a cluster, a node group and a generation"));
        }
        if req.spec.image.is_empty() {
            return Err(invalid("the spec needs an image"));
        }
        if req.spec.instance_types.is_empty() {
            return Err(invalid("the spec needs at least one instance type"));
        }
        validate_settings(&req.settings, &req.ownership).map_err(|m| invalid(&m))?;
        if let Some(existing) = self.groups.get(&req.name) {
            if existing.ownership == req.ownership {
                return Ok(());
            }
            return Err(ProviderError::already_exists(format!(
                "a group of that name belongs to lineage {} cluster {} node group {} generation {}",
                existing.ownership.lineage,
                existing.ownership.cluster,
                existing.ownership.node_group,
                existing.ownership.generation
            ))
            .with_group(&req.name));
        }
        let group = Group {
            ownership: req.ownership.clone(),
            spec: req.spec.clone(),
            settings: req.settings.clone(),
            created_at_ms: self.now_ms,
            instances: BTreeMap::new(),
            live: Live::default(),
            join_digest: None,
            launch_version: 1,
        };
        self.index.node_groups.entry(group.key()).or_default().insert(req.name.clone());
        self.index.dirty.insert(req.name.clone());
        self.groups.insert(req.name.clone(), group);
        self.settle();
        Ok(())
    }

    pub fn update_group(&mut self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        let group = self.groups.get_mut(name).ok_or_else(|| no_group(name))?;
        validate_settings(settings, &group.ownership).map_err(|m| ProviderError::invalid_input(m).with_group(name))?;
        let health_changed = group.settings.health_check != settings.health_check
            || group.settings.grace_period_ms != settings.grace_period_ms;
        group.settings = settings.clone();
        self.index.dirty.insert(name.to_string());
        if health_changed {
            self.requeue_group(name);
        }
        self.settle();
        Ok(())
    }

    pub fn terminate_instances(&mut self, name: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        let group = self.groups.get(name).ok_or_else(|| no_group(name))?;
        // By launch number: in launch order, each once.
        let mut targets = BTreeSet::new();
        for id in ids {
            self.index.steps += 1;
            match self.index.instances.get(id) {
                Some((owner, _)) if owner != name => {
                    return Err(ProviderError::invalid_input(format!("instance {id} belongs to group {owner}"))
                        .with_group(name));
                }
                // Only live instances are terminated (and counted for the decrement): a retry
                // of the same request must not lower the desired capacity twice.
                Some((_, seq)) if group.instances.get(seq).is_some_and(SimInstance::is_live) => {
                    targets.insert(*seq);
                }
                _ => {}
            }
        }
        let desired = if decrement {
            let drop = targets.len() as u32;
            let desired = group.settings.desired.saturating_sub(drop);
            if group.settings.desired < drop || desired < group.settings.min {
                return Err(ProviderError::invalid_input(format!(
                    "terminating {drop} instances without replacement would take desired \
                     capacity {} below the minimum {}",
                    group.settings.desired, group.settings.min
                ))
                .with_group(name));
            }
            desired
        } else {
            group.settings.desired
        };
        let now = self.now_ms;
        let group = self.groups.get_mut(name).ok_or_else(|| no_group(name))?;
        group.settings.desired = desired;
        self.index.dirty.insert(name.to_string());
        for seq in targets {
            self.change(name, seq, |i, _, config, _| i.terminate(now, config));
        }
        self.settle();
        Ok(())
    }

    pub fn delete_group(&mut self, name: &str) {
        let Some(group) = self.groups.remove(name) else {
            return;
        };
        for (&seq, instance) in &group.instances {
            self.index.steps += 1;
            self.index.instances.remove(&instance.instance.id);
            if let Some(at) = instance.queued {
                self.index.events.remove(&(at, name.to_string(), seq));
            }
        }
        // Its instances are gone with it: live ones as terminated.
        for instance in group.instances.values() {
            self.kube_instance_changed(&instance.instance.id, false, false, instance.is_live(), true);
        }
        let key = group.key();
        if let Some(names) = self.index.node_groups.get_mut(&key) {
            names.remove(name);
            if names.is_empty() {
                self.index.node_groups.remove(&key);
            }
        }
        self.index.changed.insert(key);
        self.index.dirty.remove(name);
        self.settle();
    }

    // ---- failure injection and read-outs -----------------------------------------------------

    /// Every instance for which `pick` says so, as (group, launch number), in world order
    /// (groups by name, instances in launch order).
    fn select(&mut self, pick: impl Fn(&Group, &SimInstance) -> bool) -> Vec<(String, u64)> {
        let mut selected = Vec::new();
        for (name, group) in &self.groups {
            self.index.steps += group.instances.len() as u64;
            for (&seq, instance) in &group.instances {
                if pick(group, instance) {
                    selected.push((name.clone(), seq));
                }
            }
        }
        selected
    }

    pub fn fail(&mut self, target: &FailTarget) -> Result<Vec<String>, SimError> {
        let now = self.now_ms;
        let crashable = |i: &SimInstance| i.instance.state == InstanceState::Running && i.failed_at_ms.is_none();
        let crashed = match target {
            FailTarget::Instance(id) => {
                let (name, seq) = self
                    .index
                    .instances
                    .get(id)
                    .filter(|(name, seq)| {
                        self.groups.get(name).and_then(|g| g.instances.get(seq)).is_some_and(SimInstance::is_live)
                    })
                    .cloned()
                    .ok_or_else(|| SimError::NoSuchInstance(id.clone()))?;
                self.change(&name, seq, |i, _, _, _| i.crash(now));
                vec![id.clone()]
            }
            FailTarget::NodeGroup { cluster, node_group, count } => {
                let mut candidates = self.select(|g, i| {
                    g.ownership.node_group == *node_group
                        && cluster.as_ref().is_none_or(|c| g.ownership.cluster == *c)
                        && crashable(i)
                });
                if candidates.is_empty() && *count > 0 {
                    let name = match cluster {
                        Some(c) => format!("{c}/{node_group}"),
                        None => node_group.clone(),
                    };
                    return Err(SimError::NothingToFail(name));
                }
                // A partial Fisher-Yates shuffle on the world's own random numbers: which
                // instances fail is arbitrary but reproducible.
                let n = (*count as usize).min(candidates.len());
                for k in 0..n {
                    let pick = k + self.rng.below((candidates.len() - k) as u64) as usize;
                    candidates.swap(k, pick);
                }
                candidates.truncate(n);
                let mut ids = Vec::with_capacity(n);
                for (name, seq) in candidates {
                    if let Some(i) = self.groups.get(&name).and_then(|g| g.instances.get(&seq)) {
                        ids.push(i.instance.id.clone());
                    }
                    self.change(&name, seq, |i, _, _, _| i.crash(now));
                }
                ids
            }
            FailTarget::Zone(zone) => {
                // A zone no group uses is a typo, not an outage worth simulating.
                self.known_zone(zone)?;
                self.zones_down.insert(zone.clone());
                let mut crashed = Vec::new();
                for (name, seq) in self.select(|_, i| i.instance.zone == *zone && crashable(i)) {
                    if let Some(i) = self.groups.get(&name).and_then(|g| g.instances.get(&seq)) {
                        crashed.push(i.instance.id.clone());
                    }
                    self.change(&name, seq, |i, _, _, _| i.crash(now));
                }
                crashed
            }
            FailTarget::Kubelet { instance, cluster, node_group, count } => {
                self.fail_kubelets(instance.as_deref(), cluster.as_deref(), node_group.as_deref(), *count)?
            }
        };
        self.settle();
        Ok(crashed)
    }

    /// An instance by id, with its group.
    pub(crate) fn instance_by_id(&self, id: &str) -> Option<(&Group, &SimInstance)> {
        let (name, seq) = self.index.instances.get(id)?;
        let group = self.groups.get(name)?;
        Some((group, group.instances.get(seq)?))
    }

    /// Whether the instance is pending or running.
    pub(crate) fn instance_is_live(&self, id: &str) -> bool {
        self.instance_by_id(id).is_some_and(|(_, i)| i.is_live())
    }

    /// The ids of every instance for which `pick` says so, in world order.
    pub(crate) fn instances_where(&self, pick: impl Fn(&Group, &SimInstance) -> bool) -> Vec<String> {
        self.groups
            .values()
            .flat_map(|g| {
                g.instances.values().filter(|i| pick(g, i)).map(|i| i.instance.id.clone()).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Brings a zone back: instances stuck pending there boot from now. Returns whether the
    /// zone was down.
    /// Brings zone `zone` back: `false` when it was not down; a zone no group uses (and that
    /// is not down) is a typo, refused as `sim fail --zone` refuses it.
    pub fn restore_zone(&mut self, zone: &str) -> Result<bool, SimError> {
        if !self.zones_down.remove(zone) {
            self.known_zone(zone)?;
            return Ok(false);
        }
        let boot_at = self.now_ms.saturating_add(self.config.boot_time_ms.max(1));
        let stuck = self.select(|_, i| {
            i.instance.zone == zone && i.instance.state == InstanceState::Pending && i.boot_at_ms.is_none()
        });
        for (name, seq) in stuck {
            self.change(&name, seq, |i, _, _, _| i.boot_at_ms = Some(boot_at));
        }
        self.settle();
        Ok(true)
    }

    /// `Ok` when a group of the world uses zone `zone`.
    fn known_zone(&self, zone: &str) -> Result<(), SimError> {
        let known: BTreeSet<String> =
            self.groups.values().flat_map(|g| g.settings.subnets.iter().map(|s| zone_of(s))).collect();
        if known.contains(zone) {
            return Ok(());
        }
        let known = if known.is_empty() {
            "none (no group exists)".to_string()
        } else {
            known.into_iter().collect::<Vec<_>>().join(", ")
        };
        Err(SimError::UnknownZone { zone: zone.to_string(), known })
    }

    pub fn status(&self) -> Status {
        let mut groups: Vec<(&u64, GroupStatus)> = self
            .groups
            .iter()
            .map(|(name, g)| {
                let status = GroupStatus {
                    cluster: g.ownership.cluster.clone(),
                    node_group: g.ownership.node_group.clone(),
                    generation: g.ownership.generation.clone(),
                    name: name.clone(),
                    min: g.settings.min,
                    max: g.settings.max,
                    desired: g.settings.desired,
                    launch_version: g.launch_version,
                    join_digest: g.join_digest.clone(),
                    instances: g
                        .instances
                        .values()
                        .map(|i| InstanceStatus {
                            id: i.instance.id.clone(),
                            zone: i.instance.zone.clone(),
                            image: i.instance.image.clone(),
                            instance_type: i.instance.instance_type.clone(),
                            state: i.instance.state,
                            healthy: i.instance.healthy,
                            launched_at_ms: i.instance.launched_at_ms,
                            launch_version: i.launch_version,
                        })
                        .collect(),
                };
                (&g.created_at_ms, status)
            })
            .collect();
        groups.sort_by(|(at_a, a), (at_b, b)| {
            (&a.cluster, &a.node_group, at_a, &a.name).cmp(&(&b.cluster, &b.node_group, at_b, &b.name))
        });
        let (nodes, pods, violations) = self.kube_status();
        Status {
            now_ms: self.now_ms,
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            nodes,
            pods,
            violations,
            etcd: crate::members::recorded(&self.etcd),
        }
    }
}

/// Moves an instance's entry in the event queue to `next`.
fn requeue(
    events: &mut BTreeSet<(u64, String, u64)>,
    name: &str,
    seq: u64,
    queued: &mut Option<u64>,
    next: Option<u64>,
) {
    if *queued == next {
        return;
    }
    if let Some(at) = queued.take() {
        events.remove(&(at, name.to_string(), seq));
    }
    if let Some(at) = next {
        events.insert((at, name.to_string(), seq));
    }
    *queued = next;
}

/// A group's instances, stored as a list in launch order and numbered afresh when read.
mod launch_order {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::SimInstance;

    pub fn serialize<S: Serializer>(instances: &BTreeMap<u64, SimInstance>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(instances.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, SimInstance>, D::Error> {
        Ok(Vec::<SimInstance>::deserialize(d)?.into_iter().enumerate().map(|(k, i)| (k as u64, i)).collect())
    }
}

/// The latest capacity points, stored as a list sorted by node group; points of zeros are
/// dropped when read (no point and a point of zeros mean the same).
mod latest_points {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{CapacityPoint, Key};

    pub fn serialize<S: Serializer>(points: &BTreeMap<Key, CapacityPoint>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(points.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Key, CapacityPoint>, D::Error> {
        Ok(Vec::<CapacityPoint>::deserialize(d)?
            .into_iter()
            .filter(|p| [p.healthy, p.running, p.total] != [0; 3])
            .map(|p| ((p.cluster.clone(), p.node_group.clone()), p))
            .collect())
    }
}

/// The configuration with a probability that is one: NaN would not even survive the trip
/// through JSON.
fn sanitized(config: &SimConfig) -> SimConfig {
    let mut config = config.clone();
    config.failure_rate = if config.failure_rate.is_nan() { 0.0 } else { config.failure_rate.clamp(0.0, 1.0) };
    config
}

fn no_group(name: &str) -> ProviderError {
    ProviderError::not_found("no group of that name").with_group(name)
}

/// Sizes in order, somewhere to launch, and no tag that contradicts the ownership (the
/// ownership tags are the provider's to write; repeating them is harmless).
fn validate_settings(settings: &GroupSettings, ownership: &Ownership) -> Result<(), String> {
    let GroupSettings { min, max, desired, .. } = *settings;
    if !(min <= desired && desired <= max) {
        return Err(format!("sizes must satisfy min <= desired <= max, got min {min}, desired {desired}, max {max}"));
    }
    if settings.subnets.is_empty() {
        return Err("a group needs at least one subnet".to_string());
    }
    for (key, value) in ownership.tags() {
        if let Some(given) = settings.tags.get(&key).filter(|v| **v != value) {
            return Err(format!("tag {key} is an ownership tag and must be {value:?}, not {given:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_map_to_zones() {
        assert_eq!(zone_of("subnet-a"), "zone-a");
        assert_eq!(zone_of("subnet-eu-1b"), "zone-eu-1b");
        assert_eq!(zone_of("us-east-1c"), "us-east-1c");
        assert_eq!(zone_of("subnet-"), "subnet-");
    }

    #[test]
    fn instance_ids_look_like_ec2_ids() {
        let mut world = World::new(SimConfig::default(), ClockMode::Virtual, 0);
        let id = world.new_instance_id();
        assert_eq!(id.len(), 2 + 17, "{id}");
        assert!(id.starts_with("i-"));
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(world.new_instance_id(), id);
    }

    #[test]
    fn virtual_world_going_real_moves_forward_as_a_whole() {
        let mut world = World::new(SimConfig::default(), ClockMode::Virtual, 0);
        world.now_ms = 5_000;
        world.timeline.push_back(CapacityPoint {
            t_ms: 4_000,
            cluster: "c".into(),
            node_group: "n".into(),
            healthy: 1,
            running: 1,
            total: 1,
        });
        world.configure(&SimConfig::default(), ClockMode::Real, Some(1_000_000));
        assert_eq!(world.clock, ClockMode::Real);
        assert_eq!(world.now_ms, 1_000_000);
        assert_eq!(world.timeline[0].t_ms, 999_000);
        // A real world never goes back with the wall clock.
        assert_eq!(world.target_now(10), 1_000_000);
        assert_eq!(world.target_now(1_000_500), 1_000_500);
    }

    #[test]
    fn a_hand_edited_world_with_times_in_the_far_future_goes_real_without_overflowing() {
        let mut world = World::new(SimConfig::default(), ClockMode::Virtual, 0);
        world.timeline.push_back(CapacityPoint {
            t_ms: u64::MAX - 1,
            cluster: "c".into(),
            node_group: "n".into(),
            healthy: 0,
            running: 0,
            total: 0,
        });
        world.configure(&SimConfig::default(), ClockMode::Real, Some(1_000_000));
        assert_eq!(world.now_ms, 1_000_000);
        assert_eq!(world.timeline[0].t_ms, u64::MAX);
    }
}
