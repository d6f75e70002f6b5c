//! `baton agent list|disable|enable`.

use baton_common::proto::{Agent, AgentRef, DisableAgentRequest, ListAgentsRequest};
use serde_json::{Value, json};

use crate::args::AgentCmd;
use crate::client::Run;
use crate::output;

/// Runs one `baton agent` command.
pub async fn run(cmd: AgentCmd, app: &Run) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    let agent = match cmd {
        AgentCmd::List => {
            let listed = admin.list_agents(ListAgentsRequest {}).await?.into_inner();
            if !listed.warning.is_empty() {
                eprintln!("warning: {}", listed.warning);
            }
            let mut agents = listed.agents;
            agents.sort_by(|a, b| a.id.cmp(&b.id));
            if app.json {
                return Ok(output::print_json(&Value::Array(
                    agents.iter().map(agent_json).collect(),
                ))?);
            }
            return Ok(output::print(&agents_table(&agents))?);
        }
        AgentCmd::Disable { id, drain } => admin
            .disable_agent(DisableAgentRequest { id, drain })
            .await?
            .into_inner(),
        AgentCmd::Enable { id } => admin.enable_agent(AgentRef { id }).await?.into_inner(),
    };
    if app.json {
        return Ok(output::print_json(&agent_json(&agent))?);
    }
    Ok(output::print(&format!(
        "Agent {} is {}",
        agent.id, agent.state
    ))?)
}

/// The JSON shape of an agent in `agent list --json`.
pub fn agent_json(agent: &Agent) -> Value {
    json!({
        "id": agent.id,
        "state": agent.state,
        "connected": agent.connected,
        "slots": agent.slots,
        "used_slots": agent.used_slots,
        "trial_ids": agent.trial_ids,
        "last_seen_ms": agent.last_seen_ms,
        "slot_details": agent.slot_details.iter()
            .map(|s| json!({ "id": s.id, "kind": s.kind, "name": s.name }))
            .collect::<Vec<_>>(),
    })
}

/// The table of `agent list`.
fn agents_table(agents: &[Agent]) -> String {
    let rows = agents.iter().map(|a| {
        let trials = a
            .trial_ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        vec![
            a.id.clone(),
            a.state.clone(),
            if a.connected { "yes" } else { "no" }.to_string(),
            a.slots.to_string(),
            a.used_slots.to_string(),
            output::dash(&trials),
        ]
    });
    output::table(
        &["ID", "STATE", "CONNECTED", "SLOTS", "USED", "TRIALS"],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::Slot;

    #[test]
    fn list_json_and_table() {
        let agent = Agent {
            id: "gpu-a".into(),
            state: "enabled".into(),
            connected: true,
            slots: 2,
            used_slots: 1,
            trial_ids: vec![4, 9],
            slot_details: vec![Slot {
                id: "cpu0".into(),
                kind: "cpu".into(),
                name: "cpu".into(),
            }],
            ..Default::default()
        };
        let value = agent_json(&agent);
        assert_eq!(value["id"], "gpu-a");
        assert_eq!(value["state"], "enabled");
        assert_eq!(value["connected"], true);
        assert_eq!(value["slots"], 2);
        assert_eq!(value["used_slots"], 1);
        assert_eq!(value["trial_ids"], json!([4, 9]));
        let text = agents_table(&[
            agent,
            Agent {
                id: "b".into(),
                state: "disabled".into(),
                ..Default::default()
            },
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID     STATE     CONNECTED  SLOTS  USED  TRIALS");
        assert_eq!(lines[1], "gpu-a  enabled   yes        2      1     4,9");
        assert_eq!(lines[2], "b      disabled  no         0      0     -");
    }
}
