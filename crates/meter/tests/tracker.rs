//! The Tracker over fake meters: nesting, edges, sync hook, warnings, exact wrap totals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenlab_meter::powercap::fake::{FakeZone, set_energy, write_tree};
use greenlab_meter::{
    Domain, DomainReading, Joules, ManualClock, Meter, MeterChoice, MeterError, MeterOptions,
    PowercapMeter, PowercapOptions, Reading, Source, Tracker, Watts,
};

/// A counter meter whose two domains the test moves by hand (no polling, no thread).
struct HandMeter {
    domains: Vec<Domain>,
    energy: Arc<Mutex<[f64; 2]>>,
    updates: u64,
    last: [f64; 2],
    resolution: Duration,
}

impl HandMeter {
    fn new(resolution: Duration) -> (HandMeter, Arc<Mutex<[f64; 2]>>) {
        let energy = Arc::new(Mutex::new([0.0, 0.0]));
        (
            HandMeter {
                domains: vec![Domain::cpu_package(0), Domain::gpu(0)],
                energy: Arc::clone(&energy),
                updates: 0,
                last: [0.0, 0.0],
                resolution,
            },
            energy,
        )
    }
}

impl Meter for HandMeter {
    fn name(&self) -> &'static str {
        "hand"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        let e = *self.energy.lock().unwrap_or_else(|p| p.into_inner());
        if e != self.last {
            self.updates += 1;
            self.last = e;
        }
        Ok(Reading {
            domains: vec![
                DomainReading::new(Joules(e[0]), Source::Counter, self.updates),
                DomainReading::new(Joules(e[1]), Source::IntegratedPower, self.updates),
            ],
            warnings: vec![],
        })
    }
    fn resolution(&self) -> Duration {
        self.resolution
    }
}

fn add(e: &Mutex<[f64; 2]>, cpu: f64, gpu: f64) {
    let mut g = e.lock().unwrap_or_else(|p| p.into_inner());
    g[0] += cpu;
    g[1] += gpu;
}

#[test]
fn windows_nest_and_overlap_with_exact_energies_and_sources() {
    let (meter, energy) = HandMeter::new(Duration::ZERO);
    let mut tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tracker.sampler_interval(),
        None,
        "no meter polls: no thread"
    );
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&syncs);
    tracker.set_sync(Box::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    let outer = tracker.begin("epoch").unwrap_or_else(|e| panic!("{e}"));
    add(&energy, 5.0, 1.0);
    let inner = tracker.begin("step").unwrap_or_else(|e| panic!("{e}"));
    add(&energy, 3.0, 2.0);
    let m_inner = tracker.end(inner).unwrap_or_else(|e| panic!("{e}"));
    add(&energy, 2.0, 0.5);
    let m_outer = tracker.end(outer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        4,
        "sync at both edges of both windows"
    );
    assert_eq!(m_inner.name, "step");
    assert_eq!(m_inner.total, Some(Joules(5.0)));
    assert_eq!(m_outer.total, Some(Joules(13.5)));
    assert_eq!(m_outer.domains[0].domain, "cpu-package-0");
    assert_eq!(m_outer.domains[0].energy, Some(Joules(10.0)));
    assert_eq!(m_outer.domains[1].energy, Some(Joules(3.5)));
    assert_eq!(m_outer.domains[0].source, Source::Counter);
    assert_eq!(
        m_outer.source(),
        Source::IntegratedPower,
        "weakest source wins"
    );
    assert_eq!(m_inner.domains[0].updates, 1);
    assert_eq!(m_outer.domains[0].updates, 3);
    assert_eq!(
        tracker.describe(),
        vec![
            (Domain::cpu_package(0), Source::Counter),
            (Domain::gpu(0), Source::IntegratedPower)
        ]
    );
    // Average power is total over duration, and a peak (when reported) is never below it.
    let average = m_outer
        .average_power
        .unwrap_or_else(|| panic!("{m_outer:?}"));
    if let Some(p) = m_outer.peak_power {
        assert!(p.0 >= average.0 * (1.0 - 1e-9));
    }
    assert!(
        (average.0 * m_outer.duration.0 - m_outer.total.unwrap_or_default().0).abs() < 1e-6,
        "{m_outer:?}"
    );
}

#[test]
fn each_window_ends_once() {
    let (meter, _) = HandMeter::new(Duration::ZERO);
    let tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let id = tracker.begin("a").unwrap_or_else(|e| panic!("{e}"));
    assert!(tracker.end(id).is_ok());
    assert!(matches!(tracker.end(id), Err(MeterError::UnknownWindow(_))));
}

#[test]
fn a_counter_window_without_an_update_is_not_measured_never_zero() {
    // Nothing can stand in (no /proc here): the unresolved window is unknown, with why.
    let no_proc = MeterOptions {
        proc_root: std::path::PathBuf::from("/nonexistent/proc"),
        ..MeterOptions::default()
    };
    let (meter, _) = HandMeter::new(Duration::from_secs(3600));
    let tracker =
        Tracker::from_meters(vec![Box::new(meter)], &no_proc).unwrap_or_else(|e| panic!("{e}"));
    let ((), m) = tracker
        .measure("tiny", || ())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.domains[0].energy, None, "{m:?}");
    assert!(
        m.domains[0]
            .unknown
            .as_deref()
            .is_some_and(|u| u.contains("shorter than the sensor resolution")),
        "{m:?}"
    );
    assert_eq!(m.total, None);
    assert_eq!(m.provenance(), greenlab_meter::Provenance::NotMeasured);
    let (meter, _) = HandMeter::new(Duration::ZERO);
    let tracker =
        Tracker::from_meters(vec![Box::new(meter)], &no_proc).unwrap_or_else(|e| panic!("{e}"));
    let ((), m) = tracker
        .measure("still", || std::hint::black_box(()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        m.unknown
            .as_deref()
            .is_some_and(|u| u.contains("no counter update")),
        "{m:?}"
    );
    // With /proc readable, the estimate stands in for the cpu side, labelled as such; the
    // power-integrated gpu-0 stays what it is.
    let (meter, _) = HandMeter::new(Duration::ZERO);
    let tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let ((), m) = tracker
        .measure("still", || std::hint::black_box(()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.domains[0].source, Source::Estimated, "{m:?}");
    assert!(m.domains[0].filled.is_some(), "{m:?}");
    assert!(m.total.is_some(), "{m:?}");
    assert_eq!(m.provenance(), greenlab_meter::Provenance::Mixed);
}

#[test]
fn tracker_over_a_wrapping_powercap_tree_is_exact() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let range_max = 999_999; // 1 J range
    write_tree(
        root,
        &[
            FakeZone {
                dir: "intel-rapl:0",
                name: "package-0",
                range_max_uj: range_max,
                energy_uj: 700_000,
            },
            FakeZone {
                dir: "intel-rapl:0:0",
                name: "core",
                range_max_uj: range_max,
                energy_uj: 0,
            },
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clock = ManualClock::new();
    let options = PowercapOptions {
        prefer_psys: false,
        max_domain_power: Watts(100.0),
        // This fake counter moves only when the test writes it, not in real time, so on a
        // loaded machine it could look frozen for a second; freezing is tested in
        // tests/untrusted.rs.
        stall_after: None,
    };
    let meter = PowercapMeter::with_clock(root, &options, Arc::new(clock.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // 1 J at 100 W wraps every 10 ms: the tracker must poll every 5 ms.
    assert_eq!(tracker.sampler_interval(), Some(Duration::from_millis(5)));
    let id = tracker.begin("wraps").unwrap_or_else(|e| panic!("{e}"));
    let mut raw = 700_000u64;
    for _ in 0..50 {
        // 300 000 µJ per 4 ms step (75 W): the counter wraps 15 times over the run. The
        // clock moves after the write: a sampler read that sees the new value before the
        // clock has moved leaves it for the next read (no wrap can be told from a reset in
        // no time), never miscounts it as a reset.
        raw = (raw + 300_000) % (range_max + 1);
        set_energy(root, "intel-rapl:0", raw).unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::from_millis(4));
        tracker.poll_now().unwrap_or_else(|e| panic!("{e}"));
    }
    let m = tracker.end(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        m.domains.len(),
        1,
        "core is nested in the package: never summed"
    );
    assert_eq!(m.domains[0].energy, Some(Joules::from_uj(15_000_000)));
    assert_eq!(m.domains[0].source, Source::Counter);
    assert_eq!(m.domains[0].updates, 50);
}

#[test]
fn forced_meters_say_why_they_are_unavailable_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = MeterOptions {
        powercap_root: dir.path().join("no-powercap"),
        perf_root: dir.path().join("no-perf"),
        gpus: false,
        ..MeterOptions::default()
    };
    let err = Tracker::new(MeterChoice::Rapl, &options).err();
    assert!(
        err.as_ref().is_some_and(MeterError::is_unsupported),
        "{err:?}"
    );
    let err = Tracker::new(MeterChoice::Perf, &options).err();
    assert!(
        err.as_ref().is_some_and(MeterError::is_unsupported),
        "{err:?}"
    );
    let auto = Tracker::new(MeterChoice::Auto, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(auto.describe().iter().all(|(_, s)| *s == Source::Estimated));
    let notes = auto.notes().join("\n");
    assert!(
        notes.contains("powercap") && notes.contains("perf") && notes.contains("estimated"),
        "{notes}"
    );
    let ((), m) = auto.measure("x", || ()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.source(), Source::Estimated);
}

#[test]
fn estimate_only_never_fails_and_is_labelled() {
    let t = Tracker::estimate_only();
    assert!(!t.describe().is_empty());
    assert!(t.describe().iter().all(|(_, s)| *s == Source::Estimated));
    let id = t.begin("e").unwrap_or_else(|e| panic!("{e}"));
    let mut x = 0u64;
    for i in 0..2_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
    }
    std::hint::black_box(x);
    let m = t.end(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.source(), Source::Estimated);
    assert!(
        m.total.is_some_and(|t| t.0 > 0.0),
        "the idle term alone is positive over a non-empty window"
    );
    assert!(
        m.net(Watts(1e9)) == Some(Joules(0.0)),
        "net energy is floored at zero"
    );
}

#[test]
fn invalid_options_are_rejected_before_touching_hardware() {
    let options = MeterOptions {
        cpu_tdp_w: Some(Watts(-3.0)),
        ..MeterOptions::default()
    };
    let err = Tracker::new(MeterChoice::Estimate, &options).err();
    assert!(
        matches!(err, Some(MeterError::InvalidConfig { .. })),
        "{err:?}"
    );
    let options = MeterOptions {
        interval: Duration::ZERO,
        ..MeterOptions::default()
    };
    assert!(Tracker::new(MeterChoice::Estimate, &options).is_err());
    assert!("nonsense".parse::<MeterChoice>().is_err());
    assert_eq!("NVML".parse::<MeterChoice>().ok(), Some(MeterChoice::Nvml));
}

#[test]
fn tracker_is_send_and_sync_and_windows_work_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tracker>();
    let (meter, energy) = HandMeter::new(Duration::ZERO);
    let tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let id = tracker.begin("outer").unwrap_or_else(|e| panic!("{e}"));
    std::thread::scope(|s| {
        s.spawn(|| {
            let ((), m) = tracker
                .measure("in-thread", || add(&energy, 2.0, 0.0))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.total, Some(Joules(2.0)));
        });
    });
    let m = tracker.end(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.total, Some(Joules(2.0)));
}

#[test]
fn concurrent_lanes_share_the_energy_and_never_count_it_twice() {
    use std::sync::Barrier;
    let (meter, energy) = HandMeter::new(Duration::ZERO);
    let tracker = Tracker::from_meters(vec![Box::new(meter)], &MeterOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // A window on a thread that is not a lane (the whole run) sees everything.
    let whole = tracker.begin("whole run").unwrap_or_else(|e| panic!("{e}"));
    let step = Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let _lane = tracker.lane();
            let w = tracker.begin("trial a").unwrap_or_else(|e| panic!("{e}"));
            add(&energy, 2.0, 0.0); // a alone: all 2 J to a
            step.wait(); // 1: b may open
            step.wait(); // 2: b is open
            add(&energy, 4.0, 1.0); // a and b: 2.5 J each
            let m = tracker.end(w).unwrap_or_else(|e| panic!("{e}"));
            step.wait(); // 3: a closed
            m
        });
        let b = s.spawn(|| {
            let _lane = tracker.lane();
            step.wait(); // 1
            let w = tracker.begin("trial b").unwrap_or_else(|e| panic!("{e}"));
            step.wait(); // 2
            step.wait(); // 3
            add(&energy, 6.0, 0.0); // b alone: 6 J to b
            tracker.end(w).unwrap_or_else(|e| panic!("{e}"))
        });
        (
            a.join().unwrap_or_else(|_| panic!("lane a panicked")),
            b.join().unwrap_or_else(|_| panic!("lane b panicked")),
        )
    });
    let whole = tracker.end(whole).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(whole.total, Some(Joules(13.0)));
    assert_eq!(whole.concurrency, 1, "the enclosing window is not a lane");
    assert_eq!(a.total, Some(Joules(4.5)));
    assert_eq!(a.domains[0].energy, Some(Joules(4.0)));
    assert_eq!(a.domains[1].energy, Some(Joules(0.5)));
    assert_eq!(b.total, Some(Joules(8.5)));
    assert_eq!(
        a.total.zip(b.total).map(|(a, b)| a + b),
        whole.total,
        "shares add up to the reading"
    );
    assert_eq!((a.concurrency, b.concurrency), (2, 2));
    assert!(
        a.warnings.iter().any(|w| w.contains("split equally")),
        "{:?}",
        a.warnings
    );

    // A lane alone gets the plain counter difference and no sharing warning.
    let _lane = tracker.lane();
    let w = tracker.begin("alone").unwrap_or_else(|e| panic!("{e}"));
    add(&energy, 3.0, 0.0);
    let m = tracker.end(w).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.total, m.concurrency), (Some(Joules(3.0)), 1));
    assert!(!m.warnings.iter().any(|w| w.contains("split equally")));
}
