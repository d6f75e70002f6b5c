//! Pure placement and preemption decisions.

use std::collections::BTreeMap;

mod waiting;

pub use waiting::{AgentSummary, why_waiting};

/// A trial waiting for slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTrial {
    /// Trial id.
    pub trial_id: u64,
    /// Lower is more important.
    pub priority: u32,
    /// Slots it needs on one agent.
    pub slots: u32,
    /// Run only on this agent.
    pub target_agent: Option<String>,
    /// Never run on this agent.
    pub avoid_agent: Option<String>,
}

/// An agent's slots that can take work now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCapacity {
    /// Agent id.
    pub agent_id: String,
    /// Slot ids not in use.
    pub free_slots: Vec<String>,
}

/// A decision to run a trial on an agent's slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Trial id.
    pub trial_id: u64,
    /// Agent id.
    pub agent_id: String,
    /// Slots given to it.
    pub slot_ids: Vec<String>,
}

/// A running allocation that preemption may suspend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAllocation {
    /// Allocation id.
    pub allocation_id: String,
    /// Agent it runs on.
    pub agent_id: String,
    /// Its trial's priority.
    pub priority: u32,
    /// Slots it holds.
    pub slots: u32,
    /// Start order (higher = started later).
    pub started: i64,
}

/// Places pending trials (most important first, then oldest) on agents, best fit first.
pub fn place(pending: &[PendingTrial], agents: &[AgentCapacity]) -> Vec<Placement> {
    let mut free: BTreeMap<&str, Vec<String>> = agents
        .iter()
        .map(|a| (a.agent_id.as_str(), a.free_slots.clone()))
        .collect();
    let mut order: Vec<&PendingTrial> = pending.iter().collect();
    order.sort_by_key(|t| (t.priority, t.trial_id));
    let mut placements = Vec::new();
    for trial in order {
        let needed = trial.slots as usize;
        let chosen = free
            .iter()
            .filter(|(agent, slots)| {
                slots.len() >= needed
                    && trial.target_agent.as_deref().is_none_or(|t| t == **agent)
                    && trial.avoid_agent.as_deref() != Some(**agent)
            })
            .min_by_key(|(agent, slots)| (slots.len(), **agent))
            .map(|(agent, _)| *agent);
        if let Some(agent) = chosen {
            let slots = free.get_mut(agent).expect("chosen agent exists");
            let slot_ids: Vec<String> = slots.drain(..needed).collect();
            placements.push(Placement {
                trial_id: trial.trial_id,
                agent_id: agent.to_string(),
                slot_ids,
            });
        }
    }
    placements
}

/// Chooses the fewest running allocations of worse priority to suspend so `trial` fits on one agent.
pub fn choose_preemptions(
    trial: &PendingTrial,
    agents: &[AgentCapacity],
    running: &[RunningAllocation],
) -> Vec<String> {
    let mut best: Option<Vec<String>> = None;
    for agent in agents {
        if trial
            .target_agent
            .as_deref()
            .is_some_and(|t| t != agent.agent_id)
            || trial.avoid_agent.as_deref() == Some(agent.agent_id.as_str())
        {
            continue;
        }
        let mut victims: Vec<&RunningAllocation> = running
            .iter()
            .filter(|r| r.agent_id == agent.agent_id && r.priority > trial.priority)
            .collect();
        // Least important first; among equals, the most recently started.
        victims.sort_by(|a, b| b.priority.cmp(&a.priority).then(b.started.cmp(&a.started)));
        let mut freed = agent.free_slots.len() as u32;
        let mut chosen = Vec::new();
        for victim in victims {
            if freed >= trial.slots {
                break;
            }
            freed += victim.slots;
            chosen.push(victim.allocation_id.clone());
        }
        if freed >= trial.slots && best.as_ref().is_none_or(|b| chosen.len() < b.len()) {
            best = Some(chosen);
        }
    }
    best.unwrap_or_default()
}

#[cfg(test)]
mod tests;
