//! One PostgreSQL connection through the synchronous client, with its statements prepared once.

use std::collections::HashMap;

use postgres::Statement;
use postgres::types::ToSql;

use super::StoreResult;
use super::value::Value;

/// A connection and the statements prepared on it, by SQL text.
pub(crate) struct PgClient {
    /// Always Some but while dropping.
    client: Option<postgres::Client>,
    statements: HashMap<String, Statement>,
}

impl PgClient {
    /// Connects to the database at `url`, over TLS as its `sslmode` says.
    pub(crate) fn connect(url: &str) -> StoreResult<Self> {
        Ok(Self {
            client: Some(super::pg_tls::connect(url)?),
            statements: HashMap::new(),
        })
    }

    /// Runs one statement (`?N` placeholders); returns the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        let params = as_params(params);
        Ok(blocking(|| self.client().execute(&statement, &params))?)
    }

    /// Runs one query (`?N` placeholders); returns its rows.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> StoreResult<Vec<postgres::Row>> {
        let statement = self.statement(sql)?;
        let params = as_params(params);
        Ok(blocking(|| self.client().query(&statement, &params))?)
    }

    /// Runs statements without parameters, unprepared (transaction control, DDL).
    pub(crate) fn batch(&mut self, sql: &str) -> StoreResult<()> {
        Ok(blocking(|| self.client().batch_execute(sql))?)
    }

    /// The prepared statement for `sql`, prepared on first use.
    fn statement(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let translated = placeholders(sql);
        let statement = blocking(|| self.client().prepare(&translated))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn client(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("connection open until dropped")
    }
}

impl Drop for PgClient {
    /// Closing the connection blocks on the client's runtime, which a runtime worker must not.
    fn drop(&mut self) {
        self.statements.clear();
        let client = self.client.take();
        blocking(move || drop(client));
    }
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
fn placeholders(sql: &str) -> String {
    let mut translated = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = chars.peek().is_some_and(char::is_ascii_digit);
        translated.push(if c == '?' && numbered { '$' } else { c });
    }
    translated
}

fn as_params<'a>(params: &'a [Value<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Runs `f`, which blocks on the client's own runtime: on a worker of a multi-thread tokio
/// runtime inside `block_in_place`, so that the worker's other tasks move on meanwhile; directly
/// elsewhere (a plain thread, a blocking-pool thread). A current-thread runtime cannot block: the
/// PostgreSQL store is not for one.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_dollars() {
        assert_eq!(
            placeholders("UPDATE t SET a = ?2 WHERE id = ?1 AND b = '?'"),
            "UPDATE t SET a = $2 WHERE id = $1 AND b = '?'"
        );
    }
}
