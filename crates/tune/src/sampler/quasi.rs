//! Quasi-random (low-discrepancy) search: scrambled Halton and scrambled Sobol sequences.
//!
//! Trial number `n` gets point `n` of the sequence, so concurrent workers never repeat a point
//! and fill the space more evenly than independent uniform draws. Both sequences are scrambled
//! from the seed (same seed ⇒ same points): Halton by a random permutation of the digits at
//! each position of each base, Sobol by a random linear matrix scramble followed by a random
//! digital shift (the scheme SciPy uses), which keeps the (t, m, s)-net property.

use crate::TuneError;
use crate::sampler::rng::TrialRng;
use crate::sampler::{SampleContext, Sampler};
use crate::space::Params;

/// Joe & Kuo (2008) direction-number seeds (`new-joe-kuo-6.21201`) for dimensions 2 to 32,
/// one row each: `s a m_1 ... m_s` (degree, polynomial coefficients, initial numbers).
/// Dimension 1 is the van der Corput sequence and needs none.
const JOE_KUO: &str = "1 0 1|2 1 1 3|3 1 1 3 1|3 2 1 1 1|4 1 1 1 3 3|4 4 1 3 5 13|5 2 1 1 5 5 17|\
5 4 1 1 5 5 5|5 7 1 1 7 11 19|5 11 1 1 5 1 1|5 13 1 1 1 3 11|5 14 1 3 5 5 31|6 1 1 3 3 9 7 49|\
6 13 1 1 1 15 21 21|6 16 1 3 1 13 27 49|6 19 1 1 1 15 7 5|6 22 1 3 1 15 13 25|\
6 25 1 1 5 5 19 61|7 1 1 3 7 11 23 15 103|7 4 1 3 7 13 13 15 69|7 7 1 1 3 13 7 35 63|\
7 8 1 3 5 9 1 25 53|7 14 1 3 1 13 9 35 107|7 19 1 3 1 5 27 61 31|7 21 1 1 5 11 19 41 61|\
7 28 1 3 5 3 3 13 69|7 31 1 1 7 13 1 19 1|7 32 1 3 7 5 13 19 59|7 37 1 1 3 9 25 29 41|\
7 41 1 3 5 13 23 1 55|7 42 1 3 7 3 13 59 17";

/// Highest dimension the Sobol sampler supports.
pub const SOBOL_MAX_DIMS: usize = 32;

const BITS: usize = 32;

/// Direction numbers `V_1..V_32` of one dimension (bit 31 is the first binary digit).
fn direction_numbers(dim: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dim == 0 {
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = 1u32 << (BITS - 1 - k);
        }
        return v;
    }
    let row: Vec<u32> = JOE_KUO
        .split('|')
        .nth(dim - 1)
        .unwrap_or("1 0 1")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let s = row[0] as usize;
    let a = row[1];
    for k in 0..s.min(BITS) {
        v[k] = row[2 + k] << (BITS - 1 - k);
    }
    for k in s..BITS {
        let mut x = v[k - s] ^ (v[k - s] >> s);
        for j in 1..s {
            if (a >> (s - 1 - j)) & 1 == 1 {
                x ^= v[k - j];
            }
        }
        v[k] = x;
    }
    v
}

/// Scrambled Sobol sequence sampler (up to [`SOBOL_MAX_DIMS`] parameters).
#[derive(Clone, Debug)]
pub struct SobolSampler {
    seed: u64,
    scramble: bool,
}

impl SobolSampler {
    /// A Sobol sampler scrambled from `seed`.
    pub fn new(seed: u64) -> SobolSampler {
        SobolSampler {
            seed,
            scramble: true,
        }
    }

    /// The plain (unscrambled) sequence, whatever the seed; mostly for tests.
    pub fn unscrambled() -> SobolSampler {
        SobolSampler {
            seed: 0,
            scramble: false,
        }
    }

    /// Point `index` of the (scrambled) sequence in `dims` dimensions.
    pub fn point(&self, index: u64, dims: usize) -> Result<Vec<f64>, TuneError> {
        if dims > SOBOL_MAX_DIMS {
            return Err(TuneError::Sampler {
                sampler: "sobol".into(),
                message: format!(
                    "{dims} parameters exceed the {SOBOL_MAX_DIMS} dimensions with direction \
                     numbers; use the halton sampler"
                ),
            });
        }
        if index >= 1u64 << BITS {
            return Err(TuneError::Sampler {
                sampler: "sobol".into(),
                message: "the sequence has 2^32 points; no more can be drawn".into(),
            });
        }
        let gray = index ^ (index >> 1);
        Ok((0..dims)
            .map(|d| {
                let mut v = direction_numbers(d);
                let mut shift = 0u32;
                if self.scramble {
                    let mut rng = TrialRng::new(self.seed, d as u64, 0x736f_626f);
                    linear_scramble(&mut v, &mut rng);
                    shift = rng.next_u64() as u32;
                }
                let mut x = shift;
                for (k, vk) in v.iter().enumerate() {
                    if (gray >> k) & 1 == 1 {
                        x ^= vk;
                    }
                }
                // Centre of the dyadic cell, so no coordinate is exactly 0.
                (x as f64 + 0.5) / (1u64 << BITS) as f64
            })
            .collect())
    }
}

/// Multiplies each direction number by a random lower-triangular binary matrix with unit
/// diagonal (digit `r` of the result depends on digits `0..=r` of the input).
fn linear_scramble(v: &mut [u32; BITS], rng: &mut TrialRng) {
    let rows: Vec<u32> = (0..BITS)
        .map(|r| {
            let own = 1u32 << (BITS - 1 - r);
            // Columns 0..r are the r most significant bits.
            let above = if r == 0 {
                0
            } else {
                (rng.next_u64() as u32) & !((1u32 << (BITS - r)) - 1)
            };
            own | above
        })
        .collect();
    for vk in v.iter_mut() {
        let mut out = 0u32;
        for (r, row) in rows.iter().enumerate() {
            if (*vk & row).count_ones() % 2 == 1 {
                out |= 1u32 << (BITS - 1 - r);
            }
        }
        *vk = out;
    }
}

impl Sampler for SobolSampler {
    fn name(&self) -> &str {
        "sobol"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let point = self.point(ctx.number, ctx.space.dims())?;
        ctx.space.from_unit(&point)
    }
}

/// Scrambled Halton sequence sampler (any number of parameters; best below ~10).
#[derive(Clone, Debug)]
pub struct HaltonSampler {
    seed: u64,
    scramble: bool,
}

impl HaltonSampler {
    /// A Halton sampler scrambled from `seed`.
    pub fn new(seed: u64) -> HaltonSampler {
        HaltonSampler {
            seed,
            scramble: true,
        }
    }

    /// The plain (unscrambled) sequence, whatever the seed; mostly for tests.
    pub fn unscrambled() -> HaltonSampler {
        HaltonSampler {
            seed: 0,
            scramble: false,
        }
    }

    /// Point `index` of the (scrambled) sequence in `dims` dimensions.
    pub fn point(&self, index: u64, dims: usize) -> Vec<f64> {
        primes(dims)
            .into_iter()
            .enumerate()
            .map(|(d, base)| {
                // Enough digits to resolve 2^40 points in every base.
                let digits = ((40.0 * 2f64.ln()) / (base as f64).ln()).ceil() as usize;
                let mut rng = TrialRng::new(self.seed, d as u64, 0x6861_6c74);
                let mut rest = index;
                let mut scale = 1.0 / base as f64;
                let mut x = 0.0;
                for _ in 0..digits {
                    let digit = rest % base;
                    rest /= base;
                    let digit = if self.scramble {
                        let mut perm: Vec<u64> = (0..base).collect();
                        rng.shuffle(&mut perm);
                        perm[digit as usize]
                    } else {
                        digit
                    };
                    x += digit as f64 * scale;
                    scale /= base as f64;
                    if !self.scramble && rest == 0 {
                        break;
                    }
                }
                x.clamp(0.0, 1.0)
            })
            .collect()
    }
}

impl Sampler for HaltonSampler {
    fn name(&self) -> &str {
        "halton"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let point = self.point(ctx.number, ctx.space.dims());
        ctx.space.from_unit(&point)
    }
}

/// The first `n` primes.
fn primes(n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    let mut candidate = 2u64;
    while out.len() < n {
        if out
            .iter()
            .take_while(|&&p| p * p <= candidate)
            .all(|&p| !candidate.is_multiple_of(p))
        {
            out.push(candidate);
        }
        candidate += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscrambled_sobol_matches_the_reference_sequence() {
        // First points of the Joe–Kuo Sobol sequence in 3 dimensions (as SciPy with
        // scramble=False gives them), shifted to cell centres by 2^-33.
        let s = SobolSampler::unscrambled();
        let expected = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25],
            [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
        ];
        for (i, row) in expected.iter().enumerate() {
            let p = s.point(i as u64, 3).unwrap();
            for (a, b) in p.iter().zip(row) {
                assert!((a - b).abs() < 1e-9, "point {i}: {p:?} vs {row:?}");
            }
        }
    }

    #[test]
    fn scrambled_sobol_keeps_one_point_per_dyadic_interval() {
        // Any 2^m consecutive points from index 0 put exactly one point in each interval
        // [k/2^m, (k+1)/2^m) of every coordinate, scrambled or not.
        let s = SobolSampler::new(42);
        for d in 0..SOBOL_MAX_DIMS {
            let mut cells = [0u32; 16];
            for i in 0..16 {
                let u = s.point(i, SOBOL_MAX_DIMS).unwrap()[d];
                cells[(u * 16.0) as usize] += 1;
            }
            assert!(cells.iter().all(|&c| c == 1), "dim {d}: {cells:?}");
        }
        assert_ne!(
            s.point(1, 2).unwrap(),
            SobolSampler::new(43).point(1, 2).unwrap()
        );
        assert!(s.point(0, SOBOL_MAX_DIMS + 1).is_err());
    }

    #[test]
    fn halton_matches_the_radical_inverse_and_scrambles_per_seed() {
        let h = HaltonSampler::unscrambled();
        let p = h.point(5, 2);
        // 5 = 101 in base 2 -> 0.101b = 0.625; 5 = 12 in base 3 -> 0.21 = 2/3 + 1/9.
        assert!((p[0] - 0.625).abs() < 1e-12);
        assert!((p[1] - (2.0 / 3.0 + 1.0 / 9.0)).abs() < 1e-12);
        let a = HaltonSampler::new(1);
        assert_eq!(a.point(7, 4), HaltonSampler::new(1).point(7, 4));
        assert_ne!(a.point(7, 4), HaltonSampler::new(2).point(7, 4));
        // Scrambled Halton still stratifies base 3 in the second coordinate.
        let mut cells = [0u32; 3];
        for i in 0..9 {
            cells[(a.point(i, 2)[1] * 3.0) as usize] += 1;
        }
        assert_eq!(cells, [3, 3, 3]);
    }
}
