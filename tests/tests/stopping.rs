//! Daemons stopped with SIGTERM, as systemd stops them, exit at once with status 0 while agents,
//! trials and log followers are connected; the trial runs on through their restart.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use baton_cluster_tests::http::wait_for_api;
use baton_cluster_tests::linreg::start_slow_trial;
use baton_cluster_tests::operations::terminate;
use baton_cluster_tests::{TestCluster, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

/// Longest a daemon may take to exit after SIGTERM.
const PROMPT: Duration = Duration::from_secs(5);

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_master_stopped_with_sigterm_exits_at_once_and_its_trial_runs_on_through_the_restart() {
    let mut cluster = TestCluster::start(&["a1", "a2"], &["--http-listen", "127.0.0.1:0"]);
    let slow = start_slow_trial(&cluster, "0.05");
    let trial = slow.trial.to_string();
    let mut follower = cluster.cli_in_background("follow", &["trial", "logs", &trial, "--follow"]);
    wait_until("the follower to print output", MINUTE, || {
        cluster.background_output("follow").0.contains("step ")
    });
    // An HTTP client that stays connected halfway through its request.
    let mut idle = TcpStream::connect(wait_for_api(&cluster)).expect("HTTP API connection");
    idle.write_all(b"GET /api/v1/experiments HTTP/1.1\r\nHost: baton\r\n")
        .expect("half a request");

    let stopped = cluster.terminate_master(0, Duration::from_secs(40));
    eprintln!("SIGTERM to master exit: {:?}", stopped.took);
    assert!(
        stopped.cleanly() && stopped.took < PROMPT,
        "the master exits 0 within {PROMPT:?} of SIGTERM: {stopped:?}\n{}",
        cluster.logs()
    );
    let follower_ended = exits_by_itself(&mut follower, Instant::now());
    let (_, said) = cluster.background_output("follow");
    assert!(
        follower_ended && said.contains("the master is shutting down"),
        "the follower ends at once, saying why: {said}"
    );
    assert!(alive(slow.pid), "the trial outlives the master");

    cluster.start_master();
    slow.assert_completed_in_one_allocation(&cluster);
    for (step, stored) in slow.step_lines_stored(&cluster) {
        assert_eq!(stored, 1, "step {step}'s output is stored once");
    }
}

/// Whether `child` exits by itself within 5 s of `since`; it is killed otherwise.
fn exits_by_itself(child: &mut std::process::Child, since: Instant) -> bool {
    while since.elapsed() < PROMPT {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(child, Duration::from_secs(1));
    false
}

#[test]
fn an_agent_stopped_with_sigterm_exits_at_once_and_its_restart_adopts_the_trial() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    let slow = start_slow_trial(&cluster, "0.05");

    let stopped = cluster.terminate_agent("a1", Duration::from_secs(40));
    eprintln!("SIGTERM to agent exit: {:?}", stopped.took);
    assert!(
        stopped.cleanly() && stopped.took < PROMPT,
        "the agent exits 0 within {PROMPT:?} of SIGTERM: {stopped:?}\n{}",
        cluster.logs()
    );
    assert!(alive(slow.pid), "the trial outlives its daemon");
    cluster.start_agent("a1", 1);
    let steps = cluster.trial(slow.trial)["steps_completed"].as_u64();
    cluster.wait_for_trial(slow.trial, "progress after the restart", MINUTE, |t| {
        t["steps_completed"].as_u64() > steps
    });
    assert_eq!(cluster.trial_process(slow.trial), Some(slow.pid));
    slow.assert_completed_in_one_allocation(&cluster);
}
