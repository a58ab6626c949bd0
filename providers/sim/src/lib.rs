//! drydock's embedded simulated cloud: a deterministic stand-in for EC2 and Auto Scaling that
//! keeps its world in a JSON file shared by every process that uses it.
//!
//! # The world file
//!
//! The caller passes the path (drydock uses `<config dir>/.drydock/sim-world.json`). Several
//! processes may use one world at once (`drydock apply`, `drydock watch`, `drydock sim status`),
//! so every operation creates missing parent directories, takes an exclusive lock on the sibling
//! file `<world>.lock`, brings its copy of the world up to date with the file, advances it to
//! now, applies the operation, makes that durable and unlocks.
//!
//! The file holds a snapshot of the world followed by an append-only log of the operations made
//! since, each record with its length and a checksum (`store`'s docs give the format and why).
//! An operation appends one record (fsynced) rather than rewriting the world, and a process that
//! keeps the world in memory (a [`SimProvider`] does) reads only the records others appended
//! since it last looked, so an apply of N node groups costs O(N), not O(N × world). When the log
//! outgrows the snapshot the file is compacted: rewritten atomically (a temporary file beside
//! it, fsync, rename, directory fsync) as a snapshot alone. A process killed mid-append leaves a
//! torn last record, which readers ignore: the world reads as before that operation. A world
//! that does not check out or parse is an error ([`SimError::Corrupt`]), never a panic; delete
//! the file to start afresh. The file is created 0600: it holds user data.
//!
//! The snapshot is compact JSON holding a format version, the clock mode, the current time, the
//! [`SimConfig`] of the provider that last operated on it, the random state, the zones that are
//! down, every group with its instances, and the capacity timeline. Its layout beyond
//! [`status`] and [`timeline`] is this crate's business; worlds of version 1 (bare JSON) are
//! still read, and rewritten in the current format by their next change.
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

use store::Cache;
use world::{Failure, Op, Outcome};

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
    store::update(world_path.as_ref(), &mut Cache::default(), None, None, |w, _| w.status())
}

/// The capacity timeline, oldest point first.
pub fn timeline(world_path: impl AsRef<Path>) -> Result<Vec<CapacityPoint>, SimError> {
    store::update(world_path.as_ref(), &mut Cache::default(), None, None, |w, _| w.timeline())
}

/// Crashes instances: they turn unhealthy at once and their groups replace them after the
/// detection delay. Returns the ids of the instances crashed, in the order chosen. Failing
/// a node group with no running instance, or an instance that is not live, is an error; a
/// zone with no instance is not (it still goes down).
pub fn fail(world_path: impl AsRef<Path>, target: FailTarget) -> Result<Vec<String>, SimError> {
    match change(world_path.as_ref(), Op::Fail(target))? {
        Outcome::Crashed(ids) => Ok(ids),
        other => Err(unexpected(other)),
    }
}

/// Schedules a failure `after_ms` from now on the world's clock: it happens when the world
/// lives through that moment (on the virtual clock, when someone sleeps past it, such as an
/// apply waiting for nodes), so a test can fail an instance in the middle of a rollout. What it
/// crashes is chosen then, as [`fail`] would; a target with nothing to crash by then does
/// nothing. Returns the time it is due.
pub fn schedule_fail(world_path: impl AsRef<Path>, target: FailTarget, after_ms: u64) -> Result<u64, SimError> {
    match change(world_path.as_ref(), Op::ScheduleFail { target, after_ms })? {
        Outcome::Time(at) => Ok(at),
        other => Err(unexpected(other)),
    }
}

/// Moves a virtual world's clock forward by `ms`, as if someone slept that long on it (every
/// event due meanwhile happens). Returns the new time. A world on the real clock is refused:
/// its time is the wall clock's.
pub fn advance(world_path: impl AsRef<Path>, ms: u64) -> Result<u64, SimError> {
    match change(world_path.as_ref(), Op::Sleep { ms })? {
        Outcome::Time(now) => Ok(now),
        other => Err(unexpected(other)),
    }
}

/// Brings a zone back up: instances stuck pending there boot from now. Returns whether the
/// zone was down.
pub fn restore_zone(world_path: impl AsRef<Path>, zone: &str) -> Result<bool, SimError> {
    match change(world_path.as_ref(), Op::RestoreZone { zone: zone.to_string() })? {
        Outcome::Restored(was_down) => Ok(was_down),
        other => Err(unexpected(other)),
    }
}

/// Applies one op of `drydock sim` to the world (with the settings it has).
fn change(world_path: &Path, op: Op) -> Result<Outcome, SimError> {
    store::update(world_path, &mut Cache::default(), None, Some(op), |_, outcome| outcome)?.map_err(|f| match f {
        Failure::Sim(e) => e,
        // Only provider operations are refused with a provider's error.
        Failure::Provider(e) => SimError::Worker(e.to_string()),
    })
}

/// An op answered with another op's kind of outcome: a bug, reported rather than panicking.
fn unexpected(outcome: Outcome) -> SimError {
    SimError::Worker(format!("unexpected outcome {outcome:?}"))
}
