//! `KubeClient` against a real HTTP server: a small hyper server on 127.0.0.1 records every
//! request (method, path and query, content type, Authorization header, body) and answers with
//! canned JSON shaped as a real API server's (lists with `kind`, `apiVersion` and
//! `metadata.resourceVersion`; `Status` objects for errors). Nothing of kube is mocked.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use drydock_kube::KubeClient;
use drydock_provider::kube::{
    BearerToken, ConditionStatus, Eviction, LabelSelector, NodePatch, Owner, PdbInfo, PodRef, Requirement, Taint,
    OUTDATED_TAINT,
};
use drydock_provider::{ErrorKind, Kubernetes, ProviderError};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const TOKEN: &str = "sim-token-7f3c9a2e41b84d0c";

/// One request as the server received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    uri: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl Seen {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    fn query(&self) -> &str {
        self.uri.split_once('?').map(|(_, q)| q).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body of {} is not JSON ({e}): {}", self.uri, self.body))
    }
}

type Answer = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

/// A running test API server.
struct ApiServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ApiServer {
    /// Serves on 127.0.0.1 (a free port) until the test's runtime ends.
    async fn start(answer: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let recorded = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (recorded, answer) = (recorded.clone(), answer.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (recorded, answer) = (recorded.clone(), answer.clone());
                    async move {
                        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                        let (content_type, authorization) = (header(CONTENT_TYPE), header(AUTHORIZATION));
                        let method = req.method().to_string();
                        let uri = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                        let body = req.into_body().collect().await?.to_bytes();
                        let seen = Seen {
                            method,
                            uri,
                            content_type,
                            authorization,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let (code, body) = answer(&seen);
                        recorded.lock().unwrap().push(seen);
                        let response = Response::builder()
                            .status(code)
                            .header(CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        });
        ApiServer { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self) -> KubeClient {
        KubeClient::from_endpoint(&self.url, TOKEN, "sim").unwrap()
    }
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_string())
}

/// A `Status` as the API server sends it for a failure.
fn status(code: u16, reason: &str, message: &str, details: Value) -> (u16, String) {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    });
    (code, body.to_string())
}

fn ms(rfc3339: &str) -> u64 {
    let t: k8s_openapi::jiff::Timestamp = rfc3339.parse().unwrap();
    t.as_millisecond() as u64
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn assert_no_token(err: &ProviderError, token: &str) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(token), "the error shows the token: {text}");
}

// ---------------------------------------------------------------------------------------------
// Canned API objects.

const NODE_LIST: &str = r#"{
  "kind": "NodeList",
  "apiVersion": "v1",
  "metadata": { "resourceVersion": "48213" },
  "items": [
    {
      "metadata": {
        "name": "ip-10-0-1-23.ec2.internal",
        "uid": "8f6c1e0a-3b1d-4c9e-9a57-1f2d3c4b5a69",
        "resourceVersion": "48190",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {
          "beta.kubernetes.io/arch": "amd64",
          "kubernetes.io/hostname": "ip-10-0-1-23.ec2.internal",
          "node.kubernetes.io/instance-type": "m6i.large",
          "topology.kubernetes.io/zone": "us-east-1a",
          "drydock.dev/group": "web-g1"
        },
        "annotations": {
          "node.alpha.kubernetes.io/ttl": "0",
          "volumes.kubernetes.io/controller-managed-attach-detach": "true",
          "drydock.dev/owned-labels": "drydock.dev/group"
        }
      },
      "spec": {
        "podCIDR": "10.244.1.0/24",
        "podCIDRs": ["10.244.1.0/24"],
        "providerID": "aws:///us-east-1a/i-0abc123def4567890",
        "taints": [
          { "key": "drydock.dev/outdated", "effect": "NoSchedule" },
          { "key": "dedicated", "value": "web", "effect": "NoExecute", "timeAdded": "2024-05-01T10:05:00Z" }
        ]
      },
      "status": {
        "capacity": { "cpu": "2", "ephemeral-storage": "20959212Ki", "memory": "7941604Ki", "pods": "29" },
        "allocatable": { "cpu": "1930m", "ephemeral-storage": "18242267924", "memory": "7251428Ki", "pods": "29" },
        "conditions": [
          { "type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "2024-05-01T11:00:00Z",
            "lastTransitionTime": "2024-05-01T10:00:30Z", "reason": "KubeletHasSufficientMemory",
            "message": "kubelet has sufficient memory available" },
          { "type": "DiskPressure", "status": "False", "lastHeartbeatTime": "2024-05-01T11:00:00Z",
            "lastTransitionTime": "2024-05-01T10:00:30Z", "reason": "KubeletHasNoDiskPressure",
            "message": "kubelet has no disk pressure" },
          { "type": "PIDPressure", "status": "False", "lastHeartbeatTime": "2024-05-01T11:00:00Z",
            "lastTransitionTime": "2024-05-01T10:00:30Z", "reason": "KubeletHasSufficientPID",
            "message": "kubelet has sufficient PID available" },
          { "type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-01T11:00:00Z",
            "lastTransitionTime": "2024-05-01T10:01:00Z", "reason": "KubeletReady",
            "message": "kubelet is posting ready status" }
        ],
        "addresses": [
          { "type": "InternalIP", "address": "10.0.1.23" },
          { "type": "Hostname", "address": "ip-10-0-1-23.ec2.internal" }
        ],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
        "nodeInfo": {
          "machineID": "ec2f1c0e5a1b4c3d9e8f7a6b5c4d3e2f",
          "systemUUID": "ec2f1c0e-5a1b-4c3d-9e8f-7a6b5c4d3e2f",
          "bootID": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
          "kernelVersion": "6.1.134-152.225.amzn2023.x86_64",
          "osImage": "Amazon Linux 2023.7.20250512",
          "containerRuntimeVersion": "containerd://1.7.27",
          "kubeletVersion": "v1.33.1-eks-1234567",
          "kubeProxyVersion": "",
          "operatingSystem": "linux",
          "architecture": "amd64"
        }
      }
    },
    {
      "metadata": {
        "name": "ip-10-0-2-45.ec2.internal",
        "uid": "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b",
        "resourceVersion": "48201",
        "creationTimestamp": "2024-05-01T09:00:00Z",
        "deletionTimestamp": "2024-05-01T12:00:00Z",
        "labels": { "kubernetes.io/hostname": "ip-10-0-2-45.ec2.internal" }
      },
      "spec": {
        "providerID": "aws:///us-east-1b/i-0def456abc7890123",
        "unschedulable": true,
        "taints": [
          { "key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2024-05-01T11:20:00Z" }
        ]
      },
      "status": {
        "conditions": [
          { "type": "MemoryPressure", "status": "True", "lastHeartbeatTime": "2024-05-01T11:29:00Z",
            "lastTransitionTime": "2024-05-01T11:10:00Z", "reason": "KubeletHasInsufficientMemory",
            "message": "kubelet has insufficient memory available" },
          { "type": "DiskPressure", "status": "False", "lastHeartbeatTime": "2024-05-01T11:29:00Z",
            "lastTransitionTime": "2024-05-01T09:00:30Z", "reason": "KubeletHasNoDiskPressure",
            "message": "kubelet has no disk pressure" },
          { "type": "PIDPressure", "status": "True", "lastHeartbeatTime": "2024-05-01T11:29:00Z",
            "lastTransitionTime": "2024-05-01T11:15:00Z", "reason": "KubeletHasInsufficientPID",
            "message": "kubelet has insufficient PID available" },
          { "type": "Ready", "status": "Unknown", "lastHeartbeatTime": "2024-05-01T11:29:00Z",
            "lastTransitionTime": "2024-05-01T11:30:00Z", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status." }
        ]
      }
    }
  ]
}"#;

const POD_LIST: &str = r#"{
  "kind": "PodList",
  "apiVersion": "v1",
  "metadata": { "resourceVersion": "48215" },
  "items": [
    {
      "metadata": {
        "name": "web-7d4b9c8f6d-x2v9k",
        "generateName": "web-7d4b9c8f6d-",
        "namespace": "default",
        "uid": "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
        "resourceVersion": "47810",
        "creationTimestamp": "2024-05-01T10:10:00Z",
        "labels": { "app": "web", "tier": "front", "pod-template-hash": "7d4b9c8f6d" },
        "ownerReferences": [
          { "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
            "uid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "controller": true, "blockOwnerDeletion": true }
        ]
      },
      "spec": {
        "volumes": [
          { "name": "cache", "emptyDir": {} },
          { "name": "kube-api-access-x7k2p", "projected": { "defaultMode": 420, "sources": [
            { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } } ] } }
        ],
        "containers": [
          { "name": "web", "image": "nginx:1.27", "ports": [ { "containerPort": 80, "protocol": "TCP" } ],
            "volumeMounts": [ { "name": "cache", "mountPath": "/var/cache/nginx" } ],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent" }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "nodeName": "ip-10-0-1-23.ec2.internal",
        "schedulerName": "default-scheduler",
        "priority": 0
      },
      "status": {
        "phase": "Running",
        "conditions": [
          { "type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2024-05-01T10:10:05Z" },
          { "type": "Initialized", "status": "True", "lastTransitionTime": "2024-05-01T10:10:01Z" },
          { "type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:10:08Z" },
          { "type": "ContainersReady", "status": "True", "lastTransitionTime": "2024-05-01T10:10:08Z" },
          { "type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:10:00Z" }
        ],
        "hostIP": "10.0.1.23",
        "podIP": "10.244.1.17",
        "startTime": "2024-05-01T10:10:01Z",
        "qosClass": "BestEffort"
      }
    },
    {
      "metadata": {
        "name": "aws-node-8xk2p",
        "generateName": "aws-node-",
        "namespace": "kube-system",
        "uid": "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f",
        "resourceVersion": "47002",
        "creationTimestamp": "2024-05-01T10:00:40Z",
        "labels": { "k8s-app": "aws-node", "controller-revision-hash": "6f8d9c7b5" },
        "ownerReferences": [
          { "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node",
            "uid": "0f1e2d3c-4b5a-4968-8776-655443322110", "controller": true, "blockOwnerDeletion": true }
        ]
      },
      "spec": {
        "containers": [ { "name": "aws-node", "image": "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.5" } ],
        "nodeName": "ip-10-0-1-23.ec2.internal",
        "terminationGracePeriodSeconds": 10,
        "hostNetwork": true
      },
      "status": {
        "phase": "Running",
        "conditions": [ { "type": "Ready", "status": "False", "lastTransitionTime": "2024-05-01T10:00:50Z",
                          "reason": "ContainersNotReady" } ]
      }
    },
    {
      "metadata": {
        "name": "kube-proxy-ip-10-0-1-23.ec2.internal",
        "namespace": "kube-system",
        "uid": "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d",
        "resourceVersion": "46990",
        "creationTimestamp": "2024-05-01T10:00:35Z",
        "labels": { "component": "kube-proxy", "tier": "node" },
        "annotations": {
          "kubernetes.io/config.hash": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
          "kubernetes.io/config.mirror": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
          "kubernetes.io/config.seen": "2024-05-01T10:00:31.123456789Z",
          "kubernetes.io/config.source": "file"
        },
        "ownerReferences": [
          { "apiVersion": "v1", "kind": "Node", "name": "ip-10-0-1-23.ec2.internal",
            "uid": "8f6c1e0a-3b1d-4c9e-9a57-1f2d3c4b5a69", "controller": true }
        ]
      },
      "spec": {
        "containers": [ { "name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.1" } ],
        "nodeName": "ip-10-0-1-23.ec2.internal",
        "terminationGracePeriodSeconds": 30
      },
      "status": { "phase": "Running", "conditions": [ { "type": "Ready", "status": "True" } ] }
    },
    {
      "metadata": {
        "name": "report-28571230-q9z8r",
        "namespace": "batch",
        "uid": "c0ffee00-1234-4567-89ab-cdef01234567",
        "resourceVersion": "48100",
        "creationTimestamp": "2024-05-01T11:50:00Z",
        "deletionTimestamp": "2024-05-01T11:59:30Z",
        "deletionGracePeriodSeconds": 30,
        "ownerReferences": [
          { "apiVersion": "batch/v1", "kind": "Job", "name": "report-28571230",
            "uid": "d00dfeed-1234-4567-89ab-cdef01234567", "controller": false }
        ]
      },
      "spec": { "containers": [ { "name": "report", "image": "busybox:1.36" } ] },
      "status": { "qosClass": "BestEffort" }
    }
  ]
}"#;

const PDB_LIST: &str = r#"{
  "kind": "PodDisruptionBudgetList",
  "apiVersion": "policy/v1",
  "metadata": { "resourceVersion": "48220" },
  "items": [
    {
      "metadata": { "name": "web", "namespace": "default", "uid": "aa11bb22-cc33-4d44-8e55-ff6677889900",
                    "resourceVersion": "47900", "generation": 1, "creationTimestamp": "2024-05-01T10:09:00Z" },
      "spec": {
        "minAvailable": "80%",
        "selector": {
          "matchLabels": { "app": "web" },
          "matchExpressions": [
            { "key": "tier", "operator": "In", "values": ["front", "edge"] },
            { "key": "canary", "operator": "DoesNotExist" }
          ]
        }
      },
      "status": {
        "observedGeneration": 1,
        "disruptionsAllowed": 1,
        "currentHealthy": 5,
        "desiredHealthy": 4,
        "expectedPods": 5,
        "conditions": [ { "type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
                          "observedGeneration": 1, "lastTransitionTime": "2024-05-01T10:11:00Z" } ]
      }
    },
    {
      "metadata": { "name": "coredns", "namespace": "kube-system", "uid": "bb22cc33-dd44-4e55-9f66-0077889900aa",
                    "resourceVersion": "46500", "generation": 1, "creationTimestamp": "2024-05-01T09:58:00Z" },
      "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns" } } },
      "status": { "observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2 }
    },
    {
      "metadata": { "name": "nothing", "namespace": "batch", "uid": "cc33dd44-ee55-4f66-8077-8899aabbccdd",
                    "resourceVersion": "48000", "generation": 1, "creationTimestamp": "2024-05-01T11:00:00Z" },
      "spec": { "maxUnavailable": "25%" },
      "status": { "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0 }
    }
  ]
}"#;

fn pod_json(namespace: &str, name: &str, uid: &str) -> String {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid, "resourceVersion": "48300",
            "creationTimestamp": "2024-05-01T10:10:00Z", "deletionTimestamp": "2024-05-01T12:00:30Z",
            "deletionGracePeriodSeconds": 30
        },
        "spec": { "containers": [ { "name": "web", "image": "nginx:1.27" } ], "nodeName": "ip-10-0-1-23.ec2.internal" },
        "status": { "phase": "Running" }
    })
    .to_string()
}

fn node_json(name: &str) -> String {
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": { "name": name, "uid": "8f6c1e0a-3b1d-4c9e-9a57-1f2d3c4b5a69", "resourceVersion": "48400",
                      "creationTimestamp": "2024-05-01T10:00:00Z" },
        "spec": { "providerID": "aws:///us-east-1a/i-0abc123def4567890", "unschedulable": true },
        "status": {}
    })
    .to_string()
}

fn web_1() -> PodRef {
    PodRef { namespace: "default".into(), name: "web-1".into(), uid: "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b".into() }
}

// ---------------------------------------------------------------------------------------------
// Eviction.

/// The API server's answers by pod name.
fn eviction_answers(seen: &Seen) -> (u16, String) {
    let name = seen.path().trim_end_matches("/eviction").rsplit('/').next().unwrap_or_default().to_string();
    match name.as_str() {
        "blocked" => status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            json!({ "causes": [ { "reason": "DisruptionBudget",
                                  "message": "The disruption budget web needs 5 healthy pods and has 5 currently" } ] }),
        ),
        "two-budgets" => status(
            500,
            "InternalError",
            "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            json!({ "causes": [ { "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." } ] }),
        ),
        "gone" => status(404, "NotFound", "pods \"gone\" not found", json!({ "name": "gone", "kind": "pods" })),
        "replaced" => status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on Pod \"replaced\": Precondition failed: UID in precondition: 3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b, UID in object meta: 0a0b0c0d-0000-4000-8000-000000000000",
            json!({ "name": "replaced", "kind": "Pod" }),
        ),
        "denied" => status(
            403,
            "Forbidden",
            "pods \"denied\" is forbidden: User \"system:serviceaccount:drydock:drydock\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"default\"",
            json!({ "name": "denied", "group": "", "kind": "pods" }),
        ),
        _ => (201, r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}"#.to_string()),
    }
}

#[tokio::test]
async fn an_eviction_carries_its_uid_precondition_and_grace_period_under_delete_options() {
    let server = ApiServer::start(eviction_answers).await;
    let client = server.client();
    assert_eq!(client.evict(&web_1(), Some(45)).await.unwrap(), Eviction::Evicted);

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/api/v1/namespaces/default/pods/web-1/eviction");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    // The regression test for kube 5's `Api::evict`, which sends `delete_options`: the API
    // server ignores that field, and with it the precondition and the grace period.
    let body = request.json();
    assert_eq!(
        body,
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": { "name": "web-1", "namespace": "default" },
            "deleteOptions": {
                "preconditions": { "uid": "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b" },
                "gracePeriodSeconds": 45
            }
        })
    );
    assert!(body.get("delete_options").is_none());

    // Without a grace period, the pod's own applies: none is sent.
    client.evict(&web_1(), None).await.unwrap();
    let body = server.seen()[1].json();
    assert_eq!(body["deleteOptions"], json!({ "preconditions": { "uid": "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b" } }));
}

#[tokio::test]
async fn eviction_answers_map_onto_outcomes() {
    let server = ApiServer::start(eviction_answers).await;
    let client = server.client();
    let pod = |name: &str| PodRef { name: name.into(), ..web_1() };

    match client.evict(&pod("blocked"), Some(30)).await.unwrap() {
        Eviction::Blocked { message } => {
            assert!(
                message.contains("The disruption budget web needs 5 healthy pods and has 5 currently"),
                "{message}"
            );
            assert!(message.contains("Cannot evict pod as it would violate the pod's disruption budget"), "{message}");
        }
        other => panic!("429 should block, got {other:?}"),
    }
    match client.evict(&pod("two-budgets"), None).await.unwrap() {
        Eviction::Misconfigured { message } => {
            assert!(message.contains("more than one PodDisruptionBudget"), "{message}");
            // The cause repeats the message: it is said once.
            assert_eq!(message.matches("more than one").count(), 1, "{message}");
        }
        other => panic!("500 about budgets should be a misconfiguration, got {other:?}"),
    }
    assert_eq!(client.evict(&pod("gone"), None).await.unwrap(), Eviction::Gone);
    assert_eq!(client.evict(&pod("replaced"), None).await.unwrap(), Eviction::Gone);

    let err = client.evict(&pod("denied"), None).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.starts_with("evicting pod default/denied on http://127.0.0.1:"), "{err}");
    assert!(err.message.contains("(sim)"), "{err}");
    assert!(err.message.contains("cannot create resource \"pods/eviction\""), "{err}");
    assert_no_token(&err, TOKEN);

    // No client-side retries: one request per eviction, 429 included.
    assert_eq!(server.seen().len(), 5);
}

// ---------------------------------------------------------------------------------------------
// Authentication and errors.

#[tokio::test]
async fn the_bearer_token_is_sent_and_describe_names_the_server() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    let client = server.client();
    assert_eq!(client.describe(), format!("{} (sim)", server.url));
    client.nodes().await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
}

/// A token source whose answers the test lays out in advance (tokens and when they expire,
/// relative to now, or errors), counting how often it was asked: expiry is a value the test
/// controls, so nothing sleeps.
struct FakeSource {
    answers: Mutex<Vec<Result<(String, i64), ProviderError>>>,
    asked: Mutex<usize>,
}

impl FakeSource {
    fn new(answers: Vec<Result<(&str, i64), ProviderError>>) -> Arc<FakeSource> {
        let answers = answers.into_iter().rev().map(|a| a.map(|(t, e)| (t.to_string(), e))).collect();
        Arc::new(FakeSource { answers: Mutex::new(answers), asked: Mutex::new(0) })
    }

    fn asked(&self) -> usize {
        *self.asked.lock().unwrap()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

const MINUTE: i64 = 60_000;

#[drydock_provider::async_trait]
impl BearerToken for FakeSource {
    async fn token(&self) -> Result<(String, u64), ProviderError> {
        *self.asked.lock().unwrap() += 1;
        let next = self.answers.lock().unwrap().pop().expect("the source was asked more often than the test expects");
        next.map(|(token, expires_in)| (token, (now_ms() + expires_in).max(0) as u64))
    }
}

fn bearer_client(server: &ApiServer, source: Arc<FakeSource>) -> KubeClient {
    KubeClient::from_bearer(&server.url, None, "eks prod", source).unwrap()
}

fn authorizations(server: &ApiServer) -> Vec<String> {
    server.seen().iter().map(|s| s.authorization.clone().unwrap_or_default()).collect()
}

#[tokio::test]
async fn a_bearer_source_is_asked_once_and_its_token_sent_until_it_nears_expiry() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    // An hour left: good for every request of this test.
    let source = FakeSource::new(vec![Ok(("eks-token-one", 60 * MINUTE))]);
    let client = bearer_client(&server, source.clone());
    assert_eq!(client.describe(), format!("{} (eks prod)", server.url));
    assert_eq!(source.asked(), 0, "nothing is asked before the first request");
    for _ in 0..3 {
        client.nodes().await.unwrap();
    }
    assert_eq!(authorizations(&server), vec!["Bearer eks-token-one"; 3]);
    assert_eq!(source.asked(), 1);
}

#[tokio::test]
async fn a_bearer_token_is_renewed_once_less_than_five_minutes_are_left() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    // The first token has 4 minutes left when it arrives: good for the request that asked for it,
    // renewed before the next. The second has already expired: renewed before the third request.
    // The third has 14 minutes, as an EKS token.
    let source = FakeSource::new(vec![
        Ok(("eks-token-one", 4 * MINUTE)),
        Ok(("eks-token-two", -MINUTE)),
        Ok(("eks-token-three", 14 * MINUTE)),
    ]);
    let client = bearer_client(&server, source.clone());
    for _ in 0..4 {
        client.nodes().await.unwrap();
    }
    assert_eq!(
        authorizations(&server),
        ["Bearer eks-token-one", "Bearer eks-token-two", "Bearer eks-token-three", "Bearer eks-token-three"]
    );
    assert_eq!(source.asked(), 3);
    assert_eq!(drydock_kube::RENEW_BEFORE, std::time::Duration::from_secs(300));
}

#[tokio::test]
async fn a_failed_renewal_keeps_a_valid_token_and_a_failed_first_fetch_fails_only_its_request() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    let source = FakeSource::new(vec![
        // No credentials at all: the first request fails with the source's kind and words.
        Err(ProviderError::new(ErrorKind::Auth, "EKS token for cluster prod: loading AWS credentials: none")),
        // Then a token due for renewal, whose renewal fails: it is still sent while valid.
        Ok(("eks-token-one", 3 * MINUTE)),
        Err(ProviderError::unavailable("EKS token for cluster prod: the credential endpoint did not answer")),
        Ok(("eks-token-two", 14 * MINUTE)),
    ]);
    let client = bearer_client(&server, source.clone());
    let err = client.nodes().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(
        err.message.contains("getting a bearer token: EKS token for cluster prod: loading AWS credentials"),
        "{err}"
    );
    assert!(server.seen().is_empty(), "a request without a token is not sent");
    client.nodes().await.unwrap();
    client.nodes().await.unwrap();
    client.nodes().await.unwrap();
    assert_eq!(authorizations(&server), ["Bearer eks-token-one", "Bearer eks-token-one", "Bearer eks-token-two"]);
    assert_eq!(source.asked(), 4);
}

#[tokio::test]
async fn a_token_that_is_no_header_value_is_refused_without_showing_it() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    let source = FakeSource::new(vec![Ok(("bad\ntoken-0123456789", 60 * MINUTE))]);
    let err = bearer_client(&server, source).nodes().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert_no_token(&err, "token-0123456789");
}

/// A self-signed CA certificate (its key was thrown away), as EKS's `certificateAuthority`
/// decodes to.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUCq7IUGY2lbnPqAewFOh+LrjmYNswCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAgFw0yNjEyMDEyMzExMjBaGA8yMTI2MTEw
NzIzMTEyMFowFTETMBEGA1UEAwwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABPtVlAW4AkaBNeNcgIbkVnyGfDQiTGpHNM+8MXhv3+iS+XyNGtRb
Zfu4jm8zoW2HwXO7C+XzTJiDhLarEgTzpBKjUzBRMB0GA1UdDgQWBBSnrJFwZ1H6
Ei68WtaJ6mErEM8O1DAfBgNVHSMEGDAWgBSnrJFwZ1H6Ei68WtaJ6mErEM8O1DAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDOOyu5wHTe3hsgHIqA
kqDk8vWhioG7Ngt3vvMgyqdOIgIhAI6CHcZtBm6j0GRnuHhIvzJ/U7CBn3jrLmPy
9w02qFZ9
-----END CERTIFICATE-----
";

#[tokio::test]
async fn a_bearer_client_takes_the_clusters_ca_as_pem() {
    let source = FakeSource::new(vec![]);
    let url = "https://0123456789abcdef.gr7.us-east-1.eks.amazonaws.com";
    let client = KubeClient::from_bearer(url, Some(CA_PEM.as_bytes()), "eks prod", source.clone()).unwrap();
    assert_eq!(client.describe(), format!("{url} (eks prod)"));
    // Not a certificate: refused when the client is built, naming the server.
    let torn = &CA_PEM[..200];
    let err = KubeClient::from_bearer(url, Some(torn.as_bytes()), "eks prod", source.clone()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.starts_with(&format!("connecting to {url} (eks prod): ")), "{err}");
    let client = KubeClient::from_bearer(url, None, "eks prod", source.clone()).unwrap();
    assert_eq!(client.describe(), format!("{url} (eks prod)"));
    assert_eq!(source.asked(), 0);
}

#[tokio::test]
async fn api_errors_map_onto_kinds_without_the_token() {
    let server = ApiServer::start(|seen| match seen.path() {
        "/api/v1/nodes" => status(
            403,
            "Forbidden",
            "nodes is forbidden: User \"system:serviceaccount:default:drydock\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
            json!({ "kind": "nodes" }),
        ),
        "/api/v1/pods" => status(429, "TooManyRequests", "Too many requests, please try again later.", json!({ "retryAfterSeconds": 1 })),
        "/apis/policy/v1/poddisruptionbudgets" => {
            status(503, "ServiceUnavailable", "the server is currently unable to handle the request", json!({}))
        }
        "/api/v1/nodes/unknown" => status(404, "NotFound", "nodes \"unknown\" not found", json!({ "name": "unknown", "kind": "nodes" })),
        "/api/v1/nodes/bad" => status(
            422,
            "Invalid",
            "Node \"bad\" is invalid: spec.taints[0].effect: Unsupported value: \"Sometimes\"",
            json!({ "name": "bad", "kind": "Node", "causes": [ { "reason": "FieldValueNotSupported",
                    "message": "Unsupported value: \"Sometimes\"", "field": "spec.taints[0].effect" } ] }),
        ),
        _ => (401, r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_string()),
    })
    .await;
    let client = server.client();

    let err = client.nodes().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.starts_with(&format!("listing nodes on {} (sim): nodes is forbidden", server.url)), "{err}");
    assert!(err.message.ends_with("(403 Forbidden)"), "{err}");
    assert_no_token(&err, TOKEN);

    let err = client.pods(None).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert!(err.is_retryable());
    let err = client.disruption_budgets().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.message.starts_with("listing pod disruption budgets on "), "{err}");

    let taint = Taint { key: "x".into(), value: None, effect: "Sometimes".into() };
    let patch = NodePatch { taints: Some(vec![taint]), ..NodePatch::default() };
    let err = client.patch_node("unknown", &patch).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.starts_with("patching node unknown on "), "{err}");
    let err = client.patch_node("bad", &patch).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("spec.taints[0].effect"), "{err}");

    let err = client.delete_node("other").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_no_token(&err, TOKEN);

    // kube's retries are off: every call was one request (429 and 503 included).
    assert_eq!(server.seen().len(), 6);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was free a moment ago: nothing listens on it any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = KubeClient::from_endpoint(&url, TOKEN, "sim").unwrap();
    let err = client.nodes().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.message.starts_with(&format!("listing nodes on {url} (sim): ")), "{err}");
    assert!(err.message.to_lowercase().contains("connect"), "{err}");
    assert_no_token(&err, TOKEN);
    let err = client.evict(&web_1(), None).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn an_answer_that_is_no_status_keeps_its_http_code() {
    // A load balancer in front of the API server, answering with its own page.
    let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
    let server = ApiServer::start(move |_| (502, page.to_string())).await;
    let err = server.client().pods(Some("n1")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.starts_with("listing pods on node n1 on "), "{err}");
    assert!(err.message.contains("502 Bad Gateway"), "{err}");
    assert!(err.message.ends_with("(502)"), "{err}");
    assert!(!err.message.contains('\n'), "{err}");
}

#[test]
fn a_client_needs_a_tokio_runtime() {
    let err = KubeClient::from_endpoint("http://127.0.0.1:1", TOKEN, "sim").unwrap_err();
    assert!(err.message.contains("Tokio runtime"), "{err}");
}

#[tokio::test]
async fn a_bad_url_is_invalid_input() {
    let err = KubeClient::from_endpoint("http://exa mple:6443", TOKEN, "sim").unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.starts_with("connecting to http://exa mple:6443 (sim): "), "{err}");
    assert_no_token(&err, TOKEN);
}

// ---------------------------------------------------------------------------------------------
// Lists and conversions.

#[tokio::test]
async fn nodes_convert_from_the_api_objects() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    let nodes = server.client().nodes().await.unwrap();
    let seen = server.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path()), ("GET", "/api/v1/nodes"));
    assert!(seen[0].query().split('&').any(|p| p == "limit=500"), "{}", seen[0].uri);

    assert_eq!(nodes.len(), 2);
    let n = &nodes[0];
    assert_eq!(n.name, "ip-10-0-1-23.ec2.internal");
    assert_eq!(n.uid, "8f6c1e0a-3b1d-4c9e-9a57-1f2d3c4b5a69");
    assert_eq!(n.provider_id.as_deref(), Some("aws:///us-east-1a/i-0abc123def4567890"));
    assert_eq!(n.instance_id(), Some("i-0abc123def4567890"));
    assert_eq!(n.created_at_ms, ms("2024-05-01T10:00:00Z"));
    assert_eq!(n.ready, Some((ConditionStatus::True, ms("2024-05-01T10:01:00Z"))));
    assert!(n.pressure.is_empty());
    assert!(n.is_healthy());
    assert!(!n.unschedulable);
    assert!(!n.deleting);
    assert_eq!(n.labels.get("drydock.dev/group").map(String::as_str), Some("web-g1"));
    assert_eq!(n.labels.len(), 5);
    assert_eq!(n.annotations.get("drydock.dev/owned-labels").map(String::as_str), Some("drydock.dev/group"));
    assert_eq!(
        n.taints,
        vec![
            Taint { key: OUTDATED_TAINT.into(), value: None, effect: "NoSchedule".into() },
            Taint { key: "dedicated".into(), value: Some("web".into()), effect: "NoExecute".into() },
        ]
    );

    let n = &nodes[1];
    assert_eq!(n.ready, Some((ConditionStatus::Unknown, ms("2024-05-01T11:30:00Z"))));
    assert_eq!(n.pressure, vec!["MemoryPressure".to_string(), "PIDPressure".to_string()]);
    assert!(n.unschedulable);
    assert!(n.deleting);
    assert!(n.annotations.is_empty());
    assert!(!n.is_healthy());
}

#[tokio::test]
async fn pods_convert_from_the_api_objects() {
    let server = ApiServer::start(|_| ok(POD_LIST)).await;
    let pods = server.client().pods(None).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].path(), "/api/v1/pods");
    assert!(!seen[0].query().contains("fieldSelector"), "{}", seen[0].uri);

    assert_eq!(pods.len(), 4);
    let web = &pods[0];
    assert_eq!((web.namespace.as_str(), web.name.as_str()), ("default", "web-7d4b9c8f6d-x2v9k"));
    assert_eq!(web.uid, "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b");
    assert_eq!(web.node.as_deref(), Some("ip-10-0-1-23.ec2.internal"));
    assert_eq!(web.owner, Some(Owner { kind: "ReplicaSet".into(), name: "web-7d4b9c8f6d".into() }));
    assert_eq!(web.phase, "Running");
    assert!(web.ready);
    assert!(!web.deleting);
    assert_eq!(web.labels, strings(&[("app", "web"), ("tier", "front"), ("pod-template-hash", "7d4b9c8f6d")]));
    assert!(web.annotations.is_empty());
    assert!(web.empty_dir);
    assert_eq!(web.grace_period_s, Some(30));
    assert!(web.is_drained());
    assert_eq!(web.reference().to_string(), "default/web-7d4b9c8f6d-x2v9k");

    let daemon = &pods[1];
    assert_eq!(daemon.owner, Some(Owner { kind: "DaemonSet".into(), name: "aws-node".into() }));
    assert!(daemon.is_daemonset());
    assert!(!daemon.ready);
    assert!(!daemon.empty_dir);
    assert_eq!(daemon.grace_period_s, Some(10));
    assert!(!daemon.is_drained());

    let mirror = &pods[2];
    assert!(mirror.is_mirror());
    assert_eq!(mirror.owner, Some(Owner { kind: "Node".into(), name: "ip-10-0-1-23.ec2.internal".into() }));
    assert!(!mirror.is_drained());

    let job = &pods[3];
    assert_eq!(job.owner, None, "an owner reference that is not the controller is no owner");
    assert_eq!(job.phase, "Pending");
    assert!(!job.ready);
    assert!(job.deleting);
    assert_eq!(job.node, None);
    assert_eq!(job.grace_period_s, None);
    assert!(job.labels.is_empty());
}

#[tokio::test]
async fn pods_on_a_node_use_a_field_selector() {
    let server = ApiServer::start(|_| ok(POD_LIST)).await;
    server.client().pods(Some("n1")).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].path(), "/api/v1/pods");
    let params: Vec<&str> = seen[0].query().split('&').collect();
    assert!(params.contains(&"fieldSelector=spec.nodeName%3Dn1"), "{}", seen[0].uri);
    assert!(params.contains(&"limit=500"), "{}", seen[0].uri);
}

#[tokio::test]
async fn disruption_budgets_convert_from_the_api_objects() {
    let server = ApiServer::start(|_| ok(PDB_LIST)).await;
    let pdbs = server.client().disruption_budgets().await.unwrap();
    assert_eq!(server.seen()[0].path(), "/apis/policy/v1/poddisruptionbudgets");
    assert_eq!(
        pdbs,
        vec![
            PdbInfo {
                namespace: "default".into(),
                name: "web".into(),
                selector: Some(LabelSelector {
                    match_labels: strings(&[("app", "web")]),
                    match_expressions: vec![
                        Requirement {
                            key: "tier".into(),
                            operator: "In".into(),
                            values: vec!["front".into(), "edge".into()]
                        },
                        Requirement { key: "canary".into(), operator: "DoesNotExist".into(), values: vec![] },
                    ],
                }),
                min_available: Some("80%".into()),
                max_unavailable: None,
                current_healthy: 5,
                desired_healthy: 4,
                disruptions_allowed: 1,
                expected_pods: 5,
            },
            PdbInfo {
                namespace: "kube-system".into(),
                name: "coredns".into(),
                selector: Some(LabelSelector {
                    match_labels: strings(&[("k8s-app", "kube-dns"), ("eks.amazonaws.com/component", "coredns")]),
                    match_expressions: vec![],
                }),
                min_available: None,
                max_unavailable: Some("1".into()),
                current_healthy: 2,
                desired_healthy: 1,
                disruptions_allowed: 1,
                expected_pods: 2,
            },
            PdbInfo {
                namespace: "batch".into(),
                name: "nothing".into(),
                selector: None,
                min_available: None,
                max_unavailable: Some("25%".into()),
                current_healthy: 0,
                desired_healthy: 0,
                disruptions_allowed: 0,
                expected_pods: 0,
            },
        ]
    );
}

fn node_page(names: &[&str], resource_version: &str, continue_token: Option<&str>) -> String {
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({ "metadata": { "name": n, "uid": format!("uid-{n}"), "resourceVersion": resource_version } }))
        .collect();
    let mut metadata = json!({ "resourceVersion": resource_version });
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(1);
    }
    json!({ "kind": "NodeList", "apiVersion": "v1", "metadata": metadata, "items": items }).to_string()
}

const CONTINUE: &str = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTMsInN0YXJ0IjoibjJcdTAwMDAifQ";

#[tokio::test]
async fn lists_are_read_page_by_page() {
    let server = ApiServer::start(|seen| {
        if seen.query().contains("continue=") {
            ok(&node_page(&["n3"], "48213", None))
        } else {
            ok(&node_page(&["n1", "n2"], "48213", Some(CONTINUE)))
        }
    })
    .await;
    let nodes = server.client().nodes().await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(!seen[0].query().contains("continue"), "{}", seen[0].uri);
    let second: Vec<&str> = seen[1].query().split('&').collect();
    assert!(second.contains(&format!("continue={CONTINUE}").as_str()), "{}", seen[1].uri);
    assert!(second.contains(&"limit=500"), "{}", seen[1].uri);
}

#[tokio::test]
async fn an_expired_continue_token_restarts_the_list_in_one_request() {
    let server = ApiServer::start(|seen| {
        if seen.query().contains("continue=") {
            status(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                json!({}),
            )
        } else if seen.query().contains("limit=") {
            ok(&node_page(&["n1", "n2"], "48213", Some(CONTINUE)))
        } else {
            ok(&node_page(&["n1", "n2", "n3", "n4"], "49000", None))
        }
    })
    .await;
    let nodes = server.client().nodes().await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3", "n4"]);
    assert_eq!(server.seen().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Writes.

#[tokio::test]
async fn patch_node_sends_one_merge_patch() {
    let server = ApiServer::start(|seen| ok(&node_json(seen.path().rsplit('/').next().unwrap()))).await;
    let client = server.client();
    let patch = NodePatch {
        unschedulable: Some(true),
        labels: [("drydock.dev/group".to_string(), Some("web-g2".to_string())), ("old".to_string(), None)].into(),
        annotations: [("drydock.dev/cordoned".to_string(), Some("true".to_string()))].into(),
        taints: Some(vec![
            Taint { key: OUTDATED_TAINT.into(), value: None, effect: "NoSchedule".into() },
            Taint { key: "dedicated".into(), value: Some("web".into()), effect: "NoExecute".into() },
        ]),
    };
    client.patch_node("ip-10-0-1-23.ec2.internal", &patch).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].path(), "/api/v1/nodes/ip-10-0-1-23.ec2.internal");
    assert_eq!(seen[0].content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(
        seen[0].json(),
        json!({
            "metadata": {
                "labels": { "drydock.dev/group": "web-g2", "old": null },
                "annotations": { "drydock.dev/cordoned": "true" }
            },
            "spec": {
                "unschedulable": true,
                "taints": [
                    { "key": "drydock.dev/outdated", "effect": "NoSchedule" },
                    { "key": "dedicated", "value": "web", "effect": "NoExecute" }
                ]
            }
        })
    );

    // Removing every taint is an empty list, not an absent one.
    let patch = NodePatch { taints: Some(vec![]), ..NodePatch::default() };
    client.patch_node("n1", &patch).await.unwrap();
    assert_eq!(server.seen()[1].json(), json!({ "spec": { "taints": [] } }));

    // An empty patch is no request.
    client.patch_node("n1", &NodePatch::default()).await.unwrap();
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn delete_pod_sends_its_uid_precondition_and_grace_period() {
    let server = ApiServer::start(|seen| match seen.path().rsplit('/').next().unwrap() {
        "gone" => status(404, "NotFound", "pods \"gone\" not found", json!({ "name": "gone", "kind": "pods" })),
        "replaced" => status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on Pod \"replaced\": Precondition failed: UID in precondition: 3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b, UID in object meta: 0a0b0c0d-0000-4000-8000-000000000000",
            json!({ "name": "replaced", "kind": "Pod" }),
        ),
        "denied" => status(403, "Forbidden", "pods \"denied\" is forbidden", json!({ "name": "denied", "kind": "pods" })),
        name => ok(&pod_json("default", name, "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b")),
    })
    .await;
    let client = server.client();
    client.delete_pod(&web_1(), 20).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].method, "DELETE");
    assert_eq!(seen[0].path(), "/api/v1/namespaces/default/pods/web-1");
    assert_eq!(
        seen[0].json(),
        json!({ "gracePeriodSeconds": 20, "preconditions": { "uid": "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b" } })
    );

    let pod = |name: &str| PodRef { name: name.into(), ..web_1() };
    client.delete_pod(&pod("gone"), 0).await.unwrap();
    client.delete_pod(&pod("replaced"), 0).await.unwrap();
    assert_eq!(server.seen()[1].json()["gracePeriodSeconds"], json!(0));
    let err = client.delete_pod(&pod("denied"), 0).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.starts_with("deleting pod default/denied on "), "{err}");
}

#[tokio::test]
async fn delete_node_treats_absent_as_done() {
    let server = ApiServer::start(|seen| match seen.path().rsplit('/').next().unwrap() {
        "gone" => status(404, "NotFound", "nodes \"gone\" not found", json!({ "name": "gone", "kind": "nodes" })),
        name => ok(&node_json(name)),
    })
    .await;
    let client = server.client();
    client.delete_node("ip-10-0-2-45.ec2.internal").await.unwrap();
    client.delete_node("gone").await.unwrap();
    let seen = server.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path()), ("DELETE", "/api/v1/nodes/ip-10-0-2-45.ec2.internal"));
    assert_eq!(seen.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Kubeconfig files.

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn two_contexts(staging: &str, prod: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: staging
  cluster:
    server: {staging}
- name: prod
  cluster:
    server: {prod}
users:
- name: staging-admin
  user:
    token: staging-token-0123456789abcdef
- name: prod-admin
  user:
    token: prod-token-fedcba9876543210
contexts:
- name: staging
  context:
    cluster: staging
    user: staging-admin
    namespace: web
- name: prod
  context:
    cluster: prod
    user: prod-admin
"#
    )
}

#[tokio::test]
async fn a_kubeconfig_context_is_picked_by_name() {
    let staging = ApiServer::start(|_| ok(&node_page(&["staging-1"], "1", None))).await;
    let prod = ApiServer::start(|_| ok(&node_page(&["prod-1"], "1", None))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    write(&path, &two_contexts(&staging.url, &prod.url));

    let client = KubeClient::from_kubeconfig(Some(&path), Some("prod")).unwrap();
    assert_eq!(client.describe(), format!("{} (context prod)", prod.url));
    assert_eq!(client.nodes().await.unwrap()[0].name, "prod-1");
    assert_eq!(prod.seen()[0].authorization.as_deref(), Some("Bearer prod-token-fedcba9876543210"));
    assert!(staging.seen().is_empty());

    // Without a name, the file's current-context.
    let client = KubeClient::from_kubeconfig(Some(&path), None).unwrap();
    assert_eq!(client.describe(), format!("{} (context staging)", staging.url));
    assert_eq!(client.nodes().await.unwrap()[0].name, "staging-1");
    assert_eq!(staging.seen()[0].authorization.as_deref(), Some("Bearer staging-token-0123456789abcdef"));
}

#[tokio::test]
async fn kubeconfig_problems_name_the_file_and_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    write(&path, &two_contexts("https://staging.example:6443", "https://prod.example:6443"));
    let file = path.display().to_string();

    let err = KubeClient::from_kubeconfig(Some(&path), Some("qa")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains(&file), "{err}");
    assert!(err.message.contains("no context \"qa\""), "{err}");
    assert!(err.message.contains("staging, prod"), "{err}");
    assert_no_token(&err, "staging-token-0123456789abcdef");
    assert_no_token(&err, "prod-token-fedcba9876543210");

    let missing = dir.path().join("absent");
    let err = KubeClient::from_kubeconfig(Some(&missing), Some("prod")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains(&missing.display().to_string()), "{err}");
    assert!(err.message.contains("(context prod)"), "{err}");
    assert!(err.message.contains("cannot read"), "{err}");

    // Bad YAML next to a token: the message says where, and quotes nothing of the file.
    let bad = dir.path().join("bad");
    write(
        &bad,
        "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: leaked-token-abcdefghijklmnopqrstuvwxyz0123456789\n    password: [unclosed\ncontexts: {\n",
    );
    let err = KubeClient::from_kubeconfig(Some(&bad), Some("prod")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains(&bad.display().to_string()), "{err}");
    assert!(err.message.contains("bad YAML"), "{err}");
    assert_no_token(&err, "leaked-token-abcdefghijklmnopqrstuvwxyz0123456789");
    assert!(!err.message.contains('\n'), "{err}");

    // A context whose cluster is not in the file.
    let dangling = dir.path().join("dangling");
    write(
        &dangling,
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: x\n  context:\n    cluster: nowhere\n    user: u\nusers: []\nclusters: []\n",
    );
    let err = KubeClient::from_kubeconfig(Some(&dangling), Some("x")).unwrap_err();
    assert!(err.message.contains("nowhere"), "{err}");
    assert!(err.message.contains("(context x)"), "{err}");
}

#[cfg(unix)]
fn plugin(dir: &Path, name: &str, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    write(&path, script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[cfg(unix)]
fn exec_kubeconfig(server: &str, command: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
current-context: eks
clusters:
- name: eks
  cluster:
    server: {server}
users:
- name: eks-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {command}
      args: ["token", "--cluster-name", "prod"]
      interactiveMode: Never
      installHint: install the credential helper first
contexts:
- name: eks
  context:
    cluster: eks
    user: eks-user
"#
    )
}

#[cfg(unix)]
#[tokio::test]
async fn an_exec_credential_plugin_supplies_the_token() {
    let server = ApiServer::start(|_| ok(NODE_LIST)).await;
    let dir = tempfile::tempdir().unwrap();
    let command = plugin(
        dir.path(),
        "credential-helper.sh",
        "#!/bin/sh\n\
         # kubectl's contract: the request in KUBERNETES_EXEC_INFO, the ExecCredential on stdout.\n\
         case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3 ;; esac\n\
         [ \"$1 $2 $3\" = \"token --cluster-name prod\" ] || exit 4\n\
         cat <<'EOF'\n\
         {\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\
         \"status\":{\"token\":\"exec-token-k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbQ\"}}\n\
         EOF\n",
    );
    let path = dir.path().join("config");
    write(&path, &exec_kubeconfig(&server.url, &command));
    let client = KubeClient::from_kubeconfig(Some(&path), None).unwrap();
    assert_eq!(client.describe(), format!("{} (context eks)", server.url));
    client.nodes().await.unwrap();
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some("Bearer exec-token-k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbQ")
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_failing_exec_plugin_is_an_auth_error_that_shows_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    // It prints a credential and fails: kube's own error would show stdout and the environment.
    let command = plugin(
        dir.path(),
        "expired.sh",
        "#!/bin/sh\necho '{\"status\":{\"token\":\"half-written-token-0123456789\"}}'\n\
         echo 'error: the SSO session has expired; run aws sso login' >&2\nexit 1\n",
    );
    let path = dir.path().join("config");
    write(&path, &exec_kubeconfig("https://eks.example:443", &command));
    let err = KubeClient::from_kubeconfig(Some(&path), Some("eks")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains(&path.display().to_string()), "{err}");
    assert!(err.message.contains("(context eks)"), "{err}");
    assert!(err.message.contains("the SSO session has expired"), "{err}");
    assert!(err.message.contains(&command), "{err}");
    assert_no_token(&err, "half-written-token-0123456789");
    assert!(!err.message.contains("KUBERNETES_EXEC_INFO"), "{err}");

    // A plugin that is not installed: the hint says what to do.
    write(&path, &exec_kubeconfig("https://eks.example:443", "/nonexistent/credential-helper"));
    let err = KubeClient::from_kubeconfig(Some(&path), None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("install the credential helper first"), "{err}");
}
