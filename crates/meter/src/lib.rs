//! greenlab-meter: measure the energy of a piece of work, exactly where the hardware allows,
//! and say how every joule was obtained.
//!
//! Readers implement one small trait, [`Meter`]: cumulative energy per [`Domain`], already
//! corrected for counter wrap and re-based after resets, each domain labelled with its
//! [`Source`] (`Counter`, `IntegratedPower`, `Estimated`). No source is trusted because it
//! exists: [`select`] probes every counter and uses only those that move. Unknown is never
//! zero: a [`Measurement`] whose counter did not move, froze or reset has `None`, with the
//! reason, and its attributed figure ([`process`]) separates this process tree's share from a
//! neighbour's. The readers are CPU RAPL through powercap sysfs
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
//! match m.attributed {
//!     Some(j) => println!("{sum}: {j:.3} over {:.3} ({})", m.duration, m.provenance()),
//!     None => println!("{sum}: energy not measured ({:?})", m.unknown),
//! }
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
pub mod process;
pub mod select;
mod sysfs;
pub mod tracker;
pub mod units;
pub mod wrap;

pub use carbon::{CarbonIntensity, emissions, intensity_for};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::MeterError;
pub use estimate::{EstimateMeter, EstimateModel};
pub use meter::{Domain, DomainKind, DomainReading, Meter, Reading, check_meter};
pub use nvml::NvmlMeter;
pub use perf::PerfMeter;
pub use powercap::{PowercapMeter, PowercapOptions};
pub use select::{Backends, Candidate, DomainCheck, Survey, survey};
pub use tracker::{
    Attribution, DomainEnergy, EnergyBasis, LaneGuard, Measurement, MeterChoice, MeterOptions,
    Sample, Tracker, WindowId,
};
pub use units::{GramsCo2e, Joules, Provenance, Seconds, Source, Watts};
