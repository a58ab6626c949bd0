//! Literal values shared by both parsers: escapes, numbers, durations, percentages and
//! heredoc indentation, with the diagnostics their errors produce.

use super::ast::{ExprKind, Name, TemplatePart};
use crate::diag::{Diagnostic, Span};

/// Resolves escapes in `raw` (which starts at `span.start`), reporting invalid ones.
pub fn unescape(raw: &str, span: Span, diags: &mut Vec<Diagnostic>) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = &raw[i..];
        let (decoded, len) = decode_escape(rest);
        match decoded {
            Some(d) => out.push(d),
            None => {
                let at = span.start as usize + i;
                diags.push(
                    Diagnostic::new("kcl::syntax", Span::new(span.file, at, at + len), "unknown escape sequence")
                        .label("not a valid escape")
                        .help(r#"escapes are \n \t \r \" \\ and \u{HEX}; write \\ for a backslash"#),
                );
            }
        }
        for _ in 1..rest[..len].chars().count() {
            chars.next();
        }
    }
    out
}

/// [`unescape`] into a [`Name`] (a label): without an allocation when it has no escape.
pub fn unescape_name(raw: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Name {
    if !raw.contains('\\') {
        return Name::new(raw);
    }
    Name::from(unescape(raw, span, diags))
}

pub fn number(text: &str, span: Span, diags: &mut Vec<Diagnostic>) -> ExprKind {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => ExprKind::Number(n),
        _ => {
            diags.push(Diagnostic::new("kcl::syntax", span, "number out of range").label("too large"));
            ExprKind::Null
        }
    }
}

pub fn duration(text: &str, span: Span, diags: &mut Vec<Diagnostic>) -> ExprKind {
    match parse_duration(text) {
        Some(ms) => ExprKind::Duration(ms),
        None => {
            diags.push(Diagnostic::new("kcl::syntax", span, "duration out of range").label("too long"));
            ExprKind::Null
        }
    }
}

pub fn percent(text: &str, span: Span, diags: &mut Vec<Diagnostic>) -> ExprKind {
    let n: f64 = text.trim_end_matches('%').parse().unwrap_or(f64::INFINITY);
    if n.is_finite() {
        ExprKind::Percent(n)
    } else {
        diags.push(Diagnostic::new("kcl::syntax", span, "percentage out of range").label("too large"));
        ExprKind::Null
    }
}

/// A heredoc's lines (each ending in its newline) as one template: common indentation
/// removed for `<<-`, neighbouring literals merged.
pub fn join_heredoc_lines(mut lines: Vec<Vec<TemplatePart>>, indent: bool) -> Vec<TemplatePart> {
    if indent {
        strip_common_indent(&mut lines);
    }
    let mut parts = vec![];
    for line in lines {
        for part in line {
            match part {
                TemplatePart::Lit(s) => push_lit(&mut parts, &s),
                other => parts.push(other),
            }
        }
    }
    parts
}

pub fn too_many_operators(span: Span) -> Diagnostic {
    Diagnostic::new("kcl::too_deep", span, "expression has too many operators")
        .label(format!("more than {} operators", super::MAX_OPERATORS))
        .help("split the expression with locals")
}

pub fn push_lit(parts: &mut Vec<TemplatePart>, s: &str) {
    if let Some(TemplatePart::Lit(last)) = parts.last_mut() {
        last.push_str(s);
    } else {
        parts.push(TemplatePart::Lit(s.to_string()));
    }
}

/// `<<-` heredocs: remove the leading white space that every non-blank line shares.
pub fn strip_common_indent(lines: &mut [Vec<TemplatePart>]) {
    let indent_of = |line: &[TemplatePart]| -> Option<usize> {
        match line.first() {
            Some(TemplatePart::Lit(s)) => {
                let ws = s.len() - s.trim_start_matches([' ', '\t']).len();
                let rest = &s[ws..];
                if rest == "\n" && line.len() == 1 {
                    None // blank line: does not count
                } else {
                    Some(ws)
                }
            }
            _ => Some(0),
        }
    };
    let Some(common) = lines.iter().filter_map(|l| indent_of(l)).min() else {
        return;
    };
    for line in lines.iter_mut() {
        if let Some(TemplatePart::Lit(s)) = line.first_mut() {
            let ws = s.len() - s.trim_start_matches([' ', '\t']).len();
            s.drain(..ws.min(common));
        }
    }
}

/// Decodes one escape at the start of `s` (which begins with a backslash): the
/// character (or `None` if invalid) and the escape's length in bytes.
pub fn decode_escape(s: &str) -> (Option<char>, usize) {
    let mut chars = s.chars();
    chars.next();
    match chars.next() {
        Some('n') => (Some('\n'), 2),
        Some('t') => (Some('\t'), 2),
        Some('r') => (Some('\r'), 2),
        Some('"') => (Some('"'), 2),
        Some('\\') => (Some('\\'), 2),
        Some('u') => {
            if let Some(close) = s.find('}').filter(|_| s[2..].starts_with('{')) {
                let hex = &s[3..close];
                let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                (c, close + 1)
            } else {
                (None, 2)
            }
        }
        Some(c) => (None, 1 + c.len_utf8()),
        None => (None, 1),
    }
}

/// `1h30m` → milliseconds; `None` on overflow.
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut num: u64 = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            num = num.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            i += 1;
            continue;
        }
        let (unit, len) = match (c, b.get(i + 1)) {
            (b'm', Some(b's')) => (1, 2),
            (b's', _) => (1_000, 1),
            (b'm', _) => (60_000, 1),
            (b'h', _) => (3_600_000, 1),
            (b'd', _) => (86_400_000, 1),
            _ => return None,
        };
        total = total.checked_add(num.checked_mul(unit)?)?;
        num = 0;
        i += len;
    }
    Some(total)
}
