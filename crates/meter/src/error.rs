//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while measuring energy.
///
/// `Unsupported` is kept apart from I/O failures so that callers (and `MeterChoice::Auto`) can
/// fall back to the next source when a meter is simply not available on this machine, while
/// still surfacing real faults (a file that disappears mid-run, a counter that goes backwards).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeterError {
    /// This source cannot be used here (no such hardware, driver, library, or permission).
    /// The message says why and what to do.
    #[error("{0}")]
    Unsupported(String),

    /// A file of a hardware tree could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A file of a hardware tree holds something that is not what the kernel documents.
    #[error("malformed {}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A source opened but its counters did not move during the probe: it cannot measure
    /// anything here. Only a source the user forced is an error; `auto` moves on.
    #[error("{source_name}: {detail}")]
    NotMoving {
        /// The source (`perf`, `rapl`, `nvml`).
        source_name: String,
        /// Which counters, for how long, and what to do.
        detail: String,
    },

    /// A counter went backwards by more than a wrap can explain.
    #[error("{domain}: {detail}")]
    Implausible {
        /// The domain whose counter misbehaved.
        domain: String,
        /// What was seen.
        detail: String,
    },

    /// The NVIDIA management library reported an error.
    #[error("nvml: {0}")]
    Nvml(String),

    /// A configuration value is out of range (for example a negative TDP).
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// Which setting.
        what: &'static str,
        /// Why it is rejected and what is accepted.
        reason: String,
    },

    /// A window id that was never begun, or was already ended.
    #[error("no open measurement window with id {0}; each begin must be ended exactly once")]
    UnknownWindow(u64),
}

impl MeterError {
    /// Whether this error means "not available here" (fall back) rather than a fault.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, MeterError::Unsupported(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> MeterError {
        MeterError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, reason: impl Into<String>) -> MeterError {
        MeterError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
