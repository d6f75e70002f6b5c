//! Which database the master keeps its state in, named by a URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::pg_tls::PgTls;

/// Where the master keeps its state.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, owned by one master.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/NAME`, TLS as its `sslmode` and
    /// `sslrootcert` say), shared by masters that take turns through its lease.
    Postgres(String),
}

impl FromStr for Database {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            PgTls::split(value).map_err(|message| format!("{}: {message}", redact(value)))?;
            return Ok(Self::Postgres(value.to_string()));
        }
        match value.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ => Err(format!(
                "unsupported database {:?}: expected postgres://USER:PASSWORD@HOST:PORT/NAME \
                 (or postgresql://…) or sqlite://PATH",
                redact(value)
            )),
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// Like Display: a password never reaches a log through a derived Debug.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `url` with the password of its user part and of a `password=` parameter shown as `***`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut text = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}:***@{host}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        text = format!("{text}?{}", parameters.join("&"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_and_a_bad_value_names_itself_and_what_is_accepted() {
        let pg = "postgres://baton:secret@db:5432/baton".parse::<Database>();
        assert_eq!(
            pg,
            Ok(Database::Postgres(
                "postgres://baton:secret@db:5432/baton".into()
            ))
        );
        assert!(matches!(
            "postgresql://db/baton".parse(),
            Ok(Database::Postgres(_))
        ));
        assert_eq!(
            "sqlite:///var/lib/baton/baton.db".parse(),
            Ok(Database::Sqlite("/var/lib/baton/baton.db".into()))
        );
        let error = "mysql://root:hunter2@db/baton"
            .parse::<Database>()
            .unwrap_err();
        assert!(error.contains("\"mysql://root:***@db/baton\""), "{error}");
        assert!(
            error.contains("postgres://") && error.contains("sqlite://PATH"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        assert!("sqlite://".parse::<Database>().is_err());
    }

    #[test]
    fn passwords_never_show() {
        let database = Database::Postgres(
            "postgres://baton:s3cr3t@db.example:5432/baton?sslmode=disable&password=other".into(),
        );
        for shown in [database.to_string(), format!("{database:?}")] {
            assert_eq!(
                shown,
                "postgres://baton:***@db.example:5432/baton?sslmode=disable&password=***"
            );
        }
        assert_eq!(
            redact("postgres://baton@db/baton"),
            "postgres://baton@db/baton"
        );
        assert_eq!(redact("postgres://a:b:c@db"), "postgres://a:***@db");
    }
}
