//! One module per subcommand; each owns its clap `Args` and a `run` returning the exit code.

pub mod compare;
pub mod factorial;
pub mod gemm_peak;
pub mod measure;
pub mod meters;
pub mod profile;
pub mod replicate;
pub mod report;
pub mod stats;
pub mod study;
pub mod tradeoff;
pub mod train;
pub mod tune;
pub mod worker;
