//! The `drydock` command line: flags, the terminal, rendering calls and exit codes, and
//! nothing else. What it runs lives in the library crates of the workspace (see
//! `docs/ARCHITECTURE.md`); this library exists so that tests can parse flags as the binary does.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod cli;
