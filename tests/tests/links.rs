//! Commands given while an agent's link to the master is cut take effect once it heals.

use std::time::Duration;

use baton_cluster_tests::linreg::{
    agent_of, checkpointed_and_past_step_28, exit_reasons, reference_run, slow_single,
};
use baton_cluster_tests::{LinkProxy, TestCluster, repo_root, wait_until};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// A cluster whose agent `behind` reaches the master through a proxy the test can cut, and whose
/// agent `direct` does not; one slow linreg trial runs on `behind` past its first checkpoint.
struct CutCluster {
    cluster: TestCluster,
    proxy: LinkProxy,
    experiment: u64,
    trial: u64,
}

impl CutCluster {
    fn start() -> (Self, Value) {
        let mut cluster = TestCluster::start(&[], &[]);
        let proxy = LinkProxy::start(cluster.master_address());
        cluster.start_agent_via("behind", 1, &proxy.url());
        cluster.wait_for_agents(1);
        let reference = reference_run(&cluster).0;
        let experiment = cluster.create_experiment(
            &slow_single(&cluster, "0.1", &[]),
            &repo_root().join("examples/linreg"),
        );
        let trial = cluster.first_trial(experiment);
        let running =
            cluster.wait_for_trial(trial, "a checkpoint", MINUTE, checkpointed_and_past_step_28);
        assert_eq!(agent_of(&running), "behind");
        cluster.start_agent("direct", 1);
        cluster.wait_for_agents(2);
        let cut = Self {
            cluster,
            proxy,
            experiment,
            trial,
        };
        (cut, reference)
    }

    /// Cuts the proxy and waits until the master sees the agent disconnected.
    fn cut(&self) {
        self.proxy.cut();
        wait_until("the master to see the cut", MINUTE, || {
            !self.agent("behind")["connected"].as_bool().unwrap_or(true)
        });
    }

    fn agent(&self, id: &str) -> Value {
        let agents = self.cluster.json(&["agent", "list"]);
        agents
            .as_array()
            .expect("agent list")
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("agent {id} is listed: {agents:#}"))
    }
}

#[test]
fn a_move_and_a_pause_given_while_the_link_is_cut_happen_once_it_heals() {
    let (cut, reference) = CutCluster::start();
    let (cluster, trial, experiment) = (&cut.cluster, cut.trial, cut.experiment);

    cut.cut();
    cluster.cli_ok(&["trial", "move", &trial.to_string(), "--to", "direct"]);
    let waiting = cluster.trial(trial);
    assert_eq!(waiting["state"], "SUSPENDING", "{waiting:#}");
    let reason = waiting["state_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("moved") && reason.contains("disconnected"),
        "describe says what the master waits for: {waiting:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    cut.proxy.heal();
    let moved = cluster.wait_for_trial(trial, "the move after the link healed", MINUTE, |t| {
        t["state"] == "RUNNING" && agent_of(t) == "direct"
    });
    assert_eq!(exit_reasons(&moved)[0], "moved", "{moved:#}");

    // The other way round: the trial now runs on the direct agent, the cut agent is idle; a pause
    // reaches the running trial, and the cut agent rejoins and takes the resumed trial.
    cluster.cli_ok(&["trial", "move", &trial.to_string(), "--to", "behind"]);
    cluster.wait_for_trial(trial, "back behind the proxy", MINUTE, |t| {
        t["state"] == "RUNNING" && agent_of(t) == "behind"
    });
    cut.cut();
    cluster.cli_ok(&["experiment", "pause", &experiment.to_string()]);
    std::thread::sleep(Duration::from_secs(2));
    cut.proxy.heal();
    cluster.wait_for_trial(trial, "the pause after the link healed", MINUTE, |t| {
        t["state"] == "PAUSED"
    });
    assert!(
        cluster.trial_process(trial).is_none(),
        "a paused trial runs nowhere"
    );
    cluster.cli_ok(&["experiment", "activate", &experiment.to_string()]);
    cluster.wait_for_experiment(experiment, "COMPLETED", Duration::from_secs(120));

    let done = cluster.trial(trial);
    let reasons = exit_reasons(&done);
    assert_eq!(reasons[..3], ["moved", "moved", "paused"], "{done:#}");
    assert_eq!(reasons.last().map(String::as_str), Some("completed"));
    assert_eq!(done["restarts"], 0);
    assert_eq!(
        cluster.final_weights(experiment, 200),
        reference,
        "the moved and paused trial ends exactly like an uninterrupted run"
    );
}

#[test]
fn a_kill_given_while_the_link_is_cut_takes_effect_once_it_heals() {
    let (cut, _) = CutCluster::start();
    let (cluster, trial, experiment) = (&cut.cluster, cut.trial, cut.experiment);
    let pid = cluster
        .trial_process(trial)
        .expect("the trial process runs");

    cut.cut();
    cluster.cli_ok(&["experiment", "kill", &experiment.to_string()]);
    assert_eq!(cluster.trial(trial)["state"], "KILLING");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the kill cannot reach the agent during the cut"
    );
    cut.proxy.heal();
    let done = cluster.wait_for_trial(trial, "the kill after the link healed", MINUTE, |t| {
        t["state"] == "CANCELED"
    });
    assert!(
        cluster.trial_process(trial).is_none(),
        "the trial process is gone"
    );
    assert_eq!(
        cluster.json(&["experiment", "describe", &experiment.to_string()])["state"],
        "CANCELED"
    );
    assert_eq!(exit_reasons(&done), ["canceled"], "{done:#}");
}
