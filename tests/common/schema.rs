//! A checker for the subset of JSON Schema that `docs/plan.schema.json` uses (`type`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `minimum`,
//! `$ref` into `$defs`). Small enough to read, and it refuses any other keyword, so the
//! schema cannot use one the checker would silently ignore. (The `jsonschema` crate would
//! pull an HTTP client into the build for a dozen keywords.)

use serde_json::Value;

const KEYWORDS: &[&str] = &[
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
];

/// The repository's plan schema.
pub fn plan_schema() -> Value {
    let text = std::fs::read_to_string(super::repo().join("docs/plan.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every place where `value` breaks `schema`, as `path: what`; empty when it conforms.
pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = vec![];
    walk(schema, schema, value, "$", &mut errors);
    errors
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        errors.push(format!("{at}: the schema here is not an object"));
        return;
    };
    for k in s.keys() {
        if !KEYWORDS.contains(&k.as_str()) {
            errors.push(format!("{at}: the checker does not know the keyword `{k}`"));
        }
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").unwrap_or(r);
        match root["$defs"].get(name) {
            Some(def) => walk(root, def, v, at, errors),
            None => errors.push(format!("{at}: unknown $ref {r}")),
        }
    }
    if let Some(t) = s.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = type_of(v);
        // An integer is also a number.
        let ok = allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
        if !ok {
            errors.push(format!("{at}: expected {allowed:?}, found {actual}"));
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errors.push(format!("{at}: expected {c}, found {v}"));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.contains(v) {
            errors.push(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errors.push(format!("{at}: {n} is below {min}"));
        }
    }
    if let (Some(items), Value::Array(a)) = (s.get("items"), v) {
        for (i, x) in a.iter().enumerate() {
            walk(root, items, x, &format!("{at}[{i}]"), errors);
        }
    }
    if let Value::Object(o) = v {
        if let Some(Value::Array(req)) = s.get("required") {
            for k in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(k) {
                    errors.push(format!("{at}: `{k}` is missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            let here = format!("{at}.{k}");
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(p), _) => walk(root, p, x, &here, errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{here}: not in the schema")),
                (None, Some(extra @ Value::Object(_))) => walk(root, extra, x, &here, errors),
                (None, _) => {}
            }
        }
    }
}
