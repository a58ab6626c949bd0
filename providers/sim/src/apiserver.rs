//! The simulated Kubernetes API server: real HTTP/1.1 on loopback, Kubernetes' JSON shapes and
//! status codes, one server per cluster, each request one locked read or change of the world
//! file (as every provider operation), so that other processes' changes are seen and the time is
//! the world's. The crate docs list the routes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::etcd::{Mirror, MIRROR_NAMESPACE};
use crate::kube::{ApiError, NodeChange, Pod, PodKey};
use crate::objects::{self, FieldReq, LabelReq};
use crate::store::{self, Cache, Settings};
use crate::world::{Failure, Op, Outcome, World};
use crate::SimError;

/// Where a simulated cluster's API server listens, and the bearer token it wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEndpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub token: String,
}

/// The largest request body accepted (the API server's own limit).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// What one server serves: one cluster of one world.
pub(crate) struct Server {
    pub cluster: String,
    pub token: String,
    pub path: Arc<PathBuf>,
    /// The provider's settings (taken on by the world as any provider operation does); `None`
    /// for [`serve`], which runs the world as it is.
    pub settings: Option<Arc<Settings>>,
    pub cache: Arc<Mutex<Cache>>,
}

/// A server task, stopped when this is dropped.
pub(crate) struct Running {
    pub endpoint: SimEndpoint,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// 16 random bytes from the system, as hex.
pub(crate) fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts a server on `127.0.0.1:0` as a task of the current tokio runtime.
pub(crate) fn start(server: Server) -> std::io::Result<Running> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| std::io::Error::other(format!("the simulated API server needs a tokio runtime: {e}")))?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let endpoint = SimEndpoint { url: format!("http://{}", listener.local_addr()?), token: server.token.clone() };
    let server = Arc::new(server);
    // The listener joins the runtime inside the task: a runtime without I/O fails the task,
    // not the caller.
    let task = runtime.spawn(async move {
        if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
            accept(listener, server).await;
        }
    });
    Ok(Running { endpoint, task })
}

/// Serves connections until dropped (the connections with it).
async fn accept(listener: tokio::net::TcpListener, server: Arc<Server>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let server = server.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(handle(server, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // The timer gives the header read timeout (30 s) its effect: a client that
                    // connects and says nothing does not hold a task forever.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(io, service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// An answer: status code and JSON body.
struct Reply {
    code: u16,
    body: Vec<u8>,
    allow: Option<&'static str>,
}

impl Reply {
    fn json(code: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply { code, body, allow: None },
            Err(e) => Reply::error(&ApiError::new(500, "InternalError", format!("cannot serialise: {e}"))),
        }
    }

    fn error(e: &ApiError) -> Reply {
        let body = serde_json::to_vec(&objects::failure(e)).unwrap_or_default();
        Reply { code: e.code, body, allow: None }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(allow) = self.allow {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "BadRequest", message)
}

/// What a list request asks for.
#[derive(Clone, Debug, Default)]
struct ListQuery {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
    limit: Option<usize>,
    /// The key of the last item of the previous page.
    after: Option<String>,
}

/// A request, routed and parsed.
#[derive(Clone, Debug)]
enum Call {
    Version,
    ListNodes(ListQuery),
    GetNode(String),
    PatchNode(String, NodeChange),
    DeleteNode(String),
    ListPods(Option<String>, ListQuery),
    GetPod(String, String),
    DeletePod { namespace: String, name: String, uid: Option<String>, grace_s: Option<u64> },
    Evict { namespace: String, name: String, uid: Option<String>, grace_s: Option<u64> },
    ListPdbs(Option<String>, ListQuery),
    GetPdb(String, String),
}

impl Call {
    fn op(&self, cluster: &str) -> Option<Op> {
        let cluster = cluster.to_string();
        match self.clone() {
            Call::PatchNode(name, change) => Some(Op::PatchNode { cluster, name, change }),
            Call::DeleteNode(name) => Some(Op::DeleteNode { cluster, name }),
            Call::DeletePod { namespace, name, uid, grace_s } => {
                Some(Op::DeletePod { cluster, namespace, name, uid, grace_s })
            }
            Call::Evict { namespace, name, uid, grace_s } => {
                Some(Op::EvictPod { cluster, namespace, name, uid, grace_s })
            }
            _ => None,
        }
    }
}

async fn handle(server: Arc<Server>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let public = matches!(path.as_str(), "/version" | "/healthz" | "/livez" | "/readyz");
    if !public && !authorized(parts.headers.get(AUTHORIZATION), &server.token) {
        return Reply::error(&ApiError::new(401, "Unauthorized", "Unauthorized")).into_response();
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let e = ApiError::new(413, "RequestEntityTooLarge", "the request is too large or could not be read");
            return Reply::error(&e).into_response();
        }
    };
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Reply { code: 200, body: b"ok".to_vec(), allow: None }.into_response();
    }
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let call = match route(&parts.method, &path, parts.uri.query().unwrap_or(""), content_type.as_deref(), &body) {
        Ok(call) => call,
        Err(reply) => return reply.into_response(),
    };
    execute(server, call).await.into_response()
}

/// Compares the bearer token in constant time.
fn authorized(header: Option<&HeaderValue>, token: &str) -> bool {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    let given = given.trim().as_bytes();
    scheme.eq_ignore_ascii_case("bearer")
        && given.len() == token.len()
        && given.iter().zip(token.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Percent-decoding (and `+` as a space, in queries).
fn decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k, true), decode(v, true)),
            None => (decode(p, true), String::new()),
        })
        .collect()
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = Reply::error(&ApiError::new(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    ));
    reply.allow = Some(allow);
    reply
}

fn not_found_path() -> Reply {
    Reply::error(&ApiError::new(404, "NotFound", "the server could not find the requested resource"))
}

fn route(method: &Method, path: &str, query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Call, Reply> {
    let segments: Vec<String> = path.trim_matches('/').split('/').map(|s| decode(s, false)).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let params = query_params(query);
    let only = |allowed: &[Method], allow: &'static str| -> Result<(), Reply> {
        if allowed.contains(method) {
            Ok(())
        } else {
            Err(method_not_allowed(allow))
        }
    };
    let list = |fields: &[&str]| list_query(&params, fields).map_err(|e| Reply::error(&e));
    let node_fields: &[&str] = &["metadata.name", "spec.unschedulable"];
    let pod_fields: &[&str] = &["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"];
    let pdb_fields: &[&str] = &["metadata.name", "metadata.namespace"];
    match segments.as_slice() {
        ["version"] => {
            only(&[Method::GET], "GET")?;
            Ok(Call::Version)
        }
        ["api", "v1", "nodes"] => {
            only(&[Method::GET], "GET")?;
            Ok(Call::ListNodes(list(node_fields)?))
        }
        ["api", "v1", "nodes", name] if !name.is_empty() => {
            let name = name.to_string();
            match *method {
                Method::GET => Ok(Call::GetNode(name)),
                Method::PATCH => {
                    let change = node_patch(&name, content_type, body).map_err(|e| Reply::error(&e))?;
                    Ok(Call::PatchNode(name, change))
                }
                Method::DELETE => Ok(Call::DeleteNode(name)),
                _ => Err(method_not_allowed("GET, PATCH, DELETE")),
            }
        }
        ["api", "v1", "pods"] => {
            only(&[Method::GET], "GET")?;
            Ok(Call::ListPods(None, list(pod_fields)?))
        }
        ["api", "v1", "namespaces", ns, "pods"] if !ns.is_empty() => {
            only(&[Method::GET], "GET")?;
            Ok(Call::ListPods(Some(ns.to_string()), list(pod_fields)?))
        }
        ["api", "v1", "namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
            let (namespace, name) = (ns.to_string(), name.to_string());
            match *method {
                Method::GET => Ok(Call::GetPod(namespace, name)),
                Method::DELETE => {
                    let value = json_body(body).map_err(|e| Reply::error(&e))?;
                    let (uid, mut grace_s) = delete_options(&value).map_err(|e| Reply::error(&e))?;
                    if grace_s.is_none() {
                        if let Some(g) = params.get("gracePeriodSeconds") {
                            let g: i64 = g
                                .parse()
                                .map_err(|_| Reply::error(&bad_request("gracePeriodSeconds must be an integer")))?;
                            grace_s = Some(non_negative(g));
                        }
                    }
                    if params.contains_key("dryRun") {
                        return Err(Reply::error(&bad_request("dryRun is not supported by the simulated API server")));
                    }
                    Ok(Call::DeletePod { namespace, name, uid, grace_s })
                }
                _ => Err(method_not_allowed("GET, DELETE")),
            }
        }
        ["api", "v1", "namespaces", ns, "pods", name, "eviction"] if !ns.is_empty() && !name.is_empty() => {
            only(&[Method::POST], "POST")?;
            let value = json_body(body).map_err(|e| Reply::error(&e))?;
            if let Some(given) = value.pointer("/metadata/name").and_then(Value::as_str) {
                if given != *name {
                    return Err(Reply::error(&bad_request("name in URL does not match name in Eviction object")));
                }
            }
            if params.contains_key("dryRun") {
                return Err(Reply::error(&bad_request("dryRun is not supported by the simulated API server")));
            }
            // Only `deleteOptions`: the API server ignores fields it does not know.
            let options = value.get("deleteOptions").cloned().unwrap_or(Value::Null);
            let (uid, grace_s) = delete_options(&options).map_err(|e| Reply::error(&e))?;
            Ok(Call::Evict { namespace: ns.to_string(), name: name.to_string(), uid, grace_s })
        }
        ["apis", "policy", "v1", "poddisruptionbudgets"] => {
            only(&[Method::GET], "GET")?;
            Ok(Call::ListPdbs(None, list(pdb_fields)?))
        }
        ["apis", "policy", "v1", "namespaces", ns, "poddisruptionbudgets"] if !ns.is_empty() => {
            only(&[Method::GET], "GET")?;
            Ok(Call::ListPdbs(Some(ns.to_string()), list(pdb_fields)?))
        }
        ["apis", "policy", "v1", "namespaces", ns, "poddisruptionbudgets", name]
            if !ns.is_empty() && !name.is_empty() =>
        {
            only(&[Method::GET], "GET")?;
            Ok(Call::GetPdb(ns.to_string(), name.to_string()))
        }
        _ => Err(not_found_path()),
    }
}

/// Negative grace periods count as one second, as the API server's delete path has them.
fn non_negative(grace: i64) -> u64 {
    u64::try_from(grace).unwrap_or(1)
}

fn list_query(params: &BTreeMap<String, String>, fields: &[&str]) -> Result<ListQuery, ApiError> {
    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
        // Refused rather than answered with a list, which a watcher would misread.
        return Err(bad_request("watch is not supported by the simulated API server: list and poll"));
    }
    let mut q = ListQuery::default();
    if let Some(s) = params.get("labelSelector") {
        q.labels = objects::parse_label_selector(s).map_err(bad_request)?;
    }
    if let Some(s) = params.get("fieldSelector") {
        q.fields = objects::parse_field_selector(s, fields).map_err(bad_request)?;
    }
    if let Some(l) = params.get("limit").filter(|l| !l.is_empty()) {
        let limit: i64 = l.parse().map_err(|_| bad_request(format!("invalid limit {l:?}")))?;
        q.limit = usize::try_from(limit).ok().filter(|l| *l > 0);
    }
    if let Some(token) = params.get("continue").filter(|t| !t.is_empty()) {
        q.after = Some(decode_continue(token).ok_or_else(|| bad_request("continue key is not valid"))?);
    }
    Ok(q)
}

fn encode_continue(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("the body of the request is not valid JSON: {e}")))
}

/// `DeleteOptions`: the uid precondition and the grace period.
fn delete_options(v: &Value) -> Result<(Option<String>, Option<u64>), ApiError> {
    let obj = match v {
        Value::Null => return Ok((None, None)),
        Value::Object(o) => o,
        _ => return Err(bad_request("DeleteOptions must be a JSON object")),
    };
    if obj.get("dryRun").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Err(bad_request("dryRun is not supported by the simulated API server"));
    }
    let uid = match obj.get("preconditions").and_then(|p| p.get("uid")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad_request("preconditions.uid must be a string")),
    };
    let grace = match obj.get("gracePeriodSeconds") {
        None | Some(Value::Null) => None,
        Some(g) => Some(non_negative(g.as_i64().ok_or_else(|| bad_request("gracePeriodSeconds must be an integer"))?)),
    };
    Ok((uid, grace))
}

/// A merge patch (or a strategic merge patch, which is the same for what a node's patch
/// touches) of a node's labels, annotations, `spec.unschedulable` and `spec.taints`.
fn node_patch(name: &str, content_type: Option<&str>, body: &[u8]) -> Result<NodeChange, ApiError> {
    let media = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/merge-patch+json" | "application/strategic-merge-patch+json") => {}
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/merge-patch+json, application/strategic-merge-patch+json (got {})",
                    other.unwrap_or("none")
                ),
            ))
        }
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("the patch is not valid JSON: {e}")))?;
    let Value::Object(patch) = value else {
        return Err(bad_request("the patch must be a JSON object"));
    };
    let mut change = NodeChange::default();
    let strings = |v: &Value, what: &str| -> Result<(bool, BTreeMap<String, Option<String>>), ApiError> {
        match v {
            Value::Null => Ok((true, BTreeMap::new())),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    if k.starts_with('$') {
                        continue;
                    }
                    match v {
                        Value::String(s) => out.insert(k.clone(), Some(s.clone())),
                        Value::Null => out.insert(k.clone(), None),
                        _ => return Err(bad_request(format!("metadata.{what}.{k} must be a string or null"))),
                    };
                }
                Ok((false, out))
            }
            _ => Err(bad_request(format!("metadata.{what} must be an object or null"))),
        }
    };
    if let Some(meta) = patch.get("metadata").and_then(Value::as_object) {
        if let Some(labels) = meta.get("labels") {
            (change.clear_labels, change.labels) = strings(labels, "labels")?;
        }
        if let Some(annotations) = meta.get("annotations") {
            (change.clear_annotations, change.annotations) = strings(annotations, "annotations")?;
        }
        match meta.get("resourceVersion") {
            None | Some(Value::Null) => {}
            Some(Value::String(rv)) => change.resource_version = Some(rv.clone()),
            Some(_) => return Err(bad_request("metadata.resourceVersion must be a string")),
        }
    }
    if let Some(spec) = patch.get("spec").and_then(Value::as_object) {
        match spec.get("unschedulable") {
            None => {}
            Some(Value::Null) => change.unschedulable = Some(false),
            Some(Value::Bool(b)) => change.unschedulable = Some(*b),
            Some(_) => return Err(bad_request("spec.unschedulable must be a boolean")),
        }
        match spec.get("taints") {
            None => {}
            Some(Value::Null) => change.taints = Some(Vec::new()),
            Some(Value::Array(items)) => {
                let mut taints = Vec::new();
                for (k, item) in items.iter().enumerate() {
                    let field = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
                    let invalid = |detail: String| ApiError {
                        details: Some(("Node", name.to_string())),
                        ..ApiError::new(
                            422,
                            "Invalid",
                            format!("Node \"{name}\" is invalid: spec.taints[{k}].{detail}"),
                        )
                    };
                    let key =
                        field("key").filter(|k| !k.is_empty()).ok_or_else(|| invalid("key: Required value".into()))?;
                    let effect = field("effect").unwrap_or_default();
                    if !matches!(effect.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                        return Err(invalid(format!(
                            "effect: Unsupported value: \"{effect}\": supported values: \"NoSchedule\", \
                             \"PreferNoSchedule\", \"NoExecute\""
                        )));
                    }
                    taints.push(drydock_provider::kube::Taint { key, value: field("value"), effect });
                }
                change.taints = Some(taints);
            }
            Some(_) => return Err(bad_request("spec.taints must be a list")),
        }
    }
    Ok(change)
}

/// Runs a call against the world, under its lock, on tokio's blocking pool.
async fn execute(server: Arc<Server>, call: Call) -> Reply {
    let op = call.op(&server.cluster);
    let (path, settings, cache, cluster) =
        (server.path.clone(), server.settings.clone(), server.cache.clone(), server.cluster.clone());
    let result = tokio::task::spawn_blocking(move || {
        store::update(&path, &mut store::lock_cache(&cache), settings.as_deref(), op, |world, outcome| {
            respond(world, &cluster, call, outcome)
        })
    })
    .await;
    match result {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => unavailable(&e),
        Err(e) => Reply::error(&ApiError::new(500, "InternalError", format!("the request failed: {e}"))),
    }
}

fn unavailable(e: &SimError) -> Reply {
    Reply::error(&ApiError::new(
        503,
        "ServiceUnavailable",
        format!("the simulated cluster's world cannot be read: {e}"),
    ))
}

fn respond(w: &World, cluster: &str, call: Call, outcome: Result<Outcome, Failure>) -> Reply {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Failure::Kube(e)) => return Reply::error(&e),
        Err(Failure::Sim(e)) => return unavailable(&e),
        Err(Failure::Provider(e)) => return Reply::error(&ApiError::new(500, "InternalError", e.to_string())),
    };
    let c = w.kube.clusters.get(cluster);
    let revision = w.kube.revision.to_string();
    let now = w.now_ms;
    let host_ip = |node: Option<&String>| node.and_then(|n| c?.nodes.get(n)).map(|n| n.ip.clone());
    match call {
        Call::Version => Reply::json(
            200,
            &serde_json::json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0-drydock-sim", "gitCommit": "",
                "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "",
                "compiler": "rustc", "platform": "linux/amd64"
            }),
        ),
        Call::ListNodes(q) => {
            let items = c.into_iter().flat_map(|c| c.nodes.values()).filter(|n| {
                objects::labels_match(&q.labels, &n.labels)
                    && objects::fields_match(&q.fields, |f| match f {
                        "metadata.name" => n.name.clone(),
                        _ => n.unschedulable.to_string(),
                    })
            });
            let page = paginate(items.map(|n| (n.name.clone(), n)), &q);
            let list = k8s_openapi::List {
                items: page.items.iter().map(|n| objects::node(n, now, w.config.pods_per_node)).collect(),
                metadata: page.meta(revision),
            };
            Reply::json(200, &list)
        }
        Call::GetNode(name) => match c.and_then(|c| c.nodes.get(&name)) {
            Some(n) => Reply::json(200, &objects::node(n, now, w.config.pods_per_node)),
            None => Reply::error(&ApiError::not_found("nodes", &name)),
        },
        Call::PatchNode(..) | Call::DeleteNode(_) => match outcome {
            Outcome::Node(n) => Reply::json(200, &objects::node(&n, now, w.config.pods_per_node)),
            _ => Reply::error(&ApiError::new(500, "InternalError", "unexpected outcome")),
        },
        Call::ListPods(ns, q) => {
            let mirrors = w.etcd_mirrors(cluster);
            let stored = c.into_iter().flat_map(|c| c.pods.values()).map(Listed::Stored);
            let items = stored.chain(mirrors.iter().map(Listed::Mirror)).filter(|p| {
                ns.as_ref().is_none_or(|ns| ns == p.namespace())
                    && objects::labels_match(&q.labels, p.labels())
                    && objects::fields_match(&q.fields, |f| match f {
                        "metadata.name" => p.name().to_string(),
                        "metadata.namespace" => p.namespace().to_string(),
                        "spec.nodeName" => p.node().unwrap_or_default().to_string(),
                        _ => p.phase().to_string(),
                    })
            });
            let page = paginate(items.map(|p| (format!("{}/{}", p.namespace(), p.name()), p)), &q);
            let list = k8s_openapi::List {
                items: page
                    .items
                    .iter()
                    .map(|p| match p {
                        Listed::Stored(p) => objects::pod(p, cluster, host_ip(p.node.as_ref()).as_deref()),
                        Listed::Mirror(m) => objects::mirror_pod(m, cluster),
                    })
                    .collect(),
                metadata: page.meta(revision),
            };
            Reply::json(200, &list)
        }
        Call::GetPod(ns, name) => {
            let key: PodKey = (ns, name.clone());
            match c.and_then(|c| c.pods.get(&key)) {
                Some(p) => Reply::json(200, &objects::pod(p, cluster, host_ip(p.node.as_ref()).as_deref())),
                None => match w.etcd_mirrors(cluster).iter().find(|m| key.0 == MIRROR_NAMESPACE && m.name == key.1) {
                    Some(m) => Reply::json(200, &objects::mirror_pod(m, cluster)),
                    None => Reply::error(&ApiError::not_found("pods", &name)),
                },
            }
        }
        Call::DeletePod { .. } => match outcome {
            Outcome::Pod(p) => Reply::json(200, &objects::pod(&p, cluster, host_ip(p.node.as_ref()).as_deref())),
            _ => Reply::error(&ApiError::new(500, "InternalError", "unexpected outcome")),
        },
        Call::Evict { .. } => Reply::json(201, &objects::success(201)),
        Call::ListPdbs(ns, q) => {
            let items = c.into_iter().flat_map(|c| c.pdbs.values()).filter(|b| {
                ns.as_ref().is_none_or(|ns| *ns == b.namespace)
                    && objects::labels_match(&q.labels, &BTreeMap::new())
                    && objects::fields_match(&q.fields, |f| match f {
                        "metadata.name" => b.name.clone(),
                        _ => b.namespace.clone(),
                    })
            });
            let page = paginate(items.map(|b| (format!("{}/{}", b.namespace, b.name), b)), &q);
            let list = k8s_openapi::List {
                items: page
                    .items
                    .iter()
                    .map(|b| objects::pdb(b, w.kube.budget_status(cluster, b, &w.config.workloads), now))
                    .collect(),
                metadata: page.meta(revision),
            };
            Reply::json(200, &list)
        }
        Call::GetPdb(ns, name) => {
            let key: PodKey = (ns, name.clone());
            match c.and_then(|c| c.pdbs.get(&key)) {
                Some(b) => {
                    Reply::json(200, &objects::pdb(b, w.kube.budget_status(cluster, b, &w.config.workloads), now))
                }
                None => Reply::error(&ApiError::not_found("poddisruptionbudgets.policy", &name)),
            }
        }
    }
}

/// A pod a list shows: one the world stores, or the mirror pod of an etcd member.
enum Listed<'a> {
    Stored(&'a Pod),
    Mirror(&'a Mirror),
}

impl Listed<'_> {
    fn namespace(&self) -> &str {
        match self {
            Listed::Stored(p) => &p.namespace,
            Listed::Mirror(_) => MIRROR_NAMESPACE,
        }
    }

    fn name(&self) -> &str {
        match self {
            Listed::Stored(p) => &p.name,
            Listed::Mirror(m) => &m.name,
        }
    }

    fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            Listed::Stored(p) => &p.labels,
            Listed::Mirror(m) => &m.labels,
        }
    }

    fn node(&self) -> Option<&str> {
        match self {
            Listed::Stored(p) => p.node.as_deref(),
            Listed::Mirror(m) => Some(&m.node),
        }
    }

    fn phase(&self) -> &'static str {
        match self {
            Listed::Stored(p) => p.phase(),
            Listed::Mirror(_) => "Running",
        }
    }
}

/// One page of a list.
struct Page<T> {
    items: Vec<T>,
    /// The key of the last item, when more follow; and how many.
    more: Option<(String, usize)>,
}

impl<T> Page<T> {
    fn meta(&self, revision: String) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta {
            resource_version: Some(revision),
            continue_: self.more.as_ref().map(|(key, _)| encode_continue(key)),
            remaining_item_count: self.more.as_ref().map(|(_, n)| i64::try_from(*n).unwrap_or(i64::MAX)),
            self_link: None,
        }
    }
}

/// The items (keyed, in key order) after the continue key, up to the limit.
fn paginate<T>(items: impl Iterator<Item = (String, T)>, q: &ListQuery) -> Page<T> {
    let mut after: Vec<(String, T)> =
        items.filter(|(key, _)| q.after.as_ref().is_none_or(|a| key.as_str() > a.as_str())).collect();
    after.sort_by(|a, b| a.0.cmp(&b.0));
    match q.limit {
        Some(limit) if after.len() > limit => {
            let rest = after.len() - limit;
            after.truncate(limit);
            let last = after.last().map(|(k, _)| k.clone()).unwrap_or_default();
            Page { items: after.into_iter().map(|(_, t)| t).collect(), more: Some((last, rest)) }
        }
        _ => Page { items: after.into_iter().map(|(_, t)| t).collect(), more: None },
    }
}

/// Serves every cluster of the world at `world` (one server each on loopback, as
/// [`SimProvider::kubernetes`](crate::SimProvider::kubernetes) does) and writes a kubeconfig at
/// `kubeconfig` (0600) with a cluster, user and context named `sim-CLUSTER` for each, the first
/// cluster's the current context. The world runs on its own settings, as `drydock sim status`
/// reads it. Clusters that appear later (a group created in a new cluster) are served too, and
/// the kubeconfig rewritten. Runs until dropped; an error is a world that cannot be read or a
/// kubeconfig that cannot be written. Must run within a tokio runtime with I/O and time.
pub async fn serve(world: PathBuf, kubeconfig: PathBuf) -> Result<Infallible, SimError> {
    let path = Arc::new(world);
    let cache = Arc::new(Mutex::new(Cache::default()));
    let mut servers: BTreeMap<String, Running> = BTreeMap::new();
    let mut written = false;
    loop {
        let (p, c) = (path.clone(), cache.clone());
        let clusters = tokio::task::spawn_blocking(move || {
            store::peek(&p, &mut store::lock_cache(&c), |w| w.map(World::cluster_names).unwrap_or_default())
        })
        .await
        .map_err(|e| SimError::Worker(e.to_string()))??;
        let mut changed = !written;
        for cluster in clusters {
            if servers.get(&cluster).is_some_and(|s| !s.is_finished()) {
                continue;
            }
            let token = random_token().map_err(|e| SimError::io("read", "/dev/urandom", e))?;
            let server =
                Server { cluster: cluster.clone(), token, path: path.clone(), settings: None, cache: cache.clone() };
            let running = start(server).map_err(|e| SimError::io("listen on", "127.0.0.1", e))?;
            servers.insert(cluster, running);
            changed = true;
        }
        if changed {
            write_kubeconfig(&kubeconfig, &servers)?;
            written = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A kubeconfig (JSON, which is YAML too) for the API servers of the given clusters: for each
/// cluster `C`, a cluster, a user (its bearer token) and a context named `sim-C`; the current
/// context is the first cluster's. What [`serve`] writes; kube-rs and kubectl read it.
pub fn kubeconfig(endpoints: &BTreeMap<String, SimEndpoint>) -> String {
    let mut text = serde_json::to_string_pretty(&kubeconfig_json(endpoints)).unwrap_or_default();
    text.push('\n');
    text
}

fn kubeconfig_json(servers: &BTreeMap<String, SimEndpoint>) -> Value {
    let name = |cluster: &str| format!("sim-{cluster}");
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": servers.keys().next().map(|c| name(c)).unwrap_or_default(),
        "clusters": servers.iter().map(|(c, e)| serde_json::json!({"name": name(c), "cluster": {"server": e.url}})).collect::<Vec<_>>(),
        "users": servers.iter().map(|(c, e)| serde_json::json!({"name": name(c), "user": {"token": e.token}})).collect::<Vec<_>>(),
        "contexts": servers.keys().map(|c| serde_json::json!({"name": name(c), "context": {"cluster": name(c), "user": name(c)}})).collect::<Vec<_>>(),
    })
}

fn write_kubeconfig(path: &Path, servers: &BTreeMap<String, Running>) -> Result<(), SimError> {
    let endpoints = servers.iter().map(|(c, r)| (c.clone(), r.endpoint.clone())).collect();
    let bytes = kubeconfig(&endpoints).into_bytes();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SimError::io("create directory", dir, e))?;
    }
    drydock_fsutil::write_atomically(path, &bytes, 0o600).map_err(|e| SimError::io(e.step.action(), e.path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do() {
        assert_eq!(decode("spec.nodeName%3Dip-10-0-0-1.sim.internal", true), "spec.nodeName=ip-10-0-0-1.sim.internal");
        assert_eq!(decode("a+b%2Cc", true), "a b,c");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%zz%4", true), "%zz%4");
        let params = query_params("fieldSelector=spec.nodeName%3Dn1&limit=2&continue=");
        assert_eq!(params["fieldSelector"], "spec.nodeName=n1");
        assert_eq!(params["limit"], "2");
    }

    #[test]
    fn continue_tokens_round_trip_and_garbage_is_refused() {
        let token = encode_continue("default/web-0");
        assert_eq!(decode_continue(&token).as_deref(), Some("default/web-0"));
        assert_eq!(decode_continue("abc"), None);
        assert_eq!(decode_continue("zz"), None);
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(authorized(Some(&header("Bearer abc")), "abc"));
        assert!(authorized(Some(&header("bearer abc")), "abc"));
        assert!(!authorized(Some(&header("Bearer abd")), "abc"));
        assert!(!authorized(Some(&header("Bearer ab")), "abc"));
        assert!(!authorized(Some(&header("Basic abc")), "abc"));
        assert!(!authorized(None, "abc"));
    }

    #[test]
    fn node_patches_parse_merge_patches_and_refuse_the_rest() {
        let merge = Some("application/merge-patch+json");
        let change = node_patch(
            "n1",
            merge,
            br#"{"metadata": {"labels": {"a": "1", "b": null}, "annotations": null}, "spec": {"unschedulable": true, "taints": [{"key": "k", "effect": "NoSchedule"}]}}"#,
        )
        .unwrap();
        assert_eq!(change.labels, BTreeMap::from([("a".into(), Some("1".into())), ("b".into(), None)]));
        assert!(change.clear_annotations && !change.clear_labels);
        assert_eq!(change.unschedulable, Some(true));
        assert_eq!(change.taints.unwrap()[0].key, "k");
        let spec_null = node_patch("n1", merge, br#"{"spec": {"unschedulable": null, "taints": null}}"#).unwrap();
        assert_eq!((spec_null.unschedulable, spec_null.taints), (Some(false), Some(vec![])));
        assert_eq!(node_patch("n1", Some("application/json-patch+json"), b"[]").unwrap_err().code, 415);
        assert_eq!(node_patch("n1", None, b"{}").unwrap_err().code, 415);
        assert_eq!(node_patch("n1", merge, b"{not json").unwrap_err().code, 400);
        assert_eq!(node_patch("n1", merge, b"[]").unwrap_err().code, 400);
        let bad = node_patch("n1", merge, br#"{"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}"#);
        assert_eq!(bad.unwrap_err().code, 422);
        let bad = node_patch("n1", merge, br#"{"metadata": {"labels": {"a": 1}}}"#);
        assert_eq!(bad.unwrap_err().code, 400);
    }

    #[test]
    fn delete_options_give_the_uid_and_grace_period() {
        let v: Value = serde_json::json!({"gracePeriodSeconds": 5, "preconditions": {"uid": "u1"}});
        assert_eq!(delete_options(&v).unwrap(), (Some("u1".into()), Some(5)));
        assert_eq!(delete_options(&serde_json::json!({"gracePeriodSeconds": -3})).unwrap(), (None, Some(1)));
        assert_eq!(delete_options(&Value::Null).unwrap(), (None, None));
        assert_eq!(delete_options(&serde_json::json!({"gracePeriodSeconds": "x"})).unwrap_err().code, 400);
        assert_eq!(delete_options(&serde_json::json!({"dryRun": ["All"]})).unwrap_err().code, 400);
    }

    #[test]
    fn routes_refuse_unknown_paths_and_wrong_methods() {
        let route = |m: Method, p: &str| route(&m, p, "", None, b"").map(|_| ()).map_err(|r| r.code);
        assert_eq!(route(Method::GET, "/api/v1/nodes"), Ok(()));
        assert_eq!(route(Method::POST, "/api/v1/nodes"), Err(405));
        assert_eq!(route(Method::GET, "/api/v1/secrets"), Err(404));
        assert_eq!(route(Method::GET, "/api/v1/namespaces/default/pods/web-0/eviction"), Err(405));
        assert_eq!(route(Method::GET, "/apis/policy/v1/namespaces/default/poddisruptionbudgets"), Ok(()));
        let bad = |q: &str| super::route(&Method::GET, "/api/v1/pods", q, None, b"").map(|_| ()).map_err(|r| r.code);
        assert_eq!(bad("fieldSelector=spec.bogus%3D1"), Err(400));
        assert_eq!(bad("limit=x"), Err(400));
        assert_eq!(bad("continue=zz"), Err(400));
        assert_eq!(bad("labelSelector=app%3Dweb&limit=1"), Ok(()));
    }
}
