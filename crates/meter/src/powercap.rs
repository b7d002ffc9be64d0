//! CPU RAPL through powercap sysfs (`/sys/class/powercap/intel-rapl:*`; AMD's RAPL driver
//! uses the same names).
//!
//! Domains: every socket's `package-N` zone plus its `dram` subzone, or the platform `psys`
//! zone alone. Nested domains are never summed: `core` and `uncore` are inside `package`, and
//! `psys` contains package and DRAM. `intel-rapl-mmio:*` zones repeat the package through
//! another interface and are skipped for the same reason.
//!
//! Wrap: each `energy_uj` runs from 0 to `max_energy_range_uj`; `WrapCounter` accumulates it
//! exactly provided the meter is read at least once per range at the highest plausible power,
//! which `poll_interval` reports (half that time, for margin) and the `Tracker` honours. A
//! counter that goes down by more than that power could explain since the last read is an
//! error, not a silent wrap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Clock};
use crate::error::MeterError;
use crate::meter::{Domain, DomainKind, DomainReading, Meter, Reading};
use crate::sysfs;
use crate::units::{Joules, Source, Watts};
use crate::wrap::WrapCounter;

/// Options of the powercap reader.
#[derive(Clone, Debug)]
pub struct PowercapOptions {
    /// Use the platform domain (psys) instead of package + DRAM when it exists.
    pub prefer_psys: bool,
    /// The most power one zone can plausibly draw. Sets the poll period (no wrap missed) and
    /// the test for a counter that goes backwards.
    pub max_domain_power: Watts,
    /// How long (real time) a counter may go without changing before the tracker counts it as
    /// frozen ([`Meter::stall_after`]); `None` turns the check off (fakes whose counter moves
    /// only when a test writes it). RAPL updates every millisecond and even an idle package
    /// draws power, so the default is one second.
    pub stall_after: Option<Duration>,
}

impl Default for PowercapOptions {
    fn default() -> Self {
        PowercapOptions {
            prefer_psys: false,
            max_domain_power: Watts(1000.0),
            stall_after: Some(Duration::from_secs(1)),
        }
    }
}

struct Zone {
    energy_path: PathBuf,
    counter: WrapCounter,
    /// When the counter was last read (the energy of the next step accrued after this).
    last_read: Duration,
}

/// The powercap reader: `Source::Counter`, exact, needs polling only for wrap protection.
pub struct PowercapMeter {
    domains: Vec<Domain>,
    zones: Vec<Zone>,
    clock: Arc<dyn Clock>,
    max_power: Watts,
    poll: Duration,
    stall_after: Option<Duration>,
}

/// A zone found in the tree, before selection.
#[derive(Debug)]
struct Found {
    dir: PathBuf,
    name: String,
    /// Socket (from the parent package zone for subzones).
    socket: u32,
    /// Top-level zone (`intel-rapl:N`) or subzone (`intel-rapl:N:M`).
    top_level: bool,
}

impl PowercapMeter {
    /// Opens the powercap tree at `root` (normally `/sys/class/powercap`).
    pub fn new(root: &Path, options: &PowercapOptions) -> Result<PowercapMeter, MeterError> {
        Self::with_clock(root, options, clock::system())
    }

    /// As `new`, with the clock given (tests use a `ManualClock`).
    pub fn with_clock(
        root: &Path,
        options: &PowercapOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<PowercapMeter, MeterError> {
        let found = discover(root)?;
        let selected = select(&found, options.prefer_psys);
        if selected.is_empty() {
            return Err(MeterError::Unsupported(format!(
                "no rapl package or psys zone under {} (no intel-rapl:N directories with a \
                 `name` of package-N or psys); this cpu or kernel exposes no powercap rapl: \
                 pass --meter perf or --meter estimate",
                root.display()
            )));
        }
        let now = clock.now();
        let mut domains = Vec::new();
        let mut zones = Vec::new();
        let mut poll = Duration::from_secs(3600);
        for (domain, f) in selected {
            let energy_path = f.dir.join("energy_uj");
            let range_path = f.dir.join("max_energy_range_uj");
            let range_max = read_counter(&range_path)?;
            if range_max == 0 {
                return Err(MeterError::malformed(&range_path, "a counter range of 0"));
            }
            let first = read_counter(&energy_path)?;
            let counter = WrapCounter::new(range_max, first).ok_or_else(|| {
                MeterError::malformed(
                    &energy_path,
                    format!("value {first} exceeds max_energy_range_uj {range_max}"),
                )
            })?;
            // Time to run through one full range at the highest plausible power; read twice
            // per range so scheduling jitter cannot make us miss a wrap.
            let wrap_s = counter.modulus() as f64 * 1e-6 / options.max_domain_power.0;
            poll = poll.min(Duration::from_secs_f64((wrap_s / 2.0).max(1e-4)));
            domains.push(domain);
            zones.push(Zone {
                energy_path,
                counter,
                last_read: now,
            });
        }
        Ok(PowercapMeter {
            domains,
            zones,
            clock,
            max_power: options.max_domain_power,
            poll,
            stall_after: options.stall_after,
        })
    }
}

/// What one read does with a zone's counter.
enum Step {
    /// Counts the step from the last value (a wrap where the range says so).
    Advance(u64),
    /// The counter was reset: re-based on the new value, a gap counted.
    Rebase(u64),
    /// Left for the next read (the clock has not moved).
    Defer,
}

/// Reads a counter file; permission denied becomes `Unsupported` with the fix.
fn read_counter(path: &Path) -> Result<u64, MeterError> {
    match read_small(path) {
        Ok(text) => sysfs::parse_u64(path, text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(MeterError::Unsupported(format!(
                "cannot read {}: permission denied (energy_uj is root-only since Linux 5.10, \
                 CVE-2020-8694); run as root, or grant read access with `sudo chmod o+r {}`, \
                 or pass --meter perf (needs CAP_PERFMON) or --meter estimate",
                path.display(),
                path.display()
            )))
        }
        Err(e) => Err(MeterError::io(path, e)),
    }
}

/// Reads a short pseudo-file into a stack buffer (window edges read several of these; no
/// allocation keeps an edge cheap). Counters are at most 20 digits.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = [0u8; 64];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if len == buf.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "longer than any energy counter (64 bytes)",
            ));
        }
    }
    String::from_utf8(buf[..len].to_vec())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not utf-8 text"))
}

/// Lists RAPL zones, flat (`root/intel-rapl:0:1`, as in /sys/class/powercap) or nested
/// (`root/intel-rapl:0/intel-rapl:0:1`, as under /sys/devices/virtual/powercap).
fn discover(root: &Path) -> Result<Vec<Found>, MeterError> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            MeterError::Unsupported(format!(
                "{} does not exist: this kernel exposes no powercap interface (no intel_rapl \
                 driver, or a virtual machine); pass --meter perf or --meter estimate",
                root.display()
            ))
        } else {
            MeterError::io(root, e)
        }
    })?;
    let mut dirs: Vec<(PathBuf, String)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| MeterError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if zone_indices(&name).is_some() {
            let path = entry.path();
            if let Ok(sub) = std::fs::read_dir(&path) {
                for s in sub.flatten() {
                    let sname = s.file_name().to_string_lossy().into_owned();
                    if zone_indices(&sname).is_some_and(|i| i.len() == 2) {
                        dirs.push((s.path(), sname));
                    }
                }
            }
            dirs.push((path, name));
        }
    }
    dirs.sort_by_key(|d| zone_indices(&d.1));
    dirs.dedup_by(|a, b| a.1 == b.1);
    let mut found: Vec<Found> = Vec::new();
    for (dir, dname) in dirs {
        let Some(idx) = zone_indices(&dname) else {
            continue;
        };
        let name = sysfs::read_trimmed(&dir.join("name"))?;
        let top_level = idx.len() == 1;
        let socket = if top_level {
            name.strip_prefix("package-")
                .and_then(|n| n.parse().ok())
                .unwrap_or(idx[0])
        } else {
            found
                .iter()
                .find(|f| f.top_level && zone_indices_of(&f.dir) == Some(vec![idx[0]]))
                .map_or(idx[0], |p| p.socket)
        };
        found.push(Found {
            dir,
            name,
            socket,
            top_level,
        });
    }
    Ok(found)
}

fn zone_indices_of(dir: &Path) -> Option<Vec<u32>> {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(zone_indices)
}

/// `intel-rapl:3` → [3], `intel-rapl:0:1` → [0, 1]; anything else (including
/// `intel-rapl-mmio:0` and the bare `intel-rapl` control type) → None.
fn zone_indices(name: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix("intel-rapl:")?;
    let idx: Option<Vec<u32>> = rest.split(':').map(|p| p.parse().ok()).collect();
    idx.filter(|v| (1..=2).contains(&v.len()))
}

/// Package + DRAM per socket, or psys alone; never a zone nested in another selected one.
fn select(found: &[Found], prefer_psys: bool) -> Vec<(Domain, &Found)> {
    let psys: Vec<&Found> = found
        .iter()
        .filter(|f| f.top_level && f.name == "psys")
        .collect();
    let packages: Vec<&Found> = found
        .iter()
        .filter(|f| f.top_level && f.name.starts_with("package"))
        .collect();
    if !psys.is_empty() && (prefer_psys || packages.is_empty()) {
        return psys
            .into_iter()
            .enumerate()
            .map(|(i, f)| (Domain::psys(i as u32), f))
            .collect();
    }
    let mut out: Vec<(Domain, &Found)> = Vec::new();
    for p in packages {
        out.push((Domain::cpu_package(p.socket), p));
    }
    for d in found.iter().filter(|f| f.name == "dram") {
        // Top-level dram zones exist on some platforms; subzones belong to their package.
        let domain = Domain::dram(d.socket);
        if !out.iter().any(|(x, _)| *x == domain) {
            out.push((domain, d));
        }
    }
    out.sort_by_key(|(d, _)| (d.index, d.kind != DomainKind::CpuPackage));
    out
}

impl Meter for PowercapMeter {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// A counter that goes down by more than one wrap at the highest plausible power can
    /// explain was reset (a reloaded driver, a migrated virtual machine): the reader re-bases on
    /// the new value, counts a gap (the energy since the previous read is unknown) and goes on
    /// counting, with a warning.
    fn read(&mut self) -> Result<Reading, MeterError> {
        // Read every file first, commit only if all are consistent: a failed read leaves the
        // meter as it was, so the next read can still account for the whole interval.
        let now = self.clock.now();
        let mut raws = Vec::with_capacity(self.zones.len());
        for z in &self.zones {
            raws.push(read_counter(&z.energy_path)?);
        }
        let mut warnings = Vec::new();
        let mut steps = Vec::with_capacity(self.zones.len());
        for ((z, &raw), domain) in self.zones.iter().zip(&raws).zip(&self.domains) {
            let step = z.counter.peek(raw).ok_or_else(|| {
                MeterError::malformed(
                    &z.energy_path,
                    format!(
                        "value {raw} exceeds the counter range (max_energy_range_uj + 1 = {})",
                        z.counter.modulus()
                    ),
                )
            })?;
            let dt = now.saturating_sub(z.last_read).as_secs_f64();
            if dt == 0.0 && step.delta > 0 {
                // The clock has not moved since the last read, so no wrap can be told from a
                // reset: leave this value for the next read, which judges the whole interval.
                steps.push(Step::Defer);
                continue;
            }
            // Energy the domain could have used since the last read, plus one microjoule of
            // rounding: more than that cannot be explained by one wrap.
            let possible_uj = self.max_power.0 * dt * 1e6 + 1.0;
            let reset = step.wrapped && step.delta as f64 > possible_uj;
            if reset {
                warnings.push(format!(
                    "{domain}: {} went backwards from {} to {raw} µJ within {:.6} s (a wrap would \
                     mean {:.0} W, above the {} limit): counter reset; re-based, the energy since \
                     the previous read is unknown",
                    z.energy_path.display(),
                    z.counter.last(),
                    dt,
                    step.delta as f64 * 1e-6 / dt.max(1e-9),
                    self.max_power
                ));
            }
            let wrap_s = z.counter.modulus() as f64 * 1e-6 / self.max_power.0;
            if dt > wrap_s {
                warnings.push(format!(
                    "{domain}: {:.1} s between reads exceeds the {:.1} s the counter needs to wrap \
                     at {}; a wrap may have been missed",
                    dt, wrap_s, self.max_power
                ));
            }
            steps.push(if reset {
                Step::Rebase(raw)
            } else {
                Step::Advance(raw)
            });
        }
        let mut domains = Vec::with_capacity(self.zones.len());
        for (z, step) in self.zones.iter_mut().zip(steps) {
            // Both checked by peek above (the raw value lies in the range).
            match step {
                Step::Rebase(raw) => {
                    let _ = z.counter.rebase(raw);
                    z.last_read = now;
                }
                Step::Advance(raw) => {
                    let _ = z.counter.advance(raw);
                    z.last_read = now;
                }
                Step::Defer => {}
            }
            domains.push(DomainReading {
                energy: Joules(z.counter.total() as f64 * 1e-6),
                source: Source::Counter,
                updates: z.counter.updates(),
                gaps: z.counter.resets(),
            });
        }
        Ok(Reading { domains, warnings })
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.poll)
    }

    fn resolution(&self) -> Duration {
        // RAPL updates its energy status about every millisecond.
        Duration::from_millis(1)
    }

    fn stall_after(&self) -> Option<Duration> {
        self.stall_after
    }

    fn label(&self, index: usize) -> String {
        match self.zones.get(index) {
            Some(z) => format!("rapl {}", z.energy_path.display()),
            None => "rapl".to_owned(),
        }
    }
}

/// Writes a fake powercap tree, for tests here, in other crates and in the cli.
pub mod fake {
    use std::path::Path;

    /// One zone of a fake tree: directory name (`intel-rapl:0`, `intel-rapl:0:1`), `name`
    /// file content, counter range and initial value.
    pub struct FakeZone<'a> {
        /// Directory name.
        pub dir: &'a str,
        /// Content of `name`.
        pub name: &'a str,
        /// `max_energy_range_uj`.
        pub range_max_uj: u64,
        /// Initial `energy_uj`.
        pub energy_uj: u64,
    }

    /// Creates the zones under `root` (flat layout, as /sys/class/powercap).
    pub fn write_tree(root: &Path, zones: &[FakeZone<'_>]) -> std::io::Result<()> {
        std::fs::create_dir_all(root)?;
        std::fs::write(root.join("README"), "fake powercap tree\n")?;
        for z in zones {
            let dir = root.join(z.dir);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("name"), format!("{}\n", z.name))?;
            std::fs::write(
                dir.join("max_energy_range_uj"),
                format!("{}\n", z.range_max_uj),
            )?;
            set_energy(root, z.dir, z.energy_uj)?;
        }
        Ok(())
    }

    /// Atomically replaces a zone's `energy_uj` (readers never see a half-written file).
    pub fn set_energy(root: &Path, dir: &str, energy_uj: u64) -> std::io::Result<()> {
        let zone = root.join(dir);
        let tmp = zone.join(".energy_uj.tmp");
        std::fs::write(&tmp, format!("{energy_uj}\n"))?;
        std::fs::rename(tmp, zone.join("energy_uj"))
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeZone, set_energy, write_tree};
    use super::*;
    use crate::clock::ManualClock;
    use crate::meter::check_meter;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
    }

    const RANGE: u64 = 999_999; // counters run 0..=999999 µJ: a wrap every joule

    fn two_sockets(root: &Path) {
        let zones = [
            ("intel-rapl:0", "package-0", 900_000),
            ("intel-rapl:0:0", "core", 5),
            ("intel-rapl:0:1", "dram", 10),
            ("intel-rapl:1", "package-1", 0),
            ("intel-rapl:1:0", "core", 7),
            ("intel-rapl:1:1", "dram", 999_000),
            ("intel-rapl-mmio:0", "package-0", 1),
        ];
        let zones: Vec<FakeZone<'_>> = zones
            .iter()
            .map(|&(dir, name, e)| FakeZone {
                dir,
                name,
                range_max_uj: RANGE,
                energy_uj: e,
            })
            .collect();
        write_tree(root, &zones).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("intel-rapl")).ok();
    }

    fn opts() -> PowercapOptions {
        PowercapOptions {
            prefer_psys: false,
            max_domain_power: Watts(100.0),
            ..PowercapOptions::default()
        }
    }

    #[test]
    fn selects_package_and_dram_per_socket_never_core_or_mmio() {
        let dir = tempdir();
        two_sockets(dir.path());
        let m = PowercapMeter::new(dir.path(), &opts()).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = m.domains().iter().map(|d| d.to_string()).collect();
        assert_eq!(
            names,
            ["cpu-package-0", "dram-0", "cpu-package-1", "dram-1"]
        );
        // 1 J range at 100 W wraps every 10 ms: poll every 5 ms.
        assert_eq!(m.poll_interval(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn exact_totals_over_several_wraps_on_two_sockets() {
        let dir = tempdir();
        let root = dir.path();
        two_sockets(root);
        let clock = ManualClock::new();
        let mut m = PowercapMeter::with_clock(root, &opts(), Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        // Each domain draws a constant power; counters advance by power × 4 ms per poll,
        // wrapping the 1 J range many times over 200 polls (0.8 s).
        let powers_w = [
            ("intel-rapl:0", 90.0),
            ("intel-rapl:0:1", 12.5),
            ("intel-rapl:1", 60.0),
            ("intel-rapl:1:1", 7.25),
        ];
        let mut raw: Vec<u64> = vec![900_000, 10, 0, 999_000];
        let mut truth_uj = [0u64; 4];
        for _ in 0..200 {
            clock.advance(Duration::from_millis(4));
            for (i, (zone, w)) in powers_w.iter().enumerate() {
                let inc = (*w * 4_000.0) as u64; // µJ per 4 ms
                truth_uj[i] += inc;
                raw[i] = (raw[i] + inc) % (RANGE + 1);
                set_energy(root, zone, raw[i]).unwrap_or_else(|e| panic!("{e}"));
            }
            let r = m.read().unwrap_or_else(|e| panic!("{e}"));
            assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        }
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        for (i, d) in r.domains.iter().enumerate() {
            assert_eq!(d.energy, Joules::from_uj(truth_uj[i]), "domain {i}");
            assert_eq!(d.source, Source::Counter);
            assert_eq!(d.updates, 200);
        }
        // package-0 used 90 W × 0.8 s = 72 J: 72 wraps of a 1 J counter, counted exactly.
        assert_eq!(truth_uj[0], 72_000_000);
        let total_uj = (r.total().0 * 1e6).round() as u64;
        assert_eq!(total_uj, truth_uj.iter().sum::<u64>());
    }

    #[test]
    fn psys_alone_when_preferred_or_only() {
        let dir = tempdir();
        let root = dir.path();
        two_sockets(root);
        write_tree(
            root,
            &[FakeZone {
                dir: "intel-rapl:2",
                name: "psys",
                range_max_uj: RANGE,
                energy_uj: 3,
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let o = PowercapOptions {
            prefer_psys: true,
            ..opts()
        };
        let m = PowercapMeter::new(root, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.domains(), &[Domain::psys(0)]);
    }

    #[test]
    fn nested_layout_is_found_too() {
        let dir = tempdir();
        let root = dir.path();
        write_tree(
            root,
            &[FakeZone {
                dir: "intel-rapl:0",
                name: "package-0",
                range_max_uj: RANGE,
                energy_uj: 0,
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        write_tree(
            &root.join("intel-rapl:0"),
            &[FakeZone {
                dir: "intel-rapl:0:0",
                name: "dram",
                range_max_uj: RANGE,
                energy_uj: 0,
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = PowercapMeter::new(root, &opts()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.domains(), &[Domain::cpu_package(0), Domain::dram(0)]);
    }

    #[test]
    fn backwards_without_plausible_wrap_is_a_reset_rebased_as_a_gap() {
        let dir = tempdir();
        let root = dir.path();
        two_sockets(root);
        let clock = ManualClock::new();
        let mut m = PowercapMeter::with_clock(root, &opts(), Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let before = m.read().unwrap_or_else(|e| panic!("{e}"));
        // 1 ms later package-0 reads 100 µJ: a wrap would be 100 100 µJ in 1 ms, above what
        // 100 W can deliver (100 000 µJ): the counter was reset.
        clock.advance(Duration::from_millis(1));
        set_energy(root, "intel-rapl:0", 100).unwrap_or_else(|e| panic!("{e}"));
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.domains[0].energy, before.domains[0].energy,
            "nothing added"
        );
        assert_eq!(r.domains[0].gaps, 1);
        assert_eq!(r.domains[1].gaps, 0, "other domains are unaffected");
        assert!(
            r.warnings.iter().any(|w| w.contains("counter reset")),
            "{:?}",
            r.warnings
        );
        // Counting goes on from the new base.
        clock.advance(Duration::from_millis(1));
        set_energy(root, "intel-rapl:0", 600).unwrap_or_else(|e| panic!("{e}"));
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.domains[0].energy,
            before.domains[0].energy + Joules::from_uj(500)
        );
        assert_eq!(r.domains[0].gaps, 1);
    }

    #[test]
    fn a_long_gap_is_flagged() {
        let dir = tempdir();
        two_sockets(dir.path());
        let clock = ManualClock::new();
        let mut m = PowercapMeter::with_clock(dir.path(), &opts(), Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::from_millis(50));
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("may have been missed")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn missing_tree_is_unsupported_and_malformed_is_not() {
        let dir = tempdir();
        let err = PowercapMeter::new(&dir.path().join("nope"), &opts()).err();
        assert!(
            err.as_ref().is_some_and(MeterError::is_unsupported),
            "{err:?}"
        );
        let empty = PowercapMeter::new(dir.path(), &opts()).err();
        assert!(
            empty.as_ref().is_some_and(MeterError::is_unsupported),
            "{empty:?}"
        );
        two_sockets(dir.path());
        std::fs::write(dir.path().join("intel-rapl:1/energy_uj"), "lots\n").ok();
        let bad = PowercapMeter::new(dir.path(), &opts()).err();
        assert!(matches!(bad, Some(MeterError::Malformed { .. })), "{bad:?}");
        std::fs::write(dir.path().join("intel-rapl:1/energy_uj"), "1000000\n").ok();
        let over = PowercapMeter::new(dir.path(), &opts())
            .err()
            .map(|e| e.to_string());
        assert!(
            over.as_deref().is_some_and(|e| e.contains("exceeds")),
            "{over:?}"
        );
    }

    #[test]
    fn conformance() {
        let dir = tempdir();
        let root = dir.path().to_owned();
        two_sockets(&root);
        let clock = ManualClock::new();
        let mut m = PowercapMeter::with_clock(&root, &opts(), Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut raw = 900_000u64;
        let mut advance = |_| {
            clock.advance(Duration::from_millis(3));
            raw = (raw + 250_000) % (RANGE + 1);
            set_energy(&root, "intel-rapl:0", raw).ok();
        };
        check_meter(&mut m, 10, true, &mut advance).unwrap_or_else(|e| panic!("{e}"));
    }
}
