//! The runtime waiting calls run on: one thread of its own running a
//! current-thread tokio runtime, so that a call, its Redis socket and its
//! reply stay on one thread, in order, instead of moving between the
//! workers of a work-stealing pool.
//!
//! A short spin before parking was measured too (bench/RESULTS.md's notes):
//! on a 2-core machine it took CPU from Redis and Node without shortening a
//! call, so the thread parks as soon as it has nothing to do.

use std::future::Future;
use std::sync::LazyLock;

use tokio::runtime::Handle;

static RUNTIME: LazyLock<Handle> = LazyLock::new(|| {
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("actionhero-native-cache: cannot build its tokio runtime");
  let handle = runtime.handle().clone();
  std::thread::Builder::new()
    .name("actionhero-native-cache".into())
    .spawn(move || runtime.block_on(std::future::pending::<()>()))
    .expect("actionhero-native-cache: cannot start its runtime thread");
  handle
});

pub fn spawn<F: Future<Output = ()> + Send + 'static>(work: F) {
  drop(RUNTIME.spawn(work));
}

/// Runs `f` with the runtime as the current one, so that what it creates
/// (timers, tasks, connections) belongs to the runtime's thread.
pub fn enter<T>(f: impl FnOnce() -> T) -> T {
  let _guard = RUNTIME.enter();
  f()
}
