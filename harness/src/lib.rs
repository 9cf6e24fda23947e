//! mtls-e2e: end-to-end tests for mTLS chains in front of AI inference.

pub mod app;
pub mod check;
pub mod engine;
pub mod error;
pub mod exit;
pub mod hazard;
pub mod init;
pub mod lint;
pub mod manifest;
pub mod mock;
pub mod net;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod report;
pub mod retry;
pub mod scenario;
pub mod selection;
pub mod substrate;
pub(crate) mod sys;
pub mod tls;
pub mod yaml;

#[cfg(test)]
mod architecture_tests;
#[cfg(test)]
mod fuzz_tests;
