//! The engine factory the training commands share (meters are built in `meters`).
//!
//! Engines are compiled in by cargo features (`burn`, the default; `torch`); naming one that
//! this binary was built without is an error that says how to get it.

use anyhow::{Context, bail};
use greenlab_engine::Engine;

/// The engines this binary was built with, for messages and `--help`.
pub fn available_engines() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "burn") {
        v.push("burn");
    }
    if cfg!(feature = "torch") {
        v.push("torch");
    }
    v
}

/// The environment variable that limits the Burn engine's vector instructions (`avx2`,
/// `avx512`, `baseline`; unset: the widest the CPU has), so one machine can show what a CPU
/// without AVX-512 would do (`bench/train_throughput.sh --isa avx2`).
#[cfg(feature = "burn")]
pub const SIMD_VARIABLE: &str = "GREENLAB_SIMD";

/// Builds the engine called `name` on `device` (`cpu`, `cuda`, `cuda:N`), with `threads`
/// worker threads where the engine lets us choose.
pub fn make_engine(
    name: &str,
    device: &str,
    threads: Option<usize>,
) -> anyhow::Result<Box<dyn Engine>> {
    let _ = (device, threads);
    match name {
        #[cfg(feature = "burn")]
        "burn" => Ok(Box::new(burn_engine(device, threads)?)),
        #[cfg(feature = "torch")]
        "torch" => Ok(Box::new(
            greenlab_torch::TorchEngine::with_threads(device, threads.unwrap_or(0))
                .context("cannot start the torch engine")?,
        )),
        #[cfg(not(feature = "burn"))]
        "burn" => bail!(missing("burn")),
        #[cfg(not(feature = "torch"))]
        "torch" => bail!(missing("torch")),
        other => bail!(
            "unknown engine {other:?}; this build has: {}",
            available_engines().join(", ")
        ),
    }
}

/// The Burn engine on `device` with `threads` threads and the vector level `GREENLAB_SIMD`
/// asks for.
#[cfg(feature = "burn")]
pub fn burn_engine(
    device: &str,
    threads: Option<usize>,
) -> anyhow::Result<greenlab_burn::BurnEngine> {
    greenlab_burn::BurnEngine::for_device(
        device,
        greenlab_burn::BurnOptions {
            threads,
            simd: simd_from_env()?,
        },
    )
    .context("cannot start the burn engine")
}

/// The vector level `GREENLAB_SIMD` asks for, if set.
#[cfg(feature = "burn")]
fn simd_from_env() -> anyhow::Result<Option<greenlab_burn::SimdLevel>> {
    match std::env::var(SIMD_VARIABLE) {
        Ok(v) if v.trim().is_empty() || v.trim() == "native" => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e: String| anyhow::anyhow!("{SIMD_VARIABLE}: {e}")),
        Err(_) => Ok(None),
    }
}

/// The message for an engine this binary was built without.
#[allow(dead_code)] // unused when every engine is compiled in
fn missing(name: &str) -> String {
    format!(
        "this greenlab was built without the {name} engine; rebuild with `cargo build --release --features {name}`{}",
        if name == "torch" {
            " after scripts/setup-libtorch.sh"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_engines_are_refused_with_the_list() {
        let err = make_engine("tensorflow", "cpu", None).err().unwrap();
        assert!(err.to_string().contains("unknown engine"), "{err}");
    }

    #[cfg(not(feature = "torch"))]
    #[test]
    fn a_missing_engine_says_how_to_get_it() {
        let err = make_engine("torch", "cpu", None).err().unwrap();
        assert!(err.to_string().contains("--features torch"), "{err}");
    }

    #[cfg(feature = "burn")]
    #[test]
    fn burn_runs_on_the_cpu_only() {
        assert_eq!(make_engine("burn", "cpu", Some(1)).unwrap().name(), "burn");
        assert!(make_engine("burn", "cuda:0", None).is_err());
    }
}
