//! Values of the language and the declared types they are checked against.

use std::collections::BTreeMap;
use std::fmt;

pub use drydock_model::{format_duration, format_number};

/// A value computed by evaluation. Maps keep their keys sorted, so evaluation and
/// everything derived from it (hashes, plans) does not depend on source order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// Milliseconds.
    Duration(u64),
    Percent(f64),
    /// An inclusive range of integers, `3..10`.
    Range(i64, i64),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
    /// Known only after apply (group names, instance ids).
    Unknown,
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Duration(_) => "duration",
            Value::Percent(_) => "percent",
            Value::Range(..) => "range",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Unknown => "unknown",
        }
    }

    /// The integer this number is, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(*n as i64),
            _ => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::is_unknown),
            Value::Object(m) => m.values().any(Value::is_unknown),
            _ => false,
        }
    }

    /// The text of a value inside a string template, or `None` for values that have none.
    pub fn to_template_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) | Value::Duration(_) | Value::Percent(_) | Value::Range(..) => {
                Some(self.to_string())
            }
            _ => None,
        }
    }

    /// A value as JSON, for outputs and machine-readable renderings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => match self.as_int() {
                Some(i) => J::from(i),
                None => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
            },
            Value::String(s) => J::String(s.clone()),
            Value::Duration(_) | Value::Percent(_) | Value::Range(..) => J::String(self.to_string()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Unknown => J::String("(known after apply)".into()),
        }
    }
}

impl fmt::Display for Value {
    /// The value written as .kcl source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::String(s) => write!(f, "{s}"),
            Value::Duration(ms) => f.write_str(&format_duration(*ms)),
            Value::Percent(p) => write!(f, "{}%", format_number(*p)),
            Value::Range(a, b) => write!(f, "{a}..{b}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, v)?;
                }
                f.write_str("]")
            }
            Value::Object(m) => {
                if m.is_empty() {
                    return f.write_str("{}");
                }
                f.write_str("{ ")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?} = ")?;
                    write_quoted(f, v)?;
                }
                f.write_str(" }")
            }
            Value::Unknown => f.write_str("(known after apply)"),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::String(s) => write!(f, "{s:?}"),
        other => write!(f, "{other}"),
    }
}

/// A declared type: `string`, `list(number)`, `map(any)`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    Duration,
    Percent,
    Range,
    List(Box<Type>),
    Map(Box<Type>),
    Any,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Duration => f.write_str("duration"),
            Type::Percent => f.write_str("percent"),
            Type::Range => f.write_str("range"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Any => f.write_str("any"),
        }
    }
}

pub const TYPE_NAMES: &[&str] = &["string", "number", "bool", "duration", "percent", "range", "list", "map", "any"];

/// Converts `v` to `ty` the way a Terraform user expects (numbers and bools become
/// strings, numeric strings become numbers), or says what was found instead.
pub fn convert(v: Value, ty: &Type) -> Result<Value, String> {
    let mismatch = |v: &Value| Err(format!("expected {}, found {}", article(ty), v.type_name()));
    match (ty, v) {
        (_, Value::Unknown) => Ok(Value::Unknown),
        (Type::Any, v) => Ok(v),
        (_, Value::Null) => Ok(Value::Null),
        (Type::String, v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
            Ok(Value::String(v.to_template_string().unwrap_or_default()))
        }
        (Type::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (Type::Number, Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(format!("expected a number, found the string {s:?}")),
        },
        (Type::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Type::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        (Type::Duration, Value::Duration(d)) => Ok(Value::Duration(d)),
        (Type::Percent, Value::Percent(p)) => Ok(Value::Percent(p)),
        (Type::Range, Value::Range(a, b)) => Ok(Value::Range(a, b)),
        (Type::List(t), Value::List(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(convert(item, t).map_err(|e| format!("element {i}: {e}"))?);
            }
            Ok(Value::List(out))
        }
        (Type::Map(t), Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, item) in m {
                let item = convert(item, t).map_err(|e| format!("key {k:?}: {e}"))?;
                out.insert(k, item);
            }
            Ok(Value::Object(out))
        }
        (_, v) => mismatch(&v),
    }
}

/// "a string", "an object", "a list(string)".
pub fn article(ty: &Type) -> String {
    let s = ty.to_string();
    if s.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {s}")
    } else {
        format!("a {s}")
    }
}
