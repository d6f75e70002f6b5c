//! Setting up the simulated cluster: the master loaded on the manual clock, and experiments.

use std::sync::Arc;
use std::time::Duration;

use baton_common::proto::{Context, ContextFile};
use tokio::sync::mpsc;

use super::{AGENT_TIMEOUT, CHECKPOINT_PERIOD, HEARTBEAT, MAX_LENGTH, TICK, World};
use crate::cluster::clock::ManualClock;
use crate::cluster::desired::Deadlines;
use crate::cluster::handle::ClusterHandle;
use crate::cluster::state::{Cluster, ClusterSettings};
use crate::store::{Database, Store};

impl World {
    /// Creates an experiment of `trials` trials (a grid) at `priority`; returns its id.
    pub fn create_experiment(&mut self, trials: usize, priority: u32) -> u64 {
        let values: Vec<String> = (0..trials).map(|i| (i + 1).to_string()).collect();
        let yaml = format!(
            "name: sim\nentrypoint: python3 train.py\n\
             hyperparameters:\n  seed: {{type: categorical, vals: [{}]}}\n\
             searcher: {{name: grid, metric: loss, max_length: {MAX_LENGTH}}}\n\
             resources: {{slots_per_trial: 1, priority: {priority}}}\n\
             min_checkpoint_period: {CHECKPOINT_PERIOD}\nmax_restarts: 1000\npreemption_timeout: 10\n\
             restart_backoff: {{initial_seconds: 0.5, max_seconds: 2}}\n\
             checkpoint_storage: {{type: shared_fs, host_path: /nonexistent/baton-simulation, save_trial_latest: 1000}}\n",
            values.join(", ")
        );
        self.create(yaml)
    }

    /// Creates an `adaptive_asha` experiment of `trials` trials in one bracket, rungs of 10, 20
    /// and 40 steps, the better half promoted from each, at most `concurrent` training at once
    /// (0: no limit); returns its id.
    pub fn create_adaptive_experiment(&mut self, trials: u32, concurrent: u32) -> u64 {
        let yaml = format!(
            "name: sim-asha\nentrypoint: python3 train.py\n\
             hyperparameters:\n  seed: {{type: int, minval: 1, maxval: 1000000}}\n\
             searcher: {{name: adaptive_asha, metric: loss, max_length: {MAX_LENGTH}, \
             max_trials: {trials}, divisor: 2, max_rungs: 3, mode: aggressive, \
             max_concurrent_trials: {concurrent}}}\n\
             resources: {{slots_per_trial: 1}}\n\
             min_checkpoint_period: {CHECKPOINT_PERIOD}\nmax_restarts: 1000\npreemption_timeout: 10\n\
             restart_backoff: {{initial_seconds: 0.5, max_seconds: 2}}\n\
             checkpoint_storage: {{type: shared_fs, host_path: /nonexistent/baton-simulation, save_trial_latest: 1000}}\n"
        );
        self.create(yaml)
    }

    fn create(&mut self, yaml: String) -> u64 {
        let context = Context {
            files: vec![ContextFile {
                path: "train.py".into(),
                content: b"pass\n".to_vec(),
                mode: 0o644,
            }],
        };
        let prepared =
            crate::prepare::prepare_experiment(yaml, context).expect("a valid experiment");
        self.cluster
            .create_experiment(prepared)
            .expect("experiment is created")
    }
}

/// A master on `clock` with its state in `database` (in memory when None), and its commands.
pub(super) fn load(
    clock: &ManualClock,
    database: Option<&tempfile::TempDir>,
) -> (Cluster, mpsc::Receiver<crate::cluster::Command>) {
    let (handle, commands) = ClusterHandle::detached();
    let settings = ClusterSettings {
        tick: TICK,
        heartbeat_interval: HEARTBEAT,
        agent_timeout: AGENT_TIMEOUT,
        sweep_interval: Duration::from_secs(86_400 * 365),
        upload_grace: Duration::from_secs(86_400),
        agent_tokens: Default::default(),
        deadlines: Deadlines {
            resend_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(5),
            start_timeout: Duration::from_secs(60),
        },
        ..ClusterSettings::default()
    };
    let store = match database {
        Some(dir) => Store::open(&Database::Sqlite(dir.path().join("baton.db")), None),
        None => Store::in_memory(),
    };
    let cluster = Cluster::load_with_clock(
        store.expect("the store opens"),
        settings,
        handle,
        Arc::new(clock.clone()),
    )
    .expect("cluster loads");
    (cluster, commands)
}
