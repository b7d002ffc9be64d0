//! The crate's error type, and how it becomes the [`TuneError`] the `Storage` trait speaks.

use std::path::PathBuf;

use greenlab_tune::TuneError;

/// Everything that can go wrong in a storage backend.
///
/// The [`greenlab_tune::Storage`] trait returns [`TuneError`]; every variant here converts into
/// it (`SchemaTooNew` and the trial/study errors keep their kind, the rest become
/// `TuneError::Storage` with this message).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage URL names no backend this build knows.
    #[error("unsupported storage URL {url:?}: {reason}; use one of {SUPPORTED_URLS}")]
    UnsupportedUrl {
        /// The URL as given (password redacted).
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The file exists but is not a greenlab SQLite database.
    #[error(
        "{} is not a greenlab study database ({reason}); pass the path of a greenlab .db file, or a new path to create one",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What SQLite or the schema check said.
        reason: String,
    },
    /// The SQLite database could not be opened or used.
    #[error("sqlite database {}: {message}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What went wrong, and what to do where we know.
        message: String,
    },
    /// The PostgreSQL server could not be reached or refused the connection.
    #[error(
        "cannot connect to PostgreSQL at {url}: {message}; check that the server is running and reachable from here, and that the user, password and database in the URL are right (for a throwaway local server run scripts/postgres-test.sh)"
    )]
    PostgresConnect {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        message: String,
    },
    /// The PostgreSQL password file cannot be used.
    #[error("password file {}: {message}", path.display())]
    Password {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A PostgreSQL statement failed.
    #[error("postgresql {url}: {message}")]
    Postgres {
        /// The URL, password redacted.
        url: String,
        /// What the server or driver said.
        message: String,
    },
    /// An error of the storage contract itself (unknown trial, conflicting outcome, ...).
    #[error(transparent)]
    Tune(#[from] TuneError),
}

/// The storage URL forms [`crate::open`] understands, for error messages.
pub const SUPPORTED_URLS: &str = "sqlite:///absolute/path.db, sqlite://relative/path.db, \
     a plain path ending in .db, postgres://user:password@host:port/database (or postgresql://), \
     memory:";

impl From<StoreError> for TuneError {
    fn from(e: StoreError) -> TuneError {
        match e {
            StoreError::Tune(t) => t,
            other => TuneError::Storage(other.to_string()),
        }
    }
}

/// `url` with any password replaced by `***`, both in the user-info part
/// (`postgres://user:secret@host`) and in a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db.example:5432/x"),
            "postgres://bob:***@db.example:5432/x"
        );
        assert_eq!(
            redact_url("postgresql://bob@db/x?password=hunter2&sslmode=disable"),
            "postgresql://bob@db/x?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn contract_errors_keep_their_kind() {
        let e: TuneError = StoreError::Tune(TuneError::UnknownTrial(7)).into();
        assert!(matches!(e, TuneError::UnknownTrial(7)));
        let e: TuneError = StoreError::Sqlite {
            path: "/x.db".into(),
            message: "disk full".into(),
        }
        .into();
        assert!(
            matches!(e, TuneError::Storage(m) if m.contains("/x.db") && m.contains("disk full"))
        );
    }
}
