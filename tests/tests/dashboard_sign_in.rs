//! Signing in to the web dashboard in a real browser (Chromium driven by Playwright, see
//! tests/browser/sign_in.mjs) on a master that needs tokens; screenshots under
//! `target/test-output/dashboard_sign_in/`.

use baton_cluster_tests::TestCluster;
use baton_cluster_tests::browser::BrowserScript;
use baton_cluster_tests::http::{VIEWER_TOKEN, wait_for_api, write_auth_file};
use serde_json::json;

#[test]
fn the_dashboard_asks_for_a_token_refuses_a_wrong_one_and_keeps_a_viewers() {
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
        script: "sign_in.mjs".into(),
        base_url: format!("http://{api}"),
        token: None,
        expected: json!({ "token": VIEWER_TOKEN, "agents": ["a1", "a2"] }),
    }
    .run("dashboard_sign_in");
    assert!(
        output
            .stdout
            .contains(r#"{"signed_in":true,"agents":["a1","a2"]}"#),
        "{}",
        output.stdout
    );
    for page in ["sign-in", "signed-in"] {
        let path = output.dir.join(format!("{page}.png"));
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(size > 5_000, "{} holds {size} bytes", path.display());
    }
}
