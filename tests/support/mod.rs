//! Shared helpers for the integration tests. Each test file uses what it needs.
#![allow(dead_code)]

pub mod bounded;
pub mod courier;
pub mod cyrus;
pub mod daemon_process;
pub mod dovecot;
pub mod dovecot_outage;
pub mod fake_daemon;
pub mod imap_server;
pub mod logs;
pub mod maildir_fill;
pub mod systemd;
pub mod workdir;
