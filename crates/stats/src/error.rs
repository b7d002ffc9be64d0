//! The one error type of this crate.

/// Everything that can go wrong in greenlab-stats.
///
/// A degenerate design is always an error here, never a p-value: callers either fix the input
/// (more repetitions, another factor) or report that the test could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A column or factor name that the data do not have.
    #[error("unknown {what} `{name}`; available: {available}")]
    UnknownName {
        /// "column" or "factor".
        what: &'static str,
        /// The name that was asked for.
        name: String,
        /// The names that exist, comma-separated.
        available: String,
    },
    /// The same factor named twice.
    #[error("factor `{0}` is listed twice; name each factor once")]
    DuplicateFactor(String),
    /// A factor with a single level cannot be tested.
    #[error(
        "factor `{factor}` has only one level (`{level}`); a factor needs at least two levels, \
         drop it from the factor list"
    )]
    SingleLevel {
        /// The factor.
        factor: String,
        /// Its only level.
        level: String,
    },
    /// A cell of the factorial design without observations.
    #[error(
        "cell {cell} has no observations; the full-interaction model needs every combination of \
         levels (rerun the failed configurations or drop a factor)"
    )]
    EmptyCell {
        /// The cell, as `factor=level` pairs.
        cell: String,
    },
    /// No degrees of freedom left for the error term.
    #[error(
        "no residual degrees of freedom: {n} observations in {cells} cells; at least one cell \
         needs a second repetition"
    )]
    NoResidualDf {
        /// Observations.
        n: usize,
        /// Cells (or groups).
        cells: usize,
    },
    /// Too few observations for the requested computation.
    #[error("too few observations for {what}: need at least {needed}, got {got}")]
    TooFewObservations {
        /// What was being computed.
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// What was given.
        got: usize,
    },
    /// All observations equal (within groups, or overall): the statistic is undefined.
    #[error("{0}: the data have no variance, so the test statistic is undefined")]
    ZeroVariance(&'static str),
    /// A NaN or infinite value where a finite number is required.
    #[error("{what}: value {index} is {value}, expected a finite number")]
    NonFinite {
        /// Which input.
        what: String,
        /// Zero-based position.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Inputs of different lengths that must match.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        /// Which inputs.
        what: String,
        /// First length.
        left: usize,
        /// Second length.
        right: usize,
    },
    /// A parameter outside its domain (a confidence level of 1.5, zero resamples, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A CSV cell that should be a number is not.
    #[error(
        "{source_name}: column `{column}`, line {line}: `{value}` is not a number; fix the value \
         or choose another response column"
    )]
    NotNumeric {
        /// File name (or "<input>").
        source_name: String,
        /// Column name.
        column: String,
        /// One-based line number in the file (header is line 1).
        line: u64,
        /// The text found.
        value: String,
    },
    /// The CSV could not be read or parsed.
    #[error("{source_name}: {message}")]
    Csv {
        /// File name (or "<input>").
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// A numerical routine did not converge.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, StatsError>;

pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            what: what.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_confidence(confidence: f64) -> Result<()> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidArgument(format!(
            "confidence level {confidence} must lie strictly between 0 and 1 (e.g. 0.95)"
        )))
    }
}
