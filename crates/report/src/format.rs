//! Number formatting shared by all renderers, public so callers write evidence text the same
//! way the tables show numbers.
//!
//! ```
//! use greenlab_report::format;
//! use greenlab_report::Unit;
//! assert_eq!(format::quantity(41_260.0, &Unit::Joules), "41.3 kJ");
//! assert_eq!(format::percent(0.8534), "85.3%");
//! assert_eq!(format::p_value(0.0004), "p < 0.001");
//! assert_eq!(format::duration(245.0), "4 min 05 s");
//! ```

use crate::model::Unit;

/// Prefix tables: (factor, symbol), largest first.
const JOULES: &[(f64, &str)] = &[
    (1e9, "GJ"),
    (1e6, "MJ"),
    (1e3, "kJ"),
    (1.0, "J"),
    (1e-3, "mJ"),
    (1e-6, "µJ"),
];
const WATTS: &[(f64, &str)] = &[(1e6, "MW"), (1e3, "kW"), (1.0, "W"), (1e-3, "mW")];
const GRAMS_CO2E: &[(f64, &str)] = &[
    (1e6, "t CO₂e"),
    (1e3, "kg CO₂e"),
    (1.0, "g CO₂e"),
    (1e-3, "mg CO₂e"),
];
const FLOP: &[(f64, &str)] = &[
    (1e15, "PFLOP"),
    (1e12, "TFLOP"),
    (1e9, "GFLOP"),
    (1e6, "MFLOP"),
    (1e3, "kFLOP"),
    (1.0, "FLOP"),
];
const SECONDS: &[(f64, &str)] = &[(3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms")];

/// Formats a number in its unit: SI prefixes for energy, power, CO₂e and FLOPs, human
/// durations, percentages, grouped counts. Non-finite values read "n/a" (NaN) or "∞".
pub fn quantity(value: f64, unit: &Unit) -> String {
    if let Some(text) = non_finite(value) {
        return text;
    }
    match unit {
        Unit::None => number(value),
        Unit::Count => count(value),
        Unit::Joules => prefixed(value, JOULES, false),
        Unit::Watts => prefixed(value, WATTS, false),
        Unit::GramsCo2e => prefixed(value, GRAMS_CO2E, false),
        Unit::Flop => prefixed(value, FLOP, false),
        Unit::Seconds => duration(value),
        Unit::Percent => percent(value),
        Unit::Other(suffix) => format!("{} {suffix}", number(value)),
    }
}

/// Energy in joules with an SI prefix: "850 J", "41.3 kJ", "1.20 MJ".
pub fn energy(joules: f64) -> String {
    quantity(joules, &Unit::Joules)
}

/// Power in watts with an SI prefix: "12.5 W".
pub fn power(watts: f64) -> String {
    quantity(watts, &Unit::Watts)
}

/// A duration: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
pub fn duration(seconds: f64) -> String {
    if let Some(text) = non_finite(seconds) {
        return text;
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs();
    if s < 0.9995 {
        format!("{sign}{} ms", significant(s * 1e3, 3))
    } else if s < 59.95 {
        format!("{sign}{} s", significant(s, 3))
    } else if s < 3599.5 {
        let total = s.round() as u64;
        format!("{sign}{} min {:02} s", total / 60, total % 60)
    } else {
        let total_min = (s / 60.0).round() as u64;
        format!("{sign}{} h {:02} min", total_min / 60, total_min % 60)
    }
}

/// A fraction as a percentage: 0.8534 → "85.3%", 0.0042 → "0.42%".
pub fn percent(fraction: f64) -> String {
    if let Some(text) = non_finite(fraction) {
        return text;
    }
    let pct = fraction * 100.0;
    if pct != 0.0 && pct.abs() < 0.995 {
        format!("{pct:.2}%")
    } else {
        format!("{pct:.1}%")
    }
}

/// A p-value for a table column: "< 0.001", "0.004", "0.43".
pub fn p(p: f64) -> String {
    if let Some(text) = non_finite(p) {
        return text;
    }
    if p < 0.001 {
        "< 0.001".to_owned()
    } else if p < 0.0995 {
        format!("{p:.3}")
    } else {
        format!("{p:.2}")
    }
}

/// A p-value for running text: "p < 0.001", "p = 0.004".
pub fn p_value(value: f64) -> String {
    let text = p(value);
    if text.starts_with('<') {
        format!("p {text}")
    } else {
        format!("p = {text}")
    }
}

/// A plain number: 4 significant digits without trailing zeros, scientific notation for very
/// small or very large magnitudes (learning rates such as "3.2e-5").
pub fn number(value: f64) -> String {
    if let Some(text) = non_finite(value) {
        return text;
    }
    let magnitude = value.abs();
    if value != 0.0 && !(1e-4..1e6).contains(&magnitude) {
        let text = format!("{value:.3e}");
        // "3.200e-5" → "3.2e-5".
        match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        }
    } else {
        trim_zeros(&significant(value, 4)).to_owned()
    }
}

/// A whole count grouped by thousands: 60000 → "60,000".
pub fn count(value: f64) -> String {
    if let Some(text) = non_finite(value) {
        return text;
    }
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if rounded < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

fn non_finite(value: f64) -> Option<String> {
    if value.is_nan() {
        Some("n/a".to_owned())
    } else if value.is_infinite() {
        Some(if value > 0.0 { "∞" } else { "-∞" }.to_owned())
    } else {
        None
    }
}

/// `value` with `digits` significant digits (no scientific notation, so meant for scaled values).
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 9) as usize;
    let text = format!("{value:.decimals$}");
    // Rounding can carry into a new digit (0.99996 → "1.000"); drop the extra decimal.
    let carried = text
        .trim_start_matches('-')
        .parse::<f64>()
        .is_ok_and(|v| v >= 10f64.powi(magnitude + 1));
    if carried && decimals > 0 {
        let decimals = decimals - 1;
        format!("{value:.decimals$}")
    } else {
        text
    }
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Scales by the largest prefix whose factor the value reaches (after 3-digit rounding).
fn prefixed(value: f64, table: &[(f64, &str)], trim: bool) -> String {
    let magnitude = value.abs();
    let base = table.iter().copied().find(|(factor, _)| *factor == 1.0);
    let (factor, symbol) = if magnitude == 0.0 { base } else { None }
        .or_else(|| {
            table
                .iter()
                .copied()
                .find(|(factor, _)| magnitude >= factor * 0.9995)
        })
        .unwrap_or(table[table.len() - 1]);
    let text = significant(value / factor, 3);
    let text = if trim {
        trim_zeros(&text).to_owned()
    } else {
        text
    };
    format!("{text} {symbol}")
}

/// How an axis shows its unit: ticks are divided by `factor` and the axis label gets
/// `suffix` in parentheses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AxisScale {
    pub factor: f64,
    pub suffix: String,
    pub grouped: bool,
}

impl AxisScale {
    /// Picks one prefix for a whole linear axis from its largest magnitude.
    pub fn for_unit(unit: &Unit, max_abs: f64) -> Self {
        let pick = |table: &[(f64, &str)]| {
            let (factor, symbol) = table
                .iter()
                .copied()
                .find(|(factor, _)| max_abs >= *factor)
                .unwrap_or(table[table.len() - 1]);
            AxisScale {
                factor,
                suffix: symbol.to_owned(),
                grouped: false,
            }
        };
        match unit {
            Unit::None => AxisScale {
                factor: 1.0,
                suffix: String::new(),
                grouped: false,
            },
            Unit::Count => AxisScale {
                factor: 1.0,
                suffix: String::new(),
                grouped: true,
            },
            Unit::Joules => pick(JOULES),
            Unit::Watts => pick(WATTS),
            Unit::GramsCo2e => pick(GRAMS_CO2E),
            Unit::Flop => pick(FLOP),
            Unit::Seconds => pick(SECONDS),
            Unit::Percent => AxisScale {
                factor: 0.01,
                suffix: "%".to_owned(),
                grouped: false,
            },
            Unit::Other(suffix) => AxisScale {
                factor: 1.0,
                suffix: suffix.clone(),
                grouped: false,
            },
        }
    }

    /// "Cumulative energy (kJ)".
    pub fn label(&self, label: &str) -> String {
        if self.suffix.is_empty() {
            label.to_owned()
        } else {
            format!("{label} ({})", self.suffix)
        }
    }

    /// A tick label with as many decimals as the tick step needs.
    pub fn tick(&self, value: f64, step: f64) -> String {
        let scaled = value / self.factor;
        let scaled_step = (step / self.factor).abs();
        if self.grouped && scaled_step >= 1.0 {
            return count(scaled);
        }
        // The fewest decimals that show the step exactly (10 → 0, 2.5 → 1, 0.05 → 2).
        let decimals = if scaled_step > 0.0 && scaled_step.is_finite() {
            (0..9)
                .find(|&d| {
                    let shifted = scaled_step * 10f64.powi(d);
                    (shifted - shifted.round()).abs() < 1e-6 * shifted
                })
                .unwrap_or(9) as usize
        } else {
            0
        };
        let text = format!("{scaled:.decimals$}");
        // Avoid "-0".
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_owned()
        } else {
            text
        }
    }
}

/// A tick label on a logarithmic axis, with its own prefix: "500 J", "1 kJ", "20 kJ".
pub(crate) fn log_tick(value: f64, unit: &Unit) -> String {
    match unit {
        Unit::Joules => prefixed(value, JOULES, true),
        Unit::Watts => prefixed(value, WATTS, true),
        Unit::GramsCo2e => prefixed(value, GRAMS_CO2E, true),
        Unit::Flop => prefixed(value, FLOP, true),
        Unit::Seconds => prefixed(value, SECONDS, true),
        other => quantity(value, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_uses_si_prefixes_with_three_significant_digits() {
        assert_eq!(energy(0.0123), "12.3 mJ");
        assert_eq!(energy(850.0), "850 J");
        assert_eq!(energy(999.96), "1.00 kJ");
        assert_eq!(energy(41_260.0), "41.3 kJ");
        assert_eq!(energy(1_204_000.0), "1.20 MJ");
        assert_eq!(energy(3.5e9), "3.50 GJ");
        assert_eq!(energy(0.0), "0 J");
        assert_eq!(energy(-2500.0), "-2.50 kJ");
    }

    #[test]
    fn other_units_scale_too() {
        assert_eq!(power(12.5), "12.5 W");
        assert_eq!(power(1500.0), "1.50 kW");
        assert_eq!(quantity(2_300.0, &Unit::GramsCo2e), "2.30 kg CO₂e");
        assert_eq!(quantity(4.2e9, &Unit::Flop), "4.20 GFLOP");
        assert_eq!(quantity(3.0, &Unit::Other("img/s".into())), "3 img/s");
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(0.85), "850 ms");
        assert_eq!(duration(12.34), "12.3 s");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(7380.0), "2 h 03 min");
    }

    #[test]
    fn percentages_and_p_values() {
        assert_eq!(percent(0.8534), "85.3%");
        assert_eq!(percent(0.0042), "0.42%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(p_value(0.0004), "p < 0.001");
        assert_eq!(p_value(0.0042), "p = 0.004");
        assert_eq!(p_value(0.43), "p = 0.43");
        assert_eq!(p(0.032), "0.032");
    }

    #[test]
    fn plain_numbers_and_counts() {
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(3.2e-5), "3.2e-5");
        assert_eq!(number(0.9), "0.9");
        assert_eq!(number(12.3456), "12.35");
        assert_eq!(count(60_000.0), "60,000");
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(-1200.0), "-1,200");
    }

    #[test]
    fn non_finite_values_are_visible_not_hidden() {
        assert_eq!(energy(f64::NAN), "n/a");
        assert_eq!(percent(f64::INFINITY), "∞");
        assert_eq!(p_value(f64::NAN), "p = n/a");
    }

    #[test]
    fn axis_scale_picks_one_prefix_and_enough_decimals() {
        let scale = AxisScale::for_unit(&Unit::Joules, 50_000.0);
        assert_eq!(scale.label("Energy"), "Energy (kJ)");
        assert_eq!(scale.tick(20_000.0, 10_000.0), "20");
        assert_eq!(scale.tick(2_500.0, 2_500.0), "2.5");
        let percent = AxisScale::for_unit(&Unit::Percent, 0.9);
        assert_eq!(percent.label("Accuracy"), "Accuracy (%)");
        assert_eq!(percent.tick(0.85, 0.05), "85");
        assert_eq!(AxisScale::for_unit(&Unit::None, 1.0).tick(-0.0, 0.5), "0.0");
        assert_eq!(log_tick(1000.0, &Unit::Joules), "1 kJ");
        assert_eq!(log_tick(500.0, &Unit::Joules), "500 J");
    }
}
