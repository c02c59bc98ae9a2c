//! The binary's deliberate exit codes.

use std::process::ExitCode;

/// How a command ended. Ordered by severity: a run over many models ends with the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// 0: everything checked passed.
    Pass = 0,
    /// 1: a contract was violated or a parity check failed.
    Violation = 1,
    /// 2: malformed input (model, contract, golden) or bad usage.
    BadInput = 2,
    /// 3: a requested backend or device is unavailable.
    Unavailable = 3,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(o as u8)
    }
}
