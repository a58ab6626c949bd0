//! The Kubernetes APIs of a configuration's clusters: one client per cluster with a
//! `kubernetes` block, built from its kubeconfig (exec credential plugins included); for a
//! cluster on the simulated cloud without a kubeconfig, from the API server the sim serves on
//! loopback; for an EKS cluster (node groups with `bootstrap { kind = "eks" }`) without a
//! kubeconfig, from EKS's endpoint and CA with a token drydock makes from the AWS credentials.
//! The same client code (`drydock-kube`, on kube-rs) talks to all of them. And the etcd of
//! control planes with a `kubernetes.etcd` block (`drydock-etcd`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drydock_config::{Model, ProviderSettings};
use drydock_plan::kube::KubeObserved;
use drydock_provider::etcd::{EtcdHealth, ETCD_CLIENT_URLS_ANNOTATION};
use drydock_provider::kube::{Eviction, NodeInfo, NodePatch, PdbInfo, PodInfo, PodRef};
use drydock_provider::{Etcd, Kubernetes, ProviderError};

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
            (None, Some(ProviderSettings::Aws(s))) if eks_cluster_name(c).is_some() => {
                // An EKS cluster without a kubeconfig: endpoint and CA from EKS, the token
                // made from the provider's AWS credentials (as `aws eks get-token`), renewed
                // before it expires.
                let name = eks_cluster_name(c).unwrap_or_default();
                let aws = drydock_aws::AwsProvider::new(drydock_aws::AwsConfig {
                    region: s.region.clone(),
                    profile: s.profile.clone(),
                    endpoint: s.endpoint.clone(),
                });
                let eks =
                    aws.eks_cluster(&name).await.map_err(|e| format!("{}: EKS cluster {name}: {e}", c.address))?;
                use base64::Engine as _;
                let ca = base64::engine::general_purpose::STANDARD.decode(eks.certificate_authority.trim()).map_err(
                    |e| format!("{}: EKS cluster {name}: its certificate authority is not base64: {e}", c.address),
                )?;
                let label = format!("EKS cluster {name}");
                let client = drydock_kube::KubeClient::from_bearer(
                    &eks.endpoint,
                    Some(&ca),
                    &label,
                    aws.eks_token_source(&name),
                )
                .map_err(|e| format!("{}: {e}", c.address))?;
                Arc::new(client)
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

/// The EKS cluster a cluster's node groups join, if they bootstrap with `kind = "eks"`.
fn eks_cluster_name(c: &drydock_config::model::Cluster) -> Option<String> {
    c.node_groups.iter().find_map(|ng| match &ng.spec.bootstrap {
        Some(drydock_config::model::Bootstrap::Eks { cluster_name }) => Some(cluster_name.clone()),
        _ => None,
    })
}

/// What each cluster's Kubernetes API holds now: its Nodes, Pods and disruption budgets, and
/// its etcd's health where drydock manages etcd (`None` when etcd does not answer: the plan
/// warns, and the rollout checks again before it starts).
pub async fn observe(kubes: &Kubes, etcds: &Etcds) -> Result<BTreeMap<String, KubeObserved>, String> {
    let mut out = BTreeMap::new();
    for (address, k) in kubes {
        let fail = |e: ProviderError| format!("{address}: Kubernetes API {}: {e}", k.describe());
        let nodes = k.nodes().await.map_err(fail)?;
        let pods = k.pods(None).await.map_err(fail)?;
        let budgets = k.disruption_budgets().await.map_err(fail)?;
        let etcd = match etcds.get(address) {
            Some(e) => e.health().await.ok(),
            None => None,
        };
        out.insert(address.clone(), KubeObserved { nodes, pods, budgets, etcd });
    }
    Ok(out)
}

/// Per cluster address, its control plane's etcd (clusters with a `kubernetes.etcd` block).
pub type Etcds = BTreeMap<String, Arc<dyn Etcd>>;

/// The etcd of every cluster with a `kubernetes { etcd { … } }` block. Its members are found
/// where kubeadm advertises them (the `kubeadm.kubernetes.io/etcd.advertise-client-urls`
/// annotation of the etcd static pods in `kube-system`, read through the Kubernetes API), plus
/// the block's `endpoints`; the client then follows the member list. The certificate files
/// are read now, so a missing one is an error before anything happens.
pub fn etcd_clients(model: &Model, config_dir: &Path, kubes: &Kubes) -> Result<Etcds, String> {
    let mut out: Etcds = BTreeMap::new();
    for c in &model.clusters {
        let Some(access) = c.kubernetes.as_ref().and_then(|k| k.etcd.as_ref()) else { continue };
        let read = |what: &str, f: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            match f {
                None => Ok(None),
                // PEM files of a few KB; a device or a FIFO named here is refused, not read.
                Some(p) => drydock_config::read_text(&resolve(p, config_dir), 1 << 20)
                    .map(|pem| Some(pem.into_bytes()))
                    .map_err(|e| format!("{}: kubernetes.etcd.{what} {p}: {e}", c.address)),
            }
        };
        let (ca, cert, key) = (
            read("ca_file", &access.ca_file)?,
            read("cert_file", &access.cert_file)?,
            read("key_file", &access.key_file)?,
        );
        let tls = match (ca, cert, key) {
            (None, None, None) => None,
            (Some(ca_pem), Some(cert_pem), Some(key_pem)) => Some(drydock_etcd::EtcdTls { ca_pem, cert_pem, key_pem }),
            _ => {
                return Err(format!(
                    "{}: kubernetes.etcd needs ca_file, cert_file and key_file together (or none of them, for etcd \
                     without TLS)",
                    c.address
                ))
            }
        };
        out.insert(
            c.address.clone(),
            Arc::new(DiscoveredEtcd {
                cluster: c.address.clone(),
                kube: kubes.get(&c.address).cloned(),
                endpoints: access.endpoints.clone(),
                tls,
                client: tokio::sync::Mutex::new(None),
            }),
        );
    }
    Ok(out)
}

/// An etcd whose members are found through the Kubernetes API, found again when none of
/// those known answers (the whole control plane may have been replaced since).
struct DiscoveredEtcd {
    cluster: String,
    kube: Option<Arc<dyn Kubernetes>>,
    endpoints: Vec<String>,
    tls: Option<drydock_etcd::EtcdTls>,
    client: tokio::sync::Mutex<Option<Arc<drydock_etcd::EtcdClient>>>,
}

impl DiscoveredEtcd {
    async fn client(&self, fresh: bool) -> Result<Arc<drydock_etcd::EtcdClient>, ProviderError> {
        let mut held = self.client.lock().await;
        if let (false, Some(c)) = (fresh, held.as_ref()) {
            return Ok(c.clone());
        }
        let mut seeds = self.endpoints.clone();
        if let Some(kube) = &self.kube {
            let pods = kube.pods(None).await.map_err(|mut e| {
                e.message = format!("finding etcd through the Kubernetes API: {}", e.message);
                e
            })?;
            for p in pods.iter().filter(|p| p.namespace == "kube-system") {
                if let Some(urls) = p.annotations.get(ETCD_CLIENT_URLS_ANNOTATION) {
                    seeds.extend(urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string));
                }
            }
        }
        if let Some(c) = held.as_ref() {
            seeds.extend(c.endpoints());
        }
        let mut seen = std::collections::BTreeSet::new();
        seeds.retain(|s| seen.insert(s.clone()));
        if seeds.is_empty() {
            return Err(ProviderError::not_found(format!(
                "{}: no etcd endpoint: no etcd static pod in kube-system carries the {ETCD_CLIENT_URLS_ANNOTATION} \
                 annotation, and kubernetes.etcd.endpoints is empty",
                self.cluster
            )));
        }
        let c = Arc::new(drydock_etcd::EtcdClient::new(seeds, self.tls.clone())?);
        *held = Some(c.clone());
        Ok(c)
    }
}

#[drydock_provider::async_trait]
impl Etcd for DiscoveredEtcd {
    fn describe(&self) -> String {
        format!("etcd of {}", self.cluster)
    }
    async fn health(&self) -> Result<EtcdHealth, ProviderError> {
        match self.client(false).await?.health().await {
            Ok(h) => Ok(h),
            Err(_) => self.client(true).await?.health().await,
        }
    }
    async fn move_leader(&self, to: u64) -> Result<(), ProviderError> {
        match self.client(false).await?.move_leader(to).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_retryable() => self.client(true).await?.move_leader(to).await,
            Err(e) => Err(e),
        }
    }
    async fn remove_member(&self, id: u64) -> Result<bool, ProviderError> {
        match self.client(false).await?.remove_member(id).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_retryable() => self.client(true).await?.remove_member(id).await,
            Err(e) => Err(e),
        }
    }
}
