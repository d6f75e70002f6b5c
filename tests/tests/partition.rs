//! A real network partition longer than the master's deadline: the cut-off agent stops its trial
//! before the master restarts it elsewhere, and its late reports are fenced.

use std::time::{Duration, Instant};

use baton_cluster_tests::linreg::{
    SlowTrial, agent_of, assert_no_checkpoint_after_fence, running_on_other_agent, start_slow_trial,
};
use baton_cluster_tests::{Netns, TestCluster, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

/// The namespace, or None (with the reason printed) where this machine cannot make one. Under CI
/// the test must run: it fails instead.
fn netns_or_skip() -> Option<Netns> {
    match Netns::create() {
        Ok(netns) => Some(netns),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "skipped: cannot build a network namespace here ({e}); run as root with iproute2"
            );
            None
        }
        Err(e) => panic!("cannot build a network namespace under CI: {e}"),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_partition_longer_than_the_deadline_never_runs_a_trial_twice() {
    let Some(netns) = netns_or_skip() else {
        return;
    };
    let listen = format!("{}:0", netns.host_address);
    // The test made the address up and nothing else can reach it: no tokens needed.
    let mut cluster = TestCluster::start_on(&listen, &[], &["--agent-timeout", "6", "--insecure"]);
    let url = cluster.url.clone();
    cluster.start_agent_in_netns(&netns.name, "cut", &url, &["--fence-window", "3"]);
    cluster.wait_for_agents(1);
    let SlowTrial {
        reference,
        experiment: id,
        trial,
        described: before,
        pid,
    } = start_slow_trial(&cluster, "0.1");
    assert_eq!(agent_of(&before), "cut");
    let stale_allocation = before["allocations"][0]["id"].as_str().unwrap().to_string();
    cluster.start_agent_with("other", 1, &url, &[]);
    cluster.wait_for_agents(2);

    netns.cut();
    let cut = Instant::now();
    wait_until("the cut-off agent to stop its trial", MINUTE, || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let fenced = cut.elapsed();
    let fenced_ms = now_ms();
    let moved = cluster.wait_for_trial(trial, "the trial to resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, "cut", 0)
    });
    let resumed = cut.elapsed();
    let restarted_ms = moved["allocations"][1]["started_ms"].as_i64().unwrap();
    eprintln!(
        "partition to trial stopped on the cut-off agent: {fenced:?}; to trial resumed elsewhere: {resumed:?}"
    );
    assert!(
        fenced_ms <= restarted_ms + 100,
        "the cut-off copy stopped before the new one started (stopped {fenced_ms}, started {restarted_ms})"
    );
    assert_eq!(moved["allocations"][0]["exit_reason"], "agent-lost");
    // Keep the partition past the deadline, then heal it.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed()));
    netns.heal();
    let healed = Instant::now();
    wait_until("the cut-off agent to rejoin", MINUTE, || {
        cluster
            .json(&["agent", "list"])
            .as_array()
            .is_some_and(|agents| {
                agents
                    .iter()
                    .any(|a| a["id"] == "cut" && a["connected"] == true)
            })
    });
    eprintln!("partition healed to agent rejoined: {:?}", healed.elapsed());

    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let done = cluster.trial(trial);
    assert_eq!(
        done["allocations"][0]["exit_reason"], "agent-lost",
        "the stale allocation's late exit is not recorded: {done:#}"
    );
    let end_step = moved["allocations"][0]["end_step"].as_u64().unwrap();
    assert_no_checkpoint_after_fence(&cluster, id, &stale_allocation, end_step);
    // The checkpoint the cut-off agent wrote when it fenced itself is deleted, not left behind.
    let fenced: Vec<String> = cluster
        .json(&["experiment", "list-checkpoints", &id.to_string(), "--all"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["step"].as_u64() > Some(end_step))
        .filter(|c| {
            let uuid = c["uuid"].as_str().unwrap();
            cluster.json(&["checkpoint", "describe", uuid])["metadata"]["allocation_id"]
                == stale_allocation.as_str()
        })
        .map(|c| c["uuid"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !fenced.is_empty(),
        "the cut-off agent's suspend checkpoint was reported after the heal"
    );
    wait_until("fenced checkpoints to be deleted", MINUTE, || {
        fenced
            .iter()
            .all(|uuid| cluster.json(&["checkpoint", "describe", uuid])["state"] == "DELETED")
    });
    for uuid in &fenced {
        assert!(
            !cluster.storage().join(uuid).exists(),
            "{uuid} is gone from storage"
        );
    }
    assert_eq!(cluster.final_weights(id, 200), reference);
}
