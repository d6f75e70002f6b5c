//! `baton experiment create|list|describe|kill|delete|pause|activate`.

use baton_common::json_shapes;
use std::path::Path;

use anyhow::Context as _;
use baton_common::proto::{
    CreateExperimentRequest, Experiment, ExperimentRef, ListExperimentsRequest,
};
use serde_json::{Value, json};

use crate::args::ExperimentCmd;
use crate::client::Run;
use crate::{checkpoint, context, delete, gc, output, search, states, times, trial};

/// Runs one `baton experiment` command.
pub async fn run(cmd: ExperimentCmd, app: &Run) -> anyhow::Result<()> {
    match cmd {
        ExperimentCmd::Create {
            config,
            context_dir,
        } => create(app, &config, &context_dir).await,
        ExperimentCmd::List { state, csv } => list(app, &state, csv).await,
        ExperimentCmd::Describe { id, csv } => describe(app, id, csv).await,
        ExperimentCmd::Kill { id } => {
            let exp = app
                .connect()
                .await?
                .kill_experiment(ExperimentRef { id })
                .await?
                .into_inner();
            print_state(&exp, app.json)
        }
        ExperimentCmd::Delete { id, yes } => delete::delete(app, id, yes).await,
        ExperimentCmd::Pause { id } => {
            let exp = app
                .connect()
                .await?
                .pause_experiment(ExperimentRef { id })
                .await?
                .into_inner();
            print_state(&exp, app.json)
        }
        ExperimentCmd::Activate { id } => {
            let exp = app
                .connect()
                .await?
                .activate_experiment(ExperimentRef { id })
                .await?
                .into_inner();
            print_state(&exp, app.json)
        }
        ExperimentCmd::ListCheckpoints(args) => checkpoint::list(app, &args).await,
        ExperimentCmd::Set(crate::args::SetCmd::GcPolicy(args)) => gc::set_policy(app, &args).await,
    }
}

/// Reads the config, packs the context (both before contacting the master), and creates it.
async fn create(app: &Run, config: &Path, context_dir: &Path) -> anyhow::Result<()> {
    let config_yaml = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read experiment config {}", config.display()))?;
    let packed = context::pack(context_dir, context::CONTEXT_LIMIT_BYTES)?;
    for warning in &packed.warnings {
        eprintln!("warning: {warning}");
    }
    let request = CreateExperimentRequest {
        config_yaml,
        context: Some(packed.context),
    };
    let created = app
        .connect()
        .await?
        .create_experiment(request)
        .await?
        .into_inner();
    let id = created.id;
    for warning in &created.warnings {
        eprintln!("warning: {warning}");
    }
    if app.json {
        output::print_json(&json!({ "id": id }))?
    } else {
        output::print(&format!("Created experiment {id}"))?
    }
    Ok(())
}

/// `experiment list`, keeping the experiments in `state` (all when empty).
async fn list(app: &Run, state: &[String], csv: bool) -> anyhow::Result<()> {
    let mut experiments = app
        .connect()
        .await?
        .list_experiments(ListExperimentsRequest {})
        .await?
        .into_inner()
        .experiments;
    experiments.retain(|e| states::wanted(state, &e.state));
    experiments.sort_by_key(|e| e.id);
    if app.json {
        return Ok(output::print_json(&Value::Array(
            experiments
                .iter()
                .map(json_shapes::experiment_summary)
                .collect(),
        ))?);
    }
    if csv {
        return Ok(output::print(&list_csv(&experiments))?);
    }
    Ok(output::print(&list_table(&experiments))?)
}

/// The table of `experiment list`.
fn list_table(experiments: &[Experiment]) -> String {
    let rows = experiments.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.name.clone(),
            e.state.clone(),
            e.trial_count.to_string(),
            progress(e),
            output::dash(&e.searcher),
            times::local(e.created_ms),
        ]
    });
    output::table(
        &[
            "ID", "NAME", "STATE", "TRIALS", "PROGRESS", "SEARCHER", "CREATED",
        ],
        rows,
    )
}

/// `experiment list --csv`: raw counts and RFC 3339 times.
fn list_csv(experiments: &[Experiment]) -> String {
    let rows = experiments.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.name.clone(),
            e.state.clone(),
            e.trial_count.to_string(),
            completed(e).to_string(),
            e.steps_completed.to_string(),
            e.max_length.to_string(),
            e.searcher.clone(),
            times::rfc3339(e.created_ms),
        ]
    });
    output::csv(
        &[
            "id",
            "name",
            "state",
            "trial_count",
            "trials_completed",
            "steps_completed",
            "max_length",
            "searcher",
            "created",
        ],
        rows,
    )
}

/// Completed trials and steps trained out of all: `2/4 done, 150/240 steps`.
fn progress(exp: &Experiment) -> String {
    if exp.searcher == "adaptive_asha" {
        // Trials stopped at a rung train less than max_length: the total is not known ahead.
        return format!(
            "{}/{} done, {} steps",
            completed(exp),
            exp.trial_count,
            exp.steps_completed
        );
    }
    let steps = exp.max_length.saturating_mul(u64::from(exp.trial_count));
    format!(
        "{}/{} done, {}/{steps} steps",
        completed(exp),
        exp.trial_count,
        exp.steps_completed
    )
}

/// What its checkpoints take: `1.2 MiB held, 3.4 MiB at most; 1 pinned; collected while running`.
fn storage(exp: &Experiment) -> String {
    let mut text = format!(
        "{} held, {} at most",
        output::bytes(exp.storage_bytes),
        output::bytes(exp.storage_peak_bytes)
    );
    if exp.pinned_checkpoints > 0 {
        text.push_str(&format!("; {} pinned", exp.pinned_checkpoints));
    }
    if exp.gc_while_running {
        text.push_str("; collected while running");
    }
    text
}

/// How many of an experiment's trials completed.
fn completed(exp: &Experiment) -> u32 {
    exp.trial_states.get("COMPLETED").copied().unwrap_or(0)
}

/// `experiment describe`: fields and the trials table, or the trials as CSV.
async fn describe(app: &Run, id: u64, csv: bool) -> anyhow::Result<()> {
    let exp = app
        .connect()
        .await?
        .describe_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    if app.json {
        return Ok(output::print_json(&json_shapes::experiment(&exp))?);
    }
    if csv {
        return Ok(output::print(&trial::trials_csv(&exp.trials))?);
    }
    let mut text = output::fields(&[
        ("ID", exp.id.to_string()),
        ("Name", exp.name.clone()),
        ("State", exp.state.clone()),
        ("Searcher", output::dash(&exp.searcher)),
        ("Created", times::local(exp.created_ms)),
        ("Trials", exp.trial_count.to_string()),
        ("Progress", progress(&exp)),
        ("Storage", storage(&exp)),
    ]);
    if !exp.brackets.is_empty() {
        text.push('\n');
        text.push_str(&search::rungs_table(&exp.brackets));
    }
    if !exp.trials.is_empty() {
        text.push('\n');
        text.push_str(&trial::trials_table(&exp.trials));
        text.push_str(&trial::state_reasons(&exp.trials));
    }
    Ok(output::print(&text)?)
}

/// Prints an experiment's state after kill, pause or activate.
fn print_state(exp: &Experiment, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return Ok(output::print_json(&json_shapes::experiment(exp))?);
    }
    Ok(output::print(&format!(
        "Experiment {} is {}",
        exp.id, exp.state
    ))?)
}

/// `searcher.smaller_is_better` of an experiment config (true when absent or unreadable).
pub fn smaller_is_better(config_yaml: &str) -> bool {
    serde_norway::from_str::<serde_norway::Value>(config_yaml)
        .ok()
        .and_then(|config| config.get("searcher")?.get("smaller_is_better")?.as_bool())
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::Trial;

    #[test]
    fn describe_json_shape() {
        let exp = Experiment {
            id: 4,
            name: "mnist".into(),
            state: "ACTIVE".into(),
            trials: vec![
                Trial {
                    id: 7,
                    experiment_id: 4,
                    state: "RUNNING".into(),
                    hparams_json: r#"{"lr": 0.01, "layers": 2}"#.into(),
                    steps_completed: 120,
                    restarts: 1,
                    agent_id: "gpu-a".into(),
                    latest_checkpoint_uuid: "c1".into(),
                    ..Default::default()
                },
                Trial {
                    id: 8,
                    experiment_id: 4,
                    state: "QUEUED".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let value = json_shapes::experiment(&exp);
        assert_eq!(value["id"], 4);
        assert_eq!(value["name"], "mnist");
        assert_eq!(value["state"], "ACTIVE");
        let trials = value["trials"].as_array().unwrap();
        assert_eq!(trials[0]["hparams"], json!({"lr": 0.01, "layers": 2}));
        assert_eq!(trials[0]["steps_completed"], 120);
        assert_eq!(trials[0]["restarts"], 1);
        assert_eq!(trials[0]["agent_id"], "gpu-a");
        assert_eq!(trials[0]["latest_checkpoint"], "c1");
        assert_eq!(trials[1]["agent_id"], Value::Null);
        assert_eq!(trials[1]["hparams"], json!({}));
        assert_eq!(trials[1]["latest_checkpoint"], Value::Null);
    }

    fn grid(id: u64, state: &str, states: &[(&str, u32)], steps_completed: u64) -> Experiment {
        Experiment {
            id,
            name: "linreg-grid".into(),
            state: state.into(),
            searcher: "grid".into(),
            created_ms: 1_767_225_600_000,
            trial_count: states.iter().map(|(_, n)| n).sum(),
            trial_states: states.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            steps_completed,
            max_length: 60,
            ..Default::default()
        }
    }

    #[test]
    fn list_table_and_csv_show_counts_and_progress() {
        let list = [
            grid(1, "COMPLETED", &[("COMPLETED", 4)], 240),
            grid(2, "PAUSED", &[("COMPLETED", 1), ("PAUSED", 3)], 100),
        ];
        let text = list_table(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ID  NAME         STATE      TRIALS  PROGRESS"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("2   linreg-grid  PAUSED     4       1/4 done, 100/240 steps"),
            "{text}"
        );
        assert_eq!(
            list_csv(&list),
            "id,name,state,trial_count,trials_completed,steps_completed,max_length,searcher,created\n\
             1,linreg-grid,COMPLETED,4,4,240,60,grid,2026-01-01T00:00:00.000Z\n\
             2,linreg-grid,PAUSED,4,1,100,60,grid,2026-01-01T00:00:00.000Z\n"
        );
    }

    #[test]
    fn an_adaptive_search_shows_steps_without_a_total() {
        let mut exp = grid(3, "ACTIVE", &[("COMPLETED", 5), ("PAUSED", 4)], 180);
        exp.searcher = "adaptive_asha".into();
        exp.trial_count = 16;
        assert_eq!(progress(&exp), "5/16 done, 180 steps");
    }

    #[test]
    fn reads_smaller_is_better() {
        assert!(smaller_is_better("name: x\nsearcher:\n  metric: loss\n"));
        assert!(!smaller_is_better(
            "searcher:\n  metric: acc\n  smaller_is_better: false\n"
        ));
        assert!(smaller_is_better("searcher:\n  smaller_is_better: true\n"));
        assert!(smaller_is_better(": not yaml ["));
    }
}
