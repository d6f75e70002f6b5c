//! The store's error type, the same for both backends.

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (the server's message, detail and hint included).
    #[error("postgresql: {}", describe(.0))]
    Postgres(postgres::Error),
    /// No connection to the database (named with its password hidden).
    #[error("cannot connect to {database}: {}", describe(.cause))]
    Connect {
        /// The database, password redacted.
        database: String,
        /// Why (its causes are in the message).
        cause: postgres::Error,
    },
    /// The URL's TLS settings cannot be used: a bad `sslmode`, an unreadable `sslrootcert`.
    #[error("cannot connect to {database}: {message}")]
    TlsSettings {
        /// The database, password redacted.
        database: String,
        /// What is wrong, and with which setting.
        message: String,
    },
    /// A write by a master whose lease another master has taken since: refused, nothing changed.
    #[error("{0}")]
    Fenced(String),
    /// A transaction was rolled back because a statement in it had failed.
    #[error("the transaction was rolled back: a statement in it failed")]
    RolledBack,
    /// A stored value this master cannot read.
    #[error("stored value in column {column} is invalid: {message}")]
    Invalid {
        /// Column index in the query.
        column: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// The database was asked for something it cannot do as configured.
    #[error("{0}")]
    Usage(String),
}

/// SQLSTATE the fencing trigger raises on a write without the current lease.
const FENCED_SQLSTATE: &str = "BF001";

/// What the process does once the store can no longer act for it (see [`on_fatal`]).
static FATAL: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sets what happens when a write is fenced (another master holds the lease) or a PostgreSQL
/// connection has closed: the master stops at once. Unset, callers just see the error.
pub fn on_fatal(action: fn(&str)) {
    let _ = FATAL.set(action);
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        let converted = match error.as_db_error() {
            Some(db) if db.code().code() == FENCED_SQLSTATE => Self::Fenced(db.message().into()),
            _ => Self::Postgres(error),
        };
        let fatal = match &converted {
            Self::Fenced(_) => true,
            Self::Postgres(e) => e.is_closed(),
            _ => false,
        };
        if let (true, Some(action)) = (fatal, FATAL.get()) {
            action(&converted.to_string());
        }
        converted
    }
}

/// The error and its causes: the client's own message says only "db error" and keeps the
/// server's message as its source.
fn describe(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
