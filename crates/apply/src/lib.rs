//! Carrying plans out: the executor ([`executor`]), which walks a plan through a provider and
//! journals every cloud mutation in the state, and watch's decisions ([`watch`]), a pure
//! function from the observed cloud, the state and the safety guards to the repairs to make.
//!
//! Invariant: knows nothing of the language, the terminal or any one cloud; every cloud call
//! goes through the `Provider` trait.

// Diagnostics are the error type of the front half by design; they are built on error
// paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod drain;
pub mod events;
pub mod executor;
pub mod watch;

pub use executor::*;
