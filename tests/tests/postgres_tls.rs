//! The master on PostgreSQL over TLS: verified, encrypted connections carry a whole experiment;
//! a server certificate that does not verify, or TLS settings that cannot be used, stop the
//! master at start, named, with its password hidden.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use baton_cluster_tests::pki::Pki;
use baton_cluster_tests::{
    TestCluster, TestDatabase, bin_dir, example_config, postgres_ca, postgres_server, repo_root,
};

#[test]
fn a_master_on_verify_full_runs_the_linreg_grid_over_encrypted_connections() {
    let application = format!("baton_tls_{}", uuid::Uuid::new_v4().simple());
    let database = TestDatabase::create().with_parameters(&format!(
        "sslmode=verify-full&sslrootcert={}&application_name={application}",
        postgres_ca().display()
    ));
    let cluster = TestCluster::start_on_database(&["a1", "a2"], &[], database);
    let config = example_config("linreg", "grid.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let described = cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trials = described["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    assert!(
        trials.iter().all(|trial| trial["state"] == "COMPLETED"),
        "{described:#}"
    );

    let mut server = postgres_server();
    let own: bool = server
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        !own,
        "the test's own connection is plain: the check can tell"
    );
    let row = server
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .unwrap();
    let (connections, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        connections >= 2,
        "the store's and the lease's connections, at least: {connections}"
    );
    assert_eq!(encrypted, connections, "every connection of the master");
}

#[test]
fn a_master_stops_at_start_on_a_certificate_or_tls_settings_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let other_ca = Pki::make(dir.path()).ca;
    let database = TestDatabase::create();
    let url = database.url.replacen(
        "postgres://postgres@127.0.0.1:",
        "postgres://postgres:hunter2@127.0.0.1:",
        1,
    );
    assert_ne!(url, database.url, "the test server is on 127.0.0.1");
    let elsewhere = url.replacen("@127.0.0.1:", "@db.baton.invalid:", 1);
    let ca = postgres_ca();
    let missing = dir.path().join("missing.pem");
    for (url, named) in [
        (
            format!(
                "{url}?sslmode=verify-full&sslrootcert={}",
                other_ca.display()
            ),
            "invalid peer certificate: UnknownIssuer".to_string(),
        ),
        (
            format!(
                "{elsewhere}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
                ca.display()
            ),
            "certificate not valid for name \"db.baton.invalid\"".to_string(),
        ),
        (
            format!("{url}?sslmode=maybe"),
            "sslmode \"maybe\" is not one of disable, prefer, require, verify-ca, verify-full"
                .to_string(),
        ),
        (
            format!("{url}?sslmode=verify-ca&sslrootcert={}", missing.display()),
            format!(
                "cannot read sslrootcert {}: No such file",
                missing.display()
            ),
        ),
    ] {
        let (status, stderr) = run_master(&url, dir.path());
        assert!(!status.success(), "{url}: {status}\n{stderr}");
        assert!(stderr.contains(&named), "{url}: {stderr}");
        assert!(stderr.contains("postgres://postgres:***@"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// Runs a master on the database at `url` until it stops by itself: its status and stderr.
fn run_master(url: &str, dir: &std::path::Path) -> (ExitStatus, String) {
    let log = dir.join("master.log");
    let mut master = Command::new(bin_dir().join("baton-master"))
        .args(["--database", url, "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("master"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("baton-master starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = master.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = master.kill();
            let _ = master.wait();
            panic!(
                "the master on {url} did not stop:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(&log).unwrap())
}
