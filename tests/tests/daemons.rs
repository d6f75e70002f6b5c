//! What operators see of the daemons: versions, `agent list`'s VERSION column, log formats, a
//! relative work directory, an agent binary upgraded in place.

use std::process::Command;
use std::time::Duration;

use baton_cluster_tests::linreg::exit_reasons;
use baton_cluster_tests::{TestCluster, bin_dir, example_config, repo_root};
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn every_binary_prints_the_workspace_version() {
    for name in ["baton", "baton-master", "baton-agent"] {
        let output = Command::new(bin_dir().join(name))
            .arg("--version")
            .output()
            .expect("binary runs");
        assert!(output.status.success(), "{name} --version failed");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{name} {VERSION}\n")
        );
    }
}

#[test]
fn agent_list_shows_versions_and_text_logs_to_a_file_hold_no_colour_codes() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let agents = cluster.json(&["agent", "list"]);
    let agents = agents.as_array().expect("agent list");
    assert_eq!(agents.len(), 2);
    for agent in agents {
        assert_eq!(agent["version"], VERSION, "{agent}");
    }
    let table = cluster.cli_ok(&["agent", "list"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0].last(), Some(&"VERSION"), "{table}");
    assert_eq!(rows.len(), 3, "{table}");
    for (row, id) in rows[1..].iter().zip(["a1", "a2"]) {
        assert_eq!((row[0], row.last()), (id, Some(&VERSION)), "{table}");
    }
    for name in ["master", "agent-a1", "agent-a2"] {
        let log =
            std::fs::read(cluster.dir.path().join(format!("logs/{name}.log"))).expect("daemon log");
        let text = String::from_utf8_lossy(&log);
        assert!(
            !log.contains(&0x1b),
            "{name}.log holds ANSI escapes: {text:?}"
        );
        assert!(
            text.contains(" INFO "),
            "{name}.log has no log lines: {text}"
        );
    }
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let mut cluster = TestCluster::start(&[], &["--log-format", "json"]);
    let url = cluster.url.clone();
    cluster.start_agent_with("a1", 1, &url, &["--log-format", "json"]);
    cluster.wait_for_agents(1);
    for name in ["master", "agent-a1"] {
        let text = std::fs::read_to_string(cluster.dir.path().join(format!("logs/{name}.log")))
            .expect("daemon log");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}.log: {line:?} is not JSON: {e}"))
            })
            .collect();
        assert!(!lines.is_empty(), "{name}.log is empty");
        for line in &lines {
            assert!(
                line["level"].is_string() && line["fields"]["message"].is_string(),
                "{name}.log: {line}"
            );
        }
    }
    let master = std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap();
    let connected = master
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["fields"]["message"] == "agent connected")
        .expect("the master logs the agent's connection");
    assert_eq!(connected["fields"]["agent"], "a1");
    assert_eq!(connected["fields"]["version"], VERSION);
}

#[test]
fn a_bad_log_format_is_a_usage_error_naming_the_allowed_values() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in ["baton-master", "baton-agent"] {
        let by_flag = Command::new(bin_dir().join(name))
            .args(["--log-format", "xml"])
            .current_dir(dir.path())
            .output();
        let by_env = Command::new(bin_dir().join(name))
            .env("BATON_LOG_FORMAT", "logfmt")
            .current_dir(dir.path())
            .output();
        for (output, bad) in [(by_flag, "xml"), (by_env, "logfmt")] {
            let output = output.expect("daemon runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{bad}' for '--log-format"))
                    && stderr.contains("[possible values: text, json]"),
                "{name}: {stderr}"
            );
        }
    }
}

#[test]
fn an_agent_with_a_relative_work_dir_runs_a_trial_to_completion() {
    let mut cluster = TestCluster::start(&[], &[]);
    cluster.start_agent_in_cluster_dir("a1", "run/agent-1");
    cluster.wait_for_agents(1);
    let config = example_config("linreg", "single.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.trial(cluster.first_trial(id));
    assert_eq!(exit_reasons(&trial), ["completed"], "{trial:#}");
    assert_eq!(trial["restarts"], 0);
    assert!(
        cluster.dir.path().join("run/agent-1/harness").is_dir(),
        "the work directory is relative to the agent's working directory"
    );
}

#[test]
fn an_agent_whose_binary_was_replaced_under_it_still_starts_trials() {
    let mut cluster = TestCluster::start(&[], &[]);
    let binary = cluster.dir.path().join("bin/baton-agent");
    std::fs::create_dir_all(cluster.dir.path().join("bin")).unwrap();
    std::fs::copy(bin_dir().join("baton-agent"), &binary).unwrap();
    cluster.start_agent_binary("a1", &binary);
    cluster.wait_for_agents(1);
    // An upgrade as cargo and install(1) make it: a new file renamed over the running one.
    let upgrade = binary.with_file_name(".baton-agent.new");
    std::fs::copy(bin_dir().join("baton-agent"), &upgrade).unwrap();
    std::fs::rename(&upgrade, &binary).unwrap();
    let config = example_config("linreg", "single.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.trial(cluster.first_trial(id));
    assert_eq!(exit_reasons(&trial), ["completed"], "{trial:#}");
}
