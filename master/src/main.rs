//! `baton-master`: runs the Baton master.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use baton_common::daemon::LogFormat;
use baton_master::auth::{AgentTokens, Authority};
use baton_master::cluster::{ClusterSettings, Deadlines};
use baton_master::server::ServerTls;
use baton_master::store::Database;
use baton_master::{MasterOptions, serve};
use clap::Parser;

/// The Baton master: schedules trials on agents and keeps the cluster's state.
#[derive(Debug, Parser)]
#[command(name = "baton-master", version)]
struct Args {
    /// YAML file of settings (flag names as keys); flags and BATON_* variables take precedence.
    #[arg(long, env = "BATON_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve gRPC on.
    #[arg(long, env = "BATON_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Directory for the database.
    #[arg(long, env = "BATON_DATA_DIR", default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    /// The database instead: postgres://USER:PASSWORD@HOST:PORT/NAME (masters sharing it take
    /// turns through its lease; TLS as libpq: ?sslmode=verify-full&sslrootcert=CA.pem) or
    /// sqlite://PATH [default: SQLite file baton.db under --data-dir].
    #[arg(long, env = "BATON_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// Seconds a master holds the PostgreSQL lease without renewing it: a standby takes over this
    /// long after the leader stops (keep it well below the agents' --fence-window).
    #[arg(long, env = "BATON_LEASE_SECONDS", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    lease_seconds: u64,
    /// URL agents and the CLI reach this master at, which standbys name to them (default: the
    /// listening address; this host's name when listening on every interface).
    #[arg(long, env = "BATON_ADVERTISE_URL", value_name = "URL")]
    advertise_url: Option<String>,
    /// Seconds without a heartbeat after which an agent is lost.
    #[arg(long, env = "BATON_AGENT_TIMEOUT", default_value_t = 15)]
    agent_timeout: u64,
    /// Seconds between sweeps of checkpoint storage for incomplete uploads (failed checkpoint
    /// deletions are retried at the same pace).
    #[arg(long, env = "BATON_SWEEP_INTERVAL_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    sweep_interval_secs: u64,
    /// Seconds an uncommitted checkpoint directory must be unchanged before a sweep deletes it.
    #[arg(long, env = "BATON_UPLOAD_GRACE_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    upload_grace_secs: u64,
    /// Seconds beyond a trial's preemption timeout before the master has a suspending trial killed
    /// (the agent's own SIGTERM/SIGKILL normally comes first).
    #[arg(long, env = "BATON_STOP_GRACE_SECS", default_value_t = 30)]
    stop_grace_secs: u64,
    /// Seconds an allocation may take to start, checkpoint restore included, before it is killed
    /// and placed again.
    #[arg(long, env = "BATON_START_TIMEOUT_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..))]
    start_timeout_secs: u64,
    /// Log format on stderr (json: one object per line, for journald or Loki).
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Token agents must present to join ("" lets any agent join).
    #[arg(long, env = "BATON_CLUSTER_TOKEN", default_value = "")]
    cluster_token: String,
    /// File of admin API tokens (name, role, SHA-256 of the token); see SECURITY.md. Without it
    /// the admin API is open, which is allowed on a loopback address only.
    #[arg(long, env = "BATON_AUTH_FILE", value_name = "FILE")]
    auth_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the listener; with --tls-key, the master serves TLS only.
    #[arg(long, env = "BATON_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the listener.
    #[arg(long, env = "BATON_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) whose certificates agents must present; clients of the HTTPS API that present one
    /// must present one of it.
    #[arg(
        long,
        env = "BATON_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Serve an open admin API on a non-loopback address anyway.
    #[arg(long, env = "BATON_INSECURE")]
    insecure: bool,
    /// Serve Prometheus metrics on this address at /metrics (off unless set).
    #[arg(long, env = "BATON_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// Serve the read-only HTTP JSON API on this address under /api/v1 (off unless set; HTTPS
    /// with --tls-cert); equal to --metrics-listen, one server answers both.
    #[arg(long, env = "BATON_HTTP_LISTEN", value_name = "HOST:PORT")]
    http_listen: Option<SocketAddr>,
    /// Write the bound address to this file once serving (useful with port 0).
    #[arg(long, env = "BATON_ADDRESS_FILE")]
    address_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = baton_common::layered_args::parse_layered("/etc/baton/master.yaml");
    baton_common::daemon::init_logging(args.log_format);
    let (auth, mut agent_tokens) = match &args.auth_file {
        Some(path) => Authority::from_file(path).map_err(anyhow::Error::msg)?,
        None if args.listen.ip().is_loopback() => (Authority::open(), AgentTokens::default()),
        None if args.insecure => {
            let auth = Authority::open_insecure(&args.listen.to_string());
            tracing::warn!("{}", auth.warning());
            (auth, AgentTokens::default())
        }
        None => anyhow::bail!(
            "refusing to serve an open admin API on {}: pass --auth-file FILE (tokens; see SECURITY.md), listen on a loopback address, or pass --insecure",
            args.listen
        ),
    };
    if let Some(address) = args
        .http_listen
        .filter(|a| auth.is_open() && !a.ip().is_loopback())
    {
        anyhow::ensure!(
            args.insecure,
            "refusing to serve an open HTTP API on {address}: pass --auth-file FILE (tokens; see SECURITY.md), use a loopback --http-listen, or pass --insecure"
        );
    }
    agent_tokens.cluster_token = args.cluster_token;
    let listener = listen(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    if let Some(path) = &args.address_file {
        let temporary = path.with_extension("partial");
        std::fs::write(&temporary, listener.local_addr()?.to_string())?;
        std::fs::rename(&temporary, path)?;
    }
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| ServerTls {
            cert,
            key,
            client_ca: args.tls_client_ca,
        });
    let database = match &args.database {
        Some(url) => url.parse().map_err(anyhow::Error::msg)?,
        None => Database::Sqlite(args.data_dir.join("baton.db")),
    };
    let options = MasterOptions {
        database,
        auth,
        tls,
        metrics_listen: args.metrics_listen,
        http_listen: args.http_listen,
        advertise_url: args.advertise_url,
        lease_ttl: Duration::from_secs(args.lease_seconds),
        cluster: ClusterSettings {
            agent_timeout: Duration::from_secs(args.agent_timeout),
            agent_tokens,
            sweep_interval: Duration::from_secs(args.sweep_interval_secs),
            upload_grace: Duration::from_secs(args.upload_grace_secs),
            deadlines: Deadlines {
                stop_grace: Duration::from_secs(args.stop_grace_secs),
                start_timeout: Duration::from_secs(args.start_timeout_secs),
                ..ClusterSettings::default().deadlines
            },
            ..ClusterSettings::default()
        },
    };
    serve(options, listener, baton_common::daemon::shutdown_signal()).await
}

/// Connections the kernel queues for accepting (capped by net.core.somaxconn): room for a fleet
/// of agents reconnecting at once after a master restart, whose dropped SYNs would wait seconds.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `address` as `TcpListener::bind` does, with a longer accept queue.
fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}
