//! The rules for moving a state by hand (`drydock state push`, `drydock state migrate`), as
//! pure decisions: what to write, or why not. The command line does the reading, writing and
//! printing; these functions decide, and are unit-tested here.

use crate::State;

/// What `state push` does with a state file given the state already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// Write the pushed state with this serial (its own, or one past the stored one with
    /// `--force`, so that a serial never goes backwards).
    Write { serial: u64 },
    /// The pushed state is the stored one already: nothing to do.
    AlreadyThere { serial: u64 },
}

/// Why `state push` refuses (without `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRefused {
    /// The stored state is another infrastructure's.
    OtherLineage { pushed: String, stored: String },
    /// The pushed state is older than (or as old as, but different from) the stored one.
    Older { pushed: u64, stored: u64 },
    /// The stored serial is at its maximum: no later serial exists to force.
    SerialExhausted(u64),
}

/// Decides `state push` of `pushed` over `stored` (none: there is no state yet).
pub fn push(stored: Option<&State>, pushed: &State, force: bool) -> Result<Push, PushRefused> {
    let Some(cur) = stored else { return Ok(Push::Write { serial: pushed.serial }) };
    if cur.lineage != pushed.lineage && !force {
        return Err(PushRefused::OtherLineage { pushed: pushed.lineage.clone(), stored: cur.lineage.clone() });
    }
    if pushed.serial > cur.serial {
        return Ok(Push::Write { serial: pushed.serial });
    }
    if crate::format::to_value(cur) == crate::format::to_value(pushed) {
        return Ok(Push::AlreadyThere { serial: cur.serial });
    }
    if !force {
        return Err(PushRefused::Older { pushed: pushed.serial, stored: cur.serial });
    }
    cur.serial.checked_add(1).map(|serial| Push::Write { serial }).ok_or(PushRefused::SerialExhausted(cur.serial))
}

/// What `state migrate` does with the state it moves, given what the destination holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrate {
    /// Write the moved state with this serial (past the destination's, if it has one).
    Write { serial: u64 },
    /// The destination already holds this state at the same or a later serial: keep it.
    Keep { there: u64 },
}

/// Why `state migrate` refuses (without `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateRefused {
    /// The destination holds another lineage's state.
    OtherLineage { lineage: String, serial: u64 },
    /// The destination's serial is at its maximum: no later serial exists.
    SerialExhausted(u64),
}

/// Decides `state migrate` of `moved` to a destination holding `there`.
pub fn migrate(moved: &State, there: Option<&State>, force: bool) -> Result<Migrate, MigrateRefused> {
    match there {
        None => Ok(Migrate::Write { serial: moved.serial }),
        Some(t) if t.lineage != moved.lineage && !force => {
            Err(MigrateRefused::OtherLineage { lineage: t.lineage.clone(), serial: t.serial })
        }
        Some(t) if t.lineage == moved.lineage && t.serial >= moved.serial => Ok(Migrate::Keep { there: t.serial }),
        Some(t) => match t.serial.checked_add(1) {
            Some(next) => Ok(Migrate::Write { serial: moved.serial.max(next) }),
            None => Err(MigrateRefused::SerialExhausted(t.serial)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: &str, serial: u64) -> State {
        let mut s = State::new(lineage.into());
        s.serial = serial;
        s
    }

    #[test]
    fn push_rules() {
        let (a5, a7, b7) = (state("a", 5), state("a", 7), state("b", 7));
        assert_eq!(push(None, &a5, false), Ok(Push::Write { serial: 5 }));
        assert_eq!(push(Some(&a5), &a7, false), Ok(Push::Write { serial: 7 }));
        assert_eq!(push(Some(&a7), &a5, false), Err(PushRefused::Older { pushed: 5, stored: 7 }));
        assert_eq!(push(Some(&a7), &a5, true), Ok(Push::Write { serial: 8 }), "forced: one past, never backwards");
        assert_eq!(push(Some(&a7), &a7.clone(), false), Ok(Push::AlreadyThere { serial: 7 }));
        let mut other_outputs = a7.clone();
        other_outputs.outputs.insert("x".into(), crate::OutputState { value: 1.into(), sensitive: false });
        assert_eq!(push(Some(&a7), &other_outputs, false), Err(PushRefused::Older { pushed: 7, stored: 7 }));
        assert_eq!(
            push(Some(&a7), &b7, false),
            Err(PushRefused::OtherLineage { pushed: "b".into(), stored: "a".into() })
        );
        assert_eq!(push(Some(&a7), &state("b", 3), true), Ok(Push::Write { serial: 8 }));
        let top = state("a", u64::MAX);
        assert_eq!(push(Some(&top), &a5, true), Err(PushRefused::SerialExhausted(u64::MAX)));
    }

    #[test]
    fn migrate_rules() {
        let (a5, a7, b9) = (state("a", 5), state("a", 7), state("b", 9));
        assert_eq!(migrate(&a5, None, false), Ok(Migrate::Write { serial: 5 }));
        assert_eq!(migrate(&a5, Some(&a7), false), Ok(Migrate::Keep { there: 7 }));
        assert_eq!(migrate(&a7, Some(&a5), false), Ok(Migrate::Write { serial: 7 }));
        assert_eq!(
            migrate(&a5, Some(&b9), false),
            Err(MigrateRefused::OtherLineage { lineage: "b".into(), serial: 9 })
        );
        assert_eq!(migrate(&a5, Some(&b9), true), Ok(Migrate::Write { serial: 10 }), "forced over a later serial");
        assert_eq!(migrate(&a5, Some(&state("b", u64::MAX)), true), Err(MigrateRefused::SerialExhausted(u64::MAX)));
    }
}
