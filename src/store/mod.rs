//! The storage backends. Each operation of [`Store`] is atomic on its own: the
//! memory store runs it under one mutex, the Redis store as one Lua script or
//! one command, so a lock check and the write it guards can never be split by
//! another caller, in this process or anywhere in the fleet.

pub mod memory;
pub mod redis;

use async_trait::async_trait;

use crate::error::CacheError;

pub type StoreResult<T> = Result<T, CacheError>;

/// The Redis keys of one cache entry: the entry itself and its lock.
pub struct EntryKeys {
  pub entry: String,
  pub lock: String,
}

/// The outcome of an operation that a lock held by another name may refuse.
#[derive(Debug, PartialEq)]
pub enum Guarded<T> {
  Done(T),
  Locked,
}

/// What `load` rewrites on a successful read: `readAt` always, and, when
/// asked and the entry expires at all, its expiry.
#[derive(Clone, Copy, Debug)]
pub struct Touch {
  pub now: f64,
  pub refresh: Option<Refresh>,
}

/// A new logical expiry (`expireTimestamp`) with its physical lifetime.
#[derive(Clone, Copy, Debug)]
pub struct Refresh {
  pub expire_timestamp: f64,
  pub ttl_secs: u64,
}

#[derive(Debug, PartialEq)]
pub enum LoadOutcome {
  Missing,
  Expired,
  Locked,
  Loaded(Loaded),
}

/// An entry as `load` returns it: the value's JSON text and the envelope's
/// timestamps, `last_read_at` being the read before this one.
#[derive(Debug, PartialEq)]
pub struct Loaded {
  pub value_json: String,
  pub expire_timestamp: Option<f64>,
  pub created_at: Option<f64>,
  pub last_read_at: Option<f64>,
}

/// One string entry of a dump, with the physical lifetime to restore it with.
pub struct DumpedEntry {
  pub key: String,
  pub text: String,
  pub ttl_secs: Option<u64>,
}

#[async_trait]
pub trait Store: Send + Sync {
  /// True when operations finish without waiting (in memory), so that a
  /// call is worth trying at once on the JS thread.
  fn answers_at_once(&self) -> bool;

  /// Writes `envelope` (expiring after `ttl_secs`, or never) unless another
  /// name holds the entry's lock.
  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, ttl_secs: Option<u64>)
    -> StoreResult<Guarded<()>>;

  /// Reads the entry and, when it is live and not locked by another name,
  /// writes it back touched (see [`Touch`]).
  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome>;

  /// Deletes the entry unless another name holds its lock; `Done(existed)`.
  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>>;

  /// Takes the lock, or refreshes it when `lock_name` already holds it.
  async fn lock(&self, lock_key: &str, lock_name: &str, ttl_secs: u64) -> StoreResult<bool>;

  /// Releases the lock when `lock_name` holds it or nobody does.
  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool>;

  async fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>>;

  /// Every live key that starts with `prefix`.
  async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>>;

  async fn delete_prefix(&self, prefix: &str) -> StoreResult<()>;

  /// The string entries under `prefix` as (key, stored text); lists are left out.
  async fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()>;

  /// Appends to the list and answers its new length.
  async fn push(&self, key: &str, item: String) -> StoreResult<u64>;

  async fn pop(&self, key: &str) -> StoreResult<Option<String>>;

  async fn list_length(&self, key: &str) -> StoreResult<u64>;

  async fn close(&self) -> StoreResult<()>;
}
