//! Shared helpers for the integration tests. Each test file uses what it needs.
#![allow(dead_code)]

pub mod bounded;
pub mod workdir;
