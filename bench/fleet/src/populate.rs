//! A master's data directory filled by a fleet: the experiment run to completion, every report
//! stored, for benchmarks that read a finished experiment (the web dashboard's page loads).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_common::proto::CreateExperimentRequest;
use baton_common::proto::admin_service_client::AdminServiceClient;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::agent::{self, AgentSpec};
use crate::experiment::{context, experiment_config, is_active};
use crate::fleet::Fleet;
use crate::master::Master;
use crate::run::Load;

/// Longest wait for the experiment to complete.
const COMPLETION_LIMIT: Duration = Duration::from_secs(900);

/// Runs `load`'s experiment to completion on a fresh `binary` master whose database is in
/// `data_dir` (left there); returns the experiment's id.
pub async fn populate(load: &Load, binary: &Path, data_dir: &Path) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !data_dir.join("baton.db").exists(),
        "{} already holds a database: give an empty directory",
        data_dir.display()
    );
    std::fs::create_dir_all(data_dir)?;
    let run_dir = tempfile::Builder::new()
        .prefix("baton-populate-")
        .tempdir()?;
    let master = Master::start(binary, run_dir.path(), data_dir, None).await?;
    let fleet = Arc::new(Fleet::default());
    let (stop, stopped) = watch::channel(false);
    let step_period = Duration::from_secs_f64(1.0 / load.steps_per_second);
    let mut agents = JoinSet::new();
    for index in 0..load.agents {
        let spec = AgentSpec::new(index, load.agents, load.slots, step_period);
        let (url, fleet, stopped) = (master.url.clone(), fleet.clone(), stopped.clone());
        agents.spawn(async move { agent::run(url, spec, fleet, stopped).await });
    }
    let mut admin = AdminServiceClient::connect(master.url.clone()).await?;
    let experiment = admin
        .create_experiment(CreateExperimentRequest {
            config_yaml: experiment_config(load, &run_dir.path().join("checkpoints")),
            context: Some(context(load.context_kib)),
        })
        .await?
        .into_inner()
        .id;
    let started = Instant::now();
    while is_active(&mut admin, experiment).await? {
        if started.elapsed() > COMPLETION_LIMIT {
            eprintln!("master log tail:\n{}", master.log_tail());
            anyhow::bail!("experiment {experiment} did not complete in {COMPLETION_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    while agents.join_next().await.is_some() {}
    master.stop().await;
    eprintln!(
        "experiment {experiment} completed in {:.1} s: {} training reports",
        started.elapsed().as_secs_f64(),
        Fleet::get(&fleet.reports)
    );
    Ok(experiment)
}
