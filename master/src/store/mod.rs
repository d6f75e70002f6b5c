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
        let mut store = Self { conn };
        migrations::run(&mut store.conn)?;
        Ok(store)
    }

    /// Opens a private in-memory database (for tests and replays).
    pub fn in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory()?;
        migrations::run(&mut conn)?;
        Ok(Self { conn })
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Store) -> StoreResult<T>) -> StoreResult<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(value) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
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
