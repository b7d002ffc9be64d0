//! PostgreSQL passwords from where libpq users keep them: `PGPASSWORD`, and the password file
//! (`PGPASSFILE`, by default `~/.pgpass`), so that no password needs to be in a storage URL
//! (where `ps` and shell histories would show it).
//!
//! This crate reads no environment variables: the caller fills [`PasswordSources`] from them
//! (the `greenlab` command does), and [`PostgresStorage::open_with`](crate::PostgresStorage)
//! uses them only when the URL carries no password, in libpq's order.

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Where a password comes from when the URL has none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordSources {
    /// The value of `PGPASSWORD`, if set.
    pub password: Option<String>,
    /// The password file: `PGPASSFILE`, or `~/.pgpass`.
    pub passfile: Option<PathBuf>,
}

/// The password for this connection from a password file's text: the first line whose
/// `hostname:port:database:username` fields match (each may be `*`; `\:` and `\\` are a literal
/// colon and backslash; lines starting with `#` are comments), as libpq reads `~/.pgpass`.
pub fn lookup(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_fields(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
            // libpq lets `localhost` stand for a Unix-domain socket too.
            let host_ok = matches(h, host) || (h == "localhost" && host.starts_with('/'));
            (host_ok && matches(p, &port) && matches(d, database) && matches(u, user))
                .then(|| password.clone())
        })
}

/// Splits a password-file line at unescaped colons into at most five fields (the password, the
/// last, may hold colons).
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// Reads the password file at `path`, if it exists. Like libpq, a file that others may read
/// or write is not used; unlike libpq (which warns and goes on), that is an error, so the
/// reason a login fails is never hidden.
pub fn read_passfile(path: &Path) -> Result<Option<String>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Password {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::Password {
            path: path.to_path_buf(),
            message: format!(
                "it has permissions {:o}, so others may read it; run `chmod 600 {}`",
                mode & 0o777,
                path.display()
            ),
        });
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| StoreError::Password {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
db.example:5432:studies:alice:first
*:*:other:alice:wild\\:card
db.example:5433:*:*:any-db-on-5433
localhost:5432:*:bob:sock
";

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        assert_eq!(
            lookup(FILE, "db.example", 5432, "studies", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup(FILE, "elsewhere", 1, "other", "alice").as_deref(),
            Some("wild:card")
        );
        assert_eq!(
            lookup(FILE, "db.example", 5433, "x", "carol").as_deref(),
            Some("any-db-on-5433")
        );
        assert_eq!(
            lookup(FILE, "/tmp", 5432, "x", "bob").as_deref(),
            Some("sock"),
            "localhost matches a socket directory"
        );
        assert_eq!(lookup(FILE, "db.example", 5432, "studies", "dave"), None);
        assert_eq!(lookup("short:line", "h", 1, "d", "u"), None);
    }

    #[test]
    fn a_file_others_can_read_is_refused_and_a_missing_one_is_fine() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        assert_eq!(read_passfile(&path).unwrap(), None);
        std::fs::write(&path, FILE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_passfile(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("pgpass"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_passfile(&path).unwrap().as_deref(), Some(FILE));
    }
}
