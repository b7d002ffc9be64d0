//! Which vector instructions the engine's own kernels use, chosen at run time.
//!
//! The kernels in this module tree are plain loops over `f32` slices that the compiler
//! vectorises. Compiled for the x86-64 baseline they would only use SSE2, whatever the machine
//! has; each hot loop is therefore also compiled for AVX2 + FMA and for AVX-512 (see
//! [`multiversion!`]) and the [`Simd`] level picks one version at run time. Matrix products go
//! through `gemm`, whose kernels are chosen by the same level (`super::gemm`).
//!
//! The level is detected once per engine ([`Simd::detect`]); a lower one can be asked for
//! ([`Simd::limited_to`]) to see how a machine without AVX-512 would fare on the same code.

use std::fmt;
use std::str::FromStr;

/// Vector instruction sets, from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SimdLevel {
    /// The target's baseline (SSE2 on x86-64; whatever the target guarantees elsewhere).
    Baseline,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/DQ/VL with AVX2 and FMA (x86-64-v4).
    Avx512,
}

impl SimdLevel {
    /// The name used on the command line and in results: `baseline`, `avx2`, `avx512`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimdLevel::Baseline => "baseline",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The widest level this CPU supports.
    pub fn detect() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            let v4 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl");
            let v3 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if v4 && v3 {
                return SimdLevel::Avx512;
            }
            if v3 {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Baseline
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SimdLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<SimdLevel, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "baseline" | "sse2" => Ok(SimdLevel::Baseline),
            "avx2" => Ok(SimdLevel::Avx2),
            "avx512" | "avx-512" => Ok(SimdLevel::Avx512),
            other => Err(format!(
                "unknown instruction set {other:?}; use baseline, avx2 or avx512"
            )),
        }
    }
}

/// A vector instruction level this CPU is known to support: the only way to run the AVX2 and
/// AVX-512 versions of the kernels, so they never run where the instructions are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Simd(SimdLevel);

impl Simd {
    /// The widest level this CPU supports.
    pub fn detect() -> Simd {
        Simd(SimdLevel::detect())
    }

    /// At most `level`: the detected level if it is lower, `level` otherwise.
    pub fn limited_to(level: SimdLevel) -> Simd {
        Simd(SimdLevel::detect().min(level))
    }

    /// The level in use.
    pub fn level(self) -> SimdLevel {
        self.0
    }
}

/// Defines `fn name(simd: Simd, args…)` that runs `body` compiled for the level `simd` names:
/// the body is inlined into one function per instruction set, each compiled with that set's
/// target features, so the compiler vectorises its loops for it. Keep bodies free of calls to
/// functions that are not `#[inline(always)]` (or generic and small) in the hot loop: a call
/// that is not inlined runs at the baseline.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(simd: $crate::ops::simd::Simd, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }

            match simd.level() {
                // SAFETY: a `Simd` above the baseline is only made after the CPU was found to
                // support that level (`Simd::detect`, `Simd::limited_to`).
                #[cfg(target_arch = "x86_64")]
                $crate::ops::simd::SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::ops::simd::SimdLevel::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    multiversion! {
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn every_level_up_to_the_detected_one_computes_the_same() {
        let a: Vec<f32> = (0..100).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..100).map(|i| 1.0 - i as f32 * 0.01).collect();
        let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let simd = Simd::limited_to(level);
            assert!(simd.level() <= level);
            assert!(simd.level() <= SimdLevel::detect());
            let got = dot(simd, &a, &b);
            assert!(
                (got - expected).abs() <= 1e-3 * expected.abs(),
                "{level}: {got}"
            );
        }
    }

    #[test]
    fn levels_parse_and_print() {
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            assert_eq!(level.as_str().parse::<SimdLevel>(), Ok(level));
        }
        assert_eq!("AVX-512".parse::<SimdLevel>(), Ok(SimdLevel::Avx512));
        assert!("neon".parse::<SimdLevel>().is_err());
    }
}
