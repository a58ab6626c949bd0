//! Reading and writing the state file (to follow).
