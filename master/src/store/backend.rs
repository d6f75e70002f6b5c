//! The two databases behind [`super::Store`]: statements, rows and transaction steps.

use std::cell::{Cell, RefCell};

use rusqlite::Connection;

use super::pg::PgClient;
use super::value::{Row, Value, params};
use super::{StoreError, StoreResult, migrations};

/// Compiled statements kept per SQLite connection (every statement the master runs).
const STATEMENT_CACHE: usize = 64;

/// A connection of either backend.
pub(super) enum Backend {
    /// An SQLite connection (WAL; statements compiled once).
    Sqlite(Connection),
    /// A PostgreSQL session writing under a lease epoch.
    Postgres(Box<PgSession>),
}

/// A step of transaction control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Starts a transaction.
    Begin,
    /// Commits it.
    Commit,
    /// Rolls it back.
    Rollback,
    /// Starts a nested part of the transaction.
    Savepoint,
    /// Keeps the nested part.
    Release,
    /// Undoes the nested part.
    RollbackToSavepoint,
}

impl Step {
    fn sql(self, postgres: bool) -> &'static str {
        match self {
            // A write transaction from its start: SQLite never upgrades a reader mid-way.
            Self::Begin if postgres => "BEGIN",
            Self::Begin => "BEGIN IMMEDIATE",
            Self::Commit => "COMMIT",
            Self::Rollback => "ROLLBACK",
            Self::Savepoint => "SAVEPOINT part",
            Self::Release => "RELEASE part",
            Self::RollbackToSavepoint => "ROLLBACK TO part; RELEASE part",
        }
    }
}

impl Backend {
    /// Opens (creating if needed) the SQLite database at `path` and runs migrations.
    pub(super) fn open_sqlite(path: &std::path::Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Self::sqlite(conn)
    }

    /// Migrates an SQLite connection and wraps it.
    pub(super) fn sqlite(mut conn: Connection) -> StoreResult<Self> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrations::run_sqlite(&mut conn)?;
        Ok(Self::Sqlite(conn))
    }

    /// Runs one statement; returns the rows it changed.
    pub(super) fn execute(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<usize> {
        match self {
            Self::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params))?),
            Self::Postgres(session) => session.run(|client| {
                let changed = client.execute(sql, params)?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }),
        }
    }

    /// Runs an INSERT into a table whose key is `id`; returns the new row's id: SQLite's last
    /// rowid (twice as fast as `RETURNING` there), PostgreSQL's `RETURNING id`.
    pub(super) fn insert_returning_id(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64> {
        match self {
            Self::Sqlite(conn) => {
                conn.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params))?;
                Ok(conn.last_insert_rowid() as u64)
            }
            Self::Postgres(session) => {
                let rows =
                    session.run(|client| client.query(&format!("{sql} RETURNING id"), params))?;
                let row = rows
                    .first()
                    .ok_or_else(|| StoreError::NotFound("the id of an inserted row".into()))?;
                Row::Postgres(row).get(0)
            }
        }
    }

    /// Runs one query, converting each row with `convert`.
    pub(super) fn query<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut convert: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        match self {
            Self::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params))?;
                let mut converted = Vec::new();
                while let Some(row) = rows.next()? {
                    converted.push(convert(&Row::Sqlite(row))?);
                }
                Ok(converted)
            }
            Self::Postgres(session) => {
                let rows = session.run(|client| client.query(sql, params))?;
                rows.iter()
                    .map(|row| convert(&Row::Postgres(row)))
                    .collect()
            }
        }
    }

    /// Runs a transaction step.
    pub(super) fn step(&self, step: Step) -> StoreResult<()> {
        match self {
            Self::Sqlite(conn) => Ok(conn.execute_batch(step.sql(false))?),
            Self::Postgres(session) => session.step(step),
        }
    }

    /// Whether a transaction is open (a transaction inside it is then a savepoint).
    pub(super) fn in_transaction(&self) -> bool {
        match self {
            Self::Sqlite(conn) => !conn.is_autocommit(),
            Self::Postgres(session) => session.transaction.get() != Transaction::Idle,
        }
    }
}

/// Where a PostgreSQL session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transaction {
    /// No transaction.
    Idle,
    /// A transaction accepting statements.
    Open,
    /// A transaction in which a statement failed: PostgreSQL refuses every statement but a
    /// rollback (to a savepoint), and turns a COMMIT into a rollback.
    Failed,
}

/// A PostgreSQL connection whose writes are fenced by the lease epoch it was opened with.
pub(super) struct PgSession {
    client: RefCell<PgClient>,
    transaction: Cell<Transaction>,
}

impl PgSession {
    /// Connects, runs migrations and sets the session's epoch for the fencing trigger.
    pub(super) fn open(url: &str, epoch: u64) -> StoreResult<Self> {
        let mut client = PgClient::connect(url)?;
        migrations::run_postgres(&mut client)?;
        let epoch = epoch.to_string();
        client.query(
            "SELECT set_config('baton.epoch', ?1, false)",
            params![epoch.as_str()],
        )?;
        Ok(Self {
            client: RefCell::new(client),
            transaction: Cell::new(Transaction::Idle),
        })
    }

    /// Runs `f` on the connection; a failure inside a transaction fails the transaction.
    fn run<T>(&self, f: impl FnOnce(&mut PgClient) -> StoreResult<T>) -> StoreResult<T> {
        let result = f(&mut self.client.borrow_mut());
        if result.is_err() && self.transaction.get() == Transaction::Open {
            self.transaction.set(Transaction::Failed);
        }
        result
    }

    fn step(&self, step: Step) -> StoreResult<()> {
        if step == Step::Commit && self.transaction.get() == Transaction::Failed {
            self.transaction.set(Transaction::Idle);
            self.client.borrow_mut().batch(Step::Rollback.sql(true))?;
            return Err(StoreError::RolledBack);
        }
        let result = self.run(|client| client.batch(step.sql(true)));
        match (step, &result) {
            (Step::Begin | Step::RollbackToSavepoint, Ok(())) => {
                self.transaction.set(Transaction::Open)
            }
            // PostgreSQL ends the transaction on a failed COMMIT too.
            (Step::Commit | Step::Rollback, _) => self.transaction.set(Transaction::Idle),
            _ => {}
        }
        result
    }
}
