//! The crate's error type.

/// Everything that can go wrong while tuning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuneError {
    /// The search space or study configuration is invalid.
    #[error("invalid search space: {0}")]
    InvalidSpace(String),
    /// A study configuration is invalid (unknown sampler, bad objective, ...).
    #[error("invalid study configuration: {0}")]
    InvalidConfig(String),
    /// A study of that name does not exist in the storage.
    #[error("no study named {0:?} in this storage; create it with `greenlab tune`")]
    UnknownStudy(String),
    /// A study exists under that name with a different definition.
    #[error("a study named {0:?} already exists with a different definition; pick another name")]
    StudyConflict(String),
    /// No trial with that id.
    #[error("no trial with id {0}")]
    UnknownTrial(i64),
    /// The trial is not in a state that allows the operation (for instance, already finished).
    #[error("trial {trial}: {message}")]
    TrialState {
        /// The trial id.
        trial: i64,
        /// What was wrong.
        message: String,
    },
    /// The storage backend failed (connection, SQL, I/O).
    #[error("storage: {0}")]
    Storage(String),
    /// The storage was written by a newer greenlab.
    #[error(
        "storage schema version {found} is newer than this greenlab supports ({supported}); upgrade greenlab"
    )]
    SchemaTooNew {
        /// Version found in the storage.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
    /// A sampler could not produce a suggestion.
    #[error("sampler {sampler}: {message}")]
    Sampler {
        /// Sampler name.
        sampler: String,
        /// What went wrong.
        message: String,
    },
    /// The objective failed (crashed, printed no metric, ...).
    #[error("objective: {0}")]
    Objective(String),
    /// Work that needs energy figures met a trial whose energy is unknown (never counted as 0).
    #[error(
        "study {study:?}, trial {trial}: no energy measured ({why}); comparisons, budgets and \
         energy objectives need measured or estimated energy (see `greenlab meters`)"
    )]
    UnknownEnergy {
        /// The study.
        study: String,
        /// The trial number.
        trial: u64,
        /// Why its energy is unknown.
        why: String,
    },
}
