//! The user data of a launch template version: a MIME multi-part message that cloud-init
//! runs in order. The first part, written by drydock, leaves what the node is (cluster, node
//! group, role, Kubernetes version, labels, taints) in `/etc/drydock/node.env` for the bootstrap
//! and in `/etc/drydock/node.json` for machines and for [`parse`]; the second part is the node
//! group's own `user_data`, byte for byte.
//!
//! The layout is fixed and written only here, so that [`parse`] can take it apart exactly and
//! observation can rebuild a generation's spec from its launch template.

use std::collections::BTreeMap;

use base64::Engine as _;
use drydock_provider::{ProviderError, Role};
use serde::{Deserialize, Serialize};

/// The MIME boundary. A node group's user data that contains it is refused, so the parts can
/// always be told apart.
pub const BOUNDARY: &str = "==drydock-7f3c9e1d==";

/// EC2 refuses user data over 16 KiB (before base64); refusing it here names the node group.
pub const MAX_USER_DATA: usize = 16 * 1024;

const JSON_OPEN: &str = "cat > /etc/drydock/node.json <<'DRYDOCK_EOF'\n";
const HEREDOC_END: &str = "\nDRYDOCK_EOF\n";

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
}

/// What [`parse`] recovers from a launch template's user data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub node: NodeInfo,
    pub user_data: Option<String>,
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

/// The user data, before base64, for a node described by `node` running `user_data`.
pub fn compose(node: &NodeInfo, user_data: Option<&str>) -> Result<String, ProviderError> {
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
    // One line of JSON: a heredoc terminator can never appear inside it.
    let json = serde_json::to_string(node).map_err(|e| ProviderError::other(format!("node info: {e}")))?;
    let labels: Vec<String> = node.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
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
        ("DRYDOCK_NODE_LABELS", &labels.join(",")),
        ("DRYDOCK_NODE_TAINTS", &node.taints.join(",")),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
    .collect::<String>();
    let mut out = String::new();
    out.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n"));
    out.push_str(&format!("--{BOUNDARY}\nContent-Type: text/x-shellscript; charset=\"utf-8\"\n\n"));
    out.push_str("#!/bin/sh\n");
    out.push_str("# Written by drydock: what this node is, for the bootstrap (. /etc/drydock/node.env).\n");
    out.push_str("mkdir -p /etc/drydock\n");
    out.push_str(JSON_OPEN);
    out.push_str(&json);
    out.push_str(HEREDOC_END);
    out.push_str("cat > /etc/drydock/node.env <<'DRYDOCK_EOF'\n");
    out.push_str(&env);
    out.push_str("DRYDOCK_EOF\n");
    if let Some(u) = user_data {
        out.push_str(&format!("\n--{BOUNDARY}\nContent-Type: {}; charset=\"utf-8\"\n\n", content_type(u)));
        out.push_str(u);
    }
    out.push_str(&format!("\n--{BOUNDARY}--\n"));
    if out.len() > MAX_USER_DATA {
        return Err(ProviderError::invalid_input(format!(
            "the user data is {} bytes with drydock's part (labels, taints); EC2 takes at most {MAX_USER_DATA}",
            out.len()
        )));
    }
    Ok(out)
}

/// [`compose`], base64-encoded as EC2 takes it.
pub fn compose_base64(node: &NodeInfo, user_data: Option<&str>) -> Result<String, ProviderError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(compose(node, user_data)?))
}

/// Takes apart user data that [`compose`] made; `None` for anything else (a launch template
/// drydock did not write, or one edited by hand).
pub fn parse(text: &str) -> Option<Parsed> {
    let header = format!("Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n");
    let body = text.strip_prefix(&header)?;
    let end = format!("\n--{BOUNDARY}--\n");
    let body = body.strip_suffix(&end)?;
    let separator = format!("\n--{BOUNDARY}\n");
    let first = body.strip_prefix(&format!("--{BOUNDARY}\n"))?;
    let (drydock_part, user_part) = match first.split_once(&separator) {
        Some((d, u)) => (d, Some(u)),
        None => (first, None),
    };
    let (_, after_open) = drydock_part.split_once(JSON_OPEN)?;
    let (json, _) = after_open.split_once(HEREDOC_END)?;
    let node: NodeInfo = serde_json::from_str(json).ok()?;
    let user_data = match user_part {
        Some(part) => Some(part.split_once("\n\n")?.1.to_string()),
        None => None,
    };
    Some(Parsed { node, user_data })
}

/// [`parse`] of base64 user data as EC2 returns it.
pub fn parse_base64(encoded: &str) -> Option<Parsed> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    parse(&String::from_utf8(bytes).ok()?)
}

#[cfg(test)]
mod tests {
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
        }
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
            let text = compose(&node(), user_data).unwrap();
            let parsed = parse(&text).unwrap_or_else(|| panic!("{user_data:?} did not parse:\n{text}"));
            assert_eq!(parsed.node, node());
            assert_eq!(parsed.user_data.as_deref(), user_data);
            let b64 = compose_base64(&node(), user_data).unwrap();
            assert_eq!(parse_base64(&b64), Some(parsed));
        }
    }

    #[test]
    fn drydock_part_comes_first_with_labels_and_taints_for_the_shell() {
        let text = compose(&node(), Some("#cloud-config\n")).unwrap();
        let drydock = text.find("DRYDOCK_NODE_LABELS='node.kubernetes.io/pool=general,team=it'\\''s'").unwrap();
        let taints = text.find("DRYDOCK_NODE_TAINTS='dedicated=spot:NoSchedule'").unwrap();
        let user = text.find("Content-Type: text/cloud-config").unwrap();
        assert!(drydock < user && taints < user, "{text}");
        assert!(text.contains("DRYDOCK_KUBERNETES_VERSION='1.31'"));
    }

    #[test]
    fn shell_scripts_are_shell_parts() {
        let text = compose(&node(), Some("#!/bin/bash\n")).unwrap();
        assert_eq!(text.matches("Content-Type: text/x-shellscript").count(), 2, "{text}");
    }

    #[test]
    fn refuses_what_it_could_not_take_apart_again() {
        let e = compose(&node(), Some(&format!("echo {BOUNDARY}"))).unwrap_err();
        assert!(e.message.contains("boundary"), "{e}");
        let e = compose(&node(), Some("Content-Type: multipart/mixed; boundary=x\n\n")).unwrap_err();
        assert!(e.message.contains("MIME"), "{e}");
        let e = compose(&node(), Some(&"x".repeat(MAX_USER_DATA))).unwrap_err();
        assert!(e.message.contains("at most 16384"), "{e}");
    }

    #[test]
    fn foreign_user_data_is_not_parsed() {
        assert_eq!(parse("#!/bin/bash\necho hi\n"), None);
        assert_eq!(parse_base64("not base64!"), None);
        let text = compose(&node(), Some("x")).unwrap();
        assert_eq!(parse(&text.replace("node.json", "other.json")), None);
        assert_eq!(parse(&text[..text.len() - 3]), None);
    }
}
