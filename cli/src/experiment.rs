//! `baton experiment create|list|describe|kill|delete|pause|activate`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;
use baton_common::proto::{
    CreateExperimentRequest, Experiment, ExperimentRef, ListCheckpointsRequest,
    ListExperimentsRequest,
};
use serde_json::{Value, json};

use crate::args::ExperimentCmd;
use crate::client::Admin;
use crate::client::Run;
use crate::output;
use crate::{checkpoint, context, gc, trial};

/// Runs one `baton experiment` command.
pub async fn run(cmd: ExperimentCmd, app: &Run) -> anyhow::Result<()> {
    match cmd {
        ExperimentCmd::Create {
            config,
            context_dir,
        } => create(app, &config, &context_dir).await,
        ExperimentCmd::List => list(&mut app.connect().await?, app.json).await,
        ExperimentCmd::Describe { id } => describe(&mut app.connect().await?, id, app.json).await,
        ExperimentCmd::Kill { id } => {
            let exp = app
                .connect()
                .await?
                .kill_experiment(ExperimentRef { id })
                .await?
                .into_inner();
            print_state(&exp, app.json)
        }
        ExperimentCmd::Delete { id, yes } => delete(app, id, yes).await,
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

/// `experiment list`.
async fn list(admin: &mut Admin, as_json: bool) -> anyhow::Result<()> {
    let mut experiments = admin
        .list_experiments(ListExperimentsRequest {})
        .await?
        .into_inner()
        .experiments;
    experiments.sort_by_key(|e| e.id);
    if as_json {
        return Ok(output::print_json(&Value::Array(
            experiments.iter().map(experiment_json).collect(),
        ))?);
    }
    let rows = experiments.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.name.clone(),
            e.state.clone(),
            e.trials.len().to_string(),
            output::dash(&e.searcher),
            output::time(e.created_ms),
        ]
    });
    Ok(output::print(&output::table(
        &["ID", "NAME", "STATE", "TRIALS", "SEARCHER", "CREATED"],
        rows,
    ))?)
}

/// `experiment describe`.
async fn describe(admin: &mut Admin, id: u64, as_json: bool) -> anyhow::Result<()> {
    let exp = admin
        .describe_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    if as_json {
        return Ok(output::print_json(&experiment_json(&exp))?);
    }
    let mut text = output::fields(&[
        ("ID", exp.id.to_string()),
        ("Name", exp.name.clone()),
        ("State", exp.state.clone()),
        ("Searcher", output::dash(&exp.searcher)),
        ("Created", output::time(exp.created_ms)),
        ("Trials", exp.trials.len().to_string()),
    ]);
    if !exp.trials.is_empty() {
        text.push('\n');
        text.push_str(&trial::trials_table(&exp.trials));
        text.push_str(&trial::state_reasons(&exp.trials));
    }
    Ok(output::print(&text)?)
}

/// Prints an experiment's state after kill, pause or activate.
/// `experiment delete`: says what goes, asks unless `yes`, then has the master delete it.
async fn delete(app: &Run, id: u64, yes: bool) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    let exp = admin
        .describe_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    let checkpoints = admin
        .list_checkpoints(ListCheckpointsRequest {
            experiment_id: id,
            all: false,
        })
        .await?
        .into_inner()
        .checkpoints;
    let size: u64 = checkpoints.iter().map(|c| c.size_bytes).sum();
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            anyhow::bail!("refusing to delete experiment {id} without confirmation: pass --yes");
        }
        let prompt = format!(
            "Delete experiment {id} ({}), its {} trials and {} checkpoints ({})? [y/N] ",
            exp.name,
            exp.trials.len(),
            checkpoints.len(),
            output::mib(size)
        );
        if !gc::confirm(&mut stdin.lock(), &mut std::io::stderr(), &prompt)? {
            anyhow::bail!("aborted: experiment {id} is not deleted");
        }
    }
    let exp = admin
        .delete_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    if app.json {
        return Ok(output::print_json(&experiment_json(&exp))?);
    }
    Ok(output::print(&format!(
        "Deleting experiment {id}: {} checkpoints ({}) from storage, then its records",
        checkpoints.len(),
        output::mib(size)
    ))?)
}

fn print_state(exp: &Experiment, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return Ok(output::print_json(&experiment_json(exp))?);
    }
    Ok(output::print(&format!(
        "Experiment {} is {}",
        exp.id, exp.state
    ))?)
}

/// The JSON shape of an experiment, as `experiment describe --json` prints it.
pub fn experiment_json(exp: &Experiment) -> Value {
    json!({
        "id": exp.id,
        "name": exp.name,
        "state": exp.state,
        "searcher": exp.searcher,
        "created_ms": exp.created_ms,
        "trials": exp.trials.iter().map(trial::trial_json).collect::<Vec<_>>(),
    })
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
        let value = experiment_json(&exp);
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
