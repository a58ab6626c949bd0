//! Names the cloud and Kubernetes see, as pure functions: how a node group's cloud group name
//! is made (the planner names groups with [`cloud_group_name`], and `config` refuses, with
//! [`cloud_name_part`], two node groups whose names would coincide), and which label keys and
//! values Kubernetes accepts.

/// The characters cloud group names keep as they are; every other becomes `-`.
fn kept(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `raw` with every character but ASCII letters, digits, `-` and `_` turned into `-` and runs
/// of `-` made one.
fn squash(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if kept(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// What a node group contributes to its cloud group names: the part between the lineage
/// prefix and the generation, made from the ownership names of its cluster and node group
/// (`demo`, `fleet["eu"]`; `workers`, `workers["us-east-1a"]`): joined with `-`, every
/// character but ASCII letters, digits, `-` and `_` turned into `-`, runs of `-` made one,
/// and no `-` at either end. `fleet["eu"]` and `workers` give `fleet-eu-workers`.
///
/// Two node groups with the same part get the same group names for the same generation, so
/// the configuration refuses them; an empty part would leave only the lineage and generation.
pub fn cloud_name_part(cluster_owner: &str, node_group_owner: &str) -> String {
    squash(&format!("{cluster_owner}-{node_group_owner}")).trim_matches('-').to_string()
}

/// Whether `text` (a cluster or node group name, a `for_each` key) leaves anything of itself
/// in cloud group names: an ASCII letter, digit or `_`.
pub fn shows_in_cloud_names(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A cloud group name: `LINEAGE6-PART-GENERATION[-mN]`, where `LINEAGE6` is the lineage's first
/// six characters (names are global in a cloud account), `PART` a [`cloud_name_part`], and
/// `-mN` a control-plane member's index. Only ASCII letters, digits, `-` and `_`, with no run
/// of `-` and no `-` at the end.
pub fn cloud_group_name(lineage: &str, part: &str, generation: &str, member: Option<usize>) -> String {
    let prefix: String = lineage.chars().take(6).collect();
    let mut raw = format!("{prefix}-{part}-{generation}");
    if let Some(m) = member {
        raw.push_str(&format!("-m{m}"));
    }
    squash(&raw).trim_end_matches('-').to_string()
}

/// The longest label value, and the longest name in a label key (after the prefix).
pub const LABEL_NAME_MAX: usize = 63;
/// The longest prefix (a DNS subdomain) of a label key.
pub const LABEL_PREFIX_MAX: usize = 253;

/// Why Kubernetes would refuse `key` as a label key, or `None` if it takes it: an optional DNS
/// subdomain prefix (lowercase, at most 253 characters) and `/`, then a name (see
/// [`label_value_problem`], but not empty). The reason never repeats the key, which may be a
/// sensitive value.
pub fn label_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("the key is empty");
    }
    let name = match key.split_once('/') {
        None => key,
        Some((prefix, name)) => {
            if name.contains('/') {
                return Some("a key has at most one `/`");
            }
            if prefix.is_empty() {
                return Some("the prefix before `/` is empty");
            }
            if !is_dns_subdomain(prefix) {
                return Some(
                    "the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, \
                     each part starting and ending with a letter or digit",
                );
            }
            if prefix.len() > LABEL_PREFIX_MAX {
                return Some("the prefix before `/` is longer than 253 characters");
            }
            name
        }
    };
    if name.is_empty() {
        return Some("the name after `/` is empty");
    }
    name_problem(name)
}

/// Why Kubernetes would refuse `value` as a label value, or `None` if it takes it: empty, or at
/// most 63 ASCII letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
/// The reason never repeats the value, which may be a sensitive value.
pub fn label_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    name_problem(value)
}

/// A non-empty label name or value.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.contains('\n') || name.contains('\r') {
        return Some("it holds a line break");
    }
    if name.chars().any(char::is_whitespace) {
        return Some("it holds white space");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Some("only ASCII letters, digits, `-`, `_` and `.` are allowed");
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Some("it must start and end with a letter or digit");
    }
    if name.len() > LABEL_NAME_MAX {
        return Some("it is longer than 63 characters");
    }
    None
}

/// A lowercase RFC 1123 subdomain: dot-separated parts of `a-z`, `0-9` and `-`, each starting
/// and ending with a letter or digit (the length is checked apart).
fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|part| {
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !part.is_empty()
            && part.chars().all(|c| ok(c) || c == '-')
            && part.chars().next().is_some_and(ok)
            && part.chars().last().is_some_and(ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_join_cluster_and_node_group() {
        assert_eq!(cloud_name_part("demo", "workers"), "demo-workers");
        assert_eq!(cloud_name_part("fleet[\"eu\"]", "workers"), "fleet-eu-workers");
        assert_eq!(cloud_name_part("fleet[\"eu-1\"]", "w"), cloud_name_part("fleet[\"eu.1\"]", "w"));
        assert_eq!(cloud_name_part("a-b", "c"), cloud_name_part("a", "b-c"));
        assert_eq!(cloud_name_part("demo", "w[\"us-east-1a\"]"), "demo-w-us-east-1a");
        assert_eq!(cloud_name_part(".", "…"), "");
        assert_eq!(cloud_name_part("-a-", "-b-"), "a-b");
        assert_eq!(cloud_name_part("a__b", "c"), "a__b-c");
    }

    #[test]
    fn group_names_keep_only_safe_characters() {
        let g = "0123456789";
        assert_eq!(cloud_group_name("abcdef-1234", "demo-workers", g, None), "abcdef-demo-workers-0123456789");
        assert_eq!(cloud_group_name("abcdef", "demo-cp", g, Some(2)), "abcdef-demo-cp-0123456789-m2");
        assert_eq!(cloud_group_name("ab", "", g, None), "ab-0123456789");
        // A lineage from a state file may hold anything: its first characters, not bytes.
        assert_eq!(cloud_group_name("ééééééé", "x", g, None), "-x-0123456789");
        assert_eq!(cloud_group_name("", "x", "", None), "-x");
    }

    #[test]
    fn names_show_in_cloud_names_when_they_keep_a_character() {
        for s in ["a", "_", "9", "é1", "x.y"] {
            assert!(shows_in_cloud_names(s), "{s}");
        }
        for s in ["", ".", "-", "--", "é", "東京", " ", "\n"] {
            assert!(!shows_in_cloud_names(s), "{s:?}");
        }
    }

    #[test]
    fn label_keys_follow_kubernetes() {
        for k in [
            "pool",
            "node.kubernetes.io/pool",
            "topology.kubernetes.io/zone",
            "a",
            "A_b.c-D",
            "example.com/Team",
            &"x".repeat(63),
            &format!("{}/x", "a".repeat(253)),
        ] {
            assert_eq!(label_key_problem(k), None, "{k}");
        }
        for (k, why) in [
            ("", "the key is empty"),
            ("a b", "it holds white space"),
            ("a\nb", "it holds a line break"),
            ("-a", "it must start and end with a letter or digit"),
            ("a.", "it must start and end with a letter or digit"),
            ("a/b/c", "a key has at most one `/`"),
            ("/b", "the prefix before `/` is empty"),
            ("a/", "the name after `/` is empty"),
            ("Example.com/x", "the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit"),
            ("a..b/x", "the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit"),
            ("a_b/x", "the prefix before `/` must be a DNS subdomain: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit"),
            ("é", "only ASCII letters, digits, `-`, `_` and `.` are allowed"),
            ("a=b", "only ASCII letters, digits, `-`, `_` and `.` are allowed"),
        ] {
            assert_eq!(label_key_problem(k), Some(why), "{k:?}");
        }
        assert_eq!(label_key_problem(&"x".repeat(64)), Some("it is longer than 63 characters"));
        assert_eq!(
            label_key_problem(&format!("{}/x", "a".repeat(254))),
            Some("the prefix before `/` is longer than 253 characters")
        );
    }

    #[test]
    fn label_values_follow_kubernetes() {
        for v in ["", "a", "general", "us-east-1a", "1.31", "A_b", &"v".repeat(63)] {
            assert_eq!(label_value_problem(v), None, "{v}");
        }
        for v in ["a\n", "a b", "-a", "a/b", "a,b", "\t", &"v".repeat(64), "é"] {
            assert!(label_value_problem(v).is_some(), "{v:?}");
        }
    }
}
