//! The HTTP API over TLS: a master with `--tls-cert` serves `--http-listen` as HTTPS with the
//! gRPC listener's certificate, and with `--tls-client-ca` verifies the certificates clients present.

use std::path::Path;
use std::process::Command;

use baton_cluster_tests::TestCluster;
use baton_cluster_tests::http::{VIEWER_TOKEN, https_client, wait_for_api, write_auth_file};
use baton_cluster_tests::pki::Pki;
use serde_json::Value;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A master with tokens, TLS (a client CA when `client_ca`) and the API and metrics on one port.
fn start(dir: &Path, pki: &Pki, client_ca: bool) -> TestCluster {
    let auth = write_auth_file(dir);
    let mut args = vec![
        "--auth-file",
        path(&auth),
        "--tls-cert",
        path(&pki.server.0),
        "--tls-key",
        path(&pki.server.1),
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    if client_ca {
        args.extend(["--tls-client-ca", path(&pki.ca)]);
    }
    TestCluster::start(&[], &args)
}

#[test]
fn the_api_and_metrics_answer_over_https_and_plain_http_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let cluster = start(dir.path(), &pki, false);
    let api = wait_for_api(&cluster);
    let client = https_client(&pki.ca, None);

    let response = client
        .get(format!("https://{api}/api/v1/agents"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .expect("an HTTPS answer");
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    assert_eq!(body["agents"], Value::Array(vec![]), "{body}");

    let refused = client
        .get(format!("https://{api}/api/v1/agents"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);
    let metrics = client.get(format!("https://{api}/metrics")).send().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().unwrap().contains("baton_"));

    let plain = reqwest::blocking::Client::new()
        .get(format!("http://{api}/api/v1/agents"))
        .bearer_auth(VIEWER_TOKEN)
        .send();
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[test]
fn with_a_client_ca_a_certificate_of_another_ca_is_refused_and_tokens_admit_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let cluster = start(dir.path(), &pki, true);
    let api = wait_for_api(&cluster);
    let url = format!("https://{api}/api/v1/agents");

    let with_own = https_client(&pki.ca, Some(&pki.client))
        .get(&url)
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .expect("an answer to a client with a certificate of the CA");
    assert_eq!(with_own.status(), 200);

    let anonymous = https_client(&pki.ca, None);
    let browser_like = anonymous
        .get(&url)
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .expect("an answer to a client without a certificate");
    assert_eq!(browser_like.status(), 200);
    let no_token = anonymous.get(&url).send().expect("an answer");
    assert_eq!(no_token.status(), 401);

    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::make(other_dir.path());
    let stranger = https_client(&pki.ca, Some(&other.client))
        .get(&url)
        .bearer_auth(VIEWER_TOKEN)
        .send();
    assert!(
        stranger.is_err(),
        "answered a certificate of another CA: {stranger:?}"
    );
}

#[test]
fn a_bad_certificate_is_named_at_start_with_or_without_the_http_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    for extra in [&["--http-listen", "127.0.0.1:0"][..], &[]] {
        let output = Command::new(baton_cluster_tests::bin_dir().join("baton-master"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--tls-cert",
                path(&garbage),
                "--tls-key",
                path(&pki.server.1),
            ])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "no certificate in the TLS certificate {}",
                path(&garbage)
            )),
            "{stderr}"
        );
    }
}
