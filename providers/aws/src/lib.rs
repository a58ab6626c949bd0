//! drydock's AWS provider: node groups as EC2 launch templates and Auto Scaling groups, the
//! EKS clusters their nodes join ([`AwsProvider::eks_cluster`]), and EKS tokens
//! ([`AwsProvider::eks_token_source`], see [`eks`]).
//!
//! # The mapping
//!
//! - **One launch template per generation** (named by [`mapping::template_name`] from the
//!   lineage, cluster, node group and generation, and tagged with the ownership), holding one
//!   version: the image, the instance type (unless a mixed instances policy names them), the
//!   user data (see [`userdata`]: a MIME message whose drydock part leaves the node's labels,
//!   taints, role, Kubernetes version and bootstrap in `/etc/drydock/` and, for a kubeadm
//!   bootstrap, writes a `JoinConfiguration` and runs `kubeadm join`; preceded, for an EKS
//!   bootstrap, by a nodeadm `NodeConfig` made from `DescribeCluster`; followed by the node
//!   group's own user data), the root volume (on the image's root device), the metadata
//!   options (IMDSv2 required unless `metadata` says otherwise), the security groups, the
//!   instance profile and the key. Not one template per node group with a version per
//!   generation: moto 5.2.5 cannot launch from a second version that carries user data, and one
//!   template per generation lets one sweep of every template's latest version read them all.
//!   The control-plane members of a generation share its template; a rollback to an earlier
//!   spec finds that generation's template if it was kept.
//! - **Join secrets** (a kubeadm bootstrap's token, CA hashes and certificate key) are not part
//!   of the spec, and are rotated without a new generation. A generation's template that carries
//!   them is named for their digest as well ([`mapping::template_name_for`]: the generation's
//!   name with `-j` and the digest's 16 hex digits) and tagged `drydock:join` = the digest, as
//!   is its group ([`mapping::TAG_JOIN`], propagated to the instances, which so record the
//!   secrets they were launched with). `update_join` makes the template for the new secrets
//!   beside the generation's (a second version of the same template would do, but moto 5.2.5
//!   cannot launch from it), points the group at it (`UpdateAutoScalingGroup` with the launch
//!   template, or its own mixed instances policy repeated with the new template), sets the
//!   group's tag, and deletes the generation's templates with older secrets that no group uses
//!   any more. Running instances are not touched; the group keeps its name, generation and
//!   instances; the cloud launches every later instance with the new secrets. Each step looks
//!   before it acts, so a repeat after any failure finds what the first try did and finishes
//!   it; a create retried with secrets rotated since does the same. A control-plane member
//!   created after a rotation finds the template of the current secrets by name.
//!   `drydock:` tags are the provider's: `update_group` keeps the join tag, and observation
//!   never reports them among the settings' tags.
//! - **One Auto Scaling group per generation**, named by the caller, pinned to its template's
//!   version, in the settings' subnets, with their health check type, grace period and sizes,
//!   and tagged with the ownership tags, `drydock:role`, `kubernetes.io/cluster/<cluster>` =
//!   `owned` and the settings' tags, all propagated to the instances at launch. Spot capacity
//!   or several instance types use a mixed instances policy (spot:
//!   `capacity-optimized-prioritized`; on demand: `prioritized`, in the listed order).
//! - Deleting a group first deletes launch templates of its node group: all of them when it is
//!   the node group's last group, otherwise those no group uses beyond the newest
//!   [`mapping::KEEP_TEMPLATES`] (kept for a rollback by hand); then it force-deletes the group,
//!   which terminates its instances.
//!
//! # Observation
//!
//! `DescribeAutoScalingGroups` filtered by the `drydock:lineage` tag (100 a page) and
//! `DescribeInstances` filtered by the lineage tag (1,000 a page), skipped when no group has an
//! instance: 6 calls for 500 node groups. Launch template data is read only for groups that do
//! not launch from exactly their generation's own template (version
//! [`mapping::TEMPLATE_VERSION`] of [`mapping::template_name_for`] the digest their
//! `drydock:join` tag names, if any), or have no [`mapping::TAG_ROLE`] tag: a generation's
//! template is immutable and the generation is a hash of its spec, so for the others the spec
//! is the one the state records, what the planner needs of it (role, image, instance types,
//! purchase option) comes from the group and its instances (the observed group is then
//! `spec_partial`), and the join digest is the group's tag. A template that is read gives the
//! whole spec, its bootstrap included, and the digest of the secrets it carries, which is then
//! what observation reports (a rotation interrupted before its tag is reported as it is). Those templates that are read
//! come from one sweep of every template's latest version (200 a page) when more than a few
//! are involved, and one call per template for any it missed; versions never change, so each
//! is read once per process. An instance is healthy when Auto Scaling has it `InService` and
//! `Healthy` and EC2 has it running. Concurrent observations are coalesced: at most one is in
//! flight, and those who asked meanwhile share the next one. Every call is counted in
//! [`Provider::stats`] by AWS action (EKS's `DescribeCluster` too, read once per cluster when a
//! template with an EKS bootstrap is written), and each observation logs one `tracing` event
//! with its call count.
//!
//! # Configuration
//!
//! Credentials and region come from the standard AWS chain (environment, shared config and
//! credential files, `credential_process`, SSO, container and instance metadata); the
//! `provider "aws"` block's `region`, `profile` and `endpoint` override it, and
//! `AWS_ENDPOINT_URL` points every call elsewhere (LocalStack, moto). Nothing is loaded until
//! the first call. Throttling and 5xx answers are retried with the SDK's standard exponential
//! backoff (5 attempts).
//!
//! [`Provider::stats`]: drydock_provider::Provider::stats

pub mod eks;
mod error;
pub mod mapping;
mod provider;
pub mod userdata;

pub use eks::{EksCluster, EksTokenSource};
pub use error::{classify, AwsError};
pub use provider::{AwsConfig, AwsProvider};
