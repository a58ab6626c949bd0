//! The local store's write-ahead journal through its public API: steps committed, read back
//! by a new store (another process), a journal torn at every byte, compaction and a crash in
//! the middle of one, and the bytes a run writes.

use std::collections::BTreeMap;
use std::path::Path;

use drydock_model::{Health, HealthCheck, IntOrPercent, NodeSettings, Role, Rollout};
use drydock_state::backend::Store;
use drydock_state::journal::{encode_record, Change, Record, Touch};
use drydock_state::store::LocalStore;
use drydock_state::{ClusterState, GenerationState, JournalEntry, NodeGroupState, State};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn settings() -> NodeSettings {
    NodeSettings {
        min: 1,
        max: 3,
        desired: None,
        tags: BTreeMap::from([("team".into(), "infra".into())]),
        subnets: vec!["subnet-a".into()],
        health: Health {
            check: HealthCheck::Ec2,
            grace_period_ms: 0,
            max_unhealthy: IntOrPercent::Percent(40.0),
            unhealthy_timeout_ms: 60_000,
            startup_timeout_ms: 600_000,
            node_startup_timeout_ms: drydock_model::DEFAULT_NODE_STARTUP_TIMEOUT_MS,
        },
        rollout: Rollout {
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
            health_timeout_ms: 600_000,
            min_ready_ms: 0,
        },
        drain: Default::default(),
        labels: Default::default(),
        sensitive_tags: Default::default(),
        sensitive_labels: Default::default(),
    }
}

fn node_group(name: &str, groups: usize) -> NodeGroupState {
    NodeGroupState {
        name: name.into(),
        key: None,
        role: Role::Worker,
        generations: vec![GenerationState {
            id: "0123456789".into(),
            spec: serde_json::json!({"image": "img-1", "instance_types": ["m6i.large"]}),
            groups: (0..groups).map(|i| format!("{name}-{i}")).collect(),
        }],
        settings: settings(),
        boot_times_ms: vec![2000, 2100],
        drain_times_ms: vec![],
        unfinished: false,
        history: vec![],
        cloud_owner: None,
    }
}

/// Commits one step as the ledger does: `f` changes what `touch` names.
fn step(rt: &tokio::runtime::Runtime, store: &Store, state: &mut State, touch: Touch, f: impl FnOnce(&mut State)) {
    f(state);
    let change = Change::of(state, &touch);
    rt.block_on(store.commit(state, vec![change])).unwrap();
}

/// A run of `n` node-group steps plus a mutation begun and settled, on a stored state.
fn run(rt: &tokio::runtime::Runtime, store: &Store, state: &mut State, n: usize) {
    for i in 0..n {
        let address = format!("cluster.c.node_group.g{i}");
        let touch = Touch::NodeGroup { cluster: "cluster.c".into(), address: address.clone() };
        step(rt, store, state, touch, |s| {
            s.clusters.get_mut("cluster.c").unwrap().node_groups.insert(address, node_group(&format!("g{i}"), 1));
        });
    }
    let entry = JournalEntry {
        id: 1,
        op: "create_group".into(),
        address: "cluster.c.node_group.g0".into(),
        group: "g0-1".into(),
        detail: serde_json::Value::Null,
        started_at_ms: 0,
    };
    state.journal.push(entry.clone());
    state.journal_seq = 1;
    rt.block_on(store.commit(state, vec![Change::Begin(entry)])).unwrap();
    state.journal.clear();
    rt.block_on(store.commit(state, vec![Change::Settle(1)])).unwrap();
}

/// A stored state with one empty cluster, and the store that read it.
fn stored(dir: &Path) -> (Store, State) {
    let path = dir.join("drydock.state.json");
    let mut state = State::new("lineage".into());
    state.clusters.insert(
        "cluster.c".into(),
        ClusterState { name: "c".into(), key: None, provider: "sim".into(), node_groups: BTreeMap::new() },
    );
    let rt = rt();
    let store = Store::Local(LocalStore::new(&path));
    rt.block_on(store.write(&mut state)).unwrap();
    let state = rt.block_on(store.read()).unwrap().unwrap();
    (store, state)
}

fn read_anew(dir: &Path) -> Option<State> {
    rt().block_on(Store::Local(LocalStore::new(dir.join("drydock.state.json"))).read()).unwrap()
}

#[test]
fn steps_go_to_the_journal_and_a_new_reader_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    let file_before = std::fs::read(dir.path().join("drydock.state.json")).unwrap();
    run(&rt(), &store, &mut state, 5);
    // The state file is untouched: every step is in the journal.
    assert_eq!(std::fs::read(dir.path().join("drydock.state.json")).unwrap(), file_before);
    let journal = dir.path().join("drydock.state.json.journal");
    assert!(journal.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&state));
    assert_eq!(state.serial, 1 + 7);

    // Compaction folds the journal into the state file and removes it.
    rt().block_on(store.compact(&state)).unwrap();
    assert!(!journal.exists());
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&state));
}

#[test]
fn a_journal_torn_anywhere_reads_as_its_whole_records_and_the_next_step_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    let journal_path = dir.path().join("drydock.state.json.journal");
    // The states after each step, to compare a torn journal's reading with.
    let mut after: Vec<State> = vec![state.clone()];
    let rt = rt();
    for i in 0..3 {
        let address = format!("cluster.c.node_group.g{i}");
        let touch = Touch::NodeGroup { cluster: "cluster.c".into(), address: address.clone() };
        step(&rt, &store, &mut state, touch, |s| {
            s.clusters.get_mut("cluster.c").unwrap().node_groups.insert(address, node_group(&format!("g{i}"), 2));
        });
        after.push(state.clone());
    }
    let whole = std::fs::read(&journal_path).unwrap();
    for cut in 0..whole.len() {
        std::fs::write(&journal_path, &whole[..cut]).unwrap();
        let read = read_anew(dir.path()).unwrap();
        let steps = (read.serial - after[0].serial) as usize;
        assert_eq!(read, after[steps], "cut at {cut}");
        // A kill -9 in the middle of an append: the next run reads what was whole and goes on.
        let reader = Store::Local(LocalStore::new(dir.path().join("drydock.state.json")));
        let mut next = rt.block_on(reader.read()).unwrap().unwrap();
        let touch = Touch::NodeGroup { cluster: "cluster.c".into(), address: "cluster.c.node_group.later".into() };
        step(&rt, &reader, &mut next, touch, |s| {
            s.clusters
                .get_mut("cluster.c")
                .unwrap()
                .node_groups
                .insert("cluster.c.node_group.later".into(), node_group("later", 1));
        });
        assert_eq!(read_anew(dir.path()).as_ref(), Some(&next), "cut at {cut}, then a step");
    }
}

#[test]
fn a_crash_between_compaction_and_removing_the_journal_leaves_a_journal_that_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    run(&rt(), &store, &mut state, 3);
    let journal_path = dir.path().join("drydock.state.json.journal");
    let journal = std::fs::read(&journal_path).unwrap();
    rt().block_on(store.compact(&state)).unwrap();
    // As if the removal never happened.
    std::fs::write(&journal_path, &journal).unwrap();
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&state));
    // And a run after it starts a new journal over the stale one.
    let reader = Store::Local(LocalStore::new(dir.path().join("drydock.state.json")));
    let mut next = rt().block_on(reader.read()).unwrap().unwrap();
    run(&rt(), &reader, &mut next, 2);
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&next));
}

#[test]
fn a_push_replaces_the_journal_too() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    let base = state.clone();
    run(&rt(), &store, &mut state, 3);
    // Pushing the state as it was before the run (same bytes as the journal's base).
    rt().block_on(store.write_as_is(&base)).unwrap();
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&base));
}

#[test]
fn a_damaged_record_before_a_whole_one_is_an_error_naming_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    run(&rt(), &store, &mut state, 3);
    let journal_path = dir.path().join("drydock.state.json.journal");
    let mut bytes = std::fs::read(&journal_path).unwrap();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[second_line + 30] ^= 0x20;
    std::fs::write(&journal_path, &bytes).unwrap();
    let err = rt().block_on(Store::Local(LocalStore::new(dir.path().join("drydock.state.json"))).read()).unwrap_err();
    assert_eq!(err.code(), "state::journal");
    assert!(err.to_string().contains("drydock.state.json.journal"), "{err}");
}

/// The bytes written to the state directory by a run of steps are linear in the bytes of its
/// records: the journal is compacted only once it has grown as large as the state, so each
/// compaction (the state and its backup) costs at most twice the records before it, and the
/// whole run at most three times its records — however large the state.
#[cfg(unix)]
#[test]
fn bytes_written_are_at_most_three_times_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut state) = stored(dir.path());
    let (mut written, mut records, mut compactions) = (0u64, 0u64, 0);
    let rt = rt();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (file, journal) = (dir.path().join("drydock.state.json"), dir.path().join("drydock.state.json.journal"));
    for i in 0..3000 {
        let (before_file, before_journal) = (size(&file), size(&journal));
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
        let address = format!("cluster.c.node_group.g{i}");
        let touch = Touch::NodeGroup { cluster: "cluster.c".into(), address: address.clone() };
        state.clusters.get_mut("cluster.c").unwrap().node_groups.insert(address, node_group(&format!("g{i}"), 1));
        let change = Change::of(&state, &touch);
        records += encode_record(&Record { serial: state.serial + 1, changes: vec![change.clone()] }).len() as u64;
        rt.block_on(store.commit(&mut state, vec![change])).unwrap();
        // A compaction replaces the state file (a new inode) and keeps the old one as backup.
        if std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap()) != inode {
            written += size(&file) + before_file;
            compactions += 1;
        } else {
            written += size(&journal).saturating_sub(before_journal);
        }
    }
    assert!(compactions >= 2, "the run compacted {compactions} times");
    assert!(written <= 3 * records, "wrote {written} bytes for {records} bytes of records");
    assert_eq!(read_anew(dir.path()).as_ref(), Some(&state));
}

mod remote {
    use std::sync::Arc;

    use drydock_backend::{MemoryStore, ObjectStore};
    use drydock_state::remote::RemoteStore;

    use super::*;

    fn store(objects: &Arc<MemoryStore>) -> Store {
        Store::Remote(Arc::new(RemoteStore::new(objects.clone() as Arc<dyn ObjectStore>, "state", Arc::new(|| 0))))
    }

    fn fresh(objects: &Arc<MemoryStore>) -> (Store, State) {
        let rt = rt();
        let store = store(objects);
        let mut state = State::new("lineage".into());
        state.clusters.insert(
            "cluster.c".into(),
            ClusterState { name: "c".into(), key: None, provider: "sim".into(), node_groups: BTreeMap::new() },
        );
        rt.block_on(store.read()).unwrap();
        rt.block_on(store.write(&mut state)).unwrap();
        (store, state)
    }

    fn read_anew(objects: &Arc<MemoryStore>) -> Option<State> {
        rt().block_on(store(objects).read()).unwrap()
    }

    #[test]
    fn records_are_objects_replayed_by_a_new_reader_and_deleted_by_compaction() {
        let objects = Arc::new(MemoryStore::default());
        let (store, mut state) = fresh(&objects);
        let state_object = rt().block_on(objects.get("state")).unwrap().unwrap();
        run(&rt(), &store, &mut state, 4);
        // The state object is untouched; each step is an object of its own.
        assert_eq!(rt().block_on(objects.get("state")).unwrap().unwrap().bytes, state_object.bytes);
        let key = |serial: u64| format!("state.journal/{serial:020}");
        assert!(rt().block_on(objects.get(&key(2))).unwrap().is_some());
        assert_eq!(read_anew(&objects).as_ref(), Some(&state));
        rt().block_on(store.compact(&state)).unwrap();
        assert!(rt().block_on(objects.get(&key(2))).unwrap().is_none(), "compaction deletes the records");
        assert_eq!(read_anew(&objects).as_ref(), Some(&state));
    }

    #[test]
    fn steps_committed_together_are_one_object() {
        let objects = Arc::new(MemoryStore::default());
        let (store, mut state) = fresh(&objects);
        let mut lines = vec![];
        for i in 0..3 {
            let address = format!("cluster.c.node_group.g{i}");
            state.clusters.get_mut("cluster.c").unwrap().node_groups.insert(address.clone(), node_group("g", 1));
            let change = Change::of(&state, &Touch::NodeGroup { cluster: "cluster.c".into(), address });
            drydock_state::store::advance(&mut state).unwrap();
            lines.extend(encode_record(&Record { serial: state.serial, changes: vec![change] }));
        }
        assert!(!store.compacts(lines.len()));
        rt().block_on(store.append(lines, 3)).unwrap();
        assert_eq!(read_anew(&objects).as_ref(), Some(&state));
        // The next step goes on after the three.
        run(&rt(), &store, &mut state, 1);
        assert_eq!(read_anew(&objects).as_ref(), Some(&state));
    }

    #[test]
    fn a_leftover_record_of_an_older_state_is_ignored_and_replaced() {
        let objects = Arc::new(MemoryStore::default());
        let (store, mut state) = fresh(&objects);
        let base = state.clone();
        run(&rt(), &store, &mut state, 3);
        // A forced push of the state before the run: the run's records are leftovers now
        // (they name the old object), and the next run's records reuse their keys.
        // (A pusher that never read the journal leaves its records where they are.)
        let pusher = super::remote::store(&objects);
        let mut pushed = base.clone();
        pushed.outputs.insert("x".into(), drydock_state::OutputState { value: serde_json::json!(1), sensitive: false });
        rt().block_on(pusher.write_as_is(&pushed)).unwrap();
        assert!(rt().block_on(objects.get("state.journal/00000000000000000002")).unwrap().is_some());
        assert_eq!(read_anew(&objects).as_ref(), Some(&pushed));
        let mut next = rt().block_on(pusher.read()).unwrap().unwrap();
        run(&rt(), &pusher, &mut next, 2);
        assert_eq!(read_anew(&objects).as_ref(), Some(&next));
    }
}
