//! etcd's v3 messages as its gRPC JSON gateway writes them: field names as in the `.proto`
//! files (`ID`, `peerURLs`, `isLearner`, `member_id`), 64-bit integers as JSON strings, and
//! zero values (0, false, empty lists, the first enum value) left out, so every field defaults.

use drydock_provider::etcd::EtcdMember;
use serde::{Deserialize, Deserializer};

/// `etcdserverpb.ResponseHeader`.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct Header {
    #[serde(deserialize_with = "uint64")]
    pub member_id: u64,
}

/// `etcdserverpb.Member`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
pub(crate) struct Member {
    #[serde(rename = "ID", deserialize_with = "uint64")]
    pub id: u64,
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

impl From<Member> for EtcdMember {
    fn from(m: Member) -> EtcdMember {
        EtcdMember { id: m.id, name: m.name, peer_urls: m.peer_urls, client_urls: m.client_urls, learner: m.is_learner }
    }
}

/// `MemberListResponse`.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct MemberList {
    pub members: Vec<Member>,
}

/// `MemberAddResponse`: the new member and the members after the change.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct MemberAdd {
    pub member: Option<Member>,
    pub members: Vec<Member>,
}

/// `StatusResponse`: who answered, whom it follows, and what is wrong with it.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct Status {
    pub header: Header,
    #[serde(deserialize_with = "uint64")]
    pub leader: u64,
    pub errors: Vec<String>,
}

/// `AlarmResponse`.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct Alarms {
    pub alarms: Vec<Alarm>,
}

/// `AlarmMember`: the alarm is an enum, written by name (`NOSPACE`), or by number by gateways
/// that write enums as integers.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct Alarm {
    #[serde(rename = "memberID", deserialize_with = "uint64")]
    pub member_id: u64,
    #[serde(deserialize_with = "alarm_type")]
    pub alarm: String,
}

/// The gateway's error body: `{"error": "...", "code": N, "message": "..."}` (gRPC status code).
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub error: String,
    pub message: String,
    pub code: Option<i64>,
}

/// A uint64 written as a JSON string (the gateway's way), or as a number, or absent (0).
fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
        Null(()),
    }
    match Either::deserialize(d)? {
        Either::Text(s) if s.is_empty() => Ok(0),
        Either::Text(s) => s.parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not a uint64"))),
        Either::Number(n) => Ok(n),
        Either::Null(()) => Ok(0),
    }
}

/// `AlarmType`: `NONE` (0), `NOSPACE` (1), `CORRUPT` (2), by name or number.
fn alarm_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(i64),
        Null(()),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(s) => s,
        Either::Number(0) | Either::Null(()) => "NONE".to_string(),
        Either::Number(1) => "NOSPACE".to_string(),
        Either::Number(2) => "CORRUPT".to_string(),
        Either::Number(n) => format!("ALARM_{n}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_json_reads_with_strings_for_integers_and_omitted_zeros() {
        let list: MemberList = serde_json::from_str(
            r#"{"header":{"cluster_id":"1","member_id":"3319814642761637952","raft_term":"2"},
                "members":[{"ID":"3319814642761637952","name":"a","peerURLs":["http://127.0.0.1:23800"],
                            "clientURLs":["http://127.0.0.1:23790"]},
                           {"ID":"14599033178736656547","peerURLs":["http://127.0.0.1:23801"],"isLearner":true}]}"#,
        )
        .unwrap();
        let members: Vec<EtcdMember> = list.members.into_iter().map(EtcdMember::from).collect();
        assert_eq!(members[0].id, 3319814642761637952);
        assert!(members[0].started() && !members[0].learner);
        assert_eq!(members[1].id, 14599033178736656547);
        assert!(!members[1].started() && members[1].learner && members[1].client_urls.is_empty());

        let status: Status =
            serde_json::from_str(r#"{"header":{"member_id":"7"},"leader":"9","version":"3.4.23"}"#).unwrap();
        assert_eq!((status.header.member_id, status.leader, status.errors.len()), (7, 9, 0));
        let status: Status = serde_json::from_str("{}").unwrap();
        assert_eq!((status.header.member_id, status.leader), (0, 0));

        let alarms: Alarms = serde_json::from_str(
            r#"{"alarms":[{"memberID":"5","alarm":"NOSPACE"},{"memberID":6,"alarm":2},{"alarm":0}]}"#,
        )
        .unwrap();
        let got: Vec<(u64, &str)> = alarms.alarms.iter().map(|a| (a.member_id, a.alarm.as_str())).collect();
        assert_eq!(got, [(5, "NOSPACE"), (6, "CORRUPT"), (0, "NONE")]);
        assert!(serde_json::from_str::<Alarms>("{}").unwrap().alarms.is_empty());

        let e: ErrorBody = serde_json::from_str(
            r#"{"error":"etcdserver: member not found","message":"etcdserver: member not found","code":5}"#,
        )
        .unwrap();
        assert_eq!((e.code, e.message.as_str()), (Some(5), "etcdserver: member not found"));
        assert!(serde_json::from_str::<Member>(r#"{"ID":"x"}"#).is_err());
    }
}
