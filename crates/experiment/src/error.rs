//! The crate's error type.

use greenlab_tune::TuneError;

/// Everything that can stop an experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// The design, the training settings or a trial's parameters are invalid; the message
    /// names the value and what to change.
    #[error("{0}")]
    Invalid(String),
    /// The storage or a study failed; `context` says what was being done.
    #[error("{context}")]
    Study {
        /// What was being done (`creating study rq1-quick-...`).
        context: String,
        /// The storage's or study's error.
        #[source]
        source: TuneError,
    },
    /// The storage failed.
    #[error(transparent)]
    Tune(#[from] TuneError),
    /// Another process still holds part of the work.
    #[error("{0}")]
    Busy(String),
    /// An interrupt (the caller's cancel flag) stopped the experiment; everything finished so
    /// far is stored and rerunning resumes. The message says how far it got.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A result could not be serialised.
    #[error("serialising {what}: {source}")]
    Serialise {
        /// What was serialised.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl ExperimentError {
    /// A storage or study failure while doing `context`.
    pub(crate) fn study(context: impl Into<String>) -> impl FnOnce(TuneError) -> ExperimentError {
        let context = context.into();
        move |source| ExperimentError::Study { context, source }
    }
}
