//! STUB: to be replaced by the probe helper.
/// CPU quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuQuota;
/// cgroup reader.
#[derive(Debug, Clone)]
pub struct CgroupFs;
/// parsers.
pub mod parse {}
