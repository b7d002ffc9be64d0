//! The `Tracker`: owns the meters, samples them where they need polling, and turns pairs of
//! readings into named, nestable `Measurement`s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::MeterError;
use crate::estimate::{self, EstimateMeter};
use crate::meter::{Domain, DomainKind, Meter};
use crate::nvml::NvmlMeter;
use crate::perf::PerfMeter;
use crate::powercap::{PowercapMeter, PowercapOptions};
use crate::units::{Joules, Seconds, Source, Watts};

/// Which reader(s) to use. `FromStr` accepts `auto|rapl|perf|nvml|estimate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterChoice {
    /// The best available source per domain: CPU from powercap, else perf events, else the
    /// estimate; GPUs from NVML when present. Each fallback is recorded in `Tracker::notes`.
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
    /// Root of procfs, for the estimate (default `/proc`).
    pub proc_root: PathBuf,
    /// CPU power at full load for the estimate; `None` uses the built-in table.
    pub cpu_tdp_w: Option<Watts>,
    /// DRAM power per GiB in use, for the estimate.
    pub dram_w_per_gib: f64,
    /// Use RAPL's platform domain (psys) instead of package + DRAM when both exist.
    pub prefer_psys: bool,
    /// The most power one RAPL domain can plausibly draw; sets the poll period that keeps
    /// counter wraps from being missed, and the test for a counter going backwards.
    pub max_domain_power: Watts,
    /// Path of `libnvidia-ml.so`; `None` lets the loader find it.
    pub nvml_library: Option<PathBuf>,
    /// The value of `CUDA_VISIBLE_DEVICES`, if set, to restrict which GPUs are measured.
    pub cuda_visible_devices: Option<String>,
    /// Sampling interval of the background thread (also the CSV time-series step).
    pub interval: Duration,
    /// Keep every sample (for time series); off by default to keep memory flat.
    pub record_samples: bool,
    /// In `Auto` mode, whether to look for GPUs.
    pub gpus: bool,
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
            interval: Duration::from_millis(100),
            record_samples: false,
            gpus: true,
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
        Ok(())
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
    /// Energy over the window.
    pub energy: Joules,
    /// How it was obtained.
    pub source: Source,
    /// Counter/sensor updates observed inside the window.
    pub updates: u64,
}

/// What one window measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The window's name as passed to `begin`.
    pub name: String,
    /// Wall time between the two edges.
    pub duration: Seconds,
    /// Sum over all domains (never sums nested domains: each reader reports disjoint ones).
    pub total: Joules,
    /// Per-domain energy.
    pub domains: Vec<DomainEnergy>,
    /// `total / duration` (zero for an empty window).
    pub average_power: Watts,
    /// Highest total power over the sampling intervals inside the window; `None` when the
    /// window held fewer than two intervals (then it would only repeat the average).
    pub peak_power: Option<Watts>,
    /// Anything that weakens the figures (short window, missed wrap risk, sampler errors,
    /// energy shared with concurrent work).
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
    /// The weakest source among the domains (`Estimated` < `IntegratedPower` < `Counter`).
    pub fn source(&self) -> Source {
        self.domains
            .iter()
            .map(|d| d.source)
            .min()
            .unwrap_or(Source::Estimated)
    }

    /// Energy above an idle baseline: `total − idle × duration`, floored at zero.
    pub fn net(&self, idle: Watts) -> Joules {
        Joules((self.total - idle * self.duration).0.max(0.0))
    }

    /// Energy of the domains of one kind side: CPU side (package, DRAM, psys) or GPUs.
    pub fn energy_where(&self, pred: impl Fn(&str) -> bool) -> Joules {
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
    energy: Vec<Joules>,
    updates: Vec<u64>,
}

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
}

impl Window {
    /// Whether the window shared the meters with other lanes (its energy is a share).
    fn shared(&self) -> bool {
        self.lane.is_some() && self.concurrency > 1
    }
}

struct Inner {
    meters: Vec<Box<dyn Meter>>,
    last: Option<Snapshot>,
    windows: BTreeMap<u64, Window>,
    next_id: u64,
    samples: Vec<Sample>,
    record_samples: bool,
    flags: Vec<String>,
    /// Per domain, the energy since the start with every interval divided by the number of
    /// threads that had windows open during it: a window's share is the difference of this
    /// between its edges.
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

/// Owns the meters and, only when one of them needs polling, one sampler thread.
///
/// `Tracker` is `Send + Sync`: windows may be begun and ended from any thread (they nest and
/// may overlap). Each edge reads every meter once under a lock, so an edge costs the sum of
/// the readers' read times (tens of microseconds for sysfs counters).
pub struct Tracker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    interval: Option<Duration>,
    sync: Option<Box<dyn Fn() + Send + Sync>>,
    described: Vec<(Domain, Source)>,
    resolution: Vec<Duration>,
    notes: Vec<String>,
}

impl Tracker {
    /// Builds the meters for `choice`, reads them once, and starts the sampler if needed.
    /// In `Auto` mode every source that cannot be used is recorded in `notes()`; forced
    /// choices return their error (`Unsupported` with the fix when unavailable).
    pub fn new(choice: MeterChoice, options: &MeterOptions) -> Result<Tracker, MeterError> {
        options.validate()?;
        let mut notes = Vec::new();
        let mut meters: Vec<Box<dyn Meter>> = Vec::new();
        match choice {
            MeterChoice::Rapl => meters.push(Box::new(powercap(options)?)),
            MeterChoice::Perf => meters.push(Box::new(PerfMeter::with_psys(
                &options.perf_root,
                options.prefer_psys,
            )?)),
            MeterChoice::Nvml => meters.push(Box::new(nvml(options)?)),
            MeterChoice::Estimate => {
                let m = estimate(options)?;
                notes.push(format!(
                    "cpu and dram energy are estimated from utilisation × {:.1} ({}), not measured",
                    m.tdp().tdp,
                    m.tdp().origin
                ));
                meters.push(Box::new(m));
            }
            MeterChoice::Auto => {
                let cpu: Box<dyn Meter> = match powercap(options) {
                    Ok(m) => Box::new(m),
                    Err(e) => {
                        notes.push(format!("rapl (powercap) unavailable: {e}"));
                        match PerfMeter::with_psys(&options.perf_root, options.prefer_psys) {
                            Ok(m) => Box::new(m),
                            Err(e) => {
                                notes.push(format!("rapl (perf events) unavailable: {e}"));
                                let m = estimate(options)?;
                                notes.push(format!(
                                    "cpu and dram energy are estimated from utilisation × {:.1} \
                                     ({}), not measured",
                                    m.tdp().tdp,
                                    m.tdp().origin
                                ));
                                Box::new(m)
                            }
                        }
                    }
                };
                if !cpu
                    .domains()
                    .iter()
                    .any(|d| matches!(d.kind, DomainKind::Dram | DomainKind::Psys))
                {
                    notes.push(format!(
                        "{} reports no dram domain on this cpu: memory energy is not included",
                        cpu.name()
                    ));
                }
                meters.push(cpu);
                if options.gpus {
                    match nvml(options) {
                        Ok(m) => meters.push(Box::new(m)),
                        Err(e) => notes.push(format!("no gpu energy: {e}")),
                    }
                }
            }
        }
        let mut tracker = Tracker::from_meters(meters, options)?;
        tracker.notes = notes;
        Ok(tracker)
    }

    /// A tracker on the estimate alone, which works on any Linux machine. Never fails: if
    /// even `/proc` cannot be read, it tracks nothing and says so in `notes()`.
    pub fn estimate_only() -> Tracker {
        let options = MeterOptions::default();
        let built = estimate(&options).and_then(|m| {
            let note = format!(
                "cpu and dram energy are estimated from utilisation × {:.1} ({}), not measured",
                m.tdp().tdp,
                m.tdp().origin
            );
            Tracker::from_meters(vec![Box::new(m)], &options).map(|mut t| {
                t.notes.push(note);
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
        }
    }

    /// A tracker over meters built by the caller (fakes in tests, custom readers).
    pub fn from_meters(
        meters: Vec<Box<dyn Meter>>,
        options: &MeterOptions,
    ) -> Result<Tracker, MeterError> {
        options.validate()?;
        let mut tracker = Tracker::empty(options);
        let mut resolution = Vec::new();
        let mut poll: Option<Duration> = None;
        for m in &meters {
            for _ in m.domains() {
                resolution.push(m.resolution());
            }
            if let Some(p) = m.poll_interval() {
                let p = p.min(options.interval);
                poll = Some(poll.map_or(p, |q| q.min(p)));
            }
        }
        let poll = poll.map(|p| p.max(Duration::from_micros(100)));
        let described = {
            let mut inner = tracker.lock();
            inner.meters = meters;
            let first = Self::read_all(&mut inner)?;
            Self::sample_locked(&tracker.shared, &mut inner)?;
            first
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
    /// in [`Measurement::concurrency`] and a warning. Windows opened on threads that are not
    /// lanes (e.g. one enclosing the whole run) are unaffected: they report the counters'
    /// difference. A thread that is the only active lane gets exactly that difference too.
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
        drop(inner);
        Ok(self.measurement(window, &end, shared_end.as_deref(), flags))
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

    /// Measures idle power for `duration` (sleeping the calling thread) and returns the total.
    pub fn idle_baseline(&self, duration: Duration) -> Result<Watts, MeterError> {
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

    fn read_all(inner: &mut Inner) -> Result<Vec<(Domain, Source)>, MeterError> {
        let mut out = Vec::new();
        for m in inner.meters.iter_mut() {
            let r = m.read()?;
            for (d, dr) in m.domains().iter().zip(&r.domains) {
                out.push((*d, dr.source));
            }
        }
        Ok(out)
    }

    /// Reads all meters, updates open windows' peak power, records the sample.
    fn sample_locked(shared: &Shared, inner: &mut Inner) -> Result<Snapshot, MeterError> {
        let mut energy = Vec::new();
        let mut updates = Vec::new();
        let mut flags = Vec::new();
        for m in inner.meters.iter_mut() {
            let r = m.read()?;
            for d in &r.domains {
                energy.push(d.energy);
                updates.push(d.updates);
            }
            flags.extend(r.warnings);
        }
        let at = shared.origin.elapsed();
        inner.flags.extend(flags);
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
                energy: snap.energy.clone(),
            });
        }
        inner.last = Some(snap.clone());
        Ok(snap)
    }

    fn measurement(
        &self,
        w: Window,
        end: &Snapshot,
        shared_end: Option<&[Joules]>,
        flags: Vec<String>,
    ) -> Measurement {
        let duration = Seconds::from(end.at.saturating_sub(w.start.at));
        let mut domains = Vec::with_capacity(self.described.len());
        let mut warnings = flags;
        if shared_end.is_some() {
            warnings.push(format!(
                "up to {} threads measured windows at the same time: the counters are \
                 machine-wide, so each interval's energy was split equally among them \
                 (an attribution, not a reading)",
                w.concurrency
            ));
        }
        for (i, (domain, source)) in self.described.iter().enumerate() {
            let (to, from) = match shared_end {
                Some(shared_end) => (shared_end, w.shared_start.as_slice()),
                None => (end.energy.as_slice(), w.start.energy.as_slice()),
            };
            let energy =
                to.get(i).copied().unwrap_or_default() - from.get(i).copied().unwrap_or_default();
            let updates = end
                .updates
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(w.start.updates.get(i).copied().unwrap_or(0));
            let resolution = self.resolution.get(i).copied().unwrap_or_default();
            if duration.as_duration() < resolution {
                warnings.push(format!(
                    "{domain}: window of {:.3} ms is shorter than the sensor resolution ({:.3} ms); \
                     its energy is not resolved",
                    duration.0 * 1e3,
                    resolution.as_secs_f64() * 1e3
                ));
            } else if updates == 0 && duration.0 > 0.0 {
                warnings.push(format!(
                    "{domain}: no sensor update inside the window; its energy is not resolved"
                ));
            }
            domains.push(DomainEnergy {
                domain: domain.to_string(),
                energy,
                source: *source,
                updates,
            });
        }
        if self.described.is_empty() {
            warnings.push("no meter is available: energy is unknown, reported as 0 J".into());
        }
        let total: Joules = domains.iter().map(|d| d.energy).sum();
        Measurement {
            name: w.name,
            duration,
            total,
            domains,
            average_power: total.per(duration).unwrap_or_default(),
            peak_power: if w.intervals >= 2 { w.peak } else { None },
            warnings,
            concurrency: u32::try_from(w.concurrency).unwrap_or(u32::MAX),
        }
    }
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

fn powercap(options: &MeterOptions) -> Result<PowercapMeter, MeterError> {
    PowercapMeter::new(
        &options.powercap_root,
        &PowercapOptions {
            prefer_psys: options.prefer_psys,
            max_domain_power: options.max_domain_power,
        },
    )
}

fn nvml(options: &MeterOptions) -> Result<NvmlMeter, MeterError> {
    NvmlMeter::load(
        options.nvml_library.as_deref(),
        options.cuda_visible_devices.as_deref(),
    )
}

fn estimate(options: &MeterOptions) -> Result<EstimateMeter, MeterError> {
    EstimateMeter::with_clock(
        &options.proc_root,
        options.cpu_tdp_w,
        options.dram_w_per_gib,
        crate::clock::system(),
    )
}
