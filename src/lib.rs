//! drydock: plan/apply for the immutable machines under Kubernetes clusters.
//! The data flows one way: `syntax` → `config` → `plan` → `apply` → providers.
//! See `docs/ARCHITECTURE.md` for the code map and the invariants of each part.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod config;
pub mod diag;
pub mod plan;
pub mod state;
pub mod syntax;
#[doc(hidden)]
pub mod testgen;
