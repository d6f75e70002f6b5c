//! The master's read-only HTTP JSON API against the CLI's `--json` output for the same objects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use baton_cluster_tests::http::{get_json, request, wait_for_api};
use baton_cluster_tests::{TestCluster, TestStorage, repo_root};
use serde_json::Value;

/// The HTTP API's address from the master's log.
fn address(cluster: &TestCluster) -> SocketAddr {
    wait_for_api(cluster)
}

/// Steps of a series `[{step, metrics}]`.
fn steps(points: &Value) -> Vec<u64> {
    let points = points.as_array().expect("a series");
    points.iter().map(|p| p["step"].as_u64().unwrap()).collect()
}

/// Checkpoints by uuid.
fn by_uuid(list: &Value) -> BTreeMap<String, Value> {
    let list = list.as_array().expect("a checkpoint list");
    list.iter()
        .map(|c| (c["uuid"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

#[test]
fn endpoints_mirror_the_cli_for_a_finished_grid_and_share_the_metrics_port() {
    let any = "127.0.0.1:0";
    let cluster = TestCluster::start(
        &["a1", "a2"],
        &["--http-listen", any, "--metrics-listen", any],
    );
    let api = address(&cluster);
    let get = |path: &str| get_json(api, path, None);
    let config = TestStorage::SharedFs(cluster.storage()).config("linreg", "grid.yaml", &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));

    let agents = get("/api/v1/agents")["agents"].clone();
    let cli_agents = cluster.json(&["agent", "list"]);
    let ids = |list: &Value| -> BTreeSet<String> {
        let list = list.as_array().unwrap();
        list.iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&agents), ids(&cli_agents), "{agents:#}");
    for agent in agents.as_array().unwrap() {
        assert_eq!(agent["state"], "enabled", "{agent}");
        assert_eq!(
            agent["slot_details"].as_array().unwrap().len(),
            1,
            "{agent}"
        );
        assert!(agent["heartbeat_age_ms"].is_u64(), "{agent}");
        assert!(!agent["version"].as_str().unwrap().is_empty(), "{agent}");
    }

    let listed = get("/api/v1/experiments?state=completed")["experiments"].clone();
    assert_eq!(listed[0]["id"], id, "{listed:#}");
    assert_eq!(listed[0]["state"], "COMPLETED");
    assert!(
        listed[0]["storage_bytes"].as_u64().unwrap() > 0,
        "{listed:#}"
    );
    let unfinished = get("/api/v1/experiments?state=active,paused");
    assert_eq!(unfinished["experiments"], Value::Array(vec![]));

    let mut cli_experiment = cluster.json(&["experiment", "describe", &id.to_string()]);
    cli_experiment.as_object_mut().unwrap().remove("brackets");
    let experiment = get(&format!("/api/v1/experiments/{id}"));
    assert_eq!(experiment, cli_experiment);

    let cli_checkpoints =
        by_uuid(&cluster.json(&["experiment", "list-checkpoints", &id.to_string()]));
    let checkpoints =
        by_uuid(&get(&format!("/api/v1/experiments/{id}/checkpoints"))["checkpoints"]);
    let uuids = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(uuids(&checkpoints), uuids(&cli_checkpoints));
    let preview = cluster.json(&[
        "experiment",
        "set",
        "gc-policy",
        &id.to_string(),
        "--save-experiment-best",
        "0",
        "--save-trial-best",
        "1",
        "--save-trial-latest",
        "1",
        "--dry-run",
    ]);
    let preview_keeps: BTreeSet<String> = preview["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    for (uuid, mut checkpoint) in checkpoints.clone() {
        let keeps = checkpoint.as_object_mut().unwrap().remove("gc_keeps");
        assert_eq!(
            keeps,
            Some(Value::Bool(preview_keeps.contains(&uuid))),
            "{uuid}"
        );
        assert_eq!(checkpoint, cli_checkpoints[&uuid]);
    }

    for trial in cli_experiment["trials"].as_array().unwrap() {
        let trial_id = trial["id"].as_u64().unwrap();
        let mut detail = get(&format!("/api/v1/trials/{trial_id}"));
        let own = by_uuid(
            &detail
                .as_object_mut()
                .unwrap()
                .remove("checkpoints")
                .unwrap(),
        );
        let cli_detail = cluster.trial(trial_id);
        assert_eq!(detail, cli_detail);
        let expected: BTreeSet<String> = checkpoints
            .iter()
            .filter(|(_, c)| c["trial_id"] == trial_id)
            .map(|(uuid, _)| uuid.clone())
            .collect();
        assert_eq!(uuids(&own), expected);

        let metrics = |query: &str| get(&format!("/api/v1/trials/{trial_id}/metrics{query}"));
        let validations = metrics("?kind=validation");
        assert_eq!(
            steps(&validations["points"]),
            steps(&cli_detail["validations"])
        );
        let training = metrics("");
        let all = steps(&training["points"]);
        assert_eq!(training["total_points"], all.len());
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        assert_eq!(all.last(), Some(&60), "{all:?}");
        assert!(
            training["points"][0]["metrics"]["loss"].is_number(),
            "{training}"
        );
        let few = steps(&metrics("?kind=training&max_points=3")["points"]);
        assert!(few.len() <= 3, "{few:?}");
        assert_eq!((few.first(), few.last()), (all.first(), all.last()));
    }

    for (path, status, names) in [
        ("/api/v1/experiments/99", 404, "99"),
        ("/api/v1/experiments/99/checkpoints", 404, "99"),
        ("/api/v1/trials/98", 404, "98"),
        ("/api/v1/trials/98/metrics", 404, "98"),
        ("/api/v1/trials/abc", 400, "abc"),
        ("/api/v1/trials/1/metrics?kind=loss", 400, "kind"),
        ("/api/v1/trials/1/metrics?max_points=0", 400, "max_points"),
        ("/api/v1/experiments?state=done", 400, "state"),
    ] {
        let (code, body) = request(api, "GET", path, None);
        assert_eq!(code, status, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(names),
            "{path}: {body}"
        );
    }
    let (code, body) = request(api, "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(body.contains("baton_"), "{body}");
}

#[test]
fn the_api_needs_a_token_like_grpc_and_only_reads() {
    let hash = |token: &str| {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(token.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.yaml");
    std::fs::write(
        &auth_file,
        format!(
            "tokens:\n  - {{name: alice, role: admin, sha256: {}}}\n  - {{name: bob, role: viewer, sha256: {}}}\n",
            hash("alice-admin-token"),
            hash("bob-viewer-token")
        ),
    )
    .unwrap();
    let auth = auth_file.to_str().unwrap();
    let cluster = TestCluster::start(&[], &["--auth-file", auth, "--http-listen", "127.0.0.1:0"]);
    let api = address(&cluster);
    let path = "/api/v1/experiments";
    for (token, needs) in [
        (None, "needs a token"),
        (Some("guess"), "not known to this master"),
    ] {
        let (code, body) = request(api, "GET", path, token);
        assert_eq!(code, 401, "{body}");
        assert!(body.contains(needs), "{body}");
    }
    let viewer = Some("bob-viewer-token");
    assert_eq!(
        get_json(api, path, viewer)["experiments"],
        Value::Array(vec![])
    );
    assert!(get_json(api, "/api/v1/agents", Some("alice-admin-token"))["agents"].is_array());
    for method in ["POST", "DELETE", "PUT"] {
        let (code, body) = request(api, method, path, viewer);
        assert_eq!(code, 405, "{method}: {body}");
    }
    let (code, body) = request(api, "GET", "/api/v1/experiments/7", viewer);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("experiment 7"), "{body}");
}
