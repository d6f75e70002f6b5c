//! `baton-agent`: runs trials for a Baton master.

use std::path::PathBuf;
use std::time::Duration;

use baton_agent::rotation::parse_masters;
use baton_agent::slots::offered_slots;
use baton_agent::supervisor;
use baton_agent::{AgentOptions, run_agent};
use baton_common::daemon::LogFormat;
use baton_common::master_list::MasterList;
use clap::Parser;

/// The Baton agent: offers this host's slots to a master and runs its trials.
#[derive(Debug, Parser)]
#[command(name = "baton-agent", version)]
struct Args {
    /// YAML file of settings (flag names as keys); flags and BATON_* variables take precedence.
    #[arg(long, env = "BATON_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// URL of the master, e.g. http://master:8090; several, separated by commas, for a leader and
    /// standbys (the agent follows the leader).
    #[arg(long, env = "BATON_MASTER", default_value = "http://127.0.0.1:8090",
          value_parser = parse_masters)]
    master: MasterList,
    /// Agent id (defaults to the host name).
    #[arg(long, env = "BATON_AGENT_ID")]
    id: Option<String>,
    /// Number of CPU slots; when absent, NVIDIA GPUs are detected.
    #[arg(long, env = "BATON_SLOTS")]
    slots: Option<u32>,
    /// Offer only these GPUs (UUIDs as `nvidia-smi -L` prints them, comma-separated), for
    /// example to run two agents on one host.
    #[arg(
        long,
        env = "BATON_GPUS",
        value_delimiter = ',',
        conflicts_with = "slots"
    )]
    gpus: Vec<String>,
    /// Work directory for trial files.
    #[arg(long, env = "BATON_WORK_DIR", default_value = "/var/lib/baton-agent")]
    work_dir: PathBuf,
    /// Cluster join token (must match the master's).
    #[arg(long, env = "BATON_CLUSTER_TOKEN", default_value = "")]
    cluster_token: String,
    /// Seconds between SIGTERM and SIGKILL when a trial is stopped.
    #[arg(long, env = "BATON_KILL_GRACE", default_value_t = 10)]
    kill_grace: u64,
    /// Seconds a trial keeps running while no agent daemon serves it (a restart must take less);
    /// keep it below the master's --agent-timeout.
    #[arg(long, env = "BATON_TRIAL_LEASE", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    trial_lease: u64,
    /// Seconds without contact with the master after which the agent suspends its trials itself
    /// (checkpoint, commit, stop); keep it below the master's --agent-timeout.
    #[arg(long, env = "BATON_FENCE_WINDOW", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..))]
    fence_window: u64,
    /// Lines of output per second each trial may ship to the master (bursts of ten seconds'
    /// worth pass); lines beyond are dropped and the drop is logged with the trial.
    #[arg(long, env = "BATON_LOG_LINES_PER_SECOND", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    log_lines_per_second: u32,
    /// CA certificate (PEM) to verify an https:// master with, instead of the system roots.
    #[arg(long, env = "BATON_TLS_CA", value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a master that verifies agents (--tls-client-ca there).
    #[arg(long, env = "BATON_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Client key (PEM) for --tls-cert.
    #[arg(long, env = "BATON_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format on stderr (json: one object per line, for journald or Loki).
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve Prometheus metrics on this address at /metrics (off unless set).
    #[arg(long, env = "BATON_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Host or IP other agents reach this one at, for the rendezvous of distributed trials
    /// (default: the address the master sees this agent connect from).
    #[arg(long, env = "BATON_ADVERTISE_ADDRESS", value_name = "HOST")]
    advertise_address: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(supervisor::SUPERVISE_ARG) {
        std::process::exit(supervisor::main(&argv[2..]));
    }
    run_daemon()
}

#[tokio::main]
async fn run_daemon() -> anyhow::Result<()> {
    let args: Args = baton_common::layered_args::parse_layered("/etc/baton/agent.yaml");
    baton_common::daemon::init_logging(args.log_format);
    let id = match args.id {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => anyhow::bail!("--id must not be empty"),
        None => hostname(),
    };
    let options = AgentOptions {
        masters: args.master,
        id,
        slots: offered_slots(args.slots, &args.gpus).map_err(anyhow::Error::msg)?,
        work_dir: args.work_dir,
        token: args.cluster_token,
        kill_grace: Duration::from_secs(args.kill_grace),
        trial_lease: Duration::from_secs(args.trial_lease),
        fence_window: Duration::from_secs(args.fence_window),
        log_lines_per_second: args.log_lines_per_second,
        tls: baton_common::tls::ClientTls {
            ca: args.tls_ca,
            identity: args.tls_cert.zip(args.tls_key),
        },
        metrics_listen: args.metrics_listen,
        advertise_address: args.advertise_address,
    };
    run_agent(options, baton_common::daemon::shutdown_signal()).await
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".into())
}
