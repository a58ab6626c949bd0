//! The pest parse tree turned into the AST: one builder function per grammar rule.
//! Parsing never panics: a syntax error becomes a `kcl::syntax` diagnostic, and inputs
//! nested deeper than [`MAX_NESTING`] are refused before pest could exhaust the stack.

use std::cell::RefCell;
use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use super::ast::*;
use super::lit::{self, push_lit};
use crate::diag::{Diagnostic, FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/kcl.pest"]
struct KclParser;

/// Deepest bracket nesting (or run of prefix operators) accepted.
pub const MAX_NESTING: usize = 128;
/// Most binary operators accepted in one flat expression.
pub const MAX_OPERATORS: usize = 1000;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    use Assoc::Left;
    PrattParser::new()
        .op(Op::infix(Rule::op_range, Left))
        .op(Op::infix(Rule::op_or, Left))
        .op(Op::infix(Rule::op_and, Left))
        .op(Op::infix(Rule::op_eq, Left) | Op::infix(Rule::op_ne, Left))
        .op(Op::infix(Rule::op_lt, Left)
            | Op::infix(Rule::op_le, Left)
            | Op::infix(Rule::op_gt, Left)
            | Op::infix(Rule::op_ge, Left))
        .op(Op::infix(Rule::op_add, Left) | Op::infix(Rule::op_sub, Left))
        .op(Op::infix(Rule::op_mul, Left) | Op::infix(Rule::op_div, Left) | Op::infix(Rule::op_mod, Left))
        .op(Op::prefix(Rule::op_neg) | Op::prefix(Rule::op_not))
        .op(Op::postfix(Rule::get_attr) | Op::postfix(Rule::index))
});

/// Parses one file. On a syntax error the result is `None` and the diagnostics say why.
///
/// The hand-written parser in `fast.rs` takes every input it can; on a syntax error the
/// pest parser runs instead and produces the diagnostic (it names what was expected).
pub fn parse_file(text: &str, file: FileId) -> (Option<File>, Vec<Diagnostic>) {
    if let Some(diag) = check_nesting(text, file) {
        return (None, vec![diag]);
    }
    if let Some((f, diags)) = super::fast::parse(text, file) {
        return (Some(f), diags);
    }
    parse_file_pest(text, file)
}

/// The fast parser alone (`None` on a syntax error), for the differential test.
#[doc(hidden)]
pub fn parse_file_fast(text: &str, file: FileId) -> Option<(File, Vec<Diagnostic>)> {
    if check_nesting(text, file).is_some() {
        return None;
    }
    super::fast::parse(text, file)
}

/// The pest parser alone: the reference the fast parser is tested against.
#[doc(hidden)]
pub fn parse_file_pest(text: &str, file: FileId) -> (Option<File>, Vec<Diagnostic>) {
    if let Some(diag) = check_nesting(text, file) {
        return (None, vec![diag]);
    }
    let mut pairs = match KclParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(e) => return (None, vec![syntax_error(detailed(e, text), text, file)]),
    };
    let root = pairs.next().expect("a successful parse of Rule::file yields exactly one `file` pair");
    let comments = root
        .clone()
        .into_inner()
        .flatten()
        .filter(|p| p.as_rule() == Rule::COMMENT)
        .map(|p| Comment { span: span(file, &p), text: p.as_str().trim_end().to_string() })
        .collect();
    let b = Builder { file, diags: RefCell::new(vec![]) };
    let body = root.into_inner().find(|p| p.as_rule() == Rule::body).map(|p| b.body(p)).unwrap_or_default();
    let diags = b.diags.into_inner();
    (Some(File { body, comments }), diags)
}

/// Parses a single expression (used for `--var` values and tests).
pub fn parse_expr(text: &str, file: FileId) -> Result<Expr, Vec<Diagnostic>> {
    if let Some(diag) = check_nesting(text, file) {
        return Err(vec![diag]);
    }
    // An expression is parsed as the value of a synthetic attribute so that the
    // grammar has a single entry point; spans still point into `text`.
    let wrapped = format!("x={text}");
    let shift = 2;
    match KclParser::parse(Rule::file, &wrapped) {
        Err(e) => Err(vec![shift_diag(syntax_error(detailed(e, &wrapped), &wrapped, file), shift, text.len())]),
        Ok(mut pairs) => {
            let root = pairs.next().expect("a successful parse of Rule::file yields exactly one `file` pair");
            let b = Builder { file, diags: RefCell::new(vec![]) };
            let body = root.into_inner().find(|p| p.as_rule() == Rule::body).map(|p| b.body(p)).unwrap_or_default();
            let mut diags = b.diags.into_inner();
            match body.items.as_slice() {
                [Item::Attribute(a)] if diags.is_empty() => {
                    let mut e = a.value.clone();
                    shift_expr(&mut e, shift);
                    Ok(e)
                }
                _ => {
                    if diags.is_empty() {
                        diags.push(Diagnostic::new(
                            "kcl::syntax",
                            Span::new(file, 0, text.len()),
                            "expected one expression",
                        ));
                    }
                    Err(diags.into_iter().map(|d| shift_diag(d, shift, text.len())).collect())
                }
            }
        }
    }
}

fn shift_diag(mut d: Diagnostic, shift: u32, len: usize) -> Diagnostic {
    if let Some(s) = &mut d.span {
        s.start = s.start.saturating_sub(shift).min(len as u32);
        s.end = s.end.saturating_sub(shift).min(len as u32);
    }
    d
}

fn shift_expr(e: &mut Expr, shift: u32) {
    super::visit::walk_spans_mut(e, &mut |s: &mut Span| {
        s.start -= shift;
        s.end -= shift;
    });
}

fn span(file: FileId, p: &Pair<Rule>) -> Span {
    let s = p.as_span();
    Span::new(file, s.start(), s.end())
}

/// Refuses inputs nested deeper than pest and the tree walkers can safely recurse.
fn check_nesting(text: &str, file: FileId) -> Option<Diagnostic> {
    /// What a byte does: how it changes the depth, whether it is a prefix operator, and
    /// whether it keeps a run of them going (a prefix operator or white space; anything else
    /// ends it), as numbers and a mask, so that the loop has no branch to mispredict.
    #[derive(Clone, Copy)]
    struct Effect {
        depth: isize,
        prefix: usize,
        keeps_run: usize,
    }
    const EFFECTS: [Effect; 256] = {
        let mut t = [Effect { depth: 0, prefix: 0, keeps_run: 0 }; 256];
        let mut i = 0;
        while i < 256 {
            let c = i as u8;
            t[i] = Effect {
                depth: match c {
                    b'(' | b'[' | b'{' => 1,
                    b')' | b']' | b'}' => -1,
                    _ => 0,
                },
                prefix: matches!(c, b'!' | b'-') as usize,
                keeps_run: if matches!(c, b'!' | b'-' | b' ' | b'\t' | b'\n' | b'\r') { usize::MAX } else { 0 },
            };
            i += 1;
        }
        t
    };
    // Bytes, not characters: every character that counts is ASCII, and no byte of a longer
    // UTF-8 character is (each ends the run, as the character would).
    let mut depth = 0isize;
    let mut prefix_run = 0usize;
    for (i, &c) in text.as_bytes().iter().enumerate() {
        let e = EFFECTS[usize::from(c)];
        depth = (depth + e.depth).max(0);
        prefix_run = (prefix_run + e.prefix) & e.keeps_run;
        // Only what deepens can get here: an opening bracket or a prefix operator, one byte.
        if depth > MAX_NESTING as isize || prefix_run > MAX_NESTING {
            return Some(
                Diagnostic::new("kcl::too_deep", Span::new(file, i, i + 1), "nested too deeply")
                    .label(format!("more than {MAX_NESTING} levels"))
                    .help("split the expression with locals"),
            );
        }
    }
    None
}

fn rule_name(r: &Rule) -> String {
    match r {
        Rule::EOI => "end of file",
        Rule::body | Rule::attribute | Rule::block => "an attribute or a block",
        Rule::ident | Rule::key_ident => "a name",
        Rule::label | Rule::label_inner => "a quoted label",
        Rule::expr | Rule::variable | Rule::paren | Rule::call => "an expression",
        Rule::number => "a number",
        Rule::duration => "a duration",
        Rule::percent => "a percentage",
        Rule::string | Rule::str_lit => "a string",
        Rule::str_escape => "an escape sequence",
        Rule::heredoc | Rule::heredoc_line | Rule::heredoc_lit => "heredoc text",
        Rule::heredoc_close => "the heredoc's closing marker",
        Rule::list | Rule::for_list => "a list",
        Rule::object | Rule::for_object => "an object",
        Rule::object_item => "an object item",
        Rule::index => "`[`",
        Rule::get_attr => "`.`",
        Rule::interp => "`${`",
        Rule::for_cond => "`if`",
        Rule::for_group => "`...`",
        Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_mod
        | Rule::op_range => "an operator",
        Rule::op_neg | Rule::op_not => "an expression",
        _ => "something else",
    }
    .to_string()
}

/// Parses again with pest's error detail on, which lists the literal tokens that were
/// expected (`,`, `]`). It is off for the first parse because it costs throughput.
fn detailed(first: pest::error::Error<Rule>, text: &str) -> pest::error::Error<Rule> {
    pest::set_error_detail(true);
    let again = KclParser::parse(Rule::file, text);
    pest::set_error_detail(false);
    match again {
        Err(e) => e,
        Ok(_) => first,
    }
}

fn syntax_error(e: pest::error::Error<Rule>, text: &str, file: FileId) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    let start = start.min(text.len());
    // Point at the offending character (or the end of the file).
    let end = if end > start { end } else { text[start..].chars().next().map_or(start, |c| start + c.len_utf8()) };
    let found = match text[start..].chars().next() {
        None => "end of file".to_string(),
        Some('\n') => "end of line".to_string(),
        Some(c) => format!("`{}`", c.escape_debug()),
    };
    let mut expected: Vec<String> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.iter().map(rule_name).collect(),
        ErrorVariant::CustomError { message } => vec![message.clone()],
    };
    if let Some(attempts) = e.parse_attempts().filter(|a| a.max_position == start) {
        for t in attempts.expected_tokens() {
            // `ParsingToken` is not exported; its Display is the token itself.
            let token = t.to_string();
            let skip = matches!(token.as_str(), " " | "\t" | "\r" | "\n" | "#" | "//" | "/*" | "${" | "$${")
                || token.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                || (token.len() > 3 && token.contains(".."));
            if !skip {
                expected.push(format!("`{}`", token.replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r")));
            }
        }
    }
    // Operators are listed once as "an operator", not one by one.
    let ops = ["||", "&&", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", ".."];
    expected.retain(|n| !ops.iter().any(|o| *n == format!("`{o}`")));
    expected.sort();
    expected.dedup();
    expected.retain(|n| n != "something else");
    // Where an expression may start, the tokens that start one add nothing to "an expression".
    if expected.iter().any(|n| n == "an expression") {
        let starts = ["`!`", "`-`", "`(`", "`<<`", "`[`", "`\"`", "`false`", "`null`", "`true`", "`{`"];
        expected.retain(|n| !starts.contains(&n.as_str()));
    }
    let message = format!("unexpected {found}");
    let what = if expected.is_empty() { "something else".to_string() } else { join_or(&expected) };
    let (span, label) = if start >= text.trim_end().len() && !text.trim_end().is_empty() {
        // At the end of the file there is nothing to underline: point at the last token.
        let last = text.trim_end();
        let c = last.chars().next_back().map_or(1, char::len_utf8);
        (Span::new(file, last.len() - c, last.len()), format!("expected {what} after this"))
    } else {
        (Span::new(file, start, end), format!("expected {what}"))
    };
    let mut d = Diagnostic::new("kcl::syntax", span, message).label(label);
    if text[..start].matches("${").count() > text[..start].matches('}').count() && found == "end of line" {
        d = d.help("a quoted string ends on its line: use a heredoc (<<EOT) for several lines");
    }
    d
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

struct Builder {
    file: FileId,
    diags: RefCell<Vec<Diagnostic>>,
}

/// The children of a pair with comments set aside (they are collected separately).
fn kids(p: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    p.into_inner().filter(|p| p.as_rule() != Rule::COMMENT)
}

impl Builder {
    fn span(&self, p: &Pair<Rule>) -> Span {
        span(self.file, p)
    }

    fn error(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn body(&self, p: Pair<Rule>) -> Body {
        let items = kids(p)
            .map(|item| match item.as_rule() {
                Rule::attribute => Item::Attribute(self.attribute(item)),
                Rule::block => Item::Block(self.block(item)),
                r => unexpected_rule(r),
            })
            .collect();
        Body { items }
    }

    fn attribute(&self, p: Pair<Rule>) -> Attribute {
        let mut it = kids(p);
        let name = self.ident(it.next().expect("the grammar: `attribute = { ident ~ \"=\" ~ expr }` has a name"));
        let value = self.expr(it.next().expect("the grammar: `attribute = { ident ~ \"=\" ~ expr }` has a value"));
        // Not the pair's span: pest leaves trailing white space and comments in a rule
        // that ends with an optional part (here, inside `expr`).
        let span = name.span.to(value.span);
        Attribute { name, value, span }
    }

    fn block(&self, p: Pair<Rule>) -> Block {
        let span = self.span(&p);
        let mut kind = None;
        let mut labels = vec![];
        let mut body = Body::default();
        for k in kids(p) {
            match k.as_rule() {
                Rule::ident => kind = Some(self.ident(k)),
                Rule::label => labels.push(self.label(k)),
                Rule::body => body = self.body(k),
                r => unexpected_rule(r),
            }
        }
        Block {
            kind: kind.expect("the grammar: `block = { ident ~ label* ~ … }` starts with its kind"),
            labels,
            body,
            span,
        }
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident { name: Name::new(p.as_str()), span: self.span(&p) }
    }

    fn label(&self, p: Pair<Rule>) -> Label {
        let span = self.span(&p);
        let inner = p.into_inner().next().expect("the grammar: `label` always holds a `label_inner`, empty or not");
        let value = lit::unescape_name(inner.as_str(), self.span(&inner), &mut self.diags.borrow_mut());
        Label { value, span }
    }

    fn unescape(&self, raw: &str, span: Span) -> String {
        lit::unescape(raw, span, &mut self.diags.borrow_mut())
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        debug_assert_eq!(p.as_rule(), Rule::expr);
        let mut seq: Vec<Pair<Rule>> = kids(p).collect();
        // `cond ? a : b` puts the two branches after the operator sequence.
        let cond = if seq.len() >= 3
            && seq[seq.len() - 1].as_rule() == Rule::expr
            && seq[seq.len() - 2].as_rule() == Rule::expr
        {
            let no = seq.pop().expect("`seq.len() >= 3` was checked above");
            let yes = seq.pop().expect("`seq.len() >= 3` was checked above");
            Some((yes, no))
        } else {
            None
        };
        let operators = seq.iter().filter(|p| is_infix(p.as_rule())).count();
        let head = if operators > MAX_OPERATORS {
            // The span of the operator sequence (the pair's own span may end in white space).
            let start = self.span(&seq[0]).to(self.span(&seq[seq.len() - 1]));
            self.error(lit::too_many_operators(start));
            Expr { kind: ExprKind::Null, span: start }
        } else {
            self.operators(seq.into_iter())
        };
        match cond {
            None => head,
            Some((yes, no)) => {
                let no = self.expr(no);
                // The span ends with the last branch, not with the pair (see `attribute`).
                let span = head.span.to(no.span);
                Expr { kind: ExprKind::Conditional(Box::new(head), Box::new(self.expr(yes)), Box::new(no)), span }
            }
        }
    }

    fn operators<'i>(&self, pairs: impl Iterator<Item = Pair<'i, Rule>>) -> Expr {
        PRATT
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, e| {
                let span = self.span(&op).to(e.span);
                let op = if op.as_rule() == Rule::op_neg { UnaryOp::Neg } else { UnaryOp::Not };
                Expr { kind: ExprKind::Unary(op, Box::new(e)), span }
            })
            .map_postfix(|e, op| {
                let span = e.span.to(self.span(&op));
                match op.as_rule() {
                    Rule::get_attr => {
                        let name = self
                            .ident(kids(op).next().expect("the grammar: `get_attr = { \".\" ~ ident }` has a name"));
                        Expr { kind: ExprKind::GetAttr(Box::new(e), name), span }
                    }
                    Rule::index => {
                        let idx = self.expr(
                            kids(op).next().expect("the grammar: `index = { \"[\" ~ expr ~ \"]\" }` has an expression"),
                        );
                        Expr { kind: ExprKind::Index(Box::new(e), Box::new(idx)), span }
                    }
                    r => unexpected_rule(r),
                }
            })
            .map_infix(|l, op, r| {
                let op = match op.as_rule() {
                    Rule::op_or => BinaryOp::Or,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_eq => BinaryOp::Eq,
                    Rule::op_ne => BinaryOp::Ne,
                    Rule::op_lt => BinaryOp::Lt,
                    Rule::op_le => BinaryOp::Le,
                    Rule::op_gt => BinaryOp::Gt,
                    Rule::op_ge => BinaryOp::Ge,
                    Rule::op_add => BinaryOp::Add,
                    Rule::op_sub => BinaryOp::Sub,
                    Rule::op_mul => BinaryOp::Mul,
                    Rule::op_div => BinaryOp::Div,
                    Rule::op_mod => BinaryOp::Mod,
                    Rule::op_range => BinaryOp::Range,
                    r => unexpected_rule(r),
                };
                let span = l.span.to(r.span);
                Expr { kind: ExprKind::Binary(op, Box::new(l), Box::new(r)), span }
            })
            .parse(pairs)
    }

    fn primary(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::lit_true => ExprKind::Bool(true),
            Rule::lit_false => ExprKind::Bool(false),
            Rule::lit_null => ExprKind::Null,
            Rule::number => lit::number(p.as_str(), span, &mut self.diags.borrow_mut()),
            Rule::duration => lit::duration(p.as_str(), span, &mut self.diags.borrow_mut()),
            Rule::percent => lit::percent(p.as_str(), span, &mut self.diags.borrow_mut()),
            Rule::string => ExprKind::Template(self.template(p)),
            Rule::heredoc => self.heredoc(p),
            Rule::variable => {
                ExprKind::Variable(self.ident(kids(p).next().expect("the grammar: `variable = { ident }`")))
            }
            Rule::paren => ExprKind::Paren(Box::new(
                self.expr(kids(p).next().expect("the grammar: `paren = { \"(\" ~ expr ~ \")\" }` has an expression")),
            )),
            Rule::list => ExprKind::List(kids(p).map(|e| self.expr(e)).collect()),
            Rule::object => ExprKind::Object(kids(p).map(|i| self.object_item(i)).collect()),
            Rule::call => {
                let mut it = kids(p);
                let name =
                    self.ident(it.next().expect("the grammar: `call = { ident ~ \"(\" ~ … }` starts with a name"));
                ExprKind::Call(name, it.map(|a| self.expr(a)).collect())
            }
            Rule::for_list | Rule::for_object => ExprKind::For(Box::new(self.for_expr(p))),
            r => unexpected_rule(r),
        };
        Expr { kind, span }
    }

    fn object_item(&self, p: Pair<Rule>) -> ObjectItem {
        let mut it = kids(p);
        let k = it.next().expect("the grammar: `object_item = { object_key ~ … ~ expr }` has a key");
        let key = match k.as_rule() {
            Rule::key_ident => {
                ObjectKey::Ident(self.ident(kids(k).next().expect("the grammar: `key_ident = { ident }`")))
            }
            Rule::string | Rule::paren => ObjectKey::Expr(self.primary(k)),
            r => unexpected_rule(r),
        };
        let value = self.expr(it.next().expect("the grammar: `object_item = { object_key ~ … ~ expr }` has a value"));
        ObjectItem { key, value }
    }

    fn for_expr(&self, p: Pair<Rule>) -> ForExpr {
        let is_object = p.as_rule() == Rule::for_object;
        let mut idents = vec![];
        let mut exprs = vec![];
        let mut grouping = false;
        let mut cond = None;
        for k in kids(p) {
            match k.as_rule() {
                Rule::ident => idents.push(self.ident(k)),
                Rule::kw_for | Rule::kw_in => {}
                Rule::expr => exprs.push(self.expr(k)),
                Rule::for_group => grouping = true,
                Rule::for_cond => {
                    cond = Some(
                        self.expr(
                            kids(k)
                                .find(|p| p.as_rule() == Rule::expr)
                                .expect("the grammar: `for_cond = { kw_if ~ expr }` has an expression"),
                        ),
                    )
                }
                r => unexpected_rule(r),
            }
        }
        let value_var = idents.pop().expect("the grammar: `for_intro` names at least one variable");
        let key_var = idents.pop();
        let mut exprs = exprs.into_iter();
        let collection = exprs.next().expect("the grammar: `for_intro` has the collection after `in`");
        let (key, value) = if is_object {
            let k = exprs.next().expect("the grammar: `for_object` has a key expression before `=>`");
            (Some(k), exprs.next().expect("the grammar: `for_object` has a value expression after `=>`"))
        } else {
            (None, exprs.next().expect("the grammar: `for_list` has a value expression after `:`"))
        };
        ForExpr { key_var, value_var, collection, key, value, grouping, cond }
    }

    fn template(&self, p: Pair<Rule>) -> Vec<TemplatePart> {
        let mut parts: Vec<TemplatePart> = vec![];
        for k in kids(p) {
            match k.as_rule() {
                Rule::str_lit | Rule::heredoc_lit => push_lit(&mut parts, &k.as_str().replace("$${", "${")),
                Rule::str_escape => {
                    let s = self.unescape(k.as_str(), self.span(&k));
                    push_lit(&mut parts, &s)
                }
                Rule::interp => parts.push(TemplatePart::Interp(self.expr(
                    kids(k).next().expect("the grammar: `interp = !{ \"${\" ~ expr ~ \"}\" }` has an expression"),
                ))),
                r => unexpected_rule(r),
            }
        }
        parts
    }

    fn heredoc(&self, p: Pair<Rule>) -> ExprKind {
        let mut indent = false;
        let mut marker = String::new();
        // Each line's parts, the newline included.
        let mut lines: Vec<Vec<TemplatePart>> = vec![];
        for k in kids(p) {
            match k.as_rule() {
                Rule::heredoc_indent => indent = true,
                Rule::ident => marker = k.as_str().to_string(),
                Rule::heredoc_line => {
                    let mut line = self.template(k);
                    push_lit(&mut line, "\n");
                    lines.push(line);
                }
                Rule::heredoc_close => {}
                r => unexpected_rule(r),
            }
        }
        let parts = lit::join_heredoc_lines(lines, indent);
        ExprKind::Heredoc { marker, indent, parts }
    }
}

/// A grammar invariant was broken: a rule appeared where the grammar does not allow it.
#[track_caller]
fn unexpected_rule(r: Rule) -> ! {
    unreachable!("pest builds only the trees the grammar allows, and it allows no {r:?} here")
}

fn is_infix(r: Rule) -> bool {
    matches!(
        r,
        Rule::op_or
            | Rule::op_and
            | Rule::op_eq
            | Rule::op_ne
            | Rule::op_lt
            | Rule::op_le
            | Rule::op_gt
            | Rule::op_ge
            | Rule::op_add
            | Rule::op_sub
            | Rule::op_mul
            | Rule::op_div
            | Rule::op_mod
            | Rule::op_range
    )
}

/// Pest's parse alone, without building the AST: the ceiling for the bench to compare with.
#[doc(hidden)]
pub fn raw_parse_token_count(text: &str) -> Option<usize> {
    KclParser::parse(Rule::file, text).ok().map(|p| p.flatten().count())
}
