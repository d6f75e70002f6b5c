//! The master under test: a real `baton-master` process with its own data directory, its
//! metrics endpoint, and its CPU time and memory read from `/proc`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::prom::{Scrape, scrape};

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// A running master process.
pub struct Master {
    child: Child,
    pid: u32,
    /// Its gRPC URL.
    pub url: String,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Master {
    /// Starts `binary` with its database under `data_dir` (or at `database`, a PostgreSQL URL),
    /// logs and address file under `run_dir`.
    pub async fn start(
        binary: &Path,
        run_dir: &Path,
        data_dir: &Path,
        database: Option<&str>,
    ) -> anyhow::Result<Self> {
        let address_file = run_dir.join("address");
        let log = run_dir.join("master.log");
        let metrics = free_port()?;
        let mut command = Command::new(binary);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--address-file")
            .arg(&address_file)
            .args(["--metrics-listen", &metrics.to_string()])
            .args(
                database
                    .map(|url| ["--database", url])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
            command.env_remove(key);
        }
        let child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id().expect("a started child has a pid");
        let mut master = Self {
            child,
            pid,
            url: String::new(),
            metrics,
            log,
        };
        for _ in 0..200 {
            if let Ok(address) = std::fs::read_to_string(&address_file) {
                master.url = format!("http://{address}");
                if master.scrape().await.is_ok() {
                    return Ok(master);
                }
            }
            if let Some(status) = master.child.try_wait()? {
                anyhow::bail!("master exited ({status}): {}", master.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("master not ready after 10 s: {}", master.log_tail())
    }

    /// Its metrics now.
    pub async fn scrape(&self) -> anyhow::Result<Scrape> {
        scrape(self.metrics).await
    }

    /// User plus system CPU seconds it used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }

    /// Resident memory now and at its peak, in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The last lines of its log, for errors.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// User plus system CPU seconds of the process whose `stat` file is at `path`.
pub fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / TICKS_PER_SECOND
}

/// A loopback address with a port free now.
fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
