use std::collections::BTreeSet;

use proptest::prelude::*;

use super::tests::{partly_used, running};
use super::*;

/// Up to five agents `a0`… with 1–5 slots, some of them in use.
fn cluster() -> impl Strategy<Value = Vec<AgentCapacity>> {
    prop::collection::vec((1u32..6, 0u32..6), 1..6).prop_map(|agents| {
        agents
            .iter()
            .enumerate()
            .map(|(i, (total, used))| {
                partly_used(
                    &format!("a{i}"),
                    total.saturating_sub(*used) as usize,
                    *total,
                )
            })
            .collect()
    })
}

/// A trial with 1–8 slots, sometimes moved to or away from an agent (which may not exist).
fn trial() -> impl Strategy<Value = PendingTrial> {
    (
        1u32..4,
        1u32..9,
        prop::option::weighted(0.2, 0usize..6),
        prop::option::weighted(0.2, 0usize..6),
    )
        .prop_map(|(priority, slots, target, avoid)| PendingTrial {
            trial_id: 0,
            priority,
            slots,
            target_agent: target.map(|t| format!("a{t}")),
            avoid_agent: avoid.map(|a| format!("a{a}")),
        })
}

/// Trials with distinct ids, not in id order.
fn trials() -> impl Strategy<Value = Vec<PendingTrial>> {
    prop::collection::vec(trial(), 0..8).prop_map(|trials| {
        trials
            .into_iter()
            .enumerate()
            .map(|(i, t)| PendingTrial {
                trial_id: if i % 2 == 0 { i as u64 } else { 100 - i as u64 },
                ..t
            })
            .collect()
    })
}

/// Whether `trial` may have a part on `agent`.
fn may_use(trial: &PendingTrial, agent: &str) -> bool {
    trial.avoid_agent.as_deref() != Some(agent)
}

/// Whether `trial` would fit `agents` with every slot free, counted independently of `place`.
fn fits_idle(trial: &PendingTrial, agents: &[AgentCapacity]) -> bool {
    let usable: Vec<&AgentCapacity> = agents
        .iter()
        .filter(|a| may_use(trial, &a.agent_id))
        .collect();
    let total: u32 = usable.iter().map(|a| a.total_slots).sum();
    let target_ok = trial
        .target_agent
        .as_ref()
        .is_none_or(|t| usable.iter().any(|a| &a.agent_id == t && a.total_slots > 0));
    target_ok && total >= trial.slots
}

/// The fewest of `frees` that add up to `needed`, by trying every subset.
fn fewest_covering(frees: &[usize], needed: usize) -> Option<u32> {
    (0u32..1 << frees.len())
        .filter(|set| {
            let sum: usize = (0..frees.len())
                .filter(|i| set & (1 << i) != 0)
                .map(|i| frees[i])
                .sum();
            sum >= needed
        })
        .map(u32::count_ones)
        .min()
}

/// `agents` once `suspended` have freed their slots (with made-up slot ids).
fn after_suspending(
    agents: &[AgentCapacity],
    suspended: &[&RunningAllocation],
) -> Vec<AgentCapacity> {
    agents
        .iter()
        .map(|a| {
            let mut free_slots = a.free_slots.clone();
            for r in suspended {
                for (agent, slots) in &r.parts {
                    if agent == &a.agent_id {
                        free_slots.extend(
                            (0..*slots).map(|i| format!("{}-{}-{i}", r.allocation_id, a.agent_id)),
                        );
                    }
                }
            }
            AgentCapacity {
                free_slots,
                ..a.clone()
            }
        })
        .collect()
}

/// Agents with running allocations (some spanning agents), and a few slots busy with work not listed.
fn busy_cluster() -> impl Strategy<Value = (Vec<AgentCapacity>, Vec<RunningAllocation>)> {
    let allocations = prop::collection::vec(
        (1u32..5, prop::collection::vec((0usize..4, 1u32..4), 1..3)),
        0..8,
    );
    (prop::collection::vec((1u32..6, 0u32..3), 1..5), allocations).prop_map(
        |(agents, allocations)| {
            let mut left: Vec<u32> = agents.iter().map(|(total, _)| *total).collect();
            let mut running_now = Vec::new();
            for (i, (priority, parts)) in allocations.iter().enumerate() {
                let mut held: Vec<(String, u32)> = Vec::new();
                for (agent, slots) in parts {
                    let agent = agent % agents.len();
                    let take = (*slots).min(left[agent]);
                    if take > 0 && !held.iter().any(|(a, _)| a == &format!("a{agent}")) {
                        left[agent] -= take;
                        held.push((format!("a{agent}"), take));
                    }
                }
                if !held.is_empty() {
                    let parts: Vec<(&str, u32)> =
                        held.iter().map(|(a, s)| (a.as_str(), *s)).collect();
                    running_now.push(running(&format!("r{i}"), &parts, *priority, i as i64 % 3));
                }
            }
            let agents = agents
                .iter()
                .enumerate()
                .map(|(i, (total, untracked))| {
                    let free = left[i].saturating_sub(*untracked);
                    partly_used(&format!("a{i}"), free as usize, *total)
                })
                .collect();
            (agents, running_now)
        },
    )
}

proptest! {
    #[test]
    fn gangs_are_whole_on_distinct_agents_and_never_double_book(
        pending in trials(),
        agents in cluster(),
    ) {
        let placed = place(&pending, &agents);
        let mut given = BTreeSet::new();
        let mut trials_placed = BTreeSet::new();
        for p in &placed {
            prop_assert!(trials_placed.insert(p.trial_id), "trial {} placed twice", p.trial_id);
            let trial = pending.iter().find(|t| t.trial_id == p.trial_id).unwrap();
            let slots: usize = p.parts.iter().map(|part| part.slot_ids.len()).sum();
            prop_assert_eq!(slots, trial.slots as usize);
            let on: BTreeSet<&str> = p.parts.iter().map(|part| part.agent_id.as_str()).collect();
            prop_assert_eq!(on.len(), p.parts.len(), "one part per agent");
            for part in &p.parts {
                prop_assert!(!part.slot_ids.is_empty());
                prop_assert!(may_use(trial, &part.agent_id));
                let agent = agents.iter().find(|a| a.agent_id == part.agent_id).unwrap();
                for slot in &part.slot_ids {
                    prop_assert!(agent.free_slots.contains(slot), "{} is not free", slot);
                    prop_assert!(given.insert(slot.clone()), "slot {} given twice", slot);
                }
            }
            if let Some(target) = &trial.target_agent {
                prop_assert_eq!(&p.parts[0].agent_id, target);
            }
        }
    }

    #[test]
    fn a_lone_trial_goes_on_one_agent_when_one_fits_else_on_the_fewest(
        trial in trial(),
        agents in cluster(),
    ) {
        let placed = place(std::slice::from_ref(&trial), &agents);
        let needed = trial.slots as usize;
        let usable: Vec<&AgentCapacity> = agents.iter().filter(|a| may_use(&trial, &a.agent_id)).collect();
        let free: usize = usable.iter().map(|a| a.free_slots.len()).sum();
        if let Some(target) = &trial.target_agent {
            let chief = usable.iter().find(|a| &a.agent_id == target).map_or(0, |a| a.free_slots.len());
            prop_assert_eq!(placed.len() == 1, chief > 0 && free >= needed);
            if let Some(p) = placed.first() {
                prop_assert_eq!(p.parts.len() == 1, chief >= needed);
            }
            return Ok(());
        }
        prop_assert_eq!(placed.len() == 1, free >= needed);
        let Some(p) = placed.first() else { return Ok(()) };
        let fitting = usable.iter().filter(|a| a.free_slots.len() >= needed).min_by_key(|a| (a.free_slots.len(), &a.agent_id));
        if let Some(best) = fitting {
            prop_assert_eq!(p.parts.len(), 1);
            prop_assert_eq!(&p.parts[0].agent_id, &best.agent_id);
            return Ok(());
        }
        let frees: Vec<usize> = usable.iter().map(|a| a.free_slots.len()).collect();
        prop_assert_eq!(Some(p.parts.len() as u32), fewest_covering(&frees, needed));
        let is_whole = |a: &AgentCapacity| a.free_slots.len() as u32 == a.total_slots;
        let whole: Vec<usize> = usable.iter().filter(|a| is_whole(a)).map(|a| a.free_slots.len()).collect();
        if fewest_covering(&whole, needed) == Some(p.parts.len() as u32) {
            // Each part but the last one filled takes a whole agent entirely.
            let entire = p.parts.iter().filter(|part| {
                let agent = usable.iter().find(|a| a.agent_id == part.agent_id).unwrap();
                is_whole(agent) && part.slot_ids.len() == agent.free_slots.len()
            });
            prop_assert!(entire.count() + 1 >= p.parts.len(), "{:?}", p);
        }
        let chief = &p.parts[0];
        for part in &p.parts[1..] {
            prop_assert!((chief.slot_ids.len(), &part.agent_id) > (part.slot_ids.len(), &chief.agent_id));
        }
    }

    #[test]
    fn no_less_important_trial_takes_what_the_first_waiting_trial_may_use(
        pending in trials(),
        agents in cluster(),
    ) {
        let placed = place(&pending, &agents);
        let mut order: Vec<&PendingTrial> = pending.iter().collect();
        order.sort_by_key(|t| (t.priority, t.trial_id));
        let is_placed = |t: &PendingTrial| placed.iter().any(|p| p.trial_id == t.trial_id);
        let Some(first) = order.iter().position(|t| !is_placed(t) && fits_idle(t, &agents)) else {
            return Ok(());
        };
        for later in &order[first + 1..] {
            if let Some(p) = placed.iter().find(|p| p.trial_id == later.trial_id) {
                for part in &p.parts {
                    prop_assert!(!may_use(order[first], &part.agent_id),
                        "trial {} took slots on {} that trial {} may use", later.trial_id, &part.agent_id, order[first].trial_id);
                }
            }
        }
    }

    #[test]
    fn preemption_frees_just_enough_from_worse_priorities_only(
        trial in trial(),
        (agents, running_now) in busy_cluster(),
    ) {
        let victims = choose_preemptions(&trial, &agents, &running_now);
        let chosen: Vec<&RunningAllocation> = running_now.iter().filter(|r| victims.contains(&r.allocation_id)).collect();
        prop_assert_eq!(chosen.len(), victims.len(), "distinct, known allocations");
        let fits = |suspended: &[&RunningAllocation]| {
            !place(std::slice::from_ref(&trial), &after_suspending(&agents, suspended)).is_empty()
        };
        for r in &chosen {
            prop_assert!(r.priority > trial.priority);
        }
        if victims.is_empty() {
            let worse: Vec<&RunningAllocation> = running_now.iter().filter(|r| r.priority > trial.priority).collect();
            prop_assert!(fits(&[]) || !fits(&worse));
        } else {
            prop_assert!(!fits(&[]), "it fits already");
            prop_assert!(fits(&chosen));
            for i in 0..chosen.len() {
                let mut fewer = chosen.clone();
                fewer.remove(i);
                prop_assert!(!fits(&fewer), "{} is not needed", chosen[i].allocation_id);
            }
        }
    }

    #[test]
    fn decisions_do_not_depend_on_input_order(
        pending in trials(),
        agents in cluster(),
        trial in trial(),
        (busy, running_now) in busy_cluster(),
    ) {
        let reversed = |v: &[PendingTrial]| v.iter().rev().cloned().collect::<Vec<_>>();
        let agents_reversed: Vec<_> = agents.iter().rev().cloned().collect();
        prop_assert_eq!(place(&pending, &agents), place(&reversed(&pending), &agents_reversed));
        let busy_reversed: Vec<_> = busy.iter().rev().cloned().collect();
        let running_reversed: Vec<_> = running_now.iter().rev().cloned().collect();
        prop_assert_eq!(
            choose_preemptions(&trial, &busy, &running_now),
            choose_preemptions(&trial, &busy_reversed, &running_reversed)
        );
    }
}
