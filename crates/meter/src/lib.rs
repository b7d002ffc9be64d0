//! greenlab-meter: energy measurement (being built; see issue 2).

pub mod units;

pub use units::{Joules, Seconds, Source, Watts};
