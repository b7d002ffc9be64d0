//! An estimate for machines without readable energy counters: CPU utilisation × TDP, plus a
//! DRAM term per GiB in use. Always labelled `Source::Estimated`.
//!
//! The model (documented so it can be criticised): CPU power is linear in the system-wide
//! utilisation read from `/proc/stat`, from `IDLE_FRACTION × TDP` when idle to `TDP` when every
//! CPU is busy; DRAM power is `dram_w_per_gib × GiB in use` (MemTotal − MemAvailable from
//! `/proc/meminfo`). Because power is linear in utilisation, integrating over the utilisation
//! averaged between two reads is exact for the model: no polling is needed for the CPU term;
//! polling only tracks how memory use changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Clock};
use crate::error::MeterError;
use crate::meter::{Domain, DomainReading, Meter, Reading};
use crate::sysfs;
use crate::units::{Joules, Source, Watts};

/// Fraction of TDP a CPU is assumed to draw when idle.
pub const IDLE_FRACTION: f64 = 0.1;

/// Watts per GiB of DRAM in use (3 W per 8 GiB, the figure CodeCarbon uses).
pub const DEFAULT_DRAM_W_PER_GIB: f64 = 0.375;

/// Watts per logical CPU assumed when the CPU model is not in the built-in table.
pub const FALLBACK_W_PER_LOGICAL_CPU: f64 = 10.0;

/// Reads closer together than this reuse the last `/proc` sample (see `EstimateMeter::read`).
pub const REFRESH: Duration = Duration::from_millis(10);

/// The largest TDP accepted, per machine; anything above is treated as a typo.
pub const MAX_TDP_W: f64 = 10_000.0;

/// Built-in TDP table: (substring of the `/proc/cpuinfo` model name, package TDP in watts,
/// hardware threads per package). Figures from the vendors' product pages.
const TDP_TABLE: &[(&str, f64, u32)] = &[
    ("EPYC 9654", 360.0, 192),
    ("EPYC 9554", 360.0, 128),
    ("EPYC 9454", 290.0, 96),
    ("EPYC 7763", 280.0, 128),
    ("EPYC 7742", 225.0, 128),
    ("EPYC 7713", 225.0, 128),
    ("EPYC 7543", 225.0, 64),
    ("EPYC 7B13", 240.0, 128),
    ("Xeon(R) Platinum 8480", 350.0, 112),
    ("Xeon(R) Platinum 8468", 350.0, 96),
    ("Xeon(R) Platinum 8380", 270.0, 80),
    ("Xeon(R) Platinum 8358", 250.0, 64),
    ("Xeon(R) Platinum 8275CL", 240.0, 48),
    ("Xeon(R) Gold 6248", 150.0, 40),
    ("Xeon(R) Gold 6130", 125.0, 32),
    ("Xeon(R) CPU E5-2686 v4", 145.0, 36),
    ("i9-13900K", 125.0, 32),
    ("i9-12900K", 125.0, 24),
    ("i7-12700", 65.0, 20),
    ("i7-8700", 65.0, 12),
    ("i5-8250U", 15.0, 8),
    ("Ryzen 9 7950X", 170.0, 32),
    ("Ryzen 9 5950X", 105.0, 32),
    ("Ryzen 7 5800X", 105.0, 16),
];

/// How the estimate's CPU power figure was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct TdpChoice {
    /// The power assumed at full utilisation of the CPUs this machine exposes.
    pub tdp: Watts,
    /// Where the figure came from, for the summary ("user", "table: EPYC 7763", "fallback").
    pub origin: String,
    /// Logical CPUs visible here (the model's power per CPU is `tdp / cpus`).
    pub cpus: usize,
}

/// Checks a user-supplied TDP: positive, finite and not absurd.
pub fn validate_tdp(tdp: Watts) -> Result<Watts, MeterError> {
    if !tdp.0.is_finite() || tdp.0 <= 0.0 || tdp.0 > MAX_TDP_W {
        return Err(MeterError::InvalidConfig {
            what: "cpu tdp",
            reason: format!(
                "{} is not a plausible power; pass a positive number of watts up to {MAX_TDP_W} \
                 (the CPU's thermal design power, e.g. --cpu-tdp-w 65)",
                tdp.0
            ),
        });
    }
    Ok(tdp)
}

/// Picks the TDP for this machine: the user's figure, else the built-in table scaled to the
/// logical CPUs visible here (a VM with 2 of 128 threads gets 2/128 of the package), else a
/// per-CPU fallback.
pub fn choose_tdp(proc_root: &Path, user: Option<Watts>) -> Result<TdpChoice, MeterError> {
    let user = user.map(validate_tdp).transpose()?;
    let path = proc_root.join("cpuinfo");
    let info = std::fs::read_to_string(&path)
        .map_err(|e| MeterError::io(&path, e))
        .map(|text| CpuInfo::parse(&text));
    if let Some(tdp) = user {
        // The user's figure needs only the number of CPUs to split it per CPU.
        let cpus = match &info {
            Ok(i) if i.logical_cpus > 0 => i.logical_cpus,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        return Ok(TdpChoice {
            tdp,
            origin: "user".into(),
            cpus,
        });
    }
    let info = info?;
    if info.logical_cpus == 0 {
        return Err(MeterError::malformed(&path, "no processor entries"));
    }
    for &(pattern, tdp, threads) in TDP_TABLE {
        if info.model.contains(pattern) {
            let share =
                (info.logical_cpus as f64 / (threads as f64 * info.sockets as f64)).min(1.0);
            return Ok(TdpChoice {
                tdp: Watts(tdp * info.sockets as f64 * share),
                origin: format!(
                    "table: {pattern}, {tdp} W per package, {} of {} threads visible",
                    info.logical_cpus,
                    threads as usize * info.sockets
                ),
                cpus: info.logical_cpus,
            });
        }
    }
    Ok(TdpChoice {
        tdp: Watts(FALLBACK_W_PER_LOGICAL_CPU * info.logical_cpus as f64),
        origin: format!(
            "fallback: {FALLBACK_W_PER_LOGICAL_CPU} W per logical cpu × {} (model {:?} not in the \
             table; pass --cpu-tdp-w to set it)",
            info.logical_cpus, info.model
        ),
        cpus: info.logical_cpus,
    })
}

struct CpuInfo {
    model: String,
    logical_cpus: usize,
    sockets: usize,
}

impl CpuInfo {
    fn parse(text: &str) -> CpuInfo {
        let mut model = String::new();
        let mut logical_cpus = 0;
        let mut sockets = std::collections::BTreeSet::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim() {
                "processor" => logical_cpus += 1,
                "model name" if model.is_empty() => model = value.trim().to_owned(),
                "physical id" => {
                    sockets.insert(value.trim().to_owned());
                }
                _ => {}
            }
        }
        CpuInfo {
            model,
            logical_cpus,
            sockets: sockets.len().max(1),
        }
    }
}

/// Jiffies from the aggregate `cpu` line of `/proc/stat` (also the machine side of
/// attribution, `process.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuTimes {
    /// user, nice, system, irq, softirq (not idle, iowait or steal).
    pub(crate) busy: u64,
    /// busy + idle + iowait.
    pub(crate) total: u64,
}

pub(crate) fn parse_stat(path: &Path, text: &str) -> Result<CpuTimes, MeterError> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| MeterError::malformed(path, "no aggregate `cpu` line"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| sysfs::parse_u64(path, f))
        .collect::<Result<_, _>>()?;
    if fields.len() < 4 {
        return Err(MeterError::malformed(
            path,
            "the `cpu` line has fewer than 4 fields",
        ));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    // Steal is time the hypervisor gave to someone else: neither our work nor our idleness.
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    let idle = get(3) + get(4);
    Ok(CpuTimes {
        busy,
        total: busy + idle,
    })
}

fn parse_meminfo_in_use_gib(path: &Path, text: &str) -> Result<f64, MeterError> {
    let field = |name: &str| -> Result<u64, MeterError> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| MeterError::malformed(path, format!("no {name} line")))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| MeterError::malformed(path, format!("empty {name} line")))?;
        sysfs::parse_u64(path, value)
    };
    let total_kib = field("MemTotal:")?;
    let available_kib = field("MemAvailable:")?;
    Ok(total_kib.saturating_sub(available_kib) as f64 / (1024.0 * 1024.0))
}

/// The estimate's parameters that attribution needs: a process tree's CPU-side energy under
/// the model is its CPU time × `per_cpu` plus `dram_w_per_gib` × its resident GiB × time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EstimateModel {
    /// Power of one fully busy logical CPU (TDP / logical CPUs).
    pub per_cpu: Watts,
    /// DRAM power per GiB in use.
    pub dram_w_per_gib: f64,
}

/// The estimate reader: domains `cpu-package-0` (all CPUs) and `dram-0` (all memory).
pub struct EstimateMeter {
    proc_root: PathBuf,
    tdp: TdpChoice,
    dram_w_per_gib: f64,
    clock: Arc<dyn Clock>,
    domains: [Domain; 2],
    last: Option<(Duration, CpuTimes, f64)>,
    cpu: Joules,
    dram: Joules,
    updates: u64,
    poll: Duration,
    /// Energies last returned: reads between refreshes never go below them.
    returned: [Joules; 2],
}

impl EstimateMeter {
    /// An estimate reading `proc_root` (normally `/proc`), with an optional TDP override.
    pub fn new(proc_root: &Path, tdp: Option<Watts>) -> Result<EstimateMeter, MeterError> {
        Self::with_clock(proc_root, tdp, DEFAULT_DRAM_W_PER_GIB, clock::system())
    }

    /// As `new`, with the DRAM term and the clock given (tests use a `ManualClock`).
    pub fn with_clock(
        proc_root: &Path,
        tdp: Option<Watts>,
        dram_w_per_gib: f64,
        clock: Arc<dyn Clock>,
    ) -> Result<EstimateMeter, MeterError> {
        if !dram_w_per_gib.is_finite() || !(0.0..=100.0).contains(&dram_w_per_gib) {
            return Err(MeterError::InvalidConfig {
                what: "dram power per GiB",
                reason: format!("{dram_w_per_gib} W/GiB; pass a number between 0 and 100"),
            });
        }
        let tdp = choose_tdp(proc_root, tdp)?;
        let mut meter = EstimateMeter {
            proc_root: proc_root.to_owned(),
            tdp,
            dram_w_per_gib,
            clock,
            domains: [Domain::cpu_package(0), Domain::dram(0)],
            last: None,
            cpu: Joules(0.0),
            dram: Joules(0.0),
            updates: 0,
            poll: Duration::from_secs(1),
            returned: [Joules(0.0); 2],
        };
        meter.read()?;
        Ok(meter)
    }

    /// The CPU power figure in use and where it came from.
    pub fn tdp(&self) -> &TdpChoice {
        &self.tdp
    }

    /// The model's parameters, for attributing its figures to a process tree.
    pub fn model(&self) -> EstimateModel {
        EstimateModel {
            per_cpu: Watts(self.tdp.tdp.0 / self.tdp.cpus.max(1) as f64),
            dram_w_per_gib: self.dram_w_per_gib,
        }
    }

    /// A reading that never goes below what was returned before.
    fn reading(&mut self, cpu: Joules, dram: Joules, warnings: Vec<String>) -> Reading {
        self.returned = [self.returned[0].max(cpu), self.returned[1].max(dram)];
        let updates = self.updates;
        let reading = |energy| DomainReading::new(energy, Source::Estimated, updates);
        Reading {
            domains: vec![reading(self.returned[0]), reading(self.returned[1])],
            warnings,
        }
    }

    fn sample(&self) -> Result<(CpuTimes, f64), MeterError> {
        let stat = self.proc_root.join("stat");
        let text = std::fs::read_to_string(&stat).map_err(|e| MeterError::io(&stat, e))?;
        let times = parse_stat(&stat, &text)?;
        let meminfo = self.proc_root.join("meminfo");
        let text = std::fs::read_to_string(&meminfo).map_err(|e| MeterError::io(&meminfo, e))?;
        let gib = parse_meminfo_in_use_gib(&meminfo, &text)?;
        Ok((times, gib))
    }
}

impl Meter for EstimateMeter {
    fn name(&self) -> &'static str {
        "estimate"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// `/proc/stat` only moves in 10 ms ticks and reading it costs tens of microseconds, so
    /// reads closer than `REFRESH` to the last refresh do not touch `/proc`: they add the idle
    /// floor of the model (a lower bound of the true model power, so the next refresh never
    /// has to take energy back) and the last memory term. The next refresh accounts the whole
    /// interval exactly for the model.
    fn read(&mut self) -> Result<Reading, MeterError> {
        let now = self.clock.now();
        let mut warnings = Vec::new();
        match self.last {
            Some((then, _, gib)) if now.saturating_sub(then) < REFRESH => {
                let dt = now.saturating_sub(then).as_secs_f64();
                let cpu = self.cpu + Joules(self.tdp.tdp.0 * IDLE_FRACTION * dt);
                let dram = self.dram + Joules(self.dram_w_per_gib * gib * dt);
                return Ok(self.reading(cpu, dram, warnings));
            }
            _ => {}
        }
        let (times, gib) = self.sample()?;
        if let Some((then, prev, prev_gib)) = self.last {
            let dt = now.saturating_sub(then).as_secs_f64();
            let d_total = times.total.saturating_sub(prev.total);
            let d_busy = times.busy.saturating_sub(prev.busy);
            if times.total < prev.total || times.busy < prev.busy {
                warnings.push(format!(
                    "{}: cpu time counters went backwards; utilisation taken as 0 for this interval",
                    self.proc_root.join("stat").display()
                ));
            }
            let util = if d_total == 0 {
                0.0
            } else {
                (d_busy as f64 / d_total as f64).clamp(0.0, 1.0)
            };
            let cpu_w = self.tdp.tdp.0 * (IDLE_FRACTION + (1.0 - IDLE_FRACTION) * util);
            self.cpu += Joules(cpu_w * dt);
            // Trapezoid over the two memory samples.
            self.dram += Joules(self.dram_w_per_gib * 0.5 * (gib + prev_gib) * dt);
            if d_total > 0 {
                self.updates += 1;
            }
        }
        self.last = Some((now, times, gib));
        Ok(self.reading(self.cpu, self.dram, warnings))
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.poll)
    }

    fn resolution(&self) -> Duration {
        // /proc/stat counts in USER_HZ ticks (100 per second on Linux).
        Duration::from_millis(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::meter::check_meter;

    fn fake_proc(dir: &Path, busy: u64, idle: u64, used_kib: u64) {
        let stat = format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n");
        std::fs::write(dir.join("stat"), stat).ok();
        let mem = format!(
            "MemTotal: {} kB\nMemFree: 1 kB\nMemAvailable: {} kB\n",
            8 * 1024 * 1024,
            8 * 1024 * 1024 - used_kib
        );
        std::fs::write(dir.join("meminfo"), mem).ok();
    }

    fn tempdir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir: {e}"),
        }
    }

    #[test]
    fn exact_for_the_model_on_a_fake_proc() {
        let dir = tempdir();
        std::fs::write(
            dir.path().join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Test CPU\nprocessor\t: 1\n",
        )
        .ok();
        fake_proc(dir.path(), 0, 0, 2 * 1024 * 1024);
        let clock = ManualClock::new();
        let mut m =
            EstimateMeter::with_clock(dir.path(), Some(Watts(100.0)), 0.5, Arc::new(clock.clone()))
                .unwrap_or_else(|e| panic!("{e}"));
        // 2 s at 50 % utilisation, 2 GiB in use throughout.
        clock.advance(Duration::from_secs(2));
        fake_proc(dir.path(), 100, 100, 2 * 1024 * 1024);
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        let cpu = 100.0 * (IDLE_FRACTION + (1.0 - IDLE_FRACTION) * 0.5) * 2.0;
        assert!((r.domains[0].energy.0 - cpu).abs() < 1e-9, "{:?}", r);
        assert!(
            (r.domains[1].energy.0 - 0.5 * 2.0 * 2.0).abs() < 1e-9,
            "{:?}",
            r
        );
        assert!(r.domains.iter().all(|d| d.source == Source::Estimated));
        assert_eq!(r.domains[0].updates, 1);
    }

    #[test]
    fn reads_within_a_tick_reuse_the_last_sample_and_never_go_back() {
        let dir = tempdir();
        std::fs::write(dir.path().join("cpuinfo"), "processor\t: 0\n").ok();
        fake_proc(dir.path(), 0, 0, 1024 * 1024);
        let clock = ManualClock::new();
        let mut m =
            EstimateMeter::with_clock(dir.path(), Some(Watts(50.0)), 1.0, Arc::new(clock.clone()))
                .unwrap_or_else(|e| panic!("{e}"));
        // /proc disappears: a read 5 ms later must not need it, and adds the idle floor.
        std::fs::remove_file(dir.path().join("stat")).ok();
        clock.advance(Duration::from_millis(5));
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        let floor = 50.0 * IDLE_FRACTION * 0.005;
        assert!((r.domains[0].energy.0 - floor).abs() < 1e-12, "{r:?}");
        assert!((r.domains[1].energy.0 - 0.005).abs() < 1e-12, "{r:?}");
        // Past the tick it reads /proc again (here: a clear error naming the file).
        clock.advance(Duration::from_millis(10));
        let err = m.read().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("stat"), "{err}");
        // Fully busy for the 15 ms: the refresh adds the whole interval, above the floor.
        fake_proc(dir.path(), 100, 0, 1024 * 1024);
        let r2 = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            (r2.domains[0].energy.0 - 50.0 * 0.015).abs() < 1e-12,
            "{r2:?}"
        );
        assert!(r2.domains[0].energy >= r.domains[0].energy);
    }

    #[test]
    fn rejects_negative_and_absurd_tdp() {
        let dir = tempdir();
        fake_proc(dir.path(), 0, 0, 0);
        for bad in [-5.0, 0.0, f64::NAN, 1e9] {
            let err = EstimateMeter::new(dir.path(), Some(Watts(bad))).err();
            assert!(
                matches!(err, Some(MeterError::InvalidConfig { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn tdp_table_scales_to_visible_cpus() {
        let dir = tempdir();
        let mut info = String::new();
        for i in 0..4 {
            info += &format!(
                "processor\t: {i}\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 0\n\n"
            );
        }
        std::fs::write(dir.path().join("cpuinfo"), info).ok();
        let c = choose_tdp(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!((c.tdp.0 - 280.0 * 4.0 / 128.0).abs() < 1e-9, "{c:?}");
        assert!(c.origin.contains("EPYC 7763"));
    }

    #[test]
    fn malformed_stat_is_a_clear_error() {
        let dir = tempdir();
        std::fs::write(dir.path().join("cpuinfo"), "processor : 0\n").ok();
        std::fs::write(dir.path().join("stat"), "cpu  1 2 x\n").ok();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal: 1 kB\nMemAvailable: 1 kB\n",
        )
        .ok();
        let err = EstimateMeter::new(dir.path(), None)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("stat") && e.contains("\"x\"")),
            "{err:?}"
        );
    }

    #[test]
    fn conformance_on_this_machine() {
        let mut m = EstimateMeter::new(Path::new("/proc"), None).unwrap_or_else(|e| panic!("{e}"));
        // Real time passes between reads; the idle term alone makes energy grow.
        let mut spin = |_| {
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(20) {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            std::hint::black_box(x);
        };
        check_meter(&mut m, 3, true, &mut spin).unwrap_or_else(|e| panic!("{e}"));
    }
}
