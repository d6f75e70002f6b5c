use super::*;

fn pending(trial_id: u64, priority: u32, slots: u32) -> PendingTrial {
    PendingTrial {
        trial_id,
        priority,
        slots,
        target_agent: None,
        avoid_agent: None,
    }
}

/// An agent with `free` slots, all of them free.
fn agent(id: &str, free: usize) -> AgentCapacity {
    partly_used(id, free, free as u32)
}

/// An agent with `free` of its `total` slots free.
pub(super) fn partly_used(id: &str, free: usize, total: u32) -> AgentCapacity {
    AgentCapacity {
        agent_id: id.into(),
        free_slots: (0..free).map(|i| format!("{id}-s{i}")).collect(),
        total_slots: total,
    }
}

pub(super) fn running(
    id: &str,
    parts: &[(&str, u32)],
    priority: u32,
    started: i64,
) -> RunningAllocation {
    RunningAllocation {
        allocation_id: id.into(),
        parts: parts.iter().map(|(a, s)| (a.to_string(), *s)).collect(),
        priority,
        started,
    }
}

/// Each part of a placement as (agent, slots).
fn shape(placement: &Placement) -> Vec<(&str, usize)> {
    placement
        .parts
        .iter()
        .map(|p| (p.agent_id.as_str(), p.slot_ids.len()))
        .collect()
}

#[test]
fn places_by_priority_then_age_with_best_fit() {
    let placed = place(
        &[pending(3, 50, 1), pending(1, 50, 2), pending(2, 10, 1)],
        &[agent("a", 2), agent("b", 1)],
    );
    assert_eq!(placed[0].trial_id, 2);
    assert_eq!(
        shape(&placed[0]),
        [("b", 1)],
        "best fit takes the smaller hole"
    );
    assert_eq!(placed[1].trial_id, 1);
    assert_eq!(placed[1].parts[0].slot_ids, vec!["a-s0", "a-s1"]);
    assert_eq!(placed.len(), 2, "trial 3 waits: no slot left");
}

#[test]
fn honours_target_and_avoid() {
    let mut t = pending(1, 42, 1);
    t.avoid_agent = Some("a".into());
    assert_eq!(
        shape(&place(&[t.clone()], &[agent("a", 1), agent("b", 1)])[0]),
        [("b", 1)]
    );
    assert!(place(&[t.clone()], &[agent("a", 4)]).is_empty());
    t.avoid_agent = None;
    t.target_agent = Some("c".into());
    assert_eq!(
        shape(&place(&[t], &[agent("a", 1), agent("c", 1)])[0]),
        [("c", 1)]
    );
}

#[test]
fn two_single_slot_agents_take_a_two_slot_trial_as_one_gang() {
    let placed = place(&[pending(1, 42, 2)], &[agent("b", 1), agent("a", 1)]);
    assert_eq!(placed.len(), 1);
    assert_eq!(shape(&placed[0]), [("a", 1), ("b", 1)], "chief by agent id");
    assert_eq!(placed[0].parts[1].slot_ids, ["b-s0"]);
}

#[test]
fn a_gang_takes_two_whole_agents_not_four_halves() {
    let agents = [agent("a", 2), agent("b", 2), agent("c", 2), agent("d", 2)];
    let placed = place(&[pending(1, 42, 4)], &agents);
    assert_eq!(shape(&placed[0]), [("a", 2), ("b", 2)]);
}

#[test]
fn a_gang_prefers_a_whole_agent_over_fragments() {
    let agents = [agent("a", 3), partly_used("b", 4, 8), agent("c", 3)];
    let placed = place(&[pending(1, 42, 6)], &agents);
    assert_eq!(shape(&placed[0]), [("a", 3), ("c", 3)], "not b's 4 of 8");
}

#[test]
fn the_last_part_of_a_gang_takes_the_smallest_hole_that_covers_it() {
    let agents = [agent("a", 4), agent("b", 4), partly_used("c", 1, 8)];
    let placed = place(&[pending(1, 42, 5)], &agents);
    assert_eq!(shape(&placed[0]), [("a", 4), ("c", 1)], "b stays whole");
}

#[test]
fn a_gang_over_a_target_makes_it_the_chief_and_never_uses_the_avoided_agent() {
    let mut moved = pending(1, 42, 5);
    moved.target_agent = Some("small".into());
    moved.avoid_agent = Some("big".into());
    let agents = [agent("big", 8), agent("small", 1), agent("mid", 4)];
    let placed = place(&[moved.clone()], &agents);
    assert_eq!(shape(&placed[0]), [("small", 1), ("mid", 4)]);
    moved.slots = 6;
    assert!(place(&[moved], &agents).is_empty(), "all or nothing");
}

#[test]
fn less_important_trials_wait_behind_a_gang_that_could_fit() {
    let agents = [partly_used("a", 1, 2), partly_used("b", 1, 2)];
    let placed = place(&[pending(1, 10, 3), pending(2, 50, 1)], &agents);
    assert!(placed.is_empty(), "trial 2 leaves the slots to trial 1");
    let mut leaving = pending(1, 10, 2);
    leaving.avoid_agent = Some("b".into());
    let placed = place(&[leaving, pending(2, 50, 1)], &agents);
    assert_eq!(placed.len(), 1);
    assert_eq!(shape(&placed[0]), [("b", 1)], "the agent trial 1 avoids");
}

#[test]
fn a_trial_that_could_never_fit_holds_nothing_back() {
    let agents = [agent("a", 2), agent("b", 2)];
    let placed = place(&[pending(1, 10, 64), pending(2, 50, 1)], &agents);
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].trial_id, 2);
}

#[test]
fn preempts_fewest_worse_priority_allocations() {
    let victims = choose_preemptions(
        &pending(9, 10, 2),
        &[partly_used("a", 0, 2), partly_used("b", 1, 2)],
        &[
            running("x", &[("a", 1)], 50, 1),
            running("y", &[("a", 1)], 60, 2),
            running("z", &[("b", 1)], 50, 3),
        ],
    );
    assert_eq!(victims, vec!["z"]);
}

#[test]
fn never_preempts_equal_or_better_priority() {
    let victims = choose_preemptions(
        &pending(9, 50, 1),
        &[partly_used("a", 0, 2)],
        &[
            running("x", &[("a", 1)], 50, 1),
            running("y", &[("a", 1)], 10, 2),
        ],
    );
    assert!(victims.is_empty());
}

#[test]
fn preempts_least_important_then_newest() {
    let victims = choose_preemptions(
        &pending(9, 10, 1),
        &[partly_used("a", 0, 3)],
        &[
            running("old", &[("a", 1)], 50, 1),
            running("new", &[("a", 1)], 50, 2),
            running("low", &[("a", 1)], 40, 3),
        ],
    );
    assert_eq!(victims, vec!["new"]);
}

#[test]
fn preempts_across_agents_for_a_gang_and_a_suspended_gang_frees_every_part() {
    let agents = [partly_used("a", 0, 2), partly_used("b", 0, 2)];
    let running_now = [
        running("ab", &[("a", 1), ("b", 1)], 70, 1),
        running("a1", &[("a", 1)], 60, 2),
        running("b1", &[("b", 1)], 60, 3),
    ];
    let victims = choose_preemptions(&pending(9, 10, 3), &agents, &running_now);
    assert_eq!(victims, vec!["ab", "b1"]);
    let all = choose_preemptions(&pending(9, 10, 4), &agents, &running_now);
    assert_eq!(all.len(), 3);
    assert!(choose_preemptions(&pending(9, 10, 5), &agents, &running_now).is_empty());
}

#[test]
fn drops_victims_a_later_one_made_unnecessary() {
    let victims = choose_preemptions(
        &pending(9, 10, 5),
        &[partly_used("a", 1, 2), partly_used("b", 0, 4)],
        &[
            running("small", &[("a", 1)], 90, 1),
            running("big", &[("b", 4)], 80, 2),
        ],
    );
    assert_eq!(victims, vec!["big"]);
}
