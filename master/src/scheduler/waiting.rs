//! Why a pending trial is not placed: a pure explanation from the same inputs as placement.

use super::PendingTrial;

/// An agent as explanations see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// Agent id.
    pub agent_id: String,
    /// Whether it has a live stream.
    pub connected: bool,
    /// "enabled", "disabled" or "draining".
    pub mode: &'static str,
    /// All its slots.
    pub slots: u32,
    /// Slots not in use.
    pub free: u32,
}

/// Says why `trial` waits, given the agents and whether a more important trial waits too.
pub fn why_waiting(
    trial: &PendingTrial,
    agents: &[AgentSummary],
    more_important_waiting: bool,
) -> String {
    let needed = trial.slots;
    let connected: Vec<&AgentSummary> = agents.iter().filter(|a| a.connected).collect();
    let enabled: Vec<&AgentSummary> = connected
        .iter()
        .copied()
        .filter(|a| a.mode == "enabled" && trial.avoid_agent.as_deref() != Some(&a.agent_id))
        .collect();
    if let Some(target) = &trial.target_agent {
        return for_target(target, needed, agents, &enabled);
    }
    if connected.is_empty() {
        return "waiting for an agent: no agent is connected".into();
    }
    if enabled.is_empty() {
        return if connected.iter().all(|a| a.mode != "enabled") {
            "waiting for an agent: all connected agents are disabled or draining".into()
        } else {
            "waiting for an agent other than the one it is leaving".into()
        };
    }
    let largest = enabled.iter().map(|a| a.slots).max().unwrap_or(0);
    let (total, free) = (sum(&enabled, |a| a.slots), sum(&enabled, |a| a.free));
    let agents = enabled.len();
    if total < needed {
        let mut reason = format!(
            "needs {}; the largest enabled agent has {largest}",
            slots(needed)
        );
        if agents > 1 {
            reason.push_str(&format!(
                ", and the {agents} enabled agents have {total} in all"
            ));
        }
        return reason;
    }
    let mut reason = if largest >= needed {
        format!(
            "waiting for {} free on one agent: {free} of {total} slots of the {agents} enabled agents are free",
            slots(needed)
        )
    } else {
        format!(
            "waiting for {} free across agents: {free} of {total} slots of the {agents} enabled agents are free (at most {} on one)",
            slots(needed),
            enabled.iter().map(|a| a.free).max().unwrap_or(0)
        )
    };
    if more_important_waiting {
        reason.push_str("; a more important trial waits for slots first");
    }
    reason
}

/// Why a trial moved to `target` waits; a gang larger than the target has it as its chief part.
fn for_target(
    target: &str,
    needed: u32,
    agents: &[AgentSummary],
    enabled: &[&AgentSummary],
) -> String {
    let moved = format!("agent {target} (the trial was moved there)");
    let Some(agent) = agents.iter().find(|a| a.agent_id == target) else {
        return format!("waiting for agent {target}, which the master does not know");
    };
    if !agent.connected {
        return format!("waiting for {moved} to connect");
    }
    if agent.mode != "enabled" {
        return format!("waiting for {moved}, which is {}", agent.mode);
    }
    if agent.slots >= needed {
        return format!(
            "waiting for {} free on agent {target} (the trial was moved there; {} free now)",
            slots(needed),
            agent.free
        );
    }
    let (total, free) = (sum(enabled, |a| a.slots), sum(enabled, |a| a.free));
    if total < needed {
        return format!(
            "needs {}; {moved} has {}, and the {} enabled agents have {total} in all",
            slots(needed),
            agent.slots,
            enabled.len()
        );
    }
    format!(
        "waiting for {} free on {moved} and others: {} free there, {free} of {total} slots of the {} enabled agents in all",
        slots(needed),
        agent.free,
        enabled.len()
    )
}

/// "1 slot" or "N slots".
fn slots(n: u32) -> String {
    if n == 1 {
        "1 slot".to_string()
    } else {
        format!("{n} slots")
    }
}

/// The sum of `field` over `agents`.
fn sum(agents: &[&AgentSummary], field: impl Fn(&AgentSummary) -> u32) -> u32 {
    agents.iter().map(|a| field(a)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, connected: bool, mode: &'static str, slots: u32, free: u32) -> AgentSummary {
        AgentSummary {
            agent_id: id.into(),
            connected,
            mode,
            slots,
            free,
        }
    }

    fn trial(slots: u32) -> PendingTrial {
        PendingTrial {
            trial_id: 1,
            priority: 42,
            slots,
            target_agent: None,
            avoid_agent: None,
        }
    }

    #[test]
    fn each_cause_is_named() {
        let two = [
            agent("a", true, "enabled", 2, 0),
            agent("b", true, "enabled", 1, 1),
        ];
        assert_eq!(
            why_waiting(&trial(64), &two, false),
            "needs 64 slots; the largest enabled agent has 2, and the 2 enabled agents have 3 in all"
        );
        assert_eq!(
            why_waiting(&trial(64), &two[..1], false),
            "needs 64 slots; the largest enabled agent has 2"
        );
        assert_eq!(
            why_waiting(&trial(2), &two, true),
            "waiting for 2 slots free on one agent: 1 of 3 slots of the 2 enabled agents are free; a more important trial waits for slots first"
        );
        let disabled = [
            agent("a", true, "disabled", 2, 2),
            agent("b", true, "draining", 2, 2),
        ];
        assert_eq!(
            why_waiting(&trial(1), &disabled, false),
            "waiting for an agent: all connected agents are disabled or draining"
        );
        let gone = [agent("a", false, "enabled", 2, 2)];
        assert_eq!(
            why_waiting(&trial(1), &gone, false),
            "waiting for an agent: no agent is connected"
        );
        let mut moved = trial(1);
        moved.target_agent = Some("a".into());
        assert_eq!(
            why_waiting(&moved, &gone, false),
            "waiting for agent a (the trial was moved there) to connect"
        );
        let mut leaving = trial(1);
        leaving.avoid_agent = Some("b".into());
        let one = [
            agent("a", true, "disabled", 1, 1),
            agent("b", true, "enabled", 1, 1),
        ];
        assert_eq!(
            why_waiting(&leaving, &one, false),
            "waiting for an agent other than the one it is leaving"
        );
    }

    #[test]
    fn a_gang_names_the_free_slots_of_all_agents() {
        let four = [
            agent("a", true, "enabled", 4, 4),
            agent("b", true, "enabled", 4, 2),
            agent("c", true, "enabled", 4, 2),
            agent("d", true, "enabled", 4, 0),
        ];
        assert_eq!(
            why_waiting(&trial(12), &four, false),
            "waiting for 12 slots free across agents: 8 of 16 slots of the 4 enabled agents are free (at most 4 on one)"
        );
        assert_eq!(
            why_waiting(&trial(12), &four, true),
            "waiting for 12 slots free across agents: 8 of 16 slots of the 4 enabled agents are free (at most 4 on one); a more important trial waits for slots first"
        );
        let mut moved = trial(12);
        moved.target_agent = Some("d".into());
        assert_eq!(
            why_waiting(&moved, &four, false),
            "waiting for 12 slots free on agent d (the trial was moved there) and others: 0 free there, 8 of 16 slots of the 4 enabled agents in all"
        );
        moved.slots = 20;
        assert_eq!(
            why_waiting(&moved, &four, false),
            "needs 20 slots; agent d (the trial was moved there) has 4, and the 4 enabled agents have 16 in all"
        );
    }
}
