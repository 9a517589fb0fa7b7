//! One lock per pod or container id, so two requests for the same object (a kubelet
//! retrying `StopContainer` while `RemoveContainer` runs) never interleave, while requests
//! for different objects run in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The lock table.
#[derive(Default)]
pub struct IdLocks {
    table: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Held while an object is being changed.
pub type IdGuard = OwnedMutexGuard<()>;

impl IdLocks {
    /// Waits for and takes the lock of `id`; call from blocking code only.
    pub fn lock(&self, id: &str) -> IdGuard {
        let lock = {
            let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget locks nobody holds, so the table stays as small as the work in flight.
            table.retain(|_, lock| Arc::strong_count(lock) > 1);
            table.entry(id.to_owned()).or_default().clone()
        };
        lock.blocking_lock_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_id_serializes_other_ids_do_not() {
        let locks = IdLocks::default();
        let a = locks.lock("a");
        let _b = locks.lock("b");
        let locks = Arc::new(locks);
        let waiter = {
            let locks = locks.clone();
            std::thread::spawn(move || drop(locks.lock("a")))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(a);
        waiter.join().unwrap();
    }
}
