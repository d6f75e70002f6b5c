//! Requests to the master's JSON API: plain HTTP/1.1 by hand, HTTPS through reqwest.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::{TestCluster, wait_until};

/// A viewer's token in the auth file that `write_auth_file` writes.
pub const VIEWER_TOKEN: &str = "bob-viewer-token";

/// Writes an auth file under `dir` with an admin (alice-admin-token) and a viewer
/// (`VIEWER_TOKEN`); its path.
pub fn write_auth_file(dir: &Path) -> PathBuf {
    use sha2::Digest;
    let hash = |token: &str| {
        let digest = sha2::Sha256::digest(token.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let path = dir.join("auth.yaml");
    let text = format!(
        "tokens:\n  - {{name: alice, role: admin, sha256: {}}}\n  - {{name: bob, role: viewer, sha256: {}}}\n",
        hash("alice-admin-token"),
        hash(VIEWER_TOKEN)
    );
    std::fs::write(&path, text).expect("auth file written");
    path
}

/// A master with the auth file of `write_auth_file` (the CLI speaking as its admin), the HTTP API
/// on a free loopback port, and agents `(id, slots)` connected; the auth file's directory and the
/// API's address with it.
pub fn start_with_tokens(agents: &[(&str, u32)]) -> (TestCluster, tempfile::TempDir, SocketAddr) {
    let auth_dir = tempfile::tempdir().expect("temporary directory");
    let auth = write_auth_file(auth_dir.path());
    let mut cluster = TestCluster::start(
        &[],
        &[
            "--auth-file",
            auth.to_str().expect("UTF-8 path"),
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    cluster.token = Some("alice-admin-token".into());
    for (id, slots) in agents {
        cluster.start_agent(id, *slots);
    }
    cluster.wait_for_agents(agents.len());
    let api = wait_for_api(&cluster);
    (cluster, auth_dir, api)
}

/// The HTTP API address of `cluster`'s master, once its log names it.
pub fn wait_for_api(cluster: &TestCluster) -> SocketAddr {
    let log = cluster.dir.path().join("logs").join("master.log");
    let mut found = None;
    wait_until(
        "the HTTP API address in the log",
        Duration::from_secs(30),
        || {
            found = api_address(&log);
            found.is_some()
        },
    );
    found.expect("found")
}

/// A client that trusts only the CA in `ca` (PEM), presenting `identity` (certificate and key
/// PEM files) when given.
pub fn https_client(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> reqwest::blocking::Client {
    let read = |path: &Path| std::fs::read(path).expect("PEM file");
    let ca = reqwest::Certificate::from_pem(&read(ca)).expect("CA certificate");
    let mut builder = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        let pem = [read(cert), read(key)].concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("client identity"));
    }
    builder.build().expect("HTTPS client")
}

/// The HTTP API address a master logged ("HTTP API serving on /api/v1 address=…") in `log`.
pub fn api_address(log: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("HTTP API serving on /api/v1"))?;
    let (_, rest) = line.split_once("address=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `METHOD path` on `address`, presenting `token` as a bearer token: the status code and body.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("HTTP API accepts");
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: baton\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("an HTTP response with a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line: {head}"));
    (status, body.to_string())
}

/// `GET path` as JSON; panics unless the answer is 200.
pub fn get_json(address: SocketAddr, path: &str, token: Option<&str>) -> Value {
    let (status, body) = request(address, "GET", path, token);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: invalid JSON ({e}): {body}"))
}
