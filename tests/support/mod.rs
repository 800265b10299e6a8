//! Shared helpers for the integration tests. Each test file uses what it needs.
#![allow(dead_code)]

pub mod bounded;
pub mod dovecot;
pub mod fake_daemon;
pub mod logs;
pub mod systemd;
pub mod workdir;
