//! Prometheus metrics of the master and the agents, scraped during a run with a move, checked by
//! `promtool check metrics`, and compared with what the CLI says happened.

use std::net::SocketAddr;
use std::time::Duration;

use baton_cluster_tests::linreg::{agent_of, running_on_other_agent, slow_single};
use baton_cluster_tests::scrape::{metrics_address, promtool_check, sample, scrape};
use baton_cluster_tests::{TestCluster, repo_root, wait_until};

const MINUTE: Duration = Duration::from_secs(60);
const METRICS: [&str; 2] = ["--metrics-listen", "127.0.0.1:0"];

/// Scrapes `address` and checks the text with promtool.
fn checked_scrape(address: SocketAddr) -> String {
    let text = scrape(address);
    promtool_check(&text);
    text
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{text}"))
}

#[test]
fn metrics_of_master_and_agents_pass_promtool_and_follow_a_run_with_a_move() {
    let mut cluster = TestCluster::start(&[], &METRICS);
    for id in ["a1", "a2"] {
        let url = cluster.url.clone();
        cluster.start_agent_with(id, 1, &url, &METRICS);
    }
    cluster.wait_for_agents(2);
    let logs = cluster.dir.path().join("logs");
    let find = |name: &str| {
        let log = logs.join(format!("{name}.log"));
        let mut found = None;
        wait_until("the metrics address in the log", MINUTE, || {
            found = metrics_address(&log);
            found.is_some()
        });
        found.unwrap()
    };
    let master = find("master");
    let agents = [("a1", find("agent-a1")), ("a2", find("agent-a2"))];

    let before = checked_scrape(master);
    assert_eq!(value(&before, "baton_agents", &[("state", "enabled")]), 2.0);
    assert_eq!(
        value(&before, "baton_agents", &[("state", "disconnected")]),
        0.0
    );
    assert_eq!(value(&before, "baton_agent_slots", &[("agent", "a1")]), 1.0);
    assert_eq!(value(&before, "baton_trials", &[("state", "RUNNING")]), 0.0);
    assert!(
        value(
            &before,
            "baton_agent_heartbeat_age_seconds",
            &[("agent", "a2")]
        ) < 10.0
    );
    for (_, address) in agents {
        let text = checked_scrape(address);
        assert_eq!(value(&text, "baton_agent_master_connected", &[]), 1.0);
        assert_eq!(value(&text, "baton_agent_slots", &[("kind", "cpu")]), 1.0);
        assert_eq!(
            value(&text, "baton_agent_slot_in_use", &[("slot", "cpu0")]),
            0.0
        );
    }

    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.03", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial_id = cluster.first_trial(id);
    let trial = cluster.wait_for_trial(trial_id, "running", MINUTE, |t| {
        t["state"] == "RUNNING" && t["steps_completed"].as_u64() > Some(30)
    });
    let first = agent_of(&trial);
    let running = checked_scrape(master);
    assert_eq!(
        value(&running, "baton_trials", &[("state", "RUNNING")]),
        1.0
    );
    assert_eq!(
        value(&running, "baton_agent_slots_used", &[("agent", &first)]),
        1.0
    );
    assert!(
        value(
            &running,
            "baton_agent_reports_received_total",
            &[("kind", "training")]
        ) > 20.0
    );
    assert!(value(&running, "baton_master_command_duration_seconds_count", &[]) > 0.0);
    let on_first = checked_scrape(agents.iter().find(|(a, _)| *a == first).unwrap().1);
    assert_eq!(
        value(&on_first, "baton_agent_slot_in_use", &[("slot", "cpu0")]),
        1.0
    );
    assert_eq!(
        value(&on_first, "baton_agent_allocations_running", &[]),
        1.0
    );

    cluster.cli_ok(&["trial", "move", &trial_id.to_string()]);
    cluster.wait_for_trial(trial_id, "resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, &first, 30)
    });
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));

    let after = checked_scrape(master);
    assert_eq!(
        value(&after, "baton_trials", &[("state", "COMPLETED")]),
        1.0
    );
    assert_eq!(
        value(&after, "baton_experiments", &[("state", "COMPLETED")]),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "baton_allocations_ended_total",
            &[("reason", "moved")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "baton_allocations_ended_total",
            &[("reason", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "baton_trial_move_duration_seconds_count", &[]),
        1.0
    );
    let move_seconds = value(&after, "baton_trial_move_duration_seconds_sum", &[]);
    assert!(move_seconds > 0.0 && move_seconds < 30.0, "{move_seconds}");

    // Checkpoints: what the master counted, what the agents committed, what the CLI lists.
    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    let listed = listed.as_array().unwrap();
    let deleted = listed.iter().filter(|c| c["state"] == "DELETED").count() as f64;
    let kept_bytes: f64 = listed
        .iter()
        .filter(|c| c["state"] != "DELETED")
        .map(|c| c["size_bytes"].as_f64().unwrap())
        .sum();
    let shared_fs = [("backend", "shared_fs")];
    assert_eq!(
        value(&after, "baton_checkpoints_committed_total", &shared_fs),
        listed.len() as f64
    );
    assert!(
        deleted > 0.0,
        "the default policy deletes some of {} checkpoints",
        listed.len()
    );
    wait_until("GC to finish", MINUTE, || {
        let now = scrape(master);
        sample(&now, "baton_checkpoints_deleted_total", &[]) == Some(deleted)
    });
    let after = checked_scrape(master);
    assert_eq!(
        value(
            &after,
            "baton_storage_kept_bytes",
            &[("experiment", &id.to_string())]
        ),
        kept_bytes
    );
    assert!(value(&after, "baton_checkpoint_deleted_bytes_total", &[]) > 0.0);
    assert_eq!(
        value(&after, "baton_checkpoint_deletion_failures_total", &[]),
        0.0
    );

    let (mut commits, mut restores) = (0.0, 0.0);
    for (_, address) in agents {
        let text = checked_scrape(address);
        commits += sample(
            &text,
            "baton_agent_checkpoint_transfers_total",
            &[("direction", "commit")],
        )
        .unwrap_or(0.0);
        restores += sample(
            &text,
            "baton_agent_checkpoint_transfers_total",
            &[("direction", "restore")],
        )
        .unwrap_or(0.0);
        assert_eq!(value(&text, "baton_agent_allocations_running", &[]), 0.0);
        assert_eq!(
            value(&text, "baton_agent_slot_in_use", &[("slot", "cpu0")]),
            0.0
        );
    }
    assert_eq!(
        commits,
        listed.len() as f64,
        "every committed checkpoint was counted once"
    );
    assert_eq!(restores, 1.0, "the moved trial restored once");

    let exported = scrape(master) + &scrape(agents[0].1);
    deploy_files_name_only_exported_metrics(&exported);
}

/// The dashboard and alert rules in deploy/ query only metrics the daemons export, and the
/// Prometheus config with its rules passes promtool.
fn deploy_files_name_only_exported_metrics(exported: &str) {
    let families: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let deploy = repo_root().join("deploy");
    let mut queried = Vec::new();
    for file in ["grafana-dashboard.json", "baton-alerts.yml"] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("baton_") {
                queried.push((file, word.to_string()));
            }
        }
    }
    assert!(
        queried.len() > 15,
        "the deploy files query metrics: {queried:?}"
    );
    for (file, name) in queried {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            families.contains(&family),
            "{file} queries {name}, which no daemon exports"
        );
    }
    let checked = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(deploy.join("prometheus.yml"))
        .output()
        .expect("promtool runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}
