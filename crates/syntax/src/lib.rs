//! Syntax: the grammar's parse tree turned into an AST with spans, and the formatter.
//! Invariant: knows nothing of evaluation, schema or the model; never panics on input.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod ast;
pub mod diag;
mod fast;
pub mod fmt;
mod lit;
mod parse;
pub mod visit;

pub use lit::parse_duration;
pub use parse::{
    parse_expr, parse_file, parse_file_fast, parse_file_pest, raw_parse_token_count, MAX_NESTING, MAX_OPERATORS,
};
