//! The master's durable state, behind one interface on two databases: an embedded SQLite file
//! (WAL) owned by one master, or PostgreSQL shared by masters that take turns through a lease,
//! every write fenced by the lease's epoch. Forward-only migrations on both.

mod backend;
mod checkpoints;
mod database;
mod error;
mod experiments;
mod lease;
mod logs;
mod migrations;
mod pg;
mod pg_tls;
mod searcher;
mod trials;
pub(crate) mod value;

#[cfg(test)]
mod testing;

pub use checkpoints::{CheckpointRow, kept_bytes_by_experiment};
pub use database::{Database, redact};
pub use error::{StoreError, StoreResult, on_fatal};
pub use experiments::ExperimentRow;
pub use lease::{Leader, LeaseClient};
pub use logs::LogRow;
pub use pg_tls::connect as connect_postgres;
pub use trials::{AllocationRow, TrialRow, ValidationRow};

use backend::{Backend, PgSession, Step};
use value::{Row, Value};

/// The master's database connection; owned by the cluster task.
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) `database` and runs migrations. PostgreSQL needs the epoch of
    /// the lease this master holds ([`LeaseClient::acquire`]): its writes fail with
    /// [`StoreError::Fenced`] once another master takes the lease. An SQLite file has one master
    /// and no lease.
    pub fn open(database: &Database, epoch: Option<u64>) -> StoreResult<Self> {
        let backend = match database {
            Database::Sqlite(path) => Backend::open_sqlite(path)?,
            Database::Postgres(url) => {
                let epoch = epoch.ok_or_else(|| {
                    StoreError::Usage(format!(
                        "{database}: a master writes to PostgreSQL only under the lease epoch it \
                         holds; take the lease first"
                    ))
                })?;
                Backend::Postgres(Box::new(PgSession::open(url, epoch)?))
            }
        };
        Ok(Self { backend })
    }

    /// Opens a private in-memory SQLite database (for tests and replays).
    pub fn in_memory() -> StoreResult<Self> {
        let conn = rusqlite::Connection::open_in_memory()?;
        Ok(Self {
            backend: Backend::sqlite(conn)?,
        })
    }

    /// Runs one statement (`?N` placeholders), compiled once per connection; returns the rows it
    /// changed.
    fn execute(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<usize> {
        self.backend.execute(sql, params)
    }

    /// Runs one query, compiled once per connection, converting each row.
    fn query<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        convert: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.backend.query(sql, params, convert)
    }

    /// The first row of a query, converted, if any.
    fn query_first<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        convert: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.query(sql, params, convert)?.into_iter().next())
    }

    /// Runs an INSERT into a table whose key is `id`; returns the new row's id.
    fn insert_returning_id(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64> {
        self.backend.insert_returning_id(sql, params)
    }

    /// Starts a transaction holding the writes that follow until [`Store::end_batch`]: many small
    /// writes, one commit. A [`Store::transaction`] inside it is a savepoint. On PostgreSQL a
    /// failed statement fails the whole batch (its commit rolls back); on SQLite only itself.
    pub fn begin_batch(&self) -> StoreResult<()> {
        self.backend.step(Step::Begin)
    }

    /// Commits the writes since [`Store::begin_batch`] (rolled back when the commit fails).
    pub fn end_batch(&self) -> StoreResult<()> {
        self.backend.step(Step::Commit).inspect_err(|_| {
            let _ = self.backend.step(Step::Rollback);
        })
    }

    /// Runs `f` in one transaction (a savepoint inside a batch: all of it or none of it).
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Store) -> StoreResult<T>) -> StoreResult<T> {
        let (begin, commit, rollback) = if self.backend.in_transaction() {
            (Step::Savepoint, Step::Release, Step::RollbackToSavepoint)
        } else {
            (Step::Begin, Step::Commit, Step::Rollback)
        };
        self.backend.step(begin)?;
        match f(self) {
            Ok(value) => {
                self.backend.step(commit)?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.backend.step(rollback);
                Err(e)
            }
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
