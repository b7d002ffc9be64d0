//! greenlab-store: where studies live — SQLite for one machine, PostgreSQL for many.
//!
//! This crate implements `greenlab_tune`'s [`Storage`] trait twice: [`SqliteStorage`] keeps a
//! study in one file that any number of local threads and processes share (WAL, busy
//! timeouts and retried `BEGIN IMMEDIATE` transactions, so no worker ever sees "database is
//! locked"), and [`PostgresStorage`] keeps it in a PostgreSQL database for workers on many
//! machines (server clock, `SKIP LOCKED` claims). Both use the same schema, versioned and
//! migrated on open; a database written by a newer greenlab is refused with
//! `TuneError::SchemaTooNew`, never misread. [`open`] picks a backend from a URL.
//!
//! It does not decide anything about a study (that is `greenlab-tune`'s job), does not read
//! environment variables, and does not speak TLS to PostgreSQL.
//!
//! ```no_run
//! use std::time::Duration;
//! use greenlab_tune::Storage;
//!
//! let storage = greenlab_store::open("sqlite:///tmp/study.db")?;
//! let study = storage.create_study("lenet-bo", r#"{"sampler":"gp"}"#)?;
//! let trial = storage.create_trial(study.id, "host-1/pid-42", Duration::from_secs(60))?;
//! assert_eq!(trial.number, 0);
//! # Ok::<(), greenlab_tune::TuneError>(())
//! ```

mod codec;
pub mod error;
pub mod optuna;
pub mod pgpass;
mod pool;
pub mod postgres;
pub mod schema;
pub mod sqlite;

use std::path::PathBuf;

pub use error::{SUPPORTED_URLS, StoreError, redact_url};
pub use optuna::export_optuna;
pub use pgpass::PasswordSources;
pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

use greenlab_tune::{MemoryStorage, Storage, TuneError};

pub use codec::LEASE_EXPIRED;

/// A storage location, parsed from a URL by [`Location::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (kept whole: the driver parses it).
    Postgres(String),
    /// Process memory (nothing persisted).
    Memory,
}

impl Location {
    /// Parses a storage URL:
    /// - `sqlite:///absolute/path.db` (three slashes: an absolute path),
    ///   `sqlite://relative/path.db` or `sqlite:relative/path.db` (relative to the working
    ///   directory);
    /// - a plain path ending in `.db`, `.sqlite` or `.sqlite3`;
    /// - `postgres://…` or `postgresql://…` (user, password, host, port, database, and
    ///   libpq-style query parameters);
    /// - `memory:` (one process, nothing persisted).
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let unsupported = |reason: &str| StoreError::UnsupportedUrl {
            url: error::redact_url(url),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(unsupported("it is empty"));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Location::Postgres(trimmed.to_string()));
        }
        if lower == "memory:" || lower == "memory://" {
            return Ok(Location::Memory);
        }
        if lower.starts_with("sqlite:") {
            let rest = &trimmed["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(unsupported("the sqlite URL names no file"));
            }
            if path == ":memory:" {
                return Err(unsupported(
                    "an in-memory SQLite database cannot be shared by workers; use memory:",
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(unsupported(&format!("unknown scheme {scheme:?}")));
        }
        let is_db_file = [".db", ".sqlite", ".sqlite3"]
            .iter()
            .any(|ext| lower.ends_with(ext));
        if is_db_file {
            return Ok(Location::Sqlite(PathBuf::from(trimmed)));
        }
        Err(unsupported(
            "it has no scheme and is not a path ending in .db, .sqlite or .sqlite3",
        ))
    }
}

/// Opens the storage at `url` (forms: see [`Location::parse`]): creates a SQLite file if
/// needed, connects to PostgreSQL, migrates the schema.
///
/// Errors name the URL (password redacted) and say what to do: an unknown scheme lists the
/// supported forms; an unreachable server says to check that it runs and that the URL is
/// right; a file that is not a greenlab database says so; a newer schema is
/// `TuneError::SchemaTooNew`.
pub fn open(url: &str) -> Result<Box<dyn Storage>, TuneError> {
    open_with(url, &PasswordSources::default())
}

/// [`open`], with PostgreSQL passwords from `passwords` when the URL has none (libpq's
/// `PGPASSWORD` and `~/.pgpass`; see [`pgpass`]).
pub fn open_with(url: &str, passwords: &PasswordSources) -> Result<Box<dyn Storage>, TuneError> {
    Ok(match Location::parse(url)? {
        Location::Sqlite(path) => Box::new(SqliteStorage::open(path)?),
        Location::Postgres(url) => Box::new(PostgresStorage::open_with(&url, passwords)?),
        Location::Memory => Box::new(MemoryStorage::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_url_form() {
        let cases = [
            (
                "sqlite:///abs/study.db",
                Location::Sqlite("/abs/study.db".into()),
            ),
            (
                "sqlite://rel/study.db",
                Location::Sqlite("rel/study.db".into()),
            ),
            ("sqlite:rel.db", Location::Sqlite("rel.db".into())),
            ("SQLite:///x/y", Location::Sqlite("/x/y".into())),
            ("runs/study.db", Location::Sqlite("runs/study.db".into())),
            (
                "/abs/study.sqlite3",
                Location::Sqlite("/abs/study.sqlite3".into()),
            ),
            (
                "postgres://u:p@h:5432/d",
                Location::Postgres("postgres://u:p@h:5432/d".into()),
            ),
            (
                "postgresql://h/d?sslmode=disable",
                Location::Postgres("postgresql://h/d?sslmode=disable".into()),
            ),
            ("memory:", Location::Memory),
        ];
        for (url, expected) in cases {
            assert_eq!(Location::parse(url).unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn unknown_schemes_list_the_supported_forms_and_hide_passwords() {
        let e = Location::parse("mysql://root:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"mysql\""), "{e}");
        assert!(e.contains("sqlite:///") && e.contains("postgres://") && e.contains("memory:"));
        assert!(!e.contains("hunter2"), "{e}");
        for bad in ["", "study", "sqlite://", "sqlite://:memory:"] {
            assert!(Location::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn memory_urls_open_an_empty_storage() {
        let s = open("memory:").unwrap();
        assert!(s.list_studies().unwrap().is_empty());
    }
}
