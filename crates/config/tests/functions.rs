//! Every evaluator function, case by case: each expression is the value of an output in a
//! small configuration, evaluated through `load_sources`, and rendered on one line as
//! `EXPR => VALUE` (strings quoted, `(sensitive)` when the output is marked) or
//! `EXPR => error[code]: message (at `text`: label; also at `text`: label; help: …)`.
//!
//! The expected blocks were checked by hand against `docs/language.md`; `UPDATE_EXPECT=1`
//! rewrites them, so read the diff before accepting it.

use std::path::Path;

use drydock_config::value::Value;
use drydock_config::{load_sources, Inputs, Loaded};
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
        let errors = render(&loaded);
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

/// Every diagnostic on one line: code, message, the text at its span with its label, the
/// secondary places with theirs, and the help.
fn render(loaded: &Loaded) -> String {
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
            for l in &d.secondary {
                extra.push(format!("also at `{}`: {}", loaded.sources.text(l.span), l.text));
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
    errors.join(" / ")
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
            trim() => error[kcl::wrong_arguments]: `trim` takes 1 to 2 arguments, got 0 (at `trim()`: called here; help: usage: trim(string, characters?))
            trim("a", "b", "c") => error[kcl::wrong_arguments]: `trim` takes 1 to 2 arguments, got 3 (at `trim("a", "b", "c")`: called here; help: usage: trim(string, characters?))
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
            // An element that cannot be text makes the list an argument of the wrong type:
            // kcl::type_mismatch, as docs/language.md (Functions) says, naming the element.
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
            join(",", [["a"]]) => error[kcl::type_mismatch]: `join` expects a list of strings (at `[["a"]]`: element 0 is a list)
            join(",", [{ a = 1 }]) => error[kcl::type_mismatch]: `join` expects a list of strings (at `[{ a = 1 }]`: element 0 is an object)
            join(",", [null]) => error[kcl::type_mismatch]: `join` expects a list of strings (at `[null]`: element 0 is null)
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
            format() => error[kcl::wrong_arguments]: `format` takes at least 1 argument, got 0 (at `format()`: called here; help: usage: format(spec, values…))
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
            // `concat(list, …)` takes at least one list, as min() and max() take one number.
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
            concat() => error[kcl::wrong_arguments]: `concat` takes at least 1 argument, got 0 (at `concat()`: called here; help: usage: concat(list, …))
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
            // `merge(map, …)` takes at least one map.
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
            lookup({ a = 1 }) => error[kcl::wrong_arguments]: `lookup` takes 2 to 3 arguments, got 1 (at `lookup({ a = 1 })`: called here; help: usage: lookup(map, key, default?))
            lookup({ a = 1 }, "a", 1, 2) => error[kcl::wrong_arguments]: `lookup` takes 2 to 3 arguments, got 4 (at `lookup({ a = 1 }, "a", 1, 2)`: called here; help: usage: lookup(map, key, default?))
            merge({ a = 1 }, { a = 2, b = 3 }) => { "a" = 2, "b" = 3 }
            merge({ b = 1 }, { a = 2 }) => { "a" = 2, "b" = 1 }
            merge({}) => {}
            merge() => error[kcl::wrong_arguments]: `merge` takes at least 1 argument, got 0 (at `merge()`: called here; help: usage: merge(map, …))
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
            max() => error[kcl::wrong_arguments]: `max` takes at least 1 argument, got 0 (at `max()`: called here; help: usage: max(numbers…))
            max([]) => error[kcl::wrong_arguments]: `max` needs at least one number (at `max([])`: called here)
            max(1, "2") => error[kcl::type_mismatch]: `max` expects numbers (at `"2"`: this is the string "2")
            max([1, "2"]) => error[kcl::type_mismatch]: `max` expects numbers (at `[1, "2"]`: element 1 is the string "2")
            max([1], [2]) => error[kcl::type_mismatch]: `max` expects numbers (at `[1]`: this is a list)
            max(null) => error[kcl::type_mismatch]: `max` expects numbers (at `null`: this is null)
            max(1, null) => error[kcl::type_mismatch]: `max` expects numbers (at `null`: this is null)
            max(90s, 1m) => error[kcl::type_mismatch]: `max` expects numbers (at `90s`: this is the duration 1m30s)
            min(3, 1, 2) => 1
            min([3, 1, 2]) => 1
            min(0) => 0
            min(-2, 0.5) => -2
            min([-1, -1]) => -1
            min() => error[kcl::wrong_arguments]: `min` takes at least 1 argument, got 0 (at `min()`: called here; help: usage: min(numbers…))
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
    std::fs::write(d.join("late.bin"), b"ok line\nthen \xc3\x28 bad").unwrap();
    std::fs::write(d.join("bom.txt"), "\u{feff}text").unwrap();
    // One byte over the limit of what file() reads.
    std::fs::write(d.join("huge.txt"), vec![b'x'; (4 << 20) + 1]).unwrap();
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
            r#"file("late.bin")"#,
            r#"file("bom.txt")"#,
            r#"length(file("huge.txt"))"#,
            r#"file("/dev/zero")"#,
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
            file("sub") => error[kcl::function_error]: cannot read <dir>/sub: it is a directory (at `"sub"`: in this argument of `file`)
            file("binary.bin") => error[kcl::function_error]: cannot read <dir>/binary.bin: it is not UTF-8 text: the first invalid byte is at line 1, column 1 (at `"binary.bin"`: in this argument of `file`)
            file("late.bin") => error[kcl::function_error]: cannot read <dir>/late.bin: it is not UTF-8 text: the first invalid byte is at line 2, column 6 (at `"late.bin"`: in this argument of `file`)
            file("bom.txt") => "text"
            length(file("huge.txt")) => error[kcl::function_error]: cannot read <dir>/huge.txt: it is larger than the limit of 4 MiB (at `"huge.txt"`: in this argument of `file`)
            file("/dev/zero") => error[kcl::function_error]: cannot read /dev/zero: it is not a regular file (a device, a pipe or a socket) (at `"/dev/zero"`: in this argument of `file`)
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
            // docs/language.md (References): any call one of whose arguments merely contains
            // a value known only after apply is unknown, `length(cluster.core.node_group)`
            // included; no function is an exception, not even keys() whose keys are known.
            r#"keys(cluster.core.node_group)"#,
            r#"values(cluster.core.node_group)"#,
            r#"length(cluster.core.node_group)"#,
            r#"length(cluster.core.node_group.g)"#,
            r#"lookup(cluster.core.node_group.g, "image")"#,
            r#"lookup({ a = cluster.core.node_group.g.group_names }, "b", 1)"#,
            r#"merge({ a = 1 }, cluster.core.node_group)"#,
            r#"concat(["a"], [cluster.core.node_group.g.instance_ids])"#,
            r#"contains(["a", cluster.core.node_group.g.group_names], "a")"#,
            r#"upper([cluster.core.node_group.g.group_names])"#,
            r#"format("%v", { ids = cluster.core.node_group.g.instance_ids })"#,
            // …while a `for` over such a collection is known, and so is what is computed
            // from its (known) result.
            r#"[for name, g in cluster.core.node_group : name]"#,
            r#"length([for name, g in cluster.core.node_group : name])"#,
            r#"length(cluster.core.node_group.g.instance_types)"#,
            // The argument count is checked first: an unknown argument does not hide it.
            r#"upper(cluster.core.node_group.g.group_names, "extra")"#,
            r#"length(cluster.core.node_group.g.group_names, 1)"#,
            r#"keys(cluster.core.node_group, cluster.core.node_group)"#,
            r#"lookup(cluster.core.node_group.g)"#,
            r#"replace(cluster.core.node_group.g.group_names[0], "a")"#,
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
            keys(cluster.core.node_group) => (known after apply)
            values(cluster.core.node_group) => (known after apply)
            length(cluster.core.node_group) => (known after apply)
            length(cluster.core.node_group.g) => (known after apply)
            lookup(cluster.core.node_group.g, "image") => (known after apply)
            lookup({ a = cluster.core.node_group.g.group_names }, "b", 1) => (known after apply)
            merge({ a = 1 }, cluster.core.node_group) => (known after apply)
            concat(["a"], [cluster.core.node_group.g.instance_ids]) => (known after apply)
            contains(["a", cluster.core.node_group.g.group_names], "a") => (known after apply)
            upper([cluster.core.node_group.g.group_names]) => (known after apply)
            format("%v", { ids = cluster.core.node_group.g.instance_ids }) => (known after apply)
            [for name, g in cluster.core.node_group : name] => ["g"]
            length([for name, g in cluster.core.node_group : name]) => 1
            length(cluster.core.node_group.g.instance_types) => 1
            upper(cluster.core.node_group.g.group_names, "extra") => error[kcl::wrong_arguments]: `upper` takes 1 argument, got 2 (at `upper(cluster.core.node_group.g.group_names, "extra")`: called here; help: usage: upper(string))
            length(cluster.core.node_group.g.group_names, 1) => error[kcl::wrong_arguments]: `length` takes 1 argument, got 2 (at `length(cluster.core.node_group.g.group_names, 1)`: called here; help: usage: length(value))
            keys(cluster.core.node_group, cluster.core.node_group) => error[kcl::wrong_arguments]: `keys` takes 1 argument, got 2 (at `keys(cluster.core.node_group, cluster.core.node_group)`: called here; help: usage: keys(map))
            lookup(cluster.core.node_group.g) => error[kcl::wrong_arguments]: `lookup` takes 2 to 3 arguments, got 1 (at `lookup(cluster.core.node_group.g)`: called here; help: usage: lookup(map, key, default?))
            replace(cluster.core.node_group.g.group_names[0], "a") => error[kcl::wrong_arguments]: `replace` takes 3 arguments, got 2 (at `replace(cluster.core.node_group.g.group_names[0], "a")`: called here; help: usage: replace(string, search, replacement))
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
            // `var` and `local` on their own hold the sensitive values, so they are sensitive.
            r#"var["secret"]"#,
            r#"local["from_secret"]"#,
            r#"[for k, v in var : v if k == "pin"]"#,
            r#"length(var)"#,
            // Errors about a sensitive argument describe it without showing it; more cases
            // in sensitive_arguments_in_function_errors.
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
            var["secret"] => "hunter2" (sensitive)
            local["from_secret"] => "token-hunter2" (sensitive)
            [for k, v in var : v if k == "pin"] => [1234] (sensitive)
            length(var) => 3 (sensitive)
            file(var.secret) => error[kcl::function_error]: cannot read (sensitive value): no such file or directory (at `var.secret`: in this argument of `file`)
            tonumber(var.secret) => error[kcl::function_error]: (sensitive value) is not a number (at `var.secret`: in this argument of `tonumber`)
            lookup({}, var.secret) => error[kcl::function_error]: no key (sensitive value) and no default (at `var.secret`: in this argument of `lookup`)
            max(var.secret) => error[kcl::type_mismatch]: `max` expects numbers (at `var.secret`: this is a sensitive string)
        "#]],
    );
}

/// Every function that can show an argument in an error, given a sensitive one (or one
/// derived from it): the error describes it by its type, or says `(sensitive value)`.
#[test]
fn sensitive_arguments_in_function_errors() {
    check(
        &[
            r#"base64encode([var.secret])"#,
            r#"base64encode(var.secret, var.pin)"#,
            r#"concat(var.secret)"#,
            r#"concat(["a"], var.pin)"#,
            r#"contains(var.secret, "h")"#,
            r#"contains({ k = var.pin }, 1)"#,
            r#"file(var.secret)"#,
            r#"file("${var.secret}.sh")"#,
            r#"file([var.secret])"#,
            r#"format("%s %s ${var.secret}", "a")"#,
            r#"format("${var.secret}%x", 1)"#,
            r#"format("%d", var.secret)"#,
            r#"format([var.secret], 1)"#,
            r#"join(",", var.secret)"#,
            r#"join(",", [[var.secret]])"#,
            r#"join(",", [var.pin, {}])"#,
            r#"join([var.secret], ["a"])"#,
            r#"keys(var.secret)"#,
            r#"keys(var.pin)"#,
            r#"length(var.pin)"#,
            r#"length(var.pin > 1)"#,
            r#"lookup(var.secret, "a")"#,
            r#"lookup({}, var.secret)"#,
            r#"lookup({}, var.pin)"#,
            r#"lookup({ a = 1 }, local.from_secret)"#,
            r#"lookup({ a = 1 }, [var.secret])"#,
            r#"lookup({ a = var.secret }, "b")"#,
            r#"lower([var.secret])"#,
            r#"lower({ k = var.secret })"#,
            r#"max(var.secret)"#,
            r#"max(1, var.secret)"#,
            r#"max([var.pin, var.secret])"#,
            r#"min(local.from_secret)"#,
            r#"min([1, local.from_secret])"#,
            r#"min(var.pin, [var.pin])"#,
            r#"merge(var.secret)"#,
            r#"merge({}, var.pin)"#,
            r#"merge({}, [var.secret])"#,
            r#"replace([var.secret], "a", "b")"#,
            r#"replace("a", "b", [var.secret])"#,
            r#"replace(var.secret, "", "x")"#,
            r#"sha256([var.pin])"#,
            r#"sha256({ k = var.secret })"#,
            r#"split(",", [var.secret])"#,
            r#"split([var.pin], "a")"#,
            r#"split("", var.secret)"#,
            r#"tonumber(var.secret)"#,
            r#"tonumber(local.from_secret)"#,
            r#"tonumber(upper(var.secret))"#,
            r#"tonumber([var.pin])"#,
            r#"tonumber(var.secret == "x")"#,
            r#"tostring([var.secret])"#,
            r#"tostring({ k = var.pin })"#,
            r#"trim([var.secret])"#,
            r#"trim("x", [var.secret])"#,
            r#"upper([var.secret])"#,
            r#"upper({ (var.secret) = 1 })"#,
            r#"values(var.secret)"#,
            r#"values([var.pin])"#,
        ],
        expect![[r#"
            base64encode([var.secret]) => error[kcl::type_mismatch]: `base64encode` expects a string (at `[var.secret]`: this is a sensitive list)
            base64encode(var.secret, var.pin) => error[kcl::wrong_arguments]: `base64encode` takes 1 argument, got 2 (at `base64encode(var.secret, var.pin)`: called here; help: usage: base64encode(string))
            concat(var.secret) => error[kcl::type_mismatch]: `concat` expects lists (at `var.secret`: this is a sensitive string)
            concat(["a"], var.pin) => error[kcl::type_mismatch]: `concat` expects lists (at `var.pin`: this is a sensitive number)
            contains(var.secret, "h") => error[kcl::type_mismatch]: `contains` expects a list (at `var.secret`: this is a sensitive string)
            contains({ k = var.pin }, 1) => error[kcl::type_mismatch]: `contains` expects a list (at `{ k = var.pin }`: this is a sensitive object)
            file(var.secret) => error[kcl::function_error]: cannot read (sensitive value): no such file or directory (at `var.secret`: in this argument of `file`)
            file("${var.secret}.sh") => error[kcl::function_error]: cannot read (sensitive value): no such file or directory (at `"${var.secret}.sh"`: in this argument of `file`)
            file([var.secret]) => error[kcl::type_mismatch]: `file` expects a string (at `[var.secret]`: this is a sensitive list)
            format("%s %s ${var.secret}", "a") => error[kcl::function_error]: not enough values for (sensitive value) (at `"%s %s ${var.secret}"`: in this argument of `format`)
            format("${var.secret}%x", 1) => error[kcl::function_error]: unknown format verb (sensitive value); use %s, %d, %v, %q or %% (at `"${var.secret}%x"`: in this argument of `format`)
            format("%d", var.secret) => error[kcl::function_error]: %d needs a number, found string (at `"%d"`: in this argument of `format`)
            format([var.secret], 1) => error[kcl::type_mismatch]: `format` expects a string (at `[var.secret]`: this is a sensitive list)
            join(",", var.secret) => error[kcl::type_mismatch]: `join` expects a list (at `var.secret`: this is a sensitive string)
            join(",", [[var.secret]]) => error[kcl::type_mismatch]: `join` expects a list of strings (at `[[var.secret]]`: an element is a sensitive list)
            join(",", [var.pin, {}]) => error[kcl::type_mismatch]: `join` expects a list of strings (at `[var.pin, {}]`: an element is a sensitive object)
            join([var.secret], ["a"]) => error[kcl::type_mismatch]: `join` expects a string (at `[var.secret]`: this is a sensitive list)
            keys(var.secret) => error[kcl::type_mismatch]: `keys` expects a map (at `var.secret`: this is a sensitive string)
            keys(var.pin) => error[kcl::type_mismatch]: `keys` expects a map (at `var.pin`: this is a sensitive number)
            length(var.pin) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `var.pin`: this is a sensitive number)
            length(var.pin > 1) => error[kcl::type_mismatch]: `length` expects a list, a map or a string (at `var.pin > 1`: this is a sensitive bool)
            lookup(var.secret, "a") => error[kcl::type_mismatch]: `lookup` expects a map (at `var.secret`: this is a sensitive string)
            lookup({}, var.secret) => error[kcl::function_error]: no key (sensitive value) and no default (at `var.secret`: in this argument of `lookup`)
            lookup({}, var.pin) => error[kcl::function_error]: no key (sensitive value) and no default (at `var.pin`: in this argument of `lookup`)
            lookup({ a = 1 }, local.from_secret) => error[kcl::function_error]: no key (sensitive value) and no default (at `local.from_secret`: in this argument of `lookup`)
            lookup({ a = 1 }, [var.secret]) => error[kcl::type_mismatch]: `lookup` expects a string (at `[var.secret]`: this is a sensitive list)
            lookup({ a = var.secret }, "b") => error[kcl::function_error]: no key "b" and no default (at `"b"`: in this argument of `lookup`)
            lower([var.secret]) => error[kcl::type_mismatch]: `lower` expects a string (at `[var.secret]`: this is a sensitive list)
            lower({ k = var.secret }) => error[kcl::type_mismatch]: `lower` expects a string (at `{ k = var.secret }`: this is a sensitive object)
            max(var.secret) => error[kcl::type_mismatch]: `max` expects numbers (at `var.secret`: this is a sensitive string)
            max(1, var.secret) => error[kcl::type_mismatch]: `max` expects numbers (at `var.secret`: this is a sensitive string)
            max([var.pin, var.secret]) => error[kcl::type_mismatch]: `max` expects numbers (at `[var.pin, var.secret]`: an element is a sensitive string)
            min(local.from_secret) => error[kcl::type_mismatch]: `min` expects numbers (at `local.from_secret`: this is a sensitive string)
            min([1, local.from_secret]) => error[kcl::type_mismatch]: `min` expects numbers (at `[1, local.from_secret]`: an element is a sensitive string)
            min(var.pin, [var.pin]) => error[kcl::type_mismatch]: `min` expects numbers (at `[var.pin]`: this is a sensitive list)
            merge(var.secret) => error[kcl::type_mismatch]: `merge` expects maps (at `var.secret`: this is a sensitive string)
            merge({}, var.pin) => error[kcl::type_mismatch]: `merge` expects maps (at `var.pin`: this is a sensitive number)
            merge({}, [var.secret]) => error[kcl::type_mismatch]: `merge` expects maps (at `[var.secret]`: this is a sensitive list)
            replace([var.secret], "a", "b") => error[kcl::type_mismatch]: `replace` expects a string (at `[var.secret]`: this is a sensitive list)
            replace("a", "b", [var.secret]) => error[kcl::type_mismatch]: `replace` expects a string (at `[var.secret]`: this is a sensitive list)
            replace(var.secret, "", "x") => error[kcl::function_error]: the search string is empty (at `""`: in this argument of `replace`)
            sha256([var.pin]) => error[kcl::type_mismatch]: `sha256` expects a string (at `[var.pin]`: this is a sensitive list)
            sha256({ k = var.secret }) => error[kcl::type_mismatch]: `sha256` expects a string (at `{ k = var.secret }`: this is a sensitive object)
            split(",", [var.secret]) => error[kcl::type_mismatch]: `split` expects a string (at `[var.secret]`: this is a sensitive list)
            split([var.pin], "a") => error[kcl::type_mismatch]: `split` expects a string (at `[var.pin]`: this is a sensitive list)
            split("", var.secret) => error[kcl::function_error]: the separator is empty (at `""`: in this argument of `split`)
            tonumber(var.secret) => error[kcl::function_error]: (sensitive value) is not a number (at `var.secret`: in this argument of `tonumber`)
            tonumber(local.from_secret) => error[kcl::function_error]: (sensitive value) is not a number (at `local.from_secret`: in this argument of `tonumber`)
            tonumber(upper(var.secret)) => error[kcl::function_error]: (sensitive value) is not a number (at `upper(var.secret)`: in this argument of `tonumber`)
            tonumber([var.pin]) => error[kcl::type_mismatch]: `tonumber` expects a string or a number (at `[var.pin]`: this is a sensitive list)
            tonumber(var.secret == "x") => error[kcl::type_mismatch]: `tonumber` expects a string or a number (at `var.secret == "x"`: this is a sensitive bool)
            tostring([var.secret]) => error[kcl::type_mismatch]: `tostring` expects a primitive value (at `[var.secret]`: this is a sensitive list)
            tostring({ k = var.pin }) => error[kcl::type_mismatch]: `tostring` expects a primitive value (at `{ k = var.pin }`: this is a sensitive object)
            trim([var.secret]) => error[kcl::type_mismatch]: `trim` expects a string (at `[var.secret]`: this is a sensitive list)
            trim("x", [var.secret]) => error[kcl::type_mismatch]: `trim` expects a string (at `[var.secret]`: this is a sensitive list)
            upper([var.secret]) => error[kcl::type_mismatch]: `upper` expects a string (at `[var.secret]`: this is a sensitive list)
            upper({ (var.secret) = 1 }) => error[kcl::type_mismatch]: `upper` expects a string (at `{ (var.secret) = 1 }`: this is a sensitive object)
            values(var.secret) => error[kcl::type_mismatch]: `values` expects a map (at `var.secret`: this is a sensitive string)
            values([var.pin]) => error[kcl::type_mismatch]: `values` expects a map (at `[var.pin]`: this is a sensitive list)
        "#]],
    );
}

/// Operators, indexes, attributes, templates, object keys and `for`: the same.
#[test]
fn sensitive_values_in_expression_errors() {
    check(
        &[
            r#"var.secret + 1"#,
            r#"1 - var.pin * "x""#,
            r#"-var.secret"#,
            r#"!var.pin"#,
            r#"var.secret && true"#,
            r#"false || var.secret"#,
            r#"var.pin > 1 && var.secret"#,
            r#"var.secret ? 1 : 2"#,
            r#"var.pin..1"#,
            r#"var.secret..3"#,
            r#"1..var.secret"#,
            r#"var.secret < 1"#,
            r#"local.plain_list[var.pin]"#,
            r#"[var.secret][5]"#,
            r#"local.plain_list[var.secret]"#,
            r#"{ a = 1 }[var.secret]"#,
            // Without the sensitivity, `did you mean` would name the sensitive key.
            r#"{ (var.secret) = 1 }["huntr2"]"#,
            r#"{ a = var.pin }[var.pin]"#,
            r#"var.secret[0]"#,
            r#"var.secret.attr"#,
            r#"{ (var.secret) = 1 }.huntr2"#,
            r#"{ name = var.secret }.nme"#,
            r#""${[var.secret]}""#,
            r#""x-${{ k = var.pin }}""#,
            r#"{ (var.secret) = 1, (lower(var.secret)) = 2 }"#,
            r#"{ ([var.secret]) = 1 }"#,
            // Names bound by `for` over a sensitive collection are sensitive.
            r#"[for s in [var.secret] : tonumber(s)]"#,
            r#"[for i, s in [var.secret] : local.plain_list[i + 5]]"#,
            r#"[for s in local.plain_list : tonumber("${s}${var.pin}")]"#,
            r#"{ for s in [var.secret, var.secret] : s => 1 }"#,
            r#"[for s in var.secret : s]"#,
            r#"[for s in [var.secret] : s if s]"#,
            r#"{ for s in [var.secret] : [s] => 1 }"#,
            r#"[for s in [var.secret] : upper(s)]"#,
            r#"tonumber(var["secret"])"#,
            r#"tonumber(local["from_secret"])"#,
            r#"[for k, v in var : tonumber(v)]"#,
            r#"var.plain + local.plain_list[0]"#,
        ],
        expect![[r#"
            var.secret + 1 => error[kcl::type_mismatch]: `+` needs numbers (at `var.secret`: this is a sensitive string)
            1 - var.pin * "x" => error[kcl::type_mismatch]: `*` needs numbers (at `"x"`: this is the string "x")
            -var.secret => error[kcl::type_mismatch]: `-` needs a number (at `var.secret`: this is a sensitive string)
            !var.pin => error[kcl::type_mismatch]: `!` needs a bool (at `var.pin`: this is a sensitive number)
            var.secret && true => error[kcl::type_mismatch]: `&&` needs bools (at `var.secret`: this is a sensitive string)
            false || var.secret => error[kcl::type_mismatch]: `||` needs bools (at `var.secret`: this is a sensitive string)
            var.pin > 1 && var.secret => error[kcl::type_mismatch]: `&&` needs bools (at `var.secret`: this is a sensitive string)
            var.secret ? 1 : 2 => error[kcl::type_mismatch]: a condition must be a bool (at `var.secret`: this is a sensitive string)
            var.pin..1 => error[kcl::invalid_value]: empty range (sensitive value)..1 (at `var.pin..1`: the lower bound is above the upper bound)
            var.secret..3 => error[kcl::type_mismatch]: range bounds must be whole numbers (at `var.secret`: this is a sensitive string)
            1..var.secret => error[kcl::type_mismatch]: range bounds must be whole numbers (at `var.secret`: this is a sensitive string)
            var.secret < 1 => error[kcl::type_mismatch]: `<` needs numbers (at `var.secret`: this is a sensitive string)
            local.plain_list[var.pin] => error[kcl::index]: index (sensitive value) is out of range (at `var.pin`: the list has 2 elements)
            [var.secret][5] => error[kcl::index]: index 5 is out of range (at `5`: the list is sensitive)
            local.plain_list[var.secret] => error[kcl::type_mismatch]: a list index must be a number (at `var.secret`: this is a sensitive string)
            { a = 1 }[var.secret] => error[kcl::index]: no key (sensitive value) (at `var.secret`: not a key of this map)
            { (var.secret) = 1 }["huntr2"] => error[kcl::index]: no key "huntr2" (at `"huntr2"`: not a key of this map)
            { a = var.pin }[var.pin] => error[kcl::type_mismatch]: a map key must be a string (at `var.pin`: this is a sensitive number)
            var.secret[0] => error[kcl::type_mismatch]: only lists and maps can be indexed (at `0`: this is a sensitive string)
            var.secret.attr => error[kcl::type_mismatch]: only objects have attributes (at `var.secret`: this is a sensitive string)
            { (var.secret) = 1 }.huntr2 => error[kcl::undefined_reference]: no attribute `huntr2` here (at `huntr2`: not an attribute of this object)
            { name = var.secret }.nme => error[kcl::undefined_reference]: no attribute `nme` here (at `nme`: not an attribute of this object)
            "${[var.secret]}" => error[kcl::type_mismatch]: this value cannot be put in a string (at `[var.secret]`: this is a sensitive list; help: use join() for a list, or pick one element)
            "x-${{ k = var.pin }}" => error[kcl::type_mismatch]: this value cannot be put in a string (at `{ k = var.pin }`: this is a sensitive object; help: use join() for a list, or pick one element)
            { (var.secret) = 1, (lower(var.secret)) = 2 } => error[kcl::duplicate_key]: duplicate key (sensitive value) (at `(lower(var.secret))`: set again here; also at `(var.secret)`: first set here)
            { ([var.secret]) = 1 } => error[kcl::type_mismatch]: an object key must be a string (at `([var.secret])`: this is a sensitive list)
            [for s in [var.secret] : tonumber(s)] => error[kcl::function_error]: (sensitive value) is not a number (at `s`: in this argument of `tonumber`)
            [for i, s in [var.secret] : local.plain_list[i + 5]] => error[kcl::index]: index (sensitive value) is out of range (at `i + 5`: the list has 2 elements)
            [for s in local.plain_list : tonumber("${s}${var.pin}")] => error[kcl::function_error]: (sensitive value) is not a number (at `"${s}${var.pin}"`: in this argument of `tonumber`)
            { for s in [var.secret, var.secret] : s => 1 } => error[kcl::duplicate_key]: duplicate key (sensitive value) (at `s`: two elements produce this key; help: add `...` after the value to group elements with the same key)
            [for s in var.secret : s] => error[kcl::type_mismatch]: `for` needs a list or a map (at `var.secret`: this is a sensitive string)
            [for s in [var.secret] : s if s] => error[kcl::type_mismatch]: an `if` condition must be a bool (at `s`: this is a sensitive string)
            { for s in [var.secret] : [s] => 1 } => error[kcl::type_mismatch]: an object key must be a string (at `[s]`: this is a sensitive list)
            [for s in [var.secret] : upper(s)] => ["HUNTER2"] (sensitive)
            tonumber(var["secret"]) => error[kcl::function_error]: (sensitive value) is not a number (at `var["secret"]`: in this argument of `tonumber`)
            tonumber(local["from_secret"]) => error[kcl::function_error]: (sensitive value) is not a number (at `local["from_secret"]`: in this argument of `tonumber`)
            [for k, v in var : tonumber(v)] => error[kcl::function_error]: (sensitive value) is not a number (at `v`: in this argument of `tonumber`)
            var.plain + local.plain_list[0] => error[kcl::type_mismatch]: `+` needs numbers (at `var.plain`: this is the string "open")
        "#]],
    );
}

/// Texts no diagnostic about a sensitive value may contain: the sensitive string (in any
/// case) and the sensitive number of `PRELUDE`.
fn secrets_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    ["hunter", "1234"].into_iter().filter(|s| lower.contains(s)).collect()
}

/// The cases of every group in this file that may read a sensitive value: each single-line
/// raw string literal that names `var` or `local`.
fn sensitive_cases() -> Vec<&'static str> {
    let this = include_str!("functions.rs");
    let mut out = vec![];
    let mut rest = this;
    while let Some(start) = rest.find("r#\"") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("\"#") else { break };
        let lit = &after[..end];
        if !lit.contains('\n') && (lit.contains("var") || lit.contains("local")) {
            out.push(lit);
        }
        rest = &after[end + 2..];
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Over every case with a sensitive argument, in every group: no diagnostic shows the
/// secret, in its message, label, secondary labels or help, nor in the one-line rendering.
#[test]
fn no_diagnostic_shows_a_secret() {
    let cases = sensitive_cases();
    assert!(cases.len() > 100, "the scan found only {} cases", cases.len());
    let mut errors = 0;
    for case in cases {
        let rendered = eval_in(Path::new("."), case);
        if !rendered.starts_with("error[") {
            continue;
        }
        errors += 1;
        assert_eq!(secrets_in(case), Vec::<&str>::new(), "the case itself spells out a secret: {case}");
        assert_eq!(secrets_in(&rendered), Vec::<&str>::new(), "{case} => {rendered}");
    }
    assert!(errors > 80, "only {errors} sensitive cases fail");
}

/// A configuration with a sensitive string and number, and a cluster whose node group gets
/// `ng` (and an image, an instance type and `size = 1..3` unless `ng` sets them) and whose
/// cluster block gets `cluster`.
fn config_with(top: &str, cluster: &str, ng: &str) -> String {
    let unless = |name: &str, line: &'static str| if ng.contains(name) { "" } else { line };
    let image = unless("image =", "image = \"img\"");
    let instance_type = unless("instance_type", "instance_type = \"m6i.large\"");
    let size = unless("size =", "size = 1..3");
    format!(
        r#"
variable "secret" {{
  type      = string
  default   = "hunter2"
  sensitive = true
}}

variable "pin" {{
  type      = number
  default   = 1234
  sensitive = true
}}

provider "sim" {{}}

{top}

cluster "c" {{
  kubernetes_version = "1.31"
  {cluster}

  network {{
    subnets = ["subnet-a"]
  }}

  node_group "g" {{
    {instance_type}
    {image}
    {size}
    {ng}
  }}
}}
"#
    )
}

fn load_config(text: String, inputs: &Inputs) -> Loaded {
    let mut sources = Sources::new();
    sources.add("main.kcl", "./main.kcl", text);
    load_sources(sources, inputs)
}

/// The errors of each configuration, one line each, after checking that no message, label,
/// secondary label or help spells out a secret (the source text at a span may: it is what
/// the user wrote, as in a variable's default).
fn check_configs(cases: &[(&str, String, Inputs)], expected: Expect) {
    let mut out = String::new();
    for (name, text, inputs) in cases {
        let loaded = load_config(text.clone(), inputs);
        assert!(!loaded.diagnostics.is_empty(), "{name}: no error");
        for d in &loaded.diagnostics {
            let mut texts = vec![d.message.as_str(), d.label.as_str()];
            texts.extend(d.help.as_deref());
            texts.extend(d.secondary.iter().map(|l| l.text.as_str()));
            for t in texts {
                assert_eq!(secrets_in(t), Vec::<&str>::new(), "{name}: {t}");
            }
        }
        out.push_str(&format!("{name} => {}\n", render(&loaded)));
    }
    expected.assert_eq(&out);
}

/// Attributes, `for_each`, and variables' own values: the checks outside the functions
/// never show a sensitive value either.
#[test]
fn sensitive_values_in_configuration_errors() {
    let none = Inputs::default;
    let ng = |name: &'static str, line: &str| (name, config_with("", "", line), none());
    let cases = vec![
        ng("capacity_type", "capacity_type = var.secret"),
        ng("size", "size = var.secret"),
        ng("desired", "desired = var.pin"),
        ng("size_range", "size = 1..var.pin\n    desired = 1235"),
        ng("control_plane_size", "size = var.pin\n    role = \"control-plane\""),
        ng("taints", "taints = [var.secret]"),
        ng("labels", "labels = { (var.secret) = [1] }"),
        ng("security_groups", "security_groups = [\"a\", [var.pin]]"),
        ng("health_timeout", "rollout {\n      health_timeout = var.pin\n    }"),
        ng("for_each_twice", "for_each = [var.secret, var.secret]"),
        ng("for_each_number", "for_each = var.pin"),
        ng("for_each_list", "for_each = [var.pin]"),
        ng("each_value", "for_each = { a = var.secret }\n    desired = tonumber(each.value)"),
        ("cluster_tags", config_with("", "tags = { t = [var.pin] }", ""), none()),
        ("cluster_provider", config_with("", "provider = var.pin", ""), none()),
        ("output_sensitive", config_with("output \"o\" {\n  value = 1\n  sensitive = var.secret\n}", "", ""), none()),
        (
            "output_from_cluster",
            config_with(
                "output \"o\" {\n  value = tonumber(cluster.c.node_group.g.image)\n}",
                "",
                "image = var.secret",
            ),
            none(),
        ),
        (
            "default_type",
            config_with("variable \"n\" {\n  type = number\n  default = \"hunter3\"\n  sensitive = true\n}", "", ""),
            none(),
        ),
        (
            "default_element",
            config_with(
                "variable \"n\" {\n  type = map(number)\n  default = { hunter4 = \"x\" }\n  sensitive = true\n}",
                "",
                "",
            ),
            none(),
        ),
        (
            "default_function",
            config_with(
                "variable \"n\" {\n  type = number\n  default = tonumber(\"hunter5\")\n  sensitive = true\n}",
                "",
                "",
            ),
            none(),
        ),
        (
            "env_value",
            config_with("variable \"n\" {\n  type = number\n  sensitive = true\n}", "", ""),
            Inputs { env: vec![("n".into(), "hunter6".into())], ..Inputs::default() },
        ),
        (
            "var_value",
            config_with("variable \"n\" {\n  type = list(number)\n  sensitive = true\n}", "", ""),
            Inputs { vars: vec![("n".into(), "[1, \"hunter7\"".into())], ..Inputs::default() },
        ),
    ];
    check_configs(
        &cases,
        expect![[r#"
            capacity_type => error[kcl::invalid_value]: (sensitive value) is not allowed here (at `var.secret`: expected one of "on-demand", "spot")
            size => error[kcl::type_mismatch]: expected a whole number or a range (like 3 or 3..10) (at `var.secret`: this is a sensitive string)
            desired => error[kcl::invalid_value]: desired (sensitive value) is outside size 1..3 (at `var.pin`: out of range; also at `1..3`: size set here)
            size_range => error[kcl::invalid_value]: desired 1235 is outside size (sensitive value) (at `1235`: out of range; also at `1..var.pin`: size set here)
            control_plane_size => error[kcl::control_plane_size]: a control plane needs an odd, fixed size, not a sensitive number (at `var.pin`: not an odd number; also at `"control-plane"`: control plane set here; help: use 1, 3 or 5 members: an odd count keeps etcd's quorum through one failure per two members)
            taints => error[kcl::invalid_value]: invalid taint (sensitive value): no effect after `:` (at `[var.secret]`: in this list; help: write taints as "key=value:NoSchedule" (or PreferNoSchedule, NoExecute))
            labels => error[kcl::type_mismatch]: expected a map of strings (at `{ (var.secret) = [1] }`: the value of (sensitive value) is a sensitive list)
            security_groups => error[kcl::type_mismatch]: expected a list of strings (at `["a", [var.pin]]`: an element is a sensitive list)
            health_timeout => error[kcl::type_mismatch]: expected a duration (like 90s or 10m) (at `var.pin`: this is a sensitive number; help: add a unit: s, m or h)
            for_each_twice => error[kcl::for_each]: for_each has (sensitive value) twice (at `[var.secret, var.secret]`: keys must be unique)
            for_each_number => error[kcl::type_mismatch]: for_each needs a list of strings or a map (at `var.pin`: this is a sensitive number)
            for_each_list => error[kcl::type_mismatch]: for_each over a list needs strings (at `[var.pin]`: this is a sensitive number; help: use a map for other values: { for v in list : v.name => v })
            each_value => error[kcl::function_error]: (sensitive value) is not a number (at `each.value`: in this argument of `tonumber`)
            cluster_tags => error[kcl::type_mismatch]: expected a map of strings (at `{ t = [var.pin] }`: the value of (sensitive value) is a sensitive list)
            cluster_provider => error[kcl::type_mismatch]: provider is a provider reference like sim or aws.west (at `var.pin`: this is a sensitive number)
            output_sensitive => error[kcl::type_mismatch]: expected a bool (at `var.secret`: this is a sensitive string)
            output_from_cluster => error[kcl::function_error]: (sensitive value) is not a number (at `cluster.c.node_group.g.image`: in this argument of `tonumber`)
            default_type => error[kcl::type_mismatch]: wrong type: expected a number (at `"hunter3"`: this is a sensitive string; help: the variable is declared as number)
            default_element => error[kcl::type_mismatch]: wrong type: expected a map(number) (at `{ hunter4 = "x" }`: this is a sensitive object; help: the variable is declared as map(number))
            default_function => error[kcl::function_error]: (sensitive value) is not a number (at `"hunter5"`: in this argument of `tonumber`)
            env_value => error[kcl::undefined_reference]: the value given by DRYDOCK_VAR_n is not a number (not shown: the variable is sensitive) (help: DRYDOCK_VAR_n is read as an expression of type number)
            var_value => error[kcl::syntax]: the value given by --var n is not a list(number) (not shown: the variable is sensitive) (help: --var n is read as an expression of type list(number))
        "#]],
    );
}

/// What is derived from a sensitive `for_each` or cluster attribute is sensitive: outputs
/// and node group attributes are marked, so plans show neither.
#[test]
fn sensitivity_follows_each_and_cluster_references() {
    let outputs = |text: String| -> Vec<(String, bool)> {
        let loaded = load_config(text, &Inputs::default());
        assert_eq!(loaded.diagnostics, vec![]);
        loaded.model.unwrap().outputs.iter().map(|o| (o.name.clone(), o.sensitive)).collect()
    };
    let out = |name: &str, value: &str| format!("output \"{name}\" {{\n  value = {value}\n}}\n");
    let top = [
        out("image", "cluster.c.node_group.g.image"),
        out("name", "cluster.c.name"),
        out("ids", "cluster.c.node_group.g.instance_ids"),
    ]
    .concat();
    // An exposed attribute (image) derives from the secret: everything read from the cluster
    // is marked, since the cluster is marked as a whole.
    assert_eq!(
        outputs(config_with(&top, "", "image = var.secret")),
        vec![("ids".into(), true), ("image".into(), true), ("name".into(), true)]
    );
    // user_data is not part of `cluster.c`: reading the cluster stays unmarked.
    assert_eq!(
        outputs(config_with(&top, "", "user_data = var.secret")),
        vec![("ids".into(), false), ("image".into(), false), ("name".into(), false)]
    );
    // A sensitive for_each marks what reads `each`, and the cluster whose keys it gives.
    let loaded = load_config(
        config_with(
            &out("keys", "keys(cluster.c.node_group.g)"),
            "",
            "for_each = { a = var.secret }\n    labels = { k = each.key }\n    user_data = each.value",
        ),
        &Inputs::default(),
    );
    assert_eq!(loaded.diagnostics, vec![]);
    let model = loaded.model.unwrap();
    let ng = &model.clusters[0].node_groups[0];
    assert_eq!(ng.sensitive.iter().map(String::as_str).collect::<Vec<_>>(), vec!["labels", "user_data"]);
    assert!(model.outputs[0].sensitive);
}

/// The usage each `kcl::wrong_arguments` error shows is the signature docs/language.md
/// gives, for every function, and the docs list every function.
#[test]
fn usages_match_the_documented_signatures() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/language.md")).unwrap();
    let section = docs.split("\n## Functions\n").nth(1).expect("a Functions section");
    let section = section.split("\n## ").next().unwrap();
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|sig| sig.contains('('))
        .collect();
    let usages: Vec<&str> = drydock_config::eval::FUNCTIONS.iter().map(|f| f.usage).collect();
    assert_eq!(documented, usages);
    for f in drydock_config::eval::FUNCTIONS {
        assert!(f.usage.starts_with(&format!("{}(", f.name)), "{}", f.usage);
    }
}

/// Every function in `FUNCTIONS` has an implementation: called with as few and as many
/// arguments as it takes (of every kind of value), each one answers with a value or an error,
/// never with the evaluator's "listed but not implemented" panic.
#[test]
fn every_listed_function_is_implemented() {
    let kinds = ["\"a\"", "1", "true", "[\"a\"]", "{ a = 1 }", "1s", "null"];
    for f in drydock_config::eval::FUNCTIONS {
        for n in [f.min, f.max.min(3)] {
            for kind in kinds {
                let args = vec![kind; n].join(", ");
                let result = std::panic::catch_unwind(|| eval_in(Path::new("."), &format!("{}({args})", f.name)));
                assert!(result.is_ok(), "{}({args}) panicked", f.name);
            }
        }
    }
}
