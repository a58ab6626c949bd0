//! The `Provider` trait of drydock and the types that cross it, in the domain of node groups.
//!
//! drydock manages *node groups*: the immutable machines under a Kubernetes cluster. A node
//! group is realised as one autoscaling group per *generation*; a change to anything in
//! [`GenerationSpec`] (image, instance types, user data, …) makes a new generation, i.e. a new
//! group that replaces the old one by a rollout, while [`GroupSettings`] (sizes, subnets, tags,
//! health checks) are changed in place. A provider is the one place that knows a cloud; the
//! planner and the executor only speak the types of this crate.
//!
//! # The contract
//!
//! Every provider promises the following, and the executor relies on it:
//!
//! - **Idempotent and retry-safe.** Any operation may be sent again after any failure,
//!   including a timeout after which the cloud did the work anyway. Sending it again must
//!   converge on the same result rather than doubling it: [`Provider::create_group`] looks before
//!   it creates and returns the group that already exists, [`Provider::delete_group`] of an
//!   absent group succeeds, [`Provider::terminate_instances`] ignores instances already gone
//!   and never decrements the desired capacity twice for the same instance.
//! - **Deterministic names.** The caller (the planner) chooses every group's name, derived
//!   from what it describes, so a retry or a second run addresses the same object instead of
//!   creating a twin. A provider never invents names for groups.
//! - **Ownership tags.** Every object carries the [`Ownership`] tags (`drydock:lineage`,
//!   `drydock:cluster`, `drydock:node-group`, `drydock:generation`). [`Provider::observe`] finds
//!   objects by these tags, not by a state file, so what a crashed run created is found and
//!   adopted or cleaned up by the next one.
//! - **Observation is the truth.** [`Provider::observe`] returns everything of one lineage in as
//!   few calls as the cloud allows, with groups sorted by name, so that plans are stable.
//! - **Typed errors.** Failures are [`ProviderError`]s whose [`ErrorKind`] tells the executor what
//!   to do; only [`ProviderError::is_retryable`] errors are worth sending again unchanged.
//! - **One clock.** A provider's world runs on [`Provider::clock`]; the executor measures and
//!   waits on that clock only, so a simulated cloud can run a rollout of minutes in
//!   milliseconds.

pub mod bootstrap;
mod clock;
mod error;
pub mod etcd;
pub mod kube;
mod types;

use std::sync::Arc;

pub use async_trait::async_trait;
pub use bootstrap::{Bootstrap, JoinSecrets};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorKind, ProviderError};
pub use etcd::Etcd;
pub use kube::Kubernetes;
pub use types::{
    is_provider_managed_tag, ApiStats, CapacityType, CreateGroup, GenerationSpec, GroupSettings, HealthCheck, Instance,
    InstanceState, Metadata, Observed, ObservedGroup, Ownership, Role, RootVolume, OWNERSHIP_TAGS, TAG_CLUSTER,
    TAG_GENERATION, TAG_LINEAGE, TAG_NODE_GROUP,
};

/// A cloud, seen as node groups. See the crate documentation for the contract every
/// implementation keeps.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for the kind of cloud ("sim", "aws", …), for messages and state files.
    fn kind(&self) -> &'static str;

    /// The clock this provider's world runs on; the executor waits on it.
    fn clock(&self) -> Arc<dyn Clock>;

    /// How long a new node typically takes from launch to healthy, for plan ETAs before a
    /// node group has measured boot times of its own.
    fn boot_estimate_ms(&self) -> u64;

    /// Everything carrying this lineage, in as few calls as the cloud allows.
    async fn observe(&self, lineage: &str) -> Result<Observed, ProviderError>;

    /// The groups of one node group of this lineage (by their ownership: cluster and node
    /// group names), as [`Provider::observe`] would show them. What an apply's step looks at:
    /// a provider that can look up one node group without the whole lineage makes a step's
    /// cost independent of the fleet's size. The default filters a whole observe.
    async fn observe_node_group(
        &self,
        lineage: &str,
        cluster: &str,
        node_group: &str,
    ) -> Result<Observed, ProviderError> {
        let mut observed = self.observe(lineage).await?;
        observed.groups.retain(|g| g.ownership.cluster == cluster && g.ownership.node_group == node_group);
        Ok(observed)
    }

    /// Every drydock group whose cluster ownership (`drydock:cluster`) is one of `clusters`,
    /// whatever its lineage: how a plan finds a node group that already runs under another
    /// state (a lost state file, one pushed over it) before it would make a second copy, and
    /// what `drydock import` adopts. Instances need only their ids and states.
    async fn observe_clusters(&self, clusters: &[String]) -> Result<Observed, ProviderError>;

    /// Creates the group, or returns the existing one if a group of that name with the same
    /// ownership exists (look before you create). A group of that name with other ownership is
    /// AlreadyExists.
    async fn create_group(&self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError>;

    /// Sets min/max/desired, subnets, tags and health settings. NotFound if absent;
    /// InvalidInput if the sizes are out of order (min <= desired <= max) or a tag contradicts
    /// the ownership.
    async fn update_group(&self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError>;

    /// Terminates the given instances of the group; with `decrement` the desired capacity drops
    /// by one per instance (no replacement), otherwise the group replaces them. Instances
    /// already gone are not an error, and are not counted for the decrement, so a retry does not
    /// lower the desired capacity twice. NotFound if the group is absent; InvalidInput for an
    /// instance of another group, or a decrement below the group's minimum.
    async fn terminate_instances(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError>;

    /// Makes the instances the group launches from now on join with `join` (kubeadm's token,
    /// CA hashes and certificate key), for the same spec: a new version of the group's launch
    /// definition, not a new generation. Running instances are not touched. NotFound if the
    /// group is absent.
    async fn update_join(
        &self,
        name: &str,
        ownership: &Ownership,
        spec: &GenerationSpec,
        join: &JoinSecrets,
    ) -> Result<(), ProviderError>;

    /// Deletes the group and terminates its instances. Absent is not an error.
    async fn delete_group(&self, name: &str) -> Result<(), ProviderError>;

    /// The calls this provider has made to its cloud so far, per operation.
    fn stats(&self) -> ApiStats;
}
