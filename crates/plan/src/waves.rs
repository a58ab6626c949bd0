//! The wave scheduler: how one node group's old instances are replaced by instances of its
//! new generation, in waves that keep capacity safe (the way Cluster API's MachineDeployment
//! rolls a MachineSet). Pure: it sees counts and instance ids, never a cloud.
//!
//! # A wave
//! A wave is, in this order: terminate the old instances in `remove_first`, launch `add` new
//! instances, wait until they are all healthy, terminate the old instances in `remove_after`.
//! New instances are never terminated by a rollout.
//!
//! # Invariants
//! With `R` replicas, surge `S` and unavailable `U` (both already resolved to counts):
//! - *Floor*: the number of healthy instances never drops below
//!   `min(R - U, healthy at the start)` (`R - U` is 0 when `U ≥ R`). Old unhealthy instances
//!   are not healthy; a new instance counts only once healthy, that is after the wait.
//! - *Ceiling*: the number of instances (old of any health, new launching or healthy) never
//!   exceeds `max(R + S, total at the start)`.
//! - The rollout ends with no old instance and exactly `R` new healthy ones. `new_ready`
//!   above `R` is clamped to `R`: shrinking the new generation is the autoscaler's business.
//! - Every old instance is terminated exactly once. Unhealthy ones go first (they cost no
//!   capacity). Within each health class the removal order keeps the remaining old capacity
//!   spread over zones: take from the zone with the most remaining old instances, ties broken
//!   by the oldest instance (smallest `launched_at_ms`), then the zone name, then the id.
//!
//! `Wave::floor` and `Wave::ceiling` report the extremes reached during the wave, the
//! moment it starts included.
//!
//! # The algorithm, and why it is minimal
//! Write `F` and `C` for the floor and ceiling bounds, and `(h, u, n)` for the healthy old,
//! unhealthy old and new instances at the start of a wave. Each wave, greedily:
//! - `remove_first`: every unhealthy old instance, and healthy old ones down to the floor:
//!   `min(h, h + n - F)`. What is left is `max(F, n)` instances, all healthy.
//! - `add`: `min(R - n, C - max(F, n))`, as many as the ceiling allows and no more than needed.
//! - `remove_after`: the healthy old beyond what keeps `R` healthy: `min(h', h' + n' - R)`
//!   with `h'`, `n'` counted after the wait. In the wave that brings `n'` to `R` this is every
//!   old instance left, which ends the rollout.
//!
//! Minimal: in *any* schedule meeting the invariants, after `remove_first` at least `F`
//! instances are healthy and all `n` new ones are still there, so at least `max(F, n)`
//! instances exist and the wave can add at most `C - max(F, n)`; new instances never exceed
//! `R`. So a wave takes `n` to at most `g(n) = min(R, n + C - max(F, n))`, which the greedy
//! reaches exactly. `g` never decreases as `n` grows (for `n ≥ F` it is `R`, because
//! `C ≥ R`), so by induction the greedy has at least as many new instances as any schedule
//! after every wave, reaches `R` no later, and empties the old generation in that same wave
//! (or in the first wave when `n` starts at `R`). Removing healthy old instances in
//! `remove_after` rather than in the next `remove_first` changes no bound, since nothing
//! happens between the two; the greedy keeps them until `R` new are healthy, which keeps
//! more capacity for longer.
//!
//! Progress: while `n < R`, `R - n ≥ 1`, and `C - max(F, n) ≥ 1` because `C ≥ R > n` and
//! `C > F` whenever `S ≥ 1` or `U ≥ 1`, so every wave adds at least one instance. With both
//! 0 a full healthy group could never change, and the configuration is refused outright
//! rather than depending on the autoscaler's momentary state (unless there is nothing to
//! do). `tests/waves.rs` checks the invariants and minimality against a breadth-first search.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};

use serde::{Deserialize, Serialize};

/// The most waves a schedule may have. A rollout of even 10,000 nodes one at a time fits;
/// the bound keeps absurd inputs (millions of replicas with a surge of 1) from exhausting
/// memory instead of failing.
pub const MAX_WAVES: u32 = 100_000;

/// An instance of an older generation that is still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldInstance {
    pub id: String,
    pub zone: String,
    pub launched_at_ms: u64,
    pub healthy: bool,
}

/// What a rollout starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutInput {
    /// `R`: the desired capacity the rollout converges on.
    pub replicas: u32,
    /// `S`: already resolved from an int or a percent (a percent rounds up).
    pub max_surge: u32,
    /// `U`: already resolved (a percent rounds down).
    pub max_unavailable: u32,
    /// Instances of older generations still running.
    pub old: Vec<OldInstance>,
    /// Healthy instances of the new generation that already exist (a resumed rollout).
    pub new_ready: u32,
}

/// One step of a rollout; see the module documentation for its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// 1-based.
    pub index: u32,
    /// Old instance ids terminated at the start of the wave (allowed by `U`, or unhealthy).
    pub remove_first: Vec<String>,
    /// New instances launched in this wave, then waited on until healthy.
    pub add: u32,
    /// Old instance ids terminated once this wave's new instances are healthy.
    pub remove_after: Vec<String>,
    /// The fewest healthy instances at any moment of the wave.
    pub floor: u32,
    /// The most instances (in any state) at any moment of the wave.
    pub ceiling: u32,
    /// In a cluster with a Kubernetes API: the nodes this wave drains and what is known, at plan
    /// time, to stand in their drain's way (filled by [`crate::kube::annotate`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drains: Vec<crate::kube::NodeDrain>,
}

/// Why a rollout cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Neither room above nor slack below the capacity, and there is work to do.
    #[error("max_surge and max_unavailable cannot both be 0")]
    NoSurgeNorUnavailable,
    /// The same old instance twice: it could not be terminated exactly once.
    #[error("old instance `{id}` is listed more than once")]
    DuplicateInstance { id: String },
    /// The counts of a wave would not fit in `u32`.
    #[error("{replicas} replicas and {old} old instances exceed the {} instances a rollout can count", u32::MAX)]
    TooLarge { replicas: u32, old: usize },
    /// More than `MAX_WAVES` waves.
    #[error("the rollout needs more than {limit} waves")]
    TooManyWaves { limit: u32 },
}

/// The fewest waves that replace `input.old` by `input.replicas` new instances within the
/// floor and the ceiling. Empty when there is nothing to do.
pub fn schedule(input: &RolloutInput) -> Result<Vec<Wave>, ScheduleError> {
    let mut seen = HashSet::with_capacity(input.old.len());
    for instance in &input.old {
        if !seen.insert(instance.id.as_str()) {
            return Err(ScheduleError::DuplicateInstance { id: instance.id.clone() });
        }
    }
    // Every count below is at most the old instances plus R (old ones only go, new ones
    // never exceed R), so this check makes every narrowing to u32 below exact.
    let replicas = u64::from(input.replicas);
    if input.old.len() as u64 + replicas > u64::from(u32::MAX) {
        return Err(ScheduleError::TooLarge { replicas: input.replicas, old: input.old.len() });
    }
    let mut new = u64::from(input.new_ready.min(input.replicas));
    if input.old.is_empty() && new == replicas {
        return Ok(Vec::new());
    }
    if input.max_surge == 0 && input.max_unavailable == 0 {
        return Err(ScheduleError::NoSurgeNorUnavailable);
    }

    let mut healthy_old = input.old.iter().filter(|i| i.healthy).count() as u64;
    let mut unhealthy_old = input.old.len() as u64 - healthy_old;
    let floor_bound = replicas.saturating_sub(input.max_unavailable.into()).min(healthy_old + new);
    let ceiling_bound = (replicas + u64::from(input.max_surge)).max(healthy_old + unhealthy_old + new);
    let mut order = removal_order(&input.old).into_iter();

    let mut waves = Vec::new();
    while healthy_old + unhealthy_old > 0 || new < replicas {
        // Bounds the loop whatever the arithmetic; see the module docs for why it progresses.
        if waves.len() >= MAX_WAVES as usize {
            return Err(ScheduleError::TooManyWaves { limit: MAX_WAVES });
        }
        // The subtractions saturate only to stay panic-free: the invariants keep
        // `healthy ≥ floor_bound`, `total ≤ ceiling_bound` and `new ≤ replicas`.
        let healthy = healthy_old + new;
        let total = healthy + unhealthy_old;
        let first_healthy = healthy_old.min(healthy.saturating_sub(floor_bound));
        let first = unhealthy_old + first_healthy;
        let after_first = total - first;
        let add = replicas.saturating_sub(new).min(ceiling_bound.saturating_sub(after_first));
        healthy_old -= first_healthy;
        unhealthy_old = 0;
        new += add;
        let after = healthy_old.min((healthy_old + new).saturating_sub(replicas));
        healthy_old -= after;

        let floor = (healthy - first_healthy).min(healthy - first_healthy + add - after);
        let ceiling = total.max(after_first + add);
        waves.push(Wave {
            index: narrow(waves.len() as u64 + 1),
            remove_first: order.by_ref().take(to_usize(first)).collect(),
            add: narrow(add),
            remove_after: order.by_ref().take(to_usize(after)).collect(),
            floor: narrow(floor),
            ceiling: narrow(ceiling),
            drains: vec![],
        });
    }
    Ok(waves)
}

/// The order in which old instances are terminated: all unhealthy ones, then all healthy
/// ones, each class zone-balanced as the module documentation says. The schedule takes ids
/// off the front; as each removal comes from a zone with the most left, after any number of
/// removals no zone holds more old instances than it must.
fn removal_order(old: &[OldInstance]) -> Vec<String> {
    let mut remaining: BTreeMap<&str, u64> = BTreeMap::new();
    for instance in old {
        *remaining.entry(instance.zone.as_str()).or_default() += 1;
    }
    let mut order = Vec::with_capacity(old.len());
    for healthy in [false, true] {
        // Per zone, this class's instances with the oldest last, so `pop` takes it.
        let mut by_zone: BTreeMap<&str, Vec<&OldInstance>> = BTreeMap::new();
        for instance in old.iter().filter(|i| i.healthy == healthy) {
            by_zone.entry(instance.zone.as_str()).or_default().push(instance);
        }
        for list in by_zone.values_mut() {
            list.sort_by(|a, b| (b.launched_at_ms, &b.id).cmp(&(a.launched_at_ms, &a.id)));
        }
        // One entry per zone with candidates left. A zone's key changes only when an
        // instance is taken from it, which is exactly when its entry is out of the heap, so
        // every entry in the heap is current. Max-heap: most remaining, then oldest, then
        // the smallest zone name.
        let mut heap: BinaryHeap<(u64, Reverse<u64>, Reverse<&str>)> = BinaryHeap::new();
        for (zone, list) in &by_zone {
            if let Some(oldest) = list.last() {
                heap.push((remaining.get(zone).copied().unwrap_or(0), Reverse(oldest.launched_at_ms), Reverse(*zone)));
            }
        }
        while let Some((_, _, Reverse(zone))) = heap.pop() {
            let Some(list) = by_zone.get_mut(zone) else { continue };
            let Some(instance) = list.pop() else { continue };
            order.push(instance.id.clone());
            let left = remaining.entry(zone).or_default();
            *left = left.saturating_sub(1);
            if let Some(next) = list.last() {
                heap.push((*left, Reverse(next.launched_at_ms), Reverse(zone)));
            }
        }
    }
    order
}

/// Exact for every value `schedule` passes (see its `TooLarge` check).
fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Exact for every value `schedule` passes: a count of old instances, which fit in memory.
fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn instance(id: &str, zone: &str, launched_at_ms: u64, healthy: bool) -> OldInstance {
        OldInstance { id: id.into(), zone: zone.into(), launched_at_ms, healthy }
    }

    /// `count` healthy instances `i-1`… spread round-robin over zones a, b, c, oldest first.
    fn healthy(count: u32) -> Vec<OldInstance> {
        (1..=count).map(|k| instance(&format!("i-{k}"), ["a", "b", "c"][k as usize % 3], k.into(), true)).collect()
    }

    fn input(replicas: u32, max_surge: u32, max_unavailable: u32, old: Vec<OldInstance>) -> RolloutInput {
        RolloutInput { replicas, max_surge, max_unavailable, old, new_ready: 0 }
    }

    fn ids(ids: &[String]) -> String {
        if ids.is_empty() {
            "-".into()
        } else {
            ids.join(" ")
        }
    }

    fn render(input: &RolloutInput) -> String {
        let waves = match schedule(input) {
            Ok(waves) => waves,
            Err(e) => return format!("error: {e}\n"),
        };
        let mut out = format!("waves: {}\n", waves.len());
        for w in &waves {
            out += &format!(
                "wave {}: remove first {}; add {}; remove after {} | floor {}, ceiling {}\n",
                w.index,
                ids(&w.remove_first),
                w.add,
                ids(&w.remove_after),
                w.floor,
                w.ceiling
            );
        }
        out
    }

    fn check(input: RolloutInput, expected: Expect) {
        expected.assert_eq(&render(&input));
    }

    #[test]
    fn surge_one_replaces_one_at_a_time() {
        check(
            input(3, 1, 0, healthy(3)),
            expect![[r#"
            waves: 3
            wave 1: remove first -; add 1; remove after i-1 | floor 3, ceiling 4
            wave 2: remove first -; add 1; remove after i-2 | floor 3, ceiling 4
            wave 3: remove first -; add 1; remove after i-3 | floor 3, ceiling 4
        "#]],
        );
    }

    #[test]
    fn surge_of_25_percent_of_10() {
        check(
            input(10, 3, 0, healthy(10)),
            expect![[r#"
            waves: 4
            wave 1: remove first -; add 3; remove after i-1 i-2 i-3 | floor 10, ceiling 13
            wave 2: remove first -; add 3; remove after i-4 i-5 i-6 | floor 10, ceiling 13
            wave 3: remove first -; add 3; remove after i-7 i-8 i-9 | floor 10, ceiling 13
            wave 4: remove first -; add 1; remove after i-10 | floor 10, ceiling 11
        "#]],
        );
    }

    #[test]
    fn unavailable_only_removes_before_adding() {
        check(
            input(4, 0, 1, healthy(4)),
            expect![[r#"
            waves: 4
            wave 1: remove first i-1; add 1; remove after - | floor 3, ceiling 4
            wave 2: remove first i-2; add 1; remove after - | floor 3, ceiling 4
            wave 3: remove first i-3; add 1; remove after - | floor 3, ceiling 4
            wave 4: remove first i-4; add 1; remove after - | floor 3, ceiling 4
        "#]],
        );
    }

    #[test]
    fn unhealthy_old_go_first_and_cost_nothing() {
        let mut old = healthy(6);
        old[1].healthy = false;
        old[4].healthy = false;
        check(
            input(6, 2, 2, old),
            expect![[r#"
            waves: 2
            wave 1: remove first i-2 i-5; add 4; remove after i-1 i-3 | floor 4, ceiling 8
            wave 2: remove first i-4 i-6; add 2; remove after - | floor 4, ceiling 6
        "#]],
        );
    }

    #[test]
    fn removal_keeps_zones_balanced() {
        // Zone a has 3, b has 2, c has 1; ties go to the oldest instance, then the zone name.
        let old = vec![
            instance("a-new", "a", 50, true),
            instance("a-old", "a", 10, true),
            instance("a-mid", "a", 30, true),
            instance("b-old", "b", 10, true),
            instance("b-new", "b", 40, true),
            instance("c-only", "c", 5, true),
        ];
        check(
            input(6, 1, 0, old),
            expect![[r#"
            waves: 6
            wave 1: remove first -; add 1; remove after a-old | floor 6, ceiling 7
            wave 2: remove first -; add 1; remove after b-old | floor 6, ceiling 7
            wave 3: remove first -; add 1; remove after a-mid | floor 6, ceiling 7
            wave 4: remove first -; add 1; remove after c-only | floor 6, ceiling 7
            wave 5: remove first -; add 1; remove after b-new | floor 6, ceiling 7
            wave 6: remove first -; add 1; remove after a-new | floor 6, ceiling 7
        "#]],
        );
    }

    #[test]
    fn zone_ties_break_on_zone_name_then_id() {
        let old = vec![
            instance("y-2", "b", 7, true),
            instance("y-1", "b", 7, true),
            instance("x-2", "a", 7, true),
            instance("x-1", "a", 7, true),
        ];
        check(
            input(4, 0, 4, old),
            expect![[r#"
            waves: 1
            wave 1: remove first x-1 y-1 x-2 y-2; add 4; remove after - | floor 0, ceiling 4
        "#]],
        );
    }

    #[test]
    fn scale_to_zero_removes_everything_at_once() {
        check(
            input(0, 1, 0, healthy(3)),
            expect![[r#"
            waves: 1
            wave 1: remove first i-1 i-2 i-3; add 0; remove after - | floor 0, ceiling 3
        "#]],
        );
    }

    #[test]
    fn no_old_instances_launches_all_at_once() {
        // Nothing old to keep: the ceiling R + S is never approached.
        check(
            input(5, 1, 0, Vec::new()),
            expect![[r#"
            waves: 1
            wave 1: remove first -; add 5; remove after - | floor 0, ceiling 5
        "#]],
        );
    }

    #[test]
    fn resumed_rollout_counts_ready_new_instances() {
        let mut resumed = input(4, 1, 0, healthy(2));
        resumed.new_ready = 2;
        check(
            resumed,
            expect![[r#"
            waves: 2
            wave 1: remove first -; add 1; remove after i-1 | floor 4, ceiling 5
            wave 2: remove first -; add 1; remove after i-2 | floor 4, ceiling 5
        "#]],
        );
    }

    #[test]
    fn autoscaler_moved_the_old_group() {
        // Five old for three replicas: the floor is R - U = 2, so three old go at once, three
        // new fill the room up to the ceiling of 5, and the last two old go once those are
        // healthy.
        check(
            input(3, 1, 1, healthy(5)),
            expect![[r#"
            waves: 1
            wave 1: remove first i-1 i-2 i-3; add 3; remove after i-4 i-5 | floor 2, ceiling 5
        "#]],
        );
    }

    #[test]
    fn both_zero_is_an_error_unless_nothing_to_do() {
        check(
            input(3, 0, 0, healthy(3)),
            expect![[r#"
            error: max_surge and max_unavailable cannot both be 0
        "#]],
        );
        let mut done = input(3, 0, 0, Vec::new());
        done.new_ready = 7;
        check(
            done,
            expect![[r#"
            waves: 0
        "#]],
        );
    }

    #[test]
    fn duplicate_ids_are_an_error() {
        let old = vec![instance("i-1", "a", 1, true), instance("i-1", "b", 2, false)];
        check(
            input(2, 1, 0, old),
            expect![[r#"
            error: old instance `i-1` is listed more than once
        "#]],
        );
    }
}
