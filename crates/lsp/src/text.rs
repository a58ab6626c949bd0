//! Text positions: byte offsets (what spans hold) to and from LSP positions (a line and a
//! count of UTF-16 code units in it), and edits applied to a document.
//!
//! Clients send any position: a line past the end, a character past the end of its line, or
//! in the middle of a character's surrogate pair. Each is clamped to the nearest place in the
//! text (the end of the line or of the text, the start of the character), never a panic.

use lsp_types::{Position, Range};

/// Where each line starts, for one text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<u32>,
    len: u32,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push((i + 1) as u32);
            }
        }
        LineIndex { starts, len: text.len() as u32 }
    }

    /// The LSP position of a byte offset (clamped to the text, and back to a character start).
    pub fn position(&self, text: &str, offset: u32) -> Position {
        let mut offset = (offset.min(self.len) as usize).min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&(offset as u32)) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let start = self.starts[line] as usize;
        let character: usize = text[start..offset].chars().map(char::len_utf16).sum();
        Position { line: line as u32, character: character as u32 }
    }

    /// The byte offset of an LSP position, clamped: a line past the end is the end of the text,
    /// a character past the end of its line is the end of the line (before its `\r\n`), and a
    /// position inside a character is its start.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return text.len();
        };
        let start = (start as usize).min(text.len());
        let end = self.starts.get(pos.line as usize + 1).map_or(text.len(), |&e| (e as usize).min(text.len()));
        let line = &text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut units = 0usize;
        for (i, c) in line.char_indices() {
            let next = units + c.len_utf16();
            if next > pos.character as usize {
                return start + i;
            }
            units = next;
        }
        start + line.len()
    }

    pub fn range(&self, text: &str, start: u32, end: u32) -> Range {
        Range { start: self.position(text, start), end: self.position(text, end) }
    }
}

/// Applies one change of `textDocument/didChange`: `range` replaced by `new_text`, or the whole
/// text when there is no range. A reversed range is taken the right way round.
pub fn apply_change(text: &mut String, range: Option<Range>, new_text: &str) {
    match range {
        None => {
            text.clear();
            text.push_str(new_text);
        }
        Some(r) => {
            let index = LineIndex::new(text);
            let a = index.offset(text, r.start);
            let b = index.offset(text, r.end);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            text.replace_range(a..b, new_text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn offsets_and_positions_agree_in_utf16() {
        let text = "ab\nh\u{e9}\u{1F600}x\r\nlast";
        let ix = LineIndex::new(text);
        assert_eq!(ix.position(text, 0), pos(0, 0));
        assert_eq!(ix.position(text, 3), pos(1, 0));
        // é is 2 bytes and 1 unit; the emoji 4 bytes and 2 units.
        let x = text.find('x').unwrap() as u32;
        assert_eq!(ix.position(text, x), pos(1, 4));
        assert_eq!(ix.offset(text, pos(1, 4)), x as usize);
        // Inside the surrogate pair: the emoji's start.
        assert_eq!(ix.offset(text, pos(1, 3)), text.find('\u{1F600}').unwrap());
        // Past the end of a line: before its \r\n.
        assert_eq!(ix.offset(text, pos(1, 99)), x as usize + 1);
        // Past the last line: the end.
        assert_eq!(ix.offset(text, pos(99, 0)), text.len());
        // An offset inside a character or past the end is clamped.
        assert_eq!(ix.position(text, x - 1), pos(1, 2));
        assert_eq!(ix.position(text, 10_000), pos(2, 4));
    }

    #[test]
    fn changes_apply_with_clamping() {
        let mut t = String::from("hello\nworld");
        apply_change(&mut t, Some(Range { start: pos(1, 0), end: pos(1, 5) }), "there");
        assert_eq!(t, "hello\nthere");
        apply_change(&mut t, Some(Range { start: pos(9, 9), end: pos(0, 5) }), "!");
        assert_eq!(t, "hello!");
        apply_change(&mut t, None, "new");
        assert_eq!(t, "new");
    }
}
