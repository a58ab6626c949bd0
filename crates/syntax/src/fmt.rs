//! `drydock fmt`: the canonical layout of a .kcl file. Two-space indent, `=` aligned
//! within a run of single-line attributes, one blank line around blocks, at most one
//! blank line anywhere, comments kept where they were. Literals (numbers, strings,
//! heredocs) are printed as written; an expression with a comment inside a one-line
//! construct is printed as written too, so that no comment is ever lost.

use super::ast::*;

/// Formats a parsed file. `src` is the text it was parsed from.
pub fn format(file: &File, src: &str) -> String {
    let mut p = Printer { src, comments: &file.comments, next: 0, indent: 0 };
    let entries = p.body(&file.body, src.len() as u32);
    let mut out = String::new();
    write_entries(&mut out, &entries, 0);
    if out.is_empty() {
        return out;
    }
    out.push('\n');
    out
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// The first comment not yet printed.
    next: usize,
    indent: usize,
}

/// One line-level element of a body, before alignment.
enum Entry {
    Comment {
        text: String,
        blank_before: bool,
    },
    Attr {
        name: String,
        value: String,
        trailing: Option<String>,
        blank_before: bool,
        sep: &'static str,
    },
    Block {
        text: String,
        trailing: Option<String>,
        blank_before: bool,
    },
    /// An item printed as written (it has a comment where the layout has no place for one).
    Raw {
        text: String,
        trailing: Option<String>,
        blank_before: bool,
    },
}

impl Entry {
    fn blank_before(&self) -> bool {
        match self {
            Entry::Comment { blank_before, .. }
            | Entry::Attr { blank_before, .. }
            | Entry::Block { blank_before, .. }
            | Entry::Raw { blank_before, .. } => *blank_before,
        }
    }
    fn single_line_attr(&self) -> Option<usize> {
        match self {
            Entry::Attr { name, value, .. } if !value.contains('\n') => Some(name.chars().count()),
            _ => None,
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

/// Writes entries at `indent`, aligning `=` in runs of single-line attributes and
/// putting one blank line around blocks (a block's own leading comments stay attached).
fn write_entries(out: &mut String, entries: &[Entry], indent: usize) {
    // Comments directly above a block (no blank line between) belong to it.
    let mut attached = vec![false; entries.len()];
    for i in 0..entries.len() {
        if matches!(entries[i], Entry::Block { .. }) && !entries[i].blank_before() {
            let mut j = i;
            while j > 0 && matches!(entries[j - 1], Entry::Comment { .. }) {
                attached[j - 1] = true;
                if entries[j - 1].blank_before() {
                    break;
                }
                j -= 1;
            }
        }
    }
    let mut i = 0;
    while i < entries.len() {
        // A run of aligned attributes: consecutive single-line attributes, no blank line.
        let mut run_end = i;
        let mut width = 0;
        while run_end < entries.len() {
            let Some(w) = entries[run_end].single_line_attr() else {
                break;
            };
            if run_end > i && entries[run_end].blank_before() {
                break;
            }
            width = width.max(w);
            run_end += 1;
        }
        let end = run_end.max(i + 1);
        // Trailing comments on consecutive lines of a run line up after the longest of those lines.
        let line_len = |k: usize| match &entries[k] {
            Entry::Attr { value, trailing: Some(_), .. } => Some(width + 3 + value.chars().count()),
            _ => None,
        };
        let mut comment_cols = vec![None; run_end.saturating_sub(i)];
        let mut k = i;
        while k < run_end {
            let mut j = k;
            let mut col = 0;
            while j < run_end {
                let Some(len) = line_len(j) else { break };
                col = col.max(len);
                j += 1;
            }
            for c in k..j {
                comment_cols[c - i] = Some(col);
            }
            k = j.max(k + 1);
        }
        for k in i..end {
            let e = &entries[k];
            if k > 0 {
                let prev = &entries[k - 1];
                let blank = e.blank_before()
                    || (matches!(prev, Entry::Block { .. }) && (matches!(e, Entry::Block { .. }) || attached[k]));
                if blank {
                    out.push('\n');
                }
                out.push('\n');
            }
            pad(out, indent);
            match e {
                Entry::Comment { text, .. } => out.push_str(text),
                Entry::Attr { name, value, trailing, sep, .. } => {
                    out.push_str(name);
                    if run_end > i {
                        for _ in name.chars().count()..width {
                            out.push(' ');
                        }
                    }
                    out.push(' ');
                    out.push_str(sep);
                    out.push(' ');
                    out.push_str(value);
                    if let Some(t) = trailing {
                        let used = if run_end > i { width } else { name.chars().count() } + 3 + value.chars().count();
                        for _ in used..comment_cols.get(k - i).copied().flatten().unwrap_or(used) {
                            out.push(' ');
                        }
                        out.push(' ');
                        out.push_str(t);
                    }
                }
                Entry::Block { text, trailing, .. } | Entry::Raw { text, trailing, .. } => {
                    out.push_str(text);
                    if let Some(t) = trailing {
                        out.push(' ');
                        out.push_str(t);
                    }
                }
            }
        }
        i = end;
    }
}

impl<'a> Printer<'a> {
    fn text(&self, start: u32, end: u32) -> &'a str {
        &self.src[start as usize..end as usize]
    }

    fn blank_between(&self, from: u32, to: u32) -> bool {
        from < to && self.text(from, to).matches('\n').count() >= 2
    }

    /// Takes the comments that start before `pos`.
    fn take_before(&mut self, pos: u32) -> &'a [Comment] {
        let start = self.next;
        while self.next < self.comments.len() && self.comments[self.next].span.start < pos {
            self.next += 1;
        }
        &self.comments[start..self.next]
    }

    /// Takes the comment that directly follows `end` (only blanks between) and ends its line,
    /// if any. A comment with more of the body after it on its line (`a = 1 /* c */ b = 2`) is
    /// not `a`'s: it leads what follows it, as one before the first item does.
    fn take_trailing(&mut self, end: u32) -> Option<String> {
        let c = self.comments.get(self.next)?;
        let directly = c.span.start >= end && self.text(end, c.span.start).chars().all(|ch| ch == ' ' || ch == '\t');
        if directly && self.ends_line(self.next) {
            self.next += 1;
            Some(c.text.clone())
        } else {
            None
        }
    }

    /// Whether nothing but blanks, other comments and closing brackets follows comment `i` on
    /// its line.
    fn ends_line(&self, mut i: usize) -> bool {
        loop {
            let rest = &self.src[self.comments[i].span.end as usize..];
            let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            let at = self.comments[i].span.end + skipped as u32;
            match self.src[at as usize..].chars().next() {
                None | Some('\n' | '\r' | '}' | ']' | ')' | ',') => return true,
                _ => match self.comments.get(i + 1) {
                    Some(next) if next.span.start == at => i += 1,
                    _ => return false,
                },
            }
        }
    }

    fn has_comment_before(&self, pos: u32) -> bool {
        self.comments.get(self.next).is_some_and(|c| c.span.start < pos)
    }

    /// Entries for the items of a body that ends (its `}` or the end of file) at `end`.
    fn body(&mut self, body: &Body, end: u32) -> Vec<Entry> {
        let mut entries = vec![];
        let mut prev_end: Option<u32> = None;
        for item in &body.items {
            let span = item.span();
            self.leading_comments(&mut entries, &mut prev_end, span.start);
            let blank_before = prev_end.is_some_and(|p| self.blank_between(p, span.start));
            match item {
                Item::Attribute(a) if self.has_comment_before(a.value.span.start) => {
                    // A comment between the name and the value: keep the attribute as written.
                    self.take_before(a.span.end);
                    let text = self.text(a.span.start, a.span.end).to_string();
                    let trailing = self.take_trailing(a.span.end);
                    entries.push(Entry::Raw { text, trailing, blank_before });
                }
                Item::Attribute(a) => {
                    let value = self.expr(&a.value);
                    let trailing = self.take_trailing(a.span.end);
                    entries.push(Entry::Attr {
                        name: a.name.name.to_string(),
                        value,
                        trailing,
                        blank_before,
                        sep: "=",
                    });
                }
                Item::Block(b) => {
                    let text = self.block(b);
                    let trailing = self.take_trailing(b.span.end);
                    entries.push(Entry::Block { text, trailing, blank_before });
                }
            }
            prev_end = Some(span.end);
        }
        self.leading_comments(&mut entries, &mut prev_end, end);
        entries
    }

    fn leading_comments(&mut self, entries: &mut Vec<Entry>, prev_end: &mut Option<u32>, pos: u32) {
        for c in self.take_before(pos) {
            let blank_before = prev_end.is_some_and(|p| self.blank_between(p, c.span.start));
            entries.push(Entry::Comment { text: c.text.clone(), blank_before });
            *prev_end = Some(c.span.end);
        }
    }

    fn block(&mut self, b: &Block) -> String {
        let mut out = b.kind.name.to_string();
        for l in &b.labels {
            out.push(' ');
            out.push_str(self.text(l.span.start, l.span.end));
        }
        let open = self.open_brace(b.header().end, b.span.end);
        let close = b.span.end - 1;
        out.push_str(" {");
        // Comments between the header and `{` go into the body as leading comments.
        let header_comment = if self.has_comment_before(open) { None } else { self.take_trailing(open + 1) };
        if let Some(c) = &header_comment {
            out.push(' ');
            out.push_str(c);
        }
        self.indent += 1;
        let entries = self.body(&b.body, close);
        self.indent -= 1;
        if entries.is_empty() && header_comment.is_none() {
            out.push('}');
            return out;
        }
        out.push('\n');
        write_entries(&mut out, &entries, self.indent + 1);
        if !entries.is_empty() {
            out.push('\n');
        }
        pad(&mut out, self.indent);
        out.push('}');
        out
    }

    /// The position of a block's `{`, skipping any comment between the header and it.
    fn open_brace(&self, from: u32, to: u32) -> u32 {
        let mut pos = from;
        while pos < to {
            let Some(off) = self.text(pos, to).find('{') else {
                break;
            };
            let at = pos + off as u32;
            match self.comments.iter().find(|c| c.span.start <= at && at < c.span.end) {
                Some(c) => pos = c.span.end,
                None => return at,
            }
        }
        from
    }

    fn is_multiline(&self, e: &Expr) -> bool {
        self.text(e.span.start, e.span.end).contains('\n')
    }

    fn expr(&mut self, e: &Expr) -> String {
        let verbatim = |p: &mut Self| {
            p.take_before(e.span.end);
            p.text(e.span.start, e.span.end).to_string()
        };
        match &e.kind {
            ExprKind::List(items) if self.is_multiline(e) => return self.multiline_list(items, e.span.end - 1),
            ExprKind::Object(items) if self.is_multiline(e) && !items.is_empty() => {
                return self.multiline_object(items, e.span.end - 1)
            }
            _ if self.has_comment_before(e.span.end) => return verbatim(self),
            _ => {}
        }
        match &e.kind {
            ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Number(_)
            | ExprKind::Duration(_)
            | ExprKind::Percent(_)
            | ExprKind::Template(_)
            | ExprKind::Heredoc { .. } => verbatim(self),
            ExprKind::Variable(i) => i.name.to_string(),
            ExprKind::GetAttr(x, name) => format!("{}.{}", self.expr(x), name.name),
            ExprKind::Index(x, i) => format!("{}[{}]", self.expr(x), self.expr(i)),
            ExprKind::Call(name, args) => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a)).collect();
                format!("{}({})", name.name, args.join(", "))
            }
            ExprKind::Unary(op, x) => {
                let sym = if *op == UnaryOp::Neg { "-" } else { "!" };
                format!("{sym}{}", self.expr(x))
            }
            ExprKind::Binary(BinaryOp::Range, a, b) => {
                // `1 + 2 .. 8`: spaces show that `..` binds loosest.
                let spaced = [a, b].iter().any(|x| matches!(x.kind, ExprKind::Binary(..) | ExprKind::Conditional(..)));
                let (l, r) = (self.expr(a), self.expr(b));
                if spaced {
                    format!("{l} .. {r}")
                } else {
                    format!("{l}..{r}")
                }
            }
            ExprKind::Binary(op, a, b) => {
                format!("{} {} {}", self.expr(a), op.symbol(), self.expr(b))
            }
            ExprKind::Conditional(c, a, b) => {
                format!("{} ? {} : {}", self.expr(c), self.expr(a), self.expr(b))
            }
            ExprKind::Paren(x) => format!("({})", self.expr(x)),
            ExprKind::List(items) => {
                let items: Vec<String> = items.iter().map(|i| self.expr(i)).collect();
                format!("[{}]", items.join(", "))
            }
            ExprKind::Object(items) => {
                if items.is_empty() {
                    return "{}".to_string();
                }
                let items: Vec<String> =
                    items.iter().map(|i| format!("{} = {}", self.key(&i.key), self.expr(&i.value))).collect();
                format!("{{ {} }}", items.join(", "))
            }
            ExprKind::For(f) => {
                let mut s = String::new();
                s.push_str(if f.key.is_some() { "{ for " } else { "[for " });
                if let Some(k) = &f.key_var {
                    s.push_str(&k.name);
                    s.push_str(", ");
                }
                s.push_str(&f.value_var.name);
                s.push_str(" in ");
                s.push_str(&self.expr(&f.collection));
                s.push_str(" : ");
                if let Some(k) = &f.key {
                    s.push_str(&self.expr(k));
                    s.push_str(" => ");
                }
                s.push_str(&self.expr(&f.value));
                if f.grouping {
                    s.push_str("...");
                }
                if let Some(c) = &f.cond {
                    s.push_str(" if ");
                    s.push_str(&self.expr(c));
                }
                s.push_str(if f.key.is_some() { " }" } else { "]" });
                s
            }
        }
    }

    fn key(&mut self, k: &ObjectKey) -> String {
        match k {
            ObjectKey::Ident(i) => i.name.to_string(),
            ObjectKey::Expr(e) => self.expr(e),
        }
    }

    fn multiline_list(&mut self, items: &[Expr], close: u32) -> String {
        self.indent += 1;
        let mut entries = vec![];
        let mut prev_end = None;
        for item in items {
            self.leading_comments(&mut entries, &mut prev_end, item.span.start);
            let blank_before = prev_end.is_some_and(|p| self.blank_between(p, item.span.start));
            let mut value = self.expr(item);
            value.push(',');
            // A comma may stand between the item and its trailing comment.
            let after = self.src[item.span.end as usize..close as usize]
                .find(|c: char| !c.is_whitespace() || c == '\n')
                .map_or(item.span.end, |off| {
                    let at = item.span.end + off as u32;
                    if self.src.as_bytes()[at as usize] == b',' {
                        at + 1
                    } else {
                        item.span.end
                    }
                });
            let trailing = self.take_trailing(after);
            entries.push(Entry::Block { text: value, trailing, blank_before });
            prev_end = Some(after);
        }
        self.leading_comments(&mut entries, &mut prev_end, close);
        // List items are never separated by the blank lines that surround blocks.
        let mut out = String::from("[\n");
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                if e.blank_before() {
                    out.push('\n');
                }
                out.push('\n');
            }
            pad(&mut out, self.indent);
            match e {
                Entry::Comment { text, .. } => out.push_str(text),
                Entry::Block { text, trailing, .. } => {
                    out.push_str(text);
                    if let Some(t) = trailing {
                        out.push(' ');
                        out.push_str(t);
                    }
                }
                Entry::Attr { .. } | Entry::Raw { .. } => {}
            }
        }
        self.indent -= 1;
        if !entries.is_empty() {
            out.push('\n');
        }
        pad(&mut out, self.indent);
        out.push(']');
        out
    }

    fn multiline_object(&mut self, items: &[ObjectItem], close: u32) -> String {
        self.indent += 1;
        let mut entries = vec![];
        let mut prev_end = None;
        for item in items {
            let start = match &item.key {
                ObjectKey::Ident(i) => i.span.start,
                ObjectKey::Expr(e) => e.span.start,
            };
            self.leading_comments(&mut entries, &mut prev_end, start);
            let blank_before = prev_end.is_some_and(|p| self.blank_between(p, start));
            let name = self.key(&item.key);
            let value = self.expr(&item.value);
            let mut end = item.value.span.end;
            if self.src.as_bytes().get(end as usize) == Some(&b',') {
                end += 1;
            }
            let trailing = self.take_trailing(end);
            entries.push(Entry::Attr { name, value, trailing, blank_before, sep: "=" });
            prev_end = Some(end);
        }
        self.leading_comments(&mut entries, &mut prev_end, close);
        let mut out = String::from("{\n");
        // Object items are attributes: the same alignment rules, but no blocks.
        write_entries(&mut out, &entries, self.indent);
        self.indent -= 1;
        out.push('\n');
        pad(&mut out, self.indent);
        out.push('}');
        out
    }
}
