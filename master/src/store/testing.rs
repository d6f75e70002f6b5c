//! Databases for tests: a fresh PostgreSQL database per test on the server BATON_TEST_POSTGRES
//! names (scripts/postgres-server.sh starts one, with TLS by the CA in BATON_TEST_POSTGRES_CA),
//! dropped afterwards; and tests run on both backends.

use std::time::Duration;

use super::{Database, LeaseClient, Store};

/// The variable naming the test server: `postgres://USER@HOST:PORT/DATABASE`.
const SERVER_VARIABLE: &str = "BATON_TEST_POSTGRES";

/// The variable naming the test server's CA certificate, a PEM file.
const CA_VARIABLE: &str = "BATON_TEST_POSTGRES_CA";

/// The file of the CA that signed the test server's certificate (for `sslrootcert`).
pub(crate) fn server_ca() -> String {
    std::env::var(CA_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{CA_VARIABLE} is not set: this test needs PostgreSQL with TLS (run scripts/test.sh, \
             or `source scripts/postgres-server.sh` in a bash shell first)"
        )
    })
}

/// A database of its own on the test server, dropped with this value.
pub(crate) struct TestDatabase {
    /// URL of the database.
    pub(crate) url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// Creates the database; panics when no test server is configured.
    pub(crate) fn create() -> Self {
        let server = std::env::var(SERVER_VARIABLE).unwrap_or_else(|_| {
            panic!(
                "{SERVER_VARIABLE} is not set: this test needs PostgreSQL (run scripts/test.sh, \
                 or `source scripts/postgres-server.sh` in a bash shell first)"
            )
        });
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        admin(&server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        Self {
            url: with_database(&server, &name),
            name,
            server,
        }
    }

    /// The database as the master names it.
    pub(crate) fn database(&self) -> Database {
        Database::Postgres(self.url.clone())
    }

    /// A store on this database under a lease taken for an hour.
    pub(crate) fn store(&self) -> Store {
        let epoch = LeaseClient::connect(&self.url)
            .unwrap()
            .acquire("test", "http://test", Duration::from_secs(3600))
            .unwrap()
            .expect("a free lease");
        Store::open(&self.database(), Some(epoch)).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = admin(&self.server).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

fn admin(server: &str) -> postgres::Client {
    super::connect_postgres(server)
        .unwrap_or_else(|e| panic!("cannot connect to the test server {server}: {e:?}"))
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut named = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        named = format!("{named}?{query}");
    }
    named
}

/// Defines module `$name` with the test run twice, as `sqlite` (a file in a temporary
/// directory) and as `postgres` (a fresh database): `$store` is a new store, `$database` what it
/// was opened on.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* fn $name:ident($store:ident, $database:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::store::{Database, Store};

            #[allow(unused_mut, unused_variables)]
            fn run(mut $store: Store, $database: &Database) $body

            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let database = Database::Sqlite(dir.path().join("baton.db"));
                run(Store::open(&database, None).unwrap(), &database);
            }

            #[test]
            fn postgres() {
                let test = $crate::store::testing::TestDatabase::create();
                run(test.store(), &test.database());
            }
        }
    };
}
pub(crate) use on_both_backends;

mod tests {
    use super::*;

    #[test]
    fn a_test_database_replaces_the_server_s_database_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u@h?sslmode=disable", "t2"),
            "postgresql://u@h/t2?sslmode=disable"
        );
    }
}
