//! The write-ahead journal: how an apply records each step in time linear in the number of
//! steps, instead of rewriting the whole state after every one.
//!
//! # Records
//! Every change an apply makes to the state is a [`Record`]: the state's next serial and the
//! new value of each thing the step changed (a node group's whole entry, the set of clusters,
//! the outputs) or a cloud mutation begun ([`Change::Begin`]) or settled ([`Change::Settle`]).
//! A record holds values, not operations, so replaying one twice or onto a state that already
//! has it gives the same state. [`Change::of`] reads a change from the state after the step
//! (the caller names what it touched with a [`Touch`]), and [`replay`] applies a record.
//!
//! # Where records go
//! A store appends each record to a journal beside the state and makes it durable before the
//! step goes on (`Store::commit`); the state itself is rewritten — *compacted*, the journal
//! folded in and removed — only when the journal has grown as large as the state, and at the
//! end of a run. So the bytes a run writes grow linearly with its steps: each record is written
//! once, and every compaction is paid for by at least as many bytes of records before it.
//!
//! - Local: `PATH.journal`, mode 0600, written only under the state lock. Its first line is a
//!   [`Header`] naming the state it extends by lineage, serial and the SHA-256 of the state
//!   file's bytes; each further line is one record. Every line is framed as
//!   `<16 hex digits> <json>\n`, the digits the start of the JSON's SHA-256, so a line torn
//!   by a crash is told from a whole one. A record's digits hash the base state's SHA-256
//!   (hex) before its JSON ([`bind`]): a record is bound to the journal of its base, so a
//!   line of another journal (another state's, whose serials may well follow on) never passes
//!   for one of this.
//! - Remote: one object per record, `KEY.journal/<serial>`, holding the header line and the
//!   record line (bound to the base as above), written with `If-None-Match: *` (of two
//!   writers of the same serial, one fails, as with the state object's `If-Match`).
//!
//! # Reading
//! Reading the state replays the journal that extends it: a journal whose header names
//! another file (its base hash differs: the state was compacted, pushed or replaced since) is
//! stale and ignored. A torn last line is ignored (its step was never reported done, and the
//! executor's own journal entries make the next run observe the cloud); a bad line *followed
//! by* another is corruption and an error, since records after a lost one cannot be trusted.
//! A record whose serial is not the next one is an error too, and so is a record after one
//! that took the serial to `u64::MAX`: there is no next one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ClusterState, JournalEntry, NodeGroupState, OutputState, State};

/// One step's changes, making the state's `serial` this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub serial: u64,
    pub changes: Vec<Change>,
}

/// A cluster's own fields, without its node groups.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterHeader {
    pub name: String,
    pub key: Option<String>,
    pub provider: String,
}

impl ClusterHeader {
    fn of(c: &ClusterState) -> ClusterHeader {
        ClusterHeader { name: c.name.clone(), key: c.key.clone(), provider: c.provider.clone() }
    }

    fn into_cluster(self) -> ClusterState {
        ClusterState { name: self.name, key: self.key, provider: self.provider, node_groups: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A node group's entry as it now is (`None`: removed), in cluster `cluster`, which is
    /// created with `header` if it does not exist.
    NodeGroup { cluster: String, header: Option<ClusterHeader>, address: String, value: Option<Box<NodeGroupState>> },
    /// The clusters are exactly these (their node groups kept; a cluster not named is removed).
    Clusters(BTreeMap<String, ClusterHeader>),
    /// The outputs are exactly these.
    Outputs(BTreeMap<String, OutputState>),
    /// A cloud mutation is about to be made.
    Begin(JournalEntry),
    /// A cloud mutation is settled: its entry leaves the state's journal.
    Settle(u64),
}

/// What a step changed, so that its record can be read from the state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    NodeGroup { cluster: String, address: String },
    Clusters,
    Outputs,
}

impl Change {
    /// The change `touch` names, as `state` now has it.
    pub fn of(state: &State, touch: &Touch) -> Change {
        match touch {
            Touch::NodeGroup { cluster, address } => {
                let c = state.clusters.get(cluster);
                Change::NodeGroup {
                    cluster: cluster.clone(),
                    header: c.map(ClusterHeader::of),
                    address: address.clone(),
                    value: c.and_then(|c| c.node_groups.get(address)).cloned().map(Box::new),
                }
            }
            Touch::Clusters => {
                Change::Clusters(state.clusters.iter().map(|(k, c)| (k.clone(), ClusterHeader::of(c))).collect())
            }
            Touch::Outputs => Change::Outputs(state.outputs.clone()),
        }
    }

    /// Applies this change to `state`.
    pub fn apply(self, state: &mut State) {
        match self {
            Change::NodeGroup { cluster, header, address, value } => match value {
                Some(ng) => {
                    let c = match state.clusters.entry(cluster) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(e) => {
                            let header = header.unwrap_or_else(|| ClusterHeader {
                                name: String::new(),
                                key: None,
                                provider: String::new(),
                            });
                            e.insert(header.into_cluster())
                        }
                    };
                    c.node_groups.insert(address, *ng);
                }
                None => {
                    if let Some(c) = state.clusters.get_mut(&cluster) {
                        c.node_groups.remove(&address);
                    }
                }
            },
            Change::Clusters(headers) => {
                state.clusters.retain(|k, _| headers.contains_key(k));
                for (k, h) in headers {
                    match state.clusters.get_mut(&k) {
                        Some(c) => (c.name, c.key, c.provider) = (h.name, h.key, h.provider),
                        None => {
                            state.clusters.insert(k, h.into_cluster());
                        }
                    }
                }
            }
            Change::Outputs(outputs) => state.outputs = outputs,
            Change::Begin(entry) => {
                state.journal_seq = state.journal_seq.max(entry.id);
                state.journal.retain(|j| j.id != entry.id);
                state.journal.push(entry);
            }
            Change::Settle(id) => state.journal.retain(|j| j.id != id),
        }
    }
}

/// Why a journal could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("record {index} is damaged ({reason}) and records follow it")]
    Damaged { index: usize, reason: String },
    #[error("record {index} has serial {found} where {expected} was next")]
    OutOfOrder { index: usize, found: u64, expected: u64 },
    #[error("record {index} has serial {found}, but the serial before it was the last there is")]
    AfterLast { index: usize, found: u64 },
}

/// Applies `record` to `state`, which must be at the serial just before it.
pub fn replay(state: &mut State, record: Record, index: usize) -> Result<(), JournalError> {
    let Some(expected) = state.serial.checked_add(1) else {
        return Err(JournalError::AfterLast { index, found: record.serial });
    };
    if record.serial != expected {
        return Err(JournalError::OutOfOrder { index, found: record.serial, expected });
    }
    for change in record.changes {
        change.apply(state);
    }
    state.serial = record.serial;
    state.format_version = crate::FORMAT_VERSION;
    Ok(())
}

/// The first line of a journal: which state it extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The journal format (1).
    pub journal: u32,
    pub lineage: String,
    pub base_serial: u64,
    /// SHA-256 of the base state's bytes, in hex.
    pub base_sha256: String,
    /// The drydock that wrote the records.
    pub drydock_version: String,
}

/// The journal format: 2, whose records are bound to their base ([`bind`]; 1 had plain
/// checksums, and a journal of 1 reads as one of another state: ignored).
pub const JOURNAL_FORMAT: u32 = 2;

impl Header {
    pub fn new(lineage: &str, base_serial: u64, base: &[u8]) -> Header {
        Header::of_hash(lineage, base_serial, sha256_hex(base))
    }

    /// [`Header::new`] of a base whose SHA-256 (hex) is known: a store keeps it, rather than
    /// hash the whole state again for every journal it starts.
    pub fn of_hash(lineage: &str, base_serial: u64, base_sha256: String) -> Header {
        Header {
            journal: JOURNAL_FORMAT,
            lineage: lineage.to_string(),
            base_serial,
            base_sha256,
            drydock_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Whether this journal extends `state`, read from `bytes`.
    pub fn extends(&self, state: &State, bytes_sha256: &str) -> bool {
        self.journal == JOURNAL_FORMAT
            && self.lineage == state.lineage
            && self.base_serial == state.serial
            && self.base_sha256 == bytes_sha256
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `<16 hex digits> <json>\n`: one framed line.
pub fn frame(json: &[u8]) -> Vec<u8> {
    frame_in("", json)
}

/// A line framed for the journal of the base with SHA-256 `base` (hex): its digits are the
/// start of the SHA-256 of `base` followed by the JSON (`base` empty: of the JSON alone).
fn frame_in(base: &str, json: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(json.len() + 18);
    line.extend_from_slice(checksum(base, json).as_bytes());
    line.push(b' ');
    line.extend_from_slice(json);
    line.push(b'\n');
    line
}

fn checksum(base: &str, json: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(base.as_bytes());
    sha.update(json);
    hex::encode(&sha.finalize()[..8])
}

/// The JSON of one framed line (without its newline), or why it is not a whole line.
pub fn unframe(line: &[u8]) -> Result<&[u8], String> {
    unframe_in("", line)
}

/// The JSON of one line framed for the journal of the base with SHA-256 `base` (see
/// [`bind`]), or why it is not a whole line of that journal.
pub fn unframe_in<'a>(base: &str, line: &'a [u8]) -> Result<&'a [u8], String> {
    if line.len() < 17 || line[16] != b' ' {
        return Err("no checksum".to_string());
    }
    let (sum, json) = (&line[..16], &line[17..]);
    if checksum(base, json).as_bytes() != sum {
        return Err("checksum mismatch".to_string());
    }
    Ok(json)
}

/// Records framed as [`encode_record`] frames them, framed again for the journal of the base
/// with SHA-256 `base` (hex), as the stores write them: the same bytes but the checksums.
pub fn bind(base: &str, lines: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let json = line.strip_suffix(b"\n").ok_or("a record without its newline")?;
        out.extend(frame_in(base, unframe(json)?));
    }
    Ok(out)
}

pub fn encode_header(header: &Header) -> Vec<u8> {
    frame(&serde_json::to_vec(header).unwrap_or_default())
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    frame(&crate::format::encode_record(record))
}

/// What reading a local journal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The journal extends the state it was read with: its records were replayed.
    pub extends: bool,
    /// Records replayed.
    pub records: usize,
    /// Bytes of whole lines (a torn tail after them is cut off by the next append).
    pub valid_len: u64,
    /// A torn last line was found and ignored.
    pub torn: bool,
}

/// Replays onto `state` (read from bytes with SHA-256 `state_sha256`) the records of the
/// journal `bytes`, if the journal extends that state.
pub fn replay_journal(state: &mut State, state_sha256: &str, bytes: &[u8]) -> Result<Scan, JournalError> {
    let mut scan = Scan { extends: false, records: 0, valid_len: 0, torn: false };
    // Lines with their end offsets; a last piece without a newline is torn.
    let mut lines = vec![];
    let mut start = 0;
    while start < bytes.len() {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                lines.push((&bytes[start..start + n], start + n + 1));
                start += n + 1;
            }
            None => {
                scan.torn = true;
                break;
            }
        }
    }
    let Some(((first, header_end), records)) = lines.split_first() else {
        return Ok(scan);
    };
    let header: Option<Header> = unframe(first).ok().and_then(|json| serde_json::from_slice(json).ok());
    let Some(header) = header else {
        // A header torn by a crash while the journal was created: no record can follow it.
        if records.is_empty() {
            scan.torn = true;
            return Ok(scan);
        }
        return Err(JournalError::Damaged { index: 0, reason: "unreadable header".to_string() });
    };
    if !header.extends(state, state_sha256) {
        return Ok(scan);
    }
    scan.extends = true;
    scan.valid_len = *header_end as u64;
    for (i, (line, end)) in records.iter().enumerate() {
        let decoded = unframe_in(state_sha256, line)
            .and_then(|json| crate::format::decode_record(json).map_err(|e| format!("unreadable record: {e}")));
        match decoded {
            Ok(record) => replay(state, record, i + 1)?,
            // A bad last line is a record torn by a crash: its step was never reported done.
            Err(_) if i + 1 == records.len() => {
                scan.torn = true;
                break;
            }
            Err(reason) => return Err(JournalError::Damaged { index: i + 1, reason }),
        }
        state.drydock_version = header.drydock_version.clone();
        scan.records += 1;
        scan.valid_len = *end as u64;
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> JournalEntry {
        JournalEntry {
            id,
            op: "create_group".into(),
            address: "cluster.a.node_group.w".into(),
            group: "g".into(),
            detail: serde_json::json!({"n": id}),
            started_at_ms: 5,
        }
    }

    fn journal(state: &State, base: &[u8], records: &[Record]) -> Vec<u8> {
        let mut bytes = encode_header(&Header::new(&state.lineage, state.serial, base));
        for r in records {
            bytes.extend(bind(&sha256_hex(base), &encode_record(r)).unwrap());
        }
        bytes
    }

    fn records() -> Vec<Record> {
        vec![
            Record { serial: 4, changes: vec![Change::Begin(entry(7))] },
            Record { serial: 5, changes: vec![Change::Settle(7), Change::Begin(entry(8))] },
        ]
    }

    fn base() -> State {
        let mut s = State::new("L".into());
        s.serial = 3;
        s
    }

    #[test]
    fn replays_records_in_order() {
        let (state, bytes) = (base(), b"base".to_vec());
        let j = journal(&state, &bytes, &records());
        let mut replayed = state.clone();
        let scan = replay_journal(&mut replayed, &sha256_hex(&bytes), &j).unwrap();
        assert_eq!(scan, Scan { extends: true, records: 2, valid_len: j.len() as u64, torn: false });
        assert_eq!(replayed.serial, 5);
        assert_eq!(replayed.journal, vec![entry(8)]);
        assert_eq!(replayed.journal_seq, 8);
    }

    #[test]
    fn a_torn_last_record_is_ignored_at_every_cut() {
        let (state, bytes) = (base(), b"base".to_vec());
        let j = journal(&state, &bytes, &records());
        let header = journal(&state, &bytes, &[]).len();
        let whole_first = journal(&state, &bytes, &records()[..1]).len();
        for cut in 0..j.len() {
            let mut replayed = state.clone();
            let scan = replay_journal(&mut replayed, &sha256_hex(&bytes), &j[..cut]).unwrap();
            let expect = if cut >= whole_first { 4 } else { 3 };
            assert_eq!(replayed.serial, expect, "cut at {cut}");
            let at_line_end = [0, header, whole_first].contains(&cut);
            assert_eq!(scan.torn, !at_line_end, "cut at {cut}: {scan:?}");
            // What the next append keeps: exactly the whole lines.
            let kept = if cut >= whole_first {
                whole_first
            } else if cut >= header {
                header
            } else {
                0
            };
            assert_eq!(scan.valid_len, kept as u64, "cut at {cut}");
        }
    }

    #[test]
    fn a_damaged_record_before_another_is_an_error() {
        let (state, bytes) = (base(), b"base".to_vec());
        let mut j = journal(&state, &bytes, &records());
        let header_len = encode_header(&Header::new("L", 3, &bytes)).len();
        j[header_len + 20] ^= 1;
        let err = replay_journal(&mut state.clone(), &sha256_hex(&bytes), &j).unwrap_err();
        assert!(matches!(err, JournalError::Damaged { index: 1, .. }), "{err:?}");
    }

    #[test]
    fn a_journal_of_another_base_is_stale() {
        let (state, bytes) = (base(), b"base".to_vec());
        let j = journal(&state, &bytes, &records());
        let mut replayed = state.clone();
        let scan = replay_journal(&mut replayed, &sha256_hex(b"other"), &j).unwrap();
        assert!(!scan.extends);
        assert_eq!(replayed, state);
    }

    #[test]
    fn a_record_of_another_journal_is_not_replayed_even_with_the_next_serial() {
        let (state, bytes) = (base(), b"base".to_vec());
        let mut j = journal(&state, &bytes, &records()[..1]);
        // The next record, as the journal of another base (with the same serials) has it.
        j.extend(journal(&state, b"other", &records()[1..]).split_inclusive(|&b| b == b'\n').nth(1).unwrap());
        let mut replayed = state.clone();
        let scan = replay_journal(&mut replayed, &sha256_hex(&bytes), &j).unwrap();
        assert_eq!((scan.records, scan.torn, replayed.serial), (1, true, 4));
        j.extend(bind(&sha256_hex(&bytes), &encode_record(&records()[1])).unwrap());
        let err = replay_journal(&mut state.clone(), &sha256_hex(&bytes), &j).unwrap_err();
        assert!(matches!(err, JournalError::Damaged { index: 2, .. }), "{err:?}");
    }

    #[test]
    fn no_record_follows_the_last_serial() {
        let mut state = base();
        state.serial = u64::MAX - 1;
        let record = |serial| Record { serial, changes: vec![Change::Settle(1)] };
        replay(&mut state, record(u64::MAX), 1).unwrap();
        assert_eq!(replay(&mut state, record(u64::MAX), 2), Err(JournalError::AfterLast { index: 2, found: u64::MAX }));
        assert_eq!(state.serial, u64::MAX);
    }

    #[test]
    fn a_record_out_of_order_is_an_error() {
        let (state, bytes) = (base(), b"base".to_vec());
        let j = journal(&state, &bytes, &records()[1..]);
        let err = replay_journal(&mut state.clone(), &sha256_hex(&bytes), &j).unwrap_err();
        assert_eq!(err, JournalError::OutOfOrder { index: 1, found: 5, expected: 4 });
    }
}
