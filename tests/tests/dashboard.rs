//! The web dashboard in a real browser (Debian's Chromium driven by Playwright, see
//! tests/browser/dashboard.mjs) on a real cluster: the linreg grid runs on three agents, one trial
//! is moved mid-run, and the pages are checked against the CLI. Screenshots of the main pages are
//! left under `target/test-output/dashboard/` and `target/test-output/dashboard-live/`.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_cluster_tests::browser::BrowserScript;
use baton_cluster_tests::http::{VIEWER_TOKEN, start_with_tokens};
use baton_cluster_tests::linreg::running_on_other_agent;
use baton_cluster_tests::{TestStorage, repo_root};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

/// The steps of a trial's validations.
fn validation_steps(trial: &Value) -> Vec<u64> {
    let validations = trial["validations"].as_array().expect("validations");
    validations
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

/// Fails unless the screenshot `name` exists and holds an image.
fn assert_screenshot(dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("{name}.png"));
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    assert!(size > 10_000, "{} holds {size} bytes", path.display());
}

#[test]
fn the_dashboard_shows_the_grid_its_moved_trial_curves_checkpoints_and_live_steps() {
    let (cluster, _auth_dir, api) = start_with_tokens(&[("a1", 2), ("a2", 2), ("a3", 2)]);
    let browser = |phase: &str, expected: Value| BrowserScript {
        script: "dashboard.mjs".into(),
        base_url: format!("http://{api}"),
        token: Some(VIEWER_TOKEN.into()),
        expected: json!({ "phase": phase })
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .chain(expected.as_object().unwrap().clone())
            .collect(),
    };

    let slow = "  batch_size: 16\n  step_seconds: 0.3\n";
    let config = TestStorage::SharedFs(cluster.storage()).config(
        "linreg",
        "grid.yaml",
        &[("  batch_size: 16\n", slow)],
    );
    let experiment = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let trial = cluster.first_trial(experiment);
    let running = cluster.wait_for_trial(trial, "steps", MINUTE, |t| {
        t["state"] == "RUNNING" && t["steps_completed"].as_u64() > Some(3)
    });

    let live = browser(
        "live",
        json!({ "experiment_id": experiment, "trial_id": trial }),
    )
    .run("dashboard-live");
    assert_screenshot(&live.dir, "experiment-running");
    assert_screenshot(&live.dir, "trial-running");

    let from_agent = running["agent_id"].as_str().unwrap().to_string();
    cluster.cli_ok(&["trial", "move", &trial.to_string()]);
    cluster.wait_for_trial(trial, "resumed elsewhere", MINUTE, |t| {
        running_on_other_agent(t, &from_agent, 0)
    });
    let done = cluster.wait_for_experiment(experiment, "COMPLETED", Duration::from_secs(120));

    let moved = cluster.trial(trial);
    let allocations = moved["allocations"].as_array().unwrap();
    assert_eq!(allocations[0]["exit_reason"], "moved", "{moved:#}");
    assert_ne!(allocations[1]["agent_id"], allocations[0]["agent_id"]);
    let mut trials: Vec<Value> = done["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({ "id": t["id"], "state": t["state"] }))
        .collect();
    trials.sort_by_key(|t| t["id"].as_u64());
    let steps: BTreeMap<String, Vec<u64>> = trials
        .iter()
        .map(|t| {
            let id = t["id"].as_u64().unwrap();
            (id.to_string(), validation_steps(&cluster.trial(id)))
        })
        .collect();
    let checkpoints: Vec<Value> = cluster
        .json(&["experiment", "list-checkpoints", &experiment.to_string()])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({
                "uuid": c["uuid"], "trial_id": c["trial_id"], "step": c["step"],
                "state": c["state"], "size_bytes": c["size_bytes"],
            })
        })
        .collect();
    assert!(!checkpoints.is_empty());

    let final_pages = browser(
        "final",
        json!({
            "experiment_id": experiment,
            "trials": trials,
            "max_length": 60,
            "validation_steps": steps,
            "checkpoints": checkpoints,
            "moved": {
                "trial_id": trial,
                "step": allocations[0]["end_step"],
                "from_agent": allocations[0]["agent_id"],
                "to_agent": allocations[1]["agent_id"],
                "from_allocation": allocations[0]["id"],
                "to_allocation": allocations[1]["id"],
            },
            "agents": [["a1", "enabled"], ["a2", "enabled"], ["a3", "enabled"]],
        }),
    )
    .run("dashboard");
    assert!(
        final_pages.stdout.contains(r#"{"checked":"final"}"#),
        "{}",
        final_pages.stdout
    );
    for page in ["experiments", "experiment", "trial", "agents"] {
        assert_screenshot(&final_pages.dir, page);
    }
}
