//! Syntax: the grammar's parse tree turned into an AST with spans, and the formatter.
//! Invariant: knows nothing of evaluation, schema or the model; never panics on input.

pub mod ast;
pub mod fmt;
mod parse;
pub mod visit;

pub use parse::{parse_duration, parse_expr, parse_file, MAX_NESTING, MAX_OPERATORS};
