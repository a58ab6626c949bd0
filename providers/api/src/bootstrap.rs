//! How a node joins its cluster: the bootstrap drydock writes into the user data.
//!
//! A [`Bootstrap`] is part of the [`GenerationSpec`](crate::GenerationSpec): what a node *is*
//! (the endpoint it joins, EKS or kubeadm) is immutable like the rest of the spec. The join
//! secrets ([`JoinSecrets`]: a kubeadm bootstrap token, the CA certificate hashes, the
//! control-plane certificate key) are not: they matter only while a node joins, and they are
//! rotated far more often than nodes are replaced. They are therefore kept out of the spec (and
//! out of the generation id, the plan and the state, which hold only their [`JoinSecrets::digest`]),
//! and a rotation reaches the instances the cloud launches later through
//! [`Provider::update_join`](crate::Provider::update_join) — a new launch template version of the
//! same generation — without replacing the nodes that have already joined.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The user data MIME part type that Amazon Linux 2023's `nodeadm` reads its `NodeConfig` from.
pub const NODEADM_CONTENT_TYPE: &str = "application/node.eks.aws";

/// How the nodes of a generation join their cluster; `None` in a spec: the node group's own
/// `user_data` does it (`kind = "script"`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Bootstrap {
    /// `kubeadm join` with a generated `JoinConfiguration`; control-plane members join with
    /// `controlPlane` and the certificate key.
    Kubeadm {
        /// `host:port` of the API server (a load balancer in front of the control plane).
        api_server_endpoint: String,
    },
    /// Amazon Linux 2023's `nodeadm` with a generated `NodeConfig`. The provider reads the
    /// cluster's endpoint, certificate authority and service CIDR from EKS when it writes the
    /// launch template, so they are not part of the spec.
    Eks {
        /// The EKS cluster's name.
        cluster_name: String,
    },
}

impl Bootstrap {
    /// `kubeadm` or `eks`, as the configuration writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Bootstrap::Kubeadm { .. } => "kubeadm",
            Bootstrap::Eks { .. } => "eks",
        }
    }
}

/// The secrets a node needs only while it joins (kubeadm). Never serialised into a plan, a
/// state or an output; compared through [`JoinSecrets::digest`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct JoinSecrets {
    /// The bootstrap token (`abcdef.0123456789abcdef`).
    pub token: String,
    /// `sha256:<hex>` hashes of the cluster CA's public key (`discovery-token-ca-cert-hash`).
    pub ca_cert_hashes: Vec<String>,
    /// The key that decrypts the control-plane certificates kubeadm uploaded
    /// (`kubeadm init phase upload-certs`); control-plane members only.
    pub certificate_key: Option<String>,
}

impl std::fmt::Debug for JoinSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinSecrets({})", self.digest())
    }
}

impl JoinSecrets {
    /// A digest that tells two sets of secrets apart without showing them: `sha256:` and the
    /// first 16 hex digits of a hash over every field.
    pub fn digest(&self) -> String {
        let mut h = sha2::Sha256::new();
        h.update(b"drydock-join-v1\0");
        h.update(self.token.as_bytes());
        for c in &self.ca_cert_hashes {
            h.update(b"\0");
            h.update(c.as_bytes());
        }
        h.update(b"\0\0");
        if let Some(k) = &self.certificate_key {
            h.update(k.as_bytes());
        }
        let out = h.finalize();
        let hex: String = out.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_tell_secrets_apart_and_debug_hides_them() {
        let a = JoinSecrets { token: "abcdef.0123456789abcdef".into(), ..Default::default() };
        let mut b = a.clone();
        b.token = "abcdef.0123456789abcdee".into();
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
        assert!(a.digest().starts_with("sha256:") && a.digest().len() == 23);
        assert!(!format!("{a:?}").contains("0123456789"));
        let mut c = a.clone();
        c.certificate_key = Some("k".into());
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn bootstrap_serialises_with_its_kind() {
        let b = Bootstrap::Kubeadm { api_server_endpoint: "10.0.0.1:6443".into() };
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"kind":"kubeadm","api_server_endpoint":"10.0.0.1:6443"}"#);
        assert_eq!(serde_json::from_str::<Bootstrap>(&json).unwrap(), b);
    }
}
