//! From k8s-openapi's objects to the trait's types, and from the trait's requests to the JSON
//! bodies the API server takes.

use std::collections::BTreeMap;

use drydock_provider::kube::{
    ConditionStatus, LabelSelector, NodeInfo, NodePatch, Owner, PdbInfo, PodInfo, PodRef, Requirement, Taint,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Map, Value};

/// The node conditions that make a node unhealthy when True.
const PRESSURE_CONDITIONS: &[&str] = &["MemoryPressure", "DiskPressure", "PIDPressure"];

/// Milliseconds since the UNIX epoch; times before it clamp to 0.
pub(crate) fn millis(time: &Time) -> u64 {
    u64::try_from(time.0.as_millisecond()).unwrap_or(0)
}

fn condition_status(status: &str) -> ConditionStatus {
    match status {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

fn labels_and_annotations(meta: &mut ObjectMeta) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (meta.labels.take().unwrap_or_default(), meta.annotations.take().unwrap_or_default())
}

pub(crate) fn node_info(node: Node) -> NodeInfo {
    let mut meta = node.metadata;
    let (labels, annotations) = labels_and_annotations(&mut meta);
    let spec = node.spec.unwrap_or_default();
    let conditions = node.status.and_then(|s| s.conditions).unwrap_or_default();
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (condition_status(&c.status), c.last_transition_time.as_ref().map(millis).unwrap_or(0)));
    let pressure = conditions
        .iter()
        .filter(|c| c.status == "True" && PRESSURE_CONDITIONS.contains(&c.type_.as_str()))
        .map(|c| c.type_.clone())
        .collect();
    let taints = spec
        .taints
        .unwrap_or_default()
        .into_iter()
        // The API omits an empty value: "" and absent are the same taint.
        .map(|t| Taint { key: t.key, value: t.value.filter(|v| !v.is_empty()), effect: t.effect })
        .collect();
    NodeInfo {
        name: meta.name.unwrap_or_default(),
        uid: meta.uid.unwrap_or_default(),
        provider_id: spec.provider_id,
        created_at_ms: meta.creation_timestamp.as_ref().map(millis).unwrap_or(0),
        ready,
        pressure,
        unschedulable: spec.unschedulable.unwrap_or(false),
        labels,
        annotations,
        taints,
        deleting: meta.deletion_timestamp.is_some(),
    }
}

pub(crate) fn pod_info(pod: Pod) -> PodInfo {
    let mut meta = pod.metadata;
    let (labels, annotations) = labels_and_annotations(&mut meta);
    let spec = pod.spec.unwrap_or_default();
    let status = pod.status.unwrap_or_default();
    let owner = meta
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.controller == Some(true))
        .map(|r| Owner { kind: r.kind, name: r.name });
    let ready = status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
    PodInfo {
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        uid: meta.uid.unwrap_or_default(),
        node: spec.node_name,
        owner,
        phase: status.phase.unwrap_or_else(|| "Pending".to_string()),
        ready,
        deleting: meta.deletion_timestamp.is_some(),
        labels,
        annotations,
        empty_dir: spec.volumes.unwrap_or_default().iter().any(|v| v.empty_dir.is_some()),
        grace_period_s: spec.termination_grace_period_seconds,
    }
}

fn int_or_string(value: IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s,
    }
}

pub(crate) fn pdb_info(pdb: PodDisruptionBudget) -> PdbInfo {
    let meta = pdb.metadata;
    let spec = pdb.spec.unwrap_or_default();
    let status = pdb.status.unwrap_or_default();
    let selector = spec.selector.map(|s| LabelSelector {
        match_labels: s.match_labels.unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(|r| Requirement { key: r.key, operator: r.operator, values: r.values.unwrap_or_default() })
            .collect(),
    });
    PdbInfo {
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        selector,
        min_available: spec.min_available.map(int_or_string),
        max_unavailable: spec.max_unavailable.map(int_or_string),
        current_healthy: status.current_healthy,
        desired_healthy: status.desired_healthy,
        disruptions_allowed: status.disruptions_allowed,
        expected_pods: status.expected_pods,
    }
}

/// A JSON merge patch (RFC 7386) for a node: labels and annotations set or removed (`null`),
/// `spec.unschedulable`, and the whole taint list.
pub(crate) fn node_merge_patch(patch: &NodePatch) -> Value {
    fn strings(map: &BTreeMap<String, Option<String>>) -> Value {
        Value::Object(map.iter().map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String))).collect())
    }
    let mut metadata = Map::new();
    if !patch.labels.is_empty() {
        metadata.insert("labels".into(), strings(&patch.labels));
    }
    if !patch.annotations.is_empty() {
        metadata.insert("annotations".into(), strings(&patch.annotations));
    }
    let mut spec = Map::new();
    if let Some(unschedulable) = patch.unschedulable {
        spec.insert("unschedulable".into(), Value::Bool(unschedulable));
    }
    if let Some(taints) = &patch.taints {
        let taints = taints
            .iter()
            .map(|t| {
                let mut taint = Map::new();
                taint.insert("key".into(), Value::String(t.key.clone()));
                if let Some(value) = &t.value {
                    taint.insert("value".into(), Value::String(value.clone()));
                }
                taint.insert("effect".into(), Value::String(t.effect.clone()));
                Value::Object(taint)
            })
            .collect();
        spec.insert("taints".into(), Value::Array(taints));
    }
    let mut body = Map::new();
    if !metadata.is_empty() {
        body.insert("metadata".into(), Value::Object(metadata));
    }
    if !spec.is_empty() {
        body.insert("spec".into(), Value::Object(spec));
    }
    Value::Object(body)
}

/// The policy/v1 Eviction the API server takes, with the UID precondition and the grace period
/// under `deleteOptions` (kube 5's `Api::evict` sends `delete_options`, which the server
/// ignores).
pub(crate) fn eviction_body(pod: &PodRef, grace_period_s: Option<i64>) -> Value {
    let mut delete_options = json!({ "preconditions": { "uid": pod.uid } });
    if let Some(grace) = grace_period_s {
        delete_options["gracePeriodSeconds"] = json!(grace.max(0));
    }
    json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": pod.name, "namespace": pod.namespace },
        "deleteOptions": delete_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_clamp_to_zero() {
        let time = |s: &str| Time(s.parse().unwrap());
        assert_eq!(millis(&time("1969-12-31T23:59:59Z")), 0);
        assert_eq!(millis(&time("1970-01-01T00:00:01.5Z")), 1500);
        assert_eq!(millis(&time("2024-05-01T10:00:00Z")), 1_714_557_600_000);
    }

    #[test]
    fn an_eviction_names_the_pod_and_its_uid() {
        let pod = PodRef { namespace: "default".into(), name: "web-1".into(), uid: "u-1".into() };
        assert_eq!(
            eviction_body(&pod, Some(30)),
            json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": { "name": "web-1", "namespace": "default" },
                "deleteOptions": { "preconditions": { "uid": "u-1" }, "gracePeriodSeconds": 30 },
            })
        );
        assert_eq!(eviction_body(&pod, None)["deleteOptions"], json!({ "preconditions": { "uid": "u-1" } }));
    }

    #[test]
    fn an_empty_node_patch_is_an_empty_object() {
        assert_eq!(node_merge_patch(&NodePatch::default()), json!({}));
        let patch = NodePatch { unschedulable: Some(false), ..NodePatch::default() };
        assert_eq!(node_merge_patch(&patch), json!({ "spec": { "unschedulable": false } }));
    }
}
