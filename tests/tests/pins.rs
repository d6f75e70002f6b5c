//! Checkpoint pins through the CLI: a pinned checkpoint outlives garbage collection and
//! `experiment delete` with its files; refused pins change nothing; unpinned, it goes.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_cluster_tests::linreg::slow_single;
use baton_cluster_tests::{TestCluster, repo_root, verify_stored_checkpoint, wait_until};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);
const ADMIN: &str = "alice-admin-token";
const VIEWER: &str = "bob-viewer-token";

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A cluster whose admin API takes an admin and a viewer token; the CLI presents the admin's.
/// The directory holds the auth file, which a restarted master reads again.
fn cluster_with_tokens() -> (TestCluster, tempfile::TempDir) {
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.yaml");
    std::fs::write(
        &auth_file,
        format!(
            "tokens:\n  - {{name: alice, role: admin, sha256: {}}}\n  - {{name: bob, role: viewer, sha256: {}}}\n",
            sha256_hex(ADMIN),
            sha256_hex(VIEWER)
        ),
    )
    .unwrap();
    let mut cluster = TestCluster::start(&[], &["--auth-file", auth_file.to_str().unwrap()]);
    cluster.token = Some(ADMIN.into());
    cluster.start_agent("a1", 1);
    cluster.wait_for_agents(1);
    (cluster, auth_dir)
}

/// `list-checkpoints --all --json` as step → checkpoint.
fn by_step(cluster: &TestCluster, id: u64) -> BTreeMap<u64, Value> {
    cluster
        .json(&["experiment", "list-checkpoints", &id.to_string(), "--all"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["step"].as_u64().unwrap(), c.clone()))
        .collect()
}

/// Waits until the COMPLETED checkpoints are those of `steps` and every other one is DELETED.
fn wait_for_steps(cluster: &TestCluster, id: u64, steps: &[u64]) -> BTreeMap<u64, Value> {
    let mut last = BTreeMap::new();
    wait_until("the checkpoints to settle", MINUTE, || {
        last = by_step(cluster, id);
        last.iter().all(|(step, c)| {
            let expected = if steps.contains(step) {
                "COMPLETED"
            } else {
                "DELETED"
            };
            c["state"] == expected
        })
    });
    last
}

/// Runs the CLI, expecting exit status 1 with `expected` in its error.
fn refused(cluster: &TestCluster, token: &str, args: &[&str], expected: &str) {
    let output = TestCluster::cli_as(cluster, Some(token))(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

#[test]
fn a_pinned_checkpoint_outlives_gc_and_experiment_delete_until_unpinned() {
    let (mut cluster, _auth) = cluster_with_tokens();
    let storage = cluster.storage();
    // 100 steps and a checkpoint every 25; the policy keeps each trial's latest checkpoint.
    let overrides = [
        ("max_length: 200", "max_length: 100"),
        ("save_trial_best: 1", "save_trial_best: 0"),
    ];
    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.02", &overrides),
        &repo_root().join("examples/linreg"),
    );
    let exp = id.to_string();
    let trial = cluster.first_trial(id);
    cluster.wait_for_trial(trial, "the first checkpoint", MINUTE, |t| {
        t["latest_checkpoint"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    });
    let first = by_step(&cluster, id)[&25]["uuid"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused pins say why and change nothing.
    let unknown = "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11";
    let long_note = "n".repeat(1025);
    refused(
        &cluster,
        VIEWER,
        &["checkpoint", "pin", &first],
        "is a viewer; PinCheckpoint needs an admin token",
    );
    refused(
        &cluster,
        VIEWER,
        &["checkpoint", "unpin", &first],
        "UnpinCheckpoint needs an admin token",
    );
    refused(
        &cluster,
        ADMIN,
        &["checkpoint", "pin", unknown],
        &format!("checkpoint {unknown} does not exist"),
    );
    refused(
        &cluster,
        ADMIN,
        &["checkpoint", "pin", "not-a-uuid"],
        "\"not-a-uuid\" is not a checkpoint uuid",
    );
    refused(
        &cluster,
        ADMIN,
        &["checkpoint", "pin", &first, "--note", &long_note],
        "note: at most 1024 bytes (got 1025)",
    );
    assert_eq!(by_step(&cluster, id)[&25]["pinned"], false);

    let said = cluster.cli_ok(&["checkpoint", "pin", &first, "--note", "first good fit"]);
    assert_eq!(
        said.trim(),
        format!("Checkpoint {first} (trial {trial}, step 25) is pinned: first good fit")
    );

    // End GC keeps it beside what the policy keeps.
    cluster.wait_for_experiment(id, "COMPLETED", MINUTE);
    let settled = wait_for_steps(&cluster, id, &[25, 100]);
    assert_eq!(settled[&25]["pinned"], true);
    assert_eq!(settled[&25]["pin_note"], "first good fit");
    assert_eq!(settled[&100]["pin_note"], Value::Null);
    verify_stored_checkpoint(&storage, &first);
    let table = cluster.cli_ok(&["experiment", "list-checkpoints", &exp]);
    let row = table.lines().find(|l| l.ends_with(&first)).unwrap();
    assert!(row.contains(" yes "), "{table}");
    let described = cluster.cli_ok(&["checkpoint", "describe", &first]);
    assert!(
        described.contains("Pinned:     yes (first good fit)\n"),
        "{described}"
    );
    // The pin, what is held and the peak survive a master restart.
    let before = cluster.json(&["experiment", "describe", &exp]);
    assert_eq!(before["pinned_checkpoints"], 1);
    let held: u64 = [25, 100]
        .iter()
        .map(|step| settled[step]["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(before["storage_bytes"], held);
    let written: u64 = settled
        .values()
        .map(|c| c["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        before["storage_peak_bytes"], written,
        "it held all four at once"
    );
    cluster.kill_master();
    cluster.start_master();
    let after = cluster.json(&["experiment", "describe", &exp]);
    for field in ["pinned_checkpoints", "storage_bytes", "storage_peak_bytes"] {
        assert_eq!(after[field], before[field], "{field} after a restart");
    }
    assert_eq!(by_step(&cluster, id)[&25]["pin_note"], "first good fit");

    // Deleting the experiment deletes the rest; the experiment stays with its pinned checkpoint.
    let said = cluster.cli_ok(&["experiment", "delete", &exp, "--yes"]);
    assert!(
        said.contains(&format!(
            "Experiment {id} stays with its records and its 1 pinned checkpoints:\n  {first}"
        )),
        "{said}"
    );
    wait_for_steps(&cluster, id, &[25]);
    let described = cluster.json(&["experiment", "describe", &exp]);
    assert_eq!(described["state"], "COMPLETED");
    verify_stored_checkpoint(&storage, &first);
    let stored: Vec<String> = std::fs::read_dir(&storage)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        stored,
        std::slice::from_ref(&first),
        "only the pinned checkpoint is left"
    );

    // Unpinned, the policy keeps it (it is the experiment's latest now); deleted again, it goes
    // with the experiment.
    let said = cluster.cli_ok(&["checkpoint", "unpin", &first]);
    assert!(
        said.contains("is unpinned; its experiment's GC policy keeps it"),
        "{said}"
    );
    let said = cluster.cli_ok(&["experiment", "delete", &exp, "--yes"]);
    assert!(
        said.starts_with(&format!("Deleting experiment {id}: 1 checkpoints")),
        "{said}"
    );
    wait_until("the experiment to be gone", MINUTE, || {
        cluster.cli(&["experiment", "describe", &exp]).status.code() == Some(1)
    });
    assert!(!storage.join(&first).exists(), "its files are deleted");
    refused(
        &cluster,
        ADMIN,
        &["checkpoint", "pin", &first],
        &format!("checkpoint {first} does not exist"),
    );
}
