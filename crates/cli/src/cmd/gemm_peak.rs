//! `greenlab gemm-peak` (hidden): a measured ceiling for training throughput on this machine.
//!
//! Times a large single-precision matrix product through the same `gemm` calls and vector
//! level the Burn engine trains with, on all cores (or `--threads`), and prints one JSON line:
//! `{"gflops": …, "simd": "avx512", "threads": 2, "size": 2048}`. `bench/train_throughput.sh`
//! sets the networks' achieved GFLOP/s beside it.

use std::process::ExitCode;

use anyhow::bail;

/// Arguments of `greenlab gemm-peak`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rows, columns and inner dimension of the product.
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Products timed; the fastest counts.
    #[arg(long, default_value_t = 4)]
    repeats: usize,
    /// Threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `greenlab gemm-peak`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.size == 0 || args.repeats == 0 {
        bail!("--size and --repeats must be at least 1");
    }
    #[cfg(feature = "burn")]
    {
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let engine = crate::engines::burn_engine("cpu", Some(threads))?;
        let gflops = engine.gemm_gflops(args.size, args.repeats);
        println!(
            "{}",
            serde_json::json!({
                "gflops": gflops,
                "simd": engine.simd_level().as_str(),
                "threads": engine.effective_threads(),
                "size": args.size,
            })
        );
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "burn"))]
    {
        bail!("gemm-peak measures the burn engine's matrix products; rebuild with the burn feature")
    }
}
