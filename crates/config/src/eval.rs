//! Expression evaluation. Errors are reported into the evaluator's diagnostics and the
//! failing expression yields `Err(Reported)`, so one mistake does not cascade into many.
//! Reading a sensitive value sets a flag, so callers can mark what was derived from it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use sha2::Digest as _;

use super::value::{format_number, Value};
use drydock_syntax::ast::*;
use drydock_syntax::diag::{Diagnostic, Sources, Span};

/// The error was already reported as a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

pub type EvalResult = Result<Value, Reported>;

pub const FUNCTIONS: &[&str] = &[
    "base64encode",
    "concat",
    "contains",
    "file",
    "format",
    "join",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "replace",
    "sha256",
    "split",
    "tonumber",
    "tostring",
    "trim",
    "upper",
    "values",
];

/// What names mean where an expression is evaluated.
#[derive(Default)]
pub struct Scope<'a> {
    pub vars: Option<&'a BTreeMap<String, Value>>,
    pub locals: Option<&'a BTreeMap<String, Value>>,
    pub clusters: Option<&'a BTreeMap<String, Value>>,
    /// `each.key` / `each.value` inside a block with `for_each`.
    pub each: Option<(Value, Value)>,
    /// Why `var`/`local`/`cluster` are unavailable here, for the error message.
    pub restriction: Option<&'static str>,
}

pub struct Evaluator<'s> {
    pub sources: &'s Sources,
    pub diags: RefCell<Vec<Diagnostic>>,
    /// Names of sensitive variables and locals.
    pub sensitive_vars: BTreeMap<String, bool>,
    pub sensitive_locals: RefCell<BTreeMap<String, bool>>,
    touched_sensitive: Cell<bool>,
    /// `var.x` / `local.x` / `cluster.x` whose evaluation failed: using them adds no error.
    pub failed: RefCell<std::collections::BTreeSet<String>>,
    files: RefCell<BTreeMap<PathBuf, Result<String, String>>>,
}

impl<'s> Evaluator<'s> {
    pub fn new(sources: &'s Sources) -> Evaluator<'s> {
        Evaluator {
            sources,
            diags: RefCell::new(vec![]),
            sensitive_vars: BTreeMap::new(),
            sensitive_locals: RefCell::new(BTreeMap::new()),
            touched_sensitive: Cell::new(false),
            failed: RefCell::new(Default::default()),
            files: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn error(&self, d: Diagnostic) -> Reported {
        self.diags.borrow_mut().push(d);
        Reported
    }

    /// Evaluates `e` and says whether anything sensitive went into it.
    pub fn eval_marked(&self, e: &Expr, scope: &Scope) -> (EvalResult, bool) {
        let before = self.touched_sensitive.replace(false);
        let v = self.eval(e, scope, &mut Vec::new());
        let touched = self.touched_sensitive.get();
        self.touched_sensitive.set(before || touched);
        (v, touched)
    }

    pub fn eval_top(&self, e: &Expr, scope: &Scope) -> EvalResult {
        self.eval(e, scope, &mut Vec::new())
    }

    /// `bound` holds the variables of enclosing `for` expressions, innermost last.
    fn eval(&self, e: &Expr, scope: &Scope, bound: &mut Vec<(String, Value)>) -> EvalResult {
        match &e.kind {
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Number(n) => Ok(Value::Number(*n)),
            ExprKind::Duration(d) => Ok(Value::Duration(*d)),
            ExprKind::Percent(p) => Ok(Value::Percent(*p)),
            ExprKind::Template(parts) | ExprKind::Heredoc { parts, .. } => self.template(parts, scope, bound),
            ExprKind::Paren(x) => self.eval(x, scope, bound),
            ExprKind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut failed = false;
                for i in items {
                    match self.eval(i, scope, bound) {
                        Ok(v) => out.push(v),
                        Err(_) => failed = true,
                    }
                }
                if failed {
                    Err(Reported)
                } else {
                    Ok(Value::List(out))
                }
            }
            ExprKind::Object(items) => {
                let mut out = BTreeMap::new();
                let mut first: BTreeMap<String, Span> = BTreeMap::new();
                let mut failed = false;
                for item in items {
                    let (key, key_span) = match &item.key {
                        ObjectKey::Ident(i) => (i.name.clone(), i.span),
                        ObjectKey::Expr(k) => match self.eval(k, scope, bound) {
                            Ok(v) => match v.to_template_string() {
                                Some(s) => (s, k.span),
                                None => {
                                    self.error(type_error(k.span, "an object key must be a string", &v));
                                    failed = true;
                                    continue;
                                }
                            },
                            Err(_) => {
                                failed = true;
                                continue;
                            }
                        },
                    };
                    if let Some(prev) = first.get(&key) {
                        self.error(
                            Diagnostic::new("kcl::duplicate_key", key_span, format!("duplicate key `{key}`"))
                                .label("set again here")
                                .with_secondary(*prev, "first set here"),
                        );
                        failed = true;
                        continue;
                    }
                    first.insert(key.clone(), key_span);
                    match self.eval(&item.value, scope, bound) {
                        Ok(v) => {
                            out.insert(key, v);
                        }
                        Err(_) => failed = true,
                    }
                }
                if failed {
                    Err(Reported)
                } else {
                    Ok(Value::Object(out))
                }
            }
            ExprKind::Variable(name) => self.variable(name, scope, bound),
            ExprKind::GetAttr(base, name) => self.get_attr(base, name, scope, bound),
            ExprKind::Index(base, idx) => {
                let b = self.eval(base, scope, bound)?;
                let i = self.eval(idx, scope, bound)?;
                self.index(b, i, idx.span)
            }
            ExprKind::Call(name, args) => self.call(name, args, e.span, scope, bound),
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, scope, bound)?;
                match (op, v) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOp::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOp::Neg, v) => Err(self.error(type_error(x.span, "`-` needs a number", &v))),
                    (UnaryOp::Not, v) => Err(self.error(type_error(x.span, "`!` needs a bool", &v))),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, scope, bound),
            ExprKind::Conditional(c, a, b) => match self.eval(c, scope, bound)? {
                Value::Bool(true) => self.eval(a, scope, bound),
                Value::Bool(false) => self.eval(b, scope, bound),
                Value::Unknown => Ok(Value::Unknown),
                v => Err(self.error(type_error(c.span, "a condition must be a bool", &v))),
            },
            ExprKind::For(f) => self.for_expr(f, e.span, scope, bound),
        }
    }

    fn template(&self, parts: &[TemplatePart], scope: &Scope, bound: &mut Vec<(String, Value)>) -> EvalResult {
        if let [TemplatePart::Lit(s)] = parts {
            return Ok(Value::String(s.clone()));
        }
        let mut out = String::new();
        let mut unknown = false;
        let mut failed = false;
        for p in parts {
            match p {
                TemplatePart::Lit(s) => out.push_str(s),
                TemplatePart::Interp(x) => match self.eval(x, scope, bound) {
                    Ok(Value::Unknown) => unknown = true,
                    Ok(v) => match v.to_template_string() {
                        Some(s) => out.push_str(&s),
                        None => {
                            self.error(
                                type_error(x.span, "this value cannot be put in a string", &v)
                                    .help("use join() for a list, or pick one element"),
                            );
                            failed = true;
                        }
                    },
                    Err(_) => failed = true,
                },
            }
        }
        if failed {
            Err(Reported)
        } else if unknown {
            Ok(Value::Unknown)
        } else {
            Ok(Value::String(out))
        }
    }

    fn variable(&self, name: &Ident, scope: &Scope, bound: &[(String, Value)]) -> EvalResult {
        if let Some((_, v)) = bound.iter().rev().find(|(n, _)| *n == name.name) {
            return Ok(v.clone());
        }
        let namespace = |m: Option<&BTreeMap<String, Value>>| -> EvalResult {
            match m {
                Some(m) => Ok(Value::Object(m.clone())),
                None => Err(self.unavailable(name, scope)),
            }
        };
        match name.name.as_str() {
            "var" => namespace(scope.vars),
            "local" => namespace(scope.locals),
            "cluster" => namespace(scope.clusters),
            "each" => match &scope.each {
                Some((k, v)) => {
                    Ok(Value::Object(BTreeMap::from([("key".into(), k.clone()), ("value".into(), v.clone())])))
                }
                None => Err(self.error(
                    Diagnostic::new(
                        "kcl::for_each",
                        name.span,
                        "`each` is only defined inside a block with `for_each`",
                    )
                    .label("not inside a for_each block"),
                )),
            },
            _ => {
                let mut candidates: Vec<&str> = vec!["var", "local", "cluster", "each"];
                candidates.extend(bound.iter().map(|(n, _)| n.as_str()));
                Err(self.error(
                    Diagnostic::new("kcl::undefined_reference", name.span, format!("unknown name `{}`", name.name))
                        .label("not defined")
                        .suggest(&name.name, candidates)
                        .help_if_none("references start with var., local., cluster. or each.; a string needs quotes"),
                ))
            }
        }
    }

    fn unavailable(&self, name: &Ident, scope: &Scope) -> Reported {
        let why = scope.restriction.unwrap_or("not available here");
        self.error(
            Diagnostic::new("kcl::undefined_reference", name.span, format!("`{}` cannot be used here", name.name))
                .label(why),
        )
    }

    fn get_attr(&self, base: &Expr, name: &Ident, scope: &Scope, bound: &mut Vec<(String, Value)>) -> EvalResult {
        // `var.x`, `local.x` and `cluster.x` get errors that name what is missing.
        if let ExprKind::Variable(root) = &base.kind {
            if !bound.iter().any(|(n, _)| *n == root.name) {
                let (map, what) = match root.name.as_str() {
                    "var" => (scope.vars, "variable"),
                    "local" => (scope.locals, "local value"),
                    "cluster" => (scope.clusters, "cluster"),
                    _ => (None, ""),
                };
                if !what.is_empty() {
                    let Some(map) = map else {
                        return Err(self.unavailable(root, scope));
                    };
                    if self.failed.borrow().contains(&format!("{}.{}", root.name, name.name)) {
                        return Err(Reported);
                    }
                    return match map.get(&name.name) {
                        Some(v) => {
                            let sensitive = match what {
                                "variable" => self.sensitive_vars.get(&name.name).copied().unwrap_or(false),
                                "local value" => {
                                    self.sensitive_locals.borrow().get(&name.name).copied().unwrap_or(false)
                                }
                                _ => false,
                            };
                            if sensitive {
                                self.touched_sensitive.set(true);
                            }
                            Ok(v.clone())
                        }
                        None => Err(self.error(
                            Diagnostic::new(
                                "kcl::undefined_reference",
                                base.span.to(name.span),
                                format!("no {what} named `{}`", name.name),
                            )
                            .label(format!("{what} not declared"))
                            .suggest(&name.name, map.keys().map(String::as_str))
                            .help_if_none(minus_hint(&root.name, &name.name, map)),
                        )),
                    };
                }
            }
        }
        let v = self.eval(base, scope, bound)?;
        match v {
            Value::Unknown => Ok(Value::Unknown),
            Value::Object(mut m) => match m.remove(&name.name) {
                Some(v) => Ok(v),
                None => {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    Err(self.error(
                        Diagnostic::new(
                            "kcl::undefined_reference",
                            name.span,
                            format!("no attribute `{}` here", name.name),
                        )
                        .label("not an attribute of this object")
                        .suggest(&name.name, keys.iter().map(String::as_str)),
                    ))
                }
            },
            v => Err(self.error(type_error(base.span, "only objects have attributes", &v))),
        }
    }

    fn index(&self, base: Value, idx: Value, span: Span) -> EvalResult {
        match (base, idx) {
            (Value::Unknown, _) | (_, Value::Unknown) => Ok(Value::Unknown),
            (Value::List(items), i @ Value::Number(_)) => match i.as_int() {
                Some(n) if n >= 0 && (n as usize) < items.len() => Ok(items[n as usize].clone()),
                _ => Err(self.error(Diagnostic::new("kcl::index", span, format!("index {i} is out of range")).label(
                    match items.len() {
                        1 => "the list has 1 element".to_string(),
                        n => format!("the list has {n} elements"),
                    },
                ))),
            },
            (Value::Object(mut m), Value::String(k)) => match m.remove(&k) {
                Some(v) => Ok(v),
                None => {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    Err(self.error(
                        Diagnostic::new("kcl::index", span, format!("no key {k:?}"))
                            .label("not a key of this map")
                            .suggest(&k, keys.iter().map(String::as_str)),
                    ))
                }
            },
            (Value::List(_), v) => Err(self.error(type_error(span, "a list index must be a number", &v))),
            (Value::Object(_), v) => Err(self.error(type_error(span, "a map key must be a string", &v))),
            (b, _) => Err(self.error(type_error(span, "only lists and maps can be indexed", &b))),
        }
    }

    fn binary(&self, op: BinaryOp, a: &Expr, b: &Expr, scope: &Scope, bound: &mut Vec<(String, Value)>) -> EvalResult {
        // `&&` and `||` do not evaluate their right side when the left decides.
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            let l = self.eval(a, scope, bound)?;
            return match (op, l) {
                (_, Value::Unknown) => Ok(Value::Unknown),
                (BinaryOp::And, Value::Bool(false)) => Ok(Value::Bool(false)),
                (BinaryOp::Or, Value::Bool(true)) => Ok(Value::Bool(true)),
                (_, Value::Bool(_)) => match self.eval(b, scope, bound)? {
                    v @ (Value::Bool(_) | Value::Unknown) => Ok(v),
                    v => Err(self.error(type_error(b.span, &format!("`{}` needs bools", op.symbol()), &v))),
                },
                (_, v) => Err(self.error(type_error(a.span, &format!("`{}` needs bools", op.symbol()), &v))),
            };
        }
        let l = self.eval(a, scope, bound);
        let r = self.eval(b, scope, bound);
        let (l, r) = (l?, r?);
        if matches!(l, Value::Unknown) || matches!(r, Value::Unknown) {
            return Ok(Value::Unknown);
        }
        let span = a.span.to(b.span);
        let num = |v: &Value, s: Span| -> Result<f64, Reported> {
            match v {
                Value::Number(n) => Ok(*n),
                v => Err(self.error(type_error(s, &format!("`{}` needs numbers", op.symbol()), v))),
            }
        };
        match op {
            BinaryOp::Eq => Ok(Value::Bool(l == r)),
            BinaryOp::Ne => Ok(Value::Bool(l != r)),
            BinaryOp::Range => {
                let lo = l.as_int();
                let hi = r.as_int();
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo <= hi => Ok(Value::Range(lo, hi)),
                    (Some(lo), Some(hi)) => Err(self.error(
                        Diagnostic::new("kcl::invalid_value", span, format!("empty range {lo}..{hi}"))
                            .label("the lower bound is above the upper bound"),
                    )),
                    (None, _) => Err(self.error(type_error(a.span, "range bounds must be whole numbers", &l))),
                    (_, None) => Err(self.error(type_error(b.span, "range bounds must be whole numbers", &r))),
                }
            }
            BinaryOp::Add => match (&l, &r) {
                (Value::Duration(x), Value::Duration(y)) => Ok(Value::Duration(x.saturating_add(*y))),
                _ => Ok(Value::Number(num(&l, a.span)? + num(&r, b.span)?)),
            },
            BinaryOp::Sub => match (&l, &r) {
                (Value::Duration(x), Value::Duration(y)) => Ok(Value::Duration(x.saturating_sub(*y))),
                _ => Ok(Value::Number(num(&l, a.span)? - num(&r, b.span)?)),
            },
            BinaryOp::Mul => match (&l, &r) {
                (Value::Duration(x), Value::Number(n)) | (Value::Number(n), Value::Duration(x)) if *n >= 0.0 => {
                    Ok(Value::Duration((*x as f64 * n).min(u64::MAX as f64) as u64))
                }
                _ => Ok(Value::Number(num(&l, a.span)? * num(&r, b.span)?)),
            },
            BinaryOp::Div | BinaryOp::Mod => {
                if let (Value::Duration(d), Value::Number(n), BinaryOp::Div) = (&l, &r, op) {
                    if *n > 0.0 {
                        return Ok(Value::Duration((*d as f64 / n) as u64));
                    }
                }
                let x = num(&l, a.span)?;
                let y = num(&r, b.span)?;
                if y == 0.0 {
                    return Err(self.error(
                        Diagnostic::new("kcl::division_by_zero", b.span, "division by zero").label("this is zero"),
                    ));
                }
                Ok(Value::Number(if op == BinaryOp::Div { x / y } else { x % y }))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ord = match (&l, &r) {
                    (Value::Duration(x), Value::Duration(y)) => x.partial_cmp(y),
                    (Value::Percent(x), Value::Percent(y)) => x.partial_cmp(y),
                    _ => num(&l, a.span)?.partial_cmp(&num(&r, b.span)?),
                };
                let Some(ord) = ord else {
                    return Ok(Value::Bool(false));
                };
                use std::cmp::Ordering::*;
                Ok(Value::Bool(match op {
                    BinaryOp::Lt => ord == Less,
                    BinaryOp::Le => ord != Greater,
                    BinaryOp::Gt => ord == Greater,
                    _ => ord != Less,
                }))
            }
            BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
        }
    }

    fn for_expr(&self, f: &ForExpr, span: Span, scope: &Scope, bound: &mut Vec<(String, Value)>) -> EvalResult {
        let coll = self.eval(&f.collection, scope, bound)?;
        let pairs: Vec<(Value, Value)> = match coll {
            Value::Unknown => return Ok(Value::Unknown),
            Value::List(items) => items.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect(),
            Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            v => return Err(self.error(type_error(f.collection.span, "`for` needs a list or a map", &v))),
        };
        let mut list = vec![];
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        let mut failed = false;
        for (k, v) in pairs {
            let depth = bound.len();
            if let Some(kv) = &f.key_var {
                bound.push((kv.name.clone(), k));
            }
            bound.push((f.value_var.name.clone(), v));
            let result = (|| -> Result<(), Reported> {
                if let Some(c) = &f.cond {
                    match self.eval(c, scope, bound)? {
                        Value::Bool(true) => {}
                        Value::Bool(false) => return Ok(()),
                        v => return Err(self.error(type_error(c.span, "an `if` condition must be a bool", &v))),
                    }
                }
                let value = self.eval(&f.value, scope, bound)?;
                match &f.key {
                    None => list.push(value),
                    Some(kx) => {
                        let key = self.eval(kx, scope, bound)?;
                        let Some(key) = key.to_template_string() else {
                            return Err(self.error(type_error(kx.span, "an object key must be a string", &key)));
                        };
                        if f.grouping {
                            match map.entry(key).or_insert_with(|| Value::List(vec![])) {
                                Value::List(items) => items.push(value),
                                _ => unreachable!("grouping entries are lists"),
                            }
                        } else if map.insert(key.clone(), value).is_some() {
                            return Err(self.error(
                                Diagnostic::new("kcl::duplicate_key", kx.span, format!("duplicate key {key:?}"))
                                    .label("two elements produce this key")
                                    .help("add `...` after the value to group elements with the same key"),
                            ));
                        }
                    }
                }
                Ok(())
            })();
            bound.truncate(depth);
            if result.is_err() {
                failed = true;
                break;
            }
        }
        let _ = span;
        if failed {
            Err(Reported)
        } else if f.key.is_some() {
            Ok(Value::Object(map))
        } else {
            Ok(Value::List(list))
        }
    }

    fn call(
        &self,
        name: &Ident,
        args: &[Expr],
        span: Span,
        scope: &Scope,
        bound: &mut Vec<(String, Value)>,
    ) -> EvalResult {
        if !FUNCTIONS.contains(&name.name.as_str()) {
            return Err(self.error(
                Diagnostic::new("kcl::unknown_function", name.span, format!("unknown function `{}`", name.name))
                    .label("not a function")
                    .suggest(&name.name, FUNCTIONS.iter().copied())
                    .help_if_none(format!("the functions are {}", FUNCTIONS.join(", "))),
            ));
        }
        let mut vals = Vec::with_capacity(args.len());
        let mut failed = false;
        for a in args {
            match self.eval(a, scope, bound) {
                Ok(v) => vals.push(v),
                Err(_) => failed = true,
            }
        }
        if failed {
            return Err(Reported);
        }
        // Structural functions pass unknown parts through (`keys` of a map whose values
        // are unknown is known); the others need every part known.
        let structural = matches!(name.name.as_str(), "keys" | "length" | "merge" | "concat" | "values" | "lookup");
        if vals.iter().any(|v| if structural { *v == Value::Unknown } else { v.is_unknown() }) {
            return Ok(Value::Unknown);
        }
        let arity = |min: usize, max: usize, sig: &str| -> Result<(), Reported> {
            if vals.len() < min || vals.len() > max {
                Err(self.error(
                    Diagnostic::new(
                        "kcl::wrong_arguments",
                        span,
                        format!("`{}` takes {}, got {}", name.name, plural_args(min, max), vals.len()),
                    )
                    .label("called here")
                    .help(format!("usage: {sig}")),
                ))
            } else {
                Ok(())
            }
        };
        let arg_err = |i: usize, what: &str| -> Reported {
            let at = args.get(i).map_or(span, |a| a.span);
            self.error(type_error(at, &format!("`{}` expects {what}", name.name), &vals[i]))
        };
        let string = |i: usize| -> Result<String, Reported> {
            match &vals[i] {
                v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                    Ok(v.to_template_string().unwrap_or_default())
                }
                _ => Err(arg_err(i, "a string")),
            }
        };
        let fail = |i: usize, msg: String| -> Reported {
            let at = args.get(i).map_or(span, |a| a.span);
            self.error(
                Diagnostic::new("kcl::function_error", at, msg).label(format!("in this argument of `{}`", name.name)),
            )
        };
        match name.name.as_str() {
            "file" => {
                arity(1, 1, "file(path)")?;
                let rel = string(0)?;
                let dir = self.sources.dir_of(span.file);
                let path = dir.join(&rel);
                let mut cache = self.files.borrow_mut();
                let result = cache
                    .entry(path.clone())
                    .or_insert_with(|| std::fs::read_to_string(&path).map_err(|e| super::io_msg(&e)))
                    .clone();
                match result {
                    Ok(text) => Ok(Value::String(text)),
                    Err(e) => Err(fail(0, format!("cannot read {}: {e}", path.display()))),
                }
            }
            "format" => {
                if vals.is_empty() {
                    arity(1, usize::MAX, "format(spec, values...)")?;
                }
                let spec = string(0)?;
                format_spec(&spec, &vals[1..]).map(Value::String).map_err(|m| fail(0, m))
            }
            "join" => {
                arity(2, 2, "join(separator, list)")?;
                let sep = string(0)?;
                let Value::List(items) = &vals[1] else {
                    return Err(arg_err(1, "a list"));
                };
                let mut parts = vec![];
                for item in items {
                    match item.to_template_string() {
                        Some(s) => parts.push(s),
                        None => return Err(fail(1, format!("cannot join a {}", item.type_name()))),
                    }
                }
                Ok(Value::String(parts.join(&sep)))
            }
            "split" => {
                arity(2, 2, "split(separator, string)")?;
                let sep = string(0)?;
                let s = string(1)?;
                if sep.is_empty() {
                    return Err(fail(0, "the separator is empty".into()));
                }
                Ok(Value::List(s.split(sep.as_str()).map(|p| Value::String(p.into())).collect()))
            }
            "concat" => {
                let mut out = vec![];
                for (i, v) in vals.iter().enumerate() {
                    match v {
                        Value::List(items) => out.extend(items.iter().cloned()),
                        _ => return Err(arg_err(i, "lists")),
                    }
                }
                Ok(Value::List(out))
            }
            "merge" => {
                let mut out = BTreeMap::new();
                for (i, v) in vals.iter().enumerate() {
                    match v {
                        Value::Object(m) => out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone()))),
                        Value::Null => {}
                        _ => return Err(arg_err(i, "maps")),
                    }
                }
                Ok(Value::Object(out))
            }
            "lookup" => {
                arity(2, 3, "lookup(map, key, default)")?;
                let Value::Object(m) = &vals[0] else {
                    return Err(arg_err(0, "a map"));
                };
                let key = string(1)?;
                match (m.get(&key), vals.get(2)) {
                    (Some(v), _) => Ok(v.clone()),
                    (None, Some(d)) => Ok(d.clone()),
                    (None, None) => Err(fail(1, format!("no key {key:?} and no default"))),
                }
            }
            "keys" | "values" => {
                arity(1, 1, &format!("{}(map)", name.name))?;
                let Value::Object(m) = &vals[0] else {
                    return Err(arg_err(0, "a map"));
                };
                Ok(Value::List(if name.name == "keys" {
                    m.keys().map(|k| Value::String(k.clone())).collect()
                } else {
                    m.values().cloned().collect()
                }))
            }
            "contains" => {
                arity(2, 2, "contains(list, value)")?;
                let Value::List(items) = &vals[0] else {
                    return Err(arg_err(0, "a list"));
                };
                Ok(Value::Bool(items.contains(&vals[1])))
            }
            "length" => {
                arity(1, 1, "length(value)")?;
                let n = match &vals[0] {
                    Value::List(items) => items.len(),
                    Value::Object(m) => m.len(),
                    Value::String(s) => s.chars().count(),
                    _ => return Err(arg_err(0, "a list, a map or a string")),
                };
                Ok(Value::Number(n as f64))
            }
            "lower" => {
                arity(1, 1, "lower(string)")?;
                Ok(Value::String(string(0)?.to_lowercase()))
            }
            "upper" => {
                arity(1, 1, "upper(string)")?;
                Ok(Value::String(string(0)?.to_uppercase()))
            }
            "replace" => {
                arity(3, 3, "replace(string, search, replacement)")?;
                let (s, from, to) = (string(0)?, string(1)?, string(2)?);
                if from.is_empty() {
                    return Err(fail(1, "the search string is empty".into()));
                }
                Ok(Value::String(s.replace(&from, &to)))
            }
            "trim" => {
                arity(1, 2, "trim(string, characters)")?;
                let s = string(0)?;
                Ok(Value::String(match vals.len() {
                    1 => s.trim().to_string(),
                    _ => {
                        let set = string(1)?;
                        s.trim_matches(|c| set.contains(c)).to_string()
                    }
                }))
            }
            "min" | "max" => {
                let nums: Vec<&Value> = match vals.as_slice() {
                    [Value::List(items)] => items.iter().collect(),
                    _ => vals.iter().collect(),
                };
                if nums.is_empty() {
                    return Err(self.error(
                        Diagnostic::new(
                            "kcl::wrong_arguments",
                            span,
                            format!("`{}` needs at least one number", name.name),
                        )
                        .label("called here"),
                    ));
                }
                let mut best: Option<f64> = None;
                for (i, v) in nums.iter().enumerate() {
                    let Value::Number(n) = v else {
                        return Err(arg_err(i.min(vals.len() - 1), "numbers"));
                    };
                    best = Some(match best {
                        None => *n,
                        Some(b) if name.name == "min" => b.min(*n),
                        Some(b) => b.max(*n),
                    });
                }
                Ok(Value::Number(best.unwrap_or(0.0)))
            }
            "base64encode" => {
                arity(1, 1, "base64encode(string)")?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(string(0)?)))
            }
            "sha256" => {
                arity(1, 1, "sha256(string)")?;
                let digest = sha2::Sha256::digest(string(0)?.as_bytes());
                Ok(Value::String(digest.iter().map(|b| format!("{b:02x}")).collect()))
            }
            "tostring" => {
                arity(1, 1, "tostring(value)")?;
                match &vals[0] {
                    Value::Null => Ok(Value::Null),
                    v => v.to_template_string().map(Value::String).ok_or_else(|| arg_err(0, "a primitive value")),
                }
            }
            "tonumber" => {
                arity(1, 1, "tonumber(value)")?;
                match &vals[0] {
                    Value::Number(n) => Ok(Value::Number(*n)),
                    Value::Null => Ok(Value::Null),
                    Value::String(s) => match s.trim().parse::<f64>() {
                        Ok(n) if n.is_finite() => Ok(Value::Number(n)),
                        _ => Err(fail(0, format!("{s:?} is not a number"))),
                    },
                    _ => Err(arg_err(0, "a string or a number")),
                }
            }
            other => unreachable!("function `{other}` is listed but not implemented"),
        }
    }
}

/// `local.n-1` reads as the name `n-1`; say so when `n` exists.
fn minus_hint(root: &str, name: &str, map: &BTreeMap<String, Value>) -> String {
    match name.split_once('-') {
        Some((head, tail)) if map.contains_key(head) => {
            format!("names may contain `-`: for subtraction write `{root}.{head} - {tail}` with spaces")
        }
        _ => String::new(),
    }
}

fn plural_args(min: usize, max: usize) -> String {
    let n = |k: usize| {
        if k == 1 {
            "1 argument".to_string()
        } else {
            format!("{k} arguments")
        }
    };
    if min == max {
        n(min)
    } else if max == usize::MAX {
        format!("at least {}", n(min))
    } else {
        format!("{min} to {}", n(max))
    }
}

/// `format("%s-%d", a, b)`: `%s` `%d` `%v` `%q` and `%%`.
fn format_spec(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("the format ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = it.next().ok_or_else(|| format!("not enough values for %{verb}"))?;
        match verb {
            's' | 'v' => out.push_str(&v.to_template_string().unwrap_or_else(|| v.to_string())),
            'd' => match v {
                Value::Number(n) => out.push_str(&format_number(n.trunc())),
                _ => return Err(format!("%d needs a number, found {}", v.type_name())),
            },
            'q' => out.push_str(&format!("{:?}", v.to_template_string().unwrap_or_else(|| v.to_string()))),
            other => return Err(format!("unknown format verb %{other}; use %s, %d, %v, %q or %%")),
        }
    }
    if it.next().is_some() {
        return Err("more values than the format uses".into());
    }
    Ok(out)
}

pub fn type_error(span: Span, what: &str, found: &Value) -> Diagnostic {
    Diagnostic::new("kcl::type_mismatch", span, what.to_string()).label(format!("this is {}", describe(found)))
}

/// "a string", "the number 3".
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the bool {b}"),
        Value::Number(_) | Value::Duration(_) | Value::Percent(_) | Value::Range(..) => {
            format!("the {} {v}", v.type_name())
        }
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::List(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        Value::Unknown => "a value known only after apply".into(),
    }
}
