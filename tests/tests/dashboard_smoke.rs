//! The browser pipeline end to end: headless Chromium, driven by Playwright from Node, reads a
//! real master's HTTP API with a viewer's token and leaves screenshots under
//! `target/test-output/dashboard_smoke/`.

use baton_cluster_tests::TestCluster;
use baton_cluster_tests::browser::BrowserScript;
use baton_cluster_tests::http::{VIEWER_TOKEN, wait_for_api, write_auth_file};
use serde_json::json;

#[test]
fn chromium_reads_the_agents_with_a_viewer_token() {
    let auth_dir = tempfile::tempdir().unwrap();
    let auth = write_auth_file(auth_dir.path());
    let mut cluster = TestCluster::start(
        &[],
        &[
            "--auth-file",
            auth.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    cluster.token = Some("alice-admin-token".into());
    cluster.start_agent("a1", 1);
    cluster.start_agent("a2", 1);
    cluster.wait_for_agents(2);
    let api = wait_for_api(&cluster);

    let output = BrowserScript {
        script: "smoke.mjs".into(),
        base_url: format!("http://{api}"),
        token: Some(VIEWER_TOKEN.into()),
        expected: json!({ "agents": ["a1", "a2"] }),
    }
    .run("dashboard_smoke");
    assert!(
        output.stdout.contains(r#"{"agents":["a1","a2"]"#),
        "{}",
        output.stdout
    );
    let screenshot = output.dir.join("agents-json.png");
    let size = std::fs::metadata(&screenshot).map_or(0, |m| m.len());
    assert!(size > 1000, "{} holds {size} bytes", screenshot.display());
}
