//! The `Meter` trait every reader implements, what it returns, and its conformance check.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::MeterError;
use crate::units::{Joules, Source};

/// What a domain measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DomainKind {
    /// One CPU package (socket), cores and uncore together.
    CpuPackage,
    /// The DRAM attached to one socket.
    Dram,
    /// The whole platform/SoC (RAPL "psys"): includes package and DRAM, never added to them.
    Psys,
    /// One GPU.
    Gpu,
}

/// One measured thing: the package of socket 1, the DRAM of socket 0, GPU 3, ...
///
/// Displays as `cpu-package-0`, `dram-0`, `psys`, `gpu-0`: the names used in every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Domain {
    /// What is measured.
    pub kind: DomainKind,
    /// Socket number (CPU, DRAM, psys) or device index as the user sees it (GPU).
    pub index: u32,
}

impl Domain {
    /// The package of socket `socket`.
    pub fn cpu_package(socket: u32) -> Domain {
        Domain {
            kind: DomainKind::CpuPackage,
            index: socket,
        }
    }

    /// The DRAM of socket `socket`.
    pub fn dram(socket: u32) -> Domain {
        Domain {
            kind: DomainKind::Dram,
            index: socket,
        }
    }

    /// The platform domain of socket `socket` (there is usually one, index 0).
    pub fn psys(socket: u32) -> Domain {
        Domain {
            kind: DomainKind::Psys,
            index: socket,
        }
    }

    /// GPU `index` (the index the user selected it by, e.g. in `CUDA_VISIBLE_DEVICES`).
    pub fn gpu(index: u32) -> Domain {
        Domain {
            kind: DomainKind::Gpu,
            index,
        }
    }

    /// Whether this domain belongs to the CPU side (package, DRAM, platform).
    pub fn is_cpu_side(&self) -> bool {
        !matches!(self.kind, DomainKind::Gpu)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DomainKind::CpuPackage => write!(f, "cpu-package-{}", self.index),
            DomainKind::Dram => write!(f, "dram-{}", self.index),
            DomainKind::Psys if self.index == 0 => f.write_str("psys"),
            DomainKind::Psys => write!(f, "psys-{}", self.index),
            DomainKind::Gpu => write!(f, "gpu-{}", self.index),
        }
    }
}

/// One domain's state at the moment of a read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DomainReading {
    /// Energy since the meter was created, already corrected for counter wrap. Never decreases.
    pub energy: Joules,
    /// How this energy was obtained.
    pub source: Source,
    /// How many times the underlying counter or sensor was seen to change since the meter was
    /// created. Never decreases. A window that spans zero updates did not resolve its energy.
    pub updates: u64,
    /// How many intervals between two reads this domain could not account for since the meter
    /// was created: its counter went backwards (a reset: a driver reload, an NVML reset, a
    /// migrated virtual machine) or stopped reporting, and the reader re-based on the new value
    /// and kept counting. The energy of those intervals is not in `energy`; a window that spans
    /// one has no value for this domain. Never decreases.
    pub gaps: u64,
}

impl DomainReading {
    /// A reading with no gaps.
    pub fn new(energy: Joules, source: Source, updates: u64) -> DomainReading {
        DomainReading {
            energy,
            source,
            updates,
            gaps: 0,
        }
    }
}

/// The result of one `Meter::read`: one entry per domain, in the order of `Meter::domains`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// Per-domain cumulative energy, parallel to `Meter::domains()`.
    pub domains: Vec<DomainReading>,
    /// Flags raised by this read that do not invalidate it (e.g. a poll gap long enough that a
    /// counter wrap may have been missed). Lowercase sentences.
    pub warnings: Vec<String>,
}

impl Reading {
    /// The sum over all domains.
    pub fn total(&self) -> Joules {
        self.domains.iter().map(|d| d.energy).sum()
    }
}

/// A source of cumulative energy readings for a fixed set of domains.
///
/// Contract:
/// - `domains()` is fixed at construction and never changes afterwards; `read()` returns one
///   `DomainReading` per domain, in that order, with energy in joules accumulated since the
///   meter was created (the first read may be zero), corrected for counter wrap, never
///   decreasing.
/// - A domain's `Source` never changes between reads.
/// - `read()` is called by one thread at a time (the `Tracker` holds meters behind a mutex); a
///   meter is `Send` but need not be `Sync`. A read should take well under a millisecond.
/// - If `poll_interval()` is `Some(p)`, the meter is only exact if `read()` is called at least
///   every `p` (counter-wrap protection, power integration); the `Tracker` runs a sampler
///   thread for it. Meters returning `None` are exact from two reads alone.
/// - Errors: `MeterError::Unsupported` when the source cannot work on this machine (callers
///   fall back), other variants for faults.
pub trait Meter: Send {
    /// Short name of the reader, as accepted by `--meter` (`rapl`, `perf`, `nvml`, `estimate`).
    fn name(&self) -> &'static str;

    /// The domains this meter reports, fixed for its lifetime.
    fn domains(&self) -> &[Domain];

    /// Cumulative energy per domain, wrap-corrected.
    fn read(&mut self) -> Result<Reading, MeterError>;

    /// The longest gap between reads that keeps this meter exact, if it needs polling.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    /// The finest time the underlying sensor resolves: windows shorter than this get a warning.
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    /// How long a domain's counter may go without changing before it counts as frozen (a
    /// counter that stopped in the middle of a run: the energy of the frozen time is unknown).
    /// `None` for readers whose figures need no moving counter (models, power samples).
    fn stall_after(&self) -> Option<Duration> {
        None
    }

    /// What to call domain `index` in notes and errors: the event, file or device behind it
    /// (`perf power/energy-psys`, `nvml device 0 energy counter`).
    fn label(&self, index: usize) -> String {
        match self.domains().get(index) {
            Some(d) => format!("{} {d}", self.name()),
            None => self.name().to_owned(),
        }
    }

    /// Switches domain `index` to a weaker way of measuring that does not need the counter that
    /// did not move (NVML: integrate power samples instead of the energy counter). Returns a
    /// sentence saying what changed, or `None` when there is no other way (the default).
    fn demote(&mut self, index: usize) -> Option<String> {
        let _ = index;
        None
    }

    /// The share (0..=1) of domain `index`'s activity since `since_unix_us` (microseconds since
    /// the Unix epoch) that is due to the processes `pids`, where the hardware reports activity
    /// per process (NVML's per-process utilisation); `None` where it does not (the default).
    fn process_share(&mut self, index: usize, pids: &[u32], since_unix_us: u64) -> Option<f64> {
        let _ = (index, pids, since_unix_us);
        None
    }
}

/// The conformance suite every `Meter` implementation is run against.
///
/// `advance(step)` is called between reads (step = 0, 1, 2, ...) and should make the fake (or
/// real) hardware move on, e.g. by writing new counter values or advancing a replay clock.
/// Checks: domains non-empty and distinct; each read has one entry per domain; energies finite,
/// non-negative and non-decreasing; update counts non-decreasing; sources stable; and, when
/// `expect_growth` is set, that energy grew over the run. Returns a description of the first
/// violation.
pub fn check_meter(
    meter: &mut dyn Meter,
    reads: usize,
    expect_growth: bool,
    advance: &mut dyn FnMut(usize),
) -> Result<(), String> {
    let domains = meter.domains().to_vec();
    if domains.is_empty() {
        return Err(format!("{}: no domains", meter.name()));
    }
    let distinct: HashSet<String> = domains.iter().map(|d| d.to_string()).collect();
    if distinct.len() != domains.len() {
        return Err(format!(
            "{}: duplicate domain names {domains:?}",
            meter.name()
        ));
    }
    let mut first: Option<Reading> = None;
    let mut previous: Option<Reading> = None;
    for step in 0..reads.max(2) {
        if step > 0 {
            advance(step - 1);
        }
        let reading = meter
            .read()
            .map_err(|e| format!("{}: read {step} failed: {e}", meter.name()))?;
        if meter.domains() != domains.as_slice() {
            return Err(format!(
                "{}: domains changed after read {step}",
                meter.name()
            ));
        }
        if reading.domains.len() != domains.len() {
            return Err(format!(
                "{}: read {step} has {} entries for {} domains",
                meter.name(),
                reading.domains.len(),
                domains.len()
            ));
        }
        for (i, d) in reading.domains.iter().enumerate() {
            if !d.energy.0.is_finite() || d.energy.0 < 0.0 {
                return Err(format!(
                    "{}: read {step}, {}: energy {} is not a finite non-negative number",
                    meter.name(),
                    domains[i],
                    d.energy
                ));
            }
            if let Some(prev) = &previous {
                let p = prev.domains[i];
                if d.energy < p.energy {
                    return Err(format!(
                        "{}: read {step}, {}: energy went down from {} to {}",
                        meter.name(),
                        domains[i],
                        p.energy,
                        d.energy
                    ));
                }
                if d.updates < p.updates {
                    return Err(format!(
                        "{}: read {step}, {}: update count went down",
                        meter.name(),
                        domains[i]
                    ));
                }
                if d.gaps < p.gaps {
                    return Err(format!(
                        "{}: read {step}, {}: gap count went down",
                        meter.name(),
                        domains[i]
                    ));
                }
                if d.source != p.source {
                    return Err(format!(
                        "{}: read {step}, {}: source changed from {} to {}",
                        meter.name(),
                        domains[i],
                        p.source,
                        d.source
                    ));
                }
            }
        }
        if first.is_none() {
            first = Some(reading.clone());
        }
        previous = Some(reading);
    }
    if let (true, Some(a), Some(b)) = (expect_growth, &first, &previous) {
        {
            if b.total() <= a.total() {
                return Err(format!(
                    "{}: energy did not grow over {reads} reads ({} -> {})",
                    meter.name(),
                    a.total(),
                    b.total()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        assert_eq!(Domain::cpu_package(1).to_string(), "cpu-package-1");
        assert_eq!(Domain::dram(0).to_string(), "dram-0");
        assert_eq!(Domain::psys(0).to_string(), "psys");
        assert_eq!(Domain::gpu(3).to_string(), "gpu-3");
    }

    /// A meter that breaks the contract on purpose: the check must catch it.
    struct Backwards(Vec<Domain>, f64);
    impl Meter for Backwards {
        fn name(&self) -> &'static str {
            "backwards"
        }
        fn domains(&self) -> &[Domain] {
            &self.0
        }
        fn read(&mut self) -> Result<Reading, MeterError> {
            self.1 -= 1.0;
            Ok(Reading {
                domains: vec![DomainReading::new(Joules(self.1), Source::Counter, 0)],
                warnings: vec![],
            })
        }
    }

    #[test]
    fn conformance_catches_a_decreasing_counter() {
        let mut m = Backwards(vec![Domain::cpu_package(0)], 10.0);
        let err = check_meter(&mut m, 3, false, &mut |_| {}).err();
        assert!(err.is_some_and(|e| e.contains("went down")));
    }
}
