//! `baton checkpoint describe|download` and `baton experiment list-checkpoints`.

use baton_common::json_shapes;
use std::cmp::Ordering;

use baton_common::proto::{Checkpoint, CheckpointRef, ExperimentRef, ListCheckpointsRequest};
use serde_json::{Value, json};

use crate::args::{CheckpointCmd, ListCheckpointsArgs};
use crate::client::Run;
use crate::{download, experiment, output, pin, times};

/// Runs one `baton checkpoint` command.
pub async fn run(cmd: CheckpointCmd, app: &Run) -> anyhow::Result<()> {
    match cmd {
        CheckpointCmd::Describe { uuid } => {
            let request = CheckpointRef {
                uuid,
                ..Default::default()
            };
            let ckpt = app
                .connect()
                .await?
                .describe_checkpoint(request)
                .await?
                .into_inner();
            if app.json {
                return Ok(output::print_json(&json_shapes::checkpoint_described(
                    &ckpt,
                ))?);
            }
            Ok(output::print(&describe_text(&ckpt))?)
        }
        CheckpointCmd::Download(args) => download::download(app, &args).await,
        CheckpointCmd::Pin { uuid, note } => pin::pin(app, uuid, note).await,
        CheckpointCmd::Unpin { uuid } => pin::unpin(app, uuid).await,
    }
}

/// `experiment list-checkpoints`: by trial then step, or the N best by the searcher metric.
pub async fn list(app: &Run, args: &ListCheckpointsArgs) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    let request = ListCheckpointsRequest {
        experiment_id: args.id,
        all: args.all,
    };
    let mut checkpoints = admin
        .list_checkpoints(request)
        .await?
        .into_inner()
        .checkpoints;
    match args.best {
        Some(n) => {
            let exp = admin
                .describe_experiment(ExperimentRef { id: args.id })
                .await?
                .into_inner();
            sort_best(
                &mut checkpoints,
                experiment::smaller_is_better(&exp.config_yaml),
            );
            checkpoints.truncate(n);
        }
        None => checkpoints.sort_by_key(|c| (c.trial_id, c.step)),
    }
    if app.json {
        return Ok(output::print_json(&Value::Array(
            checkpoints.iter().map(json_shapes::checkpoint).collect(),
        ))?);
    }
    if args.csv {
        return Ok(output::print(&csv(&checkpoints))?);
    }
    Ok(output::print(&table(&checkpoints))?)
}

/// Checkpoints as a table (TRIAL STEP STATE METRIC SIZE PINNED UUID), as listings and GC previews
/// show them.
pub fn table(checkpoints: &[Checkpoint]) -> String {
    let rows = checkpoints.iter().map(|c| {
        vec![
            c.trial_id.to_string(),
            c.step.to_string(),
            c.state.clone(),
            output::metric(c.metric),
            output::bytes(c.size_bytes),
            if c.pinned { "yes" } else { "-" }.to_string(),
            c.uuid.clone(),
        ]
    });
    let header = ["TRIAL", "STEP", "STATE", "METRIC", "SIZE", "PINNED", "UUID"];
    output::table(&header, rows)
}

/// Sorts best first by metric; checkpoints without a metric go last, ties by trial then step.
pub fn sort_best(checkpoints: &mut [Checkpoint], smaller_is_better: bool) {
    checkpoints.sort_by(|a, b| {
        let by_metric = match (a.metric, b.metric) {
            (Some(x), Some(y)) if smaller_is_better => x.total_cmp(&y),
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_metric.then((a.trial_id, a.step).cmp(&(b.trial_id, b.step)))
    });
}

/// The human-readable `checkpoint describe`: fields, then the metadata as indented JSON.
fn describe_text(ckpt: &Checkpoint) -> String {
    let mut pairs = vec![
        ("UUID", ckpt.uuid.clone()),
        ("Experiment", ckpt.experiment_id.to_string()),
        ("Trial", ckpt.trial_id.to_string()),
        ("Step", ckpt.step.to_string()),
        ("State", ckpt.state.clone()),
        ("Metric", output::metric(ckpt.metric)),
        (
            "Size",
            format!(
                "{} ({} bytes)",
                output::bytes(ckpt.size_bytes),
                ckpt.size_bytes
            ),
        ),
        ("Created", times::local(ckpt.created_ms)),
        ("Pinned", pin_text(ckpt)),
    ];
    if let Some(framework) = framework_line(&ckpt.metadata_json) {
        pairs.push(("Framework", framework));
    }
    pairs.push((
        "Storage",
        output::compact(&output::parse_json_field(&ckpt.storage_json, Value::Null)),
    ));
    if !ckpt.error.is_empty() {
        pairs.push(("Error", ckpt.error.clone()));
    }
    let metadata = output::parse_json_field(&ckpt.metadata_json, json!({}));
    let pretty = serde_json::to_string_pretty(&metadata).expect("JSON values serialize");
    let mut text = output::fields(&pairs);
    text.push_str("Metadata:\n");
    for line in pretty.lines() {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

/// `yes (NOTE)`, `yes` or `no`.
fn pin_text(ckpt: &Checkpoint) -> String {
    match (ckpt.pinned, ckpt.pin_note.as_str()) {
        (false, _) => "no".to_string(),
        (true, "") => "yes".to_string(),
        (true, note) => format!("yes ({note})"),
    }
}

/// "torch (baton.torch/1), torch 2.15.0, python 3.11.7" from the trial's own metadata in a
/// checkpoint's manifest, when it names a framework.
fn framework_line(manifest_json: &str) -> Option<String> {
    let manifest = output::parse_json_field(manifest_json, json!({}));
    let metadata = manifest.get("metadata")?.as_object()?;
    let framework = metadata.get("framework")?.as_str()?;
    let mut line = framework.to_string();
    if let Some(format) = metadata.get("format").and_then(Value::as_str) {
        line.push_str(&format!(" ({format})"));
    }
    for (key, value) in metadata {
        if let (Some(name), Some(version)) = (key.strip_suffix("_version"), value.as_str()) {
            line.push_str(&format!(", {name} {version}"));
        }
    }
    Some(line)
}

/// Checkpoints as CSV with the header `uuid,trial_id,step,state,metric,size_bytes`.
pub fn csv(checkpoints: &[Checkpoint]) -> String {
    let rows = checkpoints.iter().map(|c| {
        vec![
            c.uuid.clone(),
            c.trial_id.to_string(),
            c.step.to_string(),
            c.state.clone(),
            output::raw_metric(c.metric),
            c.size_bytes.to_string(),
        ]
    });
    output::csv(
        &["uuid", "trial_id", "step", "state", "metric", "size_bytes"],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ckpt(uuid: &str, trial_id: u64, step: u64, metric: Option<f64>) -> Checkpoint {
        Checkpoint {
            uuid: uuid.into(),
            trial_id,
            step,
            metric,
            state: "COMPLETED".into(),
            ..Default::default()
        }
    }

    fn uuids(list: &[Checkpoint]) -> Vec<&str> {
        list.iter().map(|c| c.uuid.as_str()).collect()
    }

    fn sample() -> Vec<Checkpoint> {
        vec![
            ckpt("none-a", 1, 10, None),
            ckpt("mid", 2, 10, Some(0.5)),
            ckpt("low", 1, 20, Some(0.1)),
            ckpt("none-b", 1, 5, None),
            ckpt("high", 3, 10, Some(0.9)),
            ckpt("mid-early", 1, 30, Some(0.5)),
        ]
    }

    #[test]
    fn best_smaller_first_without_metric_last() {
        let mut list = sample();
        sort_best(&mut list, true);
        assert_eq!(
            uuids(&list),
            ["low", "mid-early", "mid", "high", "none-b", "none-a"]
        );
    }

    #[test]
    fn best_larger_first_without_metric_last() {
        let mut list = sample();
        sort_best(&mut list, false);
        assert_eq!(
            uuids(&list),
            ["high", "mid-early", "mid", "low", "none-b", "none-a"]
        );
    }

    #[test]
    fn list_json_and_csv_shapes() {
        let mut c = ckpt("u1", 2, 50, Some(0.25));
        c.size_bytes = 1024;
        let value = json_shapes::checkpoint(&c);
        for key in [
            "uuid",
            "trial_id",
            "step",
            "state",
            "metric",
            "size_bytes",
            "pinned",
            "pin_note",
        ] {
            assert!(value.get(key).is_some(), "{key} missing");
        }
        assert_eq!(value["metric"], 0.25);
        assert_eq!(
            json_shapes::checkpoint(&ckpt("u2", 1, 1, None))["metric"],
            Value::Null
        );
        let text = csv(&[c, ckpt("u2", 1, 1, None)]);
        assert_eq!(
            text,
            "uuid,trial_id,step,state,metric,size_bytes\nu1,2,50,COMPLETED,0.25,1024\nu2,1,1,COMPLETED,,0\n"
        );
    }

    #[test]
    fn the_framework_line_names_format_and_versions() {
        let manifest = r#"{"uuid":"u","metadata":{"framework":"torch","format":"baton.torch/1","python_version":"3.11.7","torch_version":"2.15.0","device":"cpu"}}"#;
        assert_eq!(
            framework_line(manifest).as_deref(),
            Some("torch (baton.torch/1), python 3.11.7, torch 2.15.0")
        );
        assert_eq!(framework_line(r#"{"metadata":{}}"#), None);
        assert_eq!(framework_line("not json"), None);
    }

    #[test]
    fn describe_text_indents_the_metadata() {
        let mut c = ckpt("u1", 2, 50, Some(0.25));
        c.size_bytes = 3 * 1024 * 1024;
        c.metadata_json = r#"{"uuid":"u1","metadata":{"framework":"torch"},"files":[{"path":"w.bin","size":3145728}]}"#.into();
        let text = describe_text(&c);
        assert!(
            text.contains("Size:       3.0 MiB (3145728 bytes)\n"),
            "{text}"
        );
        assert!(text.contains("Framework:  torch\n"), "{text}");
        assert!(
            text.ends_with(
                "Metadata:\n  {\n    \"files\": [\n      {\n        \"path\": \"w.bin\",\n        \"size\": 3145728\n      }\n    ],\n    \"metadata\": {\n      \"framework\": \"torch\"\n    },\n    \"uuid\": \"u1\"\n  }\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn describe_json_parses_metadata() {
        let mut c = ckpt("u1", 2, 50, None);
        c.metadata_json = r#"{"framework":"torch"}"#.into();
        c.storage_json = r#"{"type":"shared_fs","host_path":"/mnt"}"#.into();
        let value = json_shapes::checkpoint_described(&c);
        assert_eq!(value["metadata"], json!({"framework": "torch"}));
        assert_eq!(value["storage"]["type"], "shared_fs");
        assert_eq!(value["error"], Value::Null);
    }
}
