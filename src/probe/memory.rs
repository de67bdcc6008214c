//! STUB: to be replaced by the probe helper.
use super::{MemoryProbe, MemoryReading, ProbeError};
/// Real memory probe.
#[derive(Debug)]
pub struct SystemMemoryProbe;
impl SystemMemoryProbe {
    /// New.
    pub fn new() -> Self {
        Self
    }
}
impl Default for SystemMemoryProbe {
    fn default() -> Self {
        Self::new()
    }
}
impl MemoryProbe for SystemMemoryProbe {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        Err(ProbeError::new("stub", "stub"))
    }
}
