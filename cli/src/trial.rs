//! `baton trial list|describe|logs|move`.

use std::io::Write;

use baton_common::proto::{
    Allocation, ExperimentRef, MoveTrialRequest, Trial, TrialDetail, TrialLogsRequest, TrialRef,
    Validation,
};
use serde_json::{Value, json};

use crate::args::TrialCmd;
use crate::client::Run;
use crate::output;

/// Runs one `baton trial` command.
pub async fn run(cmd: TrialCmd, app: &Run) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    match cmd {
        TrialCmd::List { experiment_id } => {
            let mut trials = admin
                .list_trials(ExperimentRef { id: experiment_id })
                .await?
                .into_inner()
                .trials;
            trials.sort_by_key(|t| t.id);
            if app.json {
                output::print_json(&Value::Array(trials.iter().map(trial_json).collect()))?;
            } else {
                output::print(&trials_table(&trials))?;
            }
        }
        TrialCmd::Describe { id } => {
            let detail = admin.describe_trial(TrialRef { id }).await?.into_inner();
            if app.json {
                output::print_json(&detail_json(&detail))?;
            } else {
                output::print(&detail_text(&detail))?;
            }
        }
        TrialCmd::Logs { id, follow } => {
            let mut stream = admin
                .trial_logs(TrialLogsRequest {
                    trial_id: id,
                    follow,
                })
                .await?
                .into_inner();
            let mut out = std::io::stdout();
            while let Some(line) = stream.message().await? {
                if app.json {
                    let value = json!({
                        "id": line.id, "allocation_id": line.allocation_id, "stream": line.stream,
                        "text": line.text, "timestamp_ms": line.timestamp_ms,
                    });
                    writeln!(out, "{value}")?;
                } else if line.text.ends_with('\n') {
                    write!(out, "{}", line.text)?;
                } else {
                    writeln!(out, "{}", line.text)?;
                }
                out.flush()?;
            }
        }
        TrialCmd::Move { id, to } => {
            let to_agent = to.unwrap_or_default();
            let request = MoveTrialRequest {
                trial_id: id,
                to_agent: to_agent.clone(),
            };
            let detail = admin.move_trial(request).await?.into_inner();
            if app.json {
                output::print_json(&detail_json(&detail))?;
            } else if to_agent.is_empty() {
                output::print(&format!(
                    "Moving trial {id} (the scheduler picks the agent)"
                ))?;
            } else {
                output::print(&format!("Moving trial {id} to agent {to_agent}"))?;
            }
        }
    }
    Ok(())
}

/// The JSON shape of a trial inside `experiment describe --json` and `trial list --json`.
pub fn trial_json(trial: &Trial) -> Value {
    json!({
        "id": trial.id,
        "experiment_id": trial.experiment_id,
        "state": trial.state,
        "hparams": output::parse_json_field(&trial.hparams_json, json!({})),
        "steps_completed": trial.steps_completed,
        "restarts": trial.restarts,
        "agent_id": output::non_empty(&trial.agent_id),
        "latest_checkpoint": output::non_empty(&trial.latest_checkpoint_uuid),
        "error": output::non_empty(&trial.error),
        "state_reason": output::non_empty(&trial.state_reason),
    })
}

/// The JSON shape of `trial describe --json`: the trial, its allocations and validations.
pub fn detail_json(detail: &TrialDetail) -> Value {
    let mut value = detail.trial.as_ref().map_or_else(|| json!({}), trial_json);
    value["allocations"] = detail.allocations.iter().map(allocation_json).collect();
    value["latest_validation"] = detail
        .latest_validation
        .as_ref()
        .map_or(Value::Null, validation_json);
    value["validations"] = detail.validations.iter().map(validation_json).collect();
    value
}

/// One allocation as JSON.
fn allocation_json(alloc: &Allocation) -> Value {
    json!({
        "id": alloc.id,
        "agent_id": alloc.agent_id,
        "start_step": alloc.start_step,
        "end_step": alloc.end_step,
        "exit_reason": output::non_empty(&alloc.exit_reason),
        "started_ms": alloc.started_ms,
        "ended_ms": alloc.ended_ms,
        "message": output::non_empty(&alloc.message),
    })
}

/// One validation as JSON, with its metrics parsed.
fn validation_json(validation: &Validation) -> Value {
    json!({
        "step": validation.step,
        "metrics": output::parse_json_field(&validation.metrics_json, json!({})),
    })
}

/// The table of trials shown by `trial list` and `experiment describe`.
pub fn trials_table(trials: &[Trial]) -> String {
    let rows = trials.iter().map(|t| {
        vec![
            t.id.to_string(),
            t.state.clone(),
            t.steps_completed.to_string(),
            t.restarts.to_string(),
            output::dash(&t.agent_id),
            output::dash(&t.latest_checkpoint_uuid),
            output::compact(&output::parse_json_field(&t.hparams_json, Value::Null)),
        ]
    });
    output::table(
        &[
            "TRIAL",
            "STATE",
            "STEPS",
            "RESTARTS",
            "AGENT",
            "CHECKPOINT",
            "HPARAMS",
        ],
        rows,
    )
}

/// One line per trial whose state needs explaining ("" when none does).
pub fn state_reasons(trials: &[Trial]) -> String {
    trials
        .iter()
        .filter(|t| !t.state_reason.is_empty())
        .map(|t| format!("\nTrial {} ({}): {}", t.id, t.state, t.state_reason))
        .collect()
}

/// The human-readable `trial describe`: fields, then the allocation table.
fn detail_text(detail: &TrialDetail) -> String {
    let trial = detail.trial.clone().unwrap_or_default();
    let validation = detail.latest_validation.as_ref().map_or_else(
        || "-".to_string(),
        |v| {
            format!(
                "step {}: {}",
                v.step,
                output::compact(&output::parse_json_field(&v.metrics_json, Value::Null))
            )
        },
    );
    let mut pairs = vec![
        ("ID", trial.id.to_string()),
        ("Experiment", trial.experiment_id.to_string()),
        ("State", trial.state.clone()),
    ];
    if !trial.state_reason.is_empty() {
        pairs.push(("Why", trial.state_reason.clone()));
    }
    pairs.extend([
        (
            "Hparams",
            output::compact(&output::parse_json_field(&trial.hparams_json, Value::Null)),
        ),
        ("Steps", trial.steps_completed.to_string()),
        ("Restarts", trial.restarts.to_string()),
        ("Agent", output::dash(&trial.agent_id)),
        ("Checkpoint", output::dash(&trial.latest_checkpoint_uuid)),
        ("Validation", validation),
    ]);
    if !trial.error.is_empty() {
        pairs.push(("Error", trial.error.clone()));
    }
    let mut text = output::fields(&pairs);
    if !detail.allocations.is_empty() {
        let rows = detail.allocations.iter().map(|a| {
            vec![
                a.id.clone(),
                output::dash(&a.agent_id),
                a.start_step.to_string(),
                a.end_step.to_string(),
                if a.exit_reason.is_empty() {
                    "running".to_string()
                } else {
                    a.exit_reason.clone()
                },
            ]
        });
        text.push('\n');
        text.push_str(&output::table(
            &["ALLOCATION", "AGENT", "START", "END", "REASON"],
            rows,
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail() -> TrialDetail {
        TrialDetail {
            trial: Some(Trial {
                id: 3,
                experiment_id: 1,
                state: "RUNNING".into(),
                hparams_json: r#"{"lr":0.5}"#.into(),
                steps_completed: 40,
                agent_id: "b".into(),
                ..Default::default()
            }),
            allocations: vec![
                Allocation {
                    id: "a-1".into(),
                    agent_id: "a".into(),
                    start_step: 0,
                    end_step: 30,
                    exit_reason: "suspended-by-disable".into(),
                    ..Default::default()
                },
                Allocation {
                    id: "a-2".into(),
                    agent_id: "b".into(),
                    start_step: 30,
                    end_step: 40,
                    ..Default::default()
                },
            ],
            latest_validation: Some(Validation {
                step: 30,
                metrics_json: r#"{"loss":0.1}"#.into(),
            }),
            validations: vec![],
        }
    }

    #[test]
    fn describe_json_shape() {
        let value = detail_json(&detail());
        assert_eq!(value["id"], 3);
        assert_eq!(value["state"], "RUNNING");
        assert_eq!(value["hparams"], json!({"lr": 0.5}));
        assert_eq!(value["agent_id"], "b");
        assert_eq!(value["latest_checkpoint"], Value::Null);
        let allocs = value["allocations"].as_array().unwrap();
        assert_eq!(allocs.len(), 2);
        assert_eq!(allocs[0]["exit_reason"], "suspended-by-disable");
        assert_eq!(allocs[0]["end_step"], 30);
        assert_eq!(allocs[1]["exit_reason"], Value::Null);
        assert_eq!(allocs[1]["agent_id"], "b");
        assert_eq!(
            value["latest_validation"],
            json!({"step": 30, "metrics": {"loss": 0.1}})
        );
    }

    #[test]
    fn describe_json_without_validation_is_null() {
        let mut d = detail();
        d.latest_validation = None;
        assert_eq!(detail_json(&d)["latest_validation"], Value::Null);
    }

    #[test]
    fn describe_text_lists_allocations() {
        let text = detail_text(&detail());
        assert!(
            text.contains("ALLOCATION  AGENT  START  END  REASON"),
            "{text}"
        );
        assert!(
            text.contains("a-2         b      30     40   running"),
            "{text}"
        );
    }
}
