//! Moving a running trial every way an operator can: `agent disable`, `trial move`, and
//! `experiment pause` / `activate`.

use std::time::Duration;

use serde_json::Value;

use crate::TestCluster;
use crate::linreg::{agent_of, running_on_other_agent};

const MINUTE: Duration = Duration::from_secs(60);

/// Moves the running trial `trial_id` of experiment `id` by disabling its agent, by `trial move`
/// back to that agent, and by pausing and activating the experiment (needs two agents, the trial
/// running past step 5), waits for it to complete and returns it; each run resumed at the step
/// the previous one checkpointed.
pub fn move_three_ways(cluster: &TestCluster, id: u64, trial_id: u64) -> Value {
    let trial = cluster.wait_for_trial(trial_id, "running", MINUTE, |t| {
        t["steps_completed"].as_u64() > Some(5)
    });
    let first = agent_of(&trial);

    cluster.cli_ok(&["agent", "disable", &first]);
    let trial = cluster.wait_for_trial(trial_id, "resume after disable", MINUTE, |t| {
        running_on_other_agent(t, &first, 0)
    });
    let second = agent_of(&trial);
    let steps = trial["steps_completed"].as_u64().unwrap();
    cluster.cli_ok(&["agent", "enable", &first]);

    cluster.cli_ok(&["trial", "move", &trial_id.to_string(), "--to", &first]);
    let trial = cluster.wait_for_trial(trial_id, "resume after move", MINUTE, |t| {
        running_on_other_agent(t, &second, steps)
    });
    assert_eq!(agent_of(&trial), first, "moved to the named agent");
    let steps = trial["steps_completed"].as_u64().unwrap();

    cluster.cli_ok(&["experiment", "pause", &id.to_string()]);
    cluster.wait_for_trial(trial_id, "suspend on pause", MINUTE, |t| {
        t["state"] == "PAUSED"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        cluster.trial(trial_id)["state"],
        "PAUSED",
        "a paused experiment's trial stays paused"
    );
    cluster.cli_ok(&["experiment", "activate", &id.to_string()]);
    cluster.wait_for_trial(trial_id, "resume after activate", MINUTE, |t| {
        t["state"] == "RUNNING" && t["steps_completed"].as_u64() > Some(steps)
    });

    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(180));
    let trial = cluster.trial(trial_id);
    let reasons: Vec<&str> = trial["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["exit_reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["suspended-by-disable", "moved", "paused", "completed"],
        "{trial:#}"
    );
    let allocations = trial["allocations"].as_array().unwrap();
    for pair in allocations.windows(2) {
        assert_eq!(
            pair[1]["start_step"], pair[0]["end_step"],
            "each run resumes at the step the previous one checkpointed: {trial:#}"
        );
    }
    assert_eq!(trial["restarts"], 0);
    trial
}
