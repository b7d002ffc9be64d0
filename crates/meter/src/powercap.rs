//! CPU RAPL through powercap sysfs (being built).

use std::path::Path;

use crate::error::MeterError;
use crate::meter::{Domain, Meter, Reading};
use crate::units::Watts;

/// Options of the powercap reader.
#[derive(Clone, Debug)]
pub struct PowercapOptions {
    /// Use psys instead of package + dram.
    pub prefer_psys: bool,
    /// Most power one domain can plausibly draw.
    pub max_domain_power: Watts,
}

/// The powercap reader.
pub struct PowercapMeter {
    domains: Vec<Domain>,
}

impl PowercapMeter {
    /// Opens the powercap tree at `root`.
    pub fn new(root: &Path, _options: &PowercapOptions) -> Result<PowercapMeter, MeterError> {
        Err(MeterError::Unsupported(format!(
            "{}: powercap reader not built yet",
            root.display()
        )))
    }
}

impl Meter for PowercapMeter {
    fn name(&self) -> &'static str {
        "rapl"
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    fn read(&mut self) -> Result<Reading, MeterError> {
        Err(MeterError::Unsupported("not built yet".into()))
    }
}
