//! JSON-RPC over a byte stream, framed by `Content-Length` headers, with lsp-server's
//! message types. Unlike lsp-server's own stdio transport this reader survives garbage: a
//! malformed header or body is reported (and answered with a parse error) and the stream
//! read on, a `Content-Length` larger than any document is skipped without allocating it,
//! and the end of the input ends the server rather than a thread's panic.

use std::io::{self, BufRead, Read, Write};

use lsp_server::Message;

/// The largest message read: a document of `MAX_SOURCE_BYTES`, escaped as JSON, fits.
const MAX_MESSAGE: u64 = 2 * drydock_config::MAX_SOURCE_BYTES + (1 << 20);
/// The longest header line kept; a longer one is garbage.
const MAX_HEADER_LINE: u64 = 8 * 1024;

/// What the reader saw.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// Something that is not a message; the text says what.
    Malformed(String),
}

/// Reads the next message; `Ok(None)` at the end of the input.
pub fn read(r: &mut impl BufRead) -> io::Result<Option<Incoming>> {
    let mut length: Option<u64> = None;
    let mut bad_header: Option<String> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.by_ref().take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            // A line too long to be a header: skip the rest of it.
            skip_line(r)?;
            bad_header.get_or_insert_with(|| "a header line longer than 8 KiB".into());
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if bad_header.is_none() && length.is_some() {
                break;
            }
            if let Some(bad) = bad_header {
                return Ok(Some(Incoming::Malformed(format!("malformed header: {bad}"))));
            }
            // A blank line with no header before it: nothing to read yet.
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<u64>() {
                    Ok(n) => length = Some(n),
                    Err(_) => bad_header = Some(format!("Content-Length {:?} is not a number", value.trim())),
                }
            }
            Some(_) => {}
            None => bad_header = Some(format!("{:?} is not a header", truncate(text, 80))),
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_MESSAGE {
        let skipped = io::copy(&mut r.by_ref().take(length), &mut io::sink())?;
        if skipped < length {
            return Ok(None);
        }
        return Ok(Some(Incoming::Malformed(format!("a message of {length} bytes is too large"))));
    }
    let mut body = Vec::new();
    r.by_ref().take(length).read_to_end(&mut body)?;
    if (body.len() as u64) < length {
        return Ok(None);
    }
    Ok(Some(match serde_json::from_slice::<Message>(&body) {
        Ok(m) => Incoming::Message(m),
        Err(e) => Incoming::Malformed(format!("not a JSON-RPC message: {e}")),
    }))
}

fn skip_line(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Writes a message, framed, and flushes.
pub fn write(w: &mut impl Write, msg: &Message) -> io::Result<()> {
    msg.write(w)?;
    w.flush()
}

/// Writes the answer to something unreadable: a JSON-RPC parse error with a null id.
pub fn write_parse_error(w: &mut impl Write, message: &str) -> io::Result<()> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": lsp_server::ErrorCode::ParseError as i32, "message": message },
    })
    .to_string();
    write!(w, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    fn all(input: &[u8]) -> Vec<String> {
        let mut r = io::BufReader::new(input);
        let mut out = vec![];
        while let Some(m) = read(&mut r).unwrap() {
            out.push(match m {
                Incoming::Message(m) => format!("ok {}", serde_json::to_string(&m).unwrap()),
                Incoming::Malformed(e) => format!("bad {e}"),
            });
        }
        out
    }

    #[test]
    fn garbage_is_reported_and_the_stream_read_on() {
        let good = frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#);
        let mut input = String::new();
        input.push_str("garbage line\r\n\r\n");
        input.push_str(&frame("{not json"));
        input.push_str("Content-Length: x\r\n\r\n");
        input.push_str(&good);
        input.push_str("Content-Length: 99999999999999\r\n\r\nshort");
        let out = all(input.as_bytes());
        assert_eq!(out.len(), 4, "{out:#?}");
        assert!(out[0].starts_with("bad malformed header"), "{out:#?}");
        assert!(out[1].starts_with("bad not a JSON-RPC message"), "{out:#?}");
        assert!(out[2].starts_with("bad malformed header: Content-Length"), "{out:#?}");
        assert!(out[3].starts_with("ok "), "{out:#?}");
    }

    #[test]
    fn a_truncated_body_is_the_end() {
        assert!(all(b"Content-Length: 10\r\n\r\n{}").is_empty());
        assert!(all(b"").is_empty());
        let long = vec![b'a'; 100_000];
        assert_eq!(all(&long).len(), 0);
    }
}
