//! The CLI as operators use it: counts and progress in `experiment list`, `--state` filters,
//! `--csv` on every table, PAUSED trials, `trial logs --tail`, completion scripts, local times.

use std::time::Duration;

use baton_cluster_tests::{TestCluster, example_config, repo_root};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The GC preview both the CSV and the column-order checks run, for experiment `exp`.
fn gc_preview(exp: &str) -> Vec<&str> {
    vec![
        "experiment",
        "set",
        "gc-policy",
        exp,
        "--save-experiment-best",
        "1",
        "--save-trial-best",
        "0",
        "--save-trial-latest",
        "0",
        "--dry-run",
    ]
}

#[test]
fn the_cli_fits_operators_habits() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let context = repo_root().join("examples/linreg");
    let config = example_config("linreg", "grid.yaml", &cluster.storage(), &[]);
    let done = cluster.create_experiment(&config, &context);
    cluster.wait_for_experiment(done, "COMPLETED", Duration::from_secs(120));

    lists_count_trials_and_progress(&cluster, done);
    state_filters_select_and_reject(&cluster, done);
    every_table_has_csv(&cluster, done);
    logs_tail(&cluster, done);
    checkpoint_tables_and_describe(&cluster, done);

    let slow = example_config(
        "linreg",
        "grid.yaml",
        &cluster.storage(),
        &[(
            "  batch_size: 16\n",
            "  batch_size: 16\n  step_seconds: 0.2\n",
        )],
    );
    let paused = cluster.create_experiment(&slow, &context);
    a_paused_experiment_shows_paused_trials(&cluster, paused);

    let completion = cluster.cli_ok(&["completion", "bash"]);
    for word in [
        "experiment",
        "trial",
        "checkpoint",
        "agent",
        "list-checkpoints",
    ] {
        assert!(
            completion.contains(word),
            "no {word} in the bash completion"
        );
    }
}

/// `experiment list` counts every trial in the table and in JSON, and never lies with `"trials": []`.
fn lists_count_trials_and_progress(cluster: &TestCluster, id: u64) {
    let listed = cluster.json(&["experiment", "list"]);
    let exp = find(&listed, id);
    assert_eq!(exp["trial_count"], 4, "{exp:#}");
    assert_eq!(exp["trial_states"], serde_json::json!({"COMPLETED": 4}));
    assert_eq!(exp["steps_completed"], 240);
    assert_eq!(exp["max_length"], 60);
    assert!(exp.get("trials").is_none(), "{exp:#}");
    let created = exp["created"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && &created[10..11] == "T",
        "RFC 3339: {created}"
    );

    let table = cluster.cli_ok(&["experiment", "list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID  NAME         STATE      TRIALS  PROGRESS"),
        "{table}"
    );
    let row = row_of(&table, id);
    assert!(
        row.contains("COMPLETED  4       4/4 done, 240/240 steps  grid"),
        "{table}"
    );
    let zone = row.split_whitespace().last().unwrap();
    assert!(
        zone == "UTC" || (zone.len() == 6 && zone.starts_with(['+', '-'])),
        "a local time with its zone: {row}"
    );
}

/// `--state` takes any case, several states, and rejects unknown names with the allowed ones.
fn state_filters_select_and_reject(cluster: &TestCluster, id: u64) {
    let ids = |value: Value| -> Vec<u64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    assert!(ids(cluster.json(&["experiment", "list", "--state", "completed"])).contains(&id));
    assert!(ids(cluster.json(&["experiment", "list", "--state", "Active,paused"])).is_empty());
    let exp = id.to_string();
    let trials = cluster.json(&["trial", "list", &exp, "--state", "COMPLETED"]);
    assert_eq!(ids(trials).len(), 4);
    let trials = cluster.json(&[
        "trial", "list", &exp, "--state", "running", "--state", "queued",
    ]);
    assert!(ids(trials).is_empty());

    let rejected = cluster.cli(&["experiment", "list", "--state", "finished"]);
    assert_eq!(rejected.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("'finished'"), "{stderr}");
    assert!(stderr.contains("ACTIVE, PAUSED, COMPLETED"), "{stderr}");
}

/// Each table prints as CSV that parses, with a header and raw values.
fn every_table_has_csv(cluster: &TestCluster, id: u64) {
    let exp = id.to_string();
    let trial = cluster.first_trial(id).to_string();
    let gc = [&gc_preview(&exp)[..], &["--csv"]].concat();
    let tables: [(&[&str], &str, usize); 7] = [
        (&["experiment", "list", "--csv"], "trial_count", 1),
        (&["experiment", "describe", &exp, "--csv"], "hparams", 4),
        (&["trial", "list", &exp, "--csv"], "steps_completed", 4),
        (&["trial", "describe", &trial, "--csv"], "started", 1),
        (&["agent", "list", "--csv"], "last_seen", 2),
        (
            &["experiment", "list-checkpoints", &exp, "--csv"],
            "size_bytes",
            4,
        ),
        (&gc, "uuid", 3),
    ];
    for (args, column, rows) in tables {
        let text = cluster.cli_ok(args);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let at = headers
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("baton {args:?}: no {column} column in {text}"));
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert!(records.len() >= rows, "baton {args:?}: {text}");
        assert!(records.iter().all(|r| !r[at].is_empty()), "{text}");
    }
    let trials = cluster.cli_ok(&["trial", "list", &exp, "--csv"]);
    let mut reader = csv::Reader::from_reader(trials.as_bytes());
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(&record[3], "60", "raw steps: {trials}");
        let hparams: Value = serde_json::from_str(&record[7]).unwrap();
        assert!(hparams["learning_rate"].is_number(), "{trials}");
    }
    let sizes = cluster.cli_ok(&["experiment", "list-checkpoints", &exp, "--csv"]);
    let mut reader = csv::Reader::from_reader(sizes.as_bytes());
    for record in reader.records() {
        let size = &record.unwrap()[5];
        assert!(size.parse::<u64>().unwrap() > 0, "sizes in bytes: {sizes}");
    }
}

/// `trial logs --tail N` prints the last N lines, with and without `-f`.
fn logs_tail(cluster: &TestCluster, id: u64) {
    let trial = cluster.first_trial(id).to_string();
    let all = cluster.cli_ok(&["trial", "logs", &trial]);
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines.len() > 3, "{all}");
    let last_three = lines[lines.len() - 3..].join("\n") + "\n";
    assert_eq!(
        cluster.cli_ok(&["trial", "logs", &trial, "--tail", "3"]),
        last_three
    );
    assert_eq!(
        cluster.cli_ok(&["trial", "logs", &trial, "-n", "3", "-f"]),
        last_three,
        "a completed trial: the last lines, then the end"
    );
    assert_eq!(
        cluster.cli_ok(&["trial", "logs", &trial, "--tail", "0"]),
        ""
    );
}

/// The GC preview has the columns of `list-checkpoints`; `checkpoint describe` indents metadata.
fn checkpoint_tables_and_describe(cluster: &TestCluster, id: u64) {
    let exp = id.to_string();
    let listed = cluster.cli_ok(&["experiment", "list-checkpoints", &exp]);
    let preview = cluster.cli_ok(&gc_preview(&exp));
    let columns = |text: &str| -> Vec<String> {
        let header = text.lines().next().unwrap();
        header.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(columns(&preview), columns(&listed), "{preview}\n{listed}");
    assert_eq!(
        columns(&listed),
        ["TRIAL", "STEP", "STATE", "METRIC", "SIZE", "PINNED", "UUID"]
    );
    let uuid = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap();
    let described = cluster.cli_ok(&["checkpoint", "describe", uuid]);
    assert!(described.contains("\nMetadata:\n  {\n"), "{described}");
    assert!(
        described.contains(&format!("\n    \"uuid\": \"{uuid}\"")),
        "{described}"
    );
}

/// After a pause every trial shows PAUSED (not QUEUED); filters and the list agree; the error for a
/// second pause reads "an ACTIVE experiment".
fn a_paused_experiment_shows_paused_trials(cluster: &TestCluster, id: u64) {
    let exp = id.to_string();
    let trial = cluster.first_trial(id);
    cluster.wait_for_trial(trial, "training", MINUTE, |t| {
        t["state"] == "RUNNING" && t["steps_completed"].as_u64() > Some(2)
    });
    cluster.cli_ok(&["experiment", "pause", &exp]);
    baton_cluster_tests::wait_until("every trial to show PAUSED", MINUTE, || {
        let paused = cluster.json(&["trial", "list", &exp, "--state", "paused"]);
        paused.as_array().unwrap().len() == 4
    });
    let table = cluster.cli_ok(&["trial", "list", &exp]);
    assert_eq!(table.matches("PAUSED").count(), 4, "{table}");
    assert!(!table.contains("QUEUED"), "{table}");
    let listed = cluster.json(&["experiment", "list", "--state", "PAUSED"]);
    let exp_json = find(&listed, id);
    assert_eq!(exp_json["trial_states"], serde_json::json!({"PAUSED": 4}));
    let row = row_of(&cluster.cli_ok(&["experiment", "list"]), id);
    assert!(row.contains("PAUSED     4       0/4 done"), "{row}");

    let again = cluster.cli(&["experiment", "pause", &exp]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("only an ACTIVE experiment can become PAUSED"),
        "{stderr}"
    );
}

/// The experiment with `id` in `experiment list --json`.
fn find(listed: &Value, id: u64) -> Value {
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("experiment {id} not listed: {listed:#}"))
}

/// The table row whose first cell is `id`.
fn row_of(table: &str, id: u64) -> String {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("no row {id}: {table}"))
        .to_string()
}
