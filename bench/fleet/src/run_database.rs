//! A fresh PostgreSQL database per run, for the master's `--database`, dropped afterwards;
//! connected to as the master connects (TLS as the URL's `sslmode` and `sslrootcert` say).

use baton_master::store::redact;

/// A database created on a server for one run.
pub struct RunDatabase {
    /// Its URL, for `baton-master --database`.
    pub url: String,
    name: String,
    server: String,
}

impl RunDatabase {
    /// Creates a database on the server `server` names (a URL with a database to connect to);
    /// its URL keeps the server's parameters.
    pub fn create(server: &str) -> anyhow::Result<Self> {
        let name = format!("baton_fleet_{}", uuid::Uuid::new_v4().simple());
        let (base, parameters) = match server.split_once('?') {
            Some((base, parameters)) => (base, format!("?{parameters}")),
            None => (server, String::new()),
        };
        let (base, _) = base.rsplit_once('/').ok_or_else(|| {
            anyhow::anyhow!(
                "--postgres {}: expected postgres://USER@HOST:PORT/DATABASE",
                redact(server)
            )
        })?;
        connect(server)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            url: format!("{base}/{name}{parameters}"),
            name,
            server: server.to_string(),
        })
    }

    /// Its size on the server's disk.
    pub fn bytes(&self) -> anyhow::Result<u64> {
        let row =
            connect(&self.url)?.query_one("SELECT pg_database_size(current_database())", &[])?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }
}

impl Drop for RunDatabase {
    fn drop(&mut self) {
        let dropped = connect(&self.server).and_then(|mut client| {
            Ok(client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))?)
        });
        if let Err(e) = dropped {
            eprintln!("cannot drop the run's database {}: {e}", self.name);
        }
    }
}

fn connect(url: &str) -> anyhow::Result<postgres::Client> {
    Ok(baton_master::store::connect_postgres(url)?)
}
