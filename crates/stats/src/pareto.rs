//! Accuracy against energy: Pareto fronts, marginal gains, a recommendation in words.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Result, StatsError, check_finite};

/// Whether larger or smaller values of an objective are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (accuracy).
    Maximize,
    /// Smaller is better (energy).
    Minimize,
}

impl Direction {
    fn better_or_equal(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a >= b,
            Direction::Minimize => a <= b,
        }
    }
}

/// Indices of the non-dominated points of a two-objective set, sorted by the first objective
/// (ascending value, ties by the second). Of several identical points only the first is kept.
/// Points with a NaN coordinate are never on the front.
pub fn pareto_front(points: &[(f64, f64)], directions: [Direction; 2]) -> Vec<usize> {
    let [dx, dy] = directions;
    let dominates = |a: (f64, f64), b: (f64, f64)| {
        dx.better_or_equal(a.0, b.0) && dy.better_or_equal(a.1, b.1) && a != b
    };
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let p = points[i];
            !p.0.is_nan()
                && !p.1.is_nan()
                && !points.iter().any(|&q| dominates(q, p))
                && !points[..i].contains(&p)
        })
        .collect();
    front.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[a].1.total_cmp(&points[b].1))
    });
    front
}

/// One configuration: its mean accuracy (a fraction in [0, 1]) and mean energy in joules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeoffPoint {
    /// The configuration, ideally `key=value` pairs (`conv=4,linear=7,relu=on`), which lets the
    /// recommendation name exactly what changes.
    pub label: String,
    /// Accuracy as a fraction (0.881, not 88.1).
    pub accuracy: f64,
    /// Energy in joules.
    pub energy_j: f64,
    /// Runs averaged into this point.
    pub runs: usize,
}

/// Mean accuracy and energy per distinct label, in first-seen order.
///
/// # Errors
/// Lengths that differ or non-finite values.
pub fn aggregate_by_label(
    labels: &[String],
    accuracy: &[f64],
    energy_j: &[f64],
) -> Result<Vec<TradeoffPoint>> {
    for (what, len) in [("accuracy", accuracy.len()), ("energy", energy_j.len())] {
        if len != labels.len() {
            return Err(StatsError::LengthMismatch {
                what: format!("labels and {what}"),
                left: labels.len(),
                right: len,
            });
        }
    }
    check_finite("accuracy", accuracy)?;
    check_finite("energy", energy_j)?;
    let mut order: Vec<&str> = Vec::new();
    let mut sums: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
    for ((l, &a), &e) in labels.iter().zip(accuracy).zip(energy_j) {
        let entry = sums.entry(l.as_str()).or_insert_with(|| {
            order.push(l.as_str());
            (0.0, 0.0, 0)
        });
        entry.0 += a;
        entry.1 += e;
        entry.2 += 1;
    }
    Ok(order
        .into_iter()
        .map(|l| {
            let (a, e, n) = sums[l];
            TradeoffPoint {
                label: l.to_string(),
                accuracy: a / n as f64,
                energy_j: e / n as f64,
                runs: n,
            }
        })
        .collect())
}

/// The move from one front point to the next more expensive one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontStep {
    /// Cheaper configuration.
    pub from: String,
    /// More expensive, more accurate configuration.
    pub to: String,
    /// Extra energy in joules.
    pub extra_energy_j: f64,
    /// Accuracy gained, in percentage points.
    pub accuracy_gain_pp: f64,
    /// Marginal gain: percentage points of accuracy per extra kJ.
    pub pp_per_kj: f64,
}

/// Pareto analysis of accuracy (maximised) against energy (minimised).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tradeoff {
    /// All configurations.
    pub points: Vec<TradeoffPoint>,
    /// Indices into `points` of the Pareto front, cheapest first.
    pub front: Vec<usize>,
    /// Consecutive moves along the front.
    pub steps: Vec<FrontStep>,
    /// Whether every step buys less accuracy per kJ than the one before (needs ≥ 2 steps).
    pub diminishing_returns: bool,
    /// Accuracy loss tolerated by the recommendation, in percentage points.
    pub tolerance_pp: f64,
    /// A sentence with numbers, e.g. "conv 4→1 cuts energy by 58 % (63.2 kJ → 26.5 kJ) for
    /// −0.9 pp accuracy (88.1 % → 87.2 %)".
    pub recommendation: String,
}

/// Pareto front, marginal gains and a recommendation: the cheapest front configuration whose
/// accuracy is within `tolerance_pp` percentage points of the most accurate one.
///
/// # Errors
/// No points, non-finite values, negative energy, accuracy outside [0, 1], or a negative
/// tolerance.
pub fn tradeoff(points: Vec<TradeoffPoint>, tolerance_pp: f64) -> Result<Tradeoff> {
    if points.is_empty() {
        return Err(StatsError::TooFewObservations {
            what: "a trade-off analysis (configurations)",
            needed: 1,
            got: 0,
        });
    }
    if !(tolerance_pp >= 0.0 && tolerance_pp.is_finite()) {
        return Err(StatsError::InvalidArgument(format!(
            "accuracy tolerance {tolerance_pp} pp must be a finite number ≥ 0"
        )));
    }
    for (i, p) in points.iter().enumerate() {
        if !p.accuracy.is_finite() || !(0.0..=1.0).contains(&p.accuracy) {
            return Err(StatsError::InvalidArgument(format!(
                "configuration {i} (`{}`): accuracy {} is not a fraction in [0, 1]; divide \
                 percentages by 100",
                p.label, p.accuracy
            )));
        }
        if !p.energy_j.is_finite() || p.energy_j < 0.0 {
            return Err(StatsError::InvalidArgument(format!(
                "configuration {i} (`{}`): energy {} J must be a finite number ≥ 0",
                p.label, p.energy_j
            )));
        }
    }
    let coords: Vec<(f64, f64)> = points.iter().map(|p| (p.energy_j, p.accuracy)).collect();
    let front = pareto_front(&coords, [Direction::Minimize, Direction::Maximize]);
    let steps: Vec<FrontStep> = front
        .windows(2)
        .map(|w| {
            let (a, b) = (&points[w[0]], &points[w[1]]);
            let extra = b.energy_j - a.energy_j;
            let gain = 100.0 * (b.accuracy - a.accuracy);
            FrontStep {
                from: a.label.clone(),
                to: b.label.clone(),
                extra_energy_j: extra,
                accuracy_gain_pp: gain,
                pp_per_kj: if extra > 0.0 {
                    gain / (extra / 1000.0)
                } else {
                    f64::INFINITY
                },
            }
        })
        .collect();
    let diminishing_returns =
        steps.len() >= 2 && steps.windows(2).all(|w| w[1].pp_per_kj <= w[0].pp_per_kj);
    let recommendation = recommend(&points, &front, tolerance_pp);
    Ok(Tradeoff {
        points,
        front,
        steps,
        diminishing_returns,
        tolerance_pp,
        recommendation,
    })
}

fn recommend(points: &[TradeoffPoint], front: &[usize], tolerance_pp: f64) -> String {
    // The front is sorted by energy, so accuracy increases along it and its last point is the
    // most accurate configuration.
    let Some(&best) = front.last() else {
        return "no configuration to recommend".into();
    };
    let b = &points[best];
    let within = front
        .iter()
        .copied()
        .find(|&i| 100.0 * (b.accuracy - points[i].accuracy) <= tolerance_pp + 1e-12);
    match within {
        Some(i) if i != best => format!(
            "{} for {} accuracy ({} → {})",
            describe_move(b, &points[i]),
            signed_pp(points[i].accuracy - b.accuracy),
            percent(b.accuracy),
            percent(points[i].accuracy)
        ),
        _ if front.len() >= 2 => {
            let prev = &points[front[front.len() - 2]];
            format!(
                "`{}` is the most accurate ({} at {}) and no cheaper configuration stays within \
                 {tolerance_pp} pp of it; the next cheaper option: {} for {} accuracy",
                b.label,
                percent(b.accuracy),
                energy(b.energy_j),
                describe_move(b, prev),
                signed_pp(prev.accuracy - b.accuracy)
            )
        }
        _ => format!(
            "`{}` is both the most accurate ({}) and the cheapest ({}) configuration",
            b.label,
            percent(b.accuracy),
            energy(b.energy_j)
        ),
    }
}

/// "conv 4→1 cuts energy by 58 % (63.2 kJ → 26.5 kJ)".
fn describe_move(from: &TradeoffPoint, to: &TradeoffPoint) -> String {
    let cut = 100.0 * (from.energy_j - to.energy_j) / from.energy_j;
    let change = label_change(&from.label, &to.label);
    let verb = if cut >= 0.0 {
        format!("cuts energy by {cut:.0} %")
    } else {
        format!("raises energy by {:.0} %", -cut)
    };
    format!(
        "{change} {verb} ({} → {})",
        energy(from.energy_j),
        energy(to.energy_j)
    )
}

fn parse_pairs(label: &str) -> Option<Vec<(&str, &str)>> {
    let pairs: Option<Vec<(&str, &str)>> = label
        .split([',', ';', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| t.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
        .collect();
    pairs.filter(|p| !p.is_empty())
}

/// "conv 4→1, relu on→off" when both labels are `key=value` lists with the same keys,
/// otherwise "switching from `a` to `b`".
pub fn label_change(from: &str, to: &str) -> String {
    if let (Some(a), Some(b)) = (parse_pairs(from), parse_pairs(to)) {
        let same_keys = a.len() == b.len() && a.iter().zip(&b).all(|((ka, _), (kb, _))| ka == kb);
        if same_keys {
            let diffs: Vec<String> = a
                .iter()
                .zip(&b)
                .filter(|((_, va), (_, vb))| va != vb)
                .map(|((k, va), (_, vb))| format!("{k} {va}→{vb}"))
                .collect();
            if !diffs.is_empty() {
                return diffs.join(", ");
            }
        }
    }
    format!("switching from `{from}` to `{to}`")
}

/// Signed percentage points with a real minus sign: "−0.9 pp", "+0.3 pp".
pub fn signed_pp(delta_fraction: f64) -> String {
    let pp = 100.0 * delta_fraction;
    if pp < 0.0 {
        format!("−{:.1} pp", -pp)
    } else {
        format!("+{pp:.1} pp")
    }
}

/// "88.1 %".
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", 100.0 * fraction)
}

/// Energy with a readable unit: "812 J", "26.5 kJ", "1.25 MJ".
pub fn energy(joules: f64) -> String {
    let a = joules.abs();
    if a >= 1e6 {
        format!("{:.3} MJ", joules / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} kJ", joules / 1e3)
    } else if a >= 1e3 {
        format!("{:.2} kJ", joules / 1e3)
    } else {
        format!("{joules:.0} J")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(label: &str, accuracy: f64, energy_kj: f64) -> TradeoffPoint {
        TradeoffPoint {
            label: label.into(),
            accuracy,
            energy_j: energy_kj * 1e3,
            runs: 1,
        }
    }

    #[test]
    fn front_drops_dominated_points() {
        let pts = [
            (1.0, 0.80),
            (2.0, 0.85),
            (3.0, 0.84),
            (4.0, 0.90),
            (2.0, 0.85),
        ];
        let f = pareto_front(&pts, [Direction::Minimize, Direction::Maximize]);
        assert_eq!(f, vec![0, 1, 3]);
        let g = pareto_front(&pts, [Direction::Maximize, Direction::Maximize]);
        assert_eq!(g, vec![3]);
    }

    #[test]
    fn recommendation_names_the_change_and_the_numbers() {
        let t = tradeoff(
            vec![
                pt("conv=4,linear=7", 0.881, 63.2),
                pt("conv=1,linear=7", 0.872, 26.5),
                pt("conv=1,linear=3", 0.860, 25.0),
                pt("conv=4,linear=3", 0.870, 70.0),
            ],
            1.0,
        )
        .unwrap();
        assert_eq!(t.front, vec![2, 1, 0]);
        assert_eq!(
            t.recommendation,
            "conv 4→1 cuts energy by 58 % (63.2 kJ → 26.5 kJ) for −0.9 pp accuracy \
             (88.1 % → 87.2 %)"
        );
        assert_eq!(t.steps.len(), 2);
        assert!((t.steps[0].pp_per_kj - 1.2 / 1.5).abs() < 1e-9);
        assert!(t.diminishing_returns);
    }

    #[test]
    fn no_cheaper_point_within_tolerance() {
        let t = tradeoff(vec![pt("a", 0.90, 10.0), pt("b", 0.80, 5.0)], 1.0).unwrap();
        assert!(
            t.recommendation.starts_with("`a` is the most accurate"),
            "{}",
            t.recommendation
        );
        assert!(t.recommendation.contains("cuts energy by 50 %"));
        assert!(t.recommendation.contains("−10.0 pp"));
    }

    #[test]
    fn bad_points_are_errors() {
        assert!(tradeoff(vec![], 1.0).is_err());
        assert!(tradeoff(vec![pt("a", 88.0, 1.0)], 1.0).is_err());
        assert!(tradeoff(vec![pt("a", 0.8, -1.0)], 1.0).is_err());
    }

    #[test]
    fn aggregation_averages_repeated_labels() {
        let labels: Vec<String> = ["x", "y", "x"].iter().map(|s| s.to_string()).collect();
        let p = aggregate_by_label(&labels, &[0.8, 0.9, 0.6], &[10.0, 20.0, 30.0]).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].label, "x");
        assert!((p[0].accuracy - 0.7).abs() < 1e-12);
        assert_eq!(p[0].energy_j, 20.0);
        assert_eq!(p[0].runs, 2);
    }
}
