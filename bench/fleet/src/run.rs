//! One run: a master on one store, the fleet registered, an experiment placed, a steady window of
//! training reports measured, then every trial paused and the experiment killed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use baton_common::proto::admin_service_client::AdminServiceClient;
use baton_common::proto::{CreateExperimentRequest, ExperimentRef};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::agent::{self, AgentSpec};
use crate::experiment::{context, experiment_config, is_active, stopped_all};
use crate::figures::Figures;
use crate::fleet::Fleet;
use crate::master::{Master, cpu_seconds};
use crate::prom::{Scrape, max_bound, quantile};

/// The load a run puts on the master.
#[derive(Debug, Clone)]
pub struct Load {
    /// Simulated agents.
    pub agents: usize,
    /// Slots per agent.
    pub slots: usize,
    /// Trials of the experiment.
    pub trials: usize,
    /// Steps per second of each trial (one training report each).
    pub steps_per_second: f64,
    /// Steps between validations.
    pub validation_period: u64,
    /// Steps between checkpoints.
    pub checkpoint_period: u64,
    /// Steps each trial trains for.
    pub max_length: u64,
    /// Seconds of reports before the window.
    pub warmup: Duration,
    /// Seconds of the measured window.
    pub window: Duration,
    /// Size of the experiment's context directory (one file), in KiB.
    pub context_kib: usize,
}

/// Where a run's master keeps its database.
#[derive(Debug, Clone)]
pub struct StoreDir {
    /// Shown in the table.
    pub name: String,
    /// Directory under which the run's directory is made.
    pub root: PathBuf,
    /// A PostgreSQL server to keep the master's state on instead of SQLite (a database per run).
    pub postgres: Option<String>,
}

/// Longest wait for registration, placement or a pause.
const PHASE_LIMIT: Duration = Duration::from_secs(180);

/// Runs `load` against a fresh `binary` master whose run directory is under `store.root`, its
/// state in `database` (a PostgreSQL URL) when given.
pub async fn run(
    load: &Load,
    store: &StoreDir,
    database: Option<&str>,
    binary: &Path,
) -> anyhow::Result<Figures> {
    let run_dir = tempfile::Builder::new()
        .prefix("baton-fleet-")
        .tempdir_in(&store.root)?;
    let data_dir = run_dir.path().join("data");
    let master = Master::start(binary, run_dir.path(), &data_dir, database).await?;
    let result = measure(load, &master, run_dir.path()).await;
    if result.is_err() {
        eprintln!("master log tail:\n{}", master.log_tail());
    }
    let (rss, peak) = master.memory();
    master.stop().await;
    let mut figures = result?;
    figures.store = store.name.clone();
    figures.rss = (rss, peak);
    figures.database_bytes = directory_bytes(&data_dir);
    Ok(figures)
}

async fn measure(load: &Load, master: &Master, run_dir: &Path) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let fleet = Arc::new(Fleet::default());
    let (stop, stopped) = watch::channel(false);
    let step_period = Duration::from_secs_f64(1.0 / load.steps_per_second);
    let started = Instant::now();
    let mut agents = JoinSet::new();
    for index in 0..load.agents {
        let spec = AgentSpec::new(index, load.agents, load.slots, step_period);
        let (url, fleet, stopped) = (master.url.clone(), fleet.clone(), stopped.clone());
        agents.spawn(async move {
            let result = agent::run(url, spec, fleet.clone(), stopped).await;
            if let Err(e) = &result {
                if Fleet::get(&fleet.sessions_failed) == 0 {
                    eprintln!("agent session failed: {e}");
                }
                Fleet::add(&fleet.sessions_failed, 1);
            }
        });
    }
    wait_for("agents to register", || {
        Fleet::get(&fleet.registered) + Fleet::get(&fleet.sessions_failed) >= load.agents as u64
    })
    .await?;
    let failed = Fleet::get(&fleet.sessions_failed);
    anyhow::ensure!(failed == 0, "{failed} agent sessions failed to register");
    figures.register_s = started.elapsed().as_secs_f64();

    let mut admin = AdminServiceClient::connect(master.url.clone()).await?;
    let before_create = master.scrape().await?;
    let capacity = load.trials.min(load.agents * load.slots) as u64;
    let created = Instant::now();
    let experiment = admin
        .create_experiment(CreateExperimentRequest {
            config_yaml: experiment_config(load, &run_dir.join("checkpoints")),
            context: Some(context(load.context_kib)),
        })
        .await?
        .into_inner()
        .id;
    figures.create_call_s = created.elapsed().as_secs_f64();
    wait_for("trials to be placed", || {
        Fleet::get(&fleet.starts) >= capacity
    })
    .await?;
    figures.place_s = created.elapsed().as_secs_f64();
    figures.placed = (Fleet::get(&fleet.starts), capacity);
    let placed = master.scrape().await?;
    let (count, total, buckets) = passes(&placed, &before_create);
    figures.placing_passes = (count, max_bound(&buckets), total);

    tokio::time::sleep(load.warmup).await;
    let before = master.scrape().await?;
    let (master_cpu, own_cpu) = (master.cpu_seconds(), cpu_seconds("/proc/self/stat"));
    let reports = Fleet::get(&fleet.reports);
    let window = Instant::now();
    fleet.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(load.window).await;
    fleet.measuring.store(false, Ordering::Relaxed);
    let seconds = window.elapsed().as_secs_f64();
    let after = master.scrape().await?;
    figures.master_cores = (master.cpu_seconds() - master_cpu) / seconds;
    figures.simulator_cores = (cpu_seconds("/proc/self/stat") - own_cpu) / seconds;
    figures.offered_per_s = (Fleet::get(&fleet.reports) - reports) as f64 / seconds;
    let received = "baton_agent_reports_received_total";
    let accepted: f64 = ["training", "validation", "checkpoint"]
        .iter()
        .map(|kind| {
            after.sum(received, &[("kind", kind)]) - before.sum(received, &[("kind", kind)])
        })
        .sum();
    figures.accepted_per_s = accepted / seconds;
    figures.messages_per_s = (after.sum(received, &[]) - before.sum(received, &[])) / seconds;
    let cost = after.buckets_since(
        &before,
        "baton_master_command_duration_seconds",
        &[("command", "agent_report")],
    );
    figures.report_cost = (quantile(&cost, 0.5), quantile(&cost, 0.99));
    let (count, total, buckets) = passes(&after, &before);
    figures.steady_passes = (count, quantile(&buckets, 0.99), total / count.max(1.0));
    figures.queue_depth = after.sum("baton_master_command_queue_depth", &[]);
    figures.acks = percentiles(fleet.take_acks());

    let active = is_active(&mut admin, experiment).await?;
    if active {
        figures.pause_s = Some(pause(&mut admin, experiment, &fleet).await?);
    }
    let end = master.scrape().await?;
    figures.checkpoints = (
        Fleet::get(&fleet.checkpoints),
        end.sum("baton_checkpoints_committed_total", &[]) as u64,
    );
    figures.lost = (
        end.sum("baton_agents", &[("state", "disconnected")]),
        end.sum("baton_allocations_ended_total", &[("reason", "agent-lost")]),
    );
    if active {
        admin
            .kill_experiment(ExperimentRef { id: experiment })
            .await?;
    }
    figures.master_cpu_s = master.cpu_seconds();
    let _ = stop.send(true);
    while agents.join_next().await.is_some() {}
    figures.sessions_failed = Fleet::get(&fleet.sessions_failed);
    Ok(figures)
}

/// Pauses the experiment; returns the seconds until the agents exited every trial and until the
/// master showed every trial stopped.
async fn pause(
    admin: &mut AdminServiceClient<Channel>,
    experiment: u64,
    fleet: &Fleet,
) -> anyhow::Result<(f64, f64)> {
    let paused = Instant::now();
    admin
        .pause_experiment(ExperimentRef { id: experiment })
        .await?;
    wait_for("every trial to suspend", || {
        fleet.running.load(Ordering::Relaxed) <= 0
    })
    .await?;
    let exited = paused.elapsed().as_secs_f64();
    while !stopped_all(admin, experiment).await? {
        anyhow::ensure!(
            paused.elapsed() < PHASE_LIMIT,
            "gave up waiting for the master to record every trial stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((exited, paused.elapsed().as_secs_f64()))
}

/// Scheduling passes between two scrapes: their count, total seconds and cumulative buckets.
fn passes(now: &Scrape, before: &Scrape) -> (f64, f64, Vec<(f64, f64)>) {
    let name = "baton_master_schedule_pass_duration_seconds";
    let buckets = now.buckets_since(before, name, &[]);
    let count = buckets.last().map_or(0.0, |b| b.1);
    let sum = format!("{name}_sum");
    (count, now.sum(&sum, &[]) - before.sum(&sum, &[]), buckets)
}

/// Polls `done` every 5 ms; fails after [`PHASE_LIMIT`].
async fn wait_for(what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_LIMIT;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {PHASE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Count, p50, p99 and max of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (usize, Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (samples.len(), at(0.5), at(0.99), at(1.0))
}

/// Bytes of the files directly in `dir`.
fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|m| m.len())
        .sum()
}
