//! The Kubernetes APIs of a configuration's clusters: one client per cluster with a
//! `kubernetes` block, built from its kubeconfig (exec credential plugins included) or, for a
//! cluster on the simulated cloud without a kubeconfig, from the API server the sim serves on
//! loopback. The same client code (`drydock-kube`, on kube-rs) talks to both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drydock_config::{Model, ProviderSettings};
use drydock_plan::kube::KubeObserved;
use drydock_provider::kube::{Eviction, NodeInfo, NodePatch, PdbInfo, PodInfo, PodRef};
use drydock_provider::{Kubernetes, ProviderError};

/// Per cluster address, its Kubernetes API.
pub type Kubes = BTreeMap<String, Arc<dyn Kubernetes>>;

/// A client of the simulated cloud's API server, holding the provider that serves it (the
/// server lives as long as its provider).
struct SimKube {
    client: drydock_kube::KubeClient,
    _server: Arc<drydock_sim::SimProvider>,
}

#[drydock_provider::async_trait]
impl Kubernetes for SimKube {
    fn describe(&self) -> String {
        self.client.describe()
    }
    async fn nodes(&self) -> Result<Vec<NodeInfo>, ProviderError> {
        self.client.nodes().await
    }
    async fn pods(&self, node: Option<&str>) -> Result<Vec<PodInfo>, ProviderError> {
        self.client.pods(node).await
    }
    async fn disruption_budgets(&self) -> Result<Vec<PdbInfo>, ProviderError> {
        self.client.disruption_budgets().await
    }
    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<(), ProviderError> {
        self.client.patch_node(name, patch).await
    }
    async fn evict(&self, pod: &PodRef, grace_period_s: Option<i64>) -> Result<Eviction, ProviderError> {
        self.client.evict(pod, grace_period_s).await
    }
    async fn delete_pod(&self, pod: &PodRef, grace_period_s: i64) -> Result<(), ProviderError> {
        self.client.delete_pod(pod, grace_period_s).await
    }
    async fn delete_node(&self, name: &str) -> Result<(), ProviderError> {
        self.client.delete_node(name).await
    }
}

/// A kubeconfig path as written: `~/` is the home directory, a relative path is relative to
/// the configuration's directory.
fn resolve(path: &str, config_dir: &Path) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let p = PathBuf::from(path);
    if p.is_absolute() {
        p
    } else {
        config_dir.join(p)
    }
}

/// The clients of every cluster with a `kubernetes` block. Must run inside a tokio runtime
/// (the simulated cloud's API server is a task of it).
pub async fn clients(model: &Model, config_dir: &Path) -> Result<Kubes, String> {
    let mut out: Kubes = BTreeMap::new();
    for c in &model.clusters {
        let Some(access) = &c.kubernetes else { continue };
        let provider = model.providers.iter().find(|p| p.reference() == c.provider);
        let client: Arc<dyn Kubernetes> = match (&access.kubeconfig, provider.map(|p| &p.settings)) {
            (None, Some(ProviderSettings::Sim(s))) => {
                let mode = drydock_sim::ClockMode::from_env().map_err(|e| e.to_string())?;
                let sim =
                    Arc::new(drydock_sim::SimProvider::new(crate::sim_world(config_dir), crate::sim_config(s), mode));
                let endpoint = sim
                    .kubernetes(c.owner_name())
                    .map_err(|e| format!("{}: the simulated Kubernetes API: {e}", c.address))?;
                let label = format!("simulated cluster {}", c.owner_name());
                let client = drydock_kube::KubeClient::from_endpoint(&endpoint.url, &endpoint.token, &label)
                    .map_err(|e| format!("{}: {e}", c.address))?;
                Arc::new(SimKube { client, _server: sim })
            }
            (path, _) => {
                let path = path.as_deref().map(|p| resolve(p, config_dir));
                let client = drydock_kube::KubeClient::from_kubeconfig(path.as_deref(), access.context.as_deref())
                    .map_err(|e| format!("{}: {e}", c.address))?;
                Arc::new(client)
            }
        };
        out.insert(c.address.clone(), client);
    }
    Ok(out)
}

/// What each cluster's Kubernetes API holds now: its Nodes, Pods and disruption budgets.
pub async fn observe(kubes: &Kubes) -> Result<BTreeMap<String, KubeObserved>, String> {
    let mut out = BTreeMap::new();
    for (address, k) in kubes {
        let fail = |e: ProviderError| format!("{address}: Kubernetes API {}: {e}", k.describe());
        let nodes = k.nodes().await.map_err(fail)?;
        let pods = k.pods(None).await.map_err(fail)?;
        let budgets = k.disruption_budgets().await.map_err(fail)?;
        out.insert(address.clone(), KubeObserved { nodes, pods, budgets });
    }
    Ok(out)
}
