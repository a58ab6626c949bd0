//! The simulated cluster's objects in Kubernetes' own JSON shapes (k8s-openapi's types), the
//! API server's `Status` bodies, and its label and field selectors.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use drydock_provider::etcd::ETCD_CLIENT_URLS_ANNOTATION;
use drydock_provider::kube::MIRROR_ANNOTATION;

use crate::config::WorkloadKind;
use crate::etcd::{Mirror, MIRROR_NAMESPACE};
use crate::kube::{derived_uid, ApiError, BudgetStatus, Node, Pdb, Pod};

/// A world time (milliseconds since the UNIX epoch; virtual time 0 is 1970-01-01T00:00:00Z)
/// as an API timestamp, at second precision.
pub(crate) fn time(ms: u64) -> meta::Time {
    let seconds = i64::try_from(ms / 1_000).unwrap_or(i64::MAX);
    let ts = k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or(k8s_openapi::jiff::Timestamp::MAX);
    meta::Time(ts)
}

fn some_map(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then(|| map.clone())
}

pub(crate) fn node(n: &Node, now_ms: u64, pods_per_node: u32) -> core::Node {
    let ready = n.is_ready();
    // A kubelet that reports but is not Ready (a control plane waiting for its etcd member)
    // heartbeats like a Ready one, and has no pressure.
    let reporting = n.ready != drydock_provider::kube::ConditionStatus::Unknown;
    let status = match n.ready {
        drydock_provider::kube::ConditionStatus::True => "True",
        drydock_provider::kube::ConditionStatus::False => "False",
        drydock_provider::kube::ConditionStatus::Unknown => "Unknown",
    };
    // A Ready kubelet heartbeats now; one that went away last did when it went.
    let heartbeat = if reporting { now_ms.max(n.ready_since_ms) } else { n.ready_since_ms };
    let condition = |type_: &str, status: &str, reason: &str, message: &str| core::NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(time(heartbeat)),
        last_transition_time: Some(time(n.ready_since_ms.min(heartbeat).max(n.created_at_ms))),
    };
    let mut conditions = Vec::new();
    for (type_, ok_reason, ok_message) in [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ] {
        conditions.push(if reporting {
            condition(type_, "False", ok_reason, ok_message)
        } else {
            condition(type_, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        });
    }
    conditions.push(if ready {
        condition("Ready", status, "KubeletReady", "kubelet is posting ready status")
    } else if reporting {
        let why = n.not_ready.as_deref().unwrap_or("container runtime is not ready");
        condition("Ready", status, "KubeletNotReady", why)
    } else {
        condition("Ready", status, "NodeStatusUnknown", "Kubelet stopped posting node status.")
    });
    let mut addresses = Vec::new();
    if !n.ip.is_empty() {
        addresses.push(core::NodeAddress { type_: "InternalIP".to_string(), address: n.ip.clone() });
    }
    addresses.push(core::NodeAddress { type_: "Hostname".to_string(), address: n.name.clone() });
    addresses.push(core::NodeAddress { type_: "InternalDNS".to_string(), address: n.name.clone() });
    let capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity("2".to_string())),
        ("memory".to_string(), Quantity("8Gi".to_string())),
        ("pods".to_string(), Quantity(pods_per_node.to_string())),
    ]);
    let machine = derived_uid(&["machine", &n.uid]).replace('-', "");
    core::Node {
        metadata: meta::ObjectMeta {
            name: Some(n.name.clone()),
            uid: Some(n.uid.clone()),
            resource_version: Some(n.rv.to_string()),
            creation_timestamp: Some(time(n.created_at_ms)),
            labels: some_map(&n.labels),
            annotations: some_map(&n.annotations),
            ..Default::default()
        },
        spec: Some(core::NodeSpec {
            provider_id: n.provider_id(),
            unschedulable: n.unschedulable.then_some(true),
            taints: (!n.taints.is_empty()).then(|| {
                n.taints
                    .iter()
                    .map(|t| core::Taint {
                        key: t.key.clone(),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                        time_added: None,
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        status: Some(core::NodeStatus {
            conditions: Some(conditions),
            addresses: Some(addresses),
            allocatable: Some(capacity.clone()),
            capacity: Some(capacity),
            node_info: Some(core::NodeSystemInfo {
                architecture: "amd64".to_string(),
                boot_id: derived_uid(&["boot", &n.uid]),
                container_runtime_version: "containerd://1.7.27".to_string(),
                kernel_version: "6.1.0-sim".to_string(),
                kube_proxy_version: n.kubelet_version.clone(),
                kubelet_version: n.kubelet_version.clone(),
                machine_id: machine,
                operating_system: "linux".to_string(),
                os_image: "drydock simulated Linux".to_string(),
                system_uuid: derived_uid(&["system", &n.uid]),
                swap: None,
            }),
            ..Default::default()
        }),
    }
}

/// The API group/version of a pod's controller.
fn owner_api_version(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Pod => "v1",
        _ => "apps/v1",
    }
}

pub(crate) fn pod(p: &Pod, cluster: &str, host_ip: Option<&str>) -> core::Pod {
    let owner = match (p.kind.owner_kind(), &p.owner) {
        (Some(kind), Some(name)) => Some(vec![meta::OwnerReference {
            api_version: owner_api_version(p.kind).to_string(),
            kind: kind.to_string(),
            name: name.clone(),
            uid: derived_uid(&[cluster, &p.namespace, kind, name]),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        _ => None,
    };
    let scheduled = p.node.is_some();
    let mut conditions = vec![core::PodCondition {
        type_: "PodScheduled".to_string(),
        status: if scheduled { "True" } else { "False" }.to_string(),
        reason: (!scheduled).then(|| "Unschedulable".to_string()),
        message: (!scheduled)
            .then(|| "no node is available: none is Ready, schedulable, untainted, matching and with room".to_string()),
        last_transition_time: Some(time(p.bound_at_ms.unwrap_or(p.created_at_ms))),
        ..Default::default()
    }];
    if scheduled {
        let ready = if p.ready { "True" } else { "False" };
        for type_ in ["Initialized", "ContainersReady", "Ready"] {
            let status = if type_ == "Initialized" { "True" } else { ready };
            conditions.push(core::PodCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: (status == "False").then(|| "ContainersNotReady".to_string()),
                last_transition_time: Some(time(p.ready_since_ms)),
                ..Default::default()
            });
        }
    }
    let empty_dir = p.empty_dir.then(|| "scratch".to_string());
    core::Pod {
        metadata: meta::ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(p.namespace.clone()),
            uid: Some(p.uid.clone()),
            resource_version: Some(p.rv.to_string()),
            creation_timestamp: Some(time(p.created_at_ms)),
            generate_name: p.owner.as_ref().filter(|_| p.kind != WorkloadKind::StatefulSet).map(|o| format!("{o}-")),
            labels: some_map(&p.labels),
            annotations: some_map(&p.annotations),
            owner_references: owner,
            deletion_timestamp: p
                .deletion
                .as_ref()
                .map(|d| time(d.at_ms.saturating_add(d.grace_s.saturating_mul(1_000)))),
            deletion_grace_period_seconds: p.deletion.as_ref().map(|d| i64::try_from(d.grace_s).unwrap_or(i64::MAX)),
            ..Default::default()
        },
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: "app".to_string(),
                image: Some("registry.k8s.io/pause:3.10".to_string()),
                volume_mounts: empty_dir.as_ref().map(|name| {
                    vec![core::VolumeMount {
                        name: name.clone(),
                        mount_path: "/scratch".to_string(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }],
            node_name: p.node.clone(),
            node_selector: some_map(&p.node_selector),
            restart_policy: Some("Always".to_string()),
            scheduler_name: Some("default-scheduler".to_string()),
            termination_grace_period_seconds: Some(i64::try_from(p.grace_s).unwrap_or(i64::MAX)),
            tolerations: (p.kind == WorkloadKind::DaemonSet)
                .then(|| vec![core::Toleration { operator: Some("Exists".to_string()), ..Default::default() }]),
            volumes: empty_dir.map(|name| {
                vec![core::Volume {
                    name,
                    empty_dir: Some(core::EmptyDirVolumeSource::default()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: Some(p.phase().to_string()),
            conditions: Some(conditions),
            host_ip: host_ip.filter(|ip| !ip.is_empty() && scheduled).map(str::to_string),
            start_time: p.bound_at_ms.map(time),
            qos_class: Some("BestEffort".to_string()),
            ..Default::default()
        }),
    }
}

/// The mirror pod of an etcd member's static pod, as kubeadm's manifest and the kubelet make
/// it: labelled `component=etcd`, `tier=control-plane`; annotated as a mirror pod and with the
/// member's client URL ([`ETCD_CLIENT_URLS_ANNOTATION`]); owned by its Node; Running, and Ready
/// while the member's process runs.
pub(crate) fn mirror_pod(m: &Mirror, cluster: &str) -> core::Pod {
    let hash = format!("{:016x}", fnv_hash(&format!("{cluster}/{}/{:x}", m.name, m.member_id)));
    let annotations = BTreeMap::from([
        (ETCD_CLIENT_URLS_ANNOTATION.to_string(), m.client_url.clone()),
        ("kubernetes.io/config.hash".to_string(), hash.clone()),
        (MIRROR_ANNOTATION.to_string(), hash),
        ("kubernetes.io/config.seen".to_string(), time(m.created_at_ms).0.to_string()),
        ("kubernetes.io/config.source".to_string(), "file".to_string()),
    ]);
    let ready = if m.ready { "True" } else { "False" };
    let conditions = ["Initialized", "PodScheduled", "ContainersReady", "Ready"]
        .into_iter()
        .map(|type_| {
            let status = if matches!(type_, "Initialized" | "PodScheduled") { "True" } else { ready };
            core::PodCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: (status == "False").then(|| "ContainersNotReady".to_string()),
                last_transition_time: Some(time(m.since_ms.max(m.created_at_ms))),
                ..Default::default()
            }
        })
        .collect();
    let ip = (!m.node_ip.is_empty()).then(|| m.node_ip.clone());
    core::Pod {
        metadata: meta::ObjectMeta {
            name: Some(m.name.clone()),
            namespace: Some(MIRROR_NAMESPACE.to_string()),
            uid: Some(derived_uid(&["mirror", cluster, &m.name, &format!("{:x}", m.member_id)])),
            resource_version: Some(m.rv.to_string()),
            creation_timestamp: Some(time(m.created_at_ms)),
            labels: some_map(&m.labels),
            annotations: Some(annotations),
            owner_references: Some(vec![meta::OwnerReference {
                api_version: "v1".to_string(),
                kind: "Node".to_string(),
                name: m.node.clone(),
                uid: m.node_uid.clone(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: "etcd".to_string(),
                image: Some("registry.k8s.io/etcd:3.5.21-0".to_string()),
                command: Some(vec![
                    "etcd".to_string(),
                    format!("--name={}", m.node),
                    format!("--advertise-client-urls={}", m.client_url),
                ]),
                ..Default::default()
            }],
            node_name: Some(m.node.clone()),
            host_network: Some(true),
            priority: Some(2_000_001_000),
            priority_class_name: Some("system-node-critical".to_string()),
            restart_policy: Some("Always".to_string()),
            tolerations: Some(vec![core::Toleration {
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: Some("Running".to_string()),
            conditions: Some(conditions),
            host_ip: ip.clone(),
            pod_ip: ip,
            start_time: Some(time(m.created_at_ms)),
            qos_class: Some("Burstable".to_string()),
            ..Default::default()
        }),
    }
}

/// A 64-bit FNV-1a hash (a mirror pod's config hash).
fn fnv_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// An integer (`"5"`) or a percentage (`"80%"`) as written; anything else as a string.
fn int_or_string(s: &str) -> IntOrString {
    match s.trim().parse::<i32>() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(s.trim().to_string()),
    }
}

pub(crate) fn pdb(b: &Pdb, status: BudgetStatus, now_ms: u64) -> policy::PodDisruptionBudget {
    let allowed = status.allowed > 0;
    policy::PodDisruptionBudget {
        metadata: meta::ObjectMeta {
            name: Some(b.name.clone()),
            namespace: Some(b.namespace.clone()),
            uid: Some(b.uid.clone()),
            resource_version: Some(b.rv.to_string()),
            creation_timestamp: Some(time(b.created_at_ms)),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(policy::PodDisruptionBudgetSpec {
            min_available: b.min_available.as_deref().map(int_or_string),
            max_unavailable: b.max_unavailable.as_deref().map(int_or_string),
            selector: Some(meta::LabelSelector { match_labels: Some(b.selector.clone()), match_expressions: None }),
            ..Default::default()
        }),
        status: Some(policy::PodDisruptionBudgetStatus {
            current_healthy: status.current,
            desired_healthy: status.desired,
            disruptions_allowed: status.allowed,
            expected_pods: status.expected,
            observed_generation: Some(1),
            conditions: Some(vec![meta::Condition {
                type_: "DisruptionAllowed".to_string(),
                status: if allowed { "True" } else { "False" }.to_string(),
                reason: if allowed { "SufficientPods" } else { "InsufficientPods" }.to_string(),
                message: String::new(),
                last_transition_time: time(now_ms),
                observed_generation: Some(1),
            }]),
            disrupted_pods: None,
        }),
    }
}

/// The `Status` body of an error.
pub(crate) fn failure(e: &ApiError) -> meta::Status {
    let details = (e.details.is_some() || !e.causes.is_empty()).then(|| meta::StatusDetails {
        kind: e.details.as_ref().map(|(kind, _)| kind.to_string()),
        name: e.details.as_ref().map(|(_, name)| name.clone()),
        causes: (!e.causes.is_empty()).then(|| {
            e.causes
                .iter()
                .map(|(reason, message)| meta::StatusCause {
                    reason: reason.clone(),
                    message: Some(message.clone()),
                    field: None,
                })
                .collect()
        }),
        ..Default::default()
    });
    meta::Status {
        status: Some("Failure".to_string()),
        message: Some(e.message.clone()),
        reason: Some(e.reason.to_string()),
        details,
        code: Some(i32::from(e.code)),
        metadata: meta::ListMeta::default(),
    }
}

/// The `Status` body of a success (an eviction's).
pub(crate) fn success(code: u16) -> meta::Status {
    meta::Status { status: Some("Success".to_string()), code: Some(i32::from(code)), ..Default::default() }
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A `labelSelector` query: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
/// comma-separated (all must hold).
pub(crate) fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unable to parse requirement: unbalanced parentheses in {s:?}"));
        }
    }
    parts.push(&s[start..]);
    let mut reqs = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("unable to parse requirement: {part:?}: expected a parenthesised set"))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
        };
        let req = if let Some(key) = part.strip_prefix('!') {
            LabelReq::NotExists(key.trim().to_string())
        } else if let Some((k, v)) = part.split_once("!=") {
            LabelReq::NotEq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once("==") {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once('=') {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            LabelReq::NotIn(k.trim().to_string(), set(rest)?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            LabelReq::In(k.trim().to_string(), set(rest)?)
        } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
            LabelReq::Exists(part.to_string())
        } else {
            return Err(format!("unable to parse requirement: {part:?}"));
        };
        reqs.push(req);
    }
    Ok(reqs)
}

pub(crate) fn labels_match(reqs: &[LabelReq], labels: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|r| match r {
        LabelReq::Eq(k, v) => labels.get(k) == Some(v),
        LabelReq::NotEq(k, v) => labels.get(k) != Some(v),
        LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
        LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        LabelReq::Exists(k) => labels.contains_key(k),
        LabelReq::NotExists(k) => !labels.contains_key(k),
    })
}

/// One requirement of a field selector: (field, equal or not, value).
pub(crate) type FieldReq = (String, bool, String);

/// A `fieldSelector` query: `f=v`, `f==v`, `f!=v`, comma-separated, on the fields `allowed`.
pub(crate) fn parse_field_selector(s: &str, allowed: &[&str]) -> Result<Vec<FieldReq>, String> {
    let mut reqs = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = part.split_once("==") {
            (f, true, v)
        } else if let Some((f, v)) = part.split_once('=') {
            (f, true, v)
        } else {
            return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
        };
        let field = field.trim();
        if !allowed.contains(&field) {
            return Err(format!("field label not supported: {field}"));
        }
        reqs.push((field.to_string(), eq, value.trim().to_string()));
    }
    Ok(reqs)
}

pub(crate) fn fields_match(reqs: &[FieldReq], value_of: impl Fn(&str) -> String) -> bool {
    reqs.iter().all(|(field, eq, value)| (value_of(field) == *value) == *eq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors_parse_and_match_as_the_api_server_does() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let ok = |s: &str| labels_match(&parse_label_selector(s).unwrap(), &l);
        assert!(ok(""));
        assert!(ok("app=web"));
        assert!(ok("app==web,tier"));
        assert!(!ok("app!=web"));
        assert!(ok("tier in (front, back),!missing"));
        assert!(!ok("tier notin (front)"));
        assert!(ok("app,tier=front"));
        assert!(parse_label_selector("app in front").is_err());
        assert!(parse_label_selector("a)(").is_err());
        assert!(parse_label_selector("what is this").is_err());
    }

    #[test]
    fn field_selectors_accept_known_fields_only() {
        let reqs = parse_field_selector("spec.nodeName=n1,metadata.name!=x", &["spec.nodeName", "metadata.name"]);
        let reqs = reqs.unwrap();
        assert!(fields_match(&reqs, |f| if f == "spec.nodeName" { "n1".into() } else { "y".into() }));
        assert!(!fields_match(&reqs, |_| "x".into()));
        let err = parse_field_selector("spec.bogus=1", &["spec.nodeName"]).unwrap_err();
        assert_eq!(err, "field label not supported: spec.bogus");
    }

    #[test]
    fn times_are_rfc3339_seconds_from_the_epoch() {
        let json = serde_json::to_value(time(1_500)).unwrap();
        assert_eq!(json, "1970-01-01T00:00:01Z");
        // Far beyond what a timestamp holds: the latest one, not a panic.
        assert!(serde_json::to_value(time(u64::MAX)).is_ok());
    }

    #[test]
    fn statuses_have_the_api_servers_shape() {
        let mut e =
            ApiError::new(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.");
        e.causes.push((
            Some("DisruptionBudget".into()),
            "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
        ));
        let json = serde_json::to_value(failure(&e)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "reason": "TooManyRequests", "code": 429,
                "details": {"causes": [{"reason": "DisruptionBudget",
                    "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}})
        );
        assert_eq!(
            serde_json::to_value(success(201)).unwrap(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
        );
    }
}
