//! `greenlab tradeoff`: accuracy against energy for every configuration in a CSV table, the
//! Pareto front, marginal accuracy per extra kJ and a recommendation in plain words.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use greenlab_stats::format::tradeoff_table;
use greenlab_stats::{Table, Tradeoff, aggregate_by_label, tradeoff};

/// Arguments of `greenlab tradeoff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CSV file with a header row, one row per run.
    #[arg(long)]
    csv: PathBuf,
    /// Accuracy column (fraction or percent, see --accuracy-scale).
    #[arg(long)]
    accuracy: String,
    /// Energy column (unit from --energy-unit).
    #[arg(long)]
    energy: String,
    /// Column naming each configuration; rows with the same label are averaged.
    #[arg(long, conflicts_with = "factors")]
    label: Option<String>,
    /// Columns whose values together name a configuration (labels become `conv=4,relu=on`,
    /// which lets the recommendation say exactly what changes).
    #[arg(long, value_delimiter = ',')]
    factors: Vec<String>,
    /// Unit of the energy column; `auto` reads a suffix of the column name (`_j`, `_kj`, `_wh`,
    /// `_kwh`, `_mj`) and otherwise assumes joules.
    #[arg(long, value_enum, default_value_t = EnergyUnit::Auto)]
    energy_unit: EnergyUnit,
    /// Scale of the accuracy column; `auto` takes values in [0, 1] as fractions and values up to
    /// 100 as percent.
    #[arg(long, value_enum, default_value_t = AccuracyScale::Auto)]
    accuracy_scale: AccuracyScale,
    /// Accuracy loss (percentage points) the recommendation may give up for energy.
    #[arg(long, default_value_t = 1.0)]
    tolerance_pp: f64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Unit of an energy column.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnergyUnit {
    /// From the column name's suffix, else joules.
    Auto,
    /// Joules.
    J,
    /// Kilojoules.
    Kj,
    /// Megajoules.
    Mj,
    /// Watt-hours.
    Wh,
    /// Kilowatt-hours.
    Kwh,
}

impl EnergyUnit {
    fn resolve(self, column: &str) -> EnergyUnit {
        if self != EnergyUnit::Auto {
            return self;
        }
        let c = column.to_ascii_lowercase();
        if c.ends_with("_kwh") {
            EnergyUnit::Kwh
        } else if c.ends_with("_wh") {
            EnergyUnit::Wh
        } else if c.ends_with("_kj") {
            EnergyUnit::Kj
        } else if c.ends_with("_mj") {
            EnergyUnit::Mj
        } else {
            EnergyUnit::J
        }
    }

    fn joules_per_unit(self) -> f64 {
        match self {
            EnergyUnit::Auto | EnergyUnit::J => 1.0,
            EnergyUnit::Kj => 1e3,
            EnergyUnit::Mj => 1e6,
            EnergyUnit::Wh => 3600.0,
            EnergyUnit::Kwh => 3.6e6,
        }
    }
}

/// Scale of an accuracy column.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccuracyScale {
    /// Fractions if every value is in [0, 1], percent if every value is in [0, 100].
    Auto,
    /// 0.881.
    Fraction,
    /// 88.1.
    Percent,
}

/// Converts an accuracy column to fractions.
///
/// # Errors
/// Values outside the scale's range.
pub fn accuracy_fractions(values: &[f64], scale: AccuracyScale) -> anyhow::Result<Vec<f64>> {
    let in_range = |hi: f64| values.iter().all(|v| (0.0..=hi).contains(v));
    let divisor = match scale {
        AccuracyScale::Fraction if in_range(1.0) => 1.0,
        AccuracyScale::Percent if in_range(100.0) => 100.0,
        AccuracyScale::Auto if in_range(1.0) => 1.0,
        AccuracyScale::Auto if in_range(100.0) => 100.0,
        _ => anyhow::bail!(
            "accuracy values must be fractions in [0, 1] or percentages in [0, 100]; \
             check the --accuracy column or set --accuracy-scale"
        ),
    };
    Ok(values.iter().map(|v| v / divisor).collect())
}

/// Reads the table and runs the trade-off analysis: the entry point for `tradeoff`,
/// `factorial` and `replicate` when their results are a CSV table.
///
/// # Errors
/// Unreadable table, missing or non-numeric columns, bad accuracy scale.
pub fn tradeoff_from_table(table: &Table, args: &Args) -> anyhow::Result<Tradeoff> {
    let acc = table
        .numeric(&args.accuracy)
        .context("cannot use the accuracy column")?;
    let acc = accuracy_fractions(&acc, args.accuracy_scale)?;
    let unit = args.energy_unit.resolve(&args.energy);
    let energy: Vec<f64> = table
        .numeric(&args.energy)
        .context("cannot use the energy column")?
        .iter()
        .map(|e| e * unit.joules_per_unit())
        .collect();
    let labels: Vec<String> = if let Some(col) = &args.label {
        table.text(col).context("cannot use the label column")?
    } else if !args.factors.is_empty() {
        let cols = args
            .factors
            .iter()
            .map(|f| table.text(f.trim()).map(|v| (f.trim(), v)))
            .collect::<Result<Vec<_>, _>>()
            .context("cannot use the factor columns")?;
        (0..table.len())
            .map(|i| {
                cols.iter()
                    .map(|(n, v)| format!("{n}={}", v[i]))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    } else {
        (1..=table.len()).map(|i| format!("row {i}")).collect()
    };
    let points = aggregate_by_label(&labels, &acc, &energy)?;
    Ok(tradeoff(points, args.tolerance_pp)?)
}

/// Runs `greenlab tradeoff`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let table = Table::from_path(&args.csv).context("cannot read the table")?;
    let t = tradeoff_from_table(&table, &args)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&t).context("cannot encode JSON")?
        );
    } else {
        print!("{}", tradeoff_table(&t));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_unit_from_column_suffix() {
        assert_eq!(EnergyUnit::Auto.resolve("energy_kj"), EnergyUnit::Kj);
        assert_eq!(EnergyUnit::Auto.resolve("energy_kwh"), EnergyUnit::Kwh);
        assert_eq!(EnergyUnit::Auto.resolve("energy"), EnergyUnit::J);
        assert_eq!(EnergyUnit::Wh.resolve("energy_kj"), EnergyUnit::Wh);
    }

    #[test]
    fn accuracy_scales() {
        assert_eq!(
            accuracy_fractions(&[88.0, 90.0], AccuracyScale::Auto).unwrap(),
            [0.88, 0.9]
        );
        assert_eq!(
            accuracy_fractions(&[0.5], AccuracyScale::Auto).unwrap(),
            [0.5]
        );
        assert!(accuracy_fractions(&[88.0], AccuracyScale::Fraction).is_err());
        assert!(accuracy_fractions(&[188.0], AccuracyScale::Auto).is_err());
    }
}
