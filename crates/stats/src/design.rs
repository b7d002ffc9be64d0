//! Factors, cells and groups: how observations are classified.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Result, StatsError};

/// A categorical factor: one level label per observation.
///
/// Levels are ordered numerically when every label parses as a number (`1 < 4 < 16`),
/// otherwise lexicographically, so tables come out in the order a reader expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    name: String,
    levels: Vec<String>,
    codes: Vec<usize>,
}

fn level_order(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

impl Factor {
    /// Builds a factor from one label per observation.
    pub fn new<S: ToString>(name: impl Into<String>, values: impl IntoIterator<Item = S>) -> Self {
        let raw: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
        let mut levels: Vec<String> = raw.clone();
        let numeric = levels.iter().all(|l| l.trim().parse::<f64>().is_ok());
        if numeric {
            levels.sort_by(|a, b| level_order(a, b));
        } else {
            levels.sort();
        }
        levels.dedup();
        let index: BTreeMap<&str, usize> = levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let codes = raw.iter().map(|v| index[v.as_str()]).collect();
        Factor {
            name: name.into(),
            levels,
            codes,
        }
    }

    /// The factor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its distinct levels, in display order.
    pub fn levels(&self) -> &[String] {
        &self.levels
    }

    /// Level index of every observation.
    pub fn codes(&self) -> &[usize] {
        &self.codes
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are no observations.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// A labelled sample: one group of a one-way comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The level (or the cell's levels joined with `,`).
    pub label: String,
    /// The observations.
    pub values: Vec<f64>,
}

impl Group {
    /// A group from a label and its values.
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Self {
        Group {
            label: label.into(),
            values,
        }
    }
}

/// Checks that factors and response line up: at least one factor, unique names, equal lengths.
pub(crate) fn check_factors(response_len: usize, factors: &[Factor]) -> Result<()> {
    if factors.is_empty() {
        return Err(StatsError::InvalidArgument(
            "name at least one factor".into(),
        ));
    }
    for (i, f) in factors.iter().enumerate() {
        if factors[..i].iter().any(|g| g.name == f.name) {
            return Err(StatsError::DuplicateFactor(f.name.clone()));
        }
        if f.len() != response_len {
            return Err(StatsError::LengthMismatch {
                what: format!("factor `{}` and response", f.name),
                left: f.len(),
                right: response_len,
            });
        }
    }
    Ok(())
}

/// Observations split by the combination of levels of `factors` (one factor: its levels;
/// several: the interaction cells, labelled `l1,l2,…` in mixed-radix order of the levels).
///
/// Only combinations that occur are returned; use [`crate::anova()`] when every cell must exist.
///
/// # Errors
/// No factor, a duplicate factor name, or lengths that differ.
pub fn group_by(response: &[f64], factors: &[Factor]) -> Result<Vec<Group>> {
    check_factors(response.len(), factors)?;
    let mut cells: BTreeMap<Vec<usize>, Vec<f64>> = BTreeMap::new();
    for (i, &y) in response.iter().enumerate() {
        let key: Vec<usize> = factors.iter().map(|f| f.codes[i]).collect();
        cells.entry(key).or_default().push(y);
    }
    Ok(cells
        .into_iter()
        .map(|(key, values)| Group {
            label: cell_label(factors, &key),
            values,
        })
        .collect())
}

pub(crate) fn cell_label(factors: &[Factor], key: &[usize]) -> String {
    factors
        .iter()
        .zip(key)
        .map(|(f, &c)| f.levels[c].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn cell_description(factors: &[Factor], key: &[usize]) -> String {
    factors
        .iter()
        .zip(key)
        .map(|(f, &c)| format!("{}={}", f.name, f.levels[c]))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_levels_sort_numerically() {
        let f = Factor::new("conv", ["4", "16", "1", "4"]);
        assert_eq!(f.levels(), ["1", "4", "16"]);
        assert_eq!(f.codes(), [1, 2, 0, 1]);
    }

    #[test]
    fn groups_follow_level_order() {
        let a = Factor::new("a", ["x", "y", "x", "y"]);
        let b = Factor::new("b", [2, 1, 1, 2]);
        let g = group_by(&[1.0, 2.0, 3.0, 4.0], &[a, b]).unwrap();
        let labels: Vec<_> = g.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["x,1", "x,2", "y,1", "y,2"]);
        assert_eq!(g[1].values, [1.0]);
    }

    #[test]
    fn mismatched_lengths_are_errors() {
        let a = Factor::new("a", ["x", "y"]);
        assert!(matches!(
            group_by(&[1.0], &[a]),
            Err(StatsError::LengthMismatch { .. })
        ));
    }
}
