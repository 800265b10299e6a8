//! A small seeded random generator for the fault tests: a failing run is repeated with its
//! seed (`MAILRULES_FAULT_SEED`).

use std::time::Duration;

/// A small seeded generator (SplitMix64), so a failing run can be repeated with its seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `MAILRULES_FAULT_SEED` when set, else from the clock; prints the seed.
    pub fn from_env_or_clock() -> Rng {
        let seed = std::env::var("MAILRULES_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("fault seed: {seed} (repeat with MAILRULES_FAULT_SEED={seed})");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration in `[low, high)` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }
}
