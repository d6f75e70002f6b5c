use proptest::prelude::*;

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

fn agent(id: &str, free: usize) -> AgentCapacity {
    AgentCapacity {
        agent_id: id.into(),
        free_slots: (0..free).map(|i| format!("{id}-s{i}")).collect(),
    }
}

fn running(id: &str, agent_id: &str, priority: u32, slots: u32, started: i64) -> RunningAllocation {
    RunningAllocation {
        allocation_id: id.into(),
        agent_id: agent_id.into(),
        priority,
        slots,
        started,
    }
}

#[test]
fn places_by_priority_then_age_with_best_fit() {
    let placed = place(
        &[pending(3, 50, 1), pending(1, 50, 2), pending(2, 10, 1)],
        &[agent("a", 2), agent("b", 1)],
    );
    assert_eq!(placed[0].trial_id, 2);
    assert_eq!(placed[0].agent_id, "b", "best fit takes the smaller hole");
    assert_eq!(placed[1].trial_id, 1);
    assert_eq!(placed[1].agent_id, "a");
    assert_eq!(placed[1].slot_ids, vec!["a-s0", "a-s1"]);
    assert_eq!(placed.len(), 2, "trial 3 waits: no slot left");
}

#[test]
fn honours_target_and_avoid() {
    let mut t = pending(1, 42, 1);
    t.avoid_agent = Some("a".into());
    assert_eq!(
        place(&[t.clone()], &[agent("a", 1), agent("b", 1)])[0].agent_id,
        "b"
    );
    assert!(place(&[t.clone()], &[agent("a", 4)]).is_empty());
    t.avoid_agent = None;
    t.target_agent = Some("c".into());
    assert_eq!(
        place(&[t], &[agent("a", 1), agent("c", 1)])[0].agent_id,
        "c"
    );
}

#[test]
fn preempts_fewest_worse_priority_allocations() {
    let victims = choose_preemptions(
        &pending(9, 10, 2),
        &[agent("a", 0), agent("b", 1)],
        &[
            running("x", "a", 50, 1, 1),
            running("y", "a", 60, 1, 2),
            running("z", "b", 50, 1, 3),
        ],
    );
    assert_eq!(victims, vec!["z"]);
}

#[test]
fn never_preempts_equal_or_better_priority() {
    let victims = choose_preemptions(
        &pending(9, 50, 1),
        &[agent("a", 0)],
        &[running("x", "a", 50, 1, 1), running("y", "a", 10, 1, 2)],
    );
    assert!(victims.is_empty());
}

#[test]
fn preempts_least_important_then_newest() {
    let victims = choose_preemptions(
        &pending(9, 10, 1),
        &[agent("a", 0)],
        &[
            running("old", "a", 50, 1, 1),
            running("new", "a", 50, 1, 2),
            running("low", "a", 40, 1, 3),
        ],
    );
    assert_eq!(victims, vec!["new"]);
}

proptest! {
    #[test]
    fn placements_never_overcommit(
        trials in prop::collection::vec((1u32..99, 1u32..4), 0..20),
        frees in prop::collection::vec(0usize..5, 1..5),
    ) {
        let pending: Vec<_> = trials.iter().enumerate().map(|(i, (p, s))| pending(i as u64, *p, *s)).collect();
        let agents: Vec<_> = frees.iter().enumerate().map(|(i, f)| agent(&format!("a{i}"), *f)).collect();
        let placed = place(&pending, &agents);
        let mut used = std::collections::BTreeSet::new();
        for p in &placed {
            let trial = &pending[p.trial_id as usize];
            prop_assert_eq!(p.slot_ids.len() as u32, trial.slots);
            for slot in &p.slot_ids {
                prop_assert!(used.insert(slot.clone()), "slot {} given twice", slot);
                let prefix = format!("{}-", p.agent_id);
                prop_assert!(slot.starts_with(&prefix));
            }
        }
    }

    #[test]
    fn preemption_frees_enough_or_nothing(
        need in 1u32..4,
        priority in 1u32..99,
        allocations in prop::collection::vec((1u32..99, 1u32..3), 0..8),
        free in 0usize..3,
    ) {
        let running: Vec<_> = allocations.iter().enumerate()
            .map(|(i, (p, s))| running(&format!("r{i}"), "a", *p, *s, i as i64)).collect();
        let victims = choose_preemptions(&pending(0, priority, need), &[agent("a", free)], &running);
        let freed: u32 = free as u32 + running.iter().filter(|r| victims.contains(&r.allocation_id)).map(|r| r.slots).sum::<u32>();
        if !victims.is_empty() {
            prop_assert!(freed >= need);
            for r in running.iter().filter(|r| victims.contains(&r.allocation_id)) {
                prop_assert!(r.priority > priority);
            }
        }
    }
}
