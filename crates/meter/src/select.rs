//! Choosing the sources: a source is used only after it has proved that it moves.
//!
//! Opening a counter proves nothing. Virtual machines list perf's `power/energy-psys` and let
//! it be opened while its count never changes; RAPL domains read 0 in some guests; NVML returns
//! a constant energy on vGPUs. So every candidate is *probed* before it is used: it is read,
//! a little load runs on the calling thread (a busy loop, so a CPU package has something to
//! count), and it is read again, until every domain has moved or the probe time
//! ([`DEFAULT_PROBE`], 300 ms: RAPL updates every millisecond and NVML's energy counter every
//! few tens of milliseconds, so a live counter moves many times over; a working machine pays
//! for the probe only until its counters move, usually a few milliseconds) runs out.
//!
//! A domain that did not move is first offered to the reader's [`Meter::demote`] (NVML then
//! integrates power samples instead of a frozen counter) and otherwise dropped with a note
//! naming it and why. In `auto` mode selection goes on to the next source, down to the
//! labelled estimate; a source the user forced that does not move at all is an error
//! ([`MeterError::NotMoving`]).
//!
//! [`survey`] runs the same selection for every choice and keeps what it saw, for
//! `greenlab meters`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::MeterError;
use crate::estimate::EstimateMeter;
use crate::meter::{Domain, DomainKind, Meter, Reading};
use crate::nvml::{GpuBackend, NvmlBackend, NvmlMeter};
use crate::perf::{PerfCounters, PerfEvents, PerfMeter, SyscallCounters};
use crate::powercap::{PowercapMeter, PowercapOptions};
use crate::tracker::{MeterChoice, MeterOptions};

/// How long a probe waits for a counter to move, unless `MeterOptions::probe` says otherwise.
pub const DEFAULT_PROBE: Duration = Duration::from_millis(300);

/// What a probe saw of one meter.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Per domain, whether its energy grew during the probe.
    pub moved: Vec<bool>,
    /// How long the probe ran.
    pub waited: Duration,
}

/// Reads `meter`, runs a little load, and reads again until every domain's energy has grown or
/// `limit` has passed.
pub fn probe(meter: &mut dyn Meter, limit: Duration) -> Result<Probe, MeterError> {
    let start = Instant::now();
    let first = meter.read()?;
    let mut moved = vec![false; first.domains.len()];
    loop {
        spin(Duration::from_millis(2).min(limit));
        let now = meter.read()?;
        mark_growth(&first, &now, &mut moved);
        if moved.iter().all(|&m| m) || start.elapsed() >= limit {
            break;
        }
    }
    Ok(Probe {
        moved,
        waited: start.elapsed(),
    })
}

fn mark_growth(first: &Reading, now: &Reading, moved: &mut [bool]) {
    for ((m, a), b) in moved.iter_mut().zip(&first.domains).zip(&now.domains) {
        if b.energy > a.energy || b.gaps > a.gaps {
            *m = true;
        }
    }
}

/// Keeps one core busy for `d` (the probe's "little load").
fn spin(d: Duration) {
    let until = Instant::now() + d;
    let mut x = 1.0f64;
    while Instant::now() < until {
        for _ in 0..1000 {
            x = black_box(x.mul_add(1.000_000_1, 1e-9).sqrt());
        }
    }
    black_box(x);
}

/// A meter restricted to some of another meter's domains (the ones that moved, or the GPUs
/// the work runs on).
pub struct Subset {
    inner: Box<dyn Meter>,
    keep: Vec<usize>,
    domains: Vec<Domain>,
}

impl Subset {
    /// The domains of `inner` at positions `keep` (in that order).
    pub fn new(inner: Box<dyn Meter>, keep: Vec<usize>) -> Subset {
        let all = inner.domains();
        let domains = keep.iter().filter_map(|&i| all.get(i).copied()).collect();
        Subset {
            inner,
            keep,
            domains,
        }
    }
}

impl Meter for Subset {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn read(&mut self) -> Result<Reading, MeterError> {
        let r = self.inner.read()?;
        Ok(Reading {
            domains: self
                .keep
                .iter()
                .filter_map(|&i| r.domains.get(i).copied())
                .collect(),
            warnings: r.warnings,
        })
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.inner.poll_interval()
    }

    fn resolution(&self) -> Duration {
        self.inner.resolution()
    }

    fn stall_after(&self) -> Option<Duration> {
        self.inner.stall_after()
    }

    fn label(&self, index: usize) -> String {
        match self.keep.get(index) {
            Some(&i) => self.inner.label(i),
            None => self.inner.name().to_owned(),
        }
    }

    fn demote(&mut self, index: usize) -> Option<String> {
        let i = *self.keep.get(index)?;
        self.inner.demote(i)
    }

    fn process_share(&mut self, index: usize, pids: &[u32], since_unix_us: u64) -> Option<f64> {
        let i = *self.keep.get(index)?;
        self.inner.process_share(i, pids, since_unix_us)
    }
}

/// One domain of a candidate, as the probe found it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainCheck {
    /// The domain (`cpu-package-0`, `psys`, `gpu-0`).
    pub domain: String,
    /// The event, file or device behind it.
    pub label: String,
    /// Whether its energy grew during the probe.
    pub moved: bool,
    /// What the selection did about it when it did not (switched to power samples, dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One source that was looked for, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// `rapl`, `perf`, `nvml` or `estimate`.
    pub source: String,
    /// Where it was looked for (a sysfs folder, the NVML library, `/proc`).
    pub location: String,
    /// Whether it could be opened.
    pub opened: bool,
    /// Why it could not be opened, with the fix where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do when it was refused for lack of permission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What it assumes (the estimate's TDP and where it came from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long the probe ran, in seconds (absent when it was not opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_s: Option<f64>,
    /// Per domain, whether it moved.
    pub domains: Vec<DomainCheck>,
    /// Whether the selection uses it.
    pub used: bool,
}

/// The meters chosen for one [`MeterChoice`], with everything that was looked at.
pub struct Selection {
    /// The meters that proved they move, in order (CPU side first, then GPUs).
    pub meters: Vec<Box<dyn Meter>>,
    /// Sentences for the user: each source skipped and why, each assumption.
    pub notes: Vec<String>,
    /// Every source looked for, in the order tried.
    pub candidates: Vec<Candidate>,
}

/// The outcome of probing one opened meter.
enum Proven {
    /// Some domains move (possibly after demotion); the meter keeps those.
    Kept(Box<dyn Meter>),
    /// No domain moves.
    Dead(String),
}

/// Probes `meter`, demotes or drops the domains that did not move, and records it all in
/// `candidate` and `notes`.
fn prove(
    mut meter: Box<dyn Meter>,
    limit: Duration,
    candidate: &mut Candidate,
    notes: &mut Vec<String>,
) -> Result<Proven, MeterError> {
    let result = probe(meter.as_mut(), limit)?;
    candidate.probe_s = Some(result.waited.as_secs_f64());
    let mut moved = result.moved;
    let mut checks: Vec<DomainCheck> = meter
        .domains()
        .iter()
        .enumerate()
        .map(|(i, d)| DomainCheck {
            domain: d.to_string(),
            label: meter.label(i),
            moved: moved.get(i).copied().unwrap_or(false),
            note: None,
        })
        .collect();
    let mut demoted = Vec::new();
    for (i, m) in moved.iter().enumerate() {
        if !*m && let Some(how) = meter.demote(i) {
            demoted.push((i, how));
        }
    }
    if !demoted.is_empty() {
        // A demoted domain must prove itself in its new mode too.
        let again = probe(meter.as_mut(), limit)?;
        for (i, how) in demoted {
            if again.moved.get(i).copied().unwrap_or(false) {
                moved[i] = true;
                let note = format!("{}: {how}", checks[i].label);
                notes.push(note.clone());
                checks[i].note = Some(how);
                checks[i].label = meter.label(i);
            }
        }
    }
    let ms = limit.as_millis();
    let mut dead = Vec::new();
    for (i, check) in checks.iter_mut().enumerate() {
        if !moved[i] {
            let why = format!(
                "opened, but did not change in {ms} ms under load (a virtual machine's \
                 placeholder, or a counter this machine does not update); not used"
            );
            notes.push(format!("{}: {why}", check.label));
            check.note = Some(why);
            dead.push(check.label.clone());
        }
    }
    candidate.domains = checks;
    let keep: Vec<usize> = (0..moved.len()).filter(|&i| moved[i]).collect();
    if keep.is_empty() {
        return Ok(Proven::Dead(format!(
            "{} opened, but did not change in {ms} ms under load",
            dead.join(", ")
        )));
    }
    if keep.len() == moved.len() {
        Ok(Proven::Kept(meter))
    } else {
        Ok(Proven::Kept(Box::new(Subset::new(meter, keep))))
    }
}

/// What to tell a user whose forced source does not move.
fn not_moving(source: &str, detail: String) -> MeterError {
    MeterError::NotMoving {
        source_name: source.to_owned(),
        detail: format!(
            "{detail}: this machine does not update it (virtual machines often list energy \
             counters that never move), so it cannot measure anything; pass --meter auto to \
             fall back to the next source, or --meter estimate"
        ),
    }
}

fn candidate(source: &str, location: String) -> Candidate {
    Candidate {
        source: source.to_owned(),
        location,
        opened: false,
        error: None,
        fix: None,
        detail: None,
        probe_s: None,
        domains: Vec::new(),
        used: false,
    }
}

/// Opens and probes one source; in `forced` mode a source that cannot be opened or does not
/// move is an error, otherwise it is a note and `None`.
fn try_source(
    source: &str,
    location: String,
    open: impl FnOnce() -> Result<Box<dyn Meter>, MeterError>,
    forced: bool,
    limit: Duration,
    candidates: &mut Vec<Candidate>,
    notes: &mut Vec<String>,
) -> Result<Option<Box<dyn Meter>>, MeterError> {
    let mut c = candidate(source, location);
    let meter = match open() {
        Ok(m) => m,
        Err(e) => {
            c.error = Some(e.to_string());
            c.fix = permission_fix(source, &e);
            candidates.push(c);
            if forced {
                return Err(e);
            }
            notes.push(format!("{source} unavailable: {e}"));
            return Ok(None);
        }
    };
    c.opened = true;
    let proven = match prove(meter, limit, &mut c, notes) {
        Ok(p) => p,
        Err(e) => {
            // Opened, but reading it failed: as unusable as a source that cannot be opened.
            c.error = Some(e.to_string());
            candidates.push(c);
            if forced {
                return Err(e);
            }
            notes.push(format!("{source} unusable: {e}"));
            return Ok(None);
        }
    };
    let out = match proven {
        Proven::Kept(m) => {
            c.used = true;
            Some(m)
        }
        Proven::Dead(detail) => {
            if forced {
                candidates.push(c);
                return Err(not_moving(source, detail));
            }
            None
        }
    };
    candidates.push(c);
    Ok(out)
}

/// The fix for a source refused for lack of permission (the most common reason RAPL "reads 0"
/// or fails), or `None` when the error is not about permission.
fn permission_fix(source: &str, e: &MeterError) -> Option<String> {
    let text = e.to_string().to_ascii_lowercase();
    let denied = text.contains("permission denied")
        || text.contains("operation not permitted")
        || text.contains("os error 13")
        || text.contains("os error 1)");
    if !denied {
        return None;
    }
    Some(if source.contains("powercap") || source == "rapl" {
        "energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694): run as root, or \
         `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` (until the next boot), or \
         use --meter perf with CAP_PERFMON"
            .to_owned()
    } else if source.contains("perf") {
        "system-wide perf events need root or CAP_PERFMON (`sudo setcap cap_perfmon+ep \
         $(which greenlab)`), or `sudo sysctl kernel.perf_event_paranoid=0`"
            .to_owned()
    } else {
        "the NVIDIA driver refused: run as a user in the video group, or as root".to_owned()
    })
}

fn powercap_options(options: &MeterOptions) -> PowercapOptions {
    PowercapOptions {
        prefer_psys: options.prefer_psys,
        max_domain_power: options.max_domain_power,
        ..PowercapOptions::default()
    }
}

/// The estimate for `options`.
pub(crate) fn estimate(options: &MeterOptions) -> Result<EstimateMeter, MeterError> {
    EstimateMeter::with_clock(
        &options.proc_root,
        options.cpu_tdp_w,
        options.dram_w_per_gib,
        crate::clock::system(),
    )
}

/// The sentence that says the CPU side is estimated.
pub(crate) fn estimate_note(m: &EstimateMeter) -> String {
    format!(
        "cpu and dram energy are estimated from utilisation × {:.1} ({}), not measured",
        m.tdp().tdp,
        m.tdp().origin
    )
}

fn try_estimate(
    options: &MeterOptions,
    candidates: &mut Vec<Candidate>,
    notes: &mut Vec<String>,
) -> Result<Box<dyn Meter>, MeterError> {
    let mut c = candidate("estimate", options.proc_root.display().to_string());
    match estimate(options) {
        Ok(m) => {
            c.opened = true;
            c.used = true;
            let model = m.model();
            c.detail = Some(format!(
                "cpu: {:.1} at full load ({}), {} logical cpus ({:.2} each), idle {:.0} % of it; \
                 dram: {} W per GiB in use",
                m.tdp().tdp,
                m.tdp().origin,
                m.tdp().cpus,
                model.per_cpu,
                crate::estimate::IDLE_FRACTION * 100.0,
                model.dram_w_per_gib
            ));
            c.domains = m
                .domains()
                .iter()
                .enumerate()
                .map(|(i, d)| DomainCheck {
                    domain: d.to_string(),
                    label: m.label(i),
                    moved: true,
                    note: None,
                })
                .collect();
            notes.push(estimate_note(&m));
            candidates.push(c);
            Ok(Box::new(m))
        }
        Err(e) => {
            c.error = Some(e.to_string());
            candidates.push(c);
            Err(e)
        }
    }
}

/// Keeps only the GPUs the work runs on (CUDA indices among the visible devices).
fn select_gpus(
    meter: Box<dyn Meter>,
    wanted: Option<&[u32]>,
) -> Result<Box<dyn Meter>, MeterError> {
    let Some(wanted) = wanted else {
        return Ok(meter);
    };
    let domains = meter.domains().to_vec();
    let mut keep = Vec::new();
    for &w in wanted {
        match domains.iter().position(|d| *d == Domain::gpu(w)) {
            Some(i) => keep.push(i),
            None => {
                return Err(MeterError::InvalidConfig {
                    what: "gpu device",
                    reason: format!(
                        "cuda:{w} is not among the {} gpu(s) nvml sees here (after \
                         CUDA_VISIBLE_DEVICES); pass an existing device",
                        domains.len()
                    ),
                });
            }
        }
    }
    Ok(Box::new(Subset::new(meter, keep)))
}

fn has_memory_domain(meter: &dyn Meter) -> bool {
    meter
        .domains()
        .iter()
        .any(|d| matches!(d.kind, DomainKind::Dram | DomainKind::Psys))
}

/// Where the perf and NVML readers get their hardware: the kernel and the NVIDIA library by
/// default; tests hand in fakes (counters that never move, reset, refuse to open; recorded GPU
/// traces) to run the real selection against machines they do not have.
#[derive(Default)]
pub struct Backends {
    /// Makes the perf counters (default: `perf_event_open`).
    pub perf: Option<Box<dyn Fn() -> Box<dyn PerfCounters>>>,
    /// Makes the GPU backend (default: load NVML), with the clock its meter runs on.
    #[allow(clippy::type_complexity)]
    pub gpu: Option<
        Box<dyn Fn() -> Result<(Box<dyn GpuBackend>, std::sync::Arc<dyn Clock>), MeterError>>,
    >,
}

/// Builds the meters for `choice`: every counter is probed first (see the module doc).
pub fn select(choice: MeterChoice, options: &MeterOptions) -> Result<Selection, MeterError> {
    select_with(choice, options, &Backends::default())
}

/// As [`select`], with the hardware behind perf and NVML given.
pub fn select_with(
    choice: MeterChoice,
    options: &MeterOptions,
    backends: &Backends,
) -> Result<Selection, MeterError> {
    options.validate()?;
    let limit = options.probe;
    let mut notes = Vec::new();
    let mut candidates = Vec::new();
    let mut meters: Vec<Box<dyn Meter>> = Vec::new();
    let powercap_at = options.powercap_root.display().to_string();
    let perf_at = options.perf_root.display().to_string();
    let nvml_at = options.nvml_library.as_ref().map_or_else(
        || "libnvidia-ml.so (system loader)".to_owned(),
        |p| p.display().to_string(),
    );
    let open_powercap = || -> Result<Box<dyn Meter>, MeterError> {
        Ok(Box::new(PowercapMeter::new(
            &options.powercap_root,
            &powercap_options(options),
        )?))
    };
    let open_perf = || -> Result<Box<dyn Meter>, MeterError> {
        let events = PerfEvents::discover(&options.perf_root, options.prefer_psys)?;
        let counters: Box<dyn PerfCounters> = match &backends.perf {
            Some(make) => make(),
            None => Box::new(SyscallCounters::default()),
        };
        Ok(Box::new(PerfMeter::open(
            &options.perf_root,
            events,
            counters,
        )?))
    };
    let open_nvml = || -> Result<Box<dyn Meter>, MeterError> {
        let (backend, clock): (Box<dyn GpuBackend>, std::sync::Arc<dyn Clock>) = match &backends.gpu
        {
            Some(make) => make()?,
            None => (
                Box::new(NvmlBackend::load(options.nvml_library.as_deref())?),
                crate::clock::system(),
            ),
        };
        let m: Box<dyn Meter> = Box::new(NvmlMeter::with_backend(
            backend,
            options.cuda_visible_devices.as_deref(),
            clock,
        )?);
        select_gpus(m, options.gpu_devices.as_deref())
    };
    match choice {
        MeterChoice::Rapl => {
            if let Some(m) = try_source(
                "rapl",
                powercap_at,
                open_powercap,
                true,
                limit,
                &mut candidates,
                &mut notes,
            )? {
                meters.push(m);
            }
        }
        MeterChoice::Perf => {
            if let Some(m) = try_source(
                "perf",
                perf_at,
                open_perf,
                true,
                limit,
                &mut candidates,
                &mut notes,
            )? {
                meters.push(m);
            }
        }
        MeterChoice::Nvml => {
            if let Some(m) = try_source(
                "nvml",
                nvml_at,
                open_nvml,
                true,
                limit,
                &mut candidates,
                &mut notes,
            )? {
                meters.push(m);
            }
        }
        MeterChoice::Estimate => meters.push(try_estimate(options, &mut candidates, &mut notes)?),
        MeterChoice::Auto => {
            let mut cpu = try_source(
                "rapl (powercap)",
                powercap_at,
                open_powercap,
                false,
                limit,
                &mut candidates,
                &mut notes,
            )?;
            if cpu.is_none() {
                cpu = try_source(
                    "rapl (perf events)",
                    perf_at,
                    open_perf,
                    false,
                    limit,
                    &mut candidates,
                    &mut notes,
                )?;
            }
            let cpu = match cpu {
                Some(m) => Some(m),
                // Nothing at all: the work still runs, and every figure says it is not
                // measured (never 0 J).
                None => match try_estimate(options, &mut candidates, &mut notes) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        notes.push(format!(
                            "no cpu energy can be measured or estimated ({e}): energy is not \
                             measured"
                        ));
                        None
                    }
                },
            };
            if let Some(cpu) = cpu {
                if !has_memory_domain(cpu.as_ref()) {
                    notes.push(format!(
                        "{} reports no dram domain on this cpu: memory energy is not included",
                        cpu.name()
                    ));
                }
                meters.push(cpu);
            }
            if options.gpus {
                match try_source(
                    "nvml",
                    nvml_at,
                    open_nvml,
                    false,
                    limit,
                    &mut candidates,
                    &mut notes,
                ) {
                    Ok(Some(m)) => meters.push(m),
                    Ok(None) => {
                        if candidates.last().is_some_and(|c| c.opened) {
                            notes.push("no gpu energy: no gpu's energy moved".to_owned());
                        }
                    }
                    // A GPU fault must not cost the CPU figures: say so and go on without it.
                    Err(e) => notes.push(format!("no gpu energy: {e}")),
                }
            }
        }
    }
    Ok(Selection {
        meters,
        notes,
        candidates,
    })
}

/// What `greenlab meters` shows: every source looked for, and what each choice would use.
#[derive(Clone, Debug, Serialize)]
pub struct Survey {
    /// Every source looked for by `auto`, with what became of it.
    pub candidates: Vec<Candidate>,
    /// Notes `auto` would print.
    pub notes: Vec<String>,
    /// What each `--meter` choice would use: `(choice, domains used or the error)`.
    pub choices: Vec<ChoiceOutcome>,
}

/// What one `--meter` choice would do on this machine.
#[derive(Clone, Debug, Serialize)]
pub struct ChoiceOutcome {
    /// The choice (`auto`, `rapl`, ...).
    pub choice: String,
    /// The domains it would measure, with their source, when it works.
    pub domains: Vec<String>,
    /// Why it fails, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Looks at every source and every choice (each forced choice is probed on its own).
pub fn survey(options: &MeterOptions) -> Result<Survey, MeterError> {
    survey_with(options, &Backends::default())
}

/// As [`survey`], with the hardware behind perf and NVML given.
pub fn survey_with(options: &MeterOptions, backends: &Backends) -> Result<Survey, MeterError> {
    let auto = select_with(MeterChoice::Auto, options, backends)?;
    let mut candidates = auto.candidates;
    let mut choices = Vec::new();
    for choice in [
        MeterChoice::Auto,
        MeterChoice::Rapl,
        MeterChoice::Perf,
        MeterChoice::Nvml,
        MeterChoice::Estimate,
    ] {
        let outcome = match choice {
            MeterChoice::Auto => Ok(described(&auto.meters)),
            other => select_with(other, options, backends).map(|s| {
                // Auto stops at the first CPU source that works: show the estimate's inputs
                // too, as what `--meter estimate` would use.
                if other == MeterChoice::Estimate
                    && !candidates.iter().any(|c| c.source == "estimate")
                {
                    candidates.extend(s.candidates.into_iter().map(|mut c| {
                        c.used = false;
                        c
                    }));
                }
                described(&s.meters)
            }),
        };
        choices.push(match outcome {
            Ok(domains) => ChoiceOutcome {
                choice: choice.to_string(),
                domains,
                error: None,
            },
            Err(e) => ChoiceOutcome {
                choice: choice.to_string(),
                domains: Vec::new(),
                error: Some(e.to_string()),
            },
        });
    }
    Ok(Survey {
        candidates,
        notes: auto.notes,
        choices,
    })
}

fn described(meters: &[Box<dyn Meter>]) -> Vec<String> {
    let mut out = Vec::new();
    for m in meters {
        for i in 0..m.domains().len() {
            out.push(format!("{} ({})", m.domains()[i], m.label(i)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::DomainReading;
    use crate::units::{Joules, Source};

    /// Two domains: the first moves by 1 J per read, the second never moves.
    struct HalfDead(u64, [Domain; 2], bool);
    impl Meter for HalfDead {
        fn name(&self) -> &'static str {
            "half"
        }
        fn domains(&self) -> &[Domain] {
            &self.1
        }
        fn read(&mut self) -> Result<Reading, MeterError> {
            self.0 += 1;
            let second = if self.2 { self.0 as f64 } else { 0.0 };
            Ok(Reading {
                domains: vec![
                    DomainReading::new(Joules(self.0 as f64), Source::Counter, self.0),
                    DomainReading::new(Joules(second), Source::Counter, 0),
                ],
                warnings: vec![],
            })
        }
        fn demote(&mut self, index: usize) -> Option<String> {
            (index == 1).then(|| {
                self.2 = true;
                "now integrating power".to_owned()
            })
        }
    }

    #[test]
    fn a_probe_ends_as_soon_as_everything_moved_and_waits_for_the_dead() {
        let mut m = HalfDead(0, [Domain::cpu_package(0), Domain::dram(0)], false);
        let p = probe(&mut m, Duration::from_millis(40)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.moved, vec![true, false]);
        assert!(p.waited >= Duration::from_millis(40), "{:?}", p.waited);
    }

    #[test]
    fn dead_domains_are_demoted_or_dropped_and_named() {
        let mut notes = Vec::new();
        let mut c = candidate("half", "here".into());
        let m = Box::new(HalfDead(
            0,
            [Domain::cpu_package(0), Domain::dram(0)],
            false,
        ));
        let kept = prove(m, Duration::from_millis(20), &mut c, &mut notes)
            .unwrap_or_else(|e| panic!("{e}"));
        let Proven::Kept(m) = kept else {
            panic!("the live domain keeps the meter")
        };
        assert_eq!(
            m.domains().len(),
            2,
            "the dead domain was demoted, not dropped"
        );
        assert!(notes[0].contains("now integrating power"), "{notes:?}");
        assert_eq!(c.domains[1].note.as_deref(), Some("now integrating power"));
    }

    #[test]
    fn subset_keeps_the_named_domains_in_order() {
        let m = Box::new(HalfDead(
            0,
            [Domain::cpu_package(0), Domain::dram(0)],
            false,
        ));
        let mut s = Subset::new(m, vec![1]);
        assert_eq!(s.domains(), &[Domain::dram(0)]);
        let r = s.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.domains.len(), 1);
        assert_eq!(r.domains[0].energy, Joules(0.0));
        assert_eq!(s.label(0), "half dram-0");
    }
}
