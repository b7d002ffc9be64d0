//! greenlab-torch: the libtorch engine, greenlab's networks trained through PyTorch's C++
//! library (tch 0.24, libtorch 2.11) on the CPU or on NVIDIA GPUs.
//!
//! [`TorchEngine`] implements [`greenlab_engine::Engine`]: it builds every layer of a
//! [`NetworkSpec`](greenlab_model::NetworkSpec) with PyTorch's default initialisation (seeded
//! with `tch::manual_seed`), trains with libtorch's Adam (the semantics of `torch.optim.Adam`,
//! weight decay as an L2 term added to the gradient) on cross-entropy, evaluates with batch-norm
//! in inference mode, and times layers for the profiler. It does not read data or decide
//! anything about training; `greenlab-train` drives it.
//!
//! libtorch is not part of this crate: `scripts/setup-libtorch.sh` installs it from PyPI's
//! `torch==2.11.0` wheel and prints the variables tch's build needs. Binaries get an rpath to
//! libtorch's folder (see `build.rs`). CUDA needs the `cuda` feature, which links
//! libtorch_cuda explicitly; without it libtorch reports no GPU.
//!
//! ```no_run
//! use greenlab_engine::{AdamConfig, Engine};
//! use greenlab_model::{Architecture, InputShape};
//! use greenlab_torch::{TorchEngine, TorchOptions};
//!
//! let options = TorchOptions { threads: Some(2), ..TorchOptions::default() };
//! let engine = TorchEngine::with_options("cpu", options)?;
//! let spec = Architecture::SimpleCnn { conv: 2, linear: 3, relu: true }
//!     .spec(InputShape { channels: 1, height: 28, width: 28 }, 10)
//!     .expect("a valid architecture");
//! let trainer = engine.build(&spec, &AdamConfig::default(), 1)?;
//! assert_eq!(trainer.parameter_count(), spec.parameter_count());
//! # Ok::<(), greenlab_engine::EngineError>(())
//! ```

mod adam;
mod device;
mod net;
mod trainer;

use greenlab_engine::{AdamConfig, Engine, EngineError, Trainer};
use greenlab_model::NetworkSpec;

pub use device::parse_device;

/// The engine's name in results and messages.
pub const ENGINE_NAME: &str = "torch";

/// Settings of the libtorch engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TorchOptions {
    /// Intra-op CPU threads (`torch.set_num_threads`); `None` keeps libtorch's default (one per
    /// core). libtorch keeps one setting per process, so the last engine created wins.
    pub threads: Option<usize>,
    /// How the step runs; `None` picks by device (see [`StepPlan::for_device`]).
    pub plan: Option<StepPlan>,
}

/// How a training step runs around libtorch's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepPlan {
    /// Adam over one flat buffer of all parameters (a dozen whole-buffer operations per step,
    /// as PyTorch's multi-tensor and fused Adam) instead of libtorch's per-tensor Adam.
    pub flat_adam: bool,
    /// Keep the training set on the device and take each step's batch from it by index; the
    /// loss and correct predictions are summed on the device and read every few steps, so no
    /// step waits for the device.
    pub resident_data: bool,
}

impl StepPlan {
    /// On a GPU, every step's launches matter and a host synchronisation stalls the queue:
    /// flat Adam and resident data. On the CPU the kernels run as they are called, and the
    /// step is libtorch's own Adam on batches passed in.
    pub fn for_device(device: tch::Device) -> StepPlan {
        let gpu = device != tch::Device::Cpu;
        StepPlan {
            flat_adam: gpu,
            resident_data: gpu,
        }
    }
}

/// The libtorch engine on one device (`cpu`, `cuda` or `cuda:N`).
#[derive(Clone, Debug)]
pub struct TorchEngine {
    device: tch::Device,
    label: String,
    plan: StepPlan,
}

impl TorchEngine {
    /// An engine on `device` (`cpu`, `cuda`, `cuda:N`) with libtorch's default thread count.
    ///
    /// Fails with [`EngineError::Device`] for an unknown device name, and for a CUDA device
    /// that libtorch cannot see (no GPU or driver, an index past the last GPU, or a binary
    /// built without the `cuda` feature).
    pub fn new(device: &str) -> Result<TorchEngine, EngineError> {
        TorchEngine::with_options(device, TorchOptions::default())
    }

    /// An engine on `device` using `threads` CPU threads (0 keeps libtorch's default).
    pub fn with_threads(device: &str, threads: usize) -> Result<TorchEngine, EngineError> {
        TorchEngine::with_options(
            device,
            TorchOptions {
                threads: (threads > 0).then_some(threads),
                plan: None,
            },
        )
    }

    /// An engine on `device` with the given options.
    pub fn with_options(device: &str, options: TorchOptions) -> Result<TorchEngine, EngineError> {
        let parsed = parse_device(device)?;
        device::check_available(device, parsed)?;
        if let Some(threads) = options.threads.filter(|&t| t > 0) {
            let threads = i32::try_from(threads).unwrap_or(i32::MAX);
            tch::set_num_threads(threads);
        }
        if parsed != tch::Device::Cpu {
            // Let cuDNN time its algorithms for each convolution shape once and keep the
            // fastest (PyTorch's `torch.backends.cudnn.benchmark = True`).
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(TorchEngine {
            device: parsed,
            label: device::label(parsed),
            plan: options.plan.unwrap_or(StepPlan::for_device(parsed)),
        })
    }

    /// How this engine's trainers run a step.
    pub fn plan(&self) -> StepPlan {
        self.plan
    }

    /// The tch device trainers run on.
    pub fn tch_device(&self) -> tch::Device {
        self.device
    }
}

impl Engine for TorchEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    fn device(&self) -> String {
        self.label.clone()
    }

    fn build(
        &self,
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
    ) -> Result<Box<dyn Trainer>, EngineError> {
        adam.validate().map_err(|message| EngineError::Build {
            network: spec.name.clone(),
            message,
        })?;
        Ok(Box::new(trainer::TorchTrainer::new(
            spec,
            adam,
            seed,
            self.device,
            self.plan,
        )?))
    }

    fn sync_hook(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        match self.device {
            tch::Device::Cuda(index) => {
                let index = index as i64;
                Some(Box::new(move || tch::Cuda::synchronize(index)))
            }
            _ => None,
        }
    }
}

/// Turns a libtorch error into the engine's error type.
pub(crate) fn backend(error: tch::TchError) -> EngineError {
    EngineError::Backend {
        engine: ENGINE_NAME,
        message: error.to_string(),
    }
}
