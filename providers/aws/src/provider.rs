//! `AwsProvider`: the `Provider` trait over EC2 launch templates and Auto Scaling groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_autoscaling::types as asg;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types as ec2;
use drydock_provider::kube::BearerToken;
use drydock_provider::{
    ApiStats, Bootstrap, Clock, CreateGroup, ErrorKind, GenerationSpec, GroupSettings, Instance, InstanceState,
    JoinSecrets, Observed, ObservedGroup, Ownership, Provider, ProviderError, SystemClock, TAG_CLUSTER, TAG_LINEAGE,
    TAG_NODE_GROUP,
};

use crate::eks::{self, EksCluster, EksTokenSource};
use crate::error::{self, AwsError};
use crate::mapping::{self, LaunchSpec, TemplateRef};
use crate::userdata;

/// Where the provider's settings come from: the `provider "aws"` block. Anything left `None`
/// comes from the standard AWS chain (environment, profile files, SSO, instance metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConfig {
    pub region: Option<String>,
    /// A profile of `~/.aws/config` to take credentials and region from.
    pub profile: Option<String>,
    /// Another endpoint for every AWS call (LocalStack, moto); `AWS_ENDPOINT_URL` does the same.
    pub endpoint: Option<String>,
}

/// The SDK clients, built on first use, and the configuration they were built from (its
/// region and credentials also sign EKS tokens).
struct Clients {
    sdk: aws_config::SdkConfig,
    ec2: aws_sdk_ec2::Client,
    asg: aws_sdk_autoscaling::Client,
    eks: aws_sdk_eks::Client,
}

/// Loads the AWS configuration and builds the clients.
async fn load_clients(config: &AwsConfig) -> Result<Clients, ProviderError> {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    // Standard retries: throttling and 5xx answers are sent again with exponential backoff and
    // jitter, up to 5 attempts.
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &config.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err(ProviderError::invalid_input(
            "no AWS region: set `region` in the provider \"aws\" block, AWS_REGION, or a region in the profile",
        ));
    }
    Ok(Clients {
        ec2: aws_sdk_ec2::Client::new(&conf),
        asg: aws_sdk_autoscaling::Client::new(&conf),
        eks: aws_sdk_eks::Client::new(&conf),
        sdk: conf,
    })
}

/// The clients, shared by the provider and the EKS token sources it hands out.
#[derive(Clone)]
struct SharedClients {
    config: AwsConfig,
    cell: Arc<tokio::sync::OnceCell<Clients>>,
}

impl SharedClients {
    async fn get(&self) -> Result<&Clients, ProviderError> {
        self.cell.get_or_try_init(|| load_clients(&self.config)).await
    }
}

#[async_trait]
impl eks::Signer for SharedClients {
    async fn region_and_credentials(&self) -> Result<(String, aws_credential_types::Credentials), ProviderError> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let c = self.get().await?;
        let region = c.sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let provider = c
            .sdk
            .credentials_provider()
            .ok_or_else(|| eks::credentials_error(&"no credentials provider is configured"))?;
        let credentials = provider.provide_credentials().await.map_err(|e| eks::credentials_error(&e))?;
        Ok((region, credentials))
    }
}

/// Auto Scaling pages: at most 100 groups a call.
const GROUP_PAGE: i32 = 100;
/// The most values one DescribeAutoScalingGroups filter takes.
const FILTER_VALUES: usize = 5;
/// EC2 pages: launch template versions 200 a call, instances 1,000.
const VERSION_PAGE: i32 = 200;
const INSTANCE_PAGE: i32 = 1_000;
/// With more templates than this to read, one sweep of every template's latest version (200 a
/// page) is cheaper than a call per template.
const SWEEP_FROM: usize = 3;
/// A group being deleted still shows for a while: it is gone as far as drydock is concerned.
const DELETING: &str = "Delete in progress";

/// What was seen of an instance's health, to tell when it became healthy.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// It was seen not healthy (or launched after this provider started), so the first time it
    /// is seen healthy is, within a poll, when it became healthy.
    watched: bool,
    healthy_at_ms: Option<u64>,
}

/// The last observation, shared by callers who asked for one while it was being made.
struct LastObserve {
    lineage: String,
    started: u64,
    result: Result<Observed, ProviderError>,
}

/// Node groups on AWS: one launch template per generation (and set of join secrets), one Auto
/// Scaling group per generation (see the crate docs for the whole mapping); EKS clusters and
/// their tokens.
pub struct AwsProvider {
    clients: SharedClients,
    stats: Mutex<ApiStats>,
    /// EKS clusters by name, as `DescribeCluster` showed them: read once per process.
    eks_clusters: Mutex<HashMap<String, EksCluster>>,
    /// Launch template data by (template id, version): versions never change, so each is read
    /// once per process.
    versions: Mutex<HashMap<(String, String), Arc<ec2::ResponseLaunchTemplateData>>>,
    seen: Mutex<HashMap<String, Seen>>,
    started_ms: u64,
    /// Observations are made one at a time; whoever asked while one was in flight shares the
    /// next one, which started after they asked and so reflects everything they did before.
    observing: tokio::sync::Mutex<Option<LastObserve>>,
    ticks: AtomicU64,
}

impl AwsProvider {
    /// A provider; nothing is read (no profile, no credentials, no network) until the first call,
    /// so commands that do not touch AWS pay nothing for it.
    pub fn new(config: AwsConfig) -> AwsProvider {
        AwsProvider {
            clients: SharedClients { config, cell: Arc::new(tokio::sync::OnceCell::new()) },
            stats: Mutex::new(ApiStats::default()),
            eks_clusters: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            started_ms: SystemClock::wall_ms(),
            observing: tokio::sync::Mutex::new(None),
            ticks: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &AwsConfig {
        &self.clients.config
    }

    async fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients.get().await
    }

    /// The EKS cluster of that name, as `DescribeCluster` shows it (counted in [`Provider::stats`]
    /// as `DescribeCluster`): its endpoint, certificate authority, service CIDR and version.
    /// Read once per cluster for the provider's life. A cluster that does not exist is
    /// InvalidInput; one not active yet (no endpoint) is Unavailable.
    pub async fn eks_cluster(&self, name: &str) -> Result<EksCluster, ProviderError> {
        if let Some(known) = self.eks_clusters.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(known.clone());
        }
        let c = self.clients().await?;
        let out = match self.call("DescribeCluster", c.eks.describe_cluster().name(name).send()).await {
            Ok(out) => out,
            Err(e) if e.is_not_found() => {
                return Err(ProviderError::invalid_input(format!(
                    "there is no EKS cluster named {name} in this region ({e}); check the bootstrap's `cluster_name` \
                     and the provider's region"
                )))
            }
            Err(e) => return Err(e.into_provider()),
        };
        let cluster = eks_cluster_of(name, out.cluster())?;
        self.eks_clusters.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), cluster.clone());
        Ok(cluster)
    }

    /// The bearer tokens of the EKS cluster of that name (see [`crate::eks`]), signed with this
    /// provider's credentials, for a Kubernetes client that renews them
    /// (`drydock_kube::KubeClient::from_bearer`). Nothing is loaded until the first token is
    /// asked for.
    pub fn eks_token_source(&self, cluster_name: &str) -> Arc<dyn BearerToken> {
        Arc::new(EksTokenSource { cluster: cluster_name.to_string(), signer: Arc::new(self.clients.clone()) })
    }

    /// Sends one AWS call, counting it.
    async fn call<T, E>(
        &self,
        action: &'static str,
        request: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).record(action);
        request.await.map_err(|e| error::from_sdk(action, e))
    }

    /// One page a paginator returned (it sent one call for it), counted as [`Self::call`] counts
    /// a call. The SDK's paginators (`into_paginator().send()`) send the `NextToken` on and stop
    /// on an absent, empty or repeated one, or after an error; they send nothing until the next
    /// page is asked for, so leaving the loop early sends nothing more.
    fn page<T, E>(&self, action: &'static str, page: Result<T, SdkError<E>>) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).record(action);
        page.map_err(|e| error::from_sdk(action, e))
    }

    /// One group by name, `None` if there is none.
    async fn describe_group(&self, c: &Clients, name: &str) -> Result<Option<asg::AutoScalingGroup>, ProviderError> {
        let out = self
            .call(
                "DescribeAutoScalingGroups",
                c.asg.describe_auto_scaling_groups().auto_scaling_group_names(name).send(),
            )
            .await
            .map_err(|e| e.into_provider().with_group(name))?;
        Ok(out.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(name)).cloned())
    }

    /// Every group carrying all of these tags, page by page.
    async fn groups_tagged(
        &self,
        c: &Clients,
        tags: &[(&str, &str)],
        calls: &mut u64,
    ) -> Result<Vec<asg::AutoScalingGroup>, AwsError> {
        let filters: Vec<asg::Filter> =
            tags.iter().map(|(k, v)| asg::Filter::builder().name(format!("tag:{k}")).values(*v).build()).collect();
        self.groups_filtered(c, filters, calls).await
    }

    /// Every Auto Scaling group the filters select, page by page.
    async fn groups_filtered(
        &self,
        c: &Clients,
        filters: Vec<asg::Filter>,
        calls: &mut u64,
    ) -> Result<Vec<asg::AutoScalingGroup>, AwsError> {
        let mut out = vec![];
        let mut pages = c
            .asg
            .describe_auto_scaling_groups()
            .set_filters(Some(filters))
            .max_records(GROUP_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = self.page("DescribeAutoScalingGroups", page)?;
            *calls += 1;
            out.extend(page.auto_scaling_groups.unwrap_or_default());
        }
        Ok(out)
    }

    /// Reads the launch template versions the groups use that are not known yet: one sweep of
    /// every template's latest version when many templates are involved (a generation's version
    /// is its template's latest unless a rollout is under way), then one call per template for
    /// what the sweep did not cover.
    async fn load_versions(&self, c: &Clients, refs: &[TemplateRef], calls: &mut u64) -> Result<(), AwsError> {
        let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        {
            let known = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            for r in refs {
                // drydock pins version numbers; `$Latest` or `$Default` put there by hand name no
                // fixed version, and the spec is then left to what the group shows.
                if !r.id.is_empty()
                    && r.version.parse::<i64>().is_ok()
                    && !known.contains_key(&(r.id.clone(), r.version.clone()))
                {
                    missing.entry(r.id.clone()).or_default().insert(r.version.clone());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if missing.len() > SWEEP_FROM {
            let mut pages = c
                .ec2
                .describe_launch_template_versions()
                .versions("$Latest")
                .max_results(VERSION_PAGE)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = self.page("DescribeLaunchTemplateVersions", page)?;
                *calls += 1;
                self.remember(page.launch_template_versions(), &mut missing);
                if missing.is_empty() {
                    break;
                }
            }
        }
        for (id, versions) in missing.clone() {
            let versions: Vec<String> = versions.into_iter().collect();
            for chunk in versions.chunks(VERSION_PAGE as usize) {
                let mut pages = c
                    .ec2
                    .describe_launch_template_versions()
                    .launch_template_id(&id)
                    .set_versions(Some(chunk.to_vec()))
                    .max_results(VERSION_PAGE)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    *calls += 1;
                    let page = match self.page("DescribeLaunchTemplateVersions", page) {
                        Ok(p) => p,
                        // Deleted with its last group while that group was being deleted.
                        Err(e) if e.is_not_found() => break,
                        Err(e) => return Err(e),
                    };
                    self.remember(page.launch_template_versions(), &mut missing);
                }
            }
        }
        Ok(())
    }

    /// Caches the versions that were missing.
    fn remember(&self, versions: &[ec2::LaunchTemplateVersion], missing: &mut BTreeMap<String, BTreeSet<String>>) {
        let mut known = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        for v in versions {
            let (Some(id), Some(number), Some(data)) =
                (v.launch_template_id(), v.version_number(), v.launch_template_data())
            else {
                continue;
            };
            let number = number.to_string();
            if let Some(wanted) = missing.get_mut(id) {
                if wanted.remove(&number) {
                    known.insert((id.to_string(), number), Arc::new(data.clone()));
                }
                if wanted.is_empty() {
                    missing.remove(id);
                }
            }
        }
    }

    /// The lineage's live instances by id, from EC2 (state, subnet, image, launch time).
    async fn instances(
        &self,
        c: &Clients,
        lineage: &str,
        calls: &mut u64,
    ) -> Result<HashMap<String, ec2::Instance>, AwsError> {
        let filters = vec![
            ec2::Filter::builder().name(format!("tag:{TAG_LINEAGE}")).values(lineage).build(),
            ec2::Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "shutting-down", "stopping", "stopped"].map(String::from).to_vec(),
                ))
                .build(),
        ];
        let mut out = HashMap::new();
        let mut pages =
            c.ec2.describe_instances().set_filters(Some(filters)).max_results(INSTANCE_PAGE).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = self.page("DescribeInstances", page)?;
            *calls += 1;
            for r in page.reservations() {
                for i in r.instances() {
                    if let Some(id) = i.instance_id() {
                        out.insert(id.to_string(), i.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// An Auto Scaling member as drydock sees it, with EC2's details when EC2 described it.
    fn instance(&self, a: &asg::Instance, e: Option<&ec2::Instance>, image: &str, now_ms: u64) -> Instance {
        let id = a.instance_id().unwrap_or_default().to_string();
        let lifecycle = a.lifecycle_state().map(|s| s.as_str()).unwrap_or("");
        let state = e
            .and_then(|e| mapping::instance_state(e.state().and_then(|s| s.name())))
            .unwrap_or_else(|| mapping::lifecycle_state(lifecycle));
        let healthy = state == InstanceState::Running && mapping::asg_healthy(a);
        let launched_at_ms = e
            .and_then(|e| e.launch_time())
            .and_then(|t| t.to_millis().ok())
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(now_ms);
        let healthy_at_ms = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let s = seen.entry(id.clone()).or_default();
            // Launched while this provider watches: its first healthy sighting is its boot time.
            if launched_at_ms + 1_000 >= self.started_ms {
                s.watched = true;
            }
            if !healthy {
                s.watched = true;
            } else if s.healthy_at_ms.is_none() && s.watched {
                s.healthy_at_ms = Some(now_ms.max(launched_at_ms));
            }
            s.healthy_at_ms
        };
        Instance {
            id,
            zone: e
                .and_then(|e| e.placement()?.availability_zone())
                .or(a.availability_zone())
                .unwrap_or_default()
                .to_string(),
            subnet: e.and_then(|e| e.subnet_id()).unwrap_or_default().to_string(),
            image: e.and_then(|e| e.image_id()).unwrap_or(image).to_string(),
            instance_type: e
                .and_then(|e| e.instance_type().map(|t| t.as_str()))
                .or(a.instance_type())
                .unwrap_or_default()
                .to_string(),
            state,
            healthy,
            launched_at_ms,
            healthy_at_ms,
        }
    }

    /// A described group as drydock sees it. `None` for a group without drydock's ownership
    /// tags or one being deleted.
    fn observed_group(
        &self,
        g: &asg::AutoScalingGroup,
        ec2_instances: &HashMap<String, ec2::Instance>,
        now_ms: u64,
    ) -> Option<ObservedGroup> {
        if g.status() == Some(DELETING) {
            return None;
        }
        let name = g.auto_scaling_group_name()?.to_string();
        let tags = mapping::tags_of(g);
        let ownership = Ownership::from_tags(&tags)?;
        let data = if needs_template(g) {
            mapping::template_of(g)
                .and_then(|r| self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&(r.id, r.version)).cloned())
        } else {
            None
        };
        let read = data.as_deref().map(|d| mapping::spec_from(d, g));
        // The template's own secrets when it was read; otherwise what the group's tag says of them
        // (the tag names the template the group launches from, or it would have been read).
        let join_digest = match &read {
            Some((_, digest)) => digest.clone(),
            None => tags.get(mapping::TAG_JOIN).cloned(),
        };
        let spec = read.map(|(spec, _)| spec);
        let image = spec.as_ref().map(|s| s.image.clone()).unwrap_or_default();
        let instances: Vec<Instance> = g
            .instances()
            .iter()
            .map(|a| self.instance(a, a.instance_id().and_then(|id| ec2_instances.get(id)), &image, now_ms))
            .collect();
        let spec_partial = spec.is_none();
        let spec = spec.unwrap_or_else(|| mapping::partial_spec(g, &instances));
        Some(ObservedGroup {
            name,
            settings: mapping::settings_of(g, &ownership),
            ownership,
            spec,
            spec_partial,
            instances,
            created_at_ms: g
                .created_time()
                .and_then(|t| t.to_millis().ok())
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(0),
            join_digest,
        })
    }

    async fn observe_now(&self, lineage: &str) -> Result<Observed, ProviderError> {
        let started = Instant::now();
        let c = self.clients().await?;
        let mut calls = 0;
        let groups =
            self.groups_tagged(c, &[(TAG_LINEAGE, lineage)], &mut calls).await.map_err(AwsError::into_provider)?;
        let live: Vec<&asg::AutoScalingGroup> = groups.iter().filter(|g| g.status() != Some(DELETING)).collect();
        // Only groups that launch from something other than their generation's own template
        // (pointed elsewhere by hand), or whose role is not tagged (made before the role tag),
        // need their template's data.
        let refs: Vec<TemplateRef> =
            live.iter().filter(|g| needs_template(g)).filter_map(|g| mapping::template_of(g)).collect();
        self.load_versions(c, &refs, &mut calls).await.map_err(AwsError::into_provider)?;
        // Empty groups need no instance call at all.
        let ec2_instances = if live.iter().any(|g| !g.instances().is_empty()) {
            self.instances(c, lineage, &mut calls).await.map_err(AwsError::into_provider)?
        } else {
            HashMap::new()
        };
        let now_ms = SystemClock::wall_ms();
        let mut out: Vec<ObservedGroup> =
            live.iter().filter_map(|g| self.observed_group(g, &ec2_instances, now_ms)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let node_groups: BTreeSet<(&str, &str)> =
            out.iter().map(|g| (g.ownership.cluster.as_str(), g.ownership.node_group.as_str())).collect();
        tracing::info!(
            lineage,
            groups = out.len(),
            node_groups = node_groups.len(),
            instances = ec2_instances.len(),
            calls,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "aws: observed"
        );
        Ok(Observed { groups: out })
    }

    /// A group that exists already, for `create_group`: the same ownership is the group asked
    /// for (made by an earlier try); another is a name clash.
    fn existing(&self, g: &asg::AutoScalingGroup, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
        if g.status() == Some(DELETING) {
            return Err(ProviderError::unavailable(
                "a group of this name is still being deleted; run again in a minute",
            )
            .with_group(&req.name));
        }
        let ownership = Ownership::from_tags(&mapping::tags_of(g));
        if ownership.as_ref() != Some(&req.ownership) {
            let whose = match ownership {
                Some(o) => format!(
                    "lineage {}, cluster {}, node group {}, generation {}",
                    o.lineage, o.cluster, o.node_group, o.generation
                ),
                None => "no drydock ownership tags (it was not made by drydock)".to_string(),
            };
            return Err(ProviderError::already_exists(format!(
                "a group of this name exists with {whose}; rename or delete it"
            ))
            .with_group(&req.name));
        }
        let mut group = self
            .observed_group(g, &HashMap::new(), SystemClock::wall_ms())
            .ok_or_else(|| ProviderError::other("the existing group could not be read").with_group(&req.name))?;
        group.spec = req.spec.clone();
        group.spec_partial = false;
        Ok(group)
    }

    /// The id of the launch template of that name, if there is one.
    async fn template_id(&self, c: &Clients, name: &str) -> Result<Option<String>, ProviderError> {
        match self
            .call("DescribeLaunchTemplates", c.ec2.describe_launch_templates().launch_template_names(name).send())
            .await
        {
            Ok(out) => Ok(out
                .launch_templates()
                .iter()
                .find(|t| t.launch_template_name() == Some(name))
                .and_then(|t| t.launch_template_id())
                .map(str::to_string)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into_provider()),
        }
    }

    /// The image's root device name, which the root volume's mapping needs; the check that the
    /// image exists, with a clear error before anything is created.
    async fn root_device(&self, c: &Clients, image: &str) -> Result<Option<String>, ProviderError> {
        let missing = || {
            ProviderError::invalid_input(format!(
                "DescribeImages: image {image} does not exist in this region or is not shared with this account; \
                 check `image` and the provider's region"
            ))
        };
        let out = match self.call("DescribeImages", c.ec2.describe_images().image_ids(image).send()).await {
            Ok(o) => o,
            Err(e) if e.code().starts_with("InvalidAMIID") => return Err(missing()),
            Err(e) => return Err(e.into_provider()),
        };
        let img = out.images().iter().find(|i| i.image_id() == Some(image)).ok_or_else(missing)?;
        Ok(img.root_device_name().map(str::to_string))
    }

    /// The launch template of a generation (and of the join secrets its nodes join with),
    /// found (made by an earlier try, by another control-plane member, by a rotation of the
    /// secrets, or kept from an earlier rollout of the same spec) or made; its id. The secrets
    /// are those [`mapping::effective_join`] keeps: a template carries them only for a kubeadm
    /// bootstrap.
    async fn ensure_template(
        &self,
        c: &Clients,
        o: &Ownership,
        spec: &GenerationSpec,
        join: Option<&JoinSecrets>,
    ) -> Result<String, ProviderError> {
        let join = mapping::effective_join(spec, join);
        let digest = join.map(JoinSecrets::digest);
        let name = mapping::template_name_for(o, digest.as_deref());
        if let Some(id) = self.template_id(c, &name).await? {
            return Ok(id);
        }
        let root = self.root_device(c, &spec.image).await?;
        let eks = match &spec.bootstrap {
            Some(Bootstrap::Eks { cluster_name }) => Some(self.eks_cluster(cluster_name).await?),
            _ => None,
        };
        let inputs = userdata::Inputs { join, eks: eks.as_ref() };
        let data = mapping::launch_template_data(spec, o, root.as_deref(), inputs)?;
        let created = self
            .call(
                "CreateLaunchTemplate",
                c.ec2
                    .create_launch_template()
                    .launch_template_name(&name)
                    .version_description(mapping::version_description(&o.generation))
                    .launch_template_data(data)
                    .tag_specifications(mapping::template_tags(o, digest.as_deref()))
                    .send(),
            )
            .await;
        match created {
            Ok(out) => out
                .launch_template()
                .and_then(|t| t.launch_template_id())
                .map(str::to_string)
                .ok_or_else(|| ProviderError::other("CreateLaunchTemplate: the answer has no template id")),
            // Made meanwhile by someone else: the name says it is this generation's.
            Err(e) if e.kind == ErrorKind::AlreadyExists => self.template_id(c, &name).await?.ok_or_else(|| {
                ProviderError::unavailable(format!("launch template {name} appeared and vanished meanwhile; run again"))
            }),
            Err(e) => Err(e.into_provider()),
        }
    }

    /// Points the group at the launch template of its generation and of the join secrets
    /// `join` (made if missing), tags it with their digest, and deletes the generation's other
    /// templates no group uses any more (they differ only in older secrets). Instances already
    /// running are not touched; those the group launches later join with `join`. Each step
    /// looks before it acts, so a repeat after any failure finds what the first try did and
    /// finishes it.
    async fn switch_join(
        &self,
        c: &Clients,
        g: &asg::AutoScalingGroup,
        o: &Ownership,
        spec: &GenerationSpec,
        join: &JoinSecrets,
    ) -> Result<(), ProviderError> {
        let name = g.auto_scaling_group_name().unwrap_or_default();
        let digest = join.digest();
        let template_id = self.ensure_template(c, o, spec, Some(join)).await?;
        let current = mapping::template_of(g);
        let pointed =
            current.as_ref().is_some_and(|r| r.id == template_id && r.version == mapping::TEMPLATE_VERSION.to_string());
        if !pointed {
            let mut update = c.asg.update_auto_scaling_group().auto_scaling_group_name(name);
            update = match g.mixed_instances_policy() {
                // The group's own policy (types, purchase option), with the new template: AWS
                // keeps a policy an update does not repeat, moto 5.2.5 drops it.
                Some(policy) => update.mixed_instances_policy(mapping::policy_with_template(
                    policy,
                    &template_id,
                    mapping::TEMPLATE_VERSION,
                )),
                None => update.launch_template(
                    asg::LaunchTemplateSpecification::builder()
                        .launch_template_id(&template_id)
                        .version(mapping::TEMPLATE_VERSION.to_string())
                        .build(),
                ),
            };
            self.call("UpdateAutoScalingGroup", update.send()).await.map_err(AwsError::into_provider)?;
        }
        if mapping::tags_of(g).get(mapping::TAG_JOIN) != Some(&digest) {
            let tag = BTreeMap::from([(mapping::TAG_JOIN.to_string(), digest.clone())]);
            self.call(
                "CreateOrUpdateTags",
                c.asg.create_or_update_tags().set_tags(Some(mapping::asg_tags(name, &tag))).send(),
            )
            .await
            .map_err(AwsError::into_provider)?;
        }
        self.prune_generation(c, o, &template_id).await.map_err(AwsError::into_provider)
    }

    /// Deletes the launch templates of the generation `o` names, but `keep`, that no group of
    /// its node group uses: after a rotation of the join secrets, those differ from `keep` only
    /// in older secrets.
    async fn prune_generation(&self, c: &Clients, o: &Ownership, keep: &str) -> Result<(), AwsError> {
        let owner = [(TAG_LINEAGE, o.lineage.as_str()), (TAG_CLUSTER, &o.cluster), (TAG_NODE_GROUP, &o.node_group)];
        let mut calls = 0;
        let in_use: BTreeSet<String> = self
            .groups_tagged(c, &owner, &mut calls)
            .await?
            .iter()
            .filter_map(mapping::template_of)
            .map(|r| r.id)
            .collect();
        let filters = vec![ec2::Filter::builder()
            .name("launch-template-name")
            .values(format!("{}*", mapping::template_prefix(o)))
            .build()];
        let mut stale = vec![];
        let mut pages = c
            .ec2
            .describe_launch_templates()
            .set_filters(Some(filters))
            .max_results(VERSION_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = self.page("DescribeLaunchTemplates", page)?;
            for t in page.launch_templates() {
                let tags: BTreeMap<String, String> = t
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                let Some(id) = t.launch_template_id() else { continue };
                if Ownership::from_tags(&tags).as_ref() == Some(o) && id != keep && !in_use.contains(id) {
                    stale.push(id.to_string());
                }
            }
        }
        for id in stale {
            match self.call("DeleteLaunchTemplate", c.ec2.delete_launch_template().launch_template_id(&id).send()).await
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Before a group goes: when it is the node group's last, every launch template of the node
    /// group goes too; otherwise templates no group uses are deleted but the newest
    /// [`mapping::KEEP_TEMPLATES`].
    /// Done before the group is deleted, so that a crash in between leaves the group, and the
    /// next try of the delete does this again, rather than templates nobody would look for.
    async fn prune_templates(&self, c: &Clients, g: &asg::AutoScalingGroup, o: &Ownership) -> Result<(), AwsError> {
        let name = g.auto_scaling_group_name().unwrap_or_default();
        let owner = [(TAG_LINEAGE, o.lineage.as_str()), (TAG_CLUSTER, &o.cluster), (TAG_NODE_GROUP, &o.node_group)];
        let mut calls = 0;
        let siblings = self.groups_tagged(c, &owner, &mut calls).await?;
        let in_use: BTreeSet<String> = siblings
            .iter()
            .filter(|s| s.auto_scaling_group_name() != Some(name) && s.status() != Some(DELETING))
            .filter_map(mapping::template_of)
            .map(|r| r.id)
            .collect();
        // By name, not by tags: EC2 takes `[` in a filter value such as `workers["a"]` as a
        // pattern (moto does), while the names start with a hash of the node group.
        let filters = vec![ec2::Filter::builder()
            .name("launch-template-name")
            .values(format!("{}*", mapping::template_prefix(o)))
            .build()];
        let mut templates: Vec<(String, i64)> = vec![];
        let mut pages = c
            .ec2
            .describe_launch_templates()
            .set_filters(Some(filters))
            .max_results(VERSION_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = self.page("DescribeLaunchTemplates", page)?;
            templates.extend(page.launch_templates().iter().filter_map(|t| {
                let created = t.create_time().map_or(0, |d| d.secs());
                Some((t.launch_template_id()?.to_string(), created))
            }));
        }
        // The group's own template, even if its tags were lost.
        if let Some(own) = mapping::template_of(g).filter(|r| !r.id.is_empty()) {
            if !templates.iter().any(|(id, _)| *id == own.id) {
                templates.push((own.id, i64::MAX));
            }
        }
        templates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let unused = templates.iter().filter(|(id, _)| !in_use.contains(id));
        // The node group's last group takes every template with it.
        let keep = if in_use.is_empty() { 0 } else { mapping::KEEP_TEMPLATES };
        for (id, _) in unused.skip(keep) {
            let deleted =
                self.call("DeleteLaunchTemplate", c.ec2.delete_launch_template().launch_template_id(id).send()).await;
            match deleted {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Which of `ids` that are not members of `group` are live instances of another group, or of
    /// none: those cannot be terminated through this group.
    async fn strangers(&self, c: &Clients, group: &str, ids: &[String]) -> Result<Vec<String>, ProviderError> {
        let out = self
            .call(
                "DescribeInstances",
                c.ec2
                    .describe_instances()
                    .filters(ec2::Filter::builder().name("instance-id").set_values(Some(ids.to_vec())).build())
                    .send(),
            )
            .await
            .map_err(|e| e.into_provider().with_group(group))?;
        let mut strangers = vec![];
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = mapping::instance_state(i.state().and_then(|s| s.name()));
            if matches!(state, Some(InstanceState::ShuttingDown | InstanceState::Terminated)) {
                continue;
            }
            let owner = i.tags().iter().find(|t| t.key() == Some(mapping::TAG_ASG_NAME)).and_then(|t| t.value());
            if owner != Some(group) {
                let id = i.instance_id().unwrap_or_default();
                strangers.push(match owner {
                    Some(other) => format!("{id} (a member of group {other})"),
                    None => format!("{id} (in no group)"),
                });
            }
        }
        Ok(strangers)
    }
}

/// What a node's `NodeConfig` needs of a described EKS cluster.
fn eks_cluster_of(name: &str, cluster: Option<&aws_sdk_eks::types::Cluster>) -> Result<EksCluster, ProviderError> {
    let cluster =
        cluster.ok_or_else(|| ProviderError::other(format!("DescribeCluster {name}: the answer has no cluster")))?;
    let status = cluster.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".to_string());
    let not_ready = |what: &str| {
        ProviderError::unavailable(format!(
            "DescribeCluster: EKS cluster {name} has no {what} yet (status {status}); run again once it is active"
        ))
    };
    let endpoint = cluster.endpoint().filter(|e| !e.is_empty()).ok_or_else(|| not_ready("endpoint"))?;
    let certificate_authority = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| not_ready("certificate authority"))?;
    let network = cluster.kubernetes_network_config();
    let service_cidr = match network.and_then(|n| n.ip_family()) {
        Some(aws_sdk_eks::types::IpFamily::Ipv6) => network.and_then(|n| n.service_ipv6_cidr()),
        _ => network.and_then(|n| n.service_ipv4_cidr()),
    }
    .filter(|c| !c.is_empty())
    .ok_or_else(|| not_ready("service CIDR"))?;
    Ok(EksCluster {
        endpoint: endpoint.to_string(),
        certificate_authority: certificate_authority.to_string(),
        service_cidr: service_cidr.to_string(),
        version: cluster.version().unwrap_or_default().to_string(),
    })
}

/// Whether observing the group needs its launch template's data: not when it launches from
/// exactly the template version drydock made for its generation and its role is tagged, for
/// then everything the planner needs of the spec is known without it (the rest is the
/// generation's, recorded in the state).
fn needs_template(g: &asg::AutoScalingGroup) -> bool {
    let tags = mapping::tags_of(g);
    let own = match (Ownership::from_tags(&tags), mapping::template_of(g)) {
        (Some(o), Some(r)) => r.is_generations(&o, tags.get(mapping::TAG_JOIN).map(String::as_str)),
        _ => false,
    };
    !own || mapping::role_of(&tags).is_none()
}

#[async_trait]
impl Provider for AwsProvider {
    fn kind(&self) -> &'static str {
        "aws"
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    /// An EC2 launch and OS boot until the instance passes its status checks: about 40 s for
    /// current instance types and AMIs (node groups measure their own after the first rollout).
    fn boot_estimate_ms(&self) -> u64 {
        40_000
    }

    async fn observe_clusters(&self, clusters: &[String]) -> Result<Observed, ProviderError> {
        let c = self.clients().await?;
        let mut calls = 0;
        let mut out = vec![];
        // A filter takes a bounded number of values: a few clusters a call.
        for chunk in clusters.chunks(FILTER_VALUES) {
            let filter =
                asg::Filter::builder().name(format!("tag:{TAG_CLUSTER}")).set_values(Some(chunk.to_vec())).build();
            out.extend(self.groups_filtered(c, vec![filter], &mut calls).await.map_err(AwsError::into_provider)?);
        }
        let now_ms = SystemClock::wall_ms();
        let mut groups: Vec<ObservedGroup> = out
            .iter()
            .filter(|g| g.status() != Some(DELETING))
            .filter_map(|g| self.observed_group(g, &HashMap::new(), now_ms))
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::info!(clusters = clusters.len(), groups = groups.len(), calls, "aws: observed clusters (any lineage)");
        Ok(Observed { groups })
    }

    async fn observe(&self, lineage: &str) -> Result<Observed, ProviderError> {
        let asked = self.ticks.fetch_add(1, Ordering::SeqCst);
        let mut last = self.observing.lock().await;
        if let Some(l) = last.as_ref() {
            if l.lineage == lineage && l.started > asked {
                return l.result.clone();
            }
        }
        let started = self.ticks.fetch_add(1, Ordering::SeqCst);
        let result = self.observe_now(lineage).await;
        *last = Some(LastObserve { lineage: lineage.to_string(), started, result: result.clone() });
        result
    }

    async fn create_group(&self, req: &CreateGroup) -> Result<ObservedGroup, ProviderError> {
        let name = req.name.as_str();
        let in_group = |e: ProviderError| e.with_group(name);
        mapping::check_settings(&req.settings).map_err(in_group)?;
        let join = mapping::effective_join(&req.spec, req.join.as_ref());
        let digest = join.map(JoinSecrets::digest);
        let tags = mapping::group_tags(&req.ownership, Some(req.spec.role), digest.as_deref(), &req.settings)
            .map_err(in_group)?;
        if req.spec.instance_types.is_empty() {
            return Err(in_group(ProviderError::invalid_input("a node group needs at least one instance type")));
        }
        let c = self.clients().await.map_err(in_group)?;
        // Look before creating: moto silently replaces a group created twice, and a retry after
        // a timeout must find the group its first try made.
        if let Some(g) = self.describe_group(c, name).await? {
            let mut group = self.existing(&g, req)?;
            // Made by a try with other secrets (rotated since): its next instances get these.
            if let Some(join) = join {
                if group.join_digest != digest {
                    self.switch_join(c, &g, &req.ownership, &req.spec, join).await.map_err(in_group)?;
                    group.join_digest = digest;
                }
            }
            return Ok(group);
        }
        let template_id = self.ensure_template(c, &req.ownership, &req.spec, join).await.map_err(in_group)?;
        let a = mapping::group_attributes(&req.settings);
        let mut create = c
            .asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(a.min)
            .max_size(a.max)
            .desired_capacity(a.desired)
            .vpc_zone_identifier(a.vpc_zone_identifier)
            .health_check_type(a.health_check_type)
            .health_check_grace_period(a.grace_seconds)
            .set_tags(Some(mapping::asg_tags(name, &tags)));
        create = match mapping::launch_spec(&req.spec, &template_id, mapping::TEMPLATE_VERSION) {
            LaunchSpec::Template(t) => create.launch_template(t),
            LaunchSpec::Mixed(m) => create.mixed_instances_policy(m),
        };
        match self.call("CreateAutoScalingGroup", create.send()).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                // Made meanwhile: by a concurrent run, or by a first try that timed out.
                return match self.describe_group(c, name).await? {
                    // The group made meanwhile launches from this template, with these secrets.
                    Some(g) => self.existing(&g, req),
                    None => Err(in_group(ProviderError::unavailable(
                        "a group of this name is still being deleted; run again in a minute",
                    ))),
                };
            }
            Err(e) => return Err(in_group(e.into_provider())),
        }
        Ok(ObservedGroup {
            name: name.to_string(),
            ownership: req.ownership.clone(),
            spec: req.spec.clone(),
            spec_partial: false,
            settings: req.settings.clone(),
            instances: vec![],
            created_at_ms: SystemClock::wall_ms(),
            join_digest: digest,
        })
    }

    async fn update_group(&self, name: &str, settings: &GroupSettings) -> Result<(), ProviderError> {
        let in_group = |e: ProviderError| e.with_group(name);
        mapping::check_settings(settings).map_err(in_group)?;
        let c = self.clients().await.map_err(in_group)?;
        let g = match self.describe_group(c, name).await? {
            Some(g) if g.status() != Some(DELETING) => g,
            _ => return Err(in_group(ProviderError::not_found("no such group"))),
        };
        let current = mapping::tags_of(&g);
        let ownership = Ownership::from_tags(&current).ok_or_else(|| {
            in_group(ProviderError::invalid_input("the group has no drydock ownership tags; not changing it"))
        })?;
        // The role tag stays as it is (a group made before it has none), and so does the join
        // digest (`update_join`'s).
        let join = current.get(mapping::TAG_JOIN).map(String::as_str);
        let tags = mapping::group_tags(&ownership, mapping::role_of(&current), join, settings).map_err(in_group)?;
        let a = mapping::group_attributes(settings);
        self.call(
            "UpdateAutoScalingGroup",
            c.asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(a.min)
                .max_size(a.max)
                .desired_capacity(a.desired)
                .vpc_zone_identifier(a.vpc_zone_identifier)
                .health_check_type(a.health_check_type)
                .health_check_grace_period(a.grace_seconds)
                // The group's own policy, unchanged: AWS keeps it anyway, and moto 5.2.5 drops
                // a mixed instances policy that an update does not repeat.
                .set_mixed_instances_policy(g.mixed_instances_policy().map(mapping::policy_to_repeat))
                .send(),
        )
        .await
        .map_err(|e| in_group(e.into_provider()))?;
        let changed: BTreeMap<String, String> =
            tags.iter().filter(|(k, v)| current.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if !changed.is_empty() {
            self.call(
                "CreateOrUpdateTags",
                c.asg.create_or_update_tags().set_tags(Some(mapping::asg_tags(name, &changed))).send(),
            )
            .await
            .map_err(|e| in_group(e.into_provider()))?;
        }
        let removed: BTreeMap<String, String> = current
            .iter()
            .filter(|(k, _)| !tags.contains_key(*k) && !k.to_ascii_lowercase().starts_with("aws:"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !removed.is_empty() {
            self.call("DeleteTags", c.asg.delete_tags().set_tags(Some(mapping::asg_tags(name, &removed))).send())
                .await
                .map_err(|e| in_group(e.into_provider()))?;
        }
        Ok(())
    }

    async fn terminate_instances(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), ProviderError> {
        let in_group = |e: ProviderError| e.with_group(group);
        if ids.is_empty() {
            return Ok(());
        }
        let c = self.clients().await.map_err(in_group)?;
        let g = match self.describe_group(c, group).await? {
            Some(g) if g.status() != Some(DELETING) => g,
            _ => return Err(in_group(ProviderError::not_found("no such group"))),
        };
        // Members not already on their way out: an instance terminated by an earlier try is not
        // terminated (nor decremented for) again.
        let members: BTreeSet<&str> = g
            .instances()
            .iter()
            .filter(|i| !i.lifecycle_state().is_some_and(|s| s.as_str().starts_with("Terminat")))
            .filter_map(|i| i.instance_id())
            .collect();
        let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let (mine, others): (Vec<&str>, Vec<&str>) = unique.into_iter().partition(|id| members.contains(id));
        if !others.is_empty() {
            let others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
            let strangers = self.strangers(c, group, &others).await?;
            if !strangers.is_empty() {
                return Err(in_group(ProviderError::invalid_input(format!(
                    "not members of this group: {}",
                    strangers.join(", ")
                ))));
            }
        }
        if decrement {
            let desired = g.desired_capacity().unwrap_or(0).max(0) as usize;
            let min = g.min_size().unwrap_or(0).max(0) as usize;
            if desired.saturating_sub(mine.len()) < min {
                return Err(in_group(ProviderError::invalid_input(format!(
                    "terminating {} instances would take the desired capacity {desired} below the minimum {min}",
                    mine.len()
                ))));
            }
        }
        for id in mine {
            let done = self
                .call(
                    "TerminateInstanceInAutoScalingGroup",
                    c.asg
                        .terminate_instance_in_auto_scaling_group()
                        .instance_id(id)
                        .should_decrement_desired_capacity(decrement)
                        .send(),
                )
                .await;
            match done {
                Ok(_) => {}
                // Gone meanwhile (terminated by the group, or by someone else).
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(in_group(e.into_provider())),
            }
        }
        Ok(())
    }

    /// A launch template beside the generation's, named for the new secrets' digest (moto
    /// 5.2.5 cannot launch from a second version of a template that carries user data), the
    /// group pointed at it, its `drydock:join` tag set to the digest, and the generation's
    /// templates with older secrets deleted once no group uses them. Not a new generation: the
    /// group keeps its name, ownership and instances.
    async fn update_join(
        &self,
        name: &str,
        ownership: &Ownership,
        spec: &GenerationSpec,
        join: &JoinSecrets,
    ) -> Result<(), ProviderError> {
        let in_group = |e: ProviderError| e.with_group(name);
        if !matches!(spec.bootstrap, Some(Bootstrap::Kubeadm { .. })) {
            let how = spec.bootstrap.as_ref().map_or("their own user data", |b| b.kind());
            return Err(in_group(ProviderError::invalid_input(format!(
                "its nodes join with {how}; only a kubeadm bootstrap takes join secrets"
            ))));
        }
        let c = self.clients().await.map_err(in_group)?;
        let g = match self.describe_group(c, name).await? {
            Some(g) if g.status() != Some(DELETING) => g,
            _ => return Err(in_group(ProviderError::not_found("no such group"))),
        };
        match Ownership::from_tags(&mapping::tags_of(&g)) {
            Some(o) if o == *ownership => {}
            Some(o) => {
                return Err(in_group(ProviderError::invalid_input(format!(
                    "the group belongs to lineage {}, cluster {}, node group {}, generation {}, not to the one given; \
                     not changing it",
                    o.lineage, o.cluster, o.node_group, o.generation
                ))))
            }
            None => {
                return Err(in_group(ProviderError::invalid_input(
                    "the group has no drydock ownership tags; not changing it",
                )))
            }
        }
        self.switch_join(c, &g, ownership, spec, join).await.map_err(in_group)
    }

    async fn delete_group(&self, name: &str) -> Result<(), ProviderError> {
        let in_group = |e: ProviderError| e.with_group(name);
        let c = self.clients().await.map_err(in_group)?;
        let g = match self.describe_group(c, name).await? {
            Some(g) if g.status() != Some(DELETING) => g,
            _ => return Ok(()),
        };
        let ownership = Ownership::from_tags(&mapping::tags_of(&g)).ok_or_else(|| {
            in_group(ProviderError::invalid_input("the group has no drydock ownership tags; not deleting it"))
        })?;
        self.prune_templates(c, &g, &ownership).await.map_err(|e| in_group(e.into_provider()))?;
        match self
            .call(
                "DeleteAutoScalingGroup",
                c.asg.delete_auto_scaling_group().auto_scaling_group_name(name).force_delete(true).send(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(in_group(e.into_provider())),
        }
    }

    fn stats(&self) -> ApiStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
