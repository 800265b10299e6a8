//! The second layer of automation: triggers (`[[trigger]]`, run by the store inside the
//! transaction of the change that fired them) and schedules (`[[schedule]]`, run on a clock).
//!
//! The rules decide (pure); the store applies; this module joins the two: it turns a store
//! event into the values trigger conditions see, and a schedule into firings on the tasks
//! that have been in its state long enough.

mod schedules;
mod triggers;

#[cfg(test)]
mod tests;

pub use schedules::{
    entry_if_matching, run_schedules, run_with, ScheduleFiring, Which, SCHEDULE_TICK,
};
pub use triggers::{event_values, RuleTriggers};
