//! Coalesces concurrent identical reads within one process: while one
//! request for a key is in flight, others for the same key wait for its
//! answer instead of sending their own (Terraform reads data sources ten at
//! a time, and several often name the same image).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// In-flight reads by key. A failed read is not shared: each waiter then
/// asks for itself, so every caller gets its own, fully detailed error.
pub(super) struct Flights<V> {
    inflight: Mutex<HashMap<String, Arc<OnceCell<Option<V>>>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Flights<V> {
    /// Runs `read` for `key`, or waits for the run already in flight.
    pub(super) async fn run<E, F, Fut>(&self, key: &str, read: F) -> Result<V, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            inflight.entry(key.to_string()).or_default().clone()
        };
        let mut mine = None;
        let (slot, run) = (&mut mine, &read);
        let shared = cell
            .get_or_init(move || async move {
                let result = run().await;
                let shared = result.as_ref().ok().cloned();
                *slot = Some(result);
                shared
            })
            .await
            .clone();
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if inflight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(key);
            }
        }
        match (mine, shared) {
            (Some(result), _) => result,
            (None, Some(value)) => Ok(value),
            (None, None) => read().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_reads_of_one_key_share_one_request() {
        let flights = Flights::<String>::default();
        let sent = AtomicUsize::new(0);
        let (release, released) = tokio::sync::watch::channel(false);
        let read = || {
            let mut released = released.clone();
            let sent = &sent;
            async move {
                sent.fetch_add(1, Ordering::SeqCst);
                let _ = released.wait_for(|r| *r).await;
                Ok::<_, ()>("manifest".to_string())
            }
        };
        let all = futures::future::join_all((0..4).map(|_| flights.run("host/web:v1", read)));
        let releaser = async {
            tokio::task::yield_now().await;
            let _ = release.send(true);
        };
        let (results, ()) = tokio::join!(all, releaser);
        assert!(results.iter().all(|r| r.as_deref() == Ok("manifest")));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // Once answered, the next read is a new request.
        flights.run("host/web:v1", read).await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_is_not_shared() {
        let flights = Flights::<String>::default();
        let sent = AtomicUsize::new(0);
        let read = || async {
            let n = sent.fetch_add(1, Ordering::SeqCst);
            Err::<String, _>(format!("failure {n}"))
        };
        let (a, b) = tokio::join!(flights.run("k", read), flights.run("k", read));
        assert_eq!(a, Err("failure 0".into()));
        assert_eq!(b, Err("failure 1".into()));
    }
}
