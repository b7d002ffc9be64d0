//! The `Tracker`: owns the meters, samples them, watches that their counters keep moving, and
//! turns pairs of readings into named, nestable `Measurement`s with a machine and an
//! attributed figure.
//!
//! Unknown is not zero. A counter domain that saw no update inside a window, that was reset
//! (went backwards) or that froze (stopped moving for longer than its reader's
//! [`Meter::stall_after`]) during the window has *no* value for that window: its
//! [`DomainEnergy::energy`] is `None` with the reason. Where a CPU-side counter is unknown and
//! the machine's `/proc` can be read, the whole CPU side of that window is filled by the
//! utilisation estimate instead and labelled `estimated` with the reason; a GPU has no such
//! stand-in, so an unknown GPU makes the window's total unknown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::MeterError;
use crate::estimate::{self, EstimateMeter, EstimateModel};
use crate::meter::{Domain, DomainKind, Meter};
use crate::process::{ProcessSample, ProcessTree, cpu_share};
use crate::select::{self, DEFAULT_PROBE};
use crate::units::{Joules, Provenance, Seconds, Source, Watts};

/// Which reader(s) to use. `FromStr` accepts `auto|rapl|perf|nvml|estimate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterChoice {
    /// The best available source per domain that proves it moves: CPU from powercap, else perf
    /// events, else the estimate; GPUs from NVML when present. Each source skipped is recorded
    /// in `Tracker::notes`.
    #[default]
    Auto,
    /// CPU RAPL through powercap sysfs only.
    Rapl,
    /// CPU RAPL through perf events only.
    Perf,
    /// NVIDIA GPUs through NVML only.
    Nvml,
    /// The utilisation × TDP estimate only.
    Estimate,
}

impl FromStr for MeterChoice {
    type Err = MeterError;
    fn from_str(s: &str) -> Result<Self, MeterError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(MeterChoice::Auto),
            "rapl" | "powercap" => Ok(MeterChoice::Rapl),
            "perf" => Ok(MeterChoice::Perf),
            "nvml" => Ok(MeterChoice::Nvml),
            "estimate" => Ok(MeterChoice::Estimate),
            other => Err(MeterError::InvalidConfig {
                what: "meter",
                reason: format!("unknown meter {other:?}; use auto, rapl, perf, nvml or estimate"),
            }),
        }
    }
}

impl std::fmt::Display for MeterChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MeterChoice::Auto => "auto",
            MeterChoice::Rapl => "rapl",
            MeterChoice::Perf => "perf",
            MeterChoice::Nvml => "nvml",
            MeterChoice::Estimate => "estimate",
        })
    }
}

/// Everything a `Tracker` needs to know about the machine; hardware roots are parameters so
/// tests and users can point them at other trees. The library reads no environment variables:
/// the binary passes `CUDA_VISIBLE_DEVICES` in here.
#[derive(Clone, Debug)]
pub struct MeterOptions {
    /// Root of the powercap tree (default `/sys/class/powercap`).
    pub powercap_root: PathBuf,
    /// The perf power PMU (default `/sys/bus/event_source/devices/power`).
    pub perf_root: PathBuf,
    /// Root of procfs, for the estimate and attribution (default `/proc`).
    pub proc_root: PathBuf,
    /// CPU power at full load for the estimate; `None` uses the built-in table.
    pub cpu_tdp_w: Option<Watts>,
    /// DRAM power per GiB in use, for the estimate.
    pub dram_w_per_gib: f64,
    /// Use RAPL's platform domain (psys) instead of package + DRAM when both exist.
    pub prefer_psys: bool,
    /// The most power one RAPL domain can plausibly draw; sets the poll period that keeps
    /// counter wraps from being missed, and the test for a counter reset.
    pub max_domain_power: Watts,
    /// Path of `libnvidia-ml.so`; `None` lets the loader find it.
    pub nvml_library: Option<PathBuf>,
    /// The value of `CUDA_VISIBLE_DEVICES`, if set, to restrict which GPUs are measured.
    pub cuda_visible_devices: Option<String>,
    /// The GPUs the work runs on, as CUDA indices among the visible ones (`cuda:1` → `[1]`);
    /// `None` measures every visible GPU.
    pub gpu_devices: Option<Vec<u32>>,
    /// Sampling interval of the background thread (also the CSV time-series step).
    pub interval: Duration,
    /// Keep every sample (for time series); off by default to keep memory flat.
    pub record_samples: bool,
    /// In `Auto` mode, whether to look for GPUs.
    pub gpus: bool,
    /// How long a counter may take to prove it moves before it is not used
    /// ([`select::DEFAULT_PROBE`]).
    pub probe: Duration,
    /// The process whose tree the attributed figures belong to; `None`: this process. Tests
    /// point it (with `proc_root`) at a fake tree.
    pub process: Option<u32>,
}

impl Default for MeterOptions {
    fn default() -> Self {
        MeterOptions {
            powercap_root: PathBuf::from("/sys/class/powercap"),
            perf_root: PathBuf::from("/sys/bus/event_source/devices/power"),
            proc_root: PathBuf::from("/proc"),
            cpu_tdp_w: None,
            dram_w_per_gib: estimate::DEFAULT_DRAM_W_PER_GIB,
            prefer_psys: false,
            max_domain_power: Watts(1000.0),
            nvml_library: None,
            cuda_visible_devices: None,
            gpu_devices: None,
            interval: Duration::from_millis(100),
            record_samples: false,
            gpus: true,
            probe: DEFAULT_PROBE,
            process: None,
        }
    }
}

impl MeterOptions {
    /// Checks ranges once, before any hardware is touched.
    pub fn validate(&self) -> Result<(), MeterError> {
        if let Some(tdp) = self.cpu_tdp_w {
            estimate::validate_tdp(tdp)?;
        }
        if self.interval < Duration::from_micros(100) || self.interval > Duration::from_secs(3600) {
            return Err(MeterError::InvalidConfig {
                what: "sampling interval",
                reason: format!(
                    "{:?}; pass between 0.1 ms and 1 h (e.g. --interval-ms 100)",
                    self.interval
                ),
            });
        }
        if !self.max_domain_power.0.is_finite() || self.max_domain_power.0 <= 0.0 {
            return Err(MeterError::InvalidConfig {
                what: "maximum domain power",
                reason: format!("{}; pass a positive number of watts", self.max_domain_power),
            });
        }
        if self.probe > Duration::from_secs(60) {
            return Err(MeterError::InvalidConfig {
                what: "probe time",
                reason: format!("{:?}; pass at most 60 s", self.probe),
            });
        }
        Ok(())
    }
}

/// Which of a measurement's two figures an analysis uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyBasis {
    /// The measured process tree's share (the default for studies and experiments: a
    /// neighbour's load does not land in it).
    #[default]
    Attributed,
    /// What the counters (or the machine-wide model) say for the whole machine.
    Machine,
}

impl std::fmt::Display for EnergyBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnergyBasis::Attributed => "attributed",
            EnergyBasis::Machine => "machine",
        })
    }
}

impl FromStr for EnergyBasis {
    type Err = MeterError;
    fn from_str(s: &str) -> Result<Self, MeterError> {
        match s {
            "attributed" => Ok(EnergyBasis::Attributed),
            "machine" => Ok(EnergyBasis::Machine),
            other => Err(MeterError::InvalidConfig {
                what: "energy basis",
                reason: format!("{other:?}; use attributed or machine"),
            }),
        }
    }
}

/// Identifies an open window; returned by `begin`, consumed by `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u64);

/// Energy of one domain over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEnergy {
    /// The domain's name (`cpu-package-0`, `dram-0`, `psys`, `gpu-0`).
    pub domain: String,
    /// Energy over the window (the machine figure); `None` when it is not known (see
    /// `unknown`).
    pub energy: Option<Joules>,
    /// How it was obtained (`estimated` where the estimate stood in for a counter).
    pub source: Source,
    /// Counter/sensor updates observed inside the window.
    pub updates: u64,
    /// Why `energy` is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// Why the estimate stands in for this domain's counter in this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled: Option<String>,
    /// This domain's energy attributed to the measured process tree; `None` when unknown.
    #[serde(default)]
    pub attributed: Option<Joules>,
}

/// How a window's attributed figure was obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// CPU time of the measured process tree inside the window.
    pub process_cpu: Seconds,
    /// Busy CPU time of the whole machine inside the window.
    pub machine_busy_cpu: Seconds,
    /// `process_cpu / machine_busy_cpu`, the share of CPU-side counters attributed.
    pub cpu_share: f64,
    /// How GPU energy was attributed (`nvml per-process utilisation`, or the whole device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Set when the process tree could not be read: the attributed figure is then the whole
    /// machine's, and this says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_machine: Option<String>,
}

/// What one window measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The window's name as passed to `begin`.
    pub name: String,
    /// Wall time between the two edges.
    pub duration: Seconds,
    /// The machine figure: sum over all domains (never sums nested domains: each reader
    /// reports disjoint ones); `None` when any domain is unknown (see `unknown`).
    pub total: Option<Joules>,
    /// Why `total` is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// The measured process tree's share of `total` ([`crate::process`]); `None` when unknown.
    #[serde(default)]
    pub attributed: Option<Joules>,
    /// How `attributed` was obtained, or why it could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// Per-domain energy.
    pub domains: Vec<DomainEnergy>,
    /// `total / duration`; `None` when the total is unknown or the window empty.
    pub average_power: Option<Watts>,
    /// Highest total power over the sampling intervals inside the window; `None` when the
    /// window held fewer than two intervals (then it would only repeat the average).
    pub peak_power: Option<Watts>,
    /// Anything that weakens the figures (short window, missed wrap risk, sampler errors,
    /// frozen or reset counters, energy shared with concurrent work).
    pub warnings: Vec<String>,
    /// The most threads that had windows open at the same time while this window was open
    /// (this window's thread included), counting only threads registered as lanes
    /// ([`Tracker::lane`]). 1: the window's energy is the counters' difference. Above 1: the
    /// counters are machine-wide and cannot tell concurrent work apart, so the energy of every
    /// interval was split equally among the lanes with open windows, and the figure is an
    /// attribution, not a reading.
    #[serde(default = "one")]
    pub concurrency: u32,
}

fn one() -> u32 {
    1
}

impl Measurement {
    /// The weakest source among the domains whose energy is known (`Estimated` <
    /// `IntegratedPower` < `Counter`); `Estimated` when none is. Use [`Measurement::provenance`]
    /// to tell "not measured" apart.
    pub fn source(&self) -> Source {
        self.domains
            .iter()
            .filter(|d| d.energy.is_some())
            .map(|d| d.source)
            .min()
            .unwrap_or(Source::Estimated)
    }

    /// What the total is: one source, mixed, or not measured.
    pub fn provenance(&self) -> Provenance {
        if self.total.is_none() {
            return Provenance::NotMeasured;
        }
        Provenance::of(self.domains.iter().map(|d| d.energy.map(|_| d.source)))
    }

    /// The figure an analysis on `basis` uses.
    pub fn figure(&self, basis: EnergyBasis) -> Option<Joules> {
        match basis {
            EnergyBasis::Attributed => self.attributed,
            EnergyBasis::Machine => self.total,
        }
    }

    /// Energy above an idle baseline: `total − idle × duration`, floored at zero; `None` when
    /// the total is unknown.
    pub fn net(&self, idle: Watts) -> Option<Joules> {
        self.total
            .map(|t| Joules((t - idle * self.duration).0.max(0.0)))
    }

    /// Energy of the domains whose names satisfy `pred`; `None` when one of them is unknown.
    pub fn energy_where(&self, pred: impl Fn(&str) -> bool) -> Option<Joules> {
        self.domains
            .iter()
            .filter(|d| pred(&d.domain))
            .map(|d| d.energy)
            .sum()
    }
}

/// One sample of the time series: cumulative energy per domain since the tracker started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Time since the tracker started.
    pub at: Seconds,
    /// Cumulative energy per domain, parallel to `Tracker::describe()`.
    pub energy: Vec<Joules>,
}

#[derive(Clone, Debug)]
struct Snapshot {
    at: Duration,
    /// Per domain, then the shadow estimate's CPU and DRAM terms when there is one.
    energy: Vec<Joules>,
    updates: Vec<u64>,
}

/// A stretch of time in which a domain's energy is unknown.
#[derive(Clone, Debug)]
struct Span {
    from: Duration,
    /// `None`: still going on.
    to: Option<Duration>,
    why: String,
}

/// Per domain: what the tracker watches to know whether its counter still moves.
#[derive(Clone, Debug)]
struct Health {
    source: Source,
    stall_after: Option<Duration>,
    updates: u64,
    gaps: u64,
    last_change: Duration,
    spans: Vec<Span>,
}

impl Health {
    /// Why `[from, to]` is unknown for this domain, if it is.
    fn unknown_in(&self, from: Duration, to: Duration) -> Option<String> {
        self.spans
            .iter()
            .find(|s| s.from < to && s.to.is_none_or(|end| end > from))
            .map(|s| s.why.clone())
    }
}

/// The most spans kept per domain; older ones are merged into one.
const MAX_SPANS: usize = 1024;

struct Window {
    name: String,
    start: Snapshot,
    /// The thread that opened the window, when that thread is a registered lane.
    lane: Option<ThreadId>,
    /// `Inner::shared` when the window opened.
    shared_start: Vec<Joules>,
    /// Most lanes open at once while this window was open.
    concurrency: usize,
    peak: Option<Watts>,
    intervals: u64,
    flags_at_start: usize,
    process: Option<ProcessSample>,
    unix_start_us: u64,
}

impl Window {
    /// Whether the window shared the meters with other lanes (its energy is a share).
    fn shared(&self) -> bool {
        self.lane.is_some() && self.concurrency > 1
    }
}

struct Inner {
    meters: Vec<Box<dyn Meter>>,
    /// The estimate that stands in for a CPU-side counter that is unknown in a window.
    shadow: Option<EstimateMeter>,
    health: Vec<Health>,
    last: Option<Snapshot>,
    windows: BTreeMap<u64, Window>,
    next_id: u64,
    samples: Vec<Sample>,
    record_samples: bool,
    flags: Vec<String>,
    /// Per domain (and shadow term), the energy since the start with every interval divided by
    /// the number of threads that had windows open during it: a window's share is the
    /// difference of this between its edges.
    shared: Vec<Joules>,
    /// Threads registered as lanes by [`Tracker::lane`], with their registration counts.
    lane_threads: Vec<(ThreadId, usize)>,
}

impl Inner {
    /// Lanes (registered threads) with at least one open window.
    fn lanes(&self) -> usize {
        let mut lanes: Vec<ThreadId> = Vec::new();
        for lane in self.windows.values().filter_map(|w| w.lane) {
            if !lanes.contains(&lane) {
                lanes.push(lane);
            }
        }
        lanes.len()
    }

    fn is_lane(&self, thread: ThreadId) -> bool {
        self.lane_threads.iter().any(|(t, _)| *t == thread)
    }
}

/// Keeps the current thread registered as a lane of a [`Tracker`]; see [`Tracker::lane`].
#[must_use = "the thread is a lane only while the guard lives"]
pub struct LaneGuard<'a> {
    tracker: &'a Tracker,
    thread: ThreadId,
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        let mut inner = self.tracker.lock();
        if let Some(i) = inner
            .lane_threads
            .iter()
            .position(|(t, _)| *t == self.thread)
        {
            inner.lane_threads[i].1 -= 1;
            if inner.lane_threads[i].1 == 0 {
                inner.lane_threads.swap_remove(i);
            }
        }
    }
}

struct Shared {
    inner: Mutex<Inner>,
    origin: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Owns the meters and one sampler thread (when a meter needs polling or a counter is
/// watched for freezing).
///
/// `Tracker` is `Send + Sync`: windows may be begun and ended from any thread (they nest and
/// may overlap). Each edge reads every meter once under a lock, so an edge costs the sum of
/// the readers' read times (tens of microseconds for sysfs counters) plus a procfs read of the
/// process tree for attribution.
pub struct Tracker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    interval: Option<Duration>,
    sync: Option<Box<dyn Fn() + Send + Sync>>,
    described: Vec<(Domain, Source)>,
    resolution: Vec<Duration>,
    notes: Vec<String>,
    process: Option<ProcessTree>,
    /// The model behind estimated CPU-side figures (the estimate meter's or the shadow's).
    model: Option<EstimateModel>,
}

impl Tracker {
    /// Builds the meters for `choice` (every counter proves it moves first: see
    /// [`select`](crate::select)), reads them once, and starts the sampler. In `Auto` mode every
    /// source that cannot be used is recorded in `notes()`; forced choices return their error
    /// (`Unsupported` with the fix when unavailable, `NotMoving` when they do not move).
    pub fn new(choice: MeterChoice, options: &MeterOptions) -> Result<Tracker, MeterError> {
        Tracker::with_backends(choice, options, &select::Backends::default())
    }

    /// As [`Tracker::new`], with the hardware behind perf and NVML given (fakes in tests).
    pub fn with_backends(
        choice: MeterChoice,
        options: &MeterOptions,
        backends: &select::Backends,
    ) -> Result<Tracker, MeterError> {
        let selection = select::select_with(choice, options, backends)?;
        let mut tracker = Tracker::from_meters(selection.meters, options)?;
        let mut notes = selection.notes;
        notes.append(&mut tracker.notes);
        tracker.notes = notes;
        Ok(tracker)
    }

    /// A tracker on the estimate alone, which works on any Linux machine. Never fails: if
    /// even `/proc` cannot be read, it tracks nothing and says so in `notes()` (and every
    /// window's energy is unknown).
    pub fn estimate_only() -> Tracker {
        let options = MeterOptions::default();
        let built = select::estimate(&options).and_then(|m| {
            let note = select::estimate_note(&m);
            Tracker::from_meters(vec![Box::new(m)], &options).map(|mut t| {
                t.notes.insert(0, note);
                t
            })
        });
        match built {
            Ok(t) => t,
            Err(e) => {
                let mut t = Tracker::empty(&options);
                t.notes.push(format!("no energy can be measured: {e}"));
                t
            }
        }
    }

    fn empty(options: &MeterOptions) -> Tracker {
        Tracker {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    meters: Vec::new(),
                    shadow: None,
                    health: Vec::new(),
                    last: None,
                    windows: BTreeMap::new(),
                    next_id: 0,
                    samples: Vec::new(),
                    record_samples: options.record_samples,
                    flags: Vec::new(),
                    shared: Vec::new(),
                    lane_threads: Vec::new(),
                }),
                origin: Instant::now(),
                stop: Mutex::new(false),
                wake: Condvar::new(),
            }),
            thread: None,
            interval: None,
            sync: None,
            described: Vec::new(),
            resolution: Vec::new(),
            notes: Vec::new(),
            process: None,
            model: None,
        }
    }

    /// A tracker over meters built by the caller (fakes in tests, custom readers). Nothing is
    /// probed here: [`Tracker::new`] probes. A shadow estimate is kept for CPU-side counters
    /// when `options.proc_root` can be read.
    pub fn from_meters(
        meters: Vec<Box<dyn Meter>>,
        options: &MeterOptions,
    ) -> Result<Tracker, MeterError> {
        options.validate()?;
        let mut tracker = Tracker::empty(options);
        let mut resolution = Vec::new();
        let mut poll: Option<Duration> = None;
        let mut watched = false;
        let mut has_estimate = false;
        let mut cpu_counter = false;
        for m in &meters {
            for _ in m.domains() {
                resolution.push(m.resolution());
            }
            if let Some(p) = m.poll_interval() {
                let p = p.min(options.interval);
                poll = Some(poll.map_or(p, |q| q.min(p)));
            }
            watched |= m.stall_after().is_some();
            has_estimate |= m.name() == "estimate";
            cpu_counter |= m.name() != "estimate" && m.domains().iter().any(Domain::is_cpu_side);
        }
        // A counter that may freeze is watched between edges too, at the sampling interval.
        if watched {
            poll = Some(poll.map_or(options.interval, |q| q.min(options.interval)));
        }
        let poll = poll.map(|p| p.max(Duration::from_micros(100)));
        let shadow = if cpu_counter {
            match select::estimate(options) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracker.notes.push(format!(
                        "no estimate can stand in for a cpu counter that freezes or resets \
                         ({e}): such windows will have no cpu energy"
                    ));
                    None
                }
            }
        } else {
            None
        };
        tracker.model = if has_estimate {
            select::estimate(options).ok().map(|m| m.model())
        } else {
            shadow.as_ref().map(EstimateMeter::model)
        };
        let pid = options.process.unwrap_or_else(std::process::id);
        let tree = ProcessTree::new(&options.proc_root, pid);
        tracker.process = match tree.sample() {
            Ok(_) => Some(tree),
            Err(e) => {
                tracker.notes.push(format!(
                    "energy cannot be attributed to this process ({e}): the attributed figures \
                     are the whole machine's"
                ));
                None
            }
        };
        let described = {
            let mut inner = tracker.lock();
            inner.meters = meters;
            inner.shadow = shadow;
            let first = Self::read_all(&mut inner)?;
            inner.health = first
                .iter()
                .zip(Self::stall_limits(&inner))
                .map(|((_, source, gaps), stall_after)| Health {
                    source: *source,
                    stall_after,
                    updates: 0,
                    gaps: *gaps,
                    last_change: Duration::ZERO,
                    spans: Vec::new(),
                })
                .collect();
            Self::sample_locked(&tracker.shared, &mut inner)?;
            let at = tracker.shared.origin.elapsed();
            for h in &mut inner.health {
                h.last_change = at;
            }
            first.into_iter().map(|(d, s, _)| (d, s)).collect()
        };
        tracker.described = described;
        tracker.resolution = resolution;
        tracker.interval = poll;
        if let Some(interval) = poll {
            let shared = Arc::clone(&tracker.shared);
            let handle = std::thread::Builder::new()
                .name("greenlab-meter-sampler".into())
                .spawn(move || sampler_loop(shared, interval))
                .map_err(|e| MeterError::io("<sampler thread>", e))?;
            tracker.thread = Some(handle);
        }
        Ok(tracker)
    }

    fn stall_limits(inner: &Inner) -> Vec<Option<Duration>> {
        let mut out = Vec::new();
        for m in &inner.meters {
            for _ in m.domains() {
                out.push(m.stall_after());
            }
        }
        out
    }

    /// Installs a function called at both edges of every window, before the counters are read
    /// (e.g. a CUDA device synchronise, so queued GPU work lands in the right window).
    pub fn set_sync(&mut self, sync: Box<dyn Fn() + Send + Sync>) {
        self.sync = Some(sync);
    }

    /// Registers the current thread as a *lane* while the guard lives: one of several threads
    /// doing separate work at the same time (e.g. the workers of a tuning study), whose windows
    /// must not each claim the whole machine's energy.
    ///
    /// The counters are machine-wide, so while windows of `k` lanes are open, each interval's
    /// energy is split equally among those `k` lanes; a window opened on a lane reports its
    /// share, which sums over lanes to the energy measured (nothing counted twice), and says so
    /// in [`Measurement::concurrency`] and a warning. Its attributed figure is the process
    /// tree's attributed energy split in the same proportion. Windows opened on threads that
    /// are not lanes (e.g. one enclosing the whole run) are unaffected: they report the
    /// counters' difference. A thread that is the only active lane gets exactly that
    /// difference too.
    pub fn lane(&self) -> LaneGuard<'_> {
        let thread = std::thread::current().id();
        let mut inner = self.lock();
        match inner.lane_threads.iter_mut().find(|(t, _)| *t == thread) {
            Some((_, n)) => *n += 1,
            None => inner.lane_threads.push((thread, 1)),
        }
        LaneGuard {
            tracker: self,
            thread,
        }
    }

    /// Opens a window. Windows nest and may overlap; end each exactly once.
    pub fn begin(&self, name: &str) -> Result<WindowId, MeterError> {
        if let Some(sync) = &self.sync {
            sync();
        }
        let process = self.process.as_ref().and_then(|p| p.sample().ok());
        let mut inner = self.lock();
        let start = Self::sample_locked(&self.shared, &mut inner)?;
        let id = inner.next_id;
        inner.next_id += 1;
        let flags_at_start = inner.flags.len();
        let thread = std::thread::current().id();
        let lane = inner.is_lane(thread).then_some(thread);
        // Only a lane's window can end up sharing, so only it needs the shared account.
        let shared_start = match lane {
            Some(_) => inner.shared.clone(),
            None => Vec::new(),
        };
        inner.windows.insert(
            id,
            Window {
                name: name.to_owned(),
                start,
                lane,
                shared_start,
                concurrency: 1,
                peak: None,
                intervals: 0,
                flags_at_start,
                process,
                unix_start_us: unix_now_us(),
            },
        );
        let lanes = inner.lanes();
        for w in inner.windows.values_mut().filter(|w| w.lane.is_some()) {
            w.concurrency = w.concurrency.max(lanes);
        }
        Ok(WindowId(id))
    }

    /// Closes a window and returns what it measured.
    pub fn end(&self, id: WindowId) -> Result<Measurement, MeterError> {
        if let Some(sync) = &self.sync {
            sync();
        }
        let process_end = self.process.as_ref().and_then(|p| p.sample().ok());
        let mut inner = self.lock();
        if !inner.windows.contains_key(&id.0) {
            return Err(MeterError::UnknownWindow(id.0));
        }
        let end = Self::sample_locked(&self.shared, &mut inner);
        let window = inner
            .windows
            .remove(&id.0)
            .ok_or(MeterError::UnknownWindow(id.0))?;
        let end = end?;
        let flags = inner.flags[window.flags_at_start.min(inner.flags.len())..].to_vec();
        // Only a window that shared the meters with other lanes needs the shared account.
        let shared_end = window.shared().then(|| inner.shared.clone());
        let unknown: Vec<Option<String>> = inner
            .health
            .iter()
            .map(|h| h.unknown_in(window.start.at, end.at))
            .collect();
        // Per-process GPU shares, asked of the meters while the lock is held.
        let gpu_shares = match (&process_end, &window.process) {
            (Some(p), Some(_)) => Self::gpu_shares(&mut inner, &p.pids, window.unix_start_us),
            _ => Vec::new(),
        };
        drop(inner);
        Ok(self.measurement(
            window,
            &end,
            Edges {
                shared_end: shared_end.as_deref(),
                flags,
                unknown,
                process_end,
                gpu_shares,
            },
        ))
    }

    /// Runs `f` inside a window named `name`.
    pub fn measure<T>(
        &self,
        name: &str,
        f: impl FnOnce() -> T,
    ) -> Result<(T, Measurement), MeterError> {
        let id = self.begin(name)?;
        let value = f();
        let m = self.end(id)?;
        Ok((value, m))
    }

    /// Each domain and where its numbers come from, in the order used by `Sample::energy`.
    pub fn describe(&self) -> Vec<(Domain, Source)> {
        self.described.clone()
    }

    /// Why sources were skipped or what they assume (explicit fallbacks in `Auto` mode).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// What the tracker's figures are: the source of its domains, or not measured when it has
    /// none.
    pub fn provenance(&self) -> Provenance {
        Provenance::of(self.described.iter().map(|(_, s)| Some(*s)))
    }

    /// The sampler thread's period, or `None` when no meter needs polling (no thread runs).
    pub fn sampler_interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Reads every meter now (as the sampler does). Useful before a known large change.
    pub fn poll_now(&self) -> Result<(), MeterError> {
        let mut inner = self.lock();
        Self::sample_locked(&self.shared, &mut inner).map(|_| ())
    }

    /// Time since the tracker was created: the time base of `Sample::at`.
    pub fn elapsed(&self) -> Seconds {
        Seconds::from(self.shared.origin.elapsed())
    }

    /// The recorded time series (empty unless `MeterOptions::record_samples`).
    pub fn samples(&self) -> Vec<Sample> {
        self.lock().samples.clone()
    }

    /// Measures idle power for `duration` (sleeping the calling thread) and returns the total;
    /// `None` when the energy of that time is unknown.
    pub fn idle_baseline(&self, duration: Duration) -> Result<Option<Watts>, MeterError> {
        let id = self.begin("idle-baseline")?;
        std::thread::sleep(duration);
        let m = self.end(id)?;
        Ok(m.average_power)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only plain numbers behind: keep going.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_all(inner: &mut Inner) -> Result<Vec<(Domain, Source, u64)>, MeterError> {
        let mut out = Vec::new();
        for m in inner.meters.iter_mut() {
            let r = m.read()?;
            for (d, dr) in m.domains().iter().zip(&r.domains) {
                out.push((*d, dr.source, dr.gaps));
            }
        }
        Ok(out)
    }

    fn gpu_shares(inner: &mut Inner, pids: &[u32], since_us: u64) -> Vec<Option<f64>> {
        let mut out = Vec::new();
        for m in inner.meters.iter_mut() {
            for i in 0..m.domains().len() {
                let share = if m.domains()[i].is_cpu_side() {
                    None
                } else {
                    m.process_share(i, pids, since_us)
                };
                out.push(share);
            }
        }
        out
    }

    /// Reads all meters (and the shadow estimate), watches the counters for resets and
    /// freezes, updates open windows' peak power, records the sample.
    fn sample_locked(shared: &Shared, inner: &mut Inner) -> Result<Snapshot, MeterError> {
        let mut energy = Vec::new();
        let mut updates = Vec::new();
        let mut gaps = Vec::new();
        let mut flags = Vec::new();
        for m in inner.meters.iter_mut() {
            let r = m.read()?;
            for d in &r.domains {
                energy.push(d.energy);
                updates.push(d.updates);
                gaps.push(d.gaps);
            }
            flags.extend(r.warnings);
        }
        let domains = energy.len();
        if let Some(shadow) = inner.shadow.as_mut() {
            match shadow.read() {
                Ok(r) => {
                    energy.extend(r.domains.iter().map(|d| d.energy));
                }
                Err(e) => {
                    flags.push(format!("the stand-in estimate could not be read: {e}"));
                    inner.shadow = None;
                }
            }
        }
        let at = shared.origin.elapsed();
        let previous_at = inner.last.as_ref().map_or(at, |l| l.at);
        let names: Vec<String> = inner
            .meters
            .iter()
            .flat_map(|m| {
                m.domains()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        for (i, h) in inner.health.iter_mut().enumerate().take(domains) {
            let name = names.get(i).cloned().unwrap_or_default();
            if gaps[i] > h.gaps {
                h.gaps = gaps[i];
                push_span(
                    &mut h.spans,
                    Span {
                        from: previous_at,
                        to: Some(at),
                        why: format!(
                            "{name}: the counter was reset (went backwards) at {:.3} s; its \
                             energy between two reads is unknown",
                            at.as_secs_f64()
                        ),
                    },
                );
            }
            if updates[i] != h.updates {
                h.updates = updates[i];
                h.last_change = at;
                if let Some(open) = h.spans.iter_mut().rev().find(|s| s.to.is_none()) {
                    open.to = Some(at);
                    flags.push(format!(
                        "{name}: the counter moves again at {:.3} s",
                        at.as_secs_f64()
                    ));
                }
            } else if h.source == Source::Counter
                && let Some(limit) = h.stall_after
                && at.saturating_sub(h.last_change) > limit
                && !h.spans.iter().any(|s| s.to.is_none())
            {
                let from = h.last_change;
                flags.push(format!(
                    "{name}: the counter stopped moving at {:.3} s (no change for {:.1} s): \
                     its energy from then on is not measured",
                    from.as_secs_f64(),
                    at.saturating_sub(from).as_secs_f64()
                ));
                push_span(
                    &mut h.spans,
                    Span {
                        from,
                        to: None,
                        why: format!(
                            "{name}: the counter froze at {:.3} s (no change for more than \
                             {:.1} s)",
                            from.as_secs_f64(),
                            limit.as_secs_f64()
                        ),
                    },
                );
            }
        }
        for f in flags {
            if inner.flags.last() != Some(&f) {
                inner.flags.push(f);
            }
        }
        let snap = Snapshot {
            at,
            energy,
            updates,
        };
        if inner.shared.len() != snap.energy.len() {
            inner.shared = vec![Joules(0.0); snap.energy.len()];
        }
        let lanes = inner.lanes();
        if lanes > 0 {
            let Inner { shared, last, .. } = &mut *inner;
            if let Some(last) = last {
                for (acc, (a, b)) in shared.iter_mut().zip(snap.energy.iter().zip(&last.energy)) {
                    *acc += Joules((*a - *b).0 / lanes as f64);
                }
            }
        }
        if let Some(last) = &inner.last {
            let dt = snap.at.saturating_sub(last.at).as_secs_f64();
            if dt > 0.0 {
                let de: Joules = snap
                    .energy
                    .iter()
                    .zip(&last.energy)
                    .take(domains)
                    .map(|(a, b)| *a - *b)
                    .sum();
                let p = Watts(de.0 / dt);
                for w in inner.windows.values_mut() {
                    w.peak = Some(w.peak.map_or(p, |q| q.max(p)));
                    w.intervals += 1;
                }
            }
        }
        if inner.record_samples {
            inner.samples.push(Sample {
                at: Seconds::from(snap.at),
                energy: snap.energy[..domains].to_vec(),
            });
        }
        inner.last = Some(snap.clone());
        Ok(snap)
    }

    fn measurement(&self, w: Window, end: &Snapshot, edges: Edges<'_>) -> Measurement {
        let duration = Seconds::from(end.at.saturating_sub(w.start.at));
        let n = self.described.len();
        let mut warnings = edges.flags;
        if edges.shared_end.is_some() {
            warnings.push(format!(
                "up to {} threads measured windows at the same time: the counters are \
                 machine-wide, so each interval's energy was split equally among them \
                 (an attribution, not a reading)",
                w.concurrency
            ));
        }
        let (to, from) = match edges.shared_end {
            Some(shared_end) => (shared_end, w.shared_start.as_slice()),
            None => (end.energy.as_slice(), w.start.energy.as_slice()),
        };
        let delta = |i: usize| -> Joules {
            to.get(i).copied().unwrap_or_default() - from.get(i).copied().unwrap_or_default()
        };
        let machine_delta = |i: usize| -> Joules {
            end.energy.get(i).copied().unwrap_or_default()
                - w.start.energy.get(i).copied().unwrap_or_default()
        };
        let mut domains = Vec::with_capacity(n);
        for (i, (domain, source)) in self.described.iter().enumerate() {
            let updates = end
                .updates
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(w.start.updates.get(i).copied().unwrap_or(0));
            let resolution = self.resolution.get(i).copied().unwrap_or_default();
            let mut unknown = edges.unknown.get(i).cloned().flatten();
            if unknown.is_none() && *source == Source::Counter && updates == 0 && duration.0 > 0.0 {
                unknown = Some(if duration.as_duration() < resolution {
                    format!(
                        "{domain}: window of {:.3} ms is shorter than the sensor resolution \
                         ({:.3} ms) and saw no counter update",
                        duration.0 * 1e3,
                        resolution.as_secs_f64() * 1e3
                    )
                } else {
                    format!(
                        "{domain}: no counter update inside the window ({:.3} s)",
                        duration.0
                    )
                });
            } else if duration.as_duration() < resolution && duration.0 > 0.0 {
                warnings.push(format!(
                    "{domain}: window of {:.3} ms is shorter than the sensor resolution ({:.3} ms); \
                     its energy is coarse",
                    duration.0 * 1e3,
                    resolution.as_secs_f64() * 1e3
                ));
            }
            domains.push(DomainEnergy {
                domain: domain.to_string(),
                energy: if unknown.is_some() {
                    None
                } else {
                    Some(delta(i))
                },
                source: *source,
                updates,
                unknown,
                filled: None,
                attributed: None,
            });
        }
        // The estimate stands in for the whole CPU side when a CPU-side counter is unknown.
        let shadow = (end.energy.len() >= n + 2).then(|| (delta(n), delta(n + 1)));
        let cpu_unknown = domains
            .iter()
            .zip(&self.described)
            .find(|(d, (domain, _))| domain.is_cpu_side() && d.energy.is_none())
            .and_then(|(d, _)| d.unknown.clone());
        if let (Some(why), Some((cpu, dram))) = (cpu_unknown, shadow) {
            let count = |kind: DomainKind| {
                self.described
                    .iter()
                    .filter(|(d, _)| d.kind == kind)
                    .count()
                    .max(1) as f64
            };
            let packages = count(DomainKind::CpuPackage);
            let drams = count(DomainKind::Dram);
            let psys = count(DomainKind::Psys);
            for (d, (domain, _)) in domains.iter_mut().zip(&self.described) {
                let energy = match domain.kind {
                    DomainKind::CpuPackage => cpu / packages,
                    DomainKind::Dram => dram / drams,
                    DomainKind::Psys => (cpu + dram) / psys,
                    _ => continue,
                };
                d.energy = Some(energy);
                d.source = Source::Estimated;
                d.filled = Some(format!("estimated in place of the counter: {why}"));
                d.unknown = None;
            }
            warnings.push(format!(
                "cpu-side energy of this window is estimated (utilisation × TDP) in place of \
                 the counters: {why}"
            ));
        }
        let total: Option<Joules> = domains.iter().map(|d| d.energy).sum();
        let unknown = domains.iter().find_map(|d| d.unknown.clone());
        if self.described.is_empty() {
            warnings.push("no meter is available: energy is unknown".into());
        }
        let total = if self.described.is_empty() {
            None
        } else {
            total
        };
        let attribution = self.attribute(
            &w,
            &mut domains,
            duration,
            edges.process_end.as_ref(),
            &edges.gpu_shares,
            &machine_delta,
            edges.shared_end.is_some(),
        );
        let attributed: Option<Joules> = if self.described.is_empty() {
            None
        } else {
            domains.iter().map(|d| d.attributed).sum()
        };
        Measurement {
            name: w.name,
            duration,
            total,
            unknown: unknown.or_else(|| {
                self.described
                    .is_empty()
                    .then(|| "no meter is available".to_owned())
            }),
            attributed,
            attribution,
            domains,
            average_power: total.and_then(|t| t.per(duration)),
            peak_power: if w.intervals >= 2 { w.peak } else { None },
            warnings,
            concurrency: u32::try_from(w.concurrency).unwrap_or(u32::MAX),
        }
    }

    /// Fills each domain's attributed figure; returns how (or `None` when the process tree
    /// could not be read at both edges).
    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &self,
        w: &Window,
        domains: &mut [DomainEnergy],
        duration: Seconds,
        process_end: Option<&ProcessSample>,
        gpu_shares: &[Option<f64>],
        machine_delta: &dyn Fn(usize) -> Joules,
        lane: bool,
    ) -> Option<Attribution> {
        let (Some(start), Some(end)) = (w.process.as_ref(), process_end) else {
            // Without the process tree the machine figure is all there is: use it, and say so
            // (an unknown share must not make a measured window unknown).
            for d in domains.iter_mut() {
                d.attributed = d.energy;
            }
            return Some(Attribution {
                process_cpu: Seconds(0.0),
                machine_busy_cpu: Seconds(0.0),
                cpu_share: 1.0,
                gpu: None,
                whole_machine: Some(
                    "the process tree could not be read from procfs: attributed = machine".into(),
                ),
            });
        };
        let share = cpu_share(start, end);
        let process_cpu = Seconds((end.tree_cpu.0 - start.tree_cpu.0).max(0.0));
        let rss = 0.5 * (start.tree_rss_gib + end.tree_rss_gib);
        let count = |kind: DomainKind| {
            self.described
                .iter()
                .filter(|(d, _)| d.kind == kind)
                .count()
                .max(1) as f64
        };
        let mut gpu_basis: Option<String> = None;
        for (i, (d, (domain, _))) in domains.iter_mut().zip(&self.described).enumerate() {
            let Some(energy) = d.energy else {
                continue;
            };
            // A lane's window holds its equal share of each interval: its attributed figure is
            // the process's in the same proportion.
            let machine = machine_delta(i);
            let fraction = if lane && machine.0 > 0.0 {
                (energy.0 / machine.0).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let process_level = if domain.is_cpu_side() {
                match (d.source, self.model) {
                    (Source::Estimated, Some(model)) => match domain.kind {
                        DomainKind::CpuPackage => {
                            model.per_cpu * process_cpu / count(DomainKind::CpuPackage)
                        }
                        DomainKind::Dram => {
                            Joules(model.dram_w_per_gib * rss * duration.0)
                                / count(DomainKind::Dram)
                        }
                        _ => {
                            (model.per_cpu * process_cpu
                                + Joules(model.dram_w_per_gib * rss * duration.0))
                                / count(DomainKind::Psys)
                        }
                    },
                    _ => machine * share,
                }
            } else {
                match gpu_shares.get(i).copied().flatten() {
                    Some(s) => {
                        gpu_basis.get_or_insert_with(|| "nvml per-process utilisation".into());
                        machine * s
                    }
                    None => {
                        gpu_basis = Some(
                            "whole device (nvml reports no per-process utilisation for this \
                             process here)"
                                .into(),
                        );
                        machine
                    }
                }
            };
            let attributed = if lane {
                process_level * fraction
            } else {
                process_level
            };
            // The attributed share can never exceed what the window measured.
            d.attributed = Some(Joules(attributed.0.min(energy.0).max(0.0)));
        }
        Some(Attribution {
            process_cpu,
            machine_busy_cpu: Seconds((end.machine_busy.0 - start.machine_busy.0).max(0.0)),
            cpu_share: share,
            gpu: gpu_basis,
            whole_machine: None,
        })
    }
}

/// What `end` gathered for `measurement`.
struct Edges<'a> {
    shared_end: Option<&'a [Joules]>,
    flags: Vec<String>,
    unknown: Vec<Option<String>>,
    process_end: Option<ProcessSample>,
    gpu_shares: Vec<Option<f64>>,
}

fn push_span(spans: &mut Vec<Span>, span: Span) {
    if spans.len() >= MAX_SPANS {
        // Merge the two oldest: windows that old are long closed.
        let second = spans.remove(1);
        spans[0].to = second.to;
    }
    spans.push(span);
}

fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(handle) = self.thread.take() {
            *self
                .shared
                .stop
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
            self.shared.wake.notify_all();
            // The sampler only reads meters; a panic there must not propagate into a drop.
            let _ = handle.join();
        }
    }
}

fn sampler_loop(shared: Arc<Shared>, interval: Duration) {
    let mut next = Instant::now() + interval;
    loop {
        {
            let mut stop = shared
                .stop
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                if *stop {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stop = shared
                    .wake
                    .wait_timeout(stop, next - now)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        }
        {
            let mut inner = shared
                .inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(e) = Tracker::sample_locked(&shared, &mut inner) {
                let flag = format!(
                    "sampler read failed at {:.3} s: {e}",
                    shared.origin.elapsed().as_secs_f64()
                );
                if inner.flags.last() != Some(&flag) {
                    inner.flags.push(flag);
                }
            }
        }
        next += interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (machine overloaded): skip missed ticks rather than bursting.
            next = now + interval;
        }
    }
}
