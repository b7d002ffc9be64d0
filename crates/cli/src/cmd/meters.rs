//! `greenlab meters`: what a user runs when the numbers look wrong. Lists every energy source
//! greenlab looked for (powercap zones, perf RAPL events, NVML devices, the estimate's inputs),
//! whether each could be opened, whether it moved during the probe, the permission fix where it
//! was refused, and what each `--meter` choice would use.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use greenlab_meter::{Survey, select};
use serde_json::json;

use crate::meters::{MeterArgs, options};

/// Arguments of `greenlab meters`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub meter: MeterArgs,
    /// The device the work would run on (cpu, cuda, cuda:N); default: every GPU.
    #[arg(long)]
    pub device: Option<String>,
    /// Print the survey as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `greenlab meters`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let choice = args.meter.choice()?;
    let options = options(&args.meter, args.device.as_deref())?;
    let survey = select::survey(&options).context("cannot survey the energy sources")?;
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    if args.json {
        let value = json!({
            "schema": "greenlab.meters/1",
            "probe_ms": args.meter.probe_ms,
            "perf_event_paranoid": paranoid,
            "selected": choice.to_string(),
            "survey": survey,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!(
            "{}",
            table(&survey, args.meter.probe_ms, paranoid, &choice.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn table(survey: &Survey, probe_ms: u64, paranoid: Option<i64>, selected: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Energy sources looked for (each counter must change within {probe_ms} ms under a \
         little load to be used):"
    );
    for c in &survey.candidates {
        let state = if c.used {
            "USED"
        } else if c.opened {
            "not used"
        } else {
            "unavailable"
        };
        let _ = writeln!(s, "  {:<20} {:<12} {}", c.source, state, c.location);
        if let Some(e) = &c.error {
            let _ = writeln!(s, "      {e}");
        }
        if let Some(fix) = &c.fix {
            let _ = writeln!(s, "      fix: {fix}");
        }
        if let Some(d) = &c.detail {
            let _ = writeln!(s, "      {d}");
        }
        for d in &c.domains {
            let moved = match (d.moved, &d.note) {
                (true, None) => "moved".to_owned(),
                (_, Some(note)) => note.clone(),
                (false, None) => "did not move".to_owned(),
            };
            let _ = writeln!(s, "      {:<15} {:<45} {moved}", d.domain, d.label);
        }
    }
    if let Some(p) = paranoid {
        let _ = writeln!(
            s,
            "  kernel.perf_event_paranoid = {p}{}",
            if p > 0 {
                " (system-wide perf events need root or CAP_PERFMON at this level)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(s, "\nWhat each --meter choice would measure here:");
    for c in &survey.choices {
        let mark = if c.choice == selected { "*" } else { " " };
        match &c.error {
            Some(e) => {
                let _ = writeln!(s, " {mark}{:<9} error: {e}", c.choice);
            }
            None => {
                let _ = writeln!(s, " {mark}{:<9} {}", c.choice, c.domains.join(", "));
            }
        }
    }
    let _ = writeln!(
        s,
        "\n* measure, train, profile, tune, worker, factorial and replicate use --meter {selected} \
         with these options; every figure they print says whether it is a counter reading, \
         integrated power or an estimate."
    );
    s
}
