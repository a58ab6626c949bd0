//! The client against real etcd members on loopback (installed when missing: see
//! `support/install.rs`): listing and health, a learner added, started and promoted as kubeadm
//! joins one, removal, leadership moved, a killed member reported, Cluster API's removal rules
//! on real health, a control plane replaced under a client that follows it, client-certificate
//! TLS, and the errors of endpoints that do not answer.

mod support;

use std::time::{Duration, Instant};

use drydock_etcd::{EtcdClient, EtcdTls};
use drydock_provider::{ErrorKind, Etcd};
use support::{eventually, until_healthy, Cluster};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn three_members_are_healthy_with_a_leader_and_no_alarm() {
    let cluster = Cluster::start(&["a", "b", "c"]).await;
    let client = cluster.client_of("a");
    let h = client.health().await.unwrap();
    let mut names: Vec<&str> = h.members.iter().map(|m| m.member.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(h.members.iter().all(|m| m.healthy && m.error.is_none() && !m.member.learner), "{h:?}");
    let leader = h.leader.expect("a leader");
    assert!(h.members.iter().any(|m| m.member.id == leader));
    assert!(h.alarms.is_empty(), "{:?}", h.alarms);
    assert!(h.problems().is_empty(), "{:?}", h.problems());
    assert_eq!((h.voting(), h.healthy_voting()), (3, 3));
    let b = h.by_name("b").unwrap();
    assert_eq!(b.member.client_urls, [cluster.member("b").client_url.clone()]);
    assert_eq!(b.member.peer_urls, [cluster.member("b").peer_url.clone()]);
    // Every member may go (one at a time): a healthy three keeps its quorum without one.
    for m in &h.members {
        assert_eq!(h.check_remove(m.member.id), Ok(()));
    }
    // It learned every member's client URL from the list.
    let endpoints = client.endpoints();
    for m in &cluster.members {
        assert!(endpoints.contains(&m.client_url), "{endpoints:?}");
    }
    assert_eq!(client.members().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_learner_is_added_started_and_promoted_as_kubeadm_joins() {
    let mut cluster = Cluster::start(&["a", "b", "c"]).await;
    let client = cluster.client_of("b");
    let (client_url, peer_url) = cluster.new_urls();
    let (added, members) = client.add_learner(&peer_url).await.unwrap();
    assert!(added.learner && !added.started(), "{added:?}");
    assert_eq!(added.peer_urls, vec![peer_url.clone()]);
    assert_eq!(members.len(), 4);
    assert!(members.iter().any(|m| m.id == added.id));

    // Added, not started: the rules refuse to remove anyone else meanwhile.
    let h = client.health().await.unwrap();
    assert!(h.problems().iter().any(|p| p.contains("added but never started")), "{:?}", h.problems());
    let a = h.by_name("a").unwrap().member.id;
    assert!(h.check_remove(a).unwrap_err().contains("never started"));

    // kubeadm's --initial-cluster: the started members by name, and the new one.
    let mut initial: Vec<String> =
        members.iter().filter(|m| m.started()).map(|m| format!("{}={}", m.name, m.peer_urls[0])).collect();
    initial.push(format!("d={peer_url}"));
    cluster.spawn("d", &client_url, &peer_url, &initial.join(","), "existing");
    let h = eventually("d started as a learner", WAIT, || async {
        let h = client.health().await.map_err(|e| e.to_string())?;
        match h.by_name("d") {
            Some(d) if d.member.learner && d.healthy => Ok(h),
            _ => Err(format!("{h:?}")),
        }
    })
    .await;
    assert!(h.problems().iter().any(|p| p.contains("learner that has not been promoted")), "{:?}", h.problems());
    assert!(h.check_remove(a).unwrap_err().contains("learner"));
    assert_eq!(h.voting(), 3);

    // Promoted (after it caught up with the leader); a second promotion is a no-op.
    client.promote(added.id).await.unwrap();
    client.promote(added.id).await.unwrap();
    let h = until_healthy(&client, 4).await;
    assert!(!h.by_name("d").unwrap().member.learner);
    assert!(client.endpoints().contains(&client_url));
    let e = client.promote(0xdead).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn a_member_is_removed_once_and_then_is_gone() {
    let mut cluster = Cluster::start(&["a", "b", "c"]).await;
    let client = cluster.client_of("a");
    let h = client.health().await.unwrap();
    let c = h.by_name("c").unwrap().member.id;
    assert!(client.remove_member(c).await.unwrap());
    assert!(!client.remove_member(c).await.unwrap(), "a retry finds it gone");
    assert!(!client.remove_member(0x1234).await.unwrap(), "never a member");
    let h = until_healthy(&client, 2).await;
    assert!(h.by_name("c").is_none());
    assert!(!client.endpoints().contains(&cluster.member("c").client_url));
    // etcd exits once it learns it was removed.
    let deadline = Instant::now() + WAIT;
    while !cluster.exited("c") {
        assert!(Instant::now() < deadline, "the removed member's etcd did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn leadership_moves_to_the_member_asked_for() {
    let cluster = Cluster::start(&["a", "b", "c"]).await;
    let client = cluster.client_of("c");
    let h = client.health().await.unwrap();
    let leader = h.leader.unwrap();
    let to = h.leadership_candidate(leader).expect("another healthy voter");
    assert_ne!(to, leader);
    client.move_leader(to).await.unwrap();
    eventually("the leader moved", WAIT, || async {
        let h = client.health().await.map_err(|e| e.to_string())?;
        if h.leader == Some(to) {
            Ok(())
        } else {
            Err(format!("leader {:?}", h.leader))
        }
    })
    .await;
    // Moving it to the leader itself is done already; to a stranger is an error.
    client.move_leader(to).await.unwrap();
    assert_eq!(client.move_leader(0xbeef).await.unwrap_err().kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_killed_member_is_reported_and_the_removal_rules_follow() {
    let mut cluster = Cluster::start(&["a", "b", "c"]).await;
    let client = cluster.client_of("a");
    let before = client.health().await.unwrap();
    cluster.kill("b");
    let h = eventually("b reported unhealthy", WAIT, || async {
        let h = client.health().await.map_err(|e| e.to_string())?;
        if h.by_name("b").is_some_and(|b| !b.healthy) && h.leader.is_some() {
            Ok(h)
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    let b = h.by_name("b").unwrap();
    let error = b.error.as_deref().unwrap_or_default();
    assert!(error.contains(&cluster.member("b").client_url), "the error names the endpoint: {error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert_eq!((h.voting(), h.healthy_voting()), (3, 2));
    assert!(h.problems().iter().any(|p| p.contains("etcd member b is not healthy")), "{:?}", h.problems());
    // The dead member itself may go (two of two stay healthy); nobody else may.
    assert_eq!(h.check_remove(b.member.id), Ok(()));
    let a = h.by_name("a").unwrap().member.id;
    let why = h.check_remove(a).unwrap_err();
    assert!(why.contains("etcd member b is not healthy"), "{why}");
    assert_eq!(h.leadership_candidate(a).map(|id| id != b.member.id), Some(true));
    assert_eq!(before.members.len(), h.members.len());

    // Removing it makes the cluster whole again.
    assert!(client.remove_member(b.member.id).await.unwrap());
    let h = until_healthy(&client, 2).await;
    assert!(h.check_remove(a).is_ok());
}

#[tokio::test]
async fn a_client_follows_a_control_plane_replaced_member_by_member() {
    let mut cluster = Cluster::start(&["a"]).await;
    // Seeded with a only, which goes.
    let client = cluster.client_of("a");
    for (new, old) in [("b", "a"), ("c", "b")] {
        let (client_url, peer_url) = cluster.new_urls();
        let (added, members) = client.add_learner(&peer_url).await.unwrap();
        let mut initial: Vec<String> =
            members.iter().filter(|m| m.started()).map(|m| format!("{}={}", m.name, m.peer_urls[0])).collect();
        initial.push(format!("{new}={peer_url}"));
        cluster.spawn(new, &client_url, &peer_url, &initial.join(","), "existing");
        client.promote(added.id).await.unwrap();
        until_healthy(&client, 2).await;
        let h = client.health().await.unwrap();
        let old_id = h.by_name(old).unwrap().member.id;
        let new_id = h.by_name(new).unwrap().member.id;
        if h.leader == Some(old_id) {
            client.move_leader(new_id).await.unwrap();
        }
        assert!(client.remove_member(old_id).await.unwrap());
        cluster.kill(old);
    }
    // Only c is left, and the seed is dead: the client reaches c through what it learned.
    let h = until_healthy(&client, 1).await;
    assert_eq!(h.members[0].member.name, "c");
    assert_eq!(
        h.check_remove(h.members[0].member.id).unwrap_err(),
        "etcd member c is the last member of etcd; it is never removed"
    );
    // A new client with the dead seed alone cannot.
    let lost = cluster.client_of("a");
    let e = lost.health().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn endpoints_that_do_not_answer_are_retryable_errors_naming_them() {
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let also_dead = format!("127.0.0.1:{}", support::free_port());
    let client = EtcdClient::new(vec![dead.clone(), also_dead.clone()], None).unwrap();
    let e = client.health().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.message.contains(&dead) && e.message.contains(&format!("http://{also_dead}")), "{e}");
    assert!(e.message.to_lowercase().contains("refused"), "{e}");
    assert!(client.remove_member(1).await.unwrap_err().is_retryable());
    assert!(client.move_leader(1).await.unwrap_err().is_retryable());
    assert!(client.add_learner("http://127.0.0.1:1").await.unwrap_err().is_retryable());
}

/// A block_on from sync code inside a runtime's blocking pool, as the simulated cloud calls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_on_runs_calls_from_blocking_code_inside_a_runtime() {
    let cluster = Cluster::start(&["a"]).await;
    let url = cluster.member("a").client_url.clone();
    let members = tokio::task::spawn_blocking(move || {
        let client = EtcdClient::new(vec![url], None).unwrap();
        let first = drydock_etcd::block_on(client.members()).unwrap();
        // The same client again, from another runtime.
        let second = drydock_etcd::block_on(client.members()).unwrap();
        assert_eq!(first, second);
        first
    })
    .await
    .unwrap();
    assert_eq!(members.len(), 1);
}

/// Client-certificate TLS as kubeadm sets it up: members that want a certificate signed by
/// their CA; a client with one gets in, a client trusting another CA does not.
#[tokio::test]
async fn client_certificates_authenticate_and_only_the_given_ca_is_trusted() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ca = make_ca(dir, "ca");
    let other_ca = make_ca(dir, "other-ca");
    let server = make_cert(dir, "ca", "server", "serverAuth,clientAuth");
    let client_cert = make_cert(dir, "ca", "client", "clientAuth");
    let flags = vec![
        format!("--cert-file={}", server.0.display()),
        format!("--key-file={}", server.1.display()),
        format!("--trusted-ca-file={}", ca.display()),
        "--client-cert-auth".to_string(),
    ];
    let cluster = Cluster::start_with(&["a"], flags, "https").await;
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let tls = EtcdTls { ca_pem: read(&ca), cert_pem: read(&client_cert.0), key_pem: read(&client_cert.1) };
    let url = cluster.member("a").client_url.clone();
    let client = EtcdClient::new(vec![url.trim_start_matches("https://").to_string()], Some(tls.clone())).unwrap();
    assert_eq!(client.endpoints(), vec![url.clone()], "a seed without a scheme is https with TLS");
    let h = eventually("the TLS member answers", WAIT, || async {
        let h = client.health().await.map_err(|e| e.to_string())?;
        if h.healthy_voting() == 1 && h.leader.is_some() {
            Ok(h)
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    assert!(h.alarms.is_empty());

    // Trusting another CA: the member's certificate is refused, and that is not retryable.
    let stranger = EtcdTls { ca_pem: read(&other_ca), ..tls.clone() };
    let e = EtcdClient::new(vec![url.clone()], Some(stranger)).unwrap().health().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(e.message.contains(&url), "{e}");
    // No client certificate: the member refuses the client.
    let plain = EtcdClient::new(vec![url.clone()], None).unwrap();
    let e = plain.health().await.unwrap_err();
    assert!(e.message.contains(&url), "{e}");
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl (to make test certificates) cannot run: {e}"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed CA: `NAME.crt` and `NAME.key`.
fn make_ca(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    crt
}

/// A certificate for 127.0.0.1 signed by the CA `ca`: (certificate, key).
fn make_cert(dir: &std::path::Path, ca: &str, name: &str, usage: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let p = |ext: &str| dir.join(format!("{name}.{ext}"));
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &s(&p("key")),
        "-out",
        &s(&p("csr")),
    ]);
    std::fs::write(
        p("ext"),
        format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&p("csr")),
        "-CA",
        &s(&dir.join(format!("{ca}.crt"))),
        "-CAkey",
        &s(&dir.join(format!("{ca}.key"))),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &s(&p("crt")),
        "-extfile",
        &s(&p("ext")),
    ]);
    (p("crt"), p("key"))
}
