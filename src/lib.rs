//! mailrules: email in, work out. The library behind the `mailrules` binary.
//!
//! The flow of one message is a straight line, and the modules follow it:
//! fetch ([`imap`], or files via [`ingest`]) → [`message`] (parse) → [`thread`] (resolve
//! sender and task) → [`rules`] (match, extract) → [`plan`] → [`store`] (apply in one
//! transaction) → acknowledge. [`pipeline`] strings these together. See docs/ARCHITECTURE.md.

pub mod automation;
pub mod autoreply;
pub mod cli;
pub mod config;
pub mod context;
pub mod daemon;
pub mod imap;
pub mod ingest;
pub mod logging;
pub mod message;
pub mod outbox;
pub mod outgoing;
pub mod parallel;
pub mod people;
pub mod pipeline;
pub mod plan;
pub mod rule_tests;
pub mod rules;
pub mod smtp;
pub mod store;
pub mod text;
pub mod thread;
pub mod web;
