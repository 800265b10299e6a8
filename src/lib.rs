//! mailrules: email in, work out. The library behind the `mailrules` binary.
//!
//! The flow of one message is a straight line, and the modules follow it:
//! fetch ([`imap`], or files via [`ingest`]) → [`message`] (parse) → [`thread`] (resolve
//! sender and task) → [`rules`] (match, extract) → [`plan`] → [`store`] (apply in one
//! transaction) → acknowledge. See docs/ARCHITECTURE.md.

pub mod autoreply;
pub mod config;
pub mod context;
pub mod message;
pub mod plan;
pub mod smtp;
pub mod text;
