//! No input makes drydock panic: 100,000 generated and mutated inputs go through
//! parse, evaluate and render, and each ends in a model or at least one diagnostic.
//! Inputs that still parse after mutation must also survive `fmt` with their meaning.

mod common;

use common::*;
use drydock_config::{load_sources, Inputs};
use drydock_render::diag::render;
use drydock_syntax::diag::Sources;
use drydock_syntax::{fmt::format, parse_file};
use drydock_testgen::{file, fleet, mutate, Rng};

fn check(src: &str) {
    let mut sources = Sources::new();
    sources.add("fuzz.kcl", "fuzz.kcl", src);
    let loaded = load_sources(sources, &Inputs::default());
    assert!(loaded.model.is_some() || !loaded.diagnostics.is_empty(), "neither a model nor a diagnostic for:\n{src}");
    if loaded.model.is_some() {
        assert!(loaded.diagnostics.is_empty());
    }
    let _ = render(&loaded.diagnostics, &loaded.sources, false);
    if let (Some(parsed), true) = {
        let (p, d) = parse_file(src, FILE);
        (p, d.is_empty())
    } {
        let out = format(&parsed, src);
        let (again, d) = parse_file(&out, FILE);
        let again =
            again.unwrap_or_else(|| panic!("fmt output does not parse: {d:?}\n--- input\n{src}\n--- fmt\n{out}"));
        assert_eq!(
            without_spans(parsed),
            without_spans(again),
            "fmt changed meaning\n--- input\n{src}\n--- fmt\n{out}"
        );
    }
}

const TOTAL: usize = 100_000;

#[test]
fn hundred_thousand_inputs_never_panic() {
    // The inputs are split over the cores, each worker with its own seed, so the run is
    // deterministic and takes a fraction of the time.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn(move || fuzz(w, TOTAL / workers + usize::from(w < TOTAL % workers)))
                .unwrap()
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, TOTAL);
}

/// Checks `count` inputs from worker `w`'s stream; returns how many it checked.
fn fuzz(w: usize, count: usize) -> usize {
    {
        let mut seeds: Vec<String> =
            kcl_files(&repo().join("examples")).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        seeds.push(fleet(12, 3));
        let mut rng = Rng::new(2026 + w as u64);
        for i in 0..count {
            let src = match i % 10 {
                0..=3 => mutate(&mut rng, &seeds[i % seeds.len()]),
                4..=6 => {
                    let base = file(&mut rng);
                    mutate(&mut rng, &base)
                }
                _ => file(&mut rng),
            };
            let result = std::panic::catch_unwind(|| check(&src));
            if let Err(e) = result {
                // Kept for reproducing: `drydock fmt --diff target/no-panic-failure-W.kcl`.
                let _ = std::fs::write(repo().join(format!("target/no-panic-failure-{w}.kcl")), &src);
                let msg =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("input {i} of worker {w} failed: {}\n--- input\n{src}", msg.unwrap_or_default());
            }
        }
        count
    }
}

#[test]
fn pathological_inputs() {
    big_stack(|| {
        for src in [
            "a = ".to_string() + &"[".repeat(100_000),
            "a = ".to_string() + &"-".repeat(100_000) + "1",
            "a = ".to_string() + &"1 + ".repeat(50_000) + "1",
            "a = \"".to_string() + &"${".repeat(10_000),
            "b {".repeat(10_000),
            "a = <<EOT\n".to_string() + &"x\n".repeat(1000),
            "\u{feff}a = 1".to_string(),
            "a = 1e400".to_string(),
            "a = 99999999999999999999999999d".to_string(),
            "a = \"\\u{110000}\"".to_string(),
            String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41]).to_string(),
        ] {
            check(&src);
        }
    })
}
