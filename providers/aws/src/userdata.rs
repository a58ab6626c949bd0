//! The user data of a launch template version: a MIME multi-part message that cloud-init
//! runs in order. Its parts, in this order:
//!
//! 1. With an EKS bootstrap only: a `NodeConfig` for Amazon Linux 2023's `nodeadm`, in a part of
//!    type [`NODEADM_CONTENT_TYPE`]. `nodeadm` reads it from the instance metadata itself (in its
//!    `nodeadm-config` unit, before cloud-init runs any script, and starts the kubelet after
//!    them), wherever it is in the message; cloud-init skips the type. It comes first, as in
//!    nodeadm's and eksctl's documentation. The cluster's endpoint, certificate authority and
//!    service CIDR come from EKS (see [`EksCluster`]), the kubelet flags from the spec's labels
//!    and taints.
//! 2. drydock's shell script: it leaves what the node is (cluster, node group, role, Kubernetes
//!    version, labels, taints, bootstrap) in `/etc/drydock/node.env` for the bootstrap and in
//!    `/etc/drydock/node.json` for machines and for [`parse`]. With a kubeadm bootstrap it then
//!    writes a `JoinConfiguration` to `/etc/drydock/kubeadm-join.yaml` (mode 0600, written under
//!    `umask 077`) and runs `kubeadm join --config` on it. The join secrets appear nowhere else:
//!    not in `node.json`, not in `node.env`.
//! 3. The node group's own `user_data`, byte for byte, when it has one.
//!
//! `NodeConfig` and `JoinConfiguration` are written as JSON, which is YAML: `nodeadm` decodes
//! either (Kubernetes' universal decoder), and so does kubeadm. JSON strings are quoted and
//! escaped, so no value can break out of its place, and no line of a JSON document can be a
//! heredoc terminator.
//!
//! The layout is fixed and written only here, so that [`parse`] can take it apart exactly and
//! observation can rebuild a generation's spec (its bootstrap included) and the digest of the
//! join secrets from its launch template.

use std::collections::BTreeMap;

use base64::Engine as _;
use drydock_provider::{Bootstrap, JoinSecrets, ProviderError, Role};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use drydock_provider::bootstrap::NODEADM_CONTENT_TYPE;

use crate::eks::EksCluster;

/// The MIME boundary. A node group's user data that contains it is refused, so the parts can
/// always be told apart.
pub const BOUNDARY: &str = "==drydock-7f3c9e1d==";

/// EC2 refuses user data over 16 KiB (before base64); refusing it here names the node group.
pub const MAX_USER_DATA: usize = 16 * 1024;

/// Where a kubeadm bootstrap leaves its `JoinConfiguration` on the node.
pub const KUBEADM_JOIN_FILE: &str = "/etc/drydock/kubeadm-join.yaml";

const JSON_OPEN: &str = "cat > /etc/drydock/node.json <<'DRYDOCK_EOF'\n";
const KUBEADM_OPEN: &str = "cat > /etc/drydock/kubeadm-join.yaml <<'DRYDOCK_EOF'\n";
const HEREDOC_END: &str = "\nDRYDOCK_EOF\n";
const SCRIPT_TYPE: &str = "text/x-shellscript; charset=\"utf-8\"";

/// What the drydock part tells the node about itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub cluster: String,
    pub node_group: String,
    pub generation: String,
    pub role: Role,
    pub kubernetes_version: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    /// How the node joins its cluster. Absent in templates written before bootstraps existed,
    /// and left out when `None`, so that their user data stays byte for byte what it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
    /// The spec's rebuild count (`apply --replace`); left out when 0, so older templates and
    /// their user data are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rebuild: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the bootstrap needs besides the spec, given or read when the launch template is
/// written: the join secrets (kubeadm) and the EKS cluster as `DescribeCluster` shows it (EKS).
#[derive(Clone, Copy, Debug, Default)]
pub struct Inputs<'a> {
    pub join: Option<&'a JoinSecrets>,
    pub eks: Option<&'a EksCluster>,
}

/// What [`parse`] recovers from a launch template's user data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub node: NodeInfo,
    pub user_data: Option<String>,
    /// The [`JoinSecrets::digest`] of the secrets the kubeadm `JoinConfiguration` carries;
    /// `None` without a kubeadm bootstrap.
    pub join_digest: Option<String>,
}

/// Single-quotes a value for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The MIME content type cloud-init needs for the node group's own user data.
fn content_type(user_data: &str) -> &'static str {
    let first = user_data.lines().next().unwrap_or("");
    if first.starts_with("#cloud-config") {
        "text/cloud-config"
    } else if first.starts_with("#cloud-boothook") {
        "text/cloud-boothook"
    } else if first.starts_with("#include") {
        "text/x-include-url"
    } else {
        "text/x-shellscript"
    }
}

/// The kubelet's `--node-labels` value: `k=v,…` in key order.
fn node_labels(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A taint as kubeadm's `nodeRegistration.taints` takes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Taint {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    effect: String,
}

/// `key=value:Effect` or `key:Effect`, as the kubelet's `--register-with-taints` takes it.
fn parse_taint(raw: &str) -> Result<Taint, ProviderError> {
    let bad = |why: &str| {
        ProviderError::invalid_input(format!("taint `{raw}`: {why}; write `key=value:Effect` or `key:Effect`"))
    };
    let (kv, effect) = raw.rsplit_once(':').ok_or_else(|| bad("no effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad("the effect is not NoSchedule, PreferNoSchedule or NoExecute"));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(bad("no key"));
    }
    Ok(Taint { key: key.to_string(), value, effect: effect.to_string() })
}

/// `major.minor` of a Kubernetes version (`1.31`, `v1.31.2`, `1.30.4-eks-…`).
fn minor_version(version: &str) -> Option<(u32, u32)> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((major, minor.parse().ok()?))
}

/// The kubeadm API version for a Kubernetes version: `v1beta4` from 1.31 (where kubeadm made it
/// the default), `v1beta3` before.
pub fn kubeadm_api_version(kubernetes_version: &str) -> Result<&'static str, ProviderError> {
    match minor_version(kubernetes_version) {
        Some(v) if v >= (1, 31) => Ok("kubeadm.k8s.io/v1beta4"),
        Some(_) => Ok("kubeadm.k8s.io/v1beta3"),
        None => Err(ProviderError::invalid_input(format!(
            "kubernetes_version `{kubernetes_version}` is not a version such as 1.31: the kubeadm bootstrap needs it \
             to choose the JoinConfiguration's API version"
        ))),
    }
}

/// The fields of a `JoinConfiguration` drydock writes, in the order it writes them. Reading one
/// back takes the same shape (unknown fields ignored).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinConfiguration {
    api_version: String,
    kind: String,
    discovery: Discovery,
    node_registration: NodeRegistration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    control_plane: Option<JoinControlPlane>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Discovery {
    bootstrap_token: BootstrapTokenDiscovery,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapTokenDiscovery {
    api_server_endpoint: String,
    token: String,
    #[serde(default)]
    ca_cert_hashes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeRegistration {
    /// v1beta4: a list of `{name, value}`; v1beta3: a map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kubelet_extra_args: Option<Value>,
    /// Left out when the spec has none, so that kubeadm's default applies (the control-plane
    /// taint on control-plane members, nothing on workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    taints: Option<Vec<Taint>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinControlPlane {
    certificate_key: String,
}

/// The kubeadm `JoinConfiguration` for the node, as JSON text (which is YAML).
fn join_configuration(node: &NodeInfo, endpoint: &str, join: &JoinSecrets) -> Result<String, ProviderError> {
    let api_version = kubeadm_api_version(&node.kubernetes_version)?;
    let labels = node_labels(&node.labels);
    let kubelet_extra_args = (!labels.is_empty()).then(|| {
        if api_version.ends_with("v1beta4") {
            json!([{ "name": "node-labels", "value": labels }])
        } else {
            json!({ "node-labels": labels })
        }
    });
    let taints = node.taints.iter().map(|t| parse_taint(t)).collect::<Result<Vec<_>, _>>()?;
    let control_plane = match node.role {
        Role::Worker => None,
        Role::ControlPlane => {
            let key = join.certificate_key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
                ProviderError::invalid_input(format!(
                    "node group {}: a control-plane member joining with kubeadm needs the certificate key of the \
                     uploaded control-plane certificates (`kubeadm init phase upload-certs`)",
                    node.node_group
                ))
            })?;
            Some(JoinControlPlane { certificate_key: key })
        }
    };
    let config = JoinConfiguration {
        api_version: api_version.to_string(),
        kind: "JoinConfiguration".to_string(),
        discovery: Discovery {
            bootstrap_token: BootstrapTokenDiscovery {
                api_server_endpoint: endpoint.to_string(),
                token: join.token.clone(),
                ca_cert_hashes: join.ca_cert_hashes.clone(),
            },
        },
        node_registration: NodeRegistration { kubelet_extra_args, taints: (!taints.is_empty()).then_some(taints) },
        control_plane,
    };
    serde_json::to_string_pretty(&config).map_err(|e| ProviderError::other(format!("kubeadm join configuration: {e}")))
}

/// The join secrets a `JoinConfiguration` that [`join_configuration`] wrote carries.
fn join_secrets_of(text: &str) -> Option<JoinSecrets> {
    let config: JoinConfiguration = serde_json::from_str(text).ok()?;
    if config.kind != "JoinConfiguration" {
        return None;
    }
    Some(JoinSecrets {
        token: config.discovery.bootstrap_token.token,
        ca_cert_hashes: config.discovery.bootstrap_token.ca_cert_hashes,
        certificate_key: config.control_plane.map(|c| c.certificate_key),
    })
}

/// The `NodeConfig` for `nodeadm`, as JSON text (which is YAML).
fn node_config(node: &NodeInfo, cluster_name: &str, eks: &EksCluster) -> Result<String, ProviderError> {
    let mut flags = vec![];
    if !node.labels.is_empty() {
        flags.push(format!("--node-labels={}", node_labels(&node.labels)));
    }
    if !node.taints.is_empty() {
        for t in &node.taints {
            parse_taint(t)?;
        }
        flags.push(format!("--register-with-taints={}", node.taints.join(",")));
    }
    let mut spec = json!({
        "cluster": {
            "name": cluster_name,
            "apiServerEndpoint": eks.endpoint,
            "certificateAuthority": eks.certificate_authority,
            "cidr": eks.service_cidr,
        },
    });
    if !flags.is_empty() {
        spec["kubelet"] = json!({ "flags": flags });
    }
    let config = json!({ "apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": spec });
    serde_json::to_string_pretty(&config).map_err(|e| ProviderError::other(format!("nodeadm NodeConfig: {e}")))
}

/// The user data, before base64, for a node described by `node` running `user_data`, with what
/// its bootstrap needs in `inputs`.
pub fn compose(node: &NodeInfo, user_data: Option<&str>, inputs: Inputs<'_>) -> Result<String, ProviderError> {
    if let Some(u) = user_data {
        if u.contains(BOUNDARY) {
            return Err(ProviderError::invalid_input(format!(
                "the user data contains drydock's MIME boundary `{BOUNDARY}`; change that line"
            )));
        }
        if u.trim_start().to_ascii_lowercase().starts_with("content-type:") {
            return Err(ProviderError::invalid_input(
                "the user data is already a MIME message; drydock adds its own part to it, so give the script or \
                 cloud-config itself",
            ));
        }
    }
    let mut nodeadm = None;
    let mut kubeadm = None;
    match &node.bootstrap {
        None => {}
        Some(Bootstrap::Kubeadm { api_server_endpoint }) => {
            let join = inputs.join.ok_or_else(|| {
                ProviderError::invalid_input(format!(
                    "node group {}: the kubeadm bootstrap needs join secrets (a bootstrap token and the CA \
                     certificate hashes), and none were given",
                    node.node_group
                ))
            })?;
            if join.token.is_empty() || join.ca_cert_hashes.is_empty() {
                return Err(ProviderError::invalid_input(format!(
                    "node group {}: the kubeadm bootstrap needs a bootstrap token and at least one CA certificate \
                     hash",
                    node.node_group
                )));
            }
            kubeadm = Some(join_configuration(node, api_server_endpoint, join)?);
        }
        Some(Bootstrap::Eks { cluster_name }) => {
            if node.role == Role::ControlPlane {
                return Err(ProviderError::invalid_input(format!(
                    "node group {}: an EKS cluster's control plane is AWS's; a control-plane node group cannot use \
                     the eks bootstrap",
                    node.node_group
                )));
            }
            let eks = inputs.eks.ok_or_else(|| {
                ProviderError::other(format!(
                    "node group {}: the EKS cluster {cluster_name} was not described before its user data was written",
                    node.node_group
                ))
            })?;
            nodeadm = Some(node_config(node, cluster_name, eks)?);
        }
    }
    // One line of JSON: a heredoc terminator can never appear inside it.
    let json = serde_json::to_string(node).map_err(|e| ProviderError::other(format!("node info: {e}")))?;
    let role = match node.role {
        Role::Worker => "worker",
        Role::ControlPlane => "control-plane",
    };
    let env = [
        ("DRYDOCK_CLUSTER", node.cluster.as_str()),
        ("DRYDOCK_NODE_GROUP", node.node_group.as_str()),
        ("DRYDOCK_GENERATION", node.generation.as_str()),
        ("DRYDOCK_ROLE", role),
        ("DRYDOCK_KUBERNETES_VERSION", node.kubernetes_version.as_str()),
        ("DRYDOCK_NODE_LABELS", &node_labels(&node.labels)),
        ("DRYDOCK_NODE_TAINTS", &node.taints.join(",")),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
    .collect::<String>();
    let mut script = String::new();
    script.push_str("#!/bin/sh\n");
    script.push_str("# Written by drydock: what this node is, for the bootstrap (. /etc/drydock/node.env).\n");
    script.push_str("mkdir -p /etc/drydock\n");
    script.push_str(JSON_OPEN);
    script.push_str(&json);
    script.push_str(HEREDOC_END);
    script.push_str("cat > /etc/drydock/node.env <<'DRYDOCK_EOF'\n");
    script.push_str(&env);
    script.push_str("DRYDOCK_EOF\n");
    if let Some(config) = &kubeadm {
        script.push_str("# The kubeadm bootstrap: join the cluster. The file holds the join secrets: root only.\n");
        script.push_str("(\numask 077\n");
        script.push_str(KUBEADM_OPEN);
        script.push_str(config);
        script.push_str(HEREDOC_END);
        script.push_str(")\n");
        script.push_str(&format!("chmod 0600 {KUBEADM_JOIN_FILE}\n"));
        script.push_str(&format!("kubeadm join --config {KUBEADM_JOIN_FILE}\n"));
    }
    // Generated parts must not contain the boundary either (a label or an endpoint could).
    for generated in [Some(&script), nodeadm.as_ref()].into_iter().flatten() {
        if generated.contains(BOUNDARY) {
            return Err(ProviderError::invalid_input(format!(
                "node group {}: a label, taint, endpoint or name contains drydock's MIME boundary `{BOUNDARY}`",
                node.node_group
            )));
        }
    }
    let mut out = String::new();
    out.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n"));
    let mut part = |content_type: &str, body: &str| {
        out.push_str(&format!("--{BOUNDARY}\nContent-Type: {content_type}\n\n"));
        out.push_str(body);
        out.push('\n');
    };
    if let Some(config) = &nodeadm {
        part(NODEADM_CONTENT_TYPE, config);
    }
    part(SCRIPT_TYPE, &script);
    if let Some(u) = user_data {
        part(&format!("{}; charset=\"utf-8\"", content_type(u)), u);
    }
    out.push_str(&format!("--{BOUNDARY}--\n"));
    if out.len() > MAX_USER_DATA {
        return Err(ProviderError::invalid_input(format!(
            "the user data is {} bytes with drydock's part (labels, taints, bootstrap); EC2 takes at most \
             {MAX_USER_DATA}",
            out.len()
        )));
    }
    Ok(out)
}

/// [`compose`], base64-encoded as EC2 takes it.
pub fn compose_base64(node: &NodeInfo, user_data: Option<&str>, inputs: Inputs<'_>) -> Result<String, ProviderError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(compose(node, user_data, inputs)?))
}

/// Takes apart user data that [`compose`] made; `None` for anything else (a launch template
/// drydock did not write, or one edited by hand).
pub fn parse(text: &str) -> Option<Parsed> {
    let header = format!("Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n");
    let body = text.strip_prefix(&header)?;
    let body = body.strip_suffix(&format!("\n--{BOUNDARY}--\n"))?;
    let body = body.strip_prefix(&format!("--{BOUNDARY}\n"))?;
    // No part can contain the boundary (compose refuses it), so this split is exact.
    let separator = format!("\n--{BOUNDARY}\n");
    let mut parts = body.split(&separator).map(|p| p.split_once("\n\n"));
    let mut part = parts.next()??;
    if part.0 == format!("Content-Type: {NODEADM_CONTENT_TYPE}") {
        part = parts.next()??;
    }
    let (script_header, script) = part;
    if script_header != format!("Content-Type: {SCRIPT_TYPE}") {
        return None;
    }
    let user_data = match parts.next() {
        Some(p) => Some(p?.1.to_string()),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    let (_, after_open) = script.split_once(JSON_OPEN)?;
    let (json, rest) = after_open.split_once(HEREDOC_END)?;
    let node: NodeInfo = serde_json::from_str(json).ok()?;
    let join_digest = match &node.bootstrap {
        Some(Bootstrap::Kubeadm { .. }) => {
            let (_, after_open) = rest.split_once(KUBEADM_OPEN)?;
            let (config, _) = after_open.split_once(HEREDOC_END)?;
            Some(join_secrets_of(config)?.digest())
        }
        _ => None,
    };
    Some(Parsed { node, user_data, join_digest })
}

/// [`parse`] of base64 user data as EC2 returns it.
pub fn parse_base64(encoded: &str) -> Option<Parsed> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    parse(&String::from_utf8(bytes).ok()?)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            cluster: "prod".into(),
            node_group: "workers[\"us-east-1a\"]".into(),
            generation: "3f2a9c01bd".into(),
            role: Role::Worker,
            kubernetes_version: "1.31".into(),
            labels: BTreeMap::from([
                ("node.kubernetes.io/pool".into(), "general".into()),
                ("team".into(), "it's".into()),
            ]),
            taints: vec!["dedicated=spot:NoSchedule".into()],
            bootstrap: None,
            rebuild: 0,
        }
    }

    fn kubeadm(role: Role, version: &str) -> NodeInfo {
        NodeInfo {
            role,
            kubernetes_version: version.into(),
            bootstrap: Some(Bootstrap::Kubeadm { api_server_endpoint: "10.0.0.10:6443".into() }),
            rebuild: 0,
            ..node()
        }
    }

    fn secrets(certificate_key: Option<&str>) -> JoinSecrets {
        JoinSecrets {
            token: "abcdef.0123456789abcdef".into(),
            ca_cert_hashes: vec!["sha256:7c1e5a0f9d1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f".into()],
            certificate_key: certificate_key.map(str::to_string),
        }
    }

    fn eks_node() -> NodeInfo {
        NodeInfo { bootstrap: Some(Bootstrap::Eks { cluster_name: "prod-eks".into() }), ..node() }
    }

    fn eks_cluster() -> EksCluster {
        EksCluster {
            endpoint: "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com".into(),
            certificate_authority: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=".into(),
            service_cidr: "172.20.0.0/16".into(),
            version: "1.31".into(),
        }
    }

    /// The part of `text` between the kubeadm heredoc's opening and its terminator.
    fn kubeadm_heredoc(text: &str) -> &str {
        let (_, after) = text.split_once(KUBEADM_OPEN).expect("a kubeadm heredoc");
        after.split_once(HEREDOC_END).expect("its end").0
    }

    #[test]
    fn round_trips_user_data_byte_for_byte() {
        for user_data in [
            None,
            Some(""),
            Some("#!/bin/bash\necho hi\n"),
            Some("#!/bin/bash\necho no trailing newline"),
            Some("\n\n#cloud-config\n"),
            Some("#cloud-config\nruncmd: [\"echo\", \"--==other==\"]\n\n\n"),
            Some("ünïcödé ${x} $(y) 'z'\r\n"),
        ] {
            let text = compose(&node(), user_data, Inputs::default()).unwrap();
            let parsed = parse(&text).unwrap_or_else(|| panic!("{user_data:?} did not parse:\n{text}"));
            assert_eq!(parsed.node, node());
            assert_eq!(parsed.user_data.as_deref(), user_data);
            assert_eq!(parsed.join_digest, None);
            let b64 = compose_base64(&node(), user_data, Inputs::default()).unwrap();
            assert_eq!(parse_base64(&b64), Some(parsed));
        }
    }

    #[test]
    fn without_a_bootstrap_the_layout_is_what_it_always_was() {
        // Templates written before bootstraps existed must keep parsing, and new ones without a
        // bootstrap must be the same bytes.
        let text = compose(&node(), Some("#cloud-config\n"), Inputs::default()).unwrap();
        expect![[r#"
            Content-Type: multipart/mixed; boundary="==drydock-7f3c9e1d=="
            MIME-Version: 1.0

            --==drydock-7f3c9e1d==
            Content-Type: text/x-shellscript; charset="utf-8"

            #!/bin/sh
            # Written by drydock: what this node is, for the bootstrap (. /etc/drydock/node.env).
            mkdir -p /etc/drydock
            cat > /etc/drydock/node.json <<'DRYDOCK_EOF'
            {"cluster":"prod","node_group":"workers[\"us-east-1a\"]","generation":"3f2a9c01bd","role":"worker","kubernetes_version":"1.31","labels":{"node.kubernetes.io/pool":"general","team":"it's"},"taints":["dedicated=spot:NoSchedule"]}
            DRYDOCK_EOF
            cat > /etc/drydock/node.env <<'DRYDOCK_EOF'
            DRYDOCK_CLUSTER='prod'
            DRYDOCK_NODE_GROUP='workers["us-east-1a"]'
            DRYDOCK_GENERATION='3f2a9c01bd'
            DRYDOCK_ROLE='worker'
            DRYDOCK_KUBERNETES_VERSION='1.31'
            DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,team=it'\''s'
            DRYDOCK_NODE_TAINTS='dedicated=spot:NoSchedule'
            DRYDOCK_EOF

            --==drydock-7f3c9e1d==
            Content-Type: text/cloud-config; charset="utf-8"

            #cloud-config

            --==drydock-7f3c9e1d==--
        "#]]
        .assert_eq(&text);
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.node.bootstrap, None);
        assert_eq!(parsed.user_data.as_deref(), Some("#cloud-config\n"));
        let alone = compose(&node(), None, Inputs::default()).unwrap();
        assert!(alone.ends_with("DRYDOCK_EOF\n\n--==drydock-7f3c9e1d==--\n"), "{alone}");
    }

    #[test]
    fn drydock_part_comes_first_with_labels_and_taints_for_the_shell() {
        let text = compose(&node(), Some("#cloud-config\n"), Inputs::default()).unwrap();
        let drydock = text.find("DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,team=it'\\''s'").unwrap();
        let taints = text.find("DRYDOCK_NODE_TAINTS='dedicated=spot:NoSchedule'").unwrap();
        let user = text.find("Content-Type: text/cloud-config").unwrap();
        assert!(drydock < user && taints < user, "{text}");
        assert!(text.contains("DRYDOCK_KUBERNETES_VERSION='1.31'"));
    }

    #[test]
    fn shell_scripts_are_shell_parts() {
        let text = compose(&node(), Some("#!/bin/bash\n"), Inputs::default()).unwrap();
        assert_eq!(text.matches("Content-Type: text/x-shellscript").count(), 2, "{text}");
    }

    #[test]
    fn a_kubeadm_worker_joins_with_v1beta4_from_1_31() {
        let join = secrets(None);
        let inputs = Inputs { join: Some(&join), eks: None };
        let text = compose(&kubeadm(Role::Worker, "1.31"), Some("#!/bin/bash\necho after\n"), inputs).unwrap();
        expect![[r#"
            Content-Type: multipart/mixed; boundary="==drydock-7f3c9e1d=="
            MIME-Version: 1.0

            --==drydock-7f3c9e1d==
            Content-Type: text/x-shellscript; charset="utf-8"

            #!/bin/sh
            # Written by drydock: what this node is, for the bootstrap (. /etc/drydock/node.env).
            mkdir -p /etc/drydock
            cat > /etc/drydock/node.json <<'DRYDOCK_EOF'
            {"cluster":"prod","node_group":"workers[\"us-east-1a\"]","generation":"3f2a9c01bd","role":"worker","kubernetes_version":"1.31","labels":{"node.kubernetes.io/pool":"general","team":"it's"},"taints":["dedicated=spot:NoSchedule"],"bootstrap":{"kind":"kubeadm","api_server_endpoint":"10.0.0.10:6443"}}
            DRYDOCK_EOF
            cat > /etc/drydock/node.env <<'DRYDOCK_EOF'
            DRYDOCK_CLUSTER='prod'
            DRYDOCK_NODE_GROUP='workers["us-east-1a"]'
            DRYDOCK_GENERATION='3f2a9c01bd'
            DRYDOCK_ROLE='worker'
            DRYDOCK_KUBERNETES_VERSION='1.31'
            DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,team=it'\''s'
            DRYDOCK_NODE_TAINTS='dedicated=spot:NoSchedule'
            DRYDOCK_EOF
            # The kubeadm bootstrap: join the cluster. The file holds the join secrets: root only.
            (
            umask 077
            cat > /etc/drydock/kubeadm-join.yaml <<'DRYDOCK_EOF'
            {
              "apiVersion": "kubeadm.k8s.io/v1beta4",
              "kind": "JoinConfiguration",
              "discovery": {
                "bootstrapToken": {
                  "apiServerEndpoint": "10.0.0.10:6443",
                  "token": "abcdef.0123456789abcdef",
                  "caCertHashes": [
                    "sha256:7c1e5a0f9d1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"
                  ]
                }
              },
              "nodeRegistration": {
                "kubeletExtraArgs": [
                  {
                    "name": "node-labels",
                    "value": "node.kubernetes.io/pool=general,team=it's"
                  }
                ],
                "taints": [
                  {
                    "key": "dedicated",
                    "value": "spot",
                    "effect": "NoSchedule"
                  }
                ]
              }
            }
            DRYDOCK_EOF
            )
            chmod 0600 /etc/drydock/kubeadm-join.yaml
            kubeadm join --config /etc/drydock/kubeadm-join.yaml

            --==drydock-7f3c9e1d==
            Content-Type: text/x-shellscript; charset="utf-8"

            #!/bin/bash
            echo after

            --==drydock-7f3c9e1d==--
        "#]]
        .assert_eq(&text);
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.node, kubeadm(Role::Worker, "1.31"));
        assert_eq!(parsed.user_data.as_deref(), Some("#!/bin/bash\necho after\n"));
        assert_eq!(parsed.join_digest, Some(join.digest()));
    }

    #[test]
    fn a_kubeadm_control_plane_member_joins_with_v1beta3_before_1_31() {
        let join = secrets(Some("f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"));
        let inputs = Inputs { join: Some(&join), eks: None };
        let n = NodeInfo { taints: vec![], ..kubeadm(Role::ControlPlane, "v1.30.4") };
        let text = compose(&n, None, inputs).unwrap();
        expect![[r#"
            {
              "apiVersion": "kubeadm.k8s.io/v1beta3",
              "kind": "JoinConfiguration",
              "discovery": {
                "bootstrapToken": {
                  "apiServerEndpoint": "10.0.0.10:6443",
                  "token": "abcdef.0123456789abcdef",
                  "caCertHashes": [
                    "sha256:7c1e5a0f9d1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"
                  ]
                }
              },
              "nodeRegistration": {
                "kubeletExtraArgs": {
                  "node-labels": "node.kubernetes.io/pool=general,team=it's"
                }
              },
              "controlPlane": {
                "certificateKey": "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
              }
            }"#]]
        .assert_eq(kubeadm_heredoc(&text));
        assert!(text.contains("DRYDOCK_ROLE='control-plane'"));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.node, n);
        assert_eq!(parsed.user_data, None);
        assert_eq!(parsed.join_digest, Some(join.digest()));
        // The certificate key is part of the digest: the same token without it is another one.
        assert_ne!(parsed.join_digest, Some(secrets(None).digest()));
    }

    #[test]
    fn the_kubeadm_api_version_follows_the_kubernetes_version() {
        for (version, api) in [
            ("1.31", "kubeadm.k8s.io/v1beta4"),
            ("v1.33.1", "kubeadm.k8s.io/v1beta4"),
            ("2.0", "kubeadm.k8s.io/v1beta4"),
            ("1.30", "kubeadm.k8s.io/v1beta3"),
            ("1.29.10-eks-1", "kubeadm.k8s.io/v1beta3"),
        ] {
            assert_eq!(kubeadm_api_version(version).unwrap(), api, "{version}");
        }
        for bad in ["", "latest", "1", "v1.x"] {
            assert!(kubeadm_api_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_appear_only_inside_the_kubeadm_heredoc() {
        let join = JoinSecrets {
            token: "s3cr3t.t0k3nxxxxxxxxxx".into(),
            ca_cert_hashes: vec!["sha256:h4sh".into()],
            certificate_key: Some("c3rtk3y".into()),
        };
        let text =
            compose(&kubeadm(Role::ControlPlane, "1.31"), Some("#!/bin/sh\n"), Inputs { join: Some(&join), eks: None })
                .unwrap();
        let heredoc = kubeadm_heredoc(&text);
        let outside = text.replacen(heredoc, "", 1);
        for secret in ["s3cr3t", "t0k3n", "h4sh", "c3rtk3y"] {
            assert_eq!(text.matches(secret).count(), 1, "{secret} once in all:\n{text}");
            assert!(heredoc.contains(secret), "{secret} in the heredoc");
            assert!(!outside.contains(secret), "{secret} outside the heredoc:\n{outside}");
        }
        // The heredoc is written under umask 077 in a subshell, made 0600, then used.
        let umask = text.find("(\numask 077\ncat > /etc/drydock/kubeadm-join.yaml").unwrap();
        let chmod = text.find("chmod 0600 /etc/drydock/kubeadm-join.yaml").unwrap();
        let join_at = text.find("kubeadm join --config /etc/drydock/kubeadm-join.yaml").unwrap();
        assert!(umask < chmod && chmod < join_at);
    }

    #[test]
    fn a_kubeadm_bootstrap_needs_its_secrets() {
        let e = compose(&kubeadm(Role::Worker, "1.31"), None, Inputs::default()).unwrap_err();
        assert_eq!(e.kind, drydock_provider::ErrorKind::InvalidInput);
        assert!(e.message.contains("workers[\"us-east-1a\"]") && e.message.contains("join secrets"), "{e}");
        let no_key = secrets(None);
        let e =
            compose(&kubeadm(Role::ControlPlane, "1.31"), None, Inputs { join: Some(&no_key), eks: None }).unwrap_err();
        assert_eq!(e.kind, drydock_provider::ErrorKind::InvalidInput);
        assert!(e.message.contains("certificate key") && e.message.contains("workers[\"us-east-1a\"]"), "{e}");
        let no_hash = JoinSecrets { ca_cert_hashes: vec![], ..secrets(None) };
        let e = compose(&kubeadm(Role::Worker, "1.31"), None, Inputs { join: Some(&no_hash), eks: None }).unwrap_err();
        assert!(e.message.contains("CA certificate hash"), "{e}");
        let bad_version = kubeadm(Role::Worker, "latest");
        let join = secrets(None);
        let e = compose(&bad_version, None, Inputs { join: Some(&join), eks: None }).unwrap_err();
        assert!(e.message.contains("kubernetes_version"), "{e}");
        let bad_taint = NodeInfo { taints: vec!["dedicated=spot".into()], ..kubeadm(Role::Worker, "1.31") };
        let e = compose(&bad_taint, None, Inputs { join: Some(&join), eks: None }).unwrap_err();
        assert!(e.message.contains("taint `dedicated=spot`"), "{e}");
    }

    #[test]
    fn taints_parse_as_the_kubelet_writes_them() {
        let t = |s: &str| parse_taint(s).map(|t| (t.key, t.value, t.effect));
        assert_eq!(t("a=b:NoSchedule").unwrap(), ("a".into(), Some("b".into()), "NoSchedule".into()));
        assert_eq!(t("a:NoExecute").unwrap(), ("a".into(), None, "NoExecute".into()));
        assert_eq!(t("a=:PreferNoSchedule").unwrap(), ("a".into(), Some(String::new()), "PreferNoSchedule".into()));
        assert_eq!(t("example.com/a=b:c:NoSchedule").unwrap().1, Some("b:c".into()));
        for bad in ["a=b", ":NoSchedule", "a=b:Sometimes", ""] {
            assert!(parse_taint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_eks_node_gets_a_nodeadm_config_before_drydocks_part() {
        let cluster = eks_cluster();
        let inputs = Inputs { join: None, eks: Some(&cluster) };
        let text = compose(&eks_node(), Some("#!/bin/bash\necho after\n"), inputs).unwrap();
        expect![[r#"
            Content-Type: multipart/mixed; boundary="==drydock-7f3c9e1d=="
            MIME-Version: 1.0

            --==drydock-7f3c9e1d==
            Content-Type: application/node.eks.aws

            {
              "apiVersion": "node.eks.aws/v1alpha1",
              "kind": "NodeConfig",
              "spec": {
                "cluster": {
                  "apiServerEndpoint": "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com",
                  "certificateAuthority": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=",
                  "cidr": "172.20.0.0/16",
                  "name": "prod-eks"
                },
                "kubelet": {
                  "flags": [
                    "--node-labels=node.kubernetes.io/pool=general,team=it's",
                    "--register-with-taints=dedicated=spot:NoSchedule"
                  ]
                }
              }
            }
            --==drydock-7f3c9e1d==
            Content-Type: text/x-shellscript; charset="utf-8"

            #!/bin/sh
            # Written by drydock: what this node is, for the bootstrap (. /etc/drydock/node.env).
            mkdir -p /etc/drydock
            cat > /etc/drydock/node.json <<'DRYDOCK_EOF'
            {"cluster":"prod","node_group":"workers[\"us-east-1a\"]","generation":"3f2a9c01bd","role":"worker","kubernetes_version":"1.31","labels":{"node.kubernetes.io/pool":"general","team":"it's"},"taints":["dedicated=spot:NoSchedule"],"bootstrap":{"kind":"eks","cluster_name":"prod-eks"}}
            DRYDOCK_EOF
            cat > /etc/drydock/node.env <<'DRYDOCK_EOF'
            DRYDOCK_CLUSTER='prod'
            DRYDOCK_NODE_GROUP='workers["us-east-1a"]'
            DRYDOCK_GENERATION='3f2a9c01bd'
            DRYDOCK_ROLE='worker'
            DRYDOCK_KUBERNETES_VERSION='1.31'
            DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,team=it'\''s'
            DRYDOCK_NODE_TAINTS='dedicated=spot:NoSchedule'
            DRYDOCK_EOF

            --==drydock-7f3c9e1d==
            Content-Type: text/x-shellscript; charset="utf-8"

            #!/bin/bash
            echo after

            --==drydock-7f3c9e1d==--
        "#]]
        .assert_eq(&text);
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.node, eks_node());
        assert_eq!(parsed.user_data.as_deref(), Some("#!/bin/bash\necho after\n"));
        assert_eq!(parsed.join_digest, None);
        assert!(!text.contains("kubeadm"));
    }

    #[test]
    fn an_eks_node_without_labels_or_taints_gets_no_kubelet_flags() {
        let cluster = eks_cluster();
        let n = NodeInfo { labels: BTreeMap::new(), taints: vec![], ..eks_node() };
        let text = compose(&n, None, Inputs { join: None, eks: Some(&cluster) }).unwrap();
        assert!(!text.contains("\"kubelet\"") && !text.contains("--node-labels"), "{text}");
        let only_taints = NodeInfo { labels: BTreeMap::new(), ..eks_node() };
        let text = compose(&only_taints, None, Inputs { join: None, eks: Some(&cluster) }).unwrap();
        assert!(
            text.contains("\"--register-with-taints=dedicated=spot:NoSchedule\"") && !text.contains("--node-labels")
        );
        assert_eq!(parse(&text).unwrap().node, only_taints);
    }

    #[test]
    fn an_eks_bootstrap_is_for_workers_described_by_eks() {
        let cluster = eks_cluster();
        let cp = NodeInfo { role: Role::ControlPlane, ..eks_node() };
        let e = compose(&cp, None, Inputs { join: None, eks: Some(&cluster) }).unwrap_err();
        assert!(e.message.contains("control plane is AWS's"), "{e}");
        assert!(compose(&eks_node(), None, Inputs::default()).is_err());
        let hostile = EksCluster { endpoint: format!("https://x/{BOUNDARY}"), ..eks_cluster() };
        let e = compose(&eks_node(), None, Inputs { join: None, eks: Some(&hostile) }).unwrap_err();
        assert!(e.message.contains("boundary"), "{e}");
    }

    #[test]
    fn refuses_what_it_could_not_take_apart_again() {
        let none = Inputs::default();
        let e = compose(&node(), Some(&format!("echo {BOUNDARY}")), none).unwrap_err();
        assert!(e.message.contains("boundary"), "{e}");
        let e = compose(&node(), Some("Content-Type: multipart/mixed; boundary=x\n\n"), none).unwrap_err();
        assert!(e.message.contains("MIME"), "{e}");
        let e = compose(&node(), Some(&"x".repeat(MAX_USER_DATA)), none).unwrap_err();
        assert!(e.message.contains("at most 16384"), "{e}");
        let labelled = NodeInfo { labels: BTreeMap::from([("a".into(), BOUNDARY.into())]), ..node() };
        assert!(compose(&labelled, None, none).unwrap_err().message.contains("boundary"));
    }

    #[test]
    fn foreign_user_data_is_not_parsed() {
        assert_eq!(parse("#!/bin/bash\necho hi\n"), None);
        assert_eq!(parse_base64("not base64!"), None);
        let none = Inputs::default();
        let text = compose(&node(), Some("x"), none).unwrap();
        assert_eq!(parse(&text.replace("node.json", "other.json")), None);
        assert_eq!(parse(&text[..text.len() - 3]), None);
        // A kubeadm template whose join configuration was edited away is not drydock's either.
        let join = secrets(None);
        let text = compose(&kubeadm(Role::Worker, "1.31"), None, Inputs { join: Some(&join), eks: None }).unwrap();
        assert_eq!(parse(&text.replace("\"kind\": \"JoinConfiguration\"", "\"kind\": \"Other\"")), None);
        assert_eq!(parse(&text.replace(KUBEADM_OPEN, "cat > /tmp/x <<'DRYDOCK_EOF'\n")), None);
    }
}
