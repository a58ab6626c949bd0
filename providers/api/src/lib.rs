//! The `Provider` trait and the types that cross it (filled in by the plan/apply work).
