//! Machines we do not have, faked at their boundary: counters that never move, read 0 for
//! ever, stop after a while, go backwards once, or refuse to open; GPUs whose energy counter
//! is constant or reset. In each case `auto` skips or re-bases, a forced source is an error,
//! and nothing is ever reported as 0 J measured.

use std::sync::Arc;
use std::time::Duration;

use greenlab_meter::clock::Clock;
use greenlab_meter::nvml::{TraceBackend, TraceSample};
use greenlab_meter::perf::fake::{FakeCount, FakeCounters, write_pmu};
use greenlab_meter::powercap::fake::{FakeZone, set_energy, write_tree};
use greenlab_meter::process::fake::write_proc;
use greenlab_meter::{
    Backends, Domain, DomainReading, Joules, Measurement, Meter, MeterChoice, MeterError,
    MeterOptions, Provenance, Reading, Source, Tracker, select,
};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
}

/// Options that find nothing real: every hardware root points into `dir`.
fn options_in(dir: &std::path::Path) -> MeterOptions {
    MeterOptions {
        powercap_root: dir.join("powercap"),
        perf_root: dir.join("power"),
        gpus: false,
        probe: Duration::from_millis(30),
        ..MeterOptions::default()
    }
}

fn perf_backends(plan: Vec<FakeCount>) -> Backends {
    Backends {
        perf: Some(Box::new(move || Box::new(FakeCounters::new(plan.clone())))),
        gpu: None,
    }
}

/// No measurement may claim a counter's 0 J: a counter domain is either moving or unknown.
fn assert_no_silent_zero(m: &Measurement) {
    for d in &m.domains {
        if d.source == Source::Counter {
            assert!(
                d.energy.is_none_or(|e| e.0 > 0.0),
                "{} claims {:?} from a counter: {m:?}",
                d.domain,
                d.energy
            );
        }
    }
    if let Some(t) = m.total {
        assert!(t.0 > 0.0 || m.provenance() != Provenance::Counter, "{m:?}");
    }
}

fn busy(ms: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(ms);
    let mut x = 0u64;
    while std::time::Instant::now() < until {
        x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(7));
    }
    std::hint::black_box(x);
}

#[test]
fn a_vm_psys_event_that_opens_but_never_moves_is_skipped_by_auto_and_refused_when_forced() {
    let dir = tempdir();
    let options = options_in(dir.path());
    write_pmu(&options.perf_root, "0", &["energy-psys"]).unwrap_or_else(|e| panic!("{e}"));
    let backends = perf_backends(vec![FakeCount::Frozen(0)]);

    let auto = Tracker::with_backends(MeterChoice::Auto, &options, &backends)
        .unwrap_or_else(|e| panic!("{e}"));
    let notes = auto.notes().join("\n");
    assert!(
        notes.contains("perf power/energy-psys: opened, but did not change in 30 ms under load"),
        "{notes}"
    );
    assert!(notes.contains("estimated"), "{notes}");
    assert!(
        auto.describe().iter().all(|(_, s)| *s == Source::Estimated),
        "{:?}",
        auto.describe()
    );
    let id = auto.begin("sleep").unwrap_or_else(|e| panic!("{e}"));
    busy(20);
    let m = auto.end(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.provenance(), Provenance::Estimated);
    assert!(m.total.is_some_and(|t| t.0 > 0.0), "{m:?}");
    assert_no_silent_zero(&m);

    let forced = Tracker::with_backends(MeterChoice::Perf, &options, &backends).err();
    let text = forced.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(forced, Some(MeterError::NotMoving { .. })),
        "{forced:?}"
    );
    assert!(
        text.contains("perf power/energy-psys") && text.contains("--meter estimate"),
        "{text}"
    );
}

#[test]
fn a_permission_denied_perf_event_says_how_to_fix_it() {
    let dir = tempdir();
    let options = options_in(dir.path());
    write_pmu(&options.perf_root, "0", &["energy-pkg", "energy-ram"])
        .unwrap_or_else(|e| panic!("{e}"));
    let backends = perf_backends(vec![FakeCount::Refuses(libc_eacces())]);
    let auto = Tracker::with_backends(MeterChoice::Auto, &options, &backends)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        auto.notes().join("\n").contains("CAP_PERFMON"),
        "{:?}",
        auto.notes()
    );
    let forced = Tracker::with_backends(MeterChoice::Perf, &options, &backends).err();
    assert!(
        forced
            .as_ref()
            .is_some_and(|e| e.is_unsupported() && e.to_string().contains("perf_event_paranoid")),
        "{forced:?}"
    );
}

fn libc_eacces() -> i32 {
    13
}

#[test]
fn a_live_perf_event_with_a_dead_dram_domain_keeps_the_package_and_names_the_dram() {
    let dir = tempdir();
    let options = options_in(dir.path());
    write_pmu(&options.perf_root, "0", &["energy-pkg", "energy-ram"])
        .unwrap_or_else(|e| panic!("{e}"));
    let backends = perf_backends(vec![FakeCount::Steady(1 << 28), FakeCount::Frozen(5)]);
    let t = Tracker::with_backends(MeterChoice::Auto, &options, &backends)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.describe(),
        vec![(Domain::cpu_package(0), Source::Counter)]
    );
    let notes = t.notes().join("\n");
    assert!(
        notes.contains("perf power/energy-ram: opened, but did not change"),
        "{notes}"
    );
    assert!(notes.contains("memory energy is not included"), "{notes}");
}

#[test]
fn a_perf_counter_that_goes_backwards_is_rebased_and_the_window_spanning_it_is_not_measured() {
    let dir = tempdir();
    let mut options = options_in(dir.path());
    // No /proc here: nothing can stand in, so the window's energy must be unknown.
    options.proc_root = dir.path().join("no-proc");
    write_pmu(&options.perf_root, "0", &["energy-pkg"]).unwrap_or_else(|e| panic!("{e}"));
    // Reads: 1 at open, 2 and 3 as the tracker starts, then two per window (begin, end):
    // read 13 is the end of the fifth window.
    let events = FakeCounters::new(vec![FakeCount::ResetsAt {
        step: 1 << 30,
        at: 13,
        to: 3,
    }]);
    let root = options.perf_root.clone();
    let pmu =
        greenlab_meter::perf::PerfEvents::discover(&root, false).unwrap_or_else(|e| panic!("{e}"));
    let meter = greenlab_meter::PerfMeter::open(&root, pmu, Box::new(events))
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Tracker::from_meters(vec![Box::new(meter)], &options).unwrap_or_else(|e| panic!("{e}"));
    let mut spanning = None;
    let mut later = Vec::new();
    for i in 0..6 {
        let ((), m) = t
            .measure(&format!("w{i}"), || ())
            .unwrap_or_else(|e| panic!("{e}"));
        if m.total.is_none() {
            spanning = Some(m);
        } else {
            later.push(m);
        }
    }
    let spanning = spanning.unwrap_or_else(|| panic!("one window spans the reset: {later:?}"));
    assert!(
        spanning
            .unknown
            .as_deref()
            .is_some_and(|u| u.contains("reset")),
        "{spanning:?}"
    );
    assert!(
        spanning
            .warnings
            .iter()
            .any(|w| w.contains("went backwards"))
    );
    // Counting goes on: every other window has its 0.25 J (2^30 counts × 2^-32 J) per read.
    assert_eq!(later.len(), 5);
    for m in &later {
        assert_eq!(m.total, Some(Joules(0.25)), "{m:?}");
        assert_no_silent_zero(m);
    }
}

/// A hand-driven counter meter whose counter stops moving after `live_reads` reads, watched
/// with a short stall limit so the test need not wait a second.
struct Stopping {
    reads: u64,
    live_reads: u64,
    domains: [Domain; 1],
}

impl Meter for Stopping {
    fn name(&self) -> &'static str {
        "stopping"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        self.reads += 1;
        let n = self.reads.min(self.live_reads);
        Ok(Reading {
            domains: vec![DomainReading::new(Joules(n as f64), Source::Counter, n)],
            warnings: vec![],
        })
    }
    fn stall_after(&self) -> Option<Duration> {
        Some(Duration::from_millis(40))
    }
}

#[test]
fn a_counter_that_stops_mid_run_is_detected_and_estimated_in_its_place() {
    let options = MeterOptions {
        interval: Duration::from_millis(5),
        ..MeterOptions::default()
    };
    let meter = Stopping {
        reads: 0,
        live_reads: 10,
        domains: [Domain::cpu_package(0)],
    };
    let t = Tracker::from_meters(vec![Box::new(meter)], &options).unwrap_or_else(|e| panic!("{e}"));
    let id = t.begin("run").unwrap_or_else(|e| panic!("{e}"));
    // The sampler reads every 5 ms: the counter stops after ten reads and is declared frozen
    // 40 ms later.
    std::thread::sleep(Duration::from_millis(200));
    let m = t.end(id).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        m.warnings.iter().any(|w| w.contains("stopped moving")),
        "{:?}",
        m.warnings
    );
    let d = &m.domains[0];
    assert_eq!(d.source, Source::Estimated, "{m:?}");
    assert!(
        d.filled.as_deref().is_some_and(|f| f.contains("froze")),
        "{d:?}"
    );
    assert_eq!(m.provenance(), Provenance::Estimated);
    assert_no_silent_zero(&m);
}

#[test]
fn a_powercap_psys_zone_reading_zero_for_ever_is_never_used() {
    let dir = tempdir();
    let options = options_in(dir.path());
    write_tree(
        &options.powercap_root,
        &[FakeZone {
            dir: "intel-rapl:0",
            name: "psys",
            range_max_uj: 262_143_328_850,
            energy_uj: 0,
        }],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let auto = Tracker::new(MeterChoice::Auto, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        auto.notes()
            .join("\n")
            .contains("intel-rapl:0/energy_uj: opened, but did not change"),
        "{:?}",
        auto.notes()
    );
    assert!(auto.describe().iter().all(|(_, s)| *s == Source::Estimated));
    let err = Tracker::new(MeterChoice::Rapl, &options).err();
    assert!(matches!(err, Some(MeterError::NotMoving { .. })), "{err:?}");
}

#[test]
fn a_moving_powercap_tree_is_used() {
    let dir = tempdir();
    let options = options_in(dir.path());
    let root = options.powercap_root.clone();
    write_tree(
        &root,
        &[FakeZone {
            dir: "intel-rapl:0",
            name: "package-0",
            range_max_uj: 262_143_328_850,
            energy_uj: 1_000,
        }],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Something (the hardware) moves the counter while the probe runs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mover = {
        let stop = Arc::clone(&stop);
        let root = root.clone();
        std::thread::spawn(move || {
            let mut e = 1_000u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                e += 5_000;
                let _ = set_energy(&root, "intel-rapl:0", e);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let t = Tracker::new(MeterChoice::Rapl, &options);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = mover.join();
    let t = t.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.describe(),
        vec![(Domain::cpu_package(0), Source::Counter)]
    );
}

/// A clock that moves 10 ms every time it is read, so a replayed trace advances while the
/// probe reads it.
#[derive(Clone, Default)]
struct TickClock(Arc<std::sync::atomic::AtomicU64>);

impl Clock for TickClock {
    fn now(&self) -> Duration {
        let ms = self.0.fetch_add(10, std::sync::atomic::Ordering::SeqCst);
        Duration::from_millis(ms)
    }
}

/// Three GPUs over 100 s: 0 has a live counter (200 W), 1 a counter stuck at 0 and no power
/// (a vGPU), 2 a constant counter but 70 W of power samples.
fn gpu_trace() -> Vec<TraceSample> {
    let mut out = Vec::new();
    for k in 0..=10_000u64 {
        let at = Duration::from_millis(10 * k);
        out.push(TraceSample {
            at,
            device: 0,
            energy_mj: Some(2_000 * k),
            power_mw: 200_000,
        });
        out.push(TraceSample {
            at,
            device: 1,
            energy_mj: Some(0),
            power_mw: 0,
        });
        out.push(TraceSample {
            at,
            device: 2,
            energy_mj: Some(123_456),
            power_mw: 70_000,
        });
    }
    out
}

fn gpu_backends(trace: Vec<TraceSample>, processes: Option<Vec<(u32, u32, u32)>>) -> Backends {
    Backends {
        perf: None,
        gpu: Some(Box::new(move || {
            let clock = TickClock::default();
            let mut backend = TraceBackend::new(trace.clone(), vec![], Arc::new(clock.clone()));
            if let Some(p) = &processes {
                backend = backend.with_process_utilization(p.clone());
            }
            Ok((Box::new(backend), Arc::new(clock)))
        })),
    }
}

#[test]
fn gpus_whose_counter_is_dead_are_demoted_to_power_or_dropped_and_named() {
    let dir = tempdir();
    let mut options = options_in(dir.path());
    options.gpus = true;
    let t = Tracker::with_backends(
        MeterChoice::Auto,
        &options,
        &gpu_backends(gpu_trace(), None),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gpus: Vec<(Domain, Source)> = t
        .describe()
        .into_iter()
        .filter(|(d, _)| !d.is_cpu_side())
        .collect();
    assert_eq!(
        gpus,
        vec![
            (Domain::gpu(0), Source::Counter),
            (Domain::gpu(2), Source::IntegratedPower)
        ]
    );
    let notes = t.notes().join("\n");
    assert!(
        notes.contains("nvml gpu-1 (nvml device 1) energy counter: opened, but did not change"),
        "{notes}"
    );
    assert!(notes.contains("70.0 W"), "{notes}");
    // Forcing nvml with these devices still works (two of three move); a machine whose only
    // GPU is dead is an error.
    let only_dead: Vec<TraceSample> = gpu_trace().into_iter().filter(|s| s.device == 1).collect();
    let only_dead: Vec<TraceSample> = only_dead
        .into_iter()
        .map(|s| TraceSample { device: 0, ..s })
        .collect();
    let err =
        Tracker::with_backends(MeterChoice::Nvml, &options, &gpu_backends(only_dead, None)).err();
    assert!(matches!(err, Some(MeterError::NotMoving { .. })), "{err:?}");
}

#[test]
fn the_training_device_alone_is_measured_on_a_shared_machine() {
    let dir = tempdir();
    let mut options = options_in(dir.path());
    options.gpus = true;
    options.gpu_devices = Some(vec![2]);
    let t = Tracker::with_backends(
        MeterChoice::Nvml,
        &options,
        &gpu_backends(gpu_trace(), None),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.describe(),
        vec![(Domain::gpu(2), Source::IntegratedPower)]
    );
    options.gpu_devices = Some(vec![7]);
    let err = Tracker::with_backends(
        MeterChoice::Nvml,
        &options,
        &gpu_backends(gpu_trace(), None),
    )
    .err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("cuda:7")),
        "{err:?}"
    );
}

#[test]
fn a_reset_nvml_counter_keeps_counting_after_the_reset() {
    let mut trace = Vec::new();
    for k in 0..=1000u64 {
        let at = Duration::from_millis(10 * k);
        // 100 W; at 5 s the driver resets the counter to 0.
        let mj = if k < 500 {
            9_000_000 + 1_000 * k
        } else {
            1_000 * (k - 500)
        };
        trace.push(TraceSample {
            at,
            device: 0,
            energy_mj: Some(mj),
            power_mw: 100_000,
        });
    }
    let clock = greenlab_meter::ManualClock::new();
    let backend = TraceBackend::new(trace, vec![], Arc::new(clock.clone()));
    let mut meter =
        greenlab_meter::NvmlMeter::with_backend(Box::new(backend), None, Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
    let mut last = meter.read().unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..100 {
        clock.advance(Duration::from_millis(100));
        last = meter.read().unwrap_or_else(|e| panic!("{e}"));
    }
    let d = last.domains[0];
    assert_eq!(d.gaps, 1, "the reset is recorded");
    // 10 s at 100 W, less the 100 ms read interval that spans the reset.
    assert_eq!(d.energy, Joules(990.0));
}

#[test]
fn attributed_energy_is_this_process_trees_share_and_ignores_a_neighbour() {
    let dir = tempdir();
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(&proc_root).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        proc_root.join("cpuinfo"),
        "processor\t: 0\nprocessor\t: 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        proc_root.join("meminfo"),
        "MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Our tree: 40 (a worker) with child 41; machine busy 1000 ticks.
    write_proc(
        &proc_root,
        1000,
        &[(40, 100, 1000, &[41]), (41, 50, 0, &[])],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let options = MeterOptions {
        proc_root: proc_root.clone(),
        process: Some(40),
        ..MeterOptions::default()
    };
    let energy = Arc::new(std::sync::Mutex::new(0.0f64));
    let meter = Hand {
        energy: Arc::clone(&energy),
        updates: 0,
        domains: [Domain::cpu_package(0)],
    };
    let t = Tracker::from_meters(vec![Box::new(meter)], &options).unwrap_or_else(|e| panic!("{e}"));
    let run = |tree_ticks: (u64, u64), machine: u64, joules: f64| -> Measurement {
        let id = t.begin("trial").unwrap_or_else(|e| panic!("{e}"));
        write_proc(
            &proc_root,
            machine,
            &[(40, tree_ticks.0, 1000, &[41]), (41, tree_ticks.1, 0, &[])],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        *energy.lock().unwrap_or_else(|p| p.into_inner()) += joules;
        t.end(id).unwrap_or_else(|e| panic!("{e}"))
    };
    // Alone: the tree used 150 of the machine's 200 busy ticks.
    let alone = run((200, 100), 1200, 40.0);
    assert_eq!(alone.total, Some(Joules(40.0)));
    assert_eq!(alone.attributed, Some(Joules(30.0)));
    let a = alone
        .attribution
        .as_ref()
        .unwrap_or_else(|| panic!("attributed"));
    assert!((a.cpu_share - 0.75).abs() < 1e-12, "{a:?}");
    // A neighbour doubles the machine's busy time and its energy: the same work of ours is
    // still attributed the same.
    let crowded = run((300, 150), 1600, 80.0);
    assert_eq!(crowded.total, Some(Joules(80.0)));
    assert_eq!(crowded.attributed, Some(Joules(30.0)));
}

struct Hand {
    energy: Arc<std::sync::Mutex<f64>>,
    updates: u64,
    domains: [Domain; 1],
}

impl Meter for Hand {
    fn name(&self) -> &'static str {
        "hand"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        let e = *self.energy.lock().unwrap_or_else(|p| p.into_inner());
        self.updates += 1;
        Ok(Reading {
            domains: vec![DomainReading::new(Joules(e), Source::Counter, self.updates)],
            warnings: vec![],
        })
    }
}

#[test]
fn gpu_energy_is_attributed_by_nvml_per_process_utilisation_where_it_is_reported() {
    let dir = tempdir();
    let mut options = options_in(dir.path());
    options.gpus = true;
    let me = std::process::id();
    let t = Tracker::with_backends(
        MeterChoice::Nvml,
        &options,
        &gpu_backends(gpu_trace(), Some(vec![(0, me, 30), (0, me + 100_000, 90)])),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ((), m) = t
        .measure("gpu work", || busy(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let gpu0 = &m.domains[0];
    let machine = gpu0.energy.unwrap_or_else(|| panic!("{m:?}"));
    let attributed = gpu0.attributed.unwrap_or_else(|| panic!("{m:?}"));
    assert!((attributed.0 - machine.0 * 0.25).abs() < 1e-9, "{m:?}");
    let gpu2 = &m.domains[1];
    assert_eq!(
        gpu2.attributed, gpu2.energy,
        "no samples for device 2: whole device"
    );
    assert!(
        m.attribution
            .as_ref()
            .and_then(|a| a.gpu.as_deref())
            .is_some_and(|g| g.contains("whole device")),
        "{m:?}"
    );
}

#[test]
fn the_survey_lists_every_source_with_what_happened_to_it() {
    let dir = tempdir();
    let options = options_in(dir.path());
    write_pmu(&options.perf_root, "0", &["energy-psys"]).unwrap_or_else(|e| panic!("{e}"));
    let s = select::survey_with(&options, &perf_backends(vec![FakeCount::Frozen(0)]))
        .unwrap_or_else(|e| panic!("{e}"));
    let sources: Vec<&str> = s.candidates.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(
        sources,
        ["rapl (powercap)", "rapl (perf events)", "estimate"]
    );
    let perf = &s.candidates[1];
    assert!(
        perf.opened && !perf.used && !perf.domains[0].moved,
        "{perf:?}"
    );
    let estimate = &s.candidates[2];
    assert!(estimate.used);
    let auto = &s.choices[0];
    assert!(
        auto.domains.iter().all(|d| d.contains("estimate")),
        "{auto:?}"
    );
    let perf_choice = s.choices.iter().find(|c| c.choice == "perf");
    assert!(
        perf_choice
            .and_then(|c| c.error.as_deref())
            .is_some_and(|e| e.contains("did not change")),
        "{perf_choice:?}"
    );
}
