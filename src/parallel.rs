//! An order-keeping parallel map: items are worked on by several threads and come out in the
//! order they went in (messages must be applied in arrival order: a reply threads onto the
//! task an earlier message created).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;

/// Threads that prepare messages alongside the one that applies them: as many as the machine
/// has cores, at most 4 (beyond that the applying thread is the limit). Worked out once: on
/// Linux, `available_parallelism` reads the cgroup's CPU quota from files each time, and the
/// daemon asks for every batch.
pub fn workers() -> usize {
    static WORKERS: OnceLock<usize> = OnceLock::new();
    *WORKERS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4)))
}

/// Runs `work` on every item of `input` on `workers` threads, and hands `consume` the results
/// in input order while they are being produced; returns what `consume` returns.
///
/// Item n goes to worker n mod `workers`, and results are taken from the workers in the same
/// rotation, so order holds without sequence numbers. Each worker may be `ahead` items in
/// front of `consume`, which bounds memory. `input` is read on a thread of its own. When
/// `consume` returns early, the threads stop at their next item.
pub fn map_in_order<I, O, R>(
    input: impl Iterator<Item = I> + Send,
    workers: usize,
    ahead: usize,
    work: impl Fn(I) -> O + Sync,
    consume: impl FnOnce(&mut dyn Iterator<Item = O>) -> R,
) -> R
where
    I: Send,
    O: Send,
{
    let workers = workers.max(1);
    std::thread::scope(|scope| {
        let mut inboxes: Vec<SyncSender<I>> = Vec::with_capacity(workers);
        let mut outboxes: Vec<Receiver<O>> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (to_worker, inbox) = sync_channel::<I>(ahead);
            let (outbox, from_worker) = sync_channel::<O>(ahead);
            let work = &work;
            scope.spawn(move || {
                for item in inbox {
                    if outbox.send(work(item)).is_err() {
                        return; // `consume` stopped
                    }
                }
            });
            inboxes.push(to_worker);
            outboxes.push(from_worker);
        }
        scope.spawn(move || {
            for (n, item) in input.enumerate() {
                if inboxes[n % workers].send(item).is_err() {
                    return;
                }
            }
        });
        let mut turn = 0;
        let mut results = std::iter::from_fn(move || {
            let result = outboxes[turn % workers].recv().ok();
            turn += 1;
            result
        });
        consume(&mut results)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_input_order_whatever_each_item_costs() {
        let input = 0..500u64;
        let out: Vec<u64> = map_in_order(
            input,
            3,
            4,
            |n| {
                // Uneven work, so that workers finish out of order.
                if n % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                n * 2
            },
            |results| results.collect(),
        );
        assert_eq!(out, (0..500).map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn stopping_early_ends_every_thread() {
        let taken: Vec<u32> =
            map_in_order(0.., 2, 2, |n: u32| n, |results| results.take(10).collect());
        assert_eq!(taken, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn one_worker_and_no_input_are_fine() {
        let out: Vec<u8> = map_in_order(std::iter::empty(), 1, 0, |n: u8| n, |r| r.collect());
        assert!(out.is_empty());
    }
}
