//! `tmpfiles.d` (placeholder, filled in below).
use super::engine::{JobResult, Machine};

pub fn tmpfiles(_m: &mut Machine) -> JobResult {
    Ok(())
}
