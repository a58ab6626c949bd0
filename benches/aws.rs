//! The AWS provider against moto (`cargo bench --bench aws`): API calls and time of a refresh
//! (the observation a plan starts with, from `plan --stats`) and of a whole `plan`, at 10, 100
//! and 500 node groups that exist; then the time to apply 50 node groups with `--parallelism
//! 10` and with 1. moto answers from one local process, so times are moto's, not AWS's; call
//! counts are the provider's own, except where moto does not page (see docs/aws.md).

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::path::Path;
use std::time::{Duration, Instant};

use moto::{Moto, Network};

/// A configuration of `n` node groups of one instance each.
fn fleet(n: usize, net: &Network) -> String {
    let mut s = format!(
        "provider \"aws\" {{\n  region = \"us-east-1\"\n}}\n\ncluster \"bench\" {{\n  kubernetes_version = \"1.31\"\n\n  \
         network {{\n    subnets = {}\n  }}\n\n  defaults {{\n    image           = \"{}\"\n    instance_types  = [\"m6i.large\"]\n    \
         security_groups = [\"{}\"]\n  }}\n",
        serde_json::to_string(&net.subnets).unwrap(),
        net.images[0],
        net.security_group
    );
    for i in 0..n {
        s.push_str(&format!("\n  node_group \"ng-{i:04}\" {{\n    size = 1\n  }}\n"));
    }
    s.push_str("}\n");
    s
}

fn dir_with(n: usize, net: &Network) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.kcl"), fleet(n, net)).unwrap();
    dir
}

fn run(m: &Moto, dir: &Path, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let out = m.drydock(dir, args, &[]);
    let elapsed = started.elapsed();
    // stdout carries the plan, stderr the notes (the `--stats` line among them).
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drydock {args:?}:\n{text}");
    (text, elapsed)
}

/// `Refreshed N node groups with C API calls in T s.` → (C, T).
fn refresh(plan: &str) -> (u64, f64) {
    let line = plan.lines().find(|l| l.starts_with("Refreshed ")).expect("a --stats line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let calls = words[words.iter().position(|w| *w == "with").unwrap() + 1].parse().unwrap();
    let secs = words[words.iter().position(|w| *w == "in").unwrap() + 1].parse().unwrap();
    (calls, secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let m = Moto::start();
    println!("| node groups | apply (parallelism 10) | refresh calls | refresh time | plan time |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [10, 100, 500] {
        m.reset();
        let net = m.network();
        let dir = dir_with(n, &net);
        let (_, apply) = run(&m, dir.path(), &["apply", ".", "--auto-approve", "--parallelism", "10"]);
        let mut calls = vec![];
        let (mut refresh_s, mut plan_s) = (vec![], vec![]);
        for _ in 0..3 {
            let (text, wall) = run(&m, dir.path(), &["plan", ".", "--stats"]);
            assert!(text.contains("No changes."), "{text}");
            let (c, s) = refresh(&text);
            calls.push(c);
            refresh_s.push(s);
            plan_s.push(wall.as_secs_f64());
        }
        calls.dedup();
        println!(
            "| {n} | {:.1} s | {} | {:.2} s | {:.2} s |",
            apply.as_secs_f64(),
            calls.iter().map(u64::to_string).collect::<Vec<_>>().join(" / "),
            median(refresh_s),
            median(plan_s)
        );
    }
    println!();
    println!("| apply 50 node groups | time |");
    println!("|---|---:|");
    for parallelism in ["10", "1"] {
        m.reset();
        let net = m.network();
        let dir = dir_with(50, &net);
        let (_, t) = run(&m, dir.path(), &["apply", ".", "--auto-approve", "--parallelism", parallelism]);
        println!("| --parallelism {parallelism} | {:.1} s |", t.as_secs_f64());
    }
}
