//! Generated configurations for tests and benchmarks: large realistic fleets, random
//! files that use every part of the grammar, and mutations of valid input. Seeded and
//! deterministic ([`Rng`]).

#[cfg(feature = "world")]
use std::collections::BTreeMap;

#[cfg(feature = "world")]
use drydock_provider::{Instance, InstanceState, Observed, ObservedGroup, Ownership};

#[cfg(feature = "world")]
use drydock_plan::Plan;
#[cfg(feature = "world")]
use drydock_state::{ClusterState, GenerationState, NodeGroupState, State};

/// The seeded random numbers every generator and randomised test uses: `fastrand`'s
/// (wyrand), deterministic for a seed on every platform, behind the few calls tests need.
#[derive(Debug, Clone)]
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }
    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n.max(1))
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A valid configuration with `node_groups` node groups spread over clusters of 10,
/// the shape of a large fleet: variables, locals, defaults, comments, `for_each`.
pub fn fleet(node_groups: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(node_groups * 110);
    out.push_str("# A generated fleet.\nprovider \"sim\" {\n  boot_time = 1s\n}\n\n");
    out.push_str("variable \"image\" {\n  type    = string\n  default = \"img-2026-11\"\n}\n\n");
    out.push_str(
        "locals {\n  tags  = { team = \"platform\", generated = \"true\" }\n  zones = [\"a\", \"b\", \"c\"]\n}\n",
    );
    let clusters = node_groups.div_ceil(10);
    let mut left = node_groups;
    for c in 0..clusters {
        out.push_str(&format!(
            "\ncluster \"c{c:05}\" {{\n  kubernetes_version = \"1.31\"\n  tags               = local.tags\n\n  network {{\n    subnets = [for z in local.zones : \"subnet-${{z}}\"]\n  }}\n\n  defaults {{\n    image         = var.image\n    instance_type = \"m6i.large\"\n  }}\n"
        ));
        for g in 0..left.min(10) {
            let name = format!("g{g}");
            match rng.below(10) {
                // At most one control plane per cluster, as the schema requires.
                0 if g == 0 => out.push_str(&format!(
                    "\n  node_group \"{name}\" {{\n    role = \"control-plane\"\n    size = 3\n  }}\n"
                )),
                1 | 2 => out.push_str(&format!(
                    "\n  node_group \"{name}\" {{ # pool {g}\n    size   = {}..{}\n    labels = {{ pool = \"{name}\" }}\n    rollout {{\n      max_surge = 25%\n    }}\n  }}\n",
                    rng.below(3),
                    3 + rng.below(20)
                )),
                _ => out.push_str(&format!("\n  node_group \"{name}\" {{\n    size = {}\n  }}\n", 1 + rng.below(9))),
            }
        }
        left = left.saturating_sub(10);
        out.push_str("}\n");
    }
    out
}

/// A valid configuration with `node_groups` node groups spread over clusters of 50, every
/// node group with labels, a `rollout` and a `health` block (about 360 bytes a node group,
/// so 10,000 node groups are about 3.6 MB): the fleet of the validate benchmark
/// (`crates/config/benches/validate.rs`). Like [`fleet`] it has a variable, locals, cluster
/// defaults and a `for` expression; unlike it, most of its bytes are node group settings.
pub fn fleet_detailed(node_groups: usize, seed: u64) -> String {
    const TIERS: &[&str] = &["web", "batch", "system", "data"];
    const TYPES: &[&str] = &["m6i.xlarge", "c6i.2xlarge", "r6i.large"];
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(node_groups * 330);
    out.push_str("# A generated fleet: every node group with labels, a rollout and a health block.\n");
    out.push_str("provider \"sim\" {\n  boot_time = 1s\n}\n\n");
    out.push_str("variable \"image\" {\n  type    = string\n  default = \"img-2026-11\"\n}\n\n");
    out.push_str(
        "locals {\n  tags  = { team = \"platform\", generated = \"true\" }\n  zones = [\"a\", \"b\", \"c\"]\n}\n",
    );
    let clusters = node_groups.div_ceil(50);
    let mut left = node_groups;
    for c in 0..clusters {
        out.push_str(&format!(
            "\ncluster \"c{c:05}\" {{\n  kubernetes_version = \"1.31\"\n  tags               = local.tags\n\n  network {{\n    subnets = [for z in local.zones : \"subnet-${{z}}\"]\n  }}\n\n  defaults {{\n    image         = var.image\n    instance_type = \"m6i.large\"\n  }}\n"
        ));
        for g in 0..left.min(50) {
            let name = format!("g{g}");
            out.push_str(&format!("\n  node_group \"{name}\" {{\n"));
            // One control plane per cluster (its size odd and fixed, as the schema requires).
            if g == 0 {
                out.push_str("    role = \"control-plane\"\n    size = 3\n");
            } else if rng.chance(50) {
                out.push_str(&format!("    size          = {}..{}\n", rng.below(3), 3 + rng.below(20)));
            } else {
                out.push_str(&format!("    size          = {}\n", 1 + rng.below(9)));
            }
            if g != 0 && rng.chance(30) {
                out.push_str(&format!("    instance_type = {:?}\n", rng.pick(TYPES)));
            }
            out.push_str(&format!(
                "    labels = {{\n      pool = \"{name}\"\n      tier = \"{}\"\n      team = local.tags.team\n    }}\n",
                rng.pick(TIERS)
            ));
            // max_surge is never 0, so a rollout can always make progress.
            let surge =
                if rng.chance(50) { format!("{}%", 10 + 5 * rng.below(7)) } else { format!("{}", 1 + rng.below(3)) };
            out.push_str(&format!(
                "\n    rollout {{\n      max_surge       = {surge}\n      max_unavailable = {}\n      health_timeout  = {}m\n    }}\n",
                rng.below(2),
                5 + 5 * rng.below(4)
            ));
            out.push_str(&format!(
                "\n    health {{\n      grace_period      = {}s\n      max_unhealthy     = {}%\n      unhealthy_timeout = {}m\n    }}\n  }}\n",
                30 + 30 * rng.below(4),
                20 + 10 * rng.below(5),
                1 + rng.below(10)
            ));
        }
        left = left.saturating_sub(50);
        out.push_str("}\n");
    }
    out
}

const NAMES: &[&str] = &["a", "b", "image", "size", "tags", "x-y", "_z", "zones", "workers"];
const FUNCS: &[&str] = &["upper", "join", "length", "merge", "format", "min", "concat", "lookup", "nosuch"];

/// A random expression of bounded depth using every construct of the grammar.
pub fn expr(rng: &mut Rng, depth: usize) -> String {
    let leaf = depth == 0 || rng.chance(30);
    if leaf {
        return match rng.below(12) {
            0 => format!("{}", rng.below(1000)),
            1 => format!("{}.{}", rng.below(100), rng.below(100)),
            2 => rng.pick(&["true", "false", "null"]).to_string(),
            3 => rng.pick(&["90s", "10m", "1h30m", "250ms", "2d"]).to_string(),
            4 => format!("{}%", rng.below(101)),
            5 => format!("\"{}\"", rng.pick(&["plain", "with \\\"escape\\\"", "tab\\tnew\\n", "u\\u{e9}", "$${lit}"])),
            6 => format!("var.{}", rng.pick(NAMES)),
            7 => format!("local.{}", rng.pick(NAMES)),
            8 => "each.key".to_string(),
            9 => format!("cluster.demo.node_group.{}.image", rng.pick(NAMES)),
            10 => rng.pick(NAMES).to_string(),
            _ => format!("\"pre-${{{}}}-post\"", expr(rng, 0)),
        };
    }
    let d = depth - 1;
    match rng.below(13) {
        0 => format!(
            "{} {} {}",
            expr(rng, d),
            rng.pick(&["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||"]),
            expr(rng, d)
        ),
        1 => format!("{}..{}", rng.below(5), 5 + rng.below(5)),
        2 => format!("{}{}", rng.pick(&["-", "!"]), expr(rng, d)),
        3 => format!("({})", expr(rng, d)),
        4 => format!("{} ? {} : {}", expr(rng, d), expr(rng, d), expr(rng, d)),
        5 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| expr(rng, d)).collect();
            if rng.chance(50) {
                format!("[{}]", items.join(", "))
            } else {
                format!("[\n{}\n]", items.iter().map(|i| format!("  {i}, # item")).collect::<Vec<_>>().join("\n"))
            }
        }
        6 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n)
                .map(|i| {
                    let key = if rng.chance(70) { format!("k{i}") } else { format!("\"k.{i}\"") };
                    format!("{key} = {}", expr(rng, d))
                })
                .collect();
            if rng.chance(50) {
                format!("{{ {} }}", items.join(", "))
            } else {
                format!("{{\n{}\n}}", items.iter().map(|i| format!("  {i} // note")).collect::<Vec<_>>().join("\n"))
            }
        }
        7 => format!("[for v in {} : {}{}]", expr(rng, d), expr(rng, d), if rng.chance(50) { " if v" } else { "" }),
        8 => format!(
            "{{ for k, v in {} : k => {}{} }}",
            expr(rng, d),
            expr(rng, d),
            if rng.chance(30) { "..." } else { "" }
        ),
        9 => {
            let n = rng.below(3);
            let args: Vec<String> = (0..n).map(|_| expr(rng, d)).collect();
            format!("{}({})", rng.pick(FUNCS), args.join(", "))
        }
        10 => format!("{}[{}]", expr(rng, d), expr(rng, d)),
        11 => format!("{}.{}", expr(rng, d), rng.pick(NAMES)),
        _ => format!(
            "<<{}EOT\n{}line ${{{}}}\n  indented\nEOT",
            if rng.chance(50) { "-" } else { "" },
            if rng.chance(50) { "    " } else { "" },
            expr(rng, 0)
        ),
    }
}

/// A random file: blocks, attributes and comments of every kind, valid syntax but
/// usually not a valid configuration.
pub fn file(rng: &mut Rng) -> String {
    let mut out = String::new();
    body(rng, &mut out, 0, 2);
    out
}

fn body(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    let pad = "  ".repeat(indent);
    for _ in 0..1 + rng.below(5) {
        match rng.below(10) {
            0 => out.push_str(&format!("{pad}# a comment\n")),
            1 => out.push_str(&format!("{pad}/* block\n   comment */\n")),
            2 if rng.chance(50) => out.push('\n'),
            3..=5 if depth > 0 => {
                let kind = rng.pick(&["cluster", "node_group", "variable", "locals", "rollout", "health", "provider"]);
                let labels = if rng.chance(60) { format!(" \"{}\"", rng.pick(NAMES)) } else { String::new() };
                out.push_str(&format!("{pad}{kind}{labels} {{"));
                if rng.chance(30) {
                    out.push_str(" // header");
                }
                out.push('\n');
                body(rng, out, indent + 1, depth - 1);
                out.push_str(&format!("{pad}}}\n"));
            }
            _ => {
                let e = expr(rng, 3);
                out.push_str(&format!("{pad}{} = {e}", rng.pick(NAMES)));
                if rng.chance(20) {
                    out.push_str(" # trailing");
                }
                out.push('\n');
            }
        }
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "${",
    "<<EOT\n",
    "<<-EOT\n",
    "\nEOT",
    "=",
    "==",
    ",",
    ".",
    "..",
    "...",
    "?",
    ":",
    "=>",
    "#",
    "//",
    "/*",
    "*/",
    "\\",
    "\\u{",
    "for",
    "in",
    "if",
    "var.",
    "each.",
    "cluster",
    "node_group",
    "-",
    "%",
    "\n",
    " ",
    "1",
    "1e999",
    "99999999999999999999",
    "9999999999999999999999d",
    "é",
    "\u{0}",
    "\t",
    "true",
    "null",
];

/// A random change to `input`: deletions, insertions of grammar tokens, duplications, swaps.
pub fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut chars: Vec<char> = input.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let len = chars.len();
        let at = rng.below(len + 1);
        match rng.below(5) {
            0 if len > 0 => {
                let end = (at + 1 + rng.below(8)).min(len);
                chars.drain(at.min(len)..end);
            }
            1 | 2 => {
                let t: Vec<char> = rng.pick(TOKENS).chars().collect();
                chars.splice(at..at, t);
            }
            3 if len > 0 => {
                let start = at.min(len - 1);
                let end = (start + 1 + rng.below(30)).min(len);
                let piece: Vec<char> = chars[start..end].to_vec();
                let to = rng.below(chars.len() + 1);
                chars.splice(to..to, piece);
            }
            _ if len > 1 => {
                let a = rng.below(len);
                let b = rng.below(len);
                chars.swap(a, b);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Some node of the JSON tree `v`, down a random path (the root included).
pub fn pick_json_mut<'a>(rng: &mut Rng, v: &'a mut serde_json::Value) -> &'a mut serde_json::Value {
    let n = match v {
        serde_json::Value::Object(m) => m.len(),
        serde_json::Value::Array(a) => a.len(),
        _ => 0,
    };
    if n == 0 || rng.chance(12) {
        return v;
    }
    let i = rng.below(n);
    match v {
        serde_json::Value::Object(m) => {
            pick_json_mut(rng, m.values_mut().nth(i).expect("i is below the object's length"))
        }
        serde_json::Value::Array(a) => pick_json_mut(rng, &mut a[i]),
        _ => v,
    }
}

/// One edit of the JSON tree `v` at a random node, as a reader of hand-edited files must
/// survive: a key removed, renamed or added, an array item removed or duplicated, a string
/// mutated ([`mutate`]), a number pushed to an edge, or the node replaced by `edge(rng)` (the
/// caller's edge values: what its format holds).
pub fn edit_json(rng: &mut Rng, v: &mut serde_json::Value, edge: impl Fn(&mut Rng) -> serde_json::Value) {
    use serde_json::Value;
    let node = pick_json_mut(rng, v);
    match node {
        Value::Object(m) if !m.is_empty() && rng.chance(60) => {
            let Some(key) = m.keys().nth(rng.below(m.len())).cloned() else { return };
            match rng.below(3) {
                0 => {
                    m.remove(&key);
                }
                1 => {
                    if let Some(moved) = m.remove(&key) {
                        m.insert(mutate(rng, &key), moved);
                    }
                }
                _ => {
                    m.insert(format!("{key}_extra"), edge(rng));
                }
            }
        }
        Value::Array(a) if !a.is_empty() && rng.chance(60) => {
            let i = rng.below(a.len());
            if rng.chance(50) {
                a.remove(i);
            } else {
                let item = a[i].clone();
                a.insert(rng.below(a.len() + 1), item);
            }
        }
        Value::String(s) if rng.chance(70) => *s = mutate(rng, s),
        Value::Number(_) if rng.chance(50) => {
            *node = serde_json::json!([0u64, 1, 2, 41, 42, 43, u64::MAX - 1, u64::MAX][rng.below(8)]);
        }
        other => *other = edge(rng),
    }
}

/// Puts `bytes` in the file at `path`, in place, for fuzzing through files: a write that
/// truncates to zero first makes ext4 flush the file on close (`auto_da_alloc`), a few
/// milliseconds a case.
pub fn overwrite(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)
}

/// The state and the cloud after `first` (a plan of creates) was applied in full: every
/// group exists with its desired capacity, every instance healthy, spread over three zones.
/// (Feature `world`, on by default.)
#[cfg(feature = "world")]
pub fn applied_world(first: &Plan) -> (State, BTreeMap<String, Observed>) {
    let mut state = State::new(first.lineage.clone());
    let mut groups = vec![];
    for c in &first.changes {
        let t = c.target().expect("a plan of creates: every change has a target");
        let cs = state.clusters.entry(c.cluster.clone()).or_insert_with(|| ClusterState {
            name: c.owner_cluster.clone(),
            key: None,
            provider: c.provider.clone(),
            node_groups: BTreeMap::new(),
        });
        cs.node_groups.insert(
            c.address.clone(),
            NodeGroupState {
                name: c.name.clone(),
                key: c.key.clone(),
                role: c.role,
                generations: vec![GenerationState {
                    id: t.generation.clone(),
                    spec: t.display_spec.clone(),
                    groups: t.groups.iter().map(|g| g.name.clone()).collect(),
                }],
                settings: t.settings.clone(),
                boot_times_ms: vec![],
                drain_times_ms: vec![],
                unfinished: false,
                history: vec![],
                cloud_owner: None,
            },
        );
        for g in &t.groups {
            groups.push(ObservedGroup {
                name: g.name.clone(),
                ownership: Ownership {
                    lineage: first.lineage.clone(),
                    cluster: c.owner_cluster.clone(),
                    node_group: c.owner_node_group.clone(),
                    generation: t.generation.clone(),
                },
                spec: t.spec.clone(),
                spec_partial: false,
                settings: g.settings.clone(),
                instances: (0..g.settings.desired)
                    .map(|i| Instance {
                        id: format!("i-{}-{i}", g.name),
                        zone: ["zone-a", "zone-b", "zone-c"][i as usize % 3].into(),
                        subnet: "subnet-a".into(),
                        image: t.spec.image.clone(),
                        instance_type: t.spec.instance_types[0].clone(),
                        state: InstanceState::Running,
                        healthy: true,
                        launched_at_ms: u64::from(i),
                        healthy_at_ms: Some(2_000),
                    })
                    .collect(),
                created_at_ms: 0,
                join_digest: None,
            });
        }
    }
    (state, BTreeMap::from([("sim".to_string(), Observed { groups })]))
}
