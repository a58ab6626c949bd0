//! Syntax: the grammar's parse tree turned into an AST with spans, and the formatter.
//! Invariant: knows nothing of evaluation, schema or the model; never panics on input.

pub mod ast;
mod fast;
pub mod fmt;
mod lit;
mod parse;
pub mod visit;

pub use lit::parse_duration;
pub use parse::{
    parse_expr, parse_file, parse_file_fast, parse_file_pest, raw_parse_token_count, MAX_NESTING, MAX_OPERATORS,
};
