//! STUB: to be replaced by the probe helper.
use super::{CpuProbe, ProbeError};
/// Real CPU probe.
#[derive(Debug)]
pub struct SystemCpuProbe;
impl SystemCpuProbe {
    /// New.
    pub fn new() -> Self {
        Self
    }
}
impl Default for SystemCpuProbe {
    fn default() -> Self {
        Self::new()
    }
}
impl CpuProbe for SystemCpuProbe {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        Err(ProbeError::new("stub", "stub"))
    }
}
