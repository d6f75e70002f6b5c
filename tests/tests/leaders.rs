//! Several masters on the command line: the CLI and the agents find the leader behind standbys
//! (which decline every call and name the leader) and masters that are down.

use std::time::{Duration, Instant};

use baton_cluster_tests::{FakeStandby, TestCluster, dead_master_url};
use serde_json::Value;

/// The stderr of a CLI run, asserting that it failed with status 1.
fn failure(output: &std::process::Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a failure: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cli_uses_the_first_leading_master() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let leader = cluster.url.clone();
    let standby = FakeStandby::start(Some(&leader));
    let dead = dead_master_url();

    for masters in [
        format!("{},{leader}", standby.url),
        format!("{dead},{leader}"),
    ] {
        let output = cluster.cli_via(&masters, &["agent", "list", "--json"]);
        assert!(
            output.status.success(),
            "--master {masters}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let agents: Value = serde_json::from_slice(&output.stdout).expect("JSON agent list");
        assert_eq!(agents[0]["id"], "a1", "--master {masters}");
    }

    let elsewhere = FakeStandby::start(Some("http://leader.example:8090"));
    let err = failure(&cluster.cli_via(&format!("{},{dead}", elsewhere.url), &["agent", "list"]));
    assert!(
        err.starts_with("error: cannot reach a leading Baton master: "),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}: standby (leader at http://leader.example:8090); {dead}: ",
            elsewhere.url
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connection refused"), "{err}");

    // One URL: the call goes to it, and a standby's answer reaches the user as it is.
    let err = failure(&cluster.cli_via(&standby.url, &["agent", "list"]));
    assert_eq!(
        err.trim_end(),
        format!("error: standby master: the leader is at {leader}")
    );

    let usage = cluster.cli_via(&format!("{leader},"), &["agent", "list"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "an empty entry is a usage error"
    );
}

/// Starts agent `id` with `--master masters`; returns how long it took to show as connected.
fn register(cluster: &mut TestCluster, id: &str, masters: &str) -> Duration {
    let started = Instant::now();
    cluster.start_agent_via(id, 1, masters);
    loop {
        let agents = cluster.json(&["agent", "list"]);
        let connected = agents
            .as_array()
            .expect("agent list")
            .iter()
            .any(|a| a["id"] == id && a["connected"] == true);
        if connected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "agent {id} (--master {masters}) did not register:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agents_follow_the_leader_without_backing_off() {
    let mut cluster = TestCluster::start(&[], &[]);
    let leader = cluster.url.clone();
    let standby = FakeStandby::start(Some(&leader));
    let no_leader = FakeStandby::start(None);
    let dead = dead_master_url();

    let took = register(&mut cluster, "listed", &format!("{},{leader}", standby.url));
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // The leader a standby names is followed even when it is not listed.
    let took = register(&mut cluster, "named", &standby.url);
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // Five masters that are no use before the leader: backing off after each (200 ms doubling)
    // would take over 6 s; only a full round without a session backs off.
    let masters = [
        &no_leader.url,
        &dead,
        &no_leader.url,
        &dead,
        &no_leader.url,
        &leader,
    ];
    let masters: Vec<&str> = masters.iter().map(|s| s.as_str()).collect();
    let took = register(&mut cluster, "far", &masters.join(","));
    assert!(took < Duration::from_secs(4), "took {took:?}");

    let log = std::fs::read_to_string(cluster.dir.path().join("logs/agent-named.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("connected to master") && l.contains(&leader)),
        "the agent logs the master it is connected to:\n{log}"
    );
    assert!(
        log.contains("does not list"),
        "following an unlisted leader is logged:\n{log}"
    );
}

#[test]
fn an_agent_refuses_a_bad_master_list() {
    let cluster = TestCluster::start(&[], &[]);
    let output = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton-agent"))
        .args(["--master", &format!("{},master:8090", cluster.url)])
        .args(["--slots", "1", "--work-dir"])
        .arg(cluster.dir.path().join("bad-agent"))
        .output()
        .expect("baton-agent runs");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("\"master:8090\" must start with http:// or https://"),
        "{err}"
    );
}
