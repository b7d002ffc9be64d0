//! CPU RAPL through perf events (the `power` PMU).
//!
//! The PMU is described under `/sys/bus/event_source/devices/power/`: `type` (the PMU number
//! for `perf_event_open`), `cpumask` (one CPU per socket), and `events/energy-*` with their
//! `.scale` (joules per count) and `.unit` files. The kernel keeps these counts in 64 bits and
//! handles the hardware counter's wrap itself, so this reader needs no polling.
//!
//! Domains: `energy-pkg` and `energy-ram` per socket, or `energy-psys` alone (it contains
//! them); `energy-cores` and `energy-gpu` are nested inside the package and never summed.
//! Opening system-wide events needs `CAP_PERFMON` (or root) or
//! `kernel.perf_event_paranoid <= 0`; refusal is `MeterError::Unsupported` with that fix.
//!
//! Opening proves nothing: virtual machines list `energy-psys` and let it be opened while its
//! count never changes. The selection ([`crate::select`]) probes the events before using them.
//! The kernel sits behind [`PerfCounters`] so that tests can stand in for it ([`fake`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::MeterError;
use crate::meter::{Domain, DomainKind, DomainReading, Meter, Reading};
use crate::sysfs;
use crate::units::{Joules, Source};

/// One energy event of the power PMU.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfEvent {
    /// The event's file name (`energy-pkg`).
    pub name: String,
    /// The `config` value for `perf_event_open` (from `event=0x..`).
    pub config: u64,
    /// Joules per count (from the `.scale` file).
    pub scale: f64,
    /// What it measures.
    pub kind: DomainKind,
}

/// The power PMU as described by sysfs, before anything is opened.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfEvents {
    /// PMU type number.
    pub pmu_type: u32,
    /// One CPU per socket, in socket order.
    pub cpus: Vec<i32>,
    /// The selected energy events (package + ram, or psys).
    pub events: Vec<PerfEvent>,
}

impl PerfEvents {
    /// Parses the PMU description under `root` (normally
    /// `/sys/bus/event_source/devices/power`).
    pub fn discover(root: &Path, prefer_psys: bool) -> Result<PerfEvents, MeterError> {
        let type_path = root.join("type");
        if !type_path.exists() {
            return Err(MeterError::Unsupported(format!(
                "{} does not exist: the kernel has no rapl perf pmu here (not an intel/amd cpu \
                 with rapl, or a virtual machine); pass --meter estimate",
                type_path.display()
            )));
        }
        let text = sysfs::read_trimmed(&type_path)?;
        let pmu_type = text.parse::<u32>().map_err(|_| {
            MeterError::malformed(&type_path, format!("expected a pmu number, found {text:?}"))
        })?;
        let mask_path = root.join("cpumask");
        let cpus = parse_cpu_list(&mask_path, &sysfs::read_trimmed(&mask_path)?)?;
        if cpus.is_empty() {
            return Err(MeterError::malformed(&mask_path, "no cpu listed"));
        }
        let mut all = Vec::new();
        for (name, kind) in [
            ("energy-pkg", DomainKind::CpuPackage),
            ("energy-ram", DomainKind::Dram),
            ("energy-psys", DomainKind::Psys),
        ] {
            let path = root.join("events").join(name);
            if !path.exists() {
                continue;
            }
            let config = parse_event(&path, &sysfs::read_trimmed(&path)?)?;
            let scale_path = root.join("events").join(format!("{name}.scale"));
            let scale_text = sysfs::read_trimmed(&scale_path)?;
            let scale = scale_text
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    MeterError::malformed(
                        &scale_path,
                        format!("expected a positive number, found {scale_text:?}"),
                    )
                })?;
            let unit_path = root.join("events").join(format!("{name}.unit"));
            if unit_path.exists() {
                let unit = sysfs::read_trimmed(&unit_path)?;
                if unit != "Joules" {
                    return Err(MeterError::malformed(
                        &unit_path,
                        format!("expected Joules, found {unit:?}"),
                    ));
                }
            }
            all.push(PerfEvent {
                name: name.to_owned(),
                config,
                scale,
                kind,
            });
        }
        let has_psys = all.iter().any(|e| e.kind == DomainKind::Psys);
        let has_pkg = all.iter().any(|e| e.kind == DomainKind::CpuPackage);
        let events: Vec<PerfEvent> = if has_psys && (prefer_psys || !has_pkg) {
            all.into_iter()
                .filter(|e| e.kind == DomainKind::Psys)
                .collect()
        } else {
            all.into_iter()
                .filter(|e| e.kind != DomainKind::Psys)
                .collect()
        };
        if events.is_empty() {
            return Err(MeterError::Unsupported(format!(
                "{} lists no energy-pkg, energy-ram or energy-psys event; pass --meter estimate",
                root.join("events").display()
            )));
        }
        Ok(PerfEvents {
            pmu_type,
            cpus,
            events,
        })
    }

    /// The domains these events measure, in the order `PerfMeter` reports them.
    pub fn domains(&self) -> Vec<Domain> {
        let mut out = Vec::new();
        for (socket, _) in self.cpus.iter().enumerate() {
            for e in &self.events {
                // psys is one platform domain, counted once (on the first socket's cpu).
                if e.kind == DomainKind::Psys && socket > 0 {
                    continue;
                }
                out.push(Domain {
                    kind: e.kind,
                    index: socket as u32,
                });
            }
        }
        out
    }
}

/// `0`, `0,36`, `0-1,4` → CPU numbers.
fn parse_cpu_list(path: &Path, text: &str) -> Result<Vec<i32>, MeterError> {
    let bad = || MeterError::malformed(path, format!("expected a cpu list, found {text:?}"));
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: i32 = a.parse().map_err(|_| bad())?;
                let b: i32 = b.parse().map_err(|_| bad())?;
                if b < a {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// `event=0x02` → 2.
fn parse_event(path: &Path, text: &str) -> Result<u64, MeterError> {
    let bad = || MeterError::malformed(path, format!("expected `event=0x..`, found {text:?}"));
    let value = text
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("event="))
        .ok_or_else(bad)?;
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| bad()),
        None => value.parse().map_err(|_| bad()),
    }
}

/// The first 64 bytes of `struct perf_event_attr` (PERF_ATTR_SIZE_VER0), which is all the
/// kernel needs for a counting event; every flag bit is zero (enabled, not inherited).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

fn open_event(pmu_type: u32, config: u64, cpu: i32) -> Result<OwnedFd, std::io::Error> {
    let attr = PerfEventAttr {
        type_: pmu_type,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid, initialised perf_event_attr prefix whose `size` field tells
    // the kernel how much of it to read; the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

fn read_count(fd: &OwnedFd) -> Result<u64, std::io::Error> {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a local u64 from a descriptor we own.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut value as *mut u64).cast::<libc::c_void>(),
            std::mem::size_of::<u64>(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if n as usize != std::mem::size_of::<u64>() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "short read from perf event",
        ));
    }
    Ok(value)
}

/// The two perf operations the reader needs, behind a seam so that tests can stand in for the
/// kernel with counters that never move, stop, go backwards or refuse to open.
pub trait PerfCounters: Send {
    /// Opens a system-wide counting event of PMU `pmu_type` with `config` on `cpu`; returns a
    /// handle for [`PerfCounters::read`].
    fn open(&mut self, pmu_type: u32, config: u64, cpu: i32) -> Result<usize, std::io::Error>;

    /// The current 64-bit count of an opened event.
    fn read(&mut self, handle: usize) -> Result<u64, std::io::Error>;
}

/// The kernel's perf events (`perf_event_open(2)`).
#[derive(Default)]
pub struct SyscallCounters {
    fds: Vec<OwnedFd>,
}

impl PerfCounters for SyscallCounters {
    fn open(&mut self, pmu_type: u32, config: u64, cpu: i32) -> Result<usize, std::io::Error> {
        self.fds.push(open_event(pmu_type, config, cpu)?);
        Ok(self.fds.len() - 1)
    }

    fn read(&mut self, handle: usize) -> Result<u64, std::io::Error> {
        let fd = self.fds.get(handle).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such perf event handle")
        })?;
        read_count(fd)
    }
}

struct Counter {
    handle: usize,
    event: String,
    scale: f64,
    /// Counts accumulated since the meter was opened, across re-bases.
    total: u64,
    last: u64,
    updates: u64,
    gaps: u64,
}

/// The perf-events RAPL reader: `Source::Counter`, exact, no polling.
pub struct PerfMeter {
    domains: Vec<Domain>,
    counters: Vec<Counter>,
    backend: Box<dyn PerfCounters>,
    root: PathBuf,
}

impl PerfMeter {
    /// Discovers the power PMU under `root` and opens one event per domain (package + ram).
    pub fn new(root: &Path) -> Result<PerfMeter, MeterError> {
        Self::with_psys(root, false)
    }

    /// As `new`, choosing psys alone over package + ram when `prefer_psys` and it exists.
    pub fn with_psys(root: &Path, prefer_psys: bool) -> Result<PerfMeter, MeterError> {
        Self::open(
            root,
            PerfEvents::discover(root, prefer_psys)?,
            Box::new(SyscallCounters::default()),
        )
    }

    /// Opens the given events (after `PerfEvents::discover`) through `backend`.
    pub fn open(
        root: &Path,
        events: PerfEvents,
        mut backend: Box<dyn PerfCounters>,
    ) -> Result<PerfMeter, MeterError> {
        let mut domains = Vec::new();
        let mut counters = Vec::new();
        for (socket, &cpu) in events.cpus.iter().enumerate() {
            for e in &events.events {
                if e.kind == DomainKind::Psys && socket > 0 {
                    continue;
                }
                let handle = backend
                    .open(events.pmu_type, e.config, cpu)
                    .map_err(|err| open_error(root, &e.name, cpu, err))?;
                let first = backend
                    .read(handle)
                    .map_err(|err| MeterError::io(root.join("events").join(&e.name), err))?;
                domains.push(Domain {
                    kind: e.kind,
                    index: socket as u32,
                });
                counters.push(Counter {
                    handle,
                    event: e.name.clone(),
                    scale: e.scale,
                    total: 0,
                    last: first,
                    updates: 0,
                    gaps: 0,
                });
            }
        }
        Ok(PerfMeter {
            domains,
            counters,
            backend,
            root: root.to_owned(),
        })
    }
}

fn open_error(root: &Path, event: &str, cpu: i32, err: std::io::Error) -> MeterError {
    let what = format!("cannot open perf event power/{event}/ on cpu {cpu}: {err}");
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => MeterError::Unsupported(format!(
            "{what}; system-wide energy events need root or CAP_PERFMON, or \
             `sudo sysctl kernel.perf_event_paranoid=0`; or pass --meter rapl or --meter estimate"
        )),
        _ => MeterError::Unsupported(format!(
            "{what}; the kernel does not offer the rapl events described under {} on this \
             machine; pass --meter estimate",
            root.display()
        )),
    }
}

impl Meter for PerfMeter {
    fn name(&self) -> &'static str {
        "perf"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// A count that goes backwards (the kernel keeps 64 bits, so only a reset can do that: a
    /// hypervisor that restored the counter, a reloaded driver) is re-based: the interval since
    /// the last read is a gap whose energy is unknown, and counting goes on from the new value.
    fn read(&mut self) -> Result<Reading, MeterError> {
        let mut domains = Vec::with_capacity(self.counters.len());
        let mut warnings = Vec::new();
        for (c, domain) in self.counters.iter_mut().zip(&self.domains) {
            let value = self
                .backend
                .read(c.handle)
                .map_err(|e| MeterError::io(self.root.join("events").join(&c.event), e))?;
            if value < c.last {
                c.gaps += 1;
                warnings.push(format!(
                    "{domain}: perf power/{}/ went backwards ({} -> {value}): counter reset; \
                     re-based, the energy since the previous read is unknown",
                    c.event, c.last
                ));
            } else {
                if value != c.last {
                    c.updates += 1;
                }
                c.total += value - c.last;
            }
            c.last = value;
            domains.push(DomainReading {
                energy: Joules(c.total as f64 * c.scale),
                source: Source::Counter,
                updates: c.updates,
                gaps: c.gaps,
            });
        }
        Ok(Reading { domains, warnings })
    }

    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn stall_after(&self) -> Option<Duration> {
        // RAPL updates about every millisecond, and even an idle package draws power.
        Some(Duration::from_secs(1))
    }

    fn label(&self, index: usize) -> String {
        match self.counters.get(index) {
            Some(c) => format!("perf power/{}", c.event),
            None => "perf".to_owned(),
        }
    }
}

/// Stand-ins for the kernel's perf events, for tests (here and in other crates).
pub mod fake {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::PerfCounters;

    /// Writes a power PMU description under `root` as the kernel would: `type`, `cpumask` and
    /// each event of `events` (e.g. `["energy-psys"]`) with its scale (2^-32 J) and unit.
    pub fn write_pmu(root: &Path, cpumask: &str, events: &[&str]) -> std::io::Result<()> {
        let dir = root.join("events");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(root.join("type"), "23\n")?;
        std::fs::write(root.join("cpumask"), format!("{cpumask}\n"))?;
        for (i, name) in events.iter().enumerate() {
            std::fs::write(dir.join(name), format!("event=0x{:02x}\n", i + 1))?;
            std::fs::write(
                dir.join(format!("{name}.scale")),
                "2.3283064365386962890625e-10\n",
            )?;
            std::fs::write(dir.join(format!("{name}.unit")), "Joules\n")?;
        }
        Ok(())
    }

    /// How a fake event's count moves on each read.
    #[derive(Clone, Debug)]
    pub enum FakeCount {
        /// Adds `step` counts per read, for ever.
        Steady(u64),
        /// Never moves (a virtual machine's placeholder event).
        Frozen(u64),
        /// Adds `step` per read for `reads` reads, then never moves again.
        StopsAfter {
            /// Counts per read while it moves.
            step: u64,
            /// Reads before it stops.
            reads: u64,
        },
        /// Adds `step` per read, and drops back to `to` once, at read `at`.
        ResetsAt {
            /// Counts per read.
            step: u64,
            /// The read at which it goes backwards.
            at: u64,
            /// The value it drops to.
            to: u64,
        },
        /// Opening the event fails with this OS error (e.g. `libc::EACCES`).
        Refuses(i32),
    }

    #[derive(Debug)]
    struct Event {
        how: FakeCount,
        value: u64,
        reads: u64,
    }

    /// Fake perf counters: events open in order and take their behaviour from the list given
    /// (the last one repeats). Clones share state, so a test can keep one to inspect reads.
    #[derive(Clone, Debug)]
    pub struct FakeCounters {
        plan: Vec<FakeCount>,
        events: Arc<Mutex<Vec<Event>>>,
    }

    impl FakeCounters {
        /// Events behaving as `plan` says, in the order they are opened.
        pub fn new(plan: Vec<FakeCount>) -> FakeCounters {
            FakeCounters {
                plan,
                events: Arc::new(Mutex::new(Vec::new())),
            }
        }
    }

    impl PerfCounters for FakeCounters {
        fn open(&mut self, _: u32, _: u64, _: i32) -> Result<usize, std::io::Error> {
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            let how = self
                .plan
                .get(events.len())
                .or(self.plan.last())
                .cloned()
                .unwrap_or(FakeCount::Frozen(0));
            if let FakeCount::Refuses(errno) = how {
                return Err(std::io::Error::from_raw_os_error(errno));
            }
            let value = match how {
                FakeCount::Frozen(v) => v,
                _ => 1_000,
            };
            events.push(Event {
                how,
                value,
                reads: 0,
            });
            Ok(events.len() - 1)
        }

        fn read(&mut self, handle: usize) -> Result<u64, std::io::Error> {
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            let e = events.get_mut(handle).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such fake event")
            })?;
            e.reads += 1;
            match e.how {
                FakeCount::Steady(step) => e.value += step,
                FakeCount::Frozen(_) | FakeCount::Refuses(_) => {}
                FakeCount::StopsAfter { step, reads } => {
                    if e.reads <= reads {
                        e.value += step;
                    }
                }
                FakeCount::ResetsAt { step, at, to } => {
                    if e.reads == at {
                        e.value = to;
                    } else {
                        e.value += step;
                    }
                }
            }
            Ok(e.value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
    }

    /// A power PMU as an Intel server with two sockets and psys describes it.
    fn fake_pmu(root: &Path, pmu_type: &str) {
        let events = root.join("events");
        std::fs::create_dir_all(&events).ok();
        std::fs::write(root.join("type"), format!("{pmu_type}\n")).ok();
        std::fs::write(root.join("cpumask"), "0,36\n").ok();
        for (name, code) in [
            ("energy-cores", "0x01"),
            ("energy-pkg", "0x02"),
            ("energy-ram", "0x03"),
            ("energy-psys", "0x05"),
        ] {
            std::fs::write(events.join(name), format!("event={code}\n")).ok();
            std::fs::write(
                events.join(format!("{name}.scale")),
                "2.3283064365386962890625e-10\n",
            )
            .ok();
            std::fs::write(events.join(format!("{name}.unit")), "Joules\n").ok();
        }
    }

    #[test]
    fn parses_the_pmu_and_never_selects_nested_events() {
        let dir = tempdir();
        fake_pmu(dir.path(), "23");
        let ev = PerfEvents::discover(dir.path(), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev.pmu_type, 23);
        assert_eq!(ev.cpus, vec![0, 36]);
        let names: Vec<(&str, u64)> = ev
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.config))
            .collect();
        assert_eq!(names, vec![("energy-pkg", 2), ("energy-ram", 3)]);
        assert_eq!(ev.events[0].scale, 2f64.powi(-32));
        let d: Vec<String> = ev.domains().iter().map(|d| d.to_string()).collect();
        assert_eq!(d, ["cpu-package-0", "dram-0", "cpu-package-1", "dram-1"]);
        let psys = PerfEvents::discover(dir.path(), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(psys.domains(), vec![Domain::psys(0)]);
    }

    #[test]
    fn cpu_lists_and_event_strings() {
        let p = Path::new("x");
        assert_eq!(parse_cpu_list(p, "0-2,8").ok(), Some(vec![0, 1, 2, 8]));
        assert!(parse_cpu_list(p, "3-1").is_err());
        assert_eq!(parse_event(p, "event=0x1b").ok(), Some(27));
        assert_eq!(parse_event(p, "event=7,umask=0").ok(), Some(7));
        assert!(parse_event(p, "config=1").is_err());
    }

    #[test]
    fn malformed_files_are_errors_and_absence_is_unsupported() {
        let dir = tempdir();
        let missing = PerfEvents::discover(&dir.path().join("power"), false).err();
        assert!(
            missing.as_ref().is_some_and(MeterError::is_unsupported),
            "{missing:?}"
        );
        fake_pmu(dir.path(), "x1");
        let bad = PerfEvents::discover(dir.path(), false).err();
        assert!(matches!(bad, Some(MeterError::Malformed { .. })), "{bad:?}");
        fake_pmu(dir.path(), "23");
        std::fs::write(dir.path().join("events/energy-ram.scale"), "-1\n").ok();
        let bad = PerfEvents::discover(dir.path(), false)
            .err()
            .map(|e| e.to_string());
        assert!(
            bad.as_deref()
                .is_some_and(|e| e.contains("energy-ram.scale")),
            "{bad:?}"
        );
    }

    #[test]
    fn a_real_open_failure_is_unsupported() {
        // PMU type 0x7fff_fff0 exists on no kernel: perf_event_open must refuse it, and the
        // reader must turn that into Unsupported (with the fix), not an I/O fault.
        let dir = tempdir();
        fake_pmu(dir.path(), "2147483632");
        let err = PerfMeter::new(dir.path()).err();
        assert!(
            err.as_ref().is_some_and(MeterError::is_unsupported),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("power/energy-pkg/ on cpu 0"), "{text}");
    }
}
