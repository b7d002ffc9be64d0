//! NVIDIA GPUs through NVML, behind a small seam (`GpuBackend`) so a recorded trace can stand
//! in for the hardware in tests.
//!
//! Per device: the total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, Volta and
//! newer) where supported, labelled `Counter`; otherwise power (`nvmlDeviceGetPowerUsage`)
//! sampled every `POWER_POLL` and integrated with the trapezoid rule, labelled
//! `IntegratedPower`. The library is loaded at run time (`nvml-wrapper` uses `libloading`),
//! so a binary built without a GPU runs everywhere; failure to load is `Unsupported`.
//!
//! Which GPUs: all, or those named by the `CUDA_VISIBLE_DEVICES` value the caller passes in
//! (indices or `GPU-` UUID prefixes; as CUDA does, the list stops at the first invalid entry).
//! Domain `gpu-N` is CUDA's device N, i.e. the N-th visible GPU.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Clock};
use crate::error::MeterError;
use crate::meter::{Domain, DomainReading, Meter, Reading};
use crate::units::{Joules, Source};

/// How often power is sampled on devices without an energy counter.
pub const POWER_POLL: Duration = Duration::from_millis(20);

/// The few NVML operations the meter needs. Implemented by `NvmlBackend` (the real library)
/// and `TraceBackend` (a recorded trace). Device numbers are NVML indices.
pub trait GpuBackend: Send {
    /// Number of GPUs NVML sees.
    fn device_count(&self) -> Result<u32, MeterError>;

    /// Total energy since the driver loaded, in millijoules; `Ok(None)` where the device has
    /// no energy counter (pre-Volta).
    fn energy_mj(&mut self, device: u32) -> Result<Option<u64>, MeterError>;

    /// Current power draw in milliwatts.
    fn power_mw(&mut self, device: u32) -> Result<u32, MeterError>;

    /// The NVML index of the device whose UUID starts with `uuid_prefix`, if any.
    fn index_of_uuid(&self, uuid_prefix: &str) -> Result<Option<u32>, MeterError> {
        let _ = uuid_prefix;
        Ok(None)
    }

    /// Per-process SM utilisation samples newer than `since_unix_us`: `(pid, sm_util %)` per
    /// sample, or `Ok(None)` where the device or backend does not keep per-process accounting.
    fn process_utilization(
        &mut self,
        device: u32,
        since_unix_us: u64,
    ) -> Result<Option<Vec<(u32, u32)>>, MeterError> {
        let _ = (device, since_unix_us);
        Ok(None)
    }
}

/// The real NVML, loaded at run time.
pub struct NvmlBackend {
    nvml: nvml_wrapper::Nvml,
}

impl NvmlBackend {
    /// Loads `libnvidia-ml.so` (from `library` if given) and initialises NVML.
    pub fn load(library: Option<&Path>) -> Result<NvmlBackend, MeterError> {
        let mut builder = nvml_wrapper::Nvml::builder();
        if let Some(lib) = library {
            builder.lib_path(lib.as_os_str());
        }
        builder
            .init()
            .map(|nvml| NvmlBackend { nvml })
            .map_err(|e| {
                MeterError::Unsupported(format!(
                    "cannot load nvml ({e}): no nvidia driver here; install the driver, pass \
                     --nvml-library PATH to libnvidia-ml.so, or measure the cpu only"
                ))
            })
    }
}

fn nvml_error(what: &str, device: u32, e: nvml_wrapper::error::NvmlError) -> MeterError {
    MeterError::Nvml(format!("{what} of nvml device {device}: {e}"))
}

impl GpuBackend for NvmlBackend {
    fn device_count(&self) -> Result<u32, MeterError> {
        self.nvml
            .device_count()
            .map_err(|e| MeterError::Nvml(format!("device count: {e}")))
    }

    fn energy_mj(&mut self, device: u32) -> Result<Option<u64>, MeterError> {
        let d = self
            .nvml
            .device_by_index(device)
            .map_err(|e| nvml_error("handle", device, e))?;
        match d.total_energy_consumption() {
            Ok(mj) => Ok(Some(mj)),
            Err(nvml_wrapper::error::NvmlError::NotSupported) => Ok(None),
            Err(e) => Err(nvml_error("total energy", device, e)),
        }
    }

    fn power_mw(&mut self, device: u32) -> Result<u32, MeterError> {
        let d = self
            .nvml
            .device_by_index(device)
            .map_err(|e| nvml_error("handle", device, e))?;
        d.power_usage().map_err(|e| nvml_error("power", device, e))
    }

    fn process_utilization(
        &mut self,
        device: u32,
        since_unix_us: u64,
    ) -> Result<Option<Vec<(u32, u32)>>, MeterError> {
        let d = self
            .nvml
            .device_by_index(device)
            .map_err(|e| nvml_error("handle", device, e))?;
        match d.process_utilization_stats(since_unix_us) {
            Ok(samples) => Ok(Some(
                samples.into_iter().map(|s| (s.pid, s.sm_util)).collect(),
            )),
            Err(
                nvml_wrapper::error::NvmlError::NotSupported
                | nvml_wrapper::error::NvmlError::NotFound
                | nvml_wrapper::error::NvmlError::NoPermission
                | nvml_wrapper::error::NvmlError::FailedToLoadSymbol(_),
            ) => Ok(None),
            Err(e) => Err(nvml_error("process utilisation", device, e)),
        }
    }

    fn index_of_uuid(&self, uuid_prefix: &str) -> Result<Option<u32>, MeterError> {
        for i in 0..self.device_count()? {
            let d = self
                .nvml
                .device_by_index(i)
                .map_err(|e| nvml_error("handle", i, e))?;
            let uuid = d.uuid().map_err(|e| nvml_error("uuid", i, e))?;
            if uuid.starts_with(uuid_prefix) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Resolves a `CUDA_VISIBLE_DEVICES` value into NVML indices, in CUDA order.
pub fn visible_devices(
    spec: Option<&str>,
    backend: &dyn GpuBackend,
) -> Result<Vec<u32>, MeterError> {
    let count = backend.device_count()?;
    let Some(spec) = spec else {
        return Ok((0..count).collect());
    };
    let mut out: Vec<u32> = Vec::new();
    for item in spec.split(',').map(str::trim) {
        let index = if let Ok(i) = item.parse::<i64>() {
            u32::try_from(i).ok().filter(|&i| i < count)
        } else if item.starts_with("GPU-") {
            backend.index_of_uuid(item)?
        } else if item.starts_with("MIG-") {
            return Err(MeterError::Unsupported(format!(
                "CUDA_VISIBLE_DEVICES names a MIG instance ({item}); nvml reports energy per \
                 physical gpu only: name the parent gpu instead"
            )));
        } else {
            None
        };
        // CUDA ignores everything from the first invalid entry on.
        match index {
            Some(i) if !out.contains(&i) => out.push(i),
            _ => break,
        }
    }
    Ok(out)
}

enum Mode {
    Counter {
        /// Millijoules counted since the meter was created, across re-bases.
        total_mj: u64,
        last_mj: u64,
    },
    Integrated {
        last_mw: u32,
        last_at: Duration,
        energy: Joules,
    },
}

struct Device {
    nvml_index: u32,
    mode: Mode,
    updates: u64,
    gaps: u64,
}

/// The NVML reader: one domain per visible GPU.
pub struct NvmlMeter {
    backend: Box<dyn GpuBackend>,
    clock: Arc<dyn Clock>,
    domains: Vec<Domain>,
    devices: Vec<Device>,
}

impl NvmlMeter {
    /// Loads the real NVML and measures the GPUs `cuda_visible_devices` selects (all if
    /// `None`). `Unsupported` when the library or any visible GPU is missing.
    pub fn load(
        library: Option<&Path>,
        cuda_visible_devices: Option<&str>,
    ) -> Result<NvmlMeter, MeterError> {
        let backend = NvmlBackend::load(library)?;
        Self::with_backend(Box::new(backend), cuda_visible_devices, clock::system())
    }

    /// A meter over any backend (a recorded trace in tests), on the given clock.
    pub fn with_backend(
        mut backend: Box<dyn GpuBackend>,
        cuda_visible_devices: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<NvmlMeter, MeterError> {
        let visible = visible_devices(cuda_visible_devices, backend.as_ref())?;
        if visible.is_empty() {
            return Err(MeterError::Unsupported(match cuda_visible_devices {
                Some(spec) => format!(
                    "CUDA_VISIBLE_DEVICES={spec:?} selects no gpu that nvml knows; unset it or \
                     name existing devices"
                ),
                None => "nvml loaded but reports no gpu".to_owned(),
            }));
        }
        let now = clock.now();
        let mut domains = Vec::new();
        let mut devices = Vec::new();
        for (cuda_index, &nvml_index) in visible.iter().enumerate() {
            let mode = match backend.energy_mj(nvml_index)? {
                Some(mj) => Mode::Counter {
                    total_mj: 0,
                    last_mj: mj,
                },
                None => Mode::Integrated {
                    last_mw: backend.power_mw(nvml_index)?,
                    last_at: now,
                    energy: Joules(0.0),
                },
            };
            domains.push(Domain::gpu(cuda_index as u32));
            devices.push(Device {
                nvml_index,
                mode,
                updates: 0,
                gaps: 0,
            });
        }
        Ok(NvmlMeter {
            backend,
            clock,
            domains,
            devices,
        })
    }

    /// The NVML index behind each domain, in domain order.
    pub fn nvml_indices(&self) -> Vec<u32> {
        self.devices.iter().map(|d| d.nvml_index).collect()
    }
}

impl Meter for NvmlMeter {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// An NVML error on one device does not fail the read: that device keeps its last value
    /// and the reading carries a warning (a flagged sample); the next good read covers the
    /// gap exactly (counter) or by one wider trapezoid (power). A counter that goes backwards
    /// was reset (a driver reload, a GPU reset): the device is re-based on the new value, the
    /// interval since the previous read counts as a gap (its energy is unknown), and counting
    /// goes on.
    fn read(&mut self) -> Result<Reading, MeterError> {
        let now = self.clock.now();
        let mut warnings = Vec::new();
        let mut domains = Vec::with_capacity(self.devices.len());
        for (dev, domain) in self.devices.iter_mut().zip(&self.domains) {
            match &mut dev.mode {
                Mode::Counter { total_mj, last_mj } => {
                    match self.backend.energy_mj(dev.nvml_index) {
                        Ok(Some(mj)) if mj >= *last_mj => {
                            if mj != *last_mj {
                                dev.updates += 1;
                            }
                            *total_mj += mj - *last_mj;
                            *last_mj = mj;
                        }
                        Ok(Some(mj)) => {
                            warnings.push(format!(
                                "{domain}: nvml energy counter went backwards ({} -> {mj} mJ): \
                                 counter reset; re-based, the energy since the previous read is \
                                 unknown",
                                *last_mj
                            ));
                            dev.gaps += 1;
                            *last_mj = mj;
                        }
                        Ok(None) => warnings.push(format!(
                            "{domain}: nvml stopped reporting the energy counter; sample ignored"
                        )),
                        Err(e) => warnings.push(format!("{domain}: {e}; sample skipped")),
                    }
                    domains.push(DomainReading {
                        energy: Joules::from_mj(*total_mj),
                        source: Source::Counter,
                        updates: dev.updates,
                        gaps: dev.gaps,
                    });
                }
                Mode::Integrated {
                    last_mw,
                    last_at,
                    energy,
                } => {
                    match self.backend.power_mw(dev.nvml_index) {
                        Ok(mw) => {
                            let dt = now.saturating_sub(*last_at).as_secs_f64();
                            *energy +=
                                Joules(0.5 * (f64::from(*last_mw) + f64::from(mw)) * 1e-3 * dt);
                            if mw != *last_mw {
                                dev.updates += 1;
                            }
                            *last_mw = mw;
                            *last_at = now;
                        }
                        Err(e) => warnings.push(format!("{domain}: {e}; sample skipped")),
                    }
                    domains.push(DomainReading {
                        energy: *energy,
                        source: Source::IntegratedPower,
                        updates: dev.updates,
                        gaps: dev.gaps,
                    });
                }
            }
        }
        Ok(Reading { domains, warnings })
    }

    fn stall_after(&self) -> Option<Duration> {
        // NVML refreshes the energy counter every few tens of milliseconds, and a GPU draws
        // tens of watts even when idle.
        Some(Duration::from_secs(2))
    }

    fn label(&self, index: usize) -> String {
        match (self.devices.get(index), self.domains.get(index)) {
            (Some(d), Some(domain)) => match d.mode {
                Mode::Counter { .. } => format!(
                    "nvml {domain} (nvml device {}) energy counter",
                    d.nvml_index
                ),
                Mode::Integrated { .. } => {
                    format!("nvml {domain} (nvml device {}) power", d.nvml_index)
                }
            },
            _ => "nvml".to_owned(),
        }
    }

    /// A device whose energy counter does not move (vGPU, boards that return a constant)
    /// switches to integrating power samples, provided the device reports a non-zero power.
    fn demote(&mut self, index: usize) -> Option<String> {
        let dev = self.devices.get_mut(index)?;
        if !matches!(dev.mode, Mode::Counter { .. }) {
            return None;
        }
        let mw = self.backend.power_mw(dev.nvml_index).ok()?;
        if mw == 0 {
            return None;
        }
        let total = match dev.mode {
            Mode::Counter { total_mj, .. } => Joules::from_mj(total_mj),
            Mode::Integrated { energy, .. } => energy,
        };
        dev.mode = Mode::Integrated {
            last_mw: mw,
            last_at: self.clock.now(),
            energy: total,
        };
        Some(format!(
            "its energy counter did not move, but it reports {:.1} W: power samples every {} ms \
             are integrated instead (integrated_power)",
            f64::from(mw) / 1000.0,
            POWER_POLL.as_millis()
        ))
    }

    fn process_share(&mut self, index: usize, pids: &[u32], since_unix_us: u64) -> Option<f64> {
        let dev = self.devices.get(index)?;
        let samples = self
            .backend
            .process_utilization(dev.nvml_index, since_unix_us)
            .ok()??;
        let all: u64 = samples.iter().map(|&(_, u)| u64::from(u)).sum();
        let ours: u64 = samples
            .iter()
            .filter(|(pid, _)| pids.contains(pid))
            .map(|&(_, u)| u64::from(u))
            .sum();
        // No sample names one of our processes while the device was busy: the driver sees
        // other pids than ours (a container's pid namespace), so the split cannot be trusted.
        if all == 0 || ours == 0 {
            return None;
        }
        Some((ours as f64 / all as f64).clamp(0.0, 1.0))
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.devices
            .iter()
            .any(|d| matches!(d.mode, Mode::Integrated { .. }))
            .then_some(POWER_POLL)
    }

    fn resolution(&self) -> Duration {
        if self.poll_interval().is_some() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(20)
        }
    }
}

/// One recorded NVML sample: time since the trace started, device, energy counter (if the
/// device has one) and power.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceSample {
    /// Time since the start of the trace.
    pub at: Duration,
    /// NVML device index.
    pub device: u32,
    /// Total energy counter in mJ, `None` where the device has none.
    pub energy_mj: Option<u64>,
    /// Power in mW.
    pub power_mw: u32,
}

/// Replays a recorded trace as a `GpuBackend`: each query returns the device's latest sample
/// at or before the clock's time (so tests drive it with a `ManualClock`).
pub struct TraceBackend {
    samples: Vec<TraceSample>,
    uuids: Vec<String>,
    clock: Arc<dyn Clock>,
    /// Queries (device, at) at which to fail, to test error handling.
    failures: Vec<(u32, Duration)>,
    /// Per-process utilisation to report: `(device, pid, sm_util %)`; `None`: not kept.
    processes: Option<Vec<(u32, u32, u32)>>,
}

impl TraceBackend {
    /// A backend over `samples` (any order), with one UUID per device.
    pub fn new(
        mut samples: Vec<TraceSample>,
        uuids: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> TraceBackend {
        samples.sort_by_key(|s| (s.device, s.at));
        TraceBackend {
            samples,
            uuids,
            clock,
            failures: Vec::new(),
            processes: None,
        }
    }

    /// Makes the backend report per-process utilisation: `(device, pid, sm_util %)`.
    pub fn with_process_utilization(mut self, samples: Vec<(u32, u32, u32)>) -> TraceBackend {
        self.processes = Some(samples);
        self
    }

    /// Parses a trace CSV with header `t_s,device,energy_mj,power_mw` (empty `energy_mj`
    /// where the device has no counter).
    pub fn parse_csv(text: &str) -> Result<Vec<TraceSample>, MeterError> {
        let path = Path::new("<nvml trace>");
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = || MeterError::malformed(path, format!("line {}: {line:?}", n + 1));
            if f.len() != 4 {
                return Err(bad());
            }
            let t: f64 = f[0].parse().map_err(|_| bad())?;
            out.push(TraceSample {
                at: Duration::try_from_secs_f64(t).map_err(|_| bad())?,
                device: f[1].parse().map_err(|_| bad())?,
                energy_mj: if f[2].is_empty() {
                    None
                } else {
                    Some(f[2].parse().map_err(|_| bad())?)
                },
                power_mw: f[3].parse().map_err(|_| bad())?,
            });
        }
        Ok(out)
    }

    /// Makes queries for `device` fail once the clock reaches `at` and before the next sample.
    pub fn fail_at(&mut self, device: u32, at: Duration) {
        self.failures.push((device, at));
    }

    fn current(&self, device: u32) -> Result<TraceSample, MeterError> {
        let now = self.clock.now();
        if self.failures.iter().any(|&(d, at)| {
            d == device
                && now >= at
                && !self
                    .samples
                    .iter()
                    .any(|s| s.device == device && s.at > at && s.at <= now)
        }) {
            return Err(MeterError::Nvml(format!(
                "replayed failure of device {device} (GPU is lost)"
            )));
        }
        self.samples
            .iter()
            .rfind(|s| s.device == device && s.at <= now)
            .copied()
            .ok_or_else(|| MeterError::Nvml(format!("trace has no sample for device {device}")))
    }
}

impl GpuBackend for TraceBackend {
    fn device_count(&self) -> Result<u32, MeterError> {
        Ok(self.samples.iter().map(|s| s.device + 1).max().unwrap_or(0))
    }

    fn energy_mj(&mut self, device: u32) -> Result<Option<u64>, MeterError> {
        self.current(device).map(|s| s.energy_mj)
    }

    fn power_mw(&mut self, device: u32) -> Result<u32, MeterError> {
        self.current(device).map(|s| s.power_mw)
    }

    fn process_utilization(
        &mut self,
        device: u32,
        _since_unix_us: u64,
    ) -> Result<Option<Vec<(u32, u32)>>, MeterError> {
        Ok(self.processes.as_ref().map(|all| {
            all.iter()
                .filter(|(d, _, _)| *d == device)
                .map(|&(_, pid, util)| (pid, util))
                .collect()
        }))
    }

    fn index_of_uuid(&self, uuid_prefix: &str) -> Result<Option<u32>, MeterError> {
        Ok(self
            .uuids
            .iter()
            .position(|u| u.starts_with(uuid_prefix))
            .map(|i| i as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::meter::check_meter;

    /// Two GPUs over 1 s at 10 ms steps: device 0 has an energy counter growing at 250 W;
    /// device 1 has none and its power ramps linearly from 100 W to 300 W.
    fn trace() -> Vec<TraceSample> {
        let mut out = Vec::new();
        for k in 0..=100u32 {
            let at = Duration::from_millis(10 * u64::from(k));
            out.push(TraceSample {
                at,
                device: 0,
                energy_mj: Some(5_000_000 + 2_500 * u64::from(k)),
                power_mw: 250_000,
            });
            out.push(TraceSample {
                at,
                device: 1,
                energy_mj: None,
                power_mw: 100_000 + 2_000 * k,
            });
        }
        out
    }

    fn meter(visible: Option<&str>) -> (NvmlMeter, ManualClock) {
        let clock = ManualClock::new();
        let backend = TraceBackend::new(
            trace(),
            vec!["GPU-aaaa-1111".into(), "GPU-bbbb-2222".into()],
            Arc::new(clock.clone()),
        );
        let m = NvmlMeter::with_backend(Box::new(backend), visible, Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        (m, clock)
    }

    #[test]
    fn counter_is_exact_and_power_is_integrated_by_trapezoid() {
        let (mut m, clock) = meter(None);
        assert_eq!(m.poll_interval(), Some(POWER_POLL));
        for _ in 0..100 {
            clock.advance(Duration::from_millis(10));
            let r = m.read().unwrap_or_else(|e| panic!("{e}"));
            assert!(r.warnings.is_empty());
        }
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.domains[0].source, Source::Counter);
        assert_eq!(r.domains[0].energy, Joules(250.0));
        assert_eq!(r.domains[1].source, Source::IntegratedPower);
        // A linear ramp from 100 W to 300 W over 1 s: the trapezoid rule is exact, 200 J.
        assert!(
            (r.domains[1].energy.0 - 200.0).abs() < 1e-9,
            "{:?}",
            r.domains[1]
        );
        assert_eq!(r.domains[1].updates, 100);
    }

    #[test]
    fn cuda_visible_devices_orders_and_filters() {
        let (m, _) = meter(Some("1,0"));
        assert_eq!(m.nvml_indices(), vec![1, 0]);
        assert_eq!(m.domains(), &[Domain::gpu(0), Domain::gpu(1)]);
        let (m, _) = meter(Some("GPU-bbbb"));
        assert_eq!(m.nvml_indices(), vec![1]);
        // CUDA stops at the first invalid entry.
        let (m, _) = meter(Some("0,7,1"));
        assert_eq!(m.nvml_indices(), vec![0]);
        let clock = ManualClock::new();
        let empty = NvmlMeter::with_backend(
            Box::new(TraceBackend::new(trace(), vec![], Arc::new(clock.clone()))),
            Some(""),
            Arc::new(clock),
        )
        .err();
        assert!(
            empty.as_ref().is_some_and(MeterError::is_unsupported),
            "{empty:?}"
        );
    }

    #[test]
    fn an_error_mid_run_is_a_flagged_sample_and_loses_no_energy() {
        let clock = ManualClock::new();
        let mut backend = TraceBackend::new(trace(), vec![], Arc::new(clock.clone()));
        // Device 0 fails for queries in [505 ms, 510 ms).
        backend.fail_at(0, Duration::from_millis(505));
        let mut m = NvmlMeter::with_backend(Box::new(backend), None, Arc::new(clock.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut flagged = Vec::new();
        for _ in 0..200 {
            clock.advance(Duration::from_millis(5));
            let r = m.read().unwrap_or_else(|e| panic!("{e}"));
            flagged.extend(r.warnings);
        }
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert!(
            flagged[0].contains("gpu-0") && flagged[0].contains("lost"),
            "{flagged:?}"
        );
        let r = m.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.domains[0].energy, Joules(250.0));
        // Polling a 10 ms staircase every 5 ms adds half a step of hold error (0.5 J).
        assert!(
            (r.domains[1].energy.0 - 199.5).abs() < 1e-6,
            "{:?}",
            r.domains[1]
        );
    }

    #[test]
    fn trace_csv_round_trip() {
        let text = "t_s,device,energy_mj,power_mw\n0.0,0,100,5000\n0.5,1,,7000\n";
        let s = TraceBackend::parse_csv(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].energy_mj, None);
        assert_eq!(s[1].at, Duration::from_millis(500));
        assert!(TraceBackend::parse_csv("h\n1,2,3\n").is_err());
    }

    #[test]
    fn conformance_on_the_trace() {
        let (mut m, clock) = meter(None);
        let mut advance = |_| clock.advance(Duration::from_millis(30));
        check_meter(&mut m, 20, true, &mut advance).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn missing_library_is_unsupported() {
        let err = NvmlMeter::load(Some(Path::new("/nonexistent/libnvidia-ml.so.1")), None).err();
        assert!(
            err.as_ref().is_some_and(MeterError::is_unsupported),
            "{err:?}"
        );
    }
}
