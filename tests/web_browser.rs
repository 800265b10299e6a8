//! The web as a person meets it, in a real headless Chromium driven over WebDriver (issue
//! 15): `mailrules serve` on a free port over a store seeded by the real binary; logging in,
//! the queue, a task, replying, statuses and triggers, live updates, charts, hostile mail,
//! CSRF and roles. Each part is a submodule; this file holds the control that proves the
//! harness would see a script run or a request leave.

mod harness_control;
