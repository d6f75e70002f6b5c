//! Agents as JSON.

use serde_json::{Value, json};

use super::time;
use crate::proto::Agent;

/// What an operator sees of an agent: `lost` when it is not connected, else its state
/// (`enabled`, `disabled` or `draining`).
pub fn agent_status(agent: &Agent) -> &str {
    if agent.connected {
        &agent.state
    } else {
        "lost"
    }
}

/// An agent as `agent list --json` shows it: each slot with the trial it runs (`null` when idle).
pub fn agent(agent: &Agent) -> Value {
    json!({
        "id": agent.id,
        "state": agent.state,
        "status": agent_status(agent),
        "connected": agent.connected,
        "slots": agent.slots,
        "used_slots": agent.used_slots,
        "trial_ids": agent.trial_ids,
        "last_seen_ms": agent.last_seen_ms,
        "last_seen": time(agent.last_seen_ms),
        "version": agent.version,
        "slot_details": agent.slot_details.iter()
            .map(|s| json!({
                "id": s.id,
                "kind": s.kind,
                "name": s.name,
                "trial_id": agent.slot_trials.get(&s.id),
            }))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Slot;

    #[test]
    fn slots_name_their_trials_and_a_disconnected_agent_is_lost() {
        let mut value = Agent {
            id: "gpu-a".into(),
            state: "enabled".into(),
            connected: true,
            slots: 2,
            used_slots: 1,
            trial_ids: vec![4],
            version: "0.1.0".into(),
            slot_details: ["gpu0", "gpu1"]
                .map(|id| Slot {
                    id: id.into(),
                    kind: "cuda".into(),
                    name: format!("GPU-{id}"),
                })
                .to_vec(),
            slot_trials: [("gpu1".to_string(), 4)].into(),
            ..Default::default()
        };
        let shown = agent(&value);
        assert_eq!(shown["status"], "enabled");
        assert_eq!(shown["trial_ids"], json!([4]));
        assert_eq!(shown["slot_details"][0]["trial_id"], Value::Null);
        assert_eq!(shown["slot_details"][1]["trial_id"], 4);
        assert_eq!(shown["slot_details"][1]["name"], "GPU-gpu1");
        value.connected = false;
        value.state = "draining".into();
        assert_eq!(agent(&value)["status"], "lost");
        assert_eq!(agent(&value)["state"], "draining");
    }
}
