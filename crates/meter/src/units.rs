//! Physical quantities as types, so a joule is never mistaken for a watt or a string.
//!
//! Each unit is a transparent `f64` newtype: it serialises as a bare number (the unit is the
//! field's type, documented where it is used), and it displays with its symbol.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};
use std::time::Duration;

use serde::{Deserialize, Serialize};

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, $symbol:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            /// The unit's symbol, as used in `Display` and in output files.
            pub const SYMBOL: &'static str = $symbol;

            /// The bare number in this unit.
            pub fn value(self) -> f64 {
                self.0
            }

            /// The larger of two quantities (NaN-tolerant: a NaN operand loses).
            pub fn max(self, other: Self) -> Self {
                Self(self.0.max(other.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match f.precision() {
                    Some(p) => write!(f, "{:.*} {}", p, self.0, $symbol),
                    None => write!(f, "{} {}", self.0, $symbol),
                }
            }
        }

        impl Add for $name {
            type Output = Self;
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }

        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }

        impl AddAssign for $name {
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }

        impl SubAssign for $name {
            fn sub_assign(&mut self, rhs: Self) {
                self.0 -= rhs.0;
            }
        }

        impl Mul<f64> for $name {
            type Output = Self;
            fn mul(self, rhs: f64) -> Self {
                Self(self.0 * rhs)
            }
        }

        impl Div<f64> for $name {
            type Output = Self;
            fn div(self, rhs: f64) -> Self {
                Self(self.0 / rhs)
            }
        }

        impl Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                Self(iter.map(|x| x.0).sum())
            }
        }
    };
}

unit!(
    /// Energy in joules.
    Joules,
    "J"
);
unit!(
    /// Power in watts.
    Watts,
    "W"
);
unit!(
    /// Time in seconds.
    Seconds,
    "s"
);
unit!(
    /// Emissions in grams of CO2-equivalent.
    GramsCo2e,
    "gCO2e"
);

impl Joules {
    /// Joules per kilowatt-hour.
    pub const PER_KWH: f64 = 3.6e6;

    /// From microjoules (the unit of powercap's `energy_uj`).
    pub fn from_uj(uj: u64) -> Joules {
        Joules(uj as f64 * 1e-6)
    }

    /// From millijoules (the unit of NVML's total-energy counter).
    pub fn from_mj(mj: u64) -> Joules {
        Joules(mj as f64 * 1e-3)
    }

    /// This energy in kilowatt-hours.
    pub fn kwh(self) -> f64 {
        self.0 / Self::PER_KWH
    }

    /// Average power over `duration`; `None` when the duration is not positive.
    pub fn per(self, duration: Seconds) -> Option<Watts> {
        (duration.0 > 0.0).then(|| Watts(self.0 / duration.0))
    }
}

impl Watts {
    /// From milliwatts (the unit of NVML's power reading).
    pub fn from_mw(mw: u64) -> Watts {
        Watts(mw as f64 * 1e-3)
    }

    /// Energy used at this power for `duration`.
    pub fn over(self, duration: Seconds) -> Joules {
        Joules(self.0 * duration.0)
    }
}

impl Mul<Seconds> for Watts {
    type Output = Joules;
    fn mul(self, rhs: Seconds) -> Joules {
        self.over(rhs)
    }
}

impl Div<Seconds> for Joules {
    type Output = Watts;
    fn div(self, rhs: Seconds) -> Watts {
        Watts(self.0 / rhs.0)
    }
}

impl Seconds {
    /// This time as a `Duration` (negative and NaN become zero).
    pub fn as_duration(self) -> Duration {
        Duration::try_from_secs_f64(self.0).unwrap_or(Duration::ZERO)
    }
}

impl From<Duration> for Seconds {
    fn from(d: Duration) -> Seconds {
        Seconds(d.as_secs_f64())
    }
}

impl GramsCo2e {
    /// These emissions in kilograms (CodeCarbon's unit).
    pub fn kg(self) -> f64 {
        self.0 / 1000.0
    }
}

/// How an energy figure was obtained. Ordered from weakest to strongest evidence, so the
/// minimum over a set of domains is the source of their sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Modelled from utilisation and a power figure (TDP); no hardware counter was read.
    Estimated,
    /// Power samples from a sensor, integrated over time (trapezoid rule).
    IntegratedPower,
    /// A hardware energy counter (RAPL, NVML total energy), read at the window edges.
    Counter,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Estimated => "estimated",
            Source::IntegratedPower => "integrated_power",
            Source::Counter => "counter",
        })
    }
}

/// What a set of energy figures is, for the one line a report or a verdict prints about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// No figure is known.
    NotMeasured,
    /// Every figure is modelled (utilisation × TDP).
    Estimated,
    /// Every figure is integrated power samples.
    IntegratedPower,
    /// Every figure is a hardware counter's difference.
    Counter,
    /// Figures of several kinds, or some known and some not.
    Mixed,
}

impl Provenance {
    /// The provenance of a set of figures, each given by its source (`None`: not measured).
    pub fn of(parts: impl IntoIterator<Item = Option<Source>>) -> Provenance {
        let mut seen: Option<Option<Source>> = None;
        let mut mixed = false;
        for p in parts {
            match seen {
                None => seen = Some(p),
                Some(s) if s != p => mixed = true,
                Some(_) => {}
            }
        }
        match (seen, mixed) {
            (_, true) => Provenance::Mixed,
            (None, _) | (Some(None), _) => Provenance::NotMeasured,
            (Some(Some(Source::Estimated)), _) => Provenance::Estimated,
            (Some(Some(Source::IntegratedPower)), _) => Provenance::IntegratedPower,
            (Some(Some(Source::Counter)), _) => Provenance::Counter,
        }
    }

    /// The provenance of several sets of figures: theirs when they agree, `Mixed` otherwise,
    /// `NotMeasured` for none.
    pub fn combine(parts: impl IntoIterator<Item = Provenance>) -> Provenance {
        let mut out: Option<Provenance> = None;
        for p in parts {
            out = Some(match out {
                None => p,
                Some(q) if q == p => q,
                Some(_) => Provenance::Mixed,
            });
        }
        out.unwrap_or(Provenance::NotMeasured)
    }

    /// Whether any of the figures was measured or estimated at all.
    pub fn is_known(self) -> bool {
        self != Provenance::NotMeasured
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provenance::NotMeasured => "not measured",
            Provenance::Estimated => "estimated",
            Provenance::IntegratedPower => "integrated power",
            Provenance::Counter => "counter",
            Provenance::Mixed => "mixed",
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn provenance_of_sets() {
        use super::{Provenance, Source};
        assert_eq!(Provenance::of([]), Provenance::NotMeasured);
        assert_eq!(Provenance::of([None, None]), Provenance::NotMeasured);
        assert_eq!(
            Provenance::of([Some(Source::Estimated), Some(Source::Estimated)]),
            Provenance::Estimated
        );
        assert_eq!(
            Provenance::of([Some(Source::Counter), None]),
            Provenance::Mixed
        );
        assert_eq!(
            Provenance::of([Some(Source::Counter), Some(Source::IntegratedPower)]),
            Provenance::Mixed
        );
        assert_eq!(Provenance::Mixed.to_string(), "mixed");
        assert_eq!(
            Provenance::combine([Provenance::Counter, Provenance::Counter]),
            Provenance::Counter
        );
        assert_eq!(
            Provenance::combine([Provenance::Counter, Provenance::NotMeasured]),
            Provenance::Mixed
        );
        assert_eq!(Provenance::combine([]), Provenance::NotMeasured);
    }

    use super::*;

    #[test]
    fn power_times_time_is_energy() {
        let e = Watts(20.0) * Seconds(3.0);
        assert_eq!(e, Joules(60.0));
        assert_eq!(e / Seconds(3.0), Watts(20.0));
        assert!((Joules(3.6e6).kwh() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sources_order_from_weakest() {
        assert!(Source::Estimated < Source::IntegratedPower);
        assert!(Source::IntegratedPower < Source::Counter);
        assert_eq!(Source::IntegratedPower.to_string(), "integrated_power");
        assert_eq!(
            serde_json::to_string(&Source::IntegratedPower)
                .ok()
                .as_deref(),
            Some("\"integrated_power\"")
        );
    }

    #[test]
    fn conversions_keep_units() {
        assert_eq!(Joules::from_uj(2_500_000), Joules(2.5));
        assert_eq!(Joules::from_mj(1500), Joules(1.5));
        assert_eq!(Joules(7.2e6).kwh(), 2.0);
        assert_eq!(Joules(10.0).per(Seconds(4.0)), Some(Watts(2.5)));
        assert_eq!(Joules(10.0).per(Seconds(0.0)), None);
        assert_eq!(Watts(3.0) * Seconds(2.0), Joules(6.0));
        assert_eq!(Watts::from_mw(250), Watts(0.25));
        assert_eq!(Seconds(-1.0).as_duration(), Duration::ZERO);
        assert_eq!(Seconds::from(Duration::from_millis(1500)), Seconds(1.5));
    }

    #[test]
    fn display_carries_the_symbol() {
        assert_eq!(format!("{:.2}", Joules(1.0 / 3.0)), "0.33 J");
        assert_eq!(Watts(4.0).to_string(), "4 W");
        let total: Joules = [Joules(1.0), Joules(2.0)].into_iter().sum();
        assert_eq!(total, Joules(3.0));
        assert_eq!(
            serde_json::to_string(&Seconds(1.5)).ok().as_deref(),
            Some("1.5")
        );
    }
}
