//! Parse and evaluate throughput on generated fleets of ~1 MB (10,000 node groups) and
//! ~10 MB (100,000 node groups). Run: `cargo bench --bench parse`.
//! Goals (issue 2): parsing at least 30 MB/s, and validating 10,000 node groups in under 0.5 s.

use std::time::{Duration, Instant};

use drydock_config::{load_sources, Inputs};
use drydock_syntax::diag::{FileId, Sources};
use drydock_syntax::parse_file;
use drydock_testgen::fleet;

/// The best of `runs` timings (the least disturbed by the rest of the machine).
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let big_stack = std::thread::Builder::new().stack_size(256 << 20);
    big_stack.spawn(run).unwrap().join().unwrap();
}

fn run() {
    println!("{:<28} {:>10} {:>12} {:>12}", "benchmark", "size", "time", "throughput");
    for groups in [10_000, 100_000] {
        let src = fleet(groups, 42);
        let mb = src.len() as f64 / 1e6;
        let runs = if groups > 50_000 { 3 } else { 10 };

        let t = best(runs, || {
            assert!(drydock_syntax::raw_parse_token_count(&src).is_some());
        });
        report(&format!("pest alone ({groups} groups)"), mb, t);

        let t = best(runs, || {
            let (file, diags) = parse_file(&src, FileId(0));
            assert!(file.is_some() && diags.is_empty());
        });
        report(&format!("parse ({groups} groups)"), mb, t);

        let t = best(runs, || {
            let mut sources = Sources::new();
            sources.add("fleet.kcl", "fleet.kcl", src.as_str());
            let loaded = load_sources(sources, &Inputs::default());
            let model = loaded.model.expect("the generated fleet is valid");
            assert_eq!(model.node_group_count(), groups);
        });
        report(&format!("parse+evaluate ({groups} groups)"), mb, t);

        // The whole command, as a user runs it: process start, read, parse, evaluate.
        let dir = std::env::temp_dir().join(format!("drydock-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fleet.kcl");
        std::fs::write(&path, &src).unwrap();
        let t = best(runs.min(5), || {
            let out =
                std::process::Command::new(env!("CARGO_BIN_EXE_drydock")).arg("validate").arg(&path).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        });
        report(&format!("drydock validate ({groups})"), mb, t);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn report(name: &str, mb: f64, t: Duration) {
    let secs = t.as_secs_f64();
    println!("{name:<28} {:>8.2} MB {:>9.1} ms {:>8.1} MB/s", mb, secs * 1e3, mb / secs);
}
