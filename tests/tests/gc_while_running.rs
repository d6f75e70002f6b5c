//! `checkpoint_storage.gc_while_running`: a long trial with frequent checkpoints holds only what
//! its policy keeps (plus what is in flight) while it runs, and ends with exactly what the same
//! experiment keeps when collected at the end only.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_cluster_tests::linreg::slow_single_in;
use baton_cluster_tests::{TestCluster, TestStorage, repo_root, wait_until};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The policy: each trial's best validated checkpoint and its latest.
const TRIAL_BEST: usize = 1;
const TRIAL_LATEST: usize = 1;

/// How long after a commit the collection (every 250 ms tick) may take to see it, with slack for
/// a loaded machine.
const UNJUDGED: Duration = Duration::from_millis(1000);

/// linreg for 200 steps of `step_seconds`, a checkpoint every 5 steps and a validation every 10,
/// keeping each trial's best and latest, in `storage`.
fn config(storage: &Path, step_seconds: &str, while_running: bool) -> String {
    let policy = format!(
        "  save_trial_best: {TRIAL_BEST}\n  save_trial_latest: {TRIAL_LATEST}\n  \
         gc_while_running: {while_running}\n"
    );
    let storage = TestStorage::SharedFs(storage.to_path_buf());
    slow_single_in(
        &storage,
        step_seconds,
        &[
            ("min_checkpoint_period: 25", "min_checkpoint_period: 5"),
            ("  save_trial_best: 1\n  save_trial_latest: 1\n", &policy),
        ],
    )
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `list-checkpoints --all --json`.
fn all_checkpoints(cluster: &TestCluster, id: u64) -> Vec<Value> {
    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    listed.as_array().expect("checkpoint list").clone()
}

fn in_state<'a>(checkpoints: &'a [Value], state: &str) -> Vec<&'a Value> {
    checkpoints.iter().filter(|c| c["state"] == state).collect()
}

/// Checkpoint directories in `root` that hold a committed checkpoint (with its metadata.json).
fn committed_dirs(root: &Path) -> usize {
    std::fs::read_dir(root).map_or(0, |entries| {
        entries
            .filter(|e| e.as_ref().unwrap().path().join("metadata.json").is_file())
            .count()
    })
}

/// Steps of the COMPLETED checkpoints, once every deletion has finished.
fn settled_steps(cluster: &TestCluster, id: u64, root: &Path) -> BTreeSet<u64> {
    wait_until("deletions to finish", MINUTE, || {
        let listed = all_checkpoints(cluster, id);
        in_state(&listed, "DELETING").is_empty() && in_state(&listed, "ERROR").is_empty()
    });
    let listed = all_checkpoints(cluster, id);
    let completed = in_state(&listed, "COMPLETED");
    assert_eq!(
        committed_dirs(root),
        completed.len(),
        "storage holds exactly the COMPLETED checkpoints"
    );
    completed
        .iter()
        .map(|c| c["step"].as_u64().unwrap())
        .collect()
}

/// One look at the running experiment.
struct Observation {
    completed: usize,
    deleting: usize,
    recent: usize,
    dirs: usize,
    held_bytes: u64,
}

#[test]
fn a_long_trial_holds_what_its_policy_keeps_and_ends_as_if_collected_at_the_end() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let context = repo_root().join("examples/linreg");
    let running_root = cluster.storage().join("while-running");
    let end_root = cluster.storage().join("at-the-end");

    // The same trial collected at the end only: its peak is every checkpoint it wrote.
    let at_end = cluster.create_experiment(&config(&end_root, "0.0", false), &context);
    cluster.wait_for_experiment(at_end, "COMPLETED", MINUTE);
    let end_steps = settled_steps(&cluster, at_end, &end_root);
    let written = all_checkpoints(&cluster, at_end);
    assert_eq!(written.len(), 40, "a checkpoint every 5 of 200 steps");
    let written_bytes: u64 = written
        .iter()
        .map(|c| c["size_bytes"].as_u64().unwrap())
        .sum();
    let described = cluster.json(&["experiment", "describe", &at_end.to_string()]);
    assert_eq!(described["gc_while_running"], false);
    assert_eq!(described["storage_peak_bytes"], written_bytes);

    // `set gc-policy` changes the setting of an existing experiment; its preview does not.
    let set = |last: &str| {
        let at_end = at_end.to_string();
        let args = [
            "experiment",
            "set",
            "gc-policy",
            &at_end,
            "--save-experiment-best",
            "0",
            "--save-trial-best",
            "1",
            "--save-trial-latest",
            "1",
            "--gc-while-running",
            "true",
            last,
        ];
        cluster.cli_ok(&args);
        cluster.json(&["experiment", "describe", &at_end])["gc_while_running"].clone()
    };
    assert_eq!(set("--dry-run"), false);
    assert_eq!(set("--yes"), true);

    let id = cluster.create_experiment(&config(&running_root, "0.1", true), &context);
    let mut observations = Vec::new();
    let started = Instant::now();
    loop {
        let looked_at = now_ms();
        let listed = all_checkpoints(&cluster, id);
        let held: Vec<&Value> = listed.iter().filter(|c| c["state"] != "DELETED").collect();
        observations.push(Observation {
            completed: in_state(&listed, "COMPLETED").len(),
            deleting: in_state(&listed, "DELETING").len(),
            recent: listed
                .iter()
                .filter(|c| {
                    c["created_ms"].as_i64().unwrap() >= looked_at - UNJUDGED.as_millis() as i64
                })
                .count(),
            dirs: committed_dirs(&running_root),
            held_bytes: held.iter().map(|c| c["size_bytes"].as_u64().unwrap()).sum(),
        });
        let state = cluster.json(&["experiment", "describe", &id.to_string()])["state"].clone();
        if state == "COMPLETED" {
            break;
        }
        assert_eq!(state, "ACTIVE", "{}", cluster.logs());
        assert!(started.elapsed() < 2 * MINUTE, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }

    // The bound: the policy keeps the trial's best validated checkpoint and its latest; on top of
    // that come the checkpoints committed in the last UNJUDGED (not collected yet), and in
    // storage those being deleted at the look plus one upload committing while we look.
    let kept = TRIAL_BEST + TRIAL_LATEST;
    assert!(
        observations.len() >= 20,
        "the trial ran long enough to watch"
    );
    for (i, seen) in observations.iter().enumerate() {
        assert!(
            seen.completed <= kept + seen.recent,
            "look {i}: {} COMPLETED checkpoints, more than {kept} kept and {} committed in the last {UNJUDGED:?}",
            seen.completed,
            seen.recent
        );
        assert!(
            seen.dirs <= kept + seen.recent + seen.deleting + 1,
            "look {i}: {} checkpoint directories in storage, more than {kept} kept, {} recent, {} being deleted and one committing",
            seen.dirs,
            seen.recent,
            seen.deleting
        );
    }
    let most_held = observations.iter().map(|o| o.completed).max().unwrap();
    assert!(
        most_held < 10,
        "at most {most_held} checkpoints held at once, of 40"
    );

    // The end is exactly the end of the experiment collected at the end only.
    let steps = settled_steps(&cluster, id, &running_root);
    assert_eq!(steps, end_steps, "kept steps");
    assert!((1..=kept).contains(&steps.len()), "{steps:?}");

    // What it held at most is what was seen at most, and far below all it wrote.
    let described = cluster.json(&["experiment", "describe", &id.to_string()]);
    assert_eq!(described["gc_while_running"], true);
    let peak = described["storage_peak_bytes"].as_u64().unwrap();
    let seen_peak = observations.iter().map(|o| o.held_bytes).max().unwrap();
    let largest = all_checkpoints(&cluster, id)
        .iter()
        .map(|c| c["size_bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        peak >= seen_peak,
        "peak {peak} below the {seen_peak} bytes seen held"
    );
    let most = |of: fn(&Observation) -> usize| observations.iter().map(of).max().unwrap();
    let most_at_once = (kept + most(|o| o.recent) + most(|o| o.deleting) + 1) as u64;
    assert!(
        peak <= most_at_once * largest,
        "peak {peak} above {most_at_once} checkpoints of at most {largest} bytes"
    );
    assert!(
        peak < written_bytes / 4,
        "peak {peak} of {written_bytes} written"
    );
    let held_now: u64 = all_checkpoints(&cluster, id)
        .iter()
        .filter(|c| c["state"] == "COMPLETED")
        .map(|c| c["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(described["storage_bytes"], held_now);
}
