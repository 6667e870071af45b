//! How a call crosses between the JS thread and the runtime.
//!
//! A call that finishes without waiting (the memory store nearly always
//! does) answers at once. One that waits (Redis, or a retry on a held lock)
//! is queued, and index.js flushes the queue once per tick: the runtime is
//! woken once for all the calls made in that tick, not once per call. Its
//! replies come back the same way, gathered into batches, each batch one
//! wake-up of the JS thread. Waking a thread costs a system call; at high
//! concurrency those wake-ups, not Redis, were the limit.

use std::any::Any;
use std::future::Future;
use std::mem;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use crate::cache::CacheResult;
use crate::error::CacheError;
use crate::runtime;
use crate::store::lock;

/// A call's outcome as JavaScript sees it: the result, or an `Error` object
/// carrying actionhero's message and a `code`. Errors are handed over as
/// values, not thrown or rejected, so they keep their own `code`.
pub struct Reply<T>(CacheResult<T>);

impl<T: ToNapiValue> ToNapiValue for Reply<T> {
  unsafe fn to_napi_value(raw_env: sys::napi_env, reply: Self) -> Result<sys::napi_value> {
    match reply.0 {
      Ok(value) => unsafe { T::to_napi_value(raw_env, value) },
      Err(error) => {
        let env = Env::from_raw(raw_env);
        let mut js_error = env.create_error(Error::from_reason(error.to_string()))?;
        js_error.set_named_property("code", error.code())?;
        Ok(js_error.raw())
      }
    }
  }
}

impl<T> TypeName for Reply<T> {
  fn type_name() -> &'static str {
    "Reply"
  }

  fn value_type() -> ValueType {
    ValueType::Unknown
  }
}

/// What a native method returns: the reply when the call finished at once,
/// else `undefined`, and the reply comes later to `onSettled` under the
/// call's id.
pub type Settled<T> = Either<Reply<T>, ()>;

/// A finished call's reply, turned into a JS value on the JS thread.
pub struct Completion(Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>);

impl ToNapiValue for Completion {
  unsafe fn to_napi_value(env: sys::napi_env, completion: Self) -> Result<sys::napi_value> {
    (completion.0)(env)
  }
}

/// `onSettled(ids, replies)`, called with every reply gathered since the last call.
pub type OnSettled<'a> = Function<'a, FnArgs<(Vec<u32>, Vec<Completion>)>, ()>;

/// Weak: it does not hold the event loop open by itself; index.js keeps the
/// loop alive while calls are under way.
type Deliver = ThreadsafeFunction<(), (), FnArgs<(Vec<u32>, Vec<Completion>)>, Status, false, true>;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Whether a call can wait, for a timer, a file or the store's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Waits {
  /// It finishes when first polled (the in-memory store's calls, but for
  /// those below).
  Never,
  /// It may (a retry's sleep, a dump file's I/O, on the in-memory store).
  Maybe,
  /// It does (Redis).
  Always,
}

pub struct Calls {
  /// Calls made on the JS thread since the last flush.
  queued: Mutex<Vec<Job>>,
  replies: Arc<Replies>,
}

struct Replies {
  ready: Arc<Mutex<Vec<(u32, Completion)>>>,
  /// None once released. Held only long enough to clone: held through the
  /// call, which wakes the JS thread, it was still taken when that thread
  /// made its next call, which slept on it.
  deliver: Mutex<Option<Arc<Deliver>>>,
}

impl Replies {
  /// Runs on the runtime's thread.
  fn add(self: &Arc<Self>, id: u32, completion: Completion) {
    runtime::replied();
    let first = {
      let mut ready = lock(&self.ready);
      ready.push((id, completion));
      ready.len() == 1
    };
    // A batch already on its way to the JS thread takes this reply along.
    // A new one is sent once the runtime has run every task ready now: the
    // replies Redis sent together then wake the JS thread once. Sent at
    // once, the JS thread woke for the first and took the rest one by one.
    if first {
      let replies = self.clone();
      drop(tokio::spawn(async move { replies.send() }));
    }
  }

  fn send(&self) {
    let deliver = lock(&self.deliver).clone();
    if let Some(deliver) = deliver {
      deliver.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
  }
}

pin_project_lite::pin_project! {
  /// A queued call: runs it and hands its reply on. Written out rather than
  /// as an `async` block, which moves the call (a future of a kilobyte or
  /// more) to another place in itself on its first poll: that copy was 2.5%
  /// of the runtime thread's time, 64 saves in flight.
  struct Queued<F> {
    id: u32,
    replies: Arc<Replies>,
    #[pin]
    work: F,
  }
}

impl<T, F> Future for Queued<F>
where
  T: ToNapiValue + Send + 'static,
  F: Future<Output = CacheResult<T>>,
{
  type Output = ();

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
    let this = self.project();
    let reply = Reply(std::task::ready!(this.work.poll(cx)));
    this.replies.add(*this.id, Completion(Box::new(move |env| unsafe { Reply::to_napi_value(env, reply) })));
    Poll::Ready(())
  }
}

/// A panic answers its own call with an error; it never crosses into Node
/// (which would abort the process) nor loses another call's reply.
fn answering_panics<T>(work: impl Future<Output = CacheResult<T>>) -> impl Future<Output = CacheResult<T>> {
  AssertUnwindSafe(work).catch_unwind().map(|outcome| outcome.unwrap_or_else(|panic| Err(panicked(panic))))
}

fn panicked(panic: Box<dyn Any + Send>) -> CacheError {
  let message = panic
    .downcast_ref::<&str>()
    .map(|s| s.to_string())
    .or_else(|| panic.downcast_ref::<String>().cloned())
    .unwrap_or_else(|| "a call panicked".to_owned());
  CacheError::Internal(message)
}

impl Calls {
  pub fn new(on_settled: OnSettled) -> Result<Self> {
    let ready: Arc<Mutex<Vec<(u32, Completion)>>> = Arc::default();
    let batch = ready.clone();
    let deliver = on_settled
      .build_threadsafe_function::<()>()
      .callee_handled::<false>()
      .weak::<true>()
      .build_callback(move |_| {
        let batch = mem::take(&mut *lock(&batch));
        Ok(FnArgs::from(batch.into_iter().unzip()))
      })?;
    let replies = Replies { ready, deliver: Mutex::new(Some(Arc::new(deliver))) };
    Ok(Calls { queued: Mutex::default(), replies: Arc::new(replies) })
  }

  /// Runs a call that never waits: polled here on the JS thread, pinned on
  /// the stack, borrowing what it needs: no allocation, no runtime to enter.
  pub fn run_now<T>(work: impl Future<Output = CacheResult<T>>) -> Settled<T> {
    let work = pin!(answering_panics(work));
    Either::A(Reply(match work.poll(&mut Context::from_waker(Waker::noop())) {
      Poll::Ready(outcome) => outcome,
      Poll::Pending => Err(CacheError::Internal("a call that cannot wait waited".to_owned())),
    }))
  }

  /// Runs a call that may wait: it is boxed and polled once, and when it
  /// finishes without waiting, that is its reply; otherwise it is queued
  /// for the next flush.
  pub fn poll_or_queue<T, F>(&self, id: u32, work: F) -> Settled<T>
  where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = CacheResult<T>> + Send + 'static,
  {
    let mut work = Box::pin(answering_panics(work));
    match runtime::enter(|| work.as_mut().poll(&mut Context::from_waker(Waker::noop()))) {
      Poll::Ready(outcome) => Either::A(Reply(outcome)),
      Poll::Pending => self.enqueue(id, work),
    }
  }

  /// Queues a call that waits for the next flush, unpolled: polled here, a
  /// call to Redis would send its request on its own, outside the flush.
  pub fn queue<T, F>(&self, id: u32, work: F) -> Settled<T>
  where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = CacheResult<T>> + Send + 'static,
  {
    self.enqueue(id, answering_panics(work))
  }

  fn enqueue<T, F>(&self, id: u32, work: F) -> Settled<T>
  where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = CacheResult<T>> + Send + 'static,
  {
    // Nothing could carry the reply back any more.
    if lock(&self.replies.deliver).is_none() {
      return Either::A(Reply(Err(CacheError::Closed)));
    }
    let job = Queued { id, replies: self.replies.clone(), work };
    lock(&self.queued).push(Box::pin(job));
    Either::B(())
  }

  /// Hands every queued call to the runtime, as one task: one wake-up of
  /// the runtime, one task to schedule, however many calls the tick made.
  pub fn flush(&self) {
    let mut jobs = mem::take(&mut *lock(&self.queued));
    match jobs.len() {
      0 => {}
      1 => runtime::spawn(1, jobs.remove(0)),
      calls => runtime::spawn(calls, async move {
        futures_util::future::join_all(jobs).await;
      }),
    }
  }

  /// Closes the reply channel, so that nothing of this cache is left for
  /// Node's event loop (or jest's open-handle check) to see.
  pub fn release(&self) {
    // Dropping the last reference releases the thread-safe function.
    lock(&self.replies.deliver).take();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[tokio::test]
  async fn a_panicking_call_answers_an_error_and_the_others_their_results() {
    let calls = vec![
      Box::pin(answering_panics(async { Ok(1) })) as Pin<Box<dyn Future<Output = CacheResult<i32>>>>,
      Box::pin(answering_panics(async { panic!("boom") })),
      Box::pin(answering_panics(async { Ok(3) })),
    ];
    let outcomes = futures_util::future::join_all(calls).await;
    assert_eq!(outcomes[0], Ok(1));
    assert_eq!(outcomes[1], Err(CacheError::Internal("boom".into())));
    assert_eq!(outcomes[2], Ok(3));
  }
}
