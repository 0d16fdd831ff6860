//! Copy slots: at most `worker.max_in_flight` copies at once, counted in
//! `trailvault_slots_in_use`. Only work takes a slot: a receive waiting on a quiet queue holds
//! none, so it cannot keep a busy queue's messages waiting.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Slots {
    semaphore: Arc<Semaphore>,
    in_use: Gauge,
}

/// One copy's slot, given back when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_use: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_use.dec();
    }
}

impl Slots {
    pub fn new(count: usize, in_use: Gauge) -> Slots {
        Slots {
            semaphore: Arc::new(Semaphore::new(count)),
            in_use,
        }
    }

    /// Waits for a slot. Waiters are served first come, first served (tokio's semaphore is
    /// fair), so every queue's batch gets its turn.
    pub async fn acquire(&self) -> Slot {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        self.slot(permit)
    }

    /// A slot if one is free now, without waiting.
    pub fn try_acquire(&self) -> Option<Slot> {
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        Some(self.slot(permit))
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.in_use.inc();
        Slot {
            _permit: permit,
            in_use: self.in_use.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_counted_while_held_and_fair_to_waiters() {
        let gauge = Gauge::default();
        let slots = Slots::new(2, gauge.clone());
        let a = slots.acquire().await;
        let b = slots.try_acquire().expect("a second slot is free");
        assert_eq!(gauge.get(), 2);
        assert!(slots.try_acquire().is_none());
        // The first waiter is served first when a slot frees.
        let (first, second) = (slots.clone(), slots.clone());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o1, o2) = (order.clone(), order.clone());
        let w1 = tokio::spawn(async move {
            let s = first.acquire().await;
            o1.lock().unwrap().push(1);
            s
        });
        tokio::task::yield_now().await;
        let w2 = tokio::spawn(async move {
            let s = second.acquire().await;
            o2.lock().unwrap().push(2);
            s
        });
        tokio::task::yield_now().await;
        drop(a);
        let s1 = w1.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![1]);
        drop(b);
        let s2 = w2.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![1, 2]);
        assert_eq!(gauge.get(), 2);
        drop((s1, s2));
        assert_eq!(gauge.get(), 0);
    }
}
