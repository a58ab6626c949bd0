//! Time as the executor sees it: the wall clock for real clouds, a manual clock for tests.
//!
//! The executor never reads the system time itself; it asks the provider's clock, so that a
//! simulated world can make minutes pass in milliseconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

/// A source of time in milliseconds, and a way to wait on it.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Milliseconds since this clock's epoch (the UNIX epoch for wall time).
    fn now_ms(&self) -> u64;
    /// Waits until `ms` have passed on this clock.
    async fn sleep(&self, ms: u64);
}

/// Wall time; sleeping is tokio's, so it needs a tokio runtime with time enabled.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Milliseconds since the UNIX epoch; a clock set before 1970 reads as 0.
    pub fn wall_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemClock::wall_ms()
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// A clock for tests: time moves only when someone sleeps on it or calls [`ManualClock::advance`].
/// Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock { now: Arc::new(AtomicU64::new(start_ms)) }
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn sleep(&self, ms: u64) {
        self.advance(ms);
        // Yield once, as a real sleep would: a polling loop on this clock must still let the
        // other tasks of its runtime run.
        YieldOnce(false).await;
    }
}

/// A future that is pending once (waking itself) and then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        clock.sleep(60_000).await;
        assert_eq!(clock.now_ms(), 61_250);
    }

    #[tokio::test]
    async fn manual_clock_clones_share_time_through_dyn_clock() {
        let clock = ManualClock::new(0);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        shared.sleep(5).await;
        clock.advance(7);
        assert_eq!(shared.now_ms(), 12);
        assert_eq!(clock.now_ms(), 12);
    }

    #[tokio::test]
    async fn manual_sleep_lets_other_tasks_run() {
        // On a single-threaded runtime a sleep loop that never yielded would starve the
        // spawned task and this loop would never see the flag.
        let clock = ManualClock::new(0);
        let flag = Arc::new(AtomicU64::new(0));
        let setter = flag.clone();
        let task = tokio::spawn(async move { setter.store(1, Ordering::SeqCst) });
        let mut spins = 0;
        while flag.load(Ordering::SeqCst) == 0 {
            clock.sleep(1).await;
            spins += 1;
            assert!(spins < 1_000, "the spawned task never ran");
        }
        task.await.unwrap();
    }

    #[test]
    fn system_clock_reads_wall_time() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let now = SystemClock.now_ms();
        assert!(now >= before && now < before + 60_000, "{now} vs {before}");
    }
}
