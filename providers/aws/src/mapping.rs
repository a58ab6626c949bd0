//! How node groups map onto EC2 and Auto Scaling objects, in both directions, with no I/O:
//! names, tags, a generation's spec as launch template data (and back), sizes and health
//! settings as a group's attributes (and back), and instances as observation reports them.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types as asg;
use aws_sdk_ec2::types as ec2;
use drydock_provider::{
    Bootstrap, CapacityType, GenerationSpec, GroupSettings, HealthCheck, Instance, InstanceState, JoinSecrets,
    Metadata, Ownership, ProviderError, Role, RootVolume,
};
use sha2::Digest as _;

use crate::userdata::{self, NodeInfo};

/// The tag Auto Scaling puts on the instances it launches, naming their group.
pub const TAG_ASG_NAME: &str = "aws:autoscaling:groupName";

/// The tag naming a group's role (`worker` or `control-plane`), beside the ownership tags: with
/// it, observation knows the role without reading the launch template.
pub const TAG_ROLE: &str = "drydock:role";

/// The tag naming the [`JoinSecrets::digest`] of the join secrets a group's launch template
/// carries (kubeadm bootstraps): what observation reports as the group's join digest without
/// reading the template. Set at creation and by `update_join`, kept by `update_group`.
pub const TAG_JOIN: &str = "drydock:join";

/// The join secrets that go into a generation's launch template: those given, when its nodes
/// join with kubeadm; none otherwise (nothing else writes them anywhere).
pub fn effective_join<'a>(spec: &GenerationSpec, join: Option<&'a JoinSecrets>) -> Option<&'a JoinSecrets> {
    match spec.bootstrap {
        Some(Bootstrap::Kubeadm { .. }) => join,
        _ => None,
    }
}

/// The version of its launch template a group launches from: a generation's template has one
/// version, made with the template.
pub const TEMPLATE_VERSION: i64 = 1;

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Worker => "worker",
        Role::ControlPlane => "control-plane",
    }
}

/// The role a group's tags name, if they name one.
pub fn role_of(tags: &BTreeMap<String, String>) -> Option<Role> {
    match tags.get(TAG_ROLE)?.as_str() {
        "worker" => Some(Role::Worker),
        "control-plane" => Some(Role::ControlPlane),
        _ => None,
    }
}

/// How many launch templates of generations no group uses any more are kept per node group,
/// newest first, so that a person can point a group back at the previous generation by hand.
/// One: every kept template is read by each refresh's sweep of the account's templates, so
/// keeping more would make every plan slower.
pub const KEEP_TEMPLATES: usize = 1;

/// The launch template of a generation: one per generation, holding one version, because
/// moto 5.2.5 cannot launch from a second version that carries user data (its
/// `CreateLaunchTemplateVersion` keeps the user data in a form its launches reject), and
/// because one sweep of every template's latest version then reads every generation of a
/// lineage at once. The control-plane members of a generation share it.
///
/// The name starts with [`template_prefix`], a hash of the exact lineage, cluster and node
/// group, so that a node group's templates are found by name (tag filters treat `[` and `"`
/// in values such as `workers["eu-west-1a"]` unreliably), then the generation, then the
/// cluster and node group for people, as far as they fit.
pub fn template_name(o: &Ownership) -> String {
    let generation = sanitize(&o.generation);
    let readable = sanitize(&format!("{}-{}", o.cluster, o.node_group));
    let name = format!("{}{generation}-{readable}", template_prefix(o));
    name.chars().take(128).collect::<String>().trim_end_matches('-').to_string()
}

/// The launch template of a generation whose nodes join with the secrets of digest `join`
/// (kubeadm): one per generation and set of secrets, so that rotating them (`update_join`)
/// makes a template beside the generation's rather than a second version of it (which moto
/// cannot launch from), and so that a member created after a rotation finds the template with
/// the current secrets by name. Without secrets it is [`template_name`]. The digest's hex digits
/// follow the generation (`-j` and 16 digits), before the readable part, so that truncating a
/// long name cuts the readable part first.
pub fn template_name_for(o: &Ownership, join: Option<&str>) -> String {
    let Some(join) = join else { return template_name(o) };
    let digits: String =
        join.strip_prefix("sha256:").unwrap_or(join).chars().filter(char::is_ascii_alphanumeric).collect();
    let generation = sanitize(&o.generation);
    let readable = sanitize(&format!("{}-{}", o.cluster, o.node_group));
    let name = format!("{}{generation}-j{digits}-{readable}", template_prefix(o));
    name.chars().take(128).collect::<String>().trim_end_matches('-').to_string()
}

/// `drydock-` and a hash of the lineage, cluster and node group: what every launch template of
/// one node group's name starts with.
pub fn template_prefix(o: &Ownership) -> String {
    let digest = sha2::Sha256::digest(format!("{}\0{}\0{}", o.lineage, o.cluster, o.node_group).as_bytes());
    format!("drydock-{}-", hex::encode(&digest[..6]))
}

/// Launch template names take letters, digits and ( ) . - / _ only; runs of anything else
/// become one `-`.
fn sanitize(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

/// The description of a generation's launch template version.
pub fn version_description(generation: &str) -> String {
    format!("drydock generation {generation}")
}

/// Whether the group needs a mixed instances policy: spot capacity or several instance types.
pub fn is_mixed(spec: &GenerationSpec) -> bool {
    spec.capacity_type == CapacityType::Spot || spec.instance_types.len() > 1
}

/// The `kubernetes.io/cluster/<cluster>` tag key that cloud controllers look for.
pub fn kubernetes_cluster_tag(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}

/// Every tag of a group: the ownership, the role (when known), the join digest (when its nodes
/// join with secrets), the Kubernetes cluster tag, and the settings' own tags. Settings may not
/// set a `drydock:` or `aws:` key: the first would contradict the ownership, the second is
/// AWS's.
pub fn group_tags(
    o: &Ownership,
    role: Option<Role>,
    join: Option<&str>,
    settings: &GroupSettings,
) -> Result<BTreeMap<String, String>, ProviderError> {
    for key in settings.tags.keys() {
        if key.starts_with("drydock:") {
            return Err(ProviderError::invalid_input(format!(
                "tag `{key}`: keys starting with `drydock:` are drydock's ownership tags"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ProviderError::invalid_input(format!("tag `{key}`: keys starting with `aws:` are AWS's")));
        }
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ProviderError::invalid_input(format!("tag `{key}`: a key has 1 to 128 characters")));
        }
    }
    if let Some((k, v)) = settings.tags.iter().find(|(_, v)| v.chars().count() > 256) {
        return Err(ProviderError::invalid_input(format!(
            "tag `{k}`: the value has {} characters, AWS takes 256",
            v.len()
        )));
    }
    let mut tags = BTreeMap::from([(kubernetes_cluster_tag(&o.cluster), "owned".to_string())]);
    // The settings' tags may say `shared` for the cluster tag; the ownership tags always win.
    tags.extend(settings.tags.clone());
    tags.extend(o.tags());
    if let Some(role) = role {
        tags.insert(TAG_ROLE.to_string(), role_name(role).to_string());
    }
    if let Some(join) = join {
        tags.insert(TAG_JOIN.to_string(), join.to_string());
    }
    Ok(tags)
}

/// The settings' tags as observation reports them: the group's tags without the ones this
/// provider adds itself (ownership, role, join digest: every `drydock:` key, which settings may
/// not set; and the cluster tag when it says `owned`).
pub fn settings_tags(o: &Ownership, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let cluster_tag = kubernetes_cluster_tag(&o.cluster);
    tags.iter()
        .filter(|(k, v)| !k.starts_with("drydock:") && (**k != cluster_tag || *v != "owned"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Sizes in order and something to launch into: what Auto Scaling would refuse (or, as moto
/// does, silently accept).
pub fn check_settings(s: &GroupSettings) -> Result<(), ProviderError> {
    if !(s.min <= s.desired && s.desired <= s.max) {
        return Err(ProviderError::invalid_input(format!(
            "sizes out of order: min {} <= desired {} <= max {} does not hold",
            s.min, s.desired, s.max
        )));
    }
    if s.max > i32::MAX as u32 {
        return Err(ProviderError::invalid_input(format!("max {} is too large", s.max)));
    }
    if s.subnets.is_empty() {
        return Err(ProviderError::invalid_input("a group needs at least one subnet"));
    }
    Ok(())
}

fn grace_seconds(ms: u64) -> i32 {
    // Auto Scaling counts whole seconds; a part of a second is rounded up so the grace is
    // never shorter than asked.
    i32::try_from(ms.div_ceil(1000)).unwrap_or(i32::MAX)
}

fn health_check_type(h: HealthCheck) -> &'static str {
    match h {
        HealthCheck::Ec2 => "EC2",
        HealthCheck::Elb => "ELB",
    }
}

/// The attributes of a `CreateAutoScalingGroup` / `UpdateAutoScalingGroup` call that come from
/// the settings.
pub struct GroupAttributes {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub vpc_zone_identifier: String,
    pub health_check_type: &'static str,
    pub grace_seconds: i32,
}

pub fn group_attributes(s: &GroupSettings) -> GroupAttributes {
    let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    GroupAttributes {
        min: n(s.min),
        max: n(s.max),
        desired: n(s.desired),
        vpc_zone_identifier: s.subnets.join(","),
        health_check_type: health_check_type(s.health_check),
        grace_seconds: grace_seconds(s.grace_period_ms),
    }
}

/// Auto Scaling tags, all propagated to the instances at launch.
pub fn asg_tags(group: &str, tags: &BTreeMap<String, String>) -> Vec<asg::Tag> {
    tags.iter()
        .map(|(k, v)| {
            asg::Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}

/// The tags of a described group.
pub fn tags_of(g: &asg::AutoScalingGroup) -> BTreeMap<String, String> {
    g.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// The settings of a described group.
pub fn settings_of(g: &asg::AutoScalingGroup, o: &Ownership) -> GroupSettings {
    let n = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    GroupSettings {
        min: n(g.min_size()),
        max: n(g.max_size()),
        desired: n(g.desired_capacity()),
        subnets: g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        tags: settings_tags(o, &tags_of(g)),
        health_check: if g.health_check_type() == Some("ELB") { HealthCheck::Elb } else { HealthCheck::Ec2 },
        grace_period_ms: u64::try_from(g.health_check_grace_period().unwrap_or(0)).unwrap_or(0) * 1000,
    }
}

/// The launch template (id or name) and version a group launches from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateRef {
    pub id: String,
    pub name: String,
    pub version: String,
}

impl TemplateRef {
    /// Whether this is exactly the template version drydock makes for that generation (and the
    /// join secrets of digest `join`, which the group's [`TAG_JOIN`] tag names): then its data is
    /// the generation's spec (the generation is a hash of it), and need not be read.
    pub fn is_generations(&self, o: &Ownership, join: Option<&str>) -> bool {
        self.name == template_name_for(o, join) && self.version == TEMPLATE_VERSION.to_string()
    }
}

pub fn template_of(g: &asg::AutoScalingGroup) -> Option<TemplateRef> {
    let spec = g
        .launch_template()
        .or_else(|| g.mixed_instances_policy()?.launch_template()?.launch_template_specification())?;
    Some(TemplateRef {
        id: spec.launch_template_id().unwrap_or_default().to_string(),
        name: spec.launch_template_name().unwrap_or_default().to_string(),
        version: spec.version().unwrap_or_default().to_string(),
    })
}

/// Where a group launches from: the template version alone, or a mixed instances policy that
/// lists the instance types (in order of preference) and the purchase option.
pub enum LaunchSpec {
    Template(asg::LaunchTemplateSpecification),
    Mixed(asg::MixedInstancesPolicy),
}

pub fn launch_spec(spec: &GenerationSpec, template_id: &str, version: i64) -> LaunchSpec {
    let template = asg::LaunchTemplateSpecification::builder()
        .launch_template_id(template_id)
        .version(version.to_string())
        .build();
    if !is_mixed(spec) {
        return LaunchSpec::Template(template);
    }
    let overrides = spec
        .instance_types
        .iter()
        .map(|t| asg::LaunchTemplateOverrides::builder().instance_type(t).build())
        .collect::<Vec<_>>();
    let distribution = match spec.capacity_type {
        // Spot: all of it, choosing among the pools with spare capacity in the listed order of
        // preference.
        CapacityType::Spot => asg::InstancesDistribution::builder()
            .on_demand_base_capacity(0)
            .on_demand_percentage_above_base_capacity(0)
            .spot_allocation_strategy("capacity-optimized-prioritized"),
        // On demand with several types: the first type while it can be had, then the next.
        CapacityType::OnDemand => asg::InstancesDistribution::builder()
            .on_demand_base_capacity(0)
            .on_demand_percentage_above_base_capacity(100)
            .on_demand_allocation_strategy("prioritized"),
    }
    .build();
    LaunchSpec::Mixed(
        asg::MixedInstancesPolicy::builder()
            .launch_template(
                asg::LaunchTemplate::builder()
                    .launch_template_specification(template)
                    .set_overrides(Some(overrides))
                    .build(),
            )
            .instances_distribution(distribution)
            .build(),
    )
}

/// A described mixed instances policy as a request may repeat it: the template named by id
/// or by name, not both (which describe returns and requests refuse).
pub fn policy_to_repeat(p: &asg::MixedInstancesPolicy) -> asg::MixedInstancesPolicy {
    let mut p = p.clone();
    if let Some(spec) = p.launch_template.as_mut().and_then(|lt| lt.launch_template_specification.as_mut()) {
        if spec.launch_template_id.is_some() {
            spec.launch_template_name = None;
        }
    }
    p
}

/// A described mixed instances policy, repeated with another launch template (by id) and
/// version: the instance types and the purchase option stay the group's own.
pub fn policy_with_template(
    p: &asg::MixedInstancesPolicy,
    template_id: &str,
    version: i64,
) -> asg::MixedInstancesPolicy {
    let mut p = p.clone();
    let spec = asg::LaunchTemplateSpecification::builder()
        .launch_template_id(template_id)
        .version(version.to_string())
        .build();
    match p.launch_template.as_mut() {
        Some(lt) => lt.launch_template_specification = Some(spec),
        None => p.launch_template = Some(asg::LaunchTemplate::builder().launch_template_specification(spec).build()),
    }
    p
}

fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<ec2::Tag> {
    tags.iter().map(|(k, v)| ec2::Tag::builder().key(k).value(v).build()).collect()
}

/// Tags for the launch template: the ownership, generation included, and the digest of the
/// join secrets it carries.
pub fn template_tags(o: &Ownership, join: Option<&str>) -> ec2::TagSpecification {
    let mut tags = o.tags();
    if let Some(join) = join {
        tags.insert(TAG_JOIN.to_string(), join.to_string());
    }
    ec2::TagSpecification::builder()
        .resource_type(ec2::ResourceType::LaunchTemplate)
        .set_tags(Some(ec2_tags(&tags)))
        .build()
}

/// A generation as launch template data. `root_device` is the image's root device name,
/// which the root volume's mapping must use; `inputs` what the bootstrap needs besides the
/// spec (see [`userdata::compose`]).
pub fn launch_template_data(
    spec: &GenerationSpec,
    o: &Ownership,
    root_device: Option<&str>,
    inputs: userdata::Inputs<'_>,
) -> Result<ec2::RequestLaunchTemplateData, ProviderError> {
    let first_type = spec
        .instance_types
        .first()
        .ok_or_else(|| ProviderError::invalid_input("a node group needs at least one instance type"))?;
    let node = NodeInfo {
        cluster: o.cluster.clone(),
        node_group: o.node_group.clone(),
        generation: o.generation.clone(),
        role: spec.role,
        kubernetes_version: spec.kubernetes_version.clone(),
        labels: spec.labels.clone(),
        taints: spec.taints.clone(),
        bootstrap: spec.bootstrap.clone(),
        rebuild: spec.rebuild,
    };
    let hop_limit = i32::try_from(spec.metadata.hop_limit)
        .ok()
        .filter(|h| (1..=64).contains(h))
        .ok_or_else(|| ProviderError::invalid_input("metadata hop_limit must be between 1 and 64"))?;
    let mut data = ec2::RequestLaunchTemplateData::builder()
        .image_id(&spec.image)
        .user_data(userdata::compose_base64(&node, spec.user_data.as_deref(), inputs)?)
        .metadata_options(
            ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_endpoint(ec2::LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_tokens(if spec.metadata.http_tokens_required {
                    ec2::LaunchTemplateHttpTokensState::Required
                } else {
                    ec2::LaunchTemplateHttpTokensState::Optional
                })
                .http_put_response_hop_limit(hop_limit)
                .build(),
        )
        // Volumes are tagged like their instances, so that everything of a lineage is found.
        .tag_specifications(
            ec2::LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ec2::ResourceType::Volume)
                .set_tags(Some(ec2_tags(&o.tags())))
                .build(),
        );
    if !is_mixed(spec) {
        // A mixed instances policy names the types itself; a plain group launches this one.
        data = data.instance_type(ec2::InstanceType::from(first_type.as_str()));
    }
    if let Some(rv) = &spec.root_volume {
        let device = root_device.ok_or_else(|| {
            ProviderError::invalid_input(format!(
                "image {} names no root device, so its root volume cannot be set",
                spec.image
            ))
        })?;
        let mut ebs = ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
            .volume_size(i32::try_from(rv.size_gib).unwrap_or(i32::MAX))
            .volume_type(ec2::VolumeType::from(rv.volume_type.as_str()))
            .encrypted(rv.encrypted)
            .delete_on_termination(true);
        if let Some(iops) = rv.iops {
            ebs = ebs.iops(i32::try_from(iops).unwrap_or(i32::MAX));
        }
        data = data.block_device_mappings(
            ec2::LaunchTemplateBlockDeviceMappingRequest::builder().device_name(device).ebs(ebs.build()).build(),
        );
    }
    if !spec.security_groups.is_empty() {
        data = data.set_security_group_ids(Some(spec.security_groups.clone()));
    }
    if let Some(profile) = &spec.instance_profile {
        let p = ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        // An ARN or a name: both are what people write.
        let p = if profile.starts_with("arn:") { p.arn(profile) } else { p.name(profile) };
        data = data.iam_instance_profile(p.build());
    }
    if let Some(key) = &spec.key_name {
        data = data.key_name(key);
    }
    Ok(data.build())
}

/// A generation's spec, rebuilt from its launch template version and the group that uses it
/// (whose mixed instances policy holds the instance types and the purchase option), and the
/// digest of the join secrets the template carries.
pub fn spec_from(
    data: &ec2::ResponseLaunchTemplateData,
    g: &asg::AutoScalingGroup,
) -> (GenerationSpec, Option<String>) {
    let parsed = data.user_data().and_then(userdata::parse_base64);
    let (node, user_data, join_digest) = match parsed {
        Some(p) => (p.node, p.user_data, p.join_digest),
        // Not drydock's layout (edited by hand): the user data as it is, nothing else known.
        None => (NodeInfo::default(), data.user_data().map(decode_lossy), None),
    };
    let mixed = g.mixed_instances_policy();
    let instance_types = match mixed.and_then(|m| m.launch_template()) {
        Some(lt) if !lt.overrides().is_empty() => {
            lt.overrides().iter().filter_map(|o| o.instance_type()).map(str::to_string).collect()
        }
        _ => data.instance_type().map(|t| vec![t.as_str().to_string()]).unwrap_or_default(),
    };
    let spot = mixed
        .and_then(|m| m.instances_distribution())
        .is_some_and(|d| d.on_demand_percentage_above_base_capacity() == Some(0));
    let root_volume = data.block_device_mappings().iter().find_map(|m| {
        let ebs = m.ebs()?;
        Some(RootVolume {
            size_gib: ebs.volume_size().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
            volume_type: ebs.volume_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            encrypted: ebs.encrypted().unwrap_or(false),
            iops: ebs.iops().and_then(|i| u32::try_from(i).ok()),
        })
    });
    let metadata = match data.metadata_options() {
        Some(m) => Metadata {
            http_tokens_required: m.http_tokens() == Some(&ec2::LaunchTemplateHttpTokensState::Required),
            hop_limit: m.http_put_response_hop_limit().and_then(|h| u32::try_from(h).ok()).unwrap_or(1),
        },
        None => Metadata { http_tokens_required: false, hop_limit: 1 },
    };
    let spec = GenerationSpec {
        image: data.image_id().unwrap_or_default().to_string(),
        instance_types,
        user_data,
        labels: node.labels,
        taints: node.taints,
        root_volume,
        metadata,
        capacity_type: if spot { CapacityType::Spot } else { CapacityType::OnDemand },
        kubernetes_version: node.kubernetes_version,
        security_groups: data.security_group_ids().to_vec(),
        instance_profile: data.iam_instance_profile().and_then(|p| p.name().or(p.arn())).map(str::to_string),
        key_name: data.key_name().map(str::to_string),
        role: node.role,
        bootstrap: node.bootstrap,
        rebuild: node.rebuild,
    };
    (spec, join_digest)
}

fn decode_lossy(b64: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => b64.to_string(),
    }
}

/// The spec as far as the group itself shows it, without its launch template's data (not
/// read because the group launches from its generation's own template, or gone because the
/// template was deleted while the group was being deleted): the role from the role tag, the
/// image and instance type from the instances, the types and purchase option from a mixed
/// instances policy. The rest is left at its default.
pub fn partial_spec(g: &asg::AutoScalingGroup, instances: &[Instance]) -> GenerationSpec {
    let mixed = g.mixed_instances_policy();
    let mut types: Vec<String> = match mixed.and_then(|m| m.launch_template()) {
        Some(lt) => lt.overrides().iter().filter_map(|o| o.instance_type()).map(str::to_string).collect(),
        None => vec![],
    };
    if types.is_empty() {
        types = instances.iter().map(|i| i.instance_type.clone()).filter(|t| !t.is_empty()).take(1).collect();
    }
    let spot = mixed
        .and_then(|m| m.instances_distribution())
        .is_some_and(|d| d.on_demand_percentage_above_base_capacity() == Some(0));
    GenerationSpec {
        image: instances.iter().map(|i| i.image.clone()).find(|i| !i.is_empty()).unwrap_or_default(),
        instance_types: types,
        capacity_type: if spot { CapacityType::Spot } else { CapacityType::OnDemand },
        role: role_of(&tags_of(g)).unwrap_or_default(),
        ..GenerationSpec::default()
    }
}

/// An EC2 instance's state as drydock names it. Stopped and stopping instances count as
/// shutting down: they serve nothing and their group replaces them.
pub fn instance_state(name: Option<&ec2::InstanceStateName>) -> Option<InstanceState> {
    Some(match name? {
        ec2::InstanceStateName::Pending => InstanceState::Pending,
        ec2::InstanceStateName::Running => InstanceState::Running,
        ec2::InstanceStateName::ShuttingDown | ec2::InstanceStateName::Stopping | ec2::InstanceStateName::Stopped => {
            InstanceState::ShuttingDown
        }
        ec2::InstanceStateName::Terminated => InstanceState::Terminated,
        _ => return None,
    })
}

/// The state an Auto Scaling lifecycle state implies, for an instance EC2 did not describe.
pub fn lifecycle_state(lifecycle: &str) -> InstanceState {
    if lifecycle.starts_with("Pending") {
        InstanceState::Pending
    } else if lifecycle == "Terminated" {
        InstanceState::Terminated
    } else if lifecycle.starts_with("Terminat") || lifecycle.starts_with("Detach") {
        InstanceState::ShuttingDown
    } else {
        InstanceState::Running
    }
}

/// Whether Auto Scaling counts the instance as serving: in service and healthy.
pub fn asg_healthy(i: &asg::Instance) -> bool {
    i.lifecycle_state().map(|s| s.as_str()) == Some("InService") && i.health_status() == Some("Healthy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::Inputs;

    fn ownership() -> Ownership {
        Ownership {
            lineage: "0f1e2d3c-aaaa-bbbb-cccc-000000000001".into(),
            cluster: "fleet[\"eu\"]".into(),
            node_group: "workers[\"eu-west-1a\"]".into(),
            generation: "3f2a9c01bd".into(),
        }
    }

    fn spec() -> GenerationSpec {
        GenerationSpec {
            image: "ami-0feed5eed2026111a".into(),
            instance_types: vec!["m6i.xlarge".into()],
            user_data: Some("#!/bin/bash\necho hi\n".into()),
            labels: BTreeMap::from([("node.kubernetes.io/pool".into(), "general".into())]),
            taints: vec!["dedicated=x:NoSchedule".into()],
            root_volume: Some(RootVolume {
                size_gib: 100,
                volume_type: "gp3".into(),
                encrypted: true,
                iops: Some(4000),
            }),
            metadata: Metadata { http_tokens_required: true, hop_limit: 1 },
            capacity_type: CapacityType::OnDemand,
            kubernetes_version: "1.31".into(),
            security_groups: vec!["sg-1".into(), "sg-2".into()],
            instance_profile: Some("prod-node".into()),
            key_name: Some("ops".into()),
            role: Role::ControlPlane,
            bootstrap: None,
            rebuild: 0,
        }
    }

    /// What EC2 answers for the data a request carried (the fields this provider writes).
    fn as_response(r: &ec2::RequestLaunchTemplateData) -> ec2::ResponseLaunchTemplateData {
        let mut b = ec2::ResponseLaunchTemplateData::builder()
            .set_image_id(r.image_id().map(str::to_string))
            .set_instance_type(r.instance_type().cloned())
            .set_user_data(r.user_data().map(str::to_string))
            .set_security_group_ids(Some(r.security_group_ids().to_vec()))
            .set_key_name(r.key_name().map(str::to_string));
        if let Some(m) = r.metadata_options() {
            b = b.metadata_options(
                ec2::LaunchTemplateInstanceMetadataOptions::builder()
                    .set_http_tokens(m.http_tokens().cloned())
                    .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
                    .build(),
            );
        }
        for m in r.block_device_mappings() {
            let e = m.ebs().unwrap();
            b = b.block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMapping::builder()
                    .set_device_name(m.device_name().map(str::to_string))
                    .ebs(
                        ec2::LaunchTemplateEbsBlockDevice::builder()
                            .set_volume_size(e.volume_size())
                            .set_volume_type(e.volume_type().cloned())
                            .set_encrypted(e.encrypted())
                            .set_iops(e.iops())
                            .build(),
                    )
                    .build(),
            );
        }
        if let Some(p) = r.iam_instance_profile() {
            b = b.iam_instance_profile(
                ec2::LaunchTemplateIamInstanceProfileSpecification::builder()
                    .set_name(p.name().map(str::to_string))
                    .set_arn(p.arn().map(str::to_string))
                    .build(),
            );
        }
        b.build()
    }

    fn group_with(launch: LaunchSpec) -> asg::AutoScalingGroup {
        let b = asg::AutoScalingGroup::builder();
        match launch {
            LaunchSpec::Template(t) => b.launch_template(t),
            LaunchSpec::Mixed(m) => b.mixed_instances_policy(m),
        }
        .build()
    }

    #[test]
    fn a_spec_round_trips_through_launch_template_data() {
        for s in [
            spec(),
            GenerationSpec {
                capacity_type: CapacityType::Spot,
                instance_types: vec!["m6i.2xlarge".into(), "m5.2xlarge".into()],
                user_data: None,
                root_volume: None,
                security_groups: vec![],
                instance_profile: Some("arn:aws:iam::1:instance-profile/x".into()),
                key_name: None,
                role: Role::Worker,
                metadata: Metadata { http_tokens_required: false, hop_limit: 2 },
                ..spec()
            },
            GenerationSpec { instance_types: vec!["c7g.large".into(), "c6g.large".into()], ..spec() },
        ] {
            let data = launch_template_data(&s, &ownership(), Some("/dev/xvda"), Inputs::default()).unwrap();
            assert_eq!(data.instance_type().is_some(), !is_mixed(&s));
            let g = group_with(launch_spec(&s, "lt-1", 7));
            assert_eq!(
                template_of(&g),
                Some(TemplateRef { id: "lt-1".into(), name: String::new(), version: "7".into() })
            );
            assert_eq!(spec_from(&as_response(&data), &g), (s, None));
        }
    }

    #[test]
    fn a_repeated_policy_names_its_template_once() {
        let LaunchSpec::Mixed(policy) =
            launch_spec(&GenerationSpec { capacity_type: CapacityType::Spot, ..spec() }, "lt-1", 1)
        else {
            panic!("spot is mixed")
        };
        let mut described = policy.clone();
        if let Some(s) = described.launch_template.as_mut().and_then(|l| l.launch_template_specification.as_mut()) {
            s.launch_template_name = Some("drydock-x".into());
        }
        assert_eq!(policy_to_repeat(&described), policy);
    }

    #[test]
    fn a_root_volume_needs_the_images_root_device() {
        let none = Inputs::default();
        let e = launch_template_data(&spec(), &ownership(), None, none).unwrap_err();
        assert!(e.message.contains("root device"), "{e}");
        let data = launch_template_data(&spec(), &ownership(), Some("/dev/sda1"), none).unwrap();
        assert_eq!(data.block_device_mappings()[0].device_name(), Some("/dev/sda1"));
        let bad = GenerationSpec { instance_types: vec![], ..spec() };
        assert!(launch_template_data(&bad, &ownership(), Some("/dev/xvda"), none).is_err());
    }

    #[test]
    fn templates_with_join_secrets_are_named_for_their_digest() {
        let o = ownership();
        assert_eq!(template_name_for(&o, None), template_name(&o));
        let a = template_name_for(&o, Some("sha256:0123456789abcdef"));
        assert_eq!(a, "drydock-60398680b718-3f2a9c01bd-j0123456789abcdef-fleet-eu-workers-eu-west-1a");
        assert_ne!(template_name_for(&o, Some("sha256:0123456789abcdee")), a);
        let long = Ownership { node_group: "n".repeat(300), ..o.clone() };
        let name = template_name_for(&long, Some("sha256:0123456789abcdef"));
        assert!(name.len() <= 128 && name.contains("-j0123456789abcdef-"), "{name}");
        // Anything in a digest that a name cannot hold is left out.
        assert!(template_name_for(&o, Some("x y/z")).contains("-jxyz-"));
    }

    #[test]
    fn a_bootstrap_and_the_join_digest_round_trip_through_launch_template_data() {
        let join = JoinSecrets {
            token: "abcdef.0123456789abcdef".into(),
            ca_cert_hashes: vec!["sha256:00".into()],
            certificate_key: Some("k".into()),
        };
        let s = GenerationSpec {
            bootstrap: Some(Bootstrap::Kubeadm { api_server_endpoint: "10.0.0.1:6443".into() }),
            ..spec()
        };
        assert_eq!(effective_join(&s, Some(&join)), Some(&join));
        assert_eq!(effective_join(&spec(), Some(&join)), None);
        let inputs = Inputs { join: Some(&join), eks: None };
        let data = launch_template_data(&s, &ownership(), Some("/dev/xvda"), inputs).unwrap();
        let g = group_with(launch_spec(&s, "lt-1", 1));
        assert_eq!(spec_from(&as_response(&data), &g), (s.clone(), Some(join.digest())));
        // Without its secrets, a kubeadm template cannot be written.
        assert!(launch_template_data(&s, &ownership(), Some("/dev/xvda"), Inputs::default()).is_err());
    }

    #[test]
    fn the_join_tag_is_drydocks_and_never_a_setting() {
        let s = GroupSettings { tags: BTreeMap::from([("team".into(), "platform".into())]), ..Default::default() };
        let tags = group_tags(&ownership(), Some(Role::Worker), Some("sha256:0123456789abcdef"), &s).unwrap();
        assert_eq!(tags[TAG_JOIN], "sha256:0123456789abcdef");
        assert_eq!(settings_tags(&ownership(), &tags), s.tags);
        let bad = GroupSettings { tags: BTreeMap::from([(TAG_JOIN.into(), "x".into())]), ..Default::default() };
        assert!(group_tags(&ownership(), None, None, &bad).is_err());
    }

    #[test]
    fn a_policy_is_repeated_with_another_template() {
        let s = GenerationSpec {
            capacity_type: CapacityType::Spot,
            instance_types: vec!["a".into(), "b".into()],
            ..spec()
        };
        let LaunchSpec::Mixed(policy) = launch_spec(&s, "lt-1", 1) else { panic!("spot is mixed") };
        let LaunchSpec::Mixed(expected) = launch_spec(&s, "lt-2", 1) else { panic!("spot is mixed") };
        let mut described = policy.clone();
        if let Some(spec) = described.launch_template.as_mut().and_then(|l| l.launch_template_specification.as_mut()) {
            spec.launch_template_name = Some("drydock-x".into());
        }
        assert_eq!(policy_with_template(&described, "lt-2", 1), expected);
    }

    #[test]
    fn template_names_are_valid_deterministic_and_distinct() {
        let a = template_name(&ownership());
        assert_eq!(a, template_name(&ownership()));
        assert!(a.starts_with(&template_prefix(&ownership())), "{a}");
        assert!(a.ends_with("-3f2a9c01bd-fleet-eu-workers-eu-west-1a"), "{a}");
        assert_eq!(template_prefix(&ownership()).len(), "drydock-".len() + 13);
        // Existing templates are found by this prefix: it must never change.
        assert_eq!(template_prefix(&ownership()), "drydock-60398680b718-");
        assert!(a.len() <= 128 && a.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)), "{a}");
        // The same readable part, another node group: another template.
        let other = Ownership { node_group: "workers[\"eu/west-1a\"]".into(), ..ownership() };
        assert_ne!(template_name(&other), a);
        let next = Ownership { generation: "0000000000".into(), ..ownership() };
        assert_ne!(template_name(&next), a);
        let long = Ownership { node_group: "n".repeat(300), ..ownership() };
        assert!(template_name(&long).len() <= 128);
    }

    #[test]
    fn tags_add_ownership_role_and_the_cluster_tag_and_refuse_reserved_keys() {
        let mut s = GroupSettings { tags: BTreeMap::from([("team".into(), "platform".into())]), ..Default::default() };
        let tags = group_tags(&ownership(), None, None, &s).unwrap();
        assert_eq!(tags["kubernetes.io/cluster/fleet[\"eu\"]"], "owned");
        assert_eq!(tags["drydock:generation"], "3f2a9c01bd");
        assert_eq!(tags["team"], "platform");
        assert_eq!(settings_tags(&ownership(), &tags), s.tags);
        s.tags.insert("drydock:lineage".into(), "other".into());
        assert!(group_tags(&ownership(), None, None, &s).unwrap_err().message.contains("ownership"));
        s.tags = BTreeMap::from([("aws:x".into(), "y".into())]);
        assert!(group_tags(&ownership(), None, None, &s).is_err());
        s.tags = BTreeMap::from([("kubernetes.io/cluster/fleet[\"eu\"]".into(), "shared".into())]);
        let tags = group_tags(&ownership(), None, None, &s).unwrap();
        assert_eq!(settings_tags(&ownership(), &tags), s.tags);
        // The role is a tag of drydock's own, not one of the settings'.
        for role in [Role::Worker, Role::ControlPlane] {
            let tags = group_tags(&ownership(), Some(role), None, &s).unwrap();
            assert_eq!(tags[TAG_ROLE], role_name(role));
            assert_eq!(role_of(&tags), Some(role));
            assert_eq!(settings_tags(&ownership(), &tags), s.tags);
        }
        s.tags = BTreeMap::from([("drydock:role".into(), "worker".into())]);
        assert!(group_tags(&ownership(), None, None, &s).is_err());
        assert_eq!(role_of(&BTreeMap::from([(TAG_ROLE.into(), "boss".into())])), None);
    }

    #[test]
    fn a_generations_own_template_is_known_by_name_and_version() {
        let o = ownership();
        let own = TemplateRef { id: "lt-1".into(), name: template_name(&o), version: "1".into() };
        assert!(own.is_generations(&o, None));
        for other in [
            TemplateRef { version: "2".into(), ..own.clone() },
            TemplateRef { version: "$Latest".into(), ..own.clone() },
            TemplateRef { name: "hand-made".into(), ..own.clone() },
            TemplateRef { name: String::new(), ..own.clone() },
        ] {
            assert!(!other.is_generations(&o, None), "{other:?}");
        }
        // Another generation's template is not this one's.
        assert!(!own.is_generations(&Ownership { generation: "0000000000".into(), ..o.clone() }, None));
        // With join secrets, the generation's own template is the one named for their digest.
        let digest = "sha256:0123456789abcdef";
        assert!(!own.is_generations(&o, Some(digest)));
        let joined = TemplateRef { name: template_name_for(&o, Some(digest)), ..own.clone() };
        assert!(joined.is_generations(&o, Some(digest)));
        assert!(!joined.is_generations(&o, None));
        assert!(!joined.is_generations(&o, Some("sha256:fedcba9876543210")));
    }

    #[test]
    fn a_partial_spec_takes_what_the_group_shows() {
        let s = GenerationSpec { capacity_type: CapacityType::Spot, instance_types: vec!["m5.large".into()], ..spec() };
        let tags = group_tags(&ownership(), Some(Role::ControlPlane), None, &GroupSettings::default()).unwrap();
        let LaunchSpec::Mixed(policy) = launch_spec(&s, "lt-1", 1) else { panic!("spot is mixed") };
        let g = asg::AutoScalingGroup::builder()
            .mixed_instances_policy(policy)
            .set_tags(Some(
                asg_tags("g", &tags)
                    .into_iter()
                    .map(|t| asg::TagDescription::builder().set_key(t.key).set_value(t.value).build())
                    .collect(),
            ))
            .build();
        let i = Instance {
            id: "i-1".into(),
            zone: "a".into(),
            subnet: "s".into(),
            image: "ami-1".into(),
            instance_type: "m5.large".into(),
            state: InstanceState::Running,
            healthy: true,
            launched_at_ms: 0,
            healthy_at_ms: None,
        };
        let p = partial_spec(&g, &[i]);
        assert_eq!(
            (p.image.as_str(), p.instance_types.clone(), p.capacity_type, p.role),
            ("ami-1", vec!["m5.large".to_string()], CapacityType::Spot, Role::ControlPlane)
        );
        // Without instances nor a policy nor tags: nothing but defaults.
        let p = partial_spec(&asg::AutoScalingGroup::builder().build(), &[]);
        assert_eq!(p, GenerationSpec::default());
    }

    #[test]
    fn settings_are_checked_and_round_trip_through_a_group() {
        let s = GroupSettings {
            min: 1,
            max: 5,
            desired: 3,
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            tags: BTreeMap::from([("team".into(), "platform".into())]),
            health_check: HealthCheck::Elb,
            grace_period_ms: 120_000,
        };
        check_settings(&s).unwrap();
        let a = group_attributes(&s);
        let g = asg::AutoScalingGroup::builder()
            .min_size(a.min)
            .max_size(a.max)
            .desired_capacity(a.desired)
            .vpc_zone_identifier(a.vpc_zone_identifier)
            .health_check_type(a.health_check_type)
            .health_check_grace_period(a.grace_seconds)
            .set_tags(Some(
                asg_tags("g", &group_tags(&ownership(), None, None, &s).unwrap())
                    .into_iter()
                    .map(|t| asg::TagDescription::builder().set_key(t.key).set_value(t.value).build())
                    .collect(),
            ))
            .build();
        assert_eq!(settings_of(&g, &ownership()), s);
        assert!(check_settings(&GroupSettings { desired: 6, ..s.clone() }).is_err());
        assert!(check_settings(&GroupSettings { min: 4, ..s.clone() }).is_err());
        assert!(check_settings(&GroupSettings { subnets: vec![], ..s.clone() }).is_err());
        assert_eq!(grace_seconds(1), 1);
        assert_eq!(grace_seconds(u64::MAX), i32::MAX);
    }

    #[test]
    fn states_map_from_ec2_and_auto_scaling() {
        use ec2::InstanceStateName as N;
        assert_eq!(instance_state(Some(&N::Running)), Some(InstanceState::Running));
        assert_eq!(instance_state(Some(&N::Stopped)), Some(InstanceState::ShuttingDown));
        assert_eq!(instance_state(None), None);
        assert_eq!(lifecycle_state("Pending:Wait"), InstanceState::Pending);
        assert_eq!(lifecycle_state("InService"), InstanceState::Running);
        assert_eq!(lifecycle_state("Terminating:Wait"), InstanceState::ShuttingDown);
        assert_eq!(lifecycle_state("Terminated"), InstanceState::Terminated);
    }
}
