//! Statement parameters and result rows, the same for both backends: integers are SQLite's
//! INTEGER and PostgreSQL's BIGINT, text is TEXT, bytes are BLOB or BYTEA.

use std::error::Error;

use postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{StoreError, StoreResult};

/// A statement parameter, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer: an error beyond `i64::MAX`.
    UInt(u64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
    /// NULL.
    Null,
}

/// The parameters of a statement, `?1` first.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::value::Value::from($value)),*] as &[$crate::store::value::Value<'_>]
    };
}
pub(crate) use params;

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<u64> for Value<'_> {
    fn from(value: u64) -> Self {
        Self::UInt(value)
    }
}

impl From<u32> for Value<'_> {
    fn from(value: u32) -> Self {
        Self::Int(value.into())
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(value: &'a str) -> Self {
        Self::Text(value)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(value: &'a String) -> Self {
        Self::Text(value)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(value: &'a Option<String>) -> Self {
        value.as_deref().map_or(Self::Null, Self::Text)
    }
}

impl From<Option<u32>> for Value<'_> {
    fn from(value: Option<u32>) -> Self {
        value.map_or(Self::Null, Self::from)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(value: &'a [u8]) -> Self {
        Self::Blob(value)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Self::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(value)),
            Self::UInt(value) => ToSqlOutput::Borrowed(ValueRef::Integer(
                i64::try_from(value)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            )),
            Self::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Self::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Self::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

impl PgToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Self::Int(value) => value.to_sql_checked(ty, out),
            Self::UInt(value) => i64::try_from(value)?.to_sql_checked(ty, out),
            Self::Text(text) => text.to_sql_checked(ty, out),
            Self::Blob(bytes) => bytes.to_sql_checked(ty, out),
            Self::Null => Ok(IsNull::Yes),
        }
    }

    /// Any type here; each variant checks its own in `to_sql`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One result row of either backend.
pub(crate) enum Row<'a> {
    /// A row of an SQLite statement.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A row of a PostgreSQL statement.
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `index`, converted.
    pub(crate) fn get<T: Column>(&self, index: usize) -> StoreResult<T> {
        match self {
            Self::Sqlite(row) => Ok(row.get(index)?),
            Self::Postgres(row) => T::from_postgres(row, index),
        }
    }

    /// Column `index` parsed into a state enum; an unknown name is an error that names it.
    pub(crate) fn parsed<T>(&self, index: usize) -> StoreResult<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text: String = self.get(index)?;
        text.parse().map_err(|e: T::Err| StoreError::Invalid {
            column: index,
            message: e.to_string(),
        })
    }
}

/// A Rust type a column converts to on both backends.
pub(crate) trait Column: rusqlite::types::FromSql + Sized {
    /// Column `index` of a PostgreSQL row.
    fn from_postgres(row: &postgres::Row, index: usize) -> StoreResult<Self>;
}

/// Types PostgreSQL converts itself.
macro_rules! direct_columns {
    ($($ty:ty),*) => {$(
        impl Column for $ty {
            fn from_postgres(row: &postgres::Row, index: usize) -> StoreResult<Self> {
                Ok(row.try_get(index)?)
            }
        }
    )*};
}
direct_columns!(i64, String, Option<String>, Vec<u8>);

/// Unsigned types, stored as BIGINT: a negative or too large value is an error.
macro_rules! unsigned_columns {
    ($($ty:ty),*) => {$(
        impl Column for $ty {
            fn from_postgres(row: &postgres::Row, index: usize) -> StoreResult<Self> {
                let value: i64 = row.try_get(index)?;
                Self::try_from(value).map_err(|e| StoreError::Invalid {
                    column: index,
                    message: format!("{value}: {e}"),
                })
            }
        }
    )*};
}
unsigned_columns!(u64, u32);

impl Column for Option<u32> {
    fn from_postgres(row: &postgres::Row, index: usize) -> StoreResult<Self> {
        let value: Option<i64> = row.try_get(index)?;
        value
            .map(|value| {
                u32::try_from(value).map_err(|e| StoreError::Invalid {
                    column: index,
                    message: format!("{value}: {e}"),
                })
            })
            .transpose()
    }
}
