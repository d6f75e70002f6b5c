//! A cluster of real processes in a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::test_database::TestDatabase;
use crate::{bin_dir, repo_root};

/// A master and agents running as child processes.
pub struct TestCluster {
    /// Temporary directory holding data, work dirs, logs and storage.
    pub dir: tempfile::TempDir,
    pub(crate) bins: PathBuf,
    pub(crate) master: Option<Child>,
    /// The master's URL.
    pub url: String,
    address: Option<String>,
    listen: String,
    pub(crate) agents: BTreeMap<String, Child>,
    master_args: Vec<String>,
    /// The master's PostgreSQL database (BATON_TEST_DATABASE=postgres); None: SQLite in `dir`.
    database: Option<TestDatabase>,
    /// Masters standing by on the same PostgreSQL database, and their URLs (after the first
    /// master's in `url`).
    standbys: Vec<Child>,
    standby_urls: Vec<String>,
    /// Admin API token the CLI presents (BATON_TOKEN), if any.
    pub token: Option<String>,
    /// CA the CLI verifies an https:// master with (BATON_TLS_CA), if any.
    pub tls_ca: Option<PathBuf>,
}

impl TestCluster {
    /// Starts a master (extra flags in `master_args`) and agents with one slot each.
    pub fn start(agent_ids: &[&str], master_args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", agent_ids, master_args)
    }

    /// Like `start`, with the master listening on `listen`.
    pub fn start_on(listen: &str, agent_ids: &[&str], master_args: &[&str]) -> Self {
        let database = TestDatabase::for_cluster();
        Self::start_with(listen, agent_ids, master_args, database)
    }

    /// Starts a master on a fresh PostgreSQL database of its own, whatever BATON_TEST_DATABASE
    /// says (standby masters may join it), and no agent.
    pub fn start_on_postgres(master_args: &[&str]) -> Self {
        Self::start_with(
            "127.0.0.1:0",
            &[],
            master_args,
            Some(TestDatabase::create()),
        )
    }

    /// Starts a master on `database` and agents with one slot each.
    pub fn start_on_database(
        agent_ids: &[&str],
        master_args: &[&str],
        database: TestDatabase,
    ) -> Self {
        Self::start_with("127.0.0.1:0", agent_ids, master_args, Some(database))
    }

    fn start_with(
        listen: &str,
        agent_ids: &[&str],
        master_args: &[&str],
        database: Option<TestDatabase>,
    ) -> Self {
        let mut cluster = Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            bins: bin_dir(),
            master: None,
            url: String::new(),
            address: Some(listen.to_string()).filter(|l| !l.ends_with(":0")),
            listen: listen.to_string(),
            agents: BTreeMap::new(),
            master_args: master_args.iter().map(|s| s.to_string()).collect(),
            database,
            standbys: Vec::new(),
            standby_urls: Vec::new(),
            token: None,
            tls_ca: None,
        };
        cluster.start_master();
        for id in agent_ids {
            cluster.start_agent(id, 1);
        }
        if !agent_ids.is_empty() {
            cluster.wait_for_agents(agent_ids.len());
        }
        cluster
    }

    /// Starts (or restarts, on the same address and database) the master.
    pub fn start_master(&mut self) {
        let address_file = self.dir.path().join("master.addr");
        let _ = std::fs::remove_file(&address_file);
        let listen = self.address.clone().unwrap_or_else(|| self.listen.clone());
        let log = self.log_file("master");
        let mut command = Command::new(self.bins.join("baton-master"));
        if let Some(database) = &self.database {
            command.args(["--database", &database.url]);
        }
        let child = command
            .args(["--listen", &listen, "--data-dir"])
            .arg(self.dir.path().join("master"))
            .arg("--address-file")
            .arg(&address_file)
            .args(&self.master_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("baton-master starts");
        self.master = Some(child);
        wait_until("the master to listen", Duration::from_secs(20), || {
            if let Some(Ok(Some(status))) = self.master.as_mut().map(Child::try_wait) {
                panic!("baton-master exited with {status}:\n{}", self.logs());
            }
            address_file.is_file()
        });
        let address = std::fs::read_to_string(&address_file).expect("address file");
        self.url = std::iter::once(format!("http://{address}"))
            .chain(self.standby_urls.iter().cloned())
            .collect::<Vec<_>>()
            .join(",");
        if self.database.is_some() && self.standbys.is_empty() {
            // On PostgreSQL a master listens first, as a standby, and serves once it holds the
            // lease; any other answer (a refused token, say) is the test's to check.
            let own = format!("http://{address}");
            wait_until("the master to lead", Duration::from_secs(20), || {
                let output = self.cli_via(&own, &["agent", "list"]);
                !String::from_utf8_lossy(&output.stderr).contains("standby master")
            });
        }
        self.address = Some(address);
    }

    /// Starts another master on this cluster's PostgreSQL database once the first leads; it stands
    /// by, and its URL joins `url` (after the first master's) for the CLI and agents started
    /// later. Returns its URL.
    pub fn start_standby(&mut self) -> String {
        let database = self
            .database
            .as_ref()
            .expect("standbys share a PostgreSQL database");
        let leader = self.url.split(',').next().unwrap_or_default().to_string();
        wait_until("the first master to lead", Duration::from_secs(20), || {
            self.cli_via(&leader, &["agent", "list"]).status.success()
        });
        let index = self.standbys.len() + 1;
        let address_file = self.dir.path().join(format!("standby-{index}.addr"));
        let child = Command::new(self.bins.join("baton-master"))
            .args([
                "--database",
                &database.url,
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(self.dir.path().join(format!("standby-{index}")))
            .arg("--address-file")
            .arg(&address_file)
            .args(&self.master_args)
            .stdout(Stdio::null())
            .stderr(self.log_file(&format!("standby-{index}")))
            .spawn()
            .expect("baton-master starts");
        self.standbys.push(child);
        wait_until("the standby to listen", Duration::from_secs(20), || {
            address_file.is_file()
        });
        let url = format!(
            "http://{}",
            std::fs::read_to_string(&address_file).expect("address file")
        );
        self.standby_urls.push(url.clone());
        self.url = format!("{},{url}", self.url);
        url
    }

    /// The pid of the first master (`index` 0) or of the standby started `index`-th.
    pub fn master_pid(&mut self, index: usize) -> i32 {
        self.master_child(index).id() as i32
    }

    /// Waits for the first master (`index` 0) or the `index`-th standby to exit; its status.
    pub fn wait_for_master_exit(&mut self, index: usize, timeout: Duration) -> ExitStatus {
        let child = self.master_child(index);
        let mut status = None;
        wait_until("the master to exit", timeout, || {
            status = child.try_wait().expect("wait for the master");
            status.is_some()
        });
        status.expect("exited")
    }

    pub(crate) fn master_child(&mut self, index: usize) -> &mut Child {
        match index {
            0 => self.master.as_mut().expect("the master runs"),
            n => &mut self.standbys[n - 1],
        }
    }

    /// Stops the master with SIGKILL.
    pub fn kill_master(&mut self) {
        if let Some(mut child) = self.master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts an agent with `slots` CPU slots.
    pub fn start_agent(&mut self, id: &str, slots: u32) {
        let url = self.url.clone();
        self.start_agent_with(id, slots, &url, &[]);
    }

    /// The master's listening address.
    pub fn master_address(&self) -> std::net::SocketAddr {
        self.address
            .as_deref()
            .expect("the master has started")
            .parse()
            .expect("socket address")
    }

    /// Starts an agent with `slots` CPU slots that reaches the master at `master_url` (a proxy).
    pub fn start_agent_via(&mut self, id: &str, slots: u32, master_url: &str) {
        self.start_agent_with(id, slots, master_url, &[]);
    }

    /// Starts an agent with `slots` CPU slots, reaching the master at `master_url`, with extra flags.
    pub fn start_agent_with(&mut self, id: &str, slots: u32, master_url: &str, extra: &[&str]) {
        let command = Command::new(self.bins.join("baton-agent"));
        self.spawn_agent(command, id, slots, master_url, extra);
    }

    /// Starts an agent inside the network namespace `netns` (`ip netns exec`).
    pub fn start_agent_in_netns(
        &mut self,
        netns: &str,
        id: &str,
        master_url: &str,
        extra: &[&str],
    ) {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns])
            .arg(self.bins.join("baton-agent"));
        self.spawn_agent(command, id, 1, master_url, extra);
    }

    /// Starts a second agent process under the name `name` (its work directory, log and handle)
    /// that presents itself as agent `id`, with extra flags.
    pub fn start_agent_named(&mut self, name: &str, id: &str, extra: &[&str]) {
        let command = Command::new(self.bins.join("baton-agent"));
        let url = self.url.clone();
        self.spawn_named(command, name, id, 1, &url, extra);
    }

    fn spawn_agent(
        &mut self,
        command: Command,
        id: &str,
        slots: u32,
        master_url: &str,
        extra: &[&str],
    ) {
        self.spawn_named(command, id, id, slots, master_url, extra);
    }

    pub(crate) fn spawn_named(
        &mut self,
        mut command: Command,
        name: &str,
        id: &str,
        slots: u32,
        master_url: &str,
        extra: &[&str],
    ) {
        let log = self.log_file(&format!("agent-{name}"));
        command
            .args([
                "--master",
                master_url,
                "--id",
                id,
                "--slots",
                &slots.to_string(),
                "--kill-grace",
                "2",
            ])
            .args(extra);
        if !extra.contains(&"--work-dir") {
            command
                .arg("--work-dir")
                .arg(self.dir.path().join("agents").join(name));
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("baton-agent starts");
        self.agents.insert(name.to_string(), child);
    }

    /// Kills an agent process with SIGKILL.
    pub fn kill_agent(&mut self, id: &str) {
        if let Some(mut child) = self.agents.remove(id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `count` agents are connected.
    pub fn wait_for_agents(&self, count: usize) {
        wait_until("agents to connect", Duration::from_secs(30), || {
            let agents = self.json(&["agent", "list"]);
            agents
                .as_array()
                .is_some_and(|a| a.iter().filter(|x| x["connected"] == true).count() >= count)
        });
    }

    /// Runs the CLI against this cluster, presenting the cluster's token if it has one, with the
    /// credentials of the test S3 server and Azure emulator in its environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(self.token.as_deref(), &self.url)
            .args(args)
            .current_dir(repo_root())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env(
                "AZURE_STORAGE_ACCOUNT_KEY",
                crate::test_storage::AZURITE_KEY,
            )
            .output()
            .expect("baton runs")
    }

    /// A CLI runner for this cluster that presents `token` (or none) instead of the cluster's.
    pub fn cli_as<'a>(&'a self, token: Option<&'a str>) -> impl FnMut(&[&str]) -> Output + 'a {
        move |args| {
            self.cli_command(token, &self.url)
                .args(args)
                .output()
                .expect("baton runs")
        }
    }

    /// Runs the CLI with `--master masters` (URLs separated by commas) instead of this master's URL.
    pub fn cli_via(&self, masters: &str, args: &[&str]) -> Output {
        self.cli_command(self.token.as_deref(), masters)
            .args(args)
            .output()
            .expect("baton runs")
    }

    /// `baton --master MASTERS`, with `token` as BATON_TOKEN and the token file read from this
    /// cluster's own config directory.
    pub(crate) fn cli_command(&self, token: Option<&str>, masters: &str) -> Command {
        let mut command = Command::new(self.bins.join("baton"));
        command
            .env_remove("BATON_TOKEN")
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .stdin(Stdio::null())
            .arg("--master")
            .arg(masters);
        if let Some(token) = token {
            command.env("BATON_TOKEN", token);
        }
        command.env_remove("BATON_TLS_CA");
        if let Some(ca) = &self.tls_ca {
            command.env("BATON_TLS_CA", ca);
        }
        command
    }

    /// Runs the CLI, asserting success, and returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "baton {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs the CLI with `--json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.cli_ok(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("baton {args:?} printed invalid JSON ({e}): {text}"))
    }

    /// Writes `config` to a file and creates the experiment with `context`; returns its id.
    pub fn create_experiment(&self, config: &str, context: &Path) -> u64 {
        let path = self.dir.path().join(format!(
            "config-{}.yaml",
            blake3::hash(config.as_bytes()).to_hex()
        ));
        std::fs::write(&path, config).expect("config written");
        let created = self.json(&[
            "experiment",
            "create",
            path.to_str().unwrap(),
            context.to_str().unwrap(),
        ]);
        created["id"].as_u64().expect("experiment id")
    }

    /// Waits until an experiment reaches `state`, failing early on another terminal state.
    pub fn wait_for_experiment(&self, id: u64, state: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let described = self.json(&["experiment", "describe", &id.to_string()]);
            let current = described["state"].as_str().unwrap_or_default().to_string();
            if current == state {
                return described;
            }
            assert!(
                !(["COMPLETED", "CANCELED", "ERRORED"].contains(&current.as_str())),
                "experiment {id} ended {current}, expected {state}: {described:#}\n{}",
                self.logs()
            );
            assert!(
                started.elapsed() < timeout,
                "experiment {id} still {current} after {timeout:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A trial's describe output.
    pub fn trial(&self, id: u64) -> Value {
        self.json(&["trial", "describe", &id.to_string()])
    }

    /// The id of an experiment's first trial.
    pub fn first_trial(&self, experiment: u64) -> u64 {
        self.json(&["experiment", "describe", &experiment.to_string()])["trials"][0]["id"]
            .as_u64()
            .expect("trial id")
    }

    /// Waits until a trial's describe output satisfies `condition`; returns that output.
    pub fn wait_for_trial(
        &self,
        id: u64,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let trial = self.trial(id);
            if condition(&trial) {
                return trial;
            }
            assert!(
                started.elapsed() < timeout,
                "trial {id}: timed out waiting for {what}: {trial:#}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the process running trial `trial_id` under this cluster, if any.
    pub fn trial_process(&self, trial_id: u64) -> Option<i32> {
        self.processes_with_env(&format!("BATON_TRIAL_ID={trial_id}"))
            .into_iter()
            .next()
    }

    /// Pids of processes under this cluster's directory whose environment holds `variable` (`NAME=value`).
    pub fn processes_with_env(&self, variable: &str) -> Vec<i32> {
        processes(|process, environ| {
            std::fs::read_link(process.join("cwd"))
                .is_ok_and(|cwd| cwd.starts_with(self.dir.path()))
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var == variable.as_bytes())
        })
    }

    /// Pids of processes whose environment names a path in this cluster's directory (trials and
    /// their supervisors).
    pub fn processes_mentioning_dir(&self) -> Vec<i32> {
        let needle = self.dir.path().display().to_string();
        processes(|_, environ| {
            environ
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
    }

    /// The weights of an experiment's checkpoint at `step` (the final one), read from shared_fs storage.
    pub fn final_weights(&self, experiment: u64, step: u64) -> Value {
        self.final_weights_in(
            &crate::TestStorage::SharedFs(self.storage()),
            experiment,
            step,
        )
    }

    /// The weights of an experiment's checkpoint at `step` (the final one), read from `storage`.
    pub fn final_weights_in(
        &self,
        storage: &crate::TestStorage,
        experiment: u64,
        step: u64,
    ) -> Value {
        let listed = self.json(&["experiment", "list-checkpoints", &experiment.to_string()]);
        let last = listed
            .as_array()
            .expect("checkpoint list")
            .iter()
            .max_by_key(|c| c["step"].as_u64())
            .cloned();
        let last = last.unwrap_or_else(|| panic!("experiment {experiment} has no checkpoint"));
        assert_eq!(
            last["step"], step,
            "final checkpoint of experiment {experiment}"
        );
        storage.weights(last["uuid"].as_str().expect("uuid"))
    }

    /// The pid of an agent process.
    pub fn agent_pid(&self, id: &str) -> i32 {
        self.agents[id].id() as i32
    }

    /// The storage directory used by example configs.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("checkpoints")
    }

    /// The tail of every process log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("logs")) {
            for entry in entries.flatten() {
                let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = content.lines().rev().take(40).collect();
                text += &format!("--- {}\n", entry.path().display());
                for line in tail.into_iter().rev() {
                    text += line;
                    text.push('\n');
                }
            }
        }
        text
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        let dir = self.dir.path().join("logs");
        std::fs::create_dir_all(&dir).expect("log directory");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .expect("log file")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            self.kill_agent(&id);
        }
        self.kill_master();
        for mut standby in std::mem::take(&mut self.standbys) {
            let _ = standby.kill();
            let _ = standby.wait();
        }
        // Trials outlive their agent daemons; none may outlive the cluster.
        for pid in self.processes_mentioning_dir() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Pids of the processes for which `keep(/proc/PID, environment)` holds.
fn processes(keep: impl Fn(&Path, &[u8]) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            keep(&entry.path(), &environ).then_some(pid)
        })
        .collect()
}

/// Polls `condition` every 100 ms until it holds, panicking after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
