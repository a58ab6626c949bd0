//! Every diagnostic code, rendered by the real binary exactly as a user sees it: one
//! case per code in `tests/diagnostics/NAME.kcl`, its expected stderr in `NAME.stderr`.
//! A first line `# args: …` adds command-line arguments. `UPDATE_EXPECT=1` rewrites
//! the expectations.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

fn cases() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join("tests/diagnostics"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kcl"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_case_renders_as_stored() {
    let dir = repo().join("tests/diagnostics");
    for case in cases() {
        let text = std::fs::read_to_string(&case).unwrap();
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let extra: Vec<&str> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# args:"))
            .map(|a| a.split_whitespace().collect())
            .unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(&dir)
            .args(["validate", &name])
            .args(&extra)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} should fail validation");
        assert!(out.stdout.is_empty(), "{name} printed to stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        expect_test::expect_file![dir.join(name.replace(".kcl", ".stderr"))].assert_eq(&stderr);
    }
}

/// Every code the source can emit is shown by at least one case, under its own name.
#[test]
fn every_code_has_a_case() {
    let mut codes = BTreeSet::new();
    let mut stack = vec![repo().join("src"), repo().join("crates")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, _) in text.match_indices("\"kcl::") {
                    let rest = &text[i + 6..];
                    let end = rest.find('"').unwrap();
                    codes.insert(rest[..end].to_string());
                }
            }
        }
    }
    assert!(codes.len() > 20, "found only {codes:?}");
    let dir = repo().join("tests/diagnostics");
    for code in codes {
        let stderr = std::fs::read_to_string(dir.join(format!("{code}.stderr")))
            .unwrap_or_else(|_| panic!("no case tests/diagnostics/{code}.kcl for kcl::{code}"));
        assert!(stderr.contains(&format!("kcl::{code}")), "the case for kcl::{code} does not show that code");
    }
    let docs = std::fs::read_to_string(repo().join("docs/language.md")).unwrap();
    for case in cases() {
        let code = case.file_stem().unwrap().to_str().unwrap();
        assert!(docs.contains(&format!("kcl::{code}")), "docs/language.md does not describe kcl::{code}");
    }
}
