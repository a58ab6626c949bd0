//! The fast hand-written parser and the pest grammar agree: on every input, both accept
//! or both reject, and when they accept they build the same tree, spans, comments and
//! diagnostics. Inputs: the examples, a generated corpus, and mutations of both.

mod common;

use common::*;
use drydock_syntax::{parse_file_fast, parse_file_pest};
use drydock_testgen::{file, fleet, mutate, Rng};

fn agree(src: &str) {
    let fast = parse_file_fast(src, FILE);
    let (pest, pest_diags) = parse_file_pest(src, FILE);
    match (fast, pest) {
        (Some((f, d)), Some(p)) => {
            assert_eq!(f, p, "the parsers build different trees for:\n{src}");
            assert_eq!(d, pest_diags, "the parsers report different diagnostics for:\n{src}");
        }
        (None, None) => {}
        (Some(_), None) => panic!("the fast parser accepts what the grammar rejects ({pest_diags:?}):\n{src}"),
        (None, Some(_)) => panic!("the fast parser rejects what the grammar accepts:\n{src}"),
    }
}

#[test]
fn examples_and_generated_inputs() {
    big_stack(|| {
        let mut seeds: Vec<String> =
            kcl_files(&repo().join("examples")).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        seeds.extend(kcl_files(&repo().join("tests/diagnostics")).iter().map(|p| std::fs::read_to_string(p).unwrap()));
        seeds.push(fleet(25, 9));
        for s in &seeds {
            agree(s);
        }
        let mut rng = Rng::new(99);
        for i in 0..20_000 {
            let src = match i % 4 {
                0 => file(&mut rng),
                1 => {
                    let base = file(&mut rng);
                    mutate(&mut rng, &base)
                }
                _ => mutate(&mut rng, &seeds[i % seeds.len()]),
            };
            agree(&src);
        }
    })
}

#[test]
fn tricky_corners() {
    for src in [
        "a = [for]",
        "a = [for, x]",
        "a = [for x in y : x if]",
        "a = { for = 1 }",
        "a = { for k, v in m : k => v... if v }",
        "a = 1..2..3",
        "a = -1 - -2",
        "a = 10-1",
        "a = x.y[0].z",
        "a = b\n[1]",
        "a = b .c",
        "a = upper (\"x\")",
        "a = true(1)",
        "a = truex",
        "a = 25%-3",
        "a = 25%3",
        "a = 1h30m",
        "a = 1h30",
        "a = 1.5s",
        "a = 1e5",
        "a = 1e",
        "a = \"$${x} $$ ${y}\"",
        "a = \"\\u{41}\\q\\u{110000}\"",
        "a = \"${\n  1 # c\n}\"",
        "a = <<EOT\nEOTX\n  EOT",
        "a = <<-EOT\n    x ${1}\n  y $${z}\n  EOT\n",
        "a = <<EOT\r\nx\r\nEOT\r\n",
        "a = <<EOT\nunterminated",
        "a = b /* unterminated",
        "a = b / c",
        "a = !b != c",
        "a = b ? c : d ? e : f",
        "a = b ? c",
        "a =\n= 1",
        "a = = 1",
        "b \"l\" \"m\" {}",
        "b \"l\\\"q\" { c = 1 }",
        "b \"l\nx\" {}",
        "a = 1 b = 2",
        "a = { x = 1, y = 2, }",
        "a = { x : 1 \"y\" = 2 (z) = 3 }",
        "# only a comment",
        "/* c */ a = /* d */ 1 // e",
        "",
        "a = 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999e99",
    ] {
        agree(src);
    }
}
