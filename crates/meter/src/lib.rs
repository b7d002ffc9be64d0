//! greenlab-meter: measure the energy of a piece of work, exactly where the hardware allows,
//! and say how every joule was obtained.
//!
//! Readers implement one small trait, [`Meter`]: cumulative energy per [`Domain`], already
//! corrected for counter wrap, each domain labelled with its [`Source`] (`Counter`,
//! `IntegratedPower`, `Estimated`). The readers are CPU RAPL through powercap sysfs
//! ([`PowercapMeter`]) and through perf events ([`PerfMeter`]), NVIDIA GPUs through NVML
//! ([`NvmlMeter`], library loaded at run time), and an estimate from CPU utilisation × TDP
//! ([`EstimateMeter`]) for machines with no readable counter. A [`Tracker`] owns the readers,
//! picks the best source per domain ([`MeterChoice::Auto`]), polls in a background thread only
//! when a reader needs it, and turns named, nestable windows into [`Measurement`]s. Carbon is
//! a separate step on top of energy ([`carbon`]).
//!
//! What it does not do: decide anything (that is for the tuner and the reports), read
//! environment variables (the binary passes `CUDA_VISIBLE_DEVICES` in [`MeterOptions`]), or
//! hide an estimate behind a measured-looking number.
//!
//! ```no_run
//! use greenlab_meter::{MeterChoice, MeterOptions, Tracker};
//!
//! let tracker = Tracker::new(MeterChoice::Auto, &MeterOptions::default())?;
//! let (sum, m) = tracker.measure("work", || (0..1_000_000u64).sum::<u64>())?;
//! println!("{sum}: {:.3} over {:.3} ({})", m.total, m.duration, m.source());
//! # Ok::<(), greenlab_meter::MeterError>(())
//! ```

pub mod carbon;
pub mod clock;
pub mod error;
pub mod estimate;
pub mod meter;
pub mod nvml;
pub mod perf;
pub mod powercap;
mod sysfs;
pub mod tracker;
pub mod units;
pub mod wrap;

pub use carbon::{CarbonIntensity, emissions, intensity_for};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::MeterError;
pub use estimate::EstimateMeter;
pub use meter::{Domain, DomainKind, DomainReading, Meter, Reading, check_meter};
pub use nvml::NvmlMeter;
pub use perf::PerfMeter;
pub use powercap::{PowercapMeter, PowercapOptions};
pub use tracker::{
    DomainEnergy, LaneGuard, Measurement, MeterChoice, MeterOptions, Sample, Tracker, WindowId,
};
pub use units::{GramsCo2e, Joules, Seconds, Source, Watts};
