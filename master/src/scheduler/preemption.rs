//! Which running allocations to suspend so that a more important trial fits.

use super::choice::{Hole, choose};
use super::{AgentCapacity, PendingTrial, RunningAllocation};

/// Chooses the fewest running allocations of worse priority whose suspension lets `trial` be placed.
///
/// Candidates go least important first, then most recently started. For each agent, those on it
/// are taken in that order until `trial` has room there alone (as before gangs); and all of them
/// are taken in that order until `trial` fits anywhere, possibly as a gang. Each choice then
/// loses those that `trial` fits without (the most important first; a choice for one agent keeps
/// its own version too), and the shortest wins, room on one agent on ties, then by agent id.
/// Suspending a gang frees its slots on every agent it spans. Nothing is chosen when `trial` fits
/// already or when suspending everything of worse priority would not make it fit.
pub fn choose_preemptions(
    trial: &PendingTrial,
    agents: &[AgentCapacity],
    running: &[RunningAllocation],
) -> Vec<String> {
    let mut worse: Vec<&RunningAllocation> = running
        .iter()
        .filter(|r| r.priority > trial.priority)
        .collect();
    worse.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(b.started.cmp(&a.started))
            .then(a.allocation_id.cmp(&b.allocation_id))
    });
    let needed = trial.slots as usize;
    let fits = |chosen: &[&RunningAllocation]| fits_after(trial, agents, chosen);
    // Each choice with whether it may need a gang and the agent it makes room on.
    let mut choices: Vec<(Vec<&RunningAllocation>, bool, &str)> = Vec::new();
    for agent in agents.iter().filter(|a| {
        trial
            .target_agent
            .as_deref()
            .is_none_or(|t| t == a.agent_id)
            && trial.avoid_agent.as_deref() != Some(a.agent_id.as_str())
    }) {
        let id = agent.agent_id.as_str();
        let here: Vec<&RunningAllocation> = worse
            .iter()
            .copied()
            .filter(|r| slots_on(r, id) > 0)
            .collect();
        let room_here = |chosen: &[&RunningAllocation]| {
            agent.free_slots.len() + chosen.iter().map(|r| slots_on(r, id)).sum::<usize>() >= needed
        };
        if let Some(victims) = take_until(&here, room_here) {
            let victims = without_unneeded(victims, room_here);
            let fewer = without_unneeded(victims.clone(), fits);
            if fewer.len() < victims.len() {
                choices.push((fewer, true, id));
            }
            choices.push((victims, false, id));
        }
    }
    if let Some(victims) = take_until(&worse, fits) {
        choices.push((without_unneeded(victims, fits), true, ""));
    }
    choices
        .into_iter()
        .min_by_key(|(victims, gang, id)| (victims.len(), *gang, *id))
        .map(|(victims, _, _)| {
            victims
                .into_iter()
                .map(|r| r.allocation_id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The first candidates, in order, with which `fits` holds; `None` when even all of them fail.
fn take_until<'r>(
    candidates: &[&'r RunningAllocation],
    fits: impl Fn(&[&'r RunningAllocation]) -> bool,
) -> Option<Vec<&'r RunningAllocation>> {
    let mut chosen = Vec::new();
    let mut rest = candidates.iter();
    while !fits(&chosen) {
        chosen.push(*rest.next()?);
    }
    Some(chosen)
}

/// `chosen` less those that `fits` does without, tried from the last (most important) back.
fn without_unneeded<'r>(
    mut chosen: Vec<&'r RunningAllocation>,
    fits: impl Fn(&[&'r RunningAllocation]) -> bool,
) -> Vec<&'r RunningAllocation> {
    for i in (0..chosen.len()).rev() {
        let mut without = chosen.clone();
        without.remove(i);
        if fits(&without) {
            chosen = without;
        }
    }
    chosen
}

/// Whether `trial` would be placed once `suspended` free their slots.
fn fits_after(
    trial: &PendingTrial,
    agents: &[AgentCapacity],
    suspended: &[&RunningAllocation],
) -> bool {
    let holes: Vec<Hole> = agents
        .iter()
        .map(|a| {
            let free = a.free_slots.len()
                + suspended
                    .iter()
                    .map(|r| slots_on(r, &a.agent_id))
                    .sum::<usize>();
            Hole {
                agent: &a.agent_id,
                free,
                whole: free >= a.total_slots as usize,
            }
        })
        .collect();
    choose(trial, &holes).is_some()
}

/// The slots `allocation` holds on `agent`.
fn slots_on(allocation: &RunningAllocation, agent: &str) -> usize {
    allocation
        .parts
        .iter()
        .filter(|(a, _)| a == agent)
        .map(|(_, slots)| *slots as usize)
        .sum()
}
