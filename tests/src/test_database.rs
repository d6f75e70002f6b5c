//! The master's database in cluster tests: SQLite under the cluster's directory, or with
//! BATON_TEST_DATABASE=postgres a fresh PostgreSQL database on the server BATON_TEST_POSTGRES
//! names (scripts/postgres-server.sh starts one, with TLS by the CA in BATON_TEST_POSTGRES_CA),
//! dropped with the cluster.

use std::path::PathBuf;

/// A PostgreSQL database of one cluster's own.
pub struct TestDatabase {
    /// URL of the database, for `baton-master --database`.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// The database a new cluster's master uses: None for its SQLite file (BATON_TEST_DATABASE
    /// unset or `sqlite`), a fresh PostgreSQL database for `postgres`.
    pub fn for_cluster() -> Option<Self> {
        match std::env::var("BATON_TEST_DATABASE").as_deref() {
            Err(_) | Ok("sqlite") => None,
            Ok("postgres") => Some(Self::create()),
            Ok(other) => panic!("BATON_TEST_DATABASE={other:?}: expected sqlite or postgres"),
        }
    }

    /// A fresh database on the server BATON_TEST_POSTGRES names (panics when it is unset).
    pub fn create() -> Self {
        let server = std::env::var("BATON_TEST_POSTGRES").unwrap_or_else(|_| {
            panic!(
                "BATON_TEST_DATABASE=postgres but BATON_TEST_POSTGRES is not set: run \
                 scripts/test.sh, or `source scripts/postgres-server.sh` in a bash shell first"
            )
        });
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        connect(&server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let base = server.rsplit_once('/').expect("a database in the URL").0;
        Self {
            url: format!("{base}/{name}"),
            name,
            server,
        }
    }

    /// This database with `parameters` (`KEY=VALUE&…`) in its URL, for the master.
    pub fn with_parameters(mut self, parameters: &str) -> Self {
        self.url = format!("{}?{parameters}", self.url);
        self
    }
}

/// The file of the CA that signed the test PostgreSQL server's certificate.
pub fn postgres_ca() -> PathBuf {
    std::env::var_os("BATON_TEST_POSTGRES_CA")
        .unwrap_or_else(|| {
            panic!(
                "BATON_TEST_POSTGRES_CA is not set: run scripts/test.sh, or `source \
                 scripts/postgres-server.sh` in a bash shell first"
            )
        })
        .into()
}

/// A plain connection to the test server (BATON_TEST_POSTGRES), for queries of a test's own.
pub fn postgres_server() -> postgres::Client {
    connect(&std::env::var("BATON_TEST_POSTGRES").expect("BATON_TEST_POSTGRES is set"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = connect(&self.server).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server {url}: {e:?}"))
}
