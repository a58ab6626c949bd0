//! `KubeClient::from_kubeconfig` without a path: kube's default search, `$KUBECONFIG` first.
//! Its own test binary, with one test, because it sets the process's environment.

use drydock_kube::KubeClient;
use drydock_provider::{ErrorKind, Kubernetes};

#[tokio::test]
async fn without_a_path_kubeconfig_is_found_through_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n\
         clusters:\n- name: a\n  cluster:\n    server: https://a.example:6443\n\
         - name: b\n  cluster:\n    server: https://b.example:6443\n\
         users:\n- name: u\n  user:\n    token: env-token-0123456789abcdef\n\
         contexts:\n- name: a\n  context:\n    cluster: a\n    user: u\n\
         - name: b\n  context:\n    cluster: b\n    user: u\n",
    )
    .unwrap();
    // The only test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("KUBECONFIG", &path);
    let client = KubeClient::from_kubeconfig(None, Some("b")).unwrap();
    assert_eq!(client.describe(), "https://b.example:6443 (context b)");
    let client = KubeClient::from_kubeconfig(None, None).unwrap();
    assert_eq!(client.describe(), "https://a.example:6443 (context a)");

    let missing = dir.path().join("missing");
    std::env::set_var("KUBECONFIG", &missing);
    let err = KubeClient::from_kubeconfig(None, None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.starts_with(&format!("loading kubeconfig $KUBECONFIG ({})", missing.display())), "{err}");
    assert!(err.message.contains("cannot read"), "{err}");
}
