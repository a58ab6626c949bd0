//! The embedded simulated cloud (filled in by the plan/apply work).
