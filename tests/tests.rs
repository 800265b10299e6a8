//! The integration tests: one test binary whose modules each drive one part of mailrules as
//! users meet it (the built binary, the daemon against real IMAP and SMTP servers, real-world
//! and hostile mail). One binary, as ripgrep's tests/ are, so the shared `support` helpers and
//! the library are compiled and linked once. Run one part with `cargo test --test integration
//! MODULE::` (e.g. `faults::`).

mod support;

mod analytics_rows;
mod broken_pipe;
mod cli;
mod corpus;
mod daemon;
mod daemon_binary;
mod daemon_trouble;
mod diagnostics;
mod faults;
mod fuzz_regressions;
mod hostile;
mod imap_pipelining;
mod messages;
mod oauth;
mod plans;
mod rule_tests;
mod rules_docs;
mod scenarios;
mod scenarios_automation;
mod secrets;
mod servers;
mod smtp_outbox;
mod smtp_scenario;
mod smtp_transport;
mod store_open;
mod team;
mod team_load;
mod trust;
mod users;
mod web;
mod web_browser;
mod web_operator;
mod web_security;
mod webhooks;
