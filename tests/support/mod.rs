//! Shared helpers for the integration tests.

pub mod bounded;
pub mod browser;
pub mod canary;
pub mod courier;
pub mod cyrus;
pub mod daemon_process;
pub mod desk;
pub mod dovecot;
pub mod dovecot_outage;
pub mod fake_daemon;
pub mod http_sink;
pub mod identity_provider;
pub mod imap_server;
pub mod imap_transcript;
pub mod logs;
pub mod maildir_fill;
pub mod rng;
pub mod smtp;
pub mod systemd;
pub mod web;
pub mod workdir;
