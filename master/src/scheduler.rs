//! Pure placement and preemption decisions.

mod choice;
mod holes;
mod preemption;
mod waiting;

use choice::{Hole, choose};
use holes::{FreeSlots, Holes};
pub use preemption::choose_preemptions;
pub use waiting::{AgentSummary, why_waiting};

/// A trial waiting for slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTrial {
    /// Trial id.
    pub trial_id: u64,
    /// Lower is more important.
    pub priority: u32,
    /// Slots it needs, on one agent or over several.
    pub slots: u32,
    /// Run on this agent (the chief part of a gang).
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
    /// All its slots, in use or not.
    pub total_slots: u32,
}

/// A decision to run a trial on the slots of one agent or, as a gang, of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Trial id.
    pub trial_id: u64,
    /// One part per agent; the first is the chief, where rank 0 runs.
    pub parts: Vec<PlacedPart>,
}

/// The slots a placement takes on one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPart {
    /// Agent id.
    pub agent_id: String,
    /// Slots given to the trial there.
    pub slot_ids: Vec<String>,
}

/// A running allocation that preemption may suspend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAllocation {
    /// Allocation id.
    pub allocation_id: String,
    /// Each agent it runs on, with the slots it holds there.
    pub parts: Vec<(String, u32)>,
    /// Its trial's priority.
    pub priority: u32,
    /// Start order (higher = started later).
    pub started: i64,
}

/// Places pending trials, most important first (lowest priority, then lowest trial id).
///
/// A trial goes on the one agent whose free slots fit it most tightly (ties by agent id). When
/// no agent has room alone, it runs as a gang, whole or not at all, over the fewest agents:
/// whole agents (every slot free), largest first, while the others can still cover the rest, and
/// last the smallest hole that covers what remains. The chief part holds the most slots (ties by
/// agent id); a trial moved to an agent has it as its chief, and never uses the agent it avoids.
///
/// The first trial that cannot be placed, but would fit these agents once their busy slots are
/// free, keeps every agent it may use for itself: the less important trials of the pass go only
/// on the agent it avoids, so small trials taking slots as they free up cannot starve it. A trial
/// that could never fit these agents keeps nothing.
pub fn place(pending: &[PendingTrial], agents: &[AgentCapacity]) -> Vec<Placement> {
    let mut free: FreeSlots = agents
        .iter()
        .map(|a| {
            (
                a.agent_id.as_str(),
                (a.free_slots.clone(), a.total_slots as usize),
            )
        })
        .collect();
    let mut order: Vec<&PendingTrial> = pending.iter().collect();
    order.sort_by_key(|t| (t.priority, t.trial_id));
    let mut first_waiting: Option<&PendingTrial> = None;
    let mut holes = Holes::new(&free, |_| true);
    let mut placements = Vec::new();
    for trial in order {
        let Some(chosen) = holes.choose(trial) else {
            if first_waiting.is_none() && fits_when_idle(trial, agents) {
                first_waiting = Some(trial);
                holes = Holes::new(&free, |agent| trial.avoid_agent.as_deref() == Some(agent));
            }
            // A waiting trial that may use every agent leaves none to the rest of the pass.
            if first_waiting.is_some_and(|w| w.avoid_agent.is_none()) {
                break;
            }
            continue;
        };
        let parts = chosen
            .into_iter()
            .map(|(agent, count)| {
                let (slots, total) = free.get_mut(agent).expect("chosen agent exists");
                let slot_ids = slots.drain(..count).collect();
                holes.update(agent, slots.len(), *total);
                PlacedPart {
                    agent_id: agent.to_string(),
                    slot_ids,
                }
            })
            .collect();
        placements.push(Placement {
            trial_id: trial.trial_id,
            parts,
        });
    }
    placements
}

/// Whether `trial` would be placed on `agents` if none of their slots were in use.
fn fits_when_idle(trial: &PendingTrial, agents: &[AgentCapacity]) -> bool {
    let idle: Vec<Hole> = agents
        .iter()
        .map(|a| Hole {
            agent: &a.agent_id,
            free: a.total_slots as usize,
            whole: true,
        })
        .collect();
    choose(trial, &idle).is_some()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
