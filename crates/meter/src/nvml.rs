//! NVIDIA GPUs through NVML (being built).

use std::path::Path;

use crate::error::MeterError;
use crate::meter::{Domain, Meter, Reading};

/// The perf reader.
pub struct NvmlMeter {
    domains: Vec<Domain>,
}

impl NvmlMeter {
    /// Loads NVML.
    pub fn load(_lib: Option<&Path>, _visible: Option<&str>) -> Result<NvmlMeter, MeterError> {
        Err(MeterError::Unsupported("nvml reader not built yet".into()))
    }
}

impl Meter for NvmlMeter {
    fn name(&self) -> &'static str {
        "nvml"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        Err(MeterError::Unsupported("not built yet".into()))
    }
}
