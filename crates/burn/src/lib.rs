//! greenlab-burn: greenlab's default training engine, on Burn's pure-Rust `flex` CPU backend.
//!
//! [`BurnEngine`] implements [`greenlab_engine::Engine`]: it builds every layer of a
//! [`NetworkSpec`](greenlab_model::NetworkSpec) (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
//! Flatten, Linear) as a list of Burn modules on a `flex` device with autodiff, initialises the
//! weights from a seed the way PyTorch does, and trains them with Adam on cross-entropy. It
//! needs nothing but cargo. Burn is named only inside this crate: the rest of greenlab sees
//! `dyn Engine`.
//!
//! What it does not do: GPUs (use the torch engine), mixed precision, or data loading.
//!
//! ```no_run
//! use greenlab_burn::BurnEngine;
//! use greenlab_engine::{AdamConfig, Engine};
//! use greenlab_model::{Architecture, InputShape};
//!
//! let engine = BurnEngine::new(Some(2))?; // two threads
//! let spec = Architecture::SimpleCnn { conv: 2, linear: 3, relu: true }
//!     .spec(InputShape { channels: 1, height: 28, width: 28 }, 10)
//!     .unwrap();
//! let trainer = engine.build(&spec, &AdamConfig::default(), 1)?;
//! assert_eq!(trainer.parameter_count(), spec.parameter_count());
//! # Ok::<(), greenlab_engine::EngineError>(())
//! ```

mod net;
mod ops;
mod trainer;

use std::sync::Arc;

use burn::tensor::Device;
use greenlab_engine::{AdamConfig, Engine, EngineError, Trainer};
use greenlab_model::NetworkSpec;
use rayon::ThreadPool;

pub use ops::simd::SimdLevel;
pub use trainer::BurnTrainer;

use ops::simd::Simd;

/// Settings of the Burn engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BurnOptions {
    /// Worker threads (`None`: one per core).
    pub threads: Option<usize>,
    /// The widest vector instructions the engine's own kernels and matrix products may use
    /// (`None`: the widest this CPU has). A lower level shows on one machine what a CPU
    /// without the wider instructions would run.
    pub simd: Option<SimdLevel>,
}

/// The Burn engine: trainers on the `flex` CPU backend with autodiff.
///
/// Flex parallelises its kernels with rayon. With a thread count, the engine owns a pool of
/// that many threads and every trainer it builds runs its work there; without one, flex uses
/// rayon's global pool (one thread per core).
#[derive(Clone)]
pub struct BurnEngine {
    threads: Option<usize>,
    pool: Option<Arc<ThreadPool>>,
    simd: Simd,
}

impl std::fmt::Debug for BurnEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnEngine")
            .field("threads", &self.threads)
            .field("simd", &self.simd.level())
            .finish()
    }
}

impl BurnEngine {
    /// An engine on the CPU, with `threads` worker threads (`None`: one per core).
    pub fn new(threads: Option<usize>) -> Result<BurnEngine, EngineError> {
        BurnEngine::with_options(BurnOptions {
            threads,
            simd: None,
        })
    }

    /// An engine on the CPU with the given settings. Fails for 0 threads, and for a vector
    /// level this CPU does not have.
    pub fn with_options(options: BurnOptions) -> Result<BurnEngine, EngineError> {
        let detected = SimdLevel::detect();
        let simd = match options.simd {
            None => Simd::detect(),
            Some(level) if level <= detected => Simd::limited_to(level),
            Some(level) => {
                return Err(EngineError::Device {
                    device: "cpu".into(),
                    message: format!(
                        "this CPU has no {level} (the widest it has is {detected}); ask for {detected} or less"
                    ),
                });
            }
        };
        let threads = options.threads;
        let pool = match threads {
            None => None,
            Some(0) => {
                return Err(EngineError::Device {
                    device: "cpu".into(),
                    message: "the thread count must be at least 1".into(),
                });
            }
            Some(n) => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("greenlab-burn-{i}"))
                    .build()
                    .map_err(|e| EngineError::Device {
                        device: "cpu".into(),
                        message: format!("cannot start {n} worker threads: {e}"),
                    })?,
            )),
        };
        Ok(BurnEngine {
            threads,
            pool,
            simd,
        })
    }

    /// An engine for a device name: only `cpu` is available to Burn's flex backend.
    pub fn for_device(device: &str, options: BurnOptions) -> Result<BurnEngine, EngineError> {
        if device != "cpu" {
            return Err(EngineError::Device {
                device: device.into(),
                message: "the burn engine runs on the CPU only; pass --device cpu, or use --engine torch for CUDA".into(),
            });
        }
        BurnEngine::with_options(options)
    }

    /// The vector instruction level the engine's kernels use.
    pub fn simd_level(&self) -> SimdLevel {
        self.simd.level()
    }

    /// Single-precision GFLOP/s of a `size × size × size` matrix product through the same
    /// `gemm` calls and vector level the engine trains with, on all of its threads: the best of
    /// `repeats` products. A measured ceiling for the engine's throughput on this machine.
    pub fn gemm_gflops(&self, size: usize, repeats: usize) -> f64 {
        let run = || ops::gemm::peak_gflops(self.simd, size, repeats);
        match &self.pool {
            Some(p) => p.install(run),
            None => run(),
        }
    }

    /// The number of worker threads, if set.
    pub fn threads(&self) -> Option<usize> {
        self.threads
    }

    /// The number of threads flex's kernels will use.
    pub fn effective_threads(&self) -> usize {
        match &self.pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Builds a [`BurnTrainer`] (the concrete type behind [`Engine::build`]).
    pub fn trainer(
        &self,
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
    ) -> Result<BurnTrainer, EngineError> {
        BurnTrainer::new(
            spec,
            adam,
            seed,
            Device::flex().autodiff(),
            self.pool.clone(),
            self.simd,
        )
    }
}

impl Engine for BurnEngine {
    fn name(&self) -> &'static str {
        "burn"
    }

    fn device(&self) -> String {
        "cpu".into()
    }

    fn build(
        &self,
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
    ) -> Result<Box<dyn Trainer>, EngineError> {
        Ok(Box::new(self.trainer(spec, adam, seed)?))
    }
}
