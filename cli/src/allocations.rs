//! The allocations of a trial: where and when each ran, and why it ended.

use baton_common::proto::Allocation;

use crate::{output, times};

/// The agents an allocation runs on: its agent, or every part's agent, the chief's first.
pub fn agents(alloc: &Allocation) -> String {
    if alloc.parts.is_empty() {
        alloc.agent_id.clone()
    } else {
        let agents: Vec<&str> = alloc.parts.iter().map(|p| p.agent_id.as_str()).collect();
        agents.join("+")
    }
}

/// The allocations of `trial describe`: steps, when each started, how long it ran, why it ended.
pub fn table(allocations: &[Allocation], now_ms: i64) -> String {
    let rows = allocations.iter().map(|a| {
        let end = if a.ended_ms > 0 { a.ended_ms } else { now_ms };
        vec![
            a.id.clone(),
            output::dash(&agents(a)),
            a.start_step.to_string(),
            a.end_step.to_string(),
            times::local(a.started_ms),
            if a.started_ms > 0 {
                times::duration(end - a.started_ms)
            } else {
                "-".to_string()
            },
            if a.exit_reason.is_empty() {
                "running".to_string()
            } else {
                a.exit_reason.clone()
            },
        ]
    });
    output::table(
        &[
            "ALLOCATION",
            "AGENT",
            "START",
            "END",
            "STARTED",
            "DURATION",
            "REASON",
        ],
        rows,
    )
}

/// The allocations of `trial describe --csv`: raw steps, RFC 3339 times.
pub fn csv(allocations: &[Allocation]) -> String {
    let rows = allocations.iter().map(|a| {
        vec![
            a.id.clone(),
            agents(a),
            a.start_step.to_string(),
            a.end_step.to_string(),
            times::rfc3339(a.started_ms),
            times::rfc3339(a.ended_ms),
            a.exit_reason.clone(),
            a.message.clone(),
        ]
    });
    output::csv(
        &[
            "id",
            "agent_id",
            "start_step",
            "end_step",
            "started",
            "ended",
            "exit_reason",
            "message",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::AllocationPart;

    #[test]
    fn csv_has_raw_steps_and_rfc3339_times() {
        let allocations = [
            Allocation {
                id: "a-1".into(),
                agent_id: "gpu-1".into(),
                start_step: 0,
                end_step: 30,
                exit_reason: "moved".into(),
                started_ms: 1_767_225_600_000,
                ended_ms: 1_767_225_792_500,
                message: "to gpu-2, by alice".into(),
                parts: Vec::new(),
            },
            Allocation {
                id: "a-2".into(),
                agent_id: "gpu-2".into(),
                start_step: 30,
                end_step: 31,
                parts: ["gpu-2", "gpu-3"]
                    .map(|agent_id| AllocationPart {
                        agent_id: agent_id.into(),
                        ..Default::default()
                    })
                    .to_vec(),
                ..Default::default()
            },
        ];
        assert_eq!(
            csv(&allocations),
            "id,agent_id,start_step,end_step,started,ended,exit_reason,message\n\
             a-1,gpu-1,0,30,2026-01-01T00:00:00.000Z,2026-01-01T00:03:12.500Z,moved,\"to gpu-2, by alice\"\n\
             a-2,gpu-2+gpu-3,30,31,,,,\n"
        );
        assert_eq!(
            baton_common::json_shapes::allocation(&allocations[1])["parts"][1]["agent_id"],
            "gpu-3"
        );
    }

    #[test]
    fn an_allocation_not_started_has_no_duration() {
        let text = table(&[Allocation::default()], 1_767_225_600_000);
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, ["-", "0", "0", "-", "-", "running"], "{text}");
    }
}
