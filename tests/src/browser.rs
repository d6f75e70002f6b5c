//! Runs a Node script of `tests/browser/` that drives headless Chromium through Playwright
//! (`lib.mjs` there), against a master's HTTP API; the test fails with the script's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{bin_dir, repo_root};

/// How long a script may run before it is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The browser, unless BATON_CHROMIUM names another.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// A script to run: which one, against which master, expecting what.
pub struct BrowserScript {
    /// File name under `tests/browser/`.
    pub script: String,
    /// The master's HTTP API, e.g. `http://127.0.0.1:9090`.
    pub base_url: String,
    /// Bearer token the page and the API requests present, if any.
    pub token: Option<String>,
    /// Values the script checks against, handed to it as a JSON file.
    pub expected: Value,
}

/// What a script that succeeded left: its stdout and the directory of its screenshots and log.
pub struct BrowserOutput {
    /// Everything it printed on stdout.
    pub stdout: String,
    /// `target/test-output/<name>/`: screenshots, `log.txt`, `expected.json`.
    pub dir: PathBuf,
}

/// `target/test-output/<name>/`, emptied: where a test's browser output goes.
pub fn output_dir(name: &str) -> PathBuf {
    let target = bin_dir()
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("test-output").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output directory");
    dir
}

impl BrowserScript {
    /// Runs the script under the name `name` (its output directory); panics with its output,
    /// stdout and stderr, unless it exits 0 within three minutes.
    pub fn run(&self, name: &str) -> BrowserOutput {
        let node_path = std::env::var("BATON_BROWSER_NODE_PATH").expect(
            "browser tests need playwright-core: run scripts/test.sh, which installs it (scripts/browser-env.sh) and sets BATON_BROWSER_NODE_PATH",
        );
        let chromium = std::env::var("BATON_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
        assert!(
            Path::new(&chromium).is_file(),
            "browser tests need Chromium at {chromium}: install Debian's chromium package (.ci/run does) or set BATON_CHROMIUM"
        );
        let dir = output_dir(name);
        let expected = dir.join("expected.json");
        std::fs::write(&expected, self.expected.to_string()).expect("expected values written");
        let log = dir.join("log.txt");
        let stderr_file = dir.join("stderr.txt");
        let script = repo_root().join("tests/browser").join(&self.script);
        let mut child = Command::new("node")
            .arg(&script)
            .env("NODE_PATH", &node_path)
            .env("BATON_BASE_URL", &self.base_url)
            .env("BATON_TOKEN", self.token.as_deref().unwrap_or(""))
            .env("BATON_OUTPUT_DIR", &dir)
            .env("BATON_EXPECTED", &expected)
            .env("BATON_CHROMIUM", &chromium)
            .env("FORCE_COLOR", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (Node.js 20 or later is needed): {e}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for node") {
                break Some(status);
            }
            if started.elapsed() > SCRIPT_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&log).unwrap_or_default();
        let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
        let verdict = match status {
            Some(status) if status.success() => {
                return BrowserOutput { stdout, dir };
            }
            Some(status) => format!("exited with {status}"),
            None => format!("was killed after {SCRIPT_TIMEOUT:?}"),
        };
        panic!(
            "{} {verdict} (output in {}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
            script.display(),
            dir.display()
        );
    }
}
