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
//! down, every group with its instances, the capacity timeline, the simulated clusters (their
//! Nodes, Pods and PodDisruptionBudgets, and the disruption audit), and what it knows of its real
//! etcd members. Its layout beyond
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
//! zone down) or kubelets ([`FailTarget::Kubelet`]); [`schedule_fail`] does the same at a later
//! moment of the world's time (an event like any other, fired after the instances' events of
//! that moment); [`restore_zone`] brings a zone back.
//!
//! # Kubernetes
//!
//! Each cluster of the world (an instance's cluster is its group's `ownership.cluster`) is also
//! a simulated Kubernetes cluster, evolved by the same event queue and settling as the
//! instances, through ops only (the API's writes are ops too), so every process replays it
//! alike. All of one moment happens in this order: instances' events, scheduled failures, then
//! Kubernetes' events (Nodes joining, pods starting, pods exiting; by time, then kind, then
//! name); then groups reconcile, then controllers, then the scheduler.
//!
//! ## Nodes
//!
//! - `join_delay_ms` after an instance becomes running and healthy, its kubelet registers its
//!   Node: named `ip-10-A-B-C.sim.internal` after a private address derived from the instance id
//!   (the first free one of the cluster from there on: unique and stable, and, as on EC2, not
//!   the instance id, so that a client must map Nodes to instances by `spec.providerID`, which
//!   is `sim:///ZONE/INSTANCE-ID`). Labels: `kubernetes.io/hostname`, `kubernetes.io/os=linux`,
//!   `kubernetes.io/arch=amd64`, `topology.kubernetes.io/zone`,
//!   `node.kubernetes.io/instance-type`, then the group's `spec.labels`; taints: the group's
//!   `spec.taints` (`key=value:Effect` or `key:Effect`; others skipped); `Ready=True` from then;
//!   a uid from the world's random numbers; `status.nodeInfo.kubeletVersion` the group's
//!   Kubernetes version. An instance of one of `bad_images` never registers.
//! - An instance that crashes (a zone failure crashes its instances) or whose kubelet fails
//!   ([`FailTarget::Kubelet`]: the instance keeps running and healthy, which is what the cloud's
//!   health checks miss): its Node goes `Ready=Unknown` at once (the pressure conditions too),
//!   its pods not ready, its pods not started never start, and its pods terminating stay
//!   Terminating until the instance is gone. Neither ever recovers; an instance that crashes or
//!   loses its kubelet before joining never joins.
//! - An instance terminated (its shutting down starts, or its group deleted): its Node goes
//!   `Ready=Unknown` and every pod bound to it is killed (removed at once; controllers replace
//!   them). The Node object itself stays, orphaned, until someone deletes it through the API.
//! - A Node deleted through the API takes the pods still bound to it (the pod garbage
//!   collector's rule); if its instance still runs a working kubelet, the Node registers again
//!   `join_delay_ms` later, as a real kubelet does.
//!
//! ## Workloads and pods
//!
//! [`SimConfig::workloads`] say what runs ([`Workload`]); a workload without a cluster runs in
//! every cluster in which a Node has registered. A change of workloads (a provider with another
//! configuration) reconciles at once. Each workload's controller keeps its pods:
//!
//! - Deployment: `replicas` pods that are not terminating, named `NAME-HASH-XXXXX` (`HASH`: 10
//!   hex digits of the namespace and name, also the `pod-template-hash` label; `XXXXX` from the
//!   world's random numbers), owned by the ReplicaSet `NAME-HASH`; a pod that starts
//!   terminating or is killed is replaced at once; scaling in stops unscheduled, then pending,
//!   then unready, then the newest pods.
//! - StatefulSet: `NAME-0` … `NAME-(replicas-1)`, owned by the StatefulSet `NAME`; an ordinal is
//!   made again once its old pod is gone (not while it terminates: the name is taken, as in
//!   Kubernetes).
//! - DaemonSet: `NAME-XXXXX` on every registered Node whose instance is alive (pending or
//!   running) and whose labels match the node selector, bound at creation (it tolerates every
//!   taint and cordons); a new one once the old one there is gone.
//! - Pod: `replicas` bare pods `NAME-0` …, made once and never replaced.
//!
//! Pods are labelled `app: NAME` (plus the controller's labels), carry a controller owner
//! reference (none for bare pods), the workload's `terminationGracePeriodSeconds`, an
//! `emptyDir` volume if asked, and `drydock.dev/do-not-disrupt: "true"` if asked. Uids come
//! from the world's random numbers.
//!
//! ## Scheduling
//!
//! At every settle where something changed (pods waiting, nodes joining or patched, room freed),
//! the pending pods of a cluster, oldest first, are bound each to a Node that is Ready, not
//! unschedulable, without a `NoSchedule`/`NoExecute` taint, matching the pod's node selector,
//! and holding fewer than `pods_per_node` pods that are not DaemonSet pods (terminating ones
//! count); preferring nodes without a `PreferNoSchedule` taint, then the fewest such pods, then
//! the name. A pod that fits nowhere stays Pending. A bound pod is Running and Ready
//! `pod_start_ms` later if its node is Ready then.
//!
//! ## Disruption budgets, deletion and eviction
//!
//! A workload with `min_available` or `max_unavailable` has a PodDisruptionBudget of its name
//! selecting `app: NAME` (or its `pdb_selector`). Its status is computed when asked, as the
//! disruption controller would, but synchronously, so that a burst of evictions can never take
//! a budget below its minimum: `expectedPods` sums, over the controllers of the pods it selects,
//! their replicas (a DaemonSet's or bare pods' own count); `desiredHealthy` is `minAvailable`
//! (a percentage of `expectedPods` rounded up) or `expectedPods - maxUnavailable` (a percentage
//! rounded up); `currentHealthy` counts the selected pods Ready and not terminating;
//! `disruptionsAllowed` is `max(0, currentHealthy - desiredHealthy)`, 0 when nothing is
//! expected.
//!
//! A pod deleted (DELETE, an eviction, or its controller) gets a `deletionTimestamp` (the
//! request time plus its grace period: the request's `gracePeriodSeconds`, else the pod's) and
//! is gone `min(stop_ms, grace)` later, unless it never terminates or its node is not Ready
//! (then it stays Terminating until its instance is gone). A grace period of 0, or a pod never
//! scheduled, is gone at once; a second deletion may only shorten the grace period. The
//! Eviction API follows the API server's `eviction.go`: an absent pod is 404, a uid
//! precondition that does not match 409; a pod that is Pending or terminating is deleted
//! without a budget check; no budget: deleted; more than one: 500; one: a pod that is not
//! Ready may go while `currentHealthy >= desiredHealthy`, otherwise it goes only if
//! `disruptionsAllowed > 0`, else 429 naming the budget and its numbers.
//!
//! ## The disruption audit
//!
//! The world keeps (bounded by [`VIOLATION_LIMIT`]) every [`Violation`]: a budget whose
//! `currentHealthy` fell, and is below `desiredHealthy`, because of an eviction, a deletion or
//! the termination of an instance; and every instance terminated while pods that are not
//! DaemonSet pods (terminating ones included) were still bound to its Node. Crashes, zone
//! outages and kubelet failures are nobody's choice and are not recorded, nor is terminating an
//! instance whose Node was not Ready (its pods were lost already). [`violations`] and
//! [`status`] read it.
//!
//! ## The API server
//!
//! [`SimProvider::kubernetes`] starts, once per provider and cluster, an HTTP/1.1 server on
//! `127.0.0.1` (a free port) serving that cluster's objects in Kubernetes' JSON shapes
//! (k8s-openapi's types), so that kube-rs talks to it as to a real cluster; [`serve`] serves
//! every cluster of a world and writes a [`kubeconfig`] (for `drydock sim serve`). Each server
//! wants `Authorization: Bearer TOKEN` (a random token per server; else 401), and each request
//! reads or changes the world under its lock as a provider operation does, so other processes'
//! changes are seen and the clock is the world's (timestamps are RFC 3339 at second precision
//! from the world's milliseconds since the UNIX epoch; virtual time 0 is
//! `1970-01-01T00:00:00Z`). Routes (anything else 404, a wrong method 405, all errors as the API
//! server's `Status` objects):
//!
//! - `GET /api/v1/nodes`, `GET|PATCH|DELETE /api/v1/nodes/NAME`: PATCH takes
//!   `application/merge-patch+json` or `application/strategic-merge-patch+json` (others 415),
//!   both applied as a merge patch to `metadata.labels` and `metadata.annotations` (null
//!   removes), `spec.unschedulable` and `spec.taints` (replaced whole; an unknown effect is 422);
//!   `metadata.resourceVersion`, if given, must match (else 409).
//! - `GET /api/v1/pods`, `GET /api/v1/namespaces/NS/pods` (the etcd members' mirror pods
//!   included: see below), with `labelSelector` (`k=v`, `k!=v`,
//!   `k in (…)`, `k notin (…)`, `k`, `!k`), `fieldSelector` (`spec.nodeName`, `metadata.name`,
//!   `metadata.namespace`, `status.phase`; `=`, `==`, `!=`), `limit` and `continue`;
//!   `GET|DELETE /api/v1/namespaces/NS/pods/NAME` (a `DeleteOptions` body or the
//!   `gracePeriodSeconds` query: 200 with the pod).
//! - `POST /api/v1/namespaces/NS/pods/NAME/eviction` (a policy/v1 `Eviction`: its
//!   `deleteOptions.preconditions.uid` and `deleteOptions.gracePeriodSeconds`; a
//!   `metadata.name` other than the URL's is 400): 201 with a `Success` status, or 404, 409,
//!   429, 500 as above.
//! - `GET /apis/policy/v1/poddisruptionbudgets`, `GET
//!   /apis/policy/v1/namespaces/NS/poddisruptionbudgets[/NAME]`, with their status.
//! - `GET /version`, `/healthz`, `/livez`, `/readyz` (without a token).
//!
//! Lists carry `kind`, `apiVersion` and `metadata.resourceVersion` (the world's count of
//! Kubernetes changes; an object's is that of its last change). Malformed requests are 400
//! (415 for an unknown patch type), a world that cannot be read 503; `watch` and `dryRun` are
//! refused (400) rather than ignored.
//!
//! ## Status
//!
//! [`status`] (`drydock sim status --json`) gives the groups and instances, every Node, every
//! Pod, the audit and the etcd members (read from etcd itself at that moment); [`Status`]
//! documents its exact JSON.
//!
//! # Real etcd members
//!
//! With [`SimConfig::etcd`], each control-plane instance (a group whose spec has
//! `role: ControlPlane`) of a cluster runs a real etcd member: a process on 127.0.0.1, joined
//! the way kubeadm joins one. The first control-plane Node of a cluster to register
//! initialises etcd (a single member, `--initial-cluster-state new`); later ones are added
//! through the existing members as learners with their new peer URL, started with
//! `--initial-cluster-state existing` and the `--initial-cluster` built from the member list
//! etcd returns, and promoted once in sync. A member is named after its Node; its data lives in
//! `<world>.etcd/<cluster>/<instance>/` (mode 0700). A control-plane Node registers NotReady
//! and turns Ready only once its member has started and been promoted, so whoever watches
//! Nodes never sees a control plane Ready without its member; a member that fails to join
//! leaves its Node NotReady with the error (and [`status`] shows it). The etcd binary is
//! `$DRYDOCK_ETCD`, else `etcd` on PATH, else `/usr/bin/etcd`; without one, joins fail saying
//! so and how to install it (Debian: `apt-get install etcd-server`).
//!
//! When the instance's machine dies (it crashes, is terminated, or its group is deleted) its
//! etcd is killed (SIGKILL); a kubelet failure does not stop it. The member stays in etcd's
//! member list, dead, until someone (drydock) removes it. A member whose process exits by
//! itself (etcd exits once removed from its cluster) stays exited; one whose host rebooted
//! starts again on its data.
//!
//! Processes are no part of the world's pure evolution: ops are replayed by every process, and
//! a replay never starts or stops anything. A reconciler (`members`) runs in the process that
//! made a change, under the world's lock, after its ops are durable: it compares the members the
//! world wants with the processes that run, starts, joins and stops them (joining blocks for a
//! second or so of real time, on any clock), and records what it did as ops of its own, which
//! give each member's name, id and URLs to the world (and to everyone replaying the log).
//! [`stop_all`] kills every member of a world (`drydock destroy`, tests' guards).
//!
//! The API server serves, for each control-plane Node with a member, its static pod's mirror
//! pod `kube-system/etcd-NODE` bound to that Node: labels `component=etcd`,
//! `tier=control-plane`; annotations `kubernetes.io/config.mirror` and
//! `kubeadm.kubernetes.io/etcd.advertise-client-urls` (the member's client URL); owned by the
//! Node; `Running`, and Ready while the member's process runs and its kubelet reports. Mirror
//! pods are read-only here (a delete or eviction of one is 404); drains leave them alone.

mod apiserver;
mod config;
mod error;
mod etcd;
mod kube;
mod members;
mod objects;
mod provider;
mod rng;
mod status;
mod store;
mod world;

use std::path::Path;

pub use apiserver::{kubeconfig, serve, SimEndpoint};
pub use config::{ClockMode, SimConfig, Workload, WorkloadKind, CLOCK_ENV};
pub use error::SimError;
pub use kube::VIOLATION_LIMIT;
pub use provider::SimProvider;
pub use status::{
    CapacityPoint, Cause, EtcdMemberStatus, GroupStatus, InstanceStatus, NodeStatus, PodStatus, Status, Violation,
};
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
    /// The kubelet of instances that keep running and healthy (what the cloud's health checks
    /// miss): their Node goes `Ready=Unknown` and its pods not ready, until the instance is
    /// gone; an instance whose Node has not registered yet never registers. `instance`: that
    /// one live instance; otherwise `count` running instances whose kubelet works, of the node
    /// group and cluster given (any when not), chosen by the world's random numbers.
    Kubelet {
        #[serde(default)]
        instance: Option<String>,
        #[serde(default)]
        cluster: Option<String>,
        #[serde(default)]
        node_group: Option<String>,
        #[serde(default)]
        count: u32,
    },
}

/// The world now, for `drydock sim status`. In a world with real etcd members, their entries
/// ([`Status::etcd`]) are read from etcd's own member list now (outside the world's lock).
pub fn status(world_path: impl AsRef<Path>) -> Result<Status, SimError> {
    let (mut status, records) =
        store::update(world_path.as_ref(), &mut Cache::default(), None, None, |w, _| (w.status(), w.etcd.clone()))?;
    if !records.is_empty() {
        status.etcd = members::statuses(&records);
    }
    Ok(status)
}

/// Kills every etcd member process of the world at `world_path` (SIGKILL), as `drydock
/// destroy` and tests' guards do; returns how many ran. The world's records stay: a later
/// operation records those members stopped, and nothing starts them again (a joining member
/// then finds no member to join through). A world without members is no error.
pub fn stop_all(world_path: impl AsRef<Path>) -> Result<usize, SimError> {
    members::stop_all(world_path.as_ref())
}

/// The capacity timeline, oldest point first.
pub fn timeline(world_path: impl AsRef<Path>) -> Result<Vec<CapacityPoint>, SimError> {
    store::update(world_path.as_ref(), &mut Cache::default(), None, None, |w, _| w.timeline())
}

/// The disruption audit, oldest first: what [`Status::violations`] holds.
pub fn violations(world_path: impl AsRef<Path>) -> Result<Vec<Violation>, SimError> {
    store::update(world_path.as_ref(), &mut Cache::default(), None, None, |w, _| w.kube_status().2)
}

/// The clusters of the world (its groups' ownership clusters and the clusters its workloads
/// name), sorted: what [`serve`] serves.
pub fn clusters(world_path: impl AsRef<Path>) -> Result<Vec<String>, SimError> {
    store::peek(world_path.as_ref(), &mut Cache::default(), |w| w.map(|w| w.cluster_names()).unwrap_or_default())
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
        Failure::Kube(e) => SimError::Worker(e.message),
    })
}

/// An op answered with another op's kind of outcome: a bug, reported rather than panicking.
fn unexpected(outcome: Outcome) -> SimError {
    SimError::Worker(format!("unexpected outcome {outcome:?}"))
}
