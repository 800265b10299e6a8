//! Tests of triggers and schedules through the store, with rules loaded from TOML.
