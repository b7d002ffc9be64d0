//! Exact accumulation of a wrapping hardware counter.
//!
//! A RAPL counter read through powercap counts microjoules from 0 up to `max_energy_range_uj`
//! and then starts again at 0. Between two reads it can wrap any number of times; the reads
//! themselves can only tell "less than one full range" apart, so the reader must be polled at
//! least once per range at the highest plausible power (see `PowercapMeter::poll_interval`).
//! Given that, this accumulator is exact over any number of wraps: the total is the sum of the
//! per-read deltas, each taken modulo the counter's range.

/// The increase from `prev` to `now` of a counter whose values lie in `0..=range_max`,
/// assuming it wrapped at most once. `None` if either value lies outside the range.
pub fn wrapped_delta(prev: u64, now: u64, range_max: u64) -> Option<u64> {
    if prev > range_max || now > range_max {
        return None;
    }
    if now >= prev {
        Some(now - prev)
    } else {
        // Up to range_max, one step to 0, then up to now.
        Some(range_max - prev + 1 + now)
    }
}

/// Accumulates a wrapping counter exactly, counting how often its value changed and how often
/// it had to be re-based after a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrapCounter {
    range_max: u64,
    last: u64,
    total: u128,
    updates: u64,
    resets: u64,
}

/// The outcome of offering a new raw value to a `WrapCounter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Increase since the previous value, modulo the range.
    pub delta: u64,
    /// Whether the raw value went down (one wrap assumed).
    pub wrapped: bool,
}

impl WrapCounter {
    /// Starts at raw value `first`; `None` if it lies outside `0..=range_max`.
    pub fn new(range_max: u64, first: u64) -> Option<WrapCounter> {
        (first <= range_max).then_some(WrapCounter {
            range_max,
            last: first,
            total: 0,
            updates: 0,
            resets: 0,
        })
    }

    /// What moving to raw value `now` would add, without committing it.
    pub fn peek(&self, now: u64) -> Option<Step> {
        wrapped_delta(self.last, now, self.range_max).map(|delta| Step {
            delta,
            wrapped: now < self.last,
        })
    }

    /// Moves to raw value `now` and returns the step taken.
    pub fn advance(&mut self, now: u64) -> Option<Step> {
        let step = self.peek(now)?;
        if step.delta > 0 {
            self.updates += 1;
        }
        self.total += u128::from(step.delta);
        self.last = now;
        Some(step)
    }

    /// Takes raw value `now` as the new base without adding anything: the counter was reset (it
    /// went backwards by more than a wrap can explain), so the increase since the last value is
    /// unknown. `None` (and nothing changes) if `now` lies outside the range.
    pub fn rebase(&mut self, now: u64) -> Option<()> {
        (now <= self.range_max).then(|| {
            self.last = now;
            self.resets += 1;
        })
    }

    /// Number of re-bases (resets) since construction.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Accumulated increase since construction, in counter units.
    pub fn total(&self) -> u128 {
        self.total
    }

    /// Number of reads that saw the value change.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The most recent raw value.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The number of counter units in one full range (`range_max + 1`).
    pub fn modulus(&self) -> u128 {
        u128::from(self.range_max) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_rebase_adds_nothing_and_is_counted() {
        let mut c = WrapCounter::new(99, 10).unwrap_or_else(|| panic!("in range"));
        c.advance(40);
        assert_eq!(c.rebase(5), Some(()));
        c.advance(7);
        assert_eq!(c.total(), 32, "30 before the reset, 2 after it");
        assert_eq!(c.resets(), 1);
        assert_eq!(c.rebase(100), None, "out of range");
        assert_eq!(c.last(), 7);
    }

    #[test]
    fn one_wrap_by_hand() {
        // Range 0..=9: from 8, +5 lands on 3.
        assert_eq!(wrapped_delta(8, 3, 9), Some(5));
        assert_eq!(wrapped_delta(3, 3, 9), Some(0));
        assert_eq!(wrapped_delta(9, 0, 9), Some(1));
        assert_eq!(wrapped_delta(0, 10, 9), None);
    }

    proptest! {
        /// Any number of wraps, any range: the accumulated total equals the true energy as
        /// long as each read sees less than one full range.
        #[test]
        fn total_is_exact_over_many_wraps(
            range_max in 1u64..(1u64 << 40),
            start_frac in 0.0f64..1.0,
            steps in proptest::collection::vec(0.0f64..1.0, 0..200),
        ) {
            let modulus = u128::from(range_max) + 1;
            let start = ((range_max as f64) * start_frac) as u64;
            let mut c = WrapCounter::new(range_max, start).unwrap_or_else(|| panic!("start in range"));
            let mut truth: u128 = 0;
            let mut raw = u128::from(start);
            let mut wraps = 0u32;
            for f in steps {
                // Strictly less than one range per read.
                let inc = ((range_max as f64) * f) as u128;
                truth += inc;
                raw += inc;
                if raw >= modulus {
                    raw -= modulus;
                    wraps += 1;
                }
                let step = c.advance(raw as u64).unwrap_or_else(|| panic!("raw in range"));
                prop_assert_eq!(u128::from(step.delta), inc);
            }
            prop_assert_eq!(c.total(), truth);
            prop_assert!(u128::from(wraps) <= truth / modulus + 1);
        }

        /// Values outside the range are rejected, never folded into the total.
        #[test]
        fn out_of_range_is_rejected(range_max in 0u64..1000, over in 1u64..1000) {
            let mut c = WrapCounter::new(range_max, 0).unwrap_or_else(|| panic!("0 in range"));
            prop_assert_eq!(c.advance(range_max + over), None);
            prop_assert_eq!(c.total(), 0);
        }
    }
}
