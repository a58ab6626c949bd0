//! The architecture, enforced: each crate's dependencies are its invariant
//! (`docs/ARCHITECTURE.md`). This test reads the resolved crate graph (`cargo metadata`) and
//! fails when a crate gains a workspace dependency outside its layer, or when anything it
//! pulls in (transitively, as a normal or build dependency) is a crate its layer must not know:
//! an SDK, a provider implementation, a state backend, or the terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The terminal: flags, progress bars, styled output and miette's graphical reports.
const TERMINAL: &[&str] = &["clap", "indicatif", "console", "owo-colors", "supports-color", "terminal_size"];
/// Every AWS SDK crate and the clients built on them.
const SDK: &[&str] = &["aws-config", "aws-sdk-", "aws-smithy-", "hyper", "reqwest"];
/// The AWS SDK alone (the simulated cloud serves HTTP with hyper, but knows no SDK).
const AWS_SDK: &[&str] = &["aws-config", "aws-sdk-", "aws-smithy-"];
/// The Kubernetes client: only `drydock-kube` (and the session that builds it) may know it.
const KUBE: &[&str] = &["kube", "kube-client", "kube-core"];
const IMPLEMENTATIONS: &[&str] = &["drydock-sim", "drydock-aws", "drydock-s3"];

struct Rule {
    krate: &'static str,
    /// Exactly the workspace crates it may depend on directly (normal dependencies).
    may_use: &'static [&'static str],
    /// Crates (by exact name, or by prefix when the entry ends in `-`) that must not be in
    /// its transitive normal dependencies.
    never: &'static [&'static [&'static str]],
}

const RULES: &[Rule] = &[
    Rule { krate: "drydock-model", may_use: &[], never: &[TERMINAL, SDK, IMPLEMENTATIONS, &["tokio", "miette"]] },
    Rule { krate: "drydock-syntax", may_use: &[], never: &[TERMINAL, SDK, IMPLEMENTATIONS, &["tokio", "miette"]] },
    // File-system helpers (atomic replacement) under the state and the simulated cloud: a leaf.
    Rule { krate: "drydock-fsutil", may_use: &[], never: &[TERMINAL, SDK, IMPLEMENTATIONS] },
    Rule {
        krate: "drydock-config",
        may_use: &["drydock-syntax", "drydock-model", "drydock-fsutil"],
        never: &[
            TERMINAL,
            SDK,
            IMPLEMENTATIONS,
            &["tokio", "miette", "drydock-state", "drydock-plan", "drydock-provider"],
        ],
    },
    // The language server (`drydock lsp`): the front half only, synchronous — no state, plan,
    // provider or SDK, no async runtime, no terminal.
    Rule {
        krate: "drydock-lsp",
        may_use: &["drydock-syntax", "drydock-config", "drydock-model"],
        never: &[
            TERMINAL,
            SDK,
            IMPLEMENTATIONS,
            KUBE,
            &["tokio", "miette", "drydock-state", "drydock-plan"],
            &["drydock-apply", "drydock-provider", "drydock-session"],
        ],
    },
    Rule {
        krate: "drydock-state",
        may_use: &["drydock-model", "drydock-backend", "drydock-fsutil"],
        never: &[TERMINAL, SDK, IMPLEMENTATIONS, &["miette", "drydock-syntax", "drydock-config", "drydock-plan"]],
    },
    Rule {
        krate: "drydock-plan",
        may_use: &["drydock-config", "drydock-model", "drydock-state", "drydock-provider"],
        never: &[TERMINAL, SDK, IMPLEMENTATIONS, &["miette", "drydock-apply", "drydock-render"]],
    },
    Rule {
        krate: "drydock-apply",
        may_use: &["drydock-model", "drydock-plan", "drydock-state", "drydock-provider"],
        // Speaks the `Kubernetes` trait only: no Kubernetes client either.
        never: &[TERMINAL, SDK, IMPLEMENTATIONS, KUBE, &["miette", "drydock-render", "drydock-kube"]],
    },
    Rule {
        krate: "drydock-render",
        may_use: &["drydock-syntax", "drydock-model", "drydock-plan"],
        // The presentation layer: miette's graphical reports (and what they draw with) are
        // allowed here and only here, flags and progress bars are not.
        never: &[SDK, IMPLEMENTATIONS, &["clap", "indicatif", "drydock-apply"]],
    },
    Rule {
        krate: "drydock-session",
        may_use: &[
            "drydock-syntax",
            "drydock-config",
            "drydock-model",
            "drydock-state",
            "drydock-plan",
            "drydock-apply",
            "drydock-provider",
            "drydock-sim",
            "drydock-aws",
            "drydock-s3",
            "drydock-kube",
            "drydock-etcd",
        ],
        // Builds providers and backends, but prints nothing: no terminal, no renderer.
        never: &[TERMINAL, &["miette", "drydock-render"]],
    },
    Rule {
        krate: "drydock-provider",
        may_use: &[],
        never: &[TERMINAL, SDK, IMPLEMENTATIONS, &["drydock-model", "miette"]],
    },
    Rule {
        krate: "drydock-sim",
        may_use: &["drydock-provider", "drydock-fsutil", "drydock-etcd"],
        // It serves a simulated Kubernetes API (hyper's server, k8s-openapi's JSON shapes);
        // the only client in it is etcd's, with which its control-plane machines join real
        // etcd members as kubeadm does. No cloud SDK, no Kubernetes client.
        never: &[TERMINAL, AWS_SDK, KUBE, &["drydock-aws", "drydock-s3", "drydock-kube"]],
    },
    // The etcd client (etcd's v3 JSON gateway, on reqwest) behind the `Etcd` trait.
    Rule {
        krate: "drydock-etcd",
        may_use: &["drydock-provider"],
        never: &[
            TERMINAL,
            AWS_SDK,
            KUBE,
            IMPLEMENTATIONS,
            &["miette", "drydock-state", "drydock-plan", "drydock-kube"],
        ],
    },
    // The Kubernetes client: kube-rs behind the `Kubernetes` trait; no cloud, no terminal.
    Rule {
        krate: "drydock-kube",
        may_use: &["drydock-provider"],
        never: &[TERMINAL, AWS_SDK, IMPLEMENTATIONS, &["miette", "drydock-state", "drydock-plan"]],
    },
    Rule { krate: "drydock-aws", may_use: &["drydock-provider"], never: &[TERMINAL, &["drydock-sim", "drydock-s3"]] },
    Rule { krate: "drydock-backend", may_use: &[], never: &[TERMINAL, SDK, IMPLEMENTATIONS] },
    Rule {
        krate: "drydock-s3",
        may_use: &["drydock-backend"],
        never: &[TERMINAL, &["drydock-sim", "drydock-aws", "aws-sdk-ec2"]],
    },
    Rule {
        krate: "drydock-testgen",
        may_use: &["drydock-plan", "drydock-state", "drydock-provider"],
        never: &[TERMINAL, SDK, IMPLEMENTATIONS],
    },
];

/// The resolved graph: per package name, its normal/build dependencies by package name, and
/// which packages are workspace members.
struct Graph {
    deps: BTreeMap<String, BTreeSet<String>>,
    members: BTreeSet<String>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let names: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string()))
        .collect();
    let members =
        meta["workspace_members"].as_array().unwrap().iter().map(|id| names[id.as_str().unwrap()].clone()).collect();
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let name = names[node["id"].as_str().unwrap()].clone();
        let normal: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].as_str() != Some("dev")))
            .map(|d| names[d["pkg"].as_str().unwrap()].clone())
            .collect();
        deps.entry(name).or_insert_with(BTreeSet::new).extend(normal);
    }
    Graph { deps, members }
}

impl Graph {
    fn closure(&self, krate: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![krate.to_string()];
        while let Some(k) = todo.pop() {
            for d in self.deps.get(&k).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }
}

fn matches(name: &str, pattern: &str) -> bool {
    if pattern.ends_with('-') {
        name.starts_with(pattern)
    } else {
        name == pattern
    }
}

/// Every breach of the rules in a graph, as lines to read.
fn breaches(g: &Graph) -> Vec<String> {
    let mut out = vec![];
    for rule in RULES {
        let direct: BTreeSet<&String> =
            g.deps.get(rule.krate).into_iter().flatten().filter(|d| g.members.contains(*d)).collect();
        for d in direct {
            if !rule.may_use.contains(&d.as_str()) {
                out.push(format!("{} depends on {d}, outside its layer", rule.krate));
            }
        }
        let all = g.closure(rule.krate);
        for pattern in rule.never.iter().flat_map(|l| l.iter()) {
            for d in all.iter().filter(|d| matches(d, pattern)) {
                out.push(format!("{} pulls in {d}, which its layer must not know", rule.krate));
            }
        }
    }
    // The test generator is never shipped: no crate has it as a normal dependency.
    for (k, ds) in &g.deps {
        if ds.contains("drydock-testgen") {
            out.push(format!("{k} depends on drydock-testgen (dev-dependencies only)"));
        }
    }
    out
}

#[test]
fn every_crate_keeps_to_its_layer() {
    let g = graph();
    for rule in RULES {
        assert!(g.members.contains(rule.krate), "{} is not a workspace member any more: update RULES", rule.krate);
    }
    let unruled: Vec<_> =
        g.members.iter().filter(|m| *m != "drydock" && !RULES.iter().any(|r| r.krate == m.as_str())).collect();
    assert!(unruled.is_empty(), "workspace crates without a layering rule: {unruled:?}");
    let found = breaches(&g);
    assert!(found.is_empty(), "the crate graph breaks the architecture:\n{}", found.join("\n"));
}

/// The check itself catches a forbidden edge, direct or transitive (the graph is edited here,
/// as if a Cargo.toml had gained the dependency).
#[test]
fn a_forbidden_edge_is_caught() {
    let mut g = graph();
    g.deps.get_mut("drydock-plan").unwrap().insert("drydock-aws".into());
    let found = breaches(&g);
    assert!(found.iter().any(|b| b == "drydock-plan depends on drydock-aws, outside its layer"), "{found:?}");
    assert!(found.iter().any(|b| b.starts_with("drydock-plan pulls in aws-sdk-ec2")), "{found:?}");

    let mut g = graph();
    g.deps.get_mut("drydock-state").unwrap().insert("drydock-config".into());
    assert!(breaches(&g).iter().any(|b| b == "drydock-state pulls in drydock-config, which its layer must not know"));

    let mut g = graph();
    g.deps.get_mut("drydock-config").unwrap().insert("clap".into());
    assert!(breaches(&g).iter().any(|b| b == "drydock-config pulls in clap, which its layer must not know"));
}
