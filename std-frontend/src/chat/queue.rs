//! A bounded queue between threads that never allocates after it is made: its storage is sized
//! once, and waiting uses a mutex and condition variables (futexes on Linux), not the
//! per-thread wait contexts and growing blocks of `std::sync::mpsc`. Many threads may push;
//! one pops, with an optional deadline. A push waits while the queue holds its capacity; an
//! urgent push never waits, and uses room reserved beyond the capacity (growing the storage
//! only once that reserve is used up). Closing the queue makes every push fail, so the threads
//! that feed it learn that nobody listens any more.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

pub(super) struct Queue<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives, for a waiting pop.
    arrived: Condvar,
    /// Signalled when an item leaves, for a waiting push.
    left: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    closed: bool,
    /// Threads waiting in `pop` or `push`: nobody is woken (a system call) when nobody waits.
    popping: usize,
    pushing: usize,
}

impl<T> Queue<T> {
    /// An empty queue that holds up to `capacity` items (at least one) and has room for
    /// `reserve` urgent ones besides.
    pub(super) fn new(capacity: usize, reserve: usize) -> Queue<T> {
        let capacity = capacity.max(1);
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.saturating_add(reserve)),
                capacity,
                closed: false,
                popping: 0,
                pushing: 0,
            }),
            arrived: Condvar::new(),
            left: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere while holding the lock leaves the queue itself consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `item` at the back, waiting while the queue is full. Gives it back if the queue
    /// is closed.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        while !state.closed && state.items.len() >= state.capacity {
            state.pushing += 1;
            state = self
                .left
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.pushing -= 1;
        }
        self.enqueue(state, item)
    }

    /// Adds `item` at the back without waiting, even beyond the capacity. Gives it back if the
    /// queue is closed.
    pub(super) fn push_urgent(&self, item: T) -> Result<(), T> {
        let state = self.lock();
        self.enqueue(state, item)
    }

    /// Adds `item` at the back under the lock, and wakes a waiting reader. Gives it back if
    /// the queue is closed.
    fn enqueue(&self, mut state: MutexGuard<'_, State<T>>, item: T) -> Result<(), T> {
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        if state.popping > 0 {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// The item at the front, waiting for one until `deadline` (forever without one). `None`
    /// when the deadline passed, or when the queue is closed and empty.
    pub(super) fn pop(&self, deadline: Option<Instant>) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                if state.pushing > 0 {
                    self.left.notify_one();
                }
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state.popping += 1;
            state = match deadline {
                None => self
                    .arrived
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.popping -= 1;
                        return None;
                    }
                    self.arrived
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
            state.popping -= 1;
        }
    }

    /// The item at the front, if there is one now.
    pub(super) fn try_pop(&self) -> Option<T> {
        let mut state = self.lock();
        let item = state.items.pop_front();
        if item.is_some() && state.pushing > 0 {
            self.left.notify_one();
        }
        item
    }

    /// Makes every push fail from now on and wakes everyone waiting. Items already queued
    /// can still be popped.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        drop(state);
        self.arrived.notify_all();
        self.left.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn items_come_out_in_order_and_a_full_queue_waits() {
        let queue = Arc::new(Queue::new(2, 0));
        let feeder = Arc::clone(&queue);
        let pushing = thread::spawn(move || {
            for item in 0..100 {
                feeder.push(item).unwrap();
            }
        });
        let taken: Vec<i32> = (0..100).map(|_| queue.pop(None).unwrap()).collect();
        pushing.join().unwrap();
        assert_eq!(taken, (0..100).collect::<Vec<_>>());
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn an_urgent_item_does_not_wait_for_room() {
        let queue = Queue::new(1, 1);
        queue.push(1).unwrap();
        queue.push_urgent(2).unwrap();
        queue.push_urgent(3).unwrap();
        assert_eq!(queue.try_pop(), Some(1));
        assert_eq!(queue.try_pop(), Some(2));
        assert_eq!(queue.try_pop(), Some(3));
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let queue: Queue<u8> = Queue::new(1, 0);
        let started = Instant::now();
        assert_eq!(queue.pop(Some(started + Duration::from_millis(20))), None);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(queue.pop(Some(started)), None);
    }

    #[test]
    fn closing_fails_pushes_and_wakes_a_waiting_pusher() {
        let queue = Arc::new(Queue::new(1, 0));
        queue.push(1).unwrap();
        let feeder = Arc::clone(&queue);
        let blocked = thread::spawn(move || feeder.push(2));
        thread::sleep(Duration::from_millis(20));
        queue.close();
        assert_eq!(blocked.join().unwrap(), Err(2));
        assert_eq!(queue.push(3), Err(3));
        // What was queued before the close is still there.
        assert_eq!(queue.pop(None), Some(1));
        assert_eq!(queue.pop(None), None);
    }
}
