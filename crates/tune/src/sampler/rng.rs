//! Deterministic per-trial random numbers.
//!
//! Every sampler derives its randomness from `(seed, trial number, stream)` alone, so the same
//! seed gives the same suggestion for trial `n` whichever worker asks and in whatever order the
//! trials are created. The generator is xoshiro256++ seeded through SplitMix64; it is written
//! out here (rather than taken from `rand`) so that suggestions never change with a dependency
//! upgrade.

/// SplitMix64 step: a good 64-bit mixer, used to seed and to hash.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a few words into one (order matters).
pub fn mix(words: &[u64]) -> u64 {
    let mut state = 0x6A09_E667_F3BC_C908u64;
    let mut out = 0;
    for &w in words {
        state ^= w;
        out = splitmix64(&mut state);
        state = out;
    }
    out
}

/// A small, fast, reproducible generator (xoshiro256++).
#[derive(Clone, Debug)]
pub struct TrialRng {
    s: [u64; 4],
}

impl TrialRng {
    /// A generator determined by `seed`, the trial `number` and a `stream` (so that one sampler
    /// can draw independent sequences for different purposes).
    pub fn new(seed: u64, number: u64, stream: u64) -> TrialRng {
        TrialRng::from_seed(mix(&[seed, number, stream]))
    }

    /// A generator determined by one 64-bit seed.
    pub fn from_seed(seed: u64) -> TrialRng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        TrialRng { s }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[0, n)` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // Lemire's multiply-shift with rejection.
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (radius, angle) = self.box_muller();
        radius * angle.cos()
    }

    /// Two independent standard normal deviates from one Box–Muller draw (one logarithm, square
    /// root and sine-cosine for both); the first is the one [`normal`](Self::normal) returns.
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let (radius, angle) = self.box_muller();
        let (sin, cos) = angle.sin_cos();
        (radius * cos, radius * sin)
    }

    /// Box–Muller's radius `√(−2 ln u₁)` and angle `2π u₂`.
    fn box_muller(&mut self) -> (f64, f64) {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2)
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_stream_and_streams_differ() {
        let a: Vec<u64> = {
            let mut r = TrialRng::new(7, 3, 0);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = TrialRng::new(7, 3, 0);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = TrialRng::new(7, 4, 0);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = TrialRng::from_seed(1);
        let mut seen = [0usize; 5];
        for _ in 0..1000 {
            let x = r.below(5) as usize;
            seen[x] += 1;
        }
        assert!(seen.iter().all(|&c| c > 150), "{seen:?}");
        let f = r.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
