//! `fmt` keeps meaning and is idempotent: over every example and a generated corpus,
//! `parse(fmt(x))` equals `parse(x)` with spans aside, and `fmt(fmt(x)) == fmt(x)`.

mod common;

use common::*;
use drydock_syntax::{fmt::format, parse_file};
use drydock_testgen::{file, Rng};

/// Checks both properties for one input; returns the formatted text.
fn roundtrip(name: &str, src: &str) -> String {
    let (parsed, diags) = parse_file(src, FILE);
    let parsed = parsed.unwrap_or_else(|| panic!("{name} does not parse: {diags:?}\n{src}"));
    let once = format(&parsed, src);
    let (again, diags) = parse_file(&once, FILE);
    let again =
        again.unwrap_or_else(|| panic!("fmt of {name} does not parse: {diags:?}\n--- input\n{src}\n--- fmt\n{once}"));
    assert_eq!(
        without_spans(parsed),
        without_spans(again.clone()),
        "fmt changed the meaning of {name}\n--- input\n{src}\n--- fmt\n{once}"
    );
    let twice = format(&again, &once);
    assert_eq!(once, twice, "fmt is not idempotent on {name}");
    once
}

#[test]
fn examples_round_trip() {
    let files = kcl_files(&repo().join("examples"));
    assert!(files.len() >= 3, "the examples are missing");
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        roundtrip(&f.display().to_string(), &src);
    }
}

#[test]
fn generated_corpus_round_trips() {
    big_stack(|| {
        let mut rng = Rng::new(7);
        for i in 0..3000 {
            let src = file(&mut rng);
            roundtrip(&format!("generated file {i}"), &src);
        }
    })
}

#[test]
fn fleet_generator_output_is_canonical() {
    let src = drydock_testgen::fleet(30, 1);
    assert_eq!(roundtrip("fleet", &src), src);
}

#[test]
fn layout_rules() {
    let src = "a=1\nlong_name=\"x\" # c\nb = [1,\n2]\n\n\n\nblock \"l\" {\n\n  x=1\n  inner {}\n  other {\ny=2}\n}\nc = {k=1, \"k.2\"=2}\n";
    expect_test::expect![[r#"
        a         = 1
        long_name = "x" # c
        b = [
          1,
          2,
        ]

        block "l" {
          x = 1
          inner {}

          other {
            y = 2
          }
        }
        c = { k = 1, "k.2" = 2 }
    "#]]
    .assert_eq(&roundtrip("layout", src));
}

/// A comment stays with what it is written beside: at the end of a line it trails the item
/// before it; with more of the body after it on its line, it leads what follows (as a
/// comment before the first item does) — never moved onto another item.
#[test]
fn comments_stay_beside_their_items() {
    let src = "locals { a = 1 /* x */ }\nlocals { /* y */ b = 1 }\nlocals {\n  c = 1 /* about d */ d = 2\n  e = 1 /* e1 */ /* about f */ f = 2 # f\n  g = [1, /* two */ 2, # two\n  3 /* three */]\n  h = {\n    i = 1 /* j */ j = 2 /* after j */\n  }\n}\ncluster \"k\" { # k\n  l = 1\n}\n";
    expect_test::expect![[r#"
        locals {
          a = 1 /* x */
        }

        locals {
          /* y */
          b = 1
        }

        locals {
          c = 1
          /* about d */
          d = 2
          e = 1
          /* e1 */
          /* about f */
          f = 2 # f
          g = [
            1,
            /* two */
            2, # two
            3, /* three */
          ]
          h = {
            i = 1
            /* j */
            j = 2 /* after j */
          }
        }

        cluster "k" { # k
          l = 1
        }
    "#]]
    .assert_eq(&roundtrip("comments", src));
}
