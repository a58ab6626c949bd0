//! An etcd v3 client over etcd's gRPC JSON gateway: plain HTTP/1.1 and JSON on each member's
//! client URL (`POST /v3/cluster/member/list`, `/v3/maintenance/status`, …), so that drydock
//! builds with `cargo build` alone (the `etcd-client` crate needs `protoc`). It implements
//! [`drydock_provider::Etcd`], what a control-plane rollout and `watch` need, plus the calls a
//! joining member makes ([`EtcdClient::add_learner`], [`EtcdClient::promote`]), which the
//! simulated cloud uses to join its real etcd members as kubeadm does.
//!
//! # Endpoints
//!
//! A client starts from seed URLs (`https://10.0.0.1:2379`; a seed without a scheme gets
//! `https://` with TLS, `http://` without). Requests go to the endpoints it knows, in order,
//! until one answers; after every member list it knows the started members' client URLs plus
//! the seeds, so a client follows a control plane whose members are all replaced one by one.
//!
//! # TLS
//!
//! With [`EtcdTls`] the client trusts only the given CA (no system roots) and authenticates
//! with a client certificate, as kubeadm's `apiserver-etcd-client` and `healthcheck-client`
//! certificates are used. rustls on aws-lc-rs: no second crypto provider in the build.
//!
//! # Runtime
//!
//! Calls are async and need a tokio runtime (reqwest's); [`block_on`] runs one from sync code,
//! anywhere. A client keeps no connection between calls, so one client serves several
//! runtimes.
//!
//! # Errors and time
//!
//! Every call is bounded: 2 s to connect, 5 s per request, so a dead member is reported, not
//! waited on. Errors are [`ProviderError`]s naming the endpoint and carrying etcd's own
//! message; network failures, timeouts and etcd's `Unavailable` answers (no leader, leader
//! changed) are retryable kinds, everything else is not.

mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use drydock_provider::etcd::{EtcdAlarm, EtcdHealth, EtcdMember, MemberHealth};
use drydock_provider::{ErrorKind, Etcd, ProviderError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The environment variable naming the etcd binary to run (the simulated cloud's members and
/// the tests): see [`etcd_binary`].
pub const ETCD_BINARY_ENV: &str = "DRYDOCK_ETCD";
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`EtcdClient::promote`] keeps asking while the learner catches up with the leader.
pub const PROMOTE_TIMEOUT: Duration = Duration::from_secs(15);

/// The etcd binary: `$DRYDOCK_ETCD` if set (and not empty), else `etcd` on `PATH`, else
/// `/usr/bin/etcd`; `None` if none of them is a file.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ETCD_BINARY_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("etcd")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/bin/etcd")]).find(|p| p.is_file())
}

/// A command that runs the etcd binary at `binary` with a clean environment for it: no
/// `ETCD_*` variable of the caller's (etcd reads each as a flag), and `ETCD_UNSUPPORTED_ARCH`
/// on architectures other than amd64, which etcd 3.4 refuses to run on without it.
pub fn etcd_command(binary: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD_") {
            command.env_remove(name);
        }
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => None,
        "aarch64" => Some("arm64"),
        "x86" => Some("386"),
        "powerpc64" if cfg!(target_endian = "little") => Some("ppc64le"),
        "powerpc64" => Some("ppc64"),
        other => Some(other),
    };
    if let Some(arch) = arch {
        command.env("ETCD_UNSUPPORTED_ARCH", arch);
    }
    command
}

/// How to install etcd when [`etcd_binary`] finds none, for error messages.
pub const INSTALL_HINT: &str =
    "install etcd (Debian and Ubuntu: `apt-get install etcd-server`), put `etcd` on PATH, or \
                                set DRYDOCK_ETCD to the etcd binary";

/// Runs a future to completion on a fresh current-thread tokio runtime in a new thread, so
/// that sync code may call it anywhere, inside another runtime too (e.g. within
/// `spawn_blocking`), without blocking that runtime's own threads' reactors. A panic in the
/// future is the caller's panic. Panics only if the system refuses a thread or a runtime.
pub fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot build a tokio runtime for etcd calls: {e}"));
            runtime.block_on(f)
        });
        match worker.join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Client-certificate TLS, PEM-encoded: the CA that signed the members' serving certificates
/// (the only one trusted), and the client's certificate and private key.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for EtcdTls {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"(hidden)")
            .finish()
    }
}

/// An etcd cluster reached through its members' client URLs (see the crate docs).
pub struct EtcdClient {
    http: reqwest::Client,
    seeds: Vec<String>,
    /// The endpoints tried first: the started members' client URLs as last listed, then the
    /// seeds.
    known: Mutex<Vec<String>>,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient").field("endpoints", &self.endpoints()).finish()
    }
}

/// A member's answer to a status request: healthy or why not, and the leader it names (0:
/// none).
type Answer = (Result<(), String>, u64);

/// One look at the cluster: who listed, the members, their answers, and the leader.
struct Look {
    endpoint: String,
    members: Vec<EtcdMember>,
    statuses: BTreeMap<u64, Answer>,
    leader: Option<u64>,
}

/// Why one request failed.
#[derive(Debug)]
enum Failure {
    /// It never got an answer: connection refused, reset, timed out, TLS refused.
    Network { message: String, kind: ErrorKind },
    /// etcd answered with an error.
    Etcd { status: u16, code: Option<i64>, message: String },
    /// The answer was not what etcd sends.
    Answer(String),
}

impl Failure {
    fn is_network(&self) -> bool {
        matches!(self, Failure::Network { .. })
    }

    /// An answer about the member asked rather than the request: another member may do it.
    fn ask_another(&self) -> bool {
        match self {
            Failure::Etcd { code, message, .. } => *code == Some(14) || message.contains("not supported for learner"),
            _ => false,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Network { message, .. } | Failure::Etcd { message, .. } | Failure::Answer(message) => message,
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Network { kind, .. } => *kind,
            Failure::Etcd { status, code, .. } => match code {
                // gRPC status codes.
                Some(3) => ErrorKind::InvalidInput,
                Some(4 | 10 | 14) => ErrorKind::Unavailable,
                Some(5) => ErrorKind::NotFound,
                Some(6) => ErrorKind::AlreadyExists,
                Some(7 | 16) => ErrorKind::Auth,
                Some(8) => ErrorKind::Quota,
                Some(_) => ErrorKind::Other,
                None => match status {
                    401 | 403 => ErrorKind::Auth,
                    404 => ErrorKind::NotFound,
                    429 => ErrorKind::Throttled,
                    502..=504 => ErrorKind::Unavailable,
                    _ => ErrorKind::Other,
                },
            },
            Failure::Answer(_) => ErrorKind::Other,
        }
    }

    /// As a provider error about `endpoint`.
    fn at(&self, endpoint: &str) -> ProviderError {
        ProviderError::new(self.kind(), format!("etcd at {endpoint}: {}", self.message()))
    }
}

/// The lowercase, single-line text of an error and its causes, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    // reqwest's and hyper's outer texts say nothing the innermost does not (the caller names
    // the URL).
    if parts.len() > 1 {
        parts.retain(|p| !p.starts_with("error sending request") && p != "client error (Connect)");
    }
    parts.join(": ").replace('\n', " ")
}

fn network(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Network {
            message: format!(
                "timed out (at most {} s to connect, {} s to answer)",
                CONNECT_TIMEOUT.as_secs(),
                REQUEST_TIMEOUT.as_secs()
            ),
            kind: ErrorKind::Unavailable,
        };
    }
    let message = chain(e);
    let lower = message.to_ascii_lowercase();
    // A certificate etcd or this client refuses will be refused again: a person must act.
    let kind = if lower.contains("certificate") || lower.contains("handshake") || lower.contains("unknownca") {
        ErrorKind::Auth
    } else {
        ErrorKind::Unavailable
    };
    Failure::Network { message, kind }
}

/// `http://h:p` from `h:p` (or `https://` with TLS), without a trailing slash.
fn normalise(url: &str, tls: bool) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else if tls {
        format!("https://{url}")
    } else {
        format!("http://{url}")
    }
}

fn push_unique(list: &mut Vec<String>, url: &str) {
    if !url.is_empty() && !list.iter().any(|u| u == url) {
        list.push(url.to_string());
    }
}

fn id_text(id: u64) -> String {
    id.to_string()
}

impl EtcdClient {
    /// A client of the cluster reached at `seeds` (members' client URLs). With `tls`, only its
    /// CA is trusted and its certificate authenticates the client. No request is made yet.
    pub fn new(seeds: Vec<String>, tls: Option<EtcdTls>) -> Result<EtcdClient, ProviderError> {
        let with_tls = tls.is_some();
        let mut normalised = Vec::new();
        for seed in seeds.iter().filter(|s| !s.trim().is_empty()) {
            push_unique(&mut normalised, &normalise(seed, with_tls));
        }
        if normalised.is_empty() {
            return Err(ProviderError::invalid_input("no etcd endpoint given"));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Members are reached directly, never through a proxy of the environment.
            .no_proxy()
            // No idle connections kept: a connection belongs to the runtime that opened it, and
            // callers may use one client from several runtimes (`block_on` makes one per call).
            .pool_max_idle_per_host(0);
        if let Some(tls) = tls {
            let ca = reqwest::Certificate::from_pem_bundle(&tls.ca_pem)
                .map_err(|e| ProviderError::invalid_input(format!("the etcd CA certificate is not valid PEM: {e}")))?;
            if ca.is_empty() {
                return Err(ProviderError::invalid_input("the etcd CA bundle holds no certificate"));
            }
            let mut identity_pem = tls.cert_pem.clone();
            if !identity_pem.ends_with(b"\n") {
                identity_pem.push(b'\n');
            }
            identity_pem.extend_from_slice(&tls.key_pem);
            let identity = reqwest::Identity::from_pem(&identity_pem).map_err(|e| {
                ProviderError::invalid_input(format!(
                    "the etcd client certificate and key are not valid PEM: {}",
                    chain(&e)
                ))
            })?;
            builder = builder.tls_certs_only(ca).identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| ProviderError::invalid_input(format!("cannot build the etcd client: {}", chain(&e))))?;
        Ok(EtcdClient { http, known: Mutex::new(normalised.clone()), seeds: normalised })
    }

    /// The endpoints this client tries, in order: the started members' client URLs as last
    /// listed, then the seeds.
    pub fn endpoints(&self) -> Vec<String> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One request: `POST {endpoint}{path}` with a JSON body.
    async fn call<T: DeserializeOwned>(&self, endpoint: &str, path: &str, body: &Value) -> Result<T, Failure> {
        call(&self.http, endpoint, path, body).await
    }

    /// The same request to each endpoint in turn until one answers it: a network failure, a
    /// learner's refusal (a learner serves only status requests) and etcd's `Unavailable` (no
    /// leader as that member sees it) move on to the next endpoint; any other answer, an error
    /// included, is final. The endpoint and the answer, or every endpoint's failure.
    async fn call_any<T: DeserializeOwned>(
        &self,
        endpoints: &[String],
        path: &str,
        body: &Value,
    ) -> Result<(String, T), ProviderError> {
        let mut failures: Vec<(String, Failure)> = Vec::new();
        for endpoint in endpoints {
            match self.call(endpoint, path, body).await {
                Ok(answer) => return Ok((endpoint.clone(), answer)),
                Err(f) if f.is_network() || f.ask_another() => failures.push((endpoint.clone(), f)),
                Err(f) => return Err(f.at(endpoint)),
            }
        }
        Err(none_answered(failures))
    }

    /// Lists the members from the first endpoint that answers, and learns their client URLs.
    async fn list(&self) -> Result<(String, Vec<EtcdMember>), ProviderError> {
        let endpoints = self.endpoints();
        let (endpoint, list): (String, wire::MemberList) =
            self.call_any(&endpoints, "/v3/cluster/member/list", &json!({})).await?;
        let members: Vec<EtcdMember> = list.members.into_iter().map(EtcdMember::from).collect();
        self.learn(&members);
        Ok((endpoint, members))
    }

    /// Known endpoints become the started members' client URLs (voting members first: a
    /// learner serves only status requests), then the seeds.
    fn learn(&self, members: &[EtcdMember]) {
        let mut known = Vec::new();
        let voting = members.iter().filter(|m| !m.learner);
        for m in voting.chain(members.iter().filter(|m| m.learner)).filter(|m| m.started()) {
            for url in &m.client_urls {
                push_unique(&mut known, url.trim_end_matches('/'));
            }
        }
        for seed in &self.seeds {
            push_unique(&mut known, seed);
        }
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = known;
    }

    /// The members, as the first endpoint that answers lists them.
    pub async fn members(&self) -> Result<Vec<EtcdMember>, ProviderError> {
        Ok(self.list().await?.1)
    }

    /// Adds a learner (a non-voting member) whose peer URL is `peer_url`, as `kubeadm join`
    /// does before it starts the member: the new member (unstarted: no name yet), and the
    /// members after the change, from which the new member's `--initial-cluster` is built.
    pub async fn add_learner(&self, peer_url: &str) -> Result<(EtcdMember, Vec<EtcdMember>), ProviderError> {
        let endpoints = self.endpoints();
        let body = json!({"peerURLs": [peer_url], "isLearner": true});
        let (endpoint, added): (String, wire::MemberAdd) =
            self.call_any(&endpoints, "/v3/cluster/member/add", &body).await?;
        let Some(member) = added.member else {
            return Err(Failure::Answer("member/add answered without the new member".into()).at(&endpoint));
        };
        let members: Vec<EtcdMember> = added.members.into_iter().map(EtcdMember::from).collect();
        Ok((member.into(), members))
    }

    /// Promotes the learner `id` to a voting member. etcd refuses until the learner has caught
    /// up with the leader, so this asks again for up to [`PROMOTE_TIMEOUT`] while it says so
    /// (or while the cluster is briefly unavailable). A member that already votes is promoted
    /// already: `Ok`. An absent member is a `NotFound` error.
    pub async fn promote(&self, id: u64) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + PROMOTE_TIMEOUT;
        let body = json!({"ID": id_text(id)});
        loop {
            let endpoints = self.endpoints();
            let error = match self.call_any::<Value>(&endpoints, "/v3/cluster/member/promote", &body).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let in_sync = error.message.contains("in sync with leader");
            if !in_sync && error.message.contains("can only promote a learner member") {
                return Ok(());
            }
            if !(in_sync || error.is_retryable()) || tokio::time::Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks each started member (at each of its client URLs until one answers) for its status,
    /// all at once: per member id, whether it is healthy, why not, and whom it follows.
    async fn statuses(&self, members: &[EtcdMember]) -> BTreeMap<u64, Answer> {
        let mut tasks = tokio::task::JoinSet::new();
        for m in members.iter().filter(|m| m.started()) {
            let (http, id, urls) = (self.http.clone(), m.id, m.client_urls.clone());
            tasks.spawn(async move { (id, status_of(&http, id, &urls).await) });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((id, answer)) = joined {
                out.insert(id, answer);
            }
        }
        out
    }

    /// The alarms, from the first of `endpoints` that answers.
    async fn alarms(&self, endpoints: &[String]) -> Result<Vec<EtcdAlarm>, ProviderError> {
        let (_, answer): (String, wire::Alarms) =
            self.call_any(endpoints, "/v3/maintenance/alarm", &json!({"action": "GET"})).await?;
        Ok(answer
            .alarms
            .into_iter()
            .filter(|a| !a.alarm.is_empty() && a.alarm != "NONE")
            .map(|a| EtcdAlarm { member_id: a.member_id, alarm: a.alarm })
            .collect())
    }

    /// The members, their statuses and the leader most healthy members name.
    async fn look(&self) -> Result<Look, ProviderError> {
        let (endpoint, members) = self.list().await?;
        let statuses = self.statuses(&members).await;
        let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
        for m in &members {
            if let Some((Ok(()), leader)) = statuses.get(&m.id) {
                if *leader != 0 {
                    *votes.entry(*leader).or_default() += 1;
                }
            }
        }
        // The most named; ties to the lowest id, so that one look gives one answer.
        let leader = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(id, _)| *id);
        Ok(Look { endpoint, members, statuses, leader })
    }
}

/// One request: `POST {endpoint}{path}` with a JSON body.
async fn call<T: DeserializeOwned>(
    http: &reqwest::Client,
    endpoint: &str,
    path: &str,
    body: &Value,
) -> Result<T, Failure> {
    let response = http.post(format!("{endpoint}{path}")).json(body).send().await.map_err(|e| network(&e))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| network(&e))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Answer(format!("{path} answered with something other than etcd's JSON: {e}")));
    }
    match serde_json::from_slice::<wire::ErrorBody>(&bytes) {
        Ok(body) if !body.message.is_empty() || !body.error.is_empty() => {
            let message = if body.message.is_empty() { body.error } else { body.message };
            Err(Failure::Etcd { status, code: body.code, message })
        }
        _ => {
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text.trim().chars().take(200).collect();
            let message = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
            Err(Failure::Etcd { status, code: None, message })
        }
    }
}

/// One member's status at the first of its URLs that answers.
async fn status_of(http: &reqwest::Client, id: u64, urls: &[String]) -> Answer {
    if urls.is_empty() {
        return (Err("it has no client URL".to_string()), 0);
    }
    let mut failures = Vec::new();
    for url in urls {
        let url = url.trim_end_matches('/');
        match call::<wire::Status>(http, url, "/v3/maintenance/status", &json!({})).await {
            Ok(s) if s.header.member_id != 0 && s.header.member_id != id => {
                // Its address now belongs to another member (a port reused after it died).
                failures.push(format!("{url} answers as member {:x}", s.header.member_id));
            }
            Ok(s) if !s.errors.is_empty() => return (Err(format!("{url}: {}", s.errors.join("; "))), s.leader),
            Ok(s) => return (Ok(()), s.leader),
            Err(f) => failures.push(format!("{url}: {}", f.message())),
        }
    }
    (Err(failures.join("; ")), 0)
}

/// Every endpoint failed to answer: one error naming each, retryable if every failure was.
fn none_answered(failures: Vec<(String, Failure)>) -> ProviderError {
    if failures.is_empty() {
        return ProviderError::unavailable("no etcd endpoint to ask");
    }
    let kind = if failures.iter().all(|(_, f)| f.kind() == ErrorKind::Unavailable) {
        ErrorKind::Unavailable
    } else {
        failures.iter().map(|(_, f)| f.kind()).find(|k| *k != ErrorKind::Unavailable).unwrap_or(ErrorKind::Other)
    };
    let text: Vec<String> = failures.iter().map(|(e, f)| format!("{e}: {}", f.message())).collect();
    let message = if failures.len() == 1 {
        format!("etcd at {}", text[0])
    } else {
        format!("no etcd endpoint answers: {}", text.join("; "))
    };
    ProviderError::new(kind, message)
}

#[async_trait]
impl Etcd for EtcdClient {
    fn describe(&self) -> String {
        format!("etcd at {}", self.endpoints().join(", "))
    }

    /// Lists the members from the first endpoint that answers, asks every started member for
    /// its status (healthy: it answered, as itself, without errors) and reads the alarms. Alarms
    /// that cannot be read are reported as an `UNREADABLE` alarm of member 0, so that nothing
    /// decides on a look that could not see them.
    async fn health(&self) -> Result<EtcdHealth, ProviderError> {
        let Look { endpoint, members, statuses, leader } = self.look().await?;
        let mut health = EtcdHealth { members: Vec::new(), leader, alarms: Vec::new() };
        let mut answering = vec![endpoint];
        for m in members {
            let (healthy, error) = match statuses.get(&m.id) {
                Some((Ok(()), _)) => {
                    for url in &m.client_urls {
                        push_unique(&mut answering, url.trim_end_matches('/'));
                    }
                    (true, None)
                }
                Some((Err(e), _)) => (false, Some(e.clone())),
                None => (false, Some("it has not started".to_string())),
            };
            health.members.push(MemberHealth { member: m, healthy, error });
        }
        health.alarms = match self.alarms(&answering).await {
            Ok(alarms) => alarms,
            Err(e) => vec![EtcdAlarm { member_id: 0, alarm: format!("UNREADABLE ({})", e.message) }],
        };
        Ok(health)
    }

    async fn move_leader(&self, to: u64) -> Result<(), ProviderError> {
        let Look { members, leader, .. } = self.look().await?;
        let Some(target) = members.iter().find(|m| m.id == to) else {
            return Err(ProviderError::not_found(format!("{to:x} is not a member of {}", self.describe())));
        };
        if target.learner {
            return Err(ProviderError::invalid_input(format!("{} is a learner: it cannot lead", target.label())));
        }
        let Some(leader) = leader else {
            return Err(ProviderError::unavailable(format!("{} has no leader now", self.describe())));
        };
        if leader == to {
            return Ok(());
        }
        let urls: Vec<String> = members
            .iter()
            .find(|m| m.id == leader)
            .map(|m| m.client_urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect())
            .unwrap_or_default();
        if urls.is_empty() {
            return Err(ProviderError::unavailable(format!(
                "the leader {leader:x} of {} is not in its member list",
                self.describe()
            )));
        }
        self.call_any::<Value>(&urls, "/v3/maintenance/transfer-leadership", &json!({"targetID": id_text(to)}))
            .await
            .map(drop)
    }

    async fn remove_member(&self, id: u64) -> Result<bool, ProviderError> {
        let (endpoint, members) = self.list().await?;
        if !members.iter().any(|m| m.id == id) {
            return Ok(false);
        }
        // The other started members first, then the endpoint that listed (a seed or a load
        // balancer), the member being removed last: asked to remove itself, a member applies
        // the removal and stops before it answers, and the retry elsewhere would then find the
        // member gone and report it as never there.
        let own: Vec<&str> = members
            .iter()
            .filter(|m| m.id == id)
            .flat_map(|m| m.client_urls.iter())
            .map(|url| url.trim_end_matches('/'))
            .collect();
        let mut endpoints = Vec::new();
        for m in members.iter().filter(|m| m.started() && m.id != id) {
            for url in &m.client_urls {
                push_unique(&mut endpoints, url.trim_end_matches('/'));
            }
        }
        if !own.contains(&endpoint.as_str()) {
            push_unique(&mut endpoints, &endpoint);
        }
        for url in own {
            push_unique(&mut endpoints, url);
        }
        match self.call_any::<Value>(&endpoints, "/v3/cluster/member/remove", &json!({"ID": id_text(id)})).await {
            Ok(_) => {
                let rest: Vec<EtcdMember> = members.into_iter().filter(|m| m.id != id).collect();
                self.learn(&rest);
                Ok(true)
            }
            // Listed a moment ago and gone now: an earlier endpoint applied the removal and
            // its reply was lost. It was a member when this call began, so this call removed it.
            Err(e) if e.kind == ErrorKind::NotFound || e.message.contains("member not found") => {
                let rest: Vec<EtcdMember> = members.into_iter().filter(|m| m.id != id).collect();
                self.learn(&rest);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_get_a_scheme_and_lose_trailing_slashes() {
        assert_eq!(normalise("10.0.0.1:2379", true), "https://10.0.0.1:2379");
        assert_eq!(normalise(" 10.0.0.1:2379/ ", false), "http://10.0.0.1:2379");
        assert_eq!(normalise("https://a:1/", false), "https://a:1");
        let c = EtcdClient::new(vec!["a:1".into(), "http://a:1/".into(), "b:2".into()], None).unwrap();
        assert_eq!(c.endpoints(), ["http://a:1", "http://b:2"]);
        assert_eq!(c.describe(), "etcd at http://a:1, http://b:2");
    }

    #[test]
    fn no_seed_or_bad_pem_is_invalid_input() {
        assert_eq!(EtcdClient::new(vec![], None).unwrap_err().kind, ErrorKind::InvalidInput);
        assert_eq!(EtcdClient::new(vec!["  ".into()], None).unwrap_err().kind, ErrorKind::InvalidInput);
        let tls = EtcdTls { ca_pem: b"not pem".to_vec(), cert_pem: vec![], key_pem: vec![] };
        let e = EtcdClient::new(vec!["a:1".into()], Some(tls.clone())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
        let shown = format!("{:?}", EtcdTls { key_pem: b"SECRET KEY".to_vec(), ..tls });
        assert!(shown.contains("(hidden)") && !shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn grpc_codes_map_to_kinds() {
        let etcd = |code| Failure::Etcd { status: 400, code: Some(code), message: "m".into() };
        assert_eq!(etcd(5).kind(), ErrorKind::NotFound);
        assert_eq!(etcd(14).kind(), ErrorKind::Unavailable);
        assert_eq!(etcd(9).kind(), ErrorKind::Other);
        assert_eq!(etcd(16).kind(), ErrorKind::Auth);
        assert_eq!(etcd(8).kind(), ErrorKind::Quota);
        let http = |status| Failure::Etcd { status, code: None, message: "m".into() };
        assert_eq!(http(503).kind(), ErrorKind::Unavailable);
        assert_eq!(http(401).kind(), ErrorKind::Auth);
        let e = etcd(5).at("http://a:1");
        assert_eq!(e.message, "etcd at http://a:1: m");
    }

    #[test]
    fn block_on_works_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let n = rt.block_on(async { block_on(async { 41 + 1 }) });
        assert_eq!(n, 42);
    }
}
