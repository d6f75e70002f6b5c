//! `baton trial list|describe|logs|move`.

use baton_common::json_shapes;
use std::io::Write;

use baton_common::proto::{
    ExperimentRef, MoveTrialRequest, Trial, TrialDetail, TrialLogsRequest, TrialRef,
};
use serde_json::{Value, json};

use crate::args::TrialCmd;
use crate::client::Run;
use crate::{allocations, output, states, times};

/// Runs one `baton trial` command.
pub async fn run(cmd: TrialCmd, app: &Run) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    match cmd {
        TrialCmd::List {
            experiment_id,
            state,
            csv,
        } => {
            let mut trials = admin
                .list_trials(ExperimentRef { id: experiment_id })
                .await?
                .into_inner()
                .trials;
            trials.retain(|t| states::wanted(&state, &t.state));
            trials.sort_by_key(|t| t.id);
            if app.json {
                output::print_json(&Value::Array(
                    trials.iter().map(json_shapes::trial).collect(),
                ))?;
            } else if csv {
                output::print(&trials_csv(&trials))?;
            } else {
                output::print(&trials_table(&trials))?;
            }
        }
        TrialCmd::Describe { id, csv } => {
            let detail = admin.describe_trial(TrialRef { id }).await?.into_inner();
            if app.json {
                output::print_json(&json_shapes::trial_detail(&detail))?;
            } else if csv {
                output::print(&allocations::csv(&detail.allocations))?;
            } else {
                output::print(&detail_text(&detail, times::now_ms()))?;
            }
        }
        TrialCmd::Logs { id, follow, tail } => {
            let mut stream = admin
                .trial_logs(TrialLogsRequest {
                    trial_id: id,
                    follow,
                    tail,
                })
                .await?
                .into_inner();
            let mut out = std::io::stdout();
            while let Some(line) = stream.message().await? {
                if app.json {
                    writeln!(out, "{}", json_shapes::log_line(&line))?;
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
                output::print_json(&json_shapes::trial_detail(&detail))?;
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

/// Trials as CSV, hyperparameters as one JSON cell.
pub fn trials_csv(trials: &[Trial]) -> String {
    let rows = trials.iter().map(|t| {
        vec![
            t.id.to_string(),
            t.experiment_id.to_string(),
            t.state.clone(),
            t.steps_completed.to_string(),
            t.restarts.to_string(),
            t.agent_id.clone(),
            t.latest_checkpoint_uuid.clone(),
            output::parse_json_field(&t.hparams_json, json!({})).to_string(),
        ]
    });
    output::csv(
        &[
            "id",
            "experiment_id",
            "state",
            "steps_completed",
            "restarts",
            "agent_id",
            "latest_checkpoint",
            "hparams",
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

/// Steps trained, and of how many when the master says: `12 of 16`.
fn steps(trial: &Trial) -> String {
    match trial.target_length {
        0 => trial.steps_completed.to_string(),
        target => format!("{} of {target}", trial.steps_completed),
    }
}

/// The human-readable `trial describe` at `now_ms`: fields, then the allocation table.
fn detail_text(detail: &TrialDetail, now_ms: i64) -> String {
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
        ("Steps", steps(&trial)),
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
        text.push('\n');
        text.push_str(&allocations::table(&detail.allocations, now_ms));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::{Allocation, Validation};

    /// 2026-01-01 00:00:00 UTC.
    const NEW_YEAR_MS: i64 = 1_767_225_600_000;

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
                    started_ms: NEW_YEAR_MS,
                    ended_ms: NEW_YEAR_MS + 192_000,
                    ..Default::default()
                },
                Allocation {
                    id: "a-2".into(),
                    agent_id: "b".into(),
                    start_step: 30,
                    end_step: 40,
                    started_ms: NEW_YEAR_MS + 200_000,
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
        let value = json_shapes::trial_detail(&detail());
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
        assert_eq!(allocs[0]["started"], "2026-01-01T00:00:00.000Z");
        assert_eq!(allocs[0]["ended"], "2026-01-01T00:03:12.000Z");
        assert_eq!(allocs[1]["ended"], Value::Null);
        assert_eq!(
            value["latest_validation"],
            json!({"step": 30, "metrics": {"loss": 0.1}})
        );
    }

    #[test]
    fn describe_json_without_validation_is_null() {
        let mut d = detail();
        d.latest_validation = None;
        assert_eq!(
            json_shapes::trial_detail(&d)["latest_validation"],
            Value::Null
        );
    }

    #[test]
    fn describe_text_lists_allocations() {
        let text = detail_text(&detail(), NEW_YEAR_MS + 3_800_000);
        assert!(text.contains("Steps:      40\n"), "{text}");
        assert!(
            text.contains("ALLOCATION  AGENT  START  END  STARTED"),
            "{text}"
        );
        let words = |line: &str| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let lines: Vec<&str> = text.lines().collect();
        let ended = words(lines[lines.len() - 2]);
        assert_eq!(ended[..4], ["a-1", "a", "0", "30"], "{text}");
        assert_eq!(ended[7..], ["3m", "12s", "suspended-by-disable"], "{text}");
        let running = words(lines[lines.len() - 1]);
        assert_eq!(running[..4], ["a-2", "b", "30", "40"], "{text}");
        assert_eq!(running[7..], ["1h", "running"], "{text}");
    }

    #[test]
    fn trials_as_csv_keep_raw_values() {
        let trials = [
            detail().trial.unwrap(),
            Trial {
                id: 4,
                experiment_id: 1,
                state: "PAUSED".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            trials_csv(&trials),
            "id,experiment_id,state,steps_completed,restarts,agent_id,latest_checkpoint,hparams\n\
             3,1,RUNNING,40,0,b,,\"{\"\"lr\"\":0.5}\"\n\
             4,1,PAUSED,0,0,,,{}\n"
        );
    }
}
