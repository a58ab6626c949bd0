//! Every evaluator function, case by case: each expression is the value of an output in a
//! small configuration, evaluated through `load_sources`, and rendered on one line as
//! `EXPR => VALUE` (strings quoted, `(sensitive)` when the output is marked) or
//! `EXPR => error[code]: message (at `text`: label; help: …)`.
//!
//! The expected blocks were checked by hand against `docs/language.md`; `UPDATE_EXPECT=1`
//! rewrites them, so read the diff before accepting it.

use std::path::Path;

use drydock_config::value::Value;
use drydock_config::{load_sources, Inputs};
use drydock_syntax::diag::Sources;
use expect_test::{expect, Expect};

/// Declarations every case may use: a sensitive string and number, a sensitive local, plain
/// ones, and a cluster whose `group_names` are known only after apply.
const PRELUDE: &str = r#"
variable "secret" {
  type      = string
  default   = "hunter2"
  sensitive = true
}

variable "pin" {
  type      = number
  default   = 1234
  sensitive = true
}

variable "plain" {
  default = "open"
}

locals {
  from_secret = "token-${var.secret}"
  plain_list  = ["a", "b"]
}

provider "sim" {}

cluster "core" {
  kubernetes_version = "1.31"

  network {
    subnets = ["subnet-a"]
  }

  node_group "g" {
    image         = "img"
    instance_type = "m6i.large"
    size          = 1..3
  }
}
"#;

/// Evaluates `expr` as the value of `output "x"`, in a configuration whose main file lives
/// in `dir` (where `file()` looks).
fn eval_in(dir: &Path, expr: &str) -> String {
    let text = format!("{PRELUDE}\noutput \"x\" {{\n  value = {expr}\n}}\n");
    let mut sources = Sources::new();
    sources.add("main.kcl", dir.join("main.kcl"), text);
    let loaded = load_sources(sources, &Inputs::default());
    if !loaded.diagnostics.is_empty() {
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| {
                let mut s = format!("error[{}]: {}", d.code, d.message);
                let mut extra = vec![];
                if let Some(span) = d.span {
                    let at = loaded.sources.text(span);
                    if d.label.is_empty() {
                        extra.push(format!("at `{at}`"));
                    } else {
                        extra.push(format!("at `{at}`: {}", d.label));
                    }
                }
                if let Some(h) = &d.help {
                    extra.push(format!("help: {h}"));
                }
                if !extra.is_empty() {
                    s.push_str(&format!(" ({})", extra.join("; ")));
                }
                s
            })
            .collect();
        let errors = errors.join(" / ");
        // Paths in messages (`file()`) depend on the temporary directory.
        return match dir.to_str() {
            Some(".") | None => errors,
            Some(d) => errors.replace(d, "<dir>"),
        };
    }
    let model = loaded.model.expect("no diagnostics, so a model");
    let out = model.outputs.iter().find(|o| o.name == "x").expect("the output is evaluated");
    let mut s = show(&out.value);
    if out.sensitive {
        s.push_str(" (sensitive)");
    }
    s
}

/// A value as .kcl source, with strings quoted so that `"3"` and `3` differ.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn check_in(dir: &Path, cases: &[&str], expected: Expect) {
    let mut out = String::new();
    for case in cases {
        out.push_str(&format!("{case} => {}\n", eval_in(dir, case)));
    }
    expected.assert_eq(&out);
}

fn check(cases: &[&str], expected: Expect) {
    check_in(Path::new("."), cases, expected);
}

#[test]
fn case_functions() {
    check(
        &[
            r#"upper("ab")"#,
            r#"upper("")"#,
            r#"upper("héllo straße")"#,
            r#"upper("a-1_b")"#,
            r#"upper(12)"#,
            r#"upper(-1.50)"#,
            r#"upper(true)"#,
            r#"upper()"#,
            r#"upper("a", "b")"#,
            r#"upper(["a"])"#,
            r#"upper({ a = "b" })"#,
            r#"upper(null)"#,
            r#"upper(90s)"#,
            r#"upper(25%)"#,
            r#"lower("AB")"#,
            r#"lower("")"#,
            r#"lower("ÀÉÎ Ünïcode")"#,
            r#"lower("MiXeD-123")"#,
            r#"lower(false)"#,
            r#"lower(1e3)"#,
            r#"lower()"#,
            r#"lower("A", "B")"#,
            r#"lower([])"#,
            r#"lower(1..3)"#,
        ],
        expect![[r#"
            upper("ab") => "AB"
            upper("") => ""
            upper("héllo straße") => "HÉLLO STRASSE"
            upper("a-1_b") => "A-1_B"
            upper(12) => "12"
            upper(-1.50) => "-1.5"
            upper(true) => "TRUE"
            upper() => error[kcl::wrong_arguments]: `upper` takes 1 argument, got 0 (at `upper()`: called here; help: usage: upper(string))
            upper("a", "b") => error[kcl::wrong_arguments]: `upper` takes 1 argument, got 2 (at `upper("a", "b")`: called here; help: usage: upper(string))
            upper(["a"]) => error[kcl::type_mismatch]: `upper` expects a string (at `["a"]`: this is a list)
            upper({ a = "b" }) => error[kcl::type_mismatch]: `upper` expects a string (at `{ a = "b" }`: this is an object)
            upper(null) => error[kcl::type_mismatch]: `upper` expects a string (at `null`: this is null)
            upper(90s) => error[kcl::type_mismatch]: `upper` expects a string (at `90s`: this is the duration 1m30s)
            upper(25%) => error[kcl::type_mismatch]: `upper` expects a string (at `25%`: this is the percent 25%)
            lower("AB") => "ab"
            lower("") => ""
            lower("ÀÉÎ Ünïcode") => "àéî ünïcode"
            lower("MiXeD-123") => "mixed-123"
            lower(false) => "false"
            lower(1e3) => "1000"
            lower() => error[kcl::wrong_arguments]: `lower` takes 1 argument, got 0 (at `lower()`: called here; help: usage: lower(string))
            lower("A", "B") => error[kcl::wrong_arguments]: `lower` takes 1 argument, got 2 (at `lower("A", "B")`: called here; help: usage: lower(string))
            lower([]) => error[kcl::type_mismatch]: `lower` expects a string (at `[]`: this is a list)
            lower(1..3) => error[kcl::type_mismatch]: `lower` expects a string (at `1..3`: this is the range 1..3)
        "#]],
    );
}

#[test]
fn trim_replace() {
    check(
        &[
            r#"trim("  x ")"#,
            r#"trim("--x--", "-")"#,
            r#"trim("\t\n x \r\n")"#,
            r#"trim(" a b ")"#,
            r#"trim("\u{a0}x\u{3000}")"#,
            r#"trim("")"#,
            r#"trim("   ")"#,
            r#"trim("--", "-")"#,
            r#"trim("ab-x-ba", "ab")"#,
            r#"trim("x", "")"#,
            r#"trim("  x  ", "")"#,
            r#"trim("éxé", "é")"#,
            r#"trim("x-y", "-")"#,
            r#"trim(5)"#,
            r#"trim(1231, 1)"#,
            r#"trim()"#,
            r#"trim("a", "b", "c")"#,
            r#"trim(["a"])"#,
            r#"trim("a", ["b"])"#,
            r#"trim(null)"#,
            r#"replace("a-b-c", "-", ".")"#,
            r#"replace("a.b", ".", "-")"#,
            r#"replace("a*b", "*", "+")"#,
            r#"replace("aaa", "a", "bb")"#,
            r#"replace("aaaa", "aa", "a")"#,
            r#"replace("", "x", "y")"#,
            r#"replace("abc", "x", "y")"#,
            r#"replace("abc", "b", "")"#,
            r#"replace("héllo", "é", "e")"#,
            r#"replace(1234, 23, 0)"#,
            r#"replace(true, "u", "")"#,
            r#"replace("abc", "", "x")"#,
            r#"replace("a", "b")"#,
            r#"replace("a", "b", "c", "d")"#,
            r#"replace(["a"], "a", "b")"#,
            r#"replace("a", { a = 1 }, "b")"#,
            r#"replace("a", "a", null)"#,
        ],
        expect![[r#"
            trim("  x ") => "x"
            trim("--x--", "-") => "x"
            trim("\t\n x \r\n") => "x"
            trim(" a b ") => "a b"
            trim("\u{a0}x\u{3000}") => "x"
            trim("") => ""
            trim("   ") => ""
            trim("--", "-") => ""
            trim("ab-x-ba", "ab") => "-x-"
            trim("x", "") => "x"
            trim("  x  ", "") => "  x  "
            trim("éxé", "é") => "x"
            trim("x-y", "-") => "x-y"
            trim(5) => "5"
            trim(1231, 1) => "23"
            trim() => error[kcl::wrong_arguments]: `trim` takes 1 to 2 arguments, got 0 (at `trim()`: called here; help: usage: trim(string, characters))
            trim("a", "b", "c") => error[kcl::wrong_arguments]: `trim` takes 1 to 2 arguments, got 3 (at `trim("a", "b", "c")`: called here; help: usage: trim(string, characters))
            trim(["a"]) => error[kcl::type_mismatch]: `trim` expects a string (at `["a"]`: this is a list)
            trim("a", ["b"]) => error[kcl::type_mismatch]: `trim` expects a string (at `["b"]`: this is a list)
            trim(null) => error[kcl::type_mismatch]: `trim` expects a string (at `null`: this is null)
            replace("a-b-c", "-", ".") => "a.b.c"
            replace("a.b", ".", "-") => "a-b"
            replace("a*b", "*", "+") => "a+b"
            replace("aaa", "a", "bb") => "bbbbbb"
            replace("aaaa", "aa", "a") => "aa"
            replace("", "x", "y") => ""
            replace("abc", "x", "y") => "abc"
            replace("abc", "b", "") => "ac"
            replace("héllo", "é", "e") => "hello"
            replace(1234, 23, 0) => "104"
            replace(true, "u", "") => "tre"
            replace("abc", "", "x") => error[kcl::function_error]: the search string is empty (at `""`: in this argument of `replace`)
            replace("a", "b") => error[kcl::wrong_arguments]: `replace` takes 3 arguments, got 2 (at `replace("a", "b")`: called here; help: usage: replace(string, search, replacement))
            replace("a", "b", "c", "d") => error[kcl::wrong_arguments]: `replace` takes 3 arguments, got 4 (at `replace("a", "b", "c", "d")`: called here; help: usage: replace(string, search, replacement))
            replace(["a"], "a", "b") => error[kcl::type_mismatch]: `replace` expects a string (at `["a"]`: this is a list)
            replace("a", { a = 1 }, "b") => error[kcl::type_mismatch]: `replace` expects a string (at `{ a = 1 }`: this is an object)
            replace("a", "a", null) => error[kcl::type_mismatch]: `replace` expects a string (at `null`: this is null)
        "#]],
    );
}

#[test]
fn split_join() {
    check(
        &[
            r#"split(",", "a,b")"#,
            r#"split(",", "a,,b")"#,
            r#"split(",", ",a,")"#,
            r#"split(",", "abc")"#,
            r#"split(",", "")"#,
            r#"split("::", "a::b::c")"#,
            r#"split("é", "aébéc")"#,
            r#"split(" ", "a b  c")"#,
            r#"split(".", 1.5)"#,
            r#"split("", "abc")"#,
            r#"split(",")"#,
            r#"split(",", "a", "b")"#,
            r#"split(",", ["a"])"#,
            r#"split([","], "a")"#,
            r#"split(",", null)"#,
            r#"split(",", "a")[1]"#,
            r#"split(",", "a,b")[-1]"#,
            r#"join(",", ["a", "b"])"#,
            r#"join(",", [])"#,
            r#"join(", ", ["a"])"#,
            r#"join("", ["a", "b"])"#,
            r#"join("é", ["a", "b", "c"])"#,
            r#"join("-", [1, true, "x", -2.5])"#,
            r#"join("-", [90s, 25%, 1..3])"#,
            r#"join(1, ["a", "b"])"#,
            r#"join(",", split(",", "a,b,c"))"#,
            // An element that cannot be text is a function_error ("a object"), not a type_mismatch.
            r#"join(",", [["a"]])"#,
            r#"join(",", [{ a = 1 }])"#,
            r#"join(",", [null])"#,
            r#"join(",", "a")"#,
            r#"join(",", { a = "b" })"#,
            r#"join(["a"], ",")"#,
            r#"join(",")"#,
            r#"join(",", ["a"], ["b"])"#,
        ],
        expect![[r#"
            split(",", "a,b") => ["a", "b"]
            split(",", "a,,b") => ["a", "", "b"]
            split(",", ",a,") => ["", "a", ""]
            split(",", "abc") => ["abc"]
            split(",", "") => [""]
            split("::", "a::b::c") => ["a", "b", "c"]
            split("é", "aébéc") => ["a", "b", "c"]
            split(" ", "a b  c") => ["a", "b", "", "c"]
            split(".", 1.5) => ["1", "5"]
            split("", "abc") => error[kcl::function_error]: the separator is empty (at `""`: in this argument of `split`)
            split(",") => error[kcl::wrong_arguments]: `split` takes 2 arguments, got 1 (at `split(",")`: called here; help: usage: split(separator, string))
            split(",", "a", "b") => error[kcl::wrong_arguments]: `split` takes 2 arguments, got 3 (at `split(",", "a", "b")`: called here; help: usage: split(separator, string))
            split(",", ["a"]) => error[kcl::type_mismatch]: `split` expects a string (at `["a"]`: this is a list)
            split([","], "a") => error[kcl::type_mismatch]: `split` expects a string (at `[","]`: this is a list)
            split(",", null) => error[kcl::type_mismatch]: `split` expects a string (at `null`: this is null)
            split(",", "a")[1] => error[kcl::index]: index 1 is out of range (at `1`: the list has 1 element)
            split(",", "a,b")[-1] => error[kcl::index]: index -1 is out of range (at `-1`: the list has 2 elements)
            join(",", ["a", "b"]) => "a,b"
            join(",", []) => ""
            join(", ", ["a"]) => "a"
            join("", ["a", "b"]) => "ab"
            join("é", ["a", "b", "c"]) => "aébéc"
            join("-", [1, true, "x", -2.5]) => "1-true-x--2.5"
            join("-", [90s, 25%, 1..3]) => "1m30s-25%-1..3"
            join(1, ["a", "b"]) => "a1b"
            join(",", split(",", "a,b,c")) => "a,b,c"
            join(",", [["a"]]) => error[kcl::function_error]: cannot join a list (at `[["a"]]`: in this argument of `join`)
            join(",", [{ a = 1 }]) => error[kcl::function_error]: cannot join a object (at `[{ a = 1 }]`: in this argument of `join`)
            join(",", [null]) => error[kcl::function_error]: cannot join a null (at `[null]`: in this argument of `join`)
            join(",", "a") => error[kcl::type_mismatch]: `join` expects a list (at `"a"`: this is the string "a")
            join(",", { a = "b" }) => error[kcl::type_mismatch]: `join` expects a list (at `{ a = "b" }`: this is an object)
            join(["a"], ",") => error[kcl::type_mismatch]: `join` expects a string (at `["a"]`: this is a list)
            join(",") => error[kcl::wrong_arguments]: `join` takes 2 arguments, got 1 (at `join(",")`: called here; help: usage: join(separator, list))
            join(",", ["a"], ["b"]) => error[kcl::wrong_arguments]: `join` takes 2 arguments, got 3 (at `join(",", ["a"], ["b"])`: called here; help: usage: join(separator, list))
        "#]],
    );
}

#[test]
fn format_verbs() {
    check(
        &[
            r#"format("%s-%d", "pool", 3)"#,
            r#"format("plain")"#,
            r#"format("")"#,
            r#"format(3)"#,
            r#"format("%%")"#,
            r#"format("100%%")"#,
            r#"format("%s%%", 50)"#,
            r#"format("é%sé", "ü")"#,
            r#"format("%s", "")"#,
            r#"format("%s", 1.5)"#,
            r#"format("%s", true)"#,
            r#"format("%s", null)"#,
            r#"format("%s", 25%)"#,
            r#"format("%v", 90s)"#,
            r#"format("%v", 1..3)"#,
            r#"format("%v", "a")"#,
            r#"format("%v", [1, "a"])"#,
            r#"format("%s", { a = 1 })"#,
            r#"format("%d", 3)"#,
            r#"format("%d", 3.9)"#,
            r#"format("%d", -3.9)"#,
            r#"format("%d", -7)"#,
            r#"format("%d", 1e3)"#,
            r#"format("%q", "hi")"#,
            r#"format("%q", "")"#,
            r#"format("%q", "a\"b")"#,
            r#"format("%q", "a\nb")"#,
            r#"format("%q", "héllo")"#,
            r#"format("%q", 3)"#,
            r#"format("%s=%q", "k", "v")"#,
            r#"format("%d", "x")"#,
            r#"format("%d", "3")"#,
            r#"format("%d", true)"#,
            r#"format("%d", null)"#,
            r#"format("%s %s", "a")"#,
            r#"format("%s")"#,
            r#"format("%s", "a", "b")"#,
            r#"format("x", "a")"#,
            r#"format("%x", 1)"#,
            r#"format("%S", "a")"#,
            r#"format("50%")"#,
            r#"format()"#,
            r#"format(["%s"], "a")"#,
            r#"format(null)"#,
        ],
        expect![[r#"
            format("%s-%d", "pool", 3) => "pool-3"
            format("plain") => "plain"
            format("") => ""
            format(3) => "3"
            format("%%") => "%"
            format("100%%") => "100%"
            format("%s%%", 50) => "50%"
            format("é%sé", "ü") => "éüé"
            format("%s", "") => ""
            format("%s", 1.5) => "1.5"
            format("%s", true) => "true"
            format("%s", null) => "null"
            format("%s", 25%) => "25%"
            format("%v", 90s) => "1m30s"
            format("%v", 1..3) => "1..3"
            format("%v", "a") => "a"
            format("%v", [1, "a"]) => "[1, \"a\"]"
            format("%s", { a = 1 }) => "{ \"a\" = 1 }"
            format("%d", 3) => "3"
            format("%d", 3.9) => "3"
            format("%d", -3.9) => "-3"
            format("%d", -7) => "-7"
            format("%d", 1e3) => "1000"
            format("%q", "hi") => "\"hi\""
            format("%q", "") => "\"\""
            format("%q", "a\"b") => "\"a\\\"b\""
            format("%q", "a\nb") => "\"a\\nb\""
            format("%q", "héllo") => "\"héllo\""
            format("%q", 3) => "\"3\""
            format("%s=%q", "k", "v") => "k=\"v\""
            format("%d", "x") => error[kcl::function_error]: %d needs a number, found string (at `"%d"`: in this argument of `format`)
            format("%d", "3") => error[kcl::function_error]: %d needs a number, found string (at `"%d"`: in this argument of `format`)
            format("%d", true) => error[kcl::function_error]: %d needs a number, found bool (at `"%d"`: in this argument of `format`)
            format("%d", null) => error[kcl::function_error]: %d needs a number, found null (at `"%d"`: in this argument of `format`)
            format("%s %s", "a") => error[kcl::function_error]: not enough values for %s (at `"%s %s"`: in this argument of `format`)
            format("%s") => error[kcl::function_error]: not enough values for %s (at `"%s"`: in this argument of `format`)
            format("%s", "a", "b") => error[kcl::function_error]: more values than the format uses (at `"%s"`: in this argument of `format`)
            format("x", "a") => error[kcl::function_error]: more values than the format uses (at `"x"`: in this argument of `format`)
            format("%x", 1) => error[kcl::function_error]: unknown format verb %x; use %s, %d, %v, %q or %% (at `"%x"`: in this argument of `format`)
            format("%S", "a") => error[kcl::function_error]: unknown format verb %S; use %s, %d, %v, %q or %% (at `"%S"`: in this argument of `format`)
            format("50%") => error[kcl::function_error]: the format ends with a lone % (at `"50%"`: in this argument of `format`)
            format() => error[kcl::wrong_arguments]: `format` takes at least 1 argument, got 0 (at `format()`: called here; help: usage: format(spec, values...))
            format(["%s"], "a") => error[kcl::type_mismatch]: `format` expects a string (at `["%s"]`: this is a list)
            format(null) => error[kcl::type_mismatch]: `format` expects a string (at `null`: this is null)
        "#]],
    );
}

#[test]
fn list_functions() {
    check(
        &[
            r#"concat(["a"], ["b", "c"])"#,
            r#"concat(["a"])"#,
            r#"concat([])"#,
            r#"concat([], [])"#,
            // Unlike min() and max(), concat() and merge() take no arguments without complaint.
            r#"concat()"#,
            r#"concat(["a", "a"], ["a"])"#,
            r#"concat([1], ["a"], [[true]], [{ k = "v" }])"#,
            r#"concat(["a"], "b")"#,
            r#"concat(["a"], null)"#,
            r#"concat({ a = 1 })"#,
            r#"contains(["a", "b"], "b")"#,
            r#"contains(["a"], "c")"#,
            r#"contains([], "a")"#,
            r#"contains([1, 2], 2)"#,
            r#"contains([1, 2], "1")"#,
            r#"contains(["1"], 1)"#,
            r#"contains([[1]], [1])"#,
            r#"contains([{ a = 1 }], { a = 1 })"#,
            r#"contains(["é"], "é")"#,
            r#"contains(["A"], "a")"#,
            r#"contains([90s], 1m30s)"#,
            r#"contains(["a"], null)"#,
            r#"contains([null], null)"#,
            r#"contains("abc", "a")"#,
            r#"contains({ a = 1 }, "a")"#,
            r#"contains(["a"])"#,
            r#"contains(["a"], "a", "b")"#,
            r#"length([1, 2])"#,
            r#"length([])"#,
            r#"length([[1, 2]])"#,
            r#"length("héllo")"#,
            r#"length("")"#,
            r#"length("😀")"#,
            r#"length("e\u{301}")"#,
            r#"length({})"#,
            r#"length({ a = 1, b = 2 })"#,
            r#"length(12345)"#,
            r#"length(true)"#,
            r#"length(null)"#,
            r#"length(1..3)"#,
            r#"length()"#,
            r#"length([], [])"#,
        ],
        expect![[r#"
            concat(["a"], ["b", "c"]) => ["a", "b", "c"]
            concat(["a"]) => ["a"]
            concat([]) => []
            concat([], []) => []
            concat() => []
            concat(["a", "a"], ["a"]) => ["a", "a", "a"]
            concat([1], ["a"], [[true]], [{ k = "v" }]) => [1, "a", [true], { "k" = "v" }]
            concat(["a"], "b") => error[kcl::type_mismatch]: `concat` expects lists (at `"b"`: this is the string "b")
            concat(["a"], null) => error[kcl::type_mismatch]: `concat` expects lists (at `null`: this is null)
            concat({ a = 1 }) => error[kcl::type_mismatch]: `concat` expects lists (at `{ a = 1 }`: this is an object)
            contains(["a", "b"], "b") => true
            contains(["a"], "c") => false
            contains([], "a") => false
            contains([1, 2], 2) => true
            contains([1, 2], "1") => false
            contains(["1"], 1) => false
            contains([[1]], [1]) => true
            contains([{ a = 1 }], { a = 1 }) => true
            contains(["é"], "é") => true
            contains(["A"], "a") => false
            contains([90s], 1m30s) => true
            contains(["a"], null) => false
            contains([null], null) => true
            contains("abc", "a") => error[kcl::type_mismatch]: `contains` expects a list (at `"abc"`: this is the string "abc")
            contains({ a = 1 }, "a") => error[kcl::type_mismatch]: `contains` expects a list (at `{ a = 1 }`: this is an object)
            contains(["a"]) => error[kcl::wrong_arguments]: `contains` takes 2 arguments, got 1 (at `contains(["a"])`: called here; help: usage: contains(list, value))
            contains(["a"], "a", "b") => error[kcl::wrong_arguments]: `contains` takes 2 arguments, got 3 (at `contains(["a"], "a", "b")`: called here; help: usage: contains(list, value))
            length([1, 2]) => 2
            length([]) => 0
            length([[1, 2]]) => 1
            length("héllo") => 5
            length("") => 0
            length("😀") => 1
            length("e\u{301}") => 2
            length({}) => 0
            length({ a = 1, b = 2 }) => 2
            length(12345) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `12345`: this is the number 12345)
            length(true) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `true`: this is the bool true)
            length(null) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `null`: this is null)
            length(1..3) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `1..3`: this is the range 1..3)
            length() => error[kcl::wrong_arguments]: `length` takes 1 argument, got 0 (at `length()`: called here; help: usage: length(value))
            length([], []) => error[kcl::wrong_arguments]: `length` takes 1 argument, got 2 (at `length([], [])`: called here; help: usage: length(value))
        "#]],
    );
}

#[test]
fn map_functions() {
    check(
        &[
            r#"keys({ b = 1, a = 2 })"#,
            r#"keys({})"#,
            r#"keys({ "é" = 1, z = 2, "A" = 3, "10" = 4, "9" = 5 })"#,
            r#"keys(["a"])"#,
            r#"keys(null)"#,
            r#"keys("a")"#,
            r#"keys()"#,
            r#"keys({}, {})"#,
            r#"values({ b = 1, a = 2 })"#,
            r#"values({})"#,
            r#"values({ a = [1], b = { c = "d" }, c = null })"#,
            r#"values({ a = 1 })[1]"#,
            r#"values(["a"])"#,
            r#"values()"#,
            r#"lookup({ a = 1 }, "b", 0)"#,
            r#"lookup({ a = 1 }, "a")"#,
            r#"lookup({ a = 1 }, "a", 0)"#,
            r#"lookup({ "é" = "x" }, "é")"#,
            r#"lookup({ "1" = "x" }, 1)"#,
            r#"lookup({ a = null }, "a", 5)"#,
            r#"lookup({ a = 1 }, "b", null)"#,
            r#"lookup({ a = 1 }, "b", [1, 2])"#,
            r#"lookup({}, "k")"#,
            r#"lookup({ a = 1 }, "A")"#,
            r#"lookup(["a"], 0)"#,
            r#"lookup(null, "a", 1)"#,
            r#"lookup({ a = 1 }, ["a"])"#,
            r#"lookup({ a = 1 })"#,
            r#"lookup({ a = 1 }, "a", 1, 2)"#,
            r#"merge({ a = 1 }, { a = 2, b = 3 })"#,
            r#"merge({ b = 1 }, { a = 2 })"#,
            r#"merge({})"#,
            r#"merge()"#,
            r#"merge(null)"#,
            r#"merge(null, { a = 1 }, null)"#,
            r#"merge({ a = { x = 1 } }, { a = { y = 2 } })"#,
            r#"merge({ a = 1 }, { a = null })"#,
            r#"merge({ a = 1 }, ["b"])"#,
            r#"merge({ a = 1 }, "x")"#,
        ],
        expect![[r#"
            keys({ b = 1, a = 2 }) => ["a", "b"]
            keys({}) => []
            keys({ "é" = 1, z = 2, "A" = 3, "10" = 4, "9" = 5 }) => ["10", "9", "A", "z", "é"]
            keys(["a"]) => error[kcl::type_mismatch]: `keys` expects a map (at `["a"]`: this is a list)
            keys(null) => error[kcl::type_mismatch]: `keys` expects a map (at `null`: this is null)
            keys("a") => error[kcl::type_mismatch]: `keys` expects a map (at `"a"`: this is the string "a")
            keys() => error[kcl::wrong_arguments]: `keys` takes 1 argument, got 0 (at `keys()`: called here; help: usage: keys(map))
            keys({}, {}) => error[kcl::wrong_arguments]: `keys` takes 1 argument, got 2 (at `keys({}, {})`: called here; help: usage: keys(map))
            values({ b = 1, a = 2 }) => [2, 1]
            values({}) => []
            values({ a = [1], b = { c = "d" }, c = null }) => [[1], { "c" = "d" }, null]
            values({ a = 1 })[1] => error[kcl::index]: index 1 is out of range (at `1`: the list has 1 element)
            values(["a"]) => error[kcl::type_mismatch]: `values` expects a map (at `["a"]`: this is a list)
            values() => error[kcl::wrong_arguments]: `values` takes 1 argument, got 0 (at `values()`: called here; help: usage: values(map))
            lookup({ a = 1 }, "b", 0) => 0
            lookup({ a = 1 }, "a") => 1
            lookup({ a = 1 }, "a", 0) => 1
            lookup({ "é" = "x" }, "é") => "x"
            lookup({ "1" = "x" }, 1) => "x"
            lookup({ a = null }, "a", 5) => null
            lookup({ a = 1 }, "b", null) => null
            lookup({ a = 1 }, "b", [1, 2]) => [1, 2]
            lookup({}, "k") => error[kcl::function_error]: no key "k" and no default (at `"k"`: in this argument of `lookup`)
            lookup({ a = 1 }, "A") => error[kcl::function_error]: no key "A" and no default (at `"A"`: in this argument of `lookup`)
            lookup(["a"], 0) => error[kcl::type_mismatch]: `lookup` expects a map (at `["a"]`: this is a list)
            lookup(null, "a", 1) => error[kcl::type_mismatch]: `lookup` expects a map (at `null`: this is null)
            lookup({ a = 1 }, ["a"]) => error[kcl::type_mismatch]: `lookup` expects a string (at `["a"]`: this is a list)
            lookup({ a = 1 }) => error[kcl::wrong_arguments]: `lookup` takes 2 to 3 arguments, got 1 (at `lookup({ a = 1 })`: called here; help: usage: lookup(map, key, default))
            lookup({ a = 1 }, "a", 1, 2) => error[kcl::wrong_arguments]: `lookup` takes 2 to 3 arguments, got 4 (at `lookup({ a = 1 }, "a", 1, 2)`: called here; help: usage: lookup(map, key, default))
            merge({ a = 1 }, { a = 2, b = 3 }) => { "a" = 2, "b" = 3 }
            merge({ b = 1 }, { a = 2 }) => { "a" = 2, "b" = 1 }
            merge({}) => {}
            merge() => {}
            merge(null) => {}
            merge(null, { a = 1 }, null) => { "a" = 1 }
            merge({ a = { x = 1 } }, { a = { y = 2 } }) => { "a" = { "y" = 2 } }
            merge({ a = 1 }, { a = null }) => { "a" = null }
            merge({ a = 1 }, ["b"]) => error[kcl::type_mismatch]: `merge` expects maps (at `["b"]`: this is a list)
            merge({ a = 1 }, "x") => error[kcl::type_mismatch]: `merge` expects maps (at `"x"`: this is the string "x")
        "#]],
    );
}

#[test]
fn number_functions() {
    check(
        &[
            r#"max(3, 1, 2)"#,
            r#"max([3, 1, 2])"#,
            r#"max(5)"#,
            r#"max([7])"#,
            r#"max(-1, -5)"#,
            r#"max(1.5, 1)"#,
            r#"max(-0.5, -0.25)"#,
            r#"max()"#,
            r#"max([])"#,
            r#"max(1, "2")"#,
            r#"max([1, "2"])"#,
            r#"max([1], [2])"#,
            r#"max(null)"#,
            r#"max(1, null)"#,
            r#"max(90s, 1m)"#,
            r#"min(3, 1, 2)"#,
            r#"min([3, 1, 2])"#,
            r#"min(0)"#,
            r#"min(-2, 0.5)"#,
            r#"min([-1, -1])"#,
            r#"min()"#,
            r#"min([])"#,
            r#"min("1")"#,
            r#"min(1, true)"#,
            r#"min(10%, 20%)"#,
            r#"tonumber("42")"#,
            r#"tonumber("-1.5")"#,
            r#"tonumber(" 7 ")"#,
            r#"tonumber("1e3")"#,
            r#"tonumber("+5")"#,
            r#"tonumber("0.10")"#,
            r#"tonumber(".5")"#,
            r#"tonumber("5.")"#,
            r#"tonumber(3)"#,
            r#"tonumber(-3)"#,
            r#"tonumber(null)"#,
            r#"tonumber("x")"#,
            r#"tonumber("")"#,
            r#"tonumber("1,5")"#,
            r#"tonumber("0x10")"#,
            r#"tonumber("1_000")"#,
            r#"tonumber("inf")"#,
            r#"tonumber("NaN")"#,
            r#"tonumber("1e999")"#,
            r#"tonumber("٣")"#,
            r#"tonumber(true)"#,
            r#"tonumber([1])"#,
            r#"tonumber(90s)"#,
            r#"tonumber()"#,
            r#"tonumber("1", "2")"#,
            r#"tostring(90s)"#,
            r#"tostring(250ms)"#,
            r#"tostring(42)"#,
            r#"tostring(1.5)"#,
            r#"tostring(-3)"#,
            r#"tostring(0.1 + 0.2)"#,
            r#"tostring(true)"#,
            r#"tostring("x")"#,
            r#"tostring("")"#,
            r#"tostring(25%)"#,
            r#"tostring(12.5%)"#,
            r#"tostring(1..3)"#,
            r#"tostring(null)"#,
            r#"tostring([1])"#,
            r#"tostring({})"#,
            r#"tostring()"#,
            r#"tostring(1, 2)"#,
        ],
        expect![[r#"
            max(3, 1, 2) => 3
            max([3, 1, 2]) => 3
            max(5) => 5
            max([7]) => 7
            max(-1, -5) => -1
            max(1.5, 1) => 1.5
            max(-0.5, -0.25) => -0.25
            max() => error[kcl::wrong_arguments]: `max` needs at least one number (at `max()`: called here)
            max([]) => error[kcl::wrong_arguments]: `max` needs at least one number (at `max([])`: called here)
            max(1, "2") => error[kcl::type_mismatch]: `max` expects numbers (at `"2"`: this is the string "2")
            max([1, "2"]) => error[kcl::type_mismatch]: `max` expects numbers (at `[1, "2"]`: this is a list)
            max([1], [2]) => error[kcl::type_mismatch]: `max` expects numbers (at `[1]`: this is a list)
            max(null) => error[kcl::type_mismatch]: `max` expects numbers (at `null`: this is null)
            max(1, null) => error[kcl::type_mismatch]: `max` expects numbers (at `null`: this is null)
            max(90s, 1m) => error[kcl::type_mismatch]: `max` expects numbers (at `90s`: this is the duration 1m30s)
            min(3, 1, 2) => 1
            min([3, 1, 2]) => 1
            min(0) => 0
            min(-2, 0.5) => -2
            min([-1, -1]) => -1
            min() => error[kcl::wrong_arguments]: `min` needs at least one number (at `min()`: called here)
            min([]) => error[kcl::wrong_arguments]: `min` needs at least one number (at `min([])`: called here)
            min("1") => error[kcl::type_mismatch]: `min` expects numbers (at `"1"`: this is the string "1")
            min(1, true) => error[kcl::type_mismatch]: `min` expects numbers (at `true`: this is the bool true)
            min(10%, 20%) => error[kcl::type_mismatch]: `min` expects numbers (at `10%`: this is the percent 10%)
            tonumber("42") => 42
            tonumber("-1.5") => -1.5
            tonumber(" 7 ") => 7
            tonumber("1e3") => 1000
            tonumber("+5") => 5
            tonumber("0.10") => 0.1
            tonumber(".5") => 0.5
            tonumber("5.") => 5
            tonumber(3) => 3
            tonumber(-3) => -3
            tonumber(null) => null
            tonumber("x") => error[kcl::function_error]: "x" is not a number (at `"x"`: in this argument of `tonumber`)
            tonumber("") => error[kcl::function_error]: "" is not a number (at `""`: in this argument of `tonumber`)
            tonumber("1,5") => error[kcl::function_error]: "1,5" is not a number (at `"1,5"`: in this argument of `tonumber`)
            tonumber("0x10") => error[kcl::function_error]: "0x10" is not a number (at `"0x10"`: in this argument of `tonumber`)
            tonumber("1_000") => error[kcl::function_error]: "1_000" is not a number (at `"1_000"`: in this argument of `tonumber`)
            tonumber("inf") => error[kcl::function_error]: "inf" is not a number (at `"inf"`: in this argument of `tonumber`)
            tonumber("NaN") => error[kcl::function_error]: "NaN" is not a number (at `"NaN"`: in this argument of `tonumber`)
            tonumber("1e999") => error[kcl::function_error]: "1e999" is not a number (at `"1e999"`: in this argument of `tonumber`)
            tonumber("٣") => error[kcl::function_error]: "٣" is not a number (at `"٣"`: in this argument of `tonumber`)
            tonumber(true) => error[kcl::type_mismatch]: `tonumber` expects a string or a number (at `true`: this is the bool true)
            tonumber([1]) => error[kcl::type_mismatch]: `tonumber` expects a string or a number (at `[1]`: this is a list)
            tonumber(90s) => error[kcl::type_mismatch]: `tonumber` expects a string or a number (at `90s`: this is the duration 1m30s)
            tonumber() => error[kcl::wrong_arguments]: `tonumber` takes 1 argument, got 0 (at `tonumber()`: called here; help: usage: tonumber(value))
            tonumber("1", "2") => error[kcl::wrong_arguments]: `tonumber` takes 1 argument, got 2 (at `tonumber("1", "2")`: called here; help: usage: tonumber(value))
            tostring(90s) => "1m30s"
            tostring(250ms) => "250ms"
            tostring(42) => "42"
            tostring(1.5) => "1.5"
            tostring(-3) => "-3"
            tostring(0.1 + 0.2) => "0.30000000000000004"
            tostring(true) => "true"
            tostring("x") => "x"
            tostring("") => ""
            tostring(25%) => "25%"
            tostring(12.5%) => "12.5%"
            tostring(1..3) => "1..3"
            tostring(null) => null
            tostring([1]) => error[kcl::type_mismatch]: `tostring` expects a primitive value (at `[1]`: this is a list)
            tostring({}) => error[kcl::type_mismatch]: `tostring` expects a primitive value (at `{}`: this is an object)
            tostring() => error[kcl::wrong_arguments]: `tostring` takes 1 argument, got 0 (at `tostring()`: called here; help: usage: tostring(value))
            tostring(1, 2) => error[kcl::wrong_arguments]: `tostring` takes 1 argument, got 2 (at `tostring(1, 2)`: called here; help: usage: tostring(value))
        "#]],
    );
}

#[test]
fn encoding_functions() {
    check(
        &[
            r#"base64encode("hi")"#,
            r#"base64encode("")"#,
            r#"base64encode("a")"#,
            r#"base64encode("abc")"#,
            r#"base64encode("é")"#,
            r#"base64encode("\n")"#,
            r#"base64encode("??>")"#,
            r#"base64encode("???")"#,
            r#"base64encode(12)"#,
            r#"base64encode(false)"#,
            r#"base64encode()"#,
            r#"base64encode("a", "b")"#,
            r#"base64encode(["a"])"#,
            r#"base64encode(null)"#,
            r#"sha256("hi")"#,
            r#"sha256("")"#,
            r#"sha256("é")"#,
            r#"sha256(1)"#,
            r#"length(sha256("anything"))"#,
            r#"sha256()"#,
            r#"sha256("a", "b")"#,
            r#"sha256([])"#,
            r#"sha256(10s)"#,
        ],
        expect![[r#"
            base64encode("hi") => "aGk="
            base64encode("") => ""
            base64encode("a") => "YQ=="
            base64encode("abc") => "YWJj"
            base64encode("é") => "w6k="
            base64encode("\n") => "Cg=="
            base64encode("??>") => "Pz8+"
            base64encode("???") => "Pz8/"
            base64encode(12) => "MTI="
            base64encode(false) => "ZmFsc2U="
            base64encode() => error[kcl::wrong_arguments]: `base64encode` takes 1 argument, got 0 (at `base64encode()`: called here; help: usage: base64encode(string))
            base64encode("a", "b") => error[kcl::wrong_arguments]: `base64encode` takes 1 argument, got 2 (at `base64encode("a", "b")`: called here; help: usage: base64encode(string))
            base64encode(["a"]) => error[kcl::type_mismatch]: `base64encode` expects a string (at `["a"]`: this is a list)
            base64encode(null) => error[kcl::type_mismatch]: `base64encode` expects a string (at `null`: this is null)
            sha256("hi") => "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
            sha256("") => "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            sha256("é") => "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"
            sha256(1) => "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
            length(sha256("anything")) => 64
            sha256() => error[kcl::wrong_arguments]: `sha256` takes 1 argument, got 0 (at `sha256()`: called here; help: usage: sha256(string))
            sha256("a", "b") => error[kcl::wrong_arguments]: `sha256` takes 1 argument, got 2 (at `sha256("a", "b")`: called here; help: usage: sha256(string))
            sha256([]) => error[kcl::type_mismatch]: `sha256` expects a string (at `[]`: this is a list)
            sha256(10s) => error[kcl::type_mismatch]: `sha256` expects a string (at `10s`: this is the duration 10s)
        "#]],
    );
}

#[test]
fn file_function() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    std::fs::write(d.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(d.join("empty.txt"), "").unwrap();
    std::fs::write(d.join("template.sh"), "echo ${not_interpolated} é\n").unwrap();
    std::fs::write(d.join("1"), "one").unwrap();
    std::fs::write(d.join("binary.bin"), [0xff, 0xfe, 0x00]).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/x.sh"), "#!/bin/sh\n").unwrap();
    check_in(
        d,
        &[
            r#"file("hello.txt")"#,
            r#"file("empty.txt")"#,
            r#"file("template.sh")"#,
            r#"file("sub/x.sh")"#,
            r#"file(1)"#,
            r#"length(file("hello.txt"))"#,
            r#"file("missing.sh")"#,
            r#"file("sub")"#,
            r#"file("binary.bin")"#,
            r#"file()"#,
            r#"file("hello.txt", "x")"#,
            r#"file(["hello.txt"])"#,
            r#"file(null)"#,
        ],
        expect![[r##"
            file("hello.txt") => "hello\n"
            file("empty.txt") => ""
            file("template.sh") => "echo ${not_interpolated} é\n"
            file("sub/x.sh") => "#!/bin/sh\n"
            file(1) => "one"
            length(file("hello.txt")) => 6
            file("missing.sh") => error[kcl::function_error]: cannot read <dir>/missing.sh: no such file or directory (at `"missing.sh"`: in this argument of `file`)
            file("sub") => error[kcl::function_error]: cannot read <dir>/sub: is a directory (at `"sub"`: in this argument of `file`)
            file("binary.bin") => error[kcl::function_error]: cannot read <dir>/binary.bin: stream did not contain valid UTF-8 (at `"binary.bin"`: in this argument of `file`)
            file() => error[kcl::wrong_arguments]: `file` takes 1 argument, got 0 (at `file()`: called here; help: usage: file(path))
            file("hello.txt", "x") => error[kcl::wrong_arguments]: `file` takes 1 argument, got 2 (at `file("hello.txt", "x")`: called here; help: usage: file(path))
            file(["hello.txt"]) => error[kcl::type_mismatch]: `file` expects a string (at `["hello.txt"]`: this is a list)
            file(null) => error[kcl::type_mismatch]: `file` expects a string (at `null`: this is null)
        "##]],
    );
}

/// `file()` paths are relative to the directory of the file that calls it, not to the
/// configuration's root or the working directory.
#[test]
fn file_paths_are_relative_to_the_calling_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("x.sh"), "root\n").unwrap();
    std::fs::write(d.join("sub/x.sh"), "sub\n").unwrap();
    let mut sources = Sources::new();
    sources.add("main.kcl", d.join("main.kcl"), "output \"a\" {\n  value = file(\"x.sh\")\n}\n");
    sources.add("sub/other.kcl", d.join("sub/other.kcl"), "output \"b\" {\n  value = file(\"x.sh\")\n}\n");
    let loaded = load_sources(sources, &Inputs::default());
    assert_eq!(loaded.diagnostics, vec![]);
    let outputs: Vec<(String, String)> =
        loaded.model.unwrap().outputs.iter().map(|o| (o.name.clone(), show(&o.value))).collect();
    assert_eq!(outputs, vec![("a".into(), r#""root\n""#.into()), ("b".into(), r#""sub\n""#.into())]);
}

#[test]
fn calls() {
    check(
        &[
            r#"upper(lower("aB"))"#,
            r#"length(split(",", "a,b,c"))"#,
            r#"join("-", [for s in split(",", "a,b") : upper(s)])"#,
            r#"keys(merge({ b = 1 }, { a = 2 }))[0]"#,
            r#"max([for s in ["1", "22", "333"] : length(s)])"#,
            r#""${upper("a")}-${length([1, 2])}""#,
            r#"jion(",", ["a"])"#,
            r#"Upper("a")"#,
            r#"frobnicate()"#,
            r#"upper(nope)"#,
            r#"upper(1 / 0)"#,
            r#"upper(1 / 0, 2 / 0)"#,
            r#"length(cluster.core.node_group.g.group_names)"#,
            r#"upper(cluster.core.node_group.g.group_names[0])"#,
            r#"join(",", cluster.core.node_group.g.group_names)"#,
            r#"concat(["a"], cluster.core.node_group.g.group_names)"#,
            r#"contains(cluster.core.node_group.g.group_names, "a")"#,
            // docs/language.md (References) says a call with an argument that merely contains
            // an unknown value is unknown, naming `length(cluster.core.node_group)`; the
            // evaluator's structural functions (keys, length, merge, concat, values, lookup)
            // are unknown only when the argument itself is.
            r#"keys(cluster.core.node_group)"#,
            r#"length(cluster.core.node_group)"#,
            r#"lookup(cluster.core.node_group.g, "image")"#,
            r#"[for name, g in cluster.core.node_group : name]"#,
            // An unknown argument hides the wrong argument count until the value is known.
            r#"upper(cluster.core.node_group.g.group_names, "extra")"#,
            r#"length(cluster.core.node_group.g.group_names, 1)"#,
        ],
        expect![[r#"
            upper(lower("aB")) => "AB"
            length(split(",", "a,b,c")) => 3
            join("-", [for s in split(",", "a,b") : upper(s)]) => "A-B"
            keys(merge({ b = 1 }, { a = 2 }))[0] => "a"
            max([for s in ["1", "22", "333"] : length(s)]) => 3
            "${upper("a")}-${length([1, 2])}" => "A-2"
            jion(",", ["a"]) => error[kcl::unknown_function]: unknown function `jion` (at `jion`: not a function; help: did you mean `join`?)
            Upper("a") => error[kcl::unknown_function]: unknown function `Upper` (at `Upper`: not a function; help: did you mean `upper`?)
            frobnicate() => error[kcl::unknown_function]: unknown function `frobnicate` (at `frobnicate`: not a function; help: the functions are base64encode, concat, contains, file, format, join, keys, length, lookup, lower, max, merge, min, replace, sha256, split, tonumber, tostring, trim, upper, values)
            upper(nope) => error[kcl::undefined_reference]: unknown name `nope` (at `nope`: not defined; help: references start with var., local., cluster. or each.; a string needs quotes)
            upper(1 / 0) => error[kcl::division_by_zero]: division by zero (at `0`: this is zero)
            upper(1 / 0, 2 / 0) => error[kcl::division_by_zero]: division by zero (at `0`: this is zero) / error[kcl::division_by_zero]: division by zero (at `0`: this is zero)
            length(cluster.core.node_group.g.group_names) => (known after apply)
            upper(cluster.core.node_group.g.group_names[0]) => (known after apply)
            join(",", cluster.core.node_group.g.group_names) => (known after apply)
            concat(["a"], cluster.core.node_group.g.group_names) => (known after apply)
            contains(cluster.core.node_group.g.group_names, "a") => (known after apply)
            keys(cluster.core.node_group) => ["g"]
            length(cluster.core.node_group) => 1
            lookup(cluster.core.node_group.g, "image") => "img"
            [for name, g in cluster.core.node_group : name] => ["g"]
            upper(cluster.core.node_group.g.group_names, "extra") => (known after apply)
            length(cluster.core.node_group.g.group_names, 1) => (known after apply)
        "#]],
    );
}

#[test]
fn sensitivity_survives_every_function() {
    check(
        &[
            r#"var.secret"#,
            r#"upper(var.plain)"#,
            r#"upper(var.secret)"#,
            r#"lower(var.secret)"#,
            r#"trim(var.secret, "h2")"#,
            r#"replace(var.secret, "hunter", "x")"#,
            r#"split("n", var.secret)"#,
            r#"join(",", [var.secret, "b"])"#,
            r#"format("%s!", var.secret)"#,
            r#"format("%d", var.pin)"#,
            r#"length(var.secret)"#,
            r#"length(local.plain_list)"#,
            r#"sha256(var.secret)"#,
            r#"base64encode(var.secret)"#,
            r#"contains([var.secret], "x")"#,
            r#"concat(local.plain_list, [var.secret])"#,
            r#"keys({ (var.secret) = 1 })"#,
            r#"values({ a = var.pin })"#,
            r#"lookup({ a = var.secret }, "b", "d")"#,
            r#"merge({ a = 1 }, { b = var.secret })"#,
            r#"max(var.pin, 1)"#,
            r#"min([var.pin, 1])"#,
            r#"tostring(var.pin)"#,
            r#"tonumber(var.pin)"#,
            r#"upper(local.from_secret)"#,
            r#"length(split("-", local.from_secret))"#,
            r#"tostring(length(var.secret) > 3)"#,
            r#"var.secret == "x" ? "a" : "b""#,
            // Error messages and labels show the sensitive value itself.
            r#"file(var.secret)"#,
            r#"tonumber(var.secret)"#,
            r#"lookup({}, var.secret)"#,
            r#"max(var.secret)"#,
        ],
        expect![[r#"
            var.secret => "hunter2" (sensitive)
            upper(var.plain) => "OPEN"
            upper(var.secret) => "HUNTER2" (sensitive)
            lower(var.secret) => "hunter2" (sensitive)
            trim(var.secret, "h2") => "unter" (sensitive)
            replace(var.secret, "hunter", "x") => "x2" (sensitive)
            split("n", var.secret) => ["hu", "ter2"] (sensitive)
            join(",", [var.secret, "b"]) => "hunter2,b" (sensitive)
            format("%s!", var.secret) => "hunter2!" (sensitive)
            format("%d", var.pin) => "1234" (sensitive)
            length(var.secret) => 7 (sensitive)
            length(local.plain_list) => 2
            sha256(var.secret) => "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7" (sensitive)
            base64encode(var.secret) => "aHVudGVyMg==" (sensitive)
            contains([var.secret], "x") => false (sensitive)
            concat(local.plain_list, [var.secret]) => ["a", "b", "hunter2"] (sensitive)
            keys({ (var.secret) = 1 }) => ["hunter2"] (sensitive)
            values({ a = var.pin }) => [1234] (sensitive)
            lookup({ a = var.secret }, "b", "d") => "d" (sensitive)
            merge({ a = 1 }, { b = var.secret }) => { "a" = 1, "b" = "hunter2" } (sensitive)
            max(var.pin, 1) => 1234 (sensitive)
            min([var.pin, 1]) => 1 (sensitive)
            tostring(var.pin) => "1234" (sensitive)
            tonumber(var.pin) => 1234 (sensitive)
            upper(local.from_secret) => "TOKEN-HUNTER2" (sensitive)
            length(split("-", local.from_secret)) => 2 (sensitive)
            tostring(length(var.secret) > 3) => "true" (sensitive)
            var.secret == "x" ? "a" : "b" => "b" (sensitive)
            file(var.secret) => error[kcl::function_error]: cannot read ./hunter2: no such file or directory (at `var.secret`: in this argument of `file`)
            tonumber(var.secret) => error[kcl::function_error]: "hunter2" is not a number (at `var.secret`: in this argument of `tonumber`)
            lookup({}, var.secret) => error[kcl::function_error]: no key "hunter2" and no default (at `var.secret`: in this argument of `lookup`)
            max(var.secret) => error[kcl::type_mismatch]: `max` expects numbers (at `var.secret`: this is the string "hunter2")
        "#]],
    );
}
