//! `baton experiment delete`: checkpoints leave storage, then the records go, through a storage
//! outage and a master restart; other experiments are untouched.

use std::net::SocketAddr;
use std::time::Duration;

use baton_cluster_tests::linreg::slow_single;
use baton_cluster_tests::{LinkProxy, TestCluster, TestStorage, repo_root, wait_until};
use serde_json::Value;

/// The state `experiment list` shows for `id`, None once it is gone.
fn listed_state(cluster: &TestCluster, id: u64) -> Option<String> {
    cluster
        .json(&["experiment", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .map(|e| e["state"].as_str().unwrap().to_string())
}

#[test]
fn a_deleted_experiment_leaves_no_checkpoint_and_no_record_across_an_outage_and_a_restart() {
    let mut cluster = TestCluster::start(&["a1"], &["--sweep-interval-secs", "1"]);
    let context = repo_root().join("examples/linreg");
    let direct = TestStorage::s3("delete");
    let TestStorage::S3 {
        endpoint,
        bucket,
        prefix,
    } = &direct
    else {
        unreachable!()
    };
    let s3: SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = LinkProxy::start(s3);
    let via_proxy = TestStorage::S3 {
        endpoint: proxy.url(),
        bucket: bucket.clone(),
        prefix: prefix.clone(),
    };

    // An experiment that is still running cannot be deleted; killed, it stays as it is.
    let other = cluster.create_experiment(&slow_single(&cluster, "0.05", &[]), &context);
    let other_text = other.to_string();
    let refused = cluster.cli(&["experiment", "delete", &other_text, "--yes"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is ACTIVE: only a COMPLETED, CANCELED or ERRORED experiment"),
        "{stderr}"
    );
    assert_eq!(listed_state(&cluster, other).as_deref(), Some("ACTIVE"));
    cluster.cli_ok(&["experiment", "kill", &other_text]);
    cluster.wait_for_experiment(other, "CANCELED", Duration::from_secs(30));

    let id = cluster.create_experiment(&via_proxy.config("linreg", "single.yaml", &[]), &context);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.first_trial(id);
    // Garbage collection of the older checkpoints may still be deleting them.
    let completed = || -> std::collections::BTreeSet<String> {
        cluster
            .json(&["experiment", "list-checkpoints", &id.to_string(), "--all"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] == "COMPLETED")
            .map(|c| c["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until("GC to settle", Duration::from_secs(30), || {
        direct.checkpoint_uuids() == completed()
    });
    let stored = direct.checkpoint_uuids();
    assert!(!stored.is_empty(), "the experiment has checkpoints in S3");
    let other_checkpoints = cluster.json(&["experiment", "list-checkpoints", &other_text]);

    // Storage goes away during the deletion, and the master restarts while it cannot finish.
    proxy.cut();
    let said = cluster.cli_ok(&["experiment", "delete", &id.to_string(), "--yes"]);
    assert!(
        said.starts_with(&format!("Deleting experiment {id}: ")),
        "{said}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(listed_state(&cluster, id).as_deref(), Some("DELETING"));
    assert_eq!(direct.checkpoint_uuids(), stored, "storage was unreachable");
    cluster.kill_master();
    cluster.start_master();
    assert_eq!(listed_state(&cluster, id).as_deref(), Some("DELETING"));
    let again = cluster.cli(&["experiment", "activate", &id.to_string()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a DELETING experiment stays so"
    );

    proxy.heal();
    wait_until("the experiment to be gone", Duration::from_secs(90), || {
        listed_state(&cluster, id).is_none()
    });
    assert!(
        direct.checkpoint_uuids().is_empty(),
        "no checkpoint is left in storage"
    );
    for args in [
        vec!["experiment".to_string(), "describe".into(), id.to_string()],
        vec!["trial".into(), "describe".into(), trial.to_string()],
        vec![
            "checkpoint".into(),
            "describe".into(),
            stored.first().unwrap().clone(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = cluster.cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not exist") || stderr.contains("not found"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(listed_state(&cluster, other).as_deref(), Some("CANCELED"));
    let kept: Value = cluster.json(&["experiment", "list-checkpoints", &other_text]);
    assert_eq!(kept, other_checkpoints, "the other experiment is untouched");
    for checkpoint in kept.as_array().unwrap() {
        let uuid = checkpoint["uuid"].as_str().unwrap();
        assert!(cluster.storage().join(uuid).join("metadata.json").is_file());
    }
}
