//! greenlab-tune: energy-aware hyperparameter tuning.
//!
//! A *study* explores a [`SearchSpace`] with a [`Sampler`], may stop bad trials early with a
//! [`Pruner`], and keeps every trial — parameters, state, intermediate values and the energy it
//! cost — in a [`Storage`]. Storages live in `greenlab-store` (SQLite, PostgreSQL); this crate
//! holds the contracts and an in-memory storage.

pub mod compare;
pub mod config;
pub mod error;
pub mod linalg;
pub mod memory;
pub mod process;
pub mod pruner;
pub mod sampler;
pub mod space;
pub mod storage;
pub mod study;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trial;

pub use error::TuneError;
pub use memory::MemoryStorage;
pub use process::WorkerProcess;
pub use pruner::Pruner;
pub use sampler::{SampleContext, Sampler};
pub use space::{Distribution, ParamValue, Params, SearchSpace};
pub use storage::{Reaped, Storage, StudyId, StudyRecord, TrialId, Worker};
pub use trial::{Direction, Intermediate, Objective, Trial, TrialEnergy, TrialOutcome, TrialState};
