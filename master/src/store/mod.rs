//! The master's durable state: an embedded SQLite database (WAL) with forward-only migrations.

mod checkpoints;
mod experiments;
mod logs;
mod migrations;
mod trials;

pub use checkpoints::{CheckpointRow, kept_bytes_by_experiment};
pub use experiments::ExperimentRow;
pub use logs::LogRow;
pub use trials::{AllocationRow, TrialRow, ValidationRow};

use std::path::Path;

use rusqlite::Connection;

/// Errors from the database.
pub type StoreResult<T> = Result<T, rusqlite::Error>;

/// The database file under the data directory.
const DATABASE_FILE: &str = "baton.db";

/// Compiled statements kept per connection (every statement the master runs often).
const STATEMENT_CACHE: usize = 64;

/// The master's database connection; owned by the cluster task.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database under `data_dir` and runs migrations.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let conn = Connection::open(data_dir.join(DATABASE_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut store = Self { conn };
        migrations::run(&mut store.conn)?;
        Ok(store)
    }

    /// Opens a private in-memory database (for tests and replays).
    pub fn in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory()?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrations::run(&mut conn)?;
        Ok(Self { conn })
    }

    /// Runs one statement, compiled once per connection.
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// Starts a transaction holding the writes that follow until [`Store::end_batch`]: many small
    /// writes, one commit. A [`Store::transaction`] inside it is a savepoint.
    pub fn begin_batch(&self) -> StoreResult<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")
    }

    /// Commits the writes since [`Store::begin_batch`] (rolled back when the commit fails).
    pub fn end_batch(&self) -> StoreResult<()> {
        self.conn.execute_batch("COMMIT").inspect_err(|_| {
            let _ = self.conn.execute_batch("ROLLBACK");
        })
    }

    /// Runs `f` in one transaction (a savepoint inside a batch: all of it or none of it).
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Store) -> StoreResult<T>) -> StoreResult<T> {
        let (begin, commit, rollback) = if self.conn.is_autocommit() {
            ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        } else {
            (
                "SAVEPOINT part",
                "RELEASE part",
                "ROLLBACK TO part; RELEASE part",
            )
        };
        self.conn.execute_batch(begin)?;
        match f(self) {
            Ok(value) => {
                self.conn.execute_batch(commit)?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch(rollback);
                Err(e)
            }
        }
    }
}

/// Column `index` of `row` parsed into a state enum; an unknown name is a conversion error that
/// names it.
pub(crate) fn parsed<T>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_transaction_inside_a_batch_undoes_only_itself() {
        let mut store = Store::in_memory().unwrap();
        store.begin_batch().unwrap();
        store.insert_experiment("kept", "yaml", b"", 0).unwrap();
        let failed: StoreResult<()> = store.transaction(|store| {
            store.insert_experiment("undone", "yaml", b"", 0)?;
            Err(rusqlite::Error::InvalidQuery)
        });
        assert!(failed.is_err());
        store.end_batch().unwrap();
        store
            .transaction(|store| store.insert_experiment("after", "yaml", b"", 0))
            .unwrap();
        let names: Vec<String> = store
            .list_experiments()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["kept", "after"]);
    }
}
