//! How the simulated cloud behaves (`SimConfig`) and which time it runs on (`ClockMode`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SimError;

/// The environment variable that picks the clock of the simulated cloud: `virtual` or `real`.
pub const CLOCK_ENV: &str = "DRYDOCK_SIM_CLOCK";

/// The behaviour of the simulated cloud. Stored in the world file, so that every process using
/// the world (including `drydock sim status`, which has no configuration) evolves it alike; the
/// provider that last operated on the world decides it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct SimConfig {
    /// From launch to running (and healthy, unless something is wrong).
    pub boot_time_ms: u64,
    /// How long a group takes to notice a failed instance and replace it.
    pub detection_delay_ms: u64,
    /// From termination to gone; the group replaces the instance at the start of it.
    pub shutdown_time_ms: u64,
    /// The probability that a newly launched instance crashes some time (uniform within
    /// [`CRASH_WINDOW_MS`](crate::CRASH_WINDOW_MS)) after it becomes healthy.
    pub failure_rate: f64,
    /// Instances of these images boot and run but never become healthy; EC2-style groups do not
    /// replace them because EC2 status checks pass.
    pub bad_images: Vec<String>,
    /// Seeds the random numbers of a new world (instance ids, crashes); a world keeps its own
    /// random state afterwards, so changing the seed does not change an existing world.
    pub seed: u64,
    /// From an instance becoming running (and healthy) to its Node registering.
    pub join_delay_ms: u64,
    /// How many pods that are not DaemonSet pods one node runs (the scheduler's capacity).
    pub pods_per_node: u32,
    /// From a pod bound to a Ready node to the pod Running and Ready.
    pub pod_start_ms: u64,
    /// What runs in the clusters: each workload's controller keeps its pods (see the crate
    /// docs). A change of workloads reconciles at once.
    pub workloads: Vec<Workload>,
    /// Each control-plane instance runs a real etcd member (a process on 127.0.0.1, joined as
    /// kubeadm joins one), and its Node is Ready once that member has started and been
    /// promoted (see the crate docs). Needs the etcd binary: `$DRYDOCK_ETCD`, `etcd` on PATH,
    /// or `/usr/bin/etcd`.
    pub etcd: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            boot_time_ms: 2_000,
            detection_delay_ms: 10_000,
            shutdown_time_ms: 1_000,
            failure_rate: 0.0,
            bad_images: Vec::new(),
            seed: 0,
            join_delay_ms: 3_000,
            pods_per_node: 110,
            pod_start_ms: 2_000,
            workloads: Vec::new(),
            etcd: false,
        }
    }
}

/// Something that runs pods in the simulated clusters, with its controller's behaviour and
/// (when `min_available` or `max_unavailable` is set) a PodDisruptionBudget named after it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct Workload {
    /// Its name; its pods are labelled `app: NAME`. A workload without a name is ignored, and
    /// so is a second one of the same namespace and name.
    pub name: String,
    pub namespace: String,
    /// The cluster (an ownership cluster name) it runs in; `None`: every cluster of the world
    /// (every cluster in which a Node has registered).
    pub cluster: Option<String>,
    pub kind: WorkloadKind,
    /// How many pods (ignored for a DaemonSet, which runs one on every node).
    pub replicas: u32,
    /// The budget's `spec.minAvailable`: an integer (`"5"`) or a percentage (`"80%"`).
    pub min_available: Option<String>,
    /// The budget's `spec.maxUnavailable` (used only when `min_available` is not set, as the
    /// API server allows only one of them).
    pub max_unavailable: Option<String>,
    /// The budget's selector (`matchLabels`); empty: `app: NAME`, this workload's pods. A
    /// budget may select another workload's pods, so that a pod has two budgets.
    pub pdb_selector: BTreeMap<String, String>,
    /// Its pods mount an `emptyDir` volume.
    pub empty_dir: bool,
    /// `terminationGracePeriodSeconds`.
    pub grace_period_s: u64,
    /// How long its pods take to exit once asked to stop; a pod is gone after the shorter of
    /// this and its grace period (the request's, when the delete or eviction gives one).
    pub stop_ms: u64,
    /// Its pods never exit once asked to stop: they stay Terminating until their node's
    /// instance is gone (a stuck pod), unless deleted with a grace period of 0.
    pub never_terminates: bool,
    /// Its pods carry the annotation `drydock.dev/do-not-disrupt: "true"`.
    pub do_not_disrupt: bool,
    /// `spec.nodeSelector`: the node labels its pods need.
    pub node_selector: BTreeMap<String, String>,
}

impl Default for Workload {
    fn default() -> Workload {
        Workload {
            name: String::new(),
            namespace: "default".to_string(),
            cluster: None,
            kind: WorkloadKind::Deployment,
            replicas: 1,
            min_available: None,
            max_unavailable: None,
            pdb_selector: BTreeMap::new(),
            empty_dir: false,
            grace_period_s: 30,
            stop_ms: 1_000,
            never_terminates: false,
            do_not_disrupt: false,
            node_selector: BTreeMap::new(),
        }
    }
}

impl Workload {
    /// Whether it has a PodDisruptionBudget.
    pub fn has_budget(&self) -> bool {
        self.min_available.is_some() || self.max_unavailable.is_some()
    }
}

/// Which controller keeps a workload's pods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// `replicas` pods named `NAME-HASH-XXXXX`, owned by the ReplicaSet `NAME-HASH`; a pod
    /// that terminates or is killed is replaced at once.
    #[default]
    Deployment,
    /// `replicas` pods named `NAME-0`, `NAME-1`…; an ordinal is made again once its old pod
    /// is gone.
    #[serde(alias = "stateful_set")]
    StatefulSet,
    /// One pod on every registered Node of the cluster whose instance is alive (pending or
    /// running) and which matches the node selector; tolerates every taint.
    #[serde(alias = "daemon_set")]
    DaemonSet,
    /// `replicas` bare pods `NAME-0`, `NAME-1`… without a controller: made once, never
    /// replaced.
    Pod,
}

impl WorkloadKind {
    /// The kind of its pods' controller owner reference (`None` for bare pods).
    pub fn owner_kind(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Deployment => Some("ReplicaSet"),
            WorkloadKind::StatefulSet => Some("StatefulSet"),
            WorkloadKind::DaemonSet => Some("DaemonSet"),
            WorkloadKind::Pod => None,
        }
    }
}

/// Which time the world runs on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    /// Wall time in milliseconds since the UNIX epoch; sleeping is tokio's.
    #[default]
    Real,
    /// The world file stores the time, and only sleeping on the provider's clock moves it
    /// (instantly), so every process using the world sees the same time and a rollout of
    /// minutes runs in milliseconds.
    Virtual,
}

impl ClockMode {
    /// Reads [`CLOCK_ENV`] (`DRYDOCK_SIM_CLOCK`): `virtual` or `real`, real when unset or empty.
    /// Any other value is an error rather than a silent fallback, so a typo does not turn a
    /// test run into a wall-clock wait.
    pub fn from_env() -> Result<ClockMode, SimError> {
        match std::env::var(CLOCK_ENV) {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(ClockMode::Real),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(SimError::InvalidClockMode(value.to_string_lossy().into_owned()))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        }
    }
}

impl FromStr for ClockMode {
    type Err = SimError;

    fn from_str(s: &str) -> Result<ClockMode, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "real" => Ok(ClockMode::Real),
            "virtual" => Ok(ClockMode::Virtual),
            _ => Err(SimError::InvalidClockMode(s.to_string())),
        }
    }
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_mode_parses_virtual_and_real_and_rejects_the_rest() {
        assert_eq!("virtual".parse::<ClockMode>().unwrap(), ClockMode::Virtual);
        assert_eq!(" Virtual ".parse::<ClockMode>().unwrap(), ClockMode::Virtual);
        assert_eq!("real".parse::<ClockMode>().unwrap(), ClockMode::Real);
        assert_eq!("".parse::<ClockMode>().unwrap(), ClockMode::Real);
        let err = "virtaul".parse::<ClockMode>().unwrap_err();
        assert!(matches!(err, SimError::InvalidClockMode(ref v) if v == "virtaul"));
        assert_eq!(err.to_string(), "invalid DRYDOCK_SIM_CLOCK value \"virtaul\": expected virtual or real");
    }

    #[test]
    fn config_reads_with_missing_fields_defaulted() {
        let config: SimConfig = serde_json::from_str(r#"{"seed": 7}"#).unwrap();
        assert_eq!(config, SimConfig { seed: 7, ..SimConfig::default() });
    }

    #[test]
    fn workloads_read_with_defaults_and_kinds_in_lowercase() {
        let config: SimConfig = serde_json::from_str(
            r#"{"workloads": [{"name": "web", "replicas": 3, "min_available": "2"},
                {"name": "db", "kind": "statefulset"}, {"name": "agent", "kind": "daemonset"},
                {"name": "job", "kind": "pod", "namespace": "batch"}]}"#,
        )
        .unwrap();
        let w = &config.workloads;
        assert_eq!(
            w[0],
            Workload { name: "web".into(), replicas: 3, min_available: Some("2".into()), ..Workload::default() }
        );
        assert!(w[0].has_budget());
        assert_eq!((w[0].namespace.as_str(), w[0].grace_period_s, w[0].stop_ms), ("default", 30, 1_000));
        let kinds: Vec<WorkloadKind> = w.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [WorkloadKind::Deployment, WorkloadKind::StatefulSet, WorkloadKind::DaemonSet, WorkloadKind::Pod]
        );
        assert_eq!(serde_json::to_value(WorkloadKind::StatefulSet).unwrap(), "statefulset");
        assert_eq!(w[3].namespace, "batch");
        assert_eq!((config.join_delay_ms, config.pods_per_node, config.pod_start_ms), (3_000, 110, 2_000));
    }
}
