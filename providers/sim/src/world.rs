//! The simulated world: groups and their instances, how they evolve as time passes, and the
//! operations that change them. Pure data and logic; the file, the lock and the clock are
//! `store`'s and `provider`'s.
//!
//! Evolution is event-driven: [`World::advance_to`] repeatedly takes the earliest due event of
//! any instance, applies every event due at that time (groups by name, instances in launch
//! order), lets every group reconcile its size, and records capacity. So the outcome depends
//! only on the events, never on how often or in which steps a process looked at the world.

use std::collections::{BTreeMap, BTreeSet};

use drydock_provider::{
    CreateGroup, GenerationSpec, GroupSettings, HealthCheck, Instance, InstanceState, Observed, ObservedGroup,
    Ownership, ProviderError,
};
use serde::{Deserialize, Serialize};

use crate::config::{ClockMode, SimConfig};
use crate::rng::Rng;
use crate::status::{CapacityPoint, GroupStatus, InstanceStatus, Status};
use crate::{FailTarget, SimError};

/// The version of the world file this code reads and writes.
pub const WORLD_VERSION: u32 = 1;
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

/// Everything the world file holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
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
    /// The latest point of each node group, to notice changes even after the timeline has
    /// forgotten them.
    #[serde(default)]
    pub capacity: Vec<CapacityPoint>,
    #[serde(default)]
    pub timeline: Vec<CapacityPoint>,
    /// Failures due later, in the order they were scheduled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledFailure>,
}

/// A failure that happens when the world reaches `at_ms`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct ScheduledFailure {
    pub at_ms: u64,
    pub target: FailTarget,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Group {
    pub ownership: Ownership,
    pub spec: GenerationSpec,
    pub settings: GroupSettings,
    pub created_at_ms: u64,
    /// In launch order; terminated instances are dropped.
    pub instances: Vec<SimInstance>,
}

/// An instance as the provider reports it, plus what the simulation needs to know of its future.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct SimInstance {
    #[serde(flatten)]
    pub instance: Instance,
    /// When a pending instance finishes booting; `None` while it is stuck in a zone that is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_at_ms: Option<u64>,
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
}

impl SimInstance {
    fn is_live(&self) -> bool {
        self.instance.is_live()
    }

    fn id(&self) -> &str {
        &self.instance.id
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
            capacity: Vec::new(),
            timeline: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// Takes on a provider's configuration and clock. A virtual world going real is moved
    /// forward to the wall clock as a whole, as if no time had passed: otherwise it would have
    /// to live through decades of events to catch up from virtual time 0.
    pub fn configure(&mut self, config: &SimConfig, clock: ClockMode, wall_ms: u64) {
        if self.clock == ClockMode::Virtual && clock == ClockMode::Real && wall_ms > self.now_ms {
            self.shift(wall_ms - self.now_ms);
        }
        self.clock = clock;
        self.config = sanitized(config);
    }

    fn shift(&mut self, delta: u64) {
        self.now_ms = self.now_ms.saturating_add(delta);
        for group in self.groups.values_mut() {
            group.created_at_ms = group.created_at_ms.saturating_add(delta);
            group.instances.iter_mut().for_each(|i| i.shift(delta));
        }
        for point in self.capacity.iter_mut().chain(self.timeline.iter_mut()) {
            point.t_ms = point.t_ms.saturating_add(delta);
        }
        for s in &mut self.scheduled {
            s.at_ms = s.at_ms.saturating_add(delta);
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
        self.groups
            .values()
            .flat_map(|g| g.instances.iter().filter_map(|i| i.next_event(&g.settings, &self.config)))
            .chain(self.scheduled.iter().map(|s| s.at_ms))
            .min()
    }

    fn fire_due(&mut self) {
        let now = self.now_ms;
        for group in self.groups.values_mut() {
            for instance in &mut group.instances {
                instance.fire(now, &group.settings, &self.config, &self.zones_down);
            }
            group.instances.retain(|i| i.instance.state != InstanceState::Terminated);
        }
        // Then the failures due now, in the order they were scheduled; one that finds nothing
        // to crash does nothing.
        let (due, later): (Vec<ScheduledFailure>, Vec<ScheduledFailure>) =
            std::mem::take(&mut self.scheduled).into_iter().partition(|s| s.at_ms <= now);
        self.scheduled = later;
        for s in due {
            let _ = self.fail(&s.target);
        }
    }

    /// Schedules a failure `after_ms` from now; returns when it is due.
    pub fn schedule_fail(&mut self, target: FailTarget, after_ms: u64) -> u64 {
        let at_ms = self.now_ms.saturating_add(after_ms);
        self.scheduled.push(ScheduledFailure { at_ms, target });
        at_ms
    }

    /// After any change: every group launches or terminates to its desired size, and the
    /// capacity timeline notes what changed.
    fn settle(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            self.reconcile(&name);
        }
        self.record_capacity();
    }

    fn reconcile(&mut self, name: &str) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let live = group.instances.iter().filter(|i| i.is_live()).count();
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
        let Some(group) = self.groups.get_mut(name) else {
            return false;
        };
        let live: Vec<&Instance> = group.instances.iter().filter(|i| i.is_live()).map(|i| &i.instance).collect();
        let Some(subnet) = group
            .settings
            .subnets
            .iter()
            .enumerate()
            .min_by_key(|(index, subnet)| {
                let zone = zone_of(subnet);
                let in_zone = live.iter().filter(|i| i.zone == zone).count();
                let in_subnet = live.iter().filter(|i| &i.subnet == *subnet).count();
                (in_zone, in_subnet, *index)
            })
            .map(|(_, subnet)| subnet.clone())
        else {
            return false;
        };
        group.instances.push(SimInstance {
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
            crash_after_ms,
            failed_at_ms: None,
            unhealthy_at_ms: None,
            gone_at_ms: None,
        });
        true
    }

    /// `i-` and 17 hex digits, as EC2's; the leading digit is 0 as in most real ids.
    fn new_instance_id(&mut self) -> String {
        loop {
            let id = format!("i-{:017x}", self.rng.next_u64());
            if self.find_instance(&id).is_none() {
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
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        let zones: Vec<&str> =
            group.instances.iter().filter(|i| i.is_live()).map(|i| i.instance.zone.as_str()).collect();
        let victim = group
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_live())
            .min_by_key(|(_, i)| {
                let in_zone = zones.iter().filter(|z| **z == i.instance.zone).count();
                (std::cmp::Reverse(in_zone), i.instance.zone.clone(), i.instance.launched_at_ms, i.instance.id.clone())
            })
            .map(|(index, _)| index);
        if let Some(index) = victim {
            group.instances[index].terminate(now, &self.config);
        }
    }

    /// Appends a point for every node group whose capacity changed since its last point; a
    /// node group whose last group is gone gets a final point of zeros.
    fn record_capacity(&mut self) {
        type Key = (String, String);
        let mut current: BTreeMap<Key, [u32; 3]> = BTreeMap::new();
        for group in self.groups.values() {
            let key = (group.ownership.cluster.clone(), group.ownership.node_group.clone());
            let counts = current.entry(key).or_default();
            for i in &group.instances {
                let i = &i.instance;
                counts[0] += u32::from(i.is_in_service());
                counts[1] += u32::from(i.state == InstanceState::Running);
                counts[2] += u32::from(i.is_live());
            }
        }
        let previous: BTreeMap<Key, [u32; 3]> = self
            .capacity
            .iter()
            .map(|p| ((p.cluster.clone(), p.node_group.clone()), [p.healthy, p.running, p.total]))
            .collect();
        let point = |(cluster, node_group): &Key, [healthy, running, total]: [u32; 3]| CapacityPoint {
            t_ms: self.now_ms,
            cluster: cluster.clone(),
            node_group: node_group.clone(),
            healthy,
            running,
            total,
        };
        let keys: BTreeSet<&Key> = current.keys().chain(previous.keys()).collect();
        let mut changed = Vec::new();
        for key in keys {
            let now = current.get(key).copied().unwrap_or_default();
            if previous.get(key).copied().unwrap_or_default() != now {
                changed.push(point(key, now));
            }
        }
        let latest: Vec<CapacityPoint> = current.iter().map(|(k, c)| point(k, *c)).collect();
        self.capacity = latest;
        self.timeline.extend(changed);
        if self.timeline.len() > TIMELINE_LIMIT {
            let excess = self.timeline.len() - TIMELINE_LIMIT;
            self.timeline.drain(..excess);
        }
    }

    fn find_instance(&self, id: &str) -> Option<(&str, &SimInstance)> {
        self.groups.iter().find_map(|(name, g)| g.instances.iter().find(|i| i.id() == id).map(|i| (name.as_str(), i)))
    }

    fn observed(name: &str, group: &Group) -> ObservedGroup {
        ObservedGroup {
            name: name.to_string(),
            ownership: group.ownership.clone(),
            spec: group.spec.clone(),
            spec_partial: false,
            settings: group.settings.clone(),
            instances: group.instances.iter().map(|i| i.instance.clone()).collect(),
            created_at_ms: group.created_at_ms,
        }
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

    pub fn create_group(&mut self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
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
                return Ok(World::observed(&req.name, existing));
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
        self.groups.insert(
            req.name.clone(),
            Group {
                ownership: req.ownership.clone(),
                spec: req.spec.clone(),
                settings: req.settings.clone(),
                created_at_ms: self.now_ms,
                instances: Vec::new(),
            },
        );
        self.settle();
        self.groups.get(&req.name).map(|g| World::observed(&req.name, g)).ok_or_else(|| no_group(&req.name))
    }

    pub fn update_group(&mut self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        let group = self.groups.get_mut(name).ok_or_else(|| no_group(name))?;
        validate_settings(settings, &group.ownership).map_err(|m| ProviderError::invalid_input(m).with_group(name))?;
        group.settings = settings.clone();
        self.settle();
        Ok(())
    }

    pub fn terminate_instances(&mut self, name: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        let group = self.groups.get(name).ok_or_else(|| no_group(name))?;
        let mut targets = BTreeSet::new();
        for id in ids {
            match self.find_instance(id) {
                Some((owner, _)) if owner != name => {
                    return Err(ProviderError::invalid_input(format!("instance {id} belongs to group {owner}"))
                        .with_group(name));
                }
                // Only live instances are terminated (and counted for the decrement): a retry
                // of the same request must not lower the desired capacity twice.
                Some((_, instance)) if instance.is_live() => {
                    targets.insert(id.as_str());
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
        for instance in &mut group.instances {
            if targets.contains(instance.id()) {
                instance.terminate(now, &self.config);
            }
        }
        self.settle();
        Ok(())
    }

    pub fn delete_group(&mut self, name: &str) {
        if self.groups.remove(name).is_some() {
            self.settle();
        }
    }

    // ---- failure injection and read-outs -----------------------------------------------------

    pub fn fail(&mut self, target: &FailTarget) -> Result<Vec<String>, SimError> {
        let now = self.now_ms;
        let crashed = match target {
            FailTarget::Instance(id) => {
                let instance = self
                    .instances_mut()
                    .find(|i| i.id() == id && i.is_live())
                    .ok_or_else(|| SimError::NoSuchInstance(id.clone()))?;
                instance.crash(now);
                vec![id.clone()]
            }
            FailTarget::NodeGroup { cluster, node_group, count } => {
                let matches = |g: &Group| {
                    g.ownership.node_group == *node_group && cluster.as_ref().is_none_or(|c| g.ownership.cluster == *c)
                };
                let mut candidates: Vec<String> = self
                    .groups
                    .values()
                    .filter(|g| matches(g))
                    .flat_map(|g| &g.instances)
                    .filter(|i| i.instance.state == InstanceState::Running && i.failed_at_ms.is_none())
                    .map(|i| i.id().to_string())
                    .collect();
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
                for instance in self.instances_mut() {
                    if candidates.iter().any(|id| id == instance.id()) {
                        instance.crash(now);
                    }
                }
                candidates
            }
            FailTarget::Zone(zone) => {
                // A zone no group uses is a typo, not an outage worth simulating.
                let known: std::collections::BTreeSet<String> =
                    self.groups.values().flat_map(|g| g.settings.subnets.iter().map(|s| zone_of(s))).collect();
                if !known.contains(zone) {
                    let known = if known.is_empty() {
                        "none (no group exists)".to_string()
                    } else {
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    };
                    return Err(SimError::UnknownZone { zone: zone.clone(), known });
                }
                self.zones_down.insert(zone.clone());
                let mut crashed = Vec::new();
                for instance in self.instances_mut() {
                    let i = &instance.instance;
                    if i.zone == *zone && i.state == InstanceState::Running && instance.failed_at_ms.is_none() {
                        crashed.push(i.id.clone());
                        instance.crash(now);
                    }
                }
                crashed
            }
        };
        self.settle();
        Ok(crashed)
    }

    /// Brings a zone back: instances stuck pending there boot from now. Returns whether the
    /// zone was down.
    pub fn restore_zone(&mut self, zone: &str) -> bool {
        if !self.zones_down.remove(zone) {
            return false;
        }
        let boot_at = self.now_ms.saturating_add(self.config.boot_time_ms.max(1));
        for instance in self.instances_mut() {
            if instance.instance.zone == zone
                && instance.instance.state == InstanceState::Pending
                && instance.boot_at_ms.is_none()
            {
                instance.boot_at_ms = Some(boot_at);
            }
        }
        self.settle();
        true
    }

    fn instances_mut(&mut self) -> impl Iterator<Item = &mut SimInstance> {
        self.groups.values_mut().flat_map(|g| g.instances.iter_mut())
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
                    instances: g
                        .instances
                        .iter()
                        .map(|i| InstanceStatus {
                            id: i.instance.id.clone(),
                            zone: i.instance.zone.clone(),
                            image: i.instance.image.clone(),
                            instance_type: i.instance.instance_type.clone(),
                            state: i.instance.state,
                            healthy: i.instance.healthy,
                            launched_at_ms: i.instance.launched_at_ms,
                        })
                        .collect(),
                };
                (&g.created_at_ms, status)
            })
            .collect();
        groups.sort_by(|(at_a, a), (at_b, b)| {
            (&a.cluster, &a.node_group, at_a, &a.name).cmp(&(&b.cluster, &b.node_group, at_b, &b.name))
        });
        Status { now_ms: self.now_ms, groups: groups.into_iter().map(|(_, g)| g).collect() }
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
        world.timeline.push(CapacityPoint {
            t_ms: 4_000,
            cluster: "c".into(),
            node_group: "n".into(),
            healthy: 1,
            running: 1,
            total: 1,
        });
        world.configure(&SimConfig::default(), ClockMode::Real, 1_000_000);
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
        world.timeline.push(CapacityPoint {
            t_ms: u64::MAX - 1,
            cluster: "c".into(),
            node_group: "n".into(),
            healthy: 0,
            running: 0,
            total: 0,
        });
        world.configure(&SimConfig::default(), ClockMode::Real, 1_000_000);
        assert_eq!(world.now_ms, 1_000_000);
        assert_eq!(world.timeline[0].t_ms, u64::MAX);
    }
}
