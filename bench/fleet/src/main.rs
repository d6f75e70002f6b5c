//! `baton-fleet`: a real `baton-master` under a fleet of simulated agents and trials over real
//! gRPC streams, once with its database on disk and once on tmpfs, figures side by side.

mod agent;
mod experiment;
mod figures;
mod fleet;
mod master;
mod populate;
mod prom;
mod run;
mod run_database;
mod trial;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use run::{Load, StoreDir};
use run_database::RunDatabase;

/// Fleet-scale benchmark of the master: registration, placement, report throughput, heartbeat
/// acknowledgement latency, CPU and memory.
#[derive(Debug, Parser)]
#[command(name = "baton-fleet")]
struct Args {
    /// Simulated agents, each with its own stream.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Slots (simulated GPUs) per agent.
    #[arg(long, default_value_t = 8)]
    slots: usize,
    /// Trials of the experiment (one slot each; at most 10000).
    #[arg(long, default_value_t = 1000)]
    trials: usize,
    /// Training steps per second of each trial, one report each.
    #[arg(long, default_value_t = 1.0)]
    steps_per_second: f64,
    /// Steps between validations.
    #[arg(long, default_value_t = 50)]
    validation_period: u64,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    checkpoint_period: u64,
    /// Steps each trial trains for (trials that finish before the pause leave it unmeasured).
    #[arg(long, default_value_t = 1_000_000)]
    max_length: u64,
    /// Size of the experiment's context directory in KiB (sent with every start).
    #[arg(long, default_value_t = 0)]
    context_kib: usize,
    /// Seconds of reports before the measured window.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 20)]
    window: u64,
    /// Directory for the on-disk run (its database and log).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    disk_dir: PathBuf,
    /// Directory on tmpfs for the peer run.
    #[arg(long, default_value = "/dev/shm")]
    tmpfs_dir: PathBuf,
    /// Skip the peer run on tmpfs.
    #[arg(long)]
    no_peer: bool,
    /// Also run against a master keeping its state on this PostgreSQL server (a URL with a
    /// database to connect to; each run creates and drops a database of its own).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Instead of measuring: run the experiment to completion on a master whose database is left
    /// in this (empty) directory, and print the experiment's id (for the dashboard benchmark).
    #[arg(long, value_name = "DIR")]
    populate: Option<PathBuf>,
    /// The master binary (default: baton-master next to this binary).
    #[arg(long)]
    master_bin: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.steps_per_second > 0.0,
        "--steps-per-second must be positive"
    );
    let binary = match args.master_bin {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("baton-master"),
    };
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: cargo build --release -p baton-master",
        binary.display()
    );
    let load = Load {
        agents: args.agents,
        slots: args.slots,
        trials: args.trials,
        steps_per_second: args.steps_per_second,
        validation_period: args.validation_period,
        checkpoint_period: args.checkpoint_period,
        max_length: args.max_length,
        warmup: Duration::from_secs(args.warmup),
        window: Duration::from_secs(args.window),
        context_kib: args.context_kib,
    };
    if let Some(data_dir) = &args.populate {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let experiment = runtime.block_on(populate::populate(&load, &binary, data_dir))?;
        println!("{experiment}");
        return Ok(());
    }
    let mut stores = vec![StoreDir {
        name: "disk".into(),
        root: args.disk_dir.clone(),
        postgres: None,
    }];
    if !args.no_peer {
        stores.push(StoreDir {
            name: "tmpfs".into(),
            root: args.tmpfs_dir,
            postgres: None,
        });
    }
    if let Some(server) = args.postgres {
        stores.push(StoreDir {
            name: "postgres".into(),
            root: args.disk_dir,
            postgres: Some(server),
        });
    }
    println!(
        "{} agents x {} slots, {} trials, {} steps/s per trial (validation every {}, checkpoint every {} steps), context {} KiB, window {} s after {} s",
        load.agents,
        load.slots,
        load.trials,
        load.steps_per_second,
        load.validation_period,
        load.checkpoint_period,
        load.context_kib,
        args.window,
        args.warmup
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for store in &stores {
        eprintln!(
            "running against a master with its database in {}",
            store.root.display()
        );
        let database = store
            .postgres
            .as_deref()
            .map(RunDatabase::create)
            .transpose()?;
        let url = database.as_ref().map(|d| d.url.as_str());
        let mut figures = runtime.block_on(run::run(&load, store, url, &binary))?;
        if let Some(database) = &database {
            figures.database_bytes = database.bytes()?;
        }
        results.push(figures);
    }
    figures::print_table(&results);
    Ok(())
}
