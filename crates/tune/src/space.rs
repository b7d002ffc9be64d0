//! Search spaces: named parameters with distributions, and the unit-cube view samplers work in.
//!
//! Every distribution maps to and from `[0, 1]` (`to_unit` / `from_unit`), log scales respected,
//! so that samplers (grid, quasi-random, Gaussian process, TPE) work in one normalised space.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::TuneError;

/// A parameter's distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// A real number in `[low, high]` (`high` excluded for sampling purposes only when equal
    /// to an open bound the user asked for; see `SearchSpace::validate`).
    Float {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// Sample uniformly in log space (requires `low > 0`).
        #[serde(default)]
        log: bool,
    },
    /// An integer in `[low, high]`, both included.
    Int {
        /// Lower bound.
        low: i64,
        /// Upper bound.
        high: i64,
        /// Sample uniformly in log space (requires `low > 0`).
        #[serde(default)]
        log: bool,
    },
    /// One of a list of choices.
    Categorical {
        /// The choices, in order.
        choices: Vec<ParamValue>,
    },
}

/// A parameter's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer (also used for integer categorical choices).
    Int(i64),
    /// A real number.
    Float(f64),
    /// A boolean choice.
    Bool(bool),
    /// A string choice.
    Str(String),
}

impl ParamValue {
    /// The value as a real number, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            ParamValue::Bool(_) | ParamValue::Str(_) => None,
        }
    }
}

impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}

impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Float(v)
    }
}

impl From<bool> for ParamValue {
    fn from(v: bool) -> Self {
        ParamValue::Bool(v)
    }
}

impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Str(v.to_string())
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// One trial's parameters, by name.
pub type Params = BTreeMap<String, ParamValue>;

/// Named parameters and their distributions, in a fixed (sorted) order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The parameters, sorted by name so that every process sees the same order.
    pub params: BTreeMap<String, Distribution>,
}

impl SearchSpace {
    /// A space from `(name, distribution)` pairs (a repeated name keeps its last distribution).
    ///
    /// ```
    /// use greenlab_tune::{Distribution, SearchSpace};
    /// let space = SearchSpace::new([
    ///     ("lr", Distribution::log_float(1e-5, 1e-1)),
    ///     ("conv", Distribution::int(1, 4)),
    ///     ("opt", Distribution::categorical(["adam", "sgd"])),
    /// ]);
    /// assert_eq!(space.dims(), 3);
    /// ```
    pub fn new<'a>(params: impl IntoIterator<Item = (&'a str, Distribution)>) -> SearchSpace {
        SearchSpace {
            params: params
                .into_iter()
                .map(|(name, d)| (name.to_string(), d))
                .collect(),
        }
    }

    /// Checks every distribution: finite bounds, `low < high`, positive bounds on log scales,
    /// at least one categorical choice, at least one parameter.
    pub fn validate(&self) -> Result<(), TuneError> {
        if self.params.is_empty() {
            return Err(TuneError::InvalidSpace(
                "the search space has no parameters".into(),
            ));
        }
        for (name, d) in &self.params {
            match d {
                Distribution::Float { low, high, log } => {
                    if !low.is_finite() || !high.is_finite() {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: bounds must be finite numbers"
                        )));
                    }
                    if low >= high {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: empty or inverted range [{low}, {high}]; low must be below high"
                        )));
                    }
                    if *log && *low <= 0.0 {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: a log scale needs low > 0 (got {low})"
                        )));
                    }
                }
                Distribution::Int { low, high, log } => {
                    if low > high {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: inverted range [{low}, {high}]; low must not exceed high"
                        )));
                    }
                    if *log && *low <= 0 {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: a log scale needs low > 0 (got {low})"
                        )));
                    }
                }
                Distribution::Categorical { choices } => {
                    if choices.is_empty() {
                        return Err(TuneError::InvalidSpace(format!(
                            "{name}: a categorical parameter needs at least one choice"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of parameters (dimensions of the unit cube).
    pub fn dims(&self) -> usize {
        self.params.len()
    }

    /// Maps a point of the unit cube (one coordinate per parameter, in name order) to parameters.
    /// Coordinates are clamped to `[0, 1]`.
    pub fn from_unit(&self, point: &[f64]) -> Result<Params, TuneError> {
        if point.len() != self.params.len() {
            return Err(TuneError::InvalidSpace(format!(
                "point has {} coordinates, the space has {} parameters",
                point.len(),
                self.params.len()
            )));
        }
        Ok(self
            .params
            .iter()
            .zip(point)
            .map(|((name, d), &u)| (name.clone(), d.from_unit(u)))
            .collect())
    }

    /// Maps parameters to the unit cube (name order); `None` where a parameter is missing or
    /// does not belong to its distribution.
    pub fn to_unit(&self, params: &Params) -> Option<Vec<f64>> {
        self.params
            .iter()
            .map(|(name, d)| params.get(name).and_then(|v| d.to_unit(v)))
            .collect()
    }
}

impl Distribution {
    /// A real number in `[low, high]`, linear scale.
    pub fn float(low: f64, high: f64) -> Distribution {
        Distribution::Float {
            low,
            high,
            log: false,
        }
    }

    /// A real number in `[low, high]`, log scale.
    pub fn log_float(low: f64, high: f64) -> Distribution {
        Distribution::Float {
            low,
            high,
            log: true,
        }
    }

    /// An integer in `[low, high]`, linear scale.
    pub fn int(low: i64, high: i64) -> Distribution {
        Distribution::Int {
            low,
            high,
            log: false,
        }
    }

    /// One of `choices`, in order.
    pub fn categorical<V: Into<ParamValue>>(choices: impl IntoIterator<Item = V>) -> Distribution {
        Distribution::Categorical {
            choices: choices.into_iter().map(Into::into).collect(),
        }
    }

    /// Maps `u ∈ [0, 1]` to a value (clamped; integers rounded; categoricals by equal bins).
    pub fn from_unit(&self, u: f64) -> ParamValue {
        let u = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
        match self {
            Distribution::Float { low, high, log } => {
                let x = if *log {
                    (low.ln() + u * (high.ln() - low.ln())).exp()
                } else {
                    low + u * (high - low)
                };
                ParamValue::Float(x.clamp(*low, *high))
            }
            Distribution::Int { low, high, log } => {
                // Integers own equal-width bins of the unit interval, so that every value is
                // equally likely under uniform sampling.
                let (lo, hi) = (*low as f64 - 0.5, *high as f64 + 0.5);
                let x = if *log {
                    let (llo, lhi) = ((*low as f64 - 0.5).max(0.5).ln(), hi.ln());
                    (llo + u * (lhi - llo)).exp()
                } else {
                    lo + u * (hi - lo)
                };
                ParamValue::Int((x.round() as i64).clamp(*low, *high))
            }
            Distribution::Categorical { choices } => {
                let n = choices.len();
                let i = ((u * n as f64).floor() as usize).min(n.saturating_sub(1));
                choices[i].clone()
            }
        }
    }

    /// The unit-interval centres of every value of a discrete distribution, in order: each
    /// categorical choice, and each integer when the range holds at most `max_int_values` of
    /// them; `None` for real numbers and for larger integer ranges. Grids and the model-based
    /// samplers search these levels one by one.
    pub fn unit_levels(&self, max_int_values: u64) -> Option<Vec<f64>> {
        match self {
            Distribution::Float { .. } => None,
            Distribution::Int { low, high, .. } => {
                let count = (*high as i128 - *low as i128 + 1).max(0) as u128;
                if count > max_int_values as u128 {
                    return None;
                }
                Some(
                    (*low..=*high)
                        .filter_map(|v| self.to_unit(&ParamValue::Int(v)))
                        .collect(),
                )
            }
            Distribution::Categorical { choices } => {
                let n = choices.len() as f64;
                Some((0..choices.len()).map(|i| (i as f64 + 0.5) / n).collect())
            }
        }
    }

    /// Maps a value to the centre of its place in `[0, 1]`; `None` if it does not belong here.
    pub fn to_unit(&self, v: &ParamValue) -> Option<f64> {
        match self {
            Distribution::Float { low, high, log } => {
                let x = v.as_f64()?;
                let u = if *log {
                    if x <= 0.0 {
                        return None;
                    }
                    (x.ln() - low.ln()) / (high.ln() - low.ln())
                } else {
                    (x - low) / (high - low)
                };
                Some(u.clamp(0.0, 1.0))
            }
            Distribution::Int { low, high, log } => {
                let x = v.as_f64()?;
                let hi = *high as f64 + 0.5;
                let u = if *log {
                    let llo = (*low as f64 - 0.5).max(0.5).ln();
                    (x.ln() - llo) / (hi.ln() - llo)
                } else {
                    let lo = *low as f64 - 0.5;
                    (x - lo) / (hi - lo)
                };
                Some(u.clamp(0.0, 1.0))
            }
            Distribution::Categorical { choices } => {
                let i = choices.iter().position(|c| c == v)?;
                Some((i as f64 + 0.5) / choices.len() as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper_space() -> SearchSpace {
        SearchSpace::new([
            ("lr", Distribution::log_float(1e-5, 1e-1)),
            ("beta1", Distribution::float(0.1, 0.999)),
            ("conv", Distribution::int(1, 4)),
            ("relu", Distribution::categorical([true, false])),
        ])
    }

    #[test]
    fn unit_round_trip_respects_log_scale() {
        let space = paper_space();
        space.validate().unwrap();
        let p = space.from_unit(&[0.5, 0.5, 0.5, 0.9]).unwrap();
        let lr = p["lr"].as_f64().unwrap();
        assert!(
            (lr - 1e-3).abs() < 1e-9,
            "log midpoint of [1e-5, 1e-1] is 1e-3, got {lr}"
        );
        assert_eq!(p["relu"], ParamValue::Bool(false));
        let u = space.to_unit(&p).unwrap();
        let back = space.from_unit(&u).unwrap();
        assert_eq!(p, back);
    }

    #[test]
    fn integers_get_equal_bins() {
        let d = Distribution::Int {
            low: 1,
            high: 4,
            log: false,
        };
        let counts = (0..400).fold([0usize; 4], |mut c, i| {
            if let ParamValue::Int(v) = d.from_unit((i as f64 + 0.5) / 400.0) {
                c[(v - 1) as usize] += 1;
            }
            c
        });
        assert_eq!(counts, [100, 100, 100, 100]);
    }

    #[test]
    fn inverted_and_empty_ranges_are_rejected() {
        let mut space = paper_space();
        space.params.insert(
            "bad".into(),
            Distribution::Float {
                low: 1.0,
                high: 1.0,
                log: false,
            },
        );
        assert!(matches!(space.validate(), Err(TuneError::InvalidSpace(m)) if m.contains("bad")));
        let mut space = paper_space();
        space.params.insert(
            "lg".into(),
            Distribution::Float {
                low: 0.0,
                high: 1.0,
                log: true,
            },
        );
        assert!(space.validate().is_err());
        assert!(SearchSpace::default().validate().is_err());
    }
}
