//! What operators do to daemons: stop them with SIGTERM as systemd does, start agents from
//! another directory or binary, leave CLI commands running in the background.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::TestCluster;

/// How a daemon sent SIGTERM ended.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status; None when it still ran at the deadline (it was killed then).
    pub status: Option<ExitStatus>,
    /// From the signal to its exit, or to the deadline.
    pub took: Duration,
}

impl Stopped {
    /// Whether it exited by itself with status 0.
    pub fn cleanly(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl TestCluster {
    /// Sends SIGTERM to the first master (`index` 0) or the `index`-th standby and waits up to
    /// `deadline` for it to exit.
    pub fn terminate_master(&mut self, index: usize, deadline: Duration) -> Stopped {
        terminate(self.master_child(index), deadline)
    }

    /// Sends SIGTERM to the agent process `name` and waits up to `deadline` for it to exit.
    pub fn terminate_agent(&mut self, name: &str, deadline: Duration) -> Stopped {
        let mut child = self.agents.remove(name).expect("the agent runs");
        terminate(&mut child, deadline)
    }

    /// Starts agent `id` with one slot, running in the cluster's directory with `--work-dir`
    /// exactly as given (a relative one is then under the cluster's directory).
    pub fn start_agent_in_cluster_dir(&mut self, id: &str, work_dir: &str) {
        let mut command = Command::new(self.bins.join("baton-agent"));
        command.current_dir(self.dir.path());
        let url = self.url.clone();
        self.spawn_named(command, id, id, 1, &url, &["--work-dir", work_dir]);
    }

    /// Starts agent `id` with one slot from the executable `binary` instead of the built one.
    pub fn start_agent_binary(&mut self, id: &str, binary: &Path) {
        let url = self.url.clone();
        self.spawn_named(Command::new(binary), id, id, 1, &url, &[]);
    }

    /// Starts the CLI in the background, its output in `logs/cli-NAME.out` and `.err` under
    /// the cluster's directory.
    pub fn cli_in_background(&self, name: &str, args: &[&str]) -> Child {
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("log directory");
        let file = |suffix: &str| {
            std::fs::File::create(logs.join(format!("cli-{name}.{suffix}"))).expect("CLI output")
        };
        self.cli_command(self.token.as_deref(), &self.url)
            .args(args)
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .expect("baton runs")
    }

    /// What the background CLI command `name` has written to stdout and stderr so far.
    pub fn background_output(&self, name: &str) -> (String, String) {
        let read = |suffix: &str| {
            let path = self.dir.path().join(format!("logs/cli-{name}.{suffix}"));
            std::fs::read_to_string(path).unwrap_or_default()
        };
        (read("out"), read("err"))
    }
}

/// Sends SIGTERM to `child` and waits up to `deadline` for it; SIGKILL past that.
pub fn terminate(child: &mut Child, deadline: Duration) -> Stopped {
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM sent");
    loop {
        if let Some(status) = child.try_wait().expect("wait for the process") {
            return Stopped {
                status: Some(status),
                took: sent.elapsed(),
            };
        }
        if sent.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Stopped {
                status: None,
                took: sent.elapsed(),
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
