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
    let slots = |n: u32| {
        if n == 1 {
            "1 slot".to_string()
        } else {
            format!("{n} slots")
        }
    };
    if let Some(target) = &trial.target_agent {
        return match agents.iter().find(|a| &a.agent_id == target) {
            None => format!("waiting for agent {target}, which the master does not know"),
            Some(a) if !a.connected => {
                format!("waiting for agent {target} (the trial was moved there) to connect")
            }
            Some(a) if a.mode != "enabled" => format!(
                "waiting for agent {target} (the trial was moved there), which is {}",
                a.mode
            ),
            Some(a) if a.slots < needed => format!(
                "needs {}; agent {target} (the trial was moved there) has {}",
                slots(needed),
                a.slots
            ),
            Some(a) => format!(
                "waiting for {} free on agent {target} (the trial was moved there; {} free now)",
                slots(needed),
                a.free
            ),
        };
    }
    let connected: Vec<&AgentSummary> = agents.iter().filter(|a| a.connected).collect();
    if connected.is_empty() {
        return "waiting for an agent: no agent is connected".into();
    }
    let enabled: Vec<&AgentSummary> = connected
        .iter()
        .copied()
        .filter(|a| a.mode == "enabled" && trial.avoid_agent.as_deref() != Some(&a.agent_id))
        .collect();
    if enabled.is_empty() {
        return if connected.iter().all(|a| a.mode != "enabled") {
            "waiting for an agent: all connected agents are disabled or draining".into()
        } else {
            "waiting for an agent other than the one it is leaving".into()
        };
    }
    let largest = enabled.iter().map(|a| a.slots).max().unwrap_or(0);
    if largest < needed {
        return format!(
            "needs {}; the largest enabled agent has {largest}",
            slots(needed)
        );
    }
    let total: u32 = enabled.iter().map(|a| a.slots).sum();
    let free: u32 = enabled.iter().map(|a| a.free).sum();
    let mut reason = format!(
        "waiting for {} free on one agent: {free} of {total} slots of the {} enabled agents are free",
        slots(needed),
        enabled.len()
    );
    if more_important_waiting {
        reason.push_str("; a more important trial waits for slots first");
    }
    reason
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
}
