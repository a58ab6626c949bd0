//! Real etcd members on loopback for the tests: free ports (bound to :0 and released), a
//! temporary directory per cluster, a small heartbeat and election timeout so that elections
//! take milliseconds, no strict reconfiguration check (which refuses member changes in a
//! cluster's first 5 s), and every process started killed (SIGKILL, by its handle) when the
//! cluster is dropped, a failing test included.
#![allow(dead_code)]

pub mod install;

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use drydock_etcd::EtcdClient;
use drydock_provider::etcd::EtcdHealth;
use drydock_provider::Etcd;

/// A free port on 127.0.0.1 (free when this returns: the listener is closed).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `within`; panics naming `what`
/// and the last thing `f` reported otherwise.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: not within {within:?}; last: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One member: its name, URLs, process, and directory.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Members of one cluster, killed when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub members: Vec<Member>,
    /// Extra flags for every member (TLS).
    extra: Vec<String>,
    scheme: &'static str,
}

impl Cluster {
    /// A new cluster of the named members, started at once (`--initial-cluster-state new`),
    /// once every member answers and one leads.
    pub async fn start(names: &[&str]) -> Cluster {
        Cluster::start_with(names, Vec::new(), "http").await
    }

    pub async fn start_with(names: &[&str], extra: Vec<String>, scheme: &'static str) -> Cluster {
        let mut cluster =
            Cluster { dir: tempfile::tempdir().expect("a temporary directory"), members: Vec::new(), extra, scheme };
        let ports: Vec<(String, String, String)> = names
            .iter()
            .map(|n| (n.to_string(), cluster.url(free_port()), format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let initial: Vec<String> = ports.iter().map(|(n, _, p)| format!("{n}={p}")).collect();
        for (name, client, peer) in &ports {
            cluster.spawn(name, client, peer, &initial.join(","), "new");
        }
        cluster.until_healthy(names.len()).await;
        cluster
    }

    fn url(&self, port: u16) -> String {
        format!("{}://127.0.0.1:{port}", self.scheme)
    }

    /// New client and peer URLs on free ports, for a member to be added.
    pub fn new_urls(&self) -> (String, String) {
        (self.url(free_port()), format!("http://127.0.0.1:{}", free_port()))
    }

    /// Starts a member process.
    pub fn spawn(&mut self, name: &str, client_url: &str, peer_url: &str, initial_cluster: &str, state: &str) {
        let binary = install::etcd_binary();
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("member directory");
        let log = std::fs::File::create(dir.join("etcd.log")).expect("member log");
        let child = drydock_etcd::etcd_command(&binary)
            .args(["--name", name, "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", client_url, "--advertise-client-urls", client_url])
            .args(["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url])
            .args(["--initial-cluster", initial_cluster, "--initial-cluster-state", state])
            .args([
                "--initial-cluster-token",
                "drydock-test",
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
            ])
            // etcd's strict reconfiguration check refuses any member change until every voting
            // member has been connected for 5 s; these tests change members at once.
            .arg("--strict-reconfig-check=false")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start etcd {}: {e}", binary.display()));
        self.members.push(Member {
            name: name.to_string(),
            client_url: client_url.to_string(),
            peer_url: peer_url.to_string(),
            dir,
            child: Some(child),
        });
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    /// Kills a member's process (SIGKILL) and waits for it.
    pub fn kill(&mut self, name: &str) {
        let m = self.members.iter_mut().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"));
        if let Some(mut child) = m.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the member's process has exited (by itself, or killed).
    pub fn exited(&mut self, name: &str) -> bool {
        let m = self.members.iter_mut().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"));
        match &mut m.child {
            None => true,
            Some(child) => child.try_wait().ok().flatten().is_some(),
        }
    }

    /// A plain-HTTP client seeded with the named member's URL.
    pub fn client_of(&self, name: &str) -> EtcdClient {
        EtcdClient::new(vec![self.member(name).client_url.clone()], None).expect("a client")
    }

    /// Waits until `n` members are listed, all started, voting and healthy, with a leader.
    pub async fn until_healthy(&self, n: usize) -> EtcdHealth {
        let client = EtcdClient::new(self.members.iter().map(|m| m.client_url.clone()).collect(), None);
        match client {
            Ok(client) if self.scheme == "http" => until_healthy(&client, n).await,
            // A TLS cluster: wait for the ports to listen, the test checks the rest.
            _ => {
                let ports: Vec<u16> = self
                    .members
                    .iter()
                    .filter_map(|m| m.client_url.rsplit(':').next().and_then(|p| p.parse().ok()))
                    .collect();
                eventually("TLS members listening", Duration::from_secs(30), || {
                    let ports = ports.clone();
                    async move {
                        for p in ports {
                            std::net::TcpStream::connect(("127.0.0.1", p)).map_err(|e| format!("{p}: {e}"))?;
                        }
                        Ok(())
                    }
                })
                .await;
                EtcdHealth::default()
            }
        }
    }
}

/// Waits until the client sees `n` members, all started, voting and healthy, with a leader.
pub async fn until_healthy(client: &EtcdClient, n: usize) -> EtcdHealth {
    eventually(&format!("{n} healthy voting members"), Duration::from_secs(30), || async {
        let h = client.health().await.map_err(|e| e.to_string())?;
        if h.members.len() == n && h.healthy_voting() == n && h.leader.is_some() && h.problems().is_empty() {
            Ok(h)
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the members' logs for whoever reads the failure.
            let kept = self.dir.path().to_path_buf();
            eprintln!("etcd logs kept in {}", kept.display());
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a temporary directory"));
            let _ = dir.keep();
        }
    }
}
