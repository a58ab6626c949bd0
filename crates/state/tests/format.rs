//! Every state format version drydock ever wrote is still read, into the same in-memory
//! state, and the current version writes it back unchanged. A file per version (and per
//! shape an older drydock wrote) lives in `tests/format/`; a new format version adds its own
//! files and keeps these.

use drydock_state::format::{decode, encode, to_value, FORMAT_VERSION};
use expect_test::expect;
use serde_json::Value;

fn read(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/format").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn version_1_is_read_and_written_back_unchanged() {
    let file = read("v1.json");
    let state = decode(file.clone()).unwrap();
    assert_eq!(state.serial, 42);
    assert_eq!(state.addresses().len(), 5);
    let workers = state.node_group("cluster.demo", "cluster.demo.node_group.workers[\"a\"]").unwrap();
    assert!(workers.unfinished);
    assert_eq!(workers.current().unwrap().id, "2222222222");
    expect![[r#"NodeSettings { min: 2, max: 10, desired: None, tags: {"team": "infra"}, subnets: [], health: Health { check: Elb, grace_period_ms: 0, max_unhealthy: Percent(40.5), unhealthy_timeout_ms: 0, startup_timeout_ms: 1000, node_startup_timeout_ms: 600000 }, rollout: Rollout { max_surge: Percent(25.0), max_unavailable: Percent(0.0), health_timeout_ms: 1, min_ready_ms: 0 }, drain: Drain { timeout_ms: 900000, on_timeout: Fail, grace_period_s: None }, labels: {}, sensitive_tags: {}, sensitive_labels: {} }"#]]
    .assert_eq(&format!("{:?}", workers.settings));
    assert_eq!(state.journal.len(), 1);
    assert_eq!(state.journal[0].op, "terminate_instances");
    assert!(state.outputs["token"].sensitive);
    // Written back (this build writes version 1), the file is the same JSON.
    assert_eq!(FORMAT_VERSION, 1);
    assert_eq!(to_value(&state), file);
    let bytes = encode(&state).unwrap();
    assert!(bytes.ends_with(b"}\n"));
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), file);
}

#[test]
fn version_1_without_the_fields_later_0_1_releases_added_is_read_with_defaults() {
    let state = decode(read("v1-minimal.json")).unwrap();
    let ng = state.node_group("cluster.c", "cluster.c.node_group.w").unwrap();
    assert_eq!((ng.key.as_deref(), ng.boot_times_ms.len(), ng.unfinished), (None, 0, false));
    assert!(state.journal.is_empty() && state.outputs.is_empty() && state.journal_seq == 0);
    assert_eq!(state.clusters["cluster.c"].key, None);
}

#[test]
fn unknown_newer_and_missing_versions_are_refused() {
    let mut file = read("v1.json");
    file["format_version"] = Value::from(FORMAT_VERSION + 1);
    expect!["format_version 2 was written by a newer drydock (this one reads up to 1); upgrade drydock"]
        .assert_eq(&decode(file.clone()).unwrap_err().to_string());
    file["format_version"] = Value::from("one");
    expect![[r#"format_version "one" is not a known state format"#]]
        .assert_eq(&decode(file.clone()).unwrap_err().to_string());
    file.as_object_mut().unwrap().remove("format_version");
    expect!["format_version is missing"].assert_eq(&decode(file).unwrap_err().to_string());
    let mut file = read("v1.json");
    file["clusters"]["cluster.demo"]["node_groups"]["cluster.demo.node_group.control"]["role"] = Value::from("boss");
    let err = decode(file).unwrap_err().to_string();
    assert!(err.contains("unknown variant `boss`"), "{err}");
}

/// A sensitive tag's value is written as its digest, never in clear, and reads back as the
/// digest with the set of sensitive tags; writing what was read changes nothing.
#[test]
fn sensitive_tags_are_written_as_digests() {
    let mut state = decode(read("v1.json")).unwrap();
    let workers = state
        .clusters
        .get_mut("cluster.demo")
        .and_then(|c| c.node_groups.get_mut("cluster.demo.node_group.workers[\"a\"]"))
        .unwrap();
    workers.settings.tags.insert("token".into(), "SEKRIT".into());
    workers.settings.sensitive_tags.insert("token".into());
    let bytes = encode(&state).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("SEKRIT"), "{text}");
    let digest = drydock_state::sensitive_digest("SEKRIT");
    assert!(drydock_state::is_sensitive_digest(&digest) && text.contains(&digest), "{text}");
    let back = decode(serde_json::from_slice(&bytes).unwrap()).unwrap();
    let w = back.node_group("cluster.demo", "cluster.demo.node_group.workers[\"a\"]").unwrap();
    assert_eq!(w.settings.tags["token"], digest);
    assert_eq!(w.settings.tags["team"], "infra", "other tags stay in clear");
    assert!(w.settings.sensitive_tags.contains("token"));
    assert_eq!(encode(&back).unwrap(), bytes);
    // The digest stands for the value it was made from, and for no other.
    let known = std::collections::BTreeMap::from([("token".to_string(), "SEKRIT".to_string())]);
    assert_eq!(drydock_state::reveal_tags(&w.settings, [&known]).tags["token"], "SEKRIT");
    let other = std::collections::BTreeMap::from([("token".to_string(), "OTHER".to_string())]);
    assert_eq!(drydock_state::reveal_tags(&w.settings, [&other]).tags["token"], digest);
}
