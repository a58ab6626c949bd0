//! The wave scheduler against its contract: random rollouts are simulated instance by
//! instance and must keep the floor and the ceiling, end with only R new instances, remove
//! each old instance once in zone-balanced order, and use exactly as many waves as a
//! brute-force breadth-first search over every possible schedule. Extreme inputs must
//! neither panic nor take long.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet, VecDeque};

use drydock_plan::waves::{schedule, OldInstance, RolloutInput, ScheduleError, Wave, MAX_WAVES};
use proptest::prelude::*;

/// The bounds every schedule for `input` must keep, from the module documentation.
fn bounds(input: &RolloutInput) -> (u64, u64) {
    let r = u64::from(input.replicas);
    let new = u64::from(input.new_ready.min(input.replicas));
    let healthy = input.old.iter().filter(|i| i.healthy).count() as u64 + new;
    let total = input.old.len() as u64 + new;
    let floor = r.saturating_sub(input.max_unavailable.into()).min(healthy);
    let ceiling = (r + u64::from(input.max_surge)).max(total);
    (floor, ceiling)
}

/// Carries `waves` out on a model of the group, one step at a time, and checks every
/// moment against the bounds; the reported floor and ceiling must be the extremes seen.
fn simulate(input: &RolloutInput, waves: &[Wave]) -> Result<(), TestCaseError> {
    let (floor_bound, ceiling_bound) = bounds(input);
    let mut old: BTreeMap<&str, bool> = input.old.iter().map(|i| (i.id.as_str(), i.healthy)).collect();
    let mut new_healthy = u64::from(input.new_ready.min(input.replicas));
    let healthy_old = |old: &BTreeMap<&str, bool>| old.values().filter(|h| **h).count() as u64;
    for (k, wave) in waves.iter().enumerate() {
        prop_assert_eq!(wave.index as usize, k + 1);
        prop_assert!(wave.add > 0 || !wave.remove_first.is_empty() || !wave.remove_after.is_empty(), "empty wave");
        let mut lowest = healthy_old(&old) + new_healthy;
        let mut highest = old.len() as u64 + new_healthy;
        for id in &wave.remove_first {
            prop_assert!(old.remove(id.as_str()).is_some(), "{} is not a remaining old instance", id);
        }
        lowest = lowest.min(healthy_old(&old) + new_healthy);
        // Launching: the new instances exist but are not healthy yet.
        highest = highest.max(old.len() as u64 + new_healthy + u64::from(wave.add));
        new_healthy += u64::from(wave.add);
        for id in &wave.remove_after {
            prop_assert!(old.remove(id.as_str()).is_some(), "{} is not a remaining old instance", id);
        }
        lowest = lowest.min(healthy_old(&old) + new_healthy);
        prop_assert!(lowest >= floor_bound, "wave {} drops to {} healthy, floor {}", wave.index, lowest, floor_bound);
        prop_assert!(highest <= ceiling_bound, "wave {} reaches {}, ceiling {}", wave.index, highest, ceiling_bound);
        prop_assert_eq!(u64::from(wave.floor), lowest);
        prop_assert_eq!(u64::from(wave.ceiling), highest);
    }
    prop_assert!(old.is_empty(), "old instances left: {:?}", old);
    prop_assert_eq!(new_healthy, u64::from(input.replicas));
    Ok(())
}

/// The fewest waves from the input's counts to (0 old, R new), searching every choice of
/// removals (healthy or not, before or after the wait) and additions per wave, under the
/// same bounds; `None` if unreachable. States are (healthy old, unhealthy old, new).
fn fewest_waves(input: &RolloutInput) -> Option<usize> {
    let (floor, ceiling) = bounds(input);
    let r = u64::from(input.replicas);
    let h0 = input.old.iter().filter(|i| i.healthy).count() as u64;
    let start = (h0, input.old.len() as u64 - h0, u64::from(input.new_ready.min(input.replicas)));
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([(start, 0)]);
    while let Some(((h, u, n), waves)) = queue.pop_front() {
        if (h, u, n) == (0, 0, r) {
            return Some(waves);
        }
        for r1 in 0..=h {
            for q1 in 0..=u {
                for add in 0..=r - n {
                    for r2 in 0..=h - r1 {
                        for q2 in 0..=u - q1 {
                            // The moments of the wave: after remove_first, while launching,
                            // after the wait, after remove_after.
                            let healthy_first = h - r1 + n;
                            let launching = (h - r1) + (u - q1) + n + add;
                            let healthy_end = healthy_first + add - r2;
                            if healthy_first < floor || healthy_end < floor || launching > ceiling {
                                continue;
                            }
                            let next = (h - r1 - r2, u - q1 - q2, n + add);
                            if seen.insert(next) {
                                queue.push_back((next, waves + 1));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// The removal order by its definition: repeatedly the unhealthy (then healthy) instance
/// whose zone has the most remaining old instances, then the oldest, then zone, then id.
fn naive_order(old: &[OldInstance]) -> Vec<String> {
    let mut left: Vec<&OldInstance> = old.iter().collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let in_zone = |zone: &str| left.iter().filter(|i| i.zone == zone).count();
        let unhealthy_left = left.iter().any(|i| !i.healthy);
        let Some(pos) = (0..left.len())
            .filter(|&p| left[p].healthy != unhealthy_left)
            .min_by_key(|&p| (Reverse(in_zone(&left[p].zone)), left[p].launched_at_ms, &left[p].zone, &left[p].id))
        else {
            break;
        };
        order.push(left.remove(pos).id.clone());
    }
    order
}

fn removals(waves: &[Wave]) -> Vec<String> {
    waves.iter().flat_map(|w| w.remove_first.iter().chain(&w.remove_after)).cloned().collect()
}

fn rollout() -> impl Strategy<Value = RolloutInput> {
    let old = prop::collection::vec((0..3usize, any::<bool>(), 0..6u64), 0..=14);
    (0..=12u32, 0..=5u32, 0..=5u32, old).prop_flat_map(|(replicas, max_surge, max_unavailable, old)| {
        // A little above R too: a resumed rollout may find the autoscaler grew the new group.
        (0..=replicas + 2).prop_map(move |new_ready| RolloutInput {
            replicas,
            max_surge,
            max_unavailable,
            old: old
                .iter()
                .enumerate()
                .map(|(k, &(zone, healthy, launched_at_ms))| OldInstance {
                    id: format!("i-{k}"),
                    zone: ["us-a", "us-b", "us-c"][zone].into(),
                    launched_at_ms,
                    healthy,
                })
                .collect(),
            new_ready,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn schedules_are_safe_complete_balanced_and_minimal(input in rollout()) {
        let nothing_to_do = input.old.is_empty() && input.new_ready >= input.replicas;
        if input.max_surge == 0 && input.max_unavailable == 0 && !nothing_to_do {
            prop_assert_eq!(schedule(&input), Err(ScheduleError::NoSurgeNorUnavailable));
            return Ok(());
        }
        let waves = schedule(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        simulate(&input, &waves)?;
        prop_assert_eq!(removals(&waves), naive_order(&input.old));
        prop_assert_eq!(Some(waves.len()), fewest_waves(&input));
    }
}

/// Counts anywhere in u32, the edges more often than chance would give them.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), Just(u32::MAX - 1), 0..20u32, any::<u32>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any counts: an error or a schedule that keeps the contract, never a panic. Huge
    /// replica counts with a small surge end in `TooManyWaves` after at most `MAX_WAVES`
    /// cheap steps.
    #[test]
    fn any_counts_give_an_error_or_a_safe_schedule(
        (replicas, max_surge, max_unavailable, new_ready) in (count(), count(), count(), count()),
        old in prop::collection::vec((0..4u32, any::<bool>(), any::<u64>()), 0..=20),
    ) {
        let input = RolloutInput {
            replicas,
            max_surge,
            max_unavailable,
            old: old
                .into_iter()
                .enumerate()
                .map(|(k, (zone, healthy, launched_at_ms))| OldInstance {
                    id: format!("i-{k}"),
                    zone: format!("zone-{zone}"),
                    launched_at_ms,
                    healthy,
                })
                .collect(),
            new_ready,
        };
        if let Ok(waves) = schedule(&input) {
            simulate(&input, &waves)?;
        }
    }
}

fn fleet(count: u32, zones: usize) -> Vec<OldInstance> {
    (0..count)
        .map(|k| OldInstance {
            id: format!("i-{k:05}"),
            zone: format!("zone-{}", k as usize % zones),
            launched_at_ms: u64::from(k % 17),
            healthy: true,
        })
        .collect()
}

/// Marks every `every`-th instance (from the first) unhealthy.
fn sick(mut old: Vec<OldInstance>, every: usize) -> Vec<OldInstance> {
    old.iter_mut().step_by(every).for_each(|i| i.healthy = false);
    old
}

fn input(replicas: u32, max_surge: u32, max_unavailable: u32, old: Vec<OldInstance>) -> RolloutInput {
    RolloutInput { replicas, max_surge, max_unavailable, old, new_ready: 0 }
}

#[test]
fn extreme_inputs_neither_panic_nor_crawl() {
    let cases = [
        (input(1000, 1, 0, fleet(1000, 7)), 1000),
        (input(1000, u32::MAX, 0, fleet(1000, 3)), 1),
        (input(1000, u32::MAX, u32::MAX, fleet(1000, 3)), 1),
        (input(1000, 0, u32::MAX, fleet(1000, 1)), 1),
        (input(1000, 3, 1, fleet(1000, 1000)), 250),
        (input(u32::MAX, u32::MAX, 0, Vec::new()), 1),
        (input(0, u32::MAX, u32::MAX, fleet(1000, 5)), 1),
        (RolloutInput { new_ready: u32::MAX, ..input(1000, 1, 0, fleet(1000, 5)) }, 1),
        // 35 unhealthy: the floor is 965 and the ceiling 1001, so 36 a wave while the new
        // are at most 965 (27 waves, to 972), then one wave for the rest.
        (input(1000, 1, 0, sick(fleet(1000, 7), 29)), 28),
    ];
    for (input, expected) in cases {
        let waves = schedule(&input).expect("a schedule");
        assert_eq!(waves.len(), expected, "R={} S={} U={}", input.replicas, input.max_surge, input.max_unavailable);
        simulate(&input, &waves).expect("a safe, complete schedule");
    }
}

#[test]
fn inputs_beyond_the_limits_are_errors() {
    assert_eq!(
        schedule(&input(u32::MAX, u32::MAX, u32::MAX, fleet(1, 1))),
        Err(ScheduleError::TooLarge { replicas: u32::MAX, old: 1 })
    );
    // One at a time with no room below the old capacity: one wave per replica.
    assert_eq!(
        schedule(&input(MAX_WAVES + 1, 1, 0, fleet(MAX_WAVES + 1, 3))),
        Err(ScheduleError::TooManyWaves { limit: MAX_WAVES })
    );
    assert_eq!(schedule(&input(MAX_WAVES, 1, 0, fleet(MAX_WAVES, 3))).map(|w| w.len()), Ok(MAX_WAVES as usize));
}
