//! The values of variables and locals, for hovers: a variable's from the var file, then
//! `DRYDOCK_VAR_NAME`, then its default (the precedence of `drydock validate` without
//! `--var`); a local's evaluated with the config crate's evaluator, with the locals it reads
//! first. A value derived from a sensitive variable is never shown; a value that cannot be
//! known here (an error, or a reference to a cluster) is not shown either.

use std::collections::BTreeMap;
use std::path::PathBuf;

use drydock_config::eval::{Evaluator, Scope};
use drydock_config::value::{convert, Type, Value};
use drydock_config::{read_text, MAX_SOURCE_BYTES};
use drydock_syntax::ast::{Expr, ExprKind};
use drydock_syntax::diag::Sources;
use drydock_syntax::{parse_expr, parse_file};

use crate::index::{self, Index};
use crate::workspace::Config;

/// A value as a hover shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Value { text: String, origin: &'static str },
    Sensitive,
}

/// The longest value shown.
const MAX_SHOWN: usize = 600;

fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    match s.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn declared_type(e: &Expr) -> Option<Type> {
    match &e.kind {
        ExprKind::Variable(v) => Some(match v.name.as_str() {
            "string" => Type::String,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "duration" => Type::Duration,
            "percent" => Type::Percent,
            "range" => Type::Range,
            "any" => Type::Any,
            _ => return None,
        }),
        ExprKind::Call(f, args) if args.len() == 1 => {
            let inner = Box::new(declared_type(&args[0])?);
            match f.name.as_str() {
                "list" => Some(Type::List(inner)),
                "map" => Some(Type::Map(inner)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Evaluates the variables and locals of a configuration on demand.
pub struct Values<'c> {
    cfg: &'c Config,
    ix: &'c Index,
    var_file: Option<PathBuf>,
}

impl<'c> Values<'c> {
    pub fn new(cfg: &'c Config, ix: &'c Index, var_file: Option<PathBuf>) -> Values<'c> {
        Values { cfg, ix, var_file }
    }

    /// The configuration's files as sources (so that `file()` finds paths relative to them),
    /// and the var file's values as expressions (its spans in a source of its own).
    fn sources(&self) -> (Sources, BTreeMap<String, Expr>) {
        let mut sources = Sources::new();
        for f in &self.cfg.files {
            sources.add(f.path.display().to_string(), f.path.clone(), f.text.clone());
        }
        let mut given = BTreeMap::new();
        if let Some(path) = &self.var_file {
            if let Ok(text) = read_text(path, MAX_SOURCE_BYTES) {
                let id = sources.add(path.display().to_string(), path.clone(), text.clone());
                if let (Some(file), _) = parse_file(&text, id) {
                    for a in file.body.attributes() {
                        given.entry(a.name.name.to_string()).or_insert_with(|| a.value.clone());
                    }
                }
            }
        }
        (sources, given)
    }

    /// Every variable's value that can be known, with whether it is sensitive.
    fn variables(
        &self,
        ev: &mut Evaluator,
        sources_given: &BTreeMap<String, Expr>,
        extra: &[(String, Expr)],
    ) -> BTreeMap<String, (Value, &'static str)> {
        let constant =
            Scope { restriction: Some("a variable's value cannot refer to other values"), ..Scope::default() };
        let mut out = BTreeMap::new();
        for (name, v) in &self.ix.vars {
            ev.sensitive_vars.insert(name.clone(), v.sensitive);
            let ty = match &v.ty {
                Some(t) => match declared_type(t) {
                    Some(t) => t,
                    None => continue,
                },
                None => Type::Any,
            };
            let from_env = extra.iter().find(|(n, _)| n == name).map(|(_, e)| e);
            let (expr, origin) = match (sources_given.get(name), from_env, &v.default) {
                (Some(e), _, _) => (e, "from the var file"),
                (None, Some(e), _) => (e, "from the environment"),
                (None, None, Some(e)) => (e, "the default"),
                (None, None, None) => continue,
            };
            let Ok(value) = ev.eval_top(expr, &constant) else { continue };
            if let Ok(value) = convert(value, &ty) {
                out.insert(name.clone(), (value, origin));
            }
        }
        out
    }

    /// The `DRYDOCK_VAR_NAME` values of declared variables, as expressions (plain text for a
    /// string variable, as `drydock validate` reads them).
    fn env(&self, sources: &mut Sources) -> Vec<(String, Expr)> {
        let mut out = vec![];
        for (name, v) in &self.ix.vars {
            let Some(text) = std::env::var_os(format!("DRYDOCK_VAR_{name}")).and_then(|t| t.into_string().ok()) else {
                continue;
            };
            let is_string = v.ty.as_ref().and_then(declared_type) == Some(Type::String);
            let id = sources.add(format!("DRYDOCK_VAR_{name}"), PathBuf::from("."), text.clone());
            let expr = if is_string { None } else { parse_expr(&text, id).ok() };
            let expr = expr.unwrap_or_else(|| {
                let quoted = serde_json::to_string(&text).unwrap_or_default();
                parse_expr(&quoted, id).unwrap_or(Expr { kind: ExprKind::Null, span: Default::default() })
            });
            out.push((name.clone(), expr));
        }
        out
    }

    pub fn variable(&self, name: &str) -> Option<Shown> {
        let decl = self.ix.vars.get(name)?;
        if decl.sensitive {
            return Some(Shown::Sensitive);
        }
        let (mut sources, given) = self.sources();
        let env = self.env(&mut sources);
        let mut ev = Evaluator::new(&sources);
        let vars = self.variables(&mut ev, &given, &env);
        vars.get(name).map(|(v, origin)| Shown::Value { text: show(v), origin })
    }

    pub fn local(&self, name: &str) -> Option<Shown> {
        self.ix.locals.get(name)?;
        let (mut sources, given) = self.sources();
        let env = self.env(&mut sources);
        let mut ev = Evaluator::new(&sources);
        let vars = self.variables(&mut ev, &given, &env);
        let vars: BTreeMap<String, Value> = vars.into_iter().map(|(k, (v, _))| (k, v)).collect();
        // The locals `name` reads, depth first, each before what reads it.
        let mut order: Vec<String> = vec![];
        let mut visiting: Vec<String> = vec![];
        self.order(name, &mut order, &mut visiting);
        let mut locals: BTreeMap<String, Value> = BTreeMap::new();
        let mut sensitive = false;
        for n in &order {
            let Some(decl) = self.ix.locals.get(n) else { continue };
            let scope = Scope {
                vars: Some(&vars),
                locals: Some(&locals),
                clusters: None,
                each: None,
                each_sensitive: false,
                restriction: Some("a hover does not evaluate clusters"),
            };
            let (v, s) = ev.eval_marked(&decl.value, &scope);
            let Ok(v) = v else { return None };
            ev.sensitive_locals.borrow_mut().insert(n.clone(), s);
            if n == name {
                sensitive = s;
            }
            locals.insert(n.clone(), v);
        }
        if sensitive {
            return Some(Shown::Sensitive);
        }
        locals.get(name).map(|v| Shown::Value { text: show(v), origin: "evaluated" })
    }

    fn order(&self, name: &str, order: &mut Vec<String>, visiting: &mut Vec<String>) {
        if order.iter().any(|n| n == name) || visiting.iter().any(|n| n == name) || visiting.len() > 256 {
            return;
        }
        let Some(decl) = self.ix.locals.get(name) else { return };
        visiting.push(name.to_string());
        let mut deps = vec![];
        index::expr_refs(&decl.value, &mut |s, _| {
            if let index::Symbol::Local(n) = s {
                deps.push(n);
            }
        });
        for d in deps {
            self.order(&d, order, visiting);
        }
        visiting.pop();
        order.push(name.to_string());
    }
}
