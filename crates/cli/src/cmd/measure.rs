//! `greenlab measure [OPTIONS] -- <command> [args...]`: run a command, measure the energy the
//! machine used while it ran (it and its children: the meters are system-wide), exit with its
//! exit code, print a summary to stderr and optionally write JSON, a CSV time series and a
//! CodeCarbon-compatible `emissions.csv`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use greenlab_meter::carbon::{self, CarbonIntensity};
use greenlab_meter::{
    Domain, DomainKind, Joules, Measurement, MeterChoice, Provenance, Seconds, Source, Tracker,
    Watts,
};
use greenlab_report::write_atomically;
use serde_json::{Value, json};

use crate::meters::{MeterArgs, tracker_with};

/// Arguments of `greenlab measure`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub meter: MeterArgs,
    /// Measure idle power for this many seconds before the command (0 = off) and report
    /// gross, idle and net energy.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub idle_s: f64,
    /// Sampling interval in milliseconds (time-series step; counters that wrap are polled
    /// faster when they need it).
    #[arg(long, value_name = "MS", default_value_t = 100.0)]
    pub interval_ms: f64,
    /// Write one JSON object describing the run (every number with unit and source).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the sampled time series (cumulative energy per domain) as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Append one row in CodeCarbon's emissions.csv column layout.
    #[arg(long, value_name = "FILE")]
    pub emissions_csv: Option<PathBuf>,
    /// Country (ISO 3166-1 alpha-3, e.g. FRA) for the grid carbon intensity table.
    #[arg(long, value_name = "ISO3")]
    pub country: Option<String>,
    /// Grid carbon intensity in gCO2e/kWh (overrides --country).
    #[arg(long, value_name = "G")]
    pub carbon_intensity: Option<f64>,
    /// Power usage effectiveness of the facility (1.0 = IT power only).
    #[arg(long, value_name = "P", default_value_t = 1.0)]
    pub pue: f64,
    /// Project name for emissions.csv.
    #[arg(long, default_value = "greenlab")]
    pub project_name: String,
    /// The command to run and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Exit code when the command cannot be started (as shells use for "not found").
const EXIT_NOT_FOUND: u8 = 127;
/// Exit code when the command exists but cannot be executed.
const EXIT_CANNOT_EXECUTE: u8 = 126;

/// Where the carbon intensity came from.
struct Carbon {
    intensity: CarbonIntensity,
    origin: String,
    iso: String,
    pue: f64,
}

/// Runs `greenlab measure`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let choice = args.meter.choice()?;
    let carbon = resolve_carbon(&args)?;
    if !args.idle_s.is_finite() || !(0.0..=3600.0).contains(&args.idle_s) {
        bail!(
            "invalid --idle-s {}: pass a number of seconds between 0 and 3600",
            args.idle_s
        );
    }
    if !args.interval_ms.is_finite() || args.interval_ms <= 0.0 {
        bail!(
            "invalid --interval-ms {}: pass a positive number of milliseconds",
            args.interval_ms
        );
    }
    for out in [&args.json, &args.csv, &args.emissions_csv]
        .into_iter()
        .flatten()
    {
        check_writable(out)?;
    }
    // A command measured from outside may use any GPU: all visible ones are measured.
    let tracker = tracker_with(&args.meter, None, |o| {
        o.interval = Duration::from_secs_f64(args.interval_ms / 1e3);
        o.record_samples = args.csv.is_some();
    })?;

    let idle = if args.idle_s > 0.0 {
        eprintln!("greenlab: measuring idle power for {} s", args.idle_s);
        let idle = tracker
            .idle_baseline(Duration::from_secs_f64(args.idle_s))
            .context("idle baseline failed")?;
        if idle.is_none() {
            eprintln!("greenlab: the idle power could not be measured: no net energy is given");
        }
        idle
    } else {
        None
    };

    let started_at = SystemTime::now();
    let run_start = tracker.elapsed();
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given; put it after `--`")?;
    let _interrupt = IgnoreInterrupt::install();
    let window = tracker.begin("command")?;
    let child = Command::new(program).args(rest).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = tracker.end(window);
            let (code, hint) = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    (EXIT_NOT_FOUND, "check the command name and your PATH")
                }
                std::io::ErrorKind::PermissionDenied => {
                    (EXIT_CANNOT_EXECUTE, "make the file executable")
                }
                _ => (EXIT_CANNOT_EXECUTE, "check the command"),
            };
            eprintln!(
                "error: cannot run `{program}`: {e}; {hint}. nothing was measured or written"
            );
            return Ok(ExitCode::from(code));
        }
    };
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{program}`"))?;
    let measurement = tracker.end(window).context("the final meter read failed")?;
    let code = exit_code(status);

    let described = tracker.describe();
    let report = Report {
        args: &args,
        choice,
        measurement: &measurement,
        described: &described,
        idle,
        carbon: &carbon,
        exit_code: code,
        started_at,
        notes: tracker.notes(),
        interval: tracker.sampler_interval(),
    };
    eprint!("{}", report.summary());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json())? + "\n";
        write_atomically(path, text)?;
    }
    if let Some(path) = &args.csv {
        let text = time_series_csv(&tracker, &described, run_start)?;
        write_atomically(path, text)?;
    }
    if let Some(path) = &args.emissions_csv {
        append_emissions(path, &report.emissions_row())?;
    }
    Ok(ExitCode::from(code))
}

fn resolve_carbon(args: &Args) -> anyhow::Result<Carbon> {
    let pue = carbon::validate_pue(args.pue)?;
    let iso = args.country.as_deref().map(str::to_ascii_uppercase);
    if let Some(g) = args.carbon_intensity {
        return Ok(Carbon {
            intensity: carbon::validate_intensity(g)?,
            origin: "user (--carbon-intensity)".into(),
            iso: iso.unwrap_or_default(),
            pue,
        });
    }
    match iso {
        Some(code) => match carbon::intensity_for(&code) {
            Some(intensity) => Ok(Carbon {
                intensity,
                origin: format!("table: {code}, Ember/Our World in Data 2023 average"),
                iso: code,
                pue,
            }),
            None => bail!(
                "unknown --country {code:?}: use an ISO 3166-1 alpha-3 code from the built-in \
                 table ({}), or pass --carbon-intensity G",
                carbon::known_regions().collect::<Vec<_>>().join(", ")
            ),
        },
        None => Ok(Carbon {
            intensity: carbon::WORLD,
            origin: "world average, Ember/Our World in Data 2023 (pass --country or \
                     --carbon-intensity for your grid)"
                .into(),
            iso: String::new(),
            pue,
        }),
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        // As shells report it: 128 + signal number.
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

/// While the command runs, Ctrl-C goes to it (same process group); greenlab itself keeps
/// running so the measurement is still reported. A no-op handler, unlike SIG_IGN, is reset to
/// the default by exec, so the child still reacts to Ctrl-C normally.
struct IgnoreInterrupt {
    previous: libc::sighandler_t,
}

extern "C" fn ignore_signal(_: libc::c_int) {}

impl IgnoreInterrupt {
    fn install() -> IgnoreInterrupt {
        let handler: extern "C" fn(libc::c_int) = ignore_signal;
        // SAFETY: installs an async-signal-safe handler that does nothing.
        let previous = unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
        IgnoreInterrupt { previous }
    }
}

impl Drop for IgnoreInterrupt {
    fn drop(&mut self) {
        if self.previous != libc::SIG_ERR {
            // SAFETY: restores the handler that was installed before.
            unsafe { libc::signal(libc::SIGINT, self.previous) };
        }
    }
}

struct Report<'a> {
    args: &'a Args,
    choice: MeterChoice,
    measurement: &'a Measurement,
    described: &'a [(Domain, Source)],
    idle: Option<Watts>,
    carbon: &'a Carbon,
    exit_code: u8,
    started_at: SystemTime,
    notes: &'a [String],
    interval: Option<Duration>,
}

fn quantity(value: f64, unit: &str, source: Option<Source>) -> Value {
    match source {
        Some(s) => json!({"value": value, "unit": unit, "source": s}),
        None => json!({"value": value, "unit": unit}),
    }
}

/// A quantity that may be unknown: `{"value": null, "unit", "source", "reason"}` then.
fn maybe(value: Option<f64>, unit: &str, source: Option<Source>, reason: Option<&str>) -> Value {
    match value {
        Some(v) => quantity(v, unit, source),
        None => json!({
            "value": null,
            "unit": unit,
            "source": source,
            "reason": reason.unwrap_or("not measured"),
        }),
    }
}

/// `12.345 J`, or `not measured`.
fn joules(e: Option<Joules>) -> String {
    e.map_or_else(|| "not measured".to_owned(), |e| format!("{e:.3}"))
}

impl Report<'_> {
    fn source(&self) -> Source {
        self.measurement.source()
    }

    fn emissions(&self) -> Option<f64> {
        self.measurement
            .total
            .map(|t| carbon::emissions(t, self.carbon.intensity, self.carbon.pue).0)
    }

    fn energy_of(&self, pred: impl Fn(DomainKind) -> bool) -> Option<Joules> {
        self.measurement
            .domains
            .iter()
            .zip(self.described)
            .filter(|(_, (d, _))| pred(d.kind))
            .map(|(e, _)| e.energy)
            .sum()
    }

    fn summary(&self) -> String {
        let m = self.measurement;
        let provenance = m.provenance();
        let label = match provenance {
            Provenance::NotMeasured => {
                "NOT MEASURED (no energy source moved; see `greenlab meters`)"
            }
            Provenance::Estimated => "ESTIMATED (no energy counter; utilisation × TDP model)",
            Provenance::IntegratedPower => "measured (integrated power samples)",
            Provenance::Counter => "measured (hardware energy counters)",
            Provenance::Mixed => "MIXED (counters and estimates; see each domain)",
        };
        let mut s = String::new();
        let _ = writeln!(s, "greenlab measure: `{}`", self.args.command.join(" "));
        let _ = writeln!(s, "  exit code      {}", self.exit_code);
        let _ = writeln!(s, "  duration       {:.3}", m.duration);
        let _ = writeln!(
            s,
            "  energy         {} ({provenance}){}",
            joules(m.total),
            m.unknown
                .as_ref()
                .filter(|_| m.total.is_none())
                .map(|u| format!(": {u}"))
                .unwrap_or_default()
        );
        let share = m
            .attribution
            .as_ref()
            .map(|a| {
                format!(
                    ", {:.0} % of the machine's busy cpu time",
                    a.cpu_share * 100.0
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  attributed     {} (this command's process tree{share})",
            joules(m.attributed)
        );
        let _ = writeln!(s, "  source         {label}");
        for d in &m.domains {
            let why = d
                .unknown
                .as_deref()
                .or(d.filled.as_deref())
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {:<15} {:>14}  {} ({} updates){why}",
                d.domain,
                joules(d.energy),
                d.source,
                d.updates
            );
        }
        match m.average_power {
            Some(p) => {
                let _ = writeln!(s, "  average power  {p:.2}");
            }
            None => {
                let _ = writeln!(s, "  average power  not measured");
            }
        }
        if let Some(p) = m.peak_power {
            let _ = writeln!(s, "  peak power     {p:.2}");
        }
        if let Some(idle) = self.idle {
            let _ = writeln!(
                s,
                "  idle           {:.2} -> {:.3} over the run; net (dynamic) {}",
                idle,
                idle * m.duration,
                joules(m.net(idle))
            );
        }
        match self.emissions() {
            Some(g) => {
                let _ = writeln!(
                    s,
                    "  emissions      {:.4} gCO2e at {} ({}), pue {}",
                    g, self.carbon.intensity, self.carbon.origin, self.carbon.pue
                );
            }
            None => {
                let _ = writeln!(s, "  emissions      not known (energy not measured)");
            }
        }
        for w in &m.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        s
    }

    fn json(&self) -> Value {
        let m = self.measurement;
        let src = Some(self.source());
        let domains: Vec<Value> = m
            .domains
            .iter()
            .map(|d| {
                json!({
                    "domain": d.domain,
                    "energy": maybe(d.energy.map(|e| e.0), Joules::SYMBOL, Some(d.source), d.unknown.as_deref()),
                    "attributed_energy": maybe(d.attributed.map(|e| e.0), Joules::SYMBOL, Some(d.source), None),
                    "average_power": maybe(
                        d.energy.and_then(|e| e.per(m.duration)).map(|p| p.0),
                        Watts::SYMBOL,
                        Some(d.source),
                        d.unknown.as_deref(),
                    ),
                    "source": d.source,
                    "updates": d.updates,
                    "estimated_in_place_of_counter": d.filled,
                })
            })
            .collect();
        let idle = self.idle.map(|idle| {
            json!({
                "power": quantity(idle.0, Watts::SYMBOL, src),
                "energy": quantity((idle * m.duration).0, Joules::SYMBOL, src),
                "net_energy": maybe(m.net(idle).map(|e| e.0), Joules::SYMBOL, src, m.unknown.as_deref()),
                "measured_for": quantity(self.args.idle_s, Seconds::SYMBOL, None),
            })
        });
        let reason = m.unknown.as_deref();
        json!({
            "schema": "greenlab.measure/2",
            "command": self.args.command,
            "exit_code": self.exit_code,
            "started_at": rfc3339(self.started_at),
            "meter": self.choice.to_string(),
            "duration": quantity(m.duration.0, Seconds::SYMBOL, None),
            "energy": maybe(m.total.map(|e| e.0), Joules::SYMBOL, src, reason),
            "attributed_energy": maybe(m.attributed.map(|e| e.0), Joules::SYMBOL, src, Some("the process tree could not be read")),
            "attribution": m.attribution,
            "provenance": m.provenance(),
            "estimated": m.provenance() == Provenance::Estimated,
            "domains": domains,
            "average_power": maybe(m.average_power.map(|p| p.0), Watts::SYMBOL, src, reason),
            "peak_power": m.peak_power.map(|p| quantity(p.0, Watts::SYMBOL, src)),
            "idle": idle,
            "carbon": {
                "intensity": {"value": self.carbon.intensity.0, "unit": "gCO2e/kWh",
                              "source": self.carbon.origin},
                "pue": self.carbon.pue,
                "emissions": maybe(self.emissions(), "gCO2e", src, reason),
            },
            "sampling_interval": self.interval.map(|i| quantity(i.as_secs_f64(), Seconds::SYMBOL, None)),
            "notes": self.notes,
            "warnings": m.warnings,
        })
    }

    /// One row in CodeCarbon's `emissions.csv` layout (units: s, kg, kg/s, W, kWh, GB);
    /// figures that are not known are left empty, never written as 0.
    fn emissions_row(&self) -> Vec<(&'static str, String)> {
        let m = self.measurement;
        let secs = m.duration.0;
        let cpu = self.energy_of(|k| matches!(k, DomainKind::CpuPackage | DomainKind::Psys));
        let ram = self.energy_of(|k| k == DomainKind::Dram);
        let gpu = self.energy_of(|k| k == DomainKind::Gpu);
        let text = |x: Option<f64>| x.map_or_else(String::new, |x| x.to_string());
        let power = |e: Option<Joules>| text(e.and_then(|e| e.per(m.duration)).map(|p| p.0));
        let kwh = |e: Option<Joules>| text(e.map(Joules::kwh));
        let kg = self.emissions().map(|g| g / 1000.0);
        let gpus = self
            .described
            .iter()
            .filter(|(d, _)| d.kind == DomainKind::Gpu)
            .count();
        let (cpu_count, cpu_model) = cpu_info();
        let country = carbon::country_name(&self.carbon.iso).unwrap_or("");
        vec![
            ("timestamp", timestamp(self.started_at)),
            ("project_name", self.args.project_name.clone()),
            ("run_id", run_id(self.started_at)),
            ("experiment_id", String::new()),
            ("duration", secs.to_string()),
            ("emissions", text(kg)),
            (
                "emissions_rate",
                text(kg.map(|kg| if secs > 0.0 { kg / secs } else { 0.0 })),
            ),
            ("cpu_utilization_percent", String::new()),
            ("ram_utilization_percent", String::new()),
            ("ram_used_gb", String::new()),
            ("cpu_power", power(cpu)),
            ("gpu_power", power(gpu)),
            ("ram_power", power(ram)),
            ("cpu_energy", kwh(cpu)),
            ("gpu_energy", kwh(gpu)),
            ("ram_energy", kwh(ram)),
            ("energy_consumed", kwh(m.total)),
            ("water_consumed", "0".into()),
            ("country_name", country.to_owned()),
            ("country_iso_code", self.carbon.iso.clone()),
            ("region", String::new()),
            ("cloud_provider", String::new()),
            ("cloud_region", String::new()),
            ("os", std::env::consts::OS.to_owned()),
            ("python_version", String::new()),
            ("codecarbon_version", String::new()),
            ("cpu_count", cpu_count.to_string()),
            ("cpu_model", cpu_model),
            ("gpu_count", gpus.to_string()),
            ("gpu_model", String::new()),
            ("longitude", String::new()),
            ("latitude", String::new()),
            ("ram_total_size", String::new()),
            ("tracking_mode", "machine".into()),
            ("on_cloud", "N".into()),
            ("pue", self.carbon.pue.to_string()),
            ("wue", "0".into()),
        ]
    }
}

fn cpu_info() -> (usize, String) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let count = text.lines().filter(|l| l.starts_with("processor")).count();
    let model = text
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (count, model)
}

/// The time series of the run (and the idle phase before it, if any): cumulative energy per
/// domain since the first sample, total power over each step.
fn time_series_csv(
    tracker: &Tracker,
    described: &[(Domain, Source)],
    run_start: Seconds,
) -> anyhow::Result<Vec<u8>> {
    let samples = tracker.samples();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["time_s".to_owned(), "phase".to_owned()];
    for (d, s) in described {
        header.push(format!("{d}_energy_j ({s})"));
    }
    header.push("total_energy_j".into());
    header.push("total_power_w".into());
    w.write_record(&header)?;
    if let Some(first) = samples.first() {
        let mut prev: Option<(Seconds, Joules)> = None;
        for s in &samples {
            let total: Joules = s
                .energy
                .iter()
                .zip(&first.energy)
                .map(|(a, b)| *a - *b)
                .sum();
            let phase = if s.at < run_start { "idle" } else { "run" };
            let mut row = vec![format!("{:.6}", s.at.0), phase.to_owned()];
            for (e, f) in s.energy.iter().zip(&first.energy) {
                row.push(format!("{:.6}", (*e - *f).0));
            }
            row.push(format!("{:.6}", total.0));
            row.push(match prev {
                Some((t, e)) if s.at.0 > t.0 => format!("{:.6}", (total - e).0 / (s.at.0 - t.0)),
                _ => String::new(),
            });
            w.write_record(&row)?;
            prev = Some((s.at, total));
        }
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the time series: {e}"))
}

/// Appends a row, CodeCarbon style, but atomically: the whole file is rewritten to a temporary
/// file and renamed, so a crash never leaves a half-written row.
fn append_emissions(path: &Path, row: &[(&'static str, String)]) -> anyhow::Result<()> {
    let header: Vec<&str> = row.iter().map(|(k, _)| *k).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    match std::fs::read(path) {
        Ok(existing) if existing.iter().all(u8::is_ascii_whitespace) => {
            w.write_record(&header)?;
        }
        Ok(existing) => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(existing.as_slice());
            let mut records = r.records();
            let first = records.next().transpose()?;
            if first.as_ref().map(|h| h.iter().collect::<Vec<_>>()) != Some(header.clone()) {
                bail!(
                    "{} exists with a different header than CodeCarbon's current layout; \
                     move it away or pass another --emissions-csv",
                    path.display()
                );
            }
            w.write_record(&header)?;
            for record in records {
                w.write_record(&record?)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            w.write_record(&header)?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    w.write_record(row.iter().map(|(_, v)| v.as_str()))?;
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    write_atomically(path, bytes)?;
    Ok(())
}

/// Fails early (before the command runs) if an output's folder does not exist.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: folder {} does not exist; create it first",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn split_time(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, mo, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-26T18:30:00Z`.
fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = split_time(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// CodeCarbon's `%Y-%m-%dT%H:%M:%S` (UTC here).
fn timestamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = split_time(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

/// A UUID-shaped run id from the start time and process id (unique per run on a machine).
fn run_id(t: SystemTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let x = (u128::from(a) << 64) | u128::from(b);
    let hex = format!("{x:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(timestamp(t), "2023-11-14T22:13:20");
        assert_eq!(run_id(t).len(), 36);
    }
}
