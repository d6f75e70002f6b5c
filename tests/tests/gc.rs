//! Checkpoint garbage collection on a real cluster: every row of the DESIGN §6 table, deletion from
//! storage, a master killed mid-deletion, and the sweep of incomplete uploads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use baton_cluster_tests::{
    TestCluster, example_config, repo_root, verify_stored_checkpoint, wait_until,
};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The DESIGN §6 table: (save_experiment_best, save_trial_best, save_trial_latest, kept); the
/// `>= 5` and `>= 3` rows are checked with two values each.
const TABLE: &[(u64, u64, u64, &[u32])] = &[
    (0, 0, 0, &[]),
    (2, 0, 0, &[8, 7]),
    (5, 0, 0, &[8, 7, 5, 4, 3]),
    (7, 0, 0, &[8, 7, 5, 4, 3]),
    (0, 1, 0, &[7, 5]),
    (0, 3, 0, &[8, 7, 5, 4, 3]),
    (0, 4, 0, &[8, 7, 5, 4, 3]),
    (0, 0, 1, &[10, 5]),
    (0, 0, 3, &[10, 9, 8, 5, 4, 3]),
    (2, 1, 0, &[8, 7, 5]),
    (2, 0, 1, &[10, 8, 7, 5]),
    (0, 1, 1, &[10, 7, 5]),
    (2, 1, 1, &[10, 8, 7, 5]),
];

/// The example's metric of each DESIGN checkpoint number.
fn design_metric(number: u32) -> Option<f64> {
    match number {
        3 => Some(0.6),
        4 => Some(0.5),
        5 => Some(0.4),
        7 => Some(0.2),
        8 => Some(0.3),
        _ => None,
    }
}

/// Runs `two_trials.yaml` to completion; returns its id and the uuid of each DESIGN number (1-10).
fn run_two_trials(cluster: &TestCluster) -> (u64, BTreeMap<u32, String>) {
    let config = example_config("gc_plan", "two_trials.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/gc_plan"));
    let described = cluster.wait_for_experiment(id, "COMPLETED", 2 * MINUTE);

    // Trial 1 of the example (checkpoints 1-5) has 0.6 at step 3; trial 2 (6-10) has 0.2 at step 2.
    let mut offset_of_trial = BTreeMap::new();
    for trial in described["trials"].as_array().expect("trials") {
        let trial_id = trial["id"].as_u64().expect("trial id");
        let plan = cluster.trial(trial_id)["hparams"]["plan"].clone();
        let offset = if plan[2][1] == 0.6 {
            0
        } else if plan[1][1] == 0.2 {
            5
        } else {
            panic!("trial {trial_id} has an unexpected plan: {plan}");
        };
        offset_of_trial.insert(trial_id, offset);
    }
    assert_eq!(
        offset_of_trial.values().copied().collect::<BTreeSet<u32>>(),
        BTreeSet::from([0, 5]),
        "one trial per plan: {offset_of_trial:?}"
    );

    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string()]);
    let listed = listed.as_array().expect("checkpoint list");
    assert_eq!(listed.len(), 10, "one checkpoint per step: {listed:#?}");
    let mut numbers = BTreeMap::new();
    for checkpoint in listed {
        let trial_id = checkpoint["trial_id"].as_u64().unwrap();
        let step = checkpoint["step"].as_u64().unwrap() as u32;
        assert!((1..=5).contains(&step), "{checkpoint}");
        let number = offset_of_trial[&trial_id] + step;
        assert_eq!(checkpoint["state"], "COMPLETED", "{checkpoint}");
        assert_eq!(
            checkpoint["metric"].as_f64(),
            design_metric(number),
            "metric of checkpoint {number}: {checkpoint}"
        );
        let uuid = checkpoint["uuid"].as_str().unwrap().to_string();
        verify_stored_checkpoint(&cluster.storage(), &uuid);
        assert!(numbers.insert(number, uuid).is_none(), "{checkpoint}");
    }
    assert_eq!(numbers.len(), 10);
    (id, numbers)
}

/// Every file under `root` with its size and BLAKE3, by relative path.
fn storage_snapshot(root: &Path) -> BTreeMap<String, (u64, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, String)>) {
        for entry in std::fs::read_dir(dir).expect("readable storage") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let content = std::fs::read(&path).expect("readable file");
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                let digest = blake3::hash(&content).to_hex().to_string();
                out.insert(relative, (content.len() as u64, digest));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Top-level entries of the storage directory.
fn stored_dirs(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root)
        .expect("storage directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

/// The uuids of a JSON list.
fn uuid_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|u| u.as_str().expect("uuid").to_string())
        .collect()
}

fn gc_policy_args(
    id: u64,
    (best, trial_best, latest): (u64, u64, u64),
    tail: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "experiment",
        "set",
        "gc-policy",
        &id.to_string(),
        "--save-experiment-best",
        &best.to_string(),
        "--save-trial-best",
        &trial_best.to_string(),
        "--save-trial-latest",
        &latest.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(tail.iter().map(|s| s.to_string()));
    args
}

/// Runs `set gc-policy ... --json` and returns its keep and delete lists.
fn set_policy(
    cluster: &TestCluster,
    id: u64,
    policy: (u64, u64, u64),
    tail: &[&str],
) -> (Vec<String>, Vec<String>) {
    let args = gc_policy_args(id, policy, tail);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let answer = cluster.json(&args);
    (uuid_list(&answer["keep"]), uuid_list(&answer["delete"]))
}

/// `list-checkpoints --all --json` as uuid → state.
fn states(cluster: &TestCluster, id: u64) -> BTreeMap<String, String> {
    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    listed
        .as_array()
        .expect("checkpoint list")
        .iter()
        .map(|c| {
            (
                c["uuid"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until every uuid of `deleted` is DELETED and the others are COMPLETED.
fn wait_for_deletion(
    cluster: &TestCluster,
    id: u64,
    deleted: &BTreeSet<String>,
    timeout: Duration,
) {
    let started = Instant::now();
    loop {
        let last = states(cluster, id);
        let done = last.iter().all(|(uuid, state)| {
            if deleted.contains(uuid) {
                state == "DELETED"
            } else {
                state == "COMPLETED"
            }
        });
        if done {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "deletion not finished after {timeout:?}: {last:#?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_row_of_the_design_table_previews_exactly_and_the_applied_policy_deletes_from_storage() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let storage = cluster.storage();
    let (id, numbers) = run_two_trials(&cluster);
    let number_of: BTreeMap<&str, u32> = numbers.iter().map(|(n, u)| (u.as_str(), *n)).collect();
    let all: BTreeSet<u32> = numbers.keys().copied().collect();
    let before = storage_snapshot(&storage);
    let states_before = states(&cluster, id);

    for &(best, trial_best, latest, kept) in TABLE {
        let row = format!("policy {best} {trial_best} {latest}");
        let (keep, delete) = set_policy(&cluster, id, (best, trial_best, latest), &["--dry-run"]);
        let keep_numbers: Vec<u32> = keep.iter().map(|u| number_of[u.as_str()]).collect();
        let delete_numbers: Vec<u32> = delete.iter().map(|u| number_of[u.as_str()]).collect();
        let keep_set: BTreeSet<u32> = keep_numbers.iter().copied().collect();
        let delete_set: BTreeSet<u32> = delete_numbers.iter().copied().collect();
        assert_eq!(
            keep_set.len(),
            keep_numbers.len(),
            "{row}: duplicates in keep"
        );
        assert_eq!(
            delete_set.len(),
            delete_numbers.len(),
            "{row}: duplicates in delete"
        );
        assert_eq!(
            keep_set,
            kept.iter().copied().collect::<BTreeSet<u32>>(),
            "{row}: kept"
        );
        assert_eq!(
            delete_set,
            all.difference(&keep_set)
                .copied()
                .collect::<BTreeSet<u32>>(),
            "{row}: deleted"
        );
    }
    assert_eq!(
        storage_snapshot(&storage),
        before,
        "dry runs change no file"
    );
    assert_eq!(
        states(&cluster, id),
        states_before,
        "dry runs change no record"
    );

    // Bad input changes nothing either.
    let negative = gc_policy_args(id, (2, 1, 0), &[]);
    let mut negative: Vec<&str> = negative.iter().map(String::as_str).collect();
    let position = negative
        .iter()
        .position(|a| *a == "--save-trial-best")
        .unwrap();
    negative[position + 1] = "-1";
    negative.push("--yes");
    let output = cluster.cli(&negative);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "negative count accepted: {stderr}"
    );
    assert!(
        stderr.contains("--save-trial-best"),
        "{stderr:?} names the flag"
    );
    let unknown = gc_policy_args(999, (2, 1, 0), &["--yes"]);
    let unknown: Vec<&str> = unknown.iter().map(String::as_str).collect();
    let output = cluster.cli(&unknown);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr:?}");
    assert_eq!(
        storage_snapshot(&storage),
        before,
        "bad input changes no file"
    );
    assert_eq!(
        states(&cluster, id),
        states_before,
        "bad input changes no record"
    );

    // Apply `2 1 0`: keeps 8, 7 and 5, deletes the seven others from storage, then the records.
    let (keep, delete) = set_policy(&cluster, id, (2, 1, 0), &["--yes"]);
    let keep_numbers: BTreeSet<u32> = keep.iter().map(|u| number_of[u.as_str()]).collect();
    assert_eq!(keep_numbers, BTreeSet::from([8, 7, 5]));
    let deleted: BTreeSet<String> = delete.into_iter().collect();
    assert_eq!(deleted.len(), 7);
    wait_for_deletion(&cluster, id, &deleted, MINUTE);
    let kept: BTreeSet<String> = keep.into_iter().collect();
    assert_eq!(
        stored_dirs(&storage),
        kept,
        "storage holds exactly the kept checkpoints"
    );
    for uuid in &kept {
        verify_stored_checkpoint(&storage, uuid);
        let out = cluster.dir.path().join(format!("download-{uuid}"));
        cluster.cli_ok(&["checkpoint", "download", uuid, "-o", out.to_str().unwrap()]);
        for name in ["state.json", "blob.bin"] {
            assert_eq!(
                std::fs::read(out.join(name)).unwrap(),
                std::fs::read(storage.join(uuid).join(name)).unwrap(),
                "{name} of checkpoint {uuid}"
            );
        }
        assert_eq!(
            std::fs::read(out.join("blob.bin")).unwrap().len(),
            64 * 1024
        );
        let state: Value =
            serde_json::from_slice(&std::fs::read(out.join("state.json")).unwrap()).unwrap();
        assert_eq!(
            state["step"].as_u64().unwrap() as u32,
            (number_of[uuid.as_str()] - 1) % 5 + 1,
            "checkpoint {uuid} holds its own step"
        );
    }

    let live = cluster.json(&["experiment", "list-checkpoints", &id.to_string()]);
    let live: BTreeSet<String> = live
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(live, kept, "without --all only live checkpoints are listed");
    let with_deleted = states(&cluster, id);
    assert_eq!(with_deleted.len(), 10, "--all lists the deleted ones too");
    assert_eq!(
        with_deleted
            .iter()
            .filter(|(_, s)| *s == "DELETED")
            .map(|(u, _)| u.clone())
            .collect::<BTreeSet<String>>(),
        deleted
    );
    let deleted_uuid = deleted.iter().next().unwrap();
    let output = cluster.cli(&[
        "checkpoint",
        "download",
        deleted_uuid,
        "-o",
        cluster.dir.path().join("gone").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));

    // The same policy again has nothing more to delete.
    let (again_keep, again_delete) = set_policy(&cluster, id, (2, 1, 0), &["--dry-run"]);
    assert_eq!(again_keep.into_iter().collect::<BTreeSet<String>>(), kept);
    assert!(again_delete.is_empty(), "{again_delete:?}");
}

#[test]
fn deletion_interrupted_by_a_master_kill_finishes_after_restart() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    let storage = cluster.storage();
    // 200 checkpoints; validation every 10 steps with the best (smallest) metric at step 50.
    let plan: Vec<String> = (1..=200u64)
        .map(|step| {
            if step % 10 == 0 {
                format!("[{step}, {}]", 0.1 + step.abs_diff(50) as f64 / 100.0)
            } else {
                format!("[{step}, null]")
            }
        })
        .collect();
    let config = format!(
        "name: gc-plan-many\n\
         entrypoint: python3 plan.py\n\
         hyperparameters:\n  plan: [{}]\n\
         searcher:\n  name: single\n  metric: validation_loss\n  smaller_is_better: true\n  max_length: 200\n\
         min_validation_period: 0\n\
         min_checkpoint_period: 0\n\
         max_restarts: 0\n\
         checkpoint_storage:\n  type: shared_fs\n  host_path: {}\n  save_experiment_best: 0\n  save_trial_best: 0\n  save_trial_latest: 1000\n",
        plan.join(", "),
        storage.display()
    );
    let id = cluster.create_experiment(&config, &repo_root().join("examples/gc_plan"));
    cluster.wait_for_experiment(id, "COMPLETED", 3 * MINUTE);
    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string()]);
    let step_of: BTreeMap<String, u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["uuid"].as_str().unwrap().to_string(),
                c["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(step_of.len(), 200);

    let (keep, delete) = set_policy(&cluster, id, (1, 0, 1), &["--yes"]);
    cluster.kill_master();
    let kept: BTreeSet<String> = keep.into_iter().collect();
    let deleted: BTreeSet<String> = delete.into_iter().collect();
    assert_eq!(
        kept.iter().map(|u| step_of[u]).collect::<BTreeSet<u64>>(),
        BTreeSet::from([50, 200]),
        "the best and the latest"
    );
    assert_eq!(deleted.len(), 198);
    let left = deleted.iter().filter(|u| storage.join(u).exists()).count();
    eprintln!("{left} of 198 checkpoints to delete were still in storage when the master died");

    cluster.start_master();
    wait_for_deletion(&cluster, id, &deleted, 2 * MINUTE);
    assert_eq!(stored_dirs(&storage), kept, "every other directory is gone");
    for uuid in &kept {
        verify_stored_checkpoint(&storage, uuid);
    }
}

#[test]
fn the_sweep_removes_old_incomplete_uploads_and_nothing_else() {
    let cluster = TestCluster::start(
        &["a1"],
        &["--sweep-interval-secs", "1", "--upload-grace-secs", "1"],
    );
    let storage = cluster.storage();
    let (_, numbers) = run_two_trials(&cluster);
    let committed: BTreeSet<String> = numbers.into_values().collect();

    let leftover = uuid::Uuid::new_v4().to_string();
    let other = storage.join("not-a-checkpoint");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("notes.txt"),
        b"kept: not named like a checkpoint",
    )
    .unwrap();
    let written = Instant::now();
    std::fs::create_dir_all(storage.join(&leftover).join("sub")).unwrap();
    std::fs::write(storage.join(&leftover).join("partial.bin"), vec![1u8; 4096]).unwrap();
    std::fs::write(storage.join(&leftover).join("sub/more.bin"), b"more").unwrap();
    wait_until("the sweep to remove the leftover", MINUTE, || {
        !storage.join(&leftover).exists()
    });
    assert!(
        written.elapsed() >= Duration::from_millis(900),
        "removed after {:?}, before the grace period",
        written.elapsed()
    );

    // A few more sweeps run; committed checkpoints and other files stay.
    std::thread::sleep(Duration::from_secs(3));
    let mut expected = committed.clone();
    expected.insert("not-a-checkpoint".to_string());
    assert_eq!(stored_dirs(&storage), expected);
    for uuid in &committed {
        verify_stored_checkpoint(&storage, uuid);
    }
    assert!(other.join("notes.txt").is_file());
}

#[test]
fn a_failed_deletion_is_retried_without_a_master_restart() {
    let cluster = TestCluster::start(&["a1"], &["--sweep-interval-secs", "1"]);
    let storage = cluster.storage();
    let (id, numbers) = run_two_trials(&cluster);
    // Block the deletion of checkpoint 1: its metadata.json becomes a directory, which the
    // storage cannot delete as a file.
    let blocked = numbers[&1].clone();
    let manifest = storage.join(&blocked).join("metadata.json");
    std::fs::remove_file(&manifest).unwrap();
    std::fs::create_dir_all(manifest.join("blocker")).unwrap();

    let (keep, delete) = set_policy(&cluster, id, (0, 0, 1), &["--yes"]);
    let kept: BTreeSet<String> = keep.into_iter().collect();
    assert_eq!(
        kept,
        BTreeSet::from([numbers[&5].clone(), numbers[&10].clone()])
    );
    let deleted: BTreeSet<String> = delete.into_iter().collect();
    assert!(deleted.contains(&blocked));
    wait_until("the blocked deletion to fail", MINUTE, || {
        let states = states(&cluster, id);
        states[&blocked] == "ERROR"
            && deleted
                .iter()
                .filter(|u| **u != blocked)
                .all(|u| states[u] == "DELETED")
    });
    assert!(storage.join(&blocked).exists());

    std::fs::remove_dir_all(&manifest).unwrap();
    wait_for_deletion(&cluster, id, &deleted, MINUTE);
    assert_eq!(stored_dirs(&storage), kept);
}
