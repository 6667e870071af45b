//! The runtime waiting calls run on: one thread of its own running a
//! current-thread tokio runtime, so that a call, its Redis socket and its
//! reply stay on one thread, in order.
//!
//! Waking a parked thread is what a call one at a time mostly costs: on an
//! idle virtual machine, longer than the Redis round trip itself. So after
//! any activity (a call handed over, a reply sent back) the thread stays
//! awake for a moment, polling for the reply or the next call, before it
//! parks. Measured (bench/RESULTS.md, and the note of the change): one save
//! at a time went from about 4,000 to about 7,000 a second, past ioredis's
//! own SET loop. But only while few calls are in flight: with many, replies
//! come often enough that the thread seldom parks anyway, and a spinning
//! thread takes a core that Redis and Node's thread need (on 2 cores, 64
//! saves in flight went from about 35,000 to about 80,000 a second, at a
//! third of the CPU per call, once it stopped spinning there).

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::store::lock;

/// How long the runtime's thread stays awake after the last call or reply:
/// long enough to cover Node's own wake-up between a reply and the next
/// call (50 µs did not; 250 and 500 µs did equally).
const SPIN: Duration = Duration::from_micros(250);

/// The most calls in flight, and in the last handover, at which the
/// thread still spins.
const SPIN_IN_FLIGHT: usize = 2;

struct Runtime {
  handle: Handle,
  /// Set by every call handed over and every reply sent; read by the spinner.
  active: AtomicBool,
  /// Calls handed over whose replies have not been sent yet.
  in_flight: AtomicUsize,
  /// How many calls the last handover (a flush) held. Many mean many in
  /// flight, even in the moment the last of a batch's replies has gone and
  /// the next is not yet made: spinning then took a core between batches,
  /// and Redis and Node's thread waited their turns on the other (64 saves
  /// in flight, 2 cores, in turn with the build before: this process's CPU
  /// per save 11.8 to 10.3 µs; the booted app's saves 69,000 to 75,000 a
  /// second, medians of 18 rounds).
  last_handover: AtomicUsize,
  wake: Notify,
  /// Work handed over while the thread spins, which it spawns on its next
  /// turn: `Handle::spawn` from Node's thread wakes the runtime's driver
  /// through its eventfd, a system call there and a readiness to read here,
  /// though the thread is awake.
  inbox: Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>>,
  /// Set once work is in `inbox`: the spinner looks at it on every turn,
  /// and locking it each time would take its lock from Node's thread.
  inbox_filled: AtomicBool,
  /// Whether the thread spins, and so takes what `inbox` holds.
  spinning: AtomicBool,
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("actionhero-native-cache: cannot build its tokio runtime");
  let handle = runtime.handle().clone();
  std::thread::Builder::new()
    .name("actionhero-native-cache".into())
    .spawn(move || {
      runtime.spawn(keep_timers_near());
      runtime.block_on(spin())
    })
    .expect("actionhero-native-cache: cannot start its runtime thread");
  Runtime {
    handle,
    active: AtomicBool::new(false),
    in_flight: AtomicUsize::new(0),
    last_handover: AtomicUsize::new(0),
    wake: Notify::new(),
    inbox: Mutex::default(),
    inbox_filled: AtomicBool::new(false),
    spinning: AtomicBool::new(false),
  }
});

/// Runs on the runtime's thread for as long as the process lives: waits for
/// activity, then polls (yielding, which lets the runtime poll its sockets
/// and take new tasks) until `SPIN` has passed without any, or more than
/// `SPIN_IN_FLIGHT` calls are under way or came in the last handover.
/// Each turn also yields the core: the kernel lets a spinning thread finish
/// its time slice before a thread it woke (Redis, or Node's thread) runs
/// there, and with Node's thread turning its loop too (lib/replies.js), two
/// spinners held both cores of a 2-core machine while Redis waited.
async fn spin() {
  loop {
    RUNTIME.wake.notified().await;
    RUNTIME.spinning.store(true, Ordering::SeqCst);
    let mut until = Instant::now() + SPIN;
    while RUNTIME.in_flight.load(Ordering::Acquire) <= SPIN_IN_FLIGHT && last_handover_was_small() {
      spawn_inbox();
      tokio::task::yield_now().await;
      std::thread::yield_now();
      let now = Instant::now();
      if RUNTIME.active.swap(false, Ordering::AcqRel) {
        until = now + SPIN;
      } else if now >= until {
        break;
      }
    }
    RUNTIME.spinning.store(false, Ordering::SeqCst);
    // What came before the flag fell (see `spawn`).
    spawn_inbox();
  }
}

fn spawn_inbox() {
  if !RUNTIME.inbox_filled.swap(false, Ordering::SeqCst) {
    return;
  }
  let work = mem::take(&mut *lock(&RUNTIME.inbox));
  for job in work {
    drop(RUNTIME.handle.spawn(job));
  }
}

/// The most the time driver's next wake-up is away (see `keep_timers_near`).
const TIMER_TICK: Duration = Duration::from_secs(1);

/// Sleeps `TIMER_TICK` at a time, for as long as the process lives. Every
/// Redis call arms a deadline (its command timeout, 5 s by default); one
/// earlier than the time driver's next wake-up makes the driver wake itself
/// through its eventfd, a system call, and with no other timer pending every
/// one is: two per call. This timer keeps the next wake-up at most a second
/// away.
async fn keep_timers_near() {
  loop {
    tokio::time::sleep(TIMER_TICK).await;
  }
}

/// Whether the thread may spin at all (see `Runtime::last_handover`).
fn last_handover_was_small() -> bool {
  RUNTIME.last_handover.load(Ordering::Relaxed) <= SPIN_IN_FLIGHT
}

/// Keeps the runtime's thread awake a little longer (see [`SPIN`]), when it
/// spins at all: after a hand-over of many calls it does not, and waking it
/// only to stop again cost Node's thread a second `eventfd` write per
/// hand-over (after the spawn's) and the runtime's a poll per reply.
fn mark_active() {
  if !last_handover_was_small() {
    return;
  }
  let runtime = &*RUNTIME;
  runtime.active.store(true, Ordering::Release);
  // Wakes the spinner only if it is parked: `notify_one` would leave a
  // permit behind whenever it is already spinning, and it would spin a
  // second `SPIN` for nothing once it stops. (A call made in the instant
  // it parks is not spun for; it still runs.)
  runtime.wake.notify_waiters();
}

/// Runs `work`, which makes `calls` calls, each ending with [`replied`].
pub fn spawn<F: Future<Output = ()> + Send + 'static>(calls: usize, work: F) {
  let runtime = &*RUNTIME;
  runtime.in_flight.fetch_add(calls, Ordering::AcqRel);
  runtime.last_handover.store(calls, Ordering::Relaxed);
  if runtime.spinning.load(Ordering::SeqCst) {
    lock(&runtime.inbox).push(Box::pin(work));
    // After the push: a spinner that saw the flag down before it took
    // nothing, and sees it up on its next look.
    runtime.inbox_filled.store(true, Ordering::SeqCst);
    // Still spinning: the thread takes it on its next turn. Stopped since:
    // its last look at the inbox, after the flag fell, took the work or
    // missed it; whatever is left is spawned from here.
    if !runtime.spinning.load(Ordering::SeqCst) {
      spawn_inbox();
    }
  } else {
    drop(runtime.handle.spawn(work));
  }
  mark_active();
}

/// A call's reply is on its way; the next call usually follows it closely.
pub fn replied() {
  RUNTIME.in_flight.fetch_sub(1, Ordering::AcqRel);
  mark_active();
}

/// Runs `f` with the runtime as the current one, so that what it creates
/// (timers, tasks, connections) belongs to the runtime's thread.
pub fn enter<T>(f: impl FnOnce() -> T) -> T {
  let _guard = RUNTIME.handle.enter();
  f()
}
