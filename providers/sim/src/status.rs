//! What `drydock sim status` and the tests read out of the world: a small status snapshot and
//! the capacity timeline.

use drydock_provider::InstanceState;
use serde::{Deserialize, Serialize};

/// The world at one moment, small enough to print: live and shutting-down instances only
/// (terminated instances are dropped from the world once gone).
///
/// Serialises exactly as
/// `{"now_ms", "groups": [{"cluster", "node_group", "generation", "name", "min", "max",
/// "desired", "instances": [{"id", "zone", "image", "instance_type", "state", "healthy",
/// "launched_at_ms"}]}]}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub now_ms: u64,
    /// Sorted by cluster, node group, creation time and name, so that generations of one node
    /// group appear oldest first.
    pub groups: Vec<GroupStatus>,
}

/// One group in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub cluster: String,
    pub node_group: String,
    pub generation: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// In launch order.
    pub instances: Vec<InstanceStatus>,
}

/// One instance in a [`Status`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub id: String,
    pub zone: String,
    pub image: String,
    pub instance_type: String,
    /// `"pending"`, `"running"`, `"shutting-down"` or `"terminated"`.
    pub state: InstanceState,
    pub healthy: bool,
    pub launched_at_ms: u64,
}

/// The capacity of one node group (all generations of one cluster's node group, found by their
/// ownership tags) from `t_ms` on, recorded whenever it changes, so that a test can check that a
/// rollout never dropped below its floor or rose above its ceiling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapacityPoint {
    pub t_ms: u64,
    pub cluster: String,
    pub node_group: String,
    /// Running and healthy: serving.
    pub healthy: u32,
    /// Running, healthy or not.
    pub running: u32,
    /// Pending or running: what the groups count towards their desired capacity (instances
    /// shutting down are not counted).
    pub total: u32,
}
