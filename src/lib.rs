//! N-API wiring only: converts arguments, runs each call, and hands the
//! outcome to JavaScript. The cache semantics live in `cache`.

// Replies are built on the runtime's threads and freed on the JS thread;
// mimalloc handles that cross-thread traffic better than glibc's malloc
// (about 15% more calls per second at concurrency 64 here).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bound;
mod cache;
mod calls;
mod envelope;
mod error;
mod runtime;
mod store;

use std::cell::RefCell;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::bound::Key;
use crate::cache::{Cache, Caller, KeyNaming};
use crate::calls::{Calls, OnSettled, Settled, Waits};
use crate::envelope::{Clock, Head, Loaded};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisConfig, RedisOptions, RedisStore, SentinelOptions};
use crate::store::Store;

/// Where the cache keeps its data, as `index.js` reads it from the options.
#[napi(object)]
pub struct StoreOptions {
  /// The in-memory server of this name; when absent, Redis.
  pub memory: Option<String>,
  pub host: Option<String>,
  pub port: Option<u32>,
  /// A Redis Cluster's startup nodes.
  pub cluster: Option<Vec<NodeAddress>>,
  /// The Sentinels to ask for the master named `sentinel_name`.
  pub sentinels: Option<Vec<NodeAddress>>,
  pub sentinel_name: Option<String>,
  pub sentinel_username: Option<String>,
  pub sentinel_password: Option<String>,
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: Option<i64>,
  /// TLS (a `rediss://` URL or ioredis's `tls`), and whether to skip the certificate check.
  pub tls: Option<bool>,
  pub tls_insecure: Option<bool>,
  /// ioredis's `keyPrefix`.
  pub key_prefix: Option<String>,
  pub connect_timeout_ms: Option<f64>,
  pub command_timeout_ms: Option<f64>,
}

#[napi(object)]
pub struct NodeAddress {
  pub host: String,
  pub port: u32,
}

fn addresses(nodes: Vec<NodeAddress>) -> Vec<(String, u32)> {
  nodes.into_iter().map(|node| (node.host, node.port)).collect()
}

#[napi(object)]
pub struct NativeOptions {
  pub store: StoreOptions,
  pub caller: CallerOptions,
}

/// The cache's writable properties (see `Caller`).
#[napi(object)]
pub struct CallerOptions {
  pub cache_prefix: String,
  pub lock_prefix: String,
  pub lock_name: String,
  pub lock_duration: f64,
  pub lock_retry: f64,
}

impl From<CallerOptions> for Caller {
  fn from(options: CallerOptions) -> Self {
    Caller {
      cache_prefix: options.cache_prefix,
      lock_prefix: options.lock_prefix,
      lock_name: options.lock_name,
      lock_duration_ms: options.lock_duration,
      lock_retry_ms: options.lock_retry,
    }
  }
}

/// A loaded entry as one JSON array, `[expireTimestamp, createdAt,
/// lastReadAt, value]`, the value left out when the entry has none (JS then
/// reads undefined): one string and one JSON.parse on the JS side cost far
/// less than building an object property by property through N-API.
fn loaded_json(loaded: Loaded) -> String {
  let mut json = String::with_capacity(loaded.value_json.as_ref().map_or(0, String::len) + 50);
  json.push('[');
  for (i, n) in [loaded.expire_timestamp, loaded.created_at, loaded.last_read_at].into_iter().enumerate() {
    if i > 0 {
      json.push(',');
    }
    envelope::push_js_number(&mut json, n);
  }
  if let Some(value_json) = loaded.value_json {
    json.push(',');
    json.push_str(&value_json);
  }
  json.push(']');
  json
}

/// A cache's native side: its methods, called through the functions of
/// `cache_methods` with its handle (see `bound`).
pub struct NativeCache<S> {
  cache: Arc<Cache<S>>,
  /// lockName, lockDuration and lockRetry as index.js last set them.
  caller: RefCell<Arc<Caller>>,
  calls: Calls,
}

/// A `bound::Method` calling `NativeCache::$method` with its JS arguments
/// converted to the types given.
macro_rules! method {
  ($method:ident($($arg:ident: $ty:ty),*)) => {{
    #[allow(unused_variables, unused_mut)]
    unsafe fn method<S: Store>(cache: &NativeCache<S>, env: sys::napi_env, args: &[sys::napi_value; bound::MAX_ARGS])
      -> Result<sys::napi_value> {
      let mut args = args.iter();
      $(let $arg = unsafe { <$ty as bound::Arg>::from_js(env, *args.next().expect("bound::MAX_ARGS is enough"))? };)*
      unsafe { ToNapiValue::to_napi_value(env, cache.$method($($arg),*)) }
    }
    method::<S> as bound::Method<NativeCache<S>>
  }};
}

/// Runs `$call`, a future of the cache (`$cache: &Cache<S>`) and the caller
/// (`$caller: &Caller`), as `Calls` runs a call that waits as it says. One
/// that never waits borrows both (cloning the two `Arc`s and dropping them
/// again was 1 to 2% of a lock+unlock on the in-memory store); one that may
/// wait holds its own.
macro_rules! run {
  ($native:expr, $id:expr, $may_wait:expr, |$cache:ident, $caller:ident| $call:expr) => {
    match $native.waits($may_wait) {
      Waits::Never => {
        let caller = $native.caller.borrow();
        let ($cache, $caller) = (&*$native.cache, &**caller);
        Calls::run_now($call)
      }
      waits => {
        let (cache, caller) = ($native.cache.clone(), $native.caller.borrow().clone());
        let work = async move {
          let ($cache, $caller) = (&*cache, &*caller);
          $call.await
        };
        match waits {
          Waits::Always => $native.calls.queue($id, work),
          _ => $native.calls.poll_or_queue($id, work),
        }
      }
    }
  };
}

/// A new cache's native side, compiled for its store: the handle that
/// `cache_methods`' functions take first.
#[napi(catch_unwind)]
pub fn open_cache(env: Env, options: NativeOptions, on_settled: OnSettled) -> Result<Unknown<'static>> {
  let NativeOptions { mut store, caller } = options;
  // On a cluster, an entry and its lock must share a hash slot.
  let naming = if store.cluster.is_some() { KeyNaming::HashTagged } else { KeyNaming::Plain };
  // Both stores start tasks or timers, which need the runtime's context.
  let handle = match store.memory.take() {
    Some(name) => {
      let memory = runtime::enter(|| MemoryStore::shared(&name));
      bound::handle(env.raw(), NativeCache::new(memory, naming, caller, on_settled)?)
    }
    None => {
      let redis = runtime::enter(|| RedisConfig::from_options(redis_options(store)).and_then(RedisStore::new))
        .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
      bound::handle(env.raw(), NativeCache::new(Arc::new(redis), naming, caller, on_settled)?)
    }
  }?;
  unsafe { Unknown::from_napi_value(env.raw(), handle) }
}

/// Every cache's methods, as JavaScript names them: `save(handle, id, key, …)`.
#[napi(catch_unwind)]
pub fn cache_methods(env: Env) -> Result<Object<'static>> {
  bound::functions(env.raw(), METHOD_NAMES)
}

/// The methods of `cache_methods`, each with the types its arguments are
/// read as, in one list: their names, and each store's table of them.
macro_rules! cache_methods {
  ($($name:literal => $method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
    const METHOD_NAMES: &[&str] = &[$($name),*];
    impl<S: Store> bound::Target for NativeCache<S> {
      const METHODS: &'static [bound::Method<Self>] = &[$(method!($method($($arg: $ty),*))),*];
    }
  };
}

cache_methods! {
  "flush" => flush(),
  "release" => release(),
  "setCaller" => set_caller(caller: CallerOptions),
  "save" => save(id: u32, key: Key, value: Option<Head>, expire_ms: Option<f64>, clock: Clock),
  "load" => load(id: u32, key: Key, expire_ms: Option<f64>, retry_ms: Option<f64>, clock: Clock),
  "destroy" => destroy(id: u32, key: Key),
  "lock" => lock(id: u32, key: Key, expire_ms: Option<f64>),
  "unlock" => unlock(id: u32, key: Key),
  "checkLock" => check_lock(id: u32, key: Key, retry_ms: Option<f64>),
  "locks" => locks(id: u32),
  "keys" => keys(id: u32),
  "size" => size(id: u32),
  "clear" => clear(id: u32),
  "dumpWrite" => dump_write(id: u32, file: String),
  "dumpRead" => dump_read(id: u32, file: String, clock: Clock),
  "push" => push(id: u32, key: Key, item_json: Option<String>),
  "pop" => pop(id: u32, key: Key),
  "listLength" => list_length(id: u32, key: Key),
  "pttl" => pttl(id: u32, full_key: Key),
  "close" => close(id: u32),
}

fn redis_options(store: StoreOptions) -> RedisOptions {
  RedisOptions {
    host: store.host,
    port: store.port,
    cluster: store.cluster.map(addresses),
    sentinel: store.sentinels.map(|sentinels| SentinelOptions {
      sentinels: addresses(sentinels),
      name: store.sentinel_name.unwrap_or_default(),
      username: store.sentinel_username,
      password: store.sentinel_password,
    }),
    username: store.username,
    password: store.password,
    db: store.db,
    tls: store.tls.unwrap_or(false),
    tls_insecure: store.tls_insecure.unwrap_or(false),
    key_prefix: store.key_prefix.unwrap_or_default(),
    connect_timeout_ms: store.connect_timeout_ms,
    command_timeout_ms: store.command_timeout_ms,
  }
}

impl<S: Store> NativeCache<S> {
  fn new(store: Arc<S>, naming: KeyNaming, caller: CallerOptions, on_settled: OnSettled) -> Result<Self> {
    Ok(NativeCache {
      cache: Arc::new(Cache::new(store, naming)),
      caller: RefCell::new(Arc::new(caller.into())),
      calls: Calls::new(on_settled)?,
    })
  }

  /// Whether a call may wait: `may_wait` when it may even on a store that
  /// answers at once, for a retry's sleep or a dump file's I/O.
  fn waits(&self, may_wait: bool) -> Waits {
    match (self.cache.answers_at_once(), may_wait) {
      (false, _) => Waits::Always,
      (true, true) => Waits::Maybe,
      (true, false) => Waits::Never,
    }
  }

  /// Hands the calls queued in this tick to the runtime (index.js calls it
  /// once per tick in which a call had to wait).
  fn flush(&self) {
    self.calls.flush();
  }

  /// Lets go of the channel replies come back through, once the cache is
  /// closed and no call is under way (index.js knows when).
  fn release(&self) {
    self.calls.release();
  }

  /// Called whenever a writable property (prefixes, lockName, lockDuration,
  /// lockRetry) changes.
  fn set_caller(&self, caller: CallerOptions) {
    *self.caller.borrow_mut() = Arc::new(caller.into());
  }

  // `clock`, where envelope times are stamped or judged: the caller's
  // `Date` when it is not the system clock (index.js).
  fn save(&self, id: u32, key: Key, value: Option<Head>, expire_ms: Option<f64>, clock: Clock) -> Settled<bool> {
    let value = value.unwrap_or_else(|| Head::new(None));
    run!(self, id, false, |cache, caller| cache.save(&key, value, expire_ms, clock, caller))
  }

  fn load(&self, id: u32, key: Key, expire_ms: Option<f64>, retry_ms: Option<f64>, clock: Clock) -> Settled<String> {
    run!(self, id, retry_ms.is_some(), |cache, caller| async {
      cache.load(&key, expire_ms, retry_ms, clock, caller).await.map(loaded_json)
    })
  }

  fn destroy(&self, id: u32, key: Key) -> Settled<bool> {
    run!(self, id, false, |cache, caller| cache.destroy(&key, caller))
  }

  fn lock(&self, id: u32, key: Key, expire_ms: Option<f64>) -> Settled<bool> {
    run!(self, id, false, |cache, caller| cache.lock(&key, expire_ms, caller))
  }

  fn unlock(&self, id: u32, key: Key) -> Settled<bool> {
    run!(self, id, false, |cache, caller| cache.unlock(&key, caller))
  }

  fn check_lock(&self, id: u32, key: Key, retry_ms: Option<f64>) -> Settled<bool> {
    run!(self, id, retry_ms.is_some(), |cache, caller| cache.check_lock(&key, retry_ms, caller))
  }

  fn locks(&self, id: u32) -> Settled<Vec<String>> {
    run!(self, id, false, |cache, caller| cache.locks(caller))
  }

  fn keys(&self, id: u32) -> Settled<Vec<String>> {
    run!(self, id, false, |cache, caller| cache.keys(caller))
  }

  fn size(&self, id: u32) -> Settled<u32> {
    run!(self, id, false, |cache, caller| cache.size(caller))
  }

  fn clear(&self, id: u32) -> Settled<bool> {
    run!(self, id, false, |cache, caller| cache.clear(caller))
  }

  fn dump_write(&self, id: u32, file: String) -> Settled<u32> {
    run!(self, id, true, |cache, caller| cache.dump_write(&file, caller))
  }

  fn dump_read(&self, id: u32, file: String, clock: Clock) -> Settled<u32> {
    run!(self, id, true, |cache, caller| cache.dump_read(&file, clock, caller))
  }

  fn push(&self, id: u32, key: Key, item_json: Option<String>) -> Settled<bool> {
    run!(self, id, false, |cache, caller| cache.push(&key, item_json.as_deref(), caller))
  }

  /// The item as stored, `{"data":…}` (a JSON object), or null when the list is empty.
  fn pop(&self, id: u32, key: Key) -> Settled<Option<String>> {
    run!(self, id, false, |cache, caller| cache.pop(&key, caller))
  }

  fn list_length(&self, id: u32, key: Key) -> Settled<u32> {
    run!(self, id, false, |cache, caller| cache.list_length(&key, caller))
  }

  /// The remaining lifetime of a full key (prefix included), in ms, as
  /// Redis's PTTL answers it.
  fn pttl(&self, id: u32, full_key: Key) -> Settled<f64> {
    run!(self, id, false, |cache, caller| cache.pttl(&full_key, caller))
  }

  fn close(&self, id: u32) -> Settled<bool> {
    run!(self, id, false, |cache, _caller| cache.close())
  }
}

/// How many keys the in-memory server called `name` holds, dead ones the
/// sweeper has not reclaimed yet included (Redis's DBSIZE); null when no
/// open cache holds a server of that name.
#[napi]
pub fn memory_server_key_count(name: String) -> Option<u32> {
  MemoryStore::key_count(&name).map(|count| count as u32)
}

/// Gives the calling thread's core to a thread waiting for one: Node's
/// thread, while it turns its event loop waiting for a reply
/// (lib/replies.js), lets Redis or the runtime's thread run there.
#[napi]
pub fn yield_thread() {
  std::thread::yield_now();
}
