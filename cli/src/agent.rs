//! `baton agent list|disable|enable`.

use baton_common::json_shapes;
use baton_common::proto::{Agent, AgentRef, DisableAgentRequest, ListAgentsRequest};
use serde_json::Value;

use crate::args::AgentCmd;
use crate::client::Run;
use crate::{output, times};

/// Runs one `baton agent` command.
pub async fn run(cmd: AgentCmd, app: &Run) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    let agent = match cmd {
        AgentCmd::List { csv } => {
            let listed = admin.list_agents(ListAgentsRequest {}).await?.into_inner();
            if !listed.warning.is_empty() {
                eprintln!("warning: {}", listed.warning);
            }
            let mut agents = listed.agents;
            agents.sort_by(|a, b| a.id.cmp(&b.id));
            if app.json {
                return Ok(output::print_json(&Value::Array(
                    agents.iter().map(json_shapes::agent).collect(),
                ))?);
            }
            if csv {
                return Ok(output::print(&agents_csv(&agents))?);
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
        return Ok(output::print_json(&json_shapes::agent(&agent))?);
    }
    Ok(output::print(&format!(
        "Agent {} is {}",
        agent.id, agent.state
    ))?)
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
            output::dash(&a.version),
        ]
    });
    output::table(
        &[
            "ID",
            "STATE",
            "CONNECTED",
            "SLOTS",
            "USED",
            "TRIALS",
            "VERSION",
        ],
        rows,
    )
}

/// `agent list --csv`: trial ids separated by spaces, the last heartbeat in RFC 3339.
fn agents_csv(agents: &[Agent]) -> String {
    let rows = agents.iter().map(|a| {
        let trials: Vec<String> = a.trial_ids.iter().map(u64::to_string).collect();
        vec![
            a.id.clone(),
            a.state.clone(),
            a.connected.to_string(),
            a.slots.to_string(),
            a.used_slots.to_string(),
            trials.join(" "),
            times::rfc3339(a.last_seen_ms),
            a.version.clone(),
        ]
    });
    output::csv(
        &[
            "id",
            "state",
            "connected",
            "slots",
            "used_slots",
            "trial_ids",
            "last_seen",
            "version",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::Slot;
    use serde_json::json;

    #[test]
    fn list_json_and_table() {
        let agent = Agent {
            id: "gpu-a".into(),
            state: "enabled".into(),
            connected: true,
            slots: 2,
            used_slots: 1,
            trial_ids: vec![4, 9],
            version: "0.1.0".into(),
            slot_details: vec![Slot {
                id: "cpu0".into(),
                kind: "cpu".into(),
                name: "cpu".into(),
            }],
            ..Default::default()
        };
        let value = json_shapes::agent(&agent);
        assert_eq!(value["id"], "gpu-a");
        assert_eq!(value["state"], "enabled");
        assert_eq!(value["connected"], true);
        assert_eq!(value["slots"], 2);
        assert_eq!(value["used_slots"], 1);
        assert_eq!(value["trial_ids"], json!([4, 9]));
        assert_eq!(value["version"], "0.1.0");
        let text = agents_table(&[
            agent,
            Agent {
                id: "b".into(),
                state: "disabled".into(),
                ..Default::default()
            },
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID     STATE     CONNECTED  SLOTS  USED  TRIALS  VERSION"
        );
        assert_eq!(
            lines[1],
            "gpu-a  enabled   yes        2      1     4,9     0.1.0"
        );
        assert_eq!(
            lines[2],
            "b      disabled  no         0      0     -       -"
        );
    }

    #[test]
    fn list_csv_has_raw_values() {
        let agent = Agent {
            id: "gpu-a".into(),
            state: "enabled".into(),
            connected: true,
            slots: 2,
            used_slots: 1,
            trial_ids: vec![4, 9],
            last_seen_ms: 1_767_225_600_000,
            version: "0.1.0".into(),
            ..Default::default()
        };
        assert_eq!(
            agents_csv(&[agent]),
            "id,state,connected,slots,used_slots,trial_ids,last_seen,version\n\
             gpu-a,enabled,true,2,1,4 9,2026-01-01T00:00:00.000Z,0.1.0\n"
        );
    }
}
