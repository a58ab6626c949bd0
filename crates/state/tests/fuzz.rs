//! The state readers fuzzed inside `cargo test`, with the project's seeded generator
//! (`drydock_testgen::Rng`, so every run feeds the same inputs and a failure names its case):
//!
//! - [`LocalStore::read`] on state files: mutations of realistic valid states (as text, as
//!   JSON values and as bits), random bytes and truncations. Every input reads as a state or
//!   as a `state::corrupt` / `state::format` error naming the file, never a panic; a state it
//!   accepts writes back to itself.
//! - The write-ahead journal beside a valid state (`PATH.journal`), made by `Store::commit`
//!   and mutated: bits flipped, cut, lines duplicated, removed, moved, taken from another
//!   journal, garbage lines. Reading gives the base state with some prefix of the journal's
//!   records replayed (the states the steps left, kept as they were committed), or a
//!   `state::journal` error; never anything else.
//! - [`replay_journal`] itself, with most of the cases: the same property, and that the
//!   journal's `valid_len` (what the next append keeps) replays to the same state untorn.
//!
//! Every case runs under `catch_unwind`: a failure prints the case (label, index, input).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use drydock_model::{Health, HealthCheck, IntOrPercent, NodeSettings, Role, Rollout};
use drydock_state::backend::Store;
use drydock_state::format::{decode, encode};
use drydock_state::journal::{replay_journal, sha256_hex, Change, Touch};
use drydock_state::store::{LocalStore, StateError};
use drydock_state::{ClusterState, GenerationState, JournalEntry, NodeGroupState, OutputState, State};
use drydock_testgen::{edit_json, mutate, Rng};
use serde_json::{json, Value};

/// State files read by `LocalStore::read`.
const STATE_FILE_CASES: usize = 100_000;
/// Journals read by `LocalStore::read` beside an intact state file.
const STORE_JOURNAL_CASES: usize = 20_000;
/// Journals replayed by `replay_journal` directly.
const REPLAY_CASES: usize = 150_000;

// ---------------------------------------------------------------------------------------
// Realistic states, built through the public API.

fn settings(min: u32, max: u32, desired: Option<u32>, surge: IntOrPercent) -> NodeSettings {
    NodeSettings {
        min,
        max,
        desired,
        tags: BTreeMap::from([("team".into(), "é".into())]),
        subnets: vec!["subnet-a".into()],
        health: Health {
            check: HealthCheck::Ec2,
            grace_period_ms: 30_000,
            max_unhealthy: IntOrPercent::Percent(40.5),
            unhealthy_timeout_ms: 60_000,
            startup_timeout_ms: 600_000,
            node_startup_timeout_ms: drydock_model::DEFAULT_NODE_STARTUP_TIMEOUT_MS,
        },
        rollout: Rollout {
            max_surge: surge,
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

fn generation(id: &str, image: &str, groups: &[&str]) -> GenerationState {
    GenerationState {
        id: id.into(),
        spec: json!({"image": image, "instance_types": ["m6i.large"]}),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn worker(name: &str, key: Option<&str>, generations: Vec<GenerationState>) -> NodeGroupState {
    NodeGroupState {
        name: name.into(),
        key: key.map(str::to_string),
        role: Role::Worker,
        generations,
        settings: settings(1, 5, None, IntOrPercent::Percent(25.0)),
        boot_times_ms: vec![2_150],
        drain_times_ms: vec![],
        unfinished: false,
        history: vec![],
        cloud_owner: None,
    }
}

fn cluster(name: &str, key: Option<&str>, provider: &str) -> ClusterState {
    ClusterState {
        name: name.into(),
        key: key.map(str::to_string),
        provider: provider.into(),
        node_groups: BTreeMap::new(),
    }
}

fn entry(id: u64, op: &str, address: &str, group: &str) -> JournalEntry {
    JournalEntry {
        id,
        op: op.into(),
        address: address.into(),
        group: group.into(),
        detail: json!({"instances": ["i-0a"]}),
        started_at_ms: 1_700_000_000_000 + id,
    }
}

/// A cluster with a control plane of three members and a worker group in the middle of a
/// rollout (two generations, unfinished), outputs (one sensitive) and a mutation in flight.
fn demo() -> State {
    let mut s = State::new("0a1b2c3d-1111-4222-8333-444455556666".into());
    s.serial = 41;
    let mut c = cluster("demo", None, "sim");
    let control = NodeGroupState {
        name: "control".into(),
        key: None,
        role: Role::ControlPlane,
        generations: vec![generation(
            "3f9a1c2d4e",
            "img-cp-1",
            &["0a1b2c-demo-control-3f9a1c2d4e-m0", "0a1b2c-demo-control-3f9a1c2d4e-m1"],
        )],
        settings: settings(1, 1, Some(1), IntOrPercent::Int(1)),
        boot_times_ms: vec![2_000],
        drain_times_ms: vec![],
        unfinished: false,
        history: vec![],
        cloud_owner: None,
    };
    c.node_groups.insert("cluster.demo.node_group.control".into(), control);
    let mut w = worker(
        "workers",
        Some("a"),
        vec![
            generation("1111111111", "img-1", &["0a1b2c-demo-workers-a-1111111111"]),
            generation("2222222222", "img-2", &["0a1b2c-demo-workers-a-2222222222"]),
        ],
    );
    w.unfinished = true;
    c.node_groups.insert("cluster.demo.node_group.workers[\"a\"]".into(), w);
    s.clusters.insert("cluster.demo".into(), c);
    s.outputs.insert("endpoint".into(), OutputState { value: json!("https://demo.example"), sensitive: false });
    s.outputs.insert("token".into(), OutputState { value: json!({"v": [1, 2.5, null]}), sensitive: true });
    s.journal.push(entry(
        4,
        "terminate_instances",
        "cluster.demo.node_group.workers[\"a\"]",
        "0a1b2c-demo-workers-a-1111111111",
    ));
    s.journal_seq = 4;
    s
}

/// Two clusters, one of them keyed and on another provider, the other without node groups.
fn fleet() -> State {
    let mut s = State::new("fleet-lineage".into());
    s.serial = 7;
    let mut eu = cluster("fleet", Some("eu"), "aws.west");
    eu.node_groups.insert(
        "cluster.fleet[\"eu\"].node_group.gpu".into(),
        worker("gpu", None, vec![generation("abcdef0123", "ami-0123", &["fl-fleet-eu-gpu-abcdef0123"])]),
    );
    s.clusters.insert("cluster.fleet[\"eu\"]".into(), eu);
    // A cluster whose node groups are all gone.
    s.clusters.insert("cluster.small".into(), cluster("small", None, "sim"));
    s
}

fn empty() -> State {
    State::new("empty".into())
}

// ---------------------------------------------------------------------------------------
// Running a case.

/// Runs one case; on a panic (an assertion of the case included) says which case and input.
fn case<T>(label: &str, index: usize, input: &[u8], f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(panic) => {
            let shown = String::from_utf8_lossy(&input[..input.len().min(4_000)]);
            eprintln!("fuzz case {label} #{index} failed; input ({} bytes):\n{shown}", input.len());
            resume_unwind(panic)
        }
    }
}

fn overwrite(path: &Path, bytes: &[u8]) {
    drydock_testgen::overwrite(path, bytes).unwrap();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The file name, which every error about the state file must name.
fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// What a state the reader accepted must be: one that writes back to itself.
fn check_accepted(state: &State) {
    let bytes = encode(state).expect("an accepted state encodes");
    let again = decode(serde_json::from_slice(&bytes).expect("encoded state is json")).expect("encoded state decodes");
    assert_eq!(&again, state, "an accepted state does not write back to itself");
}

// ---------------------------------------------------------------------------------------
// Mutations.

/// A random edge value for a JSON node.
fn random_value(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(u32::MAX as u64 + 1),
        5 => json!(u64::MAX),
        6 => json!(i64::MIN),
        7 => json!(1e308),
        8 => json!(0.5),
        9 => json!(""),
        10 => json!("é\u{0}\u{1F600}"),
        11 => json!([]),
        12 => json!({}),
        13 => json!({"int": 3}),
        14 => json!({"percent": -0.0}),
        _ => json!(["x", 1, {"y": null}]),
    }
}

/// One to three edits of the JSON tree ([`edit_json`]), written back pretty or compact.
fn mutate_json(rng: &mut Rng, value: &Value) -> Vec<u8> {
    let mut v = value.clone();
    for _ in 0..1 + rng.below(3) {
        edit_json(rng, &mut v, random_value);
    }
    let mut out = if rng.chance(80) { serde_json::to_vec_pretty(&v).unwrap() } else { serde_json::to_vec(&v).unwrap() };
    out.push(b'\n');
    out
}

fn flip_bits(rng: &mut Rng, bytes: &mut [u8]) {
    if bytes.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len());
        bytes[at] ^= 1 << rng.below(8);
    }
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(400);
    if rng.chance(50) {
        (0..len).map(|_| rng.next_u64() as u8).collect()
    } else {
        // JSON's own characters, to get past the first byte.
        const ALPHABET: &[u8] = b"{}[]\":,0123456789.-+eE truefalsn\\u\n\tformat_version";
        (0..len).map(|_| *rng.pick(ALPHABET)).collect()
    }
}

// ---------------------------------------------------------------------------------------
// 1. The state file.

#[test]
fn state_files_mutated_random_or_cut_read_as_a_state_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drydock.state.json");
    let store = LocalStore::new(&path);
    let valid: Vec<Vec<u8>> = [demo(), fleet(), empty()].iter().map(|s| encode(s).unwrap()).collect();
    let values: Vec<Value> = valid.iter().map(|b| serde_json::from_slice(b).unwrap()).collect();
    let texts: Vec<String> = valid.iter().map(|b| String::from_utf8(b.clone()).unwrap()).collect();
    // The fixtures themselves read back as they were built.
    for (bytes, built) in valid.iter().zip([demo(), fleet(), empty()]) {
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(store.read().unwrap(), Some(built));
    }

    let mut rng = Rng::new(0x5eed_0001);
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for i in 0..STATE_FILE_CASES {
        let which = rng.below(valid.len());
        let (kind, input): (&str, Vec<u8>) = match rng.below(20) {
            0..=7 => ("text mutation", mutate(&mut rng, &texts[which]).into_bytes()),
            8..=11 => ("json mutation", mutate_json(&mut rng, &values[which])),
            12 | 13 => {
                let mut b = valid[which].clone();
                flip_bits(&mut rng, &mut b);
                ("bit flips", b)
            }
            14 | 15 => ("truncation", valid[which][..rng.below(valid[which].len())].to_vec()),
            16 | 17 => ("random bytes", random_bytes(&mut rng)),
            _ => {
                // The start of one state and the end of another.
                let other = rng.pick(&valid);
                let mut b = valid[which][..rng.below(valid[which].len())].to_vec();
                b.extend_from_slice(&other[rng.below(other.len())..]);
                ("splice", b)
            }
        };
        overwrite(&path, &input);
        let accepted = case(kind, i, &input, || match store.read() {
            Ok(Some(state)) => {
                check_accepted(&state);
                true
            }
            Ok(None) => panic!("the state file exists, yet the reader found none"),
            Err(e) => {
                assert!(["state::corrupt", "state::format"].contains(&e.code()), "unexpected error {}: {e}", e.code());
                assert!(e.to_string().contains(&file_name(&path)), "the error does not name the file: {e}");
                false
            }
        });
        let tally = kinds.entry(kind).or_default();
        tally.0 += 1;
        tally.1 += usize::from(accepted);
    }
    eprintln!("state file cases (kind: cases, accepted): {kinds:?}");
    // The generator must reach the decoder, not only the JSON parser.
    assert!(kinds["json mutation"].1 > 100, "{kinds:?}");
}

// ---------------------------------------------------------------------------------------
// 2. The journal.

/// A base state stored at `path` and a journal of steps committed on it, with the state after
/// each step (`after[0]` is the base, as read).
struct Journal {
    path: PathBuf,
    /// The SHA-256 of the base state file.
    base_sha256: String,
    after: Vec<State>,
    bytes: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

/// Commits one step as the executor's ledger does: the state changed, then the changes read
/// from it (several in one record when `touches` has several).
fn step(rt: &tokio::runtime::Runtime, store: &Store, state: &mut State, touches: &[Touch], f: impl FnOnce(&mut State)) {
    f(state);
    let changes = touches.iter().map(|t| Change::of(state, t)).collect();
    rt.block_on(store.commit(state, changes)).unwrap();
}

/// Stores `base` as it is (its serial kept) at `path` and commits a run of steps that touch
/// every kind of change: a node group added and removed, outputs set and changed, clusters,
/// a mutation begun and settled, and a record of two changes.
fn journal(path: PathBuf, base: State) -> Journal {
    let rt = rt();
    let store = Store::Local(LocalStore::new(&path));
    rt.block_on(store.write_as_is(&base)).unwrap();
    let mut state = rt.block_on(store.read()).unwrap().unwrap();
    let base_bytes = std::fs::read(&path).unwrap();
    let mut after = vec![state.clone()];
    let cluster_of = |s: &State| s.clusters.keys().next().cloned().unwrap_or_else(|| "cluster.new".into());
    let c = cluster_of(&state);
    let ng = |name: &str| format!("{c}.node_group.{name}");
    // A cluster to put the node groups in, when the base has none.
    step(&rt, &store, &mut state, &[Touch::Clusters], |s| {
        s.clusters.entry(c.clone()).or_insert_with(|| cluster("new", None, "sim"));
    });
    after.push(state.clone());
    // A mutation begun, its node group recorded with an output, the mutation settled.
    let id = state.journal_seq + 1;
    let begin = entry(id, "create_group", &ng("batch"), "grp-batch-1");
    state.journal.push(begin.clone());
    state.journal_seq = id;
    rt.block_on(store.commit(&mut state, vec![Change::Begin(begin)])).unwrap();
    after.push(state.clone());
    let batch = Touch::NodeGroup { cluster: c.clone(), address: ng("batch") };
    step(&rt, &store, &mut state, &[batch.clone(), Touch::Outputs], |s| {
        let batch = worker("batch", None, vec![generation("5555555555", "img-5", &["grp-batch-1"])]);
        s.clusters.get_mut(&c).unwrap().node_groups.insert(ng("batch"), batch);
        s.outputs.insert("batch".into(), OutputState { value: json!(["grp-batch-1"]), sensitive: false });
    });
    after.push(state.clone());
    state.journal.retain(|j| j.id != id);
    rt.block_on(store.commit(&mut state, vec![Change::Settle(id)])).unwrap();
    after.push(state.clone());
    step(&rt, &store, &mut state, &[Touch::Outputs], |s| {
        s.outputs.get_mut("batch").unwrap().value = json!({"groups": 1});
    });
    after.push(state.clone());
    step(&rt, &store, &mut state, &[Touch::Clusters], |s| {
        s.clusters.insert("cluster.extra".into(), cluster("extra", Some("k"), "aws"));
    });
    after.push(state.clone());
    step(&rt, &store, &mut state, &[batch], |s| {
        s.clusters.get_mut(&c).unwrap().node_groups.remove(&ng("batch"));
    });
    after.push(state.clone());
    assert_eq!(after.len(), STEPS + 1);
    let bytes = std::fs::read(format!("{}.journal", path.display())).unwrap();
    // What was committed is what a reader finds.
    assert_eq!(LocalStore::new(&path).read().unwrap().as_ref(), after.last());
    Journal { path, base_sha256: sha256_hex(&base_bytes), after, lines: lines(&bytes), bytes }
}

/// How many records [`journal`] commits.
const STEPS: usize = 7;

/// The journal's lines, each with its newline (the last one without, if torn).
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// One to three edits of a journal, by byte or by line; `foreign` is another journal.
fn mutate_journal(rng: &mut Rng, me: &Journal, foreign: &Journal) -> (&'static str, Vec<u8>) {
    // Kept as lines: most edits are of lines, and a debug build splits slowly.
    let mut ls = me.lines.clone();
    let others = &foreign.lines;
    let mut kind = "";
    // An edit of the bytes, the lines split again after it.
    let bytes = |ls: &mut Vec<Vec<u8>>, f: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut out = ls.concat();
        f(&mut out);
        *ls = lines(&out);
    };
    for _ in 0..1 + rng.below(3) {
        let n = ls.len();
        kind = match rng.below(12) {
            0 => {
                bytes(&mut ls, &mut |out| flip_bits(rng, out));
                "bit flips"
            }
            1 => {
                bytes(&mut ls, &mut |out| out.truncate(rng.below(out.len() + 1)));
                "truncation"
            }
            2 if n > 0 => {
                let l = ls[rng.below(n)].clone();
                ls.insert(rng.below(n + 1), l);
                "duplicated line"
            }
            3 if n > 0 => {
                ls.remove(rng.below(n));
                "removed line"
            }
            4 if n > 1 => {
                ls.swap(rng.below(n), rng.below(n));
                "swapped lines"
            }
            5 if n > 0 => {
                let l = ls.remove(rng.below(n));
                ls.insert(rng.below(n), l);
                "moved line"
            }
            6 => {
                let l = others[rng.below(others.len())].clone();
                if n > 0 && rng.chance(50) {
                    ls[rng.below(n)] = l;
                } else {
                    ls.insert(rng.below(n + 1), l);
                }
                "line of another journal"
            }
            7 if n > 0 => {
                ls[0] = others[0].clone();
                "header of another journal"
            }
            8 => {
                let garbage = random_bytes(rng);
                ls.insert(rng.below(n + 1), [&garbage[..], b"\n"].concat());
                "garbage line"
            }
            9 => {
                bytes(&mut ls, &mut |out| *out = mutate(rng, &String::from_utf8_lossy(out)).into_bytes());
                "text mutation"
            }
            10 if n > 0 => {
                bytes(&mut ls, &mut |out| {
                    let at = rng.below(out.len());
                    out[at] = rng.next_u64() as u8;
                });
                "byte overwritten"
            }
            _ => {
                // A torn append: part of a line of this journal or the other after the end.
                let from = if rng.chance(50) { &me.lines } else { others };
                let l = &from[rng.below(from.len())];
                ls.push(l[..rng.below(l.len())].to_vec());
                bytes(&mut ls, &mut |_| {});
                "torn tail"
            }
        };
    }
    (kind, ls.concat())
}

/// What reading a journal may give: the base with the first `k` records replayed, for some
/// `k`. Returns `k`.
fn prefix_of(state: &State, after: &[State]) -> usize {
    let k = after.iter().position(|a| a == state).unwrap_or_else(|| {
        panic!("the journal read as a state that is not the base with a prefix of its records: {state:#?}")
    });
    assert_eq!(state.serial, after[0].serial + k as u64);
    k
}

/// Three stored states with journals of their own: a two-cluster fleet, the demo cluster
/// (another lineage, serials far apart) and an empty state, all in one directory.
fn journals(dir: &Path) -> Vec<Journal> {
    let mut demo = demo();
    demo.serial = 1_000;
    vec![
        journal(dir.join("fleet.state.json"), fleet()),
        journal(dir.join("demo.state.json"), demo),
        journal(dir.join("empty.state.json"), empty()),
    ]
}

#[test]
fn mutated_journals_read_as_a_prefix_of_their_records_or_a_journal_error() {
    let dir = tempfile::tempdir().unwrap();
    let journals = journals(dir.path());
    let mut rng = Rng::new(0x5eed_0002);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..STORE_JOURNAL_CASES {
        let j = rng.below(journals.len());
        let (me, foreign) = (&journals[j], &journals[(j + 1 + rng.below(journals.len() - 1)) % journals.len()]);
        let (kind, input) = mutate_journal(&mut rng, me, foreign);
        overwrite(Path::new(&format!("{}.journal", me.path.display())), &input);
        let outcome = case(kind, i, &input, || match LocalStore::new(&me.path).read() {
            Ok(Some(state)) => format!("prefix {}", prefix_of(&state, &me.after)),
            Ok(None) => panic!("the state file exists, yet the reader found none"),
            Err(e) => {
                assert_eq!(e.code(), "state::journal", "unexpected error: {e}");
                assert!(e.to_string().contains(&format!("{}.journal", file_name(&me.path))), "{e}");
                assert!(matches!(e, StateError::Journal { .. }));
                "journal error".to_string()
            }
        });
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("journal read by the store (outcome: cases): {outcomes:?}");
    // The mutations reach every outcome: errors, the base alone, some and all records.
    let n = journals[0].after.len() - 1;
    for o in ["journal error", "prefix 0", "prefix 1", &format!("prefix {n}")] {
        assert!(outcomes.get(o).is_some_and(|&c| c > 50), "{o}: {outcomes:?}");
    }
}

/// Checks what `replay_journal` made of `input` on the journal's base: a prefix of the
/// records; and that what it kept (`valid_len`) replays to the same, untorn.
fn check_replay(me: &Journal, input: &[u8]) -> String {
    let sha = &me.base_sha256;
    let mut state = me.after[0].clone();
    match replay_journal(&mut state, sha, input) {
        Ok(scan) => {
            assert!(scan.valid_len <= input.len() as u64, "{scan:?}");
            assert!(scan.extends || scan.records == 0, "{scan:?}");
            let k = prefix_of(&state, &me.after);
            assert_eq!(scan.records, k, "{scan:?}: the state is the base with {k} records");
            let kept = &input[..scan.valid_len as usize];
            assert!(kept.is_empty() || kept.ends_with(b"\n"), "{scan:?}: valid_len is not at a line end");
            // (Kept whole, the input would only be replayed again.)
            if scan.extends && kept.len() < input.len() {
                let mut again = me.after[0].clone();
                let rescan = replay_journal(&mut again, sha, kept).expect("the kept lines replay");
                assert_eq!((rescan.records, rescan.torn, rescan.valid_len), (k, false, scan.valid_len), "{rescan:?}");
                assert_eq!(again, state);
            }
            format!("prefix {k}")
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            "error".to_string()
        }
    }
}

#[test]
fn replay_journal_gives_a_prefix_of_the_records_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut journals = journals(dir.path());
    journals.push(near_the_last_serial(dir.path()));
    let mut rng = Rng::new(0x5eed_0003);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..REPLAY_CASES {
        let j = rng.below(journals.len());
        let (me, foreign) = (&journals[j], &journals[(j + 1 + rng.below(journals.len() - 1)) % journals.len()]);
        let (kind, input) = match rng.below(10) {
            0 => ("random bytes", random_bytes(&mut rng)),
            1 => {
                // Whole lines of both journals, in any order.
                let pool = [&me.lines, &foreign.lines];
                let soup = (0..rng.below(8))
                    .flat_map(|_| {
                        let from = *rng.pick(&pool);
                        rng.pick(from).clone()
                    })
                    .collect();
                ("line soup", soup)
            }
            _ => mutate_journal(&mut rng, me, foreign),
        };
        let outcome = case(kind, i, &input, || check_replay(me, &input));
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("replay_journal (outcome: cases): {outcomes:?}");
    assert!(outcomes.get("error").is_some_and(|&c| c > 1_000), "{outcomes:?}");
    assert!(outcomes.get("prefix 0").is_some_and(|&c| c > 1_000), "{outcomes:?}");
}

/// A journal whose last record takes the serial to `u64::MAX`: there is no serial after it.
fn near_the_last_serial(dir: &Path) -> Journal {
    let mut base = fleet();
    base.lineage = "near-the-end".into();
    base.serial = u64::MAX - STEPS as u64;
    let j = journal(dir.join("end.state.json"), base);
    assert_eq!(j.after.last().unwrap().serial, u64::MAX);
    j
}

/// The same journals, unmutated, read whole and cut at every byte: the cases the fuzzing
/// is built on, checked exhaustively.
#[test]
fn whole_and_cut_journals_replay_to_their_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let mut journals = journals(dir.path());
    journals.push(near_the_last_serial(dir.path()));
    // The fleet's journal and the one that ends at the last serial: the others are alike.
    for me in [&journals[0], &journals[3]] {
        assert_eq!(check_replay(me, &me.bytes), format!("prefix {}", me.after.len() - 1));
        for cut in 0..me.bytes.len() {
            case("cut", cut, &me.bytes[..cut], || check_replay(me, &me.bytes[..cut]));
        }
    }
}

mod serial_at_its_maximum {
    use std::sync::Arc;

    use drydock_backend::{MemoryStore, ObjectStore};
    use drydock_state::remote::RemoteStore;

    use super::*;

    /// A remote journal whose last record takes the serial to `u64::MAX` is read (it used to
    /// be read again and again: the key of the record after `u64::MAX` was its own).
    #[test]
    fn a_remote_journal_ending_at_the_last_serial_is_read_once() {
        let objects = Arc::new(MemoryStore::default());
        let store = || {
            Store::Remote(Arc::new(RemoteStore::new(objects.clone() as Arc<dyn ObjectStore>, "state", Arc::new(|| 0))))
        };
        let rt = rt();
        let writer = store();
        let mut state = fleet();
        state.serial = u64::MAX - 1;
        rt.block_on(writer.read()).unwrap();
        rt.block_on(writer.write_as_is(&state)).unwrap();
        state.outputs.insert("last".into(), OutputState { value: json!(1), sensitive: false });
        let change = Change::Outputs(state.outputs.clone());
        rt.block_on(writer.commit(&mut state, vec![change])).unwrap();
        assert_eq!(state.serial, u64::MAX);
        let reader = store();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(rt.block_on(reader.read()).map_err(|e| e.to_string()));
        });
        let read = result.recv_timeout(std::time::Duration::from_secs(20)).expect("the read finishes");
        assert_eq!(read.unwrap(), Some(state));
    }
}
