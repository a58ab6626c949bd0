//! Where a position is, read from the text alone: the blocks around it, and whether it is at
//! the start of an item (an attribute or block name), in a block's label, in an attribute's
//! value, in a string or in a comment. Text being typed rarely parses, so completion and
//! hover do not wait for a syntax tree: this scanner reads any text (unclosed brackets,
//! strings and heredocs included) in one pass up to the position, and never fails.

/// A block around the position: `node_group "workers"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFrame {
    pub kind: String,
    pub labels: Vec<String>,
    /// The attribute names set in the block before the position.
    pub attrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// At the start of an item of the innermost block: a name being typed.
    ItemStart,
    /// In the `index`-th label of a block header being written (`provider "|`).
    Label { kind: String, index: usize },
    /// In the value of attribute `attr` of the innermost block. `top` says whether the position
    /// is directly in the value (not inside a list, object or call within it).
    Value { attr: String, top: bool },
    /// In a string literal (not in an interpolation in it) in the value of `attr`.
    Str { attr: String, top: bool },
    /// In a comment, a heredoc's text, or somewhere nothing completes.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The blocks around the position, outermost first.
    pub blocks: Vec<BlockFrame>,
    pub place: Place,
    /// The name being typed (identifier characters up to the position).
    pub prefix: String,
    /// Byte offset where `prefix` starts.
    pub prefix_start: usize,
    /// A reference being typed: the names before the last `.` (`["cluster", "core",
    /// "node_group"]` in `cluster.core.node_group.|`); empty when none.
    pub path: Vec<String>,
}

#[derive(Debug, Clone)]
enum Item {
    Start,
    /// A name and labels seen: a block header, or an attribute before its `=`.
    Header {
        name: String,
        labels: Vec<String>,
    },
    Expr {
        attr: String,
    },
}

#[derive(Debug, Clone)]
enum Frame {
    Block {
        frame: BlockFrame,
        item: Item,
    },
    /// `{` of an object, `[`, `(` inside an expression.
    Bracket(u8),
    /// A quoted string; `label` when it is a block label.
    Str {
        label: bool,
    },
    /// `${` inside a string or heredoc.
    Interp,
    Heredoc {
        marker: String,
    },
}

/// What the last token was, for telling where an attribute's value ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    /// An operand ended: a name, a literal, a closing bracket.
    Operand,
    /// A `.`: a name follows.
    Dot,
    /// An operator or an opening bracket: an operand follows.
    Operator,
}

pub fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

struct Scanner<'a> {
    text: &'a [u8],
    i: usize,
    end: usize,
    stack: Vec<Frame>,
    last: Last,
    newline: bool,
    /// Where the scan stopped inside something that is not code (a comment).
    in_comment: bool,
}

/// The context of byte offset `at` of `text` (clamped to the text and to a character start).
pub fn context(text: &str, at: usize) -> Context {
    let mut at = at.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    let root =
        Frame::Block { frame: BlockFrame { kind: String::new(), labels: vec![], attrs: vec![] }, item: Item::Start };
    let mut s = Scanner {
        text: text.as_bytes(),
        i: 0,
        end: at,
        stack: vec![root],
        last: Last::None,
        newline: false,
        in_comment: false,
    };
    s.run();
    s.finish(text, at)
}

impl Scanner<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        let j = self.i + k;
        if j < self.end {
            Some(self.text[j])
        } else {
            None
        }
    }

    fn run(&mut self) {
        while self.i < self.end {
            match self.stack.last() {
                Some(Frame::Str { .. }) => self.string_char(),
                Some(Frame::Heredoc { .. }) => self.heredoc_line(),
                _ => self.code(),
            }
        }
    }

    fn string_char(&mut self) {
        let b = self.text[self.i];
        match b {
            b'"' => {
                self.stack.pop();
                self.i += 1;
                self.operand_end();
            }
            b'\\' => self.i += 2,
            b'\n' => {
                // An unterminated string ends at its line.
                self.stack.pop();
                self.i += 1;
                self.newline = true;
                self.last = Last::Operand;
            }
            b'$' if self.peek(1) == Some(b'$') && self.peek(2) == Some(b'{') => self.i += 3,
            b'$' if self.peek(1) == Some(b'{') => {
                self.stack.push(Frame::Interp);
                self.i += 2;
                self.last = Last::Operator;
            }
            _ => self.i += 1,
        }
        self.i = self.i.min(self.end);
    }

    /// At the start of a heredoc line (or inside one after an interpolation): the closing
    /// marker ends it; `${` opens an interpolation; otherwise the line is text.
    fn heredoc_line(&mut self) {
        let Some(Frame::Heredoc { marker }) = self.stack.last() else { return };
        let marker = marker.clone();
        let line_start = self.i == 0 || self.text[self.i - 1] == b'\n';
        if line_start {
            let mut j = self.i;
            while j < self.end && (self.text[j] == b' ' || self.text[j] == b'\t') {
                j += 1;
            }
            let m = marker.as_bytes();
            if self.text[j..self.end].starts_with(m) && self.text.get(j + m.len()).is_none_or(|&b| !is_ident_char(b)) {
                // The position may be on the marker itself: still in the heredoc.
                if j + m.len() <= self.end {
                    self.stack.pop();
                    self.i = j + m.len();
                    self.operand_end();
                    return;
                }
            }
        }
        while self.i < self.end {
            match self.text[self.i] {
                b'\n' => {
                    self.i += 1;
                    return;
                }
                b'$' if self.peek(1) == Some(b'$') && self.peek(2) == Some(b'{') => self.i += 3,
                b'$' if self.peek(1) == Some(b'{') => {
                    self.stack.push(Frame::Interp);
                    self.i += 2;
                    self.last = Last::Operator;
                    return;
                }
                _ => self.i += 1,
            }
        }
        self.i = self.i.min(self.end);
    }

    fn code(&mut self) {
        let b = self.text[self.i];
        match b {
            b'\n' => {
                self.newline = true;
                self.i += 1;
            }
            b' ' | b'\t' | b'\r' => self.i += 1,
            b'#' => self.line_comment(),
            b'/' if self.peek(1) == Some(b'/') => self.line_comment(),
            b'/' if self.peek(1) == Some(b'*') => match find(&self.text[self.i + 2..self.end], b"*/") {
                Some(k) => self.i += 2 + k + 2,
                None => {
                    self.i = self.end;
                    self.in_comment = true;
                }
            },
            b'"' => {
                let label = matches!(self.stack.last(), Some(Frame::Block { item: Item::Header { .. }, .. }));
                if label {
                    let start = self.i + 1;
                    let mut j = start;
                    while j < self.end && self.text[j] != b'"' && self.text[j] != b'\n' {
                        j += if self.text[j] == b'\\' { 2 } else { 1 };
                    }
                    if j < self.end && self.text[j] == b'"' {
                        let value = String::from_utf8_lossy(&self.text[start..j]).into_owned();
                        if let Some(Frame::Block { item: Item::Header { labels, .. }, .. }) = self.stack.last_mut() {
                            labels.push(value);
                        }
                        self.i = j + 1;
                        self.last = Last::Operand;
                        self.newline = false;
                        return;
                    }
                }
                self.before_operand();
                self.stack.push(Frame::Str { label });
                self.i += 1;
            }
            b'<' if self.peek(1) == Some(b'<') => self.heredoc_start(),
            b'{' => {
                self.i += 1;
                self.open(b'{');
            }
            b'[' | b'(' => {
                self.before_operand();
                self.i += 1;
                self.stack.push(Frame::Bracket(b));
                self.last = Last::Operator;
            }
            b'}' | b']' | b')' => {
                self.i += 1;
                self.close(b);
            }
            b'=' if self.peek(1) != Some(b'=') && self.peek(1) != Some(b'>') => {
                self.i += 1;
                if let Some(Frame::Block { item, frame }) = self.stack.last_mut() {
                    if let Item::Header { name, .. } = item {
                        frame.attrs.push(name.clone());
                        *item = Item::Expr { attr: name.clone() };
                    }
                }
                self.last = Last::Operator;
                self.newline = false;
            }
            b'.' => {
                self.i += 1;
                if self.peek(0) == Some(b'.') {
                    self.i += 1;
                    self.last = Last::Operator;
                } else {
                    self.last = Last::Dot;
                }
                self.newline = false;
            }
            _ if is_ident_start(b) => {
                let start = self.i;
                while self.i < self.end && is_ident_char(self.text[self.i]) {
                    self.i += 1;
                }
                let name = String::from_utf8_lossy(&self.text[start..self.i]).into_owned();
                self.ident(name);
            }
            _ if b.is_ascii_digit() => {
                self.before_operand();
                while self.i < self.end && (is_ident_char(self.text[self.i]) || self.text[self.i] == b'%') {
                    self.i += 1;
                }
                // A decimal point, but not a range's `..`.
                if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
                    self.i += 1;
                    while self.i < self.end && (is_ident_char(self.text[self.i]) || self.text[self.i] == b'%') {
                        self.i += 1;
                    }
                }
                self.operand_end();
            }
            _ => {
                // An operator or a stray character; a multi-byte character is skipped whole.
                self.i += 1;
                while self.i < self.end && (self.text[self.i] & 0xC0) == 0x80 {
                    self.i += 1;
                }
                self.last = Last::Operator;
                self.newline = false;
            }
        }
        self.i = self.i.min(self.end);
    }

    fn line_comment(&mut self) {
        match self.text[self.i..self.end].iter().position(|&b| b == b'\n') {
            Some(k) => self.i += k,
            None => {
                self.i = self.end;
                self.in_comment = true;
            }
        }
    }

    fn heredoc_start(&mut self) {
        let mut j = self.i + 2;
        if j < self.end && self.text[j] == b'-' {
            j += 1;
        }
        let start = j;
        if j < self.end && is_ident_start(self.text[j]) {
            while j < self.end && is_ident_char(self.text[j]) {
                j += 1;
            }
            let marker = String::from_utf8_lossy(&self.text[start..j]).into_owned();
            // The rest of the opening line.
            while j < self.end && self.text[j] != b'\n' {
                j += 1;
            }
            if j < self.end {
                self.before_operand();
                self.stack.push(Frame::Heredoc { marker });
                self.i = j + 1;
                return;
            }
        }
        self.i += 2;
        self.last = Last::Operator;
    }

    /// A name: in a block body it starts an item (or is the value of one); elsewhere it is an
    /// operand.
    fn ident(&mut self, name: String) {
        let newline = self.newline;
        let last = self.last;
        self.newline = false;
        if let Some(Frame::Block { item, .. }) = self.stack.last_mut() {
            match item {
                Item::Start | Item::Header { .. } => {
                    *item = Item::Header { name, labels: vec![] };
                    self.last = Last::Operand;
                    return;
                }
                // A name on a new line after a complete value starts the next item.
                Item::Expr { .. } if newline && last == Last::Operand => {
                    *item = Item::Header { name, labels: vec![] };
                    self.last = Last::Operand;
                    return;
                }
                Item::Expr { .. } => {}
            }
        }
        self.last = Last::Operand;
    }

    /// An operand starts: in a block body in the middle of a header, it is garbage, and in a
    /// value after a complete one on a new line, it belongs to no item.
    fn before_operand(&mut self) {
        self.newline = false;
    }

    fn operand_end(&mut self) {
        self.last = Last::Operand;
        self.newline = false;
    }

    fn open(&mut self, b: u8) {
        if let Some(Frame::Block { item, .. }) = self.stack.last_mut() {
            if let Item::Header { name, labels } = item {
                let frame = BlockFrame { kind: name.clone(), labels: std::mem::take(labels), attrs: vec![] };
                *item = Item::Start;
                self.stack.push(Frame::Block { frame, item: Item::Start });
                self.last = Last::None;
                self.newline = false;
                return;
            }
            if matches!(item, Item::Start) {
                // `{` with no name before it: an anonymous block, to keep the nesting right.
                let frame = BlockFrame { kind: String::new(), labels: vec![], attrs: vec![] };
                self.stack.push(Frame::Block { frame, item: Item::Start });
                return;
            }
        }
        self.stack.push(Frame::Bracket(b));
        self.last = Last::Operator;
        self.newline = false;
    }

    fn close(&mut self, b: u8) {
        let open = match b {
            b'}' => b'{',
            b']' => b'[',
            _ => b'(',
        };
        // Pop to the frame this closes; a closer that matches nothing is ignored.
        let matching = self.stack.iter().rposition(|f| match f {
            Frame::Bracket(o) => *o == open,
            Frame::Interp => open == b'{',
            Frame::Block { .. } => open == b'{',
            _ => false,
        });
        match matching {
            Some(k) if k > 0 => {
                let was_block = matches!(self.stack[k], Frame::Block { .. });
                self.stack.truncate(k);
                if was_block {
                    if let Some(Frame::Block { item, .. }) = self.stack.last_mut() {
                        *item = Item::Start;
                    }
                    self.last = Last::None;
                } else {
                    self.last = Last::Operand;
                }
            }
            _ => self.last = Last::Operator,
        }
        self.newline = false;
    }

    fn finish(self, text: &str, at: usize) -> Context {
        let bytes = text.as_bytes();
        let mut prefix_start = at;
        while prefix_start > 0 && is_ident_char(bytes[prefix_start - 1]) {
            prefix_start -= 1;
        }
        // A name starts with a letter or `_`: digits and `-` before one belong to something else.
        while prefix_start < at && !is_ident_start(bytes[prefix_start]) {
            prefix_start += 1;
        }
        let prefix = text[prefix_start..at].to_string();
        let blocks: Vec<BlockFrame> = self
            .stack
            .iter()
            .filter_map(|f| match f {
                Frame::Block { frame, .. } => Some(frame.clone()),
                _ => None,
            })
            .skip(1)
            .collect();
        let mut ctx = Context { blocks, place: Place::Nothing, prefix, prefix_start, path: vec![] };
        if self.in_comment {
            return ctx;
        }
        // The innermost block's item, and how many brackets are open inside its value.
        let block_at = self.stack.iter().rposition(|f| matches!(f, Frame::Block { .. })).unwrap_or(0);
        let depth = self.stack.len() - 1 - block_at;
        let item = match &self.stack[block_at] {
            Frame::Block { item, .. } => item.clone(),
            _ => Item::Start,
        };
        match self.stack.last() {
            Some(Frame::Heredoc { .. }) => {}
            Some(Frame::Str { label: true }) => {
                if let Item::Header { name, labels } = item {
                    ctx.place = Place::Label { kind: name, index: labels.len() };
                    // The label typed so far, up to the position.
                    let start = text[..at].rfind('"').map_or(at, |q| q + 1);
                    ctx.prefix = text[start..at].to_string();
                    ctx.prefix_start = start;
                }
            }
            Some(Frame::Str { label: false }) => {
                if let Item::Expr { attr } = item {
                    let start = text[..at].rfind('"').map_or(at, |q| q + 1);
                    ctx.prefix = text[start..at].to_string();
                    ctx.prefix_start = start;
                    ctx.place = Place::Str { attr, top: depth == 1 };
                }
            }
            _ => {
                ctx.path = dotted_path(text, ctx.prefix_start);
                ctx.place = match item {
                    Item::Start => Place::ItemStart,
                    // The item's name is what is being typed.
                    Item::Header { labels, .. }
                        if labels.is_empty() && ctx.path.is_empty() && depth == 0 && !ctx.prefix.is_empty() =>
                    {
                        Place::ItemStart
                    }
                    Item::Header { .. } => Place::Nothing,
                    // A new line after a complete value: the next item.
                    Item::Expr { .. } if depth == 0 && self.newline && self.last == Last::Operand => Place::ItemStart,
                    Item::Expr { attr } => Place::Value { attr, top: depth == 0 },
                };
            }
        }
        ctx
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The names of a reference before `at` (which follows a `.`): `cluster.core["x"].node_group.`
/// gives `["cluster", "core", "node_group"]`. Index expressions are skipped. Empty when `at`
/// does not follow a `.`.
pub fn dotted_path(text: &str, at: usize) -> Vec<String> {
    let b = text.as_bytes();
    let mut i = at.min(b.len());
    let mut names = vec![];
    loop {
        if i == 0 || b[i - 1] != b'.' {
            break;
        }
        i -= 1;
        // A `..` range is not a reference.
        if i > 0 && b[i - 1] == b'.' {
            return vec![];
        }
        // Skip `[...]` index expressions (balanced, on this line).
        while i > 0 && b[i - 1] == b']' {
            let mut depth = 0usize;
            let mut j = i;
            while j > 0 {
                j -= 1;
                match b[j] {
                    b']' => depth += 1,
                    b'[' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b'\n' => return vec![],
                    _ => {}
                }
            }
            if depth != 0 {
                return vec![];
            }
            i = j;
        }
        let end = i;
        while i > 0 && is_ident_char(b[i - 1]) {
            i -= 1;
        }
        while i < end && !is_ident_start(b[i]) {
            i += 1;
        }
        if i == end {
            return vec![];
        }
        names.push(text[i..end].to_string());
    }
    names.reverse();
    names
}

/// The identifier around byte offset `at` (the position may be at its end): its range.
pub fn word_at(text: &str, at: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let at = at.min(b.len());
    let mut start = at;
    while start > 0 && is_ident_char(b[start - 1]) {
        start -= 1;
    }
    while start < at && !is_ident_start(b[start]) {
        start += 1;
    }
    let mut end = at.max(start);
    while end < b.len() && is_ident_char(b[end]) {
        end += 1;
    }
    if start < end && is_ident_start(b[start]) {
        Some((start, end))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(src: &str) -> Context {
        let i = src.find('|').expect("a | marks the position");
        let text = src.replacen('|', "", 1);
        context(&text, i)
    }

    fn kinds(c: &Context) -> Vec<&str> {
        c.blocks.iter().map(|b| b.kind.as_str()).collect()
    }

    #[test]
    fn item_starts_in_nested_blocks() {
        let c = at("cluster \"a\" {\n  node_group \"g\" {\n    rollout {\n      max|\n");
        assert_eq!(kinds(&c), ["cluster", "node_group", "rollout"]);
        assert_eq!(c.place, Place::ItemStart);
        assert_eq!(c.prefix, "max");
        assert_eq!(c.blocks[1].labels, ["g"]);

        let c = at("cluster \"a\" {\n  kubernetes_version = \"1.31\"\n  |\n}");
        assert_eq!(kinds(&c), ["cluster"]);
        assert_eq!(c.place, Place::ItemStart);
        assert_eq!(c.blocks[0].attrs, ["kubernetes_version"]);

        // After a closed block and values of every shape.
        let c = at("locals {\n  a = [1, 2]\n  b = { x = 1 }\n  c = <<EOT\n}\nEOT\n  d = \"}\" # }\n}\n|");
        assert!(c.blocks.is_empty());
        assert_eq!(c.place, Place::ItemStart);
    }

    #[test]
    fn values_strings_labels_and_references() {
        let c = at("cluster \"a\" {\n  node_group \"g\" {\n    role = |");
        assert_eq!(c.place, Place::Value { attr: "role".into(), top: true });
        let c = at("cluster \"a\" {\n  node_group \"g\" {\n    role = \"con|");
        assert_eq!(c.place, Place::Str { attr: "role".into(), top: true });
        assert_eq!(c.prefix, "con");
        let c = at("provider \"s|");
        assert_eq!(c.place, Place::Label { kind: "provider".into(), index: 0 });
        assert_eq!(c.prefix, "s");
        let c = at("locals {\n  x = cluster.core[\"k\"].node_group.wo|");
        assert_eq!(c.path, ["cluster", "core", "node_group"]);
        assert_eq!(c.prefix, "wo");
        assert_eq!(c.place, Place::Value { attr: "x".into(), top: true });
        let c = at("locals {\n  x = \"a-${var.|}\"\n}");
        assert_eq!(c.path, ["var"]);
        assert_eq!(c.place, Place::Value { attr: "x".into(), top: false });
        let c = at("locals {\n  x = <<EOT\n  ${local.|\nEOT\n}");
        assert_eq!(c.path, ["local"]);
        let c = at("locals {\n  x = 1..|");
        assert!(c.path.is_empty());
        let c = at("# cluster {\n|");
        assert_eq!(c.place, Place::ItemStart);
        let c = at("# cluster |");
        assert_eq!(c.place, Place::Nothing);
    }

    #[test]
    fn anything_scans() {
        for src in ["", "{{{{", "}}}]]", "\"", "<<", "<<-E\n", "a = \"${", "/*", "é = \"ü\"", "x = 1\ny"] {
            for i in 0..=src.len() + 2 {
                let _ = context(src, i);
                let _ = word_at(src, i);
                let _ = dotted_path(src, i);
            }
        }
    }
}
