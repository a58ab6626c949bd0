//! Walking expressions: visiting children, and rewriting spans.

use super::ast::*;
use crate::diag::Span;

/// Calls `f` on each direct sub-expression of `e`, in source order.
pub fn for_each_child<'a>(e: &'a Expr, mut f: impl FnMut(&'a Expr)) {
    match &e.kind {
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Number(_)
        | ExprKind::Duration(_)
        | ExprKind::Percent(_)
        | ExprKind::Variable(_) => {}
        ExprKind::Template(parts) | ExprKind::Heredoc { parts, .. } => {
            for p in parts {
                if let TemplatePart::Interp(x) = p {
                    f(x)
                }
            }
        }
        ExprKind::List(items) => items.iter().for_each(f),
        ExprKind::Object(items) => {
            for i in items {
                if let ObjectKey::Expr(k) = &i.key {
                    f(k)
                }
                f(&i.value)
            }
        }
        ExprKind::GetAttr(x, _) | ExprKind::Unary(_, x) | ExprKind::Paren(x) => f(x),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            f(a);
            f(b)
        }
        ExprKind::Call(_, args) => args.iter().for_each(f),
        ExprKind::Conditional(c, a, b) => {
            f(c);
            f(a);
            f(b)
        }
        ExprKind::For(fe) => {
            f(&fe.collection);
            if let Some(k) = &fe.key {
                f(k)
            }
            f(&fe.value);
            if let Some(c) = &fe.cond {
                f(c)
            }
        }
    }
}

/// Applies `f` to every span inside `e` (expressions, names, keys).
pub fn walk_spans_mut(e: &mut Expr, f: &mut impl FnMut(&mut Span)) {
    f(&mut e.span);
    match &mut e.kind {
        ExprKind::Null | ExprKind::Bool(_) | ExprKind::Number(_) | ExprKind::Duration(_) | ExprKind::Percent(_) => {}
        ExprKind::Variable(i) => f(&mut i.span),
        ExprKind::Template(parts) | ExprKind::Heredoc { parts, .. } => {
            for p in parts {
                if let TemplatePart::Interp(x) = p {
                    walk_spans_mut(x, f)
                }
            }
        }
        ExprKind::List(items) => items.iter_mut().for_each(|x| walk_spans_mut(x, f)),
        ExprKind::Object(items) => {
            for i in items {
                match &mut i.key {
                    ObjectKey::Ident(id) => f(&mut id.span),
                    ObjectKey::Expr(k) => walk_spans_mut(k, f),
                }
                walk_spans_mut(&mut i.value, f)
            }
        }
        ExprKind::GetAttr(x, name) => {
            walk_spans_mut(x, f);
            f(&mut name.span)
        }
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => walk_spans_mut(x, f),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            walk_spans_mut(a, f);
            walk_spans_mut(b, f)
        }
        ExprKind::Call(name, args) => {
            f(&mut name.span);
            args.iter_mut().for_each(|x| walk_spans_mut(x, f))
        }
        ExprKind::Conditional(c, a, b) => {
            walk_spans_mut(c, f);
            walk_spans_mut(a, f);
            walk_spans_mut(b, f)
        }
        ExprKind::For(fe) => {
            if let Some(k) = &mut fe.key_var {
                f(&mut k.span)
            }
            f(&mut fe.value_var.span);
            walk_spans_mut(&mut fe.collection, f);
            if let Some(k) = &mut fe.key {
                walk_spans_mut(k, f)
            }
            walk_spans_mut(&mut fe.value, f);
            if let Some(c) = &mut fe.cond {
                walk_spans_mut(c, f)
            }
        }
    }
}

/// Applies `f` to every span in a body: items, names, labels and expressions.
pub fn body_spans_mut(b: &mut Body, f: &mut impl FnMut(&mut Span)) {
    for item in &mut b.items {
        match item {
            Item::Attribute(a) => {
                f(&mut a.span);
                f(&mut a.name.span);
                walk_spans_mut(&mut a.value, f);
            }
            Item::Block(bl) => {
                f(&mut bl.span);
                f(&mut bl.kind.span);
                bl.labels.iter_mut().for_each(|l| f(&mut l.span));
                body_spans_mut(&mut bl.body, f);
            }
        }
    }
}
