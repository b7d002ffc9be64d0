//! `greenlab stats`: ANOVA, Tukey HSD and Kruskal–Wallis on any CSV table, as the paper did in
//! JASP, so results from other tools can be analysed the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use greenlab_stats::format::{anova_table, kruskal_table, means_table, tukey_table};
use greenlab_stats::{
    AnovaTable, Factor, KruskalWallis, MeanInterval, Table, TukeyHsd, anova, cell_means, group_by,
    kruskal_wallis, tukey_hsd,
};
use serde::Serialize;

/// Arguments of `greenlab stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: StatsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum StatsCommand {
    /// n-way ANOVA with type III sums of squares, F, p, eta² and partial eta² for every factor
    /// and interaction, plus cell means with confidence intervals.
    Anova(AnovaArgs),
    /// Tukey HSD pairwise comparisons between the levels of a factor (or, with several
    /// comma-separated factors, between interaction cells).
    Tukey(GroupArgs),
    /// Kruskal–Wallis H test across the levels of a factor (or interaction cells), with
    /// epsilon² effect size.
    Kruskal(GroupArgs),
}

#[derive(clap::Args, Debug)]
struct AnovaArgs {
    /// CSV file with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Numeric response column (e.g. energy).
    #[arg(long)]
    response: String,
    /// Factor columns, comma-separated (e.g. conv,linear,relu).
    #[arg(long, value_delimiter = ',', required = true)]
    factors: Vec<String>,
    /// Confidence level of the cell-mean intervals.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct GroupArgs {
    /// CSV file with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Numeric response column.
    #[arg(long)]
    response: String,
    /// Grouping factor; several comma-separated factors compare their interaction cells.
    #[arg(long, value_delimiter = ',', required = true)]
    factor: Vec<String>,
    /// Family-wise error rate for Tukey HSD (ignored by kruskal).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// ANOVA of one response with the cell means, as printed by `greenlab stats anova --json`.
#[derive(Debug, Serialize)]
pub struct AnovaReport {
    /// Response column.
    pub response: String,
    /// The type III table.
    pub anova: AnovaTable,
    /// Cell means with t intervals (absent when a cell has a single observation).
    pub cell_means: Option<Vec<MeanInterval>>,
}

/// Runs the ANOVA of `response` on `factors` and computes cell means: the shared entry point
/// for `stats anova`, `factorial` and `replicate`.
///
/// # Errors
/// Degenerate designs (see [`greenlab_stats::anova()`]), non-finite responses.
pub fn anova_report(
    response_name: &str,
    response: &[f64],
    factors: &[Factor],
    confidence: f64,
) -> anyhow::Result<AnovaReport> {
    let table = anova(response, factors)
        .with_context(|| format!("cannot run the ANOVA of `{response_name}`"))?;
    Ok(AnovaReport {
        response: response_name.to_string(),
        anova: table,
        cell_means: cell_means(response, factors, confidence).ok(),
    })
}

/// Renders an [`AnovaReport`] as aligned text tables.
pub fn format_anova_report(report: &AnovaReport) -> String {
    let mut out = anova_table(&report.anova, &report.response);
    if let Some(means) = &report.cell_means {
        out.push('\n');
        out.push_str(&means_table(
            means,
            &report.response,
            &report.anova.factors.join(","),
        ));
    }
    out
}

fn load(csv: &Path, response: &str, factors: &[String]) -> anyhow::Result<(Vec<f64>, Vec<Factor>)> {
    let table = Table::from_path(csv).context("cannot read the table")?;
    let y = table
        .numeric(response)
        .context("cannot use the response column")?;
    let factors = factors
        .iter()
        .map(|f| table.factor(f.trim()))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot use the factor columns")?;
    Ok((y, factors))
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot encode JSON")?
    );
    Ok(())
}

/// Tukey HSD of `response` between the levels (cells) of `factors`.
///
/// # Errors
/// Fewer than two groups, no error degrees of freedom, zero variance.
pub fn tukey_for(response: &[f64], factors: &[Factor], alpha: f64) -> anyhow::Result<TukeyHsd> {
    let groups = group_by(response, factors)?;
    Ok(tukey_hsd(&groups, alpha)?)
}

/// Kruskal–Wallis of `response` between the levels (cells) of `factors`.
///
/// # Errors
/// Fewer than two groups or all values tied.
pub fn kruskal_for(response: &[f64], factors: &[Factor]) -> anyhow::Result<KruskalWallis> {
    let groups = group_by(response, factors)?;
    Ok(kruskal_wallis(&groups)?)
}

/// Runs `greenlab stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        StatsCommand::Anova(a) => {
            let (y, factors) = load(&a.csv, &a.response, &a.factors)?;
            let report = anova_report(&a.response, &y, &factors, a.confidence)?;
            if a.json {
                print_json(&report)?;
            } else {
                print!("{}", format_anova_report(&report));
            }
        }
        StatsCommand::Tukey(a) => {
            let (y, factors) = load(&a.csv, &a.response, &a.factor)?;
            let t = tukey_for(&y, &factors, a.alpha)
                .with_context(|| format!("cannot run Tukey HSD of `{}`", a.response))?;
            if a.json {
                print_json(&t)?;
            } else {
                print!("{}", tukey_table(&t, &a.response, &a.factor.join(",")));
            }
        }
        StatsCommand::Kruskal(a) => {
            let (y, factors) = load(&a.csv, &a.response, &a.factor)?;
            let k = kruskal_for(&y, &factors)
                .with_context(|| format!("cannot run Kruskal-Wallis of `{}`", a.response))?;
            if a.json {
                print_json(&k)?;
            } else {
                print!("{}", kruskal_table(&k, &a.response, &a.factor.join(",")));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
