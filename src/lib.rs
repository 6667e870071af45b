//! N-API wiring only: converts arguments, runs each call, and hands the
//! outcome to JavaScript. The cache semantics live in `cache`.

// Replies are built on the runtime's threads and freed on the JS thread;
// mimalloc handles that cross-thread traffic better than glibc's malloc
// (about 15% more calls per second at concurrency 64 here).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cache;
mod calls;
mod envelope;
mod error;
mod store;

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::cache::{Cache, CacheResult, Caller};
use crate::calls::{Calls, OnSettled, Settled};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisConfig, RedisOptions, RedisStore};
use crate::store::Store;

/// Where the cache keeps its data, as `index.js` reads it from the options.
#[napi(object)]
pub struct StoreOptions {
  /// The in-memory server of this name; when absent, Redis.
  pub memory: Option<String>,
  pub url: Option<String>,
  pub host: Option<String>,
  pub port: Option<u32>,
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: Option<i64>,
  pub connect_timeout_ms: Option<f64>,
  pub command_timeout_ms: Option<f64>,
}

#[napi(object)]
pub struct NativeOptions {
  pub cache_prefix: String,
  pub lock_prefix: String,
  pub store: StoreOptions,
  pub caller: CallerOptions,
}

#[napi(object)]
pub struct CallerOptions {
  pub lock_name: String,
  pub lock_duration: f64,
  pub lock_retry: f64,
}

impl From<CallerOptions> for Caller {
  fn from(options: CallerOptions) -> Self {
    Caller { lock_name: options.lock_name, lock_duration_ms: options.lock_duration, lock_retry_ms: options.lock_retry }
  }
}

/// A loaded entry as one JSON array, `[value, expireTimestamp, createdAt,
/// lastReadAt]`: one string and one JSON.parse on the JS side cost far less
/// than building an object property by property through N-API.
fn loaded_json(loaded: store::Loaded) -> String {
  let mut json = String::with_capacity(loaded.value_json.len() + 50);
  json.push('[');
  json.push_str(&loaded.value_json);
  for n in [loaded.expire_timestamp, loaded.created_at, loaded.last_read_at] {
    json.push(',');
    envelope::push_js_number(&mut json, n);
  }
  json.push(']');
  json
}

#[napi]
pub struct NativeCache {
  cache: Arc<Cache>,
  /// lockName, lockDuration and lockRetry as index.js last set them.
  caller: Arc<Caller>,
  calls: Calls,
}

impl NativeCache {
  fn run<T, F, Fut>(&self, id: u32, call: F) -> Settled<T>
  where
    T: ToNapiValue + Send + 'static,
    F: FnOnce(Arc<Cache>, Arc<Caller>) -> Fut,
    Fut: Future<Output = CacheResult<T>> + Send + 'static,
  {
    self.calls.run(id, self.cache.answers_at_once(), call(self.cache.clone(), self.caller.clone()))
  }
}

#[napi]
impl NativeCache {
  #[napi(constructor)]
  pub fn new(options: NativeOptions, on_settled: OnSettled) -> Result<Self> {
    let store = options.store;
    // Both stores start tasks or timers, which need the runtime's context.
    let store: Arc<dyn Store> = within_runtime_if_available(|| match store.memory {
      Some(name) => Ok(MemoryStore::shared(&name) as Arc<dyn Store>),
      None => RedisConfig::from_options(RedisOptions {
        url: store.url,
        host: store.host,
        port: store.port,
        username: store.username,
        password: store.password,
        db: store.db,
        connect_timeout_ms: store.connect_timeout_ms,
        command_timeout_ms: store.command_timeout_ms,
      })
      .and_then(RedisStore::new)
      .map(|redis| Arc::new(redis) as Arc<dyn Store>),
    })
    .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
    Ok(NativeCache {
      cache: Arc::new(Cache::new(store, options.cache_prefix, options.lock_prefix)),
      caller: Arc::new(options.caller.into()),
      calls: Calls::new(on_settled)?,
    })
  }

  /// Hands the calls queued in this tick to the runtime (index.js calls it
  /// once per tick in which a call had to wait).
  #[napi]
  pub fn flush(&self) {
    self.calls.flush();
  }

  /// Lets go of the channel replies come back through, once the cache is
  /// closed and no call is under way (index.js knows when).
  #[napi]
  pub fn release(&self) {
    self.calls.release();
  }

  /// Called whenever `lockName`, `lockDuration` or `lockRetry` changes.
  #[napi]
  pub fn set_caller(&mut self, caller: CallerOptions) {
    self.caller = Arc::new(caller.into());
  }

  #[napi]
  pub fn save(
    &self,
    id: u32,
    key: String,
    value_json: String,
    expire_ms: Option<f64>,
  ) -> Settled<bool> {
    self.run(id, move |cache, caller| async move { cache.save(&key, &value_json, expire_ms, &caller).await })
  }

  #[napi]
  pub fn load(
    &self,
    id: u32,
    key: String,
    expire_ms: Option<f64>,
    retry_ms: Option<f64>,
  ) -> Settled<String> {
    self.run(id, move |cache, caller| async move { cache.load(&key, expire_ms, retry_ms, &caller).await.map(loaded_json) })
  }

  #[napi]
  pub fn destroy(
    &self,
    id: u32,
    key: String,
  ) -> Settled<bool> {
    self.run(id, move |cache, caller| async move { cache.destroy(&key, &caller).await })
  }

  #[napi]
  pub fn lock(
    &self,
    id: u32,
    key: String,
    expire_ms: Option<f64>,
  ) -> Settled<bool> {
    self.run(id, move |cache, caller| async move { cache.lock(&key, expire_ms, &caller).await })
  }

  #[napi]
  pub fn unlock(
    &self,
    id: u32,
    key: String,
  ) -> Settled<bool> {
    self.run(id, move |cache, caller| async move { cache.unlock(&key, &caller).await })
  }

  #[napi]
  pub fn check_lock(
    &self,
    id: u32,
    key: String,
    retry_ms: Option<f64>,
  ) -> Settled<bool> {
    self.run(id, move |cache, caller| async move { cache.check_lock(&key, retry_ms, &caller).await })
  }

  #[napi]
  pub fn locks(&self, id: u32) -> Settled<Vec<String>> {
    self.run(id, move |cache, _| async move { cache.locks().await })
  }

  #[napi]
  pub fn keys(&self, id: u32) -> Settled<Vec<String>> {
    self.run(id, move |cache, _| async move { cache.keys().await })
  }

  #[napi]
  pub fn size(&self, id: u32) -> Settled<u32> {
    self.run(id, move |cache, _| async move { cache.size().await })
  }

  #[napi]
  pub fn clear(&self, id: u32) -> Settled<bool> {
    self.run(id, move |cache, _| async move { cache.clear().await })
  }

  #[napi]
  pub fn dump_write(&self, id: u32, file: String) -> Settled<u32> {
    self.run(id, move |cache, _| async move { cache.dump_write(&file).await })
  }

  #[napi]
  pub fn dump_read(&self, id: u32, file: String) -> Settled<u32> {
    self.run(id, move |cache, _| async move { cache.dump_read(&file).await })
  }

  #[napi]
  pub fn push(&self, id: u32, key: String, item_json: String) -> Settled<bool> {
    self.run(id, move |cache, _| async move { cache.push(&key, &item_json).await })
  }

  /// The item's JSON text, or null when the list is empty.
  #[napi]
  pub fn pop(&self, id: u32, key: String) -> Settled<Option<String>> {
    self.run(id, move |cache, _| async move { cache.pop(&key).await })
  }

  #[napi]
  pub fn list_length(&self, id: u32, key: String) -> Settled<u32> {
    self.run(id, move |cache, _| async move { cache.list_length(&key).await })
  }

  #[napi]
  pub fn close(&self, id: u32) -> Settled<bool> {
    self.run(id, move |cache, _| async move { cache.close().await })
  }
}

/// How many keys the in-memory server called `name` holds, dead ones the
/// sweeper has not reclaimed yet included (Redis's DBSIZE); null when no
/// open cache holds a server of that name.
#[napi]
pub fn memory_server_key_count(name: String) -> Option<u32> {
  MemoryStore::key_count(&name).map(|count| count as u32)
}
