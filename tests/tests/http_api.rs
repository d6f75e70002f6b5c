//! The master's read-only HTTP JSON API against the CLI's `--json` output for the same objects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use baton_cluster_tests::http::{VIEWER_TOKEN, get_json, request, wait_for_api, write_auth_file};
use baton_cluster_tests::linreg::slow_single;
use baton_cluster_tests::{TestCluster, TestStorage, repo_root, wait_until};
use serde_json::Value;

/// Steps of a series `[{step, metrics}]`.
fn steps(points: &Value) -> Vec<u64> {
    let points = points.as_array().expect("a series");
    points.iter().map(|p| p["step"].as_u64().unwrap()).collect()
}

/// The best and the latest `(step, validation_loss)` of a trial's validations, the smallest best and
/// the earliest step among equals.
fn best_and_latest(validations: &Value) -> (Value, Value) {
    const METRIC: &str = "validation_loss";
    let losses: Vec<(u64, f64)> = validations
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["metrics"][METRIC].as_f64().unwrap(),
            )
        })
        .collect();
    let shown = |(step, value): (u64, f64)| serde_json::json!({"step": step, "value": value});
    let best = losses
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 { b } else { a })
        .map_or(Value::Null, shown);
    let latest = losses.last().copied().map_or(Value::Null, shown);
    (best, latest)
}

/// A metric value without its trial id.
fn without_trial(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("trial_id");
    }
    value
}

/// Every page of a trial's log lines, `limit` at a time.
fn all_log_pages(api: SocketAddr, trial_id: u64, limit: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let page = get_json(
            api,
            &format!("/api/v1/trials/{trial_id}/logs?after={after}&limit={limit}"),
            None,
        );
        let got = page["lines"].as_array().unwrap().clone();
        assert!(got.len() <= limit, "{page}");
        if got.is_empty() {
            assert_eq!(page["next_after"], after, "{page}");
            return lines;
        }
        after = page["next_after"].as_u64().unwrap();
        assert_eq!(got.last().unwrap()["id"], after, "{page}");
        lines.extend(got);
    }
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
    let api = wait_for_api(&cluster);
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
    let trial_count = listed[0]["trial_count"].as_u64().unwrap();
    assert_eq!(listed[0]["steps_total"], trial_count * 60, "{listed:#}");
    assert_eq!(listed[0]["steps_completed"], trial_count * 60, "{listed:#}");
    assert_eq!(
        listed[0]["metric"],
        serde_json::json!({"name": "validation_loss", "smaller_is_better": true})
    );
    let unfinished = get("/api/v1/experiments?state=active,paused");
    assert_eq!(unfinished["experiments"], Value::Array(vec![]));

    let cli_experiment = cluster.json(&["experiment", "describe", &id.to_string()]);
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

    let mut best_of_all: Option<(f64, Value)> = None;
    let curves = |query: &str| get(&format!("/api/v1/experiments/{id}/metrics{query}"));
    let validation_curves = curves("?kind=validation");
    assert_eq!(
        validation_curves["metric"], "validation_loss",
        "{validation_curves}"
    );
    assert!(
        validation_curves["metric_names"]
            .as_array()
            .unwrap()
            .contains(&Value::from("validation_loss")),
        "{validation_curves}"
    );
    let training_curves = curves("?kind=training&metric=loss&max_points=5");
    let series_of = |curves: &Value, trial_id: u64| -> Value {
        let series = curves["series"].as_array().unwrap();
        series
            .iter()
            .find(|s| s["trial_id"] == trial_id)
            .cloned()
            .unwrap_or_else(|| panic!("no series of trial {trial_id} in {curves}"))
    };
    assert_eq!(
        training_curves["series"].as_array().unwrap().len(),
        cli_experiment["trials"].as_array().unwrap().len()
    );
    for trial in cli_experiment["trials"].as_array().unwrap() {
        let trial_id = trial["id"].as_u64().unwrap();
        let cli_detail = cluster.trial(trial_id);
        let (best, latest) = best_and_latest(&cli_detail["validations"]);
        assert_eq!(without_trial(trial["best_metric"].clone()), best, "{trial}");
        assert_eq!(
            without_trial(trial["latest_metric"].clone()),
            latest,
            "{trial}"
        );
        let loss = best["value"].as_f64().unwrap();
        if best_of_all.as_ref().is_none_or(|(b, _)| loss < *b) {
            let mut with_trial = best.clone();
            with_trial["trial_id"] = trial_id.into();
            best_of_all = Some((loss, with_trial));
        }
        let expected: Vec<Value> = cli_detail["validations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| serde_json::json!([v["step"], v["metrics"]["validation_loss"]]))
            .collect();
        assert_eq!(
            series_of(&validation_curves, trial_id)["points"],
            Value::Array(expected)
        );
        let training = series_of(&training_curves, trial_id);
        let points = training["points"].as_array().unwrap();
        assert_eq!(training["total_points"], 60, "{training}");
        assert!(points.len() <= 5, "{training}");
        let every = get(&format!("/api/v1/trials/{trial_id}/metrics?kind=training"));
        let losses: Vec<(u64, f64)> = every["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["step"].as_u64().unwrap(),
                    p["metrics"]["loss"].as_f64().unwrap(),
                )
            })
            .collect();
        let kept: Vec<(u64, f64)> = points
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        let by_loss = |a: &&(u64, f64), b: &&(u64, f64)| a.1.total_cmp(&b.1);
        let lowest = *losses.iter().min_by(by_loss).unwrap();
        let highest = *losses.iter().max_by(by_loss).unwrap();
        for point in [losses[0], losses[59], lowest, highest] {
            assert!(kept.contains(&point), "{point:?} thinned out of {kept:?}");
        }

        let cli_logs: Vec<Value> = cluster
            .cli_ok(&["--json", "trial", "logs", &trial_id.to_string()])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(cli_logs.len() > 3, "{cli_logs:?}");
        assert_eq!(all_log_pages(api, trial_id, 7), cli_logs);
        let tail = get(&format!("/api/v1/trials/{trial_id}/logs?tail=3"));
        assert_eq!(
            tail["lines"].as_array().unwrap(),
            &cli_logs[cli_logs.len() - 3..]
        );
    }
    assert_eq!(
        listed[0]["best_metric"],
        best_of_all.unwrap().1,
        "{listed:#}"
    );

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
        ("/api/v1/experiments/99/metrics", 404, "99"),
        ("/api/v1/experiments/1/metrics?kind=x", 400, "kind"),
        (
            "/api/v1/experiments/1/metrics?max_points=-1",
            400,
            "max_points",
        ),
        ("/api/v1/trials/98/logs", 404, "98"),
        ("/api/v1/trials/1/logs?tail=2&after=1", 400, "tail"),
        ("/api/v1/trials/1/logs?limit=0", 400, "limit"),
        ("/api/v1/trials/1/logs?after=x", 400, "after"),
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
fn a_running_trial_shows_on_its_slot_its_output_follows_and_a_silent_agent_is_lost() {
    let mut cluster = TestCluster::start(&["a1"], &["--http-listen", "127.0.0.1:0"]);
    let api = wait_for_api(&cluster);
    let get = |path: &str| get_json(api, path, None);
    let experiment = cluster.create_experiment(
        &slow_single(&cluster, "0.1", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial = cluster.first_trial(experiment);
    cluster.wait_for_trial(trial, "steps", Duration::from_secs(60), |t| {
        t["state"] == "RUNNING" && t["steps_completed"].as_u64() > Some(2)
    });
    let agent = get("/api/v1/agents")["agents"][0].clone();
    assert_eq!(agent["status"], "enabled", "{agent}");
    assert_eq!(agent["slot_details"][0]["trial_id"], trial, "{agent}");
    assert_eq!(agent["trial_ids"], serde_json::json!([trial]), "{agent}");

    let first = get(&format!("/api/v1/trials/{trial}/logs"));
    let after = first["next_after"].as_u64().unwrap();
    assert!(after > 0, "{first}");
    let mut later = Value::Null;
    wait_until("new output lines", Duration::from_secs(30), || {
        later = get(&format!("/api/v1/trials/{trial}/logs?after={after}"));
        !later["lines"].as_array().unwrap().is_empty()
    });
    assert!(later["lines"][0]["id"].as_u64().unwrap() > after, "{later}");
    let detail = get(&format!("/api/v1/trials/{trial}"));
    assert_eq!(
        detail["allocations"][0]["exit_reason"],
        Value::Null,
        "{detail}"
    );

    cluster.kill_agent("a1");
    let mut agent = Value::Null;
    wait_until("the agent shown lost", Duration::from_secs(30), || {
        agent = get("/api/v1/agents")["agents"][0].clone();
        agent["status"] == "lost"
    });
    assert_eq!(agent["connected"], false, "{agent}");
}

#[test]
fn the_api_needs_a_token_like_grpc_and_only_reads() {
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = write_auth_file(auth_dir.path());
    let auth = auth_file.to_str().unwrap();
    let cluster = TestCluster::start(&[], &["--auth-file", auth, "--http-listen", "127.0.0.1:0"]);
    let api = wait_for_api(&cluster);
    let path = "/api/v1/experiments";
    for (token, needs) in [
        (None, "needs a token"),
        (Some("guess"), "not known to this master"),
    ] {
        let (code, body) = request(api, "GET", path, token);
        assert_eq!(code, 401, "{body}");
        assert!(body.contains(needs), "{body}");
    }
    let viewer = Some(VIEWER_TOKEN);
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

    // The dashboard's files carry no data: they load without a token, and then ask for one.
    let (code, body) = request(api, "GET", "/ui/", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("data-testid=\"sign-in\""), "{body}");
    let (code, _) = request(api, "GET", "/ui/app.js", None);
    assert_eq!(code, 200);
    let (code, _) = request(api, "GET", "/", None);
    assert_eq!(code, 307);
}
