//! CPU RAPL through perf events (being built).

use std::path::Path;

use crate::error::MeterError;
use crate::meter::{Domain, Meter, Reading};

/// The perf reader.
pub struct PerfMeter {
    domains: Vec<Domain>,
}

impl PerfMeter {
    /// Opens the powercap tree at `root`.
    pub fn new(root: &Path) -> Result<PerfMeter, MeterError> {
        Err(MeterError::Unsupported(format!(
            "{}: perf reader not built yet",
            root.display()
        )))
    }
}

impl Meter for PerfMeter {
    fn name(&self) -> &'static str {
        "perf"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        Err(MeterError::Unsupported("not built yet".into()))
    }
}
