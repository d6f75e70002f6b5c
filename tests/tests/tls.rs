//! TLS between the master, its agents and the CLI, with certificates made by the test.

use std::path::Path;
use std::time::Duration;

use baton_cluster_tests::pki::Pki;
use baton_cluster_tests::{TestCluster, example_config, repo_root, wait_until};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn agents_and_the_cli_speak_tls_to_a_tls_master_and_a_wrong_scheme_is_named() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::make(certs.path());
    let mut cluster = TestCluster::start(
        &[],
        &[
            "--tls-cert",
            path(&pki.server.0),
            "--tls-key",
            path(&pki.server.1),
            "--tls-client-ca",
            path(&pki.ca),
        ],
    );
    let plain_url = cluster.url.clone();
    cluster.url = plain_url.replace("http://", "https://");
    cluster.tls_ca = Some(pki.ca.clone());
    let url = cluster.url.clone();
    let ca = path(&pki.ca).to_string();
    let (cert, key) = (
        path(&pki.client.0).to_string(),
        path(&pki.client.1).to_string(),
    );
    cluster.start_agent_with(
        "a1",
        1,
        &url,
        &["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key],
    );
    cluster.wait_for_agents(1);
    let config = example_config("linreg", "single.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));

    // An agent without a client certificate is refused, and told why.
    cluster.start_agent_with("a2", 1, &url, &["--tls-ca", &ca]);
    let log = cluster.dir.path().join("logs/agent-a2.log");
    wait_until(
        "the certificate-less agent to be refused",
        Duration::from_secs(20),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("this master verifies agents")),
    );
    assert_eq!(
        cluster.json(&["agent", "list"]).as_array().unwrap().len(),
        1
    );

    // http:// to the TLS master fails and says to use https://.
    let plain = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton"))
        .args(["--master", &plain_url, "agent", "list"])
        .env_remove("BATON_TLS_CA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("use an https:// URL"), "{stderr}");

    // https:// to a plaintext master fails and says to use http://.
    let plaintext = TestCluster::start(&[], &[]);
    let https = plaintext.url.replace("http://", "https://");
    let output = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton"))
        .args(["--master", &https, "--tls-ca", &ca, "agent", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not speak TLS: use an http:// URL"),
        "{stderr}"
    );
}
