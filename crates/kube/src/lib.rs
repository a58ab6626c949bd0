//! drydock's one Kubernetes client: [`KubeClient`] implements the executor's
//! [`Kubernetes`] trait with kube-rs (`kube::Client`, `kube::Api`) and k8s-openapi's types, for
//! real clusters (a kubeconfig, exec credential plugins included), for the simulated cloud's
//! API server (a URL and a bearer token), and for clusters whose tokens expire (a URL, a CA and
//! a [`BearerToken`] source such as an EKS token's, renewed before they expire:
//! [`KubeClient::from_bearer`]); all go through the same kubeconfig code path.
//!
//! Eviction bodies are built here, by hand: kube 5.0.0's `Api::evict` serialises its delete
//! options as `delete_options` where the API expects `deleteOptions`, so the API server silently
//! drops the UID precondition and the grace period. `KubeClient`'s `evict` posts a policy/v1
//! `Eviction` through `Api::create_subresource` instead.
//!
//! The workspace builds k8s-openapi with `v1_33`, the earliest Kubernetes version it supports,
//! so that drydock relies on no field newer servers add. The APIs used here (Nodes, Pods,
//! Eviction and PodDisruptionBudgets in policy/v1) are GA since Kubernetes 1.21 and unchanged
//! since.
//!
//! kube's client-side retries are off: a 429 from the Eviction API is an answer (a disruption
//! budget said no), and throttling and unavailability are reported as `ErrorKind::Throttled` and
//! `ErrorKind::Unavailable` for the executor to retry on its own schedule.

mod bearer;
mod convert;
mod errors;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use drydock_provider::kube::{BearerToken, Eviction, NodeInfo, NodePatch, PdbInfo, PodInfo, PodRef};
use drydock_provider::{ErrorKind, Kubernetes, ProviderError};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use serde_json::{json, Value};

pub use crate::bearer::RENEW_BEFORE;
use crate::errors::{status_code, status_text, Target};

/// How long to wait for a TCP connection (and TLS handshake) to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the API server's answer once a request is written.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Items per list request; longer lists are read page by page (`continue`).
pub const PAGE_SIZE: u32 = 500;

/// A Kubernetes API server, through kube-rs.
#[derive(Clone)]
pub struct KubeClient {
    client: kube::Client,
    target: Target,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient").field("server", &self.target.describe).finish_non_exhaustive()
    }
}

impl KubeClient {
    /// A client for a kubeconfig's context: `path`, or kube's default search (`$KUBECONFIG`,
    /// then `~/.kube/config`); `context`, or the file's `current-context`. Exec credential
    /// plugins (`users[].user.exec`) run as kubectl runs them.
    ///
    /// Must be called within a Tokio runtime (kube's client spawns its dispatch task).
    pub fn from_kubeconfig(path: Option<&Path>, context: Option<&str>) -> Result<KubeClient, ProviderError> {
        let source = match path {
            Some(path) => path.display().to_string(),
            None => default_kubeconfig_source(),
        };
        let fail = |kind: ErrorKind, context: Option<&str>, detail: String| {
            let context = context.map(|c| format!(" (context {c})")).unwrap_or_default();
            ProviderError::new(kind, format!("loading kubeconfig {source}{context}: {detail}"))
        };
        let files: Vec<PathBuf> = match path {
            Some(path) => vec![path.to_path_buf()],
            None => default_kubeconfig_files(),
        };
        for file in &files {
            if let Some(why) = unreadable_kubeconfig(file) {
                let detail = if files.len() == 1 {
                    format!("cannot read it: {why}")
                } else {
                    format!("cannot read {}: {why}", file.display())
                };
                return Err(fail(ErrorKind::InvalidInput, context, detail));
            }
        }
        let read = match path {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        };
        let kubeconfig = read.map_err(|e| {
            let (kind, detail) = Target::default().explain(&kube::Error::InferKubeconfig(e));
            // "cannot read /x/config: …" repeats the source when it is the one file.
            let detail = match detail.strip_prefix(&format!("cannot read {source}: ")) {
                Some(rest) => format!("cannot read it: {rest}"),
                None => detail,
            };
            fail(kind, context, detail)
        })?;
        let Some(context) = context.map(str::to_string).or_else(|| kubeconfig.current_context.clone()) else {
            return Err(fail(
                ErrorKind::InvalidInput,
                None,
                "no current-context is set, and no context was named".to_string(),
            ));
        };
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
            let known =
                if known.is_empty() { "it has none".to_string() } else { format!("it has {}", known.join(", ")) };
            return Err(fail(ErrorKind::InvalidInput, Some(&context), format!("no context {context:?} ({known})")));
        }
        let label = format!("context {context}");
        KubeClient::build(kubeconfig, &context, label).map_err(|e| fail(e.kind, Some(&context), e.message))
    }

    /// A client for an API server by URL (`https://…`, or plain `http://127.0.0.1:PORT` as the
    /// simulated cloud serves) and bearer token; `label` names it in [`Kubernetes::describe`].
    /// Built as a one-context kubeconfig, so it takes exactly the path a kubeconfig file takes.
    ///
    /// Must be called within a Tokio runtime (kube's client spawns its dispatch task).
    pub fn from_endpoint(url: &str, token: &str, label: &str) -> Result<KubeClient, ProviderError> {
        let redact = Target { secrets: vec![token.to_string()], ..Target::default() };
        let fail = |kind: ErrorKind, detail: &str| {
            ProviderError::new(kind, redact.scrub(&format!("connecting to {url} ({label}): {detail}")))
        };
        let kubeconfig: Kubeconfig = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": label, "cluster": { "server": url } }],
            "users": [{ "name": label, "user": { "token": token } }],
            "contexts": [{ "name": label, "context": { "cluster": label, "user": label } }],
            "current-context": label,
        }))
        .map_err(|e| fail(ErrorKind::InvalidInput, &e.to_string()))?;
        KubeClient::build(kubeconfig, label, label.to_string()).map_err(|e| fail(e.kind, &e.message))
    }

    /// A client for an API server by URL whose bearer tokens expire (an EKS cluster's): each
    /// request carries `Authorization: Bearer <token>` from `source`, which is asked again once
    /// the token has less than [`RENEW_BEFORE`] left, so that a client used for hours keeps
    /// working. `ca_pem` is the cluster's certificate authority (PEM; `None`: the system's
    /// roots); `label` names it in [`Kubernetes::describe`]. Nothing is asked of `source` until
    /// the first request; a failure to get a token fails that request with the source's kind
    /// and message, and the next request asks again. kube's own retries are off, as for the
    /// other clients.
    ///
    /// Must be called within a Tokio runtime (kube's client spawns its dispatch task).
    pub fn from_bearer(
        url: &str,
        ca_pem: Option<&[u8]>,
        label: &str,
        source: Arc<dyn BearerToken>,
    ) -> Result<KubeClient, ProviderError> {
        let fail = |kind: ErrorKind, detail: &str| {
            ProviderError::new(kind, format!("connecting to {url} ({label}): {detail}"))
        };
        let mut cluster = json!({ "server": url });
        if let Some(pem) = ca_pem {
            // kube reads no certificate at all from a PEM torn before its end, without a word:
            // every TLS handshake would then fail later.
            let text = String::from_utf8_lossy(pem);
            let begin = text.find("-----BEGIN CERTIFICATE-----");
            if !begin.is_some_and(|b| text[b..].contains("-----END CERTIFICATE-----")) {
                return Err(fail(ErrorKind::InvalidInput, "the certificate authority holds no PEM certificate"));
            }
            cluster["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
        }
        let kubeconfig: Kubeconfig = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": label, "cluster": cluster }],
            "users": [{ "name": label, "user": {} }],
            "contexts": [{ "name": label, "context": { "cluster": label, "user": label } }],
            "current-context": label,
        }))
        .map_err(|e| fail(ErrorKind::InvalidInput, &e.to_string()))?;
        let (config, target) =
            KubeClient::config(kubeconfig, label, label.to_string()).map_err(|e| fail(e.kind, &e.message))?;
        let scrubbed = |e: kube::Error| {
            let (kind, detail) = target.explain(&e);
            fail(kind, &target.scrub(&detail))
        };
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(scrubbed)?
            .with_layer(&bearer::BearerLayer { source })
            .build();
        Ok(KubeClient { client, target })
    }

    /// The client for `context` of `kubeconfig` (which must have it), described as
    /// `SERVER (label)`. Errors carry only the detail; callers say what was being loaded.
    fn build(kubeconfig: Kubeconfig, context: &str, label: String) -> Result<KubeClient, ProviderError> {
        let (config, target) = KubeClient::config(kubeconfig, context, label)?;
        let client = kube::Client::try_from(config).map_err(|e| {
            let (kind, detail) = target.explain(&e);
            ProviderError::new(kind, target.scrub(&detail))
        })?;
        Ok(KubeClient { client, target })
    }

    /// kube's configuration for `context` of `kubeconfig` (timeouts set, retries off, no proxy
    /// for a loopback server), and what messages say about it.
    fn config(kubeconfig: Kubeconfig, context: &str, label: String) -> Result<(kube::Config, Target), ProviderError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ProviderError::other("a Kubernetes client must be created within a Tokio runtime"));
        }
        let named = kubeconfig.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.clone());
        let cluster = named.as_ref().and_then(|c| kubeconfig.clusters.iter().find(|n| n.name == c.cluster));
        let server = cluster.and_then(|c| c.cluster.as_ref()).and_then(|c| c.server.clone()).unwrap_or_default();
        let explicit_proxy =
            cluster.and_then(|c| c.cluster.as_ref()).and_then(|c| c.proxy_url.as_ref()).is_some_and(|p| !p.is_empty());
        let user = named
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .and_then(|u| kubeconfig.auth_infos.iter().find(|n| &n.name == u))
            .and_then(|n| n.auth_info.as_ref());
        let target = Target {
            describe: format!("{} ({label})", server.trim_end_matches('/')),
            secrets: user.map(secrets_of).unwrap_or_default(),
            plugin: user.and_then(|u| u.exec.as_ref()).map(|exec| {
                (exec.command.clone().unwrap_or_default(), exec.install_hint.clone().filter(|h| !h.trim().is_empty()))
            }),
        };
        let scrubbed = |e: kube::Error| {
            let (kind, detail) = target.explain(&e);
            ProviderError::new(kind, target.scrub(&detail))
        };

        let options = KubeConfigOptions { context: Some(context.to_string()), ..KubeConfigOptions::default() };
        let mut config = now(kube::Config::from_custom_kubeconfig(kubeconfig, &options))
            .ok_or_else(|| ProviderError::other("kube's configuration loader did not complete"))?
            .map_err(|e| scrubbed(kube::Error::InferKubeconfig(e)))?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        // Count the read timeout from when the request is written, not from when its pooled
        // connection went idle.
        config.reset_reader_on_write = true;
        config.default_retry = false;
        // As client-go (Go's ProxyFromEnvironment): a loopback server is never reached through
        // the environment's HTTPS_PROXY, only through a proxy-url the kubeconfig names.
        if !explicit_proxy && is_loopback(config.cluster_url.host()) {
            config.proxy_url = None;
        }
        Ok((config, target))
    }

    fn fail(&self, action: &str, err: kube::Error) -> ProviderError {
        self.target.fail(action, err)
    }
}

/// Where kube's default search reads a kubeconfig from, for messages.
/// The most bytes a kubeconfig may have (kubectl's own are a few KB, with certificates).
const MAX_KUBECONFIG_BYTES: u64 = 16 << 20;

/// Why the kubeconfig at `path` is not read at all: a directory, a device or a FIFO (which
/// would be read without end, or wait for a writer), or a file over the limit. A file that
/// does not exist is left to kube's own reading and its message.
fn unreadable_kubeconfig(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        Some("it is a directory".to_string())
    } else if !meta.is_file() {
        Some("it is not a regular file (a device, a pipe or a socket)".to_string())
    } else if meta.len() > MAX_KUBECONFIG_BYTES {
        Some(format!("it is larger than the limit of {} MiB", MAX_KUBECONFIG_BYTES >> 20))
    } else {
        None
    }
}

/// The files kube's default search reads: every path of `$KUBECONFIG`, or `~/.kube/config`.
fn default_kubeconfig_files() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(paths) => std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()).collect(),
        None => std::env::home_dir().map(|home| home.join(".kube").join("config")).into_iter().collect(),
    }
}

fn default_kubeconfig_source() -> String {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(paths) => format!("$KUBECONFIG ({})", paths.to_string_lossy()),
        None => match std::env::home_dir() {
            Some(home) => home.join(".kube").join("config").display().to_string(),
            None => "~/.kube/config".to_string(),
        },
    }
}

/// The credentials of a kubeconfig user, to keep out of messages.
fn secrets_of(user: &kube::config::AuthInfo) -> Vec<String> {
    // The typed fields hold `SecretString`s; their serialisation is the plain value.
    let Ok(Value::Object(fields)) = serde_json::to_value(user) else {
        return Vec::new();
    };
    ["token", "password", "client-key-data"]
        .iter()
        .filter_map(|k| fields.get(*k).and_then(Value::as_str))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn is_loopback(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The output of a future that completes without waiting (kube's kubeconfig loading is `async`
/// but does no I/O that suspends); `None` if it would wait.
fn now<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Every object of a list, page by page. A continue token that expired (410: the list took
/// longer than the server keeps its snapshot) restarts it in one request, as client-go's pager
/// does.
async fn list_all<K>(api: &Api<K>, params: ListParams) -> Result<Vec<K>, kube::Error>
where
    K: Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut page = params.clone().limit(PAGE_SIZE);
    loop {
        match api.list(&page).await {
            Ok(list) => {
                items.extend(list.items);
                match list.metadata.continue_ {
                    Some(token) if !token.is_empty() => page = page.continue_token(&token),
                    _ => return Ok(items),
                }
            }
            Err(kube::Error::Api(status)) if status_code(&status) == 410 && page.continue_token.is_some() => {
                return Ok(api.list(&params).await?.items);
            }
            Err(e) => return Err(e),
        }
    }
}

/// A grace period as the API takes it: seconds, not negative.
fn grace_seconds(grace_period_s: i64) -> u32 {
    u32::try_from(grace_period_s.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl Kubernetes for KubeClient {
    fn describe(&self) -> String {
        self.target.describe.clone()
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ProviderError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = list_all(&api, ListParams::default()).await.map_err(|e| self.fail("listing nodes", e))?;
        Ok(nodes.into_iter().map(convert::node_info).collect())
    }

    async fn pods(&self, node: Option<&str>) -> Result<Vec<PodInfo>, ProviderError> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let (params, action) = match node {
            Some(node) => {
                (ListParams::default().fields(&format!("spec.nodeName={node}")), format!("listing pods on node {node}"))
            }
            None => (ListParams::default(), "listing pods".to_string()),
        };
        let pods = list_all(&api, params).await.map_err(|e| self.fail(&action, e))?;
        Ok(pods.into_iter().map(convert::pod_info).collect())
    }

    async fn disruption_budgets(&self) -> Result<Vec<PdbInfo>, ProviderError> {
        let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
        let pdbs =
            list_all(&api, ListParams::default()).await.map_err(|e| self.fail("listing pod disruption budgets", e))?;
        Ok(pdbs.into_iter().map(convert::pdb_info).collect())
    }

    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<(), ProviderError> {
        if patch.is_empty() {
            return Ok(());
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let body = convert::node_merge_patch(patch);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|e| self.fail(&format!("patching node {name}"), e))?;
        Ok(())
    }

    async fn evict(&self, pod: &PodRef, grace_period_s: Option<i64>) -> Result<Eviction, ProviderError> {
        let action = format!("evicting pod {pod}");
        if pod.uid.is_empty() {
            return Err(ProviderError::invalid_input(format!("{action}: no UID to make the eviction's precondition")));
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let body = convert::eviction_body(pod, grace_period_s);
        match api.create_subresource::<Value, Status>("eviction", &pod.name, &PostParams::default(), &body).await {
            Ok(_) => Ok(Eviction::Evicted),
            // Only a 2xx answer gets as far as being parsed: whatever its body, the pod is going.
            Err(kube::Error::SerdeError(_)) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(status)) => match status_code(&status) {
                404 | 409 => Ok(Eviction::Gone),
                429 => Ok(Eviction::Blocked { message: status_text(&status) }),
                500 if status.message.contains("PodDisruptionBudget") => {
                    Ok(Eviction::Misconfigured { message: status_text(&status) })
                }
                _ => Err(self.fail(&action, kube::Error::Api(status))),
            },
            Err(e) => Err(self.fail(&action, e)),
        }
    }

    async fn delete_pod(&self, pod: &PodRef, grace_period_s: i64) -> Result<(), ProviderError> {
        let action = format!("deleting pod {pod}");
        if pod.uid.is_empty() {
            return Err(ProviderError::invalid_input(format!("{action}: no UID to make the deletion's precondition")));
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(grace_seconds(grace_period_s)),
            preconditions: Some(Preconditions { uid: Some(pod.uid.clone()), ..Preconditions::default() }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or replaced by another pod of the same name (the UID precondition failed).
            Err(kube::Error::Api(status)) if matches!(status_code(&status), 404 | 409) => Ok(()),
            Err(e) => Err(self.fail(&action, e)),
        }
    }

    async fn delete_node(&self, name: &str) -> Result<(), ProviderError> {
        let api: Api<Node> = Api::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status_code(&status) == 404 => Ok(()),
            Err(e) => Err(self.fail(&format!("deleting node {name}"), e)),
        }
    }
}
