//! The fast parser: a hand-written recursive-descent parser that builds exactly the AST
//! the pest grammar (`grammar/kcl.pest`) does, at several times its speed. It mirrors
//! the grammar rule by rule with the same PEG semantics: ordered choice, a failed
//! optional or repetition backs off to where it started, white space and comments are
//! skipped between the elements of a rule but not inside strings, numbers or heredocs.
//!
//! It only has to be right on inputs it accepts: any syntax error returns `None`, and
//! `parse_file` then runs the pest parser, which decides and explains the error. The
//! differential test (`tests/parsers.rs`) holds the two to the same trees.

use super::ast::*;
use super::lit::{self, push_lit};
use crate::diag::{Diagnostic, FileId, Span};

/// Parses a whole file, or `None` on a syntax error.
pub(super) fn parse(text: &str, file: FileId) -> Option<(File, Vec<Diagnostic>)> {
    let mut p = P { s: text, b: text.as_bytes(), pos: 0, file, comments: vec![], diags: vec![] };
    p.skip();
    let body = p.body()?;
    p.skip();
    if p.pos != p.b.len() {
        return None;
    }
    Some((File { body, comments: p.comments }, p.diags))
}

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    file: FileId,
    comments: Vec<Comment>,
    diags: Vec<Diagnostic>,
}

/// Where to back off to: position, comments and diagnostics seen so far.
#[derive(Clone, Copy)]
struct Mark(usize, usize, usize);

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl<'a> P<'a> {
    fn mark(&self) -> Mark {
        Mark(self.pos, self.comments.len(), self.diags.len())
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.0;
        self.comments.truncate(m.1);
        self.diags.truncate(m.2);
    }

    fn peek(&self) -> u8 {
        self.b.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, off: usize) -> u8 {
        self.b.get(self.pos + off).copied().unwrap_or(0)
    }

    fn at(&self, lit: &str) -> bool {
        self.b[self.pos..].starts_with(lit.as_bytes())
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.at(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    /// The grammar's implicit WHITESPACE and COMMENT between elements.
    fn skip(&mut self) {
        loop {
            while matches!(self.peek(), b' ' | b'\t' | b'\r' | b'\n') {
                self.pos += 1;
            }
            let start = self.pos;
            if self.at("#") || self.at("//") {
                self.pos = match memchr(b'\n', &self.b[start..]) {
                    Some(off) => start + off,
                    None => self.b.len(),
                };
            } else if self.at("/*") {
                match find(&self.b[start + 2..], b"*/") {
                    Some(off) => self.pos = start + 2 + off + 2,
                    None => return, // an unterminated block comment is not a comment
                }
            } else {
                return;
            }
            let text = self.s[start..self.pos].trim_end().to_string();
            self.comments.push(Comment { span: self.span(start, self.pos), text });
        }
    }

    fn ident(&mut self) -> Option<Ident> {
        if !is_ident_start(self.peek()) {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        while is_ident_char(self.peek()) {
            self.pos += 1;
        }
        Some(Ident { name: Name::new(&self.s[start..self.pos]), span: self.span(start, self.pos) })
    }

    /// A keyword: the word, not followed by a character that would continue a name.
    fn keyword(&mut self, word: &str) -> bool {
        if self.at(word) && !is_ident_char(self.peek_at(word.len())) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    // ------------------------------------------------------------ structure

    /// `body = { (attribute | block)* }`
    fn body(&mut self) -> Option<Body> {
        let mut items = vec![];
        loop {
            let m = self.mark();
            if !items.is_empty() {
                self.skip();
            }
            if !is_ident_start(self.peek()) {
                self.reset(m);
                break;
            }
            let item = self.item()?;
            items.push(item);
        }
        Some(Body { items })
    }

    fn item(&mut self) -> Option<Item> {
        let name = self.ident()?;
        self.skip();
        if self.peek() == b'=' {
            // `attribute = { ident ~ "=" ~ !"=" ~ expr }`
            self.pos += 1;
            self.skip();
            if self.peek() == b'=' {
                return None;
            }
            let value = self.expr()?;
            let span = name.span.to(value.span);
            return Some(Item::Attribute(Attribute { name, value, span }));
        }
        // `block = { ident ~ label* ~ "{" ~ body ~ "}" }`
        let mut labels = vec![];
        while self.peek() == b'"' {
            labels.push(self.label()?);
            self.skip();
        }
        if !self.eat("{") {
            return None;
        }
        self.skip();
        let body = self.body()?;
        self.skip();
        if !self.eat("}") {
            return None;
        }
        let span = self.span(name.span.start as usize, self.pos);
        Some(Item::Block(Block { kind: name, labels, body, span }))
    }

    /// `label = ${ "\"" ~ label_inner ~ "\"" }`
    fn label(&mut self) -> Option<Label> {
        let start = self.pos;
        self.pos += 1;
        let inner = self.pos;
        loop {
            match self.peek() {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    self.pos += 1;
                    self.any_char()?;
                }
                _ => self.any_char()?,
            }
        }
        let inner_span = self.span(inner, self.pos);
        let value = lit::unescape_name(&self.s[inner..self.pos], inner_span, &mut self.diags);
        self.pos += 1;
        Some(Label { value, span: self.span(start, self.pos) })
    }

    /// Steps over one character (`ANY`); `None` at the end of the input.
    fn any_char(&mut self) -> Option<()> {
        let c = self.s[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        Some(())
    }

    // ------------------------------------------------------------ expressions

    /// `expr = { operand_seq ~ ("?" ~ expr ~ ":" ~ expr)? }`
    fn expr(&mut self) -> Option<Expr> {
        let head = self.operand_seq()?;
        let m = self.mark();
        self.skip();
        if self.eat("?") {
            self.skip();
            if let Some(yes) = self.expr() {
                self.skip();
                if self.eat(":") {
                    self.skip();
                    if let Some(no) = self.expr() {
                        let span = head.span.to(no.span);
                        return Some(Expr {
                            kind: ExprKind::Conditional(Box::new(head), Box::new(yes), Box::new(no)),
                            span,
                        });
                    }
                }
            }
        }
        self.reset(m);
        Some(head)
    }

    /// `unary ~ (infix ~ unary)*`, then the operator tree by precedence (all left-associative).
    fn operand_seq(&mut self) -> Option<Expr> {
        let first = self.unary()?;
        // The operands after the first: most expressions have none, and then allocate nothing.
        let mut operands = vec![];
        let mut ops: Vec<BinaryOp> = vec![];
        loop {
            let m = self.mark();
            self.skip();
            let Some((op, len)) = self.infix_at() else {
                self.reset(m);
                break;
            };
            self.pos += len;
            self.skip();
            match self.unary() {
                Some(e) => {
                    ops.push(op);
                    operands.push(e);
                }
                None => {
                    self.reset(m);
                    break;
                }
            }
        }
        let Some(last) = operands.last() else {
            return Some(first);
        };
        if ops.len() > super::MAX_OPERATORS {
            let span = first.span.to(last.span);
            self.diags.push(lit::too_many_operators(span));
            return Some(Expr { kind: ExprKind::Null, span });
        }
        Some(build_tree(first, operands, ops))
    }

    fn infix_at(&self) -> Option<(BinaryOp, usize)> {
        const OPS: [(&str, BinaryOp); 14] = [
            ("||", BinaryOp::Or),
            ("&&", BinaryOp::And),
            ("==", BinaryOp::Eq),
            ("!=", BinaryOp::Ne),
            ("<=", BinaryOp::Le),
            (">=", BinaryOp::Ge),
            ("<", BinaryOp::Lt),
            (">", BinaryOp::Gt),
            ("+", BinaryOp::Add),
            ("-", BinaryOp::Sub),
            ("*", BinaryOp::Mul),
            ("/", BinaryOp::Div),
            ("%", BinaryOp::Mod),
            ("..", BinaryOp::Range),
        ];
        OPS.iter().find(|(s, _)| self.at(s)).map(|(s, op)| (*op, s.len()))
    }

    /// `unary = _{ prefix* ~ primary ~ postfix* }`
    fn unary(&mut self) -> Option<Expr> {
        let mut prefixes = vec![];
        loop {
            match self.peek() {
                b'-' => prefixes.push((UnaryOp::Neg, self.pos)),
                b'!' if self.peek_at(1) != b'=' => prefixes.push((UnaryOp::Not, self.pos)),
                _ => break,
            }
            self.pos += 1;
            self.skip();
        }
        let mut e = self.primary()?;
        loop {
            let m = self.mark();
            self.skip();
            if self.peek() == b'.' && self.peek_at(1) != b'.' {
                // `get_attr = { !".." ~ "." ~ ident }`
                self.pos += 1;
                self.skip();
                match self.ident() {
                    Some(name) => {
                        let span = e.span.to(name.span);
                        e = Expr { kind: ExprKind::GetAttr(Box::new(e), name), span };
                        continue;
                    }
                    None => {
                        self.reset(m);
                        break;
                    }
                }
            }
            if self.peek() == b'[' {
                // `index = { "[" ~ expr ~ "]" }`
                self.pos += 1;
                self.skip();
                if let Some(idx) = self.expr() {
                    self.skip();
                    if self.eat("]") {
                        let span = self.span(e.span.start as usize, self.pos);
                        e = Expr { kind: ExprKind::Index(Box::new(e), Box::new(idx)), span };
                        continue;
                    }
                }
            }
            self.reset(m);
            break;
        }
        for (op, at) in prefixes.into_iter().rev() {
            let span = self.span(at, e.span.end as usize);
            e = Expr { kind: ExprKind::Unary(op, Box::new(e)), span };
        }
        Some(e)
    }

    fn primary(&mut self) -> Option<Expr> {
        let start = self.pos;
        let c = self.peek();
        let kind = match c {
            b'(' => {
                self.pos += 1;
                self.skip();
                let inner = self.expr()?;
                self.skip();
                if !self.eat(")") {
                    return None;
                }
                ExprKind::Paren(Box::new(inner))
            }
            b'[' => {
                let m = self.mark();
                match self.for_expr(false) {
                    Some(f) => ExprKind::For(Box::new(f)),
                    None => {
                        self.reset(m);
                        ExprKind::List(self.list(b']')?)
                    }
                }
            }
            b'{' => {
                let m = self.mark();
                match self.for_expr(true) {
                    Some(f) => ExprKind::For(Box::new(f)),
                    None => {
                        self.reset(m);
                        ExprKind::Object(self.object()?)
                    }
                }
            }
            b'<' if self.at("<<") => self.heredoc()?,
            b'"' => ExprKind::Template(self.string()?),
            b'0'..=b'9' => self.numeric()?,
            c if is_ident_start(c) => {
                let name = self.ident()?;
                let m = self.mark();
                self.skip();
                if self.peek() == b'(' {
                    self.pos += 1;
                    self.skip();
                    if let Some(args) = self.list(b')') {
                        let span = self.span(start, self.pos);
                        return Some(Expr { kind: ExprKind::Call(name, args), span });
                    }
                }
                self.reset(m);
                match name.name.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "null" => ExprKind::Null,
                    _ => ExprKind::Variable(name),
                }
            }
            _ => return None,
        };
        Some(Expr { kind, span: self.span(start, self.pos) })
    }

    /// The items of a list or call after its opening bracket, through `close`:
    /// `(expr ~ ("," ~ expr)* ~ ","?)? ~ close`.
    fn list(&mut self, close: u8) -> Option<Vec<Expr>> {
        if close == b']' {
            self.pos += 1; // the `[`
            self.skip();
        }
        let mut items = vec![];
        let m = self.mark();
        if let Some(first) = self.expr() {
            items.push(first);
            loop {
                let m = self.mark();
                self.skip();
                if self.eat(",") {
                    self.skip();
                    if let Some(e) = self.expr() {
                        items.push(e);
                        continue;
                    }
                }
                self.reset(m);
                break;
            }
            let m = self.mark();
            self.skip();
            if !self.eat(",") {
                self.reset(m);
            }
        } else {
            self.reset(m);
        }
        self.skip();
        if self.peek() != close {
            return None;
        }
        self.pos += 1;
        Some(items)
    }

    /// `object = { "{" ~ (object_item ~ ","?)* ~ "}" }`
    fn object(&mut self) -> Option<Vec<ObjectItem>> {
        self.pos += 1;
        let mut items = vec![];
        loop {
            let m = self.mark();
            self.skip();
            match self.object_item() {
                Some(item) => {
                    items.push(item);
                    let m = self.mark();
                    self.skip();
                    if !self.eat(",") {
                        self.reset(m);
                    }
                }
                None => {
                    self.reset(m);
                    break;
                }
            }
        }
        self.skip();
        if !self.eat("}") {
            return None;
        }
        Some(items)
    }

    /// `object_item = { (key_ident | string | paren) ~ ("=" | ":") ~ expr }`
    fn object_item(&mut self) -> Option<ObjectItem> {
        let key = match self.peek() {
            b'"' | b'(' => ObjectKey::Expr(self.primary()?),
            c if is_ident_start(c) => ObjectKey::Ident(self.ident()?),
            _ => return None,
        };
        self.skip();
        if !(self.eat("=") || self.eat(":")) {
            return None;
        }
        self.skip();
        let value = self.expr()?;
        Some(ObjectItem { key, value })
    }

    /// `for_list` (`[for …]`) or `for_object` (`{ for … }`).
    fn for_expr(&mut self, object: bool) -> Option<ForExpr> {
        self.pos += 1;
        self.skip();
        if !self.keyword("for") {
            return None;
        }
        self.skip();
        let first = self.ident()?;
        let m = self.mark();
        self.skip();
        let (key_var, value_var) = if self.eat(",") {
            self.skip();
            (Some(first), self.ident()?)
        } else {
            self.reset(m);
            (None, first)
        };
        self.skip();
        if !self.keyword("in") {
            return None;
        }
        self.skip();
        let collection = self.expr()?;
        self.skip();
        if !self.eat(":") {
            return None;
        }
        self.skip();
        let first = self.expr()?;
        let (key, value) = if object {
            self.skip();
            if !self.eat("=>") {
                return None;
            }
            self.skip();
            (Some(first), self.expr()?)
        } else {
            (None, first)
        };
        let mut grouping = false;
        if object {
            let m = self.mark();
            self.skip();
            if self.eat("...") {
                grouping = true;
            } else {
                self.reset(m);
            }
        }
        let m = self.mark();
        self.skip();
        let cond = if self.keyword("if") {
            self.skip();
            match self.expr() {
                Some(c) => Some(c),
                None => {
                    self.reset(m);
                    None
                }
            }
        } else {
            self.reset(m);
            None
        };
        self.skip();
        if !self.eat(if object { "}" } else { "]" }) {
            return None;
        }
        Some(ForExpr { key_var, value_var, collection, key, value, grouping, cond })
    }

    /// `duration | percent | number`, in that order, each with its own end condition.
    fn numeric(&mut self) -> Option<ExprKind> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_ascii_digit() {
                p.pos += 1;
            }
            p.pos > s
        };
        // duration = @{ (ASCII_DIGIT+ ~ ("ms" | "s" | "m" | "h" | "d"))+ ~ !(ASCII_ALPHA | "_" | ASCII_DIGIT) }
        let mut end = None;
        loop {
            let before = self.pos;
            if !digits(self) {
                self.pos = before;
                break;
            }
            let unit = if self.at("ms") {
                2
            } else if matches!(self.peek(), b's' | b'm' | b'h' | b'd') {
                1
            } else {
                0
            };
            if unit == 0 {
                self.pos = before;
                break;
            }
            self.pos += unit;
            end = Some(self.pos);
        }
        if let Some(e) = end {
            self.pos = e;
            let c = self.peek();
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                let span = self.span(start, self.pos);
                return Some(lit::duration(&self.s[start..self.pos], span, &mut self.diags));
            }
        }
        // percent = @{ ASCII_DIGIT+ ~ ("." ~ ASCII_DIGIT+)? ~ "%" ~ !(ASCII_DIGIT | ident_char | "(") }
        self.pos = start;
        digits(self);
        self.fraction();
        if self.peek() == b'%' {
            let c = self.peek_at(1);
            if !(is_ident_char(c) || c == b'(') {
                self.pos += 1;
                let span = self.span(start, self.pos);
                return Some(lit::percent(&self.s[start..self.pos], span, &mut self.diags));
            }
        }
        // number = @{ ASCII_DIGIT+ ~ ("." ~ ASCII_DIGIT+)? ~ (^"e" ~ ("+" | "-")? ~ ASCII_DIGIT+)? ~ !(ASCII_ALPHA | "_") }
        if matches!(self.peek(), b'e' | b'E') {
            let before = self.pos;
            self.pos += 1;
            if matches!(self.peek(), b'+' | b'-') {
                self.pos += 1;
            }
            if !digits(self) {
                self.pos = before;
            }
        }
        let c = self.peek();
        if c.is_ascii_alphabetic() || c == b'_' {
            return None;
        }
        let span = self.span(start, self.pos);
        Some(lit::number(&self.s[start..self.pos], span, &mut self.diags))
    }

    /// `("." ~ ASCII_DIGIT+)?`
    fn fraction(&mut self) {
        if self.peek() == b'.' && self.peek_at(1).is_ascii_digit() {
            self.pos += 1;
            while self.peek().is_ascii_digit() {
                self.pos += 1;
            }
        }
    }

    /// `interp = !{ "${" ~ expr ~ "}" }`, after the `${`.
    fn interp(&mut self) -> Option<Expr> {
        self.skip();
        let e = self.expr()?;
        self.skip();
        if !self.eat("}") {
            return None;
        }
        Some(e)
    }

    /// `string = ${ "\"" ~ (str_lit | str_escape | interp)* ~ "\"" }`
    fn string(&mut self) -> Option<Vec<TemplatePart>> {
        self.pos += 1;
        let mut parts = vec![];
        let mut run = self.pos;
        loop {
            match self.peek() {
                b'"' => {
                    self.flush(&mut parts, run);
                    self.pos += 1;
                    return Some(parts);
                }
                b'\n' | 0 if self.pos >= self.b.len() || self.peek() == b'\n' => return None,
                b'\\' => {
                    self.flush(&mut parts, run);
                    let start = self.pos;
                    self.pos += 1;
                    // str_escape = @{ "\\" ~ (("u{" ~ ASCII_HEX_DIGIT{1, 6} ~ "}") | ANY) }
                    let hex = self.at("u{") && {
                        let digits = self.b[self.pos + 2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
                        (1..=6).contains(&digits) && self.peek_at(2 + digits) == b'}' && {
                            self.pos += 2 + digits + 1;
                            true
                        }
                    };
                    if !hex {
                        self.any_char()?;
                    }
                    let span = self.span(start, self.pos);
                    let text = lit::unescape(&self.s[start..self.pos], span, &mut self.diags);
                    push_lit(&mut parts, &text);
                    run = self.pos;
                }
                b'$' if self.at("$${") => self.pos += 3,
                b'$' if self.at("${") => {
                    self.flush(&mut parts, run);
                    self.pos += 2;
                    let e = self.interp()?;
                    parts.push(TemplatePart::Interp(e));
                    run = self.pos;
                }
                _ => self.any_char()?,
            }
        }
    }

    /// Adds the literal run from `run` to here, with `$${` meaning a literal `${`.
    fn flush(&self, parts: &mut Vec<TemplatePart>, run: usize) {
        if self.pos > run {
            let text = &self.s[run..self.pos];
            if text.contains("$${") {
                push_lit(parts, &text.replace("$${", "${"));
            } else {
                push_lit(parts, text);
            }
        }
    }

    /// `heredoc = ${ "<<" ~ "-"? ~ PUSH(ident) ~ " "* ~ "\r"? ~ "\n" ~ heredoc_line* ~ heredoc_close }`
    fn heredoc(&mut self) -> Option<ExprKind> {
        self.pos += 2;
        let indent = self.eat("-");
        let marker = self.ident()?.name.to_string();
        while self.peek() == b' ' {
            self.pos += 1;
        }
        self.eat("\r");
        if !self.eat("\n") {
            return None;
        }
        let mut lines: Vec<Vec<TemplatePart>> = vec![];
        loop {
            // heredoc_close = @{ (" " | "\t")* ~ POP ~ !ident_char }
            let line_start = self.pos;
            while matches!(self.peek(), b' ' | b'\t') {
                self.pos += 1;
            }
            if self.at(&marker) && !is_ident_char(self.peek_at(marker.len())) {
                self.pos += marker.len();
                break;
            }
            self.pos = line_start;
            if self.pos >= self.b.len() {
                return None;
            }
            // heredoc_line = ${ (heredoc_lit | interp)* ~ "\n" }
            let mut line = vec![];
            let mut run = self.pos;
            loop {
                match self.peek() {
                    b'\n' => {
                        self.flush(&mut line, run);
                        self.pos += 1;
                        break;
                    }
                    b'$' if self.at("$${") => self.pos += 3,
                    b'$' if self.at("${") => {
                        self.flush(&mut line, run);
                        self.pos += 2;
                        let e = self.interp()?;
                        line.push(TemplatePart::Interp(e));
                        run = self.pos;
                    }
                    _ => self.any_char()?,
                }
            }
            push_lit(&mut line, "\n");
            lines.push(line);
        }
        let parts = lit::join_heredoc_lines(lines, indent);
        Some(ExprKind::Heredoc { marker, indent, parts })
    }
}

fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Range => 1,
        BinaryOp::Or => 2,
        BinaryOp::And => 3,
        BinaryOp::Eq | BinaryOp::Ne => 4,
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 5,
        BinaryOp::Add | BinaryOp::Sub => 6,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 7,
    }
}

/// Operator precedence over a flat `first op operand op operand …` sequence (an operator
/// before each of `operands`), left-associative at every level, as pest's Pratt parser builds it.
fn build_tree(first: Expr, operands: Vec<Expr>, ops: Vec<BinaryOp>) -> Expr {
    let mut values: Vec<Expr> = Vec::with_capacity(operands.len() + 1);
    let mut stack: Vec<BinaryOp> = Vec::with_capacity(ops.len());
    let reduce = |values: &mut Vec<Expr>, op: BinaryOp| {
        let r = values
            .pop()
            .expect("`values` holds one more expression than `stack` holds operators: an operator has two operands");
        let l = values
            .pop()
            .expect("`values` holds one more expression than `stack` holds operators: an operator has two operands");
        let span = l.span.to(r.span);
        values.push(Expr { kind: ExprKind::Binary(op, Box::new(l), Box::new(r)), span });
    };
    values.push(first);
    for (op, operand) in ops.into_iter().zip(operands) {
        while let Some(&top) = stack.last() {
            if precedence(top) >= precedence(op) {
                stack.pop();
                reduce(&mut values, top);
            } else {
                break;
            }
        }
        stack.push(op);
        values.push(operand);
    }
    while let Some(op) = stack.pop() {
        reduce(&mut values, op);
    }
    values.pop().expect("with every operator reduced, the one expression is left")
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
