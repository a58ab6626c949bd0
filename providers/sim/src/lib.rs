//! drydock's embedded simulated cloud: a deterministic stand-in for EC2 and Auto Scaling that
//! keeps its world in a JSON file shared by every process that uses it.
//!
//! # The world file
//!
//! The caller passes the path (drydock uses `<config dir>/.drydock/sim-world.json`). Several
//! processes may use one world at once (`drydock apply`, `drydock watch`, `drydock sim status`),
//! so every operation creates missing parent directories, takes an exclusive lock on the sibling
//! file `<world>.lock`, reads the world, advances it to now, applies the operation, writes the
//! world atomically (a temporary file beside it, fsync, rename, directory fsync) and unlocks. A
//! world that does not parse is an error ([`SimError::Corrupt`]), never a panic; delete the file
//! to start afresh.
//!
//! The file is compact JSON holding a format version, the clock mode, the current time, the
//! [`SimConfig`] of the provider that last operated on it, the random state, the zones that are
//! down, every group with its instances, and the capacity timeline. Its layout beyond
//! [`status`] and [`timeline`] is this crate's business.
//!
//! # Time
//!
//! A world runs on a [`ClockMode`]: `Real` follows the wall clock (never going back), `Virtual`
//! stores the time in the file and moves it only when someone sleeps on the provider's clock,
//! instantly, so every process sees the same time and a rollout of minutes runs in
//! milliseconds. A new virtual world starts at time 0. [`ClockMode::from_env`] reads
//! `DRYDOCK_SIM_CLOCK=virtual|real`. A virtual world later used on the real clock is moved
//! forward to the wall clock as a whole, as if no time had passed.
//!
//! # How the world evolves
//!
//! Deterministically, event by event in time order (all events of one moment: groups by name,
//! instances in launch order; then every group reconciles its size):
//!
//! - A launched instance is `pending` for `boot_time_ms`, then `running` and healthy, unless
//!   its image is one of `bad_images` (running, never healthy) or its zone is down (it stays
//!   pending until the zone is restored, then boots from then).
//! - With `failure_rate`, a launched instance is chosen (by the world's seeded random numbers)
//!   to crash at a uniform time within [`CRASH_WINDOW_MS`] after becoming healthy.
//! - A crashed instance is running and unhealthy; `detection_delay_ms` after the crash (and
//!   not within the group's grace period) the group terminates it and launches a replacement.
//!   Groups with EC2 health checks do not replace bad-image instances, whose status checks pass;
//!   groups with ELB health checks replace any instance unhealthy that long.
//! - A terminated instance is `shutting-down` for `shutdown_time_ms` (no longer counted
//!   towards the group's size, so its replacement launches at once) and is then dropped.
//! - A group with fewer live (pending or running) instances than desired launches more,
//!   each into the subnet whose zone has the fewest live instances of the group (then the
//!   subnet with the fewest, then the first listed), with the first instance type. A group with
//!   more terminates, each time from the zone with the most live instances (ties: the zone
//!   named first) the oldest instance: AWS's default termination policy, where "oldest launch
//!   configuration" is the oldest instance because a group has one.
//! - Zones: a subnet named `subnet-X` is in zone `zone-X`; any other subnet name is a zone of
//!   its own with the same name ([`zone_of`]).
//! - Instance ids are `i-` and 17 hex digits drawn from the world's random numbers.
//!
//! After every change the [`timeline`] records, for each (cluster, node group) whose numbers
//! changed, its healthy, running and total instances summed over all generations (found by the
//! ownership tags); it keeps the last [`TIMELINE_LIMIT`] points.
//!
//! # Failures
//!
//! [`fail`] crashes instances (one, some of a node group, or all of a zone, which also marks the
//! zone down); [`schedule_fail`] does the same at a later moment of the world's time (an event
//! like any other, fired after the instances' events of that moment); [`restore_zone`] brings
//! a zone back.

mod config;
mod error;
mod provider;
mod rng;
mod status;
mod store;
mod world;

use std::path::Path;

pub use config::{ClockMode, SimConfig, CLOCK_ENV};
pub use error::SimError;
pub use provider::SimProvider;
pub use status::{CapacityPoint, GroupStatus, InstanceStatus, Status};
pub use world::{zone_of, CRASH_WINDOW_MS, TIMELINE_LIMIT, WORLD_VERSION};

/// What [`fail`] crashes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailTarget {
    /// `count` running instances of the node group (in any generation, in the given cluster or
    /// in any), chosen by the world's random numbers; fewer if it has fewer.
    NodeGroup { cluster: Option<String>, node_group: String, count: u32 },
    /// One live instance.
    Instance(String),
    /// Every running instance in the zone; the zone is down until [`restore_zone`], so that
    /// instances launched there stay pending.
    Zone(String),
}

/// The world now, for `drydock sim status`.
pub fn status(world_path: impl AsRef<Path>) -> Result<Status, SimError> {
    store::update(world_path.as_ref(), None, |w| Ok(w.status()))
}

/// The capacity timeline, oldest point first.
pub fn timeline(world_path: impl AsRef<Path>) -> Result<Vec<CapacityPoint>, SimError> {
    store::update(world_path.as_ref(), None, |w| Ok(w.timeline.clone()))
}

/// Crashes instances: they turn unhealthy at once and their groups replace them after the
/// detection delay. Returns the ids of the instances crashed, in the order chosen. Failing
/// a node group with no running instance, or an instance that is not live, is an error; a
/// zone with no instance is not (it still goes down).
pub fn fail(world_path: impl AsRef<Path>, target: FailTarget) -> Result<Vec<String>, SimError> {
    store::update(world_path.as_ref(), None, |w| w.fail(&target))
}

/// Schedules a failure `after_ms` from now on the world's clock: it happens when the world
/// lives through that moment (on the virtual clock, when someone sleeps past it, such as an
/// apply waiting for nodes), so a test can fail an instance in the middle of a rollout. What it
/// crashes is chosen then, as [`fail`] would; a target with nothing to crash by then does
/// nothing. Returns the time it is due.
pub fn schedule_fail(world_path: impl AsRef<Path>, target: FailTarget, after_ms: u64) -> Result<u64, SimError> {
    store::update(world_path.as_ref(), None, |w| Ok(w.schedule_fail(target, after_ms)))
}

/// Moves a virtual world's clock forward by `ms`, as if someone slept that long on it (every
/// event due meanwhile happens). Returns the new time. A world on the real clock is refused:
/// its time is the wall clock's.
pub fn advance(world_path: impl AsRef<Path>, ms: u64) -> Result<u64, SimError> {
    store::update(world_path.as_ref(), None, |w| {
        if w.clock != ClockMode::Virtual {
            return Err(SimError::RealClock);
        }
        w.advance_to(w.now_ms.saturating_add(ms));
        Ok(w.now_ms)
    })
}

/// Brings a zone back up: instances stuck pending there boot from now. Returns whether the
/// zone was down.
pub fn restore_zone(world_path: impl AsRef<Path>, zone: &str) -> Result<bool, SimError> {
    store::update(world_path.as_ref(), None, |w| Ok(w.restore_zone(zone)))
}
