//! The database schema, as numbered migrations per SQL dialect.
//!
//! Table `greenlab_schema` holds one row per applied migration; the highest version is the
//! schema's version. A database whose version is above [`SCHEMA_VERSION`] was written by a
//! newer greenlab and is refused with `TuneError::SchemaTooNew` rather than misread. A new
//! migration is appended to both lists (never edit an applied one) and bumps the constant.

/// The highest schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 3;

/// Version 2: the lease holder's host, process id and process identity (so a worker on the
/// same machine can reap a dead worker's trial at once), and `retry_of` (the original trial a
/// retry of a lost trial runs again). The same statements in both dialects.
const LEASE_HOLDERS: &str = "ALTER TABLE trials ADD COLUMN host TEXT;
    ALTER TABLE trials ADD COLUMN pid BIGINT;
    ALTER TABLE trials ADD COLUMN process_identity TEXT;
    ALTER TABLE trials ADD COLUMN retry_of BIGINT;
    CREATE INDEX trials_by_retry ON trials (study_id, retry_of);";

/// SQLite migrations: `(version, statements)`.
pub const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec_json TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_number INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id),
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        values_json TEXT,
        energy TEXT,
        attrs TEXT NOT NULL DEFAULT '{}',
        worker TEXT,
        lease_expires_at REAL,
        started_at REAL,
        finished_at REAL,
        UNIQUE (study_id, number)
    );
    CREATE INDEX trials_by_state ON trials (study_id, state, number);
    CREATE TABLE intermediate (
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        step INTEGER NOT NULL,
        value REAL,
        energy_j REAL NOT NULL,
        PRIMARY KEY (trial_id, step)
    );",
    ),
    (2, LEASE_HOLDERS),
    (
        3,
        // Unknown energy is not zero: an intermediate report's energy may be NULL. SQLite
        // cannot drop a NOT NULL constraint, so the table is rebuilt with its rows.
        "CREATE TABLE intermediate_v2 (
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        step INTEGER NOT NULL,
        value REAL,
        energy_j REAL,
        PRIMARY KEY (trial_id, step)
    );
    INSERT INTO intermediate_v2 (trial_id, step, value, energy_j)
        SELECT trial_id, step, value, energy_j FROM intermediate;
    DROP TABLE intermediate;
    ALTER TABLE intermediate_v2 RENAME TO intermediate;",
    ),
];

/// PostgreSQL migrations: `(version, statements)`.
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE studies (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec_json TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        next_number BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE trials (
        id BIGSERIAL PRIMARY KEY,
        study_id BIGINT NOT NULL REFERENCES studies(id),
        number BIGINT NOT NULL,
        state TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        values_json TEXT,
        energy TEXT,
        attrs TEXT NOT NULL DEFAULT '{}',
        worker TEXT,
        lease_expires_at DOUBLE PRECISION,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        UNIQUE (study_id, number)
    );
    CREATE INDEX trials_by_state ON trials (study_id, state, number);
    CREATE TABLE intermediate (
        trial_id BIGINT NOT NULL REFERENCES trials(id),
        step BIGINT NOT NULL,
        value DOUBLE PRECISION,
        energy_j DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (trial_id, step)
    );",
    ),
    (2, LEASE_HOLDERS),
    (
        3,
        // Unknown energy is not zero: an intermediate report's energy may be NULL.
        "ALTER TABLE intermediate ALTER COLUMN energy_j DROP NOT NULL;",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_reach_the_current_version_in_order() {
        for migrations in [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS] {
            let versions: Vec<i64> = migrations.iter().map(|(v, _)| *v).collect();
            let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
            assert_eq!(versions, expected);
        }
    }
}
