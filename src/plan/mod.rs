//! The planner: from the model and the state to a reviewed plan (to follow); `waves` schedules each rollout.

pub mod waves;
