//! The one place that builds energy meters from the command line.
//!
//! Every command that measures (`measure`, `train`, `profile`, `tune`, `worker`, `factorial`,
//! `replicate`, `meters`) flattens [`MeterArgs`] into its arguments and calls [`tracker`] (or
//! [`options`]), so all of them offer and honour the same `--meter`, `--cpu-tdp-w`,
//! `--nvml-library`, hardware roots and probe time, and all of them restrict GPU measurement
//! to the device the work runs on: `--device cuda:1` measures the second visible GPU only,
//! after `CUDA_VISIBLE_DEVICES` (the one environment variable read here, as CUDA reads it),
//! and `--device cpu` measures no GPU at all.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use greenlab_meter::{MeterChoice, MeterOptions, Tracker, Watts};

/// The meter flags every measuring command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct MeterArgs {
    /// Energy source: auto (the best source that proves it moves: RAPL through powercap, else
    /// RAPL through perf events, else the labelled estimate; NVML for GPUs), rapl, perf, nvml,
    /// or estimate (CPU utilisation × TDP). A forced source that does not move is an error.
    #[arg(long, default_value = "auto")]
    pub meter: String,
    /// CPU power at full load, in watts, for the estimate (default: built-in table by model,
    /// else 10 W per logical CPU).
    #[arg(long, value_name = "W")]
    pub cpu_tdp_w: Option<f64>,
    /// Path of libnvidia-ml.so (default: the loader's search path).
    #[arg(long, value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Root of the powercap tree (for unusual systems and fakes).
    #[arg(long, value_name = "DIR", default_value = "/sys/class/powercap")]
    pub powercap_root: PathBuf,
    /// The perf power PMU directory.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/sys/bus/event_source/devices/power"
    )]
    pub perf_root: PathBuf,
    /// Root of procfs, for the estimate and for attributing energy to processes (for
    /// containers that mount it elsewhere, and fakes).
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Use RAPL's platform domain (psys) instead of package + DRAM where both exist.
    #[arg(long)]
    pub psys: bool,
    /// Do not measure GPUs.
    #[arg(long)]
    pub no_gpu: bool,
    /// How long each energy counter may take to prove that it moves before it is not used, in
    /// milliseconds (RAPL moves within a millisecond, NVML within tens).
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub probe_ms: u64,
}

impl Default for MeterArgs {
    fn default() -> Self {
        MeterArgs {
            meter: "auto".into(),
            cpu_tdp_w: None,
            nvml_library: None,
            powercap_root: PathBuf::from("/sys/class/powercap"),
            perf_root: PathBuf::from("/sys/bus/event_source/devices/power"),
            proc_root: PathBuf::from("/proc"),
            psys: false,
            no_gpu: false,
            probe_ms: 300,
        }
    }
}

impl MeterArgs {
    /// The parsed `--meter`.
    pub fn choice(&self) -> anyhow::Result<MeterChoice> {
        self.meter
            .parse()
            .with_context(|| format!("--meter {}", self.meter))
    }
}

/// Which GPUs the work on `device` uses: `None` for every visible one (no device given: a
/// command measured from outside), `Some([])` for the CPU, `Some([n])` for `cuda:n` (`cuda`
/// alone is device 0, as in PyTorch).
pub fn gpus_of(device: Option<&str>) -> anyhow::Result<Option<Vec<u32>>> {
    let Some(device) = device else {
        return Ok(None);
    };
    if device == "cpu" {
        return Ok(Some(Vec::new()));
    }
    if device == "cuda" {
        return Ok(Some(vec![0]));
    }
    match device.strip_prefix("cuda:").map(str::parse::<u32>) {
        Some(Ok(n)) => Ok(Some(vec![n])),
        _ => bail!("unknown device {device:?}: use cpu, cuda or cuda:N"),
    }
}

/// The meter options for `args` and the work's `device` (see [`gpus_of`]).
pub fn options(args: &MeterArgs, device: Option<&str>) -> anyhow::Result<MeterOptions> {
    let gpus = gpus_of(device)?;
    Ok(MeterOptions {
        powercap_root: args.powercap_root.clone(),
        perf_root: args.perf_root.clone(),
        proc_root: args.proc_root.clone(),
        cpu_tdp_w: args.cpu_tdp_w.map(Watts),
        nvml_library: args.nvml_library.clone(),
        // The library reads no environment: CUDA's device numbering comes in from here.
        cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
        prefer_psys: args.psys,
        gpus: !args.no_gpu && gpus.as_ref().is_none_or(|g| !g.is_empty()),
        gpu_devices: gpus.filter(|g| !g.is_empty()),
        probe: Duration::from_millis(args.probe_ms),
        ..MeterOptions::default()
    })
}

/// Builds the tracker for `args` and `device` with `options` adjusted by `adjust` (sampling
/// interval, time series), and prints its notes on stderr prefixed by `greenlab: `.
pub fn tracker_with(
    args: &MeterArgs,
    device: Option<&str>,
    adjust: impl FnOnce(&mut MeterOptions),
) -> anyhow::Result<Tracker> {
    let choice = args.choice()?;
    let mut options = options(args, device)?;
    adjust(&mut options);
    let tracker = Tracker::new(choice, &options)
        .with_context(|| format!("cannot set up the {choice} meter (see `greenlab meters`)"))?;
    for note in tracker.notes() {
        eprintln!("greenlab: {note}");
    }
    Ok(tracker)
}

/// Builds the tracker for `args` and `device` and prints its notes.
pub fn tracker(args: &MeterArgs, device: Option<&str>) -> anyhow::Result<Tracker> {
    tracker_with(args, device, |_| {})
}

/// One line saying what the tracker measures: `cpu-package-0 estimated, dram-0 estimated`.
pub fn describe(tracker: &Tracker) -> String {
    let d = tracker.describe();
    if d.is_empty() {
        return "nothing (no energy source works here)".into();
    }
    d.iter()
        .map(|(d, s)| format!("{d} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_select_the_gpus_they_use() {
        assert_eq!(gpus_of(None).ok(), Some(None));
        assert_eq!(gpus_of(Some("cpu")).ok(), Some(Some(vec![])));
        assert_eq!(gpus_of(Some("cuda")).ok(), Some(Some(vec![0])));
        assert_eq!(gpus_of(Some("cuda:3")).ok(), Some(Some(vec![3])));
        assert!(gpus_of(Some("tpu:0")).is_err());
        let args = MeterArgs::default();
        let cpu = options(&args, Some("cpu")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cpu.gpus, "cpu training measures no gpu");
        let one = options(&args, Some("cuda:1")).unwrap_or_else(|e| panic!("{e}"));
        assert!(one.gpus);
        assert_eq!(one.gpu_devices, Some(vec![1]));
        let all = options(&args, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.gpu_devices, None);
    }

    #[test]
    fn bad_meters_are_refused() {
        let args = MeterArgs {
            meter: "geiger".into(),
            ..MeterArgs::default()
        };
        assert!(tracker(&args, Some("cpu")).is_err());
    }
}
