//! Signing in to the web dashboard in a real browser (Chromium driven by Playwright, see
//! tests/browser/sign_in.mjs) on a master that needs tokens, and markup in an experiment's name,
//! hyperparameters and output shown as text; screenshots under
//! `target/test-output/dashboard_sign_in/`.

use std::time::Duration;

use baton_cluster_tests::browser::BrowserScript;
use baton_cluster_tests::http::{VIEWER_TOKEN, start_with_tokens};
use baton_cluster_tests::{TestStorage, repo_root};
use serde_json::json;

#[test]
fn the_dashboard_asks_for_a_token_refuses_a_wrong_one_keeps_a_viewers_and_runs_no_markup() {
    let (cluster, _auth_dir, api) = start_with_tokens(&[("a1", 1), ("a2", 1)]);
    let markup = "<img src=x onerror=window.pwned=1>";
    let config = TestStorage::SharedFs(cluster.storage()).config(
        "linreg",
        "single.yaml",
        &[
            ("name: linreg-single", &format!("name: \"{markup}\"")),
            (
                "  batch_size: 16\n",
                &format!("  batch_size: 16\n  note: \"{markup}\"\n"),
            ),
        ],
    );
    let experiment = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(experiment, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.first_trial(experiment);

    let output = BrowserScript {
        script: "sign_in.mjs".into(),
        base_url: format!("http://{api}"),
        token: None,
        expected: json!({
            "token": VIEWER_TOKEN,
            "agents": ["a1", "a2"],
            "hostile": { "experiment_id": experiment, "trial_id": trial, "text": markup },
        }),
    }
    .run("dashboard_sign_in");
    assert!(
        output
            .stdout
            .contains(r#"{"signed_in":true,"agents":["a1","a2"]}"#),
        "{}",
        output.stdout
    );
    for page in ["sign-in", "signed-in", "markup-as-text"] {
        let path = output.dir.join(format!("{page}.png"));
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(size > 5_000, "{} holds {size} bytes", path.display());
    }
}
