//! Expression evaluation. Errors are reported into the evaluator's diagnostics and the
//! failing expression yields `Err(Reported)`, so one mistake does not cascade into many.
//! Reading a sensitive value sets a flag, so callers can mark what was derived from it.
//! A reference to a value that is kept (`var.x`, `local.tags.team`, `each.value`, a `for`
//! variable) is resolved in place and only its result copied (`Evaluator::borrowed`).

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

/// A function: how many arguments it takes, and its usage as `docs/language.md` writes it.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
    pub usage: &'static str,
}

const fn sig(name: &'static str, min: usize, max: usize, usage: &'static str) -> Signature {
    Signature { name, min, max, usage }
}

const MANY: usize = usize::MAX;

/// Every function, by name. The usages are checked against the function table of
/// `docs/language.md` by a test.
pub const FUNCTIONS: &[Signature] = &[
    sig("base64encode", 1, 1, "base64encode(string)"),
    sig("concat", 1, MANY, "concat(list, …)"),
    sig("contains", 2, 2, "contains(list, value)"),
    sig("file", 1, 1, "file(path)"),
    sig("format", 1, MANY, "format(spec, values…)"),
    sig("join", 2, 2, "join(separator, list)"),
    sig("keys", 1, 1, "keys(map)"),
    sig("length", 1, 1, "length(value)"),
    sig("lookup", 2, 3, "lookup(map, key, default?)"),
    sig("lower", 1, 1, "lower(string)"),
    sig("max", 1, MANY, "max(numbers…)"),
    sig("merge", 1, MANY, "merge(map, …)"),
    sig("min", 1, MANY, "min(numbers…)"),
    sig("replace", 3, 3, "replace(string, search, replacement)"),
    sig("sha256", 1, 1, "sha256(string)"),
    sig("split", 2, 2, "split(separator, string)"),
    sig("tonumber", 1, 1, "tonumber(value)"),
    sig("tostring", 1, 1, "tostring(value)"),
    sig("trim", 1, 2, "trim(string, characters?)"),
    sig("upper", 1, 1, "upper(string)"),
    sig("values", 1, 1, "values(map)"),
];

/// What a diagnostic shows in place of a sensitive value.
pub const SENSITIVE: &str = "(sensitive value)";

/// A value on its way into a diagnostic, with whether it derives from a sensitive value.
/// Diagnostics show evaluated values only through this type, so that none of them can spell
/// out a secret: a sensitive value is described by its type alone ("a sensitive string") and
/// written as `(sensitive value)`.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub value: &'a Value,
    pub sensitive: bool,
}

impl<'a> Shown<'a> {
    pub fn new(value: &'a Value, sensitive: bool) -> Shown<'a> {
        Shown { value, sensitive }
    }

    /// "the string "x"", "the number 3", "a list"; "a sensitive string".
    pub fn describe(self) -> String {
        let v = self.value;
        if self.sensitive {
            return match v {
                Value::Unknown => "a value known only after apply".into(),
                Value::Null => "a sensitive value".into(),
                _ => format!("a sensitive {}", v.type_name()),
            };
        }
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
}

impl std::fmt::Display for Shown<'_> {
    /// The value as written in .kcl (`"x"`, `3`, `[1, 2]`), or `(sensitive value)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            _ if self.sensitive => f.write_str(SENSITIVE),
            Value::String(s) => write!(f, "{s:?}"),
            v => write!(f, "{v}"),
        }
    }
}

/// A string quoted (`"x"`), or `(sensitive value)`: for keys and strings taken out of a value.
pub fn quoted(text: &str, sensitive: bool) -> String {
    redact(sensitive, format_args!("{text:?}"))
}

/// `text`, or `(sensitive value)` when it derives from a sensitive value: for messages that
/// show text computed from a value (a path, a format verb) rather than the value itself.
pub fn redact(sensitive: bool, text: impl std::fmt::Display) -> String {
    if sensitive {
        SENSITIVE.to_string()
    } else {
        text.to_string()
    }
}

/// Variables bound by enclosing `for` expressions, innermost last, with whether the
/// collection they come from is sensitive.
type Bound = Vec<(String, Value, bool)>;

/// What names mean where an expression is evaluated.
#[derive(Default)]
pub struct Scope<'a> {
    pub vars: Option<&'a BTreeMap<String, Value>>,
    pub locals: Option<&'a BTreeMap<String, Value>>,
    pub clusters: Option<&'a BTreeMap<String, Value>>,
    /// `each.key` / `each.value` inside a block with `for_each`.
    pub each: Option<(Value, Value)>,
    /// Whether the `for_each` collection `each` comes from is sensitive.
    pub each_sensitive: bool,
    /// Why `var`/`local`/`cluster` are unavailable here, for the error message.
    pub restriction: Option<&'static str>,
}

pub struct Evaluator<'s> {
    pub sources: &'s Sources,
    pub diags: RefCell<Vec<Diagnostic>>,
    /// Names of sensitive variables and locals.
    pub sensitive_vars: BTreeMap<String, bool>,
    pub sensitive_locals: RefCell<BTreeMap<String, bool>>,
    /// Clusters whose value (`cluster.NAME`) holds something derived from a sensitive value.
    pub sensitive_clusters: RefCell<std::collections::BTreeSet<String>>,
    touched_sensitive: Cell<bool>,
    /// Set while evaluating a sensitive variable's own value: everything in it is sensitive.
    sensitive_context: Cell<bool>,
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
            sensitive_clusters: RefCell::new(Default::default()),
            touched_sensitive: Cell::new(false),
            sensitive_context: Cell::new(false),
            failed: RefCell::new(Default::default()),
            files: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn error(&self, d: Diagnostic) -> Reported {
        self.diags.borrow_mut().push(d);
        Reported
    }

    /// Runs `f` and says whether anything sensitive went into what it evaluated.
    fn marking<T>(&self, f: impl FnOnce() -> T) -> (T, bool) {
        let before = self.touched_sensitive.replace(false);
        let out = f();
        let touched = self.touched_sensitive.get() || self.sensitive_context.get();
        self.touched_sensitive.set(before || touched);
        (out, touched)
    }

    /// Evaluates `e` and says whether anything sensitive went into it.
    pub fn eval_marked(&self, e: &Expr, scope: &Scope) -> (EvalResult, bool) {
        self.marking(|| self.eval(e, scope, &mut Vec::new()))
    }

    pub fn eval_top(&self, e: &Expr, scope: &Scope) -> EvalResult {
        self.eval(e, scope, &mut Vec::new())
    }

    /// Evaluates the value of a sensitive variable: every value in it, literals included, is
    /// sensitive, so no error about it shows any of them.
    pub fn eval_sensitive(&self, e: &Expr, scope: &Scope) -> EvalResult {
        let before = self.sensitive_context.replace(true);
        let v = self.eval(e, scope, &mut Vec::new());
        self.sensitive_context.set(before);
        v
    }

    /// A sub-expression's value and whether it is sensitive, for errors that show it.
    fn eval_m(&self, e: &Expr, scope: &Scope, bound: &mut Bound) -> Result<(Value, bool), Reported> {
        let (v, sensitive) = self.marking(|| self.eval(e, scope, bound));
        v.map(|v| (v, sensitive))
    }

    fn eval(&self, e: &Expr, scope: &Scope, bound: &mut Bound) -> EvalResult {
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
                // The keys computed by expressions, with where and whether sensitive, for the
                // message about a duplicate (a name key's place is in the tree).
                let mut computed_keys: Vec<(String, Span, bool)> = vec![];
                let mut failed = false;
                for item in items {
                    let (key, key_span, sensitive) = match &item.key {
                        ObjectKey::Ident(i) => (i.name.to_string(), i.span, false),
                        ObjectKey::Expr(k) => match self.eval_m(k, scope, bound) {
                            Ok((v, sensitive)) => match v.to_template_string() {
                                Some(s) => (s, k.span, sensitive),
                                None => {
                                    self.error(type_error(
                                        k.span,
                                        "an object key must be a string",
                                        Shown::new(&v, sensitive),
                                    ));
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
                    // `out` has every key set so far, a failed value's too.
                    if out.contains_key(&key) {
                        let (prev, prev_sensitive) =
                            first_set(items, &computed_keys, &key).unwrap_or((key_span, false));
                        let shown = redact(sensitive || prev_sensitive, format_args!("`{key}`"));
                        self.error(
                            Diagnostic::new("kcl::duplicate_key", key_span, format!("duplicate key {shown}"))
                                .label("set again here")
                                .with_secondary(prev, "first set here"),
                        );
                        failed = true;
                        continue;
                    }
                    if let ObjectKey::Expr(_) = item.key {
                        computed_keys.push((key.clone(), key_span, sensitive));
                    }
                    match self.eval(&item.value, scope, bound) {
                        Ok(v) => {
                            out.insert(key, v);
                        }
                        Err(_) => {
                            // The object fails; the key stays taken, for a later duplicate.
                            out.insert(key, Value::Null);
                            failed = true;
                        }
                    }
                }
                if failed {
                    Err(Reported)
                } else {
                    Ok(Value::Object(out))
                }
            }
            ExprKind::Variable(name) => self.kept(e, scope, bound).unwrap_or_else(|| self.variable(name, scope, bound)),
            ExprKind::GetAttr(base, name) => {
                self.kept(e, scope, bound).unwrap_or_else(|| self.get_attr(base, name, scope, bound))
            }
            ExprKind::Index(base, idx) => {
                let b = self.eval_m(base, scope, bound)?;
                let i = self.eval_m(idx, scope, bound)?;
                self.index(b, i, idx.span)
            }
            ExprKind::Call(name, args) => self.call(name, args, e.span, scope, bound),
            ExprKind::Unary(op, x) => {
                let (v, sensitive) = self.eval_m(x, scope, bound)?;
                match (op, v) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOp::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOp::Neg, v) => {
                        Err(self.error(type_error(x.span, "`-` needs a number", Shown::new(&v, sensitive))))
                    }
                    (UnaryOp::Not, v) => {
                        Err(self.error(type_error(x.span, "`!` needs a bool", Shown::new(&v, sensitive))))
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, scope, bound),
            ExprKind::Conditional(c, a, b) => match self.eval_m(c, scope, bound)? {
                (Value::Bool(true), _) => self.eval(a, scope, bound),
                (Value::Bool(false), _) => self.eval(b, scope, bound),
                (Value::Unknown, _) => Ok(Value::Unknown),
                (v, sensitive) => {
                    Err(self.error(type_error(c.span, "a condition must be a bool", Shown::new(&v, sensitive))))
                }
            },
            ExprKind::For(f) => self.for_expr(f, e.span, scope, bound),
        }
    }

    /// The value of a reference to a kept value, copied from where it is kept; `None` when
    /// [`borrowed`](Self::borrowed) does not resolve it, and always once a value has failed (so
    /// that a name in `failed`, reported already, is never read here): `variable` and
    /// `get_attr` then evaluate it the general way, and report what is wrong.
    fn kept(&self, e: &Expr, scope: &Scope, bound: &Bound) -> Option<EvalResult> {
        if !self.failed.borrow().is_empty() {
            return None;
        }
        let (v, sensitive) = self.borrowed(e, scope, bound)?;
        if sensitive {
            self.touched_sensitive.set(true);
        }
        Some(Ok(v.clone()))
    }

    /// The value a reference names, borrowed where it is kept (`local.tags.team` reads `team`
    /// without copying `local.tags`), and whether it is sensitive; `None` for any other
    /// expression and for a reference that does not resolve.
    fn borrowed<'v>(&self, e: &Expr, scope: &'v Scope, bound: &'v Bound) -> Option<(&'v Value, bool)> {
        match &e.kind {
            ExprKind::Variable(name) => {
                let (_, v, sensitive) = bound.iter().rev().find(|(n, _, _)| *n == name.name)?;
                Some((v, *sensitive))
            }
            ExprKind::GetAttr(base, name) => {
                if let ExprKind::Variable(root) = &base.kind {
                    if !bound.iter().any(|(n, _, _)| *n == root.name) {
                        let key = name.name.as_str();
                        return match root.name.as_str() {
                            "var" => {
                                Some((scope.vars?.get(key)?, self.sensitive_vars.get(key).copied().unwrap_or(false)))
                            }
                            "local" => Some((
                                scope.locals?.get(key)?,
                                self.sensitive_locals.borrow().get(key).copied().unwrap_or(false),
                            )),
                            "cluster" => {
                                Some((scope.clusters?.get(key)?, self.sensitive_clusters.borrow().contains(key)))
                            }
                            "each" => match (&scope.each, key) {
                                (Some((k, _)), "key") => Some((k, scope.each_sensitive)),
                                (Some((_, v)), "value") => Some((v, scope.each_sensitive)),
                                _ => None,
                            },
                            _ => None,
                        };
                    }
                }
                match self.borrowed(base, scope, bound)? {
                    (Value::Object(m), sensitive) => Some((m.get(name.name.as_str())?, sensitive)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn template(&self, parts: &[TemplatePart], scope: &Scope, bound: &mut Bound) -> EvalResult {
        if let [TemplatePart::Lit(s)] = parts {
            return Ok(Value::String(s.clone()));
        }
        let mut out = String::new();
        let mut unknown = false;
        let mut failed = false;
        for p in parts {
            match p {
                TemplatePart::Lit(s) => out.push_str(s),
                TemplatePart::Interp(x) => match self.eval_m(x, scope, bound) {
                    Ok((Value::Unknown, _)) => unknown = true,
                    Ok((v, sensitive)) => match v.to_template_string() {
                        Some(s) => out.push_str(&s),
                        None => {
                            self.error(
                                type_error(x.span, "this value cannot be put in a string", Shown::new(&v, sensitive))
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

    fn variable(&self, name: &Ident, scope: &Scope, bound: &Bound) -> EvalResult {
        if let Some((_, v, sensitive)) = bound.iter().rev().find(|(n, _, _)| *n == name.name) {
            if *sensitive {
                self.touched_sensitive.set(true);
            }
            return Ok(v.clone());
        }
        // `var`, `local` and `cluster` on their own are objects of everything they hold: one
        // that holds a sensitive value is sensitive, like `var.NAME` is.
        let namespace = |m: Option<&BTreeMap<String, Value>>, sensitive: &dyn Fn(&str) -> bool| -> EvalResult {
            match m {
                Some(m) => {
                    if m.keys().any(|k| sensitive(k)) {
                        self.touched_sensitive.set(true);
                    }
                    Ok(Value::Object(m.clone()))
                }
                None => Err(self.unavailable(name, scope)),
            }
        };
        match name.name.as_str() {
            "var" => namespace(scope.vars, &|k| self.sensitive_vars.get(k).copied().unwrap_or(false)),
            "local" => namespace(scope.locals, &|k| self.sensitive_locals.borrow().get(k).copied().unwrap_or(false)),
            "cluster" => namespace(scope.clusters, &|k| self.sensitive_clusters.borrow().contains(k)),
            "each" => match &scope.each {
                Some((k, v)) => {
                    if scope.each_sensitive {
                        self.touched_sensitive.set(true);
                    }
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
                candidates.extend(bound.iter().map(|(n, _, _)| n.as_str()));
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

    fn get_attr(&self, base: &Expr, name: &Ident, scope: &Scope, bound: &mut Bound) -> EvalResult {
        // `var.x`, `local.x` and `cluster.x` get errors that name what is missing.
        if let ExprKind::Variable(root) = &base.kind {
            if !bound.iter().any(|(n, _, _)| *n == root.name) {
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
                    let failed = self.failed.borrow();
                    if !failed.is_empty() && failed.contains(&format!("{}.{}", root.name, name.name)) {
                        return Err(Reported);
                    }
                    drop(failed);
                    return match map.get(name.name.as_str()) {
                        Some(v) => {
                            let sensitive = match what {
                                "variable" => self.sensitive_vars.get(name.name.as_str()).copied().unwrap_or(false),
                                "local value" => {
                                    self.sensitive_locals.borrow().get(name.name.as_str()).copied().unwrap_or(false)
                                }
                                _ => self.sensitive_clusters.borrow().contains(name.name.as_str()),
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
        let (v, sensitive) = self.eval_m(base, scope, bound)?;
        match v {
            Value::Unknown => Ok(Value::Unknown),
            Value::Object(mut m) => match m.remove(name.name.as_str()) {
                Some(v) => Ok(v),
                None => {
                    // The keys of a sensitive object are sensitive too: no suggestion from them.
                    let keys: Vec<String> = if sensitive { vec![] } else { m.keys().cloned().collect() };
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
            v => Err(self.error(type_error(base.span, "only objects have attributes", Shown::new(&v, sensitive)))),
        }
    }

    fn index(&self, (base, base_s): (Value, bool), (idx, idx_s): (Value, bool), span: Span) -> EvalResult {
        match (base, idx) {
            (Value::Unknown, _) | (_, Value::Unknown) => Ok(Value::Unknown),
            (Value::List(items), i @ Value::Number(_)) => match i
                .as_int()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| items.get(n))
            {
                Some(item) => Ok(item.clone()),
                None => {
                    let label = match items.len() {
                        // The length of a sensitive list is sensitive too.
                        _ if base_s => "the list is sensitive".to_string(),
                        1 => "the list has 1 element".to_string(),
                        n => format!("the list has {n} elements"),
                    };
                    Err(self.error(
                        Diagnostic::new("kcl::index", span, format!("index {} is out of range", Shown::new(&i, idx_s)))
                            .label(label),
                    ))
                }
            },
            (Value::Object(mut m), Value::String(k)) => match m.remove(&k) {
                Some(v) => Ok(v),
                None => {
                    let keys: Vec<String> = if base_s || idx_s { vec![] } else { m.keys().cloned().collect() };
                    let shown = quoted(&k, idx_s);
                    Err(self.error(
                        Diagnostic::new("kcl::index", span, format!("no key {shown}"))
                            .label("not a key of this map")
                            .suggest(&k, keys.iter().map(String::as_str)),
                    ))
                }
            },
            (Value::List(_), v) => {
                Err(self.error(type_error(span, "a list index must be a number", Shown::new(&v, idx_s))))
            }
            (Value::Object(_), v) => {
                Err(self.error(type_error(span, "a map key must be a string", Shown::new(&v, idx_s))))
            }
            (b, _) => Err(self.error(type_error(span, "only lists and maps can be indexed", Shown::new(&b, base_s)))),
        }
    }

    fn binary(&self, op: BinaryOp, a: &Expr, b: &Expr, scope: &Scope, bound: &mut Bound) -> EvalResult {
        // `&&` and `||` do not evaluate their right side when the left decides.
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            let (l, l_s) = self.eval_m(a, scope, bound)?;
            let needs = format!("`{}` needs bools", op.symbol());
            return match (op, l) {
                (_, Value::Unknown) => Ok(Value::Unknown),
                (BinaryOp::And, Value::Bool(false)) => Ok(Value::Bool(false)),
                (BinaryOp::Or, Value::Bool(true)) => Ok(Value::Bool(true)),
                (_, Value::Bool(_)) => match self.eval_m(b, scope, bound)? {
                    (v @ (Value::Bool(_) | Value::Unknown), _) => Ok(v),
                    (v, r_s) => Err(self.error(type_error(b.span, &needs, Shown::new(&v, r_s)))),
                },
                (_, v) => Err(self.error(type_error(a.span, &needs, Shown::new(&v, l_s)))),
            };
        }
        let l = self.eval_m(a, scope, bound);
        let r = self.eval_m(b, scope, bound);
        let ((l, l_s), (r, r_s)) = (l?, r?);
        if matches!(l, Value::Unknown) || matches!(r, Value::Unknown) {
            return Ok(Value::Unknown);
        }
        let span = a.span.to(b.span);
        let num = |v: &Value, sensitive: bool, s: Span| -> Result<f64, Reported> {
            match v {
                Value::Number(n) => Ok(*n),
                v => Err(self.error(type_error(
                    s,
                    &format!("`{}` needs numbers", op.symbol()),
                    Shown::new(v, sensitive),
                ))),
            }
        };
        let num_l = || num(&l, l_s, a.span);
        let num_r = || num(&r, r_s, b.span);
        match op {
            BinaryOp::Eq => Ok(Value::Bool(l == r)),
            BinaryOp::Ne => Ok(Value::Bool(l != r)),
            BinaryOp::Range => {
                let lo = l.as_int();
                let hi = r.as_int();
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo <= hi => Ok(Value::Range(lo, hi)),
                    (Some(_), Some(_)) => Err(self.error(
                        Diagnostic::new(
                            "kcl::invalid_value",
                            span,
                            format!("empty range {}..{}", Shown::new(&l, l_s), Shown::new(&r, r_s)),
                        )
                        .label("the lower bound is above the upper bound"),
                    )),
                    (None, _) => {
                        Err(self.error(type_error(a.span, "range bounds must be whole numbers", Shown::new(&l, l_s))))
                    }
                    (_, None) => {
                        Err(self.error(type_error(b.span, "range bounds must be whole numbers", Shown::new(&r, r_s))))
                    }
                }
            }
            BinaryOp::Add => match (&l, &r) {
                (Value::Duration(x), Value::Duration(y)) => Ok(Value::Duration(x.saturating_add(*y))),
                _ => Ok(Value::Number(num_l()? + num_r()?)),
            },
            BinaryOp::Sub => match (&l, &r) {
                (Value::Duration(x), Value::Duration(y)) => Ok(Value::Duration(x.saturating_sub(*y))),
                _ => Ok(Value::Number(num_l()? - num_r()?)),
            },
            BinaryOp::Mul => match (&l, &r) {
                (Value::Duration(x), Value::Number(n)) | (Value::Number(n), Value::Duration(x)) if *n >= 0.0 => {
                    Ok(Value::Duration((*x as f64 * n).min(u64::MAX as f64) as u64))
                }
                _ => Ok(Value::Number(num_l()? * num_r()?)),
            },
            BinaryOp::Div | BinaryOp::Mod => {
                if let (Value::Duration(d), Value::Number(n), BinaryOp::Div) = (&l, &r, op) {
                    if *n > 0.0 {
                        return Ok(Value::Duration((*d as f64 / n) as u64));
                    }
                }
                let x = num_l()?;
                let y = num_r()?;
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
                    _ => num_l()?.partial_cmp(&num_r()?),
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
            BinaryOp::And | BinaryOp::Or => {
                unreachable!("`&&` and `||` return at the top of `binary`, before either side is needed")
            }
        }
    }

    fn for_expr(&self, f: &ForExpr, span: Span, scope: &Scope, bound: &mut Bound) -> EvalResult {
        let (coll, coll_s) = self.eval_m(&f.collection, scope, bound)?;
        let pairs: Vec<(Value, Value)> = match coll {
            Value::Unknown => return Ok(Value::Unknown),
            Value::List(items) => items.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect(),
            Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            v => {
                return Err(self.error(type_error(
                    f.collection.span,
                    "`for` needs a list or a map",
                    Shown::new(&v, coll_s),
                )))
            }
        };
        let mut list = vec![];
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        let mut failed = false;
        for (k, v) in pairs {
            let depth = bound.len();
            // The names bound from a sensitive collection are sensitive, keys and indexes too.
            if let Some(kv) = &f.key_var {
                bound.push((kv.name.to_string(), k, coll_s));
            }
            bound.push((f.value_var.name.to_string(), v, coll_s));
            let result = (|| -> Result<(), Reported> {
                if let Some(c) = &f.cond {
                    match self.eval_m(c, scope, bound)? {
                        (Value::Bool(true), _) => {}
                        (Value::Bool(false), _) => return Ok(()),
                        (v, sensitive) => {
                            return Err(self.error(type_error(
                                c.span,
                                "an `if` condition must be a bool",
                                Shown::new(&v, sensitive),
                            )))
                        }
                    }
                }
                let value = self.eval(&f.value, scope, bound)?;
                match &f.key {
                    None => list.push(value),
                    Some(kx) => {
                        let (key, key_s) = self.eval_m(kx, scope, bound)?;
                        let Some(key_text) = key.to_template_string() else {
                            return Err(self.error(type_error(
                                kx.span,
                                "an object key must be a string",
                                Shown::new(&key, key_s),
                            )));
                        };
                        if f.grouping {
                            match map.entry(key_text).or_insert_with(|| Value::List(vec![])) {
                                Value::List(items) => items.push(value),
                                _ => unreachable!("a grouping `for` inserts only lists into `map`"),
                            }
                        } else if map.insert(key_text.clone(), value).is_some() {
                            let shown = quoted(&key_text, key_s);
                            return Err(self.error(
                                Diagnostic::new("kcl::duplicate_key", kx.span, format!("duplicate key {shown}"))
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

    fn call(&self, name: &Ident, args: &[Expr], span: Span, scope: &Scope, bound: &mut Bound) -> EvalResult {
        let Some(sig) = FUNCTIONS.iter().find(|f| f.name == name.name) else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            return Err(self.error(
                Diagnostic::new("kcl::unknown_function", name.span, format!("unknown function `{}`", name.name))
                    .label("not a function")
                    .suggest(&name.name, names.iter().copied())
                    .help_if_none(format!("the functions are {}", names.join(", "))),
            ));
        };
        // Each argument with whether it is sensitive: errors show arguments only through
        // `shown`, `arg_err` and `elem_err`, which never spell out a sensitive one.
        let mut vals = Vec::with_capacity(args.len());
        let mut sens = Vec::with_capacity(args.len());
        let mut failed = false;
        for a in args {
            match self.eval_m(a, scope, bound) {
                Ok((v, s)) => {
                    vals.push(v);
                    sens.push(s);
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            return Err(Reported);
        }
        // The number of arguments first: an unknown argument does not make a call that can
        // never work right.
        if vals.len() < sig.min || vals.len() > sig.max {
            return Err(self.error(
                Diagnostic::new(
                    "kcl::wrong_arguments",
                    span,
                    format!("`{}` takes {}, got {}", sig.name, plural_args(sig.min, sig.max), vals.len()),
                )
                .label("called here")
                .help(format!("usage: {}", sig.usage)),
            ));
        }
        // docs/language.md (References): a call one of whose arguments merely contains a
        // value known only after apply is unknown, whatever the function.
        if vals.iter().any(Value::is_unknown) {
            return Ok(Value::Unknown);
        }
        let shown = |i: usize| Shown::new(&vals[i], sens[i]);
        let arg_err = |i: usize, what: &str| -> Reported {
            let at = args.get(i).map_or(span, |a| a.span);
            self.error(type_error(at, &format!("`{}` expects {what}", name.name), shown(i)))
        };
        // An element of the list argument `i` that is not what the function takes.
        let elem_err = |i: usize, index: usize, item: &Value, what: &str| -> Reported {
            let at = args.get(i).map_or(span, |a| a.span);
            let item = Shown::new(item, sens[i]);
            // Where a sensitive list holds what is sensitive too.
            let which = if sens[i] { "an element".to_string() } else { format!("element {index}") };
            self.error(
                Diagnostic::new("kcl::type_mismatch", at, format!("`{}` expects {what}", name.name))
                    .label(format!("{which} is {}", item.describe())),
            )
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
        match sig.name {
            "file" => {
                let rel = string(0)?;
                let dir = self.sources.dir_of(span.file);
                let path = dir.join(&rel);
                let mut cache = self.files.borrow_mut();
                let result = cache
                    .entry(path.clone())
                    .or_insert_with(|| super::read_text(&path, super::MAX_FILE_FUNCTION_BYTES))
                    .clone();
                match result {
                    Ok(text) => Ok(Value::String(text)),
                    Err(e) => Err(fail(0, format!("cannot read {}: {e}", redact(sens[0], path.display())))),
                }
            }
            "format" => {
                let spec = string(0)?;
                format_spec(&spec, sens[0], &vals[1..]).map(Value::String).map_err(|m| fail(0, m))
            }
            "join" => {
                let sep = string(0)?;
                let Value::List(items) = &vals[1] else {
                    return Err(arg_err(1, "a list"));
                };
                let mut parts = vec![];
                for (i, item) in items.iter().enumerate() {
                    match item.to_template_string() {
                        Some(s) => parts.push(s),
                        None => return Err(elem_err(1, i, item, "a list of strings")),
                    }
                }
                Ok(Value::String(parts.join(&sep)))
            }
            "split" => {
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
                let Value::Object(m) = &vals[0] else {
                    return Err(arg_err(0, "a map"));
                };
                let key = string(1)?;
                match (m.get(&key), vals.get(2)) {
                    (Some(v), _) => Ok(v.clone()),
                    (None, Some(d)) => Ok(d.clone()),
                    (None, None) => {
                        let shown = quoted(&key, sens[1]);
                        Err(fail(1, format!("no key {shown} and no default")))
                    }
                }
            }
            "keys" | "values" => {
                let Value::Object(m) = &vals[0] else {
                    return Err(arg_err(0, "a map"));
                };
                Ok(Value::List(if sig.name == "keys" {
                    m.keys().map(|k| Value::String(k.clone())).collect()
                } else {
                    m.values().cloned().collect()
                }))
            }
            "contains" => {
                let Value::List(items) = &vals[0] else {
                    return Err(arg_err(0, "a list"));
                };
                Ok(Value::Bool(items.contains(&vals[1])))
            }
            "length" => {
                let n = match &vals[0] {
                    Value::List(items) => items.len(),
                    Value::Object(m) => m.len(),
                    Value::String(s) => s.chars().count(),
                    _ => return Err(arg_err(0, "a list, a map or a string")),
                };
                Ok(Value::Number(n as f64))
            }
            "lower" => Ok(Value::String(string(0)?.to_lowercase())),
            "upper" => Ok(Value::String(string(0)?.to_uppercase())),
            "replace" => {
                let (s, from, to) = (string(0)?, string(1)?, string(2)?);
                if from.is_empty() {
                    return Err(fail(1, "the search string is empty".into()));
                }
                Ok(Value::String(s.replace(&from, &to)))
            }
            "trim" => {
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
                // `max(3, 1, 2)` or `max([3, 1, 2])`.
                let single_list = matches!(vals.as_slice(), [Value::List(_)]);
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
                        return Err(if single_list { elem_err(0, i, v, "numbers") } else { arg_err(i, "numbers") });
                    };
                    best = Some(match best {
                        None => *n,
                        Some(b) if sig.name == "min" => b.min(*n),
                        Some(b) => b.max(*n),
                    });
                }
                Ok(Value::Number(best.unwrap_or(0.0)))
            }
            "base64encode" => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(string(0)?))),
            "sha256" => {
                let digest = sha2::Sha256::digest(string(0)?.as_bytes());
                Ok(Value::String(hex::encode(digest)))
            }
            "tostring" => match &vals[0] {
                Value::Null => Ok(Value::Null),
                v => v.to_template_string().map(Value::String).ok_or_else(|| arg_err(0, "a primitive value")),
            },
            "tonumber" => match &vals[0] {
                Value::Number(n) => Ok(Value::Number(*n)),
                Value::Null => Ok(Value::Null),
                Value::String(s) => match s.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => Ok(Value::Number(n)),
                    _ => Err(fail(0, format!("{} is not a number", shown(0)))),
                },
                _ => Err(arg_err(0, "a string or a number")),
            },
            other => unreachable!(
                "`{other}` is in FUNCTIONS but has no arm here; tests/functions.rs `every_listed_function_is_implemented` calls each one"
            ),
        }
    }
}

/// Where the key `key` of an object was first set, and whether it was sensitive: a name key
/// among `items`, or one of the `computed` keys (each with its place and sensitivity).
fn first_set(items: &[ObjectItem], computed: &[(String, Span, bool)], key: &str) -> Option<(Span, bool)> {
    // Every later item with the key is a duplicate: the one key that was set is the first
    // computed one, else the first name.
    computed.iter().find(|(k, _, _)| k == key).map(|(_, span, sensitive)| (*span, *sensitive)).or_else(|| {
        items.iter().find_map(|item| match &item.key {
            ObjectKey::Ident(i) if i.name == key => Some((i.span, false)),
            _ => None,
        })
    })
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

/// `format("%s-%d", a, b)`: `%s` `%d` `%v` `%q` and `%%`. Errors name the verbs of the
/// spec, unless the spec is sensitive.
fn format_spec(spec: &str, spec_sensitive: bool, args: &[Value]) -> Result<String, String> {
    let verb_of = |v: char| redact(spec_sensitive, format_args!("%{v}"));
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
        let v = it.next().ok_or_else(|| format!("not enough values for {}", verb_of(verb)))?;
        match verb {
            's' | 'v' => out.push_str(&v.to_template_string().unwrap_or_else(|| v.to_string())),
            'd' => match v {
                Value::Number(n) => out.push_str(&format_number(n.trunc())),
                _ => return Err(format!("%d needs a number, found {}", v.type_name())),
            },
            'q' => out.push_str(&format!("{:?}", v.to_template_string().unwrap_or_else(|| v.to_string()))),
            other => {
                return Err(format!("unknown format verb {}; use %s, %d, %v, %q or %%", verb_of(other)));
            }
        }
    }
    if it.next().is_some() {
        return Err("more values than the format uses".into());
    }
    Ok(out)
}

/// A `kcl::type_mismatch` at `span`, whose label says what was found.
pub fn type_error(span: Span, what: &str, found: Shown) -> Diagnostic {
    Diagnostic::new("kcl::type_mismatch", span, what.to_string()).label(format!("this is {}", found.describe()))
}
